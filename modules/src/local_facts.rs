//! `ansible_local`: the `*.fact` files of `fact_path`, read as Ansible's local fact collector
//! reads them. An executable file is run and its output read; the text is JSON, else INI (as
//! Python's `configparser` reads it). A file that cannot be read becomes a message under its
//! name, with a warning, and the others are still read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Map, Value};

pub(crate) fn gather(fact_path: &Path, warnings: &mut Vec<String>) -> Map<String, Value> {
    let mut local = Map::new();
    let Ok(entries) = std::fs::read_dir(fact_path) else {
        return local;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".fact") && !n.starts_with('.'))
        .collect();
    files.sort();
    for name in files {
        let path = fact_path.join(&name);
        let shown = path.display().to_string();
        let base = name.replace(".fact", "");
        let mut warn = |text: String| {
            warnings.push(text.clone());
            Value::String(text)
        };
        let mode = match std::fs::metadata(&path) {
            Ok(m) => m.permissions().mode(),
            Err(e) => {
                let text = format!("Could not stat fact ({shown}): {}", py_os_error(&e));
                local.insert(base, warn(text));
                continue;
            }
        };
        let out = if mode & 0o100 != 0 {
            match std::process::Command::new(&path)
                .stdin(std::process::Stdio::null())
                .output()
            {
                Ok(o) if o.status.success() => o.stdout,
                Ok(o) => {
                    let text = format!(
                        "Failure executing fact script ({shown}), rc: {}, err: {}",
                        o.status.code().unwrap_or(-1),
                        String::from_utf8_lossy(&o.stderr)
                    );
                    local.insert(base, warn(text));
                    continue;
                }
                Err(e) => {
                    let text = format!(
                        "Could not execute fact script ({shown}): {}",
                        py_os_error(&e)
                    );
                    local.insert(base, warn(text));
                    continue;
                }
            }
        } else {
            std::fs::read(&path).unwrap_or_default()
        };
        let Ok(out) = String::from_utf8(out) else {
            let text = format!("error loading fact - output of running \"{shown}\" was not utf-8");
            local.insert(base, warn(text));
            continue;
        };
        let fact = match serde_json::from_str::<Value>(&out) {
            Ok(v) => v,
            Err(_) => match ini_fact(&out, &shown) {
                Ok(v) => v,
                Err(text) => warn(text),
            },
        };
        local.insert(base, fact);
    }
    local
}

/// Python's `str(OSError)`: `[Errno 2] No such file or directory: '/path'`.
fn py_os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => {
            let message = text.split(" (os error").next().unwrap_or(&text);
            format!("[Errno {code}] {message}")
        }
        None => text,
    }
}

/// A `.fact` file's INI text as Ansible returns it: `{section: {option: value}}`, the values
/// interpolated (`%(name)s`, `%%`); `Err` is the message that stands for the fact.
fn ini_fact(text: &str, shown: &str) -> Result<Value, String> {
    let sections = parse_ini(text).map_err(|_| {
        format!("error loading facts as JSON or ini - please check content: {shown}")
    })?;
    let mut fact = Map::new();
    for (section, options) in sections.iter().filter(|(s, _)| s != "DEFAULT") {
        let mut values = Map::new();
        let mut map: Vec<(String, String)> = sections
            .iter()
            .find(|(s, _)| s == "DEFAULT")
            .map(|(_, o)| o.clone())
            .unwrap_or_default();
        for (k, v) in options {
            map.retain(|(d, _)| d != k);
            map.push((k.clone(), v.clone()));
        }
        for (option, raw) in &map {
            match interpolate(option, section, raw, &map, 0) {
                Ok(v) => {
                    values.insert(option.clone(), Value::String(v));
                }
                Err(e) => {
                    return Err(format!(
                        "error loading facts as ini - please check content: {shown} ({e})"
                    ));
                }
            }
        }
        fact.insert(section.clone(), Value::Object(values));
    }
    Ok(Value::Object(fact))
}

type Sections = Vec<(String, Vec<(String, String)>)>;

/// `configparser.ConfigParser().read_file` with its defaults: `[section]` headers, `=` or
/// `:` between an option (lowercased) and its value, `#`/`;` comment lines, indented lines
/// continuing a value; a duplicate, an option outside a section or a line without a
/// delimiter is an error.
fn parse_ini(text: &str) -> Result<Sections, ()> {
    let mut sections: Sections = Vec::new();
    // (indent of the option's line, option) the next indented line continues.
    let mut current: Option<(usize, String)> = None;
    for line in text.lines() {
        let stripped = line.trim();
        if stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        if stripped.is_empty() {
            // An empty line inside a value is kept, then trimmed off its end.
            if let (Some((_, option)), Some((_, options))) = (&current, sections.last_mut())
                && let Some((_, value)) = options.iter_mut().find(|(k, _)| k == option)
            {
                value.push('\n');
            }
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if let Some((option_indent, option)) = &current
            && indent > *option_indent
            && let Some((_, options)) = sections.last_mut()
            && let Some((_, value)) = options.iter_mut().find(|(k, _)| k == option)
        {
            let kept = value.trim_end_matches('\n').len();
            let blank = value.len() - kept;
            value.truncate(kept);
            value.push_str(&"\n".repeat(blank.max(1)));
            value.push_str(stripped);
            continue;
        }
        if let Some(name) = stripped.strip_prefix('[').and_then(|r| r.split_once(']')) {
            let name = name.0.to_string();
            if sections.iter().any(|(s, _)| *s == name) {
                return Err(());
            }
            sections.push((name, Vec::new()));
            current = None;
            continue;
        }
        let Some((_, options)) = sections.last_mut() else {
            return Err(());
        };
        let at = stripped.find(['=', ':']).ok_or(())?;
        let key = stripped[..at].trim().to_lowercase();
        if key.is_empty() || options.iter().any(|(k, _)| *k == key) {
            return Err(());
        }
        options.push((key.clone(), stripped[at + 1..].trim().to_string()));
        current = Some((indent, key));
    }
    for (_, options) in &mut sections {
        for (_, value) in options.iter_mut() {
            let kept = value.trim_end().len();
            value.truncate(kept);
        }
    }
    Ok(sections)
}

/// `BasicInterpolation`: `%%` is `%`, `%(name)s` the option `name`'s value.
fn interpolate(
    option: &str,
    section: &str,
    raw: &str,
    map: &[(String, String)],
    depth: usize,
) -> Result<String, String> {
    if depth > 10 {
        return Err(format!(
            "Recursion limit exceeded in value substitution: option {} in section {} contains \
             an interpolation key which cannot be substituted in 10 steps. Raw value: {}",
            py_repr(option),
            py_repr(section),
            py_repr(raw)
        ));
    }
    let mut out = String::new();
    let mut rest = raw;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if rest[1..].starts_with('%') {
            out.push('%');
            rest = &rest[2..];
        } else if rest[1..].starts_with('(') {
            let Some(close) = rest.find(")s").filter(|&c| c > 2) else {
                return Err(format!(
                    "bad interpolation variable reference {}",
                    py_repr(rest)
                ));
            };
            let name = rest[2..close].to_lowercase();
            rest = &rest[close + 2..];
            let Some((_, value)) = map.iter().find(|(k, _)| *k == name) else {
                return Err(format!(
                    "Bad value substitution: option {} in section {} contains an interpolation \
                     key {} which is not a valid option name. Raw value: {}",
                    py_repr(option),
                    py_repr(section),
                    py_repr(&name),
                    py_repr(raw)
                ));
            };
            out.push_str(&interpolate(option, section, value, map, depth + 1)?);
        } else {
            return Err(format!(
                "'%' must be followed by '%' or '(', found: {}",
                py_repr(rest)
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Python's `repr` of a string, enough for messages.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_facts_are_sections_of_lowercased_options() {
        let fact = ini_fact("[general]\nBar=loaded\nbaz: %(bar)s and 100%%\n", "f").unwrap();
        assert_eq!(
            fact,
            serde_json::json!({"general": {"bar": "loaded", "baz": "loaded and 100%"}})
        );
    }

    #[test]
    fn a_lone_percent_is_an_ini_error() {
        let err = ini_fact("[bad fact]\nvalue = this is a % bad % fact\n", "f").unwrap_err();
        assert!(err.starts_with("error loading facts as ini"), "{err}");
    }

    #[test]
    fn text_outside_a_section_is_neither_json_nor_ini() {
        let err = ini_fact("wontbeseen=ever\n", "f").unwrap_err();
        assert!(
            err.starts_with("error loading facts as JSON or ini"),
            "{err}"
        );
    }
}
