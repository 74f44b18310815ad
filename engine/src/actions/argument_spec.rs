//! `validate_argument_spec`: a role's arguments checked against its `meta/argument_specs.yml`
//! (the task Ansible puts first in such a role), with the messages of Ansible's
//! `ArgumentSpecValidator`: required arguments, types (converted as Ansible converts them),
//! `choices`, `elements`, nested `options` and unsupported sub-options.

use serde_json::{Map, Value, json};

use super::{ActionContext, ActionResult, done, rendered_args};
use crate::template::python_repr;

pub(super) fn validate_argument_spec(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let context = args
        .get("validate_args_context")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let spec = match args.get("argument_spec") {
        Some(Value::Object(spec)) => spec.clone(),
        Some(other) => {
            return Err(format!(
                "Incorrect type for argument_spec, expected dict and got {}",
                class(other)
            ));
        }
        None => {
            return Err(format!(
                "\"argument_spec\" arg is required in args: {}",
                python_repr(
                    &minijinja::Value::from(minijinja::value::Serde(&ctx.task.args)),
                    true
                )
            ));
        }
    };
    let provided = match args.get("provided_arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(format!(
                "Incorrect type for provided_arguments, expected dict and got {}",
                class(other)
            ));
        }
    };
    // The variables named in the spec, rendered, under what the role use gave.
    let mut params = Map::new();
    for name in spec.keys() {
        if let Some(value) = ctx.scope.get(name).map_err(|e| e.message)? {
            params.insert(name.clone(), value);
        }
    }
    params.extend(provided);
    let errors = validate(&spec, &mut params);
    if errors.is_empty() {
        return Ok(done(json!({
            "changed": false,
            "msg": "The arg spec validation passed",
            "validate_args_context": context,
        })));
    }
    Ok(done(json!({
        "failed": true,
        "msg": format!("Validation of arguments failed:\n{}", errors.join("\n")),
        "argument_spec_data": spec,
        "argument_errors": errors,
        "validate_args_context": context,
    })))
}

/// Ansible's `ArgumentSpecValidator.validate`: the error messages, in its order.
pub(crate) fn validate(spec: &Map<String, Value>, params: &mut Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut unsupported = Vec::new();
    check_level(spec, params, &mut Vec::new(), &mut errors, &mut unsupported);
    if !unsupported.is_empty() {
        unsupported.sort();
        let names: Vec<&str> = unsupported.iter().map(|(n, _)| n.as_str()).collect();
        let supported = unsupported
            .last()
            .map(|(_, s)| {
                let mut s = s.clone();
                s.sort();
                s.join(", ")
            })
            .unwrap_or_default();
        errors.push(format!(
            "{}. Supported parameters include: {supported}.",
            names.join(", ")
        ));
    }
    errors
}

fn in_context(msg: String, context: &[String]) -> String {
    match context.is_empty() {
        true => msg,
        false => format!("{msg} found in {}", context.join(" -> ")),
    }
}

/// One level of options (the top, or a dict's `options`), then the levels below it.
fn check_level(
    spec: &Map<String, Value>,
    params: &mut Map<String, Value>,
    context: &mut Vec<String>,
    errors: &mut Vec<String>,
    unsupported: &mut Vec<(String, Vec<String>)>,
) {
    // Aliases give their value to the option's own name.
    let mut legal: Vec<String> = spec.keys().cloned().collect();
    let mut aliases = Vec::new();
    for (name, option) in spec {
        for alias in option
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            aliases.push(alias.to_string());
            legal.push(alias.to_string());
            if !params.contains_key(name)
                && let Some(v) = params.get(alias).cloned()
            {
                params.insert(name.clone(), v);
            }
        }
    }
    let supported: Vec<String> = legal
        .iter()
        .filter(|n| !aliases.contains(n))
        .cloned()
        .collect();
    for key in params.keys() {
        if !legal.contains(key) {
            let name = context
                .iter()
                .cloned()
                .chain(std::iter::once(key.clone()))
                .collect::<Vec<_>>()
                .join(".");
            unsupported.push((name, supported.clone()));
        }
    }
    set_defaults(spec, params, false);
    let mut missing: Vec<&str> = spec
        .iter()
        .filter(|(name, option)| {
            option.get("required").is_some_and(truthy) && !params.contains_key(*name)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        errors.push(in_context(
            format!("missing required arguments: {}", missing.join(", ")),
            context,
        ));
    }
    check_types(spec, params, context, errors);
    check_choices(spec, params, context, errors);
    set_defaults(spec, params, true);
    for (name, option) in spec {
        let wanted = option.get("type").and_then(Value::as_str).unwrap_or("str");
        let elements = option.get("elements").and_then(Value::as_str);
        if wanted != "dict" && !(wanted == "list" && elements == Some("dict")) {
            continue;
        }
        let Some(Value::Object(sub_spec)) = option.get("options") else {
            continue;
        };
        let apply = option.get("apply_defaults").is_some_and(truthy);
        match params.get(name) {
            None | Some(Value::Null) if apply => {
                params.insert(name.clone(), Value::Object(Map::new()));
            }
            None | Some(Value::Null) => continue,
            Some(_) => {}
        }
        context.push(name.clone());
        let elements: Vec<Value> = match params.get(name) {
            Some(Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        };
        let mut checked = Vec::new();
        for element in elements {
            let Value::Object(mut sub_params) = element else {
                errors.push(format!(
                    "value of '{name}' must be of type dict or list of dicts"
                ));
                checked.push(element);
                continue;
            };
            check_level(sub_spec, &mut sub_params, context, errors, unsupported);
            checked.push(Value::Object(sub_params));
        }
        if let Some(value) = params.get_mut(name) {
            *value = match value {
                Value::Array(_) => Value::Array(checked),
                _ => checked.into_iter().next().unwrap_or(Value::Null),
            };
        }
        context.pop();
    }
}

fn truthy(v: &Value) -> bool {
    crate::template::json_truthy(v)
}

fn set_defaults(spec: &Map<String, Value>, params: &mut Map<String, Value>, all: bool) {
    for (name, option) in spec {
        let default = option.get("default").cloned().unwrap_or(Value::Null);
        if !params.contains_key(name) && (!default.is_null() || all) {
            params.insert(name.clone(), default);
        }
    }
}

fn check_types(
    spec: &Map<String, Value>,
    params: &mut Map<String, Value>,
    context: &[String],
    errors: &mut Vec<String>,
) {
    for (name, option) in spec {
        let Some(value) = params.get(name).cloned() else {
            continue;
        };
        let required = option.get("required").is_some_and(truthy);
        if value.is_null() && !required && option.get("default").is_none_or(Value::is_null) {
            continue;
        }
        let wanted = option.get("type").and_then(Value::as_str).unwrap_or("str");
        match convert(wanted, &value) {
            Ok(converted) => {
                let converted = match option.get("elements").and_then(Value::as_str) {
                    Some(element_type) => {
                        let Value::Array(items) = &converted else {
                            errors.push(format!(
                                "Invalid type {wanted} for option '{}'{}, elements value check \
                                 is supported only with 'list' type",
                                python_text(&converted),
                                found_in(context)
                            ));
                            continue;
                        };
                        let mut out = Vec::new();
                        for item in items {
                            match convert(element_type, item) {
                                Ok(v) => out.push(v),
                                Err(e) => {
                                    let mut msg = format!("Elements value for option '{name}'");
                                    if !context.is_empty() {
                                        msg.push_str(&format!(
                                            " found in '{}'",
                                            context.join(" -> ")
                                        ));
                                    }
                                    errors.push(format!(
                                        "{msg} is of type {} and we were unable to convert to \
                                         {element_type}: {e}",
                                        type_name(item)
                                    ));
                                }
                            }
                        }
                        Value::Array(out)
                    }
                    None => converted,
                };
                params.insert(name.clone(), converted);
            }
            Err(e) => errors.push(format!(
                "argument '{name}' is of type {}{} and we were unable to convert to {wanted}: {e}",
                type_name(&value),
                found_in(context)
            )),
        }
    }
}

fn found_in(context: &[String]) -> String {
    match context.is_empty() {
        true => String::new(),
        false => format!(" found in '{}'.", context.join(" -> ")),
    }
}

fn check_choices(
    spec: &Map<String, Value>,
    params: &mut Map<String, Value>,
    context: &[String],
    errors: &mut Vec<String>,
) {
    for (name, option) in spec {
        let Some(choices) = option.get("choices") else {
            continue;
        };
        let Value::Array(choices) = choices else {
            errors.push(in_context(
                format!(
                    "internal error: choices for argument {name} are not iterable: {}",
                    python_text(choices)
                ),
                context,
            ));
            continue;
        };
        let Some(value) = params.get(name) else {
            continue;
        };
        let listed = choices
            .iter()
            .map(python_text)
            .collect::<Vec<_>>()
            .join(", ");
        match value {
            Value::Array(items) => {
                let off: Vec<String> = items
                    .iter()
                    .filter(|i| !choices.contains(i))
                    .map(python_text)
                    .collect();
                if !off.is_empty() {
                    errors.push(in_context(
                        format!(
                            "value of {name} must be one or more of: {listed}. Got no match for: {}",
                            off.join(", ")
                        ),
                        context,
                    ));
                }
            }
            value if !choices.contains(value) => {
                errors.push(in_context(
                    format!(
                        "value of {name} must be one of: {listed}, got: {}",
                        python_text(value)
                    ),
                    context,
                ));
            }
            _ => {}
        }
    }
}

/// Python's `type(value).__name__` without Ansible's tags.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        other => settle_yaml::python_type(other),
    }
}

/// Python's `type(value)` as Ansible prints it for a value from a playbook (tagged with its
/// origin, except None and booleans, which cannot be).
fn class(value: &Value) -> String {
    match value {
        Value::Null => "<class 'NoneType'>".into(),
        Value::Bool(_) => "<class 'bool'>".into(),
        other => {
            let tagged = match settle_yaml::python_type(other) {
                "str" => "Str",
                "int" => "Int",
                "float" => "Float",
                "list" => "List",
                _ => "Dict",
            };
            format!("<class 'ansible.module_utils.datatag._AnsibleTagged{tagged}'>")
        }
    }
}

/// `str(value)` in Python.
fn python_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => python_repr(
            &minijinja::Value::from(minijinja::value::Serde(other)),
            true,
        ),
    }
}

/// Ansible's `check_type_*` for one value.
fn convert(wanted: &str, value: &Value) -> Result<Value, String> {
    match wanted {
        "str" => Ok(match value {
            Value::Null => Value::String(String::new()),
            other => Value::String(python_text(other)),
        }),
        "list" => match value {
            Value::Array(_) => Ok(value.clone()),
            Value::String(s) => Ok(json!(s.split(',').collect::<Vec<_>>())),
            Value::Number(_) => Ok(json!([python_text(value)])),
            other => Err(format!("{} cannot be converted to a list", class(other))),
        },
        "dict" => to_dict(value),
        "bool" => to_bool(value),
        "int" => to_int(value),
        "float" => match value {
            Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0))),
            Value::Bool(b) => Ok(json!(if *b { 1.0 } else { 0.0 })),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(|f| json!(f))
                .map_err(|_| format!("{} cannot be converted to a float", class(value))),
            other => Err(format!("{} cannot be converted to a float", class(other))),
        },
        "path" => {
            let text = python_text(value);
            let home = std::env::var("HOME").unwrap_or_default();
            Ok(Value::String(match text.strip_prefix('~') {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
                _ => text,
            }))
        }
        "raw" => Ok(value.clone()),
        "json" | "jsonarg" => match value {
            Value::String(s) => Ok(Value::String(s.trim().to_string())),
            Value::Array(_) | Value::Object(_) => Ok(Value::String(python_json(value))),
            other => Err(format!(
                "{} cannot be converted to a json string",
                class(other)
            )),
        },
        "bytes" | "bits" => {
            let bits = wanted == "bits";
            let kind = if bits { "Bit" } else { "Byte" };
            crate::filters::data::human_to_bytes(&python_text(value), None, bits)
                .map(|n| json!(n))
                .map_err(|_| format!("{} cannot be converted to a {kind} value", class(value)))
        }
        _ => Err("'NoneType' object is not callable".into()),
    }
}

/// `json.dumps(value)`: `", "` and `": "` between items.
fn python_json(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn to_bool(value: &Value) -> Result<Value, String> {
    let text = match value {
        Value::Bool(b) => return Ok(Value::Bool(*b)),
        Value::String(s) => s.trim().to_lowercase(),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => return Ok(Value::Bool(true)),
            Some(0.0) => return Ok(Value::Bool(false)),
            _ => n.to_string(),
        },
        other => return Err(format!("{} cannot be converted to a bool", class(other))),
    };
    match text.as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Ok(Value::Bool(true)),
        "n" | "no" | "off" | "0" | "false" | "f" => Ok(Value::Bool(false)),
        _ => Err(format!(
            "The value '{}' is not a valid boolean. Valid booleans include: 'y', 'yes', 'on', \
             '1', 'true', 't', 1, 1.0, True, 'n', 'no', 'off', '0', 'false', 'f', 0, 0.0, False",
            python_text(value)
        )),
    }
}

fn to_int(value: &Value) -> Result<Value, String> {
    let fail = || {
        let repr = match value {
            Value::String(s) => python_repr(&minijinja::Value::from(s.as_str()), true),
            other => python_text(other),
        };
        format!("\"{repr}\" cannot be converted to an int")
    };
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.is_finite() => Ok(json!(f as i64)),
            _ => Err(fail()),
        },
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(json!(i));
            }
            match t.parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && f.is_finite() && !t.contains(['e', 'E', 'n', 'N']) => {
                    Ok(json!(f as i64))
                }
                _ => Err(fail()),
            }
        }
        _ => Err(fail()),
    }
}

fn to_dict(value: &Value) -> Result<Value, String> {
    let text = match value {
        Value::Object(_) => return Ok(value.clone()),
        Value::String(s) => s,
        other => return Err(format!("{} cannot be converted to a dict", class(other))),
    };
    if text.starts_with('{') {
        return match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err("unable to evaluate string as dictionary".into()),
        };
    }
    if !text.contains('=') {
        return Err("dictionary requested, could not parse JSON or key=value".into());
    }
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut quote, mut escape) = (None::<char>, false);
    for c in text.trim().chars() {
        if escape {
            field.push(c);
            escape = false;
        } else if c == '\\' {
            escape = true;
        } else if quote.is_none() && (c == '\'' || c == '"') {
            quote = Some(c);
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == ',' || c == ' ') {
            if !field.is_empty() {
                fields.push(std::mem::take(&mut field));
            }
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() {
        fields.push(field);
    }
    let mut map = Map::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(
                "unable to evaluate string in the \"key=value\" format as dictionary".into(),
            );
        };
        map.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn missing_and_mistyped_arguments_read_as_ansible_says_them() {
        let s = spec(json!({
            "a_str": {"type": "str", "required": true},
            "c_int": {"type": "int", "required": true},
            "c_list": {"type": "list"},
        }));
        let mut params = spec(json!({"c_int": null, "c_list": null}));
        assert_eq!(
            validate(&s, &mut params),
            [
                "missing required arguments: a_str",
                "argument 'c_int' is of type NoneType and we were unable to convert to int: \
                 \"None\" cannot be converted to an int",
            ]
        );
    }

    #[test]
    fn nested_options_name_where_they_are() {
        let s = spec(json!({
            "multi": {"type": "dict", "options": {
                "second": {"type": "dict", "options": {"third": {"type": "int", "required": true}}}
            }}
        }));
        let mut params = spec(json!({"multi": {"second": {"other": true}}}));
        assert_eq!(
            validate(&s, &mut params),
            [
                "missing required arguments: third found in multi -> second",
                "multi.second.other. Supported parameters include: third.",
            ]
        );
    }
}
