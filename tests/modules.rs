//! Every module scenario proven on a real test host, in four steps:
//! 1. apply on the host: changed, and the host is in the wanted state (checked with plain ssh);
//! 2. apply again: changed=0;
//! 3. drift the host by hand, then `--check --diff`: exactly that drift is reported, with a
//!    readable diff, and the host is untouched (a snapshot of files, accounts, packages (dpkg
//!    and rpm) and units);
//! 4. apply: exactly that drift is fixed.

mod common;

use common::Scratch;
use common::hosts::{TestHosts, test_hosts};
use common::scenario::{SNAPSHOT, Scenario, TURN, changed, prove, read_only, run};

#[test]
fn file_directory_owner_and_mode() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/m-file",
            tasks: "    - file: {path: /srv/m-file/data, state: directory, owner: deploy, group: deploy, mode: '0750'}\n    - file: {path: /srv/m-file/link, src: /srv/m-file/data, state: link}\n    - file: {path: /srv/m-file/stamp, state: touch, modification_time: '202202081414.00', access_time: preserve}\n",
            verify: "stat -c '%U:%G %a' /srv/m-file/data; readlink /srv/m-file/link; date -d @$(stat -c %Y /srv/m-file/stamp) +%Y%m%d%H%M.%S",
            expected: "deploy:deploy 750\n/srv/m-file/data\n202202081414.00\n",
            drift: "chmod 0700 /srv/m-file/data",
            diff_shows: "-    \"mode\": \"0700\",\n+    \"mode\": \"0750\",",
        },
    );
}

#[test]
fn copy_content_and_src() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/m-copy",
            tasks: "    - file: {path: /srv/m-copy, state: directory}\n    - copy: {src: hello.txt, dest: /srv/m-copy/hello.txt, mode: '0644'}\n    - copy: {content: \"a=1\\n\", dest: /srv/m-copy/a.conf}\n",
            verify: "cat /srv/m-copy/hello.txt /srv/m-copy/a.conf; stat -c %a /srv/m-copy/hello.txt",
            expected: "hello from the controller\na=1\n644\n",
            drift: "echo edited > /srv/m-copy/hello.txt",
            diff_shows: "-edited\n+hello from the controller",
        },
    );
}

#[test]
fn template_renders_on_the_controller() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -f /srv/m-template.conf",
            tasks: "    - template: {src: conf.j2, dest: /srv/m-template.conf, mode: '0600', owner: alice}\n",
            verify: "cat /srv/m-template.conf; stat -c '%U %a' /srv/m-template.conf",
            expected: &format!("name={host}\nlevel=3\nalice 600\n"),
            drift: "sed -i s/level=3/level=9/ /srv/m-template.conf",
            diff_shows: "-level=9\n+level=3",
        },
    );
}

#[test]
fn lineinfile_and_blockinfile() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[1],
        reset: "rm -f /srv/m-lines.conf",
        tasks: "    - copy: {content: \"# settings\\nPort 22\\n\", dest: /srv/m-lines.conf, force: no}
    - lineinfile: {path: /srv/m-lines.conf, regexp: '^Port ', line: Port 2222}
    - lineinfile: {path: /srv/m-lines.conf, line: PermitRootLogin no, insertafter: '^# settings'}
    - blockinfile: {path: /srv/m-lines.conf, block: \"Match User deploy\\n  X11Forwarding no\"}
",
        verify: "cat /srv/m-lines.conf",
        expected: "# settings\nPermitRootLogin no\nPort 2222\n# BEGIN ANSIBLE MANAGED BLOCK\nMatch User deploy\n  X11Forwarding no\n# END ANSIBLE MANAGED BLOCK\n",
        drift: "sed -i 's/Port 2222/Port 2200/' /srv/m-lines.conf",
        diff_shows: "-Port 2200\n+Port 2222",
    });
}

#[test]
fn user_and_group() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[2],
        reset: "userdel -r m-web 2>/dev/null; groupdel m-ops 2>/dev/null; true",
        tasks: "    - group: {name: m-ops, gid: 2600}
    - user: {name: m-web, uid: 2500, group: m-ops, groups: [sudo], shell: /bin/bash, comment: Web app, home: /home/m-web}
",
        verify: "getent passwd m-web; id -Gn m-web; getent group m-ops",
        expected: "m-web:x:2500:2600:Web app:/home/m-web:/bin/bash\nm-ops sudo\nm-ops:x:2600:\n",
        drift: "usermod -s /bin/sh m-web",
        diff_shows: "shell: /bin/sh → /bin/bash",
    });
}

#[test]
fn user_absent_and_group_drift() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "useradd -M m-gone 2>/dev/null; groupdel m-team 2>/dev/null; true",
            tasks: "    - user: {name: m-gone, state: absent, remove: yes}\n    - group: {name: m-team, gid: 2700}\n",
            verify: "getent passwd m-gone || echo no m-gone; getent group m-team",
            expected: "no m-gone\nm-team:x:2700:\n",
            drift: "useradd -M m-gone",
            diff_shows: "state: present → absent",
        },
    );
}

#[test]
fn apt_installs_all_missing_packages_at_once() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q tree jq >/dev/null 2>&1; true",
            tasks: "    - apt: {name: [tree, jq], state: present}\n",
            verify: "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' tree jq",
            expected: "jq ii \ntree ii \n",
            drift: "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q tree >/dev/null 2>&1",
            diff_shows: "package tree: absent → present",
        },
    );
}

/// A local apt repository on the host offering `m-dummy` 2.0, with 1.0 installed: everything
/// else upgradable is held, so `upgrade` touches only the test's package.
const APT_UPGRADE_RESET: &str = r#"set -e
export DEBIAN_FRONTEND=noninteractive
r=/srv/m-apt; rm -rf $r /etc/apt/sources.list.d/m-apt.list; mkdir -p $r/pkg/DEBIAN $r/repo
for v in 1.0 2.0; do
  printf 'Package: m-dummy\nVersion: %s\nArchitecture: all\nMaintainer: settle <t@settle>\nDescription: settle test\n' $v > $r/pkg/DEBIAN/control
  dpkg-deb -b $r/pkg $r/m-dummy_${v}_all.deb >/dev/null
done
cp $r/m-dummy_2.0_all.deb $r/repo/
f=m-dummy_2.0_all.deb
printf 'Package: m-dummy\nVersion: 2.0\nArchitecture: all\nMaintainer: settle <t@settle>\nFilename: ./%s\nSize: %s\nSHA256: %s\nDescription: settle test\n\n' $f $(stat -c %s $r/repo/$f) $(sha256sum $r/repo/$f | cut -d' ' -f1) > $r/repo/Packages
echo 'deb [trusted=yes] file:/srv/m-apt/repo ./' > /etc/apt/sources.list.d/m-apt.list
apt-get update -q -o Dir::Etc::sourcelist=sources.list.d/m-apt.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/dev/null
apt-mark hold $(apt-get -s upgrade | awk '/^Inst/ && $2 != "m-dummy" {print $2}') >/dev/null 2>&1 || true
dpkg -i $r/m-dummy_1.0_all.deb >/dev/null
touch /var/cache/apt/archives/m-stale_1.0_all.deb"#;

#[test]
fn apt_upgrade_clean_and_policy_rc_d() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: APT_UPGRADE_RESET,
            tasks: "    - apt: {upgrade: dist, clean: yes, policy_rc_d: 101}\n",
            verify: "dpkg-query -W -f '${Version}\\n' m-dummy; ls /var/cache/apt/archives/*.deb 2>/dev/null | wc -l; test -e /usr/sbin/policy-rc.d && echo left || echo gone",
            expected: "2.0\n0\ngone\n",
            drift: "dpkg -i /srv/m-apt/m-dummy_1.0_all.deb >/dev/null",
            diff_shows: "upgrade: ",
        },
    );
    // only_upgrade leaves a package that is not installed alone (in turn with the other
    // scenarios: they use dpkg on the same host).
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    let host = hosts.names()[0];
    s.write(
        "site.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - apt: {{name: m-dummy, state: latest, only_upgrade: yes}}\n"),
    );
    hosts.ssh(
        host,
        "DEBIAN_FRONTEND=noninteractive dpkg -r m-dummy >/dev/null",
    );
    let only = run(&s, &[]);
    only.assert_code(0);
    assert_eq!(changed(&only, host), 0, "{}", only.stdout);
    assert_eq!(
        hosts.ssh(
            host,
            "dpkg -s m-dummy >/dev/null 2>&1 && echo installed || echo absent"
        ),
        "absent\n"
    );
    hosts.ssh(host, "apt-mark unhold $(apt-mark showhold) >/dev/null 2>&1; rm -f /etc/apt/sources.list.d/m-apt.list; true");
}

/// dnf has no RPM-based host here (no Fedora or RHEL mirror is reachable), so its scenarios run
/// Debian's own dnf and rpm on a Debian test host, with real RPMs built on the host and served
/// from a local repository (tests/fixtures/rpm-repo.sh).
fn rpm_repository(packages: &str) -> String {
    format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnf rpm createrepo-c >/dev/null 2>&1; \
         for p in m-hello m-extra; do rpm -e --allmatches $p >/dev/null 2>&1; done; rm -rf /srv/m-rpm /opt/m-rpm /var/cache/dnf; \
         sh -s /srv/m-rpm {packages} <<'SCRIPT'\n{}\nSCRIPT",
        include_str!("fixtures/rpm-repo.sh")
    )
}

#[test]
fn dnf_installs_all_missing_packages_at_once() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: &rpm_repository("m-hello:1.0 m-extra:1.0"),
            tasks: "    - dnf: {name: [m-hello, m-extra], state: present, allow_downgrade: true}\n",
            verify: "rpm -q --qf '%{NAME} %{VERSION}\\n' m-hello m-extra; cat /opt/m-rpm/m-extra",
            expected: "m-hello 1.0\nm-extra 1.0\nm-extra 1.0\n",
            drift: "rpm -e m-extra",
            diff_shows: "package m-extra: absent → present",
        },
    );
}

#[test]
fn package_with_dnf_keeps_the_latest_version() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: &rpm_repository("m-hello:1.0 m-hello:1.1"),
            tasks: "    - package: {name: m-hello, state: latest, use: dnf}\n",
            verify: "rpm -q --qf '%{VERSION}\\n' m-hello; cat /opt/m-rpm/m-hello",
            expected: "1.1\nm-hello 1.1\n",
            drift: "rpm -U --oldpackage /srv/m-rpm/repo/m-hello-1.0-1.noarch.rpm",
            diff_shows: "package m-hello: 1.0-1 → 1.1-1",
        },
    );
}

#[test]
fn systemd_unit_enabled_and_started() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "systemctl disable --now m-sleeper 2>/dev/null; rm -f /etc/systemd/system/m-sleeper.service; systemctl daemon-reload",
            tasks: "    - copy:
        dest: /etc/systemd/system/m-sleeper.service
        content: |
          [Unit]
          Description=a test service
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
    - systemd: {name: m-sleeper, state: started, enabled: yes, daemon_reload: yes}
",
            verify: "systemctl is-active m-sleeper; systemctl is-enabled m-sleeper",
            expected: "active\nenabled\n",
            drift: "systemctl stop m-sleeper",
            diff_shows: "state: inactive → started",
        },
    );
}

#[test]
fn command_with_creates() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "rm -f /srv/m-marker",
            tasks: "    - command: touch /srv/m-marker creates=/srv/m-marker\n",
            verify: "ls /srv/m-marker",
            expected: "/srv/m-marker\n",
            drift: "rm /srv/m-marker",
            diff_shows: "changed: [",
        },
    );
}

#[test]
fn a_changed_unit_file_is_reloaded_before_it_is_started() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    let play = |word: &str| {
        format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - copy:\n        dest: /etc/systemd/system/m-echo.service\n        content: |\n          [Service]\n          Type=oneshot\n          RemainAfterExit=yes\n          ExecStart=/bin/sh -c 'echo {word} > /srv/m-echo'\n    - systemd: {{name: m-echo, state: restarted}}\n"
        )
    };
    s.write("site.yml", &play("first"));
    run(&s, &[]).assert_code(0);
    s.write("site.yml", &play("second"));
    run(&s, &[]).assert_code(0);
    assert_eq!(hosts.ssh(host, "cat /srv/m-echo"), "second\n");
}

#[test]
fn bad_arguments_name_the_task_the_argument_and_what_is_allowed() {
    let hosts = test_hosts();
    let s = Scratch::new();
    let host = hosts.names()[0];
    s.write("inv", &hosts.inventory("root", &[], &[]));
    let cases = [
        ("user: {name: x, uid: abc}", "argument \"uid\""),
        (
            "systemd: {name: ssh, state: runing}",
            "unknown variant `runing`, expected one of `started`, `stopped`, `restarted`, `reloaded`",
        ),
        ("lineinfile: {line: x}", "missing field `path`"),
        (
            "copy: {dest: /tmp/x, content: a, remote_src: yes, src: /etc/hostname}",
            "src and content are mutually exclusive",
        ),
        (
            "apt: {name: tree, state: sideways}",
            "state \"sideways\" is not one of present, absent, latest",
        ),
        (
            "dnf: {name: tree, state: sideways}",
            "state \"sideways\" is not one of present, installed, latest, absent, removed",
        ),
    ];
    for (task, expected) in cases {
        s.write(
            "bad.yml",
            &format!(
                "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - name: Bad one\n      {task}\n"
            ),
        );
        let run = s.settle(&["bad.yml", "-i", "inv"]);
        run.assert_code(2);
        let fatal = run
            .stdout
            .lines()
            .find(|l| l.starts_with("fatal:"))
            .unwrap_or_else(|| panic!("{task}: {}", run.stdout));
        let result: serde_json::Value =
            serde_json::from_str(fatal.split_once(" => ").unwrap().1).unwrap();
        let msg = result["msg"].as_str().unwrap();
        assert!(msg.contains(expected), "{task}: {msg}");
        assert!(
            msg.contains("\"Bad one\"") && msg.contains("bad.yml:4:7"),
            "{task} names the task: {msg}"
        );
    }
    // A package manager the package action cannot find: Ansible's own words, as its action
    // plugin says them (no task suffix).
    s.write(
        "bad.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - package: {{name: tree, use: pkgng}}\n"),
    );
    let run = s.settle(&["bad.yml", "-i", "inv"]);
    run.assert_code(2);
    assert!(
        run.stdout
            .contains("Could not find a matching action for the \\\"pkgng\\\" package manager."),
        "{}",
        run.stdout
    );
}

#[test]
fn backup_module_archives_only_when_the_source_changed() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[2],
        reset: "rm -rf /srv/m-bk",
        tasks: "    - file: {path: /srv/m-bk/src, state: directory}
    - copy: {content: \"precious\\n\", dest: /srv/m-bk/src/data.txt}
    - backup: {src: /srv/m-bk/src, dest: /srv/m-bk/dest, keep: 3, owner: deploy, mode: '0640', metrics_file: /srv/m-bk/backup.prom, report: /srv/m-bk/report.json}
",
        verify: "cd /srv/m-bk/dest && sha256sum --quiet -c *.sha256 && echo verified && tar -xzOf $(ls backup-*.tar.gz | tail -1) ./data.txt \
                 && stat -c '%U %a' $(ls backup-*.tar.gz | tail -1) && grep -c '^settle_backup' /srv/m-bk/backup.prom",
        expected: "verified\nprecious\ndeploy 640\n4\n",
        drift: "rm /srv/m-bk/dest/$(ls /srv/m-bk/dest | grep 'tar.gz$' | tail -1)",
        diff_shows: "archive: ",
    });
}

#[test]
fn backup_module_keeps_the_newest_and_verifies_them() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let s = hosts.scratch();
    hosts.ssh(host, "rm -rf /srv/m-keep && mkdir -p /srv/m-keep/src");
    s.write(
        "tools.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - apt: {{name: zstd}}\n"),
    );
    s.settle(&["tools.yml", "-i", "inv"]).assert_code(0);
    s.write("site.yml", &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - backup: {{src: /srv/m-keep/src, dest: /srv/m-keep/dest, keep: 2, compression: zstd}}\n"));
    s.write("verify.yml", &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - backup: {{dest: /srv/m-keep/dest, state: verified}}\n"));
    for round in 1..=3 {
        hosts.ssh(host, &format!("echo {round} > /srv/m-keep/src/round"));
        let run = s.settle(&["site.yml", "-i", "inv"]);
        run.assert_code(0);
        assert_eq!(run.recap(host)["changed"], 1, "{}", run.stdout);
    }
    assert_eq!(
        hosts.ssh(host, "ls /srv/m-keep/dest | grep -c 'tar.zst$'"),
        "2\n"
    );
    assert_eq!(
        hosts.ssh(
            host,
            "cd /srv/m-keep/dest && zstd -dc $(ls *.tar.zst | tail -1) | tar -xO ./round"
        ),
        "3\n"
    );
    s.settle(&["verify.yml", "-i", "inv"]).assert_code(0);
    hosts.ssh(
        host,
        "cd /srv/m-keep/dest && printf x >> $(ls *.tar.zst | head -1)",
    );
    let bad = s.settle(&["verify.yml", "-i", "inv"]);
    bad.assert_code(2);
    assert!(
        bad.stdout
            .contains("checksum mismatch in /srv/m-keep/dest: backup-"),
        "{}",
        bad.stdout
    );
}

#[test]
fn package_and_service_on_an_apt_and_systemd_host() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cron cron-daemon-common >/dev/null 2>&1; true",
            tasks: "    - package: {name: cron, state: present}\n    - service: {name: cron, state: started, enabled: yes}\n",
            verify: "dpkg-query -W -f '${db:Status-Abbrev}\\n' cron; systemctl is-active cron; systemctl is-enabled cron",
            expected: "ii \nactive\nenabled\n",
            drift: "systemctl disable --now cron 2>/dev/null",
            diff_shows: "enabled: false → true",
        },
    );
}

#[test]
fn user_password_and_lock() {
    let hosts = test_hosts();
    // The hash of "secret" (SHA-512 crypt, as `mkpasswd -m sha-512` gives).
    let hash = "$6$settle$ce.RgdXqCillLmAN7r9EsTA.pgM0A4vBCbgPO7OE8oGasUsH2A5CM6j6MLQL3qXBv1f68w0Qlu4Jfc6KKVrAZ.";
    let tasks = format!(
        "    - user: {{name: m-pw, password: '{hash}', password_lock: no, expires: 4102444800, shell: /bin/bash}}\n"
    );
    let expected = format!("{hash}:47482\n");
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "userdel -r m-pw 2>/dev/null; true",
            tasks: &tasks,
            verify: "getent shadow m-pw | cut -d: -f2,8",
            expected: &expected,
            drift: "usermod -L m-pw",
            diff_shows: "password_lock: true → false",
        },
    );
}

#[test]
fn user_ssh_key_skeleton_and_password_ageing() {
    let hosts = test_hosts();
    let tasks = "    - user: {name: m-key, shell: /bin/bash, skeleton: /etc/m-skel, password_expire_max: 90, password_expire_min: 1, password_expire_warn: 7, password_expire_account_disable: 30, generate_ssh_key: yes, ssh_key_type: ed25519, ssh_key_comment: m-key@settle}\n";
    let verify = "getent shadow m-key | cut -d: -f4-7; stat -c '%U %a' /home/m-key/.ssh /home/m-key/.ssh/id_ed25519 /home/m-key/.ssh/id_ed25519.pub; cut -d' ' -f1,3 /home/m-key/.ssh/id_ed25519.pub; cat /home/m-key/from-skel";
    let expected =
        "1:90:7:30\nm-key 700\nm-key 600\nm-key 644\nssh-ed25519 m-key@settle\nskeleton\n";
    let reset = "userdel -r m-key 2>/dev/null; mkdir -p /etc/m-skel && echo skeleton > /etc/m-skel/from-skel";
    // A drift of the ageing, then of the key: a key that went missing is made again; one that
    // exists is kept (no `force`).
    for (drift, diff_shows) in [
        ("chage -M 30 m-key", "password_expire_max: 30 → 90"),
        (
            "rm /home/m-key/.ssh/id_ed25519 /home/m-key/.ssh/id_ed25519.pub",
            "/home/m-key/.ssh/id_ed25519",
        ),
    ] {
        prove(
            hosts,
            Scenario {
                host: hosts.names()[0],
                reset,
                tasks,
                verify,
                expected,
                drift,
                diff_shows,
            },
        );
    }
}

#[test]
fn read_only_modules_change_nothing_and_report_what_they_saw() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    let (_, port, address) = hosts.hosts.iter().find(|(n, ..)| n == host).unwrap();
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  tasks:
    - ping:
      register: p
    - stat: {{path: /etc/hostname, checksum_algorithm: sha256}}
      register: st
    - wait_for: {{host: {address}, port: {port}, timeout: 5}}
    - wait_for: {{path: /etc/hostname, search_regex: '{host}', timeout: 5}}
    - wait_for: {{port: 1, state: stopped, timeout: 5}}
    - assert:
        that:
          - p.ping == 'pong'
          - st.stat.exists and st.stat.isreg and st.stat.pw_name == 'root'
          - st.stat.checksum | length == 64
          - ansible_facts.hostname == '{host}'
"
        ),
    );
    let run = s.settle(&["site.yml", "-i", "inv", "--check"]);
    run.assert_code(0);
    assert_eq!(run.recap(host)["changed"], 0);
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(run.recap(host)["changed"], 0);
    s.write("slow.yml", &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - wait_for: {{path: /nonexistent, timeout: 1}}\n"));
    let slow = s.settle(&["slow.yml", "-i", "inv"]);
    slow.assert_code(2);
    assert!(
        slow.stdout
            .contains("Timeout when waiting for file /nonexistent"),
        "{}",
        slow.stdout
    );
}

#[test]
fn replace_with_backreferences_between_markers() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[0],
        reset: "rm -f /srv/m-replace.conf",
        tasks: "    - copy: {content: \"Listen 80\\n[app]\\nListen 80\\nhost = a.example\\n[end]\\n\", dest: /srv/m-replace.conf, force: no}
    - ansible.builtin.replace: {path: /srv/m-replace.conf, regexp: '^(Listen) 80$', replace: '\\1 8080', after: '\\[app\\]', before: '\\[end\\]'}
    - replace: {path: /srv/m-replace.conf, regexp: '^host = (?P<h>\\w+)\\.example$', replace: 'host = \\g<h>.example.org', mode: '0640'}
",
        verify: "cat /srv/m-replace.conf; stat -c %a /srv/m-replace.conf",
        expected: "Listen 80\n[app]\nListen 8080\nhost = a.example.org\n[end]\n640\n",
        drift: "sed -i '3s/Listen 8080/Listen 80/' /srv/m-replace.conf",
        diff_shows: "-Listen 80\n+Listen 8080",
    });
}

#[test]
fn find_and_slurp_read_the_host() {
    let hosts = test_hosts();
    read_only(
        hosts,
        "rm -rf /srv/m-find; mkdir -p /srv/m-find/sub/deep /srv/m-find/.cache; \
         printf 'key=1\\nhello world\\n' > /srv/m-find/a.conf; echo x > /srv/m-find/sub/b.log; \
         echo hello > /srv/m-find/sub/deep/c.conf; echo h > /srv/m-find/.hidden.conf; \
         touch -d '3 days ago' /srv/m-find/sub/b.log",
        "    - find: {paths: /srv/m-find, patterns: '*.conf', recurse: yes}
      register: confs
    - ansible.builtin.find: {paths: [/srv/m-find, /srv/m-none], contains: 'hel+o', recurse: yes, depth: 2, hidden: yes, get_checksum: yes}
      register: hello
    - find: {paths: /srv/m-find, file_type: directory, recurse: yes, use_regex: yes, patterns: '^d', excludes: 'x'}
      register: dirs
    - find: {paths: /srv/m-find, recurse: yes, age: 2d, size: '-1k', patterns: '*.log,*.conf'}
      register: old
    - slurp: {src: /srv/m-find/a.conf}
      register: conf
    - assert:
        that:
          - confs.files | map(attribute='path') | sort == ['/srv/m-find/a.conf', '/srv/m-find/sub/deep/c.conf']
          - confs.matched == 2 and confs.msg == 'All paths examined'
          - hello.files | map(attribute='path') | list == ['/srv/m-find/a.conf']
          - hello.files[0].checksum | length == 40
          - hello.skipped_paths['/srv/m-none'] == \"'/srv/m-none' is not a directory\"
          - hello.msg == 'Not all paths examined, check warnings for details'
          - dirs.files | map(attribute='path') | list == ['/srv/m-find/sub/deep']
          - dirs.files[0].isdir and dirs.files[0].mode == '0755' and dirs.files[0].pw_name == 'root'
          - old.files | map(attribute='path') | list == ['/srv/m-find/sub/b.log']
          - conf.content | b64decode == 'key=1\\nhello world\\n'
          - conf.encoding == 'base64' and conf.source == '/srv/m-find/a.conf'
",
    );
}

#[test]
fn tempfile_makes_a_new_file_each_run_and_skips_in_check_mode() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - tempfile: {{path: /srv/m-tmp, prefix: job., suffix: .lock}}\n      register: f\n    - ansible.builtin.tempfile: {{path: /srv/m-tmp, state: directory}}\n      register: d\n    - assert: {{that: [\"f.path is match('/srv/m-tmp/job[.]........[.]lock$')\"]}}\n      when: not ansible_check_mode\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/m-tmp; mkdir /srv/m-tmp");
    let before = hosts.ssh(host, SNAPSHOT);
    let check = run(&s, &["--check"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 0, "{}", check.stdout);
    assert_eq!(hosts.ssh(host, SNAPSHOT), before, "{}", check.stdout);
    for n in 1..=2 {
        let real = run(&s, &[]);
        real.assert_code(0);
        assert_eq!(changed(&real, host), 2, "{}", real.stdout);
        let listing = hosts.ssh(
            host,
            "cd /srv/m-tmp && stat -c '%a %F' job.*.lock | sort | uniq -c; stat -c '%a %F' ansible.* | sort | uniq -c",
        );
        assert_eq!(
            listing.split_whitespace().collect::<Vec<_>>().join(" "),
            format!("{n} 600 regular file {n} 700 directory")
                .replace("regular file", "regular empty file"),
            "{}",
            real.stdout
        );
    }
}

#[test]
fn assemble_fragments_in_name_order() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[0],
        reset: "rm -rf /srv/m-frags /srv/m-assembled.conf",
        tasks: "    - file: {path: /srv/m-frags, state: directory}
    - copy: {content: \"b=2\", dest: /srv/m-frags/20-b}
    - copy: {content: \"a=1\\n\", dest: /srv/m-frags/10-a}
    - copy: {content: \"skip\\n\", dest: /srv/m-frags/.hidden}
    - ansible.builtin.assemble: {src: /srv/m-frags, dest: /srv/m-assembled.conf, delimiter: '# --', ignore_hidden: yes, regexp: '^[0-9]', mode: '0640'}
",
        verify: "cat /srv/m-assembled.conf; echo; stat -c %a /srv/m-assembled.conf",
        expected: "a=1\n# --\nb=2\n640\n",
        drift: "echo c=3 >> /srv/m-assembled.conf",
        diff_shows: "-b=2c=3\n+b=2",
    });
}

#[test]
fn cron_jobs_and_env_in_a_crontab_and_a_cron_file() {
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[0],
        reset: "command -v crontab >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q cron >/dev/null 2>&1; \
                crontab -r 2>/dev/null; rm -f /etc/cron.d/m-cron; printf '# kept\\n' | crontab -",
        tasks: "    - cron: {name: PATH, env: yes, job: '/usr/bin:/bin'}
    - ansible.builtin.cron: {name: nightly backup, minute: 30, hour: 2, job: /usr/local/bin/backup}
    - cron: {name: rotate, cron_file: m-cron, user: root, special_time: daily, job: /usr/sbin/logrotate /etc/m.conf}
",
        verify: "crontab -l; cat /etc/cron.d/m-cron; stat -c %a /etc/cron.d/m-cron",
        expected: "PATH=\"/usr/bin:/bin\"\n# kept\n#Ansible: nightly backup\n30 2 * * * /usr/local/bin/backup\n#Ansible: rotate\n@daily root /usr/sbin/logrotate /etc/m.conf\n644\n",
        drift: "crontab -l | sed 's/^30 2 /0 3 /' | crontab -",
        diff_shows: "-0 3 * * * /usr/local/bin/backup\n+30 2 * * * /usr/local/bin/backup",
    });
}

#[test]
fn known_hosts_adds_hashes_replaces_and_removes_keys() {
    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEIxGumpH0DfLVyh8gDhyDeLQWsXjaceGBak5WaXx6Gf";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrVygWvdvI8726423fi0XPJk21fq4MuA36Y92qJXT2R";
    let hosts = test_hosts();
    prove(hosts, Scenario {
        host: hosts.names()[0],
        reset: &format!("rm -f /srv/m-known_hosts*; echo 'old.example {K2}' > /srv/m-known_hosts"),
        tasks: &format!("    - known_hosts: {{path: /srv/m-known_hosts, name: old.example, state: absent}}
    - known_hosts: {{path: /srv/m-known_hosts, name: h.example, key: 'h.example {K2}', hash_host: yes}}
    - ansible.builtin.known_hosts: {{path: /srv/m-known_hosts, name: Git.Example, key: 'git.example {K1}'}}
"),
        verify: "sed 's/|1|[^ ]*/HASHED/' /srv/m-known_hosts; ssh-keygen -F h.example -f /srv/m-known_hosts | grep -c ssh-ed25519",
        expected: &format!("HASHED {K2}\ngit.example {K1}\n1\n"),
        drift: &format!("sed -i 's#^git.example .*#git.example {K2}#' /srv/m-known_hosts"),
        diff_shows: &format!("-git.example {K2}\n+git.example {K1}"),
    });
}

#[test]
fn hostname_sets_the_running_and_the_permanent_name() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    /// Gives the host its own name back, however the scenario ends.
    struct Restore<'a>(&'a TestHosts, &'a str);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.ssh(
                self.1,
                &format!("hostnamectl set-hostname {} ; true", self.1),
            );
        }
    }
    let _restore = Restore(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "hostnamectl set-hostname m-other",
            tasks: &format!(
                "    - hostname: {{name: {host}}}\n      register: h\n    - assert: {{that: [\"h.ansible_facts.ansible_hostname == '{host}'\", \"h.ansible_facts.ansible_nodename == '{host}'\"]}}\n"
            ),
            verify: "hostname; cat /etc/hostname; hostnamectl --static status",
            expected: &format!("{host}\n{host}\n{host}\n"),
            drift: "hostname m-drift",
            diff_shows: &format!("-hostname = m-drift\n+hostname = {host}"),
        },
    );
}

#[test]
fn getent_returns_database_entries_as_facts() {
    let hosts = test_hosts();
    read_only(
        hosts,
        "getent group m-getent >/dev/null || groupadd m-getent",
        "    - getent: {database: passwd, key: root}
      register: pw
    - ansible.builtin.getent: {database: group, key: m-nope, fail_key: no}
      register: missing
    - getent: {database: hosts, key: localhost, service: files}
      register: lh
    - getent: {database: group}
      register: groups
    - getent: {database: nosuchdb}
      register: bad
      ignore_errors: yes
    - assert:
        that:
          - pw.ansible_facts.getent_passwd.root == ['x', '0', '0', 'root', '/root', '/bin/bash']
          - missing.ansible_facts.getent_group['m-nope'] is none
          - missing.msg == 'One or more supplied key could not be found in the database.'
          - lh.ansible_facts.getent_hosts['127.0.0.1'] == ['localhost']
          - groups.ansible_facts.getent_group['m-getent'][0] == 'x'
          - bad is failed and bad.msg == 'Missing arguments, or database unknown.'
",
    );
}

#[test]
fn script_with_creates_runs_only_while_its_file_is_missing() {
    let hosts = test_hosts();
    let host = hosts.names()[2];
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/m-script",
            tasks: "    - file: {path: /srv/m-script, state: directory}\n    - script: stamp.sh /srv/m-script/stamp 'made by script'\n      args: {creates: /srv/m-script/stamp}\n",
            verify: "cat /srv/m-script/stamp; ls -A ~/.ansible/tmp | wc -l",
            expected: "made by script\n0\n",
            drift: "rm /srv/m-script/stamp",
            diff_shows: &format!(
                "TASK [script] ******************************************************************\nchanged: [{host}]"
            ),
        },
    );
}

#[test]
fn fetch_reads_as_the_become_user_and_copies_only_what_changed() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let s = Scratch::new();
    s.write("inv", &hosts.inventory("deploy", &[], &[]));
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: no
  tasks:
    - fetch: {{src: /srv/m-fetch/alice.txt, dest: fetched}}
      become: true
      become_user: alice
    - fetch: {{src: /srv/m-fetch/alice.txt, dest: fetched}}
      register: as_deploy
      ignore_errors: true
    - assert: {{that: [as_deploy is failed, \"as_deploy.msg is search('File is not readable')\"]}}
      when: not ansible_check_mode
"
        ),
    );
    hosts.ssh(
        host,
        "rm -rf /srv/m-fetch; mkdir -p /srv/m-fetch; echo secret > /srv/m-fetch/alice.txt; \
         chown alice /srv/m-fetch/alice.txt; chmod 0600 /srv/m-fetch/alice.txt",
    );
    let local = format!("fetched/{host}/srv/m-fetch/alice.txt");
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 1, "{}", first.stdout);
    assert_eq!(s.read(&local), "secret\n");
    let second = run(&s, &[]);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);
    hosts.ssh(host, "echo new > /srv/m-fetch/alice.txt");
    // Ansible's fetch does not support check mode: the task is skipped, nothing is written.
    let check = run(&s, &["--check"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 0, "{}", check.stdout);
    assert_eq!(s.read(&local), "secret\n");
    let third = run(&s, &[]);
    assert_eq!(changed(&third, host), 1, "{}", third.stdout);
    assert_eq!(s.read(&local), "new\n");
}
