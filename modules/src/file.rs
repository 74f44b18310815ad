//! `file`: a path's existence and kind (file, directory, link, hard link), owner, group, mode.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean, text};
use crate::fsutil::{self, mode_string};
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
        "unsafe_writes",
    ],
    unsupported: &[
        "attributes",
        "attr",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(alias = "dest", alias = "name")]
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
    #[serde(default = "yes", deserialize_with = "boolean")]
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
}

fn yes() -> bool {
    true
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
    let d = std::time::Duration::from_secs_f64(seconds.abs());
    if seconds >= 0.0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
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
                plan.change("mode", current.map(mode_string), Some(mode_string(want)));
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

    fn check_recursive(&self, dir: &Path, plan: &mut Plan) -> Result<(), ModuleError> {
        let mut count = 0usize;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = fs::read_dir(&d)
                .map_err(|e| ModuleError::io(format!("read {}", d.display()), e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                let mut sub = Plan::default();
                self.attributes()
                    .check(Some(&meta), meta.is_dir(), 0, &mut sub)?;
                if !sub.is_empty() {
                    count += 1;
                }
                if meta.is_dir() {
                    stack.push(path);
                }
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
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d)
                .map_err(|e| ModuleError::io(format!("read {}", d.display()), e))?
                .flatten()
            {
                let path = entry.path();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
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
                if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
        Ok(())
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
        if meta.is_none() {
            return Ok(());
        }
        let show = |v: Option<f64>| v.map(|t| t.to_string());
        if before_m != Some(want_m) || mtime == Stamp::Now {
            plan.change("mtime", show(before_m), Some(want_m.to_string()));
        }
        if before_a != Some(want_a) || atime == Stamp::Now {
            plan.change("atime", show(before_a), Some(want_a.to_string()));
        }
        Ok(())
    }

    /// `file: path=LINK mode=…` (no state) on an existing link with `follow`: the target.
    fn follows_link_target(&self, kind: &str) -> bool {
        self.state.is_none() && self.follow && kind == "link" && fs::metadata(&self.path).is_ok()
    }

    /// Both `now`: the time of the write itself (utime(path, None) in Ansible).
    fn now_times(&self) -> Option<f64> {
        let touch = self.resolved == Some(State::Touch);
        let is_now = |given: Option<&str>| given == Some("now") || (given.is_none() && touch);
        (is_now(self.modification_time.as_deref()) && is_now(self.access_time.as_deref()))
            .then(now_seconds)
    }
}

impl Resource for File {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.src.is_some() && !matches!(self.state, Some(State::Link | State::Hard)) {
            return Err(ModuleError::Args(
                "file: src is only used with state=link or state=hard".into(),
            ));
        }
        if self.recurse && !matches!(self.state, None | Some(State::Directory)) {
            return Err(ModuleError::Args(
                "file: recurse needs state=directory".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        // A `type='path'` argument in Ansible: `~` and `$VAR` expanded on the host.
        self.path = fsutil::expand_path(&self.path);
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
            }
            State::File => {
                if meta.is_none() {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is absent, cannot continue"
                    )));
                }
                if kind == "directory" {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is a directory, not a file"
                    )));
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
                    return Err(ModuleError::Failed(format!(
                        "{path} already exists as a {other}"
                    )));
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
                    return Err(ModuleError::Failed(format!(
                        "src file does not exist, use 'force=yes' if you really want to create the link: {}",
                        absrc.display()
                    )));
                }
                if kind == "directory" && !self.force {
                    return Err(ModuleError::Failed(format!(
                        "refusing to convert from directory to symlink for {path}"
                    )));
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
                        return Err(ModuleError::Failed(format!(
                            "the directory {path} is not empty, refusing to convert it"
                        )));
                    }
                    other if self.force => {
                        plan.change("state", Some(other.into()), Some("link".into()))
                    }
                    other => {
                        return Err(ModuleError::Failed(format!(
                            "refusing to convert from {other} to symlink for {path}"
                        )));
                    }
                }
                // An existing link given no state, followed: its target gets the attributes.
                if self.follows_link_target(kind) {
                    self.attributes().check(
                        self.target_metadata().as_ref(),
                        false,
                        0,
                        &mut plan,
                    )?;
                    return Ok(plan);
                }
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
            State::Hard => {
                let src = self.link_source()?.to_path_buf();
                let src_meta = fs::metadata(&src).map_err(|e| {
                    ModuleError::io(format!("src file does not exist: {}", src.display()), e)
                })?;
                match meta.as_ref() {
                    Some(m) if m.ino() == src_meta.ino() && m.dev() == src_meta.dev() => {
                        self.attributes().check(Some(m), false, 0, &mut plan)?;
                    }
                    None => {
                        plan.change("state", Some("absent".into()), Some("hard".into()));
                        self.attributes()
                            .check(Some(&src_meta), false, 0, &mut plan)?;
                    }
                    Some(_) if self.force || kind == "file" => {
                        plan.change("state", Some(kind.into()), Some("hard".into()));
                        self.attributes()
                            .check(Some(&src_meta), false, 0, &mut plan)?;
                    }
                    Some(_) => {
                        return Err(ModuleError::Failed(format!(
                            "refusing to convert from {kind} to hard link for {path}"
                        )));
                    }
                }
            }
        }
        self.check_times(state, &mut plan)?;
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let path = self.path.clone();
        let io = |what: &str| {
            let p = path.display().to_string();
            let what = what.to_string();
            move |e| ModuleError::io(format!("{what} {p}"), e)
        };
        let state = self.resolved.expect("check ran before apply");
        match state {
            State::Absent => {
                let meta = self.metadata();
                if meta.as_ref().is_some_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&path).map_err(io("remove"))?;
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
        let follow = self.follow && (state != State::Link || self.follows_link_target("link"));
        self.attributes().apply(&path, plan, follow)?;
        if let Some((atime, mtime)) = self.times
            && (plan.has("mtime") || plan.has("atime") || plan.has("state"))
            && state != State::Absent
        {
            let (atime, mtime) = match self.now_times() {
                Some(now) => (now, now),
                None => (atime, mtime),
            };
            let times = fs::FileTimes::new()
                .set_accessed(to_system_time(atime))
                .set_modified(to_system_time(mtime));
            fs::File::open(&path)
                .and_then(|f| f.set_times(times))
                .map_err(|e| {
                    ModuleError::io(
                        "Error while updating modification or access time".to_string(),
                        e,
                    )
                })?;
        }
        if self.recurse && plan.has("recurse") {
            self.apply_recursive(&path)?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("path".into(), self.path.display().to_string().into());
        let state = match self.resolved {
            Some(State::Touch) => "file",
            Some(s) => s.word(),
            None => "absent",
        };
        let state = if self.metadata().is_none() {
            "absent"
        } else {
            state
        };
        values.insert("state".into(), state.into());
        fsutil::attribute_values(&self.path, values);
        if let Some(src) = &self.src {
            values.insert("src".into(), src.display().to_string().into());
        }
    }
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
