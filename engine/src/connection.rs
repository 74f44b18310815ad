//! How module calls reach a host. The executor only sees [`Connection`]: it hands over a
//! [`Request`] and gets an [`Outcome`] back, or learns that the host is unreachable.
//!
//! `local` runs the modules in this process. The SSH transports (a later stage) run the same
//! modules inside an agent on the host, so both paths share every line of module code.

use std::sync::Arc;

use settle_modules::{Outcome, Request};

/// `become`: run as another user, through sudo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub user: String,
    /// Fed to sudo on its standard input, never on a command line or in a log.
    pub password: Option<String>,
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

/// A way to run module calls on one host.
pub trait Connection: Send + Sync {
    fn run(&self, request: &Request, become_: Option<&Become>) -> Result<Outcome, ConnectionError>;
}

/// What the inventory and play say about reaching a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `local`, `ssh` (the default) or `russh`.
    pub transport: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub private_key_file: Option<String>,
    pub ssh_common_args: Option<String>,
    pub timeout_secs: u64,
}

/// Opens a connection for a target.
pub fn connect(target: &Target) -> Result<Arc<dyn Connection>, ConnectionError> {
    match target.transport.as_str() {
        "local" => Ok(Arc::new(Local)),
        "ssh" | "smart" | "paramiko" | "russh" => Err(ConnectionError::Unreachable(format!(
            "the {} transport is not available in this build; use ansible_connection=local",
            target.transport
        ))),
        other => Err(ConnectionError::Unreachable(format!(
            "unknown connection type {other:?}; settle has local, ssh and russh"
        ))),
    }
}

/// The controller itself: modules run in this process.
pub struct Local;

impl Connection for Local {
    fn run(&self, request: &Request, become_: Option<&Become>) -> Result<Outcome, ConnectionError> {
        if let Some(b) = become_ {
            let me = current_user();
            if b.user != me {
                return Err(ConnectionError::Failed(format!(
                    "become to {:?} on the local connection is not supported yet (running as {me:?})",
                    b.user
                )));
            }
        }
        Ok(settle_modules::run(request))
    }
}

fn current_user() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines()
                .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
                .map(|l| l.split(':').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}
