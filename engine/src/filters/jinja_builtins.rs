//! Jinja2's own filters and test that minijinja lacks, which `ansible-doc -t filter -l` lists
//! as `ansible.builtin.*`: `center`, `forceescape`, `xmlattr`, `urlize` and the `callable`
//! test, each as Jinja2 3.1 computes it (`wordcount` comes from minijinja-contrib, and so does
//! the wrapping of `wordwrap`, given Jinja2's positional arguments here).

use std::sync::LazyLock;

use minijinja::value::{Kwargs, ObjectRepr, ValueKind};
use minijinja::{Environment, Error, Value};
use regex::Regex;

use super::err;

/// markupsafe's `escape`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Python's `str(value)` for the text filters' input.
fn text(value: &Value) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None => crate::template::python_repr(value, false),
    }
}

/// Python's `str.center(width)`: the odd space goes left when the width is odd.
fn center(value: Value, width: Option<usize>) -> String {
    let s = text(&value);
    let width = width.unwrap_or(80);
    let len = s.chars().count();
    if width <= len {
        return s;
    }
    let margin = width - len;
    let left = margin / 2 + (margin & width & 1);
    format!("{}{s}{}", " ".repeat(left), " ".repeat(margin - left))
}

/// `xmlattr`: ` key="value"` for each item whose value is not None or undefined.
fn xmlattr(value: Value, autospace: Option<bool>) -> Result<Value, Error> {
    let mut parts = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        if item.is_none() || item.is_undefined() {
            continue;
        }
        let key = text(&key);
        if key.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '=')) {
            return Err(err(format!(
                "Invalid character in attribute name: {}",
                crate::template::python_repr(&Value::from(key), true)
            )));
        }
        parts.push(format!("{}=\"{}\"", escape(&key), escape(&text(&item))));
    }
    let mut rv = parts.join(" ");
    if autospace.unwrap_or(true) && !rv.is_empty() {
        rv.insert(0, ' ');
    }
    Ok(Value::from_safe_string(rv))
}

static HTTP: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            (https?://|www\.)(([\w%-]+\.)+)?([a-z]{2,63}|xn--[\w%]{2,59})
            |
            ([\w%-]{2,63}\.)+(com|net|int|edu|gov|org|info|mil)
            |
            (https?://)((([\d]{1,3})(\.[\d]{1,3}){3})|(\[([\da-f]{0,4}:){2}([\da-f]{0,4}:?){1,6}]))
        )(?::[\d]{1,5})?(?:[/?\#]\S*)?$",
    )
});
static EMAIL: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"^\S+@\w[\w.-]*\.\w+$"));
static LEAD: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"^(?:[(<]|&lt;)+"));
static TRAIL: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"(?:[)>.,\n]|&gt;)+$"));

fn matches(re: &LazyLock<Result<Regex, regex::Error>>, text: &str) -> bool {
    re.as_ref().is_ok_and(|re| re.is_match(text))
}

/// Jinja2's `urlize`: links for URLs and e-mail addresses in escaped text.
fn urlize(value: Value, trim_url_limit: Option<usize>, kw: Kwargs) -> Result<Value, Error> {
    let nofollow = kw.get::<Option<bool>>("nofollow")?.unwrap_or(false);
    let target = kw.get::<Option<String>>("target")?;
    let rel = kw.get::<Option<String>>("rel")?;
    let _: Option<Value> = kw.get("extra_schemes")?;
    kw.assert_all_used()?;
    let mut rel_parts: Vec<String> = rel
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if nofollow {
        rel_parts.push("nofollow".into());
    }
    rel_parts.push("noopener".into());
    rel_parts.sort();
    rel_parts.dedup();
    let rel_attr = format!(" rel=\"{}\"", escape(&rel_parts.join(" ")));
    let target_attr = target
        .map(|t| format!(" target=\"{}\"", escape(&t)))
        .unwrap_or_default();
    let trim = |url: &str| match trim_url_limit {
        Some(limit) if url.chars().count() > limit => {
            format!("{}...", url.chars().take(limit).collect::<String>())
        }
        _ => url.to_string(),
    };
    let escaped = escape(&text(&value));
    let mut out = String::with_capacity(escaped.len());
    // `re.split(r"(\s+)")`: words and the whitespace between them, kept.
    let mut rest = escaped.as_str();
    while !rest.is_empty() {
        let space = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(space);
        let gap = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        let (whitespace, next) = after.split_at(gap);
        out.push_str(&urlize_word(word, &rel_attr, &target_attr, &trim));
        out.push_str(whitespace);
        rest = next;
    }
    Ok(Value::from_safe_string(out))
}

fn urlize_word(word: &str, rel: &str, target: &str, trim: &dyn Fn(&str) -> String) -> String {
    let mut middle = word.to_string();
    let mut head = String::new();
    let mut tail = String::new();
    if let Ok(lead) = LEAD.as_ref()
        && let Some(m) = lead.find(&middle)
    {
        head = m.as_str().to_string();
        middle = middle[m.end()..].to_string();
    }
    if let Ok(trail) = TRAIL.as_ref()
        && let Some(m) = trail.find(&middle)
    {
        tail = m.as_str().to_string();
        middle.truncate(m.start());
    }
    // Balanced brackets belong to the URL rather than to the punctuation after it.
    for (start, end) in [("(", ")"), ("<", ">"), ("&lt;", "&gt;")] {
        let opened = middle.matches(start).count();
        if opened <= middle.matches(end).count() {
            continue;
        }
        for _ in 0..opened.min(tail.matches(end).count()) {
            let Some(at) = tail.find(end) else { break };
            let cut = at + end.len();
            middle.push_str(&tail[..cut]);
            tail = tail[cut..].to_string();
        }
    }
    let linked = if matches(&HTTP, &middle) {
        let href = match middle.starts_with("https://") || middle.starts_with("http://") {
            true => middle.clone(),
            false => format!("https://{middle}"),
        };
        format!("<a href=\"{href}\"{rel}{target}>{}</a>", trim(&middle))
    } else if let Some(address) = middle.strip_prefix("mailto:")
        && matches(&EMAIL, address)
    {
        format!("<a href=\"{middle}\">{address}</a>")
    } else if middle.contains('@')
        && !middle.starts_with("www.")
        && !middle.contains(':')
        && matches(&EMAIL, &middle)
    {
        format!("<a href=\"mailto:{middle}\">{middle}</a>")
    } else {
        middle
    };
    format!("{head}{linked}{tail}")
}

/// Jinja2's `wordwrap(width, break_long_words, wrapstring, break_on_hyphens)`, the first three
/// positional too (minijinja-contrib's, which does the wrapping, takes keywords only).
fn wordwrap(
    value: Value,
    width: Option<Value>,
    break_long_words: Option<Value>,
    wrapstring: Option<Value>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let mut args: Vec<(String, Value)> = Vec::new();
    for (name, given) in [
        ("width", width),
        ("break_long_words", break_long_words),
        ("wrapstring", wrapstring),
        ("break_on_hyphens", None),
    ] {
        let given = match given {
            Some(v) => Some(v),
            None => kw.get::<Option<Value>>(name)?,
        };
        if let Some(v) = given.filter(|v| !v.is_none()) {
            args.push((name.to_string(), v));
        }
    }
    kw.assert_all_used()?;
    minijinja_contrib::filters::wordwrap(&value, Kwargs::from_iter(args))
}

/// Python's `callable()`: functions and macros (not settle's dates or vault values).
fn callable(value: Value) -> bool {
    value.kind() == ValueKind::Plain
        && value
            .as_object()
            .is_some_and(|o| o.repr() == ObjectRepr::Plain)
        && value
            .downcast_object_ref::<super::time::DateTime>()
            .is_none()
        && value
            .downcast_object_ref::<crate::vaulted::Undecryptable>()
            .is_none()
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(env, "center", center);
    super::add_filter(env, "forceescape", |v: Value| {
        Value::from_safe_string(escape(&text(&v)))
    });
    super::add_filter(env, "xmlattr", xmlattr);
    super::add_filter(env, "urlize", urlize);
    super::add_filter(env, "wordwrap", wordwrap);
    super::add_test(env, "callable", callable);
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn as_jinja2_computes_them() {
        // Python: 'ab'.center(5) == '  ab ', 'abc'.center(6) == ' abc  '
        assert_eq!(center(Value::from("ab"), Some(5)), "  ab ");
        assert_eq!(center(Value::from("abc"), Some(6)), " abc  ");
        assert_eq!(center(Value::from("abc"), Some(2)), "abc");
        let attrs = minijinja::context! { class => "a<b", id => (), n => 1 };
        assert_eq!(
            xmlattr(attrs, None).unwrap().to_string(),
            " class=\"a&lt;b\" n=\"1\""
        );
        let spaced = Value::from(std::collections::BTreeMap::from([("a b", 1)]));
        assert!(xmlattr(spaced, None).is_err());
    }
}
