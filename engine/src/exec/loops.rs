//! Loops: the items of `loop:` and `with_*:`, and running a task once per item with
//! `loop_control` (`loop_var`, `index_var`, `label`, `pause`) and `ansible_loop`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use settle_playbooks::{Loop, LoopControl, Task};

use super::results::ItemResult;
use super::scope::register_scope;
use super::{PlayRun, value_text};
use crate::Vars;
use crate::hosts::HostState;
use crate::output::Status;
use crate::template::{Layer, Scope, python_repr, templar};

/// The items of a loop: `loop:` renders to the list itself; `with_<lookup>:` renders its terms
/// and hands them to that lookup, as Ansible does.
pub(super) fn loop_items(
    spec: &Loop,
    scope: &Arc<Scope>,
    action: &str,
) -> Result<Vec<Value>, String> {
    // first_found skips terms that are undefined (Ansible's are lazy): each undefined part
    // becomes a marker, which names no file.
    let rendered = if spec.lookup.as_deref() == Some("first_found") {
        let items = lazy_terms(&spec.items, scope, 8);
        templar().render_marking_undefined(&items, scope, &mut Vec::new())
    } else {
        templar().render(&spec.items, scope)
    };
    // Ansible's words for a template that fails for another reason than an undefined value.
    let rendered = rendered.map_err(|e| match e.undefined_message() {
        Some(_) => format!("loop: {}", e.message),
        None => format!("loop: Error rendering template: {}", e.message),
    })?;
    match &spec.lookup {
        Some(name) => crate::lookups::query_for_action(name, rendered, scope, action),
        None => match rendered {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "Invalid data passed to 'loop', it requires a list, got this instead: {}. Hint: If \
                 you passed a list/dict of just one element, try adding wantlist=True to your \
                 lookup invocation or use q/query instead of lookup.",
                value_text(&other)
            )),
        },
    }
}

/// Terms with each `{{ name }}` that names a list or mapping written in the playbook replaced
/// by what was written, so that its undefined parts are skipped one by one, as Ansible's lazy
/// containers let first_found skip them.
fn lazy_terms(value: &Value, scope: &Arc<Scope>, depth: u8) -> Value {
    match value {
        Value::String(s) if depth > 0 => {
            let name = s
                .trim()
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .map(str::trim)
                .filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            match name.and_then(|n| scope.entry(n)) {
                Some((raw, false)) if raw.is_array() || raw.is_object() => {
                    lazy_terms(&raw, scope, depth - 1)
                }
                _ => value.clone(),
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| lazy_terms(v, scope, depth)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), lazy_terms(v, scope, depth)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The items as an item layer holds them, with Ansible 2.19's trust per value: what the loop
/// wrote as it is stays trusted (`that: "{{ item }}"` evaluates it), what a template computed
/// or a host sent is untrusted text ([`crate::template::keep_trust`]). `with_<lookup>` items
/// are what a lookup made of the terms: all untrusted.
pub(super) fn trusted_items(spec: &Loop, items: &[Value], scope: &Arc<Scope>) -> Vec<Value> {
    match (&spec.lookup, &spec.items) {
        (None, Value::Array(_)) | (None, Value::String(_)) => {
            match crate::template::keep_trust(&spec.items, &Value::Array(items.to_vec()), scope) {
                Value::Array(kept) if kept.len() == items.len() => kept,
                _ => items.iter().map(crate::template::untrusted).collect(),
            }
        }
        _ => items.iter().map(crate::template::untrusted).collect(),
    }
}

/// The name of the loop variable: `loop_control.loop_var`, rendered when it is a template
/// (`loop_var: "{{ name }}"`), as Ansible templates its `loop_control` first; `item` without one.
pub(super) fn loop_var_name(lc: &LoopControl, scope: &Arc<Scope>) -> Result<String, String> {
    match &lc.loop_var {
        None => Ok("item".into()),
        Some(name) if !name.contains("{{") && !name.contains("{%") => Ok(name.clone()),
        Some(name) => templar()
            .render_text(name, scope)
            .map_err(|e| format!("loop_control.loop_var: {}", e.message)),
    }
}

/// The variables of one loop item: the loop variable, `index_var`, `ansible_loop_var` and
/// `ansible_loop` (only under `extended`, as in Ansible).
pub(super) fn item_layer(lc: &LoopControl, loop_var: &str, items: &[Value], index: usize) -> Vars {
    let count = items.len();
    let mut layer = Vars::new();
    layer.insert(loop_var.to_string(), items[index].clone());
    layer.insert("ansible_loop_var".into(), loop_var.into());
    if let Some(index_var) = &lc.index_var {
        layer.insert(index_var.clone(), index.into());
        layer.insert("ansible_index_var".into(), index_var.clone().into());
    }
    if !lc.extended {
        return layer;
    }
    let mut ansible_loop = json!({"index": index + 1, "index0": index, "first": index == 0,
        "last": index + 1 == count, "length": count, "revindex": count - index,
        "revindex0": count - index - 1});
    // Ansible leaves previtem out on the first item and nextitem on the last.
    if index > 0 {
        ansible_loop["previtem"] = items[index - 1].clone();
    }
    if index + 1 < count {
        ansible_loop["nextitem"] = items[index + 1].clone();
    }
    if lc.extended_allitems {
        ansible_loop["allitems"] = Value::from(items.to_vec());
    }
    layer.insert("ansible_loop".into(), ansible_loop);
    layer
}

/// How an item is shown: `loop_control.label` rendered once the item has run, so it may name
/// the item's own registered result (`label: "{{ r.stdout }}"`), else the item's Python repr.
/// A label that fails to render fails the item, in Ansible's words.
fn item_label(
    task: &Task,
    no_log: bool,
    item: &Value,
    item_scope: &Arc<Scope>,
    result: &mut Map<String, Value>,
) -> String {
    let repr = || python_repr(&minijinja::Value::from(minijinja::value::Serde(item)), true);
    match &task.keywords.loop_control.label {
        // Ansible's words; the item may hold the very secret no_log protects.
        _ if no_log => "(censored due to no_log)".to_string(),
        None => repr(),
        Some(l) => {
            let after = register_scope(task, item_scope, result);
            match templar().render(l, &after) {
                Ok(label) => value_text(&label),
                Err(e) => {
                    let msg = format!("Failed to template loop_control.label: {}", e.message);
                    result.remove("skipped");
                    result.insert("failed".into(), true.into());
                    result.insert("msg".into(), msg.into());
                    repr()
                }
            }
        }
    }
}

/// The private result key carrying a loop's items with their trust (see `trusted_items`), for
/// the registered result; never shown.
pub(super) const KEPT_ITEMS: &str = "_ansible_kept_items";

impl PlayRun<'_> {
    pub(super) fn run_loop(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        (scope, extra): (&Arc<Scope>, &[Layer]),
        items: Vec<Value>,
        no_log: bool,
    ) -> (
        Map<String, Value>,
        Option<settle_modules::Plan>,
        Option<String>,
    ) {
        let lc = &task.keywords.loop_control;
        let loop_var = match loop_var_name(lc, scope) {
            Ok(name) => name,
            Err(e) => {
                let failed = ItemResult::failed(e);
                return (failed.result, None, None);
            }
        };
        if items.is_empty() {
            let result = json!({"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []});
            return (result.as_object().cloned().unwrap_or_default(), None, None);
        }
        // The items as the loop variable holds them: a template layer whose untrusted text
        // renders as itself (see `trusted_items`).
        let kept = match &task.keywords.loop_ {
            Some(spec) => trusted_items(spec, &items, scope),
            None => items.iter().map(crate::template::untrusted).collect(),
        };
        let mut results = Vec::with_capacity(items.len());
        let (mut unreachable, mut ignore_unreachable) = (None, true);
        let mut combined_plan = settle_modules::Plan::default();
        let mut any_no_log = false;
        for (index, item) in items.iter().cloned().enumerate() {
            let layer = item_layer(lc, &loop_var, &kept, index);
            // An item's result carries its index and `ansible_loop` as well, as Ansible's.
            let loop_keys: Vec<(String, Value)> = layer
                .iter()
                .filter(|(k, _)| *k != &loop_var && *k != "ansible_loop_var")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // set_fact and include_vars in a loop see what the items before them set.
            let base = if index > 0 && matches!(task.module.as_str(), "set_fact" | "include_vars") {
                self.scope(state, task, extra)
            } else {
                scope.clone()
            };
            let item_scope = base.with_layer(Arc::new(layer));
            let mut r = match self.false_condition(&task.keywords.when, &item_scope) {
                Err(e) => ItemResult::failed(e.worded()),
                Ok(Some(cond)) => ItemResult {
                    result: json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond})
                        .as_object().cloned().unwrap_or_default(),
                    plan: Default::default(),
                    unreachable: None,
                    meta: None,
                },
                Ok(None) => self.run_one(host, state, task, &item_scope),
            };
            // An unreachable item does not end the loop (as in Ansible): the task is unreachable,
            // and ignored only when every unreachable item's `ignore_unreachable` says so.
            let item_unreachable = r.unreachable.take();
            if let Some(msg) = &item_unreachable {
                let ignore = super::bool_of(
                    "ignore_unreachable",
                    task.keywords.ignore_unreachable.as_deref(),
                    &item_scope,
                )
                .ok()
                .flatten()
                .unwrap_or(false);
                ignore_unreachable = ignore_unreachable && ignore;
                unreachable.get_or_insert_with(|| msg.clone());
                r.result = json!({"changed": false, "unreachable": true, "msg": super::results::task_failed(msg)})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
            }
            r.result.insert(loop_var.clone(), item.clone());
            r.result
                .insert("ansible_loop_var".into(), loop_var.clone().into());
            r.result.extend(loop_keys);
            // An action may ask for its own result to be hidden, as Ansible's honour.
            let action_no_log = r
                .result
                .get("_ansible_no_log")
                .is_some_and(crate::template::json_truthy);
            any_no_log |= action_no_log;
            let no_log = no_log || action_no_log;
            let label = item_label(task, no_log, &item, &item_scope, &mut r.result);
            if let Some(msg) = &item_unreachable {
                let error = match no_log {
                    true => super::results::censored_connection_error(msg),
                    false => msg.trim_start_matches("Task failed: ").to_string(),
                };
                self.engine.out.host_banner(host);
                self.engine.out.task_error("", &error, Some(&task.location));
                // The item (a password, say) is in the result: hidden as every no_log result is.
                let shown = match no_log {
                    true => json!({"censored": super::results::CENSORED, "changed": false}),
                    false => Value::Object(r.result.clone()),
                };
                self.engine
                    .out
                    .result(host, Status::Failed, Some(&label), &shown, false);
            } else {
                if r.status() == crate::output::Status::Failed {
                    self.show_task_error(host, task, &r, no_log);
                }
                self.print_result(host, task, &mut r, Some(&label), no_log, false);
            }
            combined_plan.changes.extend(r.plan.changes.iter().cloned());
            combined_plan.content.extend(r.plan.content.iter().cloned());
            let mut registered = r.result.clone();
            registered.retain(|k, _| !k.starts_with('_'));
            let status = match item_unreachable {
                Some(_) => Status::Unreachable,
                None => r.status(),
            };
            results.push((status, Value::Object(registered.clone())));
            if !lc.break_when.is_empty() {
                let after = register_scope(task, &item_scope, &registered);
                match self.conditions_hold(&lc.break_when, &after) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        let failed = ItemResult::failed(format!("break_when: {e}"));
                        results.push((failed.status(), Value::Object(failed.result)));
                        break;
                    }
                }
            }
            // Between items, as Ansible: not after the last.
            if let Some(pause) = lc.pause
                && index + 1 < items.len()
            {
                // The parser keeps a pause between 0 and a year; nothing else reaches here.
                std::thread::sleep(Duration::try_from_secs_f64(pause).unwrap_or_default());
            }
        }
        let any = |s: Status| results.iter().any(|(st, _)| *st == s);
        let mut result = Map::new();
        result.insert("changed".into(), any(Status::Changed).into());
        // Ansible marks the loop failed when any item says `failed`; whether the task counts as
        // failed is `is_failed`'s call (an item's `failed_when` verdict outranks it).
        let failed_flag = |v: &Value| v.get("failed").is_some_and(crate::template::json_truthy);
        if any(Status::Failed) || results.iter().any(|(_, v)| failed_flag(v)) {
            result.insert("failed".into(), true.into());
            result.insert("msg".into(), "One or more items failed".into());
        } else {
            result.insert("msg".into(), "All items completed".into());
        }
        // As Ansible: `skipped` says whether every item was, and then so does `msg`.
        let all_skipped = results.iter().all(|(s, _)| *s == Status::Skipped);
        result.insert("skipped".into(), all_skipped.into());
        if all_skipped {
            result.insert("msg".into(), "All items skipped".into());
        }
        result.insert(
            "results".into(),
            Value::Array(results.into_iter().map(|(_, v)| v).collect()),
        );
        if any_no_log {
            result.insert("_ansible_no_log".into(), true.into());
        }
        // Each item as the loop variable held it, so the registered result keeps its trust.
        result.insert(KEPT_ITEMS.into(), Value::Array(kept));
        if unreachable.is_some() {
            result.insert("unreachable".into(), true.into());
            result.insert(
                "_ansible_ignore_unreachable".into(),
                ignore_unreachable.into(),
            );
        }
        (result, Some(combined_plan), unreachable)
    }
}
