//! `ansible.posix.sysctl`: a kernel parameter in a sysctl file (`/etc/sysctl.conf` or
//! `sysctl_file`), and with `sysctl_set` its live value (`sysctl -w`), as Ansible's module does
//! on Linux: the file is rewritten with every setting as `key=value`, the live value is read with
//! `sysctl -e -n`, and `reload` runs `sysctl -p FILE` after a change.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean, text};
use crate::fsutil::{atomic_write, default_file_mode, expand_path};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "ansible.posix.sysctl",
    args: &[
        "name",
        "key",
        "value",
        "val",
        "state",
        "ignoreerrors",
        "reload",
        "sysctl_file",
        "sysctl_set",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sysctl {
    #[serde(default, alias = "key", deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, alias = "val")]
    value: Option<Value>,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "boolean")]
    ignoreerrors: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    reload: bool,
    #[serde(default, deserialize_with = "text")]
    sysctl_file: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    sysctl_set: bool,
    #[serde(skip)]
    work: Work,
}

#[derive(Debug, Default)]
struct Work {
    sysctl: String,
    file: PathBuf,
    value: String,
    lines: Vec<String>,
    set_live: bool,
    write_file: bool,
    reload: bool,
}

/// Ansible's `_parse_value`: booleans become `1`/`0`, text is trimmed.
fn parse_value(value: &Option<Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(Value::String(s)) => match s.to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => "1".into(),
            "n" | "no" | "off" | "0" | "false" | "f" => "0".into(),
            _ => s.trim().to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Two values the same word by word (`4096 87380 6291456` as tabs or spaces).
fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// `sysctl` failed even with status 0 when it says so on stderr.
fn stderr_failed(err: &str) -> bool {
    err.lines().any(|l| {
        l.starts_with("sysctl: setting key \"")
            && (l.ends_with("\": Invalid argument") || l.ends_with("\": Read-only file system"))
    })
}

fn is_setting(line: &str) -> bool {
    !(line.is_empty() || line.starts_with('#') || line.starts_with(';') || !line.contains('='))
}

impl Sysctl {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default().trim()
    }

    fn live_value(&self, sysctl: &str) -> Result<Option<String>, ModuleError> {
        let ran = process::run(&[sysctl, "-e", "-n", self.name()], &[("LANG", "C")])?;
        Ok(ran.ok().then_some(ran.stdout))
    }
}

impl Resource for Sysctl {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        let present = self.state == Presence::Present;
        if present && matches!(self.value, None | Some(Value::Null)) {
            return Err(ModuleError::Args(
                "state is present but all of the following are missing: value".into(),
            ));
        }
        if self.name().is_empty() {
            return Err(ModuleError::Failed("name cannot be blank".into()));
        }
        if present && self.value.as_ref().and_then(Value::as_str) == Some("") {
            return Err(ModuleError::Failed("value cannot be blank".into()));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let sysctl = bin_path::required("sysctl")?;
        let file = expand_path(Path::new(
            self.sysctl_file.as_deref().unwrap_or("/etc/sysctl.conf"),
        ));
        let name = self.name().to_string();
        let value = parse_value(&self.value);
        let present = self.state == Presence::Present;
        let live = self.live_value(&sysctl)?;
        let text = if file.is_file() {
            std::fs::read(&file)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| {
                    ModuleError::Failed(format!("Failed to open {}: {e}", file.display()))
                })?
        } else {
            String::new()
        };
        // The file's value: the last line that sets the name.
        let mut in_file: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some((k, v)) = line.split_once('=').filter(|_| is_setting(line))
                && k.trim() == name
            {
                in_file = Some(v.trim().to_string());
            }
        }
        // The file as Ansible rewrites it: each setting once (the first), as `key=value`.
        let mut seen: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        for line in text.lines().map(str::trim) {
            let Some((k, v)) = line.split_once('=').filter(|_| is_setting(line)) else {
                lines.push(line.to_string());
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if seen.iter().any(|s| s == k) {
                continue;
            }
            seen.push(k.to_string());
            if k == name {
                if present {
                    lines.push(format!("{k}={value}"));
                }
            } else {
                lines.push(format!("{k}={v}"));
            }
        }
        if present && !seen.contains(&name) {
            lines.push(format!("{name}={value}"));
        }

        let mut plan = Plan::default();
        let mut changed_live = false;
        let write_file = match (&in_file, present) {
            (None, true) => true,
            (None, false) => false,
            // Ansible's truthiness: an empty value in the file counts as none.
            (Some(v), false) => !v.is_empty(),
            (Some(v), true) => *v != value,
        };
        if !write_file && present && self.reload && in_file.is_some() {
            changed_live = live.as_deref().is_none_or(|l| !same_words(l, &value));
        }
        let mut set_live = false;
        if self.sysctl_set && present {
            match &live {
                None => changed_live = true,
                Some(l) if !same_words(l, &value) => {
                    changed_live = true;
                    set_live = true;
                }
                Some(_) => {}
            }
        }
        if write_file {
            let after: String = lines.iter().map(|l| format!("{l}\n")).collect();
            plan.change("content", None, None);
            if want_diff {
                plan.content.push(ContentDiff {
                    path: file.display().to_string(),
                    before: Some(text.clone()),
                    after: Some(after),
                    summary: None,
                });
            }
        }
        if changed_live {
            plan.change(
                "value",
                live.as_deref().map(|l| l.trim().to_string()),
                Some(value.clone()),
            );
        }
        self.work = Work {
            sysctl,
            file,
            value,
            lines,
            set_live,
            write_file,
            reload: self.reload && !plan.is_empty(),
        };
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let w = &self.work;
        let errors: &[&str] = if self.ignoreerrors { &["-e"] } else { &[] };
        if w.set_live {
            let setting = format!("{}={}", self.name(), w.value);
            let mut argv = vec![w.sysctl.as_str()];
            argv.extend_from_slice(errors);
            argv.extend(["-w", &setting]);
            let ran = process::run(&argv, &[("LANG", "C")])?;
            if !ran.ok() || stderr_failed(&ran.stderr) {
                return Err(ModuleError::Failed(format!(
                    "setting {} failed: {}{}",
                    self.name(),
                    ran.stdout,
                    ran.stderr
                )));
            }
        }
        if w.write_file {
            let (mode, uid, gid) = match std::fs::metadata(&w.file) {
                Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
                Err(_) => (default_file_mode(), None, None),
            };
            let text: String = w.lines.iter().map(|l| format!("{l}\n")).collect();
            atomic_write(&w.file, text.as_bytes(), mode, uid, gid)?;
        }
        if w.reload {
            let file = w.file.display().to_string();
            let mut argv = vec![w.sysctl.as_str()];
            argv.extend_from_slice(errors);
            argv.extend(["-p", &file]);
            let ran = process::run(&argv, &[("LANG", "C")])?;
            if !ran.ok() || stderr_failed(&ran.stderr) {
                return Err(ModuleError::Failed(format!(
                    "Failed to reload sysctl: {}{}",
                    ran.stdout, ran.stderr
                )));
            }
        }
        Ok(())
    }

    fn values(&self, _values: &mut Map<String, Value>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_ansible_reads_them() {
        assert_eq!(parse_value(&Some(Value::Bool(true))), "1");
        assert_eq!(parse_value(&Some("Off".into())), "0");
        assert_eq!(parse_value(&Some(" 4096  87380 ".into())), "4096  87380");
        assert_eq!(parse_value(&Some(serde_json::json!(10))), "10");
        assert!(same_words("4096\t87380\n", "4096 87380"));
    }

    #[test]
    fn setting_errors_on_stderr_fail() {
        assert!(stderr_failed(
            "sysctl: setting key \"net.x\": Read-only file system\n"
        ));
        assert!(!stderr_failed("sysctl: cannot stat /proc/sys/x\n"));
    }
}
