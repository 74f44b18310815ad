//! Variables and templates: minijinja set up to render as Ansible renders.
//!
//! - Variables are looked up lazily through a [`Scope`]: a stack of layers in precedence order.
//!   A variable whose value is itself a template is rendered when it is used, in the scope of the
//!   use, as Ansible does (`vars: {a: "{{ b }}"}`).
//!   A mapping or list holding templates renders each item only when it is read, through any
//!   number of `{{ other }}` indirections, as Ansible 2.19 does.
//! - A string that is exactly one `{{ expression }}` keeps the expression's type (a list stays a
//!   list); anything else renders to text.
//! - Undefined variables are errors that name the variable; `default`, `is defined` and `omit`
//!   work as in Ansible. A variable whose template fails for another reason (a syntax error,
//!   a failed filter or lookup) is an invalid value: any use of it fails, `is defined` too.
//! - Template files render with `trim_blocks` on, `lstrip_blocks` off, and keep their trailing
//!   newline, so output matches Ansible's `template` module byte for byte.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr, ValueKind};
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value as Mj};
use serde_json::Value;

use crate::Unpoisoned;
use crate::Vars;

/// The marker `omit` renders to; arguments equal to it are dropped.
pub const OMIT: &str = "__omit_place_holder__settle__";

/// A template could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

impl TemplateError {
    /// The message of the undefined value that caused this error, without the variables it
    /// was reached through: `'x' is undefined` for `while rendering variable 'y': 'x' is
    /// undefined (in template ...)`. `None` when the error is not about an undefined value.
    pub fn undefined_message(&self) -> Option<String> {
        let mut text = self.message.as_str();
        while let Some(rest) = text.strip_prefix("while rendering variable '") {
            text = rest.split_once("': ").map_or(rest, |(_, inner)| inner);
        }
        let text = text.split(" (in template ").next().unwrap_or(text);
        (text.ends_with(" is undefined")
            || text.contains(" has no attribute ")
            || text.ends_with(" object has no element 0")
            || was_undefined_reason(text))
        .then(|| text.to_string())
    }
}

/// How many variables one look-up may go through, each defined by the next: a longer chain is
/// an error, not a stack overflow (Ansible stops between 80 and 90, at Python's recursion limit).
const MAX_VARIABLE_DEPTH: usize = 100;

thread_local! {
    /// The variables being rendered on this thread, outermost first, whatever their scope.
    static RESOLVING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The error of a variable whose template failed, naming it; through a chain of variables
/// only the outermost few are named (the cause names the chain when it is too deep).
fn rendering_variable(name: &str, inner: &str) -> String {
    const PREFIX: &str = "while rendering variable '";
    let mut rest = inner;
    // The variables the error came through, and how many more a shortened message stood for.
    let mut through = Vec::new();
    let mut more = 0;
    while let Some(after) = rest.strip_prefix(PREFIX)
        && let Some((inner_name, tail)) = after.split_once('\'')
    {
        if let Some(cause) = tail.strip_prefix(": ") {
            rest = cause;
        } else if let Some(short) = tail.strip_prefix(" (through '")
            && let Some((_, counted)) = short.split_once("' and ")
            && let Some((n, cause)) = counted.split_once(" more): ")
            && let Ok(n) = n.parse::<usize>()
        {
            more += n + 1;
            rest = cause;
        } else {
            break;
        }
        through.push(inner_name);
    }
    match through.len() + more {
        0..=3 => format!("{PREFIX}{name}': {inner}"),
        n => format!(
            "{PREFIX}{name}' (through '{}' and {} more): {rest}",
            through[0],
            n - 1
        ),
    }
}

/// A chain of variables too deep to follow, for its error: its first and last few names.
fn variable_chain(names: &[String], next: &str) -> String {
    let all: Vec<&str> = names.iter().map(String::as_str).chain([next]).collect();
    match all.len() {
        0..=8 => all.join(" -> "),
        n => format!(
            "{} -> ... -> {}",
            all[..3].join(" -> "),
            all[n - 3..].join(" -> ")
        ),
    }
}

thread_local! {
    /// The error of the first item of a lazy mapping or list that failed to render while a
    /// value was being turned into JSON ([`mj_to_json`]).
    static LAZY_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// Why the last undefined value of this thread's render is undefined, when a lookup knows
    /// better than "'expr' is undefined" (`No variable named 'x' was found.`).
    static UNDEFINED_REASON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// The last reasons given, so that an error carrying one is known as an undefined value's.
    static UNDEFINED_REASONS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The variable the last look-up in a scope did not find (`None` when it found one):
    /// minijinja's undefined value does not carry its name, and `lookup('env', 'X',
    /// default=bogus)` must say `'bogus' is undefined`.
    static LAST_MISSING_NAME: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Why the undefined value just passed as an argument is undefined: the reason `undef(hint)`
/// gave, else `'name' is undefined` when it was a variable that is not defined.
pub(crate) fn undefined_argument_reason() -> Option<String> {
    forget_undefined_reason().or_else(|| {
        LAST_MISSING_NAME
            .with(|n| n.borrow_mut().take())
            .map(|name| format!("'{name}' is undefined"))
    })
}

/// A filter's error about an undefined value whose message names the variable (`Mandatory
/// variable 'x' not defined.`): only the template engine knows the name, so the filter returns
/// the undefined value's own error with this as its source, and [`Templar`] fills the name in.
#[derive(Debug)]
pub(crate) struct NamingUndefined {
    /// The message, with `{name}` where `'x' ` goes (nothing when there is no name).
    pub message: &'static str,
}

impl fmt::Display for NamingUndefined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for NamingUndefined {}

impl NamingUndefined {
    /// The error to return for `undefined`.
    pub(crate) fn error(self, undefined: &Mj) -> minijinja::Error {
        match undefined.get_attr("") {
            Err(e) => e,
            Ok(_) => minijinja::Error::from(ErrorKind::UndefinedError),
        }
        .with_source(self)
    }

    /// The message, given the detail minijinja wrote (``'`x` is undefined'``).
    fn message_for(&self, detail: Option<&str>) -> String {
        let name = detail
            .and_then(|d| d.strip_prefix('`'))
            .and_then(|d| d.split_once("` is undefined"))
            .map(|(name, _)| format!("'{name}' "))
            .unwrap_or_default();
        self.message.replace("{name}", &name)
    }
}

/// Says why the undefined value about to be returned is undefined, for the error message.
pub(crate) fn note_undefined_reason(reason: String) {
    UNDEFINED_REASONS.with(|r| {
        let mut reasons = r.borrow_mut();
        if !reasons.contains(&reason) {
            if reasons.len() >= 16 {
                reasons.remove(0);
            }
            reasons.push(reason.clone());
        }
    });
    UNDEFINED_REASON.with(|r| *r.borrow_mut() = Some(reason));
}

fn was_undefined_reason(text: &str) -> bool {
    UNDEFINED_REASONS.with(|r| r.borrow().iter().any(|reason| reason == text))
}

/// Ansible's `undef(hint)`: an undefined value whose error, when used, is the hint.
pub(crate) fn undef(
    hint: Option<Mj>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Mj, minijinja::Error> {
    let hint = match hint {
        Some(hint) if hint.is_none() => UNDEF_DEFAULT_HINT.into(),
        Some(hint) => match hint.as_str() {
            Some(text) => text.to_string(),
            None => {
                return Err(plain_error(format!(
                    "The 'hint' argument must be of type 'str', not '{}'.",
                    python_type(&hint)
                )));
            }
        },
        None => kwargs
            .get::<Option<String>>("hint")?
            .unwrap_or_else(|| UNDEF_DEFAULT_HINT.into()),
    };
    kwargs.assert_all_used()?;
    note_undefined_reason(hint);
    Ok(Mj::UNDEFINED)
}

/// The hint `undef()` gives without one.
pub(crate) const UNDEF_DEFAULT_HINT: &str = "Mandatory variable has not been overridden";

/// A render begins: what earlier renders left about undefined values is not this one's.
fn start_render() {
    forget_undefined_reason();
    LAST_MISSING_NAME.with(|n| n.borrow_mut().take());
}

pub(crate) fn forget_undefined_reason() -> Option<String> {
    UNDEFINED_REASON.with(|r| r.borrow_mut().take())
}

/// Where other hosts' variables come from, for `hostvars[...]`.
pub trait HostVarsSource: Send + Sync + fmt::Debug {
    fn scope_for(self: Arc<Self>, host: &str) -> Option<Arc<Scope>>;
    fn host_names(&self) -> Vec<String>;
}

/// One layer of variables, and whether its values may hold templates.
///
/// Values written by people (playbooks, inventories, vars files, `-e`) are templates, rendered
/// when used. Values that came back from a host or from rendering (registered results, facts,
/// `set_fact` values, loop items) are data: used as they are, never rendered again, so text a
/// host prints can never make the controller evaluate it (Ansible 2.19's trust rule).
#[derive(Clone)]
pub struct Layer {
    vars: Arc<Vars>,
    /// A host's facts, which answer `ansible_facts` and the `ansible_*` names from one map
    /// (`vars` is empty then).
    facts: Option<Arc<crate::facts::Facts>>,
    data: bool,
}

impl Layer {
    /// Variables whose string values are templates.
    pub fn template(vars: Arc<Vars>) -> Self {
        Layer {
            vars,
            facts: None,
            data: false,
        }
    }

    /// Variables whose values are final: never rendered.
    pub fn data(vars: Arc<Vars>) -> Self {
        Layer {
            vars,
            facts: None,
            data: true,
        }
    }

    /// A host's facts: data.
    pub(crate) fn facts(facts: Arc<crate::facts::Facts>) -> Self {
        Layer {
            vars: Arc::default(),
            facts: Some(facts),
            data: true,
        }
    }

    fn get(&self, name: &str) -> Option<Cow<'_, Value>> {
        match &self.facts {
            Some(facts) => facts.get(name).map(Cow::Owned),
            None => self.vars.get(name).map(Cow::Borrowed),
        }
    }

    fn defines(&self, name: &str) -> bool {
        match &self.facts {
            Some(facts) => facts.defines(name),
            None => self.vars.contains_key(name),
        }
    }

    fn names(&self) -> Vec<Cow<'_, str>> {
        match &self.facts {
            Some(facts) => facts.names().into_iter().map(Cow::Owned).collect(),
            None => self
                .vars
                .keys()
                .map(|k| Cow::Borrowed(k.as_str()))
                .collect(),
        }
    }
}

/// The variables visible to one task on one host: layers from lowest to highest precedence.
pub struct Scope {
    layers: Vec<Layer>,
    hostvars: Option<Arc<dyn HostVarsSource>>,
    cache: Mutex<HashMap<String, Mj>>,
    resolving: Mutex<Vec<String>>,
    /// Variables whose templates failed, with their error (none: undefined), so that each
    /// fails once: a cycle or chain of failing variables is else tried again at every level,
    /// in time that doubles with each.
    failed: Mutex<HashMap<String, Option<String>>>,
    inner_error: Mutex<Option<String>>,
    /// Whether this scope is a host's in `hostvars`, whose listing leaves `hostvars` out (as
    /// Ansible's does): else `{{ vars }}` would list hostvars inside hostvars without end.
    in_hostvars: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<vars>")
    }
}

impl Scope {
    /// A scope of template layers (everything written by people).
    pub fn new(layers: Vec<Arc<Vars>>, hostvars: Option<Arc<dyn HostVarsSource>>) -> Arc<Self> {
        Scope::of_layers(layers.into_iter().map(Layer::template).collect(), hostvars)
    }

    /// A scope of layers some of which are data.
    pub fn of_layers(layers: Vec<Layer>, hostvars: Option<Arc<dyn HostVarsSource>>) -> Arc<Self> {
        Arc::new(Scope {
            layers,
            hostvars,
            cache: Mutex::default(),
            resolving: Mutex::default(),
            failed: Mutex::default(),
            inner_error: Mutex::default(),
            in_hostvars: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The same layers plus one more of templates on top (task vars, template paths).
    pub fn with_layer(self: &Arc<Self>, layer: Arc<Vars>) -> Arc<Self> {
        self.with_layer_of(Layer::template(layer))
    }

    /// The same layers plus one more of data on top (loop items, a registered result).
    pub fn with_data(self: &Arc<Self>, layer: Arc<Vars>) -> Arc<Self> {
        self.with_layer_of(Layer::data(layer))
    }

    /// The same layers plus the one given on top.
    pub fn with_layer_of(self: &Arc<Self>, layer: Layer) -> Arc<Self> {
        let mut layers = self.layers.clone();
        layers.push(layer);
        Scope::of_layers(layers, self.hostvars.clone())
    }

    /// The value as written, before rendering.
    pub fn raw(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.entry(name).map(|(v, _)| v)
    }

    /// The value as written, and whether it is data (never rendered). With
    /// `hash_behaviour = merge`, a mapping is merged with the mappings of the layers below it,
    /// recursively, down to the first layer where the variable is not a mapping.
    pub(crate) fn entry(&self, name: &str) -> Option<(Cow<'_, Value>, bool)> {
        let mut found = self
            .layers
            .iter()
            .rev()
            .filter_map(|l| l.get(name).map(|v| (v, l.data)));
        let (top, data) = found.next()?;
        if !top.is_object() || !hash_behaviour_merge() {
            return Some((top, data));
        }
        let mut below = Vec::new();
        let mut all_data = data;
        for (value, layer_data) in found.take_while(|(v, _)| v.is_object()) {
            below.push(value);
            all_data &= layer_data;
        }
        if below.is_empty() {
            return Some((top, data));
        }
        let mut merged = Value::Object(serde_json::Map::new());
        for value in below.into_iter().rev().chain([top]) {
            merge_hash(&mut merged, &value);
        }
        Some((Cow::Owned(merged), all_data))
    }

    /// A variable's value, rendered. `Ok(None)` when it is not defined.
    pub fn get(self: &Arc<Self>, name: &str) -> Result<Option<Value>, TemplateError> {
        match self.entry(name) {
            None => Ok(None),
            Some((v, true)) => crate::vaulted::reveal(&v)
                .map(Some)
                .map_err(|message| TemplateError { message }),
            Some((v, false)) => templar().render(&v, self).map(Some),
        }
    }

    /// Every visible variable name, for `vars` and debug output.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for layer in &self.layers {
            for k in layer.names() {
                if !names.iter().any(|n| *n == k) {
                    names.push(k.into_owned());
                }
            }
        }
        names
    }

    fn lookup(self: &Arc<Self>, name: &str) -> Option<Mj> {
        match name {
            "vars" => return Some(Mj::from_dyn_object(self.clone())),
            "hostvars" => return self.hostvars.clone().map(|h| Mj::from_object(HostVars(h))),
            "omit" => return Some(Mj::from(OMIT)),
            _ => {}
        }
        // (A read of facts leaves no note: they are data, which has no tags to find.)
        if let Some(layer) = self.layers.iter().rev().find(|l| l.defines(name))
            && layer.facts.is_none()
        {
            crate::filters::protomatter::note_read(&layer.vars, name, layer.data);
        }
        if let Some(v) = self.cache.lock().unpoisoned().get(name) {
            return Some(Lazy::from_cache(v, self));
        }
        if let Some(failure) = self.failed.lock().unpoisoned().get(name).cloned() {
            let message = failure?;
            let mut slot = self.inner_error.lock().unpoisoned();
            if slot.is_none() {
                *slot = Some(message.clone());
            }
            return Some(Mj::from(plain_error(message)));
        }
        let (raw, data) = self.entry(name)?;
        let value = if !data && needs_render(&raw) {
            {
                let mut resolving = self.resolving.lock().unpoisoned();
                if resolving.iter().any(|n| n == name) {
                    let message =
                        format!("Recursive loop detected in template: {name} refers to itself");
                    *self.inner_error.lock().unpoisoned() = Some(message.clone());
                    return Some(Mj::from(plain_error(message)));
                }
                // Counted on the thread, across scopes: `hostvars[h].x` looks `x` up in a new
                // scope of `h`, where this one's chain is not seen.
                let chain = RESOLVING.with(|c| {
                    let c = c.borrow();
                    (c.len() >= MAX_VARIABLE_DEPTH).then(|| variable_chain(&c, name))
                });
                if let Some(chain) = chain {
                    let message = format!(
                        "Recursive loop detected in template: maximum recursion depth exceeded \
                         (variables nested more than {MAX_VARIABLE_DEPTH} deep: {chain})"
                    );
                    *self.inner_error.lock().unpoisoned() = Some(message.clone());
                    return Some(Mj::from(plain_error(message)));
                }
                resolving.push(name.to_string());
            }
            // An error left by an earlier, handled look-up (`x | default(…)`) is not this
            // render's: the render below must not report it as its own.
            self.take_inner_error();
            RESOLVING.with(|c| c.borrow_mut().push(name.to_string()));
            let rendered = templar().render_lazily(&raw, self);
            RESOLVING.with(|c| c.borrow_mut().pop());
            self.resolving.lock().unpoisoned().retain(|n| n != name);
            match rendered {
                Ok(v) => v,
                Err(e) => {
                    let message = rendering_variable(name, &e.message);
                    let mut slot = self.inner_error.lock().unpoisoned();
                    if slot.is_none() {
                        *slot = Some(message.clone());
                    }
                    // An undefined value inside makes the variable undefined (`default` and
                    // `is defined` take it); any other error (a syntax error, a failed filter
                    // or lookup) is Ansible 2.19's captured-exception marker: an invalid value,
                    // which fails the template that looks the variable up, `is defined` too.
                    let undefined = e.undefined_message().is_some();
                    self.failed
                        .lock()
                        .unpoisoned()
                        .insert(name.to_string(), (!undefined).then(|| message.clone()));
                    if undefined {
                        return None;
                    }
                    return Some(Mj::from(plain_error(message)));
                }
            }
        } else {
            crate::vaulted::to_template_value(&raw)
        };
        self.cache
            .lock()
            .unpoisoned()
            .insert(name.to_string(), Lazy::for_cache(&value, self));
        Some(value)
    }

    fn take_inner_error(&self) -> Option<String> {
        self.inner_error.lock().unpoisoned().take()
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        let name = key.as_str()?;
        let found = self.lookup(name);
        // A function's name is looked up here before the environment's globals, after its
        // arguments: it must not hide the name of the argument that was missing.
        let missing = found.is_none() && !templar().env.globals().any(|(global, _)| global == name);
        if missing || found.is_some() {
            LAST_MISSING_NAME.with(|n| *n.borrow_mut() = missing.then(|| name.to_string()));
        }
        found
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names = self.names();
        // `{{ vars }}` holds `hostvars`, as Ansible's does.
        if self.hostvars.is_some()
            && !self.in_hostvars.load(std::sync::atomic::Ordering::Relaxed)
            && !names.iter().any(|n| n == "hostvars")
        {
            names.push("hostvars".into());
        }
        Enumerator::Values(names.into_iter().map(Mj::from).collect())
    }
}

/// `hostvars`: every host's variables, rendered in that host's scope when read.
#[derive(Debug)]
struct HostVars(Arc<dyn HostVarsSource>);

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        let scope = self.0.clone().scope_for(key.as_str()?)?;
        scope
            .in_hostvars
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(Mj::from_dyn_object(scope))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.host_names().into_iter().map(Mj::from).collect())
    }
}

/// The settings a `#jinja2:` line may give (Ansible's `TemplateOverrides`).
const JINJA2_OVERRIDES: &[&str] = &[
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
];

/// A template file's `#jinja2:key:value,…` first line (`#jinja2:trim_blocks:False,
/// variable_start_string:'<<'`): the settings it gives, as the `template` task's options, and
/// the source without that line. Values are Python literals: quoted text, `True`/`False`.
/// A malformed line is an error in Ansible's words.
pub fn jinja2_header(source: &str) -> Result<(serde_json::Map<String, Value>, String), String> {
    let mut settings = serde_json::Map::new();
    let Some(rest) = source.strip_prefix("#jinja2:") else {
        return Ok((settings, source.to_string()));
    };
    let Some((line, body)) = rest.split_once('\n') else {
        return Err("Missing newline after '#jinja2:' override.".into());
    };
    for part in header_pairs(line.trim_end_matches('\r')) {
        if part.trim().is_empty() {
            return Err("Empty '#jinja2:' override pair not allowed.".into());
        }
        let Some((key, value)) = part.split_once(':') else {
            return Err(format!(
                "Missing key-value separator `:` in '#jinja2:' override pair {}.",
                python_str(&part)
            ));
        };
        let key = key.trim();
        if !JINJA2_OVERRIDES.contains(&key) {
            return Err(format!(
                "Invalid '#jinja2:' override key {}.",
                python_str(key)
            ));
        }
        let value = value.trim();
        let value = match value {
            "True" | "true" => Value::Bool(true),
            "False" | "false" => Value::Bool(false),
            _ => Value::String(
                value
                    .strip_prefix(['\'', '"'])
                    .and_then(|v| v.strip_suffix(['\'', '"']))
                    .unwrap_or(value)
                    .to_string(),
            ),
        };
        settings.insert(key.to_string(), value);
    }
    Ok((settings, body.to_string()))
}

/// The comma-separated pairs of a `#jinja2:` line; commas inside quotes stay.
fn header_pairs(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// Whether a value holds a template anywhere inside.
pub fn needs_render(value: &Value) -> bool {
    match value {
        Value::String(s) => is_template(s),
        Value::Array(items) => items.iter().any(needs_render),
        Value::Object(map) => map.values().any(needs_render),
        _ => false,
    }
}

/// Ansible 2.19's deprecation of a magic variable a template names (`play_hosts`), at the
/// place the template was written.
fn deprecated_variables(source: &str) {
    settle_yaml::deprecation::deprecated_variables_in(source, crate::exec::current_task_location);
}

/// How Ansible 2.19's message for a condition whose result is not a boolean begins.
pub const BROKEN_CONDITIONAL: &str = "Conditional result";

thread_local! {
    /// The message of the last condition whose result was not a boolean and was let through
    /// by `ALLOW_BROKEN_CONDITIONALS`, for the caller that knows where it was written.
    static ALLOWED_BROKEN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// [`ALLOWED_BROKEN`]'s message, once.
pub fn take_allowed_broken_conditional() -> Option<String> {
    ALLOWED_BROKEN.with(|b| b.borrow_mut().take())
}

/// `ALLOW_BROKEN_CONDITIONALS` (`ANSIBLE_ALLOW_BROKEN_CONDITIONALS`, default false): a
/// condition whose result is not a boolean counts by its truthiness instead of failing.
pub fn allow_broken_conditionals() -> bool {
    env_flag("ANSIBLE_ALLOW_BROKEN_CONDITIONALS")
}

pub use settle_inventory::{hash_behaviour_merge, merge_hash};

/// An `ANSIBLE_*` boolean setting from the environment (ansible.cfg's are handed on there):
/// true when set to one of Ansible's words for true.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| json_bool(&Value::String(v)))
}

pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// A template file's own syntax: the (start, end) pairs of blocks, variables and comments,
/// and the prefixes of line statements and line comments when it has them.
pub struct FileSyntax {
    pub delimiters: [(String, String); 3],
    pub line_statement_prefix: Option<String>,
    pub line_comment_prefix: Option<String>,
}

/// The one template environment, with Ansible's filters and manners.
pub struct Templar {
    /// Leaked (a handful per run), so that what it compiles can be kept for the run.
    env: &'static Environment<'static>,
    /// Expressions compiled from their source (each task's conditions and `{{ expr }}`s are
    /// rendered for every host), up to [`COMPILED_KEPT`] of them.
    expressions: Compiled<minijinja::Expression<'static, 'static>>,
    /// The environments of template files, one per `trim_blocks`/`lstrip_blocks` setting:
    /// indexed by `trim * 2 + lstrip`. Jinja drops the file's last newline there, and
    /// [`keep_newlines`] puts back what the source ended with, as Ansible does.
    variants: Vec<Environment<'static>>,
}

static TEMPLAR: OnceLock<Templar> = OnceLock::new();

/// Compiled templates and expressions by their source, shared by the run's threads.
type Compiled<T> = std::sync::RwLock<HashMap<String, Arc<T>>>;

/// How many compiled templates and expressions a templar keeps: far more than a playbook
/// has; sources past it (generated ones) are compiled each time.
const COMPILED_KEPT: usize = 20_000;

/// The name under which a template's source is its own name for the environment's loader,
/// which keeps it compiled (a byte no playbook's `{% include %}` names).
const SOURCE_NAME: &str = "\u{1}source:";

/// What a condition's text is kept under among compiled expressions.
const CONDITION_KEY: &str = "\u{1}condition:";
/// What a single expression's text (`{{ expr }}` alone) is kept under, compiled as its value.
const WHOLE_KEY: &str = "\u{1}whole:";

/// The loader of the main environment: a name made of [`SOURCE_NAME`] and the text of a
/// YAML value is that text as a template ([`crate::jinja_source::yaml_template`]); no other
/// name is a template.
fn source_loader(name: &str) -> Result<Option<String>, minijinja::Error> {
    let source = name
        .strip_prefix(SOURCE_NAME)
        .map(|text| crate::jinja_source::yaml_template(text).into_owned());
    if source.is_some() {
        TEMPLATES_KEPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(source)
}

/// How many templates the environments keep compiled by their source (the loader counts
/// each it loads), up to [`COMPILED_KEPT`].
static TEMPLATES_KEPT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The name under which a template file is kept compiled by the environments of
/// [`Templar::render_file_with`]: this, the file's name, a NUL, then its text (the key
/// changes when the text does, so an edited file is compiled afresh).
const FILE_NAME: &str = "\u{1}file:";

/// How many bytes of template files the environments keep compiled, at most (their compiled
/// form takes a few times that); past that a file is compiled each time it is rendered.
const FILE_BYTES_KEPT: usize = 8 << 20;

/// The bytes of template files kept so far (the loader counts them).
static FILE_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The loader of the template-file environments: a [`FILE_NAME`] key gives the file's text
/// rewritten as [`crate::jinja_source::template`] rewrites it; no other name is a template
/// (`{% include %}` and its kin are never kept: see [`kept_file_key`]).
fn file_loader(key: &str) -> Result<Option<String>, minijinja::Error> {
    let Some((_, source)) = key.strip_prefix(FILE_NAME).and_then(|k| k.split_once('\0')) else {
        return Ok(None);
    };
    FILE_BYTES.fetch_add(key.len(), std::sync::atomic::Ordering::Relaxed);
    Ok(Some(crate::jinja_source::template(source).into_owned()))
}

/// The key a template file is kept compiled under, or `None` when it is rendered without
/// keeping: it loads other templates (which may change on disk during the run, and are read
/// afresh each time, as Ansible reads them), or the bytes kept are spent.
fn kept_file_key(name: &str, source: &str) -> Option<String> {
    let loads = ["include", "import", "extends"]
        .iter()
        .any(|word| source.contains(word));
    let spent =
        FILE_BYTES.load(std::sync::atomic::Ordering::Relaxed) + source.len() > FILE_BYTES_KEPT;
    (!loads && !spent && !name.contains('\0')).then(|| format!("{FILE_NAME}{name}\0{source}"))
}

/// The file's own name in a template error's name: a kept file's key is more than that.
fn file_name_of(name: &str) -> &str {
    name.strip_prefix(FILE_NAME)
        .and_then(|k| k.split_once('\0'))
        .map_or(name, |(name, _)| name)
}

/// The templar with the Python filters and tests found so far (see [`crate::python_plugins`]):
/// a new one, leaked, each time the worker names more (a few per run at most).
static WITH_PLUGINS: std::sync::RwLock<Option<&'static Templar>> = std::sync::RwLock::new(None);

pub fn templar() -> &'static Templar {
    if let Some(current) = *WITH_PLUGINS.read().unwrap_or_else(|e| e.into_inner()) {
        return current;
    }
    TEMPLAR.get_or_init(Templar::new)
}

/// Adds the Python filters and tests the worker provides to a new current templar.
fn install_python_plugins() -> &'static Templar {
    let mut current = WITH_PLUGINS.write().unwrap_or_else(|e| e.into_inner());
    let base = TEMPLAR.get_or_init(Templar::new);
    let mut env = base.env.clone();
    let mut variants = base.variants.clone();
    for (kind, name) in crate::python_plugins::provided() {
        for env in std::iter::once(&mut env).chain(variants.iter_mut()) {
            add_python_plugin(env, kind, &name);
        }
    }
    let aliases = ALIASES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (kind, name, short) in aliases {
        for env in std::iter::once(&mut env).chain(variants.iter_mut()) {
            add_alias(env, kind, &name, &short);
        }
    }
    let templar: &'static Templar = Box::leak(Box::new(Templar::with(env, variants)));
    *current = Some(templar);
    templar
}

fn add_python_plugin(
    env: &mut Environment<'static>,
    kind: crate::python_plugins::Kind,
    name: &str,
) {
    use crate::python_plugins::{Kind, call};
    use minijinja::value::{Rest, ValueOrKwargs};
    let owned = name.to_string();
    match kind {
        Kind::Filter => env.add_filter(
            owned.clone(),
            move |state: &minijinja::State, args: Rest<ValueOrKwargs>| {
                call(Kind::Filter, &owned, state, args)
            },
        ),
        Kind::Test => env.add_test(
            owned.clone(),
            move |state: &minijinja::State, args: Rest<ValueOrKwargs>| {
                call(Kind::Test, &owned, state, args).map(|v| v.is_true())
            },
        ),
    }
}

/// `ansible.builtin.X` and `ansible.legacy.X` names of settle's own filters and tests, found
/// so far: (kind, the name used, settle's name).
static ALIASES: Mutex<Vec<(crate::python_plugins::Kind, String, String)>> = Mutex::new(Vec::new());

/// settle's own filter or test an `ansible.builtin.`/`ansible.legacy.` name stands for.
fn native_alias(kind: crate::python_plugins::Kind, name: &str) -> Option<String> {
    use crate::python_plugins::Kind;
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))?;
    let mut state = TEMPLAR.get_or_init(Templar::new).env.empty_state();
    let missing = match kind {
        Kind::Filter => state.apply_filter(short, &[]).err().map(|e| e.kind()),
        Kind::Test => state.perform_test(short, &[]).err().map(|e| e.kind()),
    };
    (!matches!(
        missing,
        Some(ErrorKind::UnknownFilter | ErrorKind::UnknownTest)
    ))
    .then(|| short.to_string())
}

fn add_alias(
    env: &mut Environment<'static>,
    kind: crate::python_plugins::Kind,
    name: &str,
    short: &str,
) {
    use crate::python_plugins::Kind;
    let short = short.to_string();
    match kind {
        Kind::Filter => env.add_filter(
            name.to_string(),
            move |state: &minijinja::State, args: minijinja::value::Rest<Mj>| {
                // A fresh state: minijinja lends no mutable one to a filter.
                state.env().empty_state().apply_filter(&short, &args)
            },
        ),
        Kind::Test => env.add_test(
            name.to_string(),
            move |state: &minijinja::State, args: minijinja::value::Rest<Mj>| {
                state.env().empty_state().perform_test(&short, &args)
            },
        ),
    }
}

/// The filter or test an error says is unknown: `filter x is unknown`. `map('x')` and
/// `select('x')` fail without the name: then the first name given to one of those in the
/// template that settle lacks.
fn unknown_plugin(err: &minijinja::Error) -> Option<(crate::python_plugins::Kind, String)> {
    use crate::python_plugins::Kind;
    let kind = match err.kind() {
        ErrorKind::UnknownFilter => Kind::Filter,
        ErrorKind::UnknownTest => Kind::Test,
        _ => return None,
    };
    if let Some(name) = err
        .detail()
        .and_then(|d| d.strip_prefix(kind.word()))
        .and_then(|d| d.strip_suffix(" is unknown"))
    {
        return Some((kind, name.trim().to_string()));
    }
    let source = err.template_source()?;
    let mut state = templar().env.empty_state();
    crate::jinja_source::names_given_to_higher_order(source, kind == Kind::Filter)
        .into_iter()
        .find(|name| {
            let kind_of = match kind {
                Kind::Filter => state.apply_filter(name, &[]).err().map(|e| e.kind()),
                Kind::Test => state.perform_test(name, &[]).err().map(|e| e.kind()),
            };
            matches!(
                kind_of,
                Some(ErrorKind::UnknownFilter | ErrorKind::UnknownTest)
            )
        })
        .map(|name| (kind, name))
}

impl Templar {
    fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Jinja as Ansible sets it up never escapes: minijinja's default escapes by the
        // template's name (`x.yml.j2` would quote every string as JSON).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // Only custom delimiters can make the syntax config fail, and these are the defaults.
        #[allow(clippy::expect_used)]
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(false)
                .keep_trailing_newline(true)
                .build()
                .expect("static syntax config"),
        );
        env.set_debug(true);
        env.set_recursion_limit(200);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(python_methods);
        crate::filters::register(&mut env);
        env.add_function(crate::jinja_source::CHAIN, crate::jinja_source::chain);
        env.add_function(crate::jinja_source::LOOKUP_TEMPLATE, lookup_template);
        env.add_function(crate::jinja_source::DUMP_OBJECT, dump_object);
        env.add_function(crate::jinja_source::MINUS, crate::filters::time::subtract);
        // Where the source could not be rewritten (`map('ansible._protomatter.dump_object')`),
        // values without errors pass through as in Ansible.
        env.add_filter("ansible._protomatter.dump_object", |v: Mj| v);
        env.add_function(WHOLE, whole);
        env.add_function(crate::native_macros::KEEP, crate::native_macros::keep);
        env.add_function(
            crate::native_macros::NATIVE_MACRO,
            crate::native_macros::native_macro,
        );
        crate::lookups::register(&mut env);
        env.set_formatter(|out, state, value| {
            // Ansible prints a None inside text as nothing ("a{{ none }}b" is "ab").
            if value.is_none() {
                return Ok(());
            }
            if value.is_undefined() || matches!(value.kind(), ValueKind::String) || value.is_safe()
            {
                crate::native_macros::note_printed(value, value.as_str().unwrap_or(""));
                return minijinja::escape_formatter(out, state, value);
            }
            // An item of a lazy mapping or list that failed: its error.
            if value.kind() == ValueKind::Invalid {
                return Err(crate::jinja_source::invalid_error(value.clone()));
            }
            // A lazy mapping or list is rendered whole when printed: an error inside is raised.
            if value.downcast_object_ref::<Lazy>().is_some() {
                let json = mj_to_json(value).map_err(|e| plain_error(e.message))?;
                let rendered = crate::vaulted::to_template_value(&json);
                let text = python_repr(&rendered, true);
                crate::native_macros::note_printed(&rendered, &text);
                return out.write_str(&text).map_err(minijinja::Error::from);
            }
            // As Ansible 2.19: a list or mapping printed with an undefined value inside fails
            // (`{{ [nope] }} x`), as it does alone.
            if holds_undefined(value) {
                let reason =
                    undefined_argument_reason().unwrap_or_else(|| "an undefined value".to_string());
                return Err(minijinja::Error::new(ErrorKind::UndefinedError, reason));
            }
            let text = python_repr(value, true);
            crate::native_macros::note_printed(value, &text);
            out.write_str(&text).map_err(minijinja::Error::from)
        });
        let variants = (0..4)
            .map(|i| {
                let mut variant = env.clone();
                // As above: the default delimiters cannot fail.
                #[allow(clippy::expect_used)]
                variant.set_syntax(
                    minijinja::syntax::SyntaxConfig::builder()
                        .trim_blocks(i / 2 == 1)
                        .lstrip_blocks(i % 2 == 1)
                        .keep_trailing_newline(false)
                        .build()
                        .expect("static syntax config"),
                );
                variant.set_loader(file_loader);
                variant
            })
            .collect();
        env.set_loader(source_loader);
        Templar::with(env, variants)
    }

    fn with(env: Environment<'static>, variants: Vec<Environment<'static>>) -> Self {
        Templar {
            env: Box::leak(Box::new(env)),
            expressions: Default::default(),
            variants,
        }
    }

    /// The expression compiled from `source`, kept for the next time.
    fn compiled_expression(
        &self,
        source: &str,
    ) -> Result<Arc<minijinja::Expression<'static, 'static>>, minijinja::Error> {
        self.compiled_expression_by(source, || source.to_string())
    }

    /// The expression compiled from the source `make` gives, kept under `key` (the text it
    /// was made from) for the next time, so that the making is done once too.
    fn compiled_expression_by(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<Arc<minijinja::Expression<'static, 'static>>, minijinja::Error> {
        let read = self.expressions.read().unwrap_or_else(|e| e.into_inner());
        if let Some(compiled) = read.get(key) {
            return Ok(compiled.clone());
        }
        let full = read.len() >= COMPILED_KEPT;
        drop(read);
        let compiled = Arc::new(self.env.compile_expression_owned(make())?);
        if !full {
            self.expressions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.to_string(), compiled.clone());
        }
        Ok(compiled)
    }

    /// A template from a YAML value rendered ([`crate::jinja_source::yaml_template`]'s
    /// rewrite of it), rewritten and compiled once for the run through the environment's
    /// loader (up to [`COMPILED_KEPT`] texts; a long one, or one past that, each time).
    fn render_yaml_template(&self, text: &str, ctx: Mj) -> Result<String, minijinja::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        if text.len() > 4096 || TEMPLATES_KEPT.load(Relaxed) >= COMPILED_KEPT {
            let source = crate::jinja_source::yaml_template(text);
            return self.env.render_str(&source, ctx);
        }
        self.env
            .get_template(&format!("{SOURCE_NAME}{text}"))?
            .render(ctx)
    }

    /// The environment itself, for lookups that render with other delimiters.
    pub(crate) fn environment(&self) -> &Environment<'static> {
        self.env
    }

    /// After `err`: when it is about a filter or test settle lacks and a Python plugin
    /// provides it, runs `f` again with a templar that has the plugin (once per name per run:
    /// what ran before the unknown name runs twice then). Else `err`, as Ansible words it.
    fn recover<T>(
        &self,
        mut err: minijinja::Error,
        scope: &Arc<Scope>,
        source: &str,
        f: impl Fn(&Templar) -> Result<T, minijinja::Error>,
    ) -> Result<T, TemplateError> {
        let mut current = self;
        for _ in 0..16 {
            let Some((kind, name)) = unknown_plugin(&err) else {
                break;
            };
            // No plugin can have a name that is not a (dotted) identifier.
            if !name.split('.').all(|part| {
                part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) {
                break;
            }
            if let Some(short) = native_alias(kind, &name) {
                ALIASES
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((kind, name.clone(), short));
                current = install_python_plugins();
            } else {
                match crate::python_plugins::provides(kind, &name, scope) {
                    Ok(true) => current = install_python_plugins(),
                    Ok(false) => break,
                    Err(message) => {
                        let shown: String = source.chars().take(120).collect();
                        return Err(TemplateError {
                            message: format!("{message} (in template {shown:?})"),
                        });
                    }
                }
            }
            // What the failed attempt left is not this attempt's: a variable it could not
            // render would else be reported inside itself ("while rendering variable 'x':
            // while rendering variable 'x': …").
            scope.take_inner_error();
            match f(current) {
                Ok(value) => return Ok(value),
                Err(e) => err = e,
            }
        }
        Err(current.error(err, scope, source))
    }

    fn error(&self, err: minijinja::Error, scope: &Arc<Scope>, source: &str) -> TemplateError {
        let err = included_cause(&err);
        if let Some(inner) = scope.take_inner_error() {
            return TemplateError { message: inner };
        }
        if let Some(naming) =
            std::error::Error::source(err).and_then(|s| s.downcast_ref::<NamingUndefined>())
        {
            let shown: String = source.chars().take(120).collect();
            return TemplateError {
                message: format!(
                    "{} (in template {shown:?})",
                    naming.message_for(err.detail())
                ),
            };
        }
        let detail = err.detail().map(str::to_string);
        let plain = std::error::Error::source(err).is_some_and(|s| s.is::<PlainMessage>());
        let reason = forget_undefined_reason().filter(|_| err.kind() == ErrorKind::UndefinedError);
        let message = match (err.kind(), reason.or(detail)) {
            (ErrorKind::UndefinedError, Some(d)) => {
                let d = d.replace('`', "'");
                self.missing_attribute(&d, scope).unwrap_or(d)
            }
            (_, Some(d)) if plain => d,
            (ErrorKind::UnknownFilter | ErrorKind::UnknownTest, _)
                if let Some((plugin, name)) = failed_plugin(err) =>
            {
                format!("Syntax error in template: No {plugin} named '{name}'.")
            }
            (ErrorKind::UnknownFilter | ErrorKind::UnknownTest, _)
                if let Some((kind, name)) = unknown_plugin(err) =>
            {
                format!(
                    "Syntax error in template: No {} named '{name}'.",
                    kind.word()
                )
            }
            // Jinja calls what a name or an attribute gives: an unknown one is undefined.
            (ErrorKind::UnknownFunction, Some(d)) if d.ends_with(" is unknown") => {
                format!("'{}' is undefined", d.trim_end_matches(" is unknown"))
            }
            (ErrorKind::UnknownMethod, Some(d)) if let Some(message) = unknown_method(&d) => {
                message
            }
            (ErrorKind::InvalidOperation, Some(d)) if python_zero_division(&d).is_some() => {
                python_zero_division(&d).unwrap_or_default().to_string()
            }
            (_, Some(d)) if let Some((kind, name)) = failed_plugin(err) => format!(
                "The {kind} plugin 'ansible.builtin.{name}' failed: {}",
                d.replace('`', "'")
            ),
            // Ansible's words for what Jinja could not parse.
            (ErrorKind::SyntaxError, Some(d)) => {
                // Jinja's words where an expression was wanted and the tag ended.
                let d = match d.as_str() {
                    "unexpected end of variable block" => "unexpected 'end of print statement'",
                    "unexpected end of block" => {
                        "Expected an expression, got 'end of statement block'"
                    }
                    other => other,
                };
                format!("Syntax error in template: {}", d.replace('`', "'"))
            }
            (_, Some(d)) => format!("{}: {}", err.kind(), d.replace('`', "'")),
            (kind, None) => kind.to_string(),
        };
        let shown: String = source.chars().take(120).collect();
        let origin = format!(" (in template {shown:?})");
        // Through `hostvars` a template's error comes back through the same template again.
        match message.ends_with(&origin) {
            true => TemplateError { message },
            false => TemplateError {
                message: message + &origin,
            },
        }
    }

    /// Ansible's words for `'a.b.c' is undefined` when `a` is defined: the first step that
    /// is missing, `object of type 'dict' has no attribute 'b'`; `'a' is undefined` when `a`
    /// itself is. `None` when the message is not about such a path.
    fn missing_attribute(&self, message: &str, scope: &Arc<Scope>) -> Option<String> {
        let path = message.strip_prefix('\'')?.strip_suffix("' is undefined")?;
        let steps = attribute_path(path)?;
        let mut parent: Option<Mj> = None;
        for (end, name) in steps {
            let value = self
                .env
                .compile_expression(&path[..end])
                .ok()
                .and_then(|e| e.eval(Mj::from_dyn_object(scope.clone())).ok())
                .filter(|v| !v.is_undefined());
            match (value, &parent) {
                (Some(v), _) => parent = Some(v),
                (None, None) => return Some(format!("'{name}' is undefined")),
                (None, Some(p)) => {
                    let kind = python_type(p);
                    let step = &path[..end];
                    let index = step.ends_with(']')
                        && !step.ends_with("']")
                        && !step.ends_with("\"]")
                        && name.parse::<i64>().is_ok();
                    // Jinja's words for a missing index: Ansible words only a name that
                    // Python counts as true, so `[0]` keeps Jinja's.
                    return Some(match (index, name.as_str()) {
                        (true, "0") => format!("{kind} object has no element 0"),
                        (true, _) => format!("object of type '{kind}' has no attribute {name}"),
                        _ => format!("object of type '{kind}' has no attribute '{name}'"),
                    });
                }
            }
        }
        None
    }

    /// Renders every template inside a value. A string that is one expression keeps its type.
    /// `!vault` values inside are decrypted: this is what a task gets.
    pub fn render(&self, value: &Value, scope: &Arc<Scope>) -> Result<Value, TemplateError> {
        let rendered = self.render_keeping_vaulted(value, scope)?;
        crate::vaulted::reveal(&rendered).map_err(|message| TemplateError { message })
    }

    /// Renders as [`Templar::render`] does, but `!vault` values stay encrypted until a template
    /// uses them (a variable's value).
    fn render_keeping_vaulted(
        &self,
        value: &Value,
        scope: &Arc<Scope>,
    ) -> Result<Value, TemplateError> {
        self.render_each(value, scope, &mut |s| self.render_string(s, scope))
    }

    /// Renders every template inside a value as `render` does, but a part that is undefined
    /// becomes Ansible 2.19's marker `<< error N - message >>` instead of failing, as `debug:
    /// var=` shows it. `markers` collects the messages, numbered in the order met.
    pub fn render_marking_undefined(
        &self,
        value: &Value,
        scope: &Arc<Scope>,
        markers: &mut Vec<String>,
    ) -> Result<Value, TemplateError> {
        let rendered =
            self.render_each(value, scope, &mut |s| match self.render_string(s, scope) {
                Ok(v) => Ok(v),
                Err(e) => match e.undefined_message() {
                    Some(message) => {
                        markers.push(message.clone());
                        Ok(Value::String(format!(
                            "<< error {} - {message} >>",
                            markers.len()
                        )))
                    }
                    None => Err(e),
                },
            })?;
        crate::vaulted::reveal(&rendered).map_err(|message| TemplateError { message })
    }

    /// Walks a value: each string holding a template goes through `template`, mapping keys
    /// that are templates are rendered, everything else is kept.
    fn render_each(
        &self,
        value: &Value,
        scope: &Arc<Scope>,
        template: &mut dyn FnMut(&str) -> Result<Value, TemplateError>,
    ) -> Result<Value, TemplateError> {
        match value {
            // Untrusted text (a host's, or what a template computed) renders to itself; the
            // common case needs no template engine.
            Value::String(s) if is_template(s) => match plain_raw(s) {
                Some(text) => Ok(Value::String(text.into())),
                None => template(s),
            },
            Value::Array(items) => items
                .iter()
                .map(|v| self.render_each(v, scope, template))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    let key = if is_template(k) {
                        self.render_text(k, scope)?
                    } else {
                        k.clone()
                    };
                    out.insert(key, self.render_each(v, scope, template)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn render_string(&self, s: &str, scope: &Arc<Scope>) -> Result<Value, TemplateError> {
        refuse_repeated_keyword(s, false)?;
        deprecated_variables(s);
        // `{{ expr }}` alone keeps the expression's type. Whether the text between the outer
        // braces is one expression is the parser's call: `{{ a | combine({'b': {'c': 1}}) }}`
        // is one, `{{ a }} {{ b }}` is not.
        // Jinja drops one newline at the end of a template, so `{{ expr }}\n` (a folded `>`
        // scalar) is still one expression; Ansible gives the newline back only to text.
        let (body, newline) = match s.strip_suffix('\n') {
            Some(body) if single_expression(body).is_some() => (body, true),
            _ => (s, false),
        };
        start_render();
        if let Some(result) = self.single_expression_value(body, s, scope) {
            let json = mj_to_json(&result?).map_err(|e| match scope.take_inner_error() {
                Some(message) => TemplateError { message },
                None => e,
            })?;
            return match json {
                Value::String(text) if newline && !text.ends_with('\n') => {
                    Ok(Value::String(text + "\n"))
                }
                other => Ok(other),
            };
        }
        // Macro definitions, then one expression: the expression's value, as in Ansible
        // (`{% macro m() %}{{ [1] }}{% endmacro %}{{ m() }}` is a list).
        let lead = crate::native_macros::leading_definitions(body);
        if lead > 0
            && let Some(expr) = single_expression(&body[lead..])
            && self.compiled_expression(expr).is_ok()
        {
            let text = self.render_text(
                &format!(
                    "{}{{{{ {}(({expr})) }}}}",
                    &body[..lead],
                    crate::native_macros::KEEP
                ),
                scope,
            )?;
            return match crate::native_macros::take(&text) {
                Some(value) => mj_to_json(&value),
                None if newline && !text.ends_with('\n') => Ok(Value::String(text + "\n")),
                None => Ok(Value::String(text)),
            };
        }
        // Tags around one printed value: the value, when it is all the output.
        if s.contains("{%") && crate::native_macros::may_give_a_value(s) {
            let (text, value) = self.render_text_noting(s, scope)?;
            return match value {
                Some(value) => mj_to_json(&value),
                None => Ok(Value::String(text)),
            };
        }
        self.render_text(s, scope).map(Value::String)
    }

    /// The value of `body` when it is one `{{ expression }}` (`None` when it is not); `s` is
    /// the template as written, for messages.
    fn single_expression_value(
        &self,
        body: &str,
        s: &str,
        scope: &Arc<Scope>,
    ) -> Option<Result<Mj, TemplateError>> {
        let expr = single_expression(body)?;
        self.compiled_expression(expr).ok()?;
        // Kept under the expression's own text: the rewrite is done once too.
        let key = format!("{WHOLE_KEY}{expr}");
        let source = || format!("{WHOLE}(({}))", crate::jinja_source::yaml_expression(expr));
        let compiled = self.compiled_expression_by(&key, source).ok()?;
        let result = match compiled.eval(Mj::from_dyn_object(scope.clone())) {
            Ok(result) => result,
            Err(e) => match self.recover(e, scope, s, |t| {
                t.compiled_expression_by(&key, source)?
                    .eval(Mj::from_dyn_object(scope.clone()))
            }) {
                Ok(result) => result,
                Err(e) => return Some(Err(e)),
            },
        };
        // Ansible 2.19 fails when the result holds an undefined value anywhere (a list made
        // by `map(attribute=...)` over items lacking it), not only when it is undefined.
        if result.is_undefined() || list_holds_undefined(&result) {
            return Some(Err(self.error(
                minijinja::Error::new(
                    ErrorKind::UndefinedError,
                    format!("'{}' is undefined", expr.trim()),
                ),
                scope,
                s,
            )));
        }
        Some(Ok(result))
    }

    /// A variable's value as templates see it, rendered only as far as it is used: a mapping
    /// or list holding templates renders each item when it is read, and `{{ other }}` naming
    /// such a value gives it as it is. Ansible 2.19 is as lazy: `{{ top.key1 }}` never runs
    /// the lookup in `top.key2`.
    fn render_lazily(&self, raw: &Value, scope: &Arc<Scope>) -> Result<Mj, TemplateError> {
        match raw {
            Value::Object(map) if !map.keys().any(|k| is_template(k)) => {
                return Ok(Mj::from_object(Lazy::new(raw.clone(), scope)));
            }
            Value::Array(_) => return Ok(Mj::from_object(Lazy::new(raw.clone(), scope))),
            Value::String(s) if plain_raw(s).is_none() && !s.ends_with('\n') => {
                refuse_repeated_keyword(s, false)?;
                start_render();
                if let Some(result) = self.single_expression_value(s, s, scope) {
                    let result = result?;
                    if result.downcast_object_ref::<Lazy>().is_some() {
                        return Ok(result);
                    }
                    return Ok(crate::vaulted::to_template_value(&mj_to_json(&result)?));
                }
            }
            _ => {}
        }
        self.render_keeping_vaulted(raw, scope)
            .map(|v| crate::vaulted::to_template_value(&v))
    }

    /// Renders a template to text.
    pub fn render_text(&self, s: &str, scope: &Arc<Scope>) -> Result<String, TemplateError> {
        self.render_text_noting(s, scope).map(|(text, _)| text)
    }

    /// Renders a template to text, and gives the value it printed when that value alone is
    /// the text (see [`crate::native_macros::single_output`]). What templates rendered on the
    /// way (a variable's own) print is theirs, not this one's.
    fn render_text_noting(
        &self,
        s: &str,
        scope: &Arc<Scope>,
    ) -> Result<(String, Option<Mj>), TemplateError> {
        if !is_template(s) {
            return Ok((s.to_string(), None));
        }
        refuse_repeated_keyword(s, false)?;
        start_render();
        crate::native_macros::single_output(|| {
            let render =
                |t: &Templar| t.render_yaml_template(s, Mj::from_dyn_object(scope.clone()));
            let text = match render(self) {
                Ok(text) => text,
                Err(e) => self.recover(e, scope, s, render)?,
            };
            refuse_undecryptable(text, s)
        })
    }

    /// Renders a template file (the `template` module): the text the host will get.
    pub fn render_file(
        &self,
        name: &str,
        source: &str,
        scope: &Arc<Scope>,
    ) -> Result<String, TemplateError> {
        self.render_file_with(name, source, scope, true, false, &[])
    }

    /// Renders a template file with `trim_blocks`/`lstrip_blocks` as the task asks;
    /// `{% include %}`, `{% import %}` and `{% extends %}` find templates in `searchpath`.
    pub fn render_file_with(
        &self,
        name: &str,
        source: &str,
        scope: &Arc<Scope>,
        trim_blocks: bool,
        lstrip_blocks: bool,
        searchpath: &[PathBuf],
    ) -> Result<String, TemplateError> {
        let kept = kept_file_key(name, source);
        let rewritten = match kept {
            Some(_) => std::borrow::Cow::Borrowed(source),
            None => crate::jinja_source::template(source),
        };
        let render = |t: &Templar| {
            let env = &t.variants[usize::from(trim_blocks) * 2 + usize::from(lstrip_blocks)];
            if let Some(key) = &kept {
                return env
                    .get_template(key)?
                    .render(Mj::from_dyn_object(scope.clone()));
            }
            let searching;
            let env = if searchpath.is_empty() {
                env
            } else {
                let mut copy = env.clone();
                copy.set_loader(search_loader(searchpath.to_vec()));
                searching = copy;
                &searching
            };
            env.render_named_str(name, &rewritten, Mj::from_dyn_object(scope.clone()))
        };
        let text = match render(self) {
            Ok(text) => text,
            Err(e) if unknown_plugin(&e).is_some() => {
                self.recover(e, scope, "", render).map_err(|mut te| {
                    te.message = format!(
                        "{name}: {}",
                        te.message.trim_end_matches(" (in template \"\")")
                    );
                    te
                })?
            }
            Err(e) => return Err(self.file_error(name, e, scope)),
        };
        refuse_undecryptable(keep_newlines(source, text), "").map_err(|mut e| {
            e.message = format!(
                "{name}: {}",
                e.message.trim_end_matches(" (in template \"\")")
            );
            e
        })
    }

    /// A template file's error, naming the file and line.
    fn file_error(&self, name: &str, e: minijinja::Error, scope: &Arc<Scope>) -> TemplateError {
        // An error in an included template is that template's, at its line.
        let cause = included_cause(&e);
        let name = cause.name().map_or(name, file_name_of);
        let line = cause
            .line()
            .map(|l| format!("{name}:{l}: "))
            .unwrap_or_else(|| format!("{name}: "));
        let mut te = self.error(e, scope, "");
        te.message = format!(
            "{line}{}",
            te.message.trim_end_matches(" (in template \"\")")
        );
        te
    }

    /// Renders a template file with other delimiters (`template`'s `variable_start_string`,
    /// `block_start_string`, `comment_start_string` and their ends, and a `#jinja2:` line's
    /// `line_statement_prefix`/`line_comment_prefix`).
    #[allow(clippy::too_many_arguments)]
    pub fn render_file_with_syntax(
        &self,
        name: &str,
        source: &str,
        scope: &Arc<Scope>,
        trim_blocks: bool,
        lstrip_blocks: bool,
        syntax: FileSyntax,
        searchpath: &[PathBuf],
    ) -> Result<String, TemplateError> {
        let [block, variable, comment] = syntax.delimiters;
        let mut builder = minijinja::syntax::SyntaxConfig::builder();
        builder
            .block_delimiters(block.0, block.1)
            .variable_delimiters(variable.0, variable.1)
            .comment_delimiters(comment.0, comment.1);
        if let Some(prefix) = syntax.line_statement_prefix {
            builder.line_statement_prefix(prefix);
        }
        if let Some(prefix) = syntax.line_comment_prefix {
            builder.line_comment_prefix(prefix);
        }
        let syntax = builder
            .trim_blocks(trim_blocks)
            .lstrip_blocks(lstrip_blocks)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| TemplateError {
                message: format!("{name}: {e}"),
            })?;
        let mut env = self.env.clone();
        env.set_syntax(syntax);
        if !searchpath.is_empty() {
            env.set_loader(search_loader(searchpath.to_vec()));
        }
        env.render_named_str(name, source, Mj::from_dyn_object(scope.clone()))
            .map(|text| keep_newlines(source, text))
            .map_err(|e| self.file_error(name, e, scope))
    }

    /// Evaluates a condition (`when`, `changed_when`, `failed_when`, `until`, `assert: that`)
    /// as Ansible 2.19 does: a bare expression (or, deprecated, a `{{ }}` template) whose result
    /// must be a boolean. `when: flag` with `flag: "false"` is an error, not Python truthiness.
    /// A template that renders to a variable's own text (`when: "{{ flag }}"`, `flag` written by
    /// a person) is evaluated once more as an expression; data from hosts never is.
    pub fn condition(&self, cond: &Value, scope: &Arc<Scope>) -> Result<bool, TemplateError> {
        self.condition_noting(cond, scope).map(|(holds, _)| holds)
    }

    /// [`Templar::condition`], and whether the condition was a template that gave no
    /// expression (`that: "{{ x == 1 }}"`), which Ansible 2.19 deprecates: "Conditionals
    /// should not be surrounded by templating delimiters".
    pub fn condition_noting(
        &self,
        cond: &Value,
        scope: &Arc<Scope>,
    ) -> Result<(bool, bool), TemplateError> {
        let mut wrapped = false;
        // Only this condition's, for a caller that takes it.
        ALLOWED_BROKEN.with(|b| b.borrow_mut().take());
        let holds = self.condition_inner(cond, scope, &mut wrapped)?;
        Ok((holds, wrapped))
    }

    fn condition_inner(
        &self,
        cond: &Value,
        scope: &Arc<Scope>,
        wrapped: &mut bool,
    ) -> Result<bool, TemplateError> {
        let expr = match cond {
            Value::Bool(b) => return Ok(*b),
            Value::Null => return Ok(true),
            Value::String(s) => s.trim(),
            _ => {
                return Err(TemplateError {
                    message: "Conditional expressions must be strings.".into(),
                });
            }
        };
        let result =
            if is_template(expr) && !crate::jinja_source::templates_only_in_lookup_args(expr) {
                let rendered = self.render_string(expr, scope)?;
                *wrapped = !matches!(rendered, Value::String(_))
                    && (expr.starts_with("{{") || expr.starts_with("{%"))
                    && (expr.ends_with("}}") || expr.ends_with("%}"));
                match rendered {
                    Value::Bool(b) => return Ok(b),
                    Value::String(text) if self.renders_trusted_text(expr, scope) => {
                        self.eval_condition(text.trim(), scope, expr)?
                    }
                    // An expression with templates inside (`"{{ 'hi' }}" == "hi"`): evaluated once
                    // rendered, unless what the templates put in came from host data.
                    // Text wholly inside delimiters (`{{ 'a' }} == {{ 'b' }}`) is meta-templating,
                    // which Ansible 2.19 refuses as untrusted.
                    Value::String(text)
                        if single_expression(expr).is_none()
                            && !meta_template(expr)
                            && !expr.starts_with("{%")
                            && !embeds_data(expr, scope) =>
                    {
                        self.eval_condition(text.trim(), scope, expr)?
                    }
                    // Text a template computed, or host data: Ansible 2.19 will not evaluate it.
                    Value::String(_) => {
                        return Err(TemplateError {
                            message: "Encountered untrusted template or expression.".into(),
                        });
                    }
                    other => Mj::from(minijinja::value::Serde(&other)),
                }
            } else {
                self.eval_condition(expr, scope, expr)?
            };
        match result.kind() {
            ValueKind::Bool => Ok(result.is_true()),
            // ANSIBLE_ALLOW_BROKEN_CONDITIONALS: Ansible before 2.19 took any truthy value,
            // and 2.19 says it is deprecated.
            _ => {
                let message = format!(
                    "{BROKEN_CONDITIONAL} ({}) was derived from value of type '{}' at '<unknown>'. \
                     Conditionals must have a boolean result.",
                    if result.is_true() { "True" } else { "False" },
                    python_type(&result)
                );
                if !allow_broken_conditionals() {
                    return Err(TemplateError { message });
                }
                ALLOWED_BROKEN.with(|b| *b.borrow_mut() = Some(message));
                Ok(result.is_true())
            }
        }
    }

    fn eval_condition(
        &self,
        expr: &str,
        scope: &Arc<Scope>,
        source: &str,
    ) -> Result<Mj, TemplateError> {
        refuse_repeated_keyword(expr, true)?;
        deprecated_variables(expr);
        // Keyed apart from `{{ }}` expressions: a condition's text is rewritten otherwise.
        let key = format!("{CONDITION_KEY}{expr}");
        let compile = |t: &Templar| {
            t.compiled_expression_by(&key, || crate::jinja_source::expression(expr).into_owned())
        };
        let compiled = compile(self).map_err(|e| self.error(e, scope, source))?;
        let result = match compiled.eval(Mj::from_dyn_object(scope.clone())) {
            Ok(result) => result,
            Err(e) => self.recover(e, scope, source, |t| {
                compile(t)?.eval(Mj::from_dyn_object(scope.clone()))
            })?,
        };
        if result.is_undefined() {
            return Err(TemplateError {
                message: forget_undefined_reason()
                    .unwrap_or_else(|| format!("'{expr}' is undefined")),
            });
        }
        Ok(result)
    }

    /// A list of conditions a template names (`that: '{{ checks }}'`), when it names a variable
    /// written by a person: its items are conditions as if written in place.
    pub fn trusted_list(&self, template: &str, scope: &Arc<Scope>) -> Option<Vec<Value>> {
        if !self.renders_trusted_text(template, scope) {
            return None;
        }
        // The items as written, so each keeps what it is (an `!unsafe` one stays untrusted).
        let path = single_expression(template)?;
        if let Some((Value::Array(items), _)) = written_path(path, scope)
            .as_ref()
            .map(|(v, d)| (v.as_ref(), d))
        {
            return Some(items.clone());
        }
        match self.render_string(template, scope) {
            Ok(Value::Array(items)) => Some(items),
            _ => None,
        }
    }

    /// The arguments a template names (`assert: "{{ item }}"`), as written, when it names a
    /// mapping written by a person: each value keeps its own trust, as if written in place.
    pub fn trusted_mapping(
        &self,
        template: &str,
        scope: &Arc<Scope>,
    ) -> Option<serde_json::Map<String, Value>> {
        if !self.renders_trusted_text(template, scope) {
            return None;
        }
        match written_path(single_expression(template)?, scope)?
            .0
            .as_ref()
        {
            Value::Object(map) => Some(map.clone()),
            _ => None,
        }
    }

    /// Whether `{{ name }}` names a variable written by a person (a template layer), whose text
    /// Ansible 2.19 still trusts as an expression.
    fn renders_trusted_text(&self, template: &str, scope: &Scope) -> bool {
        single_expression(template)
            .and_then(|path| written_path(path, scope))
            // Data never is; nor is `!unsafe` text, which the YAML loader wrapped in raw.
            .is_some_and(|(value, data)| {
                !data && !value.as_str().is_some_and(|s| s.starts_with("{% raw %}"))
            })
    }
}

/// A template written as a lookup's argument (`lookup('pipe', 'echo {{ x }}')`), rendered
/// in the scope of the template that calls the lookup (see `jinja_source`).
fn lookup_template(state: &minijinja::State, text: String) -> Result<Mj, minijinja::Error> {
    let Some(scope) = state
        .lookup("vars")
        .and_then(|v| v.downcast_object::<Scope>())
    else {
        return Ok(Mj::from(text));
    };
    // Rendered as any template is: one expression keeps its type (`['{{ 1 }}']` is `[1]`).
    match templar().render_string(&text, &scope) {
        Ok(Value::String(text)) => Ok(Mj::from(text)),
        Ok(other) => Ok(crate::vaulted::to_template_value(&other)),
        // Ansible renders such a term with markers allowed: an undefined one is handed to the
        // lookup, which gives it back (or, if it takes markers, uses it).
        Err(e) if let Some(reason) = e.undefined_message() => {
            note_undefined_reason(reason);
            Ok(Mj::UNDEFINED)
        }
        Err(e) => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            e.message,
        )),
    }
}

/// `ansible._protomatter.dump_object` of an operand (see `jinja_source`): its value, or when
/// computing it failed, `{'exception': {'message': …}}` as Ansible shows an error captured as
/// a value.
fn dump_object(
    state: &minijinja::State,
    hex: String,
    escape: bool,
) -> Result<Mj, minijinja::Error> {
    let source: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let source = String::from_utf8_lossy(&source).into_owned();
    let Some(scope) = state
        .lookup("vars")
        .and_then(|v| v.downcast_object::<Scope>())
    else {
        return Err(plain_error(format!("cannot evaluate {source:?} here")));
    };
    let expr = match escape {
        true => crate::jinja_source::yaml_expression(&source),
        false => crate::jinja_source::expression(&source),
    };
    let t = templar();
    let exception = |message: String| {
        crate::vaulted::to_template_value(&serde_json::json!({"exception": {"message": message}}))
    };
    match t
        .env
        .compile_expression(&expr)
        .and_then(|c| c.eval(Mj::from_dyn_object(scope.clone())))
    {
        Ok(value) if value.is_undefined() => Ok(match scope.take_inner_error() {
            Some(inner) => exception(inner),
            None => value,
        }),
        Ok(value) => Ok(value),
        Err(e) => Ok(exception(t.error(e, &scope, &source).message)),
    }
}

/// The text of `{% raw %}text{% endraw %}` when nothing else is inside (no other tag).
fn plain_raw(s: &str) -> Option<&str> {
    let text = s.strip_prefix("{% raw %}")?.strip_suffix("{% endraw %}")?;
    (!text.contains("{%")).then_some(text)
}

/// Every string inside wrapped to render as itself, and so read as untrusted text (what a
/// template computed, or what a host sent), as Ansible 2.19 keeps such values untagged.
pub(crate) fn untrusted(value: &Value) -> Value {
    match value {
        Value::String(s) if is_template(s) => Value::String(settle_yaml::literal_template(s)),
        Value::String(s) => Value::String(format!("{{% raw %}}{s}{{% endraw %}}")),
        Value::Array(items) => Value::Array(items.iter().map(untrusted).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), untrusted(v))).collect())
        }
        other => other.clone(),
    }
}

/// The value a variable path (`item`, `item.item.checks`) names as written, and whether the
/// variable is data. Only names and `.attribute` steps; anything else is `None`.
fn written_path<'s>(path: &str, scope: &'s Scope) -> Option<(Cow<'s, Value>, bool)> {
    let mut steps = path.trim().split('.');
    let name = steps.next()?;
    let is_word =
        |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_word(name) || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (mut value, data) = scope.entry(name)?;
    for step in steps {
        if !is_word(step) {
            return None;
        }
        value = Cow::Owned(value.get(step)?.clone());
    }
    Some((value, data))
}

/// `rendered` (what `written` rendered to) with Ansible 2.19's trust kept per value: a string
/// as a person wrote it stays trusted, one a template computed (or that came from a host) is
/// wrapped to render as itself ([`untrusted`]). A template that only names a variable written
/// by a person (`loop: "{{ checks }}"`) passes that variable's own trust on. This is what a
/// loop item holds, so `that: "{{ item }}"` evaluates a written expression and refuses a
/// computed one.
pub fn keep_trust(written: &Value, rendered: &Value, scope: &Scope) -> Value {
    match (written, rendered) {
        (Value::String(w), _) if !is_template(w) => rendered.clone(),
        // `!unsafe` text stays as it was written: wrapped.
        (Value::String(w), Value::String(r))
            if w.strip_prefix("{% raw %}")
                .and_then(|t| t.strip_suffix("{% endraw %}"))
                == Some(r.as_str()) =>
        {
            written.clone()
        }
        (Value::String(w), _) => {
            match single_expression(w.trim()).and_then(|p| written_path(p, scope)) {
                Some((raw, false)) if raw.as_ref() != written => keep_trust(&raw, rendered, scope),
                _ => untrusted(rendered),
            }
        }
        (Value::Array(ws), Value::Array(rs)) if ws.len() == rs.len() => Value::Array(
            ws.iter()
                .zip(rs)
                .map(|(w, r)| keep_trust(w, r, scope))
                .collect(),
        ),
        (Value::Object(wm), Value::Object(rm)) => Value::Object(
            rm.iter()
                .map(|(k, r)| {
                    let kept = match wm.get(k) {
                        Some(w) => keep_trust(w, r, scope),
                        None => untrusted(r),
                    };
                    (k.clone(), kept)
                })
                .collect(),
        ),
        (Value::Array(_) | Value::Object(_), _) => untrusted(rendered),
        _ => rendered.clone(),
    }
}

/// Whether `text` is wholly templates but more than one (`{{ 'a' }} == {{ 'b' }}`): an
/// expression made by templating, which Ansible 2.19 refuses. Quotes inside a template are
/// followed, so `{{ "{{ x }}" == y }}` is one template.
fn meta_template(text: &str) -> bool {
    if !(text.starts_with("{{") && text.ends_with("}}")) {
        return false;
    }
    let (mut blocks, mut inside, mut quote) = (0, false, None::<char>);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (inside, quote) {
            (true, Some(q)) if c == q => quote = None,
            (true, Some(_)) => {}
            (true, None) if c == '\'' || c == '"' => quote = Some(c),
            (true, None) if c == '}' && chars.peek() == Some(&'}') => {
                chars.next();
                inside = false;
            }
            (false, _) if c == '{' && chars.peek() == Some(&'{') => {
                chars.next();
                inside = true;
                blocks += 1;
            }
            _ => {}
        }
    }
    blocks > 1
}

/// Whether a value holds untrusted text (wrapped to render as itself): a registered result
/// or a fact set from computed values, kept with trust per value.
fn holds_untrusted(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with("{% raw %}"),
        Value::Array(items) => items.iter().any(holds_untrusted),
        Value::Object(map) => map.values().any(holds_untrusted),
        _ => false,
    }
}

/// Whether a `{{ … }}` inside `text` reads a variable that is data (a registered result, a
/// fact): text from the host, which must never become part of an expression.
fn embeds_data(text: &str, scope: &Scope) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return true;
        };
        let inner = &after[..end];
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        let mut word = String::new();
        for c in inner.chars().chain([' ']) {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c.is_ascii_alphanumeric() || c == '_' => {
                    if word.is_empty() && prev == '.' {
                        word.push('.');
                    }
                    word.push(c);
                }
                None => {
                    if !word.starts_with('.')
                        && !word.starts_with(|c: char| c.is_ascii_digit())
                        && scope
                            .entry(&word)
                            .is_some_and(|(value, data)| data || holds_untrusted(&value))
                    {
                        return true;
                    }
                    word.clear();
                }
            }
            prev = c;
        }
        rest = &after[end + 2..];
    }
    false
}

/// A rendered file ends with as many newlines as its source does, when it had fewer (Jinja
/// dropped the last one, or `trim_blocks` ate it after a closing block): Ansible's
/// `_post_render_mutation`. Included templates keep dropping theirs.
fn keep_newlines(source: &str, mut text: String) -> String {
    let count = |s: &str| s.len() - s.trim_end_matches('\n').len();
    for _ in count(&text)..count(source) {
        text.push('\n');
    }
    text
}

/// The loader of `{% include %}`, `{% import %}`, `{% from %}` and `{% extends %}` as
/// Ansible's Jinja `FileSystemLoader` finds templates: the first of `searchpath` that holds
/// the name, never climbing out of a folder with `..`. Jinja drops one trailing newline of an
/// included template (only the top template keeps it).
pub(crate) fn search_loader(
    searchpath: Vec<PathBuf>,
) -> impl Fn(&str) -> Result<Option<String>, minijinja::Error> + Send + Sync + 'static {
    move |name: &str| {
        let pieces: Vec<&str> = name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if pieces.contains(&"..") {
            return Ok(None);
        }
        let Some(found) = searchpath
            .iter()
            .map(|dir| pieces.iter().fold(dir.clone(), |acc, p| acc.join(p)))
            .find(|candidate| candidate.is_file())
        else {
            return Ok(None);
        };
        let mut text = std::fs::read_to_string(&found).map_err(|e| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot read {}: {e}", found.display()),
            )
        })?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Some(crate::jinja_source::template(&text).into_owned()))
    }
}

/// Jinja's compile error for a keyword argument given twice in one call.
fn refuse_repeated_keyword(source: &str, expression: bool) -> Result<(), TemplateError> {
    match crate::jinja_source::repeated_keyword(source, expression) {
        None => Ok(()),
        Some(name) => {
            let shown: String = source.chars().take(120).collect();
            Err(TemplateError {
                message: format!(
                    "Syntax error in template: keyword argument repeated: {name} \
                     (in template {shown:?})"
                ),
            })
        }
    }
}

/// The error inside the templates `{% include %}` brought in: minijinja wraps it as "error in
/// \"x.j2\"", and the cause is what a person needs to read.
pub(crate) fn included_cause(err: &minijinja::Error) -> &minijinja::Error {
    let mut err = err;
    while err.kind() == ErrorKind::BadInclude
        && let Some(inner) =
            std::error::Error::source(err).and_then(|s| s.downcast_ref::<minijinja::Error>())
    {
        err = inner;
    }
    err
}

/// `{{ expr }}` alone → `expr`, when the text between the outer braces could be one
/// expression (the parser decides for sure).
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    // Braces inside string literals are text (`{{ lookup('list', ['{{ 1 }}']) }}`).
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' if matches!(bytes.get(i + 1), Some(b'{' | b'%')) => return None,
            _ => i += 1,
        }
    }
    Some(inner)
}

/// Jinja's words for a method a value lacks (minijinja's `string has no method named x`): the
/// attribute is undefined, so calling it fails on the undefined value (`'x' is undefined`
/// when the value itself was, from the detail's origin).
fn unknown_method(detail: &str) -> Option<String> {
    let (kind, rest) = detail.split_once(" has no method named ")?;
    if kind == "undefined" {
        let origin = rest.split_once(" (")?.1.strip_suffix(')')?;
        return origin
            .ends_with(" is undefined")
            .then(|| origin.replace('`', "'"));
    }
    let name = rest.split(' ').next()?;
    let python = match kind {
        "string" => "str",
        "map" => "dict",
        "sequence" => "list",
        "bool" => "bool",
        "none" => "NoneType",
        "number" => "int",
        "bytes" => "bytes",
        _ => return None,
    };
    Some(format!(
        "object of type '{python}' has no attribute '{name}'"
    ))
}

/// Python's `ZeroDivisionError` message for minijinja's `unable to calculate a / 0`.
fn python_zero_division(detail: &str) -> Option<&'static str> {
    let calc = detail.strip_prefix("unable to calculate ")?;
    let (lhs, rest) = calc.split_once(' ')?;
    let (op, rhs) = rest.split_once(' ')?;
    if rhs.parse::<f64>().ok()? != 0.0 {
        return None;
    }
    let float = lhs.contains(['.', 'e', 'n']) || rhs.contains('.');
    Some(match (op, float) {
        ("/", false) => "division by zero",
        ("/", true) => "float division by zero",
        ("//", false) => "integer division or modulo by zero",
        ("//", true) => "float floor division by zero",
        ("%", false) => "integer modulo by zero",
        ("%", true) => "float modulo",
        _ => return None,
    })
}

/// The filter or test whose call raised `err` (`("filter", "human_readable")`): minijinja
/// points the error at the plugin's name in the source.
fn failed_plugin(err: &minijinja::Error) -> Option<(&'static str, &str)> {
    let source = err.template_source()?;
    let range = err.range()?;
    let name = source.get(range.clone())?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return None;
    }
    let before = source.get(..range.start)?.trim_end();
    if before.ends_with('|') {
        Some(("filter", name))
    } else if before.ends_with(" is") || before.ends_with(" not") {
        Some(("test", name))
    } else {
        None
    }
}

/// The function a single expression's result goes through: [`whole`].
const WHOLE: &str = "__settle_whole";

/// `__settle_whole(value)`: the value, unless an undefined value hides inside it (a map or a
/// list built around an undefined variable): Ansible 2.19 fails then, naming the variable,
/// and the error raised here, inside the template, lets minijinja name it.
fn whole(value: Mj) -> Result<Mj, minijinja::Error> {
    if let Some(stored) = crate::filters::time::stored(&value) {
        return stored;
    }
    reject_inner_undefined(&value)?;
    if let Some(message) = crate::vaulted::undecryptable_in(&value) {
        return Err(plain_error(message));
    }
    Ok(value)
}

/// An error whose message is Ansible's as it is, without minijinja's kind in front.
pub(crate) fn plain_error(message: String) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, message).with_source(PlainMessage)
}

/// Marks a [`plain_error`].
#[derive(Debug)]
struct PlainMessage;

impl fmt::Display for PlainMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("plain message")
    }
}

impl std::error::Error for PlainMessage {}

/// The error of the first undefined value inside a list or a map, which names the variable it
/// came from when raised inside a template (a filter, a function).
pub(crate) fn reject_inner_undefined(value: &Mj) -> Result<(), minijinja::Error> {
    match inner_undefined(value) {
        None => Ok(()),
        Some(undefined) => Err(match undefined.get_attr("") {
            Err(e) => e,
            Ok(_) => minijinja::Error::from(ErrorKind::UndefinedError),
        }),
    }
}

/// Whether a value is variables (`vars`, `hostvars`, a host's), whose values are rendered only
/// when read: never walked whole.
pub(crate) fn is_variables(value: &Mj) -> bool {
    value.downcast_object_ref::<Scope>().is_some()
        || value.downcast_object_ref::<HostVars>().is_some()
        || value.downcast_object_ref::<Lazy>().is_some()
}

/// A variable's mapping or list whose items are rendered when read (see
/// [`Templar::render_lazily`]), each once.
///
/// It renders in its scope, which it holds; but a scope caches the values of its variables,
/// so a cached value refers to its own scope as `None` (no reference cycle), and the scope
/// hands it out with itself filled in ([`Lazy::for_cache`], [`Lazy::from_cache`]).
#[derive(Debug)]
struct Lazy {
    inner: Arc<LazyItems>,
    scope: Option<Arc<Scope>>,
}

#[derive(Debug)]
struct LazyItems {
    raw: Value,
    rendered: Mutex<HashMap<String, Mj>>,
}

impl Lazy {
    fn new(raw: Value, scope: &Arc<Scope>) -> Self {
        Lazy {
            inner: Arc::new(LazyItems {
                raw,
                rendered: Mutex::default(),
            }),
            scope: Some(scope.clone()),
        }
    }

    /// `value` as `owner` keeps it in a cache: a lazy value of `owner`'s without it.
    fn for_cache(value: &Mj, owner: &Arc<Scope>) -> Mj {
        match value.downcast_object_ref::<Lazy>() {
            Some(lazy) if lazy.scope.as_ref().is_some_and(|s| Arc::ptr_eq(s, owner)) => {
                Mj::from_object(Lazy {
                    inner: lazy.inner.clone(),
                    scope: None,
                })
            }
            _ => value.clone(),
        }
    }

    /// A value from `owner`'s cache, handed out: a lazy value of `owner`'s with it again.
    fn from_cache(value: &Mj, owner: &Arc<Scope>) -> Mj {
        match value.downcast_object_ref::<Lazy>() {
            Some(lazy) if lazy.scope.is_none() => Mj::from_object(Lazy {
                inner: lazy.inner.clone(),
                scope: Some(owner.clone()),
            }),
            _ => value.clone(),
        }
    }

    /// The item under `key` (a mapping's key, a list's index).
    fn item(&self, key: String, child: &Value) -> Option<Mj> {
        if !needs_render(child) {
            return Some(crate::vaulted::to_template_value(child));
        }
        let scope = self.scope.as_ref()?;
        if let Some(v) = self.inner.rendered.lock().unpoisoned().get(&key) {
            return Some(Lazy::from_cache(v, scope));
        }
        match templar().render_lazily(child, scope) {
            Ok(v) => {
                let kept = Lazy::for_cache(&v, scope);
                self.inner.rendered.lock().unpoisoned().insert(key, kept);
                Some(v)
            }
            // Undefined, as Ansible's undefined marker: `default` and `is defined` take it.
            Err(e) if e.undefined_message().is_some() => {
                let mut slot = scope.inner_error.lock().unpoisoned();
                if slot.is_none() {
                    *slot = Some(e.message.clone());
                }
                LAZY_ERROR.with(|l| {
                    l.borrow_mut().get_or_insert_with(|| e.message.clone());
                });
                None
            }
            // Any other error: an invalid value, raised where the item is used (read, printed,
            // serialized), as Ansible's marker is, and not before.
            Err(e) => {
                let mut slot = scope.inner_error.lock().unpoisoned();
                if slot.is_none() {
                    *slot = Some(e.message.clone());
                }
                // minijinja serializes a mapping's invalid values as nothing: say it here.
                LAZY_ERROR.with(|l| {
                    l.borrow_mut().get_or_insert_with(|| e.message.clone());
                });
                Some(Mj::from(plain_error(e.message)))
            }
        }
    }
}

impl Object for Lazy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.inner.raw {
            Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        match &self.inner.raw {
            Value::Object(map) => {
                let key = key.as_str()?;
                self.item(key.to_string(), map.get(key)?)
            }
            Value::Array(items) => {
                let i = key.as_i64()?;
                let index = if i < 0 {
                    items.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    usize::try_from(i).ok()?
                };
                self.item(index.to_string(), items.get(index)?)
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.inner.raw {
            Value::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Mj::from(k.as_str())).collect())
            }
            Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }
}

/// The first undefined value inside a list or a map (at any depth). Variables (`vars`,
/// `hostvars`) are not searched: their values are rendered only when used.
fn inner_undefined(value: &Mj) -> Option<Mj> {
    let children: Vec<Mj> = match value.kind() {
        ValueKind::Seq => value.try_iter().ok()?.collect(),
        ValueKind::Map if !is_variables(value) => {
            let keys: Vec<Mj> = value.try_iter().ok()?.collect();
            keys.iter().filter_map(|k| value.get_item(k).ok()).collect()
        }
        _ => return None,
    };
    children.into_iter().find_map(|child| {
        if child.is_undefined() {
            Some(child)
        } else {
            inner_undefined(&child)
        }
    })
}

/// Whether a list (at any depth of lists) holds an undefined value.
/// Whether a list or mapping holds an undefined value, at any depth.
fn holds_undefined(value: &Mj) -> bool {
    let undefined = |v: &Mj| v.is_undefined() || holds_undefined(v);
    match value.kind() {
        ValueKind::Seq => value
            .try_iter()
            .is_ok_and(|mut items| items.any(|v| undefined(&v))),
        ValueKind::Map => value
            .try_iter()
            .is_ok_and(|mut keys| keys.any(|k| value.get_item(&k).is_ok_and(|v| undefined(&v)))),
        _ => false,
    }
}

fn list_holds_undefined(value: &Mj) -> bool {
    value.kind() == ValueKind::Seq
        && value
            .try_iter()
            .is_ok_and(|mut items| items.any(|v| v.is_undefined() || list_holds_undefined(&v)))
}

pub(crate) fn mj_to_json(value: &Mj) -> Result<Value, TemplateError> {
    let outer = LAZY_ERROR.with(|l| l.borrow_mut().take());
    let json = serde_json::to_value(value);
    // An item of a lazy mapping or list that could not be rendered.
    let failed = LAZY_ERROR.with(|l| std::mem::replace(&mut *l.borrow_mut(), outer));
    if let Some(message) = failed {
        return Err(TemplateError { message });
    }
    let json = json.map_err(|e| TemplateError {
        message: format!("cannot use the result: {e}"),
    })?;
    match crate::vaulted::poisoned_json(&json) {
        Some(message) => Err(TemplateError { message }),
        None => Ok(json),
    }
}

/// Text a template made, unless it was made from an undecryptable `!vault` value.
fn refuse_undecryptable(text: String, source: &str) -> Result<String, TemplateError> {
    match crate::vaulted::poisoned(&text) {
        Some(message) => {
            let shown: String = source.chars().take(120).collect();
            Err(TemplateError {
                message: format!("{message} (in template {shown:?})"),
            })
        }
        None => Ok(text),
    }
}

/// The Python type name of a value, as Ansible's messages give it.
pub fn python_type(value: &Mj) -> &'static str {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.as_i64().is_some() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// The steps of a plain variable path (`a.b['c'][0]`): for each, where its prefix ends in the
/// text and the name it looks up. `None` for anything else (calls, filters, operators).
fn attribute_path(path: &str) -> Option<Vec<(usize, String)>> {
    let ident = |s: &str| {
        let n = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (n > 0 && !s.starts_with(|c: char| c.is_ascii_digit())).then_some(n)
    };
    let mut steps = Vec::new();
    let first = ident(path)?;
    steps.push((first, path[..first].to_string()));
    let mut at = first;
    while at < path.len() {
        let rest = &path[at..];
        let (len, name) = if let Some(r) = rest.strip_prefix('.') {
            let n = ident(r)?;
            (n + 1, r[..n].to_string())
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = r[..close].trim();
            let name = inner
                .strip_prefix('\'')
                .and_then(|i| i.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|i| i.strip_suffix('"')))
                .map(str::to_string)
                .or_else(|| inner.parse::<i64>().ok().map(|n| n.to_string()))?;
            (close + 2, name)
        } else {
            return None;
        };
        at += len;
        steps.push((at, name));
    }
    Some(steps)
}

/// Python's truthiness, for values that are already data.
pub fn json_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Ansible's `boolean()`: the words it takes for true and false, and nothing else.
pub(crate) fn strict_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "on" | "1" | "true" | "y" | "t" => Some(true),
            "no" | "off" | "0" | "false" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Ansible's boolean reading of an argument: `true`, `yes`, `on`, `1` (any case) are true.
pub fn json_bool(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1" | "y" | "t"
        ),
        _ => false,
    }
}

/// How Python prints a value inside text: `True`, `None`, `['a', 1]`, `{'k': 'v'}`.
pub fn python_repr(value: &Mj, top: bool) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String if top => value.as_str().unwrap_or("").to_string(),
        ValueKind::String => python_str(value.as_str().unwrap_or("")),
        ValueKind::Number => match value.is_integer() {
            true => value.to_string(),
            false => crate::filters::python_float_repr(f64::try_from(value.clone()).unwrap_or(0.0)),
        },
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|v| python_repr(&v, false))
                .collect();
            match (value.is_tuple(), items.len()) {
                (true, 1) => format!("({},)", items[0]),
                (true, _) => format!("({})", items.join(", ")),
                (false, _) => format!("[{}]", items.join(", ")),
            }
        }
        ValueKind::Map => {
            let mut parts = Vec::new();
            for key in value.try_iter().into_iter().flatten() {
                let v = value.get_item(&key).unwrap_or_default();
                parts.push(format!(
                    "{}: {}",
                    python_repr(&key, false),
                    python_repr(&v, false)
                ));
            }
            format!("{{{}}}", parts.join(", "))
        }
        _ => value.to_string(),
    }
}

fn python_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
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

/// Python's methods on values, as templates written for Ansible call them: minijinja-contrib's
/// set, plus `list.index`.
fn python_methods(
    state: &mut minijinja::State,
    value: &Mj,
    method: &str,
    args: &[Mj],
) -> Result<Mj, minijinja::Error> {
    if value.kind() == ValueKind::Seq && method == "index" {
        let (wanted,): (&Mj,) = minijinja::value::from_args(args)?;
        for (i, item) in value.try_iter()?.enumerate() {
            if item == *wanted {
                return Ok(Mj::from(i));
            }
        }
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("{wanted} is not in list"),
        ));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(vars: Value) -> Arc<Scope> {
        Scope::new(vec![Arc::new(vars.as_object().unwrap().clone())], None)
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let s = scope(json!({"users": ["a", "b"], "port": 80}));
        assert_eq!(
            templar().render(&json!("{{ users }}"), &s).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            templar().render(&json!("{{ port }}"), &s).unwrap(),
            json!(80)
        );
        assert_eq!(
            templar().render(&json!("port {{ port }}"), &s).unwrap(),
            json!("port 80")
        );
        // A folded scalar's one trailing newline keeps the type; text gets its newline back.
        assert_eq!(
            templar().render(&json!("{{ users }}\n"), &s).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            templar()
                .render(&json!("{{ port | string }}\n"), &s)
                .unwrap(),
            json!("80\n")
        );
    }

    #[test]
    fn a_template_s_only_output_node_keeps_its_type() {
        // Compared with ansible-playbook 2.19: one node is the value, several are text, none
        // is None; a filter block's output is its own text.
        let s = scope(
            json!({"one": [1], "two": [4, 2], "d": {"a": 1}, "a": 1, "b": 2,
            "v": "{{ a }}-{{ b }}"}),
        );
        for (template, rendered) in [
            ("{% for x in one %}{{ x }}{% endfor %}", json!(1)),
            ("{% for x in two %}{{ x }}{% endfor %}", json!("42")),
            ("{% if true %}{{ d }}{% endif %}", json!({"a": 1})),
            ("{% if true %} {{ d }}{% endif %}", json!(" {'a': 1}")),
            ("{% if false %}{{ d }}{% endif %}", json!(null)),
            ("{% if true %}{{ none }}{% endif %}", json!(null)),
            ("{% if true %}[1, 2]{% endif %}", json!("[1, 2]")),
            ("{% set y = 3 %}{{ y }}", json!(3)),
            ("{% if true %}{{ true }}{% endif %}\n", json!(true)),
            ("{% if true %}\n{{ 5 }}\n{% endif %}", json!("5\n")),
            ("{% if true %}{{ 1.5 }}{% endif %}x", json!("1.5x")),
            ("{% filter upper %}{{ 5 }}{% endfilter %}", json!("5")),
            // What a variable's own template prints is not this template's output.
            ("{% if true %}{{ [v] }}{% endif %}", json!(["1-2"])),
        ] {
            assert_eq!(
                templar().render(&json!(template), &s).unwrap(),
                rendered,
                "{template}"
            );
        }
    }

    #[test]
    fn a_list_or_mapping_printed_with_an_undefined_value_inside_fails() {
        let s = scope(json!({}));
        for template in ["{{ [nope] }} x", "x {{ {'k': [nope]} }}"] {
            let err = templar().render(&json!(template), &s).unwrap_err();
            assert!(
                err.message.starts_with("'nope' is undefined"),
                "{template}: {}",
                err.message
            );
        }
    }

    #[test]
    fn datetimes_subtract_to_timedeltas_as_in_python() {
        // As Ansible's documentation counts the days between two dates.
        let s = scope(json!({"n": 2}));
        let r = |t: &str| match templar().render(&json!(t), &s) {
            Ok(v) => v,
            Err(e) => json!(e.message),
        };
        let dates =
            "(('2016-08-14 20:00:12' | to_datetime) - ('2015-12-25' | to_datetime('%Y-%m-%d')))";
        assert_eq!(
            r(&format!("{{{{ {dates}.total_seconds() }}}}")),
            json!(20203212.0)
        );
        assert_eq!(
            r(&format!("{{{{ {dates}.days }}}} {{{{ {dates} }}}}")),
            json!("233 233 days, 20:00:12")
        );
        assert_eq!(
            r(
                "x {{ '2015-12-25' | to_datetime('%Y-%m-%d') - '2016-08-14 20:00:12' | to_datetime }}"
            ),
            json!("x -234 days, 3:59:48")
        );
        assert_eq!(
            r(
                "{{ ('2016-08-14 20:00:12.5' | to_datetime('%Y-%m-%d %H:%M:%S.%f') \
               - '2016-08-14 20:00:12' | to_datetime).total_seconds() }}"
            ),
            json!(0.5)
        );
        // Left to right, with numbers, signs and exponents on the way; datetime − timedelta.
        let a = "'2016-08-14 20:00:12' | to_datetime";
        let b = "'2016-08-14 20:00:10' | to_datetime";
        assert_eq!(
            r(&format!("{{{{ ({a} - {b}).seconds - 1 - n }}}}")),
            json!(-1)
        );
        assert_eq!(
            r(&format!("{{{{ -1 - -2 - 1e-1 + 0 * ({a} - {b}).days }}}}")),
            json!(0.9)
        );
        assert_eq!(
            r(&format!("{{{{ {a} - ({a} - {b}) }}}}")),
            json!("2016-08-14T20:00:10")
        );
        assert_eq!(
            r(&format!(
                "{{{{ ({a} - {b}) > ({a} - {a}) and ({b} - {a}).days == -1 }}}}"
            )),
            json!(true)
        );
        assert_eq!(
            r("{{ (now() - '2020-01-01' | to_datetime('%Y-%m-%d')).days > 1000 }}"),
            json!(true)
        );
        // Whitespace marks are not signs; other blocks of the template keep their `-`.
        assert_eq!(
            r(&format!(
                "a {{{{- ({a} - {b}).seconds -}}}} b {{%- if n - 1 -%}}{{{{ n - 3 }}}}{{%- endif %}}"
            )),
            json!("a2b-1")
        );
        assert!(
            r("{{ now() - nope }}")
                .as_str()
                .unwrap()
                .contains("'nope' is undefined"),
            "{}",
            r("{{ now() - nope }}")
        );
        // A whole value: a datetime is kept as its ISO form, a timedelta refused, as 2.19.
        assert_eq!(r(&format!("{{{{ {a} }}}}")), json!("2016-08-14T20:00:12"));
        let refused = r(&format!("{{{{ {a} - {b} }}}}"));
        assert!(
            refused
                .as_str()
                .unwrap()
                .starts_with("Type 'timedelta' is unsupported for variable storage."),
            "{refused}"
        );
        let mixed = r(&format!("{{{{ ({a}) - 3 }}}}"));
        assert!(
            mixed
                .as_str()
                .unwrap()
                .starts_with("unsupported operand type(s) for -: 'datetime.datetime' and 'int'"),
            "{mixed}"
        );
    }

    #[test]
    fn literal_text_renders_back_as_written() {
        let s = scope(json!({}));
        for text in [
            "{%}\"}",
            "{% endraw %}{%}",
            "a {%- endraw -%} b {{ x }} {# c #}",
            "{% endraw \u{b} %} and {%\tendraw\n%}",
            "\u{1b}{% endraw \u{1b} %}",
            "{% raw %}{% endraw %}",
            // A line end right after a block tag is what trim_blocks takes (found by proptest).
            "\n{%",
            "\r\nx {% endraw %}\n{{ y }}",
            "{%\nendraw %}",
        ] {
            let literal = settle_yaml::literal_template(text);
            assert_eq!(
                templar().render(&json!(literal), &s).unwrap(),
                json!(text),
                "{literal}"
            );
        }
    }

    proptest::proptest! {
        /// Any text, wrapped as a literal, renders to itself (the wrapping is how `!unsafe`
        /// values and host output stay data).
        #[test]
        fn any_text_wrapped_as_a_literal_renders_to_itself(
            text in "([{}%#\\-+ \t\n\"'a-z]|endraw|raw){0,24}"
        ) {
            let literal = settle_yaml::literal_template(&text);
            let rendered = templar().render(&json!(literal), &scope(json!({})));
            proptest::prop_assert_eq!(rendered.map_err(|e| e.message), Ok(json!(text)));
        }
    }

    #[test]
    fn a_missing_attribute_names_the_type_that_lacks_it() {
        let s = scope(json!({"r": {"a": 1, "l": [1]}}));
        let message = |t: &str| templar().render(&json!(t), &s).unwrap_err().message;
        for (t, want) in [
            (
                "{{ r.stdout }}",
                "object of type 'dict' has no attribute 'stdout'",
            ),
            (
                "{{ r['stdout'].x }}",
                "object of type 'dict' has no attribute 'stdout'",
            ),
            ("{{ r.l.x }}", "object of type 'list' has no attribute 'x'"),
            ("x{{ r.a.x }}", "object of type 'int' has no attribute 'x'"),
            ("{{ nope.x }}", "'nope' is undefined"),
        ] {
            assert!(message(t).starts_with(want), "{t}: {}", message(t));
        }
    }

    #[test]
    fn lazy_variables_render_in_the_scope_of_use() {
        let s = scope(json!({"a": "{{ b }}-x", "b": "{{ c | upper }}", "c": "v"}));
        assert_eq!(
            templar().render(&json!("{{ a }}"), &s).unwrap(),
            json!("V-x")
        );
    }

    #[test]
    fn undefined_names_the_variable() {
        let s = scope(json!({"a": "{{ missing }}"}));
        let err = templar().render(&json!("{{ nope }}"), &s).unwrap_err();
        assert!(
            err.message.starts_with("'nope' is undefined"),
            "{}",
            err.message
        );
        let err = templar().render(&json!("x {{ a }}"), &s).unwrap_err();
        assert!(
            err.message
                .contains("while rendering variable 'a': 'missing' is undefined"),
            "{}",
            err.message
        );
    }

    #[test]
    fn recursion_is_caught() {
        let s = scope(json!({"a": "{{ a }}"}));
        assert!(
            templar()
                .render(&json!("{{ a }}"), &s)
                .unwrap_err()
                .message
                .contains("Recursive loop")
        );
    }

    /// Variables each defined by the next: `n` links, the last one plain.
    fn chain(n: usize, last: Value) -> Value {
        let mut vars = serde_json::Map::new();
        for i in 0..n {
            vars.insert(format!("v{i}"), json!(format!("{{{{ v{} }}}}", i + 1)));
        }
        vars.insert(format!("v{n}"), last);
        Value::Object(vars)
    }

    #[test]
    fn long_chains_and_cycles_of_variables_fail_once_and_fast() {
        // On a stack as large as the threads that run tasks have (a test's is 2 MiB).
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(long_chains_and_cycles)
            .unwrap()
            .join()
            .unwrap();
    }

    fn long_chains_and_cycles() {
        // A chain as deep as the limit resolves.
        let s = scope(chain(MAX_VARIABLE_DEPTH, json!("end")));
        assert_eq!(
            templar().render(&json!("{{ v0 }}"), &s).unwrap(),
            json!("end")
        );
        // One more is an error naming the chain's ends, not a stack overflow.
        let s = scope(chain(MAX_VARIABLE_DEPTH + 1, json!("end")));
        let err = templar()
            .render(&json!("{{ v0 }}"), &s)
            .unwrap_err()
            .message;
        assert!(err.contains("maximum recursion depth exceeded"), "{err}");
        assert!(
            err.contains("v0 -> v1 -> v2 -> ... -> v98 -> v99 -> v100"),
            "{err}"
        );
        assert!(err.starts_with("while rendering variable 'v0' (through 'v1' and 98 more): "));
        // A cycle of 40: each variable fails once (it took twice as long per variable before).
        let s = scope(chain(40, json!("{{ v0 }}")));
        let err = templar()
            .render(&json!("{{ v0 }}"), &s)
            .unwrap_err()
            .message;
        assert!(err.contains("Recursive loop detected in template: v0 refers to itself"));
        assert!(err.len() < 200, "{err}");
        // A short chain keeps every name.
        let s = scope(chain(2, json!("{{ v0 }}")));
        let err = templar()
            .render(&json!("{{ v0 }}"), &s)
            .unwrap_err()
            .message;
        assert!(
            err.starts_with("while rendering variable 'v0': while rendering variable 'v1': "),
            "{err}"
        );
    }

    #[test]
    fn jinja2_header_lines_set_the_file_s_environment() {
        let (settings, body) =
            jinja2_header("#jinja2: variable_start_string:'<<', trim_blocks: False\nx << y >>\n")
                .unwrap();
        assert_eq!(
            Value::Object(settings),
            json!({"variable_start_string": "<<", "trim_blocks": false})
        );
        assert_eq!(body, "x << y >>\n");
        assert_eq!(jinja2_header("plain\n").unwrap().1, "plain\n");
        let err = jinja2_header("#jinja2: lstrip_blocks=True\nx\n").unwrap_err();
        assert!(err.contains("Missing key-value separator `:`"), "{err}");
        assert!(jinja2_header("#jinja2: nope: 1\nx\n").is_err());
    }

    #[test]
    fn template_files_match_ansible_whitespace() {
        let s = scope(json!({}));
        let out = templar()
            .render_file("t.j2", "a\n{% if true %}\n  b\n{% endif %}\nc\n\n", &s)
            .unwrap();
        assert_eq!(out, "a\n  b\nc\n\n");
    }

    #[test]
    fn template_files_kept_compiled_render_their_own_text_and_name_their_errors() {
        let s = scope(json!({"x": 1}));
        let t = templar();
        for _ in 0..2 {
            assert_eq!(t.render_file("k.j2", "x={{ x }}\n", &s).unwrap(), "x=1\n");
        }
        // The same name with another text (the file changed during the run) is that text.
        assert_eq!(t.render_file("k.j2", "y={{ x }}\n", &s).unwrap(), "y=1\n");
        for _ in 0..2 {
            let err = t
                .render_file("k.j2", "a\n{{ nope }}\n", &s)
                .unwrap_err()
                .message;
            assert!(err.starts_with("k.j2:2: "), "{err}");
            // As a file that is not kept (one that names `import`) words it.
            let unkept = t
                .render_file("k.j2", "a{# import #}\n{{ nope }}\n", &s)
                .unwrap_err()
                .message;
            assert_eq!(err, unkept);
            let err = t
                .render_file("k.j2", "a\n{% if %}\n", &s)
                .unwrap_err()
                .message;
            assert!(err.starts_with("k.j2:2: "), "{err}");
        }
    }

    #[test]
    fn python_printing_inside_text() {
        let s = scope(json!({"flag": true, "l": ["a", 1], "n": null}));
        assert_eq!(
            templar()
                .render(&json!("{{ flag }} {{ l }} {{ n }}"), &s)
                .unwrap(),
            json!("True ['a', 1] ")
        );
    }

    #[test]
    fn conditions_and_filters() {
        let s = scope(json!({"x": "yes", "items": [1, 2, 3], "m": {"a": 1}}));
        let t = templar();
        assert!(t.condition(&json!("x | bool"), &s).unwrap());
        assert!(t.condition(&json!("'no' | bool == false"), &s).unwrap());
        assert!(t.condition(&json!("missing is not defined"), &s).unwrap());
        assert!(t.condition(&json!("items | length > 2"), &s).unwrap());
        assert!(!t.condition(&json!(false), &s).unwrap());
        assert_eq!(
            t.render(&json!("{{ m | dict2items }}"), &s).unwrap(),
            json!([{"key": "a", "value": 1}])
        );
        assert_eq!(
            t.render(&json!("{{ m | combine({'b': 2}) }}"), &s).unwrap(),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(
            t.render(&json!("{{ [1, [2, [3]]] | flatten }}"), &s)
                .unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            t.render(&json!("{{ 'a.b.c' | regex_replace('\\.', '-') }}"), &s)
                .unwrap(),
            json!("a-b-c")
        );
        assert_eq!(
            t.render(&json!("{{ '/etc/x.conf' | basename }}"), &s)
                .unwrap(),
            json!("x.conf")
        );
        assert_eq!(
            t.render(&json!("{{ 'hi' | b64encode | b64decode }}"), &s)
                .unwrap(),
            json!("hi")
        );
        assert_eq!(
            t.render(&json!("{{ {'b': 1, 'a': [1]} | to_json }}"), &s)
                .unwrap(),
            json!("{\"b\": 1, \"a\": [1]}")
        );
        assert_eq!(
            t.render(&json!("{{ 'x' | hash('sha1') }}"), &s).unwrap(),
            json!("11f6ad8ec52a2984abaafd7c3b516503785c2072")
        );
        assert_eq!(
            t.render(&json!("{{ missing | default('d') }}"), &s)
                .unwrap(),
            json!("d")
        );
        assert_eq!(
            t.render(&json!("{{ (x == 'yes') | ternary('on', 'off') }}"), &s)
                .unwrap(),
            json!("on")
        );
        assert!(
            t.condition(&json!("'12.5' is version('12', '>=')"), &s)
                .unwrap()
        );
        assert!(t.condition(&json!("'abc' is match('ab')"), &s).unwrap());
        assert_eq!(
            t.render(&json!("{{ [1,2] | union([2,3]) }}"), &s).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            t.render(&json!("{{ 'a b' | quote }}"), &s).unwrap(),
            json!("'a b'")
        );
    }
}
