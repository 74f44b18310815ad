//! `git`: a checkout of a repository at a version (branch, tag or commit). The remote is asked
//! with `git ls-remote`, which changes nothing, so check mode knows which commit a real run
//! would check out; `apply` fetches and checks out only when that differs.
//!
//! Besides the checkout, a task may want: a bare repository (`bare`, whose branches and tags
//! are compared with the remote's), submodules checked out at the superproject's commits or
//! at their branches' tips (`recursive`, `track_submodules`), the repository kept in another
//! folder (`separate_git_dir`, moved there when it is not), the commit's GPG signature checked
//! (`verify_commit`, `gpg_allowlist`), and an archive of the tree (`archive`, compared with
//! the one there by content). SSH remotes are reached with `key_file` and `ssh_opts` through
//! `GIT_SSH_COMMAND`, as Ansible's module does; `umask` applies to every git command it runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, text};
use crate::process::Ran;
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
        "bare",
        "recursive",
        "track_submodules",
        "key_file",
        "ssh_opts",
        "refspec",
        "reference",
        "separate_git_dir",
        "verify_commit",
        "gpg_allowlist",
        "gpg_whitelist",
        "archive",
        "archive_prefix",
        "umask",
    ],
    unsupported: &[],
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
    #[serde(default, deserialize_with = "boolean")]
    accept_hostkey: bool,
    #[serde(default, deserialize_with = "boolean")]
    accept_newhostkey: bool,
    #[serde(default, deserialize_with = "boolean")]
    bare: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    recursive: bool,
    #[serde(default, deserialize_with = "boolean")]
    track_submodules: bool,
    key_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "text")]
    ssh_opts: Option<String>,
    #[serde(default, deserialize_with = "text")]
    refspec: Option<String>,
    #[serde(default, deserialize_with = "text")]
    reference: Option<String>,
    separate_git_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "boolean")]
    verify_commit: bool,
    #[serde(default, alias = "gpg_whitelist")]
    gpg_allowlist: Vec<String>,
    archive: Option<PathBuf>,
    #[serde(default, deserialize_with = "text")]
    archive_prefix: Option<String>,
    /// Ansible's `raw`: only a quoted octal string is taken.
    umask: Option<Value>,
    #[serde(skip)]
    before: Option<String>,
    #[serde(skip)]
    after: Option<String>,
    /// The branch `version` names on the remote, when it is one.
    #[serde(skip)]
    branch: Option<String>,
    #[serde(skip)]
    found: Found,
}

/// What `check` worked out, for `apply` and the result.
#[derive(Debug, Default)]
struct Found {
    /// `umask` as a number.
    mask: Option<u32>,
    /// `GIT_SSH_COMMAND`, built from `ssh_opts`, `key_file` and the host key options.
    ssh_command: String,
    /// The repository folder now (`dest/.git`, `dest`, or where `dest/.git` points).
    git_dir: Option<PathBuf>,
    /// `separate_git_dir`, resolved.
    separate: Option<PathBuf>,
    remote_url_changed: Option<bool>,
    submodules_changed: bool,
    /// The commit the archive is made of.
    archive_rev: Option<String>,
}

fn head() -> String {
    "HEAD".into()
}
fn origin() -> String {
    "origin".into()
}

/// `/srv/x` and `file:///srv/x` name the same repository.
fn same_repo(a: &str, b: &str) -> bool {
    let plain = |s: &str| {
        s.strip_prefix("file://")
            .unwrap_or(s)
            .trim_end_matches('/')
            .to_string()
    };
    a == b || plain(a) == plain(b)
}

/// `os.path.realpath` of a path that may not exist yet: its nearest existing folder resolved.
fn real_path(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            real_path(parent).join(name)
        }
        _ => path.to_path_buf(),
    }
}

/// Git's archive format for a file name, as Ansible picks it from the extension.
fn archive_format(path: &Path) -> Result<&'static str, ModuleError> {
    let name = path.to_string_lossy();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "zip" => Ok("zip"),
        "gz" => Ok("tar.gz"),
        "tar" => Ok("tar"),
        "tgz" => Ok("tgz"),
        _ => Err(ModuleError::with(
            format!("Unable to get file extension from archive file name : {name}"),
            &[(
                "details",
                "Please specify archive as filename with extension. File extension can be one \
                 of ['tar', 'tar.gz', 'zip', 'tgz']",
            )],
        )),
    }
}

/// The fingerprints a `--raw` verification names: the signing key's, and the primary key's
/// when a subkey signed (Ansible's `get_gpg_fingerprint` reads the first).
fn gpg_fingerprints(status: &str) -> Vec<String> {
    for line in status.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.get(1) == Some(&"VALIDSIG") {
            return [words.get(2), words.get(11)]
                .into_iter()
                .flatten()
                .map(|w| w.to_string())
                .collect();
        }
    }
    Vec::new()
}

impl Git {
    fn git(&self) -> &str {
        self.executable.as_deref().unwrap_or("git")
    }

    /// Runs git (in `cwd` when given) with the module's environment: no prompts, the C
    /// locale, the SSH command, and `umask`.
    fn run_git(&self, cwd: Option<&Path>, args: &[&str]) -> Result<Ran, ModuleError> {
        let mut command = Command::new(self.git());
        command
            .args(args)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("LANGUAGE", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("GIT_SSH_COMMAND", &self.found.ssh_command)
            .stdin(Stdio::null());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        if let Some(mask) = self.found.mask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe and changes only the child.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        let output = command
            .output()
            .map_err(|e| ModuleError::io(format!("run {}", self.git()), e))?;
        Ok(Ran {
            rc: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// [`Self::run_git`] that must succeed; its failure is the module's, with what git said.
    fn git_ok(&self, cwd: Option<&Path>, args: &[&str]) -> Result<String, ModuleError> {
        let ran = self.run_git(cwd, args)?;
        if !ran.ok() {
            let said = if ran.stderr.trim().is_empty() {
                ran.stdout.trim()
            } else {
                ran.stderr.trim()
            };
            return Err(ModuleError::Failed(format!(
                "{} {} failed (rc={}): {said}",
                self.git(),
                args.join(" "),
                ran.rc
            )));
        }
        Ok(ran.stdout)
    }

    fn in_dest(&self, args: &[&str]) -> Result<String, ModuleError> {
        Ok(self.in_dest_raw(args)?.trim().to_string())
    }

    fn in_dest_raw(&self, args: &[&str]) -> Result<String, ModuleError> {
        let dest = self.dest.display().to_string();
        // The checkout usually belongs to the application's user while the module runs as root:
        // trust this one folder (git's command-line scope counts as protected configuration).
        let safe = format!("safe.directory={dest}");
        let mut argv = vec!["-c", safe.as_str(), "-C", dest.as_str()];
        argv.extend_from_slice(args);
        self.git_ok(None, &argv)
    }

    /// Ansible's `set_git_ssh_env`: the host's `GIT_SSH`/`GIT_SSH_COMMAND` (or `ssh`) with
    /// `GIT_SSH_OPTS`, `ssh_opts`, the host key options, `BatchMode=yes` and the key.
    fn ssh_command(&self) -> String {
        let mut opts = self.ssh_opts.clone();
        let has = |opts: &Option<String>, o: &str| opts.as_deref().is_some_and(|s| s.contains(o));
        for (wanted, option) in [
            (self.accept_hostkey, "-o StrictHostKeyChecking=no"),
            (
                self.accept_newhostkey,
                "-o StrictHostKeyChecking=accept-new",
            ),
        ] {
            if wanted
                && !has(&opts, "-o StrictHostKeyChecking=no")
                && !has(&opts, "-o StrictHostKeyChecking=accept-new")
            {
                opts = Some(match opts {
                    Some(o) => format!("{o} {option}"),
                    None => option.to_string(),
                });
            }
        }
        let env_opts = std::env::var("GIT_SSH_OPTS").unwrap_or_default();
        let mut opts = match opts {
            Some(o) => format!("{env_opts} {o}"),
            None => env_opts,
        };
        if self.accept_hostkey && !opts.contains("StrictHostKeyChecking=no") {
            opts.push_str(" -o StrictHostKeyChecking=no");
        }
        if !opts.contains("BatchMode=yes") {
            opts.push_str(" -o BatchMode=yes");
        }
        if let Some(key) = &self.key_file {
            let key = crate::fsutil::expand_path(key);
            let key_opt = format!("-i {}", key.display());
            if !opts.contains(&key_opt) {
                opts.push_str(&format!("  {key_opt}"));
            }
            if !opts.contains("IdentitiesOnly=yes") {
                opts.push_str(" -o IdentitiesOnly=yes");
            }
        }
        let base = std::env::var("GIT_SSH")
            .or_else(|_| std::env::var("GIT_SSH_COMMAND"))
            .unwrap_or_else(|_| "ssh".into());
        format!("{base} {opts}")
    }

    /// The remote's refs (`ls-remote`), as (commit, name).
    fn remote_refs(&self, url: &str) -> Result<Vec<(String, String)>, ModuleError> {
        let out = self.git_ok(None, &["ls-remote", url])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(sha, name)| (sha.to_string(), name.to_string()))
            .collect())
    }

    /// The commit `version` names on the remote: a branch, a tag (peeled), HEAD, or a commit id.
    fn remote_commit(&mut self) -> Result<String, ModuleError> {
        let refs = self.remote_refs(&self.repo)?;
        let find = |name: &str| {
            refs.iter()
                .find(|(_, r)| r == name)
                .map(|(sha, _)| sha.clone())
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

    /// The repository folder of an existing checkout (following a `.git` file), or `None`.
    fn git_dir(&self) -> Result<Option<PathBuf>, ModuleError> {
        let path = if self.bare {
            self.dest.clone()
        } else {
            self.dest.join(".git")
        };
        let path = if path.is_file() {
            let invalid = |detail: String| {
                ModuleError::with(
                    "Current repo does not have a valid reference to a separate Git dir or it \
                     refers to the invalid path",
                    &[("details", detail.as_str())],
                )
            };
            let data = std::fs::read_to_string(&path)
                .map_err(|e| ModuleError::io(format!("read {}", path.display()), e))?;
            let gitdir = data
                .trim_end()
                .strip_prefix("gitdir: ")
                .ok_or_else(|| invalid(".git file has invalid git dir reference format".into()))?;
            let gitdir = if Path::new(gitdir).is_absolute() {
                PathBuf::from(gitdir)
            } else {
                self.dest.join(gitdir)
            };
            if !gitdir.is_dir() {
                return Err(invalid(format!("{} is not a directory", gitdir.display())));
            }
            gitdir
        } else {
            path
        };
        Ok(path.join("config").exists().then_some(path))
    }

    /// Commits of the remote's branches and tags that the bare repository lacks or has at
    /// another commit (a fetch updates them all).
    fn bare_outdated(&self) -> Result<Vec<String>, ModuleError> {
        let remote = self.remote_refs(&self.repo)?;
        let local = self.in_dest_raw(&[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ])?;
        let local: Vec<(&str, &str)> = local.lines().filter_map(|l| l.split_once(' ')).collect();
        Ok(remote
            .iter()
            .filter(|(_, name)| {
                (name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
                    && !name.ends_with("^{}")
            })
            .filter(|(sha, name)| !local.iter().any(|(s, n)| n == name && s == sha))
            .map(|(_, name)| name.clone())
            .collect())
    }

    /// Paths of the submodules `.gitmodules` lists, with their names.
    fn submodules(&self) -> Vec<(String, String)> {
        let gitmodules = self.dest.join(".gitmodules");
        if !gitmodules.is_file() {
            return Vec::new();
        }
        let file = gitmodules.display().to_string();
        let Ok(out) = self.git_ok(
            None,
            &[
                "config",
                "-f",
                &file,
                "--get-regexp",
                r"^submodule\..*\.path$",
            ],
        ) else {
            return Vec::new();
        };
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(key, path)| {
                let name = key
                    .strip_prefix("submodule.")
                    .and_then(|k| k.strip_suffix(".path"))
                    .unwrap_or(key);
                (name.to_string(), path.to_string())
            })
            .collect()
    }

    /// What differs in the submodules of a checkout that stays at its commit: one not checked
    /// out, one at another commit than the superproject's (or, with `track_submodules`, than
    /// its branch's tip on its remote).
    fn submodules_differ(&self) -> Result<Option<String>, ModuleError> {
        let modules = self.submodules();
        for (_, path) in &modules {
            if !self.dest.join(path).join(".git").exists() {
                return Ok(Some(format!("{path} not checked out")));
            }
        }
        if modules.is_empty() {
            return Ok(None);
        }
        if self.track_submodules {
            let file = self.dest.join(".gitmodules").display().to_string();
            for (name, path) in &modules {
                let sub = self.dest.join(path);
                let url = self
                    .run_git(Some(&sub), &["config", "--get", "remote.origin.url"])?
                    .stdout
                    .trim()
                    .to_string();
                let branch = self
                    .run_git(
                        None,
                        &[
                            "config",
                            "-f",
                            &file,
                            "--get",
                            &format!("submodule.{name}.branch"),
                        ],
                    )?
                    .stdout
                    .trim()
                    .to_string();
                let wanted = if branch.is_empty() {
                    "HEAD".to_string()
                } else {
                    format!("refs/heads/{branch}")
                };
                let tip = self
                    .remote_refs(&url)?
                    .into_iter()
                    .find(|(_, n)| *n == wanted)
                    .map(|(sha, _)| sha);
                let current = self
                    .run_git(Some(&sub), &["rev-parse", "HEAD"])?
                    .stdout
                    .trim()
                    .to_string();
                if tip.as_deref().is_some_and(|t| t != current) {
                    return Ok(Some(format!("{path} behind its branch")));
                }
            }
            return Ok(None);
        }
        let status =
            self.in_dest_raw(&["--no-optional-locks", "submodule", "status", "--recursive"])?;
        Ok(status
            .lines()
            .find(|l| !l.starts_with(' ') && !l.is_empty())
            .map(|l| {
                let path = l.split_whitespace().nth(1).unwrap_or(l);
                format!("{path} not at the recorded commit")
            }))
    }

    /// Checks the GPG signature of `version` (a tag's when it is an annotated tag), and its
    /// key against `gpg_allowlist`.
    fn verify_signature(&self) -> Result<(), ModuleError> {
        let tags = self.in_dest_raw(&[
            "for-each-ref",
            "refs/tags/",
            "--format",
            "%(objecttype):%(refname:short)",
        ])?;
        let annotated = tags
            .lines()
            .any(|l| l.strip_prefix("tag:") == Some(self.version.as_str()));
        let dest = self.dest.display().to_string();
        let safe = format!("safe.directory={dest}");
        let mut argv = vec![
            "-c",
            safe.as_str(),
            "-C",
            dest.as_str(),
            if annotated {
                "verify-tag"
            } else {
                "verify-commit"
            },
            self.version.as_str(),
        ];
        if !self.gpg_allowlist.is_empty() {
            argv.push("--raw");
        }
        let ran = self.run_git(None, &argv)?;
        let said = |ran: &Ran| {
            let mut values = Map::new();
            values.insert("stdout".into(), ran.stdout.clone().into());
            values.insert("stderr".into(), ran.stderr.clone().into());
            values.insert("rc".into(), ran.rc.into());
            values
        };
        if !ran.ok() {
            return Err(ModuleError::FailedWith {
                msg: format!(
                    "Failed to verify GPG signature of commit/tag \"{}\"",
                    self.version
                ),
                values: said(&ran),
            });
        }
        if !self.gpg_allowlist.is_empty() {
            let keys = gpg_fingerprints(&ran.stderr);
            if !keys.iter().any(|k| self.gpg_allowlist.contains(k)) {
                return Err(ModuleError::FailedWith {
                    msg: format!(
                        "The gpg_allowlist does not include the public key \"{}\" for this commit",
                        keys.first().map_or("None", String::as_str)
                    ),
                    values: said(&ran),
                });
            }
        }
        Ok(())
    }

    /// Makes the archive of `rev` in `folder` (git writes it, so `umask` applies).
    fn make_archive(&self, rev: &str, folder: &Path) -> Result<PathBuf, ModuleError> {
        let archive = self.archive.as_deref().unwrap_or(Path::new("archive"));
        let format = archive_format(archive)?;
        let out = folder.join(archive.file_name().unwrap_or_default());
        let out_text = out.display().to_string();
        let mut argv = vec!["archive", "--format", format, "--output", &out_text];
        if let Some(prefix) = &self.archive_prefix {
            argv.extend(["--prefix", prefix]);
        }
        argv.push(rev);
        let dest = self.dest.display().to_string();
        let safe = format!("safe.directory={dest}");
        let mut full = vec!["-c", safe.as_str(), "-C", dest.as_str()];
        full.extend(argv);
        let ran = self.run_git(None, &full)?;
        if !ran.ok() {
            return Err(ModuleError::with(
                "Failed to perform archive operation",
                &[(
                    "details",
                    &format!(
                        "Git archive command failed to create archive {} using {} directory.\
                         Error: {}",
                        archive.display(),
                        self.dest.display(),
                        ran.stderr
                    ),
                )],
            ));
        }
        Ok(out)
    }

    /// Whether the archive there differs from (or lacks) one made of `rev` now.
    fn archive_differs(&self, rev: &str) -> Result<bool, ModuleError> {
        let Some(archive) = &self.archive else {
            return Ok(false);
        };
        archive_format(archive)?;
        if !archive.exists() {
            return Ok(true);
        }
        let scratch =
            tempfile::tempdir().map_err(|e| ModuleError::io("create a temporary folder", e))?;
        let made = self.make_archive(rev, scratch.path())?;
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ModuleError::io(format!("read {}", p.display()), e))
        };
        Ok(read(&made)? != read(archive)?)
    }

    /// Writes the archive of `rev` when it differs from the one there (made beside it, then
    /// renamed over it).
    fn write_archive(&self, rev: &str) -> Result<(), ModuleError> {
        let Some(archive) = &self.archive else {
            return Ok(());
        };
        let folder = archive
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let scratch = tempfile::Builder::new()
            .prefix(".settle-git-archive.")
            .tempdir_in(folder)
            .map_err(|e| {
                ModuleError::io(
                    format!("create a temporary folder in {}", folder.display()),
                    e,
                )
            })?;
        let made = self.make_archive(rev, scratch.path())?;
        let same = archive.exists() && std::fs::read(&made).ok() == std::fs::read(archive).ok();
        if !same {
            std::fs::rename(&made, archive).map_err(|e| {
                ModuleError::with(
                    format!("Failed to move {} to {}", made.display(), archive.display()),
                    &[("details", &format!("Error occurred while moving : {e}"))],
                )
            })?;
        }
        Ok(())
    }

    /// Moves the repository folder to `separate_git_dir` and points `dest/.git` there.
    fn relocate(&self, from: &Path, to: &Path) -> Result<(), ModuleError> {
        if std::fs::rename(from, to).is_err() {
            // Another file system: mv copies.
            crate::process::run_ok(
                &[
                    "mv",
                    "-T",
                    &from.display().to_string(),
                    &to.display().to_string(),
                ],
                &[],
            )?;
        }
        let dot_git = self.dest.join(".git");
        if let Err(e) = std::fs::write(&dot_git, format!("gitdir: {}", to.display())) {
            let _ = std::fs::rename(to, from);
            return Err(ModuleError::io("Unable to move git dir.", e));
        }
        Ok(())
    }

    /// A fetch of the remote as Ansible's `fetch`: everything (with tags), or the bare
    /// repository's branches and tags, and `refspec`.
    fn fetch(&self) -> Result<(), ModuleError> {
        let mut fetch = vec!["fetch".to_string()];
        if let Some(d) = self.depth {
            fetch.push(format!("--depth={d}"));
        }
        if !self.bare {
            fetch.push("--tags".into());
        }
        if self.force {
            fetch.push("--force".into());
        }
        fetch.push(self.remote.clone());
        if self.bare {
            fetch.push("+refs/heads/*:refs/heads/*".into());
            fetch.push("+refs/tags/*:refs/tags/*".into());
        }
        if let Some(r) = &self.refspec {
            fetch.push(r.clone());
        }
        let fetch: Vec<&str> = fetch.iter().map(String::as_str).collect();
        self.in_dest(&fetch)?;
        Ok(())
    }

    /// Creates `path` and its missing parents, with the modes `umask` gives (Ansible sets the
    /// module's umask before anything else).
    fn make_folders(&self, path: &Path) -> Result<(), ModuleError> {
        if path.as_os_str().is_empty() || path.is_dir() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            self.make_folders(parent)?;
        }
        let mkdir = |e| ModuleError::io(format!("mkdir {}", path.display()), e);
        match std::fs::create_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(mkdir(e)),
            _ => {}
        }
        if let Some(mask) = self.found.mask {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777 & !mask))
                .map_err(mkdir)?;
        }
        Ok(())
    }

    fn clone_repo(&self) -> Result<(), ModuleError> {
        let dest = self.dest.display().to_string();
        if let Some(parent) = self.dest.parent() {
            self.make_folders(parent)?;
        }
        let depth = self.depth.map(|d| d.to_string());
        let separate = self
            .found
            .separate
            .as_ref()
            .map(|s| format!("--separate-git-dir={}", s.display()));
        let mut argv = vec!["clone"];
        if self.bare {
            argv.push("--bare");
        } else {
            argv.extend(["--origin", &self.remote]);
        }
        if let Some(d) = &depth {
            argv.extend(["--depth", d]);
        }
        if let Some(r) = &self.reference {
            argv.extend(["--reference", r]);
        }
        if self.single_branch {
            argv.push("--single-branch");
        }
        if let Some(b) = &self.branch
            && (!self.bare || self.single_branch || self.depth.is_some())
        {
            argv.extend(["--branch", b]);
        }
        if let Some(s) = &separate {
            argv.push(s);
        }
        argv.extend([self.repo.as_str(), dest.as_str()]);
        self.git_ok(None, &argv)?;
        if self.bare && self.remote != "origin" {
            self.in_dest(&["remote", "add", &self.remote, &self.repo])?;
        }
        if let Some(refspec) = &self.refspec {
            let depth = self.depth.map(|d| format!("--depth={d}"));
            let mut fetch = vec!["fetch"];
            if let Some(d) = &depth {
                fetch.push(d);
            }
            fetch.extend([self.remote.as_str(), refspec]);
            self.in_dest(&fetch)?;
        }
        Ok(())
    }

    fn checkout(&self, want: &str) -> Result<(), ModuleError> {
        match &self.branch {
            Some(b) => {
                self.in_dest(&["checkout", "--force", "-B", b, want])?;
                let upstream = format!("{}/{b}", self.remote);
                let _ = self.in_dest(&["branch", "--set-upstream-to", &upstream, b]);
            }
            None => {
                self.in_dest(&["checkout", "--force", "--detach", want])?;
            }
        }
        Ok(())
    }

    fn update_submodules(&self) -> Result<(), ModuleError> {
        if !self.dest.join(".gitmodules").is_file() {
            return Ok(());
        }
        self.in_dest(&["submodule", "sync", "--recursive"])?;
        let mut argv = vec!["submodule", "update", "--init", "--recursive"];
        if self.track_submodules {
            argv.push("--remote");
        }
        if self.force {
            argv.push("--force");
        }
        self.in_dest(&argv)
            .map_err(|e| ModuleError::Failed(format!("Failed to init/update submodules: {e}")))?;
        Ok(())
    }
}

impl Resource for Git {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.separate_git_dir.is_some() && self.bare {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: separate_git_dir|bare".into(),
            ));
        }
        if self.accept_hostkey && self.accept_newhostkey {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: accept_hostkey|accept_newhostkey".into(),
            ));
        }
        if self.archive_prefix.is_some() && self.archive.is_none() {
            return Err(ModuleError::Args(
                "missing parameter(s) required by 'archive_prefix': archive".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        self.found.mask = match &self.umask {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(u32::from_str_radix(s, 8).map_err(|e| {
                ModuleError::with(
                    "umask must be an octal integer",
                    &[("details", &e.to_string())],
                )
            })?),
            Some(_) => {
                return Err(ModuleError::Failed(
                    "umask must be defined as a quoted octal integer".into(),
                ));
            }
        };
        self.found.ssh_command = self.ssh_command();
        self.dest = crate::fsutil::expand_path(&self.dest);
        self.archive = self.archive.as_deref().map(crate::fsutil::expand_path);
        // Features such as depth need a file:// URL for a repository given as a path.
        let expanded = crate::fsutil::expand_path(Path::new(&self.repo));
        if expanded.is_absolute() {
            self.repo = format!("file://{}", expanded.display());
        }
        if let Some(archive) = &self.archive {
            archive_format(archive)?;
        }
        if self.run_git(None, &["--version"]).is_err() {
            return Err(ModuleError::Failed(
                "git is not installed on the host".into(),
            ));
        }
        self.found.separate = self
            .separate_git_dir
            .as_deref()
            .map(|s| real_path(&crate::fsutil::expand_path(s)));
        self.found.git_dir = self.git_dir()?;
        if let (Some(sep), Some(now)) = (&self.found.separate, &self.found.git_dir)
            && real_path(now) != *sep
        {
            if sep.exists() {
                return Err(ModuleError::Failed(format!(
                    "Separate-git-dir path {} already exists.",
                    sep.display()
                )));
            }
            plan.change(
                "git dir",
                Some(now.display().to_string()),
                Some(sep.display().to_string()),
            );
        }
        if self.found.git_dir.is_none() {
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
            if let Some(archive) = &self.archive {
                plan.change("archive", None, Some(archive.display().to_string()));
            }
            self.found.archive_rev = Some(want);
            return Ok(plan);
        }
        let current = self.in_dest(&["rev-parse", "HEAD"]).ok();
        self.before = current.clone();
        self.after = current.clone();
        if !self.update {
            let rev = self.version.clone();
            if self.archive_differs(&rev)? {
                plan.change(
                    "archive",
                    None,
                    self.archive.as_ref().map(|a| a.display().to_string()),
                );
            }
            self.found.archive_rev = Some(rev);
            return Ok(plan);
        }
        let url = self
            .in_dest(&["config", "--get", &format!("remote.{}.url", self.remote)])
            .unwrap_or_default();
        let url_changed = !same_repo(&url, &self.repo);
        self.found.remote_url_changed = Some(url_changed && !url.is_empty());
        if url_changed {
            plan.change("remote url", Some(url), Some(self.repo.clone()));
        }
        if self.bare {
            let outdated = self.bare_outdated()?;
            if !outdated.is_empty() {
                plan.change("refs", Some(outdated.join(", ")), Some("fetched".into()));
                // HEAD's branch is among them: say where it will be.
                let head_ref = self.in_dest(&["symbolic-ref", "HEAD"]).unwrap_or_default();
                if let Some((sha, _)) = self
                    .remote_refs(&self.repo)?
                    .into_iter()
                    .find(|(_, n)| *n == head_ref)
                {
                    self.after = Some(sha);
                }
            }
            return Ok(plan);
        }
        let mut want = self.remote_commit()?;
        // An abbreviated commit id is compared as the full one it names here.
        if want.len() < 40
            && let Ok(full) = self.in_dest(&[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{want}^{{commit}}"),
            ])
            && !full.is_empty()
        {
            want = full;
        }
        // Reading must not write: a plain `git status` refreshes .git/index as the module's user.
        // Submodules at other commits are not local modifications when they are this module's
        // to put back (`recursive`): that is the submodule check's.
        let mut status = vec![
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ];
        if self.recursive {
            status.push("--ignore-submodules=all");
        }
        let dirty = !self.in_dest(&status)?.is_empty();
        if dirty && !self.force {
            return Err(ModuleError::with(
                format!(
                    "Local modifications exist in the destination: {} (force=no).",
                    self.dest.display()
                ),
                &[("before", current.as_deref().unwrap_or(""))],
            ));
        }
        let moves = current.as_deref() != Some(want.as_str());
        if moves {
            plan.change("version", current, Some(want.clone()));
        } else if dirty {
            plan.change(
                "local modifications",
                Some("modified".into()),
                Some("discarded (force=yes)".into()),
            );
        }
        if !moves {
            if self.recursive
                && let Some(what) = self.submodules_differ()?
            {
                self.found.submodules_changed = true;
                plan.change("submodules", Some(what), Some("updated".into()));
            }
            if self.verify_commit {
                self.verify_signature()?;
            }
            if self.archive_differs(&want)? {
                plan.change(
                    "archive",
                    None,
                    self.archive.as_ref().map(|a| a.display().to_string()),
                );
            }
        } else if let Some(archive) = &self.archive {
            plan.change("archive", None, Some(archive.display().to_string()));
        }
        self.found.archive_rev = Some(want.clone());
        self.after = Some(want);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.has("git dir")
            && let (Some(from), Some(to)) = (&self.found.git_dir, &self.found.separate)
        {
            self.relocate(from, to)?;
        }
        let moved = plan.has("checkout") || plan.has("version") || plan.has("local modifications");
        if plan.has("checkout") {
            self.clone_repo()?;
        } else {
            if plan.has("remote url") {
                self.in_dest(&["remote", "set-url", &self.remote, &self.repo])?;
            }
            if moved || plan.has("refs") {
                self.fetch()?;
            }
        }
        if self.bare {
            self.after = self.in_dest(&["rev-parse", "HEAD"]).ok();
        } else if moved {
            let want = self
                .after
                .clone()
                .ok_or_else(|| ModuleError::Failed("git: apply before check".into()))?;
            self.checkout(&want)?;
            if self.verify_commit {
                self.verify_signature()?;
            }
        }
        if !self.bare
            && self.recursive
            && (moved || plan.has("submodules"))
            && self.dest.join(".gitmodules").is_file()
        {
            self.update_submodules()?;
            self.found.submodules_changed = true;
        }
        if (plan.has("archive") || moved)
            && let Some(rev) = self.found.archive_rev.clone()
        {
            self.write_archive(&rev)?;
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
        if let Some(changed) = self.found.remote_url_changed {
            values.insert("remote_url_changed".into(), changed.into());
        }
        if self.found.submodules_changed {
            values.insert("submodules_changed".into(), true.into());
        }
        if let (Some(from), Some(to)) = (&self.found.git_dir, &self.found.separate)
            && real_path(from) != *to
        {
            values.insert("git_dir_before".into(), from.display().to_string().into());
            values.insert("git_dir_now".into(), to.display().to_string().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_formats_come_from_the_extension() {
        assert_eq!(archive_format(Path::new("/x/a.zip")).unwrap(), "zip");
        assert_eq!(archive_format(Path::new("/x/a.tar.gz")).unwrap(), "tar.gz");
        assert_eq!(archive_format(Path::new("/x/a.tgz")).unwrap(), "tgz");
        let err = archive_format(Path::new("/x/a.rar"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Unable to get file extension"), "{err}");
    }

    #[test]
    fn validsig_names_the_signing_and_the_primary_key() {
        let status = "[GNUPG:] NEWSIG\n[GNUPG:] VALIDSIG AAAA 2026-12-02 1 0 4 0 1 10 00 BBBB\n";
        assert_eq!(gpg_fingerprints(status), vec!["AAAA", "BBBB"]);
        assert!(gpg_fingerprints("[GNUPG:] BADSIG x\n").is_empty());
    }

    #[test]
    fn a_path_and_its_file_url_are_the_same_repository() {
        assert!(same_repo("/srv/a.git", "file:///srv/a.git"));
        assert!(!same_repo("/srv/a.git", "file:///srv/b.git"));
    }
}
