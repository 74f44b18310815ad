//! `raw` under become on the controller, run as Ansible's local connection runs it: the command
//! is wrapped by the become program (`sudo … /bin/sh -c 'echo BECOME-SUCCESS-…; CMD'`), the
//! password is given when the become program's prompt shows on either stream, and the command's
//! output starts after the success marker. What the become program says before it (its prompt,
//! noise from a wrapper) is left out unless `ansible_local_become_strip_preamble` is false.
//!
//! Module calls keep going through settle's agent started under become (`agent.rs`); `raw` is
//! the one task whose output is the become program's own, so it is run this way, one process per
//! task, with Ansible's errors: `Timed out …` (unreachable), `Premature end of stream …`,
//! `Duplicate become password prompt encountered …`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use settle_modules::{Outcome, Request};

use super::agent::{interactive_sudo_flags, is_password_prompt};
use super::{Become, BecomeMethod, ConnectionError};

/// A command wrapped by the become program, and what to watch for while it starts.
#[derive(Debug)]
pub(crate) struct Wrapped {
    /// Shell text for `/bin/sh -c`.
    pub command: String,
    /// sudo's prompt (`[sudo via ansible, key=…] password:`), when a password is to be given.
    pub prompt: Option<String>,
    /// `BECOME-SUCCESS-…`: printed by the wrapped shell once the become program let it run.
    pub success: String,
}

/// Ansible's `_gen_id`: 32 random lowercase letters.
fn become_id() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Only uniqueness matters (the marker must not be in the command's output by chance).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> (i % 16 * 8)) as u8 ^ (std::process::id() as u8).wrapping_mul(i as u8);
        }
    }
    bytes.iter().map(|b| (b'a' + b % 26) as char).collect()
}

/// Python's `shlex.quote`.
fn shlex_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// The command as Ansible's sudo and su plugins build it around `cmd` run by `shell`.
pub(crate) fn wrap(b: &Become, cmd: &str, shell: &str) -> Wrapped {
    let id = become_id();
    let success = format!("BECOME-SUCCESS-{id}");
    let inner = format!(
        "{shell} -c {}",
        shlex_quote(&format!("echo {success} ; {cmd}"))
    );
    let exe = b
        .exe
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or(b.method.name())
        .to_string();
    match b.method {
        BecomeMethod::Sudo => {
            let mut flags = b.flags.clone().unwrap_or_else(|| "-H -S -n".into());
            let mut prompt = None;
            let mut prompt_arg = String::new();
            if b.password.is_some() {
                let text = format!("[sudo via ansible, key={id}] password:");
                if !flags.is_empty() {
                    flags = interactive_sudo_flags(&flags);
                }
                prompt_arg = format!("-p \"{text}\"");
                prompt = Some(text);
            }
            let user = format!("-u {}", b.effective_user());
            let exe = match &b.chdir {
                Some(dir) => format!("cd {} && {exe}", shlex_quote(dir)),
                None => exe,
            };
            Wrapped {
                command: [exe, flags, prompt_arg, user, inner].join(" "),
                prompt,
                success,
            }
        }
        BecomeMethod::Su => Wrapped {
            command: format!(
                "{exe} {} {} -c {}",
                b.flags.clone().unwrap_or_default(),
                b.effective_user(),
                shlex_quote(&inner)
            ),
            // su's prompt is recognised by its words (`Password:` and its translations).
            prompt: b.password.as_ref().map(|_| String::new()),
            success,
        },
    }
}

impl Wrapped {
    /// Ansible's `check_success`: a line holding the marker.
    fn succeeded(&self, stdout: &[u8]) -> bool {
        let marker = self.success.as_bytes();
        stdout.split_inclusive(|&c| c == b'\n').any(|line| {
            line.trim_ascii_end()
                .windows(marker.len())
                .any(|w| w == marker)
        })
    }

    /// Ansible's `check_password_prompt`: a line that starts with the prompt.
    fn prompted(&self, b: &Become, output: &[u8]) -> bool {
        let Some(prompt) = &self.prompt else {
            return false;
        };
        let text = String::from_utf8_lossy(output);
        match b.method {
            BecomeMethod::Sudo => text.lines().any(|l| l.trim().starts_with(prompt.trim())),
            BecomeMethod::Su => text.lines().any(|l| is_password_prompt(b, l)),
        }
    }
}

/// Ansible's `_strip_through_prefix`: everything up to and including the first `marker`, and
/// the white space after it, is left out.
fn strip_through(marker: &str, data: &[u8]) -> Vec<u8> {
    let m = marker.as_bytes();
    if m.is_empty() {
        return data.to_vec();
    }
    match data.windows(m.len()).position(|w| w == m) {
        Some(at) => {
            let rest = &data[at + m.len()..];
            let skip = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
            rest[skip..].to_vec()
        }
        None => data.to_vec(),
    }
}

/// Which of the command's output streams a piece came from.
#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Out,
    Err,
}

/// A pty for the command's standard input: (the side we write the password to, the command's).
fn open_pty() -> std::io::Result<(std::fs::File, OwnedFd)> {
    // SAFETY: plain libc calls on descriptors this function owns; ptsname_r writes at most
    // buf.len() bytes.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let master = OwnedFd::from_raw_fd(master);
        if libc::grantpt(master.as_raw_fd()) != 0 || libc::unlockpt(master.as_raw_fd()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr(), buf.len()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let slave = libc::open(
            buf.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((std::fs::File::from(master), OwnedFd::from_raw_fd(slave)))
    }
}

/// Runs `raw`'s command under become on the controller, as Ansible's local connection does.
pub(crate) fn run_raw_locally(request: &Request, b: &Become) -> Result<Outcome, ConnectionError> {
    let cmd = match request.args.get("_raw_params") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let shell = match request.args.get("executable") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => "/bin/sh".to_string(),
    };
    let wrapped = wrap(b, &cmd, &shell);
    if super::verbosity() >= 3 {
        println!("<localhost> EXEC {}", wrapped.command);
    }
    let Some((rc, stdout, stderr)) = run_wrapped(&wrapped, b, request.timeout)? else {
        // The task's `timeout`, as the raw module words it.
        let seconds = request.timeout.unwrap_or_default();
        let mut outcome = Outcome::failed(format!(
            "Timed out after {seconds} second{}",
            if seconds == 1 { "" } else { "s" }
        ));
        outcome
            .values
            .insert("timedout".into(), serde_json::json!({"period": seconds}));
        return Ok(outcome);
    };
    let mut stdout = String::from_utf8_lossy(&stdout).into_owned();
    // Ansible's `_strip_success_message`: a marker the preamble strip left in.
    if stdout.trim().starts_with("BECOME-SUCCESS-") {
        let re = regex::Regex::new(r"^((\r)?\n)?BECOME-SUCCESS.*(\r)?\n").ok();
        if let Some(re) = re {
            stdout = re.replace(&stdout, "").into_owned();
        }
    }
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let lines = |s: &str| Value::Array(s.lines().map(|l| Value::String(l.into())).collect());
    let mut outcome = Outcome {
        changed: true,
        ..Outcome::default()
    };
    outcome.values.insert("rc".into(), rc.into());
    outcome.values.insert("stdout_lines".into(), lines(&stdout));
    outcome.values.insert("stdout".into(), stdout.into());
    outcome.values.insert("stderr_lines".into(), lines(&stderr));
    outcome.values.insert("stderr".into(), stderr.into());
    if rc != 0 {
        outcome.failed = true;
        outcome.msg = Some("non-zero return code".into());
    }
    Ok(outcome)
}

/// What the wrapped command gave: (rc, stdout, stderr).
type Ran = (i32, Vec<u8>, Vec<u8>);

/// Starts the wrapped command, waits for the success marker (answering the prompt on the way),
/// then collects the rest; `None` when it outlived the task's `timeout` (and was ended).
fn run_wrapped(
    w: &Wrapped,
    b: &Become,
    timeout: Option<u64>,
) -> Result<Option<Ran>, ConnectionError> {
    let started = Instant::now();
    let expect_prompt = w.prompt.is_some();
    let pty = match expect_prompt && !b.pipelining {
        // As Ansible: no pty when one cannot be had; sudo then reads the password from a pipe.
        true => open_pty().ok(),
        false => None,
    };
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&w.command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a become that stalls is ended with everything it started.
        .process_group(0);
    let pty_keep = match pty {
        Some((master, slave)) => {
            command.stdin(Stdio::from(slave));
            Some(master)
        }
        None => {
            command.stdin(Stdio::piped());
            None
        }
    };
    let mut child = command
        .spawn()
        .map_err(|e| ConnectionError::Failed(format!("cannot run /bin/sh: {e}")))?;
    let mut stdin = child.stdin.take();
    drop(command);
    let (tx, rx) = mpsc::channel::<(Stream, Option<Vec<u8>>)>();
    for (stream, reader) in [
        (
            Stream::Out,
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ),
        (
            Stream::Err,
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(mut reader) = reader else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send((stream, None));
                        return;
                    }
                    Ok(n) => {
                        if tx.send((stream, Some(buf[..n].to_vec()))).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let pid = child.id() as i32;
    let end = |child: &mut std::process::Child| {
        // SAFETY: signals the process group the child leads (made by process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.wait();
    };

    let deadline = Instant::now() + Duration::from_secs(b.timeout_secs.max(1));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut open = 2;
    let mut sent_password = false;
    let (mut out_from, mut err_from) = (0, 0);
    let message = |reason: &str, out: &[u8], err: &[u8], sent: bool| {
        let mut m = format!("{reason} waiting for become success");
        if expect_prompt && !sent {
            m.push_str(" or become password prompt");
        }
        m.push('.');
        if !out.is_empty() {
            m.push_str("\n>>> Standard Output\n");
            m.push_str(&String::from_utf8_lossy(out));
        }
        if !err.is_empty() {
            m.push_str("\n>>> Standard Error\n");
            m.push_str(&String::from_utf8_lossy(err));
        }
        m
    };
    while !w.succeeded(&out) {
        if open == 0 {
            end(&mut child);
            return Err(ConnectionError::Failed(message(
                "Premature end of stream",
                &out,
                &err,
                sent_password,
            )));
        }
        if expect_prompt && (w.prompted(b, &out[out_from..]) || w.prompted(b, &err[err_from..])) {
            if sent_password {
                end(&mut child);
                return Err(ConnectionError::Failed(message(
                    "Duplicate become password prompt encountered",
                    &out,
                    &err,
                    sent_password,
                )));
            }
            out_from = out.len();
            err_from = err.len();
            let password = format!("{}\n", b.password.as_deref().unwrap_or_default());
            let written = match (pty_keep.as_ref(), stdin.as_mut()) {
                (Some(mut master), _) => master.write_all(password.as_bytes()),
                (None, Some(pipe)) => pipe
                    .write_all(password.as_bytes())
                    .and_then(|_| pipe.flush()),
                _ => Ok(()),
            };
            // A become program that is gone is seen as the end of its streams.
            drop(written);
            sent_password = true;
        }
        let now = Instant::now();
        let timed_out =
            || ConnectionError::Unreachable(message("Timed out", &out, &err, sent_password));
        if now >= deadline {
            let e = timed_out();
            end(&mut child);
            return Err(e);
        }
        match rx.recv_timeout(deadline - now) {
            Ok((Stream::Out, Some(chunk))) => out.extend_from_slice(&chunk),
            Ok((Stream::Err, Some(chunk))) => err.extend_from_slice(&chunk),
            Ok((_, None)) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let e = timed_out();
                end(&mut child);
                return Err(e);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
    }
    let (mut before_out, mut before_err) = (out, err);
    if b.strip_preamble {
        if let Some(prompt) = w.prompt.as_deref().filter(|p| !p.is_empty()) {
            before_out = strip_through(prompt, &before_out);
            before_err = strip_through(prompt, &before_err);
        }
        before_out = strip_through(&w.success, &before_out);
    }
    // The command reads nothing from us: its input closes, as `communicate()` closes it.
    drop(stdin);
    let mut rest_out = Vec::new();
    let mut rest_err = Vec::new();
    let task_deadline = timeout.map(|t| started + Duration::from_secs(t));
    while open > 0 {
        let next = match task_deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(next) => Ok(next),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        end(&mut child);
                        return Ok(None);
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                }
            }
            None => rx.recv().map_err(|_| ()),
        };
        match next {
            Ok((Stream::Out, Some(chunk))) => rest_out.extend_from_slice(&chunk),
            Ok((Stream::Err, Some(chunk))) => rest_err.extend_from_slice(&chunk),
            Ok((_, None)) => open -= 1,
            Err(()) => break,
        }
    }
    let status = child
        .wait()
        .map_err(|e| ConnectionError::Failed(format!("waiting for the command failed: {e}")))?;
    drop(pty_keep);
    let rc = match status.code() {
        Some(code) => code,
        None => {
            use std::os::unix::process::ExitStatusExt;
            -status.signal().unwrap_or(1)
        }
    };
    before_out.extend_from_slice(&rest_out);
    before_err.extend_from_slice(&rest_err);
    Ok(Some((rc, before_out, before_err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_wraps_the_command_as_ansible_s_plugin() {
        let b = Become {
            password: Some("pw".into()),
            flags: Some("-H -S -n".into()),
            ..Become::sudo("alice")
        };
        let w = wrap(&b, "echo $(whoami) ran", "/bin/sh");
        let id = w.success.strip_prefix("BECOME-SUCCESS-").unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(
            w.command,
            format!(
                "sudo -H -S -p \"[sudo via ansible, key={id}] password:\" -u alice /bin/sh -c 'echo BECOME-SUCCESS-{id} ; echo $(whoami) ran'"
            )
        );
        let no_password = wrap(&Become::sudo("bob"), "id", "/bin/sh");
        assert!(
            no_password
                .command
                .starts_with("sudo -H -S -n  -u bob /bin/sh -c "),
            "{}",
            no_password.command
        );
        assert!(no_password.prompt.is_none());
    }

    #[test]
    fn success_and_prompt_are_found_on_their_own_lines() {
        let b = Become {
            password: Some("pw".into()),
            ..Become::sudo("alice")
        };
        let w = wrap(&b, "true", "/bin/sh");
        let prompt = w.prompt.clone().unwrap();
        assert!(w.prompted(&b, format!("stderr noise\n{prompt}").as_bytes()));
        assert!(!w.prompted(&b, b"password:"));
        assert!(w.succeeded(format!("noise\n{}\r\n", w.success).as_bytes()));
        assert!(!w.succeeded(b"BECOME-SUCCESS-other\n"));
        let stripped = strip_through(&w.success, format!("noise\n{}\n out", w.success).as_bytes());
        assert_eq!(stripped, b"out");
    }

    #[test]
    fn shlex_quote_is_python_s() {
        assert_eq!(shlex_quote("abc/d-1"), "abc/d-1");
        assert_eq!(shlex_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shlex_quote(""), "''");
    }
}
