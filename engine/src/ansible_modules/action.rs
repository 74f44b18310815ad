//! Ansible action plugins: Python that runs inside ansible-playbook on the controller
//! (`action_plugins/NAME.py` beside the playbook or in a role, a collection's
//! `plugins/action/NAME.py`). As in Ansible, an action plugin named like the task's action
//! takes the task, even one settle runs natively (a local `action_plugins/debug.py` replaces
//! `debug`; `ansible.builtin.debug` stays settle's).
//!
//! - A plugin that only re-exports one of ansible-core's actions
//!   (`from ansible.plugins.action.debug import ActionModule`) *is* that action: settle runs its
//!   own under the new name ([`ActionPlugin::Alias`]).
//! - Any other runs through ansible-core on the controller, in one long-lived Python worker per
//!   run (`action_worker.py`, started on first use with the Python that has ansible-core), which
//!   executes one task for one host with Ansible's own `TaskExecutor`: the task's arguments
//!   (rendered by settle), its `check_mode`, `diff`, `no_log`, `become` and `environment`, the
//!   host's variables, and the connection settle would use (address, port, user, key, ssh
//!   arguments, host key checking) as Ansible's connection variables, so that Ansible's own
//!   connection plugin reaches the host. Its result is then any task's result to settle: loop,
//!   `when`, `until`, `register`, `changed_when`/`failed_when`, `notify` and the recap stay
//!   settle's, so `register` has Ansible's shapes. Calls are one at a time (one worker).
//!
//! Without ansible-core on the controller, such a task fails with what to install.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};
use settle_playbooks::Task;

use crate::Unpoisoned;
use crate::connection::{Become, HostKeyPolicy, Target};

const WORKER: &str = include_str!("action_worker.py");

/// What an action plugin found for a task is to settle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionPlugin {
    /// Re-exports ansible-core's action of this name: settle's own runs.
    Alias(String),
    /// Python of its own: run by the worker.
    Python(PathBuf),
}

#[derive(Default)]
struct Found {
    /// Roles seen so far: their `action_plugins/` serve every task, as in Ansible.
    roles: Vec<PathBuf>,
    found: HashMap<(String, Option<PathBuf>, PathBuf), Option<ActionPlugin>>,
}

fn found() -> &'static Mutex<Found> {
    static FOUND: OnceLock<Mutex<Found>> = OnceLock::new();
    FOUND.get_or_init(Default::default)
}

/// Remembers a role: its `action_plugins/` are known to every task of the run.
pub(crate) fn remember_role(role_path: &Path) {
    let mut found = found().lock().unpoisoned();
    if !found.roles.iter().any(|r| r == role_path) {
        found.roles.push(role_path.to_path_buf());
    }
}

/// The action plugin a task's action names, if any (looked for once per name, role and
/// playbook folder).
pub(crate) fn find(task: &Task, play_dir: &Path) -> Option<ActionPlugin> {
    let written = task.lookup_name();
    // settle's own names and ansible-core's: no plugin of the user's can be meant.
    if written.starts_with("ansible.builtin.") || written.contains("{{") || written.is_empty() {
        return None;
    }
    let role = task.role.as_ref().map(|r| r.path.clone());
    let key = (written.to_string(), role.clone(), play_dir.to_path_buf());
    if let Some(hit) = found().lock().unpoisoned().found.get(&key) {
        return hit.clone();
    }
    let path = plugin_file(written, role.as_deref(), play_dir);
    let hit = path.map(|path| match alias_of(&path) {
        Some(builtin) => ActionPlugin::Alias(builtin),
        None => ActionPlugin::Python(path),
    });
    // `normal` is what runs a module without a plugin of its own.
    let hit = hit.filter(|h| *h != ActionPlugin::Alias("normal".into()));
    found().lock().unpoisoned().found.insert(key, hit.clone());
    hit
}

/// Whether an action plugin takes free-form text as it is (`supports_raw_params = True` in its
/// class); without it, a template there is rendered into the plugin's arguments.
pub(crate) fn supports_raw_params(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|source| {
        source.lines().any(|line| {
            line.trim()
                .strip_prefix("supports_raw_params")
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .is_some_and(|value| value.trim() == "True")
        })
    })
}

fn plugin_file(written: &str, role: Option<&Path>, play_dir: &Path) -> Option<PathBuf> {
    plugin_of(PluginKind::Action, written, role, play_dir)
}

/// The kinds of Python plugin settle looks for on the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PluginKind {
    Action,
    Connection,
}

impl PluginKind {
    /// `action`, `connection`: the word in `action_plugins/`, `plugins/action/`,
    /// `ANSIBLE_ACTION_PLUGINS`.
    fn word(self) -> &'static str {
        match self {
            PluginKind::Action => "action",
            PluginKind::Connection => "connection",
        }
    }
}

/// The file of the Python plugin `written` of this kind, looked for where Ansible looks: the
/// role's and the playbook's `KIND_plugins/`, `ANSIBLE_KIND_PLUGINS` (else the user's and the
/// system's plugin folders), every role seen so far, and installed collections by FQCN.
pub(crate) fn plugin_of(
    kind: PluginKind,
    written: &str,
    role: Option<&Path>,
    play_dir: &Path,
) -> Option<PathBuf> {
    let short = written.strip_prefix("ansible.legacy.").unwrap_or(written);
    if short.split('.').count() >= 3 {
        return collection_plugin(kind, short, play_dir);
    }
    if short.contains('.') || short.contains('/') || short.is_empty() {
        return None;
    }
    let word = kind.word();
    let folder = format!("{word}_plugins");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(role) = role {
        dirs.push(role.join(&folder));
    }
    dirs.push(play_dir.join(&folder));
    let configured = std::env::var(format!("ANSIBLE_{}_PLUGINS", word.to_uppercase()))
        .unwrap_or_else(|_| format!("~/.ansible/plugins/{word}:/usr/share/ansible/plugins/{word}"));
    dirs.extend(super::path_list(&configured));
    dirs.extend(
        found()
            .lock()
            .unpoisoned()
            .roles
            .iter()
            .map(|r| r.join(&folder)),
    );
    dirs.into_iter()
        .map(|d| d.join(format!("{short}.py")))
        .find(|p| p.is_file())
}

/// `ns.coll.name`: `ansible_collections/ns/coll/plugins/KIND/name.py` in the installed
/// collections (only when ansible-core is there to run it, or to say it is missing).
fn collection_plugin(kind: PluginKind, fqcn: &str, play_dir: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = fqcn.split('.').collect();
    let mut roots = vec![play_dir.join("collections")];
    if let Ok(core) = super::ansible_core() {
        roots = super::collection_roots(play_dir, core);
    }
    roots.into_iter().find_map(|root| {
        let mut path = root
            .join("ansible_collections")
            .join(parts[0])
            .join(parts[1])
            .join("plugins")
            .join(kind.word());
        for sub in &parts[2..parts.len() - 1] {
            path = path.join(sub);
        }
        let path = path.join(format!("{}.py", parts[parts.len() - 1]));
        if path.is_file() {
            return Some(path);
        }
        // A name the collection's meta/runtime.yml routes (a redirect, an `action_plugin`):
        // ansible-core follows the routing when it runs the task.
        let collection = root
            .join("ansible_collections")
            .join(parts[0])
            .join(parts[1]);
        (kind == PluginKind::Action
            && parts.len() == 3
            && settle_playbooks::collection_routes(&collection, parts[2]))
        .then(|| collection.join("meta/runtime.yml"))
    })
}

/// The Python connection plugin (`connection_plugins/NAME.py`, `ANSIBLE_CONNECTION_PLUGINS`, a
/// collection's) a host's `ansible_connection` names, when settle has no transport of that name.
/// A task that reaches such a host runs whole through ansible-core's executor ([`run`]).
pub(crate) fn connection_plugin(
    transport: &str,
    role: Option<&Path>,
    play_dir: &Path,
) -> Option<PathBuf> {
    if crate::connection::is_native(transport) || transport.contains("{{") {
        return None;
    }
    plugin_of(PluginKind::Connection, transport, role, play_dir)
}

/// A task for a host whose connection is a Python plugin, without ansible-core to run it.
pub(crate) fn connection_without_ansible_core(transport: &str, plugin: &Path, why: &str) -> String {
    format!(
        "the connection plugin '{transport}' ({}) is Python that runs inside ansible-playbook \
         on the controller; settle runs tasks on such hosts with ansible-core, but {why}: {}",
        plugin.display(),
        super::HOW_TO_GET
    )
}

/// `from ansible.plugins.action.NAME import ActionModule` and nothing else (but comments,
/// `from __future__`, `assert ActionModule` and a docstring): the builtin action NAME.
fn alias_of(path: &Path) -> Option<String> {
    let source = std::fs::read_to_string(path).ok()?;
    let mut target = None;
    let mut in_docstring = false;
    for line in source.lines().map(str::trim) {
        if in_docstring {
            in_docstring = !(line.ends_with("\"\"\"") || line.ends_with("'''"));
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with("from __future__ ") {
            continue;
        }
        if line.starts_with("\"\"\"") || line.starts_with("'''") {
            in_docstring = line.len() < 6 || !(line.ends_with("\"\"\"") || line.ends_with("'''"));
            continue;
        }
        if line == "assert ActionModule" {
            continue;
        }
        let imported = line
            .strip_prefix("from ansible.plugins.action.")
            .and_then(|rest| rest.split_once(" import "))
            .filter(|(_, what)| {
                matches!(what.trim(), "ActionModule" | "ActionModule as ActionModule")
            })
            .map(|(module, _)| module.trim().to_string())
            .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        match imported {
            Some(module) if target.is_none() => target = Some(module),
            _ => return None,
        }
    }
    target
}

/// A plugin that settle cannot run: no ansible-core on this machine.
pub(crate) fn without_ansible_core(written: &str, plugin: &Path, why: &str) -> String {
    format!(
        "{written:?} is an Ansible action plugin ({}), Python that runs inside ansible-playbook \
         on the controller; settle runs it with ansible-core, but {why}: {}",
        plugin.display(),
        super::HOW_TO_GET
    )
}

/// One task for one host, as the worker runs it.
pub(crate) struct Call<'a> {
    pub task: &'a Task,
    pub play_dir: &'a Path,
    pub host: String,
    pub args: Map<String, Value>,
    /// The task's variables: final values, and templates Ansible renders when a plugin uses them.
    pub vars: Map<String, Value>,
    pub templates: Map<String, Value>,
    pub target: &'a Target,
    pub become_: Option<&'a Become>,
    pub check_mode: bool,
    pub diff: bool,
    pub no_log: bool,
    pub verbosity: u8,
    pub environment: &'a std::collections::BTreeMap<String, String>,
    /// The task's `timeout:` in seconds, enforced by Ansible's executor.
    pub timeout: Option<u64>,
}

/// Runs the call in the worker and gives Ansible's result (`Err`: the worker could not).
pub(crate) fn run(call: Call) -> Result<Map<String, Value>, String> {
    let core = super::ansible_core().map_err(|e| {
        let plugin = match find(call.task, call.play_dir) {
            Some(ActionPlugin::Python(p)) => p,
            _ => PathBuf::from(&call.task.module_as_written),
        };
        without_ansible_core(&call.task.module_as_written, &plugin, e)
    })?;
    let request = request(&call);
    let mut worker = WORKER_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    if worker.is_none() {
        *worker = Some(Worker::start(&core.python, call.verbosity)?);
    }
    let answer = match worker.as_mut().map(|w| w.ask(&request)) {
        Some(Ok(answer)) => answer,
        Some(Err(e)) => {
            // A dead worker is started again for the next task.
            *worker = None;
            return Err(e);
        }
        None => return Err("the action plugin worker did not start".into()),
    };
    match answer {
        Value::Object(mut answer) => match answer.remove("result") {
            Some(Value::Object(result)) => Ok(result),
            _ => Err(format!(
                "ansible-core could not run the action plugin {:?}: {}",
                call.task.module_as_written,
                answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no result")
            )),
        },
        _ => Err("the action plugin worker answered no JSON object".into()),
    }
}

fn request(call: &Call) -> Value {
    let task = call.task;
    let mut vars = call.vars.clone();
    let mut templates = call.templates.clone();
    for (name, value) in connection_vars(call.target) {
        templates.remove(&name);
        vars.insert(name, value);
    }
    // The names settle read its connection from: given above in Ansible's main names.
    for alias in [
        "ansible_ssh_host",
        "ansible_ssh_port",
        "ansible_ssh_user",
        "ansible_private_key_file",
    ] {
        vars.remove(alias);
        templates.remove(alias);
    }
    let mut task_ds = json!({
        "name": task.name,
        "action": task.module_as_written,
        "args": call.args,
        "check_mode": call.check_mode,
        "diff": call.diff,
        "no_log": call.no_log,
    });
    // The plugin is found by the task's `collections` search, as Ansible finds it.
    if let Some(collections) = &task.keywords.collections {
        task_ds["collections"] = json!(collections);
    }
    if let Some(seconds) = call.timeout {
        task_ds["timeout"] = seconds.into();
    }
    if !call.environment.is_empty() {
        task_ds["environment"] = json!([call.environment]);
    }
    if let Some(b) = call.become_ {
        task_ds["become"] = true.into();
        task_ds["become_user"] = b.effective_user().into();
        task_ds["become_method"] = b.method.name().into();
        if let Some(flags) = &b.flags {
            task_ds["become_flags"] = flags.clone().into();
        }
        if let Some(exe) = &b.exe {
            task_ds["become_exe"] = exe.clone().into();
        }
        if let Some(password) = &b.password {
            vars.insert("ansible_become_password".into(), password.clone().into());
        }
    }
    let mut plugin_dirs = vec![call.play_dir.display().to_string()];
    if let Some(role) = &task.role {
        plugin_dirs.push(role.path.display().to_string());
    }
    plugin_dirs.extend(
        found()
            .lock()
            .unpoisoned()
            .roles
            .iter()
            .map(|r| r.display().to_string()),
    );
    // Where the plugin's relative file names are looked for (`_find_needle`): the role, then
    // the folder of the task's file, as Ansible's `Task.get_search_path`.
    let mut search_path: Vec<String> = Vec::new();
    if let Some(role) = &task.role {
        search_path.push(role.path.display().to_string());
    }
    if let Some(dir) = task.location.file.parent() {
        let dir = if dir.as_os_str().is_empty() {
            call.play_dir.display().to_string()
        } else {
            dir.display().to_string()
        };
        if !search_path.contains(&dir) {
            search_path.push(dir);
        }
    }
    json!({
        "play_dir": std::path::absolute(call.play_dir).unwrap_or_else(|_| call.play_dir.to_path_buf()),
        "plugin_dirs": plugin_dirs,
        "search_path": search_path,
        "host": call.host,
        "task": task_ds,
        "vars": vars,
        "templates": templates,
        "check_mode": call.check_mode,
        "diff": call.diff,
        "verbosity": call.verbosity,
    })
}

/// The connection settle would open, in the variables Ansible's connection plugins read.
fn connection_vars(target: &Target) -> Vec<(String, Value)> {
    let connection = match target.transport.as_str() {
        "smart" | "russh" | "ssh" => "ssh",
        other => other,
    };
    let mut vars: Vec<(String, Value)> = vec![
        ("ansible_connection".into(), connection.into()),
        ("ansible_host".into(), target.address.clone().into()),
        ("ansible_timeout".into(), target.timeout_secs.into()),
    ];
    if let Some(port) = target.port {
        vars.push(("ansible_port".into(), port.into()));
    }
    if let Some(user) = &target.user {
        vars.push(("ansible_user".into(), user.clone().into()));
    }
    if let Some(key) = &target.private_key_file {
        vars.push(("ansible_ssh_private_key_file".into(), key.clone().into()));
    }
    if let Some(args) = &target.ssh_common_args {
        vars.push(("ansible_ssh_common_args".into(), args.clone().into()));
    }
    if let Some(args) = &target.ssh_args {
        vars.push(("ansible_ssh_args".into(), args.clone().into()));
    }
    match crate::connection::host_key_policy() {
        HostKeyPolicy::Off => vars.push(("ansible_host_key_checking".into(), false.into())),
        HostKeyPolicy::AcceptNew => vars.push((
            "ansible_ssh_extra_args".into(),
            "-o StrictHostKeyChecking=accept-new".into(),
        )),
        HostKeyPolicy::Strict => {}
    }
    vars
}

static WORKER_PROCESS: Mutex<Option<Worker>> = Mutex::new(None);

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(python: &str, verbosity: u8) -> Result<Worker, String> {
        let mut child = Command::new(python)
            .args(["-c", WORKER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // What Ansible prints beside its results (warnings, -vvv lines) is shown with -v.
            .stderr(if verbosity > 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("cannot start {python} to run Ansible action plugins: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the action plugin worker has no pipes".into());
        };
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn ask(&mut self, request: &Value) -> Result<Value, String> {
        let dead = |e: &dyn std::fmt::Display| {
            format!("the Python running Ansible action plugins stopped ({e})")
        };
        writeln!(self.stdin, "{request}").map_err(|e| dead(&e))?;
        self.stdin.flush().map_err(|e| dead(&e))?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(dead(&status))
            }
            Ok(_) => serde_json::from_str(&line).map_err(|e| dead(&e)),
            Err(e) => Err(dead(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(source: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.py");
        std::fs::write(&path, source).unwrap();
        alias_of(&path)
    }

    #[test]
    fn a_plugin_that_reexports_a_builtin_is_that_builtin() {
        assert_eq!(
            alias(
                "from __future__ import annotations\n\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n"
            )
            .as_deref(),
            Some("debug")
        );
    }

    #[test]
    fn a_plugin_with_code_of_its_own_is_no_alias() {
        assert_eq!(
            alias(
                "from ansible.plugins.action import ActionBase\n\nclass ActionModule(ActionBase):\n    pass\n"
            ),
            None
        );
        assert_eq!(
            alias(
                "from ansible.plugins.action.debug import ActionModule as Base\nclass ActionModule(Base):\n    pass\n"
            ),
            None
        );
    }

    #[test]
    fn ansible_reads_settles_connection() {
        let target = Target {
            transport: "smart".into(),
            address: "10.0.0.5".into(),
            port: Some(2222),
            user: Some("deploy".into()),
            private_key_file: Some("/k/id".into()),
            ssh_common_args: None,
            ssh_args: None,
            timeout_secs: 10,
            password: None,
            ssh_verbosity: 0,
        };
        let vars: Map<String, Value> = connection_vars(&target).into_iter().collect();
        assert_eq!(vars["ansible_connection"], "ssh");
        assert_eq!(vars["ansible_host"], "10.0.0.5");
        assert_eq!(vars["ansible_port"], 2222);
        assert_eq!(vars["ansible_user"], "deploy");
        assert_eq!(vars["ansible_ssh_private_key_file"], "/k/id");
    }
}
