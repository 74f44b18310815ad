//! The file-attribute, SELinux and account arguments, proven on real test hosts in the four
//! steps of tests/modules.rs: chattr flags on every module that writes a file, the SELinux
//! context arguments on a host without SELinux, copy's `checksum`, unarchive's
//! `io_buffer_size`, libuser's local accounts, groupadd's GID range, and service's arguments
//! for other init systems on a systemd host.

mod common;

use common::hosts::test_hosts;
use common::scenario::{Scenario, TURN, changed, prove, run};

/// The flags a file system gives every new file of its own accord: ext4 marks files `e`
/// (extents), which no one can clear, so Ansible's comparison (the flags `lsattr` shows against
/// those asked for) holds only when the asked flags name it too, as users of ext4 write them.
fn own_flags(hosts: &common::hosts::TestHosts, host: &str, dir: &str) -> String {
    hosts
        .ssh(
            host,
            &format!(
                "mkdir -p {dir} && rm -f {dir}/.probe && echo x > {dir}/.probe && \
                 lsattr -d {dir}/.probe | cut -d' ' -f1 | tr -d -; rm -f {dir}/.probe"
            ),
        )
        .trim()
        .chars()
        .filter(|&c| c == 'e')
        .collect()
}

#[test]
fn chattr_flags_on_every_module_that_writes_a_file() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let e = own_flags(hosts, host, "/srv");
    let tasks = format!(
        "    - copy: {{content: \"a\\n\", dest: /srv/m-attr/copy, attributes: A{e}}}
    - template: {{src: conf.j2, dest: /srv/m-attr/template, attr: A{e}}}
    - lineinfile: {{path: /srv/m-attr/line, line: x, create: yes, attributes: A{e}}}
    - blockinfile: {{path: /srv/m-attr/block, block: b, create: yes, attributes: d{e}}}
    - replace: {{path: /srv/m-attr/replace, regexp: x, replace: y, attributes: A{e}}}
    - assemble: {{src: /srv/m-attr/parts, dest: /srv/m-attr/assembled, attributes: A{e}}}
    - unarchive: {{src: /srv/m-attr/m.tar, remote_src: yes, dest: /srv/m-attr/out, attributes: Ae}}
    - get_url: {{url: 'file:///srv/m-attr/fetched', dest: /srv/m-attr/got, attributes: A{e}}}
    - file: {{path: /srv/m-attr/touched, state: touch, attributes: A{e}, modification_time: preserve, access_time: preserve}}
"
    );
    let expected = format!(
        "copy A{e}\ntemplate A{e}\nline A{e}\nblock d{e}\nreplace A{e}\nassembled A{e}\nout/m.txt Ae\n\
         got A{e}\ntouched A{e}\n"
    );
    let diff_shows = format!("-    \"attributes\": \"{e}\",\n+    \"attributes\": \"=A{e}\",");
    prove(
        hosts,
        Scenario {
            host,
            reset: "chattr -R -A -d /srv/m-attr 2>/dev/null; rm -rf /srv/m-attr; \
                mkdir -p /srv/m-attr/parts /srv/m-attr/out /srv/m-attr/src && \
                echo one > /srv/m-attr/parts/a && echo two > /srv/m-attr/parts/b && \
                echo x > /srv/m-attr/replace && echo member > /srv/m-attr/src/m.txt && \
                tar -C /srv/m-attr/src -cf /srv/m-attr/m.tar m.txt && echo got > /srv/m-attr/fetched",
            tasks: &tasks,
            verify: "cd /srv/m-attr && for f in copy template line block replace assembled out/m.txt got touched; \
                do echo \"$f $(lsattr -d $f | cut -d' ' -f1 | tr -d -)\"; done",
            expected: &expected,
            drift: "chattr -A /srv/m-attr/copy",
            diff_shows: &diff_shows,
        },
    );
}

/// uri skips in check mode, as Ansible's does, so it cannot take the four steps: it sets the
/// flags of the file it writes, and a second run changes nothing.
#[test]
fn uri_sets_the_flags_of_the_file_it_writes() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let e = own_flags(hosts, host, "/srv");
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - uri: {{url: 'file:///srv/m-uri-src', dest: /srv/m-uri, attributes: A{e}}}\n"
        ),
    );
    hosts.ssh(host, "rm -f /srv/m-uri; echo body > /srv/m-uri-src");
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 1, "{}", first.stdout);
    assert_eq!(
        hosts.ssh(
            host,
            "cat /srv/m-uri; lsattr -d /srv/m-uri | cut -d' ' -f1 | tr -d -"
        ),
        format!("body\nA{e}\n")
    );
    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);
    hosts.ssh(host, "chattr -A /srv/m-uri");
    let third = run(&s, &[]);
    assert_eq!(changed(&third, host), 1, "{}", third.stdout);
    assert_eq!(
        hosts.ssh(host, "lsattr -d /srv/m-uri | cut -d' ' -f1 | tr -d -"),
        format!("A{e}\n")
    );
}

#[test]
fn selinux_context_arguments_do_nothing_on_a_host_without_selinux() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/m-selinux; test ! -e /sys/fs/selinux/enforce",
            tasks: "    - file: {path: /srv/m-selinux, state: directory, setype: _default, seuser: _default}
    - copy: {content: \"a=1\\n\", dest: /srv/m-selinux/copy, seuser: system_u, serole: object_r, setype: etc_t, selevel: s0}
    - template: {src: conf.j2, dest: /srv/m-selinux/template, setype: etc_t}
    - lineinfile: {path: /srv/m-selinux/line, line: x, create: yes, selevel: s0}
",
            verify: "cat /srv/m-selinux/copy /srv/m-selinux/template /srv/m-selinux/line",
            expected: &format!("a=1\nname={host}\nlevel=3\nx\n"),
            drift: "echo edited > /srv/m-selinux/copy",
            diff_shows: "-edited\n+a=1",
        },
    );
}

#[test]
fn copy_checks_the_checksum_it_is_given() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "rm -f /srv/m-checksum",
            // sha1 of "hello from the controller\n" (files/hello.txt).
            tasks: "    - copy: {src: hello.txt, dest: /srv/m-checksum, checksum: 5ee35513dc1cf7dd3d7fd60407f6e52bf9142ee9}\n",
            verify: "cat /srv/m-checksum",
            expected: "hello from the controller\n",
            drift: "echo edited > /srv/m-checksum",
            diff_shows: "-edited\n+hello from the controller",
        },
    );
}

#[test]
fn copy_with_a_wrong_checksum_fails_and_writes_nothing() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - copy: {{content: \"b\\n\", dest: /srv/m-badsum, checksum: 3f786850e387550fdab836ed7e6dc881de23001b}}\n"
        ),
    );
    hosts.ssh(host, "rm -f /srv/m-badsum");
    let out = run(&s, &[]);
    out.assert_code(2);
    assert!(
        out.stdout
            .contains("Copied file does not match the expected checksum. Transfer failed."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\"expected_checksum\": \"3f786850e387550fdab836ed7e6dc881de23001b\""),
        "{}",
        out.stdout
    );
    assert_eq!(
        hosts.ssh(host, "test -e /srv/m-badsum || echo none"),
        "none\n"
    );
}

#[test]
fn unarchive_compares_zip_members_with_a_small_io_buffer() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null 2>&1; \
                rm -rf /srv/m-unzip /srv/m-unzip-src /srv/m-unzip.zip; mkdir -p /srv/m-unzip /srv/m-unzip-src && \
                printf 'member line one\\nmember line two\\n' > /srv/m-unzip-src/m.txt && \
                cd /srv/m-unzip-src && python3 -m zipfile -c /srv/m-unzip.zip m.txt",
            tasks: "    - unarchive: {src: /srv/m-unzip.zip, remote_src: yes, dest: /srv/m-unzip, io_buffer_size: 5}\n",
            verify: "cat /srv/m-unzip/m.txt",
            expected: "member line one\nmember line two\n",
            // The same size, other bytes: only the CRC (read 5 bytes at a time) tells.
            drift: "printf 'MEMBER line one\\nmember line two\\n' > /srv/m-unzip/m.txt",
            diff_shows: "m.txt: Contents differ",
        },
    );
}

#[test]
fn local_accounts_with_libuser_and_a_gid_range() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "DEBIAN_FRONTEND=noninteractive apt-get install -y -q libuser >/dev/null 2>&1; \
                userdel -r m-local 2>/dev/null; groupdel m-lgroup 2>/dev/null; groupdel m-kgroup 2>/dev/null; \
                getent group 5300 >/dev/null && groupdel $(getent group 5300 | cut -d: -f1); true",
            tasks: "    - group: {name: m-lgroup, local: yes, gid: 4711}
    - group: {name: m-kgroup, gid_min: 5300, gid_max: 5400}
    - user: {name: m-local, local: yes, groups: [m-lgroup], comment: Local user, shell: /bin/sh, login_class: staff, hidden: no, profile: p, authorization: a, role: r}
",
            verify: "getent group m-lgroup | cut -d: -f3,4; getent group m-kgroup | cut -d: -f3; \
                getent passwd m-local | cut -d: -f5,6,7; test -d /home/m-local && echo home",
            expected: "4711:m-local\n5300\nLocal user:/home/m-local:/bin/sh\nhome\n",
            drift: "lusermod -c Someone m-local",
            diff_shows: "comment: Someone → Local user",
        },
    );
}

#[test]
fn service_drops_other_init_systems_arguments_on_a_systemd_host() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    prove(
        hosts,
        Scenario {
            host,
            reset: "systemctl disable --now m-h5svc 2>/dev/null; rm -f /etc/systemd/system/m-h5svc.service; systemctl daemon-reload",
            tasks: "    - copy:
        dest: /etc/systemd/system/m-h5svc.service
        content: |
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
    - service: {name: m-h5svc, state: started, pattern: 'sleep infinity', arguments: '--verbose', runlevel: default}
",
            verify: "systemctl is-active m-h5svc",
            expected: "active\n",
            drift: "systemctl stop m-h5svc",
            diff_shows: "state: inactive → started",
        },
    );
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - service: {{name: m-h5svc, state: started, pattern: x, args: y, arguments: w, runlevel: z, sleep: 1}}\n"
        ),
    );
    let out = run(&s, &[]);
    out.assert_code(0);
    for name in ["pattern", "runlevel", "sleep", "arguments", "args"] {
        let warning = format!("Ignoring \"{name}\" as it is not used in \"systemd\"");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains(&warning), "{warning}:\n{said}");
    }
    hosts.ssh(
        host,
        "systemctl disable --now m-h5svc 2>/dev/null; rm -f /etc/systemd/system/m-h5svc.service; systemctl daemon-reload",
    );
}

/// Where Ansible's modules fail, settle's fail the same way: `seuser` is useradd's `-Z`, which a
/// kernel without SELinux refuses; `local` with a GID range is refused before anything runs.
#[test]
fn account_arguments_fail_where_ansibles_do() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[2];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - user: {{name: m-seuser, seuser: user_u}}\n      ignore_errors: yes\n\
             \x20   - group: {{name: m-range, local: yes, gid_min: 5}}\n      ignore_errors: yes\n\
             \x20   - user: {{name: m-range, local: yes, uid_max: 5}}\n      ignore_errors: yes\n"
        ),
    );
    hosts.ssh(host, "userdel m-seuser 2>/dev/null; true");
    let out = run(&s, &[]);
    out.assert_code(0);
    for msg in [
        "useradd: -Z requires SELinux enabled kernel",
        "'gid_min' can not be used with 'local'",
        "'uid_max' can not be used with 'local'",
    ] {
        assert!(out.stdout.contains(msg), "{msg}:\n{}", out.stdout);
    }
    assert_eq!(
        hosts.ssh(
            host,
            "getent passwd m-seuser m-range; getent group m-range; echo done"
        ),
        "done\n"
    );
}
