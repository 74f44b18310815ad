//! Who the hosts are, which groups they are in, and what variables the inventory gives them.
//!
//! Reads Ansible's inventory formats as they are written in the wild: INI files (`[group]`,
//! `[group:vars]`, `[group:children]`, inline host variables, ranges like `web[01:12]`), YAML
//! files (`all: {hosts, vars, children}`), directories of either, and a bare comma list
//! (`-i 'a,b,'`). Beside an inventory (and, when the engine says so, beside a playbook) it reads
//! `group_vars/` and `host_vars/`.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("hosts");
//! std::fs::write(&path, "[web]\nweb[1:2] ansible_port=2222\n\n[db]\ndb1\n").unwrap();
//! let inventory = settle_inventory::Inventory::load(&[path.to_str().unwrap()]).unwrap();
//! assert_eq!(inventory.select("web:db").unwrap(), ["web1", "web2", "db1"]);
//! assert_eq!(inventory.host_vars("web1")["ansible_port"], 2222);
//! ```
//!
//! [`Inventory::host_vars`] merges a host's variables in Ansible's order of precedence;
//! [`Inventory::select`] evaluates host patterns for `hosts:` and `--limit`.

mod ini;
mod pattern;
mod yaml;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use pattern::PatternError;

/// Variables: names to values, in the order they were written.
pub type Vars = Map<String, Value>;

/// A problem with an inventory source, naming the file and line where one is known.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Yaml(#[from] settle_yaml::YamlError),
    #[error("{0}")]
    Other(String),
}

/// One managed machine, as the inventory names it.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Variables set on the host in an inventory file (inline INI vars, YAML `hosts:` values).
    pub vars: Vars,
}

/// A named set of hosts and child groups, with the variables the inventory file gives it.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vars,
}

/// Variables read from one `group_vars/` + `host_vars/` pair.
#[derive(Debug, Default)]
struct VarsDir {
    groups: HashMap<String, Vars>,
    hosts: HashMap<String, Vars>,
}

/// The whole inventory: every source given with `-i`, merged.
#[derive(Debug, Default)]
pub struct Inventory {
    hosts: IndexMap<String, Host>,
    groups: IndexMap<String, Group>,
    /// `group_vars/`/`host_vars/` beside the inventory sources.
    inventory_vars: Vec<VarsDir>,
    /// `group_vars/`/`host_vars/` beside the playbook: these win over the inventory's.
    playbook_vars: Vec<VarsDir>,
    /// Each group's depth below `all` and `ansible_group_priority`, for ordering group vars.
    order_cache: HashMap<String, (usize, i64)>,
}

/// The name Ansible gives the host that needs no inventory entry.
pub const LOCALHOST: &str = "localhost";

impl Inventory {
    /// An inventory with only the implicit `localhost`, as when no `-i` is given.
    pub fn empty() -> Self {
        let mut inventory = Inventory::default();
        inventory.ensure_group("all");
        inventory.ensure_group("ungrouped");
        inventory.finish();
        inventory
    }

    /// Loads every source: a file (INI or YAML), a directory of them, or a comma list of hosts.
    pub fn load<S: AsRef<str>>(sources: &[S]) -> Result<Self, InventoryError> {
        let mut inventory = Inventory::default();
        inventory.ensure_group("all");
        inventory.ensure_group("ungrouped");
        for source in sources {
            let source = source.as_ref();
            let path = Path::new(source);
            if !path.exists() && source.contains(',') {
                for name in source.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    inventory.add_host(name, "ungrouped", Vars::new());
                }
                continue;
            }
            if path.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|source| InventoryError::Read {
                        path: path.into(),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && !ignored_file(p))
                    .collect();
                entries.sort();
                for file in entries {
                    inventory.load_file(&file)?;
                }
                inventory.inventory_vars.push(VarsDir::load(path)?);
            } else {
                inventory.load_file(path)?;
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                inventory.inventory_vars.push(VarsDir::load(dir)?);
            }
        }
        inventory.finish();
        Ok(inventory)
    }

    /// Adds the `group_vars/` and `host_vars/` beside a playbook; they rank above the inventory's.
    pub fn add_playbook_vars_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        self.playbook_vars.push(VarsDir::load(dir)?);
        Ok(())
    }

    fn load_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.into(),
            source,
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let looks_yaml = matches!(ext, "yml" | "yaml" | "json")
            || text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l == "---" || (l.ends_with(':') && !l.starts_with('[')));
        if looks_yaml {
            yaml::load(self, &text, path)
        } else {
            ini::load(self, &text, path)
        }
    }

    pub(crate) fn ensure_group(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
    }

    pub(crate) fn add_host(&mut self, name: &str, group: &str, vars: Vars) {
        let host = self.hosts.entry(name.to_string()).or_insert_with(|| Host {
            name: name.to_string(),
            vars: Vars::new(),
        });
        host.vars.extend(vars);
        let group = self.ensure_group(group);
        if !group.hosts.iter().any(|h| h == name) {
            group.hosts.push(name.to_string());
        }
    }

    pub(crate) fn add_child(&mut self, parent: &str, child: &str) {
        self.ensure_group(child);
        let parent = self.ensure_group(parent);
        if !parent.children.iter().any(|c| c == child) {
            parent.children.push(child.to_string());
        }
    }

    /// Puts top-level groups under `all` and hosts with no group in `ungrouped`, as Ansible does.
    fn finish(&mut self) {
        let children: HashSet<String> = self
            .groups
            .values()
            .flat_map(|g| g.children.iter().cloned())
            .collect();
        let tops: Vec<String> = self
            .groups
            .keys()
            .filter(|g| *g != "all" && !children.contains(*g))
            .cloned()
            .collect();
        for top in tops {
            self.add_child("all", &top);
        }
        let grouped: HashSet<String> = self
            .groups
            .values()
            .filter(|g| g.name != "all" && g.name != "ungrouped")
            .flat_map(|g| g.hosts.iter().cloned())
            .collect();
        let ungrouped = self.groups.get_mut("ungrouped").expect("created in load");
        ungrouped.hosts.retain(|h| !grouped.contains(h));
        for host in self.hosts.keys() {
            if !grouped.contains(host) && !ungrouped.hosts.contains(host) {
                ungrouped.hosts.push(host.clone());
            }
        }
        if let Some(all) = self.groups.get_mut("all") {
            all.hosts.clear();
        }
        self.order_cache = self
            .groups
            .keys()
            .map(|g| {
                let priority = self.groups[g]
                    .vars
                    .get("ansible_group_priority")
                    .and_then(|v| {
                        v.as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    })
                    .unwrap_or(1);
                (g.clone(), (self.depth(g, 0), priority))
            })
            .collect();
    }

    fn depth(&self, group: &str, guard: usize) -> usize {
        if group == "all" || guard > 64 {
            return 0;
        }
        self.groups
            .values()
            .filter(|g| g.children.iter().any(|c| c == group))
            .map(|p| self.depth(&p.name, guard + 1) + 1)
            .max()
            .unwrap_or(1)
    }

    /// Every host in the inventory, in the order the sources name them.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// All hosts of a group, its children's included, in order and without repeats.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.keys().cloned().collect();
        }
        let mut out = IndexMap::<String, ()>::new();
        let mut seen = HashSet::new();
        self.collect_hosts(group, &mut out, &mut seen);
        out.into_keys().collect()
    }

    fn collect_hosts(
        &self,
        group: &str,
        out: &mut IndexMap<String, ()>,
        seen: &mut HashSet<String>,
    ) {
        if !seen.insert(group.to_string()) {
            return;
        }
        if let Some(g) = self.groups.get(group) {
            for h in &g.hosts {
                out.insert(h.clone(), ());
            }
            for c in &g.children {
                self.collect_hosts(c, out, seen);
            }
        }
    }

    /// The groups a host is in, directly or through a child group, `all` first, then sorted
    /// as Ansible sorts them for variable precedence: by depth, `ansible_group_priority`, name.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        let mut direct: Vec<&str> = self
            .groups
            .values()
            .filter(|g| g.hosts.iter().any(|h| h == host))
            .map(|g| g.name.as_str())
            .collect();
        if !self.hosts.contains_key(host) {
            direct.clear();
        }
        let mut all: HashSet<String> = HashSet::new();
        let mut stack: Vec<String> = direct.iter().map(|s| s.to_string()).collect();
        while let Some(g) = stack.pop() {
            if all.insert(g.clone()) {
                for parent in self.groups.values().filter(|p| p.children.contains(&g)) {
                    stack.push(parent.name.clone());
                }
            }
        }
        all.insert("all".to_string());
        let mut groups: Vec<String> = all.into_iter().collect();
        groups.sort_by(|a, b| {
            let (da, pa) = self.order_cache.get(a).copied().unwrap_or((0, 1));
            let (db, pb) = self.order_cache.get(b).copied().unwrap_or((0, 1));
            (da, pa, a).cmp(&(db, pb, b))
        });
        groups
    }

    /// A host's variables from every inventory source, merged in Ansible's order of precedence
    /// (later wins): inventory-file group vars < `group_vars/all` (inventory, then playbook) <
    /// `group_vars/<group>` (inventory, then playbook) < inventory-file host vars <
    /// `host_vars/<host>` (inventory, then playbook).
    pub fn host_vars(&self, host: &str) -> Vars {
        let groups = self.host_groups(host);
        let mut vars = Vars::new();
        for g in &groups {
            if let Some(group) = self.groups.get(g) {
                vars.extend(group.vars.clone());
            }
        }
        let (all, others): (Vec<&String>, Vec<&String>) = groups.iter().partition(|g| *g == "all");
        for layer in [&all, &others] {
            for dirs in [&self.inventory_vars, &self.playbook_vars] {
                for g in layer.iter() {
                    for dir in dirs.iter() {
                        if let Some(v) = dir.groups.get(g.as_str()) {
                            vars.extend(v.clone());
                        }
                    }
                }
            }
        }
        if let Some(h) = self.hosts.get(host) {
            vars.extend(h.vars.clone());
        } else if host == LOCALHOST {
            vars.insert("ansible_connection".into(), "local".into());
        }
        for dirs in [&self.inventory_vars, &self.playbook_vars] {
            for dir in dirs.iter() {
                if let Some(v) = dir.hosts.get(host) {
                    vars.extend(v.clone());
                }
            }
        }
        vars
    }

    /// The hosts a pattern names (`all`, `web`, `web:db`, `web:&prod`, `all:!db`, `web*`, `~re`,
    /// `web[0:2]`), in the pattern's order. `localhost` matches even when not in the inventory.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, PatternError> {
        pattern::select(self, pattern)
    }

    /// `ansible-inventory --list`: every group with its hosts and children, and `_meta.hostvars`.
    pub fn to_list_json(&self) -> Value {
        let mut out = Map::new();
        let mut hostvars = Map::new();
        for host in self.hosts.keys() {
            hostvars.insert(host.clone(), Value::Object(self.host_vars(host)));
        }
        out.insert("_meta".into(), serde_json::json!({ "hostvars": hostvars }));
        for group in self.groups.values() {
            let mut entry = Map::new();
            if !group.children.is_empty() {
                entry.insert("children".into(), group.children.clone().into());
            }
            if !group.hosts.is_empty() {
                entry.insert("hosts".into(), group.hosts.clone().into());
            }
            if group.name == "ungrouped" && group.hosts.is_empty() {
                continue;
            }
            out.insert(group.name.clone(), Value::Object(entry));
        }
        Value::Object(out)
    }

    /// `ansible-inventory --graph`: the group tree as text.
    pub fn to_graph(&self, root: &str) -> String {
        let mut out = String::new();
        self.graph_group(root, 0, &mut out);
        out
    }

    fn graph_group(&self, name: &str, depth: usize, out: &mut String) {
        let indent = |d: usize| {
            if d == 0 {
                String::new()
            } else {
                format!("{}|--", "  |".repeat(d - 1) + "  ")
            }
        };
        out.push_str(&format!("{}@{}:\n", indent(depth), name));
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let mut children = group.children.clone();
        if name == "all" {
            children.sort_by_key(|c| c != "ungrouped");
        }
        for child in &children {
            if child == "ungrouped" && self.groups[child].hosts.is_empty() {
                continue;
            }
            self.graph_group(child, depth + 1, out);
        }
        for host in &group.hosts {
            out.push_str(&format!("{}{}\n", indent(depth + 1), host));
        }
    }
}

/// Files in an inventory directory that Ansible skips.
fn ignored_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || [
            ".orig", ".ini~", "~", ".retry", ".pyc", ".pyo", ".cfg", ".md",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

impl VarsDir {
    fn load(dir: &Path) -> Result<Self, InventoryError> {
        Ok(VarsDir {
            groups: load_vars_tree(&dir.join("group_vars"))?,
            hosts: load_vars_tree(&dir.join("host_vars"))?,
        })
    }
}

/// `group_vars/NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`, or a directory `NAME/` of such files.
fn load_vars_tree(dir: &Path) -> Result<HashMap<String, Vars>, InventoryError> {
    let mut out: HashMap<String, Vars> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if file_name.starts_with('.') {
            continue;
        }
        let (name, vars) = if path.is_dir() {
            (file_name.clone(), load_vars_dir(&path)?)
        } else {
            let stem = strip_vars_ext(&file_name);
            match stem {
                Some(stem) => (stem.to_string(), load_vars_file(&path)?),
                None => continue,
            }
        };
        out.entry(name).or_default().extend(vars);
    }
    Ok(out)
}

fn strip_vars_ext(name: &str) -> Option<&str> {
    for ext in [".yml", ".yaml", ".json"] {
        if let Some(stem) = name.strip_suffix(ext) {
            return Some(stem);
        }
    }
    (!name.contains('.')).then_some(name)
}

fn load_vars_dir(dir: &Path) -> Result<Vars, InventoryError> {
    let mut vars = Vars::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| InventoryError::Read {
            path: dir.into(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            vars.extend(load_vars_dir(&path)?);
        } else if strip_vars_ext(name).is_some() {
            vars.extend(load_vars_file(&path)?);
        }
    }
    Ok(vars)
}

/// One vars file: a YAML (or JSON) mapping of names to values.
pub fn load_vars_file(path: &Path) -> Result<Vars, InventoryError> {
    let node = settle_yaml::load_file(path)?;
    match node.to_value() {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Vars::new()),
        other => Err(InventoryError::Parse {
            path: path.into(),
            line: node.line as usize,
            message: format!(
                "a vars file must be a mapping of names to values, found {}",
                type_word(&other)
            ),
        }),
    }
}

fn type_word(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "nothing",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
