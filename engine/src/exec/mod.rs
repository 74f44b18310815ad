//! Execution: hosts walk each play's plan, in parallel up to `forks`.
//!
//! The rooms, one file each:
//! - `scope`: What a task sees.
//! - `strategy`: Strategy walking.
//! - `task`: One task on one host.
//! - `meta`: The steps that are not module tasks.
//! - `results`: A task's result once it is made.
//! - `loops`: Loops.
//! - `includes`: `include_tasks`.
//! - `handlers`: Handlers.
//! - `delegate`: Where a task runs and as whom.

mod async_poll;
mod delegate;
mod handlers;
mod includes;
mod loops;
mod meta;
mod results;
mod scope;
mod strategy;
mod task;
pub(crate) use task::current_task_location;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use indexmap::IndexSet;
use serde_json::{Value, json};
use settle_playbooks::{Location, Play, Strategy, Task, TaskNode};

use crate::Unpoisoned;
use crate::hosts::Hosts;
use crate::output::Output;
use crate::plan::Plan;
use crate::recap::Stats;
use crate::report::Record;
use crate::template::{Scope, templar};
use crate::value_text;
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
    /// An include whose file or role could not be read: counted as failed already (once per
    /// file or loop item that failed), and it stays in the recap when a `rescue` takes it
    /// (which counts no rescue), as in Ansible; only the exit code forgets it then.
    NotLoaded {
        failures: usize,
    },
    /// `meta: end_host`, or the play was ended.
    Ended,
    /// `meta: clear_host_errors`: a failure carried through `always` is forgotten, and the run's
    /// exit code no longer counts the host's failures so far.
    ErrorsCleared,
}

/// How a host's walk through a plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Done,
    Failed,
    Unreachable,
}

/// Whether a play or task is in check mode as Ansible's callback sees it when it shows its
/// banner: its `check_mode` as written (or inherited), taken for its truth, else `--check`.
fn checking(keywords: &settle_playbooks::Keywords, check: bool) -> bool {
    keywords
        .check_mode
        .as_deref()
        .map_or(check, crate::template::json_truthy)
}

pub(crate) struct Engine<'a> {
    pub opts: &'a RunOptions,
    pub out: Output,
    pub stats: Mutex<Stats>,
    pub hosts: Arc<Hosts>,
    /// `any_errors_fatal` fired: nothing more runs.
    stop_run: AtomicBool,
    /// An error that ends the run where it stands, as ansible-playbook's errors do: no recap,
    /// and this exit code (1 for an error raised out of the strategy, such as a `throttle` that
    /// is no number or a notify no handler answers; 4 for an included file that does not
    /// parse). 0 while the run goes on.
    aborted: AtomicU8,
    /// `--step` answered "continue".
    step_continue: AtomicBool,
    /// Every host × task result, in the order they came.
    pub records: Mutex<Vec<Record>>,
    started: Mutex<bool>,
}

/// A task file (or role) read by an include, and where that include is.
type IncludedFile = (PathBuf, String);

/// One play being run.
struct PlayRun<'a> {
    engine: &'a Engine<'a>,
    play: &'a Play,
    play_vars: Arc<Vars>,
    vars_files: Mutex<HashMap<String, scope::HostVarsFiles>>,
    /// Each host's own magic variables, and the play's (shared by all hosts).
    magic: Mutex<HashMap<String, Arc<Vars>>>,
    play_magic: Mutex<Option<Arc<Vars>>>,
    /// The hosts the play runs on (those still in the run), and every host its pattern matches
    /// (`ansible_play_hosts_all`: also those that failed in an earlier play).
    play_hosts: Vec<String>,
    play_hosts_all: Vec<String>,
    /// The play's strategy, its template rendered.
    strategy: Strategy,
    /// The `serial` batch being run (`ansible_play_batch`).
    batch: Mutex<Vec<String>>,
    /// Per host, the notifications saved by tasks until the next flush (in the order made).
    notified: Mutex<HashMap<String, IndexSet<String>>>,
    /// Per host, the handlers notified and not yet run (Ansible's `Handler.notified_hosts`),
    /// by their index in the play's handlers: a flush runs them in one pass, so a handler that
    /// one defined after it notifies waits for the next flush.
    pending_handlers: Mutex<HashMap<String, IndexSet<usize>>>,
    end_play: AtomicBool,
    /// `meta: end_batch`: the batch in hand ends; the next one (`serial`) starts.
    end_batch: AtomicBool,
    /// `throttle`: how many hosts run each throttled task now (keyed by the task's address).
    throttled: Mutex<HashMap<usize, usize>>,
    throttle_freed: std::sync::Condvar,
    /// Task files and roles read by includes, once per run: keyed by the file (or role) and
    /// the include that reads it (its `apply` is part of what was read).
    included: Mutex<HashMap<IncludedFile, Arc<Vec<TaskNode>>>>,
    /// Handlers of roles that `include_role` read while the play ran.
    included_handlers: Mutex<Vec<Task>>,
    /// Hosts of this play that failed or were unreachable (gone from `ansible_play_hosts`).
    failed_hosts: Mutex<HashSet<String>>,
    /// The `defaults/` and `vars/` of every role the play uses, merged in play order: visible
    /// to the whole play, as with Ansible's default `private_role_vars = false`.
    role_defaults: Mutex<Arc<Vars>>,
    role_vars: Mutex<Arc<Vars>>,
    /// Per role instance ([`settle_playbooks::Role::instance`]): the hosts that ran one of its
    /// tasks, and those that reached its end after that (for them it has run).
    role_runs: Mutex<HashMap<String, RoleRun>>,
    /// `meta: end_role`: (host, role instance) whose remaining tasks the host passes over, up
    /// to the role's implicit `role_complete`.
    ended_roles: Mutex<HashSet<(String, String)>>,
}

#[derive(Default)]
struct RoleRun {
    ran_a_task: HashSet<String>,
    completed: HashSet<String>,
}

impl<'a> Engine<'a> {
    /// ` [CHECK MODE]` after a banner, when markers are on and these keywords check.
    pub(super) fn check_marker(&self, keywords: &settle_playbooks::Keywords) -> &'static str {
        self.out.check_marker(checking(keywords, self.opts.check))
    }

    pub fn new(opts: &'a RunOptions, hosts: Arc<Hosts>) -> Self {
        Engine {
            opts,
            out: Output::new(opts.verbosity, opts.json_output)
                .minimal(opts.adhoc_module.clone(), opts.one_line),
            stats: Mutex::new(Stats::default()),
            hosts,
            stop_run: AtomicBool::new(false),
            aborted: AtomicU8::new(0),
            step_continue: AtomicBool::new(false),
            records: Mutex::default(),
            started: Mutex::new(opts.selection.start_at_task.is_none()),
        }
    }

    /// Nothing more may run: `any_errors_fatal` fired, every host failed, or the run was
    /// interrupted.
    fn stopped(&self) -> bool {
        self.stop_run.load(Ordering::SeqCst) || crate::interrupt::interrupted()
    }

    /// Ends the whole run with an error, as an `AnsibleError` raised while Ansible runs a play
    /// does: the message (with where it is, when known), nothing more run, no recap, and
    /// `code` as the exit code.
    pub(crate) fn abort_run(&self, message: &str, at: Option<&settle_yaml::Location>, code: u8) {
        match at {
            Some(at) => {
                let origin = crate::output::source_excerpt(at).join("\n");
                self.out.error(&format!("{message}\n{origin}\n"));
            }
            None => self.out.error(message),
        }
        let _ = self
            .aborted
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.stop_run.store(true, Ordering::SeqCst);
    }

    /// The exit code [`Engine::abort_run`] ended the run with.
    pub(crate) fn aborted(&self) -> Option<u8> {
        Some(self.aborted.load(Ordering::SeqCst)).filter(|c| *c != 0)
    }

    pub fn run_play(&self, play: &Play) {
        if self.stopped() {
            return;
        }
        // The name is a template of the play's variables and the extra vars, as in Ansible.
        let name = match crate::template::is_template(&play.name) {
            true => templar()
                .render_text(&play.name, &self.play_scope(play))
                .unwrap_or_else(|_| play.name.clone()),
            false => play.name.clone(),
        };
        // The pattern's warnings come before the play's banner, as Ansible's.
        let all_hosts = self.play_hosts(play);
        // As are the play's vars_files, read once with the play's variables alone: a file
        // that does not parse ends the run here; an item naming a variable no host has yet
        // is warned of (and tried again for each host, and for each task until it is read).
        let mut unnamed = false;
        let read = scope::read_vars_files(play, &self.play_scope(play), &mut |_| unnamed = true);
        if unnamed {
            self.out
                .warning("skipping vars_files item due to an undefined variable");
        }
        if let Err((message, code)) = read {
            self.abort_run(&message, None, code);
            return;
        }
        self.out.banner(&format!(
            "PLAY [{name}]{}",
            self.check_marker(&play.keywords)
        ));
        self.out.event(
            &json!({"event": "play_start", "play": name, "location": play.location.to_string()}),
        );
        let all_hosts = match all_hosts {
            Ok(h) => h,
            Err(e) => {
                self.out.error(&e);
                return;
            }
        };
        // Hosts that failed or were unreachable in an earlier play stay out of this one.
        let hosts: Vec<String> = all_hosts
            .iter()
            .filter(|h| !self.hosts.get(h).is_out())
            .cloned()
            .collect();
        if hosts.is_empty() {
            self.out.no_hosts_matched();
            return;
        }
        let strategy = match self.play_strategy(play) {
            Ok(s) => s,
            Err(e) => {
                self.out.error(&e);
                self.stop_run.store(true, Ordering::SeqCst);
                return;
            }
        };
        self.out.set_lazy_banners(strategy == Strategy::Free);
        let plan = {
            let mut started = self.started.lock().unpoisoned();
            Plan::for_play(play, &self.opts.selection, &mut started)
        };
        let (role_defaults, role_vars) = play_role_vars(play);
        let pr = PlayRun {
            engine: self,
            play,
            play_vars: Arc::new(play.vars.clone()),
            vars_files: Mutex::default(),
            magic: Mutex::default(),
            play_magic: Mutex::default(),
            play_hosts: hosts.clone(),
            failed_hosts: Mutex::new(
                all_hosts
                    .iter()
                    .filter(|h| !hosts.contains(h))
                    .cloned()
                    .collect(),
            ),
            play_hosts_all: all_hosts,
            strategy,
            batch: Mutex::default(),
            notified: Mutex::default(),
            pending_handlers: Mutex::default(),
            end_play: AtomicBool::new(false),
            end_batch: AtomicBool::new(false),
            throttled: Mutex::default(),
            throttle_freed: std::sync::Condvar::new(),
            included: Mutex::default(),
            included_handlers: Mutex::default(),
            role_defaults: Mutex::new(role_defaults),
            role_vars: Mutex::new(role_vars),
            role_runs: Mutex::default(),
            ended_roles: Mutex::default(),
        };
        let mut runnable = Vec::new();
        for host in &hosts {
            match pr.load_vars_files(host) {
                Ok(vars) => {
                    pr.vars_files.lock().unpoisoned().insert(host.clone(), vars);
                    runnable.push(host.clone());
                }
                Err((message, code)) => {
                    self.abort_run(&message, None, code);
                    return;
                }
            }
        }
        for (n, batch) in serial_batches(play.serial.as_ref(), &runnable)
            .into_iter()
            .enumerate()
        {
            // Each batch after the first is announced as Ansible does: the play's banner again.
            if n > 0 {
                self.out.banner(&format!(
                    "PLAY [{name}]{}",
                    self.check_marker(&play.keywords)
                ));
            }
            pr.end_batch.store(false, Ordering::SeqCst);
            *pr.batch.lock().unpoisoned() = batch.clone();
            pr.forget_play_magic();
            let ends = pr.walk(&plan, &batch, &HashMap::new());
            if play.force_handlers.unwrap_or(self.opts.force_handlers)
                && !crate::interrupt::interrupted()
            {
                let failed: Vec<String> = batch
                    .iter()
                    .filter(|h| ends.get(*h) == Some(&End::Failed))
                    .cloned()
                    .collect();
                if !failed.is_empty() {
                    pr.flush_handlers(&failed);
                }
            }
            // When every host of a batch has failed (and no `meta: clear_host_errors` forgave
            // them), Ansible ends the whole run there: no further batch, no further play.
            if !batch.is_empty() && batch.iter().all(|h| self.hosts.get(h).is_out()) {
                self.stop_run.store(true, Ordering::SeqCst);
            }
            if self.stopped() {
                break;
            }
        }
    }

    /// The play's strategy: a name, or a template rendered with the play's and extra vars.
    /// What the play's own keywords (name, hosts, strategy) are rendered with: the play's
    /// variables and the extra vars.
    fn play_scope(&self, play: &Play) -> Arc<Scope> {
        Scope::new(
            vec![Arc::new(play.vars.clone()), self.hosts.extra_vars()],
            None,
        )
    }

    fn play_strategy(&self, play: &Play) -> Result<Strategy, String> {
        let scope = self.play_scope(play);
        let name = templar()
            .render_text(&play.strategy, &scope)
            .map_err(|e| format!("strategy: {}", e.message))?;
        Strategy::named(&name).ok_or_else(|| format!("Invalid play strategy specified: {name}"))
    }

    fn play_hosts(&self, play: &Play) -> Result<Vec<String>, String> {
        let inventory = self.hosts.inventory();
        let scope = self.play_scope(play);
        // `hosts:` may be a template that gives a list of patterns.
        let pattern = match templar()
            .render(&Value::String(play.hosts.clone()), &scope)
            .map_err(|e| format!("hosts: {}", e.message))?
        {
            Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
            other => value_text(&other),
        };
        let mut hosts = inventory.select(&pattern).map_err(|e| e.to_string())?;
        for term in inventory.unmatched_terms(&pattern) {
            self.out.warning(&format!(
                "Could not match supplied host pattern, ignoring: {term}"
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
        let order = match &play.order {
            None => None,
            Some(order) => Some(
                templar()
                    .render_text(order, &scope)
                    .map_err(|e| format!("order: {}", e.message))?,
            ),
        };
        match order.as_deref() {
            None | Some("inventory") => {}
            Some("reverse_inventory") => hosts.reverse(),
            Some("sorted") => hosts.sort(),
            Some("reverse_sorted") => {
                hosts.sort();
                hosts.reverse();
            }
            Some("shuffle") => shuffle(&mut hosts),
            Some(other) => {
                return Err(format!(
                    "'{other}' is not a valid value for order: inventory, reverse_inventory, \
                     sorted, reverse_sorted, shuffle"
                ));
            }
        }
        Ok(hosts)
    }

    /// Whether `--start-at-task` found its task (always, without the option).
    pub fn start_at_task_found(&self) -> bool {
        *self.started.lock().unpoisoned()
    }

    fn count(&self, host: &str, f: impl FnOnce(&mut crate::recap::HostStats)) {
        f(self.stats.lock().unpoisoned().host(host));
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

impl PlayRun<'_> {
    /// A task of a role the host has already run, in this play: Ansible passes over it without
    /// a word, unless the role allows duplicates.
    fn role_already_run(&self, role: Option<&Arc<settle_playbooks::Role>>, host: &str) -> bool {
        role.is_some_and(|role| {
            !role.allow_duplicates
                && self
                    .role_runs
                    .lock()
                    .unpoisoned()
                    .get(&role.instance)
                    .is_some_and(|run| run.completed.contains(host))
        })
    }

    /// A step the host passes over without a word: a task of a role it has already run (see
    /// [`PlayRun::role_already_run`]), or of a role it ended with `meta: end_role`, up to that
    /// role's `role_complete` (which ends the ending).
    fn passes_over(&self, step: &crate::plan::Step, host: &str) -> bool {
        use crate::plan::Step;
        let (role, complete) = match step {
            Step::Task(task) => (task.role.as_ref(), task.is_role_complete()),
            Step::Include(include) => (include.role.as_ref(), false),
            _ => (None, false),
        };
        let Some(r) = role else { return false };
        let key = (host.to_string(), r.instance.clone());
        let mut ended = self.ended_roles.lock().unpoisoned();
        if ended.contains(&key) {
            if !complete {
                return true;
            }
            ended.remove(&key);
        }
        drop(ended);
        // A handler (and what it includes) runs whenever notified, its role done or not.
        !handlers::running_handlers() && self.role_already_run(role, host)
    }

    /// `meta: end_role` on a host: the rest of the task's role is passed over.
    fn end_role(&self, role: &settle_playbooks::Role, host: &str) {
        self.ended_roles
            .lock()
            .unpoisoned()
            .insert((host.to_string(), role.instance.clone()));
    }

    /// A task of the role ran on the host (ok, changed or failed; not skipped or unreachable).
    fn note_role_task(&self, role: Option<&Arc<settle_playbooks::Role>>, host: &str) {
        if let Some(role) = role {
            self.role_runs
                .lock()
                .unpoisoned()
                .entry(role.instance.clone())
                .or_default()
                .ran_a_task
                .insert(host.to_string());
        }
    }

    /// The implicit `role_complete` step: hosts that ran a task of the role have run it.
    fn complete_role(&self, role: Option<&Arc<settle_playbooks::Role>>, hosts: &[String]) {
        if let Some(role) = role
            && let Some(run) = self.role_runs.lock().unpoisoned().get_mut(&role.instance)
        {
            for host in hosts {
                if run.ran_a_task.contains(host) {
                    run.completed.insert(host.clone());
                }
            }
        }
    }
}

/// The defaults and vars of the roles a play uses (in `roles:`, or imported by its tasks),
/// each merged over the ones before it.
fn play_role_vars(play: &Play) -> (Arc<Vars>, Arc<Vars>) {
    fn collect(nodes: &[TaskNode], out: &mut Vec<Arc<settle_playbooks::Role>>) {
        for node in nodes {
            match node {
                TaskNode::Task(task) => add(task.role.as_ref(), out),
                TaskNode::Include(include) => add(include.role.as_ref(), out),
                TaskNode::Block(block) => {
                    collect(&block.block, out);
                    collect(&block.rescue, out);
                    collect(&block.always, out);
                }
            }
        }
    }
    fn add(role: Option<&Arc<settle_playbooks::Role>>, out: &mut Vec<Arc<settle_playbooks::Role>>) {
        if let Some(role) = role
            && !out
                .iter()
                .any(|r| r.name == role.name && r.path == role.path)
        {
            out.push(role.clone());
        }
    }
    let mut roles = Vec::new();
    for role in &play.roles {
        add(Some(role), &mut roles);
    }
    for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
        collect(section, &mut roles);
    }
    for handler in &play.handlers {
        add(handler.role.as_ref(), &mut roles);
    }
    let (mut defaults, mut vars) = (Vars::new(), Vars::new());
    for role in roles.iter().filter(|r| r.public) {
        defaults.extend(role.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars.extend(role.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    (Arc::new(defaults), Arc::new(vars))
}

/// `order: shuffle`: a new order each run (a small xorshift seeded from the clock; the order
/// needs no cryptographic quality).
fn shuffle(hosts: &mut [String]) {
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
        | 1;
    for i in (1..hosts.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        hosts.swap(i, (state % (i as u64 + 1)) as usize);
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
        // `serial: 1.0e+300` is every host left, not an overflow.
        batches.push(hosts[i..i.saturating_add(size).min(total)].to_vec());
        i = i.saturating_add(size);
        k += 1;
    }
    batches
}

/// The name fact gathering has in results and reports.
const FACTS: (&str, Option<&Location>) = ("Gathering Facts", None);

/// A boolean keyword's value, rendered and read as Ansible's strict `boolean()` reads it:
/// `yes`/`no`, `on`/`off`, `true`/`false`, `y`/`n`, `t`/`f`, `1`/`0` (any case), booleans, and
/// 1 and 0. Anything else (`diff: yes.`) fails the task, in Ansible's words; `None` leaves the
/// default.
fn bool_of(
    keyword: &str,
    value: Option<&Value>,
    scope: &Arc<Scope>,
) -> Result<Option<bool>, String> {
    let Some(v) = value else {
        return Ok(None);
    };
    let rendered = templar().render(v, scope).map_err(|e| e.message)?;
    let wanted = match &rendered {
        // `'{{ x | default(omit) }}'`: as if the keyword were not there.
        Value::Null => return Ok(None),
        Value::String(s) if s == crate::template::OMIT => return Ok(None),
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    };
    wanted.map(Some).ok_or_else(|| {
        format!(
            "Error processing keyword '{keyword}': The value {} could not be converted to 'bool'.",
            crate::template::python_repr(&crate::vaulted::to_template_value(&rendered), false)
        )
    })
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
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
}
