//! Executable inventory sources, run as Ansible's `script` plugin runs them: `SCRIPT --list`
//! gives groups (`hosts`, `vars`, `children`) and `_meta.hostvars`; without `_meta.hostvars`
//! the script is asked `SCRIPT --host NAME` once per host. Problems are reported in Ansible's
//! words, with the script's standard error after them.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use crate::{Inventory, InventoryError, Vars};

/// Whether Ansible would run this file: an executable regular file the kernel can start (a
/// `#!` script or an ELF program). A file without either is never handed to a shell, which
/// `execvp` would do: Ansible's `exec` fails on it and the file is read as INI or YAML.
pub(crate) fn is_script(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let executable = path
        .metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let mut magic = [0u8; 4];
    executable
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && (magic.starts_with(b"#!") || magic == *b"\x7fELF")
}

/// A failure of the script, with what it wrote on standard error.
fn failure(path: &Path, message: String, stderr: &str) -> InventoryError {
    let mut message = format!("Failed to parse inventory with 'script' plugin: {message}");
    if !stderr.trim().is_empty() {
        message.push_str(&format!(
            "\n\nStandard error from inventory script:\n{stderr}"
        ));
    }
    InventoryError::Other(format!("{}: {message}", path.display()))
}

/// Runs the script with `args`: its standard output as text, and its standard error.
fn run(path: &Path, args: &[&str]) -> Result<(String, String), InventoryError> {
    let path = &crate::absolute(path);
    let output = Command::new(path).args(args).output().map_err(|e| {
        let mut cmd = vec![shell_quote(&path.display().to_string())];
        cmd.extend(args.iter().map(|a| shell_quote(a)));
        failure(
            path,
            format!(
                "Failed to execute inventory script command '{}'. {e}",
                cmd.join(" ")
            ),
            "",
        )
    })?;
    let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !stderr.is_empty() && !stderr.ends_with('\n') {
        stderr.push('\n');
    }
    if !output.status.success() {
        let code = output
            .status
            .code()
            .map_or_else(|| "-1".to_string(), |c| c.to_string());
        return Err(failure(
            path,
            format!("Inventory script returned non-zero exit code {code}."),
            &stderr,
        ));
    }
    let stdout = String::from_utf8(output.stdout).map_err(|_| {
        failure(
            path,
            "Inventory script result contained characters that cannot be interpreted as UTF-8."
                .into(),
            &stderr,
        )
    })?;
    Ok((stdout, stderr))
}

/// Python's `shlex.quote`.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// The JSON profile the output names (`_meta.profile`), checked as Ansible checks it.
fn check_profile(data: &Value) -> Result<(), String> {
    let Value::Object(map) = data else {
        return Err(format!(
            "Value is '{}' instead of 'dict'.",
            settle_yaml::python_type(data)
        ));
    };
    let Some(meta) = map.get("_meta") else {
        return Ok(());
    };
    let Value::Object(meta) = meta else {
        return Err(format!(
            "Value contains '_meta' which is '{}' instead of 'dict'.",
            settle_yaml::python_type(meta)
        ));
    };
    match meta.get("profile") {
        None => Ok(()),
        Some(Value::String(p)) if !p.starts_with("inventory_") => {
            Err(format!("Non-inventory profile '{p}' is not allowed."))
        }
        Some(Value::String(p)) if p != "inventory_legacy" => {
            Err(format!("Unknown profile name '{p}'."))
        }
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "Value contains '_meta.profile' which is '{}' instead of 'str'.",
            settle_yaml::python_type(other)
        )),
    }
}

/// Decodes Ansible's legacy JSON markers: `{"__ansible_unsafe": "text"}` is text that is never
/// templated; a vault marker or a marker that holds no text is refused.
fn decode(value: Value) -> Result<Value, ()> {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(inner) = map.get("__ansible_unsafe")
            {
                return match inner {
                    Value::String(s) => Ok(Value::String(crate::show::unsafe_text(s))),
                    _ => Err(()),
                };
            }
            if map.contains_key("__ansible_vault") {
                return Err(());
            }
            map.into_iter()
                .map(|(k, v)| Ok((k, decode(v)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object)
        }
        Value::Array(items) => items
            .into_iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

fn show_stderr(stderr: &str) {
    let shown = std::env::var("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR")
        .map(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off" | "n" | "f"
            )
        })
        .unwrap_or(true);
    if shown && !stderr.is_empty() {
        eprint!("[ERROR]: {stderr}");
    }
}

fn deprecation(path: &Path, message: &str) {
    let enabled = std::env::var("ANSIBLE_DEPRECATION_WARNINGS")
        .map(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off" | "n" | "f"
            )
        })
        .unwrap_or(true);
    settle_yaml::deprecation::show(
        &format!(
            "[DEPRECATION WARNING]: {message} This feature will be removed from inventory plugin \
             'script' in ansible-core version 2.23.\nOrigin: <inventory script output from '{}'>\n",
            crate::absolute(path).display()
        ),
        Some(enabled),
    );
}

/// Runs the script and adds what it gives to the inventory.
pub(crate) fn load(inventory: &mut Inventory, path: &Path) -> Result<(), InventoryError> {
    let (stdout, stderr) = run(path, &["--list"])?;
    let fail = |message: String| failure(path, message, &stderr);
    let data: Value = serde_json::from_str(&stdout).map_err(|e| {
        fail(format!(
            "Unable to get JSON decoder for inventory script result: Value could not be parsed as JSON: {e}"
        ))
    })?;
    check_profile(&data).map_err(|m| {
        fail(format!(
            "Unable to get JSON decoder for inventory script result: {m}"
        ))
    })?;
    let data = decode(data)
        .map_err(|_| fail("Inventory script result could not be parsed as JSON.".into()))?;
    show_stderr(&stderr);
    let Value::Object(groups) = data else {
        return Ok(()); // checked above
    };
    let mut meta_hostvars: Option<Map<String, Value>> = None;
    let mut hosts: Vec<String> = Vec::new();
    for (group, body) in groups {
        if group == "_meta" {
            let hostvars = body.get("hostvars").cloned().unwrap_or(Value::Null);
            let Value::Object(hostvars) = hostvars else {
                return Err(fail(format!(
                    "Value contains '_meta.hostvars' which is '{}' instead of 'dict'.",
                    settle_yaml::python_type(&hostvars)
                )));
            };
            meta_hostvars = Some(hostvars);
        } else {
            load_group(inventory, path, &group, body, &mut hosts).map_err(fail)?;
        }
    }
    if meta_hostvars.is_none() {
        deprecation(
            path,
            "Inventory scripts should always provide 'meta.hostvars'. Host variables will be \
             collected by running the inventory script with the '--host' option for each host.",
        );
    }
    for host in hosts {
        let vars = match &meta_hostvars {
            Some(all) => all.get(&host).cloned().unwrap_or(Value::Object(Map::new())),
            None => host_vars(path, &host)?,
        };
        let Value::Object(vars) = vars else {
            return Err(fail(format!(
                "Invalid data from file, expected dictionary and got:\n\n{}",
                crate::show::python_repr(&vars)
            )));
        };
        inventory.add_host_vars(&host, vars);
    }
    Ok(())
}

/// One group of the `--list` output, as Ansible's script plugin reads it (with its
/// deprecated shapes: a list of hosts, or a mapping of variables naming a host).
fn load_group(
    inventory: &mut Inventory,
    path: &Path,
    group: &str,
    body: Value,
    hosts: &mut Vec<String>,
) -> Result<(), String> {
    let group = inventory.group_name(group);
    let group = group.as_str();
    inventory.ensure_group(group);
    let body = match body {
        Value::Object(map)
            if ["hosts", "vars", "children"]
                .iter()
                .any(|k| map.contains_key(*k)) =>
        {
            map
        }
        Value::Object(map) => {
            deprecation(
                path,
                &format!(
                    "Treating malformed group '{group}' as the sole host of that group. \
                     Variables provided in this manner cannot be templated."
                ),
            );
            let mut body = Map::new();
            body.insert("hosts".into(), vec![Value::String(group.into())].into());
            body.insert("vars".into(), crate::show::untrusted(Value::Object(map)));
            body
        }
        other => {
            deprecation(
                path,
                &format!(
                    "Group '{group}' was converted to 'dict' from '{}'.",
                    settle_yaml::python_type(&other)
                ),
            );
            let mut body = Map::new();
            body.insert("hosts".into(), other);
            body
        }
    };
    if let Some(list) = body.get("hosts") {
        let Value::Array(list) = list else {
            return Err(format!(
                "Value contains '{group}.hosts' which is '{}' instead of 'list'.",
                settle_yaml::python_type(list)
            ));
        };
        for host in list {
            let name = host_name(host);
            if !hosts.contains(&name) {
                hosts.push(name.clone());
            }
            inventory.add_host(&name, group, Vars::new());
        }
    }
    if let Some(vars) = body.get("vars") {
        let Value::Object(vars) = vars else {
            return Err(format!(
                "Value contains '{group}.vars' which is '{}' instead of 'dict'.",
                settle_yaml::python_type(vars)
            ));
        };
        for (k, v) in vars {
            inventory.set_group_var(group, k, v.clone());
        }
    }
    for child in children(body.get("children")) {
        let child = inventory.group_name(&child);
        inventory.ensure_group(&child);
        inventory.add_child(group, &child)?;
    }
    Ok(())
}

fn host_name(host: &Value) -> String {
    match host {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A group's children: a list of names (or a mapping's keys, as Python iterates it).
fn children(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(host_name).collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(Value::String(s)) => s.chars().map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// `SCRIPT --host NAME`: the host's variables (nothing printed is no variables).
fn host_vars(path: &Path, host: &str) -> Result<Value, InventoryError> {
    let (stdout, stderr) = run(path, &["--host", host])?;
    if stdout.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value = serde_json::from_str(&stdout)
        .ok()
        .and_then(|v| decode(v).ok());
    value.ok_or_else(|| {
        failure(
            path,
            format!("Inventory script result for host '{host}' could not be parsed as JSON."),
            &stderr,
        )
    })
}
