//! `wait_for`: waits until a port answers (or stops answering) or a file appears (or goes), on
//! the host itself. Changes nothing, so it also waits in check mode.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

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
    if !wants_presence && args.state == "stopped" && args.path.is_some() {
        return Err(ModuleError::Args(
            "state=stopped should only be used for checking a port in the wait_for module".into(),
        ));
    }
    // Python's re.MULTILINE on the file's bytes (a file need not be UTF-8).
    let regex = args
        .search_regex
        .as_deref()
        .map(|r| regex::bytes::RegexBuilder::new(r).multi_line(true).build())
        .transpose()
        .map_err(|e| ModuleError::Args(format!("Invalid regular expression: {e}")))?;
    let path = args.path.as_deref().map(crate::fsutil::expand_path);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.delay.max(0.0)));
    let mut groups = Value::Array(Vec::new());
    let mut groupdict = Value::Object(Map::new());
    if path.is_none() && args.port.is_none() {
        // Nothing to wait for but the time itself, as Ansible's `wait_for: timeout=N`.
        std::thread::sleep(Duration::from_secs_f64(args.timeout.max(0.0)));
    } else {
        let deadline = start + Duration::from_secs_f64(args.timeout.max(0.0));
        let mut present = || -> bool {
            if let Some(path) = &path {
                let Some(re) = &regex else {
                    return path.exists();
                };
                let Ok(bytes) = std::fs::read(path) else {
                    return false;
                };
                let Some(caps) = re.captures(&bytes) else {
                    return false;
                };
                let text = |m: Option<regex::bytes::Match>| {
                    m.map_or(Value::Null, |m| {
                        String::from_utf8_lossy(m.as_bytes()).into_owned().into()
                    })
                };
                groups = (1..caps.len()).map(|i| text(caps.get(i))).collect();
                groupdict = re
                    .capture_names()
                    .flatten()
                    .map(|name| (name.to_string(), text(caps.name(name))))
                    .collect::<Map<_, _>>()
                    .into();
                return true;
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
                let shown = |p: &std::path::Path| p.display().to_string();
                let at = format!("{}:{}", args.host, args.port.unwrap_or_default());
                let what = match (&path, &args.search_regex, wants_presence) {
                    (Some(p), _, false) => format!("{} to be absent.", shown(p)),
                    (None, _, false) => format!("{at} to stop."),
                    (Some(p), Some(re), true) => format!("search string {re} in {}", shown(p)),
                    (Some(p), None, true) => format!("file {}", shown(p)),
                    (None, Some(re), true) => format!("search string {re} in {at}"),
                    (None, None, true) => at,
                };
                let msg = args
                    .msg
                    .clone()
                    .unwrap_or_else(|| format!("Timeout when waiting for {what}"));
                let mut outcome = Outcome::failed(msg);
                outcome
                    .values
                    .insert("elapsed".into(), start.elapsed().as_secs().into());
                return Ok(outcome);
            }
            std::thread::sleep(Duration::from_secs_f64(args.sleep.max(0.05)));
        }
    }
    // Ansible's result keys, null where not given.
    let mut values = Map::new();
    values.insert("elapsed".into(), start.elapsed().as_secs().into());
    values.insert("state".into(), args.state.clone().into());
    values.insert(
        "path".into(),
        path.map_or(Value::Null, |p| p.display().to_string().into()),
    );
    values.insert("port".into(), args.port.map_or(Value::Null, Value::from));
    values.insert(
        "search_regex".into(),
        args.search_regex.clone().map_or(Value::Null, Value::from),
    );
    values.insert("match_groups".into(), groups);
    values.insert("match_groupdict".into(), groupdict);
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: serde_json::Value) -> Outcome {
        crate::run(&Request::new(
            "wait_for",
            args.as_object().cloned().unwrap_or_default(),
        ))
    }

    #[test]
    fn only_a_timeout_waits_that_long() {
        let started = Instant::now();
        let out = call(serde_json::json!({"timeout": 1}));
        assert!(!out.failed && started.elapsed() >= Duration::from_secs(1));
        assert_eq!(out.values["elapsed"], 1);
        assert_eq!(out.values["path"], Value::Null);
    }

    #[test]
    fn search_regex_reports_its_groups() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "start\ncompleted data 123\n").unwrap();
        let out = call(serde_json::json!({
            "path": file, "search_regex": "^completed (?P<foo>\\w+) ([0-9]+)$", "timeout": 2,
        }));
        assert!(!out.failed, "{out:?}");
        assert_eq!(
            out.values["search_regex"],
            "^completed (?P<foo>\\w+) ([0-9]+)$"
        );
        assert_eq!(
            out.values["match_groups"],
            serde_json::json!(["data", "123"])
        );
        assert_eq!(
            out.values["match_groupdict"],
            serde_json::json!({"foo": "data"})
        );
        let out = call(serde_json::json!({"path": file, "search_regex": "nope", "timeout": 0}));
        assert_eq!(
            out.msg,
            Some(format!(
                "Timeout when waiting for search string nope in {}",
                file.display()
            ))
        );
    }
}
