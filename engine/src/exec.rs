//! Execution: hosts walk each play's plan, in parallel up to `forks`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexSet;
use petgraph::graph::NodeIndex;
use serde_json::{Map, Value, json};
use settle_modules::Request;
use settle_playbooks::{Include, Location, LoopKind, Play, Strategy, Task, TaskNode};

use crate::actions::{self, ActionContext, ActionResult};
use crate::connection::{Become, ConnectionError, Target};
use crate::hosts::{HostState, Hosts};
use crate::output::{Output, Status, py_json};
use crate::plan::{Edge, Plan, Step};
use crate::recap::Stats;
use crate::report::Record;
use crate::template::{Scope, json_bool, json_truthy, python_repr, templar};
use crate::{RunOptions, Vars};

/// How a step ended for one host.
#[derive(Debug, Clone, PartialEq)]
enum StepOutcome {
    Ok,
    /// `counted`: the failure is already in the recap (it came out of an included file).
    Failed {
        counted: bool,
    },
    Unreachable,
    /// `meta: end_host`, or the play was ended.
    Ended,
}

/// How a host's walk through a plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Done,
    Failed,
    Unreachable,
}

pub(crate) struct Engine<'a> {
    pub opts: &'a RunOptions,
    pub out: Output,
    pub stats: Mutex<Stats>,
    pub hosts: Arc<Hosts>,
    /// `any_errors_fatal` fired: nothing more runs.
    stop_run: AtomicBool,
    /// `--step` answered "continue".
    step_continue: AtomicBool,
    /// Every host × task result, in the order they came.
    pub records: Mutex<Vec<Record>>,
    started: Mutex<bool>,
}

/// One play being run.
struct PlayRun<'a> {
    engine: &'a Engine<'a>,
    play: &'a Play,
    play_vars: Arc<Vars>,
    vars_files: HashMap<String, Arc<Vars>>,
    magic: Mutex<HashMap<String, Arc<Vars>>>,
    play_hosts: Vec<String>,
    /// The `serial` batch being run (`ansible_play_batch`).
    batch: Mutex<Vec<String>>,
    notified: Mutex<HashMap<String, IndexSet<String>>>,
    end_play: AtomicBool,
    included: Mutex<HashMap<PathBuf, Arc<Vec<TaskNode>>>>,
}

impl<'a> Engine<'a> {
    pub fn new(opts: &'a RunOptions, hosts: Arc<Hosts>) -> Self {
        Engine {
            opts,
            out: Output::new(opts.verbosity, opts.diff, opts.json_output),
            stats: Mutex::new(Stats::default()),
            hosts,
            stop_run: AtomicBool::new(false),
            step_continue: AtomicBool::new(false),
            records: Mutex::default(),
            started: Mutex::new(opts.selection.start_at_task.is_none()),
        }
    }

    pub fn run_play(&self, play: &Play) {
        if self.stop_run.load(Ordering::SeqCst) {
            return;
        }
        self.out.banner(&format!("PLAY [{}]", play.name));
        self.out.event(&json!({"event": "play_start", "play": play.name, "location": play.location.to_string()}));
        let hosts = match self.play_hosts(play) {
            Ok(h) => h,
            Err(e) => {
                self.out.error(&e);
                return;
            }
        };
        if hosts.is_empty() {
            self.out.print("skipping: no hosts matched");
            return;
        }
        let plan = {
            let mut started = self.started.lock().expect("start lock");
            Plan::for_play(play, &self.opts.selection, &mut started)
        };
        let mut pr = PlayRun {
            engine: self,
            play,
            play_vars: Arc::new(play.vars.clone()),
            vars_files: HashMap::new(),
            magic: Mutex::default(),
            play_hosts: hosts.clone(),
            batch: Mutex::default(),
            notified: Mutex::default(),
            end_play: AtomicBool::new(false),
            included: Mutex::default(),
        };
        let mut runnable = Vec::new();
        for host in &hosts {
            match pr.load_vars_files(host) {
                Ok(vars) => {
                    pr.vars_files.insert(host.clone(), vars);
                    runnable.push(host.clone());
                }
                Err(e) => {
                    self.out.result(
                        host,
                        Status::Failed,
                        None,
                        &json!({"changed": false, "msg": e}),
                        false,
                    );
                    self.stats.lock().expect("stats").host(host).failures += 1;
                    self.hosts.get(host).leave_run();
                }
            }
        }
        for batch in serial_batches(play.serial.as_ref(), &runnable) {
            *pr.batch.lock().expect("batch lock") = batch.clone();
            pr.magic.lock().expect("magic lock").clear();
            let ends = pr.walk(&plan, &batch, &HashMap::new());
            if play.force_handlers || self.opts.force_handlers {
                let failed: Vec<String> = batch
                    .iter()
                    .filter(|h| ends.get(*h) == Some(&End::Failed))
                    .cloned()
                    .collect();
                if !failed.is_empty() {
                    pr.flush_handlers(&failed);
                }
            }
            for (host, end) in &ends {
                if *end != End::Done {
                    self.hosts.get(host).leave_run();
                }
            }
            if self.stop_run.load(Ordering::SeqCst) {
                break;
            }
        }
    }

    fn play_hosts(&self, play: &Play) -> Result<Vec<String>, String> {
        let inventory = self.hosts.inventory();
        let scope = Scope::new(
            vec![self.hosts.extra_vars(), Arc::new(play.vars.clone())],
            None,
        );
        let pattern = templar()
            .render_text(&play.hosts, &scope)
            .map_err(|e| format!("hosts: {}", e.message))?;
        let mut hosts = inventory.select(&pattern).map_err(|e| e.to_string())?;
        if hosts.is_empty() {
            self.out.warning(&format!(
                "Could not match supplied host pattern, ignoring: {pattern}"
            ));
        }
        if let Some(limit) = &self.opts.limit {
            let allowed: HashSet<String> = inventory
                .select(limit)
                .map_err(|e| e.to_string())?
                .into_iter()
                .collect();
            hosts.retain(|h| allowed.contains(h));
        }
        hosts.retain(|h| !self.hosts.get(h).is_out());
        Ok(hosts)
    }

    fn count(&self, host: &str, f: impl FnOnce(&mut crate::recap::HostStats)) {
        f(self.stats.lock().expect("stats lock").host(host));
    }

    /// `--step`: asks before each task; "c" stops asking.
    fn step_allows(&self, name: &str) -> bool {
        if !self.opts.step || self.step_continue.load(Ordering::SeqCst) {
            return true;
        }
        let _guard = self.out.lock_for_prompt();
        eprint!("Perform task: TASK: {name} (N)o/(y)es/(c)ontinue: ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => true,
            "c" | "continue" => {
                self.step_continue.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }
}

/// `serial: 2`, `serial: "30%"`, `serial: [1, 5, "50%"]`: the batches hosts run the play in.
fn serial_batches(serial: Option<&Value>, hosts: &[String]) -> Vec<Vec<String>> {
    let total = hosts.len();
    let size_of = |v: &Value| -> usize {
        let n = match v {
            Value::Number(n) => n.as_f64().unwrap_or(0.0) as usize,
            Value::String(s) if s.ends_with('%') => {
                let pct: f64 = s.trim_end_matches('%').trim().parse().unwrap_or(100.0);
                ((total as f64) * pct / 100.0).floor() as usize
            }
            Value::String(s) => s.trim().parse().unwrap_or(total),
            _ => total,
        };
        n.max(1)
    };
    let sizes: Vec<usize> = match serial {
        None | Some(Value::Null) => return vec![hosts.to_vec()],
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(size_of).collect(),
        Some(other) => vec![size_of(other)],
    };
    let mut batches = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < total {
        let size = sizes[k.min(sizes.len() - 1)];
        batches.push(hosts[i..(i + size).min(total)].to_vec());
        i += size;
        k += 1;
    }
    batches
}

/// The name fact gathering has in results and reports.
const FACTS: (&str, Option<&Location>) = ("Gathering Facts", None);

fn include_name(include: &Include) -> String {
    include
        .name
        .clone()
        .unwrap_or_else(|| format!("include_tasks {}", value_text(&include.file)))
}

/// The files one host includes, in order, each with its variables (include vars, loop item).
type IncludeList = Vec<(PathBuf, Arc<Vars>)>;

/// A task's result while it is being made.
struct ItemResult {
    result: Map<String, Value>,
    plan: settle_modules::Plan,
    unreachable: Option<String>,
    meta: Option<String>,
}

impl ItemResult {
    fn failed(msg: impl Into<String>) -> Self {
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

    fn flag(&self, key: &str) -> bool {
        self.result.get(key).is_some_and(json_truthy)
    }

    fn status(&self) -> Status {
        if self.unreachable.is_some() {
            Status::Unreachable
        } else if self.flag("failed") {
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

fn bool_of(value: &Option<Value>, scope: &Arc<Scope>) -> Result<Option<bool>, String> {
    match value {
        None => Ok(None),
        Some(v) => templar()
            .render(v, scope)
            .map(|r| Some(json_bool(&r)))
            .map_err(|e| e.message),
    }
}

impl PlayRun<'_> {
    fn load_vars_files(&self, host: &str) -> Result<Arc<Vars>, String> {
        if self.play.vars_files.is_empty() {
            return Ok(Arc::new(Vars::new()));
        }
        let state = self.engine.hosts.get(host);
        let scope = Scope::new(
            vec![
                state.inventory_vars.clone(),
                self.play_vars.clone(),
                self.engine.hosts.extra_vars(),
                Arc::new(self.engine.hosts.magic(host)),
            ],
            None,
        );
        let mut vars = Vars::new();
        for entry in &self.play.vars_files {
            // A list inside vars_files means "the first of these that exists".
            let candidates: Vec<Value> = match entry {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            let mut loaded = false;
            for candidate in &candidates {
                let name = templar()
                    .render_text(candidate.as_str().unwrap_or(""), &scope)
                    .map_err(|e| format!("vars_files: {}", e.message))?;
                let path = self.play.dir.join(&name);
                if path.is_file() {
                    vars.extend(
                        settle_inventory::load_vars_file(&path).map_err(|e| e.to_string())?,
                    );
                    loaded = true;
                    break;
                }
                if candidates.len() == 1 {
                    return Err(format!(
                        "vars file {name} was not found (looked in {})",
                        self.play.dir.display()
                    ));
                }
            }
            if !loaded {
                return Err(format!("none of the vars files {candidates:?} was found"));
            }
        }
        Ok(Arc::new(vars))
    }

    fn magic(&self, host: &str) -> Arc<Vars> {
        if let Some(m) = self.magic.lock().expect("magic lock").get(host) {
            return m.clone();
        }
        let mut m = self.engine.hosts.magic(host);
        let hosts = Value::from(self.play_hosts.clone());
        m.insert("play_hosts".into(), hosts.clone());
        m.insert("ansible_play_hosts".into(), hosts.clone());
        m.insert(
            "ansible_play_batch".into(),
            self.batch.lock().expect("batch lock").clone().into(),
        );
        m.insert("ansible_play_hosts_all".into(), hosts);
        m.insert("ansible_play_name".into(), self.play.name.clone().into());
        m.insert("playbook_dir".into(), absolute(&self.play.dir).into());
        let m = Arc::new(m);
        self.magic
            .lock()
            .expect("magic lock")
            .insert(host.to_string(), m.clone());
        m
    }

    /// The variables a task sees on a host, lowest precedence first.
    fn scope(&self, host: &HostState, task: &Task, extra: &[Arc<Vars>]) -> Arc<Scope> {
        let mut layers = Vec::with_capacity(14);
        layers.push(self.engine.hosts.globals.read().expect("globals").clone());
        if let Some(role) = &task.role {
            layers.push(role.defaults.clone());
        }
        layers.push(host.inventory_vars.clone());
        layers.push(host.facts());
        layers.push(self.play_vars.clone());
        if let Some(vf) = self.vars_files.get(&host.name) {
            layers.push(vf.clone());
        }
        if let Some(role) = &task.role {
            layers.push(role.vars.clone());
        }
        layers.extend(extra.iter().cloned());
        if !task.keywords.vars.is_empty() {
            layers.push(Arc::new(task.keywords.vars.clone()));
        }
        layers.push(host.task_vars());
        if let Some(role) = &task.role {
            layers.push(role.params.clone());
        }
        layers.push(self.engine.hosts.extra_vars());
        let mut magic = (*self.magic(&host.name)).clone();
        if let Some(role) = &task.role {
            magic.insert("role_name".into(), role.name.clone().into());
            magic.insert("role_path".into(), absolute(&role.path).into());
        }
        layers.push(Arc::new(magic));
        Scope::new(layers, Some(self.engine.hosts.clone()))
    }

    /// Walks a plan with a set of hosts; returns how each host ended.
    fn walk(
        &self,
        plan: &Plan,
        hosts: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
    ) -> HashMap<String, End> {
        if self.play.strategy == Strategy::Free && hosts.len() > 1 {
            let ends = Mutex::new(HashMap::new());
            self.parallel(hosts, |h| {
                let one = self.walk_linear(plan, &[h.to_string()], extra);
                ends.lock().expect("ends lock").extend(one);
                StepOutcome::Ok
            });
            return ends.into_inner().expect("ends lock");
        }
        self.walk_linear(plan, hosts, extra)
    }

    fn walk_linear(
        &self,
        plan: &Plan,
        hosts: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
    ) -> HashMap<String, End> {
        struct Cursor {
            host: String,
            node: Option<NodeIndex>,
            carrying: bool,
        }
        let mut cursors: Vec<Cursor> = hosts
            .iter()
            .map(|h| Cursor {
                host: h.clone(),
                node: plan.entry,
                carrying: false,
            })
            .collect();
        let mut ends: HashMap<String, End> = HashMap::new();
        let total = self.play_hosts.len().max(1);
        loop {
            if self.engine.stop_run.load(Ordering::SeqCst) || self.end_play.load(Ordering::SeqCst) {
                break;
            }
            let Some(next) = cursors.iter().filter_map(|c| c.node).min() else {
                break;
            };
            let batch: Vec<String> = cursors
                .iter()
                .filter(|c| c.node == Some(next))
                .map(|c| c.host.clone())
                .collect();
            let outcomes = self.run_step(plan, next, &batch, extra);
            let node = plan.node(next);
            let mut newly_failed = 0;
            for (host, outcome) in outcomes {
                let cursor = cursors
                    .iter_mut()
                    .find(|c| c.host == host)
                    .expect("host in walk");
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
                    StepOutcome::Failed { counted } => {
                        if let Some(target) = plan.follow(next, Edge::Rescue) {
                            if counted {
                                self.engine
                                    .count(&host, |s| s.failures = s.failures.saturating_sub(1));
                            }
                            self.engine.count(&host, |s| s.rescued += 1);
                            cursor.node = Some(target);
                        } else {
                            if !counted {
                                self.engine.count(&host, |s| s.failures += 1);
                            }
                            if let Some(target) = plan.follow(next, Edge::Always) {
                                cursor.carrying = true;
                                cursor.node = Some(target);
                            } else {
                                cursor.node = None;
                                ends.insert(host, End::Failed);
                                newly_failed += 1;
                            }
                        }
                    }
                    StepOutcome::Unreachable => {
                        cursor.node = None;
                        ends.insert(host, End::Unreachable);
                    }
                    StepOutcome::Ended => cursor.node = None,
                }
            }
            if newly_failed > 0 {
                let fatal = self.play.any_errors_fatal
                    || matches!(&node.step, Step::Task(t) if t.keywords.any_errors_fatal == Some(true));
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

    /// Runs `f` for each host, at most `forks` at a time, and returns the outcomes in host order.
    fn parallel<F>(&self, hosts: &[String], f: F) -> Vec<(String, StepOutcome)>
    where
        F: Fn(&str) -> StepOutcome + Sync,
    {
        if hosts.len() == 1 {
            return vec![(hosts[0].clone(), f(&hosts[0]))];
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<StepOutcome>>> = Mutex::new(vec![None; hosts.len()]);
        let workers = self.engine.opts.forks.max(1).min(hosts.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= hosts.len() {
                            break;
                        }
                        let outcome = f(&hosts[i]);
                        results.lock().expect("results lock")[i] = Some(outcome);
                    }
                });
            }
        });
        let results = results.into_inner().expect("results lock");
        hosts
            .iter()
            .cloned()
            .zip(
                results
                    .into_iter()
                    .map(|r| r.unwrap_or(StepOutcome::Failed { counted: false })),
            )
            .collect()
    }

    fn run_step(
        &self,
        plan: &Plan,
        node: NodeIndex,
        batch: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
    ) -> Vec<(String, StepOutcome)> {
        match &plan.node(node).step {
            Step::GatherFacts => {
                self.engine.out.banner("TASK [Gathering Facts]");
                self.engine
                    .out
                    .event(&json!({"event": "task_start", "task": "Gathering Facts"}));
                self.parallel(batch, |h| self.gather_facts(h))
            }
            Step::FlushHandlers => self.flush_handlers(batch),
            Step::Task(task) if task.module == "meta" => self.run_meta(task, batch, extra),
            Step::Task(task) => {
                if !self.engine.step_allows(&task.display_name()) {
                    return batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
                }
                self.engine
                    .out
                    .banner(&format!("TASK [{}]", task.display_name()));
                self.engine.out.event(&json!({"event": "task_start", "task": task.display_name(), "location": task.location.to_string()}));
                self.run_task_on(task, batch, extra, false)
            }
            Step::Include(include) => self.run_include(include, batch, extra),
        }
    }

    fn run_task_on(
        &self,
        task: &Task,
        batch: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
        handler: bool,
    ) -> Vec<(String, StepOutcome)> {
        let no_extra = Vec::new();
        let extra_of = |h: &str| extra.get(h).unwrap_or(&no_extra);
        let first = batch.first().cloned().unwrap_or_default();
        let run_once = {
            let state = self.engine.hosts.get(&first);
            let scope = self.scope(&state, task, extra_of(&first));
            bool_of(&task.keywords.run_once, &scope)
                .ok()
                .flatten()
                .unwrap_or(false)
        };
        if run_once && batch.len() > 1 {
            let outcome = self.run_task(&first, task, extra_of(&first), handler);
            // The one result is every host's (registered on each, as Ansible does).
            if let Some(reg) = &task.keywords.register
                && let Some(value) = self.engine.hosts.get(&first).task_vars().get(reg).cloned()
            {
                for h in &batch[1..] {
                    self.engine.hosts.get(h).set_task_var(reg, value.clone());
                }
            }
            return batch.iter().map(|h| (h.clone(), outcome.clone())).collect();
        }
        self.parallel(batch, |h| self.run_task(h, task, extra_of(h), handler))
    }

    fn gather_facts(&self, host: &str) -> StepOutcome {
        let state = self.engine.hosts.get(host);
        let scope = self.engine.hosts.scope_of(host);
        let target = match target_of(&scope, self.engine.opts, &self.play.keywords.connection) {
            Ok(t) => t,
            Err(e) => return self.report_failure(host, FACTS, &e),
        };
        let request = Request::new("setup", Map::new());
        let result = state
            .connection(&target)
            .and_then(|c| c.run(&request, None));
        match result {
            Ok(outcome) if !outcome.failed => {
                if let Some(Value::Object(facts)) = outcome.values.get("ansible_facts") {
                    state.set_facts(facts);
                }
                self.engine.count(host, |s| s.ok += 1);
                self.record(host, FACTS, "ok", false, None, None, 0.0, false);
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

    /// Adds a host × task result to the run's record (for reports, drift and the summary).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        host: &str,
        (task, location): (&str, Option<&Location>),
        status: &str,
        changed: bool,
        diff: Option<String>,
        msg: Option<&str>,
        duration: f64,
        handler: bool,
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
        };
        self.engine
            .out
            .event(&json!({"event": "task_result", "result": &record}));
        self.engine
            .records
            .lock()
            .expect("records lock")
            .push(record);
    }

    fn report_failure(
        &self,
        host: &str,
        task: (&str, Option<&Location>),
        msg: &str,
    ) -> StepOutcome {
        self.report_failure_after(host, task, msg, 0.0, false)
    }

    /// A task that failed before its module ran (a template, a condition), after `seconds`.
    fn report_failure_after(
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

    fn report_unreachable(
        &self,
        host: &str,
        task: (&str, Option<&Location>),
        msg: &str,
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
        );
        self.engine.count(host, |s| s.unreachable += 1);
        self.engine.out.result(
            host,
            Status::Unreachable,
            None,
            &json!({"changed": false, "msg": msg, "unreachable": true}),
            false,
        );
        StepOutcome::Unreachable
    }

    fn run_meta(
        &self,
        task: &Task,
        batch: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
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
                _ => StepOutcome::Ok,
            }
        })
    }

    fn conditions_hold(&self, conditions: &[Value], scope: &Arc<Scope>) -> Result<bool, String> {
        for condition in conditions {
            if !templar()
                .condition(condition, scope)
                .map_err(|e| e.message)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first `when` condition that is false, for the skipped result.
    fn false_condition(
        &self,
        conditions: &[Value],
        scope: &Arc<Scope>,
    ) -> Result<Option<Value>, String> {
        for condition in conditions {
            if !templar()
                .condition(condition, scope)
                .map_err(|e| e.message)?
            {
                return Ok(Some(condition.clone()));
            }
        }
        Ok(None)
    }

    /// Runs one task on one host: conditions, loop, action, result handling, output.
    fn run_task(&self, host: &str, task: &Task, extra: &[Arc<Vars>], handler: bool) -> StepOutcome {
        let started = Instant::now();
        let state = self.engine.hosts.get(host);
        let scope = self.scope(&state, task, extra);
        let no_log = bool_of(&task.keywords.no_log, &scope)
            .ok()
            .flatten()
            .unwrap_or(false);
        let fail = |msg: String| {
            let msg = format!(
                "{msg} (task {:?} at {})",
                task.display_name(),
                task.location
            );
            let place = (task.display_name(), Some(&task.location));
            self.report_failure_after(
                host,
                (&place.0, place.1),
                &msg,
                started.elapsed().as_secs_f64(),
                handler,
            )
        };
        let ignore_errors = match bool_of(&task.keywords.ignore_errors, &scope) {
            Ok(v) => v.unwrap_or(false),
            Err(e) => return fail(e),
        };
        let items = match &task.keywords.loop_ {
            None => None,
            Some(l) => match loop_items(l.kind, &l.items, &scope, &self.play.dir) {
                Ok(items) => Some(items),
                Err(e) => return fail(e),
            },
        };
        let (result, plan, unreachable) = match items {
            None => {
                match self.false_condition(&task.keywords.when, &scope) {
                    Err(e) => return fail(format!("the conditional check failed: {e}")),
                    Ok(Some(cond)) => {
                        let result = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond});
                        self.finish(
                            host,
                            task,
                            &state,
                            result.as_object().cloned().unwrap_or_default(),
                            None,
                            no_log,
                            ignore_errors,
                            (handler, started),
                        );
                        return StepOutcome::Ok;
                    }
                    Ok(None) => {}
                }
                let item = self.run_one(host, &state, task, &scope);
                (item.result, Some(item.plan), item.unreachable)
            }
            Some(items) => self.run_loop(host, &state, task, &scope, items, no_log),
        };
        if let Some(msg) = unreachable {
            return self.report_unreachable(
                host,
                (&task.display_name(), Some(&task.location)),
                &msg,
            );
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

    /// Registers, notifies, counts and prints a task's result.
    #[allow(clippy::too_many_arguments)]
    fn finish(
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
        let display = result.clone();
        result.retain(|k, _| !k.starts_with('_'));
        if let Some(reg) = &task.keywords.register {
            state.set_task_var(reg, Value::Object(result.clone()));
        }
        let item = ItemResult {
            result: display,
            plan: plan.unwrap_or_default(),
            unreachable: None,
            meta: None,
        };
        let status = item.status();
        let is_loop = task.keywords.loop_.is_some() && item.result.contains_key("results");
        if status == Status::Changed && !task.keywords.notify.is_empty() {
            let mut notified = self.notified.lock().expect("notify lock");
            let set = notified.entry(host.to_string()).or_default();
            for name in &task.keywords.notify {
                set.insert(name.clone());
            }
        }
        let ignored = status == Status::Failed && ignore_errors;
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
        self.record(
            host,
            (&task.display_name(), Some(&task.location)),
            word,
            item.flag("changed"),
            diff,
            msg.as_deref(),
            started.elapsed().as_secs_f64(),
            handler,
        );
        if !is_loop {
            self.print_result(host, &item, None, no_log, ignored);
        } else if ignored {
            self.engine.out.print("...ignoring");
        }
        match status {
            Status::Failed if !ignored => StepOutcome::Failed { counted: false },
            _ => StepOutcome::Ok,
        }
    }

    fn print_result(
        &self,
        host: &str,
        item: &ItemResult,
        label: Option<&str>,
        no_log: bool,
        ignored: bool,
    ) {
        let status = item.status();
        let out = &self.engine.out;
        let censored = json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": item.flag("changed")});
        if out.show_diff && !no_log && matches!(status, Status::Changed) {
            out.diff(&actions::diff_text(&item.plan));
        }
        let shown = if no_log {
            censored
        } else {
            Value::Object(item.result.clone())
        };
        let host = match item.result.get("_ansible_delegated_label") {
            Some(to) => format!("{host} -> {}", value_text(to)),
            None => host.to_string(),
        };
        out.result(&host, status, label, &shown, ignored);
    }

    fn run_loop(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
        items: Vec<Value>,
        no_log: bool,
    ) -> (
        Map<String, Value>,
        Option<settle_modules::Plan>,
        Option<String>,
    ) {
        let lc = &task.keywords.loop_control;
        let loop_var = lc.loop_var.clone().unwrap_or_else(|| "item".into());
        if items.is_empty() {
            let result = json!({"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []});
            return (result.as_object().cloned().unwrap_or_default(), None, None);
        }
        let mut results = Vec::with_capacity(items.len());
        let mut combined_plan = settle_modules::Plan::default();
        let count = items.len();
        for (index, item) in items.into_iter().enumerate() {
            let mut layer = Vars::new();
            layer.insert(loop_var.clone(), item.clone());
            layer.insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &lc.index_var {
                layer.insert(index_var.clone(), index.into());
            }
            layer.insert(
                "ansible_loop".into(),
                json!({"index": index + 1, "index0": index, "first": index == 0, "last": index + 1 == count, "length": count,
                       "revindex": count - index, "revindex0": count - index - 1}),
            );
            let item_scope = scope.with_layer(Arc::new(layer));
            let label = match &lc.label {
                // Ansible's words; the item may hold the very secret no_log protects.
                _ if no_log => "(censored due to no_log)".to_string(),
                Some(l) => templar()
                    .render_text(&value_text(l), &item_scope)
                    .unwrap_or_else(|_| value_text(l)),
                None => python_repr(
                    &minijinja::Value::from(minijinja::value::Serde(&item)),
                    true,
                ),
            };
            let mut r = match self.false_condition(&task.keywords.when, &item_scope) {
                Err(e) => ItemResult::failed(format!("the conditional check failed: {e}")),
                Ok(Some(cond)) => ItemResult {
                    result: json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond})
                        .as_object().cloned().unwrap_or_default(),
                    plan: Default::default(),
                    unreachable: None,
                    meta: None,
                },
                Ok(None) => self.run_one(host, state, task, &item_scope),
            };
            if let Some(msg) = r.unreachable.take() {
                return (Map::new(), None, Some(msg));
            }
            r.result.insert(loop_var.clone(), item);
            r.result
                .insert("ansible_loop_var".into(), loop_var.clone().into());
            self.print_result(host, &r, Some(&label), no_log, false);
            combined_plan.changes.extend(r.plan.changes.iter().cloned());
            combined_plan.content.extend(r.plan.content.iter().cloned());
            let mut registered = r.result.clone();
            registered.retain(|k, _| !k.starts_with('_'));
            results.push((r.status(), Value::Object(registered)));
            if let Some(pause) = lc.pause {
                std::thread::sleep(Duration::from_secs_f64(pause));
            }
        }
        let any = |s: Status| results.iter().any(|(st, _)| *st == s);
        let mut result = Map::new();
        result.insert("changed".into(), any(Status::Changed).into());
        if any(Status::Failed) {
            result.insert("failed".into(), true.into());
            result.insert("msg".into(), "One or more items failed".into());
        } else {
            result.insert("msg".into(), "All items completed".into());
        }
        if results.iter().all(|(s, _)| *s == Status::Skipped) {
            result.insert("skipped".into(), true.into());
        }
        result.insert(
            "results".into(),
            Value::Array(results.into_iter().map(|(_, v)| v).collect()),
        );
        (result, Some(combined_plan), None)
    }

    /// One module call (or controller action) with `until`, `changed_when` and `failed_when`.
    fn run_one(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
    ) -> ItemResult {
        // Where the module runs: this host, or the one named by delegate_to (with its variables).
        let delegate = match &task.keywords.delegate_to {
            None => None,
            Some(d) => match templar().render_text(&value_text(d), scope) {
                Ok(name) if name == host => None,
                Ok(name) => {
                    let delegate_scope = self.engine.hosts.scope_of(&name);
                    Some((name, delegate_scope))
                }
                Err(e) => return ItemResult::failed(format!("delegate_to: {}", e.message)),
            },
        };
        let mut r = self.run_here_or_delegated(host, state, task, scope, delegate.as_ref());
        if let Some((to, delegate_scope)) = &delegate {
            r.result.insert(
                "_ansible_delegated_label".into(),
                delegate_label(to, delegate_scope).into(),
            );
        }
        r
    }

    fn run_here_or_delegated(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
        delegate: Option<&(String, Arc<Scope>)>,
    ) -> ItemResult {
        let opts = self.engine.opts;
        let check_mode = match bool_of(&task.keywords.check_mode, scope) {
            Ok(v) => v.unwrap_or(opts.check),
            Err(e) => return ItemResult::failed(e),
        };
        let diff = match bool_of(&task.keywords.diff, scope) {
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
        let target = match target_of(
            &exec_scope,
            opts,
            &task
                .keywords
                .connection
                .clone()
                .or(self.play.keywords.connection.clone()),
        ) {
            Ok(t) => t,
            Err(e) => return ItemResult::failed(e),
        };
        let conn_state = exec_state.as_deref().unwrap_or(state);
        let run_module = |request: &Request| {
            conn_state
                .connection(&target)?
                .run(request, become_.as_ref())
        };
        let set_var = |k: &str, v: Value| state.set_task_var(k, v);
        let ctx = ActionContext {
            task,
            scope,
            play_dir: &self.play.dir,
            check_mode,
            diff,
            verbosity: opts.verbosity,
            environment,
            run_module: &run_module,
            set_var: &set_var,
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
        let attempts_allowed = if task.keywords.until.is_empty() {
            1
        } else {
            retries.max(1)
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
            if let Err(e) = self.apply_result_conditions(task, scope, &mut item) {
                return ItemResult::failed(e);
            }
            if task.keywords.until.is_empty() {
                return item;
            }
            let reg_scope = register_scope(task, scope, &item.result);
            match self.conditions_hold(&task.keywords.until, &reg_scope) {
                Ok(true) => {
                    item.result.insert("attempts".into(), attempt.into());
                    return item;
                }
                Ok(false) if attempt < attempts_allowed => {
                    self.engine.out.print(&format!(
                        "FAILED - RETRYING: [{host}]: {} ({} retries left).",
                        task.display_name(),
                        attempts_allowed - attempt
                    ));
                    std::thread::sleep(Duration::from_secs_f64(delay.max(0.0)));
                }
                Ok(false) => {
                    item.result.insert("attempts".into(), attempt.into());
                    item.result.insert("failed".into(), true.into());
                    item.result
                        .entry("msg")
                        .or_insert_with(|| "Retries exhausted".into());
                    return item;
                }
                Err(e) => return ItemResult::failed(format!("until: {e}")),
            }
        }
    }

    /// `changed_when` and `failed_when`, with the result visible under the `register` name.
    fn apply_result_conditions(
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
            let changed = self
                .all_true(&task.keywords.changed_when, &reg_scope)
                .map_err(|e| format!("changed_when: {e}"))?;
            item.result.insert("changed".into(), changed.into());
        }
        if !task.keywords.failed_when.is_empty() {
            let failed = self
                .any_true(&task.keywords.failed_when, &reg_scope)
                .map_err(|e| format!("failed_when: {e}"))?;
            item.result
                .insert("failed_when_result".into(), failed.into());
            item.result.insert("failed".into(), failed.into());
        }
        Ok(())
    }

    fn all_true(&self, conditions: &[Value], scope: &Arc<Scope>) -> Result<bool, String> {
        self.conditions_hold(conditions, scope)
    }

    /// `failed_when` as a list: the task fails if any holds (Ansible's "or" for failed_when).
    fn any_true(&self, conditions: &[Value], scope: &Arc<Scope>) -> Result<bool, String> {
        for c in conditions {
            if templar().condition(c, scope).map_err(|e| e.message)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn run_include(
        &self,
        include: &Include,
        batch: &[String],
        extra: &HashMap<String, Vec<Arc<Vars>>>,
    ) -> Vec<(String, StepOutcome)> {
        let no_extra = Vec::new();
        // Each host's list of (file, variables) to include, in order.
        let mut plans: Vec<(String, IncludeList)> = Vec::new();
        let mut outcomes: HashMap<String, StepOutcome> = HashMap::new();
        let name = include_name(include);
        let fail_include =
            |host: &str, e: &str| self.report_failure(host, (&name, Some(&include.location)), e);
        let fake_task = include_as_task(include);
        for host in batch {
            let state = self.engine.hosts.get(host);
            let scope = self.scope(&state, &fake_task, extra.get(host).unwrap_or(&no_extra));
            let items = match &include.keywords.loop_ {
                None => vec![None],
                Some(l) => match loop_items(l.kind, &l.items, &scope, &self.play.dir) {
                    Ok(items) => items.into_iter().map(Some).collect(),
                    Err(e) => {
                        outcomes.insert(host.clone(), fail_include(host, &e));
                        continue;
                    }
                },
            };
            let loop_var = include
                .keywords
                .loop_control
                .loop_var
                .clone()
                .unwrap_or_else(|| "item".into());
            let mut list = Vec::new();
            let mut failed = None;
            for item in items {
                let mut layer = include.keywords.vars.clone();
                if let Some(item) = &item {
                    layer.insert(loop_var.clone(), item.clone());
                }
                let item_scope = scope.with_layer(Arc::new(layer.clone()));
                match self.conditions_hold(&include.keywords.when, &item_scope) {
                    Ok(false) => continue,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                    Ok(true) => {}
                }
                let file = match templar().render(&include.file, &item_scope) {
                    Ok(f) => value_text(&f),
                    Err(e) => {
                        failed = Some(e.message);
                        break;
                    }
                };
                let path = include.base_dir.join(&file);
                let path = if path.exists() || include.role.is_none() {
                    path
                } else {
                    include
                        .role
                        .as_ref()
                        .map(|r| r.path.join("tasks").join(&file))
                        .unwrap_or(path)
                };
                list.push((path, Arc::new(layer)));
            }
            if let Some(e) = failed {
                outcomes.insert(host.clone(), fail_include(host, &e));
                continue;
            }
            if list.is_empty() {
                self.engine.count(host, |s| s.skipped += 1);
                self.engine
                    .out
                    .result(host, Status::Skipped, None, &json!({}), false);
            }
            plans.push((host.clone(), list));
        }
        let rounds = plans.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
        for round in 0..rounds {
            // Hosts that include the same file at this round run it together.
            let mut groups: Vec<(PathBuf, Vec<String>)> = Vec::new();
            let mut layers: HashMap<String, Vec<Arc<Vars>>> = HashMap::new();
            for (host, list) in &plans {
                if outcomes.get(host).is_some_and(|o| *o != StepOutcome::Ok) {
                    continue;
                }
                let Some((path, layer)) = list.get(round) else {
                    continue;
                };
                let mut stack = extra.get(host).cloned().unwrap_or_default();
                stack.push(layer.clone());
                layers.insert(host.clone(), stack);
                match groups.iter_mut().find(|(p, _)| p == path) {
                    Some((_, hosts)) => hosts.push(host.clone()),
                    None => groups.push((path.clone(), vec![host.clone()])),
                }
            }
            for (path, hosts) in groups {
                self.engine.out.print(&format!(
                    "included: {} for {}",
                    absolute(&path),
                    hosts.join(", ")
                ));
                for h in &hosts {
                    self.engine.count(h, |s| s.ok += 1);
                }
                let tasks = match self.load_included(&path, include) {
                    Ok(t) => t,
                    Err(e) => {
                        for h in &hosts {
                            outcomes.insert(h.clone(), fail_include(h, &e));
                        }
                        continue;
                    }
                };
                let plan = Plan::for_tasks(&tasks, &self.engine.opts.selection);
                let ends = self.walk_linear(&plan, &hosts, &layers);
                for (h, end) in ends {
                    let outcome = match end {
                        End::Done => StepOutcome::Ok,
                        End::Failed => StepOutcome::Failed { counted: true },
                        End::Unreachable => StepOutcome::Unreachable,
                    };
                    outcomes.insert(h, outcome);
                }
            }
        }
        batch
            .iter()
            .map(|h| (h.clone(), outcomes.remove(h).unwrap_or(StepOutcome::Ok)))
            .collect()
    }

    fn load_included(
        &self,
        path: &PathBuf,
        include: &Include,
    ) -> Result<Arc<Vec<TaskNode>>, String> {
        if let Some(t) = self.included.lock().expect("include lock").get(path) {
            return Ok(t.clone());
        }
        let tasks = settle_playbooks::load_tasks_file(
            path,
            &self.play.dir,
            include.role.clone(),
            &include.apply,
        )
        .map_err(|e| e.to_string())?;
        for task in tasks_of(&tasks) {
            actions::validate(task)
                .map_err(|e| format!("{}: task {:?}: {e}", task.location, task.display_name()))?;
        }
        let tasks = Arc::new(tasks);
        self.included
            .lock()
            .expect("include lock")
            .insert(path.clone(), tasks.clone());
        Ok(tasks)
    }

    /// Runs the handlers notified on these hosts, in the order they are defined.
    fn flush_handlers(&self, batch: &[String]) -> Vec<(String, StepOutcome)> {
        let mut outcomes: HashMap<String, StepOutcome> =
            batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
        for handler in &self.play.handlers {
            let mut names: Vec<String> = handler.listen.clone();
            if let Some(n) = &handler.name {
                names.push(n.clone());
                if let Some(role) = &handler.role {
                    names.push(format!("{} : {n}", role.name));
                }
            }
            let hosts: Vec<String> = {
                let mut notified = self.notified.lock().expect("notify lock");
                batch
                    .iter()
                    .filter(|h| outcomes.get(*h) == Some(&StepOutcome::Ok))
                    .filter(|h| {
                        let Some(set) = notified.get_mut(*h) else {
                            return false;
                        };
                        let hit = names.iter().any(|n| set.contains(n));
                        if hit && let Some(n) = &handler.name {
                            set.shift_remove(n);
                        }
                        hit
                    })
                    .cloned()
                    .collect()
            };
            if hosts.is_empty() {
                continue;
            }
            self.engine
                .out
                .banner(&format!("RUNNING HANDLER [{}]", handler.display_name()));
            self.engine.out.event(&json!({"event": "handler_start", "task": handler.display_name(), "location": handler.location.to_string()}));
            for (h, outcome) in self.run_task_on(handler, &hosts, &HashMap::new(), true) {
                if let StepOutcome::Failed { .. } = outcome {
                    self.engine.count(&h, |s| s.failures += 1);
                    outcomes.insert(h, StepOutcome::Failed { counted: true });
                } else if outcome != StepOutcome::Ok {
                    outcomes.insert(h, outcome);
                }
            }
        }
        // Topics no handler listens to are dropped once the flush is done.
        let mut notified = self.notified.lock().expect("notify lock");
        for h in batch {
            if outcomes.get(h) == Some(&StepOutcome::Ok) {
                notified.remove(h);
            }
        }
        batch
            .iter()
            .map(|h| (h.clone(), outcomes.remove(h).unwrap_or(StepOutcome::Ok)))
            .collect()
    }
}

fn tasks_of(nodes: &[TaskNode]) -> Vec<&Task> {
    let mut out = Vec::new();
    for n in nodes {
        match n {
            TaskNode::Task(t) => out.push(t),
            TaskNode::Block(b) => {
                out.extend(tasks_of(&b.block));
                out.extend(tasks_of(&b.rescue));
                out.extend(tasks_of(&b.always));
            }
            TaskNode::Include(_) => {}
        }
    }
    out
}

/// A stand-in task with the include's keywords, for building its scope.
fn include_as_task(include: &Include) -> Task {
    Task {
        name: include.name.clone(),
        module: "include_tasks".into(),
        module_as_written: "include_tasks".into(),
        args: Map::new(),
        keywords: settle_playbooks::Keywords {
            vars: Vars::new(),
            ..include.keywords.clone()
        },
        location: include.location.clone(),
        role: include.role.clone(),
        listen: Vec::new(),
    }
}

fn register_scope(task: &Task, scope: &Arc<Scope>, result: &Map<String, Value>) -> Arc<Scope> {
    match &task.keywords.register {
        Some(name) => {
            let mut layer = Vars::new();
            let mut clean = result.clone();
            clean.retain(|k, _| !k.starts_with('_'));
            layer.insert(name.clone(), Value::Object(clean));
            scope.with_layer(Arc::new(layer))
        }
        None => scope.clone(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The items of a loop, rendered.
fn loop_items(
    kind: LoopKind,
    items: &Value,
    scope: &Arc<Scope>,
    play_dir: &std::path::Path,
) -> Result<Vec<Value>, String> {
    let rendered = templar()
        .render(items, scope)
        .map_err(|e| format!("loop: {}", e.message))?;
    let as_list = |v: Value| -> Result<Vec<Value>, String> {
        match v {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            Value::String(s) if kind != LoopKind::List => Ok(s
                .split(',')
                .map(|x| Value::String(x.trim().to_string()))
                .collect()),
            other => Err(format!(
                "loop requires a list, got {}: {}",
                type_name(&other),
                py_json(&other, None)
            )),
        }
    };
    match kind {
        LoopKind::List => as_list(rendered),
        LoopKind::Items => {
            let mut out = Vec::new();
            for item in as_list(rendered)? {
                match item {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(out)
        }
        LoopKind::Indexed => Ok(as_list(rendered)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!([i, v]))
            .collect()),
        LoopKind::Dict => match rendered {
            Value::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()),
            other => Err(format!(
                "with_dict expects a dict, got {}",
                type_name(&other)
            )),
        },
        LoopKind::Sequence => {
            let spec = value_text(&rendered);
            let mut params: BTreeMap<String, String> = BTreeMap::new();
            for word in spec.split_whitespace() {
                if let Some((k, v)) = word.split_once('=') {
                    params.insert(k.to_string(), v.to_string());
                } else if let Some((a, b)) = word.split_once('-') {
                    params.insert("start".into(), a.into());
                    params.insert("end".into(), b.into());
                }
            }
            let num = |k: &str, d: i64| params.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
            let start = num("start", 1);
            let stride = num("stride", 1).max(1);
            let end = match params.get("count") {
                Some(c) => {
                    start
                        + c.parse::<i64>()
                            .map_err(|_| "with_sequence: count must be a number")?
                            * stride
                        - stride
                }
                None => num("end", start),
            };
            let format = params.get("format").cloned();
            let mut out = Vec::new();
            let mut i = start;
            while i <= end {
                let text = match &format {
                    Some(f) => printf_int(f, i),
                    None => i.to_string(),
                };
                out.push(Value::String(text));
                i += stride;
            }
            Ok(out)
        }
        LoopKind::Fileglob => {
            let mut out = Vec::new();
            for pattern in as_list(rendered)? {
                let pattern = value_text(&pattern);
                let full = if pattern.starts_with('/') {
                    pattern
                } else {
                    play_dir.join("files").join(&pattern).display().to_string()
                };
                for path in glob::glob(&full)
                    .map_err(|e| format!("with_fileglob: {e}"))?
                    .flatten()
                {
                    if path.is_file() {
                        out.push(Value::String(path.display().to_string()));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn printf_int(format: &str, value: i64) -> String {
    // The common `%02d`/`%d`/`%x` forms of with_sequence's format.
    let Some(start) = format.find('%') else {
        return format.to_string();
    };
    let rest = &format[start + 1..];
    let spec_len = rest
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or(rest.len(), |i| i + 1);
    let spec = &rest[..spec_len];
    let width: usize = spec
        .trim_start_matches('0')
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(0);
    let zero = spec.starts_with('0');
    let body = match (spec.chars().last(), zero) {
        (Some('x'), true) => format!("{value:0width$x}"),
        (Some('x'), false) => format!("{value:width$x}"),
        (_, true) => format!("{value:0width$}"),
        (_, false) => format!("{value:width$}"),
    };
    format!("{}{body}{}", &format[..start], &rest[spec_len..])
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn environment_of(
    entries: &[Value],
    scope: &Arc<Scope>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for entry in entries {
        match templar()
            .render(entry, scope)
            .map_err(|e| format!("environment: {}", e.message))?
        {
            Value::Object(map) => {
                for (k, v) in map {
                    env.insert(k, value_text(&v));
                }
            }
            Value::Null => {}
            other => {
                return Err(format!(
                    "environment must be a mapping, got {}",
                    type_name(&other)
                ));
            }
        }
    }
    Ok(env)
}

fn become_of(task: &Task, scope: &Arc<Scope>, opts: &RunOptions) -> Result<Option<Become>, String> {
    let var_bool = |name: &str| -> Result<Option<bool>, String> {
        Ok(scope
            .get(name)
            .map_err(|e| e.message)?
            .map(|v| json_bool(&v)))
    };
    let wanted = match bool_of(&task.keywords.become_, scope)? {
        Some(b) => b,
        None => var_bool("ansible_become")?.unwrap_or(opts.become_),
    };
    if !wanted {
        return Ok(None);
    }
    let user = match &task.keywords.become_user {
        Some(u) => value_text(&templar().render(u, scope).map_err(|e| e.message)?),
        None => match scope.get("ansible_become_user").map_err(|e| e.message)? {
            Some(u) => value_text(&u),
            None => opts.become_user.clone().unwrap_or_else(|| "root".into()),
        },
    };
    let password = match scope
        .get("ansible_become_password")
        .map_err(|e| e.message)?
        .or(scope.get("ansible_become_pass").map_err(|e| e.message)?)
    {
        Some(p) => Some(value_text(&p)),
        None => opts.become_password.clone(),
    };
    Ok(Some(Become { user, password }))
}

/// How Ansible shows a delegated task's host after the arrow: `db1`, with the address when the
/// delegate's `ansible_host` is not its name: `db1(10.0.0.5)`.
fn delegate_label(to: &str, delegate_scope: &Arc<Scope>) -> String {
    match delegate_scope
        .get("ansible_host")
        .ok()
        .flatten()
        .map(|a| value_text(&a))
    {
        Some(address) if address != to => format!("{to}({address})"),
        _ => to.to_string(),
    }
}

/// How to reach a host, from its variables (`ansible_connection`, `ansible_host`, …).
fn target_of(
    scope: &Arc<Scope>,
    opts: &RunOptions,
    keyword: &Option<String>,
) -> Result<Target, String> {
    let get = |name: &str| -> Result<Option<String>, String> {
        Ok(scope
            .get(name)
            .map_err(|e| e.message)?
            .map(|v| value_text(&v)))
    };
    let host = get("inventory_hostname")?.unwrap_or_default();
    let transport = match get("ansible_connection")? {
        Some(c) => c,
        None => keyword
            .clone()
            .or(opts.connection.clone())
            .unwrap_or_else(|| "ssh".into()),
    };
    let port = match get("ansible_port")?.or(get("ansible_ssh_port")?) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("ansible_port {p:?} is not a port number"))?,
        ),
        None => None,
    };
    Ok(Target {
        transport,
        address: get("ansible_host")?
            .or(get("ansible_ssh_host")?)
            .unwrap_or(host),
        port,
        user: get("ansible_user")?
            .or(get("ansible_ssh_user")?)
            .or(opts.remote_user.clone()),
        private_key_file: get("ansible_ssh_private_key_file")?.or(get("ansible_private_key_file")?),
        ssh_common_args: get("ansible_ssh_common_args")?,
        timeout_secs: opts.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches_by_number_percent_and_list() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        assert_eq!(serial_batches(Some(&json!(2)), &hosts).len(), 3);
        assert_eq!(serial_batches(Some(&json!("40%")), &hosts)[0].len(), 2);
        let sizes: Vec<usize> = serial_batches(Some(&json!([1, 3])), &hosts)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [1, 3, 1]);
        assert_eq!(serial_batches(None, &hosts).len(), 1);
    }

    #[test]
    fn sequence_formats() {
        assert_eq!(printf_int("web%02d", 3), "web03");
        assert_eq!(printf_int("%d", 10), "10");
    }
}
