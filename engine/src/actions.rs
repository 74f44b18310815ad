//! Actions that run on the controller (`debug`, `assert`, `set_fact`, …) and the controller half
//! of `template`, `copy` and `script` (reading and rendering local files) and of `fetch` (writing
//! one), then the call into a module.

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use settle_modules::{AsyncJob, Outcome, Plan, Request};
use settle_playbooks::{Task, search_paths};

use crate::Vars;
use crate::ansible_modules::action::ActionPlugin;
use crate::connection::{Become, ConnectionError, Target};
use crate::template::{OMIT, Scope, is_template, templar};
use crate::value_text;

mod argument_spec;
mod fetch;
pub(crate) mod gather;
mod interpreter;
mod pause;
mod reboot;
mod script;
mod synchronize;
mod transfer;
mod wait_for_connection;

/// Actions the engine carries out itself, with the arguments each takes (`None`: any).
pub(crate) const CONTROLLER_ACTIONS: &[(&str, Option<&[&str]>)] = &[
    ("debug", Some(&["msg", "var", "verbosity"])),
    ("ansible._protomatter.debug", Some(&["expression"])),
    (
        "assert",
        Some(&["that", "fail_msg", "msg", "success_msg", "quiet"]),
    ),
    ("fail", Some(&["msg"])),
    (
        "validate_argument_spec",
        Some(&[
            "argument_spec",
            "provided_arguments",
            "validate_args_context",
        ]),
    ),
    ("set_fact", None),
    ("add_host", None),
    ("set_stats", Some(&["data", "per_host", "aggregate"])),
    ("group_by", Some(&["key", "parents"])),
    ("meta", Some(&["_raw_params"])),
    // Checks its own arguments when it runs, with Ansible's message.
    ("pause", None),
    // Checks its own arguments when it runs, with Ansible's message.
    ("wait_for_connection", None),
    // Checks its own arguments when it runs, with Ansible's message.
    ("reboot", None),
    ("ansible.posix.synchronize", Some(synchronize::ARGS)),
    (
        "include_vars",
        Some(&[
            "file",
            "_raw_params",
            "name",
            "dir",
            "depth",
            "files_matching",
            "ignore_files",
            "extensions",
            "ignore_unknown_extensions",
            "hash_behaviour",
        ]),
    ),
    (
        "gather_facts",
        Some(&[
            "parallel",
            "gather_subset",
            "gather_timeout",
            "filter",
            "fact_path",
        ]),
    ),
    (
        "template",
        Some(&[
            "src",
            "dest",
            "owner",
            "group",
            "mode",
            "backup",
            "validate",
            "force",
            "follow",
            "newline_sequence",
            "trim_blocks",
            "lstrip_blocks",
            "block_start_string",
            "block_end_string",
            "variable_start_string",
            "variable_end_string",
            "comment_start_string",
            "comment_end_string",
            "output_encoding",
            "unsafe_writes",
            "attributes",
            "attr",
            "seuser",
            "serole",
            "setype",
            "selevel",
        ]),
    ),
];

/// Arguments Ansible's controller actions have that settle's do not: refused by name.
const CONTROLLER_UNSUPPORTED: &[(&str, &[&str])] = &[];

const META_ACTIONS: &[&str] = &[
    "flush_handlers",
    "end_play",
    "end_host",
    "noop",
    "clear_facts",
    "reset_connection",
    "end_batch",
    "clear_host_errors",
    "refresh_inventory",
];

/// Whether a failure of this action is the action's own ("Action failed" in Ansible's words):
/// the controller actions that call no module.
pub(crate) fn runs_no_module(module: &str) -> bool {
    CONTROLLER_ACTIONS.iter().any(|(n, _)| *n == module)
        && !matches!(
            module,
            "template" | "copy" | "gather_facts" | "ansible.posix.synchronize"
        )
}

/// Every module name a task may use, for "did you mean".
pub(crate) fn known_modules() -> Vec<&'static str> {
    let mut names: Vec<&str> = CONTROLLER_ACTIONS.iter().map(|(n, _)| *n).collect();
    names.extend(settle_modules::MODULES.iter().map(|m| m.name));
    names
}

pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

/// The arguments of a module settle runs itself: those it takes (`None`: any, checked when the
/// action runs) and those Ansible's module has that settle refuses by name.
#[derive(Debug, Clone)]
pub struct ModuleArguments {
    pub name: &'static str,
    pub accepted: Option<Vec<&'static str>>,
    pub unsupported: Vec<&'static str>,
}

/// The arguments of `module`, if settle runs it itself (a controller action or a host module).
pub fn module_arguments(module: &str) -> Option<ModuleArguments> {
    if let Some((name, args)) = CONTROLLER_ACTIONS.iter().find(|(n, _)| *n == module) {
        let unsupported = CONTROLLER_UNSUPPORTED
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(Vec::new, |(_, args)| args.to_vec());
        return Some(ModuleArguments {
            name,
            accepted: args.map(<[&str]>::to_vec),
            unsupported,
        });
    }
    let spec = settle_modules::spec(module)?;
    let mut args = spec.args.to_vec();
    args.retain(|a| !a.starts_with("_content") && *a != "_src_name");
    if spec.free_form {
        args.push("_raw_params");
    }
    Some(ModuleArguments {
        name: spec.name,
        accepted: Some(args),
        unsupported: spec.unsupported.to_vec(),
    })
}

/// Every module settle runs itself, with its arguments.
pub fn native_modules() -> Vec<ModuleArguments> {
    known_modules()
        .into_iter()
        .filter_map(module_arguments)
        .collect()
}

/// Checks a task's module and argument names before anything runs. A module settle does not
/// have must be one of Ansible's it can find (which checks its own arguments).
pub(crate) fn validate(task: &Task, play_dir: &Path) -> Result<(), String> {
    // An action plugin of the playbook's checks its own arguments; one that re-exports a
    // builtin action takes that action's.
    let aliased;
    let task = match crate::ansible_modules::action::find(task, play_dir) {
        // Refused before the run without ansible-core, as a module nobody can run is.
        Some(ActionPlugin::Python(path)) => {
            return crate::ansible_modules::ansible_core()
                .map(|_| ())
                .map_err(|why| {
                    crate::ansible_modules::action::without_ansible_core(
                        &task.module_as_written,
                        &path,
                        why,
                    )
                });
        }
        Some(ActionPlugin::Alias(builtin)) => {
            aliased = with_module(task, &builtin);
            &aliased
        }
        None => task,
    };
    let module = task.module.as_str();
    let Some(ModuleArguments {
        accepted,
        unsupported,
        ..
    }) = module_arguments(module)
    else {
        return crate::ansible_modules::find(task, play_dir).map(|_| ());
    };
    if let Some(accepted) = accepted {
        for key in task.args.keys() {
            // Arguments from a template are checked once rendered.
            if accepted.contains(&key.as_str()) || key == VARIABLE_PARAMS {
                continue;
            }
            if key == "_raw_params"
                && task.args[key]
                    .as_str()
                    .is_some_and(is_possibly_all_template)
            {
                continue;
            }
            if key == "_raw_params" {
                // Ansible's words, with the action's full name.
                let fqcn = match module.split('.').count() {
                    1 => format!("ansible.builtin.{module}"),
                    _ => module.to_string(),
                };
                return Err(format!(
                    "Action '{fqcn}' does not support raw params; give its \
                     arguments as key: value"
                ));
            }
            if unsupported.contains(&key.as_str()) {
                return Err(format!(
                    "{module}: the argument {key:?} is not supported by settle"
                ));
            }
            return Err(format!(
                "{module}: unsupported argument {key:?}; it takes {}{}",
                accepted
                    .iter()
                    .filter(|a| !a.starts_with('_'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                did_you_mean(key, accepted.iter().copied())
            ));
        }
    }
    if module == "meta" && !task.is_role_complete() {
        let action = task
            .args
            .get("_raw_params")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !META_ACTIONS.contains(&action) {
            return Err(format!(
                "meta: unknown action {action:?}; settle has {}",
                META_ACTIONS.join(", ")
            ));
        }
    }
    if module == "set_fact" && task.args.is_empty() {
        return Err("set_fact needs at least one variable".into());
    }
    Ok(())
}

/// What running an action came to.
pub(crate) enum ActionResult {
    /// The result as a task registers it, and the plan behind it (for diffs).
    Done(Map<String, Value>, Plan),
    Unreachable(String),
    /// A `meta` action, carried out by the executor.
    Meta(String),
}

/// What an action may use.
pub(crate) struct ActionContext<'a> {
    pub task: &'a Task,
    pub scope: &'a Arc<Scope>,
    pub play_dir: &'a Path,
    pub check_mode: bool,
    pub diff: bool,
    pub verbosity: u8,
    /// The task's `no_log`, for Ansible's modules (`_ansible_no_log`).
    pub no_log: bool,
    pub environment: std::collections::BTreeMap<String, String>,
    pub run_module: &'a dyn Fn(&Request) -> Result<Outcome, ConnectionError>,
    /// Where and how `run_module` reaches the host, for Ansible's action plugins, which
    /// connect by themselves.
    pub target: &'a Target,
    pub become_: Option<&'a Become>,
    /// Drops the host's connection: the next module call opens a new one.
    pub reset_connection: &'a dyn Fn(),
    /// Variables the action sets on the host (`set_fact`, `include_vars`).
    /// Sets a host variable that is data (`set_fact`): never rendered again.
    pub set_var: &'a dyn Fn(&str, Value),
    /// Sets a host variable as `set_fact` does, but with trust kept per value: a template
    /// layer whose untrusted text is wrapped to render as itself.
    pub set_trusted_var: &'a dyn Fn(&str, Value),
    /// Sets a host variable from a vars file (`include_vars`): a template like any vars file.
    pub include_var: &'a dyn Fn(&str, Value),
    /// `async`: start the module as a background job on the host.
    pub async_task: Option<&'a AsyncTask>,
    /// How the host is reached, for actions that reach it themselves (`synchronize`).
    pub reach: &'a Reach,
}

/// Where the task's host is and where its module calls go: what `synchronize` needs to point
/// rsync's own SSH connection at the host.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    /// The task's host, as its variables say to reach it.
    pub host: crate::connection::Target,
    /// Where module calls go: the host, or the delegate (`delegate_to`).
    pub exec: crate::connection::Target,
    pub delegate_to: Option<String>,
    pub become_: Option<crate::connection::Become>,
    /// A delegated task's variables as its delegate has them (with the task's own): where the
    /// module's Python comes from (`ansible_*_interpreter`), as Ansible's executor takes it.
    pub delegate_scope: Option<Arc<Scope>>,
}

/// The variables that say which Python runs a task's modules: the delegate's when delegated.
fn interpreter_scope<'a>(ctx: &'a ActionContext) -> &'a Arc<Scope> {
    ctx.reach.delegate_scope.as_ref().unwrap_or(ctx.scope)
}

/// A task's `async` and `poll`, and where its host keeps job files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsyncTask {
    /// Seconds the job may run.
    pub limit: u64,
    /// Seconds between looks at the job; 0 leaves it running (fire and forget).
    pub poll: u64,
    /// The folder of job files on the host, as given (`~` is the host's).
    pub dir: String,
}

/// Where hosts keep job files, as Ansible's shell option `async_dir`: the `ansible_async_dir`
/// variable, else `ANSIBLE_ASYNC_DIR` (or `async_dir` in ansible.cfg), else `~/.ansible_async`.
pub(crate) fn async_dir(scope: &Arc<Scope>) -> Result<String, String> {
    let var = Value::String("{{ ansible_async_dir | default(None) }}".into());
    match templar().render(&var, scope).map_err(|e| e.message)? {
        Value::String(dir) if !dir.is_empty() => return Ok(dir),
        _ => {}
    }
    Ok(std::env::var("ANSIBLE_ASYNC_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "~/.ansible_async".into()))
}

/// Whether a module may run as an `async` job: those Ansible runs through its `normal`,
/// `command`, `package`, `service` or `dnf` action (Ansible's own modules included). The
/// actions carried out on the controller, and `copy`, `assemble`, `raw`, `async_status`,
/// `script` and `fetch` (Ansible's own action plugins), may not.
fn supports_async(module: &str) -> bool {
    !matches!(
        module,
        "copy" | "assemble" | "raw" | "async_status" | "script" | "fetch" | "unarchive"
    ) && !CONTROLLER_ACTIONS.iter().any(|(name, _)| *name == module)
}

/// `j` and a random number below 999,999,999,999: the controller's half of a job id.
fn new_jid() -> String {
    let n = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    format!("j{}", n % 999_999_999_999)
}

fn failed(msg: impl Into<String>) -> ActionResult {
    ActionResult::Done(
        json!({"changed": false, "failed": true, "msg": msg.into()})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        Plan::default(),
    )
}

fn render(ctx: &ActionContext, value: &Value) -> Result<Value, String> {
    templar().render(value, ctx.scope).map_err(|e| e.message)
}

/// Renders the task's arguments and drops those equal to `omit`.
fn rendered_args(ctx: &ActionContext, skip: &[&str]) -> Result<Vars, String> {
    let mut out = Vars::new();
    for (k, v) in &ctx.task.args {
        let value = if skip.contains(&k.as_str()) {
            v.clone()
        } else {
            // An undefined value in an argument, in Ansible 2.19's words.
            templar()
                .render(v, ctx.scope)
                .map_err(|e| match e.undefined_message() {
                    Some(undefined) => format!(
                        "Task failed: Finalization of task args for '{}' failed: Error while \
                         resolving value for '{k}': {undefined}",
                        full_name(ctx.task, ctx.play_dir)
                    ),
                    None => e.message,
                })?
        };
        if value.as_str() != Some(OMIT) {
            out.insert(k.clone(), value);
        }
    }
    Ok(out)
}

pub(crate) fn run(ctx: &ActionContext) -> ActionResult {
    let raw_args =
        ctx.task.args.contains_key("_raw_params") && !takes_raw_params(ctx.task, ctx.play_dir);
    if ctx.task.args.contains_key(VARIABLE_PARAMS) || raw_args {
        return match finalize_args(ctx, raw_args) {
            Ok(task) => {
                if let Err(e) = validate(&task, ctx.play_dir) {
                    return failed(e);
                }
                run(&ActionContext {
                    task: &task,
                    environment: ctx.environment.clone(),
                    ..*ctx
                })
            }
            Err(e) => failed(e.strip_prefix(NO_TASK_SUFFIX).unwrap_or(&e)),
        };
    }
    if ctx.async_task.is_some() && !supports_async(&ctx.task.module) {
        return failed(format!(
            "This action ({}) does not support async.",
            ctx.task.module_as_written
        ));
    }
    let plugin = crate::ansible_modules::action::find(ctx.task, ctx.play_dir);
    // A host reached through a Python connection plugin: the whole task runs in ansible-core's
    // executor, which loads the plugin (and discovers the host's Python itself).
    let connection_plugin = match plugin {
        Some(ActionPlugin::Python(_)) => None,
        _ => python_connection(ctx),
    };
    if let Some(plugin) = &connection_plugin
        && let Err(why) = crate::ansible_modules::ansible_core()
    {
        return failed(
            crate::ansible_modules::action::connection_without_ansible_core(
                &ctx.target.transport,
                plugin,
                why,
            ),
        );
    }
    let python_plugin =
        matches!(plugin, Some(ActionPlugin::Python(_))) || connection_plugin.is_some();
    // Interpreter discovery, before the module, when the task asks for it (Ansible's action
    // plugins discover by themselves).
    let discovered = match runs_python_module(&ctx.task.module) && !python_plugin {
        false => None,
        true => match interpreter::wanted(ctx) {
            Err(e) => return failed(e),
            Ok(None) => None,
            Ok(Some(mode)) => match interpreter::discover(ctx, &mode) {
                Ok(d) => Some(d),
                Err(ConnectionError::Unreachable(msg)) => return ActionResult::Unreachable(msg),
                Err(ConnectionError::Failed(msg)) => return failed(msg),
            },
        },
    };
    // The module runs with the interpreter just discovered, as a fact of the host's.
    let scope_with_python = discovered.as_ref().map(|d| {
        let mut facts = match ctx.scope.get("ansible_facts") {
            Ok(Some(Value::Object(facts))) => facts,
            _ => Map::new(),
        };
        facts.insert(
            "discovered_interpreter_python".into(),
            d.python.clone().into(),
        );
        let mut layer = Vars::new();
        layer.insert("ansible_facts".into(), Value::Object(facts));
        ctx.scope.with_data(Arc::new(layer))
    });
    let with_python = scope_with_python.as_ref().map(|scope| ActionContext {
        scope,
        environment: ctx.environment.clone(),
        ..*ctx
    });
    let ctx = with_python.as_ref().unwrap_or(ctx);
    let result = match python_plugin {
        true => action_plugin(ctx),
        false => run_native(ctx),
    };
    let result = match result {
        Ok(ActionResult::Done(mut result, plan)) if runs_python_module(&ctx.task.module) => {
            interpreter::drop_module_discoveries(&mut result);
            if let Some(discovered) = discovered {
                discovered.into_result(&mut result);
            }
            Ok(ActionResult::Done(result, plan))
        }
        other => other,
    };
    // Errors here are the playbook's (a template, a missing file): say which task and where,
    // unless the message is Ansible's own, complete as it is.
    result.unwrap_or_else(|e| match e.strip_prefix(NO_TASK_SUFFIX) {
        Some(msg) => failed(msg),
        None => failed(format!(
            "{e} (task {:?} at {})",
            ctx.task.display_name(),
            ctx.task.location
        )),
    })
}

/// The actions that never reach the host: they run as settle's own whatever the connection.
fn never_connects(module: &str) -> bool {
    matches!(
        module,
        "debug"
            | "ansible._protomatter.debug"
            | "assert"
            | "fail"
            | "set_fact"
            | "validate_argument_spec"
            | "meta"
            | "pause"
            | "include_vars"
            | "add_host"
            | "group_by"
            | "set_stats"
    )
}

/// The Python connection plugin the task's host is reached through, for a task that connects.
fn python_connection(ctx: &ActionContext) -> Option<std::path::PathBuf> {
    if never_connects(&ctx.task.module) {
        return None;
    }
    let role = ctx.task.role.as_ref().map(|r| r.path.as_path());
    crate::ansible_modules::action::connection_plugin(&ctx.target.transport, role, ctx.play_dir)
}

/// Whether Ansible runs this action through a Python module on the host (and so discovers the
/// host's Python first): not the controller's own actions, `raw` or `script`.
fn runs_python_module(module: &str) -> bool {
    !matches!(
        module,
        "raw" | "script" | "meta" | "include_tasks" | "import_tasks"
    ) && !runs_no_module(module)
        && module != "ansible.posix.synchronize"
}

/// The task with another action: what an action plugin that re-exports a builtin one stands
/// for (`module_as_written` keeps the name the playbook gave).
pub(crate) fn with_module(task: &Task, module: &str) -> Task {
    let mut task = task.clone();
    task.module = module.to_string();
    task
}

fn run_native(ctx: &ActionContext) -> Result<ActionResult, String> {
    match ctx.task.module.as_str() {
        "debug" => debug(ctx),
        "ansible._protomatter.debug" => protomatter_debug(ctx),
        "assert" => assert(ctx),
        "fail" => rendered_args(ctx, &[]).map(|args| {
            let msg = args
                .get("msg")
                .map(value_text)
                .unwrap_or_else(|| "Failed as requested from task".into());
            failed(msg)
        }),
        "set_fact" => set_fact(ctx),
        "validate_argument_spec" => argument_spec::validate_argument_spec(ctx),
        "meta" => Ok(ActionResult::Meta(
            ctx.task
                .args
                .get("_raw_params")
                .and_then(Value::as_str)
                .unwrap_or("noop")
                .to_string(),
        )),
        "pause" => pause::pause(ctx),
        "wait_for_connection" => wait_for_connection::wait_for_connection(ctx),
        "reboot" => reboot::reboot(ctx),
        "include_vars" => include_vars(ctx),
        "template" => template(ctx),
        "copy" => copy(ctx),
        "assemble" => assemble(ctx),
        "script" => script::script(ctx),
        "fetch" => fetch::fetch(ctx),
        "ansible.posix.synchronize" => synchronize::synchronize(ctx),
        "gather_facts" => gather_facts(ctx),
        "add_host" => add_host(ctx),
        "group_by" => group_by(ctx),
        "set_stats" => set_stats(ctx),
        "async_status" => async_status(ctx),
        "package" => package(ctx),
        "unarchive" => unarchive(ctx),
        "uri" => uri(ctx),
        name if settle_modules::spec(name).is_none() => ansible_module(ctx),
        // The playbook's own module of that name, as Ansible finds it first.
        _ if crate::ansible_modules::in_library(ctx.task, ctx.play_dir).is_some() => {
            ansible_module(ctx)
        }
        _ => module(ctx, rendered_args(ctx, &[])),
    }
}

/// Opens an action's error that is complete as it is: the task's failure message, with no
/// task and place added (Ansible's own words, which tests compare whole).
const NO_TASK_SUFFIX: &str = "\u{1}complete:";

/// Where the parser puts a template given as the task's `args:` keyword.
const VARIABLE_PARAMS: &str = "_variable_params";

/// Whether an action takes free-form text (`_raw_params`) as it is: settle's own that accept
/// it, and Ansible action plugins that say `supports_raw_params = True`.
fn takes_raw_params(task: &Task, play_dir: &Path) -> bool {
    let module = match crate::ansible_modules::action::find(task, play_dir) {
        Some(ActionPlugin::Python(path)) => {
            return crate::ansible_modules::action::supports_raw_params(&path);
        }
        Some(ActionPlugin::Alias(builtin)) => builtin,
        None => task.module.clone(),
    };
    module_arguments(&module)
        .and_then(|m| m.accepted)
        .is_some_and(|accepted| accepted.contains(&"_raw_params"))
}

/// The task with its arguments finalized as Ansible 2.19 finalizes them, for this host and item:
/// layered, each layer over the one before, are the mapping the `args:` keyword's template gives,
/// the mapping the action's own free-form template gives (for an action that takes no free-form
/// text), and the arguments written out (`key=value` words and the `args:` mapping). A value of
/// `omit` in a layer takes the argument away, whatever the layers below say. `raw_args`: the
/// task's free-form text is such a template (`assert: '{{ item }}'`), as it is for an action
/// that takes no free-form text.
fn finalize_args(ctx: &ActionContext, raw_args: bool) -> Result<Task, String> {
    let mut task = ctx.task.clone();
    let fqcn = full_name(&task, ctx.play_dir);
    let mut layers = Vec::new();
    layers.extend(task.args.shift_remove(VARIABLE_PARAMS));
    if raw_args && let Some(raw) = task.args.shift_remove("_raw_params") {
        if !raw.as_str().is_some_and(is_possibly_all_template) {
            return Err(format!(
                "{NO_TASK_SUFFIX}Task failed: Action '{fqcn}' does not support raw params."
            ));
        }
        layers.push(raw);
    }
    let mut args = Vars::new();
    for layer in layers {
        args.extend(template_args(ctx, &layer, &fqcn)?);
    }
    args.extend(std::mem::take(&mut task.args));
    // Omitted arguments are dropped before the action checks them.
    args.retain(|_, v| v.as_str() != Some(OMIT));
    task.args = args;
    Ok(task)
}

/// The mapping one template of arguments gives (`omit` gives none).
fn template_args(ctx: &ActionContext, template: &Value, fqcn: &str) -> Result<Vars, String> {
    let written = template
        .as_str()
        .and_then(|t| templar().trusted_mapping(t.trim(), ctx.scope));
    let rendered = match written {
        // Arguments as written, each keeping its trust, less those that render to `omit`.
        Some(mut args) => {
            let mut omitted = Vec::new();
            for (k, v) in &args {
                if is_template_value(v) && render(ctx, v)?.as_str() == Some(OMIT) {
                    omitted.push(k.clone());
                }
            }
            args.retain(|k, _| !omitted.contains(k));
            Value::Object(args)
        }
        None => render(ctx, template)?,
    };
    match rendered {
        Value::Object(args) => Ok(args),
        Value::String(s) if s == OMIT => Ok(Vars::new()),
        other => Err(format!(
            "{NO_TASK_SUFFIX}Task failed: Finalization of task args for '{fqcn}' failed: Task \
             args must resolve to a 'dict' not '{}'.",
            settle_yaml::python_type(&other)
        )),
    }
}

/// Text that may be nothing but a template, as Ansible's `is_possibly_all_template` judges:
/// it opens with a Jinja override header, or starts and ends with Jinja's delimiters (of an
/// expression, a statement or a comment).
fn is_possibly_all_template(text: &str) -> bool {
    text.starts_with("#jinja2:")
        || ["{{", "{%", "{#"].iter().any(|open| text.starts_with(open))
            && ["}}", "%}", "#}"].iter().any(|close| text.ends_with(close))
}

/// The action's full name, as Ansible's messages name it: the playbook's own action plugins and
/// modules as the task names them, the rest are builtins.
fn full_name(task: &Task, play_dir: &Path) -> String {
    let own = matches!(
        crate::ansible_modules::action::find(task, play_dir),
        Some(ActionPlugin::Python(_))
    ) || crate::ansible_modules::in_library(task, play_dir).is_some();
    if task.lookup_name().contains('.') || own {
        task.lookup_name().to_string()
    } else {
        format!("ansible.builtin.{}", task.module)
    }
}

/// A string holding a template (other values are taken as they are).
fn is_template_value(v: &Value) -> bool {
    v.as_str().is_some_and(is_template)
}

fn done(map: Value) -> ActionResult {
    ActionResult::Done(
        map.as_object().cloned().unwrap_or_default(),
        Plan::default(),
    )
}

/// `add_host`: what to add, as Ansible's action returns it (`add_host: {host_name, groups,
/// host_vars}`); the executor changes the inventory and reports whether that changed anything.
fn add_host(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    if let Some(raw) = args.shift_remove("_raw_params") {
        match raw {
            Value::Object(raw) => {
                for (k, v) in raw {
                    args.entry(k).or_insert(v);
                }
            }
            other => {
                return Ok(failed(format!(
                    "Invalid raw parameters passed, requires a dictionary/mapping got a  {}",
                    settle_yaml::python_type(&other)
                )));
            }
        }
    }
    let Some(new_name) = ["name", "hostname", "host"]
        .iter()
        .find_map(|k| args.get(*k))
        .map(value_text)
    else {
        return Ok(failed("name, host or hostname needs to be provided"));
    };
    // `web1:2222`, `[::1]:2222`: the name, and the port as ansible_ssh_port (Ansible's
    // parse_address, as the inventory reads host names); anything else is the name as given.
    let (name, port) = match settle_inventory::parse_address(&new_name) {
        Some((name, port)) => (name.to_string(), port),
        None => (new_name.clone(), None),
    };
    if let Some(port) = port {
        args.insert("ansible_ssh_port".into(), port.into());
    }
    let mut groups: Vec<String> = Vec::new();
    let listed: Vec<String> = match ["groupname", "groups", "group"]
        .iter()
        .find_map(|k| args.get(*k))
    {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(_) => return Ok(failed("Groups must be specified as a list.")),
    };
    for g in listed {
        let g = g.trim().to_string();
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let host_vars: Map<String, Value> = args
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "name" | "hostname" | "groupname" | "groups"))
        .collect();
    Ok(done(json!({
        "changed": false,
        "add_host": {"host_name": name, "groups": groups, "host_vars": host_vars},
    })))
}

/// `set_stats`: the data to keep, as Ansible's action returns it (`ansible_stats: {data,
/// per_host, aggregate}`); the executor adds it to the run's custom stats.
fn set_stats(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let data = match args.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Ok(failed("The 'data' option needs to be a dictionary/hash")),
    };
    for key in data.keys() {
        if !is_variable_name(key) {
            return Ok(failed(format!(
                "Invalid variable name '{key}'; variable names must be identifiers and not Python keywords"
            )));
        }
    }
    // Ansible's boolean(strict=False): anything it does not know as true is false.
    let flag = |name: &str, default: bool| match args.get(name) {
        None | Some(Value::Null) => default,
        Some(other) => crate::template::json_bool(other),
    };
    Ok(done(json!({
        "changed": false,
        "ansible_stats": {
            "data": data,
            "per_host": flag("per_host", false),
            "aggregate": flag("aggregate", true),
        },
    })))
}

/// `group_by`: the group to put the host in (spaces become dashes, as in Ansible) and its
/// parents; the executor changes the inventory.
fn group_by(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let Some(key) = args.get("key").map(value_text) else {
        return Ok(failed("the 'key' param is required when using group_by"));
    };
    let parents: Vec<String> = match args.get("parents") {
        None => vec!["all".into()],
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(other) => vec![value_text(other)],
    };
    Ok(done(json!({
        "changed": false,
        "add_group": key.replace(' ', "-"),
        "parent_groups": parents.iter().map(|p| p.replace(' ', "-")).collect::<Vec<_>>(),
    })))
}

/// A template that is one variable, with attributes or indexes (`{{ item }}`,
/// `{{ item.name }}`, `{{ names[0] }}`): what it gives is a value as written, not text computed
/// by the template.
fn is_variable_reference(template: &str) -> bool {
    let Some(inner) = template
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
    else {
        return false;
    };
    let inner = inner.trim();
    let mut chars = inner.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
}

fn debug(ctx: &ActionContext) -> Result<ActionResult, String> {
    if ctx.task.args.contains_key("msg") && ctx.task.args.contains_key("var") {
        return Ok(failed("parameters are mutually exclusive: msg|var"));
    }
    let args = rendered_args(ctx, &["var"])?;
    let wanted = args
        .get("verbosity")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0);
    if wanted > ctx.verbosity as u64 {
        return Ok(done(
            json!({"changed": false, "skipped": true, "skipped_reason": "Verbosity threshold not met."}),
        ));
    }
    // `var` names a variable: Ansible's argument spec refuses any other type, and reads `var:`
    // with no value as absent.
    let var = match args.get("var") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(_)) => args.get("var"),
        Some(other) => {
            let value = crate::vaulted::to_template_value(other);
            return Err(format!(
                "argument 'var' is of type {} and we were unable to convert to \
                 _check_type_str_no_conversion: '{}' is not a string and conversion is not allowed",
                crate::template::python_type(&value),
                crate::template::python_repr(&value, false)
            ));
        }
    };
    // `var: !unsafe name`: untrusted text is never evaluated, as in Ansible 2.19.
    if var
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("{% raw %}"))
    {
        return Ok(failed("Encountered untrusted template or expression."));
    }
    // `var: "{{ item }}"` names the variable the template gives, as in Ansible, when that is a
    // value written in the playbook; what a template computes (`{{ "name" }}`) is untrusted
    // text, never evaluated. `var: "{{ omit }}"` leaves `var` out.
    let name = match var {
        Some(Value::String(s)) if is_template(s) => {
            let name = templar().render_text(s, ctx.scope).map_err(|e| e.message)?;
            if name == OMIT {
                None
            } else if !is_variable_reference(s) {
                return Err(format!(
                    "{NO_TASK_SUFFIX}Error while resolving `var` expression: Encountered \
                     untrusted template or expression."
                ));
            } else {
                Some(name)
            }
        }
        Some(other) => Some(value_text(other)),
        None => None,
    };
    let mut warnings = Vec::new();
    let shown = if let Some(name) = name {
        // Ansible 2.19 shows what is undefined, at any depth, as a numbered marker and warns.
        let mut markers = Vec::new();
        let entry = ctx.scope.entry(name.trim());
        let defined = entry.is_some();
        let value = match entry {
            Some((raw, false)) => templar()
                .render_marking_undefined(&raw, ctx.scope, &mut markers)
                .map_err(|e| e.message)?,
            _ => templar()
                .render_marking_undefined(
                    &Value::String(format!("{{{{ {name} }}}}")),
                    ctx.scope,
                    &mut markers,
                )
                .map_err(|e| e.message)?,
        };
        // Ansible's debug warns as it runs, naming where the template is written (its result
        // keeps the words alone): `var` itself, or for what is undefined, `var` when it names
        // it (a variable's own templates are written where settle keeps no place).
        let origin = ctx.task.arg_origin("var").map(|at| {
            let mut lines = crate::output::source_excerpt(at);
            lines.insert(0, String::new());
            lines.join("\n")
        });
        let value = if value.as_str() == Some(OMIT) {
            let warning = "The result of the `var` expression could not be omitted; a \
                           placeholder was used instead.";
            let at = origin.clone().unwrap_or_default();
            eprintln!(
                "[WARNING]: {warning}{at}{}",
                if at.is_empty() { "" } else { "\n" }
            );
            warnings.push(warning.to_string());
            Value::String("<<Omit>>".into())
        } else {
            value
        };
        if !markers.is_empty() {
            let mut warning = format!(
                "Encountered {} template error{}.",
                markers.len(),
                if markers.len() > 1 { "s" } else { "" }
            );
            for (n, message) in markers.iter().enumerate() {
                warning.push_str(&format!("\nerror {} - {message}", n + 1));
            }
            let at = origin.filter(|_| !defined).unwrap_or_default();
            eprintln!("[WARNING]: {warning}{at}\n");
            warnings.push(warning);
        }
        json!({ name: value })
    } else {
        json!({"msg": args.get("msg").cloned().unwrap_or(Value::String("Hello world!".into()))})
    };
    let mut result = shown.as_object().cloned().unwrap_or_default();
    result.insert("changed".into(), false.into());
    result.insert("failed".into(), false.into());
    if !warnings.is_empty() {
        result.insert("warnings".into(), json!(warnings));
        result.insert(crate::output::WARNINGS_SHOWN.into(), true.into());
    }
    result.insert("_debug_output".into(), shown);
    Ok(ActionResult::Done(result, Plan::default()))
}

/// `ansible._protomatter.debug`: its expressions evaluated, undefined results marked, never
/// failing on them (see [`crate::filters::protomatter::evaluate_expressions`]).
fn protomatter_debug(ctx: &ActionContext) -> Result<ActionResult, String> {
    let expressions = match ctx.task.args.get("expression") {
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(format!(
                "argument 'expression' is of type {} and we were unable to convert to list",
                crate::template::python_type(&crate::vaulted::to_template_value(other))
            ));
        }
        None => return Err("missing required arguments: expression".into()),
    };
    let (results, warnings) =
        crate::filters::protomatter::evaluate_expressions(&expressions, ctx.scope)?;
    for warning in &warnings {
        eprintln!("[WARNING]: {warning}");
    }
    let shown = json!({"expression_result": results});
    let mut result = shown.as_object().cloned().unwrap_or_default();
    result.insert("changed".into(), false.into());
    if !warnings.is_empty() {
        result.insert("warnings".into(), json!(warnings));
    }
    result.insert("_debug_output".into(), shown);
    Ok(ActionResult::Done(result, Plan::default()))
}

fn assert(ctx: &ActionContext) -> Result<ActionResult, String> {
    let that = match ctx.task.args.get("that") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) if is_template(s) => templar()
            .trusted_list(s.trim(), ctx.scope)
            .unwrap_or_else(|| vec![Value::String(s.clone())]),
        Some(other) => vec![other.clone()],
        None => return Err(format!("{NO_TASK_SUFFIX}missing required arguments: that")),
    };
    // `that:` with nothing, or an empty string, is refused before anything is evaluated.
    if that
        .iter()
        .any(|c| c.is_null() || c.as_str().is_some_and(|s| s.trim().is_empty()))
    {
        return Err(format!(
            "{NO_TASK_SUFFIX}Empty conditional expressions are not allowed."
        ));
    }
    let args = rendered_args(ctx, &["that"])?;
    let quiet = args.get("quiet").is_some_and(crate::template::json_truthy);
    let mut deprecations = Vec::new();
    for condition in &that {
        let (holds, wrapped) = templar()
            .condition_noting(condition, ctx.scope)
            .map_err(|e| format!("assert: {}", e.message))?;
        if wrapped {
            deprecations.push(conditional_as_template(ctx));
        }
        if !holds {
            let msg = args
                .get("fail_msg")
                .or_else(|| args.get("msg"))
                .map(value_text)
                .unwrap_or_else(|| "Assertion failed".into());
            return Ok(done(
                json!({"changed": false, "failed": true, "assertion": condition, "evaluated_to": false, "msg": msg}),
            ));
        }
    }
    let msg = args
        .get("success_msg")
        .map(value_text)
        .unwrap_or_else(|| "All assertions passed".into());
    let mut result = json!({"changed": false, "failed": false, "msg": msg});
    if !deprecations.is_empty() {
        result["deprecations"] = json!(deprecations);
    }
    if !quiet {
        result["_debug_output"] = json!({"changed": false, "msg": msg});
    }
    Ok(done(result))
}

/// Whether deprecations are shown for this task: its `ansible_deprecation_warnings`, else the
/// setting (`ANSIBLE_DEPRECATION_WARNINGS`, ansible.cfg's `deprecation_warnings`).
fn deprecation_warnings(ctx: &ActionContext) -> bool {
    match ctx.scope.get("ansible_deprecation_warnings") {
        Ok(Some(v)) => crate::template::json_truthy(&v),
        _ => std::env::var("ANSIBLE_DEPRECATION_WARNINGS")
            .map(|v| crate::template::json_truthy(&Value::String(v)))
            .unwrap_or(true),
    }
}

/// Ansible 2.19's deprecation of a condition in `{{ }}` that gives a value, not an expression,
/// shown (unless deprecation warnings are off) and kept in the result's `deprecations`.
fn conditional_as_template(ctx: &ActionContext) -> Value {
    const MSG: &str =
        "Conditionals should not be surrounded by templating delimiters such as {{ }} or {% %}.";
    settle_yaml::deprecation::deprecated(MSG, "2.23", None, None, Some(deprecation_warnings(ctx)));
    json!({"msg": MSG, "version": "2.23", "collection_name": "ansible.builtin"})
}

fn set_fact(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut facts = Map::new();
    for (k, v) in &ctx.task.args {
        if k == "cacheable" {
            continue;
        }
        let key = match templar()
            .render(&Value::String(k.clone()), ctx.scope)
            .map_err(|e| e.message)?
        {
            Value::String(key) => key,
            other => {
                return Err(format!(
                    "Invalid variable name '{}' of type '{}'",
                    value_text(&other),
                    settle_yaml::python_type(&other)
                ));
            }
        };
        if !is_variable_name(&key) {
            return Err(format!(
                "Invalid variable name '{key}'; variable names must be identifiers and not Python keywords"
            ));
        }
        let value = render(ctx, v)?;
        // As any action's arguments: one that renders to `omit` is not given.
        if value.as_str() != Some(OMIT) {
            facts.insert(key, value);
        }
    }
    for (k, v) in &facts {
        // A value decoded from text `apply_trust` vouched for keeps its trust per value.
        match crate::filters::protomatter::trusted_form(v) {
            Some(kept) => (ctx.set_trusted_var)(k, kept),
            None => (ctx.set_var)(k, v.clone()),
        }
    }
    // `cacheable: true` makes them facts too (kept in the fact cache), as in Ansible.
    let cacheable = match ctx.task.args.get("cacheable") {
        None => false,
        Some(v) => crate::template::json_bool(&render(ctx, v)?),
    };
    Ok(done(
        json!({"changed": false, "failed": false, "ansible_facts": facts, "_ansible_facts_cacheable": cacheable}),
    ))
}

/// A file a task names: absolute, or looked up in the role's and play's folders.
fn find_file(ctx: &ActionContext, kind: &str, name: &str) -> Result<PathBuf, String> {
    let path = Path::new(name);
    if path.is_absolute() {
        return if path.exists() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("could not find or access '{name}'"))
        };
    }
    let dirs = search_paths(kind, ctx.task.role.as_deref(), ctx.play_dir);
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "could not find or access '{name}'; searched: {}",
                searched.join(", ")
            )
        })
}

fn include_vars(ctx: &ActionContext) -> Result<ActionResult, String> {
    const DIR_ARGS: &[&str] = &[
        "dir",
        "depth",
        "files_matching",
        "ignore_files",
        "extensions",
        "ignore_unknown_extensions",
    ];
    let args = rendered_args(ctx, &[])?;
    let dir_args = args.keys().any(|k| DIR_ARGS.contains(&k.as_str()));
    let file_args = args.contains_key("file") || args.contains_key("_raw_params");
    if dir_args && file_args {
        return Err(
            "You are mixing file only and dir only arguments, these are incompatible".into(),
        );
    }
    let mut included: Vec<String> = Vec::new();
    let mut failure: Option<String> = None;
    let mut results = Map::new();
    if let Some(dir) = args.get("dir").map(value_text) {
        match include_vars_dir(ctx, &args, &dir, &mut included, &mut results) {
            Ok(()) => {}
            Err(e) => failure = Some(e),
        }
    } else {
        let file = args
            .get("file")
            .or_else(|| args.get("_raw_params"))
            .filter(|v| !v.is_null())
            .map(value_text)
            .map(|f| f.trim_end_matches('\n').to_string())
            .filter(|f| !f.is_empty());
        match file.map(|f| find_file(ctx, "vars", &f)) {
            None => failure = Some("Could not find file".into()),
            Some(Err(e)) => failure = Some(e),
            Some(Ok(path)) => match load_vars_map(&path) {
                Ok(vars) => {
                    included.push(path.display().to_string());
                    results = vars;
                }
                Err(e) => failure = Some(e),
            },
        }
    }
    if let Some(message) = failure {
        return Ok(done(json!({
            "changed": false,
            "failed": true,
            "message": message,
            "msg": message,
            "ansible_included_var_files": included,
            "ansible_facts": {},
        })));
    }
    let mut facts = match args.get("name").map(value_text) {
        Some(name) => {
            let mut m = Map::new();
            m.insert(name, Value::Object(results));
            m
        }
        None => results,
    };
    if args.get("hash_behaviour").and_then(Value::as_str) == Some("merge") {
        for (key, value) in facts.iter_mut() {
            let existing = templar().render(&Value::String(format!("{{{{ {key} }}}}")), ctx.scope);
            if let Ok(Value::Object(old)) = existing
                && value.is_object()
            {
                let mut merged = Value::Object(old);
                crate::recap::merge(&mut merged, std::mem::take(value));
                *value = merged;
            }
        }
    }
    for (k, v) in &facts {
        (ctx.include_var)(k, v.clone());
    }
    // As Ansible's action: when any file was a vault, the whole result is hidden.
    let vaulted = included.iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|text| settle_vault::is_encrypted(&text))
    });
    let mut result = json!({"changed": false, "failed": false, "ansible_facts": facts, "ansible_included_var_files": included});
    if vaulted {
        result["_ansible_no_log"] = true.into();
    }
    Ok(done(result))
}

/// A vars file that must hold a mapping (an empty file is an empty one). Reserved names in
/// it get Ansible's warning.
fn load_vars_map(path: &Path) -> Result<Map<String, Value>, String> {
    let vars = settle_inventory::load_vars_file(path).map_err(|e| {
        let message = e.to_string();
        if message.contains("a vars file must be a mapping") {
            format!("{} must be stored as a dictionary/hash", path.display())
        } else {
            message
        }
    })?;
    settle_playbooks::reserved::warn_reserved_in_file(path, vars.keys());
    Ok(vars)
}

/// `include_vars: dir=…`: every vars file below the folder, in sorted walk order, each later
/// file's top-level keys replacing earlier ones (Ansible's `_traverse_dir_depth`).
fn include_vars_dir(
    ctx: &ActionContext,
    args: &Vars,
    dir: &str,
    included: &mut Vec<String>,
    results: &mut Map<String, Value>,
) -> Result<(), String> {
    let root = match ctx.task.role.as_deref() {
        Some(role) if dir.split('/').next() == Some("vars") => {
            let candidate = role.path.join(dir);
            if candidate.exists() {
                candidate
            } else {
                PathBuf::from(dir)
            }
        }
        Some(role) => role.path.join("vars").join(dir),
        None => ctx
            .task
            .location
            .file
            .parent()
            .map_or_else(|| PathBuf::from(dir), |d| d.join(dir)),
    };
    if !root.exists() {
        return Err(format!("{} directory does not exist", root.display()));
    }
    if !root.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let depth = args
        .get("depth")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0) as usize;
    let matcher = args
        .get("files_matching")
        .map(value_text)
        .map(|p| regex::Regex::new(&p).map_err(|e| format!("files_matching: {e}")))
        .transpose()?;
    let ignore: Vec<String> = match args.get("ignore_files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(other) => return Err(format!("{} must be a list", value_text(other))),
    };
    let ignore: Vec<regex::Regex> = ignore
        .iter()
        .map(|p| {
            regex::Regex::new(&format!("(?:{p})$"))
                .map_err(|_| format!("Invalid regular expression: {p}"))
        })
        .collect::<Result<_, _>>()?;
    let extensions: Vec<String> = match args.get("extensions") {
        None => vec!["yaml".into(), "yml".into(), "json".into()],
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        // Ansible's list() of a string: its characters.
        Some(Value::String(s)) => s.chars().map(String::from).collect(),
        Some(_) => return Err("Invalid type for \"extensions\" option, it must be a list".into()),
    };
    let ignore_unknown = args
        .get("ignore_unknown_extensions")
        .is_some_and(crate::template::json_bool);
    // Python's os.path.splitext: the text after the last dot not leading the name, or "".
    let valid_ext = |name: &str| {
        let stem_start = name.len() - name.trim_start_matches('.').len();
        let ext = name[stem_start..]
            .rfind('.')
            .map_or("", |i| &name[stem_start + i + 1..]);
        extensions.iter().any(|x| x == ext)
    };
    // os.walk with followlinks, then sorted by folder path.
    let mut walked: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        files.sort();
        walked.push((d, files));
    }
    walked.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    for (folder, files) in walked {
        let level = folder
            .strip_prefix(&root)
            .map_or(0, |r| r.components().count())
            + 1;
        if depth != 0 && level > depth {
            continue;
        }
        for name in files {
            let path = folder.join(&name);
            if matcher.as_ref().is_some_and(|m| !m.is_match(&name)) {
                continue;
            }
            if ignore.iter().any(|re| re.is_match(&name)) {
                continue;
            }
            if ignore_unknown && !valid_ext(&name) {
                continue;
            }
            if !valid_ext(&name) {
                return Err(format!(
                    "{} does not have a valid extension: {}",
                    path.display(),
                    extensions.join(", ")
                ));
            }
            let vars = load_vars_map(&path)?;
            included.push(path.display().to_string());
            results.extend(vars);
        }
    }
    Ok(())
}

fn gather_facts(ctx: &ActionContext) -> Result<ActionResult, String> {
    let (modules, warnings) = gather::facts_modules_noting(ctx.scope)?;
    let result = match modules.iter().any(|m| !gather::is_setup(m)) {
        true => gather::with_modules(ctx, &modules)?,
        false => setup_for_gather_facts(ctx)?,
    };
    Ok(match result {
        ActionResult::Done(mut result, plan) if !warnings.is_empty() => {
            let list = result.entry("warnings").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                let notes = warnings.into_iter().map(Value::from);
                *list = notes.chain(list.drain(..)).collect();
            }
            ActionResult::Done(result, plan)
        }
        other => other,
    })
}

/// The `gather_facts` task's `setup`: its own arguments, the host's Python for the facts of it.
fn setup_for_gather_facts(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    args.retain(|k, _| {
        matches!(
            k.as_str(),
            "gather_subset" | "filter" | "fact_path" | "gather_timeout"
        )
    });
    if let Some(python) = host_python(interpreter_scope(ctx)) {
        args.insert("_settle_python".into(), python.into());
    }
    module_call(ctx, "setup", args)
}

/// The Python a host runs Ansible's modules with, as Ansible picks it: the host's
/// `ansible_python_interpreter`, else `ANSIBLE_PYTHON_INTERPRETER`, else the one discovered
/// there before; `None` (or `auto*`): the host finds its own.
pub(crate) fn host_python(scope: &Arc<Scope>) -> Option<String> {
    let var = |name: &str| -> Option<String> {
        let probe = Value::String(format!("{{{{ {name} | default(None) }}}}"));
        match templar().render(&probe, scope) {
            Ok(Value::String(s)) if !s.is_empty() && s != "None" => Some(s),
            _ => None,
        }
    };
    var("ansible_python_interpreter")
        .or_else(|| {
            std::env::var("ANSIBLE_PYTHON_INTERPRETER")
                .ok()
                .filter(|p| !p.is_empty())
        })
        .filter(|p| !p.starts_with("auto") && p != OMIT)
        .or_else(|| var("(ansible_facts | default({})).discovered_interpreter_python"))
}

/// Where a template's `{% include %}` and `{% import %}` look, as Ansible's template action
/// has it: `<p>/templates` then `<p>` for each of `ansible_search_path`, the playbook's folder
/// and the template's own folder.
fn template_searchpath(ctx: &ActionContext, fullpath: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = match ctx.scope.get("ansible_search_path") {
        Ok(Some(Value::Array(paths))) => paths.iter().map(|p| value_text(p).into()).collect(),
        _ => Vec::new(),
    };
    roots.push(ctx.play_dir.to_path_buf());
    roots.push(fullpath.parent().unwrap_or(Path::new("/")).to_path_buf());
    roots
        .into_iter()
        .flat_map(|p| [p.join("templates"), p])
        .collect()
}

fn template(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    let Some(src) = args.remove("src").map(|v| value_text(&v)) else {
        return Err("template: the argument \"src\" is required".into());
    };
    if !args.contains_key("dest") {
        return Err("template: the argument \"dest\" is required".into());
    }
    let path = find_file(ctx, "templates", &src)?;
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("template: could not read {}: {e}", path.display()))?;
    let source = if settle_vault::is_encrypted(&source) {
        settle_vault::decrypt(&source).map_err(|e| format!("template: {}: {e}", path.display()))?
    } else {
        source
    };
    // A `#jinja2:` first line sets the environment for this file, over the task's options.
    let (overrides, source) = crate::template::jinja2_header(&source)
        .map_err(|e| format!("template error: {}: {e}", path.display()))?;
    args.extend(overrides);
    let fullpath = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let mut layer = crate::lookups::template_file_vars(&src, &fullpath, args["dest"].clone());
    // Ansible keeps the play's own `ansible_managed`.
    let user_managed = templar()
        .condition(
            &Value::String("ansible_managed is defined".into()),
            ctx.scope,
        )
        .unwrap_or(false);
    if user_managed {
        layer.remove("ansible_managed");
    }
    let scope = ctx.scope.with_data(Arc::new(layer));
    let searchpath = template_searchpath(ctx, &fullpath);
    // Ansible's template defaults: trim_blocks on, lstrip_blocks off.
    let trim_blocks = args
        .remove("trim_blocks")
        .is_none_or(|v| crate::template::json_bool(&v));
    let lstrip_blocks = args
        .remove("lstrip_blocks")
        .is_some_and(|v| crate::template::json_bool(&v));
    let delimiters = [
        ("block_start_string", "{%"),
        ("block_end_string", "%}"),
        ("variable_start_string", "{{"),
        ("variable_end_string", "}}"),
        ("comment_start_string", "{#"),
        ("comment_end_string", "#}"),
    ]
    .map(|(key, default)| match args.remove(key) {
        Some(v) => (value_text(&v), true),
        None => (default.to_string(), false),
    });
    // Only a `#jinja2:` line sets these; Ansible's template module has no such options.
    let mut line_prefix = |key: &str| args.remove(key).map(|v| value_text(&v));
    let line_statement_prefix = line_prefix("line_statement_prefix");
    let line_comment_prefix = line_prefix("line_comment_prefix");
    args.remove("keep_trailing_newline");
    let own_syntax = line_statement_prefix.is_some() || line_comment_prefix.is_some();
    let rendered = if own_syntax || delimiters.iter().any(|(_, given)| *given) {
        let [bs, be, vs, ve, cs, ce] = delimiters.map(|(d, _)| d);
        let syntax = crate::template::FileSyntax {
            delimiters: [(bs, be), (vs, ve), (cs, ce)],
            line_statement_prefix,
            line_comment_prefix,
        };
        templar().render_file_with_syntax(
            &src,
            &source,
            &scope,
            trim_blocks,
            lstrip_blocks,
            syntax,
            &searchpath,
        )
    } else {
        templar().render_file_with(
            &src,
            &source,
            &scope,
            trim_blocks,
            lstrip_blocks,
            &searchpath,
        )
    };
    let mut rendered = rendered.map_err(|e| format!("template error: {}", e.message))?;
    match args
        .remove("newline_sequence")
        .map(|v| value_text(&v))
        .as_deref()
    {
        None | Some("\\n") | Some("\n") => {}
        Some("\\r\\n") | Some("\r\n") => rendered = rendered.replace('\n', "\r\n"),
        Some("\\r") | Some("\r") => rendered = rendered.replace('\n', "\r"),
        Some(other) => {
            return Err(format!(
                "template: newline_sequence {other:?} is not one of \\n, \\r, \\r\\n"
            ));
        }
    }
    let encoding = args
        .remove("output_encoding")
        .map(|v| value_text(&v))
        .unwrap_or_default();
    let bytes = encode(&rendered, &encoding)?;
    preserve_mode(&mut args, &path)?;
    // A folder as dest gets the template's own name, as Ansible's `_original_basename`.
    if let Some(name) = path.file_name() {
        args.insert(
            "_src_name".into(),
            name.to_string_lossy().into_owned().into(),
        );
    }
    let mut result = transfer::copy_content(ctx, args, transfer::Source::Bytes(bytes))?;
    // A file that already held the text is reported by Ansible's file module: no `src`.
    if let ActionResult::Done(map, _) = &mut result
        && !map.contains_key("path")
    {
        map.insert("src".into(), path.display().to_string().into());
    }
    Ok(result)
}

fn copy(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    let remote = args
        .get("remote_src")
        .is_some_and(crate::template::json_bool);
    // Only a folder copy makes folders: the engine's from the controller, the module's with
    // remote_src.
    let directory_mode = if remote {
        None
    } else {
        args.remove("directory_mode")
    };
    // Whether a controller folder's symlinks are followed (Ansible's default) or copied as
    // links; with remote_src the module's business.
    let local_follow = remote
        || args
            .remove("local_follow")
            .is_none_or(|v| v.is_null() || crate::template::json_bool(&v));
    if let Some(content) = args.get_mut("content") {
        // Ansible's copy action: a dict or list is written as JSON, other values as Python's str().
        let text = match &*content {
            Value::String(_) | Value::Null => None,
            Value::Object(_) | Value::Array(_) => {
                Some(crate::filters::python_json(content).map_err(|e| format!("copy: {e}"))?)
            }
            Value::Bool(true) => Some("True".into()),
            Value::Bool(false) => Some("False".into()),
            Value::Number(n) => Some(n.to_string()),
        };
        if let Some(text) = text {
            *content = Value::String(text);
        }
    }
    if args
        .get("dest")
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        return Ok(failed("dest is required"));
    }
    if args.get("content").is_some_and(|v| !v.is_null())
        && args
            .get("dest")
            .and_then(Value::as_str)
            .is_some_and(|d| d.ends_with('/'))
    {
        return Ok(failed("can not use content with a dir as dest"));
    }
    if args
        .get("src")
        .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
    {
        args.remove("src");
    }
    if !remote && let Some(src) = args.remove("src").map(|v| value_text(&v)) {
        let path = find_file(ctx, "files", &src)?;
        preserve_mode(&mut args, &path)?;
        if path.is_dir() {
            return copy_tree(
                ctx,
                &path,
                src.ends_with('/'),
                args,
                directory_mode,
                local_follow,
            );
        }
        args.insert(
            "_src_name".into(),
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .into(),
        );
        let source = copy_source(&args, &path)?;
        let mut result = transfer::copy_content(ctx, args, source)?;
        if let ActionResult::Done(map, _) = &mut result {
            map.insert("src".into(), path.display().to_string().into());
        }
        return Ok(result);
    }
    module_call(ctx, "copy", args)
}

/// Ansible's `unarchive` action: a controller `src` (found as `copy` finds it, decrypted when
/// vaulted) goes to the host as bytes (in pieces, as `copy` sends a file); with `remote_src` (or `copy: no`) the host reads it
/// itself, or downloads it when it is a URL.
fn unarchive(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    let flag = |args: &Vars, key: &str| args.get(key).map(crate::template::json_bool);
    if args.contains_key("remote_src") && args.contains_key("copy") {
        return Ok(failed(
            "parameters are mutually exclusive: ('copy', 'remote_src')",
        ));
    }
    let remote = flag(&args, "remote_src").unwrap_or(false) || flag(&args, "copy") == Some(false);
    let src = args.get("src").map(value_text).unwrap_or_default();
    if src.is_empty() || args.get("dest").is_none_or(Value::is_null) {
        return Ok(failed("src (or content) and dest are required"));
    }
    if !remote && src.contains("://") {
        return Ok(failed(format!(
            "Unsupported option, an URI src ({src}) is only supported when remote_src is True"
        )));
    }
    if !remote {
        let path = match find_file(ctx, "files", &src) {
            Ok(path) => path,
            Err(msg) => return Ok(failed(msg)),
        };
        // In pieces when it is larger than one, as copy sends a file.
        let source = copy_source(&args, &path)?;
        if let Some(stopped) = transfer::attach_file(ctx, &mut args, source)? {
            return Ok(stopped);
        }
        args.insert(
            "_src_name".into(),
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .into(),
        );
    }
    module_call(ctx, "unarchive", args)
}

/// Ansible's `uri` action: a controller `src` (found as `copy` finds it) is sent to the host
/// as the request's body; with `remote_src` the host reads it.
fn uri(ctx: &ActionContext) -> Result<ActionResult, String> {
    if ctx.check_mode {
        // Ansible's uri action does not run in check mode: skipped before the module.
        return Ok(done(json!({
            "changed": false,
            "skipped": true,
            "msg": format!(
                "This action ({}) does not support check mode.",
                ctx.task.module_as_written
            ),
        })));
    }
    let mut args = rendered_args(ctx, &[])?;
    let remote = args
        .get("remote_src")
        .is_some_and(crate::template::json_bool);
    if !remote && let Some(src) = args.get("src").filter(|v| !v.is_null()).map(value_text) {
        let path = match find_file(ctx, "files", &src) {
            Ok(path) => path,
            Err(msg) => return Ok(failed(msg)),
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("uri: could not read {}: {e}", path.display()))?;
        args.shift_remove("src");
        args.insert(
            "_content_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
    }
    module_call(ctx, "uri", args)
}

/// Ansible's `package` action: without `use` (or with `use: auto`), the `ansible_package_use`
/// variable names the package manager, else the module finds the host's.
fn package(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    let auto = args
        .get("use")
        .is_none_or(|v| v.is_null() || v.as_str() == Some("auto"));
    if auto {
        let probe = Value::String("{{ ansible_package_use | default(None) }}".into());
        match render(ctx, &probe)? {
            Value::String(name) if !name.is_empty() && name != "None" => {
                args.insert("use".into(), name.into());
            }
            _ => {}
        }
    }
    module_call(ctx, "package", args)
}

/// Ansible's `assemble` action: with `remote_src` (the default) the module joins fragments on
/// the host; without it, the fragments are the controller's (found as `copy` finds `src`,
/// vault-encrypted ones decrypted unless `decrypt: false`) and `copy` writes the result.
fn assemble(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    if args
        .get("remote_src")
        .is_none_or(crate::template::json_bool)
    {
        return module_call(ctx, "assemble", args);
    }
    let (Some(src), true) = (args.remove("src"), args.contains_key("dest")) else {
        return Ok(failed("src and dest are required"));
    };
    let path = find_file(ctx, "files", &value_text(&src))?;
    if !path.is_dir() {
        return Ok(failed(format!(
            "Source ({}) is not a directory",
            path.display()
        )));
    }
    let text = |key: &str| args.get(key).filter(|v| !v.is_null()).map(value_text);
    let (delimiter, regexp) = (text("delimiter"), text("regexp"));
    let how = settle_modules::Fragments {
        delimiter: delimiter.as_deref(),
        regexp: regexp.as_deref(),
        ignore_hidden: args
            .get("ignore_hidden")
            .is_some_and(crate::template::json_bool),
        always_newline_after_delimiter: true,
    };
    let read = |p: &Path| {
        let bytes = std::fs::read(p).map_err(|e| format!("could not read {}: {e}", p.display()))?;
        decrypt_source(&args, p, bytes)
    };
    let bytes = settle_modules::assemble_fragments(&path, &how, &read)?;
    for key in [
        "remote_src",
        "regexp",
        "delimiter",
        "ignore_hidden",
        "decrypt",
    ] {
        args.remove(key);
    }
    let mut result = transfer::copy_content(ctx, args, transfer::Source::Bytes(bytes))?;
    if let ActionResult::Done(map, _) = &mut result {
        // Ansible's action answers with one diff, the content's, not the module's list.
        if let Some(Value::Array(list)) = map.get("diff")
            && let Some(first) = list.first().cloned()
        {
            map.insert("diff".into(), first);
        }
    }
    Ok(result)
}

/// `mode: preserve`: the controller file's own mode.
fn preserve_mode(args: &mut Vars, source: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if args.get("mode").and_then(Value::as_str) == Some("preserve") {
        let meta = std::fs::metadata(source)
            .map_err(|e| format!("could not read {}: {e}", source.display()))?;
        args.insert(
            "mode".into(),
            format!("{:04o}", meta.mode() & 0o7777).into(),
        );
    }
    Ok(())
}

/// The rendered text in `output_encoding` (utf-8 when empty or not given).
fn encode(text: &str, encoding: &str) -> Result<Vec<u8>, String> {
    let name = encoding.to_ascii_lowercase().replace('_', "-");
    // The characters windows-1252 puts at 0x80..0x9f (None: unassigned).
    const CP1252_HIGH: [Option<char>; 32] = [
        Some('\u{20ac}'),
        None,
        Some('\u{201a}'),
        Some('\u{192}'),
        Some('\u{201e}'),
        Some('\u{2026}'),
        Some('\u{2020}'),
        Some('\u{2021}'),
        Some('\u{2c6}'),
        Some('\u{2030}'),
        Some('\u{160}'),
        Some('\u{2039}'),
        Some('\u{152}'),
        None,
        Some('\u{17d}'),
        None,
        None,
        Some('\u{2018}'),
        Some('\u{2019}'),
        Some('\u{201c}'),
        Some('\u{201d}'),
        Some('\u{2022}'),
        Some('\u{2013}'),
        Some('\u{2014}'),
        Some('\u{2dc}'),
        Some('\u{2122}'),
        Some('\u{161}'),
        Some('\u{203a}'),
        Some('\u{153}'),
        None,
        Some('\u{17e}'),
        Some('\u{178}'),
    ];
    let single = |limit: u32, cp1252: bool| -> Result<Vec<u8>, String> {
        text.chars()
            .map(|c| {
                let code = c as u32;
                if code < 0x80 || (code < limit && !(cp1252 && (0x80..0xa0).contains(&code))) {
                    return Ok(code as u8);
                }
                if cp1252 && let Some(i) = CP1252_HIGH.iter().position(|h| *h == Some(c)) {
                    return Ok(0x80 + i as u8);
                }
                Err(format!(
                    "template: '{encoding}' codec can't encode character {c:?}"
                ))
            })
            .collect()
    };
    match name.as_str() {
        "" | "utf-8" | "utf8" => Ok(text.as_bytes().to_vec()),
        "ascii" | "us-ascii" => single(0x80, false),
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" => single(0x100, false),
        "windows-1252" | "cp1252" => single(0x100, true),
        _ => Err(format!(
            "template: output_encoding {encoding:?} is not one settle writes (utf-8, ascii, latin-1, windows-1252)"
        )),
    }
}

/// A controller file as `copy`'s content: read in pieces when sent, unless it is
/// vault-encrypted (and to be decrypted): then decrypted here, in memory.
fn copy_source<'a>(args: &Vars, path: &'a Path) -> Result<transfer::Source<'a>, String> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| format!("copy: could not read {}: {e}", path.display());
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(unreadable)?;
    if !head.trim_ascii_start().starts_with(b"$ANSIBLE_VAULT") {
        return Ok(transfer::Source::File(path));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    decrypt_source(args, path, bytes).map(transfer::Source::Bytes)
}

/// A vault-encrypted `copy` source is decrypted unless `decrypt: false` (Ansible's default is
/// to decrypt); its text is then secret, hidden from output.
fn decrypt_source(args: &Vars, path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let wanted = args.get("decrypt").is_none_or(crate::template::json_bool);
    match std::str::from_utf8(&bytes) {
        Ok(text) if wanted && settle_vault::is_encrypted(text) => {
            let plain = settle_vault::decrypt_bytes(text).map_err(|e| match e {
                // Ansible's loader says it so, naming no task.
                settle_vault::VaultError::NoSecrets => format!(
                    "{NO_TASK_SUFFIX}A vault password or secret must be specified to decrypt {}",
                    path.display()
                ),
                e => format!("copy: {}: {e}", path.display()),
            })?;
            if let Ok(t) = std::str::from_utf8(&plain) {
                t.lines().for_each(settle_vault::reveal);
            }
            Ok(plain)
        }
        _ => Ok(bytes),
    }
}

/// What a controller folder holds, as Ansible's copy action walks it: folders and files as
/// (source, path under the copy), and symlinks kept as links as (their target as written, path).
#[derive(Debug, Default)]
struct Tree {
    dirs: Vec<(PathBuf, PathBuf)>,
    files: Vec<(PathBuf, PathBuf)>,
    links: Vec<(String, PathBuf)>,
    /// `src` itself is a link, copied as one (`local_follow: false`).
    root_is_link: bool,
}

/// Walks `root`. With `local_follow`, a link to a file is copied as that file and a link to a
/// folder is walked as a folder, unless the folder is one the walk is inside (a loop), which
/// stays a link; broken links stay links. Without it every link stays a link.
fn walk_tree(root: &Path, local_follow: bool) -> Result<Tree, String> {
    let mut tree = Tree::default();
    let is_link = |p: &Path| {
        p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
    };
    let target = |p: &Path| {
        std::fs::read_link(p)
            .map(|t| t.display().to_string())
            .map_err(|e| format!("copy: could not read the link {}: {e}", p.display()))
    };
    if !local_follow && is_link(root) {
        tree.links.push((target(root)?, PathBuf::new()));
        tree.root_is_link = true;
        return Ok(tree);
    }
    let mut stack = vec![(root.to_path_buf(), PathBuf::new(), vec![dir_id(root)?])];
    while let Some((dir, rel, parents)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| format!("copy: could not read {}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let rel_path = rel.join(path.file_name().unwrap_or_default());
            let link = is_link(&path);
            if path.is_dir() {
                let id = dir_id(&path)?;
                if link && (!local_follow || parents.contains(&id)) {
                    tree.links.push((target(&path)?, rel_path));
                    continue;
                }
                let mut inner = parents.clone();
                inner.push(id);
                tree.dirs.push((path.clone(), rel_path.clone()));
                stack.push((path, rel_path, inner));
            } else if link && !(local_follow && path.is_file()) {
                tree.links.push((target(&path)?, rel_path));
            } else {
                tree.files.push((path, rel_path));
            }
        }
    }
    Ok(tree)
}

/// A folder's device and inode: the same folder by any path.
fn dir_id(path: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("copy: could not read {}: {e}", path.display()))
}

/// `copy` of a controller folder: `src: dir` puts `dir` itself under `dest`, `src: dir/` its
/// contents. Folders are made with `directory_mode` (else the default), files copied one by
/// one; the task's result is one result with every difference in it.
fn copy_tree(
    ctx: &ActionContext,
    root: &Path,
    contents_only: bool,
    mut args: Vars,
    directory_mode: Option<Value>,
    local_follow: bool,
) -> Result<ActionResult, String> {
    let dest = args
        .remove("dest")
        .map(|v| value_text(&v))
        .ok_or("copy: the argument \"dest\" is required")?;
    let base = if contents_only {
        PathBuf::from(&dest)
    } else {
        PathBuf::from(&dest).join(root.file_name().unwrap_or_default())
    };
    let tree = walk_tree(root, local_follow)?;
    let (mut dirs, files, links) = (tree.dirs, tree.files, tree.links);
    if !tree.root_is_link {
        dirs.push((root.to_path_buf(), PathBuf::new()));
    }
    dirs.sort_by(|a, b| a.1.cmp(&b.1));
    let mut combined = Plan::default();
    let mut changed = false;
    let mut calls: Vec<(&str, Vars, Option<&Path>)> = Vec::new();
    for (_, rel) in &dirs {
        let mut dir_args = Vars::new();
        dir_args.insert("path".into(), base.join(rel).display().to_string().into());
        dir_args.insert("state".into(), "directory".into());
        for key in ["owner", "group"] {
            if let Some(v) = args.get(key) {
                dir_args.insert(key.into(), v.clone());
            }
        }
        if let Some(mode) = &directory_mode {
            dir_args.insert("mode".into(), mode.clone());
        }
        calls.push(("file", dir_args, None));
    }
    for (source, rel) in &files {
        // Read one at a time when its call is made: never the whole tree in memory.
        let mut file_args = args.clone();
        preserve_mode(&mut file_args, source)?;
        file_args.insert("dest".into(), base.join(rel).display().to_string().into());
        calls.push(("copy", file_args, Some(source.as_path())));
    }
    // Links last, as Ansible makes them: the link's own target, replacing what is there.
    for (target, rel) in links {
        let mut link_args = Vars::new();
        let path = if rel.as_os_str().is_empty() {
            base.clone()
        } else {
            base.join(&rel)
        };
        link_args.insert("path".into(), path.display().to_string().into());
        link_args.insert("src".into(), target.into());
        link_args.insert("state".into(), "link".into());
        link_args.insert("force".into(), true.into());
        link_args.insert("follow".into(), false.into());
        for key in ["owner", "group"] {
            if let Some(v) = args.get(key) {
                link_args.insert(key.into(), v.clone());
            }
        }
        calls.push(("file", link_args, None));
    }
    for (module, call_args, source) in calls {
        let answer = match source {
            Some(source) => {
                let content = copy_source(&call_args, source)?;
                transfer::copy_content(ctx, call_args, content)?
            }
            None => module_call(ctx, module, call_args)?,
        };
        match answer {
            ActionResult::Done(result, plan) => {
                if result
                    .get("failed")
                    .is_some_and(crate::template::json_truthy)
                {
                    return Ok(ActionResult::Done(result, plan));
                }
                changed |= result
                    .get("changed")
                    .is_some_and(crate::template::json_truthy);
                combined
                    .changes
                    .extend(plan.changes.into_iter().map(|mut c| {
                        c.field = format!(
                            "{}: {}",
                            result
                                .get("path")
                                .or(result.get("dest"))
                                .map(value_text)
                                .unwrap_or_default(),
                            c.field
                        );
                        c
                    }));
                combined.content.extend(plan.content);
            }
            other => return Ok(other),
        }
    }
    let mut result = Map::new();
    result.insert("changed".into(), changed.into());
    result.insert("failed".into(), false.into());
    result.insert("dest".into(), base.display().to_string().into());
    result.insert("src".into(), root.display().to_string().into());
    Ok(ActionResult::Done(result, combined))
}

fn module(ctx: &ActionContext, args: Result<Vars, String>) -> Result<ActionResult, String> {
    let mut args = args?;
    // Ansible's pip runs the pip of the Python its module runs with.
    if ctx.task.module == "pip"
        && let Some(python) = host_python(interpreter_scope(ctx))
    {
        args.insert("_settle_python".into(), python.into());
    }
    module_call(ctx, &ctx.task.module, args)
}

fn module_call(ctx: &ActionContext, module: &str, args: Vars) -> Result<ActionResult, String> {
    call(ctx, Request::new(module, args))
}

/// A module settle does not have: Ansible's own, packed on the controller and run on the host
/// with the arguments as written (the module checks them) and Ansible's `_ansible_*` ones.
fn ansible_module(ctx: &ActionContext) -> Result<ActionResult, String> {
    use crate::ansible_modules;
    let found = ansible_modules::find(ctx.task, ctx.play_dir)?;
    let packed = ansible_modules::pack(&found, ctx.play_dir)?;
    let var = |name: &str| -> Option<String> {
        let probe = Value::String(format!("{{{{ {name} | default(None) }}}}"));
        match templar().render(&probe, interpreter_scope(ctx)) {
            Ok(Value::String(s)) if !s.is_empty() && s != "None" && s != OMIT => Some(s),
            _ => None,
        }
    };
    // An interpreter variable that does not render fails the task, in Ansible's words.
    if let Some((interpreter, _)) = &packed.shebang
        && !ansible_modules::is_python(interpreter)
        && let Some(base) = Path::new(interpreter).file_name().and_then(|n| n.to_str())
        && let Err(e) = interpreter_scope(ctx).get(&format!("ansible_{base}_interpreter"))
    {
        return Err(format!("{}{}", NO_TASK_SUFFIX, e.message));
    }
    // As Ansible: the interpreter named for the host, else the one discovered there before.
    let python = host_python(interpreter_scope(ctx));
    let payload = ansible_modules::payload(&packed, &ctx.task.module_as_written, python, |base| {
        var(&format!("ansible_{base}_interpreter"))
    });
    let mut args = rendered_args(ctx, &[])?;
    let version = ansible_modules::ansible_core()
        .map(|core| core.version.clone())
        .unwrap_or_else(|_| "2.19.0".into());
    let remote_tmp = var("ansible_remote_tmp")
        .or_else(|| {
            std::env::var("ANSIBLE_REMOTE_TEMP")
                .ok()
                .filter(|t| !t.is_empty())
        })
        .unwrap_or_else(|| "~/.ansible/tmp".into());
    let internal = json!({
        "_ansible_no_log": ctx.no_log,
        "_ansible_debug": false,
        "_ansible_verbosity": ctx.verbosity,
        "_ansible_version": version,
        "_ansible_module_name": found.module_name,
        "_ansible_syslog_facility": var("ansible_syslog_facility").unwrap_or_else(|| "LOG_USER".into()),
        "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
        "_ansible_socket": null,
        "_ansible_shell_executable": var("ansible_shell_executable").unwrap_or_else(|| "/bin/sh".into()),
        "_ansible_keep_remote_files": false,
        "_ansible_remote_tmp": remote_tmp,
        "_ansible_ignore_unknown_opts": false,
        "_ansible_target_log_info": null,
        "_ansible_tracebacks_for": crate::output::tracebacks_for().unwrap_or_default(),
    });
    // Only those the installed ansible-core knows: its modules reject any other.
    let known = ansible_modules::ansible_core().map(|core| &core.pass_vars);
    if let Value::Object(internal) = internal {
        args.extend(internal.into_iter().filter(|(k, _)| match known {
            Ok(known) => known.contains(k),
            Err(_) => true,
        }));
    }
    let mut request = Request::new(&ctx.task.module, args);
    request.ansible_module = Some(payload);
    let result = call(ctx, request)?;
    Ok(match result {
        ActionResult::Done(mut result, mut plan) => {
            from_ansible_module(&result, &mut plan);
            // The module's deprecations are shown with its result, unless the task turns
            // them off.
            if result.contains_key("deprecations") {
                result.insert(
                    crate::output::SHOW_DEPRECATIONS.into(),
                    deprecation_warnings(ctx).into(),
                );
            }
            result.insert(
                ANSIBLE_MODULE_KEY.into(),
                found.path.display().to_string().into(),
            );
            ActionResult::Done(result, plan)
        }
        other => other,
    })
}

/// An action plugin of the playbook's, run by ansible-core on the controller with the task's
/// rendered arguments, the host's variables and the connection settle would use.
fn action_plugin(ctx: &ActionContext) -> Result<ActionResult, String> {
    use crate::ansible_modules::action;
    if ctx.async_task.is_some() {
        return Ok(failed(format!(
            "{} is an Ansible action plugin: settle does not run those as async jobs",
            ctx.task.module_as_written
        )));
    }
    let args = rendered_args(ctx, &[])?;
    // Values from hosts and results are final; what people wrote stays a template that
    // Ansible renders if the plugin reads it (as its task_vars hold it).
    let (mut vars, mut templates) = (Map::new(), Map::new());
    for name in ctx.scope.names() {
        match ctx.scope.entry(&name) {
            // Connection settings settle can render are given rendered (they may use
            // `hostvars`, which the worker lacks).
            Some((raw, false))
                if crate::template::needs_render(&raw)
                    && !(name.starts_with("ansible_")
                        && ctx.scope.get(&name).is_ok_and(|v| v.is_some())) =>
            {
                templates.insert(name, raw.into_owned());
            }
            Some(_) => {
                if let Ok(Some(value)) = ctx.scope.get(&name) {
                    vars.insert(name, value);
                }
            }
            None => {}
        }
    }
    let host = match ctx.scope.get("inventory_hostname") {
        Ok(Some(name)) => value_text(&name),
        _ => ctx.target.address.clone(),
    };
    let mut result = action::run(action::Call {
        task: ctx.task,
        play_dir: ctx.play_dir,
        host,
        args,
        vars,
        templates,
        target: ctx.target,
        become_: ctx.become_,
        check_mode: ctx.check_mode,
        diff: ctx.diff,
        no_log: ctx.no_log,
        verbosity: ctx.verbosity,
        environment: &ctx.environment,
        timeout: ctx
            .task
            .keywords
            .timeout
            .as_ref()
            .and_then(|t| render(ctx, t).ok())
            .and_then(|t| t.as_u64().or_else(|| t.as_str()?.trim().parse().ok()))
            .filter(|t| *t > 0),
    })?;
    if result
        .get("unreachable")
        .is_some_and(crate::template::json_truthy)
    {
        let msg = result.get("msg").map(value_text).unwrap_or_default();
        return Ok(ActionResult::Unreachable(msg));
    }
    let mut plan = Plan::default();
    from_ansible_module(&result, &mut plan);
    if let Some(ActionPlugin::Python(path)) = action::find(ctx.task, ctx.play_dir) {
        result.insert(ANSIBLE_MODULE_KEY.into(), path.display().to_string().into());
        result.insert(ACTION_PLUGIN_KEY.into(), true.into());
    }
    Ok(ActionResult::Done(result, plan))
}

/// The hidden key of a result that came from one of Ansible's action plugins.
pub(crate) const ACTION_PLUGIN_KEY: &str = "_settle_action_plugin";

/// The hidden key of a result that came from one of Ansible's modules: its file.
pub(crate) const ANSIBLE_MODULE_KEY: &str = "_settle_ansible_module";

/// An Ansible module's `diff`, shown as settle shows diffs.
fn from_ansible_module(result: &Map<String, Value>, plan: &mut Plan) {
    let diffs: Vec<Value> = match result.get("diff") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(serde_json::to_string_pretty(other).unwrap_or_default() + "\n"),
    };
    for diff in &diffs {
        if let Some(prepared) = diff.get("prepared").and_then(Value::as_str) {
            plan.content.push(settle_modules::ContentDiff {
                path: String::new(),
                before: None,
                after: None,
                summary: Some(prepared.to_string()),
            });
            continue;
        }
        let (before, after) = (text(diff.get("before")), text(diff.get("after")));
        if before.is_none() && after.is_none() || before == after {
            continue;
        }
        let header = diff
            .get("after_header")
            .or_else(|| diff.get("before_header"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        plan.content.push(settle_modules::ContentDiff {
            path: header,
            before,
            after,
            summary: None,
        });
    }
}

/// Sends a module call to the host and shapes its outcome as the task's result.
fn call(ctx: &ActionContext, mut request: Request) -> Result<ActionResult, String> {
    let module = request.module.clone();
    let module = module.as_str();
    request.check_mode = ctx.check_mode;
    request.diff = ctx.diff;
    request.environment = ctx.environment.clone();
    request.async_job = ctx.async_task.map(|a| AsyncJob {
        jid: new_jid(),
        limit: a.limit,
        dir: a.dir.clone(),
    });
    match (ctx.run_module)(&request) {
        Err(ConnectionError::Unreachable(msg)) => Ok(ActionResult::Unreachable(msg)),
        Err(ConnectionError::Failed(msg)) => Ok(failed(msg)),
        Ok(outcome) => {
            let mut result = outcome.values;
            result.insert("changed".into(), outcome.changed.into());
            result.insert("failed".into(), outcome.failed.into());
            if outcome.skipped {
                result.insert("skipped".into(), true.into());
            }
            if let Some(msg) = outcome.msg {
                let msg = if outcome.bad_arguments {
                    format!(
                        "{msg} (task {:?} at {})",
                        ctx.task.display_name(),
                        ctx.task.location
                    )
                } else {
                    msg
                };
                result.insert("msg".into(), msg.into());
            }
            // A module's own diff (`file`'s `path_content`, `cron`'s) goes through as it is.
            if ctx.diff
                && request.ansible_module.is_none()
                && !result.contains_key("diff")
                && let Some(diff) = result_diff(module, &result, &outcome.plan, &request)
            {
                result.insert("diff".into(), diff);
            }
            // As Ansible's modules report them, shown from -vvv on (Ansible's own modules
            // report theirs). raw, script and fetch are Ansible actions that run no module
            // whose arguments they could report.
            let action_only = matches!(request.module.as_str(), "raw" | "script" | "fetch");
            if ctx.verbosity >= 3 && !ctx.no_log && !action_only && request.ansible_module.is_none()
            {
                result
                    .entry("invocation")
                    .or_insert_with(|| json!({"module_args": invocation_args(&request)}));
            }
            Ok(ActionResult::Done(result, outcome.plan))
        }
    }
}

/// Arguments of settle's modules that Ansible's declare `no_log`: never shown.
const NO_LOG_ARGS: &[(&str, &[&str])] = &[
    ("copy", &["content"]),
    ("user", &["password", "ssh_key_passphrase"]),
    ("get_url", &["url_password", "password"]),
    ("uri", &["url_password", "password"]),
];

/// The arguments of Ansible's module specs (`argument_spec`, with the common file arguments
/// where the module adds them) and their defaults (`null` for none), which
/// `invocation.module_args` lists whether the task gave them or not, and the arguments the spec
/// marks `no_log`. Made from ansible-core 2.19.14's modules (`shell` is `command` with
/// `_uses_shell`); a module not in it shows the arguments given.
const SPEC_DEFAULTS: &str = include_str!("module_spec_defaults.json");

/// A module's entry of [`SPEC_DEFAULTS`].
#[derive(Default)]
struct ModuleSpecDefaults {
    /// Every argument with its default.
    defaults: Map<String, Value>,
    /// The arguments the spec marks `no_log`.
    no_log: Vec<String>,
    /// Alias → the argument it names.
    aliases: Map<String, Value>,
    /// The arguments of type `int`, `float` or `bool`, which Ansible converts.
    types: Map<String, Value>,
}

fn module_spec(module: &str) -> Option<&'static ModuleSpecDefaults> {
    static SPECS: std::sync::OnceLock<std::collections::HashMap<String, ModuleSpecDefaults>> =
        std::sync::OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        let Ok(Value::Object(all)) = serde_json::from_str(SPEC_DEFAULTS) else {
            return std::collections::HashMap::new();
        };
        let map = |spec: &Value, key: &str| {
            spec.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        all.into_iter()
            .map(|(name, spec)| {
                let no_log = spec
                    .get("no_log")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                let entry = ModuleSpecDefaults {
                    defaults: map(&spec, "defaults"),
                    no_log,
                    aliases: map(&spec, "aliases"),
                    types: map(&spec, "types"),
                };
                (name, entry)
            })
            .collect()
    });
    let module = module
        .strip_prefix("ansible.builtin.")
        .or_else(|| module.strip_prefix("ansible.legacy."))
        .unwrap_or(module);
    specs.get(module)
}

/// A given value as Ansible's argument validation converts it to the spec's type (a string
/// `"5"` for an `int`, `"yes"` for a `bool`); anything else as it is.
fn spec_typed(value: &Value, kind: Option<&str>) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    let text = text.trim();
    match kind {
        Some("int") => text
            .parse::<i64>()
            .map_or_else(|_| value.clone(), Value::from),
        Some("float") => text
            .parse::<f64>()
            .map_or_else(|_| value.clone(), Value::from),
        Some("bool") => match text.to_ascii_lowercase().as_str() {
            "yes" | "on" | "1" | "true" | "y" | "t" => true.into(),
            "no" | "off" | "0" | "false" | "n" | "f" => false.into(),
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// A module call's arguments as `invocation.module_args` shows them: `no_log` ones masked as
/// Ansible masks them, the engine's internal ones (a file's bytes) left out.
fn invocation_args(request: &Request) -> Value {
    let secret = NO_LOG_ARGS
        .iter()
        .find(|(module, _)| *module == request.module)
        .map_or(&[][..], |(_, args)| *args);
    let mut args = request.args.clone();
    args.retain(|k, _| !k.starts_with("_content") && k != "_src_name");
    // As Ansible's validated parameters hold them: a value given under an alias under the
    // argument's name too, given values converted to the spec's type, every argument of the
    // spec (with its default when not given).
    let spec = module_spec(&request.module);
    if let Some(spec) = spec {
        for (alias, name) in &spec.aliases {
            if let (Some(value), Some(name)) = (args.get(alias).cloned(), name.as_str()) {
                args.entry(name.to_string()).or_insert(value);
            }
        }
        for (k, v) in args.iter_mut() {
            let name = spec.aliases.get(k).and_then(Value::as_str).unwrap_or(k);
            *v = spec_typed(v, spec.types.get(name).and_then(Value::as_str));
        }
        for (k, v) in &spec.defaults {
            args.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // copy's action sends the content as a file, not as an argument.
    if request.module == "copy" && args.contains_key("content") {
        args.insert("content".into(), Value::Null);
    }
    let spec_secret = spec.map_or(&[][..], |spec| spec.no_log.as_slice());
    // debconf's answer is a secret when it is a password.
    let password = request.module == "debconf"
        && request.args.get("vtype").and_then(Value::as_str) == Some("password");
    for (k, v) in args.iter_mut() {
        let answer = password && matches!(k.as_str(), "value" | "answer");
        let spec_says = spec_secret.iter().any(|s| s == k);
        if (secret.contains(&k.as_str()) || spec_says || answer) && !v.is_null() {
            *v = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER".into();
        }
    }
    Value::Object(args)
}

/// `async_status`: the state of a job (`mode: status`) or its file removed (`mode: cleanup`).
fn async_status(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let jid = match args.get("jid") {
        Some(Value::String(jid)) => jid.clone(),
        Some(other) if !other.is_null() => value_text(other),
        _ => return Ok(failed("missing required arguments: jid")),
    };
    let mode = args.get("mode").map(value_text).unwrap_or("status".into());
    if mode != "status" && mode != "cleanup" {
        return Ok(failed(format!(
            "value of mode must be one of: status, cleanup, got: {mode}"
        )));
    }
    Ok(job_status(ctx, &jid, &mode, &async_dir(ctx.scope)?))
}

/// Asks the host about a job, and shapes the answer as Ansible's `async_status` action does:
/// `started` and `finished` always there (booleans), `stdout` and `stderr` at least empty.
pub(crate) fn job_status(ctx: &ActionContext, jid: &str, mode: &str, dir: &str) -> ActionResult {
    let mut args = Vars::new();
    args.insert("jid".into(), jid.into());
    args.insert("mode".into(), mode.into());
    args.insert("_async_dir".into(), dir.into());
    let mut request = Request::new("async_status", args);
    request.check_mode = ctx.check_mode;
    request.environment = ctx.environment.clone();
    let outcome = match (ctx.run_module)(&request) {
        Err(ConnectionError::Unreachable(msg)) => return ActionResult::Unreachable(msg),
        Err(ConnectionError::Failed(msg)) => return failed(msg),
        Ok(outcome) => outcome,
    };
    let mut outcome = outcome;
    let mut result = json!({"started": mode == "status", "finished": false, "stdout": "",
        "stderr": "", "stdout_lines": [], "stderr_lines": [], "ansible_job_id": jid})
    .as_object()
    .cloned()
    .unwrap_or_default();
    let mut values = std::mem::take(&mut outcome.values);
    // The job's own stdout split into lines, as Ansible splits any module's.
    for key in ["stdout", "stderr"] {
        let lines_key = format!("{key}_lines");
        if let Some(Value::String(text)) = values.get(key)
            && !values.contains_key(&lines_key)
        {
            let lines: Vec<Value> = text.lines().map(Value::from).collect();
            values.insert(lines_key, lines.into());
        }
    }
    result.extend(values);
    outcome.status_into(&mut result);
    for key in ["started", "finished"] {
        let truth = result.get(key).is_some_and(crate::template::json_truthy);
        result.insert(key.into(), truth.into());
    }
    ActionResult::Done(result, outcome.plan)
}

/// The `diff` a task registers in diff mode, shaped as Ansible's modules return it: `file` a
/// `{before, after}` of the changed attributes (with `path`); `lineinfile`/`blockinfile` their
/// content (`PATH (content)`) and then the changed attributes (`PATH (file attributes)`);
/// `copy`/`template` their content under the plain path, or, when only attributes changed,
/// what the `file` module they call returns; others their content under the plain path.
/// `file state=touch` shows the state it found (`absent`, `file`…) and `touch`, with every
/// changed attribute and the times as numbers, even for a file it creates; in check mode it
/// shows nothing for a file it would create, as Ansible's `execute_touch` returns early.
fn result_diff(
    module: &str,
    result: &Map<String, Value>,
    plan: &Plan,
    request: &Request,
) -> Option<Value> {
    let path = result
        .get("path")
        .or_else(|| result.get("dest"))
        .map(value_text)
        .or_else(|| plan.content.first().map(|c| c.path.clone()))
        .unwrap_or_default();
    let mut before = Map::new();
    let mut after = Map::new();
    // What comes into being (or goes) is its state alone: the mode a new folder gets is not
    // a change of mode.
    let appears = plan
        .changes
        .iter()
        .any(|c| c.field == "state" && c.before.as_deref() == Some("absent"));
    let touch =
        module == "file" && request.args.get("state").and_then(Value::as_str) == Some("touch");
    if touch && appears && request.check_mode {
        return None;
    }
    let shown = |field: &str| field != "content" && (touch || !appears || field == "state");
    // Times are numbers, as `os.stat` gives them.
    let value = |field: &str, text: &String| match field {
        "atime" | "mtime" => text
            .parse::<f64>()
            .ok()
            .and_then(|t| serde_json::Number::from_f64(t).map(Value::Number))
            .unwrap_or_else(|| text.clone().into()),
        _ => text.clone().into(),
    };
    for change in plan.changes.iter().filter(|c| shown(&c.field)) {
        let field = change.field.as_str();
        if let Some(b) = &change.before {
            before.insert(field.into(), value(field, b));
        }
        if let Some(a) = &change.after {
            after.insert(field.into(), value(field, a));
        }
    }
    if touch && !after.contains_key("state") {
        let found = result.get("state").map(value_text).unwrap_or_default();
        before.insert("state".into(), found.into());
        after.insert("state".into(), "touch".into());
    }
    let with_path = |mut map: Map<String, Value>| {
        map.insert("path".into(), path.clone().into());
        Value::Object(map)
    };
    let attributes_changed = !before.is_empty() || !after.is_empty();
    if module == "file" || (matches!(module, "copy" | "template") && plan.content.is_empty()) {
        return (module == "file" || attributes_changed)
            .then(|| json!({"before": with_path(before), "after": with_path(after)}));
    }
    let in_parts = matches!(module, "lineinfile" | "blockinfile");
    let mut list: Vec<Value> = plan
        .content
        .iter()
        .map(|c| {
            let header = if in_parts {
                format!("{} (content)", c.path)
            } else {
                c.path.clone()
            };
            let mut diff = json!({
                "before": c.before.clone().unwrap_or_default(),
                "after": c.after.clone().unwrap_or_default(),
                "before_header": header,
                "after_header": header,
            });
            // Ansible's copy and template name the file before only when there was one.
            if c.before.is_none()
                && matches!(module, "copy" | "template")
                && let Some(map) = diff.as_object_mut()
            {
                map.remove("before_header");
            }
            diff
        })
        .collect();
    if in_parts && attributes_changed {
        list.push(json!({
            "before": before,
            "after": after,
            "before_header": format!("{path} (file attributes)"),
            "after_header": format!("{path} (file attributes)"),
        }));
    }
    (!list.is_empty()).then_some(Value::Array(list))
}

/// The diff people read for a plan: unified diffs of contents, then attribute changes.
pub(crate) fn diff_text(plan: &Plan) -> String {
    let mut out = String::new();
    for content in &plan.content {
        out.push_str(&format!(
            "--- before: {}\n+++ after: {}\n",
            content.path, content.path
        ));
        match &content.summary {
            Some(summary) => out.push_str(&format!("  (content not shown: {summary})\n")),
            None => {
                let before = content.before.as_deref().unwrap_or("");
                let after = content.after.as_deref().unwrap_or("");
                let diff = similar::TextDiff::from_lines(before, after);
                for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
                    out.push_str(&hunk.to_string());
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
            }
        }
    }
    let attributes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.field != "content")
        .collect();
    if !attributes.is_empty() {
        for change in attributes {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
            out.push_str(&format!(
                "  {}: {} → {}\n",
                change.field,
                show(&change.before),
                show(&change.after)
            ));
        }
    }
    out.trim_end_matches('\n').to_string()
}

/// A name a variable can have: an identifier that is not one of Python's keywords or
/// constants, as Ansible checks for `set_fact`.
fn is_variable_name(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "True", "False", "None", "true", "false", "none", "and", "as", "assert", "async", "await",
        "break", "class", "continue", "def", "del", "elif", "else", "except", "finally", "for",
        "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass",
        "raise", "return", "try", "while", "with", "yield",
    ];
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

#[cfg(test)]
mod spec_default_tests {
    use super::*;

    #[test]
    fn the_module_specs_are_read() {
        let Value::Object(all) = serde_json::from_str(SPEC_DEFAULTS).unwrap() else {
            panic!("not a mapping");
        };
        for module in all.keys() {
            assert!(module_spec(module).is_some(), "{module}");
        }
        assert_eq!(
            module_spec("ansible.builtin.ping").unwrap().defaults["data"],
            "pong"
        );
        assert_eq!(module_spec("shell").unwrap().defaults["_uses_shell"], true);
        assert!(
            module_spec("user")
                .unwrap()
                .no_log
                .contains(&"password".to_string())
        );
        assert_eq!(module_spec("file").unwrap().aliases["dest"], "path");
        assert_eq!(spec_typed(&"0".into(), Some("int")), json!(0));
        assert_eq!(spec_typed(&"yes".into(), Some("bool")), json!(true));
        assert_eq!(spec_typed(&"0755".into(), None), json!("0755"));
    }
}
