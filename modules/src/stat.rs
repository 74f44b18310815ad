//! `stat`: facts about a path, changing nothing. `ping`'s sibling in spirit.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use md5::Md5;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use crate::args::boolean;
use crate::fsutil::{self, mode_string};
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "stat",
    args: &[
        "path",
        "dest",
        "name",
        "follow",
        "get_checksum",
        "checksum_algorithm",
        "checksum",
        "checksum_algo",
        "get_mime",
        "mime",
        "mime_type",
        "mime-type",
        "get_attributes",
        "attr",
        "attributes",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: PathBuf,
    #[serde(default, deserialize_with = "boolean")]
    follow: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    get_checksum: bool,
    #[serde(default = "sha1", alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: String,
    /// `mimetype` and `charset`, from `file --mime-type --mime-encoding`.
    #[serde(
        default = "crate::args::yes",
        deserialize_with = "boolean",
        alias = "mime",
        alias = "mime_type",
        alias = "mime-type"
    )]
    get_mime: bool,
    /// `version`, `attributes` and `attr_flags`, from `lsattr -vd`.
    #[serde(
        default = "crate::args::yes",
        deserialize_with = "boolean",
        alias = "attr",
        alias = "attributes"
    )]
    get_attributes: bool,
}

fn sha1() -> String {
    "sha1".into()
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let mut args: Args = parse_args("stat", &request.args)?;
    args.path = crate::fsutil::expand_path(&args.path);
    let meta = if args.follow {
        fs::metadata(&args.path)
    } else {
        fs::symlink_metadata(&args.path)
    };
    let mut stat = Map::new();
    let Ok(meta) = meta else {
        stat.insert("exists".into(), false.into());
        let mut values = Map::new();
        values.insert("stat".into(), Value::Object(stat));
        return Ok(Outcome {
            values,
            ..Outcome::default()
        });
    };
    let ft = meta.file_type();
    let mode = meta.mode();
    let bit = |b: u32| Value::Bool(mode & b != 0);
    let entries: Vec<(&str, Value)> = vec![
        ("exists", true.into()),
        ("path", args.path.display().to_string().into()),
        ("mode", mode_string(mode).into()),
        ("isdir", ft.is_dir().into()),
        ("isreg", ft.is_file().into()),
        ("islnk", ft.is_symlink().into()),
        ("isblk", ft.is_block_device().into()),
        ("ischr", ft.is_char_device().into()),
        ("isfifo", ft.is_fifo().into()),
        ("issock", ft.is_socket().into()),
        ("uid", meta.uid().into()),
        ("gid", meta.gid().into()),
        ("pw_name", fsutil::user_name(meta.uid()).into()),
        ("gr_name", fsutil::group_name(meta.gid()).into()),
        ("size", meta.len().into()),
        ("block_size", meta.blksize().into()),
        ("blocks", meta.blocks().into()),
        ("device_type", meta.rdev().into()),
        ("inode", meta.ino().into()),
        ("dev", meta.dev().into()),
        ("nlink", meta.nlink().into()),
        (
            "mtime",
            (meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9).into(),
        ),
        (
            "atime",
            (meta.atime() as f64 + meta.atime_nsec() as f64 / 1e9).into(),
        ),
        (
            "ctime",
            (meta.ctime() as f64 + meta.ctime_nsec() as f64 / 1e9).into(),
        ),
        ("rusr", bit(0o400)),
        ("wusr", bit(0o200)),
        ("xusr", bit(0o100)),
        ("rgrp", bit(0o040)),
        ("wgrp", bit(0o020)),
        ("xgrp", bit(0o010)),
        ("roth", bit(0o004)),
        ("woth", bit(0o002)),
        ("xoth", bit(0o001)),
        ("isuid", bit(0o4000)),
        ("isgid", bit(0o2000)),
    ];
    for (k, v) in entries {
        stat.insert(k.into(), v);
    }
    for (key, how) in [
        ("readable", libc::R_OK),
        ("writeable", libc::W_OK),
        ("executable", libc::X_OK),
    ] {
        stat.insert(key.into(), access(&args.path, how).into());
    }
    if ft.is_symlink() {
        if let Ok(target) = fs::read_link(&args.path) {
            stat.insert("lnk_target".into(), target.display().to_string().into());
        }
        if let Ok(source) = fs::canonicalize(&args.path) {
            stat.insert("lnk_source".into(), source.display().to_string().into());
        }
    }
    if args.get_checksum && ft.is_file() && access(&args.path, libc::R_OK) {
        let checksum = checksum(&args.path, &args.checksum_algorithm)?;
        stat.insert("checksum".into(), checksum.into());
    }
    if args.get_mime {
        let (mimetype, charset) = mime(&args.path).unwrap_or(("unknown".into(), "unknown".into()));
        stat.insert("mimetype".into(), mimetype.into());
        stat.insert("charset".into(), charset.into());
    }
    if args.get_attributes {
        let (version, flags) = match lsattr(&args.path) {
            Some((v, f)) => (Value::String(v), f),
            None => (Value::Null, String::new()),
        };
        stat.insert("version".into(), version);
        stat.insert("attributes".into(), attribute_names(&flags).into());
        stat.insert("attr_flags".into(), flags.into());
    }
    let mut values = Map::new();
    values.insert("stat".into(), Value::Object(stat));
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// `os.access`: whether this process may read, write or run the path.
fn access(path: &std::path::Path, how: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), how) == 0 }
}

/// A program's standard output, when it ran and succeeded.
fn output_of(program: &str, args: &[&std::ffi::OsStr]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `file --mime-type --mime-encoding PATH` → (mimetype, charset), as Ansible's stat reads it.
fn mime(path: &std::path::Path) -> Option<(String, String)> {
    let out = output_of(
        "file",
        &[
            "--mime-type".as_ref(),
            "--mime-encoding".as_ref(),
            path.as_os_str(),
        ],
    )?;
    parse_mime(&out)
}

fn parse_mime(out: &str) -> Option<(String, String)> {
    let (_, tail) = out.rsplit_once(':')?;
    let (mimetype, charset) = tail.split_once(';')?;
    let (_, charset) = charset.split_once('=')?;
    Some((mimetype.trim().to_string(), charset.trim().to_string()))
}

/// `lsattr -vd PATH` → (version, flags without dashes).
fn lsattr(path: &std::path::Path) -> Option<(String, String)> {
    let out = output_of("lsattr", &["-vd".as_ref(), path.as_os_str()])?;
    let mut words = out.split_whitespace();
    let version = words.next()?.to_string();
    let flags = words.next()?.replace('-', "");
    Some((version, flags))
}

/// Ansible's names for `lsattr` flags.
fn attribute_names(flags: &str) -> Vec<&'static str> {
    flags
        .chars()
        .filter_map(|c| {
            Some(match c {
                'A' => "noatime",
                'a' => "append",
                'c' => "compressed",
                'C' => "nocow",
                'd' => "nodump",
                'D' => "dirsync",
                'e' => "extents",
                'E' => "encrypted",
                'h' => "blocksize",
                'i' => "immutable",
                'I' => "indexed",
                'j' => "journalled",
                'N' => "inline",
                's' => "zero",
                'S' => "synchronous",
                't' => "notail",
                'T' => "blockroot",
                'u' => "undelete",
                'X' => "compressedraw",
                'Z' => "compresseddirty",
                _ => return None,
            })
        })
        .collect()
}

pub(crate) fn checksum(path: &std::path::Path, algorithm: &str) -> Result<String, ModuleError> {
    match algorithm {
        "sha1" => fsutil::hash_file::<Sha1>(path),
        "md5" => fsutil::hash_file::<Md5>(path),
        "sha224" => fsutil::hash_file::<Sha224>(path),
        "sha256" => fsutil::hash_file::<Sha256>(path),
        "sha384" => fsutil::hash_file::<Sha384>(path),
        "sha512" => fsutil::hash_file::<Sha512>(path),
        other => Err(ModuleError::Args(format!(
            "stat: checksum_algorithm {other:?} is not one of md5, sha1, sha224, sha256, sha384, sha512"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_and_lsattr_output() {
        assert_eq!(
            parse_mime("/etc/x: text/plain; charset=us-ascii\n"),
            Some(("text/plain".into(), "us-ascii".into()))
        );
        assert_eq!(parse_mime("garbage"), None);
        assert_eq!(attribute_names("ei"), vec!["extents", "immutable"]);
    }
}
