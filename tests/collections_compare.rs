//! settle's collection modules against the real ones: the same play, with the same arguments,
//! run by the real ansible-playbook with the `ansible.posix` and `community.general` collections
//! (from PyPI's `ansible` 12 package, unpacked into the compat cache by
//! tests/compat/collections) and by settle, on the same test host from the same starting state.
//! For each task: the same `changed` and `failed`, the same keys in the registered result and
//! the same values (but for a short list of values that change from run to run), on the first
//! run, the second one (nothing left to change) and a `--check` run; and the host ends the same.
//! Skipped (with a note) when the real ansible-core or the collections are not there.

mod common;

use std::path::PathBuf;

use common::Scratch;
use common::hosts::{TestHosts, test_hosts};
use serde_json::{Map, Value};

fn collections_path() -> Option<PathBuf> {
    let cache =
        std::env::var("SETTLE_COMPAT_CACHE").unwrap_or_else(|_| "/var/cache/settle-compat".into());
    let path = PathBuf::from(cache).join("collections");
    if path
        .join("ansible_collections/community/general/meta/runtime.yml")
        .exists()
    {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no collections in {}: tests/compat/collections unpacks them",
        path.display()
    );
    eprintln!(
        "skipped: no collections in {} (tests/compat/collections unpacks them)",
        path.display()
    );
    None
}

/// Result keys whose values are the run's own (times, the arguments as Ansible echoes them):
/// only their presence is compared.
const RUN_OWN: &[&str] = &["invocation", "start", "end", "delta"];

/// Result keys that ansible-core adds of its own and not the module: the collections' modules
/// pass `warnings` to `exit_json` the old way, and ansible-core 2.19 answers that with a
/// deprecation notice in every result.
const ANSIBLE_OWN: &[&str] = &["deprecations"];

/// One comparison: a starting state, tasks (one flow mapping each, a module and its
/// arguments), and a command whose output shows what the tasks changed on the host.
struct Case<'a> {
    host: usize,
    reset: &'a str,
    tasks: &'a [&'a str],
    verify: &'a str,
    /// Files beside the playbook on the controller: (path, content).
    files: &'a [(&'a str, &'a str)],
    /// Differences settle keeps on purpose (each said why where the case is): a report line
    /// that contains one of these is accepted.
    accepted: &'a [&'a str],
}

/// The play: each task registered (failures kept going), all the results written to `out`.
fn play(host: &str, tasks: &[&str]) -> String {
    let mut text = format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n");
    let mut names = Vec::new();
    for (n, task) in tasks.iter().enumerate() {
        text.push_str(&format!(
            "    - {task}\n      register: r{n}\n      ignore_errors: yes\n"
        ));
        names.push(format!("'r{n}': r{n}"));
    }
    text.push_str(&format!(
        "    - copy:\n        content: \"{{{{ {{{}}} | to_json }}}}\"\n        dest: '{{{{ out }}}}'\n\
         \x20     delegate_to: localhost\n      check_mode: no\n",
        names.join(", ")
    ));
    text
}

fn read(path: &std::path::Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        other => panic!("{} is not an object: {other:?}", path.display()),
    }
}

/// What differs between Ansible's registered result of a task and settle's.
fn differences(what: &str, theirs: &Value, ours: &Value) -> Vec<String> {
    let empty = Map::new();
    let a = theirs.as_object().unwrap_or(&empty);
    let b = ours.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    for flag in ["changed", "failed"] {
        let get = |m: &Map<String, Value>| m.get(flag).and_then(Value::as_bool).unwrap_or(false);
        if get(a) != get(b) {
            out.push(format!(
                "{what}: {flag} is {} in Ansible, {} in settle",
                get(a),
                get(b)
            ));
        }
    }
    for (key, value) in a {
        if ANSIBLE_OWN.contains(&key.as_str()) {
            continue;
        }
        match b.get(key) {
            None => out.push(format!(
                "{what}: settle's result lacks {key} (Ansible: {value})"
            )),
            Some(_) if RUN_OWN.contains(&key.as_str()) => {}
            Some(v) if v != value => out.push(format!(
                "{what}: {key}\n    Ansible: {value}\n    settle:  {v}"
            )),
            Some(_) => {}
        }
    }
    for key in b.keys() {
        if !a.contains_key(key) {
            out.push(format!(
                "{what}: settle's result has {key}, Ansible's has not"
            ));
        }
    }
    out
}

/// Runs the case with Ansible, then with settle, and fails with every difference.
fn compare(hosts: &TestHosts, case: Case) {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(collections) = collections_path() else {
        return;
    };
    let host = hosts.names()[case.host];
    let s = Scratch::new();
    s.write("inv", &hosts.python_inventory());
    s.write("play.yml", &play(host, case.tasks));
    for (path, content) in case.files {
        if let Some(dir) = s.path(path).parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        s.write(path, content);
    }
    let collections = collections.display().to_string();
    let env = [
        ("ANSIBLE_HOST_KEY_CHECKING", "1"),
        ("ANSIBLE_COLLECTIONS_PATH", collections.as_str()),
    ];
    // Each tool: from the starting state, a run and a second one right after it (the host as
    // the tool left it), then from the starting state again, a run in check mode.
    let runs: [(&str, &[&str]); 3] = [("apply", &[]), ("again", &[]), ("check", &["--check"])];
    let mut results: Vec<Vec<Map<String, Value>>> = Vec::new();
    let mut ends = Vec::new();
    for tool in ["ansible", "settle"] {
        let mut own = Vec::new();
        for (n, (what, extra)) in runs.iter().enumerate() {
            if *what != "again" {
                hosts.ssh(host, case.reset);
            }
            let out = s.path(&format!("{tool}-{n}.json"));
            let out_arg = format!("out={}", out.display());
            let mut args = vec!["play.yml", "-i", "inv", "-e", &out_arg];
            args.extend_from_slice(extra);
            if tool == "ansible" {
                s.ansible_playbook(&ansible_playbook, &args, &env);
            } else {
                s.settle(&args).assert_code(0);
            }
            own.push(read(&out));
            if *what == "again" {
                ends.push(hosts.ssh(host, case.verify));
            }
        }
        results.push(own);
    }
    let mut report = Vec::new();
    for (n, (theirs, ours)) in results[0].iter().zip(&results[1]).enumerate() {
        for (t, task) in case.tasks.iter().enumerate() {
            let key = format!("r{t}");
            let what = format!("[{}] {task}", runs[n].0);
            report.extend(differences(
                &what,
                theirs.get(&key).unwrap_or(&Value::Null),
                ours.get(&key).unwrap_or(&Value::Null),
            ));
        }
    }
    if ends[0] != ends[1] {
        report.push(format!(
            "the host ends differently:\n--- Ansible\n{}--- settle\n{}",
            ends[0], ends[1]
        ));
    }
    report.retain(|line| !case.accepted.iter().any(|a| line.contains(a)));
    assert!(
        report.is_empty(),
        "settle's modules differ from the collections' on {host}:\n{}",
        report.join("\n")
    );
}

const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEIxGumpH0DfLVyh8gDhyDeLQWsXjaceGBak5WaXx6Gf";
const K2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrVygWvdvI8726423fi0XPJk21fq4MuA36Y92qJXT2R";

#[test]
fn authorized_key_results_match_ansible_posix() {
    let hosts = test_hosts();
    let add = format!("ansible.posix.authorized_key: {{user: alice, key: '{K1} a@x'}}");
    let options = format!(
        "ansible.posix.authorized_key: {{user: alice, key: '{K2}', key_options: 'no-pty', comment: deploy}}"
    );
    let exclusive = format!(
        "ansible.posix.authorized_key: {{user: alice, key: '{K1} a@x', path: /home/alice/.ssh/other_keys, exclusive: true, manage_dir: false}}"
    );
    let remove =
        format!("ansible.posix.authorized_key: {{user: alice, key: '{K2}', state: absent}}");
    compare(
        hosts,
        Case {
            host: 0,
            reset: &format!(
                "rm -rf /home/alice/.ssh; mkdir -m 755 /home/alice/.ssh; \
                 printf '# mine\\n{K2} old@z\\n' > /home/alice/.ssh/other_keys; \
                 chown -R alice: /home/alice/.ssh"
            ),
            tasks: &[&add, &options, &exclusive, &remove],
            verify: "cd /home/alice/.ssh && for f in *; do echo \"== $f\"; cat $f; done; stat -c '%n %U %a' . *",
            files: &[],
            accepted: &[],
        },
    );
}

#[test]
fn sysctl_results_match_ansible_posix() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 1,
            reset: "printf '# c-sysctl\\nkernel.c_old = 5\\n  vm.swappiness = 60\\n' > /etc/sysctl.d/90-c-sysctl.conf",
            tasks: &[
                "ansible.posix.sysctl: {name: vm.swappiness, value: '10', sysctl_file: /etc/sysctl.d/90-c-sysctl.conf, reload: no}",
                "ansible.posix.sysctl: {name: kernel.panic, value: 3, sysctl_file: /etc/sysctl.d/90-c-sysctl.conf, reload: no, sysctl_set: no}",
                "ansible.posix.sysctl: {name: kernel.c_old, state: absent, sysctl_file: /etc/sysctl.d/90-c-sysctl.conf, reload: no}",
            ],
            verify: "cat /etc/sysctl.d/90-c-sysctl.conf",
            files: &[],
            accepted: &[],
        },
    );
}

#[test]
fn mount_results_match_ansible_posix() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 2,
            reset: "umount /mnt/c-data /mnt/c-u 2>/dev/null; rm -rf /mnt/c-data /mnt/c-later /mnt/c-u; sed -i '/c-/d' /etc/fstab; \
                    echo 'tmpfs /mnt/c-gone tmpfs defaults 0 0' >> /etc/fstab; mkdir -p /mnt/c-u; mount -t tmpfs tmpfs /mnt/c-u",
            tasks: &[
                "ansible.posix.mount: {path: /mnt/c-data, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}",
                "ansible.posix.mount: {path: /mnt/c-later, src: /dev/c-nodisk, fstype: ext4, opts: noatime, boot: no, state: present}",
                "ansible.posix.mount: {path: /mnt/c-gone, state: absent}",
                "ansible.posix.mount: {path: /mnt/c-u, state: unmounted}",
            ],
            verify: "grep c- /etc/fstab; findmnt -n -r -o SOURCE,FSTYPE /mnt/c-data; findmnt /mnt/c-u || echo c-u unmounted; ls -d /mnt/c-* ; true",
            files: &[],
            accepted: &[],
        },
    );
}

#[test]
fn make_results_match_community_general() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 2,
            reset: "command -v make >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q make >/dev/null 2>&1; \
                    rm -rf /srv/c-make; mkdir -p /srv/c-make; \
                    printf 'out.txt: in.txt\\n\\tcp in.txt out.txt\\n\\techo $(WHO) >> out.txt\\n' > /srv/c-make/Makefile; echo v1 > /srv/c-make/in.txt",
            tasks: &[
                "community.general.make: {chdir: /srv/c-make, target: out.txt, params: {WHO: me}}",
                "community.general.make: {chdir: /srv/c-make, target: nothing-to-do}",
            ],
            verify: "cat /srv/c-make/out.txt",
            files: &[],
            accepted: &[],
        },
    );
}

#[test]
fn locale_gen_results_match_community_general() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 1,
            reset: "dpkg -s locales >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q locales >/dev/null 2>&1; \
                    sed -i -E 's/^(de_CH|nl_NL|fr_FR)\\.UTF-8/# \\1.UTF-8/' /etc/locale.gen; sed -i -E 's/^# (fr_FR)\\.UTF-8/\\1.UTF-8/' /etc/locale.gen; locale-gen >/dev/null 2>&1",
            tasks: &[
                "community.general.locale_gen: {name: [de_CH.UTF-8, nl_NL.UTF-8]}",
                "community.general.locale_gen: {name: fr_FR.UTF-8, state: absent}",
            ],
            verify: "locale -a | grep -E '^(de_CH|nl_NL|fr_FR)'; grep -E '^(de_CH|nl_NL|fr_FR)' /etc/locale.gen",
            // In check mode community.general's module skips the change and then finds nothing
            // changed (`check_mode_skip`, then comparing the state before and after): it says
            // `changed: false` for a locale it would generate. settle's dry run says what the
            // real run would do, as every module's does.
            files: &[],
            accepted: &[
                "[check] community.general.locale_gen: {name: [de_CH.UTF-8, nl_NL.UTF-8]}: changed",
                "[check] community.general.locale_gen: {name: fr_FR.UTF-8, state: absent}: changed",
            ],
        },
    );
}

#[test]
fn timezone_results_match_community_general() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 0,
            reset: "timedatectl set-timezone Etc/UTC",
            tasks: &["community.general.timezone: {name: Asia/Tokyo}"],
            verify: "timedatectl show -p Timezone --value; readlink /etc/localtime; timedatectl set-timezone Etc/UTC",
            files: &[],
            accepted: &[],
        },
    );
}

/// The test hosts run on this machine's kernel, which has no loadable modules: no
/// `/proc/modules`, no `/lib/modules`. Both modules ask "is it loaded?" first, so what can be
/// compared here is that they fail alike, without modprobe and with it (kmod installed), for
/// every state and `persistent`; loading, unloading and the persistent files are proven by
/// modprobe.rs's unit tests on a folder standing for `/`.
#[test]
fn modprobe_fails_as_community_generals_on_a_kernel_without_modules() {
    let hosts = test_hosts();
    let tasks = [
        "community.general.modprobe: {name: c_dummy, state: absent}",
        "community.general.modprobe: {name: c_dummy, state: present, params: numdummies=2}",
        "community.general.modprobe: {name: c_dummy, state: absent, persistent: absent}",
    ];
    // The first host has no kmod (the base image has none); the second gets it.
    for (host, setup) in [
        (0, "true"),
        (
            1,
            "command -v modprobe >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q kmod >/dev/null 2>&1",
        ),
    ] {
        compare(
            hosts,
            Case {
                host,
                reset: &format!(
                    "{setup}; rm -f /etc/modules-load.d/c_dummy.conf /etc/modprobe.d/c_dummy.conf"
                ),
                tasks: &tasks,
                verify: "ls /etc/modules-load.d /etc/modprobe.d 2>&1; test -e /proc/modules || echo no /proc/modules",
                // Python's traceback of the failure, which settle has not.
                files: &[],
                accepted: &["settle's result lacks exception"],
            },
        );
    }
}

#[test]
fn synchronize_results_match_ansible_posix() {
    let hosts = test_hosts();
    compare(
        hosts,
        Case {
            host: 2,
            reset: "command -v rsync >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null 2>&1; \
                    rm -rf /srv/c-sync /srv/c-sync-del; mkdir -p /srv/c-sync /srv/c-sync-del; echo stale > /srv/c-sync/old.txt; echo stale > /srv/c-sync-del/old.txt; \
                    touch -d 2001-01-01 /srv/c-sync /srv/c-sync-del",
            tasks: &[
                "ansible.posix.synchronize: {src: files/, dest: /srv/c-sync/}",
                "ansible.posix.synchronize: {src: files/, dest: /srv/c-sync-del/, delete: true, checksum: true}",
            ],
            verify: "cd /srv && find c-sync c-sync-del -type f | sort && cat c-sync/hello.txt",
            files: &[
                ("files/hello.txt", "hello\n"),
                ("files/sub/deep.txt", "deep\n"),
            ],
            accepted: &[],
        },
    );
}

// ufw changes the host's netfilter: it is compared on a host with a network of its own
// (tests/hosts/up --private-network), which reaches no mirror, so iptables and ufw come in as
// .deb files (tests/common/firewall.rs).

#[test]
fn ufw_results_match_community_general() {
    let hosts = common::firewall::hosts_with_tools();
    compare(
        hosts,
        Case {
            // The ufw host of tests/modules_firewall.rs: the other one's iptables tests expect
            // chains without ufw's.
            host: 1,
            reset: "ufw --force reset >/dev/null; rm -f /etc/ufw/*.rules.2*; ufw default allow incoming >/dev/null; ufw logging low >/dev/null",
            tasks: &[
                "community.general.ufw: {rule: allow, port: '22', proto: tcp}",
                "community.general.ufw: {state: enabled, policy: deny}",
                "community.general.ufw: {rule: allow, port: '80', proto: tcp, src: 10.0.0.0/8, comment: web}",
                "community.general.ufw: {rule: deny, port: '8080', delete: true}",
                "community.general.ufw: {logging: medium}",
                "community.general.ufw: {rule: limit, port: '2222', proto: tcp, direction: in, interface: lo}",
            ],
            verify: "ufw status verbose; grep -h '^### tuple' /etc/ufw/user.rules /etc/ufw/user6.rules",
            files: &[],
            // `commands` lists the commands each module ran: Ansible's reads the rules files
            // with grep, asks `ufw --version` and re-runs a rule that is there already (ufw
            // skips it); settle's asks `ufw --dry-run` whether a rule would change and runs it
            // only then. The key is there in both; what it lists is each one's own way.
            accepted: &["}: commands\n"],
        },
    );
    // ufw disabled again, its chains gone, for whatever runs on this host next.
    hosts.ssh(hosts.names()[1], "ufw --force reset >/dev/null; true");
}
