//! Facts a task's result carries beside its module's own: Ansible's Python interpreter
//! discovery (`ansible_python_interpreter: auto`, `auto_silent`, `auto_legacy`, a fallback list
//! that finds nothing), compared on a real test host with what the real `ansible-playbook`
//! reports for the same play. Skipped (with a note) when the real ansible-core is not
//! installed (tests/compat/install puts it in the compat cache).

mod common;

use common::Scratch;
use common::hosts::test_hosts;
use serde_json::Value;

/// Each case clears the facts, runs `ping` twice with the interpreter setting given, and keeps
/// what Ansible's discovery leaves in the two results: the fact, the warnings, the
/// deprecations.
const CASES: &[&str] = &[
    "{ansible_python_interpreter: auto}",
    "{ansible_python_interpreter: auto_silent}",
    "{ansible_python_interpreter: auto_legacy, ansible_deprecation_warnings: false}",
    "{ansible_python_interpreter: auto, ansible_interpreter_python_fallback: [/usr/bin/does_not_exist]}",
    "{ansible_python_interpreter: auto_silent, ansible_interpreter_python_fallback: [/usr/bin/does_not_exist]}",
    "{ansible_python_interpreter: auto, ansible_interpreter_python_fallback: [\"'i_have_a_single_quote\"]}",
    "{ansible_python_interpreter: /usr/bin/python3}",
];

fn play(host: &str) -> String {
    let mut text = format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n");
    for (n, vars) in CASES.iter().enumerate() {
        text.push_str(&format!(
            "    - meta: clear_facts\n\
             \x20   - ping:\n      vars: {vars}\n      register: first{n}\n\
             \x20   - ping:\n      vars: {vars}\n      register: second{n}\n\
             \x20   - copy:\n        content: \"{{{{ {{'first': first{n} | dict2items | selectattr('key', 'in', keys) | items2dict, \
             'second': second{n} | dict2items | selectattr('key', 'in', keys) | items2dict, \
             'fact': discovered_interpreter_python | default('none')}} | to_json }}}}\"\n\
             \x20       dest: '{{{{ out }}}}/{n}.json'\n      delegate_to: localhost\n\
             \x20     vars:\n        keys: [ansible_facts, warnings, deprecations]\n"
        ));
    }
    text
}

/// Ansible's deprecation entries carry a date and collection settle does not pin: compare
/// their messages.
fn normalized(mut v: Value) -> Value {
    for which in ["first", "second"] {
        if let Some(Value::Array(list)) = v.pointer_mut(&format!("/{which}/deprecations")) {
            for d in list.iter_mut() {
                let msg = d.get("msg").cloned().unwrap_or(Value::Null);
                *d = msg;
            }
        }
    }
    v
}

#[test]
fn interpreter_discovery_reports_what_ansibles_reports() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = Scratch::new();
    s.write("inv", &hosts.inventory("root", &[], &[]));
    s.write("discovery.yml", &play(host));
    for side in ["ansible", "settle"] {
        std::fs::create_dir_all(s.path(side)).unwrap_or_else(|e| panic!("{e}"));
    }
    let ansible_out = format!("out={}", s.path("ansible").display());
    s.ansible_playbook(
        &ansible_playbook,
        &["discovery.yml", "-i", "inv", "-e", &ansible_out],
        &[("ANSIBLE_HOST_KEY_CHECKING", "1")],
    );
    let settle_out = format!("out={}", s.path("settle").display());
    s.settle(&["discovery.yml", "-i", "inv", "-e", &settle_out])
        .assert_code(0);
    let mut report = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let read = |side: &str| -> Value {
            let text = s.read(&format!("{side}/{n}.json"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{side}/{n}.json: {e}"))
        };
        let (ansible, settle) = (normalized(read("ansible")), normalized(read("settle")));
        if ansible != settle {
            report.push(format!(
                "{case}:\n  Ansible: {ansible}\n  settle:  {settle}"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "settle's interpreter discovery differs from Ansible's on {host}:\n{}",
        report.join("\n")
    );
}

/// A module of the playbook's own that returns the facts it is given.
const ECHO_FACTS: &str = "#!/usr/bin/python3
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec=dict(facts=dict(type='dict', default={})))
module.exit_json(changed=False, ansible_facts=module.params['facts'])
";

#[test]
fn a_module_cannot_set_the_discovered_interpreter_or_an_interpreter_variable() {
    // The playbook's module is Ansible's kind: packed with ansible-core's module_utils.
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = Scratch::new();
    s.write("inv", &hosts.python_inventory());
    s.write("library/echo_facts.py", ECHO_FACTS);
    s.write(
        "play.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - echo_facts:\n        facts:\n\
             \x20         ansible_discovered_interpreter_bogus: from module\n\
             \x20         discovered_interpreter_bogus: from module\n\
             \x20         ansible_bogus_interpreter: from module\n\
             \x20         test_fact: from module\n      register: r\n\
             \x20   - assert:\n        that:\n\
             \x20         - test_fact == 'from module'\n\
             \x20         - r.ansible_facts.test_fact == 'from module'\n\
             \x20         - r.ansible_facts.discovered_interpreter_bogus is not defined\n\
             \x20         - discovered_interpreter_bogus | default('nope') == 'nope'\n\
             \x20         - ansible_bogus_interpreter | default('nope') == 'nope'\n\
             \x20         - ansible_facts['ansible_bogus_interpreter'] | default('nope') == 'nope'\n\
             \x20         - ansible_facts['discovered_interpreter_bogus'] | default('nope') == 'nope'\n"
        ),
    );
    s.settle_with_env(
        &["play.yml", "-i", "inv"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    )
    .assert_code(0);
}

/// Fact modules of the playbook's own, in shell: two that each wait for the other (they only
/// finish when run side by side), one too slow for a `gather_timeout` of 1, and a network OS's
/// facts module that reports the `gather_subset` it was given.
const FACT_MODULES: &[(&str, &str)] = &[
    (
        "library/facts_a",
        "#!/bin/sh\ntouch /tmp/settle-gf-a\nn=0\nuntil [ -e /tmp/settle-gf-b ] || [ $n -gt 100 ]; do sleep 0.1; n=$((n+1)); done\n\
         echo '{\"changed\": false, \"ansible_facts\": {\"a\": 1, \"both\": [\"a\"], \"saw_b\": '$([ -e /tmp/settle-gf-b ] && echo true || echo false)'}}'\n",
    ),
    (
        "library/facts_b",
        "#!/bin/sh\ntouch /tmp/settle-gf-b\nn=0\nuntil [ -e /tmp/settle-gf-a ] || [ $n -gt 100 ]; do sleep 0.1; n=$((n+1)); done\n\
         echo '{\"changed\": false, \"ansible_facts\": {\"b\": 2, \"both\": [\"b\"]}}'\n",
    ),
    (
        "library/slow_facts",
        "#!/bin/sh\nsleep 4\necho '{\"changed\": false, \"ansible_facts\": {\"slow\": true}}'\n",
    ),
    (
        "collections/ansible_collections/cisco/ios/plugins/modules/ios_facts.py",
        "#!/bin/sh\n. \"$1\"\necho \"{\\\"changed\\\": false, \\\"ansible_facts\\\": {\\\"gather_subset\\\": \\\"${gather_subset:-!config}\\\"}}\"\n",
    ),
];

#[test]
fn gather_facts_runs_the_fact_modules_ansible_facts_modules_names() {
    // A collection's module is found as ansible-core finds it.
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = Scratch::new();
    s.write("inv", &hosts.inventory("root", &[], &[]));
    for (path, text) in FACT_MODULES {
        s.write(path, text);
    }
    s.write(
        "play.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: '{{{{ item }}}}', state: absent}}\n      loop: [/tmp/settle-gf-a, /tmp/settle-gf-b]\n\
             \x20   - name: two modules side by side, their facts merged\n\
             \x20     gather_facts: {{parallel: true}}\n\
             \x20     vars: {{ansible_facts_modules: [facts_a, facts_b]}}\n      register: both\n\
             \x20   - assert:\n        that:\n\
             \x20         - both.ansible_facts.a == 1 and both.ansible_facts.b == 2\n\
             \x20         - both.ansible_facts.saw_b\n\
             \x20         - both.ansible_facts.both == ['a', 'b'] or both.ansible_facts.both == ['b', 'a']\n\
             \x20         - ansible_facts.b == 2\n\
             \x20   - name: a module past gather_timeout fails, named\n\
             \x20     gather_facts: {{parallel: true, gather_timeout: 1}}\n\
             \x20     vars: {{ansible_facts_modules: [slow_facts]}}\n      register: slow\n      ignore_errors: true\n\
             \x20   - assert:\n        that:\n\
             \x20         - slow is failed\n\
             \x20         - \"slow.msg == 'The following modules failed to execute: slow_facts.'\"\n\
             \x20         - slow.failed_modules.slow_facts.msg == 'Timeout exceeded'\n\
             \x20         - slow.warnings == ['Not passing timeout(1) to slow_facts']\n\
             \x20   - name: smart picks the network OS's module, without the task's subset\n\
             \x20     gather_facts: {{gather_subset: min}}\n\
             \x20     vars: {{ansible_network_os: cisco.ios.ios}}\n      register: net\n\
             \x20   - assert:\n        that:\n\
             \x20         - ansible_facts.gather_subset == '!config'\n\
             \x20         - net.warnings == ['Not passing subset(min) to cisco.ios.ios_facts']\n\
             \x20   - name: but with its module_defaults\n\
             \x20     gather_facts:\n\
             \x20     vars: {{ansible_network_os: cisco.ios.ios}}\n\
             \x20     module_defaults: {{cisco.ios.ios_facts: {{gather_subset: min}}}}\n\
             \x20   - assert:\n        that: ansible_facts.gather_subset == 'min'\n"
        ),
    );
    s.settle_with_env(
        &["play.yml", "-i", "inv"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    )
    .assert_code(0);
}

/// A module of the playbook's own that says the temporary folder it was given.
const SAY_TMPDIR: &str = "#!/usr/bin/python3
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec={})
module.exit_json(changed=False, tmpdir=module.tmpdir)
";

#[test]
fn ansibles_modules_run_in_ansible_remote_tmp_and_leave_nothing_there() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = Scratch::new();
    s.write("inv", &hosts.python_inventory());
    s.write("library/say_tmpdir.py", SAY_TMPDIR);
    s.write(
        "play.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  vars:\n    ansible_remote_tmp: /tmp/settle-remote-tmp\n  tasks:\n\
             \x20   - file: {{path: /tmp/settle-remote-tmp, state: absent}}\n\
             \x20   - say_tmpdir:\n      register: r\n\
             \x20   - find: {{paths: /tmp/settle-remote-tmp, file_type: any, recurse: true}}\n      register: left\n\
             \x20   - assert:\n        that:\n\
             \x20         - r.tmpdir.startswith('/tmp/settle-remote-tmp/ansible-tmp-')\n\
             \x20         - left.files == []\n"
        ),
    );
    s.settle_with_env(
        &["play.yml", "-i", "inv"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    )
    .assert_code(0);
}
