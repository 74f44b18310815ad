//! `settle vault …` (as `ansible-vault`) and the vault options every command takes
//! (`--vault-id`, `--vault-password-file`, `-J/--ask-vault-pass`, and the
//! `ANSIBLE_VAULT_IDENTITY_LIST`/`ANSIBLE_VAULT_PASSWORD_FILE` environment variables).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{ArgAction, Subcommand};
use settle_vault::{DEFAULT_ID, VaultSecret};

use crate::{EXIT_ERROR, Failure};

/// Where the vault passwords come from.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct VaultArgs {
    /// A vault identity: LABEL@SOURCE, where SOURCE is a password file, a password script or
    /// `prompt` (repeatable).
    #[arg(long = "vault-id", value_name = "VAULT_ID", action = ArgAction::Append)]
    pub vault_ids: Vec<String>,
    /// A vault password file (or executable script).
    #[arg(long = "vault-password-file", visible_alias = "vault-pass-file", value_name = "FILE", action = ArgAction::Append)]
    pub vault_password_files: Vec<PathBuf>,
    /// Ask for the vault password.
    #[arg(short = 'J', long)]
    pub ask_vault_pass: bool,
}

/// Prompts that ask for one password, or for a new one and its confirmation.
#[derive(Clone, Copy, PartialEq)]
pub enum Prompt {
    Existing,
    New,
}

fn ask(prompt: &str) -> Result<String, String> {
    crate::prompt::secret(prompt).map_err(|e| format!("cannot read the vault password: {e}"))
}

/// Asks for a password (and its confirmation when new), as `ansible-vault` words it.
fn prompt_secret(label: Option<&str>, kind: Prompt) -> Result<VaultSecret, String> {
    let id = label.unwrap_or(DEFAULT_ID);
    let prompts: Vec<String> = match (label, kind) {
        (None, Prompt::Existing) => vec!["Vault password: ".into()],
        (None, Prompt::New) => vec![
            "New Vault password: ".into(),
            "Confirm New Vault password: ".into(),
        ],
        (Some(l), Prompt::Existing) => vec![format!("Vault password ({l}): ")],
        (Some(l), Prompt::New) => vec![
            format!("New vault password ({l}): "),
            format!("Confirm new vault password ({l}): "),
        ],
    };
    let mut first: Option<String> = None;
    for p in prompts {
        let pass = ask(&p)?.trim().to_string();
        if pass.is_empty() {
            return Err("Invalid vault password was provided".into());
        }
        match &first {
            None => first = Some(pass),
            Some(f) if *f != pass => return Err("Passwords do not match".into()),
            Some(_) => {}
        }
    }
    Ok(VaultSecret::new(id, first.unwrap_or_default()))
}

impl VaultArgs {
    /// The vault secrets, in Ansible's order: `ANSIBLE_VAULT_IDENTITY_LIST`, `--vault-id`s,
    /// password files (`--vault-password-file`, then `ANSIBLE_VAULT_PASSWORD_FILE`), then the
    /// `--ask-vault-pass` prompt (or, with `auto_prompt` and nothing else given, a prompt).
    /// A source that fails is a warning when another one worked, as in Ansible.
    pub fn secrets(&self, kind: Prompt, auto_prompt: bool) -> Result<Vec<VaultSecret>, String> {
        self.secrets_from(kind, auto_prompt, true)
    }

    fn secrets_from(
        &self,
        kind: Prompt,
        auto_prompt: bool,
        env: bool,
    ) -> Result<Vec<VaultSecret>, String> {
        let mut slugs: Vec<String> = std::env::var("ANSIBLE_VAULT_IDENTITY_LIST")
            .ok()
            .filter(|_| env)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        slugs.extend(self.vault_ids.iter().cloned());
        let mut files: Vec<String> = self
            .vault_password_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Ok(f) = std::env::var("ANSIBLE_VAULT_PASSWORD_FILE")
            && !f.is_empty()
            && env
        {
            files.push(f);
        }
        slugs.extend(files.into_iter().map(|f| format!("{DEFAULT_ID}@{f}")));
        if self.ask_vault_pass || (slugs.is_empty() && auto_prompt) {
            slugs.push(format!("{DEFAULT_ID}@prompt_ask_vault_pass"));
        }
        let mut secrets = Vec::new();
        let mut last_error = None;
        for slug in &slugs {
            let (label, source) = settle_vault::split_vault_id(slug).map_err(|e| e.to_string())?;
            match source {
                "prompt_ask_vault_pass" => secrets.push(prompt_secret(None, kind)?),
                "prompt" => {
                    let label = label.unwrap_or(DEFAULT_ID);
                    secrets.push(prompt_secret(Some(label), kind)?);
                }
                file => match settle_vault::secret_from_file(label, Path::new(file)) {
                    Ok(s) => secrets.push(s),
                    Err(e) => {
                        eprintln!(
                            "[WARNING]: Error getting vault password file ({}): {e}",
                            label.unwrap_or(DEFAULT_ID)
                        );
                        last_error = Some(e.to_string());
                    }
                },
            }
        }
        match last_error {
            Some(e) if secrets.is_empty() => Err(e),
            _ => Ok(secrets),
        }
    }
}

/// `settle vault` actions, as `ansible-vault`'s.
#[derive(Subcommand, Debug)]
pub enum VaultAction {
    /// Create a new vault-encrypted file in $EDITOR.
    Create {
        #[command(flatten)]
        vault: VaultArgs,
        /// The vault ID to encrypt with (needed when more than one is given).
        #[arg(long, value_name = "VAULT_ID")]
        encrypt_vault_id: Option<String>,
        /// Open the editor even without a terminal.
        #[arg(long)]
        skip_tty_check: bool,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Encrypt files (or standard input) in place.
    Encrypt {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(long, value_name = "VAULT_ID")]
        encrypt_vault_id: Option<String>,
        /// Write here instead (`-` for standard output).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Decrypt files (or standard input) in place.
    Decrypt {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show the plaintext of vault-encrypted files.
    View {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Edit a vault-encrypted file in $EDITOR.
    Edit {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(long, value_name = "VAULT_ID")]
        encrypt_vault_id: Option<String>,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Encrypt vault-encrypted files again with a new password.
    Rekey {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(long, value_name = "VAULT_ID")]
        encrypt_vault_id: Option<String>,
        /// The new password file.
        #[arg(long, value_name = "FILE", conflicts_with = "new_vault_id")]
        new_vault_password_file: Option<PathBuf>,
        /// The new vault identity (LABEL@SOURCE).
        #[arg(long, value_name = "VAULT_ID")]
        new_vault_id: Option<String>,
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Encrypt strings into `!vault |` YAML values.
    #[command(name = "encrypt_string")]
    EncryptString {
        #[command(flatten)]
        vault: VaultArgs,
        #[arg(long, value_name = "VAULT_ID")]
        encrypt_vault_id: Option<String>,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Ask for the string to encrypt.
        #[arg(short = 'p', long)]
        prompt: bool,
        /// Show the string typed at the prompt.
        #[arg(long)]
        show_input: bool,
        /// The variable name of each string, in order (repeatable).
        #[arg(short = 'n', long = "name", value_name = "NAME", action = ArgAction::Append)]
        names: Vec<String>,
        /// The variable name of the string read from standard input.
        #[arg(long, value_name = "NAME")]
        stdin_name: Option<String>,
        /// Strings to encrypt (`-` reads standard input).
        #[arg(value_name = "STRING")]
        strings: Vec<String>,
    },
}

fn fail(message: impl Into<String>) -> Failure {
    (EXIT_ERROR, message.into())
}

/// The secret to encrypt with: the one named by `--encrypt-vault-id`, else the first.
fn encrypt_secret(
    vault: &VaultArgs,
    encrypt_vault_id: Option<&str>,
) -> Result<VaultSecret, Failure> {
    let secrets = vault.secrets(Prompt::New, true).map_err(fail)?;
    if secrets.len() > 1 && encrypt_vault_id.is_none() {
        let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
        return Err(fail(format!(
            "The vault-ids {} are available to encrypt. Specify the vault-id to encrypt with --encrypt-vault-id",
            ids.join(",")
        )));
    }
    match encrypt_vault_id {
        Some(id) => secrets.iter().find(|s| s.id == id).cloned().ok_or_else(|| {
            let ids: Vec<String> = secrets.iter().map(|s| format!("'{}'", s.id)).collect();
            fail(format!(
                "Did not find a match for --encrypt-vault-id={id} in the known vault-ids [{}]",
                ids.join(", ")
            ))
        }),
        None => secrets
            .into_iter()
            .next()
            .ok_or_else(|| fail("A vault password is required to use Ansible's Vault")),
    }
}

fn read_secrets(vault: &VaultArgs) -> Result<(), Failure> {
    let secrets = vault.secrets(Prompt::Existing, true).map_err(fail)?;
    if secrets.is_empty() {
        return Err(fail("A vault password is required to use Ansible's Vault"));
    }
    settle_vault::set_secrets(secrets);
    Ok(())
}

fn read_data(file: &Path) -> Result<Vec<u8>, Failure> {
    if file == Path::new("-") {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| fail(format!("Unable to read source file (-): {e}")))?;
        return Ok(data);
    }
    std::fs::read(file).map_err(|e| {
        fail(format!(
            "Unable to read source file ({}): {e}",
            file.display()
        ))
    })
}

/// Writes `data` to standard output (`-`) or to a file that ends up with mode 0600 (or `mode`),
/// through a temporary file in the same folder, renamed over it.
fn write_data(file: &Path, data: &[u8], mode: Option<u32>) -> Result<(), Failure> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if file == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(data)
            .and_then(|()| out.flush())
            .map_err(|e| fail(format!("cannot write to standard output: {e}")));
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map_or_else(|| "vault".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.settle-vault-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.sync_all()?;
            if let Some(mode) = mode {
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            Ok(())
        })
        .and_then(|()| std::fs::rename(&tmp, file));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(format!("cannot write {}: {e}", file.display()))
    })
}

fn decrypt_file(file: &Path) -> Result<(Vec<u8>, String), Failure> {
    let data = read_data(file)?;
    let text = String::from_utf8_lossy(&data);
    settle_vault::decrypt_with(&text, &settle_vault::secrets())
        .map_err(|e| fail(format!("{e} for {}", file.display())))
}

fn files_or_stdin(files: &[PathBuf]) -> Vec<PathBuf> {
    if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    }
}

fn check_output(output: &Option<PathBuf>, files: &[PathBuf]) -> Result<(), Failure> {
    if output.is_some() && files.len() > 1 {
        return Err(fail(
            "At most one input file may be used with the --output option",
        ));
    }
    Ok(())
}

fn mode_of(file: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Opens `$EDITOR` (else `vi`) on a private temporary file holding `existing`; returns what
/// the file holds when the editor exits (the file is overwritten and removed).
fn edit_in_editor(name_hint: &Path, existing: &[u8]) -> Result<Vec<u8>, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let ext = name_hint
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut salt = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut salt));
    let tmp = std::env::temp_dir().join(format!(
        "settle-vault-{}-{}{ext}",
        std::process::id(),
        salt.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(existing))
        .map_err(|e| fail(format!("cannot make a temporary file: {e}")))?;
    let shred = |tmp: &Path| {
        if let Ok(len) = std::fs::metadata(tmp).map(|m| m.len()) {
            let _ = std::fs::write(tmp, vec![0u8; len as usize]);
        }
        let _ = std::fs::remove_file(tmp);
    };
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut words = shell_words::split(&editor).unwrap_or_else(|_| vec![editor.clone()]);
    if words.is_empty() {
        words.push("vi".into());
    }
    let status = std::process::Command::new(&words[0])
        .args(&words[1..])
        .arg(&tmp)
        .status();
    if let Err(e) = status {
        shred(&tmp);
        return Err(fail(format!(
            "Unable to execute the command \"{} {}\": {e}",
            words.join(" "),
            tmp.display()
        )));
    }
    let data = std::fs::read(&tmp);
    shred(&tmp);
    data.map_err(|e| fail(format!("cannot read the edited file: {e}")))
}

fn say(message: &str) {
    if std::io::stdout().is_terminal() {
        eprintln!("{message}");
    }
}

/// Runs one `settle vault` action.
pub fn run(action: &VaultAction) -> Result<u8, Failure> {
    match action {
        VaultAction::Encrypt {
            vault,
            encrypt_vault_id,
            output,
            files,
        } => {
            check_output(output, files)?;
            let secret = encrypt_secret(vault, encrypt_vault_id.as_deref())?;
            if files.is_empty() && std::io::stdin().is_terminal() {
                eprintln!("Reading plaintext input from stdin");
            }
            for file in files_or_stdin(files) {
                let data = read_data(&file)?;
                let text =
                    settle_vault::encrypt(&data, &secret).map_err(|e| fail(e.to_string()))?;
                write_data(output.as_deref().unwrap_or(&file), text.as_bytes(), None)?;
            }
            say("Encryption successful");
        }
        VaultAction::Decrypt {
            vault,
            output,
            files,
        } => {
            check_output(output, files)?;
            read_secrets(vault)?;
            if files.is_empty() && std::io::stdin().is_terminal() {
                eprintln!("Reading ciphertext input from stdin");
            }
            for file in files_or_stdin(files) {
                let (plain, _) = decrypt_file(&file)?;
                write_data(output.as_deref().unwrap_or(&file), &plain, None)?;
            }
            say("Decryption successful");
        }
        VaultAction::View { vault, files } => {
            read_secrets(vault)?;
            for file in files {
                let (plain, _) = decrypt_file(file)?;
                let mut text = String::from_utf8_lossy(&plain).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                page(&text)?;
            }
        }
        VaultAction::Create {
            vault,
            encrypt_vault_id,
            skip_tty_check,
            files,
        } => {
            let [file] = files.as_slice() else {
                return Err(fail(
                    "ansible-vault create can take only one filename argument",
                ));
            };
            if !std::io::stdout().is_terminal() && !skip_tty_check {
                return Err(fail("not a tty, editor cannot be opened"));
            }
            let secret = encrypt_secret(vault, encrypt_vault_id.as_deref())?;
            if file.is_file() {
                return Err(fail(format!(
                    "{} exists, please use 'edit' instead",
                    file.display()
                )));
            }
            if let Some(dir) = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            {
                eprintln!("[WARNING]: {} does not exist, creating...", dir.display());
                std::fs::create_dir_all(dir)
                    .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
            }
            let plain = edit_in_editor(file, b"")?;
            // As ansible-vault: an untouched empty file is not saved.
            if !plain.is_empty() {
                let text =
                    settle_vault::encrypt(&plain, &secret).map_err(|e| fail(e.to_string()))?;
                write_data(file, text.as_bytes(), None)?;
            }
        }
        VaultAction::Edit {
            vault,
            encrypt_vault_id: _,
            files,
        } => {
            read_secrets(vault)?;
            for file in files {
                let data = read_data(file)?;
                let text = String::from_utf8_lossy(&data).into_owned();
                let (plain, used) = settle_vault::decrypt_with(&text, &settle_vault::secrets())
                    .map_err(|e| fail(format!("{e} for {}", file.display())))?;
                let envelope =
                    settle_vault::parse_envelope(&text).map_err(|e| fail(e.to_string()))?;
                let edited = edit_in_editor(file, &plain)?;
                if edited != plain {
                    // Saved under the envelope's vault ID, with the secret that opened it.
                    let secret = settle_vault::secrets()
                        .into_iter()
                        .find(|s| s.id == used)
                        .map(|s| {
                            VaultSecret::new(
                                envelope.label.clone().unwrap_or_else(|| DEFAULT_ID.into()),
                                s.password().to_vec(),
                            )
                        })
                        .ok_or_else(|| fail("the vault secret went missing"))?;
                    let text =
                        settle_vault::encrypt(&edited, &secret).map_err(|e| fail(e.to_string()))?;
                    write_data(file, text.as_bytes(), mode_of(file))?;
                }
            }
        }
        VaultAction::Rekey {
            vault,
            encrypt_vault_id,
            new_vault_password_file,
            new_vault_id,
            files,
        } => {
            read_secrets(vault)?;
            let new_args = VaultArgs {
                vault_ids: new_vault_id.iter().cloned().collect(),
                vault_password_files: new_vault_password_file.iter().cloned().collect(),
                ask_vault_pass: false,
            };
            // Only the new sources: not the environment's vault identities.
            let new = new_args
                .secrets_from(Prompt::New, true, false)
                .map_err(fail)?;
            let new_secret = match encrypt_vault_id {
                Some(id) => new.iter().find(|s| &s.id == id).cloned(),
                None => new.first().cloned(),
            }
            .ok_or_else(|| fail("A new vault password is required to use Ansible's Vault rekey"))?;
            for file in files {
                let (plain, _) = decrypt_file(file)?;
                let text =
                    settle_vault::encrypt(&plain, &new_secret).map_err(|e| fail(e.to_string()))?;
                write_data(file, text.as_bytes(), mode_of(file))?;
            }
            eprintln!("Rekey successful");
        }
        VaultAction::EncryptString {
            vault,
            encrypt_vault_id,
            output,
            prompt,
            show_input,
            names,
            stdin_name,
            strings,
        } => {
            let read_stdin = strings.iter().any(|s| s == "-")
                || stdin_name.is_some()
                || (strings.is_empty() && !prompt);
            if *prompt && read_stdin {
                return Err(fail(
                    "The --prompt option is not supported if also reading input from stdin",
                ));
            }
            let secret = encrypt_secret(vault, encrypt_vault_id.as_deref())?;
            // (plaintext, where from, name)
            let mut items: Vec<(Vec<u8>, &str, Option<String>)> = Vec::new();
            if *prompt {
                eprint!("Variable name (enter for no name): ");
                let mut name = String::new();
                std::io::stdin()
                    .read_line(&mut name)
                    .map_err(|e| fail(e.to_string()))?;
                let name = name.trim_end_matches(['\n', '\r']).to_string();
                let text = if *show_input {
                    eprint!("String to encrypt:");
                    let mut s = String::new();
                    std::io::stdin()
                        .read_line(&mut s)
                        .map_err(|e| fail(e.to_string()))?;
                    s.trim_end_matches(['\n', '\r']).to_string()
                } else {
                    ask("String to encrypt (hidden): ").map_err(fail)?
                };
                if text.is_empty() {
                    return Err(fail(
                        "The plaintext provided from the prompt was empty, not encrypting",
                    ));
                }
                items.push((
                    text.into_bytes(),
                    "the interactive prompt",
                    (!name.is_empty()).then_some(name),
                ));
            }
            if read_stdin {
                if std::io::stdout().is_terminal() {
                    eprintln!(
                        "Reading plaintext input from stdin. (ctrl-d to end input, twice if your content does not already have a newline)"
                    );
                }
                let data = read_data(Path::new("-"))?;
                if data.is_empty() {
                    return Err(fail("stdin was empty, not encrypting"));
                }
                if std::io::stdout().is_terminal() && !data.ends_with(b"\n") {
                    println!();
                }
                items.push((data, "stdin", stdin_name.clone()));
            }
            let args: Vec<&String> = strings.iter().filter(|s| *s != "-").collect();
            if !names.is_empty() && args.len() > names.len() {
                eprintln!("The number of --name options do not match the number of args.");
                eprintln!(
                    "The last named variable will be \"{}\". The rest will not have names.",
                    names[names.len() - 1]
                );
            }
            for (i, arg) in args.iter().enumerate() {
                if arg.is_empty() {
                    return Err(fail(
                        "The plaintext provided from the command line args was empty, not encrypting",
                    ));
                }
                items.push((
                    arg.as_bytes().to_vec(),
                    "the command line args",
                    names.get(i).cloned(),
                ));
            }
            let many = items.len() > 1;
            let mut outs = Vec::new();
            for (index, (plain, source, name)) in items.iter().enumerate() {
                let text =
                    settle_vault::encrypt(plain, &secret).map_err(|e| fail(e.to_string()))?;
                let mut yaml = match name {
                    Some(n) => format!("{n}: !vault |"),
                    None => "!vault |".to_string(),
                };
                for line in text.lines() {
                    yaml.push_str("\n          ");
                    yaml.push_str(line);
                }
                if many {
                    match name {
                        Some(n) => eprintln!(
                            "# The encrypted version of variable (\"{n}\", the string #{} from {source}).",
                            index + 1
                        ),
                        None => eprintln!(
                            "# The encrypted version of the string #{} from {source}.)",
                            index + 1
                        ),
                    }
                }
                outs.push(yaml);
            }
            outs.push(String::new());
            let out = outs.join("\n");
            write_data(
                output.as_deref().unwrap_or(Path::new("-")),
                out.as_bytes(),
                None,
            )?;
            say("Encryption successful");
        }
    }
    Ok(0)
}

/// Shows text: through `$PAGER` (else `less`) on a terminal, else on standard output.
fn page(text: &str) -> Result<(), Failure> {
    if std::io::stdout().is_terminal() {
        let pager = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "less".into());
        let child = std::process::Command::new("sh")
            .args(["-c", &pager])
            .env("LESS", "FRSX")
            .stdin(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut child) = child {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(text.as_bytes());
            }
            let _ = child.wait();
            return Ok(());
        }
    }
    write_data(Path::new("-"), text.as_bytes(), None)
}
