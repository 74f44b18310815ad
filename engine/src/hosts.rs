//! What the run knows about each host: its inventory variables, its facts, the variables tasks
//! gave it (`set_fact`, `register`), its connection, and whether it is still in the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use settle_inventory::Inventory;

use crate::Unpoisoned;
use crate::Vars;
use crate::connection::{Connection, ConnectionError, Target, connect};
use crate::fact_cache::FactCache;
use crate::facts::Facts;
use crate::template::{HostVarsSource, Layer, Scope};

/// One host through the whole run (across plays).
pub struct HostState {
    pub name: String,
    /// The inventory's variables for the host; made anew when `add_host`/`group_by` change it.
    inventory_vars: RwLock<Arc<Vars>>,
    /// The facts modules returned (gathering, `setup`, `*_facts`, `set_fact: cacheable`),
    /// held once: they answer `ansible_facts` and the `ansible_*` names.
    facts: RwLock<Arc<Facts>>,
    /// `set_fact`, `register` and `include_vars` results.
    pub task_vars: RwLock<Arc<Vars>>,
    /// `include_vars` results: variables from files, templates like any vars file.
    pub included_vars: RwLock<Arc<Vars>>,
    /// Registered results of `set_fact` and `include_vars`, which hand back what a person
    /// wrote: templates, with every string they computed wrapped to render as itself (and so
    /// count as untrusted). A name is here or in `task_vars`, never both.
    pub trusted_results: RwLock<Arc<Vars>>,
    /// The connections opened, one per way of reaching the host (a task's own `remote_user`
    /// or `ansible_port` is another login, as in Ansible).
    connection: Mutex<Vec<(Target, Arc<dyn Connection>)>>,
    /// Where the host's facts are kept between runs (`fact_caching = jsonfile`).
    fact_cache: Option<Arc<FactCache>>,
    /// Failed or unreachable: left out of the rest of the run, as in Ansible.
    pub out_of_run: AtomicBool,
}

impl HostState {
    pub fn inventory_vars(&self) -> Arc<Vars> {
        self.inventory_vars.read().unpoisoned().clone()
    }

    /// The host's facts. Before any are gathered `ansible_facts` is still there, empty, as
    /// Ansible always defines it (`when: ansible_facts == {}` is how roles ask whether to
    /// gather).
    pub fn facts(&self) -> Arc<Facts> {
        self.facts.read().unpoisoned().clone()
    }

    pub fn task_vars(&self) -> Arc<Vars> {
        self.task_vars.read().unpoisoned().clone()
    }

    pub fn included_vars(&self) -> Arc<Vars> {
        self.included_vars.read().unpoisoned().clone()
    }

    pub fn set_included_var(&self, name: &str, value: Value) {
        let mut guard = self.included_vars.write().unpoisoned();
        Arc::make_mut(&mut guard).insert(name.to_string(), value);
    }

    pub fn set_task_var(&self, name: &str, value: Value) {
        let mut trusted = self.trusted_results.write().unpoisoned();
        if trusted.contains_key(name) {
            Arc::make_mut(&mut trusted).remove(name);
        }
        let mut guard = self.task_vars.write().unpoisoned();
        Arc::make_mut(&mut guard).insert(name.to_string(), value);
    }

    pub fn trusted_results(&self) -> Arc<Vars> {
        self.trusted_results.read().unpoisoned().clone()
    }

    /// Registers a result whose strings are templates as written (see `trusted_results`).
    pub fn set_trusted_result(&self, name: &str, value: Value) {
        let mut plain = self.task_vars.write().unpoisoned();
        if plain.contains_key(name) {
            Arc::make_mut(&mut plain).remove(name);
        }
        let mut guard = self.trusted_results.write().unpoisoned();
        Arc::make_mut(&mut guard).insert(name.to_string(), value);
    }

    /// Facts a module returned (`ansible_facts` of its result), as Ansible files them: each
    /// under the name it came by, seen as a variable of its own (`ansible_distribution`,
    /// `getent_passwd`) and under `ansible_facts` without its `ansible_` prefix
    /// (`ansible_facts.distribution`); see [`Facts`].
    pub fn set_facts(&self, returned: &serde_json::Map<String, Value>) {
        let mut guard = self.facts.write().unpoisoned();
        let facts = Arc::make_mut(&mut guard);
        facts.set(returned);
        if let Some(cache) = &self.fact_cache {
            cache.store(&self.name, &facts.by_name());
        }
    }

    pub fn clear_facts(&self) {
        *self.facts.write().unpoisoned() = Arc::default();
        if let Some(cache) = &self.fact_cache {
            cache.remove(&self.name);
        }
    }

    /// The host's connection, opened on first use and kept for the run.
    pub fn connection(&self, target: &Target) -> Result<Arc<dyn Connection>, ConnectionError> {
        let mut open = self.connection.lock().unpoisoned();
        if let Some((_, c)) = open.iter().find(|(t, _)| t == target) {
            return Ok(c.clone());
        }
        let c = connect(target)?;
        open.push((target.clone(), c.clone()));
        Ok(c)
    }

    pub fn reset_connection(&self) {
        self.connection.lock().unpoisoned().clear();
    }

    pub fn is_out(&self) -> bool {
        self.out_of_run.load(Ordering::SeqCst)
    }

    pub fn leave_run(&self) {
        self.out_of_run.store(true, Ordering::SeqCst);
    }

    /// `meta: clear_host_errors`: the host takes part in the next plays again.
    pub fn rejoin_run(&self) {
        self.out_of_run.store(false, Ordering::SeqCst);
    }
}

/// Every host the run has touched, created from the inventory on first use.
#[derive(Debug)]
pub struct Hosts {
    /// The inventory as it stands: `add_host` and `group_by` replace it with a changed copy.
    inventory: RwLock<Arc<Inventory>>,
    extra_vars: Arc<Vars>,
    /// Variables every host sees at the top: `groups`, `playbook_dir`, versions, modes.
    pub globals: RwLock<Arc<Vars>>,
    states: RwLock<HashMap<String, Arc<HostState>>>,
    fact_cache: Option<Arc<FactCache>>,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostState({})", self.name)
    }
}

impl Hosts {
    pub fn new(
        inventory: Arc<Inventory>,
        extra_vars: Arc<Vars>,
        globals: Vars,
        fact_cache: Option<FactCache>,
    ) -> Arc<Self> {
        Arc::new(Hosts {
            inventory: RwLock::new(inventory),
            extra_vars,
            globals: RwLock::new(Arc::new(globals)),
            states: RwLock::default(),
            fact_cache: fact_cache.map(Arc::new),
        })
    }

    /// The inventory as it stands now.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.inventory.read().unpoisoned().clone()
    }

    /// Changes the inventory while the run goes (`add_host`, `group_by`): `change` edits a copy
    /// and says whether it changed anything; if so, the copy becomes the inventory, `groups`
    /// follows, and every known host's inventory variables are read again (a new group may
    /// bring `group_vars`). Returns what `change` returned.
    pub fn change_inventory<T>(
        &self,
        change: impl FnOnce(&mut Inventory) -> Result<bool, T>,
    ) -> Result<bool, T> {
        let mut slot = self.inventory.write().unpoisoned();
        let mut copy = Inventory::clone(&slot);
        if !change(&mut copy)? {
            return Ok(false);
        }
        let inventory = Arc::new(copy);
        *slot = inventory.clone();
        // `groups` and the hosts' variables follow while the inventory is still held: two
        // hosts changing it at once (group_by) must not leave the older copy's `groups` last.
        {
            let mut globals = self.globals.write().unpoisoned();
            Arc::make_mut(&mut globals)
                .insert("groups".into(), Value::Object(inventory.groups_var()));
        }
        for state in self.states.read().unpoisoned().values() {
            *state.inventory_vars.write().unpoisoned() = Arc::new(inventory.host_vars(&state.name));
        }
        drop(slot);
        Ok(true)
    }

    /// `meta: refresh_inventory`: the inventory read again from its sources (see
    /// [`Inventory::reloaded`]); `groups` and the hosts' inventory variables follow.
    pub fn refresh_inventory(&self) -> Result<(), String> {
        let jinja = crate::inventory_jinja::InventoryJinja;
        let fresh = self
            .inventory()
            .reloaded(Some(&jinja))
            .map_err(|e| e.to_string())?;
        self.change_inventory(|inventory| {
            *inventory = fresh;
            Ok::<_, String>(true)
        })
        .map(|_| ())
    }

    pub fn extra_vars(&self) -> Arc<Vars> {
        self.extra_vars.clone()
    }

    pub fn get(&self, name: &str) -> Arc<HostState> {
        if let Some(state) = self.states.read().unpoisoned().get(name) {
            return state.clone();
        }
        let mut states = self.states.write().unpoisoned();
        states
            .entry(name.to_string())
            .or_insert_with(|| {
                let state = HostState {
                    name: name.to_string(),
                    inventory_vars: RwLock::new(Arc::new(self.inventory().host_vars(name))),
                    facts: RwLock::default(),
                    task_vars: RwLock::default(),
                    included_vars: RwLock::default(),
                    trusted_results: RwLock::default(),
                    connection: Mutex::new(Vec::new()),
                    fact_cache: self.fact_cache.clone(),
                    out_of_run: AtomicBool::new(false),
                };
                // Facts an earlier run cached are the host's facts from the start.
                if let Some(cached) = self.fact_cache.as_ref().and_then(|c| c.load(name)) {
                    state.set_facts(&cached);
                }
                Arc::new(state)
            })
            .clone()
    }

    /// The per-host magic variables Ansible defines.
    pub fn magic(&self, host: &str) -> Vars {
        let mut m = Vars::new();
        m.insert("inventory_hostname".into(), host.into());
        m.insert(
            "inventory_hostname_short".into(),
            host.split('.').next().unwrap_or(host).into(),
        );
        // `group_names`, `inventory_file`, `inventory_dir`, as the inventory gives them.
        m.extend(self.inventory().magic_vars(host));
        m
    }

    /// A host's variables as `hostvars[host]` shows them to other hosts.
    pub fn scope_of(self: &Arc<Self>, host: &str) -> Arc<Scope> {
        let state = self.get(host);
        let layers = vec![
            Layer::data(self.globals.read().unpoisoned().clone()),
            Layer::template(state.inventory_vars()),
            Layer::facts(state.facts()),
            Layer::template(state.included_vars()),
            Layer::template(state.trusted_results()),
            Layer::data(state.task_vars()),
            Layer::template(self.extra_vars.clone()),
            Layer::data(Arc::new(self.magic(host))),
        ];
        Scope::of_layers(layers, Some(self.clone() as Arc<dyn HostVarsSource>))
    }
}

impl HostVarsSource for Hosts {
    fn scope_for(self: Arc<Self>, host: &str) -> Option<Arc<Scope>> {
        let known = self.inventory().host(host).is_some()
            || self.states.read().unpoisoned().contains_key(host);
        known.then(|| self.scope_of(host))
    }

    fn host_names(&self) -> Vec<String> {
        self.inventory().hosts().map(|h| h.name.clone()).collect()
    }
}
