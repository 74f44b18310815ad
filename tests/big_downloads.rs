//! Downloads and archives larger than a transfer piece (1 MiB) on a real test host: `get_url`
//! streams a download to a temporary file beside `dest` while hashing it (checksum checked, a
//! second run moves nothing), `uri` with `dest` likewise, and `unarchive` of a controller
//! archive sends it in pieces like `copy` (no staged upload left behind, a second run changes
//! nothing). Functionality only: memory is measured by `bench/memory sizes`, not here.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

use common::hosts::test_hosts;
use common::scenario::{SNAPSHOT, Scenario, TURN, changed, prove, run};

const MB: usize = 1 << 20;

fn digest(tool: &str, bytes: &[u8]) -> String {
    let mut child = std::process::Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect(tool);
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A file of 3 MiB and a few bytes: several pieces and a short last one.
fn big() -> &'static [u8] {
    static BIG: OnceLock<Vec<u8>> = OnceLock::new();
    BIG.get_or_init(|| common::pseudo_random(3 * MB + 17, 7))
}

/// An HTTP server on this machine (the test hosts share its network) serving `/big.bin`.
fn server_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = answer(stream);
                });
            }
        });
        port
    })
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim_end().is_empty() {
            break;
        }
    }
    let (status, body): (&str, &[u8]) = match path.as_str() {
        "/big.bin" => ("200 OK", big()),
        _ => ("404 Not Found", b"no such thing"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()?;
    // Drain what the client may still send, so the close is clean.
    let _ = reader.read(&mut [0u8; 16]);
    Ok(())
}

#[test]
fn get_url_of_a_file_larger_than_a_piece_checks_its_checksum_and_runs_once() {
    let hosts = test_hosts();
    let url = format!("http://127.0.0.1:{}/big.bin", server_port());
    let sha256 = digest("sha256sum", big());
    let sha1 = digest("sha1sum", big());
    let tasks = format!(
        "    - file: {{path: /srv/bd-get, state: directory}}\n\
         \x20   - get_url: {{url: '{url}', dest: /srv/bd-get/big.bin, checksum: 'sha256:{sha256}', mode: '0640'}}\n"
    );
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "rm -rf /srv/bd-get",
            tasks: &tasks,
            // Intact, and no temporary download left beside them.
            verify: "cd /srv/bd-get && sha1sum big.bin && stat -c '%n %a' big.bin && ls -A",
            expected: &format!("{sha1}  big.bin\nbig.bin 640\nbig.bin\n"),
            drift: "printf x | dd of=/srv/bd-get/big.bin bs=1 seek=2000000 conv=notrunc 2>/dev/null",
            // Too big for a content diff (as Ansible's get_url, which shows none): the change.
            diff_shows: &format!("changed: [{}]", hosts.names()[0]),
        },
    );
}

/// `uri` has no check mode (Ansible's skips it), so no four-step proof: written intact, and
/// the same answer again changes nothing.
#[test]
fn uri_with_dest_writes_a_big_body_intact_and_a_second_run_changes_nothing() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    let url = format!("http://127.0.0.1:{}/big.bin", server_port());
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: /srv/bd-uri, state: directory}}\n\
             \x20   - uri: {{url: '{url}', dest: /srv/bd-uri/big.bin}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/bd-uri");
    let verify = "cd /srv/bd-uri && sha1sum big.bin && ls -A";
    let expected = format!("{}  big.bin\nbig.bin\n", digest("sha1sum", big()));
    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 2, "{}", first.stdout);
    assert_eq!(hosts.ssh(host, verify), expected);
    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "{}", second.stdout);
    assert_eq!(hosts.ssh(host, verify), expected);
}

#[test]
fn get_url_refuses_a_big_download_whose_checksum_differs_and_leaves_nothing() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    let url = format!("http://127.0.0.1:{}/big.bin", server_port());
    let wrong = "0".repeat(64);
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: /srv/bd-bad, state: directory}}\n\
             \x20   - get_url: {{url: '{url}', dest: /srv/bd-bad/big.bin, checksum: 'sha256:{wrong}'}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/bd-bad");
    let failed = run(&s, &[]);
    failed.assert_code(2);
    assert!(
        failed.stdout.contains(&format!(
            "did not match {wrong}; it was {}",
            digest("sha256sum", big())
        )),
        "{}",
        failed.stdout
    );
    assert_eq!(
        hosts.ssh(host, "ls -A /srv/bd-bad"),
        "",
        "nothing written, nothing left"
    );
}

#[test]
fn unarchive_of_a_controller_archive_larger_than_a_piece_goes_in_pieces_and_runs_once() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    // An archive of about 3 MiB (random bytes do not compress) with a small file beside.
    std::fs::create_dir_all(s.path("tree/app")).unwrap();
    std::fs::write(s.path("tree/app/big.bin"), big()).unwrap();
    std::fs::write(s.path("tree/app/small.txt"), "small\n").unwrap();
    std::fs::create_dir_all(s.path("files")).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(s.path("files/app.tar.gz"))
        .arg("-C")
        .arg(s.path("tree"))
        .arg("app")
        .status()
        .unwrap();
    assert!(tar.success());
    assert!(std::fs::metadata(s.path("files/app.tar.gz")).unwrap().len() > MB as u64);
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: /srv/bd-arc, state: directory}}\n\
             \x20   - unarchive: {{src: app.tar.gz, dest: /srv/bd-arc}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/bd-arc");
    let sha1 = digest("sha1sum", big());
    let verify = "cd /srv/bd-arc && sha1sum app/big.bin && cat app/small.txt && \
                  find / -xdev -name '.settle-upload.*' 2>/dev/null | wc -l";
    let expected = format!("{sha1}  app/big.bin\nsmall\n0\n");

    let first = run(&s, &[]);
    first.assert_code(0);
    assert_eq!(changed(&first, host), 2, "{}", first.stdout);
    assert_eq!(
        hosts.ssh(host, verify),
        expected,
        "unpacked, nothing staged left"
    );

    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "a no-op:\n{}", second.stdout);

    // A drift: predicted by check mode, which leaves the host as it is, then fixed.
    hosts.ssh(host, "rm /srv/bd-arc/app/small.txt");
    let before = hosts.ssh(host, SNAPSHOT);
    let check = run(&s, &["--check", "--diff"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 1, "{}", check.stdout);
    assert_eq!(
        hosts.ssh(host, SNAPSHOT),
        before,
        "check mode touched the host"
    );
    let fix = run(&s, &[]);
    fix.assert_code(0);
    assert_eq!(changed(&fix, host), 1, "{}", fix.stdout);
    assert_eq!(hosts.ssh(host, verify), expected);
}
