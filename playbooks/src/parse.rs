//! From YAML nodes to plays and tasks, checking every key on the way.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError};

use indexmap::IndexMap;
use serde_json::Value;
use settle_yaml::{Kind, Node};

use crate::{
    Block, Include, Keywords, Location, Loop, LoopControl, Play, Playbook, PlaybookError, Role,
    RoleInclude, Strategy, Task, TaskNode, Vars, default_public, kv::parse_kv, short_module_name,
};

/// Every keyword a task may carry besides its module.
pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "loop_control",
    "register",
    "notify",
    "listen",
    "tags",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "become",
    "become_user",
    "become_method",
    "become_exe",
    "become_flags",
    "no_log",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "vars",
    "environment",
    "check_mode",
    "diff",
    "any_errors_fatal",
    "until",
    "retries",
    "delay",
    "remote_user",
    "connection",
    "timeout",
    "args",
    "action",
    "local_action",
    "async",
    "poll",
    "module_defaults",
    "throttle",
];

/// Keywords Ansible knows that settle does not do (yet): an error rather than a silent no-op.
const UNSUPPORTED_KEYWORDS: &[&str] = &["debugger", "port", "vars_prompt"];

const BLOCK_KEYWORDS: &[&str] = &[
    "name",
    "block",
    "rescue",
    "always",
    "when",
    "tags",
    "become",
    "become_user",
    "become_method",
    "become_exe",
    "become_flags",
    "vars",
    "ignore_errors",
    "ignore_unreachable",
    "environment",
    "no_log",
    "check_mode",
    "diff",
    "any_errors_fatal",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "remote_user",
    "connection",
    "timeout",
    "module_defaults",
    "notify",
    "throttle",
    "collections",
];

const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "become",
    "become_user",
    "become_method",
    "become_exe",
    "become_flags",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "roles",
    "serial",
    "tags",
    "any_errors_fatal",
    "max_fail_percentage",
    "strategy",
    "order",
    "connection",
    "remote_user",
    "user",
    "vars_prompt",
    "environment",
    "ignore_errors",
    "ignore_unreachable",
    "no_log",
    "check_mode",
    "diff",
    "force_handlers",
    "collections",
    "run_once",
    "timeout",
    "throttle",
    "module_defaults",
];

/// Modules whose string form is a command line (or a single word), not `key=value` pairs.
const FREE_FORM_MODULES: &[&str] = &[
    "command",
    "shell",
    "raw",
    "script",
    "meta",
    "include_tasks",
    "import_tasks",
    "include_vars",
    "group_by",
];

/// Modules whose free-form text is a command: of its `key=value` words only the keys the module
/// knows are arguments (Ansible's `FREEFORM_ACTIONS`); other modules take every `key=value`.
const COMMAND_MODULES: &[&str] = &["command", "shell", "raw", "script"];

/// Where parsing is: which file, which folder relative names start from, which role.
#[derive(Clone)]
struct Scope {
    file: Arc<Path>,
    dir: PathBuf,
    play_dir: PathBuf,
    role: Option<Arc<Role>>,
    /// Handlers of roles that tasks import (`import_role`, `include_role`): the play's too.
    role_handlers: Arc<std::sync::Mutex<RoleHandlers>>,
    /// The play's `vars:`, which static imports may name in their file names.
    play_vars: Arc<Vars>,
    /// Whether these are handlers, and at which level.
    handlers: Handlers,
}

/// Where in a list of handlers parsing is, as Ansible's `use_handlers` reads them: a block is
/// taken at the top of the list (or of a file it imports or includes) and its tasks are the
/// handlers; a block within that, or a role, is not a handler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handlers {
    No,
    Blocks,
    Tasks,
}

impl Handlers {
    /// The level of a file that a task at this level imports or includes.
    fn in_file(self) -> Handlers {
        match self {
            Handlers::No => Handlers::No,
            _ => Handlers::Blocks,
        }
    }
}

/// Renders a template with variables: what the engine lends this crate (which has no template
/// engine) for the names static imports give as templates.
pub type StaticRenderer = dyn Fn(&str, &Vars) -> Result<String, String> + Send + Sync;

static STATIC_RENDERER: std::sync::OnceLock<Box<StaticRenderer>> = std::sync::OnceLock::new();

/// Sets how static imports (`import_playbook`, `import_tasks`, `import_role`'s `*_from`)
/// render a file name given as a template, as Ansible does while it reads the playbook: with
/// the variables known then (the import's and the task's `vars`, the play's `vars`, and what
/// the renderer adds itself: the extra vars). Without one, only `playbook_dir` and `role_path`
/// are known.
pub fn set_static_renderer(renderer: Box<StaticRenderer>) {
    let _ = STATIC_RENDERER.set(renderer);
}

/// A static import's file name, rendered with `vars` when it is a template.
fn render_static(text: &str, vars: &Vars) -> Result<String, String> {
    match STATIC_RENDERER.get() {
        Some(render) if text.contains("{{") || text.contains("{%") => render(text, vars),
        _ => Ok(text.to_string()),
    }
}

/// The handlers of roles that tasks bring in, kept apart by where Ansible puts them: an
/// imported role's before the play's own `handlers:` (with the `roles:` ones), an included
/// role's apart (Ansible adds them when the include runs).
#[derive(Default)]
struct RoleHandlers {
    imported: Vec<Task>,
    included: Vec<Task>,
}

impl Scope {
    fn location(&self, node: &Node) -> Location {
        Location::new(&self.file, node)
    }

    fn error(&self, node: &Node, task: Option<&str>, message: impl Into<String>) -> PlaybookError {
        PlaybookError::Invalid {
            location: self.location(node),
            task: task.map(str::to_string),
            message: message.into(),
        }
    }

    /// Where `import_tasks: file` finds its file: beside the importing file, else (in a role)
    /// the role's `tasks/` and the role's own folder, else the playbook's folder, as Ansible's
    /// search goes. A file found nowhere is named beside the importing file.
    fn import_path(&self, file: &str) -> PathBuf {
        let here = self.dir.join(file);
        let role = self.role.as_ref().map(|r| &r.path);
        let elsewhere = role
            .into_iter()
            .flat_map(|r| [r.join("tasks").join(file), r.join(file)])
            .chain([self.play_dir.join(file)]);
        std::iter::once(here.clone())
            .chain(elsewhere)
            .find(|p| p.exists())
            .unwrap_or(here)
    }

    /// A role or task file that is not there.
    fn missing(
        &self,
        node: &Node,
        task: Option<&str>,
        message: impl Into<String>,
    ) -> PlaybookError {
        PlaybookError::Missing {
            location: self.location(node),
            task: task.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Reads a playbook and everything it imports.
pub fn load_playbook(path: &Path) -> Result<Playbook, PlaybookError> {
    DEFAULT_COLLECTION.with(|d| *d.borrow_mut() = playbook_collection(path));
    let mut seen = Vec::new();
    let plays = load_plays(path, None, &mut seen, &Vars::new())?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

/// A playbook given as text (the play an ad-hoc command makes), named `path` in messages;
/// relative names in it start from `path`'s folder.
pub fn playbook_from_text(text: &str, path: &Path) -> Result<Playbook, PlaybookError> {
    let doc = settle_yaml::parse_str(text, path.display().to_string())?;
    let plays = load_plays(path, Some(doc), &mut Vec::new(), &Vars::new())?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

/// The plays of a playbook file; `import_vars` are the `vars` of the `import_playbook` that
/// reads it (and of the ones above), which its plays see while they are read.
fn load_plays(
    path: &Path,
    text: Option<settle_yaml::Node>,
    stack: &mut Vec<PathBuf>,
    import_vars: &Vars,
) -> Result<Vec<Play>, PlaybookError> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let doc = match text {
        Some(doc) => doc,
        None => settle_yaml::load_file(path)?,
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let scope = Scope {
        file: Arc::from(path),
        dir: dir.clone(),
        play_dir: dir.clone(),
        role: None,
        role_handlers: Arc::default(),
        play_vars: Arc::new(import_vars.clone()),
        handlers: Handlers::No,
    };
    if stack.contains(&canonical) {
        return Err(scope.error(&doc, None, "this playbook imports itself"));
    }
    stack.push(canonical);
    let Some(items) = doc.as_seq() else {
        let found = if doc.is_null() {
            "an empty file"
        } else {
            doc.type_name()
        };
        return Err(scope.error(
            &doc,
            None,
            format!("a playbook must be a list of plays, found {found}"),
        ));
    };
    if items.is_empty() {
        return Err(scope.error(
            &doc,
            None,
            format!(
                "A playbook must contain at least one play: {}",
                path.display()
            ),
        ));
    }
    let mut plays = Vec::new();
    for item in items {
        let Some(map) = item.as_map() else {
            return Err(scope.error(
                item,
                None,
                format!("a play must be a mapping, found {}", item.type_name()),
            ));
        };
        let import_key = [
            "import_playbook",
            "ansible.builtin.import_playbook",
            "ansible.legacy.import_playbook",
        ]
        .into_iter()
        .find(|k| map.contains_key(*k));
        if let Some(target) = import_key.and_then(|k| map.get(k)) {
            if let Some(key) = map.keys().find(|k| {
                Some(k.as_str()) != import_key
                    && !matches!(k.as_str(), "name" | "vars" | "when" | "tags")
            }) {
                return Err(scope.error(
                    item,
                    None,
                    format!("import_playbook does not take {key:?} in settle"),
                ));
            }
            let Some(file) = target.as_str() else {
                return Err(scope.error(target, None, "import_playbook takes a file name"));
            };
            let vars = map
                .get("vars")
                .map(Node::to_value)
                .and_then(|v| v.as_object().cloned());
            let file = render_static(file, &vars.clone().unwrap_or_default()).map_err(|e| {
                scope.error(
                    target,
                    None,
                    format!("Error when evaluating variable in import path {file:?}: {e}"),
                )
            })?;
            let mut inner_vars = import_vars.clone();
            inner_vars.extend(vars.clone().unwrap_or_default());
            let mut imported = load_plays(&dir.join(file), None, stack, &inner_vars)?;
            // The import's vars win over the plays' own; its `when` and `tags` reach every
            // task of them (and its `when` their fact gathering), as in Ansible.
            let when = map.get("when").map(list_of_values).unwrap_or_default();
            let tags = map
                .get("tags")
                .map(|n| list_of_strings(n, true))
                .unwrap_or_default();
            for play in &mut imported {
                if let Some(vars) = &vars {
                    play.vars
                        .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                play.gather_when.splice(0..0, when.iter().cloned());
                for section in [&mut play.pre_tasks, &mut play.tasks, &mut play.post_tasks] {
                    add_to_tasks(section, &when, &tags);
                }
            }
            plays.extend(imported);
        } else {
            plays.push(parse_play(item, map, &scope)?);
        }
    }
    stack.pop();
    Ok(plays)
}

/// Puts conditions before every task's own (and tags beside its own), through blocks.
fn add_to_tasks(nodes: &mut [TaskNode], when: &[Value], tags: &[String]) {
    let add = |keywords: &mut Keywords| {
        keywords.when.splice(0..0, when.iter().cloned());
        keywords.tags.extend(
            tags.iter()
                .filter(|t| !keywords.tags.contains(t))
                .cloned()
                .collect::<Vec<_>>(),
        );
    };
    for node in nodes {
        match node {
            TaskNode::Task(task) => add(&mut Arc::make_mut(task).keywords),
            TaskNode::Include(include) => add(&mut Arc::make_mut(include).keywords),
            TaskNode::Block(block) => {
                for part in [&mut block.block, &mut block.rescue, &mut block.always] {
                    add_to_tasks(part, when, tags);
                }
            }
        }
    }
}

fn check_keys(
    map: &IndexMap<String, Node>,
    allowed: &[&str],
    what: &str,
    scope: &Scope,
    name: Option<&str>,
) -> Result<(), PlaybookError> {
    for (key, value) in map {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let message = if UNSUPPORTED_KEYWORDS.contains(&key.as_str()) {
            format!("{key:?} is an Ansible {what} keyword that settle does not support")
        } else {
            // Ansible's words: "'include_tasks' is not a valid attribute for a Play".
            let mut kind = what.to_string();
            if let Some(first) = kind.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            format!(
                "'{key}' is not a valid attribute for a {kind}{}",
                did_you_mean(key, allowed.iter().copied())
            )
        };
        return Err(scope.error(value, name, message));
    }
    Ok(())
}

/// `; did you mean "when"?` when a close match exists.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

fn parse_play(
    node: &Node,
    map: &IndexMap<String, Node>,
    file_scope: &Scope,
) -> Result<Play, PlaybookError> {
    let play_name = map.get("name").and_then(Node::as_str).map(str::to_string);
    check_keys(map, PLAY_KEYWORDS, "play", file_scope, None)?;
    let hosts = match map.get("hosts").map(|n| (&n.kind, n)) {
        Some((Kind::Str(s), _)) => s.clone(),
        Some((Kind::Seq(items), _)) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        Some((_, n)) => return Err(file_scope.error(n, None, "hosts must be a host pattern")),
        None => {
            return Err(file_scope.error(
                node,
                None,
                "a play needs `hosts:` (a host pattern such as `all`)",
            ));
        }
    };
    if hosts.trim().is_empty() {
        return Err(file_scope.error(
            map.get("hosts").unwrap_or(node),
            None,
            "Hosts list cannot be empty. Please check your playbook",
        ));
    }
    // `vars_prompt: []` (or null) asks nothing; an entry needs a name before anything else.
    if let Some(prompts) = map.get("vars_prompt") {
        for entry in prompts.as_seq().into_iter().flatten() {
            if entry.get("name").is_none() {
                return Err(file_scope.error(
                    entry,
                    None,
                    "Invalid vars_prompt data structure, missing 'name' key",
                ));
            }
        }
        if !prompts.is_null() && prompts.as_seq().is_none_or(|p| !p.is_empty()) {
            return Err(file_scope.error(
                prompts,
                None,
                "\"vars_prompt\" is an Ansible play keyword that settle does not support",
            ));
        }
    }
    // Each play gathers the handlers of the roles its tasks import.
    let scope = Scope {
        role_handlers: Arc::default(),
        ..file_scope.clone()
    };
    // `user` is the play's old name for `remote_user`.
    if let (Some(_), Some(user)) = (map.get("remote_user"), map.get("user")) {
        return Err(scope.error(
            user,
            None,
            "both 'user' and 'remote_user' are set for this play. The use of 'user' is \
             deprecated, and should be removed",
        ));
    }
    let mut keywords = Keywords::default();
    parse_shared_keywords(map, &mut keywords, &scope, play_name.as_deref())?;
    if let Some(user) = map.get("user") {
        keywords.remote_user = Some(Box::new(user.to_value()));
    }
    let vars = mapping(map.get("vars"), &scope, "vars")?;
    let mut known = vars.clone();
    known.extend(scope.play_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let scope = Scope {
        play_vars: Arc::new(known),
        ..scope
    };
    let vars_files = match map.get("vars_files").map(Node::to_value) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    };
    // Without one, the configured default (`ANSIBLE_STRATEGY`, ansible.cfg's `strategy`).
    let strategy = match map.get("strategy").and_then(Node::as_str) {
        Some(written) => written.to_string(),
        None => std::env::var("ANSIBLE_STRATEGY").unwrap_or_else(|_| "linear".into()),
    };
    if !strategy.contains("{{") && Strategy::named(&strategy).is_none() {
        return Err(scope.error(
            map.get("strategy").unwrap_or(node),
            None,
            format!("Invalid play strategy specified: {strategy}"),
        ));
    }
    let order = map.get("order").map(scalar_text);
    let mut loader = RoleLoader::default();
    let mut tasks = Vec::new();
    let mut handlers = Vec::new();
    if let Some(roles) = map.get("roles").filter(|n| !n.is_null()) {
        let Some(entries) = roles.as_seq() else {
            return Err(scope.error(
                roles,
                None,
                format!(
                    "A malformed role declaration was encountered: ds ({}) should be a list \
                     but was a <class '{}'>",
                    scalar_text(roles),
                    settle_yaml::python_type(&roles.to_value())
                ),
            ));
        };
        for entry in entries {
            loader.use_role(entry, &scope, &keywords, &mut tasks, &mut handlers)?;
        }
    }
    let section = |key: &str| -> Result<Vec<TaskNode>, PlaybookError> {
        match map.get(key) {
            None => Ok(Vec::new()),
            Some(n) if n.is_null() => Ok(Vec::new()),
            Some(n) if n.as_seq().is_none() => Err(scope.error(
                n,
                None,
                format!(
                    "A malformed block was encountered while loading {key}: {} should be a \
                     list or None but is <class '{}'>",
                    scalar_text(n),
                    settle_yaml::python_type(&n.to_value())
                ),
            )),
            Some(n) => parse_task_list(n, &scope, &keywords),
        }
    };
    let pre_tasks = section("pre_tasks")?;
    tasks.extend(section("tasks")?);
    let post_tasks = section("post_tasks")?;
    let mut role_handlers = std::mem::take(
        &mut *scope
            .role_handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    handlers.append(&mut role_handlers.imported);
    if let Some(list) = map.get("handlers").filter(|n| !n.is_null()) {
        handlers.extend(parse_handlers(list, &scope, &keywords)?);
    }

    Ok(Play {
        roles: loader.loaded,
        name: play_name.unwrap_or_else(|| hosts.clone()),
        hosts,
        location: scope.location(node),
        dir: scope.dir.clone(),
        vars,
        vars_files,
        gather_facts: map
            .get("gather_facts")
            .map(|n| n.to_value())
            .filter(|v| !v.is_null())
            .map(|v| truthy(&v)),
        fact_options: ["gather_subset", "gather_timeout", "fact_path"]
            .into_iter()
            .filter_map(|k| Some((k.to_string(), map.get(k)?.to_value())))
            .filter(|(_, v)| !v.is_null())
            .collect(),
        pre_tasks,
        tasks,
        post_tasks,
        handlers,
        included_role_handlers: role_handlers.included,
        gather_when: Vec::new(),
        serial: map.get("serial").map(Node::to_value),
        strategy,
        order,
        any_errors_fatal: map
            .get("any_errors_fatal")
            .is_some_and(|n| truthy(&n.to_value())),
        max_fail_percentage: map
            .get("max_fail_percentage")
            .and_then(|n| match n.to_value() {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim_end_matches('%').parse().ok(),
                _ => None,
            }),
        force_handlers: map.get("force_handlers").map(|n| truthy(&n.to_value())),
        keywords,
    })
}

/// Ansible's idea of a true value in playbook keywords.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1" | "y"
        ),
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        _ => false,
    }
}

fn scalar_text(node: &Node) -> String {
    match node.to_value() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn mapping(node: Option<&Node>, scope: &Scope, what: &str) -> Result<Vars, PlaybookError> {
    if what == "vars"
        && let Some(node) = node
    {
        crate::reserved::warn_reserved_keys(node, &scope.file);
    }
    match node.map(|n| (n, n.to_value())) {
        None | Some((_, Value::Null)) => Ok(Vars::new()),
        Some((_, Value::Object(map))) => Ok(map),
        Some((n, _)) => Err(scope.error(
            n,
            None,
            format!("{what} must be a mapping, found {}", n.type_name()),
        )),
    }
}

/// A conditional keyword's list, each text's place noted (see [`condition_origin`]).
fn condition_values(keyword: &str, node: &Node, scope: &Scope) -> Vec<Value> {
    let items: Vec<&Node> = match &node.kind {
        settle_yaml::Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    if let Ok(mut origins) = condition_origins().lock() {
        for item in items {
            if let Some(text) = item.as_str() {
                origins
                    .entry((keyword.to_string(), text.trim().to_string()))
                    .or_default()
                    .push(scope.location(item));
            }
        }
    }
    list_of_values(node)
}

/// Each condition's keyword and text, and the places it was written.
type Origins = std::sync::Mutex<HashMap<(String, String), Vec<Location>>>;

fn condition_origins() -> &'static Origins {
    static ORIGINS: std::sync::OnceLock<Origins> = std::sync::OnceLock::new();
    ORIGINS.get_or_init(Default::default)
}

/// Where a condition (`keyword: text`) was written (for Ansible's `Origin:` in a deprecation), as near
/// as its text tells: of the places it was written, the first at or after `task` in the
/// task's file, else the last before it there (a block's or an import's), else the first.
pub fn condition_origin(keyword: &str, text: &str, task: Option<&Location>) -> Option<Location> {
    let origins = condition_origins().lock().ok()?;
    let places = origins.get(&(keyword.to_string(), text.trim().to_string()))?;
    let Some(task) = task else {
        return places.first().cloned();
    };
    let here = |l: &&Location| l.file == task.file;
    places
        .iter()
        .filter(here)
        .filter(|l| l.line >= task.line)
        .min_by_key(|l| l.line)
        .or_else(|| {
            places
                .iter()
                .filter(here)
                .filter(|l| l.line < task.line)
                .max_by_key(|l| l.line)
        })
        .or_else(|| places.first())
        .cloned()
}

fn list_of_values(node: &Node) -> Vec<Value> {
    match node.to_value() {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn list_of_strings(node: &Node, split_commas: bool) -> Vec<String> {
    list_of_values(node)
        .into_iter()
        .flat_map(|v| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if split_commas {
                text.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            } else {
                vec![text]
            }
        })
        .collect()
}

/// `module_defaults`: a mapping of module name to default arguments, or a list of them.
fn module_defaults(
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<Vec<Vars>, PlaybookError> {
    let bad = || {
        scope.error(
            node,
            name,
            "module_defaults must be a mapping of module names to their arguments, or a list of them",
        )
    };
    let each = |v: Value| -> Result<Vars, PlaybookError> {
        match v {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(Vars::new()),
            _ => Err(bad()),
        }
    };
    match node.to_value() {
        Value::Array(items) => items.into_iter().map(each).collect(),
        other => Ok(vec![each(other)?]),
    }
}

/// Keywords shared by plays, blocks and tasks.
fn parse_shared_keywords(
    map: &IndexMap<String, Node>,
    kw: &mut Keywords,
    scope: &Scope,
    name: Option<&str>,
) -> Result<(), PlaybookError> {
    for (key, node) in map {
        let value = || node.to_value();
        let string = || -> Result<String, PlaybookError> {
            node.as_str()
                .map(str::to_string)
                .ok_or_else(|| scope.error(node, name, format!("{key} must be a string")))
        };
        match key.as_str() {
            // A static list: Ansible does not template it.
            "collections" if !node.is_null() => {
                let list = list_of_strings(node, false);
                warn_templated_collections(&list);
                kw.collections = Some(list);
            }
            "when" => kw.when = condition_values("when", node, scope),
            "tags" => kw.tags = list_of_strings(node, true),
            "ignore_errors" => kw.ignore_errors = Some(Box::new(value())),
            "ignore_unreachable" => kw.ignore_unreachable = Some(Box::new(value())),
            "become" => kw.become_ = Some(Box::new(value())),
            "become_user" => kw.become_user = Some(Box::new(value())),
            "become_method" => {
                let method = string()?;
                // A template is rendered (and checked) when the task runs.
                if !matches!(
                    method.as_str(),
                    "sudo" | "su" | "ansible.builtin.sudo" | "ansible.builtin.su"
                ) && !method.contains("{{")
                {
                    return Err(scope.error(
                        node,
                        name,
                        format!(
                            "become_method {method:?} is not supported; settle becomes with sudo or su"
                        ),
                    ));
                }
                kw.become_method = Some(method);
            }
            "become_exe" => kw.become_exe = Some(Box::new(value())),
            "become_flags" => kw.become_flags = Some(Box::new(value())),
            "no_log" => kw.no_log = Some(Box::new(value())),
            "delegate_to" => kw.delegate_to = Some(Box::new(value())),
            "run_once" => kw.run_once = Some(Box::new(value())),
            "environment" => kw.environment = vec![value()],
            "module_defaults" => kw.module_defaults = module_defaults(node, scope, name)?,
            "check_mode" => kw.check_mode = Some(Box::new(value())),
            "diff" => kw.diff = Some(Box::new(value())),
            "any_errors_fatal" => kw.any_errors_fatal = Some(truthy(&value())),
            // (`user`, the play's old name for it, is read with the play: in a task it is the
            // module.)
            "remote_user" => kw.remote_user = Some(Box::new(value())),
            "delegate_facts" => kw.delegate_facts = Some(truthy(&value())),
            "connection" => kw.connection = Some(string()?),
            "timeout" => kw.timeout = Some(Box::new(value())),
            "throttle" => kw.throttle = Some(Box::new(value())),
            _ => {}
        }
    }
    Ok(())
}

fn parse_task_list(
    node: &Node,
    scope: &Scope,
    inherited: &Keywords,
) -> Result<Vec<TaskNode>, PlaybookError> {
    let Some(items) = node.as_seq() else {
        return Err(scope.error(
            node,
            None,
            format!("a task list must be a list, found {}", node.type_name()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        parse_task_entry(item, scope, inherited, &mut out)?;
    }
    Ok(out)
}

fn parse_task_entry(
    node: &Node,
    scope: &Scope,
    inherited: &Keywords,
    out: &mut Vec<TaskNode>,
) -> Result<(), PlaybookError> {
    let Some(map) = node.as_map() else {
        return Err(scope.error(
            node,
            None,
            format!("a task must be a mapping, found {}", node.type_name()),
        ));
    };
    let name = map.get("name").map(scalar_text);
    let name = name.as_deref();
    if map.contains_key("block") {
        if scope.handlers == Handlers::Tasks {
            return Err(scope.error(node, name, "Using a block as a handler is not supported."));
        }
        check_keys(map, BLOCK_KEYWORDS, "block", scope, name)?;
        let mut keywords = Keywords::default();
        parse_shared_keywords(map, &mut keywords, scope, name)?;
        keywords.vars = mapping(map.get("vars"), scope, "vars")?;
        // `notify` on a block reaches every task in it, as the block's other keywords do.
        if let Some(notify) = map.get("notify") {
            keywords.notify = list_of_strings(notify, false);
        }
        keywords.inherit(inherited);
        let inner = Scope {
            handlers: match scope.handlers {
                Handlers::No => Handlers::No,
                _ => Handlers::Tasks,
            },
            ..scope.clone()
        };
        let part = |key: &str| match map.get(key) {
            None => Ok(Vec::new()),
            Some(n) if n.is_null() => Ok(Vec::new()),
            Some(n) => parse_task_list(n, &inner, &keywords),
        };
        out.push(TaskNode::Block(Block {
            name: name.map(str::to_string),
            location: scope.location(node),
            block: part("block")?,
            rescue: part("rescue")?,
            always: part("always")?,
        }));
        return Ok(());
    }
    let mut task = parse_task(node, map, scope, name)?;
    let mut search = task
        .keywords
        .collections
        .as_ref()
        .or(inherited.collections.as_ref())
        .cloned();
    // Outside roles, the collection the playbook lives in comes first (roles put it in theirs).
    if scope.role.is_none() {
        search = with_default_collection(search);
    }
    if let Some(fqcn) = search
        .as_ref()
        .and_then(|list| in_collections(&task.module_as_written, list, &scope.play_dir))
    {
        task.module = fqcn;
    }
    if scope.handlers != Handlers::No
        && matches!(task.module.as_str(), "import_role" | "include_role")
    {
        return Err(scope.error(
            node,
            name,
            format!(
                "Using '{}' as a handler is not supported.",
                task.module_as_written
            ),
        ));
    }
    match task.module.as_str() {
        "import_tasks" => {
            // Ansible's words: only an include takes `apply`.
            if let Some(extra) = task
                .args
                .keys()
                .find(|k| !matches!(k.as_str(), "file" | "_raw_params"))
            {
                return Err(scope.error(
                    node,
                    name,
                    format!("Invalid options for import_tasks: {extra}"),
                ));
            }
            let file = task_file_arg(&task, scope, node, name)?;
            let mut keywords = task.keywords.clone();
            keywords.inherit(inherited);
            let path = scope.import_path(&file);
            let Some(_importing) = Importing::enter(&path) else {
                return Err(scope.error(node, name, Importing::cycle_message(&path)));
            };
            out.extend(load_tasks_in(&path, scope, &keywords).map_err(|e| match e {
                PlaybookError::Yaml(settle_yaml::YamlError::Read { .. }) => scope.missing(
                    node,
                    name,
                    not_found_on_controller(&scope.play_dir.join(&file), None),
                ),
                other => other,
            })?);
        }
        "include_tasks" => {
            let file = match task
                .args
                .get("file")
                .or_else(|| task.args.get("_raw_params"))
            {
                Some(v) => v.clone(),
                None => {
                    let message = format!("No file specified for {}", task.module_as_written);
                    return Err(scope.error(node, name, message));
                }
            };
            let apply = parse_apply(&task, node, scope, name)?;
            if let Some(extra) = task
                .args
                .keys()
                .find(|k| !matches!(k.as_str(), "file" | "_raw_params" | "apply"))
            {
                return Err(scope.error(
                    node,
                    name,
                    format!("include_tasks does not take {extra:?}"),
                ));
            }
            task.keywords.inherit(inherited);
            let mut apply = apply;
            let mut parent = inherited.clone();
            parent.when.clear();
            apply.inherit(&parent);
            out.push(TaskNode::Include(Arc::new(Include {
                name: task.name.clone(),
                location: task.location.clone(),
                file,
                base_dir: scope.dir.clone(),
                keywords: task.keywords,
                apply,
                role: scope.role.clone(),
                listen: task.listen,
                role_include: None,
                handler: scope.handlers != Handlers::No,
                args: include_args(&task.args),
                name_at: None,
            })));
        }
        "import_role" | "include_role" => {
            // `role:` is Ansible's other spelling of `name:` (IncludeRole.BASE).
            let given = task.args.get("name").or_else(|| task.args.get("role"));
            let Some(role_name) = given.and_then(Value::as_str) else {
                return Err(scope.error(node, name, format!("{} needs a role name", task.module)));
            };
            if let Some(extra) = task.args.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "name"
                        | "role"
                        | "tasks_from"
                        | "vars_from"
                        | "defaults_from"
                        | "handlers_from"
                        | "public"
                        | "allow_duplicates"
                        | "rolespec_validate"
                        | "apply"
                )
            }) {
                return Err(scope.error(
                    node,
                    name,
                    format!("{} does not take {extra:?} in settle", task.module),
                ));
            }
            // An import's `*_from` may be a template of the variables known now.
            let mut known = Vars::clone(&scope.play_vars);
            known.extend(
                task.keywords
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            let from = |key: &str| -> Result<String, PlaybookError> {
                let file = match task.args.get(key) {
                    None => "main",
                    Some(Value::String(file)) => file.as_str(),
                    Some(other) => {
                        let kind = settle_yaml::python_type(other);
                        return Err(scope.error(
                            node,
                            name,
                            format!("Expected a string for {key} but got <class '{kind}'>"),
                        ));
                    }
                };
                match task.module.as_str() {
                    "import_role" => render_static(file, &known).map_err(|e| {
                        scope.error(
                            node,
                            name,
                            format!("Error when evaluating variable in import path {file:?}: {e}"),
                        )
                    }),
                    _ => Ok(file.to_string()),
                }
            };
            let mut files = RoleFiles {
                tasks: from("tasks_from")?,
                vars: from("vars_from")?,
                defaults: from("defaults_from")?,
                handlers: from("handlers_from")?,
                validate: true,
            };
            // `allow_duplicates:` and `public:` may be templates of the variables known now;
            // an include's that need more keep their default.
            let flag = |key: &str, default: bool| -> Result<bool, PlaybookError> {
                let Some(value) = task.args.get(key) else {
                    return Ok(default);
                };
                let Value::String(text) = value else {
                    return Ok(truthy(value));
                };
                match render_static(text, &known) {
                    Ok(text) => Ok(truthy(&Value::String(text))),
                    Err(_) if task.module == "include_role" => Ok(default),
                    Err(e) => Err(scope.error(node, name, format!("{key}: {e}"))),
                }
            };
            files.validate = flag("rolespec_validate", true)?;
            // Unlike `roles:`, an import or include runs its role again unless told otherwise.
            let allow_duplicates = flag("allow_duplicates", true)?;
            let own = format!(
                "include when={:?} tags={:?}",
                task.keywords.when, task.keywords.tags
            );
            let mut keywords = task.keywords.clone();
            keywords.inherit(inherited);
            let mut handlers = Vec::new();
            let public = flag("public", default_public(task.module == "import_role"))?;
            if task.module == "include_role" {
                // Dynamic, as in Ansible: the role is read when the task is reached (its name
                // may be a template, its loop and `when` are the include's own). A role named
                // plainly has its handlers registered now, so they can be notified.
                let apply = {
                    let mut apply = parse_apply(&task, node, scope, name)?;
                    let mut parent = inherited.clone();
                    parent.when.clear();
                    apply.inherit(&parent);
                    apply
                };
                // A role that is not there fails the include when it runs, on the hosts that
                // reach it (a `when` may keep every host away from it).
                let templated = [&files.tasks, &files.vars, &files.defaults, &files.handlers]
                    .iter()
                    .any(|f| f.contains("{{"));
                if !role_name.contains("{{") && !templated && find_role(role_name, scope).is_some()
                {
                    let mut loader = RoleLoader {
                        included_by: scope.role.clone(),
                        public: Some(public),
                        ..RoleLoader::default()
                    };
                    let mut ignored = Vec::new();
                    loader.load_role(
                        role_name,
                        Vars::new(),
                        &files,
                        (&own, Some(allow_duplicates)),
                        scope,
                        &apply,
                        node,
                        &mut ignored,
                        &mut handlers,
                    )?;
                }
                out.push(TaskNode::Include(Arc::new(Include {
                    name: task.name.clone(),
                    location: task.location.clone(),
                    file: Value::String(role_name.to_string()),
                    base_dir: scope.dir.clone(),
                    keywords,
                    apply,
                    role: scope.role.clone(),
                    listen: task.listen.clone(),
                    handler: false,
                    args: include_args(&task.args),
                    name_at: task
                        .arg_origin("name")
                        .or_else(|| task.arg_origin("role"))
                        .cloned(),
                    role_include: Some(RoleInclude {
                        tasks_from: files.tasks.clone(),
                        vars_from: files.vars.clone(),
                        defaults_from: files.defaults.clone(),
                        handlers_from: files.handlers.clone(),
                        allow_duplicates,
                        public,
                        identity: own.clone(),
                        rolespec_validate: files.validate,
                    }),
                })));
            } else {
                let mut loader = RoleLoader {
                    included_by: scope.role.clone(),
                    public: Some(public),
                    ..RoleLoader::default()
                };
                let role_name = render_static(role_name, &known).map_err(|e| {
                    scope.error(
                        node,
                        name,
                        format!("Error when evaluating variable in import path {role_name:?}: {e}"),
                    )
                })?;
                loader.load_role(
                    &role_name,
                    Vars::new(),
                    &files,
                    (&own, Some(allow_duplicates)),
                    scope,
                    &keywords,
                    node,
                    out,
                    &mut handlers,
                )?;
            }
            // The role's handlers are the play's, once each, whatever imports the role.
            if let Ok(mut registered) = scope.role_handlers.lock() {
                for handler in handlers {
                    let known = registered
                        .imported
                        .iter()
                        .chain(&registered.included)
                        .any(|h| {
                            h.name == handler.name
                                && h.role.as_ref().map(|r| &r.name)
                                    == handler.role.as_ref().map(|r| &r.name)
                        });
                    match task.module.as_str() {
                        _ if known => {}
                        "include_role" => registered.included.push(handler),
                        _ => registered.imported.push(handler),
                    }
                }
            }
        }
        _ => {
            if scope.role.is_none() && is_end_role(&task) {
                return Err(PlaybookError::Refused {
                    location: scope.location(node),
                    message: "Cannot execute 'end_role' from outside of a role".into(),
                });
            }
            task.keywords.inherit(inherited);
            out.push(TaskNode::Task(Arc::new(task)));
        }
    }
    Ok(())
}

fn is_end_role(task: &Task) -> bool {
    task.module == "meta"
        && task.args.get("_raw_params").and_then(Value::as_str) == Some("end_role")
}

/// A value from an `apply:` mapping back as a node, placed at the include task.
fn value_node(value: &Value, at: &Node) -> Node {
    let kind = match value {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Kind::Int)
            .unwrap_or_else(|| Kind::Float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Kind::Str(s.clone()),
        Value::Array(items) => Kind::Seq(items.iter().map(|i| value_node(i, at)).collect()),
        Value::Object(map) => Kind::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), value_node(v, at)))
                .collect(),
        ),
    };
    Node {
        kind,
        line: at.line,
        column: at.column,
        key_at: at.key_at,
    }
}

fn task_file_arg(
    task: &Task,
    scope: &Scope,
    node: &Node,
    name: Option<&str>,
) -> Result<String, PlaybookError> {
    match task
        .args
        .get("file")
        .or_else(|| task.args.get("_raw_params"))
    {
        Some(Value::String(f)) if !f.contains("{{") => Ok(f.clone()),
        // What is known while the playbook is read: the role's and the playbook's folders.
        Some(Value::String(f)) => {
            let absolute = |p: &Path| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .display()
                    .to_string()
            };
            let mut known = vec![("playbook_dir", absolute(&scope.play_dir))];
            if let Some(role) = &scope.role {
                known.push(("role_path", absolute(&role.path)));
            }
            let mut vars = Vars::clone(&scope.play_vars);
            vars.extend(
                task.keywords
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            vars.extend(
                known
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.clone()))),
            );
            let mut file = render_static(f, &vars).map_err(|e| {
                scope.error(
                    node,
                    name,
                    format!("Error when evaluating variable in import path {f:?}: {e}"),
                )
            })?;
            for (var, value) in known {
                for form in [format!("{{{{ {var} }}}}"), format!("{{{{{var}}}}}")] {
                    file = file.replace(&form, &value);
                }
            }
            if file.contains("{{") {
                return Err(scope.error(
                    node,
                    name,
                    "import_tasks takes a file name known when the playbook is read \
                     (role_path, playbook_dir); use include_tasks for one made at run time",
                ));
            }
            Ok(file)
        }
        _ => Err(scope.error(node, name, "import_tasks needs a file name")),
    }
}

thread_local! {
    /// The task files being imported, outermost first: a static import is always expanded, so
    /// a file that imports itself (or one of the files importing it) never ends.
    static IMPORTING: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One task file on the import stack, taken off when dropped.
struct Importing;

impl Importing {
    /// How deep imports may nest, cycles aside: far more than a playbook needs, and a bound on
    /// the recursion that reads them.
    const MAX_DEPTH: usize = 64;

    /// Puts `path` on the stack, or nothing when it is there already (or the stack is full).
    fn enter(path: &Path) -> Option<Importing> {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        IMPORTING.with_borrow_mut(|stack| {
            if stack.contains(&path) || stack.len() >= Self::MAX_DEPTH {
                return None;
            }
            stack.push(path);
            Some(Importing)
        })
    }

    /// The error for a file that cannot be entered: the chain of imports that leads back to it.
    fn cycle_message(path: &Path) -> String {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        IMPORTING.with_borrow(|stack| {
            let from = stack.iter().position(|p| *p == path).unwrap_or(0);
            let mut chain: Vec<String> = stack[from..]
                .iter()
                .chain(std::iter::once(&path))
                .map(|p| p.display().to_string())
                .collect();
            // A short message even for a long chain: its three first files and three last.
            if chain.len() > 6 {
                chain.splice(3..chain.len() - 3, ["...".to_string()]);
            }
            if stack.contains(&path) {
                format!(
                    "import_tasks: a task file imports itself: {}",
                    chain.join(" -> ")
                )
            } else {
                format!(
                    "import_tasks: imports nest deeper than {} files: {}",
                    Self::MAX_DEPTH,
                    chain.join(" -> ")
                )
            }
        })
    }
}

impl Drop for Importing {
    fn drop(&mut self) {
        IMPORTING.with_borrow_mut(|stack| {
            stack.pop();
        });
    }
}

fn load_tasks_in(
    path: &Path,
    scope: &Scope,
    inherited: &Keywords,
) -> Result<Vec<TaskNode>, PlaybookError> {
    let doc = settle_yaml::load_file(path)?;
    let inner = Scope {
        file: Arc::from(path),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        play_dir: scope.play_dir.clone(),
        role: scope.role.clone(),
        role_handlers: scope.role_handlers.clone(),
        play_vars: scope.play_vars.clone(),
        handlers: scope.handlers.in_file(),
    };
    if doc.is_null() {
        return Ok(Vec::new());
    }
    parse_task_list(&doc, &inner, inherited)
}

/// Reads a role for `include_role` at run time: its tasks (dependencies first) and handlers.
/// `inherited` holds the include's `apply`; `at` is the include, for messages.
pub fn load_included_role(
    name: &str,
    include: &RoleInclude,
    play_dir: &Path,
    parent: Option<Arc<Role>>,
    at: &Location,
    inherited: &Keywords,
) -> Result<(Vec<TaskNode>, Vec<Task>), PlaybookError> {
    let scope = Scope {
        file: at.file.clone(),
        dir: play_dir.to_path_buf(),
        play_dir: play_dir.to_path_buf(),
        role: parent,
        role_handlers: Arc::default(),
        play_vars: Arc::default(),
        handlers: Handlers::No,
    };
    let node = Node {
        kind: Kind::Null,
        line: at.line,
        column: at.column,
        key_at: None,
    };
    let files = RoleFiles {
        tasks: include.tasks_from.clone(),
        vars: include.vars_from.clone(),
        defaults: include.defaults_from.clone(),
        handlers: include.handlers_from.clone(),
        validate: include.rolespec_validate,
    };
    let mut loader = RoleLoader {
        included_by: scope.role.clone(),
        public: Some(include.public),
        ..RoleLoader::default()
    };
    let (mut tasks, mut handlers) = (Vec::new(), Vec::new());
    loader.load_role(
        name,
        Vars::new(),
        &files,
        (&include.identity, Some(include.allow_duplicates)),
        &scope,
        inherited,
        &node,
        &mut tasks,
        &mut handlers,
    )?;
    Ok((tasks, handlers))
}

/// Reads a task file for `include_tasks` at run time. `inherited` holds the include's `apply`;
/// `handlers`: the include is a handler, and the file holds handlers.
pub fn load_tasks_file(
    path: &Path,
    play_dir: &Path,
    role: Option<Arc<Role>>,
    inherited: &Keywords,
    handlers: bool,
) -> Result<Vec<TaskNode>, PlaybookError> {
    let scope = Scope {
        file: Arc::from(path),
        dir: PathBuf::new(),
        play_dir: play_dir.to_path_buf(),
        role,
        role_handlers: Arc::default(),
        play_vars: Arc::default(),
        handlers: if handlers {
            Handlers::Blocks
        } else {
            Handlers::No
        },
    };
    load_tasks_in(path, &scope, inherited)
}

fn parse_task(
    node: &Node,
    map: &IndexMap<String, Node>,
    scope: &Scope,
    name: Option<&str>,
) -> Result<Task, PlaybookError> {
    let mut keywords = Keywords::default();
    parse_shared_keywords(map, &mut keywords, scope, name)?;
    let mut module: Option<(String, Vars)> = None;
    let mut extra_args = Vars::new();
    let mut listen = Vec::new();
    let mut candidates: Vec<&String> = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "name" | "when" | "tags" | "ignore_errors" | "ignore_unreachable" | "become"
            | "become_user" | "become_method" | "become_exe" | "become_flags" | "no_log"
            | "run_once" | "environment" | "check_mode" | "diff" | "any_errors_fatal"
            | "remote_user" | "connection" | "timeout" | "throttle" | "module_defaults"
            | "collections" => {}
            "delegate_to" | "delegate_facts" => {}
            "loop" => set_loop(&mut keywords, None, value, scope, name)?,
            k if k.starts_with("with_") && k.len() > 5 => {
                set_loop(&mut keywords, Some(&k[5..]), value, scope, name)?
            }
            "loop_control" => keywords.loop_control = parse_loop_control(value, scope, name)?,
            "register" => {
                let Some(var) = value.as_str().filter(|s| is_identifier(s)) else {
                    let (text, kind) = match value.to_value() {
                        Value::String(s) => (s, "str"),
                        Value::Number(n) if n.is_f64() => (n.to_string(), "float"),
                        Value::Number(n) => (n.to_string(), "int"),
                        Value::Bool(b) => (if b { "True" } else { "False" }.into(), "bool"),
                        other => (other.to_string(), "object"),
                    };
                    return Err(scope.error(
                        value,
                        name,
                        format!(
                            "Invalid 'register' specified: Invalid variable name '{text}' of type '{kind}'."
                        ),
                    ));
                };
                keywords.register = Some(var.to_string());
            }
            "notify" => keywords.notify = list_of_strings(value, false),
            "listen" => listen = list_of_strings(value, false),
            "changed_when" => {
                keywords.changed_when = condition_values("changed_when", value, scope)
            }
            "failed_when" => keywords.failed_when = condition_values("failed_when", value, scope),
            "until" => keywords.until = condition_values("until", value, scope),
            "retries" => keywords.retries = Some(Box::new(value.to_value())),
            "delay" => keywords.delay = Some(Box::new(value.to_value())),
            "async" => keywords.async_ = Some(Box::new(value.to_value())),
            "poll" => keywords.poll = Some(Box::new(value.to_value())),
            "vars" => keywords.vars = mapping(Some(value), scope, "vars")?,
            // `args: '{{ splatted }}'`: a mapping a template gives at run time, as the module's
            // own arguments may be (what the module names beside it wins).
            "args" => match value.to_value() {
                Value::String(text) if text.contains("{{") || text.contains("{%") => {
                    extra_args = Vars::from_iter([(
                        "_variable_params".to_string(),
                        Value::String(text.trim().to_string()),
                    )])
                }
                Value::String(_) => {
                    return Err(scope.error(
                        value,
                        name,
                        "The value of the task `args` keyword is invalid: a mapping or template \
                         which resolves to a mapping is required",
                    ));
                }
                _ => extra_args = mapping(Some(value), scope, "args")?,
            },
            "action" | "local_action" => {
                let (m, args) = parse_action_keyword(value, scope, name)?;
                if key == "local_action" {
                    keywords.delegate_to = Some(Box::new(Value::String("localhost".into())));
                }
                if module.replace((m, args)).is_some() {
                    return Err(scope.error(
                        node,
                        name,
                        "a task has one action: found both a module and action/local_action",
                    ));
                }
            }
            // The debugger never starting is what settle does: that much of it is kept.
            "debugger"
                if matches!(value.to_value(), Value::Null) || value.as_str() == Some("never") => {}
            _ if UNSUPPORTED_KEYWORDS.contains(&key.as_str()) => {
                return Err(scope.error(
                    value,
                    name,
                    format!("{key:?} is an Ansible task keyword that settle does not support"),
                ));
            }
            _ => candidates.push(key),
        }
    }
    if module.is_some() && !candidates.is_empty() || candidates.len() > 1 {
        // One of these is the module; a near miss of a keyword is the likelier mistake.
        let misspelt = candidates
            .iter()
            .find(|c| !did_you_mean(c, TASK_KEYWORDS.iter().copied()).is_empty());
        let message = match misspelt {
            Some(word) => format!(
                "{word:?} is not a valid task keyword{}",
                did_you_mean(word, TASK_KEYWORDS.iter().copied())
            ),
            // Ansible's words: a task runs one module, and this one names several.
            None => format!(
                "conflicting action statements: {}",
                candidates
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let at = misspelt.and_then(|w| map.get(*w)).unwrap_or(node);
        return Err(scope.error(at, name, message));
    }
    if let Some(args) = map.get("args")
        && matches!(args.to_value(), Value::Null)
    {
        settle_yaml::deprecation::deprecated(
            "Ignoring empty task `args` keyword.",
            "2.23",
            Some(&scope.location(node)),
            Some("A mapping or template which resolves to a mapping is required."),
            None,
        );
    }
    if let Some(key) = candidates.first() {
        let short = short_module_name(key).to_string();
        let args = module_args(&short, &map[*key], scope, name)?;
        if map.contains_key("args") && map[*key].as_str().is_some() {
            // Ansible's words for `module: k=v` beside `args:` (Python's repr of each key).
            let mut keys: Vec<&String> = args.keys().filter(|k| *k != "_raw_params").collect();
            keys.sort();
            if !keys.is_empty() {
                let keys: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
                settle_yaml::deprecation::deprecated(
                    &format!(
                        "Merging legacy k=v args ({}) into task args.",
                        keys.join(", ")
                    ),
                    "2.23",
                    Some(&scope.location(&map[*key])),
                    Some("Include all task args in the task `args` mapping."),
                    None,
                );
            }
        }
        module = Some((key.to_string(), args));
    }
    let Some((written, mut args)) = module else {
        return Err(scope.error(
            node,
            name,
            "this task has no module: add one, such as `ansible.builtin.debug: msg=…`",
        ));
    };
    for (k, v) in extra_args {
        args.entry(k).or_insert(v);
    }
    if keywords.loop_control != LoopControl::default() && keywords.loop_.is_none() {
        return Err(scope.error(node, name, "loop_control needs a loop"));
    }
    let arg_origins = arg_origins(&args, map, &written, scope);
    Ok(Task {
        name: name.map(str::to_string),
        module: short_module_name(&written).to_string(),
        module_as_written: written,
        args,
        keywords,
        location: scope.location(node),
        role: scope.role.clone(),
        listen,
        include: None,
        arg_origins: Arc::new(arg_origins),
    })
}

/// Where each argument is written: its value in the `args:` mapping or the module's, else the
/// module's `key=value` text (or the `action:` text) as a whole.
fn arg_origins(
    args: &Vars,
    map: &IndexMap<String, Node>,
    written: &str,
    scope: &Scope,
) -> Vec<(String, Location)> {
    let module = map.get(written).or_else(|| map.get("action"));
    let given = map.get("args");
    args.keys()
        .filter_map(|key| {
            let node = given
                .and_then(|g| g.get(key))
                .or_else(|| module.and_then(|m| m.get(key)))
                .or(module.filter(|m| m.as_str().is_some()))?;
            Some((key.clone(), scope.location(node)))
        })
        .collect()
}

/// `apply:` of an include: keywords for every included task.
fn parse_apply(
    task: &Task,
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<Keywords, PlaybookError> {
    match task.args.get("apply") {
        Some(Value::Object(apply)) => {
            let fake: IndexMap<String, Node> = apply
                .iter()
                .map(|(k, v)| (k.clone(), value_node(v, node)))
                .collect();
            check_keys(&fake, BLOCK_KEYWORDS, "apply", scope, name)?;
            let mut kw = Keywords::default();
            parse_shared_keywords(&fake, &mut kw, scope, name)?;
            kw.vars = mapping(fake.get("vars"), scope, "vars")?;
            if let Some(notify) = fake.get("notify") {
                kw.notify = list_of_strings(notify, false);
            }
            Ok(kw)
        }
        Some(_) => Err(scope.error(node, name, "apply must be a mapping of keywords")),
        None => Ok(Keywords::default()),
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn set_loop(
    kw: &mut Keywords,
    lookup: Option<&str>,
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<(), PlaybookError> {
    if kw.loop_.is_some() {
        return Err(scope.error(
            node,
            name,
            "a task has one loop: found both loop and a with_* keyword",
        ));
    }
    kw.loop_ = Some(Loop {
        lookup: lookup.map(str::to_string),
        items: node.to_value(),
    });
    Ok(())
}

fn parse_loop_control(
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<LoopControl, PlaybookError> {
    let Some(map) = node.as_map() else {
        return Err(scope.error(node, name, "loop_control must be a mapping"));
    };
    let mut lc = LoopControl::default();
    for (key, value) in map {
        match key.as_str() {
            "loop_var" => lc.loop_var = value.as_str().map(str::to_string),
            "index_var" => lc.index_var = value.as_str().map(str::to_string),
            "label" => lc.label = Some(value.to_value()),
            "pause" => {
                let seconds = value.to_value().as_f64();
                // A pause has to be a time: negative, infinite or centuries-long is an error.
                match seconds {
                    Some(s) if s.is_finite() && (0.0..=86_400.0 * 365.0).contains(&s) => {
                        lc.pause = Some(s)
                    }
                    _ => {
                        return Err(scope.error(
                            value,
                            name,
                            "loop_control.pause must be a number of seconds from 0 to a year",
                        ));
                    }
                }
            }
            "extended" => lc.extended = truthy(&value.to_value()),
            "extended_allitems" => lc.extended_allitems = truthy(&value.to_value()),
            "break_when" => lc.break_when = list_of_values(value),
            other => {
                return Err(scope.error(
                    value,
                    name,
                    format!(
                        "loop_control has no {other:?}{}",
                        did_you_mean(
                            other,
                            [
                                "loop_var",
                                "index_var",
                                "label",
                                "pause",
                                "extended",
                                "extended_allitems",
                                "break_when"
                            ]
                        )
                    ),
                ));
            }
        }
    }
    Ok(lc)
}

/// `action: copy src=a dest=b` or `action: {module: copy, src: a}`.
/// The module name at the start of an `action:` string, and the arguments after it. The name
/// may hold a template (`{{ prefix }}file path=…`): spaces inside `{{ }}` do not end it.
fn split_module_word(text: &str) -> (&str, &str) {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(b"}}") {
            depth = depth.saturating_sub(1);
            i += 2;
            continue;
        }
        if depth == 0 && bytes[i].is_ascii_whitespace() {
            return (&text[..i], text[i..].trim_start());
        }
        i += 1;
    }
    (text, "")
}

fn parse_action_keyword(
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<(String, Vars), PlaybookError> {
    match node.to_value() {
        Value::String(text) => {
            let (module, rest) = split_module_word(text.trim());
            let short = short_module_name(module);
            let args = parse_kv(rest, COMMAND_MODULES.contains(&short))
                .map_err(|e| scope.error(node, name, e))?;
            let args = with_nested_args(args).map_err(|e| scope.error(node, name, e))?;
            Ok((module.to_string(), args))
        }
        Value::Object(mut map) => {
            settle_yaml::deprecation::deprecated(
                "Using a mapping for `action` is deprecated.",
                "2.23",
                Some(&scope.location(node)),
                Some("Use a string value for `action`."),
                None,
            );
            match map.shift_remove("module") {
                // `action: {module: copy src=a, dest: b}`: the module's own `key=value` words
                // over the keys beside it.
                Some(Value::String(text)) => {
                    let (module, rest) = split_module_word(text.trim());
                    let short = short_module_name(module);
                    let words = parse_kv(rest, COMMAND_MODULES.contains(&short))
                        .map_err(|e| scope.error(node, name, e))?;
                    map.extend(words);
                    let args = with_nested_args(map).map_err(|e| scope.error(node, name, e))?;
                    Ok((module.to_string(), args))
                }
                _ => Err(scope.error(node, name, "action as a mapping needs `module:`")),
            }
        }
        _ => Err(scope.error(node, name, "action must be a string or a mapping")),
    }
}

/// An `action:`'s arguments with an `args` among them (`action: {module: x, args: …}`) opened
/// up, as Ansible opens it: a mapping's keys, or the `key=value` words of a string, over the
/// others.
fn with_nested_args(mut args: Vars) -> Result<Vars, String> {
    match args.shift_remove("args") {
        None | Some(Value::Null) => {}
        Some(Value::Object(nested)) => args.extend(nested),
        Some(Value::String(text)) => args.extend(parse_kv(&text, false)?),
        Some(_) => {
            return Err("the `args` of an action must be a mapping or key=value text".into());
        }
    }
    Ok(args)
}

fn module_args(
    module: &str,
    node: &Node,
    scope: &Scope,
    name: Option<&str>,
) -> Result<Vars, PlaybookError> {
    if module == "set_fact" {
        crate::reserved::warn_reserved_keys(node, &scope.file);
    }
    match node.to_value() {
        Value::Null => Ok(Vars::new()),
        Value::Object(map) => Ok(map),
        // `assert: '{{ item }}'` gives the template as free-form text: for an action that takes
        // none, the mapping it renders to is the arguments (see the engine's finalizing).
        Value::String(text) => parse_kv(&text, COMMAND_MODULES.contains(&module))
            .map_err(|e| scope.error(node, name, e)),
        Value::Array(_) if module == "command" => {
            Err(scope.error(node, name, "command takes a string; use `argv:` for a list"))
        }
        Value::Bool(_) | Value::Number(_) if FREE_FORM_MODULES.contains(&module) => {
            parse_kv(&scalar_text(node), true).map_err(|e| scope.error(node, name, e))
        }
        _ => Err(scope.error(
            node,
            name,
            format!(
                "the arguments of {module} must be a mapping or key=value text, found {}",
                node.type_name()
            ),
        )),
    }
}

fn parse_handlers(
    node: &Node,
    scope: &Scope,
    inherited: &Keywords,
) -> Result<Vec<Task>, PlaybookError> {
    // Refused before anything else is said about the handler, as Ansible does.
    for entry in node.as_seq().into_iter().flatten() {
        let meta = ["meta", "ansible.builtin.meta", "ansible.legacy.meta"]
            .iter()
            .find_map(|k| entry.get(k).and_then(Node::as_str));
        if meta.is_some_and(|m| m.trim() == "end_role") {
            return Err(PlaybookError::Refused {
                location: scope.location(entry),
                message: "Cannot execute 'end_role' from a handler".into(),
            });
        }
    }
    let scope = Scope {
        handlers: Handlers::Blocks,
        ..scope.clone()
    };
    let mut out = Vec::new();
    for entry in parse_task_list(node, &scope, inherited)? {
        flatten_handlers(entry, &mut out)?;
    }
    Ok(out)
}

fn flatten_handlers(node: TaskNode, out: &mut Vec<Task>) -> Result<(), PlaybookError> {
    match node {
        TaskNode::Task(task) => out.push(Arc::unwrap_or_clone(task)),
        TaskNode::Block(block) if block.rescue.is_empty() && block.always.is_empty() => {
            for inner in block.block {
                flatten_handlers(inner, out)?;
            }
        }
        TaskNode::Block(block) => {
            return Err(PlaybookError::Invalid {
                location: block.location,
                task: block.name,
                message: "handlers cannot use rescue or always".into(),
            });
        }
        TaskNode::Include(include) => out.push(Task {
            name: include.name.clone(),
            module: "include_tasks".into(),
            module_as_written: "include_tasks".into(),
            args: Vars::new(),
            keywords: include.keywords.clone(),
            location: include.location.clone(),
            role: include.role.clone(),
            listen: include.listen.clone(),
            include: Some(include),
            arg_origins: Default::default(),
        }),
    }
    Ok(())
}

/// Loads roles and their dependencies. A role used twice is read twice (whether the second use
/// runs is decided per host at run time, as Ansible does), but its handlers are read once.
#[derive(Default)]
struct RoleLoader {
    /// Role instances whose handlers are read.
    seen: HashSet<String>,
    /// The instances being read, outermost first: a dependency loop is an error.
    chain: Vec<String>,
    /// Every role loaded, each after its dependencies.
    loaded: Vec<Arc<Role>>,
    /// Loading for `import_role`/`include_role`: the role whose tasks do it.
    included_by: Option<Arc<Role>>,
    /// The next role loaded is a dependency (`meta/main.yml`) of the one being read.
    loading_dependency: bool,
    /// The `public:` of the import or include that loads the next role.
    public: Option<bool>,
}

/// Which file of each role folder to read (`tasks_from`, `vars_from`, …): `main` by default.
struct RoleFiles {
    tasks: String,
    vars: String,
    defaults: String,
    handlers: String,
    /// `rolespec_validate`: check the role's arguments against `meta/argument_specs.yml`
    /// first (true unless the import or include says otherwise).
    validate: bool,
}

impl Default for RoleFiles {
    fn default() -> Self {
        let main = || "main".to_string();
        RoleFiles {
            tasks: main(),
            vars: main(),
            defaults: main(),
            handlers: main(),
            validate: true,
        }
    }
}

impl RoleLoader {
    fn use_role(
        &mut self,
        entry: &Node,
        scope: &Scope,
        play_keywords: &Keywords,
        tasks: &mut Vec<TaskNode>,
        handlers: &mut Vec<Task>,
    ) -> Result<(), PlaybookError> {
        let (name, map) = match &entry.kind {
            // `foo,bar` is the requirement syntax of Ansible's old role files, not a role name
            // (ansible-playbook exits 1 for it, as for a role that is not there).
            Kind::Str(name) if name.contains(',') => {
                return Err(scope.missing(
                    entry,
                    None,
                    format!("Invalid old style role requirement: {name}"),
                ));
            }
            Kind::Str(name) => (name.clone(), IndexMap::new()),
            Kind::Map(map) => {
                let Some(name) = map
                    .get("role")
                    .or_else(|| map.get("name"))
                    .and_then(Node::as_str)
                else {
                    return Err(scope.error(
                        entry,
                        None,
                        "a role entry needs `role:` (the role's name)",
                    ));
                };
                (name.to_string(), map.clone())
            }
            _ => {
                return Err(scope.error(
                    entry,
                    None,
                    "a role entry is a name or a mapping with `role:`",
                ));
            }
        };
        let mut keywords = Keywords::default();
        parse_shared_keywords(&map, &mut keywords, scope, None)?;
        // The entry's own `when` and `tags` tell role instances apart; inherited ones do not.
        let own = format!("when={:?} tags={:?}", keywords.when, keywords.tags);
        keywords.inherit(play_keywords);
        let mut params = Vars::new();
        for (key, value) in &map {
            match key.as_str() {
                "role" | "name" => {}
                "vars" => params.extend(mapping(Some(value), scope, "vars")?),
                k if BLOCK_KEYWORDS.contains(&k) => {}
                k => {
                    params.insert(k.to_string(), value.to_value());
                }
            }
        }
        self.load_role(
            &name,
            params,
            &RoleFiles::default(),
            (&own, None),
            scope,
            &keywords,
            entry,
            tasks,
            handlers,
        )
    }

    #[allow(clippy::too_many_arguments)]
    /// `own` is what the use adds to the role's identity (see [`Role::instance`]) and, for
    /// `import_role`/`include_role`, their `allow_duplicates`.
    fn load_role(
        &mut self,
        name: &str,
        params: Vars,
        files: &RoleFiles,
        (own, include_allows): (&str, Option<bool>),
        scope: &Scope,
        keywords: &Keywords,
        at: &Node,
        tasks: &mut Vec<TaskNode>,
        handlers: &mut Vec<Task>,
    ) -> Result<(), PlaybookError> {
        // Taken first: only this role is the dependency (or the included one), not the ones
        // it loads.
        let dependency = std::mem::take(&mut self.loading_dependency);
        let included_by = self.included_by.take();
        let public = match (self.public.take(), &scope.role) {
            (Some(public), _) => public,
            (None, Some(parent)) if dependency => parent.public,
            (None, _) => default_public(true),
        };
        let Some(path) = find_role(name, scope) else {
            return Err(scope.missing(at, None, role_not_found(name, scope)));
        };
        let read_file = |dir: &str, file: &Path| -> Result<Vars, PlaybookError> {
            let doc = settle_yaml::load_file(file)?;
            let inner = Scope {
                file: Arc::from(file),
                ..scope.clone()
            };
            mapping(Some(&doc), &inner, &format!("{dir}/main.yml"))
        };
        let read_vars = |dir: &str, stem: &str| -> Result<Vars, PlaybookError> {
            let found =
                role_file(&path.join(dir), stem, name).map_err(|e| scope.error(at, None, e))?;
            if let Some(file) = found {
                return read_file(dir, &file);
            }
            // `defaults/main/` as a folder: its files merged in name order, as Ansible does.
            let folder = path.join(dir).join(stem);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            files.retain(|f| {
                f.is_file()
                    && matches!(
                        f.extension().and_then(|e| e.to_str()),
                        Some("yml" | "yaml" | "json")
                    )
            });
            files.sort();
            let mut vars = Vars::new();
            for file in files {
                vars.extend(read_file(dir, &file)?);
            }
            Ok(vars)
        };
        let meta = match main_file(&path.join("meta"), "main") {
            Some(file) => Some((settle_yaml::load_file(&file)?, file)),
            None => None,
        };
        let allow_duplicates = include_allows.unwrap_or_else(|| {
            meta.as_ref()
                .and_then(|(doc, _)| doc.get("allow_duplicates"))
                .is_some_and(|n| matches!(n.to_value(), Value::Bool(true)))
        });
        let instance = format!(
            "{}|{}|{}|{}|{}|{}|{own}",
            path.display(),
            files.tasks,
            files.vars,
            files.defaults,
            files.handlers,
            Value::Object(params.clone()),
        );
        if self.chain.contains(&instance) {
            return Err(scope.error(
                at,
                None,
                format!(
                    "A recursion loop was detected with the roles specified ({name}). Make sure \
                     child roles do not have dependencies on parent roles"
                ),
            ));
        }
        let first_use = self.seen.insert(instance.clone());
        // A role sees the parameters of the roles that depend on or include it, under its own.
        let mut inherited_params = scope
            .role
            .as_ref()
            .map(|r| (*r.params).clone())
            .unwrap_or_default();
        let own_params = params.clone();
        inherited_params.extend(params);
        let parents = match included_by {
            Some(parent) => std::iter::once(parent.clone())
                .chain(parent.parents.iter().cloned())
                .collect(),
            None => Vec::new(),
        };
        let role = Arc::new(Role {
            name: name.to_string(),
            path: path.clone(),
            defaults: Arc::new(read_vars("defaults", &files.defaults)?),
            vars: Arc::new(read_vars("vars", &files.vars)?),
            params: Arc::new(inherited_params),
            instance: instance.clone(),
            allow_duplicates,
            dependency,
            public,
            parents,
            dep_chain: scope
                .role
                .iter()
                .flat_map(|r| r.dep_chain.iter().chain(std::iter::once(r)))
                .cloned()
                .collect(),
            dependencies: OnceLock::new(),
            task_layers: OnceLock::new(),
        });
        self.chain.push(instance);
        let loaded = self.load_role_files(
            &role,
            files,
            scope,
            keywords,
            at,
            (meta, &own_params),
            first_use,
        );
        self.chain.pop();
        let (role_tasks, role_handlers) = loaded?;
        tasks.extend(role_tasks);
        handlers.extend(role_handlers);
        Ok(())
    }

    /// A role's dependencies, tasks (with the implicit `role_complete` step after them) and
    /// handlers (`with_handlers`: the first use of this instance).
    #[allow(clippy::too_many_arguments)]
    fn load_role_files(
        &mut self,
        role: &Arc<Role>,
        files: &RoleFiles,
        scope: &Scope,
        keywords: &Keywords,
        at: &Node,
        (meta, own_params): (Option<(Node, PathBuf)>, &Vars),
        with_handlers: bool,
    ) -> Result<(Vec<TaskNode>, Vec<Task>), PlaybookError> {
        let (name, path, tasks_from) = (&role.name, &role.path, files.tasks.as_str());
        // A role does not take the play's `collections`: it searches its own collection (when
        // it is in one), then those its `meta/main.yml` names.
        let mut own_keywords = keywords.clone();
        own_keywords.collections = Some(role_collections(
            path,
            meta.as_ref().and_then(|(doc, _)| doc.get("collections")),
        ));
        let keywords = &own_keywords;
        let (mut tasks, mut handlers) = (Vec::new(), Vec::new());
        let argument_specs = match files.validate {
            true => role_argument_specs(path, meta.as_ref().map(|(doc, _)| doc))?,
            false => None,
        };
        // Dependencies (meta/main.yml) run before the role, with the role's keywords.
        if let Some((meta, meta_file)) = meta {
            // Dependencies are found beside the role too, so its own path is the role here.
            let meta_scope = Scope {
                file: Arc::from(meta_file.as_path()),
                dir: path.join("meta"),
                play_dir: scope.play_dir.clone(),
                role: Some(role.clone()),
                role_handlers: scope.role_handlers.clone(),
                play_vars: scope.play_vars.clone(),
                handlers: Handlers::No,
            };
            let before = self.loaded.len();
            if let Some(deps) = meta.get("dependencies").and_then(Node::as_seq) {
                for dep in deps {
                    self.loading_dependency = true;
                    self.use_role(dep, &meta_scope, keywords, &mut tasks, &mut handlers)?;
                }
            }
            let _ = role.dependencies.set(self.loaded[before..].to_vec());
        }
        self.loaded.push(role.clone());
        let role_scope = |dir: &Path, file: &Path| Scope {
            file: Arc::from(file),
            dir: dir.to_path_buf(),
            play_dir: scope.play_dir.clone(),
            role: Some(role.clone()),
            role_handlers: scope.role_handlers.clone(),
            play_vars: scope.play_vars.clone(),
            handlers: Handlers::No,
        };
        // Ansible's implicit first task: the arguments checked against the entry point's spec.
        if let Some(spec) = argument_specs
            .as_ref()
            .and_then(|specs| specs.get(tasks_from))
            .filter(|spec| !spec.is_null())
        {
            tasks.push(TaskNode::Task(Arc::new(validation_task(
                role,
                tasks_from,
                spec,
                own_params,
                keywords,
                scope.location(at),
            ))));
        }
        let found = role_file(&path.join("tasks"), tasks_from, name);
        if let Some(file) = found.map_err(|e| scope.error(at, None, e))? {
            let doc = settle_yaml::load_file(&file)?;
            if !doc.is_null() {
                tasks.extend(parse_task_list(
                    &doc,
                    &role_scope(&path.join("tasks"), &file),
                    keywords,
                )?);
            }
        } else if tasks_from != "main" {
            return Err(scope.error(
                at,
                None,
                format!("the role {name:?} has no tasks/{tasks_from}.yml"),
            ));
        }
        tasks.push(TaskNode::Task(Arc::new(role_complete(
            role,
            scope.location(at),
        ))));
        if !with_handlers {
            return Ok((tasks, handlers));
        }
        let found = role_file(&path.join("handlers"), &files.handlers, name);
        if let Some(file) = found.map_err(|e| scope.error(at, None, e))? {
            let doc = settle_yaml::load_file(&file)?;
            if !doc.is_null() {
                let mut handler_keywords = keywords.clone();
                handler_keywords.when.clear();
                handlers.extend(parse_handlers(
                    &doc,
                    &role_scope(&path.join("handlers"), &file),
                    &handler_keywords,
                )?);
            }
        }
        Ok((tasks, handlers))
    }
}

/// A role's argument specs: the `argument_specs` of `meta/argument_specs.yml` (or `.yaml`),
/// else of `meta/main.yml`, as Ansible reads them. `None` when there are none.
fn role_argument_specs(
    path: &Path,
    meta: Option<&Node>,
) -> Result<Option<serde_json::Map<String, Value>>, PlaybookError> {
    let specs = match main_file(&path.join("meta"), "argument_specs") {
        Some(file) => settle_yaml::load_file(&file)?
            .get("argument_specs")
            .map(Node::to_value),
        None => meta
            .and_then(|m| m.get("argument_specs"))
            .map(Node::to_value),
    };
    Ok(match specs {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    })
}

/// The `validate_argument_spec` task Ansible puts first in a role whose entry point has a spec
/// (`Role._create_validation_task`): named after the entry point, tagged `always`.
fn validation_task(
    role: &Arc<Role>,
    entry_point: &str,
    spec: &Value,
    own_params: &Vars,
    keywords: &Keywords,
    location: Location,
) -> Task {
    let mut name = format!("Validating arguments against arg spec '{entry_point}'");
    if let Some(short) = spec.get("short_description") {
        name.push_str(" - ");
        name.push_str(&match short {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    let role_name = role
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| role.name.clone());
    let mut args = Vars::new();
    args.insert(
        "argument_spec".into(),
        spec.get("options")
            .filter(|o| !o.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
    );
    args.insert(
        "provided_arguments".into(),
        Value::Object(own_params.clone().into_iter().collect()),
    );
    args.insert(
        "validate_args_context".into(),
        serde_json::json!({
            "type": "role",
            "name": role_name,
            "argument_spec_name": entry_point,
            "path": absolute_path(&role.path).display().to_string(),
        }),
    );
    let mut keywords = keywords.clone();
    if !keywords.tags.iter().any(|t| t == "always") {
        keywords.tags.push("always".into());
    }
    Task {
        name: Some(name),
        module: "validate_argument_spec".into(),
        module_as_written: "ansible.builtin.validate_argument_spec".into(),
        args,
        keywords,
        location,
        role: Some(role.clone()),
        listen: Vec::new(),
        include: None,
        arg_origins: Default::default(),
    }
}

/// `path` from the root, without `.` steps (`./roles/b` read from the playbook's folder).
fn absolute_path(path: &Path) -> PathBuf {
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    full.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The implicit `meta: role_complete` after a role's tasks (see [`Task::is_role_complete`]).
fn role_complete(role: &Arc<Role>, location: Location) -> Task {
    let mut args = Vars::new();
    args.insert("_raw_params".into(), Value::String("role_complete".into()));
    Task {
        name: None,
        module: "meta".into(),
        module_as_written: "meta".into(),
        args,
        keywords: Keywords::default(),
        location,
        role: Some(role.clone()),
        listen: Vec::new(),
        include: None,
        arg_origins: Default::default(),
    }
}

/// An include's arguments as its registered result shows them (`include_args`): all but the
/// file it names and `apply`, which Ansible takes out as it reads the task.
fn include_args(args: &Vars) -> Vars {
    args.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "file" | "_raw_params" | "apply"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Ansible's words for a task file that is nowhere it looked (an import names the last place:
/// the playbook's folder), or that could not be read (`error`, in Python's words).
pub fn not_found_on_controller(path: &Path, error: Option<&std::io::Error>) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = path.display();
    let (errno, reason) = match error.and_then(|e| Some((e.raw_os_error()?, e.to_string()))) {
        Some((n, text)) => {
            let suffix = format!(" (os error {n})");
            (n, text.strip_suffix(&suffix).unwrap_or(&text).to_string())
        }
        None => (2, "No such file or directory".to_string()),
    };
    format!(
        "Could not find or access '{path}' on the Ansible Controller: Unable to retrieve file \
         contents.\nCould not find or access '{path}' on the Ansible Controller.\nIf you are \
         using a module and expect the file to exist on the remote, see the remote_src option: \
         [Errno {errno}] {reason}: '{path}'"
    )
}

/// A role's file (`tasks_from: x` and the like), refused when it resolves outside the role's
/// folder for it (`../`, an absolute path), with Ansible's words.
fn role_file(dir: &Path, stem: &str, role: &str) -> Result<Option<PathBuf>, String> {
    let Some(found) = main_file(dir, stem) else {
        return Ok(None);
    };
    if !lexical(&found).starts_with(lexical(dir)) {
        return Err(format!(
            "Failed loading '{}' for role ({role}) as it is not inside the expected role path: '{}'",
            found.display(),
            dir.display()
        ));
    }
    Ok(Some(found))
}

/// `path` with `.` and `a/..` resolved by name only (symbolic links are not followed).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn main_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [
        format!("{stem}.yml"),
        format!("{stem}.yaml"),
        stem.to_string(),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.is_file())
}

/// The folders a role is looked for in, in Ansible's order: the playbook's `roles/`, the roles
/// path, the folder of the role that names it (its siblings), the playbook's own folder.
fn role_search_paths(scope: &Scope) -> Vec<PathBuf> {
    let mut paths = vec![scope.play_dir.join("roles")];
    paths.extend(roles_path());
    if let Some(parent) = scope.role.as_ref().and_then(|r| r.path.parent()) {
        paths.push(parent.to_path_buf());
    }
    paths.push(scope.play_dir.clone());
    paths
}

/// Ansible's words for a role none of [`role_search_paths`] holds.
fn role_not_found(name: &str, scope: &Scope) -> String {
    let searched: Vec<String> = role_search_paths(scope)
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .map(|p| lexical(&p))
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect();
    format!("the role '{name}' was not found in {}", searched.join(":"))
}

fn find_role(name: &str, scope: &Scope) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = role_search_paths(scope)
        .into_iter()
        .map(|p| p.join(name))
        .collect();
    candidates.extend(collection_role_dirs(name, &scope.play_dir));
    // A role is a folder with any of the role folders: one with only vars/ is a role too.
    candidates.into_iter().find(|p| {
        ["tasks", "meta", "handlers", "vars", "defaults"]
            .iter()
            .any(|d| p.join(d).is_dir())
    })
}

/// The roles path: `SETTLE_ROLES_PATH`, then `ANSIBLE_ROLES_PATH` (which ansible.cfg's
/// `roles_path` becomes); when neither is set, Ansible's default, where `ansible-galaxy install` puts roles:
/// `~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles`. `~` is the home folder.
fn roles_path() -> Vec<PathBuf> {
    let set: Vec<String> = ["SETTLE_ROLES_PATH", "ANSIBLE_ROLES_PATH"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .collect();
    let paths = if set.is_empty() {
        "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles".to_string()
    } else {
        set.join(":")
    };
    let home = std::env::var("HOME").unwrap_or_default();
    paths
        .split(':')
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                PathBuf::from(format!("{home}{rest}"))
            }
            _ => PathBuf::from(p),
        })
        .collect()
}

/// The collections a role searches: its own (a role in
/// `ansible_collections/NS/COLL/roles/NAME`), then those of its `meta/main.yml`.
fn role_collections(path: &Path, meta: Option<&Node>) -> Vec<String> {
    let mut list = Vec::new();
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    if let [.., "ansible_collections", namespace, collection, "roles", _] = parts[..] {
        list.push(format!("{namespace}.{collection}"));
    } else if let Some(default) = DEFAULT_COLLECTION.with(|d| d.borrow().clone()) {
        list.push(default);
    }
    for name in meta.map(|n| list_of_strings(n, false)).unwrap_or_default() {
        if !list.contains(&name) {
            list.push(name);
        }
    }
    list
}

/// An unqualified module name looked for in a `collections` list, as Ansible does: the first
/// installed collection with that module or action plugin gives its full name. `None` leaves
/// the name as it is (`ansible.builtin` and `ansible.legacy` are always searched last).
fn in_collections(module: &str, list: &[String], play_dir: &Path) -> Option<String> {
    if module.is_empty() || module.contains('.') || module.contains("{{") {
        return None;
    }
    list.iter()
        .filter(|c| !matches!(c.as_str(), "ansible.builtin" | "ansible.legacy"))
        .find_map(|collection| {
            let parts: Vec<&str> = collection.split('.').collect();
            let [namespace, name] = parts[..] else {
                warn_once(&format!(
                    "Error loading plugin '{module}': {collection}.{module} is not a valid \
                     collection reference"
                ));
                return None;
            };
            if !parts.iter().all(|p| is_identifier(p)) {
                warn_once(&format!(
                    "Error loading plugin '{module}': {collection}.{module} is not a valid \
                     collection reference"
                ));
                return None;
            }
            let has = |root: &Path| {
                let base = root.join(namespace).join(name);
                ["modules", "action"].iter().any(|kind| {
                    let dir = base.join("plugins").join(kind);
                    dir.join(format!("{module}.py")).is_file()
                        || (*kind == "modules" && dir.join(module).is_file())
                }) || collection_routes(&base, module)
            };
            let found = collection_roots(play_dir).iter().any(|root| has(root))
                || installed_roots().iter().any(|root| has(root));
            found.then(|| format!("{collection}.{module}"))
        })
}

thread_local! {
    /// The collection the playbook being read lives in (`ansible_collections/NS/COLL/...`
    /// under a collection root), which Ansible searches first: its "default collection".
    static DEFAULT_COLLECTION: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// The collection a playbook lives in, as Ansible's `_get_collection_name_from_path` finds
/// it: the path holds one `ansible_collections` folder, followed by a namespace and a name,
/// and that collection, looked up in the collection roots, is this very folder (a copy of
/// the same name found first elsewhere masks it).
fn playbook_collection(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).ok()?;
    let parts: Vec<&str> = absolute
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    if parts
        .iter()
        .filter(|p| **p == "ansible_collections")
        .count()
        != 1
    {
        return None;
    }
    let at = parts.iter().position(|p| *p == "ansible_collections")?;
    let (namespace, name) = (parts.get(at + 1)?, parts.get(at + 2)?);
    let mut here = PathBuf::from("/");
    here.extend(&parts[1..=at + 2]);
    let play_dir = absolute.parent()?;
    let first = collection_roots(play_dir)
        .into_iter()
        .chain(installed_roots().iter().cloned())
        .map(|root| root.join(namespace).join(name))
        .find(|dir| dir.is_dir())?;
    let same = |p: &Path| p.canonicalize().ok();
    (same(&first)? == same(&here)?).then(|| format!("{namespace}.{name}"))
}

/// A task's `collections` search with the playbook's default collection put first, as
/// Ansible's `_ensure_default_collection` does.
fn with_default_collection(list: Option<Vec<String>>) -> Option<Vec<String>> {
    let Some(default) = DEFAULT_COLLECTION.with(|d| d.borrow().clone()) else {
        return list;
    };
    let mut list = list.unwrap_or_default();
    if !list.contains(&default) {
        list.insert(0, default);
    }
    Some(list)
}

/// Ansible's warning for a `collections` entry that is a template: the keyword is static, so
/// the entry is used as written (and names no collection). The list as Ansible shows it, with
/// its default collection first and `ansible.legacy` last.
fn warn_templated_collections(list: &[String]) {
    if !list.iter().any(|c| c.contains("{{") || c.contains("{%")) {
        return;
    }
    let mut shown = with_default_collection(Some(list.to_vec())).unwrap_or_default();
    if !shown
        .iter()
        .any(|c| c == "ansible.builtin" || c == "ansible.legacy")
    {
        shown.push("ansible.legacy".into());
    }
    let items: Vec<String> = shown.iter().map(|c| python_str_repr(c)).collect();
    warn_once(&format!(
        "\"collections\" is not templatable, but we found: [{}], it will not be templated and \
         will be used \"as is\".",
        items.join(", ")
    ));
}

/// Python's `repr` of a string, as Ansible's messages show lists of them.
fn python_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A warning printed once per run (Ansible's display says a thing once).
fn warn_once(message: &str) {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> =
        std::sync::OnceLock::new();
    if let Ok(mut seen) = SEEN.get_or_init(Default::default).lock()
        && !seen.insert(message.to_string())
    {
        return;
    }
    eprintln!("[WARNING]: {message}");
}

/// Whether a collection's `meta/runtime.yml` routes this module or action name
/// (`plugin_routing.modules.NAME` or `plugin_routing.action.NAME`): Ansible finds the name in
/// the collection and follows the routing from there.
pub fn collection_routes(collection: &Path, name: &str) -> bool {
    let file = collection.join("meta/runtime.yml");
    if !file.is_file() {
        return false;
    }
    let Ok(doc) = settle_yaml::load_file(&file) else {
        return false;
    };
    let routing = doc.get("plugin_routing");
    ["modules", "action"].iter().any(|kind| {
        routing
            .and_then(|r| r.get(kind))
            .and_then(|k| k.get(name))
            .is_some()
    })
}

/// Where the collections installed with ansible-core are: the folders of its Python's path
/// that hold `ansible_collections/` (`pip install ansible` puts them in its site-packages).
/// Only the engine knows that Python: the program says how to ask, once.
static INSTALLED_ROOTS: std::sync::OnceLock<fn() -> Vec<PathBuf>> = std::sync::OnceLock::new();

/// Tells the parser where ansible-core's installed collections are ([`INSTALLED_ROOTS`]),
/// asked only when a collection is not in the playbook's folder or the collections path.
pub fn set_installed_collection_roots(roots: fn() -> Vec<PathBuf>) {
    let _ = INSTALLED_ROOTS.set(roots);
}

/// The `ansible_collections` folders of ansible-core's Python path, asked once.
fn installed_roots() -> &'static [PathBuf] {
    static ROOTS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        INSTALLED_ROOTS
            .get()
            .map(|roots| roots())
            .unwrap_or_default()
            .into_iter()
            .map(|root| root.join("ansible_collections"))
            .collect()
    })
}

/// The `ansible_collections` folders: the playbook's `collections/`, then
/// `ANSIBLE_COLLECTIONS_PATH` (default `~/.ansible/collections:/usr/share/ansible/collections`).
/// ansible-core's own ([`installed_roots`]) come after these, looked at only when needed.
fn collection_roots(play_dir: &Path) -> Vec<PathBuf> {
    let configured = std::env::var("ANSIBLE_COLLECTIONS_PATH")
        .or_else(|_| std::env::var("ANSIBLE_COLLECTIONS_PATHS"))
        .unwrap_or_else(|_| "~/.ansible/collections:/usr/share/ansible/collections".into());
    let home = std::env::var("HOME").unwrap_or_default();
    std::iter::once(play_dir.join("collections"))
        .chain(
            configured
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d.replacen('~', &home, usize::from(d.starts_with('~'))))),
        )
        .map(|root| match root.file_name().and_then(|n| n.to_str()) {
            Some("ansible_collections") => root,
            _ => root.join("ansible_collections"),
        })
        .collect()
}

/// Where a role named by its collection (`namespace.collection.role`) can be: the playbook's
/// `collections/` folder, then `ANSIBLE_COLLECTIONS_PATH` (default `~/.ansible/collections` and
/// `/usr/share/ansible/collections`), each holding `ansible_collections/NS/COLL/roles/ROLE`.
fn collection_role_dirs(name: &str, play_dir: &Path) -> Vec<PathBuf> {
    let parts: Vec<&str> = name.split('.').collect();
    let [namespace, collection, role] = parts[..] else {
        return Vec::new();
    };
    let configured = std::env::var("ANSIBLE_COLLECTIONS_PATH")
        .or_else(|_| std::env::var("ANSIBLE_COLLECTIONS_PATHS"))
        .unwrap_or_else(|_| "~/.ansible/collections:/usr/share/ansible/collections".into());
    let home = std::env::var("HOME").unwrap_or_default();
    let roots = std::iter::once(play_dir.join("collections")).chain(
        configured
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d.replacen('~', &home, usize::from(d.starts_with('~'))))),
    );
    roots
        .map(|root| match root.file_name().and_then(|n| n.to_str()) {
            Some("ansible_collections") => root,
            _ => root.join("ansible_collections"),
        })
        .chain(installed_roots().iter().cloned())
        .map(|root| {
            root.join(namespace)
                .join(collection)
                .join("roles")
                .join(role)
        })
        .collect()
}

#[cfg(test)]
mod tests;
