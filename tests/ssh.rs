//! Remote execution on real test hosts (systemd-nspawn containers with sshd): the same playbooks
//! over `local`, `ssh` and `russh` give the same results; become; unreachable hosts; host keys;
//! a run killed half-way leaves nothing half-written. What settle did is checked with plain ssh.

mod common;

use common::Scratch;
use common::hosts::test_hosts;

/// A playbook that exercises every module of the core, rooted at `root`.
const SITE: &str = "\
- hosts: all
  vars:
    names: [one, two]
  tasks:
    - file: {path: '{{ root }}', state: directory, mode: '0755'}
    - file: {path: '{{ root }}/{{ item }}', state: directory}
      loop: '{{ names }}'
    - copy: {src: motd, dest: '{{ root }}/motd', mode: '0640'}
      notify: note
    - copy: {content: \"port={{ port }}\\n\", dest: '{{ root }}/inline.conf'}
    - template: {src: app.j2, dest: '{{ root }}/app.conf'}
    - file: {src: '{{ root }}/app.conf', path: '{{ root }}/current', state: link}
    - command: touch {{ root }}/initialised creates={{ root }}/initialised
    - shell: cat {{ root }}/app.conf | wc -l
      register: lines
      changed_when: false
    - stat: {path: '{{ root }}/motd'}
      register: st
    - assert:
        that:
          - lines.stdout | int == 4
          - st.stat.mode == '0640'
        quiet: true
  handlers:
    - name: note
      copy: {content: \"notified\\n\", dest: '{{ root }}/handler-ran'}
";

fn site(scratch: &Scratch) {
    scratch.write("site.yml", SITE);
    scratch.write("files/motd", "managed by settle\n");
    scratch.write("templates/app.j2", "host={{ inventory_hostname }}\nport={{ port }}\n{% for n in names %}\n{{ n }}\n{% endfor %}\n");
}

#[test]
fn same_playbook_same_recap_over_local_ssh_and_russh() {
    let hosts = test_hosts();
    let s = Scratch::new();
    site(&s);
    s.write("local", "localhost ansible_connection=local\n");
    s.write("remote", &hosts.inventory("root", &["port=8080"], &[]));
    let local = s.settle(&[
        "site.yml",
        "-i",
        "local",
        "-e",
        &format!("root={}/tree port=8080", s.root()),
    ]);
    local.assert_code(0);
    let expected = local.recap("localhost");
    for (transport, root) in [("ssh", "/srv/same-ssh"), ("russh", "/srv/same-russh")] {
        for host in hosts.names() {
            hosts.ssh(host, &format!("rm -rf {root}"));
        }
        let run = s.settle(&[
            "site.yml",
            "-i",
            "remote",
            "-c",
            transport,
            "-e",
            &format!("root={root}"),
        ]);
        run.assert_code(0);
        for host in hosts.names() {
            assert_eq!(
                run.recap(host),
                expected,
                "{transport} on {host}:\n{}",
                run.stdout
            );
            assert_eq!(
                hosts.ssh(host, &format!("cat {root}/app.conf")),
                format!("host={host}\nport=8080\none\ntwo\n")
            );
            assert_eq!(
                hosts.ssh(
                    host,
                    &format!(
                        "stat -c %a {root}/motd; readlink {root}/current; cat {root}/handler-ran"
                    )
                ),
                format!("640\n{root}/app.conf\nnotified\n")
            );
        }
        let again = s.settle(&[
            "site.yml",
            "-i",
            "remote",
            "-c",
            transport,
            "-e",
            &format!("root={root}"),
        ]);
        again.assert_code(0).assert_unchanged(&hosts.names());
    }
}

#[test]
fn facts_come_from_the_host() {
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write("facts.yml", "- hosts: all\n  tasks:\n    - debug: msg=\"{{ ansible_hostname }} {{ ansible_os_family }} {{ ansible_distribution_major_version }} {{ ansible_service_mgr }} {{ ansible_user_id }}\"\n");
    let run = s.settle(&["facts.yml", "-i", "inv"]);
    run.assert_code(0);
    let mut msgs = run.messages();
    msgs.sort();
    let mut expected: Vec<String> = hosts
        .names()
        .iter()
        .map(|h| format!("{h} Debian 12 systemd root"))
        .collect();
    expected.sort();
    assert_eq!(msgs, expected);
}

#[test]
fn become_to_other_users_through_sudo() {
    let hosts = test_hosts();
    let s = Scratch::new();
    let host = hosts.names()[0];
    s.write("deploy", &hosts.inventory("deploy", &[], &[]));
    s.write(
        "become.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: id -un
      register: plain
      changed_when: false
    - command: id -un
      become: true
      register: as_root
      changed_when: false
    - command: id -un
      become: true
      become_user: alice
      register: as_alice
      changed_when: false
    - file: {path: /tmp/alice-owned, state: touch, mode: '0600'}
      become: true
      become_user: alice
    - debug: msg=\"{{ plain.stdout }} {{ as_root.stdout }} {{ as_alice.stdout }}\"
",
    );
    for transport in ["ssh", "russh"] {
        let run = s.settle(&["become.yml", "-i", "deploy", "-l", host, "-c", transport]);
        run.assert_code(0);
        assert_eq!(
            run.messages(),
            ["deploy root alice"],
            "{transport}: {}",
            run.stdout
        );
        assert_eq!(
            hosts.ssh(host, "stat -c %U:%a /tmp/alice-owned"),
            "alice:600\n"
        );
    }
}

#[test]
fn become_password_is_fed_to_sudo_and_never_shown() {
    let hosts = test_hosts();
    let s = Scratch::new();
    let host = hosts.names()[1];
    s.write("play.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      become: true\n      register: r\n      changed_when: false\n    - debug: var=r.stdout\n");
    s.write(
        "good",
        &hosts.inventory("pwuser", &["ansible_become_password=sudo-secret"], &[]),
    );
    s.write(
        "bad",
        &hosts.inventory("pwuser", &["ansible_become_password=wrong-guess"], &[]),
    );
    s.write("none", &hosts.inventory("pwuser", &[], &[]));
    for transport in ["ssh", "russh"] {
        let good = s.settle(&["play.yml", "-i", "good", "-l", host, "-c", transport]);
        good.assert_code(0);
        assert!(
            good.stdout.contains("\"r.stdout\": \"root\""),
            "{transport}: {}",
            good.stdout
        );
        assert!(!good.stdout.contains("sudo-secret") && !good.stderr.contains("sudo-secret"));
        let bad = s.settle(&["play.yml", "-i", "bad", "-l", host, "-c", transport]);
        bad.assert_code(2);
        assert!(
            bad.stdout.contains("the password was not accepted"),
            "{transport}: {}",
            bad.stdout
        );
        assert!(!bad.stdout.contains("wrong-guess"));
        let none = s.settle(&["play.yml", "-i", "none", "-l", host, "-c", transport]);
        none.assert_code(2);
        assert!(
            none.stdout.contains("needs a password"),
            "{transport}: {}",
            none.stdout
        );
    }
}

#[test]
fn unreachable_host_is_counted_and_the_others_go_on() {
    let hosts = test_hosts();
    let s = Scratch::new();
    s.write(
        "inv",
        &hosts.inventory(
            "root",
            &[],
            &["closed ansible_host=127.0.0.1 ansible_port=9"],
        ),
    );
    s.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n    - debug: msg=after\n",
    );
    for transport in ["ssh", "russh"] {
        let run = s.settle(&["ping.yml", "-i", "inv", "-c", transport, "-T", "3"]);
        run.assert_code(4);
        assert_eq!(
            run.recap("closed")["unreachable"],
            1,
            "{transport}: {}",
            run.stdout
        );
        assert_eq!(
            run.messages().len(),
            hosts.hosts.len(),
            "{transport}: the other hosts go on"
        );
    }
}

#[test]
fn unknown_host_keys_are_refused_by_default() {
    let hosts = test_hosts();
    let s = Scratch::new();
    s.write("empty_known_hosts", "");
    let inventory = hosts.inventory("root", &[], &[]).replace(
        &hosts.known_hosts().display().to_string(),
        &s.path("empty_known_hosts").display().to_string(),
    );
    s.write("inv", &inventory);
    s.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    );
    let host = hosts.names()[0];
    for transport in ["ssh", "russh"] {
        let run = s.settle(&["ping.yml", "-i", "inv", "-l", host, "-c", transport]);
        run.assert_code(4);
        assert!(
            run.stdout
                .to_lowercase()
                .contains("host key verification failed"),
            "{transport}: {}",
            run.stdout
        );
        let accepted = s.settle_with_env(
            &["ping.yml", "-i", "inv", "-l", host, "-c", transport],
            &[("SETTLE_HOST_KEY_CHECKING", "accept-new")],
        );
        accepted.assert_code(0);
        assert!(
            std::fs::read_to_string(s.path("empty_known_hosts"))
                .unwrap()
                .contains("ssh-ed25519"),
            "{transport} learned the key"
        );
        std::fs::write(s.path("empty_known_hosts"), "").unwrap();
    }
}

#[test]
fn a_run_killed_half_way_leaves_no_half_written_file() {
    let hosts = test_hosts();
    let s = Scratch::new();
    let host = hosts.names()[2];
    // 64 MiB: long enough on the wire to be cut in the middle.
    let big: String = "0123456789abcdef".repeat(4 * 1024 * 1024);
    s.write("files/big", &big);
    s.write("inv", &hosts.inventory("root", &[], &[]));
    s.write("big.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {src: big, dest: /srv/killed/big}\n");
    hosts.ssh(host, "mkdir -p /srv/killed && printf old > /srv/killed/big");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["big.yml", "-i", "inv", "-l", host])
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let content_size = hosts.ssh(host, "stat -c %s /srv/killed/big");
    assert!(
        content_size == "3\n" || content_size == format!("{}\n", big.len()),
        "half-written: {content_size}"
    );
    assert_eq!(
        hosts.ssh(host, "ls -A /srv/killed"),
        "big\n",
        "no temporary files left behind"
    );
}

#[test]
fn async_jobs_run_on_the_host_over_ssh() {
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - shell: sleep 1; hostname
      async: 10
      poll: 1
      register: polled
    - shell: sleep 1; echo late > /tmp/async-late
      async: 30
      poll: 0
      register: started
    - async_status: jid={{ started.ansible_job_id }}
      register: job
      until: job is finished
      retries: 10
      delay: 1
    - assert:
        that:
          - polled is finished and polled.stdout == inventory_hostname
          - started is not finished
          - job is finished and job.rc == 0
          - job.results_file == '/root/.ansible_async/' ~ started.ansible_job_id
    - copy: {content: '{{ started.ansible_job_id }}', dest: /tmp/async-jid}
",
    );
    for host in hosts.names() {
        hosts.ssh(host, "rm -f /tmp/async-late /tmp/async-jid");
    }
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    for host in hosts.names() {
        // The job ran on the host, and its file stays there, as Ansible leaves it, until cleanup.
        assert_eq!(hosts.ssh(host, "cat /tmp/async-late"), "late\n");
        let file = hosts.ssh(host, "cat /root/.ansible_async/$(cat /tmp/async-jid)");
        assert!(file.contains("\"rc\":0"), "{host}: {file}");
    }
}

#[test]
fn ansibles_own_modules_run_on_the_host_over_ssh() {
    let python = "/var/cache/settle-compat/venv/bin/python";
    if !std::path::Path::new(python).exists() {
        eprintln!("skipped: no ansible-core at {python} (tests/compat/install makes it)");
        return;
    }
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write(
        "library/where.py",
        "#!/usr/bin/python\nimport socket, sys\nfrom ansible.module_utils.basic import AnsibleModule\nm = AnsibleModule(argument_spec=dict(path=dict(type='path', required=True)), supports_check_mode=True)\nif not m.check_mode:\n    open(m.params['path'], 'w').write(socket.gethostname())\nm.exit_json(changed=True, python=sys.executable)\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - where: {path: /tmp/ansible-module-ran}
      register: where
    - assert:
        that: [where is changed, where.python == '/usr/bin/python3']
",
    );
    for host in hosts.names() {
        hosts.ssh(host, "rm -f /tmp/ansible-module-ran");
    }
    let run = s.settle_with_env(
        &["site.yml", "-i", "inv"],
        &[("SETTLE_ANSIBLE_PYTHON", python)],
    );
    run.assert_code(0);
    for host in hosts.names() {
        assert_eq!(hosts.ssh(host, "cat /tmp/ansible-module-ran"), *host);
    }
}

/// The pid of the master behind a control socket, as `ssh -O check` reports it (`None`: no
/// master answers there).
fn master_pid(socket: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("ssh")
        .args(["-O", "check", "-S"])
        .arg(socket)
        .arg("unused")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let pid = text.split("pid=").nth(1)?.split(')').next()?.to_string();
    out.status.success().then_some(pid)
}

#[test]
fn a_second_run_reuses_the_ssh_masters_of_the_first() {
    let hosts = test_hosts();
    let s = hosts.scratch();
    s.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    );
    let cp = s.path("cp");
    let env = [("ANSIBLE_SSH_CONTROL_PATH_DIR", cp.to_str().unwrap())];
    let sockets = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&cp)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        found.retain(|p| p.extension().is_none());
        found.sort();
        found
    };
    s.settle_with_env(&["ping.yml", "-i", "inv", "-c", "ssh"], &env)
        .assert_code(0);
    let first: Vec<_> = sockets().iter().map(|p| master_pid(p)).collect();
    assert_eq!(first.len(), hosts.hosts.len(), "one master per host");
    assert!(first.iter().all(Option::is_some), "masters outlive the run");

    s.settle_with_env(&["ping.yml", "-i", "inv", "-c", "ssh"], &env)
        .assert_code(0);
    let second: Vec<_> = sockets().iter().map(|p| master_pid(p)).collect();
    assert_eq!(second, first, "the second run started no new master");

    // A master killed without cleaning up leaves its socket behind; it is replaced silently.
    let stale = &sockets()[0];
    let pid = first[0].clone().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(stale.exists() && master_pid(stale).is_none());
    s.settle_with_env(&["ping.yml", "-i", "inv", "-c", "ssh"], &env)
        .assert_code(0);
    let third = master_pid(stale);
    assert!(third.is_some() && third != first[0], "a new master");

    for socket in sockets() {
        let _ = std::process::Command::new("ssh")
            .args(["-O", "exit", "-S"])
            .arg(&socket)
            .arg("unused")
            .output();
    }

    // ssh_args without ControlPersist: the masters end with the run, as before.
    std::fs::remove_dir_all(&cp).unwrap();
    s.settle_with_env(
        &["ping.yml", "-i", "inv", "-c", "ssh"],
        &[
            env[0],
            ("ANSIBLE_SSH_ARGS", "-o ControlPersist=no -o Compression=no"),
        ],
    )
    .assert_code(0);
    assert!(sockets().is_empty(), "{:?}", sockets());
}

#[test]
fn russh_reads_the_ssh_config_as_openssh_does() {
    let hosts = test_hosts();
    let s = Scratch::new();
    let (_, port1, address1) = &hosts.hosts[0];
    let (_, port2, address2) = &hosts.hosts[1];
    // Only names in the inventory: where, as whom and with which key come from the file; the
    // second host is reached through the first (ProxyJump).
    let config = |jump: &str, extra: &str| {
        format!(
            "Host first\n  HostName {address1}\n  Port {port1}\nHost second\n  HostName {address2}\n  Port {port2}\n  ProxyJump {jump}\n{extra}Host *\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  SendEnv LANG\n",
            hosts.key().display(),
            hosts.known_hosts().display()
        )
    };
    s.write("config", &config("first", ""));
    s.write(
        "inv",
        &format!(
            "first expected={}\nsecond expected={}\n[all:vars]\nansible_ssh_common_args=-F @@/config\n",
            hosts.hosts[0].0, hosts.hosts[1].0
        ),
    );
    s.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: hostname\n      register: h\n    - assert: {that: h.stdout == expected}\n",
    );
    for transport in ["russh", "ssh", "smart"] {
        let run = s.settle(&["ping.yml", "-i", "inv", "-c", transport]);
        run.assert_code(0);
    }

    // The jump is really taken: through a closed port, the second host is unreachable.
    s.write("config", &config(&format!("root@{address1}:9"), ""));
    let run = s.settle(&["ping.yml", "-i", "inv", "-c", "russh"]);
    run.assert_code(4);
    assert_eq!(run.recap("second")["unreachable"], 1, "{}", run.stdout);

    // An option russh cannot honour: -c russh says so, the default goes through OpenSSH.
    s.write(
        "config",
        &config("first", "Host first second\n  Ciphers aes256-ctr\n"),
    );
    let run = s.settle(&["ping.yml", "-i", "inv", "-c", "russh"]);
    run.assert_code(2);
    assert!(
        run.stdout.contains("cannot honour Ciphers"),
        "{}",
        run.stdout
    );
    let run = s.settle(&["ping.yml", "-i", "inv", "-c", "smart", "-vvv"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("using OpenSSH: the russh transport cannot honour Ciphers"),
        "{}",
        run.stdout
    );
}
