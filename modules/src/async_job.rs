//! Background jobs: the module call of an `async:` task, run on the host apart from the
//! connection that started it, and `async_status`, which reads how it is going.
//!
//! A job lives where Ansible's `async_wrapper` keeps it, so people's scripts and a later
//! `async_status` find it the same way: the file `<async dir>/<jid>` (`~/.ansible_async` unless
//! `ansible_async_dir` says otherwise) holds `{"started": true, "finished": false,
//! "ansible_job_id": …}` while the module runs, then the module's result as JSON, or
//! `{"failed": true, "msg": "Timeout exceeded", "child_pid": …}` when the job ran past its time.
//!
//! Starting a job takes two processes of this very executable (`settle __async_job`):
//!
//! * `start`, spawned by [`launch`] (in the agent, or in the controller for the local
//!   connection), only starts the supervisor and relays its first line, then exits: the
//!   supervisor is left without a parent to wait for it, as a daemon is, and outlives the run;
//! * `supervise`, in a session of its own, writes the job file, runs the module in a thread
//!   and, when the time limit comes first, kills every process of its session (a command's own
//!   process group included) and writes the timeout result.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, fsutil};

/// The hidden subcommand of the `settle` binary that runs [`main`].
pub const SUBCOMMAND: &str = "__async_job";

/// How a module call becomes a background job (`Request::async_job`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncJob {
    /// `j` and a random number, chosen by the controller; the host adds `.` and the job's
    /// process id, as Ansible does (`j123456789012.4242`).
    pub jid: String,
    /// Seconds the module may run before the job is killed.
    pub limit: u64,
    /// The folder of job files, as the task gives it (`~` is the host's user's home).
    pub dir: String,
}

/// What `start` hands to `supervise`.
#[derive(Serialize, Deserialize)]
struct Launch {
    job: AsyncJob,
    /// The call itself, without its `async_job`.
    request: Request,
}

pub(crate) static STATUS_SPEC: ModuleSpec = ModuleSpec {
    name: "async_status",
    args: &["jid", "mode", "_async_dir"],
    unsupported: &[],
    free_form: false,
};

/// The folder of job files, `~` expanded for the user running this.
fn job_dir(dir: &str) -> PathBuf {
    fsutil::expand_path(Path::new(dir))
}

/// Starts `request` as a background job and answers at once, as Ansible's `async_wrapper`:
/// `started`, not `finished`, the job's id and its file.
pub(crate) fn launch(request: &Request) -> Result<Outcome, ModuleError> {
    let Some(job) = &request.async_job else {
        return Err(ModuleError::Args("no async job to start".into()));
    };
    let dir = job_dir(&job.dir);
    std::fs::create_dir_all(&dir).map_err(|e| {
        ModuleError::Failed(format!(
            "could not create directory: {} - {e}",
            dir.display()
        ))
    })?;
    let mut request = request.clone();
    request.async_job = None;
    // The task's `timeout` bounds starting the job, not the job (that is `async`'s limit).
    request.timeout = None;
    let launch = Launch {
        job: AsyncJob {
            dir: dir.display().to_string(),
            ..job.clone()
        },
        request,
    };
    let exe = std::env::current_exe()
        .map_err(|e| ModuleError::io("find this executable to start the job", e))?;
    let mut starter = Command::new(exe)
        .args([SUBCOMMAND, "start"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ModuleError::io("start the async job", e))?;
    if let Some(mut stdin) = starter.stdin.take() {
        serde_json::to_writer(&mut stdin, &launch)
            .map_err(|e| ModuleError::Failed(format!("start the async job: {e}")))?;
    }
    let mut line = String::new();
    if let Some(stdout) = starter.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let _ = starter.wait();
    let started: Map<String, Value> = serde_json::from_str(&line).map_err(|_| {
        ModuleError::Failed(format!(
            "the async job did not start (it said {:?})",
            line.trim()
        ))
    })?;
    if started.get("failed") == Some(&Value::Bool(true)) {
        let msg = started.get("msg").and_then(Value::as_str).unwrap_or("");
        return Err(ModuleError::Failed(msg.to_string()));
    }
    let mut values = Map::new();
    for key in ["ansible_job_id", "results_file"] {
        values.insert(key.into(), started.get(key).cloned().unwrap_or_default());
    }
    values.insert("started".into(), true.into());
    values.insert("finished".into(), false.into());
    // Ansible reports the start of a job as a change, whatever the module will do.
    Ok(Outcome {
        changed: true,
        values,
        ..Outcome::default()
    })
}

/// `settle __async_job start|supervise`, with the [`Launch`] on standard input.
pub fn main(stage: &str) -> i32 {
    // SAFETY: setting signal dispositions before any thread is started. The job must not end
    // with the connection (SIGHUP) or with the reader of its first line (SIGPIPE).
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return 2;
    }
    let launch: Launch = match serde_json::from_str(&input) {
        Ok(l) => l,
        Err(e) => {
            say(&json!({"failed": true, "msg": format!("async job: cannot read the call: {e}")}));
            return 2;
        }
    };
    match stage {
        "start" => start(&launch),
        "supervise" => supervise(launch),
        _ => 2,
    }
}

/// One line of JSON on standard output.
fn say(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn start(launch: &Launch) -> i32 {
    let fail = |msg: String| {
        say(&json!({"failed": true, "msg": msg}));
        1
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("async job: cannot find this executable: {e}")),
    };
    let mut command = Command::new(exe);
    command
        .args([SUBCOMMAND, "supervise"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; it only detaches the child from our session.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut supervisor = match command.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("async job: cannot start its supervisor: {e}")),
    };
    if let Some(mut stdin) = supervisor.stdin.take() {
        let _ = serde_json::to_writer(&mut stdin, launch);
    }
    let mut line = String::new();
    if let Some(stdout) = supervisor.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    if line.trim().is_empty() {
        return fail("async job: its supervisor ended before starting it".into());
    }
    print!("{line}");
    let _ = std::io::stdout().flush();
    // Not waited for: the supervisor goes on alone once this process is gone.
    0
}

fn supervise(launch: Launch) -> i32 {
    let jid = format!("{}.{}", launch.job.jid, std::process::id());
    let path = Path::new(&launch.job.dir).join(&jid);
    if let Err(e) = write_job(
        &path,
        &json!({"started": true, "finished": false, "ansible_job_id": jid}),
    ) {
        say(&json!({"failed": true, "msg": e.to_string()}));
        return 1;
    }
    say(&json!({"ansible_job_id": jid, "results_file": path.display().to_string()}));
    detach_stdio();
    let request = launch.request;
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(crate::run(&request));
    });
    let result = match finished.recv_timeout(Duration::from_secs(launch.job.limit)) {
        Ok(outcome) => result_of(outcome),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            json!({"failed": true, "msg": "the module ended without a result"})
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let children = kill_session();
            let mut result = json!({"msg": "Timeout exceeded", "failed": true});
            if let Some(pid) = children.first() {
                result["child_pid"] = (*pid).into();
            }
            result
        }
    };
    match write_job(&path, &result) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Standard input and output on /dev/null: the starter has read its line and gone.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto the standard descriptors of this process; `null` outlives the calls.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// Kills every other process of this session (the supervisor leads it): whatever the module
/// started, in whatever process group. Returns their ids.
fn kill_session() -> Vec<i32> {
    // SAFETY: getpid and getsid(0) only read this process's ids.
    let (me, session) = unsafe { (libc::getpid(), libc::getsid(0)) };
    let mut killed = Vec::new();
    // Only in a session of our own: never anyone else's processes.
    if session != me {
        return killed;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return killed;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command's closing parenthesis: state, ppid, pgrp, session.
        let sid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(3))
            .and_then(|s| s.parse::<i32>().ok());
        if sid == Some(session) {
            // SAFETY: kill only sends a signal.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed.push(pid);
        }
    }
    killed.sort_unstable();
    killed
}

/// A module's outcome as Ansible's modules return it, and so as the job file keeps it.
fn result_of(mut outcome: Outcome) -> Value {
    let mut result = std::mem::take(&mut outcome.values);
    // What an Ansible module printed on standard error, kept as Ansible's async wrapper does.
    if let Some(stderr) = result.remove(crate::ansible_module::STDERR_KEY)
        && stderr.as_str().is_some_and(|s| !s.is_empty())
    {
        result.entry("stderr").or_insert(stderr);
    }
    outcome.status_into(&mut result);
    Value::Object(result)
}

fn write_job(path: &Path, value: &Value) -> Result<(), ModuleError> {
    fsutil::atomic_write(path, value.to_string().as_bytes(), 0o600, None, None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    jid: String,
    #[serde(default = "status_mode")]
    mode: String,
    #[serde(rename = "_async_dir", default = "default_dir")]
    async_dir: String,
}

fn status_mode() -> String {
    "status".into()
}

fn default_dir() -> String {
    "~/.ansible_async".into()
}

/// `async_status`: a job's file as Ansible's module reads it (`mode: status`), or removed
/// (`mode: cleanup`).
pub(crate) fn status(request: &Request) -> Result<Outcome, ModuleError> {
    let args: StatusArgs = parse_args("async_status", &request.args)?;
    if !matches!(args.mode.as_str(), "status" | "cleanup") {
        return Err(ModuleError::Args(format!(
            "value of mode must be one of: cleanup, status, got: {}",
            args.mode
        )));
    }
    let path = job_dir(&args.async_dir).join(&args.jid);
    let shown = path.display().to_string();
    let mut values = Map::new();
    values.insert("ansible_job_id".into(), args.jid.clone().into());
    // Where the job is (or was), in every answer, as Ansible's action adds it.
    let place = if args.mode == "cleanup" {
        "erased"
    } else {
        "results_file"
    };
    values.insert(place.into(), shown.clone().into());
    if !path.exists() {
        values.insert("started".into(), true.into());
        values.insert("finished".into(), true.into());
        return Ok(Outcome {
            values,
            ..Outcome::failed("could not find job")
        });
    }
    if args.mode == "cleanup" {
        std::fs::remove_file(&path).map_err(|e| ModuleError::io(format!("remove {shown}"), e))?;
        return Ok(Outcome {
            values,
            ..Outcome::default()
        });
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let data = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(data)) => data,
        _ if text.is_empty() => {
            // Not written yet: the job is running.
            values.insert("started".into(), true.into());
            values.insert("finished".into(), false.into());
            return Ok(Outcome {
                values,
                ..Outcome::default()
            });
        }
        _ => {
            values.insert("started".into(), true.into());
            values.insert("finished".into(), true.into());
            return Ok(Outcome {
                values,
                ..Outcome::failed(format!("Could not parse job output: {text}"))
            });
        }
    };
    let mut data = data;
    data.insert("results_file".into(), shown.into());
    if !data.contains_key("started") {
        // The module's own result: the job is over.
        data.insert("finished".into(), true.into());
        data.insert("ansible_job_id".into(), args.jid.into());
    } else if !data.contains_key("finished") {
        data.insert("finished".into(), false.into());
    }
    Ok(outcome_of(data))
}

/// The job file's result back as an outcome, `changed`, `failed`, `skipped` and `msg` in their
/// places, so that the engine shapes it as any module's.
fn outcome_of(mut data: Map<String, Value>) -> Outcome {
    let flag = |data: &mut Map<String, Value>, key: &str| {
        data.remove(key)
            .is_some_and(|v| v.as_bool().unwrap_or(false))
    };
    let changed = flag(&mut data, "changed");
    let failed = flag(&mut data, "failed");
    let skipped = flag(&mut data, "skipped");
    let msg = match data.remove("msg") {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            data.insert("msg".into(), other);
            None
        }
        None => None,
    };
    Outcome {
        changed,
        failed,
        skipped,
        msg,
        values: data,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(dir: &Path, jid: &str, mode: &str) -> Outcome {
        let args = json!({"jid": jid, "mode": mode, "_async_dir": dir});
        status(&Request::new(
            "async_status",
            args.as_object().cloned().unwrap(),
        ))
        .unwrap()
    }

    #[test]
    fn a_running_job_is_started_not_finished() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("j1.2"),
            r#"{"started": true, "finished": false, "ansible_job_id": "j1.2"}"#,
        )
        .unwrap();
        let out = status_of(dir.path(), "j1.2", "status");
        assert!(!out.failed && !out.changed);
        assert_eq!(out.values["finished"], false);
        assert_eq!(out.values["started"], true);
    }

    #[test]
    fn a_finished_job_is_the_modules_result_with_its_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("j1.2"),
            r#"{"changed": true, "failed": false, "rc": 0, "msg": ""}"#,
        )
        .unwrap();
        let out = status_of(dir.path(), "j1.2", "status");
        assert!(out.changed && !out.failed);
        assert_eq!(out.values["finished"], true);
        assert_eq!(out.values["ansible_job_id"], "j1.2");
        assert_eq!(out.values["rc"], 0);
        assert_eq!(out.msg.as_deref(), Some(""));
    }

    #[test]
    fn an_unknown_job_fails_and_cleanup_erases_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = status_of(dir.path(), "j9.9", "status");
        assert!(out.failed);
        assert_eq!(out.msg.as_deref(), Some("could not find job"));
        std::fs::write(dir.path().join("j1.2"), "{}").unwrap();
        let out = status_of(dir.path(), "j1.2", "cleanup");
        assert!(!out.failed);
        assert!(!dir.path().join("j1.2").exists());
        assert_eq!(
            out.values["erased"],
            dir.path().join("j1.2").display().to_string()
        );
    }

    #[test]
    fn an_unreadable_job_file_fails_as_finished() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("j1.2"), "{\"rc\": ").unwrap();
        let out = status_of(dir.path(), "j1.2", "status");
        assert!(out.failed);
        assert_eq!(out.values["finished"], true);
    }
}
