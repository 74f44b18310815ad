//! `dpkg_selections`: a package's dpkg selection (`install`, `hold`, `deinstall`, `purge`),
//! read with `dpkg --get-selections` and set with `dpkg --set-selections`, as Ansible's module
//! does.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::process::{run, run_with_input};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "dpkg_selections",
    args: &["name", "selection"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DpkgSelections {
    name: String,
    selection: Selection,
    #[serde(skip)]
    current: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Selection {
    Install,
    Hold,
    Deinstall,
    Purge,
}

impl Selection {
    fn word(self) -> &'static str {
        match self {
            Selection::Install => "install",
            Selection::Hold => "hold",
            Selection::Deinstall => "deinstall",
            Selection::Purge => "purge",
        }
    }
}

impl Resource for DpkgSelections {
    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let dpkg = bin_path::required("dpkg")?;
        let ran = run(&[dpkg.as_str(), "--get-selections", &self.name], &[])?;
        if ran.stderr.contains("no packages found matching") {
            return Err(ModuleError::Failed(format!(
                "Failed to find package '{}' to perform selection '{}'.",
                self.name,
                self.selection.word()
            )));
        }
        if !ran.ok() {
            return Err(ModuleError::Failed(ran.stderr.trim().to_string()));
        }
        self.current = ran
            .stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or("not present")
            .to_string();
        let mut plan = Plan::default();
        if self.current != self.selection.word() {
            plan.change(
                "selection",
                Some(self.current.clone()),
                Some(self.selection.word().into()),
            );
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let dpkg = bin_path::required("dpkg")?;
        let input = format!("{} {}", self.name, self.selection.word());
        let ran = run_with_input(&[dpkg.as_str(), "--set-selections"], input.as_bytes(), &[])?;
        if !ran.ok() {
            return Err(ModuleError::Failed(format!(
                "dpkg --set-selections failed (rc={}): {}",
                ran.rc,
                ran.stderr.trim()
            )));
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("before".into(), self.current.clone().into());
        values.insert("after".into(), self.selection.word().into());
    }
}
