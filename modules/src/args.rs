//! Argument types as Ansible accepts them: `yes`/`no` booleans, modes as numbers or text.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

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
}
