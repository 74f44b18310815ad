//! `vault` and `unvault`: encrypting a string with a password given in the template, and
//! decrypting one (a vault text, or a `!vault` value however far it got), as Ansible's
//! `encryption` filters do.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, Value};
use settle_vault::VaultSecret;

use super::err;

/// The vault ID both filters use unless told otherwise.
const FILTER_DEFAULT: &str = "filter_default";

/// `vault_id`, or the deprecated `vaultid` when `vault_id` was not given.
fn vault_id(kw: &Kwargs) -> Result<String, Error> {
    let id = kw.get::<Option<String>>("vault_id")?;
    let old = kw.get::<Option<String>>("vaultid")?;
    Ok(id.or(old).unwrap_or_else(|| FILTER_DEFAULT.into()))
}

fn text_arg(value: &Value, message: &str) -> Result<String, Error> {
    match value.kind() {
        ValueKind::String => Ok(value.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            Ok(String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into())
        }
        _ => Err(err(format!(
            "{message}, instead we got {}.",
            python_class(value)
        ))),
    }
}

/// Python's `type(x)` as printed: `<class 'int'>`.
fn python_class(value: &Value) -> String {
    format!("<class '{}'>", crate::template::python_type(value))
}

fn vault(data: Value, secret: Value, kw: Kwargs) -> Result<Value, Error> {
    let secret = text_arg(&secret, "Secret passed is required to be a string")?;
    let plain = text_arg(&data, "Can only vault strings")?;
    let salt = kw.get::<Option<Value>>("salt")?.filter(|s| !s.is_none());
    let id = vault_id(&kw)?;
    let wrap = kw.get::<Option<bool>>("wrap_object")?.unwrap_or(false);
    kw.assert_all_used()?;
    let ciphertext = match salt {
        Some(salt) => settle_vault::format_envelope(
            &settle_vault::encrypt_payload(
                plain.as_bytes(),
                secret.as_bytes(),
                salt.to_string().as_bytes(),
            ),
            &id,
        ),
        None => settle_vault::encrypt(plain.as_bytes(), &VaultSecret::new(id, secret))
            .map_err(|e| err(format!("Unable to encrypt.: {e}")))?,
    };
    if wrap {
        // The value keeps its plaintext and is known for a vaulted one from now on.
        return Ok(Value::from(crate::vaulted::remember(plain, ciphertext)));
    }
    Ok(Value::from(ciphertext))
}

fn unvault(vaulted: Value, secret: Value, kw: Kwargs) -> Result<Value, Error> {
    let secret = text_arg(&secret, "Secret passed is required to be as string")?;
    let id = vault_id(&kw)?;
    kw.assert_all_used()?;
    let text = match crate::vaulted::ciphertext_of(&vaulted) {
        Some(ciphertext) => ciphertext,
        None => text_arg(&vaulted, "Vault should be in the form of a string")?,
    };
    if !settle_vault::is_encrypted(&text) {
        return Ok(Value::from(text));
    }
    let (plain, _) = settle_vault::decrypt_with(&text, &[VaultSecret::new(id, secret)])
        .map_err(|e| err(format!("Unable to decrypt.: {e}")))?;
    Ok(Value::from(String::from_utf8_lossy(&plain).into_owned()))
}

pub(crate) fn register(env: &mut Environment<'static>) {
    super::add_filter(env, "vault", vault);
    super::add_filter(env, "unvault", unvault);
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};

    #[test]
    fn vault_and_unvault_round_trip() {
        // {{ 'secret' | vault('test', vault_id='filter_default', salt=7) }} in Ansible.
        assert_eq!(
            render("{{ 'secret' | vault('test', salt=7) }}"),
            "$ANSIBLE_VAULT;1.2;AES256;filter_default\n33370a34333734353636633035656232613935353432656132646533346233326431346232616261\n6133383034376566366261316365633931356133633337396363370a376664386236313834326561\n6338373864623763613165366636633031303739\n"
        );
        assert!(truth(
            "'foo: bar' | vault('pw', vault_id='x') | unvault('pw', vault_id='x') == 'foo: bar'"
        ));
        assert!(truth("'not vaulted' | unvault('pw') == 'not vaulted'"));
        assert!(
            render("{{ 'x' | vault('pw') | unvault('wrong') }}").contains("Unable to decrypt.")
        );
        assert!(render("{{ 1 | vault('pw') }}").contains("Can only vault strings"));
    }
}
