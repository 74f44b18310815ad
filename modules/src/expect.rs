//! `expect`: run a command under a pseudo-terminal and answer its prompts. Not a resource:
//! like `command`, it reports changed whenever it runs, unless `creates`/`removes` say it need
//! not. Ansible's module does not support check mode, so there the task is skipped.
//!
//! The conversation itself ([`converse`]) is shared with `user`, which answers ssh-keygen's
//! passphrase prompts the same way (a passphrase never goes on a command line).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::boolean;
use crate::pyre::{Flags, Pattern};
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "expect",
    args: &[
        "command",
        "chdir",
        "creates",
        "removes",
        "responses",
        "timeout",
        "echo",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: String,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    responses: Map<String, Value>,
    #[serde(default = "thirty")]
    timeout: Value,
    #[serde(default, deserialize_with = "boolean")]
    echo: bool,
}

fn thirty() -> Value {
    30.into()
}

/// What to say when a prompt matches: the same line every time, or one line per match.
pub(crate) enum Answer {
    Always(String),
    InTurn(std::vec::IntoIter<String>),
}

/// One prompt (a Python pattern) and its answer.
pub(crate) struct Prompt {
    pub question: String,
    pub pattern: Pattern,
    pub answer: Answer,
}

/// How a conversation ended.
pub(crate) struct Conversation {
    /// Everything the command wrote to its terminal.
    pub output: String,
    /// Its exit code; `None` when it was killed (by a signal, or because it timed out).
    pub rc: Option<i32>,
    /// A prompt matched once more than it had answers: its question and what led to it.
    pub out_of_answers: Option<(String, String)>,
    /// The first byte of the output that is not UTF-8, and how many characters came before it.
    pub first_invalid: Option<(u8, usize)>,
    /// The task's `timeout:` (seconds) ended the command.
    pub hit_limit: Option<u64>,
}

/// Runs `argv` with a pseudo-terminal as its controlling terminal, stdin, stdout and stderr,
/// answering each prompt as it appears. As pexpect's `run`: prompts are looked for in the
/// output not yet matched, the earliest match wins; `timeout` seconds without a match end the
/// command; `limit` (the task's `timeout:`) ends it in any case.
pub(crate) fn converse(
    argv: &[String],
    chdir: Option<&Path>,
    env: &[(String, String)],
    prompts: &mut [Prompt],
    echo: bool,
    timeout: Option<u64>,
    limit: Option<u64>,
) -> std::io::Result<Conversation> {
    let (master, slave) = open_pty(echo)?;
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    if let Some(dir) = chdir {
        command.current_dir(dir);
    }
    // SAFETY: between fork and exec only async-signal-safe calls: setsid(2) and ioctl(2) to
    // make the terminal (already the child's stdin) its controlling one.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // Our copies of the terminal's end went to the child; only it holds them now, so reading
    // the master ends (EIO) when the command and whatever it started have closed them.
    drop(command);
    let group = child.id() as libc::pid_t;
    let _running = crate::children::track(group);
    let mut writer = master.try_clone()?;
    let (chunks, arrived) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = master;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let started = Instant::now();
    let limit_at = limit
        .filter(|l| *l > 0)
        .map(|l| started + crate::clock::whole_seconds(l));
    let mut waiting_since = Instant::now();
    let mut output = String::new();
    // Bytes of a character cut in two between reads.
    let mut pending: Vec<u8> = Vec::new();
    // Where the output not matched yet begins.
    let mut unmatched = 0;
    let mut killed = false;
    let mut out_of_answers = None;
    let mut first_invalid = None;
    let mut hit_limit = None;
    'talk: loop {
        let prompt_at = timeout.map(|t| waiting_since + crate::clock::whole_seconds(t));
        let deadline = match (prompt_at, limit_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match arrived.recv_timeout(wait) {
            Ok(bytes) => {
                pending.extend_from_slice(&bytes);
                decode(&mut pending, &mut output, &mut first_invalid);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    if limit_at.is_some_and(|at| Instant::now() >= at) {
                        hit_limit = limit;
                    }
                    killed = true;
                    break;
                }
                continue;
            }
        }
        // Answer every prompt the new output holds, earliest first.
        loop {
            let rest = &output[unmatched..];
            let mut first: Option<(usize, usize, usize)> = None;
            for (i, prompt) in prompts.iter().enumerate() {
                if let Ok(Some(caps)) = prompt.pattern.captures(rest)
                    && let Some(span) = caps.span(0)
                    && first.is_none_or(|(start, ..)| span.start < start)
                {
                    first = Some((span.start, span.end, i));
                }
            }
            let Some((_, end, i)) = first else { break };
            let said = rest[..end].to_string();
            unmatched += end;
            let prompt = &mut prompts[i];
            let line = match &mut prompt.answer {
                Answer::Always(line) => line.clone(),
                Answer::InTurn(lines) => match lines.next() {
                    Some(line) => line,
                    None => {
                        out_of_answers = Some((prompt.question.clone(), said));
                        killed = true;
                        break 'talk;
                    }
                },
            };
            let mut line = line.trim_end_matches('\n').to_string();
            line.push('\n');
            // A command that has stopped reading is not an error here: its output tells.
            let _ = writer.write_all(line.as_bytes());
            waiting_since = Instant::now();
        }
    }
    if killed {
        // SAFETY: killpg only sends a signal to the session the command leads.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
    drop(writer);
    let status = child.wait()?;
    if let Some(&byte) = pending.first() {
        first_invalid.get_or_insert((byte, output.chars().count()));
        output.push_str(&String::from_utf8_lossy(&pending));
    }
    Ok(Conversation {
        output,
        rc: if killed { None } else { status.code() },
        out_of_answers,
        first_invalid,
        hit_limit,
    })
}

/// Moves the complete characters of `pending` onto `out` (invalid bytes as U+FFFD, the first
/// of them noted in `invalid`), keeping a character cut short for the next read.
fn decode(pending: &mut Vec<u8>, out: &mut String, invalid: &mut Option<(u8, usize)>) {
    loop {
        match std::str::from_utf8(pending) {
            Ok(text) => {
                out.push_str(text);
                pending.clear();
                return;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                // The prefix was just checked.
                out.push_str(&String::from_utf8_lossy(&pending[..valid]));
                match e.error_len() {
                    Some(bad) => {
                        invalid.get_or_insert((pending[valid], out.chars().count()));
                        out.push('\u{FFFD}');
                        pending.drain(..valid + bad);
                    }
                    None => {
                        pending.drain(..valid);
                        return;
                    }
                }
            }
        }
    }
}

/// A new pseudo-terminal: its master end, and the terminal end (24 rows of 80 columns, as
/// pexpect opens them), echoing input only when asked.
fn open_pty(echo: bool) -> std::io::Result<(File, File)> {
    let fail = std::io::Error::last_os_error;
    // SAFETY: plain libc calls on a descriptor we own; each result is checked, and the
    // descriptors are owned by `File`s from the moment they exist.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(fail());
        }
        let master = File::from_raw_fd(fd);
        if libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            return Err(fail());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) != 0 {
            return Err(fail());
        }
        let name = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&name)?;
        let sfd = slave.as_raw_fd();
        let mut attributes: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(sfd, &mut attributes) != 0 {
            return Err(fail());
        }
        if !echo {
            attributes.c_lflag &= !libc::ECHO;
        }
        if libc::tcsetattr(sfd, libc::TCSANOW, &attributes) != 0 {
            return Err(fail());
        }
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        libc::ioctl(sfd, libc::TIOCSWINSZ, &size);
        Ok((master, slave))
    }
}

/// An answer as Ansible's module takes it: a string, or a list answered in turn.
fn answer_of(value: &Value) -> Answer {
    // Ansible converts each answer with `to_bytes`: Python's `str()` of it.
    let text = |v: &Value| match v {
        Value::Null => "None".into(),
        other => crate::args::python_str(other),
    };
    match value {
        Value::Array(items) => {
            Answer::InTurn(items.iter().map(text).collect::<Vec<_>>().into_iter())
        }
        other => Answer::Always(text(other)),
    }
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("expect", &request.args)?;
    if request.check_mode {
        return Ok(Outcome {
            skipped: true,
            msg: Some("remote module (ansible.legacy.expect) does not support check mode".into()),
            ..Outcome::default()
        });
    }
    let timeout = match &args.timeout {
        Value::Null => None,
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => Some(s.trim().parse::<u64>().map_err(|_| {
            ModuleError::Args(
                "argument 'timeout' is of type <class 'str'> and we were unable to convert to \
                 int: <class 'str'> cannot be converted to an int"
                    .into(),
            )
        })?),
        other => {
            return Err(ModuleError::Args(format!(
                "argument 'timeout' is of type {} and we were unable to convert to int",
                crate::args::python_type(other)
            )));
        }
    };
    let mut prompts = Vec::new();
    for (question, answer) in &args.responses {
        let pattern = Pattern::compile(question, Flags::default()).map_err(|e| {
            ModuleError::Args(format!("expect: responses: the pattern {question:?}: {e}"))
        })?;
        prompts.push(Prompt {
            question: question.clone(),
            pattern,
            answer: answer_of(answer),
        });
    }
    let mut values = Map::new();
    values.insert("cmd".into(), args.command.clone().into());
    if args.command.trim().is_empty() {
        let mut outcome = Outcome::failed("no command given");
        values.insert("rc".into(), 256.into());
        outcome.values = values;
        return Ok(outcome);
    }
    let chdir = args.chdir.as_deref().map(Path::new);
    if let Some(dir) = chdir
        && !dir.is_dir()
    {
        return Err(ModuleError::Failed(format!(
            "expect: chdir {}: no such directory",
            dir.display()
        )));
    }
    let resolve = |p: &str| match chdir {
        Some(dir) => dir.join(p),
        None => Path::new(p).to_path_buf(),
    };
    let not_run = |mut values: Map<String, Value>, stdout: String| {
        values.insert("stdout".into(), stdout.clone().into());
        values.insert("stdout_lines".into(), vec![stdout].into());
        values.insert("rc".into(), 0.into());
        Ok(Outcome {
            values,
            ..Outcome::default()
        })
    };
    if let Some(creates) = &args.creates
        && resolve(creates).exists()
    {
        return not_run(values, format!("skipped, since {creates} exists"));
    }
    if let Some(removes) = &args.removes
        && !resolve(removes).exists()
    {
        return not_run(values, format!("skipped, since {removes} does not exist"));
    }
    let argv = shell_words::split(&args.command)
        .map_err(|e| ModuleError::Args(format!("expect: command: {e}")))?;
    let env: Vec<(String, String)> = request
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let start = Instant::now();
    let started_at = crate::command::now_string();
    let talk = converse(
        &argv,
        chdir,
        &env,
        &mut prompts,
        args.echo,
        timeout,
        request.timeout,
    );
    let talk = match talk {
        Ok(talk) => talk,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModuleError::Failed(format!(
                "The command was not found or was not executable: {}.",
                argv[0]
            )));
        }
        Err(e) => return Err(ModuleError::io(format!("run {}", argv[0]), e)),
    };
    if let Some(seconds) = talk.hit_limit {
        // As `command` words the task's own timeout.
        return Ok(crate::command::timed_out(seconds, values));
    }
    if let Some((question, said)) = &talk.out_of_answers {
        return Err(ModuleError::Failed(format!(
            "No remaining responses for '{question}', output was '{said}'"
        )));
    }
    // Ansible's module sends such output on, and its controller refuses it.
    if let Some((byte, position)) = talk.first_invalid {
        return Ok(Outcome::failed(format!(
            "Task failed: Refusing to deserialize an invalid UTF8 string value: 'utf-8' codec \
             can't encode character '\\udc{byte:02x}' in position {position}: surrogates not \
             allowed"
        )));
    }
    let stdout = talk.output.trim_end_matches(['\r', '\n']).to_string();
    values.insert(
        "stdout_lines".into(),
        stdout.lines().collect::<Vec<_>>().into(),
    );
    values.insert("stdout".into(), stdout.into());
    values.insert("rc".into(), talk.rc.map_or(Value::Null, Value::from));
    values.insert("start".into(), started_at.into());
    values.insert("end".into(), crate::command::now_string().into());
    values.insert(
        "delta".into(),
        crate::command::delta_text(start.elapsed()).into(),
    );
    let msg = match talk.rc {
        None => Some("command exceeded timeout"),
        Some(0) => None,
        Some(_) => Some("non-zero return code"),
    };
    Ok(Outcome {
        changed: true,
        failed: msg.is_some(),
        msg: msg.map(String::from),
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: Value) -> Request {
        Request::new("expect", args.as_object().unwrap().clone())
    }

    #[test]
    fn answers_two_prompts_in_turn_and_reports_changed() {
        let script = "read -p 'Name? ' a; read -p 'Colour? ' b; echo \"$a likes $b\"";
        let outcome = run(&request(serde_json::json!({
            "command": format!("sh -c {}", shell_words::quote(script)),
            "responses": {"Name\\?": "Ann", "Colour\\?": ["blue"]},
        })));
        let outcome = outcome.unwrap();
        assert!(outcome.changed && !outcome.failed, "{outcome:?}");
        let stdout = outcome.values["stdout"].as_str().unwrap();
        assert!(stdout.ends_with("Ann likes blue"), "{stdout:?}");
        assert!(
            !stdout.contains("Ann\r\n"),
            "answers are not echoed: {stdout:?}"
        );
        assert_eq!(outcome.values["rc"], 0);
    }

    #[test]
    fn a_list_of_answers_runs_out() {
        let script = "read -p 'Again? ' a; read -p 'Again? ' b";
        let outcome = run(&request(serde_json::json!({
            "command": format!("sh -c {}", shell_words::quote(script)),
            "responses": {"Again": ["once"]},
        })));
        match outcome {
            Err(ModuleError::Failed(msg)) => {
                assert!(
                    msg.starts_with("No remaining responses for 'Again'"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn silence_past_the_timeout_ends_the_command() {
        let outcome = run(&request(serde_json::json!({
            "command": "sleep 30",
            "responses": {"never": "x"},
            "timeout": 1,
        })))
        .unwrap();
        assert!(outcome.failed);
        assert_eq!(outcome.msg.as_deref(), Some("command exceeded timeout"));
        assert_eq!(outcome.values["rc"], Value::Null);
    }

    #[test]
    fn output_that_is_not_utf8_is_refused_as_ansibles_controller_refuses_it() {
        let outcome = run(&request(serde_json::json!({
            "command": "printf 'premi\\350re'",
            "responses": {},
        })))
        .unwrap();
        assert!(outcome.failed);
        assert_eq!(
            outcome.msg.as_deref(),
            Some(
                "Task failed: Refusing to deserialize an invalid UTF8 string value: 'utf-8' \
                 codec can't encode character '\\udce8' in position 5: surrogates not allowed"
            )
        );
    }

    #[test]
    fn the_tasks_timeout_ends_the_command_as_it_ends_command() {
        let mut request = request(serde_json::json!({
            "command": "sleep 30",
            "responses": {"never": "x"},
            "timeout": null,
        }));
        request.timeout = Some(1);
        let outcome = run(&request).unwrap();
        assert!(outcome.failed);
        assert_eq!(outcome.msg.as_deref(), Some("Timed out after 1 second"));
        assert_eq!(outcome.values["timedout"]["period"], 1);
    }

    #[test]
    fn creates_skips_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(&request(serde_json::json!({
            "command": "false",
            "responses": {},
            "creates": dir.path(),
        })))
        .unwrap();
        assert!(!outcome.changed && !outcome.failed);
    }
}
