//! One task on one host: `no_log`, `ignore_errors`, `when`, the loop or the single call, the
//! action with `until`/`retries`, then `changed_when` and `failed_when`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use settle_modules::Request;
use settle_playbooks::Task;

use super::delegate::{become_of, environment_of, target_of};
use super::loops::loop_items;
use super::results::ItemResult;
use super::results::{ACTION_FAILED, SHOW_DIFF};
use super::results::{CENSORED, NO_TRACEBACK};
use super::scope::register_scope;
use super::{PlayRun, StepOutcome, bool_of, value_text};
use crate::Unpoisoned;
use crate::actions::{self, ActionContext, ActionResult};
use crate::hosts::HostState;
use crate::template::{Layer, Scope, templar};

impl PlayRun<'_> {
    /// A task skipped by its `when`: Ansible's skipped result, registered and counted.
    fn skip(
        &self,
        host: &str,
        task: &Task,
        state: &HostState,
        condition: Value,
        (no_log, ignore_errors): (bool, bool),
        timing: (bool, Instant),
    ) -> StepOutcome {
        let result = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": condition});
        self.finish(
            host,
            task,
            state,
            result.as_object().cloned().unwrap_or_default(),
            None,
            no_log,
            ignore_errors,
            timing,
        )
    }

    /// A task that failed before its module ran (a template in `loop` or `when`), its error
    /// shown: a `when` that could not be evaluated in Ansible 2.19's block with the condition's
    /// own place as the cause.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fail_early(
        &self,
        host: &str,
        task: &Task,
        state: &HostState,
        failure: impl Into<EarlyFailure>,
        no_log: bool,
        ignore_errors: bool,
        timing: (bool, Instant),
    ) -> StepOutcome {
        let out = &self.engine.out;
        let failure = failure.into();
        let msg = match &failure {
            EarlyFailure::Text(msg) => msg.clone(),
            EarlyFailure::Condition(error) => error.worded(),
        };
        out.host_banner(host);
        match failure {
            _ if no_log => out.task_error("", CENSORED, Some(&task.location)),
            EarlyFailure::Text(_) => out.task_error("", &msg, Some(&task.location)),
            EarlyFailure::Condition(error) => {
                let help = msg
                    .starts_with(crate::template::BROKEN_CONDITIONAL)
                    .then_some(
                        "Broken conditionals can be temporarily allowed with the \
                     `ALLOW_BROKEN_CONDITIONALS` configuration option.",
                    );
                out.task_error_caused(&msg, &task.location, error.origin.as_ref(), help);
            }
        }
        let msg = format!(
            "{msg} (task {:?} at {})",
            task.display_name(),
            task.location
        );
        let result = json!({"changed": false, "failed": true, "msg": msg, "_error_shown": true});
        self.finish(
            host,
            task,
            state,
            result.as_object().cloned().unwrap_or_default(),
            None,
            no_log,
            ignore_errors,
            timing,
        )
    }

    /// `no_log`, failing closed: a value that does not render, or is not a boolean, hides the
    /// output (with a warning) rather than showing what it was meant to hide.
    fn no_log(&self, task: &Task, scope: &Arc<Scope>) -> bool {
        let Some(value) = &task.keywords.no_log else {
            return default_no_log();
        };
        match templar()
            .render(value, scope)
            .map(|v| crate::template::strict_bool(&v))
        {
            Ok(Some(b)) => b,
            Ok(None) | Err(_) => {
                self.engine.out.warning(&format!(
                    "no_log of task {:?} is not a boolean; its output is hidden",
                    task.display_name()
                ));
                true
            }
        }
    }

    /// Runs one task on one host: conditions, loop, action, result handling, output.
    pub(super) fn run_task(
        &self,
        host: &str,
        task: &Task,
        extra: &[Layer],
        handler: bool,
    ) -> StepOutcome {
        // An interrupted run starts no new task.
        if crate::interrupt::interrupted() {
            return StepOutcome::Ended;
        }
        let started = Instant::now();
        CURRENT_TASK.with(|t| *t.borrow_mut() = Some(task.location.clone()));
        let state = self.engine.hosts.get(host);
        let scope = self.scope(&state, task, extra);
        let no_log = self.no_log(task, &scope);
        let ignore_errors = match bool_of(
            "ignore_errors",
            task.keywords.ignore_errors.as_deref(),
            &scope,
        ) {
            Ok(v) => v.unwrap_or(false),
            Err(e) => {
                return self.fail_early(host, task, &state, e, no_log, false, (handler, started));
            }
        };
        // An error before the module runs (loop, when) fails the task like any other failure:
        // registered, censored under no_log, and ignored with ignore_errors.
        let fail = |msg: String| {
            self.fail_early(
                host,
                task,
                &state,
                msg,
                no_log,
                ignore_errors,
                (handler, started),
            )
        };
        // A module named by a template (`action: {module: '{{ m }}'}`) is known per host.
        let resolved = match resolve_module(task, &scope) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let aliased = resolve_alias(resolved.as_ref(), &self.play.dir);
        let with_defaults = with_module_defaults(aliased.as_ref(), &scope, &self.play.dir);
        for warning in crate::ansible_modules::action_groups::take_warnings() {
            self.engine.out.warning_once(&warning);
        }
        let with_defaults = match with_defaults {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let task = with_defaults.as_ref();
        // Arguments the module does not take fail the task here, as in Ansible.
        if let Err(e) = actions::validate(task, &self.play.dir) {
            return fail(e);
        }
        // Ansible resolves delegate_to before `when`: an empty host name fails even a task
        // whose condition is false.
        if let Some(d) = &task.keywords.delegate_to
            && let Ok(name) = templar().render_text(&value_text(d), &scope)
            && name.trim().is_empty()
        {
            return fail(format!(
                "Empty hostname produced from delegate_to: \"{}\"",
                value_text(d)
            ));
        }
        let items = match &task.keywords.loop_ {
            None => None,
            Some(l) => match loop_items(l, &scope, &task.module_as_written) {
                Ok(items) => Some(items),
                // As Ansible: a loop that cannot be rendered fails the task only when its
                // `when` (without the loop variable) does not already skip it.
                Err(e) => match self.false_condition(&task.keywords.when, &scope) {
                    Ok(Some(cond)) => {
                        return self.skip(
                            host,
                            task,
                            &state,
                            cond,
                            (no_log, ignore_errors),
                            (handler, started),
                        );
                    }
                    _ => return fail(e),
                },
            },
        };
        let (result, plan, unreachable) = match items {
            None => {
                match self.false_condition(&task.keywords.when, &scope) {
                    Err(e) => {
                        return self.fail_early(
                            host,
                            task,
                            &state,
                            e,
                            no_log,
                            ignore_errors,
                            (handler, started),
                        );
                    }
                    Ok(Some(cond)) => {
                        self.skip(
                            host,
                            task,
                            &state,
                            cond,
                            (no_log, ignore_errors),
                            (handler, started),
                        );
                        return StepOutcome::Ok;
                    }
                    Ok(None) => {}
                }
                let item = self.run_one(host, &state, task, &scope);
                (item.result, Some(item.plan), item.unreachable)
            }
            Some(items) => self.run_loop(host, &state, task, (&scope, extra), items, no_log),
        };
        if let Some(msg) = unreachable {
            return self.unreachable_task(host, task, (&scope, no_log), result, &msg);
        }
        self.finish(
            host,
            task,
            &state,
            result,
            plan,
            no_log,
            ignore_errors,
            (handler, started),
        )
    }

    /// A task whose host could not be reached (on one of its loop's items, for a loop): the
    /// result is registered too (`result is unreachable`); with `ignore_unreachable` it is
    /// counted as ok and ignored, as Ansible counts it, and the host goes on.
    fn unreachable_task(
        &self,
        host: &str,
        task: &Task,
        (scope, no_log): (&Arc<Scope>, bool),
        mut result: Map<String, Value>,
        msg: &str,
    ) -> StepOutcome {
        result.remove(super::loops::KEPT_ITEMS);
        let ignore = match result.remove("_ansible_ignore_unreachable") {
            Some(v) => crate::template::json_truthy(&v),
            None => bool_of(
                "ignore_unreachable",
                task.keywords.ignore_unreachable.as_deref(),
                scope,
            )
            .ok()
            .flatten()
            .unwrap_or(false),
        };
        // As Ansible 2.19 words and registers it: the task's failure, with an `exception`.
        let looped = result.contains_key("results");
        if !looped {
            result = json!({"changed": false, "msg": super::results::task_failed(msg), "unreachable": true})
                .as_object()
                .cloned()
                .unwrap_or_default();
        }
        super::results::add_exception(&mut result);
        if looped {
            // Only its items have one.
            result.remove("exception");
        }
        // Printed as the callback prints it: without the exception or a loop's `skipped`, a
        // loop's items included, everything hidden under no_log.
        let mut shown = result.clone();
        shown.remove("exception");
        shown.remove("skipped");
        let shown = match no_log {
            true => super::results::censored_unreachable(&shown),
            false => Value::Object(shown),
        };
        if let Some(reg) = &task.keywords.register {
            self.engine
                .hosts
                .get(host)
                .set_task_var(reg, Value::Object(result));
        }
        let outcome = self.report_unreachable(
            host,
            (&task.display_name(), Some(&task.location)),
            msg,
            Some(&shown),
        );
        match ignore {
            true => self.ignore_unreachable(host),
            false => outcome,
        }
    }

    /// `ignore_unreachable` after an unreachable result was reported: counted as ok and
    /// ignored instead, and the host goes on.
    pub(super) fn ignore_unreachable(&self, host: &str) -> StepOutcome {
        self.engine.count(host, |s| {
            s.unreachable = s.unreachable.saturating_sub(1);
            s.ok += 1;
            s.ignored += 1;
        });
        self.engine.out.print("...ignoring");
        StepOutcome::Ok
    }

    pub(super) fn conditions_hold(
        &self,
        conditions: &[Value],
        scope: &Arc<Scope>,
    ) -> Result<bool, String> {
        conditions_hold_as("when", conditions, scope)
    }

    /// The first `when` condition that is false, for the skipped result.
    pub(super) fn false_condition(
        &self,
        conditions: &[Value],
        scope: &Arc<Scope>,
    ) -> Result<Option<Value>, ConditionError> {
        for condition in conditions {
            if !condition_holds("when", condition, scope)? {
                return Ok(Some(condition.clone()));
            }
        }
        Ok(None)
    }

    pub(super) fn run_here_or_delegated(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
        delegate: Option<&(String, Arc<Scope>)>,
    ) -> ItemResult {
        let opts = self.engine.opts;
        let check_mode = match bool_of("check_mode", task.keywords.check_mode.as_deref(), scope) {
            Ok(v) => v.unwrap_or(opts.check),
            Err(e) => return ItemResult::failed(e),
        };
        let diff = match bool_of("diff", task.keywords.diff.as_deref(), scope) {
            Ok(v) => v.unwrap_or(opts.diff),
            Err(e) => return ItemResult::failed(e),
        };
        let environment = match environment_of(&task.keywords.environment, scope) {
            Ok(e) => e,
            Err(e) => return ItemResult::failed(e),
        };
        let become_ = match become_of(task, scope, opts) {
            Ok(b) => b,
            Err(e) => return ItemResult::failed(e),
        };
        let (exec_state, exec_scope) = match delegate {
            None => (None, scope.clone()),
            Some((name, delegate_scope)) => {
                (Some(self.engine.hosts.get(name)), delegate_scope.clone())
            }
        };
        let connection = task
            .keywords
            .connection
            .clone()
            .or(self.play.keywords.connection.clone());
        let remote_user = task.keywords.remote_user.as_deref().or(self
            .play
            .keywords
            .remote_user
            .as_deref());
        // As Ansible's executor: a delegated task's connection keywords are rendered with the
        // delegate's variables and the task's (the play's, its roles' and blocks' included),
        // `inventory_hostname` still the task's host: the play's (its roles', the task's)
        // variables with the delegate's host variables, never the task's host's (a fact set on
        // the task's host is undefined there, as in Ansible's delegate_to target).
        let user_scope = match delegate {
            None => scope.clone(),
            Some((name, _)) => {
                let mut host_name = crate::Vars::new();
                host_name.insert("inventory_hostname".into(), host.into());
                self.scope(&self.engine.hosts.get(name), task, &[])
                    .with_layer_of(Layer::data(Arc::new(host_name)))
            }
        };
        let exec_user = match super::delegate::remote_user_of(remote_user, &user_scope) {
            Ok(u) => u,
            Err(e) => return ItemResult::failed(e),
        };
        let target = match target_of(&exec_scope, opts, &connection, exec_user) {
            Ok(t) => t,
            Err(e) => return ItemResult::failed(e),
        };
        // Over SSH, become has the connection's timeout and 2 seconds to succeed, as in
        // Ansible's ssh plugin (`ansible_local_become_success_timeout` is the local one's).
        let become_ = become_.map(|mut b| {
            if target.transport != "local" {
                b.timeout_secs = target.timeout_secs.saturating_add(2);
            }
            b
        });
        // The host's own target, for actions that reach it themselves (`synchronize`).
        let host_target = match delegate {
            None => target.clone(),
            Some(_) => match super::delegate::remote_user_of(remote_user, scope)
                .and_then(|user| target_of(scope, opts, &connection, user))
            {
                Ok(t) => t,
                Err(e) => return ItemResult::failed(e),
            },
        };
        let reach = actions::Reach {
            host: host_target,
            exec: target.clone(),
            delegate_to: delegate.map(|(name, _)| name.clone()),
            become_: become_.clone(),
            delegate_scope: delegate.map(|_| user_scope.clone()),
        };
        let timeout = match task_timeout(task, scope) {
            Ok(t) => t,
            Err(e) => return ItemResult::failed(e),
        };
        let async_task = match super::async_poll::async_task(task, scope) {
            Ok(a) => a,
            Err(e) => return ItemResult::failed(e),
        };
        let conn_state = exec_state.as_deref().unwrap_or(state);
        let run_module = |request: &Request| {
            let connection = conn_state.connection(&target)?;
            match timeout {
                None => connection.run(request, become_.as_ref()),
                Some(seconds) => {
                    let mut request = request.clone();
                    request.timeout = Some(seconds);
                    connection.run(&request, become_.as_ref())
                }
            }
        };
        let reset_connection = || conn_state.reset_connection();
        // `delegate_facts`: what set_fact and include_vars set belongs to the delegate.
        let facts_state = match (&exec_state, task.keywords.delegate_facts) {
            (Some(delegate), Some(true)) => &**delegate,
            _ => state,
        };
        let set_var = |k: &str, v: Value| facts_state.set_task_var(k, v);
        let set_trusted_var = |k: &str, v: Value| facts_state.set_trusted_result(k, v);
        let include_var = |k: &str, v: Value| facts_state.set_included_var(k, v);
        // A delegated task whose host sets no `ansible_host` sees the delegate's address there,
        // as Ansible's PlayContext fills it in from the connection it opens.
        let action_scope = match delegate {
            Some(_)
                if !state.inventory_vars().contains_key("ansible_host")
                    && scope
                        .get("ansible_host")
                        .ok()
                        .flatten()
                        .as_ref()
                        .map(value_text)
                        == Some(host.to_string()) =>
            {
                let mut address = crate::Vars::new();
                address.insert("ansible_host".into(), target.address.clone().into());
                scope.with_layer_of(Layer::data(Arc::new(address)))
            }
            _ => scope.clone(),
        };
        let ctx = ActionContext {
            task,
            scope: &action_scope,
            play_dir: &self.play.dir,
            check_mode,
            diff,
            verbosity: opts.verbosity,
            no_log: task
                .keywords
                .no_log
                .as_ref()
                .map_or_else(default_no_log, |v| {
                    templar()
                        .render(v, scope)
                        .ok()
                        .and_then(|v| crate::template::strict_bool(&v))
                        .unwrap_or(true)
                }),
            environment,
            run_module: &run_module,
            target: &target,
            become_: become_.as_ref(),
            reset_connection: &reset_connection,
            set_var: &set_var,
            set_trusted_var: &set_trusted_var,
            include_var: &include_var,
            async_task: async_task.as_ref(),
            reach: &reach,
        };
        let retries = match &task.keywords.retries {
            Some(v) => templar()
                .render(v, scope)
                .ok()
                .and_then(|r| {
                    r.as_u64()
                        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(3),
            None => 3,
        };
        let delay = match &task.keywords.delay {
            Some(v) => templar()
                .render(v, scope)
                .ok()
                .and_then(|r| {
                    r.as_f64()
                        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(5.0),
            None => 5.0,
        };
        // As Ansible 2.19 counts: the first attempt, then `retries` more (3 unless given);
        // `retries` without `until` retries until the task succeeds.
        let retrying = !task.keywords.until.is_empty() || task.keywords.retries.is_some();
        let attempts_allowed = if retrying {
            retries.saturating_add(1)
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut item = match actions::run(&ctx) {
                ActionResult::Done(result, plan) => ItemResult {
                    result,
                    plan,
                    unreachable: None,
                    meta: None,
                },
                ActionResult::Unreachable(msg) => ItemResult {
                    result: Map::new(),
                    plan: Default::default(),
                    unreachable: Some(msg),
                    meta: None,
                },
                ActionResult::Meta(m) => ItemResult {
                    result: Map::new(),
                    plan: Default::default(),
                    unreachable: None,
                    meta: Some(m),
                },
            };
            if item.unreachable.is_some() || item.meta.is_some() {
                return item;
            }
            // The task's own `diff` says whether its diff is shown, over `--diff`.
            if diff {
                item.result.insert(SHOW_DIFF.into(), true.into());
            }
            if let Some(job) = &async_task
                && job.poll > 0
                && !item.flag("skipped")
                && !item.flag("failed")
            {
                item = self.poll_job(host, item, job, &ctx);
            }
            if retrying && attempts_allowed > 1 {
                // Seen by changed_when and failed_when too, as in Ansible.
                item.result.insert("attempts".into(), attempt.into());
            }
            self.change_inventory(host, task, &mut item);
            let module_failed = item.flag("failed");
            if let Err(e) = self.apply_result_conditions(task, scope, &mut item) {
                return ItemResult::failed(e);
            }
            if item.flag("failed") && !module_failed {
                item.result.insert(ACTION_FAILED.into(), true.into());
            }
            if !retrying || attempts_allowed <= 1 {
                return item;
            }
            let reg_scope = register_scope(task, scope, &item.result);
            let done = match task.keywords.until.is_empty() {
                true => Ok(!item.flag("failed")),
                false => conditions_hold_as("until", &task.keywords.until, &reg_scope),
            };
            match done {
                Ok(true) => {
                    item.result.insert("attempts".into(), attempt.into());
                    return item;
                }
                Ok(false) if attempt < attempts_allowed => {
                    // `delay: inf` or `1e300` is no time to sleep (Ansible's sleep raises too).
                    let Ok(pause) = Duration::try_from_secs_f64(delay.max(0.0)) else {
                        return ItemResult::failed(format!(
                            "delay must be a number of seconds, not {delay}"
                        ));
                    };
                    self.engine.out.print(&format!(
                        "FAILED - RETRYING: [{host}]: {} ({} retries left).",
                        task.display_name(),
                        attempts_allowed - attempt
                    ));
                    std::thread::sleep(pause);
                }
                Ok(false) => {
                    // Ansible's count once retries run out: one less than the attempts made.
                    item.result.insert("attempts".into(), (attempt - 1).into());
                    item.result.insert("failed".into(), true.into());
                    if !module_failed {
                        item.result.insert(ACTION_FAILED.into(), true.into());
                    }
                    item.result
                        .entry("msg")
                        .or_insert_with(|| "Retries exhausted".into());
                    return item;
                }
                Err(e) => return ItemResult::failed(format!("until: {e}")),
            }
        }
    }

    /// `add_host` and `group_by` results change the inventory, as Ansible's strategy applies
    /// them (the task is changed when the inventory is); `set_stats` results are kept.
    fn change_inventory(&self, host: &str, task: &Task, item: &mut ItemResult) {
        let hosts = &self.engine.hosts;
        let changed = match task.module.as_str() {
            "add_host" => {
                let Some(info) = item.result.get("add_host") else {
                    return;
                };
                let name = info["host_name"].as_str().unwrap_or_default().to_string();
                let groups: Vec<String> = info["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(value_text)
                    .collect();
                let vars = info["host_vars"].as_object().cloned().unwrap_or_default();
                hosts.change_inventory(|inventory| {
                    Ok::<_, String>(inventory.add_dynamic_host(&name, &groups, vars))
                })
            }
            "group_by" => {
                let Some(group) = item.result.get("add_group").map(value_text) else {
                    return;
                };
                let parents: Vec<String> = item.result["parent_groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(value_text)
                    .collect();
                hosts.change_inventory(|inventory| {
                    inventory.add_dynamic_group(host, &group, &parents)
                })
            }
            "set_stats" => {
                self.keep_stats(host, &item.result);
                return;
            }
            _ => return,
        };
        match changed {
            Ok(changed) => {
                if changed {
                    // group_names and hostvars follow the new inventory.
                    self.magic.lock().unpoisoned().clear();
                }
                item.result.insert("changed".into(), changed.into());
            }
            Err(e) => *item = ItemResult::failed(e),
        }
    }

    /// A `set_stats` result goes into the run's custom stats, the host's (`per_host`) or the
    /// run's, added to what is there (`aggregate`) or replacing it.
    fn keep_stats(&self, host: &str, result: &Map<String, Value>) {
        let Some(Value::Object(data)) = result.get("ansible_stats").map(|s| &s["data"]) else {
            return;
        };
        let stats = &result["ansible_stats"];
        let per_host = stats["per_host"].as_bool().unwrap_or(false).then_some(host);
        let aggregate = stats["aggregate"].as_bool().unwrap_or(true);
        let mut all = self.engine.stats.lock().unpoisoned();
        for (k, v) in data {
            if aggregate {
                all.update_custom(per_host, k, v.clone());
            } else {
                all.set_custom(per_host, k, v.clone());
            }
        }
    }

    /// `changed_when` and `failed_when`, with the result visible under the `register` name.
    pub(super) fn apply_result_conditions(
        &self,
        task: &Task,
        scope: &Arc<Scope>,
        item: &mut ItemResult,
    ) -> Result<(), String> {
        if item.flag("skipped")
            || (task.keywords.changed_when.is_empty() && task.keywords.failed_when.is_empty())
        {
            return Ok(());
        }
        let reg_scope = register_scope(task, scope, &item.result);
        if !task.keywords.changed_when.is_empty() {
            match self.all_true(&task.keywords.changed_when, &reg_scope) {
                Ok(changed) => {
                    item.result.insert("changed".into(), changed.into());
                }
                // As Ansible: the module's result stays, failed, with the error beside it.
                Err(e) => {
                    item.result.insert(
                        "changed_when_result".into(),
                        format!("Error while evaluating conditional: {e}").into(),
                    );
                    item.result.insert("failed".into(), true.into());
                    return Ok(());
                }
            }
        }
        if !task.keywords.failed_when.is_empty() {
            let failed = match self.any_true(&task.keywords.failed_when, &reg_scope) {
                Ok(failed) => failed,
                Err(e) => {
                    item.result.insert(
                        "failed_when_result".into(),
                        format!("Error while evaluating conditional: {e}").into(),
                    );
                    item.result.insert("failed".into(), true.into());
                    return Ok(());
                }
            };
            if !failed && item.flag("failed") {
                item.result.insert(
                    "failed_when_suppressed_exception".into(),
                    NO_TRACEBACK.into(),
                );
            }
            item.result
                .insert("failed_when_result".into(), failed.into());
            item.result.insert("failed".into(), failed.into());
        }
        Ok(())
    }

    pub(super) fn all_true(
        &self,
        conditions: &[Value],
        scope: &Arc<Scope>,
    ) -> Result<bool, String> {
        conditions_hold_as("changed_when", conditions, scope)
    }

    /// `failed_when` as a list: the task fails if any holds (Ansible's "or" for failed_when).
    pub(super) fn any_true(
        &self,
        conditions: &[Value],
        scope: &Arc<Scope>,
    ) -> Result<bool, String> {
        for c in conditions {
            if condition_holds("failed_when", c, scope)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The task's `timeout:` in seconds (`None` for none, or 0), refused as Ansible refuses it
/// when it is negative or beyond 100,000,000.
fn task_timeout(task: &Task, scope: &Arc<Scope>) -> Result<Option<u64>, String> {
    let Some(value) = &task.keywords.timeout else {
        return Ok(None);
    };
    let rendered = templar().render(value, scope).map_err(|e| e.message)?;
    let seconds = match &rendered {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match seconds {
        Some(0) => Ok(None),
        Some(n) if (1..=100_000_000).contains(&n) => Ok(Some(n as u64)),
        Some(n) => Err(format!("Timeout {n} is invalid")),
        None => Err(format!("Timeout {} is invalid", value_text(&rendered))),
    }
}

/// The task with its module name rendered, when the name is a template; the task as it is
/// otherwise. The name must then be one settle knows, as any module's.
fn resolve_module<'t>(
    task: &'t Task,
    scope: &Arc<Scope>,
) -> Result<std::borrow::Cow<'t, Task>, String> {
    if !task.module.contains("{{") {
        return Ok(std::borrow::Cow::Borrowed(task));
    }
    let name = templar()
        .render_text(&task.module, scope)
        .map_err(|e| format!("the module name {:?}: {}", task.module, e.message))?;
    let mut task = task.clone();
    task.module = settle_playbooks::short_module_name(name.trim()).to_string();
    task.module_as_written = name.trim().to_string();
    Ok(std::borrow::Cow::Owned(task))
}

/// The task as the builtin action its action plugin re-exports
/// (`from ansible.plugins.action.debug import ActionModule`), under the name it was given.
fn resolve_alias<'t>(task: &'t Task, play_dir: &std::path::Path) -> std::borrow::Cow<'t, Task> {
    match crate::ansible_modules::action::find(task, play_dir) {
        Some(crate::ansible_modules::action::ActionPlugin::Alias(builtin)) => {
            std::borrow::Cow::Owned(actions::with_module(task, &builtin))
        }
        _ => std::borrow::Cow::Borrowed(task),
    }
}

/// The task with its `module_defaults` applied, as Ansible's `get_action_args_with_defaults`
/// does: the levels (play, block, role, task) are merged by module name, an inner level's entry
/// replacing an outer one's, and the task's own arguments win over the defaults. Names are
/// matched with or without `ansible.builtin.`/`ansible.legacy.`; `group/…` entries name action
/// groups, which settle's builtin modules belong to none of.
/// A module's defaults written as one template (`ping: '{{ ping_defaults }}'`) are rendered
/// for the host first.
fn with_module_defaults<'t>(
    task: &'t Task,
    scope: &Arc<Scope>,
    play_dir: &std::path::Path,
) -> Result<std::borrow::Cow<'t, Task>, String> {
    if task.keywords.module_defaults.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(task));
    }
    let short = |name: &str| settle_playbooks::short_module_name(name).to_string();
    let mut by_module: std::collections::HashMap<String, &Value> = std::collections::HashMap::new();
    let mut groups: Vec<String> = Vec::new();
    // `ansible.builtin.X` defaults are not for a task whose `X` is the playbook's own (an
    // `action_plugins/` or `library/` one, which is `ansible.legacy.X`).
    let written = task.lookup_name();
    let legacy_override = || {
        !written.starts_with("ansible.builtin.")
            && (written.starts_with("ansible.legacy.") || !written.contains('.'))
            && (crate::ansible_modules::action::find(task, play_dir).is_some()
                || crate::ansible_modules::find(task, play_dir)
                    .is_ok_and(|found| found.python_name.starts_with("ansible.legacy.")))
    };
    for level in &task.keywords.module_defaults {
        for (module, args) in level {
            if module.starts_with("ansible.builtin.") && legacy_override() {
                continue;
            }
            let key = short(module);
            if key.split('.').count() == 3 {
                let canonical =
                    crate::ansible_modules::action_groups::canonical_module(&key, play_dir);
                by_module.insert(canonical, args);
            }
            by_module.insert(key, args);
            if module.starts_with("group/") && !groups.contains(module) {
                groups.push(module.clone());
            }
        }
    }
    // The `gather_facts` action passes its arguments to `setup`, whose defaults fill in what
    // neither the task nor the action's own defaults gave.
    let module = short(&task.module);
    let canonical = match module.split('.').count() {
        3 => crate::ansible_modules::action_groups::canonical_module(&module, play_dir),
        _ => module.clone(),
    };
    let mut names = vec![module.as_str()];
    if canonical != module {
        names.push(canonical.as_str());
    }
    if module == "gather_facts" {
        names.push("setup");
    }
    // Then the groups the action is in, a later group's defaults over an earlier one's (the
    // action's own defaults win over all of them).
    let fqcn = match task.lookup_name().split('.').count() {
        n if n >= 3 && !task.lookup_name().starts_with("ansible.legacy.") => {
            task.lookup_name().to_string()
        }
        // A module of a `library/` folder is `ansible.legacy.NAME`, in no builtin group.
        _ if !groups.is_empty()
            && crate::ansible_modules::find(task, play_dir)
                .is_ok_and(|found| found.python_name.starts_with("ansible.legacy.")) =>
        {
            format!("ansible.legacy.{module}")
        }
        _ => format!("ansible.builtin.{module}"),
    };
    for group in groups.iter().rev() {
        let name = group.trim_start_matches("group/");
        // Both sides resolved as Ansible resolves them (`formerly_core_ping` is the
        // collection module ansible-core redirects it to).
        // `gather_facts` hands the groups of `setup` on to it as well.
        let mut ours = vec![fqcn.clone()];
        if module == "gather_facts" {
            ours.push("ansible.builtin.setup".into());
        }
        let resolved: Vec<String> = ours
            .iter()
            .map(|a| crate::ansible_modules::action_groups::canonical_module(a, play_dir))
            .collect();
        if crate::ansible_modules::action_groups::actions_of(name, play_dir)
            .iter()
            .any(|a| {
                ours.contains(a)
                    || resolved.contains(&crate::ansible_modules::action_groups::canonical_module(
                        a, play_dir,
                    ))
            })
        {
            names.push(group.as_str());
        }
    }
    let mut defaults: Vec<Map<String, Value>> = Vec::new();
    for name in &names {
        match by_module.get(*name) {
            Some(Value::Object(d)) => defaults.push(d.clone()),
            Some(Value::String(text)) if text.contains("{{") => {
                let value = Value::String(text.clone());
                match templar().render(&value, scope) {
                    // What the template gave is data: it is not rendered again.
                    Ok(Value::Object(d)) => defaults.push(
                        d.into_iter()
                            .map(|(k, v)| (k, crate::template::untrusted(&v)))
                            .collect(),
                    ),
                    Ok(other) => {
                        return Err(format!(
                            "the module_defaults of {name} must be a mapping, not {}",
                            settle_yaml::python_type(&other)
                        ));
                    }
                    Err(e) => return Err(e.message),
                }
            }
            _ => {}
        }
    }
    if defaults.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(task));
    }
    let mut task = task.clone();
    for defaults in defaults {
        for (key, value) in defaults {
            if !task.args.contains_key(&key) {
                // Ansible templates the defaults before the action sees any argument: a
                // default that cannot render fails the task first.
                if value.as_str().is_some_and(|t| t.contains("{{")) {
                    templar().render(&value, scope).map_err(|e| e.message)?;
                }
                task.args.insert(key, value);
            }
        }
    }
    Ok(std::borrow::Cow::Owned(task))
}

/// `no_log` where neither task nor play sets it: Ansible's DEFAULT_NO_LOG (`ANSIBLE_NO_LOG`,
/// `[defaults] no_log`).
fn default_no_log() -> bool {
    crate::template::env_flag("ANSIBLE_NO_LOG")
}

thread_local! {
    /// Where the task this thread runs now was written: a condition's deprecation points near
    /// it (see [`settle_playbooks::condition_origin`]).
    static CURRENT_TASK: std::cell::RefCell<Option<settle_playbooks::Location>> =
        const { std::cell::RefCell::new(None) };
}

/// Where the task this thread runs now was written, for a deprecation found while rendering.
pub(crate) fn current_task_location() -> Option<settle_playbooks::Location> {
    CURRENT_TASK.with(|t| t.borrow().clone())
}

/// One condition, with Ansible 2.19's deprecation of a `{{ }}` template that gives a value
/// rather than an expression, pointing at where the condition was written.
fn conditions_hold_as(
    keyword: &str,
    conditions: &[Value],
    scope: &Arc<Scope>,
) -> Result<bool, String> {
    for condition in conditions {
        if !condition_holds(keyword, condition, scope)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A condition that could not be evaluated: the template's message (a broken conditional's
/// naming where the condition was written) and that place, as Ansible 2.19 shows them.
pub(super) struct ConditionError {
    pub message: String,
    pub origin: Option<settle_playbooks::Location>,
}

impl ConditionError {
    /// As a failed `when` words it: a broken conditional as it is, any other error as an
    /// error while evaluating the conditional.
    pub(super) fn worded(&self) -> String {
        match self
            .message
            .starts_with(crate::template::BROKEN_CONDITIONAL)
        {
            true => self.message.clone(),
            false => format!("Error while evaluating conditional: {}", self.message),
        }
    }
}

/// Why a task failed before its module ran.
pub(super) enum EarlyFailure {
    Text(String),
    Condition(ConditionError),
}

impl From<String> for EarlyFailure {
    fn from(msg: String) -> Self {
        EarlyFailure::Text(msg)
    }
}

impl From<ConditionError> for EarlyFailure {
    fn from(error: ConditionError) -> Self {
        EarlyFailure::Condition(error)
    }
}

impl From<ConditionError> for String {
    fn from(e: ConditionError) -> String {
        e.message
    }
}

fn condition_holds(
    keyword: &str,
    condition: &Value,
    scope: &Arc<Scope>,
) -> Result<bool, ConditionError> {
    let origin = || match condition {
        Value::String(text) => CURRENT_TASK
            .with(|t| settle_playbooks::condition_origin(keyword, text, t.borrow().as_ref())),
        _ => None,
    };
    // `path:line:column` where Ansible's message says `at '<unknown>'` without a place.
    let placed = |message: String, origin: Option<&settle_playbooks::Location>| match origin {
        Some(at) => {
            let file = std::path::absolute(&*at.file).unwrap_or_else(|_| at.file.to_path_buf());
            let place = format!("at '{}:{}:{}'", file.display(), at.line, at.column);
            message.replacen("at '<unknown>'", &place, 1)
        }
        None => message,
    };
    let (holds, wrapped) = match templar().condition_noting(condition, scope) {
        Ok(noted) => noted,
        Err(e) => {
            let origin = origin();
            let message = placed(e.message, origin.as_ref());
            return Err(ConditionError { message, origin });
        }
    };
    if let Some(broken) = crate::template::take_allowed_broken_conditional() {
        let origin = origin();
        settle_yaml::deprecation::deprecated(
            &placed(broken, origin.as_ref()),
            "2.23",
            origin.as_ref(),
            Some(
                "Broken conditionals are currently allowed because the \
                 `ALLOW_BROKEN_CONDITIONALS` configuration option is enabled.",
            ),
            None,
        );
    }
    if wrapped {
        let origin = origin();
        // Ansible's conditions are evaluated outside the task's own warning context: the
        // `ansible_deprecation_warnings` variable does not reach them.
        settle_yaml::deprecation::deprecated(
            "Conditionals should not be surrounded by templating delimiters such as {{ }} or {% %}.",
            "2.23",
            origin.as_ref(),
            None,
            None,
        );
    }
    Ok(holds)
}
