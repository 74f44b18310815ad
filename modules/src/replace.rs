//! `replace`: every match of a regular expression in a file replaced, as Ansible's `replace`
//! does it (Python's `re.subn` with `MULTILINE`, optionally only between `after` and `before`).
//! The new text goes through `copy`'s writer, so diff, attributes, backup, validation and the
//! atomic write are those of any other file.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::copy::{Copy, FileAttrs};
use crate::fsutil;
use crate::pyre::{self, Pattern};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "replace",
    args: &[
        "path",
        "dest",
        "destfile",
        "name",
        "regexp",
        "replace",
        "after",
        "before",
        "backup",
        "validate",
        "encoding",
        "owner",
        "group",
        "mode",
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

/// A Python pattern with `re.MULTILINE` or `re.DOTALL`.
fn python_regex(pattern: &str, multiline: bool, dotall: bool) -> Result<Pattern, String> {
    let flags = pyre::Flags {
        multiline,
        dotall,
        ..pyre::Flags::default()
    };
    Pattern::compile(pattern, flags)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replace {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: PathBuf,
    regexp: String,
    #[serde(default)]
    replace: String,
    after: Option<String>,
    before: Option<String>,
    #[serde(default = "utf8")]
    encoding: String,
    #[serde(flatten)]
    attrs: FileAttrs,
    #[serde(skip)]
    writer: Option<Copy>,
    #[serde(skip)]
    msg: String,
    #[serde(skip)]
    edited: bool,
}

fn utf8() -> String {
    "utf-8".into()
}

/// The encodings settle reads and writes: UTF-8 (and its ASCII subset) and Latin-1.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    Latin1,
}

impl Encoding {
    fn named(name: &str) -> Option<Encoding> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" | "ascii" | "us-ascii" => Some(Encoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" => Some(Encoding::Latin1),
            _ => None,
        }
    }

    fn decode(self, bytes: Vec<u8>) -> Result<String, Vec<u8>> {
        match self {
            Encoding::Utf8 => String::from_utf8(bytes).map_err(|e| e.into_bytes()),
            Encoding::Latin1 => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        }
    }

    fn encode(self, text: &str) -> Result<Vec<u8>, char> {
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            Encoding::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| c))
                .collect(),
        }
    }
}

impl Replace {
    /// The new text and Ansible's message, or `None` when before/after did not match.
    fn edit(&self, contents: &str) -> Result<Result<(String, usize), String>, ModuleError> {
        let bad = |what: &str, e: String| ModuleError::Args(format!("replace: {what}: {e}"));
        let section_pattern = match (&self.after, &self.before) {
            (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
            (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
            (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
            (None, None) => None,
        };
        let (start, end) = match &section_pattern {
            Some(p) => {
                let re = python_regex(p, false, true).map_err(|e| bad("after/before", e))?;
                let caps = re.captures(contents).map_err(|e| bad("after/before", e))?;
                match caps.and_then(|c| c.name_span("subsection")) {
                    Some(m) => (m.start, m.end),
                    None => {
                        return Ok(Err(format!(
                            "Pattern for before/after params did not match the given file: {p}"
                        )));
                    }
                }
            }
            None => (0, contents.len()),
        };
        let re = python_regex(&self.regexp, true, false).map_err(|e| bad("regexp", e))?;
        // Python's `re.subn` raising `re.error`, as Ansible words it.
        let unable =
            |e: String| ModuleError::Failed(format!("Unable to process replace due to error: {e}"));
        let pieces = pyre::Replacement::parse(&self.replace, &re).map_err(unable)?;
        let section = &contents[start..end];
        let (new_section, count) = pieces.subn(&re, section, 0).map_err(unable)?;
        if count == 0 || new_section == section {
            return Ok(Ok((contents.to_string(), 0)));
        }
        let text = format!("{}{new_section}{}", &contents[..start], &contents[end..]);
        Ok(Ok((text, count)))
    }
}

impl Resource for Replace {
    fn validate(&self) -> Result<(), ModuleError> {
        if Encoding::named(&self.encoding).is_none() {
            return Err(ModuleError::Args(format!(
                "replace: encoding {:?} is not supported by settle (utf-8, ascii, latin-1)",
                self.encoding
            )));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.path = fsutil::expand_path(&self.path);
        let encoding = Encoding::named(&self.encoding).unwrap_or(Encoding::Utf8);
        if self.path.is_dir() {
            return Err(ModuleError::with_rc(
                format!("Path {} is a directory !", self.path.display()),
                256,
            ));
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModuleError::with_rc(
                    format!("Path {} does not exist !", self.path.display()),
                    257,
                ));
            }
            Err(e) => return Err(ModuleError::io(format!("read {}", self.path.display()), e)),
        };
        let contents = encoding.decode(bytes).map_err(|_| {
            ModuleError::Failed(format!(
                "{} is not valid {} text",
                self.path.display(),
                self.encoding
            ))
        })?;
        let (text, count) = match self.edit(&contents)? {
            Ok(done) => done,
            Err(msg) => {
                // Ansible stops here, without looking at owner, group or mode.
                self.msg = msg;
                return Ok(Plan::default());
            }
        };
        self.edited = count > 0;
        let new_bytes = encoding.encode(&text).map_err(|c| {
            ModuleError::Failed(format!(
                "replace: {c:?} cannot be written as {}",
                self.encoding
            ))
        })?;
        let mut writer = Copy::of_content(
            self.path.clone(),
            new_bytes,
            std::mem::take(&mut self.attrs),
        );
        let plan = writer.check(want_diff)?;
        let attrs_changed = plan.changes.iter().any(|c| c.field != "content");
        self.msg = match (self.edited, attrs_changed) {
            (true, true) => {
                format!(
                    "{count} replacements made and ownership, perms or SE linux context changed"
                )
            }
            (true, false) => format!("{count} replacements made"),
            (false, true) => "ownership, perms or SE linux context changed".into(),
            (false, false) => String::new(),
        };
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
        values.insert("msg".into(), self.msg.clone().into());
        values.insert("rc".into(), 0.into());
        if let Some(w) = &self.writer {
            let mut inner = Map::new();
            w.values(&mut inner);
            if let Some(b) = inner.get("backup_file") {
                values.insert("backup_file".into(), b.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(args: serde_json::Value) -> Replace {
        serde_json::from_value(args).unwrap()
    }

    fn edited(args: serde_json::Value, text: &str) -> (String, usize) {
        replace(args).edit(text).unwrap().unwrap()
    }

    #[test]
    fn multiline_with_python_backreferences() {
        let args = serde_json::json!({"path": "/x", "regexp": "^(\\s*)Port (\\d+)$", "replace": "\\1Port \\g<2>0"});
        assert_eq!(
            edited(args, "Port 22\n# Port 23\n  Port 24\n"),
            ("Port 220\n# Port 23\n  Port 240\n".into(), 2)
        );
        let args =
            serde_json::json!({"path": "/x", "regexp": "(?P<k>\\w+)=1", "replace": "\\g<k>=2\\n"});
        assert_eq!(edited(args, "a=1 b=3").0, "a=2\n b=3");
        let args = serde_json::json!({"path": "/x", "regexp": "x\\Z", "replace": "y"});
        assert_eq!(edited(args, "x\nx").0, "x\ny");
    }

    #[test]
    fn only_between_after_and_before() {
        let args = serde_json::json!({"path": "/x", "regexp": "a", "replace": "b", "after": "\\[s\\]", "before": "\\[t\\]"});
        assert_eq!(edited(args, "a\n[s]\na\n[t]\na\n").0, "a\n[s]\nb\n[t]\na\n");
        let args = serde_json::json!({"path": "/x", "regexp": "a", "after": "nothere"});
        assert_eq!(
            replace(args).edit("a").unwrap(),
            Err("Pattern for before/after params did not match the given file: nothere(?P<subsection>.*)".into())
        );
    }

    #[test]
    fn bad_template_is_unable_to_process() {
        let args = serde_json::json!({"path": "/x", "regexp": "\\.", "replace": "\\D"});
        let e = replace(args).edit("a.b").unwrap_err().to_string();
        assert!(
            e.contains("Unable to process replace due to error: bad escape \\D at position 0"),
            "{e}"
        );
    }

    #[test]
    fn bad_templates_fail_as_python_does() {
        let re = python_regex("(a)", true, false).unwrap();
        assert_eq!(
            pyre::Replacement::parse("\\2", &re),
            Err("invalid group reference 2 at position 1".into())
        );
        assert_eq!(
            pyre::Replacement::parse("\\q", &re),
            Err("bad escape \\q at position 0".into())
        );
        assert_eq!(
            pyre::Replacement::parse("\\.\\1", &re),
            Ok(pyre::Replacement(vec![
                pyre::Piece::Text("\\.".into()),
                pyre::Piece::Group(1)
            ]))
        );
    }
}
