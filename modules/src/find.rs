//! `find`: the files under some folders that pass Ansible's filters (name patterns, excludes,
//! content, type, age, size, mode), walked in the order Python's `os.walk` walks them (each
//! folder's entries in directory order, files before folders, depth first). Changes nothing.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean};
use crate::fsutil::{self, mode_string};
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "find",
    args: &[
        "paths",
        "path",
        "name",
        "patterns",
        "pattern",
        "excludes",
        "exclude",
        "contains",
        "read_whole_file",
        "file_type",
        "age",
        "age_stamp",
        "size",
        "recurse",
        "hidden",
        "follow",
        "get_checksum",
        "checksum_algorithm",
        "checksum",
        "checksum_algo",
        "use_regex",
        "depth",
        "mode",
        "exact_mode",
        "encoding",
        "limit",
    ],
    unsupported: &[],
    free_form: false,
};

/// A list argument as Ansible takes it: a list, or one text split on commas.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum List {
    Many(Vec<String>),
    One(String),
}

impl List {
    pub(crate) fn items(&self) -> Vec<String> {
        match self {
            List::Many(l) => l.clone(),
            List::One(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum FileType {
    #[default]
    File,
    Directory,
    Link,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum AgeStamp {
    Atime,
    Ctime,
    #[default]
    Mtime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "path", alias = "name")]
    paths: List,
    #[serde(alias = "pattern")]
    patterns: Option<List>,
    #[serde(alias = "exclude")]
    excludes: Option<List>,
    contains: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    read_whole_file: bool,
    #[serde(default)]
    file_type: FileType,
    #[serde(default, deserialize_with = "crate::args::text")]
    age: Option<String>,
    #[serde(default)]
    age_stamp: AgeStamp,
    #[serde(default, deserialize_with = "crate::args::text")]
    size: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    recurse: bool,
    #[serde(default, deserialize_with = "boolean")]
    hidden: bool,
    #[serde(default, deserialize_with = "boolean")]
    follow: bool,
    #[serde(default, deserialize_with = "boolean")]
    get_checksum: bool,
    #[serde(default = "sha1", alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: String,
    #[serde(default, deserialize_with = "boolean")]
    use_regex: bool,
    depth: Option<i64>,
    mode: Option<Mode>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    exact_mode: bool,
    encoding: Option<String>,
    limit: Option<i64>,
}

fn sha1() -> String {
    "sha1".into()
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`, matched against the whole name.
pub(crate) fn glob_regex(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^(?s:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                re.push_str(".*");
            }
            '?' => re.push('.'),
            '[' => {
                let mut j = i;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    re.push_str("\\[");
                } else {
                    let mut set: String = chars[i..j].iter().collect();
                    i = j + 1;
                    set = set.replace('\\', "\\\\");
                    if let Some(rest) = set.strip_prefix('!') {
                        set = format!("^{rest}");
                    } else if set.starts_with('^') {
                        set = format!("\\{set}");
                    }
                    set = set.replace('[', "\\[").replace("&&", "\\&\\&");
                    re.push('[');
                    re.push_str(&set);
                    re.push(']');
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push_str(")$");
    Regex::new(&re).map_err(|e| e.to_string())
}

/// Python's `re.match`: the pattern must match at the start.
fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})")).map_err(|e| e.to_string())
}

struct Filters {
    patterns: Vec<Regex>,
    excludes: Vec<Regex>,
    contains: Option<Regex>,
    age: Option<i64>,
    size: Option<i64>,
    mode: Option<u32>,
}

impl Filters {
    fn names(&self, name: &str) -> bool {
        if !self.patterns.iter().any(|p| p.is_match(name)) {
            return false;
        }
        !self.excludes.iter().any(|e| e.is_match(name))
    }
}

fn with_unit(text: &str, pattern: &str, units: &[(&str, i64)]) -> Option<i64> {
    let re = Regex::new(pattern).ok()?;
    let lower = text.to_lowercase();
    let caps = re.captures(&lower)?;
    let number: i64 = caps.get(1)?.as_str().parse().ok()?;
    let unit = caps.get(2).map_or("", |m| m.as_str());
    let factor = units
        .iter()
        .find(|(u, _)| *u == unit)
        .map_or(1, |(_, f)| *f);
    number.checked_mul(factor)
}

/// `os.path.normpath` for absolute and relative POSIX paths.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if !parts.is_empty() && parts.last() != Some(&"..") => {
                parts.pop();
            }
            ".." if !initial.is_empty() => {}
            other => parts.push(other),
        }
    }
    let joined = format!("{initial}{}", parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn seconds(t: i64, nsec: i64) -> f64 {
    t as f64 + nsec as f64 / 1e9
}

fn statinfo(path: &str, meta: &Metadata) -> Map<String, Value> {
    let ft = meta.file_type();
    let mode = meta.mode();
    let bit = |b: u32| Value::Bool(mode & b != 0);
    let mut r = Map::new();
    let entries: Vec<(&str, Value)> = vec![
        ("path", path.into()),
        ("mode", mode_string(mode).into()),
        ("isdir", ft.is_dir().into()),
        ("ischr", ft.is_char_device().into()),
        ("isblk", ft.is_block_device().into()),
        ("isreg", ft.is_file().into()),
        ("isfifo", ft.is_fifo().into()),
        ("islnk", ft.is_symlink().into()),
        ("issock", ft.is_socket().into()),
        ("uid", meta.uid().into()),
        ("gid", meta.gid().into()),
        ("size", meta.len().into()),
        ("inode", meta.ino().into()),
        ("dev", meta.dev().into()),
        ("nlink", meta.nlink().into()),
        ("atime", seconds(meta.atime(), meta.atime_nsec()).into()),
        ("mtime", seconds(meta.mtime(), meta.mtime_nsec()).into()),
        ("ctime", seconds(meta.ctime(), meta.ctime_nsec()).into()),
        ("gr_name", fsutil::group_name(meta.gid()).into()),
        ("pw_name", fsutil::user_name(meta.uid()).into()),
        ("wusr", bit(0o200)),
        ("rusr", bit(0o400)),
        ("xusr", bit(0o100)),
        ("wgrp", bit(0o020)),
        ("rgrp", bit(0o040)),
        ("xgrp", bit(0o010)),
        ("woth", bit(0o002)),
        ("roth", bit(0o004)),
        ("xoth", bit(0o001)),
        ("isuid", bit(0o4000)),
        ("isgid", bit(0o2000)),
    ];
    for (k, v) in entries {
        r.insert(k.into(), v);
    }
    r
}

/// Whether a file has a line that starts with a match (or, reading the whole file, any match),
/// the file read in `encoding` (a Python codec name; none: UTF-8, the host's default).
fn content_matches(
    path: &Path,
    re: &Regex,
    whole: bool,
    encoding: Option<&str>,
) -> Result<bool, ModuleError> {
    let Ok(bytes) = fs::read(path) else {
        return Ok(false);
    };
    let text = decode(&bytes, encoding.unwrap_or("utf-8"))?.ok_or_else(|| {
        let encoding = encoding
            .unwrap_or(r#"None (default determined by the Python built-in function "open")"#);
        ModuleError::Failed(format!(
            "Failed to read the file {} due to an encoding error. current encoding: {encoding}",
            path.display()
        ))
    })?;
    if whole {
        return Ok(python_finds(re, &text, false));
    }
    Ok(text
        .split_inclusive('\n')
        .any(|line| python_finds(re, line, true)))
}

/// Bytes as Python's codec `encoding` reads them strictly: `None` when they are not valid in
/// it; an error, in Python's words, when there is no such codec. Python's names that the web's
/// encodings (`encoding_rs`) read differently are done here: `latin-1` is ISO 8859-1 (not
/// windows-1252), `ascii` is 7-bit, and `utf-16`/`utf-32` follow a byte order mark.
fn decode(bytes: &[u8], encoding: &str) -> Result<Option<String>, ModuleError> {
    let name = encoding.trim().to_ascii_lowercase().replace('_', "-");
    match name.as_str() {
        "utf-8" | "utf8" | "u8" => return Ok(String::from_utf8(bytes.to_vec()).ok()),
        "ascii" | "us-ascii" | "646" => {
            return Ok(bytes
                .is_ascii()
                .then(|| String::from_utf8_lossy(bytes).into_owned()));
        }
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "8859" | "cp819" => {
            return Ok(Some(bytes.iter().map(|b| char::from(*b)).collect()));
        }
        _ => {}
    }
    let label = match name.as_str() {
        "utf-16" => match bytes {
            [0xfe, 0xff, ..] => "utf-16be",
            _ => "utf-16le",
        },
        "cp936" | "936" | "ms936" | "gb2312" => "gbk",
        other => other,
    };
    let Some(codec) = encoding_rs::Encoding::for_label(label.as_bytes()) else {
        return Err(ModuleError::Failed(format!("unknown encoding: {encoding}")));
    };
    // Python's `utf-16` reads the byte order mark; its other codecs keep one as text.
    let body = match (name.as_str(), bytes) {
        ("utf-16", [0xff, 0xfe, rest @ ..] | [0xfe, 0xff, rest @ ..]) => rest,
        _ => bytes,
    };
    Ok(codec
        .decode_without_bom_handling_and_without_replacement(body)
        .map(|t| t.into_owned()))
}

/// Python's `re.search` (or, `at_start`, `re.match`): its `$` also matches just before a final
/// newline, where Rust's matches only at the very end; so the text without that newline is
/// tried too.
fn python_finds(re: &Regex, text: &str, at_start: bool) -> bool {
    let found = |t: &str| re.find(t).is_some_and(|m| !at_start || m.start() == 0);
    found(text) || text.strip_suffix('\n').is_some_and(found)
}

struct Walk<'a> {
    args: &'a Args,
    filters: Filters,
    now: f64,
    files: Vec<Value>,
    examined: usize,
    skipped: Map<String, Value>,
    limit_reached: bool,
}

impl Walk<'_> {
    fn limit(&self) -> bool {
        self.args
            .limit
            .is_some_and(|l| self.files.len() as i64 == l)
    }

    fn age_ok(&self, meta: &Metadata) -> bool {
        let Some(age) = self.filters.age else {
            return true;
        };
        let stamp = match self.args.age_stamp {
            AgeStamp::Atime => seconds(meta.atime(), meta.atime_nsec()),
            AgeStamp::Ctime => seconds(meta.ctime(), meta.ctime_nsec()),
            AgeStamp::Mtime => seconds(meta.mtime(), meta.mtime_nsec()),
        };
        let elapsed = self.now - stamp;
        if age >= 0 {
            elapsed >= age as f64
        } else {
            elapsed <= age.unsigned_abs() as f64
        }
    }

    fn size_ok(&self, meta: &Metadata) -> bool {
        match self.filters.size {
            None => true,
            Some(s) if s >= 0 => meta.len() >= s as u64,
            Some(s) => meta.len() <= s.unsigned_abs(),
        }
    }

    fn mode_ok(&self, meta: &Metadata) -> bool {
        match self.filters.mode {
            None => true,
            Some(m) if self.args.exact_mode => meta.mode() & 0o7777 == m,
            Some(m) => meta.mode() & 0o7777 & m != 0,
        }
    }

    fn checksum(&self, path: &str, r: &mut Map<String, Value>) -> Result<(), ModuleError> {
        let sum = crate::stat::checksum(Path::new(path), &self.args.checksum_algorithm)?;
        r.insert("checksum".into(), sum.into());
        Ok(())
    }

    /// One folder of `os.walk(top)`; returns the sub-folders to walk next.
    fn folder(&mut self, top: &str, root: &str, first: bool) -> Result<(), ModuleError> {
        let entries = match fs::read_dir(root) {
            Ok(e) => e,
            Err(e) => {
                if first {
                    return Err(ModuleError::io(root.to_string(), e));
                }
                self.skipped.insert(root.into(), e.to_string().into());
                return Ok(());
            }
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // os.walk's is_dir() follows symlinks.
            let is_dir = fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            if is_dir {
                dirs.push(name)
            } else {
                files.push(name)
            }
        }
        self.examined += files.len() + dirs.len();
        let wpath = format!("{}/", top.trim_end_matches('/'));
        let mut descend = true;
        for name in files.iter().chain(dirs.iter()) {
            let fsname = normpath(&format!("{}/{name}", root.trim_end_matches('/')));
            if let Some(limit) = self.args.depth.filter(|d| *d != 0) {
                let depth =
                    fsname.matches('/').count() as i64 - wpath.matches('/').count() as i64 + 1;
                if depth > limit {
                    descend = false;
                    continue;
                }
            }
            if name.starts_with('.') && !self.args.hidden {
                continue;
            }
            let meta = match fs::symlink_metadata(&fsname) {
                Ok(m) => m,
                Err(e) => {
                    self.skipped.insert(fsname.clone(), e.to_string().into());
                    continue;
                }
            };
            let ft = meta.file_type();
            let common = self.filters.names(name) && self.age_ok(&meta) && self.mode_ok(&meta);
            let wanted = match self.args.file_type {
                FileType::Any => common && (!ft.is_file() || self.size_ok(&meta)),
                FileType::Directory => ft.is_dir() && common,
                FileType::Link => ft.is_symlink() && common,
                FileType::File => {
                    ft.is_file()
                        && common
                        && self.size_ok(&meta)
                        && match &self.filters.contains {
                            Some(re) => content_matches(
                                Path::new(&fsname),
                                re,
                                self.args.read_whole_file,
                                self.args.encoding.as_deref(),
                            )?,
                            None => true,
                        }
                }
            };
            if wanted {
                let mut r = statinfo(&fsname, &meta);
                if ft.is_file() && self.args.get_checksum {
                    self.checksum(&fsname, &mut r)?;
                }
                self.files.push(Value::Object(r));
            }
            if self.limit() {
                self.limit_reached = true;
                return Ok(());
            }
        }
        if !self.args.recurse || !descend {
            return Ok(());
        }
        for dir in dirs {
            let sub = format!("{}/{dir}", root.trim_end_matches('/'));
            let is_link = fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink());
            if self.args.follow || !is_link {
                self.folder(top, &sub, false)?;
                if self.limit_reached {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("find", &request.args)?;
    let bad = |what: &str, e: String| ModuleError::Args(format!("find: {what}: {e}"));
    let mut patterns = args.patterns.as_ref().map(List::items).unwrap_or_default();
    if patterns.is_empty() {
        patterns.push(if args.use_regex { ".*" } else { "*" }.into());
    }
    let compile = |p: &String| {
        if args.use_regex {
            anchored(p)
        } else {
            glob_regex(p)
        }
    };
    let patterns = patterns
        .iter()
        .map(compile)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("patterns", e))?;
    let excludes = args
        .excludes
        .as_ref()
        .map(List::items)
        .unwrap_or_default()
        .iter()
        .map(compile)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("excludes", e))?;
    let contains = match &args.contains {
        Some(c) => Some(Regex::new(c).map_err(|e| bad("contains", e.to_string()))?),
        None => None,
    };
    let age = match &args.age {
        None => None,
        Some(a) => Some(
            with_unit(
                a,
                r"^(-?\d+)(s|m|h|d|w)?$",
                &[
                    ("s", 1),
                    ("m", 60),
                    ("h", 3600),
                    ("d", 86400),
                    ("w", 604_800),
                ],
            )
            .ok_or_else(|| ModuleError::Failed("failed to process age".into()))?,
        ),
    };
    let size = match &args.size {
        None => None,
        Some(s) => Some(
            with_unit(
                s,
                r"^(-?\d+)(b|k|m|g|t)?$",
                &[
                    ("b", 1),
                    ("k", 1024),
                    ("m", 1 << 20),
                    ("g", 1 << 30),
                    ("t", 1 << 40),
                ],
            )
            .ok_or_else(|| ModuleError::Failed("failed to process size".into()))?,
        ),
    };
    if let Some(l) = args.limit
        && l <= 0
    {
        return Err(ModuleError::Failed(format!(
            "limit cannot be {l} (use None for unlimited)"
        )));
    }
    let mode = match &args.mode {
        None => None,
        Some(m) => Some(m.resolve(0, false).map_err(|e| bad("mode", e))?),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut walk = Walk {
        args: &args,
        filters: Filters {
            patterns,
            excludes,
            contains,
            age,
            size,
            mode,
        },
        now,
        files: Vec::new(),
        examined: 0,
        skipped: Map::new(),
        limit_reached: false,
    };
    let mut warnings = Vec::new();
    for top in args.paths.items() {
        // `elements='path'` in Ansible: `~` and `$VAR` expanded on the host.
        let top = crate::fsutil::expand_path(Path::new(&top))
            .display()
            .to_string();
        let outcome = if Path::new(&top).is_dir() {
            walk.folder(&top, &top, true)
        } else {
            Err(ModuleError::Failed(format!("'{top}' is not a directory")))
        };
        if let Err(e) = outcome {
            let why = match e {
                ModuleError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            warnings.push(Value::from(format!(
                "Skipped '{top}' path due to this access issue: {why}\n"
            )));
            walk.skipped.insert(top.clone(), why.into());
        }
        if walk.limit_reached {
            break;
        }
    }
    let msg = if !warnings.is_empty() {
        "Not all paths examined, check warnings for details"
    } else if walk.limit_reached {
        "Limit of matches reached"
    } else {
        "All paths examined"
    };
    let mut values = Map::new();
    values.insert("matched".into(), walk.files.len().into());
    values.insert("files".into(), Value::Array(walk.files));
    values.insert("examined".into(), walk.examined.into());
    values.insert("msg".into(), msg.into());
    values.insert("skipped_paths".into(), Value::Object(walk.skipped));
    if !warnings.is_empty() {
        values.insert("warnings".into(), Value::Array(warnings));
    }
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_fnmatch() {
        let g = glob_regex("*.t[!a]t").unwrap();
        assert!(g.is_match("a.txt") && !g.is_match("a.tat") && !g.is_match("a.txt.bak"));
        assert!(glob_regex("a?c").unwrap().is_match("abc"));
        assert!(glob_regex("[ab").unwrap().is_match("[ab"));
    }

    #[test]
    fn normpath_as_python() {
        assert_eq!(normpath("/tmp//x/./y/"), "/tmp/x/y");
        assert_eq!(normpath("a/../b"), "b");
    }

    #[test]
    fn finds_by_pattern_content_and_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
        fs::write(dir.path().join(".h.txt"), "hello\n").unwrap();
        fs::write(dir.path().join("sub/b.log"), "no\n").unwrap();
        fs::write(dir.path().join("sub/deeper/c.txt"), "x\nhello\n").unwrap();
        let find = |args: serde_json::Value| {
            let request = Request::new("find", args.as_object().unwrap().clone());
            let out = run(&request).unwrap();
            let mut paths: Vec<String> = out.values["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    f["path"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches(&root)
                        .to_string()
                })
                .collect();
            paths.sort();
            paths
        };
        assert_eq!(
            find(serde_json::json!({"paths": root, "patterns": "*.txt,*.log", "recurse": true})),
            ["/a.txt", "/sub/b.log", "/sub/deeper/c.txt"]
        );
        assert_eq!(
            find(
                serde_json::json!({"paths": root, "contains": "hel+o", "recurse": true, "hidden": true})
            ),
            ["/.h.txt", "/a.txt", "/sub/deeper/c.txt"]
        );
        assert_eq!(
            find(
                serde_json::json!({"paths": root, "recurse": true, "depth": 2, "file_type": "any"})
            ),
            ["/a.txt", "/sub", "/sub/b.log", "/sub/deeper"]
        );
        assert_eq!(
            find(
                serde_json::json!({"paths": [root], "use_regex": true, "patterns": ["^a\\.", "b"], "excludes": "b.*", "recurse": true})
            ),
            ["/a.txt"]
        );
    }

    #[test]
    fn dollar_matches_before_a_final_newline_as_in_python() {
        let re = Regex::new("OK$").unwrap();
        assert!(python_finds(&re, "line\nOK\n", false));
        assert!(!python_finds(&re, "OK\nmore\n", false));
        assert!(python_finds(&re, "OK\n", true));
        assert!(!python_finds(
            &Regex::new("KO$").unwrap(),
            "KO\nOK\n",
            false
        ));
    }

    #[test]
    fn contents_are_read_in_pythons_codecs() {
        // 你好 in GBK.
        let gbk = [0xc4, 0xe3, 0xba, 0xc3];
        assert_eq!(decode(&gbk, "gbk").unwrap().as_deref(), Some("你好"));
        assert_eq!(decode(&gbk, "utf-8").unwrap(), None);
        assert_eq!(decode(&[0xe9], "latin-1").unwrap().as_deref(), Some("é"));
        assert_eq!(
            decode(&[0x80], "latin_1").unwrap().as_deref(),
            Some("\u{80}")
        );
        assert_eq!(decode(&[0xe9], "ascii").unwrap(), None);
        let utf16 = [0xff, 0xfe, b'h', 0, b'i', 0];
        assert_eq!(decode(&utf16, "utf-16").unwrap().as_deref(), Some("hi"));
        match decode(b"x", "idontexist") {
            Err(ModuleError::Failed(msg)) => assert_eq!(msg, "unknown encoding: idontexist"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_in_the_wrong_encoding_skips_its_path_in_ansibles_words() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gbk"), [0xc4, 0xe3, 0xba, 0xc3]).unwrap();
        let re = Regex::new("你好").unwrap();
        let path = dir.path().join("a.gbk");
        assert!(content_matches(&path, &re, false, Some("gbk")).unwrap());
        match content_matches(&path, &re, false, None) {
            Err(ModuleError::Failed(msg)) => assert!(
                msg.ends_with(r#"current encoding: None (default determined by the Python built-in function "open")"#),
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
