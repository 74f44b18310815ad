//! The steps that are not module tasks: fact gathering and `meta:` actions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};
use settle_modules::Request;
use settle_playbooks::Task;
use std::sync::Arc;

use super::delegate::target_of;
use super::{FACTS, PlayRun, StepOutcome, bool_of};
use crate::Unpoisoned;
use crate::actions::gather::{facts_modules, is_setup, merge_facts, short_module_name};
use crate::actions::host_python;
use crate::connection::ConnectionError;
use crate::fact_cache::Gathering;
use crate::hosts::HostState;
use crate::output::Status;
use crate::template::{Layer, Scope, templar};

impl PlayRun<'_> {
    pub(super) fn gather_facts(&self, host: &str) -> StepOutcome {
        let state = self.engine.hosts.get(host);
        // `gathering: smart` leaves hosts whose facts were gathered before alone.
        if !Gathering::from_env().gathers_on(state.facts().gathered()) {
            return StepOutcome::Ok;
        }
        let scope = self.engine.hosts.scope_of(host);
        let remote_user = match super::delegate::remote_user_of(
            self.play.keywords.remote_user.as_deref(),
            &scope,
        ) {
            Ok(u) => u,
            Err(e) => return self.report_failure(host, FACTS, &e),
        };
        let target = match target_of(
            &scope,
            self.engine.opts,
            &self.play.keywords.connection,
            remote_user,
        ) {
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
        // The play's module_defaults for gather_facts, then for setup, fill in what the play's
        // own gather_subset/gather_timeout/fact_path leave out, as for a gather_facts task.
        for name in ["gather_facts", "setup"] {
            let mut defaults = None;
            for level in &self.play.keywords.module_defaults {
                for (module, values) in level {
                    if settle_playbooks::short_module_name(module) == name {
                        defaults = Some(values);
                    }
                }
            }
            let Some(Value::Object(defaults)) = defaults else {
                continue;
            };
            for (key, value) in defaults {
                let known = matches!(
                    key.as_str(),
                    "gather_subset" | "filter" | "fact_path" | "gather_timeout"
                );
                if !known || args.contains_key(key) {
                    continue;
                }
                match templar().render(value, &scope) {
                    Ok(v) => {
                        args.insert(key.clone(), v);
                    }
                    Err(e) => return self.report_failure(host, FACTS, &e.to_string()),
                }
            }
        }
        let modules = match facts_modules(&scope) {
            Ok(modules) => modules,
            Err(e) => return self.report_failure(host, FACTS, &e),
        };
        // A Python connection plugin's host gathers through ansible-core, as a setup task.
        let python_connection = crate::ansible_modules::action::connection_plugin(
            &target.transport,
            None,
            &self.play.dir,
        );
        if modules.iter().any(|m| !is_setup(m)) || python_connection.is_some() {
            return self.gather_with_modules(host, &state, &scope, &modules, &args);
        }
        if let Some(python) = host_python(&scope) {
            args.insert("_settle_python".into(), python.into());
        }
        // What Ansible's failed setup shows as its `invocation`: its defaults, then the play's.
        let mut invocation = json!({"fact_path": "/etc/ansible/facts.d", "filter": [],
            "gather_subset": ["all"], "gather_timeout": 10});
        for (key, value) in args.iter().filter(|(k, _)| !k.starts_with('_')) {
            let value = match (key.as_str(), value) {
                ("gather_subset" | "filter", Value::String(s)) => {
                    json!(s.split(',').map(str::trim).collect::<Vec<_>>())
                }
                ("gather_timeout", Value::String(s)) => {
                    s.trim().parse::<i64>().map_or(value.clone(), Value::from)
                }
                _ => value.clone(),
            };
            invocation[key] = value;
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
            Ok(mut outcome) if !outcome.failed => {
                // Taken, not copied: at a thousand hosts gathering at once, every copy of the
                // parsed facts (60 KB a host) is held a thousand times.
                let facts = match outcome.values.remove("ansible_facts") {
                    Some(Value::Object(facts)) => facts,
                    _ => Map::new(),
                };
                drop(outcome);
                self.gathered(host, &state, facts)
            }
            // Ansible gathers with its `gather_facts` action even for `setup` alone: the
            // module's failure is the action's, under the name `smart` resolves to.
            Ok(outcome) => {
                let mut result = outcome.values.clone();
                result.insert("failed".into(), true.into());
                result.insert("invocation".into(), json!({"module_args": invocation}));
                result.insert(
                    "msg".into(),
                    outcome
                        .msg
                        .as_deref()
                        .unwrap_or("fact gathering failed")
                        .into(),
                );
                let failed =
                    Map::from_iter([("ansible.legacy.setup".to_string(), Value::Object(result))]);
                self.report_gather_failure(host, Map::new(), failed)
            }
            Err(ConnectionError::Unreachable(msg)) => {
                let outcome = self.report_unreachable(host, FACTS, &msg, None);
                // The play's `ignore_unreachable` holds for its fact gathering too.
                match bool_of(
                    "ignore_unreachable",
                    self.play.keywords.ignore_unreachable.as_deref(),
                    &scope,
                ) {
                    Ok(Some(true)) => self.ignore_unreachable(host),
                    _ => outcome,
                }
            }
            Err(ConnectionError::Failed(msg)) => self.report_failure(host, FACTS, &msg),
        }
    }

    /// Files the facts gathered on a host and reports the step ok.
    fn gathered(
        &self,
        host: &str,
        state: &HostState,
        mut facts: Map<String, Value>,
    ) -> StepOutcome {
        // Ansible's gather_facts marks the facts it gathered (`smart` looks for it).
        facts.insert("_ansible_facts_gathered".into(), true.into());
        state.set_facts(&facts);
        self.engine.count(host, |s| s.ok += 1);
        self.record(host, FACTS, "ok", false, None, None, 0.0, false, None);
        self.engine.out.result(
            host,
            Status::Ok,
            None,
            &json!({"_ansible_verbose_override": true}),
            false,
        );
        StepOutcome::Ok
    }

    /// Fact gathering with the modules `ansible_facts_modules` (`FACTS_MODULES`) names, one
    /// after the other, their facts merged as Ansible merges them (dictionaries key by key,
    /// lists appended with the earlier copies of repeated items dropped).
    fn gather_with_modules(
        &self,
        host: &str,
        state: &HostState,
        scope: &Arc<Scope>,
        modules: &[String],
        options: &Map<String, Value>,
    ) -> StepOutcome {
        let mut facts = Value::Object(Map::new());
        let mut failed = Map::new();
        for module in modules {
            let mut args = options.clone();
            if !is_setup(module) {
                args.remove("gather_subset");
                args.remove("gather_timeout");
                args.remove("filter");
            }
            let task = Task {
                name: Some("Gathering Facts".into()),
                module: short_module_name(module).to_string(),
                module_as_written: module.clone(),
                args,
                keywords: Default::default(),
                location: self.play.location.clone(),
                role: None,
                listen: Vec::new(),
                include: None,
                arg_origins: Default::default(),
            };
            let outcome = self.run_here_or_delegated(host, state, &task, scope, None);
            if let Some(reason) = &outcome.unreachable {
                let outcome = self.report_unreachable(host, FACTS, reason, None);
                // The play's `ignore_unreachable` holds for its fact gathering too.
                return match bool_of(
                    "ignore_unreachable",
                    self.play.keywords.ignore_unreachable.as_deref(),
                    scope,
                ) {
                    Ok(Some(true)) => self.ignore_unreachable(host),
                    _ => outcome,
                };
            }
            if outcome.flag("failed") {
                failed.insert(module.clone(), Value::Object(outcome.result.clone()));
                continue;
            }
            if let Some(returned) = outcome.result.get("ansible_facts") {
                merge_facts(&mut facts, returned);
            }
        }
        if !failed.is_empty() {
            let facts = match facts {
                Value::Object(facts) => facts,
                _ => Map::new(),
            };
            return self.report_gather_failure(host, facts, failed);
        }
        match facts {
            Value::Object(facts) => self.gathered(host, state, facts),
            _ => self.gathered(host, state, Map::new()),
        }
    }

    /// A `meta:` task the playbook names. As Ansible's linear strategy: the actions that act
    /// per host (`noop`, `flush_handlers`, `end_host`, `end_role`, `role_complete`,
    /// `reset_connection`) show their `TASK` banner for each host, the others once; with -vv
    /// each says what it did (`META: …`), and a `when` that is false skips it with a reason.
    /// A `handler` has had its `RUNNING HANDLER` banner: no `TASK` banner then.
    pub(super) fn run_meta(
        &self,
        task: &Task,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
        handler: bool,
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
        let marker = self.engine.check_marker(&task.keywords);
        let title = format!("TASK [{}]{marker}", task.display_name());
        let no_extra = Vec::new();
        let mut outcomes = Vec::new();
        let mut flush = Vec::new();
        for (i, h) in batch.iter().enumerate() {
            if !handler && (per_host || i == 0) {
                self.engine.out.banner(&title);
                self.engine.out.task_path(&task.location);
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
            if action == "flush_handlers" && skip_reason.is_none() {
                // Ansible's flush notifies the saved handlers host by host (`NOTIFIED HANDLER`
                // lines before the host's `META:` line).
                self.notify_saved(h);
            }
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
                "end_role" => {
                    if let Some(role) = &task.role {
                        self.end_role(role, h);
                    }
                    StepOutcome::Ok
                }
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
                        self.magic.lock().unpoisoned().clear();
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
