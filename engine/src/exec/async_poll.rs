//! `async` and `poll`: a task whose module runs as a background job on its host. With `poll`
//! above 0 the controller looks at the job every `poll` seconds until it finishes or `async`
//! seconds have passed, as Ansible's task executor does; with `poll: 0` the task ends at once
//! and `async_status` reads the job later.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use settle_playbooks::Task;

use super::results::ItemResult;
use super::{PlayRun, value_text};
use crate::actions::{self, ActionContext, ActionResult, AsyncTask};
use crate::template::{Scope, templar};

/// Ansible's `DEFAULT_POLL_INTERVAL`: `ANSIBLE_POLL_INTERVAL` (or `poll_interval` in
/// ansible.cfg), else 15 seconds.
fn default_poll() -> u64 {
    std::env::var("ANSIBLE_POLL_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(15)
}

/// A keyword that must be a whole number of seconds.
fn seconds(keyword: &str, value: &Value, scope: &Arc<Scope>) -> Result<i64, String> {
    let rendered = templar().render(value, scope).map_err(|e| e.message)?;
    match &rendered {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "{keyword}: {} is not a number of seconds",
            value_text(&rendered)
        )
    })
}

/// The task's `async` and `poll`, or `None` when it has no `async` (or `async: 0`).
pub(super) fn async_task(task: &Task, scope: &Arc<Scope>) -> Result<Option<AsyncTask>, String> {
    let Some(value) = &task.keywords.async_ else {
        return Ok(None);
    };
    let limit = seconds("async", value, scope)?;
    if limit <= 0 {
        return Ok(None);
    }
    let poll = match &task.keywords.poll {
        Some(v) => seconds("poll", v, scope)?.max(0) as u64,
        None => default_poll(),
    };
    Ok(Some(AsyncTask {
        limit: limit as u64,
        poll,
        dir: actions::async_dir(scope)?,
    }))
}

fn python_bool(value: Option<&Value>) -> &'static str {
    if value.is_some_and(crate::template::json_truthy) {
        "True"
    } else {
        "False"
    }
}

impl PlayRun<'_> {
    /// Waits for the job an `async` task started: looks every `poll` seconds until the job is
    /// finished (or failed, or skipped) or `async` seconds have passed, then removes its file.
    /// The task's result is the job's (the module's result with `ansible_job_id`, `finished`,
    /// `results_file` …), or a failure saying the job did not complete in time.
    pub(super) fn poll_job(
        &self,
        host: &str,
        started: ItemResult,
        job: &AsyncTask,
        ctx: &ActionContext,
    ) -> ItemResult {
        let Some(jid) = started
            .result
            .get("ansible_job_id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return ItemResult::failed("No job id was returned by the async task");
        };
        let poll = job.poll.max(1);
        let mut time_left = job.limit as i64;
        let mut last = None;
        while time_left > 0 {
            std::thread::sleep(Duration::from_secs(poll));
            time_left -= poll as i64;
            // A poll the connection loses is tried again while there is time, as in Ansible.
            let ActionResult::Done(result, plan) =
                actions::job_status(ctx, &jid, "status", &job.dir)
            else {
                continue;
            };
            let status = ItemResult {
                result,
                plan,
                unreachable: None,
                meta: None,
            };
            if status.flag("finished") || status.flag("failed") || status.flag("skipped") {
                last = Some(status);
                break;
            }
            self.engine.out.print(&format!(
                "ASYNC POLL on {host}: jid={jid} started={} finished={}",
                python_bool(status.result.get("started")),
                python_bool(status.result.get("finished")),
            ));
            last = Some(status);
        }
        // A job the host's supervisor ended at its limit did not complete either: the same
        // message whichever of the two saw the time run out first (its file stays, for
        // async_status).
        let done = last.as_ref().is_some_and(|s| {
            s.flag("finished")
                && s.result.get("msg").and_then(Value::as_str) != Some("Timeout exceeded")
        });
        let item = match last {
            Some(status) if done => {
                // The job's file goes once its result is read.
                let _ = actions::job_status(ctx, &jid, "cleanup", &job.dir);
                status
            }
            last => {
                let mut failed = ItemResult::failed(format!(
                    "async task did not complete within the requested time - {}s",
                    job.limit
                ));
                let async_result = last
                    .map(|s| Value::Object(s.result))
                    .unwrap_or_else(|| json!({"ansible_job_id": jid}));
                failed.result.insert("async_result".into(), async_result);
                failed
            }
        };
        let verdict = if item.flag("failed") { "FAILED" } else { "OK" };
        self.engine
            .out
            .print(&format!("ASYNC {verdict} on {host}: jid={jid}"));
        item
    }
}
