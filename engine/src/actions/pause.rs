//! `pause`: wait a while, or until someone at the terminal answers, as Ansible's action does.
//!
//! With a terminal on stdin (and settle in its foreground process group), the prompt is shown
//! and keys are read one at a time with the terminal in raw mode: Enter completes (when no
//! duration is given), backspace edits, Ctrl+C asks "continue or abort". Without one, a prompt
//! is not waited for (with Ansible's warning) and a duration is simply slept.

use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ActionContext, ActionResult, done, rendered_args};

const ARGUMENTS: &[&str] = &["echo", "minutes", "prompt", "seconds"];

pub(super) fn pause(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let mut unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !ARGUMENTS.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(format!(
            "Unsupported parameters for (pause) module: {}. Supported parameters include: {}.",
            unknown.join(", "),
            ARGUMENTS.join(", ")
        ));
    }
    if args.contains_key("minutes") && args.contains_key("seconds") {
        return Err("parameters are mutually exclusive: minutes|seconds".into());
    }
    // Ansible reads the durations with `int()`: 0.1 is 0, "hello" is an error.
    let int = |key: &str| -> Result<Option<i64>, String> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                format!(
                    "argument '{key}' is of type str and we were unable to convert to int: \
                     invalid literal for int() with base 10: '{s}'"
                )
            }),
            Some(other) => Err(format!(
                "argument '{key}' is of type {} and we were unable to convert to int",
                settle_yaml::python_type(other)
            )),
        }
    };
    let echo = match args.get("echo") {
        None => true,
        Some(v) => crate::template::strict_bool(v).ok_or_else(|| {
            format!(
                "argument 'echo' is of type {} and we were unable to convert to bool: The value \
                 '{}' is not a valid boolean. Valid booleans include: 'on', 'yes', 'y', 't', \
                 'true', '1', 1, 1.0, True, 'off', 'no', 'n', 'f', 'false', '0', 0, 0.0, False",
                settle_yaml::python_type(v),
                crate::value_text(v)
            )
        })?,
    };
    let (seconds, unit) = match (int("minutes")?, int("seconds")?) {
        (Some(m), _) => (Some(m.saturating_mul(60)), "minutes"),
        (None, Some(s)) => (Some(s), "seconds"),
        (None, None) => (None, "minutes"),
    };
    let seconds = seconds.map(|s| s.max(1) as u64);
    let hidden = if echo { "" } else { " (output is hidden)" };
    let title = ctx.task.display_name();
    let title = title.trim();
    let prompt_arg = args.get("prompt").map(crate::value_text);
    let mut prompt = match &prompt_arg {
        Some(p) => format!("[{title}]\n{p}{hidden}:"),
        None => format!("[{title}]\nPress enter to continue, Ctrl+C to interrupt{hidden}:"),
    };
    let started = Instant::now();
    let start_text = crate::filters::local_datetime_text(now());
    let mut user_input = String::new();
    let terminal = Terminal::interactive();
    if let Some(s) = seconds {
        say(&format!("Pausing for {s} seconds{hidden}"));
        const CONTROLS: &str = "(ctrl+C then 'C' = continue early, ctrl+C then 'A' = abort)\r";
        match prompt_arg {
            Some(_) => say(CONTROLS),
            None => prompt = CONTROLS.to_string(),
        }
    }
    match terminal {
        // A dry run shows the prompt but waits for no one, as it changes nothing.
        Some(_) if ctx.check_mode => {}
        Some(terminal) => {
            say(&prompt);
            // With a duration, Enter does not end the wait and what is typed is not kept.
            let complete: &[u8] = if seconds.is_some() { b"" } else { b"\r\n" };
            match terminal.read(echo && seconds.is_none(), seconds, complete, None)? {
                Read::Completed(text) if seconds.is_none() => user_input = text,
                Read::Completed(_) => {}
                Read::Interrupted => {
                    say("Press 'C' to continue the play or 'A' to abort \r");
                    if let Read::Interrupted = terminal.read(false, None, b"c", Some(b'a'))? {
                        return Err("user requested abort!".into());
                    }
                }
            }
        }
        None => match seconds {
            None => {
                eprintln!(
                    "[WARNING]: Not waiting for response to prompt as stdin is not interactive"
                );
            }
            Some(s) if !ctx.check_mode => std::thread::sleep(Duration::from_secs(s)),
            Some(_) => {}
        },
    }
    let elapsed = started.elapsed().as_secs_f64();
    let shown = match unit {
        "minutes" => (elapsed / 60.0 * 100.0).round() / 100.0,
        _ => (elapsed * 100.0).round() / 100.0,
    };
    Ok(done(json!({
        "changed": false,
        "rc": 0,
        "stderr": "",
        "stdout": format!("Paused for {} {unit}", python_float(shown)),
        "start": start_text,
        "stop": crate::filters::local_datetime_text(now()),
        "delta": elapsed as u64,
        "echo": echo,
        "user_input": user_input,
    })))
}

/// A float as Python prints it: `1.0`, `0.02`.
fn python_float(value: f64) -> String {
    let text = value.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A line on stdout, as Ansible's display shows it.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Ansible's `clear_line`: back to the start of the line, and clear it.
fn clear_line() {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"\r\x1b[K");
    let _ = out.flush();
}

enum Read {
    Completed(String),
    Interrupted,
}

/// stdin when it is a terminal settle may read from (it is in the terminal's foreground).
struct Terminal;

impl Terminal {
    fn interactive() -> Option<Terminal> {
        // SAFETY: isatty, getpgrp and tcgetpgrp only read the process's and the descriptor's
        // state.
        let foreground = unsafe { libc::isatty(0) == 1 && libc::getpgrp() == libc::tcgetpgrp(0) };
        foreground.then_some(Terminal)
    }

    /// Reads keys until one completes (`complete`, any case) or interrupts (`interrupt`, else
    /// the terminal's interrupt key), or until `seconds` pass; the terminal is in raw mode
    /// meanwhile and given back as it was.
    fn read(
        &self,
        echo: bool,
        seconds: Option<u64>,
        complete: &[u8],
        interrupt: Option<u8>,
    ) -> Result<Read, String> {
        // SAFETY: termios is plain data; tcgetattr fills it for descriptor 0, a terminal.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut original) } != 0 {
            return Err(format!(
                "cannot read the terminal's settings: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut raw = original;
        // SAFETY: cfmakeraw changes the copy in place; tcsetattr and tcflush act on stdin.
        unsafe {
            libc::cfmakeraw(&mut raw);
            if echo {
                raw.c_lflag |= libc::ECHO;
            }
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            libc::tcflush(0, libc::TCIFLUSH);
        }
        let interrupt_key = interrupt.unwrap_or(original.c_cc[libc::VINTR]);
        let erase = original.c_cc[libc::VERASE];
        // A pause past what the clock holds waits as one without a time.
        let deadline = seconds.and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
        let mut typed: Vec<u8> = Vec::new();
        let outcome = loop {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left.as_millis().min(i32::MAX as u128) as i32,
                    None => break Read::Completed(String::new()),
                },
                None => -1,
            };
            let mut poll = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for stdin.
            let ready = unsafe { libc::poll(&mut poll, 1, wait) };
            if ready < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Read::Completed(String::from_utf8_lossy(&typed).into_owned());
            }
            if ready == 0 {
                continue;
            }
            let mut key = [0u8; 1];
            // SAFETY: reads one byte into a one-byte buffer.
            let n = unsafe { libc::read(0, key.as_mut_ptr().cast(), 1) };
            if n <= 0 {
                // End of input: nothing more will be typed.
                break Read::Completed(String::from_utf8_lossy(&typed).into_owned());
            }
            let key = key[0];
            if key.to_ascii_lowercase() == interrupt_key {
                clear_line();
                break Read::Interrupted;
            }
            if complete.contains(&key.to_ascii_lowercase()) {
                clear_line();
                break Read::Completed(String::from_utf8_lossy(&typed).into_owned());
            }
            if key == erase || key == 0x7f || key == 0x08 {
                clear_line();
                typed.pop();
                if echo {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&typed);
                    let _ = out.flush();
                }
            } else {
                typed.push(key);
            }
        };
        // SAFETY: gives stdin back the settings read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSADRAIN, &original);
        }
        Ok(outcome)
    }
}
