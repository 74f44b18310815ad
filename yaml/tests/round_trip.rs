//! Property tests: what settle writes (YAML for `to_yaml`, JSON as Python's `json.dumps` for
//! `to_json` and the callback) reads back as the same value.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings a playbook holds, including the ones YAML 1.1 would read as something else
/// (`yes`, `0644`, `1e3`, `~`, `null`) and characters YAML and JSON must escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.:/#'\"\\\\{}\\[\\],&*!|>%@`-]{0,12}",
        "\\PC{0,8}",
        prop::sample::select(vec![
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "true",
            "False",
            "~",
            "null",
            "0644",
            "0o17",
            "0x1F",
            "1e3",
            "1.5",
            ".inf",
            "-.nan",
            "1:30",
            "2026-12-02",
            "1_000",
            "+1",
            "-0",
            "",
            " ",
            "- a",
            "a: b",
            "#c",
            "'q'",
            "\"",
            "\t",
            "\n",
            "a\nb\n",
            "<<",
        ])
        .prop_map(str::to_string),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Floats with a fraction (a whole float is written `1.0` by Python but `1` by serde).
        (-100_000i32..100_000, 1u8..64)
            .prop_map(|(whole, part)| Value::from(f64::from(whole) + f64::from(part) / 64.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn yaml_written_reads_back_as_the_same_value(value in value()) {
        let text = settle_yaml::to_string(&value).map_err(TestCaseError::fail)?;
        let read = settle_yaml::parse_str(&text, "written.yml")
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- written:\n{text}")))?;
        prop_assert_eq!(read.to_value(), value, "written:\n{}", text);
    }

    #[test]
    fn python_json_reads_back_as_the_same_value(value in value(), indent in prop::option::of(0usize..5)) {
        let text = settle_yaml::py_json(&value, indent);
        let read: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- written:\n{text}")))?;
        prop_assert_eq!(read, value);
    }

    #[test]
    fn json_is_yaml_too(value in value()) {
        // A `.json` inventory or vars file goes through the YAML loader.
        let text = settle_yaml::py_json(&value, Some(2));
        let read = settle_yaml::parse_str(&text, "written.json")
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- written:\n{text}")))?;
        prop_assert_eq!(read.to_value(), value, "written:\n{}", text);
    }
}
