//! Ansible's TOML inventory format (its `toml` plugin): each top-level table is a group with
//! `hosts` (a table of host patterns to tables of variables), `vars` (a table) and `children`
//! (an array of group names). Only files named `*.toml` are read this way, as Ansible's `ini`
//! plugin refuses them and its `toml` plugin takes nothing else.

use std::path::Path;

use serde_json::{Map, Value};
use toml::Table;
use toml::de::{DeTable, DeValue};

use crate::{Inventory, InventoryError, Vars, hostname::expand_hostpattern};

pub(crate) fn load(
    inventory: &mut Inventory,
    text: &str,
    path: &Path,
) -> Result<(), InventoryError> {
    let data: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |span| line_of(text, span.start));
        parse_error(path, line, format!("TOML file is invalid: {}", e.message()))
    })?;
    let source = Source {
        text,
        path,
        tree: DeTable::parse(text).ok().map(|t| t.into_inner()),
    };
    if data.is_empty() {
        return Err(parse_error(path, 1, "Parsed empty TOML file".into()));
    }
    if data.get("plugin").is_some_and(truthy) {
        return Err(source.error(
            &["plugin"],
            "Plugin configuration TOML file, not TOML inventory".into(),
        ));
    }
    for (name, group) in &data {
        let Some(group) = group.as_table() else {
            eprintln!("[WARNING]: Skipping '{name}' as this is not a valid group definition");
            continue;
        };
        load_group(inventory, name, group, &source)?;
    }
    Ok(())
}

/// The file being read, with the spans of its keys for the lines errors name.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
    tree: Option<DeTable<'a>>,
}

impl Source<'_> {
    /// An error at the line of the key that `keys` (a path of table keys) names, or of the
    /// nearest table on the way to it.
    fn error(&self, keys: &[&str], message: String) -> InventoryError {
        let mut line = 1;
        let mut table = self.tree.as_ref();
        for key in keys {
            let Some((k, value)) = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == key))
            else {
                break;
            };
            line = line_of(self.text, k.span().start);
            table = match value.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        parse_error(self.path, line, message)
    }
}

fn load_group(
    inventory: &mut Inventory,
    name: &str,
    group: &Table,
    source: &Source,
) -> Result<(), InventoryError> {
    let name = inventory.group_name(name);
    let name = name.as_str();
    inventory.ensure_group(name);
    let invalid = |key: &str, wanted: &str, found: &toml::Value| {
        source.error(
            &[name, key],
            format!(
                "Invalid \"{key}\" entry for \"{name}\" group, requires {wanted}, found {} instead.",
                type_name(found)
            ),
        )
    };
    for (key, data) in group {
        match key.as_str() {
            "vars" => {
                let Some(vars) = data.as_table() else {
                    return Err(invalid(key, "a table", data));
                };
                for (var, value) in vars {
                    let value = to_json(value).map_err(|m| source.error(&[name, key, var], m))?;
                    inventory.set_group_var(name, var, value);
                }
            }
            "children" => {
                let Some(children) = data.as_array() else {
                    return Err(invalid(key, "an array", data));
                };
                for child in children {
                    let Some(child) = child.as_str() else {
                        return Err(source.error(
                            &[name, key],
                            format!(
                                "children of group \"{name}\" are group names, found {}",
                                type_name(child)
                            ),
                        ));
                    };
                    let child = inventory.group_name(child);
                    inventory.ensure_group(&child);
                    inventory
                        .add_child(name, &child)
                        .map_err(|m| source.error(&[name, key], m))?;
                }
            }
            "hosts" => {
                let Some(hosts) = data.as_table() else {
                    return Err(invalid(key, "a table", data));
                };
                for (pattern, vars) in hosts {
                    let Some(vars) = vars.as_table() else {
                        return Err(source.error(
                            &[name, key, pattern],
                            format!(
                                "the variables of host \"{pattern}\" in group \"{name}\" must be a table, found {}",
                                type_name(vars)
                            ),
                        ));
                    };
                    let (names, port) = expand_hostpattern(pattern)
                        .map_err(|m| source.error(&[name, key, pattern], m))?;
                    let mut host_vars = Vars::new();
                    if let Some(port) = port {
                        host_vars.insert("ansible_port".into(), Value::from(port));
                    }
                    for (var, value) in vars {
                        let value = to_json(value)
                            .map_err(|m| source.error(&[name, key, pattern, var], m))?;
                        host_vars.insert(var.clone(), value);
                    }
                    for host in names {
                        inventory.add_host(&host, name, host_vars.clone());
                    }
                }
            }
            other => eprintln!(
                "[WARNING]: Skipping unexpected key \"{other}\" in group \"{name}\", only \"vars\", \
                 \"children\" and \"hosts\" are valid"
            ),
        }
    }
    Ok(())
}

/// A TOML value as the variable Ansible makes of it: dates and times become the text Python's
/// `isoformat()` gives them, as they reach Ansible's variables through JSON.
fn to_json(value: &toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => return Err(format!("settle cannot hold the number {f}")),
        },
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(isoformat(d)),
        toml::Value::Array(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
    })
}

/// Python's `isoformat()` of the `date`, `time` or `datetime` that `tomllib` makes: microseconds
/// (six digits, shown only when not zero) and the offset as `+HH:MM`.
fn isoformat(d: &toml::value::Datetime) -> String {
    let mut out = String::new();
    if let Some(date) = &d.date {
        out.push_str(&format!(
            "{:04}-{:02}-{:02}",
            date.year, date.month, date.day
        ));
    }
    if let Some(time) = &d.time {
        if d.date.is_some() {
            out.push('T');
        }
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            time.hour,
            time.minute,
            time.second.unwrap_or(0)
        ));
        let micros = time.nanosecond.unwrap_or(0) / 1000;
        if micros != 0 {
            out.push_str(&format!(".{micros:06}"));
        }
    }
    match d.offset {
        Some(toml::value::Offset::Z) => out.push_str("+00:00"),
        Some(toml::value::Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let minutes = minutes.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
        }
        None => {}
    }
    out
}

/// Python's truth of a TOML value (`data.get('plugin')`).
fn truthy(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => !s.is_empty(),
        toml::Value::Integer(i) => *i != 0,
        toml::Value::Float(f) => *f != 0.0,
        toml::Value::Boolean(b) => *b,
        toml::Value::Datetime(_) => true,
        toml::Value::Array(a) => !a.is_empty(),
        toml::Value::Table(t) => !t.is_empty(),
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    1 + text
        .as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
}

fn parse_error(path: &Path, line: usize, message: String) -> InventoryError {
    InventoryError::Parse {
        path: path.into(),
        line,
        message,
    }
}
