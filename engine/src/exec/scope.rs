//! What a task sees: the layers of variables for one task on one host (play vars, vars_files,
//! role vars, task vars, magic variables), and the registered result for `until`/`changed_when`.

use std::sync::Arc;

use serde_json::{Map, Value};
use settle_playbooks::Task;

use super::{PlayRun, absolute};
use crate::Unpoisoned;
use crate::Vars;
use crate::hosts::HostState;
use crate::template::{Layer, Scope, templar};

pub(super) fn register_scope(
    task: &Task,
    scope: &Arc<Scope>,
    result: &Map<String, Value>,
) -> Arc<Scope> {
    match &task.keywords.register {
        Some(name) => {
            let mut layer = Vars::new();
            let mut clean = result.clone();
            clean.retain(|k, _| !k.starts_with('_'));
            layer.insert(name.clone(), Value::Object(clean));
            scope.with_data(Arc::new(layer))
        }
        None => scope.clone(),
    }
}

/// A host's `vars_files`, as far as they could be read so far.
pub(super) struct HostVarsFiles {
    pub vars: Arc<Vars>,
    /// An item named a variable the host does not have yet (a fact, before gathering): it is
    /// read again when a task next asks, as Ansible reads a play's vars_files for every task.
    pub pending: bool,
}

/// Reads a play's `vars_files` as Ansible 2.19 does: an item is a file or a list of files of
/// which the first that exists is read; one that exists nowhere is left out without a word; one
/// whose name needs an undefined variable is left out and handed to `undefined` (with the item);
/// a file that cannot be read ends the run: the message and the exit code (4 for YAML that
/// does not parse, as Ansible's parser error; 1 otherwise).
pub(super) fn read_vars_files(
    play: &settle_playbooks::Play,
    scope: &Arc<Scope>,
    undefined: &mut dyn FnMut(&Value),
) -> Result<Vars, (String, u8)> {
    let mut vars = Vars::new();
    'items: for entry in &play.vars_files {
        let candidates: Vec<Value> = match entry {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for candidate in &candidates {
            let name = match templar().render_text(candidate.as_str().unwrap_or(""), scope) {
                Ok(name) => name,
                Err(e) if e.undefined_message().is_some() => {
                    undefined(entry);
                    continue 'items;
                }
                Err(e) => return Err((format!("vars_files: {}", e.message), 1)),
            };
            let path = play.dir.join(&name);
            if !path.is_file() {
                continue;
            }
            let file_vars = settle_inventory::load_play_vars_file(&path).map_err(|e| {
                let code = match e {
                    settle_inventory::InventoryError::Yaml(_)
                    | settle_inventory::InventoryError::Parse { .. } => 4,
                    _ => 1,
                };
                (e.to_string(), code)
            })?;
            settle_playbooks::reserved::warn_reserved_in_file(&path, file_vars.keys());
            settle_inventory::combine_vars(&mut vars, file_vars);
            continue 'items;
        }
    }
    Ok(vars)
}

impl PlayRun<'_> {
    /// A host's `vars_files`, read with its variables and facts.
    pub(super) fn load_vars_files(&self, host: &str) -> Result<HostVarsFiles, (String, u8)> {
        if self.play.vars_files.is_empty() {
            return Ok(HostVarsFiles {
                vars: Arc::new(Vars::new()),
                pending: false,
            });
        }
        let state = self.engine.hosts.get(host);
        let scope = Scope::of_layers(
            vec![
                Layer::template(state.inventory_vars()),
                Layer::facts(state.facts()),
                Layer::template(self.play_vars.clone()),
                Layer::template(self.engine.hosts.extra_vars()),
                Layer::data(Arc::new(self.engine.hosts.magic(host))),
            ],
            None,
        );
        let mut pending = false;
        let vars = read_vars_files(self.play, &scope, &mut |_| pending = true)?;
        Ok(HostVarsFiles {
            vars: Arc::new(vars),
            pending,
        })
    }

    /// The vars_files layer of a host's scope; an item left out for an undefined variable is
    /// tried again first (a fact gathered since may name its file now).
    pub(super) fn vars_files_of(&self, host: &str) -> Option<Arc<Vars>> {
        let mut all = self.vars_files.lock().unpoisoned();
        let entry = all.get_mut(host)?;
        if entry.pending {
            match self.load_vars_files(host) {
                Ok(again) => *entry = again,
                Err((message, code)) => {
                    entry.pending = false;
                    self.engine.abort_run(&message, None, code);
                }
            }
        }
        Some(entry.vars.clone())
    }

    /// A host's own magic variables (`inventory_hostname`, `group_names`, …), kept per host.
    pub(super) fn magic(&self, host: &str) -> Arc<Vars> {
        if let Some(m) = self.magic.lock().unpoisoned().get(host) {
            return m.clone();
        }
        let m = Arc::new(self.engine.hosts.magic(host));
        self.magic
            .lock()
            .unpoisoned()
            .insert(host.to_string(), m.clone());
        m
    }

    /// The play's magic variables, the same for every host: one copy shared by all of them, so
    /// memory grows with the hosts, not with their square (each host list is as long as the play).
    pub(super) fn play_magic(&self) -> Arc<Vars> {
        if let Some(m) = &*self.play_magic.lock().unpoisoned() {
            return m.clone();
        }
        let mut m = Vars::new();
        // ansible_play_hosts and ansible_play_batch leave out the hosts that failed or were
        // unreachable; ansible_play_hosts_all keeps every host the play started with.
        let failed = self.failed_hosts.lock().unpoisoned().clone();
        let active = |hosts: &[String]| -> Value {
            hosts
                .iter()
                .filter(|h| !failed.contains(*h))
                .cloned()
                .collect::<Vec<_>>()
                .into()
        };
        let play_hosts = active(&self.play_hosts_all);
        m.insert("play_hosts".into(), play_hosts.clone());
        m.insert("ansible_play_hosts".into(), play_hosts);
        m.insert(
            "ansible_play_batch".into(),
            active(&self.batch.lock().unpoisoned()),
        );
        m.insert(
            "ansible_play_hosts_all".into(),
            Value::from(self.play_hosts_all.clone()),
        );
        m.insert("ansible_play_name".into(), self.play.name.clone().into());
        // The roles of `roles:` and their dependencies, by name, as Ansible lists them.
        let mut play_roles: Vec<String> = Vec::new();
        let mut dependent: Vec<String> = Vec::new();
        for role in &self.play.roles {
            let list = if role.dependency {
                &mut dependent
            } else {
                &mut play_roles
            };
            if !list.contains(&role.name) {
                list.push(role.name.clone());
            }
        }
        let mut all = dependent.clone();
        all.extend(
            play_roles
                .iter()
                .filter(|r| !dependent.contains(r))
                .cloned(),
        );
        m.insert("role_names".into(), play_roles.clone().into());
        m.insert("ansible_play_role_names".into(), play_roles.into());
        m.insert("ansible_dependent_role_names".into(), dependent.into());
        m.insert("ansible_role_names".into(), all.into());
        m.insert("playbook_dir".into(), absolute(&self.play.dir).into());
        let m = Arc::new(m);
        *self.play_magic.lock().unpoisoned() = Some(m.clone());
        m
    }

    /// The play's host lists changed (a new batch, hosts that failed): made anew when next used.
    pub(super) fn forget_play_magic(&self) {
        *self.play_magic.lock().unpoisoned() = None;
    }

    /// The variables the play's fact gathering sees on a host: the play's, without a task's.
    pub(super) fn fact_scope(&self, host: &HostState) -> Arc<Scope> {
        let hosts = &self.engine.hosts;
        let mut layers = vec![
            Layer::data(hosts.globals.read().unpoisoned().clone()),
            Layer::template(self.role_defaults.lock().unpoisoned().clone()),
            Layer::template(host.inventory_vars()),
            Layer::facts(host.facts()),
            Layer::template(self.play_vars.clone()),
        ];
        if let Some(vf) = self.vars_files_of(&host.name) {
            layers.push(Layer::template(vf));
        }
        layers.extend([
            Layer::template(self.role_vars.lock().unpoisoned().clone()),
            Layer::template(host.included_vars()),
            Layer::template(host.trusted_results()),
            Layer::data(host.task_vars()),
            Layer::template(hosts.extra_vars()),
            Layer::data(self.play_magic()),
            Layer::data(self.magic(&host.name)),
        ]);
        Scope::of_layers(layers, Some(hosts.clone()))
    }

    /// The variables a task sees on a host, lowest precedence first.
    pub(super) fn scope(&self, host: &HostState, task: &Task, extra: &[Layer]) -> Arc<Scope> {
        let hosts = &self.engine.hosts;
        let mut layers = Vec::with_capacity(16);
        layers.push(Layer::data(hosts.globals.read().unpoisoned().clone()));
        // Ansible's PlayContext fills in the connection's variables a task's vars lack: the
        // address is the inventory name when nothing sets `ansible_host`.
        let mut connection = Vars::new();
        connection.insert("ansible_host".into(), host.name.clone().into());
        layers.push(Layer::data(Arc::new(connection)));
        // Every role's defaults and vars are the play's; the task's own role wins over others.
        layers.push(Layer::template(
            self.role_defaults.lock().unpoisoned().clone(),
        ));
        // A role's defaults and vars come with those of the roles that brought it in (its
        // dependency chain, outermost first), as Ansible's `get_default_vars(dep_chain)`.
        if let Some(role) = &task.role {
            layers.push(Layer::template(role.task_defaults()));
        }
        layers.push(Layer::template(host.inventory_vars()));
        layers.push(Layer::facts(host.facts()));
        layers.push(Layer::template(self.play_vars.clone()));
        if let Some(vf) = self.vars_files_of(&host.name) {
            layers.push(Layer::template(vf));
        }
        layers.push(Layer::template(self.role_vars.lock().unpoisoned().clone()));
        if let Some(role) = &task.role {
            layers.push(Layer::template(role.task_vars()));
        }
        if !task.keywords.vars.is_empty() {
            layers.push(Layer::template(Arc::new(task.keywords.vars.clone())));
        }
        layers.push(Layer::template(host.included_vars()));
        layers.push(Layer::template(host.trusted_results()));
        layers.push(Layer::data(host.task_vars()));
        if let Some(role) = &task.role {
            layers.push(Layer::template(role.params.clone()));
        }
        // Include params (an include's `vars:`, its loop item) rank above set_fact and role
        // params, below extra vars, as in Ansible's precedence list.
        layers.extend(extra.iter().cloned());
        layers.push(Layer::template(hosts.extra_vars()));
        layers.push(Layer::data(self.play_magic()));
        layers.push(Layer::data(self.magic(&host.name)));
        layers.push(Layer::data(Arc::new(self.task_magic(task))));
        Scope::of_layers(layers, Some(hosts.clone()))
    }

    /// The magic variables of the task itself: its role, and `ansible_search_path` (the role,
    /// the folder of the task's file, the playbook's folder), where lookups and relative paths
    /// are searched, as Ansible's `Task.get_search_path` lists them.
    fn task_magic(&self, task: &Task) -> Vars {
        let mut magic = Vars::new();
        let mut search: Vec<String> = Vec::new();
        if let Some(role) = &task.role {
            let role_path = absolute(&role.path);
            magic.insert("role_name".into(), role.name.clone().into());
            magic.insert("role_path".into(), role_path.clone().into());
            if !role.parents.is_empty() {
                let names: Vec<String> = role.parents.iter().map(|r| r.name.clone()).collect();
                let paths: Vec<String> = role.parents.iter().map(|r| absolute(&r.path)).collect();
                magic.insert("ansible_parent_role_names".into(), names.into());
                magic.insert("ansible_parent_role_paths".into(), paths.into());
            }
            search.push(role_path);
        }
        if let Some(dir) = task.location.file.parent() {
            let dir = absolute(if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            });
            if !search.contains(&dir) {
                search.push(dir);
            }
        }
        let play_dir = absolute(&self.play.dir);
        if !search.contains(&play_dir) {
            search.push(play_dir);
        }
        magic.insert("ansible_search_path".into(), search.into());
        magic
    }
}
