//! Ansible Vault end to end: `settle vault …` against the real `ansible-vault` 2.19 (when it is
//! installed), and playbooks with vaulted group_vars and `!vault` values.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Scratch, local_inventory};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn password_file() -> String {
    fixtures().join("password").display().to_string()
}

fn ansible_view(s: &Scratch, args: &[&str]) -> String {
    let Some(mut cmd) = common::ansible_tool("ansible-vault").map(Command::new) else {
        return String::new();
    };
    let out = cmd
        .arg("view")
        .args(args)
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn settle_encrypts_and_ansible_vault_decrypts() {
    let s = Scratch::new();
    s.write("plain.yml", "db_password: s3cret\n");
    s.write("prod-pw", "prod-password\n");
    let pw = password_file();
    s.settle(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        &pw,
        "plain.yml",
    ])
    .assert_code(0);
    let text = s.read("plain.yml");
    assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"), "{text}");
    assert!(text.lines().skip(1).all(|l| l.len() <= 80));
    s.write("labelled.yml", "x: 1\n");
    s.settle(&[
        "vault",
        "encrypt",
        "--vault-id",
        "prod@prod-pw",
        "labelled.yml",
    ])
    .assert_code(0);
    assert!(
        s.read("labelled.yml")
            .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    );

    let run = s.settle(&[
        "vault",
        "encrypt_string",
        "--vault-password-file",
        &pw,
        "--name",
        "api_key",
        "k3y",
    ]);
    run.assert_code(0);
    assert!(
        run.stdout
            .starts_with("api_key: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          ")
    );
    assert!(run.stdout.ends_with('\n') && !run.stdout.ends_with("\n\n"));
    s.write("string.yml", &run.stdout);
    let body = run
        .stdout
        .split_once('\n')
        .unwrap()
        .1
        .replace("          ", "");
    s.write("string.vault", &body);

    if common::ansible_tool("ansible-vault")
        .map(Command::new)
        .is_none()
    {
        return;
    }
    assert_eq!(
        ansible_view(&s, &["--vault-password-file", &pw, "plain.yml"]),
        "db_password: s3cret\n"
    );
    assert_eq!(
        ansible_view(&s, &["--vault-id", "prod@prod-pw", "labelled.yml"]),
        "x: 1\n"
    );
    assert_eq!(
        ansible_view(&s, &["--vault-password-file", &pw, "string.vault"]),
        "k3y\n"
    );
}

#[test]
fn settle_decrypts_what_ansible_vault_wrote() {
    let s = Scratch::new();
    let pw = password_file();
    let run = s.settle(&[
        "vault",
        "view",
        "--vault-password-file",
        &pw,
        &fixtures().join("secret.yml").display().to_string(),
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, fixture("plain.yml"));
    // A labelled file, the password given by ANSIBLE_VAULT_IDENTITY_LIST.
    let ids = format!("prod@{}", fixtures().join("prod-password").display());
    let run = s.settle_with_env(
        &[
            "vault",
            "view",
            &fixtures().join("prod.yml").display().to_string(),
        ],
        &[("ANSIBLE_VAULT_IDENTITY_LIST", &ids)],
    );
    run.assert_code(0);
    assert_eq!(run.stdout, fixture("plain.yml"));
    // decrypt in place, then encrypt and rekey, through a password script.
    s.write("f.yml", &fixture("secret.yml"));
    s.settle_with_env(
        &["vault", "decrypt", "f.yml"],
        &[("ANSIBLE_VAULT_PASSWORD_FILE", &pw)],
    )
    .assert_code(0);
    assert_eq!(s.read("f.yml"), fixture("plain.yml"));
    s.write("new-pw.sh", "#!/bin/sh\necho new-password\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.path("new-pw.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    s.settle(&["vault", "encrypt", "--vault-password-file", &pw, "f.yml"])
        .assert_code(0);
    let run = s.settle(&[
        "vault",
        "rekey",
        "--vault-password-file",
        &pw,
        "--new-vault-password-file",
        "new-pw.sh",
        "f.yml",
    ]);
    run.assert_code(0);
    assert!(run.stderr.contains("Rekey successful"), "{}", run.stderr);
    let run = s.settle(&[
        "vault",
        "view",
        "--vault-password-file",
        "new-pw.sh",
        "f.yml",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, fixture("plain.yml"));
    // The wrong password: one error, exit 1.
    let run = s.settle(&["vault", "view", "--vault-password-file", &pw, "f.yml"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            "Decryption failed (no vault secrets were found that could decrypt). for f.yml"
        ),
        "{}",
        run.stderr
    );
}

/// A playbook whose group_vars file is vaulted and whose play has a `!vault` value.
fn vaulted_playbook() -> Scratch {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1"]));
    s.write("group_vars/all.yml", &fixture("secret.yml"));
    s.write("files/secret.txt", &fixture("unicode.txt"));
    let inline: String = fixture("encrypt_string.out")
        .replace("db_password:", "inline_pw:")
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  vars:\n{inline}  tasks:\n    - copy:\n        content: \"{{{{ db_password }}}} {{{{ inline_pw }}}}\\n\"\n        dest: '@@/out.txt'\n    - copy: src=secret.txt dest=@@/copied.txt\n    - debug: var=inline_pw\n"
        ),
    );
    s
}

#[test]
fn a_playbook_with_vaulted_group_vars_and_inline_values() {
    let s = vaulted_playbook();
    let pw = password_file();
    let run = s.settle(&[
        "site.yml",
        "-i",
        "hosts",
        "--vault-password-file",
        &pw,
        "-v",
        "--diff",
    ]);
    run.assert_code(0);
    assert_eq!(s.read("out.txt"), "s3cret-from-vault inline-s3cret\n");
    assert_eq!(s.read("copied.txt"), "héllo wörld ✓\nline two\n");
    // Decrypted values stay off the screen: not in -v results, diffs or debug.
    for secret in ["s3cret-from-vault", "inline-s3cret", "héllo"] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} shown:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("\"inline_pw\": \"********\""),
        "{}",
        run.stdout
    );
}

#[test]
fn no_or_wrong_vault_password_is_one_error_and_nothing_runs() {
    let s = vaulted_playbook();
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("Attempting to decrypt but no vault secrets found"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("PLAY"), "{}", run.stdout);
    assert!(!s.path("out.txt").exists());

    let wrong = fixtures().join("prod-password").display().to_string();
    let run = s.settle(&["site.yml", "-i", "hosts", "--vault-password-file", &wrong]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("Decryption failed (no vault secrets were found that could decrypt)."),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("PLAY"));
    assert!(!s.path("out.txt").exists());

    // Only the inline value vaulted (no group_vars): as Ansible 2.19, a `!vault` value is
    // decrypted when used, so the play runs and the task that uses it fails.
    std::fs::remove_file(s.path("group_vars/all.yml")).unwrap();
    s.write(
        "site.yml",
        &s.read("site.yml").replace("{{ db_password }} ", ""),
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert!(
        run.stdout.contains(
            "Attempt to use undecryptable variable: Attempting to decrypt but no vault secrets found."
        ),
        "{}",
        run.stdout
    );
    assert!(!s.path("out.txt").exists());
}
