//! Ansible's filters and Jinja tests that minijinja lacks (or has with other manners), with
//! Ansible 2.19's results; `register` adds them all to an environment.
//!
//! - `data`: lists, dicts, sets, math, `random`/`shuffle`, `extract`, `subelements`, …
//! - `text`: regular expressions (Python's `re` manners), base64, hashes, `comment`, `urlsplit`…
//! - `paths`: `basename`, `realpath`, `path_join`, `win_*`, … (Python's `os.path`)
//! - `serialize`: `to_json`/`to_yaml` and friends, byte for byte as Python writes them
//! - `time`: `strftime`, `to_datetime`, `now()`
//! - `percent`: Python's `'%s' % x` string formatting
//! - `vault`: `vault`/`unvault`, encrypting and decrypting with a password the template gives
//! - `tests`: the Jinja tests (`is changed`, `is file`, `is subset`, `is version`, …)

pub(crate) mod crypt;
pub(crate) mod data;
mod paths;
pub(crate) mod percent;

pub(crate) mod protomatter;
mod pyrandom;
mod pyyaml;
mod serialize;
pub(crate) use serialize::python_json;
mod tests;
pub(crate) mod text;
mod time;
pub(crate) use time::local_datetime_text;
mod vault;
mod versions;

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};

pub(crate) fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The most items a filter builds (`product`, `combinations`, …): more is an error, not OOM.
pub(crate) const MAX_ITEMS: usize = 1_000_000;

/// Ansible's truthiness for `bool`: 'yes', 'on', '1', 'true' (any case) are true; the rest false.
pub(crate) fn ansible_bool(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => {
            value.as_i64().map(|n| n == 1).unwrap_or(false)
                || f64::try_from(value.clone()).is_ok_and(|f| f == 1.0)
        }
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

/// The items of a sequence (or the keys of a map); nothing for none/undefined.
pub(crate) fn items(value: &Value) -> Result<Vec<Value>, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Vec::new());
    }
    Ok(value.try_iter()?.collect())
}

/// A map value that keeps the order of its pairs.
pub(crate) fn map_value<K: Into<Value>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::from_object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<indexmap::IndexMap<Value, Value>>(),
    )
}

/// Python's `repr(float)`: the shortest text that reads back, `1e+20`, `1.5`, `0.0001`.
pub(crate) fn python_float_repr(f: f64) -> String {
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

pub(crate) fn register(env: &mut Environment<'static>) {
    data::register(env);
    text::register(env);
    paths::register(env);
    serialize::register(env);
    time::register(env);
    tests::register(env);
    vault::register(env);
    percent::register(env);
    protomatter::register(env);
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::OnceLock;

    use minijinja::Environment;

    fn env() -> &'static Environment<'static> {
        static ENV: OnceLock<Environment<'static>> = OnceLock::new();
        ENV.get_or_init(|| {
            let mut env = Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            minijinja_contrib::add_to_environment(&mut env);
            env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
            super::register(&mut env);
            env
        })
    }

    /// Renders a template; an error renders as `ERROR: …`.
    pub(crate) fn render(src: &str) -> String {
        env()
            .render_str(src, minijinja::context! {})
            .unwrap_or_else(|e| format!("ERROR: {e:#}"))
    }

    /// Evaluates an expression to a boolean (panics on error: tests only).
    pub(crate) fn truth(expr: &str) -> bool {
        env()
            .compile_expression(expr)
            .and_then(|e| e.eval(minijinja::context! {}))
            .map(|v| v.is_true())
            .unwrap_or_else(|e| panic!("{expr}: {e:#}"))
    }
}

/// `yaml.dump(value, default_flow_style=False, allow_unicode=True)` as Ansible's command-line
/// tools write YAML (`ansible-inventory --yaml`): PyYAML's bytes, keys sorted.
pub fn yaml_dump_block(value: &serde_json::Value) -> Result<String, String> {
    let opts = pyyaml::DumpOptions {
        default_flow_style: Some(false),
        ..pyyaml::DumpOptions::default()
    };
    pyyaml::dump(
        &minijinja::Value::from(minijinja::value::Serde(value)),
        &opts,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn floats_print_as_python() {
        assert_eq!(python_float_repr(1e20), "1e+20");
        assert_eq!(python_float_repr(1.5), "1.5");
        assert_eq!(python_float_repr(100.0), "100.0");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(0.00001), "1e-05");
        assert_eq!(python_float_repr(-2.5e-7), "-2.5e-07");
        assert_eq!(python_float_repr(1234567890123456.0), "1234567890123456.0");
        assert_eq!(python_float_repr(1e16), "1e+16");
    }
}
