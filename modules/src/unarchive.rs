//! `unarchive`: an archive unpacked into a folder with the host's `tar` or `unzip`, as
//! Ansible's module does it.
//!
//! The question "is it already unpacked?" is Ansible's for tar (`tar --diff`, counting the
//! same kinds of difference: missing, size, contents, mod time, symlink, and mode or owner
//! only when the task does not set them). For zip, each member is compared by size and CRC-32
//! with the file in `dest` (Ansible compares size, time and CRC too). The archive comes from the
//! controller (the engine sends its bytes), from this host (`remote_src`), or from a URL.
//! `owner`, `group` and `mode` are set on every member afterwards, as Ansible does.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean, text};
use crate::file::Attributes;
use crate::fsutil;
use crate::resource::{Plan, Resource};
use crate::urls::{self, Options};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "unarchive",
    args: &[
        "src",
        "dest",
        "remote_src",
        "copy",
        "creates",
        "list_files",
        "keep_newer",
        "exclude",
        "include",
        "extra_opts",
        "validate_certs",
        "decrypt",
        "owner",
        "group",
        "mode",
        "unsafe_writes",
        "_content_base64",
        "_content_file",
        "_src_name",
        "io_buffer_size",
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Unarchive {
    #[serde(default, deserialize_with = "text")]
    src: Option<String>,
    dest: PathBuf,
    /// Read by the engine: without it, it sends a controller file's bytes.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    remote_src: bool,
    /// The old spelling of `remote_src: false`.
    #[serde(default, deserialize_with = "crate::args::optional_boolean")]
    #[allow(dead_code)]
    copy: Option<bool>,
    /// Checked by [`run`] before anything else.
    #[allow(dead_code)]
    creates: Option<PathBuf>,
    #[serde(default, deserialize_with = "boolean")]
    list_files: bool,
    #[serde(default, deserialize_with = "boolean")]
    keep_newer: bool,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    extra_opts: Vec<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    validate_certs: bool,
    /// Vault decryption happens on the controller.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    decrypt: bool,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    unsafe_writes: bool,
    #[serde(rename = "_content_base64")]
    content_base64: Option<String>,
    /// A controller archive larger than a piece, uploaded in pieces and staged on this host
    /// (removed after).
    #[serde(rename = "_content_file")]
    content_file: Option<PathBuf>,
    #[serde(rename = "_src_name")]
    #[allow(dead_code)]
    src_name: Option<String>,
    /// How much of a file is read at a time when comparing it with a zip member's CRC.
    #[serde(default = "io_buffer_size")]
    io_buffer_size: usize,
    /// chattr flags set on every member, as Ansible's `set_fs_attributes_if_different` does.
    #[serde(default, alias = "attr", deserialize_with = "text")]
    attributes: Option<String>,
    #[serde(skip)]
    state: State,
}

/// Ansible's default `io_buffer_size`: 64 KiB.
fn io_buffer_size() -> usize {
    65_536
}

/// A staged upload is this call's to remove, whatever came of it.
impl Drop for Unarchive {
    fn drop(&mut self) {
        if let Some(staged) = self
            .content_file
            .as_deref()
            .map(fsutil::expand_path)
            .filter(|p| crate::transfer::is_staged(p))
        {
            let _ = fs::remove_file(staged);
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The archive on this host (a temporary copy for controller and URL sources).
    archive: Option<PathBuf>,
    _scratch: Option<tempfile::TempDir>,
    kind: Option<Kind>,
    members: Vec<String>,
    /// Members whose owner, group or mode differ, with what differs.
    attribute_plans: Vec<(PathBuf, Plan)>,
    extract: Option<Map<String, Value>>,
}

/// What kind of archive, and how tar is told of its compression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Zip,
    Tar(Option<&'static str>),
}

impl Kind {
    fn handler(self) -> &'static str {
        match self {
            Kind::Zip => "ZipArchive",
            Kind::Tar(None) => "TarArchive",
            Kind::Tar(Some("-z")) => "TgzArchive",
            Kind::Tar(Some("-j")) => "TarBzipArchive",
            Kind::Tar(Some("-J")) => "TarXzArchive",
            Kind::Tar(Some(_)) => "TarZstdArchive",
        }
    }
}

/// The archive's kind from its first bytes.
fn sniff(path: &Path) -> Result<Kind, ModuleError> {
    let mut head = [0u8; 262];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ModuleError::io(format!("read {}", path.display()), e))?;
    let head = &head[..n];
    Ok(
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Kind::Zip
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Kind::Tar(Some("-z"))
        } else if head.starts_with(b"BZh") {
            Kind::Tar(Some("-j"))
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Kind::Tar(Some("-J"))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Kind::Tar(Some("--use-compress-program=zstd"))
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Kind::Tar(None)
        } else {
            return Err(ModuleError::Failed(format!(
                "Failed to find handler for \"{}\". Make sure the required command to extract the \
             file is installed (tar for .tar, .tar.gz, .tar.bz2, .tar.xz, .tar.zst; unzip for \
             .zip).",
                path.display()
            )));
        },
    )
}

fn output(cmd: &mut Command) -> Result<(i32, String, String), ModuleError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .output()
        .map_err(|e| ModuleError::Failed(format!("Unable to find required '{program}': {e}")))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn command_line(cmd: &Command) -> Vec<Value> {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| Value::from(a.to_string_lossy().into_owned()))
        .collect()
}

impl Unarchive {
    fn archive(&self) -> &Path {
        self.state.archive.as_deref().unwrap_or(Path::new(""))
    }

    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode.as_ref(),
        }
    }

    /// Puts the archive on this host: the controller's bytes or a URL's into a scratch folder
    /// (a download goes there as it arrives), or the controller's staged upload as it is.
    fn fetch_archive(&mut self) -> Result<(), ModuleError> {
        let src = self.src.clone().unwrap_or_default();
        if let Some(staged) = &self.content_file {
            let staged = fsutil::expand_path(staged);
            if !crate::transfer::is_staged(&staged) {
                return Err(ModuleError::Args(format!(
                    "unarchive: _content_file {} is not a staged upload",
                    staged.display()
                )));
            }
            self.state.archive = Some(staged);
            return Ok(());
        }
        if !src.contains("://") && self.content_base64.is_none() {
            let path = fsutil::expand_path(Path::new(&src));
            if !path.exists() {
                return Err(ModuleError::Failed(format!(
                    "Source '{}' does not exist",
                    path.display()
                )));
            }
            self.state.archive = Some(path);
            return Ok(());
        }
        let scratch = tempfile::Builder::new()
            .prefix("settle-unarchive")
            .tempdir()
            .map_err(|e| ModuleError::io("make a scratch folder", e))?;
        let name = urls::url_filename(&src);
        let path = scratch.path().join(name);
        let context = || format!("write {}", path.display());
        if let Some(encoded) = &self.content_base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| ModuleError::Args(format!("unarchive: _content_base64: {e}")))?;
            fs::write(&path, bytes).map_err(|e| ModuleError::io(context(), e))?;
        } else {
            let options = Options {
                validate_certs: self.validate_certs,
                ..Options::default()
            };
            let file = fs::File::create(&path).map_err(|e| ModuleError::io(context(), e))?;
            let mut sink = std::io::BufWriter::new(file);
            let reply = urls::fetch_to(&options, "GET", &src, None, &mut sink);
            if reply.status != 200 {
                return Err(ModuleError::Failed(format!(
                    "Failure downloading {}, {}",
                    urls::mask_url(&src),
                    reply.msg
                )));
            }
        }
        self.state.archive = Some(path);
        self.state._scratch = Some(scratch);
        Ok(())
    }

    fn tar(&self, action: &str, zipflag: Option<&str>) -> Command {
        let mut cmd = Command::new(tool("tar"));
        cmd.arg(action).arg("-C").arg(&self.dest);
        if let Some(flag) = zipflag {
            cmd.arg(flag);
        }
        if !self.extra_opts.is_empty() {
            cmd.arg("--show-transformed-names").args(&self.extra_opts);
        }
        if action != "--list" {
            if let Some(owner) = &self.owner {
                cmd.arg(format!("--owner={owner}"));
            }
            if let Some(group) = &self.group {
                cmd.arg(format!("--group={group}"));
            }
            if self.keep_newer {
                cmd.arg("--keep-newer-files");
            }
        }
        for e in &self.exclude {
            cmd.arg(format!("--exclude={e}"));
        }
        cmd.arg("-f").arg(self.archive()).args(&self.include);
        cmd.current_dir(&self.dest);
        cmd
    }

    fn list(&self, kind: Kind) -> Result<Vec<String>, ModuleError> {
        let (rc, out, err) = match kind {
            Kind::Tar(flag) => output(&mut self.tar("--list", flag))?,
            Kind::Zip => output(Command::new(tool("unzip")).arg("-Z1").arg(self.archive()))?,
        };
        if rc != 0 {
            return Err(ModuleError::Failed(format!(
                "Unable to list files in the archive {}: {}",
                self.archive().display(),
                err.trim()
            )));
        }
        let excluded = |name: &str| {
            self.exclude
                .iter()
                .any(|p| wildmatch::WildMatch::new(p).matches(name.trim_end_matches('/')))
        };
        let included = |name: &str| {
            self.include.is_empty()
                || self
                    .include
                    .iter()
                    .any(|p| wildmatch::WildMatch::new(p).matches(name.trim_end_matches('/')))
        };
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .filter(|l| kind != Kind::Zip || (!excluded(l) && included(l)))
            .map(str::to_string)
            .collect())
    }

    /// What `tar --diff` (or, for zip, size and CRC) finds different: empty when unpacked.
    fn differences(&self, kind: Kind) -> Result<Vec<String>, ModuleError> {
        match kind {
            Kind::Tar(flag) => {
                let (_, out, err) = output(&mut self.tar("--diff", flag))?;
                // SAFETY: getuid cannot fail.
                let root = unsafe { libc::getuid() } == 0;
                let counts = |line: &str| {
                    if line.ends_with(": : Warning: Cannot stat: No such file or directory") {
                        return false;
                    }
                    (root && self.owner.is_none() && line.ends_with(": Uid differs"))
                        || (root && self.group.is_none() && line.ends_with(": Gid differs"))
                        || (self.mode.is_none() && line.ends_with(": Mode differs"))
                        || [
                            ": Mod time differs",
                            ": Warning: Cannot stat: No such file or directory",
                            ": Symlink differs",
                            ": Contents differ",
                            ": Size differs",
                        ]
                        .iter()
                        .any(|s| line.ends_with(s))
                        || line.contains(": Invalid owner")
                        || line.contains(": Invalid group")
                };
                Ok(out
                    .lines()
                    .chain(err.lines())
                    .filter(|l| counts(l))
                    .map(str::to_string)
                    .collect())
            }
            Kind::Zip => self.zip_differences(),
        }
    }

    fn zip_differences(&self) -> Result<Vec<String>, ModuleError> {
        let (rc, out, err) = output(Command::new(tool("unzip")).arg("-lv").arg(self.archive()))?;
        if rc != 0 {
            return Err(ModuleError::Failed(format!(
                "Unable to list files in the archive {}: {}",
                self.archive().display(),
                err.trim()
            )));
        }
        let mut found = Vec::new();
        for line in out.lines() {
            // ` Length  Method    Size  Cmpr    Date    Time   CRC-32   Name`
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 || fields[0].parse::<u64>().is_err() || fields[6].len() != 8 {
                continue;
            }
            let name = line
                .split_whitespace()
                .skip(7)
                .collect::<Vec<_>>()
                .join(" ");
            if !self.state.members.contains(&name) {
                continue;
            }
            let path = self.dest.join(&name);
            if name.ends_with('/') {
                if !path.is_dir() {
                    found.push(format!(
                        "{name}: Warning: Cannot stat: No such file or directory"
                    ));
                }
                continue;
            }
            let Ok(meta) = fs::metadata(&path) else {
                found.push(format!(
                    "{name}: Warning: Cannot stat: No such file or directory"
                ));
                continue;
            };
            let size: u64 = fields[0].parse().unwrap_or(0);
            if meta.len() != size {
                found.push(format!("{name}: Size differs"));
                continue;
            }
            let crc = crc32_file(&path, self.io_buffer_size)
                .map_err(|e| ModuleError::io(format!("read {}", path.display()), e))?;
            if format!("{crc:08x}") != fields[6].to_ascii_lowercase() {
                found.push(format!("{name}: Contents differ"));
            }
        }
        Ok(found)
    }

    fn member_attribute_plans(&self) -> Result<Vec<(PathBuf, Plan)>, ModuleError> {
        if self.owner.is_none()
            && self.group.is_none()
            && self.mode.is_none()
            && self.attributes.is_none()
        {
            return Ok(Vec::new());
        }
        let mut plans = Vec::new();
        for member in &self.state.members {
            let path = self.dest.join(member);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mut plan = Plan::default();
            self.attributes()
                .check(Some(&meta), meta.is_dir(), 0o644, &mut plan)?;
            if let Some(flags) = &self.attributes {
                fsutil::check_file_flags(&path, flags, &mut plan);
            }
            if !plan.is_empty() {
                plans.push((path, plan));
            }
        }
        Ok(plans)
    }
}

/// A tool's full path (as Ansible's `get_bin_path` gives it in `extract_results.cmd`), or its
/// bare name for the error to name.
fn tool(name: &str) -> PathBuf {
    crate::bin_path::find(name).unwrap_or_else(|| PathBuf::from(name))
}

/// `creates` that exists skips the task, as Ansible's action does before the module runs.
pub(crate) fn run(request: &crate::Request) -> Result<crate::Outcome, ModuleError> {
    let creates = request
        .args
        .get("creates")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|c| fsutil::expand_path(Path::new(c)));
    if let Some(creates) = creates.filter(|c| c.exists()) {
        return Ok(crate::Outcome {
            skipped: true,
            msg: Some(format!("skipped, since {} exists", creates.display())),
            ..crate::Outcome::default()
        });
    }
    crate::resource::run::<Unarchive>(request)
}

/// A file's CRC-32, read `buffer_size` bytes at a time (Ansible's `io_buffer_size`).
fn crc32_file(path: &Path, buffer_size: usize) -> std::io::Result<u32> {
    let mut file = fs::File::open(path)?;
    let mut buffer = vec![0u8; buffer_size.max(1)];
    let table = crc_table();
    let mut crc = !0u32;
    loop {
        let got = file.read(&mut buffer)?;
        if got == 0 {
            return Ok(!crc);
        }
        crc = crc_update(&table, crc, &buffer[..got]);
    }
}

/// CRC-32 (IEEE), as zip stores it.
#[cfg(test)]
fn crc32(bytes: &[u8]) -> u32 {
    !crc_update(&crc_table(), !0u32, bytes)
}

fn crc_update(table: &[u32; 256], mut crc: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        crc = table[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    table
}

impl Resource for Unarchive {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.src.as_deref().is_none_or(str::is_empty)
            && self.content_base64.is_none()
            && self.content_file.is_none()
        {
            return Err(ModuleError::Args("missing required arguments: src".into()));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        self.dest = fsutil::expand_path(&self.dest);
        let mut plan = Plan::default();
        if !self.dest.is_dir() {
            return Err(ModuleError::Failed(format!(
                "Destination '{}' is not a directory",
                self.dest.display()
            )));
        }
        self.fetch_archive()?;
        let kind = sniff(self.archive())?;
        self.state.kind = Some(kind);
        self.state.members = self.list(kind)?;
        let differences = self.differences(kind)?;
        if !differences.is_empty() {
            plan.change(
                "unpacked",
                Some(differences.join("\n")),
                Some(format!("{} unpacked", self.archive().display())),
            );
        }
        self.state.attribute_plans = self.member_attribute_plans()?;
        for (path, member) in &self.state.attribute_plans {
            for change in &member.changes {
                plan.change(
                    &format!("{} of {}", change.field, path.display()),
                    change.before.clone(),
                    change.after.clone(),
                );
            }
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let Some(kind) = self.state.kind else {
            return Ok(());
        };
        if plan.has("unpacked") {
            let mut cmd = match kind {
                Kind::Tar(flag) => self.tar("--extract", flag),
                Kind::Zip => {
                    let mut cmd = Command::new(tool("unzip"));
                    cmd.arg("-o").args(&self.extra_opts).arg(self.archive());
                    cmd.args(&self.include);
                    if !self.exclude.is_empty() {
                        cmd.arg("-x").args(&self.exclude);
                    }
                    cmd.arg("-d").arg(&self.dest);
                    cmd
                }
            };
            let line = command_line(&cmd);
            let (rc, out, err) = output(&mut cmd)?;
            let mut results = Map::new();
            results.insert("cmd".into(), Value::Array(line));
            results.insert("rc".into(), rc.into());
            results.insert("out".into(), out.into());
            results.insert("err".into(), err.clone().into());
            if rc != 0 {
                return Err(ModuleError::FailedWith {
                    msg: format!(
                        "Failed to unpack {} to {}",
                        self.archive().display(),
                        self.dest.display()
                    ),
                    values: [("extract_results".to_string(), Value::Object(results))]
                        .into_iter()
                        .collect(),
                });
            }
            self.state.extract = Some(results);
            self.state.attribute_plans = self.member_attribute_plans()?;
        }
        for (path, member) in &self.state.attribute_plans {
            self.attributes().apply(path, member, false)?;
            fsutil::apply_file_flags(path, member)?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("dest".into(), self.dest.display().to_string().into());
        values.insert("src".into(), self.archive().display().to_string().into());
        if let Some(kind) = self.state.kind {
            values.insert("handler".into(), kind.handler().into());
        }
        if let Some(results) = &self.state.extract {
            values.insert("extract_results".into(), Value::Object(results.clone()));
        }
        if self.list_files {
            values.insert(
                "files".into(),
                self.state
                    .members
                    .iter()
                    .cloned()
                    .map(Value::from)
                    .collect(),
            );
        }
        fsutil::attribute_values(&self.dest, values);
        values.insert("state".into(), "directory".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unarchive(args: serde_json::Value, check_mode: bool) -> crate::Outcome {
        let mut request = crate::Request::new("unarchive", args.as_object().unwrap().clone());
        request.check_mode = check_mode;
        crate::run(&request)
    }

    #[test]
    fn a_zip_is_unpacked_once_and_again_after_a_member_changed() {
        let have = |tool: &str| Command::new(tool).arg("-v").output().is_ok();
        if !have("zip") || !have("unzip") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        fs::create_dir_all(src.join("app")).unwrap();
        fs::create_dir_all(&dest).unwrap();
        fs::write(src.join("app/run.sh"), "echo hi\n").unwrap();
        let zipped = Command::new("zip")
            .args(["-qr", "../app.zip", "app"])
            .current_dir(&src)
            .status()
            .unwrap();
        assert!(zipped.success());
        let args = serde_json::json!({
            "src": dir.path().join("app.zip"), "remote_src": true, "dest": dest,
            "list_files": true,
        });
        let first = unarchive(args.clone(), false);
        assert!(first.changed && !first.failed, "{first:?}");
        assert_eq!(first.values["handler"], "ZipArchive");
        assert_eq!(
            first.values["files"],
            serde_json::json!(["app/", "app/run.sh"])
        );
        assert_eq!(
            fs::read_to_string(dest.join("app/run.sh")).unwrap(),
            "echo hi\n"
        );
        assert!(!unarchive(args.clone(), false).changed);
        fs::write(dest.join("app/run.sh"), "echo bye\n").unwrap();
        assert!(unarchive(args.clone(), true).changed);
        assert_eq!(
            fs::read_to_string(dest.join("app/run.sh")).unwrap(),
            "echo bye\n"
        );
        assert!(unarchive(args.clone(), false).changed);
        assert_eq!(
            fs::read_to_string(dest.join("app/run.sh")).unwrap(),
            "echo hi\n"
        );
    }

    #[test]
    fn a_missing_dest_is_refused_in_ansibles_words() {
        let out = unarchive(
            serde_json::json!({"src": "/nonexistent.tgz", "remote_src": true, "dest": "/nonexistent-dest"}),
            false,
        );
        assert!(out.failed);
        assert_eq!(
            out.msg.as_deref(),
            Some("Destination '/nonexistent-dest' is not a directory")
        );
    }

    #[test]
    fn crc32_is_zips() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
