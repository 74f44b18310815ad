//! Ansible's lookups: `lookup()`, `query()`/`q()` in templates, and [`query_in_scope`] for
//! `with_<lookup>` loops.
//!
//! Each lookup behaves as ansible-core 2.19's: the same terms and options, the same results and
//! the same error texts. What `lookup()` hands back follows Ansible's rule: with `wantlist=True`
//! (or `query`) the list as is; otherwise an empty list stays a list, one item is that item, and
//! several items are joined with commas when all are strings.
//!
//! Relative paths are searched as Ansible searches them: in every folder of
//! `ansible_search_path` when it is defined, else in `role_path` (if any) or `playbook_dir`;
//! in each, first `<dir>/files/<name>` (`templates/` for the `template` lookup) then
//! `<dir>/<name>`, and `playbook_dir` last of all. Files read by lookups are cached for the run.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Kwargs, Object, Rest, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, Value as Mj};
use serde_json::{Map, Value, json};
use settle_modules::pyre::{Flags, Pattern};

use crate::template::{Scope, json_bool, python_repr, templar};

/// The most items one lookup may produce (a `with_sequence` up to a billion would fill memory).
const MAX_ITEMS: usize = 1_000_000;
/// The longest password the `password` lookup makes.
const MAX_PASSWORD_LENGTH: usize = 100_000;

/// Adds `lookup`, `query` and `q` to the environment.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function(
        "lookup",
        |state: &State, name: String, args: Rest<ValueOrKwargs>| call(state, &name, args, false),
    );
    env.add_function(
        "query",
        |state: &State, name: String, args: Rest<ValueOrKwargs>| call(state, &name, args, true),
    );
    env.add_function(
        "q",
        |state: &State, name: String, args: Rest<ValueOrKwargs>| call(state, &name, args, true),
    );
    env.add_function("undef", crate::template::undef);
}

/// Runs a lookup for a `with_<name>` loop: `terms` are already rendered. A string becomes a
/// one-element list (stripped), a list stays as it is, anything else is wrapped in a list, as
/// Ansible's task executor does. The result is always the list of loop items.
#[cfg(test)]
pub fn query_in_scope(name: &str, terms: Value, scope: &Arc<Scope>) -> Result<Vec<Value>, String> {
    query_for_action(name, terms, scope, "")
}

/// [`query_in_scope`] for a task's loop: the task's action as written picks the folder that
/// `first_found` looks in, as Ansible's task executor sets it (`templates` for an action whose
/// name holds "template", `vars` for "var", else `files`).
pub fn query_for_action(
    name: &str,
    terms: Value,
    scope: &Arc<Scope>,
    action: &str,
) -> Result<Vec<Value>, String> {
    let subdir = ["template", "var", "file"]
        .into_iter()
        .find(|s| action.contains(s))
        .unwrap_or("file");
    let terms = match terms {
        Value::String(s) => vec![Value::String(s.trim().to_string())],
        Value::Array(items) => items,
        other => vec![other],
    };
    let ctx = Ctx {
        vars: scope,
        as_with: Some(match subdir {
            "template" => "templates",
            "var" => "vars",
            _ => "files",
        }),
    };
    run(name, terms, &Map::new(), &ctx).map_err(|e| e.message(name))
}

// ---------------------------------------------------------------------------------------------
// Variables

/// Where a lookup reads variables: a task's [`Scope`] or the template being rendered.
pub(crate) trait LookupVars {
    /// A variable, rendered; `Ok(None)` when it is not defined.
    fn var(&self, name: &str) -> Result<Option<Value>, String>;
    /// Every variable name visible.
    fn var_names(&self) -> Vec<String>;
    /// The scope itself, for the `template` lookup.
    fn scope(&self) -> Option<Arc<Scope>>;
}

fn scope_var(scope: &Arc<Scope>, name: &str) -> Result<Option<Value>, String> {
    // Through the object interface: cached, and a variable that refers to itself is caught.
    match scope.get_value(&Mj::from(name)) {
        Some(v) if v.is_undefined() => Ok(None),
        // A variable whose template failed otherwise than undefined: its error.
        Some(v) if v.kind() == minijinja::value::ValueKind::Invalid => {
            let error = crate::jinja_source::invalid_error(v);
            Err(error
                .detail()
                .map_or_else(|| error.to_string(), str::to_string))
        }
        Some(v) => serde_json::to_value(&v)
            .map(Some)
            .map_err(|e| format!("cannot use the variable '{name}': {e}")),
        None if scope.raw(name).is_some() => Err(format!("could not render variable '{name}'")),
        None => Ok(None),
    }
}

impl LookupVars for Arc<Scope> {
    fn var(&self, name: &str) -> Result<Option<Value>, String> {
        scope_var(self, name)
    }
    fn var_names(&self) -> Vec<String> {
        self.names()
    }
    fn scope(&self) -> Option<Arc<Scope>> {
        Some(self.clone())
    }
}

impl LookupVars for State<'_, '_> {
    fn var(&self, name: &str) -> Result<Option<Value>, String> {
        if let Some(scope) = LookupVars::scope(self) {
            return scope_var(&scope, name);
        }
        match self.lookup(name) {
            None => Ok(None),
            Some(v) if v.is_undefined() => Ok(None),
            Some(v) => serde_json::to_value(&v)
                .map(Some)
                .map_err(|e| format!("cannot use the variable '{name}': {e}")),
        }
    }
    fn var_names(&self) -> Vec<String> {
        match LookupVars::scope(self) {
            Some(scope) => scope.names(),
            None => self
                .known_variables()
                .into_iter()
                .map(|n| n.to_string())
                .collect(),
        }
    }
    fn scope(&self) -> Option<Arc<Scope>> {
        self.lookup("vars")
            .and_then(|v| v.downcast_object::<Scope>())
    }
}

/// What a lookup runs with.
struct Ctx<'a> {
    vars: &'a dyn LookupVars,
    /// Run for a `with_` loop rather than from a template: the folder `first_found` looks in.
    as_with: Option<&'static str>,
}

impl Ctx<'_> {
    fn var(&self, name: &str) -> Result<Option<Value>, Fail> {
        self.vars.var(name).map_err(Fail::Plain)
    }

    /// `playbook_dir`, or the current folder: Ansible's loader base folder.
    fn basedir(&self) -> PathBuf {
        match self.var("playbook_dir") {
            Ok(Some(Value::String(dir))) => PathBuf::from(dir),
            _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }

    /// The folders relative names are searched in, and whether the task is in a role.
    fn search_path(&self) -> Result<(Vec<String>, bool), Fail> {
        let role_path = self.var("role_path")?;
        let is_role = role_path.is_some();
        if let Some(paths) = self.var("ansible_search_path")? {
            let list = match paths {
                Value::Array(items) => items.iter().map(pystr).collect(),
                Value::String(s) => vec![s],
                other => vec![pystr(&other)],
            };
            return Ok((list, is_role));
        }
        let dir = match role_path {
            Some(p) => pystr(&p),
            None => self.basedir().display().to_string(),
        };
        Ok((vec![dir], is_role))
    }

    /// Ansible's `find_file_in_search_path`: an absolute (or `~`) name as it is, else the first
    /// of `<dir>/<subdir>/<name>`, `<dir>/<name>` for each folder, then the base folder.
    fn find(&self, subdir: Option<&str>, needle: &str) -> Result<Option<PathBuf>, Fail> {
        if needle.starts_with('~') || needle.starts_with('/') {
            let path = unfrack(&expand_home(needle));
            return Ok(path.exists().then_some(path));
        }
        let (paths, is_role) = self.search_path()?;
        let first_part = needle.split('/').next().unwrap_or("");
        let use_subdir = |dir: &Path, out: &mut Vec<PathBuf>| {
            if let Some(sub) = subdir
                && first_part != sub
            {
                out.push(dir.join(sub).join(needle));
            }
        };
        let mut candidates = Vec::new();
        for path in &paths {
            let upath = unfrack(&expand_home(path));
            if let Some(parent) = upath.parent()
                && is_role
                && parent.ends_with("tasks")
            {
                if let Some(role) = parent.parent() {
                    use_subdir(role, &mut candidates);
                }
                candidates.push(parent.join(needle));
            }
            use_subdir(&upath, &mut candidates);
            candidates.push(upath.join(needle));
        }
        let base = self.basedir();
        use_subdir(&base, &mut candidates);
        candidates.push(base.join(needle));
        Ok(candidates.into_iter().find(|p| p.exists()))
    }
}

fn expand_home(path: &str) -> PathBuf {
    if (path == "~" || path.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(path.trim_start_matches('~').trim_start_matches('/'));
    }
    PathBuf::from(path)
}

/// Absolute and normalised without following links (`unfrackpath(follow=False)`).
fn unfrack(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Calling from templates

/// A lookup that did not work.
#[derive(Debug)]
enum Fail {
    /// The plugin failed: shown as "The lookup plugin 'x' failed: …".
    Plugin(String),
    /// An error shown as it is.
    Plain(String),
    /// The result is undefined (a missing variable without `default`).
    Undefined(String),
    /// No lookup of that name.
    NotFound,
}

impl Fail {
    fn message(&self, name: &str) -> String {
        match self {
            Fail::Plugin(m) => format!("The lookup plugin '{name}' failed: {m}"),
            Fail::Plain(m) | Fail::Undefined(m) => m.clone(),
            Fail::NotFound => format!("The lookup plugin '{name}' was not found."),
        }
    }
}

fn plugin(msg: impl Into<String>) -> Fail {
    Fail::Plugin(msg.into())
}

fn call(
    state: &State,
    name: &str,
    args: Rest<ValueOrKwargs>,
    force_list: bool,
) -> Result<Mj, Error> {
    let mut terms = Vec::new();
    let mut undefined_terms = Vec::new();
    let mut kwargs = Map::new();
    // An undefined `default=`: why it is undefined, when `undef('hint')` said.
    let mut undefined_default: Option<Option<String>> = None;
    for arg in args.0 {
        let value = arg.into_value();
        if value.is_kwargs() {
            let kw = Kwargs::try_from(value)?;
            let keys: Vec<String> = kw.args().map(str::to_string).collect();
            for key in keys {
                let v: Mj = kw.get(&key)?;
                if v.is_undefined() {
                    if key == "default" {
                        undefined_default = Some(crate::template::undefined_argument_reason());
                        continue;
                    }
                    return Ok(Mj::UNDEFINED);
                }
                kwargs.insert(key, to_json(&v)?);
            }
        } else {
            // Ansible hands the first undefined argument back instead of running the lookup,
            // unless the plugin takes Ansible's markers: a Python one says (None stands in).
            if value.is_undefined() {
                if native(name) {
                    return Ok(Mj::UNDEFINED);
                }
                undefined_terms.push(terms.len());
                terms.push(Value::Null);
                continue;
            }
            terms.push(to_json(&value)?);
        }
    }
    let wantlist = force_list || kwargs.remove("wantlist").is_some_and(|v| json_bool(&v));
    let errors = kwargs
        .remove("errors")
        .map(|v| pystr(&v))
        .unwrap_or_else(|| "strict".into());
    if let Some(reason) = undefined_default {
        kwargs.insert(
            UNDEFINED_DEFAULT.into(),
            reason.map_or(Value::Null, Value::String),
        );
    }
    let ctx = Ctx {
        vars: state,
        as_with: None,
    };
    let result = if undefined_terms.is_empty() {
        run(name, terms, &kwargs, &ctx)
    } else {
        let reason = crate::template::undefined_argument_reason();
        python(name, terms, &undefined_terms, &kwargs, &ctx).map_err(|fail| match fail {
            Fail::Undefined(_) => Fail::Undefined(reason.unwrap_or_default()),
            other => other,
        })
    };
    match result {
        Ok(items) => Ok(shape(items, wantlist)),
        Err(Fail::Undefined(reason)) => {
            crate::template::note_undefined_reason(reason);
            Ok(Mj::UNDEFINED)
        }
        Err(fail @ (Fail::Plugin(_) | Fail::Plain(_)))
            if errors == "warn" || errors == "ignore" =>
        {
            if errors == "warn" {
                let detail = match &fail {
                    Fail::Plugin(m) | Fail::Plain(m) => m.clone(),
                    _ => String::new(),
                };
                eprintln!(
                    "[WARNING]: An error occurred while running the lookup plugin '{name}': {detail}"
                );
            }
            Ok(if wantlist {
                Mj::from(Vec::<Mj>::new())
            } else {
                Mj::from(())
            })
        }
        // Ansible's message as it is, without minijinja's "invalid operation".
        Err(fail) => Err(crate::template::plain_error(fail.message(name))),
    }
}

/// A kwarg marking `default=<undefined>` (env's way of failing on a missing variable).
const UNDEFINED_DEFAULT: &str = "\u{0}undefined_default";

fn to_json(value: &Mj) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// Ansible's shaping of a lookup result when not `wantlist`.
fn shape(items: Vec<Value>, wantlist: bool) -> Mj {
    if wantlist || items.is_empty() {
        return Mj::from(minijinja::value::Serde(&items));
    }
    if items.len() == 1 {
        return Mj::from(minijinja::value::Serde(&items[0]));
    }
    if items.iter().all(Value::is_string) {
        let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
        return Mj::from(joined.join(","));
    }
    Mj::from(minijinja::value::Serde(&items))
}

/// Python's `str()` of a value: strings as they are, the rest as Python prints them.
fn pystr(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(&Mj::from(minijinja::value::Serde(other)), true),
    }
}

/// Python's `repr()`.
fn pyrepr(value: &Value) -> String {
    python_repr(&Mj::from(minijinja::value::Serde(value)), false)
}

/// Iterating a value as Python would: a list's items, a dict's keys, a string's characters.
fn py_iter(value: &Value) -> Result<Vec<Value>, Fail> {
    match value {
        Value::Array(items) => Ok(items.clone()),
        Value::Object(map) => Ok(map.keys().map(|k| Value::String(k.clone())).collect()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        other => Err(plugin(format!(
            "'{}' object is not iterable",
            settle_yaml::python_type(other)
        ))),
    }
}

/// `LookupBase._flatten`: lists are spread one level, anything else is kept.
fn flatten_once(terms: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for term in terms {
        match term {
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The lookups

fn run(
    name: &str,
    terms: Vec<Value>,
    opts: &Map<String, Value>,
    ctx: &Ctx,
) -> Result<Vec<Value>, Fail> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    let items = match short {
        "file" => file(&terms, opts, ctx),
        "env" => env(&terms, opts),
        "pipe" => pipe(&terms, ctx),
        "lines" => lines(&terms, ctx),
        "template" => template(&terms, opts, ctx),
        "vars" => vars(&terms, opts, ctx),
        "varnames" => varnames(&terms, ctx),
        "fileglob" => fileglob(&terms, ctx),
        "first_found" => first_found(&terms, opts, ctx),
        "items" => Ok(flatten_once(&terms)),
        "list" => Ok(terms),
        "dict" => dict(&terms),
        "indexed_items" => Ok(flatten_once(&terms)
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!([i, v]))
            .collect()),
        "sequence" => sequence(&terms, opts),
        "subelements" => subelements(&terms),
        "together" => together(&terms),
        "nested" => nested(&terms),
        "random_choice" => random_choice(terms),
        "password" => password(&terms, opts, ctx),
        "ini" => ini(&terms, opts, ctx),
        "csvfile" => csvfile(&terms, opts, ctx),
        "inventory_hostnames" => inventory_hostnames(&terms, ctx),
        "config" => config(&terms, opts, ctx),
        "unvault" => unvault(&terms, ctx),
        _ => python(name, terms, &[], opts, ctx),
    }?;
    if items.len() > MAX_ITEMS {
        return Err(plugin(format!(
            "the lookup gave {} items; settle stops at {MAX_ITEMS}",
            items.len()
        )));
    }
    Ok(items)
}

/// The lookups settle has itself.
const NATIVE: &[&str] = &[
    "file",
    "env",
    "pipe",
    "lines",
    "template",
    "vars",
    "varnames",
    "fileglob",
    "first_found",
    "items",
    "list",
    "dict",
    "indexed_items",
    "sequence",
    "subelements",
    "together",
    "nested",
    "random_choice",
    "password",
    "ini",
    "csvfile",
    "inventory_hostnames",
    "config",
    "unvault",
];

fn native(name: &str) -> bool {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    NATIVE.contains(&short)
}

/// A lookup settle lacks, asked of ansible-core's Python plugins (`lookup_plugins/`,
/// collections): see [`crate::python_plugins`].
fn python(
    name: &str,
    terms: Vec<Value>,
    undefined: &[usize],
    opts: &Map<String, Value>,
    ctx: &Ctx,
) -> Result<Vec<Value>, Fail> {
    use crate::python_plugins::Lookup;
    let mut kwargs = opts.clone();
    kwargs.remove(UNDEFINED_DEFAULT);
    let var = |n: &str| ctx.vars.var(n).ok().flatten();
    let names = || ctx.vars.var_names();
    match crate::python_plugins::lookup(name, terms, undefined, &kwargs, &var, &names) {
        Lookup::Items(items) => Ok(items),
        Lookup::NotFound => Err(Fail::NotFound),
        Lookup::Undefined => Err(Fail::Undefined(String::new())),
        Lookup::Failed(message) => Err(Fail::Plain(message)),
    }
}

fn opt<'a>(opts: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    opts.get(name)
}

fn opt_bool(opts: &Map<String, Value>, name: &str, default: bool) -> bool {
    opt(opts, name).map_or(default, json_bool)
}

fn opt_str(opts: &Map<String, Value>, name: &str, default: &str) -> String {
    match opt(opts, name) {
        Some(Value::Null) | None => default.to_string(),
        Some(v) => pystr(v),
    }
}

/// An option Ansible types as `integer`.
fn opt_int(plugin_name: &str, name: &str, value: &Value) -> Result<i64, Fail> {
    let bad = || {
        plugin(format!(
            "Config '{name}' for '{plugin_name}' lookup plugin from 'Direct' has an invalid value: Invalid value provided for 'int': {}",
            pyrepr(value)
        ))
    };
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(bad),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

// --- files -----------------------------------------------------------------------------------

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<str>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<str>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// A controller file's text, read once per run; a vaulted file decrypted with the run's secrets.
fn read_text(path: &Path) -> Result<Arc<str>, String> {
    if let Ok(cache) = cache().lock()
        && let Some(text) = cache.get(path)
    {
        return Ok(text.clone());
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("could not read '{}': {e}", path.display()))?;
    let bytes = if bytes.starts_with(b"$ANSIBLE_VAULT;") {
        let text = String::from_utf8_lossy(&bytes);
        settle_vault::decrypt_bytes(&text)
            .map_err(|e| format!("could not decrypt '{}': {e}", path.display()))?
    } else {
        bytes
    };
    let text: Arc<str> = String::from_utf8(bytes)
        .map_err(|_| format!("'{}' is not UTF-8 text", path.display()))?
        .into();
    if let Ok(mut cache) = cache().lock() {
        cache.insert(path.to_path_buf(), text.clone());
    }
    Ok(text)
}

/// A controller file's text in a Python codec: UTF-8 (as [`read_text`]), or the Latin ones
/// (`latin-1`, `iso8859-1`, `iso8859-15`, `cp1252`'s Latin-1 part), one char per byte.
fn read_text_in(path: &Path, encoding: &str) -> Result<Arc<str>, String> {
    let codec = encoding.to_ascii_lowercase().replace(['-', '_'], "");
    let latin15 = matches!(codec.as_str(), "iso885915" | "latin9" | "l9");
    if !(latin15
        || matches!(
            codec.as_str(),
            "iso88591" | "latin1" | "latin" | "l1" | "8859"
        ))
    {
        return read_text(path);
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("could not read '{}': {e}", path.display()))?;
    Ok(bytes
        .iter()
        .map(|&b| match (latin15, b) {
            (true, 0xA4) => '€',
            (true, 0xA6) => 'Š',
            (true, 0xA8) => 'š',
            (true, 0xB4) => 'Ž',
            (true, 0xB8) => 'ž',
            (true, 0xBC) => 'Œ',
            (true, 0xBD) => 'œ',
            (true, 0xBE) => 'Ÿ',
            _ => char::from(b),
        })
        .collect::<String>()
        .into())
}

fn file(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let lstrip = opt_bool(opts, "lstrip", false);
    let rstrip = opt_bool(opts, "rstrip", true);
    let mut out = Vec::new();
    for term in terms {
        let name = pystr(term);
        let unable = |detail: String| {
            plugin(format!(
                "Unable to access the file {}: {detail}",
                pyrepr(term)
            ))
        };
        let path = ctx
            .find(Some("files"), &name)?
            .ok_or_else(|| unable("File not found. Use -vvvvv to see paths searched.".into()))?;
        let text = read_text(&path).map_err(unable)?;
        let mut contents: &str = &text;
        if lstrip {
            contents = contents.trim_start();
        }
        if rstrip {
            contents = contents.trim_end();
        }
        out.push(Value::String(contents.to_string()));
    }
    Ok(out)
}

fn unvault(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::new();
    for term in terms {
        let name = pystr(term);
        let path = ctx
            .find(Some("files"), &name)?
            .ok_or_else(|| plugin(format!("Unable to find file matching \"{name}\" ")))?;
        out.push(Value::String(read_text(&path).map_err(plugin)?.to_string()));
    }
    Ok(out)
}

fn fileglob(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::new();
    for term in terms {
        let term = pystr(term);
        let (dir, file_part) = match term.rfind('/') {
            Some(i) => (Some(&term[..i.max(1)]), &term[i + 1..]),
            None => (None, term.as_str()),
        };
        let mut found: Vec<PathBuf> = Vec::new();
        match dir {
            Some(dir) => {
                let dir = if term.starts_with('/') && dir.is_empty() {
                    "/"
                } else {
                    dir
                };
                match ctx.find(Some("files"), dir)? {
                    Some(p) => found.push(p),
                    None => eprintln!(
                        "[WARNING]: Unable to find '{dir}' in expected paths (use -vvvvv to see paths)"
                    ),
                }
            }
            None => {
                let (paths, _) = ctx.search_path()?;
                for p in paths {
                    found.push(Path::new(&p).join("files"));
                    found.push(PathBuf::from(p));
                }
            }
        }
        for dir in found {
            let pattern = format!(
                "{}/{}",
                glob::Pattern::escape(&dir.display().to_string()),
                file_part
            );
            let Ok(matches) = glob::glob(&pattern) else {
                continue;
            };
            let files: Vec<Value> = matches
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .map(|p| Value::String(p.display().to_string()))
                .collect();
            if !files.is_empty() {
                out.extend(files);
                break;
            }
        }
    }
    Ok(out)
}

/// Splits a string on any of `seps` (first_found's old habit of `a.txt,b.txt`).
fn split_on(value: &Value, seps: &[char]) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(|v| split_on(v, seps)).collect(),
        Value::Null => Vec::new(),
        other => pystr(other).split(seps).map(str::to_string).collect(),
    }
}

fn first_found(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    // In a with_ loop the folder searched is the task's kind of file; from a template, none.
    let subdir = ctx.as_with;
    let mut skip = opt_bool(opts, "skip", false);
    let global_files = opt(opts, "files")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let global_paths = opt(opts, "paths")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let terms: Vec<Value> = if terms.is_empty() {
        vec![global_files.clone()]
    } else {
        terms.to_vec()
    };
    let mut search: Vec<String> = Vec::new();
    fn process(
        terms: &[Value],
        files: &Value,
        paths: &Value,
        skip: &mut bool,
        search: &mut Vec<String>,
    ) -> Result<(), Fail> {
        for term in terms {
            let (files, paths) = match term {
                Value::Object(map) => {
                    if let Some(s) = map.get("skip") {
                        *skip = json_bool(s);
                    }
                    (
                        map.get("files").cloned().unwrap_or_else(|| files.clone()),
                        map.get("paths").cloned().unwrap_or_else(|| paths.clone()),
                    )
                }
                Value::String(_) => (Value::Array(vec![term.clone()]), paths.clone()),
                Value::Array(items) => {
                    process(items, files, paths, skip, search)?;
                    continue;
                }
                other => {
                    return Err(plugin(format!(
                        "Invalid term supplied. A string, dict or list is required, not '{}').",
                        settle_yaml::python_type(other)
                    )));
                }
            };
            let file_list = split_on(&files, &[',', ';']);
            let path_list = split_on(&paths, &[',', ':', ';']);
            if path_list.is_empty() {
                search.extend(file_list);
            } else {
                for path in &path_list {
                    for file in &file_list {
                        search.push(Path::new(path).join(file).display().to_string());
                    }
                }
            }
        }
        Ok(())
    }
    process(&terms, &global_files, &global_paths, &mut skip, &mut search)?;
    for name in &search {
        if let Some(path) = ctx.find(subdir, name)? {
            return Ok(vec![Value::String(unfrack(&path).display().to_string())]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(plugin("No file was found when using first_found."))
}

// --- commands and the environment --------------------------------------------------------

fn shell(term: &Value, ctx: &Ctx, lookup: &str) -> Result<String, Fail> {
    let command = pystr(term);
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .current_dir(ctx.basedir())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            plugin(format!(
                "lookup_plugin.{lookup}({command}) could not run: {e}"
            ))
        })?;
    if !output.status.success() {
        let code = output.status.code().unwrap_or(-1);
        return Err(plugin(format!(
            "lookup_plugin.{lookup}({command}) returned {code}"
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| {
        plugin(format!(
            "lookup_plugin.{lookup}({command}) printed text that is not UTF-8"
        ))
    })
}

fn pipe(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    terms
        .iter()
        .map(|t| shell(t, ctx, "pipe").map(|s| Value::String(s.trim_end().to_string())))
        .collect()
}

/// Python's `str.splitlines()`.
fn splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        match rest.find([
            '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
        ]) {
            Some(i) => {
                out.push(&rest[..i]);
                let c = rest[i..].chars().next().unwrap_or('\n');
                let mut next = i + c.len_utf8();
                if c == '\r' && rest[next..].starts_with('\n') {
                    next += 1;
                }
                rest = &rest[next..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

fn lines(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::new();
    for term in terms {
        let text = shell(term, ctx, "lines")?;
        out.extend(
            splitlines(&text)
                .into_iter()
                .map(|l| Value::String(l.to_string())),
        );
    }
    Ok(out)
}

fn env(terms: &[Value], opts: &Map<String, Value>) -> Result<Vec<Value>, Fail> {
    let default = opt(opts, "default")
        .cloned()
        .unwrap_or_else(|| Value::String(String::new()));
    // An undefined default stays undefined, with its own hint when `undef('hint')` gave one;
    // `undef()` without one gets the lookup's ("The environment variable 'X' is not set.").
    let undefined_default = opts.get(UNDEFINED_DEFAULT).map(|reason| match reason {
        Value::String(hint) if hint != crate::template::UNDEF_DEFAULT_HINT => Some(hint.clone()),
        _ => None,
    });
    let mut out = Vec::new();
    for term in terms {
        let text = pystr(term);
        let Some(var) = text.split_whitespace().next() else {
            return Err(plugin("list index out of range"));
        };
        match std::env::var(var) {
            Ok(value) => {
                let value = Value::String(value);
                let origin = format!("<environment variable '{var}'>");
                crate::filters::protomatter::note_origin(&value, origin);
                out.push(value);
            }
            Err(_) if let Some(hint) = &undefined_default => {
                return Err(Fail::Undefined(hint.clone().unwrap_or_else(|| {
                    format!("The environment variable '{var}' is not set.")
                })));
            }
            Err(_) => out.push(default.clone()),
        }
    }
    Ok(out)
}

// --- variables -----------------------------------------------------------------------------

fn vars(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let default = opt(opts, "default").filter(|v| !v.is_null());
    let mut out = Vec::new();
    for term in terms {
        let Value::String(name) = term else {
            return Err(plugin(format!(
                "Variable name must be 'str' not '{}'.",
                settle_yaml::python_type(term)
            )));
        };
        match ctx.var(name)? {
            Some(value) => out.push(value),
            None => match default {
                Some(d) => out.push(d.clone()),
                None => {
                    return Err(Fail::Undefined(format!(
                        "No variable named '{name}' was found."
                    )));
                }
            },
        }
    }
    Ok(out)
}

fn varnames(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let names = ctx.vars.var_names();
    let mut out = Vec::new();
    for term in terms {
        let Value::String(pattern) = term else {
            return Err(plugin(format!(
                "Invalid setting identifier, \"{}\" is not a string, it is a <class '{}'>",
                pystr(term),
                settle_yaml::python_type(term)
            )));
        };
        // Python's `re.search`.
        let re = Pattern::compile(pattern, Flags::default()).map_err(|e| {
            plugin(format!(
                "Unable to use \"{pattern}\" as a search parameter: {e}"
            ))
        })?;
        for n in &names {
            if re.is_match(n).map_err(plugin)? {
                out.push(Value::String(n.clone()));
            }
        }
    }
    Ok(out)
}

// --- templates -------------------------------------------------------------------------------

fn template(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::new();
    for term in terms {
        let name = pystr(term);
        let Some(path) = ctx.find(Some("templates"), &name)? else {
            eprintln!(
                "[WARNING]: Unable to find '{name}' in expected paths (use -vvvvv to see paths)"
            );
            return Err(plugin(format!(
                "the template file {name} could not be found for the lookup"
            )));
        };
        let source = read_text(&path).map_err(plugin)?;
        out.push(render_template(&name, &path, &source, opts, ctx)?);
    }
    Ok(out)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// The variables Ansible defines while rendering a template file: `template_host`,
/// `template_path` (the source as named), `template_fullpath`, `template_destpath`,
/// `template_uid` (the owner's name), `template_mtime`, `template_run_date` (both as Python
/// prints a datetime) and `ansible_managed` (the caller drops it when the play sets one).
pub(crate) fn template_file_vars(src: &str, fullpath: &Path, dest: Value) -> Map<String, Value> {
    use std::os::unix::fs::MetadataExt as _;
    let mut layer = Map::new();
    layer.insert("template_host".into(), Value::String(hostname()));
    layer.insert("template_path".into(), Value::String(src.to_string()));
    layer.insert(
        "template_fullpath".into(),
        Value::String(fullpath.display().to_string()),
    );
    layer.insert("template_destpath".into(), dest);
    if let Ok(meta) = std::fs::metadata(fullpath) {
        layer.insert("template_uid".into(), user_name(meta.uid()));
        let mtime = meta.mtime() as f64 + f64::from(meta.mtime_nsec() as u32 / 1000) / 1e6;
        layer.insert(
            "template_mtime".into(),
            Value::String(crate::filters::local_datetime_text(mtime)),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    layer.insert(
        "template_run_date".into(),
        Value::String(crate::filters::local_datetime_text(now)),
    );
    // DEFAULT_MANAGED_STR; its `{host}`-style fields are not in the default.
    layer.insert(
        "ansible_managed".into(),
        Value::String("Ansible managed".into()),
    );
    layer
}

/// The name of the user with this id, from `/etc/passwd`; the number when there is none.
fn user_name(uid: u32) -> Value {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?;
            (id.parse::<u32>().ok()? == uid).then(|| Value::String(name.to_string()))
        })
        .unwrap_or_else(|| json!(uid))
}

/// `{{ expr }}` alone, as the template engine would keep its type.
fn is_single_expression(s: &str) -> bool {
    s.strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .is_some_and(|inner| {
            !inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")
        })
}

fn render_template(
    name: &str,
    path: &Path,
    source: &str,
    opts: &Map<String, Value>,
    ctx: &Ctx,
) -> Result<Value, Fail> {
    let scope = ctx
        .vars
        .scope()
        .ok_or_else(|| plugin("the template lookup needs the task's variables"))?;
    let mut layer = template_file_vars(name, path, Value::Null);
    if scope.raw("ansible_managed").is_some() {
        layer.remove("ansible_managed");
    }
    match opt(opts, "template_vars") {
        Some(Value::Object(extra)) => layer.extend(extra.clone()),
        Some(Value::Null) | None => {}
        Some(other) => {
            return Err(plugin(format!(
                "template_vars must be a dict, not '{}'",
                settle_yaml::python_type(other)
            )));
        }
    }
    let scope = scope.with_layer(Arc::new(layer));
    let vs = opt_str(opts, "variable_start_string", "{{");
    let vs_text = vs.clone();
    let ve = opt_str(opts, "variable_end_string", "}}");
    let cs = opt_str(opts, "comment_start_string", "{#");
    let ce = opt_str(opts, "comment_end_string", "#}");
    let trim_blocks = opt_bool(opts, "trim_blocks", true);
    if !(source.contains(&vs) || source.contains("{%") || source.contains(&cs)) {
        return Ok(Value::String(source.to_string()));
    }
    // Jinja drops one trailing newline; Ansible puts back what the source ended with.
    let body = source.strip_suffix('\n').unwrap_or(source);
    let standard = vs == "{{" && ve == "}}" && cs == "{#" && ce == "#}";
    let restore = |mut text: String| {
        let want = source.len() - source.trim_end_matches('\n').len();
        let have = text.len() - text.trim_end_matches('\n').len();
        for _ in have..want {
            text.push('\n');
        }
        Value::String(text)
    };
    let output = &body[crate::native_macros::leading_definitions(body)..];
    if standard && trim_blocks && is_single_expression(output) {
        let value = templar()
            .render(&Value::String(body.to_string()), &scope)
            .map_err(|e| plugin(e.message))?;
        return Ok(match value {
            Value::String(s) => restore(s),
            other => other,
        });
    }
    let mut env = templar().environment().clone();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .variable_delimiters(vs, ve)
        .comment_delimiters(cs, ce)
        .trim_blocks(trim_blocks)
        .lstrip_blocks(false)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| plugin(format!("bad delimiters: {e}")))?;
    env.set_syntax(syntax);
    // `{% include %}` and `{% import %}` search as the template lookup's Jinja loader does:
    // the template's folder, then `<p>/templates` and `<p>` for each of `ansible_search_path`.
    let mut searchpath = vec![path.parent().unwrap_or(Path::new("/")).to_path_buf()];
    if let Ok(Some(Value::Array(paths))) = ctx.var("ansible_search_path") {
        for p in paths.iter().map(pystr) {
            searchpath.push(Path::new(&p).join("templates"));
            searchpath.push(PathBuf::from(p));
        }
    }
    env.set_loader(crate::template::search_loader(searchpath));
    // Rewritten as every template is (chains, macros returning values) when it uses the
    // standard delimiters the rewriting knows.
    let source = match standard {
        true => crate::jinja_source::template(body),
        false => std::borrow::Cow::Borrowed(body),
    };
    let text = env
        .render_named_str(name, &source, Mj::from_dyn_object(scope.clone()))
        .map_err(|e| {
            let e = crate::template::included_cause(&e);
            let name = e.name().unwrap_or(name);
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            match e.line() {
                Some(line) => plugin(format!("{name}:{line}: {}", detail.replace('`', "'"))),
                None => plugin(format!("{name}: {}", detail.replace('`', "'"))),
            }
        })?;
    // Jinja's native concatenation of no output at all (only comments, blocks that print
    // nothing) is `None`, and Ansible returns that.
    if text.is_empty() && !body.contains(vs_text.as_str()) {
        return Ok(Value::Null);
    }
    Ok(restore(text))
}

// --- lists -----------------------------------------------------------------------------------

fn dict(terms: &[Value]) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::new();
    for term in terms {
        let Value::Object(map) = term else {
            return Err(plugin(format!(
                "the 'dict' lookup plugin expects a dictionary, got '{}' of type <class '{}'>)",
                pystr(term),
                settle_yaml::python_type(term)
            )));
        };
        out.extend(map.iter().map(|(k, v)| json!({"key": k, "value": v})));
    }
    Ok(out)
}

fn together(terms: &[Value]) -> Result<Vec<Value>, Fail> {
    if terms.is_empty() {
        return Err(plugin(
            "with_together requires at least one element in each list",
        ));
    }
    let lists = terms.iter().map(py_iter).collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|i| {
            let row: Vec<Value> = lists
                .iter()
                .map(|l| l.get(i).cloned().unwrap_or(Value::Null))
                .collect();
            Value::Array(flatten_once(&row))
        })
        .collect())
}

fn nested(terms: &[Value]) -> Result<Vec<Value>, Fail> {
    let Some((first, rest)) = terms.split_first() else {
        return Err(plugin(
            "with_nested requires at least one element in the nested list",
        ));
    };
    let mut result = py_iter(first)?;
    for next in rest {
        let next = py_iter(next)?;
        if result.len().saturating_mul(next.len()) > MAX_ITEMS {
            return Err(plugin(format!(
                "with_nested would give more than {MAX_ITEMS} items"
            )));
        }
        let mut combined = Vec::with_capacity(result.len() * next.len());
        for x in &result {
            for y in &next {
                combined.push(Value::Array(flatten_once(&[x.clone(), y.clone()])));
            }
        }
        result = combined;
    }
    result
        .iter()
        .map(|x| py_iter(x).map(|items| Value::Array(flatten_once(&items))))
        .collect()
}

fn subelements(terms: &[Value]) -> Result<Vec<Value>, Fail> {
    let terms_error = |msg: &str| {
        plugin(format!(
            "subelements lookup expects a list of two or three items, {msg}"
        ))
    };
    if !(2..=3).contains(&terms.len()) {
        return Err(terms_error(""));
    }
    let Value::String(key) = &terms[1] else {
        return Err(terms_error(
            "first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let elements: Vec<Value> = match &terms[0] {
        Value::Array(items) => items.clone(),
        Value::Object(map) => {
            if map.get("skipped").is_some_and(|v| v != &Value::Bool(false)) {
                return Ok(Vec::new());
            }
            map.values().cloned().collect()
        }
        _ => {
            return Err(terms_error(
                "first a dict or a list, second a string pointing to the subkey",
            ));
        }
    };
    let flags = match terms.get(2) {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(terms_error(
                "the optional third item must be a dict with flags ('skip_missing',)",
            ));
        }
    };
    let skip_missing = flags.get("skip_missing").is_some_and(json_bool);
    let subkeys: Vec<&str> = key.split('.').collect();
    let mut out = Vec::new();
    for item in elements {
        let Value::Object(mut item) = item else {
            return Err(plugin(format!(
                "subelements lookup expects a dictionary, got '{}'",
                pystr(&item)
            )));
        };
        if item
            .get("skipped")
            .is_some_and(|v| v != &Value::Bool(false))
        {
            continue;
        }
        // Walk down to the list, taking it out of its record as Ansible does.
        let mut sublist: Vec<Value> = Vec::new();
        {
            let mut node: &mut Map<String, Value> = &mut item;
            for (i, subkey) in subkeys.iter().enumerate() {
                let last = i + 1 == subkeys.len();
                let Some(value) = node.get(*subkey) else {
                    if skip_missing {
                        continue;
                    }
                    return Err(plugin(format!(
                        "could not find '{subkey}' key in iterated item '{}'",
                        pystr(&Value::Object(node.clone()))
                    )));
                };
                if !last {
                    if !value.is_object() {
                        if skip_missing {
                            continue;
                        }
                        return Err(plugin(format!(
                            "the key {subkey} should point to a dictionary, got '{}'",
                            pystr(value)
                        )));
                    }
                    match node.get_mut(*subkey) {
                        Some(Value::Object(inner)) => node = inner,
                        _ => break,
                    }
                } else {
                    if !value.is_array() {
                        return Err(plugin(format!(
                            "the key {subkey} should point to a list, got '{}'",
                            pystr(value)
                        )));
                    }
                    if let Some(Value::Array(list)) = node.shift_remove(*subkey) {
                        sublist = list;
                    }
                }
            }
        }
        let record = Value::Object(item);
        for sub in sublist {
            out.push(json!([record.clone(), sub]));
        }
    }
    Ok(out)
}

// --- sequence --------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct SeqOpts {
    start: Option<Value>,
    end: Option<Value>,
    stride: Option<Value>,
    count: Option<Value>,
    format: Option<String>,
}

impl SeqOpts {
    fn set(&mut self, key: &str, value: Value) {
        match key {
            "start" => self.start = Some(value),
            "end" => self.end = Some(value),
            "stride" => self.stride = Some(value),
            "count" => self.count = Some(value),
            "format" => self.format = Some(pystr(&value)),
            _ => {}
        }
    }
}

fn sequence_shortcut(term: &str) -> Option<Vec<(&'static str, String)>> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| {
            let num = "(0?x?[0-9a-f]+)";
            regex::Regex::new(&format!("(?is)^({num}-)?{num}(/{num})?(:(.+))?$")).ok()
        })
        .as_ref()?;
    let caps = re.captures(term)?;
    let mut out = Vec::new();
    for (key, group) in [("start", 2), ("end", 3), ("stride", 5), ("format", 7)] {
        if let Some(m) = caps.get(group) {
            out.push((key, m.as_str().to_string()));
        }
    }
    Some(out)
}

fn sequence(terms: &[Value], opts: &Map<String, Value>) -> Result<Vec<Value>, Fail> {
    let terms: Vec<Value> = if terms.is_empty() && !opts.is_empty() {
        vec![Value::String(String::new())]
    } else {
        terms.to_vec()
    };
    let mut base = SeqOpts::default();
    for (k, v) in opts {
        if ["start", "end", "stride", "count", "format"].contains(&k.as_str()) && !v.is_null() {
            base.set(k, v.clone());
        }
    }
    let mut out = Vec::new();
    for term in &terms {
        let term = pystr(term);
        let mut o = base.clone();
        if let Some(parts) = sequence_shortcut(&term) {
            for (k, v) in parts {
                o.set(k, Value::String(v));
            }
        } else {
            let mut kv = settle_playbooks::parse_kv(&term, false).map_err(plugin)?;
            for key in ["start", "end", "stride", "count", "format"] {
                if let Some(v) = kv.shift_remove(key) {
                    o.set(key, v);
                }
            }
            if !kv.is_empty() {
                let keys: Vec<Value> = kv.keys().map(|k| Value::String(k.clone())).collect();
                return Err(plugin(format!(
                    "unrecognized arguments to with_sequence: {}",
                    pyrepr(&Value::Array(keys))
                )));
            }
        }
        let int = |name: &str, v: &Option<Value>| {
            v.as_ref().map(|v| opt_int("sequence", name, v)).transpose()
        };
        let start = int("start", &o.start)?.unwrap_or(1);
        let stride = int("stride", &o.stride)?.unwrap_or(1);
        let count = int("count", &o.count)?;
        let mut end = int("end", &o.end)?;
        let format = o.format.clone().unwrap_or_else(|| "%d".into());
        match (count, end) {
            (None, None) => return Err(plugin("must specify count or end in with_sequence")),
            (Some(_), Some(_)) => {
                return Err(plugin("can't specify both count and end in with_sequence"));
            }
            (Some(0), _) => continue,
            (Some(c), None) => {
                end = Some(
                    c.checked_mul(stride)
                        .and_then(|x| x.checked_add(start))
                        .and_then(|x| x.checked_sub(1))
                        .ok_or_else(|| {
                            plugin("unknown error generating sequence: number too large")
                        })?,
                );
            }
            (None, Some(_)) => {}
        }
        let end = end.unwrap_or(start);
        if stride > 0 && end < start {
            return Err(plugin("to count backwards make stride negative"));
        }
        if stride < 0 && end > start {
            return Err(plugin("to count forward don't make stride negative"));
        }
        if stride == 0 {
            continue;
        }
        if format.matches('%').count() != 1 {
            return Err(plugin(format!("bad formatting string: {format}")));
        }
        let span = (i128::from(end) - i128::from(start)).unsigned_abs();
        let len = span / i128::from(stride).unsigned_abs() + 1;
        if len + out.len() as u128 > MAX_ITEMS as u128 {
            return Err(plugin(format!(
                "the sequence from {start} to {end} would have {len} items; settle stops at {MAX_ITEMS}"
            )));
        }
        let mut i = i128::from(start);
        let (start, end, stride) = (i128::from(start), i128::from(end), i128::from(stride));
        while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
            let n = i64::try_from(i).map_err(|_| plugin("number too large"))?;
            let text = percent_format(&format, n).ok_or_else(|| {
                plugin(format!(
                    "problem formatting {n} with {}",
                    pyrepr(&Value::String(format.clone()))
                ))
            })?;
            out.push(Value::String(text));
            i += stride;
        }
        let _ = start;
    }
    Ok(out)
}

/// Python's `format % n` for a format with one conversion.
fn percent_format(format: &str, n: i64) -> Option<String> {
    let at = format.find('%')?;
    let (prefix, spec) = (&format[..at], &format[at + 1..]);
    let bytes: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let (mut left, mut plus, mut space, mut zero, mut alt) = (false, false, false, false, false);
    while i < bytes.len() && "-+ 0#".contains(bytes[i]) {
        match bytes[i] {
            '-' => left = true,
            '+' => plus = true,
            ' ' => space = true,
            '0' => zero = true,
            _ => alt = true,
        }
        i += 1;
    }
    let mut width = 0usize;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        width = width
            .checked_mul(10)?
            .checked_add(bytes[i].to_digit(10)? as usize)?;
        i += 1;
    }
    let mut precision: Option<usize> = None;
    if i < bytes.len() && bytes[i] == '.' {
        i += 1;
        let mut p = 0usize;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            p = p
                .checked_mul(10)?
                .checked_add(bytes[i].to_digit(10)? as usize)?;
            i += 1;
        }
        precision = Some(p);
    }
    if width > 10_000 || precision.is_some_and(|p| p > 10_000) {
        return None;
    }
    let conv = *bytes.get(i)?;
    let suffix: String = bytes[i + 1..].iter().collect();
    let negative = n < 0;
    let abs = n.unsigned_abs();
    let sign = if negative {
        "-"
    } else if plus {
        "+"
    } else if space {
        " "
    } else {
        ""
    };
    let (digits, numeric) = match conv {
        'd' | 'i' | 'u' => (abs.to_string(), true),
        'o' => (format!("{}{abs:o}", if alt { "0o" } else { "" }), true),
        'x' => (format!("{}{abs:x}", if alt { "0x" } else { "" }), true),
        'X' => (format!("{}{abs:X}", if alt { "0X" } else { "" }), true),
        'f' | 'F' => (format!("{:.*}", precision.unwrap_or(6), abs as f64), true),
        'e' | 'E' => {
            let s = python_exp(abs as f64, precision.unwrap_or(6));
            (if conv == 'E' { s.to_uppercase() } else { s }, true)
        }
        'g' | 'G' => {
            let p = precision.unwrap_or(6).max(1);
            let exp = if abs == 0 {
                0
            } else {
                (abs as f64).log10().floor() as i64
            };
            let s = if exp < p as i64 {
                abs.to_string()
            } else {
                let e = python_exp(abs as f64, p - 1);
                // %g drops trailing zeros of the mantissa.
                match e.split_once('e') {
                    Some((m, x)) if m.contains('.') => {
                        format!("{}e{x}", m.trim_end_matches('0').trim_end_matches('.'))
                    }
                    _ => e,
                }
            };
            (if conv == 'G' { s.to_uppercase() } else { s }, true)
        }
        's' | 'r' => {
            let mut s = n.to_string();
            if let Some(p) = precision {
                s = s.chars().take(p).collect();
            }
            (s, false)
        }
        'c' => (char::from_u32(u32::try_from(n).ok()?)?.to_string(), false),
        _ => return None,
    };
    let (mut digits, sign) = if numeric {
        let digits = match (conv, precision) {
            ('d' | 'i' | 'u', Some(p)) if digits.len() < p => {
                format!("{}{digits}", "0".repeat(p - digits.len()))
            }
            _ => digits,
        };
        (digits, sign)
    } else {
        (digits, "")
    };
    let len = sign.len() + digits.chars().count();
    let body = if len >= width {
        format!("{sign}{digits}")
    } else if left {
        format!("{sign}{digits}{}", " ".repeat(width - len))
    } else if zero && numeric {
        let pad = "0".repeat(width - len);
        // The padding goes after a 0x prefix.
        if let Some(rest) = digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
            .or_else(|| digits.strip_prefix("0o"))
        {
            let prefix_len = digits.len() - rest.len();
            let pre = digits[..prefix_len].to_string();
            digits = format!("{pre}{pad}{rest}");
            format!("{sign}{digits}")
        } else {
            format!("{sign}{pad}{digits}")
        }
    } else {
        format!("{}{sign}{digits}", " ".repeat(width - len))
    };
    Some(format!("{prefix}{body}{suffix}"))
}

/// `%e` as Python writes it: `1.500000e+03`.
fn python_exp(x: f64, precision: usize) -> String {
    let s = format!("{x:.precision$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        }
        None => s,
    }
}

// --- randomness ------------------------------------------------------------------------------

fn os_random_u64() -> Result<u64, Fail> {
    let mut buf = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| plugin(format!("cannot read random bytes: {e}")))?;
    Ok(u64::from_le_bytes(buf))
}

/// A uniformly drawn number below `n` (n > 0) from the system's randomness.
fn os_random_below(n: usize) -> Result<usize, Fail> {
    let n = n as u64;
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let r = os_random_u64()?;
        if r < zone {
            return Ok((r % n) as usize);
        }
    }
}

fn random_choice(terms: Vec<Value>) -> Result<Vec<Value>, Fail> {
    if terms.is_empty() {
        return Ok(terms);
    }
    let i = os_random_below(terms.len())?;
    Ok(vec![terms[i].clone()])
}

/// Python's `random.Random`: the Mersenne Twister seeded as Python seeds it from a string, so
/// a seeded `password` lookup gives the very password Ansible gives.
struct PyRandom {
    state: [u32; 624],
    index: usize,
}

impl PyRandom {
    fn from_str_seed(seed: &str) -> Self {
        use sha2::Digest as _;
        // Python 3 (version 2 seeding): the int from the bytes followed by their SHA-512.
        let mut bytes = seed.as_bytes().to_vec();
        bytes.extend_from_slice(&sha2::Sha512::digest(seed.as_bytes()));
        // Big-endian integer → 32-bit words, least significant first.
        let mut key: Vec<u32> = bytes
            .rchunks(4)
            .map(|chunk| chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            .collect();
        while key.len() > 1 && key.last() == Some(&0) {
            key.pop();
        }
        let mut rng = PyRandom {
            state: [0; 624],
            index: 624,
        };
        rng.init_by_array(&key);
        rng
    }

    fn init_genrand(&mut self, s: u32) {
        self.state[0] = s;
        for i in 1..624 {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = 624;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        let n = 624;
        for _ in 0..n.max(key.len()) {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= n {
                self.state[0] = self.state[n - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..n - 1 {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= n {
                self.state[0] = self.state[n - 1];
                i = 1;
            }
        }
        self.state[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random.choice`'s index: `getrandbits(n.bit_length())` until below n (n < 2^32).
    fn below(&mut self, n: usize) -> usize {
        let bits = usize::BITS - n.leading_zeros();
        loop {
            let r = (self.next_u32() >> (32 - bits)) as usize;
            if r < n {
                return r;
            }
        }
    }
}

// --- password --------------------------------------------------------------------------------

fn password_chars(specs: &[String]) -> String {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    const WHITESPACE: &str = " \t\n\r\x0b\x0c";
    let mut out = String::new();
    for spec in specs {
        match spec.as_str() {
            "ascii_letters" => {
                out.push_str(LOWER);
                out.push_str(UPPER);
            }
            "ascii_lowercase" => out.push_str(LOWER),
            "ascii_uppercase" => out.push_str(UPPER),
            "digits" => out.push_str(DIGITS),
            "hexdigits" => out.push_str("0123456789abcdefABCDEF"),
            "octdigits" => out.push_str("01234567"),
            "punctuation" => out.push_str(PUNCT),
            "whitespace" => out.push_str(WHITESPACE),
            "printable" => {
                out.push_str(DIGITS);
                out.push_str(LOWER);
                out.push_str(UPPER);
                out.push_str(PUNCT);
                out.push_str(WHITESPACE);
            }
            other => out.push_str(other),
        }
    }
    out.replace(['"', '\''], "")
}

fn password(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    static LOCK: Mutex<()> = Mutex::new(());
    const VALID: [&str; 5] = ["length", "encrypt", "chars", "ident", "seed"];
    let mut out = Vec::new();
    for term in terms {
        let term = pystr(term);
        let mut params: Map<String, Value> = opts
            .iter()
            .filter(|(k, _)| k.as_str() != UNDEFINED_DEFAULT)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let relpath = match term.split_once(' ') {
            None => term.clone(),
            Some((first, rest)) => {
                let mut kv = settle_playbooks::parse_kv(rest, false).map_err(plugin)?;
                let mut path = first.to_string();
                if let Some(raw) = kv.shift_remove("_raw_params") {
                    path = format!("{path} {}", pystr(&raw));
                    if !term.starts_with(&path) {
                        return Err(plugin(
                            "Unrecognized value after key=value parameters given to password lookup",
                        ));
                    }
                }
                params.extend(kv);
                path
            }
        };
        let mut invalid: Vec<&str> = params
            .keys()
            .map(String::as_str)
            .filter(|k| !VALID.contains(k))
            .collect();
        if !invalid.is_empty() {
            invalid.sort_unstable();
            return Err(plugin(format!(
                "Unrecognized parameter(s) given to password lookup: {}",
                invalid.join(", ")
            )));
        }
        let encrypt = params
            .get("encrypt")
            .filter(|v| !v.is_null())
            .map(pystr)
            .filter(|s| !s.is_empty());
        let want_ident = params
            .get("ident")
            .filter(|v| !v.is_null())
            .map(pystr)
            .filter(|s| !s.is_empty());
        let length = match params.get("length") {
            Some(v) => opt_int("password", "length", v)?,
            None => 20,
        };
        let length = usize::try_from(length).unwrap_or(0);
        if length > MAX_PASSWORD_LENGTH {
            return Err(plugin(format!(
                "a password of {length} characters is too long; settle makes at most {MAX_PASSWORD_LENGTH}"
            )));
        }
        let specs: Vec<String> = match params.get("chars") {
            None | Some(Value::Null) => {
                vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()]
            }
            Some(Value::Array(items)) => items.iter().map(pystr).collect(),
            Some(v) => {
                let s = pystr(v);
                let mut specs = Vec::new();
                if s.contains(",,") {
                    specs.push(",".to_string());
                }
                specs.extend(
                    s.replace(",,", ",")
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                );
                specs
            }
        };
        let chars: Vec<char> = password_chars(&specs).chars().collect();
        let seed = params.get("seed").filter(|v| !v.is_null()).map(pystr);
        let path = {
            let p = expand_home(&relpath);
            if p.is_absolute() {
                p
            } else {
                ctx.basedir().join(p)
            }
        };
        let dev_null = path == Path::new("/dev/null");
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let existing = if path.exists() {
            let bytes = std::fs::read(&path)
                .map_err(|e| plugin(format!("could not read {}: {e}", path.display())))?;
            Some(String::from_utf8_lossy(&bytes).trim_end().to_string())
        } else {
            None
        };
        // Ansible's `_parse_content`: "password salt=… ident=…".
        let (plaintext, mut salt, mut ident, mut changed) = match existing {
            Some(content) if !dev_null => {
                let (pw, rem) = match content.rfind(" salt=") {
                    Some(i) => (content[..i].to_string(), content[i + 6..].to_string()),
                    None => (content, String::new()),
                };
                let (salt, ident) = if rem.is_empty() {
                    (None, None)
                } else {
                    match rem.rfind(" ident=") {
                        Some(i) => (Some(rem[..i].to_string()), Some(rem[i + 7..].to_string())),
                        None => (Some(rem), None),
                    }
                };
                (pw, salt, ident, false)
            }
            _ => {
                if chars.is_empty() && length > 0 {
                    return Err(plugin("Cannot choose from an empty sequence"));
                }
                let mut rng = seed.as_deref().map(PyRandom::from_str_seed);
                let mut pw = String::with_capacity(length);
                for _ in 0..length {
                    let i = match rng.as_mut() {
                        Some(r) => r.below(chars.len()),
                        None => os_random_below(chars.len())?,
                    };
                    pw.push(chars[i]);
                }
                (pw, None, None, true)
            }
        };
        if let Some(scheme) = &encrypt
            && salt.as_deref().is_none_or(str::is_empty)
        {
            changed = true;
            let size = match scheme.as_str() {
                "sha256_crypt" | "sha512_crypt" | "pbkdf2_sha256" | "pbkdf2_sha512" => 16,
                "bcrypt" => 22,
                _ => 8,
            };
            const SALT_CHARS: &[u8] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./";
            let mut s = String::with_capacity(size);
            for _ in 0..size {
                s.push(char::from(SALT_CHARS[os_random_below(SALT_CHARS.len())?]));
            }
            salt = Some(s);
        }
        match (&ident, &want_ident) {
            (None, _) => ident = want_ident.clone(),
            (Some(have), Some(want)) if have != want => {
                return Err(plugin(format!(
                    "The ident parameter provided ({want}) does not match the stored one ({have})."
                )));
            }
            _ => {}
        }
        if encrypt.as_deref() == Some("bcrypt") && ident.is_none() {
            ident = Some("2b".into());
            changed = true;
        }
        if changed && !dev_null {
            let content = match (&encrypt, &ident, &salt) {
                (None, None, _) | (_, _, None) => plaintext.clone(),
                (_, Some(id), Some(salt)) => format!("{plaintext} salt={salt} ident={id}"),
                (_, None, Some(salt)) => format!("{plaintext} salt={salt}"),
            };
            write_password(&path, &content)?;
        }
        let plaintext = match &encrypt {
            Some(scheme) => crate::filters::crypt::password_hash(
                &plaintext,
                scheme,
                salt.as_deref(),
                None,
                None,
                ident.as_deref(),
            )
            .map_err(|e| plugin(e.detail().unwrap_or("cannot hash the password").to_string()))?,
            None => plaintext,
        };
        out.push(Value::String(plaintext));
    }
    Ok(out)
}

fn write_password(path: &Path, password: &str) -> Result<(), Fail> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let fail = |e: std::io::Error| plugin(format!("could not write {}: {e}", path.display()));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(format!("{password}\n").as_bytes())
        .map_err(fail)
}

// --- ini -------------------------------------------------------------------------------------

/// A section's name and its keys with their values (`None`: a key without a value).
type IniSection = (String, Vec<(String, Option<String>)>);

/// A file as Python's configparser reads it: sections of (key, value) in order.
struct Ini {
    sections: Vec<IniSection>,
}

impl Ini {
    fn parse(
        text: &str,
        case_sensitive: bool,
        allow_no_value: bool,
        file: &str,
    ) -> Result<Ini, Fail> {
        let mut sections: Vec<IniSection> = Vec::new();
        let mut current: Option<usize> = None;
        let mut last_key: Option<usize> = None;
        for (lineno, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                last_key = None;
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            if indented
                && let (Some(s), Some(k)) = (current, last_key)
                && let Some(entry) = sections[s].1.get_mut(k)
            {
                let v = entry.1.get_or_insert_with(String::new);
                v.push('\n');
                v.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                current = Some(match sections.iter().position(|(n, _)| n == name) {
                    Some(i) => i,
                    None => {
                        sections.push((name.to_string(), Vec::new()));
                        sections.len() - 1
                    }
                });
                last_key = None;
                continue;
            }
            let Some(s) = current else {
                return Err(plugin(format!(
                    "File contains no section headers.\nfile: '{file}', line: {}\n{}",
                    lineno + 1,
                    pyrepr(&Value::String(format!("{raw}\n")))
                )));
            };
            let (key, value) = match trimmed.find(['=', ':']) {
                Some(i) => (
                    trimmed[..i].trim(),
                    Some(trimmed[i + 1..].trim().to_string()),
                ),
                None if allow_no_value => (trimmed, None),
                None => {
                    return Err(plugin(format!(
                        "Source contains parsing errors: '{file}'\n\t[line {:2}]: {}",
                        lineno + 1,
                        pyrepr(&Value::String(format!("{raw}\n")))
                    )));
                }
            };
            let key = if case_sensitive {
                key.to_string()
            } else {
                key.to_lowercase()
            };
            let entries = &mut sections[s].1;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(plugin(format!("Duplicate option in '{file}'.")));
            }
            entries.push((key, value));
            last_key = Some(entries.len() - 1);
        }
        Ok(Ini { sections })
    }

    fn section(&self, name: &str) -> Option<&Vec<(String, Option<String>)>> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    /// The section's entries with DEFAULT's underneath, as configparser's `items()`.
    fn items(&self, name: &str) -> Option<Vec<(String, Option<String>)>> {
        let own = if name == "DEFAULT" {
            &Vec::new()
        } else {
            self.section(name)?
        };
        let mut out = own.clone();
        if let Some(defaults) = self.section("DEFAULT") {
            for (k, v) in defaults {
                if !out.iter().any(|(ok, _)| ok == k) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
        Some(out)
    }

    /// configparser's BasicInterpolation: `%%` and `%(name)s`.
    fn interpolate(
        &self,
        value: &str,
        items: &[(String, Option<String>)],
        depth: usize,
    ) -> Result<String, Fail> {
        if depth > 10 {
            return Err(plugin("Recursion limit exceeded in value substitution"));
        }
        let mut out = String::new();
        let mut rest = value;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("%(")
                && let Some(close) = r.find(")s")
            {
                let name = r[..close].to_lowercase();
                let found = items.iter().find(|(k, _)| k.to_lowercase() == name);
                match found {
                    Some((_, Some(v))) => out.push_str(&self.interpolate(v, items, depth + 1)?),
                    _ => {
                        return Err(plugin(format!(
                            "Bad value substitution: option '{name}' references a missing key"
                        )));
                    }
                }
                rest = &r[close + 2..];
            } else {
                return Err(plugin(format!(
                    "'%' must be followed by '%' or '(', found: {}",
                    pyrepr(&Value::String(rest.to_string()))
                )));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn ini(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    const KEYS: [&str; 10] = [
        "type",
        "file",
        "section",
        "re",
        "encoding",
        "default",
        "case_sensitive",
        "allow_no_value",
        "allow_none",
        "interpolation",
    ];
    let mut out = Vec::new();
    let mut params: Map<String, Value> = opts.clone();
    for term in terms {
        let term_text = pystr(term);
        let mut key = term_text.clone();
        if term_text.contains('=') || term_text.trim().contains(' ') {
            // "key section=x file=y": values may hold spaces up to the next known key.
            let mut phrases: Vec<(String, String)> = Vec::new();
            let mut this_key = "key".to_string();
            for (idp, phrase) in term_text.split_whitespace().enumerate() {
                if phrase.contains('=') {
                    for k in KEYS {
                        if phrase.contains(&format!("{k}=")) {
                            this_key = k.to_string();
                        }
                    }
                }
                match phrases.iter_mut().find(|(k, _)| *k == this_key) {
                    Some((_, v)) if idp != 0 && !v.is_empty() => {
                        v.push(' ');
                        v.push_str(phrase);
                    }
                    Some((_, v)) => *v = phrase.to_string(),
                    None => phrases.push((this_key.clone(), phrase.to_string())),
                }
            }
            let mut updated_key = false;
            for (_, param) in phrases {
                if let Some((name, value)) = param.split_once('=') {
                    if value.contains('=') {
                        return Err(plugin(format!(
                            "Could not use '{param}' from the inline options."
                        )));
                    }
                    if !KEYS.contains(&name) {
                        return Err(plugin(format!("'{name}' is not a valid option.")));
                    }
                    params.insert(name.to_string(), Value::String(value.to_string()));
                } else if key == term_text {
                    key = param;
                    updated_key = true;
                }
            }
            if !updated_key {
                return Err(plugin(format!(
                    "No key to look up was provided as first term within string inline options: {term_text}"
                )));
            }
        }
        let file = opt_str(&params, "file", "ansible.ini");
        let path = ctx.find(Some("files"), &file)?.ok_or_else(|| {
            plugin(format!(
                "Unable to access the file '{file}': File not found. Use -vvvvv to see paths searched."
            ))
        })?;
        let encoding = opt_str(&params, "encoding", "utf-8");
        let text = read_text_in(&path, &encoding).map_err(plugin)?;
        let properties = opt_str(&params, "type", "ini") == "properties";
        let section = if properties {
            "java_properties".to_string()
        } else {
            opt_str(&params, "section", "global")
        };
        let source = if properties {
            format!("[java_properties]\n{text}")
        } else {
            text.to_string()
        };
        let case_sensitive = opt_bool(&params, "case_sensitive", false);
        let allow_no_value =
            opt_bool(&params, "allow_no_value", false) || opt_bool(&params, "allow_none", false);
        let parsed = Ini::parse(&source, case_sensitive, allow_no_value, &file)?;
        let Some(items) = parsed.items(&section) else {
            return Err(plugin(format!("No section '{section}' in '{file}'.")));
        };
        let interpolation = opt_bool(&params, "interpolation", true);
        let resolve = |v: &str| {
            if interpolation {
                parsed.interpolate(v, &items, 0)
            } else {
                Ok(v.to_string())
            }
        };
        if opt_bool(&params, "re", false) {
            let re = regex::Regex::new(&format!("^(?:{key})"))
                .map_err(|e| plugin(format!("bad regular expression {key}: {e}")))?;
            for (k, v) in &items {
                if re.is_match(k) {
                    out.push(match v {
                        Some(v) => Value::String(resolve(v)?),
                        None => Value::Null,
                    });
                }
            }
        } else {
            let wanted = if case_sensitive {
                key.clone()
            } else {
                key.to_lowercase()
            };
            match items.iter().find(|(k, _)| *k == wanted) {
                Some((_, Some(v))) => out.push(Value::String(resolve(v)?)),
                // A key without a value reads as None, which Ansible leaves out.
                Some((_, None)) => {}
                None => match params.get("default") {
                    Some(Value::Null) => {}
                    Some(d) => out.push(d.clone()),
                    None => out.push(Value::String(String::new())),
                },
            }
        }
    }
    Ok(out)
}

// --- csvfile ---------------------------------------------------------------------------------

/// Python's csv reader, excel dialect with another delimiter: rows of fields.
fn csv_rows(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut quoted_field = false;
    let mut chars = text.chars().peekable();
    let mut line_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted_field => {
                in_quotes = true;
                quoted_field = true;
                line_has_content = true;
            }
            c if c == delimiter => {
                row.push(std::mem::take(&mut field));
                quoted_field = false;
                line_has_content = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if line_has_content || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                }
                rows.push(std::mem::take(&mut row));
                quoted_field = false;
                line_has_content = false;
            }
            other => {
                field.push(other);
                line_has_content = true;
            }
        }
    }
    if line_has_content || !field.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn csvfile(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    const KEYS: [&str; 6] = ["col", "keycol", "default", "delimiter", "file", "encoding"];
    if terms.is_empty() {
        return Err(plugin("Search key is required but was not found"));
    }
    let mut params = opts.clone();
    let mut out = Vec::new();
    for term in terms {
        let mut kv = settle_playbooks::parse_kv(&pystr(term), false).map_err(plugin)?;
        let Some(key) = kv.shift_remove("_raw_params").map(|k| pystr(&k)) else {
            return Err(plugin("Search key is required but was not found"));
        };
        for (name, value) in kv {
            if !KEYS.contains(&name.as_str()) {
                return Err(plugin(format!("'{name}' is not a valid option")));
            }
            params.insert(name, value);
        }
        let mut delimiter = opt_str(&params, "delimiter", "TAB");
        if delimiter == "TAB" || delimiter == "\\t" {
            delimiter = "\t".into();
        }
        let mut delim_chars = delimiter.chars();
        let (Some(delim), None) = (delim_chars.next(), delim_chars.next()) else {
            return Err(plugin("\"delimiter\" must be a 1-character string"));
        };
        let col = match params.get("col") {
            Some(v) => opt_int("csvfile", "col", v)?,
            None => 1,
        };
        let keycol = match params.get("keycol") {
            Some(v) => opt_int("csvfile", "keycol", v)?,
            None => 0,
        };
        let file = opt_str(&params, "file", "ansible.csv");
        // Ansible warns, then `open(None)` fails.
        let path = ctx.find(Some("files"), &file)?.ok_or_else(|| {
            eprintln!(
                "[WARNING]: Unable to find '{file}' in expected paths (use -vvvvv to see paths)"
            );
            plugin("expected str, bytes or os.PathLike object, not NoneType")
        })?;
        let text = read_text(&path).map_err(plugin)?;
        let pick = |row: &Vec<String>, i: i64| -> Option<String> {
            let idx = if i < 0 { row.len() as i64 + i } else { i };
            usize::try_from(idx).ok().and_then(|i| row.get(i).cloned())
        };
        let mut found = None;
        for row in csv_rows(&text, delim) {
            if row.is_empty() {
                continue;
            }
            let Some(k) = pick(&row, keycol) else {
                return Err(plugin("list index out of range"));
            };
            if k == key {
                found = Some(pick(&row, col).ok_or_else(|| plugin("list index out of range"))?);
                break;
            }
        }
        match found {
            Some(v) => out.push(Value::String(v)),
            None => match params.get("default") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                Some(d) => out.push(d.clone()),
            },
        }
    }
    Ok(out)
}

type Matcher = Box<dyn Fn(&str) -> bool>;

// --- inventory -------------------------------------------------------------------------------

/// Host patterns against the `groups` variable: names, groups, `all`, wildcards, `~regex`,
/// joined with `:` or `,`, with `&` (and) and `!` (not).
fn inventory_hostnames(terms: &[Value], ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let groups = match ctx.var("groups")? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let member_list = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items.iter().map(pystr).collect(),
            _ => Vec::new(),
        }
    };
    let mut all: Vec<String> = groups.get("all").map(member_list).unwrap_or_default();
    for members in groups.values() {
        for h in member_list(members) {
            if !all.contains(&h) {
                all.push(h);
            }
        }
    }
    let resolve = |pattern: &str| -> Vec<String> {
        if pattern == "all" || pattern == "*" {
            return all.clone();
        }
        if let Some(members) = groups.get(pattern) {
            return member_list(members);
        }
        if all.iter().any(|h| h == pattern) {
            return vec![pattern.to_string()];
        }
        let matcher: Option<Matcher> = if let Some(re) = pattern.strip_prefix('~') {
            regex::Regex::new(re).ok().map(|re| {
                Box::new(move |s: &str| re.find(s).is_some_and(|m| m.start() == 0)) as Matcher
            })
        } else if pattern.contains(['*', '?', '[']) {
            glob::Pattern::new(pattern)
                .ok()
                .map(|p| Box::new(move |s: &str| p.matches(s)) as Matcher)
        } else {
            None
        };
        let Some(matches) = matcher else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (group, members) in &groups {
            if matches(group) {
                for h in member_list(members) {
                    if !out.contains(&h) {
                        out.push(h);
                    }
                }
            }
        }
        for h in &all {
            if matches(h) && !out.contains(h) {
                out.push(h.clone());
            }
        }
        out
    };
    let mut patterns: Vec<String> = Vec::new();
    for term in terms {
        let items = match term {
            Value::Array(items) => items.iter().map(pystr).collect(),
            other => vec![pystr(other)],
        };
        for item in items {
            patterns.extend(
                item.split([':', ','])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            );
        }
    }
    // Ansible applies plain patterns first, then the `&` ones, then the `!` ones.
    let mut hosts: Vec<String> = Vec::new();
    for p in patterns.iter().filter(|p| !p.starts_with(['&', '!'])) {
        for h in resolve(p) {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    for p in patterns.iter().filter_map(|p| p.strip_prefix('&')) {
        let keep = resolve(p);
        hosts.retain(|h| keep.contains(h));
    }
    for p in patterns.iter().filter_map(|p| p.strip_prefix('!')) {
        let drop = resolve(p);
        hosts.retain(|h| !drop.contains(h));
    }
    Ok(hosts.into_iter().map(Value::String).collect())
}

// --- config ----------------------------------------------------------------------------------

/// The environment variable that sets a core setting, for the settings roles and handlers
/// read (ansible.cfg's values reach the environment too).
fn config_env(key: &str) -> Option<&'static str> {
    Some(match key {
        "DEFAULT_PRIVATE_ROLE_VARS" => "ANSIBLE_PRIVATE_ROLE_VARS",
        "DEFAULT_FORCE_HANDLERS" => "ANSIBLE_FORCE_HANDLERS",
        _ => return None,
    })
}

fn config_default(key: &str) -> Option<Value> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "~".into());
    Some(match key {
        "DEFAULT_ROLES_PATH" => json!([
            format!("{home}/.ansible/roles"),
            "/usr/share/ansible/roles",
            "/etc/ansible/roles"
        ]),
        "COLLECTIONS_PATHS" | "DEFAULT_COLLECTIONS_PATH" | "COLLECTIONS_PATH" => {
            json!([
                format!("{home}/.ansible/collections"),
                "/usr/share/ansible/collections"
            ])
        }
        "DEFAULT_ACTION_PLUGIN_PATH" => {
            json!([
                format!("{home}/.ansible/plugins/action"),
                "/usr/share/ansible/plugins/action"
            ])
        }
        "DEFAULT_MODULE_PATH" => {
            json!([
                format!("{home}/.ansible/plugins/modules"),
                "/usr/share/ansible/plugins/modules"
            ])
        }
        "ANSIBLE_HOME" | "_Z_TEST_ENTRY_3" => json!(format!("{home}/.ansible")),
        "_Z_TEST_ENTRY" | "_Z_TEST_ENTRY_2" => Value::Null,
        "ANSIBLE_COW_ACCEPTLIST" => json!([
            "bud-frogs",
            "bunny",
            "cheese",
            "daemon",
            "default",
            "dragon",
            "elephant-in-snake",
            "elephant",
            "eyes",
            "hellokitty",
            "kitty",
            "luke-koala",
            "meow",
            "milk",
            "moofasa",
            "moose",
            "ren",
            "sheep",
            "small",
            "stegosaurus",
            "stimpy",
            "supermilker",
            "three-eyes",
            "turkey",
            "turtle",
            "tux",
            "udder",
            "vader-koala",
            "vader",
            "www"
        ]),
        "ALLOW_BROKEN_CONDITIONALS" => json!(crate::template::allow_broken_conditionals()),
        "DEFAULT_TIMEOUT" => json!(10),
        "DEFAULT_FORKS" => json!(5),
        "DEFAULT_POLL_INTERVAL" => json!(15),
        "DEFAULT_VERBOSITY" => json!(0),
        "DEFAULT_BECOME_USER" => json!("root"),
        "DEFAULT_BECOME_METHOD" => json!("sudo"),
        "DEFAULT_REMOTE_USER"
        | "DEFAULT_PRIVATE_KEY_FILE"
        | "DEFAULT_LOG_PATH"
        | "DEFAULT_BECOME_EXE"
        | "DEFAULT_VAULT_PASSWORD_FILE" => Value::Null,
        "DEFAULT_MANAGED_STR" => json!("Ansible managed"),
        "DEFAULT_HASH_BEHAVIOUR" => json!(if crate::template::hash_behaviour_merge() {
            "merge"
        } else {
            "replace"
        }),
        "DEFAULT_GATHERING" => json!("implicit"),
        "DEFAULT_TRANSPORT" => json!("ssh"),
        "DEFAULT_MODULE_NAME" => json!("command"),
        "DEFAULT_STDOUT_CALLBACK" => json!("default"),
        "DEFAULT_STRATEGY" => json!("linear"),
        "DEFAULT_HOST_LIST" => json!(["/etc/ansible/hosts"]),
        "DEFAULT_LOCAL_TMP" => json!(format!("{home}/.ansible/tmp")),
        "DEFAULT_SYSLOG_FACILITY" => json!("LOG_USER"),
        "DEFAULT_EXECUTABLE" => json!("/bin/sh"),
        "DEFAULT_JINJA2_NATIVE" | "DEFAULT_UNDEFINED_VAR_BEHAVIOR" | "HOST_KEY_CHECKING" => {
            json!(true)
        }
        "DEFAULT_KEEP_REMOTE_FILES"
        | "DEFAULT_BECOME"
        | "DEFAULT_VAULT_ID_MATCH"
        | "DEFAULT_ASK_PASS"
        | "DEFAULT_NO_LOG"
        | "DEFAULT_ASK_VAULT_PASS"
        | "DEFAULT_FORCE_HANDLERS"
        | "DEFAULT_PRIVATE_ROLE_VARS"
        | "DEFAULT_LOAD_CALLBACK_PLUGINS"
        | "RETRY_FILES_ENABLED"
        | "ANSIBLE_FORCE_COLOR"
        | "DEFAULT_DEBUG"
        | "INVENTORY_UNPARSED_IS_FAILED"
        | "DEFAULT_BECOME_ASK_PASS"
        | "DEFAULT_NO_TARGET_SYSLOG" => json!(false),
        _ => return None,
    })
}

/// A setting: its variables (the last one set wins, as Ansible's config manager reads them),
/// its environment variable, its default.
struct Setting {
    vars: &'static [&'static str],
    env: Option<&'static str>,
    default: fn() -> Value,
}

/// The settings of the few plugins settle stands in for, by (type, name, setting).
fn plugin_setting(kind: &str, name: &str, key: &str) -> Option<Option<Setting>> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    let null = || Value::Null;
    Some(match (kind, short, key) {
        // Their options are in `connection::options` (read in `config`).
        ("connection", "ssh" | "local", _) => None,
        // The sudo become plugin's options (ansible.builtin.sudo's DOCUMENTATION).
        ("become", "sudo", "become_flags") => Some(Setting {
            vars: &["ansible_become_flags", "ansible_sudo_flags"],
            env: Some("ANSIBLE_BECOME_FLAGS"),
            default: || json!("-H -S -n"),
        }),
        ("become", "sudo", "become_exe") => Some(Setting {
            vars: &["ansible_become_exe", "ansible_sudo_exe"],
            env: Some("ANSIBLE_BECOME_EXE"),
            default: || json!("sudo"),
        }),
        ("become", "sudo", "become_user") => Some(Setting {
            vars: &["ansible_become_user", "ansible_sudo_user"],
            env: Some("ANSIBLE_BECOME_USER"),
            default: || json!("root"),
        }),
        ("become", "sudo", "become_pass") => Some(Setting {
            vars: &[
                "ansible_become_password",
                "ansible_become_pass",
                "ansible_sudo_pass",
            ],
            env: Some("ANSIBLE_BECOME_PASS"),
            default: null,
        }),
        ("become", "sudo", "sudo_chdir") => Some(Setting {
            vars: &["ansible_sudo_chdir"],
            env: Some("ANSIBLE_SUDO_CHDIR"),
            default: null,
        }),
        ("become", "sudo", _) => None,
        ("shell", "sh", "remote_tmp") => Some(Setting {
            vars: &["ansible_remote_tmp"],
            env: Some("ANSIBLE_REMOTE_TMP"),
            default: || json!("~/.ansible/tmp"),
        }),
        ("shell", "sh", _) => None,
        ("lookup", "config", "on_missing") => Some(Setting {
            vars: &[],
            env: None,
            default: || json!("error"),
        }),
        ("lookup", "config", "show_origin") => Some(Setting {
            vars: &[],
            env: None,
            default: || json!(false),
        }),
        ("lookup", "config", "_terms" | "plugin_type" | "plugin_name") => Some(Setting {
            vars: &[],
            env: None,
            default: null,
        }),
        ("lookup", "config", _) => None,
        _ => return None,
    })
}

/// The options a Python lookup plugin (in `ANSIBLE_LOOKUP_PLUGINS`, or a `lookup_plugins`
/// folder beside the playbook or in the role) marks `required: true` in its DOCUMENTATION:
/// settle cannot run it, but can read what it asks for.
fn python_lookup_required(name: &str, ctx: &Ctx) -> Option<Vec<String>> {
    let mut dirs: Vec<PathBuf> = std::env::var("ANSIBLE_LOOKUP_PLUGINS")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(expand_home)
        .collect();
    dirs.push(ctx.basedir().join("lookup_plugins"));
    if let Ok(Some(role)) = ctx.var("role_path") {
        dirs.push(PathBuf::from(pystr(&role)).join("lookup_plugins"));
    }
    let file = dirs
        .iter()
        .map(|d| d.join(format!("{name}.py")))
        .find(|p| p.is_file())?;
    let source = std::fs::read_to_string(&file).ok()?;
    let doc = source
        .split("DOCUMENTATION = \"\"\"")
        .nth(1)?
        .split("\"\"\"")
        .next()?;
    let node = settle_yaml::parse_str(doc, &file).ok()?;
    let options = node.get("options").and_then(|o| o.as_map().cloned());
    let mut required = Vec::new();
    for (key, spec) in options.iter().flatten() {
        let spec = spec.to_value();
        if spec.get("required").is_some_and(json_bool) && spec.get("default").is_none() {
            required.push(key.clone());
        }
    }
    Some(required)
}

fn config(terms: &[Value], opts: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Value>, Fail> {
    let on_missing = opt_str(opts, "on_missing", "error");
    let show_origin = opt_bool(opts, "show_origin", false);
    if !matches!(on_missing.as_str(), "error" | "warn" | "skip") {
        return Err(plugin(format!(
            "Invalid value '{on_missing}' for config 'on_missing' for 'config' lookup plugin."
        )));
    }
    let plugin_type = opt(opts, "plugin_type").filter(|v| !v.is_null()).map(pystr);
    let plugin_name = opt(opts, "plugin_name").filter(|v| !v.is_null()).map(pystr);
    let target = match (plugin_type, plugin_name) {
        (Some(t), Some(n)) => Some((t, n)),
        (None, None) => None,
        _ => {
            return Err(plugin(
                "Both plugin_type and plugin_name are required, cannot use one without the other.",
            ));
        }
    };
    if let Some((kind, name)) = &target
        && plugin_setting(kind, name, "").is_none()
    {
        if kind == "lookup"
            && let Some(required) = python_lookup_required(name, ctx)
        {
            if let Some(first) = required.first() {
                return Err(plugin(format!(
                    "Required config '{first}' for '{name}' lookup plugin not provided."
                )));
            }
        } else {
            return Err(plugin(format!("Unable to load {kind} plugin '{name}'.")));
        }
    }
    let mut out = Vec::new();
    for term in terms {
        let Value::String(key) = term else {
            return Err(plugin(format!(
                "Invalid setting identifier, {} is not a <class 'str'>, its a <class '{}'>.",
                pyrepr(term),
                settle_yaml::python_type(term)
            )));
        };
        let connection_option = match &target {
            Some((kind, name)) if kind == "connection" => {
                crate::connection::options::find(name, key)
            }
            _ => None,
        };
        let found = match &target {
            Some(_) if connection_option.is_some() => match connection_option {
                Some(option) => {
                    let mut found = (option.default_value(), "default".to_string());
                    for env in option.env {
                        if let Ok(v) = std::env::var(env) {
                            found = (option.typed(&v), format!("env: {env}"));
                        }
                    }
                    for var in option.vars.iter().filter(|v| !v.contains('[')) {
                        if let Some(v) = ctx.var(var)? {
                            let v = match v {
                                Value::String(text) => option.typed(&text),
                                other => other,
                            };
                            found = (v, format!("var: {var}"));
                        }
                    }
                    Some(found)
                }
                None => None,
            },
            Some((kind, name)) => match plugin_setting(kind, name, key).flatten() {
                Some(setting) => {
                    let mut found = ((setting.default)(), "default".to_string());
                    if let Some(env) = setting.env
                        && let Ok(v) = std::env::var(env)
                    {
                        found = (Value::String(v), format!("env: {env}"));
                    }
                    for var in setting.vars {
                        if let Some(v) = ctx.var(var)? {
                            found = (v, format!("var: {var}"));
                        }
                    }
                    Some(found)
                }
                None => None,
            },
            None => config_default(key).map(|default| {
                let mut found = (default, "default".to_string());
                if let Some(env) = config_env(key)
                    && let Ok(v) = std::env::var(env)
                    && !v.is_empty()
                {
                    let value = match found.0 {
                        Value::Bool(_) => Value::Bool(json_bool(&Value::String(v))),
                        _ => Value::String(v),
                    };
                    found = (value, format!("env: {env}"));
                }
                if key == "_Z_TEST_ENTRY"
                    && let Ok(Some(v)) = ctx.var("_z_test_entry")
                {
                    found = (v, "var: _z_test_entry".into());
                }
                found
            }),
        };
        match found {
            Some((v, origin)) if show_origin => out.push(json!([v, origin])),
            Some((v, _)) => out.push(v),
            None => match on_missing.as_str() {
                "error" => {
                    return Err(plugin(match &target {
                        Some((kind, name)) => format!(
                            "No config definition exists for '{key}' for '{name}' {kind} plugin."
                        ),
                        None => format!("No config definition exists for '{key}'."),
                    }));
                }
                "warn" => eprintln!("[WARNING]: Skipping {key}."),
                _ => {}
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(vars: Value) -> Arc<Scope> {
        Scope::new(
            vec![Arc::new(vars.as_object().cloned().unwrap_or_default())],
            None,
        )
    }

    fn render(s: &Arc<Scope>, t: &str) -> Result<Value, String> {
        templar().render(&json!(t), s).map_err(|e| e.message)
    }

    fn q(s: &Arc<Scope>, t: &str) -> Value {
        match render(s, t) {
            Ok(v) => v,
            Err(e) => panic!("{t}: {e}"),
        }
    }

    /// A playbook folder with files/ and templates/.
    fn play_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("files")).unwrap();
        std::fs::create_dir_all(p.join("templates")).unwrap();
        std::fs::write(p.join("files/a.txt"), "  hello\n\n").unwrap();
        std::fs::write(p.join("files/b.txt"), "b\n").unwrap();
        std::fs::write(p.join("top.txt"), "top\n").unwrap();
        std::fs::write(p.join("templates/t.j2"), "{{ 1 + 1 }}\n").unwrap();
        std::fs::write(p.join("templates/s.j2"), "Hi {{ who }}\n\n").unwrap();
        std::fs::write(p.join("templates/l.j2"), "{{ [1, 2] }}").unwrap();
        std::fs::write(p.join("templates/alt.j2"), "[[ who ]] {{ who }}\n").unwrap();
        std::fs::write(
            p.join("templates/blk.j2"),
            "{% if true %}\nx\n{% endif %}\n",
        )
        .unwrap();
        dir
    }

    fn in_play(dir: &tempfile::TempDir, extra: Value) -> Arc<Scope> {
        let mut vars = json!({"playbook_dir": dir.path().display().to_string(), "who": "you"});
        if let (Some(m), Value::Object(e)) = (vars.as_object_mut(), extra) {
            m.extend(e);
        }
        scope(vars)
    }

    #[test]
    fn lookup_shapes_results_as_ansible() {
        let s = scope(json!({}));
        assert_eq!(
            q(&s, "{{ lookup('items', [1, 2], ['a']) }}"),
            json!([1, 2, "a"])
        );
        assert_eq!(q(&s, "{{ lookup('items', ['a', 'b']) }}"), json!("a,b"));
        assert_eq!(q(&s, "{{ lookup('items', ['a']) }}"), json!("a"));
        assert_eq!(q(&s, "{{ lookup('items', []) }}"), json!([]));
        assert_eq!(
            q(&s, "{{ lookup('items', ['a'], wantlist=True) }}"),
            json!(["a"])
        );
        assert_eq!(q(&s, "{{ query('items', 'a') }}"), json!(["a"]));
        assert_eq!(q(&s, "{{ q('items', 'a', 'b') }}"), json!(["a", "b"]));
        assert_eq!(
            q(&s, "{{ lookup('ansible.builtin.list', ['a', 'b']) }}"),
            json!(["a", "b"])
        );
        assert_eq!(q(&s, "{{ lookup('list', 'a') }}"), json!("a"));
    }

    #[test]
    fn errors_name_the_lookup() {
        let s = scope(json!({}));
        let e = render(&s, "{{ lookup('nosuch', 'x') }}").unwrap_err();
        assert!(
            e.contains("The lookup plugin 'nosuch' was not found."),
            "{e}"
        );
        let e = render(&s, "{{ lookup('dict', 'x') }}").unwrap_err();
        assert!(
            e.contains("The lookup plugin 'dict' failed: the 'dict' lookup plugin expects a dictionary, got 'x' of type <class 'str'>)"),
            "{e}"
        );
        assert_eq!(
            q(&s, "{{ lookup('dict', 'x', errors='ignore') }}"),
            Value::Null
        );
        assert_eq!(q(&s, "{{ query('dict', 'x', errors='warn') }}"), json!([]));
    }

    #[test]
    fn file_reads_from_files_then_the_folder() {
        let dir = play_dir();
        let s = in_play(&dir, json!({}));
        assert_eq!(q(&s, "{{ lookup('file', 'a.txt') }}"), json!("  hello"));
        assert_eq!(
            q(&s, "{{ lookup('file', 'a.txt', lstrip=True) }}"),
            json!("hello")
        );
        assert_eq!(
            q(&s, "{{ lookup('file', 'a.txt', rstrip=False) }}"),
            json!("  hello\n\n")
        );
        assert_eq!(
            q(&s, "{{ lookup('file', 'top.txt', 'b.txt') }}"),
            json!("top,b")
        );
        let abs = dir.path().join("top.txt").display().to_string();
        assert_eq!(
            q(&s, &format!("{{{{ lookup('file', '{abs}') }}}}")),
            json!("top")
        );
        let e = render(&s, "{{ lookup('file', 'nope.txt') }}").unwrap_err();
        assert!(
            e.contains("The lookup plugin 'file' failed: Unable to access the file 'nope.txt': File not found. Use -vvvvv to see paths searched."),
            "{e}"
        );
        // The search path, when given, comes first; a role's folder before the play's.
        let role = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(role.path().join("files")).unwrap();
        std::fs::write(role.path().join("files/b.txt"), "role b").unwrap();
        let r = in_play(
            &dir,
            json!({"role_path": role.path().display().to_string()}),
        );
        assert_eq!(q(&r, "{{ lookup('file', 'b.txt') }}"), json!("role b"));
        assert_eq!(q(&r, "{{ lookup('file', 'top.txt') }}"), json!("top"));
        let sp = in_play(
            &dir,
            json!({"ansible_search_path": [role.path().display().to_string(), dir.path().display().to_string()]}),
        );
        assert_eq!(q(&sp, "{{ lookup('file', 'b.txt') }}"), json!("role b"));
    }

    #[test]
    fn vaulted_files_are_decrypted_or_refused_clearly() {
        let dir = play_dir();
        std::fs::write(
            dir.path().join("files/v.txt"),
            "$ANSIBLE_VAULT;1.1;AES256\n3132\n",
        )
        .unwrap();
        let secret = settle_vault::VaultSecret::new("default", "lookup-test-pw");
        std::fs::write(
            dir.path().join("files/ok.txt"),
            settle_vault::encrypt(b"secret text\n", &secret).unwrap(),
        )
        .unwrap();
        settle_vault::set_secrets(vec![secret]);
        let s = in_play(&dir, json!({}));
        let e = render(&s, "{{ lookup('unvault', 'v.txt') }}").unwrap_err();
        assert!(e.contains("could not decrypt"), "{e}");
        assert_eq!(q(&s, "{{ lookup('unvault', 'b.txt') }}"), json!("b\n"));
        assert_eq!(
            q(&s, "{{ lookup('unvault', 'ok.txt') }}"),
            json!("secret text\n")
        );
    }

    #[test]
    fn config_of_plugins() {
        let s = scope(json!({"ansible_ssh_user": "lola", "ansible_ssh_port": 2022}));
        assert_eq!(
            q(
                &s,
                "{{ q('config', 'remote_user', 'port', plugin_type='connection', plugin_name='ssh', show_origin=True) }}"
            ),
            json!([
                ["lola", "var: ansible_ssh_user"],
                [2022, "var: ansible_ssh_port"]
            ])
        );
        let e = render(&s, "{{ q('config', 'remote_tmp', plugin_type='shell') }}").unwrap_err();
        assert!(e.contains("Both plugin_type and plugin_name"), "{e}");
        let e = render(
            &s,
            "{{ q('config', 'x', plugin_type='lookup', plugin_name='no.such') }}",
        )
        .unwrap_err();
        assert!(e.contains("Unable to load lookup plugin 'no.such'"), "{e}");
        let e = render(&s, "{{ lookup('config', 'X', on_missing='boo') }}").unwrap_err();
        assert!(e.contains("Invalid value 'boo'"), "{e}");
        assert!(
            q(&s, "{{ lookup('config', 'ANSIBLE_COW_ACCEPTLIST') }}")
                .as_array()
                .is_some_and(|l| l.contains(&json!("meow")))
        );
    }

    #[test]
    fn config_knows_the_ssh_and_local_connection_options() {
        let s = scope(json!({"ansible_local_become_success_timeout": "3"}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('config', 'ssh_transfer_method', plugin_type='connection', plugin_name='ssh') }}"
            ),
            json!("smart")
        );
        // A variable's text takes the option's type.
        assert_eq!(
            q(
                &s,
                "{{ q('config', 'become_success_timeout', plugin_type='connection', plugin_name='ansible.builtin.local', show_origin=True) }}"
            ),
            json!([[3, "var: ansible_local_become_success_timeout"]])
        );
        let e = render(
            &s,
            "{{ lookup('config', 'nope', plugin_type='connection', plugin_name='ssh') }}",
        )
        .unwrap_err();
        assert!(
            e.contains("No config definition exists for 'nope' for 'ssh' connection plugin."),
            "{e}"
        );
    }

    #[test]
    fn ini_reads_latin1() {
        let dir = play_dir();
        std::fs::write(
            dir.path().join("files/l1.ini"),
            b"[global]\nname = \xe9t\xe9 \xa4\n",
        )
        .unwrap();
        let s = in_play(&dir, json!({}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'name section=global encoding=iso8859-1 file=l1.ini') }}"
            ),
            json!("été ¤")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'name', section='global', encoding='iso8859-15', file='l1.ini') }}"
            ),
            json!("été €")
        );
    }

    #[test]
    fn varnames_lookaround_and_python_errors() {
        let s = scope(json!({"qz_1": 1, "qz_2": 2, "qa_1": 3}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('varnames', '^q(?!a).*_\\d', wantlist=True) | sort }}"
            ),
            json!(["qz_1", "qz_2"])
        );
        let e = render(&s, "{{ lookup('varnames', '*') }}").unwrap_err();
        assert!(e.contains("nothing to repeat at position 0"), "{e}");
    }

    #[test]
    fn env_and_pipe_and_lines() {
        let s = scope(json!({}));
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(q(&s, "{{ lookup('env', 'HOME') }}"), json!(home));
        assert_eq!(
            q(&s, "{{ lookup('env', 'SETTLE_SURELY_UNSET_X') }}"),
            json!("")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('env', 'SETTLE_SURELY_UNSET_X', default='d') }}"
            ),
            json!("d")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('env', 'SETTLE_SURELY_UNSET_X', default=nope) | default('u') }}"
            ),
            json!("u")
        );
        assert_eq!(
            q(&s, "{{ lookup('pipe', 'printf \"a\\\\nb\\\\n\\\\n\"') }}"),
            json!("a\nb")
        );
        assert_eq!(
            q(&s, "{{ lookup('lines', 'printf \"a\\\\nb\\\\n\"') }}"),
            json!("a,b")
        );
        let e = render(&s, "{{ lookup('pipe', 'exit 3') }}").unwrap_err();
        assert!(
            e.contains("The lookup plugin 'pipe' failed: lookup_plugin.pipe(exit 3) returned 3"),
            "{e}"
        );
    }

    #[test]
    fn vars_and_varnames() {
        let s = scope(json!({"a": "{{ b }}!", "b": "x", "user_one": 1, "user_two": 2}));
        assert_eq!(q(&s, "{{ lookup('vars', 'a') }}"), json!("x!"));
        assert_eq!(q(&s, "{{ lookup('vars', 'us' + 'er_one') }}"), json!(1));
        assert_eq!(
            q(&s, "{{ lookup('vars', 'nope', default='d') }}"),
            json!("d")
        );
        assert_eq!(
            q(&s, "{{ lookup('vars', 'nope') | default('u') }}"),
            json!("u")
        );
        assert!(render(&s, "{{ lookup('vars', 'nope') }}").is_err());
        assert_eq!(
            q(&s, "{{ query('varnames', '^user_') }}"),
            json!(["user_one", "user_two"])
        );
        assert_eq!(q(&s, "{{ query('varnames', 'nothing') }}"), json!([]));
    }

    #[test]
    fn template_renders_with_the_variables() {
        let dir = play_dir();
        let s = in_play(&dir, json!({}));
        assert_eq!(q(&s, "{{ lookup('template', 't.j2') }}"), json!(2));
        assert_eq!(q(&s, "{{ lookup('template', 'l.j2') }}"), json!([1, 2]));
        assert_eq!(
            q(&s, "{{ lookup('template', 's.j2') }}"),
            json!("Hi you\n\n")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('template', 's.j2', template_vars={'who': 'them'}) }}"
            ),
            json!("Hi them\n\n")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('template', 'alt.j2', variable_start_string='[[', variable_end_string=']]') }}"
            ),
            json!("you {{ who }}\n")
        );
        assert_eq!(q(&s, "{{ lookup('template', 'blk.j2') }}"), json!("x\n"));
        assert_eq!(
            q(&s, "{{ lookup('template', 'blk.j2', trim_blocks=False) }}"),
            json!("\nx\n")
        );
        let e = render(&s, "{{ lookup('template', 'nope.j2') }}").unwrap_err();
        assert!(
            e.contains("the template file nope.j2 could not be found for the lookup"),
            "{e}"
        );
    }

    #[test]
    fn fileglob_and_first_found() {
        let dir = play_dir();
        let s = in_play(&dir, json!({}));
        let p = dir.path().display().to_string();
        assert_eq!(
            q(&s, "{{ query('fileglob', '*.txt') }}"),
            json!([format!("{p}/files/a.txt"), format!("{p}/files/b.txt")])
        );
        assert_eq!(q(&s, "{{ query('fileglob', '*.none') }}"), json!([]));
        assert_eq!(
            q(&s, &format!("{{{{ query('fileglob', '{p}/*.txt') }}}}")),
            json!([format!("{p}/top.txt")])
        );
        // From a template, first_found looks in the folders themselves, not files/.
        assert_eq!(
            q(&s, "{{ lookup('first_found', 'nope', 'top.txt') }}"),
            json!(format!("{p}/top.txt"))
        );
        assert_eq!(
            q(&s, "{{ lookup('first_found', 'a.txt', errors='ignore') }}"),
            Value::Null
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('first_found', files=['x', 'b.txt'], paths=['files']) }}"
            ),
            json!(format!("{p}/files/b.txt"))
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('first_found', {'files': ['x', 'a.txt'], 'paths': [playbook_dir + '/files']}) }}"
            ),
            json!(format!("{p}/files/a.txt"))
        );
        assert_eq!(
            q(&s, "{{ query('first_found', 'x', skip=True) }}"),
            json!([])
        );
        let e = render(&s, "{{ lookup('first_found', 'x') }}").unwrap_err();
        assert!(
            e.contains("No file was found when using first_found."),
            "{e}"
        );
        // In a with_ loop, files/ is searched.
        assert_eq!(
            query_in_scope("first_found", json!(["a.txt"]), &s).unwrap(),
            vec![json!(format!("{p}/files/a.txt"))]
        );
    }

    #[test]
    fn list_lookups() {
        let s = scope(json!({"users": [{"name": "a", "groups": ["g1", "g2"]}, {"name": "b"}]}));
        assert_eq!(
            q(&s, "{{ lookup('dict', {'a': 1, 'b': 2}) }}"),
            json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
        );
        assert_eq!(
            q(&s, "{{ lookup('indexed_items', ['a', 'b']) }}"),
            json!([[0, "a"], [1, "b"]])
        );
        assert_eq!(
            q(&s, "{{ lookup('together', [1, 2, 3], ['a', 'b']) }}"),
            json!([[1, "a"], [2, "b"], [3, null]])
        );
        assert_eq!(
            q(&s, "{{ lookup('nested', [1, 2], ['a', 'b']) }}"),
            json!([[1, "a"], [1, "b"], [2, "a"], [2, "b"]])
        );
        assert_eq!(
            q(&s, "{{ lookup('nested', ['x'], [1, 2], ['a']) }}"),
            json!([["x", 1, "a"], ["x", 2, "a"]])
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('subelements', users, 'groups', {'skip_missing': True}) }}"
            ),
            json!([[{"name": "a"}, "g1"], [{"name": "a"}, "g2"]])
        );
        let e = render(&s, "{{ lookup('subelements', users, 'groups') }}").unwrap_err();
        assert!(
            e.contains("could not find 'groups' key in iterated item '{'name': 'b'}'"),
            "{e}"
        );
        let r = q(&s, "{{ lookup('random_choice', 'a', 'b') }}");
        assert!(r == json!("a") || r == json!("b"));
        assert_eq!(q(&s, "{{ query('random_choice') }}"), json!([]));
    }

    #[test]
    fn sequences() {
        let s = scope(json!({}));
        assert_eq!(
            q(&s, "{{ lookup('sequence', 'start=1 end=3') }}"),
            json!("1,2,3")
        );
        assert_eq!(
            q(&s, "{{ lookup('sequence', '4:host%02d') }}"),
            json!("host01,host02,host03,host04")
        );
        assert_eq!(q(&s, "{{ lookup('sequence', '5-8') }}"), json!("5,6,7,8"));
        assert_eq!(
            q(&s, "{{ lookup('sequence', '2-10/2') }}"),
            json!("2,4,6,8,10")
        );
        assert_eq!(
            q(&s, "{{ lookup('sequence', 'start=0 count=5 stride=2') }}"),
            json!("0,2,4,6,8")
        );
        assert_eq!(
            q(&s, "{{ lookup('sequence', start=5, end=7, format='x%d') }}"),
            json!("x5,x6,x7")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('sequence', 'start=5 end=11 stride=2 format=0x%02x') }}"
            ),
            json!("0x05,0x07,0x09,0x0b")
        );
        assert_eq!(
            q(&s, "{{ lookup('sequence', 'start=10 end=1 stride=-3') }}"),
            json!("10,7,4,1")
        );
        assert_eq!(
            q(&s, "{{ lookup('sequence', 'start=010 end=012') }}"),
            json!("10,11,12")
        );
        assert_eq!(q(&s, "{{ query('sequence', 'count=0') }}"), json!([]));
        let e = render(&s, "{{ lookup('sequence', '10-1') }}").unwrap_err();
        assert!(e.contains("to count backwards make stride negative"), "{e}");
        let e = render(&s, "{{ lookup('sequence', 'start=1 foo=2') }}").unwrap_err();
        assert!(
            e.contains("unrecognized arguments to with_sequence: ['foo']"),
            "{e}"
        );
        let e = render(&s, "{{ lookup('sequence', 'end=1000000000') }}").unwrap_err();
        assert!(e.contains("settle stops at 1000000"), "{e}");
        let e = render(&s, "{{ lookup('sequence', 'start=1') }}").unwrap_err();
        assert!(
            e.contains("must specify count or end in with_sequence"),
            "{e}"
        );
        assert_eq!(percent_format("%5.1f", 3).as_deref(), Some("  3.0"));
        assert_eq!(percent_format("%-4d|", 7).as_deref(), Some("7   |"));
        assert_eq!(percent_format("%e", 1500).as_deref(), Some("1.500000e+03"));
        assert_eq!(percent_format("%q", 1), None);
    }

    #[test]
    fn passwords() {
        let dir = play_dir();
        let s = in_play(&dir, json!({}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('password', '/dev/null length=8 chars=digits seed=abc') }}"
            ),
            json!("87552403")
        );
        assert_eq!(
            q(&s, "{{ lookup('password', '/dev/null seed=abc') }}"),
            json!("6TTuIhBjbajOIpXYV3o6")
        );
        let first = q(&s, "{{ lookup('password', 'creds/db length=12') }}");
        assert_eq!(first.as_str().map(str::len), Some(12));
        let stored = std::fs::read_to_string(dir.path().join("creds/db")).unwrap();
        assert_eq!(stored, format!("{}\n", first.as_str().unwrap()));
        assert_eq!(
            q(&s, "{{ lookup('password', 'creds/db length=12') }}"),
            first
        );
        let e = render(&s, "{{ lookup('password', '/dev/null length=100000000') }}").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        let e = render(&s, "{{ lookup('password', '/dev/null bogus=1') }}").unwrap_err();
        assert!(
            e.contains("Unrecognized parameter(s) given to password lookup: bogus"),
            "{e}"
        );
        let hashed = q(
            &s,
            "{{ lookup('password', '/dev/null encrypt=sha512_crypt') }}",
        );
        assert!(
            hashed.as_str().is_some_and(|h| h.starts_with("$6$")),
            "{hashed}"
        );
        // Encrypted: the file keeps the password and its salt; a plain lookup reads it back.
        let hashed = q(
            &s,
            "{{ lookup('password', 'creds/salted encrypt=sha256_crypt') }}",
        );
        let stored = std::fs::read_to_string(dir.path().join("creds/salted")).unwrap();
        let (plain, salt) = stored.trim_end().split_once(" salt=").unwrap();
        assert_eq!(salt.len(), 16);
        assert!(
            hashed
                .as_str()
                .is_some_and(|h| h.starts_with(&format!("$5${salt}$"))),
            "{hashed}"
        );
        assert_eq!(
            q(&s, "{{ lookup('password', 'creds/salted') }}"),
            json!(plain)
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('password', 'creds/salted encrypt=sha256_crypt') }}"
            ),
            hashed
        );
    }

    #[test]
    fn ini_and_properties() {
        let dir = play_dir();
        std::fs::write(
            dir.path().join("files/users.ini"),
            "[DEFAULT]\nbase = /srv\n\n[integration]\nuser = yannig\nhome = %(base)s/y\n\n[production]\nuser=alice\nuser2 = bob\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("files/user.properties"),
            "user.name=robert\nuser.pass:secret\n",
        )
        .unwrap();
        let s = in_play(&dir, json!({}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'user', section='integration', file='users.ini') }}"
            ),
            json!("yannig")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'user section=production file=users.ini') }}"
            ),
            json!("alice")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'home', section='integration', file='users.ini') }}"
            ),
            json!("/srv/y")
        );
        assert_eq!(
            q(
                &s,
                "{{ query('ini', 'user.*', section='production', file='users.ini', re=True) }}"
            ),
            json!(["alice", "bob"])
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'nope', section='production', file='users.ini', default='d') }}"
            ),
            json!("d")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'user.name', type='properties', file='user.properties') }}"
            ),
            json!("robert")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('ini', 'user.pass', type='properties', file='user.properties') }}"
            ),
            json!("secret")
        );
        let e = render(
            &s,
            "{{ lookup('ini', 'user', section='nope', file='users.ini') }}",
        )
        .unwrap_err();
        assert!(e.contains("No section 'nope' in 'users.ini'."), "{e}");
    }

    #[test]
    fn csvfile_reads_columns() {
        let dir = play_dir();
        std::fs::write(
            dir.path().join("files/elements.csv"),
            "Symbol,Atomic Number,Atomic Mass\nH,1,1.008\nLi,3,6.94\n\"Q, x\",9,\"a \"\"b\"\"\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("files/ansible.csv"), "k\tv\n").unwrap();
        let s = in_play(&dir, json!({}));
        assert_eq!(
            q(
                &s,
                "{{ lookup('csvfile', 'Li', file='elements.csv', delimiter=',') }}"
            ),
            json!("3")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('csvfile', 'Li', file='elements.csv', delimiter=',', col=2) }}"
            ),
            json!("6.94")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('csvfile', 'Li file=elements.csv delimiter=, col=2') }}"
            ),
            json!("6.94")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('csvfile', 'Q, x', file='elements.csv', delimiter=',', col=2) }}"
            ),
            json!("a \"b\"")
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('csvfile', 'Xx', file='elements.csv', delimiter=',', default='none') }}"
            ),
            json!("none")
        );
        assert_eq!(
            q(
                &s,
                "{{ query('csvfile', 'Xx', file='elements.csv', delimiter=',') }}"
            ),
            json!([])
        );
        assert_eq!(q(&s, "{{ lookup('csvfile', 'k') }}"), json!("v"));
    }

    #[test]
    fn inventory_hostnames_and_config() {
        let s = scope(json!({"groups": {
            "all": ["web1", "web2", "db1"], "ungrouped": [], "web": ["web1", "web2"], "db": ["db1"], "prod": ["web1", "db1"]
        }}));
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'all') }}"),
            json!(["web1", "web2", "db1"])
        );
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'web:db') }}"),
            json!(["web1", "web2", "db1"])
        );
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'web:&prod') }}"),
            json!(["web1"])
        );
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'all:!web') }}"),
            json!(["db1"])
        );
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'web*') }}"),
            json!(["web1", "web2"])
        );
        assert_eq!(
            q(&s, "{{ query('inventory_hostnames', 'nope') }}"),
            json!([])
        );
        assert_eq!(
            q(&s, "{{ lookup('config', 'DEFAULT_TIMEOUT') }}"),
            json!(10)
        );
        assert_eq!(
            q(
                &s,
                "{{ lookup('config', 'DEFAULT_BECOME_USER', show_origin=True) }}"
            ),
            json!(["root", "default"])
        );
        assert_eq!(
            q(
                &s,
                "{{ query('config', 'DEFAULT_NOPE', on_missing='skip') }}"
            ),
            json!([])
        );
        let e = render(&s, "{{ lookup('config', 'DEFAULT_NOPE') }}").unwrap_err();
        assert!(
            e.contains("No config definition exists for 'DEFAULT_NOPE'."),
            "{e}"
        );
    }

    #[test]
    fn with_loops_take_rendered_terms() {
        let s = scope(json!({}));
        assert_eq!(
            query_in_scope("items", json!(["a", ["b", "c"]]), &s).unwrap(),
            vec![json!("a"), json!("b"), json!("c")]
        );
        assert_eq!(
            query_in_scope("dict", json!({"a": 1}), &s).unwrap(),
            vec![json!({"key": "a", "value": 1})]
        );
        assert_eq!(
            query_in_scope("sequence", json!(" start=1 end=3 "), &s).unwrap(),
            vec![json!("1"), json!("2"), json!("3")]
        );
        assert_eq!(
            query_in_scope("nested", json!([[1, 2], ["a"]]), &s).unwrap(),
            vec![json!([1, "a"]), json!([2, "a"])]
        );
        assert_eq!(
            query_in_scope("together", json!([[1, 2], ["a"]]), &s).unwrap(),
            vec![json!([1, "a"]), json!([2, null])]
        );
        assert_eq!(
            query_in_scope("subelements", json!([[{"n": 1, "l": [5]}], "l"]), &s).unwrap(),
            vec![json!([{"n": 1}, 5])]
        );
        let e = query_in_scope("nosuch", json!([]), &s).unwrap_err();
        assert_eq!(e, "The lookup plugin 'nosuch' was not found.");
        let e = query_in_scope("sequence", json!("end=1000000000"), &s).unwrap_err();
        assert!(e.contains("settle stops at"), "{e}");
    }

    #[test]
    fn mersenne_twister_matches_python() {
        let mut r = PyRandom::from_str_seed("x");
        assert_eq!(
            [r.next_u32(), r.next_u32(), r.next_u32()],
            [2709212627, 1353581224, 2563747779]
        );
        let mut r = PyRandom::from_str_seed("");
        assert_eq!([r.next_u32(), r.next_u32()], [4124137760, 1951988028]);
    }
}
