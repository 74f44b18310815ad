//! A task's result once it is made: registered, notified, counted in the recap, recorded for
//! reports and printed as Ansible prints it.

use std::time::Instant;

use serde_json::{Map, Value, json};
use settle_playbooks::{Location, Task};

use super::{PlayRun, StepOutcome, value_text};
use crate::Unpoisoned;
use crate::actions::{self};
use crate::hosts::HostState;
use crate::output::{Status, strip_internal_keys};
use crate::report::Record;
use crate::template::json_truthy;

/// What `no_log` shows instead of a result.
pub(super) const CENSORED: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// What Ansible 2.19 registers as the `exception` of a failure that raised none.
pub(super) use crate::output::NO_TRACEBACK;
/// Marks a result of a task that shows its diff (the `diff` keyword, else `--diff`).
pub(super) const SHOW_DIFF: &str = "_settle_show_diff";
/// Marks a result whose failure came from `failed_when` or `until`, not from its module:
/// Ansible calls that an action's failure.
pub(super) const ACTION_FAILED: &str = "_settle_action_failed";

/// An unreachable host's message as Ansible 2.19 words it in results: the task's failure.
pub(super) fn task_failed(msg: &str) -> String {
    match msg.starts_with("Task failed: ") {
        true => msg.to_string(),
        false => format!("Task failed: {msg}"),
    }
}

/// An unreachable result under no_log, as Ansible's callback shows it: censored, and so is
/// each of a loop's items.
pub(super) fn censored_unreachable(result: &Map<String, Value>) -> Value {
    let mut shown = Map::new();
    shown.insert("censored".into(), CENSORED.into());
    shown.insert("changed".into(), false.into());
    if let Some(Value::Array(items)) = result.get("results") {
        let items = items
            .iter()
            .map(|_| json!({"censored": CENSORED, "changed": false, "exception": NO_TRACEBACK}))
            .collect();
        shown.insert("results".into(), Value::Array(items));
    }
    Value::Object(shown)
}

/// A registered failure has an `exception` (Ansible 2.19 gives every failed result one, so
/// `result.exception is defined` holds), and so has each failed item of a loop.
pub(super) fn add_exception(result: &mut Map<String, Value>) {
    if result.get("failed").is_some_and(json_truthy)
        || result.get("unreachable").is_some_and(json_truthy)
    {
        result
            .entry("exception")
            .or_insert_with(|| NO_TRACEBACK.into());
    }
    if let Some(Value::Array(items)) = result.get_mut("results") {
        for item in items {
            if let Value::Object(item) = item {
                add_exception(item);
            }
        }
    }
}

/// The file of Ansible's module that made a result (or an item of a loop's), if one did.
fn ansible_module_of(result: &Map<String, Value>) -> Option<String> {
    let here = result.get(actions::ANSIBLE_MODULE_KEY).map(value_text);
    here.or_else(|| match result.get("results") {
        Some(Value::Array(items)) => items
            .iter()
            .find_map(|item| item.get(actions::ANSIBLE_MODULE_KEY).map(value_text)),
        _ => None,
    })
}

/// Whether a result counts as failed, as Ansible's `TaskResult.is_failed`: `failed_when`'s
/// verdict, where there is one (here or in any item of a loop), outranks `failed`, so a task
/// whose `until` ran out still passes when its `failed_when` says so.
pub(super) fn is_failed(result: &Map<String, Value>) -> bool {
    let items = || match result.get("results") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    let key = if result.contains_key("failed_when_result")
        || items()
            .iter()
            .any(|i| i.get("failed_when_result").is_some())
    {
        "failed_when_result"
    } else {
        "failed"
    };
    match result.get(key) {
        Some(v) => json_truthy(v),
        None => items().iter().any(|i| i.get(key).is_some_and(json_truthy)),
    }
}

/// The registered result of `set_fact` or `include_vars` as Ansible 2.19 keeps it: the
/// values a person wrote keep their trust (`TrustedAsTemplate`; include_vars' templates still
/// render when read), everything the task computed is wrapped to render as itself, so it stays
/// untrusted text. `None` for other tasks, loops and failures: those results are plain data.
fn trusted_result(task: &Task, result: &Map<String, Value>) -> Option<Map<String, Value>> {
    if !matches!(task.module.as_str(), "set_fact" | "include_vars")
        || result.contains_key("results")
        || result.get("failed").is_some_and(json_truthy)
    {
        return None;
    }
    let mut trusted = Map::new();
    for (key, value) in result {
        let kept = match (key.as_str(), value) {
            ("ansible_facts", Value::Object(facts)) if task.module == "include_vars" => {
                Value::Object(facts.clone())
            }
            ("ansible_facts", Value::Object(facts)) => Value::Object(
                facts
                    .iter()
                    .map(|(k, v)| {
                        let v = match written_as_is(task, k, v) {
                            true => v.clone(),
                            false => crate::template::untrusted(v),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            _ => crate::template::untrusted(value),
        };
        trusted.insert(key.clone(), kept);
    }
    Some(trusted)
}

/// A loop's registered result as Ansible 2.19 keeps it: what the task returned is untrusted
/// text, but each result's loop variable is the item itself, with the item's own trust (so
/// `that: "{{ item.item.checks }}"` over the results evaluates the checks as written).
fn loop_result_with_trust(registered: &Map<String, Value>, kept: Vec<Value>) -> Value {
    let mut trusted = crate::template::untrusted(&Value::Object(registered.clone()));
    let plain = registered.get("results").and_then(Value::as_array);
    if let (Some(Value::Array(results)), Some(plain)) = (trusted.get_mut("results"), plain) {
        for ((result, item), original) in results.iter_mut().zip(kept).zip(plain) {
            let loop_var = original
                .get("ansible_loop_var")
                .and_then(Value::as_str)
                .unwrap_or("item");
            if let Value::Object(map) = result
                && map.contains_key(loop_var)
            {
                map.insert(loop_var.to_string(), item);
            }
        }
    }
    trusted
}

/// Whether a `set_fact` value is its argument as written (no template in it, so the
/// rendered value is the written one).
fn written_as_is(task: &Task, key: &str, value: &Value) -> bool {
    let plain = |written: &Value| !crate::template::needs_render(written) && written == value;
    match task.args.get(key) {
        Some(written) => plain(written),
        // A templated name (`"x_{{ i }}": 1`): the value as written under such a name.
        None => task
            .args
            .iter()
            .any(|(k, written)| crate::template::is_template(k) && plain(written)),
    }
}

/// A task's result while it is being made.
pub(super) struct ItemResult {
    pub(super) result: Map<String, Value>,
    pub(super) plan: settle_modules::Plan,
    pub(super) unreachable: Option<String>,
    pub(super) meta: Option<String>,
}

impl ItemResult {
    pub(super) fn failed(msg: impl Into<String>) -> Self {
        ItemResult {
            result: json!({"changed": false, "failed": true, "msg": msg.into()})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            plan: settle_modules::Plan::default(),
            unreachable: None,
            meta: None,
        }
    }

    pub(super) fn flag(&self, key: &str) -> bool {
        self.result.get(key).is_some_and(json_truthy)
    }

    pub(super) fn status(&self) -> Status {
        if self.unreachable.is_some() {
            Status::Unreachable
        } else if is_failed(&self.result) {
            Status::Failed
        } else if self.flag("skipped") {
            Status::Skipped
        } else if self.flag("changed") {
            Status::Changed
        } else {
            Status::Ok
        }
    }
}

impl PlayRun<'_> {
    /// Adds a host × task result to the run's record (for reports, drift and the summary).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        host: &str,
        (task, location): (&str, Option<&Location>),
        status: &str,
        changed: bool,
        diff: Option<String>,
        msg: Option<&str>,
        duration: f64,
        handler: bool,
        ansible_module: Option<String>,
    ) {
        let record = Record {
            play: self.play.name.clone(),
            task: task.to_string(),
            location: location.map(ToString::to_string),
            host: host.to_string(),
            status: status.to_string(),
            changed,
            skipped_in_check_mode: status == "skipped"
                && msg == Some("Command would have run if not in check mode"),
            handler,
            diff,
            msg: msg.map(str::to_string),
            duration_seconds: duration,
            ansible_module,
        };
        self.engine
            .out
            .event(&json!({"event": "task_result", "result": &record}));
        self.engine.records.lock().unpoisoned().push(record);
    }

    pub(super) fn report_failure(
        &self,
        host: &str,
        task: (&str, Option<&Location>),
        msg: &str,
    ) -> StepOutcome {
        self.report_failure_after(host, task, msg, 0.0, false)
    }

    /// A task that failed before its module ran (a template, a condition), after `seconds`.
    pub(super) fn report_failure_after(
        &self,
        host: &str,
        task: (&str, Option<&Location>),
        msg: &str,
        seconds: f64,
        handler: bool,
    ) -> StepOutcome {
        self.record(
            host,
            task,
            "failed",
            false,
            None,
            Some(msg),
            seconds,
            handler,
            None,
        );
        self.engine.out.result(
            host,
            Status::Failed,
            None,
            &json!({"changed": false, "msg": msg}),
            false,
        );
        StepOutcome::Failed { counted: false }
    }

    /// Fact gathering whose modules failed, as Ansible's `gather_facts` action reports it: an
    /// action's failure naming the modules, each module's failure a sub-event of it, and the
    /// result with the facts the others gathered and each failed module's own result.
    pub(super) fn report_gather_failure(
        &self,
        host: &str,
        facts: Map<String, Value>,
        failed: Map<String, Value>,
    ) -> StepOutcome {
        let names: Vec<&str> = failed.keys().map(String::as_str).collect();
        let msg = format!(
            "The following modules failed to execute: {}.",
            names.join(", ")
        );
        self.record(
            host,
            super::FACTS,
            "failed",
            false,
            None,
            Some(&msg),
            0.0,
            false,
            None,
        );
        let events = actions::gather::failure_events(&failed);
        let traceback = actions::gather::failed_modules_traceback(&failed);
        self.engine.out.host_banner(host);
        self.engine
            .out
            .task_error_events(&msg, None, &events, traceback.as_deref());
        let failed: Map<String, Value> = failed
            .into_iter()
            .map(|(module, mut result)| {
                if let Value::Object(r) = &mut result {
                    r.retain(|k, _| !k.starts_with('_'));
                    add_exception(r);
                }
                (module, result)
            })
            .collect();
        let mut facts = Value::Object(facts);
        strip_internal_keys(&mut facts);
        let shown = json!({
            "ansible_facts": facts,
            "changed": false,
            "failed_modules": failed,
            "msg": msg,
        });
        self.engine
            .out
            .result(host, Status::Failed, None, &shown, false);
        StepOutcome::Failed { counted: false }
    }

    pub(super) fn report_unreachable(
        &self,
        host: &str,
        task: (&str, Option<&Location>),
        msg: &str,
        shown: Option<&Value>,
    ) -> StepOutcome {
        self.record(
            host,
            task,
            "unreachable",
            false,
            None,
            Some(msg),
            0.0,
            false,
            None,
        );
        self.engine.count(host, |s| s.unreachable += 1);
        // Ansible's `[ERROR]` block, but not for a loop (its items had theirs).
        let looped = shown.is_some_and(|s| s.get("results").is_some());
        if !looped {
            self.engine.out.host_banner(host);
            self.engine
                .out
                .task_error("", msg.trim_start_matches("Task failed: "), task.1);
        }
        let plain = json!({"changed": false, "msg": task_failed(msg), "unreachable": true});
        self.engine.out.result(
            host,
            Status::Unreachable,
            None,
            shown.unwrap_or(&plain),
            false,
        );
        StepOutcome::Unreachable
    }

    /// Registers, notifies, counts and prints a task's result.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        &self,
        host: &str,
        task: &Task,
        state: &HostState,
        mut result: Map<String, Value>,
        plan: Option<settle_modules::Plan>,
        no_log: bool,
        ignore_errors: bool,
        (handler, started): (bool, Instant),
    ) -> StepOutcome {
        let kept_items = result.remove(super::loops::KEPT_ITEMS);
        // An action may ask for its own result to be hidden, as Ansible's honour.
        let no_log = no_log || result.get("_ansible_no_log").is_some_and(json_truthy);
        let cacheable = result
            .get("_ansible_facts_cacheable")
            .is_some_and(json_truthy);
        let facts_host = result
            .get(super::delegate::DELEGATED_FACTS_HOST)
            .and_then(Value::as_str)
            .map(|to| self.engine.hosts.get(to));
        let facts_state = facts_host.as_deref().unwrap_or(state);
        // Facts a module returns become the host's facts (the delegate's with `delegate_facts`) (set_fact and include_vars have set
        // their variables already; `set_fact: cacheable: true` makes them facts as well).
        // `debug: var=ansible_facts` shows facts, it does not set them.
        if let Some(Value::Object(facts)) = result.get("ansible_facts")
            && (cacheable || !matches!(task.module.as_str(), "set_fact" | "include_vars"))
            && task.module != "debug"
            && !result.get("failed").is_some_and(json_truthy)
        {
            facts_state.set_facts(facts);
        }
        // The result is held once: shown first, then moved into the registered variable (a
        // command's captured output can be megabytes).
        let mut item = ItemResult {
            result,
            plan: plan.unwrap_or_default(),
            unreachable: None,
            meta: None,
        };
        let status = item.status();
        let is_loop = task.keywords.loop_.is_some() && item.result.contains_key("results");
        if status == Status::Changed && !task.keywords.notify.is_empty() {
            let names = self.notify_names(task, state);
            if let Err(message) = self.check_notifications(&names) {
                self.engine.abort_run(&message, None, 1);
                return StepOutcome::Ended;
            }
            if handler || super::handlers::running_handlers() {
                self.notify_now(host, &names);
            } else {
                // Each result that carries the notifications says so: every item of a loop
                // that ran (one its `when` skipped carries none).
                let results = match item.result.get("results") {
                    Some(Value::Array(items)) if is_loop => items
                        .iter()
                        .filter(|i| !i.get("skipped").is_some_and(json_truthy))
                        .count(),
                    _ => 1,
                };
                self.save_notifications(host, &names, results);
            }
        }
        let ignored = status == Status::Failed && ignore_errors;
        if !handler && matches!(status, Status::Ok | Status::Changed | Status::Failed) {
            self.note_role_task(task.role.as_ref(), host);
        }
        // What a `rescue` section reads about the failure it handles.
        if status == Status::Failed && !ignored {
            state.set_task_var(
                "ansible_failed_task",
                json!({"name": task.name.clone().unwrap_or_else(|| task.module_as_written.clone()),
                       "action": task.module_as_written,
                       "args": Value::Object(task.args.clone())}),
            );
            let mut failed = item.result.clone();
            failed.retain(|k, _| !crate::output::is_internal_key(k));
            state.set_task_var("ansible_failed_result", Value::Object(failed));
        }
        self.engine.count(host, |s| match status {
            Status::Ok => s.ok += 1,
            Status::Changed => {
                s.ok += 1;
                s.changed += 1;
            }
            Status::Skipped => s.skipped += 1,
            Status::Failed if ignored => {
                s.ok += 1;
                s.ignored += 1;
                if item.flag("changed") {
                    s.changed += 1;
                }
            }
            Status::Failed | Status::Unreachable => {}
        });
        let word = match status {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipped",
            Status::Failed if ignored => "ignored",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        };
        let diff =
            (!no_log && !item.plan.changes.is_empty()).then(|| actions::diff_text(&item.plan));
        let msg = item.result.get("msg").map(value_text);
        let msg = if no_log { None } else { msg };
        let ansible_module = ansible_module_of(&item.result);
        self.record(
            host,
            (&task.display_name(), Some(&task.location)),
            word,
            item.flag("changed"),
            diff,
            msg.as_deref(),
            started.elapsed().as_secs_f64(),
            handler,
            ansible_module.clone(),
        );
        if let Some(path) = &ansible_module
            && self.engine.opts.verbosity >= 3
        {
            self.engine.out.print(&format!("Using module file {path}"));
        }
        if !is_loop {
            if status == Status::Failed && !item.flag("_error_shown") {
                self.show_task_error(host, task, &item, no_log);
            }
            self.print_result(host, task, &mut item, None, no_log, ignored);
        } else if status == Status::Failed && task.module == "debug" && !no_log {
            // Ansible's callback cleans a debug task's result down to its message before it
            // looks for the items, so a failed debug loop ends with the task's own line:
            // `fatal: [h]: FAILED! => {"msg": "One or more items failed"}`.
            self.print_result(host, task, &mut item, None, no_log, ignored);
        } else if ignored {
            self.engine.out.print("...ignoring");
        } else if status == Status::Skipped {
            // A loop whose items were all skipped (or that had none) ends with the task's own
            // `skipping: [h]`, its items left out, as Ansible's callback prints it.
            let results = item.result.remove("results");
            self.print_result(host, task, &mut item, None, no_log, false);
            if let Some(results) = results {
                item.result.insert("results".into(), results);
            }
        }
        if let Some(reg) = &task.keywords.register {
            let mut registered = item.result;
            // As Ansible's strategy registers it: without a module's `invocation` (its loop
            // items keep theirs).
            registered.retain(|k, _| !crate::output::is_internal_key(k) && k != "invocation");
            registered.values_mut().for_each(strip_internal_keys);
            add_exception(&mut registered);
            match trusted_result(task, &registered) {
                Some(trusted) => state.set_trusted_result(reg, Value::Object(trusted)),
                None => match kept_items {
                    Some(Value::Array(kept)) => {
                        state.set_trusted_result(reg, loop_result_with_trust(&registered, kept))
                    }
                    _ => state.set_task_var(reg, Value::Object(registered)),
                },
            }
        }
        match status {
            Status::Failed if !ignored => StepOutcome::Failed { counted: false },
            _ => StepOutcome::Ok,
        }
    }

    /// Ansible 2.19's `[ERROR]: Task failed: …` block before a failure is printed.
    pub(super) fn show_task_error(&self, host: &str, task: &Task, item: &ItemResult, no_log: bool) {
        // In a free play, the banner of the task comes first.
        self.engine.out.host_banner(host);
        let what = if actions::runs_no_module(&task.module)
            || item.flag(ACTION_FAILED)
            || item.result.contains_key(actions::ACTION_PLUGIN_KEY)
        {
            "Action failed"
        } else {
            "Module failed"
        };
        let msg = match item.result.get("msg").map(value_text) {
            // A censored result has no message: Ansible says its default sentence.
            _ if no_log => String::new(),
            Some(msg) if !msg.is_empty() => msg,
            _ => String::new(),
        };
        let out = &self.engine.out;
        let traceback = crate::output::traceback_of(&item.result);
        // A message Ansible already worded as the task's failure (an exception an action
        // raised) is shown whole.
        if let Some(whole) = msg.strip_prefix("Task failed: ") {
            out.task_error_traced("", whole, Some(&task.location), traceback);
            return;
        }
        // A `gather_facts` whose modules failed: each module's failure a sub-event.
        if let Some(Value::Object(failed)) = item.result.get("failed_modules")
            && !failed.is_empty()
            && !no_log
        {
            let events = actions::gather::failure_events(failed);
            out.task_error_events(&msg, Some(&task.location), &events, traceback);
            return;
        }
        // Without a message, Ansible's error type says its default sentence.
        let what = if msg.is_empty() {
            format!("{what}.")
        } else {
            format!("{what}: ")
        };
        out.task_error_traced(&what, &msg, Some(&task.location), traceback);
    }

    pub(super) fn print_result(
        &self,
        host: &str,
        task: &Task,
        item: &mut ItemResult,
        label: Option<&str>,
        no_log: bool,
        ignored: bool,
    ) {
        let status = item.status();
        let out = &self.engine.out;
        // Ansible's callback takes `changed` out of debug's results (a censored one has no
        // `msg` to keep it alone).
        let censored = match settle_playbooks::short_module_name(&task.module) {
            "debug" => json!({"censored": CENSORED}),
            _ => json!({"censored": CENSORED, "changed": item.flag("changed")}),
        };
        if item.flag(SHOW_DIFF) && !no_log && matches!(status, Status::Changed) {
            out.host_banner(host);
            // What the task registers as its diff is what Ansible's callback prints; settle's
            // own view of the plan where there is none.
            match item
                .result
                .get("diff")
                .filter(|d| crate::template::json_truthy(d))
            {
                Some(diff) => {
                    out.diff(crate::output::ansible_diff_text(diff).trim_end_matches('\n'))
                }
                None => out.diff(&actions::diff_text(&item.plan)),
            }
        }
        let host = match item.result.get("_ansible_delegated_label") {
            Some(to) => format!("{host} -> {}", value_text(to)),
            None => host.to_string(),
        };
        if status == Status::Failed && label.is_none() {
            out.task_path_on_failure(&task.location);
        }
        if no_log {
            out.result(&host, status, label, &censored, ignored);
            return;
        }
        if task.module == "debug" && matches!(status, Status::Skipped | Status::Failed) {
            let cleaned = Value::Object(debug_cleaned(&item.result));
            out.result(&host, status, label, &cleaned, ignored);
            return;
        }
        // Lent to the output as a Value and taken back, not copied.
        let shown = Value::Object(std::mem::take(&mut item.result));
        out.result(&host, status, label, &shown, ignored);
        if let Value::Object(result) = shown {
            item.result = result;
        }
    }
}

/// A debug task's result as Ansible's callback cleans it for display (`_clean_results`): its
/// message alone when it has one, else without the keys debug's output hides.
fn debug_cleaned(result: &Map<String, Value>) -> Map<String, Value> {
    const ALLOWED: [&str; 4] = ["msg", "exception", "warnings", "deprecations"];
    const HIDDEN: [&str; 8] = [
        "changed",
        "failed",
        "skipped",
        "invocation",
        "skip_reason",
        "ansible_loop_var",
        "ansible_index_var",
        "ansible_loop",
    ];
    let has_msg = result.contains_key("msg");
    let mut cleaned = result.clone();
    cleaned.retain(|k, _| match has_msg {
        true => k.starts_with('_') || ALLOWED.contains(&k.as_str()),
        false => !HIDDEN.contains(&k.as_str()),
    });
    cleaned
}

/// An unreachable host's error as a no_log task shows it: what failed, not what the
/// connection said (Ansible's `<error censored due to no log>`).
pub(super) fn censored_connection_error(msg: &str) -> String {
    const CENSORED_ERROR: &str = "<error censored due to no log>";
    let msg = msg.trim_start_matches("Task failed: ");
    match msg.strip_prefix("Failed to connect to the host via ") {
        Some(rest) => match rest.split_once(": ") {
            Some((via, _)) => format!("Failed to connect to the host via {via}: {CENSORED_ERROR}"),
            None => CENSORED_ERROR.to_string(),
        },
        None => CENSORED_ERROR.to_string(),
    }
}
