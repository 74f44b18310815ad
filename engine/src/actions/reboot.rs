//! `reboot`: reboots the host and waits until it is back, as Ansible's action plugin does. It
//! reads the boot id (`boot_time_command`, by default `cat /proc/sys/kernel/random/boot_id`),
//! finds `shutdown` in `search_paths` and runs `shutdown -r <minutes> "<msg>"` (or
//! `reboot_command`), waits `post_reboot_delay` seconds, then reconnects until the boot id has
//! changed and `test_command` succeeds, backing off as Ansible does (2^n seconds plus a little,
//! at most 12), for at most `reboot_timeout` seconds each. The result has `rebooted` and
//! `elapsed`. Check mode reports a reboot and does none; a `local` connection is refused.
//!
//! `connect_timeout` is taken, but each attempt uses the connection's own timeout (the ssh
//! `ConnectTimeout` of `--timeout`): settle does not change a connection's options in a task.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use settle_modules::Request;

use super::{ActionContext, ActionResult, done, failed, rendered_args};
use crate::connection::ConnectionError;
use crate::value_text;

pub(super) const ARGS: &[&str] = &[
    "boot_time_command",
    "connect_timeout",
    "msg",
    "post_reboot_delay",
    "pre_reboot_delay",
    "reboot_command",
    "reboot_timeout",
    "search_paths",
    "test_command",
];

const DEFAULT_SEARCH_PATHS: &[&str] =
    &["/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin"];

/// What a command on the host said; `Err` when the host could not be reached.
struct Said {
    rc: i64,
    stdout: String,
    stderr: String,
}

fn shell(ctx: &ActionContext, command: &str) -> Result<Said, String> {
    let mut args = Map::new();
    args.insert("_raw_params".into(), command.into());
    let mut request = Request::new("shell", args);
    request.environment = ctx.environment.clone();
    match (ctx.run_module)(&request) {
        Err(ConnectionError::Unreachable(msg)) | Err(ConnectionError::Failed(msg)) => Err(msg),
        Ok(outcome) => {
            let text = |k: &str| outcome.values.get(k).map(value_text).unwrap_or_default();
            Ok(Said {
                rc: outcome
                    .values
                    .get("rc")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::from(outcome.failed)),
                stdout: text("stdout"),
                stderr: text("stderr"),
            })
        }
    }
}

/// An argument read with Python's `int()`.
fn int(args: &Map<String, Value>, key: &str, default: i64) -> Result<i64, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => Ok(n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(default)),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("invalid literal for int() with base 10: '{s}'")),
        Some(other) => Err(format!("reboot: {key} must be a whole number, not {other}")),
    }
}

/// A text argument that must be text (`check_type_str` without conversion).
fn text_arg(args: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "Invalid value given for '{key}': '{}' is not a string and conversion is not allowed.",
            value_text(other)
        )),
    }
}

/// The host's system as Ansible's tables key it (`alpine`, `void`, `freebsd`, …; `linux` for
/// the rest), from `uname -s` and os-release's ID.
fn system(ctx: &ActionContext) -> Result<(String, String), String> {
    let said = shell(
        ctx,
        "uname -s; (. /etc/os-release 2>/dev/null; echo \"$ID\")",
    )?;
    let mut lines = said.stdout.lines();
    let kernel = lines.next().unwrap_or_default().trim().to_lowercase();
    let id = lines.next().unwrap_or_default().trim().to_lowercase();
    let kernel = match kernel.as_str() {
        "darwin" => "macosx".to_string(),
        "sunos" => "solaris".to_string(),
        other => other.to_string(),
    };
    Ok((kernel, id))
}

pub(super) fn reboot(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let mut unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !ARGS.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Ok(failed(format!(
            "Invalid options for {}: {}",
            ctx.task.module_as_written,
            unknown.join(",")
        )));
    }
    let connection = ctx
        .scope
        .get("ansible_connection")
        .ok()
        .flatten()
        .map(|v| value_text(&v))
        .or_else(|| ctx.task.keywords.connection.clone());
    if connection.as_deref() == Some("local") {
        return Ok(done(json!({
            "changed": false, "elapsed": 0, "rebooted": false, "failed": true,
            "msg": format!("Running {} with local connection would reboot the control node.",
                           ctx.task.module_as_written),
        })));
    }
    if ctx.check_mode {
        return Ok(done(
            json!({"changed": true, "elapsed": 0, "rebooted": true}),
        ));
    }
    let pre_delay = int(&args, "pre_reboot_delay", 0)?.max(0);
    let post_delay = int(&args, "post_reboot_delay", 0)?.max(0);
    let reboot_timeout = int(&args, "reboot_timeout", 600)?;
    let _connect_timeout = int(&args, "connect_timeout", 0)?;
    let reboot_command = text_arg(&args, "reboot_command")?;
    let boot_time_command = text_arg(&args, "boot_time_command")?.filter(|c| !c.is_empty());
    let test_command = match args.get("test_command") {
        Some(v) if !v.is_null() => Some(value_text(v)),
        _ => None,
    };
    let msg = args
        .get("msg")
        .map(value_text)
        .unwrap_or_else(|| "Reboot initiated by Ansible".into());
    let search_paths: Vec<String> = match args.get("search_paths") {
        None | Some(Value::Null) => DEFAULT_SEARCH_PATHS.iter().map(|s| s.to_string()).collect(),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(value_text).collect()
        }
        Some(other) => {
            return Ok(failed(format!(
                "'search_paths' must be a string or flat list of strings, got {}",
                value_text(other)
            )));
        }
    };

    let (kernel, id) = system(ctx).map_err(|e| format!("reboot: cannot reach the host: {e}"))?;
    let boot_time_command = boot_time_command.unwrap_or_else(|| {
        match kernel.as_str() {
            "freebsd" | "openbsd" => "/sbin/sysctl kern.boottime",
            "macosx" | "solaris" | "aix" => "who -b",
            _ => "cat /proc/sys/kernel/random/boot_id",
        }
        .to_string()
    });
    let test_command = test_command
        .unwrap_or_else(|| if kernel == "solaris" { "who" } else { "whoami" }.to_string());
    let action = ctx.task.module_as_written.clone();
    let boot_time = |ctx: &ActionContext| -> Result<String, String> {
        let said = shell(ctx, &boot_time_command)?;
        if said.rc != 0 {
            return Err(format!(
                "{action}: failed to get host boot time info, rc: {}, stdout: {}, stderr: {}",
                said.rc, said.stdout, said.stderr
            ));
        }
        Ok(said.stdout.trim().to_string())
    };
    let previous = match boot_time(ctx) {
        Ok(t) => t,
        Err(e) => {
            return Ok(done(
                json!({"changed": false, "failed": true, "reboot": false, "msg": e}),
            ));
        }
    };

    // The reboot command.
    let (bin, command_args) = match &reboot_command {
        Some(command) => match command.split_once(' ') {
            Some((bin, rest)) => (bin.to_string(), rest.to_string()),
            None => (command.clone(), String::new()),
        },
        None => {
            let bin = if id == "alpine" { "reboot" } else { "shutdown" };
            let args = match (kernel.as_str(), id.as_str()) {
                (_, "alpine") => String::new(),
                (_, "void") | ("macosx" | "openbsd", _) => {
                    format!("-r +{} \"{msg}\"", pre_delay / 60)
                }
                ("freebsd", _) => format!("-r +{pre_delay}s \"{msg}\""),
                ("solaris", _) => format!("-y -g {pre_delay} -i 6 \"{msg}\""),
                ("aix", _) => "-Fr".into(),
                _ => format!("-r {} \"{msg}\"", pre_delay / 60),
            };
            (bin.to_string(), args)
        }
    };
    let bin = if bin.starts_with('/') {
        bin
    } else {
        let mut found = None;
        for dir in &search_paths {
            let path = format!("{}/{bin}", dir.trim_end_matches('/'));
            let said = shell(ctx, &format!("test -e '{}'", path.replace('\'', "'\\''")))?;
            if said.rc == 0 {
                found = Some(path);
                break;
            }
        }
        match found {
            Some(path) => path,
            None => {
                let listed: Vec<String> = search_paths.iter().map(|p| format!("'{p}'")).collect();
                return Ok(failed(format!(
                    "Unable to find command \"{bin}\" in search paths: [{}]",
                    listed.join(", ")
                )));
            }
        }
    };
    let start = Instant::now();
    // The connection may close under the command as the host goes down: that is success.
    if let Ok(said) = shell(ctx, &format!("{bin} {command_args}"))
        && said.rc != 0
    {
        return Ok(done(json!({
            "changed": false, "failed": true, "rebooted": false,
            "msg": format!("Reboot command failed. Error was: '{}, {}'",
                           said.stdout.trim(), said.stderr.trim()),
            "elapsed": start.elapsed().as_secs(),
        })));
    }
    std::thread::sleep(Duration::from_secs(post_delay as u64));
    let timeout = Duration::from_secs(reboot_timeout.max(0) as u64);
    let waited = until(ctx, timeout, "last boot time check", |ctx| {
        let now = boot_time(ctx)?;
        if now.is_empty() || now == previous {
            return Err("boot time has not changed".into());
        }
        Ok(())
    })
    .and_then(|()| {
        until(ctx, timeout, "post-reboot test command", |ctx| {
            let said = shell(ctx, &test_command)?;
            if said.rc != 0 {
                return Err(format!(
                    "Test command failed: {} {}",
                    said.stderr, said.stdout
                ));
            }
            Ok(())
        })
    });
    let elapsed = start.elapsed().as_secs();
    Ok(match waited {
        Ok(()) => {
            done(json!({"changed": true, "failed": false, "rebooted": true, "elapsed": elapsed}))
        }
        Err(msg) => done(json!({
            "changed": false, "failed": true, "rebooted": true, "msg": msg, "elapsed": elapsed,
        })),
    })
}

/// Ansible's `do_until_success_or_timeout`: tries `attempt` on a fresh connection, sleeping
/// 2^n seconds (plus up to one, at most 12 and a bit) between tries, until `timeout` passes.
fn until(
    ctx: &ActionContext,
    timeout: Duration,
    what: &str,
    attempt: impl Fn(&ActionContext) -> Result<(), String>,
) -> Result<(), String> {
    // A timeout past what the clock holds never passes.
    let deadline = Instant::now().checked_add(timeout);
    let mut fails: u32 = 0;
    while deadline.is_none_or(|d| Instant::now() < d) {
        match attempt(ctx) {
            Ok(()) => return Ok(()),
            Err(_) => {
                (ctx.reset_connection)();
                let jitter = f64::from(getrandom::u32().unwrap_or(0) % 1000) / 1000.0;
                let sleep = 2f64.powi(fails.min(8) as i32).min(12.0) + jitter;
                fails += 1;
                std::thread::sleep(Duration::from_secs_f64(sleep));
            }
        }
    }
    Err(format!(
        "Timed out waiting for {what} (timeout={})",
        timeout.as_secs()
    ))
}
