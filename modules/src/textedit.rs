//! `lineinfile` and `blockinfile`: edit part of a text file. Each computes the file's new text
//! and hands it to `copy`'s machinery, so the diff, attributes, backup, validation and atomic
//! write are the same as for any other file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean};
use crate::copy::{Copy, FileAttrs};
use crate::fsutil;
use crate::pyre::{self, Caps, Flags, Pattern, Replacement};
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
        None => Err(ModuleError::with_rc(missing, 257)),
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
            return Err(ModuleError::with_rc(
                format!("Path {} is a directory !", self.path.display()),
                256,
            ));
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
        self.writer
            .as_mut()
            .ok_or_else(|| ModuleError::Failed("apply before check".into()))?
            .apply(plan)
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

/// Python's `bytes.splitlines(True)`: lines split at `\n`, `\r\n` or `\r`, endings kept.
fn splitlines_keep(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        lines.push(text[start..end].to_string());
        start = end;
        i = end;
    }
    if start < text.len() {
        lines.push(text[start..].to_string());
    }
    lines
}

impl BlockInFile {
    /// Where the block goes when its markers are not in the file: after the last line
    /// `insertafter` matches (before it with `insertbefore`), at the start for `BOF`, else at
    /// the end. A pattern with the global `(?m)` flag is searched in the whole text, as
    /// Ansible does.
    fn insert_at(&self, text: &str, lines: &[String]) -> Result<usize, ModuleError> {
        let after = match (&self.insertafter, &self.insertbefore) {
            (None, None) => Some("EOF"),
            (a, _) => a.as_deref(),
        };
        let (pattern, what) = match (after, self.insertbefore.as_deref()) {
            (Some("EOF"), _) => return Ok(lines.len()),
            (Some(a), _) => (a, "blockinfile: insertafter"),
            (None, Some("BOF")) => return Ok(0),
            (None, Some(b)) => (b, "blockinfile: insertbefore"),
            (None, None) => return Ok(lines.len()),
        };
        let re = compile(pattern, what)?;
        let mut found = None;
        if pyre::global_flags(pattern).contains('m') {
            if let Some(m) = search(&re, text)?.and_then(|c| c.span(0)) {
                let upto = if after.is_some() { m.end } else { m.start };
                found = Some(text[..upto].matches('\n').count());
            }
        } else {
            for (i, l) in lines.iter().enumerate() {
                if matches(&re, searched(l))? {
                    found = Some(i);
                }
            }
        }
        Ok(match found {
            None => lines.len(),
            Some(n) if after.is_some() => n + 1,
            Some(n) => n,
        })
    }

    /// The marker lines and the block between them (none to remove the block).
    fn block_lines(&self) -> (String, String, Vec<String>) {
        let begin = self.marker.replace("{mark}", &self.marker_begin) + "\n";
        let end = self.marker.replace("{mark}", &self.marker_end) + "\n";
        if self.state == Presence::Absent || self.block.is_empty() {
            return (begin, end, Vec::new());
        }
        let mut block = self.block.clone();
        if !block.ends_with('\n') {
            block.push('\n');
        }
        let mut lines = vec![begin.clone()];
        lines.extend(splitlines_keep(&block));
        lines.push(end.clone());
        (begin, end, lines)
    }

    /// Ansible's blockinfile: the block replaces the one between the markers, or goes where
    /// `insertafter`/`insertbefore` say; the file's own line endings stay as they are.
    fn edit(&self, text: &str) -> Result<(String, String), ModuleError> {
        let mut lines = splitlines_keep(text);
        let (begin, end, block) = self.block_lines();
        let n0 = lines.iter().rposition(|l| *l == begin);
        let n1 = lines.iter().rposition(|l| *l == end);
        let mut at = match (n0, n1) {
            (Some(a), Some(b)) => {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                lines.drain(lo..=hi);
                lo
            }
            _ => self.insert_at(text, &lines)?,
        };
        if at > 0 && !lines[at - 1].ends_with('\n') {
            lines[at - 1].push('\n');
        }
        let present = self.state == Presence::Present;
        if present && self.prepend_newline && at != 0 && lines[at - 1] != "\n" {
            lines.insert(at, "\n".into());
            at += 1;
        }
        let after_block = at + block.len();
        let inserting = !block.is_empty();
        lines.splice(at..at, block);
        if present && self.append_newline && after_block < lines.len() && lines[after_block] != "\n"
        {
            lines.insert(after_block, "\n".into());
        }
        let new_text = lines.concat();
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
        if self.path.is_dir() {
            return Err(ModuleError::with_rc(
                format!("Path {} is a directory !", self.path.display()),
                256,
            ));
        }
        let missing = format!("Path {} does not exist !", self.path.display());
        let existed = self.path.exists();
        let Some(text) = existing_text(&self.path, self.state, self.create, missing)? else {
            self.msg = format!("File {} not present", self.path.display());
            return Ok(Plan::default());
        };
        let (new_text, msg) = self.edit(&text)?;
        // Ansible's blockinfile creates the file even when there is nothing to put in it.
        self.msg = if existed { msg } else { "File created".into() };
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
        self.writer
            .as_mut()
            .ok_or_else(|| ModuleError::Failed("apply before check".into()))?
            .apply(plan)
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

    fn bif(args: serde_json::Value) -> BlockInFile {
        serde_json::from_value(args).unwrap()
    }

    #[test]
    fn blocks_keep_the_files_line_endings() {
        let b = bif(serde_json::json!({"path": "/x", "block": "new", "insertafter": "^dos"}));
        assert_eq!(
            b.edit("dos\r\nend\r\n").unwrap().0,
            "dos\r\n# BEGIN ANSIBLE MANAGED BLOCK\nnew\n# END ANSIBLE MANAGED BLOCK\nend\r\n"
        );
        assert_eq!(splitlines_keep("a\rb\r\nc"), ["a\r", "b\r\n", "c"]);
    }

    #[test]
    fn multiline_anchor_searches_the_whole_text() {
        let b = bif(serde_json::json!({"path": "/x", "block": "B", "insertbefore": "(?m)^b\\nc$"}));
        assert_eq!(
            b.edit("a\nb\nc\n").unwrap().0,
            "a\n# BEGIN ANSIBLE MANAGED BLOCK\nB\n# END ANSIBLE MANAGED BLOCK\nb\nc\n"
        );
        assert_eq!(pyre::global_flags("(?mi)x"), "mi");
        assert_eq!(pyre::global_flags("(?m:x)"), "");
    }
}
