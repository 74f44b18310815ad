//! Become as Ansible's connections do it: `raw` under sudo on the local connection (a sudo shim
//! stands in for sudo, so nothing on the controller changes: it prints noise, asks with the
//! prompt it was given, checks the password and runs the command), and what a become that
//! stalls over SSH leaves on a real test host (nothing), with OpenSSH and russh.

mod common;

use common::Scratch;
use common::hosts::test_hosts;

/// A stand-in for sudo: `-p PROMPT` is asked on stderr (as sudo -S does), the password must be
/// `right`, a wrong one is asked again (as sudo does); `-u USER` is ignored and the command after
/// it runs as we are. `--noise` prints noise first, `--bogus-prompt` asks with another prompt.
const SUDO_SHIM: &str = r#"#!/bin/bash
prompt=''; noise=''; bogus=''
while [ $# -gt 0 ]; do
  case "$1" in
    -p) prompt="$2"; shift 2 ;;
    -u) shift 2; break ;;
    --noise) noise=1; shift ;;
    --bogus-prompt) bogus=1; shift ;;
    *) shift ;;
  esac
done
[ -n "$noise" ] && { echo "stdout noise"; echo >&2 "stderr noise"; }
[ -n "$bogus" ] && prompt=BOGUSPROMPT
if [ -n "$prompt" ]; then
  for try in 1 2 3; do
    printf '%s' "$prompt" >&2
    IFS= read -r pw || exit 1
    [ "$pw" = right ] && break
    echo >&2 "Sorry, try again."
    [ $try = 3 ] && exit 1
  done
  [ -t 0 ] && echo >&2 "password read from a tty" || echo >&2 "password read from a pipe"
fi
exec "$@"
"#;

fn shim_scratch() -> Scratch {
    let s = Scratch::new();
    s.write("sudoshim", SUDO_SHIM);
    std::fs::set_permissions(
        s.path("sudoshim"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    s.write(
        "hosts",
        "testhost ansible_connection=local ansible_pipelining=yes\n",
    );
    s
}

fn run_tasks(s: &Scratch, tasks: &str) -> common::Run {
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: all
  gather_facts: no
  vars:
    ansible_become: true
    ansible_become_user: nobody
    ansible_become_exe: '@@/sudoshim'
    ansible_become_password: right
  tasks:
{tasks}"
        ),
    );
    s.settle(&["site.yml", "-i", "hosts"])
}

#[test]
fn raw_under_sudo_shows_the_preamble_only_when_strip_is_off() {
    let s = shim_scratch();
    let run = run_tasks(
        &s,
        "    - raw: echo ran
      vars:
        ansible_become_flags: -H -S -n --noise
        ansible_local_become_strip_preamble: false
      register: visible
    - raw: echo ran
      vars:
        ansible_become_flags: -H -S -n --noise
      register: stripped
    - debug: msg={{ visible.stdout | to_json }}
    - debug: msg={{ visible.stderr is search('stderr noise\\n\\[sudo via ansible, key=[a-z]{32}\\] password:') }}
    - debug: msg={{ stripped.stdout | to_json }}
    - debug: msg={{ stripped.stderr | to_json }}
",
    );
    run.assert_code(0);
    let msgs = run.messages();
    assert!(
        msgs[0].starts_with("\"stdout noise\\nBECOME-SUCCESS-") && msgs[0].ends_with("\\nran\\n\""),
        "{}",
        run.stdout
    );
    assert_eq!(msgs[1], "true", "{}", run.stdout);
    assert_eq!(msgs[2], "\"ran\\n\"", "{}", run.stdout);
    assert_eq!(
        msgs[3], "\"password read from a pipe\\n\"",
        "{}",
        run.stdout
    );
}

#[test]
fn without_pipelining_the_password_goes_to_a_pty() {
    let s = shim_scratch();
    let run = run_tasks(
        &s,
        "    - raw: echo ran
      vars: {ansible_pipelining: false}
      register: r
    - debug: msg={{ r.stdout | trim }}/{{ r.stderr | trim }}
",
    );
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["ran/password read from a tty"],
        "{}",
        run.stdout
    );
}

#[test]
fn become_failures_are_ansible_s() {
    let s = shim_scratch();
    let run = run_tasks(
        &s,
        "    - raw: echo hi
      vars: {ansible_become_password: wrong}
      ignore_errors: true
      register: wrong
    - raw: exit 99
      vars:
        ansible_become_flags: -H -S --bogus-prompt
        ansible_local_become_success_timeout: 1
      ignore_unreachable: true
      register: stalled
    - raw: exit 99
      vars: {ansible_become_exe: /bogus}
      ignore_errors: true
      register: gone
    - raw: sleep 30
      timeout: 1
      ignore_errors: true
      register: slow
    - debug:
        msg: '{{ wrong is failed }} {{ wrong.msg is contains ''Duplicate become password prompt encountered'' }}'
    - debug:
        msg: '{{ stalled is unreachable }} {{ stalled.rc is defined }} {{ stalled.msg is contains ''Timed out waiting for become success or become password prompt'' }} {{ stalled.msg is contains ''BOGUSPROMPT'' }}'
    - debug:
        msg: '{{ gone is failed }} {{ gone.msg is contains ''Premature end of stream waiting for become success'' }}'
    - debug:
        msg: '{{ slow is failed }} {{ slow.msg }}'
",
    );
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        [
            "True True",
            "True False True True",
            "True True",
            "True Timed out after 1 second"
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn a_become_that_stalls_over_ssh_leaves_nothing_running_on_the_host() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    // A user whose login shell takes long to start (become_flags -i reads .bash_profile).
    hosts.ssh(
        host,
        "id stalling >/dev/null 2>&1 || useradd -m -s /bin/bash stalling; \
         echo 'sleep 60' > ~stalling/.bash_profile",
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
      become_user: stalling
      become_flags: -i
      ignore_unreachable: true
      register: r
    - debug:
        msg: '{{{{ r is unreachable }}}}'
"
        ),
    );
    for transport in ["ssh", "russh"] {
        let run = s.settle(&["site.yml", "-i", "inv", "-c", transport]);
        run.assert_code(0);
        assert_eq!(run.messages(), ["true"], "{transport}: {}", run.stdout);
        let left = hosts.exec(host, "pgrep -u stalling -a || true");
        assert_eq!(left.trim(), "", "{transport}: left running: {left}");
    }
    hosts.ssh(host, "userdel -r stalling");
}

#[test]
fn a_password_logs_in_over_openssh_and_russh_and_a_wrong_one_is_unreachable() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    // Password logins are off on the test hosts: on for this test only (a drop-in read before
    // settle.conf, whose first value wins).
    hosts.exec(
        host,
        "id pwlogin >/dev/null 2>&1 || useradd -m -s /bin/sh pwlogin; \
         echo 'pwlogin:Secret-1' | chpasswd; \
         echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/00-password-test.conf; \
         systemctl reload ssh; sleep 1",
    );
    // Off again when the test ends, passed or not.
    struct Off<'a>(&'a common::hosts::TestHosts, &'a str);
    impl Drop for Off<'_> {
        fn drop(&mut self) {
            self.0.exec(
                self.1,
                "rm -f /etc/ssh/sshd_config.d/00-password-test.conf; systemctl reload ssh",
            );
        }
    }
    let _off = Off(hosts, host);
    let s = hosts.scratch();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id -un\n      register: r\n    - debug: msg={{ r.stdout }}\n",
    );
    let mut inventory = String::from("[testhosts]\n");
    for (name, port, address) in &hosts.hosts {
        if name == host {
            inventory.push_str(&format!(
                "{name} ansible_host={address} ansible_port={port}\n"
            ));
        }
    }
    inventory.push_str(&format!(
        "[testhosts:vars]\nansible_user=pwlogin\nansible_ssh_common_args=-o UserKnownHostsFile={}\n",
        hosts.known_hosts().display()
    ));
    s.write("pw", &inventory);
    for transport in ["ssh", "russh"] {
        // A control folder of its own for each run: no master of an earlier run is reused.
        let cp = Scratch::new();
        let env = [("ANSIBLE_SSH_CONTROL_PATH_DIR", cp.root())];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let wrong = s.settle_with_env(
            &[
                "site.yml",
                "-i",
                "pw",
                "-c",
                transport,
                "-e",
                "ansible_password=wrong",
            ],
            &env,
        );
        wrong.assert_code(4);
        assert!(
            wrong.stdout.contains("UNREACHABLE")
                && wrong.stdout.contains("Permission denied")
                // The password is tried once.
                && !wrong.stdout.contains("please try again"),
            "{transport}: {}",
            wrong.stdout
        );
        let right = s.settle_with_env(
            &[
                "site.yml",
                "-i",
                "pw",
                "-c",
                transport,
                "-e",
                "ansible_password=Secret-1",
                "-vvv",
            ],
            &env,
        );
        right.assert_code(0);
        assert!(
            right.messages().contains(&"pwlogin".to_string()),
            "{transport}: {}",
            right.stdout
        );
        if transport == "ssh" {
            assert!(right.stdout.contains("SSH: EXEC ssh "), "{}", right.stdout);
            assert!(!right.stdout.contains("Secret-1"), "{}", right.stdout);
        }
    }
}

#[test]
fn ssh_args_from_the_environment_send_smart_through_openssh() {
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: true\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "inv", "-c", "smart", "-vvv"],
        &[(
            "ANSIBLE_SSH_ARGS",
            "-o ControlMaster=auto -o ControlPersist=30s",
        )],
    );
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("using OpenSSH: the russh transport cannot honour ssh_args"),
        "{}",
        run.stdout
    );
    let run = s.settle(&["site.yml", "-i", "inv", "-c", "smart", "-vvv"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("using OpenSSH"), "{}", run.stdout);
}

#[test]
fn ansible_ssh_verbosity_shows_openssh_s_own_debug_lines() {
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - raw: whoami\n",
    );
    let cp = Scratch::new();
    let dir = cp.root();
    let quiet = s.settle_with_env(
        &["site.yml", "-i", "inv", "-c", "ssh", "-vvvvv"],
        &[("ANSIBLE_SSH_CONTROL_PATH_DIR", &dir)],
    );
    quiet.assert_code(0);
    assert!(!quiet.stdout.contains("debug1:"), "{}", quiet.stdout);
    let one = s.settle_with_env(
        &["site.yml", "-i", "inv", "-c", "ssh", "-vvvvv"],
        &[
            ("ANSIBLE_SSH_CONTROL_PATH_DIR", &dir),
            ("ANSIBLE_SSH_VERBOSITY", "1"),
        ],
    );
    one.assert_code(0);
    assert!(one.stdout.contains("debug1:"), "{}", one.stdout);
    assert!(!one.stdout.contains("debug2:"), "{}", one.stdout);
    let three = s.settle_with_env(
        &[
            "site.yml",
            "-i",
            "inv",
            "-c",
            "ssh",
            "-vvvvv",
            "-e",
            "ansible_ssh_verbosity=3",
        ],
        &[("ANSIBLE_SSH_CONTROL_PATH_DIR", &dir)],
    );
    three.assert_code(0);
    assert!(three.stdout.contains("debug3:"), "{}", three.stdout);
}

#[test]
fn raw_under_su_answers_its_localized_prompt() {
    let s = shim_scratch();
    // A stand-in for su: `su [FLAGS] USER -c COMMAND`, asking `Passwort:` on stderr.
    s.write(
        "fakesu",
        "#!/bin/bash\nwhile [ \"$1\" != -c ]; do shift; done\nprintf 'Passwort: ' >&2\nIFS= read -r pw || exit 1\n[ \"$pw\" = right ] || { echo >&2 'su: Authentication failure'; exit 1; }\nexec /bin/sh -c \"$2\"\n",
    );
    std::fs::set_permissions(
        s.path("fakesu"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let run = run_tasks(
        &s,
        "    - raw: echo ran as su
      vars:
        ansible_become_method: su
        ansible_become_exe: '@@/fakesu'
      register: r
    - debug: msg={{ r.stdout | trim }}
",
    );
    run.assert_code(0);
    assert_eq!(run.messages(), ["ran as su"], "{}", run.stdout);
}
