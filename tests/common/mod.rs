//! Helpers for driving the `settle` binary on playbooks written into a scratch folder.
#![allow(dead_code)]

pub mod firewall;
pub mod hosts;
pub mod http;
pub mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `packaging/build-agent ARGS` prints: the path of the release build (or, with
/// `--agents`, the folder of static agents) it made, built now if it is not up to date (a no-op
/// under scripts/test, which builds them first).
pub fn build_agent(args: &[&str]) -> PathBuf {
    let mut command = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/build-agent"
    ));
    // What `cargo test` sets for this test binary would change the builds' fingerprints and
    // rebuild them (minutes): the script sees the environment a shell gives it.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_test = name == "CARGO"
            || [
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            // OUT_DIR and the build script's own (build.rs) are set for this test too.
            || [
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
                "SETTLE_COMMIT",
                "SETTLE_COMMIT_DATE",
            ]
            .contains(&&*name);
        if set_by_cargo_test {
            command.env_remove(&*name);
        }
    }
    let out = command
        .args(args)
        .output()
        .expect("run packaging/build-agent");
    assert!(
        out.status.success(),
        "packaging/build-agent {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// One of the real Ansible tools that tests/compat/install puts in its virtual environment
/// (`ansible-playbook`, `ansible-doc`, …), or `None` and a note when it is not there. Under CI,
/// whose suite installs them, a missing tool fails the test instead of skipping it.
pub fn ansible_tool(name: &str) -> Option<PathBuf> {
    let cache =
        std::env::var("SETTLE_COMPAT_CACHE").unwrap_or_else(|_| "/var/cache/settle-compat".into());
    let path = Path::new(&cache).join("venv/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: tests/compat/install puts it there",
        path.display()
    );
    eprintln!(
        "skipped: {} is not installed (tests/compat/install makes it)",
        path.display()
    );
    None
}

/// The Python of the ansible-core that tests/compat/install puts in the compat cache (scripts/test
/// installs it before the tests run), or `None` (and a note) when it is not there.
pub fn ansible_core_python() -> Option<String> {
    let cache =
        std::env::var("SETTLE_COMPAT_CACHE").unwrap_or_else(|_| "/var/cache/settle-compat".into());
    let python = format!("{cache}/venv/bin/python");
    let works = std::process::Command::new(&python)
        .args(["-c", "import ansible"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("skipped: no ansible-core at {python} (tests/compat/install makes it)");
        return None;
    }
    Some(python)
}

/// Bytes that do not repeat in any short period, so a piece sent or written twice or out of order shows.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect()
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

/// One run of `settle`: what it printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("scratch dir"),
        }
    }

    /// Writes a file; `@@` in the text stands for the scratch folder's path.
    pub fn write(&self, name: &str, text: &str) -> &Self {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.replace("@@", &self.root())).unwrap();
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// Runs `settle ARGS` in the scratch folder.
    pub fn settle(&self, args: &[&str]) -> Run {
        self.settle_with_env(args, &[])
    }

    /// Runs the real `ansible-playbook` (`program`) here with `args`, failing the test with its
    /// output when it fails.
    pub fn ansible_playbook(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) {
        let out = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "ansible-playbook failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the real ansible-playbook prints on stdout for `args`, run in this folder with the
    /// machine's Python for the local connection and without colour, to compare with settle's.
    pub fn ansible_stdout(&self, program: &Path, args: &[&str]) -> String {
        self.ansible_stdout_with_env(program, args, &[])
    }

    pub fn ansible_stdout_with_env(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let out = Command::new(program)
            .args(args)
            .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
            .current_dir(self.dir.path())
            .env("ANSIBLE_NOCOLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn settle_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_settle"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .env_remove("ANSIBLE_INVENTORY")
            .env_remove("SETTLE_INVENTORY")
            .output()
            .expect("run settle");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }
}

impl Run {
    /// The recap counts of one host: `{"ok": 3, "changed": 1, …}`.
    pub fn recap(&self, host: &str) -> BTreeMap<String, usize> {
        let line = self
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("PLAY RECAP"))
            .find(|l| l.split(" : ").next().map(str::trim) == Some(host))
            .unwrap_or_else(|| panic!("no recap line for {host} in:\n{}", self.stdout));
        line.split(" : ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|f| {
                let (k, v) = f.split_once('=').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect()
    }

    /// Shorthand: (ok, changed, failed, skipped, rescued, ignored) of one host.
    pub fn counts(&self, host: &str) -> (usize, usize, usize, usize, usize, usize) {
        let r = self.recap(host);
        (
            r["ok"],
            r["changed"],
            r["failed"],
            r["skipped"],
            r["rescued"],
            r["ignored"],
        )
    }

    /// The messages `debug` printed, in order.
    pub fn messages(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"msg\": "))
            .map(|m| {
                serde_json::from_str::<serde_json::Value>(m.trim_end_matches(','))
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|_| m.to_string())
            })
            .collect()
    }

    /// A re-run of a converged playbook: none of these hosts changed anything.
    pub fn assert_unchanged(&self, hosts: &[&str]) -> &Self {
        for host in hosts {
            assert_eq!(
                self.recap(host)["changed"],
                0,
                "{host} changed on a re-run:\n{}",
                self.stdout
            );
        }
        self
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// An inventory of local-connection hosts, for testing the language without SSH.
/// A scratch folder with an inventory (`hosts`) of one local-connection host, `h1`.
pub fn one_host() -> Scratch {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1"]));
    s
}

pub fn local_inventory(hosts: &[&str]) -> String {
    let mut text = String::from("[all:vars]\nansible_connection=local\n\n[group]\n");
    for h in hosts {
        text.push_str(h);
        text.push('\n');
    }
    text
}
