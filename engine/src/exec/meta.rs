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
        let request = Request::new("setup", args);
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
        if action == "flush_handlers" {
            return self.flush_handlers(batch);
        }
        let no_extra = Vec::new();
        self.parallel(batch, |h| {
            let state = self.engine.hosts.get(h);
            let scope = self.scope(&state, task, extra.get(h).unwrap_or(&no_extra));
            match self.conditions_hold(&task.keywords.when, &scope) {
                Ok(true) => {}
                Ok(false) => return StepOutcome::Ok,
                Err(e) => {
                    return self.report_failure(
                        h,
                        (&task.display_name(), Some(&task.location)),
                        &e,
                    );
                }
            }
            match action {
                "end_play" | "end_batch" => {
                    self.end_play.store(true, Ordering::SeqCst);
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
                _ => StepOutcome::Ok,
            }
        })
    }
}
