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
    /// (name, port) of each host.
    pub hosts: Vec<(String, u16)>,
}

const REPO: &str = env!("CARGO_MANIFEST_DIR");

extern "C" fn take_down_own_hosts() {
    if let Some(prefix) = OWN_PREFIX.get() {
        let _ = Command::new(format!("{REPO}/tests/hosts/down"))
            .args(["--prefix", prefix])
            .status();
    }
}

static OWN_PREFIX: OnceLock<String> = OnceLock::new();

pub fn test_hosts() -> &'static TestHosts {
    static HOSTS: OnceLock<TestHosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        let state = match std::env::var("SETTLE_TEST_STATE") {
            Ok(state) => PathBuf::from(state),
            Err(_) => {
                let pid = std::process::id();
                let prefix = format!("settle-c{}", pid % 100_000);
                // Below the kernel's ephemeral range (32768 and up), so no outgoing connection
                // can hold a test host's port.
                let port_base = 10_000 + (pid % 1_000) * 10;
                OWN_PREFIX.set(prefix.clone()).ok();
                // SAFETY: registering a plain extern "C" function with no captured state.
                unsafe { libc_atexit(take_down_own_hosts) };
                let out = Command::new(format!("{REPO}/tests/hosts/up"))
                    .args([
                        "-n",
                        "3",
                        "--prefix",
                        &prefix,
                        "--port-base",
                        &port_base.to_string(),
                    ])
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
        let list = std::fs::read_to_string(state.join("hosts.list"))
            .expect("hosts.list of the test hosts");
        let hosts = list
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(n, p)| (n.to_string(), p.trim().parse().unwrap()))
            })
            .collect();
        TestHosts { state, hosts }
    })
}

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}

impl TestHosts {
    pub fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn key(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    /// An inventory of the test hosts, logging in as `user`, with extra lines for the group vars
    /// and any extra host lines.
    pub fn inventory(&self, user: &str, vars: &[&str], extra_hosts: &[&str]) -> String {
        let mut text = String::from("[testhosts]\n");
        for (name, port) in &self.hosts {
            text.push_str(&format!(
                "{name} ansible_host=127.0.0.1 ansible_port={port}\n"
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

    pub fn state(&self) -> &Path {
        &self.state
    }
}
