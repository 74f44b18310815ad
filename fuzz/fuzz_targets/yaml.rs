//! The YAML loader: any text is a `Node` tree or one error, never a panic, a stack overflow or a
//! hang; what loads converts to JSON, prints as Python's json would, and writes back as YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Duplicate keys would print a warning per input.
    // SAFETY: set before the first input is read; the loader reads it on this thread only.
    unsafe { std::env::set_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "ignore") };
    match settle_yaml::parse_str(text, "fuzz.yml") {
        Ok(node) => {
            let value = node.to_value();
            let _ = settle_yaml::py_json(&value, Some(4));
            let _ = settle_yaml::python_type(&value);
            let _ = settle_yaml::to_string(&value);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
