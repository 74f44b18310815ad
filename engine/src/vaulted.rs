//! `!vault` values, decrypted when used, as Ansible 2.19 does.
//!
//! The YAML loader keeps a `!vault` value encrypted, as `{"__ansible_vault": ciphertext}` (the
//! form Ansible's JSON gives it), so that a vars file holding values nobody can decrypt loads,
//! and only a task that uses one fails. The value is decrypted when a template reads the
//! variable, or when a task's arguments are finalised:
//!
//! - decrypted, it is the plaintext string (never rendered again: vaulted text is not a
//!   template), remembered with its ciphertext so that `is vault_encrypted` and `unvault` still
//!   know it for a vaulted value;
//! - undecryptable, it is an [`Undecryptable`] object that templates may pass along (to
//!   `unvault`, `vault_encrypted`, `default`) but not use: the result of a template holding one,
//!   or text made from one, fails with Ansible's `Attempt to use undecryptable variable: …`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::Value as Mj;
use minijinja::value::{Object, ObjectRepr, ValueKind};
use serde_json::Value;
use settle_yaml::vault_ciphertext;

/// Plaintexts decrypted from `!vault` values, each with its ciphertext.
static DECRYPTED: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// The text an undecryptable value turns into when made text (`__settle_undecryptable_N__`,
/// N indexing [`REASONS`]), so that the result of a template holding it fails instead of
/// carrying it on. Letters, digits and underscores only, so that quoting (JSON, YAML, repr)
/// and case changes leave it findable.
const POISON: &str = "__settle_undecryptable_";

/// Why each undecryptable value cannot be used.
static REASONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn poison(message: &str) -> String {
    let mut reasons = REASONS.lock().unwrap_or_else(|p| p.into_inner());
    let index = match reasons.iter().position(|r| r == message) {
        Some(i) => i,
        None => {
            reasons.push(message.to_string());
            reasons.len() - 1
        }
    };
    format!("{POISON}{index}__")
}

fn use_error(reason: &str) -> String {
    format!("Attempt to use undecryptable variable: {reason}")
}

/// A `!vault` value's plaintext with the process's secrets, remembered as vaulted; the error
/// says why it cannot be used.
pub(crate) fn decrypt(ciphertext: &str) -> Result<String, String> {
    let plain = settle_vault::decrypt(ciphertext).map_err(|e| use_error(&e.to_string()))?;
    Ok(remember(plain, ciphertext.to_string()))
}

/// `plaintext`, known from now on as the value of `ciphertext` (`vault(wrap_object=True)`).
pub(crate) fn remember(plaintext: String, ciphertext: String) -> String {
    let mut known = DECRYPTED.lock().unwrap_or_else(|p| p.into_inner());
    known
        .get_or_insert_with(HashMap::new)
        .insert(plaintext.clone(), ciphertext);
    plaintext
}

/// The ciphertext behind a template value that came from a `!vault` value (decrypted or not).
pub(crate) fn ciphertext_of(value: &Mj) -> Option<String> {
    if let Some(u) = value.downcast_object_ref::<Undecryptable>() {
        return Some(u.ciphertext.clone());
    }
    let text = value.as_str()?;
    let known = DECRYPTED.lock().unwrap_or_else(|p| p.into_inner());
    known.as_ref()?.get(text).cloned()
}

/// Whether a value holds a `!vault` value anywhere.
pub(crate) fn holds_vaulted(value: &Value) -> bool {
    match value {
        Value::Object(map) => vault_ciphertext(value).is_some() || map.values().any(holds_vaulted),
        Value::Array(items) => items.iter().any(holds_vaulted),
        _ => false,
    }
}

/// The value with every `!vault` value inside decrypted: what a task's arguments hold.
pub(crate) fn reveal(value: &Value) -> Result<Value, String> {
    if !holds_vaulted(value) {
        return Ok(value.clone());
    }
    if let Some(ciphertext) = vault_ciphertext(value) {
        return decrypt(ciphertext).map(Value::String);
    }
    Ok(match value {
        Value::Array(items) => Value::Array(items.iter().map(reveal).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), reveal(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The value for a template: `!vault` values decrypted, or [`Undecryptable`] when they cannot be.
pub(crate) fn to_template_value(value: &Value) -> Mj {
    if !holds_vaulted(value) {
        return Mj::from(minijinja::value::Serde(value));
    }
    if let Some(ciphertext) = vault_ciphertext(value) {
        return match decrypt(ciphertext) {
            Ok(plain) => Mj::from(plain),
            Err(message) => Mj::from_object(Undecryptable {
                ciphertext: ciphertext.to_string(),
                message,
            }),
        };
    }
    match value {
        Value::Array(items) => Mj::from(items.iter().map(to_template_value).collect::<Vec<_>>()),
        Value::Object(map) => Mj::from_object(
            map.iter()
                .map(|(k, v)| (Mj::from(k.as_str()), to_template_value(v)))
                .collect::<indexmap::IndexMap<Mj, Mj>>(),
        ),
        other => Mj::from(minijinja::value::Serde(other)),
    }
}

/// The first undecryptable value inside a template value (at any depth), as the error of using
/// it.
pub(crate) fn undecryptable_in(value: &Mj) -> Option<String> {
    if let Some(u) = value.downcast_object_ref::<Undecryptable>() {
        return Some(u.message.clone());
    }
    if let Some(text) = value.as_str() {
        return poisoned(text);
    }
    match value.kind() {
        ValueKind::Seq | ValueKind::Map => {
            if crate::template::is_variables(value) {
                return None;
            }
            let keys: Vec<Mj> = value.try_iter().ok()?.collect();
            keys.iter().find_map(|k| {
                let child = if value.kind() == ValueKind::Map {
                    value.get_item(k).ok()?
                } else {
                    k.clone()
                };
                undecryptable_in(&child)
            })
        }
        _ => None,
    }
}

/// The error of using an undecryptable value, when `text` was made from one.
pub(crate) fn poisoned(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find(POISON)? + POISON.len();
    let digits: String = lower[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let reasons = REASONS.lock().unwrap_or_else(|p| p.into_inner());
    let reason = digits.parse::<usize>().ok().and_then(|i| reasons.get(i));
    Some(
        reason
            .cloned()
            .unwrap_or_else(|| use_error("the value could not be decrypted")),
    )
}

/// The first undecryptable value's error inside data a template produced.
pub(crate) fn poisoned_json(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => poisoned(s),
        Value::Array(items) => items.iter().find_map(poisoned_json),
        Value::Object(map) => map.values().find_map(poisoned_json),
        _ => None,
    }
}

/// A `!vault` value the process's secrets cannot open.
#[derive(Debug)]
pub(crate) struct Undecryptable {
    ciphertext: String,
    /// `Attempt to use undecryptable variable: …`
    message: String,
}

impl Object for Undecryptable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        f.write_str(&poison(&self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecryptable_text_is_caught_wherever_it_went() {
        let value = Mj::from_object(Undecryptable {
            ciphertext: "$ANSIBLE_VAULT;1.1;AES256\n31\n".into(),
            message: use_error("no secrets"),
        });
        let text = format!("a {} b", value.to_string().to_uppercase());
        assert_eq!(
            poisoned(&text).as_deref(),
            Some("Attempt to use undecryptable variable: no secrets")
        );
        assert!(undecryptable_in(&Mj::from(vec![Mj::from(1), value.clone()])).is_some());
        assert_eq!(
            ciphertext_of(&value).as_deref(),
            Some("$ANSIBLE_VAULT;1.1;AES256\n31\n")
        );
        assert!(poisoned("plain").is_none());
    }
}
