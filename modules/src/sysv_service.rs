//! `service` on a host that does not run systemd: its init script, through the `service` tool
//! as Ansible's service module does on such hosts. Running or not is what `service NAME status`
//! says (or, with `pattern`, whether a process matches it); enabled is whether a start link of
//! the script is in a runlevel folder, changed with `update-rc.d` (or `chkconfig`).

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ModuleError;
use crate::args::optional_boolean;
use crate::process::run;
use crate::resource::{Plan, Resource};
use crate::systemd::State;

/// Whether this host is one for this module: systemd does not run it.
pub(crate) fn applies(args: &Map<String, Value>) -> bool {
    let manager = args.get("use").and_then(Value::as_str).unwrap_or("auto");
    match manager {
        "sysvinit" | "service" => true,
        "auto" => !Path::new("/run/systemd/system").is_dir(),
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SysvService {
    name: String,
    state: Option<State>,
    #[serde(default, deserialize_with = "optional_boolean")]
    enabled: Option<bool>,
    #[serde(default, rename = "use")]
    _manager: Option<String>,
    /// Seconds between the stop and the start of a restart.
    #[serde(default)]
    sleep: Option<u64>,
    /// Running is whether a process's command line holds this, for scripts without `status`.
    #[serde(default, deserialize_with = "crate::args::text")]
    pattern: Option<String>,
    #[serde(default, alias = "args", deserialize_with = "crate::args::text")]
    arguments: Option<String>,
    /// OpenRC's; not used by init scripts (as in Ansible).
    #[serde(default, rename = "runlevel", deserialize_with = "crate::args::text")]
    _runlevel: Option<String>,
    #[serde(skip)]
    running: bool,
}

impl SysvService {
    fn script(&self) -> String {
        format!("/etc/init.d/{}", self.name)
    }

    fn is_running(&self) -> Result<bool, ModuleError> {
        if let Some(pattern) = &self.pattern {
            return Ok(run(&["pgrep", "-f", pattern.as_str()], &[])?.ok());
        }
        Ok(run(&["service", self.name.as_str(), "status"], &[])?.ok())
    }

    /// Whether a link of the script whose name starts with one of `kinds` (`S` start, `K` kill)
    /// is in a runlevel folder (Debian's `/etc/rcN.d`, Red Hat's `/etc/rc.d/rcN.d`).
    fn linked(&self, kinds: &[char]) -> bool {
        let linked = |dir: String| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    let file = e.file_name();
                    let file = file.to_string_lossy();
                    file.starts_with(kinds) && file.get(3..) == Some(self.name.as_str())
                })
            })
        };
        (0..=6).any(|n| linked(format!("/etc/rc{n}.d")) || linked(format!("/etc/rc.d/rc{n}.d")))
    }

    fn is_enabled(&self) -> bool {
        self.linked(&['S'])
    }

    /// `service NAME verb [arguments]`: its output goes to a file, not a pipe, since a daemon it
    /// starts may keep what it inherited open for as long as it runs.
    fn control(&self, verb: &str) -> Result<(), ModuleError> {
        let mut argv = vec!["service".to_string(), self.name.clone(), verb.to_string()];
        if let Some(extra) = &self.arguments {
            argv.extend(
                shell_words::split(extra).map_err(|e| {
                    ModuleError::Args(format!("service: arguments do not parse: {e}"))
                })?,
            );
        }
        let log =
            tempfile::tempfile().map_err(|e| ModuleError::io("create a temporary file", e))?;
        let err = log
            .try_clone()
            .map_err(|e| ModuleError::io("create a temporary file", e))?;
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err)
            .status()
            .map_err(|e| ModuleError::io("run service", e))?;
        if status.success() {
            return Ok(());
        }
        Err(ModuleError::Failed(format!(
            "{} failed (rc={})",
            argv.join(" "),
            status.code().unwrap_or(-1)
        )))
    }

    fn update_links(&self, enable: bool) -> Result<(), ModuleError> {
        let name = self.name.as_str();
        let argv: Vec<&str> = if Path::new("/usr/sbin/update-rc.d").exists() {
            // A script never installed has no links to switch: its defaults first, as Ansible.
            if !self.linked(&['S', 'K']) {
                crate::process::run_ok(&["update-rc.d", name, "defaults"], &[])?;
            }
            vec![
                "update-rc.d",
                name,
                if enable { "enable" } else { "disable" },
            ]
        } else {
            vec!["chkconfig", name, if enable { "on" } else { "off" }]
        };
        crate::process::run_ok(&argv, &[]).map(|_| ())
    }
}

impl Resource for SysvService {
    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        if !Path::new(&self.script()).exists() {
            return Err(ModuleError::Failed(format!(
                "Could not find the requested service {}: host",
                self.name
            )));
        }
        if let Some(enabled) = self.enabled {
            let is = self.is_enabled();
            if is != enabled {
                plan.change("enabled", Some(is.to_string()), Some(enabled.to_string()));
            }
        }
        if let Some(state) = self.state {
            self.running = self.is_running()?;
            let now = if self.running { "running" } else { "stopped" };
            let change = match state {
                State::Started => !self.running,
                State::Stopped => self.running,
                State::Restarted | State::Reloaded => true,
            };
            if change {
                plan.change("state", Some(now.into()), Some(state.word().into()));
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.has("enabled") {
            self.update_links(self.enabled == Some(true))?;
        }
        if plan.has("state") {
            match self.state {
                Some(State::Started) => self.control("start")?,
                Some(State::Stopped) => self.control("stop")?,
                Some(State::Restarted) if self.sleep.is_some() => {
                    if self.running {
                        self.control("stop")?;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(self.sleep.unwrap_or(0)));
                    self.control("start")?;
                }
                Some(State::Restarted) => self.control("restart")?,
                // A stopped service is started by a reload, as in Ansible.
                Some(State::Reloaded) if self.running => self.control("reload")?,
                Some(State::Reloaded) => self.control("start")?,
                None => {}
            }
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("name".into(), self.name.clone().into());
        if let Some(state) = self.state {
            values.insert("state".into(), state.reported().into());
        }
        if let Some(e) = self.enabled {
            values.insert("enabled".into(), e.into());
        }
    }
}
