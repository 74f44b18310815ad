//! `pip`: Python packages in the host's Python or in a virtualenv, with Ansible's arguments.
//!
//! Ansible runs `pip install` every time and reads "Successfully installed" from its output.
//! settle first asks what pip would do, so a no-op runs no install and check mode predicts
//! exactly: for plain requirements (`name`, `name>=1.2,<2`) it compares `pip list` with the
//! specifiers (PEP 440, pre-releases allowed, as Ansible's check); for the rest (`latest`,
//! requirement files, URLs and paths, `editable`, extra arguments that change what is installed)
//! it asks `pip install --dry-run --report -`, and counts a change when pip would install
//! something. `forcereinstall` always changes. Without a virtualenv yet, everything asked for is
//! a change.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::boolean;
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, fsutil};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "pip",
    args: &[
        "name",
        "version",
        "requirements",
        "virtualenv",
        "virtualenv_site_packages",
        "virtualenv_command",
        "virtualenv_python",
        "state",
        "extra_args",
        "editable",
        "chdir",
        "executable",
        "umask",
        "break_system_packages",
    ],
    unsupported: &[],
    free_form: false,
};

fn virtualenv_command() -> String {
    "virtualenv".into()
}

fn present() -> String {
    "present".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pip {
    #[serde(default)]
    name: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::args::text")]
    version: Option<String>,
    #[serde(default)]
    requirements: Option<String>,
    #[serde(default)]
    virtualenv: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    virtualenv_site_packages: bool,
    #[serde(default = "virtualenv_command")]
    virtualenv_command: String,
    #[serde(default)]
    virtualenv_python: Option<String>,
    #[serde(default = "present")]
    state: String,
    #[serde(default)]
    extra_args: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    editable: bool,
    #[serde(default)]
    chdir: Option<String>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default, deserialize_with = "crate::args::text")]
    umask: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    break_system_packages: bool,
    /// The Python Ansible's pip module would run with (`ansible_python_interpreter`), whose pip
    /// it uses when no executable or virtualenv is given.
    #[serde(default, rename = "_settle_python")]
    settle_python: Option<String>,

    /// Worked out by `check`, used by `apply` and the return values.
    #[serde(skip)]
    work: Work,
}

#[derive(Debug, Default)]
struct Work {
    /// The virtualenv's folder, `chdir` applied.
    env: Option<PathBuf>,
    chdir: PathBuf,
    umask: Option<u32>,
    /// The requirements as pip is given them (names recovered, `version` applied).
    packages: Vec<String>,
    /// pip as a command (`[/x/bin/pip]` or `[python3, -m, pip]`); known once the env exists.
    pip: Vec<String>,
    /// The install or uninstall command.
    cmd: Vec<String>,
    stdout: String,
    stderr: String,
}

impl Pip {
    fn verb(&self) -> &'static [&'static str] {
        match self.state.as_str() {
            "absent" => &["uninstall", "-y"],
            "latest" => &["install", "-U"],
            "forcereinstall" => &["install", "-U", "--force-reinstall"],
            _ => &["install"],
        }
    }

    /// The extra arguments, with `-e` added for `editable` as Ansible adds it.
    fn extra_args(&self) -> Result<Vec<String>, ModuleError> {
        let mut extra = self.extra_args.clone().unwrap_or_default();
        if self.editable {
            let words: Vec<&str> = extra.split(' ').filter(|w| !w.is_empty()).collect();
            if !words.contains(&"-e") {
                extra = if extra.is_empty() {
                    "-e".into()
                } else {
                    format!("{extra} -e")
                };
            }
        }
        shell_words::split(&extra).map_err(|e| ModuleError::Args(format!("pip: extra_args: {e}")))
    }

    /// The packages to name on pip's command line (none with `requirements`).
    fn package_args(&self) -> Result<Vec<String>, ModuleError> {
        let Some(names) = &self.name else {
            return Ok(Vec::new());
        };
        let mut packages = recover_package_names(names);
        if let Some(version) = &self.version {
            if packages.len() > 1 {
                return Err(ModuleError::Failed(
                    "'version' argument is ambiguous when installing multiple package \
                     distributions. Please specify version restrictions next to each package \
                     in 'name' argument."
                        .into(),
                ));
            }
            if let Some(first) = packages.first_mut() {
                if Requirement::parse(first).is_some_and(|r| !r.specifiers.is_empty()) {
                    return Err(ModuleError::Failed(
                        "The 'version' argument conflicts with any version specifier provided \
                         along with a package name. Please keep the version specifier, but \
                         remove the 'version' argument."
                            .into(),
                    ));
                }
                let version = version.trim_start();
                let separator = if version.starts_with(|c: char| c.is_ascii_digit()) {
                    "=="
                } else {
                    " "
                };
                *first = format!("{}{separator}{version}", first.trim());
            }
        }
        Ok(packages)
    }

    fn python(&self) -> String {
        if let Some(python) = &self.settle_python {
            return python.clone();
        }
        bin_path::find("python3")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "python3".into())
    }

    /// Ansible's `_get_pip`: the given executable, the virtualenv's pip3 or pip, or the host
    /// Python's pip module, or pip3 on the path.
    fn find_pip(&self, env: Option<&Path>) -> Result<Vec<String>, ModuleError> {
        if let Some(exe) = &self.executable {
            if Path::new(exe).is_absolute() {
                return Ok(vec![exe.clone()]);
            }
            return bin_path::find(exe)
                .map(|p| vec![p.to_string_lossy().into_owned()])
                .ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "Unable to find any of {exe} to use.  pip needs to be installed."
                    ))
                });
        }
        if let Some(env) = env {
            for name in ["pip3", "pip"] {
                let candidate = env.join("bin").join(name);
                if is_executable(&candidate) {
                    return Ok(vec![candidate.to_string_lossy().into_owned()]);
                }
            }
            return Err(ModuleError::Failed(format!(
                "Unable to find pip in the virtualenv, {}, under any of these names: pip3, pip. \
                 Make sure pip is present in the virtualenv.",
                env.display()
            )));
        }
        let python = self.python();
        let has_module = Command::new(&python)
            .args([
                "-c",
                "import importlib.util,sys; sys.exit(importlib.util.find_spec('pip') is None)",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_module {
            return Ok(vec![python, "-m".into(), "pip".into()]);
        }
        bin_path::find("pip3")
            .map(|p| vec![p.to_string_lossy().into_owned()])
            .ok_or_else(|| {
                ModuleError::Failed(
                    "Unable to find any of pip3 to use.  pip needs to be installed.".into(),
                )
            })
    }

    /// Runs a command in `chdir`, with the virtualenv's bin first on the path and `umask`.
    fn run(&self, argv: &[String]) -> Result<Ran, ModuleError> {
        let Some((program, args)) = argv.split_first() else {
            return Err(ModuleError::Failed("pip: empty command".into()));
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.work.chdir)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("LC_MESSAGES", "C")
            .stdin(Stdio::null());
        if let Some(env) = &self.work.env {
            let path = std::env::var("PATH").unwrap_or_default();
            command.env("PATH", format!("{}:{path}", env.join("bin").display()));
        }
        if self.break_system_packages {
            command.env("PIP_BREAK_SYSTEM_PACKAGES", "1");
        }
        if let Some(mask) = self.work.umask {
            // SAFETY: umask is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        let output = command
            .output()
            .map_err(|e| ModuleError::io(format!("run {program}"), e))?;
        Ok(Ran {
            rc: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Ansible's `_fail`: what pip printed, as the message, and the command.
    fn failure(&self, cmd: &[String], ran: &Ran, out: &str, err: &str) -> ModuleError {
        let out = format!("{out}{}", ran.stdout);
        let err = format!("{err}{}", ran.stderr);
        let mut msg = String::new();
        if !out.is_empty() {
            msg += &format!("stdout: {out}");
        }
        if !err.is_empty() {
            msg += &format!("\n:stderr: {err}");
        }
        let mut values = Map::new();
        values.insert("cmd".into(), cmd.to_vec().into());
        ModuleError::FailedWith { msg, values }
    }

    /// Installed distributions by canonical name: `pip list --format=json`, or `pip freeze`
    /// when that fails.
    fn installed(&self) -> Result<BTreeMap<String, String>, ModuleError> {
        let mut argv = self.work.pip.clone();
        argv.extend(["list".into(), "--format=json".into()]);
        let ran = self.run(&argv)?;
        let mut out = BTreeMap::new();
        if ran.rc == 0
            && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(ran.stdout.trim())
        {
            for item in items {
                if let (Some(n), Some(v)) = (item["name"].as_str(), item["version"].as_str()) {
                    out.insert(canonical_name(n), v.to_string());
                }
            }
            return Ok(out);
        }
        let mut argv = self.work.pip.clone();
        argv.push("freeze".into());
        let ran = self.run(&argv)?;
        if ran.rc != 0 {
            return Err(self.failure(&argv, &ran, "", ""));
        }
        for line in ran.stdout.lines() {
            if let Some((n, v)) = line.split_once("==") {
                out.insert(canonical_name(n), v.trim().to_string());
            }
        }
        Ok(out)
    }

    /// What `pip install --dry-run` would install: (name, version) pairs; `None` when this
    /// pip has no dry run (older than 22.2).
    fn would_install(&self, args: &[String]) -> Result<Option<Vec<(String, String)>>, ModuleError> {
        let mut argv = self.work.pip.clone();
        argv.extend(
            ["install", "--dry-run", "--quiet", "--report", "-"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv.extend(args.iter().skip(1).cloned());
        let ran = self.run(&argv)?;
        if ran.rc != 0 {
            if ran.stderr.contains("no such option: --dry-run")
                || ran.stderr.contains("no such option: --report")
            {
                return Ok(None);
            }
            return Err(self.failure(&argv, &ran, "", ""));
        }
        let start = ran.stdout.find('{').unwrap_or(0);
        let report: Value = serde_json::from_str(&ran.stdout[start..])
            .map_err(|e| ModuleError::Failed(format!("pip's --report output is not JSON ({e})")))?;
        Ok(Some(
            report["install"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| {
                            let meta = &i["metadata"];
                            (
                                meta["name"].as_str().unwrap_or("?").to_string(),
                                meta["version"].as_str().unwrap_or("?").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ))
    }
}

struct Ran {
    rc: i32,
    stdout: String,
    stderr: String,
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `-m venv` or `pyvenv`: Python's own venv, which takes no `-p`.
fn is_venv_command(argv: &[String]) -> bool {
    if argv.first().is_some_and(|a| a == "pyvenv") {
        return true;
    }
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        if w == "-m" {
            return words.next().is_some_and(|m| m == "venv");
        }
        if let Some(m) = w.strip_prefix("-m") {
            return m.trim_start_matches('=') == "venv";
        }
    }
    false
}

impl Resource for Pip {
    fn validate(&self) -> Result<(), ModuleError> {
        if !["present", "absent", "latest", "forcereinstall"].contains(&self.state.as_str()) {
            return Err(ModuleError::Args(format!(
                "value of state must be one of: present, absent, latest, forcereinstall, got: {}",
                self.state
            )));
        }
        match (&self.name, &self.requirements) {
            (None, None) => {
                return Err(ModuleError::Args(
                    "one of the following is required: name, requirements".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: name|requirements".into(),
                ));
            }
            _ => {}
        }
        if self.executable.is_some() && self.virtualenv.is_some() {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: executable|virtualenv".into(),
            ));
        }
        if self.state == "latest" && self.version.is_some() {
            return Err(ModuleError::Failed(
                "version is incompatible with state=latest".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        if let Some(mask) = &self.umask {
            self.work.umask = Some(
                u32::from_str_radix(mask, 8)
                    .map_err(|_| ModuleError::Failed("umask must be an octal integer".into()))?,
            );
        }
        let chdir = self
            .chdir
            .as_deref()
            .map(|c| fsutil::expand_path(Path::new(c)));
        let env = self.virtualenv.as_deref().map(|e| {
            let e = fsutil::expand_path(Path::new(e));
            match &chdir {
                Some(c) => c.join(e),
                None => e,
            }
        });
        self.work.chdir = chdir.unwrap_or_else(std::env::temp_dir);
        self.work.env = env.clone();
        self.work.packages = self.package_args()?;
        let extra = self.extra_args()?;
        let mut cmd: Vec<String> = self.verb().iter().map(|s| s.to_string()).collect();
        cmd.extend(extra.iter().cloned());
        if self.name.is_some() {
            cmd.extend(self.work.packages.iter().cloned());
        } else if let Some(req) = &self.requirements {
            cmd.extend(["-r".to_string(), req.clone()]);
        }
        // `cmd` is completed with pip in front once pip is known.
        self.work.cmd = cmd.clone();
        let missing_env = env
            .as_ref()
            .is_some_and(|e| !e.join("bin").join("activate").exists());
        if missing_env {
            if let Some(env) = &env {
                plan.change("virtualenv", None, Some(env.to_string_lossy().into_owned()));
            }
            if self.state != "absent" {
                for p in &self.work.packages {
                    let name = Requirement::parse(p).map_or_else(|| p.clone(), |r| r.name);
                    plan.change(
                        &format!("package {name}"),
                        Some("absent".into()),
                        Some(p.trim().to_string()),
                    );
                }
                if let Some(req) = &self.requirements {
                    plan.change(
                        &format!("requirements {req}"),
                        None,
                        Some("installed".into()),
                    );
                }
            }
            return Ok(plan);
        }
        self.work.pip = self.find_pip(env.as_deref())?;
        self.work.cmd = self.work.pip.iter().cloned().chain(cmd.clone()).collect();
        let installed = self.installed()?;
        let requirements: Vec<Option<Requirement>> = self
            .work
            .packages
            .iter()
            .map(|p| Requirement::parse(p))
            .collect();
        let upgrading = extra.iter().any(|a| {
            matches!(
                a.as_str(),
                "-U" | "--upgrade" | "--force-reinstall" | "-e" | "--editable" | "-r"
            ) || a.starts_with("--upgrade-strategy")
                || a.starts_with("--requirement")
        });
        let plain =
            self.requirements.is_none() && !upgrading && requirements.iter().all(Option::is_some);
        match self.state.as_str() {
            "absent" => {
                for (text, req) in self.work.packages.iter().zip(&requirements) {
                    let name = req
                        .as_ref()
                        .map_or_else(|| canonical_name(text), |r| r.name.clone());
                    // Ansible uninstalls what is installed whatever version it is.
                    if let Some(have) = installed.get(&name) {
                        plan.change(
                            &format!("package {name}"),
                            Some(have.clone()),
                            Some("absent".into()),
                        );
                    }
                }
            }
            "present" if plain => {
                for (text, req) in self.work.packages.iter().zip(&requirements) {
                    let Some(req) = req else { continue };
                    let have = installed.get(&req.name);
                    if !have.is_some_and(|v| req.satisfied_by(v)) {
                        plan.change(
                            &format!("package {}", req.name),
                            Some(have.cloned().unwrap_or_else(|| "absent".into())),
                            Some(text.trim().to_string()),
                        );
                    }
                }
            }
            "forcereinstall" => {
                for p in &self.work.packages {
                    plan.change(&format!("package {p}"), None, Some("reinstalled".into()));
                }
                if let Some(req) = &self.requirements {
                    plan.change(
                        &format!("requirements {req}"),
                        None,
                        Some("reinstalled".into()),
                    );
                }
            }
            _ => match self.would_install(&cmd)? {
                Some(wanted) => {
                    for (name, version) in wanted {
                        let have = installed.get(&canonical_name(&name)).cloned();
                        plan.change(
                            &format!("package {name}"),
                            Some(have.unwrap_or_else(|| "absent".into())),
                            Some(version),
                        );
                    }
                }
                None => plan.change("packages", None, Some("pip install".into())),
            },
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let (mut out, mut err) = (String::new(), String::new());
        if plan.has("virtualenv")
            && let Some(env) = self.work.env.clone()
        {
            let mut argv = shell_words::split(&self.virtualenv_command)
                .map_err(|e| ModuleError::Args(format!("pip: virtualenv_command: {e}")))?;
            let Some(first) = argv.first().cloned() else {
                return Err(ModuleError::Args("pip: virtualenv_command is empty".into()));
            };
            if !first.contains('/') {
                argv[0] = bin_path::required(&first)?;
            }
            if self.virtualenv_site_packages {
                argv.push("--system-site-packages".into());
            } else {
                let help = self.run(&[argv[0].clone(), "--help".into()])?;
                if help.rc != 0 {
                    return Err(ModuleError::Failed(format!(
                        "Could not get output from {} --help: {}{}",
                        argv[0], help.stdout, help.stderr
                    )));
                }
                if help
                    .stdout
                    .split_whitespace()
                    .any(|w| w == "--no-site-packages")
                {
                    argv.push("--no-site-packages".into());
                }
            }
            if !is_venv_command(&argv) {
                argv.push(format!(
                    "-p{}",
                    self.virtualenv_python
                        .clone()
                        .unwrap_or_else(|| self.python())
                ));
            } else if self.virtualenv_python.is_some() {
                return Err(ModuleError::Failed(
                    "virtualenv_python should not be used when using the venv module or pyvenv \
                     as virtualenv_command"
                        .into(),
                ));
            }
            argv.push(env.to_string_lossy().into_owned());
            let ran = self.run(&argv)?;
            if ran.rc != 0 {
                return Err(self.failure(&argv, &ran, &out, &err));
            }
            out += &ran.stdout;
            err += &ran.stderr;
            self.work.pip = self.find_pip(Some(&env))?;
            let verb = std::mem::take(&mut self.work.cmd);
            self.work.cmd = self.work.pip.iter().cloned().chain(verb).collect();
        }
        let cmd = self.work.cmd.clone();
        let ran = self.run(&cmd)?;
        let absent_already = ran.rc == 1
            && self.state == "absent"
            && (ran.stdout.contains("not installed") || ran.stderr.contains("not installed"));
        if ran.rc != 0 && !absent_already {
            return Err(self.failure(&cmd, &ran, &out, &err));
        }
        self.work.stdout = out + &ran.stdout;
        self.work.stderr = err + &ran.stderr;
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("cmd".into(), self.work.cmd.clone().into());
        values.insert(
            "name".into(),
            self.name.clone().map_or(Value::Null, Value::from),
        );
        values.insert(
            "version".into(),
            self.version.clone().map_or(Value::Null, Value::from),
        );
        values.insert("state".into(), self.state.clone().into());
        values.insert(
            "requirements".into(),
            self.requirements.clone().map_or(Value::Null, Value::from),
        );
        values.insert(
            "virtualenv".into(),
            self.work
                .env
                .as_ref()
                .map_or(Value::Null, |e| e.to_string_lossy().into_owned().into()),
        );
        values.insert("stdout".into(), self.work.stdout.clone().into());
        values.insert("stderr".into(), self.work.stderr.clone().into());
    }
}

/// PEP 503's normal form of a distribution name: runs of `-`, `_`, `.` are one `-`, lower case.
fn canonical_name(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Ansible's `_recover_package_name`: `['django>1.11.1', '<1.11.3']` (a list split at commas)
/// becomes `['django>1.11.1,<1.11.3']`.
fn recover_package_names(names: &[String]) -> Vec<String> {
    let parts: Vec<&str> = names.iter().flat_map(|n| n.split(',')).collect();
    let is_name = |s: &str| {
        !["<=", ">=", "~=", "==", "!=", "<", ">"]
            .iter()
            .any(|op| s.trim_start().starts_with(op))
    };
    let mut packages = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut in_brackets = false;
    for part in parts {
        if is_name(part) && !in_brackets {
            if !current.is_empty() {
                packages.push(current.join(","));
            }
            current.clear();
        }
        if part.contains('[') {
            in_brackets = true;
        }
        if in_brackets && part.contains(']') {
            in_brackets = false;
        }
        current.push(part);
    }
    packages.push(current.join(","));
    packages
}

/// A plain requirement: a name, extras, and version specifiers (no URL, no path).
#[derive(Debug)]
struct Requirement {
    name: String,
    specifiers: Vec<(String, String)>,
}

impl Requirement {
    fn parse(text: &str) -> Option<Requirement> {
        let re = Regex::new(
            r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*\(?([^;()@]*)\)?\s*(;.*)?$",
        )
        .ok()?;
        let c = re.captures(text)?;
        let name = canonical_name(&c[1]);
        let spec_re = Regex::new(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*([^\s,]+)\s*$").ok()?;
        let mut specifiers = Vec::new();
        let specs = c.get(3).map_or("", |m| m.as_str()).trim();
        if !specs.is_empty() {
            for spec in specs.split(',') {
                let s = spec_re.captures(spec)?;
                specifiers.push((s[1].to_string(), s[2].to_string()));
            }
        }
        Some(Requirement { name, specifiers })
    }

    /// `SpecifierSet.contains(version, prereleases=True)`.
    fn satisfied_by(&self, version: &str) -> bool {
        let Some(have) = Version::parse(version) else {
            return false;
        };
        self.specifiers.iter().all(|(op, v)| {
            if op == "===" {
                return version.eq_ignore_ascii_case(v);
            }
            if let Some(prefix) = v.strip_suffix(".*") {
                let Some(want) = Version::parse(prefix) else {
                    return false;
                };
                let matches = have.epoch == want.epoch
                    && (0..want.release.len())
                        .all(|i| have.release.get(i).copied().unwrap_or(0) == want.release[i]);
                return match op.as_str() {
                    "==" => matches,
                    "!=" => !matches,
                    _ => false,
                };
            }
            let Some(want) = Version::parse(v) else {
                return false;
            };
            let public = have.public();
            match op.as_str() {
                "==" if want.local.is_empty() => public.key() == want.key(),
                "==" => have.key() == want.key(),
                "!=" if want.local.is_empty() => public.key() != want.key(),
                "!=" => have.key() != want.key(),
                "<=" => public.key() <= want.key(),
                ">=" => public.key() >= want.key(),
                "<" => {
                    public.key() < want.key()
                        && (want.is_pre() || !have.is_pre() || have.base() != want.base())
                }
                ">" => {
                    public.key() > want.key()
                        && (want.post.is_some()
                            || have.post.is_none()
                            || have.base() != want.base())
                        && (have.local.is_empty() || have.base() != want.base())
                }
                "~=" => {
                    if want.release.len() < 2 {
                        return false;
                    }
                    let prefix = &want.release[..want.release.len() - 1];
                    public.key() >= want.key()
                        && have.epoch == want.epoch
                        && (0..prefix.len())
                            .all(|i| have.release.get(i).copied().unwrap_or(0) == prefix[i])
                }
                _ => false,
            }
        })
    }
}

/// A PEP 440 version.
#[derive(Debug, Clone)]
struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// a = 0, b = 1, rc = 2
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<String>,
}

/// One part of a version's sort key: below everything, a number, or above everything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Low,
    N(u64, u64),
    High,
}

type Key = (u64, Vec<u64>, Part, Part, Part, Vec<(u8, u64, String)>);

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let re = Regex::new(
            r"^\s*v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d+)?)?(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?(?:[-_.]?(dev)[-_.]?(\d+)?)?(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$",
        )
        .ok()?;
        let lower = text.to_ascii_lowercase();
        let c = re.captures(&lower)?;
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u64>().ok());
        let release: Vec<u64> = c[2].split('.').filter_map(|p| p.parse().ok()).collect();
        let pre = c.get(3).map(|k| {
            let kind = match k.as_str() {
                "a" | "alpha" => 0,
                "b" | "beta" => 1,
                _ => 2,
            };
            (kind, num(4).unwrap_or(0))
        });
        let post = num(5).or_else(|| c.get(6).map(|_| num(7).unwrap_or(0)));
        let dev = c.get(8).map(|_| num(9).unwrap_or(0));
        let local = c
            .get(10)
            .map(|l| {
                l.as_str()
                    .split(['-', '_', '.'])
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(Version {
            epoch: num(1).unwrap_or(0),
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    fn public(&self) -> Version {
        Version {
            local: Vec::new(),
            ..self.clone()
        }
    }

    fn base(&self) -> (u64, Vec<u64>) {
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        (self.epoch, release)
    }

    fn is_pre(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// packaging's `_cmpkey`.
    fn key(&self) -> Key {
        let (epoch, release) = self.base();
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => Part::Low,
            (None, _, _) => Part::High,
            (Some((k, n)), _, _) => Part::N(u64::from(k), n),
        };
        let post = self.post.map_or(Part::Low, |n| Part::N(0, n));
        let dev = self.dev.map_or(Part::High, |n| Part::N(0, n));
        let local = self
            .local
            .iter()
            .map(|p| match p.parse::<u64>() {
                Ok(n) => (1, n, String::new()),
                Err(_) => (0, 0, p.clone()),
            })
            .collect();
        (epoch, release, pre, post, dev, local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_recovered_as_ansible_recovers_them() {
        let names: Vec<String> = [
            "django>1.11.1",
            "<1.11.3",
            "ipaddress",
            "simpleproject>1.1.0",
            "<2.0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            recover_package_names(&names),
            [
                "django>1.11.1,<1.11.3",
                "ipaddress",
                "simpleproject>1.1.0,<2.0.0"
            ]
        );
    }

    #[test]
    fn specifiers_follow_pep_440() {
        let ok = |req: &str, v: &str| Requirement::parse(req).unwrap().satisfied_by(v);
        assert!(ok("Foo_Bar", "0.1"));
        assert_eq!(
            Requirement::parse("Foo_Bar.baz>=1").unwrap().name,
            "foo-bar-baz"
        );
        assert!(ok("a==1.0", "1"));
        assert!(ok("a==1.0", "1.0+local"));
        assert!(!ok("a==1.0+x", "1.0"));
        assert!(ok("a>=1.2,<2", "1.10"));
        assert!(!ok("a>=1.2,<2", "2.0"));
        assert!(!ok("a<2", "2.0rc1"));
        assert!(ok("a<2", "1.9rc1"));
        assert!(ok("a~=1.4.2", "1.4.9"));
        assert!(!ok("a~=1.4.2", "1.5"));
        assert!(ok("a==1.4.*", "1.4.7"));
        assert!(ok("a!=1.4.*", "1.5"));
        assert!(ok("a>1.0", "1.1.dev1"));
        assert!(!ok("a>1.0", "1.0.post1"));
        assert!(ok("a[extra] (>=1)", "1"));
        assert!(Requirement::parse("git+https://x/y.git").is_none());
        assert!(Requirement::parse("./local/dir").is_none());
        assert!(ok("a==1.0a1", "1.0.a1"));
        assert!(!ok("a>=1.0", "1.0.dev1"));
    }

    #[test]
    fn venv_commands_take_no_interpreter() {
        let argv = |s: &str| shell_words::split(s).unwrap();
        assert!(is_venv_command(&argv("python3 -m venv")));
        assert!(is_venv_command(&argv("pyvenv")));
        assert!(!is_venv_command(&argv("virtualenv")));
    }
}
