//! The format against texts made by the real `ansible-vault` 2.19 (tests/fixtures/vault/).

use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/vault")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn default_secret() -> VaultSecret {
    VaultSecret::new(DEFAULT_ID, "settle-test-password")
}

fn prod_secret() -> VaultSecret {
    VaultSecret::new("prod", "prod-password")
}

#[test]
fn decrypts_a_1_1_file_made_by_ansible_vault() {
    let (plain, id) = decrypt_with(&fixture("secret.yml"), &[default_secret()]).unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), fixture("plain.yml"));
    assert_eq!(id, "default");
}

#[test]
fn decrypts_a_1_2_labelled_file_trying_the_matching_id_first() {
    let text = fixture("prod.yml");
    let env = parse_envelope(&text).unwrap();
    assert_eq!(
        (env.version.as_str(), env.label.as_deref()),
        ("1.2", Some("prod"))
    );
    let (plain, id) = decrypt_with(&text, &[default_secret(), prod_secret()]).unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), fixture("plain.yml"));
    assert_eq!(id, "prod");
    // The label only orders the secrets: a secret under another ID that opens it is used.
    let other = VaultSecret::new("other", "prod-password");
    assert_eq!(decrypt_with(&text, &[other]).unwrap().1, "other");
}

#[test]
fn unicode_and_empty_plaintexts() {
    let (plain, _) = decrypt_with(&fixture("unicode.txt"), &[default_secret()]).unwrap();
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "héllo wörld ✓\nline two\n"
    );
    let (plain, _) = decrypt_with(&fixture("empty.txt"), &[default_secret()]).unwrap();
    assert!(plain.is_empty());
}

#[test]
fn encrypt_string_output_decrypts() {
    let out = fixture("encrypt_string.out");
    let body = out.strip_prefix("db_password: !vault |\n").unwrap();
    assert!(body.lines().all(|l| l.starts_with("          ")));
    let (plain, _) = decrypt_with(body, &[default_secret()]).unwrap();
    assert_eq!(plain, b"inline-s3cret");
}

#[test]
fn same_salt_same_bytes_as_ansible_vault() {
    let plain = fixture("plain.yml");
    let ours = format_envelope(
        &encrypt_payload(
            plain.as_bytes(),
            b"settle-test-password",
            b"settle-fixed-salt",
        ),
        "default",
    );
    assert_eq!(ours, fixture("salted.yml"));
    let ours = format_envelope(
        &encrypt_payload(plain.as_bytes(), b"prod-password", b"settle-fixed-salt"),
        "prod",
    );
    assert_eq!(ours, fixture("salted-prod.yml"));
}

#[test]
fn round_trip_with_a_random_salt() {
    let text = encrypt(b"x", &prod_secret()).unwrap();
    assert!(text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    assert!(text.lines().skip(1).all(|l| l.len() <= 80));
    assert_eq!(decrypt_with(&text, &[prod_secret()]).unwrap().0, b"x");
    assert_ne!(text, encrypt(b"x", &prod_secret()).unwrap());
    assert_eq!(
        encrypt(text.as_bytes(), &prod_secret()),
        Err(VaultError::AlreadyEncrypted)
    );
}

#[test]
fn wrong_or_missing_secrets() {
    let text = fixture("secret.yml");
    assert_eq!(decrypt_with(&text, &[]), Err(VaultError::NoSecrets));
    assert_eq!(
        decrypt_with(&text, &[VaultSecret::new("default", "wrong")]),
        Err(VaultError::NoMatchingSecret)
    );
    assert_eq!(
        VaultError::NoSecrets.to_string(),
        "Attempting to decrypt but no vault secrets found."
    );
}

#[test]
fn malformed_texts_are_errors_not_panics() {
    let s = [default_secret()];
    for bad in [
        "",
        "hello",
        "$ANSIBLE_VAULT",
        "$ANSIBLE_VAULT;1.1",
        "$ANSIBLE_VAULT;1.1;AES256",
        "$ANSIBLE_VAULT;1.1;AES256\nzz",
        "$ANSIBLE_VAULT;1.1;AES256\n616",
        "$ANSIBLE_VAULT;1.1;AES256\n6162",
        "$ANSIBLE_VAULT;1.1;AES256\n61620a63640a",
        "$ANSIBLE_VAULT;1.1;AES256\n61620a0a",
        "$ANSIBLE_VAULT;1.1;AES256\n0a0a",
    ] {
        assert!(decrypt_with(bad, &s).is_err(), "{bad:?}");
    }
    assert_eq!(
        decrypt_with("$ANSIBLE_VAULT;1.1;DES\n00", &s),
        Err(VaultError::Cipher("DES".into()))
    );
    // A truncated file.
    let text = fixture("secret.yml");
    let cut = &text[..text.len() - 20];
    assert!(decrypt_with(cut, &s).is_err());
}

#[test]
fn vault_ids_and_password_files() {
    assert_eq!(split_vault_id("prod@pw").unwrap(), (Some("prod"), "pw"));
    assert_eq!(split_vault_id("pw").unwrap(), (None, "pw"));
    assert!(split_vault_id("a;b@pw").is_err());

    let dir = std::env::temp_dir().join(format!("settle-vault-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pass");
    std::fs::write(&file, "  s3cret \n\n").unwrap();
    let s = secret_from_file(None, &file).unwrap();
    assert_eq!((s.id.as_str(), s.password()), ("default", &b"s3cret"[..]));
    assert!(!format!("{s:?}").contains("s3cret"));

    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("pass.sh");
    std::fs::write(&script, "#!/bin/sh\necho ' from script '\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = secret_from_file(Some("dev"), &script).unwrap();
    assert_eq!(
        (s.id.as_str(), s.password()),
        ("dev", &b" from script "[..])
    );

    let client = dir.join("keyring-client.sh");
    std::fs::write(
        &client,
        "#!/bin/sh\n[ \"$1 $2\" = '--vault-id dev' ] && echo pw-for-dev && exit 0\nexit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        secret_from_file(Some("dev"), &client).unwrap().password(),
        b"pw-for-dev"
    );
    let err = secret_from_file(Some("prod"), &client)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("did not find a secret for vault-id=prod"),
        "{err}"
    );

    std::fs::write(&file, "\n").unwrap();
    assert!(secret_from_file(None, &file).is_err());
    assert!(secret_from_file(None, &dir.join("missing")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn redact_hides_revealed_values() {
    reveal("short-lived-secret-value");
    reveal("abc");
    assert_eq!(
        redact("password=short-lived-secret-value; abc"),
        "password=********; abc"
    );
    assert!(matches!(
        redact("nothing here"),
        std::borrow::Cow::Borrowed(_)
    ));
}
