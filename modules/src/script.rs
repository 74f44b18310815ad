//! `script`: the host half. The controller finds the script (role `files/`, the play's folder)
//! and sends its bytes; here it is written to a private temporary folder, run through the shell
//! with the task's arguments, and removed. Like `command`, it changes something whenever it
//! runs, unless `creates`/`removes` say it need not run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "script",
    args: &[
        "_raw_params",
        "cmd",
        "creates",
        "removes",
        "chdir",
        "executable",
        "decrypt",
        "_content_base64",
    ],
    unsupported: &[],
    free_form: true,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The script's path as the task wrote it, then its arguments (`files/x.sh --flag`).
    #[serde(rename = "_raw_params")]
    raw: Option<String>,
    cmd: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    chdir: Option<String>,
    /// The program that runs the script (`python3`), instead of its `#!` line.
    executable: Option<String>,
    /// The script's bytes, read on the controller.
    #[serde(rename = "_content_base64")]
    content: Option<String>,
}

/// The task's command line, given once, free form or as `cmd`.
pub fn command_line(raw: Option<&str>, cmd: Option<&str>) -> Result<String, String> {
    match (raw, cmd) {
        (Some(_), Some(_)) => Err("parameters are mutually exclusive: _raw_params|cmd".into()),
        (Some(text), None) | (None, Some(text)) if !text.trim().is_empty() => {
            Ok(text.trim().to_string())
        }
        _ => Err("one of the following is required: _raw_params, cmd".into()),
    }
}

/// The script's path in a command line: its first word, as a shell (and Python's shlex) splits.
pub fn script_path(command_line: &str) -> Result<String, String> {
    shell_words::split(command_line)
        .map_err(|e| format!("script: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| "one of the following is required: _raw_params, cmd".into())
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("script", &request.args)?;
    let line = command_line(args.raw.as_deref(), args.cmd.as_deref()).map_err(ModuleError::Args)?;
    let script = script_path(&line).map_err(ModuleError::Args)?;
    // Ansible's order: creates, removes, chdir, then check mode.
    if let Some(creates) = &args.creates
        && Path::new(creates).exists()
    {
        return Ok(skipped(format!(
            "{creates} exists, matching creates option"
        )));
    }
    if let Some(removes) = &args.removes
        && !Path::new(removes).exists()
    {
        return Ok(skipped(format!(
            "{removes} does not exist, matching removes option"
        )));
    }
    if let Some(dir) = &args.chdir
        && !dir.starts_with('/')
    {
        return Ok(Outcome::failed(format!(
            "chdir {dir} must be an absolute path for a Unix-aware remote node"
        )));
    }
    if request.check_mode {
        // With creates/removes the run was decided above; without them the script's effect
        // cannot be known, so it is skipped rather than guessed.
        if args.creates.is_some() || args.removes.is_some() {
            return Ok(Outcome {
                changed: true,
                ..Outcome::default()
            });
        }
        return Ok(skipped("Check mode is not supported for this task.".into()));
    }
    let Some(content) = &args.content else {
        return Err(ModuleError::Args(
            "script: no script content was sent (the controller reads the script)".into(),
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|e| ModuleError::Args(format!("script: content is not base64: {e}")))?;
    let folder = private_folder()?;
    let name = Path::new(&script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".into());
    let placed = folder.path().join(&name);
    std::fs::write(&placed, bytes)
        .map_err(|e| ModuleError::io(format!("write {}", placed.display()), e))?;
    std::fs::set_permissions(&placed, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ModuleError::io(format!("chmod {}", placed.display()), e))?;
    // As Ansible: every occurrence of the script's path in the line becomes the placed copy's,
    // so quoting around it and the arguments after it stay as written.
    let line = line.replace(&script, &placed.display().to_string());
    let line = match &args.executable {
        Some(program) => format!("{program} {line}"),
        None => line,
    };
    let mut shell_args = Map::new();
    shell_args.insert("_raw_params".into(), line.into());
    shell_args.insert("strip_empty_ends".into(), false.into());
    if let Some(dir) = &args.chdir {
        shell_args.insert("chdir".into(), dir.clone().into());
    }
    let mut shell = Request::new("shell", shell_args);
    shell.environment = request.environment.clone();
    shell.timeout = request.timeout;
    // Another thread of this process may fork while the copy was still open for writing; its
    // child holds the file open until it executes, and running the copy then fails with
    // ETXTBSY ("Text file busy", exit 126). That passes within moments: try again.
    let mut outcome = crate::command::run(&shell, true)?;
    for _ in 0..20 {
        let busy = outcome.values.get("rc").and_then(Value::as_i64) == Some(126)
            && outcome
                .values
                .get("stderr")
                .and_then(Value::as_str)
                .is_some_and(|e| e.contains("Text file busy"));
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        outcome = crate::command::run(&shell, true)?;
    }
    drop(folder);
    for key in ["cmd", "start", "end", "delta"] {
        outcome.values.remove(key);
    }
    if !outcome.failed {
        outcome.msg = None;
    }
    outcome.changed = true;
    Ok(outcome)
}

fn skipped(msg: String) -> Outcome {
    Outcome {
        skipped: true,
        msg: Some(msg),
        ..Outcome::default()
    }
}

/// A folder only this user can read, under `~/.ansible/tmp` as Ansible's `remote_tmp`, else
/// under the system's temporary folder (a become user whose `HOME` is not theirs).
fn private_folder() -> Result<tempfile::TempDir, ModuleError> {
    let home_tmp: PathBuf = crate::fsutil::expand_path(Path::new("~/.ansible/tmp"));
    let in_home = std::fs::create_dir_all(&home_tmp).ok().and_then(|_| {
        tempfile::Builder::new()
            .prefix("ansible-tmp-")
            .tempdir_in(&home_tmp)
            .ok()
    });
    match in_home {
        Some(dir) => Ok(dir),
        None => tempfile::Builder::new()
            .prefix("ansible-tmp-")
            .tempdir()
            .map_err(|e| ModuleError::io("make a temporary folder for the script", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: serde_json::Value, check: bool) -> Outcome {
        let mut request = Request::new("script", args.as_object().cloned().unwrap_or_default());
        request.check_mode = check;
        crate::run(&request)
    }

    fn encoded(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn runs_the_script_with_its_arguments_and_removes_it() {
        let script =
            "#!/bin/sh\necho \"$0\"; for a in \"$@\"; do echo \"$a\"; done; echo err >&2\n";
        let out = call(
            serde_json::json!({
                "_raw_params": "'my dir/show.sh' -a 'b c'",
                "_content_base64": encoded(script),
            }),
            false,
        );
        assert!(out.changed && !out.failed, "{out:?}");
        let lines = out.values["stdout_lines"].as_array().unwrap();
        let placed = lines[0].as_str().unwrap();
        assert!(placed.ends_with("/show.sh"));
        assert!(!Path::new(placed).exists(), "the script is removed");
        assert_eq!(
            lines[1..],
            [serde_json::json!("-a"), serde_json::json!("b c")]
        );
        assert_eq!(out.values["stderr"], "err\n");
        assert_eq!(out.values["rc"], 0);
        assert!(out.msg.is_none() && !out.values.contains_key("cmd"));
    }

    #[test]
    fn non_zero_return_code_fails() {
        let out = call(
            serde_json::json!({"cmd": "exit_3.sh", "_content_base64": encoded("exit 3\n")}),
            false,
        );
        assert!(out.failed && out.changed);
        assert_eq!(out.values["rc"], 3);
        assert_eq!(out.msg.as_deref(), Some("non-zero return code"));
    }

    #[test]
    fn creates_and_removes_decide_even_in_check_mode() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().display().to_string();
        let gone = dir.path().join("gone").display().to_string();
        let out = call(
            serde_json::json!({"_raw_params": "x.sh", "creates": here}),
            true,
        );
        assert!(out.skipped && !out.changed);
        assert_eq!(
            out.msg,
            Some(format!("{here} exists, matching creates option"))
        );
        let out = call(
            serde_json::json!({"_raw_params": "x.sh", "removes": gone}),
            false,
        );
        assert!(out.skipped);
        assert_eq!(
            out.msg,
            Some(format!("{gone} does not exist, matching removes option"))
        );
        let out = call(
            serde_json::json!({"_raw_params": "x.sh", "creates": gone}),
            true,
        );
        assert!(out.changed && !out.skipped, "would run: {out:?}");
        let out = call(serde_json::json!({"_raw_params": "x.sh"}), true);
        assert!(out.skipped && !out.changed);
        assert_eq!(
            out.msg.as_deref(),
            Some("Check mode is not supported for this task.")
        );
    }

    #[test]
    fn executable_and_chdir() {
        let dir = tempfile::tempdir().unwrap();
        let out = call(
            serde_json::json!({
                "_raw_params": "noshebang arg",
                "executable": "/bin/sh",
                "chdir": dir.path(),
                "_content_base64": encoded("pwd; echo \"$1\""),
            }),
            false,
        );
        assert_eq!(
            out.values["stdout_lines"],
            serde_json::json!([dir.path().canonicalize().unwrap(), "arg"])
        );
        let out = call(
            serde_json::json!({"_raw_params": "x.sh", "chdir": "relative"}),
            false,
        );
        assert!(out.failed);
        assert_eq!(
            out.msg.as_deref(),
            Some("chdir relative must be an absolute path for a Unix-aware remote node")
        );
    }

    #[test]
    fn command_line_is_given_once() {
        assert!(
            command_line(None, None)
                .unwrap_err()
                .contains("one of the following")
        );
        assert!(
            command_line(Some("a"), Some("b"))
                .unwrap_err()
                .contains("exclusive")
        );
        assert_eq!(script_path("'a b/c.sh' -x").unwrap(), "a b/c.sh");
    }
}
