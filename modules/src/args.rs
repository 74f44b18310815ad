//! Argument types as Ansible accepts them: `yes`/`no` booleans, modes as numbers or text.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `state: present|absent`, as most modules take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Presence {
    #[default]
    Present,
    Absent,
}

impl Presence {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::Absent => "absent",
        }
    }
}

/// Ansible's booleans: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, in any case.
pub(crate) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean (true/false, yes/no)")
        }
        fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::custom(format!("{v} is not a boolean"))),
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            self.visit_i64(v as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
                "no" | "false" | "off" | "0" | "n" | "f" | "" => Ok(false),
                _ => Err(E::custom(format!(
                    "{v:?} is not a boolean; use true or false"
                ))),
            }
        }
    }
    d.deserialize_any(V)
}

/// An Ansible boolean that may be left out (`None`: leave it as it is).
pub(crate) fn optional_boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    boolean(d).map(Some)
}

/// A string argument that may be written as a number (`owner: 0`, `group: 1000`).
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A file mode as a task gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `0644`, `"0644"`, `"644"`, or a YAML number (read as the octal digits' value, as
    /// Ansible does: `mode: 0644` is 420).
    Octal(u32),
    /// `u=rw,g=r,o=`, `u+x`, `a-w`: applied to the current mode.
    Symbolic(String),
    /// `preserve`: keep the source's mode (copy, template).
    Preserve,
}

impl Mode {
    /// The mode to set on a file whose current mode is `current` (for symbolic modes).
    pub fn resolve(&self, current: u32, is_dir: bool) -> Result<u32, String> {
        match self {
            Mode::Octal(m) => Ok(*m),
            Mode::Symbolic(s) => apply_symbolic(s, current, is_dir),
            Mode::Preserve => Ok(current),
        }
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mode such as '0644' or 'u=rw,g=r,o='")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
                if !(0..=0o7777).contains(&v) {
                    return Err(E::custom(format!("mode {v} is out of range")));
                }
                Ok(Mode::Octal(v as u32))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mode, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
                parse_mode(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a mode written as text.
pub fn parse_mode(text: &str) -> Result<Mode, String> {
    let t = text.trim();
    if t == "preserve" {
        return Ok(Mode::Preserve);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(t, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Mode::Octal)
            .ok_or_else(|| format!("mode {t:?} is out of range"));
    }
    apply_symbolic(t, 0, false).map(|_| Mode::Symbolic(t.to_string()))
}

/// chmod's symbolic modes: clauses `[ugoa]*[-+=][rwxXst]*` joined by commas.
fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, String> {
    let bad = || format!("mode {spec:?} is neither octal (0644) nor symbolic (u=rw,g=r,o=)");
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who, rest) = clause.split_at(op_at);
        let mut mask = 0u32;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let mut chars = rest.chars().peekable();
        while let Some(op) = chars.next() {
            let mut perms = 0u32;
            while let Some(&c) = chars.peek() {
                if matches!(c, '+' | '-' | '=') {
                    break;
                }
                perms |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || current & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => return Err(bad()),
                };
                chars.next();
            }
            let bits = perms & mask;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                '=' => mode = (mode & !mask) | bits,
                _ => return Err(bad()),
            }
        }
    }
    Ok(mode)
}

/// A module's arguments read the way Ansible's argument spec converts them, whatever the field's
/// type: a string argument given `true` or `10` gets `"True"` or `"10"` (Python's `str()`), a
/// boolean takes `yes`/`no`/`1`/`0`…, a number takes `"10"`, a list takes `"a,b"` (split on
/// commas), a dictionary takes `"a=1 b=2"` or JSON text, and an argument given as null counts as
/// not given. Every module reads its arguments through this (`resource::parse_args`), so every
/// module converts alike (`check_type_*` in Ansible's `module_utils/common/validation.py`).
pub(crate) struct Lenient(pub(crate) Value);

type JsonError = serde_json::Error;

macro_rules! lenient_numbers {
    ($convert:ident: $($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
            self.$convert()?.$method(visitor)
        })*
    };
}

impl Lenient {
    /// `check_type_int`: integers, integral floats, booleans (Python's are ints) and text
    /// holding a whole number.
    fn integer(self) -> Result<Value, JsonError> {
        let whole = |x: f64| (x.fract() == 0.0 && x.abs() < 9.2e18).then(|| Value::from(x as i64));
        let converted = match &self.0 {
            Value::Number(n) if n.is_f64() => n.as_f64().and_then(whole),
            Value::Number(_) => Some(self.0.clone()),
            Value::Bool(b) => Some(Value::from(*b as i64)),
            Value::String(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| t.parse::<u64>().map(Value::from))
                    .ok()
                    .or_else(|| t.parse::<f64>().ok().and_then(whole))
            }
            _ => None,
        };
        converted.ok_or_else(|| {
            de::Error::custom(format!(
                "\"{}\" cannot be converted to an int",
                python_repr(&self.0)
            ))
        })
    }

    /// `check_type_float`: numbers, booleans and text holding a number.
    fn float(self) -> Result<Value, JsonError> {
        let converted = match &self.0 {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        converted
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "{} cannot be converted to a float",
                    python_type(&self.0)
                ))
            })
    }

    /// `check_type_str`: Python's `str()` of whatever was given; null is the empty string.
    fn text(self) -> Value {
        match self.0 {
            Value::String(_) => self.0,
            other => Value::String(python_str(&other)),
        }
    }
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Entries::new(map, false)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_bool(ansible_boolean(&self.0).map_err(de::Error::custom)?)
    }

    lenient_numbers!(integer: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128);
    lenient_numbers!(float: deserialize_f32 deserialize_f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.text().deserialize_char(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.text().deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.text().deserialize_string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.0.deserialize_bytes(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.0.deserialize_byte_buf(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.0.deserialize_unit(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_newtype_struct(self)
    }

    /// `check_type_list`: text is split on commas, a number or boolean is a list of its text.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        let items: Vec<Value> = match self.0 {
            Value::Array(items) => items,
            Value::String(s) => s.split(',').map(Value::from).collect(),
            scalar @ (Value::Number(_) | Value::Bool(_)) => vec![Lenient(scalar).text()],
            other => {
                return Err(de::Error::custom(format!(
                    "{} cannot be converted to a list",
                    python_type(&other)
                )));
            }
        };
        visitor.visit_seq(Items(items.into_iter()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_map(Entries::new(dictionary(self.0)?, false))
    }

    /// A struct's fields given as null are left out, as Ansible treats them as not given.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_map(Entries::new(dictionary(self.0)?, true))
    }

    /// A choice (`state: present`): a boolean or number given is its text, so the message names
    /// `True` as Ansible's does.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        match self.0 {
            Value::Bool(_) | Value::Number(_) => {
                self.text().deserialize_enum(name, variants, visitor)
            }
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.text().deserialize_identifier(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_unit()
    }
}

/// The elements of a list, each read leniently.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = JsonError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, JsonError> {
        self.0
            .next()
            .map(|v| seed.deserialize(Lenient(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a dictionary, each value read leniently; `skip_null` leaves out null values.
struct Entries {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
    skip_null: bool,
}

impl Entries {
    fn new(map: Map<String, Value>, skip_null: bool) -> Self {
        Entries {
            entries: map.into_iter(),
            value: None,
            skip_null,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = JsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, JsonError> {
        for (key, value) in self.entries.by_ref() {
            if self.skip_null && value.is_null() {
                continue;
            }
            self.value = Some(value);
            return seed.deserialize(Value::String(key)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, JsonError> {
        let value = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(Lenient(value))
    }
}

/// Ansible's `boolean()`, strict: `yes`/`no`, `on`/`off`, `true`/`false`, `y`/`n`, `t`/`f`,
/// `1`/`0` as text in any case, and the numbers 1 and 0.
pub(crate) fn ansible_boolean(value: &Value) -> Result<bool, String> {
    let word = match value {
        Value::Bool(b) => return Ok(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => return Ok(true),
            Some(0.0) => return Ok(false),
            _ => String::new(),
        },
        Value::String(s) => s.trim().to_lowercase(),
        other => {
            return Err(format!(
                "{} cannot be converted to a bool",
                python_type(other)
            ));
        }
    };
    match word.as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Ok(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Ok(false),
        _ => Err(format!(
            "The value '{}' is not a valid boolean. Valid booleans include: 'y', 'yes', 'on', \
             '1', 'true', 't', 1, 1.0, True, 'n', 'no', 'off', '0', 'false', 'f', 0, 0.0, False",
            python_str(value)
        )),
    }
}

/// `check_type_dict`: a dictionary, JSON text of one, or `k1=v1, k2=v2` / `k1=v1 k2=v2` with
/// quotes and backslashes as Ansible reads them.
fn dictionary(value: Value) -> Result<Map<String, Value>, JsonError> {
    let text = match value {
        Value::Object(map) => return Ok(map),
        Value::String(text) => text,
        other => {
            return Err(de::Error::custom(format!(
                "{} cannot be converted to a dict",
                python_type(&other)
            )));
        }
    };
    if text.starts_with('{') {
        return match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(de::Error::custom("unable to evaluate string as dictionary")),
        };
    }
    if !text.contains('=') {
        return Err(de::Error::custom(
            "dictionary requested, could not parse JSON or key=value",
        ));
    }
    key_value_fields(&text)
        .into_iter()
        .map(|field| match field.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), Value::from(v))),
            None => Err(de::Error::custom(
                "unable to evaluate string in the \"key=value\" format as dictionary",
            )),
        })
        .collect()
}

/// The fields of `k1=v1, k2="v 2"`: split on commas and spaces outside quotes.
fn key_value_fields(text: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.trim().chars() {
        match c {
            _ if escaped => {
                field.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '\'' | '"' if quote.is_none() => quote = Some(c),
            _ if quote == Some(c) => quote = None,
            ',' | ' ' if quote.is_none() => {
                if !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                }
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() {
        fields.push(field);
    }
    fields
}

/// Python's name for the type of a JSON value, for messages.
pub(crate) fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

/// Python's `str()` of a JSON value (null is the empty string, as Ansible 2.19 converts it).
pub(crate) fn python_str(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a JSON value: `True`, `1.0`, `'text'`, `['a', 1]`, `{'k': None}`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 => {
                format!("{x:.1}")
            }
            _ => n.to_string(),
        },
        Value::String(s) => python_quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_quote(k), python_repr(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// Python's `repr()` of a string.
fn python_quote(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if c == quote => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `#[serde(default = "crate::args::yes")]`: an argument that is true unless given.
pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_ansible_reads_them() {
        assert_eq!(parse_mode("0644"), Ok(Mode::Octal(0o644)));
        assert_eq!(parse_mode("644"), Ok(Mode::Octal(0o644)));
        assert_eq!(
            serde_json::from_value::<Mode>(serde_json::json!(420)).unwrap(),
            Mode::Octal(0o644)
        );
        assert!(parse_mode("rwx").is_err());
    }

    #[test]
    fn symbolic_modes() {
        let m = parse_mode("u=rwx,g=rx,o=").unwrap();
        assert_eq!(m.resolve(0o644, false), Ok(0o750));
        assert_eq!(parse_mode("u+x").unwrap().resolve(0o644, false), Ok(0o744));
        assert_eq!(parse_mode("a-w").unwrap().resolve(0o664, false), Ok(0o444));
        assert_eq!(parse_mode("go=").unwrap().resolve(0o755, false), Ok(0o700));
        assert_eq!(parse_mode("a+X").unwrap().resolve(0o644, true), Ok(0o755));
    }

    fn lenient<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
        T::deserialize(Lenient(value)).map_err(|e| e.to_string())
    }

    #[test]
    fn strings_take_python_str_of_scalars() {
        assert_eq!(
            lenient::<String>(serde_json::json!(true)),
            Ok("True".into())
        );
        assert_eq!(lenient::<String>(serde_json::json!(10)), Ok("10".into()));
        assert_eq!(lenient::<String>(serde_json::json!(1.0)), Ok("1.0".into()));
        assert_eq!(
            lenient::<String>(serde_json::json!(["a", 1, null])),
            Ok("['a', 1, None]".into())
        );
    }

    #[test]
    fn booleans_and_numbers_take_their_text() {
        assert_eq!(lenient::<bool>(serde_json::json!("Yes")), Ok(true));
        assert_eq!(lenient::<bool>(serde_json::json!(0)), Ok(false));
        assert!(
            lenient::<bool>(serde_json::json!("maybe"))
                .unwrap_err()
                .contains("not a valid boolean")
        );
        assert_eq!(lenient::<u64>(serde_json::json!(" 10 ")), Ok(10));
        assert_eq!(lenient::<i64>(serde_json::json!(3.0)), Ok(3));
        assert!(lenient::<i64>(serde_json::json!("1.5")).is_err());
        assert_eq!(lenient::<f64>(serde_json::json!("0.5")), Ok(0.5));
    }

    #[test]
    fn lists_split_text_on_commas_and_dicts_read_key_value_text() {
        assert_eq!(
            lenient::<Vec<String>>(serde_json::json!("a,b")),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            lenient::<Vec<String>>(serde_json::json!(5)),
            Ok(vec!["5".to_string()])
        );
        let map = lenient::<std::collections::BTreeMap<String, String>>(serde_json::json!(
            "a=1, b='two words'"
        ))
        .unwrap();
        assert_eq!(map.get("b").map(String::as_str), Some("two words"));
    }

    #[test]
    fn null_fields_count_as_not_given() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            #[serde(default)]
            force: bool,
            creates: Option<String>,
            count: Option<u32>,
        }
        let args: Args =
            lenient(serde_json::json!({"force": null, "creates": true, "count": "3"})).unwrap();
        assert!(!args.force);
        assert_eq!(args.creates.as_deref(), Some("True"));
        assert_eq!(args.count, Some(3));
    }
}
