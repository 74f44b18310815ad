//! Files, owners and checksums, done so that nothing is ever half-written.

use std::ffi::{CStr, CString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::ModuleError;

/// Ansible shows no diff above this size (`max_diff_size`).
pub(crate) const MAX_DIFF_BYTES: usize = 104_448;

/// A user name or numeric id → uid.
pub(crate) fn user_id(name: &str) -> Result<u32, ModuleError> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    if name.contains('\0') {
        return Err(ModuleError::Args(format!("invalid user name {name:?}")));
    }
    passwd_entry(name)
        .map(|(uid, _, _)| uid)
        .ok_or_else(|| ModuleError::Failed(format!("chown failed: failed to look up user {name}")))
}

/// A user's uid, primary gid and home folder, from the password database.
pub(crate) fn passwd_entry(name: &str) -> Option<(u32, u32, String)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into pwd/buf, which outlive the call; result is checked for
    // null; pw_dir points into buf and is copied out before buf is dropped.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    let home = if pwd.pw_dir.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(pwd.pw_dir) }
            .to_string_lossy()
            .into_owned()
    };
    Some((pwd.pw_uid, pwd.pw_gid, home))
}

/// A group name or numeric id → gid.
pub(crate) fn group_id(name: &str) -> Result<u32, ModuleError> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    let c = CString::new(name)
        .map_err(|_| ModuleError::Args(format!("invalid group name {name:?}")))?;
    let mut buf = vec![0u8; 16384];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in user_id.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(ModuleError::Failed(format!(
            "chgrp failed: failed to look up group {name}"
        )));
    }
    Ok(grp.gr_gid)
}

/// The name of a uid, or the number when it has none.
pub(crate) fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in user_id; pw_name points into buf, copied out before buf is dropped.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return uid.to_string();
    }
    unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// The name of a gid, or the number when it has none.
pub(crate) fn group_name(gid: u32) -> String {
    let mut buf = vec![0u8; 16384];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in user_name.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return gid.to_string();
    }
    unsafe { CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

/// The process's umask, read without changing it (so other threads are not disturbed).
pub(crate) fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

/// `0644` as Ansible prints modes.
pub(crate) fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A mode as Ansible's `add_path_info` and file diffs write it (`'0%03o'`): `0644`, `01444`.
pub(crate) fn ansible_mode_string(mode: u32) -> String {
    format!("0{:03o}", mode & 0o7777)
}

pub(crate) fn sha1_hex(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A file's digest as lowercase hex, read in chunks.
pub(crate) fn hash_file<D: Digest>(path: &Path) -> Result<String, ModuleError> {
    use std::io::Read;
    let context = || format!("read {}", path.display());
    let mut file = fs::File::open(path).map_err(|e| ModuleError::io(context(), e))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ModuleError::io(context(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Changes owner and group where given (`None` leaves it). Does not follow a symlink.
pub(crate) fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), ModuleError> {
    std::os::unix::fs::lchown(path, uid, gid)
        .map_err(|e| ModuleError::io(format!("chown {}", path.display()), e))
}

pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), ModuleError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| ModuleError::io(format!("chmod {}", path.display()), e))
}

/// What a new file gets when the task gives no mode: 0666 less the umask, as `open(2)` does.
pub(crate) fn default_file_mode() -> u32 {
    0o666 & !umask()
}

/// Writes `bytes` to `dest` all at once: a temporary file in the same folder, flushed to disk,
/// given its mode and owner, then renamed over `dest`. A crash at any point leaves either the
/// old file or the new one, never a half-written one.
pub(crate) fn atomic_write(
    dest: &Path,
    bytes: &[u8],
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ModuleError> {
    write_file(dest, bytes, (mode, uid, gid), false)
}

/// `atomic_write`, and with `unsafe_writes` (Ansible's common file argument) a direct write
/// into `dest` when the atomic way is refused: a folder where no temporary file can be made or
/// renamed (immutable, a bind-mounted file, another device: EPERM, EACCES, EXDEV, EBUSY,
/// ETXTBSY), as Ansible's `atomic_move` falls back.
pub(crate) fn write_file(
    dest: &Path,
    bytes: &[u8],
    owner: (u32, Option<u32>, Option<u32>),
    unsafe_writes: bool,
) -> Result<(), ModuleError> {
    write_file_from(dest, Content::Bytes(bytes), owner, unsafe_writes)
}

/// New content for a file: bytes in memory, or a file on this host streamed in pieces (so a
/// file of any size costs no more memory than one piece).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Content<'_> {
    fn write_into(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Content::Bytes(bytes) => out.write_all(bytes),
            Content::File(path) => {
                let mut file = fs::File::open(path)?;
                std::io::copy(&mut file, out).map(drop)
            }
        }
    }
}

/// `write_file` of content that may be a file on this host.
pub(crate) fn write_file_from(
    dest: &Path,
    content: Content<'_>,
    (mode, uid, gid): (u32, Option<u32>, Option<u32>),
    unsafe_writes: bool,
) -> Result<(), ModuleError> {
    match replace_atomically(dest, content, mode, uid, gid) {
        Err(ModuleError::Io { source, .. }) if unsafe_writes && refused_atomic(&source) => {
            write_in_place(dest, content, mode, uid, gid)
        }
        done => done,
    }
}

/// Whether two files hold the same bytes, read side by side in pieces; unreadable is different.
pub(crate) fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) else {
        return false;
    };
    if ma.len() != mb.len() {
        return false;
    }
    let (Ok(mut fa), Ok(mut fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let Ok(n) = fa.read(&mut ba) else {
            return false;
        };
        if n == 0 {
            // Same length at the start; the second must end here too.
            return fb.read(&mut bb[..1]).is_ok_and(|m| m == 0);
        }
        if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// The errors after which Ansible's `atomic_move` tries an unsafe write.
/// (`tempfile` wraps the OS error with its path, keeping only the kind.)
fn refused_atomic(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::EXDEV | libc::EBUSY | libc::ETXTBSY)
    ) || matches!(
        e.kind(),
        K::PermissionDenied | K::CrossesDevices | K::ResourceBusy | K::ExecutableFileBusy
    )
}

/// Ansible's `_unsafe_writes`: `dest` opened, truncated and written; then mode and owner.
fn write_in_place(
    dest: &Path,
    content: Content<'_>,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ModuleError> {
    let context = || {
        format!(
            "Could not write data to file {:?} (unsafe_writes)",
            dest.display().to_string()
        )
    };
    let mut file = fs::File::create(dest).map_err(|e| ModuleError::io(context(), e))?;
    content
        .write_into(&mut file)
        .and_then(|()| file.sync_all())
        .map_err(|e| ModuleError::io(context(), e))?;
    let current = file.metadata().map_err(|e| ModuleError::io(context(), e))?;
    if current.mode() & 0o7777 != mode {
        chmod(dest, mode)?;
    }
    if uid.is_some_and(|u| u != current.uid()) || gid.is_some_and(|g| g != current.gid()) {
        chown(dest, uid, gid)?;
    }
    Ok(())
}

fn replace_atomically(
    dest: &Path,
    content: Content<'_>,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ModuleError> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let context = || format!("write {}", dest.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".settle-tmp")
        .tempfile_in(dir)
        .map_err(|e| ModuleError::io(context(), e))?;
    content
        .write_into(tmp.as_file_mut())
        .map_err(|e| ModuleError::io(context(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ModuleError::io(context(), e))?;
    // Ansible's `atomic_move` copies the old file's stat onto the new one (`shutil.copystat`),
    // extended attributes and so POSIX ACLs included; the mode then goes on top.
    copy_xattrs(dest, tmp.path());
    chmod(tmp.path(), mode)?;
    if uid.is_some() || gid.is_some() {
        chown(tmp.path(), uid, gid)?;
    }
    tmp.persist(dest)
        .map_err(|e| ModuleError::io(context(), e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn c_path(path: &Path) -> Option<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// The names of a file's extended attributes (none when it has none or cannot say).
fn xattr_names(path: &CStr) -> Vec<CString> {
    // SAFETY: a null buffer of size 0 asks only for the size the list needs.
    let size = unsafe { libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0) };
    let Ok(size) = usize::try_from(size) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` has `size` writable bytes.
    let got = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), size) };
    let Ok(got) = usize::try_from(got) else {
        return Vec::new();
    };
    buf[..got.min(size)]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| CString::new(n).ok())
        .collect()
}

/// One extended attribute's value.
fn xattr_value(path: &CStr, name: &CStr) -> Option<Vec<u8>> {
    // SAFETY: a null buffer of size 0 asks only for the value's size.
    let size = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    let size = usize::try_from(size).ok()?;
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` has `size` writable bytes.
    let got =
        unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), size) };
    buf.truncate(usize::try_from(got).ok()?);
    Some(buf)
}

/// Copies `from`'s extended attributes (POSIX ACLs, SELinux label, user attributes) onto `to`,
/// as Python's `shutil.copystat`: best effort, an attribute that cannot be set is skipped.
pub(crate) fn copy_xattrs(from: &Path, to: &Path) {
    let (Some(from), Some(to)) = (c_path(from), c_path(to)) else {
        return;
    };
    for name in xattr_names(&from) {
        let Some(value) = xattr_value(&from, &name) else {
            continue;
        };
        // SAFETY: all pointers are valid for the lengths given.
        unsafe {
            libc::setxattr(
                to.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            );
        }
    }
}

/// A file's content as text for a diff, or a one-line summary when it is binary or too large.
pub(crate) fn diffable(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_DIFF_BYTES {
        return Err(format!(
            "{} bytes, larger than the {MAX_DIFF_BYTES}-byte diff limit",
            bytes.len()
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text.to_string()),
        _ => Err(format!(
            "binary, {} bytes, sha1 {}",
            bytes.len(),
            sha1_hex(bytes)
        )),
    }
}

/// Owner, group and mode of an existing path, as return values.
pub(crate) fn attribute_values(
    path: &Path,
    values: &mut serde_json::Map<String, serde_json::Value>,
) {
    if let Ok(meta) = fs::symlink_metadata(path) {
        values.insert("mode".into(), ansible_mode_string(meta.mode()).into());
        values.insert("uid".into(), meta.uid().into());
        values.insert("gid".into(), meta.gid().into());
        values.insert("owner".into(), user_name(meta.uid()).into());
        values.insert("group".into(), group_name(meta.gid()).into());
        values.insert("size".into(), meta.len().into());
    }
}

/// What Ansible's `add_path_info` adds to a result whose `path` exists: the file's attributes,
/// and `state` replaced by what the path is (`file`, `directory`, `link` or `hard`).
pub(crate) fn path_info(path: &Path, values: &mut serde_json::Map<String, serde_json::Value>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    // os.path.exists follows a link: a dangling one adds nothing.
    if meta.file_type().is_symlink() && fs::metadata(path).is_err() {
        return;
    }
    attribute_values(path, values);
    let state = if meta.file_type().is_symlink() {
        "link"
    } else if meta.is_dir() {
        "directory"
    } else if meta.nlink() > 1 {
        "hard"
    } else {
        "file"
    };
    values.insert("state".into(), state.into());
}

/// `$VAR` and `${VAR}` replaced by what `lookup` gives; a name it does not know stays as
/// written, as Python's `os.path.expandvars` leaves it.
pub(crate) fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let (name, next) = if chars.get(i + 1) == Some(&'{') {
                match chars[i + 2..].iter().position(|c| *c == '}') {
                    Some(end) => (
                        chars[i + 2..i + 2 + end].iter().collect::<String>(),
                        i + 3 + end,
                    ),
                    None => (String::new(), i),
                }
            } else {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                (chars[i + 1..i + 1 + len].iter().collect(), i + 1 + len)
            };
            if let Some(value) = (!name.is_empty()).then(|| lookup(&name)).flatten() {
                out.push_str(&value);
                i = next;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Ansible's `type='path'` arguments: `os.path.expanduser(os.path.expandvars(value))`.
pub(crate) fn expand_path(path: &Path) -> std::path::PathBuf {
    let Some(text) = path.to_str() else {
        return path.to_path_buf();
    };
    if !text.contains('$') && !text.starts_with('~') {
        return path.to_path_buf();
    }
    let mut out = expand_vars(text, |name| std::env::var(name).ok());
    if let Some(rest) = out.strip_prefix('~') {
        let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let home = if name.is_empty() {
            std::env::var("HOME").ok()
        } else {
            // `~alice/x`: that user's home, or the path as written when there is no such user.
            home_of(name)
        };
        if let Some(home) = home {
            out = format!("{home}{tail}");
        }
    }
    std::path::PathBuf::from(out)
}

/// A user's home folder, from the password database.
fn home_of(name: &str) -> Option<String> {
    passwd_entry(name)
        .map(|(_, _, home)| home)
        .filter(|home| !home.is_empty())
}

/// An exclusive lock on the folder holding `path` (flock(2) on the folder itself: no lock file
/// is left anywhere), held until the returned file is dropped. `None` when the folder cannot
/// be opened (it does not exist yet: there is nothing to edit then).
pub(crate) fn lock_folder_of(path: &Path) -> Option<fs::File> {
    let path = expand_path(path);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = fs::File::open(dir).ok()?;
    // SAFETY: flock on a descriptor we own; it blocks until the other holder lets go.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&folder), libc::LOCK_EX) };
    (locked == 0).then_some(folder)
}

/// `attributes:` (chattr flags: `A`, `+i`, `-a`, `=e`), compared as Ansible's
/// `set_attributes_if_different` does: the flags `lsattr -d` shows against those given, and
/// always a change for `-`. Adds an `attributes` change to `plan`; empty flags change nothing.
/// Every module that writes a file (file, copy, template, lineinfile, blockinfile, replace,
/// assemble, unarchive, get_url, uri) plans its flags here and sets them with
/// [`apply_file_flags`] once the file is written.
pub(crate) fn check_file_flags(path: &Path, wanted: &str, plan: &mut crate::Plan) {
    let (op, flags) = match wanted.strip_prefix(['+', '-']) {
        Some(rest) => (&wanted[..1], rest),
        None => ("=", wanted),
    };
    let existing = file_flags(path).unwrap_or_default();
    if !flags.is_empty()
        && (existing != flags || op == "-")
        && crate::bin_path::find("chattr").is_some()
    {
        // A file about to be made has no flags yet (Ansible's check mode: "changed").
        let before = fs::symlink_metadata(path).is_ok().then_some(existing);
        plan.change("attributes", before, Some(format!("{op}{flags}")));
    }
}

/// Runs `chattr` for an `attributes` change of `plan` (see [`check_file_flags`]).
pub(crate) fn apply_file_flags(path: &Path, plan: &crate::Plan) -> Result<(), ModuleError> {
    let Some(change) = plan.changes.iter().find(|c| c.field == "attributes") else {
        return Ok(());
    };
    let Some(chattr) = crate::bin_path::find("chattr") else {
        return Ok(());
    };
    let flags = change.after.clone().unwrap_or_default();
    let out = std::process::Command::new(chattr)
        .arg(&flags)
        .arg(path)
        .output()
        .map_err(|e| ModuleError::io("chattr", e))?;
    if out.status.success() && out.stderr.is_empty() {
        return Ok(());
    }
    let details = format!(
        "Error while setting attributes: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(ModuleError::with(
        "chattr failed",
        &[("path", &path.display().to_string()), ("details", &details)],
    ))
}

/// The flags `lsattr -d` shows for a path, without the dashes; `None` where it cannot tell
/// (`-d` alone: some file systems have flags but no version to read).
fn file_flags(path: &Path) -> Option<String> {
    let lsattr = crate::bin_path::find("lsattr")?;
    let out = std::process::Command::new(lsattr)
        .arg("-d")
        .arg(path)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().map(|f| f.replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_extended_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, "old").unwrap();
        let (path, name) = (c_path(&dest).unwrap(), c"user.settle");
        // SAFETY: valid pointers and lengths.
        let set =
            unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
        if set != 0 {
            return; // the file system has no user attributes
        }
        atomic_write(&dest, b"new", 0o644, None, None).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(
            xattr_value(&c_path(&dest).unwrap(), name),
            Some(b"v".to_vec())
        );
    }

    #[test]
    fn refusals_that_allow_an_unsafe_write() {
        let wrapped = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "at path x");
        assert!(refused_atomic(&wrapped));
        assert!(refused_atomic(&std::io::Error::from_raw_os_error(
            libc::EXDEV
        )));
        assert!(!refused_atomic(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
    }

    #[test]
    fn flags_compare_as_ansibles_set_attributes_if_different() {
        if crate::bin_path::find("lsattr").is_none() || crate::bin_path::find("chattr").is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x").unwrap();
        let Some(existing) = file_flags(&path) else {
            return; // a file system without flags
        };
        let plan_for = |wanted: &str, path: &Path| {
            let mut plan = crate::Plan::default();
            check_file_flags(path, wanted, &mut plan);
            plan
        };
        // Empty flags change nothing; the flags the file has already, nothing.
        assert!(plan_for("", &path).is_empty());
        if !existing.is_empty() {
            assert!(plan_for(&existing, &path).is_empty());
            assert!(plan_for(&format!("+{existing}"), &path).is_empty());
        }
        // `-` is always a change, as in Ansible.
        let minus = plan_for("-d", &path);
        assert_eq!(minus.changes[0].after.as_deref(), Some("-d"));
        assert_eq!(minus.changes[0].before.as_deref(), Some(existing.as_str()));
        // A file about to be made has no flags before.
        let new = plan_for("A", &dir.path().join("new"));
        assert_eq!(new.changes[0].before, None);
        assert_eq!(new.changes[0].after.as_deref(), Some("=A"));
    }

    /// Takes the immutable flag off again, whatever the test did.
    struct Mutable<'a>(&'a Path);

    impl Drop for Mutable<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0)
                .status();
        }
    }

    #[test]
    fn unsafe_writes_write_in_place_in_an_immutable_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("d");
        fs::create_dir(&folder).unwrap();
        let dest = folder.join("f");
        fs::write(&dest, "old").unwrap();
        let _undo = Mutable(&folder);
        let made = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&folder)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no chattr, no root, or a file system without the flag
        }
        assert!(write_file(&dest, b"new", (0o640, None, None), false).is_err());
        write_file(&dest, b"new", (0o640, None, None), true).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o7777, 0o640);
    }
}
