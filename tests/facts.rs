//! settle's `setup` gathers what Ansible 2.19's gathers on a Linux test host, key by key: the
//! real `ansible-playbook` and settle run the same play (setup with a few `gather_subset`s, a
//! `filter` and a `fact_path`, each result written to a JSON file on the controller) against
//! the same host, one right after the other, and every fact Ansible returns must be in
//! settle's with the same value.
//! The exceptions are short lists: facts that change between two runs (compared by shape) and
//! facts of the transport rather than the host. Skipped (with a note) when the real
//! ansible-core is not installed (tests/compat/install puts it in the compat cache).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::Scratch;
use common::hosts::test_hosts;
use serde_json::{Map, Value};

/// Facts whose value changes from one run to the next: only their shape is compared (same JSON
/// type, and for objects the same keys).
const CHANGING: &[&str] = &[
    "ansible_date_time",
    "ansible_loadavg",
    "ansible_memfree_mb",
    "ansible_memory_mb",
    "ansible_uptime_seconds",
];

/// Mount fields that move as files come and go.
const CHANGING_MOUNT_FIELDS: &[&str] = &[
    "size_available",
    "block_available",
    "block_used",
    "inode_available",
    "inode_used",
];

/// `ansible_env` variables the host gives every login alike; the others belong to the
/// transport (the ssh client's port, Ansible's pseudo-terminal and its `LANG`).
const HOST_ENV: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "USER"];

/// Facts Ansible gathers that settle does not yet (see modules/src/network_facts.rs).
/// `features`, `timestamping` and `hw_timestamp_filters` of an interface come from `ethtool`,
/// which the first test host does not have: tests/facts_ethtool.rs compares them on a host
/// that has it.
const NOT_GATHERED: &[&str] = &[];

/// The arguments of the play's setup tasks, in order (YAML flow mappings).
const CASES: &[&str] = &[
    "{gather_subset: all}",
    "{gather_subset: '!all'}",
    "{gather_subset: '!all,network'}",
    "{gather_subset: '!all,!min,hardware'}",
    "{gather_subset: '!all,virtual,!cmdline'}",
    "{filter: [ansible_default_ipv4, '*_mb', 'ansible_lo*', 'date*']}",
    "{gather_subset: '!all', fact_path: /tmp/settle-facts.d}",
];

/// Local facts for the `fact_path` case: an INI file and a JSON one.
const LOCAL_FACTS: &str = "mkdir -p /tmp/settle-facts.d && \
    printf '[section]\\nkey = value\\nnumber=3\\n' > /tmp/settle-facts.d/ini.fact && \
    printf '{\"list\": [1, \"two\"], \"nested\": {\"on\": true}}' > /tmp/settle-facts.d/json.fact";

/// The play: setup once per case, each result's facts written to `OUT/<n>.json`.
fn play(host: &str, cases: &[&str]) -> String {
    let mut text = format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n");
    for (n, args) in cases.iter().enumerate() {
        text.push_str(&format!(
            "    - setup: {args}\n      register: r{n}\n\
             \x20   - copy:\n        content: '{{{{ r{n}.ansible_facts | to_json }}}}'\n\
             \x20       dest: '{{{{ out }}}}/{n}.json'\n      delegate_to: localhost\n"
        ));
    }
    text
}

fn read_facts(dir: &Path, n: usize) -> Map<String, Value> {
    let text = std::fs::read_to_string(dir.join(format!("{n}.json")))
        .unwrap_or_else(|e| panic!("{}/{n}.json: {e}", dir.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(facts)) => facts,
        other => panic!("{}/{n}.json is not an object: {other:?}", dir.display()),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Mounts by mount point (Ansible lists them in the order its threads finish), without the
/// fields that change between runs.
fn mounts(v: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let mut m = m.as_object().cloned().unwrap_or_default();
            for field in CHANGING_MOUNT_FIELDS {
                if let Some(x) = m.get_mut(*field) {
                    *x = Value::from(settle_yaml::python_type(x));
                }
            }
            let mount = m.get("mount").and_then(Value::as_str).unwrap_or("").into();
            (mount, Value::Object(m))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What differs between Ansible's facts and settle's, one line per fact.
fn differences(ansible: &Map<String, Value>, settle: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, theirs) in ansible {
        if NOT_GATHERED.contains(&key.as_str()) {
            continue;
        }
        let Some(ours) = settle.get(key) else {
            out.push(format!("{key}: missing (Ansible: {theirs})"));
            continue;
        };
        let same = match key.as_str() {
            k if CHANGING.contains(&k) => {
                settle_yaml::python_type(theirs) == settle_yaml::python_type(ours)
                    && keys(theirs) == keys(ours)
            }
            "ansible_env" => HOST_ENV.iter().all(|v| theirs.get(v) == ours.get(v)),
            // Sets in Ansible: their order changes from run to run.
            "ansible_interfaces"
            | "ansible_virtualization_tech_guest"
            | "ansible_virtualization_tech_host" => {
                let sorted = |v: &Value| {
                    let mut names: Vec<String> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|n| n.to_string())
                        .collect();
                    names.sort();
                    names
                };
                sorted(theirs) == sorted(ours)
            }
            "ansible_mounts" => mounts(theirs) == mounts(ours),
            _ => theirs == ours,
        };
        if !same {
            out.push(format!("{key}:\n  Ansible: {theirs}\n  settle:  {ours}"));
        }
    }
    for key in settle.keys() {
        if !ansible.contains_key(key) {
            out.push(format!("{key}: settle has it, Ansible does not"));
        }
    }
    out
}

#[test]
fn setup_gathers_what_ansible_gathers_key_by_key() {
    compare_on_a_test_host("root", CASES);
}

#[test]
fn setup_gathers_what_ansible_gathers_for_a_user_who_is_not_root() {
    compare_on_a_test_host("deploy", &CASES[..1]);
}

/// Runs the setup cases with the real ansible-playbook, then with settle, logged in as `user`
/// on the first test host, and fails with every difference.
fn compare_on_a_test_host(user: &str, cases: &[&str]) {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = Scratch::new();
    s.write(
        "inv",
        &hosts.inventory(user, &["ansible_python_interpreter=/usr/bin/python3"], &[]),
    );
    s.write("facts.yml", &play(host, cases));
    if user == "root" {
        hosts.ssh(host, LOCAL_FACTS);
    }
    std::fs::create_dir_all(s.path("ansible")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(s.path("settle")).unwrap_or_else(|e| panic!("{e}"));

    let ansible_out = format!("out={}", s.path("ansible").display());
    s.ansible_playbook(
        &ansible_playbook,
        &["facts.yml", "-i", "inv", "-e", &ansible_out],
        &[("ANSIBLE_HOST_KEY_CHECKING", "1")],
    );
    let out_arg = format!("out={}", s.path("settle").display());
    s.settle(&["facts.yml", "-i", "inv", "-e", &out_arg])
        .assert_code(0);

    let mut report = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let ansible = read_facts(&s.path("ansible"), n);
        let settle = read_facts(&s.path("settle"), n);
        for line in differences(&ansible, &settle) {
            report.push(format!("[setup: {case}] {line}"));
        }
    }
    assert!(
        report.is_empty(),
        "settle's facts differ from Ansible's on {host} (as {user}):\n{}",
        report.join("\n")
    );
}

/// A network namespace with what the test hosts lack: a bridge with a secondary address, a
/// labelled one and one in another subnet, IPv6, default routes for both families, and a
/// second loopback address (no link-local one, which the kernel adds some time after the bridge
/// comes up, between one run and the next). Run by `unshare --net --mount`, with /sys mounted again so that
/// /sys/class/net shows the namespace's interfaces.
const NAMESPACE: &str = "set -e
mount -t sysfs sysfs /sys
ip link set lo up
ip link add br0 type bridge
ip link set br0 addrgenmode none
ip link set br0 up
ip addr add 10.9.0.5/24 dev br0
ip addr add 10.9.0.6/24 dev br0
ip addr add 10.9.0.7/24 dev br0 label br0:web
ip addr add 192.168.77.1/16 brd + dev br0
ip addr add 127.0.0.9/8 dev lo
ip -6 addr add fd01::5/64 dev br0 nodad
ip route add default via 10.9.0.1 dev br0 onlink
ip -6 route add default via fd01::1 dev br0 onlink
";

#[test]
fn network_facts_match_ansibles_with_secondaries_labels_and_ipv6() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let probe = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", "ip link add t0 type bridge"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot make a network namespace with a bridge here (needs root)");
        return;
    }
    let s = Scratch::new();
    s.write(
        "play.yml",
        "- hosts: localhost\n  connection: local\n  gather_facts: no\n  tasks:\n\
         \x20   - setup: {gather_subset: '!all,!min,network'}\n      register: r\n\
         \x20   - copy: {content: '{{ r.ansible_facts | to_json }}', dest: '{{ out }}'}\n",
    );
    let script = format!(
        "{NAMESPACE}\n\
         '{ansible}' -i localhost, -e ansible_python_interpreter=/usr/bin/python3 \
         -e out=@@/0.json play.yml > ansible.log 2>&1 || {{ cat ansible.log; exit 1; }}\n\
         mkdir -p settle && '{settle}' -i localhost, -e out=@@/settle/0.json play.yml \
         > settle.log 2>&1 || {{ cat settle.log; exit 1; }}\n",
        ansible = ansible_playbook.display(),
        settle = env!("CARGO_BIN_EXE_settle"),
    )
    .replace("@@", &s.root());
    let out = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .current_dir(s.path(""))
        .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
        .output()
        .unwrap_or_else(|e| panic!("run unshare: {e}"));
    assert!(
        out.status.success(),
        "the namespace's runs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ansible = read_facts(&s.path(""), 0);
    let settle = read_facts(&s.path("settle"), 0);
    assert!(
        ansible["ansible_br0_web"]["ipv4_secondaries"].is_array(),
        "the namespace has its labelled address: {ansible:?}"
    );
    let report = differences(&ansible, &settle);
    assert!(
        report.is_empty(),
        "settle's network facts differ from Ansible's:\n{}",
        report.join("\n")
    );
}
