//! `wait_for`: waits until a port answers (or stops answering) or a file appears (or goes), on
//! the host itself. Changes nothing, so it also waits in check mode.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "wait_for",
    args: &[
        "host",
        "port",
        "path",
        "state",
        "timeout",
        "delay",
        "sleep",
        "connect_timeout",
        "search_regex",
        "msg",
    ],
    unsupported: &["active_connection_states", "exclude_hosts"],
    free_form: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "localhost")]
    host: String,
    port: Option<u16>,
    path: Option<PathBuf>,
    #[serde(default = "started")]
    state: String,
    #[serde(default = "timeout")]
    timeout: f64,
    #[serde(default)]
    delay: f64,
    #[serde(default = "one")]
    sleep: f64,
    #[serde(default = "five")]
    connect_timeout: f64,
    search_regex: Option<String>,
    msg: Option<String>,
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn started() -> String {
    "started".into()
}
fn timeout() -> f64 {
    300.0
}
fn one() -> f64 {
    1.0
}
fn five() -> f64 {
    5.0
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("wait_for", &request.args)?;
    if args.port.is_some() && args.path.is_some() {
        return Err(ModuleError::Args(
            "wait_for: port and path are mutually exclusive".into(),
        ));
    }
    let wants_presence = match args.state.as_str() {
        "started" | "present" => true,
        "stopped" | "absent" => false,
        other => {
            return Err(ModuleError::Args(format!(
                "wait_for: state {other:?} is not one of started, stopped, present, absent"
            )));
        }
    };
    let regex = args
        .search_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| ModuleError::Args(format!("wait_for: search_regex: {e}")))?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.delay.max(0.0)));
    let deadline = start + Duration::from_secs_f64(args.timeout.max(0.0));
    let present = || -> bool {
        if let Some(path) = &args.path {
            return match std::fs::read_to_string(path) {
                Ok(text) => regex.as_ref().is_none_or(|r| r.is_match(&text)),
                Err(_) => regex.is_none() && path.exists(),
            };
        }
        if let Some(port) = args.port {
            let Ok(mut addrs) = (args.host.as_str(), port).to_socket_addrs() else {
                return false;
            };
            return addrs.next().is_some_and(|a| {
                TcpStream::connect_timeout(
                    &a,
                    Duration::from_secs_f64(args.connect_timeout.max(0.1)),
                )
                .is_ok()
            });
        }
        true
    };
    loop {
        if present() == wants_presence {
            break;
        }
        if Instant::now() >= deadline {
            let what = match (&args.path, args.port) {
                (Some(p), _) => format!("file {}", p.display()),
                (None, Some(port)) => format!("{}:{port}", args.host),
                _ => "the condition".into(),
            };
            let msg = args
                .msg
                .clone()
                .unwrap_or_else(|| format!("Timeout when waiting for {what} ({})", args.state));
            let mut outcome = Outcome::failed(msg);
            outcome
                .values
                .insert("elapsed".into(), start.elapsed().as_secs().into());
            return Ok(outcome);
        }
        std::thread::sleep(Duration::from_secs_f64(args.sleep.max(0.05)));
    }
    let mut values = Map::new();
    values.insert("elapsed".into(), start.elapsed().as_secs().into());
    values.insert("state".into(), args.state.clone().into());
    if let Some(p) = &args.path {
        values.insert("path".into(), p.display().to_string().into());
    }
    if let Some(p) = args.port {
        values.insert("port".into(), p.into());
    }
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}
