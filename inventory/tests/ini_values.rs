//! Property test: an INI inventory's values are Python literals, typed as Ansible's
//! `ast.literal_eval` types them, whether given on a host line (shell-quoted) or in a
//! `[group:vars]` section (as written).

use proptest::prelude::*;
use serde_json::{Map, Value};
use settle_inventory::Inventory;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.,:/@%+=#'\"\\\\-]{0,10}"
}

/// A Python literal and the value it stands for.
fn literal() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// `repr()` of the value, as a Python programmer would write it.
fn python(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python(&Value::String(k.clone())), python(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_host_variable_is_its_python_literal(value in literal()) {
        let line = format!("h1 v={}", shell_words::quote(&python(&value)));
        let inventory = Inventory::parse_str(&format!("[g]\n{line}\n"), "hosts")
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- line: {line}")))?;
        let vars = &inventory.host("h1").map(|h| h.vars.clone()).unwrap_or_default();
        prop_assert_eq!(vars.get("v"), Some(&value), "line: {}", line);
    }

    #[test]
    fn a_group_variable_is_its_python_literal(value in literal()) {
        let line = format!("v = {}", python(&value));
        let inventory = Inventory::parse_str(&format!("[g]\nh1\n[g:vars]\n{line}\n"), "hosts")
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- line: {line}")))?;
        let vars = inventory.host_vars("h1");
        prop_assert_eq!(vars.get("v"), Some(&value), "line: {}", line);
    }

    #[test]
    fn a_numbered_range_names_every_host_once(start in 0u32..50, count in 1u32..30, width in 1usize..4) {
        let end = start + count - 1;
        let spec = format!("web[{start:0width$}:{end:0width$}].example.com");
        let inventory = Inventory::parse_str(&format!("[web]\n{spec}\n"), "hosts")
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- line: {spec}")))?;
        let hosts = inventory.select("web").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<String> =
            (start..=end).map(|i| format!("web{i:0width$}.example.com")).collect();
        prop_assert_eq!(hosts, expected);
    }
}
