//! INI inventory values as Ansible 2.19 reads them: `ast.literal_eval`, falling back to the text.
//!
//! Both inline host variables (after shell-style splitting) and `[group:vars]` values go through
//! Python's `ast.literal_eval`; whatever it rejects stays the string as written. So `100` is an
//! int, `False` a bool, `[1, 2]` and `(1, 2)` lists, `"quoted"` the string without its quotes,
//! while `yes`, `true`, `hello` and `0644` (a syntax error in Python 3) stay strings. `set()` is
//! an empty list; `...` and complex numbers (`1j`, `1+2j`) become their Python `str()`, as
//! Ansible turns them back into text, at any depth.

use serde_json::{Map, Number, Value};

/// Python's `ast.literal_eval(text)`, or the text itself when Python would refuse it.
pub(crate) fn parse_value(text: &str) -> Value {
    let trimmed = text.trim_start_matches([' ', '\t']);
    let mut parser = Parser {
        src: trimmed.as_bytes(),
        text: trimmed,
        pos: 0,
        nesting: 0,
    };
    match parser.top() {
        Some(v) => v,
        None => Value::String(text.to_string()),
    }
}

/// Python refuses more than 200 nested brackets; so do we (and never recurse further).
const MAX_NESTING: usize = 200;

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    nesting: usize,
}

/// A parsed literal, before it becomes JSON: tuples and sets are lists, as Ansible makes them.
enum Lit {
    Value(Value),
    Str(String),
    Bytes(Vec<u8>),
    Int(i128),
    Float(f64),
    /// A complex number (real, imaginary): Ansible keeps its `str()`.
    Complex(f64, f64),
}

impl Lit {
    fn into_value(self) -> Option<Value> {
        Some(match self {
            Lit::Value(v) => v,
            Lit::Str(s) => Value::String(s),
            Lit::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
            Lit::Int(i) => {
                if let Ok(i) = i64::try_from(i) {
                    Value::from(i)
                } else if let Ok(u) = u64::try_from(i) {
                    Value::from(u)
                } else {
                    // Python's ints are unbounded; JSON numbers here are not.
                    return None;
                }
            }
            Lit::Float(f) => Value::Number(Number::from_f64(f)?),
            Lit::Complex(re, im) => Value::String(complex_str(re, im)),
        })
    }

    /// A dict key as JSON text, as `json.dumps` writes non-string keys.
    fn key(self) -> Option<String> {
        Some(match self {
            Lit::Str(s) => s,
            Lit::Value(Value::Bool(b)) => b.to_string(),
            Lit::Value(Value::Null) => "null".into(),
            Lit::Int(i) => i.to_string(),
            other => match other.into_value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => return None, // lists and dicts are unhashable in Python
            },
        })
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Skips spaces and comments; inside brackets newlines too.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\x0c' => self.pos += 1,
                b'\n' | b'\r' if self.nesting > 0 => self.pos += 1,
                b'\\' if matches!(self.src.get(self.pos + 1), Some(b'\n')) => self.pos += 2,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The whole input: one expression, or a bare tuple `1, 2`.
    fn top(&mut self) -> Option<Value> {
        let first = self.expr()?;
        self.skip_ws();
        let value = if self.peek() == Some(b',') {
            let mut items = vec![first.into_value()?];
            while self.eat(b',') {
                self.skip_ws();
                match self.peek() {
                    None | Some(b'\n') | Some(b'\r') => break,
                    _ => items.push(self.expr()?.into_value()?),
                }
            }
            Value::Array(items)
        } else {
            first.into_value()?
        };
        self.skip_ws();
        while matches!(self.peek(), Some(b'\n' | b'\r')) {
            self.pos += 1;
            self.skip_ws();
        }
        (self.pos == self.src.len()).then_some(value)
    }

    fn expr(&mut self) -> Option<Lit> {
        self.skip_ws();
        match self.peek()? {
            b'-' | b'+' | b'0'..=b'9' | b'.' if self.starts_signed_number() => self.signed_sum(),
            b'.' if self.src[self.pos..].starts_with(b"...") => {
                self.pos += 3;
                Some(Lit::Str("...".into()))
            }
            b'[' => self.sequence(b']').map(|v| Lit::Value(Value::Array(v))),
            b'(' => self.paren(),
            b'{' => self.brace(),
            b'\'' | b'"' => self.strings(),
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let word = &self.text[start..self.pos];
                if matches!(self.peek(), Some(b'\'' | b'"'))
                    && word.len() <= 2
                    && word
                        .chars()
                        .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'b' | 'u'))
                {
                    self.pos = start;
                    return self.strings();
                }
                match word {
                    "set" if self.eat(b'(') && self.eat(b')') => {
                        Some(Lit::Value(Value::Array(Vec::new())))
                    }
                    "True" => Some(Lit::Value(Value::Bool(true))),
                    "False" => Some(Lit::Value(Value::Bool(false))),
                    "None" => Some(Lit::Value(Value::Null)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn starts_number(&self) -> bool {
        match self.peek() {
            Some(b'.') => self.src.get(self.pos + 1).is_some_and(u8::is_ascii_digit),
            Some(c) => c.is_ascii_digit(),
            None => false,
        }
    }

    /// A number with an optional sign, then nothing else on this line of input yet.
    fn starts_signed_number(&self) -> bool {
        let mut probe = Parser {
            src: self.src,
            text: self.text,
            pos: self.pos,
            nesting: self.nesting,
        };
        if matches!(probe.peek(), Some(b'-' | b'+')) {
            probe.pos += 1;
            probe.skip_ws();
        }
        probe.starts_number()
    }

    /// What `literal_eval` accepts around numbers: a signed number (`-5`, `-1j`), or a signed
    /// int/float plus or minus an imaginary literal (`1+2j`, `-1.5-2j`).
    fn signed_sum(&mut self) -> Option<Lit> {
        let left = self.signed_number()?;
        self.skip_ws();
        let op = match self.peek() {
            Some(c @ (b'+' | b'-')) if !matches!(left, Lit::Complex(..)) => c,
            _ => return Some(left),
        };
        self.pos += 1;
        self.skip_ws();
        let Lit::Complex(_, im) = self.imaginary_or_number()? else {
            return None; // `1+2` is an expression, not a literal
        };
        let re = match left {
            Lit::Int(i) => i as f64,
            Lit::Float(f) => f,
            _ => return None,
        };
        Some(Lit::Complex(re + 0.0, if op == b'-' { -im } else { im }))
    }

    fn signed_number(&mut self) -> Option<Lit> {
        let sign = match self.peek() {
            Some(c @ (b'-' | b'+')) => {
                self.pos += 1;
                self.skip_ws();
                Some(c)
            }
            _ => None,
        };
        let lit = self.imaginary_or_number()?;
        if sign != Some(b'-') {
            return Some(lit);
        }
        match lit {
            Lit::Int(i) => Some(Lit::Int(-i)),
            Lit::Float(f) => Some(Lit::Float(-f)),
            // Python negates both parts: `-1j` is `(-0-1j)`.
            Lit::Complex(re, im) => Some(Lit::Complex(-re, -im)),
            _ => None,
        }
    }

    /// A number, or an imaginary literal (`2j`, `1.5J`) when `j` follows it.
    fn imaginary_or_number(&mut self) -> Option<Lit> {
        let lit = self.number()?;
        if !matches!(self.peek(), Some(b'j' | b'J')) {
            return Some(lit);
        }
        self.pos += 1;
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return None;
        }
        match lit {
            Lit::Int(i) => Some(Lit::Complex(0.0, i as f64)),
            Lit::Float(f) => Some(Lit::Complex(0.0, f)),
            _ => None,
        }
    }

    /// Digits with single underscores between them.
    fn digits(&mut self, ok: impl Fn(u8) -> bool) -> Option<String> {
        let mut out = String::new();
        let mut last_underscore = false;
        while let Some(c) = self.peek() {
            if ok(c) {
                out.push(c as char);
                last_underscore = false;
            } else if c == b'_' && !out.is_empty() && !last_underscore {
                last_underscore = true;
            } else {
                break;
            }
            self.pos += 1;
        }
        if last_underscore {
            return None;
        }
        Some(out)
    }

    fn number(&mut self) -> Option<Lit> {
        if !self.starts_number() {
            return None;
        }
        let rest = &self.src[self.pos..];
        if rest.len() > 1
            && rest[0] == b'0'
            && rest[1].is_ascii_alphabetic()
            && !matches!(rest[1], b'j' | b'J' | b'e' | b'E')
        {
            let radix = match rest[1].to_ascii_lowercase() {
                b'x' => 16,
                b'o' => 8,
                b'b' => 2,
                _ => return None,
            };
            self.pos += 2;
            if self.peek() == Some(b'_') {
                self.pos += 1;
            }
            let digits = self.digits(|c| (c as char).is_digit(radix))?;
            if digits.is_empty() || self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            return i128::from_str_radix(&digits, radix).ok().map(Lit::Int);
        }
        let int_part = self.digits(|c| c.is_ascii_digit())?;
        let mut is_float = false;
        let mut text = int_part.clone();
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_float = true;
            text.push('.');
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                text.push_str(&self.digits(|c| c.is_ascii_digit())?);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            let mut exp = String::from("e");
            if let Some(sign @ (b'+' | b'-')) = self.peek() {
                exp.push(sign as char);
                self.pos += 1;
            }
            let digits = self.digits(|c| c.is_ascii_digit())?;
            if digits.is_empty() {
                self.pos = save;
                return None;
            }
            exp.push_str(&digits);
            text.push_str(&exp);
            is_float = true;
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() && c != b'j' && c != b'J' || c == b'_')
        {
            return None;
        }
        if is_float {
            let f: f64 = text.parse().ok()?;
            return f.is_finite().then_some(Lit::Float(f));
        }
        // Python 3 refuses leading zeros in a non-zero decimal int (`0644`, `007`).
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.bytes().any(|c| c != b'0') {
            return None;
        }
        int_part.parse::<i128>().ok().map(Lit::Int)
    }

    fn enter(&mut self) -> Option<()> {
        self.nesting += 1;
        (self.nesting <= MAX_NESTING).then_some(())
    }

    /// Items up to `close`, with an optional trailing comma; the opening bracket is next.
    fn sequence(&mut self, close: u8) -> Option<Vec<Value>> {
        self.pos += 1;
        self.enter()?;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                break;
            }
            items.push(self.expr()?.into_value()?);
            if self.eat(close) {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
        }
        self.nesting -= 1;
        Some(items)
    }

    /// `()`, `(x)`, `(x,)`, `(x, y)`.
    fn paren(&mut self) -> Option<Lit> {
        self.pos += 1;
        self.enter()?;
        if self.eat(b')') {
            self.nesting -= 1;
            return Some(Lit::Value(Value::Array(Vec::new())));
        }
        let first = self.expr()?;
        if self.eat(b')') {
            self.nesting -= 1;
            return Some(first);
        }
        let mut items = vec![first.into_value()?];
        loop {
            if !self.eat(b',') {
                return None;
            }
            if self.eat(b')') {
                break;
            }
            items.push(self.expr()?.into_value()?);
            if self.eat(b')') {
                break;
            }
        }
        self.nesting -= 1;
        Some(Lit::Value(Value::Array(items)))
    }

    /// `{}` and `{k: v, …}` are dicts; `{a, b}` is a set, which Ansible makes a list.
    fn brace(&mut self) -> Option<Lit> {
        self.pos += 1;
        self.enter()?;
        if self.eat(b'}') {
            self.nesting -= 1;
            return Some(Lit::Value(Value::Object(Map::new())));
        }
        let first = self.expr()?;
        if self.eat(b':') {
            let mut map = Map::new();
            let value = self.expr()?.into_value()?;
            map.insert(first.key()?, value);
            loop {
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
                if self.eat(b'}') {
                    break;
                }
                let key = self.expr()?.key()?;
                if !self.eat(b':') {
                    return None;
                }
                let value = self.expr()?.into_value()?;
                map.insert(key, value);
            }
            self.nesting -= 1;
            return Some(Lit::Value(Value::Object(map)));
        }
        let mut items: Vec<Value> = Vec::new();
        let mut push = |v: Value| {
            if !items.contains(&v) {
                items.push(v);
            }
        };
        match first.into_value()? {
            Value::Array(_) | Value::Object(_) => return None, // unhashable
            v => push(v),
        }
        loop {
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
            if self.eat(b'}') {
                break;
            }
            match self.expr()?.into_value()? {
                Value::Array(_) | Value::Object(_) => return None,
                v => push(v),
            }
        }
        self.nesting -= 1;
        Some(Lit::Value(Value::Array(items)))
    }

    /// One or more adjacent string literals, concatenated (`'a' "b"` is `'ab'`).
    fn strings(&mut self) -> Option<Lit> {
        let mut text: Option<String> = None;
        let mut bytes: Option<Vec<u8>> = None;
        loop {
            self.skip_ws();
            let start = self.pos;
            let mut raw = false;
            let mut is_bytes = false;
            while let Some(c) = self.peek() {
                match c.to_ascii_lowercase() {
                    b'r' => raw = true,
                    b'b' => is_bytes = true,
                    b'u' => {}
                    _ => break,
                }
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'\'' | b'"')) {
                self.pos = start;
                break;
            }
            let piece = self.string_body(raw, is_bytes)?;
            if is_bytes {
                if text.is_some() {
                    return None; // Python refuses to mix bytes and str
                }
                bytes.get_or_insert_with(Vec::new).extend(piece);
            } else {
                if bytes.is_some() {
                    return None;
                }
                let piece = String::from_utf8(piece).ok()?;
                text.get_or_insert_with(String::new).push_str(&piece);
            }
        }
        match (text, bytes) {
            (Some(t), None) => Some(Lit::Str(t)),
            (None, Some(b)) => Some(Lit::Bytes(b)),
            _ => None,
        }
    }

    /// A quoted body, the opening quote next; returns its bytes (UTF-8 for str).
    fn string_body(&mut self, raw: bool, is_bytes: bool) -> Option<Vec<u8>> {
        let quote = self.peek()?;
        let triple = self.src[self.pos..].starts_with(&[quote, quote, quote]);
        self.pos += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            if c == quote {
                if !triple {
                    self.pos += 1;
                    return Some(out);
                }
                if self.src[self.pos..].starts_with(&[quote, quote, quote]) {
                    self.pos += 3;
                    return Some(out);
                }
                out.push(c);
                self.pos += 1;
                continue;
            }
            if (c == b'\n' || c == b'\r') && !triple {
                return None;
            }
            if is_bytes && c >= 0x80 {
                return None; // bytes can only contain ASCII literal characters
            }
            if c != b'\\' {
                out.push(c);
                self.pos += 1;
                continue;
            }
            let next = *self.src.get(self.pos + 1)?;
            if raw {
                // A raw string keeps the backslash; it still protects the next quote.
                out.push(b'\\');
                out.push(next);
                self.pos += 2;
                continue;
            }
            self.pos += 2;
            let simple = match next {
                b'\n' => Some(None),
                b'\\' => Some(Some(b'\\')),
                b'\'' => Some(Some(b'\'')),
                b'"' => Some(Some(b'"')),
                b'a' => Some(Some(7)),
                b'b' => Some(Some(8)),
                b'f' => Some(Some(12)),
                b'n' => Some(Some(b'\n')),
                b'r' => Some(Some(b'\r')),
                b't' => Some(Some(b'\t')),
                b'v' => Some(Some(11)),
                _ => None,
            };
            if let Some(byte) = simple {
                out.extend(byte);
                continue;
            }
            match next {
                b'0'..=b'7' => {
                    let mut value = u32::from(next - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    self.push_code(&mut out, value, is_bytes)?;
                }
                b'x' => {
                    let value = self.hex(2)?;
                    self.push_code(&mut out, value, is_bytes)?;
                }
                b'u' | b'U' if !is_bytes => {
                    let value = self.hex(if next == b'u' { 4 } else { 8 })?;
                    self.push_code(&mut out, value, false)?;
                }
                b'N' if !is_bytes => return None, // named escapes: not worth a Unicode table
                _ => {
                    // Unknown escapes keep their backslash (Python only warns).
                    out.push(b'\\');
                    self.pos -= 1;
                }
            }
        }
    }

    fn hex(&mut self, count: usize) -> Option<u32> {
        let digits = self.src.get(self.pos..self.pos + count)?;
        let digits = std::str::from_utf8(digits).ok()?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += count;
        Some(value)
    }

    fn push_code(&self, out: &mut Vec<u8>, value: u32, is_bytes: bool) -> Option<()> {
        if is_bytes {
            out.push(u8::try_from(value).ok()?);
        } else {
            let c = char::from_u32(value)?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        Some(())
    }
}

/// Python's `str(complex)`: `2j`, `(1+2j)`, `(-0-1j)`, each part as `repr` writes a float but
/// without a trailing `.0`.
fn complex_str(re: f64, im: f64) -> String {
    let imag = py_float_repr(im);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if imag.starts_with('-') { "" } else { "+" };
    format!("({}{sign}{imag}j)", py_float_repr(re))
}

/// A float as Python's `repr` writes it inside a complex: the shortest digits, in exponent
/// form below 1e-4 or from 1e16, and no `.0` on whole numbers.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if digits.len() as i32 <= point {
        format!(
            "{digits}{}",
            "0".repeat((point - digits.len() as i32) as usize)
        )
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{text}")
}
