//! A host reached over a transport (system ssh or russh): one connection, and one agent process
//! per become user, for the whole run.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use settle_modules::{Outcome, Request};
use tokio::io::AsyncWriteExt;

use super::agent::{
    AgentPipe, Agents, Reader, Started, Writer, agents, end_command, start_command, upload_command,
};
use super::{Become, Connection, ConnectionError};
use crate::Unpoisoned;

/// The runtime the transports' async I/O runs on; callers block on it from worker threads.
/// Starting it fails only when the system refuses threads: an error for the host at hand.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, ConnectionError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("settle-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ConnectionError::Failed(format!("cannot start the I/O runtime: {e}")))
}

/// A remote command's standard input and (merged) output, and what keeps it alive.
pub(crate) struct Exec {
    pub stdin: Writer,
    pub stdout: Reader,
    pub keep: Box<dyn Send>,
}

pub(crate) type ExecFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Exec, ConnectionError>> + Send + 'a>>;
pub(crate) type StatusFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), ConnectionError>> + Send + 'a>>;

/// What a transport offers: run a shell command with pipes; run one to completion with input.
pub(crate) trait Transport: Send + Sync {
    fn exec<'a>(&'a self, command: &'a str) -> ExecFuture<'a>;
    fn run_with_input<'a>(&'a self, command: &'a str, input: &'a [u8]) -> StatusFuture<'a>;
    /// The agents to place on this host, one of them chosen by its architecture.
    fn agents(&self) -> Result<&'static Agents, ConnectionError> {
        agents()
    }
    /// Whether errors are worded as Ansible's ssh plugin words them (the local one has its own).
    fn speaks_ssh(&self) -> bool {
        true
    }
}

pub(crate) struct RemoteConnection<T: Transport> {
    /// Always `Some` until dropped (inside the runtime, as transports need).
    transport: Option<T>,
    /// The user we log in as, so `become` to the same user needs no sudo.
    login_user: Option<String>,
    /// The host as -vvv shows it: `<address> EXEC …`.
    label: String,
    /// One agent per way of becoming (none, or a user with a method, flags and password).
    agents: Mutex<HashMap<Option<Become>, Arc<tokio::sync::Mutex<AgentPipe>>>>,
}

impl<T: Transport> RemoteConnection<T> {
    pub(crate) fn new(transport: T, login_user: Option<String>, label: String) -> Self {
        RemoteConnection {
            transport: Some(transport),
            login_user,
            label,
            agents: Mutex::default(),
        }
    }

    /// The transport lives until drop; only `Drop` takes it.
    fn transport(&self) -> Result<&T, ConnectionError> {
        self.transport.as_ref().ok_or_else(|| {
            ConnectionError::Failed(format!("{}: the connection is closed", self.label))
        })
    }

    async fn start_agent(&self, become_: Option<&Become>) -> Result<AgentPipe, ConnectionError> {
        let agents = self.transport()?.agents()?;
        let command = start_command(agents, become_);
        // The command that starts the agent, from -vvv on as Ansible shows the commands it
        // runs on a host.
        if super::verbosity() >= 3 {
            println!(
                "<{}> EXEC /bin/sh -c {}",
                self.label,
                super::agent::sh_quote(&command)
            );
        }
        for attempt in 0..2 {
            let exec = self.transport()?.exec(&command).await?;
            let mut become_pid = None;
            let started =
                AgentPipe::start(exec.stdin, exec.stdout, exec.keep, become_, &mut become_pid)
                    .await;
            // Ansible's `-tt` pty ends the remote side when it gives up on become; here the
            // process group of the start command ends.
            if let (Err(ConnectionError::Unreachable(_)), Some(pid)) = (&started, become_pid) {
                let _ = self
                    .transport()?
                    .run_with_input(&end_command(pid), b"")
                    .await;
            }
            let started = match self.transport()?.speaks_ssh() {
                true => started.map_err(|e| in_ssh_words(e, become_)),
                false => started,
            };
            match started? {
                Started::Running(pipe) => return Ok(pipe),
                Started::NeedsUpload(arch) if attempt == 0 => {
                    // A host whose `uname` said nothing took the start command's default.
                    let binary = match arch.is_empty() {
                        true => Some(agents.default),
                        false => agents.for_arch(&arch),
                    };
                    let Some(binary) = binary else {
                        return Err(ConnectionError::Failed(format!(
                            "the host runs on {arch}, and settle has agents here for {} only: \
                             install settle's agents for {arch} (packaging/build-agent --agents) and set \
                             SETTLE_AGENT_DIR to their folder",
                            agents.arches()
                        )));
                    };
                    self.transport()?
                        .run_with_input(&upload_command(&binary.hash), binary.bytes()?)
                        .await?;
                }
                Started::NeedsUpload(_) => {
                    return Err(ConnectionError::Failed(
                        "the agent could not be placed on the host".into(),
                    ));
                }
            }
        }
        unreachable!("the loop returns")
    }

    async fn agent(
        &self,
        become_: Option<&Become>,
    ) -> Result<Arc<tokio::sync::Mutex<AgentPipe>>, ConnectionError> {
        // Becoming the user we log in as is no change at all (unless the configuration says
        // to become them anyway: ANSIBLE_BECOME_ALLOW_SAME_USER).
        let become_ = become_.filter(|b| {
            self.login_user.as_deref() != Some(b.effective_user())
                || super::become_allow_same_user()
        });
        // How a `raw` command under become is watched is no part of the agent's identity.
        let key = become_.map(|b| Become {
            pipelining: false,
            strip_preamble: true,
            ..b.clone()
        });
        if let Some(agent) = self.agents.lock().unpoisoned().get(&key) {
            return Ok(agent.clone());
        }
        let pipe = Arc::new(tokio::sync::Mutex::new(self.start_agent(become_).await?));
        Ok(self
            .agents
            .lock()
            .unpoisoned()
            .entry(key)
            .or_insert(pipe)
            .clone())
    }
}

impl<T: Transport> RemoteConnection<T> {
    /// Before `user: state=absent` removes a user, the agents running as them exit: userdel
    /// refuses a user who still has processes (Ansible runs none between tasks).
    pub(crate) async fn retire_agents_of_removed_user(&self, request: &Request) {
        let removed = match (request.module.as_str(), request.args.get("state")) {
            ("user", Some(state)) if state.as_str() == Some("absent") => request.args.get("name"),
            _ => None,
        };
        let Some(name) = removed.and_then(|n| n.as_str()) else {
            return;
        };
        let retired: Vec<_> = self
            .agents
            .lock()
            .unpoisoned()
            .extract_if(|key, _| key.as_ref().is_some_and(|b| b.effective_user() == name))
            .map(|(_, agent)| agent)
            .collect();
        for agent in retired {
            agent.lock().await.close().await;
        }
    }
}

impl<T: Transport> Drop for RemoteConnection<T> {
    fn drop(&mut self) {
        // Closing channels and sessions spawns tasks: do it where the runtime is (there is a
        // connection to drop only if the runtime started).
        let _guard = runtime().ok().map(|r| r.enter());
        self.agents.get_mut().unpoisoned().clear();
        drop(self.transport.take());
    }
}

impl<T: Transport> Connection for RemoteConnection<T> {
    fn run(&self, request: &Request, become_: Option<&Become>) -> Result<Outcome, ConnectionError> {
        // Boxed: `block_on` keeps the future where it is, and this one (starting an agent,
        // placing it, a call) is many KB; on the worker thread's stack, which is resident for
        // the thread's life, it cost each of a thousand hosts' threads that much.
        runtime()?.block_on(Box::pin(async {
            self.retire_agents_of_removed_user(request).await;
            let agent = self.agent(become_).await?;
            let mut pipe = agent.lock().await;
            pipe.call(request).await
        }))
    }
}

/// Writes `input` to a command's standard input and closes it.
pub(crate) async fn feed(stdin: &mut Writer, input: &[u8]) -> Result<(), ConnectionError> {
    stdin
        .write_all(input)
        .await
        .map_err(|e| ConnectionError::Unreachable(format!("upload: {e}")))?;
    stdin
        .shutdown()
        .await
        .map_err(|e| ConnectionError::Unreachable(format!("upload: {e}")))?;
    Ok(())
}

/// A become that timed out over SSH, in the ssh plugin's words: `Timeout (5s) waiting for
/// privilege escalation prompt: OUTPUT` (the local connection keeps its own).
fn in_ssh_words(error: ConnectionError, become_: Option<&Become>) -> ConnectionError {
    match (error, become_) {
        (ConnectionError::Unreachable(msg), Some(b))
            if msg.starts_with("Timed out waiting for become") =>
        {
            let seen = msg
                .split_once(">>> Standard Output\n")
                .map(|(_, out)| out)
                .unwrap_or_default();
            ConnectionError::Unreachable(format!(
                "Timeout ({}s) waiting for privilege escalation prompt: {seen}",
                b.timeout_secs.max(1)
            ))
        }
        (error, _) => error,
    }
}

#[cfg(test)]
mod ssh_words {
    use super::*;

    #[test]
    fn a_become_timeout_reads_as_the_ssh_plugins() {
        let b = Become {
            timeout_secs: 5,
            ..Become::sudo("x")
        };
        let e = in_ssh_words(
            ConnectionError::Unreachable(
                "Timed out waiting for become success.\n>>> Standard Output\nhello".into(),
            ),
            Some(&b),
        );
        assert_eq!(
            e.to_string(),
            "Timeout (5s) waiting for privilege escalation prompt: hello"
        );
        let other = in_ssh_words(ConnectionError::Failed("no".into()), Some(&b));
        assert_eq!(other.to_string(), "no");
    }
}
