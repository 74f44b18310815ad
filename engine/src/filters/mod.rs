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
//!
//! Every filter and test (minijinja's own too) is registered through [`add_filter`] and
//! [`add_test`], which give them Ansible 2.19's manners: a filter given an undefined argument
//! is not called and the undefined value is its result (but `default`, `mandatory`,
//! `ternary`, `type_debug`); a test fails on one (but `defined`, `undefined`); and those
//! Ansible runs as Python fail on None with Python's words ([`refuses_none`]).

pub(crate) mod crypt;
pub(crate) mod data;
mod jinja_builtins;
mod paths;
pub(crate) mod percent;

pub(crate) mod protomatter;
mod pyrandom;
mod pyyaml;
mod serialize;
pub(crate) use serialize::python_json;
mod tests;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) use settle_yaml::python_float_repr;
pub(crate) use time::local_datetime_text;
mod vault;
mod versions;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// The filters that take an undefined argument as it is (Ansible's `accept_args_markers`):
/// every other filter gives its first undefined argument back as its result.
const TAKE_UNDEFINED: &[&str] = &[
    "default",
    "d",
    "mandatory",
    "ternary",
    "type_debug",
    "unvault",
];

/// The first undefined value among a filter's or test's arguments (keyword arguments too).
fn first_undefined(args: &[Value]) -> Option<Value> {
    args.iter().find_map(|arg| {
        if arg.is_undefined() {
            return Some(arg.clone());
        }
        // Most arguments are not keyword arguments: asking a value to be one costs an error.
        if !arg.is_kwargs() {
            return None;
        }
        let kwargs = Kwargs::try_from(arg.clone()).ok()?;
        kwargs
            .args()
            .filter_map(|key| kwargs.peek::<Value>(key).ok())
            .find(Value::is_undefined)
    })
}

/// What Python says when these filters and tests are given `None` (Ansible runs them in
/// Python: `none | basename` fails where a text filter written in Rust would read "None").
fn refuses_none(kind: &str, name: &str) -> Option<&'static str> {
    const NOT_ITERABLE: &str = "'NoneType' object is not iterable";
    const PATH: &str = "expected str, bytes or os.PathLike object, not NoneType";
    const STAT: &str = "stat: path should be string, bytes, os.PathLike or integer, not NoneType";
    const LSTAT: &str = "lstat: path should be string, bytes or os.PathLike, not NoneType";
    Some(match (kind, name) {
        (
            "filter",
            "batch"
            | "combinations"
            | "difference"
            | "flatten"
            | "groupby"
            | "intersect"
            | "join"
            | "list"
            | "permutations"
            | "product"
            | "slice"
            | "sort"
            | "sum"
            | "symmetric_difference"
            | "zip"
            | "zip_longest",
        )
        | ("test", "all" | "any" | "subset" | "issubset" | "superset" | "issuperset") => {
            NOT_ITERABLE
        }
        (
            "filter",
            "basename" | "dirname" | "expanduser" | "expandvars" | "normpath" | "realpath"
            | "splitext" | "win_basename" | "win_dirname" | "win_splitdrive",
        )
        | ("test", "abs" | "is_abs") => PATH,
        ("test", "file" | "is_file" | "directory" | "is_dir" | "exists") => STAT,
        ("test", "link" | "is_link" | "link_exists" | "mount" | "is_mount") => LSTAT,
        ("filter", "comment" | "urldecode") => "'NoneType' object has no attribute 'replace'",
        ("filter", "fileglob") => "'NoneType' object is not subscriptable",
        ("filter", "indent") => "unsupported operand type(s) for +=: 'NoneType' and 'str'",
        ("filter", "truncate") => "object of type 'NoneType' has no len()",
        ("filter", "strftime") => "strftime() argument 1 must be str, not None",
        ("filter", "union") => "unsupported operand type(s) for +: 'NoneType' and 'list'",
        ("filter", "relpath") => "no path specified",
        ("test", "contains") => "argument of type 'NoneType' is not iterable",
        ("test", "version" | "version_compare") => "Input version value cannot be empty",
        ("test", "even" | "odd" | "divisibleby") => {
            "unsupported operand type(s) for %: 'NoneType' and 'int'"
        }
        ("test", "ge" | ">=") => "'>=' not supported between instances of 'NoneType' and 'int'",
        ("test", "gt" | "greaterthan" | ">") => {
            "'>' not supported between instances of 'NoneType' and 'int'"
        }
        ("test", "le" | "<=") => "'<=' not supported between instances of 'NoneType' and 'int'",
        ("test", "lt" | "lessthan" | "<") => {
            "'<' not supported between instances of 'NoneType' and 'int'"
        }
        _ => return None,
    })
}

/// Registers a filter with Ansible 2.19's manners for undefined arguments: Ansible calls a
/// filter only when none of its arguments is undefined, and else gives the undefined value
/// back, so `x | f | default(d)` is `d` and `x | f` fails naming `x` (`'x' is undefined`).
/// A filter of [`TAKE_UNDEFINED`], or of the `ansible._protomatter` collection, sees them.
pub(crate) fn add_filter<F, Rv, Args>(
    env: &mut Environment<'static>,
    name: impl Into<std::borrow::Cow<'static, str>>,
    f: F,
) where
    F: minijinja::functions::Function<Rv, Args>,
    Rv: minijinja::value::FunctionResult,
    Args: for<'a> minijinja::value::FunctionArgs<'a>,
{
    let name = name.into();
    if TAKE_UNDEFINED.contains(&name.as_ref()) || name.starts_with("ansible._protomatter.") {
        env.add_filter(name, f);
        return;
    }
    let inner = Value::from_function(f);
    guard_filter(env, name, move |state, args| inner.call(state, args));
}

/// Registers `call` as the filter `name` with Ansible's manners for undefined arguments and
/// None ([`add_filter`]).
fn guard_filter(
    env: &mut Environment<'static>,
    name: std::borrow::Cow<'static, str>,
    call: impl Fn(&mut State, &[Value]) -> Result<Value, Error> + Send + Sync + 'static,
) {
    let on_none = refuses_none("filter", &name);
    env.add_filter(
        name,
        move |state: &mut State, Passed(args): Passed| -> Result<Value, Error> {
            match first_undefined(args) {
                Some(undefined) => {
                    // Why, for the error when the result is used: minijinja's undefined value
                    // does not say which variable it was.
                    if let Some(reason) = crate::template::undefined_argument_reason() {
                        crate::template::note_undefined_reason(reason);
                    }
                    Ok(undefined)
                }
                None if let Some(message) = on_none
                    && args.first().is_some_and(Value::is_none) =>
                {
                    Err(err(message))
                }
                None => call(state, args),
            }
        },
    );
}

/// Registers a test that fails on an undefined argument, naming it, as Ansible's do (but for
/// `defined` and `undefined`): an undefined value is not, say, a string or not a string.
pub(crate) fn add_test<F, Rv, Args>(
    env: &mut Environment<'static>,
    name: impl Into<std::borrow::Cow<'static, str>>,
    f: F,
) where
    F: minijinja::functions::Function<Rv, Args>,
    Rv: minijinja::value::FunctionResult,
    Args: for<'a> minijinja::value::FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    guard_test(env, name.into(), move |state, args| {
        inner.call(state, args).map(|v| v.is_true())
    });
}

/// Registers `call` as the test `name` with Ansible's manners for undefined arguments and
/// None ([`add_test`]).
fn guard_test(
    env: &mut Environment<'static>,
    name: std::borrow::Cow<'static, str>,
    call: impl Fn(&mut State, &[Value]) -> Result<bool, Error> + Send + Sync + 'static,
) {
    let on_none = refuses_none("test", &name);
    env.add_test(
        name,
        move |state: &mut State, Passed(args): Passed| -> Result<bool, Error> {
            if let Some(undefined) = first_undefined(args) {
                return Err(undefined_error(&undefined));
            }
            if let Some(message) = on_none
                && args.first().is_some_and(Value::is_none)
            {
                return Err(err(message));
            }
            call(state, args)
        },
    );
}

/// Every argument a filter or test is given, keyword arguments too, as the caller passed
/// them: what `Rest<ValueOrKwargs>` holds, without copying them into a new list
/// (each filter call of a template pays for that).
struct Passed<'a>(&'a [Value]);

// minijinja reads a function's arguments through `ArgType`'s hidden methods; these are the
// ones `Rest` implements, taking the slice as it is.
impl<'a> minijinja::value::ArgType<'a> for Passed<'_> {
    type Output = Passed<'a>;

    fn from_value(value: Option<&'a Value>) -> Result<Self::Output, Error> {
        Ok(Passed(value.map(std::slice::from_ref).unwrap_or_default()))
    }

    fn from_state_and_values(
        _state: Option<&'a State>,
        values: &'a [Value],
        offset: usize,
    ) -> Result<(Self::Output, usize), Error> {
        let args = values.get(offset..).unwrap_or_default();
        Ok((Passed(args), args.len()))
    }

    fn from_state_and_values_mut(
        _state: Option<&State>,
        values: &'a [Value],
        offset: usize,
    ) -> Result<(Self::Output, usize), Error> {
        let args = values.get(offset..).unwrap_or_default();
        Ok((Passed(args), args.len()))
    }
}

/// The error of using an undefined value; minijinja names the expression that gave it.
fn undefined_error(undefined: &Value) -> Error {
    match undefined.get_attr("") {
        Err(e) => e,
        Ok(_) => Error::from(ErrorKind::UndefinedError),
    }
}

/// minijinja's own filters and tests (and minijinja-contrib's), with Ansible's manners for
/// undefined arguments ([`add_filter`], [`add_test`]): each is registered again, calling the
/// original in an environment of only those.
fn pass_undefined_through_builtins(env: &mut Environment<'static>) {
    static BUILTINS: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    fn builtins() -> &'static Environment<'static> {
        BUILTINS.get_or_init(|| {
            let mut env = Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
            minijinja_contrib::add_to_environment(&mut env);
            env
        })
    }
    const FILTERS: &[&str] = &[
        "safe",
        "escape",
        "e",
        "lower",
        "upper",
        "title",
        "capitalize",
        "replace",
        "length",
        "count",
        "dictsort",
        "items",
        "reverse",
        "trim",
        "join",
        "split",
        "lines",
        "round",
        "abs",
        "int",
        "float",
        "attr",
        "first",
        "last",
        "min",
        "max",
        "sort",
        "list",
        "string",
        "batch",
        "slice",
        "sum",
        "indent",
        "groupby",
        "chain",
        "zip",
        "pprint",
        "format",
        "tojson",
        "pluralize",
        "filesizeformat",
        "truncate",
        "striptags",
        "wordcount",
        "wordwrap",
        "datetimeformat",
        "timeformat",
        "dateformat",
    ];
    // Not `defined`/`undefined`, which take undefined values, nor `filter`/`test`, which ask
    // the environment that runs them.
    const TESTS: &[&str] = &[
        "none",
        "safe",
        "escaped",
        "boolean",
        "odd",
        "even",
        "divisibleby",
        "number",
        "integer",
        "int",
        "float",
        "string",
        "sequence",
        "mapping",
        "startingwith",
        "endingwith",
        "lower",
        "upper",
        "sameas",
        "eq",
        "equalto",
        "==",
        "ne",
        "!=",
        "lt",
        "lessthan",
        "<",
        "le",
        "<=",
        "gt",
        "greaterthan",
        ">",
        "ge",
        ">=",
        "in",
        "true",
        "false",
    ];
    for name in FILTERS {
        // These are guarded without the exceptions `add_filter` makes.
        debug_assert!(
            !TAKE_UNDEFINED.contains(name),
            "{name} takes undefined values"
        );
        guard_filter(env, (*name).into(), move |_, args| {
            builtins().empty_state().apply_filter(name, args)
        });
    }
    // Jinja's `iterable` asks Python's `iter()`, which None fails.
    add_test(env, "iterable", |v: Value| {
        !v.is_none()
            && builtins()
                .empty_state()
                .perform_test("iterable", &[v])
                .unwrap_or(false)
    });
    for name in TESTS {
        guard_test(env, (*name).into(), move |_, args| {
            builtins().empty_state().perform_test(name, args)
        });
    }
}

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

pub(crate) fn register(env: &mut Environment<'static>) {
    pass_undefined_through_builtins(env);
    data::register(env);
    text::register(env);
    paths::register(env);
    serialize::register(env);
    time::register(env);
    tests::register(env);
    vault::register(env);
    percent::register(env);
    protomatter::register(env);
    jinja_builtins::register(env);
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

/// The YAML Ansible's default callback shows a result in (`result_format = yaml`): block
/// style, keys sorted, `indent` spaces a level, multi-line strings as literal blocks (made to
/// fit one when `lossy`, as its pretty results do).
pub(crate) fn callback_yaml(value: &serde_json::Value, indent: usize, lossy: bool) -> String {
    let opts = pyyaml::DumpOptions {
        indent,
        default_flow_style: Some(false),
        block_multiline: true,
        lossy,
        ..pyyaml::DumpOptions::default()
    };
    let value = minijinja::Value::from(minijinja::value::Serde(value));
    pyyaml::dump(&value, &opts).unwrap_or_else(|e| e.to_string())
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
