//! `include_tasks`: which file each host includes (with its loop and `when`), reading each file
//! once per run, and walking the included tasks with the hosts that include the same file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use settle_playbooks::{Include, RoleInclude, Task, TaskNode};

use super::loops::{item_layer, loop_items, loop_var_name, trusted_items};
use super::{End, PlayRun, StepOutcome, absolute, bool_of, value_text};
use crate::Unpoisoned;
use crate::Vars;
use crate::actions::{self};
use crate::output::Status;
use crate::plan::Plan;
use crate::template::{Layer, OMIT, Scope, is_template, python_repr, templar};

/// How deep includes may nest (`include_tasks`/`include_role` inside included files): an
/// include of its own file with no condition that ends it stops here with one error, where
/// Ansible dies at about 250 with a Python `RecursionError` (exit 250).
const MAX_INCLUDE_DEPTH: usize = 100;

thread_local! {
    /// The files included and being walked on this thread, outermost first.
    static INCLUDING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The end of an include chain that went too deep, for its error: the last files in order.
fn include_chain(files: &[String], next: &str) -> String {
    let shown = 6.min(files.len());
    let mut chain: Vec<&str> = files[files.len() - shown..]
        .iter()
        .map(String::as_str)
        .collect();
    chain.push(next);
    let skipped = files.len() - shown;
    let head = match skipped {
        0 => String::new(),
        n => format!("({n} more) -> "),
    };
    format!("{head}{}", chain.join(" -> "))
}

/// The include's name as Ansible shows it: `include_role : web` for an unnamed include_role,
/// `include_tasks` (with its role's prefix) for an unnamed include_tasks.
pub(super) fn include_name(include: &Include) -> String {
    if include.role_include.is_some() {
        return include
            .name
            .clone()
            .unwrap_or_else(|| format!("include_role : {}", value_text(&include.file)));
    }
    let name = include
        .name
        .clone()
        .unwrap_or_else(|| "include_tasks".to_string());
    match &include.role {
        Some(role) => format!("{} : {name}", role.name),
        None => name,
    }
}

/// The files one host includes, in order, each with its variables (include vars, loop item).
/// What hosts that include together share: the file (or role) and the loop item's label.
/// For `include_role`, the role's files (`tasks_from`, …) as rendered for the host.
type IncludeKey = (PathBuf, Option<String>, Option<RoleInclude>);
/// One included file: the hosts that run it and each one's variable layers.
type IncludeGroup = (IncludeKey, Vec<String>, HashMap<String, Vec<Layer>>);

/// The label is the loop item's, for `included: … => (item=…)`.
pub(super) type IncludeList = Vec<(PathBuf, Vec<Layer>, Option<String>, Option<RoleInclude>)>;

pub(super) fn tasks_of(nodes: &[TaskNode]) -> Vec<&Task> {
    let mut out: Vec<&Task> = Vec::new();
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

/// Why an included file or role could not be read. As in Ansible, one that is not there
/// fails the include on its hosts, whatever `ignore_errors` says (a `rescue` can take it); one
/// that does not parse (bad YAML, an unknown module or keyword) ends the run.
pub(super) enum IncludeError {
    Failed(String),
    /// The message, and where in the file the problem is, when that is known.
    Fatal(String, Option<settle_playbooks::Location>),
}

impl IncludeError {
    fn of(e: settle_playbooks::PlaybookError) -> Self {
        use settle_playbooks::PlaybookError as E;
        match e {
            E::Missing { message, .. } => IncludeError::Failed(message),
            E::Read { path, source } | E::Yaml(settle_yaml::YamlError::Read { path, source }) => {
                IncludeError::Failed(settle_playbooks::not_found_on_controller(
                    &path,
                    Some(&source),
                ))
            }
            E::Invalid {
                location, message, ..
            }
            | E::Refused { location, message } => IncludeError::Fatal(message, Some(location)),
            E::Yaml(_) => IncludeError::Fatal(e.to_string(), None),
        }
    }
}

/// A stand-in task with the include's keywords, for building its scope.
pub(super) fn include_as_task(include: &Include) -> Task {
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
        include: None,
        arg_origins: Default::default(),
    }
}

impl PlayRun<'_> {
    pub(super) fn run_include(
        &self,
        include: &Include,
        batch: &[String],
        extra: &HashMap<String, Vec<Layer>>,
    ) -> Vec<(String, StepOutcome)> {
        let no_extra = Vec::new();
        // Each host's list of (file, variables) to include, in order.
        let mut plans: Vec<(String, IncludeList)> = Vec::new();
        // Each file (or role) as the include named it, for its failure.
        let mut written: HashMap<PathBuf, String> = HashMap::new();
        let mut outcomes: HashMap<String, StepOutcome> = HashMap::new();
        let fake_task = include_as_task(include);
        // `run_once` on an include: only the first host reads it, so only it runs the tasks
        // (unless they are themselves run_once, through `apply`), as in Ansible.
        let once = include.keywords.run_once.is_some()
            && batch.first().is_some_and(|first| {
                let scope = self.scope(
                    &self.engine.hosts.get(first),
                    &fake_task,
                    extra.get(first).unwrap_or(&no_extra),
                );
                bool_of("run_once", include.keywords.run_once.as_deref(), &scope)
                    .ok()
                    .flatten()
                    .unwrap_or(false)
            });
        let everyone = batch;
        let batch = match once {
            true => &batch[..1],
            false => batch,
        };
        // A failed include is a failed task: registered, and ignored with `ignore_errors`.
        let fail_include = |host: &str, e: &str| {
            let state = self.engine.hosts.get(host);
            let scope = self.scope(&state, &fake_task, extra.get(host).unwrap_or(&no_extra));
            let ignore = bool_of(
                "ignore_errors",
                include.keywords.ignore_errors.as_deref(),
                &scope,
            )
            .ok()
            .flatten()
            .unwrap_or(false);
            let timing = (false, std::time::Instant::now());
            self.fail_early(
                host,
                &fake_task,
                &state,
                e.to_string(),
                false,
                ignore,
                timing,
            )
        };
        for host in batch {
            let state = self.engine.hosts.get(host);
            let scope = self.scope(&state, &fake_task, extra.get(host).unwrap_or(&no_extra));
            // The loop and its loop_var see the include's own vars, as a task's do.
            let vars = Layer::template(Arc::new(include.keywords.vars.clone()));
            let vars_scope = scope.with_layer_of(vars.clone());
            let (looped, shown_items) = match &include.keywords.loop_ {
                None => (Vec::new(), Vec::new()),
                Some(l) => match loop_items(l, &vars_scope, &fake_task.module_as_written) {
                    Ok(items) => (trusted_items(l, &items, &vars_scope), items),
                    // As for a task: a loop that cannot be rendered fails the include only
                    // when its `when` (without the loop variable) does not skip it.
                    Err(e) => {
                        match self.false_condition(&include.keywords.when, &vars_scope) {
                            Ok(Some(cond)) => self.skip_include(host, include, cond),
                            _ => {
                                outcomes.insert(host.clone(), fail_include(host, &e));
                            }
                        }
                        continue;
                    }
                },
            };
            let items: Vec<Option<usize>> = match &include.keywords.loop_ {
                None => vec![None],
                Some(_) => (0..looped.len()).map(Some).collect(),
            };
            let loop_var = match loop_var_name(&include.keywords.loop_control, &vars_scope) {
                Ok(name) => name,
                Err(e) => {
                    outcomes.insert(host.clone(), fail_include(host, &e));
                    continue;
                }
            };
            let mut list = Vec::new();
            let mut failed = None;
            // What `register` keeps: each item's include (or skip), as Ansible's worker
            // returns it before the file is read.
            let mut registered: Vec<Value> = Vec::new();
            for item in items {
                // The include's vars are templates; its loop item keeps each value's trust:
                // what a template computed renders as itself.
                let mut layers = vec![vars.clone()];
                if let Some(index) = item {
                    let lc = &include.keywords.loop_control;
                    layers.push(Layer::template(Arc::new(item_layer(
                        lc, &loop_var, &looped, index,
                    ))));
                }
                let item_scope = layers
                    .iter()
                    .fold(scope.clone(), |s, l| s.with_layer_of(l.clone()));
                let loop_vars = || match item {
                    Some(index) => item_layer(
                        &include.keywords.loop_control,
                        &loop_var,
                        &shown_items,
                        index,
                    ),
                    None => Map::new(),
                };
                match self.conditions_hold(&include.keywords.when, &item_scope) {
                    Ok(false) => {
                        if let Ok(Some(cond)) =
                            self.false_condition(&include.keywords.when, &item_scope)
                        {
                            let mut skipped = loop_vars();
                            skipped.extend(skipped_result(cond));
                            registered.push(Value::Object(skipped));
                        }
                        continue;
                    }
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
                let mut result = loop_vars();
                if include.role_include.is_none() {
                    result.insert("include".into(), file.clone().into());
                }
                let args = Value::Object(include.args.clone());
                let args = templar().render(&args, &item_scope).unwrap_or(args);
                result.insert("include_args".into(), args);
                registered.push(Value::Object(result));
                let path = include.base_dir.join(&file);
                let path = if include.role_include.is_some() {
                    // include_role: the "file" is the role's name.
                    PathBuf::from(&file)
                } else if path.exists() || include.role.is_none() {
                    path
                } else {
                    // In a role: its `tasks/`, else the role's own folder (`tasks/x.yml` named
                    // from the role's handlers), as Ansible's search goes.
                    let role = include.role.as_ref().map(|r| &r.path);
                    let in_tasks = role.map(|r| r.join("tasks").join(&file));
                    let in_role = role.map(|r| r.join(&file));
                    match (in_tasks, in_role) {
                        (Some(t), Some(r)) if !t.exists() && r.exists() => r,
                        (Some(t), _) => t,
                        _ => path,
                    }
                };
                let label = item.map(|index| {
                    python_repr(
                        &minijinja::Value::from(minijinja::value::Serde(&shown_items[index])),
                        true,
                    )
                });
                // include_role's `tasks_from` and friends may be templates too.
                let files = match &include.role_include {
                    None => None,
                    Some(files) => match render_role_files(files, &item_scope) {
                        Ok(f) => Some(f),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    },
                };
                written.insert(path.clone(), file);
                list.push((path, layers, label, files));
            }
            if let Some(e) = failed {
                outcomes.insert(host.clone(), fail_include(host, &e));
                continue;
            }
            if let Some(reg) = &include.keywords.register
                && (!list.is_empty() || include.keywords.loop_.is_some())
            {
                state.set_task_var(reg, registered_include(include, registered));
            }
            if list.is_empty() {
                let cond = match include.keywords.loop_ {
                    None => self.false_condition(&include.keywords.when, &vars_scope),
                    Some(_) => Ok(None),
                };
                match cond {
                    Ok(Some(cond)) => self.skip_include(host, include, cond),
                    _ => {
                        self.engine.count(host, |s| s.skipped += 1);
                        self.engine
                            .out
                            .result(host, Status::Skipped, None, &json!({}), false);
                    }
                }
            }
            plans.push((host.clone(), list));
        }
        // As Ansible's linear strategy: every `included:` line first, then the included
        // tasks, file after file (hosts that include the same file with the same item together).
        // Hosts that include the same file with the same item run it together, in the order
        // the files are first met (host by host, item by item), as Ansible's included files.
        let mut groups: Vec<IncludeGroup> = Vec::new();
        for (host, list) in &plans {
            if outcomes.get(host).is_some_and(|o| *o != StepOutcome::Ok) {
                continue;
            }
            for (path, include_layers, label, files) in list {
                let mut stack = extra.get(host).cloned().unwrap_or_default();
                stack.extend(include_layers.iter().cloned());
                let key = (path.clone(), label.clone(), files.clone());
                // A host's repeated item is a file of its own again, as Ansible's IncludedFile.
                let same = |(k, hosts, _): &IncludeGroup| *k == key && !hosts.contains(host);
                let at = match groups.iter().position(same) {
                    Some(at) => at,
                    None => {
                        groups.push((key, Vec::new(), HashMap::new()));
                        groups.len() - 1
                    }
                };
                let (_, hosts, layers) = &mut groups[at];
                hosts.push(host.clone());
                layers.insert(host.clone(), stack);
            }
        }
        let mut loaded = Vec::new();
        for ((path, label, files), hosts, layers) in groups {
            let shown = if include.role_include.is_some() {
                path.display().to_string()
            } else {
                absolute(&path)
            };
            let depth = INCLUDING.with(|s| s.borrow().len());
            if depth >= MAX_INCLUDE_DEPTH {
                let chain = INCLUDING.with(|s| include_chain(&s.borrow(), &shown));
                let message = format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} deep (an include of its own \
                     file needs a condition that ends it): {chain}"
                );
                self.engine
                    .abort_run(&message, Some(&include.location), 250);
                return Vec::new();
            }
            // A file or role that cannot be read fails the include: no `included:` line.
            let rendered;
            let include = match files {
                Some(files) => {
                    rendered = Include {
                        role_include: Some(files),
                        ..include.clone()
                    };
                    &rendered
                }
                None => include,
            };
            let tasks = match self.load_included(&path, include) {
                Ok(t) => t,
                Err(IncludeError::Failed(reason)) => {
                    let file = written.get(&path).map(String::as_str).unwrap_or_default();
                    self.include_not_loaded(include, &hosts, file, &reason, label.is_some());
                    for h in hosts {
                        let failures = match outcomes.get(&h) {
                            Some(StepOutcome::NotLoaded { failures }) => failures + 1,
                            _ => 1,
                        };
                        outcomes.insert(h, StepOutcome::NotLoaded { failures });
                    }
                    continue;
                }
                Err(IncludeError::Fatal(e, at)) => {
                    self.engine.abort_run(&e, at.as_ref(), 4);
                    return Vec::new();
                }
            };
            if include.role_include.as_ref().is_some_and(|f| f.public) {
                self.make_public(&tasks);
            }
            let item = label.map(|l| format!(" => (item={l})")).unwrap_or_default();
            if let Some(first) = hosts.first() {
                self.engine.out.host_banner(first);
            }
            self.engine
                .out
                .print(&format!("included: {shown} for {}{item}", hosts.join(", ")));
            for h in &hosts {
                self.engine.count(h, |s| s.ok += 1);
            }
            loaded.push((tasks, hosts, layers, shown));
        }
        for (tasks, hosts, layers, shown) in loaded {
            // A host that failed in an earlier file's tasks runs no later one.
            let hosts: Vec<String> = hosts
                .into_iter()
                .filter(|h| outcomes.get(h).is_none_or(|o| *o == StepOutcome::Ok))
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let plan = Plan::for_tasks(&tasks, &self.engine.opts.selection);
            INCLUDING.with(|s| s.borrow_mut().push(shown));
            let ends = self.walk_linear(&plan, &hosts, &layers);
            INCLUDING.with(|s| s.borrow_mut().pop());
            for (h, end) in ends {
                let outcome = match end {
                    End::Done => StepOutcome::Ok,
                    End::Failed => StepOutcome::Failed { counted: true },
                    End::Unreachable => StepOutcome::Unreachable,
                };
                outcomes.insert(h, outcome);
            }
        }
        everyone
            .iter()
            .map(|h| (h.clone(), outcomes.remove(h).unwrap_or(StepOutcome::Ok)))
            .collect()
    }

    /// A file or role an include could not read, as Ansible's strategy fails it: the error
    /// once (on standard error, with where the role is named), then each host failed and
    /// counted, whatever `ignore_errors` says. A loop's items show no result line.
    fn include_not_loaded(
        &self,
        include: &Include,
        hosts: &[String],
        file: &str,
        reason: &str,
        looped: bool,
    ) {
        let origin = include.role_include.as_ref().and(include.name_at.as_ref());
        self.engine.out.error_at(reason, origin);
        let mut result = Map::new();
        result.insert("changed".into(), false.into());
        if include.role_include.is_none() {
            result.insert("include".into(), file.into());
        }
        result.insert("reason".into(), reason.into());
        let result = Value::Object(result);
        for h in hosts {
            self.engine.count(h, |s| s.failures += 1);
            if !looped {
                self.engine
                    .out
                    .result(h, Status::Failed, None, &result, false);
            }
        }
    }

    /// An include its `when` skips on a host: counted, shown, and registered as Ansible
    /// registers a skipped task.
    fn skip_include(&self, host: &str, include: &Include, condition: serde_json::Value) {
        if let Some(reg) = &include.keywords.register {
            let skipped = Value::Object(skipped_result(condition));
            self.engine.hosts.get(host).set_task_var(reg, skipped);
        }
        self.engine.count(host, |s| s.skipped += 1);
        self.engine
            .out
            .result(host, Status::Skipped, None, &json!({}), false);
    }

    /// `include_role: public: true`: the included role's defaults and vars join the play's.
    fn make_public(&self, tasks: &[TaskNode]) {
        let Some(role) = tasks_of(tasks).into_iter().find_map(|t| t.role.clone()) else {
            return;
        };
        for (mine, theirs) in [
            (&self.role_defaults, &role.defaults),
            (&self.role_vars, &role.vars),
        ] {
            let mut slot = mine.lock().unpoisoned();
            let mut merged = Vars::clone(&slot);
            merged.extend(theirs.iter().map(|(k, v)| (k.clone(), v.clone())));
            *slot = Arc::new(merged);
        }
    }

    pub(super) fn load_included(
        &self,
        path: &Path,
        include: &Include,
    ) -> Result<Arc<Vec<TaskNode>>, IncludeError> {
        // The including role's instance too: its parameters are the included role's; and the
        // vars the include inherits (an import_role and an include_role of one role instance
        // hand their tasks different ones).
        let key = (
            path.to_path_buf(),
            format!(
                "{} {} {}",
                include.location,
                serde_json::Value::Object(include.keywords.vars.clone()),
                include.role.as_ref().map_or(String::new(), |r| format!(
                    "{} {}",
                    r.instance,
                    serde_json::Value::Object((*r.params).clone())
                ))
            ),
        );
        if let Some(t) = self.included.lock().unpoisoned().get(&key) {
            return Ok(t.clone());
        }
        let tasks = match &include.role_include {
            None => settle_playbooks::load_tasks_file(
                path,
                &self.play.dir,
                include.role.clone(),
                &include.apply,
                include.handler,
            )
            .map_err(IncludeError::of)?,
            Some(files) => {
                let (tasks, handlers) = settle_playbooks::load_included_role(
                    &path.display().to_string(),
                    files,
                    &self.play.dir,
                    include.role.clone(),
                    &include.location,
                    &include.apply,
                )
                .map_err(IncludeError::of)?;
                let mut known = self.included_handlers.lock().unpoisoned();
                for handler in handlers {
                    let registered = self.play.handlers.iter().chain(known.iter()).any(|h| {
                        h.name == handler.name
                            && h.role.as_ref().map(|r| &r.name)
                                == handler.role.as_ref().map(|r| &r.name)
                    });
                    if !registered {
                        known.push(handler);
                    }
                }
                tasks
            }
        };
        for task in tasks_of(&tasks) {
            if let Some(role) = &task.role {
                crate::ansible_modules::remember_role(&role.path);
            }
        }
        for task in tasks_of(&tasks) {
            if !actions::known_modules().contains(&task.module.as_str())
                && !task.module.contains("{{")
            {
                actions::validate(task, &self.play.dir)
                    .map_err(|e| IncludeError::Fatal(e, Some(task.location.clone())))?;
            }
        }
        let tasks = Arc::new(tasks);
        self.included.lock().unpoisoned().insert(key, tasks.clone());
        Ok(tasks)
    }
}

/// What a task its `when` skipped returns.
fn skipped_result(condition: Value) -> Map<String, Value> {
    let result = json!({"changed": false, "false_condition": condition,
                        "skip_reason": "Conditional result was False", "skipped": true});
    result.as_object().cloned().unwrap_or_default()
}

/// What an include registers: its own result, or a loop's, each item's under `results`.
fn registered_include(include: &Include, mut items: Vec<Value>) -> Value {
    if include.keywords.loop_.is_none() {
        let mut result = match items.pop() {
            Some(Value::Object(result)) => result,
            _ => Map::new(),
        };
        result.insert("changed".into(), false.into());
        return Value::Object(result);
    }
    let skipped = |v: &Value| v.get("skipped") == Some(&Value::Bool(true));
    let all_skipped = items.iter().all(skipped);
    let msg = match all_skipped {
        true => "All items skipped",
        false => "All items completed",
    };
    json!({"changed": false, "msg": msg, "results": items, "skipped": all_skipped})
}

/// An `include_role`'s `tasks_from`, `vars_from`, `defaults_from` and `handlers_from`, each
/// rendered when it is a template.
fn render_role_files(files: &RoleInclude, scope: &Arc<Scope>) -> Result<RoleInclude, String> {
    let render = |text: &String| -> Result<String, String> {
        match is_template(text) {
            // `{{ omit }}` leaves the argument out: the role's `main` file.
            true => templar()
                .render_text(text, scope)
                .map(|t| if t == OMIT { "main".into() } else { t })
                .map_err(|e| e.message),
            false => Ok(text.clone()),
        }
    };
    Ok(RoleInclude {
        tasks_from: render(&files.tasks_from)?,
        vars_from: render(&files.vars_from)?,
        defaults_from: render(&files.defaults_from)?,
        handlers_from: render(&files.handlers_from)?,
        allow_duplicates: files.allow_duplicates,
        public: files.public,
        identity: files.identity.clone(),
        rolespec_validate: files.rolespec_validate,
    })
}
