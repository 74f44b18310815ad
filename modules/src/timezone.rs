//! `community.general.timezone`: the system's time zone and whether the hardware clock keeps
//! UTC or local time, as Ansible's module sets them on Linux: with `timedatectl` where it works,
//! else (Debian without systemd) `/etc/timezone`, the `/etc/localtime` link, `dpkg-reconfigure
//! tzdata`, and `/etc/default/rcS` with `hwclock --systohc`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::text;
use crate::fsutil::{atomic_write, default_file_mode};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "community.general.timezone",
    args: &["name", "hwclock", "rtc"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
enum Hwclock {
    #[serde(rename = "local")]
    Local,
    #[serde(rename = "UTC")]
    Utc,
}

impl Hwclock {
    fn word(self) -> &'static str {
        match self {
            Hwclock::Local => "local",
            Hwclock::Utc => "UTC",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Strategy {
    /// `timedatectl`, at this path.
    Systemd(String),
    /// Debian's files and tools.
    Debian,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Timezone {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, alias = "rtc")]
    hwclock: Option<Hwclock>,
    #[serde(skip)]
    strategy: Option<Strategy>,
    #[serde(skip)]
    before: Vec<(&'static str, String)>,
    #[serde(skip)]
    executed: Vec<String>,
}

const ZONEINFO: &str = "/usr/share/zoneinfo";

fn run_checked(argv: &[&str]) -> Result<String, ModuleError> {
    process::run_ok(argv, &[]).map(|r| r.stdout)
}

/// The first capture of `^\s*LABEL\s*:\s*(\S+)` in `timedatectl status`.
fn status_field(status: &str, labels: &[&str]) -> Option<String> {
    status.lines().find_map(|l| {
        let (label, value) = l.split_once(':')?;
        labels
            .contains(&label.trim())
            .then(|| value.split_whitespace().next().map(str::to_string))
            .flatten()
    })
}

fn read(path: &str) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Ansible's `_edit_file`: the lines matching `is_it` give way to `line`, put where the first was.
fn edit_file(path: &str, is_it: impl Fn(&str) -> bool, line: &str) -> Result<(), ModuleError> {
    let text = read(path).unwrap_or_default();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = lines.iter().position(|l| is_it(l)).unwrap_or(0);
    lines.retain(|l| !is_it(l));
    let at = at.min(lines.len());
    lines.insert(at, line);
    let (mode, uid, gid) = match std::fs::metadata(path) {
        Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
        Err(_) => (default_file_mode(), None, None),
    };
    atomic_write(Path::new(path), lines.concat().as_bytes(), mode, uid, gid)
}

impl Strategy {
    fn choose() -> Result<Strategy, ModuleError> {
        if let Some(ctl) = bin_path::find("timedatectl") {
            let ctl = ctl.display().to_string();
            if process::run(&[&ctl], &[]).is_ok_and(|r| r.ok()) {
                return Ok(Strategy::Systemd(ctl));
            }
        }
        if bin_path::find("dpkg-reconfigure").is_some() {
            return Ok(Strategy::Debian);
        }
        Err(ModuleError::Failed(
            "community.general.timezone: settle sets the time zone with timedatectl, or on Debian \
             without systemd; this host has neither a working timedatectl nor dpkg-reconfigure"
                .into(),
        ))
    }

    fn get(&self, key: &str, planned: &str) -> Result<String, ModuleError> {
        match self {
            Strategy::Systemd(ctl) => {
                let status = run_checked(&[ctl, "status"])?;
                if key == "hwclock" {
                    let local = status_field(&status, &["RTC in local TZ"]).unwrap_or_default();
                    return Ok(if matches!(local.as_str(), "yes" | "true" | "1" | "on") {
                        "local".into()
                    } else {
                        "UTC".into()
                    });
                }
                Ok(status_field(&status, &["Time zone", "Timezone"]).unwrap_or_default())
            }
            Strategy::Debian if key == "hwclock" => {
                let value = match read("/etc/default/rcS").and_then(|t| {
                    t.lines().find_map(|l| {
                        let rest = l.strip_prefix("UTC")?.trim_start().strip_prefix('=')?;
                        rest.split_whitespace().next().map(str::to_string)
                    })
                }) {
                    None => "n/a".to_string(),
                    Some(v) if matches!(v.to_lowercase().as_str(), "yes" | "true" | "1" | "on") => {
                        "UTC".into()
                    }
                    Some(_) => "local".into(),
                };
                if value != planned {
                    return Ok(value);
                }
                let adjtime = read("/etc/adjtime").unwrap_or_default();
                Ok(if adjtime.lines().any(|l| l == "LOCAL") {
                    "local".into()
                } else {
                    "UTC".into()
                })
            }
            Strategy::Debian => {
                let value = read("/etc/timezone")
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.split_whitespace().next().map(str::to_string))
                    })
                    .unwrap_or_else(|| "n/a".into());
                if value != planned {
                    return Ok(value);
                }
                let localtime = Path::new("/etc/localtime");
                if let Ok(target) = std::fs::read_link(localtime) {
                    if !localtime.exists() {
                        return Ok("n/a".into());
                    }
                    let target = target.display().to_string();
                    let zone = ["/usr/share/zoneinfo/", "/etc/zoneinfo/"]
                        .iter()
                        .find_map(|d| target.find(d).map(|i| target[i + d.len()..].to_string()));
                    return Ok(zone.unwrap_or_else(|| "n/a".into()));
                }
                let same = match (
                    std::fs::read(localtime),
                    std::fs::read(format!("{ZONEINFO}/{planned}")),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                };
                Ok(if same { value } else { "n/a".into() })
            }
        }
    }

    fn set(&self, key: &str, value: &str, executed: &mut Vec<String>) -> Result<(), ModuleError> {
        match self {
            Strategy::Systemd(ctl) => {
                let (sub, value) = match key {
                    "hwclock" => ("set-local-rtc", if value == "local" { "yes" } else { "no" }),
                    _ => ("set-timezone", value),
                };
                run_checked(&[ctl, sub, value])?;
                executed.push(format!("executed `{ctl} {sub} {value}`"));
            }
            Strategy::Debian if key == "hwclock" => {
                let (option, utc) = if value == "local" {
                    ("--localtime", "no")
                } else {
                    ("--utc", "yes")
                };
                edit_file(
                    "/etc/default/rcS",
                    |l| {
                        l.strip_prefix("UTC")
                            .is_some_and(|r| r.trim_start().starts_with('='))
                    },
                    &format!("UTC={utc}\n"),
                )?;
                let hwclock = bin_path::required("hwclock")?;
                run_checked(&[&hwclock, "--systohc", option])?;
                executed.push(format!("executed `{hwclock} --systohc {option}`"));
            }
            Strategy::Debian => {
                edit_file(
                    "/etc/timezone",
                    |l| !l.trim_start().is_empty() && !l.starts_with(char::is_whitespace),
                    &format!("{value}\n"),
                )?;
                let ln = bin_path::required("ln")?;
                run_checked(&[&ln, "-sf", &format!("{ZONEINFO}/{value}"), "/etc/localtime"])?;
                let reconfigure = bin_path::required("dpkg-reconfigure")?;
                run_checked(&[&reconfigure, "--frontend", "noninteractive", "tzdata"])?;
            }
        }
        Ok(())
    }
}

impl Timezone {
    fn planned(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(h) = self.hwclock {
            out.push(("hwclock", h.word().to_string()));
        }
        if let Some(n) = &self.name {
            out.push(("name", n.clone()));
        }
        out
    }

    fn read_all(&self, strategy: &Strategy) -> Result<Vec<(&'static str, String)>, ModuleError> {
        self.planned()
            .into_iter()
            .map(|(k, planned)| strategy.get(k, &planned).map(|v| (k, v)))
            .collect()
    }
}

/// A `{key: value}` dict as Ansible's diff shows one: JSON, indented by four.
fn diff_text(values: &[(&str, String)]) -> String {
    let map: Map<String, Value> = values
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
        .collect();
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    let _ = serde::Serialize::serialize(&map, &mut ser);
    format!("{}\n", String::from_utf8_lossy(&out))
}

impl Resource for Timezone {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() && self.hwclock.is_none() {
            return Err(ModuleError::Args(
                "one of the following is required: hwclock, name".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let strategy = Strategy::choose()?;
        if let Some(name) = &self.name
            && !Path::new(&format!("{ZONEINFO}/{name}")).is_file()
        {
            return Err(ModuleError::Failed(format!(
                "Error message:\ngiven timezone \"{name}\" is not available"
            )));
        }
        self.before = self.read_all(&strategy)?;
        let planned = self.planned();
        let mut plan = Plan::default();
        for ((key, before), (_, after)) in self.before.iter().zip(&planned) {
            if before != after {
                plan.change(key, Some(before.clone()), Some(after.clone()));
            }
        }
        if !plan.is_empty() && want_diff {
            plan.content.push(ContentDiff {
                path: "timezone".into(),
                before: Some(diff_text(&self.before)),
                after: Some(diff_text(&planned)),
                summary: None,
            });
        }
        self.strategy = Some(strategy);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let Some(strategy) = self.strategy.clone() else {
            return Ok(());
        };
        for (key, after) in self.planned() {
            if plan.has(key) {
                strategy.set(key, &after, &mut self.executed)?;
            }
        }
        let after = self.read_all(&strategy)?;
        let planned = self.planned();
        if after != planned {
            let show = |v: &[(&str, String)]| {
                v.iter()
                    .map(|(k, v)| format!("'{k}': '{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(ModuleError::Failed(format!(
                "Error message:\nstill not desired state, though changes have made - planned: \
                 {{{}}}, after: {{{}}}",
                show(&planned),
                show(&after)
            )));
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let dict = |v: &[(&str, String)]| -> Value {
            Value::Object(
                v.iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
                    .collect(),
            )
        };
        values.insert(
            "diff".into(),
            serde_json::json!({"before": dict(&self.before), "after": dict(&self.planned())}),
        );
        if !self.executed.is_empty() {
            values.insert("msg".into(), self.executed.join("\n").into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timedatectl_status_fields() {
        let status = "               Local time: Wed\n                Time zone: Etc/UTC (UTC, +0000)\n          RTC in local TZ: no\n";
        assert_eq!(
            status_field(status, &["Time zone", "Timezone"]).as_deref(),
            Some("Etc/UTC")
        );
        assert_eq!(
            status_field(status, &["RTC in local TZ"]).as_deref(),
            Some("no")
        );
    }

    #[test]
    fn diffs_read_as_ansibles() {
        assert_eq!(
            diff_text(&[("name", "Etc/UTC".into())]),
            "{\n    \"name\": \"Etc/UTC\"\n}\n"
        );
    }
}
