//! Every other module: Ansible's own code. A task that names a module settle does not implement
//! runs Ansible's module for it, found as Ansible finds modules, packed on the controller and
//! run on the host by `settle_modules::ansible_module` (a [`ModulePayload`] in the request).
//!
//! Where a module is looked for, first hit wins:
//! 1. the `library/` folder beside the playbook, then the `library/` of every role of the run
//!    in the order they were loaded (Ansible adds each loaded role's to one module path, so
//!    a task of one role may run another's), then the folders of `-M`/`ANSIBLE_LIBRARY`;
//! 2. ansible-core's `ansible/modules/` (short names and `ansible.builtin.*`), following the
//!    redirects of its `config/ansible_builtin_runtime.yml` into collections;
//! 3. for `ns.coll.name`: `ansible_collections/ns/coll/plugins/modules/` in the folders of
//!    `ANSIBLE_COLLECTIONS_PATH` (default `~/.ansible/collections:/usr/share/ansible/collections`),
//!    `collections/` beside the playbook, and the controller Python's `sys.path` (where
//!    `pip install ansible` puts its collections).
//!
//! ansible-core itself is found on the controller through a Python that can `import ansible`:
//! `$SETTLE_ANSIBLE_PYTHON`, else the interpreter of `ansible-playbook` (or `ansible`) on
//! `PATH`, else `python3`. Only a module that is not in a `library/` folder, or a Python one
//! that needs `ansible.module_utils`, needs it. Packing (the module and the `module_utils` it
//! imports, as `module_common` finds them, into a zip) is done once per module per run by
//! `pack.py` with that Python.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use serde_json::Value;
use settle_modules::{ModulePayload, ModuleStyle};
use settle_playbooks::Task;

use crate::Unpoisoned;

pub(crate) mod action;
pub(crate) mod action_groups;

const PACKER: &str = include_str!("pack.py");

/// ansible-core on the controller.
#[derive(Debug, Clone)]
pub(crate) struct AnsibleCore {
    pub python: String,
    /// How the Python was chosen, for messages.
    pub chosen_by: String,
    /// The `ansible` package folder.
    pub package: PathBuf,
    pub version: String,
    /// The `_ansible_*` arguments its modules take (`PASS_VARS`).
    pub pass_vars: Vec<String>,
    /// `sys.path` of that Python: where installed collections are.
    sys_path: Vec<PathBuf>,
}

/// A module found for a task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FoundModule {
    pub path: PathBuf,
    /// Its name inside the payload: `ansible.modules.x`, `ansible_collections.ns.coll.plugins.
    /// modules.x`, or `ansible.legacy.x` for a `library/` module.
    pub python_name: String,
    /// The name Ansible gives it in `_ansible_module_name`.
    pub module_name: String,
}

/// A module packed for the host (the interpreter is the host's business, filled per call).
#[derive(Debug)]
pub(crate) struct Packed {
    pub style: ModuleStyle,
    pub data: String,
    pub python_name: String,
    pub shebang: Option<(String, Vec<String>)>,
}

/// A module's packing, done once per run and shared by every host that runs it.
type PackResult = Result<Arc<Packed>, String>;

#[derive(Default)]
struct State {
    /// `-M`: module folders from the command line, before `ANSIBLE_LIBRARY`'s.
    module_paths: Vec<PathBuf>,
    /// The `library/` folders of every role seen so far.
    role_libraries: Vec<PathBuf>,
    found: HashMap<(String, Option<PathBuf>, PathBuf), Result<FoundModule, String>>,
    /// What [`in_library`] found, by the same key.
    in_library: HashMap<(String, Option<PathBuf>, PathBuf), Option<FoundModule>>,
    packed: HashMap<PathBuf, Arc<OnceLock<PackResult>>>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// `-M`/`--module-path`: folders searched before `ANSIBLE_LIBRARY`'s.
pub fn add_module_paths(paths: impl IntoIterator<Item = PathBuf>) {
    state().lock().unpoisoned().module_paths.extend(paths);
}

/// Remembers a role's `library/` folder: its modules are known to every task of the run.
pub(crate) fn remember_role(role_path: &Path) {
    action::remember_role(role_path);
    let library = role_path.join("library");
    let mut state = state().lock().unpoisoned();
    if library.is_dir() && !state.role_libraries.contains(&library) {
        state.role_libraries.push(library);
    }
}

static CORE: OnceLock<Result<AnsibleCore, String>> = OnceLock::new();

/// ansible-core on the controller, looked for once per run.
pub(crate) fn ansible_core() -> Result<&'static AnsibleCore, &'static str> {
    CORE.get_or_init(find_ansible_core)
        .as_ref()
        .map_err(String::as_str)
}

/// The folders of ansible-core's Python path that hold `ansible_collections/` (where `pip
/// install ansible` puts its collections), for the `collections` keyword's search; nothing
/// when there is no ansible-core.
pub fn installed_collection_roots() -> Vec<PathBuf> {
    ansible_core()
        .map(|core| {
            core.sys_path
                .iter()
                .filter(|r| r.join("ansible_collections").is_dir())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Which ansible-core the run used, and why that one, if it needed one.
pub(crate) fn ansible_core_used() -> Option<String> {
    let core = CORE.get()?.as_ref().ok()?;
    Some(format!(
        "ansible-core {} with {} ({})",
        core.version, core.python, core.chosen_by
    ))
}

fn find_ansible_core() -> Result<AnsibleCore, String> {
    let mut candidates: Vec<(String, String)> = Vec::new();
    if let Ok(python) = std::env::var("SETTLE_ANSIBLE_PYTHON")
        && !python.is_empty()
    {
        candidates.push((python, "$SETTLE_ANSIBLE_PYTHON".into()));
    } else {
        for program in ["ansible-playbook", "ansible"] {
            if let Some(path) = on_path(program)
                && let Ok(bytes) = std::fs::read(&path)
                && let Some((interpreter, args)) = settle_modules::ansible_module::shebang(&bytes)
            {
                // `#!/usr/bin/env python3`: the word after env.
                let python = if interpreter.ends_with("/env") {
                    args.into_iter().find(|a| !a.starts_with('-'))
                } else {
                    Some(interpreter)
                };
                if let Some(python) = python.filter(|p| is_python(p)) {
                    candidates.push((python, format!("the interpreter of {}", path.display())));
                }
            }
        }
        candidates.push(("python3".into(), "python3 on PATH".into()));
    }
    let mut tried = Vec::new();
    for (python, chosen_by) in candidates {
        const PROBE: &str = "import json, os, sys\nimport ansible\nfrom ansible.release import __version__\ntry:\n    from ansible.module_utils.common.parameters import PASS_VARS\nexcept Exception:\n    PASS_VARS = {}\nprint(json.dumps({'package': os.path.dirname(ansible.__file__), 'version': __version__, 'sys_path': sys.path, 'pass_vars': sorted(PASS_VARS)}))";
        let output = Command::new(&python)
            .args(["-c", PROBE])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let found: Option<Value> = output
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice(&o.stdout).ok());
        match found {
            Some(found) => {
                let text = |k: &str| found[k].as_str().unwrap_or_default().to_string();
                return Ok(AnsibleCore {
                    python,
                    chosen_by,
                    package: PathBuf::from(text("package")),
                    version: text("version"),
                    pass_vars: found["pass_vars"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|v| format!("_ansible_{v}"))
                        .collect(),
                    sys_path: found["sys_path"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                        .collect(),
                });
            }
            None => tried.push(format!("{python} ({chosen_by})")),
        }
    }
    Err(format!(
        "no Python on this machine can import ansible (tried {})",
        tried.join(", ")
    ))
}

/// The folders a colon-separated path setting names (`ANSIBLE_LIBRARY`), `~` expanded.
pub(super) fn path_list(value: &str) -> Vec<PathBuf> {
    value
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(crate::connection::expand_home(d)))
        .collect()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `python`, `python3`, `python3.12`, a path ending in one of those.
pub(crate) fn is_python(interpreter: &str) -> bool {
    Path::new(interpreter)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("python"))
}

/// How to get ansible-core, for messages.
pub(crate) const HOW_TO_GET: &str = "install ansible-core on the controller (`pip install ansible-core`, \
     or your distribution's ansible-core package), or point SETTLE_ANSIBLE_PYTHON at a Python \
     that has it";

/// Finds the module a task names, as Ansible would; `Err` says why none was found.
pub(crate) fn find(task: &Task, play_dir: &Path) -> Result<FoundModule, String> {
    let role = task.role.as_ref().map(|r| r.path.clone());
    let key = (
        task.lookup_name().to_string(),
        role.clone(),
        play_dir.to_path_buf(),
    );
    if let Some(found) = state().lock().unpoisoned().found.get(&key) {
        return found.clone();
    }
    if let Some(role) = &role {
        remember_role(role);
    }
    let found = find_uncached(task.lookup_name(), role.as_deref(), play_dir);
    state().lock().unpoisoned().found.insert(key, found.clone());
    found
}

/// The module a task's name finds in a `library/` folder or a folder of `-M`/`ANSIBLE_LIBRARY`,
/// which Ansible's module path holds before its own modules: a module of the playbook's named
/// like one settle runs natively (`library/ping.py`) replaces it, as it replaces Ansible's.
/// `ansible.builtin.X` and collections' names are never the playbook's.
pub(crate) fn in_library(task: &Task, play_dir: &Path) -> Option<FoundModule> {
    let written = task.lookup_name();
    let short = written.strip_prefix("ansible.legacy.").unwrap_or(written);
    if short.contains('.') || short.contains("{{") || short.is_empty() {
        return None;
    }
    let role = task.role.as_ref().map(|r| r.path.clone());
    let key = (short.to_string(), role.clone(), play_dir.to_path_buf());
    if let Some(hit) = state().lock().unpoisoned().in_library.get(&key) {
        return hit.clone();
    }
    let hit = library_module(short, role.as_deref(), play_dir);
    state()
        .lock()
        .unpoisoned()
        .in_library
        .insert(key, hit.clone());
    hit
}

/// A module named `short` in the library folders, in the order of Ansible's module path: the
/// playbook's, every role's in the order the roles were loaded (the task's own role is not
/// preferred: in Ansible the first role that has the module wins), then `-M`'s and
/// `ANSIBLE_LIBRARY`'s.
fn library_module(short: &str, role: Option<&Path>, play_dir: &Path) -> Option<FoundModule> {
    if let Some(role) = role {
        remember_role(role);
    }
    let mut dirs: Vec<PathBuf> = vec![play_dir.join("library")];
    {
        let state = state().lock().unpoisoned();
        dirs.extend(state.role_libraries.iter().cloned());
        dirs.extend(state.module_paths.iter().cloned());
    }
    dirs.extend(path_list(
        &std::env::var("ANSIBLE_LIBRARY").unwrap_or_default(),
    ));
    let path = dirs.iter().find_map(|dir| module_file(dir, short))?;
    Some(FoundModule {
        path: std::fs::canonicalize(&path).unwrap_or(path),
        python_name: format!("ansible.legacy.{short}"),
        module_name: short.to_string(),
    })
}

fn find_uncached(
    written: &str,
    role: Option<&Path>,
    play_dir: &Path,
) -> Result<FoundModule, String> {
    if written.contains("{{") {
        return Err(format!(
            "the module name {written:?} is a template: settle reads a task's module as written"
        ));
    }
    let builtin = written.strip_prefix("ansible.builtin.");
    let short = builtin
        .or_else(|| written.strip_prefix("ansible.legacy."))
        .unwrap_or(written);
    let is_fqcn = builtin.is_none() && short.split('.').count() >= 3;
    if !is_fqcn
        && builtin.is_none()
        && let Some(found) = library_module(short, role, play_dir)
    {
        return Ok(found);
    }
    let unknown = |why: &str| {
        let hint = super::actions::did_you_mean(short, super::actions::known_modules());
        format!("the module {written:?} is not known to settle{hint}; {why}")
    };
    let plugin = action_plugin(short, role, play_dir);
    let core = match ansible_core() {
        Ok(core) => core,
        Err(e) => {
            if let Some(plugin) = plugin {
                return Err(action_plugin_error(written, &plugin));
            }
            return Err(unknown(&format!(
                "settle runs Ansible's own module for one it lacks, but {e}: {HOW_TO_GET}"
            )));
        }
    };
    if is_fqcn {
        return find_in_collections(written, play_dir, core).map_err(|why| match plugin {
            Some(plugin) => action_plugin_error(written, &plugin),
            None => unknown(&why),
        });
    }
    if let Some(path) = module_file(&core.package.join("modules"), short)
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
    {
        // Some of ansible-core's modules are only documentation for an action plugin that
        // does the work on the controller (uri's plugin only sends files: its module works).
        let plugin = core.package.join(format!("plugins/action/{short}.py"));
        if plugin.is_file() && short != "uri" {
            return Err(action_plugin_error(written, &plugin));
        }
        return Ok(FoundModule {
            path,
            python_name: format!("ansible.modules.{short}"),
            module_name: format!("ansible.builtin.{short}"),
        });
    }
    // ansible-core's own redirects: old short names that now live in collections.
    if let Some(target) = builtin_redirect(core, short) {
        return find_in_collections(&target, play_dir, core).map_err(|why| unknown(&why));
    }
    if let Some(plugin) = plugin {
        return Err(action_plugin_error(written, &plugin));
    }
    Err(unknown(&format!(
        "neither is it in a library/ folder nor in ansible-core {} ({})",
        core.version,
        core.package.display()
    )))
}

/// A module's file in a folder: `name.py`, `name`, or `name.<ext>` (a script).
fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let py = dir.join(format!("{name}.py"));
    if py.is_file() {
        return Some(py);
    }
    let bare = dir.join(name);
    if bare.is_file() {
        return Some(bare);
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut scripts: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_stem().and_then(|s| s.to_str()) == Some(name)
                && p.is_file()
                && !p.extension().is_some_and(|e| {
                    matches!(
                        e.to_str(),
                        Some("yml" | "yaml" | "json" | "md" | "rst" | "txt" | "pyc" | "ps1" | "cs")
                    )
                })
        })
        .collect();
    scripts.sort();
    scripts.into_iter().next()
}

/// `action_plugins/NAME.py` beside the playbook or in the role: Ansible code for the
/// controller, which settle cannot run.
fn action_plugin(name: &str, role: Option<&Path>, play_dir: &Path) -> Option<PathBuf> {
    role.map(|r| r.join("action_plugins"))
        .into_iter()
        .chain([play_dir.join("action_plugins")])
        .map(|d| d.join(format!("{name}.py")))
        .find(|p| p.is_file())
}

fn action_plugin_error(written: &str, plugin: &Path) -> String {
    format!(
        "{written:?} is an Ansible action plugin ({}), Python that runs inside ansible-playbook \
         on the controller: settle runs modules of Ansible's on hosts, not its controller plugins",
        plugin.display()
    )
}

/// The folders that hold `ansible_collections/`, in Ansible's order.
pub(super) fn collection_roots(play_dir: &Path, core: &AnsibleCore) -> Vec<PathBuf> {
    let mut roots = vec![play_dir.join("collections")];
    let configured = std::env::var("ANSIBLE_COLLECTIONS_PATH")
        .or_else(|_| std::env::var("ANSIBLE_COLLECTIONS_PATHS"))
        .unwrap_or_else(|_| "~/.ansible/collections:/usr/share/ansible/collections".into());
    roots.extend(path_list(&configured));
    roots.extend(core.sys_path.iter().cloned());
    // A path may name the `ansible_collections` folder itself.
    roots
        .into_iter()
        .map(|r| match r.file_name().and_then(|n| n.to_str()) {
            Some("ansible_collections") => r.parent().map(Path::to_path_buf).unwrap_or(r),
            _ => r,
        })
        .filter(|r| r.join("ansible_collections").is_dir())
        .collect()
}

fn find_in_collections(
    fqcn: &str,
    play_dir: &Path,
    core: &AnsibleCore,
) -> Result<FoundModule, String> {
    let parts: Vec<&str> = fqcn.split('.').collect();
    let (namespace, collection, rest) = (parts[0], parts[1], &parts[2..]);
    let roots = collection_roots(play_dir, core);
    let mut have_collection = false;
    for root in &roots {
        let base = root
            .join("ansible_collections")
            .join(namespace)
            .join(collection);
        if !base.is_dir() {
            continue;
        }
        have_collection = true;
        let mut dir = base.join("plugins/modules");
        for sub in &rest[..rest.len() - 1] {
            dir = dir.join(sub);
        }
        if let Some(path) = module_file(&dir, rest[rest.len() - 1])
            .filter(|p| p.extension().is_some_and(|e| e == "py"))
        {
            return Ok(FoundModule {
                path,
                python_name: format!(
                    "ansible_collections.{namespace}.{collection}.plugins.modules.{}",
                    rest.join(".")
                ),
                module_name: fqcn.to_string(),
            });
        }
    }
    let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    if have_collection {
        Err(format!(
            "the collection {namespace}.{collection} has no module {:?}",
            rest.join(".")
        ))
    } else {
        Err(format!(
            "the collection {namespace}.{collection} is not installed (searched {}): \
             `ansible-galaxy collection install {namespace}.{collection}` installs it",
            if searched.is_empty() {
                "ANSIBLE_COLLECTIONS_PATH and ansible-core's site-packages".into()
            } else {
                searched.join(", ")
            }
        ))
    }
}

/// `plugin_routing.modules.NAME.redirect` of ansible-core's runtime file.
fn builtin_redirect(core: &AnsibleCore, name: &str) -> Option<String> {
    static ROUTING: OnceLock<Option<settle_yaml::Node>> = OnceLock::new();
    let routing = ROUTING.get_or_init(|| {
        settle_yaml::load_file(&core.package.join("config/ansible_builtin_runtime.yml")).ok()
    });
    let target = routing
        .as_ref()?
        .get("plugin_routing")?
        .get("modules")?
        .get(name)?
        .get("redirect")?
        .as_str()?
        .to_string();
    (target.split('.').count() >= 3 && !target.starts_with("ansible.builtin.")).then_some(target)
}

/// The payload of a found module, packed once per run.
pub(crate) fn pack(found: &FoundModule, play_dir: &Path) -> Result<Arc<Packed>, String> {
    // Once per module per run, as Ansible's ansiballz cache: the hosts that reach the task
    // together wait for the first one's packing instead of each running the packer (seconds
    // of Python each; bench/fallback).
    let once = state()
        .lock()
        .unpoisoned()
        .packed
        .entry(found.path.clone())
        .or_default()
        .clone();
    once.get_or_init(|| pack_uncached(found, play_dir).map(Arc::new))
        .clone()
}

fn pack_uncached(found: &FoundModule, play_dir: &Path) -> Result<Packed, String> {
    let source = std::fs::read(&found.path)
        .map_err(|e| format!("cannot read the module {}: {e}", found.path.display()))?;
    let style = ModuleStyle::of(&source);
    let shebang = settle_modules::ansible_module::shebang(&source);
    let data = if style == ModuleStyle::Python {
        zip(found, play_dir)?
    } else {
        source
    };
    Ok(Packed {
        style,
        data: base64::engine::general_purpose::STANDARD.encode(data),
        python_name: found.python_name.clone(),
        shebang,
    })
}

/// The module and its `module_utils` as a zip, made by `pack.py` with ansible-core's Python.
fn zip(found: &FoundModule, play_dir: &Path) -> Result<Vec<u8>, String> {
    let core = ansible_core().map_err(|e| {
        format!(
            "{} is a Python module that needs ansible-core's module_utils, but {e}: {HOW_TO_GET}",
            found.path.display()
        )
    })?;
    let dir = tempfile::Builder::new()
        .prefix("settle-ansiballz-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary folder to pack the module: {e}"))?;
    let zip_path = dir.path().join("payload.zip");
    // module_utils/ beside the playbook, in the roles and on ANSIBLE_MODULE_UTILS stand for
    // ansible.module_utils, before ansible-core's own.
    let mut utils_dirs = vec![play_dir.join("module_utils")];
    if let Some(parent) = found.path.parent().and_then(Path::parent) {
        utils_dirs.push(parent.join("module_utils"));
    }
    utils_dirs.extend(path_list(
        &std::env::var("ANSIBLE_MODULE_UTILS").unwrap_or_default(),
    ));
    let utils_dirs: Vec<String> = utils_dirs
        .into_iter()
        .filter(|d| d.is_dir() && !d.starts_with(&core.package))
        .map(|d| d.display().to_string())
        .collect();
    let roots: Vec<String> = collection_roots(play_dir, core)
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    let request = serde_json::json!({
        "module_path": found.path,
        "python_name": found.python_name,
        "module_utils_dirs": utils_dirs,
        "collection_roots": roots,
        "zip_path": zip_path,
    });
    let script = dir.path().join("pack.py");
    std::fs::write(&script, PACKER).map_err(|e| format!("cannot write the packer: {e}"))?;
    let mut child = Command::new(&core.python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", core.python))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(request.to_string().as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("packing {} failed: {e}", found.path.display()))?;
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(error.to_string());
    }
    if !output.status.success() || answer.is_null() {
        return Err(format!(
            "packing {} with {} failed: {}",
            found.path.display(),
            core.python,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::read(&zip_path).map_err(|e| format!("cannot read the packed module: {e}"))
}

/// The payload of one call: the packed module with the interpreter the host runs it with.
/// `python` is `ansible_python_interpreter` (`None` or `auto*`: the host finds its own);
/// `interpreter_var` gives `ansible_<name>_interpreter` for a script in another language.
pub(crate) fn payload(
    packed: &Packed,
    name: &str,
    python: Option<String>,
    interpreter_var: impl Fn(&str) -> Option<String>,
) -> ModulePayload {
    let python = python.filter(|p| !p.is_empty() && !p.starts_with("auto"));
    let (interpreter, interpreter_args) = match (&packed.style, &packed.shebang) {
        (ModuleStyle::Python, shebang) => (
            python,
            shebang
                .as_ref()
                .filter(|(i, _)| is_python(i))
                .map(|(_, a)| a.clone())
                .unwrap_or_default(),
        ),
        (_, Some((interpreter, args))) if is_python(interpreter) => (python, args.clone()),
        (_, Some((interpreter, args))) => {
            let base = Path::new(interpreter)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            (
                Some(interpreter_var(base).unwrap_or_else(|| interpreter.clone())),
                args.clone(),
            )
        }
        (_, None) => (None, Vec::new()),
    };
    ModulePayload {
        name: name.to_string(),
        style: packed.style,
        data: packed.data.clone(),
        python_name: packed.python_name.clone(),
        interpreter,
        interpreter_args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_module_is_found_before_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("library")).unwrap();
        std::fs::write(dir.path().join("library/hello.py"), "print('{}')\n").unwrap();
        let found = find_uncached("hello", None, dir.path()).unwrap();
        assert_eq!(found.python_name, "ansible.legacy.hello");
        assert!(found.path.ends_with("library/hello.py"));
    }

    #[test]
    fn a_script_module_keeps_its_own_interpreter() {
        let packed = Packed {
            style: ModuleStyle::WantJson,
            data: String::new(),
            python_name: "ansible.legacy.x".into(),
            shebang: Some(("/bin/bash".into(), vec![])),
        };
        let payload = payload(&packed, "x", Some("/opt/py".into()), |_| None);
        assert_eq!(payload.interpreter.as_deref(), Some("/bin/bash"));
        let payload = payload_with_var(&packed);
        assert_eq!(payload.interpreter.as_deref(), Some("/usr/local/bin/bash"));
    }

    fn payload_with_var(packed: &Packed) -> ModulePayload {
        payload(packed, "x", None, |name| {
            (name == "bash").then(|| "/usr/local/bin/bash".to_string())
        })
    }

    #[test]
    fn a_python_module_runs_with_the_hosts_python() {
        let packed = Packed {
            style: ModuleStyle::Python,
            data: String::new(),
            python_name: "ansible.modules.ping".into(),
            shebang: Some(("/usr/bin/python".into(), vec![])),
        };
        assert_eq!(
            payload(&packed, "ping", Some("/opt/py3".into()), |_| None)
                .interpreter
                .as_deref(),
            Some("/opt/py3")
        );
        assert_eq!(
            payload(&packed, "ping", Some("auto_silent".into()), |_| None).interpreter,
            None
        );
    }
}
