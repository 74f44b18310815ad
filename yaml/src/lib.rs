//! YAML as Ansible users write it, with every node's place in its file.
//!
//! Playbooks, inventories and vars files are all YAML 1.1 in practice: `yes`/`no`/`on`/`off` are
//! booleans, `0644` is an octal number, `<<: *anchor` merges a mapping. This crate loads such a
//! file into a [`Node`] tree where every value remembers its line and column, so that later stages
//! can say *where* a task or a value came from, and turns any YAML error into one
//! `file:line:column: message` line with the offending source line under it.
//!
//! ```
//! let doc = settle_yaml::parse_str("- hosts: all\n  become: yes\n", "site.yml").unwrap();
//! let play = &doc.as_seq().unwrap()[0];
//! assert_eq!(play.get("become").unwrap().to_value(), serde_json::json!(true));
//! assert_eq!(play.get("become").unwrap().line, 2);
//! ```
//!
//! The parser is `serde-saphyr`: pure Rust, panic-free on malformed input, with a budget against
//! alias bombs.

// No input reaches a panic: a value that may be missing is an error naming where, not an
// unwrap. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod deprecation;
mod pyjson;

pub use pyjson::{py_json, py_json_with, python_float_repr, python_type, write_json_string};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A YAML value with the line and column (1-based) where it appears.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: u32,
    pub column: u32,
    /// Where the key of this value is, for a value in a mapping (line, column).
    pub key_at: Option<(u32, u32)>,
}

/// The shape of a YAML value. Mappings keep their keys in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match &self.kind {
            Kind::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A short word for the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The plain value, without places: what variables and module arguments hold.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Map(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }
}

/// A place in a source file, shared cheaply by everything parsed from that file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub fn new(file: &Arc<Path>, node: &Node) -> Self {
        Location {
            file: file.clone(),
            line: node.line,
            column: node.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A file that could not be read or is not valid YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}{snippet}", path.display())]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
        snippet: String,
    },
    /// A vaulted file or `!vault` value that could not be decrypted.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Vault {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
}

/// Reads and parses one YAML file; a vault-encrypted file is decrypted first (as Ansible's
/// loader does for every file it reads).
pub fn load_file(path: &Path) -> Result<Node, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|source| YamlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if settle_vault::is_encrypted(&text) {
        return load_vaulted(&text, path);
    }
    parse_str(&text, path)
}

/// A whole-file vault: decrypted with the process's vault secrets, then parsed. The strings of
/// a vaulted vars file (a mapping) are all taken as secret, to be hidden from output.
fn load_vaulted(text: &str, path: &Path) -> Result<Node, YamlError> {
    let plain = settle_vault::decrypt(text).map_err(|e| YamlError::Vault {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        message: e.to_string(),
    })?;
    let node = parse_str(&plain, path)?;
    fn reveal_strings(node: &Node) {
        match &node.kind {
            Kind::Str(s) => settle_vault::reveal(s),
            Kind::Seq(items) => items.iter().for_each(reveal_strings),
            Kind::Map(map) => map.values().for_each(reveal_strings),
            _ => {}
        }
    }
    if node.as_map().is_some() {
        reveal_strings(&node);
    }
    Ok(node)
}

/// Parses YAML text; `path` names it in errors. An empty document is `null`.
pub fn parse_str(text: &str, path: impl AsRef<Path>) -> Result<Node, YamlError> {
    let path = path.as_ref();
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(Node {
            kind: Kind::Null,
            line: 1,
            column: 1,
            key_at: None,
        });
    }
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_NODES * 64),
            max_events: MAX_NODES * 2,
            max_nodes: MAX_NODES,
            max_total_scalar_bytes: MAX_NODES * 64,
            max_depth: MAX_DEPTH,
        },
    };
    let parsed = match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<RawNode>>(
        text,
        options.clone(),
    ) {
        Ok(spanned) => convert(spanned, text, path),
        // `!!binary` that is not text (an image): Python loads bytes, which settle has not;
        // the value is kept as its base64 text, so the file loads as it does in Ansible.
        Err(err)
            if matches!(
                err.without_snippet(),
                serde_saphyr::Error::BinaryNotUtf8 { .. }
            ) =>
        {
            let mut options = options;
            options.ignore_binary_tag_for_string = true;
            match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<RawNode>>(
                text, options,
            ) {
                Ok(spanned) => convert(spanned, text, path),
                Err(err) => Err(syntax_error(text, path, &err)),
            }
        }
        Err(err) => Err(syntax_error(text, path, &err)),
    };
    if let Ok(node) = &parsed {
        deprecation::note_deprecated_names(text, node, path);
    }
    parsed
}

/// The most YAML nodes one file may hold: far beyond real files (a 50 MB playbook, a vars
/// file with a list of a million items) and far below what an alias bomb expands to (each
/// alias's nodes count, so a billion laughs stops here, at a few hundred MB).
const MAX_NODES: usize = 4_000_000;

/// The deepest nesting of lists and mappings one file may hold: real files stay within a few
/// dozen levels; deeper ones would only spend the stack of every reader after the parser.
const MAX_DEPTH: usize = 64;

fn syntax_error(text: &str, path: &Path, err: &serde_saphyr::Error) -> YamlError {
    let (mut line, mut column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let rendered = err.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // serde-saphyr starts its message with "line L column C: "; we already say where.
    let mut message = match first.find(": ") {
        Some(i) if first.starts_with("line ") => first[i + 2..].to_string(),
        _ => first.to_string(),
    };
    // A breached budget reads as a Rust value ("budget breached: Nodes { nodes: 250001 }").
    // (Said of the text: an alias's breach comes wrapped in where the alias was defined.)
    if message.starts_with("budget breached") {
        message = if message.starts_with("budget breached: Depth") {
            format!(
                "the document nests lists and mappings more than {MAX_DEPTH} levels deep \
                 (settle's limit)"
            )
        } else {
            format!(
                "the document is too large: more than {MAX_NODES} values once aliases are \
                 expanded (settle's limit against YAML alias bombs)"
            )
        };
    }
    if message.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push('…');
    }
    // A second document: said in words (serde-saphyr names its own functions), at its `---`.
    if message.starts_with("multiple YAML documents detected") {
        message = "the file holds more than one YAML document (a `---` line starts another); \
                   it must be one"
            .into();
        let lines: Vec<&str> = text.lines().collect();
        let before = (line as usize).min(lines.len());
        if let Some(at) = lines[..before].iter().rposition(|l| l.starts_with("---")) {
            (line, column) = (at as u64 + 1, 1);
        }
    }
    // A tab in the indentation: pointed at where the tab is, not where the parser gave up
    // (which may be the end of the line before).
    let indent_tab = |number: u64| {
        let l = text.lines().nth(number.saturating_sub(1) as usize)?;
        let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
        indent
            .find('\t')
            .map(|at| indent[..at].chars().count() as u64 + 1)
    };
    let tab_at = match indent_tab(line) {
        Some(at) => Some((line, at)),
        None if message.contains("tab") => indent_tab(line + 1).map(|at| (line + 1, at)),
        None => None,
    };
    if let Some(at) = tab_at {
        message = "found a tab character; YAML indents with spaces, not tabs".into();
        (line, column) = at;
    } else if message.contains("tab") {
        message = format!("found a tab character; YAML indents with spaces, not tabs ({message})");
    }
    let source_line = text.lines().nth(line.saturating_sub(1) as usize);
    let snippet = match source_line {
        Some(src) if line > 0 => {
            let caret = " ".repeat(column.saturating_sub(1) as usize);
            format!(
                "\n  {line} | {}\n  {} | {caret}^",
                src.replace('\t', "→"),
                " ".repeat(line.to_string().len())
            )
        }
        _ => String::new(),
    };
    YamlError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
        snippet,
    }
}

/// Writes a value as block-style YAML (for `to_yaml`/`to_nice_yaml` and `--list` output).
pub fn to_string(value: &Value) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
}

/// What serde-saphyr fills in; converted into [`Node`] right after parsing.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<serde_saphyr::Spanned<RawNode>>),
    Map(
        Vec<(
            serde_saphyr::Spanned<KeyScalar>,
            serde_saphyr::Spanned<RawNode>,
        )>,
    ),
}

/// The source text a node was read from, as written.
fn raw_text<'t>(text: &'t str, loc: &serde_saphyr::Location) -> Option<&'t str> {
    let span = loc.span();
    let start = span.byte_offset()? as usize;
    text.get(start..start + span.byte_len()? as usize)
}

/// PyYAML's YAML 1.1 booleans. serde-saphyr also takes `y`/`n` and any case; Ansible does not.
fn is_pyyaml_bool(raw: &str) -> bool {
    const WORDS: [&str; 6] = ["yes", "no", "true", "false", "on", "off"];
    let lower = raw.to_ascii_lowercase();
    WORDS.contains(&lower.as_str())
        && (raw == lower || raw == raw.to_ascii_uppercase() || raw[1..] == lower[1..])
}

/// PyYAML reads a float only with a dot in it (`1e3` stays a string), or `.inf`/`.nan`.
fn is_pyyaml_float(raw: &str) -> bool {
    raw.contains('.')
}

/// PyYAML's YAML 1.1 base-60 (sexagesimal) numbers: `1:30` is the int 90 (`[-+]?[1-9][0-9_]*`
/// then `:[0-5]?[0-9]` parts), `1:30.5` the float 90.5 (the first part may start with 0, a
/// `.` and digits after the last part). Too big for an int stays text.
fn pyyaml_base_60(raw: &str) -> Option<Kind> {
    let (sign, body) = match raw.strip_prefix('-') {
        Some(body) => (-1i32, body),
        None => (1, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (body, fraction) = match body.split_once('.') {
        Some((body, fraction)) => (body, Some(fraction)),
        None => (body, None),
    };
    let (first, parts) = body.split_once(':')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let first_ok = digits(first)
        && first.starts_with(|c: char| c.is_ascii_digit())
        && (fraction.is_some() || !first.starts_with('0'));
    let part_ok = |p: &str| match p.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    };
    if !first_ok
        || !parts.split(':').all(part_ok)
        || fraction.is_some_and(|f| !f.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
    {
        return None;
    }
    let first: String = first.chars().filter(|c| *c != '_').collect();
    match fraction {
        None => {
            let mut value: i64 = first.parse().ok()?;
            for part in parts.split(':') {
                value = value.checked_mul(60)?.checked_add(part.parse().ok()?)?;
            }
            Some(Kind::Int(i64::from(sign) * value))
        }
        Some(fraction) => {
            let mut value: f64 = first.parse().ok()?;
            for part in parts.split(':') {
                value = value * 60.0 + part.parse::<f64>().ok()?;
            }
            let fraction: String = fraction.chars().filter(|c| *c != '_').collect();
            let fraction: f64 = format!("0.{fraction}0").parse().ok()?;
            Some(Kind::Float(f64::from(sign) * (value + fraction)))
        }
    }
}

/// The text a tree is converted from, and which tags it holds at all: most files hold none,
/// and [`tagged`] looks at the text before each value.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
    vault: bool,
    unsafe_: bool,
}

fn convert(
    spanned: serde_saphyr::Spanned<RawNode>,
    text: &str,
    path: &Path,
) -> Result<Node, YamlError> {
    let source = Source {
        text,
        path,
        vault: text.contains("!vault"),
        unsafe_: text.contains("!unsafe"),
    };
    convert_node(spanned, &source, true)
}

/// `see_tags` is false for a node whose `!unsafe` tag is already handled.
fn convert_node(
    spanned: serde_saphyr::Spanned<RawNode>,
    source: &Source,
    see_tags: bool,
) -> Result<Node, YamlError> {
    let Source { text, path, .. } = *source;
    let line = spanned.referenced.line() as u32;
    let column = spanned.referenced.column() as u32;
    // What was written, at the anchor for a node reached through an alias (`*b` says nothing).
    let raw = raw_text(text, &spanned.defined);
    let kind = match spanned.value {
        RawNode::Null => Kind::Null,
        RawNode::Bool(b) => match raw {
            Some(r) if !is_pyyaml_bool(r) => Kind::Str(r.to_string()),
            _ => Kind::Bool(b),
        },
        // YAML 1.2's octal `0o10` is not a number in PyYAML's YAML 1.1.
        RawNode::Int(_)
            if raw.is_some_and(|r| r.trim_start_matches(['-', '+']).starts_with("0o")) =>
        {
            Kind::Str(raw.unwrap_or_default().to_string())
        }
        RawNode::Int(i) => Kind::Int(i),
        RawNode::Float(f) => match raw {
            Some(r)
                if !is_pyyaml_float(r)
                    && r.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-_".contains(c)) =>
            {
                Kind::Str(r.to_string())
            }
            _ => Kind::Float(f),
        },
        RawNode::Str(s) if source.vault && tagged(text, &spanned.defined, "!vault") => {
            vault_marker(s, line, column)
        }
        _ if see_tags && source.unsafe_ && tagged(text, &spanned.defined, "!unsafe") => {
            // `!unsafe`: never a template. Its strings are wrapped so that rendering gives them
            // back as written, once; rendered values are data from then on.
            let mut node = convert_node(spanned, source, false)?;
            node.make_unsafe();
            return Ok(node);
        }
        // A plain (unquoted) `1:30` is PyYAML's base-60 number.
        RawNode::Str(s) if let Some(number) = raw.filter(|r| *r == s).and_then(pyyaml_base_60) => {
            number
        }
        RawNode::Str(s) => Kind::Str(s),
        RawNode::Seq(items) => Kind::Seq(
            items
                .into_iter()
                .map(|i| convert_node(i, source, true))
                .collect::<Result<_, _>>()?,
        ),
        RawNode::Map(entries) => {
            let mut map = IndexMap::with_capacity(entries.len());
            for (key, value) in entries {
                let key_line = key.referenced.line() as u32;
                let key_column = key.referenced.column() as u32;
                let key = match key.value {
                    KeyScalar::Text(t) => t,
                    KeyScalar::Bool(b) => match raw_text(text, &key.defined) {
                        Some(r) if !is_pyyaml_bool(r) => r.to_string(),
                        _ => if b { "True" } else { "False" }.to_string(),
                    },
                };
                // Last one wins, as in Ansible, which warns about the duplicate (or, with
                // ANSIBLE_DUPLICATE_YAML_DICT_KEY, fails or says nothing).
                if map.shift_remove(&key).is_some() {
                    duplicate_key(&key, path, key_line, key_column)?;
                }
                let mut value = convert_node(value, source, true)?;
                value.key_at = Some((key_line, key_column));
                map.insert(key, value);
            }
            Kind::Map(map)
        }
    };
    Ok(Node {
        kind,
        line,
        column,
        key_at: None,
    })
}

// ----- duplicate keys and `!unsafe` ----------------------------------------------------------

/// A key written twice in one mapping: Ansible's warning, or its error with
/// `ANSIBLE_DUPLICATE_YAML_DICT_KEY=error`, or nothing with `=ignore`.
fn duplicate_key(key: &str, path: &Path, line: u32, column: u32) -> Result<(), YamlError> {
    let message = format!("Found duplicate mapping key '{key}'.");
    match std::env::var("ANSIBLE_DUPLICATE_YAML_DICT_KEY").as_deref() {
        Ok("ignore") => Ok(()),
        Ok("error") => Err(YamlError::Syntax {
            path: path.to_path_buf(),
            line: line.into(),
            column: column.into(),
            message,
            snippet: String::new(),
        }),
        _ => {
            let at = Location {
                file: Arc::from(path),
                line,
                column,
            };
            let origin = deprecation::source_excerpt(&at).join("\n");
            eprintln!("[WARNING]: {message}\n{origin}\n\nUsing last defined value only.\n");
            Ok(())
        }
    }
}

/// Whether the value at `loc` carries `tag` (`!vault`, `!unsafe`). serde-saphyr drops tags and
/// its span starts after them (after the `|` of a block scalar), so the tag is read from the
/// text just before: the tag, then maybe a block indicator (`|`, `>`, with chomping/indent)
/// and a comment.
fn tagged(text: &str, loc: &serde_saphyr::Location, tag: &str) -> bool {
    let Some(start) = loc.span().byte_offset() else {
        return false;
    };
    let Some(before) = text.get(..start as usize) else {
        return false;
    };
    let line = before.trim_end();
    let line = line.rsplit('\n').next().unwrap_or(line);
    let line = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
    .trim_end();
    let line = line
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-')
        .trim_end_matches(['|', '>'])
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-')
        .trim_end();
    line.strip_suffix(tag).is_some_and(|head| {
        head.is_empty() || head.ends_with(|c: char| c.is_whitespace() || "[{,:-".contains(c))
    })
}

impl Node {
    /// Every string inside, wrapped so that a template engine renders it back as written.
    fn make_unsafe(&mut self) {
        match &mut self.kind {
            // Always wrapped, even without template markers: the wrapper is also how later
            // stages know the text is untrusted (never evaluated as a condition).
            Kind::Str(s) => *s = raw_template(s),
            Kind::Seq(items) => items.iter_mut().for_each(Node::make_unsafe),
            Kind::Map(map) => map.values_mut().for_each(Node::make_unsafe),
            _ => {}
        }
    }
}

/// `text` as a Jinja template that renders to `text` itself.
pub fn literal_template(text: &str) -> String {
    if !(text.contains("{{") || text.contains("{%") || text.contains("{#")) {
        return text.to_string();
    }
    raw_template(text)
}

/// `text` inside `{% raw %}…{% endraw %}`, whatever it holds.
fn raw_template(text: &str) -> String {
    // Inside {% raw %} only an endraw tag ends the raw text: such a tag's `{%` is given as a
    // string, and the rest of the tag, raw again, ends nothing.
    let mut out = String::new();
    let mut rest = open_raw(&mut out, text);
    while let Some(at) = rest.find("{%") {
        let (before, tag) = (&rest[..at], &rest[at + 2..]);
        // The tag's end is after its start: in `{%}` the `%}` overlaps the `{%`, no tag.
        let is_endraw = tag.find("%}").is_some_and(|e| {
            tag[..e].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "endraw"
        });
        out.push_str(before);
        rest = if is_endraw {
            out.push_str("{% endraw %}{{ '{%' }}");
            open_raw(&mut out, tag)
        } else {
            out.push_str("{%");
            tag
        };
    }
    out.push_str(rest);
    out.push_str("{% endraw %}");
    out
}

/// Opens a raw block before `text`: a line end `text` starts with goes before the tag, where
/// `trim_blocks` (on in Ansible's templates) cannot take it. Returns the rest of `text`.
fn open_raw<'t>(out: &mut String, text: &'t str) -> &'t str {
    let line_end = ["\r\n", "\n"].into_iter().find(|e| text.starts_with(e));
    if let Some(end) = line_end {
        out.push_str(end);
    }
    out.push_str("{% raw %}");
    &text[line_end.map_or(0, str::len)..]
}

// ----- `!vault` ----------------------------------------------------------------------------

/// The key of the one-entry mapping a `!vault` value loads as: `{"__ansible_vault":
/// ciphertext}`, the form Ansible's own JSON gives a vaulted value.
pub const VAULT_KEY: &str = "__ansible_vault";

/// A `!vault` value, still encrypted: as Ansible 2.19, it is decrypted when used (the template
/// engine does it), so a value that cannot be decrypted is an error only if something uses it.
fn vault_marker(ciphertext: String, line: u32, column: u32) -> Kind {
    let text = Node {
        kind: Kind::Str(ciphertext),
        line,
        column,
        key_at: None,
    };
    Kind::Map(IndexMap::from([(VAULT_KEY.to_string(), text)]))
}

/// The ciphertext of a `!vault` value as [`Node::to_value`] gives it, or `None`.
pub fn vault_ciphertext(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(VAULT_KEY)?.as_str(),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(RawNode::Map(entries))
    }
}

/// A mapping key of any scalar type, as text (`1: a` has the key `"1"`, as after Ansible's
/// conversion to JSON-like data). Booleans are kept apart so their spelling can be checked.
enum KeyScalar {
    Text(String),
    Bool(bool),
}

impl<'de> Deserialize<'de> for KeyScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyScalar, E> {
                Ok(KeyScalar::Text("null".to_string()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_60_numbers_and_octal_as_pyyaml_reads_them() {
        let doc = parse_str(
            "[1:30, 190:20:30, 1:30.5, -1:30, +12:00, 1:60, '1:30', 0:30, 0:30.5, 1_0:30, 0o10, 010, 1:2:3:4:5:6:7:8:9:10:11:12:13]",
            "x.yml",
        )
        .unwrap();
        assert_eq!(
            doc.to_value(),
            json!([
                90,
                685230,
                90.5,
                -90,
                720,
                "1:60",
                "1:30",
                "0:30",
                30.5,
                630,
                "0o10",
                8,
                "1:2:3:4:5:6:7:8:9:10:11:12:13"
            ])
        );
    }

    #[test]
    fn an_unsafe_value_with_a_tag_end_inside_its_start_loads() {
        // Found by fuzz/run: `{%}` once sliced the text backwards.
        let doc = parse_str("raw: !unsafe |\n  {% endraw %}{%}\"}\n", "x.yml").unwrap();
        assert_eq!(
            doc.get("raw").unwrap().as_str().unwrap(),
            "{% raw %}{% endraw %}{{ '{%' }}{% raw %} endraw %}{%}\"}\n{% endraw %}"
        );
    }

    #[test]
    fn large_real_files_load_and_alias_bombs_stop_with_a_short_error() {
        let mut big = String::from("big:\n");
        for i in 0..300_000 {
            big.push_str(&format!("  - {i}\n"));
        }
        let doc = parse_str(&big, "vars.yml").unwrap();
        assert_eq!(doc.get("big").unwrap().as_seq().unwrap().len(), 300_000);

        let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 9].join(", ")
            ));
        }
        let err = parse_str(&bomb, "bomb.yml").unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
        assert!(err.lines().count() <= 3 && err.len() < 500, "{err}");
    }

    #[test]
    fn nesting_is_limited_and_said_so_in_words() {
        // On a thread with the stack settle's own threads have (the main thread's 8 MiB; a
        // test thread's 2 MiB is too little for 64 levels in a debug build).
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(|| {
                let nested =
                    |depth: usize| format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
                // The mapping is one level, so 63 lists inside it are the 64 allowed.
                assert!(parse_str(&nested(MAX_DEPTH - 1), "deep.yml").is_ok());
                let err = parse_str(&nested(MAX_DEPTH + 1), "deep.yml")
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("more than 64 levels deep"), "{err}");
                assert!(!err.contains("too large"), "{err}");
                assert!(err.lines().count() <= 3 && err.len() < 500, "{err}");
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn yaml_one_one_booleans_and_octal_as_ansible_reads_them() {
        let doc = parse_str("a: yes\nb: off\nc: 0644\nd: '0644'\ne: ~\n", "x.yml").unwrap();
        assert_eq!(
            doc.to_value(),
            json!({"a": true, "b": false, "c": 420, "d": "0644", "e": null})
        );
    }

    #[test]
    fn words_pyyaml_keeps_as_strings() {
        let doc = parse_str("a: y\nb: n\nc: 1e3\nd: tRuE\ne: 1.5\nf: True\n", "x.yml").unwrap();
        assert_eq!(
            doc.to_value(),
            json!({"a": "y", "b": "n", "c": "1e3", "d": "tRuE", "e": 1.5, "f": true})
        );
    }

    #[test]
    fn merge_keys_and_anchors() {
        let doc = parse_str("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "x.yml").unwrap();
        assert_eq!(
            doc.get("other").unwrap().to_value(),
            json!({"x": 1, "y": 3})
        );
    }

    #[test]
    fn an_alias_keeps_the_anchored_booleans_and_numbers() {
        let doc = parse_str("a: &b {on: yes, n: 1.5, s: y}\nc: *b\n", "x.yml").unwrap();
        assert_eq!(
            doc.get("c").unwrap().to_value(),
            json!({"True": true, "n": 1.5, "s": "y"})
        );
    }

    #[test]
    fn nodes_know_their_lines() {
        let doc = parse_str(
            "- name: one\n  debug: {}\n- name: two\n  debug: {}\n",
            "x.yml",
        )
        .unwrap();
        let tasks = doc.as_seq().unwrap();
        assert_eq!((tasks[0].line, tasks[1].line), (1, 3));
        assert_eq!(tasks[1].get("name").unwrap().line, 3);
    }

    #[test]
    fn a_tab_in_indentation_is_named() {
        let err = parse_str("- hosts: all\n\ttasks: []\n", "site.yml")
            .unwrap_err()
            .to_string();
        // At the tab itself, as Ansible's error points (line 2, column 1).
        assert!(err.starts_with("site.yml:2:1: "), "{err}");
        assert!(err.contains("YAML indents with spaces, not tabs"), "{err}");
        let err = parse_str("- hosts: all\n  tasks:\n  \t- ping:\n", "site.yml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("site.yml:3:3: "), "{err}");
    }

    #[test]
    fn a_second_document_is_a_sentence_at_its_dashes() {
        let err = parse_str("- hosts: all\n---\n- hosts: web\n", "site.yml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("site.yml:2:1: the file holds more than one YAML document"),
            "{err}"
        );
        assert!(!err.contains("from_str"), "{err}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse_str("- hosts: all\n  tasks: [\n", "site.yml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("site.yml:2:"), "{err}");
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse_str("---\n# nothing\n", "x.yml").unwrap().is_null());
    }

    /// One test, as the vault secrets are the process's.
    #[test]
    fn vault_values_and_files_are_decrypted_or_an_error() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vault");
        let inline = std::fs::read_to_string(fixtures.join("encrypt_string.out")).unwrap();
        let doc = format!("{inline}other: plain\nlist:\n  - !vault |\n{}", {
            let body = inline.split_once('\n').unwrap().1;
            body.lines().map(|l| format!("  {l}\n")).collect::<String>()
        });

        settle_vault::set_secrets(vec![]);
        // `!vault` values stay encrypted until used; vaulted files are opened when read.
        let loaded = parse_str(&doc, "vars.yml").unwrap().to_value();
        let ciphertext = vault_ciphertext(&loaded["db_password"]).unwrap();
        assert!(settle_vault::is_encrypted(ciphertext), "{ciphertext}");
        assert_eq!(vault_ciphertext(&loaded["list"][0]), Some(ciphertext));
        assert_eq!(loaded["other"], json!("plain"));
        let err = load_file(&fixtures.join("secret.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("secret.yml:1:1: Attempting to decrypt but no vault secrets found."),
            "{err}"
        );

        settle_vault::set_secrets(vec![settle_vault::VaultSecret::new(
            "default",
            "settle-test-password",
        )]);
        assert_eq!(
            load_file(&fixtures.join("secret.yml")).unwrap().to_value(),
            json!({"db_password": "s3cret-from-vault", "api_user": "admin"})
        );
        assert_eq!(settle_vault::redact("pw=s3cret-from-vault"), "pw=********");
        // A quoted `!vault` value, and strings that only look like one, are not tags.
        let quoted = format!(
            "a: !vault \"{}\"\nb: '!vault'\nc: x # !vault\n",
            inline
                .split_once('\n')
                .unwrap()
                .1
                .replace(' ', "")
                .replace('\n', "\\n")
        );
        let loaded = parse_str(&quoted, "q.yml").unwrap().to_value();
        assert!(vault_ciphertext(&loaded["a"]).is_some(), "{loaded}");
        assert_eq!(
            (&loaded["b"], &loaded["c"]),
            (&json!("!vault"), &json!("x"))
        );
    }
}
