//! `git`: a checkout of a repository at a version (branch, tag or commit). The remote is asked
//! with `git ls-remote`, which changes nothing, so check mode knows which commit a real run
//! would check out; `apply` fetches and checks out only when that differs.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::boolean;
use crate::process::{run, run_ok};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "git",
    args: &[
        "repo",
        "name",
        "dest",
        "version",
        "force",
        "update",
        "clone",
        "depth",
        "remote",
        "executable",
        "single_branch",
        "accept_hostkey",
        "accept_newhostkey",
    ],
    unsupported: &[
        "bare",
        "recursive",
        "track_submodules",
        "key_file",
        "ssh_opts",
        "refspec",
        "reference",
        "separate_git_dir",
        "verify_commit",
        "gpg_whitelist",
        "gpg_allowlist",
        "archive",
        "archive_prefix",
        "umask",
    ],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Git {
    #[serde(alias = "name")]
    repo: String,
    dest: PathBuf,
    #[serde(default = "head")]
    version: String,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    update: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    clone: bool,
    depth: Option<u32>,
    #[serde(default = "origin")]
    remote: String,
    executable: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    single_branch: bool,
    /// Accepted: host keys of SSH remotes are checked by the host's own ssh configuration.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    accept_hostkey: bool,
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    accept_newhostkey: bool,
    #[serde(skip)]
    before: Option<String>,
    #[serde(skip)]
    after: Option<String>,
    /// The branch `version` names on the remote, when it is one.
    #[serde(skip)]
    branch: Option<String>,
}

fn head() -> String {
    "HEAD".into()
}
fn origin() -> String {
    "origin".into()
}

const GIT_ENV: &[(&str, &str)] = &[("GIT_TERMINAL_PROMPT", "0"), ("GIT_ASKPASS", "true")];

impl Git {
    fn git(&self) -> &str {
        self.executable.as_deref().unwrap_or("git")
    }

    fn in_dest(&self, args: &[&str]) -> Result<String, ModuleError> {
        let dest = self.dest.display().to_string();
        // The checkout usually belongs to the application's user while the module runs as root:
        // trust this one folder (git's command-line scope counts as protected configuration).
        let safe = format!("safe.directory={dest}");
        let mut argv = vec![self.git(), "-c", &safe, "-C", &dest];
        argv.extend_from_slice(args);
        Ok(run_ok(&argv, GIT_ENV)?.stdout.trim().to_string())
    }

    /// The commit `version` names on the remote: a branch, a tag (peeled), HEAD, or a commit id.
    fn remote_commit(&mut self) -> Result<String, ModuleError> {
        let ran = run_ok(&[self.git(), "ls-remote", &self.repo], GIT_ENV)?;
        let refs: Vec<(&str, &str)> = ran
            .stdout
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .collect();
        let find = |name: &str| {
            refs.iter()
                .find(|(_, r)| *r == name)
                .map(|(sha, _)| sha.to_string())
        };
        if self.version == "HEAD" {
            return find("HEAD")
                .ok_or_else(|| ModuleError::Failed(format!("{} has no HEAD", self.repo)));
        }
        if let Some(sha) = find(&format!("refs/heads/{}", self.version)) {
            self.branch = Some(self.version.clone());
            return Ok(sha);
        }
        if let Some(sha) = find(&format!("refs/tags/{}^{{}}", self.version))
            .or_else(|| find(&format!("refs/tags/{}", self.version)))
        {
            return Ok(sha);
        }
        if self.version.len() >= 7 && self.version.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(self.version.clone());
        }
        Err(ModuleError::Failed(format!(
            "Failed to find version {} in {}",
            self.version, self.repo
        )))
    }

    fn exists(&self) -> bool {
        self.dest.join(".git").exists()
    }
}

impl Resource for Git {
    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        if run(&[self.git(), "--version"], &[]).is_err() {
            return Err(ModuleError::Failed(
                "git is not installed on the host".into(),
            ));
        }
        if !self.exists() {
            if self.dest.exists()
                && std::fs::read_dir(&self.dest)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(ModuleError::Failed(format!(
                    "Destination {} exists, is not empty and is not a git checkout",
                    self.dest.display()
                )));
            }
            if !self.clone {
                return Ok(plan);
            }
            let want = self.remote_commit()?;
            self.after = Some(want.clone());
            plan.change(
                "checkout",
                None,
                Some(format!("{} at {} ({want})", self.repo, self.version)),
            );
            return Ok(plan);
        }
        let current = self.in_dest(&["rev-parse", "HEAD"]).ok();
        self.before = current.clone();
        self.after = current.clone();
        let url = self
            .in_dest(&["config", "--get", &format!("remote.{}.url", self.remote)])
            .unwrap_or_default();
        if url != self.repo {
            plan.change("remote url", Some(url), Some(self.repo.clone()));
        }
        if !self.update {
            return Ok(plan);
        }
        let want = self.remote_commit()?;
        // Reading must not write: a plain `git status` refreshes .git/index as the module's user.
        let dirty = !self
            .in_dest(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])?
            .is_empty();
        if dirty && !self.force {
            return Err(ModuleError::Failed(format!(
                "Local modifications exist in the repository (force=no): {}",
                self.dest.display()
            )));
        }
        if current.as_deref() != Some(want.as_str()) {
            plan.change("version", current, Some(want.clone()));
        } else if dirty {
            plan.change(
                "local modifications",
                Some("modified".into()),
                Some("discarded (force=yes)".into()),
            );
        }
        self.after = Some(want);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let want = self
            .after
            .clone()
            .ok_or_else(|| ModuleError::Failed("git: apply before check".into()))?;
        let dest = self.dest.display().to_string();
        if plan.has("checkout") {
            if let Some(parent) = self.dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ModuleError::io(format!("mkdir {}", parent.display()), e))?;
            }
            let depth = self.depth.map(|d| d.to_string());
            let mut argv = vec![self.git(), "clone", "--origin", &self.remote];
            if let Some(d) = &depth {
                argv.extend(["--depth", d]);
            }
            if self.single_branch {
                argv.push("--single-branch");
            }
            if let Some(b) = &self.branch {
                argv.extend(["--branch", b]);
            }
            argv.extend([self.repo.as_str(), dest.as_str()]);
            run_ok(&argv, GIT_ENV)?;
        } else {
            if plan.has("remote url") {
                self.in_dest(&["remote", "set-url", &self.remote, &self.repo])?;
            }
            if plan.has("version") || plan.has("local modifications") {
                let mut fetch = vec!["fetch", "--tags", self.remote.as_str()];
                let depth = self.depth.map(|d| format!("--depth={d}"));
                if let Some(d) = &depth {
                    fetch.push(d);
                }
                self.in_dest(&fetch)?;
            }
        }
        if plan.has("checkout") || plan.has("version") || plan.has("local modifications") {
            match &self.branch {
                Some(b) => {
                    self.in_dest(&["checkout", "--force", "-B", b, &want])?;
                    let upstream = format!("{}/{b}", self.remote);
                    let _ = self.in_dest(&["branch", "--set-upstream-to", &upstream, b]);
                }
                None => {
                    self.in_dest(&["checkout", "--force", "--detach", &want])?;
                }
            }
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert(
            "before".into(),
            self.before.clone().map_or(Value::Null, Value::String),
        );
        values.insert(
            "after".into(),
            self.after.clone().map_or(Value::Null, Value::String),
        );
    }
}
