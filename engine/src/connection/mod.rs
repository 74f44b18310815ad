//! How module calls reach a host. The executor only sees [`Connection`]: it hands over a
//! [`Request`] and gets an [`Outcome`] back, or learns that the host is unreachable.
//!
//! `local` runs the modules in this process, or, to become another user, in settle's agent
//! started through sudo or su as a child process. The SSH transports (`ssh`: the system's OpenSSH
//! client; `russh`: pure Rust) start settle's agent on the host and send it the same requests,
//! so local and remote runs share every line of module code.

mod agent;
#[doc(hidden)]
pub use agent::fuzz_agent_output;
mod become_command;
mod local;
pub mod options;
mod remote;
mod russh;
mod ssh;
mod ssh_config;

use std::sync::Arc;

pub use local::Local;
use settle_modules::{Outcome, Request};
pub use ssh::answer_ssh_askpass;

/// `become`: run as another user, through sudo or su. Equal values share one agent process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Become {
    /// Empty: the method's own default (root), as `sudo`/`su` without a user.
    pub user: String,
    pub method: BecomeMethod,
    /// `become_exe`: the program to run instead of `sudo`/`su` (shell text, as Ansible inserts it).
    pub exe: Option<String>,
    /// `become_flags` (shell text); `None` is the method's defaults (sudo: `-H -S -n`, su: none).
    pub flags: Option<String>,
    /// Fed to sudo or su on its standard input, never on a command line or in a log.
    pub password: Option<String>,
    /// `ansible_su_prompt_l10n`: the words of su's password prompt; empty is Ansible's list.
    pub prompts: Vec<String>,
    /// `ansible_sudo_chdir`: the folder to `cd` to before sudo runs.
    pub chdir: Option<String>,
    /// How long to wait for the agent to answer through sudo or su
    /// (`ansible_local_become_success_timeout`, 10 seconds by default).
    pub timeout_secs: u64,
    /// `ansible_pipelining` of the local connection: without it, a `raw` command that becomes
    /// with a password gets a pty for its standard input, as Ansible's local connection gives it.
    pub pipelining: bool,
    /// `ansible_local_become_strip_preamble`: whether what the become program says before the
    /// command runs is left out of a `raw` command's output (the default).
    pub strip_preamble: bool,
}

/// `become_method`: the ways settle can become another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BecomeMethod {
    Sudo,
    Su,
}

impl BecomeMethod {
    /// `sudo` or `su`, as Ansible names its become plugins.
    pub fn parse(name: &str) -> Option<Self> {
        match name.strip_prefix("ansible.builtin.").unwrap_or(name) {
            "sudo" => Some(BecomeMethod::Sudo),
            "su" => Some(BecomeMethod::Su),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

impl Become {
    /// Becoming `user` with sudo and Ansible's defaults.
    pub fn sudo(user: &str) -> Self {
        Become {
            user: user.to_string(),
            method: BecomeMethod::Sudo,
            exe: None,
            flags: None,
            password: None,
            prompts: Vec::new(),
            chdir: None,
            timeout_secs: 10,
            pipelining: false,
            strip_preamble: true,
        }
    }

    /// The user this becomes: the named one, or root when none is named.
    pub fn effective_user(&self) -> &str {
        if self.user.is_empty() {
            "root"
        } else {
            &self.user
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    /// The host could not be reached or would not let us in: `unreachable` in the recap.
    #[error("{0}")]
    Unreachable(String),
    /// The host was reached, but the call could not be made (for example become failed).
    #[error("{0}")]
    Failed(String),
}

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// How many `-v` the run has: at 4, connections show the commands that start agents.
pub fn set_verbosity(verbosity: u8) {
    VERBOSITY.store(verbosity, std::sync::atomic::Ordering::Relaxed);
}

fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// `become_allow_same_user` (ANSIBLE_BECOME_ALLOW_SAME_USER): become even the user we are.
fn become_allow_same_user() -> bool {
    crate::template::env_flag("ANSIBLE_BECOME_ALLOW_SAME_USER")
}

/// A way to run module calls on one host.
pub trait Connection: Send + Sync {
    fn run(&self, request: &Request, become_: Option<&Become>) -> Result<Outcome, ConnectionError>;
}

/// What the inventory and play say about reaching a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `local`, `ssh` (the default: OpenSSH), `russh`, or `smart` (russh when the ssh
    /// configuration allows, else OpenSSH).
    pub transport: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub private_key_file: Option<String>,
    pub ssh_common_args: Option<String>,
    /// `ansible_ssh_args`: replaces `ssh_args` (`ANSIBLE_SSH_ARGS`, ansible.cfg) for this host.
    pub ssh_args: Option<String>,
    pub timeout_secs: u64,
    /// `ansible_password` (or `-k`): the login password, when keys do not let us in.
    pub password: Option<Password>,
    /// `ansible_ssh_verbosity` (ANSIBLE_SSH_VERBOSITY): OpenSSH's own `-v` count, 0 to 3.
    pub ssh_verbosity: u8,
}

/// A login password: never shown, not even in debug output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(********)")
    }
}

/// Whether settle has the transport `name` itself (else it may be a Python connection plugin,
/// run through ansible-core: `crate::ansible_modules::action::connection_plugin`).
pub fn is_native(name: &str) -> bool {
    matches!(name, "local" | "ssh" | "paramiko" | "russh" | "smart")
}

/// Opens a connection for a target.
pub fn connect(target: &Target) -> Result<Arc<dyn Connection>, ConnectionError> {
    match target.transport.as_str() {
        "local" => Ok(Arc::new(Local::for_address(&target.address))),
        "ssh" | "paramiko" => Ok(Arc::new(ssh::connect(target)?)),
        "russh" => Ok(Arc::new(russh::connect(target)?)),
        // The fastest transport that reaches the host as OpenSSH would: russh, unless the ssh
        // configuration asks for something only OpenSSH does.
        "smart" => match russh::can_honour(target) {
            Ok(()) => Ok(Arc::new(russh::connect(target)?)),
            Err(why) => {
                if verbosity() >= 3 {
                    println!(
                        "<{}> using OpenSSH: the russh transport cannot honour {why}",
                        target.address
                    );
                }
                Ok(Arc::new(ssh::connect(target)?))
            }
        },
        // As Ansible: a task that fails (the host is not unreachable). settle has local, ssh
        // and russh.
        other => Err(ConnectionError::Failed(format!(
            "Task failed: the connection plugin '{other}' was not found"
        ))),
    }
}

/// `ansible_ssh_common_args` (and ansible.cfg's `ssh_args`), as both transports read it:
/// `-o Key=Value` options, `-F`, `-J` and `-C`.
pub(crate) struct CommonArgs {
    pub options: Vec<(String, String)>,
    pub config_file: Option<String>,
    pub jump_hosts: Vec<String>,
    pub compression: bool,
}

impl CommonArgs {
    pub(crate) fn parse(args: Option<&str>) -> Result<Self, ConnectionError> {
        Self::parse_setting("ansible_ssh_common_args", args)
    }

    /// The same words from the setting `what` (named in errors).
    pub(crate) fn parse_setting(what: &str, args: Option<&str>) -> Result<Self, ConnectionError> {
        let mut out = CommonArgs {
            options: Vec::new(),
            config_file: None,
            jump_hosts: Vec::new(),
            compression: false,
        };
        let Some(args) = args else { return Ok(out) };
        let words = shell_words::split(args)
            .map_err(|e| ConnectionError::Failed(format!("{what}: {e}")))?;
        let mut iter = words.into_iter();
        while let Some(word) = iter.next() {
            let mut value_of = |flag: &str| -> Result<String, ConnectionError> {
                match word.strip_prefix(flag).filter(|v| !v.is_empty()) {
                    Some(v) => Ok(v.to_string()),
                    None => iter.next().ok_or_else(|| {
                        ConnectionError::Failed(format!("{what}: {flag} needs a value"))
                    }),
                }
            };
            if word.starts_with("-o") {
                let option = value_of("-o")?;
                let (k, v) = option.split_once(['=', ' ']).ok_or_else(|| {
                    ConnectionError::Failed(format!("{what}: -o {option} has no value"))
                })?;
                out.options
                    .push((k.trim().to_string(), v.trim().to_string()));
            } else if word.starts_with("-F") {
                out.config_file = Some(value_of("-F")?);
            } else if word.starts_with("-J") {
                out.jump_hosts.push(value_of("-J")?);
            } else if word == "-C" {
                out.compression = true;
            } else {
                // ssh itself would take the word for the host or a command and fail to
                // connect: the host is unreachable, as in Ansible (`ignore_unreachable` works).
                return Err(ConnectionError::Unreachable(format!(
                    "Failed to connect to the host via ssh: {what}: settle passes only -o, -F, \
                     -J and -C to ssh, not {word:?}"
                )));
            }
        }
        Ok(out)
    }
}

/// `~/x` → `$HOME/x`.
pub(crate) fn expand_home(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!(
            "{}/{rest}",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        ),
        None => path.to_string(),
    }
}

/// What to do with a host key that is not in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it (the default, as Ansible's `host_key_checking`).
    Strict,
    /// Remember a new host's key, refuse a changed one.
    AcceptNew,
    /// Accept anything: only when asked for.
    Off,
}

impl HostKeyPolicy {
    fn from_ssh_word(word: &str) -> Self {
        match word.to_ascii_lowercase().as_str() {
            "no" | "off" | "false" => HostKeyPolicy::Off,
            "accept-new" => HostKeyPolicy::AcceptNew,
            _ => HostKeyPolicy::Strict,
        }
    }
}

/// The policy from the environment: `ANSIBLE_HOST_KEY_CHECKING=False` turns checking off,
/// `SETTLE_HOST_KEY_CHECKING=accept-new|strict|off` picks one.
pub fn host_key_policy() -> HostKeyPolicy {
    if let Ok(v) = std::env::var("SETTLE_HOST_KEY_CHECKING") {
        return HostKeyPolicy::from_ssh_word(&v);
    }
    match std::env::var("ANSIBLE_HOST_KEY_CHECKING").map(|v| v.to_ascii_lowercase()) {
        Ok(v) if matches!(v.as_str(), "false" | "no" | "0" | "off") => HostKeyPolicy::Off,
        _ => HostKeyPolicy::Strict,
    }
}
