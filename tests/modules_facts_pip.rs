//! service_facts, package_facts and mount_facts (read-only, their values checked on a test
//! host, and compared with the real Ansible's when it is installed), pip (the four-step proof,
//! from wheels the host builds and serves itself, as the hosts cannot reach PyPI), and reboot
//! (the boot id changes and the play goes on).

mod common;

use common::Scratch;
use common::hosts::test_hosts;
use common::scenario::{Scenario, TURN, changed, prove, read_only};
use serde_json::Value;

#[test]
fn service_facts_lists_sysv_scripts_and_systemd_units() {
    let hosts = test_hosts();
    read_only(
        hosts,
        "true",
        "    - service_facts:\n\
         \x20   - assert:\n        that:\n\
         \x20         - \"ansible_facts.services['ssh.service'] == {'name': 'ssh.service', 'state': 'running', 'status': 'enabled', 'source': 'systemd'}\"\n\
         \x20         - \"ansible_facts.services['ssh'] == {'name': 'ssh', 'state': 'running', 'source': 'sysv'}\"\n\
         \x20         - \"ansible_facts.services['apt-daily.service'] == {'name': 'apt-daily.service', 'state': 'inactive', 'status': 'static', 'source': 'systemd'}\"\n\
         \x20         - ansible_facts.services['getty@.service'].state == 'unknown'\n",
    );
}

#[test]
fn package_facts_reads_dpkgs_database() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let version = hosts.ssh(host, "dpkg-query -W -f '${Version}' dpkg");
    let arch = hosts.ssh(host, "dpkg --print-architecture");
    read_only(
        hosts,
        "true",
        &format!(
            "    - package_facts:\n\
             \x20   - assert:\n        that:\n\
             \x20         - \"ansible_facts.packages['dpkg'] == [{{'name': 'dpkg', 'version': '{version}', 'arch': '{}', 'category': 'admin', 'origin': 'Debian', 'source': 'apt'}}]\"\n\
             \x20         - ansible_facts.packages['openssh-server'][0].source == 'apt'\n\
             \x20         - \"'no-such-package' not in ansible_facts.packages\"\n\
             \x20   - package_facts: {{manager: [rpm, apt], strategy: all}}\n\
             \x20   - assert:\n        that: ansible_facts.packages['dpkg'][0].source == 'apt'\n",
            arch.trim()
        ),
    );
}

#[test]
fn mount_facts_reads_the_mount_tables() {
    let hosts = test_hosts();
    read_only(
        hosts,
        "true",
        "    - mount_facts:\n\
         \x20   - assert:\n        that:\n\
         \x20         - ansible_facts.mount_points['/'].fstype == 'overlay'\n\
         \x20         - ansible_facts.mount_points['/'].ansible_context.source == '/etc/mtab'\n\
         \x20         - ansible_facts.mount_points['/'].size_total > 0\n\
         \x20         - ansible_facts.mount_points['/'].uuid is none\n\
         \x20         - ansible_facts.mount_points['/proc'].device == 'proc'\n\
         \x20         - ansible_facts.aggregate_mounts == []\n\
         \x20   - mount_facts: {sources: [/proc/mounts], fstypes: [tmpfs], include_aggregate_mounts: true}\n\
         \x20   - assert:\n        that:\n\
         \x20         - ansible_facts.mount_points.values() | map(attribute='fstype') | unique | list == ['tmpfs']\n\
         \x20         - ansible_facts.aggregate_mounts | length >= ansible_facts.mount_points | length\n",
    );
}

/// Keys of the compared facts whose values move on their own between two runs.
const MOVING_MOUNT_FIELDS: &[&str] = &[
    "size_available",
    "block_available",
    "block_used",
    "inode_available",
    "inode_used",
];

/// Units that start and stop by themselves (see scenario::SNAPSHOT).
fn steady_unit(name: &str) -> bool {
    !name.starts_with("systemd-hostnamed")
        && !name.starts_with("systemd-localed")
        && !name.starts_with("systemd-timedated")
        && !name.starts_with("systemd-tmpfiles-clean")
}

/// The facts modules give what Ansible's give on the same host (python3-apt installed there,
/// which Ansible's package_facts needs), one run right after the other.
#[test]
fn facts_modules_match_ansibles() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[2];
    hosts.ssh(
        host,
        "python3 -c 'import apt' 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-apt >/dev/null 2>&1; true",
    );
    let s = Scratch::new();
    s.write("inv", &hosts.python_inventory());
    s.write(
        "facts.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - service_facts:\n    - package_facts:\n    - mount_facts:\n\
             \x20   - copy:\n        dest: '{{{{ out }}}}'\n        content: \"{{{{ {{'services': ansible_facts.services, 'packages': ansible_facts.packages, 'mount_points': ansible_facts.mount_points}} | to_json }}}}\"\n\
             \x20     delegate_to: localhost\n"
        ),
    );
    let ansible_out = format!("out={}", s.path("ansible.json").display());
    s.ansible_playbook(
        &ansible_playbook,
        &["facts.yml", "-i", "inv", "-e", &ansible_out],
        &[],
    );
    let out_arg = format!("out={}", s.path("settle.json").display());
    s.settle(&["facts.yml", "-i", "inv", "-e", &out_arg])
        .assert_code(0);
    let read = |name: &str| -> Value {
        serde_json::from_str(&s.read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let (mut ansible, mut settle) = (read("ansible.json"), read("settle.json"));
    for facts in [&mut ansible, &mut settle] {
        if let Some(services) = facts["services"].as_object_mut() {
            services.retain(|name, _| steady_unit(name));
        }
        if let Some(points) = facts["mount_points"].as_object_mut() {
            for point in points.values_mut() {
                if let Some(fields) = point.as_object_mut() {
                    fields.retain(|k, _| !MOVING_MOUNT_FIELDS.contains(&k.as_str()));
                }
            }
        }
    }
    for key in ["services", "packages", "mount_points"] {
        let (a, b) = (&ansible[key], &settle[key]);
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            panic!("{key} is not a dictionary: ansible {a}, settle {b}");
        };
        let differ: Vec<String> = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k}: ansible {:?} settle {:?}", a.get(k), b.get(k)))
            .collect();
        assert!(
            differ.is_empty(),
            "{key} differ from Ansible's:\n{}",
            differ.join("\n")
        );
        assert!(a.len() > 5, "{key}: only {} entries", a.len());
    }
}

/// Wheels built on the host (it cannot reach PyPI): settledemo 1.0 and 2.0, othertool 0.5, in
/// /srv/wheels, which pip is told to use instead of an index.
const WHEELS: &str = r#"set -e
python3 -c 'import ensurepip' 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1
rm -rf /opt/settle-venv /srv/wheels
mkdir -p /srv/wheels
python3 - <<'PY'
import base64, hashlib, zipfile
def wheel(name, version):
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f'__version__ = "{version}"\n',
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: settle-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(text.encode())}")
    lines.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(lines) + "\n"
    with zipfile.ZipFile(f"/srv/wheels/{name}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
for n, v in [("settledemo", "1.0"), ("settledemo", "2.0"), ("othertool", "0.5")]:
    wheel(n, v)
PY
printf '[global]\nno-index = true\nfind-links = /srv/wheels\ndisable-pip-version-check = true\n' > /etc/pip.conf
"#;

#[test]
fn pip_packages_in_a_virtualenv() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: WHEELS,
            tasks: "    - pip:\n        name: ['settledemo==1.0', othertool]\n        virtualenv: /opt/settle-venv\n        virtualenv_command: python3 -m venv\n        umask: '0022'\n",
            verify: "/opt/settle-venv/bin/pip list --format=freeze | grep -E '^(settledemo|othertool)=='",
            expected: "othertool==0.5\nsettledemo==1.0\n",
            drift: "/opt/settle-venv/bin/pip install -q settledemo==2.0",
            diff_shows: "package settledemo: 2.0 → settledemo==1.0",
        },
    );
}

#[test]
fn pip_latest_and_absent_change_only_when_pip_would() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: WHEELS,
            tasks: "    - pip: {name: settledemo, state: latest, virtualenv: /opt/settle-venv, virtualenv_command: python3 -m venv}\n    - pip: {name: othertool, version: '0.5', extra_args: '--no-deps', virtualenv: /opt/settle-venv, chdir: /srv}\n    - pip: {name: [settle-not-installed], state: absent, virtualenv: /opt/settle-venv}\n",
            verify: "/opt/settle-venv/bin/pip list --format=freeze | grep -E '^(settledemo|othertool)=='",
            expected: "othertool==0.5\nsettledemo==2.0\n",
            drift: "/opt/settle-venv/bin/pip install -q settledemo==1.0",
            diff_shows: "package settledemo: 1.0 → 2.0",
        },
    );
}

#[test]
fn reboot_comes_back_with_a_new_boot_id_and_the_play_goes_on() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[1];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - command: cat /proc/sys/kernel/random/boot_id\n      register: before\n      changed_when: false\n\
             \x20   - reboot: {{msg: rebooted by settle's test}}\n      register: rebooted\n\
             \x20   - command: cat /proc/sys/kernel/random/boot_id\n      register: after\n      changed_when: false\n\
             \x20   - assert:\n        that: [rebooted is changed, rebooted.rebooted, rebooted.elapsed is number]\n\
             \x20   - assert:\n        that: before.stdout != after.stdout\n      when: not ansible_check_mode\n"
        ),
    );
    let check = s.settle(&["site.yml", "-i", "inv", "--check"]);
    check.assert_code(0);
    let run = s.settle(&["site.yml", "-i", "inv"]);
    run.assert_code(0);
    assert_eq!(changed(&run, host), 1, "{}", run.stdout);
    assert_eq!(run.recap(host)["ok"], 5, "{}", run.stdout);
}
