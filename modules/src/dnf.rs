//! `dnf`: RPM packages. The RPM database is read first; dnf runs only for what needs work (all
//! missing packages in one call), and not at all on a no-op.
//!
//! This file also owns the package arguments `apt` and `package` (packages.rs) share with it
//! (`Names`, `package_state`), so the dependency runs one way: packages.rs → dnf.rs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, optional_boolean};
use crate::process::{run, run_ok};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static DNF_SPEC: ModuleSpec = ModuleSpec {
    name: "dnf",
    args: &[
        "name",
        "pkg",
        "state",
        "update_cache",
        "expire-cache",
        "enablerepo",
        "disablerepo",
        "conf_file",
        "disable_gpg_check",
        "releasever",
        "install_weak_deps",
        "allow_downgrade",
        "allowerasing",
        "nobest",
        "skip_broken",
        "exclude",
        "autoremove",
        "cacheonly",
        "lock_timeout",
        "use_backend",
        // Ansible's dnf action plugin takes `use` as another name for `use_backend`.
        "use",
    ],
    unsupported: &[
        "list",
        "installroot",
        "update_only",
        "security",
        "bugfix",
        "enable_plugin",
        "disable_plugin",
        "disable_excludes",
        "validate_certs",
        "sslverify",
        "install_repoquery",
        "download_only",
        "download_dir",
        "best",
    ],
    free_form: false,
};

/// Package names as `apt`, `dnf` and `package` take them: a list, or one comma-separated text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Names {
    List(Vec<String>),
    Text(String),
}

impl Names {
    pub(crate) fn list(&self) -> Vec<String> {
        let raw = match self {
            Names::List(l) => l.clone(),
            Names::Text(t) => t.split(',').map(str::to_string).collect(),
        };
        raw.into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect()
    }
}

/// A package's wanted state, `present` (or `installed`), `absent` (or `removed`) or `latest`;
/// `words` is how the module's error lists them.
pub(crate) fn package_state(
    module: &str,
    state: Option<&str>,
    words: &str,
) -> Result<&'static str, ModuleError> {
    match state.unwrap_or("present") {
        "present" | "installed" => Ok("present"),
        "absent" | "removed" => Ok("absent"),
        "latest" => Ok("latest"),
        other => Err(ModuleError::Args(format!(
            "{module}: state {other:?} is not one of {words}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dnf {
    #[serde(alias = "pkg")]
    name: Option<Names>,
    state: Option<String>,
    #[serde(default, alias = "expire-cache", deserialize_with = "boolean")]
    update_cache: bool,
    #[serde(default)]
    enablerepo: Option<Names>,
    #[serde(default)]
    disablerepo: Option<Names>,
    conf_file: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    disable_gpg_check: bool,
    releasever: Option<String>,
    #[serde(default, deserialize_with = "optional_boolean")]
    install_weak_deps: Option<bool>,
    /// Accepted for compatibility: dnf's install goes down to an older version it is given by
    /// name, whatever this says.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    allow_downgrade: bool,
    #[serde(default, deserialize_with = "boolean")]
    allowerasing: bool,
    #[serde(default, deserialize_with = "boolean")]
    nobest: bool,
    #[serde(default, deserialize_with = "boolean")]
    skip_broken: bool,
    #[serde(default)]
    exclude: Option<Names>,
    #[serde(default, deserialize_with = "boolean")]
    autoremove: bool,
    #[serde(default, deserialize_with = "boolean")]
    cacheonly: bool,
    /// Accepted for compatibility: dnf waits for its own lock.
    #[serde(default)]
    #[allow(dead_code)]
    lock_timeout: Option<u64>,
    /// Accepted for compatibility: settle drives the `dnf` command whatever its version.
    #[serde(default)]
    #[allow(dead_code)]
    use_backend: Option<String>,
    /// `use_backend` as Ansible's dnf action plugin also takes it (not both).
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(skip)]
    report: Map<String, Value>,
}

impl Dnf {
    /// `package` on an RPM host: dnf with the same names and state.
    pub(crate) fn of(names: Vec<String>, state: Option<String>) -> Dnf {
        Dnf {
            name: Some(Names::List(names)),
            state,
            update_cache: false,
            enablerepo: None,
            disablerepo: None,
            conf_file: None,
            disable_gpg_check: false,
            releasever: None,
            install_weak_deps: None,
            allow_downgrade: false,
            allowerasing: false,
            nobest: false,
            skip_broken: false,
            exclude: None,
            autoremove: false,
            cacheonly: false,
            lock_timeout: None,
            use_backend: None,
            use_: None,
            report: Map::new(),
        }
    }

    fn state(&self) -> Result<&'static str, ModuleError> {
        package_state(
            "dnf",
            self.state.as_deref(),
            "present, installed, latest, absent, removed",
        )
    }

    /// `dnf` with the options every call shares.
    fn dnf(&self, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec!["dnf".into(), "-y".into(), "-q".into()];
        let list = |names: &Option<Names>| names.as_ref().map(Names::list).unwrap_or_default();
        for repo in list(&self.disablerepo) {
            argv.push(format!("--disablerepo={repo}"));
        }
        for repo in list(&self.enablerepo) {
            argv.push(format!("--enablerepo={repo}"));
        }
        for package in list(&self.exclude) {
            argv.push(format!("--exclude={package}"));
        }
        if let Some(conf) = &self.conf_file {
            argv.push(format!("--config={conf}"));
        }
        if let Some(release) = &self.releasever {
            argv.push(format!("--releasever={release}"));
        }
        if self.disable_gpg_check {
            argv.push("--nogpgcheck".into());
        }
        if let Some(weak) = self.install_weak_deps {
            argv.push(format!("--setopt=install_weak_deps={weak}"));
        }
        if self.allowerasing {
            argv.push("--allowerasing".into());
        }
        if self.nobest {
            argv.push("--nobest".into());
        }
        if self.skip_broken {
            argv.push("--skip-broken".into());
        }
        if self.cacheonly {
            argv.push("--cacheonly".into());
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// One dnf call for all these packages (none when there are none).
    fn call(
        &self,
        verb: &str,
        option: Option<&str>,
        packages: &[&String],
    ) -> Result<(), ModuleError> {
        if packages.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&str> = std::iter::once(verb).chain(option).collect();
        args.extend(packages.iter().map(|p| p.as_str()));
        run_ok(&self.dnf(&args), &[]).map(|_| ())
    }

    /// Which of the wanted packages have a newer version in the repositories, as dnf's metadata
    /// cache knows it now (check mode reads, it does not refresh).
    fn updates(&self, names: &[String]) -> Result<BTreeMap<String, String>, ModuleError> {
        let mut args = vec!["check-update"];
        args.extend(names.iter().map(String::as_str));
        let ran = run(&self.dnf(&args), &[])?;
        // 100: updates are listed; 0: none; anything else is an error.
        match ran.rc {
            0 => Ok(BTreeMap::new()),
            100 => Ok(ran
                .stdout
                .lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let (package, version) = (f.next()?, f.next()?);
                    let name = package.rsplit_once('.').map_or(package, |(n, _)| n);
                    names
                        .iter()
                        .any(|n| n == name)
                        .then(|| (name.to_string(), version.to_string()))
                })
                .collect()),
            rc => Err(ModuleError::Failed(format!(
                "dnf check-update failed (rc={rc}): {}",
                ran.stderr.trim()
            ))),
        }
    }
}

/// Installed `version-release` of each spec (a name, or a name with its version), from the RPM
/// database.
fn installed(specs: &[String]) -> Result<BTreeMap<String, String>, ModuleError> {
    let mut out = BTreeMap::new();
    if specs.is_empty() {
        return Ok(out);
    }
    let mut argv = vec!["rpm", "-q", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"];
    argv.extend(specs.iter().map(String::as_str));
    let ran = run(&argv, &[])?;
    for line in ran.stdout.lines() {
        if let Some((name, version)) = line.split_once('\t') {
            // A spec is either the name or the name followed by -version[-release].
            for spec in specs {
                if spec == name || spec.strip_prefix(name).is_some_and(|v| v.starts_with('-')) {
                    out.insert(spec.clone(), version.to_string());
                }
            }
        }
    }
    Ok(out)
}

impl Resource for Dnf {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.use_.is_some() && self.use_backend.is_some() {
            // Ansible's action plugin refuses it before the module runs: a plain failure.
            return Err(ModuleError::Failed(
                "parameters are mutually exclusive: ('use', 'use_backend')".into(),
            ));
        }
        self.state()?;
        if self.name.is_none() && !self.update_cache && !self.autoremove {
            return Err(ModuleError::Args(
                "dnf: give name, update_cache or autoremove".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        let state = self.state()?;
        if self.update_cache {
            // As Ansible's dnf: refreshing the metadata is not a change of the host.
            plan.quietly("makecache");
        }
        let specs = self.name.as_ref().map(Names::list).unwrap_or_default();
        let have = installed(&specs)?;
        for spec in &specs {
            match (state, have.get(spec)) {
                ("absent", Some(v)) => plan.change(
                    &format!("package {spec}"),
                    Some(v.clone()),
                    Some("absent".into()),
                ),
                ("absent", None) => {}
                (_, None) => plan.change(
                    &format!("package {spec}"),
                    Some("absent".into()),
                    Some("present".into()),
                ),
                _ => {}
            }
        }
        if state == "latest" {
            let present: Vec<String> = specs
                .iter()
                .filter(|s| have.contains_key(*s))
                .cloned()
                .collect();
            if !present.is_empty() {
                for (name, version) in self.updates(&present)? {
                    plan.change(
                        &format!("package {name}"),
                        have.get(&name).cloned(),
                        Some(version),
                    );
                }
            }
        }
        if self.autoremove && state != "absent" {
            let ran = run(&self.dnf(&["--assumeno", "autoremove"]), &[])?;
            let removing = ran
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with("Removing"));
            if removing {
                plan.change("autoremove", None, Some("unneeded dependencies".into()));
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.has_quiet("makecache") {
            run_ok(&self.dnf(&["makecache", "--refresh"]), &[])?;
            self.report.insert("cache_updated".into(), true.into());
        }
        let specs = self.name.as_ref().map(Names::list).unwrap_or_default();
        let to_change: Vec<&String> = specs
            .iter()
            .filter(|s| plan.has(&format!("package {s}")))
            .collect();
        if self.state()? == "absent" {
            let keep_dependencies = (!self.autoremove).then_some("--noautoremove");
            self.call("remove", keep_dependencies, &to_change)?;
        } else {
            let (missing, outdated): (Vec<&String>, Vec<&String>) =
                to_change.into_iter().partition(|s| {
                    plan.changes.iter().any(|c| {
                        c.field == format!("package {s}") && c.before.as_deref() == Some("absent")
                    })
                });
            self.call("install", None, &missing)?;
            self.call("upgrade", None, &outdated)?;
        }
        if plan.has("autoremove") {
            run_ok(&self.dnf(&["autoremove"]), &[])?;
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
    use crate::{Request, run};

    #[test]
    fn use_is_another_name_for_use_backend_never_both() {
        let args = serde_json::json!({"name": "at", "use": "dnf", "use_backend": "dnf"});
        let out = run(&Request::new(
            "dnf",
            args.as_object().cloned().unwrap_or_default(),
        ));
        assert!(out.failed && !out.changed);
        assert_eq!(
            out.msg.as_deref(),
            Some("parameters are mutually exclusive: ('use', 'use_backend')")
        );
    }
}
