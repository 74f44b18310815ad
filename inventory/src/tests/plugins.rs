//! Inventory sources that are not plain files: executable scripts (and, below, plugin files),
//! checked against what ansible-core 2.19.14's `ansible-inventory` prints for the same sources.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

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
    let marker = dir.path().join("ran");
    // Read by a shell, this file would run `touch`: it must never be handed to one.
    let text = format!("[web]\nw1\n[web:vars]\nx=1;touch {}\n", marker.display());
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let inv = Inventory::load(&[path.to_str().unwrap()]).unwrap();
    assert_eq!(inv.group_hosts("web"), ["w1"]);
    assert!(!marker.exists());
}

/// Expressions that are variable names, for testing without the engine's templates.
struct Names;

impl Evaluator for Names {
    fn expression(&self, expr: &str, vars: &Vars) -> Result<Value, String> {
        if let Some(lit) = expr.strip_prefix('=') {
            return Ok(serde_json::from_str(lit).unwrap());
        }
        vars.get(expr)
            .cloned()
            .ok_or(format!("'{expr}' is undefined"))
    }
    fn conditional(&self, expr: &str, vars: &Vars) -> Result<bool, String> {
        match self.expression(expr, vars)? {
            Value::Bool(b) => Ok(b),
            _ => Err("Conditionals must have a boolean result.".into()),
        }
    }
    fn template(&self, text: &str, _vars: &Vars) -> Result<Value, String> {
        Ok(Value::String(text.into()))
    }
}

fn constructed(static_yaml: &str, plugin: &str) -> Result<Inventory, InventoryError> {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("static.yml");
    let b = dir.path().join("constructed.yml");
    fs::write(&a, static_yaml).unwrap();
    fs::write(&b, plugin).unwrap();
    Inventory::load_with(&[a.to_str().unwrap(), b.to_str().unwrap()], Some(&Names))
}

const TAGGED: &str = "all:\n  hosts:\n    h0:\n      tags: {name: h0, status: '', type: null}\n      \
                      roles: [db, '', null]\n      flag: true\n      zone: eu-1\n";

#[test]
fn constructed_keyed_groups_as_ansible_names_them() {
    let inv = constructed(
        TAGGED,
        "plugin: constructed\nkeyed_groups:\n  - {key: tags, prefix: tag, default_value: running}\n  \
         - {key: tags, prefix: bare, trailing_separator: false}\n  - {key: roles, prefix: role}\n  \
         - {key: zone, separator: ''}\n  - {key: zone, parent_group: zones, prefix: z}\n",
    )
    .unwrap();
    let mut groups: Vec<&str> = inv.groups().map(|g| g.name.as_str()).collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            "all",
            "bare_name_h0",
            "bare_status",
            "bare_type",
            "eu_1",
            "role_",
            "role_None",
            "role_db",
            "tag_name_h0",
            "tag_status_running",
            "tag_type_running",
            "ungrouped",
            "z_eu_1",
            "zones"
        ]
    );
    assert_eq!(inv.group("zones").unwrap().children, ["z_eu_1"]);
    assert!(inv.group("ungrouped").unwrap().hosts.is_empty());
}

#[test]
fn constructed_compose_groups_and_leading_separator() {
    let inv = constructed(
        TAGGED,
        "plugin: ansible.builtin.constructed\nleading_separator: false\ncompose:\n  copy: zone\n  \
         missing: nope\ngroups:\n  flagged: flag\n  bad-name: flag\n  broken: zone\n\
         keyed_groups:\n  - key: zone\n",
    )
    .unwrap();
    // A composed value is data: it never renders again, and shows as Ansible shows it.
    let copy = &inv.host_vars("h0")["copy"];
    assert!(python_json(copy).contains("__ansible_unsafe"));
    assert!(!inv.host_vars("h0").contains_key("missing"));
    assert_eq!(inv.group_hosts("flagged"), ["h0"]);
    assert_eq!(inv.group_hosts("bad_name"), ["h0"]);
    assert!(inv.group("broken").is_none());
    assert_eq!(inv.group_hosts("eu_1"), ["h0"]);
}

#[test]
fn constructed_strict_errors_and_other_plugins() {
    let e = constructed(
        TAGGED,
        "plugin: constructed\nstrict: true\ncompose:\n  x: nope\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("constructed.yml'. Could not set x for host h0: 'nope' is undefined"),
        "{e}"
    );
    let e = constructed(
        TAGGED,
        "plugin: constructed\nkeyed_groups:\n  - {key: '=1'}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("expected a string or a list of them or dictionary, got: <class 'int'>"),
        "{e}"
    );
    // A file for a plugin settle does not have is skipped (with Ansible's warning).
    let inv = constructed(TAGGED, "plugin: amazon.aws.aws_ec2\nregions: [x]\n").unwrap();
    assert_eq!(inv.hosts().count(), 1);
    // Without an evaluator, a constructed file cannot be read.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("c.yml");
    fs::write(&b, "plugin: constructed\n").unwrap();
    assert!(Inventory::load(&[b.to_str().unwrap()]).is_err());
}
