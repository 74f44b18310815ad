//! `debconf`: one debconf answer of a package, read with `debconf-show` and set with
//! `debconf-set-selections`, as Ansible's module does. A password's current value comes from
//! `debconf-get-selections` when the host has it (debconf-utils), else from debconf's password
//! database file. Password values never appear in the results or the diff (no_log).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::args::boolean;
use crate::process::{run, run_with_input};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "debconf",
    args: &[
        "name",
        "pkg",
        "question",
        "selection",
        "setting",
        "vtype",
        "value",
        "answer",
        "unseen",
    ],
    unsupported: &[],
    free_form: false,
};

const VTYPES: &[&str] = &[
    "boolean",
    "error",
    "multiselect",
    "note",
    "password",
    "seen",
    "select",
    "string",
    "text",
    "title",
];

const PASSWORDS_DAT: &str = "/var/cache/debconf/passwords.dat";
const MASK: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Debconf {
    #[serde(alias = "pkg")]
    name: String,
    #[serde(alias = "selection", alias = "setting")]
    question: Option<String>,
    vtype: Option<String>,
    #[serde(alias = "answer")]
    value: Option<Value>,
    #[serde(default, deserialize_with = "boolean")]
    unseen: bool,
    #[serde(skip)]
    work: Work,
}

#[derive(Debug, Default)]
struct Work {
    /// Every answer of the package, as `debconf-show` lists them.
    selections: Map<String, Value>,
    /// The value compared and set: text, or a sorted list for `multiselect`.
    wanted: Value,
    previous: Option<String>,
    changed: bool,
    check_mode: bool,
    /// Ansible returns the diff only when diffs were asked for (`{}` otherwise).
    want_diff: bool,
    msg: String,
}

/// Python's `str()` of a scalar argument.
fn python_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn show(pkg: &str) -> Result<Map<String, Value>, ModuleError> {
    let tool = bin_path::required("debconf-show")?;
    let ran = run(&[tool.as_str(), pkg], &[])?;
    if !ran.ok() {
        return Err(ModuleError::Failed(ran.stderr));
    }
    Ok(ran
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k.trim().trim_matches('*').trim().to_string(),
                Value::from(v.trim()),
            )
        })
        .collect())
}

/// A password question's stored value (`""` when none is stored).
fn password(pkg: &str, question: &str) -> Result<String, ModuleError> {
    if let Some(tool) = bin_path::find("debconf-get-selections") {
        let ran = run(&[tool.display().to_string()], &[])?;
        if !ran.ok() {
            return Err(ModuleError::Failed(format!(
                "Failed to get the value '{question}' from '{pkg}': {}",
                ran.stderr
            )));
        }
        for line in ran.stdout.lines().filter(|l| l.starts_with(pkg)) {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() <= 3 {
                return Ok(String::new());
            }
            if fields[1] == question && fields[2] == "password" {
                return Ok(fields[3].to_string());
            }
        }
        return Ok(String::new());
    }
    // debconf's own database: records of `Name:`, `Value:`, … lines, a blank line between.
    let text = std::fs::read_to_string(PASSWORDS_DAT).unwrap_or_default();
    for record in text.split("\n\n") {
        let field = |name: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if field("Name:").as_deref() == Some(question) {
            return Ok(field("Value:").unwrap_or_default());
        }
    }
    Ok(String::new())
}

impl Debconf {
    fn is_password(&self) -> bool {
        self.vtype.as_deref() == Some("password")
    }

    /// A value as the results show it: masked for a password.
    fn shown(&self, value: Value) -> Value {
        if self.is_password() && value != "" {
            MASK.into()
        } else {
            value
        }
    }

    /// The text handed to `debconf-set-selections`.
    fn wanted_text(&self) -> String {
        match &self.work.wanted {
            Value::Array(items) => items.iter().map(python_text).collect::<Vec<_>>().join(", "),
            other => python_text(other),
        }
    }
}

impl Resource for Debconf {
    fn validate(&self) -> Result<(), ModuleError> {
        let given = [
            self.question.is_some(),
            self.vtype.is_some(),
            self.value.is_some(),
        ];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(ModuleError::Args(
                "parameters are required together: question, vtype, value".into(),
            ));
        }
        if let Some(vtype) = &self.vtype
            && !VTYPES.contains(&vtype.as_str())
        {
            return Err(ModuleError::Args(format!(
                "value of vtype must be one of: {}, got: {vtype}",
                VTYPES.join(", ")
            )));
        }
        if let Some(Value::Array(_)) = &self.value
            && self.vtype.as_deref() != Some("multiselect")
        {
            return Err(ModuleError::Args(
                "debconf: a list value is taken only with vtype multiselect".into(),
            ));
        }
        Ok(())
    }

    fn dry_run(&mut self, check_mode: bool) {
        self.work.check_mode = check_mode;
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.work.want_diff = want_diff;
        self.work.selections = show(&self.name)?;
        let mut plan = Plan::default();
        let (Some(question), Some(vtype), Some(value)) = (&self.question, &self.vtype, &self.value)
        else {
            return Ok(plan);
        };
        let mut wanted = match value {
            Value::Array(items) => {
                let mut items: Vec<String> = items.iter().map(python_text).collect();
                items.sort();
                Value::from(items)
            }
            other => Value::from(python_text(other)),
        };
        if vtype == "boolean" {
            wanted = Value::from(python_text(&wanted).to_lowercase());
        }
        let existing = self.work.selections.get(question).map(python_text);
        self.work.previous = existing.clone();
        let differs = match &existing {
            None => true,
            Some(existing) => {
                let existing = match (vtype.as_str(), &wanted) {
                    ("boolean", _) => Value::from(existing.to_lowercase()),
                    ("password", _) => Value::from(password(&self.name, question)?),
                    ("multiselect", Value::Array(_)) => {
                        let mut items: Vec<String> =
                            existing.split(',').map(|i| i.trim().to_string()).collect();
                        items.sort();
                        Value::from(items)
                    }
                    _ => Value::from(existing.clone()),
                };
                existing != wanted
            }
        };
        self.work.wanted = wanted;
        if differs {
            self.work.changed = true;
            let hide = |v: String| {
                if self.is_password() {
                    "(password)".to_string()
                } else {
                    v
                }
            };
            plan.change(question, existing.map(hide), Some(hide(self.wanted_text())));
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let tool = bin_path::required("debconf-set-selections")?;
        let mut argv = vec![tool];
        if self.unseen {
            argv.push("-u".into());
        }
        let (Some(question), Some(vtype)) = (&self.question, &self.vtype) else {
            return Ok(());
        };
        let data = [self.name.as_str(), question, vtype, &self.wanted_text()].join(" ");
        let ran = run_with_input(&argv, data.as_bytes(), &[])?;
        if !ran.ok() {
            return Err(ModuleError::Failed(ran.stderr));
        }
        self.work.msg = ran.stdout;
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("msg".into(), self.work.msg.clone().into());
        let Some(question) = self.question.as_ref().filter(|_| self.work.changed) else {
            values.insert(
                "current".into(),
                Value::Object(self.work.selections.clone()),
            );
            return;
        };
        // Ansible joins a multiselect list before setting it, so a real run shows the text.
        let wanted = match (&self.work.wanted, self.work.check_mode) {
            (Value::Array(_), false) => Value::from(self.wanted_text()),
            (other, _) => other.clone(),
        };
        let previous = self.work.previous.clone().unwrap_or_default();
        let previous = self.shown(Value::from(previous));
        let wanted = self.shown(wanted);
        values.insert("current".into(), json!({ question: wanted }));
        values.insert("previous".into(), json!({ question: previous }));
        let diff = if self.work.want_diff {
            json!({"before": {question: previous}, "after": {question: wanted}})
        } else {
            json!({})
        };
        values.insert("diff".into(), diff);
    }
}
