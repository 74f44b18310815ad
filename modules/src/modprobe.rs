//! `community.general.modprobe`: a kernel module loaded or not (`/proc/modules`, or built into
//! the kernel), and with `persistent` its lines in `/etc/modules-load.d` and `/etc/modprobe.d`,
//! as Ansible's module manages them. Unlike Ansible's, check mode writes no file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, text};
use crate::fsutil::atomic_write;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "community.general.modprobe",
    args: &["name", "state", "params", "persistent"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Persistent {
    #[default]
    Disabled,
    Present,
    Absent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Modprobe {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "text")]
    params: Option<String>,
    #[serde(default)]
    persistent: Persistent,
    /// Where `etc/` and `proc/` are: `/`, or a test's folder.
    #[serde(skip)]
    root: Option<PathBuf>,
    #[serde(skip)]
    modprobe: String,
    /// Files to write: path → new content.
    #[serde(skip)]
    writes: Vec<(PathBuf, String)>,
    #[serde(skip)]
    warnings: Vec<String>,
}

/// A line that names the module alone (`dummy`, `dummy # comment`).
fn names_module(line: &str, name: &str) -> bool {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let rest = line.trim_start_matches(' ');
    let Some(rest) = rest.strip_prefix(name) else {
        return false;
    };
    let rest = rest.trim_start_matches(' ');
    rest.is_empty() || rest.starts_with(['#', ';'])
}

/// The `k=v` of an `options NAME k=v` line.
fn option_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let rest = line
        .strip_prefix("options ")?
        .strip_prefix(name)?
        .strip_prefix(' ')?;
    let (param, tail) = rest.split_at(rest.find(' ').unwrap_or(rest.len()));
    let (key, value) = param.split_once('=')?;
    let word = |c: char| c.is_alphanumeric() || c == '_';
    if key.is_empty() || !key.chars().all(word) || value.is_empty() {
        return None;
    }
    let tail = tail.trim_start_matches(' ');
    (tail.is_empty() || tail.starts_with(['#', ';'])).then_some(param)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Modprobe {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    fn params(&self) -> &str {
        self.params.as_deref().unwrap_or_default()
    }

    fn at(&self, path: &str) -> PathBuf {
        let root = self.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        root.join(path.trim_start_matches('/'))
    }

    /// Ansible's failure when a file it must read is not there (a kernel without modules has
    /// no `/proc/modules`): Python's own words, with the module's result.
    fn unreadable(&self, path: &Path, e: &std::io::Error) -> ModuleError {
        let text = e.to_string();
        let msg = match e.raw_os_error() {
            Some(code) => {
                let message = text.split(" (os error").next().unwrap_or(&text);
                format!("[Errno {code}] {message}: '{}'", path.display())
            }
            None => format!("{}: {text}", path.display()),
        };
        let mut values = Map::new();
        self.values(&mut values);
        ModuleError::FailedWith { msg, values }
    }

    fn loaded(&self) -> Result<bool, ModuleError> {
        let proc_modules = self.at("/proc/modules");
        let text = std::fs::read_to_string(&proc_modules)
            .map_err(|e| self.unreadable(&proc_modules, &e))?;
        let prefix = format!("{} ", self.name().replace('-', "_"));
        if text.lines().any(|l| l.starts_with(&prefix)) {
            return Ok(true);
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let builtin = self.at(&format!("/lib/modules/{}/modules.builtin", release.trim()));
        let text = std::fs::read_to_string(&builtin).map_err(|e| self.unreadable(&builtin, &e))?;
        let file = format!("/{}.ko", self.name());
        Ok(text.lines().any(|l| l.trim_end().ends_with(&file)))
    }

    fn load_files(&self) -> Vec<PathBuf> {
        files_in(&self.at("/etc/modules-load.d"))
    }

    fn option_files(&self) -> Vec<PathBuf> {
        files_in(&self.at("/etc/modprobe.d"))
    }

    fn loaded_persistently(&self) -> bool {
        self.load_files()
            .iter()
            .any(|f| read(f).lines().any(|l| names_module(l, self.name())))
    }

    fn permanent_params(&self) -> Vec<String> {
        let mut params: Vec<String> = Vec::new();
        for f in self.option_files() {
            for line in read(&f).lines() {
                if let Some(p) = option_of(line, self.name())
                    && !params.iter().any(|q| q == p)
                {
                    params.push(p.to_string());
                }
            }
        }
        params.sort();
        params
    }

    fn params_set(&self) -> bool {
        let mut wanted: Vec<String> = self.params().split_whitespace().map(String::from).collect();
        wanted.sort();
        wanted.dedup();
        wanted == self.permanent_params()
    }

    /// Each file with the lines `hit` matches commented out, for those it changes.
    fn commented(files: Vec<PathBuf>, hit: impl Fn(&str) -> bool) -> Vec<(PathBuf, String)> {
        files
            .into_iter()
            .filter_map(|f| {
                let text = read(&f);
                let new: String = text
                    .split_inclusive('\n')
                    .map(|l| {
                        if hit(l) {
                            format!("#{l}")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                (new != text).then_some((f, new))
            })
            .collect()
    }

    /// The file writes `persistent` asks for.
    fn persistence(&self) -> Vec<(PathBuf, String)> {
        let name = self.name().to_string();
        let is_option = |l: &str| option_of(l, &name).is_some();
        let mut writes = Vec::new();
        match self.persistent {
            Persistent::Disabled => {}
            Persistent::Present => {
                if self.loaded_persistently() && self.params_set() {
                    return writes;
                }
                if !self.loaded_persistently() {
                    writes.push((
                        self.at(&format!("/etc/modules-load.d/{name}.conf")),
                        format!("{name}\n"),
                    ));
                }
                if !self.params_set() {
                    let options_file = self.at(&format!("/etc/modprobe.d/{name}.conf"));
                    let lines: Vec<String> = self
                        .params()
                        .split_whitespace()
                        .map(|p| format!("options {name} {p}"))
                        .collect();
                    let content = format!("{}\n", lines.join("\n"));
                    writes.extend(
                        Self::commented(self.option_files(), is_option)
                            .into_iter()
                            .filter(|(f, _)| *f != options_file),
                    );
                    writes.push((options_file, content));
                }
            }
            Persistent::Absent => {
                writes.extend(Self::commented(self.load_files(), |l| {
                    names_module(l, &name)
                }));
                writes.extend(Self::commented(self.option_files(), is_option));
            }
        }
        writes
    }
}

impl Resource for Modprobe {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        shell_words::split(self.params()).map_err(|_| {
            ModuleError::Args(format!("params {:?}: unbalanced quotes", self.params()))
        })?;
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.modprobe = bin_path::required("modprobe")?;
        let mut plan = Plan::default();
        let loaded = self.loaded()?;
        let word = |l: bool| if l { "loaded" } else { "unloaded" }.to_string();
        let params = shell_words::split(self.params()).ok().unwrap_or_default();
        match (self.state, loaded) {
            (Presence::Present, false) => {
                // modprobe's dry run says whether it could load it, and changes nothing.
                let mut argv = vec![self.modprobe.clone(), "-n".into(), self.name().into()];
                argv.extend(params);
                let ran = process::run(&argv, &[])?;
                if !ran.ok() {
                    return Err(module_failed(&ran));
                }
                plan.change("state", Some(word(false)), Some(word(true)));
            }
            (Presence::Absent, true) => {
                let argv = [self.modprobe.as_str(), "-r", self.name(), "-n"];
                let ran = process::run(&argv, &[])?;
                if !ran.ok() {
                    return Err(module_failed(&ran));
                }
                plan.change("state", Some(word(true)), Some(word(false)));
            }
            _ => {}
        }
        self.writes = self.persistence();
        for (path, after) in &self.writes {
            let before = path.exists().then(|| read(path));
            plan.change("content", None, None);
            if want_diff {
                plan.content.push(ContentDiff {
                    path: path.display().to_string(),
                    before,
                    after: Some(after.clone()),
                    summary: None,
                });
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.has("state") {
            let argv: Vec<String> = match self.state {
                Presence::Present => {
                    let mut argv = vec![self.modprobe.clone(), self.name().into()];
                    argv.extend(shell_words::split(self.params()).ok().unwrap_or_default());
                    argv
                }
                Presence::Absent => vec![self.modprobe.clone(), "-r".into(), self.name().into()],
            };
            let ran = process::run(&argv, &[])?;
            if !ran.ok() {
                return Err(module_failed(&ran));
            }
            if self.state == Presence::Present && !self.loaded()? {
                let mut argv = vec![
                    self.modprobe.clone(),
                    "-n".into(),
                    "--first-time".into(),
                    self.name().into(),
                ];
                argv.extend(shell_words::split(self.params()).ok().unwrap_or_default());
                let ran = process::run(&argv, &[])?;
                if !ran.ok() {
                    self.warnings.push(ran.stderr.trim_end().to_string());
                }
            }
        }
        for (path, content) in &self.writes {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ModuleError::io(format!("mkdir {}", dir.display()), e))?;
            }
            let (mode, uid, gid) = match std::fs::metadata(path) {
                Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
                Err(_) => (0o644, None, None),
            };
            atomic_write(path, content.as_bytes(), mode, uid, gid)?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("name".into(), self.name().into());
        values.insert("params".into(), self.params().into());
        values.insert("state".into(), self.state.word().into());
        if !self.warnings.is_empty() {
            values.insert("warnings".into(), self.warnings.clone().into());
        }
    }
}

fn module_failed(ran: &process::Ran) -> ModuleError {
    let mut values = Map::new();
    values.insert("rc".into(), ran.rc.into());
    values.insert("stdout".into(), ran.stdout.clone().into());
    values.insert("stderr".into(), ran.stderr.clone().into());
    ModuleError::FailedWith {
        msg: ran.stderr.clone(),
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(root: &Path, args: Value) -> Modprobe {
        let mut m: Modprobe = serde_json::from_value(args).unwrap();
        m.root = Some(root.to_path_buf());
        m
    }

    #[test]
    fn lines_that_name_the_module() {
        assert!(names_module("dummy\n", "dummy"));
        assert!(names_module("  dummy  # why\n", "dummy"));
        assert!(!names_module("dummy2\n", "dummy"));
        assert!(!names_module("#dummy\n", "dummy"));
        assert_eq!(
            option_of("options dummy numdummies=2\n", "dummy"),
            Some("numdummies=2")
        );
        assert_eq!(option_of("#options dummy numdummies=2", "dummy"), None);
    }

    #[test]
    fn persistent_present_writes_both_files_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let args =
            serde_json::json!({"name": "dummy", "params": "numdummies=2", "persistent": "present"});
        let m = module(dir.path(), args.clone());
        let writes = m.persistence();
        assert_eq!(
            writes,
            vec![
                (
                    dir.path().join("etc/modules-load.d/dummy.conf"),
                    "dummy\n".to_string()
                ),
                (
                    dir.path().join("etc/modprobe.d/dummy.conf"),
                    "options dummy numdummies=2\n".to_string()
                ),
            ]
        );
        for (path, content) in writes {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        assert!(module(dir.path(), args).persistence().is_empty());
    }

    #[test]
    fn other_params_comment_out_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/modules-load.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/modprobe.d")).unwrap();
        std::fs::write(dir.path().join("etc/modules-load.d/x.conf"), "dummy\n").unwrap();
        std::fs::write(
            dir.path().join("etc/modprobe.d/old.conf"),
            "options dummy numdummies=1\n",
        )
        .unwrap();
        let m = module(
            dir.path(),
            serde_json::json!({"name": "dummy", "params": "numdummies=2", "persistent": "present"}),
        );
        assert_eq!(
            m.persistence(),
            vec![
                (
                    dir.path().join("etc/modprobe.d/old.conf"),
                    "#options dummy numdummies=1\n".to_string()
                ),
                (
                    dir.path().join("etc/modprobe.d/dummy.conf"),
                    "options dummy numdummies=2\n".to_string()
                ),
            ]
        );
        let absent = module(
            dir.path(),
            serde_json::json!({"name": "dummy", "persistent": "absent"}),
        );
        assert_eq!(
            absent.persistence(),
            vec![
                (
                    dir.path().join("etc/modules-load.d/x.conf"),
                    "#dummy\n".to_string()
                ),
                (
                    dir.path().join("etc/modprobe.d/old.conf"),
                    "#options dummy numdummies=1\n".to_string()
                ),
            ]
        );
    }
}
