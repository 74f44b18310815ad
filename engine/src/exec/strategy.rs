//! Strategy walking: hosts move through a play's plan with their own cursors. `linear` runs the
//! lowest step any host waits at, for all hosts waiting there, up to `forks` at once; `free`
//! walks each host alone. Failures follow `rescue`/`always` edges; `any_errors_fatal` and
//! `max_fail_percentage` end the play here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use petgraph::graph::NodeIndex;
use serde_json::{Value, json};
use settle_playbooks::{Strategy, Task};

use super::includes::include_name;
use super::{End, PlayRun, StepOutcome, bool_of};
use crate::Unpoisoned;
use crate::Vars;
use crate::facts::Facts;
use crate::hosts::HostState;
use crate::plan::{Edge, Plan, Step};
use crate::template::{Layer, templar};

/// The stack of a thread that runs hosts' tasks: as large as the main thread's.
const WORKER_STACK: usize = 8 << 20;

/// Where a failure sent a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Into its block's `rescue`.
    Rescued,
    /// Into its block's `always`, carrying the failure on.
    Carried,
    /// Nowhere: the host has failed.
    Failed,
}

/// Sends a host that failed at `from` to its block's `rescue`, else its `always` (carrying
/// the failure), else stops it (`node` is then `None`).
fn fail_over(
    node: &mut Option<NodeIndex>,
    carrying: &mut bool,
    plan: &Plan,
    from: NodeIndex,
) -> Fate {
    if let Some(target) = plan.follow(from, Edge::Rescue) {
        *node = Some(target);
        Fate::Rescued
    } else if let Some(target) = plan.follow(from, Edge::Always) {
        *carrying = true;
        *node = Some(target);
        Fate::Carried
    } else {
        *node = None;
        Fate::Failed
    }
}

impl PlayRun<'_> {
    /// Walks a plan with a set of hosts; returns how each host ended.
    pub(super) fn walk(
        &self,
        plan: &Plan,
        hosts: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> HashMap<String, End> {
        if self.strategy == Strategy::Free && hosts.len() > 1 {
            let ends = Mutex::new(HashMap::new());
            self.parallel(hosts, |h| {
                let one = self.walk_linear(plan, &[h.to_string()], extra);
                ends.lock().unpoisoned().extend(one);
                StepOutcome::Ok
            });
            return ends.into_inner().unpoisoned();
        }
        self.walk_linear(plan, hosts, extra)
    }

    pub(super) fn walk_linear(
        &self,
        plan: &Plan,
        hosts: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> HashMap<String, End> {
        struct Cursor {
            host: String,
            node: Option<NodeIndex>,
            carrying: bool,
            /// Unreachable: where the host would go on, should `meta: clear_host_errors` bring
            /// it back in this play (as Ansible's iterator keeps an unreachable host's place).
            parked: Option<NodeIndex>,
            /// Brought back by `meta: clear_host_errors` behind the others: as Ansible's
            /// lockstep, it goes on once the others have reached the end.
            behind: bool,
        }
        let mut cursors: Vec<Cursor> = hosts
            .iter()
            .map(|h| Cursor {
                host: h.clone(),
                node: plan.entry,
                carrying: false,
                parked: None,
                behind: false,
            })
            .collect();
        let mut ends: HashMap<String, End> = HashMap::new();
        let total = self.play_hosts.len().max(1);
        loop {
            if self.engine.stopped()
                || self.end_play.load(Ordering::SeqCst)
                || self.end_batch.load(Ordering::SeqCst)
            {
                break;
            }
            let ahead = cursors.iter().filter(|c| !c.behind).filter_map(|c| c.node);
            let Some(next) = ahead.min() else {
                if cursors.iter().any(|c| c.behind && c.node.is_some()) {
                    cursors.iter_mut().for_each(|c| c.behind = false);
                    continue;
                }
                break;
            };
            let batch: Vec<String> = cursors
                .iter()
                .filter(|c| c.node == Some(next) && !c.behind)
                .map(|c| c.host.clone())
                .collect();
            let outcomes = self.run_step(plan, next, &batch, extra);
            let node = plan.node(next);
            let fatal = self.play.any_errors_fatal
                || matches!(&node.step, Step::Task(t) if t.keywords.any_errors_fatal == Some(true));
            let mut newly_failed = 0;
            let mut failing: Vec<String> = Vec::new();
            let mut cleared = false;
            for (host, outcome) in outcomes {
                if matches!(
                    outcome,
                    StepOutcome::Failed { .. }
                        | StepOutcome::NotLoaded { .. }
                        | StepOutcome::Unreachable
                ) {
                    failing.push(host.clone());
                }
                let Some(cursor) = cursors.iter_mut().find(|c| c.host == host) else {
                    continue;
                };
                match outcome {
                    StepOutcome::Ok => {
                        if cursor.carrying && node.ends_always {
                            if let Some(target) = plan.follow(next, Edge::UnwindRescue) {
                                cursor.carrying = false;
                                self.engine.count(&host, |s| {
                                    s.failures = s.failures.saturating_sub(1);
                                    s.rescued += 1;
                                });
                                cursor.node = Some(target);
                            } else if let Some(target) = plan.follow(next, Edge::UnwindAlways) {
                                cursor.node = Some(target);
                            } else {
                                cursor.node = None;
                                ends.insert(host, End::Failed);
                                newly_failed += 1;
                            }
                        } else {
                            cursor.node = plan.follow(next, Edge::Next);
                        }
                    }
                    StepOutcome::NotLoaded { failures } => {
                        match fail_over(&mut cursor.node, &mut cursor.carrying, plan, next) {
                            Fate::Rescued => self.engine.count(&host, |s| s.cleared += failures),
                            Fate::Carried => {}
                            Fate::Failed => {
                                ends.insert(host, End::Failed);
                                newly_failed += 1;
                            }
                        }
                    }
                    StepOutcome::Failed { counted } => {
                        match fail_over(&mut cursor.node, &mut cursor.carrying, plan, next) {
                            Fate::Rescued => self.engine.count(&host, |s| {
                                if counted {
                                    s.failures = s.failures.saturating_sub(1);
                                }
                                s.rescued += 1;
                            }),
                            fate => {
                                if !counted {
                                    self.engine.count(&host, |s| s.failures += 1);
                                }
                                if fate == Fate::Failed {
                                    ends.insert(host, End::Failed);
                                    newly_failed += 1;
                                }
                            }
                        }
                    }
                    StepOutcome::Unreachable => {
                        cursor.node = None;
                        cursor.parked = plan.follow(next, Edge::Next);
                        ends.insert(host, End::Unreachable);
                    }
                    StepOutcome::Ended => cursor.node = None,
                    StepOutcome::ErrorsCleared => {
                        cursor.carrying = false;
                        self.clear_host_errors(&host);
                        cursor.node = plan.follow(next, Edge::Next);
                        cleared = true;
                    }
                }
            }
            if cleared {
                for cursor in cursors.iter_mut().filter(|c| c.parked.is_some()) {
                    cursor.node = cursor.parked.take();
                    cursor.behind = true;
                    ends.remove(&cursor.host);
                }
            }
            // `any_errors_fatal`: one host failing fails every other host still going, which
            // then takes its own block's `rescue` or `always` (uncounted, as in Ansible).
            if fatal && !failing.is_empty() {
                for cursor in cursors.iter_mut().filter(|c| !failing.contains(&c.host)) {
                    let Some(at) = cursor.node else { continue };
                    let from = if batch.contains(&cursor.host) {
                        next
                    } else {
                        at
                    };
                    if fail_over(&mut cursor.node, &mut cursor.carrying, plan, from) == Fate::Failed
                    {
                        ends.insert(cursor.host.clone(), End::Failed);
                        newly_failed += 1;
                    }
                }
            }
            self.note_failures(&ends);
            if newly_failed > 0 {
                let failed_total = ends.values().filter(|e| **e != End::Done).count();
                let over_limit = self
                    .play
                    .max_fail_percentage
                    .is_some_and(|pct| (failed_total as f64) * 100.0 / (total as f64) > pct);
                if fatal || over_limit {
                    if fatal {
                        self.engine.stop_run.store(true, Ordering::SeqCst);
                    }
                    self.end_play.store(true, Ordering::SeqCst);
                    if over_limit && !fatal {
                        self.engine.out.print("\nNO MORE HOSTS LEFT *************************************************************");
                    }
                }
            }
        }
        for c in cursors {
            ends.entry(c.host).or_insert(End::Done);
        }
        ends
    }

    /// Hosts that failed leave `ansible_play_hosts` (their magic variables are made anew) and
    /// the run: later plays pass them over.
    fn note_failures(&self, ends: &HashMap<String, End>) {
        let mut failed = self.failed_hosts.lock().unpoisoned();
        let mut changed = false;
        for (host, _) in ends.iter().filter(|(_, e)| **e != End::Done) {
            if failed.insert(host.clone()) {
                self.engine.hosts.get(host).leave_run();
                changed = true;
            }
        }
        if changed {
            self.forget_play_magic();
        }
    }

    /// `meta: clear_host_errors` on `host`: its carried failure is forgotten here, and every
    /// host of the play that failed or was unreachable takes part in the next plays again (as
    /// in Ansible, they stay out of this play's `ansible_play_hosts`). The run's exit code no
    /// longer counts their failures so far.
    fn clear_host_errors(&self, host: &str) {
        self.failed_hosts.lock().unpoisoned().remove(host);
        self.forget_play_magic();
        for h in &self.play_hosts_all {
            let state = self.engine.hosts.get(h);
            if state.is_out() || h == host {
                state.rejoin_run();
                self.engine.count(h, |s| s.cleared = s.failures);
            }
        }
    }

    /// Runs `f` for each host, at most `forks` at a time, and returns the outcomes in host order.
    pub(super) fn parallel<F>(&self, hosts: &[String], f: F) -> Vec<(String, StepOutcome)>
    where
        F: Fn(&str) -> StepOutcome + Sync,
    {
        if hosts.len() == 1 {
            return vec![(hosts[0].clone(), f(&hosts[0]))];
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<StepOutcome>>> = Mutex::new(vec![None; hosts.len()]);
        let workers = self.engine.opts.forks.max(1).min(hosts.len());
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= hosts.len() || crate::interrupt::interrupted() {
                    break;
                }
                let outcome = f(&hosts[i]);
                results.lock().unpoisoned()[i] = Some(outcome);
            }
        };
        std::thread::scope(|s| {
            for _ in 0..workers {
                // The main thread's stack size, not a spawned thread's 2 MiB: the nesting limits
                // on includes and variables are sized for it. Untouched stack costs no memory.
                let spawned = std::thread::Builder::new()
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, work);
                if spawned.is_err() {
                    // No thread to be had: this one works through the hosts left.
                    work();
                }
            }
        });
        let results = results.into_inner().unpoisoned();
        hosts
            .iter()
            .cloned()
            .zip(
                results
                    .into_iter()
                    // A host never started: the run was interrupted (it just stops there), or
                    // its worker died.
                    .map(|r| {
                        r.unwrap_or(if crate::interrupt::interrupted() {
                            StepOutcome::Ended
                        } else {
                            StepOutcome::Failed { counted: false }
                        })
                    }),
            )
            .collect()
    }

    pub(super) fn run_step(
        &self,
        plan: &Plan,
        node: NodeIndex,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> Vec<(String, StepOutcome)> {
        let step = &plan.node(node).step;
        let (passed, batch): (Vec<String>, Vec<String>) = batch
            .iter()
            .cloned()
            .partition(|h| self.passes_over(step, h));
        if !passed.is_empty() {
            let mut outcomes: Vec<(String, StepOutcome)> =
                passed.into_iter().map(|h| (h, StepOutcome::Ok)).collect();
            if !batch.is_empty() {
                outcomes.extend(self.run_step_for(step, &batch, extra));
            }
            return outcomes;
        }
        self.run_step_for(step, &batch, extra)
    }

    fn run_step_for(
        &self,
        step: &Step,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> Vec<(String, StepOutcome)> {
        match step {
            Step::GatherFacts => {
                let marker = self.engine.check_marker(&self.play.keywords);
                self.engine.out.task_banner(
                    &format!("TASK [Gathering Facts]{marker}"),
                    &self.play.location,
                    batch,
                );
                self.engine
                    .out
                    .event(&json!({"event": "task_start", "task": "Gathering Facts"}));
                self.parallel(batch, |h| {
                    if !self.play.gather_when.is_empty() {
                        let scope = self.fact_scope(&self.engine.hosts.get(h));
                        match self.conditions_hold(&self.play.gather_when, &scope) {
                            Ok(true) => {}
                            Ok(false) => {
                                self.engine.count(h, |s| s.skipped += 1);
                                let result = json!({"changed": false, "skipped": true});
                                self.engine.out.result(
                                    h,
                                    crate::output::Status::Skipped,
                                    None,
                                    &result,
                                    false,
                                );
                                return StepOutcome::Ok;
                            }
                            Err(e) => return self.report_failure(h, super::FACTS, &e),
                        }
                    }
                    self.gather_facts(h)
                })
            }
            Step::FlushHandlers => {
                self.debug_implicit_flush(batch);
                self.flush_handlers(batch)
            }
            Step::Task(task) if task.is_role_complete() => {
                self.complete_role(task.role.as_ref(), batch);
                batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect()
            }
            Step::Task(task) if task.module == "meta" => self.run_meta(task, batch, extra, false),
            Step::Task(task) => {
                if !self.engine.step_allows(&task.display_name()) {
                    return batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
                }
                let word = super::handlers::banner_word();
                let marker = self.engine.check_marker(&task.keywords);
                self.engine.out.task_banner(
                    &format!("{word} [{}]{marker}", self.task_title(task)),
                    &task.location,
                    batch,
                );
                self.engine.out.event(&json!({"event": "task_start", "task": task.display_name(), "location": task.location.to_string()}));
                self.run_task_on(task, batch, extra, super::handlers::running_handlers())
            }
            Step::Include(include) => {
                let name = include_name(include);
                let word = super::handlers::banner_word();
                let marker = self.engine.check_marker(&include.keywords);
                self.engine.out.task_banner(
                    &format!("{word} [{name}]{marker}"),
                    &include.location,
                    batch,
                );
                self.engine.out.event(&json!({"event": "task_start", "task": name, "location": include.location.to_string()}));
                self.run_include(include, batch, extra)
            }
        }
    }

    pub(super) fn run_task_on(
        &self,
        task: &Task,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
        handler: bool,
    ) -> Vec<(String, StepOutcome)> {
        let no_extra = Vec::new();
        let extra_of = |h: &str| extra.get(h).unwrap_or(&no_extra);
        let first = batch.first().cloned().unwrap_or_default();
        let run_once = {
            let state = self.engine.hosts.get(&first);
            let scope = self.scope(&state, task, extra_of(&first));
            // add_host runs once for the batch, as Ansible's BYPASS_HOST_LOOP actions do.
            task.module == "add_host"
                || bool_of("run_once", task.keywords.run_once.as_deref(), &scope)
                    .ok()
                    .flatten()
                    .unwrap_or(false)
        };
        let throttle = match self.throttle_of(task, &first, extra_of(&first)) {
            Ok(n) => n,
            Err(e) => {
                self.abort_run(
                    &format!("Failed to convert the throttle value to an integer: {e}"),
                    &task.location,
                );
                return batch
                    .iter()
                    .map(|h| (h.clone(), StepOutcome::Ended))
                    .collect();
            }
        };
        if run_once {
            let state = self.engine.hosts.get(&first);
            let before = RunOnceVars::of(&state);
            let outcome = self.run_task(&first, task, extra_of(&first), handler);
            // The one result is every host's: its facts, set_fact and include_vars variables
            // and registered result land on each host of the play's batch, as Ansible copies
            // them; add_host's result stays the first host's.
            if task.module != "add_host" {
                let changed = before.changes(&state);
                for h in self.run_once_targets(batch).iter().filter(|h| **h != first) {
                    changed.apply(&self.engine.hosts.get(h));
                }
            }
            return batch.iter().map(|h| (h.clone(), outcome.clone())).collect();
        }
        // Ansible ignores `throttle` on a `run_once` task.
        if throttle > 0 && !run_once {
            return self.parallel(batch, |h| {
                self.throttled(task, throttle, || {
                    self.run_task(h, task, extra_of(h), handler)
                })
            });
        }
        self.parallel(batch, |h| self.run_task(h, task, extra_of(h), handler))
    }

    /// The task's `throttle` (0: none), rendered for the batch's first host; Python's `int()`
    /// decides what a number is, and its words say what is not.
    fn throttle_of(&self, task: &Task, host: &str, extra: &[Layer]) -> Result<u64, String> {
        let Some(value) = &task.keywords.throttle else {
            return Ok(0);
        };
        let scope = self.scope(&self.engine.hosts.get(host), task, extra);
        let value = templar().render(value, &scope).map_err(|e| e.message)?;
        python_int(&value).map(|n| n.max(0) as u64)
    }

    /// Runs `f` once fewer than `limit` hosts are running `task` (in any walk: the `free`
    /// strategy walks each host on its own thread).
    fn throttled(&self, task: &Task, limit: u64, f: impl FnOnce() -> StepOutcome) -> StepOutcome {
        let key = task as *const Task as usize;
        let mut running = self.throttled.lock().unpoisoned();
        while running.get(&key).copied().unwrap_or(0) as u64 >= limit {
            running = self.throttle_freed.wait(running).unpoisoned();
        }
        *running.entry(key).or_default() += 1;
        drop(running);
        let outcome = f();
        let mut running = self.throttled.lock().unpoisoned();
        if let Some(n) = running.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        self.throttle_freed.notify_all();
        outcome
    }

    /// An error Ansible raises out of its strategy: said with the task's place, and the run
    /// ends there with exit code 1.
    fn abort_run(&self, msg: &str, at: &settle_playbooks::Location) {
        self.engine.abort_run(msg, Some(at), 1);
        self.end_play.store(true, Ordering::SeqCst);
    }
}

/// Python's `int()` of a keyword's value, and its error when it is not a whole number.
fn python_int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .ok_or_else(|| format!("int() cannot convert {n}")),
        Value::String(s) => s
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map_err(|_| format!("invalid literal for int() with base 10: '{s}'")),
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            super::type_name(other).replace("None", "NoneType")
        )),
    }
}

impl PlayRun<'_> {
    /// The hosts a `run_once` result is copied to: the play's batch (the hosts at this step
    /// with the free strategy, where each host walks alone), less those out of the play.
    fn run_once_targets(&self, batch: &[String]) -> Vec<String> {
        let mut hosts = batch.to_vec();
        if self.strategy == Strategy::Linear {
            let failed = self.failed_hosts.lock().unpoisoned().clone();
            for h in self.batch.lock().unpoisoned().iter() {
                if !hosts.contains(h) && !failed.contains(h) {
                    hosts.push(h.clone());
                }
            }
        }
        hosts
    }
}

/// A host's variables that a task can set (facts, set_fact/register results, include_vars),
/// taken before a `run_once` task to see what it set.
struct RunOnceVars {
    facts: Arc<Facts>,
    task_vars: Arc<Vars>,
    included: Arc<Vars>,
    trusted: Arc<Vars>,
}

impl RunOnceVars {
    fn of(state: &HostState) -> Self {
        RunOnceVars {
            facts: state.facts(),
            task_vars: state.task_vars(),
            included: state.included_vars(),
            trusted: state.trusted_results(),
        }
    }

    /// What changed since `self` was taken: the facts and variables of only the changed
    /// names.
    fn changes(&self, state: &HostState) -> RunOnceChanges {
        let diff = |before: &Vars, after: Arc<Vars>| -> Arc<Vars> {
            let mut out = Vars::new();
            for (k, v) in after.iter() {
                if before.get(k) != Some(v) {
                    out.insert(k.clone(), v.clone());
                }
            }
            Arc::new(out)
        };
        let after = state.facts();
        let facts = match Arc::ptr_eq(&self.facts, &after) {
            true => Arc::default(),
            false => diff(&self.facts.by_name(), Arc::new(after.by_name())),
        };
        RunOnceChanges {
            facts,
            task_vars: diff(&self.task_vars, state.task_vars()),
            included: diff(&self.included, state.included_vars()),
            trusted: diff(&self.trusted, state.trusted_results()),
        }
    }
}

/// What a `run_once` task set, to be copied to the other hosts.
struct RunOnceChanges {
    facts: Arc<Vars>,
    task_vars: Arc<Vars>,
    included: Arc<Vars>,
    trusted: Arc<Vars>,
}

impl RunOnceChanges {
    fn apply(&self, state: &HostState) {
        if !self.facts.is_empty() {
            state.set_facts(&self.facts);
        }
        for (k, v) in self.included.iter() {
            state.set_included_var(k, v.clone());
        }
        for (k, v) in self.task_vars.iter() {
            state.set_task_var(k, v.clone());
        }
        for (k, v) in self.trusted.iter() {
            state.set_trusted_result(k, v.clone());
        }
    }
}
