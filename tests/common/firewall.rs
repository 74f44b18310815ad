//! The private-network test hosts (`tests/hosts/up --private-network`) with iptables and ufw
//! installed. They reach no mirror, so the tools come in as files: `apt-get` on this machine
//! (Debian 12, as the hosts) downloads what a host lacks, judged by the host's own dpkg status,
//! and settle copies the .debs over and installs them with `apt: deb=`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::hosts::{TestHosts, firewall_hosts};

/// The firewall hosts, with iptables and ufw installed (once per test binary).
pub fn hosts_with_tools() -> &'static TestHosts {
    static READY: OnceLock<()> = OnceLock::new();
    let hosts = firewall_hosts();
    READY.get_or_init(|| install_firewall_tools(hosts));
    hosts
}

/// Where the .debs are kept between runs.
fn deb_cache() -> PathBuf {
    let cache =
        std::env::var("SETTLE_TEST_CACHE").unwrap_or_else(|_| "/var/cache/settle-test".into());
    Path::new(&cache).join("firewall-debs")
}

fn apt_get(status: &Path, args: &[&str]) -> std::process::Output {
    Command::new("apt-get")
        .arg("-o")
        .arg(format!("Dir::State::status={}", status.display()))
        .arg("-o")
        .arg(format!("Dir::Cache::archives={}", deb_cache().display()))
        .args(["-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("run apt-get")
}

/// The .deb files a host needs for iptables and ufw, in the order apt would install them (so
/// each one's dependencies come before it), downloaded into [`deb_cache`].
fn debs_for(status: &Path) -> Vec<PathBuf> {
    let plan = apt_get(status, &["-s", "-y", "install", "iptables", "ufw"]);
    assert!(
        plan.status.success(),
        "apt-get -s install iptables ufw: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    // `Inst netbase (6.4 Debian:12.15/oldstable [all])`: the file is netbase_6.4_all.deb.
    let files: Vec<String> = String::from_utf8_lossy(&plan.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(" (")?;
            let version = rest.split_whitespace().next()?;
            let arch = rest.rsplit_once('[')?.1.split(']').next()?;
            Some(format!("{name}_{}_{arch}.deb", version.replace(':', "%3a")))
        })
        .collect();
    if files.is_empty() {
        return Vec::new();
    }
    std::fs::create_dir_all(deb_cache().join("partial")).expect("make the .deb cache");
    let fetch = || {
        apt_get(
            status,
            &["-y", "-qq", "--download-only", "install", "iptables", "ufw"],
        )
    };
    if !fetch().status.success() {
        // This machine's package lists may be missing or stale.
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let again = fetch();
        assert!(
            again.status.success(),
            "downloading iptables and ufw: {}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    files.iter().map(|f| deb_cache().join(f)).collect()
}

fn install_firewall_tools(hosts: &TestHosts) {
    let first = hosts.names()[0];
    let status = hosts.state().join(first).join("root/var/lib/dpkg/status");
    let debs = debs_for(&status);
    if debs.is_empty() {
        return;
    }
    let items: Vec<String> = debs.iter().map(|d| format!("'{}'", d.display())).collect();
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: testhosts\n  gather_facts: no\n  vars:\n    debs: [{}]\n  tasks:\n    \
             - file: {{path: /root/firewall-debs, state: directory}}\n    \
             - copy: {{src: '{{{{ item }}}}', dest: /root/firewall-debs/}}\n      loop: '{{{{ debs }}}}'\n    \
             - apt: {{deb: '/root/firewall-debs/{{{{ item | basename }}}}'}}\n      loop: '{{{{ debs }}}}'\n",
            items.join(", ")
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    for host in hosts.names() {
        assert!(
            hosts
                .ssh(host, "iptables -V; ufw version")
                .contains("ufw 0."),
            "iptables and ufw on {host}"
        );
    }
}
