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
        "get_attributes",
    ],
    unsupported: &["get_selinux_context"],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: PathBuf,
    #[serde(default, deserialize_with = "boolean")]
    follow: bool,
    #[serde(default = "yes", deserialize_with = "boolean")]
    get_checksum: bool,
    #[serde(default = "sha1", alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: String,
    /// Accepted for compatibility; settle does not report MIME types or attributes.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    get_mime: bool,
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    get_attributes: bool,
}

fn yes() -> bool {
    true
}

fn sha1() -> String {
    "sha1".into()
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("stat", &request.args)?;
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
    if ft.is_symlink() {
        if let Ok(target) = fs::read_link(&args.path) {
            stat.insert("lnk_target".into(), target.display().to_string().into());
        }
        if let Ok(source) = fs::canonicalize(&args.path) {
            stat.insert("lnk_source".into(), source.display().to_string().into());
        }
    }
    if args.get_checksum && ft.is_file() {
        let checksum = checksum(&args.path, &args.checksum_algorithm)?;
        stat.insert("checksum".into(), checksum.into());
    }
    let mut values = Map::new();
    values.insert("stat".into(), Value::Object(stat));
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
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
