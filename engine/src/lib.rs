//! The engine: turns an inventory and parsed playbooks into a run.
//!
//! Stages, in the order data flows through them:
//! - [`template`]: variables in layers, rendered lazily with minijinja as Ansible renders them;
//! - [`plan`]: each play's tasks as a petgraph DAG of steps, tags and `--start-at-task` applied;
//! - execution (`exec`): hosts walk the plan in parallel up to `--forks`, strategy `linear` or
//!   `free`; handlers run at each flush; blocks rescue and always;
//! - [`connection`]: how a module call reaches a host (local now, SSH later);
//! - [`output`] and [`recap`]: what people see, as Ansible prints it.
//!
//! Modules themselves live in `settle-modules`; the engine only builds [`settle_modules::Request`]s
//! and reads [`settle_modules::Outcome`]s, so it never knows a module's insides.
//!
//! ```no_run
//! use std::sync::Arc;
//! let inventory = Arc::new(settle_inventory::Inventory::empty());
//! let playbook = settle_playbooks::load_playbook("site.yml".as_ref()).unwrap();
//! let code = settle_engine::run(&[playbook], inventory, &settle_engine::RunOptions::default());
//! std::process::exit(code);
//! ```

// Input from a playbook, inventory or host must never panic the run: handle the error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod actions;
pub mod ansible_modules;
pub mod connection;
mod exec;
pub mod fact_cache;
mod facts;
mod filters;
mod hosts;
pub mod interrupt;
pub mod inventory_jinja;
mod jinja_source;
mod lookups;
mod native_macros;
pub mod output;
pub mod plan;
mod python_plugins;
pub mod recap;
pub mod report;
pub mod template;
mod vaulted;

use std::sync::Arc;

use serde_json::Value;
use settle_inventory::Inventory;
use settle_playbooks::{Playbook, TaskNode};

pub use actions::{ModuleArguments, module_arguments, native_modules};
pub use filters::yaml_dump_block;
pub use plan::Selection;

/// Variables: names to values.
pub type Vars = serde_json::Map<String, Value>;

/// The guard of a lock whose holder panicked: the engine's locks guard plain collections that no
/// update leaves half done, so the run goes on with them rather than panicking a second time.
pub(crate) trait Unpoisoned<Guard> {
    fn unpoisoned(self) -> Guard;
}

impl<Guard> Unpoisoned<Guard> for std::sync::LockResult<Guard> {
    fn unpoisoned(self) -> Guard {
        self.unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Everything the command line says about a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub limit: Option<String>,
    pub selection: Selection,
    pub extra_vars: Vars,
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub become_: bool,
    pub become_user: Option<String>,
    pub become_password: Option<String>,
    /// `-k`: the SSH login password for hosts that set no `ansible_password`.
    pub connection_password: Option<String>,
    /// `--become-method` (or `ANSIBLE_BECOME_METHOD`): `sudo` unless a host or task says otherwise.
    pub become_method: Option<String>,
    /// `ANSIBLE_BECOME_EXE` and `ANSIBLE_BECOME_FLAGS`, for tasks and hosts that set none.
    pub become_exe: Option<String>,
    pub become_flags: Option<String>,
    pub remote_user: Option<String>,
    /// `--private-key` (or `private_key_file` in ansible.cfg): the key when a host names none.
    pub private_key_file: Option<String>,
    pub connection: Option<String>,
    pub timeout: u64,
    pub verbosity: u8,
    pub force_handlers: bool,
    /// `fact_caching = jsonfile`: facts kept between runs.
    pub fact_cache: Option<fact_cache::FactCache>,
    /// `--flush-cache`: forget the inventory hosts' cached facts first.
    pub flush_cache: bool,
    pub step: bool,
    /// `--fail-on-change`: exit with [`EXIT_DRIFT`] when any host changed (or would change).
    pub fail_on_change: bool,
    /// `--report json=PATH` / `--report junit=PATH`.
    pub reports: Vec<report::ReportTarget>,
    /// `--output json`: a JSON event stream on standard output instead of text.
    pub json_output: bool,
    /// An ad-hoc command (`ansible PATTERN -m MODULE`): the module it runs, and the output of
    /// Ansible's `minimal` callback instead of the playbook's.
    pub adhoc_module: Option<String>,
    /// `-o`: an ad-hoc command's results one line each.
    pub one_line: bool,
}

/// The exit code of `--fail-on-change` when something drifted (and nothing failed).
pub const EXIT_DRIFT: i32 = 3;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            limit: None,
            selection: Selection::default(),
            extra_vars: Vars::new(),
            check: false,
            diff: false,
            forks: 5,
            become_: false,
            become_user: None,
            become_password: None,
            connection_password: None,
            become_method: None,
            become_exe: None,
            become_flags: None,
            remote_user: None,
            private_key_file: None,
            connection: None,
            timeout: 10,
            verbosity: 0,
            force_handlers: false,
            fact_cache: None,
            flush_cache: false,
            step: false,
            fail_on_change: false,
            reports: Vec::new(),
            json_output: false,
            adhoc_module: None,
            one_line: false,
        }
    }
}

/// A playbook that names a module or argument settle does not know, or notifies a handler that
/// does not exist: found before anything runs.
#[derive(Debug, thiserror::Error)]
#[error("{location}: task {task:?}: {message}")]
pub struct ValidationError {
    pub location: settle_playbooks::Location,
    pub task: String,
    pub message: String,
}

/// Renders tags written as templates (`tags: "{{ the_tags }}"`) with the play's variables and
/// the extra vars, as Ansible does before it selects tasks by tag.
pub fn render_tags(playbooks: &mut [Playbook], extra_vars: &Vars) -> Result<(), String> {
    fn walk(nodes: &mut [TaskNode], scope: &Arc<template::Scope>) -> Result<(), String> {
        for node in nodes {
            match node {
                // Only a task with a templated tag is written to (tasks are shared).
                TaskNode::Task(task) if templated(&task.keywords.tags) => {
                    render(&mut Arc::make_mut(task).keywords.tags, scope)?
                }
                TaskNode::Task(_) => {}
                TaskNode::Include(include)
                    if templated(&include.keywords.tags) || templated(&include.apply.tags) =>
                {
                    let include = Arc::make_mut(include);
                    render(&mut include.keywords.tags, scope)?;
                    render(&mut include.apply.tags, scope)?;
                }
                TaskNode::Include(_) => {}
                TaskNode::Block(block) => {
                    walk(&mut block.block, scope)?;
                    walk(&mut block.rescue, scope)?;
                    walk(&mut block.always, scope)?;
                }
            }
        }
        Ok(())
    }
    fn templated(tags: &[String]) -> bool {
        tags.iter().any(|t| template::is_template(t))
    }
    fn render(tags: &mut Vec<String>, scope: &Arc<template::Scope>) -> Result<(), String> {
        if !templated(tags) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(tags.len());
        for tag in tags.iter() {
            match template::templar()
                .render(&Value::String(tag.clone()), scope)
                .map_err(|e| format!("tags: {}", e.message))?
            {
                Value::Array(items) => out.extend(items.iter().map(value_text)),
                Value::String(s) => out.extend(s.split(',').map(|t| t.trim().to_string())),
                other => out.push(value_text(&other)),
            }
        }
        *tags = out;
        Ok(())
    }
    let extra = Arc::new(extra_vars.clone());
    for play in playbooks.iter_mut().flat_map(|p| &mut p.plays) {
        let scope = template::Scope::new(vec![Arc::new(play.vars.clone()), extra.clone()], None);
        for section in [&mut play.pre_tasks, &mut play.tasks, &mut play.post_tasks] {
            walk(section, &scope)?;
        }
        for handler in &mut play.handlers {
            render(&mut handler.keywords.tags, &scope)?;
        }
    }
    Ok(())
}

/// A value as text: a string as it is, anything else as JSON.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks every task's module and arguments before the run. A `notify` is checked when a
/// changed task notifies, as in Ansible: tasks before it run, and one that never changes may
/// name no handler.
pub fn validate(playbooks: &[Playbook]) -> Result<(), ValidationError> {
    for play in playbooks.iter().flat_map(|p| &p.plays) {
        let mut tasks = Vec::new();
        for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
            collect_tasks(section, &mut tasks);
        }
        // A handler that includes a task file is checked when the file is read.
        tasks.extend(play.handlers.iter().filter(|h| h.include.is_none()));
        // Every role's `library/` is known to every task, as in Ansible.
        for task in &tasks {
            if let Some(role) = &task.role {
                ansible_modules::remember_role(&role.path);
            }
        }
        for task in tasks {
            let fail = |message: String| ValidationError {
                location: task.location.clone(),
                task: task.display_name(),
                message,
            };
            // Ansible refuses, when it reads the task, arguments it keeps for itself.
            if !matches!(
                task.module.as_str(),
                "command" | "shell" | "script" | "raw" | "win_command" | "win_shell"
            ) && let Some(arg) = task.args.keys().find(|k| k.starts_with("_ansible_"))
            {
                return Err(fail(format!(
                    "Invalid parameter specified beginning with keyword '_ansible_' for action '{}': '{arg}'. The prefix '_ansible_' is reserved for internal use only.",
                    task.module_as_written
                )));
            }
            // An unknown module stops the run before it starts; arguments a module does not
            // take fail that task when it runs, as in Ansible.
            // A module named by a template is checked when the task runs.
            if !actions::known_modules().contains(&task.module.as_str())
                && !task.module.contains("{{")
            {
                actions::validate(task, &play.dir).map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// `error_on_missing_handler` (`ANSIBLE_ERROR_ON_MISSING_HANDLER`, default true): a `notify`
/// that no handler answers stops the run.
pub(crate) fn missing_handler_is_error() -> bool {
    std::env::var("ANSIBLE_ERROR_ON_MISSING_HANDLER").is_err()
        || template::env_flag("ANSIBLE_ERROR_ON_MISSING_HANDLER")
}

fn collect_tasks<'a>(nodes: &'a [TaskNode], out: &mut Vec<&'a settle_playbooks::Task>) {
    for node in nodes {
        match node {
            TaskNode::Task(t) => out.push(t),
            TaskNode::Block(b) => {
                collect_tasks(&b.block, out);
                collect_tasks(&b.rescue, out);
                collect_tasks(&b.always, out);
            }
            TaskNode::Include(_) => {}
        }
    }
}

/// Runs the playbooks and prints the recap; returns `ansible-playbook`'s exit code.
pub fn run(playbooks: &[Playbook], inventory: Arc<Inventory>, opts: &RunOptions) -> i32 {
    interrupt::run_started();
    let mut globals = Vars::new();
    globals.insert("groups".into(), Value::Object(inventory.groups_var()));
    globals.insert("ansible_check_mode".into(), opts.check.into());
    globals.insert("ansible_diff_mode".into(), opts.diff.into());
    globals.insert("ansible_forks".into(), opts.forks.into());
    globals.insert("ansible_verbosity".into(), opts.verbosity.into());
    globals.insert(
        "ansible_run_tags".into(),
        if opts.selection.tags.is_empty() {
            vec!["all".to_string()]
        } else {
            opts.selection.tags.clone()
        }
        .into(),
    );
    globals.insert(
        "ansible_skip_tags".into(),
        opts.selection.skip_tags.clone().into(),
    );
    globals.insert(
        "ansible_version".into(),
        serde_json::json!({"full": "2.19.0", "major": 2, "minor": 19, "revision": 0, "string": "2.19.0 (settle)"}),
    );
    globals.insert("settle_version".into(), env!("CARGO_PKG_VERSION").into());
    // Ansible's own Python (`sys.executable`): here the controller's Python, as the implicit
    // localhost gets it.
    if let Some(python) = settle_inventory::controller_python() {
        globals.insert("ansible_playbook_python".into(), python.into());
    }
    let started = std::time::Instant::now();
    if opts.flush_cache
        && let Some(cache) = &opts.fact_cache
    {
        for host in inventory.hosts() {
            cache.remove(&host.name);
        }
    }
    // The connections' -vvv lines are text for people: none in a JSON event stream.
    connection::set_verbosity(if opts.json_output { 0 } else { opts.verbosity });
    let hosts = hosts::Hosts::new(
        inventory,
        Arc::new(opts.extra_vars.clone()),
        globals,
        opts.fact_cache.clone(),
    );
    let engine = exec::Engine::new(opts, hosts);
    if !playbooks.is_empty() {
        engine.out.callbacks_loaded();
    }
    for playbook in playbooks {
        // -vv: which playbook, and how many plays, as ansible-playbook says it.
        if opts.verbosity >= 2 {
            let name = playbook
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            engine.out.banner(&format!("PLAYBOOK: {name}"));
        }
        if opts.check {
            engine.out.dry_run_banner();
        }
        if opts.verbosity >= 2 {
            engine
                .out
                .playbook_plays(playbook.plays.len(), &playbook.path);
        }
        for play in &playbook.plays {
            engine.run_play(play);
        }
    }
    if let Some(code) = engine.aborted() {
        return code.into();
    }
    let stats = engine.stats.lock().unpoisoned().clone();
    let records = std::mem::take(&mut *engine.records.lock().unpoisoned());
    engine.out.recap(&stats);
    engine.out.custom_stats(&stats);
    if opts.check && !playbooks.is_empty() {
        engine.out.dry_run_banner();
    }
    if let Some(name) = &opts.selection.start_at_task
        && !engine.start_at_task_found()
    {
        // As ansible-playbook: said after the recap, and the exit code is left as it is.
        engine.out.error(&format!(
            "No matching task \"{name}\" found. Note: --start-at-task can only follow static includes."
        ));
    }
    let mut summary = report::RunSummary {
        records: &records,
        stats: &stats,
        check_mode: opts.check,
        fail_on_change: opts.fail_on_change,
        duration_seconds: started.elapsed().as_secs_f64(),
        exit_code: stats.exit_code(),
    };
    // Interrupted: the recap so far, then ansible-playbook's message and code.
    if let Some(signal) = interrupt::signal() {
        engine.out.error("User interrupted execution");
        summary.exit_code = interrupt::exit_code(signal);
    }
    let drift = summary.drift();
    if opts.fail_on_change && summary.exit_code == 0 && !drift.is_empty() {
        for r in &drift {
            engine.out.print(&format!(
                "DRIFT: [{}] {}{}",
                r.host,
                r.task,
                r.location
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            ));
        }
        summary.exit_code = EXIT_DRIFT;
    }
    // settle's own trailer (what changed where, wall time) comes after the recap, and only
    // for people at a terminal: scripts and logs that take Ansible's output (at any -v) see
    // Ansible's output.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) && opts.adhoc_module.is_none() {
        engine.out.print(&summary.human());
    }
    // The report of every host × task is built only for those who read it (at a thousand
    // hosts it is tens of MB, made at the end of the run when everything else is still held).
    if opts.json_output {
        engine
            .out
            .event(&serde_json::json!({"event": "run_end", "report": summary.to_json()}));
    }
    for target in &opts.reports {
        let (path, text) = match target {
            report::ReportTarget::Json(p) => (
                p,
                serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default() + "\n",
            ),
            report::ReportTarget::Junit(p) => (p, summary.to_junit()),
        };
        if let Err(e) = std::fs::write(path, text) {
            engine
                .out
                .error(&format!("cannot write the report {}: {e}", path.display()));
            return 1;
        }
    }
    summary.exit_code
}
