//! `backup`: the backup pipeline's script as a module. Archives a folder as a tar (gzip or
//! zstd) with a `.sha256` and a content manifest beside it, keeps the newest N, and can verify
//! every kept archive.
//!
//! It reports changed only when the source's content differs from what the newest archive
//! holds (compared by a manifest of paths, types, modes, owners, sizes and content hashes, not
//! by timestamps), so a drift check stays at changed=0 on an unchanged source.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::args::{Mode, text};
use crate::fsutil::{self, atomic_write};
use crate::process::run_ok;
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "backup",
    args: &[
        "src",
        "dest",
        "keep",
        "compression",
        "owner",
        "group",
        "mode",
        "state",
        "metrics_file",
        "report",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Verified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Compression {
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
        }
    }

    fn tar_flag(self) -> &'static str {
        match self {
            Compression::Gzip => "--gzip",
            Compression::Zstd => "--zstd",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backup {
    src: Option<PathBuf>,
    dest: PathBuf,
    #[serde(default = "seven")]
    keep: usize,
    #[serde(default)]
    compression: Compression,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default)]
    state: State,
    metrics_file: Option<PathBuf>,
    report: Option<PathBuf>,
    #[serde(skip)]
    manifest: String,
    #[serde(skip)]
    made: Map<String, Value>,
}

fn seven() -> usize {
    7
}

const PREFIX: &str = "backup-";

fn sha256_file(path: &Path) -> Result<String, ModuleError> {
    fsutil::hash_file::<Sha256>(path)
}

/// One line per path below `root`, sorted: what the archive would hold.
fn manifest(root: &Path, skip: Option<&Path>) -> Result<String, ModuleError> {
    let mut lines = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = fs::read_dir(&dir)
            .map_err(|e| ModuleError::io(format!("read {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let rel_path = rel.join(entry.file_name());
            if Some(rel_path.as_path()) == skip {
                continue;
            }
            let meta = fs::symlink_metadata(entry.path())
                .map_err(|e| ModuleError::io(format!("stat {}", entry.path().display()), e))?;
            let ft = meta.file_type();
            let what = if ft.is_symlink() {
                format!(
                    "link {}",
                    fs::read_link(entry.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_default()
                )
            } else if ft.is_dir() {
                stack.push(rel_path.clone());
                "dir".to_string()
            } else if ft.is_file() {
                format!("file {} {}", meta.len(), sha256_file(&entry.path())?)
            } else {
                "special".to_string()
            };
            lines.push(format!(
                "{} {:04o} {}:{} {what}",
                rel_path.display(),
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            ));
        }
    }
    lines.sort();
    Ok(lines.join("\n") + "\n")
}

/// `20261124T061342.123Z`: sortable, so archive names sort by time.
fn utc_stamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = fsutil::civil_from_days(secs.div_euclid(86_400));
    let rest = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_millis()
    )
}

impl Backup {
    /// The kept archives' file names, oldest first (names sort by time).
    fn archives(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dest)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| {
                        n.starts_with(PREFIX) && (n.ends_with(".tar.gz") || n.ends_with(".tar.zst"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `.sha256`/`.manifest` files whose archive is gone.
    fn orphans(&self) -> Vec<String> {
        let archives = self.archives();
        let mut out: Vec<String> = fs::read_dir(&self.dest)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(PREFIX))
                    .filter(|n| {
                        let archive = n
                            .strip_suffix(".sha256")
                            .or_else(|| n.strip_suffix(".manifest"));
                        archive.is_some_and(|a| !archives.iter().any(|x| x == a))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn sidecar(&self, archive: &str, ext: &str) -> PathBuf {
        self.dest.join(format!("{archive}.{ext}"))
    }

    fn remove_archive(&self, name: &str) -> Result<(), ModuleError> {
        for path in [
            self.dest.join(name),
            self.sidecar(name, "sha256"),
            self.sidecar(name, "manifest"),
        ] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ModuleError::io(format!("remove {}", path.display()), e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn verify(&self) -> Result<Vec<String>, ModuleError> {
        let mut bad = Vec::new();
        let archives = self.archives();
        for name in &archives {
            let recorded = fs::read_to_string(self.sidecar(name, "sha256")).ok();
            let recorded = recorded
                .as_deref()
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or("");
            if recorded.is_empty() || sha256_file(&self.dest.join(name))? != recorded {
                bad.push(name.clone());
            }
        }
        if !bad.is_empty() {
            return Err(ModuleError::Failed(format!(
                "checksum mismatch in {}: {}",
                self.dest.display(),
                bad.join(", ")
            )));
        }
        Ok(archives)
    }

    /// Where `dest` is inside `src`, relative to it: that folder is left out of the archive
    /// and its manifest (else each archive would hold the ones before it, and never be
    /// unchanged). `dest` being `src` itself is refused.
    fn dest_inside(&self, src: &Path) -> Result<Option<PathBuf>, ModuleError> {
        let real = |p: &Path| {
            fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.into()))
        };
        let (src, dest) = (real(src), real(&self.dest));
        match dest.strip_prefix(&src) {
            Ok(rel) if rel.as_os_str().is_empty() => Err(ModuleError::Args(format!(
                "backup: dest {} is the source folder itself; keep archives elsewhere",
                self.dest.display()
            ))),
            Ok(rel) => Ok(Some(rel.to_path_buf())),
            Err(_) => Ok(None),
        }
    }

    fn make_archive(&mut self) -> Result<String, ModuleError> {
        let started = Instant::now();
        let src = self
            .src
            .clone()
            .ok_or_else(|| ModuleError::Args("backup: src is required".into()))?;
        let name = format!("{PREFIX}{}.{}", utc_stamp(), self.compression.extension());
        fs::create_dir_all(&self.dest)
            .map_err(|e| ModuleError::io(format!("mkdir {}", self.dest.display()), e))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&self.dest)
            .map_err(|e| ModuleError::io("backup", e))?;
        let tmp_path = tmp.path().display().to_string();
        let src_text = src.display().to_string();
        // Archives kept inside the source are not part of the next archive.
        let exclude = self
            .dest_inside(&src)?
            .map(|rel| format!("--exclude=./{}", rel.display()));
        let mut argv = vec!["tar", "-C", &src_text, self.compression.tar_flag()];
        if let Some(exclude) = &exclude {
            argv.extend(["--anchored", exclude.as_str()]);
        }
        argv.extend(["-cf", &tmp_path, "."]);
        run_ok(&argv, &[])?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| ModuleError::io("backup", e))?;
        let sum = sha256_file(tmp.path())?;
        // Read it back before it counts as a backup.
        if sha256_file(tmp.path())? != sum {
            return Err(ModuleError::Failed(format!(
                "verification of {name} failed"
            )));
        }
        let mode = match &self.mode {
            Some(m) => m.resolve(0o600, false).map_err(ModuleError::Args)?,
            None => 0o600,
        };
        let uid = self.owner.as_deref().map(fsutil::user_id).transpose()?;
        let gid = self.group.as_deref().map(fsutil::group_id).transpose()?;
        atomic_write(
            &self.sidecar(&name, "sha256"),
            format!("{sum}  {name}\n").as_bytes(),
            mode | 0o044,
            uid,
            gid,
        )?;
        atomic_write(
            &self.sidecar(&name, "manifest"),
            self.manifest.as_bytes(),
            mode,
            uid,
            gid,
        )?;
        fsutil::chmod(tmp.path(), mode)?;
        if uid.is_some() || gid.is_some() {
            fsutil::chown(tmp.path(), uid, gid)?;
        }
        let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
        tmp.persist(self.dest.join(&name))
            .map_err(|e| ModuleError::io("backup", e.error))?;
        let duration = started.elapsed().as_secs_f64();
        self.made.insert(
            "archive".into(),
            self.dest.join(&name).display().to_string().into(),
        );
        self.made.insert("sha256".into(), sum.into());
        self.made.insert("size".into(), size.into());
        self.made.insert("duration".into(), json!(duration));
        self.made.insert(
            "files".into(),
            self.manifest
                .lines()
                .filter(|l| l.contains(" file "))
                .count()
                .into(),
        );
        Ok(name)
    }

    fn write_observability(&self) -> Result<(), ModuleError> {
        let dest = self.dest.display().to_string().replace('"', "\\\"");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let kept = self.archives();
        if let Some(path) = &self.metrics_file {
            let size = self.made.get("size").and_then(Value::as_u64).unwrap_or(0);
            let duration = self
                .made
                .get("duration")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let text = format!(
                "# HELP settle_backup_last_success_timestamp_seconds When the last archive was written.\n\
                 # TYPE settle_backup_last_success_timestamp_seconds gauge\n\
                 settle_backup_last_success_timestamp_seconds{{dest=\"{dest}\"}} {now}\n\
                 # HELP settle_backup_last_size_bytes Size of the last archive.\n\
                 # TYPE settle_backup_last_size_bytes gauge\n\
                 settle_backup_last_size_bytes{{dest=\"{dest}\"}} {size}\n\
                 # HELP settle_backup_last_duration_seconds How long the last archive took.\n\
                 # TYPE settle_backup_last_duration_seconds gauge\n\
                 settle_backup_last_duration_seconds{{dest=\"{dest}\"}} {duration:.3}\n\
                 # HELP settle_backup_archives Archives kept.\n\
                 # TYPE settle_backup_archives gauge\n\
                 settle_backup_archives{{dest=\"{dest}\"}} {}\n",
                kept.len()
            );
            atomic_write(path, text.as_bytes(), 0o644, None, None)?;
        }
        if let Some(path) = &self.report {
            let mut report = self.made.clone();
            report.insert("timestamp".into(), now.into());
            report.insert("kept".into(), kept.into());
            let text =
                serde_json::to_string_pretty(&Value::Object(report)).unwrap_or_default() + "\n";
            atomic_write(path, text.as_bytes(), 0o644, None, None)?;
        }
        Ok(())
    }
}

impl Resource for Backup {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.state == State::Present && self.src.is_none() {
            return Err(ModuleError::Args(
                "backup: src is required with state=present".into(),
            ));
        }
        if self.keep == 0 {
            return Err(ModuleError::Args("backup: keep must be at least 1".into()));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        if self.state == State::Verified {
            let verified = self.verify()?;
            self.made.insert("verified".into(), verified.into());
            return Ok(plan);
        }
        let src = self
            .src
            .clone()
            .ok_or_else(|| ModuleError::Args("backup: src is required".into()))?;
        if self.compression == Compression::Zstd
            && !["/usr/bin/zstd", "/bin/zstd", "/usr/local/bin/zstd"]
                .iter()
                .any(|p| Path::new(p).exists())
        {
            return Err(ModuleError::Failed("backup: compression=zstd needs the zstd program on the host (install the zstd package first)".into()));
        }
        if !src.is_dir() {
            return Err(ModuleError::Failed(format!(
                "backup: source {} is not a folder",
                src.display()
            )));
        }
        self.manifest = manifest(&src, self.dest_inside(&src)?.as_deref())?;
        let archives = self.archives();
        let newest = archives.last();
        let held = newest.and_then(|n| fs::read_to_string(self.sidecar(n, "manifest")).ok());
        let mut count = archives.len();
        if held.as_deref() != Some(self.manifest.as_str()) {
            let files = self
                .manifest
                .lines()
                .filter(|l| l.contains(" file "))
                .count();
            plan.change(
                "archive",
                newest.cloned().or(Some("(none)".into())),
                Some(format!(
                    "a new archive of {files} files from {}",
                    src.display()
                )),
            );
            count += 1;
        }
        let orphans = self.orphans();
        if !orphans.is_empty() {
            plan.change("orphaned files", Some(orphans.join(", ")), None);
        }
        if count > self.keep {
            let excess = count - self.keep;
            plan.change(
                "retention",
                Some(format!("{count} archives")),
                Some(format!(
                    "keep {}, remove {}",
                    self.keep,
                    archives[..excess].join(", ")
                )),
            );
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let mut removed = Vec::new();
        for orphan in self.orphans() {
            fs::remove_file(self.dest.join(&orphan))
                .map_err(|e| ModuleError::io(format!("remove {orphan}"), e))?;
        }
        if plan.has("archive") {
            self.make_archive()?;
        }
        let archives = self.archives();
        if archives.len() > self.keep {
            for name in &archives[..archives.len() - self.keep] {
                self.remove_archive(name)?;
                removed.push(name.clone());
            }
        }
        self.made.insert("removed".into(), removed.into());
        if plan.has("archive") {
            self.write_observability()?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.extend(self.made.clone());
        values.insert("dest".into(), self.dest.display().to_string().into());
        values.insert("kept".into(), self.archives().into());
    }
}
