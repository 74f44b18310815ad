//! Filters on data: sets (`union`, …), `flatten`, `combine`, `dict2items`/`items2dict`,
//! `extract`, `subelements`, `product`/`combinations`/`permutations`/`zip_longest`,
//! `rekey_on_member`, math (`log`, `pow`, `root`, `human_readable`, `human_to_bytes`),
//! `random`/`shuffle`, `ternary`, `mandatory`, `type_debug`.

use std::borrow::Cow;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::pyrandom::PyRandom;
use super::{MAX_ITEMS, ansible_bool, err, items};

fn unique_push(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

/// Jinja's `make_attrgetter`: `a.b.0` walks items (a number piece as an index).
fn attr_path(item: &Value, path: &Value) -> Value {
    let Some(text) = path.as_str() else {
        return item.get_item(path).unwrap_or_default();
    };
    let mut cur = item.clone();
    for piece in text.split('.') {
        let key = piece
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(piece));
        cur = cur.get_item(&key).unwrap_or_default();
    }
    cur
}

/// Ansible's `unique`: Jinja's (keys compared lowercased unless `case_sensitive`, by
/// `attribute` when given); where Jinja fails on an unhashable item (a list, a dict), Ansible's
/// own (case-sensitive equality), unless `case_sensitive=False` or `attribute` was asked for.
fn unique(a: Value, kw: Kwargs) -> Result<Value, Error> {
    let case_sensitive: Option<Value> = kw.get("case_sensitive")?;
    let attribute: Option<Value> = kw.get("attribute")?;
    kw.assert_all_used()?;
    let explicit_false = case_sensitive
        .as_ref()
        .is_some_and(|v| !v.is_none() && !v.is_true());
    let sensitive = case_sensitive.as_ref().is_some_and(Value::is_true);
    let attribute = attribute.filter(|v| !v.is_none() && !v.is_undefined());
    let list: Vec<Value> = match a.kind() {
        ValueKind::String => a
            .as_str()
            .unwrap_or("")
            .chars()
            .map(|c| Value::from(c.to_string()))
            .collect(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => items(&a)?,
        _ => {
            return Err(err(format!("'{}' object is not iterable", type_name(&a))));
        }
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    let mut unhashable = false;
    for item in &list {
        let mut key = match &attribute {
            Some(path) => attr_path(item, path),
            None => item.clone(),
        };
        if !sensitive && let Some(s) = key.as_str() {
            key = Value::from(s.to_lowercase());
        }
        if matches!(
            key.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        ) {
            unhashable = true;
            break;
        }
        if !seen.contains(&key) {
            seen.push(key);
            out.push(item.clone());
        }
    }
    if !unhashable {
        return Ok(Value::from(out));
    }
    if explicit_false || attribute.is_some() {
        return Err(err(
            "Jinja2's unique filter failed and we cannot fall back to Ansible's version as it does not support the parameters supplied.",
        ));
    }
    let mut out = Vec::new();
    for item in list {
        unique_push(&mut out, item);
    }
    Ok(Value::from(out))
}

fn flatten_into(value: &Value, levels: Option<i64>, skip_nulls: bool, out: &mut Vec<Value>) {
    for item in value.try_iter().into_iter().flatten() {
        if skip_nulls && (item.is_none() || matches!(item.as_str(), Some("None" | "null"))) {
            continue;
        }
        if matches!(item.kind(), ValueKind::Seq) && levels.is_none_or(|l| l >= 1) {
            flatten_into(&item, levels.map(|l| l - 1), skip_nulls, out);
        } else {
            out.push(item);
        }
    }
}

/// A Python tuple (what `itertools` and `subelements` give): a sequence that equals only
/// another tuple, and prints as `(a, b)`.
fn tuple(items: Vec<Value>) -> Value {
    Value::from_object(minijinja::value::Tuple::new(items))
}

fn to_data(value: &Value) -> Result<serde_json::Value, Error> {
    crate::template::reject_inner_undefined(value)?;
    serde_json::to_value(value).map_err(|e| err(e.to_string()))
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

fn check_size(n: usize) -> Result<(), Error> {
    if n > MAX_ITEMS {
        return Err(err(format!(
            "the result would have {n} items; settle stops at {MAX_ITEMS}"
        )));
    }
    Ok(())
}

/// itertools.combinations / permutations as index lists.
fn index_combinations(n: usize, r: usize, ordered: bool) -> Result<Vec<Vec<usize>>, Error> {
    let mut out = Vec::new();
    if r > n {
        return Ok(out);
    }
    let mut current = Vec::with_capacity(r);
    let mut used = vec![false; n];
    fn walk(
        n: usize,
        r: usize,
        ordered: bool,
        start: usize,
        current: &mut Vec<usize>,
        used: &mut Vec<bool>,
        out: &mut Vec<Vec<usize>>,
    ) -> Result<(), Error> {
        if current.len() == r {
            out.push(current.clone());
            return check_size(out.len());
        }
        let from = if ordered { 0 } else { start };
        for i in from..n {
            if used[i] {
                continue;
            }
            used[i] = true;
            current.push(i);
            walk(n, r, ordered, i + 1, current, used, out)?;
            current.pop();
            used[i] = false;
        }
        Ok(())
    }
    walk(n, r, ordered, 0, &mut current, &mut used, &mut out)?;
    Ok(out)
}

fn size_range(size: f64, isbits: bool, unit: Option<&str>) -> String {
    const RANGES: [(&str, f64); 9] = [
        ("Y", 1208925819614629174706176.0),
        ("Z", 1180591620717411303424.0),
        ("E", 1152921504606846976.0),
        ("P", 1125899906842624.0),
        ("T", 1099511627776.0),
        ("G", 1073741824.0),
        ("M", 1048576.0),
        ("K", 1024.0),
        ("B", 1.0),
    ];
    let base = if isbits { "bits" } else { "Bytes" };
    let mut chosen = ("B", 1.0);
    for (suffix, limit) in RANGES {
        chosen = (suffix, limit);
        let hit = match unit {
            None => size >= limit,
            Some(u) => u.to_uppercase().starts_with(suffix),
        };
        if hit {
            break;
        }
    }
    let suffix = if chosen.1 != 1.0 {
        format!("{}{}", chosen.0, &base[..1])
    } else {
        base.to_string()
    };
    format!("{:.2} {suffix}", size / chosen.1)
}

pub(crate) fn human_to_bytes(
    text: &str,
    default_unit: Option<&str>,
    isbits: bool,
) -> Result<i64, String> {
    let re = regex::Regex::new(r"^\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]+)?\s*$")
        .map_err(|e| e.to_string())?;
    let cant = || format!("human_to_bytes() can't interpret following string: {text}");
    let caps = re.captures(text).ok_or_else(cant)?;
    let num: f64 = caps[1].parse().map_err(|_| cant())?;
    let unit = caps.get(2).map(|m| m.as_str()).or(default_unit);
    let Some(unit) = unit else {
        return Ok(num.round_ties_even() as i64);
    };
    let key = unit
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('B');
    let limit: f64 = match key {
        'Y' => 1208925819614629174706176.0,
        'Z' => 1180591620717411303424.0,
        'E' => 1152921504606846976.0,
        'P' => 1125899906842624.0,
        'T' => 1099511627776.0,
        'G' => 1073741824.0,
        'M' => 1048576.0,
        'K' => 1024.0,
        'B' => 1.0,
        _ => {
            return Err(format!(
                "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
            ));
        }
    };
    let (class, class_name) = if isbits { ("b", "bit") } else { ("B", "byte") };
    if unit.chars().count() > 1
        && !unit.to_lowercase().contains(class_name)
        && unit.chars().nth(1).map(String::from).as_deref() != Some(class)
    {
        let expect = if key == 'B' {
            format!("expect {class} or {class_name}")
        } else {
            format!("expect {key}{class} or {key}")
        };
        return Err(format!(
            "human_to_bytes() failed to convert {text}. Value is not a valid string ({expect})"
        ));
    }
    let v = (num * limit).round_ties_even();
    if !v.is_finite() || v.abs() > i64::MAX as f64 {
        return Err(format!(
            "human_to_bytes() failed to convert {text}: too large"
        ));
    }
    Ok(v as i64)
}

fn number(v: &Value, what: &str) -> Result<f64, Error> {
    if v.kind() != ValueKind::Number {
        return Err(err(format!(
            "{what}() can only be used on numbers: {v} is not a number"
        )));
    }
    f64::try_from(v.clone()).map_err(|e| err(format!("{what}() can only be used on numbers: {e}")))
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(env, "bool", |v: Value| ansible_bool(&v));
    super::add_filter(env, "unique", unique);
    // Ansible 2.19 wraps these Jinja filters: an undefined input gives an undefined result.
    super::add_filter(
        env,
        "map",
        |state: &mut State, value: Value, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            if value.is_undefined() {
                return Ok(Value::UNDEFINED);
            }
            let attribute = args.iter().find_map(|a| {
                let kwargs = Kwargs::try_from(Value::clone(a)).ok()?;
                if kwargs.has("default") {
                    return None;
                }
                kwargs.peek::<String>("attribute").ok()
            });
            let mapped = minijinja::filters::map(state, value.clone(), args)?;
            // Which item lacked the attribute, for the error if the result is used.
            if let Some(attribute) = attribute
                && let Some(position) = mapped.iter().position(Value::is_undefined)
                && let Ok(item) = value.get_item(&Value::from(position))
            {
                crate::template::note_undefined_reason(format!(
                    "object of type '{}' has no attribute '{attribute}'",
                    crate::template::python_type(&item)
                ));
            }
            Ok(Value::from(mapped))
        },
    );
    type SelectFn = fn(
        &mut State,
        Value,
        Option<Cow<'_, str>>,
        Rest<ValueOrKwargs>,
    ) -> Result<Vec<Value>, Error>;
    for (name, f) in [
        ("select", minijinja::filters::select as SelectFn),
        ("reject", minijinja::filters::reject as SelectFn),
    ] {
        super::add_filter(
            env,
            name,
            move |state: &mut State,
                  value: Value,
                  test: Option<Cow<'_, str>>,
                  args: Rest<ValueOrKwargs>|
                  -> Result<Value, Error> {
                if value.is_undefined() {
                    return Ok(Value::UNDEFINED);
                }
                f(state, value, test, args).map(Value::from)
            },
        );
    }
    type SelectAttrFn = fn(
        &mut State,
        Value,
        Cow<'_, str>,
        Option<Cow<'_, str>>,
        Rest<ValueOrKwargs>,
    ) -> Result<Vec<Value>, Error>;
    for (name, f) in [
        ("selectattr", minijinja::filters::selectattr as SelectAttrFn),
        ("rejectattr", minijinja::filters::rejectattr as SelectAttrFn),
    ] {
        super::add_filter(
            env,
            name,
            move |state: &mut State,
                  value: Value,
                  attr: Cow<'_, str>,
                  test: Option<Cow<'_, str>>,
                  args: Rest<ValueOrKwargs>|
                  -> Result<Value, Error> {
                if value.is_undefined() {
                    return Ok(Value::UNDEFINED);
                }
                f(state, value, attr, test, args).map(Value::from)
            },
        );
    }
    // Jinja's `default(default_value='', boolean=False)`, by position or by name.
    for name in ["default", "d"] {
        super::add_filter(
            env,
            name,
            |v: Value, args: minijinja::value::Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
                // By position as given: an `Option` argument would read `default(None)` as no
                // argument at all (and give ''), where Jinja gives None.
                if args.len() > 2 {
                    return Err(Error::new(
                        minijinja::ErrorKind::TooManyArguments,
                        "default takes at most two arguments",
                    ));
                }
                let dv = match args.first() {
                    Some(d) => d.clone(),
                    None => match kw.get::<Option<Value>>("default_value")? {
                        Some(d) => d,
                        None if kw.has("default_value") => Value::from(()),
                        None => Value::from(""),
                    },
                };
                let boolean = match args.get(1) {
                    Some(b) => b.is_true(),
                    None => kw
                        .get::<Option<Value>>("boolean")?
                        .is_some_and(|b| b.is_true()),
                };
                kw.assert_all_used()?;
                Ok(if v.is_undefined() || (boolean && !v.is_true()) {
                    dv
                } else {
                    v
                })
            },
        );
    }
    // Ansible's explicit top-level finalize: plain lists and dicts all the way down
    // (`groupby`'s tuples become lists).
    super::add_filter(env, "ansible._protomatter.finalize", |v: Value| {
        Value::from(minijinja::value::Serde(&v))
    });
    super::add_filter(env, "union", |a: Value, b: Value| -> Result<Value, Error> {
        let mut out = Vec::new();
        for v in items(&a)?.into_iter().chain(items(&b)?) {
            unique_push(&mut out, v);
        }
        Ok(Value::from(out))
    });
    super::add_filter(
        env,
        "intersect",
        |a: Value, b: Value| -> Result<Value, Error> {
            let other = items(&b)?;
            let mut out = Vec::new();
            for v in items(&a)?.into_iter().filter(|v| other.contains(v)) {
                unique_push(&mut out, v);
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
        "difference",
        |a: Value, b: Value| -> Result<Value, Error> {
            let other = items(&b)?;
            let mut out = Vec::new();
            for v in items(&a)?.into_iter().filter(|v| !other.contains(v)) {
                unique_push(&mut out, v);
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
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
    super::add_filter(
        env,
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
    super::add_filter(
        env,
        "combine",
        |base: Value, others: Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
            let recursive = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
            let list_merge = kw
                .get::<Option<String>>("list_merge")?
                .unwrap_or_else(|| "replace".into());
            if kw.assert_all_used().is_err() {
                return Err(err(
                    "'recursive' and 'list_merge' are the only valid keyword arguments",
                ));
            }
            let mut dicts = Vec::new();
            for term in std::iter::once(&base).chain(others.iter()) {
                if term.is_none() {
                    continue;
                }
                if matches!(term.kind(), ValueKind::Seq) {
                    dicts.extend(items(term)?);
                } else {
                    dicts.push(term.clone());
                }
            }
            let mut acc: Option<serde_json::Value> = None;
            for d in dicts {
                if d.kind() != ValueKind::Map {
                    return Err(err(format!(
                        "failed to combine variables, expected dicts but got a '{}'",
                        super::data::type_name(&d)
                    )));
                }
                let d = to_data(&d)?;
                acc = Some(match acc {
                    None => d,
                    Some(a) => combine_two(&a, &d, recursive, &list_merge),
                });
            }
            Ok(Value::from(minijinja::value::Serde(
                acc.unwrap_or_else(|| serde_json::json!({})),
            )))
        },
    );
    super::add_filter(
        env,
        "dict2items",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let key_name = kw
                .get::<Option<String>>("key_name")?
                .unwrap_or_else(|| "key".into());
            let value_name = kw
                .get::<Option<String>>("value_name")?
                .unwrap_or_else(|| "value".into());
            if v.kind() != ValueKind::Map {
                return Err(err(format!(
                    "dict2items requires a dictionary, got {} instead.",
                    type_name(&v)
                )));
            }
            let mut out = Vec::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                out.push(super::map_value([
                    (Value::from(key_name.as_str()), k),
                    (Value::from(value_name.as_str()), item),
                ]));
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
        "items2dict",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let key_name = kw
                .get::<Option<String>>("key_name")?
                .unwrap_or_else(|| "key".into());
            let value_name = kw
                .get::<Option<String>>("value_name")?
                .unwrap_or_else(|| "value".into());
            if v.kind() != ValueKind::Seq {
                return Err(err(format!(
                    "items2dict requires a list, got {} instead.",
                    type_name(&v)
                )));
            }
            let mut out = Vec::new();
            for item in items(&v)? {
                if item.kind() != ValueKind::Map {
                    return Err(err(format!(
                        "items2dict requires a list of dictionaries, got {v} instead."
                    )));
                }
                let k = item.get_attr(&key_name)?;
                let val = item.get_attr(&value_name)?;
                if k.is_undefined() || val.is_undefined() {
                    return Err(err(format!(
                        "items2dict requires each dictionary in the list to contain the keys '{key_name}' and '{value_name}', got {v} instead."
                    )));
                }
                out.push((k, val));
            }
            Ok(super::map_value(out))
        },
    );
    super::add_filter(env, "dict", |v: Value| -> Result<Value, Error> {
        let mut out = Vec::new();
        for pair in items(&v)? {
            let pair = items(&pair)?;
            if pair.len() == 2 {
                out.push((pair[0].clone(), pair[1].clone()));
            }
        }
        Ok(super::map_value(out))
    });
    super::add_filter(
        env,
        "extract",
        |item: Value, container: Value, morekeys: Option<Value>| -> Result<Value, Error> {
            let mut keys = vec![item];
            match morekeys {
                None => {}
                Some(m) if m.kind() == ValueKind::Seq => keys.extend(items(&m)?),
                Some(m) => keys.push(m),
            }
            let mut value = container;
            for key in keys {
                if value.is_undefined() || value.is_none() {
                    return Ok(Value::UNDEFINED);
                }
                value = value.get_item(&key).unwrap_or(Value::UNDEFINED);
            }
            Ok(value)
        },
    );
    super::add_filter(
        env,
        "subelements",
        |obj: Value, sub: Value, skip_missing: Option<bool>, kw: Kwargs| -> Result<Value, Error> {
            let skip_missing = match skip_missing {
                Some(s) => s,
                None => kw.get::<Option<bool>>("skip_missing")?.unwrap_or(false),
            };
            let elements: Vec<Value> = match obj.kind() {
                ValueKind::Map => {
                    let mut vals = Vec::new();
                    for k in obj.try_iter()? {
                        vals.push(obj.get_item(&k)?);
                    }
                    vals
                }
                ValueKind::Seq => items(&obj)?,
                _ => return Err(err("obj must be a list of dicts or a nested dict")),
            };
            let path: Vec<Value> = match sub.kind() {
                ValueKind::Seq => items(&sub)?,
                ValueKind::String => sub
                    .as_str()
                    .unwrap_or("")
                    .split('.')
                    .map(Value::from)
                    .collect(),
                _ => {
                    return Err(err(format!(
                        "subelements must be a list or a string, got {}",
                        type_name(&sub)
                    )));
                }
            };
            let mut out = Vec::new();
            for element in elements {
                let mut values = element.clone();
                let mut last = Value::from("");
                for key in &path {
                    last = key.clone();
                    if values.kind() != ValueKind::Map {
                        return Err(err(format!(
                            "the key {key} should point to a dictionary, got {values}"
                        )));
                    }
                    let next = values.get_item(key).unwrap_or(Value::UNDEFINED);
                    if next.is_undefined() {
                        if skip_missing {
                            values = Value::from(Vec::<Value>::new());
                            break;
                        }
                        return Err(err(format!(
                            "could not find {key} key in iterated item {values}"
                        )));
                    }
                    values = next;
                }
                if values.kind() != ValueKind::Seq {
                    return Err(err(format!(
                        "the key {last} should point to a list, got {values}"
                    )));
                }
                for v in items(&values)? {
                    out.push(tuple(vec![element.clone(), v]));
                    check_size(out.len())?;
                }
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
        "product",
        |first: Value, rest: Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
            let repeat = kw.get::<Option<usize>>("repeat")?.unwrap_or(1);
            let mut pools = Vec::new();
            for _ in 0..repeat.min(64) {
                pools.push(items(&first)?);
                for r in rest.iter() {
                    pools.push(items(r)?);
                }
            }
            let total = pools
                .iter()
                .try_fold(1usize, |acc, p| acc.checked_mul(p.len()))
                .unwrap_or(usize::MAX);
            check_size(total)?;
            let mut out: Vec<Vec<Value>> = vec![Vec::new()];
            for pool in &pools {
                let mut next = Vec::with_capacity(out.len() * pool.len());
                for prefix in &out {
                    for item in pool {
                        let mut p = prefix.clone();
                        p.push(item.clone());
                        next.push(p);
                    }
                }
                out = next;
            }
            Ok(Value::from(out.into_iter().map(tuple).collect::<Vec<_>>()))
        },
    );
    for (name, ordered) in [("combinations", false), ("permutations", true)] {
        super::add_filter(
            env,
            name,
            move |v: Value, r: Option<usize>| -> Result<Value, Error> {
                let pool = items(&v)?;
                let r = match (r, ordered) {
                    (Some(r), _) => r,
                    (None, true) => pool.len(),
                    (None, false) => {
                        return Err(err("combinations() missing required argument 'r'"));
                    }
                };
                let combos = index_combinations(pool.len(), r, ordered)?;
                Ok(Value::from(
                    combos
                        .into_iter()
                        .map(|idx| tuple(idx.into_iter().map(|i| pool[i].clone()).collect()))
                        .collect::<Vec<_>>(),
                ))
            },
        );
    }
    super::add_filter(
        env,
        "zip_longest",
        |first: Value, rest: Rest<Value>, kw: Kwargs| -> Result<Value, Error> {
            let fill = kw
                .get::<Option<Value>>("fillvalue")?
                .unwrap_or(Value::from(()));
            let mut lists = vec![items(&first)?];
            for r in rest.iter() {
                lists.push(items(r)?);
            }
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            Ok(Value::from(
                (0..n)
                    .map(|i| {
                        tuple(
                            lists
                                .iter()
                                .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                                .collect(),
                        )
                    })
                    .collect::<Vec<_>>(),
            ))
        },
    );
    super::add_filter(
        env,
        "rekey_on_member",
        |data: Value, key: Value, kw: Kwargs| -> Result<Value, Error> {
            let duplicates = kw
                .get::<Option<String>>("duplicates")?
                .unwrap_or_else(|| "error".into());
            if duplicates != "error" && duplicates != "overwrite" {
                return Err(err(format!(
                    "duplicates parameter to rekey_on_member has unknown value {}",
                    crate::template::python_repr(&Value::from(duplicates.as_str()), false)
                )));
            }
            let list = match data.kind() {
                ValueKind::Map => {
                    let mut vals = Vec::new();
                    for k in data.try_iter()? {
                        vals.push(data.get_item(&k)?);
                    }
                    vals
                }
                ValueKind::Seq => items(&data)?,
                _ => return Err(err("Type is not a valid list, set, or dict")),
            };
            let mut out: Vec<(Value, Value)> = Vec::new();
            for item in list {
                if item.kind() != ValueKind::Map {
                    return Err(err("List item is not a valid dict"));
                }
                let k = item.get_item(&key).unwrap_or(Value::UNDEFINED);
                if k.is_undefined() {
                    return Err(err(format!(
                        "Key {} was not found.",
                        crate::template::python_repr(&key, false)
                    )));
                }
                if let Some(slot) = out.iter_mut().find(|(ek, _)| *ek == k) {
                    if duplicates == "error" {
                        return Err(err(format!(
                            "Key {} is not unique, cannot convert to dict.",
                            crate::template::python_repr(&k, false)
                        )));
                    }
                    slot.1 = item;
                } else {
                    out.push((k, item));
                }
            }
            Ok(super::map_value(out))
        },
    );
    super::add_filter(
        env,
        "log",
        |x: Value, base: Option<Value>| -> Result<f64, Error> {
            let x = number(&x, "log")?;
            Ok(match base {
                None => x.ln(),
                Some(b) => {
                    let b = number(&b, "log")?;
                    if b == 10.0 {
                        x.log10()
                    } else {
                        x.ln() / b.ln()
                    }
                }
            })
        },
    );
    super::add_filter(env, "pow", |x: Value, y: Value| -> Result<f64, Error> {
        Ok(number(&x, "pow")?.powf(number(&y, "pow")?))
    });
    super::add_filter(
        env,
        "root",
        |x: Value, base: Option<Value>| -> Result<f64, Error> {
            let x = number(&x, "root")?;
            Ok(match base {
                None => x.sqrt(),
                Some(b) => {
                    let b = number(&b, "root")?;
                    if b == 2.0 { x.sqrt() } else { x.powf(1.0 / b) }
                }
            })
        },
    );
    super::add_filter(
        env,
        "human_readable",
        |size: Value,
         isbits: Option<bool>,
         unit: Option<String>,
         kw: Kwargs|
         -> Result<String, Error> {
            let isbits = match isbits {
                Some(b) => b,
                None => kw.get::<Option<bool>>("isbits")?.unwrap_or(false),
            };
            let unit = match unit {
                Some(u) => Some(u),
                None => kw.get::<Option<String>>("unit")?,
            };
            let n = match size.kind() {
                ValueKind::Number => f64::try_from(size.clone()).unwrap_or(0.0),
                // Python compares the size with a number: a TypeError for anything else.
                _ => {
                    return Err(err(format!(
                        "human_readable() failed on bad input: '>=' not supported between \
                         instances of '{}' and 'int'",
                        crate::template::python_type(&size)
                    )));
                }
            };
            Ok(size_range(n, isbits, unit.as_deref()))
        },
    );
    super::add_filter(
        env,
        "human_to_bytes",
        |size: Value, default_unit: Option<String>, kw: Kwargs| -> Result<i64, Error> {
            let default_unit = match default_unit {
                Some(u) => Some(u),
                None => kw.get::<Option<String>>("default_unit")?,
            };
            let isbits = kw.get::<Option<bool>>("isbits")?.unwrap_or(false);
            human_to_bytes(&size.to_string(), default_unit.as_deref(), isbits)
                .map_err(|e| err(format!("human_to_bytes() can't interpret the input: {e}")))
        },
    );
    super::add_filter(
        env,
        "random",
        |end: Value,
         start: Option<Value>,
         step: Option<Value>,
         kw: Kwargs|
         -> Result<Value, Error> {
            let start = match start {
                Some(s) => Some(s),
                None => kw.get::<Option<Value>>("start")?,
            };
            let step = match step {
                Some(s) => Some(s),
                None => kw.get::<Option<Value>>("step")?,
            };
            let seed = kw.get::<Option<Value>>("seed")?;
            let mut rng = match seed.filter(|s| !s.is_none()) {
                Some(s) => PyRandom::from_seed(&s),
                None => PyRandom::from_entropy(),
            };
            if end.is_integer() {
                let end = i64::try_from(end).map_err(|e| err(e.to_string()))?;
                let start = start
                    .and_then(|s| i64::try_from(s).ok())
                    .filter(|s| *s != 0)
                    .unwrap_or(0);
                let step = step
                    .and_then(|s| i64::try_from(s).ok())
                    .filter(|s| *s != 0)
                    .unwrap_or(1);
                let width = end
                    .checked_sub(start)
                    .ok_or_else(|| err("random: range too large"))?;
                let n = if step > 0 {
                    (width + step - 1).checked_div(step)
                } else {
                    (width + step + 1).checked_div(step)
                }
                .unwrap_or(0);
                if n <= 0 {
                    return Err(err(format!(
                        "empty range in randrange({start}, {end}, {step})"
                    )));
                }
                let pick = if step == 1 {
                    rng.below(width as u64) as i64
                } else {
                    rng.below(n as u64) as i64 * step
                };
                return Ok(Value::from(start + pick));
            }
            if matches!(
                end.kind(),
                ValueKind::Seq | ValueKind::String | ValueKind::Map | ValueKind::Iterable
            ) {
                if start.is_some_and(|s| s.is_true()) || step.is_some_and(|s| s.is_true()) {
                    return Err(err("start and step can only be used with integer values"));
                }
                let pool: Vec<Value> = match end.as_str() {
                    Some(s) => s.chars().map(|c| Value::from(c.to_string())).collect(),
                    None => items(&end)?,
                };
                if pool.is_empty() {
                    return Err(err("random: cannot choose from an empty sequence"));
                }
                let i = rng.below(pool.len() as u64) as usize;
                return Ok(pool[i].clone());
            }
            Err(err("random can only be used on sequences and integers"))
        },
    );
    super::add_filter(
        env,
        "shuffle",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let seed = kw.get::<Option<Value>>("seed")?;
            // Ansible's `shuffle` gives back what it cannot shuffle (None too).
            if v.is_none() {
                return Ok(v);
            }
            let Ok(iter) = v.try_iter() else { return Ok(v) };
            if v.kind() == ValueKind::String {
                return Ok(v);
            }
            let mut list: Vec<Value> = iter.collect();
            let mut rng = match seed.filter(|s| s.is_true()) {
                Some(s) => PyRandom::from_seed(&s),
                None => PyRandom::from_entropy(),
            };
            rng.shuffle(&mut list);
            Ok(Value::from(list))
        },
    );
    super::add_filter(
        env,
        "mandatory",
        |v: Value, msg: Option<String>| -> Result<Value, Error> {
            if v.is_undefined() {
                return Err(match msg {
                    Some(msg) => Error::new(ErrorKind::UndefinedError, msg),
                    None => crate::template::NamingUndefined {
                        message: "Mandatory variable {name}not defined.",
                    }
                    .error(&v),
                });
            }
            Ok(v)
        },
    );
    super::add_filter(
        env,
        "ternary",
        |v: Value, yes: Value, no: Value, none: Option<Value>| {
            // Ansible's `ternary` takes undefined values, but an undefined condition has no
            // truth: it is the result (the chosen value may be undefined too).
            if v.is_undefined() {
                return v;
            }
            if v.is_none()
                && let Some(n) = none.filter(|n| !n.is_none())
            {
                return n;
            }
            if v.is_true() { yes } else { no }
        },
    );
    // Ansible 2.19 names an undefined value by its marker's class.
    super::add_filter(env, "type_debug", |v: Value| match v.is_undefined() {
        true => "UndefinedMarker".to_string(),
        false => type_name(&v).to_string(),
    });
}

/// Python's type name for a value.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::None => "NoneType",
        ValueKind::Undefined => "Undefined",
        ValueKind::Bytes => "bytes",
        _ => "object",
    }
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};

    #[test]
    fn protomatter_finalize_makes_plain_data() {
        assert!(truth(
            "([{'a': 1, 'b': 2}, {'a': 1, 'b': 3}] | groupby('a') | ansible._protomatter.finalize) == [[1, [{'a': 1, 'b': 2}, {'a': 1, 'b': 3}]]]"
        ));
    }

    #[test]
    fn default_by_position_or_name() {
        assert!(truth("false | default('passed', boolean=true) == 'passed'"));
        assert!(truth("false | default('failed') == false"));
        assert!(truth("'' | d('x', true) == 'x'"));
        assert!(truth("nope | default == ''"));
        assert!(truth("nope | default(default_value=3) == 3"));
    }

    #[test]
    fn wrapped_jinja_filters_pass_undefined_through() {
        assert!(truth("['a'] | map('upper') == ['A']"));
        assert!(truth(
            "[{'a': 1}, {'a': 0}] | rejectattr('a') == [{'a': 0}]"
        ));
        assert!(truth("[1, 2, 3] | select('odd') | list == [1, 3]"));
        assert!(truth("[{'a': 1}] | map(attribute='a') | list == [1]"));
        for f in [
            "map('upper')",
            "select('odd')",
            "reject('odd')",
            "selectattr('a')",
            "rejectattr('a')",
        ] {
            assert!(truth(&format!("nope | {f} is undefined")), "{f}");
        }
    }

    #[test]
    fn unique_as_ansible() {
        assert!(truth("['a', 'b', 'A', 'B']|unique == ['a', 'b']"));
        assert!(truth(
            "['a', 'b', 'A', 'B']|unique(case_sensitive=True) == ['a', 'b', 'A', 'B']"
        ));
        assert!(truth(
            "[{'a': 1}, {'a': 1}, {'b': 2}]|unique == [{'a': 1}, {'b': 2}]"
        ));
        assert!(truth(
            "[{'foo': 'bar', 'm': 1}, {'foo': 'bar', 'm': 2}]|unique(attribute='foo') == [{'foo': 'bar', 'm': 1}]"
        ));
        assert!(
            render("{{ [{'a': 1}]|unique(case_sensitive=False) }}").contains("cannot fall back")
        );
        assert!(render("{{ True|unique }}").contains("'bool' object is not iterable"));
        assert!(truth("'foo'|unique|join == 'fo'"));
    }

    #[test]
    fn sets_and_flatten() {
        assert!(truth(
            "[1,2,3]|symmetric_difference([3,4,5,6]) == [1,2,4,5,6]"
        ));
        assert!(truth("[1,2,3]|union([{}])|length == 4"));
        assert!(truth(
            "[1, none, [3, [4, [5]], 6], 7]|flatten(skip_nulls=false) == [1, none, 3, 4, 5, 6, 7]"
        ));
        assert!(truth(
            "[1, 'None', [3, [4, [5]], 6], 7]|flatten(levels=1) == [1, 3, [4, [5]], 6, 7]"
        ));
        assert!(truth(
            "[1, 2, [3, [4, [5]], 6], 7]|flatten(levels=2) == [1, 2, 3, 4, [5], 6, 7]"
        ));
    }

    #[test]
    fn combine_and_items() {
        assert!(truth(
            "[{'x': 1}, {'y': 2}] | combine({'z': 3}) == {'x': 1, 'y': 2, 'z': 3}"
        ));
        assert!(truth("none | combine == {}"));
        assert!(render("{{ [1] | combine(foo='bar') }}").contains("only valid keyword"));
        assert!(render("{{ [{'a': 1}, [{'b': 2}]] | combine({}) }}").contains("expected dicts"));
        assert!(render("{{ true | dict2items }}").contains("dict2items requires a dictionary"));
        assert!(render("{{ [true] | items2dict }}").contains("requires a list of dictionaries"));
        assert!(
            render("{{ [{'key': 1}] | items2dict }}")
                .contains("to contain the keys 'key' and 'value'")
        );
    }

    #[test]
    fn extract_and_subelements() {
        assert!(truth("2 | extract(['a', 'b', 'c']) == 'c'"));
        assert!(truth(
            "['x','y']|map('extract',{'x':42,'y':31})|list|last == 31"
        ));
        assert!(truth(
            "'badkey' | extract({'key': {'subkey': 1}}, 'subkey') | default('a') == 'a'"
        ));
        assert!(truth(
            "'key' | extract({'key': {'subkey': 1}}, ['subkey']) == 1"
        ));
        let demo = "[{'name': 'alice', 'groups': ['wheel'], 'authorized': ['/a.pub']}]";
        assert!(truth(&format!(
            "{demo}|subelements('groups') == [({demo}[0], 'wheel')]"
        )));
        assert!(truth(&format!(
            "{demo}|subelements('nope', skip_missing=true) == []"
        )));
        assert!(
            render(&format!("{{{{ {demo}|subelements('nope') }}}}")).contains("could not find")
        );
        assert!(
            render(&format!("{{{{ {demo}|subelements('name') }}}}"))
                .contains("should point to a list")
        );
        assert!(
            render(&format!("{{{{ {demo}|subelements(['groups', 'x']) }}}}"))
                .contains("should point to a dictionary")
        );
        assert!(render("{{ true|subelements('x') }}").contains("obj must be a list of dicts"));
        assert!(
            render("{{ {}|subelements(17) }}").contains("subelements must be a list or a string")
        );
    }

    #[test]
    fn itertools() {
        assert!(truth(
            "[1,2]|product(['a','b']) == [(1,'a'),(1,'b'),(2,'a'),(2,'b')]"
        ));
        assert!(truth("[1,2,3]|combinations(2) == [(1,2),(1,3),(2,3)]"));
        assert!(truth("[1,2,3]|permutations(2)|length == 6"));
        assert!(truth("[1,2,3]|permutations|first == (1,2,3)"));
        assert!(truth(
            "[1,2]|zip_longest([3], fillvalue='x') == [(1,3),(2,'x')]"
        ));
        assert!(
            render("{{ range(100)|product(range(100), range(100), range(100))|length }}")
                .contains("settle stops")
        );
    }

    #[test]
    fn math() {
        assert!(truth("1|log == 0.0"));
        assert!(truth("100|log(10) == 2.0"));
        assert!(truth("(21|log(42)|string).startswith('0.814550')"));
        assert!(truth("2|pow(4) == 16.0"));
        assert!(truth("9|root(1) == 9.0 and 4|root == 2.0"));
        assert!(render("{{ 'yo'|pow(4) }}").contains("can only be used on numbers"));
        assert_eq!(render("{{ 1|human_readable }}"), "1.00 Bytes");
        assert_eq!(render("{{ 1|human_readable(isbits=True) }}"), "1.00 bits");
        assert_eq!(render("{{ 10240|human_readable }}"), "10.00 KB");
        assert_eq!(render("{{ 102400000|human_readable }}"), "97.66 MB");
        assert_eq!(
            render("{{ 102400000|human_readable(unit='G') }}"),
            "0.10 GB"
        );
        assert_eq!(
            render("{{ 102400000|human_readable(isbits=True, unit='G') }}"),
            "0.10 Gb"
        );
        assert!(render("{{ 'monkeys'|human_readable }}").contains(
            "human_readable() failed on bad input: '>=' not supported between instances of 'str'"
        ));
        for (text, n) in [
            ("0", 0),
            ("0.1", 0),
            ("0.9", 1),
            ("1", 1),
            ("10.00 KB", 10240),
            ("11 MB", 11534336),
            ("1.1 GB", 1181116006),
        ] {
            assert_eq!(
                render(&format!("{{{{ '{text}'|human_to_bytes }}}}")),
                n.to_string(),
                "{text}"
            );
        }
        assert_eq!(
            render("{{ '10.00 Kb'|human_to_bytes(isbits=True) }}"),
            "10240"
        );
        assert!(render("{{ '10.00 foo'|human_to_bytes }}").starts_with("ERROR"));
    }

    #[test]
    fn rekey() {
        assert!(truth(
            "[{'proto': 'eigrp', 's': 1}, {'proto': 'ospf', 's': 2}]|rekey_on_member('proto') == {'eigrp': {'proto': 'eigrp', 's': 1}, 'ospf': {'proto': 'ospf', 's': 2}}"
        ));
        assert!(
            render("{{ [{'p': 1}, {'p': 1}]|rekey_on_member('p') }}").contains("is not unique")
        );
        assert!(
            render("{{ []|rekey_on_member('p', duplicates='boo') }}").contains("unknown value")
        );
        assert!(
            render("{{ 'x'|rekey_on_member('p') }}").contains("not a valid list, set, or dict")
        );
    }

    #[test]
    fn random_and_shuffle() {
        assert!(truth("2|random in [0,1]"));
        assert!(truth("20|random(start=10) in range(10, 20)"));
        assert!(truth("20|random(start=10, step=2) % 2 == 0"));
        assert!(truth("['a', 'b']|random in ['a', 'b']"));
        // python3: random.Random(1337).randrange(0, 60) == 39; Random('web1') → 52
        assert_eq!(render("{{ 60|random(seed=1337) }}"), "39");
        assert_eq!(render("{{ 60|random(seed='web1') }}"), "52");
        assert_eq!(
            render("{{ range(10)|shuffle(seed=42)|join(',') }}"),
            "7,3,2,8,5,6,9,4,0,1"
        );
        assert!(render("{{ none|random }}").contains("random can only be used on"));
        assert!(
            render("{{ [1,2,3]|random(start=2) }}").contains("start and step can only be used")
        );
        assert!(truth("22|shuffle == 22"));
    }

    #[test]
    fn ternary_and_types() {
        assert!(truth("none|ternary('seven', 'eight') == 'eight'"));
        assert!(truth("none|ternary('seven', 'eight', 'nine') == 'nine'"));
        assert!(truth("'foo'|type_debug == 'str'"));
        assert!(truth("1.0|bool and not (7|bool) and ('TrUe'|bool)"));
    }
}
