//! `ansible.posix.synchronize` (rsync from the controller, over the host's SSH settings),
//! `expect` (a command answered under a pseudo-terminal) and `user`'s `ssh_key_passphrase`,
//! on real test hosts. Each host gets rsync with settle's own `apt` module first: the base
//! image does not have it.

mod common;

use common::hosts::{TestHosts, test_hosts};
use common::scenario::{SNAPSHOT, Scenario, TURN, changed, prove, run};

/// rsync on the host, installed by settle itself.
const RSYNC: &str = "    - apt: {name: rsync}\n";

#[test]
fn synchronize_pushes_a_folder_and_a_dry_run_lists_the_drift() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/m-sync",
            tasks: &format!(
                "{RSYNC}    - ansible.posix.synchronize: {{src: files/, dest: /srv/m-sync/}}\n"
            ),
            verify: "cd /srv/m-sync && find . -type f | sort && cat hello.txt && stat -c %a stamp.sh",
            expected: "./hello.txt\n./stamp.sh\nhello from the controller\n644\n",
            drift: "echo edited by hand > /srv/m-sync/hello.txt; touch -d @1000000000 /srv/m-sync/hello.txt",
            // rsync's itemized change: a file sent for its size and time.
            diff_shows: "<f.st...... hello.txt",
        },
    );
}

#[test]
fn synchronize_delete_removes_what_the_source_lacks() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "rm -rf /srv/m-sync-del; mkdir -p /srv/m-sync-del; echo old > /srv/m-sync-del/stale.txt",
            tasks: &format!(
                "{RSYNC}    - synchronize: {{src: files/, dest: /srv/m-sync-del, delete: true, recursive: true}}\n"
            ),
            verify: "ls /srv/m-sync-del",
            expected: "hello.txt\nstamp.sh\n",
            drift: "echo stray > /srv/m-sync-del/stray.txt",
            diff_shows: "*deleting   stray.txt",
        },
    );
}

/// Pull mode: the host's folder comes to the controller; a dry run leaves the copy here alone.
#[test]
fn synchronize_pulls_a_folder_from_the_host() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n{RSYNC}    - synchronize: {{mode: pull, src: /srv/m-pull/, dest: '{{{{ playbook_dir }}}}/pulled/'}}\n"
        ),
    );
    hosts.ssh(
        host,
        "rm -rf /srv/m-pull; mkdir -p /srv/m-pull/sub; echo one > /srv/m-pull/a.txt; echo two > /srv/m-pull/sub/b.txt",
    );
    let first = run(&s, &[]);
    first.assert_code(0);
    assert!(changed(&first, host) > 0, "{}", first.stdout);
    assert_eq!(s.read("pulled/a.txt"), "one\n");
    assert_eq!(s.read("pulled/sub/b.txt"), "two\n");

    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);

    hosts.ssh(
        host,
        "echo three > /srv/m-pull/sub/b.txt; touch -d @1000000000 /srv/m-pull/sub/b.txt",
    );
    let check = run(&s, &["--check", "--diff"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 1, "{}", check.stdout);
    assert!(
        check.stdout.contains(">f.st...... sub/b.txt"),
        "{}",
        check.stdout
    );
    assert_eq!(
        s.read("pulled/sub/b.txt"),
        "two\n",
        "a dry run copies nothing"
    );

    let fix = run(&s, &[]);
    fix.assert_code(0);
    assert_eq!(changed(&fix, host), 1, "{}", fix.stdout);
    assert_eq!(s.read("pulled/sub/b.txt"), "three\n");
}

/// Delegated to the host itself, rsync runs there, between two of its own folders.
#[test]
fn synchronize_delegated_to_the_host_copies_within_it() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "rm -rf /srv/m-sync-from /srv/m-sync-to; mkdir -p /srv/m-sync-from; echo local > /srv/m-sync-from/f.txt",
            tasks: &format!(
                "{RSYNC}    - synchronize: {{src: /srv/m-sync-from/, dest: /srv/m-sync-to/}}\n      delegate_to: '{{{{ inventory_hostname }}}}'\n"
            ),
            verify: "cat /srv/m-sync-to/f.txt",
            expected: "local\n",
            drift: "echo drifted > /srv/m-sync-to/f.txt; touch -d @1000000000 /srv/m-sync-to/f.txt",
            diff_shows: ">f.st...... f.txt",
        },
    );
}

/// `verify_host` checks the host's key against the known_hosts file settle's SSH options name:
/// the test hosts' file lets rsync in, an empty one keeps it out.
#[test]
fn synchronize_verify_host_checks_the_known_hosts_settle_uses() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write("empty_known_hosts", "");
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n{RSYNC}    - synchronize: {{src: files/, dest: /srv/m-sync-verify/, verify_host: yes}}\n"
        ),
    );
    s.write("files/x.txt", "x\n");
    let trusted = run(&s, &[]);
    trusted.assert_code(0);
    assert_eq!(hosts.ssh(host, "cat /srv/m-sync-verify/x.txt"), "x\n");

    // The task alone, since settle's own connection would refuse the host as well.
    s.write(
        "stranger.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - synchronize: {{src: files/, dest: /srv/m-sync-verify/, verify_host: yes}}\n      vars: {{ansible_ssh_common_args: '-o UserKnownHostsFile=@@/empty_known_hosts'}}\n"
        ),
    );
    let stranger = s.settle(&["stranger.yml", "-i", "inv"]);
    assert_eq!(stranger.code, 2, "{}", stranger.stdout);
    assert!(
        stranger.stdout.contains("Host key verification failed"),
        "{}",
        stranger.stdout
    );
}

/// With the local connection, rsync copies on the controller: no SSH at all.
#[test]
fn synchronize_with_the_local_connection_copies_on_the_controller() {
    let s = common::Scratch::new();
    s.write("inv", &common::local_inventory(&["here"]));
    s.write("from/a.txt", "a\n");
    s.write(
        "site.yml",
        "- hosts: here\n  gather_facts: no\n  tasks:\n    - synchronize: {src: '@@/from/', dest: '@@/to/'}\n",
    );
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, "here"), 1, "{}", first.stdout);
    assert_eq!(s.read("to/a.txt"), "a\n");
    let again = run(&s, &["--check"]);
    again.assert_code(0);
    assert_eq!(changed(&again, "here"), 0, "{}", again.stdout);
}

/// A script asking two questions with `read -p`.
const ASK: &str = "mkdir -p /srv/m-expect; rm -f /srv/m-expect/answers; \
    printf '#!/bin/sh\\nread -p \"Your name? \" name\\nread -p \"Favourite colour? \" colour\\necho \"$name likes $colour\" > /srv/m-expect/answers\\necho done\\n' > /srv/m-expect/ask.sh";

fn expect_play(hosts: &TestHosts, host: &str, extra: &str) -> common::Scratch {
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - expect:\n        command: sh /srv/m-expect/ask.sh\n        responses:\n          'name\\?': Ann\n          '(?i)COLOUR': [blue]\n{extra}      register: talk\n    - debug: {{msg: '{{{{ talk.stdout_lines | last }}}} {{{{ talk.rc }}}} {{{{ talk.changed }}}}'}}\n"
        ),
    );
    s
}

#[test]
fn expect_answers_two_prompts_and_respects_creates_and_removes() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    hosts.ssh(host, ASK);

    // Runs, answering both questions; runs again (expect always changes), like Ansible's.
    let s = expect_play(hosts, host, "");
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 1, "{}", first.stdout);
    // The answers are not echoed (`echo: false`): the prompts run on into the output.
    assert_eq!(
        first.messages(),
        ["Your name? Favourite colour? done 0 True"],
        "{}",
        first.stdout
    );
    assert_eq!(
        hosts.ssh(host, "cat /srv/m-expect/answers"),
        "Ann likes blue\n"
    );

    // creates: not run once its file exists.
    let s = expect_play(hosts, host, "        creates: /srv/m-expect/answers\n");
    let again = run(&s, &[]);
    again.assert_code(0);
    assert_eq!(changed(&again, host), 0, "{}", again.stdout);
    assert_eq!(
        again.messages(),
        ["skipped, since /srv/m-expect/answers exists 0 False"]
    );

    // Check mode skips it (Ansible's module does not support check mode): nothing is touched.
    hosts.ssh(host, "rm /srv/m-expect/answers");
    let before = hosts.ssh(host, SNAPSHOT);
    let check = run(&s, &["--check"]);
    assert_eq!(changed(&check, host), 0, "{}", check.stdout);
    assert_eq!(hosts.ssh(host, SNAPSHOT), before, "{}", check.stdout);

    // removes: runs only while its file is there.
    let s = expect_play(hosts, host, "        removes: /srv/m-expect/answers\n");
    let skipped = run(&s, &[]);
    skipped.assert_code(0);
    assert_eq!(changed(&skipped, host), 0, "{}", skipped.stdout);
    hosts.ssh(host, "touch /srv/m-expect/answers");
    let ran = run(&s, &[]);
    ran.assert_code(0);
    assert_eq!(changed(&ran, host), 1, "{}", ran.stdout);
    assert_eq!(
        hosts.ssh(host, "cat /srv/m-expect/answers"),
        "Ann likes blue\n"
    );
}

#[test]
fn user_generates_a_key_locked_by_its_passphrase() {
    let hosts = test_hosts();
    let key = "/home/m-keyuser/.ssh/id_ed25519";
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "userdel -r m-keyuser >/dev/null 2>&1; true",
            tasks: "    - user: {name: m-keyuser, generate_ssh_key: yes, ssh_key_type: ed25519, ssh_key_passphrase: 'open sesame'}\n",
            verify: &format!(
                "ssh-keygen -y -P wrong -f {key} >/dev/null 2>&1 && echo opened || echo refused; \
                 ssh-keygen -y -P 'open sesame' -f {key} | cut -d' ' -f1; stat -c '%U %a' {key}"
            ),
            expected: "refused\nssh-ed25519\nm-keyuser 600\n",
            drift: &format!("rm {key} {key}.pub"),
            diff_shows: "ssh_key",
        },
    );
}
