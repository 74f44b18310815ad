//! Hosts reached through an Ansible connection plugin settle does not have itself (Python in a
//! playbook's `connection_plugins/`): their tasks run whole in ansible-core's executor on the
//! controller, which loads the plugin. Also the connection keywords settle reads for its own
//! transports: `remote_user`, and the Python a delegated module runs with.
//!
//! The local tests need ansible-core (tests/compat/install); the SSH ones the test hosts too.

mod common;

use common::Scratch;
use common::hosts::test_hosts;

/// A connection plugin that is ansible-core's local one under another name.
const WRAPPED_LOCAL: &str = r#"from __future__ import annotations

DOCUMENTATION = """
    connection: wrapped
    short_description: the local connection under another name
    description: [for settle's tests]
    author: settle
    extends_documentation_fragment:
        - connection_pipelining
"""

from ansible.plugins.connection.local import Connection as Local


class Connection(Local):
    transport = 'wrapped'
"#;

/// A connection plugin whose login always fails.
const REFUSING: &str = r#"from __future__ import annotations

DOCUMENTATION = """
    connection: refusing
    short_description: never connects
    description: [for settle's tests]
    author: settle
"""

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as Local


class Connection(Local):
    transport = 'refusing'

    def _connect(self):
        raise AnsibleConnectionFailure('refusing plugin says no')
"#;

/// ansible-core's ssh connection under another name (its DOCUMENTATION copied, as Ansible reads
/// a plugin's options from the file's own): it reaches a test host with the address, port,
/// user, key and ssh arguments settle gives it.
fn wrapped_ssh(python: &str) -> String {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import ansible.plugins.connection.ssh as m; print(m.__file__)",
        ])
        .output()
        .expect("run python");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let source = std::fs::read_to_string(&path).expect("read ssh.py");
    let begin = source
        .find("DOCUMENTATION = \"\"\"")
        .expect("ssh.py's DOCUMENTATION");
    let len = source[begin + 20..].find("\"\"\"").expect("its end") + 23;
    let doc = source[begin..begin + len].replacen("name: ssh", "name: wrapped_ssh", 1);
    format!(
        "from __future__ import annotations\n\n{doc}\n\n\
         from ansible.plugins.connection.ssh import Connection as Ssh\n\n\n\
         class Connection(Ssh):\n    transport = 'wrapped_ssh'\n"
    )
}

fn python_env(python: &str) -> [(&'static str, &str); 1] {
    [("SETTLE_ANSIBLE_PYTHON", python)]
}

#[test]
fn a_task_on_a_python_connection_plugins_host_runs_through_ansible_core() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write("connection_plugins/wrapped.py", WRAPPED_LOCAL);
    s.write(
        "inv",
        &format!("box ansible_connection=wrapped ansible_python_interpreter={python}\n"),
    );
    s.write(
        "site.yml",
        "\
- hosts: box
  gather_facts: true
  tasks:
    - command: echo through the plugin
      register: r
    - copy:
        content: hello
        dest: '@@/out.txt'
    - assert:
        that:
          - r.stdout == 'through the plugin'
          - r is changed
          - ansible_facts.system == 'Linux'
",
    );
    let run = s.settle_with_env(&["site.yml", "-i", "inv"], &python_env(&python));
    run.assert_code(0);
    assert_eq!(s.read("out.txt"), "hello");
    // ok: facts, command, copy, assert; changed: command and copy.
    assert_eq!(run.counts("box"), (4, 2, 0, 0, 0, 0), "{}", run.stdout);
    // Again: the copy is in place.
    let again = s.settle_with_env(&["site.yml", "-i", "inv"], &python_env(&python));
    assert_eq!(again.counts("box"), (4, 1, 0, 0, 0, 0), "{}", again.stdout);
    if let Some(ansible) = common::ansible_tool("ansible-playbook") {
        std::fs::remove_file(s.path("out.txt")).unwrap();
        let theirs = s.ansible_stdout(&ansible, &["site.yml", "-i", "inv"]);
        let recap = |out: &str| {
            out.lines()
                .find(|l| l.starts_with("box "))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert_eq!(recap(&theirs), recap(&run.stdout), "ansible:\n{theirs}");
    }
}

#[test]
fn a_connection_plugin_that_cannot_connect_makes_the_host_unreachable() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write("connection_plugins/refusing.py", REFUSING);
    s.write("inv", "box ansible_connection=refusing\n");
    s.write(
        "ignored.yml",
        "\
- hosts: box
  gather_facts: false
  tasks:
    - ping:
      ignore_unreachable: true
      register: r
    - debug:
        msg: '{{ r is unreachable }} {{ r.msg }}'
",
    );
    let run = s.settle_with_env(&["ignored.yml", "-i", "inv"], &python_env(&python));
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["True Task failed: refusing plugin says no"],
        "{}",
        run.stdout
    );
    // As Ansible counts an ignored unreachable: ok and ignored, not unreachable.
    assert_eq!(run.recap("box")["unreachable"], 0, "{}", run.stdout);
    assert_eq!(run.recap("box")["ignored"], 1, "{}", run.stdout);

    // Not ignored: the host is unreachable, facts included (exit status 4, as Ansible's).
    s.write(
        "plain.yml",
        "- hosts: box\n  gather_facts: true\n  tasks:\n    - ping:\n",
    );
    let run = s.settle_with_env(&["plain.yml", "-i", "inv"], &python_env(&python));
    run.assert_code(4);
    assert_eq!(run.recap("box")["unreachable"], 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("refusing plugin says no"),
        "{}",
        run.stdout
    );
}

#[test]
fn without_ansible_core_the_error_names_the_connection_plugin() {
    let s = Scratch::new();
    s.write("connection_plugins/wrapped.py", WRAPPED_LOCAL);
    s.write("inv", "box ansible_connection=wrapped\n");
    s.write(
        "site.yml",
        "- hosts: box\n  gather_facts: false\n  tasks:\n    - debug: msg=fine\n    - ping:\n",
    );
    // A Python without ansible-core.
    let run = s.settle_with_env(
        &["site.yml", "-i", "inv"],
        &[("SETTLE_ANSIBLE_PYTHON", "/bin/false")],
    );
    run.assert_code(2);
    // debug never connects: it runs as settle's own.
    assert_eq!(run.messages(), ["fine"], "{}", run.stdout);
    assert!(
        run.stdout.contains("the connection plugin 'wrapped'")
            && run.stdout.contains("connection_plugins/wrapped.py"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_delegated_module_runs_with_the_delegates_python() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    // Two names for the same Python: the module says which one ran it.
    std::os::unix::fs::symlink(&python, s.path("firstpython")).unwrap();
    std::os::unix::fs::symlink(&python, s.path("secondpython")).unwrap();
    s.write(
        "library/which_python.py",
        "#!/usr/bin/python\nimport json, sys\nprint(json.dumps({'python': sys.executable}))\n",
    );
    s.write(
        "inv",
        "one ansible_python_interpreter=@@/firstpython\ntwo ansible_python_interpreter=@@/secondpython\n\
         [all:vars]\nansible_connection=local\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: one
  gather_facts: false
  tasks:
    - which_python:
      register: here
    - which_python:
      delegate_to: two
      register: there
    - debug:
        msg: '{{ here.python | basename }} {{ there.python | basename }}'
",
    );
    let run = s.settle_with_env(&["site.yml", "-i", "inv"], &python_env(&python));
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["firstpython secondpython"],
        "{}",
        run.stdout
    );
}

#[test]
fn a_python_connection_plugin_reaches_a_test_host_over_ssh() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write("connection_plugins/wrapped_ssh.py", &wrapped_ssh(&python));
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: false
  vars:
    ansible_connection: wrapped_ssh
  tasks:
    - raw: hostname
      register: r
    - debug:
        msg: '{{{{ r.stdout | trim }}}}'
"
        ),
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "inv"],
        &[
            ("SETTLE_ANSIBLE_PYTHON", &python),
            ("ANSIBLE_HOST_KEY_CHECKING", "False"),
        ],
    );
    run.assert_code(0);
    let hostname = hosts.ssh(host, "hostname").trim().to_string();
    assert_eq!(run.messages(), [hostname], "{}", run.stdout);
}

#[test]
fn the_remote_user_keyword_is_the_login_user_below_ansible_user() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    // No ansible_user: the keyword decides.
    let inventory = hosts
        .inventory("root", &[], &[])
        .replace("ansible_user=root\n", "");
    s.write("inv", &inventory);
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: false
  remote_user: root
  tasks:
    # A task's `user:` is the module, not the play's old name for remote_user.
    - user: name=settle-h3-nobody state=absent
    - command: id -un
      register: who
    - debug:
        msg: '{{{{ who.stdout }}}}'
    - command: id -un
      remote_user: nosuchuser
      ignore_unreachable: true
      register: nobody
    - debug:
        msg: '{{{{ nobody is unreachable }}}}'
"
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["root", "true"], "{}", run.stdout);

    // ansible_user wins over the keyword.
    s.write("inv", &hosts.inventory("root", &[], &[]));
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: false\n  remote_user: nosuchuser\n  tasks:\n    - command: id -un\n      register: who\n    - debug:\n        msg: '{{{{ who.stdout }}}}'\n"
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["root"], "{}", run.stdout);
}

#[test]
fn a_delegated_task_sees_the_delegates_address_as_ansible_host() {
    let s = Scratch::new();
    s.write(
        "inv",
        "one\ntwo ansible_host=127.0.0.2\n[all:vars]\nansible_connection=local\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: one
  gather_facts: false
  tasks:
    - debug: msg='{{ ansible_host }}'
    - debug: msg='{{ ansible_host }}'
      delegate_to: two
    - set_fact: {a: '{{ ansible_host }}'}
      delegate_to: two
    - debug: msg='{{ a }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["one", "127.0.0.2", "127.0.0.2"],
        "{}",
        run.stdout
    );
    if let Some(ansible) = common::ansible_tool("ansible-playbook") {
        let theirs = s.ansible_stdout(&ansible, &["site.yml", "-i", "inv"]);
        let messages: Vec<&str> = theirs
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"msg\": "))
            .map(|m| m.trim_matches('"'))
            .collect();
        assert_eq!(messages, run.messages(), "ansible:\n{theirs}");
    }
}

#[test]
fn a_hosts_ansible_ssh_args_are_handed_to_openssh() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write("refuse.cfg", "Host *\n  ProxyCommand /bin/false\n");
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: false
  tasks:
    - ping:
    - meta: reset_connection
    - ping:
      vars:
        ansible_ssh_args: '-F {{{{ playbook_dir }}}}/refuse.cfg'
      ignore_unreachable: true
      register: r
    - debug:
        msg: '{{{{ r is unreachable }}}}'
"
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["true"], "{}", run.stdout);
}

#[test]
fn a_become_that_outlasts_the_ssh_timeout_is_unreachable_in_the_ssh_plugins_words() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    // A user whose login shell takes 5 seconds to start (become_flags -i reads .bash_profile).
    hosts.ssh(
        host,
        "id slowlogin >/dev/null 2>&1 || useradd -m -s /bin/bash slowlogin; \
         echo 'sleep 5' > ~slowlogin/.bash_profile",
    );
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: false
  vars:
    ansible_ssh_timeout: 1
  tasks:
    - command: whoami
      become: true
      become_user: slowlogin
      become_flags: -i
      ignore_unreachable: true
      register: r
    - debug:
        msg: '{{{{ r is unreachable }}}} {{{{ r.msg }}}}'
"
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    let messages = run.messages();
    assert!(
        messages.len() == 1
            && messages[0].starts_with(
                "True Task failed: Timeout (3s) waiting for privilege escalation prompt:"
            ),
        "{}",
        run.stdout
    );
}
