//! Python's `%` string formatting (`"Failed to read %s" % path`, `"%d of %d" % (a, b)`,
//! `"%(name)s" % dict`), which Jinja gets from Python's `str` and templates written for Ansible
//! use. minijinja's `%` is only arithmetic, so `jinja_source` turns `'text' % args` into a call
//! of [`PERCENT`].

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, Value};

use super::{err, python_float_repr};
use crate::template::python_repr;

/// The function `'text' % args` becomes.
pub(crate) const PERCENT: &str = "__settle_percent";

/// One conversion: `%-08.3f` → flags `-0`, width 8, precision 3, type `f`.
#[derive(Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alternate: bool,
    width: usize,
    precision: Option<usize>,
}

fn type_error(message: &str) -> Error {
    err(message.to_string())
}

/// `format % args`, as Python's `str.__mod__`.
pub(crate) fn percent(format: &str, args: &Value) -> Result<String, Error> {
    let positional: Vec<Value> = if args.is_tuple() {
        args.try_iter()?.collect()
    } else {
        vec![args.clone()]
    };
    let mapping = (args.kind() == ValueKind::Map).then_some(args);
    let mut next = 0usize;
    let mut used_mapping = false;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let name: String = chars.by_ref().take_while(|c| *c != ')').collect();
            key = Some(name);
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alternate = true,
                _ => break,
            }
            chars.next();
        }
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            spec.width = spec.width.saturating_mul(10).saturating_add(d as usize);
            chars.next();
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p.saturating_mul(10).saturating_add(d as usize);
                chars.next();
            }
            spec.precision = Some(p);
        }
        let Some(kind) = chars.next() else {
            return Err(err("incomplete format"));
        };
        if kind == '%' {
            out.push('%');
            continue;
        }
        let value = match key {
            Some(name) => {
                let Some(map) = mapping else {
                    return Err(type_error("format requires a mapping"));
                };
                used_mapping = true;
                let v = map.get_item(&Value::from(name.as_str()))?;
                if v.is_undefined() {
                    return Err(err(format!(
                        "KeyError: {}",
                        python_repr(&Value::from(name), false)
                    )));
                }
                v
            }
            None => {
                let v = positional
                    .get(next)
                    .cloned()
                    .ok_or_else(|| type_error("not enough arguments for format string"))?;
                next += 1;
                v
            }
        };
        let text = convert(kind, &value, &spec)?;
        out.push_str(&pad(text, &spec, kind));
    }
    if !used_mapping && mapping.is_none() && next < positional.len() {
        return Err(type_error(
            "not all arguments converted during string formatting",
        ));
    }
    Ok(out)
}

fn number(value: &Value, kind: char) -> Result<f64, Error> {
    match value.kind() {
        ValueKind::Number | ValueKind::Bool => Ok(f64::try_from(value.clone()).unwrap_or(0.0)),
        _ => Err(type_error(&format!(
            "%{kind} format: a real number is required, not {}",
            crate::template::python_type(value)
        ))),
    }
}

fn integer(value: &Value, kind: char) -> Result<i128, Error> {
    if let Ok(i) = i128::try_from(value.clone()) {
        return Ok(i);
    }
    if value.kind() == ValueKind::Bool {
        return Ok(i128::from(value.is_true()));
    }
    match value.kind() {
        ValueKind::Number => Ok(number(value, kind)?.trunc() as i128),
        _ => Err(type_error(&format!(
            "%{kind} format: a real number is required, not {}",
            crate::template::python_type(value)
        ))),
    }
}

fn signed(text: String, negative: bool, spec: &Spec) -> String {
    if negative {
        format!("-{text}")
    } else if spec.plus {
        format!("+{text}")
    } else if spec.space {
        format!(" {text}")
    } else {
        text
    }
}

fn convert(kind: char, value: &Value, spec: &Spec) -> Result<String, Error> {
    Ok(match kind {
        's' => {
            let text = python_repr(value, true);
            match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            }
        }
        'r' | 'a' => python_repr(value, false),
        'd' | 'i' | 'u' => {
            let n = integer(value, kind)?;
            signed(n.unsigned_abs().to_string(), n < 0, spec)
        }
        'x' | 'X' | 'o' => {
            let n = integer(value, kind)?;
            let digits = match kind {
                'x' => format!("{:x}", n.unsigned_abs()),
                'X' => format!("{:X}", n.unsigned_abs()),
                _ => format!("{:o}", n.unsigned_abs()),
            };
            let prefix = match (spec.alternate, kind) {
                (false, _) => "",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                (true, _) => "0o",
            };
            signed(format!("{prefix}{digits}"), n < 0, spec)
        }
        'f' | 'F' => {
            let f = number(value, kind)?;
            let p = spec.precision.unwrap_or(6);
            signed(
                format!("{:.p$}", f.abs()),
                f.is_sign_negative() && f != 0.0,
                spec,
            )
        }
        'e' | 'E' => {
            let f = number(value, kind)?;
            let p = spec.precision.unwrap_or(6);
            let text = python_exponent(format!("{:.p$e}", f.abs()));
            let text = if kind == 'E' {
                text.to_uppercase()
            } else {
                text
            };
            signed(text, f.is_sign_negative() && f != 0.0, spec)
        }
        'g' | 'G' => {
            let f = number(value, kind)?;
            let text = python_float_repr(f.abs());
            let text = if kind == 'G' {
                text.to_uppercase()
            } else {
                text
            };
            signed(text, f.is_sign_negative() && f != 0.0, spec)
        }
        'c' => match value.as_str() {
            Some(s) if s.chars().count() == 1 => s.to_string(),
            _ => {
                let n = integer(value, kind)?;
                u32::try_from(n)
                    .ok()
                    .and_then(char::from_u32)
                    .map(String::from)
                    .ok_or_else(|| err("%c arg not in range(0x110000)"))?
            }
        },
        other => {
            return Err(err(format!(
                "unsupported format character '{other}' (0x{:x})",
                other as u32
            )));
        }
    })
}

/// Rust's `1.5e2` as Python writes it: `1.5e+02`.
fn python_exponent(text: String) -> String {
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

fn pad(text: String, spec: &Spec, kind: char) -> String {
    let len = text.chars().count();
    if len >= spec.width {
        return text;
    }
    let fill = spec.width - len;
    if spec.left {
        return format!("{text}{}", " ".repeat(fill));
    }
    if spec.zero && !matches!(kind, 's' | 'r' | 'a' | 'c') {
        let sign_len = usize::from(text.starts_with(['-', '+', ' ']));
        let (sign, digits) = text.split_at(sign_len);
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    format!("{}{text}", " ".repeat(fill))
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function(PERCENT, |format: String, args: Value| {
        percent(&format, &args)
    });
}

#[cfg(test)]
mod unit {
    use super::super::testing::render;

    #[test]
    fn formats_as_python() {
        let cases = [
            (
                "{{ __settle_percent('Failed to read %s', ('/x',)) }}",
                "Failed to read /x",
            ),
            (
                "{{ __settle_percent('%s and %r', ('a', 'b')) }}",
                "a and 'b'",
            ),
            (
                "{{ __settle_percent('%d%% of %5.2f', (3.9, 2.5)) }}",
                "3% of  2.50",
            ),
            ("{{ __settle_percent('%s', [1, 'a']) }}", "[1, 'a']"),
            (
                "{{ __settle_percent('%(n)s=%(v)03d', {'n': 'x', 'v': 7}) }}",
                "x=007",
            ),
            (
                "{{ __settle_percent('%-4s|%x|%#o|%e', ('a', 255, 8, 1500.0)) }}",
                "a   |ff|0o10|1.500000e+03",
            ),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template), expected, "{template}");
        }
        assert!(render("{{ __settle_percent('%s %s', ('a',)) }}").contains("not enough arguments"));
        assert!(render("{{ __settle_percent('%s', ('a', 'b')) }}").contains("not all arguments"));
    }
}
