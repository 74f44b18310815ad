//! Inventory sources that are not plain files: executable scripts (and, below, plugin files),
//! checked against what ansible-core 2.19.14's `ansible-inventory` prints for the same sources.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::super::*;

fn script(body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.sh");
    fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn a_script_gives_groups_and_meta_hostvars() {
    let (_d, path) = script(
        r#"[ "$1" = --list ] || exit 3
echo '{"web": {"hosts": ["w1", "w2"], "vars": {"x": 1}, "children": ["db"]},
 "db": ["d1"], "_meta": {"hostvars": {"w1": {"a": "b", "u": {"__ansible_unsafe": "{{ no }}"}}}}}'
"#,
    );
    let inv = Inventory::load(&[&path]).unwrap();
    let list = inv.list_json(&ShowOptions {
        export: true,
        ..ShowOptions::default()
    });
    assert_eq!(
        list["web"],
        json!({"hosts": ["w1", "w2"], "children": ["db"], "vars": {"x": 1}})
    );
    assert_eq!(list["db"], json!({"hosts": ["d1"]}));
    assert_eq!(inv.host_vars("w1")["a"], json!("b"));
    // Untrusted text stays untrusted, and is shown as Ansible's encoder shows it.
    assert!(python_json(&list).contains("\"__ansible_unsafe\": \"{{ no }}\""));
}

#[test]
fn without_meta_hostvars_each_host_is_asked_for() {
    let (_d, path) = script(
        r#"case "$1" in
--list) echo '{"g": {"hosts": ["h1", "h2"]}}';;
--host) if [ "$2" = h1 ]; then echo '{"v": 1}'; fi;;
esac
"#,
    );
    let inv = Inventory::load(&[&path]).unwrap();
    assert_eq!(inv.host_vars("h1")["v"], json!(1));
    assert!(!inv.host_vars("h2").contains_key("v"));
}

#[test]
fn script_failures_in_ansibles_words() {
    for (body, want) in [
        (
            "echo oops >&2; exit 2",
            "Inventory script returned non-zero exit code 2.\n\nStandard error from inventory script:\noops\n",
        ),
        (
            "echo '[1]'",
            "Unable to get JSON decoder for inventory script result: Value is 'list' instead of 'dict'.",
        ),
        (
            "echo '{\"_meta\": {\"profile\": \"x\"}}'",
            "Non-inventory profile 'x' is not allowed.",
        ),
        (
            "echo '{\"g\": {\"vars\": []}}'",
            "Value contains 'g.vars' which is 'list' instead of 'dict'.",
        ),
        (
            "echo '{\"g\": {\"hosts\": \"h\"}}'",
            "Value contains 'g.hosts' which is 'str' instead of 'list'.",
        ),
        (
            "echo '{\"_meta\": {\"hostvars\": {\"h\": 1}}, \"g\": [\"h\"]}'",
            "Invalid data from file, expected dictionary and got:\n\n1",
        ),
    ] {
        let (_d, path) = script(body);
        let e = Inventory::load(&[&path]).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
        assert!(
            e.contains("Failed to parse inventory with 'script' plugin"),
            "{e}"
        );
    }
}

#[test]
fn an_executable_ini_file_is_still_read_as_ini() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, "[web]\nw1\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let inv = Inventory::load(&[path.to_str().unwrap()]).unwrap();
    assert_eq!(inv.group_hosts("web"), ["w1"]);
}
