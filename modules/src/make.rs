//! `community.general.make`: runs make targets when they are out of date. The question is make's
//! own `-q` (exit status 0: up to date), as Ansible's module asks it; check mode stops there.

use std::process::Command;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::text;
use crate::fsutil::expand_path;
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "community.general.make",
    args: &[
        "chdir", "file", "jobs", "make", "params", "target", "targets",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Make {
    #[serde(default, deserialize_with = "text")]
    chdir: Option<String>,
    #[serde(default, deserialize_with = "text")]
    file: Option<String>,
    #[serde(default)]
    jobs: Option<i64>,
    #[serde(default, deserialize_with = "text")]
    make: Option<String>,
    #[serde(default)]
    params: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "text")]
    target: Option<String>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(skip)]
    command: Vec<String>,
    #[serde(skip)]
    stdout: String,
    #[serde(skip)]
    stderr: String,
    /// The last run's output as it came, which a failure reports (Ansible's `run_command`
    /// failing with `check_rc`); the module's own result strips trailing newlines.
    #[serde(skip)]
    raw_output: (String, String),
}

/// Python's `str()` of a parameter's value.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `shlex.quote`.
fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

impl Make {
    fn run(&mut self, extra: &[&str]) -> Result<i32, ModuleError> {
        let chdir = expand_path(std::path::Path::new(
            self.chdir.as_deref().unwrap_or_default(),
        ));
        let output = Command::new(&self.command[0])
            .args(&self.command[1..])
            .args(extra)
            .current_dir(&chdir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                ModuleError::io(format!("run {} in {}", self.command[0], chdir.display()), e)
            })?;
        let clean = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\r', '\n'])
                .to_string()
        };
        self.stdout = clean(&output.stdout);
        self.stderr = clean(&output.stderr);
        self.raw_output = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        Ok(output.status.code().unwrap_or(-1))
    }
}

impl Resource for Make {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.chdir.is_none() {
            return Err(ModuleError::Args(
                "missing required arguments: chdir".into(),
            ));
        }
        if self.target.is_some() && self.targets.is_some() {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: target|targets".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let make = match &self.make {
            Some(m) => expand_path(std::path::Path::new(m)).display().to_string(),
            None => match bin_path::find("gmake") {
                Some(p) => p.display().to_string(),
                None => bin_path::required("make")?,
            },
        };
        let mut command = vec![make];
        if let Some(jobs) = self.jobs {
            command.extend(["-j".to_string(), jobs.to_string()]);
        }
        if let Some(file) = &self.file {
            command.extend([
                "-f".to_string(),
                expand_path(std::path::Path::new(file))
                    .display()
                    .to_string(),
            ]);
        }
        if let Some(target) = self.target.as_ref().filter(|t| !t.is_empty()) {
            command.push(target.clone());
        } else if let Some(targets) = &self.targets {
            command.extend(targets.iter().cloned());
        }
        for (k, v) in self.params.iter().flatten() {
            command.push(match v {
                Value::Null => k.clone(),
                v => format!("{k}={}", python_str(v)),
            });
        }
        self.command = command;
        let mut plan = Plan::default();
        if self.run(&["-q"])? != 0 {
            plan.change(
                "target",
                Some("out of date".into()),
                Some("up to date".into()),
            );
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let rc = self.run(&[])?;
        if rc != 0 {
            let mut values = Map::new();
            values.insert("rc".into(), rc.into());
            values.insert("stdout".into(), self.raw_output.0.clone().into());
            values.insert("stderr".into(), self.raw_output.1.clone().into());
            values.insert("cmd".into(), self.command.join(" ").into());
            return Err(ModuleError::FailedWith {
                msg: self.stderr.trim_end().to_string(),
                values,
            });
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
        values.insert("stdout".into(), self.stdout.clone().into());
        values.insert("stderr".into(), self.stderr.clone().into());
        values.insert("target".into(), text(&self.target));
        values.insert(
            "targets".into(),
            self.targets.clone().map_or(Value::Null, Value::from),
        );
        values.insert(
            "params".into(),
            self.params.clone().map_or(Value::Null, Value::Object),
        );
        values.insert("chdir".into(), text(&self.chdir));
        values.insert("file".into(), text(&self.file));
        values.insert("jobs".into(), self.jobs.map_or(Value::Null, Value::from));
        let command: Vec<String> = self.command.iter().map(|w| quote(w)).collect();
        values.insert("command".into(), command.join(" ").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(dir: &std::path::Path, args: Value) -> (bool, Map<String, Value>) {
        let mut args = args.as_object().unwrap().clone();
        args.insert("chdir".into(), dir.display().to_string().into());
        let mut request = crate::Request::new("community.general.make", args);
        request.check_mode = false;
        let outcome = crate::resource::run::<Make>(&request).unwrap();
        (outcome.changed, outcome.values)
    }

    #[test]
    fn makes_an_out_of_date_target_once() {
        if bin_path::find("make").is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Makefile"), "out:\n\techo $(WHO) > out\n").unwrap();
        let args = serde_json::json!({"target": "out", "params": {"WHO": "me"}});
        let (changed, values) = make(dir.path(), args.clone());
        assert!(changed);
        assert_eq!(
            values["command"],
            format!(
                "{} out WHO=me",
                values["command"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
            )
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "me\n"
        );
        assert!(!make(dir.path(), args).0);
    }

    #[test]
    fn quotes_as_shlex() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("X=1"), "X=1");
    }
}
