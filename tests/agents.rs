//! Agents for hosts unlike the controller: the static agents of `packaging/build-agent --agents`
//! (x86_64 and aarch64, linked against musl), each host given the one its `uname -m` names.
//!
//! The hosts: an aarch64 Debian 12 host (every program on it, sshd and the agent included, runs
//! under qemu's user-mode emulation) and the x86_64 Debian 11 host of tests/old_hosts.rs, whose
//! glibc (2.31) is too old for this test's own settle (a debug build linked on this machine):
//! only the folder's static x86_64 agent can run there. No musl host is booted (no Alpine
//! mirror is reachable from here); instead each agent is run in an empty root, with no libc,
//! loader or /etc at all, which is more than a musl host asks of it.
//!
//! Ignored in a plain `cargo test`: the agents take minutes to build, and the aarch64 host ten
//! minutes to make once. `scripts/test` builds the one and boots the other, then runs
//! `cargo test --test agents -- --ignored`; run on its own, this file builds and boots both.
mod common;

use std::process::Command;

use common::Scratch;
use common::hosts::{TestHosts, arm_hosts, old_hosts};
use common::scenario::{TURN, check_then_fix};

const PLAYBOOK: &str = r#"- hosts: all
  tasks:
    - name: the facts say which architecture the host is
      assert:
        that:
          - ansible_facts.architecture == arch
          - ansible_facts.machine == arch
    - name: a folder
      file: path=/srv/agents state=directory mode=0755
    - name: a file from the controller
      copy: src=files/hello.txt dest=/srv/agents/hello.txt mode=0640
    - name: a template with facts
      template: src=templates/host.conf.j2 dest=/srv/agents/host.conf
    - name: one line of a settings file
      lineinfile: path=/srv/agents/settings regexp='^extra=' line=extra=yes create=yes
    - name: what the host's own uname says
      command: uname -m
      register: uname
      changed_when: false
      check_mode: false
    - name: it says what the facts say
      assert:
        that: uname.stdout == arch
    - name: the agent under sudo, as another user
      command: id -un
      become: true
      become_user: deploy
      register: who
      changed_when: false
      check_mode: false
    - name: a job in the background (the agent starts itself as __async_job)
      command: echo done
      async: 30
      poll: 1
      register: job
      changed_when: false
      check_mode: false
    - assert:
        that:
          - who.stdout == 'deploy'
          - job.stdout == 'done'
"#;

const RESET: &str = "rm -rf /srv/agents /var/tmp/settle-agent-*";

const VERIFY: &str = "cat /srv/agents/host.conf /srv/agents/settings /srv/agents/hello.txt; \
    stat -c '%n %a' /srv/agents /srv/agents/hello.txt";

fn expected(host: &str, arch: &str) -> String {
    format!(
        "host={host}\narch={arch}\nextra=yes\nhello from the controller\n\
         /srv/agents 755\n/srv/agents/hello.txt 640\n"
    )
}

/// An inventory line for each host of `hosts`, its login and keys as host variables (the two
/// sets of test hosts have keys of their own), with `arch` set to what it should be.
fn host_lines(hosts: &TestHosts, arch: &str) -> String {
    hosts
        .hosts
        .iter()
        .map(|(name, port, address)| {
            format!(
                "{name} ansible_host={address} ansible_port={port} ansible_user=root \
                 ansible_ssh_private_key_file={} \
                 ansible_ssh_common_args='-o UserKnownHostsFile={}' arch={arch}\n",
                hosts.key().display(),
                hosts.known_hosts().display()
            )
        })
        .collect()
}

fn scratch(inventory: &str) -> Scratch {
    let s = Scratch::new();
    s.write("inv", inventory);
    s.write("site.yml", PLAYBOOK);
    s.write("files/hello.txt", "hello from the controller\n");
    s.write(
        "templates/host.conf.j2",
        "host={{ inventory_hostname }}\narch={{ ansible_facts.architecture }}\n",
    );
    s
}

fn sha256(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}

#[test]
#[ignore = "needs the static agents and an aarch64 host under emulation: scripts/test runs it"]
fn each_host_gets_the_static_agent_of_its_architecture() {
    let agents = common::build_agent(&["--agents"]);
    let arm = arm_hosts();
    let old = old_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let arm_host = arm.names()[0];
    let x86_host = old.names()[0];
    let inventory = format!(
        "{}{}",
        host_lines(arm, "aarch64"),
        host_lines(old, "x86_64")
    );
    let s = scratch(&inventory);
    let dir = agents.to_str().expect("a UTF-8 path");
    let settle = |extra: &[&str]| {
        let mut args = vec!["site.yml", "-i", "inv"];
        args.extend_from_slice(extra);
        s.settle_with_env(&args, &[("SETTLE_AGENT_DIR", dir)])
    };
    arm.ssh(arm_host, RESET);
    old.ssh(x86_host, RESET);

    let first = settle(&[]);
    first.assert_code(0);
    for host in [arm_host, x86_host] {
        assert_eq!(first.recap(host)["changed"], 4, "{host}: {}", first.stdout);
    }
    assert_eq!(arm.ssh(arm_host, VERIFY), expected(arm_host, "aarch64"));
    assert_eq!(old.ssh(x86_host, VERIFY), expected(x86_host, "x86_64"));
    // Each host holds one agent: the folder's build for its architecture.
    for (hosts, host, arch) in [(arm, arm_host, "aarch64"), (old, x86_host, "x86_64")] {
        let placed = hosts.ssh(host, "sha256sum /var/tmp/settle-agent-0/agent-*");
        let placed: Vec<&str> = placed.lines().collect();
        assert_eq!(placed.len(), 1, "{host}: {placed:?}");
        let want = sha256(&agents.join(format!("settle-agent-{arch}")));
        assert!(
            placed[0].starts_with(&want),
            "{host} runs {placed:?}, not the {arch} agent"
        );
    }

    settle(&[])
        .assert_code(0)
        .assert_unchanged(&[arm_host, x86_host]);

    // Drift by hand on the aarch64 host: a setting edited, the file's mode changed.
    arm.ssh(
        arm_host,
        "sed -i s/^extra=yes/extra=no/ /srv/agents/settings && chmod 0600 /srv/agents/hello.txt",
    );
    let (check, _) = check_then_fix(
        arm,
        arm_host,
        2,
        &["-extra=no", "+extra=yes", "0600", "0640"],
        settle,
    );
    assert_eq!(check.recap(x86_host)["changed"], 0, "{}", check.stdout);
    assert_eq!(arm.ssh(arm_host, VERIFY), expected(arm_host, "aarch64"));
}

#[test]
#[ignore = "needs an aarch64 host under emulation: scripts/test runs it"]
fn a_host_with_no_agent_for_its_architecture_is_told_what_to_install() {
    let arm = arm_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = arm.names()[0];
    let s = scratch(&host_lines(arm, "aarch64"));
    // No folder of agents: this test's settle has only itself, an x86_64 build.
    let run = s.settle_with_env(&["site.yml", "-i", "inv"], &[("SETTLE_AGENT_DIR", "")]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let recap = run.recap(host);
    assert_eq!(recap["failed"] + recap["unreachable"], 1, "{}", run.stdout);
    let said = format!("{}{}", run.stdout, run.stderr);
    for part in [
        "the host runs on aarch64, and settle has agents here for x86_64 only",
        "packaging/build-agent --agents",
    ] {
        assert!(said.contains(part), "{part:?} in\n{said}");
    }
}

#[test]
#[ignore = "needs the static agents (and, for aarch64, qemu registered with binfmt_misc): scripts/test runs it"]
fn the_static_agents_need_nothing_from_the_host() {
    let agents = common::build_agent(&["--agents"]);
    // The aarch64 agent runs here under qemu, which the emulated host's set-up registers.
    let _ = arm_hosts();
    for arch in ["x86_64", "aarch64"] {
        // A root holding the agent and nothing else: no libc, no loader, no /etc, no /dev.
        let root = tempfile::tempdir().expect("a temporary folder");
        std::fs::copy(
            agents.join(format!("settle-agent-{arch}")),
            root.path().join("agent"),
        )
        .expect("copy the agent");
        let out = Command::new("chroot")
            .arg(root.path())
            .args(["/agent", "__agent"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run chroot");
        let said = String::from_utf8_lossy(&out.stdout);
        let hello: serde_json::Value = serde_json::from_str(said.lines().next().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{arch}: no greeting ({e}): {said:?} {out:?}"));
        assert_eq!(hello["uid"], 0, "{arch}: {hello}");
        assert!(hello["settle_agent"].is_u64(), "{arch}: {hello}");
        assert!(out.status.success(), "{arch}: {out:?}");
    }
}
