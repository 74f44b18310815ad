//! The Ansible filters and tests that minijinja does not have, or has with other manners.

use std::collections::BTreeMap;

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use sha1::Digest;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn to_json(value: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|e| err(e.to_string()))
}

/// Ansible's truthiness for `bool`: 'yes', 'on', '1', 'true' (any case) are true; the rest false.
pub(crate) fn ansible_bool(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => value.as_i64().map(|n| n == 1).unwrap_or(false),
        ValueKind::String => {
            matches!(
                value
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
                    .as_str(),
                "yes" | "on" | "1" | "true" | "y" | "t"
            )
        }
        _ => false,
    }
}

fn items(value: &Value) -> Result<Vec<Value>, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Vec::new());
    }
    Ok(value.try_iter()?.collect())
}

fn unique_push(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

fn flatten_into(value: &Value, levels: Option<i64>, skip_nulls: bool, out: &mut Vec<Value>) {
    for item in value.try_iter().into_iter().flatten() {
        if matches!(item.kind(), ValueKind::Seq) && levels.is_none_or(|l| l > 0) {
            flatten_into(&item, levels.map(|l| l - 1), skip_nulls, out);
        } else if !(skip_nulls && item.is_none()) {
            out.push(item);
        }
    }
}

fn combine_two(
    a: &serde_json::Value,
    b: &serde_json::Value,
    recursive: bool,
    list_merge: &str,
) -> serde_json::Value {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let merged = match (out.get(k), recursive) {
                    (Some(old @ J::Object(_)), true) if v.is_object() => {
                        combine_two(old, v, true, list_merge)
                    }
                    (Some(J::Array(old)), _) if v.is_array() && list_merge != "replace" => {
                        let new = v.as_array().cloned().unwrap_or_default();
                        match list_merge {
                            "append" => old.iter().chain(new.iter()).cloned().collect(),
                            "prepend" => new.iter().chain(old.iter()).cloned().collect(),
                            "append_rp" => {
                                let mut o: Vec<J> =
                                    old.iter().filter(|i| !new.contains(i)).cloned().collect();
                                o.extend(new);
                                J::Array(o)
                            }
                            "prepend_rp" => {
                                let mut o = new.clone();
                                o.extend(old.iter().filter(|i| !new.contains(i)).cloned());
                                J::Array(o)
                            }
                            _ => v.clone(),
                        }
                    }
                    _ => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            J::Object(out)
        }
        _ => b.clone(),
    }
}

fn hash_hex<D: Digest>(data: &[u8]) -> String {
    D::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_with(data: &str, algorithm: &str) -> Result<String, Error> {
    Ok(match algorithm {
        "sha1" => hash_hex::<sha1::Sha1>(data.as_bytes()),
        "md5" => hash_hex::<md5::Md5>(data.as_bytes()),
        "sha224" => hash_hex::<sha2::Sha224>(data.as_bytes()),
        "sha256" => hash_hex::<sha2::Sha256>(data.as_bytes()),
        "sha384" => hash_hex::<sha2::Sha384>(data.as_bytes()),
        "sha512" => hash_hex::<sha2::Sha512>(data.as_bytes()),
        other => return Err(err(format!("hash: unknown algorithm {other:?}"))),
    })
}

/// Python's `shlex.quote`.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn regex(pattern: &str, ignorecase: bool, multiline: bool) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| err(format!("invalid regular expression: {e}")))
}

/// Python's `\1` and `\g<name>` in a replacement, as the regex crate writes them.
fn python_replacement(rep: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = rep.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() => {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                out.push_str(&format!("${{{digits}}}"));
                i += 1 + digits.len();
                continue;
            }
            '\\' if chars.get(i + 1) == Some(&'g') && chars.get(i + 2) == Some(&'<') => {
                if let Some(end) = chars[i + 3..].iter().position(|c| *c == '>') {
                    let name: String = chars[i + 3..i + 3 + end].iter().collect();
                    out.push_str(&format!("${{{name}}}"));
                    i += 4 + end;
                    continue;
                }
                out.push('\\');
            }
            '\\' if i + 1 < chars.len() => {
                out.push(match chars[i + 1] {
                    'n' => '\n',
                    't' => '\t',
                    c => c,
                });
                i += 2;
                continue;
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Compares version strings part by part, numbers as numbers (`1.10 > 1.9`).
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts =
        |s: &str| -> Vec<String> { s.split(['.', '-', '+', '~']).map(str::to_string).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (
            pa.get(i).map(String::as_str).unwrap_or("0"),
            pb.get(i).map(String::as_str).unwrap_or("0"),
        );
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

fn result_flag(value: &Value, key: &str) -> bool {
    value.get_attr(key).map(|v| v.is_true()).unwrap_or(false)
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", |v: Value| ansible_bool(&v));
    env.add_filter(
        "to_json",
        |v: Value, _kw: Kwargs| -> Result<String, Error> {
            serde_json::to_string(&to_json(&v)?).map_err(|e| err(e.to_string()))
        },
    );
    env.add_filter(
        "to_nice_json",
        |v: Value, kw: Kwargs| -> Result<String, Error> {
            let indent: usize = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
            let json = to_json(&v)?;
            let mut buf = Vec::new();
            let pad = " ".repeat(indent);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(&sort_keys(json), &mut ser)
                .map_err(|e| err(e.to_string()))?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        },
    );
    env.add_filter("from_json", |s: String| -> Result<Value, Error> {
        let v: serde_json::Value =
            serde_json::from_str(&s).map_err(|e| err(format!("from_json: {e}")))?;
        Ok(Value::from(minijinja::value::Serde(&v)))
    });
    env.add_filter(
        "to_yaml",
        |v: Value, _kw: Kwargs| -> Result<String, Error> {
            settle_yaml::to_string(&to_json(&v)?).map_err(err)
        },
    );
    env.add_filter(
        "to_nice_yaml",
        |v: Value, _kw: Kwargs| -> Result<String, Error> {
            settle_yaml::to_string(&to_json(&v)?).map_err(err)
        },
    );
    env.add_filter("from_yaml", |s: String| -> Result<Value, Error> {
        let node = settle_yaml::parse_str(&s, "<from_yaml>").map_err(|e| err(e.to_string()))?;
        Ok(Value::from(minijinja::value::Serde(node.to_value())))
    });
    env.add_filter("b64encode", |s: String| {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    });
    env.add_filter("b64decode", |s: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| err(format!("b64decode: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    });
    env.add_filter(
        "regex_replace",
        |s: String,
         pattern: String,
         replacement: Option<String>,
         kw: Kwargs|
         -> Result<String, Error> {
            let re = regex(
                &pattern,
                kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
                kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
            )?;
            let count: usize = kw.get::<Option<usize>>("count")?.unwrap_or(0);
            Ok(re
                .replacen(
                    &s,
                    count,
                    python_replacement(&replacement.unwrap_or_default()).as_str(),
                )
                .into_owned())
        },
    );
    env.add_filter(
        "regex_search",
        |s: String, pattern: String, groups: Rest<String>, kw: Kwargs| -> Result<Value, Error> {
            let re = regex(
                &pattern,
                kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
                kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
            )?;
            let Some(caps) = re.captures(&s) else {
                return Ok(Value::from(()));
            };
            if groups.is_empty() {
                return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
            }
            let mut out = Vec::new();
            for g in groups.iter() {
                let g = g.trim_start_matches('\\');
                let m = match g.parse::<usize>() {
                    Ok(i) => caps.get(i),
                    Err(_) => caps.name(g.trim_start_matches("g<").trim_end_matches('>')),
                };
                out.push(Value::from(m.map_or("", |m| m.as_str())));
            }
            Ok(Value::from(out))
        },
    );
    env.add_filter(
        "regex_findall",
        |s: String, pattern: String, kw: Kwargs| -> Result<Vec<String>, Error> {
            let re = regex(
                &pattern,
                kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
                kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
            )?;
            Ok(re.find_iter(&s).map(|m| m.as_str().to_string()).collect())
        },
    );
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("basename", |s: String| {
        s.rsplit('/').next().unwrap_or("").to_string()
    });
    env.add_filter("dirname", |s: String| match s.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => s[..i].to_string(),
        None => String::new(),
    });
    env.add_filter("expanduser", |s: String| match s.strip_prefix('~') {
        Some(rest) => format!("{}{rest}", std::env::var("HOME").unwrap_or_default()),
        None => s,
    });
    env.add_filter("splitext", |s: String| -> Vec<String> {
        let name_start = s.rfind('/').map_or(0, |i| i + 1);
        match s[name_start..].rfind('.') {
            Some(i) if i > 0 => vec![
                s[..name_start + i].to_string(),
                s[name_start + i..].to_string(),
            ],
            _ => vec![s.clone(), String::new()],
        }
    });
    env.add_filter("hash", |s: String, algorithm: Option<String>| {
        hash_with(&s, algorithm.as_deref().unwrap_or("sha1"))
    });
    env.add_filter("checksum", |s: String| hash_with(&s, "sha1"));
    env.add_filter("md5", |s: String| hash_with(&s, "md5"));
    env.add_filter("sha1", |s: String| hash_with(&s, "sha1"));
    env.add_filter(
        "mandatory",
        |v: Value, msg: Option<String>| -> Result<Value, Error> {
            if v.is_undefined() {
                return Err(Error::new(
                    ErrorKind::UndefinedError,
                    msg.unwrap_or_else(|| "Mandatory variable not defined.".into()),
                ));
            }
            Ok(v)
        },
    );
    env.add_filter(
        "ternary",
        |v: Value, yes: Value, no: Value, none: Option<Value>| {
            if v.is_none()
                && let Some(n) = none
            {
                return n;
            }
            if v.is_true() { yes } else { no }
        },
    );
    env.add_filter("quote", |s: Value| shell_quote(&s.to_string()));
    env.add_filter("union", |a: Value, b: Value| -> Result<Value, Error> {
        let mut out = Vec::new();
        for v in items(&a)?.into_iter().chain(items(&b)?) {
            unique_push(&mut out, v);
        }
        Ok(Value::from(out))
    });
    env.add_filter("intersect", |a: Value, b: Value| -> Result<Value, Error> {
        let other = items(&b)?;
        let mut out = Vec::new();
        for v in items(&a)?.into_iter().filter(|v| other.contains(v)) {
            unique_push(&mut out, v);
        }
        Ok(Value::from(out))
    });
    env.add_filter("difference", |a: Value, b: Value| -> Result<Value, Error> {
        let other = items(&b)?;
        let mut out = Vec::new();
        for v in items(&a)?.into_iter().filter(|v| !other.contains(v)) {
            unique_push(&mut out, v);
        }
        Ok(Value::from(out))
    });
    env.add_filter(
        "symmetric_difference",
        |a: Value, b: Value| -> Result<Value, Error> {
            let (x, y) = (items(&a)?, items(&b)?);
            let mut out = Vec::new();
            for v in x
                .iter()
                .filter(|v| !y.contains(v))
                .chain(y.iter().filter(|v| !x.contains(v)))
            {
                unique_push(&mut out, v.clone());
            }
            Ok(Value::from(out))
        },
    );
    env.add_filter(
        "flatten",
        |v: Value, levels: Option<i64>, kw: Kwargs| -> Result<Value, Error> {
            let levels = match levels {
                Some(l) => Some(l),
                None => kw.get::<Option<i64>>("levels")?,
            };
            let skip_nulls = kw.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
            let mut out = Vec::new();
            flatten_into(&v, levels, skip_nulls, &mut out);
            Ok(Value::from(out))
        },
    );
    env.add_filter(
        "combine",
        |base: Value, others: Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
            let recursive = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
            let list_merge = kw
                .get::<Option<String>>("list_merge")?
                .unwrap_or_else(|| "replace".into());
            let mut acc = to_json(&base)?;
            for other in others.iter() {
                let parts = if matches!(other.kind(), ValueKind::Seq) {
                    items(other)?
                } else {
                    vec![other.clone()]
                };
                for part in parts {
                    acc = combine_two(&acc, &to_json(&part)?, recursive, &list_merge);
                }
            }
            Ok(Value::from(minijinja::value::Serde(&acc)))
        },
    );
    env.add_filter(
        "dict2items",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let key_name = kw
                .get::<Option<String>>("key_name")?
                .unwrap_or_else(|| "key".into());
            let value_name = kw
                .get::<Option<String>>("value_name")?
                .unwrap_or_else(|| "value".into());
            let serde_json::Value::Object(map) = to_json(&v)? else {
                return Err(err("dict2items requires a dictionary"));
            };
            let out: Vec<serde_json::Value> = map
                .into_iter()
                .map(|(k, v)| serde_json::json!({ key_name.as_str(): k, value_name.as_str(): v }))
                .collect();
            Ok(Value::from(minijinja::value::Serde(&out)))
        },
    );
    env.add_filter(
        "items2dict",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let key_name = kw
                .get::<Option<String>>("key_name")?
                .unwrap_or_else(|| "key".into());
            let value_name = kw
                .get::<Option<String>>("value_name")?
                .unwrap_or_else(|| "value".into());
            let mut out = serde_json::Map::new();
            for item in items(&v)? {
                let item = to_json(&item)?;
                let key = match item.get(&key_name) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(err(format!("items2dict: an item has no {key_name:?}"))),
                };
                out.insert(
                    key,
                    item.get(&value_name)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                );
            }
            Ok(Value::from(minijinja::value::Serde(&out)))
        },
    );
    env.add_filter("dict", |v: Value| -> Result<Value, Error> {
        let mut out = serde_json::Map::new();
        for pair in items(&v)? {
            let pair = items(&pair)?;
            if pair.len() == 2 {
                out.insert(pair[0].to_string(), to_json(&pair[1])?);
            }
        }
        Ok(Value::from(minijinja::value::Serde(&out)))
    });
    env.add_filter("type_debug", |v: Value| {
        match v.kind() {
            ValueKind::Bool => "bool",
            ValueKind::Number if v.is_integer() => "int",
            ValueKind::Number => "float",
            ValueKind::String => "str",
            ValueKind::Seq => "list",
            ValueKind::Map => "dict",
            ValueKind::None => "NoneType",
            _ => "object",
        }
        .to_string()
    });
    env.add_filter(
        "strftime",
        |fmt: String, _seconds: Option<Value>| -> Result<String, Error> {
            Err(err(format!("strftime ({fmt}) is not supported by settle")))
        },
    );
    env.add_filter("version_compare", version_test);
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("changed", |v: Value| result_flag(&v, "changed"));
    env.add_test("failed", |v: Value| result_flag(&v, "failed"));
    env.add_test("succeeded", |v: Value| !result_flag(&v, "failed"));
    env.add_test("success", |v: Value| !result_flag(&v, "failed"));
    env.add_test("skipped", |v: Value| result_flag(&v, "skipped"));
    env.add_test("truthy", |v: Value| v.is_true());
    env.add_test("falsy", |v: Value| !v.is_true());
    env.add_test(
        "match",
        |s: String, pattern: String, kw: Kwargs| -> Result<bool, Error> {
            let re = regex(
                &format!("^(?:{pattern})"),
                kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
                kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
            )?;
            Ok(re.is_match(&s))
        },
    );
    for name in ["search", "regex"] {
        env.add_test(
            name,
            |s: String, pattern: String, kw: Kwargs| -> Result<bool, Error> {
                let re = regex(
                    &pattern,
                    kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
                    kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
                )?;
                Ok(re.is_match(&s))
            },
        );
    }
    env.add_test("contains", |seq: Value, item: Value| {
        items(&seq).map(|i| i.contains(&item)).unwrap_or(false)
    });
    env.add_test("subset", |a: Value, b: Value| -> Result<bool, Error> {
        let other = items(&b)?;
        Ok(items(&a)?.iter().all(|v| other.contains(v)))
    });
    env.add_test("superset", |a: Value, b: Value| -> Result<bool, Error> {
        let mine = items(&a)?;
        Ok(items(&b)?.iter().all(|v| mine.contains(v)))
    });
    env.add_test("file", |s: String| std::path::Path::new(&s).is_file());
    env.add_test("directory", |s: String| std::path::Path::new(&s).is_dir());
    env.add_test("link", |s: String| {
        std::fs::symlink_metadata(&s)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
    });
    env.add_test("exists", |s: String| std::path::Path::new(&s).exists());
    env.add_test("abs", |s: String| s.starts_with('/'));
}

fn version_test(
    _state: &State,
    a: Value,
    b: Value,
    op: Option<String>,
    kw: Kwargs,
) -> Result<bool, Error> {
    let op = match op {
        Some(o) => o,
        None => kw
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    // Accepted and read (minijinja rejects unread keyword arguments); settle's comparison is
    // the same for every version_type.
    let _ = kw.get::<Option<bool>>("strict");
    let _ = kw.get::<Option<String>>("version_type");
    let ord = compare_versions(&a.to_string(), &b.to_string());
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        other => return Err(err(format!("version: unknown operator {other:?}"))),
    })
}

/// Ansible's JSON dumps sort keys (`sort_keys=True`).
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_style_replacements() {
        assert_eq!(python_replacement(r"\1-\g<x>"), "${1}-${x}");
        assert_eq!(python_replacement("$5"), "$$5");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), std::cmp::Ordering::Greater);
        assert_eq!(compare_versions("12", "12.0"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn quote_like_shlex() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b'c"), "'a b'\"'\"'c'");
    }
}
