//! `ansible.posix.mount`: a mount point in `/etc/fstab` (or `fstab`) and in the running system,
//! as Ansible's module handles them on Linux. `present`/`absent_from_fstab` touch only the file,
//! `unmounted`/`remounted`/`ephemeral` only the running mounts, `mounted` and `absent` both.
//! fstab lines are matched by mount point (by device too for swap), compared field by field and
//! rewritten as `src path fstype opts dump passno` only when a field differs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, text};
use crate::fsutil::{atomic_write, default_file_mode, expand_path};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "ansible.posix.mount",
    args: &[
        "path",
        "name",
        "src",
        "fstype",
        "opts",
        "opts_no_log",
        "dump",
        "passno",
        "state",
        "fstab",
        "boot",
        "backup",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Absent,
    AbsentFromFstab,
    Mounted,
    Present,
    Unmounted,
    Remounted,
    Ephemeral,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mount {
    #[serde(default, alias = "name", deserialize_with = "text")]
    path: Option<String>,
    #[serde(default, deserialize_with = "text")]
    src: Option<String>,
    #[serde(default, deserialize_with = "text")]
    fstype: Option<String>,
    #[serde(default, deserialize_with = "text")]
    opts: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    opts_no_log: bool,
    #[serde(default, deserialize_with = "text")]
    dump: Option<String>,
    #[serde(default, deserialize_with = "text")]
    passno: Option<String>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default, deserialize_with = "text")]
    fstab: Option<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    boot: bool,
    #[serde(default, deserialize_with = "boolean")]
    backup: bool,
    #[serde(skip)]
    work: Work,
}

#[derive(Debug, Default)]
struct Work {
    name: String,
    opts: String,
    fstab: PathBuf,
    old_fstab: Option<String>,
    new_fstab: Option<String>,
    warnings: Vec<String>,
    backup_file: String,
}

/// Escapes what fstab cannot hold as is: backslash, space, ampersand.
fn escape(v: &str) -> String {
    v.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// What the running system has mounted: mount point → (source, fstype), from mountinfo, with
/// a bind mount's source as the folder it shows (as Ansible's `get_linux_mounts`).
fn linux_mounts() -> Option<Vec<(String, String, String)>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    struct Info {
        id: String,
        parent: String,
        root: String,
        dst: String,
        fs: String,
        src: String,
    }
    let infos: Vec<Info> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7).then(|| Info {
                id: f[0].into(),
                parent: f[1].into(),
                root: f[3].into(),
                dst: f[4].into(),
                fs: f[f.len() - 3].into(),
                src: f[f.len() - 2].into(),
            })
        })
        .collect();
    let mut out = Vec::new();
    for m in &infos {
        let parent = infos.iter().find(|p| p.id == m.parent);
        let src = match parent {
            Some(p) if m.parent != "1" => {
                let mut root = m.root.clone();
                if p.root.len() > 1 && root.starts_with(&format!("{}/", p.root)) {
                    root = root[p.root.len()..].to_string();
                }
                if p.dst != "/" {
                    root = format!("{}{root}", p.dst);
                }
                root
            }
            _ => m.src.clone(),
        };
        out.retain(|(d, _, _): &(String, String, String)| *d != m.dst);
        out.push((m.dst.clone(), src, m.fs.clone()));
    }
    Some(out)
}

/// Whether something is mounted on `path` (Ansible's `ismount`, or a bind mount there).
fn is_mounted(path: &str, mounts: &Option<Vec<(String, String, String)>>) -> bool {
    let p = Path::new(path);
    let by_device = match (std::fs::symlink_metadata(p), p.parent()) {
        (Ok(m), Some(parent)) if m.is_dir() => {
            std::fs::metadata(parent).is_ok_and(|pm| pm.dev() != m.dev() || pm.ino() == m.ino())
        }
        _ => false,
    };
    by_device
        || mounts
            .as_ref()
            .is_some_and(|ms| ms.iter().any(|(d, _, _)| d == path))
}

fn mounted_from(path: &str, mounts: &Option<Vec<(String, String, String)>>) -> Option<String> {
    mounts
        .as_ref()?
        .iter()
        .find(|(d, _, _)| d == path)
        .map(|(_, s, _)| s.clone())
}

/// Whether the plan mounts what is not mounted yet (rather than remounting it).
fn mounts_now(plan: &Plan) -> bool {
    plan.changes
        .iter()
        .any(|c| c.field == "state" && c.after.as_deref() == Some("mounted"))
}

impl Mount {
    fn state(&self) -> State {
        self.state.unwrap_or(State::Present)
    }

    fn dump(&self) -> String {
        self.dump.clone().unwrap_or_else(|| "0".into())
    }

    fn passno(&self) -> String {
        self.passno.clone().unwrap_or_else(|| "0".into())
    }

    /// The file with the mount point's line set: `None` when nothing differs.
    fn set_line(&self, text: &str) -> Option<String> {
        let w = &self.work;
        let src = escape(self.src.as_deref().unwrap_or_default());
        let fstype = escape(self.fstype.as_deref().unwrap_or_default());
        let name = escape(&w.name);
        let wanted = [
            src.as_str(),
            fstype.as_str(),
            &escape(&w.opts),
            &escape(&self.dump()),
            &escape(&self.passno()),
        ];
        let mut out = String::new();
        let mut exists = false;
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            let line = if line.ends_with('\n') {
                line.to_string()
            } else {
                format!("{line}\n")
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.trim().is_empty()
                || line.trim().starts_with('#')
                || !(4..=6).contains(&fields.len())
                || !self.is_the_line(&fields, &name)
            {
                out.push_str(&line);
                continue;
            }
            exists = true;
            // Missing dump and passno are Python's integer 0, never equal to the text "0".
            let current = [
                fields[0],
                fields[2],
                fields[3],
                fields.get(4).copied().unwrap_or("\u{0}"),
                fields.get(5).copied().unwrap_or("\u{0}"),
            ];
            if current != wanted {
                changed = true;
            }
            if changed {
                out.push_str(&format!(
                    "{} {} {} {} {} {}\n",
                    wanted[0], fields[1], wanted[1], wanted[2], wanted[3], wanted[4]
                ));
            } else {
                out.push_str(&line);
            }
        }
        if !exists {
            out.push_str(&format!(
                "{} {} {} {} {} {}\n",
                wanted[0], name, wanted[1], wanted[2], wanted[3], wanted[4]
            ));
            changed = true;
        }
        changed.then_some(out)
    }

    /// The file without the mount point's six-field lines: `None` when it has none.
    fn unset_line(&self, text: &str) -> Option<String> {
        let name = escape(&self.work.name);
        let mut out = String::new();
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.trim().is_empty()
                || line.trim().starts_with('#')
                || fields.len() != 6
                || !self.is_the_line(&fields, &name)
            {
                out.push_str(line);
                continue;
            }
            changed = true;
        }
        changed.then_some(out)
    }

    fn is_the_line(&self, fields: &[&str], name: &str) -> bool {
        if fields[1] != name {
            return false;
        }
        // Swap has no mount point: its device tells the lines apart.
        !matches!(&self.src, Some(src) if fields[1] == "none" && fields[2] == "swap" && fields[0] != src)
    }

    fn fstab_args(&self) -> Vec<String> {
        let fstab = self.work.fstab.display().to_string();
        if fstab != "/etc/fstab" {
            vec!["-T".into(), fstab]
        } else {
            Vec::new()
        }
    }

    fn ephemeral_args(&self) -> Vec<String> {
        let mut args = vec!["-t".to_string(), self.fstype.clone().unwrap_or_default()];
        if self.work.opts != "defaults" {
            args.extend(["-o".to_string(), self.work.opts.clone()]);
        }
        args.push(self.src.clone().unwrap_or_default());
        args
    }

    /// Runs `mount` (or `umount`) and returns what it said on failure.
    fn run(&self, program: &str, args: Vec<String>) -> Result<Option<String>, ModuleError> {
        let bin = bin_path::required(program)?;
        let mut argv = vec![bin];
        argv.extend(args);
        let ran = process::run(&argv, &[])?;
        Ok((!ran.ok()).then(|| format!("{}{}", ran.stdout, ran.stderr)))
    }

    fn mount(&self) -> Result<Option<String>, ModuleError> {
        let mut args = Vec::new();
        if self.state() == State::Ephemeral {
            args.extend(self.ephemeral_args());
        } else {
            args.extend(self.fstab_args());
        }
        args.push(self.work.name.clone());
        self.run("mount", args)
    }

    fn umount(&self) -> Result<Option<String>, ModuleError> {
        self.run("umount", vec![self.work.name.clone()])
    }

    fn remount(&self) -> Result<Option<String>, ModuleError> {
        let state = self.state();
        let mut args = vec!["-o".to_string()];
        if state == State::Remounted && self.work.opts != "defaults" {
            args.push(format!("remount,{}", self.work.opts));
        } else {
            args.push("remount".into());
        }
        if state == State::Ephemeral {
            args.extend(self.ephemeral_args());
        } else {
            args.extend(self.fstab_args());
        }
        args.push(self.work.name.clone());
        let Some(failed) = self.run("mount", args)? else {
            return Ok(None);
        };
        if state == State::Remounted && self.work.opts != "defaults" {
            return Err(ModuleError::Failed(format!(
                "Options were specified with remounted, but the remount command failed. Failing \
                 in order to prevent an unexpected mount result. Try replacing this command with \
                 a \"state: unmounted\" followed by a \"state: mounted\" using the full desired \
                 mount options instead. ({})",
                failed.trim()
            )));
        }
        if let Some(failed) = self.umount()? {
            return Ok(Some(failed));
        }
        self.mount()
    }

    fn write_fstab(&mut self, text: &str) -> Result<(), ModuleError> {
        let fstab = self.work.fstab.clone();
        if let Some(dir) = fstab.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| ModuleError::io(format!("mkdir {}", dir.display()), e))?;
        }
        let (mode, uid, gid) = match std::fs::metadata(&fstab) {
            Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
            Err(_) => (default_file_mode(), None, None),
        };
        if self.backup && fstab.exists() && self.work.backup_file.is_empty() {
            self.work.backup_file = crate::copy::backup(&fstab)?;
        }
        atomic_write(&fstab, text.as_bytes(), mode, uid, gid)
    }
}

impl Resource for Mount {
    fn validate(&self) -> Result<(), ModuleError> {
        let mut missing = Vec::new();
        if self.path.is_none() {
            missing.push("path");
        }
        if self.state.is_none() {
            missing.push("state");
        }
        if !missing.is_empty() {
            return Err(ModuleError::Args(format!(
                "missing required arguments: {}",
                missing.join(", ")
            )));
        }
        let state = self.state();
        let word = match state {
            State::Mounted => "mounted",
            State::Present => "present",
            State::Ephemeral => "ephemeral",
            _ => return Ok(()),
        };
        let missing: Vec<&str> = [("src", &self.src), ("fstype", &self.fstype)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(ModuleError::Args(format!(
                "state is {word} but all of the following are missing: {}",
                missing.join(", ")
            )));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let name = expand_path(Path::new(self.path.as_deref().unwrap_or_default()))
            .display()
            .to_string();
        // `src` is a `path` argument: `~` and `$VARS` expanded, as Ansible does.
        if let Some(src) = &self.src {
            self.src = Some(expand_path(Path::new(src)).display().to_string());
        }
        let fstab = PathBuf::from(self.fstab.as_deref().unwrap_or("/etc/fstab"));
        let mut opts = self.opts.clone().unwrap_or_else(|| "defaults".into());
        let mut warnings = Vec::new();
        let mut list: Vec<String> = opts.split(',').map(str::to_string).collect();
        if self.boot && list.iter().any(|o| o == "noauto") {
            warnings.push("Ignore the 'boot' due to 'opts' contains 'noauto'.".to_string());
        } else if !self.boot {
            if list.iter().any(|o| o == "defaults") {
                warnings.push("Ignore the 'boot' due to 'opts' contains 'defaults'.".to_string());
            } else {
                list.push("noauto".into());
                opts = list.join(",");
            }
        }
        self.work = Work {
            name: name.clone(),
            opts,
            fstab: fstab.clone(),
            warnings,
            ..Work::default()
        };
        let state = self.state();
        let mut plan = Plan::default();
        let old = if state == State::Ephemeral {
            String::new()
        } else {
            match std::fs::read(&fstab) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => {
                    return Err(ModuleError::Failed(format!(
                        "Failed to open {} due to {e}",
                        fstab.display()
                    )));
                }
            }
        };
        let new = match state {
            State::Present | State::Mounted => self.set_line(&old),
            State::Absent | State::AbsentFromFstab => self.unset_line(&old),
            _ => None,
        };
        if let Some(new) = &new {
            plan.change("content", None, None);
            if want_diff {
                // With opts_no_log the options are secret (a password for cifs): no diff shows them.
                let (before, after, summary) = if self.opts_no_log {
                    (None, None, Some("opts_no_log".to_string()))
                } else {
                    (Some(old.clone()), Some(new.clone()), None)
                };
                plan.content.push(ContentDiff {
                    path: fstab.display().to_string(),
                    before,
                    after,
                    summary,
                });
            }
        }
        self.work.old_fstab = Some(old);
        self.work.new_fstab = new;
        let mounts = linux_mounts();
        let mounted = is_mounted(&name, &mounts);
        match state {
            State::Absent if plan.has("content") && (mounted || Path::new(&name).exists()) => {
                plan.quietly("unmount");
            }
            State::Unmounted if mounted => {
                plan.change("state", Some("mounted".into()), Some("unmounted".into()))
            }
            State::Mounted if !mounted => {
                plan.change("state", Some("unmounted".into()), Some("mounted".into()))
            }
            State::Mounted if plan.has("content") => plan.quietly("remount"),
            State::Ephemeral if !mounted => {
                plan.change("state", Some("unmounted".into()), Some("mounted".into()))
            }
            State::Ephemeral => {
                let src = self.src.clone().unwrap_or_default();
                let same = mounted_from(&name, &mounts).is_some_and(|s| s == src)
                    || process::run(&["mount", "-v"], &[]).is_ok_and(|r| {
                        r.stdout.lines().any(|l| {
                            let f: Vec<&str> = l.split_whitespace().collect();
                            f.len() > 2 && f[0] == src && f[2] == name
                        })
                    });
                if !same {
                    return Err(ModuleError::Failed(
                        "Ephemeral mount point is already mounted with a different source than \
                         the specified one. Failing in order to prevent an unwanted unmount or \
                         override operation. Try replacing this command with a \"state: \
                         unmounted\" followed by a \"state: ephemeral\", or use a different \
                         destination path."
                            .into(),
                    ));
                }
                plan.change("state", Some("mounted".into()), Some("remounted".into()));
            }
            State::Remounted => {
                plan.change("state", Some("mounted".into()), Some("remounted".into()))
            }
            _ => {}
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let state = self.state();
        let name = self.work.name.clone();
        let mut created: Vec<PathBuf> = Vec::new();
        if matches!(state, State::Mounted | State::Ephemeral) && !Path::new(&name).exists() {
            let mut current = PathBuf::from("/");
            for part in Path::new(&name).components().skip(1) {
                current.push(part);
                if !current.exists() {
                    match std::fs::create_dir(&current) {
                        Ok(()) => created.push(current.clone()),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            return Err(ModuleError::Failed(format!(
                                "Error making dir {name}: {e}"
                            )));
                        }
                    }
                }
            }
        }
        if let Some(new) = self.work.new_fstab.clone() {
            self.write_fstab(&new)?;
        }
        let failed = match state {
            State::Absent => {
                let mounts = linux_mounts();
                if is_mounted(&name, &mounts)
                    && let Some(msg) = self.umount()?
                {
                    return Err(ModuleError::Failed(format!(
                        "Error unmounting {name}: {msg}"
                    )));
                }
                if Path::new(&name).exists() {
                    std::fs::remove_dir(&name)
                        .map_err(|e| ModuleError::Failed(format!("Error rmdir {name}: {e}")))?;
                }
                None
            }
            State::Unmounted => {
                if let Some(msg) = self.umount()? {
                    return Err(ModuleError::Failed(format!(
                        "Error unmounting {name}: {msg}"
                    )));
                }
                None
            }
            State::Mounted | State::Ephemeral if mounts_now(plan) => self.mount()?,
            State::Mounted if plan.has_quiet("remount") => self.remount()?,
            State::Ephemeral => self.remount()?,
            State::Remounted => {
                if let Some(msg) = self.remount()? {
                    return Err(ModuleError::Failed(format!(
                        "Error remounting {name}: {msg}"
                    )));
                }
                None
            }
            _ => None,
        };
        if let Some(msg) = failed {
            // A broken fstab line may keep the host from booting: put the old file back.
            if self.work.new_fstab.is_some()
                && let Some(old) = self.work.old_fstab.clone()
            {
                let _ = self.write_fstab(&old);
            }
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(ModuleError::Failed(format!(
                "Error mounting {name}: {}",
                msg.trim_end()
            )));
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let w = &self.work;
        values.insert("name".into(), w.name.clone().into());
        let opts = if self.opts_no_log {
            "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER".to_string()
        } else {
            w.opts.clone()
        };
        values.insert("opts".into(), opts.into());
        values.insert("dump".into(), self.dump().into());
        values.insert("passno".into(), self.passno().into());
        values.insert("fstab".into(), w.fstab.display().to_string().into());
        values.insert("boot".into(), if self.boot { "yes" } else { "no" }.into());
        values.insert("backup_file".into(), w.backup_file.clone().into());
        if let Some(src) = &self.src {
            values.insert("src".into(), src.clone().into());
        }
        if let Some(fstype) = &self.fstype {
            values.insert("fstype".into(), fstype.clone().into());
        }
        if !w.warnings.is_empty() {
            values.insert("warnings".into(), w.warnings.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(args: Value) -> Mount {
        let mut m: Mount = serde_json::from_value(args).unwrap();
        m.work.name = m.path.clone().unwrap();
        m.work.opts = m.opts.clone().unwrap_or_else(|| "defaults".into());
        m
    }

    #[test]
    fn a_new_mount_point_is_added_at_the_end() {
        let m = module(serde_json::json!({
            "path": "/mnt/my data", "src": "tmpfs", "fstype": "tmpfs", "state": "present"
        }));
        assert_eq!(
            m.set_line("# fstab\n/dev/sda1 / ext4 defaults 0 1")
                .unwrap(),
            "# fstab\n/dev/sda1 / ext4 defaults 0 1\ntmpfs /mnt/my\\040data tmpfs defaults 0 0\n"
        );
    }

    #[test]
    fn a_matching_line_is_left_alone_and_a_different_one_rewritten() {
        let m = module(serde_json::json!({
            "path": "/srv", "src": "tmpfs", "fstype": "tmpfs", "opts": "size=1m", "state": "present"
        }));
        assert_eq!(m.set_line("tmpfs\t/srv  tmpfs size=1m 0 0\n"), None);
        assert_eq!(
            m.set_line("tmpfs /srv tmpfs size=2m 0 0\n").unwrap(),
            "tmpfs /srv tmpfs size=1m 0 0\n"
        );
        // Four fields: the missing dump and passno differ, as in Ansible.
        assert_eq!(
            m.set_line("tmpfs /srv tmpfs size=1m\n").unwrap(),
            "tmpfs /srv tmpfs size=1m 0 0\n"
        );
    }

    #[test]
    fn absent_removes_only_six_field_lines_of_the_mount_point() {
        let m = module(serde_json::json!({"path": "/srv", "state": "absent"}));
        assert_eq!(
            m.unset_line("a /srv t o 0 0\nb /srv2 t o 0 0\n").unwrap(),
            "b /srv2 t o 0 0\n"
        );
        assert_eq!(m.unset_line("b /srv2 t o 0 0\n"), None);
    }
}
