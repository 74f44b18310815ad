//! Python's `re.sub` replacement templates (`\\1`, `\\g<1>`, `\\g<name>`, `\\n`, octal escapes),
//! with Python's errors: one reading for the `replace` module and the `regex_replace` filter.

use regex::{Captures, Regex};

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
    pub fn parse(template: &str, re: &Regex) -> Result<Replacement, String> {
        parse_pieces(template, re).map(Replacement)
    }

    /// The replacement for one match.
    pub fn expand(&self, caps: &Captures, out: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            }
        }
    }

    /// Python's `re.subn`: non-overlapping matches replaced, at most `count` of them (0 for
    /// all); the text and how many were replaced.
    pub fn subn(&self, re: &Regex, text: &str, count: usize) -> (String, usize) {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut done = 0;
        for caps in re.captures_iter(text) {
            if count > 0 && done >= count {
                break;
            }
            let Some(whole) = caps.get(0) else { continue };
            out.push_str(&text[last..whole.start()]);
            self.expand(&caps, &mut out);
            last = whole.end();
            done += 1;
        }
        out.push_str(&text[last..]);
        (out, done)
    }
}

/// Parses a Python `re.sub` replacement: `\1`, `\g<1>`, `\g<name>`, `\n` and the other
/// character escapes; an unknown escape of an ASCII letter is an error, as in Python.
fn parse_pieces(template: &str, re: &Regex) -> Result<Vec<Piece>, String> {
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
            return Err("bad escape (end of pattern)".into());
        };
        match n {
            'g' => {
                let rest = &chars[i + 2..];
                if rest.first() != Some(&'<') {
                    return Err("missing <".into());
                }
                let Some(end) = rest.iter().position(|c| *c == '>') else {
                    return Err("missing >, unterminated name".into());
                };
                let name: String = rest[1..end].iter().collect();
                flush(&mut text, &mut pieces);
                if let Ok(index) = name.parse::<usize>() {
                    if index >= groups {
                        return Err(format!("invalid group reference {index}"));
                    }
                    pieces.push(Piece::Group(index));
                } else if re.capture_names().any(|n| n == Some(name.as_str())) {
                    pieces.push(Piece::Named(name));
                } else if name.is_empty() {
                    return Err("missing group name".into());
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
                            "octal escape value \\{three} outside of range 0-0o377"
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
                    return Err(format!("invalid group reference {index}"));
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
            l if l.is_ascii_alphabetic() => return Err(format!("bad escape \\{l}")),
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
