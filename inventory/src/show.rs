//! What `ansible-inventory` prints: `--list` (with and without `--export`), `--graph` (with
//! `--vars`), and the JSON layout Python's `json.dumps(sort_keys=True, indent=4)` writes, so the
//! output is byte for byte Ansible's.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::{Inventory, Vars};

/// How `--list` and `--graph` show the inventory.
#[derive(Debug, Default, Clone)]
pub struct ShowOptions {
    /// `--export`: group variables on their groups, hosts with only their own variables.
    pub export: bool,
    /// `--limit`: the hosts to show (`None`: all of them).
    pub hosts: Option<HashSet<String>>,
    /// `--graph --vars`: each host's and group's variables under it.
    pub vars: bool,
    /// Variables that win over the inventory's in `--list` without `--export` (`-e`).
    pub extra_vars: Vars,
}

/// The variables Ansible never shows in `ansible-inventory` (its `INTERNAL_STATIC_VARS`).
const INTERNAL_VARS: &[&str] = &[
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_config_file",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_role_name",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "omit",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_names",
    "ungrouped",
];

fn without_internal(mut vars: Vars) -> Vars {
    vars.retain(|k, _| !INTERNAL_VARS.contains(&k.as_str()));
    vars
}

impl Inventory {
    /// A host's variables as `--list` shows them: all of them merged, or with `--export` only
    /// the host's own (inventory file, then `host_vars/`).
    pub fn shown_host_vars(&self, host: &str, options: &ShowOptions) -> Vars {
        let vars = if options.export {
            self.own_host_vars(host)
        } else {
            let mut vars = self.host_vars(host);
            vars.extend(options.extra_vars.clone());
            vars
        };
        without_internal(vars)
    }

    /// A group's own variables (inventory file, then `group_vars/`), with its priority when it
    /// is not the default, as `--export` shows them.
    pub fn shown_group_vars(&self, group: &str) -> Vars {
        let mut vars = self.own_group_vars(group);
        if let Some(g) = self.group(group)
            && g.priority != 1
        {
            vars.insert("ansible_group_priority".into(), g.priority.into());
        }
        without_internal(vars)
    }

    fn shown(&self, host: &str, options: &ShowOptions) -> bool {
        options.hosts.as_ref().is_none_or(|h| h.contains(host))
    }

    /// `ansible-inventory --list`: each group reached from `all` with its hosts, children and
    /// (with `--export`) variables, groups left empty dropped, and `_meta`.
    pub fn list_json(&self, options: &ShowOptions) -> Value {
        let mut out = Map::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&str> = vec!["all"];
        while let Some(name) = stack.pop() {
            let Some(group) = self.group(name) else {
                continue;
            };
            let mut entry = Map::new();
            if name != "all" {
                let hosts: Vec<Value> = group
                    .hosts
                    .iter()
                    .filter(|h| self.shown(h, options))
                    .map(|h| Value::String(h.clone()))
                    .collect();
                if !hosts.is_empty() {
                    entry.insert("hosts".into(), hosts.into());
                }
            }
            if !group.children.is_empty() {
                entry.insert("children".into(), group.children.clone().into());
            }
            if options.export {
                let vars = self.shown_group_vars(name);
                if !vars.is_empty() {
                    entry.insert("vars".into(), vars.into());
                }
            }
            if !entry.is_empty() {
                out.insert(name.to_string(), entry.into());
            }
            for child in group.children.iter().rev() {
                if seen.insert(child) {
                    stack.push(child);
                }
            }
        }
        let mut hostvars = Map::new();
        for host in self.group_hosts("all") {
            if !self.shown(&host, options) {
                continue;
            }
            let vars = self.shown_host_vars(&host, options);
            if !vars.is_empty() {
                hostvars.insert(host, vars.into());
            }
        }
        out.insert(
            "_meta".into(),
            serde_json::json!({ "hostvars": hostvars, "profile": "inventory_legacy" }),
        );
        Value::Object(out)
    }

    /// `ansible-inventory --list --yaml`: groups nested under their parents from `all`, each
    /// with its hosts (a host's variables at its first appearance, `{}` after), a group met a
    /// second time as `{}`, empty parts and groups left out.
    pub fn list_nested(&self, options: &ShowOptions) -> Result<Value, String> {
        let mut seen_groups = HashSet::new();
        let mut seen_hosts = HashSet::new();
        let mut out = Map::new();
        self.nested_group(
            "all",
            options,
            &mut seen_groups,
            &mut seen_hosts,
            0,
            &mut out,
        )?;
        Ok(Value::Object(out))
    }

    fn nested_group<'a>(
        &'a self,
        name: &'a str,
        options: &ShowOptions,
        seen_groups: &mut HashSet<&'a str>,
        seen_hosts: &mut HashSet<&'a str>,
        depth: usize,
        out: &mut Map<String, Value>,
    ) -> Result<(), String> {
        if depth > MAX_GROUP_DEPTH {
            return Err(format!(
                "groups are nested more than {MAX_GROUP_DEPTH} deep (at '{name}')"
            ));
        }
        let Some(group) = self.group(name) else {
            return Ok(());
        };
        let mut children = Map::new();
        for child in &group.children {
            if child == "all" {
                continue;
            }
            if seen_groups.contains(child.as_str()) {
                children.insert(child.clone(), Value::Object(Map::new()));
            } else {
                seen_groups.insert(child);
                self.nested_group(
                    child,
                    options,
                    seen_groups,
                    seen_hosts,
                    depth + 1,
                    &mut children,
                )?;
            }
        }
        let mut entry = Map::new();
        entry.insert("children".into(), children.into());
        entry.insert(
            "hosts".into(),
            self.hosts_once(group, options, seen_hosts).into(),
        );
        if options.export {
            entry.insert("vars".into(), self.shown_group_vars(name).into());
        }
        // ansible-inventory's `_remove_empty_keys`.
        entry.retain(|_, v| truthy(v));
        if !entry.is_empty() {
            out.insert(name.to_string(), entry.into());
        }
        Ok(())
    }

    /// A group's shown hosts (none for `all`), each with its variables the first time any
    /// group shows it and `{}` after, as ansible-inventory's YAML and TOML views have them.
    fn hosts_once<'a>(
        &self,
        group: &'a crate::Group,
        options: &ShowOptions,
        seen_hosts: &mut HashSet<&'a str>,
    ) -> Map<String, Value> {
        if group.name == "all" {
            return Map::new();
        }
        group
            .hosts
            .iter()
            .filter(|h| self.shown(h, options))
            .map(|h| {
                let vars = if seen_hosts.insert(h) {
                    self.shown_host_vars(h, options)
                } else {
                    Vars::new()
                };
                (h.clone(), Value::Object(vars))
            })
            .collect()
    }

    /// `ansible-inventory --list --toml`: every group a table of its own (`children` as names),
    /// in the order ansible-inventory walks them: each group's place before its children's, its
    /// hosts taken after its children's (a host's variables at its first appearance, `{}`
    /// after), a group reached again written again in its first place.
    pub fn list_flat(&self, options: &ShowOptions) -> Result<Value, String> {
        enum Step<'a> {
            Enter(&'a str, usize),
            Leave(&'a str, bool),
        }
        let has_ungrouped = self.group("ungrouped").is_some_and(|g| !g.hosts.is_empty());
        let mut seen_hosts = HashSet::new();
        let mut out = Map::new();
        let mut stack = vec![Step::Enter("all", 0)];
        let mut steps = 0usize;
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(name, depth) => {
                    steps += 1;
                    if depth > MAX_GROUP_DEPTH || steps > MAX_FLAT_STEPS {
                        return Err(format!(
                            "the group tree is too deep or too wide to write as TOML (at '{name}')"
                        ));
                    }
                    let Some(group) = self.group(name) else {
                        continue;
                    };
                    let first = !out.contains_key(name);
                    if first {
                        out.insert(name.to_string(), Value::Null);
                    }
                    stack.push(Step::Leave(name, first));
                    for child in group.children.iter().rev() {
                        if has_ungrouped || child != "ungrouped" {
                            stack.push(Step::Enter(child, depth + 1));
                        }
                    }
                }
                Step::Leave(name, first) => {
                    let Some(group) = self.group(name) else {
                        continue;
                    };
                    let mut entry = Map::new();
                    if name != "all" {
                        let children = group
                            .children
                            .iter()
                            .filter(|c| has_ungrouped || c.as_str() != "ungrouped");
                        entry.insert("children".into(), children.map(|c| c.as_str()).collect());
                    }
                    let hosts = self.hosts_once(group, options, &mut seen_hosts);
                    entry.insert("hosts".into(), hosts.into());
                    if options.export {
                        entry.insert("vars".into(), self.shown_group_vars(name).into());
                    }
                    // ansible-inventory's `_remove_empty_keys`.
                    entry.retain(|_, v| truthy(v));
                    match out.get_mut(name) {
                        Some(place) if !entry.is_empty() => *place = entry.into(),
                        Some(_) if first => {
                            out.shift_remove(name);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// `ansible-inventory --graph [GROUP] [--vars]`: the group tree as text, each line ending in
    /// a newline.
    pub fn graph(&self, root: &str, options: &ShowOptions) -> String {
        if !options.vars {
            return self.to_graph(root);
        }
        let mut out = String::new();
        self.graph_with_vars(root, 0, options, &mut out, &mut Vec::new());
        out
    }

    fn graph_with_vars<'a>(
        &'a self,
        name: &'a str,
        depth: usize,
        options: &ShowOptions,
        out: &mut String,
        path: &mut Vec<&'a str>,
    ) {
        out.push_str(&graph_line(&format!("@{name}:"), depth));
        let Some(group) = self.group(name) else {
            return;
        };
        if path.contains(&name) || out.len() > GRAPH_MAX_BYTES {
            return;
        }
        path.push(name);
        for child in &group.children {
            self.graph_with_vars(child, depth + 1, options, out, path);
        }
        if name != "all" {
            for host in &group.hosts {
                out.push_str(&graph_line(host, depth + 1));
                let vars = self.shown_host_vars(host, options);
                show_vars(&vars, depth + 2, out);
            }
        }
        show_vars(&self.shown_group_vars(name), depth + 1, out);
        path.pop();
    }
}

/// The most a `--graph --vars` draws (it recurses once per level, and levels are few).
const GRAPH_MAX_BYTES: usize = 64 << 20;

fn graph_line(name: &str, depth: usize) -> String {
    if depth == 0 {
        format!("{name}\n")
    } else {
        format!("{}--{name}\n", "  |".repeat(depth))
    }
}

fn show_vars(vars: &Vars, depth: usize, out: &mut String) {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let value = python_str(&vars[name.as_str()]);
        out.push_str(&graph_line(&format!("{{{name} = {value}}}"), depth));
    }
}

/// A value as Python's `str()` shows it in `--graph --vars`.
pub(crate) fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => unsafe_inner(s).unwrap_or(s).to_string(),
        other => python_repr(other),
    }
}

/// Python's truth of a value: `0`, `""`, `[]`, `{}`, `None` and `False` are false.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

pub(crate) fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let s = unsafe_inner(s).unwrap_or(s);
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        python_repr(&Value::String(k.clone())),
                        python_repr(v)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

const RAW_OPEN: &str = "{% raw %}";
const RAW_CLOSE: &str = "{% endraw %}";

/// Text that is never templated (Ansible's untrusted strings, `__ansible_unsafe`): wrapped
/// in `{% raw %}`, as `!unsafe` YAML strings are, so the wrapper also marks it untrusted.
pub(crate) fn unsafe_text(text: &str) -> String {
    if text.contains("{%") {
        settle_yaml::literal_template(text)
    } else {
        format!("{RAW_OPEN}{text}{RAW_CLOSE}")
    }
}

/// Every string inside, as untrusted text (what templates computed, what a script marked).
pub(crate) fn untrusted(value: Value) -> Value {
    match value {
        Value::String(s) if is_unsafe(&s) => Value::String(s),
        Value::String(s) => Value::String(unsafe_text(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(untrusted).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, untrusted(v))).collect())
        }
        other => other,
    }
}

/// Whether `s` is untrusted text already.
pub(crate) fn is_unsafe(s: &str) -> bool {
    s.starts_with(RAW_OPEN)
}

/// The text of an untrusted string, when `s` is one.
fn unsafe_inner(s: &str) -> Option<&str> {
    let inner = s.strip_prefix(RAW_OPEN)?.strip_suffix(RAW_CLOSE)?;
    (!inner.contains("{%")).then_some(inner)
}

/// How deep `--list --yaml`/`--toml` follow nested groups before giving up with an error.
const MAX_GROUP_DEPTH: usize = 1_000;
/// How many group tables `--list --toml` writes at most (a group reached on several paths
/// is written each time, as ansible-inventory does, which diamonds multiply).
const MAX_FLAT_STEPS: usize = 1_000_000;

/// Untrusted text as its plain text (YAML and TOML have no mark for it in ansible-inventory).
pub fn plain_values(value: Value) -> Value {
    match value {
        Value::String(s) => match unsafe_inner(&s) {
            Some(inner) => Value::String(inner.to_string()),
            None => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(plain_values).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, plain_values(v))).collect())
        }
        other => other,
    }
}

/// TOML as `tomli_w.dumps` (what ansible-inventory `--toml` uses) writes it: tables for
/// mappings, in their order, arrays one item a line. `null` has no TOML form: an error, as
/// with tomli_w.
pub fn toml_text(value: &Value) -> Result<String, String> {
    let Value::Object(table) = value else {
        return Err("only a mapping can be written as TOML".into());
    };
    let mut out = String::new();
    toml_table(table, "", false, &mut out)?;
    Ok(out)
}

fn toml_table(
    table: &Map<String, Value>,
    name: &str,
    inside_array: bool,
    out: &mut String,
) -> Result<(), String> {
    let mut literals = Vec::new();
    let mut tables = Vec::new();
    for (key, value) in table {
        match value {
            Value::Object(sub) => tables.push((key, sub, false)),
            Value::Array(items)
                if !items.is_empty()
                    && items.iter().all(Value::is_object)
                    && !items.iter().all(toml_fits_inline) =>
            {
                tables.extend(
                    items
                        .iter()
                        .filter_map(Value::as_object)
                        .map(|t| (key, t, true)),
                );
            }
            _ => literals.push((key, value)),
        }
    }
    let mut written = false;
    if inside_array || (!name.is_empty() && (!literals.is_empty() || tables.is_empty())) {
        written = true;
        out.push_str(&if inside_array {
            format!("[[{name}]]\n")
        } else {
            format!("[{name}]\n")
        });
    }
    for (key, value) in &literals {
        written = true;
        out.push_str(&format!(
            "{} = {}\n",
            toml_key(key),
            toml_literal(value, 0)?
        ));
    }
    for (key, sub, in_array) in tables {
        if written {
            out.push('\n');
        }
        written = true;
        let key = toml_key(key);
        let full = if name.is_empty() {
            key
        } else {
            format!("{name}.{key}")
        };
        toml_table(sub, &full, in_array, out)?;
    }
    Ok(())
}

fn toml_fits_inline(table: &Value) -> bool {
    toml_literal(table, 0).is_ok_and(|t| t.len() + 5 <= 100 && !t.contains('\n'))
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        key.to_string()
    } else {
        toml_string(key)
    }
}

fn toml_literal(value: &Value, nest: usize) -> Result<String, String> {
    Ok(match value {
        Value::Null => return Err("Object of type 'NoneType' is not TOML serializable".into()),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml_string(s),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let indent = "    ".repeat(nest + 1);
            let items = items
                .iter()
                .map(|i| Ok(format!("{indent}{}", toml_literal(i, nest + 1)?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("[\n{},\n{}]", items.join(",\n"), "    ".repeat(nest))
        }
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => {
            let items = map
                .iter()
                .map(|(k, v)| Ok(format!("{} = {}", toml_key(k), toml_literal(v, 0)?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{ {} }}", items.join(", "))
        }
    })
}

/// A TOML basic string with tomli_w's escapes: `\b \n \f \r \" \\` and `\uXXXX` for other
/// control characters (tab as it is).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as ansible-inventory's `json.dumps(value, sort_keys=True, indent=4)` writes it: keys
/// sorted, four spaces, non-ASCII text as it is; untrusted text as its encoder marks it,
/// `{"__ansible_unsafe": …}`, so that it stays untrusted.
pub fn python_json(value: &Value) -> String {
    settle_yaml::py_json_with(value, Some(4), &|s| {
        unsafe_inner(s).map(|inner| serde_json::json!({ "__ansible_unsafe": inner }))
    })
}
