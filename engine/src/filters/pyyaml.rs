//! A YAML writer that produces the bytes PyYAML's `yaml.dump` (with libyaml's emitter, as
//! Ansible's `to_yaml`/`to_nice_yaml` use it) produces: its quoting rules, flow/block choice,
//! indentation quirks (`-   key:` at indent 4) and line folding at the width.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::{err, python_float_repr};
use minijinja::Error;

/// The `yaml.dump` options settle understands.
#[derive(Debug, Clone)]
pub(crate) struct DumpOptions {
    pub indent: usize,
    pub width: usize,
    /// `None`: collections of scalars only are written in flow style (`[a, b]`).
    pub default_flow_style: Option<bool>,
    pub sort_keys: bool,
    pub allow_unicode: bool,
    pub explicit_start: bool,
    pub explicit_end: bool,
    pub default_style: Option<char>,
    /// YAML's canonical form: every node tagged, every scalar double-quoted, every collection
    /// in flow style with one item a line.
    pub canonical: bool,
    /// Ansible's callback dumper: a string with a line break asks for the literal block style
    /// (`|`), which the emitter takes when the text allows it.
    pub block_multiline: bool,
    /// With `block_multiline`, the callback's lossy pretty printing: such a string loses what
    /// would keep it out of the block style (trailing spaces, tabs, unprintable characters,
    /// spaces before a line break).
    pub lossy: bool,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            indent: 2,
            width: 80,
            default_flow_style: None,
            sort_keys: true,
            allow_unicode: true,
            explicit_start: false,
            explicit_end: false,
            default_style: None,
            canonical: false,
            block_multiline: false,
            lossy: false,
        }
    }
}

enum Node {
    Scalar {
        text: String,
        implicit: bool,
        tag: &'static str,
        /// The style the representer asks for (`|`), else the dump's default style.
        style: Option<char>,
    },
    Seq(Vec<Node>, bool),
    Map(Vec<(Node, Node)>, bool),
}

const MAX_DEPTH: usize = 200;

fn represent(value: &Value, opts: &DumpOptions, depth: usize) -> Result<Node, Error> {
    if depth > MAX_DEPTH {
        return Err(err("to_yaml: the value is nested too deeply"));
    }
    let scalar = |text: String, tag| Node::Scalar {
        text,
        implicit: true,
        tag,
        style: None,
    };
    Ok(match value.kind() {
        ValueKind::Undefined => return Err(err("to_yaml: the value is undefined")),
        ValueKind::None => scalar("null".into(), "null"),
        ValueKind::Bool => scalar(
            if value.is_true() { "true" } else { "false" }.into(),
            "bool",
        ),
        ValueKind::Number => {
            if value.is_integer() {
                scalar(value.to_string(), "int")
            } else {
                let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
                scalar(yaml_float(f), "float")
            }
        }
        ValueKind::String => {
            let mut s = value.as_str().unwrap_or_default().to_string();
            let mut style = None;
            if opts.block_multiline && s.chars().any(is_line_break) {
                style = Some('|');
                if opts.lossy {
                    s = lossy_block_text(&s);
                }
            }
            let implicit = resolves_to_str(&s);
            Node::Scalar {
                text: s,
                implicit,
                tag: "str",
                style,
            }
        }
        ValueKind::Bytes => {
            let s = String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned();
            let implicit = resolves_to_str(&s);
            Node::Scalar {
                text: s,
                implicit,
                tag: "str",
                style: None,
            }
        }
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for key in value.try_iter()? {
                let v = value.get_item(&key)?;
                pairs.push((key, v));
            }
            if opts.sort_keys {
                let all_str = pairs.iter().all(|(k, _)| k.kind() == ValueKind::String);
                let all_num = pairs.iter().all(|(k, _)| k.kind() == ValueKind::Number);
                if all_str || all_num {
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
            }
            let mut out = Vec::with_capacity(pairs.len());
            let mut best = true;
            for (k, v) in pairs {
                let kn = represent(&k, opts, depth + 1)?;
                let vn = represent(&v, opts, depth + 1)?;
                if !matches!(kn, Node::Scalar { .. }) || !matches!(vn, Node::Scalar { .. }) {
                    best = false;
                }
                out.push((kn, vn));
            }
            let flow = opts.canonical || opts.default_flow_style.unwrap_or(best);
            Node::Map(out, flow)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            let mut best = true;
            for item in value.try_iter()? {
                let n = represent(&item, opts, depth + 1)?;
                if !matches!(n, Node::Scalar { .. }) {
                    best = false;
                }
                out.push(n);
            }
            let flow = opts.canonical || opts.default_flow_style.unwrap_or(best);
            Node::Seq(out, flow)
        }
        _ => {
            let s = value.to_string();
            let implicit = resolves_to_str(&s);
            Node::Scalar {
                text: s,
                implicit,
                tag: "str",
                style: None,
            }
        }
    })
}

/// The breaks Ansible's callback dumper looks for to choose the block style.
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Ansible's `_munge_data_for_lossy_yaml`: the text made fit for the block style (readable
/// rather than exact): trailing whitespace cut, tabs expanded, characters the emitter would
/// quote dropped, and spaces before a line break removed.
fn lossy_block_text(text: &str) -> String {
    // Python's `str.isspace`: Unicode's White_Space and the separators \x1c to \x1f.
    let trimmed =
        text.trim_end_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let mut expanded = String::with_capacity(trimmed.len());
    let mut column = 0;
    for c in trimmed.chars() {
        match c {
            '\t' => {
                let spaces = 8 - column % 8;
                expanded.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            }
            '\n' | '\r' => {
                expanded.push(c);
                column = 0;
            }
            _ => {
                expanded.push(c);
                column += 1;
            }
        }
    }
    let kept = expanded.chars().filter(|&c| is_printable(c));
    let mut out = String::with_capacity(expanded.len());
    let mut spaces = 0;
    for c in kept {
        match c {
            ' ' => spaces += 1,
            c if is_line_break(c) => {
                spaces = 0;
                out.push(c);
            }
            c => {
                out.extend(std::iter::repeat_n(' ', spaces));
                spaces = 0;
                out.push(c);
            }
        }
    }
    out.extend(std::iter::repeat_n(' ', spaces));
    out
}

/// PyYAML's `represent_float`.
pub(crate) fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let value = python_float_repr(f).to_lowercase();
    if !value.contains('.') && value.contains('e') {
        value.replacen('e', ".0e", 1)
    } else {
        value
    }
}

fn resolver_regexes() -> &'static [regex::Regex] {
    static RES: std::sync::OnceLock<Vec<regex::Regex>> = std::sync::OnceLock::new();
    RES.get_or_init(|| {
        [
            r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
            r"^(?:<<)$",
            r"^(?:~|null|Null|NULL|)$",
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
            r"^(?:=)$",
        ]
        .iter()
        .filter_map(|r| regex::Regex::new(r).ok())
        .collect()
    })
}

/// Whether PyYAML's resolver reads this plain text back as a string.
fn resolves_to_str(s: &str) -> bool {
    !resolver_regexes().iter().any(|r| r.is_match(s))
}

struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
    allow_block: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || c == '\0' || is_break(c),
    }
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
        || (0x10000..=0x10FFFF).contains(&u)
}

fn analyze(s: &str, allow_unicode: bool) -> Analysis {
    if s.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
            allow_block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let (mut block_ind, mut flow_ind) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_ws = true;
    for i in 0..n {
        let c = chars[i];
        let followed_ws = is_blankz(chars.get(i + 1).copied());
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_ind = true;
                block_ind = true;
            }
            if c == '?' || c == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if c == '-' && followed_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_ind = true;
            }
            if c == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if c == '#' && preceded_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if !is_printable(c) || (!c.is_ascii() && !allow_unicode) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_blankz(Some(c));
    }
    let mut a = Analysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single_quoted: true,
        allow_block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if trailing_space {
        a.allow_block = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if space_break || special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
        a.allow_block = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_ind {
        a.allow_flow_plain = false;
    }
    if block_ind {
        a.allow_block_plain = false;
    }
    a
}

struct Emitter<'o> {
    out: String,
    opts: &'o DumpOptions,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    flow_level: usize,
    best_indent: usize,
    best_width: usize,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
}

impl Emitter<'_> {
    fn put(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.out.push_str(&pad);
            self.column = indent;
        }
    }

    fn indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if self.whitespace || !need_ws {
            self.put(ind);
        } else {
            self.put(&format!(" {ind}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        match self.indent {
            None => self.indent = Some(if flow { self.best_indent } else { 0 }),
            Some(i) if !indentless => self.indent = Some(i + self.best_indent),
            _ => {}
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn simple_key(node: &Node, allow_unicode: bool) -> bool {
        match node {
            Node::Scalar { text, .. } => {
                let a = analyze(text, allow_unicode);
                !a.empty && !a.multiline && text.chars().count() < 128
            }
            Node::Seq(items, _) => items.is_empty(),
            Node::Map(items, _) => items.is_empty(),
        }
    }

    fn node(&mut self, node: &Node, ctx: Ctx) {
        match node {
            Node::Scalar {
                text,
                implicit,
                tag,
                style,
            } => {
                self.tag(tag);
                self.increase_indent(true, false);
                self.scalar(text, *implicit, *style, ctx);
                self.pop_indent();
            }
            Node::Seq(items, flow) => {
                self.tag("seq");
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.indicator("[", true, true, false);
                    self.flow_level += 1;
                    self.increase_indent(true, false);
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.indicator(",", false, false, false);
                        }
                        if self.opts.canonical || self.column > self.best_width {
                            self.write_indent();
                        }
                        self.node(item, Ctx::default());
                    }
                    self.pop_indent();
                    self.flow_level -= 1;
                    self.close_flow("]", items.is_empty());
                } else {
                    let indentless = ctx.mapping && !self.indention;
                    self.increase_indent(false, indentless);
                    for item in items {
                        self.write_indent();
                        self.indicator("-", true, false, true);
                        self.node(item, Ctx::default());
                    }
                    self.pop_indent();
                }
            }
            Node::Map(pairs, flow) => {
                let value_ctx = Ctx {
                    mapping: true,
                    simple_key: false,
                };
                let key_ctx = Ctx {
                    mapping: true,
                    simple_key: true,
                };
                self.tag("map");
                if self.flow_level > 0 || *flow || pairs.is_empty() {
                    self.indicator("{", true, true, false);
                    self.flow_level += 1;
                    self.increase_indent(true, false);
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            self.indicator(",", false, false, false);
                        }
                        if self.opts.canonical || self.column > self.best_width {
                            self.write_indent();
                        }
                        if !self.opts.canonical && Self::simple_key(k, self.opts.allow_unicode) {
                            self.node(k, key_ctx);
                            self.indicator(":", false, false, false);
                        } else {
                            self.indicator("?", true, false, false);
                            self.node(k, value_ctx);
                            if self.opts.canonical || self.column > self.best_width {
                                self.write_indent();
                            }
                            self.indicator(":", true, false, false);
                        }
                        self.node(v, value_ctx);
                    }
                    self.pop_indent();
                    self.flow_level -= 1;
                    self.close_flow("}", pairs.is_empty());
                } else {
                    self.increase_indent(false, false);
                    for (k, v) in pairs {
                        self.write_indent();
                        if Self::simple_key(k, self.opts.allow_unicode) {
                            self.node(k, key_ctx);
                            self.indicator(":", false, false, false);
                        } else {
                            self.indicator("?", true, false, true);
                            self.node(k, value_ctx);
                            self.write_indent();
                            self.indicator(":", true, false, true);
                        }
                        self.node(v, value_ctx);
                    }
                    self.pop_indent();
                }
            }
        }
    }

    /// A node's tag (`!!str`), written only in canonical form.
    fn tag(&mut self, tag: &str) {
        if self.opts.canonical {
            self.indicator(&format!("!!{tag}"), true, false, false);
        }
    }

    /// The end of a flow collection; canonical form ends its last item with a comma too.
    fn close_flow(&mut self, mark: &str, empty: bool) {
        if self.opts.canonical && !empty {
            self.indicator(",", false, false, false);
            self.write_indent();
        }
        self.indicator(mark, false, false, false);
    }

    fn scalar(&mut self, text: &str, implicit: bool, asked: Option<char>, ctx: Ctx) {
        let a = analyze(text, self.opts.allow_unicode);
        let mut style = asked.or(self.opts.default_style).unwrap_or(' ');
        if self.opts.canonical {
            style = '"';
        }
        if ctx.simple_key && a.multiline {
            style = '"';
        }
        if style == ' ' {
            if (self.flow_level > 0 && !a.allow_flow_plain)
                || (self.flow_level == 0 && !a.allow_block_plain)
            {
                style = '\'';
            }
            if text.is_empty() && (self.flow_level > 0 || ctx.simple_key) {
                style = '\'';
            }
            if !implicit {
                style = '\'';
            }
        }
        if style == '\'' && !a.allow_single_quoted {
            style = '"';
        }
        if (style == '|' || style == '>')
            && (!a.allow_block || self.flow_level > 0 || ctx.simple_key)
        {
            style = '"';
        }
        let split = !ctx.simple_key;
        match style {
            '"' => self.double_quoted(text, split),
            '\'' => self.single_quoted(text, split),
            '|' | '>' => self.literal(text, style),
            _ => self.plain(text, split),
        }
    }

    fn plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.put(" ");
        }
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if split
                    && !spaces
                    && self.column > self.best_width
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else {
                let mut buf = [0u8; 4];
                self.put(c.encode_utf8(&mut buf));
                spaces = false;
            }
            self.indention = false;
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single_quoted(&mut self, text: &str, split: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if split
                    && !spaces
                    && self.column > self.best_width
                    && i != 0
                    && i != n - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.line_break();
                }
                self.line_break();
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                let mut buf = [0u8; 4];
                self.put(c.encode_utf8(&mut buf));
                if c == '\'' {
                    self.put("'");
                }
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.indicator("'", false, false, false);
    }

    fn double_quoted(&mut self, text: &str, split: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c)
                || (!self.opts.allow_unicode && !c.is_ascii())
                || c == '\u{FEFF}'
                || is_break(c)
                || c == '"'
                || c == '\\'
            {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\x07' => "\\a".into(),
                    '\x08' => "\\b".into(),
                    '\t' => "\\t".into(),
                    '\n' => "\\n".into(),
                    '\x0B' => "\\v".into(),
                    '\x0C' => "\\f".into(),
                    '\r' => "\\r".into(),
                    '\x1B' => "\\e".into(),
                    '"' => "\\\"".into(),
                    '\\' => "\\\\".into(),
                    '\u{85}' => "\\N".into(),
                    '\u{A0}' => "\\_".into(),
                    '\u{2028}' => "\\L".into(),
                    '\u{2029}' => "\\P".into(),
                    c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.put(&esc);
                spaces = false;
            } else if c == ' ' {
                if split && !spaces && self.column > self.best_width && i != 0 && i != n - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put("\\");
                    }
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else {
                let mut buf = [0u8; 4];
                self.put(c.encode_utf8(&mut buf));
                spaces = false;
            }
        }
        self.indicator("\"", false, false, false);
    }

    fn literal(&mut self, text: &str, style: char) {
        let mut hints = String::new();
        let chars: Vec<char> = text.chars().collect();
        if let Some(&first) = chars.first() {
            if first == ' ' || is_break(first) {
                hints.push_str(&self.best_indent.to_string());
            }
            let last = chars[chars.len() - 1];
            if !is_break(last) {
                hints.push('-');
            } else if chars.len() == 1 || is_break(chars[chars.len() - 2]) {
                hints.push('+');
            }
        }
        self.indicator(&format!("{style}{hints}"), true, false, false);
        self.line_break();
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.line_break();
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                    breaks = false;
                }
                let mut buf = [0u8; 4];
                self.put(c.encode_utf8(&mut buf));
            }
        }
        if !breaks {
            self.line_break();
        }
    }
}

/// `yaml.dump(value, **opts)`.
pub(crate) fn dump(value: &Value, opts: &DumpOptions) -> Result<String, Error> {
    let node = represent(value, opts, 0)?;
    let best_indent = if opts.indent > 1 && opts.indent < 10 {
        opts.indent
    } else {
        2
    };
    let best_width = if opts.width > best_indent * 2 {
        opts.width
    } else {
        80
    };
    let mut e = Emitter {
        out: String::new(),
        opts,
        column: 0,
        whitespace: true,
        indention: true,
        indent: None,
        indents: Vec::new(),
        flow_level: 0,
        best_indent,
        best_width,
    };
    if opts.explicit_start || opts.canonical {
        e.indicator("---", true, false, false);
        if opts.canonical {
            e.write_indent();
        }
    }
    e.node(&node, Ctx::default());
    e.write_indent();
    if opts.explicit_end {
        e.indicator("...", true, false, false);
        e.write_indent();
    }
    Ok(e.out)
}

#[cfg(test)]
mod unit {
    use super::*;

    /// Ansible's `_munge_data_for_lossy_yaml`, case by case.
    #[test]
    fn lossy_text_fits_the_block_style_as_ansible_makes_it() {
        assert_eq!(lossy_block_text("a  \nb\t|\n\n"), "a\nb       |");
        assert_eq!(lossy_block_text("x\r\ny\u{7}z \u{2028}"), "x\nyz");
        assert_eq!(lossy_block_text("ab\tc\n\td"), "ab      c\n        d");
    }
}
