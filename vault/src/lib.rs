//! Ansible Vault, read and written byte for byte as `ansible-vault` 2.19 does.
//!
//! A vault text is an envelope, `$ANSIBLE_VAULT;1.1;AES256` (or `1.2;AES256;label` when the
//! secret has a vault ID other than `default`), then the payload in hex, 80 columns a line. The
//! payload is itself the hex of three lines: the salt (hex), the HMAC (hex) and the ciphertext
//! (hex). From the password and the 32-byte salt, PBKDF2-HMAC-SHA256 (10 000 rounds) derives 80
//! bytes: the AES-256 key, the HMAC-SHA256 key and the CTR counter block. The plaintext is
//! PKCS#7-padded to 16 bytes, then AES-256-CTR encrypted; the HMAC covers the ciphertext.
//!
//! The crate also keeps the process's vault secrets ([`set_secrets`], filled by the command line
//! before anything is loaded, used by [`decrypt`]) and the values decrypted so far, so that
//! output can hide them ([`redact`]).
//!
//! ```
//! use settle_vault::{VaultSecret, encrypt, decrypt_with};
//! let secret = VaultSecret::new("default", "hunter2");
//! let text = encrypt(b"db_password: s3cret\n", &secret).unwrap();
//! assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
//! let (plain, id) = decrypt_with(&text, &[secret]).unwrap();
//! assert_eq!((plain.as_slice(), id.as_str()), (&b"db_password: s3cret\n"[..], "default"));
//! ```

// No input reaches a panic: a value that may be missing is an error naming where, not an
// unwrap. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = hmac::Hmac<sha2_vault::Sha256>;

/// The envelope's first field.
pub const HEADER: &str = "$ANSIBLE_VAULT";
/// The vault ID of a secret given without a label.
pub const DEFAULT_ID: &str = "default";
const ROUNDS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const SALT_LEN: usize = 32;

/// What went wrong; the texts are Ansible's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("Attempting to decrypt but no vault secrets found.")]
    NoSecrets,
    #[error("Decryption failed (no vault secrets were found that could decrypt).")]
    NoMatchingSecret,
    #[error("Input is not vault encrypted data.")]
    NotVault,
    #[error("Vault envelope format error: {0}")]
    Envelope(String),
    #[error("Vault format unhexlify error: {0}")]
    Format(String),
    #[error("Cipher '{0}' could not be found.")]
    Cipher(String),
    #[error("input is already encrypted")]
    AlreadyEncrypted,
    /// Reading a password file, running a password script, an empty password, …
    #[error("{0}")]
    Password(String),
    #[error("could not get random bytes for the salt: {0}")]
    Random(String),
}

/// One vault secret: a vault ID (label) and its password. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultSecret {
    pub id: String,
    password: Vec<u8>,
}

impl VaultSecret {
    pub fn new(id: impl Into<String>, password: impl Into<Vec<u8>>) -> Self {
        VaultSecret {
            id: id.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

impl fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultSecret({:?}, <hidden>)", self.id)
    }
}

/// The parts of a vault text's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: String,
    pub cipher: String,
    /// The vault ID of a 1.2 envelope.
    pub label: Option<String>,
    /// The hex payload, lines joined.
    pub payload: String,
}

/// Whether `text` is vault-encrypted (starts with the vault header, as Ansible checks).
pub fn is_encrypted(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// Splits a vault text into its envelope fields and payload.
pub fn parse_envelope(text: &str) -> Result<Envelope, VaultError> {
    let text = text.trim_start();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim();
    let fields: Vec<&str> = header.split(';').map(str::trim).collect();
    if fields.first() != Some(&HEADER) {
        return Err(VaultError::NotVault);
    }
    if fields.len() < 3 {
        return Err(VaultError::Envelope(format!(
            "the header {header:?} needs a version and a cipher"
        )));
    }
    let label = fields
        .get(3)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_string());
    let payload: String = lines.map(str::trim).collect();
    Ok(Envelope {
        version: fields[1].to_string(),
        cipher: fields[2].to_string(),
        label,
        payload,
    })
}

/// Formats an envelope: the header, then the payload in 80-column lines, each ending in `\n`.
pub fn format_envelope(payload: &str, vault_id: &str) -> String {
    let mut out = if vault_id.is_empty() || vault_id == DEFAULT_ID {
        format!("{HEADER};1.1;AES256\n")
    } else {
        format!("{HEADER};1.2;AES256;{vault_id}\n")
    };
    let bytes = payload.as_bytes();
    for chunk in bytes.chunks(80) {
        // The payload is hex, so every chunk is ASCII.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn unhex(what: &str, text: &[u8]) -> Result<Vec<u8>, VaultError> {
    hex::decode(text).map_err(|e| VaultError::Format(format!("{what}: {e}")))
}

/// The salt, HMAC and ciphertext of a payload.
type Parts = (Vec<u8>, Vec<u8>, Vec<u8>);

fn split_payload(payload: &str) -> Result<Parts, VaultError> {
    let inner = unhex("payload", payload.as_bytes())?;
    let mut parts = inner.splitn(3, |b| *b == b'\n');
    let (Some(salt), Some(mac), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(VaultError::Format(
            "the payload needs a salt, an HMAC and the ciphertext".into(),
        ));
    };
    Ok((
        unhex("salt", salt)?,
        unhex("HMAC", mac)?,
        unhex("ciphertext", data)?,
    ))
}

struct Keys {
    cipher: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

fn derive(password: &[u8], salt: &[u8]) -> Keys {
    let mut out = [0u8; 2 * KEY_LEN + IV_LEN];
    pbkdf2::pbkdf2_hmac::<sha2_vault::Sha256>(password, salt, ROUNDS, &mut out);
    let mut keys = Keys {
        cipher: [0; KEY_LEN],
        mac: [0; KEY_LEN],
        iv: [0; IV_LEN],
    };
    keys.cipher.copy_from_slice(&out[..KEY_LEN]);
    keys.mac.copy_from_slice(&out[KEY_LEN..2 * KEY_LEN]);
    keys.iv.copy_from_slice(&out[2 * KEY_LEN..]);
    keys
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn ctr(keys: &Keys) -> Aes256Ctr {
    Aes256Ctr::new(&keys.cipher.into(), &keys.iv.into())
}

/// Encrypts with a given salt (tests and reproducible output); returns the payload hex.
pub fn encrypt_payload(plaintext: &[u8], password: &[u8], salt: &[u8]) -> String {
    let keys = derive(password, salt);
    let pad = 16 - plaintext.len() % 16;
    let mut data = Vec::with_capacity(plaintext.len() + pad);
    data.extend_from_slice(plaintext);
    data.resize(plaintext.len() + pad, pad as u8);
    ctr(&keys).apply_keystream(&mut data);
    let mut mac = hmac(&keys.mac);
    mac.update(&data);
    let tag = mac.finalize().into_bytes();
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(tag),
        hex::encode(&data)
    );
    hex::encode(inner)
}

/// Encrypts `plaintext` with `secret` into a vault text (1.1, or 1.2 with the secret's vault ID
/// when it is not `default`), with a fresh random salt.
pub fn encrypt(plaintext: &[u8], secret: &VaultSecret) -> Result<String, VaultError> {
    if secret.password.is_empty() {
        return Err(VaultError::Password(
            "A vault password must be specified to encrypt data".into(),
        ));
    }
    if std::str::from_utf8(plaintext).is_ok_and(is_encrypted) {
        return Err(VaultError::AlreadyEncrypted);
    }
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(format_envelope(
        &encrypt_payload(plaintext, &secret.password, &salt),
        &secret.id,
    ))
}

/// Decrypts a payload with one password: `None` when the HMAC does not match.
fn decrypt_payload(
    salt: &[u8],
    tag: &[u8],
    data: &[u8],
    password: &[u8],
) -> Result<Option<Vec<u8>>, VaultError> {
    let keys = derive(password, salt);
    let mut mac = hmac(&keys.mac);
    mac.update(data);
    // Constant-time comparison.
    if mac.verify_slice(tag).is_err() {
        return Ok(None);
    }
    let mut plain = data.to_vec();
    ctr(&keys).apply_keystream(&mut plain);
    let pad = plain.last().copied().unwrap_or(0) as usize;
    if pad == 0
        || pad > 16
        || pad > plain.len()
        || !plain[plain.len() - pad..]
            .iter()
            .all(|b| *b as usize == pad)
    {
        return Err(VaultError::Format("invalid padding".into()));
    }
    plain.truncate(plain.len() - pad);
    Ok(Some(plain))
}

/// Decrypts a vault text with the first of `secrets` that opens it: the secret whose vault ID
/// is the envelope's label is tried first, then the others, as Ansible does. Returns the
/// plaintext and the vault ID of the secret used.
pub fn decrypt_with(text: &str, secrets: &[VaultSecret]) -> Result<(Vec<u8>, String), VaultError> {
    let envelope = parse_envelope(text)?;
    if envelope.cipher != "AES256" {
        return Err(VaultError::Cipher(envelope.cipher));
    }
    if secrets.is_empty() {
        return Err(VaultError::NoSecrets);
    }
    let (salt, tag, data) = split_payload(&envelope.payload)?;
    let label = envelope.label.as_deref().unwrap_or(DEFAULT_ID);
    let ordered = secrets
        .iter()
        .filter(|s| s.id == label)
        .chain(secrets.iter().filter(|s| s.id != label));
    for secret in ordered {
        if let Some(plain) = decrypt_payload(&salt, &tag, &data, &secret.password)? {
            return Ok((plain, secret.id.clone()));
        }
    }
    Err(VaultError::NoMatchingSecret)
}

// ----- The process's secrets -------------------------------------------------------------

static SECRETS: RwLock<Vec<VaultSecret>> = RwLock::new(Vec::new());
static REVEALED: Mutex<Vec<Arc<str>>> = Mutex::new(Vec::new());

/// Sets the secrets every later [`decrypt`] uses (the command line's `--vault-id`s, …).
pub fn set_secrets(secrets: Vec<VaultSecret>) {
    match SECRETS.write() {
        Ok(mut s) => *s = secrets,
        Err(poisoned) => *poisoned.into_inner() = secrets,
    }
}

/// The secrets set by [`set_secrets`].
pub fn secrets() -> Vec<VaultSecret> {
    match SECRETS.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decrypts a vault text with the process's secrets.
pub fn decrypt_bytes(text: &str) -> Result<Vec<u8>, VaultError> {
    decrypt_with(text, &secrets())
        .map(|(plain, _)| plain)
        .inspect_err(|_| FAILED.store(true, std::sync::atomic::Ordering::Relaxed))
}

/// Whether a [`decrypt`] (or [`decrypt_bytes`]) has failed in this process: the command line
/// then exits 1, as `ansible-playbook` does for a wrong vault password.
pub fn decrypt_failed() -> bool {
    FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Decrypts a vault text with the process's secrets, as text (invalid UTF-8 replaced), and
/// remembers the value so that [`redact`] hides it.
pub fn decrypt(text: &str) -> Result<String, VaultError> {
    let plain = String::from_utf8_lossy(&decrypt_bytes(text)?).into_owned();
    reveal(&plain);
    Ok(plain)
}

/// Shorter values are not hidden by [`redact`]: hiding every `yes` would hide too much.
pub const REDACT_MIN_LEN: usize = 4;

/// Remembers a decrypted value (or a value read from a decrypted file) as secret.
pub fn reveal(value: &str) {
    let value = value.trim_end_matches(['\n', '\r']);
    if value.chars().count() < REDACT_MIN_LEN {
        return;
    }
    let mut revealed = REVEALED.lock().unwrap_or_else(|p| p.into_inner());
    if !revealed.iter().any(|v| &**v == value) {
        revealed.push(value.into());
        // Longest first, so a secret containing another is hidden whole.
        revealed.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Whether any value has been decrypted in this process.
pub fn any_revealed() -> bool {
    !REVEALED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
}

/// What output prints instead of a decrypted value.
pub const HIDDEN: &str = "********";

/// `text` with every decrypted value seen so far replaced by [`HIDDEN`].
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let revealed = REVEALED.lock().unwrap_or_else(|p| p.into_inner());
    if revealed.iter().all(|v| !text.contains(&**v)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for v in revealed.iter() {
        if out.contains(&**v) {
            out = out.replace(&**v, HIDDEN);
        }
    }
    std::borrow::Cow::Owned(out)
}

// ----- Password sources ------------------------------------------------------------------

/// Splits a `--vault-id` value: `label@source` → (`Some(label)`, source); `source` alone →
/// (`None`, source). A `;` is not allowed (it would break the envelope).
pub fn split_vault_id(slug: &str) -> Result<(Option<&str>, &str), VaultError> {
    if slug.contains(';') {
        return Err(VaultError::Password(format!(
            "'{slug}' is not a valid vault id. The character ';' is not allowed in vault ids"
        )));
    }
    Ok(match slug.split_once('@') {
        Some((label, source)) => (Some(label), source),
        None => (None, slug),
    })
}

/// A password from a file: run if executable (its standard output is the password; a
/// `*-client` script is given `--vault-id LABEL`), otherwise read and stripped of whitespace.
pub fn secret_from_file(label: Option<&str>, path: &Path) -> Result<VaultSecret, VaultError> {
    use std::os::unix::fs::PermissionsExt;
    // A script named without a folder is run from here, not looked up in $PATH.
    let absolute;
    let path = if path.is_relative() {
        absolute = std::env::current_dir().unwrap_or_default().join(path);
        absolute.as_path()
    } else {
        path
    };
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|_| {
        VaultError::Password(format!("The vault password file {shown} was not found"))
    })?;
    if meta.is_dir() {
        return Err(VaultError::Password(format!(
            "The vault password file provided '{shown}' can not be a directory"
        )));
    }
    let id = label.unwrap_or(DEFAULT_ID);
    let password = if meta.permissions().mode() & 0o111 != 0 {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let client = path
            .file_name()
            .and_then(|s| s.to_str())
            .is_some_and(|n| n.ends_with("-client"))
            || stem.ends_with("-client");
        let mut command = std::process::Command::new(path);
        if client {
            command.args(["--vault-id", id]);
        }
        command.stdin(std::process::Stdio::inherit());
        command.stderr(if client {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::inherit()
        });
        let out = command.output().map_err(|e| {
            VaultError::Password(format!(
                "Problem running vault password script {shown} ({e}). If this is not a script, \
                 remove the executable bit from the file."
            ))
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(2) if client => {
                return Err(VaultError::Password(format!(
                    "Vault password client script {shown} did not find a secret for vault-id={id}: {stderr}"
                )));
            }
            code => {
                let code = code.map_or("signal".to_string(), |c| c.to_string());
                return Err(VaultError::Password(if client {
                    format!(
                        "Vault password client script {shown} returned non-zero ({code}) when getting secret for vault-id={id}: {stderr}"
                    )
                } else {
                    format!("Vault password script {shown} returned non-zero ({code})")
                }));
            }
        }
        let pass = strip_newlines(&out.stdout).to_vec();
        if pass.is_empty() {
            return Err(VaultError::Password(format!(
                "Invalid vault password was provided from script ({shown})"
            )));
        }
        pass
    } else {
        let data = std::fs::read(path).map_err(|_| {
            VaultError::Password(format!("Could not read vault password file '{shown}'."))
        })?;
        let pass = data.trim_ascii().to_vec();
        if pass.is_empty() {
            return Err(VaultError::Password(format!(
                "Invalid vault password was provided from file ({shown})"
            )));
        }
        pass
    };
    Ok(VaultSecret::new(id, password))
}

fn strip_newlines(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b'\n' && *b != b'\r')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b'\n' && *b != b'\r')
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests;
