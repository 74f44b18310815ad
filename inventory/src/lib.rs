//! Who the hosts are, which groups they are in, and what variables the inventory gives them.
//!
//! Reads Ansible's inventory formats as ansible-core 2.19 reads them: INI files (`[group]`,
//! `[group:vars]`, `[group:children]`, inline host variables, ranges like `web[01:12]`, values
//! typed by Python's `ast.literal_eval`), YAML files (`all: {hosts, vars, children}`),
//! TOML files (`*.toml`: `[web.hosts]`, `[web.vars]`, `children = [...]`), directories of these, and a bare comma list (`-i 'a,b,'`). Beside an inventory (and, when
//! the engine says so, beside a playbook) it reads `group_vars/` and `host_vars/`.
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
//! [`Inventory::select`] evaluates host patterns for `hosts:` and `--limit`;
//! [`Inventory::magic_vars`] gives the magic variables that come from the inventory.
//! Groups form a DAG: a group that would become its own ancestor is refused with Ansible's
//! message, and every walk over groups is iterative, so no inventory can overflow the stack.

// No input reaches a panic: a value that may be missing is an error naming where, not an
// unwrap. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod construct;
mod generator;
pub mod groupname;
mod hashmerge;
mod host_list;
mod hostname;
mod ini;
mod pattern;
mod pyliteral;
mod script;
mod show;
mod toml_file;

pub use hashmerge::{combine_vars, hash_behaviour_merge, merge_hash};
mod yaml;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use serde_json::{Map, Value};

pub use construct::Evaluator;
pub use hostname::parse_address;
pub use pattern::PatternError;
pub use show::{ShowOptions, plain_values, python_json, toml_text};

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
    /// A source an inventory plugin could not read, in Ansible's words.
    #[error("{message}")]
    Plugin {
        plugin: &'static str,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl InventoryError {
    /// The warning Ansible's commands show when they leave a source out for this error.
    pub fn warning(&self) -> String {
        match self {
            InventoryError::Plugin { plugin, message } => {
                format!("Failed to parse inventory with '{plugin}' plugin: {message}")
            }
            other => format!("Failed to parse inventory: {other}"),
        }
    }
}

/// One managed machine, as the inventory names it.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Variables set on the host in an inventory file (inline INI vars, YAML `hosts:` values).
    pub vars: Vars,
    /// The inventory source that first named the host (`inventory_file`): an absolute file
    /// path, or the comma list itself; `None` for hosts added without a source.
    pub inventory_file: Option<String>,
    /// The folder of that source (`inventory_dir`); `None` for a comma list.
    pub inventory_dir: Option<String>,
}

/// A named set of hosts and child groups, with the variables the inventory file gives it.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vars,
    /// `ansible_group_priority` (default 1): Ansible keeps it out of the group's variables.
    pub priority: i64,
}

/// Variables read from one `group_vars/` + `host_vars/` pair.
#[derive(Debug, Default, Clone)]
struct VarsDir {
    groups: HashMap<String, Vars>,
    hosts: HashMap<String, Vars>,
}

/// The whole inventory: every source given with `-i`, merged.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    hosts: IndexMap<String, Host>,
    groups: IndexMap<String, Group>,
    /// Each group's parents, in the order they adopted it.
    parents: HashMap<String, Vec<String>>,
    /// `group_vars/`/`host_vars/` beside the inventory sources.
    inventory_vars: Vec<VarsDir>,
    /// `group_vars/`/`host_vars/` beside the playbook: these win over the inventory's.
    playbook_vars: Vec<VarsDir>,
    /// Each group's depth below `all` and `ansible_group_priority`, for ordering group vars.
    order_cache: HashMap<String, (usize, i64)>,
    /// The source being read: (`inventory_file`, `inventory_dir`) for the hosts it adds.
    current_source: Option<(String, Option<String>)>,
    /// Hosts `add_host` added while the run went: Ansible puts them in `all` itself, so they
    /// come first in `groups['all']`.
    added: Vec<String>,
    /// What reading the sources noted for `-vvv` (Ansible's `display.vvv`), in order.
    notes: Vec<String>,
    /// The sources [`Inventory::load`] read, for [`Inventory::reloaded`].
    sources: Vec<String>,
    /// What `add_host` and `group_by` changed, in order, for [`Inventory::reloaded`].
    dynamic: Vec<DynamicChange>,
}

/// One change the run made to the inventory.
#[derive(Debug, Clone)]
enum DynamicChange {
    Host(String, Vec<String>, Vars),
    Group(String, String, Vec<String>),
}

/// The controller's Python, which Ansible gives its implicit `localhost` (Ansible's own
/// `sys.executable`): `$SETTLE_ANSIBLE_PYTHON` when set, else `python3` on `PATH` (a
/// virtualenv's, when one is active, as Ansible's would be), else `/usr/bin/python3`.
pub fn controller_python() -> Option<String> {
    if let Ok(python) = std::env::var("SETTLE_ANSIBLE_PYTHON")
        && !python.is_empty()
    {
        return Some(python);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/python3")).filter(|p| p.is_file()))
        .map(|p| p.display().to_string())
}

/// What decides about an inventory file that cannot be read: skip it (`Ok`) or fail.
pub type Unparsed<'a> = dyn FnMut(&Path, InventoryError) -> Result<(), InventoryError> + 'a;

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

    /// Loads every source: a file (INI, YAML or TOML), a directory of them, or a comma list of hosts.
    /// A `constructed` plugin file among them is an error: see [`load_with`](Self::load_with).
    pub fn load<S: AsRef<str>>(sources: &[S]) -> Result<Self, InventoryError> {
        Self::load_with(sources, None)
    }

    /// Loads every source as [`load`](Self::load) does, with an [`Evaluator`] for the Jinja
    /// of `constructed` plugin files (which see the hosts of the sources before them).
    pub fn load_with<S: AsRef<str>>(
        sources: &[S],
        evaluator: Option<&dyn Evaluator>,
    ) -> Result<Self, InventoryError> {
        Self::load_sources(sources, evaluator, None)
    }

    /// Loads every source as [`load_with`](Self::load_with) does, but a file that cannot be
    /// read is handed to `unparsed` with its error and the load goes on (keeping what the file
    /// gave before the error), as `ansible-inventory` warns and goes on; `unparsed` may still
    /// make it an error by returning one.
    pub fn load_skipping_unparsed<S: AsRef<str>>(
        sources: &[S],
        evaluator: Option<&dyn Evaluator>,
        unparsed: &mut Unparsed<'_>,
    ) -> Result<Self, InventoryError> {
        Self::load_sources(sources, evaluator, Some(unparsed))
    }

    fn load_sources<S: AsRef<str>>(
        sources: &[S],
        evaluator: Option<&dyn Evaluator>,
        mut unparsed: Option<&mut Unparsed<'_>>,
    ) -> Result<Self, InventoryError> {
        let mut inventory = Inventory {
            sources: sources.iter().map(|s| s.as_ref().to_string()).collect(),
            ..Inventory::default()
        };
        inventory.ensure_group("all");
        inventory.ensure_group("ungrouped");
        inventory
            .add_child("all", "ungrouped")
            .map_err(InventoryError::Other)?;
        // Whether some file was read, and some was not.
        let (mut read, mut unread) = (false, false);
        for source in sources {
            let source = source.as_ref();
            let path = Path::new(source);
            if !path.exists() && source.contains(',') {
                inventory.current_source = Some((source.to_string(), None));
                match (
                    host_list::load(&mut inventory, source),
                    unparsed.as_deref_mut(),
                ) {
                    (Ok(()), _) => read = true,
                    (Err(error), Some(unparsed)) => {
                        unparsed(path, error)?;
                        unread = true;
                    }
                    (Err(error), None) => return Err(error),
                }
            } else if path.is_dir() {
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
                    match inventory.load_file_or_skip(&file, evaluator, unparsed.as_deref_mut())? {
                        true => read = true,
                        false => unread = true,
                    }
                }
                inventory.inventory_vars.push(VarsDir::load(path)?);
            } else {
                match inventory.load_file_or_skip(path, evaluator, unparsed.as_deref_mut())? {
                    true => read = true,
                    false => unread = true,
                }
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                inventory.inventory_vars.push(VarsDir::load(dir)?);
            }
            inventory.adopt_top_groups();
        }
        // As Ansible: when no file could be read, what the failed ones gave before their errors
        // is out of reach (only the implicit localhost is there); with one read, it stays.
        if unread && !read {
            let vars = std::mem::take(&mut inventory.inventory_vars);
            inventory = Inventory {
                sources: inventory.sources,
                inventory_vars: vars,
                notes: inventory.notes,
                ..Inventory::empty()
            };
        }
        inventory.current_source = None;
        inventory.finish();
        Ok(inventory)
    }

    /// Loads one file; when it cannot be read and there is an `unparsed` to decide, that says
    /// whether it is an error. What the file gave before its error stays, as in Ansible.
    /// Returns whether the file was read.
    fn load_file_or_skip(
        &mut self,
        path: &Path,
        evaluator: Option<&dyn Evaluator>,
        unparsed: Option<&mut Unparsed<'_>>,
    ) -> Result<bool, InventoryError> {
        match (self.load_file(path, evaluator), unparsed) {
            (Err(error), Some(unparsed)) => unparsed(path, error).map(|()| false),
            (result, _) => result.map(|()| true),
        }
    }

    /// Reads one inventory held in memory, INI or YAML as [`load`](Self::load) would read a
    /// file of that name, without the `group_vars/` and `host_vars/` a file has beside it.
    ///
    /// ```
    /// let inventory = settle_inventory::Inventory::parse_str("[db]\ndb[1:2]\n", "hosts").unwrap();
    /// assert_eq!(inventory.select("db").unwrap(), ["db1", "db2"]);
    /// ```
    pub fn parse_str(text: &str, path: impl AsRef<Path>) -> Result<Self, InventoryError> {
        let path = path.as_ref();
        let mut inventory = Inventory::default();
        inventory.ensure_group("all");
        inventory.ensure_group("ungrouped");
        inventory
            .add_child("all", "ungrouped")
            .map_err(InventoryError::Other)?;
        inventory.set_source(path);
        inventory.load_text(text, path, None)?;
        inventory.current_source = None;
        inventory.finish();
        Ok(inventory)
    }

    /// Adds the `group_vars/` and `host_vars/` beside a playbook; they rank above the inventory's.
    pub fn add_playbook_vars_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        self.playbook_vars.push(VarsDir::load(dir)?);
        Ok(())
    }

    fn load_file(
        &mut self,
        path: &Path,
        evaluator: Option<&dyn Evaluator>,
    ) -> Result<(), InventoryError> {
        if !script::is_script(path) {
            return self.load_text_file(path, evaluator);
        }
        // As Ansible: an executable file is run first; when that fails, the file is read as
        // INI or YAML, and only when that fails too is the script's failure the error.
        let mut trial = self.clone();
        trial.set_source(path);
        match script::load(&mut trial, path) {
            Ok(()) => {
                *self = trial;
                Ok(())
            }
            Err(script_error) => {
                let mut trial = self.clone();
                match trial.load_text_file(path, evaluator) {
                    Ok(()) => {
                        *self = trial;
                        Ok(())
                    }
                    Err(_) => Err(script_error),
                }
            }
        }
    }

    /// Hosts added from now on name this file as their `inventory_file`.
    fn set_source(&mut self, path: &Path) {
        let file = absolute(path);
        let dir = file.parent().map(|d| d.display().to_string());
        self.current_source = Some((file.display().to_string(), dir));
    }

    fn load_text_file(
        &mut self,
        path: &Path,
        evaluator: Option<&dyn Evaluator>,
    ) -> Result<(), InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.into(),
            source,
        })?;
        self.set_source(path);
        self.load_text(&text, path, evaluator)
    }

    /// Reads an INI or YAML inventory's text; `path` names it in errors and, by its extension,
    /// can say it is YAML.
    fn load_text(
        &mut self,
        text: &str,
        path: &Path,
        evaluator: Option<&dyn Evaluator>,
    ) -> Result<(), InventoryError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        // As Ansible: `*.toml` is TOML and nothing else, and no other file is TOML.
        if ext == "toml" {
            return toml_file::load(self, text, path);
        }
        let looks_yaml = matches!(ext, "yml" | "yaml" | "json")
            || text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l == "---" || (l.ends_with(':') && !l.starts_with('[')));
        if looks_yaml {
            yaml::load(self, text, path, evaluator)
        } else {
            ini::load(self, text, path)
        }
    }

    /// The name a group a source declares goes by, as `TRANSFORM_INVALID_GROUP_CHARS` has it
    /// (see [`groupname`]).
    pub(crate) fn group_name(&mut self, declared: &str) -> String {
        groupname::declared(declared)
    }

    /// Notes a line for `-vvv`.
    pub(crate) fn note_vvv(&mut self, line: &str) {
        self.notes.push(line.to_string());
    }

    /// What reading the sources noted for `-vvv`, to show at that verbosity.
    pub fn notes_vvv(&self) -> &[String] {
        &self.notes
    }

    pub(crate) fn ensure_group(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                priority: 1,
                ..Group::default()
            })
    }

    /// Sets a group variable as Ansible's `Group.set_variable` does: `ansible_group_priority`
    /// becomes the group's priority instead of a variable.
    pub(crate) fn set_group_var(&mut self, group: &str, key: &str, value: Value) {
        let group = self.ensure_group(group);
        if key == "ansible_group_priority" {
            let priority = match &value {
                Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
                Value::Bool(b) => Some(i64::from(*b)),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            if let Some(p) = priority {
                group.priority = p;
            }
        } else {
            // A second inventory source setting the same group variable: combined.
            let mut one = Vars::new();
            one.insert(key.to_string(), value);
            combine_vars(&mut group.vars, one);
        }
    }

    pub(crate) fn add_host(&mut self, name: &str, group: &str, vars: Vars) {
        let source = self.current_source.clone();
        let host = self.hosts.entry(name.to_string()).or_insert_with(|| Host {
            name: name.to_string(),
            vars: Vars::new(),
            inventory_file: source.as_ref().map(|s| s.0.clone()),
            inventory_dir: source.and_then(|s| s.1),
        });
        combine_vars(&mut host.vars, vars);
        let group = self.ensure_group(group);
        if !group.hosts.iter().any(|h| h == name) {
            group.hosts.push(name.to_string());
        }
    }

    /// Sets variables on a host the inventory has.
    pub(crate) fn add_host_vars(&mut self, name: &str, vars: Vars) {
        if let Some(host) = self.hosts.get_mut(name) {
            combine_vars(&mut host.vars, vars);
        }
    }

    /// Makes `child` a child group of `parent`, refusing cycles with Ansible's messages.
    pub(crate) fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if parent == child {
            return Err("can't add group to itself".into());
        }
        if self
            .groups
            .get(parent)
            .is_some_and(|g| g.children.iter().any(|c| c == child))
        {
            return Ok(());
        }
        if self.ancestors(parent).contains(child) {
            return Err(format!(
                "Adding group '{child}' as child to '{parent}' creates a recursive dependency loop."
            ));
        }
        self.ensure_group(child);
        self.ensure_group(parent).children.push(child.to_string());
        let parents = self.parents.entry(child.to_string()).or_default();
        if !parents.iter().any(|p| p == parent) {
            parents.push(parent.to_string());
        }
        Ok(())
    }

    /// A host added while the run goes (`add_host`): created under `all` when new, its
    /// variables merged over the ones it has, put in each of `groups` (created when new).
    /// Returns whether anything changed, as Ansible's `add_dynamic_host` reports it.
    pub fn add_dynamic_host(&mut self, name: &str, groups: &[String], vars: Vars) -> bool {
        self.dynamic.push(DynamicChange::Host(
            name.to_string(),
            groups.to_vec(),
            vars.clone(),
        ));
        let mut changed = false;
        if !self.hosts.contains_key(name) {
            let source = self.current_source.take();
            self.add_host(name, "ungrouped", Vars::new());
            self.current_source = source;
            self.added.push(name.to_string());
            changed = true;
        }
        if let Some(host) = self.hosts.get_mut(name) {
            for (k, v) in vars {
                if host.vars.get(&k) != Some(&v) {
                    host.vars.insert(k, v);
                    changed = true;
                }
            }
        }
        for group in groups {
            let group = self.ensure_group(group);
            if !group.hosts.iter().any(|h| h == name) {
                group.hosts.push(name.to_string());
                changed = true;
            }
        }
        if changed {
            self.finish();
        }
        changed
    }

    /// A host put in a group while the run goes (`group_by`): the group is created when new,
    /// under each of `parents` (created when new). Returns whether anything changed.
    pub fn add_dynamic_group(
        &mut self,
        host: &str,
        group: &str,
        parents: &[String],
    ) -> Result<bool, String> {
        self.dynamic.push(DynamicChange::Group(
            host.to_string(),
            group.to_string(),
            parents.to_vec(),
        ));
        let mut changed = false;
        if !self.groups.contains_key(group) {
            self.ensure_group(group);
            changed = true;
        }
        for parent in parents {
            if !self.groups.contains_key(parent.as_str()) {
                self.ensure_group(parent);
                changed = true;
            }
            let adopted = self
                .groups
                .get(parent.as_str())
                .is_some_and(|p| p.children.iter().any(|c| c == group));
            if !adopted {
                self.add_child(parent, group)?;
                changed = true;
            }
        }
        if !self.hosts.contains_key(host) {
            // The implicit localhost, named in a play but in no inventory.
            let source = self.current_source.take();
            self.add_host(host, "ungrouped", Vars::new());
            self.current_source = source;
        }
        let g = self.ensure_group(group);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
            changed = true;
        }
        if changed {
            self.finish();
        }
        Ok(changed)
    }

    /// The inventory read again from its sources (`meta: refresh_inventory`), with the
    /// playbook's `group_vars/`/`host_vars/` and what `add_host` and `group_by` did since
    /// the start applied again, as Ansible keeps them.
    pub fn reloaded(&self, evaluator: Option<&dyn Evaluator>) -> Result<Inventory, InventoryError> {
        let mut fresh = match self.sources.is_empty() {
            true => Inventory::empty(),
            false => Inventory::load_with(&self.sources, evaluator)?,
        };
        fresh.playbook_vars = self.playbook_vars.clone();
        for change in &self.dynamic {
            match change {
                DynamicChange::Host(name, groups, vars) => {
                    fresh.add_dynamic_host(name, groups, vars.clone());
                }
                // A host the sources no longer have leaves its groups behind (Ansible's way).
                DynamicChange::Group(host, _, _) if !fresh.hosts.contains_key(host) => {}
                DynamicChange::Group(host, group, parents) => {
                    fresh
                        .add_dynamic_group(host, group, parents)
                        .map_err(InventoryError::Other)?;
                }
            }
        }
        fresh.finish();
        Ok(fresh)
    }

    /// Every group above `group` (not itself), found without recursion.
    fn ancestors(&self, group: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = vec![group];
        while let Some(g) = stack.pop() {
            for p in self.parents.get(g).into_iter().flatten() {
                if seen.insert(p.clone()) {
                    stack.push(p);
                }
            }
        }
        seen
    }

    /// Groups with no parent go under `all`, as Ansible does after each source.
    fn adopt_top_groups(&mut self) {
        let tops: Vec<String> = self
            .groups
            .keys()
            .filter(|g| *g != "all" && self.parents.get(*g).is_none_or(Vec::is_empty))
            .cloned()
            .collect();
        for top in tops {
            // `all` has no ancestors, so this cannot make a cycle.
            let _ = self.add_child("all", &top);
        }
    }

    /// Puts hosts with no group in `ungrouped`, as Ansible does, and orders the groups.
    fn finish(&mut self) {
        self.adopt_top_groups();
        let grouped: HashSet<String> = self
            .groups
            .values()
            .filter(|g| g.name != "all" && g.name != "ungrouped")
            .flat_map(|g| g.hosts.iter().cloned())
            .collect();
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        let ungrouped = self.ensure_group("ungrouped");
        ungrouped.hosts.retain(|h| !grouped.contains(h));
        for host in hosts {
            if !grouped.contains(&host) && !ungrouped.hosts.contains(&host) {
                ungrouped.hosts.push(host);
            }
        }
        let added = self.added.clone();
        if let Some(all) = self.groups.get_mut("all") {
            all.hosts = added;
        }
        let depths = self.depths();
        self.order_cache = self
            .groups
            .values()
            .map(|g| {
                let depth = depths.get(&g.name).copied().unwrap_or(0);
                (g.name.clone(), (depth, g.priority))
            })
            .collect();
    }

    /// Each group's depth: the longest path down from `all` (Ansible's `Group.depth`), found
    /// in one pass over the groups in topological order, so a deep diamond costs nothing.
    fn depths(&self) -> HashMap<String, usize> {
        let mut pending_parents: HashMap<&str, usize> = self
            .groups
            .keys()
            .map(|g| (g.as_str(), self.parents.get(g).map_or(0, Vec::len)))
            .collect();
        let mut depth: HashMap<String, usize> = HashMap::new();
        let mut queue: VecDeque<&str> = pending_parents
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(g, _)| *g)
            .collect();
        while let Some(g) = queue.pop_front() {
            let d = depth.get(g).copied().unwrap_or(0);
            depth.entry(g.to_string()).or_insert(d);
            for child in self
                .groups
                .get(g)
                .map(|g| &g.children)
                .into_iter()
                .flatten()
            {
                let cd = depth.entry(child.clone()).or_insert(0);
                *cd = (*cd).max(d + 1);
                if let Some(n) = pending_parents.get_mut(child.as_str()) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        queue.push_back(child);
                    }
                }
            }
        }
        depth
    }

    /// Whether the sources gave nothing: no host, and no group but `all` and `ungrouped`.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.groups.len() <= 2
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

    /// All hosts of a group, its descendants' included, without repeats, in Ansible's order:
    /// the group's own hosts, then its children's, then their children's (`all` included).
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut out: IndexSet<String> = IndexSet::new();
        for g in self.descendants(group) {
            if let Some(g) = self.groups.get(g) {
                out.extend(g.hosts.iter().cloned());
            }
        }
        out.into_iter().collect()
    }

    /// A group and the groups below it, level by level, each once.
    fn descendants<'a>(&'a self, group: &'a str) -> Vec<&'a str> {
        let mut seen: IndexSet<&str> = IndexSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            if !seen.insert(g) {
                continue;
            }
            for c in self
                .groups
                .get(g)
                .map(|g| &g.children)
                .into_iter()
                .flatten()
            {
                if !seen.contains(c.as_str()) {
                    queue.push_back(c);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// The groups a host is in, directly or through a child group, `all` first, then sorted
    /// as Ansible sorts them for variable precedence: by depth, `ansible_group_priority`, name.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        let mut all: HashSet<String> = HashSet::new();
        if self.hosts.contains_key(host) {
            for g in self
                .groups
                .values()
                .filter(|g| g.hosts.iter().any(|h| h == host))
            {
                all.insert(g.name.clone());
                all.extend(self.ancestors(&g.name));
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

    /// The magic variables the inventory gives a host: `group_names` (sorted, without `all`;
    /// `ungrouped` stays, as in ansible-core 2.19's `Host.get_magic_vars`), `inventory_file` and `inventory_dir` (the source that first named the
    /// host; `null` for a host no source names, like the implicit `localhost`).
    pub fn magic_vars(&self, host: &str) -> Vars {
        let mut m = Vars::new();
        let mut names: Vec<String> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != "all")
            .collect();
        names.sort();
        m.insert("group_names".into(), names.into());
        let h = self.hosts.get(host);
        m.insert(
            "inventory_file".into(),
            h.and_then(|h| h.inventory_file.clone()).into(),
        );
        m.insert(
            "inventory_dir".into(),
            h.and_then(|h| h.inventory_dir.clone()).into(),
        );
        m
    }

    /// The `groups` magic variable: every group (`all` and `ungrouped` included) with its hosts.
    pub fn groups_var(&self) -> Vars {
        self.groups
            .keys()
            .map(|g| (g.clone(), self.group_hosts(g).into()))
            .collect()
    }

    /// A host's variables from every inventory source, merged in Ansible's order of precedence
    /// (later wins): inventory-file group vars < `group_vars/all` (inventory, then playbook) <
    /// `group_vars/<group>` (inventory, then playbook) < inventory-file host vars <
    /// `host_vars/<host>` (inventory, then playbook). Within each, groups go by depth
    /// (a child beats its parent), then `ansible_group_priority`, then name.
    pub fn host_vars(&self, host: &str) -> Vars {
        let groups = self.host_groups(host);
        let mut vars = Vars::new();
        for g in &groups {
            if let Some(group) = self.groups.get(g) {
                combine_vars(&mut vars, group.vars.clone());
            }
        }
        let (all, others): (Vec<&String>, Vec<&String>) = groups.iter().partition(|g| *g == "all");
        for layer in [&all, &others] {
            for dirs in [&self.inventory_vars, &self.playbook_vars] {
                // Ansible merges source by source, each with all of the host's groups.
                for dir in dirs.iter() {
                    for g in layer.iter() {
                        if let Some(v) = dir.groups.get(g.as_str()) {
                            combine_vars(&mut vars, v.clone());
                        }
                    }
                }
            }
        }
        if let Some(h) = self.hosts.get(host) {
            combine_vars(&mut vars, h.vars.clone());
        } else if host == LOCALHOST {
            // As Ansible makes its implicit localhost: local, with the controller's Python.
            vars.insert("ansible_connection".into(), "local".into());
            if let Some(python) = controller_python() {
                vars.insert("ansible_python_interpreter".into(), python.into());
            }
        }
        for dirs in [&self.inventory_vars, &self.playbook_vars] {
            for dir in dirs.iter() {
                if let Some(v) = dir.hosts.get(host) {
                    combine_vars(&mut vars, v.clone());
                }
            }
        }
        vars
    }

    /// A host's own variables: the inventory file's, then `host_vars/` beside the inventory
    /// (what `ansible-inventory --export` shows for it).
    pub fn own_host_vars(&self, host: &str) -> Vars {
        let mut vars = self
            .hosts
            .get(host)
            .map(|h| h.vars.clone())
            .unwrap_or_default();
        for dir in &self.inventory_vars {
            if let Some(v) = dir.hosts.get(host) {
                vars.extend(v.clone());
            }
        }
        vars
    }

    /// A group's own variables: the inventory file's, then `group_vars/` beside the inventory.
    pub fn own_group_vars(&self, group: &str) -> Vars {
        let mut vars = self
            .groups
            .get(group)
            .map(|g| g.vars.clone())
            .unwrap_or_default();
        for dir in &self.inventory_vars {
            if let Some(v) = dir.groups.get(group) {
                vars.extend(v.clone());
            }
        }
        vars
    }

    /// The hosts a pattern names, as Ansible's `InventoryManager.get_hosts` does: `all`, `*`,
    /// a group or host, globs, `~regex`, `a:b`/`a,b`, `a:&b`, `a:!b`, subscripts `g[0]`,
    /// `g[1:3]`, `g[-1]`. `localhost` matches even when not in the inventory.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, PatternError> {
        pattern::select(self, pattern)
    }

    /// Checks a `--limit` as ansible-playbook does before anything runs and returns it as a
    /// pattern for [`select`](Self::select): `@file` terms are replaced by the file's lines
    /// (a missing file is an error), an invalid term is an error, and so is a limit that
    /// leaves none of the inventory's hosts (with Ansible's "no hosts to target" message).
    pub fn resolve_limit(&self, limit: &str) -> Result<String, PatternError> {
        pattern::resolve_limit(self, limit)
    }

    /// The terms of a pattern or `--limit` that match no host, for Ansible's warning about each.
    pub fn unmatched_terms(&self, limit: &str) -> Vec<String> {
        pattern::unmatched_terms(self, limit)
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

    /// `ansible-inventory --graph`: the group tree as text. A group shared by several parents
    /// is drawn under each, as Ansible draws it; past [`GRAPH_MAX_LINES`] lines (a deep diamond
    /// doubles them at every level) the graph stops with a note instead of running forever.
    pub fn to_graph(&self, root: &str) -> String {
        let indent = |d: usize| {
            if d == 0 {
                String::new()
            } else {
                format!("{}--", "  |".repeat(d))
            }
        };
        let mut out = String::new();
        let mut lines = 0usize;
        // An explicit stack of (group, depth, groups on the path), drawn in Ansible's order.
        enum Item<'a> {
            Group(&'a str, usize),
            Host(&'a str, usize),
            Leave(&'a str),
        }
        let mut path: HashSet<&str> = HashSet::new();
        let mut stack = vec![Item::Group(root, 0)];
        while let Some(item) = stack.pop() {
            if lines >= GRAPH_MAX_LINES {
                out.push_str(&format!(
                    "... (graph cut at {GRAPH_MAX_LINES} lines: use --list)\n"
                ));
                break;
            }
            match item {
                Item::Leave(name) => {
                    path.remove(name);
                }
                Item::Host(name, depth) => {
                    out.push_str(&format!("{}{}\n", indent(depth), name));
                    lines += 1;
                }
                Item::Group(name, depth) => {
                    out.push_str(&format!("{}@{}:\n", indent(depth), name));
                    lines += 1;
                    let Some(group) = self.groups.get(name) else {
                        continue;
                    };
                    if !path.insert(name) {
                        continue; // a cycle: cannot happen once loaded, but never loop
                    }
                    stack.push(Item::Leave(name));
                    if name != "all" {
                        for host in group.hosts.iter().rev() {
                            stack.push(Item::Host(host, depth + 1));
                        }
                    }
                    for child in group.children.iter().rev() {
                        stack.push(Item::Group(child, depth + 1));
                    }
                }
            }
        }
        out
    }
}

/// The most lines `to_graph` draws.
pub const GRAPH_MAX_LINES: usize = 200_000;

/// An absolute, lexically normalised path (Python's `os.path.abspath`): no symlinks resolved.
fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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

/// A play's `vars_files` entry: a mapping, or (as Ansible's `preprocess_vars` allows there) a
/// list of mappings merged in order.
pub fn load_play_vars_file(path: &Path) -> Result<Vars, InventoryError> {
    let node = settle_yaml::load_file(path)?;
    match node.to_value() {
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let mut vars = Vars::new();
            for item in items {
                if let Value::Object(map) = item {
                    vars.extend(map);
                }
            }
            Ok(vars)
        }
        _ => load_vars_file(path),
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
