//! Ansible's Python filter, test and lookup plugins, run through ansible-core on the controller.
//!
//! settle's own filters, tests and lookups come first. A name it lacks, used in a template, is
//! asked of one Python worker per run (`python_plugins.py`, started the first time it is
//! needed, with the Python that has ansible-core: [`crate::ansible_modules::ansible_core`]).
//! The worker loads plugins with ansible-core's own loaders: the `filter_plugins/`,
//! `test_plugins/` and `lookup_plugins/` beside the playbook and in the task's role (each
//! folder once seen stays known for the run, as Ansible adds every loaded role's), the paths
//! of ansible.cfg and `ANSIBLE_*_PLUGINS`, and installed collections by FQCN. Filters and tests
//! run as Ansible's templar runs them (so a plugin's errors read as Ansible's); lookups get a
//! `DataLoader` whose base folder is the playbook's and the task's variables.
//!
//! Requests and answers are JSON lines. A filter name the worker knows is added to the template
//! environment (see [`crate::template::Templar`]), so the next use costs no question.
//!
//! The worker is asked only when it may know the name: it already runs, the name is an FQCN,
//! or a plugin folder exists. A typo in a filter name therefore starts no Python.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Kwargs, Rest, ValueOrKwargs};
use minijinja::{State, Value as Mj};
use serde_json::{Map, Value, json};

use crate::template::Scope;

const WORKER: &str = include_str!("python_plugins.py");

/// A filter or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Filter,
    Test,
}

impl Kind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Test => "test",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Kind::Filter => "filter_plugins",
            Kind::Test => "test_plugins",
        }
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Bridge {
    worker: Option<Result<Worker, String>>,
    /// What the worker said of a filter or test name: found, not found, or why it failed.
    known: HashMap<(Kind, String), Result<bool, String>>,
}

fn shared() -> &'static Mutex<Bridge> {
    static BRIDGE: OnceLock<Mutex<Bridge>> = OnceLock::new();
    BRIDGE.get_or_init(Default::default)
}

fn start() -> Result<Worker, String> {
    let core = crate::ansible_modules::ansible_core()
        .map_err(|e| format!("{e}: {}", crate::ansible_modules::HOW_TO_GET))?;
    let mut child = Command::new(&core.python)
        .args(["-c", WORKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", core.python))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(format!("cannot talk to {}", core.python));
    };
    Ok(Worker {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

/// One request to the worker, started if it is not yet.
fn ask(bridge: &mut Bridge, request: &Value) -> Result<Value, String> {
    let worker = match bridge.worker.get_or_insert_with(start) {
        Ok(worker) => worker,
        Err(e) => return Err(e.clone()),
    };
    let mut line = request.to_string();
    line.push('\n');
    let mut answer = String::new();
    let sent = worker
        .stdin
        .write_all(line.as_bytes())
        .and_then(|()| worker.stdin.flush())
        .and_then(|()| worker.stdout.read_line(&mut answer));
    match sent {
        Ok(n) if n > 0 => serde_json::from_str(&answer)
            .map_err(|e| format!("the Python plugin worker answered nonsense ({e}): {answer}")),
        Ok(_) | Err(_) => {
            // Gone: say so once, and let the next request start a new one.
            bridge.worker = None;
            Err("the Python plugin worker of ansible-core stopped".into())
        }
    }
}

fn running(bridge: &Bridge) -> bool {
    matches!(bridge.worker, Some(Ok(_)))
}

/// The folders whose `*_plugins/` the worker adds: the playbook's and the role's.
fn plugin_dirs(var: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    ["playbook_dir", "role_path"]
        .into_iter()
        .filter_map(var)
        .collect()
}

/// Whether a plugin of this folder name (`filter_plugins`) may exist for the worker to find.
fn may_exist(folder: &str, name: &str, dirs: &[String]) -> bool {
    if name.split('.').count() >= 3 {
        return true;
    }
    let env = match folder {
        "filter_plugins" => "ANSIBLE_FILTER_PLUGINS",
        "test_plugins" => "ANSIBLE_TEST_PLUGINS",
        _ => "ANSIBLE_LOOKUP_PLUGINS",
    };
    if std::env::var_os(env).is_some_and(|v| !v.is_empty()) {
        return true;
    }
    let user = folder.trim_end_matches("_plugins");
    let home = crate::connection::expand_home(&format!("~/.ansible/plugins/{user}"));
    dirs.iter()
        .map(|d| Path::new(d).join(folder))
        .chain([Path::new(&home).to_path_buf()])
        .any(|d| d.is_dir())
        || configured(folder)
}

/// Whether ansible.cfg (`$ANSIBLE_CONFIG` or the current folder's) sets `filter_plugins` or
/// the like: the worker reads it as Ansible does.
fn configured(folder: &str) -> bool {
    let path = std::env::var("ANSIBLE_CONFIG").unwrap_or_else(|_| "ansible.cfg".into());
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .any(|l| l.trim_start().starts_with(folder) && l.contains('='))
    })
}

fn scope_text(scope: &Arc<Scope>, name: &str) -> Option<String> {
    use minijinja::value::Object;
    scope
        .get_value(&Mj::from(name))
        .and_then(|v| v.as_str().map(str::to_string))
}

/// Whether a Python plugin provides the filter or test `name` that settle lacks. `Err` is
/// Ansible's error for a plugin that fails to load, or why the worker could not be asked when
/// a plugin folder says it was meant to be.
pub(crate) fn provides(kind: Kind, name: &str, scope: &Arc<Scope>) -> Result<bool, String> {
    let dirs = plugin_dirs(&|v| scope_text(scope, v));
    let mut bridge = shared().lock().unwrap_or_else(|e| e.into_inner());
    let key = (kind, name.to_string());
    if let Some(known) = bridge.known.get(&key) {
        return known.clone();
    }
    if !running(&bridge) && !may_exist(kind.folder(), name, &dirs) {
        return Ok(false);
    }
    let answer = ask(
        &mut bridge,
        &json!({"op": "has", "kind": kind.word(), "name": name, "dirs": dirs}),
    );
    let known = match answer {
        Ok(answer) => match answer.get("error").and_then(Value::as_str) {
            Some(error) => Err(error.to_string()),
            None => Ok(answer["found"].as_bool().unwrap_or(false)),
        },
        Err(e) => Err(format!(
            "No {} named '{name}'. settle runs Ansible's Python {} plugins through ansible-core, \
             but {e}",
            kind.word(),
            kind.word()
        )),
    };
    bridge.known.insert(key, known.clone());
    known
}

/// The filter and test names the worker has said it provides.
pub(crate) fn provided() -> Vec<(Kind, String)> {
    let bridge = shared().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<(Kind, String)> = bridge
        .known
        .iter()
        .filter(|(_, found)| matches!(found, Ok(true)))
        .map(|(key, _)| key.clone())
        .collect();
    names.sort_by(|a, b| a.1.cmp(&b.1));
    names
}

fn to_json(value: &Mj) -> Result<Value, minijinja::Error> {
    serde_json::to_value(value).map_err(|e| crate::template::plain_error(e.to_string()))
}

/// Calls the Python filter or test `name` from a template: `args` are the value first, then
/// the template's arguments.
pub(crate) fn call(
    kind: Kind,
    name: &str,
    state: &State,
    args: Rest<ValueOrKwargs>,
) -> Result<Mj, minijinja::Error> {
    let mut values = Vec::new();
    let mut kwargs = Map::new();
    for arg in args.0 {
        let value = arg.into_value();
        if value.is_kwargs() {
            let kw = Kwargs::try_from(value)?;
            let keys: Vec<String> = kw.args().map(str::to_string).collect();
            for key in keys {
                let v: Mj = kw.get(&key)?;
                // A plugin that is not written for Ansible's markers gets none: the undefined
                // value is the result, as in Ansible.
                if v.is_undefined() {
                    return Ok(v);
                }
                kwargs.insert(key, to_json(&v)?);
            }
        } else {
            if value.is_undefined() {
                return Ok(value);
            }
            values.push(to_json(&value)?);
        }
    }
    let mut values = values.into_iter();
    let value = values.next().unwrap_or(Value::Null);
    let dirs = plugin_dirs(&|v| state.lookup(v).and_then(|v| v.as_str().map(str::to_string)));
    let request = json!({
        "op": kind.word(), "name": name, "value": value,
        "args": values.collect::<Vec<_>>(), "kwargs": kwargs, "dirs": dirs,
    });
    let answer = {
        let mut bridge = shared().lock().unwrap_or_else(|e| e.into_inner());
        ask(&mut bridge, &request).map_err(crate::template::plain_error)?
    };
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(crate::template::plain_error(error.to_string()));
    }
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    Ok(match kind {
        Kind::Test => Mj::from(crate::template::json_bool(&value) || value == json!(true)),
        Kind::Filter => Mj::from(minijinja::value::Serde(&value)),
    })
}

/// What a Python lookup gave.
pub(crate) enum Lookup {
    /// Its list of results.
    Items(Vec<Value>),
    /// An undefined term, and a plugin that takes no markers: the result is undefined.
    Undefined,
    /// No such lookup, or no way to ask for one.
    NotFound,
    /// Ansible's error text.
    Failed(String),
}

/// Runs the Python lookup `name` (settle has none of that name). `undefined` are the indexes
/// of terms that are undefined (sent as `None`); `variables` gives the task's variables.
pub(crate) fn lookup(
    name: &str,
    terms: Vec<Value>,
    undefined: &[usize],
    kwargs: &Map<String, Value>,
    var: &dyn Fn(&str) -> Option<Value>,
    names: &dyn Fn() -> Vec<String>,
) -> Lookup {
    let text = |v: &str| var(v).and_then(|v| v.as_str().map(str::to_string));
    let dirs = plugin_dirs(&text);
    let started = running(&shared().lock().unwrap_or_else(|e| e.into_inner()));
    if !started && !may_exist("lookup_plugins", name, &dirs) {
        return Lookup::NotFound;
    }
    if !started && let Err(e) = crate::ansible_modules::ansible_core() {
        return Lookup::Failed(format!(
            "The lookup plugin '{name}' was not found. settle runs Ansible's Python lookup \
             plugins through ansible-core, but {e}: {}",
            crate::ansible_modules::HOW_TO_GET
        ));
    }
    // Every variable the task sees that can be written as JSON (collected without the lock:
    // rendering a variable may run a filter of the worker's).
    let mut variables = Map::new();
    for name in names() {
        if let Some(value) = var(&name) {
            variables.insert(name, value);
        }
    }
    let basedir = text("playbook_dir");
    let request = json!({
        "op": "lookup", "name": name, "terms": terms, "kwargs": kwargs,
        "variables": variables, "basedir": basedir, "dirs": dirs, "undefined": undefined,
    });
    let mut bridge = shared().lock().unwrap_or_else(|e| e.into_inner());
    match ask(&mut bridge, &request) {
        Err(e) => Lookup::Failed(format!(
            "The lookup plugin '{name}' could not be asked of ansible-core: {e}"
        )),
        Ok(answer) => {
            if let Some(error) = answer.get("error").and_then(Value::as_str) {
                Lookup::Failed(error.to_string())
            } else if answer.get("not_found").is_some() {
                Lookup::NotFound
            } else if answer.get("undefined").is_some() {
                Lookup::Undefined
            } else {
                match answer.get("value") {
                    Some(Value::Array(items)) => Lookup::Items(items.clone()),
                    Some(other) => Lookup::Items(vec![other.clone()]),
                    None => Lookup::Items(Vec::new()),
                }
            }
        }
    }
}
