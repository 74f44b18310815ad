//! `to_json`, `to_nice_json`, `from_json`, `to_yaml`, `to_nice_yaml`, `from_yaml`,
//! `from_yaml_all`: the bytes Python's `json.dumps` and PyYAML's `yaml.dump` write.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, Value};

use super::pyyaml::{DumpOptions, dump};
use super::{err, python_float_repr};

/// `json.dumps` options.
struct JsonOpts {
    indent: Option<String>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_sep: String,
    key_sep: String,
}

use settle_yaml::write_json_string as json_string;

fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        python_float_repr(f)
    }
}

fn json_key(k: &Value) -> Result<String, Error> {
    Ok(match k.kind() {
        ValueKind::String => k.as_str().unwrap_or_default().to_string(),
        ValueKind::Bool => if k.is_true() { "true" } else { "false" }.into(),
        ValueKind::None => "null".into(),
        ValueKind::Number if !k.is_integer() => {
            json_float(f64::try_from(k.clone()).unwrap_or(f64::NAN))
        }
        ValueKind::Number => k.to_string(),
        _ => {
            return Err(err(format!(
                "keys must be str, int, float, bool or None, not {k}"
            )));
        }
    })
}

fn write_json(v: &Value, o: &JsonOpts, level: usize, out: &mut String) -> Result<(), Error> {
    if level > 200 {
        return Err(err("to_json: the value is nested too deeply"));
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(ind) = &o.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    };
    match v.kind() {
        ValueKind::Undefined => return Err(err("to_json: the value is undefined")),
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
        ValueKind::Number => {
            out.push_str(&json_float(f64::try_from(v.clone()).unwrap_or(f64::NAN)))
        }
        ValueKind::String => json_string(v.as_str().unwrap_or_default(), o.ensure_ascii, out),
        ValueKind::Bytes => json_string(
            &String::from_utf8_lossy(v.as_bytes().unwrap_or_default()),
            o.ensure_ascii,
            out,
        ),
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                pairs.push((json_key(&k)?, item));
            }
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if o.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, level + 1);
                json_string(k, o.ensure_ascii, out);
                out.push_str(&o.key_sep);
                write_json(item, o, level + 1, out)?;
            }
            newline(out, level);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, level + 1);
                write_json(item, o, level + 1, out)?;
            }
            newline(out, level);
            out.push(']');
        }
        _ => json_string(&v.to_string(), o.ensure_ascii, out),
    }
    Ok(())
}

/// `json.dumps(value)` with Python's defaults (`, ` and `: `, non-ASCII escaped, keys in
/// order): what `to_json` gives, and how Ansible's copy action writes a dict or list `content`.
pub(crate) fn python_json(value: &serde_json::Value) -> Result<String, String> {
    let o = JsonOpts {
        indent: None,
        sort_keys: false,
        ensure_ascii: true,
        item_sep: ", ".into(),
        key_sep: ": ".into(),
    };
    let mut out = String::new();
    write_json(
        &Value::from(minijinja::value::Serde(value)),
        &o,
        0,
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Python's `json.dumps(v, indent=…, sort_keys=…, ensure_ascii=…, separators=…)`.
fn dumps(v: &Value, kw: &Kwargs, nice: bool) -> Result<String, Error> {
    let indent = match kw.get::<Option<Value>>("indent")? {
        Some(i) if i.is_none() => None,
        Some(i) if i.kind() == ValueKind::String => Some(i.as_str().unwrap_or("").to_string()),
        Some(i) => Some(" ".repeat(i.as_usize().unwrap_or(0).min(64))),
        None if nice => Some("    ".into()),
        None => None,
    };
    let sort_keys = kw.get::<Option<bool>>("sort_keys")?.unwrap_or(nice);
    let ensure_ascii = kw.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true);
    let separators: Option<Vec<String>> = kw.get("separators")?;
    for accepted in [
        "profile",
        "vault_to_text",
        "preprocess_unsafe",
        "allow_nan",
        "skipkeys",
        "check_circular",
    ] {
        let _: Option<Value> = kw.get(accepted)?;
    }
    let (item_sep, key_sep) = match separators {
        Some(s) if s.len() == 2 && !nice => (s[0].clone(), s[1].clone()),
        _ if nice || indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let o = JsonOpts {
        indent,
        sort_keys,
        ensure_ascii,
        item_sep,
        key_sep,
    };
    let mut out = String::new();
    write_json(v, &o, 0, &mut out)?;
    Ok(out)
}

fn yaml_opts(kw: &Kwargs, nice: bool) -> Result<DumpOptions, Error> {
    let mut o = DumpOptions::default();
    if nice {
        o.indent = 4;
        o.default_flow_style = Some(false);
    }
    if let Some(i) = kw.get::<Option<usize>>("indent")? {
        o.indent = i;
    }
    if let Some(w) = kw.get::<Option<Value>>("width")? {
        o.width = w.as_usize().unwrap_or(usize::MAX / 2);
    }
    if let Some(f) = kw.get::<Option<Value>>("default_flow_style")? {
        o.default_flow_style = if f.is_none() { None } else { Some(f.is_true()) };
    }
    if let Some(s) = kw.get::<Option<bool>>("sort_keys")? {
        o.sort_keys = s;
    }
    if let Some(u) = kw.get::<Option<bool>>("allow_unicode")? {
        o.allow_unicode = u;
    }
    o.explicit_start = kw.get::<Option<bool>>("explicit_start")?.unwrap_or(false);
    o.explicit_end = kw.get::<Option<bool>>("explicit_end")?.unwrap_or(false);
    if let Some(s) = kw.get::<Option<String>>("default_style")? {
        o.default_style = s.chars().next();
    }
    let _: Option<Value> = kw.get("vault_behavior")?;
    let _: Option<Value> = kw.get("dump_vault_tags")?;
    o.canonical = kw.get::<Option<bool>>("canonical")?.unwrap_or(false);
    if let Err(e) = kw.assert_all_used() {
        return Err(err(format!(
            "to_yaml: {}",
            e.detail().unwrap_or("unexpected keyword argument")
        )));
    }
    Ok(o)
}

fn from_yaml_text(s: &str) -> Result<Value, Error> {
    let node = settle_yaml::parse_str(s, "<from_yaml>").map_err(|e| err(e.to_string()))?;
    Ok(Value::from(minijinja::value::Serde(node.to_value())))
}

/// Splits a YAML stream at its `---` document markers.
fn split_documents(s: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    let mut seen_content = false;
    for line in s.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            if seen_content || docs.len() > 1 {
                docs.push(String::new());
            }
            seen_content = true;
            if let Some(rest) = bare.strip_prefix("--- ")
                && let Some(last) = docs.last_mut()
            {
                last.push_str(rest);
                last.push('\n');
            }
            continue;
        }
        if bare == "..." {
            continue;
        }
        if !bare.trim().is_empty() && !bare.trim_start().starts_with('#') {
            seen_content = true;
        }
        if let Some(last) = docs.last_mut() {
            last.push_str(line);
        }
    }
    docs.retain(|d| !d.trim().is_empty() || s.contains("---"));
    docs
}

/// Ansible's legacy JSON profile: `{"__ansible_unsafe": text}` (how `ansible-inventory` and
/// inventory scripts mark untrusted text) is that text.
fn unwrap_legacy_markers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map)
            if map.len() == 1 && map.contains_key("__ansible_unsafe") =>
        {
            if let Some(inner) = map.remove("__ansible_unsafe") {
                *v = inner;
            }
        }
        serde_json::Value::Object(map) => map.values_mut().for_each(unwrap_legacy_markers),
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_legacy_markers),
        _ => {}
    }
}

/// The legacy profile's decoding of trusted text, trust kept per value: the text of an
/// `__ansible_unsafe` marker is untrusted, every other string keeps the input's trust.
fn keep_legacy_trust(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map)
            if map.len() == 1 && map.contains_key("__ansible_unsafe") =>
        {
            crate::template::untrusted(&map["__ansible_unsafe"])
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), keep_legacy_trust(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(keep_legacy_trust).collect())
        }
        other => other.clone(),
    }
}

/// Python's `json.loads` words for what serde_json could not parse, with its position
/// (`Expecting property name enclosed in double quotes: line 1 column 2 (char 1)`).
fn python_json_error(text: &str, e: &serde_json::Error) -> String {
    let detail = e.to_string();
    let what = if detail.starts_with("EOF while parsing an object")
        || detail.starts_with("key must be a string")
    {
        "Expecting property name enclosed in double quotes"
    } else if detail.starts_with("expected `:`") {
        "Expecting ':' delimiter"
    } else if detail.starts_with("expected `,`") {
        "Expecting ',' delimiter"
    } else if detail.starts_with("trailing characters") {
        "Extra data"
    } else {
        "Expecting value"
    };
    // serde_json points at the last character read; Python at the one it expected, which at
    // the end of the text is just past it.
    let (line, column) = if e.is_eof() {
        let lines: Vec<&str> = text.split('\n').collect();
        let last = lines.last().map_or(0, |l| l.chars().count());
        (lines.len(), last + 1)
    } else {
        (e.line(), e.column().max(1))
    };
    let before: usize = text
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum();
    format!(
        "{what}: line {line} column {column} (char {})",
        before + column - 1
    )
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(env, "to_json", |v: Value, kw: Kwargs| dumps(&v, &kw, false));
    super::add_filter(env, "to_nice_json", |v: Value, kw: Kwargs| {
        dumps(&v, &kw, true)
    });
    super::add_filter(
        env,
        "from_json",
        |s: String, kw: Kwargs| -> Result<Value, Error> {
            let mut v: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| err(python_json_error(&s, &e)))?;
            let profile: Option<String> = kw.get("profile")?;
            if matches!(profile.as_deref(), Some("inventory_legacy" | "legacy")) {
                let trusted = super::protomatter::is_trusted_text(&s);
                let kept = trusted.then(|| keep_legacy_trust(&v));
                unwrap_legacy_markers(&mut v);
                if let Some(kept) = kept {
                    super::protomatter::note_trusted_json(v.clone(), kept);
                }
            }
            Ok(Value::from(minijinja::value::Serde(&v)))
        },
    );
    super::add_filter(
        env,
        "to_yaml",
        |v: Value, kw: Kwargs| -> Result<String, Error> { dump(&v, &yaml_opts(&kw, false)?) },
    );
    super::add_filter(
        env,
        "to_nice_yaml",
        |v: Value, kw: Kwargs| -> Result<String, Error> { dump(&v, &yaml_opts(&kw, true)?) },
    );
    super::add_filter(env, "from_yaml", |v: Value| -> Result<Value, Error> {
        match v.as_str() {
            Some(s) => from_yaml_text(s),
            None => Ok(v),
        }
    });
    super::add_filter(env, "from_yaml_all", |v: Value| -> Result<Value, Error> {
        if v.is_none() || v.is_undefined() {
            return Ok(Value::from(Vec::<Value>::new()));
        }
        let Some(s) = v.as_str() else { return Ok(v) };
        let docs = split_documents(s)
            .iter()
            .map(|d| from_yaml_text(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::from(docs))
    });
}

#[cfg(test)]
mod unit {
    use super::super::testing::render;

    #[test]
    fn to_json_is_python_json_dumps() {
        assert_eq!(
            render("{{ {'sublist': ['howdy'], 'subdict': {'k1': 'v1'}} | to_json }}"),
            r#"{"sublist": ["howdy"], "subdict": {"k1": "v1"}}"#
        );
        assert_eq!(
            render("{{ ['one', 'two'] | to_json }}"),
            r#"["one", "two"]"#
        );
        assert_eq!(render("{{ 'café' | to_json }}"), r#""caf\u00e9""#);
        assert_eq!(
            render("{{ 'café' | to_json(ensure_ascii=false) }}"),
            r#""café""#
        );
        assert_eq!(
            render("{{ {'b': 1, 'a': 2.5} | to_json(sort_keys=true) }}"),
            r#"{"a": 2.5, "b": 1}"#
        );
        assert_eq!(
            render("{{ [1, {}] | to_json(indent=2) }}"),
            "[\n  1,\n  {}\n]"
        );
        assert_eq!(render("{{ 1e20 | to_json }}"), "1e+20");
        assert_eq!(render("{{ none | to_json }}"), "null");
    }

    #[test]
    fn to_nice_json_matches_ansible() {
        assert_eq!(
            render("{{ {'sublist': ['howdy'], 'subdict': {'k1': 'v1'}} | to_nice_json }}"),
            "{\n    \"subdict\": {\n        \"k1\": \"v1\"\n    },\n    \"sublist\": [\n        \"howdy\"\n    ]\n}"
        );
        assert_eq!(
            render("{{ {'k': 'Quotes \"\\'\\n'} | to_nice_json(indent=2) }}"),
            "{\n  \"k\": \"Quotes \\\"'\\n\"\n}"
        );
    }

    #[test]
    fn to_yaml_matches_pyyaml() {
        // Expected strings from yaml.dump(..., Dumper=yaml.CSafeDumper, allow_unicode=True).
        let thing = "{'sublist': ['howdy'], 'subdict': {'k1': 'v1'}}";
        assert_eq!(
            render(&format!("{{{{ {thing} | to_yaml }}}}")),
            "subdict: {k1: v1}\nsublist: [howdy]\n"
        );
        assert_eq!(
            render(&format!("{{{{ {thing} | to_nice_yaml }}}}")),
            "subdict:\n    k1: v1\nsublist:\n- howdy\n"
        );
        assert_eq!(render("{{ 'Café' | to_yaml }}"), "Café\n");
        assert_eq!(
            render("{{ 'Café' | to_yaml(allow_unicode=False) }}"),
            "\"Caf\\xE9\"\n"
        );
        assert_eq!(
            render("{{ 'thing' | to_yaml(default_style='|') }}"),
            "|-\n  thing\n"
        );
        assert_eq!(
            render(concat!(
                "{{ {'a': [{'b': 1, 'c': [1, 2]}], 'e': {}, 'f': 'x\\ny', 'g': 'yes', 'h': '1.0', ",
                "'i': '', 'j': 'a: b', 'k': '-x', 'l': none, 'm': 1.5e20, 'n': 'x '} | to_nice_yaml }}"
            )),
            "a:\n-   b: 1\n    c:\n    - 1\n    - 2\ne: {}\nf: 'x\n\n    y'\ng: 'yes'\nh: '1.0'\ni: ''\nj: 'a: b'\nk: -x\nl: null\nm: 1.5e+20\nn: 'x '\n"
        );
        assert_eq!(
            render(
                "{{ ['a,b', '#c', 'd e', '2020-01-01', 'tab\\there', '~', 'on', 'y'] | to_yaml }}"
            ),
            "['a,b', '#c', d e, '2020-01-01', \"tab\\there\", '~', 'on', y]\n"
        );
        assert_eq!(
            render("{{ [[1, 2], {'a': [3]}] | to_yaml }}"),
            "- [1, 2]\n- a: [3]\n"
        );
        assert_eq!(render("{{ 'x' | to_yaml }}"), "x\n");
        assert!(render("{{ 'x' | to_yaml(nonexistent_argument=True) }}").starts_with("ERROR:"));
    }

    #[test]
    fn canonical_yaml_matches_libyaml() {
        assert_eq!(
            render("{{ 'thing' | to_yaml(canonical=True) }}"),
            "---\n!!str \"thing\"\n"
        );
        // yaml.dump(..., canonical=True, Dumper=yaml.CSafeDumper)
        assert_eq!(
            render(
                "{{ {'a': 1, 'b': [1, 'x', none, true, 1.5, {}], 'c': {'d': []}} | to_yaml(canonical=True) }}"
            ),
            "---\n!!map {\n  ? !!str \"a\"\n  : !!int \"1\",\n  ? !!str \"b\"\n  : !!seq [\n    !!int \"1\",\n    !!str \"x\",\n    !!null \"null\",\n    !!bool \"true\",\n    !!float \"1.5\",\n    !!map {},\n  ],\n  ? !!str \"c\"\n  : !!map {\n    ? !!str \"d\"\n    : !!seq [],\n  },\n}\n"
        );
    }

    #[test]
    fn yaml_lines_fold_at_80_columns() {
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let expected = "k: word word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word\n";
        assert_eq!(
            render(&format!("{{{{ {{'k': '{long}'}} | to_nice_yaml }}}}")),
            expected
        );
    }

    #[test]
    fn from_yaml_all_splits_documents() {
        assert_eq!(
            render(
                "{{ '---\\nbananas: yellow\\n---\\napples: red' | from_yaml_all | list | to_json }}"
            ),
            r#"[{"bananas": "yellow"}, {"apples": "red"}]"#
        );
        assert_eq!(render("{{ none | from_yaml_all | to_json }}"), "[]");
        assert_eq!(
            render("{{ '---\\nbananas: yellow\\napples: red' | from_yaml | to_json }}"),
            r#"{"bananas": "yellow", "apples": "red"}"#
        );
    }
}
