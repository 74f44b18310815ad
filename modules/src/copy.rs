//! `copy` (and, through the engine, `template`): a file's content, owner, group and mode.
//!
//! The engine reads `src` on the controller (or renders the template) and sends the bytes as
//! `content` or `_content_base64`; with `remote_src`, `src` is a path on this host.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean, text};
use crate::file::Attributes;
use crate::fsutil::{self, Content, diffable, sha1_hex};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "copy",
    args: &[
        "dest",
        "content",
        "src",
        "remote_src",
        "owner",
        "group",
        "mode",
        "backup",
        "force",
        "validate",
        "follow",
        "_content_base64",
        "_content_file",
        "_content_sha1",
        "_content_size",
        "_src_name",
        "directory_mode",
        "decrypt",
        "unsafe_writes",
        "local_follow",
        "checksum",
        "attributes",
        "attr",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    unsupported: &[],
    free_form: false,
};

/// The file attributes and safety options that every content-writing module takes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FileAttrs {
    #[serde(default, deserialize_with = "text")]
    pub owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub group: Option<String>,
    pub mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    pub backup: bool,
    pub validate: Option<String>,
    /// Ansible's `unsafe_writes`: write in place when the atomic rename is refused.
    #[serde(default, deserialize_with = "boolean")]
    pub unsafe_writes: bool,
    /// chattr flags (`A`, `+i`, `-a`), as [`fsutil::check_file_flags`] compares them.
    #[serde(default, alias = "attr", deserialize_with = "text")]
    pub attributes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Copy {
    dest: PathBuf,
    content: Option<String>,
    /// Bytes that may not be text, from a controller file.
    #[serde(rename = "_content_base64")]
    content_base64: Option<String>,
    /// A large controller file, uploaded in pieces and staged on this host (removed after).
    #[serde(rename = "_content_file")]
    content_file: Option<PathBuf>,
    /// A large controller file's SHA-1 and size: without `_content_file`, the engine asks
    /// whether the file is already there before it sends the bytes; with it, the upload is
    /// checked against them.
    #[serde(rename = "_content_sha1")]
    content_sha1: Option<String>,
    #[serde(rename = "_content_size")]
    content_size: Option<u64>,
    /// With `remote_src`, the path on this host to copy from.
    src: Option<PathBuf>,
    /// The source file's name, for a `dest` that is a directory.
    #[serde(rename = "_src_name")]
    src_name: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    remote_src: bool,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    backup: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    force: bool,
    validate: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    follow: bool,
    #[serde(default, deserialize_with = "boolean")]
    unsafe_writes: bool,
    /// chattr flags (`A`, `+i`, `-a`), as [`fsutil::check_file_flags`] compares them.
    #[serde(default, alias = "attr", deserialize_with = "text")]
    attributes: Option<String>,
    /// The SHA-1 the source must have: a copy whose source differs fails, as Ansible's does.
    #[serde(default, deserialize_with = "text")]
    checksum: Option<String>,
    #[serde(skip)]
    bytes: Vec<u8>,
    /// Where the new content is: `bytes`, a file on this host, or not here yet.
    #[serde(skip)]
    body: Body,
    /// The new content's SHA-1 and size, once known.
    #[serde(skip)]
    wanted: Option<(String, u64)>,
    #[serde(skip)]
    backup_file: Option<String>,
    /// Vault decryption happens on the controller; accepted here so the argument passes through.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    decrypt: bool,
    /// Whether a folder's symlinks are followed: for a controller folder the engine's business,
    /// with `remote_src` this module's.
    #[serde(default, deserialize_with = "boolean")]
    local_follow: bool,
    /// lineinfile/blockinfile with `create`: make the missing folders (Ansible's os.makedirs).
    #[serde(skip)]
    make_parents: bool,
    /// The mode of folders a folder copy makes (`remote_src` with a folder as `src`).
    directory_mode: Option<Mode>,
    /// A folder copy, when `remote_src` names a folder: decided by `check`.
    #[serde(skip)]
    folder: Option<FolderCopy>,
    /// Whether the file already held the content (`check` decides): Ansible's copy action
    /// then hands the attributes to its file module, whose result has `path` and no `md5sum`.
    #[serde(skip)]
    content_there: bool,
}

/// Where a copy's new content is.
#[derive(Debug, Default)]
enum Body {
    /// In memory (`content`, `_content_base64`, another module's computed text).
    #[default]
    Bytes,
    /// A file on this host, read in pieces: a staged upload or `remote_src`'s source.
    File(PathBuf),
    /// Only its checksum is known (`_content_sha1`): enough to see the file is already there.
    Absent,
}

/// A file's text for a diff when it is small enough to show, read only then.
fn small_file_text(path: &Path, len: u64) -> Result<String, String> {
    if len > fsutil::MAX_DIFF_BYTES as u64 {
        return Err(format!(
            "{len} bytes, larger than the {}-byte diff limit",
            fsutil::MAX_DIFF_BYTES
        ));
    }
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    diffable(&bytes)
}

/// The old file's owner (or group) for the new one, when this user may give it: as Ansible's
/// `atomic_move`, which ignores EPERM there, a user who overwrites another's file in a
/// world-writable folder ends up owning the new one.
fn kept_owner(id: u32, group: bool) -> Option<u32> {
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == 0 {
        return Some(id);
    }
    let allowed = if group {
        id == egid || supplementary_groups().contains(&id)
    } else {
        id == euid
    };
    allowed.then_some(id)
}

fn supplementary_groups() -> Vec<u32> {
    // SAFETY: a null buffer of size 0 asks only for the count.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(size) = usize::try_from(count) else {
        return Vec::new();
    };
    let mut groups = vec![0 as libc::gid_t; size];
    // SAFETY: `groups` has room for `count` entries.
    let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(got).unwrap_or(0));
    groups
}

impl Copy {
    /// A copy of content computed by another module (lineinfile, blockinfile): the same checks,
    /// diff, attributes, backup, validation and atomic write.
    pub(crate) fn of_content(dest: PathBuf, bytes: Vec<u8>, attrs: FileAttrs) -> Copy {
        Copy {
            dest,
            content: None,
            content_base64: None,
            content_file: None,
            content_sha1: None,
            content_size: None,
            src: None,
            src_name: None,
            remote_src: false,
            owner: attrs.owner,
            group: attrs.group,
            mode: attrs.mode,
            backup: attrs.backup,
            force: true,
            validate: attrs.validate,
            follow: true,
            unsafe_writes: attrs.unsafe_writes,
            attributes: attrs.attributes,
            checksum: None,
            bytes,
            body: Body::Bytes,
            wanted: None,
            backup_file: None,
            decrypt: false,
            local_follow: false,
            make_parents: false,
            directory_mode: None,
            folder: None,
            content_there: false,
        }
    }

    /// A copy of a file on this host that another module made (get_url's download): read in
    /// pieces, never held whole. The file is the caller's to remove.
    pub(crate) fn of_file(dest: PathBuf, path: PathBuf, attrs: FileAttrs) -> Copy {
        let mut copy = Copy::of_content(dest, Vec::new(), attrs);
        copy.body = Body::File(path);
        copy
    }

    /// Makes the missing folders above the file when writing it (`create: true`).
    pub(crate) fn making_parents(mut self) -> Copy {
        self.make_parents = true;
        self
    }

    /// The file to write: `dest`, or `dest/NAME` when `dest` is a directory.
    fn target(&self) -> PathBuf {
        let is_dir = self.dest.is_dir() || self.dest.as_os_str().to_string_lossy().ends_with('/');
        match (&self.src_name, is_dir) {
            (Some(name), true) => self.dest.join(name),
            (None, true) if self.remote_src => self.dest.join(
                self.src
                    .as_ref()
                    .and_then(|s| s.file_name())
                    .unwrap_or_default(),
            ),
            _ => self.dest.clone(),
        }
    }

    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode.as_ref(),
        }
    }

    /// The new content's SHA-1 and size, hashed once (a file in pieces).
    fn wanted(&mut self) -> Result<(String, u64), ModuleError> {
        if let Some(known) = &self.wanted {
            return Ok(known.clone());
        }
        let known = match &self.body {
            Body::Bytes | Body::Absent => (sha1_hex(&self.bytes), self.bytes.len() as u64),
            Body::File(path) => {
                let len = fs::metadata(path)
                    .map_err(|e| ModuleError::io(format!("read {}", path.display()), e))?
                    .len();
                (fsutil::hash_file::<sha1::Sha1>(path)?, len)
            }
        };
        self.wanted = Some(known.clone());
        Ok(known)
    }

    /// The new content as text for a diff, or why it cannot be shown.
    fn diff_text(&self, len: u64) -> Result<String, String> {
        match &self.body {
            Body::Bytes => diffable(&self.bytes),
            Body::File(path) => small_file_text(path, len),
            Body::Absent => Err(format!(
                "{len} bytes, sha1 {}",
                self.wanted.as_ref().map_or("", |w| w.0.as_str())
            )),
        }
    }

    /// The new content, for writing.
    fn content(&self) -> Result<Content<'_>, ModuleError> {
        match &self.body {
            Body::Bytes => Ok(Content::Bytes(&self.bytes)),
            Body::File(path) => Ok(Content::File(path)),
            Body::Absent => Err(ModuleError::FailedWith {
                msg: "copy: the content differs and has not been sent".into(),
                values: [(
                    crate::transfer::NEEDS_CONTENT.to_string(),
                    Value::Bool(true),
                )]
                .into_iter()
                .collect(),
            }),
        }
    }

    fn target_metadata(&self) -> Option<Metadata> {
        let target = self.target();
        if self.follow {
            fs::metadata(&target).ok()
        } else {
            fs::symlink_metadata(&target).ok()
        }
    }

    /// The path chattr flags go on: the file written (a link's target when following).
    fn flags_path(&self) -> PathBuf {
        let target = self.target();
        match self.follow {
            true => fs::canonicalize(&target).unwrap_or(target),
            false => target,
        }
    }

    /// Plans `attributes` (chattr flags) of `path`.
    fn check_flags(&self, path: &Path, plan: &mut Plan) {
        if let Some(flags) = &self.attributes {
            fsutil::check_file_flags(path, flags, plan);
        }
    }

    /// Ansible's `checksum`: the source's SHA-1 must be the one given, or the copy fails
    /// (checked where Ansible's module sees the source: whenever it would write, and always for
    /// a `remote_src`).
    fn verify_checksum(&self, source_sum: &str, writes: bool) -> Result<(), ModuleError> {
        match &self.checksum {
            Some(expected) if (writes || self.remote_src) && expected != source_sum => {
                Err(ModuleError::FailedWith {
                    msg: "Copied file does not match the expected checksum. Transfer failed."
                        .into(),
                    values: [
                        ("checksum".to_string(), Value::from(source_sum)),
                        (
                            "expected_checksum".to_string(),
                            Value::from(expected.as_str()),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                })
            }
            _ => Ok(()),
        }
    }
}

impl Resource for Copy {
    fn validate(&self) -> Result<(), ModuleError> {
        let sources = [
            self.content.is_some(),
            self.content_base64.is_some(),
            self.src.is_some(),
            self.content_file.is_some() || self.content_sha1.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => Err(ModuleError::Args("src (or content) is required".into())),
            1 => Ok(()),
            _ => Err(ModuleError::Args(
                "src and content are mutually exclusive".into(),
            )),
        }?;
        if self.src.is_some() && !self.remote_src {
            return Err(ModuleError::Args("copy: a controller src must be read by the engine; use remote_src for a path on the host".into()));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.dest = fsutil::expand_path(&self.dest);
        self.src = self.src.as_deref().map(fsutil::expand_path);
        if self.remote_src
            && let Some(src) = self.src.clone().filter(|s| s.is_dir())
        {
            return self.check_folder(&src);
        }
        if let Some(content) = &self.content {
            self.bytes = content.clone().into_bytes();
        } else if let Some(encoded) = &self.content_base64 {
            self.bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| ModuleError::Args(format!("copy: _content_base64: {e}")))?;
        } else if let Some(staged) = &self.content_file {
            self.body = Body::File(fsutil::expand_path(staged));
        } else if let Some(sum) = &self.content_sha1 {
            self.body = Body::Absent;
            self.wanted = Some((sum.to_ascii_lowercase(), self.content_size.unwrap_or(0)));
        } else if let Some(src) = &self.src {
            // A device, a pipe, a socket: Ansible's copy refuses what is not a file.
            match fs::metadata(src) {
                Ok(m) if !m.is_file() => {
                    return Err(ModuleError::Failed(format!(
                        "Cannot copy invalid source '{}': not a file",
                        src.display()
                    )));
                }
                Ok(_) => self.body = Body::File(src.clone()),
                Err(e) => {
                    return Err(ModuleError::io(
                        format!("Source {} not found", src.display()),
                        e,
                    ));
                }
            }
        }
        let (want_sum, want_len) = self.wanted()?;
        if let (Body::File(_), Some(sent)) = (&self.body, &self.content_sha1)
            && !sent.eq_ignore_ascii_case(&want_sum)
        {
            return Err(ModuleError::Failed(format!(
                "the upload arrived damaged: its sha1 is {want_sum}, the controller's file's {sent}"
            )));
        }
        if matches!(self.mode, Some(Mode::Preserve))
            && let Some(src) = self.src.as_ref().filter(|_| self.remote_src)
        {
            let source = fs::metadata(src)
                .map_err(|e| ModuleError::io(format!("Source {} not found", src.display()), e))?;
            self.mode = Some(Mode::Octal(source.mode() & 0o7777));
        }
        let target = self.target();
        let meta = self.target_metadata();
        let mut plan = Plan::default();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            if self.content.is_some() {
                return Err(ModuleError::Failed(
                    "can not use content with a dir as dest".into(),
                ));
            }
            return Err(ModuleError::Failed(format!(
                "{} is a directory; give src a file name or dest a file path",
                target.display()
            )));
        }
        // The file on the host is hashed in pieces, never read whole.
        let current = match &meta {
            Some(_) => Some(fsutil::hash_file::<sha1::Sha1>(&target)?),
            None => None,
        };
        let differs = current.as_deref() != Some(want_sum.as_str());
        self.content_there = !differs;
        self.verify_checksum(&want_sum, differs && (self.force || current.is_none()))?;
        if differs && (self.force || current.is_none()) {
            plan.change("content", current.clone(), Some(want_sum));
            if want_diff {
                let path = target.display().to_string();
                let before = meta
                    .as_ref()
                    .map(|m| small_file_text(&target, m.len()))
                    .transpose();
                plan.content.push(match (before, self.diff_text(want_len)) {
                    (Ok(before), Ok(after)) => ContentDiff {
                        path,
                        before,
                        after: Some(after),
                        summary: None,
                    },
                    (Err(s), _) | (_, Err(s)) => ContentDiff {
                        path,
                        before: None,
                        after: None,
                        summary: Some(s),
                    },
                });
            }
        }
        let default_mode = fsutil::default_file_mode();
        if plan.has("content") || current.is_some() {
            self.attributes()
                .check(meta.as_ref(), false, default_mode, &mut plan)?;
            self.check_flags(&self.flags_path(), &mut plan);
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if let Some(folder) = &self.folder {
            return self.apply_folder(folder, plan);
        }
        let target = self.target();
        let meta = self.target_metadata();
        if !plan.has("content") {
            self.attributes().apply(&target, plan, self.follow)?;
            return fsutil::apply_file_flags(&self.flags_path(), plan);
        }
        // Without the bytes nothing is done: the engine sends them and calls again.
        self.content()?;
        if let Some(validate) = &self.validate {
            self.run_validate(validate)?;
        }
        if self.backup && meta.is_some() {
            self.backup_file = Some(backup(&target)?);
        }
        // Mode, owner and group go on the temporary file before the rename, so the new file
        // never exists with the wrong ones.
        let mode = match plan
            .changes
            .iter()
            .find(|c| c.field == "mode")
            .and_then(|c| c.after.as_deref())
        {
            Some(m) => u32::from_str_radix(m, 8).unwrap_or(0o644),
            None => meta
                .as_ref()
                .map_or(fsutil::default_file_mode(), |m| m.mode() & 0o7777),
        };
        let uid = match (plan.has("owner"), &self.owner, &meta) {
            (true, Some(o), _) => Some(fsutil::user_id(o)?),
            (_, _, Some(m)) => kept_owner(m.uid(), false),
            _ => None,
        };
        let gid = match (plan.has("group"), &self.group, &meta) {
            (true, Some(g), _) => Some(fsutil::group_id(g)?),
            (_, _, Some(m)) => kept_owner(m.gid(), true),
            _ => None,
        };
        let content = self.content()?;
        let dest = if self.follow {
            fs::canonicalize(&target).unwrap_or(target)
        } else {
            target
        };
        if let Some(folder) = dest
            .parent()
            .filter(|f| !f.as_os_str().is_empty() && !f.is_dir())
        {
            // `dest: some/dir/` names a folder: copy makes it, as Ansible's copy does.
            if self.make_parents || self.dest.as_os_str().to_string_lossy().ends_with('/') {
                fs::create_dir_all(folder).map_err(|e| {
                    ModuleError::io(format!("Error creating {}", folder.display()), e)
                })?;
                let owner = (mode, uid, gid);
                fsutil::write_file_from(&dest, content, owner, self.unsafe_writes)?;
                return fsutil::apply_file_flags(&dest, plan);
            }
            // A file where a folder should be: Ansible's words for it.
            if folder.ancestors().any(|a| a.is_file()) {
                return Err(ModuleError::Failed(format!(
                    "Failed to get information on remote file ({}): Not a directory",
                    dest.display()
                )));
            }
            // Ansible's words: copy and template do not create the folder.
            return Err(ModuleError::Failed(format!(
                "Destination directory {} does not exist",
                folder.display()
            )));
        }
        fsutil::write_file_from(&dest, content, (mode, uid, gid), self.unsafe_writes)?;
        fsutil::apply_file_flags(&dest, plan)
    }

    fn values(&self, values: &mut Map<String, Value>) {
        if let Some(folder) = &self.folder {
            values.insert("dest".into(), folder.reported_text.clone().into());
            if let Some(src) = &self.src {
                values.insert("src".into(), src.display().to_string().into());
            }
            values.insert("checksum".into(), Value::Null);
            values.insert("md5sum".into(), Value::Null);
            fsutil::attribute_values(&folder.reported, values);
            return;
        }
        let target = self.target();
        values.insert("dest".into(), target.display().to_string().into());
        let checksum = match &self.wanted {
            Some((sum, _)) => sum.clone(),
            None => sha1_hex(&self.bytes),
        };
        values.insert("checksum".into(), checksum.into());
        let md5sum = match &self.body {
            Body::Bytes => {
                use md5::Digest as _;
                let digest = md5::Md5::digest(&self.bytes);
                Some(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            Body::File(path) => fsutil::hash_file::<md5::Md5>(path).ok(),
            // The content was already there: the file's own.
            Body::Absent => fsutil::hash_file::<md5::Md5>(&target).ok(),
        };
        let file_module = self.content_there && !self.remote_src;
        if file_module {
            values.insert("path".into(), target.display().to_string().into());
        } else if let Some(md5sum) = md5sum {
            values.insert("md5sum".into(), md5sum.into());
        }
        if let Some(src) = &self.src {
            values.insert("src".into(), src.display().to_string().into());
        }
        if let Some(b) = &self.backup_file {
            values.insert("backup_file".into(), b.clone().into());
        }
        values.insert("state".into(), "file".into());
        fsutil::attribute_values(&target, values);
    }
}

/// A staged upload is this call's to remove, whatever came of it.
impl Drop for Copy {
    fn drop(&mut self) {
        if let Some(staged) = self
            .content_file
            .as_deref()
            .filter(|p| crate::transfer::is_staged(p))
        {
            let _ = fs::remove_file(fsutil::expand_path(staged));
        }
    }
}

/// `remote_src` with a folder as `src`, as Ansible's copy module does it: `src/` copies the
/// folder's contents into `dest`, `src` the folder itself into `dest/NAME`; what is missing or
/// different is copied (links as links, modes kept), nothing is removed.
#[derive(Debug)]
struct FolderCopy {
    /// The folder whose entries are copied.
    from: PathBuf,
    /// Where they go.
    to: PathBuf,
    /// The path the result and `mode` speak of (Ansible's `dest` after its adjustments).
    reported: PathBuf,
    reported_text: String,
    /// The folder above a `dest/` that does not exist yet.
    make: Option<PathBuf>,
}

/// One thing a folder copy writes.
#[derive(Debug)]
enum Copied {
    Folder(PathBuf, PathBuf),
    File(PathBuf, PathBuf),
    Link(PathBuf, PathBuf),
}

/// Lists what copying the entries of `from` into `to` writes: missing entries, and files whose
/// content differs; a folder present on both sides is compared entry by entry. With `follow`
/// (`local_follow: true`), a link is copied as what it points to, unless that is a folder the
/// copy is inside (a loop), which stays a link.
fn folder_differences(
    from: &Path,
    to: &Path,
    follow: bool,
    out: &mut Vec<Copied>,
) -> Result<(), ModuleError> {
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(|e| ModuleError::io(format!("read {}", from.display()), e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for source in entries {
        let Some(name) = source.file_name() else {
            continue;
        };
        let dest = to.join(name);
        let Ok(mut meta) = fs::symlink_metadata(&source) else {
            continue;
        };
        if follow
            && meta.file_type().is_symlink()
            && let Ok(target) = fs::metadata(&source)
            && !(target.is_dir() && is_loop(&source))
        {
            meta = target;
        }
        let existing = fs::symlink_metadata(&dest).ok();
        if meta.file_type().is_symlink() {
            if existing.is_none() {
                out.push(Copied::Link(source, dest));
            }
        } else if meta.is_dir() {
            match existing {
                None => {
                    out.push(Copied::Folder(source.clone(), dest.clone()));
                    folder_differences(&source, &dest, follow, out)?;
                }
                Some(m) if m.is_dir() => folder_differences(&source, &dest, follow, out)?,
                Some(_) => {}
            }
        } else {
            let differs = match existing {
                None => true,
                Some(m) if m.is_file() => !fsutil::same_content(&source, &dest),
                Some(_) => false,
            };
            if differs {
                out.push(Copied::File(source, dest));
            }
        }
    }
    Ok(())
}

/// Whether a link to a folder points at a folder it is in.
fn is_loop(link: &Path) -> bool {
    match (fs::canonicalize(link), link.parent().map(fs::canonicalize)) {
        (Ok(target), Some(Ok(parent))) => parent.starts_with(&target),
        _ => false,
    }
}

/// Every path of a folder tree, the folder first.
fn tree_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = vec![root.to_path_buf()];
    let mut at = 0;
    while at < paths.len() {
        let path = paths[at].clone();
        at += 1;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            let mut entries: Vec<_> = fs::read_dir(&path)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            paths.extend(entries);
        }
    }
    paths
}

impl Copy {
    /// Plans a folder copy (see [`FolderCopy`]).
    fn check_folder(&mut self, src: &Path) -> Result<Plan, ModuleError> {
        let src_text = src.display().to_string();
        let mut dest_text = self.dest.display().to_string();
        if !dest_text.contains('/') {
            dest_text = format!("./{dest_text}");
        }
        let mut plan = Plan::default();
        let mut make = None;
        if dest_text.ends_with('/') {
            let dirname = PathBuf::from(&dest_text[..dest_text.len() - 1]);
            if !dirname.exists() {
                plan.change(
                    "folder",
                    None,
                    Some(format!(
                        "dest directory {} would be created",
                        dirname.display()
                    )),
                );
                make = Some(dirname);
            }
        }
        let name = if src_text.ends_with('/') {
            String::new()
        } else {
            src.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let reported_text = if Path::new(&dest_text).is_dir() && !name.is_empty() {
            format!("{}/{name}", dest_text.trim_end_matches('/'))
        } else {
            dest_text.clone()
        };
        let dest = Path::new(&dest_text);
        if dest.exists() && !dest.is_dir() {
            return Err(ModuleError::with(
                format!("Cannot copy the folder {src_text} over the file {dest_text}"),
                &[("src", &src_text), ("dest", &dest_text)],
            ));
        }
        let to = if name.is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(&name)
        };
        let mut copied = Vec::new();
        if to.exists() {
            folder_differences(src, &to, self.local_follow, &mut copied)?;
        } else {
            copied.push(Copied::Folder(src.to_path_buf(), to.clone()));
            folder_differences(src, &to, self.local_follow, &mut copied)?;
        }
        if !copied.is_empty() {
            plan.change(
                "folder",
                None,
                Some(format!("{} paths copied from {src_text}", copied.len())),
            );
        }
        if to.exists() && (self.owner.is_some() || self.group.is_some()) {
            let owner_group = Attributes {
                owner: self.owner.as_deref(),
                group: self.group.as_deref(),
                mode: None,
            };
            let mut sub = Plan::default();
            for path in tree_paths(&to) {
                owner_group.check(
                    fs::symlink_metadata(&path).ok().as_ref(),
                    false,
                    0,
                    &mut sub,
                )?;
            }
            if !sub.is_empty() {
                plan.change("owner/group", None, Some(format!("below {}", to.display())));
            }
        }
        let reported = PathBuf::from(&reported_text);
        if let Ok(meta) = fs::metadata(&reported) {
            self.attributes()
                .check(Some(&meta), meta.is_dir(), 0, &mut plan)?;
        }
        self.check_flags(&reported, &mut plan);
        self.folder = Some(FolderCopy {
            from: src.to_path_buf(),
            to,
            reported,
            reported_text,
            make,
        });
        Ok(plan)
    }

    /// Makes the folder copy `check` planned, then sets owner and group below it and the
    /// attributes of the reported path.
    fn apply_folder(&self, folder: &FolderCopy, plan: &Plan) -> Result<(), ModuleError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.display().to_string();
            move |e| ModuleError::io(format!("{what} {path}"), e)
        };
        let owner_group = Attributes {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: None,
        };
        let set_owner_group = |path: &Path| -> Result<(), ModuleError> {
            let mut sub = Plan::default();
            owner_group.check(fs::symlink_metadata(path).ok().as_ref(), false, 0, &mut sub)?;
            owner_group.apply(path, &sub, false)
        };
        if let Some(make) = &folder.make {
            let missing: Vec<PathBuf> = make
                .ancestors()
                .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
                .map(Path::to_path_buf)
                .collect();
            fs::create_dir_all(make).map_err(io("mkdir", make))?;
            let made = Attributes {
                owner: self.owner.as_deref(),
                group: self.group.as_deref(),
                mode: self.directory_mode.as_ref(),
            };
            for dir in missing.iter().rev() {
                let mut sub = Plan::default();
                made.check(fs::metadata(dir).ok().as_ref(), true, 0, &mut sub)?;
                made.apply(dir, &sub, false)?;
            }
        }
        let mut copied = Vec::new();
        if folder.to.exists() {
            folder_differences(&folder.from, &folder.to, self.local_follow, &mut copied)?;
        } else {
            copied.push(Copied::Folder(folder.from.clone(), folder.to.clone()));
            folder_differences(&folder.from, &folder.to, self.local_follow, &mut copied)?;
        }
        for item in &copied {
            match item {
                Copied::Folder(from, to) => {
                    fs::create_dir_all(to).map_err(io("mkdir", to))?;
                    let mode = fs::metadata(from).map_err(io("stat", from))?.mode();
                    fsutil::chmod(to, mode & 0o7777)?;
                }
                Copied::File(from, to) => {
                    fs::copy(from, to).map_err(io("copy to", to))?;
                }
                Copied::Link(from, to) => {
                    let target = fs::read_link(from).map_err(io("readlink", from))?;
                    std::os::unix::fs::symlink(target, to).map_err(io("symlink", to))?;
                }
            }
        }
        if self.owner.is_some() || self.group.is_some() {
            for path in tree_paths(&folder.to) {
                set_owner_group(&path)?;
            }
        }
        if plan.is_empty() {
            return Ok(());
        }
        let mut sub = Plan::default();
        if let Ok(meta) = fs::metadata(&folder.reported) {
            self.attributes()
                .check(Some(&meta), meta.is_dir(), 0, &mut sub)?;
            self.attributes().apply(&folder.reported, &sub, true)?;
        }
        let mut flags = Plan::default();
        self.check_flags(&folder.reported, &mut flags);
        fsutil::apply_file_flags(&folder.reported, &flags)
    }

    /// Runs `validate` (with `%s` as a temporary copy of the new content) and fails on non-zero.
    fn run_validate(&self, validate: &str) -> Result<(), ModuleError> {
        if !validate.contains("%s") {
            return Err(ModuleError::Args(format!(
                "validate must contain %s: {validate}"
            )));
        }
        let dir = self
            .target()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let tmp = tempfile::Builder::new()
            .prefix(".settle-validate.")
            .tempfile_in(&dir)
            .map_err(|e| ModuleError::io("validate", e))?;
        let written = match self.content()? {
            Content::Bytes(bytes) => fs::write(tmp.path(), bytes),
            Content::File(path) => fs::copy(path, tmp.path()).map(drop),
        };
        written.map_err(|e| ModuleError::io("validate", e))?;
        let cmd = validate.replace("%s", &tmp.path().display().to_string());
        let words =
            shell_words::split(&cmd).map_err(|e| ModuleError::Args(format!("validate: {e}")))?;
        let output = Command::new(&words[0])
            .args(&words[1..])
            .output()
            .map_err(|e| ModuleError::io(format!("validate: {}", words[0]), e))?;
        if !output.status.success() {
            return Err(ModuleError::Failed(format!(
                "failed to validate: rc:{} error:{}",
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }
}

/// Copies a file to `NAME.PID.YYYY-MM-DD@HH:MM:SS~` beside it, as Ansible's backups are named.
pub(crate) fn backup(path: &std::path::Path) -> Result<String, ModuleError> {
    let stamp = local_timestamp();
    let name = format!("{}.{}.{stamp}~", path.display(), std::process::id());
    fs::copy(path, &name).map_err(|e| ModuleError::io(format!("backup {}", path.display()), e))?;
    // The backup keeps the owner too (Ansible's `preserved_copy`), when we may give it.
    if let Ok(meta) = fs::metadata(path) {
        use std::os::unix::fs::MetadataExt as _;
        let _ = std::os::unix::fs::chown(&name, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(name)
}

fn local_timestamp() -> String {
    // SAFETY: time/localtime_r only write into the provided struct.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!(
            "{:04}-{:02}-{:02}@{:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

#[cfg(test)]
mod folder_tests {
    use crate::{Request, run};

    fn copy(args: serde_json::Value) -> crate::Outcome {
        run(&Request::new(
            "copy",
            args.as_object().cloned().unwrap_or_default(),
        ))
    }

    #[test]
    fn remote_folder_copies_its_contents_with_a_slash_and_itself_without() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/a.txt"), "a").unwrap();
        let contents = dir.path().join("contents");
        let args = serde_json::json!({
            "src": format!("{}/", src.display()),
            "dest": format!("{}/", contents.display()),
            "remote_src": true,
        });
        let out = copy(args.clone());
        assert!(out.changed && !out.failed, "{out:?}");
        assert_eq!(
            std::fs::read_to_string(contents.join("sub/a.txt")).unwrap(),
            "a"
        );
        assert!(!copy(args).changed, "a second run changes nothing");
        let itself = dir.path().join("itself");
        let out = copy(serde_json::json!({"src": src, "dest": itself, "remote_src": true}));
        assert!(out.changed && !out.failed, "{out:?}");
        assert!(itself.join("src/sub/a.txt").is_file());
    }

    #[test]
    fn remote_folder_links_are_followed_only_with_local_follow() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "f").unwrap();
        std::os::unix::fs::symlink(src.join("sub/f"), src.join("link")).unwrap();
        std::os::unix::fs::symlink("..", src.join("sub/up")).unwrap();
        for (follow, name) in [(true, "followed"), (false, "kept")] {
            let dest = dir.path().join(name);
            let out = copy(serde_json::json!({
                "src": format!("{}/", src.display()),
                "dest": format!("{}/", dest.display()),
                "remote_src": true,
                "local_follow": follow,
            }));
            assert!(out.changed && !out.failed, "{out:?}");
            let link = std::fs::symlink_metadata(dest.join("link")).unwrap();
            assert_eq!(link.file_type().is_symlink(), !follow, "{name}");
            assert_eq!(std::fs::read_to_string(dest.join("link")).unwrap(), "f");
            // A link to a folder the copy is inside stays a link either way.
            let up = std::fs::symlink_metadata(dest.join("sub/up")).unwrap();
            assert!(up.file_type().is_symlink(), "{name}");
        }
    }

    #[test]
    fn a_source_that_is_not_a_file_is_refused_in_ansibles_words() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("whocares");
        let out = copy(serde_json::json!({"src": "/dev/null", "dest": dest, "remote_src": true}));
        assert!(out.failed, "{out:?}");
        assert_eq!(
            out.msg.as_deref(),
            Some("Cannot copy invalid source '/dev/null': not a file")
        );
        assert!(!dest.exists());
    }

    #[test]
    fn an_old_owner_is_kept_only_where_this_user_may_give_it() {
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!(super::kept_owner(euid, false), Some(euid));
        assert_eq!(super::kept_owner(egid, true), Some(egid));
        let other = if euid == 0 { Some(4242) } else { None };
        assert_eq!(super::kept_owner(4242, false), other);
    }
}
