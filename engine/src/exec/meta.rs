//! The steps that are not module tasks: fact gathering and `meta:` actions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};
use settle_modules::Request;
use settle_playbooks::Task;

use super::delegate::target_of;
use super::{FACTS, PlayRun, StepOutcome};
use crate::actions::host_python;
use crate::connection::ConnectionError;
use crate::output::Status;
use crate::template::{Layer, templar};

impl PlayRun<'_> {
    pub(super) fn gather_facts(&self, host: &str) -> StepOutcome {
        let state = self.engine.hosts.get(host);
        let scope = self.engine.hosts.scope_of(host);
        let target = match target_of(&scope, self.engine.opts, &self.play.keywords.connection) {
            Ok(t) => t,
            Err(e) => return self.report_failure(host, FACTS, &e),
        };
        let scope = self.fact_scope(&state);
        let mut args = Map::new();
        for (key, value) in &self.play.fact_options {
            match templar().render(value, &scope) {
                Ok(v) => {
                    args.insert(key.clone(), v);
                }
                Err(e) => return self.report_failure(host, FACTS, &e.to_string()),
            }
        }
        if let Some(python) = host_python(&scope) {
            args.insert("_settle_python".into(), python.into());
        }
        let mut request = Request::new("setup", args);
        // The play's `environment:` applies to fact gathering too.
        request.environment =
            match super::delegate::environment_of(&self.play.keywords.environment, &scope) {
                Ok(env) => env,
                Err(e) => return self.report_failure(host, FACTS, &e),
            };
        let result = state
            .connection(&target)
            .and_then(|c| c.run(&request, None));
        match result {
            Ok(outcome) if !outcome.failed => {
                if let Some(Value::Object(facts)) = outcome.values.get("ansible_facts") {
                    state.set_facts(facts);
                }
                self.engine.count(host, |s| s.ok += 1);
                self.record(host, FACTS, "ok", false, None, None, 0.0, false, None);
                self.engine
                    .out
                    .result(host, Status::Ok, None, &json!({}), false);
                StepOutcome::Ok
            }
            Ok(outcome) => self.report_failure(
                host,
                FACTS,
                outcome.msg.as_deref().unwrap_or("fact gathering failed"),
            ),
            Err(ConnectionError::Unreachable(msg)) => self.report_unreachable(host, FACTS, &msg),
            Err(ConnectionError::Failed(msg)) => self.report_failure(host, FACTS, &msg),
        }
    }

    /// A `meta:` task the playbook names. As Ansible's linear strategy: the actions that act
    /// per host (`noop`, `flush_handlers`, `end_host`, `end_role`, `role_complete`,
    /// `reset_connection`) show their `TASK` banner for each host, the others once; with -vv
    /// each says what it did (`META: …`), and a `when` that is false skips it with a reason.
    pub(super) fn run_meta(
        &self,
        task: &Task,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> Vec<(String, StepOutcome)> {
        let action = task
            .args
            .get("_raw_params")
            .and_then(Value::as_str)
            .unwrap_or("noop");
        let per_host = matches!(
            action,
            "noop"
                | "flush_handlers"
                | "end_host"
                | "end_role"
                | "role_complete"
                | "reset_connection"
        );
        let title = format!("TASK [{}]", task.display_name());
        let no_extra = Vec::new();
        let mut outcomes = Vec::new();
        let mut flush = Vec::new();
        for (i, h) in batch.iter().enumerate() {
            if per_host || i == 0 {
                self.engine.out.banner(&title);
            }
            let state = self.engine.hosts.get(h);
            let scope = self.scope(&state, task, extra.get(h).unwrap_or(&no_extra));
            let holds = match self.conditions_hold(&task.keywords.when, &scope) {
                Ok(holds) => holds,
                Err(e) => {
                    let name = task.display_name();
                    let at = (name.as_str(), Some(&task.location));
                    outcomes.push((h.clone(), self.report_failure(h, at, &e)));
                    continue;
                }
            };
            let role = task
                .role
                .as_ref()
                .map(|r| r.name.as_str())
                .unwrap_or_default();
            let (msg, skip_reason) = meta_message(action, h, role, holds);
            if per_host || i == 0 {
                let header = skip_reason.as_deref().unwrap_or(&msg);
                if self.engine.opts.verbosity >= 2 {
                    self.engine.out.print(&format!("META: {header}"));
                }
            }
            if let Some(reason) = skip_reason {
                let result = json!({"msg": msg, "skipped": true, "skip_reason": reason});
                self.engine
                    .out
                    .result(h, Status::Skipped, None, &result, false);
                outcomes.push((h.clone(), StepOutcome::Ok));
                continue;
            }
            let outcome = match action {
                "end_play" => {
                    self.end_play.store(true, Ordering::SeqCst);
                    StepOutcome::Ended
                }
                "end_batch" => {
                    self.end_batch.store(true, Ordering::SeqCst);
                    StepOutcome::Ended
                }
                "end_host" => StepOutcome::Ended,
                "clear_facts" => {
                    state.clear_facts();
                    StepOutcome::Ok
                }
                "reset_connection" => {
                    state.reset_connection();
                    StepOutcome::Ok
                }
                "clear_host_errors" => StepOutcome::ErrorsCleared,
                "refresh_inventory" if i == 0 => match self.engine.hosts.refresh_inventory() {
                    Ok(()) => {
                        self.magic.lock().expect("magic lock").clear();
                        self.forget_play_magic();
                        StepOutcome::Ok
                    }
                    Err(e) => {
                        let name = task.display_name();
                        self.report_failure(h, (name.as_str(), Some(&task.location)), &e)
                    }
                },
                "flush_handlers" => {
                    flush.push(h.clone());
                    continue;
                }
                _ => StepOutcome::Ok,
            };
            outcomes.push((h.clone(), outcome));
        }
        if !flush.is_empty() {
            outcomes.extend(self.flush_handlers(&flush));
        }
        outcomes
    }
}

/// What a meta action says it did on a host, and why it was skipped when its `when` is false:
/// Ansible's words.
fn meta_message(action: &str, host: &str, role: &str, holds: bool) -> (String, Option<String>) {
    let skipped = |rest: &str| format!("{action} conditional evaluated to False{rest}");
    let (done, skip) = match action {
        "flush_handlers" => (
            format!("triggered running handlers for {host}"),
            skipped(&format!(", not running handlers for {host}")),
        ),
        "clear_facts" => (
            "facts cleared".to_string(),
            skipped(&format!(", not clearing facts and fact cache for {host}")),
        ),
        "clear_host_errors" => (
            "cleared host errors".to_string(),
            skipped(&format!(", not clearing host error state for {host}")),
        ),
        "end_batch" => (
            "ending batch".to_string(),
            skipped(", continuing current batch"),
        ),
        "end_play" => ("ending play".to_string(), skipped(", continuing play")),
        "end_host" => (
            format!("ending play for {host}"),
            skipped(&format!(", continuing execution for {host}")),
        ),
        "end_role" => (
            format!("ending role {role} for {host}"),
            skipped(&format!("continuing role {role} for {host}")),
        ),
        "role_complete" => (format!("role_complete for {host}"), skipped("")),
        "reset_connection" => ("reset connection".to_string(), skipped("")),
        "refresh_inventory" => ("inventory successfully refreshed".to_string(), skipped("")),
        other => (other.to_string(), skipped("")),
    };
    match holds {
        true => (done, None),
        // Ansible keeps an older message beside end_host's reason.
        false if action == "end_host" => (
            format!("end_host conditional evaluated to false, continuing execution for {host}"),
            Some(skip),
        ),
        false => (action.to_string(), Some(skip)),
    }
}
