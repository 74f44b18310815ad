//! `command` and `shell`: run a program. Not a resource: whether it changes anything is unknown,
//! so it reports changed when it runs, unless `creates`/`removes` say it need not run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::boolean;
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static COMMAND_SPEC: ModuleSpec = ModuleSpec {
    name: "command",
    args: &[
        "_raw_params",
        "cmd",
        "argv",
        "chdir",
        "creates",
        "removes",
        "stdin",
        "stdin_add_newline",
        "strip_empty_ends",
        "expand_argument_vars",
        "executable",
    ],
    unsupported: &[],
    free_form: true,
};

pub(crate) static SHELL_SPEC: ModuleSpec = ModuleSpec {
    name: "shell",
    args: &[
        "_raw_params",
        "cmd",
        "chdir",
        "creates",
        "removes",
        "stdin",
        "stdin_add_newline",
        "strip_empty_ends",
        "executable",
        // Taken only to refuse it with Ansible's message: shell expands nothing.
        "expand_argument_vars",
    ],
    unsupported: &[],
    free_form: true,
};

/// `raw`: the free-form text through the host's shell (`executable`, else /bin/sh), nothing else.
pub(crate) static RAW_SPEC: ModuleSpec = ModuleSpec {
    name: "raw",
    args: &["_raw_params", "executable"],
    unsupported: &[],
    free_form: true,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "_raw_params")]
    raw: Option<String>,
    cmd: Option<String>,
    argv: Option<Vec<String>>,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    stdin: Option<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    stdin_add_newline: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    strip_empty_ends: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    expand_argument_vars: bool,
    executable: Option<String>,
}

pub(crate) fn run(request: &Request, shell: bool) -> Result<Outcome, ModuleError> {
    // Ansible's shell action refuses it with a plain message, as an action failure.
    if shell && request.args.contains_key("expand_argument_vars") {
        return Ok(Outcome::failed(format!(
            "Unsupported parameters for ({}) module: expand_argument_vars",
            request.module
        )));
    }
    let args: Args = parse_args(&request.module, &request.args)?;
    let text = match (&args.raw, &args.cmd) {
        (Some(_), Some(_)) => {
            return Err(ModuleError::Args(format!(
                "{}: give the command once: free form or cmd, not both",
                request.module
            )));
        }
        (Some(t), None) | (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    };
    if text.is_some() && args.argv.is_some() {
        return Err(ModuleError::Args(
            "command: parameters are mutually exclusive: cmd|argv".into(),
        ));
    }
    let mut values = Map::new();
    let mut warnings = Vec::new();
    if !shell && let Some(executable) = &args.executable {
        warnings.push(format!("As of Ansible 2.4, the parameter 'executable' is no longer supported with the 'command' module. Not using '{executable}'."));
    }
    if !warnings.is_empty() {
        values.insert("warnings".into(), warnings.into());
    }
    let argv: Vec<String> = if shell {
        let Some(text) = text.clone() else {
            return Err(ModuleError::Args(
                "one of the following is required: _raw_params, cmd, argv".into(),
            ));
        };
        values.insert("cmd".into(), text.clone().into());
        let executable = args.executable.clone().unwrap_or_else(|| "/bin/sh".into());
        vec![executable, "-c".into(), text]
    } else {
        let words = match (&args.argv, &text) {
            (Some(argv), _) => argv.clone(),
            (None, Some(t)) => {
                shell_words::split(t).map_err(|e| ModuleError::Args(format!("command: {e}")))?
            }
            (None, None) => {
                return Err(ModuleError::Args(
                    "one of the following is required: _raw_params, cmd, argv".into(),
                ));
            }
        };
        let words: Vec<String> = if args.expand_argument_vars {
            words
                .iter()
                .map(|w| expand(w, &request.environment))
                .collect()
        } else {
            words
        };
        if words.is_empty() {
            return Err(ModuleError::Args("command: no command given".into()));
        }
        values.insert("cmd".into(), words.clone().into());
        words
    };
    let chdir = args.chdir.as_deref().map(Path::new);
    let resolve = |p: &str| match chdir {
        Some(dir) if !p.starts_with('/') => dir.join(p).display().to_string(),
        _ => p.to_string(),
    };
    if let Some(dir) = chdir
        && !dir.is_dir()
    {
        let mut outcome = Outcome::failed("Unable to change directory before execution.");
        outcome.values = values;
        return Ok(outcome);
    }
    let shoulda = if request.check_mode { "Would" } else { "Did" };
    if let Some(creates) = &args.creates
        && glob_exists(&resolve(creates))
    {
        return Ok(not_run(
            values,
            format!("{shoulda} not run command since '{creates}' exists"),
            format!("skipped, since {creates} exists"),
        ));
    }
    if let Some(removes) = &args.removes
        && !glob_exists(&resolve(removes))
    {
        return Ok(not_run(
            values,
            format!("{shoulda} not run command since '{removes}' does not exist"),
            format!("skipped, since {removes} does not exist"),
        ));
    }
    if request.check_mode {
        // With creates/removes we know it would run; without them nothing can be known.
        let known = args.creates.is_some() || args.removes.is_some();
        values.insert("rc".into(), 0.into());
        return Ok(Outcome {
            changed: known,
            skipped: !known,
            msg: Some("Command would have run if not in check mode".into()),
            values,
            ..Outcome::default()
        });
    }
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(&request.environment)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if args.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    if let Some(dir) = chdir {
        command.current_dir(dir);
    }
    // A group of its own, so a timeout ends the command's children too (a shell's pipeline).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let start = Instant::now();
    let started_at = now_string();
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            // As Ansible's run_command reports a program it cannot start.
            let mut outcome = Outcome::failed("Error executing command.");
            values.insert("rc".into(), e.raw_os_error().unwrap_or(2).into());
            values.insert("cmd".into(), shell_words::join(&argv).into());
            for stream in ["stdout", "stderr"] {
                values.insert(stream.into(), "".into());
                values.insert(format!("{stream}_lines"), Vec::<String>::new().into());
            }
            outcome.values = values;
            return Ok(outcome);
        }
    };
    let stdin = args.stdin.as_ref().map(|input| {
        let mut data = input.clone();
        if args.stdin_add_newline {
            data.push('\n');
        }
        data
    });
    let output = match wait_for(child, stdin, request.timeout, OUTPUT_CAP) {
        Ok(output) => output,
        Err(Waited::TimedOut(seconds)) => return Ok(timed_out(seconds, values)),
        Err(Waited::Io(e)) => return Err(ModuleError::io(format!("run {}", argv[0]), e)),
    };
    let rc = output.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        -output.status.signal().unwrap_or(0)
    });
    // Output is text in place when it is UTF-8 (it nearly always is): no second copy of it.
    let clean = |bytes: Vec<u8>| {
        let mut text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if args.strip_empty_ends {
            let kept = text.trim_end_matches(['\n', '\r']).len();
            text.truncate(kept);
        }
        text
    };
    let (stdout, stderr) = (clean(output.stdout), clean(output.stderr));
    values.insert("rc".into(), rc.into());
    // No `stdout_lines`/`stderr_lines` here: as Ansible's controller does, they are split from
    // the text where the result is kept (`crate::run` in-process, the controller for a result
    // from a host's agent), so they are neither held twice on the host nor sent beside the text.
    values.insert("stdout".into(), stdout.into());
    values.insert("stderr".into(), stderr.into());
    let truncated = truncation_note(output.dropped, OUTPUT_CAP);
    if let Some(note) = &truncated {
        values.insert("warnings".into(), vec![note.clone()].into());
    }
    values.insert("start".into(), started_at.into());
    values.insert("end".into(), now_string().into());
    values.insert("delta".into(), delta_text(start.elapsed()).into());
    let failed = rc != 0;
    Ok(Outcome {
        changed: true,
        failed,
        msg: Some(match (failed, truncated) {
            (true, Some(note)) => format!("non-zero return code; {note}"),
            (true, None) => "non-zero return code".into(),
            (false, Some(note)) => note,
            (false, None) => String::new(),
        }),
        values,
        ..Outcome::default()
    })
}

/// `raw`: the text through `executable` (else /bin/sh) `-c`, output as it came (no trimming),
/// always changed, skipped in check mode; no environment (Ansible warns and ignores it).
pub(crate) fn run_raw(request: &Request) -> Result<Outcome, ModuleError> {
    let mut args = Map::new();
    for (key, value) in &request.args {
        match key.as_str() {
            "_raw_params" | "executable" => {
                args.insert(key.clone(), value.clone());
            }
            other => {
                return Err(ModuleError::Args(format!(
                    "raw: unsupported argument {other:?}; it takes free-form text and executable"
                )));
            }
        }
    }
    if request.check_mode {
        return Ok(Outcome {
            skipped: true,
            ..Outcome::default()
        });
    }
    args.insert("strip_empty_ends".into(), false.into());
    let mut shell = Request::new("shell", args);
    shell.timeout = request.timeout;
    let mut outcome = run(&shell, true)?;
    for key in ["cmd", "start", "end", "delta"] {
        outcome.values.remove(key);
    }
    if !outcome.failed {
        outcome.msg = None;
    }
    outcome.changed = true;
    Ok(outcome)
}

/// Why a command has no output to give.
pub(crate) enum Waited {
    TimedOut(u64),
    Io(std::io::Error),
}

/// What the threads watching a running command report.
enum Watched {
    /// More output arrived on stdout (0) or stderr (1).
    Output,
    /// One of the pipes reached its end.
    Closed,
    /// The command itself ended.
    Exited(std::io::Result<std::process::ExitStatus>),
}

/// How long output may stay silent, once the command has ended, before its pipes are left
/// behind: a program it started in the background may hold them open for ever (Ansible's
/// `run_command` stops reading the same way).
const QUIET_AFTER_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Feeds `stdin` and reads the output at the same time (a large input to a program that
/// answers as it reads would otherwise fill both pipes and hang), up to `timeout` seconds.
/// Once the command has ended, output still coming is read until the pipes close or stay quiet
/// for a second.
pub(crate) fn wait_for(
    mut child: std::process::Child,
    stdin: Option<String>,
    timeout: Option<u64>,
    cap: usize,
) -> Result<Captured, Waited> {
    let feeder = child.stdin.take().zip(stdin).map(|(mut pipe, data)| {
        std::thread::spawn(move || {
            // A program that stops reading early closes the pipe: not an error of ours.
            let _ = pipe.write_all(data.as_bytes());
        })
    });
    let group = child.id() as libc::pid_t;
    // An interrupt of the run (or a lost controller, on a host) ends the group.
    let _running = crate::children::track(group);
    let (events, watched) = std::sync::mpsc::channel();
    let stdout = read_in_background(child.stdout.take(), events.clone(), cap);
    let stderr = read_in_background(child.stderr.take(), events.clone(), cap);
    std::thread::spawn(move || {
        let _ = events.send(Watched::Exited(child.wait()));
    });
    let deadline = timeout
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + crate::clock::whole_seconds(t)));
    let mut status = None;
    let mut open_pipes = 2;
    while status.is_none() || open_pipes > 0 {
        let wait = match (&status, deadline) {
            (Some(_), _) => QUIET_AFTER_EXIT,
            (None, Some((_, at))) => at.saturating_duration_since(Instant::now()),
            (None, None) => std::time::Duration::from_secs(3600),
        };
        match watched.recv_timeout(wait) {
            Ok(Watched::Output) => {}
            Ok(Watched::Closed) => open_pipes -= 1,
            Ok(Watched::Exited(result)) => status = Some(result.map_err(Waited::Io)?),
            Err(_) if status.is_some() => break,
            Err(_) => match deadline {
                Some((seconds, at)) if Instant::now() >= at => {
                    // SAFETY: killpg only sends a signal to the group the child leads.
                    unsafe {
                        libc::killpg(group, libc::SIGKILL);
                    }
                    return Err(Waited::TimedOut(seconds));
                }
                _ => {}
            },
        }
    }
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let taken = |buffer: std::sync::Arc<std::sync::Mutex<Kept>>| {
        std::mem::take(&mut *buffer.lock().unwrap_or_else(|e| e.into_inner()))
    };
    match status {
        Some(status) => {
            let (mut stdout, mut stderr) = (taken(stdout), taken(stderr));
            if cap != usize::MAX {
                Kept::share(&mut stdout, &mut stderr, cap, OUTPUT_LINE_CAP);
            }
            Ok(Captured {
                status,
                stdout: stdout.bytes,
                stderr: stderr.bytes,
                dropped: [stdout.dropped, stderr.dropped],
            })
        }
        None => Err(Waited::Io(std::io::Error::other(
            "the command's waiter ended",
        ))),
    }
}

/// How much of a command's output is kept: 10 MiB, far more than a playbook reads from a
/// command, and a bound on what a command that prints without end costs the host and the
/// controller (the result travels and is kept there too). stdout and stderr share it: each may
/// have all of it, but when both are long each keeps half (see [`Kept::share`]), so a command
/// filling both streams costs what one filling one stream does. The rest is read and dropped,
/// so the command never blocks on a full pipe, and the result says so (see [`truncation_note`]).
pub(crate) const OUTPUT_CAP: usize = 10 << 20;

/// How many lines of output are kept, besides the bytes (shared by the streams as the bytes
/// are): every line is also an item of `stdout_lines` (or `stderr_lines`), which costs far more
/// than its bytes where it is held (the controller that keeps the result, or the process that
/// runs the module on the local connection), so that 10 MiB of one-letter lines would cost
/// hundreds of MB. 256 Ki lines are about 30 MB of `stdout_lines` at worst. Lines end where
/// Python's `str.splitlines()` ends them, as the controller splits them.
pub(crate) const OUTPUT_LINE_CAP: usize = 1 << 18;

/// A command's exit status and the output kept of it.
pub(crate) struct Captured {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes of stdout and of stderr read past the cap and dropped.
    pub dropped: [u64; 2],
}

/// The first bytes of a stream, up to a cap, and how many more came.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
    /// Line breaks kept so far.
    lines: usize,
}

/// Where the line breaks of `data` end (the index of each break's last byte), as Python's
/// `str.splitlines()` sees them in UTF-8: `\n`, `\r` (`\r\n` is one break), `\v`, `\f`,
/// `\x1c`-`\x1e`, U+0085, U+2028 and U+2029. `before` is the two bytes that came before `data`.
fn line_breaks(data: &[u8], before: [u8; 2]) -> impl Iterator<Item = usize> + '_ {
    (0..data.len()).filter(move |&i| {
        let back = |n: usize| {
            if i >= n {
                data[i - n]
            } else {
                before[2 - (n - i)]
            }
        };
        match data[i] {
            b'\n' => back(1) != b'\r',
            b'\r' | 0x0b | 0x0c | 0x1c..=0x1e => true,
            0x85 => back(1) == 0xc2,
            0xa8 | 0xa9 => back(1) == 0x80 && back(2) == 0xe2,
            _ => false,
        }
    })
}

impl Kept {
    fn add(&mut self, data: &[u8], cap: usize) {
        let line_cap = if cap == usize::MAX {
            usize::MAX
        } else {
            OUTPUT_LINE_CAP
        };
        self.add_up_to(data, cap, line_cap);
    }

    /// The two bytes kept last (for a break split between two reads).
    fn last_two(&self) -> [u8; 2] {
        match self.bytes.as_slice() {
            [.., a, b] => [*a, *b],
            [b] => [0, *b],
            [] => [0, 0],
        }
    }

    /// Keeps what fits in `cap` bytes and `line_cap` lines (a line ends at its break).
    fn add_up_to(&mut self, data: &[u8], cap: usize, line_cap: usize) {
        let mut room = cap.saturating_sub(self.bytes.len()).min(data.len());
        if self.lines >= line_cap {
            room = 0;
        }
        for at in line_breaks(&data[..room], self.last_two()) {
            self.lines += 1;
            if self.lines >= line_cap {
                room = at + 1;
                break;
            }
        }
        self.bytes.extend_from_slice(&data[..room]);
        self.dropped += (data.len() - room) as u64;
    }

    /// Cuts what is kept to its first `cap` bytes and `line_cap` lines.
    fn cut(&mut self, cap: usize, line_cap: usize) {
        let mut keep = self.bytes.len().min(cap);
        let mut lines = 0;
        for at in line_breaks(&self.bytes[..keep], [0, 0]) {
            lines += 1;
            if lines >= line_cap {
                keep = at + 1;
                break;
            }
        }
        self.dropped += (self.bytes.len() - keep) as u64;
        self.bytes.truncate(keep);
        self.bytes.shrink_to_fit();
        self.lines = lines.min(self.lines);
    }

    /// Shares `cap` bytes and `line_cap` lines between two streams, each kept to `cap` and
    /// `line_cap` on its own: a stream keeps what the other leaves, and at least half. Only
    /// what was kept is looked at, so the cut is the same however the reads interleaved.
    fn share(one: &mut Kept, other: &mut Kept, cap: usize, line_cap: usize) {
        let budget = |of: &Kept| {
            (
                (cap / 2).max(cap.saturating_sub(of.bytes.len())),
                (line_cap / 2).max(line_cap.saturating_sub(of.lines)),
            )
        };
        let (for_one, for_other) = (budget(other), budget(one));
        one.cut(for_one.0, for_one.1);
        other.cut(for_other.0, for_other.1);
    }
}

/// What a result says when output went past the cap, or nothing when none did.
pub(crate) fn truncation_note(dropped: [u64; 2], cap: usize) -> Option<String> {
    let parts: Vec<String> = ["stdout", "stderr"]
        .iter()
        .zip(dropped)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} (the last {n} bytes dropped)"))
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "output truncated: settle keeps the first {} MiB and {} lines of output (stdout and \
             stderr share them, each at least half); {}",
            cap >> 20,
            OUTPUT_LINE_CAP,
            parts.join(", ")
        )
    })
}

/// Reads a pipe on a thread of its own into a shared buffer (up to `cap` bytes, the rest read
/// and counted), saying when data comes and when the pipe closes. The thread outlives the call
/// if a background program keeps the pipe open.
fn read_in_background(
    pipe: Option<impl std::io::Read + Send + 'static>,
    events: std::sync::mpsc::Sender<Watched>,
    cap: usize,
) -> std::sync::Arc<std::sync::Mutex<Kept>> {
    let buffer = std::sync::Arc::new(std::sync::Mutex::new(Kept::default()));
    let Some(mut pipe) = pipe else {
        let _ = events.send(Watched::Closed);
        return buffer;
    };
    let shared = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    shared
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .add(&chunk[..n], cap);
                    let _ = events.send(Watched::Output);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = events.send(Watched::Closed);
    });
    buffer
}

fn not_run(mut values: Map<String, Value>, msg: String, stdout: String) -> Outcome {
    values.insert("rc".into(), 0.into());
    values.insert("stdout".into(), stdout.clone().into());
    values.insert("stdout_lines".into(), vec![stdout].into());
    values.insert("stderr".into(), "".into());
    values.insert("stderr_lines".into(), Vec::<String>::new().into());
    Outcome {
        changed: false,
        msg: Some(msg),
        values,
        ..Outcome::default()
    }
}

/// Whether a path, or any path matching a glob pattern, exists.
fn glob_exists(pattern: &str) -> bool {
    if !pattern.contains(['*', '?', '[']) {
        return Path::new(pattern).exists();
    }
    let (dir, name) = match pattern.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", pattern),
    };
    if dir.contains(['*', '?', '[']) {
        return false;
    }
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| wildcard(name, &e.file_name().to_string_lossy()))
        })
        .unwrap_or(false)
}

/// `*` and `?` matching, for `creates`/`removes` patterns.
fn wildcard(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

/// `~` and `$VAR`/`${VAR}` in a command word, as Ansible's command module expands them.
fn expand(word: &str, env: &std::collections::BTreeMap<String, String>) -> String {
    let lookup = |name: &str| env.get(name).cloned().or_else(|| std::env::var(name).ok());
    let mut out = String::new();
    let word = match word.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            out.push_str(&lookup("HOME").unwrap_or_else(|| "~".into()));
            rest
        }
        _ => word,
    };
    out.push_str(&crate::fsutil::expand_vars(word, lookup));
    out
}

pub(crate) fn now_string() -> String {
    // SAFETY: clock_gettime/localtime_r only write into the provided structs.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&ts.tv_sec, &mut tm);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            ts.tv_nsec / 1000
        )
    }
}

/// Python's `str(timedelta)`, as Ansible's `delta`: `0:00:01.234567`.
pub(crate) fn delta_text(delta: std::time::Duration) -> String {
    format!(
        "{}:{:02}:{:02}.{:06}",
        delta.as_secs() / 3600,
        delta.as_secs() / 60 % 60,
        delta.as_secs() % 60,
        delta.subsec_micros()
    )
}

/// A command the task's `timeout:` ended, in Ansible's words, with what it had said so far.
pub(crate) fn timed_out(seconds: u64, mut values: Map<String, Value>) -> Outcome {
    let mut outcome = Outcome::failed(format!(
        "Timed out after {seconds} second{}",
        if seconds == 1 { "" } else { "s" }
    ));
    values.insert("timedout".into(), serde_json::json!({"period": seconds}));
    outcome.values = values;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_counted_not_kept() {
        let mut kept = Kept::default();
        kept.add(b"abcd", 6);
        kept.add(b"efgh", 6);
        kept.add(b"ij", 6);
        assert_eq!(kept.bytes, b"abcdef");
        assert_eq!(kept.dropped, 4);
        assert_eq!(truncation_note([0, 0], 6), None);
        let note = truncation_note([0, 4], OUTPUT_CAP).unwrap();
        assert!(note.contains("first 10 MiB") && note.contains("stderr (the last 4 bytes"));
    }

    #[test]
    fn output_past_the_line_cap_is_counted_not_kept() {
        let mut kept = Kept::default();
        kept.add_up_to(b"a\nb", 100, 3);
        kept.add_up_to(b"\nc\nd\n", 100, 3);
        kept.add_up_to(b"e\n", 100, 3);
        assert_eq!(kept.bytes, b"a\nb\nc\n");
        assert_eq!(kept.dropped, 4);
    }

    #[test]
    fn a_command_printing_past_the_cap_ends_with_its_first_bytes_and_a_note() {
        let args = serde_json::json!({
            "_raw_params": format!("head -c {} /dev/zero | tr '\\0' x; echo done >&2", OUTPUT_CAP + 5000),
        });
        let out = crate::run(&Request::new("shell", args.as_object().unwrap().clone()));
        assert!(!out.failed, "{out:?}");
        // stderr's "done\n" takes its 5 bytes of the 10 MiB the streams share.
        assert_eq!(out.values["stdout"].as_str().unwrap().len(), OUTPUT_CAP - 5);
        assert_eq!(out.values["stderr"], "done");
        assert_eq!(out.values["stderr_lines"], serde_json::json!(["done"]));
        assert!(
            out.msg
                .unwrap()
                .contains("stdout (the last 5005 bytes dropped)")
        );
    }

    #[test]
    fn lines_break_where_python_breaks_them_also_across_reads() {
        let text = "a\nb\r\nc\rd\u{0b}e\u{85}f\u{2028}g\u{2029}h\u{1c}i";
        let breaks: Vec<usize> = line_breaks(text.as_bytes(), [0, 0]).collect();
        assert_eq!(breaks.len(), 8, "{breaks:?}");
        // A `\r\n` or a U+2028 split between two reads is still one break.
        let mut kept = Kept::default();
        for piece in [&b"x\r"[..], b"\ny\xe2\x80", b"\xa8z"] {
            kept.add_up_to(piece, 100, 100);
        }
        assert_eq!(kept.lines, 2);
        // Ten thousand lone `\r`s are ten thousand lines: the line cap holds for them too.
        let mut kept = Kept::default();
        kept.add_up_to(&[b'\r'; 10_000], 1 << 20, 100);
        assert_eq!((kept.bytes.len(), kept.dropped), (100, 9_900));
    }

    #[test]
    fn two_long_streams_share_the_cap_and_a_short_one_leaves_the_rest_to_the_other() {
        let stream = |bytes: &[u8]| {
            let mut kept = Kept::default();
            kept.add_up_to(bytes, 100, 10);
            kept
        };
        // Both long: half each, whichever read first.
        let (mut out, mut err) = (stream(&[b'o'; 300]), stream(&[b'e'; 300]));
        Kept::share(&mut out, &mut err, 100, 10);
        assert_eq!((out.bytes.len(), out.dropped), (50, 250));
        assert_eq!((err.bytes.len(), err.dropped), (50, 250));
        // One short: the other keeps the rest.
        let (mut out, mut err) = (stream(&[b'o'; 300]), stream(b"done\n"));
        Kept::share(&mut out, &mut err, 100, 10);
        assert_eq!((out.bytes.len(), err.bytes.len()), (95, 5));
        // Lines are shared the same way: 20 lines each, 5 kept each.
        let (mut out, mut err) = (stream(&[b'\n'; 20]), stream(&[b'\n'; 20]));
        Kept::share(&mut out, &mut err, 100, 10);
        assert_eq!((out.bytes.len(), err.bytes.len()), (5, 5));
        assert_eq!((out.dropped, err.dropped), (15, 15));
    }

    #[test]
    fn raw_keeps_output_and_fails_on_rc() {
        let args = serde_json::json!({"_raw_params": "echo hi; echo err >&2"});
        let out = run_raw(&Request::new(
            "raw",
            args.as_object().cloned().unwrap_or_default(),
        ))
        .unwrap();
        assert!(out.changed && !out.failed);
        assert_eq!(out.values["stdout"], "hi\n");
        assert_eq!(out.values["stderr"], "err\n");
        let args = serde_json::json!({"_raw_params": "exit 3"});
        let out = run_raw(&Request::new(
            "raw",
            args.as_object().cloned().unwrap_or_default(),
        ))
        .unwrap();
        assert!(out.failed && out.values["rc"] == 3);
        assert_eq!(out.msg.as_deref(), Some("non-zero return code"));
    }

    #[test]
    fn shell_refuses_expand_argument_vars_and_creates_may_be_a_boolean() {
        let args = serde_json::json!({"_raw_params": "echo hi", "expand_argument_vars": false});
        let out = run(
            &Request::new("shell", args.as_object().cloned().unwrap_or_default()),
            true,
        )
        .unwrap();
        assert_eq!(
            out.msg.as_deref(),
            Some("Unsupported parameters for (shell) module: expand_argument_vars")
        );
        // `creates: true` is the path "True", as Ansible converts it.
        let args = serde_json::json!({"_raw_params": "echo hi", "creates": true});
        let mut request = Request::new("command", args.as_object().cloned().unwrap_or_default());
        request.check_mode = true;
        let out = run(&request, false).unwrap();
        assert!(out.changed);
    }

    #[test]
    fn a_program_left_in_the_background_does_not_hold_the_task() {
        let args = serde_json::json!({"_raw_params": "echo started; sleep 30 &"});
        let start = Instant::now();
        let out = run(
            &Request::new("shell", args.as_object().cloned().unwrap_or_default()),
            true,
        )
        .unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(out.values["stdout"], "started");
    }

    #[test]
    fn a_missing_program_fails_with_empty_output() {
        let args = serde_json::json!({"_raw_params": "commandthatdoesnotexist --x"});
        let out = run(
            &Request::new("command", args.as_object().cloned().unwrap_or_default()),
            false,
        )
        .unwrap();
        assert!(out.failed);
        assert_eq!(out.msg.as_deref(), Some("Error executing command."));
        assert_eq!(out.values["rc"], 2);
        assert_eq!(out.values["stdout"], "");
        assert_eq!(out.values["cmd"], "commandthatdoesnotexist --x");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "a.conf"));
        assert!(!wildcard("*.conf", "a.conf.bak"));
        assert!(wildcard("a?c*", "abcdef"));
    }

    #[test]
    fn expands_home_and_vars() {
        let mut env = std::collections::BTreeMap::new();
        env.insert("HOME".to_string(), "/home/x".to_string());
        env.insert("N".to_string(), "v".to_string());
        assert_eq!(expand("~/a", &env), "/home/x/a");
        assert_eq!(expand("$N-${N}-$NOPE_NOT_SET", &env), "v-v-$NOPE_NOT_SET");
    }
}
