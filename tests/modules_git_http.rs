//! The `git` arguments beyond a plain checkout (bare repositories, submodules, SSH with a key,
//! refspec, reference, separate_git_dir, GPG-verified commits, archives, umask) against real
//! repositories the test makes on the test hosts, and the `get_url`/`uri` TLS arguments
//! (client certificates, ciphers), HTTP over a Unix socket and `use_gssapi`, against servers
//! the test starts (tests/common/http.rs), never the internet.

mod common;

use std::sync::OnceLock;

use common::hosts::{TestHosts, test_hosts};
use common::http::{HELLO, TlsOptions, tls_server_with};
use common::scenario::{Scenario, TURN, changed, prove, run};

/// git, gpg and Python's HTTP server on every host, and local repositories allowed as
/// submodules (git refuses the file transport for them by default since 2.38).
fn hosts() -> &'static TestHosts {
    static READY: OnceLock<()> = OnceLock::new();
    let hosts = test_hosts();
    READY.get_or_init(|| {
        for host in hosts.names() {
            hosts.ssh(
                host,
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git gpg >/dev/null 2>&1 \
                 || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git gpg >/dev/null); \
                 git config --system protocol.file.allow always",
            );
        }
    });
    hosts
}

/// Commits with a fixed author and date, so a repository made twice has the same commits.
const GIT_ENV: &str = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t \
    GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
    GIT_COMMITTER_DATE='2026-01-01T00:00:00Z';";

/// /srv/gh-src/app.git: `main` at "two" (tags v1 and annotated v1a at "one"), and a commit "pr"
/// only on refs/pull/1/head. Prints that commit.
fn make_app_repo(hosts: &TestHosts, host: &str) -> String {
    let script = format!(
        "set -e; {GIT_ENV} rm -rf /srv/gh-src/app.git; mkdir -p /srv/gh-src; \
         git init -q --bare -b main /srv/gh-src/app.git; w=$(mktemp -d); \
         git clone -q /srv/gh-src/app.git $w 2>/dev/null; cd $w; git checkout -q -b main; \
         echo one > app.txt; git add app.txt; git commit -qm one; git tag v1; git tag -a v1a -m v1a; \
         echo two > app.txt; git commit -qam two; git push -q origin main --tags; \
         git checkout -q -b pr; echo pr > app.txt; git commit -qam pr; \
         git push -q origin pr:refs/pull/1/head; git rev-parse HEAD; cd /; rm -rf $w"
    );
    hosts.ssh(host, &script).trim().to_string()
}

#[test]
fn git_bare_repository_fetches_branches_and_tags() {
    let hosts = hosts();
    let host = hosts.names()[0];
    make_app_repo(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-bare",
            tasks: "    - git: {repo: /srv/gh-src/app.git, dest: /srv/gh-bare/app.git, bare: yes}\n",
            verify: "git -C /srv/gh-bare/app.git for-each-ref --format='%(refname)'; \
                     git -C /srv/gh-bare/app.git rev-parse --is-bare-repository; \
                     git -C /srv/gh-bare/app.git show main:app.txt",
            expected: "refs/heads/main\nrefs/tags/v1\nrefs/tags/v1a\ntrue\ntwo\n",
            drift: "git -C /srv/gh-bare/app.git tag -d v1 >/dev/null",
            diff_shows: "refs/tags/v1",
        },
    );
}

#[test]
fn git_refspec_fetches_a_commit_no_branch_has_with_a_reference_repository() {
    let hosts = hosts();
    let host = hosts.names()[0];
    let pr = make_app_repo(hosts, host);
    let tasks = format!(
        "    - git: {{repo: /srv/gh-src/app.git, dest: /srv/gh-pr/app, version: {pr}, refspec: refs/pull/1/head, reference: /srv/gh-src/app.git}}\n"
    );
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-pr",
            tasks: &tasks,
            verify: "cat /srv/gh-pr/app/app.txt /srv/gh-pr/app/.git/objects/info/alternates",
            expected: "pr\n/srv/gh-src/app.git/objects\n",
            drift: "git -C /srv/gh-pr/app checkout -q --detach main",
            diff_shows: &pr,
        },
    );
}

#[test]
fn git_separate_git_dir_is_where_the_repository_is_kept() {
    let hosts = hosts();
    let host = hosts.names()[1];
    make_app_repo(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-sep",
            tasks: "    - git: {repo: /srv/gh-src/app.git, dest: /srv/gh-sep/app, separate_git_dir: /srv/gh-sep/app.git}\n",
            verify: "head -1 /srv/gh-sep/app/.git | tr -d '\\n'; echo; cat /srv/gh-sep/app/app.txt; \
                     test -f /srv/gh-sep/app.git/HEAD && echo kept apart",
            expected: "gitdir: /srv/gh-sep/app.git\ntwo\nkept apart\n",
            drift: "rm /srv/gh-sep/app/.git && mv /srv/gh-sep/app.git /srv/gh-sep/app/.git",
            diff_shows: "git dir: /srv/gh-sep/app/.git → /srv/gh-sep/app.git",
        },
    );
}

#[test]
fn git_archive_is_made_with_its_prefix_under_the_umask() {
    let hosts = hosts();
    let host = hosts.names()[1];
    make_app_repo(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-arc",
            tasks: "    - git: {repo: /srv/gh-src/app.git, dest: /srv/gh-arc/app, archive: /srv/gh-arc/app.tar.gz, archive_prefix: app/, umask: '0027'}\n",
            verify: "tar tzf /srv/gh-arc/app.tar.gz; tar xzOf /srv/gh-arc/app.tar.gz app/app.txt; \
                     stat -c '%a %n' /srv/gh-arc/app.tar.gz /srv/gh-arc/app/app.txt /srv/gh-arc/app /srv/gh-arc",
            expected: "app/\napp/app.txt\ntwo\n640 /srv/gh-arc/app.tar.gz\n640 /srv/gh-arc/app/app.txt\n750 /srv/gh-arc/app\n750 /srv/gh-arc\n",
            drift: "rm /srv/gh-arc/app.tar.gz",
            diff_shows: "archive",
        },
    );
    // Ansible's messages for what is not right.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - git: {{repo: /srv/gh-src/app.git, dest: /srv/gh-arc/x, archive: /srv/gh-arc/app.rar}}\n      register: rar\n      ignore_errors: yes\n\
             \x20   - git: {{repo: /srv/gh-src/app.git, dest: /srv/gh-arc/x, umask: 18}}\n      register: mask\n      ignore_errors: yes\n\
             \x20   - git: {{repo: /srv/gh-src/app.git, dest: /srv/gh-arc/x, archive_prefix: app/}}\n      register: prefix\n      ignore_errors: yes\n\
             \x20   - assert:\n        that:\n\
             \x20         - \"rar.msg == 'Unable to get file extension from archive file name : /srv/gh-arc/app.rar'\"\n\
             \x20         - \"mask.msg == 'umask must be defined as a quoted octal integer'\"\n\
             \x20         - \"'archive_prefix' in prefix.msg\"\n"
        ),
    );
    let r = run(&s, &[]);
    r.assert_code(0);
    assert_eq!(hosts.ssh(host, "ls /srv/gh-arc"), "app\napp.tar.gz\n");
}

/// /srv/gh-src/lib.git at "three" and /srv/gh-src/super.git, whose `lib` submodule is
/// recorded at lib's "two".
fn make_super_repo(hosts: &TestHosts, host: &str) {
    let script = format!(
        "set -e; {GIT_ENV} rm -rf /srv/gh-src/lib.git /srv/gh-src/super.git; mkdir -p /srv/gh-src; \
         git init -q --bare -b main /srv/gh-src/lib.git; git init -q --bare -b main /srv/gh-src/super.git; \
         l=$(mktemp -d); git clone -q /srv/gh-src/lib.git $l 2>/dev/null; cd $l; git checkout -q -b main; \
         echo one > lib.txt; git add lib.txt; git commit -qm one; echo two > lib.txt; git commit -qam two; \
         git push -q origin main; \
         s=$(mktemp -d); git clone -q /srv/gh-src/super.git $s 2>/dev/null; cd $s; git checkout -q -b main; \
         echo app > app.txt; git add app.txt; git submodule add -q /srv/gh-src/lib.git lib; \
         git commit -qm 'with lib'; git push -q origin main; \
         cd $l; echo three > lib.txt; git commit -qam three; git push -q origin main; \
         cd /; rm -rf $l $s"
    );
    hosts.ssh(host, &script);
}

#[test]
fn git_submodules_are_checked_out_at_the_recorded_commit_or_their_branch() {
    let hosts = hosts();
    let host = hosts.names()[2];
    make_super_repo(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-sub /srv/gh-track",
            tasks: "    - git: {repo: /srv/gh-src/super.git, dest: /srv/gh-sub}\n\
                    \x20   - git: {repo: /srv/gh-src/super.git, dest: /srv/gh-track, track_submodules: yes}\n",
            verify: "cat /srv/gh-sub/app.txt /srv/gh-sub/lib/lib.txt /srv/gh-track/lib/lib.txt; \
                     git -C /srv/gh-sub submodule status | cut -c1 | tr ' ' '='",
            expected: "app\ntwo\nthree\n=\n",
            drift: "git -C /srv/gh-sub/lib checkout -q HEAD~1",
            diff_shows: "submodules: lib not at the recorded commit",
        },
    );
    // Without `recursive`, submodules are left alone.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - git: {{repo: /srv/gh-src/super.git, dest: /srv/gh-flat, recursive: no}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/gh-flat");
    run(&s, &[]).assert_code(0);
    assert_eq!(
        hosts.ssh(host, "ls -A /srv/gh-flat/lib | wc -l"),
        "0\n",
        "lib is not checked out"
    );
}

#[test]
fn git_over_ssh_uses_key_file_and_ssh_opts() {
    let hosts = hosts();
    let (client, server) = (hosts.names()[0], hosts.names()[1]);
    let (_, port, address) = hosts.hosts[1].clone();
    // The server: a repository with two commits. The client: a key the server accepts, and
    // no other key of its own.
    hosts.ssh(
        server,
        &format!(
            "set -e; {GIT_ENV} rm -rf /srv/gh-ssh; git init -q --bare -b main /srv/gh-ssh/app.git; \
             w=$(mktemp -d); git clone -q /srv/gh-ssh/app.git $w 2>/dev/null; cd $w; git checkout -q -b main; \
             echo one > app.txt; git add app.txt; git commit -qm one; echo two > app.txt; git commit -qam two; \
             git push -q origin main; cd /; rm -rf $w"
        ),
    );
    let public = hosts.ssh(
        client,
        "rm -f /root/gh-key /root/gh-key.pub; ssh-keygen -q -t ed25519 -N '' -C gh-test -f /root/gh-key; cat /root/gh-key.pub",
    );
    hosts.ssh(
        server,
        &format!(
            "sed -i '/ gh-test$/d' /root/.ssh/authorized_keys; echo '{}' >> /root/.ssh/authorized_keys",
            public.trim()
        ),
    );
    let url = format!("ssh://root@{address}:{port}/srv/gh-ssh/app.git");
    let tasks = format!(
        "    - git: {{repo: '{url}', dest: /srv/gh-ssh-co, key_file: /root/gh-key, ssh_opts: '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR', accept_hostkey: yes}}\n"
    );
    prove(
        hosts,
        Scenario {
            host: client,
            reset: "rm -rf /srv/gh-ssh-co",
            tasks: &tasks,
            verify: "cat /srv/gh-ssh-co/app.txt",
            expected: "two\n",
            drift: "git -C /srv/gh-ssh-co reset -q --hard HEAD~1",
            diff_shows: "version",
        },
    );
    // Without the key the server refuses: key_file is what let it in.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {client}\n  gather_facts: no\n  tasks:\n\
             \x20   - git: {{repo: '{url}', dest: /srv/gh-ssh-nokey, ssh_opts: '-o UserKnownHostsFile=/dev/null', accept_hostkey: yes}}\n      register: nokey\n      ignore_errors: yes\n\
             \x20   - assert: {{that: ['nokey is failed', \"'Permission denied' in nokey.msg\"]}}\n"
        ),
    );
    let r = run(&s, &[]);
    hosts.ssh(server, "sed -i '/ gh-test$/d' /root/.ssh/authorized_keys");
    r.assert_code(0);
}

#[test]
fn git_verify_commit_checks_the_signature_and_its_key() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts();
    let host = hosts.names()[2];
    // A key made on the host, a commit it signs on `signed`, one it does not on `unsigned`.
    let fingerprint = hosts.ssh(
        host,
        &format!(
            "set -e; {GIT_ENV} rm -rf /root/.gnupg /srv/gh-gpg; \
             gpg --batch -q --passphrase '' --quick-gen-key 'settle test <t@example.org>' ed25519 sign never 2>/dev/null; \
             fpr=$(gpg --with-colons --list-keys t@example.org | awk -F: '/^fpr/ {{print $10; exit}}'); \
             git init -q --bare -b main /srv/gh-gpg/app.git; w=$(mktemp -d); \
             git clone -q /srv/gh-gpg/app.git $w 2>/dev/null; cd $w; git checkout -q -b signed; \
             echo one > app.txt; git add app.txt; git -c user.signingkey=$fpr commit -q -S -m signed; \
             git push -q origin signed; git checkout -q -b unsigned; echo two > app.txt; \
             git commit -qam unsigned; git push -q origin unsigned; cd /; rm -rf $w; echo $fpr"
        ),
    );
    let fingerprint = fingerprint.trim();
    let s = hosts.scratch();
    let repo = "repo: /srv/gh-gpg/app.git, verify_commit: yes";
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - git: {{{repo}, dest: /srv/gh-gpg/signed, version: signed, gpg_allowlist: ['{fingerprint}']}}\n\
             \x20   - git: {{{repo}, dest: /srv/gh-gpg/whitelisted, version: signed, gpg_whitelist: ['{fingerprint}']}}\n\
             \x20   - git: {{{repo}, dest: /srv/gh-gpg/unsigned, version: unsigned}}\n      register: unsigned\n      ignore_errors: yes\n\
             \x20   - git: {{{repo}, dest: /srv/gh-gpg/stranger, version: signed, gpg_allowlist: ['{zeros}']}}\n      register: stranger\n      ignore_errors: yes\n\
             \x20   - assert:\n        that:\n\
             \x20         - unsigned is failed\n\
             \x20         - \"unsigned.msg == 'Failed to verify GPG signature of commit/tag \\\"unsigned\\\"'\"\n\
             \x20         - stranger is failed\n\
             \x20         - \"stranger.msg == 'The gpg_allowlist does not include the public key \\\"{fingerprint}\\\" for this commit'\"\n",
            zeros = "0".repeat(40)
        ),
    );
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(
        hosts.ssh(
            host,
            "cat /srv/gh-gpg/signed/app.txt /srv/gh-gpg/whitelisted/app.txt"
        ),
        "one\none\n"
    );
    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);
}

#[test]
fn https_client_certificate_from_client_cert_and_client_key() {
    let hosts = hosts();
    let host = hosts.names()[0];
    let tls = tls_server_with(&TlsOptions {
        require_client_cert: true,
        only_cipher: None,
    });
    let url = format!("https://127.0.0.1:{}/hello.txt", tls.port);
    let s_files = [
        ("ca.pem", tls.ca.clone()),
        ("client.pem", tls.file("client.pem")),
        ("client.key", tls.file("client.key")),
        ("both.pem", tls.file("client.pem") + &tls.file("client.key")),
        ("other.pem", tls.file("other-client.pem")),
        ("other.key", tls.file("other-client.key")),
    ];
    let copies: String = s_files
        .iter()
        .map(|(name, text)| {
            format!(
                "    - copy: {{dest: /srv/gh-tls/{name}, mode: '0600', content: {}}}\n",
                serde_json::to_string(text).unwrap()
            )
        })
        .collect();
    let tasks = format!(
        "    - file: {{path: /srv/gh-tls, state: directory}}\n{copies}\
         \x20   - get_url: {{url: '{url}', dest: /srv/gh-tls/hello.txt, validate_certs: no, client_cert: /srv/gh-tls/client.pem, client_key: /srv/gh-tls/client.key}}\n"
    );
    prove(
        hosts,
        Scenario {
            host,
            reset: "rm -rf /srv/gh-tls",
            tasks: &tasks,
            verify: "cat /srv/gh-tls/hello.txt",
            expected: HELLO,
            drift: "echo tampered > /srv/gh-tls/hello.txt",
            diff_shows: "-tampered",
        },
    );
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = hosts.scratch();
    let ca = "ca_path: /srv/gh-tls/ca.pem";
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - uri: {{url: '{url}', {ca}, client_cert: /srv/gh-tls/both.pem, return_content: yes}}\n      register: both\n\
             \x20   - uri: {{url: '{url}', {ca}}}\n      register: anonymous\n      ignore_errors: yes\n\
             \x20   - uri: {{url: '{url}', {ca}, client_cert: /srv/gh-tls/other.pem, client_key: /srv/gh-tls/other.key}}\n      register: stranger\n      ignore_errors: yes\n\
             \x20   - uri: {{url: '{url}', {ca}, client_cert: /srv/gh-tls/client.pem, client_key: /srv/gh-tls/other.key}}\n      register: mismatch\n      ignore_errors: yes\n\
             \x20   - uri: {{url: '{url}', {ca}, client_cert: /srv/gh-tls/client.pem}}\n      register: nokey\n      ignore_errors: yes\n\
             \x20   - assert:\n        that:\n\
             \x20         - \"both.content == 'hello over http\\\\n'\"\n\
             \x20         - anonymous is failed\n\
             \x20         - stranger is failed\n\
             \x20         - mismatch is failed\n\
             \x20         - \"'cannot be used together' in mismatch.msg\"\n\
             \x20         - nokey is failed\n\
             \x20         - \"'no unencrypted PEM private key' in nokey.msg\"\n"
        ),
    );
    let r = run(&s, &[]);
    r.assert_code(0);
}

#[test]
fn https_ciphers_choose_the_suite_and_name_what_rustls_lacks() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts();
    let host = hosts.names()[1];
    let tls = tls_server_with(&TlsOptions {
        require_client_cert: false,
        only_cipher: Some("ECDHE-RSA-AES128-GCM-SHA256"),
    });
    let url = format!("https://127.0.0.1:{}/hello.txt", tls.port);
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - uri: {{url: '{url}', validate_certs: no, ciphers: [ECDHE-RSA-AES128-GCM-SHA256], return_content: yes}}\n      register: agreed\n\
             \x20   - uri: {{url: '{url}', validate_certs: no, ciphers: ['HIGH:!aECDSA:!RC4']}}\n\
             \x20   - uri: {{url: '{url}', validate_certs: no, ciphers: [ECDHE-RSA-AES256-GCM-SHA384]}}\n      register: refused\n      ignore_errors: yes\n\
             \x20   - get_url: {{url: '{url}', dest: /tmp/gh-cbc.txt, validate_certs: no, ciphers: [AES256-SHA]}}\n      register: cbc\n      ignore_errors: yes\n\
             \x20   - assert:\n        that:\n\
             \x20         - \"agreed.content == 'hello over http\\\\n'\"\n\
             \x20         - refused is failed\n\
             \x20         - cbc is failed\n\
             \x20         - \"'ciphers: AES256-SHA not available' in cbc.msg\"\n"
        ),
    );
    let r = run(&s, &[]);
    r.assert_code(0);
}

/// A Python HTTP server on a Unix socket on the host, as a transient unit; stopped when
/// dropped.
struct SocketServer<'a> {
    hosts: &'a TestHosts,
    host: &'a str,
}

impl Drop for SocketServer<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ssh")
            .args([
                "-F",
                &self.hosts.state().join("ssh_config").display().to_string(),
                self.host,
                "systemctl stop gh-sock.service; rm -f /run/gh-sock.py /run/gh.sock",
            ])
            .output();
    }
}

const SOCKET_SERVER: &str = r#"
import http.server, os, socketserver
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('{"socket": true, "path": "%s", "host": "%s"}' % (self.path, self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def address_string(self):
        return "unix"
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    pass
if os.path.exists("/run/gh.sock"):
    os.unlink("/run/gh.sock")
Server("/run/gh.sock", Handler).serve_forever()
"#;

#[test]
fn uri_speaks_http_over_a_unix_socket_and_refuses_gssapi() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts();
    let host = hosts.names()[2];
    let s = hosts.scratch();
    s.write("files/gh-sock.py", SOCKET_SERVER);
    s.write(
        "start.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - copy: {{src: gh-sock.py, dest: /run/gh-sock.py}}\n"
        ),
    );
    s.settle(&["start.yml", "-i", "inv"]).assert_code(0);
    let _server = SocketServer { hosts, host };
    hosts.ssh(
        host,
        "systemctl stop gh-sock.service 2>/dev/null; systemd-run --quiet --unit=gh-sock python3 /run/gh-sock.py; \
         for i in $(seq 50); do test -S /run/gh.sock && break; sleep 0.1; done",
    );
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - uri: {{url: 'http://docker/v1.40/info', unix_socket: /run/gh.sock, use_gssapi: no}}\n      register: info\n\
             \x20   - uri: {{url: 'http://docker/info', unix_socket: /run/gh-none.sock}}\n      register: missing\n      ignore_errors: yes\n\
             \x20   - uri: {{url: 'http://docker/info', unix_socket: /run/gh.sock, use_gssapi: yes}}\n      register: kerberos\n      ignore_errors: yes\n\
             \x20   - get_url: {{url: 'http://127.0.0.1:9/x', dest: /tmp/gh-gss.txt, use_gssapi: yes}}\n      register: kerberos_get\n      ignore_errors: yes\n\
             \x20   - assert:\n        that:\n\
             \x20         - info.json.socket\n\
             \x20         - \"info.json.path == '/v1.40/info'\"\n\
             \x20         - \"info.json.host == 'docker'\"\n\
             \x20         - missing is failed\n\
             \x20         - \"'Invalid Socket File (/run/gh-none.sock)' in missing.msg\"\n\
             \x20         - kerberos is failed\n\
             \x20         - \"'use_gssapi=True needs GSSAPI' in kerberos.msg\"\n\
             \x20         - kerberos_get is failed\n\
             \x20         - \"'use_gssapi=True needs GSSAPI' in kerberos_get.msg\"\n"
        ),
    );
    let r = run(&s, &[]);
    r.assert_code(0);
    assert_eq!(changed(&r, host), 0, "{}", r.stdout);
}
