//! `wait_for`: waits until a port answers (or stops answering) or a file appears (or goes), on
//! the host itself. Changes nothing, so it also waits in check mode.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Instant;

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
        "active_connection_states",
        "exclude_hosts",
    ],
    unsupported: &[],
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
    /// `state: drained`: the TCP states that count as a connection still open.
    #[serde(default = "active_states")]
    active_connection_states: Vec<String>,
    /// `state: drained`: connections from these hosts do not count.
    exclude_hosts: Option<Vec<String>>,
}

fn active_states() -> Vec<String> {
    [
        "ESTABLISHED",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "SYN_RECV",
        "SYN_SENT",
        "TIME_WAIT",
    ]
    .map(String::from)
    .to_vec()
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
    let path_given = args.path.is_some();
    if args.port.is_some() && path_given {
        let mut values = Map::new();
        values.insert("elapsed".into(), 0.into());
        return Err(ModuleError::FailedWith {
            msg: "port and path parameter can not both be passed to wait_for".into(),
            values,
        });
    }
    let fail = |msg: &str| {
        let mut values = Map::new();
        values.insert("elapsed".into(), 0.into());
        ModuleError::FailedWith {
            msg: msg.into(),
            values,
        }
    };
    let wants_presence = match args.state.as_str() {
        "started" | "present" => true,
        "stopped" | "absent" | "drained" => false,
        other => {
            return Err(ModuleError::Args(format!(
                "value of state must be one of: absent, drained, present, started, stopped, got: {other}"
            )));
        }
    };
    if path_given && matches!(args.state.as_str(), "stopped" | "drained") {
        return Err(fail(&format!(
            "state={} should only be used for checking a port in the wait_for module",
            args.state
        )));
    }
    if args.exclude_hosts.is_some() && args.state != "drained" {
        return Err(fail("exclude_hosts should only be with state=drained"));
    }
    if let Some(bad) = args
        .active_connection_states
        .iter()
        .find(|s| tcp_state_id(s).is_none())
    {
        return Err(fail(&format!(
            "unknown active_connection_state ({bad}) defined"
        )));
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
    std::thread::sleep(crate::clock::seconds(args.delay));
    let mut groups = Value::Array(Vec::new());
    let mut groupdict = Value::Object(Map::new());
    if args.state == "drained" {
        if let Some(failed) = wait_drained(&args, start) {
            return Ok(failed);
        }
    } else if path.is_none() && args.port.is_none() {
        // Nothing to wait for but the time itself, as Ansible's `wait_for: timeout=N`.
        std::thread::sleep(crate::clock::seconds(args.timeout));
    } else {
        let deadline = start + crate::clock::seconds(args.timeout);
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
                        crate::clock::seconds(args.connect_timeout.max(0.1)),
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
            std::thread::sleep(crate::clock::seconds(args.sleep.max(0.05)));
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

/// The number /proc/net/tcp gives a TCP state.
fn tcp_state_id(state: &str) -> Option<&'static str> {
    Some(match state {
        "ESTABLISHED" => "01",
        "SYN_SENT" => "02",
        "SYN_RECV" => "03",
        "FIN_WAIT1" => "04",
        "FIN_WAIT2" => "05",
        "TIME_WAIT" => "06",
        "CLOSE" => "07",
        "CLOSE_WAIT" => "08",
        "LAST_ACK" => "09",
        "LISTEN" => "0A",
        "CLOSING" => "0B",
        _ => return None,
    })
}

/// A host's addresses as /proc/net/tcp and tcp6 write them (each 32-bit word little-endian),
/// an IPv4 address also as its IPv4-mapped IPv6 form.
fn proc_addresses(host: &str) -> Vec<String> {
    let words = |bytes: &[u8]| -> String {
        bytes
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    };
    let Ok(addrs) = (host, 80).to_socket_addrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for addr in addrs {
        match addr.ip() {
            std::net::IpAddr::V4(v4) => {
                out.push(words(&v4.octets()));
                out.push(words(&v4.to_ipv6_mapped().octets()));
            }
            std::net::IpAddr::V6(v6) => out.push(words(&v6.octets())),
        }
    }
    out
}

/// How many TCP connections on `host:port` are in one of `states`, as Ansible's wait_for
/// counts them from /proc/net/tcp and tcp6 (`0.0.0.0`/`::` as host: any local address).
fn active_connections(port: u16, ips: &[String], exclude: &[String], states: &[&str]) -> usize {
    let port = format!("{port:04X}");
    let any = |ip: &str| ips.iter().any(|i| i == ip);
    let mapped_prefix = "0000000000000000FFFF0000";
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state)) =
                (fields.get(1), fields.get(2), fields.get(3))
            else {
                return false;
            };
            let (Some((local_ip, local_port)), Some((remote_ip, _))) =
                (local.split_once(':'), remote.split_once(':'))
            else {
                return false;
            };
            states.contains(state)
                && local_port == port
                && !exclude.iter().any(|e| e == remote_ip)
                && (any(local_ip)
                    || any(&"0".repeat(local_ip.len()))
                    || (local_ip.starts_with(mapped_prefix)
                        && any("0000000000000000FFFF000000000000")))
        })
        .count()
}

/// `state: drained`: waits until no connection on the port is active; the failed outcome when
/// the time runs out.
fn wait_drained(args: &Args, start: Instant) -> Option<Outcome> {
    let port = args.port.unwrap_or_default();
    let ips = proc_addresses(&args.host);
    let exclude: Vec<String> = args
        .exclude_hosts
        .iter()
        .flatten()
        .flat_map(|h| proc_addresses(h))
        .collect();
    let states: Vec<&str> = args
        .active_connection_states
        .iter()
        .filter_map(|s| tcp_state_id(s))
        .collect();
    let deadline = start + crate::clock::seconds(args.timeout);
    while Instant::now() < deadline {
        if active_connections(port, &ips, &exclude, &states) == 0 {
            return None;
        }
        std::thread::sleep(crate::clock::seconds(args.sleep.max(0.05)));
    }
    let msg = args
        .msg
        .clone()
        .unwrap_or_else(|| format!("Timeout when waiting for {}:{port} to drain", args.host));
    let mut outcome = Outcome::failed(msg);
    outcome
        .values
        .insert("elapsed".into(), start.elapsed().as_secs().into());
    Some(outcome)
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
    fn drained_waits_for_the_port_connections_to_end() {
        assert_eq!(proc_addresses("127.0.0.1")[0], "0100007F");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = call(serde_json::json!({"port": port, "state": "drained", "timeout": 2}));
        assert!(!out.failed, "{out:?}");
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _server = listener.accept().unwrap();
        let out = call(serde_json::json!({"port": port, "state": "drained", "timeout": 1}));
        assert!(out.failed, "{out:?}");
        assert_eq!(
            out.msg,
            Some(format!(
                "Timeout when waiting for 127.0.0.1:{port} to drain"
            ))
        );
    }

    #[test]
    fn only_a_timeout_waits_that_long() {
        let started = Instant::now();
        let out = call(serde_json::json!({"timeout": 1}));
        assert!(!out.failed && started.elapsed() >= std::time::Duration::from_secs(1));
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
