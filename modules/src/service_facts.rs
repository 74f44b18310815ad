//! `service_facts`: the host's services as Ansible's module lists them, in
//! `ansible_facts.services`: SysV init scripts from `service --status-all` (`source: sysv`), then
//! every systemd service unit (`source: systemd`) with its `state` (`running`, `stopped`, or the
//! unit's ActiveState when it is not loaded) and `status` (the unit file's state, unless the unit
//! is `not-found`, `masked` or `failed`). Changes nothing.
//!
//! Ansible asks `systemctl show` once per unit file that is not loaded; settle asks once for all
//! of them (same answers: a template unit, which `systemctl show` refuses, is `unknown`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "service_facts",
    args: &[],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {}

/// Unit states that say more than `active`/`inactive`: kept as the status whatever the unit
/// file says.
const BAD_STATES: &[&str] = &["not-found", "masked", "failed"];

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let _: Args = parse_args("service_facts", &request.args)?;
    let mut services = Map::new();
    let mut warnings: Vec<String> = Vec::new();
    sysv_services(&mut services, &mut warnings)?;
    if systemd_booted() {
        systemd_services(&mut services, &mut warnings)?;
    }
    let mut values = Map::new();
    if !warnings.is_empty() {
        values.insert("warnings".into(), warnings.into());
    }
    if services.is_empty() {
        return Ok(Outcome {
            skipped: true,
            msg: Some(
                "Failed to find any services. This can be due to privileges or some other \
                 configuration issue."
                    .into(),
            ),
            values,
            ..Outcome::default()
        });
    }
    values.insert(
        "ansible_facts".into(),
        json!({ "services": Value::Object(services) }),
    );
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// Ansible's `is_systemd_managed`: systemctl is there and systemd booted the host.
fn systemd_booted() -> bool {
    if bin_path::find("systemctl").is_none() {
        return false;
    }
    if [
        "/run/systemd/system/",
        "/dev/.run/systemd/",
        "/dev/.systemd/",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
    {
        return true;
    }
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

/// `service --status-all` lines `[ + ]  name`, when the host has `service` and neither
/// chkconfig nor OpenRC (whose listings Ansible reads instead; settle does not).
fn sysv_services(
    services: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ModuleError> {
    let Some(service) = bin_path::find("service") else {
        return Ok(());
    };
    if bin_path::find("chkconfig").is_some() || bin_path::find("rc-status").is_some() {
        return Ok(());
    }
    let ran = process::run(&[service.to_string_lossy().as_ref(), "--status-all"], &[])?;
    if ran.rc == 4 && !std::path::Path::new("/etc/init.d").exists() {
        return Ok(());
    }
    if ran.rc != 0 {
        warnings.push(format!(
            "Unable to query 'service' tool ({}): {}",
            ran.rc, ran.stderr
        ));
    }
    for line in ran.stdout.lines() {
        if let Some((state, name)) = sysv_line(line) {
            services.insert(
                name.to_string(),
                json!({"name": name, "state": state, "source": "sysv"}),
            );
        }
    }
    Ok(())
}

/// `^\s*\[ (\+|\-) \]\s+(.+)$`: the state and the name of one `service --status-all` line.
fn sysv_line(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.trim_start().strip_prefix("[ ")?;
    let state = match rest.chars().next()? {
        '+' => "running",
        '-' => "stopped",
        _ => return None,
    };
    let rest = rest[1..].strip_prefix(" ]")?;
    let name = rest.trim_start();
    if name.len() == rest.len() || name.is_empty() {
        return None;
    }
    Some((state, name))
}

fn systemd_services(
    services: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ModuleError> {
    let Some(systemctl) = bin_path::find("systemctl") else {
        return Ok(());
    };
    let systemctl = systemctl.to_string_lossy().into_owned();
    let units = process::run(
        &[
            systemctl.as_str(),
            "list-units",
            "--no-pager",
            "--type",
            "service",
            "--all",
            "--plain",
        ],
        &[],
    )?;
    if units.rc != 0 {
        warnings.push(format!(
            "Could not list units from systemd: {}",
            units.stderr
        ));
    } else {
        for line in units.stdout.lines().filter(|l| l.contains(".service")) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 {
                continue;
            }
            // systemd's own columns can mislead: a bad state anywhere before the description's
            // last word wins.
            let head = &fields[..fields.len() - 1];
            let status = BAD_STATES
                .iter()
                .find(|bad| head.contains(bad))
                .copied()
                .unwrap_or(fields[2]);
            let state = if fields[3] == "running" {
                "running"
            } else {
                "stopped"
            };
            services.insert(
                fields[0].to_string(),
                json!({"name": fields[0], "state": state, "status": status, "source": "systemd"}),
            );
        }
    }
    let files = process::run(
        &[
            systemctl.as_str(),
            "list-unit-files",
            "--no-pager",
            "--type",
            "service",
            "--all",
        ],
        &[],
    )?;
    if files.rc != 0 {
        warnings.push(format!(
            "Could not get unit files data from systemd: {}",
            files.stderr
        ));
        return Ok(());
    }
    let mut unloaded: Vec<(String, String)> = Vec::new();
    for line in files.stdout.lines().filter(|l| l.contains(".service")) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(status)) = (words.next(), words.next()) else {
            return Err(ModuleError::Failed(format!(
                "Malformed output discovered from systemd list-unit-files: {line}"
            )));
        };
        match services.get_mut(name) {
            Some(known) => {
                let bad = known["status"]
                    .as_str()
                    .is_some_and(|s| BAD_STATES.contains(&s));
                if !bad {
                    known["status"] = status.into();
                }
            }
            None => unloaded.push((name.to_string(), status.to_string())),
        }
    }
    let states = active_states(&systemctl, &unloaded)?;
    for ((name, status), state) in unloaded.into_iter().zip(states) {
        services.insert(
            name.clone(),
            json!({"name": name, "state": state, "status": status, "source": "systemd"}),
        );
    }
    Ok(())
}

/// The ActiveState of each unit (`unknown` where systemctl cannot say), asked in one call; one
/// call per unit only if that one fails.
fn active_states(systemctl: &str, units: &[(String, String)]) -> Result<Vec<String>, ModuleError> {
    let unknown = || "unknown".to_string();
    // Template units (`getty@.service`) are no unit systemctl shows.
    let asked: Vec<&str> = units
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.ends_with("@.service"))
        .collect();
    let mut answers: Vec<String> = Vec::new();
    if !asked.is_empty() {
        let mut argv = vec![systemctl, "show", "--property=ActiveState"];
        argv.extend(asked.iter().copied());
        let ran = process::run(&argv, &[])?;
        let blocks: Vec<String> = ran
            .stdout
            .split("\n\n")
            .map(|b| b.trim().trim_start_matches("ActiveState=").to_string())
            .filter(|b| !b.is_empty())
            .collect();
        if ran.rc == 0 && blocks.len() == asked.len() {
            answers = blocks;
        } else {
            for name in &asked {
                let ran = process::run(&[systemctl, "show", name, "--property=ActiveState"], &[])?;
                answers.push(if ran.rc == 0 && !ran.stdout.is_empty() {
                    ran.stdout
                        .replace("ActiveState=", "")
                        .trim_end()
                        .to_string()
                } else {
                    unknown()
                });
            }
        }
    }
    let mut answers = answers.into_iter();
    Ok(units
        .iter()
        .map(|(name, _)| {
            if name.ends_with("@.service") {
                unknown()
            } else {
                answers.next().unwrap_or_else(unknown)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysv_lines_as_ansibles_pattern_reads_them() {
        assert_eq!(sysv_line(" [ + ]  ssh"), Some(("running", "ssh")));
        assert_eq!(
            sysv_line(" [ - ]  hwclock.sh"),
            Some(("stopped", "hwclock.sh"))
        );
        assert_eq!(sysv_line(" [ ? ]  odd"), None);
        assert_eq!(sysv_line(" [ + ]"), None);
    }
}
