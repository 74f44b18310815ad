//! JSON as Python's `json.dumps(value, sort_keys=True, ensure_ascii=False, indent=…)` writes
//! it, the form Ansible's output takes (the default callback, `ansible-inventory`): keys
//! sorted, `", "`/`": "` between items on one line, or one item a line under `indent`; and
//! Python's names for the types of such values.

use serde_json::Value;

/// Python's name for a JSON value's type, as Ansible's messages give it (`dict`, `NoneType`).
pub fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `value` as one line (`indent: None`) or one item a line, `indent` spaces a level.
pub fn py_json(value: &Value, indent: Option<usize>) -> String {
    py_json_with(value, indent, &|_| None)
}

/// As [`py_json`], with `rewrite` given each string first: a value it returns is written in
/// the string's place (`ansible-inventory` writes untrusted text as `{"__ansible_unsafe": …}`).
pub fn py_json_with(
    value: &Value,
    indent: Option<usize>,
    rewrite: &dyn Fn(&str) -> Option<Value>,
) -> String {
    let mut out = String::new();
    write(value, indent, rewrite, 0, &mut out);
    out
}

fn write(
    value: &Value,
    indent: Option<usize>,
    rewrite: &dyn Fn(&str) -> Option<Value>,
    depth: usize,
    out: &mut String,
) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let separator = |out: &mut String| {
        out.push(',');
        if indent.is_none() {
            out.push(' ');
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    separator(out);
                }
                newline(out, depth + 1);
                write(item, indent, rewrite, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    separator(out);
                }
                newline(out, depth + 1);
                write_string(key, out);
                out.push_str(": ");
                write(&map[key.as_str()], indent, rewrite, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        // What takes a string's place is written as it is, not rewritten again.
        Value::String(s) => match rewrite(s) {
            Some(other) => write(&other, indent, &|_| None, depth, out),
            None => write_string(s, out),
        },
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.push_str(&python_float_repr(f)),
            None => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// Python's `repr(float)`: the shortest text that reads back, `1e+20`, `1.5`, `0.0001`.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp >= n - 1 {
            format!("{digits}{}.0", "0".repeat((exp - (n - 1)) as usize))
        } else if exp >= 0 {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// A JSON string with Python's escapes (`ensure_ascii=False`: other text as it is).
fn write_string(s: &str, out: &mut String) {
    write_json_string(s, false, out);
}

/// A JSON string as Python's `json.dumps` escapes it: with `ensure_ascii`, everything outside
/// printable ASCII as `\uXXXX` (UTF-16 units), else only control characters.
pub fn write_json_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7E) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_as_python_does() {
        let v = json!({"b": [1, "é\u{1}"], "a": {}});
        assert_eq!(py_json(&v, None), r#"{"a": {}, "b": [1, "é\u0001"]}"#);
        assert_eq!(
            py_json(&v, Some(4)),
            "{\n    \"a\": {},\n    \"b\": [\n        1,\n        \"é\\u0001\"\n    ]\n}"
        );
        let marked = py_json_with(&json!(["x"]), None, &|s| Some(json!({ "u": s })));
        assert_eq!(marked, r#"[{"u": "x"}]"#);
    }
}
