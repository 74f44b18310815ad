//! Loops: the items of `loop:` and `with_*:`, and running a task once per item with
//! `loop_control` (`loop_var`, `index_var`, `label`, `pause`) and `ansible_loop`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use settle_playbooks::{LoopKind, Task};

use super::results::ItemResult;
use super::{PlayRun, type_name, value_text};
use crate::Vars;
use crate::hosts::HostState;
use crate::output::{Status, py_json};
use crate::template::{Scope, python_repr, templar};

/// The items of a loop, rendered.
pub(super) fn loop_items(
    kind: LoopKind,
    items: &Value,
    scope: &Arc<Scope>,
    play_dir: &std::path::Path,
) -> Result<Vec<Value>, String> {
    let rendered = templar()
        .render(items, scope)
        .map_err(|e| format!("loop: {}", e.message))?;
    let as_list = |v: Value| -> Result<Vec<Value>, String> {
        match v {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            Value::String(s) if kind != LoopKind::List => Ok(s
                .split(',')
                .map(|x| Value::String(x.trim().to_string()))
                .collect()),
            other => Err(format!(
                "loop requires a list, got {}: {}",
                type_name(&other),
                py_json(&other, None)
            )),
        }
    };
    match kind {
        LoopKind::List => as_list(rendered),
        LoopKind::Items => {
            let mut out = Vec::new();
            for item in as_list(rendered)? {
                match item {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(out)
        }
        LoopKind::Indexed => Ok(as_list(rendered)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!([i, v]))
            .collect()),
        LoopKind::Dict => match rendered {
            Value::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()),
            other => Err(format!(
                "with_dict expects a dict, got {}",
                type_name(&other)
            )),
        },
        LoopKind::Sequence => {
            let spec = value_text(&rendered);
            let mut params: BTreeMap<String, String> = BTreeMap::new();
            for word in spec.split_whitespace() {
                if let Some((k, v)) = word.split_once('=') {
                    params.insert(k.to_string(), v.to_string());
                } else if let Some((a, b)) = word.split_once('-') {
                    params.insert("start".into(), a.into());
                    params.insert("end".into(), b.into());
                }
            }
            let num = |k: &str, d: i64| params.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
            let start = num("start", 1);
            let stride = num("stride", 1).max(1);
            let end = match params.get("count") {
                Some(c) => {
                    start
                        + c.parse::<i64>()
                            .map_err(|_| "with_sequence: count must be a number")?
                            * stride
                        - stride
                }
                None => num("end", start),
            };
            let format = params.get("format").cloned();
            let mut out = Vec::new();
            let mut i = start;
            while i <= end {
                let text = match &format {
                    Some(f) => printf_int(f, i),
                    None => i.to_string(),
                };
                out.push(Value::String(text));
                i += stride;
            }
            Ok(out)
        }
        LoopKind::Fileglob => {
            let mut out = Vec::new();
            for pattern in as_list(rendered)? {
                let pattern = value_text(&pattern);
                let full = if pattern.starts_with('/') {
                    pattern
                } else {
                    play_dir.join("files").join(&pattern).display().to_string()
                };
                for path in glob::glob(&full)
                    .map_err(|e| format!("with_fileglob: {e}"))?
                    .flatten()
                {
                    if path.is_file() {
                        out.push(Value::String(path.display().to_string()));
                    }
                }
            }
            Ok(out)
        }
    }
}

pub(super) fn printf_int(format: &str, value: i64) -> String {
    // The common `%02d`/`%d`/`%x` forms of with_sequence's format.
    let Some(start) = format.find('%') else {
        return format.to_string();
    };
    let rest = &format[start + 1..];
    let spec_len = rest
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or(rest.len(), |i| i + 1);
    let spec = &rest[..spec_len];
    let width: usize = spec
        .trim_start_matches('0')
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(0);
    let zero = spec.starts_with('0');
    let body = match (spec.chars().last(), zero) {
        (Some('x'), true) => format!("{value:0width$x}"),
        (Some('x'), false) => format!("{value:width$x}"),
        (_, true) => format!("{value:0width$}"),
        (_, false) => format!("{value:width$}"),
    };
    format!("{}{body}{}", &format[..start], &rest[spec_len..])
}

impl PlayRun<'_> {
    pub(super) fn run_loop(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
        items: Vec<Value>,
        no_log: bool,
    ) -> (
        Map<String, Value>,
        Option<settle_modules::Plan>,
        Option<String>,
    ) {
        let lc = &task.keywords.loop_control;
        let loop_var = lc.loop_var.clone().unwrap_or_else(|| "item".into());
        if items.is_empty() {
            let result = json!({"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []});
            return (result.as_object().cloned().unwrap_or_default(), None, None);
        }
        let mut results = Vec::with_capacity(items.len());
        let mut combined_plan = settle_modules::Plan::default();
        let count = items.len();
        for (index, item) in items.into_iter().enumerate() {
            let mut layer = Vars::new();
            layer.insert(loop_var.clone(), item.clone());
            layer.insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &lc.index_var {
                layer.insert(index_var.clone(), index.into());
            }
            layer.insert(
                "ansible_loop".into(),
                json!({"index": index + 1, "index0": index, "first": index == 0, "last": index + 1 == count, "length": count,
                       "revindex": count - index, "revindex0": count - index - 1}),
            );
            let item_scope = scope.with_layer(Arc::new(layer));
            let label = match &lc.label {
                // Ansible's words; the item may hold the very secret no_log protects.
                _ if no_log => "(censored due to no_log)".to_string(),
                Some(l) => templar()
                    .render_text(&value_text(l), &item_scope)
                    .unwrap_or_else(|_| value_text(l)),
                None => python_repr(
                    &minijinja::Value::from(minijinja::value::Serde(&item)),
                    true,
                ),
            };
            let mut r = match self.false_condition(&task.keywords.when, &item_scope) {
                Err(e) => ItemResult::failed(format!("the conditional check failed: {e}")),
                Ok(Some(cond)) => ItemResult {
                    result: json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond})
                        .as_object().cloned().unwrap_or_default(),
                    plan: Default::default(),
                    unreachable: None,
                    meta: None,
                },
                Ok(None) => self.run_one(host, state, task, &item_scope),
            };
            if let Some(msg) = r.unreachable.take() {
                return (Map::new(), None, Some(msg));
            }
            r.result.insert(loop_var.clone(), item);
            r.result
                .insert("ansible_loop_var".into(), loop_var.clone().into());
            self.print_result(host, &r, Some(&label), no_log, false);
            combined_plan.changes.extend(r.plan.changes.iter().cloned());
            combined_plan.content.extend(r.plan.content.iter().cloned());
            let mut registered = r.result.clone();
            registered.retain(|k, _| !k.starts_with('_'));
            results.push((r.status(), Value::Object(registered)));
            if let Some(pause) = lc.pause {
                std::thread::sleep(Duration::from_secs_f64(pause));
            }
        }
        let any = |s: Status| results.iter().any(|(st, _)| *st == s);
        let mut result = Map::new();
        result.insert("changed".into(), any(Status::Changed).into());
        if any(Status::Failed) {
            result.insert("failed".into(), true.into());
            result.insert("msg".into(), "One or more items failed".into());
        } else {
            result.insert("msg".into(), "All items completed".into());
        }
        if results.iter().all(|(s, _)| *s == Status::Skipped) {
            result.insert("skipped".into(), true.into());
        }
        result.insert(
            "results".into(),
            Value::Array(results.into_iter().map(|(_, v)| v).collect()),
        );
        (result, Some(combined_plan), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_formats() {
        assert_eq!(printf_int("web%02d", 3), "web03");
        assert_eq!(printf_int("%d", 10), "10");
    }
}
