//! The `ssh` transport: the system's OpenSSH client through the `openssh` crate, one multiplexed
//! master connection per host, so `~/.ssh/config`, `ProxyJump`, the agent and `known_hosts` work
//! as users expect. As in Ansible, masters outlive the run by `ControlPersist` (60 seconds
//! unless ansible.cfg's `ssh_args` says otherwise), so a run soon after another skips the
//! handshakes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncReadExt;

use super::remote::{Exec, ExecFuture, RemoteConnection, StatusFuture, Transport, feed, runtime};
use super::{CommonArgs, ConnectionError, HostKeyPolicy, Target, expand_home, host_key_policy};

pub(crate) struct SystemSsh {
    session: Arc<Session>,
}

/// Per-run control sockets (when `ControlPersist` is off) live here: short, because a socket
/// path has a 108-byte limit.
fn control_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("settle-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        dir
    })
}

/// Everything that shapes one master connection, from the target, ansible.cfg's `ssh_args`
/// (`ANSIBLE_SSH_ARGS`) and `ansible_ssh_common_args`.
struct MasterOptions {
    policy: HostKeyPolicy,
    known_hosts_file: Option<String>,
    /// Our own config file (extra `-o` options, then `Include` of the user's), if needed.
    config_file: Option<PathBuf>,
    /// Its lines: part of the name of a persistent master's socket.
    config_lines: Vec<String>,
    jump_hosts: Vec<String>,
    compression: bool,
    /// `ControlPersist`: how long an idle master outlives the run (`None`: it ends with it).
    persist: Option<String>,
    /// `ControlPath` from `ssh_args`, which wins over `control_path`, as in Ansible.
    control_path: Option<String>,
}

/// settle's default `ssh_args`: Ansible's `ControlPersist=60s`, without its `-C` (compression
/// costs CPU on fast links, and settle sends its agent once per host and version).
const DEFAULT_SSH_ARGS: &str = "-o ControlMaster=auto -o ControlPersist=60s";

impl MasterOptions {
    fn of(target: &Target) -> Result<Self, ConnectionError> {
        let ssh_args = target
            .ssh_args
            .clone()
            .or_else(|| std::env::var("ANSIBLE_SSH_ARGS").ok());
        let ssh_args = CommonArgs::parse_setting(
            "ssh_args",
            Some(ssh_args.as_deref().unwrap_or(DEFAULT_SSH_ARGS)),
        )?;
        let common = CommonArgs::parse(target.ssh_common_args.as_deref())?;
        let mut out = MasterOptions {
            policy: host_key_policy(),
            known_hosts_file: None,
            config_file: None,
            config_lines: Vec::new(),
            jump_hosts: Vec::new(),
            compression: ssh_args.compression || common.compression,
            persist: None,
            control_path: None,
        };
        let mut lines = Vec::new();
        for (k, v) in ssh_args.options.iter().chain(&common.options) {
            match k.to_ascii_lowercase().as_str() {
                "stricthostkeychecking" => out.policy = HostKeyPolicy::from_ssh_word(v),
                "userknownhostsfile" => out.known_hosts_file = Some(expand_home(v)),
                // settle always starts a master of its own; these say how it lives.
                "controlmaster" => {}
                "controlpersist" => {
                    out.persist = match v.to_ascii_lowercase().as_str() {
                        "no" | "false" => None,
                        "yes" | "true" | "0" => Some("yes".into()),
                        _ => Some(v.clone()),
                    }
                }
                "controlpath" => out.control_path = Some(v.clone()),
                _ => lines.push(format!("{k} {v}")),
            }
        }
        out.jump_hosts = ssh_args
            .jump_hosts
            .into_iter()
            .chain(common.jump_hosts)
            .collect();
        let config_file = common.config_file.or(ssh_args.config_file);
        if !lines.is_empty() || config_file.is_some() {
            // Extra options go in a config file of our own that then includes the user's.
            let base = config_file.map(|f| expand_home(&f)).or_else(|| {
                let home = std::env::var_os("HOME")?;
                let user = PathBuf::from(home).join(".ssh/config");
                user.exists().then(|| user.display().to_string())
            });
            if let Some(base) = base {
                lines.push(format!("Include {base}"));
            }
            let path = control_dir().join(format!(
                "config-{}-{}",
                target.address,
                target.port.unwrap_or(22)
            ));
            std::fs::write(&path, lines.join("\n") + "\n")
                .map_err(|e| ConnectionError::Failed(format!("ssh config: {e}")))?;
            out.config_file = Some(path);
            out.config_lines = lines;
        }
        Ok(out)
    }

    fn known_hosts_option(&self) -> &'static str {
        match self.policy {
            HostKeyPolicy::Strict => "StrictHostKeyChecking=yes",
            HostKeyPolicy::AcceptNew => "StrictHostKeyChecking=accept-new",
            HostKeyPolicy::Off => "StrictHostKeyChecking=no",
        }
    }
}

pub(crate) fn connect(target: &Target) -> Result<RemoteConnection<SystemSsh>, ConnectionError> {
    let options = MasterOptions::of(target)?;
    let session = match &options.persist {
        Some(persist) => persistent_master(target, &options, persist)?,
        // The openssh crate's master runs in batch mode, which asks no password, and says
        // nothing of how it connects: a master of our own then, that ends a second after this
        // run's last session.
        None if target.password.is_some() || target.ssh_verbosity > 0 => {
            persistent_master(target, &options, "1")?
        }
        None => run_master(target, &options)?,
    };
    Ok(RemoteConnection::new(
        SystemSsh {
            session: Arc::new(session),
        },
        target.user.clone(),
        target.address.clone(),
    ))
}

/// A master that ends with this run: the `openssh` crate's own, in a per-run folder.
fn run_master(target: &Target, options: &MasterOptions) -> Result<Session, ConnectionError> {
    let mut builder = SessionBuilder::default();
    if let Some(user) = &target.user {
        builder.user(user.clone());
    }
    if let Some(port) = target.port {
        builder.port(port);
    }
    if let Some(key) = &target.private_key_file {
        builder.keyfile(expand_home(key));
    }
    builder.connect_timeout(Duration::from_secs(target.timeout_secs.max(1)));
    builder.server_alive_interval(Duration::from_secs(15));
    builder.control_directory(control_dir());
    builder.known_hosts_check(match options.policy {
        HostKeyPolicy::Strict => KnownHosts::Strict,
        HostKeyPolicy::AcceptNew => KnownHosts::Add,
        HostKeyPolicy::Off => KnownHosts::Accept,
    });
    if let Some(file) = &options.known_hosts_file {
        builder.user_known_hosts_file(file);
    }
    if !options.jump_hosts.is_empty() {
        builder.jump_hosts(options.jump_hosts.iter());
    }
    if options.compression {
        builder.compression(true);
    }
    if let Some(file) = &options.config_file {
        builder.config_file(file);
    }
    runtime()?
        .block_on(builder.connect_mux(&target.address))
        .map_err(|e| {
            ConnectionError::Unreachable(format!(
                "Failed to connect to the host via ssh: {}",
                describe(&e)
            ))
        })
}

/// A master that outlives the run by `ControlPersist` (Ansible's default is 60 seconds), at a
/// control path named for everything that shapes the connection: the next run within that time
/// reuses it and skips the handshake. A socket whose master is gone is replaced silently.
fn persistent_master(
    target: &Target,
    options: &MasterOptions,
    persist: &str,
) -> Result<Session, ConnectionError> {
    let path = claim_control_path(target, options)?;
    // Two runs (or two aliases of one host) must not start two masters on one socket.
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| {
            ConnectionError::Failed(format!("ssh control path {}: {e}", lock_path.display()))
        })?;
    let resumed = Session::resume_mux(path.clone().into_boxed_path(), None);
    if path.exists() {
        if runtime()?.block_on(resumed.check()).is_ok() {
            if super::verbosity() >= 3 {
                println!(
                    "<{}> SSH: reusing the master at {}",
                    target.address,
                    path.display()
                );
            }
            drop(lock);
            return Ok(resumed);
        }
        // Its master is gone (ControlPersist ran out, the host rebooted): start afresh.
        let _ = std::fs::remove_file(&path);
    }
    if super::verbosity() >= 3 {
        println!(
            "<{}> SSH: starting a master at {} (ControlPersist={persist})",
            target.address,
            path.display()
        );
    }
    start_master(target, options, persist, &path)?;
    drop(lock);
    Ok(resumed)
}

/// `ssh -M -f -N`: authenticates, then forks into the background as the master.
fn start_master(
    target: &Target,
    options: &MasterOptions,
    persist: &str,
    path: &Path,
) -> Result<(), ConnectionError> {
    let log = path.with_extension("log");
    let mut ssh = std::process::Command::new("ssh");
    ssh.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(path)
        .args(["-M", "-f", "-N", "-o"])
        .arg(format!("ControlPersist={persist}"))
        .args(["-o", options.known_hosts_option()])
        .arg("-o")
        .arg(format!("ConnectTimeout={}", target.timeout_secs.max(1)))
        .args(["-o", "ServerAliveInterval=15"]);
    if target.ssh_verbosity > 0 {
        ssh.arg(format!("-{}", "v".repeat(target.ssh_verbosity.into())));
    }
    if let Some(port) = target.port {
        ssh.arg("-p").arg(port.to_string());
    }
    if let Some(user) = &target.user {
        ssh.arg("-l").arg(user);
    }
    if let Some(key) = &target.private_key_file {
        // As the openssh crate does: a key given is the only key tried.
        ssh.args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(expand_home(key));
    }
    if let Some(file) = &options.config_file {
        ssh.arg("-F").arg(file);
    }
    if options.compression {
        ssh.arg("-C");
    }
    if !options.jump_hosts.is_empty() {
        ssh.arg("-J").arg(options.jump_hosts.join(","));
    }
    if let Some(file) = &options.known_hosts_file {
        ssh.arg("-o").arg(format!("UserKnownHostsFile={file}"));
    }
    // A password (`ansible_password`, -k) is asked for once, through SSH_ASKPASS: settle
    // itself, reading it from a file only we can read, removed as soon as it is read (or when
    // ssh is done).
    let askpass = match &target.password {
        Some(password) => Some(askpass_file(&password.0)?),
        None => None,
    };
    if let Some(file) = &askpass {
        let me = std::env::current_exe().map_err(|e| {
            ConnectionError::Failed(format!("cannot find settle's own executable: {e}"))
        })?;
        ssh.args(["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"])
            .env("SSH_ASKPASS", me)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env(ASKPASS_FILE, file);
    } else {
        ssh.args(["-o", "BatchMode=yes"]);
    }
    // `--` keeps an address from being read as an option.
    ssh.arg("--").arg(&target.address);
    if super::verbosity() >= 3 {
        let words: Vec<String> = std::iter::once(ssh.get_program())
            .chain(ssh.get_args())
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        println!(
            "<{}> SSH: EXEC {}",
            target.address,
            shell_words::join(words)
        );
    }
    let status = ssh.status();
    if let Some(file) = &askpass {
        let _ = std::fs::remove_file(file);
    }
    let status = status.map_err(|e| {
        ConnectionError::Unreachable(format!("Failed to connect to the host via ssh: {e}"))
    })?;
    // The master keeps writing its log; the name is not needed once it runs.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    // What ssh said about connecting, when asked to say it (`ansible_ssh_verbosity`).
    if target.ssh_verbosity > 0 && super::verbosity() >= 3 {
        for line in text.lines() {
            println!("<{}> SSH: {line}", target.address);
        }
    }
    if status.success() {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    let text = text
        .lines()
        .filter(|l| !l.starts_with("Warning: Permanently added"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(ConnectionError::Unreachable(format!(
        "Failed to connect to the host via ssh: {}",
        text.trim()
    )))
}

/// Where settle, run by ssh as its SSH_ASKPASS, finds the password to give.
const ASKPASS_FILE: &str = "SETTLE_SSH_ASKPASS_FILE";

/// Writes a login password to a file of this run's 0700 folder that only we can read.
fn askpass_file(password: &str) -> Result<PathBuf, ConnectionError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = control_dir().join(format!("askpass-{n}"));
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(password.as_bytes()))
        .map_err(|e| ConnectionError::Failed(format!("cannot hand the password to ssh: {e}")))?;
    Ok(path)
}

/// When settle runs as OpenSSH's SSH_ASKPASS (for a master that logs in with a password):
/// prints the password once and says how to exit. `None`: this is an ordinary run.
pub fn answer_ssh_askpass() -> Option<u8> {
    let file = std::env::var_os(ASKPASS_FILE)?;
    // The password is given once: a second prompt (a wrong password) gets nothing.
    let password = std::fs::read_to_string(&file).ok();
    let _ = std::fs::remove_file(&file);
    match password {
        Some(p) => {
            println!("{p}");
            Some(0)
        }
        None => Some(1),
    }
}

/// The control socket for this target: under `control_path_dir` (`~/.settle/cp`), named by a
/// hash of the connection's settings (a master started with other options is not reused), or
/// `control_path` with `%(directory)s` and ssh's `%h`, `%p`, `%r` filled in. Each connection of
/// this run has a socket of its own: aliases of one host keep their own masters.
fn claim_control_path(
    target: &Target,
    options: &MasterOptions,
) -> Result<PathBuf, ConnectionError> {
    static CLAIMED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = std::env::var("ANSIBLE_SSH_CONTROL_PATH_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "~/.settle/cp".into());
    let dir = PathBuf::from(expand_home(&dir));
    std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        })
        .map_err(|e| {
            ConnectionError::Failed(format!("ssh control_path_dir {}: {e}", dir.display()))
        })?;
    let port = target.port.unwrap_or(22).to_string();
    let user = target.user.clone().unwrap_or_default();
    let template = options.control_path.clone().or_else(|| {
        std::env::var("ANSIBLE_SSH_CONTROL_PATH")
            .ok()
            .filter(|p| !p.is_empty())
    });
    let base = match template {
        Some(template) => {
            let template = template
                .replace("%(directory)s", &dir.display().to_string())
                .replace("%%", "%");
            expand_tokens(&template, &target.address, &port, &user)?
        }
        None => {
            use sha1::Digest;
            let identity = format!(
                "{}\0{port}\0{user}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}{}",
                target.address,
                target.private_key_file,
                target.ssh_common_args,
                options.policy,
                options.known_hosts_file,
                options.config_lines,
                options.jump_hosts,
                options.compression,
                // A master started to show ssh's debug lines is not one started without.
                match target.ssh_verbosity {
                    0 => String::new(),
                    n => format!("\0-v{n}"),
                },
            );
            let digest = sha1::Sha1::digest(identity.as_bytes());
            let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
            dir.join(hex)
        }
    };
    let mut claimed = CLAIMED
        .lock()
        .map_err(|_| ConnectionError::Failed("ssh control paths: a thread panicked".into()))?;
    let mut slot = 0;
    loop {
        let path = if slot == 0 {
            base.clone()
        } else {
            PathBuf::from(format!("{}-{}", base.display(), slot + 1))
        };
        if !claimed.contains(&path) {
            claimed.push(path.clone());
            return Ok(path);
        }
        slot += 1;
    }
}

/// ssh's `%h`, `%p`, `%r` and `%%` in a control path; other tokens are refused, because settle
/// must know the socket's name to reuse it.
fn expand_tokens(
    template: &str,
    host: &str,
    port: &str,
    user: &str,
) -> Result<PathBuf, ConnectionError> {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(host),
            Some('p') => out.push_str(port),
            Some('r') => out.push_str(user),
            Some('%') => out.push('%'),
            other => {
                return Err(ConnectionError::Failed(format!(
                    "ssh control_path {template:?}: settle fills in %h, %p, %r and %%, not %{}",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(PathBuf::from(expand_home(&out)))
}

fn describe(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(more.trim());
        }
        source = s.source();
    }
    text
}

impl Transport for SystemSsh {
    fn exec<'a>(&'a self, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut child = Session::to_command(self.session.clone(), "sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
                return Err(ConnectionError::Failed(
                    "ssh started without its pipes".into(),
                ));
            };
            Ok(Exec {
                stdin: Box::new(stdin),
                stdout: Box::new(stdout),
                keep: Box::new(child),
            })
        })
    }

    fn run_with_input<'a>(&'a self, command: &'a str, input: &'a [u8]) -> StatusFuture<'a> {
        Box::pin(async move {
            let mut child = Session::to_command(self.session.clone(), "sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            let Some(stdin) = child.stdin().take() else {
                return Err(ConnectionError::Failed(
                    "ssh started without its stdin".into(),
                ));
            };
            let mut stdin: super::agent::Writer = Box::new(stdin);
            feed(&mut stdin, input).await?;
            drop(stdin);
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr().take() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            let status = child
                .wait()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            if !status.success() {
                return Err(ConnectionError::Failed(format!(
                    "placing the agent failed: {}",
                    stderr.trim()
                )));
            }
            Ok(())
        })
    }
}
