//! Template source as Ansible hands it to Jinja: two rewrites before minijinja parses it.
//!
//! **Backslashes.** In templates that come from YAML values, Ansible doubles the backslashes of
//! string literals inside `{{ }}` before Jinja reads them, so `regex_replace('(b)', '\1')`
//! gets a backslash and a one, as written, not the control character Jinja would make of `\1`.
//! Template files and conditions are read as Jinja reads them.
//!
//! **Chained undefined.** `a.b.c | default(x)` and `a.b.c is defined` work when `a` or `a.b` is
//! undefined, while every other use of an undefined value stays an error.
//!
//! minijinja's strict mode fails as soon as an attribute of an undefined value is looked up,
//! and its chainable mode lets undefined values through everywhere (a typo in `when:` would
//! then be silently false). So the lookups that Ansible lets chain, a chain of attributes and
//! subscripts right before `| default`, `| d`, `is defined` or `is undefined`, are rewritten
//! into a call of [`CHAIN`], which walks the chain and gives undefined at the first missing
//! step. Text outside `{{ }}`/`{% %}`, string literals and `{% raw %}` sections are left alone.
//!
//! **Date arithmetic.** Where an expression makes dates (`to_datetime`, `now()`), each binary
//! `-` becomes a call of [`MINUS`] with its two operands, so that two datetimes subtract to a
//! timedelta as in Python; minijinja's `-` knows only numbers.

use std::borrow::Cow;

use minijinja::Value;
use minijinja::value::Rest;

/// The function a rewritten chain calls.
pub const CHAIN: &str = "__settle_chain";

/// `__settle_chain(root, key, …)`: `root[key]…`, undefined at the first step that is missing.
/// A step that could not be rendered for another reason than an undefined value (an invalid
/// value: a syntax error in a variable's template) is that error, as in Ansible 2.19, where
/// `is defined` and `default` let only undefined values through.
pub fn chain(root: Value, keys: Rest<Value>) -> Result<Value, minijinja::Error> {
    let mut current = root;
    for key in keys.iter() {
        if current.is_undefined() || current.is_none() {
            return Ok(Value::UNDEFINED);
        }
        current = match current.get_item(key) {
            Ok(v) if v.kind() == minijinja::value::ValueKind::Invalid => {
                return Err(invalid_error(v));
            }
            Ok(v) => v,
            Err(_) => return Ok(Value::UNDEFINED),
        };
    }
    Ok(current)
}

/// The error an invalid value holds (minijinja gives it out only through a checked iteration).
pub(crate) fn invalid_error(value: Value) -> minijinja::Error {
    Value::from(vec![value])
        .try_iter()
        .ok()
        .and_then(|items| items.checked().find_map(Result::err))
        .unwrap_or_else(|| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "invalid value")
        })
}

/// The function a binary `-` is rewritten to where dates are made ([`date_minus`]).
pub const MINUS: &str = "__settle_minus";

/// Whether an expression may make dates, so that its `-` is worth rewriting.
fn makes_dates(expr: &str) -> bool {
    expr.contains('-') && (expr.contains("to_datetime") || expr.contains("now("))
}

/// Every binary `-` of an expression that makes dates, rewritten to `MINUS((a), (b))` with
/// the operands Jinja would give it: `+`, `-` and everything looser (comparisons, `and`,
/// `not`, `if`, commas, brackets) end an operand; filters, calls, `~`, `*`, `/`, `%` are
/// inside it. `a - b - c` becomes `MINUS((MINUS((a), (b))), (c))`.
fn date_minus(expr: &str) -> Cow<'_, str> {
    if !makes_dates(expr) {
        return Cow::Borrowed(expr);
    }
    let mut out = expr.to_string();
    let mut from = 0;
    // Each rewrite removes one `-` and adds none, so this ends.
    while let Some(at) = next_minus(&out, from) {
        from = at + 1;
        if !binary_before(&out, at) {
            continue;
        }
        let start = minus_left_start(&out, at);
        let end = minus_right_end(&out, at + 1);
        let (left, right) = (out[start..at].trim(), out[at + 1..end].trim());
        if left.is_empty() || right.is_empty() {
            continue;
        }
        let call = format!("{MINUS}(({left}), ({right}))");
        out.replace_range(start..end, &call);
        // Operands may hold a `-` of their own (inside brackets): scan them too.
        from = start + MINUS.len();
    }
    Cow::Owned(out)
}

/// [`date_minus`] of a block's inside, its whitespace marks (`{{-`, `-%}`) kept apart: they
/// are not signs.
fn date_minus_inside_marks(inner: &str) -> String {
    let lead = usize::from(inner.starts_with(['-', '+']));
    let trail = usize::from(inner.len() > lead && inner.ends_with(['-', '+']));
    let end = inner.len() - trail;
    format!(
        "{}{}{}",
        &inner[..lead],
        date_minus(&inner[lead..end]),
        &inner[end..]
    )
}

/// The next `-` at or after `from` outside string literals.
fn next_minus(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            b'-' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether the `-` at `at` has an operand before it (binary), rather than an operator, an
/// opening bracket, a keyword or nothing (unary, or a `{{-` trim mark); the `-` of `1e-5` is
/// part of the number.
fn binary_before(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end();
    let Some(&last) = before.as_bytes().last() else {
        return false;
    };
    if matches!(last, b')' | b']' | b'}' | b'\'' | b'"') {
        return true;
    }
    if !is_ident(last) {
        return false;
    }
    let word_start = before
        .bytes()
        .rposition(|c| !(is_ident(c) || c == b'.'))
        .map_or(0, |p| p + 1);
    !exponent_sign(text, at) && !KEYWORDS.contains(&&before[word_start..])
}

/// Whether the sign at `at` is a number's exponent (`1e-5`, `2.5E+3`).
fn exponent_sign(text: &str, at: usize) -> bool {
    let before = &text[..at];
    let start = before
        .bytes()
        .rposition(|c| !(is_ident(c) || c == b'.'))
        .map_or(0, |p| p + 1);
    let word = &before[start..];
    word.as_bytes().first().is_some_and(u8::is_ascii_digit) && word.ends_with(['e', 'E'])
}

/// The words that end an operand (they bind looser than arithmetic and filters).
const LOOSER_WORDS: &[&str] = &["and", "or", "not", "in", "is", "if", "else"];

/// Where the left operand of the `-` at `at` starts.
fn minus_left_start(text: &str, at: usize) -> usize {
    walk_back(text, at, |i, c| match c {
        // A sign is part of the operand (`-a - b` is `(-a) - b`); a binary `+`/`-` ends it.
        b'+' | b'-' if !exponent_sign(text, i - 1) => {
            Back::Stop(if binary_before(text, i - 1) { i } else { i - 1 })
        }
        b',' | b'=' | b'!' | b'<' | b'>' | b':' => Back::Stop(i),
        c if is_ident(c) => {
            let word_start = text[..i]
                .bytes()
                .rposition(|b| !is_ident(b))
                .map_or(0, |p| p + 1);
            let attribute = text[..word_start].ends_with('.');
            match !attribute && LOOSER_WORDS.contains(&&text[word_start..i]) {
                true => Back::Stop(i),
                false => Back::Jump(word_start),
            }
        }
        _ => Back::On,
    })
}

/// What [`walk_back`] does at a byte outside brackets and string literals.
enum Back {
    /// The operand starts here.
    Stop(usize),
    /// Go on from here (past a word).
    Jump(usize),
    /// Go on with the byte before.
    On,
}

/// Walks back from `end` to where the operand that ends there starts: past string literals
/// and bracketed groups, to just after an unmatched opening bracket, or where `step` (given
/// the index just past a byte outside brackets, and the byte) stops it.
fn walk_back(text: &str, end: usize, step: impl Fn(usize, u8) -> Back) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = end;
    while i > 0 {
        let c = bytes[i - 1];
        match c {
            b'\'' | b'"' => {
                // Back to the quote that opens the literal.
                i -= 1;
                while i > 0 && bytes[i - 1] != c {
                    i -= 1;
                }
                i = i.saturating_sub(1);
                continue;
            }
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' if depth == 0 => return i,
            b'(' | b'[' | b'{' => depth -= 1,
            _ if depth == 0 => match step(i, c) {
                Back::Stop(at) => return at,
                Back::Jump(to) => {
                    i = to;
                    continue;
                }
                Back::On => {}
            },
            _ => {}
        }
        i -= 1;
    }
    0
}

/// Where the right operand of a `-` whose text starts at `from` ends.
fn minus_right_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    // A sign of the operand itself.
    while i < bytes.len() && (bytes[i].is_ascii_whitespace() || matches!(bytes[i], b'-' | b'+')) {
        i += 1;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            b'(' => i = group_end(bytes, i, b'(', b')'),
            b'[' => i = group_end(bytes, i, b'[', b']'),
            b'{' => i = group_end(bytes, i, b'{', b'}'),
            b'+' | b'-' if exponent_sign(text, i) => i += 1,
            b')' | b']' | b'}' | b'+' | b'-' | b',' | b'=' | b'!' | b'<' | b'>' | b':' => {
                return i;
            }
            c if is_ident_start(c) && (i == 0 || !is_ident(bytes[i - 1])) => {
                let mut j = i;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                let attribute = text[..i].trim_end().ends_with('.');
                if !attribute && LOOSER_WORDS.contains(&&text[i..j]) {
                    return i;
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    bytes.len().min(i)
}

/// The function a lookup's templated string argument is wrapped in.
pub const LOOKUP_TEMPLATE: &str = "__settle_lookup_template";

/// Whether an expression may pass a lookup a string literal holding a template (cheap).
fn may_template_lookup_args(expr: &str) -> bool {
    (expr.contains("lookup(") || expr.contains("query(") || expr.contains("q("))
        && (expr.contains("{{") || expr.contains("{%"))
}

/// The string literals that hold a template and are arguments of `lookup()`/`query()`/`q()`
/// (not the lookup's name), wrapped in [`LOOKUP_TEMPLATE`]: Ansible 2.19 trusts such constants
/// and renders them before the lookup runs (`lookup('pipe', 'echo {{ x }}')`), while other
/// string constants stay text.
fn template_lookup_args(expr: &str) -> Cow<'_, str> {
    if !may_template_lookup_args(expr) {
        return Cow::Borrowed(expr);
    }
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 32);
    // Per open bracket: what it opens, and which argument or item is being read.
    let mut stack: Vec<(Bracket, usize)> = Vec::new();
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                let end = string_end(bytes, i);
                let literal = &expr[i..end];
                // Directly, or inside list and dict literals (`lookup('list', ['{{ 1 }}'])`).
                let in_args = stack
                    .iter()
                    .rev()
                    .find(|(kind, _)| *kind != Bracket::Literal)
                    .is_some_and(|(kind, arg)| *kind == Bracket::Lookup && *arg > 0);
                if in_args && (literal.contains("{{") || literal.contains("{%")) {
                    out.push_str(LOOKUP_TEMPLATE);
                    out.push('(');
                    out.push_str(literal);
                    out.push(')');
                    changed = true;
                } else {
                    out.push_str(literal);
                }
                i = end;
                continue;
            }
            b'(' => {
                let name_end = out.len();
                // After the last character that is not part of a name (which may be wider
                // than a byte: found by the fuzzer).
                let name_start = out[..name_end]
                    .char_indices()
                    .rev()
                    .find(|(_, ch)| !(ch.is_ascii_alphanumeric() || *ch == '_'))
                    .map_or(0, |(p, ch)| p + ch.len_utf8());
                let name = &out[name_start..name_end];
                let after_dot = out[..name_start].ends_with('.');
                let call = !after_dot && matches!(name, "lookup" | "query" | "q");
                stack.push((
                    if call {
                        Bracket::Lookup
                    } else {
                        Bracket::Other
                    },
                    0,
                ));
            }
            b'[' | b'{' => {
                // A subscript (`x[0]`) is no literal; a list after `(`, `,`, `:`, `[`, `{` is.
                let before = out.trim_end().bytes().next_back();
                let literal = c == b'{'
                    || before.is_none_or(|b| matches!(b, b'(' | b',' | b':' | b'[' | b'{'));
                stack.push((
                    if literal {
                        Bracket::Literal
                    } else {
                        Bracket::Other
                    },
                    0,
                ));
            }
            b')' | b']' | b'}' => {
                stack.pop();
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
            }
            _ => {}
        }
        let next = i + expr[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&expr[i..next]);
        i = next;
    }
    match changed {
        true => Cow::Owned(out),
        false => Cow::Borrowed(expr),
    }
}

/// What an open bracket of an expression opens, for [`template_lookup_args`].
#[derive(Clone, Copy, PartialEq)]
enum Bracket {
    /// The arguments of `lookup()`, `query()` or `q()`.
    Lookup,
    /// A list or dict literal.
    Literal,
    /// Anything else: another call, a subscript, parentheses.
    Other,
}

/// Whether the only templates in an expression are string arguments of lookups (`lookup('x',
/// '{{ y }}')`): then it is an expression, and the lookup renders them, not a template.
pub fn templates_only_in_lookup_args(expr: &str) -> bool {
    let wrapped = template_lookup_args(expr);
    if !matches!(wrapped, Cow::Owned(_)) {
        return false;
    }
    let bytes = wrapped.as_bytes();
    let mut rest = String::with_capacity(wrapped.len());
    let mut i = 0;
    while i < bytes.len() {
        if wrapped[i..].starts_with(LOOKUP_TEMPLATE) {
            let open = i + LOOKUP_TEMPLATE.len();
            let end = group_end(bytes, open, b'(', b')');
            i = end.min(bytes.len());
            continue;
        }
        if bytes[i] == b'\'' || bytes[i] == b'"' {
            let end = string_end(bytes, i);
            rest.push_str(&wrapped[i..end]);
            i = end;
            continue;
        }
        i = push_char(&mut rest, &wrapped, i);
    }
    !(rest.contains("{{") || rest.contains("{%") || rest.contains("{#"))
}

/// The string literals a template gives `map`/`select`/`reject` (filters: `map`; tests: the
/// others) or `selectattr`/`rejectattr` (their second) as a filter's or test's name.
pub fn names_given_to_higher_order(source: &str, filters: bool) -> Vec<String> {
    let calls: &[(&str, usize)] = if filters {
        &[("map(", 0)]
    } else {
        &[
            ("select(", 0),
            ("reject(", 0),
            ("selectattr(", 1),
            ("rejectattr(", 1),
        ]
    };
    let bytes = source.as_bytes();
    let mut names = Vec::new();
    for (call, position) in calls {
        let mut from = 0;
        while let Some(found) = source[from..].find(call) {
            let start = from + found + call.len();
            from = start;
            if found > 0 && is_ident(bytes[from - call.len() - 1]) {
                continue;
            }
            // The literal at argument `position`.
            let mut i = start;
            let mut argument = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' | b'"' => {
                        let end = string_end(bytes, i);
                        if argument == *position {
                            let name = &source[i + 1..end.saturating_sub(1).max(i + 1)];
                            // Any text names a test or filter, one that cannot exist too
                            // (`selectattr('failed', 'asdf ', true)`): it is the one missing.
                            if !name.is_empty() && !name.contains(['\\', '\n']) {
                                names.push(name.to_string());
                            }
                            break;
                        }
                        i = end;
                    }
                    b',' => {
                        argument += 1;
                        i += 1;
                    }
                    b')' => break,
                    b'(' | b'[' | b'{' => break,
                    _ => i += 1,
                }
            }
        }
    }
    names
}

/// Unary plus (`[-2.5, +2.5]`), which minijinja does not parse: dropped, as it changes no
/// number. A `+` is unary after an opening bracket, a comma, a colon, an operator or a
/// keyword, or at the start.
fn unary_plus(expr: &str) -> Cow<'_, str> {
    if !expr.contains('+') {
        return Cow::Borrowed(expr);
    }
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len());
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            let end = string_end(bytes, i);
            out.push_str(&expr[i..end]);
            i = end;
            continue;
        }
        if c == b'+' {
            let before = out.trim_end();
            // After the last character that is not part of a name (which may be several bytes).
            let word_start = before
                .char_indices()
                .rfind(|(_, ch)| !(ch.is_ascii_alphanumeric() || *ch == '_'))
                .map_or(0, |(p, ch)| p + ch.len_utf8());
            let word = &before[word_start..];
            let unary = match before.as_bytes().last() {
                None => true,
                Some(b'(' | b'[' | b'{' | b',' | b':' | b'+' | b'-' | b'*' | b'/' | b'%')
                | Some(b'~' | b'<' | b'>' | b'=' | b'|') => true,
                _ => matches!(word, "and" | "or" | "not" | "in" | "if" | "else" | "is"),
            };
            // `a ++ b` is not Jinja either; only a `+` before a number or a name is dropped.
            let next = expr[i + 1..].trim_start().as_bytes().first().copied();
            if unary && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'.' || n == b'(') {
                changed = true;
                i += 1;
                continue;
            }
        }
        i = push_char(&mut out, expr, i);
    }
    match changed {
        true => Cow::Owned(out),
        false => Cow::Borrowed(expr),
    }
}

/// Whether a source may hold a chain or a `'text' % args` worth rewriting (cheap, so most
/// templates skip the scan).
fn may_chain(source: &str) -> bool {
    let chain = (source.contains("default") || source.contains("d(") || source.contains("defined"))
        && (source.contains('.') || source.contains('['));
    chain
        || (source.contains('%')
            && (source.contains("' %")
                || source.contains("\" %")
                || source.contains("'%")
                || source.contains("\"%")))
}

/// A bare expression (`when:`), its chains rewritten.
pub fn expression(expr: &str) -> Cow<'_, str> {
    expression_with(expr, false)
}

fn expression_with(expr: &str, escape: bool) -> Cow<'_, str> {
    // Once: a `dump_object` whose operand was not rewritten stays as it is (a second pass
    // would find it again, and never end).
    match dump_object_operands(expr, escape) {
        Cow::Owned(captured) => Cow::Owned(rewritten(&captured).into_owned()),
        Cow::Borrowed(expr) => rewritten(expr),
    }
}

/// An expression's chains, unary pluses and template lookup arguments rewritten.
fn rewritten(expr: &str) -> Cow<'_, str> {
    let expr = match unary_plus(expr) {
        Cow::Borrowed(expr) => template_lookup_args(expr),
        Cow::Owned(expr) => Cow::Owned(template_lookup_args(&expr).into_owned()),
    };
    let expr = match makes_dates(&expr) {
        true => Cow::Owned(date_minus(&expr).into_owned()),
        false => expr,
    };
    if !may_chain(&expr) {
        return expr;
    }
    Cow::Owned(rewrite(&expr))
}

/// The inside of a YAML value's `{{ expr }}`: chains rewritten, backslashes escaped.
pub fn yaml_expression(expr: &str) -> Cow<'_, str> {
    let chained = expression_with(expr, true);
    if !chained.contains('\\') {
        return chained;
    }
    Cow::Owned(escape_backslashes(&chained))
}

/// A template file: chains rewritten inside its blocks.
pub fn template(source: &str) -> Cow<'_, str> {
    with_native_macros(source, false)
}

/// Macros that include templates made to see the template's names ([`enclose_for_includes`]),
/// macros whose body is one expression made to return its value (see
/// [`crate::native_macros`]), then the blocks rewritten.
fn with_native_macros(source: &str, escape: bool) -> Cow<'_, str> {
    if let Cow::Owned(enclosed) = enclose_for_includes(source) {
        return Cow::Owned(native_then_blocks(&enclosed, escape).into_owned());
    }
    native_then_blocks(source, escape)
}

fn native_then_blocks(source: &str, escape: bool) -> Cow<'_, str> {
    match crate::native_macros::rewrite(source) {
        Cow::Borrowed(source) => blocks(source, escape),
        Cow::Owned(rewritten) => Cow::Owned(blocks(&rewritten, escape).into_owned()),
    }
}

/// A template from a YAML value: chains rewritten, and backslashes of string literals inside
/// `{{ }}` escaped.
pub fn yaml_template(source: &str) -> Cow<'_, str> {
    with_native_macros(source, true)
}

fn blocks(source: &str, escape: bool) -> Cow<'_, str> {
    let chain = may_chain(source);
    let escape = escape && source.contains('\\');
    let lookups = may_template_lookup_args(source);
    let plus = source.contains('+');
    let dump = source.contains(DUMP_OBJECT_FILTER);
    let dates = makes_dates(source);
    if !chain && !escape && !lookups && !plus && !dump && !dates {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 32);
    let mut rest = source;
    let mut in_raw = false;
    while let Some(open) = find_open(rest) {
        let (before, from) = rest.split_at(open);
        out.push_str(before);
        let close_mark = if from.starts_with("{{") { "}}" } else { "%}" };
        let Some(end) = block_end(&from[2..], close_mark) else {
            out.push_str(from);
            return Cow::Owned(out);
        };
        let inner = &from[2..2 + end];
        let tag = inner.trim().trim_start_matches('-').trim();
        if close_mark == "%}" && (tag.starts_with("raw") || tag.starts_with("endraw")) {
            in_raw = tag.starts_with("raw");
            out.push_str(&from[..2 + end + 2]);
        } else if in_raw {
            out.push_str(&from[..2 + end + 2]);
        } else {
            let captured = dump_object_operands(inner, escape);
            let inner = match unary_plus(&captured) {
                Cow::Borrowed(inner) => template_lookup_args(inner),
                Cow::Owned(inner) => Cow::Owned(template_lookup_args(&inner).into_owned()),
            };
            let inner = match dates {
                true => Cow::Owned(date_minus_inside_marks(&inner)),
                false => inner,
            };
            let mut inner = if chain {
                rewrite(&inner)
            } else {
                inner.into_owned()
            };
            if escape && close_mark == "}}" {
                inner = escape_backslashes(&inner);
            }
            out.push_str(&from[..2]);
            out.push_str(&inner);
            out.push_str(close_mark);
        }
        rest = &from[2 + end + 2..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Every backslash inside the string literals of an expression, doubled.
fn escape_backslashes(expr: &str) -> String {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' || bytes[i] == b'"' {
            let end = string_end(bytes, i);
            out.push_str(&expr[i..end].replace('\\', "\\\\"));
            i = end;
        } else {
            let next = expr[i..].find(['\'', '"']).map_or(expr.len(), |n| i + n);
            out.push_str(&expr[i..next]);
            i = next;
        }
    }
    out
}

/// The next `{{` or `{%`.
fn find_open(text: &str) -> Option<usize> {
    let a = text.find("{{");
    let b = text.find("{%");
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where the block that started before `text` closes with `mark`, string literals skipped.
fn block_end(text: &str, mark: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = string_end(bytes, i),
            // Bytes, not `text[i..]`: `i` may be inside a multi-byte character.
            _ if bytes[i..].starts_with(mark.as_bytes()) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the string literal starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

const KEYWORDS: &[&str] = &[
    "not",
    "and",
    "or",
    "in",
    "is",
    "if",
    "else",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "for",
    "recursive",
    "loop",
];

/// The chains in one expression, rewritten.
fn rewrite(expr: &str) -> String {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 32);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            let end = string_end(bytes, i);
            match percent_operand(expr, end) {
                Some((rhs_start, rhs_end)) => {
                    out.push_str(crate::filters::percent::PERCENT);
                    out.push('(');
                    out.push_str(&expr[i..end]);
                    out.push_str(", (");
                    out.push_str(&rewrite(&expr[rhs_start..rhs_end]));
                    out.push_str("))");
                    i = rhs_end;
                }
                None => {
                    out.push_str(&expr[i..end]);
                    i = end;
                }
            }
            continue;
        }
        if c == b'('
            && let Some((chained, end)) = parenthesized_chain(expr, i)
        {
            out.push_str(&chained);
            i = end;
            continue;
        }
        let starts_name =
            is_ident_start(c) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b'.'));
        if !starts_name {
            i = push_char(&mut out, expr, i);
            continue;
        }
        let mut j = i;
        while j < bytes.len() && is_ident(bytes[j]) {
            j += 1;
        }
        let root = &expr[i..j];
        let (keys, after) = accessors(expr, j);
        if !KEYWORDS.contains(&root) && !keys.is_empty() && ends_in_test(&expr[after..]) {
            out.push_str(CHAIN);
            out.push('(');
            out.push_str(root);
            for key in &keys {
                out.push_str(", ");
                out.push_str(key);
            }
            out.push(')');
        } else {
            out.push_str(root);
            // The subscripts of a chain that is not rewritten may hold chains of their own.
            out.push_str(&rewrite_subscripts(&expr[j..after.max(j)]));
        }
        i = after.max(j);
    }
    out
}

/// `(expr).a['b'] | default(…)`: a parenthesized expression (not a call's arguments) whose
/// lookups end in a test, rewritten to a chain; and where it ends. `None` for anything else.
fn parenthesized_chain(expr: &str, start: usize) -> Option<(String, usize)> {
    let bytes = expr.as_bytes();
    let before = expr[..start].trim_end().as_bytes().last();
    if before.is_some_and(|&b| is_ident(b) || b == b')' || b == b']') {
        return None;
    }
    let end = group_end(bytes, start, b'(', b')');
    if end > bytes.len() {
        return None;
    }
    let (keys, after) = accessors(expr, end);
    if keys.is_empty() || !ends_in_test(&expr[after..]) {
        return None;
    }
    let mut out = format!("{CHAIN}(({})", rewrite(&expr[start + 1..end - 1]));
    for key in &keys {
        out.push_str(", ");
        out.push_str(key);
    }
    out.push(')');
    Some((out, after))
}

/// Where the right operand of `%` after a string literal ending at `at` lies: Python's
/// string formatting (`'%s of %s' % (a, b)`, `"%s" % x.y | upper`). `None` when no `%` follows.
fn percent_operand(expr: &str, at: usize) -> Option<(usize, usize)> {
    let bytes = expr.as_bytes();
    let skip = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let op = skip(at);
    if bytes.get(op) != Some(&b'%') || matches!(bytes.get(op + 1), Some(b'}' | b'%')) {
        return None;
    }
    let start = skip(op + 1);
    let mut i = match *bytes.get(start)? {
        b'(' => group_end(bytes, start, b'(', b')'),
        b'[' => group_end(bytes, start, b'[', b']'),
        b'{' => group_end(bytes, start, b'{', b'}'),
        b'\'' | b'"' => string_end(bytes, start),
        c if is_ident(c) || c == b'-' => {
            let mut j = start + 1;
            while j < bytes.len() && (is_ident(bytes[j]) || bytes[j] == b'.') {
                j += 1;
            }
            j
        }
        _ => return None,
    };
    // Subscripts, calls and filters bind tighter than `%`.
    loop {
        if i > bytes.len() {
            return None;
        }
        match bytes.get(i) {
            Some(b'[') => i = group_end(bytes, i, b'[', b']'),
            Some(b'(') => i = group_end(bytes, i, b'(', b')'),
            Some(b'.') if bytes.get(i + 1).is_some_and(|c| is_ident_start(*c)) => {
                i += 1;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
            }
            _ => {
                let pipe = skip(i);
                if bytes.get(pipe) == Some(&b'|') && bytes.get(pipe + 1) != Some(&b'|') {
                    let name = skip(pipe + 1);
                    if !bytes.get(name).is_some_and(|c| is_ident_start(*c)) {
                        return Some((start, i));
                    }
                    i = name;
                    while i < bytes.len() && is_ident(bytes[i]) {
                        i += 1;
                    }
                } else {
                    return Some((start, i));
                }
            }
        }
    }
}

/// Subscript text (`.a['b'][c.d | default(1)]`) with chains inside brackets rewritten.
fn rewrite_subscripts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'[' {
            let end = bracket_end(bytes, i);
            out.push('[');
            let inner_end = (end - 1).clamp(i + 1, text.len());
            out.push_str(&rewrite(&text[i + 1..inner_end]));
            out.push(']');
            i = end;
        } else {
            i = push_char(&mut out, text, i);
        }
    }
    out
}

/// Copies the character at byte `i` (all its bytes, not one as Latin-1) and returns where the
/// next one starts.
fn push_char(out: &mut String, text: &str, i: usize) -> usize {
    match text.get(i..).and_then(|rest| rest.chars().next()) {
        Some(c) => {
            out.push(c);
            i + c.len_utf8()
        }
        None => i + 1,
    }
}

/// The accessors after a name: `.attr` as `'attr'`, `[expr]` as `expr`; and where they end.
fn accessors(expr: &str, mut i: usize) -> (Vec<String>, usize) {
    let bytes = expr.as_bytes();
    let mut keys = Vec::new();
    loop {
        if i + 1 < bytes.len() && bytes[i] == b'.' && is_ident_start(bytes[i + 1]) {
            let mut j = i + 1;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            keys.push(format!("'{}'", &expr[i + 1..j]));
            i = j;
        } else if let Some(j) = index_end(bytes, i) {
            // `a.1` is Jinja's `a[1]`.
            keys.push(expr[i + 1..j].to_string());
            i = j;
        } else if i < bytes.len() && bytes[i] == b'[' {
            let end = bracket_end(bytes, i);
            if end > bytes.len() || bytes.get(end - 1) != Some(&b']') {
                return (keys, i);
            }
            let inner = expr[i + 1..end - 1].trim();
            if inner.is_empty() || inner.contains(':') {
                // A slice, not a key.
                return (keys, i);
            }
            keys.push(rewrite(inner));
            i = end;
        } else {
            // A call (`a.b()`) is not a chain of lookups.
            if bytes.get(i) == Some(&b'(') {
                return (Vec::new(), i);
            }
            return (keys, i);
        }
    }
}

/// The end of `.<digits>` at `i` (an index by attribute, `a.1`), when that is what is there.
fn index_end(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'.') || !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut j = i + 1;
    while bytes.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    (!bytes.get(j).is_some_and(|c| is_ident(*c))).then_some(j)
}

/// The index just past the `]` that closes the `[` at `start`.
fn bracket_end(bytes: &[u8], start: usize) -> usize {
    group_end(bytes, start, b'[', b']')
}

/// The index just past the `close` that closes the `open` at `start` (string literals
/// skipped); past the end when it never closes.
fn group_end(bytes: &[u8], start: usize, open: u8, close: u8) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len() + 1
}

/// Whether what follows a chain is `| default`, `| d`, `is [not] defined` or `is [not] undefined`.
fn ends_in_test(rest: &str) -> bool {
    let rest = rest.trim_start();
    let word_after = |s: &str, word: &str| {
        s.strip_prefix(word)
            .is_some_and(|r| r.as_bytes().first().is_none_or(|c| !is_ident(*c)))
    };
    if let Some(filter) = rest.strip_prefix('|') {
        let filter = filter.trim_start();
        return word_after(filter, "default") || word_after(filter, "d");
    }
    if let Some(test) = rest.strip_prefix("is")
        && test.starts_with(char::is_whitespace)
    {
        let test = test.trim_start();
        let test = test
            .strip_prefix("not")
            .filter(|t| t.starts_with(char::is_whitespace))
            .map_or(test, str::trim_start);
        return word_after(test, "defined") || word_after(test, "undefined");
    }
    false
}

/// Jinja2 looks a macro's names up when it is called, in its template's context, so a template
/// the macro includes sees what the including template assigned at its top level (`{% import
/// 'vars.j2' as vars %}{% macro m() %}{% include 'uses_vars.j2' %}{% endmacro %}`).
/// minijinja's macros capture, when they are defined, only the names their own body mentions,
/// and an included template's names are not in the body. So a macro that includes a template
/// is made to mention every name its template assigns at the top level, in a branch that never
/// runs: minijinja then captures them in the closure all macros of that level share (by
/// reference, and later assignments update it), without copying anything per call.
pub fn enclose_for_includes(source: &str) -> Cow<'_, str> {
    if !source.contains("include") || !source.contains("macro") {
        return Cow::Borrowed(source);
    }
    // Top-level names, and per macro: where its body starts, whether its tag strips the
    // whitespace after it, whether its body includes a template.
    let mut names: Vec<&str> = Vec::new();
    let mut macros: Vec<(usize, bool, bool)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut in_raw = false;
    let mut search = 0;
    while let Some(found) = source[search..].find("{%") {
        let at = search + found;
        let Some((inner, _, strip_after, end)) = crate::native_macros::tag_at(source, at) else {
            break;
        };
        search = end;
        let (word, rest) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        if in_raw {
            in_raw = word != "endraw";
            continue;
        }
        let top = open.is_empty();
        match word {
            "raw" => in_raw = true,
            "macro" => {
                if top {
                    names.extend(rest.split('(').next().map(str::trim));
                }
                open.push(macros.len());
                macros.push((end, strip_after, false));
            }
            "endmacro" => {
                open.pop();
            }
            "include" => {
                for &m in &open {
                    macros[m].2 = true;
                }
            }
            "set" if top => {
                let targets = rest.split('=').next().unwrap_or_default();
                names.extend(targets.split(',').map(str::trim));
            }
            "import" if top => {
                names.extend(
                    rest.rsplit_once(" as ")
                        .and_then(|(_, n)| n.split_whitespace().next()),
                );
            }
            "from" if top => {
                if let Some((_, imported)) = rest.split_once(" import ") {
                    let imported = imported
                        .trim_end()
                        .trim_end_matches("without context")
                        .trim_end_matches("with context");
                    names.extend(imported.split(',').filter_map(|item| {
                        item.rsplit_once(" as ")
                            .map_or(item, |(_, alias)| alias)
                            .split_whitespace()
                            .next()
                    }));
                }
            }
            _ => {}
        }
    }
    names.retain(|n| {
        n.bytes().next().is_some_and(is_ident_start)
            && n.bytes().all(is_ident)
            && !KEYWORDS.contains(n)
    });
    names.sort_unstable();
    names.dedup();
    if names.is_empty() || !macros.iter().any(|m| m.2) {
        return Cow::Borrowed(source);
    }
    let mention: String = names.iter().map(|n| format!("{{{{ {n} }}}}")).collect();
    let mut out = String::with_capacity(source.len() + 64);
    let mut copied = 0;
    for (body, strip_after, includes) in macros {
        if !includes {
            continue;
        }
        out.push_str(&source[copied..body]);
        // The last tag before the body strips the whitespace after it as the macro's did.
        let close = if strip_after { "-%}" } else { "%}" };
        out.push_str(&format!("{{% if false %}}{mention}{{% endif {close}"));
        copied = body;
    }
    out.push_str(&source[copied..]);
    Cow::Owned(out)
}

/// A keyword argument given twice in one call (`lookup('vars', 'x', default='', default='')`),
/// which Jinja refuses when it compiles the template ("keyword argument repeated") and
/// minijinja would take, the last one winning. `expression` says whether `source` is one
/// expression (a condition) rather than a template with `{{ }}`/`{% %}` blocks.
pub fn repeated_keyword(source: &str, expression: bool) -> Option<&str> {
    source.matches('=').nth(1)?;
    if expression {
        return repeated_keyword_in(source);
    }
    let mut rest = source;
    while let Some(open) = find_open(rest) {
        let from = &rest[open..];
        let close_mark = if from.starts_with("{{") { "}}" } else { "%}" };
        let end = block_end(&from[2..], close_mark)?;
        if let Some(name) = repeated_keyword_in(&from[2..2 + end]) {
            return Some(name);
        }
        rest = &from[2 + end + 2..];
    }
    None
}

fn repeated_keyword_in(expr: &str) -> Option<&str> {
    let bytes = expr.as_bytes();
    // Per open bracket: the keywords given so far when it is a call's parenthesis.
    let mut calls: Vec<Option<Vec<&str>>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = string_end(bytes, i),
            b'(' => {
                let called = expr[..i]
                    .trim_end()
                    .bytes()
                    .next_back()
                    .is_some_and(is_ident);
                calls.push(called.then(Vec::new));
                i += 1;
            }
            b'[' | b'{' => {
                calls.push(None);
                i += 1;
            }
            b')' | b']' | b'}' => {
                calls.pop();
                i += 1;
            }
            c if is_ident_start(c) && (i == 0 || !is_ident(bytes[i - 1])) => {
                let start = i;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                let name = &expr[start..i];
                let after = expr[i..].trim_start();
                let keyword = after.starts_with('=') && !after.starts_with("==");
                if keyword && let Some(Some(given)) = calls.last_mut() {
                    if given.contains(&name) {
                        return Some(name);
                    }
                    given.push(name);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The test-only filter of ansible-core that shows an error as a value.
const DUMP_OBJECT_FILTER: &str = "ansible._protomatter.dump_object";
/// The function an operand of [`DUMP_OBJECT_FILTER`] is handed to, as hex-encoded source.
pub const DUMP_OBJECT: &str = "__settle_dump_object";

/// `x | ansible._protomatter.dump_object` → `__settle_dump_object('<x's source in hex>',
/// escape)`. In Ansible 2.19 an error raised while computing `x` (a variable whose template
/// does not parse, a failing lookup or filter) is a value, a marker that fails only where it is
/// used, and `dump_object` shows it as `{'exception': …}`. minijinja stops at the first error,
/// so the operand is evaluated apart, by the function, which catches its error. Hex keeps the
/// source free of quotes and backslashes whatever escaping comes after. The operand is found
/// by walking back from the `|` to an unmatched bracket, a comma, an operator or a keyword;
/// it sees the template's variables, not its `{% set %}` locals.
fn dump_object_operands(expr: &str, escape: bool) -> Cow<'_, str> {
    if !expr.contains(DUMP_OBJECT_FILTER) {
        return Cow::Borrowed(expr);
    }
    let mut out = expr.to_string();
    let mut from = 0;
    let mut changed = false;
    while let Some(found) = out[from..].find(DUMP_OBJECT_FILTER) {
        let at = from + found;
        from = at + DUMP_OBJECT_FILTER.len();
        let before = out[..at].trim_end();
        let Some(pipe) = before.strip_suffix('|') else {
            continue;
        };
        let pipe = pipe.len();
        let start = operand_start(&out, pipe);
        let operand = out[start..pipe].trim();
        if operand.is_empty() {
            continue;
        }
        let hex: String = operand.bytes().map(|b| format!("{b:02x}")).collect();
        let call = format!(" {DUMP_OBJECT}('{hex}', {escape}) ");
        out.replace_range(start..from, &call);
        from = start + call.len();
        changed = true;
    }
    match changed {
        true => Cow::Owned(out),
        false => Cow::Borrowed(expr),
    }
}

/// Where the operand of the filter whose `|` is at `end` starts.
fn operand_start(text: &str, end: usize) -> usize {
    walk_back(text, end, |i, c| match c {
        b',' | b'~' | b'+' | b'-' | b'*' | b'/' | b'%' | b'=' | b'!' | b'<' | b'>' | b':' => {
            Back::Stop(i)
        }
        c if c.is_ascii_whitespace() => {
            let word_start = text[..i - 1]
                .trim_end()
                .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(0, |p| p + 1);
            let word = text[word_start..i - 1].trim_end();
            match LOOSER_WORDS.contains(&word) {
                true => Back::Stop(i),
                false => Back::On,
            }
        }
        _ => Back::On,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_minus_rewrite_ends_and_never_panics_on_any_mix_of_its_characters() {
        // Every string of these pieces up to a length, and a pseudo-random sample beyond it.
        let pieces = [
            "-",
            "+",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "'",
            "\"",
            " ",
            "a",
            "1e",
            "é",
            ".",
            "|",
            "to_datetime",
            "now()",
            "and",
            ",",
            "<",
            "~",
            "*",
            "{{",
            "}}",
            "%",
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut text = String::from("to_datetime");
            for _ in 0..(seed % 12) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let _ = date_minus(&text);
            let _ = date_minus_inside_marks(&text);
            let _ = template(&format!("{{{{{text}}}}}"));
        }
        assert_eq!(
            date_minus("x|to_datetime - y - -z"),
            format!("{MINUS}(({MINUS}((x|to_datetime), (y))), (-z))")
        );
    }

    #[test]
    fn a_dump_object_without_an_operand_is_left_as_written_and_the_rewrite_ends() {
        // Found by fuzz/run: a filter name with nothing to capture made the rewrite start over
        // on its own output, until the stack ran out.
        for expr in [
            "ansible._protomatter.dump_object(1)",
            "| ansible._protomatter.dump_object",
            "(| ansible._protomatter.dump_object) + +x",
        ] {
            assert_eq!(dump_object_operands(expr, false), Cow::Borrowed(expr));
            let _ = expression(expr);
        }
        assert!(expression("x | ansible._protomatter.dump_object").contains("78"));
    }

    #[test]
    fn a_call_after_a_wide_character_is_rewritten_without_a_panic() {
        // Found by fuzz/run: the name before `(` was cut inside a two-byte character.
        let source = "{{ x }}\u{7c2}zr('a') }}{{ \u{e9}lookup('pipe', 'echo {{ y }}') }}";
        assert!(yaml_template(source).contains(LOOKUP_TEMPLATE));
    }

    #[test]
    fn chains_before_default_and_defined_are_rewritten() {
        assert_eq!(
            expression("a.b.c | default('x')"),
            "__settle_chain(a, 'b', 'c') | default('x')"
        );
        assert_eq!(
            expression("a['b'].c is not defined"),
            "__settle_chain(a, 'b', 'c') is not defined"
        );
        assert_eq!(
            expression("a.1.c is not defined"),
            "__settle_chain(a, 1, 'c') is not defined"
        );
        assert_eq!(
            expression("('k' | extract(c)).sub | default('a') == 'a'"),
            "__settle_chain(('k' | extract(c)), 'sub') | default('a') == 'a'"
        );
        assert_eq!(
            expression("hostvars[inventory_hostname].x|d(1)"),
            "__settle_chain(hostvars, inventory_hostname, 'x')|d(1)"
        );
    }

    #[test]
    fn text_beyond_ascii_is_kept_whole() {
        // Found by fuzz/run: a multi-byte character before `%}` panicked (a byte index inside it).
        let source = "{{ d\u{491}issin%}g | default(omit) }}";
        assert_eq!(yaml_template(source), source);
        assert_eq!(expression("x ~ 'é' ~ ґ['ü']"), "x ~ 'é' ~ ґ['ü']");
        assert_eq!(
            template("{{ a['ü'].b | default('ä') }}é"),
            "{{ __settle_chain(a, 'ü', 'b') | default('ä') }}é"
        );
    }

    #[test]
    fn string_formatting_becomes_a_call() {
        assert_eq!(
            expression("x == (\"read %s/a\" % (d))"),
            "x == (__settle_percent(\"read %s/a\", ((d))))"
        );
        assert_eq!(
            expression("'%s-%d' % (a.b, n) ~ 'x'"),
            "__settle_percent('%s-%d', ((a.b, n))) ~ 'x'"
        );
        assert_eq!(
            expression("'%s' % x | upper == 'A'"),
            "__settle_percent('%s', (x | upper)) == 'A'"
        );
        assert_eq!(expression("'100%'"), "'100%'");
    }

    #[test]
    fn unary_plus_is_dropped_and_addition_kept() {
        assert_eq!(expression("[-2.5, +2.5, 1 + 2.5]"), "[-2.5, 2.5, 1 + 2.5]");
        assert_eq!(expression("x if +1 else '+1'"), "x if 1 else '+1'");
        assert_eq!(template("{{ [+x] }} + {{ a+b }}"), "{{ [x] }} + {{ a+b }}");
        // A name after a character of several bytes (a fuzz finding: the cut fell inside it).
        assert_eq!(expression("-\u{453}aw+"), "-\u{453}aw+");
        assert_eq!(expression("\u{453} and +1"), "\u{453} and 1");
    }

    #[test]
    fn templates_in_lookup_arguments_leave_an_expression() {
        assert!(templates_only_in_lookup_args(
            "lookup('yield_terms', '{{ bang }}', 42)[1] == 42"
        ));
        assert!(!templates_only_in_lookup_args(
            "'{{ a }}' == lookup('x', '{{ b }}')"
        ));
        assert!(!templates_only_in_lookup_args("{{ x }}"));
    }

    #[test]
    fn everything_else_is_left_alone() {
        for e in [
            "a.b.c",
            "a.b.c == 1 or x | default(1)",
            "'a.b | default(1)'",
            "a.b() | default(1)",
            "f(x).a | default(1)",
            "x[1:2] | default(1)",
        ] {
            assert_eq!(expression(e), e);
        }
    }

    #[test]
    fn backslashes_of_yaml_templates_stay_as_written() {
        assert_eq!(
            yaml_template(r"a\1 {{ x | regex_replace('(b)', '\1') }} {% if '\n' %}"),
            r"a\1 {{ x | regex_replace('(b)', '\\1') }} {% if '\n' %}"
        );
        assert_eq!(yaml_expression(r"'\n'"), r"'\\n'");
        assert_eq!(template(r"{{ '\n' }}"), r"{{ '\n' }}");
    }

    #[test]
    fn templates_rewrite_inside_blocks_only() {
        assert_eq!(
            template(
                "a.b | default {{ a.b | default(1) }} {% raw %}{{ a.b | default(1) }}{% endraw %}"
            ),
            "a.b | default {{ __settle_chain(a, 'b') | default(1) }} {% raw %}{{ a.b | default(1) }}{% endraw %}"
        );
    }
}
