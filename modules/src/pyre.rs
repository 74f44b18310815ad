//! Python's `re` for settle: one place that compiles a Python pattern (`Pattern::compile`) and
//! Python's `re.sub` replacement templates (`\\1`, `\\g<1>`, `\\g<name>`, `\\n`, octal escapes),
//! with Python's errors. The modules (`lineinfile`, `blockinfile`, `replace`) and the `regex_*`
//! filters and tests all read patterns here.
//!
//! A pattern runs on the `regex` crate (linear time) when it can; backreferences, lookaround
//! and the other backtracking-only syntax fall back to `fancy-regex`.

use std::ops::Range;

/// Python's `re` flags as settle's callers pass them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Flags {
    /// `re.IGNORECASE`
    pub ignorecase: bool,
    /// `re.MULTILINE`: `^` and `$` at each line.
    pub multiline: bool,
    /// `re.DOTALL`: `.` matches a newline too.
    pub dotall: bool,
}

#[derive(Debug, Clone)]
enum Engine {
    Fast(regex::Regex),
    Fancy(fancy_regex::Regex),
}

/// A compiled Python pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    engine: Engine,
    /// The name of each group by index (`None` for unnamed groups and group 0).
    names: Vec<Option<String>>,
}

/// The groups of one match: their spans in the searched text.
#[derive(Debug, Clone)]
pub struct Caps<'p, 't> {
    text: &'t str,
    spans: Vec<Option<Range<usize>>>,
    pattern: &'p Pattern,
}

impl<'t> Caps<'_, 't> {
    /// Group `i`'s text (0 is the whole match); `None` when it did not take part.
    pub fn get(&self, i: usize) -> Option<&'t str> {
        self.span(i).map(|r| &self.text[r])
    }

    /// Group `i`'s byte range in the searched text.
    pub fn span(&self, i: usize) -> Option<Range<usize>> {
        self.spans.get(i).cloned().flatten()
    }

    /// The named group's text.
    pub fn name(&self, name: &str) -> Option<&'t str> {
        self.get(self.pattern.group_index(name)?)
    }

    /// The named group's byte range.
    pub fn name_span(&self, name: &str) -> Option<Range<usize>> {
        self.span(self.pattern.group_index(name)?)
    }
}

/// The global inline flags a Python pattern opens with (`(?im)...` gives `im`): Python allows
/// them only at the start.
pub fn global_flags(pattern: &str) -> &str {
    let Some(rest) = pattern.strip_prefix("(?") else {
        return "";
    };
    let flags = rest
        .find(|c: char| !"aiLmsux".contains(c))
        .map_or(rest, |end| &rest[..end]);
    match rest[flags.len()..].starts_with(')') {
        true => flags,
        false => "",
    }
}

/// Python's `\Z` (the very end) is `\z` in both engines; the rest of the syntax is shared.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Z') => out.push_str("\\z"),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A compile error worded as Python's `re` words the common ones.
fn python_error(fast: &regex::Error, fancy: &fancy_regex::Error) -> String {
    let text = fancy.to_string();
    if text.contains("repeat") {
        let position = text
            .split("position ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .unwrap_or("0");
        return format!("nothing to repeat at position {position}");
    }
    match fast {
        regex::Error::Syntax(s) if !s.contains("not supported") => s.clone(),
        _ => text,
    }
}

impl Pattern {
    /// Compiles a Python pattern: the `regex` crate when it reads it, `fancy-regex` for
    /// backreferences and lookaround. The error is the one to show the user.
    pub fn compile(pattern: &str, flags: Flags) -> Result<Pattern, String> {
        let translated = translate(pattern);
        let fast = regex::RegexBuilder::new(&translated)
            .case_insensitive(flags.ignorecase)
            .multi_line(flags.multiline)
            .dot_matches_new_line(flags.dotall)
            .size_limit(1 << 24)
            .build();
        let fast_error = match fast {
            Ok(re) => {
                let names = re.capture_names().map(|n| n.map(str::to_string)).collect();
                return Ok(Pattern {
                    engine: Engine::Fast(re),
                    names,
                });
            }
            Err(e) => e,
        };
        let fancy = fancy_regex::RegexBuilder::new(&translated)
            .case_insensitive(flags.ignorecase)
            .multi_line(flags.multiline)
            .dot_matches_new_line(flags.dotall)
            .build()
            .map_err(|e| python_error(&fast_error, &e))?;
        let names = fancy
            .capture_names()
            .map(|n| n.map(str::to_string))
            .collect();
        Ok(Pattern {
            engine: Engine::Fancy(fancy),
            names,
        })
    }

    /// How many groups, counting group 0 (the whole match).
    pub fn captures_len(&self) -> usize {
        self.names.len()
    }

    /// The index of a named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// Python's `bool(re.search(...))`. The error is fancy-regex giving up (backtrack limit).
    pub fn is_match(&self, text: &str) -> Result<bool, String> {
        match &self.engine {
            Engine::Fast(re) => Ok(re.is_match(text)),
            Engine::Fancy(re) => re.is_match(text).map_err(|e| e.to_string()),
        }
    }

    /// Python's `re.search`: the first match's groups.
    pub fn captures<'p, 't>(&'p self, text: &'t str) -> Result<Option<Caps<'p, 't>>, String> {
        Ok(self.captures_all(text, 1)?.pop())
    }

    /// Python's `re.finditer`: the groups of each non-overlapping match, at most `limit` of
    /// them (0 for all).
    pub fn captures_all<'p, 't>(
        &'p self,
        text: &'t str,
        limit: usize,
    ) -> Result<Vec<Caps<'p, 't>>, String> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let caps = |spans| Caps {
            text,
            spans,
            pattern: self,
        };
        match &self.engine {
            Engine::Fast(re) => Ok(re
                .captures_iter(text)
                .take(limit)
                .map(|c| caps(c.iter().map(|m| m.map(|m| m.range())).collect()))
                .collect()),
            Engine::Fancy(re) => re
                .captures_iter(text)
                .take(limit)
                .map(|c| {
                    let c = c.map_err(|e| e.to_string())?;
                    Ok(caps(c.iter().map(|m| m.map(|m| m.range())).collect()))
                })
                .collect(),
        }
    }
}

/// One piece of a parsed replacement template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

/// A parsed replacement template.
#[derive(Debug, Clone, PartialEq)]
pub struct Replacement(pub Vec<Piece>);

impl Replacement {
    /// Reads `template` for the groups of `re`; an error says what Python's would.
    pub fn parse(template: &str, re: &Pattern) -> Result<Replacement, String> {
        parse_pieces(template, re).map(Replacement)
    }

    /// The replacement for one match.
    pub fn expand(&self, caps: &Caps, out: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(i) => out.push_str(caps.get(*i).unwrap_or("")),
                Piece::Named(n) => out.push_str(caps.name(n).unwrap_or("")),
            }
        }
    }

    /// Python's `re.subn`: non-overlapping matches replaced, at most `count` of them (0 for
    /// all); the text and how many were replaced.
    pub fn subn(&self, re: &Pattern, text: &str, count: usize) -> Result<(String, usize), String> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut done = 0;
        for caps in re.captures_all(text, count)? {
            let Some(whole) = caps.span(0) else { continue };
            out.push_str(&text[last..whole.start]);
            self.expand(&caps, &mut out);
            last = whole.end;
            done += 1;
        }
        out.push_str(&text[last..]);
        Ok((out, done))
    }
}

/// Python's `str.isidentifier`, near enough: a letter or `_`, then letters, digits or `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Parses a Python `re.sub` replacement: `\1`, `\g<1>`, `\g<name>`, `\n` and the other
/// character escapes; an unknown escape of an ASCII letter is an error, as in Python.
fn parse_pieces(template: &str, re: &Pattern) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = template.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let groups = re.captures_len();
    let mut i = 0;
    let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(text)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            text.push(c);
            i += 1;
            continue;
        }
        let Some(&n) = chars.get(i + 1) else {
            return Err(format!("bad escape (end of pattern) at position {i}"));
        };
        match n {
            'g' => {
                let rest = &chars[i + 2..];
                if rest.first() != Some(&'<') {
                    return Err(format!("missing < at position {}", i + 2));
                }
                let Some(end) = rest.iter().position(|c| *c == '>') else {
                    return Err(format!(
                        "missing >, unterminated name at position {}",
                        i + 3
                    ));
                };
                let name: String = rest[1..end].iter().collect();
                flush(&mut text, &mut pieces);
                if let Ok(index) = name.parse::<usize>() {
                    if index >= groups {
                        return Err(format!(
                            "invalid group reference {index} at position {}",
                            i + 3
                        ));
                    }
                    pieces.push(Piece::Group(index));
                } else if re.group_index(&name).is_some() {
                    pieces.push(Piece::Named(name));
                } else if name.is_empty() {
                    return Err(format!("missing group name at position {}", i + 3));
                } else if !is_identifier(&name) {
                    return Err(format!(
                        "bad character in group name '{name}' at position {}",
                        i + 3
                    ));
                } else {
                    return Err(format!("unknown group name '{name}'"));
                }
                i += 2 + end + 1;
            }
            '0' => {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|c| c.is_digit(8))
                    .collect();
                let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                text.push(char::from_u32(code).unwrap_or('\0'));
                i += 1 + digits.len();
            }
            d if d.is_ascii_digit() => {
                let three: String = chars[i + 1..].iter().take(3).collect();
                if three.len() == 3 && three.chars().all(|c| c.is_digit(8)) {
                    let code = u32::from_str_radix(&three, 8).unwrap_or(0);
                    if code > 0o377 {
                        return Err(format!(
                            "octal escape value \\{three} outside of range 0-0o377 at position {i}"
                        ));
                    }
                    text.push(char::from_u32(code).unwrap_or('\0'));
                    i += 4;
                    continue;
                }
                let digits: String = chars[i + 1..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                let index: usize = digits.parse().unwrap_or(0);
                if index >= groups {
                    return Err(format!(
                        "invalid group reference {index} at position {}",
                        i + 1
                    ));
                }
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Group(index));
                i += 1 + digits.len();
            }
            'n' | 't' | 'r' | 'f' | 'v' | 'a' | 'b' | '\\' => {
                text.push(match n {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    'a' => '\x07',
                    'b' => '\x08',
                    _ => '\\',
                });
                i += 2;
            }
            l if l.is_ascii_alphabetic() => {
                return Err(format!("bad escape \\{l} at position {i}"));
            }
            other => {
                text.push('\\');
                text.push(other);
                i += 2;
            }
        }
    }
    flush(&mut text, &mut pieces);
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Pattern {
        Pattern::compile(p, Flags::default()).unwrap()
    }

    #[test]
    fn backreferences_and_lookaround_compile() {
        let r = re(r"^(REF) .* \1$");
        assert!(r.is_match("REF xx REF").unwrap());
        assert!(!r.is_match("REF xx FER").unwrap());
        assert!(re(r"(?P<w>a)(?P=w)").is_match("aa").unwrap());
        assert!(re(r"foo(?!bar)").is_match("foobaz").unwrap());
        assert!(!re(r"foo(?!bar)").is_match("foobar").unwrap());
        assert!(re(r"(?<=x)y").is_match("xy").unwrap());
    }

    #[test]
    fn fast_path_and_python_syntax() {
        assert!(matches!(re("a+b").engine, Engine::Fast(_)));
        assert!(matches!(re(r"(a)\1").engine, Engine::Fancy(_)));
        assert!(re(r"x\Z").is_match("ax").unwrap());
        assert!(!re(r"x\Z").is_match("x\n").unwrap());
        let ml = Flags {
            multiline: true,
            ..Flags::default()
        };
        let r = Pattern::compile(r"^(\w)=(\d)$", ml).unwrap();
        let all = r.captures_all("a=1\nb=2\nc", 0).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].get(1), Some("b"));
        assert_eq!(r.captures_len(), 3);
        let err = Pattern::compile("*a", Flags::default()).unwrap_err();
        assert_eq!(err, "nothing to repeat at position 0");
    }

    #[test]
    fn substitutes_with_backreferences_in_the_pattern() {
        let r = re(r"(\w)\1");
        let rep = Replacement::parse(r"<\1>", &r).unwrap();
        assert_eq!(rep.subn(&r, "aabcc", 0).unwrap(), ("<a>b<c>".into(), 2));
        assert_eq!(rep.subn(&r, "aabcc", 1).unwrap(), ("<a>bcc".into(), 1));
    }
}
