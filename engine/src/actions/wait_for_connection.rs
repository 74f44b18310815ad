//! `wait_for_connection`: a module whose work is done on the controller. It pings the host over
//! the task's connection (reopened before each try) until the host answers `pong` or `timeout`
//! seconds pass, as Ansible's action plugin does: `delay` seconds first, `sleep` seconds between
//! tries, `elapsed` (whole seconds) in the result, and `timed out waiting for ping module test:
//! <last error>` when it gives up. Check mode skips it.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use settle_modules::Request;

use super::{ActionContext, ActionResult, done, failed, rendered_args};
use crate::connection::ConnectionError;
use crate::value_text;

/// The arguments Ansible's action takes, with their defaults.
const ARGS: &[(&str, u64)] = &[
    ("connect_timeout", 5),
    ("delay", 0),
    ("sleep", 1),
    ("timeout", 600),
];

pub(super) fn wait_for_connection(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let mut bad: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !ARGS.iter().any(|(name, _)| name == k))
        .collect();
    if !bad.is_empty() {
        bad.sort_unstable();
        return Ok(failed(format!(
            "Invalid options for {}: {}",
            ctx.task.module_as_written,
            bad.join(",")
        )));
    }
    let mut numbers = [0u64; 4];
    for (slot, (name, default)) in numbers.iter_mut().zip(ARGS) {
        *slot = match args.get(*name) {
            None | Some(Value::Null) => *default,
            Some(v) => seconds(v).ok_or_else(|| {
                format!(
                    "wait_for_connection: {name} must be a number of seconds, not {:?}",
                    value_text(v)
                )
            })?,
        };
    }
    let [_connect_timeout, delay, sleep, timeout] = numbers;
    if ctx.check_mode {
        return Ok(done(json!({"changed": false, "skipped": true})));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(delay));
    let error = until_pong(
        ctx,
        Duration::from_secs(timeout),
        Duration::from_secs(sleep),
    );
    let mut result = Map::new();
    result.insert("changed".into(), false.into());
    result.insert("failed".into(), error.is_some().into());
    if let Some(error) = error {
        result.insert(
            "msg".into(),
            format!("timed out waiting for ping module test: {error}").into(),
        );
    }
    result.insert("elapsed".into(), start.elapsed().as_secs().into());
    Ok(ActionResult::Done(result, Default::default()))
}

/// An argument as Ansible's `int()` reads it: a whole number, a float (cut), or text of one.
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

/// Pings until the host answers or `timeout` passes; the last error if it never did.
fn until_pong(ctx: &ActionContext, timeout: Duration, sleep: Duration) -> Option<String> {
    // A timeout past what the clock holds never passes.
    let deadline = Instant::now().checked_add(timeout);
    let mut error = String::from("no attempt was made");
    while deadline.is_none_or(|d| Instant::now() < d) {
        (ctx.reset_connection)();
        match ping(ctx) {
            Ok(()) => return None,
            Err(e) => error = e,
        }
        std::thread::sleep(sleep);
    }
    Some(error)
}

fn ping(ctx: &ActionContext) -> Result<(), String> {
    let mut request = Request::new("ping", Map::new());
    request.environment = ctx.environment.clone();
    match (ctx.run_module)(&request) {
        Err(ConnectionError::Unreachable(msg)) | Err(ConnectionError::Failed(msg)) => Err(msg),
        Ok(outcome) if outcome.failed => Err(outcome.msg.unwrap_or_else(|| "ping failed".into())),
        Ok(outcome) => match outcome.values.get("ping").and_then(Value::as_str) {
            Some("pong") => Ok(()),
            _ => Err("ping test failed".into()),
        },
    }
}
