//! The agent on an old distribution: a Debian 11 (bullseye, glibc 2.31) host, older than the
//! glibc 2.34 that a settle built on this machine (glibc 2.36) needs. The release build of
//! `packaging/build-agent` (linked for glibc 2.17) converges it; the plain build says why it
//! cannot.
//!
//! Ignored in a plain `cargo test`: it needs that release build (minutes to make) and a host of
//! another suite. `scripts/test` builds the one and boots the other, then runs
//! `cargo test --test old_hosts -- --ignored`; run on its own, this file builds and boots both.
mod common;

use common::Scratch;
use common::hosts::{TestHosts, old_hosts};
use common::scenario::{TURN, check_then_fix};

const PLAYBOOK: &str = r#"- hosts: all
  tasks:
    - name: the facts are those of Debian 11
      assert:
        that:
          - ansible_facts.distribution == 'Debian'
          - ansible_facts.distribution_release == 'bullseye'
          - ansible_facts.distribution_major_version == '11'
    - name: a folder
      file: path=/srv/old state=directory mode=0755
    - name: a file from the controller
      copy: src=files/hello.txt dest=/srv/old/hello.txt mode=0640
    - name: a template with facts
      template: src=templates/app.conf.j2 dest=/srv/old/app.conf
    - name: one line of a settings file
      lineinfile: path=/srv/old/settings regexp='^extra=' line=extra=yes create=yes
    - name: a package from bullseye's archive
      apt: name=hello state=present
    - name: a user
      user: name=olduser shell=/bin/bash
    - name: a command run once
      command: touch /srv/old/stamp
      args:
        creates: /srv/old/stamp
"#;

const RESET: &str = "rm -rf /srv/old /var/tmp/settle-agent-*; userdel -r olduser 2>/dev/null; \
    dpkg -r hello >/dev/null 2>&1; true";

const VERIFY: &str = "cat /srv/old/app.conf /srv/old/settings /srv/old/hello.txt; \
    stat -c '%n %a' /srv/old /srv/old/hello.txt /srv/old/stamp; \
    dpkg-query -W -f='${Package} ${Status}\\n' hello; getent passwd olduser | cut -d: -f1,7";

const EXPECTED: &str = "release=bullseye\nhost=HOST\nextra=yes\nhello from the controller\n\
    /srv/old 755\n/srv/old/hello.txt 640\n/srv/old/stamp 644\n\
    hello install ok installed\nolduser:/bin/bash\n";

fn scratch(hosts: &TestHosts) -> Scratch {
    let s = hosts.scratch();
    s.write("site.yml", PLAYBOOK);
    s.write("files/hello.txt", "hello from the controller\n");
    s.write(
        "templates/app.conf.j2",
        "release={{ ansible_facts.distribution_release }}\nhost={{ inventory_hostname }}\n",
    );
    s
}

fn glibc_of(hosts: &TestHosts, host: &str) -> String {
    hosts
        .ssh(host, "getconf GNU_LIBC_VERSION")
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs packaging/build-agent's release build and a bullseye host: scripts/test runs it"]
fn the_glibc_2_17_agent_converges_a_debian_11_host() {
    let agent = common::build_agent(&[]);
    let agent = agent.to_str().expect("a UTF-8 path");
    let hosts = old_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    assert_eq!(glibc_of(hosts, host), "glibc 2.31");
    let expected = EXPECTED.replace("HOST", host);
    let s = scratch(hosts);
    let settle = |extra: &[&str]| {
        let mut args = vec!["site.yml", "-i", "inv"];
        args.extend_from_slice(extra);
        s.settle_with_env(&args, &[("SETTLE_AGENT_BINARY", agent)])
    };
    hosts.ssh(host, RESET);

    let first = settle(&[]);
    first.assert_code(0);
    assert_eq!(first.recap(host)["changed"], 7, "{}", first.stdout);
    assert_eq!(hosts.ssh(host, VERIFY), expected, "the first run's state");

    settle(&[]).assert_code(0).assert_unchanged(&[host]);

    // Drift by hand: a setting edited, the package removed.
    hosts.ssh(
        host,
        "sed -i s/^extra=yes/extra=no/ /srv/old/settings && dpkg -r hello >/dev/null",
    );
    check_then_fix(
        hosts,
        host,
        2,
        &["-extra=no", "+extra=yes", "hello"],
        settle,
    );
    assert_eq!(hosts.ssh(host, VERIFY), expected, "the state after the fix");
}

#[test]
#[ignore = "needs a bullseye host: scripts/test runs it"]
fn the_agent_built_for_this_machine_says_why_it_cannot_run_there() {
    let hosts = old_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = scratch(hosts);
    // This test's settle is a debug build linked on this machine: its agent needs glibc 2.34+.
    let run = s.settle_with_env(&["site.yml", "-i", "inv"], &[]);
    assert_eq!(run.recap(host)["failed"], 1, "{}", run.stdout);
    let said = format!("{}{}", run.stdout, run.stderr);
    for part in [
        "GLIBC_2.3",
        "needs glibc 2.34 or newer",
        "packaging/build-agent",
    ] {
        assert!(said.contains(part), "{part:?} in\n{said}");
    }
}
