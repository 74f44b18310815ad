//! The life every resource module shares: parse arguments, check, then apply only the plan.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::args::Lenient;
use crate::{ModuleError, Outcome, Request};

/// One attribute that differs: `mode` is `0644`, wanted `0755`. `None` is "absent".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A file's content before and after, for a unified diff. `None` is "no such file".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentDiff {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Set instead of the texts when either side is binary or too large to show.
    pub summary: Option<String>,
}

/// What `check` found: the differences between the host and the task's wish.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub content: Vec<ContentDiff>,
    /// Things `apply` does that are not changes of state (a requested `daemon-reload`): run in a
    /// real run, not counted as changed, not run in check mode.
    #[serde(default)]
    pub quiet: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn change(&mut self, field: &str, before: Option<String>, after: Option<String>) {
        self.changes.push(Change {
            field: field.to_string(),
            before,
            after,
        });
    }

    pub fn has(&self, field: &str) -> bool {
        self.changes.iter().any(|c| c.field == field)
    }

    pub fn quietly(&mut self, action: &str) {
        if !self.quiet.iter().any(|a| a == action) {
            self.quiet.push(action.to_string());
        }
    }

    pub fn has_quiet(&self, action: &str) -> bool {
        self.quiet.iter().any(|a| a == action)
    }
}

/// A module that manages a piece of host state.
pub(crate) trait Resource: DeserializeOwned {
    /// Reads the host and lists what differs from what the arguments want. Changes nothing.
    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError>;
    /// Makes exactly the changes of `plan`.
    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError>;
    /// Return values, read after `apply` (or after `check` in check mode).
    fn values(&self, values: &mut Map<String, Value>);
    /// Checks that need more than types: two arguments that exclude each other, and so on.
    fn validate(&self) -> Result<(), ModuleError> {
        Ok(())
    }
    /// Told before `check` whether this is a dry run, for modules that say more in one.
    fn dry_run(&mut self, _check_mode: bool) {}
    /// Told before `check` whether `--diff` asked for differences, for modules whose result
    /// carries a `diff` only then (`check` is asked for one in every dry run too).
    fn diff_mode(&mut self, _diff: bool) {}
}

/// Deserializes a module's arguments, converting types as Ansible's argument spec does
/// ([`Lenient`]), naming the argument that is wrong.
pub(crate) fn parse_args<T: DeserializeOwned>(
    module: &str,
    args: &Map<String, Value>,
) -> Result<T, ModuleError> {
    let value = Lenient(Value::Object(args.clone()));
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            ModuleError::Args(format!("{module}: {inner}"))
        } else {
            ModuleError::Args(format!("{module}: argument {path:?}: {inner}"))
        }
    })
}

pub(crate) fn run<R: Resource>(request: &Request) -> Result<Outcome, ModuleError> {
    let mut resource: R = parse_args(&request.module, &request.args)?;
    resource.validate()?;
    resource.dry_run(request.check_mode);
    resource.diff_mode(request.diff);
    let plan = resource.check(request.diff || request.check_mode)?;
    if (!plan.is_empty() || !plan.quiet.is_empty()) && !request.check_mode {
        resource.apply(&plan)?;
    }
    let mut values = Map::new();
    resource.values(&mut values);
    Ok(Outcome {
        changed: !plan.is_empty(),
        plan,
        values,
        ..Outcome::default()
    })
}
