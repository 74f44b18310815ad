//! The interface facts Ansible reads from `ethtool` (`features` from `ethtool -k`,
//! `timestamping`, `hw_timestamp_filters` and `phc_index` from `ethtool -T`), compared key by
//! key with the real ansible-playbook's on a test host that has ethtool: its `.deb` is
//! installed on the third test host from the compat cache (tests/compat/collections fetches
//! it; the hosts have no mirror). The other facts tests run on the first host, which has no
//! ethtool, so they pin that settle then gathers none of these.
//! Skipped (with a note) when the real ansible-core or the .deb is not there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Scratch;
use common::hosts::{TestHosts, test_hosts};
use serde_json::{Map, Value};

fn compat_cache() -> PathBuf {
    std::env::var("SETTLE_COMPAT_CACHE")
        .unwrap_or_else(|_| "/var/cache/settle-compat".into())
        .into()
}

/// ethtool's .deb in the compat cache, or `None` and a note.
fn ethtool_deb() -> Option<PathBuf> {
    let dir = compat_cache().join("host-debs");
    let deb = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ethtool_"))
        });
    if deb.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no ethtool .deb in {}: tests/compat/collections fetches it",
            dir.display()
        );
        eprintln!(
            "skipped: no ethtool .deb in {} (tests/compat/collections fetches it)",
            dir.display()
        );
    }
    deb
}

/// Installs a .deb from the controller on a host (sent over ssh: the hosts reach no mirror).
fn install_deb(hosts: &TestHosts, host: &str, deb: &Path) {
    let file = std::fs::File::open(deb).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
    let out = Command::new("ssh")
        .args([
            "-F",
            &hosts.state().join("ssh_config").display().to_string(),
            "-o",
            "BatchMode=yes",
            host,
            "cat > /tmp/ethtool.deb && dpkg -i /tmp/ethtool.deb >/dev/null && rm /tmp/ethtool.deb",
        ])
        .stdin(Stdio::from(file))
        .output()
        .unwrap_or_else(|e| panic!("run ssh: {e}"));
    assert!(
        out.status.success(),
        "installing ethtool on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_facts(path: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(facts)) => facts,
        other => panic!("{} is not an object: {other:?}", path.display()),
    }
}

#[test]
fn interface_features_and_timestamping_match_ansibles_when_the_host_has_ethtool() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(deb) = ethtool_deb() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[2];
    install_deb(hosts, host, &deb);

    let s = Scratch::new();
    s.write("inv", &hosts.python_inventory());
    s.write(
        "facts.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - setup: {{gather_subset: '!all,!min,network'}}\n      register: r\n\
             \x20   - copy:\n        content: '{{{{ r.ansible_facts | to_json }}}}'\n\
             \x20       dest: '{{{{ out }}}}'\n      delegate_to: localhost\n"
        ),
    );
    let theirs_path = s.path("ansible.json");
    let ours_path = s.path("settle.json");
    s.ansible_playbook(
        &ansible_playbook,
        &[
            "facts.yml",
            "-i",
            "inv",
            "-e",
            &format!("out={}", theirs_path.display()),
        ],
        &[("ANSIBLE_HOST_KEY_CHECKING", "1")],
    );
    s.settle(&[
        "facts.yml",
        "-i",
        "inv",
        "-e",
        &format!("out={}", ours_path.display()),
    ])
    .assert_code(0);
    let theirs = read_facts(&theirs_path);
    let ours = read_facts(&ours_path);

    let names: Vec<String> = theirs["ansible_interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    assert!(
        theirs
            .get("ansible_lo")
            .and_then(|lo| lo.get("features"))
            .and_then(|f| f.get("rx_checksumming"))
            .is_some(),
        "Ansible gathered ethtool's features for lo: {:?}",
        theirs.get("ansible_lo")
    );
    let mut report = Vec::new();
    for name in &names {
        let key = format!("ansible_{name}");
        let (Some(a), Some(b)) = (theirs.get(&key), ours.get(&key)) else {
            report.push(format!("{key}: missing on one side"));
            continue;
        };
        for field in [
            "features",
            "timestamping",
            "hw_timestamp_filters",
            "phc_index",
        ] {
            if a.get(field) != b.get(field) {
                report.push(format!(
                    "{key}.{field}:\n  Ansible: {:?}\n  settle:  {:?}",
                    a.get(field),
                    b.get(field)
                ));
            }
        }
        // The rest of the interface too, now that ethtool is there.
        if a != b {
            report.push(format!("{key}:\n  Ansible: {a}\n  settle:  {b}"));
        }
    }
    assert!(
        report.is_empty(),
        "settle's ethtool facts differ from Ansible's on {host}:\n{}",
        report.join("\n")
    );
}
