//! The controller itself. Modules run in this process, unless a task becomes another user: then
//! settle's agent runs as that user, started through sudo or su as a child process, and module
//! calls go to it over the child's standard input and output, exactly as over SSH (one agent per
//! way of becoming, for the whole run).

use std::process::Stdio;
use std::sync::OnceLock;

use settle_modules::{Outcome, Request};
use tokio::io::AsyncReadExt;

use super::agent::{Agents, Writer, own_agents};
use super::remote::{Exec, ExecFuture, RemoteConnection, StatusFuture, Transport, feed, runtime};
use super::{Become, Connection, ConnectionError};

pub struct Local {
    /// The user settle runs as: becoming them needs no agent.
    me: String,
    /// The agents for other users, made on the first task that becomes one.
    agents: OnceLock<RemoteConnection<LocalShell>>,
    /// The host as -vvv shows it: `<address> ESTABLISH LOCAL CONNECTION …`.
    label: String,
}

impl Local {
    pub fn new() -> Self {
        Local {
            me: current_user(),
            agents: OnceLock::new(),
            label: "localhost".into(),
        }
    }

    /// The controller, reached as the inventory's `address` (what -vvv shows).
    pub fn for_address(address: &str) -> Self {
        Local {
            label: address.to_string(),
            ..Local::new()
        }
    }
}

impl Default for Local {
    fn default() -> Self {
        Local::new()
    }
}

impl Connection for Local {
    fn run(&self, request: &Request, become_: Option<&Become>) -> Result<Outcome, ConnectionError> {
        // As Ansible's local connection says it for each module it runs.
        if super::verbosity() >= 3 {
            println!(
                "<{}> ESTABLISH LOCAL CONNECTION FOR USER: {}",
                self.label, self.me
            );
        }
        match become_ {
            // `raw` is the become program's own output too: run as Ansible runs it.
            Some(b)
                if request.module == "raw"
                    && !request.check_mode
                    && (b.effective_user() != self.me || super::become_allow_same_user()) =>
            {
                super::become_command::run_raw_locally(request, b)
            }
            Some(b) if b.effective_user() != self.me || super::become_allow_same_user() => self
                .agents
                .get_or_init(|| {
                    RemoteConnection::new(LocalShell, Some(self.me.clone()), "localhost".into())
                })
                .run(request, Some(b)),
            _ => {
                if let Some(agents) = self.agents.get() {
                    runtime()?.block_on(agents.retire_agents_of_removed_user(request));
                }
                Ok(settle_modules::run(request))
            }
        }
    }
}

/// `sh -c` on the controller, as a transport for the agent.
pub(crate) struct LocalShell;

impl LocalShell {
    fn command(command: &str) -> tokio::process::Command {
        let mut child = tokio::process::Command::new("/bin/sh");
        child
            .arg("-c")
            .arg(command)
            // Its own process group: a Ctrl-C at the terminal stops settle, and the agent,
            // like a remote one, finishes the call in hand and exits when its input closes.
            .process_group(0);
        child
    }
}

impl Transport for LocalShell {
    fn speaks_ssh(&self) -> bool {
        false
    }

    fn exec<'a>(&'a self, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            // What sudo, su and the shell say before the agent's greeting comes on one stream.
            let mut child = LocalShell::command(&format!("exec 2>&1; {command}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| ConnectionError::Failed(format!("cannot run /bin/sh: {e}")))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(ConnectionError::Failed(
                    "/bin/sh started without its pipes".into(),
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
            let mut child = LocalShell::command(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| ConnectionError::Failed(format!("cannot run /bin/sh: {e}")))?;
            let Some(stdin) = child.stdin.take() else {
                return Err(ConnectionError::Failed(
                    "/bin/sh started without its stdin".into(),
                ));
            };
            let mut stdin: Writer = Box::new(stdin);
            feed(&mut stdin, input).await?;
            drop(stdin);
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            let status = child
                .wait()
                .await
                .map_err(|e| ConnectionError::Failed(format!("placing the agent failed: {e}")))?;
            if !status.success() {
                return Err(ConnectionError::Failed(format!(
                    "placing the agent failed: {}",
                    stderr.trim()
                )));
            }
            Ok(())
        })
    }

    /// The agent for the controller is this executable, whatever SETTLE_AGENT_BINARY or an
    /// agents folder says.
    fn agents(&self) -> Result<&'static Agents, ConnectionError> {
        own_agents()
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
