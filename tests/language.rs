//! The playbook language end to end: the `settle` binary on real playbook files, with the local
//! connection on a scratch folder (the SSH suite runs the same language on test hosts).

mod common;

use common::{Scratch, local_inventory, one_host};

#[test]
fn recap_line_is_byte_for_byte_ansibles() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=hi\n    - file: path=@@/d state=directory\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("\nh1                         : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   \n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(
        "\nPLAY [all] *********************************************************************\n"
    ));
    assert!(run.stdout.contains("\nTASK [debug] *******************************************************************\nok: [h1] => {\n    \"msg\": \"hi\"\n}\n"));
}

#[test]
fn second_run_reports_no_change() {
    let s = one_host();
    s.write("files/motd", "static\n");
    s.write("templates/conf.j2", "port={{ port }}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  vars: {port: 8080}
  tasks:
    - file: {path: '@@/out', state: directory, mode: '0750'}
    - copy: {src: motd, dest: '@@/out/motd', mode: '0644'}
    - copy: {content: 'inline\n', dest: '@@/out/inline'}
    - template: {src: conf.j2, dest: '@@/out/app.conf'}
    - file: {src: '@@/out/motd', path: '@@/out/motd.link', state: link}
    - command: touch @@/out/marker creates=@@/out/marker
",
    );
    let first = s.settle(&["site.yml", "-i", "hosts"]);
    first.assert_code(0);
    assert_eq!(first.recap("h1")["changed"], 6, "{}", first.stdout);
    assert_eq!(s.read("out/app.conf"), "port=8080\n");
    let second = s.settle(&["site.yml", "-i", "hosts"]);
    second.assert_code(0);
    assert_eq!(second.recap("h1")["changed"], 0, "{}", second.stdout);
}

#[test]
fn check_mode_predicts_and_touches_nothing() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {content: 'x\n', dest: '@@/f'}\n    - command: rm -rf @@\n");
    let run = s.settle(&["site.yml", "-i", "hosts", "--check", "--diff"]);
    run.assert_code(0);
    assert!(!s.path("f").exists());
    assert_eq!(run.counts("h1"), (1, 1, 0, 1, 0, 0), "{}", run.stdout);
    assert!(run.stdout.contains("+x"), "{}", run.stdout);
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  tasks:\n\t- debug: msg=x\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(4);
    assert!(run.stderr.contains("site.yml:3:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("YAML indents with spaces, not tabs"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("[ERROR]:").count(),
        1,
        "one message: {}",
        run.stderr
    );
}

#[test]
fn unknown_module_gets_did_you_mean() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: Copy it\n      coppy: {dest: /tmp/x, content: x}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(4);
    assert!(run.stderr.contains("site.yml:3:7: task \"Copy it\": the module \"coppy\" is not known to settle; did you mean \"copy\"?"), "{}", run.stderr);
}

#[test]
fn unknown_argument_is_named_not_ignored() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  tasks:\n    - file: {path: /tmp/x, mdoe: '0644'}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    // As in Ansible, the task fails when it runs (exit 2), naming the argument, task and place.
    run.assert_code(2);
    assert!(
        run.stdout.contains("fatal: [h1]: FAILED!")
            && run.stdout.contains("unsupported argument \\\"mdoe\\\"")
            && run.stdout.contains("site.yml:3:7"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("did you mean \\\"mode\\\"?"),
        "{}",
        run.stdout
    );
}

#[test]
fn undefined_variable_names_variable_task_and_host() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: Greet\n      debug: msg={{ nobody }}\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("fatal: [h1]"))
        .expect(&run.stdout);
    assert!(line.contains("'nobody' is undefined"), "{line}");
    assert!(
        line.contains("Greet") && line.contains("site.yml:4:7"),
        "{line}"
    );
    assert_eq!(run.counts("h1").2, 1);
}

#[test]
fn variable_precedence_follows_ansible() {
    let s = Scratch::new();
    s.write("inv/hosts", "[parent:children]\nchild\n[child]\nh1 ansible_connection=local inline_host=inline\n[parent:vars]\nv_inline_group=parent\n");
    s.write(
        "inv/group_vars/all.yml",
        "v_all: inventory_all\nv_group: all\nv_play_over_group: group\nv_role_default: group_all\n",
    );
    s.write("inv/group_vars/parent.yml", "v_group: parent\n");
    s.write("inv/group_vars/child.yml", "v_group: child\n");
    s.write(
        "inv/host_vars/h1.yml",
        "v_host: host_vars\ninline_host: host_vars_file\n",
    );
    s.write("group_vars/all.yml", "v_all: playbook_all\n");
    s.write(
        "vars.yml",
        "v_files: vars_file\nv_play_vs_file: vars_file\n",
    );
    s.write(
        "roles/r/defaults/main.yml",
        "v_role_default: role_default\nv_only_default: role_default\n",
    );
    s.write(
        "roles/r/vars/main.yml",
        "v_role_vars: role_vars\nv_task_over_role: role_vars\n",
    );
    s.write(
        "roles/r/tasks/main.yml",
        "\
- debug: msg={{ [v_all, v_group, v_host, inline_host, v_inline_group, v_only_default, v_role_default, v_role_vars] | join(',') }}
- debug: msg={{ v_task_over_role }}
  vars: {v_task_over_role: task}
",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars: {v_play_over_group: play, v_play_vs_file: play, v_extra: play, v_fact: play}
  vars_files: [vars.yml]
  roles: [r]
  tasks:
    - debug: msg={{ v_play_over_group }},{{ v_play_vs_file }},{{ v_extra }}
    - block:
        - debug: msg={{ v_block }}
          vars: {v_block: task}
      vars: {v_block: block}
    - set_fact: {v_fact: set_fact}
    - debug: msg={{ v_fact }}
      vars: {v_fact: task}
",
    );
    let run = s.settle(&["site.yml", "-i", "inv/hosts", "-e", "v_extra=extra"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        [
            "playbook_all,child,host_vars,host_vars_file,parent,role_default,group_all,role_vars",
            "task",
            "play,vars_file,extra",
            "task",
            "set_fact",
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn loops_with_items_dict_and_registered_results() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - debug: msg={{ item }}
      with_items: [a, [b, c]]
    - debug: msg={{ item.key }}={{ item.value }}
      with_dict: {x: 1}
    - command: echo {{ thing }}-{{ i }}
      loop: [p, q]
      loop_control: {loop_var: thing, index_var: i, label: '{{ thing }}'}
      register: echoed
      changed_when: false
    - debug: msg={{ echoed.results | map(attribute='stdout') | join(' ') }}
    - debug: msg={{ item }}
      loop: []
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["a", "b", "c", "x=1", "p-0 q-1"],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ok: [h1] => (item=p)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.counts("h1"), (4, 0, 0, 1, 0, 0));
}

#[test]
fn conditions_read_registered_results_and_facts() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  tasks:
    - shell: exit 3
      register: r
      failed_when: r.rc not in [0, 3]
    - debug: msg=three
      when: r.rc == 3
    - debug: msg=never
      when: r is failed
    - debug: msg=defined
      when:
        - missing is not defined
        - \"'yes' | bool\"
    - debug: msg=linux
      when: ansible_system == 'Linux' and ansible_facts.hostname | length > 0
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["three", "defined", "linux"],
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("skipping: [h1]"));
}

const HANDLERS: &str = "\
- hosts: all
  gather_facts: no
  tasks:
    - command: 'true'
      notify: restart
    - command: 'true'
      notify: [restart, topic]
    - debug: msg=unchanged
      notify: quiet
    - fail: msg=boom
      when: fail_now | default(false) | bool
  handlers:
    - name: quiet
      debug: msg='quiet ran'
    - name: restart
      debug: msg='restart ran'
    - name: by topic
      listen: topic
      debug: msg='topic ran'
";

#[test]
fn handlers_run_once_in_definition_order_only_when_notified_by_a_change() {
    let s = one_host();
    s.write("site.yml", HANDLERS);
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["unchanged", "restart ran", "topic ran"],
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("RUNNING HANDLER [restart]").count(), 1);
}

#[test]
fn handlers_skipped_after_failure_unless_forced() {
    let s = one_host();
    s.write("site.yml", HANDLERS);
    let run = s.settle(&["site.yml", "-i", "hosts", "-e", "fail_now=yes"]);
    run.assert_code(2);
    assert!(!run.stdout.contains("RUNNING HANDLER"), "{}", run.stdout);
    let forced = s.settle(&[
        "site.yml",
        "-i",
        "hosts",
        "-e",
        "fail_now=yes",
        "--force-handlers",
    ]);
    forced.assert_code(2);
    assert!(
        forced.stdout.contains("RUNNING HANDLER [restart]"),
        "{}",
        forced.stdout
    );
}

#[test]
fn meta_flush_handlers_runs_them_early() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      notify: h\n    - meta: flush_handlers\n    - debug: msg=after\n  handlers:\n    - name: h\n      debug: msg=handler\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(run.messages(), ["handler", "after"], "{}", run.stdout);
}

#[test]
fn notifying_a_missing_handler_stops_the_run_when_the_task_notifies() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  tasks:\n    - command: 'true'\n      notify: restart nginx\n  handlers:\n    - name: restart ngnix\n      debug: {}\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("did you mean \"restart ngnix\"?"),
        "{}",
        run.stderr
    );
}

#[test]
fn block_rescue_always() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - block:
        - fail: msg=first
        - debug: msg='not reached'
      rescue:
        - debug: msg=\"rescued {{ ansible_failed_result | default('') | length > -1 }}\"
      always:
        - debug: msg='always one'
    - debug: msg=continues
    - block:
        - fail: msg=second
      rescue:
        - fail: msg='rescue fails too'
      always:
        - debug: msg='always two'
    - debug: msg='not after a failed always'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(
        run.messages(),
        ["rescued True", "always one", "continues", "always two"],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"msg\": \"rescue fails too\"}"),
        "{}",
        run.stdout
    );
    assert_eq!(run.counts("h1"), (4, 0, 1, 0, 2, 0), "{}", run.stdout);
}

#[test]
fn ignore_errors_counts_ignored() {
    let s = one_host();
    s.write("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'false'\n      ignore_errors: yes\n    - debug: msg=on\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(run.stdout.contains("...ignoring"));
    assert_eq!(run.counts("h1"), (2, 1, 0, 0, 0, 1), "{}", run.stdout);
}

#[test]
fn tags_select_skip_always_and_never() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - {debug: {msg: web}, tags: web}
    - {debug: {msg: db}, tags: [db]}
    - {debug: {msg: always}, tags: always}
    - {debug: {msg: never}, tags: never}
    - {debug: {msg: untagged}}
",
    );
    let msgs = |args: &[&str]| {
        let mut all = vec!["site.yml", "-i", "hosts"];
        all.extend_from_slice(args);
        s.settle(&all).messages()
    };
    assert_eq!(msgs(&[]), ["web", "db", "always", "untagged"]);
    assert_eq!(msgs(&["-t", "web"]), ["web", "always"]);
    assert_eq!(msgs(&["--skip-tags", "web,always"]), ["db", "untagged"]);
    assert_eq!(msgs(&["--tags", "never"]), ["always", "never"]);
    let listed = s.settle(&["site.yml", "-i", "hosts", "--list-tags"]);
    assert!(
        // As ansible-playbook: without --tags, `never` tasks' tags are listed too.
        listed
            .stdout
            .contains("TASK TAGS: [always, db, never, web]"),
        "{}",
        listed.stdout
    );
}

#[test]
fn limit_and_host_patterns() {
    let s = Scratch::new();
    s.write(
        "hosts",
        "[all:vars]\nansible_connection=local\n[web]\nw[1:3]\n[db]\nd1\n",
    );
    s.write("site.yml", "- hosts: web:db:!w2\n  gather_facts: no\n  tasks:\n    - debug: msg={{ inventory_hostname }}\n");
    let run = s.settle(&["site.yml", "-i", "hosts", "-l", "w*:d1"]);
    run.assert_code(0);
    let mut hosts = run.messages();
    hosts.sort();
    assert_eq!(hosts, ["d1", "w1", "w3"]);
    let listed = s.settle(&["site.yml", "-i", "hosts", "--list-hosts", "-l", "w1"]);
    assert!(
        listed.stdout.contains("hosts (1):\n      w1\n"),
        "{}",
        listed.stdout
    );
    // As ansible-playbook 2.19: a --limit that leaves no host is an error, exit 1.
    let none = s.settle(&["site.yml", "-i", "hosts", "-l", "nothing"]);
    none.assert_code(1);
    assert!(none.stderr.contains(
        "Specified inventory, host pattern and/or --limit leaves us with no hosts to target."
    ));
}

#[test]
fn exit_codes_match_ansible_playbook() {
    let s = Scratch::new();
    s.write("hosts", "ok ansible_connection=local\nbad ansible_connection=local\nfar ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=9\n");
    s.write(
        "ok.yml",
        "- hosts: ok\n  gather_facts: no\n  tasks: [{debug: {msg: x}}]\n",
    );
    s.write("fail.yml", "- hosts: ok:bad\n  gather_facts: no\n  tasks: [{fail: {msg: x}, when: inventory_hostname == 'bad'}, {debug: {msg: after}}]\n");
    s.write(
        "unreachable.yml",
        "- hosts: all\n  gather_facts: no\n  tasks: [{ping: {}}]\n",
    );
    s.settle(&["ok.yml", "-i", "hosts"]).assert_code(0);
    let failed = s.settle(&["fail.yml", "-i", "hosts"]);
    failed.assert_code(2);
    assert_eq!(failed.messages(), ["after"], "the other host goes on");
    let dark = s.settle(&["unreachable.yml", "-i", "hosts"]);
    dark.assert_code(4);
    assert_eq!(dark.recap("far")["unreachable"], 1);
    assert_eq!(dark.recap("ok")["ok"], 1);
    s.settle(&["ok.yml", "-i", "hosts", "--no-such-option"])
        .assert_code(2);
    s.settle(&["missing.yml", "-i", "hosts"]).assert_code(1);
}

#[test]
fn include_tasks_with_loop_and_import_tasks() {
    let s = one_host();
    s.write("inc.yml", "- debug: msg=\"inc {{ item }} {{ extra }}\"\n");
    s.write("imp.yml", "- debug: msg=imported\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - import_tasks: imp.yml\n    - include_tasks: inc.yml\n      loop: [1, 2]\n      vars: {extra: e}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["imported", "inc 1 e", "inc 2 e"],
        "{}",
        run.stdout
    );
}

#[test]
fn run_once_serial_and_hostvars() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["a", "b", "c"]));
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  serial: 2
  tasks:
    - set_fact: {mine: 'v-{{ inventory_hostname }}'}
    - command: echo once
      run_once: true
      register: once
    - debug: msg=\"{{ hostvars['a']['mine'] | default('unset') }} {{ once.stdout }} {{ ansible_play_batch | length }}\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        ["v-a once 2", "v-a once 2", "v-a once 1"],
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("TASK [command]").count(),
        2,
        "one per serial batch"
    );
    s.write(
        "huge.yml",
        "- hosts: all\n  gather_facts: no\n  serial: [1, 1.0e+300]\n  tasks:\n    - debug: msg=\"{{ ansible_play_batch | length }}\"\n",
    );
    let run = s.settle(&["huge.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["1", "2", "2"], "{}", run.stdout);
}

#[test]
fn templates_render_byte_for_byte_like_ansible() {
    let s = one_host();
    s.write(
        "templates/t.j2",
        "a\n{% if true %}\n  b\n{% endif %}\nc\n\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - template: {src: t.j2, dest: '@@/out'}\n",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
    assert_eq!(s.read("out"), "a\n  b\nc\n\n");
}

#[test]
fn single_expressions_keep_their_type() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars: {users: [a, b], port: 80, copy_of: '{{ users }}'}\n  tasks:\n    - assert:\n        that:\n          - copy_of | length == 2\n          - port + 1 == 81\n          - (copy_of | first) == 'a'\n",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn free_strategy_and_any_errors_fatal() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["a", "b"]));
    s.write("free.yml", "- hosts: all\n  strategy: free\n  gather_facts: no\n  tasks:\n    - debug: msg={{ inventory_hostname }}\n");
    let run = s.settle(&["free.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages().len(), 2);
    s.write(
        "fatal.yml",
        "- hosts: all\n  any_errors_fatal: true\n  gather_facts: no\n  tasks:\n    - fail: msg=x\n      when: inventory_hostname == 'a'\n    - debug: msg='not reached'\n- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg='nor here'\n",
    );
    let run = s.settle(&["fatal.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert!(run.messages().iter().all(|m| m == "x"), "{}", run.stdout);
}

#[test]
fn extra_vars_from_file_and_json_win() {
    let s = one_host();
    s.write("extra.yml", "who: file\n");
    s.write("site.yml", "- hosts: all\n  gather_facts: no\n  vars: {who: play, n: 1}\n  tasks:\n    - debug: msg={{ who }}-{{ n + 1 }}\n");
    let run = s.settle(&[
        "site.yml",
        "-i",
        "hosts",
        "-e",
        "@extra.yml",
        "-e",
        "{\"n\": 41}",
    ]);
    assert_eq!(run.messages(), ["file-42"], "{}", run.stdout);
}

#[test]
fn syntax_check_and_list_tasks() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  name: P\n  tasks:\n    - name: First\n      debug: {}\n      tags: [t]\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--syntax-check"]);
    run.assert_code(0);
    assert!(run.stdout.contains("playbook: site.yml"));
    let run = s.settle(&["site.yml", "-i", "hosts", "--list-tasks"]);
    assert!(
        run.stdout
            .contains("  play #1 (all): P\tTAGS: []\n    tasks:\n      First\tTAGS: [t]\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn inventory_list_and_graph() {
    let s = Scratch::new();
    s.write("hosts", "lone\n[web]\nw1 port=80\n");
    let graph = s.settle(&["inventory", "-i", "hosts", "--graph"]);
    graph.assert_code(0);
    assert_eq!(
        graph.stdout,
        "@all:\n  |--@ungrouped:\n  |  |--lone\n  |--@web:\n  |  |--w1\n"
    );
    let list = s.settle(&["inventory", "-i", "hosts", "--list"]);
    let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(json["_meta"]["hostvars"]["w1"]["port"], 80);
}

#[test]
fn interrupted_run_exits_99() {
    let s = one_host();
    s.write(
        "slow.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - pause: {seconds: 20}\n",
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["slow.yml", "-i", "hosts"])
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&out.stderr).contains("User interrupted execution"));
}

#[test]
fn copy_of_a_folder_and_template_whitespace_options() {
    let s = one_host();
    s.write("files/tree/a.txt", "a\n");
    s.write("files/tree/sub/b.txt", "b\n");
    s.write(
        "templates/t.j2",
        "x\n  {% if true %}\ny\n  {% endif %}\nz\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - copy: {src: tree, dest: '@@/out/', directory_mode: '0750'}
    - copy: {src: tree/, dest: '@@/flat'}
    - template: {src: t.j2, dest: '@@/lstrip', lstrip_blocks: yes}
    - template: {src: t.j2, dest: '@@/default'}
",
    );
    let first = s.settle(&["site.yml", "-i", "hosts"]);
    first.assert_code(0);
    assert_eq!(first.recap("h1")["changed"], 4, "{}", first.stdout);
    assert_eq!(s.read("out/tree/sub/b.txt"), "b\n");
    assert_eq!(s.read("flat/a.txt"), "a\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.path("out/tree/sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o750
    );
    assert_eq!(s.read("lstrip"), "x\ny\nz\n");
    assert_eq!(s.read("default"), "x\n  y\n  z\n");
    let second = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(second.recap("h1")["changed"], 0, "{}", second.stdout);
}

#[test]
fn no_log_hides_secrets_in_results_loop_labels_and_diffs_but_keeps_them_usable() {
    let s = one_host();
    s.write("templates/secret.j2", "password={{ secret }}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  vars: {secret: hunter2-secret}
  tasks:
    - template: {src: secret.j2, dest: '@@/secret.conf'}
      no_log: true
    - command: echo {{ item.password }}
      loop:
        - {user: a, password: '{{ secret }}'}
        - {user: b, password: '{{ secret }}'}
      when: item.user == 'a'
      register: echoed
      no_log: true
    - debug: msg={{ echoed.results[0].stdout | length }}
    - command: 'false {{ secret }}'
      no_log: true
      ignore_errors: true
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--diff"]);
    run.assert_code(0);
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("changed: [h1] => (item=(censored due to no_log))")
            && run
                .stdout
                .contains("skipping: [h1] => (item=(censored due to no_log))"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\"msg\": 14"), "{}", run.stdout);
    assert_eq!(s.read("secret.conf"), "password=hunter2-secret\n");
}

#[test]
fn host_output_is_never_rendered_again() {
    // A host that prints template syntax must not make the controller evaluate it: not the
    // registered result, not a set_fact copy of it, not a loop item (Ansible 2.19's trust rule).
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    secret: controller-secret
  tasks:
    - shell: printf '%s\n' '{{ "{{" }} secret {{ "}}" }}' '{{ "{{" }} lookup("pipe", "echo pwned") {{ "}}" }}' '{{ "{{" }} r.stdout {{ "}}" }}'
      register: r
    - set_fact:
        copied: "{{ r.stdout_lines[0] }}"
    - copy:
        dest: "@@/out.txt"
        content: "{{ r.stdout }}|{{ copied }}"
    - debug: msg="{{ item }}"
      loop: "{{ r.stdout_lines }}"
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let written = s.read("out.txt");
    assert_eq!(
        written,
        "{{ secret }}\n{{ lookup(\"pipe\", \"echo pwned\") }}\n{{ r.stdout }}|{{ secret }}"
    );
    assert!(!run.stdout.contains("controller-secret"), "{}", run.stdout);
    assert!(!run.stdout.contains("\"msg\": \"pwned\""), "{}", run.stdout);
}

#[test]
fn host_facts_and_environment_are_never_rendered_again() {
    // Template syntax in what the host reports about itself (a local `.fact` file, an
    // environment variable, both gathered as facts) is text, not a template: not when shown,
    // written, copied by set_fact or tested in a condition.
    let s = one_host();
    s.write(
        "facts.d/evil.fact",
        r#"{"v": "{{ secret }}", "p": "{{ lookup('pipe', 'echo pwned') }}"}"#,
    );
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    secret: controller-secret
  tasks:
    - setup:
        fact_path: "@@/facts.d"
    - set_fact:
        copied: "{{ ansible_env.SETTLE_EVIL }}"
    - copy:
        dest: "@@/out.txt"
        content: "{{ ansible_local.evil.v }}|{{ ansible_local.evil.p }}|{{ ansible_facts.env.SETTLE_EVIL }}|{{ copied }}"
    - debug: var=ansible_local
    - debug: msg="{{ ansible_env.SETTLE_EVIL }}"
      when: ansible_env.SETTLE_EVIL is search('secret')
"#,
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("SETTLE_EVIL", "{{ secret }}")],
    );
    run.assert_code(0);
    assert_eq!(
        s.read("out.txt"),
        "{{ secret }}|{{ lookup('pipe', 'echo pwned') }}|{{ secret }}|{{ secret }}"
    );
    assert!(!run.stdout.contains("controller-secret"), "{}", run.stdout);
    assert!(!run.stdout.contains("pwned\""), "{}", run.stdout);
    assert!(
        run.stdout.contains("\"msg\": \"{{ secret }}\""),
        "{}",
        run.stdout
    );
}

#[test]
fn multi_line_shell_runs_as_written() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: |\n        if true; then\n            printf '%s|' 'a  b'\n        fi\n        echo end\n      register: r\n    - copy: dest=@@/out.txt content={{ r.stdout }}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("out.txt"), "a  b|end");
}

#[test]
fn conditions_must_be_booleans_as_in_ansible_2_19() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars:\n    computed: \"{{ 1 == 1 }}\"\n  tasks:\n    - debug: msg=from-string\n      when: flag\n      ignore_errors: true\n    - debug: msg=from-template\n      when: computed\n    - debug: msg=after\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-e", "flag=false"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("Conditional result (True) was derived from value of type 'str'"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("...ignoring"), "{}", run.stdout);
    assert!(
        run.stdout.contains("\"msg\": \"from-template\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\"msg\": \"after\""), "{}", run.stdout);
}

#[test]
fn no_log_fails_closed_and_hides_early_errors() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars:\n    password: hunter2-secret\n  tasks:\n    - debug: msg={{ password }}\n      no_log: \"{{ undefined_thing }}\"\n    - debug: msg=x\n      loop: \"{{ password | int + missing }}\"\n      no_log: true\n      ignore_errors: true\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not a boolean; its output is hidden"),
        "{}",
        run.stderr
    );
    // A no_log that renders to something that is not a boolean hides as well, and says so.
    s.write(
        "odd.yml",
        "- hosts: all\n  gather_facts: no\n  vars:\n    password: hunter2-secret\n  tasks:\n    - debug: msg={{ password }}\n      no_log: \"{{ 'perhaps' }}\"\n    - debug: msg={{ password }}\n      no_log: [1]\n",
    );
    let run = s.settle(&["odd.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert_eq!(
        run.stderr
            .matches("is not a boolean; its output is hidden")
            .count(),
        2,
        "{}",
        run.stderr
    );
    // An unreachable host's loop items are results too (Ansible's no_log target).
    s.write(
        "fake",
        "fake ansible_connection=ssh ansible_host=settle-no-such-host.invalid\n",
    );
    s.write(
        "down.yml",
        "- hosts: fake\n  gather_facts: no\n  tasks:\n    - lineinfile: path=/dev/null line={{ item }}\n      loop: [hunter2-secret]\n      no_log: true\n",
    );
    let run = s.settle(&["down.yml", "-i", "fake", "-vvv"]);
    assert!(run.stdout.contains("UNREACHABLE"), "{}", run.stdout);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn a_handler_can_include_a_task_file() {
    let s = one_host();
    s.write(
        "cleanup.yml",
        "- copy: dest=@@/cleaned content={{ what }}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: \"true\"\n      notify: clean up\n  handlers:\n    - name: clean up\n      include_tasks: cleanup.yml\n      vars:\n        what: done\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("cleaned"), "done");
    assert!(
        run.stdout.contains("RUNNING HANDLER [clean up]"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_play_whose_hosts_all_failed_ends_the_run() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - fail: msg=boom\n- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=second\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(
        run.stdout.matches("PLAY [all]").count(),
        1,
        "{}",
        run.stdout
    );
    // Scripts read Ansible's output: nothing of settle's own after the recap.
    assert!(
        run.stdout.trim_end().ends_with("ignored=0"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_task_timeout_ends_the_command_and_fails_the_task() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: sleep 30 | cat\n      timeout: 1\n      register: r\n      ignore_errors: true\n    - copy: dest=@@/out.txt content={{ r.msg }}|{{ r.timedout.period }}\n    - command: sleep 1\n      timeout: -1\n      ignore_errors: true\n      register: bad\n    - copy: dest=@@/bad.txt content={{ bad.msg }}\n",
    );
    let started = std::time::Instant::now();
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        started.elapsed().as_secs() < 20,
        "the command was not ended"
    );
    assert_eq!(s.read("out.txt"), "Timed out after 1 second|1");
    assert!(s.read("bad.txt").starts_with("Timeout -1 is invalid"));
}

#[test]
fn a_large_stdin_does_not_hang_a_command() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: cat\n      args:\n        stdin: \"{{ 'x' * 1048576 }}\"\n      register: r\n    - copy: dest=@@/len.txt content=\"{{ r.stdout | length }} bytes\"\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("len.txt"), "1048576 bytes");
}

#[test]
fn include_role_is_dynamic_with_its_loop_and_handlers() {
    let s = one_host();
    s.write(
        "roles/web/tasks/main.yml",
        "- copy: dest=@@/{{ site }}.txt content={{ site }}\n  notify: reload web\n",
    );
    s.write(
        "roles/web/handlers/main.yml",
        "- name: reload web\n  copy: dest=@@/reloaded content=yes\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars:\n    role_name: web\n  tasks:\n    - include_role:\n        name: \"{{ role_name }}\"\n      loop: [a, b]\n      loop_control:\n        loop_var: site\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("a.txt"), "a");
    assert_eq!(s.read("b.txt"), "b");
    assert_eq!(s.read("reloaded"), "yes");
    assert!(
        run.stdout.contains("TASK [include_role : {{ role_name }}]")
            && run.stdout.contains("included: web for h1 => (item=a)"),
        "{}",
        run.stdout
    );
}

#[test]
fn unsafe_values_are_never_templates_and_duplicate_keys_warn() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars:\n    secret: s3cret\n    raw: !unsafe 'x{{ secret }}'\n    raw: !unsafe 'y{{ secret }}'\n  tasks:\n    - copy: dest=@@/out.txt content={{ raw }}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("out.txt"), "y{{ secret }}");
    assert!(
        run.stderr
            .contains("[WARNING]: Found duplicate mapping key 'raw'."),
        "{}",
        run.stderr
    );
}

#[test]
fn role_vars_and_defaults_are_visible_to_the_whole_play() {
    let s = one_host();
    s.write("roles/web/defaults/main.yml", "web_port: 8080\n");
    s.write("roles/web/vars/main.yml", "web_user: www\n");
    s.write("roles/web/tasks/main.yml", "- debug: msg=in-role\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [web]\n  tasks:\n    - copy: dest=@@/out.txt content={{ web_user }}:{{ web_port }}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("out.txt"), "www:8080");
}

#[test]
fn a_missing_role_or_imported_file_exits_1_as_ansible_playbook() {
    let s = one_host();
    s.write("role.yml", "- hosts: all\n  roles: [nosuchrole]\n");
    s.write(
        "import.yml",
        "- hosts: all\n  tasks:\n    - import_tasks: nosuch.yml\n",
    );
    for playbook in ["role.yml", "import.yml"] {
        let run = s.settle(&[playbook, "-i", "hosts"]);
        run.assert_code(1);
        // One error, with where it is as Ansible shows it (Origin and the source lines).
        assert_eq!(run.stderr.matches("[ERROR]").count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("\nOrigin: "), "{}", run.stderr);
    }
}

#[test]
fn ansible_cfg_is_read_as_ansible_reads_it() {
    let s = one_host();
    s.write(
        "ansible.cfg",
        "[defaults]\ninventory = hosts\nroles_path = shared_roles\nforks = 1\nno_such_setting = 1\n\n[ssh_connection]\npipelining = True\n",
    );
    s.write(
        "shared_roles/hello/tasks/main.yml",
        "- copy: dest=@@/hello content=hi\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [hello]\n",
    );
    // No -i: the inventory comes from ansible.cfg, as with ansible-playbook.
    let run = s.settle(&["site.yml"]);
    run.assert_code(0);
    assert_eq!(s.read("hello"), "hi");
    assert!(
        run.stderr
            .contains("does not know the setting [defaults] no_such_setting"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pipelining"), "{}", run.stderr);
    // The environment wins over the file.
    let run = s.settle_with_env(&["site.yml"], &[("ANSIBLE_ROLES_PATH", "/nonexistent")]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("the role 'hello' was not found in ")
            && run.stderr.contains(":/nonexistent:"),
        "{}",
        run.stderr
    );
}

#[test]
fn add_host_and_group_by_change_the_inventory_for_later_plays() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["w1", "w2"]));
    s.write("group_vars/dyn.yml", "from_group_vars: hello\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - add_host: {name: 'new{{ item }}:2222', groups: 'extra, more', ansible_connection: local, color: blue}
      loop: [1, 2]
      register: added
    - add_host: {name: new1, groups: extra}
      register: again
    - group_by: key=dyn
      when: inventory_hostname == 'w1'
      register: grouped
    - debug: {msg: \"{{ added.results | map(attribute='changed') | list }} {{ again.changed }} {{ groups['all'] }}\"}
      when: inventory_hostname == 'w1'
- hosts: extra
  gather_facts: no
  tasks:
    - debug: {msg: '{{ color }} {{ ansible_ssh_port }} {{ group_names }}'}
- hosts: dyn
  gather_facts: no
  tasks:
    - debug: {msg: '{{ from_group_vars }} {{ group_names }}'}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    // add_host runs once (first host), changed only when the inventory changed; added hosts
    // come first in groups['all'], as Ansible puts them in `all` itself.
    assert!(
        run.stdout
            .contains("changed: [w1] => (item=1)\nchanged: [w1] => (item=2)\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("\"msg\": \"[True, True] False ['new1', 'new2', 'w1', 'w2']\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("\"msg\": \"blue 2222 ['extra', 'more']\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok: [w1] => {\n    \"msg\": \"hello ['dyn', 'group']\""),
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("w1")["changed"], 2, "{}", run.stdout);
    assert_eq!(run.recap("new1")["ok"], 1, "{}", run.stdout);
}

#[test]
fn set_stats_are_kept_and_shown_as_ansible_shows_them() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - set_stats: {data: {n: 10, l: [1], d: {a: 1}, s: x}}
    - set_stats: {data: {n: 15, l: [2], d: {b: 2}, s: y}}
    - set_stats: {data: {mine: 1}, per_host: yes}
    - set_stats: {data: [1]}
      ignore_errors: true
      register: bad
    - assert: {that: [\"bad.msg == \\\"The 'data' option needs to be a dictionary/hash\\\"\", bad.exception is defined]}
",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("ANSIBLE_SHOW_CUSTOM_STATS", "yes")],
    );
    run.assert_code(0);
    assert!(run.stdout.ends_with("CUSTOM STATS: ******************************************************************\n\th1: { \"mine\": 1}\n\n\tRUN: { \"d\": {  \"a\": 1,  \"b\": 2 }, \"l\": [  1,  2 ], \"n\": 25, \"s\": \"xy\"}\n\n"), "{}", run.stdout);
    let quiet = s.settle(&["site.yml", "-i", "hosts"]);
    assert!(!quiet.stdout.contains("CUSTOM STATS"), "{}", quiet.stdout);
}

#[test]
fn conditions_that_fail_to_evaluate_keep_the_module_result() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: echo foo
      changed_when: boom
      register: c
      ignore_errors: true
    - shell: exit 1
      failed_when: false
      register: f
    - assert:
        that:
          - c is failed and c.stdout == 'foo' and c.exception is defined
          - c.changed_when_result is contains('Error while evaluating conditional')
          - f is not failed and f.failed_when_suppressed_exception is defined
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    // The exception is registered, never printed.
    assert!(
        !run.stdout.contains("traceback unavailable"),
        "{}",
        run.stdout
    );
}

/// Starts `settle site.yml -i hosts` in the scratch folder, waits until `ready` exists there,
/// sends `signal`, and returns the finished run.
fn interrupt_when(s: &Scratch, ready: &str, signal: libc::c_int) -> common::Run {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["site.yml", "-i", "hosts"])
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start settle");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.path(ready).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{ready} never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child we started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let output = child.wait_with_output().expect("wait for settle");
    common::Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

#[test]
fn sigterm_ends_running_commands_and_prints_the_recap_so_far() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - shell: 'echo $$ > @@/pid.tmp && mv @@/pid.tmp @@/pid && sleep 300 | cat'
    - file: {path: '@@/never', state: touch}
",
    );
    let run = interrupt_when(&s, "pid", libc::SIGTERM);
    assert_eq!(run.code, 143, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("PLAY RECAP"), "{}", run.stdout);
    assert!(
        run.stderr.contains("[ERROR]: User interrupted execution"),
        "{}",
        run.stderr
    );
    assert!(!s.path("never").exists(), "no task starts after the signal");
    let shell: String = s.read("pid").trim().to_string();
    assert!(
        !std::path::Path::new(&format!("/proc/{shell}")).exists(),
        "the command's shell {shell} was ended"
    );
}

#[test]
fn ctrl_c_during_a_copy_leaves_no_temporary_file() {
    let s = one_host();
    for i in 0..400 {
        s.write(&format!("files/many/f{i}.txt"), &"x".repeat(4096));
    }
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - copy: {src: many/, dest: '@@/out/'}
    - file: {path: '@@/never', state: touch}
",
    );
    // The issue saw leftovers in 3 of 8 tries: interrupted at eight points of the copy, from a
    // fresh folder each time.
    for at in [1, 120, 15, 200, 23, 260, 3, 333] {
        let _ = std::fs::remove_dir_all(s.path("out"));
        let run = interrupt_when(&s, &format!("out/f{at}.txt"), libc::SIGINT);
        assert_eq!(run.code, 99, "at f{at}:\n{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("PLAY RECAP"), "{}", run.stdout);
        assert!(!s.path("never").exists());
        let leftovers: Vec<_> = std::fs::read_dir(s.path("out"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("settle-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "at f{at}: {leftovers:?}");
    }
}

#[test]
fn backup_keeps_archives_inside_its_source_out_of_the_next_archive() {
    let s = one_host();
    s.write("data/app.conf", "port=1\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - backup: {src: '@@/data', dest: '@@/data/backups', keep: 3}\n",
    );
    let first = s.settle(&["site.yml", "-i", "hosts"]);
    first.assert_code(0);
    assert_eq!(first.recap("h1")["changed"], 1, "{}", first.stdout);
    for _ in 0..2 {
        let again = s.settle(&["site.yml", "-i", "hosts"]);
        again.assert_code(0);
        assert_eq!(again.recap("h1")["changed"], 0, "{}", again.stdout);
    }
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - backup: {src: '@@/data', dest: '@@/data/'}\n",
    );
    let same = s.settle(&["site.yml", "-i", "hosts"]);
    same.assert_code(2);
    assert!(
        same.stdout.contains("is the source folder itself"),
        "{}",
        same.stdout
    );
}

/// Root can become any user with su without a password: the tests that really switch users run
/// only then (CI runs as root; `nobody`'s shell is nologin, hence `-s /bin/sh`).
fn root_with_su() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let su = ["/bin/su", "/usr/bin/su"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !(root && su) {
        eprintln!("skipped: needs root and su");
    }
    root && su
}

#[test]
fn become_on_the_local_connection_runs_the_module_as_that_user() {
    if !root_with_su() {
        return;
    }
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  become: true
  become_method: su
  become_flags: -s /bin/sh
  tasks:
    - command: id -un
      become_user: nobody
      register: other
      changed_when: false
    - command: id -un
      register: me
      changed_when: false
    - command: id -un
      become_user: nobody
      register: again
      changed_when: false
    - debug: msg='{{ other.stdout }} {{ me.stdout }} {{ again.stdout }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["nobody root nobody"], "{}", run.stdout);
}

#[test]
fn become_to_an_unknown_user_fails_the_task_with_su_s_words() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: id -un
      become: true
      become_user: no-such-user-settle
      become_method: su
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert!(
        run.stdout.contains(
            "Premature end of stream waiting for become success.\\n>>> Standard Output\\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn become_variables_win_over_keywords_and_an_omitted_keyword_inherits() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  become: true
  become_user: no-such-user-settle
  become_method: su
  tasks:
    - command: id -un
      vars: {ansible_become: false}
    - command: id -un
      become: false
    - command: id -un
      become: '{{ omit }}'
      ignore_errors: true
      register: inherited
    - assert: {that: [inherited is failed]}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (4, 2, 0, 0, 0, 1), "{}", run.stdout);
}

#[test]
fn an_unsupported_become_method_is_named_before_the_run() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  become_method: doas\n  tasks:\n    - debug: msg=hi\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("become_method \"doas\" is not supported; settle becomes with sudo or su"),
        "{}",
        run.stderr
    );
}

/// A stand-in for su that asks for a password ("right") and then runs the command as the same
/// user: the password dialogue without root or a second account.
const FAKE_SU: &str = "#!/bin/sh
printf 'Password: '
read -r pw
[ \"$pw\" = right ] || { echo 'su: Authentication failure'; exit 1; }
while [ \"$1\" != -c ]; do shift; done
exec /bin/sh -c \"$2\"
";

#[test]
fn su_s_password_prompt_is_answered_and_a_wrong_password_named() {
    let s = one_host();
    s.write("fake-su", FAKE_SU);
    std::fs::set_permissions(
        s.path("fake-su"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    ansible_become: true
    ansible_become_method: su
    ansible_become_user: someone-else
    ansible_become_exe: '@@/fake-su'
  tasks:
    - command: echo through
      vars: {ansible_become_password: right}
      register: good
    - command: echo through
      vars: {ansible_become_password: wrong}
      register: wrong
      ignore_errors: true
    - command: echo through
      register: missing
      ignore_errors: true
    - command: echo through
      vars:
        ansible_become_password: right
        ansible_su_prompt_l10n: [NOT_A_VALID_PROMPT]
        ansible_local_become_success_timeout: 1
      register: stalled
      ignore_unreachable: true
    - debug: msg='{{ good.stdout }}'
    - debug: msg='{{ wrong.msg }}'
    - debug: msg='{{ missing.msg }}'
    - debug: msg='{{ stalled.msg }} {{ stalled is unreachable }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let msgs = run.messages();
    assert_eq!(msgs[0], "through", "{}", run.stdout);
    assert!(
        msgs[1].starts_with("Incorrect su password"),
        "{}",
        run.stdout
    );
    assert!(msgs[2].starts_with("Missing su password"), "{}", run.stdout);
    assert!(
        msgs[3].starts_with(
            "Task failed: Timed out waiting for become success or become password prompt."
        ) && msgs[3].ends_with(" True"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("right\n") && !run.stderr.contains("wrong"));
}

/// A play on the local host whose async jobs keep their files in the scratch folder.
fn async_play(tasks: &str) -> Scratch {
    let s = one_host();
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  vars: {{ansible_async_dir: '@@/jobs'}}\n  tasks:\n{}",
            tasks
                .lines()
                .map(|line| format!("    {line}\n"))
                .collect::<String>()
        ),
    );
    s
}

#[test]
fn async_with_poll_waits_and_registers_the_modules_result() {
    let s = async_play(
        "\
- shell: echo hi; sleep 1
  async: 10
  poll: 1
  register: r
- assert:
    that:
      - r is finished and r.finished == 1 and r.started
      - r is changed and r.rc == 0 and r.stdout == 'hi' and r.stdout_lines == ['hi']
      - r.ansible_job_id is match('j\\d+\\.\\d+')
      - r.results_file == '@@/jobs/' ~ r.ansible_job_id
- stat: path={{ r.results_file }}
  register: job_file
- assert: {that: not job_file.stat.exists}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("ASYNC OK on h1: jid=j"),
        "{}",
        run.stdout
    );
    assert_eq!(run.counts("h1"), (4, 1, 0, 0, 0, 0), "{}", run.stdout);
}

#[test]
fn fire_and_forget_then_async_status_until_finished() {
    let s = async_play(
        "\
- shell: sleep 1 && echo done > @@/{{ item }}
  loop: [a, b]
  async: 30
  poll: 0
  register: jobs
- assert:
    that:
      - jobs.results | map(attribute='started') | list == [true, true]
      - jobs.results | map(attribute='finished') | list == [false, false]
      - jobs.results[0] is not finished and jobs.results[0] is changed
- async_status: jid={{ item.ansible_job_id }}
  loop: '{{ jobs.results }}'
  register: polled
  until: polled is finished
  retries: 20
  delay: 0.5
- assert:
    that:
      - polled.results | map(attribute='rc') | list == [0, 0]
      - lookup('file', '@@/a') == 'done'
- async_status:
    jid: '{{ jobs.results[0].ansible_job_id }}'
    mode: cleanup
  register: cleaned
- async_status: jid={{ jobs.results[0].ansible_job_id }}
  register: gone
  ignore_errors: true
- assert:
    that:
      - cleaned.erased == '@@/jobs/' ~ jobs.results[0].ansible_job_id
      - gone is failed and gone.msg == 'could not find job'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["ignored"], 1, "{}", run.stdout);
}

#[test]
fn async_job_past_its_time_fails_the_task_and_is_killed() {
    let s = async_play(
        "\
- shell: sleep 3 && touch @@/late
  async: 1
  poll: 1
  register: slow
  ignore_errors: true
- assert:
    that:
      - slow is failed
      - slow.msg == 'async task did not complete within the requested time - 1s'
- async_status: jid={{ slow.async_result.ansible_job_id }}
  register: job
  until: job is finished
  ignore_errors: true
  retries: 10
  delay: 0.5
- assert:
    that:
      - job is failed and job.msg == 'Timeout exceeded'
- command: sleep 3
- stat: path=@@/late
  register: late
- assert: {that: not late.stat.exists}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("ASYNC FAILED on h1: jid=j"),
        "{}",
        run.stdout
    );
}

#[test]
fn async_is_refused_by_actions_that_cannot_run_in_the_background() {
    let s = async_play(
        "\
- debug: msg=hi
  async: 10
  register: d
  ignore_errors: true
- assert: {that: \"d.msg == 'This action (debug) does not support async.'\"}
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn async_in_check_mode_runs_the_module_in_check_mode() {
    let s = async_play(
        "\
- command: touch @@/never
  async: 10
  poll: 1
  register: r
- assert:
    that:
      - r is skipped and r is finished
      - r.msg == 'Command would have run if not in check mode'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--check"]);
    run.assert_code(0);
    assert!(!s.path("never").exists());
}

#[test]
fn module_defaults_merge_by_module_from_play_to_task() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  module_defaults:
    ansible.builtin.file: {mode: '0600'}
    debug: {msg: \"play {{ 'default' }}\"}
  tasks:
    - debug:
    - file: {path: '@@/f', state: touch}
    - stat: {path: '@@/f'}
      register: st
    - assert: {that: st.stat.mode == '0600'}
    - block:
        - debug:
        - debug:
          module_defaults:
            debug: {}
        - file: {path: '@@/g', state: touch, mode: '0640'}
      module_defaults:
        debug: {msg: block}
    - debug: {var: st.stat.mode}
      ignore_errors: true
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let msgs: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("    \"msg\"") && !l.contains("assertions"))
        .collect();
    assert_eq!(
        msgs,
        [
            "    \"msg\": \"play default\"",
            "    \"msg\": \"block\"",
            "    \"msg\": \"Hello world!\"",
        ],
        "{}",
        run.stdout
    );
    // The task's own arguments win; msg from the defaults and var of the task clash, as in Ansible.
    assert!(
        run.stdout
            .contains("parameters are mutually exclusive: msg|var"),
        "{}",
        run.stdout
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(s.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("f"), mode("g")), (0o600, 0o640));
}

#[test]
fn a_module_name_may_be_a_template() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2"]));
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars: {prefix: ansible.builtin.}
  tasks:
    - set_fact: {m: \"{{ 'debug' if inventory_hostname == 'h1' else 'ping' }}\"}
    - action: {module: '{{ m }}'}
      register: out
    - assert: {that: \"('msg' in out) == (inventory_hostname == 'h1') and ('ping' in out) == (inventory_hostname == 'h2')\"}
    - action: '{{ prefix }}file path=@@/made-{{ inventory_hostname }} state=touch'
    - action: {module: '{{ undefined_module_var }}'}
      ignore_errors: true
      register: bad
    - assert: {that: bad is failed}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(s.path("made-h1").exists() && s.path("made-h2").exists());
}

// ---- Every other module: Ansible's own code ----

/// One local host whose modules run with ansible-core's Python, and settle told where it is.
fn host_with_ansible_core(python: &str) -> Scratch {
    let s = Scratch::new();
    s.write(
        "hosts",
        &format!(
            "{}\n[all:vars]\nansible_python_interpreter={python}\n",
            local_inventory(&["h1"])
        ),
    );
    s
}

const HELLO_MODULE: &str = r#"#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule

def main():
    module = AnsibleModule(
        argument_spec=dict(name=dict(type='str', required=True),
                           secret=dict(type='str', no_log=True),
                           fail=dict(type='str', default='no')),
        supports_check_mode=True,
    )
    if module.params['fail'] == 'gracefully':
        module.fail_json(msg='asked to fail: %s' % module.params['name'])
    if module.params['fail'] == 'raise':
        raise Exception('it broke')
    module.exit_json(changed=not module.check_mode, greeting='hello ' + module.params['name'],
                     check_mode=module.check_mode, ansible_facts=dict(greeted=module.params['name']))

main()
"#;

#[test]
fn a_library_module_beside_the_playbook_runs_as_ansible_runs_it() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = host_with_ansible_core(&python);
    s.write("library/hello.py", HELLO_MODULE);
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - hello: name=world\n      register: r\n      notify: greeted\n    - assert:\n        that:\n          - r is changed\n          - r.greeting == 'hello world'\n          - greeted == 'world'\n          - r.invocation is undefined\n    - name: a secret\n      hello: {name: x, secret: hunter2}\n      no_log: true\n  handlers:\n    - name: greeted\n      debug: {msg: handler ran}\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "--report", "json=report.json"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (4, 2, 0, 0, 0, 0), "{}", run.stdout);
    assert!(
        run.messages().contains(&"handler ran".to_string()),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    let report: serde_json::Value = serde_json::from_str(&s.read("report.json")).unwrap();
    let first = &report["results"][0];
    assert!(
        first["ansible_module"]
            .as_str()
            .unwrap()
            .ends_with("library/hello.py"),
        "{first}"
    );
    assert!(report["results"][1].get("ansible_module").is_none());
}

#[test]
fn check_mode_reaches_ansibles_module_and_an_unsupporting_one_skips() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = host_with_ansible_core(&python);
    s.write("library/hello.py", HELLO_MODULE);
    s.write(
        "library/no_check.py",
        "from ansible.module_utils.basic import AnsibleModule\nAnsibleModule(argument_spec={}).exit_json(changed=True)\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - hello: name=world\n      register: r\n    - assert: {that: [r.check_mode, r is not changed]}\n    - no_check:\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "--check"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (2, 0, 0, 1, 0, 0), "{}", run.stdout);
}

#[test]
fn an_ansible_core_module_settle_lacks_converges_and_keeps_check_mode_honest() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = host_with_ansible_core(&python);
    s.write("source.txt", "payload\n");
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.yum_repository:\n        name: settle\n        description: settle test\n        baseurl: file://{root}/repo\n        reposdir: {root}\n",
            root = s.root()
        ),
    );
    let env = [("SETTLE_ANSIBLE_PYTHON", python.as_str())];
    let run = s.settle_with_env(&["site.yml", "-i", "hosts", "--check"], &env);
    run.assert_code(0);
    assert!(!s.path("settle.repo").exists(), "check mode wrote the file");
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &env);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["changed"], 1, "{}", run.stdout);
    assert!(s.read("settle.repo").contains("baseurl = file://"));
    s.settle_with_env(&["site.yml", "-i", "hosts"], &env)
        .assert_code(0)
        .assert_unchanged(&["h1"]);
}

#[test]
fn a_failing_ansible_module_fails_the_task_with_its_message() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = host_with_ansible_core(&python);
    s.write("library/hello.py", HELLO_MODULE);
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - hello: {name: x, fail: gracefully}\n      register: graceful\n      ignore_errors: true\n    - hello: {name: x, fail: raise}\n      register: raised\n      ignore_errors: true\n    - hello: {name: x, bogus: 1}\n      register: bad_args\n      ignore_errors: true\n    - assert:\n        that:\n          - \"graceful.msg == 'asked to fail: x'\"\n          - \"raised.msg == 'Task failed: Module failed: it broke'\"\n          - bad_args.msg is search('Unsupported parameters for [(]hello[)] module')\n          - bad_args.msg is search('bogus')\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (4, 0, 0, 0, 0, 3), "{}", run.stdout);
}

#[test]
fn an_old_style_library_module_needs_no_ansible_core() {
    let s = one_host();
    s.write(
        "library/shout.sh",
        "#!/bin/sh\n# WANT_JSON\necho 'noise before'\nprintf '{\"changed\": true, \"args\": %s, \"internal\": \"%s\"}\\n' \"$(cat \"$1\")\" \"$(grep -c _ansible_check_mode \"$1\")\"\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shout: {word: hey}\n      register: r\n    - assert: {that: [r is changed, r.args.word == 'hey', r.internal == '1', r.args._ansible_check_mode is not defined]}\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("SETTLE_ANSIBLE_PYTHON", "/nonexistent/python3")],
    );
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (2, 1, 0, 0, 0, 0), "{}", run.stdout);
}

#[test]
fn without_ansible_core_the_error_names_the_module_and_how_to_get_it() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: fetch it\n      yum_repository: {name: x, description: x, baseurl: 'http://example.com/'}\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("SETTLE_ANSIBLE_PYTHON", "/nonexistent/python3")],
    );
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("task \"fetch it\": the module \"yum_repository\" is not known to settle")
            && run.stderr.contains("pip install ansible-core"),
        "{}",
        run.stderr
    );
}

#[test]
fn script_runs_a_controller_file_on_the_host_and_creates_makes_it_idempotent() {
    let s = one_host();
    s.write(
        "files/make.sh",
        "#!/bin/sh\necho \"made $2\" > \"$1\"\necho out; echo err >&2\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - script: make.sh @@/made 'two words'
      args: {creates: '@@/made'}
      register: r
    - assert:
        that:
          - r.rc == 0
          - r.stdout == 'out\\n' and r.stdout_lines == ['out']
          - r.stderr_lines == ['err']
      when: r is changed and not ansible_check_mode
    - script: {cmd: missing.sh}
      register: m
      ignore_errors: true
    - assert: {that: [m is failed, \"'missing.sh' in m.msg\"]}
",
    );
    let first = s.settle(&["site.yml", "-i", "hosts"]);
    first.assert_code(0);
    assert_eq!(first.recap("h1")["changed"], 1, "{}", first.stdout);
    assert_eq!(s.read("made"), "made two words\n");
    let second = s.settle(&["site.yml", "-i", "hosts"]);
    second.assert_code(0);
    assert_eq!(second.recap("h1")["changed"], 0, "{}", second.stdout);
    assert_eq!(second.recap("h1")["skipped"], 2, "{}", second.stdout);
    std::fs::remove_file(s.path("made")).unwrap();
    let check = s.settle(&["site.yml", "-i", "hosts", "--check"]);
    check.assert_code(0);
    assert_eq!(check.recap("h1")["changed"], 1, "{}", check.stdout);
    assert!(!s.path("made").exists(), "check mode runs no script");
}

#[test]
fn fetch_copies_into_a_folder_per_host_and_a_second_run_changes_nothing() {
    let s = one_host();
    s.write("remote/orig", "test");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - fetch: {src: '@@/remote/orig', dest: '@@/fetched'}
      register: f
    - fetch: {src: '@@/remote/orig', dest: '@@/flat/', flat: yes}
    - fetch: {src: '@@/remote/nope', dest: '@@/fetched', fail_on_missing: no}
      register: missing
    - fetch: {src: '@@/remote', dest: '@@/fetched'}
      register: dir
      ignore_errors: true
    - assert:
        that:
          - f.checksum == 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3'
          - missing is not failed and missing.msg is search('ignored')
          - dir is failed and dir.msg is search('is a directory')
      when: not ansible_check_mode
    - assert: {that: [f is skipped, \"f.msg is search('not \\\\(yet\\\\) supported')\"]}
      when: ansible_check_mode
",
    );
    let first = s.settle(&["site.yml", "-i", "hosts"]);
    first.assert_code(0);
    assert_eq!(first.recap("h1")["changed"], 2, "{}", first.stdout);
    let fetched = format!("fetched/h1{}/remote/orig", s.root());
    assert_eq!(s.read(&fetched), "test");
    assert_eq!(s.read("flat/orig"), "test");
    let second = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(second.recap("h1")["changed"], 0, "{}", second.stdout);
    s.write(&fetched, "drifted");
    let check = s.settle(&["site.yml", "-i", "hosts", "--check"]);
    check.assert_code(0);
    assert_eq!(s.read(&fetched), "drifted", "check mode skips fetch");
    let third = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(third.recap("h1")["changed"], 1, "{}", third.stdout);
    assert_eq!(s.read(&fetched), "test");
}

#[test]
fn host_data_is_never_a_condition() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    written: '1 == 1'
  tasks:
    - shell: echo \"lookup('pipe', 'touch @@/bang') == ''\"
      register: out
    - debug: {msg: never}
      when: '{{ out.stdout }}'
      ignore_errors: true
      register: whole
    - debug: {msg: never}
      when: '\"x\" in {{ out.stdout }}'
      ignore_errors: true
      register: embedded
    - assert: {that: '{{ \"1 == 1\" }}'}
      ignore_errors: true
      register: computed
    - assert:
        that:
          - whole is failed and embedded is failed and computed is failed
          - whole.msg is contains 'untrusted template or expression'
          - computed.msg is contains 'untrusted template or expression'
    # Text a person wrote is still an expression, and templates of constants still work.
    - assert: {that: ['{{ written }}', '\"{{ \"hi\" }}\" == \"hi\"']}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        !s.path("bang").exists(),
        "the host's text ran as an expression"
    );
}

#[test]
fn ask_become_pass_reads_standard_input_when_there_is_no_terminal() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {msg: ran}\n",
    );
    let run = |input: &[u8]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_settle"));
        command
            .args(["site.yml", "-i", "hosts", "-K"])
            .current_dir(s.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // SAFETY: setsid(2) in the child before exec: a session without a controlling terminal.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start settle");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let piped = run(b"s3cret\n");
    let stdout = String::from_utf8_lossy(&piped.stdout);
    assert_eq!(piped.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"msg\": \"ran\""), "{stdout}");
    assert!(
        !stdout.contains("s3cret") && !String::from_utf8_lossy(&piped.stderr).contains("s3cret")
    );
    let empty = run(b"");
    assert_ne!(empty.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&empty.stderr)
            .contains("no terminal to ask on, and nothing on standard input")
    );
}

#[test]
fn two_runs_editing_one_file_at_once_keep_every_edit() {
    let s = one_host();
    s.write("conf.txt", "");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - lineinfile: {path: '@@/conf.txt', line: '{{ tag }}-{{ item }}'}\n      loop: '{{ range(60) | list }}'\n",
    );
    let start = |tag: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
            .args(["site.yml", "-i", "hosts", "-e", &format!("tag={tag}")])
            .current_dir(s.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start settle")
    };
    let (mut a, mut b) = (start("a"), start("b"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(s.read("conf.txt").lines().count(), 120);
}

#[test]
fn config_dump_only_changed_names_settings_as_ansible_config() {
    let s = one_host();
    s.write(
        "ansible.cfg",
        "[defaults]\nforks = 7\nremote_user = deploy\nhost_key_checking = False\nvault_identity_list = a@x, b@y\n[privilege_escalation]\nbecome = True\n",
    );
    let run = s.settle_with_env(
        &["config", "dump", "--only-changed"],
        &[("ANSIBLE_TIMEOUT", "33")],
    );
    run.assert_code(0);
    let cfg = s.path("ansible.cfg").display().to_string();
    assert_eq!(
        run.stdout,
        format!(
            "CONFIG_FILE() = {cfg}\nDEFAULT_BECOME({cfg}) = True\nDEFAULT_FORKS({cfg}) = 7\n\
             DEFAULT_REMOTE_USER({cfg}) = deploy\nDEFAULT_TIMEOUT(env: ANSIBLE_TIMEOUT) = 33\n\
             DEFAULT_VAULT_IDENTITY_LIST({cfg}) = ['a@x', 'b@y']\nHOST_KEY_CHECKING({cfg}) = False\n\
             \nGALAXY_SERVERS:\n"
        )
    );
}

#[test]
fn settle_called_ansible_runs_ad_hoc_commands_as_ansible_prints_them() {
    let s = one_host();
    let ansible = s.path("ansible");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_settle"), &ansible).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&ansible)
            .args(args)
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&["all", "-i", "hosts", "-m", "ping"]),
        (
            Some(0),
            "h1 | SUCCESS => {\n    \"changed\": false,\n    \"ping\": \"pong\"\n}\n".into(),
            String::new()
        )
    );
    assert_eq!(
        run(&["h1", "-i", "hosts", "-a", "echo hi"]).1,
        "h1 | CHANGED | rc=0 >>\nhi\n"
    );
    let (code, out, _) = run(&["h1", "-i", "hosts", "-a", "false"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(2), "h1 | FAILED | rc=1 >>\nnon-zero return code\n")
    );
    let (code, _, err) = run(&["nothing", "-i", "hosts", "-m", "ping"]);
    assert_eq!(code, Some(0));
    assert!(err.contains("No hosts matched, nothing to do"), "{err}");
    assert_eq!(
        run(&["all", "-i", "hosts", "-m", "ping", "-o"]).1,
        "h1 | SUCCESS => {\"changed\": false,\"ping\": \"pong\"}\n"
    );
    assert_eq!(
        run(&["h1", "-i", "hosts", "-o", "-a", "printf 'a\\nb'"]).1,
        "h1 | CHANGED | rc=0 | (stdout) a\\nb\n"
    );
    assert_eq!(
        s.settle(&["adhoc", "h1", "-i", "hosts", "-m", "ping", "-o"])
            .stdout,
        "h1 | SUCCESS => {\"changed\": false,\"ping\": \"pong\"}\n"
    );
    // The same through the flag.
    let touch = format!("path={}/touched state=touch", s.root());
    let flag = s.settle(&["--adhoc", "h1", "-i", "hosts", "-m", "file", "-a", &touch]);
    flag.assert_code(0);
    assert!(
        flag.stdout.starts_with("h1 | CHANGED => {"),
        "{}",
        flag.stdout
    );
    assert!(s.path("touched").exists());
}

/// Whether this machine has the Python the `python` fact describes (`/usr/bin/python3`, or
/// `python3` on `PATH`): without one, Ansible's fact is absent, and so is settle's.
fn has_python3() -> bool {
    std::path::Path::new("/usr/bin/python3").is_file()
        || std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join("python3").is_file())
        })
}

#[test]
fn python_fact_describes_the_hosts_python() {
    if !has_python3() {
        return;
    }
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  tasks:
    - assert:
        that:
          - ansible_python.executable is string
          - ansible_python.has_sslcontext is boolean
          - ansible_python.type is string
          - ansible_python.version.major is number
          - ansible_python.version.minor is number
          - ansible_python.version.micro is number
          - ansible_python.version.releaselevel is string
          - ansible_python.version.serial is number
          - ansible_python.version_info | length == 5
          - ansible_python.version_info[0] == ansible_python.version.major
          - ansible_facts.python == ansible_python
          - ansible_python_version is string
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn gather_subset_and_filter_choose_the_facts_as_ansible_does() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_subset: ['!all']
  gather_timeout: 10
  tasks:
    - name: the minimal subset is gathered, hardware and network are not
      assert:
        that:
          - ansible_distribution is defined
          - ansible_user_id is defined
          - ansible_env is mapping
          - ansible_local is mapping
          - ansible_memtotal_mb is not defined
          - ansible_all_ipv4_addresses is not defined
          - ansible_facts.gather_subset == ['!all']
    - setup:
        gather_subset: '!all,!min'
        filter: 'ansible_*'
      register: nothing
    - setup:
        gather_subset: [network]
        filter: [ansible_user_*, ansible_all_ipv4*]
      register: some
    - assert:
        that:
          - nothing.ansible_facts == {}
          - some.ansible_facts.ansible_user_id is string
          - some.ansible_facts.ansible_all_ipv4_addresses is sequence
          - some.ansible_facts | reject('match', 'ansible_(user_|all_ipv4)') | list == []
    - setup:
        gather_subset: nope
      register: bad
      ignore_errors: true
    - assert:
        that:
          - bad is failed
          - bad.msg is search(\"Bad subset 'nope' given to Ansible\")
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn fact_gathering_takes_setups_module_defaults_after_its_own() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - gather_facts:
      module_defaults:
        setup: {gather_subset: '!all'}
    - assert: {that: \"gather_subset == ['!all']\"}
    - gather_facts:
      module_defaults:
        ansible.legacy.setup: {gather_subset: '!all'}
        gather_facts: {gather_subset: min}
    - assert: {that: \"gather_subset == ['min']\"}
    - gather_facts: {gather_subset: '!all,network'}
      module_defaults:
        gather_facts: {gather_subset: min}
    - assert: {that: \"gather_subset == ['!all', 'network']\"}
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
    // The play's gathering too; the play's own gather_subset wins.
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  module_defaults:
    setup: {gather_subset: '!all', filter: 'ansible_[dl]*'}
  tasks:
    - assert:
        that:
          - ansible_facts.gather_subset is not defined
          - ansible_facts.distribution is defined
          - ansible_facts.env is not defined
- hosts: all
  gather_subset: ['!all', network]
  module_defaults:
    gather_facts: {gather_subset: min, parallel: true}
  tasks:
    - assert: {that: \"ansible_facts.gather_subset == ['!all', 'network']\"}
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn local_facts_come_from_fact_path() {
    let s = one_host();
    s.write("facts.d/json.fact", "{\"answer\": 42}\n");
    s.write(
        "facts.d/prefs.fact",
        "[general]\nBar=loaded\nboth = %(bar)s 100%%\n",
    );
    s.write("facts.d/broken.fact", "not = a section\n");
    s.write("facts.d/script.fact", "#!/bin/sh\necho '{\"ran\": true}'\n");
    s.write("facts.d/failing.fact", "#!/bin/sh\nexit 3\n");
    s.write("facts.d/ignored.txt", "{}\n");
    for script in ["script.fact", "failing.fact"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            s.path("facts.d").join(script),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    s.write(
        "site.yml",
        "\
- hosts: all
  fact_path: '@@/facts.d'
  tasks:
    - assert:
        that:
          - ansible_local.json.answer == 42
          - ansible_local.prefs.general.bar == 'loaded'
          - ansible_local.prefs.general.both == 'loaded 100%'
          - ansible_local.script.ran
          - ansible_local.failing is match('Failure executing fact script')
          - ansible_local.broken is match('error loading facts as JSON or ini')
          - ansible_local | length == 5
    - setup:
        fact_path: '@@/nowhere'
        filter: '*_local'
      register: r
    - assert:
        that:
          - \"r.ansible_facts == {'ansible_local': {}}\"
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn implicit_localhost_is_local_with_the_controllers_python() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - assert:
        that:
          - ansible_connection == 'local'
          - ansible_python_interpreter is not defined or ansible_python_interpreter is string
",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
    if has_python3() {
        s.write(
            "python.yml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - command: '{{ ansible_python_interpreter }} -c pass'\n",
        );
        s.settle(&["python.yml", "-i", "hosts"]).assert_code(0);
    }
}

#[test]
fn a_role_runs_once_per_play_unless_its_parameters_differ_or_duplicates_are_allowed() {
    let s = one_host();
    s.write(
        "roles/a/tasks/main.yml",
        "- debug: msg=A-{{ p | default('none') }}\n",
    );
    s.write("roles/b/meta/main.yml", "dependencies: [a]\n");
    s.write("roles/b/tasks/main.yml", "- debug: msg=B\n");
    s.write("roles/c/meta/main.yml", "dependencies: [{role: a}]\n");
    s.write("roles/c/tasks/main.yml", "- debug: msg=C\n");
    s.write("roles/d/meta/main.yml", "allow_duplicates: true\n");
    s.write("roles/d/tasks/main.yml", "- debug: msg=D\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [a, b, {role: a, p: 1}, d, d]\n  tasks:\n    - include_role: name=c\n    - import_role: name=a\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let count = |m: &str| run.stdout.matches(&format!("\"msg\": \"{m}\"")).count();
    // a once from roles: and the dependencies; again with other parameters; again imported.
    assert_eq!(count("A-none"), 2, "{}", run.stdout);
    assert_eq!(count("A-1"), 1, "{}", run.stdout);
    assert_eq!(count("D"), 2, "{}", run.stdout);
    assert_eq!(count("C"), 1, "{}", run.stdout);
}

#[test]
fn a_role_skipped_by_its_condition_runs_when_used_again() {
    let s = one_host();
    s.write("roles/a/tasks/main.yml", "- debug: msg=A\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles:\n    - {role: a, when: go is defined}\n    - {role: a, when: go is defined}\n  tasks:\n    - set_fact: go=1\n- hosts: all\n  gather_facts: no\n  pre_tasks:\n    - set_fact: go=1\n  roles:\n    - {role: a, when: go is defined}\n    - {role: a, when: go is defined}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.matches("\"msg\": \"A\"").count(),
        1,
        "{}",
        run.stdout
    );
}

#[test]
fn an_included_role_sees_the_parameters_of_the_role_that_includes_it() {
    let s = one_host();
    s.write(
        "roles/top/tasks/main.yml",
        "- debug: msg=top-{{ v | default('none') }}\n- include_role: name=bottom\n",
    );
    s.write(
        "roles/bottom/tasks/main.yml",
        "- debug: msg=bottom-{{ v | default('none') }}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles:\n    - {role: top, v: 1}\n    - {role: top, w: 2}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let m = run.messages();
    assert_eq!(
        m,
        ["top-1", "bottom-1", "top-none", "bottom-none"],
        "{}",
        run.stdout
    );
}

#[test]
fn role_defaults_may_be_a_folder_of_files() {
    let s = one_host();
    s.write("roles/r/defaults/main/00.yml", "x: 1\ny: 1\n");
    s.write("roles/r/defaults/main/01.yml", "y: 2\n");
    s.write("roles/r/tasks/main.yml", "- debug: msg={{ x }}-{{ y }}\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [r]\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["1-2"], "{}", run.stdout);
}

#[test]
fn copy_to_a_folder_path_makes_the_folder() {
    let s = one_host();
    s.write("files/a.txt", "a\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {src: a.txt, dest: '@@/made/deeper/'}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("made/deeper/a.txt"), "a\n");
    let again = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(again.recap("h1")["changed"], 0, "{}", again.stdout);
}

#[test]
fn debug_var_shows_undefined_values_as_numbered_error_markers() {
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    nested: {ok: 1, bad: '{{ nope }}', list: ['{{ missing }}']}
  tasks:
    - debug: var=not_set
      register: plain
    - debug: var=through
      vars: {through: '{{ not_defined }}'}
      register: templated
    - debug: var=nested
      register: deep
    - assert:
        that:
          - plain.not_set == "<< error 1 - 'not_set' is undefined >>"
          - templated.through == "<< error 1 - 'not_defined' is undefined >>"
          - deep.nested.ok == 1
          - deep.nested.bad == "<< error 1 - 'nope' is undefined >>"
          - deep.nested.list == ["<< error 2 - 'missing' is undefined >>"]
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Encountered 2 template errors.\nerror 1 - 'nope' is undefined\nerror 2 - 'missing' is undefined"),
        "{}",
        run.stderr
    );
    // Once each (not again from the result), and where `var` names what is undefined.
    assert_eq!(
        run.stderr.matches("[WARNING]: Encountered").count(),
        3,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("error 1 - 'not_set' is undefined\nOrigin: ")
            && run.stderr.contains("site.yml:6:14\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn template_sees_the_template_variables_ansible_defines() {
    let s = one_host();
    s.write(
        "templates/t.j2",
        "{{ template_path }}|{{ template_fullpath is match('/') }}|{{ template_destpath }}|{{ template_uid | length > 0 }}|{{ template_mtime | length > 0 }}|{{ template_run_date | length > 0 }}|{{ template_host | length > 0 }}|{{ ansible_managed }}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - template: {src: t.j2, dest: '@@/out'}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let dest = s.path("out").display().to_string();
    assert_eq!(
        s.read("out"),
        format!("t.j2|True|{dest}|True|True|True|True|Ansible managed\n")
    );
}

#[test]
fn cacheable_set_fact_is_read_back_from_the_jsonfile_cache_by_a_later_run() {
    let s = one_host();
    s.write(
        "first.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - set_fact: {kept: 'from the cache', cacheable: true}\n    - set_fact: {lost: 'run only'}\n",
    );
    s.write(
        "second.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - assert:\n        that:\n          - kept == 'from the cache'\n          - ansible_facts.kept == 'from the cache'\n          - lost is undefined\n",
    );
    s.write(
        "flushed.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - assert: {that: [kept is undefined]}\n",
    );
    let cache = s.path("cache").display().to_string();
    let env = [
        ("ANSIBLE_CACHE_PLUGIN", "jsonfile"),
        ("ANSIBLE_CACHE_PLUGIN_CONNECTION", cache.as_str()),
        ("ANSIBLE_CACHE_PLUGIN_PREFIX", "prefix_"),
    ];
    s.settle_with_env(&["first.yml", "-i", "hosts"], &env)
        .assert_code(0);
    let cached: serde_json::Value = serde_json::from_str(&s.read("cache/prefix_h1")).unwrap();
    assert_eq!(cached, serde_json::json!({"kept": "from the cache"}));
    s.settle_with_env(&["second.yml", "-i", "hosts"], &env)
        .assert_code(0);
    // A timeout longer than a clock holds is "never expires", not a crash.
    let forever = [
        env[0],
        env[1],
        env[2],
        ("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "inf"),
    ];
    s.settle_with_env(&["second.yml", "-i", "hosts"], &forever)
        .assert_code(0);
    s.settle_with_env(&["flushed.yml", "-i", "hosts", "--flush-cache"], &env)
        .assert_code(0);
}

#[test]
fn ansible_host_is_the_inventory_name_unless_set_and_a_missing_var_lookup_says_which() {
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  tasks:
    - assert:
        that:
          - ansible_host == inventory_hostname
          - lookup('vars', 'ansible_host') == 'h1'
    - assert: {that: [ansible_host == '10.0.0.9']}
      vars: {ansible_host: 10.0.0.9}
    - debug: msg="{{ lookup('vars', 'doesnotexist') }}"
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(run.counts("h1").0, 2, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("No variable named 'doesnotexist' was found."),
        "{}",
        run.stdout
    );
}

#[test]
fn a_list_holding_an_undefined_item_fails_naming_the_missing_attribute() {
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    things: [{name: one}, {other: two}]
  tasks:
    - set_fact:
        names: '{{ things | map(attribute="name") }}'
      ignore_errors: true
      register: r
    - assert:
        that:
          - r is failed
          - r.msg is contains "object of type 'dict' has no attribute 'name'"
          - things | map(attribute='name', default='-') | list == ['one', '-']
          - things | selectattr('name', 'defined') | map(attribute='name') | list == ['one']
"#,
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn a_dependency_sees_its_parents_role_params_and_vars_files_may_list_mappings() {
    let s = one_host();
    s.write("roles/parent/meta/main.yml", "dependencies:\n  - child\n");
    s.write(
        "roles/parent/tasks/main.yml",
        "- assert: {that: [p == 'from parent']}\n",
    );
    s.write(
        "roles/child/tasks/main.yml",
        "- assert: {that: [p == 'from parent', q == 'own']}\n",
    );
    s.write("roles/child/defaults/main.yml", "p: default\nq: own\n");
    s.write("listed.yml", "- a: 1\n- b: 2\n  a: 3\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars_files: [listed.yml]\n  roles:\n    - {role: parent, p: from parent}\n  tasks:\n    - assert: {that: [a == 3, b == 2]}\n",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn include_params_beat_set_fact_and_a_taskless_roles_vars_are_the_plays() {
    let s = one_host();
    s.write("roles/only_vars/vars/main.yml", "from_role: role var\n");
    s.write(
        "inc.yml",
        "- assert: {that: [findme == 'include param', from_role == 'role var']}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [only_vars]\n  tasks:\n    - set_fact: {findme: set_fact}\n    - include_tasks: inc.yml\n      vars: {findme: include param}\n",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn role_name_lists_and_parent_roles_are_as_ansible_names_them() {
    let s = one_host();
    s.write("roles/top/meta/main.yml", "dependencies: [dep]\n");
    s.write(
        "roles/top/tasks/main.yml",
        "\
- assert:
    that:
      - role_names == ['top']
      - ansible_play_role_names == ['top']
      - ansible_dependent_role_names == ['dep']
      - ansible_role_names | sort == ['dep', 'top']
      - ansible_parent_role_names is undefined
- include_role: {name: inner}
- import_role: {name: inner}
",
    );
    s.write(
        "roles/dep/tasks/main.yml",
        "- assert: {that: [ansible_parent_role_names is undefined]}\n",
    );
    s.write(
        "roles/inner/tasks/main.yml",
        "- assert: {that: [\"ansible_parent_role_names == ['top']\", ansible_parent_role_paths | length == 1]}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [top]\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").0, 5, "{}", run.stdout);
}

#[test]
fn an_argument_starting_with_the_reserved_ansible_prefix_is_refused() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - set_fact: {_ansible_foo: bar}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_ne!(run.code, 0);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(
        all.matches("is reserved for internal use only.").count(),
        1,
        "{all}"
    );
}

#[test]
fn vvvv_shows_the_become_command_and_allow_same_user_becomes_anyway() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: whoami\n      become: true\n      become_user: \"{{ lookup('env', 'USER') | default('root', true) }}\"\n      ignore_errors: true\n",
    );
    let me = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "-vvvv"],
        &[
            ("ANSIBLE_BECOME_ALLOW_SAME_USER", "true"),
            ("USER", me.trim()),
        ],
    );
    assert!(run.stdout.contains("> EXEC /bin/sh -c "), "{}", run.stdout);
    assert!(run.stdout.contains("sudo -H -S -n"), "{}", run.stdout);
}

#[test]
fn notify_reaches_handlers_as_ansible_searches_them() {
    let s = one_host();
    // A name reaches the first handler of that name in the play's own handlers, a topic every
    // listener; a templated notify and a templated handler name are rendered; a role's
    // handler answers `role : name`; the play's `force_handlers: false` wins over the flag.
    s.write(
        "roles/r/handlers/main.yml",
        "- name: rh\n  debug: {msg: role handler}\n",
    );
    s.write("roles/r/tasks/main.yml", "- debug: {msg: role task}\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  force_handlers: false\n  vars: {which: second, many: [t, 'r : rh']}\n  roles: [r]\n  tasks:\n    - command: 'true'\n      notify: ['{{ \"first\" }}', '{{ which }}']\n    - meta: flush_handlers\n    - command: 'true'\n      notify: '{{ many }}'\n  handlers:\n    - name: first\n      debug: {msg: first one}\n    - name: first\n      debug: {msg: first again}\n    - name: '{{ \"sec\" ~ \"ond\" }}'\n      debug: {msg: templated name}\n    - name: listener\n      debug: {msg: listener}\n      listen: first\n    - name: t1\n      debug: {msg: t1}\n      listen: t\n    - name: t2\n      debug: {msg: t2}\n      listen: t\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--force-handlers"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        [
            "role task",
            "first one",
            "templated name",
            "listener",
            "role handler",
            "t1",
            "t2"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("RUNNING HANDLER [second]"),
        "{}",
        run.stdout
    );
}

#[test]
fn any_errors_fatal_sends_every_host_to_its_rescue_and_a_missing_include_fails_only_its_host() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2"]));
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  any_errors_fatal: true\n  tasks:\n    - block:\n        - fail:\n          when: inventory_hostname == 'h1'\n        - debug: {msg: SHOULD NOT HAPPEN}\n      rescue:\n        - debug: {msg: rescued}\n    - include_role: {name: not-there}\n      when: inventory_hostname == 'h2'\n    - debug: {msg: never reached}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(run.messages(), ["rescued", "rescued"], "{}", run.stdout);
    assert!(!run.stdout.contains("included:"), "{}", run.stdout);
    assert!(run.stdout.contains("not-there"), "{}", run.stdout);
}

#[test]
fn meta_says_what_it_did_and_end_batch_ends_only_the_batch() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2"]));
    s.write(
        "site.yml",
        "- name: 'batch {{ word }}'\n  hosts: all\n  gather_facts: no\n  serial: 1\n  vars: {word: play}\n  tasks:\n    - debug: {msg: 'in {{ inventory_hostname }}'}\n    - meta: end_host\n      when: inventory_hostname == 'nobody'\n    - meta: end_batch\n    - debug: {msg: never}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-vv"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["in h1", "in h2"], "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("PLAY [batch play]").count(),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("META: ending batch").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("META: end_host conditional evaluated to False, continuing execution for h1\nskipping: [h1] => {\"msg\": \"end_host conditional evaluated to false, continuing execution for h1\", \"skip_reason\": \"end_host conditional evaluated to False, continuing execution for h1\"}"),
        "{}",
        run.stdout
    );
}

#[test]
fn verbose_results_are_one_line_unless_debug_or_vvv() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      when: false\n    - command: echo hi\n      changed_when: false\n    - debug: {msg: shown}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-v"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("skipping: [h1] => {\"changed\": false, \"false_condition\": false, \"skip_reason\": \"Conditional result was False\"}"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok: [h1] => {\"changed\": false, \"cmd\": [\"echo\", \"hi\"], \"delta\": "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok: [h1] => {\n    \"msg\": \"shown\"\n}"),
        "{}",
        run.stdout
    );
}

#[test]
fn static_imports_name_files_with_the_variables_known_when_read() {
    let s = one_host();
    s.write(
        "inner.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {msg: 'imported {{ who }}'}\n",
    );
    s.write("tasks/t.yml", "- debug: {msg: 'tasks {{ play_var }}'}\n");
    s.write(
        "site.yml",
        "- import_playbook: '{{ pb }}'\n  vars: {who: first}\n- ansible.builtin.import_playbook: inner.yml\n  vars: {who: never}\n  when: false\n- hosts: all\n  gather_facts: no\n  vars: {play_var: tasks/t.yml}\n  tasks:\n    - import_tasks: '{{ play_var }}'\n    - block:\n        - include_tasks: missing.yml\n          ignore_errors: true\n          register: r\n      rescue:\n        - assert: {that: [r is not failed, \"r.include == 'missing.yml'\"]}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-e", "pb=inner.yml"]);
    run.assert_code(0);
    assert_eq!(
        run.messages(),
        [
            "imported first",
            "tasks tasks/t.yml",
            "All assertions passed"
        ],
        "{}",
        run.stdout
    );
    // As Ansible 2.19: a file that is not there fails the include whatever `ignore_errors`
    // says, and stays counted when a rescue takes it (without counting a rescue).
    assert!(
        run.stdout
            .contains("failed=1    skipped=1    rescued=0    ignored=0"),
        "{}",
        run.stdout
    );
}

#[test]
fn assemble_joins_controller_fragments_decrypting_vaulted_ones() {
    let s = one_host();
    s.write("pw", "secret\n");
    s.write("files/frags/01-a", "alpha");
    s.write("files/frags/02-b", "beta\n");
    s.write("files/frags/03-skip", "no\n");
    s.settle(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "pw",
        "files/frags/02-b",
    ])
    .assert_code(0);
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - assemble: {src: frags, dest: '@@/out', remote_src: false, delimiter: '#--\\n', regexp: '^0[12]'}\n      register: r\n    - assert: {that: [r.checksum is defined]}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--vault-password-file", "pw"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 1, "{}", run.stdout);
    // A newline after the delimiter even though it ends in one: Ansible's action plugin.
    assert_eq!(s.read("out"), "alpha\n#--\n\nbeta\n");
    let again = s.settle(&["site.yml", "-i", "hosts", "--vault-password-file", "pw"]);
    assert_eq!(again.counts("h1").1, 0, "{}", again.stdout);
}

#[test]
fn undefined_values_chain_until_used_and_errors_name_the_variable_and_the_filter() {
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    container: {key: {subkey: value}}
  tasks:
    - assert:
        that:
          - "('key' | extract(badcontainer)).subkey | default('a') == 'a'"
          - "('key' | extract(container)).subkey | default('a') == 'value'"
    - set_fact: {x: "{{ {'a': 1} | combine({'b': undef_variable}) }}"}
      register: combined
      ignore_errors: true
    - set_fact: {x: "{{ hey | mandatory }}"}
      register: mandatory
      ignore_errors: true
    - set_fact: {x: "{{ fail_foo }}"}
      vars: {fail_foo: "{{ undef(hint='Expected failure') }}"}
      register: hinted
      ignore_errors: true
    - set_fact: {x: "{{ 'monkeys' | human_readable }}"}
      register: bad_input
      ignore_errors: true
    - assert:
        that:
          - "\"'undef_variable' is undefined\" in combined.msg"
          - "\"Mandatory variable 'hey' not defined.\" in mandatory.msg"
          - "'Expected failure' in hinted.msg"
          - "\"The filter plugin 'ansible.builtin.human_readable' failed: human_readable() failed on bad input\" in bad_input.msg"
          - "[1, 2] | product(['a']) | list == [(1, 'a'), (2, 'a')]"
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn vault_values_are_decrypted_only_when_used() {
    let s = one_host();
    // "secret" encrypted with the password "test"; the run has no vault secrets.
    let vaulted = "$ANSIBLE_VAULT;1.1;AES256\n33323332333033383335333533383338333333303339333733323339333833303334333133313339\n33373339333133323331333833373335333933323338333633343338333133343334333733383334\n33333335333433383337333133303339333433353332333333363339333733363335333233303330\n3337333733353331333633313335333733373334333733320a373938666533366165653830313163\n62386564343438653437333564383664646538653364343138303831613039313232636437336530\n3438376662373764650a633366646563386335623161646262366137393635633464333265613938\n6661";
    let indented: String = vaulted.lines().map(|l| format!("      {l}\n")).collect();
    s.write(
        "site.yml",
        &format!(
            r#"- hosts: all
  gather_facts: no
  vars:
    unused: 1
    locked: !vault |
{indented}  tasks:
    - debug: {{msg: "{{{{ locked }}}}"}}
      register: used
      ignore_errors: true
    - assert:
        that:
          - "'Attempt to use undecryptable variable' in used.msg"
          - locked is vault_encrypted
          - "'plain' is not vault_encrypted"
          - locked | unvault('test') == 'secret'
          - "'x' | vault('pw', vault_id='v') | unvault('pw', vault_id='v') == 'x'"
"#
        ),
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn python_string_formatting_and_python_error_words_in_templates() {
    let s = one_host();
    s.write(
        "t.j2",
        "#jinja2:variable_start_string:'<<',variable_end_string:'>>'\n<< 'a' ~ 'bc' >>\n",
    );
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    d: /tmp
  tasks:
    - set_fact: {x: "{{ 5 / 0 }}"}
      register: divided
      ignore_errors: true
    - template: {src: t.j2, dest: "@@/out"}
    - assert:
        that:
          - "'division by zero' in divided.msg"
          - "'Failed to read %s/x' % d == 'Failed to read /tmp/x'"
          - "'%d of %s' % (2, 'three') == '2 of three'"
          - "lookup('file', '@@/out') == 'abc'"
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn loop_var_may_be_a_template_and_label_sees_the_items_own_result() {
    let s = one_host();
    s.write("inc.yml", "- assert: {that: \"picked == 'value'\"}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - include_tasks: inc.yml
      loop: [value]
      loop_control: {loop_var: '{{ name }}'}
      vars: {name: picked}
    - command: echo {{ item }}
      register: r
      loop: [changed, skipped]
      loop_control: {label: '{{ r.stdout }}'}
      when: item == 'changed'
      ignore_errors: true
    - assert:
        that:
          - r.results[0].stdout == 'changed'
          - r.results[1].failed
          - \"r.results[1].msg is contains(\\\"label: object of type 'dict' has no attribute 'stdout'\\\")\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(run.stdout.contains("(item=changed)"), "{}", run.stdout);
    assert_eq!(run.recap("h1")["ignored"], 1, "{}", run.stdout);
}

#[test]
fn failed_when_outranks_until_running_out_and_a_folded_expression_keeps_its_type() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - set_fact:
        names: >
          {{ ['n' ~ item] + names | default([]) }}
      loop: [1, 2]
    - assert: {that: \"names == ['n2', 'n1']\"}
    - command: 'true'
      register: r
      until: 1 == 0
      retries: 2
      delay: 0
      failed_when: r.attempts > 6
      loop: [a]
    - assert: {that: ['r.results[0].attempts == 2', 'r.results[0].failed', 'r is failed']}
    - command: 'true'
      register: one
      until: 1 == 0
      retries: 1
      delay: 0
      failed_when: false
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["failed"], 0, "{}", run.stdout);
}

#[test]
fn a_retry_delay_no_clock_can_hold_fails_the_task_instead_of_the_run() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: 'true'
      register: r
      until: 1 == 0
      retries: 2
      delay: inf
      ignore_errors: true
    - assert: {that: ['r is failed', \"r.msg is contains('delay must be a number of seconds')\"]}
    - command: 'true'
      until: 1 == 0
      retries: 18446744073709551615
      delay: 1e300
      ignore_errors: true
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["ignored"], 2, "{}", run.stdout);
}

#[test]
fn set_fact_and_include_vars_results_keep_the_trust_of_what_was_written() {
    let s = one_host();
    s.write("vars.yml", "from_file: plain\nlater: '{{ w }}'\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars: {w: world}
  tasks:
    - set_fact:
        foo: bar
        shout: '{{ w | upper }}'
        unsafe: !unsafe '{{ nope }}'
      register: baz
    - include_vars: vars.yml
      register: inc
    - command: echo bar
      register: out
    - assert:
        that:
          - baz.ansible_facts.foo is ansible._protomatter.tagged_with('TrustedAsTemplate')
          - baz.ansible_facts.shout == 'WORLD'
          - baz.ansible_facts.shout is not ansible._protomatter.tagged_with('TrustedAsTemplate')
          - \"baz.ansible_facts.unsafe == '{{ '{{' }} nope }}'\"
          - inc.ansible_facts.from_file is ansible._protomatter.tagged_with('TrustedAsTemplate')
          - inc.ansible_facts.later == 'world'
          - out.stdout is not ansible._protomatter.tagged
          - lookup('env', 'SETTLE_T') | ansible._protomatter.origin == \"<environment variable 'SETTLE_T'>\"
",
    );
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &[("SETTLE_T", "v")]);
    run.assert_code(0);
}

#[test]
fn include_role_takes_role_as_the_other_spelling_of_name() {
    let s = one_host();
    s.write("roles/r/tasks/main.yml", "- debug: msg=in-r\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars: {which: r}\n  tasks:\n    - include_role:\n        role: '{{ which }}'\n    - import_role: {role: r}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.stdout.matches("in-r").count(), 2, "{}", run.stdout);
}

#[test]
fn version_names_the_commit_and_completions_survive_a_closed_pipe() {
    let s = Scratch::new();
    let version = s.settle(&["--version"]);
    version.assert_code(0);
    assert!(version.stdout.starts_with("settle "), "{}", version.stdout);
    assert!(version.stdout.contains("(commit "), "{}", version.stdout);
    // A reader that stops at once: the program ends quietly, no panic.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn gathering_smart_gathers_once_per_host_and_explicit_only_when_asked() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  tasks:\n    - assert: {that: [ansible_facts._ansible_facts_gathered]}\n    - meta: noop\n\
- hosts: all\n  tasks:\n    - debug: msg=second-play\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("ANSIBLE_GATHERING", "smart")],
    );
    run.assert_code(0);
    assert_eq!(run.stdout.matches("ok: [").count(), 3, "{}", run.stdout);
    s.write(
        "explicit.yml",
        "- hosts: all\n  tasks:\n    - assert: {that: ['ansible_facts.fqdn is undefined']}\n\
- hosts: all\n  gather_facts: true\n  tasks:\n    - assert: {that: ['ansible_facts.fqdn is defined', 'ansible_memory_mb.real.total > 0']}\n",
    );
    let run = s.settle_with_env(
        &["explicit.yml", "-i", "hosts"],
        &[("ANSIBLE_GATHERING", "explicit")],
    );
    run.assert_code(0);
}

#[test]
fn clear_host_errors_brings_failed_hosts_back_for_the_next_plays() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["a", "b", "c"]));
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - fail:
      when: inventory_hostname == 'b'
    - meta: clear_host_errors
- hosts: all
  gather_facts: no
  tasks:
    - assert:
        that: ansible_play_hosts | length == 3
      run_once: true
    - fail:
      when: inventory_hostname == 'b'
- hosts: all
  gather_facts: no
  tasks:
    - assert:
        that:
          - ansible_play_batch == ['a', 'c']
          - ansible_play_hosts == ['a', 'c']
          - ansible_play_hosts_all == ['a', 'b', 'c']
      run_once: true
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(run.recap("b")["failed"], 2, "{}", run.stdout);
    assert_eq!(run.recap("a")["ok"], 2, "{}", run.stdout);
}

#[test]
fn throttle_limits_how_many_hosts_run_a_task_at_once() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["a", "b", "c", "d"]));
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: all
  gather_facts: no
  throttle: '{{{{ 4 }}}}'
  tasks:
    - block:
        - shell: mkdir {0}/lock && sleep 0.2 && rmdir {0}/lock
      throttle: 1
",
            s.root()
        ),
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--forks", "4"]);
    run.assert_code(0);
    s.write(
        "bad.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug:\n      throttle: \"{{ 'nope' }}\"\n",
    );
    let run = s.settle(&["bad.yml", "-i", "hosts"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            "Failed to convert the throttle value to an integer: invalid literal for int() with base 10: 'nope'"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn unreachable_loop_items_go_on_and_clear_host_errors_brings_the_host_back_behind() {
    let s = Scratch::new();
    s.write(
        "hosts",
        "ok ansible_connection=local\nfar ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=9\nodd ansible_connection=nope_conn\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: ok,far
  gather_facts: no
  tasks:
    - ping:
      ignore_unreachable: '{{ item }}'
      loop: [true, true]
      register: all_ignored
    - ping:
      ignore_unreachable: '{{ item }}'
      loop: [false, true]
    - meta: clear_host_errors
    - ping:
    - assert:
        that:
          - all_ignored.results[0] is unreachable
          - all_ignored is unreachable
      delegate_to: ok
      when: inventory_hostname == 'ok'
- hosts: odd
  gather_facts: no
  tasks:
    - ping:
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(4);
    let far = run.recap("far");
    assert_eq!(
        (far["ok"], far["ignored"], far["unreachable"]),
        (1, 1, 2),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("the connection plugin 'nope_conn' was not found"),
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("odd")["failed"], 1, "{}", run.stdout);
}

#[test]
fn ansible_playbook_python_names_the_controllers_python() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - assert:\n        that: ansible_playbook_python is match('/')\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn debug_var_given_as_unsafe_text_fails_as_untrusted() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  vars: {debug_me: x}\n  tasks:\n    - debug:\n        var: !unsafe debug_me\n      ignore_errors: true\n      register: out\n    - assert:\n        that:\n          - out is failed\n          - out.msg is contains 'untrusted template or expression'\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn handler_notifications_are_checked_when_a_changed_task_notifies() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - debug: msg=quiet
      notify: nobody
    - debug: msg=lazy
      changed_when: true
      notify: handler name
    - debug: msg=missing
      changed_when: true
      notify: 'handler name with {{ \"myvar\" }}'
    - debug: msg=never-here
  handlers:
    - name: handler name with {{ test_var }}
      debug: msg=with-var-ran
    - name: handler name
      debug: msg=handler-ran
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(1);
    assert!(run.stderr.contains("[WARNING]: Handler 'handler name with {{ test_var }}' is unusable because it has no listen topics and the name could not be templated (host-specific variables are not supported in handler names). The error: 'test_var' is undefined"), "{}", run.stderr);
    assert!(run.stderr.contains("[ERROR]: The requested handler 'handler name with myvar' was not found in either the main handlers list nor in the listening handlers list"), "{}", run.stderr);
    assert!(
        !run.stdout.contains("never-here") && !run.stdout.contains("PLAY RECAP"),
        "{}",
        run.stdout
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "-e", "test_var=myvar"],
        &[("ANSIBLE_ERROR_ON_MISSING_HANDLER", "false")],
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("with-var-ran") && run.stdout.contains("handler-ran"),
        "{}",
        run.stdout
    );
}

#[test]
fn handlers_refuse_roles_nested_blocks_and_flush_handlers() {
    let s = one_host();
    let play = |handler: &str| {
        format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      notify: h\n  handlers:\n{handler}"
        )
    };
    s.write(
        "role.yml",
        &play("    - name: h\n      include_role: {name: nowhere}\n"),
    );
    let run = s.settle(&["role.yml", "-i", "hosts"]);
    assert!(
        run.stderr
            .contains("Using 'include_role' as a handler is not supported."),
        "{}",
        run.stderr
    );
    s.write(
        "nested.yml",
        "- name: h\n  block:\n    - debug: msg=fine\n    - block:\n        - debug: msg=nested\n",
    );
    s.write(
        "block.yml",
        &play("    - name: h\n      include_tasks: nested.yml\n"),
    );
    let run = s.settle(&["block.yml", "-i", "hosts"]);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("Using a block as a handler is not supported."),
        "{said}"
    );
    s.write(
        "flush.yml",
        &play("    - name: h\n      meta: flush_handlers\n"),
    );
    let run = s.settle(&["flush.yml", "-i", "hosts"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("flush_handlers cannot be used as a handler"),
        "{}",
        run.stderr
    );
    s.write("noop.yml", &play("    - name: h\n      meta: noop\n"));
    let run = s.settle(&["noop.yml", "-i", "hosts", "-vv"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("RUNNING HANDLER [h]") && run.stdout.contains("META: noop"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("TASK [h]"), "{}", run.stdout);
}

#[test]
fn an_included_roles_tasks_and_handlers_see_the_including_roles_defaults() {
    let s = one_host();
    s.write("roles/r1/defaults/main.yml", "v: foo\n");
    s.write("roles/r1/tasks/main.yml", "- include_role: {name: r2}\n");
    s.write(
        "roles/r2/tasks/main.yml",
        "- command: 'true'\n  notify: h\n- debug: msg=task-{{ v }}\n",
    );
    s.write(
        "roles/r2/handlers/main.yml",
        "- name: h\n  debug: msg=handler-{{ v }}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - include_role: {name: r1}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("task-foo") && run.stdout.contains("handler-foo"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_handler_that_failed_in_a_rescued_flush_does_not_run_again() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  force_handlers: true
  tasks:
    - block:
        - command: 'true'
          notify: h
        - meta: flush_handlers
      rescue:
        - debug: msg=rescued
  handlers:
    - name: h
      fail: msg=handler-failed
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.matches("RUNNING HANDLER [h]").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("h1")["failed"], 0, "{}", run.stdout);
    assert_eq!(run.recap("h1")["rescued"], 1, "{}", run.stdout);
}

#[test]
fn tasks_of_a_file_a_handler_includes_run_as_handlers() {
    let s = one_host();
    s.write("more.yml", "- name: inner\n  debug: msg=inner-ran\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      notify: h\n  handlers:\n    - name: h\n      include_tasks: more.yml\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("RUNNING HANDLER [inner]"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("TASK [inner]"), "{}", run.stdout);
}

#[test]
fn a_handler_may_notify_one_defined_before_it() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      notify: h2\n  handlers:\n    - name: h1\n      debug: msg=h1_ran\n    - name: h2\n      debug: msg=h2_ran\n      changed_when: true\n      notify: h1\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["h2_ran", "h1_ran"], "{}", run.stdout);
}

#[test]
fn a_role_task_sees_its_dep_chain_and_dependencies_vars_over_the_plays() {
    let s = one_host();
    s.write(
        "roles/a/meta/main.yml",
        "dependencies:\n  - role: common\n    vars: {test_var: A}\n",
    );
    s.write(
        "roles/b/meta/main.yml",
        "dependencies:\n  - role: common\n    vars: {test_var: B}\n",
    );
    s.write("roles/common/vars/main.yml", "precedence: parent\n");
    s.write(
        "roles/common/meta/main.yml",
        "dependencies:\n  - role: nested\n    vars: {nested_var: '{{ test_var }}'}\n",
    );
    s.write(
        "roles/nested/meta/main.yml",
        "allow_duplicates: yes\ndependencies: [child]\n",
    );
    s.write(
        "roles/nested/tasks/main.yml",
        "- debug: msg='{{ nested_var }}-{{ precedence }}'\n- include_role: {name: inner}\n",
    );
    s.write("roles/nested/defaults/main.yml", "from_parent: default\n");
    s.write("roles/child/vars/main.yml", "precedence: dependency\n");
    s.write(
        "roles/inner/tasks/main.yml",
        "- debug: msg='inner-{{ from_parent }}'\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [a, b]\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    for want in ["A-dependency", "B-dependency", "inner-default"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
}

#[test]
fn role_vars_are_the_plays_as_public_and_private_role_vars_say() {
    let s = one_host();
    s.write("roles/a/vars/main.yml", "privacy: a\n");
    s.write(
        "roles/a/tasks/main.yml",
        "- debug: msg='own-{{ privacy }}'\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  roles: [a]
  pre_tasks:
    - debug: msg='pre-{{ privacy | default(\"none\") }}'
- hosts: all
  gather_facts: no
  tasks:
    - import_role: {name: a, public: no}
    - debug: msg='import-{{ privacy | default(\"none\") }}'
    - include_role: {name: a}
    - debug: msg='include-{{ privacy | default(\"none\") }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    for want in ["pre-a", "own-a", "import-none", "include-none"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("ANSIBLE_PRIVATE_ROLE_VARS", "1")],
    );
    run.assert_code(0);
    for want in ["pre-none", "own-a", "import-none", "include-none"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("ANSIBLE_PRIVATE_ROLE_VARS", "0")],
    );
    run.assert_code(0);
    for want in ["pre-a", "import-none", "include-a"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
}

#[test]
fn a_run_once_set_fact_inside_a_run_once_include_sets_the_fact_on_every_host() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2", "h3"]));
    s.write("inc.yml", "- set_fact: {lola: wiseman}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars: {lola: untouched}
  tasks:
    - include_tasks: {file: inc.yml, apply: {run_once: true}}
      run_once: true
    - assert: {that: lola == 'wiseman'}
    - include_tasks: inc.yml
      run_once: true
      vars: {lola: again}
    - include_vars: {file: v.yml}
      run_once: true
    - assert: {that: from_file == 1}
",
    );
    s.write("v.yml", "from_file: 1\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    for h in ["h1", "h2", "h3"] {
        assert_eq!(run.recap(h)["failed"], 0, "{}", run.stdout);
    }
}

#[test]
fn include_skipped_by_when_registers_even_when_its_loop_is_undefined_and_omit_means_main() {
    let s = one_host();
    s.write("roles/r/tasks/main.yml", "- debug: msg=in-main\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - include_tasks: nothing.yml
      loop: '{{ undefined_list }}'
      when: false
      register: skipped_include
    - assert:
        that:
          - skipped_include is skipped
          - skipped_include.results is undefined
    - include_role: {name: r, tasks_from: '{{ omit }}'}
    - import_role: {name: r, allow_duplicates: '{{ False | bool }}'}
      debugger: never
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    // The import is the include's role instance (same role, when and tags): it has run, and
    // the templated allow_duplicates says not again.
    assert_eq!(run.stdout.matches("in-main").count(), 1, "{}", run.stdout);
}

#[test]
fn an_included_file_that_does_not_parse_ends_the_run_one_that_is_missing_fails_the_include() {
    let s = one_host();
    s.write(
        "bad.yml",
        "- name: no file\n  ansible.builtin.include_tasks:\n",
    );
    s.write("missing.yml", "- import_tasks: nowhere.yml\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - block:
        - include_tasks: missing.yml
      rescue:
        - debug: msg=rescued-missing
    - block:
        - include_tasks: bad.yml
      rescue:
        - debug: msg=SHOULD_NOT_RUN
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(4);
    assert!(run.stdout.contains("rescued-missing"), "{}", run.stdout);
    assert!(!run.stdout.contains("SHOULD_NOT_RUN"), "{}", run.stdout);
    assert!(!run.stdout.contains("PLAY RECAP"), "{}", run.stdout);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("No file specified for ansible.builtin.include_tasks"),
        "{all}"
    );
    assert!(all.contains("bad.yml:1:3"), "{all}");
    assert!(
        all.contains("Could not find or access '")
            && all.contains("nowhere.yml' on the Ansible Controller"),
        "{all}"
    );
}

#[test]
fn end_role_passes_over_the_rest_of_the_role_and_is_refused_outside_one() {
    let s = one_host();
    s.write(
        "roles/r/tasks/main.yml",
        "- set_fact: {runs: '{{ runs | default(0) | int + 1 }}'}\n- meta: end_role\n- set_fact: {after: true}\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  roles: [r]
  tasks:
    - import_role: {name: r, allow_duplicates: true}
    - include_role: {name: r, allow_duplicates: false}
    - assert:
        that:
          - runs | int == 2
          - after is undefined
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    s.write(
        "outside.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - meta: end_role\n",
    );
    let run = s.settle(&["outside.yml", "-i", "hosts"]);
    assert!(
        run.stderr
            .contains("[ERROR]: Cannot execute 'end_role' from outside of a role"),
        "{}",
        run.stderr
    );
    s.write(
        "handler.yml",
        "- hosts: all\n  gather_facts: no\n  tasks: []\n  handlers:\n    - name: h\n      meta: end_role\n",
    );
    let run = s.settle(&["handler.yml", "-i", "hosts"]);
    assert!(
        run.stderr
            .contains("[ERROR]: Cannot execute 'end_role' from a handler"),
        "{}",
        run.stderr
    );
}

#[test]
fn template_files_include_and_import_templates_on_the_search_path() {
    let s = one_host();
    s.write(
        "roles/r/templates/main.j2",
        "{% import 'macros.j2' as m with context %}{% include 'part.j2' %}|{{ m.hi() }}\n{% for i in [1] %}\n{{ i }}\n{% endfor %}\n",
    );
    s.write("roles/r/templates/part.j2", "part {{ who }}\n");
    s.write(
        "templates/macros.j2",
        "{% macro hi() %}hi {{ who }}{% endmacro %}\n",
    );
    s.write(
        "roles/r/tasks/main.yml",
        "- template: {src: main.j2, dest: '{{ out }}/'}\n",
    );
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  vars: {{who: you, out: '{}'}}\n  roles: [r]\n",
            s.root()
        ),
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(s.read("main.j2"), "part you|hi you\n1\n");
}

#[test]
fn unknown_plugins_and_bad_jinja2_lines_fail_in_ansibles_words() {
    let s = one_host();
    s.write("bad.j2", "#jinja2: lstrip_blocks=True\nx\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - {debug: {msg: \"{{ '' | nope }}\"}, register: f, ignore_errors: yes}
    - {debug: {msg: \"{{ '' is nope }}\"}, register: t, ignore_errors: yes}
    - {debug: {msg: \"{{ lookup('nope') }}\"}, register: l, ignore_errors: yes}
    - {template: {src: bad.j2, dest: /tmp/never}, register: j, ignore_errors: yes}
    - assert:
        that:
          - |-
            f.msg is contains(\"Syntax error in template: No filter named 'nope'.\")
          - |-
            t.msg is contains(\"Syntax error in template: No test named 'nope'.\")
          - l.msg is search(\"^The lookup plugin 'nope' was not found\")
          - |-
            j.msg is contains(\"Missing key-value separator `:` in '#jinja2:' override pair\")
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn play_environment_reaches_gathered_facts_and_skips_values_needing_ansible_env() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  environment:
    PATH: '{{ ansible_env.PATH + \":/nowhere\" }}'
    SETTLE_LOLA: ido
  tasks:
    - assert:
        that:
          - ansible_env.SETTLE_LOLA == 'ido'
          - \"'/nowhere' not in ansible_env.PATH\"
    - shell: echo $SETTLE_LOLA
      register: out
      environment: [{SETTLE_LOLA: '{{ omit }}'}, {OTHER: x}]
    - assert: {that: [out.stdout == 'ido']}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn hash_behaviour_merge_merges_dictionaries_across_precedence_levels() {
    let s = Scratch::new();
    s.write(
        "hosts",
        "h1 ansible_connection=local d=\"{'inv': 1, 'deep': {'a': 1}}\"\n",
    );
    s.write("v.yml", "d: {file: 1, deep: {b: 2}}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars_files: [v.yml]
  vars: {d: {play: 1}}
  tasks:
    - assert:
        that:
          - \"d == {'inv': 1, 'file': 1, 'play': 1, 'task': 1, 'extra': 1, 'deep': {'a': 1, 'b': 2}}\"
          - lookup('config', 'DEFAULT_HASH_BEHAVIOUR') == 'merge'
      vars: {d: {task: 1}}
",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "-e", "{\"d\": {\"extra\": 1}}"],
        &[("ANSIBLE_HASH_BEHAVIOUR", "merge")],
    );
    run.assert_code(0);
}

#[test]
fn variables_with_reserved_names_get_ansibles_warning_with_the_key_s_origin() {
    let s = one_host();
    s.write("v.yml", "query: x\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    lipsum: x
  tasks:
    - set_fact:
        lookup: x
    - include_vars: v.yml
    - debug: msg=hi
      vars:
        q: x
        fine: y
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let root = std::fs::canonicalize(s.root()).unwrap();
    for (name, at) in [
        ("lipsum", "site.yml:4:5"),
        ("lookup", "site.yml:7:9"),
        ("query", "v.yml:1:1"),
        ("q", "site.yml:11:9"),
    ] {
        let want = format!(
            "[WARNING]: Found variable using reserved name '{name}'.\nOrigin: {}/{at}",
            root.display()
        );
        assert!(run.stderr.contains(&want), "{want}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("'fine'"), "{}", run.stderr);
}

#[test]
fn protomatter_debug_marks_undefined_results_and_env_defaults_keep_their_hints() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - ansible._protomatter.debug:
        expression:
          - 1 + 1
          - lookup('env', 'SETTLE_UNSET_VAR', default=undef())
          - lookup('env', 'SETTLE_UNSET_VAR', default=undef('custom'))
      register: r
    - assert:
        that:
          - r.expression_result[0] == 2
          - r.expression_result[1] is search(\"environment variable 'SETTLE_UNSET_VAR' is not set\")
          - r.expression_result[2] == '<< error 2 - custom >>'
          - r.warnings | length == 2
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn wait_for_connection_pings_on_the_controller_and_checks_its_arguments() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - wait_for_connection: {timeout: 10, delay: 1, sleep: 1}
      register: up
    - ansible.builtin.wait_for_connection: {foo: bar}
      register: bad
      ignore_errors: yes
    - wait_for_connection:
      check_mode: yes
      register: checked
    - wait_for_connection: {timeout: 18446744073709551615}
    - assert:
        that:
          - up is not failed and up is not changed
          - up.elapsed >= 1
          - \"bad.msg == 'Invalid options for ansible.builtin.wait_for_connection: foo'\"
          - checked is skipped
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn copy_of_a_controller_folder_follows_links_unless_local_follow_is_false() {
    let s = one_host();
    s.write("files/tree/real.txt", "real\n");
    std::os::unix::fs::symlink("real.txt", s.path("files/tree/link.txt")).unwrap();
    std::os::unix::fs::symlink(".", s.path("files/tree/loop")).unwrap();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - copy: {src: tree, dest: '{{ playbook_dir }}/followed/'}
    - copy: {src: tree, dest: '{{ playbook_dir }}/kept/', local_follow: false}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    let is_link = |p: &str| {
        std::fs::symlink_metadata(s.path(p))
            .unwrap()
            .file_type()
            .is_symlink()
    };
    assert!(!is_link("followed/tree/link.txt"), "{}", run.stdout);
    assert_eq!(s.read("followed/tree/link.txt"), "real\n");
    assert!(is_link("followed/tree/loop"), "a loop stays a link");
    assert!(is_link("kept/tree/link.txt"));
    assert_eq!(
        std::fs::read_link(s.path("kept/tree/link.txt")).unwrap(),
        std::path::PathBuf::from("real.txt")
    );
}

#[test]
fn copy_hides_its_content_argument_and_names_a_vault_file_it_cannot_open() {
    let s = one_host();
    s.write("secret.txt", "$ANSIBLE_VAULT;1.1;AES256\n6162\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - copy: {content: SECRET, dest: '{{ playbook_dir }}/out'}
    - copy: {src: '{{ playbook_dir }}/secret.txt', dest: '{{ playbook_dir }}/out2'}
      register: locked
      ignore_errors: yes
    - assert:
        that:
          - \"locked.msg == 'A vault password or secret must be specified to decrypt ' ~ playbook_dir ~ '/secret.txt'\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-vvv"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("SECRET"), "{}", run.stdout);
    // As Ansible's copy action shows it: the content went to the host as a file.
    assert!(run.stdout.contains("\"content\": null"), "{}", run.stdout);
}

#[test]
fn a_modules_own_diff_is_registered_as_it_returned_it() {
    let s = one_host();
    s.write("gone/sub/f", "x\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - file: {path: '{{ playbook_dir }}/gone', state: absent}
      register: r
    - assert:
        that:
          - r.diff.before.path_content.files == [playbook_dir ~ '/gone/sub/f']
          - r.diff.after.state == 'absent'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--diff"]);
    run.assert_code(0);
}

#[test]
fn package_takes_its_manager_from_ansible_package_use() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - package: {name: doesnotmatter}
      vars: {ansible_package_use: lola}
      register: r
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - \"'Could not find a matching action for the \\\"lola\\\" package manager.' == r.msg\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn a_role_handler_includes_tasks_named_from_the_role_folder() {
    let s = one_host();
    s.write(
        "roles/r/tasks/main.yml",
        "- command: 'true'\n  notify: do_include\n",
    );
    s.write(
        "roles/r/tasks/handlers.yml",
        "- debug: {msg: included handler}\n",
    );
    s.write(
        "roles/r/handlers/main.yml",
        "- name: do_include\n  include_tasks: tasks/handlers.yml\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: [r]\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.messages(), ["included handler"], "{}", run.stdout);
}

#[test]
fn debug_checks_var_and_splatted_args_as_ansible() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    indirect_omit: '{{ omit }}'
    splat: {msg: '{{ omit }}', var: shown}
    shown: yes
  tasks:
    - debug: {var: {a: 1}}
      register: r
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - \"r.msg is contains 'is not a string and conversion is not allowed'\"
    - debug:
      args: '{{ \"a string\" }}'
      register: r
      ignore_errors: yes
    - assert:
        that: r.msg is contains \"Task args must resolve to a 'dict' not 'str'\"
    - debug:
      args: '{{ splat }}'
      register: r
    - assert:
        that: r.shown
    - debug: {var: indirect_omit}
      register: r
    - assert:
        that: [r.indirect_omit == '<<Omit>>', r.warnings | length == 1]
    - debug: {var: '{{ \"shown\" }}'}
      register: r
      ignore_errors: yes
    - assert:
        that: r.msg is contains 'untrusted template or expression'
    - set_fact: {ansible_facts: {nonfact: 1}}
    - debug: {var: ansible_facts}
    - assert:
        that: nonfact is not defined
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

/// A task's own `diff` keyword shows (or hides) its diff whatever `--diff` says, and a failed
/// debug loop ends with the task's own line, as Ansible's default callback prints them.
#[test]
fn the_diff_keyword_and_a_failed_debug_loop_print_as_ansible() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: '@@/shown.txt', content: foo}
      diff: true
    - copy: {dest: '@@/hidden.txt', content: bar}
    - debug: {msg: 'item {{ item }}'}
      failed_when: item == 2
      ignore_errors: true
      loop: [1, 2]
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(run.stdout.contains("+foo"), "{}", run.stdout);
    assert!(!run.stdout.contains("+bar"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "fatal: [h1]: FAILED! => {\"msg\": \"One or more items failed\"}\n...ignoring"
        ),
        "{}",
        run.stdout
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: '@@/shown.txt', content: foo2}
    - copy: {dest: '@@/hidden.txt', content: bar2}
      diff: false
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "--diff"]);
    run.assert_code(0);
    assert!(run.stdout.contains("+foo2"), "{}", run.stdout);
    assert!(!run.stdout.contains("+bar2"), "{}", run.stdout);
}

/// The default callback's display settings, as ansible.cfg or the environment give them: `ok`
/// and `skipping` results left out (a task that shows nothing shows no banner), failures on
/// standard error, and a failed task's path before its line.
#[test]
fn display_settings_leave_out_results_and_move_failures_as_ansible() {
    let s = one_host();
    s.write(
        "ansible.cfg",
        "[defaults]\ndisplay_ok_hosts = false\ndisplay_skipped_hosts = false\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  tasks:
    - name: quiet
      debug: {msg: hidden}
    - name: skipped
      debug: {msg: hidden}
      when: false
    - name: loud
      command: echo hi
    - name: broken
      fail: {msg: shown}
      ignore_errors: true
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        !run.stdout.contains("TASK [quiet]") && !run.stdout.contains("TASK [skipped]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("TASK [loud]") && run.stdout.contains("changed: [h1]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("fatal: [h1]: FAILED!"),
        "{}",
        run.stdout
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[
            ("ANSIBLE_DISPLAY_FAILED_STDERR", "1"),
            ("ANSIBLE_SHOW_TASK_PATH_ON_FAILURE", "1"),
        ],
    );
    run.assert_code(0);
    assert!(
        run.stderr.contains("fatal: [h1]: FAILED!"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("fatal:"), "{}", run.stdout);
    assert!(
        run.stdout.contains("TASK [broken]") && run.stdout.contains("site.yml:11\n...ignoring"),
        "{}",
        run.stdout
    );
}

/// Arguments from templates are layered as Ansible 2.19 layers them: the `args:` keyword's
/// template under the action's own, and both under what is written out; `omit` in a layer takes
/// an argument away.
#[test]
fn templated_task_args_are_layered_as_ansible() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    vp: {that: true, success_msg: from vp, quiet: true}
    rp: {success_msg: from rp, fail_msg: from rp, quiet: false}
  tasks:
    - assert: '{{ vp }}'
      args: '{{ rp }}'
      register: r
    - assert:
        that: r.msg == 'from vp'
    - assert: '{{ vp }} success_msg=from_kv quiet={{ omit }}'
      args: {success_msg: masked, fail_msg: shown}
      register: r
    - assert:
        that: r.msg == 'from_kv'
    - action:
        module: assert that=true
        args: {success_msg: from action args}
        success_msg: masked
      register: r
    - assert:
        that: r.msg == 'from action args'
    - assert: '{{ [vp] }}'
      register: r
      ignore_errors: yes
    - assert:
        that: >-
          r.msg == \"Task failed: Finalization of task args for 'ansible.builtin.assert' failed:
          Task args must resolve to a 'dict' not 'list'.\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(!run.stderr.contains("_params"), "{}", run.stderr);
}

#[test]
fn an_undefined_lookup_default_names_the_missing_variable() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - debug:
        msg: \"{{ lookup('env', 'SETTLE_SURELY_UNSET', default=bogus_var) }}\"
      register: r
      ignore_errors: yes
    - assert:
        that: r.msg is contains \"'bogus_var' is undefined\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn a_boolean_keyword_that_is_no_boolean_fails_its_task() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  user: nobody_needed_locally
  tasks:
    - debug: {msg: fine}
      diff: yes
      register: good
    - debug: {msg: not important}
      diff: yes.
      ignore_errors: true
      register: bad
    - assert:
        that:
          - good is success
          - bad is failed
          - bad.msg is contains \"The value 'yes.' could not be converted to 'bool'\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn malformed_plays_are_refused_in_ansibles_words() {
    let s = one_host();
    let cases = [
        ("[]\n", "A playbook must contain at least one play", 4),
        (
            "- hosts: []\n  tasks: []\n",
            "Hosts list cannot be empty. Please check your playbook",
            4,
        ),
        (
            "- hosts: all\n  tasks: 123\n",
            "A malformed block was encountered while loading tasks: 123 should be a list or None",
            4,
        ),
        (
            "- hosts: all\n  roles: 123\n",
            "A malformed role declaration was encountered",
            4,
        ),
        (
            "- hosts: all\n  roles: ['foo,bar']\n",
            "Invalid old style role requirement: foo,bar",
            1,
        ),
        (
            "- hosts: all\n  vars_prompt:\n    - foo: bar\n",
            "Invalid vars_prompt data structure, missing 'name' key",
            4,
        ),
        (
            "- hosts: all\n  user: a\n  remote_user: b\n",
            "both 'user' and 'remote_user' are set for this play.",
            4,
        ),
    ];
    for (playbook, message, code) in cases {
        s.write("site.yml", playbook);
        let run = s.settle(&["site.yml", "-i", "hosts"]);
        run.assert_code(code);
        assert!(run.stderr.contains(message), "{playbook}: {}", run.stderr);
    }
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  roles: null\n  vars_prompt: null\n  tasks: []\n",
    );
    s.settle(&["site.yml", "-i", "hosts"]).assert_code(0);
}

#[test]
fn delegate_facts_gives_set_facts_to_the_delegate_also_from_a_block() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2"]));
    s.write(
        "site.yml",
        "\
- hosts: h1
  gather_facts: no
  tasks:
    - set_fact: {direct: 1}
      delegate_to: h2
      delegate_facts: true
    - block:
        - set_fact: {inherited: 2}
      delegate_to: h2
      delegate_facts: true
    - set_fact: {per_item: '{{ item }}'}
      delegate_to: '{{ item }}'
      delegate_facts: true
      loop: [h2]
    - assert:
        that:
          - direct is undefined and inherited is undefined and per_item is undefined
          - hostvars.h2.direct == 1
          - hostvars.h2.inherited == 2
          - hostvars.h2.per_item == 'h2'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn skipping_a_plays_tag_skips_its_fact_gathering_and_handler_flushes() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: yes
  tags: the_whole_play
  tasks:
    - debug: {msg: tagged}
      changed_when: true
      notify: h
  handlers:
    - name: h
      debug: {msg: handler_ran}
",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "--skip-tags", "the_whole_play"],
        &[("ANSIBLE_DEBUG", "1")],
    );
    run.assert_code(0);
    assert!(!run.stdout.contains("Gathering Facts"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("handler notifications"),
        "{}",
        run.stdout
    );
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &[("ANSIBLE_DEBUG", "1")]);
    run.assert_code(0);
    assert_eq!(
        run.stdout
            .matches("META: triggered running handlers for h1")
            .count(),
        1,
        "{}",
        run.stdout
    );
}

#[test]
fn a_macro_whose_body_is_one_expression_returns_its_value() {
    let s = one_host();
    s.write(
        "templates/json_macro.j2",
        "{% macro m() %}{{ {\"foo\": \"bar\"} }}{% endmacro %}\n{{ m() }}\n",
    );
    s.write(
        "templates/mixed.j2",
        "{% macro m() %}{{ [1, 2] }}{% endmacro %}\n{% macro t() %}text {{ 1 }}{% endmacro %}\n{{ m() | length }} {{ t() }} {{ m()[0] }}\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    data_converted: \"{{ lookup('template', 'json_macro.j2') }}\"
    inline: \"{% macro m() %}{{ [1] }}{% endmacro %}{{ m() | length }}\"
  tasks:
    - assert:
        that:
          - data_converted['foo'] == 'bar'
          - lookup('template', 'mixed.j2') == '2 text 1 1\\n'
          - inline == 1
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn pause_checks_its_arguments_and_waits_for_no_one_without_a_terminal() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - pause:
      register: prompt
    - pause: {seconds: 0.1}
      register: short
    - pause: {seconds: hello}
      register: bad_int
      ignore_errors: yes
    - pause: {minutes: 1, seconds: 1}
      register: exclusive
      ignore_errors: yes
    - pause: {foo: bar}
      register: invalid
      ignore_errors: yes
    - assert:
        that:
          - prompt.user_input == ''
          - short.stdout is search('Paused for \\d+\\.\\d+ seconds')
          - \"'unable to convert to int' in bad_int.msg\"
          - '\"parameters are mutually exclusive: minutes|seconds\" in exclusive.msg'
          - '\"Unsupported parameters for (pause) module: foo.\" in invalid.msg'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Not waiting for response to prompt as stdin is not interactive"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_boolean_keyword_that_renders_to_omit_keeps_its_default() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: 'false'
      ignore_errors: \"{{ nope | default(omit) }}\"
      check_mode: \"{{ None }}\"
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
}

#[test]
fn assert_without_a_condition_says_so_in_ansibles_words() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - assert: {}
      register: missing
      ignore_errors: yes
    - assert: {that: }
      register: empty
      ignore_errors: yes
    - assert:
        that:
          - \"missing.msg == 'missing required arguments: that'\"
          - empty.msg is contains('Empty conditional expression')
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn loop_items_keep_the_trust_of_each_value() {
    // Ansible 2.19: a loop item written in the playbook is a trusted expression, one a template
    // computed is not; a list of conditions reached through the item is used as written.
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    a_var: one
  tasks:
    - assert: '{{ item }}'
      loop:
        - that: a_var == 'one'
        - that: ['1 == 1', '{{ a_var == \"one\" }}']
    - assert: '{{ item }}'
      loop:
        - that: \"'hi' == '{{ 'hi' }}'\"
      register: computed
      ignore_errors: true
    - assert:
        that: '{{ item }}'
      loop: ['1 == 1', '1 == 42']
      register: indirect
      ignore_errors: true
    - assert:
        that: '{{ item.checks }}'
      loop:
        - checks: ['a_var is defined', 'a_var == \"one\"']
    - include_tasks: checks.yml
      loop:
        - checks: ['a_var == \"one\"']
    - assert:
        that:
          - computed is failed
          - computed.results[0].msg is contains 'untrusted'
          - indirect.results[0] is success
          - indirect.results[1].msg is contains 'Assertion failed'
          - indirect.results[1].item == '1 == 42'
",
    );
    s.write(
        "checks.yml",
        "\
- assert:
    that: '{{ item.checks }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn json_from_trusted_text_keeps_the_legacy_unsafe_marker_untrusted() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    text: !unsafe '{\"plain\": \"avalue\", \"marked\": {\"__ansible_unsafe\": \"{{ not_rendered }}\"}}'
  tasks:
    - set_fact:
        data: '{{ text | ansible._protomatter.apply_trust | from_json(profile=\"inventory_legacy\") }}'
    - assert:
        that:
          - data.plain == 'avalue'
          - data.plain is ansible._protomatter.tagged_with 'TrustedAsTemplate'
          - data.marked == '{' ~ '{ not_rendered }}'
          - data.marked is not ansible._protomatter.tagged_with 'TrustedAsTemplate'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn a_role_with_argument_specs_checks_its_arguments_first() {
    let s = one_host();
    s.write(
        "roles/b/meta/argument_specs.yml",
        "\
argument_specs:
  main:
    short_description: Main entry point for role B.
    options:
      b_str: {type: str, required: true}
      b_int: {type: int, required: true}
      nested:
        type: dict
        options:
          inner: {type: dict, options: {level: {type: int, required: true}}}
",
    );
    s.write("roles/b/tasks/main.yml", "- debug: msg=ran\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - include_role: {name: b}
      vars: {b_str: x, b_int: '5'}
    - block:
        - import_role: {name: b}
          vars:
            b_int: ~
            nested: {inner: {other: true}}
        - fail: msg='not reached'
      rescue:
        - assert:
            that:
              - ansible_failed_task.name == \"Validating arguments against arg spec 'main' - Main entry point for role B.\"
              - ansible_failed_result.argument_errors | length == 4
              - \"'missing required arguments: b_str' in ansible_failed_result.argument_errors\"
              - \"'missing required arguments: level found in nested -> inner' in ansible_failed_result.argument_errors\"
              - \"'nested.inner.other. Supported parameters include: level.' in ansible_failed_result.argument_errors\"
              - ansible_failed_result.argument_errors[1] is search('b_int. is of type NoneType and we were unable to convert to int')
              - ansible_failed_result.validate_args_context.name == 'b'
              - ansible_failed_result.argument_spec_data.b_int.type == 'int'
    - import_role: {name: b, rolespec_validate: false}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    // Tagged `always`: it runs whatever `--tags` selects.
    s.write(
        "tagged.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - import_role: {name: b}
      vars: {b_str: x, b_int: 5}
",
    );
    let run = s.settle(&["tagged.yml", "-i", "hosts", "--tags", "nothing"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(
            "TASK [b : Validating arguments against arg spec 'main' - Main entry point for role B.]"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_registered_loop_keeps_its_items_trusted_and_host_output_untrusted() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - command: echo '{{ '{{' }} 1 == 1 }}'
      loop:
        - checks: ['item is success', \"item.stdout is contains('1 == 1')\"]
      register: ran
    - assert:
        that: '{{ item.item.checks }}'
      loop: '{{ ran.results }}'
    - assert:
        that: '{{ item.stdout }}'
      loop: '{{ ran.results }}'
      register: hostile
      ignore_errors: true
    - assert:
        that: \"{{ 'a' }} == {{ 'a' }}\"
      register: meta
      ignore_errors: true
    - assert:
        that:
          - hostile is failed
          - meta.msg is contains 'untrusted template or expression'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn templated_lookup_arguments_render_and_wrapped_conditions_are_deprecated() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    word: dude
    ansible_deprecation_warnings: true
  tasks:
    - debug:
        msg: \"{{ lookup('pipe', 'echo {{ word }}') }}\"
      register: piped
    - assert:
        that:
          - |
            {{ query('pipe', 'echo {{ \"dude\" }}') == [\"dude\"] }}
          - piped.msg == 'dude'
    - assert:
        that: '{{ word == \"dude\" }}'
      register: wrapped
    - assert:
        that:
          - wrapped.deprecations | length == 1
          - wrapped.deprecations[0].msg is contains 'should not be surrounded by templating delimiters'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("[DEPRECATION WARNING]: Conditionals should not be surrounded"),
        "{}",
        run.stderr
    );
}

#[test]
fn ssh_arguments_ssh_cannot_take_make_the_host_unreachable() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - ping:
      vars:
        ansible_connection: ssh
        ansible_host: 127.0.0.1
        ansible_ssh_common_args: MEEEEEE
      register: bad_args
      ignore_unreachable: true
    - assert:
        that:
          - bad_args is unreachable
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn the_config_lookup_reads_the_sudo_become_plugins_options() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - assert:
        that:
          - lookup('config', 'become_flags', plugin_type='become', plugin_name='sudo') == '-H -S -n'
          - lookup('config', 'become_exe', plugin_type='become', plugin_name='ansible.builtin.sudo') == 'sudo'
    - assert:
        that:
          - lookup('config', 'become_flags', plugin_type='become', plugin_name='sudo') == '-n'
      vars:
        ansible_become_flags: '-n'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
}

#[test]
fn module_warnings_are_printed_once_and_kept_in_the_registered_result() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - find: paths=@@/missing-dir
      register: found
      loop: [1, 2]
    - assert:
        that: found.results[0].warnings[0] is search('missing-dir')
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-v"]);
    run.assert_code(0);
    let warning = "[WARNING]: Skipped '";
    assert_eq!(run.stderr.matches(warning).count(), 1, "{}", run.stderr);
    // Shown as a warning, not again inside the result line.
    assert!(!run.stdout.contains("\"warnings\""), "{}", run.stdout);
}

#[test]
fn file_module_diffs_are_ansibles_byte_for_byte() {
    // Attribute changes as indented JSON mappings, `(content)`/`(file attributes)` headers for
    // line and block edits, no "before" header for a file that did not exist: as
    // ansible-playbook 2.19 prints them, for a real run and a dry run.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    let root = s.root();
    s.write("t.j2", "hello {{ 1 + 1 }}\n");
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: localhost
  gather_facts: no
  tasks:
    - file: path={root}/x mode=0600
    - copy: dest={root}/y content=\"same\\n\" mode=0600
    - lineinfile: path={root}/y line=more mode=0644
    - blockinfile: path={root}/y block=blk mode=0600
    - replace: path={root}/y regexp=more replace=less
    - template: src=t.j2 dest={root}/z mode=0640
    - file: path={root}/w state=directory mode=0755
    - file: path={root}/w state=absent
    - copy: dest={root}/new content=n
"
        ),
    );
    let prepare = || {
        let _ = std::fs::remove_file(s.path("new"));
        for (name, text) in [("x", ""), ("y", "same\n"), ("z", "hello 2\n")] {
            s.write(name, text);
            std::fs::set_permissions(
                s.path(name),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .unwrap();
        }
    };
    let tasks = |out: &str| {
        let start = out.find("TASK [").unwrap_or(0);
        let end = out.find("PLAY RECAP").unwrap_or(out.len());
        out[start..end].to_string()
    };
    for mode in [&["--diff"][..], &["--check", "--diff"][..]] {
        prepare();
        let mut args = vec!["site.yml", "-i", "localhost,", "-c", "local"];
        args.extend_from_slice(mode);
        let ours = s.settle(&args);
        ours.assert_code(0);
        prepare();
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        assert_eq!(tasks(&ours.stdout), tasks(&theirs), "{mode:?}");
    }
}

#[test]
fn skipped_loops_print_and_register_as_ansibles() {
    // A skipped item's line ends with a space; a loop with every item skipped, or none, ends
    // with the task's own `skipping: [h]`; a debug task's skipped results are cleaned as
    // Ansible's callback cleans them (-v); a registered loop says `skipped` and "All items
    // skipped"; -v opens with which configuration is in force.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - command: echo {{ item }}
      loop: [a, b]
      when: item == 'b'
      register: some
    - debug: msg=x
      loop: [1]
      when: false
      register: nothing
    - command: 'true'
      loop: []
    - debug: var=some.skipped
    - debug: var=nothing
",
    );
    let tasks = |out: &str| {
        let out = out
            .lines()
            .filter(|l| {
                !l.contains("\"start\"") && !l.contains("\"end\"") && !l.contains("\"delta\"")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let end = out.find("PLAY RECAP").unwrap_or(out.len());
        out[..end].to_string()
    };
    for verbose in [&[][..], &["-v"][..]] {
        let mut args = vec!["site.yml", "-i", "localhost,", "-c", "local"];
        args.extend_from_slice(verbose);
        let ours = s.settle(&args);
        ours.assert_code(0);
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        assert_eq!(tasks(&ours.stdout), tasks(&theirs), "{verbose:?}");
    }
}

#[test]
fn looped_includes_print_every_included_line_first_as_ansible() {
    // Ansible's linear strategy: all `included:` lines of a looped include_tasks (a repeated
    // item is its own file again), then the included tasks file after file. (With several
    // hosts Ansible orders the lines as the hosts' results arrive, which no test can pin.)
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write("inc.yml", "- debug: msg=\"inc {{ item }}\"\n");
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - include_tasks: inc.yml
      loop: [1, 2, 2]
    - debug: msg=done
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let tasks = |out: &str| {
        let end = out.find("PLAY RECAP").unwrap_or(out.len());
        out[..end].replace(&s.root(), "ROOT")
    };
    assert_eq!(tasks(&ours.stdout), tasks(&theirs));
}

#[test]
fn loop_results_carry_index_var_and_extended_loop_as_ansibles() {
    // Each registered item has its `index_var` and (under `extended`) `ansible_loop`;
    // without `extended` there is no `ansible_loop` at all.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: msg={{ item }}
      loop: [a, b]
      loop_control: {index_var: i, extended: true}
      register: rr
    - debug:
        msg: \"{{ rr.results | map(attribute='i') | list }} {{ rr.results[1].ansible_index_var }} {{ rr.results[0].ansible_loop.nextitem }}\"
    - debug:
        msg: \"{{ ansible_loop | default('none') }}\"
      loop: [1]
",
    );
    let run = s.settle(&["site.yml", "-i", "localhost,", "-c", "local"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("\"msg\": \"[0, 1] i b\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\"msg\": \"none\""), "{}", run.stdout);
}

const COMPUTE_ACTION: &str = r#"from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        result.update(changed=True, sum=int(args['a']) + int(args['b']),
                      host=task_vars['inventory_hostname'], greeting=self._templar.template(task_vars['greeting']),
                      check=self._play_context.check_mode, connection=self._connection.transport)
        return result
"#;

/// A playbook with an `action_plugins/` folder: a plugin that re-exports `debug`, one that
/// computes its result on the controller, and one that raises.
fn with_action_plugins(s: &Scratch) {
    s.write(
        "action_plugins/say.py",
        "from __future__ import annotations\n\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n",
    );
    s.write("action_plugins/compute.py", COMPUTE_ACTION);
    s.write(
        "action_plugins/broken.py",
        "from ansible.plugins.action import ActionBase\n\nclass ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        raise Exception('it broke')\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  vars:
    base: 40
    greeting: \"hello {{ base }}\"
  tasks:
    - say: msg=\"said {{ base }}\"
      register: said
    - compute: {a: \"{{ base }}\", b: 2}
      register: r
      notify: computed
    - compute: {a: \"{{ item }}\", b: 1}
      loop: [1, 2]
      register: looped
    - broken:
      register: b
      ignore_errors: true
    - assert:
        that:
          - said.msg == 'said 40'
          - r is changed
          - r.sum == 42
          - r.host == 'h1'
          - r.greeting == 'hello 40'
          - r.connection == 'local'
          - not r.check
          - looped.results | map(attribute='sum') | list == [2, 3]
          - looped.results[1].item == 2
          - b is failed
          - \"b.msg == 'Task failed: it broke'\"
  handlers:
    - name: computed
      debug: {msg: handler ran}
",
    );
}

#[test]
fn action_plugins_beside_the_playbook_run_as_ansible_runs_them() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = host_with_ansible_core(&python);
    with_action_plugins(&s);
    // The playbook's own assertions hold with Ansible itself.
    s.ansible_playbook(&ansible_playbook, &["site.yml", "-i", "hosts"], &[]);
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    run.assert_code(0);
    assert_eq!(run.counts("h1"), (6, 2, 0, 0, 0, 1), "{}", run.stdout);
    assert!(
        run.stdout.contains("[ERROR]: Task failed: it broke"),
        "{}",
        run.stdout
    );
    assert!(run.messages().contains(&"handler ran".to_string()));
}

#[test]
fn without_ansible_core_an_action_plugin_says_how_to_get_it_and_an_alias_still_runs() {
    let s = one_host();
    with_action_plugins(&s);
    let env = [("SETTLE_ANSIBLE_PYTHON", "/nonexistent/python3")];
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &env);
    run.assert_code(4);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("\"compute\" is an Ansible action plugin")
            && all.contains("SETTLE_ANSIBLE_PYTHON"),
        "{all}"
    );
    s.write(
        "alias.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - say: msg=\"said {{ 40 }}\"\n",
    );
    let run = s.settle_with_env(&["alias.yml", "-i", "hosts"], &env);
    run.assert_code(0);
    assert!(
        run.messages().contains(&"said 40".to_string()),
        "{}",
        run.stdout
    );
}

#[test]
fn with_first_found_skips_undefined_terms_and_looks_where_the_action_name_says() {
    let s = one_host();
    s.write("files/b.txt", "b\n");
    s.write("files/f.txt", "f\n");
    s.write("vars/f.txt", "f\n");
    s.write(
        "action_plugins/show_var.py",
        "from ansible.plugins.action.debug import ActionModule\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: false
  vars:
    lazy: [\"{{ missing }}a.txt\", b.txt]
  tasks:
    - debug: var=item
      with_first_found: [\"{{ missing }}x\", b.txt]
      register: r1
    - debug: var=item
      with_first_found: [{files: \"{{ lazy }}\"}]
      register: r2
    - show_var: {var: item}
      with_first_found: [f.txt]
      register: r3
    - debug: var=item
      with_first_found: [f.txt]
      register: r4
    - assert:
        that:
          - r1.results[0].item is search('/files/b.txt$')
          - r2.results[0].item is search('/files/b.txt$')
          - r3.results[0].item is search('/vars/f.txt$')
          - r4.results[0].item is search('/files/f.txt$')
",
    );
    if let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") {
        s.ansible_playbook(&ansible_playbook, &["site.yml", "-i", "hosts"], &[]);
    }
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").0, 5, "{}", run.stdout);
}

const PLUGINS_PLAYBOOK: &str = "\
- hosts: localhost
  gather_facts: false
  vars:
    word: settle
  tasks:
    - debug:
        msg: \"{{ word | shout }} {{ word | wrap('[', ']') }} {{ 'abc' is palindrome }} {{ 'aba' is palindrome }}\"
    - debug:
        msg: \"{{ lookup('greet', 'a', 'b', punct='!') }} {{ query('greet', 'c') }} {{ [1, 2] | map('shout') | list }}\"
    - debug:
        msg: \"{{ lookup('basedir') }}\"
    - debug:
        msg: \"{{ ['a', 'b'] | map('twice') | list }} {{ ['aa', 'ab'] | select('palindrome') | list }} {{ {'k': 1} | ansible.builtin.to_json }}\"
";

/// Writes filter, test and lookup plugins beside a playbook that uses them.
fn with_python_plugins(s: &Scratch) {
    s.write(
        "filter_plugins/words.py",
        "class FilterModule:\n    def filters(self):\n        return {'shout': lambda v: str(v).upper() + '!', 'wrap': lambda v, a, b: a + v + b, 'twice': lambda v: v * 2}\n",
    );
    s.write(
        "test_plugins/mirror.py",
        "class TestModule:\n    def tests(self):\n        return {'palindrome': lambda v: v == v[::-1]}\n",
    );
    s.write(
        "lookup_plugins/greet.py",
        "from ansible.plugins.lookup import LookupBase\n\nclass LookupModule(LookupBase):\n    def run(self, terms, variables=None, punct='.', **kwargs):\n        return ['hi %s from %s%s' % (t, variables['word'], punct) for t in terms]\n",
    );
    s.write(
        "lookup_plugins/basedir.py",
        "import os\nfrom ansible.plugins.lookup import LookupBase\n\nclass LookupModule(LookupBase):\n    def run(self, terms, variables=None, **kwargs):\n        return [os.path.basename(self._loader.get_basedir()) == os.path.basename(variables['playbook_dir'])]\n",
    );
    s.write("site.yml", PLUGINS_PLAYBOOK);
}

#[test]
fn python_filter_test_and_lookup_plugins_beside_the_playbook_run_as_in_ansible() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    with_python_plugins(&s);
    let ours = s.settle_with_env(
        &["site.yml", "-i", "localhost,", "-c", "local"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    ours.assert_code(0);
    let theirs = s.ansible_stdout(
        &ansible_playbook,
        &["site.yml", "-i", "localhost,", "-c", "local"],
    );
    let msgs = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.trim_start().starts_with("\"msg\""))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let expected = msgs(&theirs);
    assert_eq!(expected.len(), 4, "{theirs}");
    assert_eq!(msgs(&ours.stdout), expected, "{}", ours.stdout);
}

#[test]
fn a_python_plugin_that_fails_to_load_fails_the_task_with_ansibles_words() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "filter_plugins/broken.py",
        "class Broken:\n    @property\n    def accept_args_markers(self):\n        raise Exception('boom')\n\nclass FilterModule:\n    def filters(self):\n        return {'broken': Broken()}\n",
    );
    s.write(
        "site.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ '' | broken }}\"}\n      register: a\n      ignore_errors: true\n    - debug: {msg: \"{{ '' | nope }}\"}\n      register: b\n      ignore_errors: true\n    - assert:\n        that:\n          - \"a.msg.startswith('The filter plugin ' ~ q ~ 'broken' ~ q ~ ' failed to load: boom')\"\n          - \"b.msg is contains('No filter named ' ~ q ~ 'nope')\"\n      vars: {q: \"'\"}\n",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "localhost,", "-c", "local"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    );
    run.assert_code(0);
}

#[test]
fn without_ansible_core_a_python_filter_plugin_names_what_is_missing() {
    let s = Scratch::new();
    with_python_plugins(&s);
    let run = s.settle_with_env(
        &["site.yml", "-i", "localhost,", "-c", "local"],
        &[("SETTLE_ANSIBLE_PYTHON", "/nonexistent/python3")],
    );
    run.assert_code(2);
    assert!(
        run.stdout.contains("No filter named 'shout'")
            && run
                .stdout
                .contains("no Python on this machine can import ansible")
            && run.stdout.contains("pip install ansible-core"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_first_element_is_undefined_in_conditions_and_debug() {
    // `mylist[0]` of an empty list is Ansible's undefined value ("list object has no element
    // 0"): `is defined` skips, `is undefined` runs, and debug shows it instead of failing.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  vars:
    mylist: []
  tasks:
    - debug: var=mylist[0]
      when: mylist[0] is defined
      register: skipped
    - debug: var=mylist[0]
      when: mylist[0] is undefined
    - assert:
        that: skipped is skipped
",
    );
    let run = s.settle(&["site.yml", "-i", "localhost,", "-c", "local"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("list object has no element 0"),
        "{}",
        run.stdout
    );
}

#[test]
fn module_times_no_clock_holds_are_clamped_not_a_panic() {
    // `timeout: 1e300` and a timeout past u64's seconds in a module's own arguments: the
    // deadline is "never", not an overflow that kills the run.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - wait_for: path=/etc/passwd timeout=1e300
    - expect:
        command: 'true'
        responses: {}
        timeout: 18446744073709551615
",
    );
    let run = s.settle(&["site.yml", "-i", "localhost,", "-c", "local"]);
    run.assert_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn loop_pause_waits_between_items_not_after_the_last() {
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: msg={{ item }}
      loop: [1]
      loop_control: {pause: 3}
",
    );
    let started = std::time::Instant::now();
    s.settle(&["site.yml", "-i", "localhost,", "-c", "local"])
        .assert_code(0);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn a_macro_that_includes_a_template_gives_it_the_templates_names_as_jinja_does() {
    // Jinja2 looks a macro's names up in its template when it is called, so a template the
    // macro includes sees the including template's imports and top-level `set`s, even those
    // assigned after the macro (ansible-core's `template` target, issue 72262). An error inside
    // the included template is that template's own, not "error in \"x.j2\"".
    let s = Scratch::new();
    s.write(
        "templates/vars.j2",
        "{% set test = \"I'm test variable\" %}\n",
    );
    s.write("templates/uses_vars.j2", "{{ vars.test }} {{ later }}\n");
    s.write(
        "templates/top.j2",
        "{% import 'vars.j2' as vars with context %}\n\
         {% macro included() %}{% include 'uses_vars.j2' %}{% endmacro %}\n\
         {% macro stripped(x) -%}\n   {% include 'uses_vars.j2' %}{{ x }}\n{%- endmacro %}\n\
         {% set later = 'set after' %}\n\
         {{ included()|indent }}[{{ stripped(1) }}]\n",
    );
    s.write("templates/undefined.j2", "{{ nope }}\n");
    s.write("templates/outer.j2", "a\n{% include 'undefined.j2' %}\n");
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: msg=\"{{ lookup('template', 'top.j2') }}\"
    - debug: msg=\"{{ lookup('template', 'outer.j2') }}\"
      ignore_errors: true
      register: failed
    - assert:
        that: failed.msg is contains(\"'nope' is undefined\")
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    assert!(
        ours.stdout
            .contains("\"msg\": \"I'm test variable set after[I'm test variable set after1]\\n\""),
        "{}",
        ours.stdout
    );
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let first_task = |out: &str| {
        let start = out.find("TASK [").unwrap_or(0);
        let end = out[start + 1..]
            .find("TASK [")
            .map_or(out.len(), |e| e + start + 1);
        out[start..end].to_string()
    };
    assert_eq!(first_task(&ours.stdout), first_task(&theirs), "{theirs}");
}

#[test]
fn template_errors_and_constant_templates_in_lookup_args_are_ansibles() {
    // From ansible-core's `templating` target: a keyword argument given twice, a test name that
    // cannot exist, a variable that refers to itself and a syntax error fail in Ansible's
    // words; string constants holding templates inside list and dict literals given to a
    // lookup are rendered, keeping their type; `{% set %}` lines before a conditional
    // template's one expression leave its value a boolean.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  vars:
    v1: one
  tasks:
    - debug:
        msg: \"{{ lookup('vars', 'v1', default='', default='') }}\"
      ignore_errors: true
      register: repeated
    - raw: echo {{ [{}] | selectattr('failed', 'asdf ', true) }}
      ignore_errors: true
      register: no_test
    - raw: echo {{ cycle }}
      vars:
        cycle: '{{ cycle }}'
      ignore_errors: true
      register: cycle
    - raw: echo {{ {{ 1 }} }}
      ignore_errors: true
      register: syntax
    - debug:
        msg: \"{{ lookup('list', ['{{ 1 }}']) }}\"
      register: in_list
    - debug:
        msg: \"{{ lookup('dict', {'key': '{{ 1 }}'}) }}\"
      register: in_dict
    - assert:
        that:
          - \"'keyword argument repeated' in repeated.msg\"
          - no_test.msg is contains(\"No test named 'asdf '\")
          - cycle.msg is contains('Recursive loop detected in template')
          - syntax.msg is contains('Syntax error in template')
          - in_list.msg == [1]
          - in_dict.msg.value == 1
    - assert:
        that: |-
          {% set a = '{{ 1 }}' %}
          {% set b = '{{ 2 }}' %}
          {{ a + b == ('{' ~ '{ 1 }}{' ~ '{ 2 }}') }}
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    assert!(theirs.contains("failed=0"), "{theirs}");
}

#[test]
fn dump_object_shows_an_error_as_a_value_as_ansible_does() {
    // ansible-core's `templating` target: in Ansible 2.19 an error raised while computing a
    // value (a variable whose template does not parse, `undef` given a number, a failing
    // lookup, `from_json` of bad text) is a value that `ansible._protomatter.dump_object` shows
    // as `{'exception': …}`; `from_json` fails in Python's words, with its position.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - assert:
        that:
          - (syntax_error | ansible._protomatter.dump_object).exception.message is contains 'Syntax error in template'
          - (undef(0) | ansible._protomatter.dump_object).exception.message is contains 'argument must be of type'
          - (lookup('pipe', 'exit 1') | ansible._protomatter.dump_object).exception.message is contains \"lookup plugin 'pipe' failed\"
          - ('{' | from_json | ansible._protomatter.dump_object).exception.message is contains 'Expecting property name enclosed in double quotes'
          - ([1] | ansible._protomatter.dump_object) == [1]
      vars:
        syntax_error: \"{{ #' \"
    - debug:
        msg: \"{{ (item | from_json | ansible._protomatter.dump_object).exception.message }}\"
      loop: ['{', \"{'a':1}\", '', '[1,', '{\"a\" 1}', '[1 2]', '1 2']
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    for expected in [
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "Expecting value: line 1 column 1 (char 0)",
        "Expecting value: line 1 column 4 (char 3)",
        "Expecting ':' delimiter: line 1 column 6 (char 5)",
        "Expecting ',' delimiter: line 1 column 4 (char 3)",
        "Extra data: line 1 column 3 (char 2)",
    ] {
        assert!(
            ours.stdout.contains(expected),
            "{expected}\n{}",
            ours.stdout
        );
    }
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    assert!(theirs.contains("failed=0"), "{theirs}");
    for expected in [
        "Expecting value: line 1 column 4 (char 3)",
        "Extra data: line 1 column 3 (char 2)",
    ] {
        assert!(theirs.contains(expected), "{expected}\n{theirs}");
    }
}

#[test]
fn vars_holds_hostvars_when_flattened_as_in_ansible() {
    // `{{ vars }}` lists `hostvars` as Ansible's does; a host's variables inside it do not
    // list `hostvars` again (which would never end).
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  vars:
    mine: 1
  tasks:
    - debug:
        msg: '{{ vars }}'
      register: vars_result
    - assert:
        that:
          - vars_result.msg | type_debug == 'dict'
          - vars_result.msg.mine == 1
          - vars_result.msg.hostvars.localhost.inventory_hostname == 'localhost'
          - vars_result.msg.hostvars.localhost.hostvars is undefined
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    s.settle(&args).assert_code(0);
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    assert!(theirs.contains("failed=0"), "{theirs}");
}

#[test]
fn a_variables_mapping_renders_only_the_items_used_as_in_ansible() {
    // Ansible 2.19 renders a variable's mapping or list lazily, through any number of
    // `{{ other }}` indirections: `{{ top.key1 }}` never runs the lookup in `top.key2`
    // (ansible-core's `templating` target). An item that fails fails where it is used, and
    // printing the whole value uses every item. A host's templated mapping read through
    // `hostvars` renders in that host's scope.
    let s = Scratch::new();
    let root = s.root();
    s.write(
        "hosts",
        "h1 ansible_connection=local\nh2 ansible_connection=local\n",
    );
    s.write(
        "host_vars/h2.yml",
        "d:\n  key: \"{{ 'templated' | upper }}\"\n  other: \"{{ inventory_hostname }}\"\n  deep: [\"{{ 1 + 1 }}\", {n: \"{{ 'x' * 2 }}\"}]\n",
    );
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: h1
  gather_facts: no
  vars:
    top: '{{{{ intermediate }}}}'
    intermediate: '{{{{ lowest }}}}'
    lowest:
      key1: static data
      key2:
        tripwire: '{{{{ lookup(\"pipe\", \"touch {root}/bang\") }}}}'
        bad: '{{{{ undefined_thing }}}}'
    items: ['{{{{ 1 }}}}', '{{{{ lowest.key1 }}}}', 3]
  tasks:
    - set_fact:
        lazy: '{{{{ top.key1 }}}}'
    - stat: path={root}/bang
      register: bang
    - assert:
        that:
          - lazy == 'static data'
          - not bang.stat.exists
          - items == [1, 'static data', 3]
          - items[-1] == 3 and items | length == 3
          - hostvars['h2'].d.key == 'TEMPLATED'
          - hostvars['h2'].d.other == 'h2'
          - hostvars.h2.d.deep[1].n == 'xx'
          - \"hostvars.h2.d == {{'key': 'TEMPLATED', 'other': 'h2', 'deep': [2, {{'n': 'xx'}}]}}\"
    - debug:
        msg: '{{{{ top }}}}'
      register: whole
      ignore_errors: true
    - debug:
        msg: 'text {{{{ top }}}}'
      register: text
      ignore_errors: true
    - assert:
        that:
          - lowest.key2.bad | default('x') == 'x'
          - lowest.key2.bad is undefined
          - whole is failed and whole.msg is contains(\"'undefined_thing' is undefined\")
          - text is failed and text.msg is contains(\"'undefined_thing' is undefined\")
"
        ),
    );
    let args = ["site.yml", "-i", "hosts"];
    s.settle(&args).assert_code(0);
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let _ = std::fs::remove_file(s.path("bang"));
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    assert!(theirs.contains("failed=0"), "{theirs}");
}

#[test]
fn verbose_results_print_as_ansibles_default_callback() {
    // From -vvv every result is one key a line (failed ones, no_log ones too), a module's
    // invocation lists its whole spec with defaults, `task path:` follows each banner (from
    // -vv), fact gathering shows no result, and a censored failure's [ERROR] says Ansible's
    // default sentence. Connection chatter (`<host> …`) and module packing lines are Ansible's
    // own and left out of the comparison, as are the times a command reports.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  tasks:
    - shell: echo LOG_ME
    - command: echo failing
      failed_when: true
      ignore_errors: true
    - shell: echo {{ item }}
      loop: [one, two]
      failed_when: item == 'two'
      ignore_errors: true
    - command: echo hidden
      no_log: true
      failed_when: true
      ignore_errors: true
    - ping:
    - file: dest={{ playbook_dir }}/made state=directory mode=0755
    - wait_for: timeout=0
    - raw: echo raw
",
    );
    let compared = |out: &str| -> String {
        let start = out.find("PLAY [").unwrap_or(0);
        let end = out.find("PLAY RECAP").unwrap_or(out.len());
        out[start..end]
            .replace(&s.root(), "ROOT")
            .lines()
            .filter(|l| {
                !l.starts_with('<')
                    && !l.starts_with("Including module_utils")
                    && !l.starts_with("Using module file")
                    && !l.starts_with("Pipelining")
                    && !["\"delta\": ", "\"start\": ", "\"end\": "]
                        .iter()
                        .any(|k| l.contains(k))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for v in ["-vv", "-vvv"] {
        let args = ["site.yml", "-i", "localhost,", "-c", "local", v];
        let _ = std::fs::remove_dir(s.path("made"));
        let ours = s.settle(&args);
        ours.assert_code(0);
        let _ = std::fs::remove_dir(s.path("made"));
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        assert_eq!(compared(&ours.stdout), compared(&theirs), "{v}");
    }
}

#[test]
fn ansible_no_log_sets_the_default_no_log_as_ansibles() {
    // ANSIBLE_NO_LOG=1 hides every result whose task and play say nothing; `no_log: false`
    // still shows its own.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: msg=shown
      no_log: false
    - debug: msg=hidden
    - command: echo hidden
      loop: [1, 2]
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local", "-v"];
    let env = [("ANSIBLE_NO_LOG", "1"), ("ANSIBLE_NOCOLOR", "1")];
    let ours = s.settle_with_env(&args, &env);
    ours.assert_code(0);
    let theirs = std::process::Command::new(&ansible_playbook)
        .args(args)
        .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
        .envs(env)
        .current_dir(s.root())
        .output()
        .expect("run ansible-playbook");
    let theirs = String::from_utf8_lossy(&theirs.stdout);
    let count = |out: &str, what: &str| out.matches(what).count();
    assert_eq!(count(&ours.stdout, "shown"), count(&theirs, "shown"));
    assert_eq!(count(&ours.stdout, "output has been hidden"), 3);
    assert_eq!(
        count(&ours.stdout, "output has been hidden"),
        count(&theirs, "output has been hidden")
    );
    assert_eq!(count(&ours.stdout, "hidden\""), 0, "{}", ours.stdout);
    let tasks = |out: &str| {
        let start = out.find("PLAY [").unwrap_or(0);
        let end = out.find("PLAY RECAP").unwrap_or(out.len());
        out[start..end].to_string()
    };
    assert_eq!(tasks(&ours.stdout), tasks(&theirs));
}

#[test]
fn an_error_excerpts_empty_line_is_its_number_alone_as_ansibles() {
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: msg=one\n\n    - command: 'false'\n      ignore_errors: true\n",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let excerpt = |out: &str| -> Vec<String> {
        out.lines()
            .skip_while(|l| !l.starts_with("Origin:"))
            .take(5)
            .map(|l| l.replace(&s.root(), "ROOT"))
            .collect()
    };
    assert!(
        excerpt(&ours.stdout).contains(&"5".to_string()),
        "{}",
        ours.stdout
    );
    assert_eq!(excerpt(&ours.stdout), excerpt(&theirs));
}

#[test]
fn error_blocks_are_printed_once_and_unreachable_hosts_get_one_as_ansibles() {
    // Ansible's display prints the same [ERROR] block once per run (three loop items failing
    // alike print one), and an unreachable host gets its block too.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - command: 'false'
      loop: [1, 2, 3]
      ignore_errors: true
- hosts: nowhere
  gather_facts: no
  tasks:
    - ping:
",
    );
    let args = ["site.yml", "-i", "localhost,nowhere,"];
    // `nowhere` goes over ssh to a port nothing listens on; localhost stays local.
    s.write(
        "host_vars/nowhere.yml",
        "ansible_host: 127.0.0.1\nansible_port: 9\n",
    );
    s.write("host_vars/localhost.yml", "ansible_connection: local\n");
    let ours = s.settle(&args);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let blocks = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with("[ERROR]: Task failed:"))
            .map(|l| l.split(" via ").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(blocks(&ours.stdout).len(), 2, "{}", ours.stdout);
    assert_eq!(blocks(&ours.stdout), blocks(&theirs), "{theirs}");
}

#[test]
fn vvv_prints_the_local_connection_but_not_into_a_json_stream() {
    let s = Scratch::new();
    s.write(
        "site.yml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - ping:\n",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local", "-vvv"];
    let text = s.settle(&args);
    text.assert_code(0);
    assert!(
        text.stdout
            .contains("<localhost> ESTABLISH LOCAL CONNECTION FOR USER: "),
        "{}",
        text.stdout
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--output", "json"]);
    let json = s.settle(&json_args);
    json.assert_code(0);
    assert!(!json.stdout.contains("ESTABLISH"), "{}", json.stdout);
}

#[test]
fn module_defaults_written_as_one_template_are_rendered_for_the_host() {
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  tasks:
    - ping:
      module_defaults:
        ansible.builtin.ping: '{{ ping_defaults }}'
      vars:
        ping_defaults: {data: '{{ word }}'}
        word: individual
      register: r
    - assert:
        that: r.ping == 'individual'
    - ping:
      module_defaults:
        ping: '{{ not_a_mapping }}'
      vars:
        not_a_mapping: [1]
      register: bad
      ignore_errors: true
    - assert:
        that:
          - bad is failed
          - bad.msg is search('the module_defaults of ping must be a mapping, not list')
",
    );
    s.settle(&["site.yml", "-i", "localhost,", "-c", "local"])
        .assert_code(0);
}

#[test]
fn module_defaults_of_an_action_group_apply_to_its_actions() {
    // A collection's groups are found where ansible-core finds collections.
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "collections/ansible_collections/my/coll/meta/runtime.yml",
        "\
action_groups:
  pings:
    - ansible.builtin.ping
  everything:
    - metadata:
        extend_group: my.coll.pings
    - ansible.builtin.debug
",
    );
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  module_defaults:
    group/my.coll.everything: {data: from the group}
  tasks:
    - ping:
      register: grouped
    - ping:
      module_defaults:
        ping: {data: its own}
      register: own
    - command: echo not in the group
      register: other
    - assert:
        that:
          - grouped.ping == 'from the group'
          - own.ping == 'its own'
          - other is succeeded
",
    );
    s.settle_with_env(
        &["site.yml", "-i", "localhost,", "-c", "local"],
        &[("SETTLE_ANSIBLE_PYTHON", &python)],
    )
    .assert_code(0);
}

#[test]
fn default_none_gives_none_as_jinja_does() {
    // `default(None)` is None, by position or by name (it was '', silently: an argument that
    // is none read as no argument); the other forms keep their meaning.
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: no
  vars:
    empty: ''
  tasks:
    - debug:
        msg: \"{{ [nope | default(None), nope | default(default_value=None), empty | default('x', true), empty | default(boolean=true, default_value='y'), empty | d('z'), nope | d, {'a': nope | default(None)}] | to_json }}\"
    - debug:
        var: x
      vars:
        x: '{{ nope | default(None) }}'
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    assert!(
        ours.stdout
            .contains(r#""msg": "[null, null, \"x\", \"y\", \"\", \"\", {\"a\": null}]""#),
        "{}",
        ours.stdout
    );
    assert!(ours.stdout.contains("\"x\": null"), "{}", ours.stdout);
    if let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") {
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        let tasks = |out: &str| out[..out.find("PLAY RECAP").unwrap_or(out.len())].to_string();
        assert_eq!(tasks(&ours.stdout), tasks(&theirs));
    }
}

#[test]
fn an_unreachable_host_is_reported_and_registered_as_ansibles() {
    // "Task failed: …" in results and registered values, an `exception` on the task (or on each
    // item of a loop), a loop's items in its final UNREACHABLE! line, and under no_log all of
    // it censored: printed byte for byte as ansible-playbook prints it.
    let s = Scratch::new();
    s.write(
        "inv",
        "fake ansible_connection=ssh ansible_host=settle-no-such-host.invalid\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: fake
  gather_facts: no
  tasks:
    - ping:
      register: one
      ignore_unreachable: true
    - lineinfile: path=/dev/null line={{ item }}
      loop: [a, b]
      register: looped
      ignore_unreachable: true
    - lineinfile: path=/dev/null line={{ item }}
      loop: [hunter2-secret]
      no_log: true
      ignore_unreachable: true
    - debug:
        msg: \"{{ [one.msg, one.exception, looped.results[1].msg, looped.exception is undefined] }}\"
",
    );
    let args = ["site.yml", "-i", "inv"];
    let ours = s.settle(&args);
    assert!(!ours.stdout.contains("hunter2"), "{}", ours.stdout);
    assert!(
        ours.stdout
            .contains("\"Task failed: Failed to connect to the host via ssh: "),
        "{}",
        ours.stdout
    );
    if let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") {
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        let tasks = |out: &str| {
            out[..out.find("PLAY RECAP").unwrap_or(out.len())]
                .replace(&s.root(), "ROOT")
                .to_string()
        };
        assert_eq!(tasks(&ours.stdout), tasks(&theirs));
    }
}

#[test]
fn a_delegated_tasks_remote_user_sees_the_plays_variables() {
    // Ansible renders it with the delegate's variables and the task's, the play's included
    // (the copy target's `remote_user: '{{ remote_unprivileged_user }}'` over a delegated
    // task); extra vars win over the delegate's inventory.
    let s = Scratch::new();
    s.write(
        "hosts",
        "h1 ansible_connection=local\nother ansible_connection=local who=nobody-such\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: h1
  gather_facts: no
  vars:
    deploy_user: root
  remote_user: '{{ deploy_user }}'
  tasks:
    - command: echo one
      delegate_to: localhost
    - command: echo two
      delegate_to: other
      remote_user: '{{ who }}'
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-e", "who=root"]);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["changed"], 2, "{}", run.stdout);
}

#[test]
fn collections_keyword_searches_listed_collections_for_unqualified_modules_as_ansible() {
    // `collections:` on the play reaches its blocks and tasks (the nearest list wins; an empty
    // one searches nothing); a role takes its meta/main.yml's list, not the play's; a collection
    // that has the module wins over the builtin of that name; a `module_defaults` key that is
    // not qualified names the builtin, not what the search found.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "collections/ansible_collections/ns/coll/plugins/modules/ping.py",
        "\
#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
def main():
    m = AnsibleModule(argument_spec=dict(data=dict(default='x')))
    m.exit_json(changed=False, ping='coll', data=m.params['data'])
main()
",
    );
    s.write("roles/listing/meta/main.yml", "collections: [ns.coll]\n");
    let role_tasks = "- ping:\n  register: r\n- debug: msg=\"role {{ r.ping }}\"\n";
    s.write("roles/listing/tasks/main.yml", role_tasks);
    s.write("roles/plain/tasks/main.yml", role_tasks);
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: false
  collections: [ns.coll]
  tasks:
    - ping:
      register: a
    - debug: msg=\"play {{ a.ping }}\"
    - block:
        - ping:
          register: b
        - debug: msg=\"block {{ b.ping }}\"
      collections: [ansible.builtin]
    - ping:
      collections: []
      register: c
    - debug: msg=\"task {{ c.ping }}\"
    - import_role: name=listing
    - import_role: name=plain
    - ping:
      module_defaults:
        ping: {data: builtin}
        ns.coll.ping: {data: collection}
      register: d
    - debug: msg=\"defaults {{ d.data }}\"
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle_with_env(&args, &[("SETTLE_ANSIBLE_PYTHON", &python)]);
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    for msg in [
        "play coll",
        "block pong",
        "task pong",
        "role coll",
        "role pong",
        "defaults collection",
    ] {
        assert!(theirs.contains(msg), "{msg}: {theirs}");
    }
    let tasks = |out: &str| out[..out.find("PLAY RECAP").unwrap_or(out.len())].to_string();
    assert_eq!(tasks(&ours.stdout), tasks(&theirs));
}

/// A host's facts are one map, seen two ways as in Ansible: `ansible_facts` (each fact without
/// its `ansible_` prefix, `ansible_local` keeping it) and, unless `inject_facts_as_vars` is
/// off, each fact as a variable of its own (in `vars` and `hostvars` too). Without injection
/// only `ansible_local` stays a variable, `{}` before any facts. `set_fact` values are
/// variables either way, and facts too with `cacheable`. Compared with ansible-playbook when
/// it is installed.
#[test]
fn facts_are_one_map_seen_as_ansible_facts_and_as_variables_unless_injection_is_off() {
    let play = "\
- hosts: localhost
  gather_facts: false
  tasks:
    - debug: msg=\"before {{ ansible_local | default('UNDEF') }} {{ ansible_facts }}\"
    - setup: {fact_path: \"{{ playbook_dir }}/facts.d\", gather_subset: [min, local]}
    - debug: msg=\"local {{ ansible_facts.keys() | select('match', '.*local.*') | list }} {{ ansible_local.pref.general.asdf }}\"
    - debug: msg=\"distribution {{ ansible_distribution is defined }} {{ ansible_facts.distribution is defined }}\"
    - set_fact: {ansible_foo: 1, plain_c: 2}
    - debug: msg=\"set_fact {{ ansible_facts.foo | default('UNDEF') }} {{ ansible_facts.plain_c | default('UNDEF') }} {{ ansible_foo }} {{ plain_c }}\"
    - set_fact: {ansible_bar: 1, plain_d: 2, cacheable: true}
    - debug: msg=\"cacheable {{ ansible_facts.bar }} {{ ansible_facts.plain_d }} {{ ansible_bar }} {{ plain_d }}\"
    - debug: msg=\"hostvars {{ hostvars['localhost'].ansible_distribution is defined }} {{ hostvars['localhost'].ansible_facts.distribution is defined }} {{ vars.ansible_distribution is defined }} {{ 'ansible_distribution' in vars }}\"
";
    let expected = |inject: bool| -> Vec<String> {
        let (t, before) = match inject {
            true => ("True", "UNDEF"),
            false => ("False", "{}"),
        };
        vec![
            format!("before {before} {{}}"),
            "local ['ansible_local'] 1".into(),
            format!("distribution {t} True"),
            "set_fact UNDEF UNDEF 1 2".into(),
            "cacheable 1 2 1 2".into(),
            format!("hostvars {t} True {t} {t}"),
        ]
    };
    let ansible_playbook = common::ansible_tool("ansible-playbook");
    for inject in [true, false] {
        let s = Scratch::new();
        s.write("facts.d/pref.fact", "[general]\nasdf=1\n");
        s.write("site.yml", play);
        if !inject {
            s.write("ansible.cfg", "[defaults]\ninject_facts_as_vars = False\n");
        }
        let args = ["site.yml", "-i", "localhost,", "-c", "local"];
        let ours = s.settle(&args);
        ours.assert_code(0);
        assert_eq!(ours.messages(), expected(inject), "{}", ours.stdout);
        if let Some(ansible_playbook) = &ansible_playbook {
            let theirs = s.ansible_stdout(ansible_playbook, &args);
            let theirs: Vec<String> = theirs
                .lines()
                .filter_map(|l| l.trim().strip_prefix("\"msg\": \""))
                .map(|m| m.trim_end_matches('"').to_string())
                .collect();
            assert_eq!(
                theirs,
                expected(inject),
                "ansible-playbook, inject {inject}"
            );
        }
    }
}

#[test]
fn handler_notifications_print_as_ansibles_at_vv() {
    // -vv: `Notification for handler … has been saved.` for each result that notifies (each
    // item of a loop that ran), `NOTIFIED HANDLER … for host` at the flush (before the host's
    // `META:` line for `meta: flush_handlers`) or at once while handlers run, role and listen
    // handlers named as Ansible names them; a handler that a later one notifies waits for the
    // next flush (none after post_tasks' own), as Ansible's single pass over its handlers.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "roles/r/tasks/main.yml",
        "- debug: msg=role\n  changed_when: true\n  notify: r_h\n",
    );
    s.write(
        "roles/r/handlers/main.yml",
        "- name: r_h\n  debug: msg=rolehandler\n  listen: topic\n",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  roles: [r]
  tasks:
    - debug: msg={{ item }}
      loop: [1, 2, 3]
      when: item != 2
      changed_when: true
      notify: [h1, topic]
    - meta: flush_handlers
    - debug: msg=again
      changed_when: true
      notify: [h2, 'r : r_h', h1]
  post_tasks:
    - debug: msg=post
      changed_when: true
      notify: h2
  handlers:
    - name: h1
      debug: msg=h1
    - name: h2
      debug: msg=h2
      changed_when: true
      notify: [h1, h3]
    - name: h3
      debug: msg=h3
    - name: lis
      debug: msg=lis
      listen: topic
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local", "-vv"];
    let ours = s.settle(&args);
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let run = |out: &str| {
        let from = out.find("No config file found").unwrap_or(0);
        out[from..out.find("PLAY RECAP").unwrap_or(out.len())].to_string()
    };
    assert!(
        theirs.contains("NOTIFIED HANDLER r : r_h for localhost"),
        "{theirs}"
    );
    assert_eq!(run(&ours.stdout), run(&theirs));
}

#[test]
fn deprecation_warnings_print_as_ansibles() {
    // ansible-core 2.19's deprecations: a deprecated setting in the environment or
    // ansible.cfg, an INI inventory variable whose name is not valid, `module: k=v` beside `args:`, an empty `args:`, `action:` as a mapping, and
    // a condition in `{{ }}` that gives a value (each place it is written, a block's too);
    // each once, after the one-time hint, on standard error, and none with
    // `deprecation_warnings = False`.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write("ansible.cfg", "[defaults]\nnull_representation = x\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - file: path=@@/x state=touch
      args:
        mode: '0644'
    - action: {module: debug, msg: hi}
    - debug: msg=empty
      args:
    - file: path=@@/x state=touch
      args:
        mode: '0644'
    - debug: msg=x
      when: \"{{ 1 == 1 }}\"
      failed_when: \"{{ false }}\"
    - block:
        - debug: msg=y
          loop: [1, 2]
          changed_when: \"{{ 1 == 1 }}\"
      when: \"{{ 1 == 1 }}\"
",
    );
    s.write(
        "inv",
        "localhost ansible_connection=local foo-bar=1\n[g]\nlocalhost\n[g:vars]\nx.y=2\n",
    );
    let args = ["site.yml", "-i", "inv", "-c", "local"];
    let env = [("ANSIBLE_JINJA2_NATIVE", "1"), ("ANSIBLE_NOCOLOR", "1")];
    let ours = s.settle_with_env(&args, &env);
    ours.assert_code(0);
    let theirs = std::process::Command::new(&ansible_playbook)
        .args(args)
        .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
        .envs(env)
        .current_dir(s.path(""))
        .output()
        .expect("ansible-playbook");
    let theirs = String::from_utf8_lossy(&theirs.stderr);
    assert!(
        theirs.contains("Merging legacy k=v args ('path', 'state')"),
        "{theirs}"
    );
    assert_eq!(
        theirs.matches("Conditionals should not be").count(),
        4,
        "{theirs}"
    );
    assert!(theirs.contains("invalid name 'x.y'"), "{theirs}");
    assert_eq!(ours.stderr, theirs);
    s.write("ansible.cfg", "[defaults]\ndeprecation_warnings = False\n");
    let quiet = s.settle_with_env(&args, &env);
    assert!(!quiet.stderr.contains("DEPRECATION"), "{}", quiet.stderr);
}

#[test]
fn a_failed_fact_gathering_reports_as_ansibles_gather_facts_action() {
    // Ansible gathers through its gather_facts action even with `setup` alone: a failure is the
    // action's ("Action failed"), names the module as `smart` resolves it, shows the module's
    // failure as a sub-event, and the result holds `failed_modules` (with the module's
    // invocation) and the facts without Ansible's internal `_ansible_*` keys.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_subset: [bogus]\n  tasks:\n    - debug: msg=x\n",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle(&args);
    ours.assert_code(2);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let tasks = |out: &str| out[..out.find("PLAY RECAP").unwrap_or(out.len())].to_string();
    assert!(theirs.contains("Action failed"), "{theirs}");
    assert_eq!(tasks(&ours.stdout), tasks(&theirs));
}

/// A fact module of the playbook's own that fails.
const FAILING_FACTS: &str = "\
#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
AnsibleModule(argument_spec={}).fail_json('the module went bang')
";

#[test]
fn a_gather_facts_task_whose_modules_fail_reports_as_ansible_with_tracebacks_when_asked() {
    // Each module's failure is a sub-event of the action's, its result filed under
    // `failed_modules` with an `exception` and none of settle's own keys. With
    // DISPLAY_TRACEBACK asking for errors' tracebacks, Ansible's modules are told
    // (`_ansible_tracebacks_for`) and their own tracebacks, from the host, are registered and
    // shown; settle, not being Python, has none of its own (Ansible's `(traceback missing)`).
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write("library/fail_a.py", FAILING_FACTS);
    s.write("library/fail_b.py", FAILING_FACTS);
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - gather_facts:
        parallel: false
      vars:
        ansible_facts_modules: [fail_a, fail_b]
      ignore_errors: true
      register: g
    - fail_a:
      ignore_errors: true
      register: m
    - debug:
        msg: \"{{ [g.exception.startswith('(traceback missing)'),
                   g.failed_modules.fail_a.exception.startswith('Traceback (most recent'),
                   m.exception.startswith('Traceback (most recent')] }}\"
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let with_python = [("SETTLE_ANSIBLE_PYTHON", python.as_str())];
    let ours = s.settle_with_env(
        &[
            &args[..],
            &["-e", "ansible_python_interpreter=/usr/bin/python3"],
        ]
        .concat(),
        &with_python,
    );
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    assert!(theirs.contains("+--[ Sub-Event 2 of 2 ]---"), "{theirs}");
    // Line for line but the failed modules' results, where settle says `changed` (false)
    // though the module did not.
    let unlike = |out: &str| {
        out.lines()
            .filter(|l| !l.contains("\"failed_modules\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(unlike(&ours.stdout), unlike(&theirs));
    assert!(
        ours.stdout
            .contains("\"fail_b\": {\"changed\": false, \"exception\": \"(traceback unavailable)\", \
                       \"failed\": true, \"invocation\": {\"module_args\": {}}, \"msg\": \"the module went bang\"}}"),
        "{}",
        ours.stdout
    );

    let traced = [with_python[0], ("ANSIBLE_DISPLAY_TRACEBACK", "error")];
    let ours = s.settle_with_env(&args, &traced);
    ours.assert_code(0);
    let shown = &ours.stdout;
    for expected in [
        "+--[ Sub-Event 2 of 2 ]---",
        "(traceback missing)\n\n+--[ Sub-Traceback 1 of 2 ]---\n| \n| Traceback (most recent call last):",
        "| Message: the module went bang\n| \n+--[ End Sub-Traceback ]---",
        "        ^ column 7\n\nTraceback (most recent call last):",
        "\"msg\": [\n        true,\n        true,\n        true\n    ]",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    // The module's traceback is in the error block, not in the result after it.
    assert!(
        !shown.contains("FAILED! => {\"changed\": false, \"exception\""),
        "{shown}"
    );
    // Ansible's own shows the same parts, its controller's traceback between them.
    let theirs = s.ansible_stdout_with_env(&ansible_playbook, &args, &traced[1..]);
    assert!(
        theirs.contains("+--[ Sub-Traceback 2 of 2 ]---"),
        "{theirs}"
    );

    // A value Ansible does not know stops the run before it starts, as Ansible's does.
    let bad = s.settle_with_env(&args, &[("ANSIBLE_DISPLAY_TRACEBACK", "sometimes")]);
    bad.assert_code(5);
    assert!(
        bad.stderr
            .contains("Invalid value ['sometimes'] for config 'DISPLAY_TRACEBACK'"),
        "{}",
        bad.stderr
    );
}

#[test]
fn file_module_results_and_registered_keys_are_ansibles() {
    // A copy or template whose file already holds the content is reported by Ansible's file
    // module (`path`, no `md5sum`, a template no `src`), changed or not; a module's own
    // `_`-prefixed keys are registered (only `_ansible_*` ones go).
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    s.write("t.j2", "port={{ 1 }}\n");
    s.write(
        "library/underscore.py",
        "\
#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec={})
m.exit_json(changed=False, _own='kept', plain=1)
",
    );
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - copy: {content: \"x\\n\", dest: '@@/a', mode: '0644'}
    - copy: {content: \"x\\n\", dest: '@@/a', mode: '0644'}
      register: same
    - copy: {content: \"x\\n\", dest: '@@/a', mode: '0600'}
      register: moded
    - template: {src: t.j2, dest: '@@/t'}
    - template: {src: t.j2, dest: '@@/t'}
      register: tpl
    - underscore:
      register: u
    - debug:
        msg: \"{{ [same.path is defined, same.md5sum is defined, moded.path is defined,
                   tpl.src is defined, tpl.path is defined, u._own | default('gone')] }}\"
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = s.settle_with_env(&args, &[("SETTLE_ANSIBLE_PYTHON", &python)]);
    ours.assert_code(0);
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let last = |out: &str| {
        let at = out.rfind("TASK [debug]").unwrap_or(0);
        out[at..out.find("PLAY RECAP").unwrap_or(out.len())].to_string()
    };
    assert!(theirs.contains("\"kept\""), "{theirs}");
    assert_eq!(last(&ours.stdout), last(&theirs));
}

#[test]
fn user_results_have_ansibles_keys() {
    // The user module's result says what it did as Ansible's does: `system` and `create_home`
    // on a creation, `append` and `move_home` on a modification, `force` and `remove` on a
    // removal, only name and state when nothing was there (as root, on a scratch user).
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the user module needs root");
        return;
    }
    let s = Scratch::new();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - user: {name: settle_h3_scratch, state: absent}
    - user: {name: settle_h3_scratch, create_home: false}
    - user: {name: settle_h3_scratch, create_home: false}
    - user: {name: settle_h3_scratch, comment: x y, create_home: false}
    - user: {name: settle_h3_scratch, state: absent}
    - user: {name: settle_h3_scratch, state: absent}
",
    );
    let args = ["site.yml", "-i", "localhost,", "-c", "local", "-v"];
    let theirs = s.ansible_stdout(&ansible_playbook, &args);
    let ours = s.settle(&args);
    ours.assert_code(0);
    let results = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("ok:") || l.starts_with("changed:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(results(&theirs).len(), 6, "{theirs}");
    assert_eq!(results(&ours.stdout), results(&theirs));
}

#[test]
fn an_adhoc_one_line_run_prints_ansibles_deprecations() {
    // `ansible -o`: the option and the oneline callback are both deprecated in 2.19, one line
    // each (a one-line message takes its help text on the same line).
    let Some(ansible) = common::ansible_tool("ansible") else {
        return;
    };
    let s = Scratch::new();
    let args = [
        "-i",
        "localhost,",
        "-c",
        "local",
        "localhost",
        "-m",
        "ping",
        "-o",
    ];
    let env = [("ANSIBLE_NOCOLOR", "1")];
    let mut ours = vec!["--adhoc"];
    ours.extend(args);
    let ours = s.settle_with_env(&ours, &env);
    ours.assert_code(0);
    let theirs = std::process::Command::new(&ansible)
        .args(args)
        .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
        .envs(env)
        .current_dir(s.path(""))
        .output()
        .expect("ansible");
    let theirs = String::from_utf8_lossy(&theirs.stderr);
    assert!(
        theirs.contains("The '-o' argument is deprecated."),
        "{theirs}"
    );
    assert_eq!(ours.stderr, theirs);
}

/// What each task of a run did, by task name, from its output: `ok <msg as JSON>` for a `debug`
/// that printed a message, `ok`, `failed: <message>` or `skipped` otherwise. For tables of
/// cases run by settle and by ansible-playbook: one task a case, `ignore_errors` on each.
fn outcomes(stdout: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut task = String::new();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("TASK [") {
            task = rest[..rest.rfind(']').unwrap_or(rest.len())].to_string();
        } else if line.starts_with("ok: [") && line.ends_with(" => {") {
            let mut body = String::from("{");
            for inner in lines.by_ref() {
                body.push_str(inner);
                if inner == "}" {
                    break;
                }
            }
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            out.push((task.clone(), format!("ok {}", value["msg"])));
        } else if line.starts_with("ok: [") {
            out.push((task.clone(), "ok".into()));
        } else if let Some(rest) = line.strip_prefix("fatal: [") {
            let message = rest
                .split_once("FAILED! => ")
                .and_then(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
                .and_then(|v| v["msg"].as_str().map(str::to_string))
                .unwrap_or_default();
            out.push((task.clone(), format!("failed: {message}")));
        } else if line.starts_with("skipping: [") {
            out.push((task.clone(), "skipped".into()));
        }
    }
    out
}

/// Runs a play of `debug` tasks (`expressions`, one task each, named after it, errors ignored;
/// `vars` the play's, one `name: value` line each)
/// with settle and with ansible-playbook, and asserts that each task ends the same: the same
/// message, or failed in both (settle's message holding the words `words` gives for that
/// expression, when it gives some). `None` when ansible-playbook is not installed.
fn compare_expressions(vars: &[&str], expressions: &[&str], words: &[(&str, &str)]) -> Option<()> {
    let ansible_playbook = common::ansible_tool("ansible-playbook")?;
    let s = Scratch::new();
    let mut play = String::from("- hosts: localhost\n  gather_facts: false\n");
    if !vars.is_empty() {
        play.push_str("  vars:\n");
    }
    for var in vars {
        play.push_str(&format!("    {var}\n"));
    }
    play.push_str("  tasks:\n");
    for expr in expressions {
        let quoted = serde_json::to_string(&format!("{{{{ {expr} }}}}")).unwrap_or_default();
        let name = serde_json::to_string(expr).unwrap_or_default();
        play.push_str(&format!(
            "    - name: {name}\n      debug:\n        msg: {quoted}\n      ignore_errors: true\n"
        ));
    }
    s.write("site.yml", &play);
    let args = ["site.yml", "-i", "localhost,", "-c", "local"];
    let ours = outcomes(&s.settle(&args).stdout);
    let real = s.ansible_stdout(&ansible_playbook, &args);
    let theirs = outcomes(&real);
    assert_eq!(theirs.len(), expressions.len(), "{real}");
    let mut wrong = Vec::new();
    for ((task, mine), (_, real)) in ours.iter().zip(&theirs) {
        let same = match (mine.strip_prefix("failed: "), real.starts_with("failed: ")) {
            (Some(message), true) => words
                .iter()
                .filter(|(expr, _)| expr == task)
                .all(|(_, w)| message.contains(w)),
            (None, false) => mine == real,
            _ => false,
        };
        if !same {
            wrong.push(format!("{task}: settle {mine} / ansible {real}"));
        }
    }
    assert_eq!(ours.len(), theirs.len(), "{ours:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Some(())
}

#[test]
fn a_variable_whose_template_fails_otherwise_than_undefined_is_an_error_even_to_defined_and_default()
 {
    // Ansible 2.19 makes such a variable a captured-exception marker: `is defined`, `is
    // undefined` and `default` let it through and the template fails; only an undefined
    // value inside (`{{ nobody }}`, an unknown function or method) makes it undefined. A
    // mapping or list holding one is defined: its items render when read.
    let vars = [
        "syntax: '{{ 1 + }}'",
        "statement: '{% if %}x{% endif %}'",
        "zero: '{{ 1 / 0 }}'",
        "text: 'a {{ 1 / 0 }} b'",
        "nested: 'x{{ syntax }}'",
        "filter: '{{ 1 | nosuchfilter }}'",
        "failing: \"{{ 'abc' | from_json }}\"",
        "lookup: \"{{ lookup('file', '/nonexistent/x') }}\"",
        "loop: '{{ loop }}'",
        "items: ['{{ 1 + }}']",
        "mapping: {a: '{{ 1 + }}'}",
        "nobody_text: 'a {{ nobody }} b'",
        "function: '{{ nosuchfn() }}'",
        "method: \"{{ 'a'.nosuchmethod() }}\"",
        "undefined_call: '{{ nobody.x() }}'",
    ];
    let mut expressions = Vec::new();
    for name in [
        "syntax",
        "statement",
        "zero",
        "text",
        "nested",
        "filter",
        "failing",
        "lookup",
        "loop",
        "nobody_text",
        "function",
        "method",
        "undefined_call",
    ] {
        expressions.push(format!("{name} is defined"));
        expressions.push(format!("{name} is undefined"));
        expressions.push(format!("{name} | default('d')"));
    }
    for more in [
        "items is defined",
        "mapping is defined",
        "mapping.a is defined",
        "mapping.a | default('d')",
        "syntax.x | default('d')",
        "lookup('vars', 'syntax', default='d')",
        "vars['syntax'] | default('d')",
    ] {
        expressions.push(more.to_string());
    }
    let expressions: Vec<&str> = expressions.iter().map(String::as_str).collect();
    compare_expressions(
        &vars,
        &expressions,
        &[
            (
                "syntax is defined",
                "Syntax error in template: unexpected 'end of print statement'",
            ),
            (
                "statement | default('d')",
                "Syntax error in template: Expected an expression, got 'end of statement block'",
            ),
            ("zero | default('d')", "division by zero"),
            ("loop is defined", "Recursive loop detected"),
        ],
    );
}

#[test]
fn filters_and_tests_give_an_undefined_argument_back_or_fail_on_it_as_ansible() {
    // Ansible 2.19 calls a filter only when none of its arguments is undefined, else the
    // undefined value is the result (`x | f | default(d)` is `d`; `x | f` fails naming `x`);
    // `default`, `mandatory`, `ternary` and `type_debug` take it; a test fails on it, but
    // `defined` and `undefined`.
    let mut expressions: Vec<String> = Vec::new();
    for filter in [
        "b64decode",
        "b64encode",
        "basename",
        "bool",
        "checksum",
        "combinations(2)",
        "comment",
        "dict2items",
        "difference([1])",
        "dirname",
        "e",
        "escape",
        "expanduser",
        "fileglob",
        "first",
        "flatten",
        "from_yaml_all",
        "hash('sha1')",
        "indent",
        "int",
        "intersect([1])",
        "length",
        "lower",
        "map('string')",
        "md5",
        "normpath",
        "permutations",
        "pprint",
        "product",
        "quote",
        "realpath",
        "regex_escape",
        "regex_findall('x')",
        "regex_replace('a', 'b')",
        "regex_search('x')",
        "sha1",
        "shuffle",
        "splitext",
        "symmetric_difference([1])",
        "to_json",
        "to_uuid",
        "tojson",
        "truncate",
        "union([1])",
        "urldecode",
        "urlencode",
        "urlsplit",
        "win_basename",
        "win_splitdrive",
        "zip([1])",
        "zip_longest([1])",
        "ternary(1, 2)",
    ] {
        expressions.push(format!("nobody | {filter}"));
        expressions.push(format!("nobody | {filter} | default('d')"));
    }
    for test in [
        "abs",
        "all",
        "any",
        "boolean",
        "contains(1)",
        "directory",
        "divisibleby(2)",
        "eq(1)",
        "even",
        "exists",
        "falsy",
        "file",
        "in([1])",
        "iterable",
        "le(1)",
        "match('x')",
        "mapping",
        "none",
        "number",
        "issubset([1])",
        "sequence",
        "string",
        "truthy",
        "uri",
        "version('1.0', '>')",
        "vault_encrypted",
    ] {
        expressions.push(format!("nobody is {test}"));
    }
    for more in [
        "[1] | union(nobody) | default('d')",
        "'x' | regex_replace('x', nobody) | default('d')",
        "[1] | join(nobody) | default('d')",
        "{'a': 1} | combine(nobody) | default('d')",
        "[3] | map('add', nobody) | default('d')",
        "true | ternary(1, nobody)",
        "nobody | type_debug",
        "nobody | default(nobody) | default('e')",
        "1 is eq(nobody)",
        "nobody is defined",
    ] {
        expressions.push(more.to_string());
    }
    let expressions: Vec<&str> = expressions.iter().map(String::as_str).collect();
    compare_expressions(
        &[],
        &expressions,
        &[
            ("nobody | comment", "'nobody' is undefined"),
            ("nobody | map('string')", "'nobody' is undefined"),
            ("nobody is abs", "'nobody' is undefined"),
        ],
    );
}

#[test]
fn collections_keyword_searches_ansible_cores_installed_collections_and_the_playbooks_own() {
    // Ansible 2.19 searches the collections on its Python's path too (where `pip install
    // ansible` puts them); reads a templated `collections` entry as written, warning; and
    // searches first the collection a playbook lives in (`ansible_collections/NS/COLL/
    // playbooks/x.yml` under a collection root), even before a `collections` list.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let s = Scratch::new();
    for (dir, said) in [
        ("site/ansible_collections/ns/inst", "inst"),
        ("root/ansible_collections/ns/home", "home"),
    ] {
        s.write(
            &format!("{dir}/plugins/modules/hello.py"),
            &format!(
                "#!/usr/bin/python\nfrom ansible.module_utils.basic import AnsibleModule\n\
                 AnsibleModule(argument_spec={{}}).exit_json(changed=False, said='{said}')\n"
            ),
        );
    }
    s.write(
        "root/ansible_collections/ns/home/playbooks/site.yml",
        "\
- hosts: localhost
  gather_facts: false
  tasks:
    - hello:
      register: a
    - debug: msg=\"default {{ a.said }}\"
    - hello:
      collections: [ns.inst]
      register: b
    - debug: msg=\"listed {{ b.said }}\"
- hosts: localhost
  gather_facts: false
  collections: [ns.inst]
  tasks:
    - hello:
      register: c
    - debug: msg=\"play {{ c.said }}\"
",
    );
    s.write(
        "site.yml",
        "\
- hosts: localhost
  gather_facts: false
  vars:
    coll: ns.home
  collections: ['{{ coll }}', ns.inst]
  tasks:
    - hello:
      register: a
    - debug: msg=\"installed {{ a.said }}\"
",
    );
    let site = s.root() + "/site";
    let root = s.root() + "/root";
    let env = [
        ("PYTHONPATH", site.as_str()),
        ("ANSIBLE_COLLECTIONS_PATH", root.as_str()),
        ("SETTLE_ANSIBLE_PYTHON", python.as_str()),
    ];
    let tasks = |out: &str| out[..out.find("PLAY RECAP").unwrap_or(out.len())].to_string();
    for playbook in [
        "site.yml",
        "root/ansible_collections/ns/home/playbooks/site.yml",
    ] {
        let args = [playbook, "-i", "localhost,", "-c", "local"];
        let ours = s.settle_with_env(&args, &env);
        ours.assert_code(0);
        let theirs = std::process::Command::new(&ansible_playbook)
            .args(args)
            .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
            .envs(env)
            .env("ANSIBLE_NOCOLOR", "1")
            .current_dir(s.dir.path())
            .output()
            .expect("run ansible-playbook");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&theirs.stderr),
        );
        assert_eq!(tasks(&ours.stdout), tasks(&stdout), "{stderr}");
        for line in stderr.lines().filter(|l| l.starts_with("[WARNING]: ")) {
            assert!(ours.stderr.contains(line), "{line}\n{}", ours.stderr);
        }
    }
}

#[test]
fn filters_and_tests_given_none_answer_as_ansibles_python_does() {
    // Ansible's filters and tests are Python: given None, most fail as Python fails (`none |
    // basename` is not "None"), a few answer (`none | string`, `none is uri`).
    let mut expressions: Vec<String> = Vec::new();
    for filter in [
        "basename",
        "batch(2)",
        "bool",
        "combinations(2)",
        "comment",
        "difference([1])",
        "dirname",
        "expanduser",
        "fileglob",
        "first",
        "flatten",
        "indent",
        "int",
        "intersect([1])",
        "join",
        "length",
        "list",
        "normpath",
        "permutations",
        "product",
        "realpath",
        "relpath",
        "shuffle",
        "slice(2)",
        "sort",
        "splitext",
        "string",
        "strftime",
        "sum",
        "symmetric_difference([1])",
        "to_json",
        "truncate",
        "union([1])",
        "urldecode",
        "win_basename",
        "win_dirname",
        "win_splitdrive",
        "zip([1])",
        "zip_longest([1])",
        "ternary(1, 2)",
        "type_debug",
    ] {
        expressions.push(format!("none | {filter}"));
    }
    for test in [
        "abs",
        "all",
        "any",
        "contains(1)",
        "directory",
        "divisibleby(2)",
        "even",
        "exists",
        "file",
        "ge(1)",
        "gt(1)",
        "issubset([1])",
        "issuperset([1])",
        "iterable",
        "le(1)",
        "link",
        "link_exists",
        "lt(1)",
        "mount",
        "none",
        "odd",
        "string",
        "uri",
        "url",
        "version('1.0', '>')",
    ] {
        expressions.push(format!("none is {test}"));
    }
    let expressions: Vec<&str> = expressions.iter().map(String::as_str).collect();
    compare_expressions(
        &[],
        &expressions,
        &[
            (
                "none | basename",
                "The filter plugin 'ansible.builtin.basename' failed: expected str, bytes or \
                 os.PathLike object, not NoneType",
            ),
            ("none | join", "'NoneType' object is not iterable"),
            (
                "none is exists",
                "stat: path should be string, bytes, os.PathLike or integer, not NoneType",
            ),
        ],
    );
}

#[test]
fn each_pattern_term_that_matches_nothing_is_warned_about_before_its_play() {
    let s = Scratch::new();
    s.write(
        "hosts",
        "[web]\nw1 ansible_connection=local\nw2 ansible_connection=local\n",
    );
    s.write(
        "site.yml",
        "- hosts: nope1,web\n  gather_facts: no\n  tasks: [{debug: {msg: a}}]\n- hosts: nope2\n  gather_facts: no\n  tasks: [{debug: {msg: b}}]\n",
    );
    // As ansible-playbook 2.19: one warning per term (not the whole pattern), for a play's
    // pattern before its banner (compared by hand: the two streams are apart here), and for
    // each `--limit` term before anything runs.
    let run = s.settle(&["site.yml", "-i", "hosts", "-l", "w1,nope3,!nope4"]);
    run.assert_code(0);
    let warned: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("[WARNING]: Could not match supplied host pattern, ignoring: ")
        })
        .collect();
    assert_eq!(
        warned,
        ["nope3", "nope4", "nope1", "nope2"],
        "{}",
        run.stderr
    );
    assert_eq!(run.messages(), ["a"]);
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &[]);
    let both = format!("{}{}", run.stderr, run.stdout);
    assert!(!both.contains("ignoring: nope1,web"), "{both}");
    // An empty group, and `all` of an inventory without hosts, match no host but are no
    // mismatch.
    s.write("empty", "[db]\n");
    s.write(
        "none.yml",
        "- hosts: db:all\n  gather_facts: no\n  tasks: []\n",
    );
    let run = s.settle(&["none.yml", "-i", "empty"]);
    run.assert_code(0);
    assert!(!run.stderr.contains("Could not match"), "{}", run.stderr);
}

#[test]
fn a_result_shows_its_diff_key_only_from_vvv_on() {
    let s = one_host();
    let path = s.dir.path().join("f");
    std::fs::write(&path, "").unwrap();
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - file: {{path: {}, mode: '0600'}}\n",
            path.display()
        ),
    );
    // As Ansible's `_dump_results`: `--diff` prints the diff; the result line leaves it out
    // below -vvv.
    let run = s.settle(&["site.yml", "-i", "hosts", "-v", "--diff"]);
    run.assert_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("changed: [h1] => {"))
        .unwrap();
    assert!(!line.contains("\"diff\""), "{line}");
    assert!(run.stdout.contains("+++ after"), "{}", run.stdout);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = s.settle(&["site.yml", "-i", "hosts", "-vvv", "--diff"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 1, "{}", run.stdout);
    assert!(run.stdout.contains("    \"diff\": {"), "{}", run.stdout);
}

#[test]
fn the_to_datetime_examples_of_ansibles_documentation_give_ansibles_numbers() {
    // ansible-doc -t filter to_datetime: the difference of two dates, in seconds and days; the
    // values below are what ansible-playbook 2.19 printed for this playbook.
    let s = one_host();
    s.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: no
  vars:
    date1: '2022-11-15T03:23:13.6869568Z'
    date2: '2021-12-15T16:06:24.400087Z'
    date1_short: '{{ date1|regex_replace("([^.]+)(\.\d{6})(\d*)(.+)", "\1\2\4") }}'
    iso8601format: '%Y-%m-%dT%H:%M:%S.%fZ'
    date_diff_isoed: '{{ (date1_short|to_datetime(iso8601format) - date2|to_datetime(iso8601format)).total_seconds() }}'
    delta: '{{ ("2016-08-14 20:00:12" | to_datetime) - ("2015-12-25" | to_datetime("%Y-%m-%d")) }}'
  tasks:
    - debug:
        msg:
          - '{{ (("2016-08-14 20:00:12" | to_datetime) - ("2015-12-25" | to_datetime("%Y-%m-%d"))).total_seconds() }}'
          - '{{ (("2016-08-14 20:00:12" | to_datetime) - ("2016-08-14 18:00:00" | to_datetime)).seconds }}'
          - '{{ (("2016-08-14 20:00:12" | to_datetime) - ("2015-12-25" | to_datetime("%Y-%m-%d"))).days }}'
          - '{{ date_diff_isoed }}'
          - 'x {{ ("2015-12-25" | to_datetime("%Y-%m-%d")) - ("2016-08-14 20:00:12" | to_datetime) }}'
          - '{{ "2016-08-14 20:00:12" | to_datetime }}'
          - '{{ 0.00001 }}'
    - debug:
        var: delta
      ignore_errors: true
"#,
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(
            "        20203212.0,\n        7212,\n        233,\n        28898209.286869,\n        \
             \"x -234 days, 3:59:48\",\n        \"2016-08-14T20:00:12\",\n        1e-05\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Type 'timedelta' is unsupported for variable storage."),
        "{}",
        run.stdout
    );
    assert_eq!(run.counts("h1").5, 1, "{}", run.stdout);
}

#[test]
fn a_touch_diff_shows_the_state_found_the_mode_and_the_times_as_ansible() {
    // ansible-playbook 2.19 --diff for file state=touch: the state it found and `touch`, the
    // mode a new file was made with, atime and mtime as numbers; an unchanged touch registers
    // the states alone.
    let s = one_host();
    std::fs::write(s.path("old"), "").unwrap();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - file: {path: '@@/new', state: touch, mode: '0600'}\n    - file: {path: '@@/old', state: touch, modification_time: '202001011200.00'}\n    - file: {path: '@@/old', state: touch, modification_time: preserve, access_time: preserve}\n      register: r\n    - debug: {var: r.diff}\n",
    );
    let run = s.settle_with_env(&["site.yml", "-i", "hosts", "--diff"], &[("TZ", "UTC")]);
    run.assert_code(0);
    let out = &run.stdout;
    let new = out.split("TASK [file]").nth(1).unwrap();
    for line in [
        "-    \"mode\": \"0644\",",
        "+    \"mode\": \"0600\",",
        "-    \"state\": \"absent\"",
        "+    \"state\": \"touch\"",
    ] {
        assert!(new.contains(line), "{line} in {new}");
    }
    let number = |text: &str, key: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"{key}\": ")))
            .all(|l| {
                l.trim_end_matches(',')
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .parse::<f64>()
                    .is_ok()
            })
    };
    assert!(number(new, "atime") && number(new, "mtime"), "{new}");
    let old = out.split("TASK [file]").nth(2).unwrap();
    assert!(old.contains("+    \"mtime\": 1577880000.0,"), "{old}");
    assert!(
        old.contains("-    \"state\": \"file\"\n+    \"state\": \"touch\""),
        "{old}"
    );
    assert!(
        out.contains("\"after\": {\n            \"path\": ")
            && out.contains("\"state\": \"touch\"\n        },\n        \"before\": {"),
        "{out}"
    );
    assert_eq!(run.counts("h1").1, 2, "{out}");
}

#[test]
fn conditions_and_play_hosts_fail_and_warn_in_ansible_2_19s_words_at_their_own_place() {
    // Each block as ansible-playbook 2.19 printed it for this playbook (paths aside).
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=\"{{ play_hosts }}\"\n    - debug: msg=x\n      when: \"'a'\"\n    - debug: msg=x\n      when: nope\n      ignore_errors: true\n",
    );
    let root = s.path("site.yml").display().to_string();
    let env = [
        ("ANSIBLE_DEPRECATION_WARNINGS", "1"),
        ("ANSIBLE_NOCOLOR", "1"),
    ];
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &env);
    run.assert_code(2);
    let deprecation = format!(
        "[DEPRECATION WARNING]: The `play_hosts` magic variable is deprecated. This feature will be removed from ansible-core version 2.23.
Origin: {root}:4:14

2   gather_facts: false
3   tasks:
4     - debug: msg=\"{{{{ play_hosts }}}}\"
               ^ column 14

Use `ansible_play_batch` instead.
"
    );
    assert!(run.stderr.contains(&deprecation), "{}", run.stderr);
    let broken = format!(
        "Conditional result (True) was derived from value of type 'str' at '{root}:6:13'. Conditionals must have a boolean result."
    );
    let block = format!(
        "[ERROR]: Task failed: {broken}

Task failed.
Origin: {root}:5:7

3   tasks:
4     - debug: msg=\"{{{{ play_hosts }}}}\"
5     - debug: msg=x
        ^ column 7

<<< caused by >>>

{broken}
Origin: {root}:6:13

4     - debug: msg=\"{{{{ play_hosts }}}}\"
5     - debug: msg=x
6       when: \"'a'\"
              ^ column 13

Broken conditionals can be temporarily allowed with the `ALLOW_BROKEN_CONDITIONALS` configuration option.

fatal: [h1]: FAILED!"
    );
    assert!(run.stdout.contains(&block), "{}", run.stdout);
    // Let through, the broken conditional is a deprecation at the same place.
    let env = [("ANSIBLE_ALLOW_BROKEN_CONDITIONALS", "1"), env[0], env[1]];
    let run = s.settle_with_env(&["site.yml", "-i", "hosts"], &env);
    run.assert_code(0);
    assert!(
        run.stderr.contains(&format!(
            "[DEPRECATION WARNING]: {broken} This feature will be removed from ansible-core version 2.23.\nOrigin: {root}:6:13\n"
        )) && run.stderr.contains(
            "\n\nBroken conditionals are currently allowed because the `ALLOW_BROKEN_CONDITIONALS` configuration option is enabled.\n"
        ),
        "{}",
        run.stderr
    );
    // Any other error is one while evaluating the conditional, shown where the `when` is.
    assert!(
        run.stdout.contains(&format!(
            "[ERROR]: Task failed: Error while evaluating conditional: 'nope' is undefined\n\nTask failed.\nOrigin: {root}:7:7\n"
        )) && run.stdout.contains(&format!(
            "<<< caused by >>>\n\nError while evaluating conditional: 'nope' is undefined\nOrigin: {root}:8:13\n"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn vars_files_are_read_as_ansible_reads_them() {
    // Compared with ansible-playbook 2.19: a file that exists nowhere is left out without a
    // word; one named by a fact is read once facts are gathered (after a warning); one named by
    // a variable nobody defines is left out with that warning; a file that does not parse ends
    // the run before the play starts, exit 4.
    let Some(ansible_playbook) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let s = Scratch::new();
    s.write("vars/Debian.yml", "os_word: from the Debian file\n");
    s.write("vars/RedHat.yml", "os_word: from the RedHat file\n");
    s.write("vars/common.yml", "common: here\n");
    s.write("broken.yml", "a: [\n");
    let play = |vars_files: &str, gather: bool| {
        format!(
            "- hosts: localhost\n  gather_facts: {gather}\n  vars_files: {vars_files}\n  tasks:\n    - debug: {{msg: \"{{{{ os_word | default('none') }}}} {{{{ common | default('none') }}}}\"}}\n"
        )
    };
    let cases = [
        (
            "missing.yml",
            play("[missing.yml, vars/common.yml]", false),
            false,
        ),
        (
            "by_fact.yml",
            play(
                "['vars/{{ ansible_os_family }}.yml', vars/common.yml]",
                true,
            ),
            true,
        ),
        ("undefined.yml", play("['{{ nobody }}.yml']", false), true),
        (
            "first_found.yml",
            play("[[gone.yml, vars/common.yml]]", false),
            false,
        ),
    ];
    for (name, text, warned) in cases {
        s.write(name, &text);
        let args = ["-i", "localhost,", "-c", "local", name];
        let ours = s.settle(&args);
        ours.assert_code(0);
        let theirs = s.ansible_stdout(&ansible_playbook, &args);
        assert_eq!(ours.stdout, theirs, "{name}");
        assert_eq!(
            ours.stderr
                .contains("[WARNING]: skipping vars_files item due to an undefined variable"),
            warned,
            "{name}: {}",
            ours.stderr
        );
    }
    s.write("broken_play.yml", &play("[broken.yml]", false));
    let ours = s.settle(&["-i", "localhost,", "-c", "local", "broken_play.yml"]);
    ours.assert_code(4);
    assert!(ours.stderr.contains("broken.yml:1:4"), "{}", ours.stderr);
    assert!(!ours.stdout.contains("PLAY ["), "{}", ours.stdout);
}

/// An include whose file or role is not there fails as Ansible 2.19's strategy fails it: the
/// error once on standard error (a role's with where its name is written), `reason` in the
/// result, no line for a loop's items, each failure counted and kept when a rescue takes it;
/// what an include registers is what it was asked to include.
#[test]
fn a_missing_include_fails_as_ansible_whatever_ignore_errors_says() {
    let s = one_host();
    s.write("ok.yml", "- debug: {msg: 'in ok {{ r.include }}'}\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - include_tasks: ok.yml
      register: r
    - block:
        - include_role:
            name: not-there
          ignore_errors: true
      rescue:
        - debug: {msg: rescued}
    - block:
        - include_tasks: '{{ item }}.yml'
          loop: [m1, m2]
          register: looped
      rescue:
        - debug: {msg: '{{ looped.results | map(attribute=\"include\") | join(\",\") }}'}
    - include_tasks: m3.yml
    - debug: {msg: never}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert_eq!(
        run.messages(),
        ["in ok ok.yml", "rescued", "m1.yml,m2.yml"],
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("[ERROR]: the role 'not-there' was not found in ")
            && run.stderr.contains("site.yml:8:19\n"),
        "{}",
        run.stderr
    );
    let m3 = s.path("m3.yml").display().to_string();
    let reason = format!(
        "Could not find or access '{m3}' on the Ansible Controller: Unable to retrieve file \
         contents.\\nCould not find or access '{m3}' on the Ansible Controller.\\nIf you are using \
         a module and expect the file to exist on the remote, see the remote_src option: [Errno \
         2] No such file or directory: '{m3}'"
    );
    assert!(
        run.stdout.contains(&format!(
            "fatal: [h1]: FAILED! => {{\"changed\": false, \"include\": \"m3.yml\", \"reason\": \"{reason}\"}}"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("...ignoring"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("FAILED!").count(), 2, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("failed=4    skipped=0    rescued=0    ignored=0"),
        "{}",
        run.stdout
    );
}

/// The default callback's `result_format = yaml` (pretty: multi-line text as blocks, output
/// lines left out), `check_mode_markers` (`DRY RUN` around a `--check` run, `[CHECK MODE]`
/// after what checks) and a free play's banners, byte for byte as ansible-playbook 2.19
/// prints them (checked against it by hand; times masked).
#[test]
fn yaml_results_check_markers_and_free_banners_print_as_ansible() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - debug: {msg: \"first line\\nsecond line  \\nthird\\tx\"}
    - command: printf 'hi\\nthere'
      check_mode: false
      changed_when: false
      register: r
    - debug: {var: r.stdout_lines}
      check_mode: true
- hosts: all
  gather_facts: no
  strategy: free
  tasks:
    - debug: {msg: one}
    - debug: {msg: two}
",
    );
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts", "--check", "-v"],
        &[
            ("ANSIBLE_CALLBACK_RESULT_FORMAT", "yaml"),
            ("ANSIBLE_CHECK_MODE_MARKERS", "1"),
        ],
    );
    run.assert_code(0);
    // (-v starts with the line about the configuration file, as Ansible's does.)
    let shown: String = run
        .stdout
        .lines()
        .skip_while(|line| line.starts_with("No config file found"))
        .map(|line| match line.split_once(": '") {
            Some((key, _)) if ["    delta", "    end", "    start"].contains(&key) => {
                format!("{key}: 'T'\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let stars = |title: &str| format!("{title} {}", "*".repeat(79 - title.len()));
    let expected = format!(
        "\n{}\n\n{}\n\n{}\nok: [h1] => \n    msg: |-\n        first line\n        second line\n        third   x\n\n{}\nok: [h1] => \n    changed: false\n    cmd:\n    - printf\n    - hi\\nthere\n    delta: 'T'\n    end: 'T'\n    msg: ''\n    rc: 0\n    start: 'T'\n    stderr: ''\n    stderr_lines: <omitted>\n    stdout: |-\n        hi\n        there\n    stdout_lines: <omitted>\n\n{}\nok: [h1] => \n    r.stdout_lines:\n    - hi\n    - there\n\n{}\n\n{}\nok: [h1] => \n    msg: one\n\n{}\nok: [h1] => \n    msg: two\n\n{}\nh1                         : ok=5    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   \n\n\n{}\n",
        stars("DRY RUN"),
        stars("PLAY [all] [CHECK MODE]"),
        stars("TASK [debug] [CHECK MODE]"),
        stars("TASK [command]"),
        stars("TASK [debug] [CHECK MODE]"),
        stars("PLAY [all] [CHECK MODE]"),
        stars("TASK [debug] [CHECK MODE]"),
        stars("TASK [debug] [CHECK MODE]"),
        stars("PLAY RECAP"),
        stars("DRY RUN"),
    );
    assert_eq!(shown, expected);
}

/// In a free play the banner waits for the task's first output, and that includes the error
/// block of a failure and a diff, not only the result line.
#[test]
fn a_free_play_shows_each_banner_before_everything_its_task_prints() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  strategy: free\n  tasks:\n    - copy: {content: \"x\\n\", dest: '@@/out'}\n      diff: true\n    - fail: {msg: boom}\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(2);
    let at = |text: &str| {
        run.stdout
            .find(text)
            .unwrap_or_else(|| panic!("{text}: {}", run.stdout))
    };
    assert!(at("TASK [copy]") < at("+++ after"), "{}", run.stdout);
    assert!(at("+++ after") < at("changed: [h1]"), "{}", run.stdout);
    assert!(at("changed: [h1]") < at("TASK [fail]"), "{}", run.stdout);
    assert!(
        at("TASK [fail]") < at("[ERROR]: Task failed"),
        "{}",
        run.stdout
    );
    assert!(
        at("[ERROR]: Task failed") < at("fatal: [h1]"),
        "{}",
        run.stdout
    );
}
