//! Inventory plugin files (a YAML mapping with `plugin:`), and the ones settle runs: `generator`
//! (see [`crate::generator`]) and `constructed`, which adds variables (`compose`) and groups
//! (`groups`, `keyed_groups`) to the hosts the sources before it loaded, from Jinja expressions.
//!
//! The expressions are evaluated by an [`Evaluator`] the caller gives: the engine has the
//! template engine with Ansible's filters and tests, and the inventory must not depend on it
//! (data flows one way, inventory → engine), so the engine implements this crate's trait.
//! Files naming other plugins are skipped with Ansible's warnings, as Ansible skips a source
//! no plugin can read.

use std::path::Path;

use serde_json::Value;
use settle_yaml::Node;

use crate::groupname::replace_invalid;
use crate::{Inventory, InventoryError, Vars, absolute};

/// Evaluates the Jinja of a plugin file (`constructed`, `generator`) against variables.
pub trait Evaluator {
    /// An expression's value (Ansible's `evaluate_expression`): `compose` and `key`.
    fn expression(&self, expr: &str, vars: &Vars) -> Result<Value, String>;
    /// A conditional, which must give a boolean (`groups`).
    fn conditional(&self, expr: &str, vars: &Vars) -> Result<bool, String>;
    /// A template string rendered (`parent_group`).
    fn template(&self, text: &str, vars: &Vars) -> Result<Value, String>;
}

/// The `plugin:` a YAML inventory document names, when it names one.
pub(crate) fn plugin_name(doc: &Node) -> Option<&str> {
    doc.get("plugin")?.as_str()
}

/// Runs a plugin file: `generator`, `constructed`, or a warning and nothing for any other
/// plugin.
pub(crate) fn load(
    inventory: &mut Inventory,
    doc: &Node,
    path: &Path,
    evaluator: Option<&dyn Evaluator>,
) -> Result<(), InventoryError> {
    let name = plugin_name(doc).unwrap_or("");
    let shown = absolute(path).display().to_string();
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    if short == "generator" {
        let Some(evaluator) = evaluator else {
            return Err(InventoryError::Other(format!(
                "{shown}: the generator inventory plugin needs a template engine"
            )));
        };
        return crate::generator::load(inventory, doc, path, evaluator);
    }
    if short != "constructed" {
        let why = if BUILTIN_SOURCES.contains(&short) {
            "Plugin configuration YAML file, not YAML inventory".to_string()
        } else {
            format!("inventory config '{shown}' specifies unknown plugin '{name}'")
        };
        eprintln!("[WARNING]: Failed to parse inventory with 'auto' plugin: {why}");
        eprintln!("[WARNING]: Unable to parse {shown} as an inventory source");
        return Ok(());
    }
    let Some(evaluator) = evaluator else {
        return Err(InventoryError::Other(format!(
            "{shown}: the constructed inventory plugin needs a template engine"
        )));
    };
    let config = Config::read(doc, path)?;
    let hosts: Vec<String> = inventory.hosts.keys().cloned().collect();
    for host in hosts {
        construct_host(inventory, &config, &host, evaluator)
            .map_err(|e| InventoryError::Other(format!("Failed to parse '{shown}'. {e}")))?;
    }
    // As Ansible reconciles after each source: new groups under `all`, `ungrouped` updated.
    inventory.finish();
    Ok(())
}

/// Plugins that read inventory sources, not plugin configuration files.
const BUILTIN_SOURCES: &[&str] = &[
    "yaml",
    "ini",
    "toml",
    "auto",
    "script",
    "host_list",
    "advanced_host_list",
];

/// A `constructed` file's options.
struct Config {
    strict: bool,
    compose: Vec<(String, String)>,
    groups: Vec<(String, Value)>,
    keyed_groups: Vec<Value>,
    leading_separator: bool,
    use_vars_plugins: bool,
}

impl Config {
    fn read(doc: &Node, path: &Path) -> Result<Self, InventoryError> {
        let value = doc.to_value();
        let bad = |key: &str, want: &str| InventoryError::Parse {
            path: path.into(),
            line: doc.get(key).map_or(doc.line, |n| n.line) as usize,
            message: format!("the constructed plugin's option '{key}' must be {want}"),
        };
        let flag = |key: &str, default: bool| match value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
                "no" | "false" | "off" | "0" | "n" | "f" => Ok(false),
                _ => Err(bad(key, "a boolean")),
            },
            Some(_) => Err(bad(key, "a boolean")),
        };
        let mapping = |key: &str| match value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => Ok(map.clone().into_iter().collect::<Vec<_>>()),
            Some(_) => Err(bad(key, "a mapping")),
        };
        let compose = mapping("compose")?
            .into_iter()
            .map(|(k, v)| (k, expression_text(&v)))
            .collect();
        let keyed_groups = match value.get("keyed_groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(bad("keyed_groups", "a list")),
        };
        Ok(Config {
            strict: flag("strict", false)?,
            compose,
            groups: mapping("groups")?,
            keyed_groups,
            leading_separator: flag("leading_separator", true)?,
            use_vars_plugins: flag("use_vars_plugins", false)?,
        })
    }
}

/// An expression as written: a YAML string, or the text of another scalar (`x: 1`, `y: true`).
fn expression_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

impl Inventory {
    /// The variables `constructed` evaluates against: the host's groups' variables (by depth,
    /// priority, name), then its own, then `inventory_hostname`, `inventory_hostname_short`
    /// and `group_names`; with `use_vars_plugins`, `group_vars/` and `host_vars/` as well.
    fn construct_vars(&self, host: &str, use_vars_plugins: bool) -> Vars {
        let mut vars = if use_vars_plugins {
            self.host_vars(host)
        } else {
            let mut vars = Vars::new();
            for g in self.host_groups(host) {
                if let Some(group) = self.groups.get(&g) {
                    vars.extend(group.vars.clone());
                }
            }
            if let Some(h) = self.hosts.get(host) {
                vars.extend(h.vars.clone());
            }
            vars
        };
        vars.insert("inventory_hostname".into(), host.into());
        let short = if host.parse::<std::net::IpAddr>().is_ok() {
            host
        } else {
            host.split('.').next().unwrap_or(host)
        };
        vars.insert("inventory_hostname_short".into(), short.into());
        vars.extend(
            self.magic_vars(host)
                .into_iter()
                .filter(|(k, _)| k == "group_names"),
        );
        vars
    }

    /// Puts a host in a group, creating the group when new.
    fn construct_membership(&mut self, group: &str, host: &str) {
        let group = self.ensure_group(group);
        if !group.hosts.iter().any(|h| h == host) {
            group.hosts.push(host.to_string());
        }
    }
}

fn construct_host(
    inventory: &mut Inventory,
    config: &Config,
    host: &str,
    evaluator: &dyn Evaluator,
) -> Result<(), String> {
    let vars = inventory.construct_vars(host, config.use_vars_plugins);
    for (name, expr) in &config.compose {
        match evaluator.expression(expr, &vars) {
            // What a template computed is data, never a template again (untrusted, in 2.19).
            Ok(value) => {
                let value = crate::show::untrusted(value);
                inventory.add_host_vars(host, Vars::from_iter([(name.clone(), value)]));
            }
            Err(e) if config.strict => {
                return Err(format!("Could not set {name} for host {host}: {e}"));
            }
            Err(_) => {}
        }
    }
    let vars = inventory.construct_vars(host, config.use_vars_plugins);
    for (name, condition) in &config.groups {
        let group = replace_invalid(name);
        let result = match condition {
            Value::Bool(b) => Ok(*b),
            other => evaluator.conditional(&expression_text(other), &vars),
        };
        match result {
            Ok(true) => inventory.construct_membership(&group, host),
            Ok(false) => {}
            Err(e) if config.strict => {
                return Err(format!("Could not add host {host} to group {group}: {e}"));
            }
            Err(_) => {}
        }
    }
    for keyed in &config.keyed_groups {
        keyed_group(inventory, config, host, keyed, &vars, evaluator)?;
    }
    Ok(())
}

/// Whether Ansible's `key in (None, '')` holds.
fn is_empty_key(value: &Value) -> bool {
    matches!(value, Value::Null) || value.as_str() == Some("")
}

fn keyed_group(
    inventory: &mut Inventory,
    config: &Config,
    host: &str,
    keyed: &Value,
    vars: &Vars,
    evaluator: &dyn Evaluator,
) -> Result<(), String> {
    let Value::Object(entry) = keyed else {
        return Err(format!(
            "Invalid keyed group entry, it must be a dictionary: {} ",
            crate::show::python_repr(keyed)
        ));
    };
    let key_expr = entry.get("key").map(expression_text).unwrap_or_default();
    let key = match evaluator.expression(&key_expr, vars) {
        Ok(key) => key,
        Err(e) if config.strict => {
            return Err(format!(
                "Could not generate group for host {host} from {key_expr} entry: {e}"
            ));
        }
        Err(_) => return Ok(()),
    };
    let text = |v: &Value| crate::show::python_str(v);
    let default_value = entry
        .get("default_value")
        .filter(|v| !v.is_null())
        .map(text);
    let trailing_separator = entry.get("trailing_separator").filter(|v| !v.is_null());
    if trailing_separator.is_some() && default_value.is_some() {
        return Err(
            "parameters are mutually exclusive for keyed groups: default_value|trailing_separator"
                .into(),
        );
    }
    let use_default = is_empty_key(&key) && default_value.is_some();
    if !(crate::show::truthy(&key) || use_default) {
        let empty_collection = matches!(&key, Value::Array(a) if a.is_empty())
            || matches!(&key, Value::Object(m) if m.is_empty());
        if config.strict && !empty_collection {
            return Err(format!(
                "No key or key resulted empty for {key_expr} in host {host}, invalid entry"
            ));
        }
        return Ok(());
    }
    let prefix = entry.get("prefix").map(text).unwrap_or_default();
    let mut sep = entry
        .get("separator")
        .map(text)
        .unwrap_or_else(|| "_".into());
    let parent = match entry.get("parent_group").filter(|v| !v.is_null()) {
        None => None,
        Some(raw) => match evaluator.template(&expression_text(raw), vars) {
            Ok(value) if !is_empty_key(&value) => Some(text(&value)),
            Ok(_) => None,
            Err(e) if config.strict => {
                return Err(format!(
                    "Could not generate parent group '{}' for group '{}': {e}",
                    expression_text(raw),
                    text(&key)
                ));
            }
            Err(_) => return Ok(()),
        },
    };
    let names: Vec<String> = if use_default {
        default_value.iter().cloned().collect()
    } else {
        match &key {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|name| match (&default_value, is_empty_key(name)) {
                    (Some(d), true) => d.clone(),
                    _ => text(name),
                })
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(gname, gval)| {
                    if !is_empty_key(gval) {
                        format!("{gname}{sep}{}", text(gval))
                    } else if let Some(d) = &default_value {
                        format!("{gname}{sep}{d}")
                    } else if trailing_separator == Some(&Value::Bool(false)) {
                        gname.clone()
                    } else {
                        format!("{gname}{sep}{}", text(gval))
                    }
                })
                .collect(),
            other => {
                return Err(format!(
                    "Invalid group name format, expected a string or a list of them or \
                     dictionary, got: <class '{}'>",
                    settle_yaml::python_type(other)
                ));
            }
        }
    };
    for bare in names {
        if prefix.is_empty() && !config.leading_separator {
            sep.clear();
        }
        let group = replace_invalid(&format!("{prefix}{sep}{bare}"));
        inventory.construct_membership(&group, host);
        if let Some(parent) = &parent {
            let parent = replace_invalid(parent);
            inventory.ensure_group(&parent);
            inventory.add_child(&parent, &group)?;
        }
    }
    Ok(())
}
