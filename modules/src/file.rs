//! `file`: a path's existence and kind (file, directory, link, hard link), owner, group, mode.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean, optional_boolean, text};
use crate::fsutil;
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "file",
    args: &[
        "path",
        "dest",
        "name",
        "state",
        "owner",
        "group",
        "mode",
        "recurse",
        "src",
        "follow",
        "force",
        "access_time",
        "access_time_format",
        "modification_time",
        "modification_time_format",
        // Internal: Ansible's action plugins ask whether a file looks binary.
        "_diff_peek",
        "attributes",
        "attr",
        "unsafe_writes",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    /// Required; checked in `validate`, to fail in Ansible's words.
    #[serde(alias = "dest", alias = "name", default)]
    path: PathBuf,
    state: Option<State>,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    recurse: bool,
    src: Option<PathBuf>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    follow: bool,
    /// A common file argument; the file module writes no content, so it has nothing to do.
    #[serde(default, rename = "unsafe_writes", deserialize_with = "boolean")]
    _unsafe_writes: bool,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    /// `now`, `preserve` or a time in `modification_time_format`.
    #[serde(default, deserialize_with = "text")]
    modification_time: Option<String>,
    #[serde(default = "time_format")]
    modification_time_format: String,
    #[serde(default, deserialize_with = "text")]
    access_time: Option<String>,
    #[serde(default = "time_format")]
    access_time_format: String,
    /// The (atime, mtime) to set, decided by `check`.
    #[serde(skip)]
    times: Option<(f64, f64)>,
    /// The state decided by `check`, for `apply` and the return values.
    #[serde(skip)]
    resolved: Option<State>,
    /// A dry run: owners and groups that do not exist (yet) are warned about.
    #[serde(skip)]
    check_mode: bool,
    /// In diff mode, the folder `state: absent` removes: Ansible's `diff.before.path_content`.
    #[serde(skip)]
    removed_content: Option<Value>,
    /// chattr flags: `A`, `+i`, `-a`.
    #[serde(default, alias = "attr", deserialize_with = "text")]
    attributes: Option<String>,
    /// `_diff_peek`: only say whether the file looks binary (a NUL in its first 8 KiB).
    #[serde(rename = "_diff_peek", default, deserialize_with = "optional_boolean")]
    diff_peek: Option<bool>,
    /// What `check` found worth a warning.
    #[serde(skip)]
    warnings: Vec<String>,
}

fn time_format() -> String {
    "%Y%m%d%H%M.%S".into()
}

/// What a task wants of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamp {
    Preserve,
    Now,
    At(f64),
}

/// Ansible's `get_timestamp_for_time`: `preserve`, `now`, or `time.mktime(time.strptime(…))`.
fn stamp(given: Option<&str>, format: &str, touch: bool) -> Result<Stamp, ModuleError> {
    match given {
        None if touch => Ok(Stamp::Now),
        None | Some("preserve") => Ok(Stamp::Preserve),
        Some("now") => Ok(Stamp::Now),
        Some(text) => local_time(text, format).map(Stamp::At).ok_or_else(|| {
            ModuleError::Failed(format!(
                "Error while obtaining timestamp for time {text} using format {format}: time data {text:?} does not match format {format:?}"
            ))
        }),
    }
}

/// `strptime` for the numeric directives (`%Y %y %m %d %H %M %S %%`), then `mktime`.
fn local_time(text: &str, format: &str) -> Option<f64> {
    let mut fields = [1900i64, 1, 1, 0, 0, 0];
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut directives = format.chars();
    while let Some(c) = directives.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            let literal = c.encode_utf8(&mut buf).as_bytes();
            if !bytes[at..].starts_with(literal) {
                return None;
            }
            at += literal.len();
            continue;
        }
        let (slot, width) = match directives.next()? {
            'Y' => (0, 4),
            'y' => (6, 2),
            'm' => (1, 2),
            'd' => (2, 2),
            'H' => (3, 2),
            'M' => (4, 2),
            'S' => (5, 2),
            '%' => {
                if bytes.get(at) != Some(&b'%') {
                    return None;
                }
                at += 1;
                continue;
            }
            _ => return None,
        };
        let digits = bytes[at..]
            .iter()
            .take(width)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let value: i64 = std::str::from_utf8(&bytes[at..at + digits])
            .ok()?
            .parse()
            .ok()?;
        at += digits;
        if slot == 6 {
            fields[0] = if value < 69 {
                2000 + value
            } else {
                1900 + value
            };
        } else {
            fields[slot] = value;
        }
    }
    if at != bytes.len()
        || !(1..=12).contains(&fields[1])
        || !(1..=31).contains(&fields[2])
        || fields[3] > 23
        || fields[4] > 59
        || fields[5] > 61
    {
        return None;
    }
    // SAFETY: mktime reads and normalises the struct it is given.
    let seconds = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = (fields[0] - 1900) as libc::c_int;
        tm.tm_mon = (fields[1] - 1) as libc::c_int;
        tm.tm_mday = fields[2] as libc::c_int;
        tm.tm_hour = fields[3] as libc::c_int;
        tm.tm_min = fields[4] as libc::c_int;
        tm.tm_sec = fields[5] as libc::c_int;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    (seconds != -1).then_some(seconds as f64)
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn to_system_time(seconds: f64) -> std::time::SystemTime {
    // Clamped: a time no clock holds (`1e300`) is a hundred years from the epoch.
    let d = crate::clock::seconds(seconds.abs());
    if seconds >= 0.0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH
            .checked_sub(d)
            .unwrap_or(std::time::UNIX_EPOCH)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    File,
    Directory,
    Link,
    Hard,
    Touch,
    Absent,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::File => "file",
            State::Directory => "directory",
            State::Link => "link",
            State::Hard => "hard",
            State::Touch => "touch",
            State::Absent => "absent",
        }
    }
}

/// What is at a path now.
fn current_kind(meta: Option<&Metadata>) -> &'static str {
    match meta {
        None => "absent",
        Some(m) if m.file_type().is_symlink() => "link",
        Some(m) if m.is_dir() => "directory",
        Some(m) if m.is_file() => "file",
        Some(_) => "special",
    }
}

/// Adds an owner or group change to `plan` when the current id (`None`: the path is about to
/// be made) is not the wanted one; both are shown by name.
fn check_id(
    plan: &mut Plan,
    field: &str,
    current: Option<u32>,
    want: u32,
    name: fn(u32) -> String,
) {
    if current != Some(want) {
        plan.change(field, current.map(name), Some(name(want)));
    }
}

/// Owner, group and mode that a task wants, compared with and applied to one path.
pub(crate) struct Attributes<'a> {
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub mode: Option<&'a Mode>,
}

impl Attributes<'_> {
    /// Adds the attributes that differ to `plan`. `meta` is `None` for a path about to be made,
    /// `default_mode` what it would get with no `mode:` given.
    pub(crate) fn check(
        &self,
        meta: Option<&Metadata>,
        is_dir: bool,
        default_mode: u32,
        plan: &mut Plan,
    ) -> Result<(), ModuleError> {
        if let Some(owner) = self.owner {
            let want = fsutil::user_id(owner)?;
            check_id(
                plan,
                "owner",
                meta.map(MetadataExt::uid),
                want,
                fsutil::user_name,
            );
        }
        if let Some(group) = self.group {
            let want = fsutil::group_id(group)?;
            check_id(
                plan,
                "group",
                meta.map(MetadataExt::gid),
                want,
                fsutil::group_name,
            );
        }
        if let Some(mode) = self.mode {
            let current = meta.map(|m| m.mode() & 0o7777);
            let want = mode
                .resolve(current.unwrap_or(default_mode), is_dir)
                .map_err(ModuleError::Args)?;
            if current != Some(want) {
                plan.change(
                    "mode",
                    current.map(fsutil::ansible_mode_string),
                    Some(fsutil::ansible_mode_string(want)),
                );
            }
        }
        Ok(())
    }

    /// Sets the owner, group and mode that `plan` lists as changed.
    pub(crate) fn apply(&self, path: &Path, plan: &Plan, follow: bool) -> Result<(), ModuleError> {
        let uid = if plan.has("owner") {
            self.owner.map(fsutil::user_id).transpose()?
        } else {
            None
        };
        let gid = if plan.has("group") {
            self.group.map(fsutil::group_id).transpose()?
        } else {
            None
        };
        if uid.is_some() || gid.is_some() {
            if follow {
                std::os::unix::fs::chown(path, uid, gid)
                    .map_err(|e| ModuleError::io(format!("chown {}", path.display()), e))?;
            } else {
                fsutil::chown(path, uid, gid)?;
            }
        }
        if let Some(change) = plan.changes.iter().find(|c| c.field == "mode") {
            let mode = change
                .after
                .as_deref()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .unwrap_or(0o644);
            fsutil::chmod(path, mode)?;
        }
        Ok(())
    }
}

impl File {
    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode.as_ref(),
        }
    }

    fn metadata(&self) -> Option<Metadata> {
        fs::symlink_metadata(&self.path).ok()
    }

    /// Metadata of what the attributes apply to: a link's target when following.
    fn target_metadata(&self) -> Option<Metadata> {
        if self.follow {
            fs::metadata(&self.path).ok()
        } else {
            self.metadata()
        }
    }

    /// The paths `recurse` sets attributes on, as Ansible walks them: everything below `dir`
    /// (a link itself, not what it points to), and with `follow` also what a link points to,
    /// a folder's contents included (each folder once, so a loop ends).
    fn recursive_paths(&self, dir: &Path) -> Result<Vec<(PathBuf, Metadata)>, ModuleError> {
        let id = |m: &Metadata| (m.dev(), m.ino());
        let mut seen: std::collections::HashSet<(u64, u64)> =
            fs::metadata(dir).iter().map(id).collect();
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = fs::read_dir(&d)
                .map_err(|e| ModuleError::io(format!("read {}", d.display()), e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() && seen.insert(id(&meta)) {
                    stack.push(path.clone());
                }
                let link = meta.file_type().is_symlink();
                out.push((path.clone(), meta));
                if !(link && self.follow) {
                    continue;
                }
                let Ok(target) = fs::read_link(&path).map(|t| d.join(t)) else {
                    continue;
                };
                if let Ok(target_meta) = fs::metadata(&target) {
                    if target_meta.is_dir() && seen.insert(id(&target_meta)) {
                        stack.push(target.clone());
                    }
                    out.push((target, target_meta));
                }
            }
        }
        Ok(out)
    }

    fn check_recursive(&self, dir: &Path, plan: &mut Plan) -> Result<(), ModuleError> {
        let mut count = 0usize;
        for (_, meta) in self.recursive_paths(dir)? {
            let mut sub = Plan::default();
            self.attributes()
                .check(Some(&meta), meta.is_dir(), 0, &mut sub)?;
            if !sub.is_empty() {
                count += 1;
            }
        }
        if count > 0 {
            plan.change(
                "recurse",
                None,
                Some(format!(
                    "owner/group/mode of {count} paths below {}",
                    dir.display()
                )),
            );
        }
        Ok(())
    }

    fn apply_recursive(&self, dir: &Path) -> Result<(), ModuleError> {
        for (path, meta) in self.recursive_paths(dir)? {
            let mut sub = Plan::default();
            self.attributes()
                .check(Some(&meta), meta.is_dir(), 0, &mut sub)?;
            if !meta.file_type().is_symlink() {
                self.attributes().apply(&path, &sub, false)?;
            } else if sub.has("owner") || sub.has("group") {
                let only_owner = Plan {
                    changes: sub
                        .changes
                        .into_iter()
                        .filter(|c| c.field != "mode")
                        .collect(),
                    ..Plan::default()
                };
                self.attributes().apply(&path, &only_owner, false)?;
            }
        }
        Ok(())
    }

    /// Owner, group, mode, chattr flags and times of a path `apply` has made as `state` wants.
    fn apply_attributes(&self, path: &Path, plan: &Plan, state: State) -> Result<(), ModuleError> {
        let follow = self.follow && (state != State::Link || fs::metadata(path).is_ok());
        self.attributes().apply(path, plan, follow)?;
        fsutil::apply_file_flags(&self.followed_path(), plan)?;
        if let Some((atime, mtime)) = self.times
            && (plan.has("mtime") || plan.has("atime") || plan.has("state"))
            && state != State::Absent
        {
            let result = if self.now_times().is_some() {
                touch_now(path)
            } else {
                let times = fs::FileTimes::new()
                    .set_accessed(to_system_time(atime))
                    .set_modified(to_system_time(mtime));
                fs::File::open(path).and_then(|f| f.set_times(times))
            };
            result.map_err(|e| {
                ModuleError::io(
                    "Error while updating modification or access time".to_string(),
                    e,
                )
            })?;
        }
        if self.recurse && plan.has("recurse") {
            self.apply_recursive(path)?;
        }
        Ok(())
    }

    /// The path attributes apply to: a link's target when following.
    fn followed_path(&self) -> PathBuf {
        match self.follow {
            true => fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone()),
            false => self.path.clone(),
        }
    }

    /// `state: hard`, as Ansible's `ensure_hardlink` decides: an existing file or other hard
    /// link is replaced only with `force`.
    fn check_hard_link(&self, meta: Option<&Metadata>, plan: &mut Plan) -> Result<(), ModuleError> {
        let path = self.path.display().to_string();
        let prev = match meta {
            Some(m) if !m.is_dir() && !m.file_type().is_symlink() && m.nlink() > 1 => "hard",
            m => current_kind(m),
        };
        let Some(src) = &self.src else {
            if prev != "hard" {
                return Err(ModuleError::Failed(
                    "src is required for creating new hardlinks".into(),
                ));
            }
            return self.attributes().check(meta, false, 0, plan);
        };
        let src_text = src.display().to_string();
        let fail = |msg: &str| ModuleError::with(msg, &[("dest", &path), ("src", &src_text)]);
        let src_meta = fs::metadata(src).map_err(|_| fail("src does not exist"))?;
        let same = fs::metadata(&self.path)
            .is_ok_and(|m| m.ino() == src_meta.ino() && m.dev() == src_meta.dev());
        let replace = match prev {
            "absent" => true,
            "link" => fs::read_link(&self.path).is_ok_and(|old| old != *src),
            "hard" if same => false,
            "hard" if !self.force => {
                return Err(fail(
                    "Cannot link, different hard link exists at destination",
                ));
            }
            "directory" if same => false,
            "directory" if !self.force => {
                return Err(fail(
                    "Cannot link: different hard link exists at destination",
                ));
            }
            "file" if !self.force => {
                return Err(fail(&format!("Cannot link, {prev} exists at destination")));
            }
            _ => true,
        };
        if replace {
            plan.change("state", Some(prev.into()), Some("hard".into()));
        }
        let current = if replace { Some(&src_meta) } else { meta };
        self.attributes().check(current, false, 0, plan)
    }

    fn link_source(&self) -> Result<&Path, ModuleError> {
        self.src.as_deref().ok_or_else(|| {
            ModuleError::Args(format!(
                "src is required for state={}",
                self.resolved.map_or("link", State::word)
            ))
        })
    }
}

impl File {
    /// Plans `modification_time`/`access_time` (touch: `now` unless given), as Ansible's
    /// `update_timestamp_for_file` compares them.
    fn check_times(&mut self, state: State, plan: &mut Plan) -> Result<(), ModuleError> {
        if state == State::Absent {
            return Ok(());
        }
        let touch = state == State::Touch;
        let mtime = stamp(
            self.modification_time.as_deref(),
            &self.modification_time_format,
            touch,
        )?;
        let atime = stamp(self.access_time.as_deref(), &self.access_time_format, touch)?;
        if mtime == Stamp::Preserve && atime == Stamp::Preserve {
            return Ok(());
        }
        let meta = fs::metadata(&self.path).ok();
        let now = now_seconds();
        let current = |m: Option<&Metadata>, modified: bool| {
            m.map(|m| {
                if modified {
                    m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9
                } else {
                    m.atime() as f64 + m.atime_nsec() as f64 / 1e9
                }
            })
        };
        let (before_m, before_a) = (current(meta.as_ref(), true), current(meta.as_ref(), false));
        let want = |s: Stamp, before: Option<f64>| match s {
            Stamp::Preserve => before.unwrap_or(now),
            Stamp::Now => now,
            Stamp::At(t) => t,
        };
        let (want_m, want_a) = (want(mtime, before_m), want(atime, before_a));
        self.times = Some((want_a, want_m));
        // A file touched into being was made now, then given its times (Ansible's diff shows
        // both); other new paths show their state alone.
        let (before_m, before_a, want_m, want_a) = match meta {
            Some(_) => (before_m, before_a, want_m, want_a),
            None if touch => {
                let later = now_seconds();
                let at = |s: Stamp, want: f64| if s == Stamp::Now { later } else { want };
                (Some(now), Some(now), at(mtime, want_m), at(atime, want_a))
            }
            None => return Ok(()),
        };
        let show = |v: Option<f64>| v.map(|t| t.to_string());
        if before_m != Some(want_m) || mtime == Stamp::Now {
            plan.change("mtime", show(before_m), Some(want_m.to_string()));
        }
        if before_a != Some(want_a) || atime == Stamp::Now {
            plan.change("atime", show(before_a), Some(want_a.to_string()));
        }
        Ok(())
    }

    /// Both `now`: the time of the write itself (utime(path, None) in Ansible).
    fn now_times(&self) -> Option<f64> {
        let touch = self.resolved == Some(State::Touch);
        let is_now = |given: Option<&str>| given == Some("now") || (given.is_none() && touch);
        (is_now(self.modification_time.as_deref()) && is_now(self.access_time.as_deref()))
            .then(now_seconds)
    }
}

impl File {
    /// What `state` asks of the path, against what is there.
    fn check_state(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        // A `type='path'` argument in Ansible: `~` and `$VAR` expanded on the host.
        self.path = fsutil::expand_path(&self.path);
        if self.diff_peek.is_some() {
            return Ok(Plan::default());
        }
        let meta = self.metadata();
        let kind = current_kind(meta.as_ref());
        let state = self.state.unwrap_or(match kind {
            _ if self.recurse => State::Directory,
            "directory" => State::Directory,
            "link" => State::Link,
            _ => State::File,
        });
        self.resolved = Some(state);
        let path = self.path.display().to_string();
        let mut plan = Plan::default();
        match state {
            State::Absent => {
                if meta.is_some() {
                    plan.change("state", Some(kind.into()), Some("absent".into()));
                }
                if want_diff && kind == "directory" {
                    self.removed_content = Some(folder_content(&self.path));
                }
            }
            State::File => {
                if matches!(kind, "absent" | "directory") {
                    return Err(ModuleError::with(
                        format!("file ({path}) is {kind}, cannot continue"),
                        &[("path", &path), ("state", kind)],
                    ));
                }
                self.attributes()
                    .check(self.target_metadata().as_ref(), false, 0, &mut plan)?;
            }
            State::Directory => match kind {
                "absent" => {
                    plan.change("state", Some("absent".into()), Some("directory".into()));
                    self.attributes()
                        .check(None, true, 0o777 & !fsutil::umask(), &mut plan)?;
                }
                "directory" => {
                    self.attributes().check(meta.as_ref(), true, 0, &mut plan)?;
                    if self.recurse {
                        self.check_recursive(&self.path.clone(), &mut plan)?;
                    }
                }
                "link" if self.follow && self.path.is_dir() => {
                    self.attributes()
                        .check(self.target_metadata().as_ref(), true, 0, &mut plan)?;
                }
                other => {
                    return Err(ModuleError::with(
                        format!("{path} already exists as a {other}"),
                        &[("path", &path)],
                    ));
                }
            },
            State::Touch => {
                if meta.is_none() {
                    plan.change("state", Some(kind.into()), Some("touch".into()));
                }
                let target = if meta.is_some() {
                    self.target_metadata()
                } else {
                    None
                };
                self.attributes().check(
                    target.as_ref(),
                    false,
                    fsutil::default_file_mode(),
                    &mut plan,
                )?;
                // A new file is made with the umask's mode first (Ansible's diff shows it as
                // the mode before), and keeps it when that is the mode asked for.
                if meta.is_none() {
                    let made = format!("{:04o}", fsutil::default_file_mode());
                    plan.changes.retain(|c| {
                        !(c.field == "mode"
                            && c.before.is_none()
                            && c.after.as_ref() == Some(&made))
                    });
                    for change in plan.changes.iter_mut().filter(|c| c.field == "mode") {
                        change.before.get_or_insert(made.clone());
                    }
                }
            }
            State::Link => {
                // No src: an existing link keeps (and, with follow, is described by) its target.
                if self.src.is_none()
                    && kind == "link"
                    && let Ok(current) = fs::read_link(&self.path)
                {
                    self.src = Some(current);
                }
                let src = self.link_source()?.to_path_buf();
                // Ansible checks the source relative to the link's folder (or the folder itself).
                let base = if kind == "directory" {
                    self.path.clone()
                } else {
                    self.path
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default()
                };
                let absrc = base.join(&src);
                if !self.force && fs::metadata(&absrc).is_err() {
                    return Err(ModuleError::with(
                        format!(
                            "src file does not exist, use 'force=yes' if you really want to create the link: {}",
                            absrc.display()
                        ),
                        &[("path", &path), ("src", &src.display().to_string())],
                    ));
                }
                if kind == "directory" && !self.force {
                    return Err(ModuleError::with(
                        format!("refusing to convert from directory to symlink for {path}"),
                        &[("path", &path)],
                    ));
                }
                match kind {
                    "link" => {
                        let current = fs::read_link(&self.path)
                            .map_err(|e| ModuleError::io(format!("readlink {path}"), e))?;
                        if current != src {
                            plan.change(
                                "src",
                                Some(current.display().to_string()),
                                Some(src.display().to_string()),
                            );
                        }
                    }
                    "absent" => plan.change("state", Some("absent".into()), Some("link".into())),
                    "directory"
                        if fs::read_dir(&self.path)
                            .map(|mut d| d.next().is_some())
                            .unwrap_or(true) =>
                    {
                        return Err(ModuleError::with(
                            format!("the directory {path} is not empty, refusing to convert it"),
                            &[("path", &path)],
                        ));
                    }
                    other if self.force => {
                        plan.change("state", Some(other.into()), Some("link".into()))
                    }
                    other => {
                        return Err(ModuleError::with(
                            format!("refusing to convert from {other} to symlink for {path}"),
                            &[("path", &path)],
                        ));
                    }
                }
                // Followed (the default), the link's target gets the attributes, once there is
                // one; otherwise the link itself gets its owner and group.
                if self.follow {
                    match fs::metadata(&absrc) {
                        Ok(target) => {
                            self.attributes().check(
                                Some(&target),
                                target.is_dir(),
                                0,
                                &mut plan,
                            )?;
                        }
                        Err(_) => self.warnings.push(
                            "Cannot set fs attributes on a non-existent symlink target. follow \
                             should be set to False to avoid this."
                                .into(),
                        ),
                    }
                } else {
                    let owner_group = Attributes {
                        owner: self.owner.as_deref(),
                        group: self.group.as_deref(),
                        mode: None,
                    };
                    owner_group.check(
                        if kind == "link" { meta.as_ref() } else { None },
                        false,
                        0,
                        &mut plan,
                    )?;
                }
            }
            State::Hard => self.check_hard_link(meta.as_ref(), &mut plan)?,
        }
        if let Some(flags) = &self.attributes
            && state != State::Absent
        {
            fsutil::check_file_flags(&self.followed_path(), flags, &mut plan);
        }
        self.check_times(state, &mut plan)?;
        Ok(plan)
    }

    /// Ansible's check-mode warnings for an owner or group this host does not know.
    fn warn_missing_owners(&mut self) {
        if let Some(owner) = &self.owner {
            let warning = match owner.parse::<u32>() {
                Ok(uid) if fsutil::user_name(uid) == owner.as_str() => {
                    Some(format!("with uid {uid}"))
                }
                Ok(_) => None,
                Err(_) => fsutil::user_id(owner).is_err().then(|| owner.clone()),
            };
            if let Some(who) = warning {
                self.warnings.push(format!(
                    "failed to look up user {who}. Create user up to this point in real play"
                ));
            }
        }
        if let Some(group) = &self.group {
            let warning = match group.parse::<u32>() {
                Ok(gid) if fsutil::group_name(gid) == group.as_str() => {
                    Some(format!("with gid {gid}"))
                }
                Ok(_) => None,
                Err(_) => fsutil::group_id(group).is_err().then(|| group.clone()),
            };
            if let Some(which) = warning {
                self.warnings.push(format!(
                    "failed to look up group {which}. Create group up to this point in real play"
                ));
            }
        }
    }
}

impl Resource for File {
    fn validate(&self) -> Result<(), ModuleError> {
        // Failures of the module, as Ansible's file module reports them (not argument errors).
        if self.path.as_os_str().is_empty() {
            return Err(ModuleError::Failed(
                "missing required arguments: path".into(),
            ));
        }
        if self.src.is_some() && !matches!(self.state, Some(State::Link | State::Hard)) {
            return Err(ModuleError::with(
                "src option requires state to be 'link' or 'hard'",
                &[("path", &self.path.display().to_string())],
            ));
        }
        if self.recurse && !matches!(self.state, None | Some(State::Directory)) {
            return Err(ModuleError::with(
                "recurse option requires state to be 'directory'",
                &[("path", &self.path.display().to_string())],
            ));
        }
        Ok(())
    }

    fn dry_run(&mut self, check_mode: bool) {
        self.check_mode = check_mode;
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        if self.check_mode && self.state != Some(State::Absent) {
            self.warn_missing_owners();
        }
        // The warnings go with a failure too, as Ansible's.
        self.check_state(want_diff).map_err(|e| match e {
            ModuleError::FailedWith { msg, mut values } if !self.warnings.is_empty() => {
                values.insert("warnings".into(), self.warnings.clone().into());
                ModuleError::FailedWith { msg, values }
            }
            ModuleError::Failed(msg) if !self.warnings.is_empty() => ModuleError::FailedWith {
                msg,
                values: Map::from_iter([("warnings".into(), self.warnings.clone().into())]),
            },
            e => e,
        })
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let path = self.path.clone();
        let io = |what: &str| {
            let p = path.display().to_string();
            let what = what.to_string();
            move |e| ModuleError::io(format!("{what} {p}"), e)
        };
        let state = self
            .resolved
            .ok_or_else(|| ModuleError::Failed("file: apply before check".into()))?;
        match state {
            State::Absent => {
                let meta = self.metadata();
                if meta.as_ref().is_some_and(|m| m.is_dir()) {
                    // A process still writing in the tree (a finishing async job writing its
                    // result) can add an entry while it is removed: ENOTEMPTY. Go again.
                    let mut tries = 0;
                    while let Err(e) = fs::remove_dir_all(&path) {
                        tries += 1;
                        if e.kind() != std::io::ErrorKind::DirectoryNotEmpty || tries == 10 {
                            return Err(io("remove")(e));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                } else if meta.is_some() {
                    fs::remove_file(&path).map_err(io("remove"))?;
                }
                return Ok(());
            }
            State::Directory if plan.has("state") => {
                fs::create_dir_all(&path).map_err(io("mkdir"))?;
            }
            State::Touch if self.metadata().is_none() => {
                let file = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io("touch"))?;
                file.set_permissions(fs::Permissions::from_mode(fsutil::default_file_mode()))
                    .map_err(io("chmod"))?;
            }
            State::Link if plan.has("state") || plan.has("src") => {
                let src = self.link_source()?.to_path_buf();
                // A new link beside the old path, renamed over it: never a moment without one.
                let tmp = path.with_file_name(format!(
                    ".{}.settle-link",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("link")
                ));
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&src, &tmp).map_err(io("symlink"))?;
                if self
                    .metadata()
                    .is_some_and(|m| m.is_dir() && !m.file_type().is_symlink())
                {
                    fs::remove_dir(&path).map_err(io("remove"))?;
                }
                fs::rename(&tmp, &path).map_err(io("symlink"))?;
            }
            State::Hard if plan.has("state") => {
                let src = self.link_source()?.to_path_buf();
                let tmp = path.with_file_name(format!(
                    ".{}.settle-link",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("link")
                ));
                let _ = fs::remove_file(&tmp);
                fs::hard_link(&src, &tmp).map_err(io("link"))?;
                fs::rename(&tmp, &path).map_err(io("link"))?;
            }
            _ => {}
        }
        let finished = self.apply_attributes(&path, plan, state);
        // A file touched into being is removed again when its attributes cannot be set, as
        // Ansible's `execute_touch` does.
        if finished.is_err() && state == State::Touch && plan.has("state") {
            let _ = fs::remove_file(&path);
        }
        finished
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let path = self.path.display().to_string();
        if self.diff_peek.is_some() {
            values.insert("path".into(), path.into());
            values.insert("appears_binary".into(), appears_binary(&self.path).into());
            return;
        }
        // Ansible's file module names the path `dest` for what it links or touches.
        let key = match self.resolved {
            Some(State::Touch | State::Link | State::Hard) => "dest",
            _ => "path",
        };
        values.insert(key.into(), path.into());
        // As Ansible's `add_path_info` reads it from the path itself.
        let state = match self.metadata() {
            None => "absent",
            Some(m) if m.file_type().is_symlink() => "link",
            Some(m) if m.is_dir() => "directory",
            Some(m) if m.nlink() > 1 => "hard",
            Some(_) => "file",
        };
        values.insert("state".into(), state.into());
        fsutil::attribute_values(&self.path, values);
        if let Some(src) = &self.src {
            values.insert("src".into(), src.display().to_string().into());
        }
        if !self.warnings.is_empty() {
            values.insert("warnings".into(), self.warnings.clone().into());
        }
        if let Some(content) = &self.removed_content {
            let path = self.path.display().to_string();
            values.insert(
                "diff".into(),
                serde_json::json!({
                    "before": {"path": path, "state": "directory", "path_content": content},
                    "after": {"path": path, "state": "absent"},
                }),
            );
        }
    }
}

/// What a folder holds, as Ansible lists it (`os.walk`, top down): `{directories, files}`,
/// full paths, each folder's sub-folders then its files. Links are listed, not followed.
fn folder_content(root: &Path) -> Value {
    let (mut directories, mut files) = (Vec::new(), Vec::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        let mut below = Vec::new();
        for entry in entries {
            let text = Value::String(entry.display().to_string());
            if entry.is_dir() {
                directories.push(text);
                if !fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_symlink()) {
                    below.push(entry);
                }
            } else {
                files.push(text);
            }
        }
        stack.extend(below.into_iter().rev());
    }
    serde_json::json!({"directories": directories, "files": files})
}

/// Sets a file's times to now as `os.utime(path, None)` does: allowed to anyone who may write
/// it, not only its owner (who alone may set other times).
fn touch_now(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid C string; null times mean "now" for both.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether a file looks binary: a NUL byte in its first 8 KiB (unreadable: text).
fn appears_binary(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(8192);
    fs::File::open(path)
        .and_then(|f| f.take(8192).read_to_end(&mut head))
        .is_ok_and(|_| head.contains(&0))
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn parses_ansible_time_formats() {
        let t = local_time("202202081414.00", "%Y%m%d%H%M.%S");
        assert!(t.is_some());
        assert_eq!(
            local_time("202202081414.30", "%Y%m%d%H%M.%S")
                .zip(t)
                .map(|(a, b)| a - b),
            Some(30.0)
        );
        assert_eq!(local_time("2022-02-08", "%Y%m%d"), None);
        assert_eq!(
            stamp(None, "%Y", true).ok(),
            Some(Stamp::Now),
            "touch defaults to now"
        );
        assert_eq!(stamp(None, "%Y", false).ok(), Some(Stamp::Preserve));
        assert!(stamp(Some("junk"), "%Y%m%d%H%M.%S", false).is_err());
    }
}

#[cfg(test)]
mod tests {
    use crate::{Request, run};
    use std::os::unix::fs::PermissionsExt;

    fn file(args: serde_json::Value) -> crate::Outcome {
        run(&Request::new(
            "file",
            args.as_object().cloned().unwrap_or_default(),
        ))
    }

    #[test]
    fn a_new_link_gives_its_mode_to_the_target_when_following() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        let out = file(serde_json::json!({
            "src": target, "dest": link, "state": "link", "mode": "0700"
        }));
        assert!(out.changed && !out.failed, "{out:?}");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        let again = file(serde_json::json!({
            "src": target, "dest": link, "state": "link", "mode": "0700"
        }));
        assert!(!again.changed, "{again:?}");
    }

    #[test]
    fn src_without_a_link_state_fails_as_ansible_says() {
        let out = file(serde_json::json!({"src": "/etc/hostname", "dest": "/nonexistent/x"}));
        assert!(out.failed);
        assert_eq!(
            out.msg.as_deref(),
            Some("src option requires state to be 'link' or 'hard'")
        );
    }

    #[test]
    fn diff_peek_only_says_whether_the_file_looks_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, b"a\0b").unwrap();
        let out = file(serde_json::json!({"path": path, "_diff_peek": true}));
        assert!(!out.changed && !out.failed, "{out:?}");
        assert_eq!(out.values["appears_binary"], true);
        assert!(!out.values.contains_key("warnings"));
    }

    fn file_with(args: serde_json::Value, check_mode: bool, diff: bool) -> crate::Outcome {
        let mut request = Request::new("file", args.as_object().cloned().unwrap_or_default());
        request.check_mode = check_mode;
        request.diff = diff;
        run(&request)
    }

    #[test]
    fn removing_a_folder_in_diff_mode_lists_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        std::fs::create_dir_all(gone.join("sub")).unwrap();
        std::fs::write(gone.join("sub/f"), "").unwrap();
        let out = file_with(
            serde_json::json!({"path": gone, "state": "absent"}),
            false,
            true,
        );
        assert!(out.changed && !gone.exists(), "{out:?}");
        let before = &out.values["diff"]["before"];
        assert_eq!(before["state"], "directory");
        let g = gone.display();
        assert_eq!(
            before["path_content"],
            serde_json::json!({"directories": [format!("{g}/sub")], "files": [format!("{g}/sub/f")]})
        );
        assert_eq!(out.values["diff"]["after"]["state"], "absent");
    }

    #[test]
    fn a_dry_run_warns_of_an_unknown_owner_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let args = serde_json::json!({"path": dir.path().join("none"), "owner": "no-such-user-h6"});
        let out = file_with(args, true, false);
        assert!(out.failed, "{out:?}");
        assert_eq!(
            out.values["warnings"][0],
            "failed to look up user no-such-user-h6. Create user up to this point in real play"
        );
    }

    #[test]
    fn a_missing_path_is_reported_in_ansibles_words() {
        let out = file(serde_json::json!({"state": "hard"}));
        assert!(out.failed);
        assert_eq!(out.msg.as_deref(), Some("missing required arguments: path"));
    }

    #[test]
    fn recurse_with_follow_changes_what_links_point_to() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, outside) = (dir.path().join("tree"), dir.path().join("outside"));
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("foo"), "").unwrap();
        std::fs::set_permissions(outside.join("foo"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        let args = |follow| serde_json::json!({"path": tree, "mode": "a-x", "recurse": true, "follow": follow});
        file(args(false));
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&outside.join("foo")), 0o700);
        let out = file(args(true));
        assert!(!out.failed, "{out:?}");
        assert_eq!(mode(&outside.join("foo")), 0o600);
    }

    #[test]
    fn a_sticky_mode_is_reported_as_ansible_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let out = file(serde_json::json!({"path": path, "state": "touch", "mode": "01444"}));
        assert_eq!(out.values["mode"], "01444", "{out:?}");
    }
}
