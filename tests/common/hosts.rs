//! Real test hosts for the end-to-end suite: booted by tests/hosts/up (systemd-nspawn
//! containers with sshd), shared by every test of a test binary.
//!
//! `scripts/test` boots them once for the whole suite and passes SETTLE_TEST_STATE; a test binary
//! run on its own boots (and at exit removes) a set of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct TestHosts {
    pub state: PathBuf,
    /// (name, port, address) of each host.
    pub hosts: Vec<(String, u16, String)>,
}

const REPO: &str = env!("CARGO_MANIFEST_DIR");

extern "C" fn take_down_own_hosts() {
    for prefix in OWN_PREFIXES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = Command::new(format!("{REPO}/tests/hosts/down"))
            .args(["--prefix", prefix])
            .status();
    }
}

static OWN_PREFIXES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The suite's three general-purpose hosts, settle-…-1 to -3.
pub fn test_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| boot("SETTLE_TEST_STATE", "c", &["-n", "3"], 0))
}

/// The six hosts of examples/ha-webapp, named as its inventory names them.
pub fn ha_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        boot(
            "SETTLE_HA_STATE",
            "ha",
            &["--names", "lb1,app1,db1,lb2,app2,db2"],
            3,
        )
    })
}

/// Four hosts for `settle pull`: three pull from a repository the fourth serves. Their own,
/// because a pull leaves a systemd timer running on each.
pub fn pull_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| boot("SETTLE_PULL_STATE", "pull", &["-n", "4"], 9))
}

/// One Debian 11 (bullseye, glibc 2.31) host, for the agent built for old hosts
/// (tests/old_hosts.rs).
pub fn old_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        boot(
            "SETTLE_OLD_STATE",
            "old",
            &["-n", "1", "--suite", "bullseye"],
            13,
        )
    })
}

/// One aarch64 Debian 12 host, run under qemu's user-mode emulation (`tests/hosts/up --arch
/// arm64`), for the agents built for other architectures (tests/agents.rs).
pub fn arm_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        boot(
            "SETTLE_ARM_STATE",
            "arm",
            &["-n", "1", "--arch", "arm64"],
            16,
        )
    })
}

/// Two hosts with networks of their own (`tests/hosts/up --private-network`), whose firewalls
/// tests may change without touching this machine's (tests/modules_firewall.rs).
pub fn firewall_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        boot(
            "SETTLE_FIREWALL_STATE",
            "fw",
            &["-n", "2", "--private-network"],
            14,
        )
    })
}

/// One virtual machine with a Debian kernel of its own (`tests/hosts/up --vm`, emulated by
/// qemu), for modules that change the kernel: loading modules, kernel settings.
pub fn vm_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| boot("SETTLE_VM_STATE", "vm", &["-n", "1", "--vm"], 17))
}

/// The hosts `scripts/test` booted (their state folder in `env`), or, for a test binary run on
/// its own, a set it boots now and removes at exit.
fn boot(env: &str, tag: &str, what: &[&str], port_offset: u32) -> TestHosts {
    let state = match std::env::var(env) {
        Ok(state) => PathBuf::from(state),
        Err(_) => {
            let pid = std::process::id();
            let prefix = format!("settle-{tag}{}", pid % 100_000);
            // Below the kernel's ephemeral range (32768 and up), so no outgoing connection
            // can hold a test host's port; twenty ports per process id, the first three for
            // the general hosts, the next six for the ha-webapp ones, then four for pull's, then
            // the old (bullseye) one, then the two private-network ones, then the arm64 one,
            // then the virtual machine.
            let port_base = 10_000 + (pid % 1_000) * 20 + port_offset;
            OWN_PREFIXES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(prefix.clone());
            static AT_EXIT: std::sync::Once = std::sync::Once::new();
            // SAFETY: registering a plain extern "C" function with no captured state.
            AT_EXIT.call_once(|| unsafe {
                libc_atexit(take_down_own_hosts);
            });
            let out = Command::new(format!("{REPO}/tests/hosts/up"))
                .args(what)
                .args(["--prefix", &prefix, "--port-base", &port_base.to_string()])
                .output()
                .expect("run tests/hosts/up");
            assert!(
                out.status.success(),
                "tests/hosts/up failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(format!("/run/settle-test/{prefix}"))
        }
    };
    let list =
        std::fs::read_to_string(state.join("hosts.list")).expect("hosts.list of the test hosts");
    let hosts = list
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, port, address] => Some((name.into(), port.parse().unwrap(), address.into())),
            _ => None,
        })
        .collect();
    TestHosts { state, hosts }
}

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}

impl TestHosts {
    pub fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|(n, ..)| n.as_str()).collect()
    }

    pub fn key(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    /// A scratch folder holding the test hosts' inventory as `inv`, logging in as root.
    pub fn scratch(&self) -> super::Scratch {
        let s = super::Scratch::new();
        s.write("inv", &self.inventory("root", &[], &[]));
        s
    }

    /// An inventory of the test hosts as root, where Ansible (and settle's Python fallback) runs
    /// modules with the hosts' own Python 3, for comparisons with the real ansible-playbook.
    pub fn python_inventory(&self) -> String {
        self.inventory(
            "root",
            &["ansible_python_interpreter=/usr/bin/python3"],
            &[],
        )
    }

    /// An inventory of the test hosts, logging in as `user`, with extra lines for the group vars
    /// and any extra host lines.
    pub fn inventory(&self, user: &str, vars: &[&str], extra_hosts: &[&str]) -> String {
        let mut text = String::from("[testhosts]\n");
        for (name, port, address) in &self.hosts {
            text.push_str(&format!(
                "{name} ansible_host={address} ansible_port={port}\n"
            ));
        }
        for h in extra_hosts {
            text.push_str(h);
            text.push('\n');
        }
        text.push_str(&format!(
            "\n[testhosts:vars]\nansible_user={user}\nansible_ssh_private_key_file={}\nansible_ssh_common_args=-o UserKnownHostsFile={}\n",
            self.key().display(),
            self.known_hosts().display()
        ));
        for v in vars {
            text.push_str(v);
            text.push('\n');
        }
        text
    }

    /// Runs a command on a host with plain ssh (not settle), and returns its output.
    pub fn ssh(&self, host: &str, command: &str) -> String {
        let out = Command::new("ssh")
            .args([
                "-F",
                &self.state.join("ssh_config").display().to_string(),
                "-o",
                "BatchMode=yes",
                host,
                command,
            ])
            .output()
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh {host} {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command inside a host without SSH or settle (tests/hosts/exec: nsenter into the
    /// container), to see what settle did with the host's own tools, and returns its output.
    pub fn exec(&self, host: &str, command: &str) -> String {
        let out = Command::new(format!("{REPO}/tests/hosts/exec"))
            .args(["--state", &self.state.display().to_string(), host])
            .args(["sh", "-c", command])
            .output()
            .expect("run tests/hosts/exec");
        assert!(
            out.status.success(),
            "exec {host} {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self) -> &Path {
        &self.state
    }
}
