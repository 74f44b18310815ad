//! `ansible._protomatter`: the test-only collection of ansible-core 2.19 that asks about the
//! *tags* of a value (`tagged_with`, `tagged`, `tag_names`, `origin`, `true_type`) and
//! `apply_trust` (`finalize` lives with the data filters; `python_literal_eval`, `unmask` and
//! `dump_object` are not here yet), and the evaluation behind its `debug` action
//! ([`evaluate_expressions`]).
//!
//! Ansible tags each value: `TrustedAsTemplate` on strings a person wrote (playbooks, vars
//! files, inventories), `Origin` with the file and line or `<environment variable 'X'>`. settle
//! keeps no tags on values: trust belongs to the *layer* a variable lives in (a template layer
//! is written by people, a data layer came from hosts or from rendering), and `!unsafe` text is
//! kept wrapped in `{% raw %}`. So the tags are read from how the value was reached: every
//! variable read while rendering leaves a note here (`note_read`), as does the `env` lookup
//! (`note_origin`), and a test looks for the newest note whose value holds the value it was
//! given. That is a reconstruction, and it says what settle knows, nothing more:
//!
//! - `TrustedAsTemplate`: a string found as written in a template layer (not `!unsafe`);
//! - `Origin`: only for `lookup('env', …)` results. settle does not keep the file and line of
//!   variables, so a variable from a file has no `Origin` here though it has one in Ansible;
//! - `VaultedValue`: a value from `!vault` or the `vault` filter (see `vaulted`);
//! - `SourceWasEncrypted`, `Deprecated` and the rest are never known: they always read as
//!   absent;
//! - a literal in the expression (`'x' is tagged`) that equals a value read just before would
//!   be mistaken for it: the notes match by value, not by identity.

use std::cell::RefCell;
use std::sync::Arc;

use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

use crate::Vars;

/// Tag names Ansible knows (`_datatag._known_tag_type_map`); any other is an error.
const KNOWN_TAGS: &[&str] = &[
    "TrustedAsTemplate",
    "Origin",
    "VaultedValue",
    "SourceWasEncrypted",
    "Deprecated",
    "NotATemplate",
    "VaultExceptionMarker",
];

/// How many recent reads are remembered: enough for one expression.
const NOTES: usize = 64;

/// Where a value was read from.
enum Note {
    /// A variable: its layer's variables, its name, and whether the layer is data.
    Read {
        vars: Arc<Vars>,
        name: String,
        data: bool,
    },
    /// A value whose origin is known (`<environment variable 'X'>`).
    Origin { value: Json, origin: String },
}

thread_local! {
    static TRAIL: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
}

fn remember(note: Note) {
    TRAIL.with(|t| {
        let mut trail = t.borrow_mut();
        if trail.len() >= NOTES {
            trail.remove(0);
        }
        trail.push(note);
    });
}

thread_local! {
    /// Text `apply_trust` was given: Ansible tags it `TrustedAsTemplate`.
    static TRUSTED_TEXT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Values decoded from trusted text, each with its form that keeps trust per value
    /// (untrusted text wrapped to render as itself).
    static TRUSTED_JSON: RefCell<Vec<(Json, Json)>> = const { RefCell::new(Vec::new()) };
}

/// How many trusted texts and decoded values are remembered: enough for one task.
const TRUSTED_NOTES: usize = 8;

fn remember_bounded<T>(list: &'static std::thread::LocalKey<RefCell<Vec<T>>>, item: T) {
    list.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() >= TRUSTED_NOTES {
            l.remove(0);
        }
        l.push(item);
    });
}

/// Whether `apply_trust` just vouched for this text.
pub(crate) fn is_trusted_text(text: &str) -> bool {
    TRUSTED_TEXT.with(|l| l.borrow().iter().any(|t| t == text))
}

/// A value decoded from trusted text: `plain` as templates see it, `kept` with each value's
/// trust (the form a template layer holds).
pub(crate) fn note_trusted_json(plain: Json, kept: Json) {
    remember_bounded(&TRUSTED_JSON, (plain, kept));
}

/// The trust-keeping form of a value decoded from trusted text, when `value` is one
/// (`set_fact: x: "{{ out | apply_trust | from_json(profile='inventory_legacy') }}"`).
pub(crate) fn trusted_form(value: &Json) -> Option<Json> {
    TRUSTED_JSON.with(|l| {
        l.borrow()
            .iter()
            .rev()
            .find(|(plain, _)| plain == value)
            .map(|(_, kept)| kept.clone())
    })
}

/// A variable was read from a layer (called by the scope on every read).
pub(crate) fn note_read(vars: &Arc<Vars>, name: &str, data: bool) {
    remember(Note::Read {
        vars: vars.clone(),
        name: name.to_string(),
        data,
    });
}

/// A value came from somewhere Ansible names (the `env` lookup).
pub(crate) fn note_origin(value: &Json, origin: String) {
    remember(Note::Origin {
        value: value.clone(),
        origin,
    });
}

/// The tags settle can vouch for on `value` (sorted, as `tag_names` gives them).
fn tags_of(value: &Value) -> Vec<&'static str> {
    // A value that came from `!vault` (or the `vault` filter) is known as such.
    if crate::vaulted::ciphertext_of(value).is_some() {
        return vec!["VaultedValue"];
    }
    let Ok(wanted) = serde_json::to_value(value) else {
        return Vec::new();
    };
    TRAIL.with(|t| {
        for note in t.borrow().iter().rev() {
            match note {
                Note::Origin { value, .. } if *value == wanted => {
                    // Ansible tags what the env lookup returns with its Origin only.
                    return vec!["Origin"];
                }
                Note::Read { vars, name, data } => {
                    let Some(raw) = vars.get(name) else { continue };
                    match find(raw, &wanted) {
                        Found::No => continue,
                        Found::AsWritten if !*data && wanted.is_string() => {
                            return vec!["TrustedAsTemplate"];
                        }
                        _ => return Vec::new(),
                    }
                }
                Note::Origin { .. } => {}
            }
        }
        Vec::new()
    })
}

/// `ansible._protomatter.origin`: the origin settle knows for the value, else none.
fn origin_of(value: &Value) -> Option<String> {
    let wanted = serde_json::to_value(value).ok()?;
    TRAIL.with(|t| {
        t.borrow().iter().rev().find_map(|note| match note {
            Note::Origin { value, origin } if *value == wanted => Some(origin.clone()),
            _ => None,
        })
    })
}

enum Found {
    No,
    /// The value itself, as a person wrote it.
    AsWritten,
    /// The value, but `!unsafe` (wrapped so that it renders to itself).
    Unsafe,
}

/// Whether `wanted` is `raw` or inside it, and how it is written there.
fn find(raw: &Json, wanted: &Json) -> Found {
    if raw == wanted {
        return Found::AsWritten;
    }
    match raw {
        Json::String(s) if unwrap_raw(s).is_some_and(|inner| Some(inner) == wanted.as_str()) => {
            Found::Unsafe
        }
        Json::Array(items) => first_found(items.iter(), wanted),
        Json::Object(map) => first_found(map.values(), wanted),
        _ => Found::No,
    }
}

fn first_found<'a>(mut values: impl Iterator<Item = &'a Json>, wanted: &Json) -> Found {
    values
        .find_map(|v| match find(v, wanted) {
            Found::No => None,
            found => Some(found),
        })
        .unwrap_or(Found::No)
}

/// The text of a `{% raw %}…{% endraw %}` wrapper (`!unsafe`), if `s` is one.
fn unwrap_raw(s: &str) -> Option<&str> {
    s.strip_prefix("{% raw %}")?.strip_suffix("{% endraw %}")
}

fn undefined_passes(value: &Value) -> Option<Value> {
    value.is_undefined().then(|| value.clone())
}

fn tagged_with(value: Value, tag: String) -> Result<bool, Error> {
    if !KNOWN_TAGS.contains(&tag.as_str()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("Unknown tag name '{tag}'."),
        ));
    }
    Ok(tags_of(&value).contains(&tag.as_str()))
}

/// Python's type name as Ansible's `true_type` gives it (tagged strings are `_AnsibleTaggedStr`).
fn true_type(value: Value) -> String {
    let tagged = !tags_of(&value).is_empty();
    if value.is_undefined() {
        return "UndefinedMarker".into();
    }
    let plain = crate::template::python_type(&value);
    match (tagged, plain) {
        (true, "str") => "_AnsibleTaggedStr".into(),
        (true, "int") => "_AnsibleTaggedInt".into(),
        (true, "list") => "_AnsibleTaggedList".into(),
        (true, "dict") => "_AnsibleTaggedDict".into(),
        _ => plain.into(),
    }
}

/// `ansible._protomatter.debug`'s `expression`: each expression (as written, never a
/// template) evaluated, an undefined result replaced by Ansible's marker text (`<< error 1 -
/// 'x' is undefined >>`, numbered across the list), and one warning for each expression that
/// had some (`Encountered 1 template error.` then the numbered messages).
pub(crate) fn evaluate_expressions(
    expressions: &[Json],
    scope: &Arc<crate::template::Scope>,
) -> Result<(Vec<Json>, Vec<String>), String> {
    let mut markers = Vec::new();
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    for expression in expressions {
        let Json::String(text) = expression else {
            return Err(format!(
                "ansible._protomatter.debug: each expression must be a string, not {}",
                crate::template::python_type(&crate::vaulted::to_template_value(expression))
            ));
        };
        let before = markers.len();
        let template = Json::String(format!("{{{{ {text} }}}}"));
        let value = crate::template::templar()
            .render_marking_undefined(&template, scope, &mut markers)
            .map_err(|e| e.message)?;
        results.push(value);
        let new = &markers[before..];
        if !new.is_empty() {
            let mut warning = format!(
                "Encountered {} template error{}.",
                new.len(),
                if new.len() > 1 { "s" } else { "" }
            );
            for (n, message) in new.iter().enumerate() {
                warning.push_str(&format!("\nerror {} - {message}", before + n + 1));
            }
            warnings.push(warning);
        }
    }
    Ok((results, warnings))
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_test("ansible._protomatter.tagged_with", tagged_with);
    env.add_test("ansible._protomatter.tagged", |v: Value| {
        !tags_of(&v).is_empty()
    });
    env.add_filter("ansible._protomatter.tag_names", |v: Value| {
        undefined_passes(&v).unwrap_or_else(|| Value::from(tags_of(&v)))
    });
    env.add_filter("ansible._protomatter.origin", |v: Value| {
        undefined_passes(&v).unwrap_or_else(|| Value::from(origin_of(&v)))
    });
    env.add_filter("ansible._protomatter.true_type", true_type);
    // settle keeps no tags on values: the text is remembered as trusted, so that what
    // `from_json(profile='inventory_legacy')` decodes from it keeps its trust (see
    // `trusted_form`).
    env.add_filter("ansible._protomatter.apply_trust", |v: Value| {
        if let Some(text) = v.as_str() {
            remember_bounded(&TRUSTED_TEXT, text.to_string());
        }
        v
    });
}

#[cfg(test)]
mod unit {
    use super::*;

    fn vars(json: Json) -> Arc<Vars> {
        Arc::new(json.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn trust_follows_the_layer_and_unsafe_text() {
        let layer =
            vars(serde_json::json!({"a": {"b": "plain", "u": "{% raw %}{{ x }}{% endraw %}"}}));
        note_read(&layer, "a", false);
        assert_eq!(tags_of(&Value::from("plain")), ["TrustedAsTemplate"]);
        assert!(tags_of(&Value::from("{{ x }}")).is_empty());
        note_read(
            &vars(serde_json::json!({"r": {"stdout": "plain"}})),
            "r",
            true,
        );
        assert!(tags_of(&Value::from("plain")).is_empty());
        assert!(tagged_with(Value::from(1), "Bogus".into()).is_err());
    }

    #[test]
    fn the_env_lookup_gives_an_origin() {
        note_origin(&Json::from("v1"), "<environment variable 'E'>".into());
        assert_eq!(
            origin_of(&Value::from("v1")).as_deref(),
            Some("<environment variable 'E'>")
        );
        assert_eq!(origin_of(&Value::from("other")), None);
    }
}
