//! The template engine: any template renders or fails with an error, never a panic or a stack
//! overflow. The input is a template rendered with a few variables of every type, one of which
//! is itself a template and one of which refers to itself.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use settle_engine::template::{Scope, templar};

/// Lookups run commands (`pipe`, `lines`) and write files (`password`): a template that can
/// name one is not run. No template can reach a lookup without naming it.
fn names_a_lookup(text: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| matches!(word, "lookup" | "query" | "q"))
}

fn vars() -> Arc<Map<String, Value>> {
    static VARS: OnceLock<Arc<Map<String, Value>>> = OnceLock::new();
    VARS.get_or_init(|| {
        let Value::Object(map) = json!({
            "s": "text",
            "n": 42,
            "f": 1.5,
            "b": true,
            "none": null,
            "l": [1, "two", [3], {"four": 4}],
            "d": {"a": 1, "b": [2, 3], "c": {"d": "e"}},
            "t": "{{ n + 1 }}",
            "me": "{{ me }}",
            "ip": "192.168.0.1/24",
        }) else {
            unreachable!("a JSON object literal")
        };
        Arc::new(map)
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_a_lookup(text) {
        return;
    }
    let scope = Scope::new(vec![vars()], None);
    let _ = templar().render_text(text, &scope);
    let _ = templar().condition(&Value::String(text.to_string()), &scope);
});
