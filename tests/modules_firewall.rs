//! `iptables` and `community.general.ufw`, proven in the four steps of tests/common/scenario.rs
//! on hosts with networks of their own (`tests/hosts/up --private-network`): a firewall there
//! filters only that host's `lo`, never this machine's. What the hosts' netfilter holds is read
//! from outside too (tests/hosts/exec, no SSH, no settle).
//!
//! Private hosts reach no mirror, so iptables and ufw come in as files: `apt-get` on this
//! machine (Debian 12, as the hosts) downloads what a host lacks, judged by the host's own dpkg
//! status, and settle copies the .debs over and installs them with `apt: deb=`.

mod common;

use std::process::Command;

use common::firewall::hosts_with_tools as hosts;
use common::scenario::{Scenario, prove};

#[test]
fn iptables_rules_appended_inserted_and_restored_after_drift() {
    let hosts = hosts();
    let host = hosts.names()[0];
    prove(
        hosts,
        Scenario {
            host,
            reset: "iptables -F INPUT; ip6tables -F INPUT",
            tasks: "    - iptables: {chain: INPUT, protocol: tcp, destination_port: 8080, ctstate: [NEW], jump: ACCEPT, comment: web in}\n    \
                    - ansible.builtin.iptables: {chain: INPUT, action: insert, rule_num: 1, source: 10.9.0.0/16, jump: DROP}\n    \
                    - iptables: {chain: INPUT, ip_version: ipv6, protocol: tcp, destination_port: 9, jump: REJECT, reject_with: tcp-reset}\n    \
                    - iptables: {chain: INPUT, protocol: udp, destination_port: 9, jump: DROP, state: absent}\n",
            verify: "iptables -S INPUT; ip6tables -S INPUT",
            expected: "-P INPUT ACCEPT\n\
                       -A INPUT -s 10.9.0.0/16 -j DROP\n\
                       -A INPUT -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -m comment --comment \"web in\" -j ACCEPT\n\
                       -P INPUT ACCEPT\n\
                       -A INPUT -p tcp -m tcp --dport 9 -j REJECT --reject-with tcp-reset\n",
            drift: "iptables -D INPUT -p tcp --dport 8080 -m conntrack --ctstate NEW -m comment --comment 'web in' -j ACCEPT",
            diff_shows: "rule: (absent) → -A INPUT -p tcp -j ACCEPT --destination-port 8080 -m conntrack --ctstate NEW -m comment --comment web in",
        },
    );
    // The rules are the kernel's, in the host's own network namespace.
    let seen = hosts.exec(host, "iptables -S INPUT");
    assert!(seen.contains("--dport 8080"), "{seen}");
    assert!(seen.contains("-s 10.9.0.0/16 -j DROP"), "{seen}");
}

#[test]
fn iptables_policy_and_a_chain_of_ones_own() {
    let hosts = hosts();
    let host = hosts.names()[0];
    prove(
        hosts,
        Scenario {
            host,
            reset: "iptables -P FORWARD ACCEPT; iptables -F settle-in 2>/dev/null; iptables -X settle-in 2>/dev/null; true",
            tasks: "    - iptables: {chain: FORWARD, policy: DROP}\n    \
                    - iptables: {chain: OUTPUT, policy: ACCEPT}\n    \
                    - iptables: {chain: settle-in, chain_management: true}\n    \
                    - iptables: {chain: settle-in, protocol: tcp, destination_ports: ['80', '443'], jump: ACCEPT}\n",
            verify: "iptables -S FORWARD; iptables -S settle-in",
            expected: "-P FORWARD DROP\n-N settle-in\n-A settle-in -p tcp -m multiport --dports 80,443 -j ACCEPT\n",
            drift: "iptables -P FORWARD ACCEPT",
            diff_shows: "policy: ACCEPT → DROP",
        },
    );
    assert_eq!(hosts.exec(host, "iptables -S FORWARD"), "-P FORWARD DROP\n");
}

#[test]
fn iptables_check_mode_changes_no_rule() {
    let hosts = hosts();
    let host = hosts.names()[0];
    let _turn = common::scenario::TURN
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    hosts.ssh(host, "iptables -F OUTPUT; iptables -P OUTPUT ACCEPT");
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    \
             - iptables: {{chain: OUTPUT, protocol: tcp, destination_port: 25, jump: REJECT}}\n    \
             - iptables: {{chain: OUTPUT, policy: DROP}}\n    \
             - iptables: {{chain: OUTPUT, flush: true}}\n"
        ),
    );
    let before = hosts.exec(host, "iptables -S");
    let check = s.settle(&["site.yml", "-i", "inv", "--check"]);
    check.assert_code(0);
    assert_eq!(check.recap(host)["changed"], 2, "{}", check.stdout);
    assert_eq!(hosts.exec(host, "iptables -S"), before);
}

#[test]
fn ufw_enabled_with_ssh_allowed_then_a_rule_restored_after_drift() {
    let hosts = hosts();
    let host = hosts.names()[1];
    prove(
        hosts,
        Scenario {
            host,
            // Back to a disabled ufw that allows everything in, its backups gone.
            reset: "ufw --force reset >/dev/null; rm -f /etc/ufw/*.rules.2*; ufw default allow incoming >/dev/null; ufw logging low >/dev/null",
            // SSH comes in on port 22 (over the host's lo, which ufw always lets through):
            // allowed before ufw is enabled all the same, as on a real machine.
            tasks: "    - community.general.ufw: {rule: allow, port: '22', proto: tcp}\n    \
                    - ufw: {state: enabled, policy: deny}\n    \
                    - ufw: {rule: allow, port: '80', proto: tcp, src: 10.0.0.0/8, comment: web}\n    \
                    - ufw: {rule: deny, port: '8080', delete: true}\n    \
                    - ufw: {logging: medium}\n",
            verify: "ufw status verbose | head -3; grep -h '^### tuple' /etc/ufw/user.rules /etc/ufw/user6.rules",
            expected: "Status: active\n\
                       Logging: on (medium)\n\
                       Default: deny (incoming), allow (outgoing), disabled (routed)\n\
                       ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n\
                       ### tuple ### allow tcp 80 0.0.0.0/0 any 10.0.0.0/8 in comment=776562\n\
                       ### tuple ### allow tcp 22 ::/0 any ::/0 in\n",
            drift: "ufw --force delete 2 >/dev/null",
            diff_shows: "+### tuple ### allow tcp 80 0.0.0.0/0 any 10.0.0.0/8 in comment=776562",
        },
    );
    let seen = hosts.exec(host, "iptables -S ufw-user-input");
    assert!(
        seen.contains("-A ufw-user-input -s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j ACCEPT"),
        "{seen}"
    );
    assert!(seen.contains("--dport 22 -j ACCEPT"), "{seen}");
    assert!(
        hosts
            .exec(host, "iptables -S INPUT")
            .contains("-P INPUT DROP"),
        "ufw's default deny is the INPUT policy"
    );
}

/// settle's rules are the ones Ansible's own module would write, word for word: each finds the
/// other's rules present and changes nothing.
#[test]
fn iptables_rules_agree_with_ansibles_module() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let hosts = hosts();
    let host = hosts.names()[0];
    let _turn = common::scenario::TURN
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    \
             - iptables: {{chain: OUTPUT, protocol: tcp, destination_port: 7070, ctstate: [NEW], jump: ACCEPT, source: '!10.1.0.0/16', limit: 5/sec, comment: both agree}}\n      register: r\n    \
             - iptables: {{chain: OUTPUT, log_prefix: 'out: ', log_level: info}}\n    \
             - copy: {{content: '{{{{ r.rule }}}}', dest: /root/rule.txt}}\n"
        ),
    );
    let ansible = |s: &common::Scratch| {
        let out = Command::new(&ansible_playbook)
            .args(["site.yml", "-i", "inv"])
            .current_dir(s.dir.path())
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
            .output()
            .expect("run ansible-playbook");
        common::Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    };
    let changed = |run: &common::Run| {
        run.assert_code(0);
        run.recap(host)["changed"]
    };
    hosts.ssh(host, "iptables -F OUTPUT; rm -f /root/rule.txt");
    assert_eq!(changed(&s.settle(&["site.yml", "-i", "inv"])), 3);
    let settles_rule = hosts.ssh(host, "cat /root/rule.txt");
    assert_eq!(changed(&ansible(&s)), 0, "Ansible finds settle's rules");
    hosts.ssh(host, "iptables -F OUTPUT; rm -f /root/rule.txt");
    assert_eq!(changed(&ansible(&s)), 3);
    assert_eq!(
        hosts.ssh(host, "cat /root/rule.txt"),
        settles_rule,
        "the rule result"
    );
    assert_eq!(
        changed(&s.settle(&["site.yml", "-i", "inv"])),
        0,
        "settle finds Ansible's"
    );
    hosts.ssh(host, "iptables -F OUTPUT");
}
