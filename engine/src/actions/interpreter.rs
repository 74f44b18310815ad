//! Ansible's Python interpreter discovery (`executor/interpreter_discovery.py`): a task whose
//! module runs on the host, with `ansible_python_interpreter` set to one of the `auto` modes
//! and no `discovered_interpreter_python` fact for the host yet, first looks on the host for
//! the first of `ansible_interpreter_python_fallback` there, says it as a fact in its result
//! (and warns, unless `_silent`), as Ansible's modules do.
//!
//! settle's own modules need no Python, so with `ansible_python_interpreter` unset settle does
//! not probe the host (Ansible's default, `auto`, would): the discovery happens when a playbook
//! asks for it by name.

use serde_json::{Map, Value, json};
use settle_modules::Request;

use super::{ActionContext, templar};
use crate::connection::ConnectionError;

/// What discovery falls back to, as Ansible's `_FALLBACK_INTERPRETER`.
const FALLBACK: &str = "/usr/bin/python3";

/// `INTERPRETER_PYTHON_FALLBACK`'s default.
const DEFAULT_CANDIDATES: &[&str] = &[
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "python3.9",
    "python3.8",
    "/usr/bin/python3",
    "python3",
];

const MODES: &[&str] = &["auto", "auto_legacy", "auto_silent", "auto_legacy_silent"];

/// A discovery carried out for a task: the fact and Ansible's notices for its result.
pub(super) struct Discovered {
    pub python: String,
    pub warnings: Vec<String>,
    pub deprecations: Vec<Value>,
}

impl Discovered {
    /// Puts the discovered interpreter (and the notices) into the task's result, after the
    /// module's own `discovered_interpreter_*` facts are dropped (Ansible allows them from
    /// its discovery only).
    pub fn into_result(self, result: &mut Map<String, Value>) {
        let facts = result
            .entry("ansible_facts")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(facts) = facts {
            facts.insert("discovered_interpreter_python".into(), self.python.into());
        }
        if !self.warnings.is_empty() {
            let list = result.entry("warnings").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.extend(self.warnings.into_iter().map(Value::from));
            }
        }
        if !self.deprecations.is_empty() {
            let list = result.entry("deprecations").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.extend(self.deprecations);
            }
        }
    }
}

/// Drops the `discovered_interpreter_*` facts a module returns: only discovery sets them.
pub(super) fn drop_module_discoveries(result: &mut Map<String, Value>) {
    if let Some(Value::Object(facts)) = result.get_mut("ansible_facts") {
        facts.retain(|k, _| {
            !k.starts_with("discovered_interpreter_")
                && !k.starts_with("ansible_discovered_interpreter_")
        });
    }
}

/// The discovery mode the task asks for: `Some(mode)` when `ansible_python_interpreter` (or
/// `ANSIBLE_PYTHON_INTERPRETER`) is an `auto` mode, empty or omitted, and the host has no
/// discovered interpreter yet. An undefined variable in it fails the task, as in Ansible.
pub(super) fn wanted(ctx: &ActionContext) -> Result<Option<String>, String> {
    let setting = match ctx.scope.get("ansible_python_interpreter") {
        Ok(Some(_)) => {
            let probe = Value::String("{{ ansible_python_interpreter }}".into());
            match templar().render(&probe, ctx.scope) {
                Ok(Value::String(s)) if s == super::OMIT || s.is_empty() => "auto".to_string(),
                Ok(v) => crate::value_text(&v),
                Err(e) => return Err(e.message),
            }
        }
        Err(e) => return Err(e.message),
        _ => match std::env::var("ANSIBLE_PYTHON_INTERPRETER") {
            Ok(s) if !s.is_empty() => s,
            _ => return Ok(None),
        },
    };
    let setting = setting.trim();
    if !MODES.contains(&setting) {
        return Ok(None);
    }
    let probe = Value::String(
        "{{ (ansible_facts | default({})).discovered_interpreter_python | default(None) }}".into(),
    );
    match templar().render(&probe, ctx.scope) {
        Ok(Value::String(s)) if !s.is_empty() && s != "None" => Ok(None),
        _ => Ok(Some(setting.to_string())),
    }
}

/// Looks for a Python on the host as Ansible does: `command -v` for each candidate (quoted by
/// hand, as Ansible quotes them) between `FOUND` and `ENDFOUND`, the first path found wins,
/// `/usr/bin/python3` when none is. An unreachable host is the task's failure to reach it.
pub(super) fn discover(ctx: &ActionContext, mode: &str) -> Result<Discovered, ConnectionError> {
    let host = match ctx.scope.get("inventory_hostname") {
        Ok(Some(v)) => crate::value_text(&v),
        _ => "unknown".into(),
    };
    let silent = mode.ends_with("_silent");
    let mut warnings = Vec::new();
    let mut deprecations = Vec::new();
    if mode.starts_with("auto_legacy") {
        let msg = format!(
            "The '{mode}' option for 'INTERPRETER_PYTHON' now has the same effect as 'auto'."
        );
        settle_yaml::deprecation::deprecated(
            &msg,
            "2.21",
            None,
            None,
            Some(super::deprecation_warnings(ctx)),
        );
        deprecations
            .push(json!({"msg": msg, "version": "2.21", "collection_name": "ansible.builtin"}));
    }
    if ctx.verbosity >= 3 {
        println!("<{host}> Attempting python interpreter discovery.");
    }
    let candidates = candidates(ctx);
    let commands: Vec<String> = candidates
        .iter()
        .map(|py| format!("command -v '{py}'"))
        .collect();
    let bootstrap = format!("echo FOUND; {}; echo ENDFOUND", commands.join("; "));
    let mut args = Map::new();
    args.insert("_raw_params".into(), bootstrap.into());
    let request = Request::new("raw", args);
    let outcome = (ctx.run_module)(&request)?;
    let stdout = outcome
        .values
        .get("stdout")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let found: Option<Vec<String>> = stdout.strip_prefix("FOUND").and_then(|rest| {
        let end = rest.rfind("ENDFOUND")?;
        Some(
            rest[..end]
                .lines()
                .filter(|l| l.starts_with('/'))
                .map(|l| l.trim().to_string())
                .collect(),
        )
    });
    let python = match found {
        Some(found) if found.is_empty() => {
            if !silent {
                let tried: Vec<String> = candidates.iter().map(|c| format!("'{c}'")).collect();
                warnings.push(format!(
                    "No python interpreters found for host '{host}' (tried [{}]).",
                    tried.join(", ")
                ));
            }
            return Ok(Discovered {
                python: FALLBACK.into(),
                warnings,
                deprecations,
            });
        }
        Some(found) => found[0].clone(),
        None => {
            if !silent {
                warnings.push(format!(
                    "Unhandled error in Python interpreter discovery for host '{host}': \
                     unexpected output from Python interpreter discovery"
                ));
            }
            FALLBACK.into()
        }
    };
    if !silent {
        warnings.push(format!(
            "Host '{host}' is using the discovered Python interpreter at '{python}', but future \
             installation of another Python interpreter could cause a different interpreter to \
             be discovered."
        ));
    }
    Ok(Discovered {
        python,
        warnings,
        deprecations,
    })
}

/// `ansible_interpreter_python_fallback`, else Ansible's default list.
fn candidates(ctx: &ActionContext) -> Vec<String> {
    let probe = Value::String("{{ ansible_interpreter_python_fallback | default(None) }}".into());
    match templar().render(&probe, ctx.scope) {
        Ok(Value::Array(items)) => items.iter().map(crate::value_text).collect(),
        Ok(Value::String(s)) if !s.is_empty() && s != "None" => s
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
        _ => DEFAULT_CANDIDATES.iter().map(|s| s.to_string()).collect(),
    }
}
