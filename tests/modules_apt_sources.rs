//! apt's sources and keys, and dpkg's and debconf's answers, proven on real test hosts in the
//! four steps of tests/common/scenario.rs: `apt_repository`, `deb822_repository`, `apt_key`,
//! `dpkg_selections` and `debconf`. The repositories are local ones built on the host (a flat
//! repository under /srv), keys are made on the controller with gpg and served to the host by
//! a small HTTP server started on it, so nothing leaves the machine but the Debian mirror the
//! hosts already use.

mod common;

use std::process::Command;

use common::hosts::{TestHosts, test_hosts};
use common::scenario::{Scenario, TURN, prove, run};

/// A flat apt repository at /srv/s-apt/repo offering `s-dummy` 1.0.
const LOCAL_REPO: &str = r#"set -e
r=/srv/s-apt; rm -rf $r; mkdir -p $r/pkg/DEBIAN $r/repo
printf 'Package: s-dummy\nVersion: 1.0\nArchitecture: all\nMaintainer: settle <t@settle>\nDescription: settle test\n' > $r/pkg/DEBIAN/control
dpkg-deb -b $r/pkg $r/repo/s-dummy_1.0_all.deb >/dev/null
cd $r/repo; f=s-dummy_1.0_all.deb
printf 'Package: s-dummy\nVersion: 1.0\nArchitecture: all\nMaintainer: settle <t@settle>\nFilename: ./%s\nSize: %s\nSHA256: %s\nDescription: settle test\n\n' $f $(stat -c %s $f) $(sha256sum $f | cut -d' ' -f1) > Packages
"#;

/// An armored public key made with the controller's gpg, and its long (16-digit) key id.
fn test_key() -> (String, String) {
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--quiet"])
            .args(args)
            .output()
            .expect("run gpg on the controller");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    gpg(&[
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "settle test <t@settle.test>",
        "ed25519",
        "sign",
        "never",
    ]);
    let armored = gpg(&["--armor", "--export", "t@settle.test"]);
    let listed = gpg(&["--with-colons", "--list-keys", "t@settle.test"]);
    let long_id = listed
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .unwrap()
        .to_string();
    (armored, long_id)
}

/// Serves /srv/s-keys on the host at http://127.0.0.1:18080 (its pid kept in a file, so the
/// next reset and the cleanup stop exactly that server).
fn serve_keys(key: &str) -> String {
    format!(
        "mkdir -p /srv/s-keys; kill $(cat /srv/s-keys/pid 2>/dev/null) 2>/dev/null || true; \
         printf '%s' '{key}' > /srv/s-keys/key.asc; \
         setsid python3 -m http.server 18080 --bind 127.0.0.1 --directory /srv/s-keys </dev/null >/dev/null 2>&1 & echo $! > /srv/s-keys/pid; \
         for i in $(seq 50); do python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:18080/key.asc\")' 2>/dev/null && break; sleep 0.1; done"
    )
}

fn stop_serving(hosts: &TestHosts, host: &str) {
    hosts.ssh(
        host,
        "test -f /srv/s-keys/pid && kill $(cat /srv/s-keys/pid) 2>/dev/null; rm -rf /srv/s-keys; true",
    );
}

#[test]
fn apt_repository_adds_a_line_updates_the_cache_and_removes_one() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let reset = format!(
        "{LOCAL_REPO}rm -f /etc/apt/sources.list.d/file_srv_s_apt_repo.list
printf 'deb http://example.invalid/debian bookworm main\\n#deb-src  http://keep.invalid/x y\\n' > /etc/apt/sources.list.d/s-old.list"
    );
    prove(
        hosts,
        Scenario {
            host,
            reset: &reset,
            tasks: "    - apt_repository: {repo: 'deb http://example.invalid/debian bookworm main', state: absent, update_cache: no}\n    - apt_repository: {repo: 'deb [trusted=yes] file:/srv/s-apt/repo ./'}\n",
            verify: "cat /etc/apt/sources.list.d/s-old.list /etc/apt/sources.list.d/file_srv_s_apt_repo.list; stat -c %a /etc/apt/sources.list.d/file_srv_s_apt_repo.list; apt-cache policy s-dummy | grep -c 'file:/srv/s-apt/repo'",
            expected: "# deb-src http://keep.invalid/x y\ndeb [trusted=yes] file:/srv/s-apt/repo ./\n644\n1\n",
            drift: "rm /etc/apt/sources.list.d/file_srv_s_apt_repo.list",
            diff_shows: "+deb [trusted=yes] file:/srv/s-apt/repo ./",
        },
    );
    hosts.ssh(
        host,
        "rm -f /etc/apt/sources.list.d/file_srv_s_apt_repo.list /etc/apt/sources.list.d/s-old.list; apt-get update -q >/dev/null",
    );
}

#[test]
fn apt_repository_refuses_a_ppa_it_cannot_look_up() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - apt_repository: {{repo: 'ppa:deadsnakes/ppa', codename: jammy}}\n"),
    );
    let out = run(&s, &["--check"]);
    out.assert_code(2);
    assert!(out.stdout.contains("Launchpad"), "{}", out.stdout);
}

#[test]
fn deb822_repository_writes_the_sources_file_and_fetches_its_key() {
    let hosts = test_hosts();
    let host = hosts.names()[2];
    let (key, _) = test_key();
    let reset = format!(
        "{LOCAL_REPO}rm -f /etc/apt/sources.list.d/settle-local.sources /etc/apt/keyrings/settle-local.*\n{}",
        serve_keys(&key)
    );
    prove(
        hosts,
        Scenario {
            host,
            reset: &reset,
            tasks: "    - deb822_repository:\n        name: Settle local\n        uris: file:/srv/s-apt/repo\n        suites: ./\n        trusted: yes\n        signed_by: http://127.0.0.1:18080/key.asc\n",
            verify: "cat /etc/apt/sources.list.d/settle-local.sources; stat -c %a /etc/apt/sources.list.d/settle-local.sources; cmp /srv/s-keys/key.asc /etc/apt/keyrings/settle-local.asc && echo same key; apt-get update -q >/dev/null && apt-cache policy s-dummy | grep -c 'file:/srv/s-apt/repo'",
            expected: "X-Repolib-Name: Settle local\nSigned-By: /etc/apt/keyrings/settle-local.asc\nSuites: ./\nTrusted: yes\nTypes: deb\nURIs: file:/srv/s-apt/repo\n644\nsame key\n1\n",
            drift: "sed -i 's/^Trusted: yes/Trusted: no/' /etc/apt/sources.list.d/settle-local.sources",
            diff_shows: "+Trusted: yes",
        },
    );
    // state: absent removes the file and the key it fetched.
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - deb822_repository: {{name: Settle local, state: absent}}\n"),
    );
    let gone = run(&s, &[]);
    gone.assert_code(0);
    assert_eq!(gone.recap(host)["changed"], 1, "{}", gone.stdout);
    assert_eq!(
        hosts.ssh(
            host,
            "ls /etc/apt/sources.list.d/settle-local.sources /etc/apt/keyrings/settle-local.* 2>&1 | grep -c 'No such file'"
        ),
        "2\n"
    );
    stop_serving(hosts, host);
    hosts.ssh(host, "apt-get update -q >/dev/null");
}

#[test]
fn apt_key_adds_a_key_to_a_keyring() {
    let hosts = test_hosts();
    let host = hosts.names()[1];
    let (key, long_id) = test_key();
    let keyring = "/etc/apt/trusted.gpg.d/settle-test.gpg";
    let reset = format!(
        "command -v gpg >/dev/null || {{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnupg >/dev/null; }}; rm -f {keyring} {keyring}~"
    );
    let tasks = format!(
        "    - apt_key: {{data: {}, keyring: {keyring}}}\n",
        serde_json::to_string(&key).unwrap()
    );
    let verify = format!(
        "gpg --no-default-keyring --keyring {keyring} --with-colons --list-keys 2>/dev/null | awk -F: '/^pub/{{print $5}}'"
    );
    let drift = format!(
        "apt-key --keyring {keyring} del {} >/dev/null 2>&1",
        &long_id[8..]
    );
    let expected = format!("{long_id}\n");
    let shows = format!("key: (absent) → {long_id}");
    prove(
        hosts,
        Scenario {
            host,
            reset: &reset,
            tasks: &tasks,
            verify: &verify,
            expected: &expected,
            drift: &drift,
            diff_shows: &shows,
        },
    );
    hosts.ssh(host, &format!("rm -f {keyring} {keyring}~"));
}

#[test]
fn dpkg_selections_holds_a_package_and_debconf_answers_a_question() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    prove(
        hosts,
        Scenario {
            host,
            reset: "echo sensible-utils install | dpkg --set-selections",
            tasks: "    - dpkg_selections: {name: sensible-utils, selection: hold}\n",
            verify: "dpkg --get-selections sensible-utils | awk '{print $2}'",
            expected: "hold\n",
            drift: "echo sensible-utils install | dpkg --set-selections",
            diff_shows: "selection: install → hold",
        },
    );
    hosts.ssh(host, "echo sensible-utils install | dpkg --set-selections");

    prove(
        hosts,
        Scenario {
            host,
            reset: "echo 'tzdata tzdata/Areas select Etc' | debconf-set-selections; echo 'settle-test settle-test/secret password oldpw7' | debconf-set-selections",
            tasks: "    - debconf: {name: tzdata, question: tzdata/Areas, vtype: select, value: Europe}\n    - debconf: {name: settle-test, question: settle-test/secret, vtype: password, value: hunter2}\n",
            verify: "debconf-show tzdata | grep 'tzdata/Areas:'; grep -A2 '^Name: settle-test/secret' /var/cache/debconf/passwords.dat | sed -n 's/^Value: //p'",
            expected: "* tzdata/Areas: Europe\nhunter2\n",
            drift: "echo 'tzdata tzdata/Areas select Etc' | debconf-set-selections",
            diff_shows: "-    \"tzdata/Areas\": \"Etc\"\n+    \"tzdata/Areas\": \"Europe\"",
        },
    );
    // A password is never shown, in the diff or the results.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    hosts.ssh(
        host,
        "echo 'settle-test settle-test/secret password oldpw7' | debconf-set-selections",
    );
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n    - debconf: {{name: settle-test, question: settle-test/secret, vtype: password, value: hunter2}}\n      register: r\n    - debug: {{var: r}}\n"),
    );
    let out = run(&s, &["--diff", "-vvv"]);
    out.assert_code(0);
    assert_eq!(out.recap(host)["changed"], 1, "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    assert!(!out.stdout.contains("oldpw7"), "{}", out.stdout);
    hosts.ssh(
        host,
        "echo 'tzdata tzdata/Areas select Etc' | debconf-set-selections",
    );
}
