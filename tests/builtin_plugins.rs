//! Every filter and test that ansible-core 2.19 lists as `ansible.builtin` (`ansible-doc -t
//! filter -l`, `-t test -l`, Jinja2's own included) is one settle knows by itself: none falls
//! through to "No filter named" with no ansible-core to ask.

mod common;

use std::process::Command;

use common::{Scratch, ansible_tool, local_inventory};

fn builtin_names(doc: &std::path::Path, kind: &str) -> Vec<String> {
    let out = Command::new(doc)
        .args(["-t", kind, "-l"])
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("run ansible-doc");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("ansible.builtin."))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_builtin_filter_and_test_of_ansible_core_is_settles_own() {
    let Some(doc) = ansible_tool("ansible-doc") else {
        return;
    };
    let filters = builtin_names(&doc, "filter");
    let tests = builtin_names(&doc, "test");
    // ansible-core 2.19.14's counts, which the README gives.
    assert_eq!((filters.len(), tests.len()), (122, 82));
    let mut play = String::from("- hosts: all\n  gather_facts: no\n  tasks:\n");
    for f in &filters {
        play +=
            &format!("    - debug: {{msg: \"{{{{ 1 | {f} }}}}\"}}\n      ignore_errors: true\n");
    }
    for t in &tests {
        play +=
            &format!("    - debug: {{msg: \"{{{{ 1 is {t} }}}}\"}}\n      ignore_errors: true\n");
    }
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1"]));
    s.write("site.yml", &play);
    // No ansible-core to run Python plugins with: what is not settle's own is unknown.
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[
            ("PATH", "/usr/bin:/bin"),
            ("SETTLE_ANSIBLE_PYTHON", "/nonexistent"),
        ],
    );
    run.assert_code(0);
    let unknown: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("No filter named") || l.contains("No test named"))
        .collect();
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
    assert_eq!(run.recap("h1")["ok"], filters.len() + tests.len());
}
