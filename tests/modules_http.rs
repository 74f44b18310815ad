//! get_url, uri and unarchive against real HTTP(S) servers this test starts on the machine the
//! test hosts share the network with (never the internet): a small HTTP server in this process
//! (redirects, basic auth, JSON, checksums, If-Modified-Since) and `openssl s_server` with a
//! test CA for TLS (tests/common/http.rs).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::hosts::test_hosts;
use common::http::{HELLO, tls_server};
use common::scenario::{Scenario, TURN, changed, prove, run};

/// The server's files: name → bytes.
struct Served {
    port: u16,
    tarball: Vec<u8>,
}

fn sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A tarball of `site/index.html` and `site/conf/app.conf`, made with the machine's tar.
fn make_tarball() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/conf")).unwrap();
    std::fs::write(dir.path().join("site/index.html"), "<h1>settle</h1>\n").unwrap();
    std::fs::write(dir.path().join("site/conf/app.conf"), "port=8080\n").unwrap();
    let out = Command::new("tar")
        .args(["-czf", "-", "-C"])
        .arg(dir.path())
        .arg("site")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn server() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tarball = make_tarball();
        let served = tarball.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tarball = served.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &tarball);
                });
            }
        });
        Served { port, tarball }
    })
}

fn answer(mut stream: TcpStream, tarball: &[u8]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = vec![
        0;
        header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    ];
    reader.read_exact(&mut body)?;
    let sums = format!(
        "{}  hello.txt\n{}  site.tar.gz\n",
        sha256(HELLO.as_bytes()),
        sha256(tarball)
    );
    let ok = |ctype: &str, bytes: Vec<u8>| (200, ctype.to_string(), bytes, Vec::<String>::new());
    // Files are old: an If-Modified-Since from a file written since is answered 304.
    let not_modified = header("if-modified-since").is_some();
    let (status, ctype, bytes, extra) = match (method.as_str(), path.as_str()) {
        ("GET", "/files/hello.txt") if not_modified => (304, String::new(), vec![], vec![]),
        ("GET", "/files/hello.txt") => ok("text/plain", HELLO.into()),
        ("GET", "/files/SHA256SUMS") => ok("text/plain", sums.into_bytes()),
        ("GET", "/files/site.tar.gz") => ok("application/gzip", tarball.to_vec()),
        ("GET", "/moved") => (
            302,
            String::new(),
            vec![],
            vec!["Location: /files/hello.txt".into()],
        ),
        ("GET", "/private/hello.txt") => {
            // "deploy:s3cret"
            if header("authorization").as_deref() == Some("Basic ZGVwbG95OnMzY3JldA==") {
                ok("text/plain", HELLO.into())
            } else {
                (
                    401,
                    "text/plain".into(),
                    b"who are you?".to_vec(),
                    vec!["WWW-Authenticate: Basic realm=\"test\"".into()],
                )
            }
        }
        ("GET", "/api/status") => ok(
            "application/json",
            br#"{"ok": true, "version": 3}"#.to_vec(),
        ),
        ("POST", "/api/echo") => (
            201,
            "application/json".into(),
            body.clone(),
            vec!["X-Echo-Type: ".to_string() + &header("content-type").unwrap_or_default()],
        ),
        _ => (404, "text/plain".into(), b"no such thing".to_vec(), vec![]),
    };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        302 => "Found",
        304 => "Not Modified",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\nLast-Modified: Mon, 01 Jan 2001 00:00:00 GMT\r\n",
        bytes.len()
    );
    if !ctype.is_empty() {
        head.push_str(&format!("Content-Type: {ctype}\r\n"));
    }
    for e in extra {
        head.push_str(&e);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&bytes)?;
    stream.flush()
}

fn base() -> String {
    format!("http://127.0.0.1:{}", server().port)
}

#[test]
fn get_url_checksum_redirect_and_basic_auth() {
    let hosts = test_hosts();
    let b = base();
    let tasks = format!(
        "    - file: {{path: /srv/h-get/moved, state: directory}}\n\
         \x20   - get_url: {{url: '{b}/files/hello.txt', dest: /srv/h-get/hello.txt, checksum: 'sha256:{b}/files/SHA256SUMS', mode: '0640'}}\n\
         \x20   - get_url: {{url: '{b}/moved', dest: /srv/h-get/moved/, force: yes}}\n\
         \x20   - get_url: {{url: '{b}/private/hello.txt', dest: /srv/h-get/private.txt, url_username: deploy, url_password: s3cret}}\n"
    );
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/h-get",
            tasks: &tasks,
            verify: "cd /srv/h-get && stat -c '%n %a' hello.txt && cat hello.txt private.txt moved/hello.txt && ls",
            expected: &format!(
                "hello.txt 640\n{HELLO}{HELLO}{HELLO}hello.txt\nmoved\nprivate.txt\n"
            ),
            drift: "echo tampered > /srv/h-get/hello.txt",
            diff_shows: "-tampered",
        },
    );
}

#[test]
fn get_url_refuses_a_wrong_checksum_and_keeps_the_file() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - get_url: {{url: '{b}/files/hello.txt', dest: /tmp/h-bad.txt, checksum: 'sha256:{zeros}'}}\n\
             \x20     register: bad\n      ignore_errors: yes\n\
             \x20   - assert: {{that: ['bad is failed', \"'did not match' in bad.msg\"]}}\n\
             \x20   - get_url: {{url: '{b}/nowhere', dest: /tmp/h-404.txt}}\n\
             \x20     register: missing\n      ignore_errors: yes\n\
             \x20   - assert: {{that: ['missing is failed', 'missing.status_code == 404']}}\n",
            b = base(),
            zeros = "0".repeat(64)
        ),
    );
    hosts.ssh(host, "rm -f /tmp/h-bad.txt /tmp/h-404.txt");
    let r = run(&s, &[]);
    r.assert_code(0);
    assert_eq!(
        hosts.ssh(host, "ls /tmp/h-bad.txt /tmp/h-404.txt 2>&1 | wc -l"),
        "2\n"
    );
    assert!(!hosts.ssh(host, "ls /tmp").contains("h-bad.txt"));
}

#[test]
fn uri_answers_with_status_json_headers_and_redirects() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - uri: {{url: '{b}/api/status'}}\n      register: st\n\
             \x20   - assert: {{that: ['st.status == 200', 'st.json.ok', 'st.json.version == 3', 'st is not changed', \"st.content_type == 'application/json'\", 'not st.redirected', 'st.content is not defined']}}\n\
             \x20   - uri: {{url: '{b}/api/echo', method: POST, body_format: json, body: {{name: settle, n: 2}}, status_code: 201, return_content: yes}}\n      register: echo\n\
             \x20   - assert: {{that: [\"echo.json == {{'name': 'settle', 'n': 2}}\", \"echo.x_echo_type == 'application/json'\", \"echo.content == '{{\\\"name\\\": \\\"settle\\\", \\\"n\\\": 2}}'\"]}}\n\
             \x20   - uri: {{url: '{b}/moved', return_content: yes}}\n      register: moved\n\
             \x20   - assert: {{that: ['moved.redirected', \"moved.url == '{b}/files/hello.txt'\", \"moved.content == 'hello over http\\\\n'\"]}}\n\
             \x20   - uri: {{url: '{b}/moved', follow_redirects: none, status_code: 302}}\n      register: stay\n\
             \x20   - assert: {{that: [\"stay.location == '{b}/files/hello.txt'\", 'not stay.redirected']}}\n\
             \x20   - uri: {{url: '{b}/private/hello.txt', url_username: deploy, url_password: s3cret, force_basic_auth: yes}}\n\
             \x20   - uri: {{url: '{b}/api/echo', method: POST, src: body.json, status_code: 201}}\n      register: sent\n\
             \x20   - assert: {{that: [\"sent.json.from == 'a file'\"]}}\n\
             \x20   - uri: {{url: '{b}/private/hello.txt'}}\n\
             \x20   - uri: {{url: '{b}/nowhere'}}\n      register: gone\n      ignore_errors: yes\n\
             \x20   - assert: {{that: ['gone is failed', 'gone.status == 404', \"gone.msg.startswith('Status code was 404 and not [200]')\"]}}\n",
            b = base()
        ),
    );
    s.write("files/body.json", r#"{"from": "a file"}"#);
    hosts.ssh(
        host,
        "printf 'machine 127.0.0.1 login deploy password s3cret\\n' > /root/.netrc",
    );
    let r = run(&s, &[]);
    hosts.ssh(host, "rm -f /root/.netrc");
    r.assert_code(0);
    assert_eq!(changed(&r, host), 0, "{}", r.stdout);
    // Ansible's uri does not run in check mode: skipped, never failed.
    s.write(
        "check.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - uri: {{url: '{}/api/status'}}\n      register: st\n    - assert: {{that: ['st is skipped', \"st.msg == 'This action (uri) does not support check mode.'\"]}}\n",
            base()
        ),
    );
    let c = s.settle(&["check.yml", "-i", "inv", "--check"]);
    c.assert_code(0);
}

#[test]
fn unarchive_from_a_url_unpacks_once() {
    let hosts = test_hosts();
    let b = base();
    let tasks = format!(
        "    - file: {{path: /srv/h-unarchive, state: directory}}\n\
         \x20   - unarchive: {{src: '{b}/files/site.tar.gz', remote_src: yes, dest: /srv/h-unarchive}}\n"
    );
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/h-unarchive",
            tasks: &tasks,
            verify: "cat /srv/h-unarchive/site/index.html /srv/h-unarchive/site/conf/app.conf",
            expected: "<h1>settle</h1>\nport=8080\n",
            drift: "echo broken > /srv/h-unarchive/site/index.html",
            diff_shows: "index.html",
        },
    );
}

#[test]
fn unarchive_a_controller_file_with_mode_and_list_files() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[1];
    let s = hosts.scratch();
    std::fs::create_dir_all(s.path("files")).unwrap();
    std::fs::write(s.path("files/site.tar.gz"), &server().tarball).unwrap();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: /srv/h-unpack, state: directory}}\n\
             \x20   - unarchive: {{src: site.tar.gz, dest: /srv/h-unpack, list_files: yes, mode: 'u=rwX,g=rX,o='}}\n      register: un\n\
             \x20   - assert: {{that: [\"'site/index.html' in un.files\", \"un.handler == 'TgzArchive'\"]}}\n\
             \x20   - unarchive: {{src: site.tar.gz, dest: /srv/h-unpack, creates: /srv/h-unpack/site}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/h-unpack");
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 2, "{}", first.stdout);
    assert_eq!(
        hosts.ssh(
            host,
            "stat -c '%a' /srv/h-unpack/site/index.html /srv/h-unpack/site/conf"
        ),
        "640\n750\n"
    );
    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);
}

#[test]
fn https_is_verified_against_the_hosts_cas_or_ca_path() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let host = hosts.names()[1];
    let tls = tls_server();
    let s = hosts.scratch();
    s.write("files/test-ca.pem", &tls.ca);
    let url = format!("https://127.0.0.1:{}/hello.txt", tls.port);
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - copy: {{src: test-ca.pem, dest: /tmp/h-test-ca.pem}}\n\
             \x20   - get_url: {{url: '{url}', dest: /tmp/h-tls-unverified.txt}}\n      register: strict\n      ignore_errors: yes\n\
             \x20   - assert: {{that: ['strict is failed', \"'CERTIFICATE_VERIFY_FAILED' in strict.msg\"]}}\n\
             \x20   - get_url: {{url: '{url}', dest: /tmp/h-tls.txt, validate_certs: no}}\n\
             \x20   - uri: {{url: '{url}', ca_path: /tmp/h-test-ca.pem, return_content: yes}}\n      register: fetched\n\
             \x20   - assert: {{that: [\"fetched.content == 'hello over http\\\\n'\"]}}\n"
        ),
    );
    hosts.ssh(
        host,
        "rm -f /tmp/h-tls.txt /tmp/h-tls-unverified.txt /tmp/h-test-ca.pem",
    );
    let r = run(&s, &[]);
    r.assert_code(0);
    assert_eq!(hosts.ssh(host, "cat /tmp/h-tls.txt"), HELLO);
}
