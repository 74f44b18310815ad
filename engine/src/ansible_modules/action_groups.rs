//! Action groups (`module_defaults: {group/NAME: …}`): the actions a collection's
//! `meta/runtime.yml` (or ansible-core's own `config/ansible_builtin_runtime.yml` for an
//! unqualified name) lists under `action_groups.NAME`, with the groups its `metadata:
//! {extend_group: …}` entry names, as Ansible's `Base._resolve_group` reads them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{AnsibleCore, ansible_core, collection_roots};
use crate::Unpoisoned;

/// The fully qualified actions of the group `name` (`testgroup`: ansible.builtin's;
/// `ns.coll.testgroup`: that collection's). Empty when the group or its collection is not
/// found (Ansible fails the play then; settle's own modules belong to none).
pub(crate) fn actions_of(name: &str, play_dir: &Path) -> Vec<String> {
    let Ok(core) = ansible_core() else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    collect(core, play_dir, &qualified(name), &mut seen, &mut out);
    out
}

fn qualified(group: &str) -> String {
    match group.split('.').count() {
        n if n >= 3 => group.to_string(),
        _ => format!("ansible.builtin.{group}"),
    }
}

fn collect(
    core: &AnsibleCore,
    play_dir: &Path,
    fq_group: &str,
    seen: &mut HashSet<String>,
    out: &mut Vec<String>,
) {
    if !seen.insert(fq_group.to_string()) {
        return;
    }
    let mut parts = fq_group.splitn(3, '.');
    let (Some(ns), Some(coll), Some(group)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let collection = format!("{ns}.{coll}");
    let Some(runtime) = runtime_file(core, play_dir, ns, coll) else {
        return;
    };
    let Ok(meta) = settle_yaml::load_file(&runtime) else {
        return;
    };
    let Some(groups) = meta.get("action_groups") else {
        return;
    };
    let Some(entries) = groups
        .get(fq_group)
        .or_else(|| groups.get(group))
        .and_then(|g| g.as_seq())
    else {
        return;
    };
    let mut found_metadata = false;
    for entry in entries {
        // VALIDATE_ACTION_GROUP_METADATA, on unless turned off.
        let validate = std::env::var("ANSIBLE_VALIDATE_ACTION_GROUP_METADATA").map_or(true, |v| {
            crate::template::json_bool(&serde_json::Value::String(v))
        });
        if validate && entry.as_str().is_none() {
            check_metadata(&entry.to_value(), found_metadata, fq_group);
            found_metadata |= entry.get("metadata").is_some_and(|m| m.as_map().is_some());
        }
        if let Some(action) = entry.as_str() {
            let action = match action.split('.').count() {
                n if n >= 3 => action.to_string(),
                _ => format!("{collection}.{action}"),
            };
            if !out.contains(&action) {
                out.push(action);
            }
            continue;
        }
        let extended = entry.get("metadata").and_then(|m| m.get("extend_group"));
        let names: Vec<String> = match extended {
            Some(node) => match (node.as_str(), node.as_seq()) {
                (Some(one), _) => vec![one.to_string()],
                (_, Some(many)) => many
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        for name in names {
            collect(core, play_dir, &qualified(&name), seen, out);
        }
    }
}

/// A collection action's resolved name, as Ansible's `_resolve_action` gives it: the action
/// plugin the collection's `plugin_routing.action` redirects lead to when that plugin exists,
/// else the module its `plugin_routing.modules` redirects lead to. Both a task's action and a
/// `module_defaults` key are resolved so before they are matched.
pub(crate) fn canonical_module(fqcn: &str, play_dir: &Path) -> String {
    let Ok(core) = ansible_core() else {
        return fqcn.to_string();
    };
    let action = follow(core, play_dir, "action", fqcn);
    let has_plugin = |name: &str| {
        let parts: Vec<&str> = name.split('.').collect();
        let [ns, coll, plugin] = parts[..] else {
            return false;
        };
        collection_roots(play_dir, core).iter().any(|root| {
            root.join("ansible_collections")
                .join(ns)
                .join(coll)
                .join("plugins/action")
                .join(format!("{plugin}.py"))
                .is_file()
        })
    };
    if has_plugin(&action) {
        return action;
    }
    follow(core, play_dir, "modules", fqcn)
}

/// A name after the `plugin_routing.KIND.NAME.redirect`s of its collections (ansible-core's
/// own for `ansible.builtin`), remembered per name: the builtin runtime file is large.
fn follow(core: &AnsibleCore, play_dir: &Path, kind: &str, fqcn: &str) -> String {
    type Seen = std::sync::Mutex<std::collections::HashMap<(String, String, PathBuf), String>>;
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    let key = (kind.to_string(), fqcn.to_string(), play_dir.to_path_buf());
    let seen = SEEN.get_or_init(Default::default);
    if let Some(name) = seen.lock().unpoisoned().get(&key) {
        return name.clone();
    }
    let name = follow_uncached(core, play_dir, kind, fqcn);
    seen.lock().unpoisoned().insert(key, name.clone());
    name
}

fn follow_uncached(core: &AnsibleCore, play_dir: &Path, kind: &str, fqcn: &str) -> String {
    let mut name = fqcn.to_string();
    for _ in 0..8 {
        let parts: Vec<&str> = name.split('.').collect();
        let [ns, coll, module] = parts[..] else {
            break;
        };
        if (ns, coll) == ("ansible", "legacy") {
            break;
        }
        let Some(runtime) = runtime_file(core, play_dir, ns, coll) else {
            break;
        };
        let Ok(meta) = settle_yaml::load_file(&runtime) else {
            break;
        };
        let target = meta
            .get("plugin_routing")
            .and_then(|r| r.get(kind))
            .and_then(|m| m.get(module))
            .and_then(|m| m.get("redirect"))
            .and_then(|r| r.as_str())
            .filter(|t| t.split('.').count() == 3 && *t != name)
            .map(str::to_string);
        match target {
            Some(target) => name = target,
            None => break,
        }
    }
    name
}

/// Ansible's warnings for a group's `metadata` entry that is not `{metadata: {extend_group:
/// NAME or [NAMES]}}`, kept for the run to show ([`take_warnings`]).
fn check_metadata(entry: &serde_json::Value, found_before: bool, fq_group: &str) {
    use serde_json::Value;
    let mut problems = Vec::new();
    let keys: Vec<&String> = entry
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let metadata = entry.get("metadata");
    if keys.len() != 1 || metadata.is_none() {
        let mut sorted: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        sorted.sort();
        problems.push(format!(
            "The only expected key is metadata, but got keys: {}",
            sorted.join(", ")
        ));
    } else if let Some(metadata) = metadata {
        if found_before {
            problems.push("The group contains multiple metadata entries.".to_string());
        }
        match metadata {
            Value::Object(map) => {
                let unexpected: Vec<&str> = map
                    .keys()
                    .filter(|k| *k != "extend_group")
                    .map(String::as_str)
                    .collect();
                if !unexpected.is_empty() {
                    problems.push(format!(
                        "The metadata contains unexpected keys: {}",
                        unexpected.join(", ")
                    ));
                }
                if let Some(value) = map
                    .get("extend_group")
                    .filter(|v| !matches!(v, Value::String(_) | Value::Array(_)))
                {
                    problems.push(format!(
                        "The metadata contains unexpected key types: extend_group is {} \
                         (expected type list)",
                        py_str(value)
                    ));
                }
            }
            other => problems.push(format!(
                "The metadata is not a dictionary. Got {}",
                py_str(other)
            )),
        }
    }
    if !problems.is_empty() {
        problems.insert(
            0,
            format!(
                "Invalid metadata was found for action_group {fq_group} while loading \
                 module_defaults."
            ),
        );
        WARNINGS.lock().unpoisoned().push(problems.join(" "));
    }
}

/// A value as Python's `%s` shows it: a string bare, containers as their repr.
fn py_str(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_repr(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(s) => format!("'{s}'"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The warnings reading action groups gave since the last call.
pub(crate) fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unpoisoned())
}

fn runtime_file(core: &AnsibleCore, play_dir: &Path, ns: &str, coll: &str) -> Option<PathBuf> {
    if (ns, coll) == ("ansible", "builtin") {
        return Some(core.package.join("config/ansible_builtin_runtime.yml"));
    }
    collection_roots(play_dir, core)
        .into_iter()
        .map(|root| {
            root.join("ansible_collections")
                .join(ns)
                .join(coll)
                .join("meta/runtime.yml")
        })
        .find(|p| p.is_file())
}
