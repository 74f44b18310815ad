//! `lineinfile` and `blockinfile`: edit part of a text file. Each computes the file's new text
//! and hands it to `copy`'s machinery, so the diff, attributes, backup, validation and atomic
//! write are the same as for any other file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean};
use crate::copy::{Copy, FileAttrs};
use crate::fsutil;
use crate::pyre::{Caps, Flags, Pattern, Replacement};
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

/// Python's `match.expand`: the `line` of `backrefs` with `\\1`, `\\g<name>` and the
/// escapes a replacement template has.
fn expand(template: &str, re: &Pattern, caps: &Caps) -> Result<String, ModuleError> {
    let replacement = Replacement::parse(template, re)
        .map_err(|e| ModuleError::Failed(format!("lineinfile: line: {e}")))?;
    let mut out = String::new();
    replacement.expand(caps, &mut out);
    Ok(out)
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
    #[serde(skip)]
    found: Option<usize>,
}

/// What an edit did: the new text, Ansible's message, and for `state=absent` how many lines
/// matched (`found`).
#[derive(Debug, PartialEq)]
struct Edited {
    text: String,
    msg: String,
    found: Option<usize>,
}

/// A line as Python's `re.search` sees it in `readlines()` output, less the final `\n` (which
/// only Python's `$` can see, and it matches before it anyway).
fn searched(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

impl LineInFile {
    fn edit(&self, text: &str) -> Result<Edited, ModuleError> {
        let regexp = self
            .regexp
            .as_deref()
            .map(|r| compile(r, "lineinfile: regexp"))
            .transpose()?;
        if self.state == Presence::Absent {
            return self.remove(lines_of(text), regexp.as_ref());
        }
        let line = self
            .line
            .clone()
            .ok_or_else(|| ModuleError::Args("line is required with state=present".into()))?;
        let (lines, msg) = self.present(lines_of(text), regexp.as_ref(), &line)?;
        Ok(Edited {
            text: lines.concat(),
            msg,
            found: None,
        })
    }

    /// Ansible's `absent`: every line the regexp, search string or line matches goes.
    fn remove(&self, lines: Vec<String>, regexp: Option<&Pattern>) -> Result<Edited, ModuleError> {
        let before = lines.len();
        let mut kept = Vec::with_capacity(lines.len());
        for l in lines {
            let hit = match (regexp, &self.search_string, &self.line) {
                (Some(re), _, _) => matches(re, searched(&l))?,
                (None, Some(s), _) => l.contains(s.as_str()),
                (None, None, Some(line)) => trim_eol(&l) == line,
                _ => false,
            };
            if !hit {
                kept.push(l);
            }
        }
        let removed = before - kept.len();
        let msg = match removed {
            0 => String::new(),
            n => format!("{n} line(s) removed"),
        };
        Ok(Edited {
            text: kept.concat(),
            msg,
            found: Some(removed),
        })
    }

    /// The pattern of `insertafter`/`insertbefore`, and whether it is `insertafter`.
    fn anchor(&self) -> Result<Option<(Pattern, bool)>, ModuleError> {
        Ok(match (&self.insertafter, &self.insertbefore) {
            (Some(a), _) if a != "EOF" && a != "BOF" => {
                Some((compile(a, "lineinfile: insertafter")?, true))
            }
            (None, Some(b)) if b != "BOF" => Some((compile(b, "lineinfile: insertbefore")?, false)),
            _ => None,
        })
    }

    /// The last line (the first with `firstmatch`) the regexp or search string matches, and
    /// the line `backrefs` makes of it.
    fn find_match(
        &self,
        lines: &[String],
        regexp: Option<&Pattern>,
        line: &str,
    ) -> Result<Option<(usize, Option<String>)>, ModuleError> {
        let mut found = None;
        for (i, l) in lines.iter().enumerate() {
            let hit = match (regexp, &self.search_string) {
                (Some(re), _) => match search(re, searched(l))? {
                    Some(caps) if self.backrefs => Some(Some(expand(line, re, &caps)?)),
                    Some(_) => Some(None),
                    None => None,
                },
                (None, Some(s)) => l.contains(s.as_str()).then_some(None),
                (None, None) => None,
            };
            if let Some(expanded) = hit {
                found = Some((i, expanded));
                if self.firstmatch {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Where no match was found: the line itself (its index), and where the anchor says to
    /// insert (the line after an `insertafter` match, the line of an `insertbefore` one).
    fn find_line_or_anchor(
        &self,
        lines: &[String],
        line: &str,
    ) -> Result<(Option<usize>, Option<usize>), ModuleError> {
        let anchor = self.anchor()?;
        let (mut exact, mut at) = (None, None);
        for (i, l) in lines.iter().enumerate() {
            if trim_eol(l) == line {
                exact = Some(i);
            } else if let Some((re, after)) = &anchor
                && matches(re, searched(l))?
            {
                at = Some(if *after { i + 1 } else { i });
                if self.firstmatch {
                    break;
                }
            }
        }
        Ok((exact, at))
    }

    /// Ansible's `present`: replace the matched line, or insert the line where asked.
    fn present(
        &self,
        mut lines: Vec<String>,
        regexp: Option<&Pattern>,
        line: &str,
    ) -> Result<(Vec<String>, String), ModuleError> {
        let with_eol = |l: &str| match l.ends_with('\n') {
            true => l.to_string(),
            false => format!("{l}\n"),
        };
        let mut found = self.find_match(&lines, regexp, line)?;
        let mut anchor_at = None;
        if found.is_none() {
            let (exact, at) = self.find_line_or_anchor(&lines, line)?;
            found = exact.map(|i| (i, None));
            anchor_at = at;
        }
        if let Some((index, expanded)) = found {
            let new_line = with_eol(expanded.as_deref().unwrap_or(line));
            if lines[index] == new_line {
                return Ok((lines, String::new()));
            }
            lines[index] = new_line;
            return Ok((lines, "line replaced".into()));
        }
        if self.backrefs {
            // Nothing safe to add: the backreferences have nothing to fill them.
            return Ok((lines, String::new()));
        }
        let after = self.insertafter.as_deref();
        let before = self.insertbefore.as_deref();
        let added = with_eol(line);
        let at = match anchor_at {
            _ if before == Some("BOF") || after == Some("BOF") => 0,
            Some(at) if after != Some("EOF") => at,
            _ => lines.len(),
        };
        if at == lines.len() {
            if after.is_some() && at > 0 && anchor_at.is_some() && trim_eol(&lines[at - 1]) == line
            {
                return Ok((lines, String::new()));
            }
            if let Some(last) = lines.last_mut()
                && !last.ends_with(['\n', '\r'])
            {
                last.push('\n');
            }
        } else if after.is_some() && at > 0 && trim_eol(&lines[at]) == line {
            return Ok((lines, String::new()));
        }
        lines.insert(at, added);
        Ok((lines, "line added".into()))
    }

    /// Ansible's warning for an empty `regexp` or `search_string`, which matches every line.
    fn warnings(&self) -> Vec<String> {
        let (name, hint) = match (self.regexp.as_deref(), self.search_string.as_deref()) {
            (Some(""), _) => (
                "regular expression",
                " If this is desired, use '^' to match every line in the file and avoid this warning.",
            ),
            (_, Some("")) => ("search string", ""),
            _ => return Vec::new(),
        };
        vec![format!(
            "The {name} is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending.{hint}"
        )]
    }
}

impl Resource for LineInFile {
    fn validate(&self) -> Result<(), ModuleError> {
        let exclusive = [
            (
                "insertbefore|insertafter",
                self.insertbefore.is_some() && self.insertafter.is_some(),
            ),
            (
                "regexp|search_string",
                self.regexp.is_some() && self.search_string.is_some(),
            ),
            (
                "backrefs|search_string",
                self.backrefs && self.search_string.is_some(),
            ),
        ];
        if let Some((names, _)) = exclusive.iter().find(|(_, both)| *both) {
            return Err(ModuleError::Args(format!(
                "parameters are mutually exclusive: {names}"
            )));
        }
        if self.state == Presence::Present && self.backrefs && self.regexp.is_none() {
            return Err(ModuleError::Failed(
                "regexp is required with backrefs=true".into(),
            ));
        }
        if self.state == Presence::Present && self.line.is_none() {
            return Err(ModuleError::Failed(
                "line is required with state=present".into(),
            ));
        }
        if self.state == Presence::Absent
            && self.line.is_none()
            && self.regexp.is_none()
            && self.search_string.is_none()
        {
            return Err(ModuleError::Failed(
                "one of line, search_string, or regexp is required with state=absent".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.path = fsutil::expand_path(&self.path);
        if self.path.is_dir() {
            return Err(ModuleError::Failed(format!(
                "Path {} is a directory !",
                self.path.display()
            )));
        }
        let missing = format!("Destination {} does not exist !", self.path.display());
        let Some(text) = existing_text(&self.path, self.state, self.create, missing)? else {
            self.msg = "file not present".into();
            return Ok(Plan::default());
        };
        let edited = self.edit(&text)?;
        self.msg = edited.msg;
        self.found = edited.found;
        let (plan, writer) = plan_write(
            &self.path,
            edited.text,
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
        if let Some(found) = self.found {
            values.insert("found".into(), found.into());
        }
        let warnings = self.warnings();
        if !warnings.is_empty() {
            values.insert("warnings".into(), warnings.into());
        }
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
        self.path = fsutil::expand_path(&self.path);
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

    fn edited(m: &LineInFile, text: &str) -> (String, String) {
        let e = m.edit(text).unwrap();
        (e.text, e.msg)
    }

    #[test]
    fn replaces_by_regexp_or_adds_at_the_end() {
        let m = lif(serde_json::json!({"path": "/x", "regexp": "^Port ", "line": "Port 2222"}));
        assert_eq!(edited(&m, "a\nPort 22\nb\n").0, "a\nPort 2222\nb\n");
        assert_eq!(edited(&m, "a\nb").0, "a\nb\nPort 2222\n");
        assert_eq!(edited(&m, "Port 2222\n").1, "");
    }

    #[test]
    fn insertafter_backrefs_and_absent() {
        let m = lif(serde_json::json!({"path": "/x", "line": "new", "insertafter": "^\\[main\\]"}));
        assert_eq!(edited(&m, "[main]\nx=1\n").0, "[main]\nnew\nx=1\n");
        let m = lif(
            serde_json::json!({"path": "/x", "regexp": "^(\\w+)=old$", "line": "\\1=new", "backrefs": true}),
        );
        assert_eq!(edited(&m, "key=old\n").0, "key=new\n");
        assert_eq!(edited(&m, "other\n").0, "other\n");
        let m = lif(serde_json::json!({"path": "/x", "regexp": "^#", "state": "absent"}));
        assert_eq!(
            m.edit("#a\nb\n#c\n").unwrap(),
            Edited {
                text: "b\n".into(),
                msg: "2 line(s) removed".into(),
                found: Some(2)
            }
        );
    }

    #[test]
    fn python_patterns_with_backreferences() {
        let m = lif(serde_json::json!({"path": "/x", "regexp": "^(REF) .* \\1$", "line": "ok"}));
        assert_eq!(edited(&m, "REF a REF\nREF b FER\n").0, "ok\nREF b FER\n");
        let m = lif(
            serde_json::json!({"path": "/x", "regexp": "^(?P<k>\\w+)=(?!keep)", "line": "\\g<k>=new", "backrefs": true}),
        );
        assert_eq!(edited(&m, "a=keep\nb=old\n").0, "a=keep\nb=new\n");
    }

    #[test]
    fn insertbefore_and_the_line_already_there() {
        let m = lif(serde_json::json!({"path": "/x", "line": "new", "insertbefore": "^b"}));
        assert_eq!(edited(&m, "a\nb\n").0, "a\nnew\nb\n");
        assert_eq!(edited(&m, "new\nb\n"), ("new\nb\n".into(), "".into()));
        let m = lif(serde_json::json!({"path": "/x", "line": "x", "insertbefore": "BOF"}));
        assert_eq!(edited(&m, "a\n").0, "x\na\n");
        let m = lif(serde_json::json!({"path": "/x", "regexp": "", "line": "x"}));
        assert!(m.warnings()[0].starts_with("The regular expression is an empty string"));
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
