//! Ansible's INI inventory format.

use std::path::Path;

use serde_json::Value;

use crate::{Inventory, InventoryError, Vars};

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(crate) fn load(
    inventory: &mut Inventory,
    text: &str,
    path: &Path,
) -> Result<(), InventoryError> {
    let mut section = Section::Hosts("ungrouped".to_string());
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
        if let Some(header) = line.strip_prefix('[') {
            let Some(header) = header.split(']').next().filter(|_| header.contains(']')) else {
                return Err(error(format!(
                    "a section header needs a closing ']': {line}"
                )));
            };
            let (name, kind) = match header.split_once(':') {
                Some((name, kind)) => (name.trim(), Some(kind.trim())),
                None => (header.trim(), None),
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(error(format!("invalid group name {name:?}")));
            }
            inventory.ensure_group(name);
            section = match kind {
                None => Section::Hosts(name.to_string()),
                Some("vars") => Section::Vars(name.to_string()),
                Some("children") => Section::Children(name.to_string()),
                Some(other) => {
                    return Err(error(format!(
                        "section [{header}] has unknown kind {other:?}; use :vars or :children"
                    )));
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = shell_words::split(line)
                    .map_err(|e| error(format!("cannot split host line: {e}")))?;
                let (spec, rest) = words.split_first().expect("line is not empty");
                let mut vars = Vars::new();
                for word in rest {
                    let Some((key, value)) = word.split_once('=') else {
                        return Err(error(format!(
                            "expected key=value after the host name, found {word:?}"
                        )));
                    };
                    vars.insert(key.to_string(), literal(value));
                }
                let (spec, port) = split_port(spec);
                if let Some(port) = port {
                    vars.entry("ansible_port").or_insert(Value::from(port));
                }
                for name in expand_range(spec).map_err(error)? {
                    inventory.add_host(&name, group, vars.clone());
                }
            }
            Section::Vars(group) => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(error(format!(
                        "expected key=value in [{group}:vars], found {line:?}"
                    )));
                };
                // Ansible keeps [group:vars] values as strings (quotes removed).
                let value = value.trim();
                let value = shell_words::split(value)
                    .ok()
                    .filter(|w| w.len() == 1)
                    .map_or(value.to_string(), |mut w| w.remove(0));
                inventory
                    .ensure_group(group)
                    .vars
                    .insert(key.trim().to_string(), Value::String(value));
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line);
                inventory.add_child(group, child);
            }
        }
    }
    Ok(())
}

/// `host:2222` → (`host`, 2222); IPv6 addresses and ranges keep their colons.
fn split_port(spec: &str) -> (&str, Option<u16>) {
    if spec.matches(':').count() == 1
        && !spec.contains('[')
        && let Some((host, port)) = spec.rsplit_once(':')
        && let Ok(port) = port.parse()
    {
        return (host, Some(port));
    }
    if let Some((host, port)) = spec.rsplit_once("]:")
        && let Ok(port) = port.parse()
    {
        return (&spec[..host.len() + 1], Some(port));
    }
    (spec, None)
}

/// Inline host variables are evaluated as Python literals: `22` is a number, `'a b'` a string,
/// `True` a boolean, `[1, 2]` a list; anything else stays text.
fn literal(value: &str) -> Value {
    match value {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = value.parse::<i64>()
        && !(value.len() > 1 && value.starts_with('0'))
    {
        return Value::from(i);
    }
    if value.contains('.')
        && let Ok(f) = value.parse::<f64>()
    {
        return serde_json::Number::from_f64(f).map_or(Value::String(value.into()), Value::Number);
    }
    if (value.starts_with('[') && value.ends_with(']'))
        || (value.starts_with('{') && value.ends_with('}'))
    {
        let json = value
            .replace('\'', "\"")
            .replace("True", "true")
            .replace("False", "false")
            .replace("None", "null");
        if let Ok(v) = serde_json::from_str(&json) {
            return v;
        }
    }
    Value::String(value.to_string())
}

/// `web[01:03].example.com` → web01…web03; `db-[a:c]` → db-a…db-c; `[1:10:2]` steps by 2.
pub(crate) fn expand_range(spec: &str) -> Result<Vec<String>, String> {
    let (Some(open), Some(close)) = (spec.find('['), spec.find(']')) else {
        return Ok(vec![spec.to_string()]);
    };
    if close < open || !spec[open..close].contains(':') {
        return Ok(vec![spec.to_string()]);
    }
    let (head, range, tail) = (&spec[..open], &spec[open + 1..close], &spec[close + 1..]);
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end) = (parts[0], parts.get(1).copied().unwrap_or(""));
    let step: usize = match parts.get(2) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("invalid step in host range [{range}]"))?,
        None => 1,
    };
    if step == 0 || parts.len() > 3 {
        return Err(format!("invalid host range [{range}]"));
    }
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        if a > b {
            return Err(format!("host range [{range}] runs backwards"));
        }
        for i in (a..=b).step_by(step) {
            items.push(format!("{i:0width$}"));
        }
    } else if start.len() == 1
        && end.len() == 1
        && start.chars().all(|c| c.is_ascii_alphabetic())
        && end.chars().all(|c| c.is_ascii_alphabetic())
    {
        let (a, b) = (start.as_bytes()[0], end.as_bytes()[0]);
        if a > b {
            return Err(format!("host range [{range}] runs backwards"));
        }
        for c in (a..=b).step_by(step) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(format!(
            "invalid host range [{range}]: use [01:10] or [a:f]"
        ));
    }
    let mut out = Vec::new();
    for item in items {
        for rest in expand_range(tail)? {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}
