//! Ansible's own modules, for the tasks settle has no module of its own for: the engine packs
//! the module (and, for a Python module, the `module_utils` it imports) on the controller, and
//! this runs it on the host as Ansible does: in a private temporary folder, with the host's
//! interpreter, arguments in and JSON out.
//!
//! The styles are Ansible's (`executor/module_common.py`):
//! - a Python module that imports `ansible.module_utils` (or a collection's) is a zip put first
//!   on `sys.path`; its arguments reach `AnsibleModule` as `{"ANSIBLE_MODULE_ARGS": …}`;
//! - `<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>` in the source is replaced by the arguments' JSON;
//! - `WANT_JSON` (or a binary) gets the path of a file holding the arguments' JSON;
//! - anything else ("old style") gets a file of `key=value` words.
//!
//! Whatever the module prints around its JSON is dropped, with a warning for junk after it, as
//! Ansible does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::{Waited, wait_for};
use crate::{ModuleError, Outcome, Request};

/// A module of Ansible's, ready to run: what the controller sends with the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModulePayload {
    /// The module as the task names it, for messages.
    pub name: String,
    pub style: ModuleStyle,
    /// Base64: the zip for [`ModuleStyle::Python`], else the module file itself.
    pub data: String,
    /// `ansible.modules.ping`, `ansible_collections.ns.coll.plugins.modules.x` or
    /// `ansible.legacy.x`: the module's name inside the zip.
    pub python_name: String,
    /// The interpreter to run it with (`ansible_python_interpreter`, or the shebang's own for
    /// a module in another language); `None`: the host's Python, found on the host.
    pub interpreter: Option<String>,
    /// Words after the interpreter on the shebang line.
    #[serde(default)]
    pub interpreter_args: Vec<String>,
}

/// How a module takes its arguments (Ansible's module styles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStyle {
    /// A new-style Python module, packed with its `module_utils` (AnsiballZ).
    Python,
    /// The source holds `<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>`.
    JsonArgs,
    /// `WANT_JSON`: the path of a JSON file of arguments as its first argument.
    WantJson,
    /// An executable file that is not text: JSON arguments file, as `WANT_JSON`.
    Binary,
    /// Anything else: a file of `key=value` words.
    Old,
}

impl ModuleStyle {
    /// The style of a module's source, as Ansible tells them apart.
    pub fn of(source: &[u8]) -> ModuleStyle {
        let text = String::from_utf8_lossy(source);
        let head = &source[..source.len().min(1024)];
        let binary = head
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, 7 | 8 | 9 | 10 | 12 | 13 | 27) || b == 0x7f);
        if binary {
            ModuleStyle::Binary
        } else if text.contains("#<<INCLUDE_ANSIBLE_MODULE_COMMON>>") || imports_module_utils(&text)
        {
            ModuleStyle::Python
        } else if text.contains("<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>") {
            ModuleStyle::JsonArgs
        } else if text.contains("WANT_JSON") {
            ModuleStyle::WantJson
        } else {
            ModuleStyle::Old
        }
    }
}

/// Whether Python source imports Ansible's module utilities: `ansible.module_utils`, a
/// collection's `plugins.module_utils`, or `..module_utils` relative to a collection module.
fn imports_module_utils(text: &str) -> bool {
    static NEW_STYLE: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?m)(from +\.{2,} *module_utils.* +import |from +ansible_collections\.[^.\s]+\.[^.\s]+\.plugins\.module_utils.* +import |import +ansible_collections\.[^.\s]+\.[^.\s]+\.plugins\.module_utils|from +ansible\.module_utils.* +import |import +ansible\.module_utils\.)",
        )
        .ok()
    });
    NEW_STYLE.as_ref().is_some_and(|r| r.is_match(text))
}

/// What runs a zipped module: the zip first on `sys.path`, the arguments from standard input
/// handed to `AnsibleModule` as Ansible's own wrapper hands them (through its loader where
/// ansible-core has one, else straight into `basic._ANSIBLE_ARGS`).
const PYTHON_RUNNER: &str = r#"import os, runpy, sys
payload, name = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [payload] + [p for p in sys.path if os.path.abspath(p or '.') != here]
sys.argv[:] = [name]
params = sys.stdin.buffer.read()
from ansible.module_utils import basic
try:
    from ansible.module_utils._internal._ansiballz import _loader
except ImportError:
    _loader = None
if _loader is not None and hasattr(_loader, 'run_module'):
    _loader.run_module(json_params=params, profile='legacy', module_fqn=name,
                       modlib_path=payload, extensions={})
else:
    basic._ANSIBLE_ARGS = params
    if hasattr(basic, '_ANSIBLE_PROFILE'):
        basic._ANSIBLE_PROFILE = 'legacy'
    runpy.run_module(name, init_globals=dict(_module_fqn=name, _modlib_path=payload),
                     run_name='__main__', alter_sys=True)
"#;

/// Interpreters Ansible's discovery tries, in its order, when the host's Python is not named.
const PYTHON_CANDIDATES: &[&str] = &[
    "/usr/bin/python3",
    "python3.14",
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "python3.9",
    "python3.8",
    "/usr/libexec/platform-python",
    "python3",
];

/// The hidden value holding what the module printed on standard error: dropped from a task's
/// result (as Ansible drops it), kept as `stderr` by an async job (as Ansible's wrapper keeps it).
pub(crate) const STDERR_KEY: &str = "_settle_module_stderr";

/// Runs the request's Ansible module on this host.
pub(crate) fn run(request: &Request, payload: &ModulePayload) -> Result<Outcome, ModuleError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&payload.data)
        .map_err(|e| {
            ModuleError::Failed(format!(
                "{}: the module payload is damaged: {e}",
                payload.name
            ))
        })?;
    let remote_tmp = request
        .args
        .get("_ansible_remote_tmp")
        .and_then(Value::as_str)
        .unwrap_or("~/.ansible/tmp");
    let tmp = private_tmp(remote_tmp)?;
    let mut args = request.args.clone();
    args.insert("_ansible_check_mode".into(), request.check_mode.into());
    args.insert("_ansible_diff".into(), request.diff.into());
    args.insert(
        "_ansible_tmpdir".into(),
        tmp.path().display().to_string().into(),
    );
    let discovered = std::cell::RefCell::new(None);
    let interpreter = || match &payload.interpreter {
        Some(interpreter) => Ok(interpreter.clone()),
        None => {
            let python = host_python()?;
            *discovered.borrow_mut() = Some(python.clone());
            Ok(python)
        }
    };
    let write = |name: &str, bytes: &[u8], mode: u32| -> Result<PathBuf, ModuleError> {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
            .map_err(|e| ModuleError::io(format!("write {}", path.display()), e))?;
        Ok(path)
    };
    let file_name = payload
        .name
        .rsplit('.')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("module");
    let (argv, stdin): (Vec<String>, Option<String>) = match payload.style {
        ModuleStyle::Python => {
            let zip = write(&format!("ansible_{file_name}_payload.zip"), &data, 0o600)?;
            let runner = write("run_module.py", PYTHON_RUNNER.as_bytes(), 0o600)?;
            let params = serde_json::json!({ "ANSIBLE_MODULE_ARGS": Value::Object(args) });
            let mut argv = vec![interpreter()?];
            argv.extend(payload.interpreter_args.iter().cloned());
            argv.extend([
                runner.display().to_string(),
                zip.display().to_string(),
                payload.python_name.clone(),
            ]);
            (argv, Some(params.to_string()))
        }
        style => {
            let source = if style == ModuleStyle::JsonArgs {
                let json = Value::Object(args.clone()).to_string();
                String::from_utf8_lossy(&data)
                    .replace("<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>", &json)
                    .replace("\"<<ANSIBLE_VERSION>>\"", &format!("{:?}", version(&args)))
                    .into_bytes()
            } else {
                data
            };
            let module = write(file_name, &source, 0o700)?;
            let args_text = match style {
                ModuleStyle::Old => old_style_args(&args),
                _ => Value::Object(args).to_string(),
            };
            let args_file = write("args", args_text.as_bytes(), 0o600)?;
            let mut argv = Vec::new();
            // A script's own interpreter (the host's Python for a Python one), a script
            // without a shebang through /bin/sh; a binary runs by itself.
            if style != ModuleStyle::Binary {
                if shebang(&source).is_some() {
                    argv.push(interpreter()?);
                    argv.extend(payload.interpreter_args.iter().cloned());
                } else {
                    argv.push("/bin/sh".into());
                }
            }
            argv.push(module.display().to_string());
            if style != ModuleStyle::JsonArgs {
                argv.push(args_file.display().to_string());
            }
            (argv, None)
        }
    };
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(&request.environment)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut outcome = Outcome::failed(format!(
                "The module interpreter '{}' was not found. Consider overriding the configured \
                 interpreter path for this host (ansible_python_interpreter).",
                argv[0]
            ));
            // What the shell says where Ansible runs the module with it (`rc` 127).
            let values = &mut outcome.values;
            values.insert("module_stdout".into(), "".into());
            let stderr = format!("/bin/sh: 1: {}: not found\n", argv[0]);
            values.insert("module_stderr".into(), stderr.into());
            values.insert("rc".into(), 127.into());
            return Ok(outcome);
        }
        Err(e) => return Err(ModuleError::io(format!("run {}", argv[0]), e)),
    };
    let output = match wait_for(child, stdin, request.timeout, usize::MAX) {
        Ok(output) => output,
        Err(Waited::TimedOut(seconds)) => {
            let mut outcome = Outcome::failed(format!(
                "Timed out after {seconds} second{}",
                if seconds == 1 { "" } else { "s" }
            ));
            outcome
                .values
                .insert("timedout".into(), serde_json::json!({"period": seconds}));
            return Ok(outcome);
        }
        Err(Waited::Io(e)) => return Err(ModuleError::io(format!("run {}", argv[0]), e)),
    };
    let rc = output.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    drop(tmp);
    let mut outcome = outcome_of(&stdout, &stderr, rc);
    // As Ansible: a Python found on the host is said as a fact, so later tasks use it.
    if let Some(python) = discovered.into_inner() {
        let facts = outcome
            .values
            .entry("ansible_facts")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(facts) = facts {
            facts.insert("discovered_interpreter_python".into(), python.into());
        }
    }
    Ok(outcome)
}

/// The module's answer as settle's `Outcome`: the JSON it printed (junk around it dropped),
/// `failed` from `rc` when the module does not say, Ansible's `_ansible_*` keys removed.
pub(crate) fn outcome_of(stdout: &str, stderr: &str, rc: i32) -> Outcome {
    // Output that holds no JSON object: Ansible's message, with what the module printed.
    let unreadable = || {
        let mut outcome = Outcome::failed(
            "Module result deserialization failed. See stdout/stderr for the returned output.",
        );
        outcome.values.insert("module_stdout".into(), stdout.into());
        outcome.values.insert("module_stderr".into(), stderr.into());
        outcome.values.insert("rc".into(), rc.into());
        outcome
    };
    let Some((json, warnings)) = json_of(stdout) else {
        return unreadable();
    };
    let mut values: Map<String, Value> = match serde_json::from_str(&json) {
        Ok(Value::Object(map)) => map,
        // Python reads a lone surrogate; Ansible's controller then refuses the string.
        Err(_) if let Some((unit, position)) = lone_surrogate(&json) => {
            return Outcome::failed(format!(
                "Task failed: Refusing to deserialize an invalid UTF8 string value: 'utf-8' \
                 codec can't encode character '\\u{unit:04x}' in position {position}: \
                 surrogates not allowed"
            ));
        }
        _ => return unreadable(),
    };
    values.retain(|k, _| !k.starts_with("_ansible_"));
    // An exception the module raised comes as ansible-core 2.19's error summary: the task's
    // message is the exception's, as Ansible's controller words it.
    let raised = match values.get("exception") {
        Some(Value::Object(summary)) => summary.get("event").map(|event| {
            let text = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
            (
                event.get("msg").is_some().then(|| brief(event)),
                text("formatted_traceback"),
            )
        }),
        _ => None,
    };
    if let Some((msg, traceback)) = raised {
        if let Some(msg) = msg {
            values
                .entry("msg")
                .or_insert_with(|| format!("Task failed: Module failed: {msg}").into());
        }
        values.insert(
            "exception".into(),
            traceback
                .unwrap_or_else(|| "(traceback unavailable)".into())
                .into(),
        );
    }
    registered_notices(&mut values);
    if !warnings.is_empty() {
        let mut all: Vec<Value> = match values.remove("warnings") {
            Some(Value::Array(list)) => list,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        all.extend(warnings.into_iter().map(Value::from));
        values.insert("warnings".into(), all.into());
    }
    let truthy = |v: Option<Value>| match v {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true" | "y" | "t"
        ),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    };
    // As Ansible's task executor: without `failed`, a non-zero `rc` is a failure.
    let failed = match values.remove("failed") {
        Some(v) => truthy(Some(v)),
        None => values.get("rc").is_some_and(|rc| {
            rc.as_i64().is_some_and(|n| n != 0) || rc.as_str().is_some_and(|s| s != "0")
        }),
    };
    let changed = truthy(values.remove("changed"));
    let skipped = truthy(values.remove("skipped"));
    let msg = match values.remove("msg") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => {
            // Not text: kept as the module gave it.
            values.insert("msg".into(), other);
            None
        }
    };
    for key in ["stdout", "stderr"] {
        let lines = format!("{key}_lines");
        if let Some(text) = values.get(key)
            && !values.contains_key(&lines)
        {
            let list: Vec<Value> = text
                .as_str()
                .unwrap_or_default()
                .lines()
                .map(Value::from)
                .collect();
            values.insert(lines, list.into());
        }
    }
    values.insert(STDERR_KEY.into(), stderr.into());
    Outcome {
        changed,
        failed,
        skipped,
        msg,
        values,
        ..Outcome::default()
    }
}

/// The first `\uXXXX` escape in JSON text that is half of a UTF-16 pair without its other
/// half (Python's `surrogateescape` writes undecodable bytes so), and its position among the
/// characters of the string it is in, as Python counts them.
fn lone_surrogate(json: &str) -> Option<(u32, usize)> {
    let hex = |at: usize| {
        json.get(at..at + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let bytes = json.as_bytes();
    let (mut i, mut in_string, mut position) = (0, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                in_string = !in_string;
                position = 0;
                i += 1;
                continue;
            }
            b'\\' if in_string && bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex(i + 2)?;
                let paired = (0xd800..0xdc00).contains(&unit)
                    && json.get(i + 6..i + 8) == Some("\\u")
                    && hex(i + 8).is_some_and(|low| (0xdc00..0xe000).contains(&low));
                if paired {
                    i += 12;
                } else if (0xd800..0xe000).contains(&unit) {
                    return Some((unit, position));
                } else {
                    i += 6;
                }
            }
            b'\\' if in_string => i += 2,
            b => i += if b < 0x80 { 1 } else { utf8_len(b) },
        }
        position += 1;
    }
    None
}

/// The length of the UTF-8 sequence a lead byte opens.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

/// An ansible-core 2.19 event's brief message (`format_event_brief_message`): its own, then
/// those of the events it follows from, each joined by ": " unless it already ends with the
/// rest.
fn brief(event: &Value) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut at = Some(event);
    while let Some(event) = at {
        parts.push(event.get("msg").and_then(Value::as_str).unwrap_or_default());
        at = event
            .get("chain")
            .filter(|c| c.get("follow") == Some(&Value::Bool(true)))
            .and_then(|c| c.get("event"));
    }
    let mut parts = parts.into_iter().rev();
    let mut message = parts.next().unwrap_or_default().to_string();
    for part in parts {
        message = match part.ends_with(message.as_str()) {
            true => part.to_string(),
            false => format!("{}: {message}", part.trim_end_matches(['.', ' '])),
        };
    }
    message
}

/// ansible-core 2.19's warnings and deprecations (`WarningSummary`, `DeprecationSummary`) as
/// its controller registers them: a warning is its message; a deprecation is its message,
/// the collection it is of, its `version` or `date`, and who deprecates (`deprecator`).
fn registered_notices(values: &mut Map<String, Value>) {
    let summary = |v: &Value, kind: &str| {
        v.get("__ansible_type").and_then(Value::as_str) == Some(kind) && v.get("event").is_some()
    };
    if let Some(Value::Array(warnings)) = values.get_mut("warnings") {
        for warning in warnings.iter_mut() {
            if summary(warning, "WarningSummary") {
                *warning = brief(&warning["event"]).into();
            }
        }
    }
    if let Some(Value::Array(deprecations)) = values.get_mut("deprecations") {
        for deprecation in deprecations.iter_mut() {
            if !summary(deprecation, "DeprecationSummary") {
                continue;
            }
            let by = &deprecation["deprecator"];
            let resolved = by.get("resolved_name").and_then(Value::as_str);
            let kind = match by.get("type") {
                Some(Value::Object(t)) => t.get("value").cloned().unwrap_or(Value::Null),
                Some(Value::String(t)) => Value::String(t.clone()),
                _ => Value::Null,
            };
            let collection = resolved
                .map(|name| name.split('.').take(2).collect::<Vec<_>>().join("."))
                .map_or(Value::Null, Value::from);
            let mut shaped = Map::new();
            shaped.insert("msg".into(), brief(&deprecation["event"]).into());
            shaped.insert("collection_name".into(), collection);
            match deprecation.get("date").filter(|d| !d.is_null()) {
                Some(date) => shaped.insert("date".into(), date.clone()),
                None => shaped.insert(
                    "version".into(),
                    deprecation.get("version").cloned().unwrap_or(Value::Null),
                ),
            };
            shaped.insert(
                "deprecator".into(),
                serde_json::json!({"resolved_name": resolved, "type": kind}),
            );
            *deprecation = Value::Object(shaped);
        }
    }
}

/// The JSON object a module printed, and warnings for junk after it (Ansible drops junk before
/// it silently): from the first line that starts with `{` to the last that ends with `}`.
fn json_of(stdout: &str) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| l.trim().starts_with('{'))?;
    let lines = &lines[start..];
    let end = lines.iter().rposition(|l| l.trim().ends_with('}'))?;
    let junk = &lines[end + 1..];
    let warnings = if junk.iter().any(|l| !l.trim().is_empty()) {
        vec![format!(
            "Module invocation had junk after the JSON data: {}",
            junk.join("\n")
        )]
    } else {
        Vec::new()
    };
    Some((lines[..=end].join("\n"), warnings))
}

/// `_ansible_version`, for a JSON-args module's `<<ANSIBLE_VERSION>>`.
fn version(args: &Map<String, Value>) -> String {
    args.get("_ansible_version")
        .and_then(Value::as_str)
        .unwrap_or("0.0")
        .to_string()
}

/// Old-style arguments: `key=value` words, each value quoted for a shell, as Python's `str()`
/// writes it.
fn old_style_args(args: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (k, v) in args {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Null => "None".into(),
            other => other.to_string(),
        };
        out.push_str(&format!("{k}={} ", shell_words::quote(&text)));
    }
    out
}

/// The interpreter a script names on its first line (`#!/usr/bin/python` → `/usr/bin/python`).
pub fn shebang(source: &[u8]) -> Option<(String, Vec<String>)> {
    let first = source.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(first.strip_prefix(b"#!")?)
        .trim()
        .to_string();
    let mut words = shell_words::split(&line).ok()?.into_iter();
    let interpreter = words.next()?;
    Some((interpreter, words.collect()))
}

/// The host's Python, found as Ansible's interpreter discovery finds one: `/usr/bin/python3`
/// first, then the newest `python3.x` on `PATH`.
pub fn host_python() -> Result<String, ModuleError> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    for candidate in PYTHON_CANDIDATES {
        if candidate.starts_with('/') {
            if Path::new(candidate).is_file() {
                return Ok(candidate.to_string());
            }
            continue;
        }
        for dir in path.split(':').filter(|d| !d.is_empty()) {
            let full = Path::new(dir).join(candidate);
            if full.is_file() {
                return Ok(full.display().to_string());
            }
        }
    }
    Err(ModuleError::Failed(
        "No Python interpreter was found on the host to run the module (tried /usr/bin/python3 \
         and python3.x on PATH); install Python 3 there or set ansible_python_interpreter"
            .into(),
    ))
}

/// A fresh folder only this user can read, under Ansible's `remote_tmp` (`ansible_remote_tmp`,
/// `~/.ansible/tmp` unless set; else the system's temporary folder); removed, with what the
/// module left in it, when dropped.
fn private_tmp(remote_tmp: &str) -> Result<tempfile::TempDir, ModuleError> {
    let dir = crate::fsutil::expand_path(Path::new(remote_tmp));
    if std::fs::create_dir_all(&dir).is_ok()
        && let Ok(tmp) = tempfile::Builder::new()
            .prefix("ansible-tmp-")
            .tempdir_in(&dir)
    {
        return Ok(tmp);
    }
    tempfile::Builder::new()
        .prefix("ansible-tmp-")
        .tempdir()
        .map_err(|e| ModuleError::io("create a temporary folder for the module", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_surrogate_is_refused_as_ansibles_controller_refuses_it() {
        let out = outcome_of(r#"{"changed": true, "stdout": "premi\udce8re"}"#, "", 0);
        assert!(out.failed);
        assert_eq!(
            out.msg.as_deref(),
            Some(
                "Task failed: Refusing to deserialize an invalid UTF8 string value: 'utf-8' codec \
                 can't encode character '\\udce8' in position 5: surrogates not allowed"
            )
        );
        // A pair is one character, and escaped quotes or backslashes are no surprise.
        assert_eq!(
            lone_surrogate(r#"{"a": "\ud83d\ude00\"\\é\ud800x"}"#),
            Some((0xd800, 4))
        );
        assert_eq!(lone_surrogate(r#"{"a": "\ud83d\ude00 \u00e9"}"#), None);
    }

    #[test]
    fn a_chained_exception_is_worded_and_notices_registered_as_ansible_does() {
        let out = r#"{"failed": true, "exception": {"__ansible_type": "ErrorSummary", "event": {"msg": "one", "chain": {"follow": true, "event": {"msg": "two"}}}}, "warnings": [{"__ansible_type": "WarningSummary", "event": {"msg": "careful"}}], "deprecations": [{"__ansible_type": "DeprecationSummary", "event": {"msg": "old"}, "version": "2.0", "deprecator": {"resolved_name": "ns.coll.mod", "type": {"value": "module"}}}]}"#;
        let outcome = outcome_of(out, "", 1);
        assert_eq!(
            outcome.msg.as_deref(),
            Some("Task failed: Module failed: one: two")
        );
        assert_eq!(outcome.values["warnings"], serde_json::json!(["careful"]));
        assert_eq!(
            outcome.values["deprecations"],
            serde_json::json!([{"msg": "old", "collection_name": "ns.coll", "version": "2.0",
                "deprecator": {"resolved_name": "ns.coll.mod", "type": "module"}}])
        );
        let repeated = serde_json::json!({"msg": "two: one", "chain": {"follow": true, "event": {"msg": "one"}}});
        assert_eq!(brief(&repeated), "two: one");
    }

    #[test]
    fn styles_are_told_apart_as_ansible_does() {
        assert_eq!(
            ModuleStyle::of(
                b"#!/usr/bin/python\nfrom ansible.module_utils.basic import AnsibleModule\n"
            ),
            ModuleStyle::Python
        );
        assert_eq!(
            ModuleStyle::of(b"from ..module_utils.x import y\n"),
            ModuleStyle::Python
        );
        assert_eq!(
            ModuleStyle::of(b"#!/bin/sh\n# WANT_JSON\n"),
            ModuleStyle::WantJson
        );
        assert_eq!(
            ModuleStyle::of(b"#!/usr/bin/python\nprint('{}')\n"),
            ModuleStyle::Old
        );
        assert_eq!(ModuleStyle::of(b"\x7fELF\x02\x01\x00"), ModuleStyle::Binary);
    }

    #[test]
    fn junk_around_the_json_is_dropped_and_trailing_junk_warned_about() {
        let outcome = outcome_of("before\n{\"changed\": true, \"x\": 1}\nafter\n", "", 0);
        assert!(outcome.changed && !outcome.failed);
        assert_eq!(outcome.values["x"], 1);
        assert_eq!(
            outcome.values["warnings"][0],
            "Module invocation had junk after the JSON data: after"
        );
    }

    #[test]
    fn nonzero_rc_without_failed_is_a_failure() {
        assert!(outcome_of("{\"rc\": 2}", "", 0).failed);
        assert!(!outcome_of("{\"rc\": 2, \"failed\": false}", "", 0).failed);
    }

    #[test]
    fn no_json_is_a_failure_that_keeps_what_was_printed() {
        let outcome = outcome_of("Traceback", "boom", 1);
        assert!(outcome.failed);
        assert_eq!(outcome.values["module_stderr"], "boom");
    }

    #[test]
    fn an_old_style_module_gets_key_value_words_and_answers() {
        let payload = ModulePayload {
            name: "echo_args".into(),
            style: ModuleStyle::Old,
            data: base64::engine::general_purpose::STANDARD.encode(
                "#!/bin/sh\nprintf '{\"changed\": true, \"args\": \"%s\"}\\n' \"$(cat \"$1\")\"\n",
            ),
            python_name: "ansible.legacy.echo_args".into(),
            interpreter: Some("/bin/sh".into()),
            interpreter_args: Vec::new(),
        };
        let mut args = Map::new();
        args.insert("name".into(), "a b".into());
        let request = Request::new("echo_args", args);
        let outcome = run(&request, &payload).unwrap();
        assert!(outcome.changed, "{outcome:?}");
        assert!(
            outcome.values["args"]
                .as_str()
                .unwrap()
                .starts_with("name='a b' "),
            "{outcome:?}"
        );
    }
}
