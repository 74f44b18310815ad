//! The controller's side of the agent: place it on the host once, start it (under sudo for
//! `become`), and exchange calls with it over whatever byte stream the transport gives.

use std::sync::OnceLock;

use settle_modules::agent::{Call, Hello, PROTOCOL, Reply};
use settle_modules::{Outcome, Request};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{Become, ConnectionError};

/// What sudo prints when it wants the become password (our own prompt, so we can spot it).
const BECOME_PROMPT: &str = "[settle-become-password]";
/// What the start command prints when the host has no agent of this version yet.
const NEED_AGENT: &str = "SETTLE-NEED-AGENT";

pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The agent binary sent to hosts: this very executable, unless SETTLE_AGENT_BINARY names
/// another build (for hosts of another architecture). Its hash names it on hosts; its bytes are
/// read only when a host lacks it, so a run on hosts that have it never holds the file in memory.
pub(crate) struct AgentBinary {
    path: std::path::PathBuf,
    bytes: OnceLock<Result<Vec<u8>, String>>,
    pub hash: String,
    pub arch: String,
}

impl AgentBinary {
    /// The file's bytes, read once for all the hosts that need them.
    pub(crate) fn bytes(&self) -> Result<&[u8], ConnectionError> {
        self.bytes
            .get_or_init(|| std::fs::read(&self.path).map_err(|e| self.unreadable(e)))
            .as_deref()
            .map_err(|e| ConnectionError::Failed(e.clone()))
    }

    fn unreadable(&self, e: std::io::Error) -> String {
        format!("cannot read the agent binary {}: {e}", self.path.display())
    }
}

pub(crate) fn agent_binary() -> Result<&'static AgentBinary, ConnectionError> {
    static BINARY: OnceLock<Result<AgentBinary, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let (path, arch) = match std::env::var_os("SETTLE_AGENT_BINARY") {
                Some(p) => (
                    std::path::PathBuf::from(p),
                    std::env::var("SETTLE_AGENT_ARCH")
                        .unwrap_or_else(|_| std::env::consts::ARCH.into()),
                ),
                None => (
                    std::env::current_exe()
                        .map_err(|e| format!("cannot find settle's own executable: {e}"))?,
                    std::env::consts::ARCH.into(),
                ),
            };
            let mut binary = AgentBinary {
                path,
                bytes: OnceLock::new(),
                hash: String::new(),
                arch,
            };
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            std::fs::File::open(&binary.path)
                .and_then(|mut file| std::io::copy(&mut file, &mut hasher))
                .map_err(|e| binary.unreadable(e))?;
            let digest = sha2::Digest::finalize(hasher);
            binary.hash = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            Ok(binary)
        })
        .as_ref()
        .map_err(|e| ConnectionError::Failed(e.clone()))
}

/// Single quotes for the remote shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

const AGENT_DIR: &str = "/var/tmp/settle-agent-$(id -u)";

/// The command that starts the agent if this version is on the host, or says it is missing.
pub(crate) fn start_command(hash: &str, become_: Option<&Become>) -> String {
    let path = format!("{AGENT_DIR}/agent-{hash}");
    let exec = match become_ {
        None => "exec \"$P\" __agent".to_string(),
        Some(b) if b.password.is_some() => {
            format!(
                "exec sudo -S -p {} -u {} -- \"$P\" __agent 2>&1",
                sh_quote(&format!("{BECOME_PROMPT}\n")),
                sh_quote(&b.user)
            )
        }
        Some(b) => format!(
            "exec sudo -n -u {} -- \"$P\" __agent 2>&1",
            sh_quote(&b.user)
        ),
    };
    format!("P={path}; if [ -x \"$P\" ]; then {exec}; else echo {NEED_AGENT} \"$(uname -m)\"; fi")
}

/// The command that stores the agent sent on its standard input. The folder must be the login
/// user's own (so nobody else can swap the binary) and readable by users we become.
pub(crate) fn upload_command(hash: &str) -> String {
    format!(
        "set -e; umask 022; D={AGENT_DIR}; mkdir -p \"$D\"; \
         if [ \"$(stat -c %u \"$D\")\" != \"$(id -u)\" ]; then echo \"settle: $D belongs to someone else\" >&2; exit 3; fi; \
         chmod 0755 \"$D\"; T=$(mktemp \"$D/.upload.XXXXXX\"); cat > \"$T\"; chmod 0755 \"$T\"; mv -f \"$T\" \"$D/agent-{hash}\""
    )
}

/// What starting the agent came to.
pub(crate) enum Started {
    Running(AgentPipe),
    /// The host has no agent of this version; its `uname -m` is given.
    NeedsUpload(String),
}

/// A running agent: one request at a time.
pub(crate) struct AgentPipe {
    writer: Writer,
    reader: BufReader<Reader>,
    next_id: u64,
    /// What keeps the remote process alive (the transport's child or channel handle).
    _keep: Box<dyn Send>,
}

impl AgentPipe {
    /// Reads the agent's hello, answering sudo's password prompt on the way.
    pub(crate) async fn start(
        mut writer: Writer,
        reader: Reader,
        keep: Box<dyn Send>,
        become_: Option<&Become>,
    ) -> Result<Started, ConnectionError> {
        let mut reader = BufReader::new(reader);
        let mut seen = String::new();
        let mut sent_password = false;
        loop {
            let mut line = String::new();
            let n = read_line_or_prompt(&mut reader, &mut line)
                .await
                .map_err(|e| ConnectionError::Unreachable(format!("agent: {e}")))?;
            if n == 0 {
                let detail = seen.trim();
                return Err(ConnectionError::Failed(
                    if detail.contains("a password is required") {
                        format!(
                            "become to {:?} needs a password: give -K or ansible_become_password",
                            become_.map(|b| b.user.as_str()).unwrap_or("")
                        )
                    } else if detail.is_empty() {
                        "the agent exited before it started".into()
                    } else {
                        format!("the agent did not start: {detail}")
                    },
                ));
            }
            let trimmed = line.trim();
            if trimmed.starts_with(BECOME_PROMPT) {
                if sent_password {
                    return Err(ConnectionError::Failed(format!(
                        "become to {:?}: the password was not accepted",
                        become_.map(|b| b.user.as_str()).unwrap_or("")
                    )));
                }
                let password = become_.and_then(|b| b.password.as_deref()).unwrap_or("");
                writer
                    .write_all(format!("{password}\n").as_bytes())
                    .await
                    .map_err(io_lost)?;
                writer.flush().await.map_err(io_lost)?;
                sent_password = true;
                continue;
            }
            if let Some(arch) = trimmed.strip_prefix(NEED_AGENT) {
                return Ok(Started::NeedsUpload(arch.trim().to_string()));
            }
            if trimmed.starts_with('{') {
                let hello: Hello = serde_json::from_str(trimmed).map_err(|e| {
                    ConnectionError::Failed(format!("agent: unexpected greeting {trimmed:?}: {e}"))
                })?;
                if hello.settle_agent != PROTOCOL {
                    return Err(ConnectionError::Failed(format!(
                        "agent speaks protocol {}, this settle speaks {PROTOCOL}",
                        hello.settle_agent
                    )));
                }
                return Ok(Started::Running(AgentPipe {
                    writer,
                    reader,
                    next_id: 1,
                    _keep: keep,
                }));
            }
            // sudo's lectures and errors come before the greeting.
            if !trimmed.is_empty() && !trimmed.contains("password for") {
                seen.push_str(trimmed);
                seen.push('\n');
            }
        }
    }

    pub(crate) async fn call(&mut self, request: &Request) -> Result<Outcome, ConnectionError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&Call {
            id,
            request: request.clone(),
        })
        .map_err(|e| ConnectionError::Failed(e.to_string()))?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(io_lost)?;
        self.writer.flush().await.map_err(io_lost)?;
        let mut answer = String::new();
        let n = self.reader.read_line(&mut answer).await.map_err(io_lost)?;
        if n == 0 {
            return Err(ConnectionError::Unreachable(
                "the connection to the host's agent was lost".into(),
            ));
        }
        let reply: Reply = serde_json::from_str(answer.trim())
            .map_err(|e| ConnectionError::Failed(format!("agent: unreadable reply: {e}")))?;
        if reply.id != id {
            return Err(ConnectionError::Failed(format!(
                "agent: reply {} to call {id}",
                reply.id
            )));
        }
        Ok(reply.outcome)
    }
}

fn io_lost(e: std::io::Error) -> ConnectionError {
    ConnectionError::Unreachable(format!("the connection to the host's agent was lost: {e}"))
}

/// Reads a line, or stops early at sudo's prompt (which has no newline until we answer).
async fn read_line_or_prompt(
    reader: &mut BufReader<Reader>,
    line: &mut String,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut total = 0;
    let mut byte = [0u8; 1];
    loop {
        let n = reader.read(&mut byte).await?;
        if n == 0 {
            return Ok(total);
        }
        total += 1;
        line.push(byte[0] as char);
        if byte[0] == b'\n' || line.ends_with(BECOME_PROMPT) {
            return Ok(total);
        }
        // A greeting is a full JSON line: read the rest at once.
        if line == "{" {
            let mut rest = String::new();
            reader.read_line(&mut rest).await?;
            line.push_str(&rest);
            return Ok(total + rest.len());
        }
    }
}
