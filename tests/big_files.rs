//! Files larger than a transfer piece (1 MiB) move in pieces: `copy` (a file, and a folder
//! with one in it), `template` and `fetch` carry the whole content intact over SSH to a real
//! test host and back, a second run moves nothing (changed=0), a drift of the big file is
//! predicted by `--check` and fixed, and no staged upload is left behind. Functionality only:
//! memory is measured by bench/memory, not here.

mod common;

use std::path::Path;

use common::Scratch;
use common::hosts::test_hosts;
use common::scenario::{TURN, changed, run};

fn sha1_of(path: &Path) -> String {
    let out = std::process::Command::new("sha1sum")
        .arg(path)
        .output()
        .expect("sha1sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

const MB: usize = 1 << 20;

#[test]
fn big_files_copy_and_fetch_intact_and_a_second_run_moves_nothing() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    std::fs::create_dir_all(s.path("files/tree/sub")).unwrap();
    // 50 MiB and a few bytes: many pieces and a short last one.
    std::fs::write(
        s.path("files/big.bin"),
        common::pseudo_random(50 * MB + 17, 1),
    )
    .unwrap();
    std::fs::write(
        s.path("files/tree/sub/middle.bin"),
        common::pseudo_random(3 * MB, 2),
    )
    .unwrap();
    std::fs::write(s.path("files/tree/small.txt"), "small\n").unwrap();
    // A template that renders to more than a piece.
    s.write(
        "templates/long.j2",
        "{% for i in range(40000) %}line {{ i }} of {{ inventory_hostname }}\n{% endfor %}",
    );
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n\
             \x20   - file: {{path: /srv/big, state: directory}}\n\
             \x20   - copy: {{src: big.bin, dest: /srv/big/big.bin, mode: '0640'}}\n\
             \x20   - copy: {{src: tree, dest: /srv/big/}}\n\
             \x20   - template: {{src: long.j2, dest: /srv/big/long.txt}}\n\
             \x20   - fetch: {{src: /srv/big/big.bin, dest: fetched/, flat: yes}}\n"
        ),
    );
    hosts.ssh(host, "rm -rf /srv/big");
    let want = sha1_of(&s.path("files/big.bin"));

    let first = run(&s, &[]);
    first.assert_code(0);
    assert!(changed(&first, host) >= 4, "{}", first.stdout);
    let on_host = hosts.ssh(
        host,
        "cd /srv/big && sha1sum big.bin tree/sub/middle.bin tree/small.txt | cut -d' ' -f1; \
         stat -c %a big.bin; wc -l < long.txt; ls -A /srv/big",
    );
    let expected = format!(
        "{want}\n{}\n{}\n640\n40000\nbig.bin\nlong.txt\ntree\n",
        sha1_of(&s.path("files/tree/sub/middle.bin")),
        sha1_of(&s.path("files/tree/small.txt")),
    );
    assert_eq!(
        on_host, expected,
        "the host has every byte, nothing staged left"
    );
    assert_eq!(sha1_of(&s.path("fetched/big.bin")), want, "fetched intact");

    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(changed(&second, host), 0, "a no-op:\n{}", second.stdout);

    // A drift of the big file: predicted (without a diff of 50 MiB), then fixed.
    hosts.ssh(
        host,
        "printf x | dd of=/srv/big/big.bin bs=1 seek=30000000 conv=notrunc 2>/dev/null",
    );
    let check = run(&s, &["--check", "--diff"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 1, "{}", check.stdout);
    assert_ne!(
        hosts
            .ssh(host, "sha1sum < /srv/big/big.bin | cut -d' ' -f1")
            .trim(),
        want,
        "check mode left the drift"
    );
    let fix = run(&s, &[]);
    fix.assert_code(0);
    assert_eq!(changed(&fix, host), 1, "{}", fix.stdout);
    assert_eq!(
        hosts.ssh(
            host,
            "sha1sum < /srv/big/big.bin | cut -d' ' -f1; ls -A /srv/big"
        ),
        format!("{want}\nbig.bin\nlong.txt\ntree\n"),
    );
}

#[test]
fn a_big_file_copies_and_fetches_on_the_local_connection() {
    let s = Scratch::new();
    std::fs::write(s.path("big.bin"), common::pseudo_random(5 * MB + 3, 3)).unwrap();
    s.write("inv", "localhost ansible_connection=local\n");
    s.write(
        "site.yml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n\
         \x20   - copy: {src: big.bin, dest: '@@/out/'}\n\
         \x20   - fetch: {src: '@@/out/big.bin', dest: '@@/back/', flat: yes}\n",
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    let first = s.settle(&["site.yml", "-i", "inv"]);
    first.assert_code(0);
    assert_eq!(changed(&first, "localhost"), 2, "{}", first.stdout);
    let want = sha1_of(&s.path("big.bin"));
    assert_eq!(sha1_of(&s.path("out/big.bin")), want);
    assert_eq!(sha1_of(&s.path("back/big.bin")), want);
    let names: Vec<_> = std::fs::read_dir(s.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["big.bin"], "no staged upload left");
    let second = s.settle(&["site.yml", "-i", "inv"]);
    second.assert_code(0);
    assert_eq!(changed(&second, "localhost"), 0, "{}", second.stdout);
}
