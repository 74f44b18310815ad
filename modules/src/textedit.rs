//! `lineinfile` and `blockinfile`: edit part of a text file. Each computes the file's new text
//! and hands it to `copy`'s machinery, so the diff, attributes, backup, validation and atomic
//! write are the same as for any other file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean};
use crate::copy::{Copy, FileAttrs};
use crate::pyre::{Caps, Flags, Pattern};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static LINEINFILE_SPEC: ModuleSpec = ModuleSpec {
    name: "lineinfile",
    args: &[
        "path",
        "dest",
        "destfile",
        "name",
        "line",
        "value",
        "regexp",
        "regex",
        "search_string",
        "state",
        "insertafter",
        "insertbefore",
        "create",
        "backrefs",
        "backup",
        "firstmatch",
        "owner",
        "group",
        "mode",
        "validate",
    ],
    unsupported: &[
        "others",
        "unsafe_writes",
        "attributes",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    free_form: false,
};

pub(crate) static BLOCKINFILE_SPEC: ModuleSpec = ModuleSpec {
    name: "blockinfile",
    args: &[
        "path",
        "dest",
        "destfile",
        "name",
        "block",
        "content",
        "marker",
        "marker_begin",
        "marker_end",
        "state",
        "insertafter",
        "insertbefore",
        "create",
        "backup",
        "owner",
        "group",
        "mode",
        "validate",
        "append_newline",
        "prepend_newline",
    ],
    unsupported: &[
        "unsafe_writes",
        "attributes",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    free_form: false,
};

/// A Python pattern (`re.compile`), with backreferences and lookaround.
fn compile(pattern: &str, what: &str) -> Result<Pattern, ModuleError> {
    Pattern::compile(pattern, Flags::default()).map_err(|e| {
        ModuleError::Args(format!(
            "{what}: invalid regular expression {pattern:?}: {e}"
        ))
    })
}

/// Python's `re.search` on one line; a pattern that gives up (fancy-regex's backtracking
/// limit) fails the task rather than silently not matching.
fn search<'p, 't>(re: &'p Pattern, line: &'t str) -> Result<Option<Caps<'p, 't>>, ModuleError> {
    re.captures(line)
        .map_err(|e| ModuleError::Failed(format!("regular expression failed on {line:?}: {e}")))
}

fn matches(re: &Pattern, line: &str) -> Result<bool, ModuleError> {
    re.is_match(line)
        .map_err(|e| ModuleError::Failed(format!("regular expression failed on {line:?}: {e}")))
}

/// Python's `match.expand`: `\1` and `\g<name>` in `line` with `backrefs`.
fn expand(template: &str, caps: &Caps) -> String {
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            if chars[i + 1].is_ascii_digit() {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                out.push_str(caps.get(digits.parse().unwrap_or(0)).unwrap_or(""));
                i += 1 + digits.len();
                continue;
            }
            if chars[i + 1] == 'g'
                && chars.get(i + 2) == Some(&'<')
                && let Some(end) = chars[i + 3..].iter().position(|c| *c == '>')
            {
                let name: String = chars[i + 3..i + 3 + end].iter().collect();
                let m = match name.parse::<usize>() {
                    Ok(n) => caps.get(n),
                    Err(_) => caps.name(&name),
                };
                out.push_str(m.unwrap_or(""));
                i += 4 + end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The file's text now: `None` when it does not exist.
fn current_text(path: &Path) -> Result<Option<String>, ModuleError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ModuleError::Failed(format!("{} is not a text file", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModuleError::io(format!("read {}", path.display()), e)),
    }
}

/// The text to edit: the file's, or nothing yet when `create` allows it. `None` means there is
/// nothing to do (removing from a file that does not exist).
fn existing_text(
    path: &Path,
    state: Presence,
    create: bool,
    missing: String,
) -> Result<Option<String>, ModuleError> {
    match current_text(path)? {
        Some(t) => Ok(Some(t)),
        None if state == Presence::Absent => Ok(None),
        None if create => Ok(Some(String::new())),
        None => Err(ModuleError::Failed(missing)),
    }
}

/// Plans writing the edited text through `copy`'s writer (diff, attributes, backup, validate).
fn plan_write(
    path: &Path,
    text: String,
    attrs: &mut FileAttrs,
    want_diff: bool,
    create: bool,
) -> Result<(Plan, Copy), ModuleError> {
    let mut writer = Copy::of_content(path.to_path_buf(), text.into_bytes(), std::mem::take(attrs));
    if create {
        writer = writer.making_parents();
    }
    let plan = writer.check(want_diff)?;
    Ok((plan, writer))
}

/// Splits into lines that keep their line endings, as Python's `readlines`.
fn lines_of(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

fn trim_eol(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineInFile {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: PathBuf,
    #[serde(alias = "value")]
    line: Option<String>,
    #[serde(alias = "regex")]
    regexp: Option<String>,
    search_string: Option<String>,
    #[serde(default)]
    state: Presence,
    insertafter: Option<String>,
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    create: bool,
    #[serde(default, deserialize_with = "boolean")]
    backrefs: bool,
    #[serde(default, deserialize_with = "boolean")]
    firstmatch: bool,
    #[serde(flatten)]
    attrs: FileAttrs,
    #[serde(skip)]
    writer: Option<Copy>,
    #[serde(skip)]
    msg: String,
}

impl LineInFile {
    /// The new text, and what was done (`line added`, `line replaced`, `1 line(s) removed`).
    fn edit(&self, text: &str) -> Result<(String, String), ModuleError> {
        let mut lines = lines_of(text);
        let before = lines.len();
        let regexp = self
            .regexp
            .as_deref()
            .map(|r| compile(r, "lineinfile: regexp"))
            .transpose()?;
        if self.state == Presence::Absent {
            let mut kept = Vec::with_capacity(lines.len());
            for l in lines {
                let cur = trim_eol(&l);
                let hit = match (&regexp, &self.search_string, &self.line) {
                    (Some(re), _, _) => matches(re, cur)?,
                    (None, Some(s), _) => cur.contains(s.as_str()),
                    (None, None, Some(line)) => cur == line,
                    _ => false,
                };
                if !hit {
                    kept.push(l);
                }
            }
            let removed = before - kept.len();
            let lines = kept;
            let msg = if removed > 0 {
                format!("{removed} line(s) removed")
            } else {
                String::new()
            };
            return Ok((lines.concat(), msg));
        }
        let line = self.line.clone().ok_or_else(|| {
            ModuleError::Args("lineinfile: line is required with state=present".into())
        })?;
        let anchor = match (&self.insertafter, &self.insertbefore) {
            (Some(a), _) if a != "EOF" && a != "BOF" => {
                Some((compile(a, "lineinfile: insertafter")?, true))
            }
            (None, Some(b)) if b != "BOF" => Some((compile(b, "lineinfile: insertbefore")?, false)),
            _ => None,
        };
        let mut matched: Option<(usize, Option<String>)> = None;
        let mut insert_at: Option<usize> = None;
        let mut exact_line_elsewhere = false;
        for (i, l) in lines.iter().enumerate() {
            let cur = trim_eol(l);
            let found = match (&regexp, &self.search_string) {
                (Some(re), _) => search(re, cur)?.map(|c| Some(expand(&line, &c))),
                (None, Some(s)) => cur.contains(s.as_str()).then_some(None),
                (None, None) => (cur == line).then_some(None),
            };
            if let Some(expanded) = found {
                matched = Some((i, expanded));
                if self.firstmatch {
                    break;
                }
            } else {
                if cur == line {
                    exact_line_elsewhere = true;
                }
                let anchored = match &anchor {
                    Some((re, _)) => matches(re, cur)?,
                    None => false,
                };
                if let Some((_, after)) = &anchor
                    && anchored
                {
                    insert_at = Some(if *after { i + 1 } else { i });
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if let Some((index, expanded)) = matched {
            let new_line = match (self.backrefs, expanded) {
                (true, Some(e)) => e,
                _ => line.clone(),
            };
            let ending = if lines[index].ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            let new_full = format!("{new_line}{ending}");
            if lines[index] != new_full {
                lines[index] = new_full;
                return Ok((lines.concat(), "line replaced".into()));
            }
            return Ok((lines.concat(), String::new()));
        }
        if self.backrefs
            || ((regexp.is_some() || self.search_string.is_some()) && exact_line_elsewhere)
        {
            // With backrefs there is nothing safe to add; a line already present needs nothing.
            return Ok((lines.concat(), String::new()));
        }
        let bof = self.insertbefore.as_deref() == Some("BOF")
            || self.insertafter.as_deref() == Some("BOF");
        let added = format!("{line}\n");
        if bof {
            lines.insert(0, added);
        } else if let Some(at) = insert_at {
            let already = match self.insertafter.is_some() {
                true => lines.get(at).is_some_and(|l| trim_eol(l) == line),
                false => at > 0 && trim_eol(&lines[at - 1]) == line,
            };
            if already {
                return Ok((lines.concat(), String::new()));
            }
            if at > 0 && !lines[at - 1].ends_with('\n') {
                lines[at - 1].push('\n');
            }
            lines.insert(at, added);
        } else {
            if let Some(last) = lines.last_mut()
                && !last.ends_with('\n')
            {
                last.push('\n');
            }
            lines.push(added);
        }
        Ok((lines.concat(), "line added".into()))
    }
}

impl Resource for LineInFile {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.regexp.is_some() && self.search_string.is_some() {
            return Err(ModuleError::Args(
                "lineinfile: regexp and search_string are mutually exclusive".into(),
            ));
        }
        if self.insertafter.is_some() && self.insertbefore.is_some() {
            return Err(ModuleError::Args(
                "lineinfile: insertafter and insertbefore are mutually exclusive".into(),
            ));
        }
        if self.backrefs && self.regexp.is_none() {
            return Err(ModuleError::Args(
                "lineinfile: backrefs needs regexp".into(),
            ));
        }
        if self.state == Presence::Absent
            && self.line.is_none()
            && self.regexp.is_none()
            && self.search_string.is_none()
        {
            return Err(ModuleError::Args(
                "lineinfile: state=absent needs line, regexp or search_string".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let missing = format!("Destination {} does not exist !", self.path.display());
        let Some(text) = existing_text(&self.path, self.state, self.create, missing)? else {
            return Ok(Plan::default());
        };
        let (new_text, msg) = self.edit(&text)?;
        self.msg = msg;
        let (plan, writer) = plan_write(
            &self.path,
            new_text,
            &mut self.attrs,
            want_diff,
            self.create,
        )?;
        self.writer = Some(writer);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        self.writer.as_mut().expect("check ran").apply(plan)
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("msg".into(), self.msg.clone().into());
        // Ansible's lineinfile always returns `backup`: the backup's path, or "".
        let backup = backup_file(self.writer.as_ref()).unwrap_or_else(|| "".into());
        values.insert("backup".into(), backup);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockInFile {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: PathBuf,
    #[serde(default, alias = "content")]
    block: String,
    #[serde(default = "default_marker")]
    marker: String,
    #[serde(default = "begin")]
    marker_begin: String,
    #[serde(default = "end")]
    marker_end: String,
    #[serde(default)]
    state: Presence,
    insertafter: Option<String>,
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    create: bool,
    #[serde(default, deserialize_with = "boolean")]
    append_newline: bool,
    #[serde(default, deserialize_with = "boolean")]
    prepend_newline: bool,
    #[serde(flatten)]
    attrs: FileAttrs,
    #[serde(skip)]
    writer: Option<Copy>,
    #[serde(skip)]
    msg: String,
}

fn default_marker() -> String {
    "# {mark} ANSIBLE MANAGED BLOCK".into()
}

fn begin() -> String {
    "BEGIN".into()
}

fn end() -> String {
    "END".into()
}

impl BlockInFile {
    fn edit(&self, text: &str) -> Result<(String, String), ModuleError> {
        let begin = self.marker.replace("{mark}", &self.marker_begin);
        let end = self.marker.replace("{mark}", &self.marker_end);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let block: Vec<String> = if self.state == Presence::Absent || self.block.is_empty() {
            Vec::new()
        } else {
            let mut b = vec![begin.clone()];
            b.extend(self.block.lines().map(str::to_string));
            b.push(end.clone());
            b
        };
        let n0 = lines.iter().position(|l| *l == begin);
        let n1 = lines.iter().position(|l| *l == end);
        let at = match (n0, n1) {
            (Some(a), Some(b)) => {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                lines.drain(lo..=hi);
                lo
            }
            _ if block.is_empty() => return Ok((text.to_string(), String::new())),
            _ => {
                let last_match =
                    |pattern: &str, what: &str| -> Result<Option<usize>, ModuleError> {
                        let re = compile(pattern, what)?;
                        let mut last = None;
                        for (i, l) in lines.iter().enumerate() {
                            if matches(&re, l)? {
                                last = Some(i);
                            }
                        }
                        Ok(last)
                    };
                match (self.insertafter.as_deref(), self.insertbefore.as_deref()) {
                    (_, Some("BOF")) => 0,
                    (Some(a), _) if a != "EOF" => {
                        last_match(a, "blockinfile: insertafter")?.map_or(lines.len(), |i| i + 1)
                    }
                    (None, Some(b)) => {
                        last_match(b, "blockinfile: insertbefore")?.unwrap_or(lines.len())
                    }
                    _ => lines.len(),
                }
            }
        };
        let mut insert = block;
        if !insert.is_empty() {
            if self.prepend_newline && at > 0 && !lines[at - 1].is_empty() {
                insert.insert(0, String::new());
            }
            if self.append_newline && at < lines.len() && !lines[at].is_empty() {
                insert.push(String::new());
            }
        }
        let inserting = !insert.is_empty();
        lines.splice(at..at, insert);
        let new_text = if lines.is_empty() {
            String::new()
        } else {
            lines.join("\n") + "\n"
        };
        let msg = match (new_text == text, inserting) {
            (true, _) => String::new(),
            (false, true) => "Block inserted".into(),
            (false, false) => "Block removed".into(),
        };
        Ok((new_text, msg))
    }
}

impl Resource for BlockInFile {
    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let missing = format!("Path {} does not exist !", self.path.display());
        let existed = self.path.exists();
        let Some(text) = existing_text(&self.path, self.state, self.create, missing)? else {
            return Ok(Plan::default());
        };
        let (new_text, msg) = self.edit(&text)?;
        if !existed {
            // Ansible's blockinfile: nothing to write leaves no file; otherwise "File created".
            if new_text.is_empty() {
                return Ok(Plan::default());
            }
            self.msg = "File created".into();
        } else {
            self.msg = msg;
        }
        let (plan, writer) = plan_write(
            &self.path,
            new_text,
            &mut self.attrs,
            want_diff,
            self.create,
        )?;
        self.writer = Some(writer);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        self.writer.as_mut().expect("check ran").apply(plan)
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("msg".into(), self.msg.clone().into());
        if let Some(b) = backup_file(self.writer.as_ref()) {
            values.insert("backup_file".into(), b);
        }
    }
}

/// The backup the writer made, if it made one.
fn backup_file(writer: Option<&Copy>) -> Option<Value> {
    let mut inner = Map::new();
    writer?.values(&mut inner);
    inner.remove("backup_file")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lif(args: serde_json::Value) -> LineInFile {
        serde_json::from_value(args).unwrap()
    }

    #[test]
    fn replaces_by_regexp_or_adds_at_the_end() {
        let m = lif(serde_json::json!({"path": "/x", "regexp": "^Port ", "line": "Port 2222"}));
        assert_eq!(m.edit("a\nPort 22\nb\n").unwrap().0, "a\nPort 2222\nb\n");
        assert_eq!(m.edit("a\nb").unwrap().0, "a\nb\nPort 2222\n");
        assert_eq!(m.edit("Port 2222\n").unwrap().1, "");
    }

    #[test]
    fn insertafter_backrefs_and_absent() {
        let m = lif(serde_json::json!({"path": "/x", "line": "new", "insertafter": "^\\[main\\]"}));
        assert_eq!(m.edit("[main]\nx=1\n").unwrap().0, "[main]\nnew\nx=1\n");
        let m = lif(
            serde_json::json!({"path": "/x", "regexp": "^(\\w+)=old$", "line": "\\1=new", "backrefs": true}),
        );
        assert_eq!(m.edit("key=old\n").unwrap().0, "key=new\n");
        assert_eq!(m.edit("other\n").unwrap().0, "other\n");
        let m = lif(serde_json::json!({"path": "/x", "regexp": "^#", "state": "absent"}));
        assert_eq!(
            m.edit("#a\nb\n#c\n").unwrap(),
            ("b\n".into(), "2 line(s) removed".into())
        );
    }

    #[test]
    fn blocks_between_markers() {
        let b: BlockInFile =
            serde_json::from_value(serde_json::json!({"path": "/x", "block": "one\ntwo"})).unwrap();
        let once = b.edit("top\n").unwrap().0;
        assert_eq!(
            once,
            "top\n# BEGIN ANSIBLE MANAGED BLOCK\none\ntwo\n# END ANSIBLE MANAGED BLOCK\n"
        );
        assert_eq!(b.edit(&once).unwrap().0, once);
        let gone: BlockInFile =
            serde_json::from_value(serde_json::json!({"path": "/x", "state": "absent"})).unwrap();
        assert_eq!(gone.edit(&once).unwrap().0, "top\n");
    }
}
