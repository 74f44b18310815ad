//! Ansible's YAML inventory format: `all: {hosts, vars, children}`, nested; a document with
//! `plugin:` is a plugin file, handed to `construct`.

use std::path::Path;

use serde_json::Value;
use settle_yaml::Node;

use crate::{Evaluator, Inventory, InventoryError, Vars, construct, hostname::expand_hostpattern};

pub(crate) fn load(
    inventory: &mut Inventory,
    text: &str,
    path: &Path,
    evaluator: Option<&dyn Evaluator>,
) -> Result<(), InventoryError> {
    let doc = settle_yaml::parse_str(text, path)?;
    if doc.is_null() {
        return Ok(());
    }
    if construct::plugin_name(&doc).is_some() {
        return construct::load(inventory, &doc, path, evaluator);
    }
    let Some(top) = doc.as_map() else {
        return Err(parse_error(
            path,
            &doc,
            "a YAML inventory is a mapping of group names (usually just `all:`)",
        ));
    };
    let source = Source { text, path };
    for (name, group) in top {
        load_group(inventory, name, group, &source)?;
    }
    Ok(())
}

/// The file being read: its path for errors, its text for what a key was written as.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    /// Whether the mapping key of `value` was written as a string. Ansible's YAML keeps a key's
    /// type (`1234:` is an integer, `'1234':` a string) where settle's tree keeps its text; the
    /// key as written, read again on its own, tells.
    fn key_is_string(&self, value: &Node) -> bool {
        self.written_key(value).is_none_or(|written| {
            written.starts_with(['\'', '"'])
                || settle_yaml::parse_str(written, self.path)
                    .map_or(true, |node| matches!(node.kind, settle_yaml::Kind::Str(_)))
        })
    }

    /// The text of the key of `value` as written: a quoted key from its quote, a plain key
    /// up to `: `, a `:` closing the line, or (in a flow mapping) `,` or `}`.
    fn written_key(&self, value: &Node) -> Option<&str> {
        let (line, column) = value.key_at?;
        let line = self.text.lines().nth((line as usize).checked_sub(1)?)?;
        let (at, _) = line.char_indices().nth((column as usize).checked_sub(1)?)?;
        let rest = &line[at..];
        let bytes = rest.as_bytes();
        let end = (0..bytes.len())
            .find(|&i| {
                (bytes[i] == b':' && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()))
                    || bytes[i] == b','
                    || bytes[i] == b'}'
            })
            .unwrap_or(bytes.len());
        Some(rest[..end].trim())
    }
}

fn parse_error(path: &Path, node: &Node, message: &str) -> InventoryError {
    InventoryError::Parse {
        path: path.into(),
        line: node.line as usize,
        message: message.to_string(),
    }
}

/// Reads one group; returns the name it goes by (see [`Inventory::group_name`]).
fn load_group(
    inventory: &mut Inventory,
    declared: &str,
    node: &Node,
    source: &Source,
) -> Result<String, InventoryError> {
    let path = source.path;
    let name = inventory.group_name(declared);
    let name = name.as_str();
    inventory.ensure_group(name);
    if node.is_null() {
        return Ok(name.to_string());
    }
    let Some(map) = node.as_map() else {
        return Err(parse_error(
            path,
            node,
            &format!("group {name:?} must be a mapping with hosts, vars or children"),
        ));
    };
    for (key, value) in map {
        match key.as_str() {
            "hosts" if value.is_null() => {}
            "hosts" => {
                let Some(hosts) = value.as_map() else {
                    return Err(parse_error(
                        path,
                        value,
                        &format!("hosts of group {name:?} must be a mapping of host names"),
                    ));
                };
                for (host, vars) in hosts {
                    if !source.key_is_string(vars) {
                        let line = vars.key_at.map_or(vars.line, |(line, _)| line);
                        return Err(InventoryError::Parse {
                            path: path.into(),
                            line: line as usize,
                            message: format!(
                                "Host pattern {host} must be a string. Enclose integers/floats in \
                                 quotation marks."
                            ),
                        });
                    }
                    let vars = match vars.to_value() {
                        Value::Object(m) => m,
                        Value::Null => Vars::new(),
                        _ => {
                            return Err(parse_error(
                                path,
                                vars,
                                &format!("variables of host {host:?} must be a mapping"),
                            ));
                        }
                    };
                    let (names, port) =
                        expand_hostpattern(host).map_err(|m| parse_error(path, value, &m))?;
                    let mut vars = vars;
                    if let Some(port) = port {
                        vars.entry("ansible_port").or_insert(Value::from(port));
                    }
                    for h in names {
                        inventory.add_host(&h, name, vars.clone());
                    }
                }
            }
            "vars" => match value.to_value() {
                Value::Object(vars) => {
                    for (key, value) in vars {
                        inventory.set_group_var(name, &key, value);
                    }
                }
                Value::Null => {}
                _ => {
                    return Err(parse_error(
                        path,
                        value,
                        &format!("vars of group {name:?} must be a mapping"),
                    ));
                }
            },
            "children" if value.is_null() => {}
            "children" => {
                let Some(children) = value.as_map() else {
                    return Err(parse_error(
                        path,
                        value,
                        &format!("children of group {name:?} must be a mapping of group names"),
                    ));
                };
                for (child, body) in children {
                    // As Ansible: the child is read first, then adopted (a cycle fails here).
                    let child = load_group(inventory, child, body, source)?;
                    inventory
                        .add_child(name, &child)
                        .map_err(|m| parse_error(path, body, &m))?;
                }
            }
            other => {
                return Err(parse_error(
                    path,
                    value,
                    &format!(
                        "group {name:?} has an unknown key {other:?}; a group has hosts, vars and children"
                    ),
                ));
            }
        }
    }
    Ok(name.to_string())
}
