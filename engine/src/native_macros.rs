//! Macros that return values, as in Ansible 2.19.
//!
//! Ansible renders with Jinja's native types: a macro whose body is one expression
//! (`{% macro m() %}{{ {"foo": "bar"} }}{% endmacro %}`) returns that expression's value, not
//! its text, so `m()['foo']` works and a template that is only `{{ m() }}` gives a dict.
//! minijinja's macros return text. So the source is rewritten as it is handed to minijinja:
//! the body's expression goes through [`KEEP`], which puts a value that is not text aside
//! and gives a marker in its place, and the macro is wrapped by [`NATIVE_MACRO`] in an object
//! whose calls hand back the value the marker names. A body with anything else in it (text,
//! several expressions, tags) stays a macro returning text, as in Ansible.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Error, State};

/// The function that puts a macro body's value aside.
pub const KEEP: &str = "__settle_keep";
/// The function that wraps a macro so that its calls give values.
pub const NATIVE_MACRO: &str = "__settle_native_macro";

const MARK_OPEN: &str = "\u{2}settle-native:";
const MARK_CLOSE: char = '\u{3}';

thread_local! {
    /// Values put aside by [`keep`] on this thread, by number, until taken.
    static KEPT: RefCell<(u64, HashMap<u64, Value>)> = RefCell::new((0, HashMap::new()));
}

/// `__settle_keep(value)`: text and undefined values as they are; any other value put aside,
/// a marker returned in its place.
pub fn keep(value: Value) -> Value {
    if value.is_undefined() || value.as_str().is_some() {
        return value;
    }
    KEPT.with(|kept| {
        let (next, table) = &mut *kept.borrow_mut();
        // Markers that were never taken (a recursive call of the unwrapped macro) are
        // forgotten rather than kept forever.
        if table.len() > 1024 {
            table.clear();
        }
        *next += 1;
        table.insert(*next, value);
        Value::from(format!("{MARK_OPEN}{next}{MARK_CLOSE}"))
    })
}

/// The value a marker names, when `text` is exactly one marker.
pub fn take(text: &str) -> Option<Value> {
    let number: u64 = text
        .strip_prefix(MARK_OPEN)?
        .strip_suffix(MARK_CLOSE)?
        .parse()
        .ok()?;
    KEPT.with(|kept| kept.borrow_mut().1.remove(&number))
}

/// `__settle_native_macro(m)`: `m`, its calls giving the value its body put aside.
pub fn native_macro(inner: Value) -> Value {
    Value::from_object(NativeMacro { inner })
}

#[derive(Debug)]
struct NativeMacro {
    inner: Value,
}

impl Object for NativeMacro {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let out = self.inner.call(state, args)?;
        Ok(out.as_str().and_then(take).unwrap_or(out))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.inner.get_attr(key.as_str()?).ok()
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

/// A `{% … %}` tag starting at `at`: its inside (without `{%`, `%}` and `-` marks), whether
/// it strips the whitespace before and after it, and where it ends.
pub(crate) fn tag_at(source: &str, at: usize) -> Option<(&str, bool, bool, usize)> {
    let rest = source.get(at..)?.strip_prefix("{%")?;
    let close = rest.find("%}")?;
    let inner = &rest[..close];
    let strip_before = inner.starts_with('-');
    let strip_after = inner.ends_with('-');
    let inner = inner
        .trim_start_matches(['-', '+'])
        .trim_end_matches(['-', '+']);
    Some((inner.trim(), strip_before, strip_after, at + 2 + close + 2))
}

/// The macro definition starting at `at` whose body is one `{{ expression }}`: the macro's
/// name, the expression, where the body's `{{` starts and its `}}` ends, and where the
/// definition ends.
struct OneExpressionMacro<'a> {
    name: &'a str,
    expression: &'a str,
    body: (usize, usize),
    end: usize,
}

fn one_expression_macro(source: &str, at: usize) -> Option<OneExpressionMacro<'_>> {
    let (inner, _, strip_after, body_start) = tag_at(source, at)?;
    let signature = inner.strip_prefix("macro")?;
    if !signature.starts_with(char::is_whitespace) {
        return None;
    }
    let name = signature.trim_start().split('(').next()?.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let end_at = body_start + source[body_start..].find("{%")?;
    let (end_inner, strip_before, _, end) = tag_at(source, end_at)?;
    if end_inner != "endmacro" && end_inner != format!("endmacro {name}") {
        return None;
    }
    let body = &source[body_start..end_at];
    // trim_blocks drops the newline right after the macro tag; `-` marks strip whitespace.
    let lead = if strip_after {
        body.len() - body.trim_start().len()
    } else {
        usize::from(body.starts_with('\n'))
    };
    let trail = if strip_before {
        body.len() - body.trim_end().len()
    } else {
        0
    };
    let expression_text = body.get(lead..body.len() - trail)?;
    let expression = expression_text.strip_prefix("{{")?.strip_suffix("}}")?;
    if expression.contains("{{") || expression.contains("}}") || expression.contains("{%") {
        return None;
    }
    let expression = expression.trim_start_matches('-').trim_end_matches('-');
    let start = body_start + lead;
    Some(OneExpressionMacro {
        name,
        expression,
        body: (start, start + expression_text.len()),
        end,
    })
}

/// The source with every macro whose body is one expression made to return its value.
pub fn rewrite(source: &str) -> Cow<'_, str> {
    if !source.contains("macro") {
        return Cow::Borrowed(source);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = source[search..].find("{%") {
        let at = search + found;
        search = at + 2;
        let Some(m) = one_expression_macro(source, at) else {
            continue;
        };
        out.push_str(&source[copied..m.body.0]);
        out.push_str(&format!("{{{{ {KEEP}(({})) }}}}", m.expression));
        out.push_str(&source[m.body.1..m.end]);
        out.push_str(&format!(
            "{{% set {name} = {NATIVE_MACRO}({name}) %}}",
            name = m.name
        ));
        copied = m.end;
        search = m.end;
    }
    if copied == 0 {
        return Cow::Borrowed(source);
    }
    out.push_str(&source[copied..]);
    Cow::Owned(out)
}

/// How much of `source` is macro definitions and one-line `{% set x = … %}` assignments, each
/// with the newline after it (which trim_blocks drops): what comes after is the template's
/// output.
pub fn leading_definitions(source: &str) -> usize {
    let mut at = 0;
    loop {
        let Some((inner, _, _, tag_end)) = tag_at(source, at) else {
            return at;
        };
        if inner
            .strip_prefix("set")
            .is_some_and(|rest| rest.starts_with(char::is_whitespace) && rest.contains('='))
        {
            at = tag_end + usize::from(source[tag_end..].starts_with('\n'));
            continue;
        }
        let Some(name) = inner
            .strip_prefix("macro")
            .filter(|s| s.starts_with(char::is_whitespace))
            .and_then(|s| s.trim_start().split('(').next())
            .map(str::trim)
        else {
            return at;
        };
        let mut search = at + 2;
        let end = loop {
            let Some(found) = source[search..].find("{%") else {
                return at;
            };
            let tag = search + found;
            match tag_at(source, tag) {
                Some((inner, _, _, end))
                    if inner == "endmacro" || inner == format!("endmacro {name}") =>
                {
                    break end;
                }
                Some((_, _, _, end)) => search = end,
                None => return at,
            }
        };
        at = end + usize::from(source[end..].starts_with('\n'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_expression_bodies_are_rewritten() {
        let source = "{% macro m(a) %}{{ {'a': a} }}{% endmacro %}\n{{ m(1) }}";
        assert_eq!(
            rewrite(source),
            "{% macro m(a) %}{{ __settle_keep(( {'a': a} )) }}{% endmacro %}\
             {% set m = __settle_native_macro(m) %}\n{{ m(1) }}"
        );
        let text = "{% macro t() %}text {{ 1 }}{% endmacro %}{{ t() }}";
        assert_eq!(rewrite(text), text);
    }

    #[test]
    fn leading_definitions_end_where_output_starts() {
        let source = "{% macro m() %}{{ 1 }}{% endmacro %}\n{{ m() }}";
        assert_eq!(&source[leading_definitions(source)..], "{{ m() }}");
        assert_eq!(leading_definitions("{{ x }}"), 0);
    }

    #[test]
    fn a_kept_value_is_taken_once() {
        let marker = keep(Value::from(5));
        let text = marker.as_str().unwrap_or_default().to_string();
        assert_eq!(take(&text), Some(Value::from(5)));
        assert_eq!(take(&text), None);
        assert_eq!(keep(Value::from("text")), Value::from("text"));
    }
}

thread_local! {
    /// For each render that asked (innermost last): the values printed by `{{ … }}` so far, as
    /// far as it matters: none, one (with its text), or more.
    static PRINTED: RefCell<Vec<Printed>> = const { RefCell::new(Vec::new()) };
}

enum Printed {
    Nothing,
    One(Value, String),
    Several,
}

/// Notes a value the formatter printed as `text` (a None prints nothing and is no output, as in
/// Ansible), for [`single_output`].
pub fn note_printed(value: &Value, text: &str) {
    if value.is_none() {
        return;
    }
    PRINTED.with(|printed| {
        if let Some(last) = printed.borrow_mut().last_mut() {
            *last = match last {
                Printed::Nothing => Printed::One(value.clone(), text.to_string()),
                _ => Printed::Several,
            };
        }
    });
}

/// Whether Ansible would give the value of a template with tags rather than its text: the
/// tags are only conditions, loops and variable settings (no macro, call, filter or capturing
/// block, whose output is text of their own).
pub fn may_give_a_value(source: &str) -> bool {
    let mut at = 0;
    while let Some(found) = source[at..].find("{%") {
        let start = at + found;
        let Some((inner, _, _, end)) = tag_at(source, start) else {
            return false;
        };
        let keyword = inner.split_whitespace().next().unwrap_or("");
        let fine = match keyword {
            "if" | "elif" | "else" | "endif" | "for" | "endfor" | "with" | "endwith" => true,
            "set" => inner.contains('='),
            _ => false,
        };
        if !fine {
            return false;
        }
        at = end;
    }
    true
}

/// Runs a render of a template with tags; when all it printed is one `{{ … }}` value and the
/// text is that value's text alone (no other text around it), that value too: Ansible's
/// native rendering gives a template's only output node as it is (`{% for x in [1] %}{{ x
/// }}{% endfor %}` is the number 1; two nodes are joined as text), and a template with no
/// output node at all (`{% if false %}…{% endif %}`) is None.
pub fn single_output<E>(
    render: impl FnOnce() -> Result<String, E>,
) -> Result<(String, Option<Value>), E> {
    PRINTED.with(|printed| printed.borrow_mut().push(Printed::Nothing));
    let text = render();
    let printed = PRINTED.with(|printed| printed.borrow_mut().pop());
    let text = text?;
    let value = match printed {
        Some(Printed::One(value, written)) if written == text => Some(value),
        Some(Printed::Nothing) if text.is_empty() => Some(Value::from(())),
        _ => None,
    };
    Ok((text, value))
}
