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
    for (name, group) in top {
        load_group(inventory, name, group, path)?;
    }
    Ok(())
}

fn parse_error(path: &Path, node: &Node, message: &str) -> InventoryError {
    InventoryError::Parse {
        path: path.into(),
        line: node.line as usize,
        message: message.to_string(),
    }
}

fn load_group(
    inventory: &mut Inventory,
    name: &str,
    node: &Node,
    path: &Path,
) -> Result<(), InventoryError> {
    inventory.ensure_group(name);
    if node.is_null() {
        return Ok(());
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
                    load_group(inventory, child, body, path)?;
                    inventory
                        .add_child(name, child)
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
    Ok(())
}
