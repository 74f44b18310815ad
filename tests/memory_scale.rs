//! Big results over SSH: a reply from the agent longer than a MiB is parsed while it is read (the
//! controller never holds its text whole), and arrives as documented: a command's output past
//! 10 MiB or 256 Ki lines (shared by stdout and stderr) is dropped with a note saying how much, output under the cap arrives intact,
//! and the connection carries the next calls as before. Behaviour only: memory is measured by
//! `bench/memory sizes` and `bench/thousand`, not here.

mod common;

use common::hosts::test_hosts;
use common::scenario::{TURN, run};

/// 72 characters and a newline, repeated by `yes`: 10 MiB of them are fewer than 256 Ki lines.
const LINE: &str = "1234567890abcdefghijklmnopqrstuvwxyz1234567890abcdefghijklmnopqrstuvwxyz";
const MIB: usize = 1 << 20;
/// What a result's `msg` says when output was cut.
const NOTE: &str = "output truncated: settle keeps the first 10 MiB and 262144 lines of output \
                    (stdout and stderr share them, each at least half)";

/// What `head -c N` of `yes LINE` is: full lines and a partial last one.
fn expected(len: usize) -> (usize, usize) {
    let per = LINE.len() + 1;
    (len, len / per + usize::from(!len.is_multiple_of(per)))
}

#[test]
fn a_command_s_big_output_over_ssh_is_cut_at_10_mib_and_smaller_output_arrives_intact() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - shell: yes {LINE} | head -c 20M\n      register: big\n\
             \x20   - shell: yes {LINE} | head -c 3M\n      register: mid\n\
             \x20   - shell: yes {LINE} | head -c 3M | sha1sum | cut -d' ' -f1\n      register: sum\n\
             \x20   - debug: {{msg: \"BIG {{{{ big.stdout | length }}}} {{{{ big.stdout_lines | length }}}} {{{{ big.msg }}}}\"}}\n\
             \x20   - debug: {{msg: \"MID {{{{ mid.stdout | length }}}} {{{{ mid.stdout_lines | length }}}} {{{{ mid.stdout | hash('sha1') == sum.stdout }}}} {{{{ mid.warnings | default([]) | length }}}}\"}}\n\
             \x20   - shell: yes | head -c 20M\n      register: short\n\
             \x20   - debug: {{msg: \"SHORT {{{{ short.stdout | length }}}} {{{{ short.stdout_lines | length }}}} {{{{ short.stdout_lines | last }}}} {{{{ short.msg }}}}\"}}\n\
             \x20   - command: echo after\n      register: after\n\
             \x20   - debug: {{msg: \"AFTER {{{{ after.stdout }}}}\"}}\n"
        ),
    );
    for transport in ["russh", "ssh"] {
        let out = run(&s, &["-c", transport]);
        out.assert_code(0);
        let messages = out.messages();
        let find = |prefix: &str| {
            messages
                .iter()
                .find(|m| m.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} message ({transport}):\n{}", out.stdout))
                .clone()
        };
        let (len, lines) = expected(10 * MIB);
        assert_eq!(
            find("BIG "),
            format!(
                "BIG {len} {lines} {NOTE}; stdout (the last {} bytes dropped)",
                10 * MIB
            ),
            "{transport}"
        );
        let (len, lines) = expected(3 * MIB);
        assert_eq!(
            find("MID "),
            format!("MID {len} {lines} True 0"),
            "{transport}"
        );
        // One-letter lines: the line cap (256 Ki lines) comes long before the 10 MiB.
        let lines = 1 << 18;
        assert_eq!(
            find("SHORT "),
            format!(
                "SHORT {} {lines} y {NOTE}; stdout (the last {} bytes dropped)",
                2 * lines - 1,
                20 * MIB - 2 * lines
            ),
            "{transport}"
        );
        assert_eq!(find("AFTER "), "AFTER after", "{transport}");
    }
}

#[test]
fn a_failing_command_s_big_output_over_ssh_still_fails_the_task_with_its_note() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - shell: (yes {LINE} | head -c 12M) >&2; exit 3\n      register: bad\n      ignore_errors: true\n\
             \x20   - debug: {{msg: \"BAD {{{{ bad.rc }}}} {{{{ bad.stderr | length }}}} {{{{ bad.msg }}}}\"}}\n"
        ),
    );
    let out = run(&s, &[]);
    out.assert_code(0);
    let bad = out
        .messages()
        .into_iter()
        .find(|m| m.starts_with("BAD "))
        .unwrap_or_else(|| panic!("no BAD message:\n{}", out.stdout));
    assert_eq!(
        bad,
        format!(
            "BAD 3 {} non-zero return code; {NOTE}; stderr (the last {} bytes dropped)",
            10 * MIB,
            2 * MIB
        )
    );
}

#[test]
fn a_command_filling_both_streams_keeps_half_of_each_over_every_transport() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - shell: yes {LINE} | head -c 20M; yes {LINE} | head -c 20M >&2\n      register: both\n\
             \x20   - debug: {{msg: \"BOTH {{{{ both.stdout | length }}}} {{{{ both.stdout_lines | length }}}} \
             {{{{ both.stderr | length }}}} {{{{ both.stderr_lines | length }}}} {{{{ both.stdout_lines[0] == both.stderr_lines[0] }}}} {{{{ both.msg }}}}\"}}\n\
             \x20   - shell: printf 'a\\rb\\r\\nc'\n      register: cr\n\
             \x20   - debug: {{msg: \"CR {{{{ cr.stdout_lines | to_json }}}}\"}}\n\
             \x20   - command: echo after\n      register: after\n\
             \x20   - debug: {{msg: \"AFTER {{{{ after.stdout_lines }}}}\"}}\n"
        ),
    );
    for transport in ["russh", "ssh", "local"] {
        let out = run(&s, &["-c", transport]);
        out.assert_code(0);
        let messages = out.messages();
        let find = |prefix: &str| {
            messages
                .iter()
                .find(|m| m.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} message ({transport}):\n{}", out.stdout))
                .clone()
        };
        // Both long: each keeps half of the 10 MiB.
        let (len, lines) = expected(5 * MIB);
        let dropped = 15 * MIB;
        assert_eq!(
            find("BOTH "),
            format!(
                "BOTH {len} {lines} {len} {lines} True {NOTE}; stdout (the last {dropped} bytes \
                 dropped), stderr (the last {dropped} bytes dropped)"
            ),
            "{transport}"
        );
        // Lines split as Python's splitlines() splits them, on the controller for every transport.
        assert_eq!(find("CR "), r#"CR ["a", "b", "c"]"#, "{transport}");
        assert_eq!(find("AFTER "), "AFTER ['after']", "{transport}");
    }
}
