//! The resource modules: each reads the host's current state, says what differs from what the
//! task wants, and changes only that.
//!
//! This crate runs *on the managed host* (in-process for the local connection, inside the agent
//! over SSH) and touches only that host's system: files, processes, users. It knows nothing of
//! playbooks, variables or other hosts. The engine hands it a [`Request`] with arguments already
//! rendered, and gets back an [`Outcome`].
//!
//! Every resource module has the same small life (see [`resource::Resource`]): `check` reads the
//! host and returns a [`Plan`] of differences; in check mode that plan is the answer, otherwise
//! `apply` makes exactly those changes. One code path, so a dry run cannot disagree with a real
//! one.
//!
//! ```
//! use settle_modules::{run, Request};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("motd");
//! let args = serde_json::json!({"dest": path, "content": "hello\n"});
//! let mut request = Request::new("copy", args.as_object().unwrap().clone());
//! request.check_mode = true;
//! let outcome = run(&request);
//! assert!(outcome.changed && !path.exists()); // predicted, not done
//! request.check_mode = false;
//! assert!(run(&request).changed);
//! assert!(!run(&request).changed); // idempotent
//! ```

// Input from a task or a host must never panic a module: handle the error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod accounts;
pub mod agent;
pub mod ansible_module;
mod apt_key;
mod apt_repository;
mod args;
mod assemble;
pub mod async_job;
mod authorized_key;
mod backup;
mod bin_path;
pub mod children;
pub(crate) mod clock;
mod command;
mod copy;
mod cron;
mod deb822_repository;
mod debconf;
mod dnf;
mod dpkg_selections;
mod expect;
mod fetch;
mod file;
mod find;
mod fsutil;
mod get_url;
mod getent;
mod git;
mod hardware;
mod hostname;
mod iptables;
mod known_hosts;
mod local_facts;
mod locale_gen;
mod make;
mod mktemp;
mod modprobe;
mod mount;
mod mount_facts;
mod netlink;
mod network_facts;
mod package_facts;
mod packages;
mod ping;
mod pip;
mod process;
pub mod pyre;
mod replace;
mod resource;
pub mod script;
mod service_facts;
mod setup;
mod slurp;
mod stat;
mod sysctl;
mod system_facts;
mod systemd;
mod sysv_service;
mod textedit;
mod timezone;
pub mod transfer;
mod ufw;
mod unarchive;
mod uri;
mod urls;
mod wait_for;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use ansible_module::{ModulePayload, ModuleStyle};
pub use args::{Mode, parse_mode};
pub use assemble::{Fragments, assemble_fragments};
pub use async_job::AsyncJob;
pub use hostname::fqdn;
pub use resource::{Change, ContentDiff, Plan};

/// One module call: the module's name and its arguments, with templates already rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub module: String,
    pub args: Map<String, Value>,
    /// Report what would change, change nothing.
    pub check_mode: bool,
    /// Compute content diffs for people to read (costs a file read).
    pub diff: bool,
    /// Environment variables for commands the module runs (`environment:`).
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
    /// The task's `timeout:` in seconds: a command still running then is killed, with its
    /// children, and the task fails as timed out.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `async`: start the call as a background job and answer at once with its id.
    #[serde(default)]
    pub async_job: Option<AsyncJob>,
    /// Ansible's own module for a task settle has none for: run it instead of one of ours.
    #[serde(default)]
    pub ansible_module: Option<ModulePayload>,
}

impl Request {
    pub fn new(module: &str, args: Map<String, Value>) -> Self {
        Request {
            module: module.to_string(),
            args,
            check_mode: false,
            diff: false,
            environment: Default::default(),
            timeout: None,
            async_job: None,
            ansible_module: None,
        }
    }
}

/// What a module call did (or, in check mode, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    /// The differences found (and, unless in check mode, fixed).
    pub plan: Plan,
    /// Module-specific return values (`rc`, `stdout`, `path`, `mode`, `stat`, …).
    pub values: Map<String, Value>,
    /// The call failed on its arguments, before looking at the host: the playbook's mistake.
    #[serde(default)]
    pub bad_arguments: bool,
}

impl Outcome {
    pub fn failed(msg: impl Into<String>) -> Self {
        Outcome {
            failed: true,
            msg: Some(msg.into()),
            ..Outcome::default()
        }
    }

    /// Puts `changed`, `failed`, `skipped` (when true) and `msg` into a task's result, as
    /// Ansible's result dictionary has them.
    pub fn status_into(&self, result: &mut Map<String, Value>) {
        result.insert("changed".into(), self.changed.into());
        result.insert("failed".into(), self.failed.into());
        if self.skipped {
            result.insert("skipped".into(), true.into());
        }
        if let Some(msg) = &self.msg {
            result.insert("msg".into(), msg.clone().into());
        }
    }
}

/// A module call that could not be carried out, with a message for people.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{0}")]
    Args(String),
    #[error("{0}")]
    Failed(String),
    /// A failure that returns values besides its message (Ansible's `fail_json(msg=…, path=…)`).
    #[error("{msg}")]
    FailedWith {
        msg: String,
        values: Map<String, Value>,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ModuleError {
    /// A failure with return values: `("path", "/x")`, … as strings.
    pub(crate) fn with(msg: impl Into<String>, values: &[(&str, &str)]) -> Self {
        ModuleError::FailedWith {
            msg: msg.into(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        }
    }

    /// A failure with Ansible's `rc` beside its message (`fail_json(rc=257, msg=…)`).
    pub(crate) fn with_rc(msg: impl Into<String>, rc: i64) -> Self {
        ModuleError::FailedWith {
            msg: msg.into(),
            values: Map::from_iter([("rc".to_string(), Value::from(rc))]),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ModuleError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What the engine needs to know of a module before running it: the arguments it takes.
#[derive(Debug)]
pub struct ModuleSpec {
    pub name: &'static str,
    /// Arguments settle implements (aliases included).
    pub args: &'static [&'static str],
    /// Arguments Ansible's module has that settle does not implement: an error, never ignored.
    pub unsupported: &'static [&'static str],
    /// Whether the module takes free-form text (`command: ls -l`).
    pub free_form: bool,
}

/// The common file arguments of every module that writes a file: chattr flags and the SELinux
/// context. Flags are set by [`fsutil::check_file_flags`]/[`fsutil::apply_file_flags`]; the
/// SELinux ones are handled for every module at once by [`selinux_context`].
pub const FILE_ATTRIBUTES: &[&str] = &[
    "attributes",
    "attr",
    "seuser",
    "serole",
    "setype",
    "selevel",
];

/// The SELinux file context arguments (`seuser`, `serole`, `setype`, `selevel`).
const SELINUX_CONTEXT: &[&str] = &["seuser", "serole", "setype", "selevel"];

/// Whether SELinux is on, as libselinux's `is_selinux_enabled` sees it: its file system is
/// mounted under `root` (`/sys/fs/selinux`) and says whether it enforces.
fn selinux_enabled_at(root: &std::path::Path) -> bool {
    std::fs::read_to_string(root.join("enforce")).is_ok()
}

/// The SELinux context arguments of a module that writes files. Where SELinux is off (no
/// selinuxfs: most Debian hosts), Ansible's `set_context_if_different` does nothing and reports
/// nothing, so they are dropped here; where it is on, settle cannot set a context and says so
/// by name rather than pretend. (`user`'s `seuser` is useradd's `-Z`, not a file context: only
/// modules that take `setype` are concerned.)
fn selinux_context(request: &Request) -> Result<std::borrow::Cow<'_, Request>, ModuleError> {
    selinux_context_at(request, std::path::Path::new("/sys/fs/selinux"))
}

fn selinux_context_at<'r>(
    request: &'r Request,
    root: &std::path::Path,
) -> Result<std::borrow::Cow<'r, Request>, ModuleError> {
    let takes = spec(&request.module).is_some_and(|s| s.args.contains(&"setype"));
    let given: Vec<&str> = SELINUX_CONTEXT
        .iter()
        .copied()
        .filter(|k| request.args.contains_key(*k))
        .collect();
    if !takes || given.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(request));
    }
    if let Some(named) = given
        .iter()
        .find(|k| !request.args[**k].is_null())
        .filter(|_| selinux_enabled_at(root))
    {
        return Err(ModuleError::Failed(format!(
            "{}: the argument {named} is not supported by settle on a host with SELinux enabled",
            request.module
        )));
    }
    let mut request = request.clone();
    for key in given {
        request.args.remove(key);
    }
    Ok(std::borrow::Cow::Owned(request))
}

/// The modules this crate runs on hosts.
pub static MODULES: &[&ModuleSpec] = &[
    &file::SPEC,
    &copy::SPEC,
    &command::COMMAND_SPEC,
    &command::SHELL_SPEC,
    &command::RAW_SPEC,
    &stat::SPEC,
    &ping::SPEC,
    &setup::SPEC,
    &accounts::USER_SPEC,
    &accounts::GROUP_SPEC,
    &packages::APT_SPEC,
    &packages::PACKAGE_SPEC,
    &dnf::DNF_SPEC,
    &systemd::SYSTEMD_SPEC,
    &systemd::SYSTEMD_SERVICE_SPEC,
    &systemd::SERVICE_SPEC,
    &textedit::LINEINFILE_SPEC,
    &textedit::BLOCKINFILE_SPEC,
    &wait_for::SPEC,
    &backup::SPEC,
    &git::SPEC,
    &replace::SPEC,
    &find::SPEC,
    &slurp::SPEC,
    &fetch::SPEC,
    &script::SPEC,
    &mktemp::SPEC,
    &assemble::SPEC,
    &cron::SPEC,
    &known_hosts::SPEC,
    &hostname::SPEC,
    &getent::SPEC,
    &async_job::STATUS_SPEC,
    // From collections, by their full names.
    &authorized_key::SPEC,
    &sysctl::SPEC,
    &mount::SPEC,
    &timezone::SPEC,
    &locale_gen::SPEC,
    &modprobe::SPEC,
    &make::SPEC,
    &service_facts::SPEC,
    &package_facts::SPEC,
    &mount_facts::SPEC,
    &pip::SPEC,
    &apt_repository::SPEC,
    &deb822_repository::SPEC,
    &apt_key::SPEC,
    &dpkg_selections::SPEC,
    &debconf::SPEC,
    &get_url::SPEC,
    &uri::SPEC,
    &unarchive::SPEC,
    &iptables::SPEC,
    &ufw::SPEC,
    &expect::SPEC,
];

/// The spec of a host-side module, by short name.
pub fn spec(name: &str) -> Option<&'static ModuleSpec> {
    MODULES.iter().copied().find(|m| m.name == name)
}

/// Ansible's `env_fallback`s of the common file arguments: `unsafe_writes` not given is
/// `ANSIBLE_UNSAFE_WRITES` from the task's `environment:` or the host's.
fn with_env_fallbacks(request: &Request) -> std::borrow::Cow<'_, Request> {
    let takes = spec(&request.module).is_some_and(|s| s.args.contains(&"unsafe_writes"));
    if !takes || request.args.contains_key("unsafe_writes") {
        return std::borrow::Cow::Borrowed(request);
    }
    let value = request
        .environment
        .get("ANSIBLE_UNSAFE_WRITES")
        .cloned()
        .or_else(|| std::env::var("ANSIBLE_UNSAFE_WRITES").ok())
        .filter(|v| !v.is_empty());
    let Some(value) = value else {
        return std::borrow::Cow::Borrowed(request);
    };
    let mut request = request.clone();
    request.args.insert("unsafe_writes".into(), value.into());
    std::borrow::Cow::Owned(request)
}

/// Runs one module call on this machine, with `stdout_lines`/`stderr_lines` split from its
/// output as Ansible's controller adds them.
pub fn run(request: &Request) -> Outcome {
    let mut outcome = run_without_lines(request);
    add_output_lines(&mut outcome.values);
    outcome
}

/// Runs one module call on this machine, without the `stdout_lines`/`stderr_lines` that
/// [`run`] adds: the agent sends a result so, and the controller splits the lines from the text
/// it received ([`add_output_lines`]), so they neither travel nor are held twice on the host.
pub(crate) fn run_without_lines(request: &Request) -> Outcome {
    let request = &*with_env_fallbacks(request);
    let request = &*match selinux_context(request) {
        Ok(request) => request,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    // Modules that read a file, change it and write it back take turns on its folder, so two
    // runs editing one file at once do not lose each other's edits.
    let file_keys: &[&str] = match request.module.as_str() {
        "lineinfile" | "blockinfile" | "replace" => &["path", "dest", "destfile", "name"],
        // `name` is a host for known_hosts and a job for cron, never the file.
        "known_hosts" => &["path"],
        "cron" => &["cron_file"],
        _ => &[],
    };
    let _turn = file_keys
        .iter()
        .find_map(|k| request.args.get(*k).and_then(serde_json::Value::as_str))
        .and_then(|p| fsutil::lock_folder_of(std::path::Path::new(p)));
    let result = match request.module.as_str() {
        _ if request.async_job.is_some() => async_job::launch(request),
        _ if let Some(payload) = &request.ansible_module => ansible_module::run(request, payload),
        "file" => resource::run::<file::File>(request),
        "copy" => resource::run::<copy::Copy>(request),
        "command" => command::run(request, false),
        "shell" => command::run(request, true),
        "raw" => command::run_raw(request),
        "stat" => stat::run(request),
        "ping" => ping::run(request),
        "setup" => setup::run(request),
        "user" => resource::run::<accounts::User>(request),
        "group" => resource::run::<accounts::Group>(request),
        "apt" => resource::run::<packages::Apt>(request),
        "package" => resource::run::<packages::Package>(request),
        "dnf" => resource::run::<dnf::Dnf>(request),
        "service" if sysv_service::applies(&request.args) => {
            resource::run::<sysv_service::SysvService>(request)
        }
        "systemd" | "systemd_service" | "service" => resource::run::<systemd::Systemd>(request),
        "lineinfile" => resource::run::<textedit::LineInFile>(request),
        "blockinfile" => resource::run::<textedit::BlockInFile>(request),
        "wait_for" => wait_for::run(request),
        "backup" => resource::run::<backup::Backup>(request),
        "git" => resource::run::<git::Git>(request),
        "replace" => resource::run::<replace::Replace>(request),
        "find" => find::run(request),
        "slurp" => slurp::run(request),
        "fetch" => fetch::run(request),
        "script" => script::run(request),
        "tempfile" => mktemp::run(request),
        "assemble" => resource::run::<assemble::Assemble>(request),
        "cron" => resource::run::<cron::Cron>(request),
        "known_hosts" => resource::run::<known_hosts::KnownHosts>(request),
        "hostname" => resource::run::<hostname::Hostname>(request),
        "getent" => getent::run(request),
        "async_status" => async_job::status(request),
        "ansible.posix.authorized_key" => resource::run::<authorized_key::AuthorizedKey>(request),
        "ansible.posix.sysctl" => resource::run::<sysctl::Sysctl>(request),
        "ansible.posix.mount" => resource::run::<mount::Mount>(request),
        "community.general.timezone" => resource::run::<timezone::Timezone>(request),
        "community.general.locale_gen" => resource::run::<locale_gen::LocaleGen>(request),
        "community.general.modprobe" => resource::run::<modprobe::Modprobe>(request),
        "community.general.make" => resource::run::<make::Make>(request),
        "service_facts" => service_facts::run(request),
        "package_facts" => package_facts::run(request),
        "mount_facts" => mount_facts::run(request),
        "pip" => resource::run::<pip::Pip>(request),
        "apt_repository" => resource::run::<apt_repository::AptRepository>(request),
        "deb822_repository" => resource::run::<deb822_repository::Deb822Repository>(request),
        "apt_key" => resource::run::<apt_key::AptKey>(request),
        "dpkg_selections" => resource::run::<dpkg_selections::DpkgSelections>(request),
        "debconf" => resource::run::<debconf::Debconf>(request),
        "_put" => transfer::put(request),
        "_get" => transfer::get(request),
        "get_url" => resource::run::<get_url::GetUrl>(request),
        "uri" => uri::run(request),
        "unarchive" => unarchive::run(request),
        "iptables" => resource::run::<iptables::Iptables>(request),
        "community.general.ufw" => resource::run::<ufw::Ufw>(request),
        "expect" => expect::run(request),
        other => Err(ModuleError::Args(format!(
            "settle has no module named {other:?} on the host"
        ))),
    };
    result.unwrap_or_else(|e| match e {
        ModuleError::FailedWith { msg, values } => Outcome {
            values,
            ..Outcome::failed(msg)
        },
        e => Outcome {
            bad_arguments: matches!(e, ModuleError::Args(_)),
            ..Outcome::failed(e.to_string())
        },
    })
}

/// `stdout_lines`/`stderr_lines` beside a result's `stdout`/`stderr`, as Ansible's controller
/// adds them to every module's result (failed ones too) that has not its own.
pub fn add_output_lines(values: &mut Map<String, serde_json::Value>) {
    for (text, lines) in [("stdout", "stdout_lines"), ("stderr", "stderr_lines")] {
        if values.contains_key(lines) {
            continue;
        }
        if let Some(value) = values.get(text) {
            // Python's `(value or '').splitlines()`: a value that is not text has no lines.
            // Counted first, so the list is made once at its size (it can hold 256 Ki lines).
            let text = value.as_str().unwrap_or_default();
            let mut split = Vec::with_capacity(python_lines(text).count());
            split.extend(python_lines(text).map(|line| Value::String(line.to_owned())));
            values.insert(lines.into(), Value::Array(split));
        }
    }
}

/// Python's `str.splitlines()`: lines end at any of Python's line boundaries (`\r\n` is one).
#[cfg(test)]
fn python_splitlines(text: &str) -> Vec<String> {
    python_lines(text).map(str::to_owned).collect()
}

/// The lines of `text` as Python's `str.splitlines()` splits them.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    const BREAKS: &[char] = &[
        '\n', '\r', '\u{0b}', '\u{0c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}',
        '\u{2029}',
    ];
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(BREAKS) {
            Some(at) => {
                let line = &rest[..at];
                let after = &rest[at..];
                let width = if after.starts_with("\r\n") {
                    2
                } else {
                    after.chars().next().map_or(1, char::len_utf8)
                };
                rest = &after[width..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_are_split_as_python_splits_them() {
        assert_eq!(python_splitlines("a\nb\r\nc\rd\n"), ["a", "b", "c", "d"]);
        assert_eq!(python_splitlines(""), Vec::<String>::new());
        assert_eq!(python_splitlines("x\n\n"), ["x", ""]);
        let mut values = Map::new();
        values.insert("stdout".into(), "one\ntwo".into());
        values.insert("stderr".into(), serde_json::Value::Null);
        values.insert("stdout_lines".into(), serde_json::json!(["kept"]));
        add_output_lines(&mut values);
        assert_eq!(values["stdout_lines"], serde_json::json!(["kept"]));
        assert_eq!(values["stderr_lines"], serde_json::json!([]));
    }

    #[test]
    fn selinux_context_is_dropped_where_selinux_is_off_and_refused_where_it_is_on() {
        let off = tempfile::tempdir().unwrap();
        let on = tempfile::tempdir().unwrap();
        std::fs::write(on.path().join("enforce"), "1").unwrap();
        assert!(!selinux_enabled_at(off.path()));
        assert!(selinux_enabled_at(on.path()));
        let args = serde_json::json!({"dest": "/x", "content": "a", "setype": "etc_t"});
        let request = Request::new("copy", args.as_object().cloned().unwrap());
        let kept = selinux_context_at(&request, off.path()).unwrap();
        assert!(!kept.args.contains_key("setype"));
        assert_eq!(kept.args["dest"], "/x");
        let refused = selinux_context_at(&request, on.path()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "copy: the argument setype is not supported by settle on a host with SELinux enabled"
        );
        // user's seuser is useradd -Z, not a file context: left to the module.
        let user = Request::new(
            "user",
            serde_json::json!({"name": "a", "seuser": "user_u"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let left = selinux_context_at(&user, on.path()).unwrap();
        assert_eq!(left.args["seuser"], "user_u");
    }

    #[test]
    fn unsafe_writes_falls_back_to_the_environment() {
        let mut args = Map::new();
        args.insert("dest".into(), "/x".into());
        let mut request = Request::new("copy", args);
        request
            .environment
            .insert("ANSIBLE_UNSAFE_WRITES".into(), "1".into());
        assert_eq!(with_env_fallbacks(&request).args["unsafe_writes"], "1");
        request
            .args
            .insert("unsafe_writes".into(), Value::Bool(false));
        assert_eq!(
            with_env_fallbacks(&request).args["unsafe_writes"],
            Value::Bool(false)
        );
        request.module = "command".into();
        request.args.remove("unsafe_writes");
        assert!(
            !with_env_fallbacks(&request)
                .args
                .contains_key("unsafe_writes")
        );
    }
}
