//! `ansible.cfg`, found where Ansible finds it, and ranked as Ansible ranks settings: command
//! line > `ANSIBLE_*` environment > file > default.
//!
//! The file's settings are handed on as the `ANSIBLE_*` variables Ansible documents for them
//! (only where the environment does not already set one), so every part of settle reads a
//! setting in one place whichever way the user gave it; the command line is applied on top in
//! `main`. A key settle does not know is a warning that names it, never silence.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file read at start-up, and the environment variables its settings were handed on as.
static FROM_FILE: OnceLock<(PathBuf, Vec<&'static str>)> = OnceLock::new();

/// How `ansible-config` shows a setting's value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
    /// Comma-separated.
    List,
    /// Comma-separated paths.
    PathList,
    /// Colon-separated paths.
    PathSpec,
    Path,
}

/// Ansible's name and type for the settings settle reads (from ansible-core's `base.yml`), by
/// environment variable, for `settle config dump`.
const NAMES: &[(&str, &str, Kind)] = &[
    (
        "ANSIBLE_ALLOW_BROKEN_CONDITIONALS",
        "ALLOW_BROKEN_CONDITIONALS",
        Kind::Bool,
    ),
    ("ANSIBLE_FORCE_COLOR", "ANSIBLE_FORCE_COLOR", Kind::Bool),
    (
        "ANSIBLE_DEPRECATION_WARNINGS",
        "DEPRECATION_WARNINGS",
        Kind::Bool,
    ),
    (
        "ANSIBLE_HASH_BEHAVIOUR",
        "DEFAULT_HASH_BEHAVIOUR",
        Kind::Text,
    ),
    ("ANSIBLE_NOCOLOR", "ANSIBLE_NOCOLOR", Kind::Bool),
    (
        "ANSIBLE_COLLECTIONS_PATH",
        "COLLECTIONS_PATHS",
        Kind::PathSpec,
    ),
    ("ANSIBLE_BECOME", "DEFAULT_BECOME", Kind::Bool),
    (
        "ANSIBLE_BECOME_ASK_PASS",
        "DEFAULT_BECOME_ASK_PASS",
        Kind::Bool,
    ),
    ("ANSIBLE_BECOME_EXE", "DEFAULT_BECOME_EXE", Kind::Text),
    ("ANSIBLE_BECOME_FLAGS", "DEFAULT_BECOME_FLAGS", Kind::Text),
    ("ANSIBLE_BECOME_METHOD", "DEFAULT_BECOME_METHOD", Kind::Text),
    ("ANSIBLE_BECOME_USER", "DEFAULT_BECOME_USER", Kind::Text),
    (
        "ANSIBLE_FORCE_HANDLERS",
        "DEFAULT_FORCE_HANDLERS",
        Kind::Bool,
    ),
    ("ANSIBLE_FORKS", "DEFAULT_FORKS", Kind::Int),
    (
        "ANSIBLE_ERROR_ON_MISSING_HANDLER",
        "ERROR_ON_MISSING_HANDLER",
        Kind::Bool,
    ),
    ("ANSIBLE_INVENTORY", "DEFAULT_HOST_LIST", Kind::PathList),
    (
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED",
        "INVENTORY_ANY_UNPARSED_IS_FAILED",
        Kind::Bool,
    ),
    (
        "ANSIBLE_INVENTORY_UNPARSED_FAILED",
        "INVENTORY_UNPARSED_IS_FAILED",
        Kind::Bool,
    ),
    ("ANSIBLE_LIBRARY", "DEFAULT_MODULE_PATH", Kind::PathSpec),
    (
        "ANSIBLE_MODULE_UTILS",
        "DEFAULT_MODULE_UTILS_PATH",
        Kind::PathSpec,
    ),
    ("ANSIBLE_POLL_INTERVAL", "DEFAULT_POLL_INTERVAL", Kind::Int),
    (
        "ANSIBLE_PRIVATE_KEY_FILE",
        "DEFAULT_PRIVATE_KEY_FILE",
        Kind::Path,
    ),
    ("ANSIBLE_REMOTE_USER", "DEFAULT_REMOTE_USER", Kind::Text),
    ("ANSIBLE_ROLES_PATH", "DEFAULT_ROLES_PATH", Kind::PathSpec),
    ("ANSIBLE_TIMEOUT", "DEFAULT_TIMEOUT", Kind::Int),
    (
        "ANSIBLE_VAULT_IDENTITY_LIST",
        "DEFAULT_VAULT_IDENTITY_LIST",
        Kind::List,
    ),
    (
        "ANSIBLE_VAULT_PASSWORD_FILE",
        "DEFAULT_VAULT_PASSWORD_FILE",
        Kind::Path,
    ),
    ("ANSIBLE_DIFF_ALWAYS", "DIFF_ALWAYS", Kind::Bool),
    ("ANSIBLE_LOCALHOST_WARNING", "LOCALHOST_WARNING", Kind::Bool),
    (
        "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS",
        "TRANSFORM_INVALID_GROUP_CHARS",
        Kind::Text,
    ),
    (
        "ANSIBLE_INVENTORY_UNPARSED_WARNING",
        "INVENTORY_UNPARSED_WARNING",
        Kind::Bool,
    ),
    ("ANSIBLE_DISPLAY_TRACEBACK", "DISPLAY_TRACEBACK", Kind::List),
    (
        "ANSIBLE_DUPLICATE_YAML_DICT_KEY",
        "DUPLICATE_YAML_DICT_KEY",
        Kind::Text,
    ),
    ("ANSIBLE_HOST_KEY_CHECKING", "HOST_KEY_CHECKING", Kind::Bool),
    ("ANSIBLE_SHOW_CUSTOM_STATS", "SHOW_CUSTOM_STATS", Kind::Bool),
];

/// `ansible-config dump --only-changed`: the settings given by the file or the environment,
/// named and shown as `ansible-config` shows them (`DEFAULT_FORKS(/etc/ansible.cfg) = 7`).
/// Settings settle does not read are not listed.
pub fn dump_changed() -> String {
    let (file, from_file) = match FROM_FILE.get() {
        Some((file, envs)) => (Some(file.clone()), envs.as_slice()),
        None => (None, &[][..]),
    };
    let mut out = vec![format!(
        "CONFIG_FILE() = {}",
        file.as_ref()
            .map_or("None".to_string(), |f| f.display().to_string())
    )];
    for (env, name, kind) in NAMES {
        let Some(value) = std::env::var(env).ok() else {
            continue;
        };
        let origin = match &file {
            Some(f) if from_file.contains(env) => f.display().to_string(),
            _ => format!("env: {env}"),
        };
        out.push(format!("{name}({origin}) = {}", shown(&value, *kind)));
    }
    out.push(String::new());
    out.push("GALAXY_SERVERS:".into());
    out.push(String::new());
    out.join("\n")
}

/// A value as Python prints the typed setting.
fn shown(value: &str, kind: Kind) -> String {
    let list = |items: Vec<String>| {
        format!(
            "[{}]",
            items
                .iter()
                .map(|i| format!("'{}'", i.replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let path = |p: &str| {
        let p = p.trim();
        let p = match p.strip_prefix("~/") {
            Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
            None => p.to_string(),
        };
        std::path::absolute(&p)
            .map(|a| a.display().to_string())
            .unwrap_or(p)
    };
    match kind {
        Kind::Text => value.to_string(),
        Kind::Int => value.trim().to_string(),
        Kind::Bool => match env_flag_text(value) {
            Some(true) => "True".into(),
            Some(false) => "False".into(),
            None => value.to_string(),
        },
        Kind::List => list(value.split(',').map(|s| s.trim().to_string()).collect()),
        Kind::PathList => list(value.split(',').map(path).collect()),
        Kind::PathSpec => list(value.split(':').map(path).collect()),
        Kind::Path => path(value),
    }
}

/// A setting: its section and key in `ansible.cfg`, and its environment variable (`None` for a
/// setting settle accepts and has no use for, such as `pipelining`).
struct Setting {
    section: &'static str,
    key: &'static str,
    env: Option<&'static str>,
}

const fn setting(section: &'static str, key: &'static str, env: Option<&'static str>) -> Setting {
    Setting { section, key, env }
}

const SETTINGS: &[Setting] = &[
    setting("defaults", "inventory", Some("ANSIBLE_INVENTORY")),
    setting(
        "inventory",
        "any_unparsed_is_failed",
        Some("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"),
    ),
    setting(
        "inventory",
        "unparsed_is_failed",
        Some("ANSIBLE_INVENTORY_UNPARSED_FAILED"),
    ),
    setting(
        "inventory",
        "enable_plugins",
        Some("ANSIBLE_INVENTORY_ENABLED"),
    ),
    setting(
        "inventory",
        "inventory_unparsed_warning",
        Some("ANSIBLE_INVENTORY_UNPARSED_WARNING"),
    ),
    setting("defaults", "hostfile", Some("ANSIBLE_INVENTORY")),
    setting("defaults", "remote_user", Some("ANSIBLE_REMOTE_USER")),
    setting(
        "defaults",
        "private_key_file",
        Some("ANSIBLE_PRIVATE_KEY_FILE"),
    ),
    setting("defaults", "forks", Some("ANSIBLE_FORKS")),
    setting("defaults", "timeout", Some("ANSIBLE_TIMEOUT")),
    setting(
        "defaults",
        "host_key_checking",
        Some("ANSIBLE_HOST_KEY_CHECKING"),
    ),
    setting("defaults", "roles_path", Some("ANSIBLE_ROLES_PATH")),
    setting(
        "defaults",
        "private_role_vars",
        Some("ANSIBLE_PRIVATE_ROLE_VARS"),
    ),
    setting("defaults", "async_dir", Some("ANSIBLE_ASYNC_DIR")),
    setting("defaults", "poll_interval", Some("ANSIBLE_POLL_INTERVAL")),
    setting(
        "defaults",
        "vault_password_file",
        Some("ANSIBLE_VAULT_PASSWORD_FILE"),
    ),
    setting(
        "defaults",
        "vault_identity_list",
        Some("ANSIBLE_VAULT_IDENTITY_LIST"),
    ),
    setting("defaults", "force_handlers", Some("ANSIBLE_FORCE_HANDLERS")),
    setting("defaults", "no_log", Some("ANSIBLE_NO_LOG")),
    setting(
        "defaults",
        "validate_action_group_metadata",
        Some("ANSIBLE_VALIDATE_ACTION_GROUP_METADATA"),
    ),
    setting(
        "defaults",
        "error_on_missing_handler",
        Some("ANSIBLE_ERROR_ON_MISSING_HANDLER"),
    ),
    setting(
        "defaults",
        "duplicate_dict_key",
        Some("ANSIBLE_DUPLICATE_YAML_DICT_KEY"),
    ),
    setting("defaults", "nocolor", Some("ANSIBLE_NOCOLOR")),
    setting("defaults", "force_color", Some("ANSIBLE_FORCE_COLOR")),
    setting("diff", "always", Some("ANSIBLE_DIFF_ALWAYS")),
    setting("privilege_escalation", "become", Some("ANSIBLE_BECOME")),
    setting(
        "privilege_escalation",
        "become_user",
        Some("ANSIBLE_BECOME_USER"),
    ),
    setting(
        "privilege_escalation",
        "become_method",
        Some("ANSIBLE_BECOME_METHOD"),
    ),
    setting(
        "privilege_escalation",
        "become_exe",
        Some("ANSIBLE_BECOME_EXE"),
    ),
    setting(
        "privilege_escalation",
        "become_flags",
        Some("ANSIBLE_BECOME_FLAGS"),
    ),
    setting(
        "privilege_escalation",
        "become_allow_same_user",
        Some("ANSIBLE_BECOME_ALLOW_SAME_USER"),
    ),
    setting(
        "privilege_escalation",
        "become_ask_pass",
        Some("ANSIBLE_BECOME_ASK_PASS"),
    ),
    setting(
        "defaults",
        "allow_broken_conditionals",
        Some("ANSIBLE_ALLOW_BROKEN_CONDITIONALS"),
    ),
    setting("defaults", "hash_behaviour", Some("ANSIBLE_HASH_BEHAVIOUR")),
    setting(
        "defaults",
        "show_custom_stats",
        Some("ANSIBLE_SHOW_CUSTOM_STATS"),
    ),
    // Where Ansible's own modules are found, for the tasks settle has no module for.
    setting("defaults", "library", Some("ANSIBLE_LIBRARY")),
    setting("defaults", "module_utils", Some("ANSIBLE_MODULE_UTILS")),
    setting(
        "defaults",
        "collections_path",
        Some("ANSIBLE_COLLECTIONS_PATH"),
    ),
    setting(
        "defaults",
        "collections_paths",
        Some("ANSIBLE_COLLECTIONS_PATH"),
    ),
    // Accepted; settle has no use for them (no Python on hosts, no retry files, its own SSH).
    setting("defaults", "interpreter_python", None),
    setting("defaults", "retry_files_enabled", None),
    // The default callback's: results it leaves out.
    setting(
        "defaults",
        "display_ok_hosts",
        Some("ANSIBLE_DISPLAY_OK_HOSTS"),
    ),
    setting(
        "defaults",
        "display_skipped_hosts",
        Some("ANSIBLE_DISPLAY_SKIPPED_HOSTS"),
    ),
    setting(
        "defaults",
        "display_failed_stderr",
        Some("ANSIBLE_DISPLAY_FAILED_STDERR"),
    ),
    setting(
        "defaults",
        "show_task_path_on_failure",
        Some("ANSIBLE_SHOW_TASK_PATH_ON_FAILURE"),
    ),
    setting(
        "defaults",
        "check_mode_markers",
        Some("ANSIBLE_CHECK_MODE_MARKERS"),
    ),
    setting(
        "defaults",
        "callback_result_format",
        Some("ANSIBLE_CALLBACK_RESULT_FORMAT"),
    ),
    setting(
        "defaults",
        "callback_format_pretty",
        Some("ANSIBLE_CALLBACK_FORMAT_PRETTY"),
    ),
    // Read for ad-hoc commands only (the `oneline` callback with `bin_ansible_callbacks`).
    setting(
        "defaults",
        "stdout_callback",
        Some("ANSIBLE_STDOUT_CALLBACK"),
    ),
    setting(
        "defaults",
        "bin_ansible_callbacks",
        Some("ANSIBLE_LOAD_CALLBACK_PLUGINS"),
    ),
    setting("defaults", "callbacks_enabled", None),
    setting("defaults", "callback_whitelist", None),
    setting("defaults", "log_path", None),
    setting("defaults", "gathering", Some("ANSIBLE_GATHERING")),
    setting("defaults", "strategy", Some("ANSIBLE_STRATEGY")),
    setting(
        "defaults",
        "inject_facts_as_vars",
        Some("ANSIBLE_INJECT_FACT_VARS"),
    ),
    setting("defaults", "fact_caching", Some("ANSIBLE_CACHE_PLUGIN")),
    setting(
        "defaults",
        "fact_caching_connection",
        Some("ANSIBLE_CACHE_PLUGIN_CONNECTION"),
    ),
    setting(
        "defaults",
        "fact_caching_prefix",
        Some("ANSIBLE_CACHE_PLUGIN_PREFIX"),
    ),
    setting(
        "defaults",
        "fact_caching_timeout",
        Some("ANSIBLE_CACHE_PLUGIN_TIMEOUT"),
    ),
    setting("defaults", "any_errors_fatal", None),
    setting(
        "defaults",
        "deprecation_warnings",
        Some("ANSIBLE_DEPRECATION_WARNINGS"),
    ),
    // Which events carry tracebacks: Ansible's modules are told (`_ansible_tracebacks_for`).
    setting(
        "defaults",
        "display_traceback",
        Some("ANSIBLE_DISPLAY_TRACEBACK"),
    ),
    setting("defaults", "command_warnings", None),
    setting(
        "defaults",
        "localhost_warning",
        Some("ANSIBLE_LOCALHOST_WARNING"),
    ),
    setting("defaults", "host_pattern_mismatch", None),
    // Group names that could not be variable names: kept or replaced, warned of or not.
    setting(
        "defaults",
        "force_valid_group_names",
        Some("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS"),
    ),
    // How the ssh transport keeps its masters between runs (`ControlPersist`).
    setting("ssh_connection", "ssh_args", Some("ANSIBLE_SSH_ARGS")),
    setting(
        "ssh_connection",
        "control_path",
        Some("ANSIBLE_SSH_CONTROL_PATH"),
    ),
    setting(
        "ssh_connection",
        "control_path_dir",
        Some("ANSIBLE_SSH_CONTROL_PATH_DIR"),
    ),
    setting("ssh_connection", "pipelining", None),
    setting("ssh_connection", "scp_if_ssh", None),
    // The ssh connection plugin's options, handed on for the `config` lookup (settle's own
    // transports read only the ones above).
    setting(
        "ssh_connection",
        "transfer_method",
        Some("ANSIBLE_SSH_TRANSFER_METHOD"),
    ),
    setting(
        "ssh_connection",
        "ssh_common_args",
        Some("ANSIBLE_SSH_COMMON_ARGS"),
    ),
    setting(
        "ssh_connection",
        "ssh_extra_args",
        Some("ANSIBLE_SSH_EXTRA_ARGS"),
    ),
    setting(
        "ssh_connection",
        "scp_extra_args",
        Some("ANSIBLE_SCP_EXTRA_ARGS"),
    ),
    setting(
        "ssh_connection",
        "sftp_extra_args",
        Some("ANSIBLE_SFTP_EXTRA_ARGS"),
    ),
    setting(
        "ssh_connection",
        "ssh_executable",
        Some("ANSIBLE_SSH_EXECUTABLE"),
    ),
    setting(
        "ssh_connection",
        "scp_executable",
        Some("ANSIBLE_SCP_EXECUTABLE"),
    ),
    setting(
        "ssh_connection",
        "sftp_executable",
        Some("ANSIBLE_SFTP_EXECUTABLE"),
    ),
    setting(
        "ssh_connection",
        "sftp_batch_mode",
        Some("ANSIBLE_SFTP_BATCH_MODE"),
    ),
    setting("ssh_connection", "retries", Some("ANSIBLE_SSH_RETRIES")),
    setting("ssh_connection", "usetty", Some("ANSIBLE_SSH_USETTY")),
    setting("ssh_connection", "verbosity", Some("ANSIBLE_SSH_VERBOSITY")),
    setting(
        "ssh_connection",
        "password_mechanism",
        Some("ANSIBLE_SSH_PASSWORD_MECHANISM"),
    ),
    setting(
        "ssh_connection",
        "sshpass_prompt",
        Some("ANSIBLE_SSHPASS_PROMPT"),
    ),
    setting(
        "ssh_connection",
        "pkcs11_provider",
        Some("ANSIBLE_PKCS11_PROVIDER"),
    ),
    setting("connection", "pipelining", None),
];

/// Where Ansible looks for its configuration, first found wins: `ANSIBLE_CONFIG`,
/// `./ansible.cfg`, `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`.
fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ANSIBLE_CONFIG").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        // ANSIBLE_CONFIG may name a folder holding an ansible.cfg.
        let path = if path.is_dir() {
            path.join("ansible.cfg")
        } else {
            path
        };
        return path.is_file().then_some(path);
    }
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".ansible.cfg"));
    [
        Some(PathBuf::from("ansible.cfg")),
        home,
        Some(PathBuf::from("/etc/ansible/ansible.cfg")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// Name, environment variable, section, key, why, version, alternatives.
type DeprecatedSetting = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The settings ansible-core 2.19 deprecates (its `base.yml`): name, environment variable,
/// file section and key, why, the version that removes it, and what to use instead. Ansible
/// says so when one is set, in the environment or the file; settle has no use for them.
const DEPRECATED: &[DeprecatedSetting] = &[
    (
        "ANSIBLE_CONNECTION_PATH",
        Some("ANSIBLE_CONNECTION_PATH"),
        "persistent_connection",
        "ansible_connection_path",
        "This setting has no effect.",
        "2.22",
        "none",
    ),
    (
        "DEFAULT_ALLOW_UNSAFE_LOOKUPS",
        None,
        "defaults",
        "allow_unsafe_lookups",
        "This option is no longer used in the Ansible Core code base.",
        "2.23",
        "Lookup plugins are responsible for tagging strings containing templates to allow evaluation as a template.",
    ),
    (
        "DEFAULT_JINJA2_EXTENSIONS",
        Some("ANSIBLE_JINJA2_EXTENSIONS"),
        "defaults",
        "jinja2_extensions",
        "Jinja2 extensions have been deprecated",
        "2.23",
        "Ansible-supported Jinja plugins (tests, filters, lookups)",
    ),
    (
        "DEFAULT_JINJA2_NATIVE",
        Some("ANSIBLE_JINJA2_NATIVE"),
        "defaults",
        "jinja2_native",
        "This option is no longer used in the Ansible Core code base.",
        "2.23",
        "Jinja2 native mode is now the default and only option.",
    ),
    (
        "DEFAULT_LIBVIRT_LXC_NOSECLABEL",
        Some("ANSIBLE_LIBVIRT_LXC_NOSECLABEL"),
        "selinux",
        "libvirt_lxc_noseclabel",
        "This option was moved to the plugin itself",
        "2.22",
        "Use the option from the plugin itself.",
    ),
    (
        "DEFAULT_MANAGED_STR",
        None,
        "defaults",
        "ansible_managed",
        "The `ansible_managed` variable can be set just like any other variable, or a different variable can be used.",
        "2.23",
        "Set the `ansible_managed` variable, or use any custom variable in templates.",
    ),
    (
        "DEFAULT_NULL_REPRESENTATION",
        Some("ANSIBLE_NULL_REPRESENTATION"),
        "defaults",
        "null_representation",
        "This option is no longer used in the Ansible Core code base.",
        "2.23",
        "There is no alternative at the moment. A different mechanism would have to be implemented in the current code base.",
    ),
    (
        "DEFAULT_UNDEFINED_VAR_BEHAVIOR",
        Some("ANSIBLE_ERROR_ON_UNDEFINED_VARS"),
        "defaults",
        "error_on_undefined_vars",
        "This option is no longer used in the Ansible Core code base.",
        "2.23",
        "There is no alternative at the moment. A different mechanism would have to be implemented in the current code base.",
    ),
    (
        "PARAMIKO_HOST_KEY_AUTO_ADD",
        Some("ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD"),
        "paramiko_connection",
        "host_key_auto_add",
        "This option was moved to the plugin itself",
        "2.20",
        "Use the option from the plugin itself.",
    ),
    (
        "PARAMIKO_LOOK_FOR_KEYS",
        Some("ANSIBLE_PARAMIKO_LOOK_FOR_KEYS"),
        "paramiko_connection",
        "look_for_keys",
        "This option was moved to the plugin itself",
        "2.20",
        "Use the option from the plugin itself.",
    ),
    (
        "STRING_TYPE_FILTERS",
        Some("ANSIBLE_STRING_TYPE_FILTERS"),
        "jinja2",
        "dont_type_filters",
        "This option has no effect.",
        "2.23",
        "None; native types returned from filters are always preserved.",
    ),
];

/// Reads the configuration file, if there is one, and hands its settings on as `ANSIBLE_*`
/// variables where the environment has none; then Ansible's deprecation of each deprecated
/// setting that is set. Returns the file read.
pub fn apply() -> Result<Option<PathBuf>, String> {
    let mut in_file = Vec::new();
    let path = apply_file(&mut in_file)?;
    for (name, env, section, key, why, version, alternatives) in DEPRECATED {
        let set = env.is_some_and(|e| std::env::var_os(e).is_some())
            || in_file.iter().any(|(s, k)| s == section && k == key);
        if set {
            settle_yaml::deprecation::deprecated(
                &format!("{name} option. Reason: {why}\nAlternatives: {alternatives}"),
                version,
                None,
                None,
                None,
            );
        }
    }
    Ok(path)
}

/// [`apply`] for the file; `in_file` gets the deprecated settings it sets.
fn apply_file(in_file: &mut Vec<(String, String)>) -> Result<Option<PathBuf>, String> {
    let Some(path) = find() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut handed_on: Vec<&'static str> = Vec::new();
    for (section, key, value) in parse(&text) {
        let deprecated = DEPRECATED.iter().any(|d| d.2 == section && d.3 == key);
        if deprecated {
            in_file.push((section.clone(), key.clone()));
        }
        let Some(known) = SETTINGS
            .iter()
            .find(|s| s.section == section && s.key == key)
        else {
            if deprecated {
                continue;
            }
            eprintln!(
                "[WARNING]: {}: settle does not know the setting [{section}] {key}; it is ignored",
                path.display()
            );
            continue;
        };
        let Some(env) = known.env else {
            continue;
        };
        if std::env::var_os(env).is_some() {
            continue;
        }
        // Relative paths in the file are relative to the file, as in Ansible.
        let value = match key.as_str() {
            "inventory"
            | "hostfile"
            | "roles_path"
            | "vault_password_file"
            | "private_key_file" => resolve_paths(&value, &base, key == "roles_path"),
            "library" | "module_utils" | "collections_path" | "collections_paths" => {
                resolve_paths(&value, &base, true)
            }
            _ => value,
        };
        // SAFETY: called once at start-up, before any thread (the async runtime included)
        // exists, so nothing reads the environment concurrently.
        unsafe {
            std::env::set_var(env, value);
        }
        handed_on.push(env);
    }
    let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let _ = FROM_FILE.set((absolute, handed_on));
    Ok(Some(path))
}

/// `a,b` (or `a:b` for `roles_path`) with each relative path taken from `base`.
fn resolve_paths(value: &str, base: &Path, colon: bool) -> String {
    let separator = if colon { ':' } else { ',' };
    value
        .split(separator)
        .map(|p| {
            let p = p.trim();
            let expanded = match p.strip_prefix("~/") {
                Some(rest) => std::env::var("HOME")
                    .map(|h| format!("{h}/{rest}"))
                    .unwrap_or_else(|_| p.to_string()),
                None => p.to_string(),
            };
            // Taken from the file's folder when it is there (a bare host name stays a name).
            let joined = base.join(&expanded);
            if expanded.is_empty() || Path::new(&expanded).is_absolute() || !joined.exists() {
                expanded
            } else {
                joined.display().to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

/// `(section, key, value)` of every setting in an INI text, as Python's configparser reads
/// Ansible's file: `#` and `;` comment lines, `key = value` or `key: value`, an inline ` ;`
/// comment, keys in lower case.
fn parse(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::from("defaults");
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let key = line[..at].trim().to_ascii_lowercase();
        let mut value = line[at + 1..].trim();
        if let Some(comment) = value.find(" ;") {
            value = value[..comment].trim_end();
        }
        out.push((section.clone(), key, value.to_string()));
    }
    out
}

/// A boolean setting from the environment, as Ansible reads one (`true`, `yes`, `on`, `1`).
pub fn env_flag(name: &str) -> Option<bool> {
    let value = std::env::var(name).ok()?;
    Some(env_flag_text(&value).unwrap_or(false))
}

/// Ansible's words for a boolean setting; `None` for anything else.
fn env_flag_text(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Some(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

/// A setting from the environment, when it is set and not empty.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_keys_and_comments_as_configparser() {
        let parsed = parse(
            "# comment\n[defaults]\ninventory = hosts.ini ; where\nForks: 10\n\n[privilege_escalation]\nbecome=True\n",
        );
        assert_eq!(
            parsed,
            [
                ("defaults".into(), "inventory".into(), "hosts.ini".into()),
                ("defaults".into(), "forks".into(), "10".into()),
                (
                    "privilege_escalation".into(),
                    "become".into(),
                    "True".into()
                ),
            ]
        );
    }

    #[test]
    fn relative_paths_are_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), "").unwrap();
        let base = dir.path().display().to_string();
        assert_eq!(
            resolve_paths("hosts, /etc/x, web1", dir.path(), false),
            format!("{base}/hosts,/etc/x,web1")
        );
    }
}
