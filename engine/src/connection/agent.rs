//! The controller's side of the agent: place it on the host once, start it (under sudo for
//! `become`), and exchange calls with it over whatever byte stream the transport gives.

use std::sync::OnceLock;

use settle_modules::agent::{Call, Hello, PROTOCOL, Reply};
use settle_modules::{Outcome, Request};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{Become, BecomeMethod, ConnectionError};

/// What sudo prints when it wants the become password (our own prompt, so we can spot it).
const BECOME_PROMPT: &str = "[settle-become-password]";
/// What the start command prints when the host has no agent of this version yet.
const NEED_AGENT: &str = "SETTLE-NEED-AGENT";
/// What the start command prints, under become, before sudo or su replaces its shell: the
/// process (and process group) to end when the become program stalls.
const STARTED_PID: &str = "SETTLE-BECOME-PID";

pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// One agent binary settle can place on hosts. Its hash names it on hosts; its bytes are read
/// only when a host lacks it, so a run on hosts that have it never holds the file in memory.
pub(crate) struct AgentBinary {
    path: std::path::PathBuf,
    bytes: OnceLock<Result<Vec<u8>, String>>,
    pub hash: String,
    /// The `uname -m` of the hosts it runs on.
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

/// The agents settle places on hosts: its own executable (or SETTLE_AGENT_BINARY's build, for
/// SETTLE_AGENT_ARCH) and those of an agents folder, one per architecture, chosen by the
/// host's `uname -m`.
pub(crate) struct Agents {
    /// Shared by the local and the remote agents, so settle's own file is hashed once a run.
    pub default: &'static AgentBinary,
    /// `settle-agent-ARCH` files (`packaging/build-agent --agents`: static builds for x86_64 and
    /// aarch64, musl hosts included) from SETTLE_AGENT_DIR or, beside an installed settle,
    /// `../lib/settle/agents`. They go before the default for their architecture.
    pub by_arch: Vec<AgentBinary>,
}

/// What agent files in an agents folder are called: `settle-agent-` and the `uname -m` of the
/// hosts they run on.
const AGENT_FILE_PREFIX: &str = "settle-agent-";

impl Agents {
    /// The agent for a host whose `uname -m` is `arch`.
    pub(crate) fn for_arch(&self, arch: &str) -> Option<&AgentBinary> {
        self.by_arch
            .iter()
            .find(|a| a.arch == arch)
            .or(Some(self.default).filter(|a| a.arch == arch))
    }

    /// The architectures there are agents for, as a message lists them.
    pub(crate) fn arches(&self) -> String {
        let mut arches: Vec<&str> = self.by_arch.iter().map(|a| a.arch.as_str()).collect();
        if !arches.contains(&self.default.arch.as_str()) {
            arches.insert(0, &self.default.arch);
        }
        arches.join(", ")
    }

    /// The shell text that sets `H` to the hash of the agent for the host it runs on: the
    /// default's alone, or a `case` on `uname -m` when a folder offers agents.
    fn choose_hash(&self) -> String {
        if self.by_arch.is_empty() {
            return format!("H={}", self.default.hash);
        }
        let mut arms: Vec<String> = self
            .by_arch
            .iter()
            .map(|a| format!("{}) H={};;", sh_quote(&a.arch), a.hash))
            .collect();
        arms.push(format!("*) H={};;", self.default.hash));
        format!("case \"$(uname -m)\" in {} esac", arms.join(" "))
    }

    fn load_folder(
        default: &'static AgentBinary,
        folder: Option<std::path::PathBuf>,
    ) -> Result<Agents, String> {
        let mut by_arch = Vec::new();
        if let Some(folder) = folder {
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| format!("cannot read the agents folder {}: {e}", folder.display()))?;
            let mut files: Vec<(String, std::path::PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    let arch = name.strip_prefix(AGENT_FILE_PREFIX)?;
                    // Only names a shell `case` takes as they are.
                    let plain = !arch.is_empty()
                        && arch
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    plain.then(|| (arch.to_string(), entry.path()))
                })
                .collect();
            files.sort();
            for (arch, path) in files {
                by_arch.push(AgentBinary::load(path, arch)?);
            }
        }
        Ok(Agents { default, by_arch })
    }
}

/// The agents for remote hosts: settle's own executable unless SETTLE_AGENT_BINARY names
/// another build (for SETTLE_AGENT_ARCH), and an agents folder's when there is one.
pub(crate) fn agents() -> Result<&'static Agents, ConnectionError> {
    static OTHER: OnceLock<Result<AgentBinary, String>> = OnceLock::new();
    static AGENTS: OnceLock<Result<Agents, String>> = OnceLock::new();
    AGENTS
        .get_or_init(|| {
            let default = match std::env::var_os("SETTLE_AGENT_BINARY") {
                Some(p) => OTHER
                    .get_or_init(|| {
                        AgentBinary::load(
                            std::path::PathBuf::from(p),
                            std::env::var("SETTLE_AGENT_ARCH")
                                .unwrap_or_else(|_| std::env::consts::ARCH.into()),
                        )
                    })
                    .as_ref()
                    .map_err(Clone::clone)?,
                None => own_binary()?,
            };
            Agents::load_folder(default, agents_folder())
        })
        .as_ref()
        .map_err(|e| ConnectionError::Failed(e.clone()))
}

/// SETTLE_AGENT_DIR (which must exist), or the folder an installed settle's agents are in
/// (`/usr/bin/settle` → `/usr/lib/settle/agents`), when there is one.
fn agents_folder() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("SETTLE_AGENT_DIR").filter(|d| !d.is_empty()) {
        return Some(dir.into());
    }
    let exe = std::env::current_exe().ok()?;
    let folder = exe.parent()?.parent()?.join("lib/settle/agents");
    folder.is_dir().then_some(folder)
}

/// This very executable, whatever SETTLE_AGENT_BINARY or an agents folder says: the agent for
/// the controller itself.
pub(crate) fn own_agents() -> Result<&'static Agents, ConnectionError> {
    static AGENTS: OnceLock<Result<Agents, String>> = OnceLock::new();
    AGENTS
        .get_or_init(|| {
            Ok(Agents {
                default: own_binary()?,
                by_arch: Vec::new(),
            })
        })
        .as_ref()
        .map_err(|e| ConnectionError::Failed(e.clone()))
}

/// settle's own executable as an agent, hashed once for every use.
fn own_binary() -> Result<&'static AgentBinary, String> {
    static OWN: OnceLock<Result<AgentBinary, String>> = OnceLock::new();
    OWN.get_or_init(|| {
        own_binary_path().and_then(|p| AgentBinary::load(p, std::env::consts::ARCH.into()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn own_binary_path() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find settle's own executable: {e}"))
}

impl AgentBinary {
    fn load(path: std::path::PathBuf, arch: String) -> Result<AgentBinary, String> {
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
    }
}

/// Single quotes for the remote shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

const AGENT_DIR: &str = "/var/tmp/settle-agent-$(id -u)";

/// The command that starts the agent if this version is on the host, or says it is missing.
pub(crate) fn start_command(agents: &Agents, become_: Option<&Become>) -> String {
    let path = format!("{AGENT_DIR}/agent-$H");
    let choose = agents.choose_hash();
    let exec = match become_ {
        // Merged, as under become: what the agent (or the host's loader) says before its
        // greeting is the reason it did not start.
        None => "exec \"$P\" __agent 2>&1".to_string(),
        // The shell leads its process group (sshd and the local transport start it so): the
        // group is what a become that stalls leaves behind on the host.
        Some(b) => format!("echo {STARTED_PID} $$; {}", become_exec(b)),
    };
    format!(
        "{choose}; P={path}; if [ -x \"$P\" ]; then {exec}; else echo {NEED_AGENT} \"$(uname -m)\"; fi"
    )
}

/// The command that ends what a become that stalled left running, as ssh's `-tt` pty ends
/// Ansible's: the start command's process (sudo or su) and every process under it. The tree is
/// read from /proc first (sudo's own pty puts the command in a session of its own, out of reach
/// of a process-group kill), then sudo is asked to end (it passes the signal on to what it
/// runs, which a login user other than root may not signal), then whatever is left is killed.
pub(crate) fn end_command(pid: u32) -> String {
    format!(
        "L=' {pid} '; more=1; while [ $more = 1 ]; do more=0; \
         for s in /proc/[0-9]*/stat; do read -r l < \"$s\" 2>/dev/null || continue; \
         p=${{s#/proc/}}; p=${{p%/stat}}; r=${{l##*') '}}; set -- $r; \
         case \"$L\" in *\" $p \"*) continue;; esac; \
         case \"$L\" in *\" $2 \"*) L=\"$L$p \"; more=1;; esac; done; done; \
         kill -TERM {pid} 2>/dev/null; sleep 1; kill -KILL $L 2>/dev/null; true"
    )
}

/// `exec sudo … "$P" __agent` or `exec su … -c "exec $P __agent"`, built as Ansible's become
/// plugins build theirs: the executable and flags are shell text, inserted as given. Their
/// messages (and the password prompt) come on the agent's standard output, before its greeting.
fn become_exec(b: &Become) -> String {
    let exe = b
        .exe
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or(b.method.name());
    let mut words = vec![exe.to_string()];
    match b.method {
        BecomeMethod::Sudo => {
            let flags = b.flags.as_deref().unwrap_or("-H -S -n");
            match b.password {
                // A password is answered on stdin: sudo must be allowed to ask for it.
                Some(_) => {
                    words.push(interactive_sudo_flags(flags));
                    words.push(format!("-p {}", sh_quote(&format!("{BECOME_PROMPT}\n"))));
                }
                None => words.push(flags.to_string()),
            }
            if !b.user.is_empty() {
                words.push(format!("-u {}", sh_quote(&b.user)));
            }
            words.push("\"$P\" __agent".into());
        }
        BecomeMethod::Su => {
            words.push(b.flags.clone().unwrap_or_default());
            if !b.user.is_empty() {
                words.push(sh_quote(&b.user));
            }
            // The agent's path has no quotes or spaces: $P is expanded here, the rest by su's shell.
            words.push("-c \"exec $P __agent\"".into());
        }
    }
    let words: Vec<String> = words.into_iter().filter(|w| !w.trim().is_empty()).collect();
    let cd = match &b.chdir {
        Some(dir) if b.method == BecomeMethod::Sudo => format!("cd {} 2>&1 && ", sh_quote(dir)),
        _ => String::new(),
    };
    format!("{cd}exec {} 2>&1", words.join(" "))
}

/// sudo's flags without `-n`/`--non-interactive` (also inside `-Hn`), as Ansible drops them
/// when it has a password to give.
pub(crate) fn interactive_sudo_flags(flags: &str) -> String {
    let Ok(words) = shell_words::split(flags) else {
        return flags.to_string();
    };
    let kept: Vec<String> = words
        .into_iter()
        .filter(|w| w != "-n" && w != "--non-interactive")
        .map(|mut w| {
            // `-Hn` → `-H`: the first `n` of a cluster of short flags.
            if w.starts_with('-')
                && !w.starts_with("--")
                && let Some(i) = w[1..].find('n')
            {
                w.remove(i + 1);
            }
            w
        })
        .collect();
    shell_words::join(kept)
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

const READ_BUFFER: usize = 2048;

/// A running agent: one request at a time.
pub(crate) struct AgentPipe {
    writer: Writer,
    reader: BufReader<Reader>,
    next_id: u64,
    /// What keeps the remote process alive (the transport's child or channel handle).
    _keep: Box<dyn Send>,
}

impl AgentPipe {
    /// Reads the agent's hello, answering sudo's or su's password prompt on the way. With
    /// become, the become program has `become_.timeout_secs` to get the agent to say hello.
    pub(crate) async fn start(
        mut writer: Writer,
        reader: Reader,
        keep: Box<dyn Send>,
        become_: Option<&Become>,
        become_pid: &mut Option<u32>,
    ) -> Result<Started, ConnectionError> {
        // Replies are read a line at a time and long ones parsed as they come: a small buffer
        // does (each host's agent keeps one for the run; tokio's default is 8 KB).
        let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
        // A timeout past what the clock holds is no deadline.
        let deadline = become_.and_then(|b| {
            tokio::time::Instant::now()
                .checked_add(std::time::Duration::from_secs(b.timeout_secs.max(1)))
        });
        let mut seen = String::new();
        let mut sent_password = false;
        loop {
            let mut line = Vec::new();
            let read = read_line_or_prompt(&mut reader, &mut line, become_);
            let read = match become_.zip(deadline) {
                Some((become_, deadline)) => match tokio::time::timeout_at(deadline, read).await {
                    Ok(read) => read,
                    Err(_) => {
                        seen.push_str(String::from_utf8_lossy(&line).trim());
                        let waiting_for_prompt = become_.password.is_some() && !sent_password;
                        return Err(ConnectionError::Unreachable(become_failure(
                            "Timed out",
                            waiting_for_prompt,
                            &seen,
                        )));
                    }
                },
                None => read.await,
            };
            let n = read.map_err(|e| ConnectionError::Unreachable(format!("agent: {e}")))?;
            let text = String::from_utf8_lossy(&line);
            if n == 0 {
                let message = match become_ {
                    Some(b) => ended_before_hello(b, &seen, sent_password),
                    None if seen.trim().is_empty() => "the agent exited before it started".into(),
                    None => format!("the agent did not start: {}", seen.trim()),
                };
                return Err(ConnectionError::Failed(message + &too_new_for_host(&seen)));
            }
            let trimmed = text.trim();
            if let Some(b) = become_.filter(|b| is_password_prompt(b, trimmed)) {
                let method = b.method.name();
                let Some(password) = b.password.as_deref() else {
                    return Err(ConnectionError::Failed(missing_password(b)));
                };
                if sent_password {
                    return Err(ConnectionError::Failed(format!(
                        "Incorrect {method} password: the password was not accepted for become to {:?}",
                        b.effective_user()
                    )));
                }
                writer
                    .write_all(format!("{password}\n").as_bytes())
                    .await
                    .map_err(io_lost)?;
                writer.flush().await.map_err(io_lost)?;
                sent_password = true;
                continue;
            }
            if let Some(pid) = trimmed.strip_prefix(STARTED_PID) {
                *become_pid = pid.trim().parse().ok();
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

    /// Ends the agent: closes its input and waits until its output closes, which is when it
    /// (and sudo or su around it) has exited.
    pub(crate) async fn close(&mut self) {
        close_input(&mut self.writer).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::io::AsyncReadExt::read_to_end(&mut self.reader, &mut rest),
        )
        .await;
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
        // Ctrl-C or SIGTERM while the call runs: the agent's input is closed, so it ends the
        // commands it started and answers this call, which is read as any other (the read is
        // never cancelled half way through a reply).
        let writer = &mut self.writer;
        let close_on_signal = async {
            crate::interrupt::signalled().await;
            close_input(writer).await;
            std::future::pending::<std::convert::Infallible>().await
        };
        let mut reply = tokio::select! {
            reply = read_reply(&mut self.reader) => reply?,
            never = close_on_signal => match never {},
        };
        if reply.id != id {
            return Err(ConnectionError::Failed(format!(
                "agent: reply {} to call {id}",
                reply.id
            )));
        }
        // The agent sends `stdout` without `stdout_lines` (and `stderr` likewise): they are
        // split here, as Ansible's controller splits them, so a command's output travels once.
        settle_modules::add_output_lines(&mut reply.outcome.values);
        Ok(reply.outcome)
    }
}

/// Closes the agent's input: it ends the commands it started, answers the call in hand and
/// exits.
async fn close_input(writer: &mut Writer) {
    let _ = writer.shutdown().await;
    // Some writers (a child's stdin) only close when dropped.
    *writer = Box::new(tokio::io::sink());
}

/// A reply longer than this is parsed while it is read (on a blocking thread), instead of being
/// held whole as a line and then parsed: a command's 10 MiB of output (and its `stdout_lines`)
/// would otherwise cost the controller the line and its parsed tree at once.
const PARSE_WHILE_READING: usize = 1 << 20;

/// Reads one reply line from the agent. Short replies are parsed from the line; a long one is
/// handed to the parser in pieces as they arrive, so the controller never holds its text whole.
async fn read_reply(reader: &mut BufReader<Reader>) -> Result<Reply, ConnectionError> {
    let mut head = Vec::new();
    loop {
        let buf = reader.fill_buf().await.map_err(io_lost)?;
        if buf.is_empty() {
            return Err(ConnectionError::Unreachable(
                "the connection to the host's agent was lost".into(),
            ));
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let reply = if head.is_empty() {
                parse_reply(&buf[..end])
            } else {
                head.extend_from_slice(&buf[..end]);
                parse_reply(&head)
            };
            reader.consume(end + 1);
            return reply;
        }
        head.extend_from_slice(buf);
        let n = buf.len();
        reader.consume(n);
        if head.len() > PARSE_WHILE_READING {
            return stream_reply(reader, head).await;
        }
    }
}

fn parse_reply(line: &[u8]) -> Result<Reply, ConnectionError> {
    serde_json::from_slice(line.trim_ascii()).map_err(|e| unreadable_reply(e, line))
}

/// Not a reply: most likely the agent's last words (a panic's message).
fn unreadable_reply(e: serde_json::Error, line: &[u8]) -> ConnectionError {
    let head = &line[..line.len().min(1600)];
    let text: String = String::from_utf8_lossy(head)
        .trim()
        .chars()
        .take(400)
        .collect();
    ConnectionError::Failed(format!("agent: unreadable reply ({e}): {text}"))
}

/// Parses the rest of a long reply line on a blocking thread while it is read: the pieces go
/// through a short queue, so at most a few of them are in memory besides the parsed reply.
async fn stream_reply(
    reader: &mut BufReader<Reader>,
    head: Vec<u8>,
) -> Result<Reply, ConnectionError> {
    let start = head[..head.len().min(1600)].to_vec();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let parser = tokio::task::spawn_blocking(move || {
        let pieces = Pieces {
            rx,
            piece: head,
            at: 0,
        };
        serde_json::from_reader::<_, Reply>(std::io::BufReader::with_capacity(64 * 1024, pieces))
    });
    let mut parser_gone = false;
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(e) => {
                parser.abort();
                return Err(io_lost(e));
            }
        };
        if buf.is_empty() {
            parser.abort();
            return Err(ConnectionError::Unreachable(
                "the connection to the host's agent was lost".into(),
            ));
        }
        let (piece, used, last) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (buf[..end].to_vec(), end + 1, true),
            None => (buf.to_vec(), buf.len(), false),
        };
        reader.consume(used);
        // A parser that stopped early (on an error) still has the line read to its end, so
        // that the next reply starts where it should.
        if !parser_gone && tx.send(piece).await.is_err() {
            parser_gone = true;
        }
        if last {
            break;
        }
    }
    drop(tx);
    match parser.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(unreadable_reply(e, &start)),
        Err(e) => Err(ConnectionError::Failed(format!(
            "agent: reading a reply failed: {e}"
        ))),
    }
}

/// The pieces of a reply line as one `Read`: ends when the reader has sent the line's last.
struct Pieces {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
}

impl std::io::Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.piece.len() {
            match self.rx.blocking_recv() {
                Some(piece) => {
                    self.piece = piece;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.piece.len() - self.at);
        out[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn io_lost(e: std::io::Error) -> ConnectionError {
    ConnectionError::Unreachable(format!("the connection to the host's agent was lost: {e}"))
}

/// Ansible's words for su's password prompt (its `SU_PROMPT_LOCALIZATIONS`), each followed by
/// a colon (or a fullwidth one) in su's prompt.
const SU_PROMPTS: &[&str] = &[
    "Password",
    "암호",
    "パスワード",
    "Adgangskode",
    "Contraseña",
    "Contrasenya",
    "Hasło",
    "Heslo",
    "Jelszó",
    "Lösenord",
    "Mật khẩu",
    "Mot de passe",
    "Parola",
    "Parool",
    "Pasahitza",
    "Passord",
    "Passwort",
    "Salasana",
    "Sandi",
    "Senha",
    "Wachtwoord",
    "ססמה",
    "Лозинка",
    "Парола",
    "Пароль",
    "गुप्तशब्द",
    "शब्दकूट",
    "సంకేతపదము",
    "හස්පදය",
    "密码",
    "密碼",
    "口令",
];

/// Whether output so far (a line, or the start of one) ends with the become program asking for
/// its password: sudo with our own prompt, su with a localized `Password:`.
pub(crate) fn is_password_prompt(b: &Become, text: &str) -> bool {
    match b.method {
        BecomeMethod::Sudo => text.trim().starts_with(BECOME_PROMPT),
        BecomeMethod::Su => {
            let text = text.trim_end();
            let Some(before) = text
                .strip_suffix(':')
                .or_else(|| text.strip_suffix('：'))
                .map(|t| t.trim_end().to_lowercase())
            else {
                return false;
            };
            let custom: Vec<&str> = b.prompts.iter().map(String::as_str).collect();
            let words = if custom.is_empty() {
                SU_PROMPTS
            } else {
                &custom[..]
            };
            words.iter().any(|w| before.ends_with(&w.to_lowercase()))
        }
    }
}

/// Ansible's words when the become program stops or stalls before the agent says hello.
fn become_failure(reason: &str, waiting_for_prompt: bool, seen: &str) -> String {
    let mut message = format!("{reason} waiting for become success");
    if waiting_for_prompt {
        message.push_str(" or become password prompt");
    }
    message.push('.');
    if !seen.trim().is_empty() {
        message.push_str("\n>>> Standard Output\n");
        message.push_str(seen.trim_end());
    }
    message
}

fn missing_password(b: &Become) -> String {
    format!(
        "Missing {} password: become to {:?} needs a password: give -K or ansible_become_password",
        b.method.name(),
        b.effective_user()
    )
}

/// Why sudo or su exited without starting the agent, from what they said.
fn ended_before_hello(b: &Become, seen: &str, sent_password: bool) -> String {
    let detail = seen.trim();
    if detail.contains("a password is required") {
        missing_password(b)
    } else if sent_password
        && (detail.contains("Authentication failure") || detail.contains("incorrect password"))
    {
        format!(
            "Incorrect {} password: the password was not accepted for become to {:?}\n>>> Standard Output\n{detail}",
            b.method.name(),
            b.effective_user()
        )
    } else {
        become_failure("Premature end of stream", false, seen)
    }
}

/// What to do when the host's dynamic loader refused the agent for its glibc (``version
/// `GLIBC_2.34' not found``): the host's glibc is older than the one the agent was linked with.
fn too_new_for_host(seen: &str) -> String {
    // The loader names each missing version on a line of its own: the newest is what counts.
    let newest = seen
        .lines()
        .filter(|line| line.contains("not found"))
        .filter_map(|line| line.split("`GLIBC_").nth(1)?.split('\'').next())
        .max_by_key(|version| {
            version
                .split('.')
                .map(|n| n.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        });
    let Some(version) = newest else {
        return String::new();
    };
    format!(
        "\nThe agent needs glibc {version} or newer, and this host's is older: use a settle built \
         by packaging/build-agent (it runs on glibc 2.17 and newer), or set SETTLE_AGENT_BINARY \
         to such a build."
    )
}

/// Reads a line, or stops early at a password prompt (which has no newline until answered).
async fn read_line_or_prompt(
    reader: &mut BufReader<Reader>,
    line: &mut Vec<u8>,
    become_: Option<&Become>,
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
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return Ok(total);
        }
        // A prompt ends in `]` (sudo, ours) or a colon (su: `:`, or the fullwidth `：`).
        if let Some(b) = become_
            && (line.ends_with(b"]") || line.ends_with(b":") || line.ends_with("：".as_bytes()))
            && is_password_prompt(b, &String::from_utf8_lossy(line))
        {
            return Ok(total);
        }
        // A greeting is a full JSON line: read the rest at once.
        if line.trim_ascii_start() == b"{" {
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest).await?;
            line.extend_from_slice(&rest);
            return Ok(total + rest.len());
        }
    }
}

/// The controller's side of the agent protocol on any bytes, for the fuzz target: the greeting
/// is read as `start` reads it (with and without a become password prompt to answer), then
/// every reply line as `call` reads them, short and long. Any input ends in messages or errors,
/// never a panic or a hang.
#[doc(hidden)]
pub fn fuzz_agent_output(bytes: &[u8]) {
    // Timers: `start` waits for a become prompt with a deadline.
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let sudo = Become {
        password: Some("pw".into()),
        ..Become::sudo("root")
    };
    let su = Become {
        method: super::BecomeMethod::Su,
        ..sudo.clone()
    };
    runtime.block_on(async {
        for become_ in [None, Some(&sudo), Some(&su)] {
            let reader = Box::new(std::io::Cursor::new(bytes.to_vec())) as Reader;
            let writer = Box::new(tokio::io::sink()) as Writer;
            let mut pid = None;
            let started = AgentPipe::start(writer, reader, Box::new(()), become_, &mut pid);
            if let Ok(Started::Running(mut pipe)) = started.await {
                // Each reply read consumes input; the end of it is a lost connection.
                for _ in 0..=bytes.len() {
                    if let Err(ConnectionError::Unreachable(_)) = read_reply(&mut pipe.reader).await
                    {
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents_with_folder(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Agents) {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("settle");
        std::fs::write(&own, b"own").unwrap();
        let folder = dir.path().join("agents");
        std::fs::create_dir(&folder).unwrap();
        for (name, bytes) in files {
            std::fs::write(folder.join(name), bytes).unwrap();
        }
        let default: &'static AgentBinary =
            Box::leak(Box::new(AgentBinary::load(own, "x86_64".into()).unwrap()));
        let agents = Agents::load_folder(default, Some(folder)).unwrap();
        (dir, agents)
    }

    #[test]
    fn without_an_agents_folder_the_host_gets_settle_itself() {
        let (_dir, agents) = agents_with_folder(&[]);
        let command = start_command(&agents, None);
        assert!(
            command.starts_with(&format!("H={}; P=", agents.default.hash)),
            "{command}"
        );
        assert!(!command.contains("case"), "{command}");
        assert_eq!(
            agents.for_arch("x86_64").map(|a| &a.hash),
            Some(&agents.default.hash)
        );
        assert!(agents.for_arch("aarch64").is_none());
        assert_eq!(agents.arches(), "x86_64");
    }

    #[test]
    fn an_agents_folder_gives_each_architecture_its_agent_by_uname() {
        let (_dir, agents) = agents_with_folder(&[
            ("settle-agent-aarch64", b"arm"),
            ("settle-agent-x86_64", b"static"),
            // Not agents: another name, and an architecture a shell `case` would misread.
            ("README", b"text"),
            ("settle-agent-x86*", b"odd"),
        ]);
        let arches: Vec<&str> = agents.by_arch.iter().map(|a| a.arch.as_str()).collect();
        assert_eq!(arches, ["aarch64", "x86_64"]);
        let arm = &agents.by_arch[0];
        let static_x86 = &agents.by_arch[1];
        // The folder's x86_64 agent goes before settle's own (it runs on musl hosts too).
        assert_eq!(
            agents.for_arch("x86_64").map(|a| &a.hash),
            Some(&static_x86.hash)
        );
        assert_eq!(agents.for_arch("aarch64").map(|a| &a.hash), Some(&arm.hash));
        assert!(agents.for_arch("riscv64").is_none());
        assert_eq!(agents.arches(), "aarch64, x86_64");
        let command = start_command(&agents, None);
        assert!(
            command.starts_with(&format!(
                "case \"$(uname -m)\" in 'aarch64') H={};; 'x86_64') H={};; *) H={};; esac; P=",
                arm.hash, static_x86.hash, agents.default.hash
            )),
            "{command}"
        );
    }

    #[test]
    fn the_start_command_picks_the_agent_in_a_real_shell() {
        let (_dir, agents) = agents_with_folder(&[("settle-agent-aarch64", b"arm")]);
        let own = std::env::consts::ARCH;
        let command = format!("{}; echo \"$H\"", agents.choose_hash());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .unwrap();
        let chosen = String::from_utf8(out.stdout).unwrap();
        let expected = agents
            .for_arch(own)
            .map_or(&agents.default.hash, |a| &a.hash);
        assert_eq!(chosen.trim(), expected);
    }

    fn reply_line(id: u64, stdout: &str) -> String {
        let mut outcome = Outcome::default();
        outcome.values.insert("stdout".into(), stdout.into());
        let mut line = serde_json::to_string(&Reply { id, outcome }).unwrap();
        line.push('\n');
        line
    }

    fn reader_of(text: String) -> BufReader<Reader> {
        BufReader::new(Box::new(std::io::Cursor::new(text.into_bytes())) as Reader)
    }

    #[tokio::test]
    async fn a_long_reply_is_parsed_while_read_and_the_next_one_follows() {
        let long = "x".repeat(3 * PARSE_WHILE_READING + 17);
        let mut reader = reader_of(reply_line(1, &long) + &reply_line(2, "short"));
        let first = read_reply(&mut reader).await.unwrap();
        assert_eq!(first.id, 1);
        assert_eq!(first.outcome.values["stdout"], long.as_str());
        let second = read_reply(&mut reader).await.unwrap();
        assert_eq!(
            (second.id, &second.outcome.values["stdout"]),
            (2, &"short".into())
        );
        assert!(matches!(
            read_reply(&mut reader).await,
            Err(ConnectionError::Unreachable(_))
        ));
    }

    #[tokio::test]
    async fn a_long_line_that_is_no_reply_is_an_error_and_the_next_reply_still_reads() {
        let junk = format!("panicked at {}\n", "y".repeat(2 * PARSE_WHILE_READING));
        let mut reader = reader_of(junk + &reply_line(5, "ok"));
        match read_reply(&mut reader).await {
            Err(ConnectionError::Failed(msg)) => {
                assert!(msg.starts_with("agent: unreadable reply"), "{msg}");
                assert!(msg.contains("panicked at yyy") && msg.len() < 600, "{msg}");
            }
            other => panic!("{:?}", other.map(|r| r.id)),
        }
        assert_eq!(read_reply(&mut reader).await.unwrap().id, 5);
    }

    #[tokio::test]
    async fn a_long_reply_cut_short_is_a_lost_connection() {
        let line = reply_line(1, &"z".repeat(2 * PARSE_WHILE_READING));
        let mut reader = reader_of(line[..line.len() - 10].to_string());
        assert!(matches!(
            read_reply(&mut reader).await,
            Err(ConnectionError::Unreachable(_))
        ));
    }

    fn become_(method: BecomeMethod, user: &str) -> Become {
        Become {
            method,
            ..Become::sudo(user)
        }
    }

    #[test]
    fn sudo_runs_with_ansible_s_default_flags_and_our_prompt_only_with_a_password() {
        let b = become_(BecomeMethod::Sudo, "alice");
        assert_eq!(
            become_exec(&b),
            "exec sudo -H -S -n -u 'alice' \"$P\" __agent 2>&1"
        );
        let b = Become {
            password: Some("secret".into()),
            flags: Some("-Hn --non-interactive -E".into()),
            ..b
        };
        assert_eq!(
            become_exec(&b),
            format!("exec sudo -H -E -p '{BECOME_PROMPT}\n' -u 'alice' \"$P\" __agent 2>&1")
        );
    }

    #[test]
    fn su_runs_the_agent_through_the_user_s_shell() {
        let b = Become {
            flags: Some("-s /bin/sh".into()),
            ..become_(BecomeMethod::Su, "bob")
        };
        assert_eq!(
            become_exec(&b),
            "exec su -s /bin/sh 'bob' -c \"exec $P __agent\" 2>&1"
        );
        let b = Become {
            exe: Some("/tmp/sushim.sh".into()),
            ..become_(BecomeMethod::Su, "")
        };
        assert_eq!(
            become_exec(&b),
            "exec /tmp/sushim.sh -c \"exec $P __agent\" 2>&1"
        );
    }

    #[test]
    fn an_agent_too_new_for_the_host_s_glibc_says_what_to_use() {
        let loader = "agent-ab: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.9' not found (required by agent-ab)\n\
                      agent-ab: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by agent-ab)\n\
                      agent-ab: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.33' not found (required by agent-ab)";
        let hint = too_new_for_host(loader);
        assert!(hint.contains("needs glibc 2.34 or newer"), "{hint}");
        assert!(hint.contains("packaging/build-agent"), "{hint}");
        assert_eq!(too_new_for_host("sudo: a password is required"), "");
    }

    #[test]
    fn sudo_chdir_goes_first() {
        let b = Become {
            chdir: Some("/nonexistent".into()),
            ..become_(BecomeMethod::Sudo, "")
        };
        assert_eq!(
            become_exec(&b),
            "cd '/nonexistent' 2>&1 && exec sudo -H -S -n \"$P\" __agent 2>&1"
        );
    }

    #[test]
    fn su_s_prompt_is_found_in_any_of_ansible_s_languages() {
        let b = become_(BecomeMethod::Su, "bob");
        assert!(is_password_prompt(&b, "Password:"));
        assert!(is_password_prompt(&b, "Пароль: "));
        assert!(is_password_prompt(&b, "bob's password："));
        assert!(!is_password_prompt(&b, "{\"settle_agent\":"));
        let custom = Become {
            prompts: vec!["NOT_A_VALID_PROMPT".into()],
            ..b
        };
        assert!(!is_password_prompt(&custom, "Password:"));
        assert!(is_password_prompt(&custom, "not_a_valid_prompt :"));
        let sudo = become_(BecomeMethod::Sudo, "bob");
        assert!(is_password_prompt(&sudo, BECOME_PROMPT));
        assert!(!is_password_prompt(&sudo, "Password:"));
    }
}
