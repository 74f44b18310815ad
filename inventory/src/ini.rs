//! Ansible's INI inventory format, read as ansible-core 2.19's `ini` plugin reads it.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use crate::pyliteral::parse_value;
use crate::{Inventory, InventoryError, Vars};

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// A group named before it is declared: `[g:vars]` or a line of `[parent:children]`.
struct Pending {
    line: usize,
    state: State,
    parents: Vec<String>,
}

pub(crate) fn load(
    inventory: &mut Inventory,
    text: &str,
    path: &Path,
) -> Result<(), InventoryError> {
    let mut pending: IndexMap<String, Pending> = IndexMap::new();
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let error = |message: String| InventoryError::Parse {
            path: path.into(),
            line: line_no,
            message,
        };
        if let Some((name, kind)) = section(line) {
            let title = match kind {
                Some(kind) => format!("{name}:{kind}"),
                None => name.to_string(),
            };
            state = match kind {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(error(format!(
                        "Section [{title}] has unknown type: {other}"
                    )));
                }
            };
            // As Ansible's: the section's name is checked (and maybe replaced); the names on
            // `:children` lines are taken as written.
            let name = inventory.group_name(name);
            let name = name.as_str();
            group = name.to_string();
            if inventory.group(name).is_none() {
                if state == State::Vars && !pending.contains_key(name) {
                    pending.insert(
                        name.to_string(),
                        Pending {
                            line: line_no,
                            state,
                            parents: Vec::new(),
                        },
                    );
                }
                inventory.ensure_group(name);
            }
            if state != State::Vars && pending.contains_key(name) {
                resolve_pending(inventory, name, &mut pending).map_err(error)?;
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(error(format!(
                "Invalid section entry: '{line}'. Please make sure that there are no spaces in the \
                 section entry, and that there are no other invalid characters"
            )));
        }
        match state {
            State::Hosts => {
                let tokens = shlex_split(line)
                    .map_err(|e| error(format!("Error parsing host definition '{line}': {e}")))?;
                let Some((spec, rest)) = tokens.split_first() else {
                    continue;
                };
                let (names, port) = crate::hostname::expand_hostpattern(spec).map_err(&error)?;
                if spec.trim().ends_with(':') && port.is_none() {
                    return Err(error(format!(
                        "Invalid host pattern '{spec}' supplied, ending in ':' is not allowed, this \
                         character is reserved to provide a port."
                    )));
                }
                if names.iter().any(|n| n.trim() == "---") {
                    return Err(error(format!(
                        "Invalid host pattern '{spec}' supplied, '---' is normally a sign this is a \
                         YAML file."
                    )));
                }
                let mut vars = Vars::new();
                if let Some(port) = port {
                    vars.insert("ansible_port".into(), Value::from(port));
                }
                for token in rest {
                    let Some((key, value)) = token.split_once('=') else {
                        return Err(error(format!(
                            "Expected key=value host variable assignment, got: {token}"
                        )));
                    };
                    invalid_name(key, path, line_no);
                    vars.insert(key.to_string(), parse_value(value));
                }
                for name in names {
                    inventory.add_host(&name, &group, vars.clone());
                }
            }
            State::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(error(format!("Expected key=value, got: {line}")));
                };
                let value = parse_value(value.trim());
                invalid_name(key.trim(), path, line_no);
                inventory.set_group_var(&group, key.trim(), value);
            }
            State::Children => {
                let Some(child) = group_name(line) else {
                    return Err(error(format!("Expected group name, got: {line}")));
                };
                if inventory.group(child).is_some() {
                    inventory.add_child(&group, child).map_err(error)?;
                } else {
                    pending
                        .entry(child.to_string())
                        .or_insert_with(|| Pending {
                            line: line_no,
                            state: State::Children,
                            parents: Vec::new(),
                        })
                        .parents
                        .push(group.clone());
                }
            }
        }
    }
    // A group named but never declared: Ansible reports the first such.
    if let Some((name, decl)) = pending.first() {
        let message = match decl.state {
            State::Vars => format!("Section [{name}:vars] not valid for undefined group '{name}'."),
            _ => format!(
                "Section [{}:children] includes undefined group '{name}'.",
                decl.parents.last().map_or("", String::as_str)
            ),
        };
        return Err(InventoryError::Parse {
            path: path.into(),
            line: decl.line,
            message,
        });
    }
    Ok(())
}

/// Ansible 2.19 still takes an inventory variable whose name is not a valid one, and says it
/// is deprecated.
fn invalid_name(key: &str, path: &Path, line: usize) {
    if !settle_yaml::deprecation::valid_variable_name(key) {
        settle_yaml::deprecation::deprecated_at_line(
            &format!("Accepting inventory variable with invalid name '{key}'."),
            "2.23",
            path,
            line,
            "Variable names must be strings starting with a letter or underscore character, and contain only letters, numbers and underscores.",
        );
    }
}

/// A declared group settles what was waiting for it: its pending parents adopt it.
fn resolve_pending(
    inventory: &mut Inventory,
    name: &str,
    pending: &mut IndexMap<String, Pending>,
) -> Result<(), String> {
    let mut work = vec![name.to_string()];
    while let Some(group) = work.pop() {
        let Some(decl) = pending.shift_remove(&group) else {
            continue;
        };
        if decl.state != State::Children {
            continue;
        }
        for parent in decl.parents {
            inventory.add_child(&parent, &group)?;
            if pending
                .get(&parent)
                .is_some_and(|p| p.state == State::Children)
            {
                work.push(parent);
            }
        }
    }
    Ok(())
}

/// `[name]`, `[name:kind]`, optionally followed by a comment.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let inner = line.strip_prefix('[')?;
    let close = inner.find(']')?;
    let rest = inner[close + 1..].trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let header = &inner[..close];
    let (name, kind) = match header.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (header, None),
    };
    let name_ok =
        !name.is_empty() && !name.contains(|c: char| c == ':' || c == ']' || c.is_whitespace());
    let kind_ok =
        kind.is_none_or(|k| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && kind_ok).then_some((name, kind))
}

/// A line of a `:children` section: one group name, optionally followed by a comment.
fn group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start();
    (!name.is_empty() && (rest.is_empty() || rest.starts_with('#'))).then_some(name)
}

/// Python's `shlex.split(line, comments=True)` (POSIX mode), as Ansible splits a host line.
pub(crate) fn shlex_split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut in_token = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_token {
                    tokens.push(std::mem::take(&mut token));
                    in_token = false;
                }
            }
            '#' => break,
            '\\' => {
                let next = chars.next().ok_or("No escaped character")?;
                token.push(next);
                in_token = true;
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next().ok_or("No closing quotation")? {
                        '\'' => break,
                        c => token.push(c),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next().ok_or("No closing quotation")? {
                        '"' => break,
                        '\\' => {
                            let next = chars.next().ok_or("No escaped character")?;
                            if next != '"' && next != '\\' {
                                token.push('\\');
                            }
                            token.push(next);
                        }
                        c => token.push(c),
                    }
                }
            }
            c => {
                token.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        tokens.push(token);
    }
    Ok(tokens)
}
