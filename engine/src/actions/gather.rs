//! Fact gathering with the modules `FACTS_MODULES` names (Ansible's `gather_facts` action):
//! which modules (`smart`: the network OS's own, else `setup`), their arguments, and how their
//! facts merge. The play's fact gathering and the `gather_facts` task share it.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use settle_playbooks::Task;

use super::{ActionContext, ActionResult, AsyncTask, rendered_args};

use crate::output::{NO_TRACEBACK, event_children, tracebacks_for};
use crate::template::{Scope, templar};

/// A background fact module's time limit when `gather_timeout` sets none: a day.
const UNLIMITED: u64 = 86_400;

/// `setup` under any of its names.
pub(crate) fn is_setup(module: &str) -> bool {
    short_module_name(module) == "setup"
}

pub(crate) fn short_module_name(module: &str) -> &str {
    module
        .strip_prefix("ansible.builtin.")
        .or_else(|| module.strip_prefix("ansible.legacy."))
        .unwrap_or(module)
}

/// The fact modules a host's facts come from: `ansible_facts_modules`, else
/// `ANSIBLE_FACTS_MODULES`, else `smart`; `smart` is the network OS's module when
/// `ansible_network_os` names one Ansible knows, else `setup` (unless one is listed already).
pub(crate) fn facts_modules(scope: &Arc<Scope>) -> Result<Vec<String>, String> {
    facts_modules_noting(scope).map(|(modules, _)| modules)
}

/// The fact modules, with Ansible's warning when `smart` found a network OS and `setup` is
/// listed too (its facts are the controller's under a network connection).
pub(crate) fn facts_modules_noting(
    scope: &Arc<Scope>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut warnings = Vec::new();
    let probe = Value::String("{{ ansible_facts_modules | default(None) }}".into());
    let configured = match templar().render(&probe, scope) {
        Ok(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        Ok(Value::String(s)) if !s.is_empty() && s != "None" => comma_words(&s),
        _ => std::env::var("ANSIBLE_FACTS_MODULES")
            .ok()
            .map(|s| comma_words(&s))
            .unwrap_or_default(),
    };
    let mut modules: Vec<String> = if configured.is_empty() {
        vec!["smart".into()]
    } else {
        configured
    };
    if let Some(i) = modules.iter().position(|m| m == "smart") {
        modules.remove(i);
        let probe = Value::String(
            "{{ ansible_network_os | default((ansible_facts | default({})).network_os | default(None)) }}"
                .into(),
        );
        let network_os = match templar().render(&probe, scope) {
            Ok(Value::String(s)) if !s.is_empty() && s != "None" => Some(s),
            _ => None,
        };
        match &network_os {
            Some(os) if let Some(module) = network_facts_module(os) => {
                modules.push(module.to_string())
            }
            Some(os) if modules.is_empty() => {
                return Err(format!(
                    "No fact modules available and we could not find a fact module for your \
                     network OS ({os}), try setting one via the `FACTS_MODULES` configuration."
                ));
            }
            Some(_) => {}
            None if !modules.iter().any(|m| is_setup(m)) => {
                modules.push("ansible.legacy.setup".into())
            }
            None => {}
        }
        if network_os.is_some() && modules.iter().any(|m| is_setup(m)) {
            warnings.push(
                "Detected 'setup' module and a network OS is set, the output when running it \
                 will reflect 'localhost' and not the target when a networking connection \
                 plugin is used."
                    .to_string(),
            );
        }
    }
    Ok((modules, warnings))
}

fn comma_words(text: &str) -> Vec<String> {
    text.split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Ansible's `merge_hash(…, list_merge='append_rp')`: dictionaries merge key by key, lists
/// are the earlier list without the items the later one has, then the later one; anything
/// else is replaced.
pub(crate) fn merge_facts(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) if existing.is_object() || existing.is_array() => {
                        merge_facts(existing, v)
                    }
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let mut merged: Vec<Value> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
            merged.extend(b.iter().cloned());
            *a = merged;
        }
        (slot, other) => *slot = other.clone(),
    }
}

/// Ansible's `CONNECTION_FACTS_MODULES`: the facts module of each network OS it knows.
const CONNECTION_FACTS_MODULES: &[(&str, &str)] = &[
    ("asa", "ansible.legacy.asa_facts"),
    ("cisco.asa.asa", "cisco.asa.asa_facts"),
    ("eos", "ansible.legacy.eos_facts"),
    ("arista.eos.eos", "arista.eos.eos_facts"),
    ("frr", "ansible.legacy.frr_facts"),
    ("frr.frr.frr", "frr.frr.frr_facts"),
    ("ios", "ansible.legacy.ios_facts"),
    ("cisco.ios.ios", "cisco.ios.ios_facts"),
    ("iosxr", "ansible.legacy.iosxr_facts"),
    ("cisco.iosxr.iosxr", "cisco.iosxr.iosxr_facts"),
    ("junos", "ansible.legacy.junos_facts"),
    (
        "junipernetworks.junos.junos",
        "junipernetworks.junos.junos_facts",
    ),
    ("nxos", "ansible.legacy.nxos_facts"),
    ("cisco.nxos.nxos", "cisco.nxos.nxos_facts"),
    ("vyos", "ansible.legacy.vyos_facts"),
    ("vyos.vyos.vyos", "vyos.vyos.vyos_facts"),
    ("exos", "ansible.legacy.exos_facts"),
    ("extreme.exos.exos", "extreme.exos.exos_facts"),
    ("slxos", "ansible.legacy.slxos_facts"),
    ("extreme.slxos.slxos", "extreme.slxos.slxos_facts"),
    ("voss", "ansible.legacy.voss_facts"),
    ("extreme.voss.voss", "extreme.voss.voss_facts"),
    ("ironware", "ansible.legacy.ironware_facts"),
    (
        "community.network.ironware",
        "community.network.ironware_facts",
    ),
];

fn network_facts_module(network_os: &str) -> Option<&'static str> {
    CONNECTION_FACTS_MODULES
        .iter()
        .find(|(os, _)| *os == network_os)
        .map(|(_, module)| *module)
}

/// The `gather_facts` task with fact modules other than `setup`: each runs as a task of its
/// own, with the task's `setup` arguments only for `setup` (Ansible warns of those it does not
/// pass) and the `module_defaults` of that module; their facts merge in order, and the
/// modules that failed are named, their results under `failed_modules`.
pub(super) fn with_modules(
    ctx: &ActionContext,
    modules: &[String],
) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let parallel = parallel_of(ctx, &args, modules.len());
    let limit = match (parallel, args.get("gather_timeout")) {
        (true, Some(t)) => crate::value_text(t)
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|t| *t > 0),
        _ => None,
    };
    let mut gathered = Gathered::default();
    let dir = super::async_dir(ctx.scope)?;
    let mut jobs: Vec<(String, String)> = Vec::new();
    for module in modules {
        if is_setup(module) {
            match super::setup_for_gather_facts(ctx)? {
                ActionResult::Done(result, _) => gathered.take(module, result),
                other => return Ok(other),
            }
            continue;
        }
        let mut module_args = args.clone();
        module_args.remove("parallel");
        let subset = module_args.remove("gather_subset");
        if let Some(subset) = subset
            .filter(|s| !matches!(s, Value::Null) && *s != json!("all") && *s != json!(["all"]))
        {
            gathered
                .warnings
                .push(format!("Not passing subset({}) to {module}", python_repr(&subset)).into());
        }
        for (key, word) in [("gather_timeout", "timeout"), ("filter", "filter")] {
            if let Some(value) = module_args.remove(key) {
                gathered.warnings.push(
                    format!("Not passing {word}({}) to {module}", python_repr(&value)).into(),
                );
            }
        }
        module_args.retain(|_, v| !v.is_null());
        // The module's own defaults fill in what is left.
        let short = short_module_name(module);
        for level in &ctx.task.keywords.module_defaults {
            for (name, defaults) in level {
                if settle_playbooks::short_module_name(name) != short {
                    continue;
                }
                if let Value::Object(defaults) = defaults {
                    for (k, v) in defaults {
                        if !module_args.contains_key(k) {
                            let v = templar().render(v, ctx.scope).map_err(|e| e.message)?;
                            module_args.insert(k.clone(), v);
                        }
                    }
                }
            }
        }
        let task = Task {
            module: settle_playbooks::short_module_name(module).to_string(),
            module_as_written: module.clone(),
            args: module_args
                .into_iter()
                .map(|(k, v)| (k, crate::template::untrusted(&v)))
                .collect(),
            ..ctx.task.clone()
        };
        if !parallel {
            let sub = ActionContext {
                task: &task,
                environment: ctx.environment.clone(),
                ..*ctx
            };
            match super::run(&sub) {
                ActionResult::Done(result, _) => gathered.take(module, result),
                ActionResult::Unreachable(msg) => return Ok(ActionResult::Unreachable(msg)),
                ActionResult::Meta(_) => {}
            }
            continue;
        }
        // In parallel, as Ansible: each module a background job on the host, stopped after
        // `gather_timeout` (the modules here take none of their own).
        let job = AsyncTask {
            limit: limit.unwrap_or(UNLIMITED),
            poll: 0,
            dir: dir.clone(),
        };
        let sub = ActionContext {
            task: &task,
            environment: ctx.environment.clone(),
            async_task: Some(&job),
            ..*ctx
        };
        match super::run(&sub) {
            ActionResult::Done(result, _) => match result.get("ansible_job_id") {
                Some(jid) => jobs.push((module.clone(), crate::value_text(jid))),
                None => gathered.take(module, result),
            },
            ActionResult::Unreachable(msg) => return Ok(ActionResult::Unreachable(msg)),
            ActionResult::Meta(_) => {}
        }
    }
    // The jobs' results as they finish, their files removed.
    while !jobs.is_empty() {
        let mut i = 0;
        while i < jobs.len() {
            let (module, jid) = &jobs[i];
            match super::job_status(ctx, jid, "status", &dir) {
                ActionResult::Done(mut result, _)
                    if result.get("finished") == Some(&json!(true)) =>
                {
                    super::job_status(ctx, jid, "cleanup", &dir);
                    // Ansible polls with the async_status module itself: a failed or skipped
                    // module's result keeps its `ansible_job_id` and `finished`, nothing of
                    // the async_status action's.
                    for key in [
                        "started",
                        "results_file",
                        "stdout",
                        "stderr",
                        "stdout_lines",
                        "stderr_lines",
                    ] {
                        result.remove(key);
                    }
                    gathered.take(module, result);
                    jobs.remove(i);
                }
                ActionResult::Unreachable(msg) => return Ok(ActionResult::Unreachable(msg)),
                _ => i += 1,
            }
        }
        if !jobs.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(ActionResult::Done(
        gathered.into_result(modules.len()),
        Default::default(),
    ))
}

/// What the fact modules of one gathering returned, merged as Ansible merges them.
struct Gathered {
    facts: Value,
    warnings: Vec<Value>,
    deprecations: Vec<Value>,
    failed: Map<String, Value>,
    skipped: Map<String, Value>,
}

impl Default for Gathered {
    fn default() -> Self {
        Gathered {
            facts: Value::Object(Map::new()),
            warnings: Vec::new(),
            deprecations: Vec::new(),
            failed: Map::new(),
            skipped: Map::new(),
        }
    }
}

impl Gathered {
    /// One fact module's result into the gathering's: its facts merged (on success), its
    /// notices kept, a failure or skip filed under the module's name.
    fn take(&mut self, module: &str, mut result: Map<String, Value>) {
        let flag =
            |r: &Map<String, Value>, k: &str| r.get(k).is_some_and(crate::template::json_truthy);
        if flag(&result, "failed") {
            self.failed
                .insert(module.to_string(), Value::Object(result));
            return;
        }
        if flag(&result, "skipped") {
            self.skipped
                .insert(module.to_string(), Value::Object(result));
            return;
        }
        if let Some(Value::Array(list)) = result.remove("warnings") {
            self.warnings.extend(list);
        }
        if let Some(Value::Array(list)) = result.remove("deprecations") {
            self.deprecations.extend(list);
        }
        if let Some(returned) = result.get("ansible_facts") {
            merge_facts(&mut self.facts, returned);
        }
    }

    /// The gathering's result, for `modules` fact modules in all.
    fn into_result(mut self, modules: usize) -> Map<String, Value> {
        let mut result = Map::new();
        // Each module's result as Ansible files it: without settle's own keys, a failure with
        // its `exception`.
        for sub in self.failed.values_mut().chain(self.skipped.values_mut()) {
            if let Value::Object(sub) = sub {
                sub.retain(|k, _| !crate::output::is_internal_key(k));
            }
        }
        for sub in self.failed.values_mut() {
            if let Value::Object(sub) = sub {
                sub.entry("exception")
                    .or_insert_with(|| NO_TRACEBACK.into());
            }
        }
        if let Some(traceback) = failed_modules_traceback(&self.failed) {
            result.insert("exception".into(), traceback.into());
        }
        if let Value::Object(facts) = &mut self.facts {
            facts.insert("_ansible_facts_gathered".into(), true.into());
        }
        result.insert("ansible_facts".into(), self.facts);
        result.insert("changed".into(), false.into());
        if !self.skipped.is_empty() {
            let names: Vec<&str> = self.skipped.keys().map(String::as_str).collect();
            result.insert(
                "msg".into(),
                format!("The following modules were skipped: {}.", names.join(", ")).into(),
            );
            if self.skipped.len() == modules {
                result.insert("skipped".into(), true.into());
            }
            result.insert("skipped_modules".into(), Value::Object(self.skipped));
        }
        let any_failed = !self.failed.is_empty();
        if any_failed {
            let names: Vec<&str> = self.failed.keys().map(String::as_str).collect();
            result.insert(
                "msg".into(),
                format!(
                    "The following modules failed to execute: {}.",
                    names.join(", ")
                )
                .into(),
            );
            result.insert("failed_modules".into(), Value::Object(self.failed));
        }
        result.insert("failed".into(), any_failed.into());
        if !self.warnings.is_empty() {
            result.insert("warnings".into(), Value::Array(self.warnings));
        }
        if !self.deprecations.is_empty() {
            result.insert("deprecations".into(), Value::Array(self.deprecations));
        }
        result
    }
}

/// The failed fact modules' messages, each a sub-event of the gathering's failure.
pub(crate) fn failure_events(failed: &Map<String, Value>) -> Vec<String> {
    failed
        .values()
        .map(|r| r.get("msg").map(crate::value_text).unwrap_or_default())
        .collect()
}

/// The gathering's traceback, when `DISPLAY_TRACEBACK` asks for those of errors, as Ansible
/// formats its event's: its own (settle, not being Python, has none: Ansible's
/// `(traceback missing)`), then each failed module's as a sub-traceback (a Python module's
/// own, from the host).
pub(crate) fn failed_modules_traceback(failed: &Map<String, Value>) -> Option<String> {
    let wanted = tracebacks_for().is_ok_and(|events| events.contains(&"error"));
    if !wanted || failed.is_empty() {
        return None;
    }
    let subs: Vec<String> = failed
        .values()
        .map(|r| match r.get("exception") {
            Some(Value::String(tb)) if tb != NO_TRACEBACK && !tb.is_empty() => tb.clone(),
            _ => "(traceback missing)\n".into(),
        })
        .collect();
    Some(format!(
        "(traceback missing)\n{}",
        event_children("Sub-Traceback", &subs)
    ))
}

/// A value as Python's `%s` shows it in Ansible's warnings (`min`, `['a', 'b']`).
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => format!("'{s}'"),
                    other => python_repr(other),
                })
                .collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Whether the modules run in parallel: `ansible_facts_parallel`, else the task's `parallel`,
/// else when there are more than one.
fn parallel_of(ctx: &ActionContext, args: &Map<String, Value>, count: usize) -> bool {
    let set = match ctx.scope.get("ansible_facts_parallel") {
        Ok(Some(v)) => Some(v),
        _ => args.get("parallel").cloned(),
    };
    match set {
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "true" | "1" | "y" | "t"
        ),
        Some(v) if !v.is_null() => crate::template::json_truthy(&v),
        _ => count > 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_merge_as_ansibles_append_rp() {
        let mut facts = json!({"d": {"one": 1, "two": 1}, "l": ["one", "three", "five"], "s": "a"});
        merge_facts(
            &mut facts,
            &json!({"d": {"two": 2, "four": 2}, "l": ["one", "two", "four"], "s": "b"}),
        );
        assert_eq!(
            facts,
            json!({"d": {"one": 1, "two": 2, "four": 2}, "l": ["three", "five", "one", "two", "four"], "s": "b"})
        );
    }
}
