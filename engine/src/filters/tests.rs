//! Ansible's Jinja tests: task results (`changed`, `failed`, `skipped`, `reachable`,
//! `finished`, …), regular expressions (`match`, `search`, `regex`), `version`, sets
//! (`subset`, `issuperset`, `contains`, `any`, `all`), files (`is_file`, `same_file`, `mount`,
//! …), `truthy`/`falsy`, `nan`, `uri`/`url`/`urn` and `vault_encrypted`.

use std::os::unix::fs::MetadataExt;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, Value};

use super::{err, items};

fn result_map<'a>(v: &'a Value, test: &str) -> Result<&'a Value, Error> {
    if v.kind() != ValueKind::Map {
        return Err(err(format!("The '{test}' test expects a dictionary")));
    }
    Ok(v)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get_attr(key).map(|f| f.is_true()).unwrap_or(false)
}

fn changed(v: &Value) -> Result<bool, Error> {
    let v = result_map(v, "changed")?;
    let c = v.get_attr("changed").unwrap_or(Value::UNDEFINED);
    if !c.is_undefined() {
        return Ok(c.is_true());
    }
    let results = v.get_attr("results").unwrap_or(Value::UNDEFINED);
    if results.kind() == ValueKind::Seq {
        return Ok(items(&results)?
            .iter()
            .any(|r| r.kind() == ValueKind::Map && flag(r, "changed")));
    }
    Ok(false)
}

/// Ansible's reading of a loose version: numbers and letter runs, compared piecewise.
fn loose_parts(s: &str) -> Vec<Result<u64, String>> {
    let re = regex::Regex::new(r"(\d+|[a-zA-Z]+|\.)").ok();
    let Some(re) = re else { return Vec::new() };
    re.find_iter(s)
        .map(|m| m.as_str())
        .filter(|p| *p != ".")
        .map(|p| p.parse::<u64>().map_err(|_| p.to_string()))
        .collect()
}

/// Compares version strings part by part, numbers as numbers (`1.10 > 1.9`).
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (pa, pb) = (loose_parts(a), loose_parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x, y) {
            (Ok(m), Ok(n)) => m.cmp(n),
            (Err(m), Err(n)) => m.cmp(n),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Ansible's `version(value, version, operator='eq', strict=None, version_type=None)`: the
/// operator and `strict` may be given by position or by name.
fn version_test(
    a: Value,
    b: Value,
    op: Option<String>,
    strict: Option<Value>,
    kw: Kwargs,
) -> Result<bool, Error> {
    let op = match op {
        Some(o) => o,
        None => kw
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    let strict = match strict {
        Some(v) => Some(v),
        None => kw.get::<Option<Value>>("strict")?,
    }
    .filter(|v| !v.is_none() && !v.is_undefined());
    let version_type = kw.get::<Option<String>>("version_type")?;
    if strict.is_some() && version_type.is_some() {
        return Err(err("Cannot specify both 'strict' and 'version_type'"));
    }
    let (a, b) = (a.to_string(), b.to_string());
    if a.is_empty() {
        return Err(err("Input version value cannot be empty"));
    }
    if b.is_empty() {
        return Err(err("Version parameter to compare against cannot be empty"));
    }
    let scheme = if strict.is_some_and(|v| v.is_true()) {
        "strict".to_string()
    } else {
        version_type.unwrap_or_else(|| "loose".into())
    };
    if !["loose", "strict", "semver", "semantic", "pep440"].contains(&scheme.as_str()) {
        return Err(err(format!(
            "Invalid version type ({scheme}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'"
        )));
    }
    let ord = super::versions::compare(&scheme, &a, &b)
        .map_err(|e| err(format!("Version comparison failed: {e}")))?;
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        _ => return Err(err("Invalid operator type")),
    })
}

fn regex_test(value: &Value, pattern: &str, kw: &Kwargs, anchored: bool) -> Result<bool, Error> {
    let ic = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let ml = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    let match_type = kw.get::<Option<String>>("match_type")?;
    let anchored = anchored || match_type.as_deref() == Some("match");
    let full = match_type.as_deref() == Some("fullmatch");
    let pattern = if full {
        format!(r"\A(?:{pattern})\Z")
    } else if anchored {
        format!(r"\A(?:{pattern})")
    } else {
        pattern.to_string()
    };
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    let flags = settle_modules::pyre::Flags {
        ignorecase: ic,
        multiline: ml,
        dotall: false,
    };
    let re = settle_modules::pyre::Pattern::compile(&pattern, flags)
        .map_err(|e| err(format!("invalid regular expression: {e}")))?;
    re.is_match(&text)
        .map_err(|e| err(format!("regular expression failed: {e}")))
}

fn path_arg(v: &Value) -> String {
    let s = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    match s.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", std::env::var("HOME").unwrap_or_default())
        }
        _ => s,
    }
}

fn is_mount(p: &str) -> bool {
    let path = std::path::Path::new(p);
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return false;
    }
    let parent = path.join("..");
    let Ok(pmeta) = std::fs::metadata(&parent) else {
        return false;
    };
    meta.dev() != pmeta.dev() || meta.ino() == pmeta.ino()
}

/// Python's `urllib.parse.urlsplit` as far as `is uri`/`is url` look: the scheme (lowercased)
/// and the netloc; `None` where Python raises (not a string, an unbalanced IPv6 bracket).
fn scheme_netloc(v: &Value) -> Option<(String, String)> {
    let raw = v.as_str()?;
    let cleaned: String = raw
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest = cleaned.as_str();
    let mut scheme = String::new();
    if let Some(i) = rest.find(':')
        && i > 0
    {
        let cand = &rest[..i];
        if cand.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        netloc = &r[..end];
    }
    if netloc.contains('[') != netloc.contains(']') {
        return None;
    }
    Some((scheme, netloc.to_string()))
}

/// Ansible's `is uri`: anything `urlparse` takes, with a scheme from `schemes` when given.
fn is_uri(v: &Value, schemes: Option<Vec<String>>) -> bool {
    scheme_netloc(v).is_some_and(|(scheme, _)| schemes.is_none_or(|l| l.contains(&scheme)))
}

/// Ansible's `is url`: a uri with a netloc, or a `file:` one.
fn is_url(v: &Value, schemes: Option<Vec<String>>) -> bool {
    is_uri(v, schemes)
        && scheme_netloc(v).is_some_and(|(scheme, netloc)| !netloc.is_empty() || scheme == "file")
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_test(env, "version", version_test);
    super::add_test(env, "version_compare", version_test);
    super::add_filter(env, "version_compare", version_test);
    for name in ["failed", "failure"] {
        super::add_test(env, name, |v: Value| -> Result<bool, Error> {
            Ok(flag(result_map(&v, "failed")?, "failed"))
        });
    }
    for name in ["succeeded", "success", "successful"] {
        super::add_test(env, name, |v: Value| -> Result<bool, Error> {
            Ok(!flag(result_map(&v, "success")?, "failed"))
        });
    }
    super::add_test(env, "unreachable", |v: Value| -> Result<bool, Error> {
        Ok(flag(result_map(&v, "unreachable")?, "unreachable"))
    });
    super::add_test(env, "reachable", |v: Value| -> Result<bool, Error> {
        Ok(!flag(result_map(&v, "reachable")?, "unreachable"))
    });
    for name in ["changed", "change"] {
        super::add_test(env, name, |v: Value| changed(&v));
    }
    for name in ["skipped", "skip"] {
        super::add_test(env, name, |v: Value| -> Result<bool, Error> {
            Ok(flag(result_map(&v, "skipped")?, "skipped"))
        });
    }
    for name in ["finished", "started"] {
        super::add_test(env, name, move |v: Value| -> Result<bool, Error> {
            let v = result_map(&v, name)?;
            let f = v.get_attr(name).unwrap_or(Value::UNDEFINED);
            Ok(f.is_undefined()
                || f.as_i64() == Some(1)
                || (f.kind() == ValueKind::Bool && f.is_true()))
        });
    }
    super::add_test(env, "timedout", |v: Value| -> Result<bool, Error> {
        let v = result_map(&v, "timedout")?;
        let t = v.get_attr("timedout").unwrap_or(Value::UNDEFINED);
        Ok(!t.is_undefined() && !t.is_none() && flag(&t, "period"))
    });
    for name in ["truthy", "falsy"] {
        let want = name == "truthy";
        super::add_test(
            env,
            name,
            move |v: Value, kw: Kwargs| -> Result<bool, Error> {
                let convert = kw.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
                let truth = if convert
                    && matches!(
                        v.kind(),
                        ValueKind::String | ValueKind::Number | ValueKind::Bool
                    ) {
                    let s = v.to_string().to_lowercase();
                    match s.as_str() {
                        "yes" | "on" | "1" | "true" | "y" | "t" | "1.0" => true,
                        "no" | "off" | "0" | "false" | "n" | "f" | "0.0" => false,
                        _ => v.is_true(),
                    }
                } else {
                    v.is_true()
                };
                Ok(truth == want)
            },
        );
    }
    super::add_test(env, "match", |v: Value, pattern: String, kw: Kwargs| {
        regex_test(&v, &pattern, &kw, true)
    });
    for name in ["search", "regex"] {
        super::add_test(env, name, |v: Value, pattern: String, kw: Kwargs| {
            regex_test(&v, &pattern, &kw, false)
        });
    }
    // Python's `item in seq`: a substring of a string, a key of a dict, an item of a list.
    super::add_test(
        env,
        "contains",
        |seq: Value, item: Value| -> Result<bool, Error> {
            if let Some(text) = seq.as_str() {
                return match item.as_str() {
                    Some(needle) => Ok(text.contains(needle)),
                    None => Err(err(format!(
                        "'in <string>' requires string as left operand, not {}",
                        super::data::type_name(&item)
                    ))),
                };
            }
            Ok(items(&seq).map(|i| i.contains(&item)).unwrap_or(false))
        },
    );
    for name in ["subset", "issubset"] {
        super::add_test(env, name, |a: Value, b: Value| -> Result<bool, Error> {
            let other = items(&b)?;
            Ok(items(&a)?.iter().all(|v| other.contains(v)))
        });
    }
    for name in ["superset", "issuperset"] {
        super::add_test(env, name, |a: Value, b: Value| -> Result<bool, Error> {
            let mine = items(&a)?;
            Ok(items(&b)?.iter().all(|v| mine.contains(v)))
        });
    }
    super::add_test(env, "any", |v: Value| -> Result<bool, Error> {
        Ok(items(&v)?.iter().any(Value::is_true))
    });
    super::add_test(env, "all", |v: Value| -> Result<bool, Error> {
        Ok(items(&v)?.iter().all(Value::is_true))
    });
    for name in ["nan", "isnan"] {
        super::add_test(env, name, |v: Value| {
            v.kind() == ValueKind::Number && f64::try_from(v).is_ok_and(f64::is_nan)
        });
    }
    for name in ["file", "is_file"] {
        super::add_test(env, name, |v: Value| {
            std::path::Path::new(&path_arg(&v)).is_file()
        });
    }
    for name in ["directory", "is_dir"] {
        super::add_test(env, name, |v: Value| {
            std::path::Path::new(&path_arg(&v)).is_dir()
        });
    }
    for name in ["link", "is_link"] {
        super::add_test(env, name, |v: Value| {
            std::fs::symlink_metadata(path_arg(&v)).is_ok_and(|m| m.file_type().is_symlink())
        });
    }
    super::add_test(env, "exists", |v: Value| {
        std::path::Path::new(&path_arg(&v)).exists()
    });
    super::add_test(env, "link_exists", |v: Value| {
        std::fs::symlink_metadata(path_arg(&v)).is_ok()
    });
    for name in ["abs", "is_abs"] {
        super::add_test(env, name, |v: Value| path_arg(&v).starts_with('/'));
    }
    for name in ["same_file", "is_same_file"] {
        super::add_test(env, name, |a: Value, b: Value| -> Result<bool, Error> {
            let (x, y) = (
                std::fs::metadata(path_arg(&a)).map_err(|e| err(format!("{e}: '{a}'")))?,
                std::fs::metadata(path_arg(&b)).map_err(|e| err(format!("{e}: '{b}'")))?,
            );
            Ok(x.dev() == y.dev() && x.ino() == y.ino())
        });
    }
    for name in ["mount", "is_mount"] {
        super::add_test(env, name, |v: Value| is_mount(&path_arg(&v)));
    }
    super::add_test(env, "uri", |v: Value, schemes: Option<Vec<String>>| {
        // Python's `urlparse(None)` parses as empty bytes, whose empty scheme and path are
        // not None: Ansible's `uri` holds for None without schemes.
        match v.is_none() {
            true => schemes.is_none_or(|s| s.iter().any(String::is_empty)),
            false => is_uri(&v, schemes),
        }
    });
    super::add_test(env, "url", |v: Value, schemes: Option<Vec<String>>| {
        is_url(&v, schemes)
    });
    super::add_test(env, "urn", |v: Value| is_uri(&v, Some(vec!["urn".into()])));
    // A value that came from `!vault` (decrypted or not), as 2.19 has it: text that merely
    // looks like a vault is not one.
    super::add_test(env, "vault_encrypted", |v: Value| {
        crate::vaulted::ciphertext_of(&v).is_some()
    });
    super::add_test(env, "vaulted_file", |v: Value| {
        std::fs::read(path_arg(&v)).is_ok_and(|b| b.starts_with(b"$ANSIBLE_VAULT;"))
    });
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};
    use super::*;

    #[test]
    fn uri_url_urn_as_urlparse_sees_them() {
        assert!(truth("'asldkfjhalsidfthjo' is uri"));
        assert!(truth("'asldkfjhalsidfthjo' is not uri(['http'])"));
        assert!(truth("'ftp:// searchengine.tld' is url"));
        assert!(truth("'file://etc/hosts' is url"));
        assert!(truth("'admin:secret@example.com' is not url"));
        assert!(truth(
            "'urn:isbn:9780307476463' is urn and 'urn:isbn:9780307476463' is not url"
        ));
        assert!(truth("'http://[::1' is not uri"));
        assert!(truth("1 is not uri"));
    }

    #[test]
    fn contains_is_python_in() {
        assert!(truth("'Ansible managed\\n' is contains 'Ansible managed'"));
        assert!(truth("{'a': 1} is contains 'a'"));
        assert!(truth("[1, 2] is contains 2"));
        assert!(render("{{ 'abc' is contains 1 }}").starts_with("ERROR"));
    }

    #[test]
    fn search_test_takes_lookaround() {
        assert!(truth("'qa_1,qz_1' is search('(?=.*qz_1)(?=.*qa_1)')"));
        assert!(truth("'qa_1' is not search('(?=.*qz_1)')"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), std::cmp::Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0"), std::cmp::Ordering::Equal);
        assert!(truth("'12.5' is version('12', '>=')"));
        assert!(truth("'1.0rc1' is version('1.0', '>')"));
        assert!(truth("'1.2.3' is version('1.2.3', 'eq', strict=true)"));
        assert!(
            render("{{ '1.2.x' is version('1.2', 'gt', strict=true) }}")
                .contains("invalid version")
        );
        assert!(render("{{ '1' is version('1', 'bogus') }}").contains("Invalid operator"));
    }

    #[test]
    fn results() {
        assert!(truth("{'changed': true} is changed"));
        assert!(truth(
            "{'results': [{'changed': false}, {'changed': true}]} is changed"
        ));
        assert!(truth(
            "{'failed': false} is successful and {'failed': false} is not failure"
        ));
        assert!(truth("{'skipped': true} is skip and {} is reachable"));
        assert!(truth("{'unreachable': true} is unreachable"));
        assert!(truth(
            "{'finished': 1} is finished and {'started': 0} is not started"
        ));
        assert!(render("{{ 'x' is failed }}").contains("expects a dictionary"));
    }

    #[test]
    fn sets_and_truth() {
        assert!(truth(
            "[1, 2] is issubset([1, 2, 3]) and [1, 2, 3] is issuperset([3])"
        ));
        assert!(truth("[0, 1] is any and not ([0, 1] is all)"));
        assert!(truth(
            "'yes' is truthy(convert_bool=True) and 'off' is falsy(convert_bool=True)"
        ));
        assert!(truth(
            "'abc' is match('ab') and not ('abc' is match('bc')) and 'abc' is search('bc')"
        ));
        assert!(truth("'abc' is regex('B', ignorecase=true)"));
        assert!(truth(
            "'https://x.org/a' is url and 'urn:isbn:0451450523' is urn and 'mailto:a@b' is uri"
        ));
        assert!(truth(
            "'$ANSIBLE_VAULT;1.1;AES256\\n6134' is not vault_encrypted and 'x' is not vault_encrypted"
        ));
    }

    #[test]
    fn files() {
        assert!(truth(
            "'/' is directory and '/' is is_dir and '/' is mount and '/' is is_abs"
        ));
        assert!(truth(
            "'/etc/passwd' is is_file and '/etc/passwd' is exists"
        ));
        assert!(truth("'/etc/passwd' is same_file('/etc/../etc/passwd')"));
        assert!(truth("'/nope/x' is not link_exists and 'rel' is not abs"));
    }
}
