//! `systemd` (also `systemd_service` and `service` on systemd hosts): a unit's active state,
//! whether it is enabled or masked, and daemon reloads. Read with `systemctl show`, changed with
//! `systemctl`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, optional_boolean};
use crate::process::{run, run_ok};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

const SYSTEMD_ARGS: &[&str] = &[
    "name",
    "service",
    "unit",
    "state",
    "enabled",
    "masked",
    "daemon_reload",
    "daemon-reload",
    "daemon_reexec",
    "daemon-reexec",
    "scope",
    "force",
    "no_block",
];

pub(crate) static SYSTEMD_SPEC: ModuleSpec = ModuleSpec {
    name: "systemd",
    args: SYSTEMD_ARGS,
    unsupported: &[],
    free_form: false,
};

pub(crate) static SYSTEMD_SERVICE_SPEC: ModuleSpec = ModuleSpec {
    name: "systemd_service",
    args: SYSTEMD_ARGS,
    unsupported: &[],
    free_form: false,
};

pub(crate) static SERVICE_SPEC: ModuleSpec = ModuleSpec {
    name: "service",
    args: &[
        "name",
        "state",
        "enabled",
        "use",
        "sleep",
        "pattern",
        "arguments",
        "args",
        "runlevel",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl State {
    /// The word a task gives for it.
    pub(crate) fn word(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Restarted => "restarted",
            State::Reloaded => "reloaded",
        }
    }

    /// The state a result reports after it: a restarted or reloaded service is started.
    pub(crate) fn reported(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Started | State::Restarted | State::Reloaded => "started",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Systemd {
    #[serde(alias = "service", alias = "unit")]
    name: Option<String>,
    state: Option<State>,
    #[serde(default, deserialize_with = "optional_boolean")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "optional_boolean")]
    masked: Option<bool>,
    #[serde(default, alias = "daemon-reload", deserialize_with = "boolean")]
    daemon_reload: bool,
    #[serde(default, alias = "daemon-reexec", deserialize_with = "boolean")]
    daemon_reexec: bool,
    #[serde(default = "system")]
    scope: String,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    #[serde(default, deserialize_with = "boolean")]
    no_block: bool,
    /// `service`'s extras.
    #[serde(default, rename = "use")]
    manager: Option<String>,
    /// Ignored on a systemd host, as below.
    #[serde(default)]
    sleep: Option<u64>,
    /// `service`'s arguments for other init systems: on a systemd host Ansible's service action
    /// drops them with a warning before it runs the systemd module, and so does settle.
    #[serde(default, deserialize_with = "crate::args::text")]
    pattern: Option<String>,
    #[serde(default, deserialize_with = "crate::args::text")]
    arguments: Option<String>,
    #[serde(default, deserialize_with = "crate::args::text")]
    args: Option<String>,
    #[serde(default, deserialize_with = "crate::args::text")]
    runlevel: Option<String>,
    #[serde(skip)]
    status: Map<String, Value>,
}

impl Systemd {
    /// Ansible's service action's warnings for the arguments systemd does not use (in the
    /// order of its `UNUSED_PARAMS`).
    fn ignored_warnings(&self) -> Vec<String> {
        [
            ("pattern", self.pattern.is_some()),
            ("runlevel", self.runlevel.is_some()),
            ("sleep", self.sleep.is_some()),
            ("arguments", self.arguments.is_some()),
            ("args", self.args.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| format!("Ignoring \"{name}\" as it is not used in \"systemd\""))
        .collect()
    }
}

fn system() -> String {
    "system".into()
}

const PROPERTIES: &str = "LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload,Id";

impl Systemd {
    fn systemctl(&self) -> Vec<String> {
        let mut argv = vec!["systemctl".to_string()];
        match self.scope.as_str() {
            "user" => argv.push("--user".into()),
            "global" => argv.push("--global".into()),
            _ => {}
        }
        argv
    }

    fn show(&self, name: &str) -> Result<Map<String, Value>, ModuleError> {
        let mut argv = self.systemctl();
        argv.extend(["show".into(), name.into(), "-p".into(), PROPERTIES.into()]);
        let ran = run_ok(&argv, &[])?;
        Ok(ran
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect())
    }

    fn ctl(&self, verb: &str, name: Option<&str>) -> Result<(), ModuleError> {
        let mut argv = self.systemctl();
        if self.no_block
            && matches!(
                verb,
                "start" | "stop" | "restart" | "reload" | "reload-or-restart"
            )
        {
            argv.push("--no-block".into());
        }
        if self.force && matches!(verb, "enable" | "disable" | "mask" | "unmask") {
            argv.push("--force".into());
        }
        argv.push(verb.into());
        if let Some(n) = name {
            argv.push(n.into());
        }
        run_ok(&argv, &[]).map(|_| ())
    }

    fn prop<'a>(&'a self, key: &str) -> &'a str {
        self.status.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

impl Resource for Systemd {
    fn validate(&self) -> Result<(), ModuleError> {
        if let Some(m) = self
            .manager
            .as_deref()
            .filter(|m| !matches!(*m, "auto" | "systemd"))
        {
            return Err(ModuleError::Args(format!(
                "service: use={m} is not supported; settle manages systemd hosts and init scripts (use: sysvinit)"
            )));
        }
        if !matches!(self.scope.as_str(), "system" | "user" | "global") {
            return Err(ModuleError::Args(
                "systemd: scope must be system, user or global".into(),
            ));
        }
        if self.name.is_none()
            && (self.state.is_some() || self.enabled.is_some() || self.masked.is_some())
        {
            return Err(ModuleError::Args(
                "systemd: name is required with state, enabled or masked".into(),
            ));
        }
        if self.name.is_none() && !self.daemon_reload && !self.daemon_reexec {
            return Err(ModuleError::Args(
                "systemd: give name, daemon_reload or daemon_reexec".into(),
            ));
        }
        if !std::path::Path::new("/run/systemd/system").is_dir() {
            return Err(ModuleError::Failed("this host does not run systemd".into()));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        if self.daemon_reexec {
            plan.change(
                "daemon_reexec",
                None,
                Some("systemctl daemon-reexec".into()),
            );
        }
        // As in Ansible, a daemon-reload is done when asked for but is not a change of state.
        if self.daemon_reload {
            plan.quietly("daemon-reload");
        }
        let Some(name) = self.name.clone() else {
            return Ok(plan);
        };
        self.status = self.show(&name)?;
        // A unit file changed on disk since systemd read it: reload before anything else, so
        // the new file is what gets started.
        if self.prop("NeedDaemonReload") == "yes" {
            plan.quietly("daemon-reload");
        }
        if self.prop("LoadState") == "not-found" && self.masked != Some(true) {
            return Err(ModuleError::Failed(format!(
                "Could not find the requested service {name}: host"
            )));
        }
        let file_state = self.prop("UnitFileState").to_string();
        if let Some(masked) = self.masked {
            let is_masked = file_state.starts_with("masked") || self.prop("LoadState") == "masked";
            if masked != is_masked {
                plan.change(
                    "masked",
                    Some(is_masked.to_string()),
                    Some(masked.to_string()),
                );
            }
        }
        if let Some(enabled) = self.enabled {
            let mut argv = self.systemctl();
            argv.extend(["is-enabled".into(), name.clone()]);
            let ran = run(&argv, &[])?;
            let word = ran.stdout.trim().to_string();
            // Static and generated units cannot be enabled or disabled: nothing to do.
            if !matches!(word.as_str(), "static" | "generated" | "indirect" | "alias") {
                let is_enabled = ran.ok() && word.starts_with("enabled");
                if enabled != is_enabled {
                    plan.change(
                        "enabled",
                        Some(is_enabled.to_string()),
                        Some(enabled.to_string()),
                    );
                }
            }
        }
        if let Some(state) = self.state {
            let active = self.prop("ActiveState");
            let running = matches!(active, "active" | "activating" | "reloading");
            let change = match state {
                State::Started => !running,
                State::Stopped => running,
                State::Restarted | State::Reloaded => true,
            };
            if change {
                plan.change("state", Some(active.into()), Some(state.word().into()));
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.has("daemon_reexec") {
            self.ctl("daemon-reexec", None)?;
        }
        if plan.has_quiet("daemon-reload") {
            self.ctl("daemon-reload", None)?;
        }
        let Some(name) = self.name.clone() else {
            return Ok(());
        };
        if plan.has("masked") {
            self.ctl(
                if self.masked == Some(true) {
                    "mask"
                } else {
                    "unmask"
                },
                Some(&name),
            )?;
        }
        if plan.has("enabled") {
            self.ctl(
                if self.enabled == Some(true) {
                    "enable"
                } else {
                    "disable"
                },
                Some(&name),
            )?;
        }
        if plan.has("state") {
            let verb = match self.state {
                Some(State::Started) => "start",
                Some(State::Stopped) => "stop",
                Some(State::Restarted) => "restart",
                Some(State::Reloaded) if self.prop("ActiveState") == "active" => "reload",
                Some(State::Reloaded) => "start",
                None => return Ok(()),
            };
            self.ctl(verb, Some(&name))?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let warnings = self.ignored_warnings();
        if !warnings.is_empty() {
            values.insert("warnings".into(), warnings.into());
        }
        if let Some(name) = &self.name {
            values.insert("name".into(), name.clone().into());
            let status = self.show(name).unwrap_or_else(|_| self.status.clone());
            if let Some(state) = self.state {
                values.insert("state".into(), state.reported().into());
            }
            if let Some(e) = self.enabled {
                values.insert("enabled".into(), e.into());
            }
            values.insert("status".into(), Value::Object(status));
        }
    }
}
