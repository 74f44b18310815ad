//! `apt`, Debian packages, and `package`, which hands on to `apt` or `dnf`. The package database
//! is read first; the package manager runs only for what is missing (all missing packages in one
//! call), and not at all on a no-op.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, optional_boolean};
use crate::dnf::{Dnf, Names, package_state};
use crate::process::{run, run_ok};
use crate::resource::{Plan, Resource, parse_args};
use crate::{ModuleError, ModuleSpec};

pub(crate) static APT_SPEC: ModuleSpec = ModuleSpec {
    name: "apt",
    args: &[
        "name",
        "pkg",
        "package",
        "state",
        "update_cache",
        "update-cache",
        "cache_valid_time",
        "purge",
        "autoremove",
        "install_recommends",
        "install-recommends",
        "deb",
        "default_release",
        "default-release",
        "dpkg_options",
        "allow_downgrade",
        "allow-downgrade",
        "allow_downgrades",
        "allow-downgrades",
        "lock_timeout",
        "force_apt_get",
        "upgrade",
        "only_upgrade",
        "autoclean",
        "clean",
        "fail_on_autoremove",
        "force",
        "allow_unauthenticated",
        "allow-unauthenticated",
        "auto_install_module_deps",
        "allow_change_held_packages",
        "policy_rc_d",
        "update_cache_retries",
        "update_cache_retry_max_delay",
    ],
    unsupported: &[],
    free_form: false,
};

pub(crate) static PACKAGE_SPEC: ModuleSpec = ModuleSpec {
    name: "package",
    args: &["name", "state", "use"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Apt {
    #[serde(alias = "pkg", alias = "package")]
    name: Option<Names>,
    state: Option<String>,
    #[serde(default, alias = "update-cache", deserialize_with = "boolean")]
    update_cache: bool,
    #[serde(default)]
    cache_valid_time: u64,
    #[serde(default, deserialize_with = "boolean")]
    purge: bool,
    #[serde(default, deserialize_with = "boolean")]
    autoremove: bool,
    #[serde(
        default,
        alias = "install-recommends",
        deserialize_with = "optional_boolean"
    )]
    install_recommends: Option<bool>,
    deb: Option<String>,
    #[serde(alias = "default-release")]
    default_release: Option<String>,
    #[serde(default = "default_dpkg_options")]
    dpkg_options: String,
    #[serde(
        default,
        alias = "allow-downgrade",
        alias = "allow_downgrades",
        alias = "allow-downgrades",
        deserialize_with = "boolean"
    )]
    allow_downgrade: bool,
    /// Accepted for compatibility: settle waits for the dpkg lock as apt-get does.
    #[serde(default)]
    #[allow(dead_code)]
    lock_timeout: Option<u64>,
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    force_apt_get: bool,
    /// `no`, `yes`/`safe` (apt-get upgrade --with-new-pkgs), `full`/`dist` (apt-get
    /// dist-upgrade): settle always uses apt-get, as Ansible does without aptitude.
    #[serde(default, deserialize_with = "crate::args::text")]
    upgrade: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    only_upgrade: bool,
    #[serde(default, deserialize_with = "boolean")]
    autoclean: bool,
    #[serde(default, deserialize_with = "boolean")]
    clean: bool,
    #[serde(default, deserialize_with = "boolean")]
    fail_on_autoremove: bool,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    #[serde(default, alias = "allow-unauthenticated", deserialize_with = "boolean")]
    allow_unauthenticated: bool,
    #[serde(default, deserialize_with = "boolean")]
    allow_change_held_packages: bool,
    /// Accepted for compatibility: it installs Python's apt bindings, which settle does not use.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    auto_install_module_deps: bool,
    policy_rc_d: Option<i64>,
    #[serde(default = "five")]
    update_cache_retries: u32,
    #[serde(default = "twelve")]
    update_cache_retry_max_delay: u64,
    #[serde(skip)]
    report: Map<String, Value>,
}

fn five() -> u32 {
    5
}

fn twelve() -> u64 {
    12
}

/// Where apt keeps downloaded packages, which `clean` empties.
const APT_ARCHIVES: &str = "/var/cache/apt/archives";

/// The `.deb` files apt has downloaded (`clean` removes them).
fn downloaded_packages() -> Vec<String> {
    [APT_ARCHIVES.to_string(), format!("{APT_ARCHIVES}/partial")]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deb"))
        .collect()
}

/// Installs `/usr/sbin/policy-rc.d` answering `exit N` for the life of the guard (Ansible's
/// `policy_rc_d`: services are not started by package scripts), then puts back what was there.
struct PolicyRcD {
    previous: Option<Vec<u8>>,
}

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

impl PolicyRcD {
    fn install(code: Option<i64>) -> Result<Option<PolicyRcD>, ModuleError> {
        let Some(code) = code else {
            return Ok(None);
        };
        let previous = std::fs::read(POLICY_RC_D).ok();
        crate::fsutil::atomic_write(
            Path::new(POLICY_RC_D),
            format!("#!/bin/sh\nexit {code}\n").as_bytes(),
            0o755,
            None,
            None,
        )?;
        Ok(Some(PolicyRcD { previous }))
    }
}

impl Drop for PolicyRcD {
    fn drop(&mut self) {
        let _ = match &self.previous {
            Some(bytes) => std::fs::write(POLICY_RC_D, bytes),
            None => std::fs::remove_file(POLICY_RC_D),
        };
    }
}

fn default_dpkg_options() -> String {
    "force-confdef,force-confold".into()
}

/// The generic `package` module: `apt` on Debian and Ubuntu hosts, `dnf` on Fedora and RHEL
/// hosts (or whichever `use` names), with the same names and state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Package {
    name: Names,
    state: Option<String>,
    #[serde(rename = "use")]
    manager: Option<String>,
    #[serde(skip)]
    inner: Option<Manager>,
}

#[derive(Debug)]
enum Manager {
    Apt(Apt),
    Dnf(Dnf),
}

impl Package {
    fn manager(&mut self) -> Result<&mut Manager, ModuleError> {
        if self.inner.is_none() {
            let has = |p: &str| Path::new(p).exists();
            let chosen = match self.manager.as_deref() {
                None | Some("auto") if has("/usr/bin/apt-get") => "apt",
                None | Some("auto") if has("/usr/bin/dnf") => "dnf",
                None | Some("auto") => {
                    let other = [
                        "/usr/bin/yum",
                        "/sbin/apk",
                        "/usr/bin/pacman",
                        "/usr/bin/zypper",
                    ]
                    .iter()
                    .find(|p| has(p));
                    return Err(ModuleError::Failed(format!(
                        "package: this host has neither apt-get nor dnf{}; settle's package module manages apt and dnf hosts",
                        other.map(|p| format!(" (it has {p})")).unwrap_or_default()
                    )));
                }
                Some(m @ ("apt" | "dnf")) => m,
                Some("yum") if has("/usr/bin/dnf") => "dnf",
                // Ansible's words for a manager it has no module for; settle has apt and dnf.
                Some(other) => {
                    return Err(ModuleError::Failed(format!(
                        "Could not find a matching action for the \"{other}\" package manager."
                    )));
                }
            };
            self.inner = Some(if chosen == "apt" {
                // `package` is `apt` with its defaults and the same names and state.
                let mut args = Map::new();
                args.insert(
                    "name".into(),
                    serde_json::to_value(self.name.list()).unwrap_or_default(),
                );
                if let Some(state) = &self.state {
                    args.insert("state".into(), state.clone().into());
                }
                Manager::Apt(parse_args("package", &args)?)
            } else {
                let dnf = Dnf::of(self.name.list(), self.state.clone());
                dnf.validate()?;
                Manager::Dnf(dnf)
            });
        }
        self.inner
            .as_mut()
            .ok_or_else(|| ModuleError::Failed("package: no package manager chosen".into()))
    }
}

impl Resource for Package {
    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        match self.manager()? {
            Manager::Apt(apt) => apt.check(want_diff),
            Manager::Dnf(dnf) => dnf.check(want_diff),
        }
    }
    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        match self.manager()? {
            Manager::Apt(apt) => apt.apply(plan),
            Manager::Dnf(dnf) => dnf.apply(plan),
        }
    }
    fn values(&self, values: &mut Map<String, Value>) {
        match &self.inner {
            Some(Manager::Apt(apt)) => apt.values(values),
            Some(Manager::Dnf(dnf)) => dnf.values(values),
            None => {}
        }
    }
}

/// Installed version of each package, from dpkg's database.
fn installed_versions(names: &[String]) -> Result<BTreeMap<String, String>, ModuleError> {
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let mut argv = vec![
        "dpkg-query",
        "-W",
        "-f",
        "${Package}\t${db:Status-Abbrev}\t${Version}\n",
    ];
    argv.extend(names.iter().map(String::as_str));
    let ran = run(&argv, &[])?;
    for line in ran.stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() == 3 && f[1].starts_with("ii") {
            out.insert(f[0].to_string(), f[2].to_string());
        }
    }
    Ok(out)
}

/// What apt would install for a package: its candidate version.
fn candidate(name: &str) -> Result<Option<String>, ModuleError> {
    let ran = run(&["apt-cache", "policy", name], &[])?;
    Ok(ran
        .stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Candidate:")
                .map(|v| v.trim().to_string())
        })
        .filter(|v| v != "(none)"))
}

/// `name=1.2*` → (`name`, Some(`1.2*`)); `name:amd64` keeps its architecture in the name.
fn split_version(spec: &str) -> (String, Option<String>) {
    match spec.split_once('=') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (spec.to_string(), None),
    }
}

fn version_matches(installed: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => installed.starts_with(prefix),
        None => installed == wanted,
    }
}

fn cache_age() -> Option<u64> {
    let stamp = [
        "/var/lib/apt/periodic/update-success-stamp",
        "/var/lib/apt/lists",
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .max()?;
    SystemTime::now()
        .duration_since(stamp)
        .ok()
        .map(|d| d.as_secs())
}

/// `apt-get update`, tried `retries` times with a growing pause (at most `max_delay` seconds),
/// as Ansible retries it (`apt`, `apt_repository`).
pub(crate) fn update_cache(retries: u32, max_delay: u64) -> Result<(), ModuleError> {
    let mut delay = 1;
    let mut attempt = 0;
    loop {
        match run_ok(&["apt-get", "update", "-q"], APT_ENV) {
            Ok(_) => return Ok(()),
            Err(e) if attempt + 1 >= retries.max(1) => return Err(e),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_secs(delay));
                delay = (delay * 2).min(max_delay.max(1));
            }
        }
    }
}

pub(crate) const APT_ENV: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
];

impl Apt {
    fn state(&self) -> Result<&'static str, ModuleError> {
        package_state("apt", self.state.as_deref(), "present, absent, latest")
    }

    /// The apt-get command for `upgrade`, if one is asked for.
    fn upgrade_verb(&self) -> Result<Option<&'static [&'static str]>, ModuleError> {
        match self
            .upgrade
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("no" | "false") => Ok(None),
            Some("yes" | "true" | "safe") => Ok(Some(&["upgrade", "--with-new-pkgs"])),
            Some("full" | "dist") => Ok(Some(&["dist-upgrade"])),
            Some(other) => Err(ModuleError::Args(format!(
                "apt: value of upgrade must be one of: dist, full, no, safe, yes, got: {other}"
            ))),
        }
    }

    /// The packages `apt-get -s VERB` would install or upgrade.
    fn simulate(&self, verb: &[&str]) -> Result<Vec<String>, ModuleError> {
        let mut argv = vec!["apt-get", "-s"];
        argv.extend(verb);
        if let Some(release) = &self.default_release {
            argv.extend(["-t", release]);
        }
        let sim = run_ok(&argv, APT_ENV)?;
        Ok(sim
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Inst "))
            .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
            .collect())
    }

    fn update(&self) -> Result<(), ModuleError> {
        update_cache(self.update_cache_retries, self.update_cache_retry_max_delay)
    }

    fn apt_get(&self, verb: &str, packages: &[String]) -> Result<(), ModuleError> {
        let mut args: Vec<String> = vec!["apt-get".into(), "-y".into(), "-q".into()];
        for opt in self.dpkg_options.split(',').filter(|o| !o.is_empty()) {
            args.push("-o".into());
            args.push(format!("Dpkg::Options::=--{}", opt.trim()));
        }
        match self.install_recommends {
            Some(true) => args.push("--install-recommends".into()),
            Some(false) => args.push("--no-install-recommends".into()),
            None => {}
        }
        if let Some(release) = &self.default_release {
            args.extend(["-t".into(), release.clone()]);
        }
        if self.allow_downgrade {
            args.push("--allow-downgrades".into());
        }
        for (on, flag) in [
            (self.force, "--force-yes"),
            (self.allow_unauthenticated, "--allow-unauthenticated"),
            (
                self.allow_change_held_packages,
                "--allow-change-held-packages",
            ),
            (self.fail_on_autoremove, "--no-remove"),
            (self.only_upgrade && verb == "install", "--only-upgrade"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if verb == "remove" && self.purge {
            args.push("--purge".into());
        }
        let mut verb = verb.split(' ');
        args.extend(verb.by_ref().map(str::to_string));
        args.extend(packages.iter().cloned());
        run_ok(&args, APT_ENV).map(|_| ())
    }
}

impl Resource for Apt {
    fn validate(&self) -> Result<(), ModuleError> {
        self.state()?;
        self.upgrade_verb()?;
        if self.name.is_none()
            && self.deb.is_none()
            && !self.update_cache
            && !self.autoremove
            && !self.autoclean
            && !self.clean
            && self.upgrade_verb()?.is_none()
        {
            return Err(ModuleError::Args(
                "apt: give name, deb, upgrade, update_cache, autoremove, autoclean or clean".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        let state = self.state()?;
        if self.update_cache {
            let stale = self.cache_valid_time == 0
                || cache_age().is_none_or(|age| age > self.cache_valid_time);
            if stale {
                plan.change("update_cache", None, Some("apt-get update".into()));
            }
        }
        let specs = self.name.as_ref().map(Names::list).unwrap_or_default();
        let names: Vec<String> = specs.iter().map(|s| split_version(s).0).collect();
        let installed = installed_versions(&names)?;
        for spec in &specs {
            let (name, version) = split_version(spec);
            let have = installed.get(&name).cloned();
            match (state, &have, &version) {
                ("absent", Some(v), _) => plan.change(
                    &format!("package {name}"),
                    Some(v.clone()),
                    Some("absent".into()),
                ),
                ("absent", None, _) => {}
                // only_upgrade upgrades packages that are already installed.
                (_, None, _) if self.only_upgrade => {}
                (_, None, _) => plan.change(
                    &format!("package {name}"),
                    Some("absent".into()),
                    Some(version.clone().unwrap_or_else(|| "present".into())),
                ),
                (_, Some(v), Some(want)) if !version_matches(v, want) => plan.change(
                    &format!("package {name}"),
                    Some(v.clone()),
                    Some(want.clone()),
                ),
                ("latest", Some(v), None) => {
                    if let Some(c) = candidate(&name)?
                        && &c != v
                    {
                        plan.change(&format!("package {name}"), Some(v.clone()), Some(c));
                    }
                }
                _ => {}
            }
        }
        if let Some(deb) = &self.deb {
            let fields = run_ok(&["dpkg-deb", "-f", deb, "Package", "Version"], &[])?;
            let mut name = String::new();
            let mut version = String::new();
            for line in fields.stdout.lines() {
                if let Some(v) = line.strip_prefix("Package: ") {
                    name = v.trim().into();
                } else if let Some(v) = line.strip_prefix("Version: ") {
                    version = v.trim().into();
                }
            }
            let have = installed_versions(std::slice::from_ref(&name))?
                .get(&name)
                .cloned();
            if have.as_deref() != Some(version.as_str()) {
                plan.change(
                    &format!("package {name}"),
                    Some(have.unwrap_or_else(|| "absent".into())),
                    Some(format!("{version} from {deb}")),
                );
            }
        }
        if self.autoremove {
            let sim = run(&["apt-get", "-s", "autoremove"], APT_ENV)?;
            let removed: Vec<&str> = sim
                .stdout
                .lines()
                .filter_map(|l| l.strip_prefix("Remv "))
                .map(|r| r.split_whitespace().next().unwrap_or(""))
                .collect();
            if !removed.is_empty() {
                plan.change("autoremove", None, Some(removed.join(", ")));
            }
        }
        if let Some(verb) = self.upgrade_verb()? {
            let upgraded = self.simulate(verb)?;
            if !upgraded.is_empty() {
                plan.change("upgrade", None, Some(upgraded.join(", ")));
            }
        }
        if self.autoclean {
            let sim = run(&["apt-get", "-s", "autoclean"], APT_ENV)?;
            let removed: Vec<&str> = sim
                .stdout
                .lines()
                .filter_map(|l| l.strip_prefix("Del "))
                .map(|r| r.split_whitespace().next().unwrap_or(""))
                .collect();
            if !removed.is_empty() {
                plan.change("autoclean", None, Some(removed.join(", ")));
            }
        }
        // Ansible counts every `clean` as a change; settle only when there is something to
        // remove, so a drift check stays at changed=0.
        if self.clean {
            let downloaded = downloaded_packages();
            if !downloaded.is_empty() {
                plan.change("clean", Some(downloaded.join(", ")), None);
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let _policy = PolicyRcD::install(self.policy_rc_d)?;
        if plan.has("clean") {
            run_ok(&["apt-get", "clean"], APT_ENV)?;
        }
        if plan.has("update_cache") {
            self.update()?;
            let _ = std::fs::create_dir_all("/var/lib/apt/periodic");
            let _ = std::fs::write("/var/lib/apt/periodic/update-success-stamp", "");
            self.report.insert("cache_updated".into(), true.into());
        }
        let state = self.state()?;
        let specs = self.name.as_ref().map(Names::list).unwrap_or_default();
        // Every package that needs work, in one call of the package manager.
        let to_change: Vec<String> = specs
            .iter()
            .filter(|s| plan.has(&format!("package {}", split_version(s).0)))
            .cloned()
            .collect();
        if !to_change.is_empty() {
            if state == "absent" {
                let names: Vec<String> = to_change.iter().map(|s| split_version(s).0).collect();
                self.apt_get("remove", &names)?;
            } else {
                self.apt_get("install", &to_change)?;
            }
        }
        if let Some(deb) = &self.deb
            && plan.changes.iter().any(|c| {
                c.after
                    .as_deref()
                    .is_some_and(|a| a.ends_with(&format!("from {deb}")))
            })
        {
            run_ok(&["dpkg", "-i", deb], APT_ENV)?;
        }
        if plan.has("upgrade")
            && let Some(verb) = self.upgrade_verb()?
        {
            let mut verb = verb.join(" ");
            if self.autoremove {
                verb.push_str(" --auto-remove");
            }
            self.apt_get(&verb, &[])?;
        }
        if plan.has("autoremove") {
            let mut args = vec!["apt-get", "-y", "-q", "autoremove"];
            if self.purge {
                args.push("--purge");
            }
            run_ok(&args, APT_ENV)?;
        }
        if plan.has("autoclean") {
            run_ok(&["apt-get", "-y", "-q", "autoclean"], APT_ENV)?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.extend(self.report.clone());
        values.entry("cache_updated").or_insert(false.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_manager_fails_as_ansible_says() {
        let args = serde_json::json!({"name": "x", "use": "lola"});
        let out = crate::run(&crate::Request::new(
            "package",
            args.as_object().cloned().unwrap_or_default(),
        ));
        assert_eq!(
            out.msg.as_deref(),
            Some("Could not find a matching action for the \"lola\" package manager.")
        );
    }

    #[test]
    fn versions_and_globs() {
        assert_eq!(
            split_version("nginx=1.22*"),
            ("nginx".into(), Some("1.22*".into()))
        );
        assert!(version_matches("1.22.1-9", "1.22*"));
        assert!(!version_matches("1.22.1-9", "1.22"));
    }
}
