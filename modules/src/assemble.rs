//! `assemble`: one file made of the fragments in a folder on the host, taken in sorted name
//! order as Ansible takes them, with an optional delimiter between them. The result is written
//! through `copy`'s writer (diff, attributes, backup, validation, atomic write).

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::boolean;
use crate::copy::{Copy, FileAttrs};
use crate::fsutil;
use crate::pyre::{Flags, Pattern};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "assemble",
    args: &[
        "src",
        "dest",
        "delimiter",
        "regexp",
        "ignore_hidden",
        "remote_src",
        "backup",
        "validate",
        "owner",
        "group",
        "mode",
        "decrypt",
        "unsafe_writes",
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
pub(crate) struct Assemble {
    src: PathBuf,
    dest: PathBuf,
    delimiter: Option<String>,
    regexp: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    ignore_hidden: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    remote_src: bool,
    /// For fragments on the controller (Ansible's action plugin decrypts vaulted ones). On the
    /// host, where settle assembles, Ansible's module takes the fragments as they are.
    #[serde(
        default = "crate::args::yes",
        rename = "decrypt",
        deserialize_with = "boolean"
    )]
    _decrypt: bool,
    #[serde(flatten)]
    attrs: FileAttrs,
    #[serde(skip)]
    writer: Option<Copy>,
    #[serde(skip)]
    md5sum: String,
}

/// Python's `codecs.escape_decode`: `\n`, `\t`, `\\`, `\xNN`, octal escapes; others kept.
fn escape_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'\n' => {}
            b'x' => {
                let hex = bytes
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                let mut n = 0;
                while n < 2 && i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                    value = value * 8 + u32::from(bytes[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((value & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// How fragments are joined into one file.
#[derive(Debug, Default)]
pub struct Fragments<'a> {
    /// Written between fragments, after Python's `codecs.escape_decode`.
    pub delimiter: Option<&'a str>,
    /// Only fragments whose name this Python pattern finds something in.
    pub regexp: Option<&'a str>,
    /// Skips fragments whose name starts with a dot.
    pub ignore_hidden: bool,
    /// A newline after the delimiter even when it ends in one: Ansible's action plugin (fragments
    /// on the controller) does so, its module (fragments on the host) does not.
    pub always_newline_after_delimiter: bool,
}

/// The fragments in `src` (regular files, in sorted name order) joined as Ansible joins them:
/// a newline after a fragment that lacks one, the delimiter between fragments. `read` gives a
/// fragment's bytes (the controller decrypts vaulted ones there).
pub fn assemble_fragments(
    src: &Path,
    how: &Fragments,
    read: &dyn Fn(&Path) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    let regexp = match how.regexp {
        Some(r) => Some(
            Pattern::compile(r, Flags::default())
                .map_err(|e| format!("Invalid Regexp ({e}) in \"{r}\""))?,
        ),
        None => None,
    };
    let mut names: Vec<String> = std::fs::read_dir(src)
        .map_err(|e| format!("read {}: {e}", src.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let delimiter = how.delimiter.map(escape_decode);
    let mut out = Vec::new();
    let mut delimit = false;
    let mut add_newline = false;
    for name in names {
        if let Some(r) = &regexp
            && !r.is_match(&name)?
        {
            continue;
        }
        let fragment = src.join(&name);
        if !fragment.is_file() || (how.ignore_hidden && name.starts_with('.')) {
            continue;
        }
        let content = read(&fragment)?;
        if add_newline {
            out.push(b'\n');
        }
        if delimit && let Some(d) = delimiter.as_ref().filter(|d| !d.is_empty()) {
            out.extend_from_slice(d);
            if how.always_newline_after_delimiter || d.last() != Some(&b'\n') {
                out.push(b'\n');
            }
        }
        out.extend_from_slice(&content);
        delimit = true;
        add_newline = !content.ends_with(b"\n");
    }
    Ok(out)
}

impl Assemble {
    fn assemble(&self) -> Result<Vec<u8>, ModuleError> {
        let src = self.src.display();
        if !self.src.exists() {
            return Err(ModuleError::Failed(format!(
                "Source ({src}) does not exist"
            )));
        }
        if !self.src.is_dir() {
            return Err(ModuleError::Failed(format!(
                "Source ({src}) is not a directory"
            )));
        }
        let how = Fragments {
            delimiter: self.delimiter.as_deref(),
            regexp: self.regexp.as_deref(),
            ignore_hidden: self.ignore_hidden,
            always_newline_after_delimiter: false,
        };
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
        assemble_fragments(&self.src, &how, &read).map_err(ModuleError::Failed)
    }
}

impl Resource for Assemble {
    fn validate(&self) -> Result<(), ModuleError> {
        if !self.remote_src {
            return Err(ModuleError::Args(
                "assemble: remote_src=false (fragments on the controller) is not supported by settle yet".into(),
            ));
        }
        if let Some(v) = &self.attrs.validate
            && !v.contains("%s")
        {
            return Err(ModuleError::Failed(format!(
                "validate must contain %s: {v}"
            )));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.src = fsutil::expand_path(&self.src);
        self.dest = fsutil::expand_path(&self.dest);
        let bytes = self.assemble()?;
        self.md5sum = Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut writer =
            Copy::of_content(self.dest.clone(), bytes, std::mem::take(&mut self.attrs));
        let plan = writer.check(want_diff)?;
        self.writer = Some(writer);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        match self.writer.as_mut() {
            Some(w) => w.apply(plan),
            None => Ok(()),
        }
    }

    fn values(&self, values: &mut Map<String, Value>) {
        if let Some(w) = &self.writer {
            w.values(values);
        }
        values.insert("src".into(), self.src.display().to_string().into());
        values.insert("dest".into(), self.dest.display().to_string().into());
        values.insert("md5sum".into(), self.md5sum.clone().into());
        values.insert("msg".into(), "OK".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_in_order_with_delimiters() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("10-b"), "b").unwrap();
        std::fs::write(dir.path().join("01-a"), "a\n").unwrap();
        std::fs::write(dir.path().join(".hidden"), "h\n").unwrap();
        std::fs::write(dir.path().join("20-c.skip"), "c\n").unwrap();
        let a: Assemble = serde_json::from_value(serde_json::json!({
            "src": dir.path(), "dest": "/x", "delimiter": "### \\x41", "regexp": "^[0-9.]", "ignore_hidden": true
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(a.assemble().unwrap()).unwrap(),
            "a\n### A\nb\n### A\nc\n"
        );
        let plain: Assemble =
            serde_json::from_value(serde_json::json!({"src": dir.path(), "dest": "/x"})).unwrap();
        assert_eq!(
            String::from_utf8(plain.assemble().unwrap()).unwrap(),
            "h\na\nb\nc\n"
        );
    }

    #[test]
    fn decrypt_is_accepted_and_fragments_read_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "$ANSIBLE_VAULT;1.1;AES256\n").unwrap();
        let a: Assemble = serde_json::from_value(
            serde_json::json!({"src": dir.path(), "dest": "/x", "decrypt": "yes"}),
        )
        .unwrap();
        assert_eq!(a.assemble().unwrap(), b"$ANSIBLE_VAULT;1.1;AES256\n");
        assert!(SPEC.args.contains(&"decrypt") && SPEC.args.contains(&"unsafe_writes"));
    }
}
