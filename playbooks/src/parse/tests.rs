use std::fs;

use serde_json::json;

use crate::*;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

fn load(files: &[(&str, &str)]) -> Result<Playbook, PlaybookError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    let result = load_playbook(&dir.path().join(files[0].0));
    drop(dir);
    result
}

fn task(node: &TaskNode) -> &Task {
    match node {
        TaskNode::Task(t) => t,
        other => panic!("not a task: {other:?}"),
    }
}

#[test]
fn modules_in_all_three_spellings_and_free_form() {
    let pb = load(&[(
        "site.yml",
        "\
- hosts: all
  tasks:
    - copy: {dest: /tmp/a, content: x}
    - ansible.builtin.command: echo hi chdir=/tmp
    - ansible.legacy.file: path=/tmp/b state=touch
    - action: debug msg=hello
",
    )])
    .unwrap();
    let tasks = &pb.plays[0].tasks;
    assert_eq!(task(&tasks[0]).module, "copy");
    assert_eq!(
        Value::Object(task(&tasks[1]).args.clone()),
        json!({"chdir": "/tmp", "_raw_params": "echo hi"})
    );
    assert_eq!(task(&tasks[2]).module, "file");
    assert_eq!(task(&tasks[2]).args["state"], "touch");
    assert_eq!(task(&tasks[3]).args["msg"], "hello");
    assert_eq!(task(&tasks[1]).location.line, 4);
}

#[test]
fn misspelt_keyword_gets_did_you_mean_with_place_and_task() {
    let err = load(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: t1\n      debug: msg=x\n      whne: true\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(err.contains("site.yml:5:13: task \"t1\": \"whne\" is not a valid task keyword; did you mean \"when\"?"), "{err}");
}

#[test]
fn unknown_play_keyword_and_missing_hosts() {
    let err = load(&[("site.yml", "- hosts: all\n  taks: []\n")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'taks' is not a valid attribute for a Play; did you mean \"tasks\"?"),
        "{err}"
    );
    let err = load(&[("site.yml", "- name: x\n  tasks: []\n")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("site.yml:1:3: a play needs `hosts:`"), "{err}");
}

#[test]
fn unsupported_keyword_is_an_error_not_ignored() {
    let err = load(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - command: sleep 1\n      debugger: always\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("\"debugger\" is an Ansible task keyword that settle does not support"),
        "{err}"
    );
}

#[test]
fn blocks_hand_down_when_tags_and_vars() {
    let pb = load(&[(
        "site.yml",
        "\
- hosts: all
  tags: [play]
  tasks:
    - block:
        - debug: msg=a
          when: y
          vars: {inner: 1, shared: task}
      rescue:
        - debug: msg=r
      when: x
      tags: blk
      vars: {outer: 1, shared: block}
",
    )])
    .unwrap();
    let TaskNode::Block(block) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    let t = task(&block.block[0]);
    assert_eq!(t.keywords.when, vec![json!("x"), json!("y")]);
    assert_eq!(t.keywords.tags, vec!["blk", "play"]);
    assert_eq!(
        Value::Object(t.keywords.vars.clone()),
        json!({"outer": 1, "shared": "task", "inner": 1})
    );
    assert_eq!(task(&block.rescue[0]).keywords.when, vec![json!("x")]);
}

#[test]
fn import_tasks_inline_and_include_tasks_deferred() {
    let pb = load(&[
        ("site.yml", "- hosts: all\n  tasks:\n    - import_tasks: more.yml\n      when: a\n    - include_tasks: later.yml\n"),
        ("more.yml", "- debug: msg=one\n- debug: msg=two\n"),
    ])
    .unwrap();
    let tasks = &pb.plays[0].tasks;
    assert_eq!(tasks.len(), 3);
    assert_eq!(task(&tasks[1]).keywords.when, vec![json!("a")]);
    assert!(task(&tasks[1]).location.file.ends_with("more.yml"));
    assert!(matches!(&tasks[2], TaskNode::Include(i) if i.file == json!("later.yml")));
}

#[test]
fn roles_with_dependencies_defaults_and_handlers() {
    let pb = load(&[
        ("site.yml", "- hosts: all\n  roles:\n    - role: web\n      port: 8080\n  tasks:\n    - debug: msg=own\n"),
        ("roles/web/tasks/main.yml", "- name: configure\n  debug: msg=web\n"),
        ("roles/web/defaults/main.yml", "port: 80\n"),
        ("roles/web/handlers/main.yml", "- name: restart web\n  debug: msg=restart\n"),
        ("roles/web/meta/main.yml", "dependencies:\n  - common\n"),
        ("roles/common/tasks/main.yml", "- debug: msg=common\n"),
    ])
    .unwrap();
    let play = &pb.plays[0];
    // Each role's tasks end with the implicit `role_complete` step.
    let names: Vec<String> = play.tasks.iter().map(|t| task(t).display_name()).collect();
    assert_eq!(
        names,
        [
            "common : debug",
            "common : meta",
            "web : configure",
            "web : meta",
            "debug"
        ]
    );
    assert!(task(&play.tasks[3]).is_role_complete());
    let role = task(&play.tasks[2]).role.as_ref().unwrap();
    assert_eq!(role.defaults["port"], 80);
    assert_eq!(role.params["port"], 8080);
    assert_eq!(play.handlers[0].display_name(), "web : restart web");
}

#[test]
fn loops_and_handlers_listen() {
    let pb = load(&[(
        "site.yml",
        "\
- hosts: all
  tasks:
    - debug: msg={{ item }}
      with_items: [a, [b, c]]
      loop_control: {label: x}
  handlers:
    - name: restart
      listen: [web changed]
      debug: msg=r
",
    )])
    .unwrap();
    let t = task(&pb.plays[0].tasks[0]);
    assert_eq!(
        t.keywords.loop_.as_ref().unwrap().lookup.as_deref(),
        Some("items")
    );
    assert_eq!(pb.plays[0].handlers[0].listen, ["web changed"]);
}

#[test]
fn import_playbook_expands() {
    let pb = load(&[
        ("site.yml", "- import_playbook: other.yml\n- hosts: b\n"),
        ("other.yml", "- hosts: a\n"),
    ])
    .unwrap();
    let hosts: Vec<&str> = pb.plays.iter().map(|p| p.hosts.as_str()).collect();
    assert_eq!(hosts, ["a", "b"]);
}

#[test]
fn not_a_list_of_plays() {
    let err = load(&[("site.yml", "hosts: all\n")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a playbook must be a list of plays, found a mapping"),
        "{err}"
    );
}

#[test]
fn two_modules_in_one_task() {
    let err = load(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - copy: {}\n      file: {}\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("conflicting action statements: copy, file"),
        "{err}"
    );
}

#[test]
fn role_file_outside_the_role_is_refused() {
    let err = load(&[
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_role:\n        name: a\n        tasks_from: sub/../../../../site.yml\n",
        ),
        ("roles/a/tasks/main.yml", "- debug: msg=a\n"),
        ("roles/a/tasks/sub/x.yml", "- debug: msg=x\n"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("for role (a) as it is not inside the expected role path:"),
        "{err}"
    );
    let ok = load(&[
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_role:\n        name: a\n        tasks_from: sub/x\n",
        ),
        ("roles/a/tasks/sub/x.yml", "- debug: msg=x\n"),
    ]);
    assert!(ok.is_ok());
}
