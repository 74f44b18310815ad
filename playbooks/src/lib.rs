//! The playbook language: what a playbook *says*, before anything runs.
//!
//! [`load_playbook`] reads a playbook file (and every file it imports: `import_playbook`,
//! `import_tasks`, roles) into [`Play`]s of [`TaskNode`]s. Each task knows its module, its
//! arguments (still templates: rendering belongs to the engine), its keywords (`when`, `loop`,
//! `notify`, …) and the file, line and column it came from. Keywords of enclosing blocks, imports
//! and roles are already folded into each task ([`Keywords::inherit`]), so a task can be run
//! without looking at its parents; blocks stay blocks only for `rescue` and `always`.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("site.yml");
//! std::fs::write(&path, "- hosts: all\n  tasks:\n    - name: greet\n      ansible.builtin.debug: msg=hi\n").unwrap();
//! let playbook = settle_playbooks::load_playbook(&path).unwrap();
//! let settle_playbooks::TaskNode::Task(task) = &playbook.plays[0].tasks[0] else { panic!() };
//! assert_eq!((task.module.as_str(), task.location.line), ("debug", 3));
//! assert_eq!(task.args["msg"], "hi");
//! ```
//!
//! What this crate does not know: which modules exist and what arguments they take. The engine
//! checks those against the modules crate, so that this stage stays about the language.

// No input reaches a panic: a value that may be missing is an error naming where, not an
// unwrap. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod kv;
mod parse;
pub mod reserved;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
pub use settle_yaml::Location;

pub use kv::parse_kv;
pub use parse::{
    StaticRenderer, TASK_KEYWORDS, collection_routes, condition_origin, load_included_role,
    load_playbook, load_tasks_file, not_found_on_controller, playbook_from_text,
    set_installed_collection_roots, set_static_renderer,
};

/// Variables: names to values (values may be templates).
pub type Vars = Map<String, Value>;

/// A mistake in a playbook, task file or role, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error(transparent)]
    Yaml(#[from] settle_yaml::YamlError),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {}{message}", task.as_ref().map(|t| format!("task {t:?}: ")).unwrap_or_default())]
    Invalid {
        location: Location,
        task: Option<String>,
        message: String,
    },
    /// A task Ansible refuses as it reads it, in its words alone (`Cannot execute 'end_role'
    /// from a handler`); where it is follows as the source excerpt.
    #[error("{message}")]
    Refused { location: Location, message: String },
    /// A role or imported task file that is not there (ansible-playbook exits 1 for these, not
    /// 4 as for a playbook it cannot parse).
    #[error("{location}: {}{message}", task.as_ref().map(|t| format!("task {t:?}: ")).unwrap_or_default())]
    Missing {
        location: Location,
        task: Option<String>,
        message: String,
    },
}

/// A playbook file with every `import_playbook` expanded in place.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// How hosts move through a play's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Every host finishes a task before any host starts the next.
    #[default]
    Linear,
    /// Each host goes through the tasks as fast as it can.
    Free,
}

impl Strategy {
    /// The strategy a play names: `linear`, `free`, `host_pinned` (settle's free already keeps a
    /// host on one worker) and `debug` (linear; settle has no task debugger).
    pub fn named(name: &str) -> Option<Strategy> {
        match name.trim() {
            "linear" | "debug" | "ansible.builtin.linear" | "ansible.builtin.debug" => {
                Some(Strategy::Linear)
            }
            "free" | "host_pinned" | "ansible.builtin.free" | "ansible.builtin.host_pinned" => {
                Some(Strategy::Free)
            }
            _ => None,
        }
    }
}

/// One play: a host pattern and what to do there.
#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub location: Location,
    /// The folder of the file the play is in: `playbook_dir`, and where relative paths start.
    pub dir: PathBuf,
    pub vars: Vars,
    pub vars_files: Vec<Value>,
    /// The roles of `roles:` with their dependencies, each after its dependencies (their
    /// defaults and vars are the play's even when they have no tasks).
    pub roles: Vec<Arc<Role>>,
    /// `gather_facts` as written; `None` when the play does not say (the `gathering` setting
    /// decides then).
    pub gather_facts: Option<bool>,
    /// The `when` of the `import_playbook` that brought the play: its facts are gathered
    /// only on the hosts where it holds.
    pub gather_when: Vec<Value>,
    /// `gather_subset`, `gather_timeout` and `fact_path` as written: the arguments of the
    /// play's fact gathering (templates, rendered for each host).
    pub fact_options: Map<String, Value>,
    pub pre_tasks: Vec<TaskNode>,
    /// Role tasks come first, then the play's own `tasks`.
    pub tasks: Vec<TaskNode>,
    pub post_tasks: Vec<TaskNode>,
    pub handlers: Vec<Task>,
    /// The handlers of roles that `include_role` names plainly: known before the run (a
    /// `notify` of them is no error), but handlers only once the include has run, as in Ansible.
    pub included_role_handlers: Vec<Task>,
    pub serial: Option<Value>,
    /// The strategy as written: a name, or a template rendered when the play starts.
    pub strategy: String,
    /// `order`: how the play's hosts are sorted (`inventory`, `reverse_inventory`, `sorted`,
    /// `reverse_sorted`, `shuffle`).
    pub order: Option<String>,
    pub any_errors_fatal: bool,
    pub max_fail_percentage: Option<f64>,
    /// `force_handlers` as the play writes it: when set, it wins over `--force-handlers`.
    pub force_handlers: Option<bool>,
    pub keywords: Keywords,
}

/// A node of a task list. Tasks and includes are shared: every node of a list is as large as
/// the largest variant, lists are moved as they are built, and each plan of a play holds every
/// task again.
#[derive(Debug, Clone)]
pub enum TaskNode {
    Task(Arc<Task>),
    Block(Block),
    /// `include_tasks`: read and run when reached, once per host (and loop item).
    Include(Arc<Include>),
}

/// `block`, with what runs when it fails (`rescue`) and what runs in any case (`always`).
#[derive(Debug, Clone)]
pub struct Block {
    pub name: Option<String>,
    pub location: Location,
    pub block: Vec<TaskNode>,
    pub rescue: Vec<TaskNode>,
    pub always: Vec<TaskNode>,
}

/// `include_tasks: FILE` (or `include_role`), resolved at run time.
#[derive(Debug, Clone)]
pub struct Include {
    pub name: Option<String>,
    pub location: Location,
    /// The file to include, possibly a template; relative to `base_dir`.
    pub file: Value,
    pub base_dir: PathBuf,
    /// Keywords for the include itself: `when` and `loop` are decided once per host.
    pub keywords: Keywords,
    /// Keywords handed to every included task (`apply:`), plus what the include inherited.
    pub apply: Keywords,
    pub role: Option<Arc<Role>>,
    /// Topics the include answers to when it is a handler (`listen`).
    pub listen: Vec<String>,
    /// `include_role`: `file` is the role's name, and these are the files it reads.
    pub role_include: Option<RoleInclude>,
    /// The include is a handler: the file it reads holds handlers.
    pub handler: bool,
    /// The arguments its registered result shows as `include_args` (as written: all but the
    /// file and `apply`).
    pub args: Vars,
    /// Where the role's name is written, for the error when that role is not found.
    pub name_at: Option<Location>,
}

/// The files an `include_role` reads from the role (`tasks_from`, …; `main` by default).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleInclude {
    pub tasks_from: String,
    pub vars_from: String,
    pub defaults_from: String,
    pub handlers_from: String,
    /// `allow_duplicates` (true unless the include says otherwise, as in Ansible).
    pub allow_duplicates: bool,
    /// `public`: once included, the role's defaults and vars are the play's.
    pub public: bool,
    /// What the include adds to its role's identity ([`Role::instance`]): its own `when` and
    /// `tags`, as for `import_role`, so the two are one role when those match.
    pub identity: String,
    /// `rolespec_validate`: check the role's arguments against its argument specs first.
    pub rolespec_validate: bool,
}

/// One task: a module call with keywords.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    /// The module, without `ansible.builtin.`/`ansible.legacy.`: `copy`, `command`, …
    pub module: String,
    /// The module name as written in the playbook, for messages.
    pub module_as_written: String,
    /// The module's arguments as written (templates not yet rendered). Free-form text, such as a
    /// command line, is in `_raw_params`.
    pub args: Vars,
    pub keywords: Keywords,
    pub location: Location,
    pub role: Option<Arc<Role>>,
    /// Topics a handler answers to besides its name (`listen`).
    pub listen: Vec<String>,
    /// A handler that is an `include_tasks`: the include it runs when notified.
    pub include: Option<Arc<Include>>,
    /// Where each argument's value is written (the whole `key=value` text for those written
    /// so), for messages that point at an argument as Ansible's do.
    pub arg_origins: Arc<Vec<(String, Location)>>,
}

impl Task {
    /// Where the argument `key` is written, when the task was read from a file.
    pub fn arg_origin(&self, key: &str) -> Option<&Location> {
        self.arg_origins
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, at)| at)
    }

    /// The step Ansible adds after a role's tasks (an implicit `meta: role_complete`): hosts
    /// that ran a task of the role have run the role from here on.
    pub fn is_role_complete(&self) -> bool {
        self.module == "meta"
            && self.name.is_none()
            && self.args.get("_raw_params").and_then(Value::as_str) == Some("role_complete")
    }

    /// The name to look the module up by: the full name the `collections` search gave an
    /// unqualified one, else the name as written.
    pub fn lookup_name(&self) -> &str {
        if self.module.split('.').count() >= 3
            && short_module_name(&self.module_as_written) != self.module
        {
            &self.module
        } else {
            &self.module_as_written
        }
    }

    /// The name Ansible shows in `TASK [...]`: `role : name`, or the module when unnamed.
    pub fn display_name(&self) -> String {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| self.module_as_written.clone());
        match &self.role {
            Some(role) => format!("{} : {name}", role.name),
            None => name,
        }
    }

    /// The names a `notify` reaches this handler by: its name and its `listen` topics, and for a
    /// role's handler each of them prefixed `role : `, by the role's name as written and (for a
    /// collection's role, `ns.col.role`) by its short name.
    pub fn handler_names(&self) -> Vec<String> {
        let mut names = self.handler_names_by(false);
        names.extend(self.handler_names_by(true));
        names
    }

    /// The names of [`Task::handler_names`] that come from the handler's name (`listen: false`)
    /// or from its `listen` topics (`listen: true`): a notification by name reaches only the
    /// first handler of that name, one by topic every listener.
    pub fn handler_names_by(&self, listen: bool) -> Vec<String> {
        let own: Vec<&String> = match listen {
            true => self.listen.iter().collect(),
            false => self.name.iter().collect(),
        };
        let mut names: Vec<String> = own.iter().map(|n| n.to_string()).collect();
        if let Some(role) = &self.role {
            let short = role.name.rsplit('.').next().unwrap_or(&role.name);
            let prefixes =
                std::iter::once(role.name.as_str()).chain((short != role.name).then_some(short));
            for prefix in prefixes {
                names.extend(own.iter().map(|n| format!("{prefix} : {n}")));
            }
        }
        names
    }
}

/// A role as used by a play: its variables and where its files are.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    pub defaults: Arc<Vars>,
    pub vars: Arc<Vars>,
    /// `role: x` with extra keys (`vars:` or inline): role parameters, high precedence.
    pub params: Arc<Vars>,
    /// Which use of the role this is: its path, files, parameters, own `when`/`tags`, and
    /// whether an `import_role`/`include_role` made it. Two uses with the same instance are one
    /// role to the play: it runs once per host unless `allow_duplicates`.
    pub instance: String,
    /// `allow_duplicates` of `meta/main.yml` (or of the include that used the role).
    pub allow_duplicates: bool,
    /// Loaded as another role's dependency (`meta/main.yml`).
    pub dependency: bool,
    /// Its defaults and vars are the whole play's, not only its own tasks' (see
    /// [`default_public`]; a dependency is as public as the role that depends on it).
    pub public: bool,
    /// For a role that `import_role`/`include_role` brought in from another role's tasks: that
    /// role, then the one that brought it in, and so on (`ansible_parent_role_names`).
    pub parents: Vec<Arc<Role>>,
    /// The roles whose dependency list or include brought this one in, outermost first
    /// (Ansible's dep chain): a task of this role sees their defaults and vars under its own.
    pub dep_chain: Vec<Arc<Role>>,
    /// This role's dependencies (`meta/main.yml`), each after its own ones, set once read.
    pub dependencies: OnceLock<Vec<Arc<Role>>>,
    /// [`Role::task_defaults`] and [`Role::task_vars`], made on first use.
    pub task_layers: OnceLock<(Arc<Vars>, Arc<Vars>)>,
}

/// Whether a role is public when its use does not say (`public:`): as `private_role_vars`
/// (`ANSIBLE_PRIVATE_ROLE_VARS`) says when it is set, else imports and `roles:` (`static`) are
/// and includes are not, as in Ansible.
pub fn default_public(static_: bool) -> bool {
    match std::env::var("ANSIBLE_PRIVATE_ROLE_VARS") {
        Ok(v) if !v.is_empty() => !matches!(
            v.to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1" | "y" | "t"
        ),
        _ => static_,
    }
}

impl Role {
    /// The role defaults a task of this role sees: its dependencies', its dep chain's, then its
    /// own, each merged over the ones before (Ansible's `Role.get_default_vars(dep_chain)`).
    pub fn task_defaults(&self) -> Arc<Vars> {
        self.layers().0
    }

    /// The role vars a task of this role sees: its dep chain's, its dependencies', then its own
    /// (Ansible's `Role.get_vars(dep_chain)`; parameters are a layer of their own).
    pub fn task_vars(&self) -> Arc<Vars> {
        self.layers().1
    }

    fn layers(&self) -> (Arc<Vars>, Arc<Vars>) {
        self.task_layers
            .get_or_init(|| {
                let deps = self.dependencies.get().map(Vec::as_slice).unwrap_or(&[]);
                let mut defaults = Vars::new();
                let mut vars = Vars::new();
                for parent in &self.dep_chain {
                    vars.extend(parent.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                for dep in deps {
                    defaults.extend(dep.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
                    vars.extend(dep.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                for parent in &self.dep_chain {
                    defaults.extend(parent.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                defaults.extend(self.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
                vars.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                (Arc::new(defaults), Arc::new(vars))
            })
            .clone()
    }
}

/// A loop over items: `loop:` or one of the `with_<lookup>` forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Loop {
    /// `None` for `loop:`; the lookup's name for `with_<lookup>:` (`items`, `dict`, `nested`, …),
    /// whose rendered terms the lookup turns into the items.
    pub lookup: Option<String>,
    pub items: Value,
}

/// `loop_control`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<Value>,
    pub pause: Option<f64>,
    pub extended: bool,
    /// `extended_allitems: false` leaves `ansible_loop.allitems` out (large loops).
    pub extended_allitems: bool,
    /// `break_when`: conditions checked after each item; the loop stops when they all hold.
    pub break_when: Vec<Value>,
}

impl Default for LoopControl {
    fn default() -> Self {
        LoopControl {
            loop_var: None,
            index_var: None,
            label: None,
            pause: None,
            extended: false,
            extended_allitems: true,
            break_when: Vec::new(),
        }
    }
}

/// The task keywords that change how a module call runs. Blocks, imports and roles hand theirs
/// down with [`Keywords::inherit`]. The values most tasks leave unset are boxed: unboxed, the
/// keywords took 2 KB per task, which parsing and planning copied around.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keywords {
    /// All must hold (a block's conditions come before the task's own).
    pub when: Vec<Value>,
    pub loop_: Option<Loop>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub notify: Vec<String>,
    pub tags: Vec<String>,
    pub changed_when: Vec<Value>,
    pub failed_when: Vec<Value>,
    pub ignore_errors: Option<Box<Value>>,
    pub ignore_unreachable: Option<Box<Value>>,
    pub become_: Option<Box<Value>>,
    pub become_user: Option<Box<Value>>,
    pub become_method: Option<String>,
    pub become_exe: Option<Box<Value>>,
    pub become_flags: Option<Box<Value>>,
    pub no_log: Option<Box<Value>>,
    pub delegate_to: Option<Box<Value>>,
    pub delegate_facts: Option<bool>,
    pub run_once: Option<Box<Value>>,
    /// Block vars, then task vars (later wins).
    pub vars: Vars,
    pub environment: Vec<Value>,
    /// `module_defaults` of the play, blocks, role and task, outermost first.
    pub module_defaults: Vec<Vars>,
    pub check_mode: Option<Box<Value>>,
    pub diff: Option<Box<Value>>,
    pub any_errors_fatal: Option<bool>,
    pub until: Vec<Value>,
    pub retries: Option<Box<Value>>,
    pub delay: Option<Box<Value>>,
    pub remote_user: Option<Box<Value>>,
    pub connection: Option<String>,
    pub timeout: Option<Box<Value>>,
    /// `async`: run the module in the background for at most this many seconds. Like `poll`,
    /// the task's own: Ansible hands neither down from blocks (they may not carry them).
    pub async_: Option<Box<Value>>,
    /// `poll`: seconds between looks at an `async` job; 0 leaves it running.
    pub poll: Option<Box<Value>>,
    /// `throttle`: at most this many hosts run the task at once (a template; 0 is no limit).
    pub throttle: Option<Box<Value>>,
    /// `collections`: where an unqualified module name is looked for first (a static list; the
    /// nearest level that sets it wins, and a role starts from its own, not the play's).
    pub collections: Option<Vec<String>>,
}

impl Keywords {
    /// Hands a parent's keywords (block, import, role, play) down to a child: conditions and tags
    /// add up, vars merge under the child's own, and the child's settings win over the parent's.
    pub fn inherit(&mut self, parent: &Keywords) {
        if self.collections.is_none() {
            self.collections = parent.collections.clone();
        }
        let mut when = parent.when.clone();
        when.append(&mut self.when);
        self.when = when;
        for tag in &parent.tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        let mut vars = parent.vars.clone();
        vars.extend(std::mem::take(&mut self.vars));
        self.vars = vars;
        let mut environment = parent.environment.clone();
        environment.append(&mut self.environment);
        self.environment = environment;
        let mut defaults = parent.module_defaults.clone();
        defaults.append(&mut self.module_defaults);
        self.module_defaults = defaults;
        // `notify` on an `import_tasks` (or in an include's `apply`) reaches every task in it.
        for name in &parent.notify {
            if !self.notify.contains(name) {
                self.notify.push(name.clone());
            }
        }
        // `become: '{{ omit }}'` is as if the keyword were not there: the parent's value holds.
        macro_rules! forget_omitted {
            ($($field:ident),*) => { $( if self.$field.as_deref().is_some_and(is_omit) { self.$field = None; } )* };
        }
        forget_omitted!(
            ignore_errors,
            ignore_unreachable,
            become_,
            become_user,
            become_exe,
            become_flags,
            no_log,
            delegate_to,
            run_once,
            check_mode,
            diff,
            remote_user,
            timeout,
            throttle
        );
        macro_rules! inherit_option {
            ($($field:ident),*) => { $( if self.$field.is_none() { self.$field = parent.$field.clone(); } )* };
        }
        inherit_option!(
            throttle,
            ignore_errors,
            ignore_unreachable,
            become_,
            become_user,
            become_method,
            become_exe,
            become_flags,
            no_log,
            delegate_to,
            delegate_facts,
            run_once,
            check_mode,
            diff,
            any_errors_fatal,
            remote_user,
            connection,
            timeout
        );
    }
}

/// A keyword written as `'{{ omit }}'`.
fn is_omit(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.trim()
            .strip_prefix("{{")
            .and_then(|s| s.strip_suffix("}}"))
            .is_some_and(|inner| inner.trim() == "omit")
    })
}

/// Turns `ansible.builtin.copy`, `ansible.legacy.copy` and `copy` into `copy`, and the old
/// short names ansible-core routes to a collection into that module's full name
/// (`authorized_key` is `ansible.posix.authorized_key`).
pub fn short_module_name(name: &str) -> &str {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    COLLECTION_REDIRECTS
        .iter()
        .find(|(old, _)| *old == short)
        .map_or(short, |(_, fqcn)| fqcn)
}

/// ansible-core's `plugin_routing.modules.*.redirect` (config/ansible_builtin_runtime.yml) for
/// the collection modules settle runs itself; other redirects are followed by the fallback
/// that runs Ansible's own module.
const COLLECTION_REDIRECTS: &[(&str, &str)] = &[
    ("authorized_key", "ansible.posix.authorized_key"),
    ("sysctl", "ansible.posix.sysctl"),
    ("mount", "ansible.posix.mount"),
    ("synchronize", "ansible.posix.synchronize"),
    ("timezone", "community.general.timezone"),
    ("locale_gen", "community.general.locale_gen"),
    ("modprobe", "community.general.modprobe"),
    ("make", "community.general.make"),
    ("ufw", "community.general.ufw"),
];

/// Where a role's or play's relative file names are looked up: `base/files/NAME` for
/// `copy`, `base/templates/NAME` for `template`, then `base/NAME`.
pub fn search_paths(kind: &str, task_role: Option<&Role>, play_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(role) = task_role {
        out.push(role.path.join(kind));
        out.push(role.path.join("tasks"));
        out.push(role.path.clone());
    }
    out.push(play_dir.join(kind));
    out.push(play_dir.to_path_buf());
    out
}
