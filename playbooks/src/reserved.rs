//! Variables named like Ansible's keywords or Jinja's globals: Ansible warns about them
//! (`Found variable using reserved name 'q'.`), naming where the key is written.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use settle_yaml::{Kind, Node};

/// Ansible 2.19's reserved names: the attributes of plays, roles, blocks and tasks, and the
/// globals of its Jinja environment (`vars` is left out: Ansible adds it itself).
pub const RESERVED_NAMES: &[&str] = &[
    "action",
    "always",
    "any_errors_fatal",
    "args",
    "async",
    "async_val",
    "become",
    "become_exe",
    "become_flags",
    "become_method",
    "become_user",
    "block",
    "changed_when",
    "check_mode",
    "collections",
    "connection",
    "cycler",
    "debugger",
    "delay",
    "delegate_facts",
    "delegate_to",
    "dict",
    "diff",
    "environment",
    "fact_path",
    "failed_when",
    "force_handlers",
    "gather_facts",
    "gather_timeout",
    "handlers",
    "hosts",
    "ignore_errors",
    "ignore_unreachable",
    "joiner",
    "lipsum",
    "local_action",
    "lookup",
    "loop",
    "loop_control",
    "loop_with",
    "max_fail_percentage",
    "module_defaults",
    "name",
    "namespace",
    "no_log",
    "notify",
    "now",
    "omit",
    "order",
    "poll",
    "port",
    "post_tasks",
    "pre_tasks",
    "q",
    "query",
    "range",
    "register",
    "remote_user",
    "rescue",
    "retries",
    "roles",
    "run_once",
    "serial",
    "strategy",
    "tags",
    "tasks",
    "throttle",
    "timeout",
    "undef",
    "until",
    "vars_files",
    "vars_prompt",
    "when",
    "with_",
];

/// Whether a variable name is one of [`RESERVED_NAMES`].
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// Warns, once per place, about each key of a mapping of variables that is a reserved name.
pub fn warn_reserved_keys(node: &Node, file: &Path) {
    let Kind::Map(map) = &node.kind else {
        return;
    };
    for (key, value) in map {
        if is_reserved(key) {
            let (line, column) = value.key_at.unwrap_or((value.line, value.column));
            warn_once(key, file, line, column);
        }
    }
}

/// The warning, printed once for a name at a place (Ansible's display says a thing once).
pub fn warn_once(name: &str, file: &Path, line: u32, column: u32) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let origin = format!("{}:{line}:{column}", file.display());
    let seen = SEEN.get_or_init(Default::default);
    if let Ok(mut seen) = seen.lock()
        && !seen.insert(format!("{name}@{origin}"))
    {
        return;
    }
    eprintln!("[WARNING]: Found variable using reserved name '{name}'.\nOrigin: {origin}\n");
}

/// [`warn_reserved_keys`] for a vars file (`vars_files`, `include_vars`): its mapping, or each
/// mapping of a list. A file that does not load says nothing here; its loader says why.
pub fn warn_reserved_in_file(path: &Path, names: impl IntoIterator<Item = impl AsRef<str>>) {
    if !names.into_iter().any(|n| is_reserved(n.as_ref())) {
        return;
    }
    let Ok(node) = settle_yaml::load_file(path) else {
        return;
    };
    match &node.kind {
        Kind::Seq(items) => items.iter().for_each(|i| warn_reserved_keys(i, path)),
        _ => warn_reserved_keys(&node, path),
    }
}
