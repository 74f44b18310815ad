//! Hostile input, item by item (issue 15): each test reproduces one report of the issue on the
//! local connection and pins what settle does now: one error with Ansible's exit code (or the
//! run going on), never a panic, a stack overflow or a hang. The items that need a test host,
//! a signal or a benchmark are tested where the README's "Failure and security model" says.

mod common;

use common::{Run, Scratch, local_inventory, one_host};

/// Neither a panic nor a stack overflow: the process ended on its own terms.
fn assert_no_crash(run: &Run) {
    for words in ["panicked", "overflowed its stack", "RUST_BACKTRACE"] {
        assert!(
            !run.stderr.contains(words) && !run.stdout.contains(words),
            "{words}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    assert!(run.code >= 0, "killed by a signal:\n{}", run.stderr);
}

#[test]
fn a_task_file_importing_itself_is_one_error_naming_the_chain() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - import_tasks: a.yml\n",
    );
    s.write("a.yml", "- debug: {msg: a}\n- import_tasks: b.yml\n");
    s.write("b.yml", "- import_tasks: a.yml\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let root = s.dir.path().canonicalize().unwrap();
    let chain = format!(
        "a task file imports itself: {0}/a.yml -> {0}/b.yml -> {0}/a.yml",
        root.display()
    );
    assert!(run.stderr.contains(&chain), "{}", run.stderr);
    assert!(run.stderr.lines().count() < 12, "{}", run.stderr);
    // The same file imported twice, one after the other, is no cycle.
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - import_tasks: c.yml\n    - import_tasks: c.yml\n",
    );
    s.write("c.yml", "- debug: {msg: c}\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").0, 2);
}

#[test]
fn a_file_including_itself_is_one_error_naming_the_chain() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - include_tasks: a.yml\n",
    );
    s.write("a.yml", "- debug: {msg: a}\n- include_tasks: b.yml\n");
    s.write("b.yml", "- include_tasks: a.yml\n");
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    // Ansible dies with a Python RecursionError, exit 250, at about 250 nested files.
    assert_eq!(run.code, 250, "{}", run.stderr);
    let root = s.dir.path().canonicalize().unwrap();
    let chain = format!("{0}/a.yml -> {0}/b.yml -> {0}/a.yml", root.display());
    assert!(
        run.stderr.contains("includes nested more than 100 deep"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&chain), "{}", run.stderr);
    assert!(run.stderr.lines().count() < 12, "{}", run.stderr);
    // An include of its own file with a condition that ends it is fine.
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - include_tasks: r.yml\n    - debug: {msg: \"n={{ n }}\"}\n",
    );
    s.write(
        "r.yml",
        "- set_fact: {n: \"{{ (n | default(0)) | int + 1 }}\"}\n- include_tasks: r.yml\n  when: n | int < 60\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert!(run.stdout.contains("\"msg\": \"n=60\""), "{}", run.stdout);
}

#[test]
fn a_host_variable_referring_to_itself_through_hostvars_fails_the_task_not_the_run() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    me: \"{{ hostvars[inventory_hostname].me }}\"
  tasks:
    - debug: {msg: \"{{ me }}\"}
      ignore_errors: true
    - debug: {msg: after}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["ignored"], 1, "{}", run.stdout);
    assert!(run.messages().contains(&"after".to_string()));
    // An inventory variable of each host: every look-up through `hostvars` is a new scope of
    // the host, so only the depth across scopes stops it (it overflowed the stack).
    s.write(
        "hosts",
        "[all]\nh1 me=\"{{ hostvars[inventory_hostname].me }}\"\nh2 me=\"{{ hostvars['h1'].me }}\"\n[all:vars]\nansible_connection=local\n",
    );
    let run = s.settle(&["site.yml", "-i", "hosts", "-f", "2"]);
    assert_no_crash(&run);
    run.assert_code(0);
    for host in ["h1", "h2"] {
        assert_eq!(run.recap(host)["ignored"], 1, "{}", run.stdout);
    }
    let fatal: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("fatal:"))
        .collect();
    assert_eq!(fatal.len(), 2, "{}", run.stdout);
    for line in fatal {
        assert!(line.contains("Recursive loop detected in template: maximum recursion depth exceeded (variables nested more than 100 deep: me -> me -> me -> ... -> me -> me -> me)"), "{line}");
        assert!(line.len() < 500, "{line}");
    }
}

/// A play whose variables `v0`..`v{n}` are each defined by the next, `v{n}` being `last`.
fn chained_variables(n: usize, last: &str) -> String {
    let mut play = String::from("- hosts: all\n  gather_facts: no\n  vars:\n");
    for i in 0..n {
        play += &format!("    v{i}: \"{{{{ v{} }}}}\"\n", i + 1);
    }
    play += &format!("    v{n}: \"{last}\"\n  tasks:\n    - debug: {{msg: \"{{{{ v0 }}}}\"}}\n");
    play
}

#[test]
fn a_chain_of_a_thousand_variables_fails_the_task_and_a_cycle_fails_fast() {
    let s = Scratch::new();
    s.write("hosts", &local_inventory(&["h1", "h2", "h3"]));
    // 100 nested variables resolve, on the hosts' worker threads too.
    s.write("site.yml", &chained_variables(100, "end"));
    let run = s.settle(&["site.yml", "-i", "hosts", "-f", "3"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.matches("\"msg\": \"end\"").count(),
        3,
        "{}",
        run.stdout
    );
    // 1,000 are an error of each host's task, one line long, as Ansible's "maximum recursion
    // depth exceeded" (it stops between 80 and 90).
    s.write("site.yml", &chained_variables(1000, "end"));
    let run = s.settle(&["site.yml", "-i", "hosts", "-f", "3"]);
    assert_no_crash(&run);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let fatal: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("fatal:"))
        .collect();
    assert_eq!(fatal.len(), 3, "{}", run.stdout);
    for line in fatal {
        assert!(line.contains("maximum recursion depth exceeded (variables nested more than 100 deep: v0 -> v1 -> v2 -> ... -> v98 -> v99 -> v100)"), "{line}");
        assert!(line.len() < 400, "{line}");
    }
    // A cycle through 40 variables: each fails once (the time doubled with each before).
    s.write("site.yml", &chained_variables(40, "{{ v0 }}"));
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "(through 'v1' and 39 more): Recursive loop detected in template: v0 refers to itself"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_loop_pause_that_is_no_time_is_an_error_naming_it() {
    for pause in ["-1", "1e300", ".inf"] {
        let s = one_host();
        s.write(
            "site.yml",
            &format!(
                "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {{msg: \"{{{{ item }}}}\"}}\n      \
                 loop: [1, 2]\n      loop_control: {{pause: {pause}}}\n"
            ),
        );
        let run = s.settle(&["site.yml", "-i", "hosts"]);
        assert_no_crash(&run);
        assert_eq!(run.code, 4, "pause {pause}: {}", run.stderr);
        assert!(run.stderr.contains("pause"), "{}", run.stderr);
    }
}

#[test]
fn bad_command_line_values_exit_with_ansibles_codes() {
    let s = one_host();
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {msg: hi}\n",
    );
    // (arguments, exit code, words of the error): ansible-playbook 2.19's codes for each.
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--limit", "~("], 1, "Invalid host list pattern: ~("),
        (
            &["--limit", "@no-such-file"],
            1,
            "Unable to find limit file",
        ),
        (
            &["-e", "a=\"unterminated"],
            4,
            "failed at splitting arguments, either an unbalanced jinja2 block or quotes",
        ),
        (&["-e", "{a: [}"], 4, "<extra vars>"),
        (
            &["-e", "[1]"],
            5,
            "Invalid extra vars data supplied. '[1]' could not be made into a dictionary",
        ),
    ];
    for (args, code, words) in cases {
        let mut all = vec!["site.yml", "-i", "hosts"];
        all.extend_from_slice(args);
        let run = s.settle(&all);
        assert_no_crash(&run);
        assert_eq!(run.code, *code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
        assert!(!run.stdout.contains("PLAY ["), "{args:?} ran the play");
    }
}

#[test]
fn an_inventory_host_range_left_open_is_refused_naming_file_and_line() {
    let s = Scratch::new();
    s.write("hosts", "[web]\nok1 ansible_connection=local\nweb[a:b\n");
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {msg: hi}\n",
    );
    // As ansible-playbook: the source is refused with a warning naming the error (no host is
    // called `web[a:b`), and the run goes on (exit 0). What the file named before its error
    // (`ok1`) stays, as ansible-inventory keeps a failed source's earlier groups and hosts
    // (tests/inventory_compat.rs).
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for words in [
        "hosts:3: invalid host range in 'web[a:b'",
        "Unable to parse",
    ] {
        assert!(run.stderr.contains(words), "{words}:\n{}", run.stderr);
    }
    assert!(!run.stdout.contains("web[a:b"), "{}", run.stdout);
    // Ansible's setting makes it fatal, before any play.
    let run = s.settle_with_env(
        &["site.yml", "-i", "hosts"],
        &[("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")],
    );
    assert_no_crash(&run);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stdout.contains("PLAY ["), "the play ran");
}

#[test]
fn a_link_to_itself_is_refused_and_a_copy_below_a_file_says_why() {
    let s = one_host();
    s.write("plain", "x\n");
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - file: {path: '@@/self', src: '@@/self', state: link}
      register: link
      ignore_errors: true
    - copy: {content: x, dest: '@@/plain/sub'}
      register: below
      ignore_errors: true
    - debug: {msg: \"LINK {{ link.msg }}\"}
    - debug: {msg: \"BELOW {{ below.msg }}\"}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    run.assert_code(0);
    let root = s.root();
    let messages = run.messages();
    assert!(
        messages.contains(&format!(
            "LINK src file does not exist, use 'force=yes' if you really want to create the \
             link: {root}/self"
        )),
        "{messages:?}"
    );
    assert!(
        messages.contains(&format!(
            "BELOW Failed to get information on remote file ({root}/plain/sub): Not a directory"
        )),
        "{messages:?}"
    );
    assert!(std::fs::symlink_metadata(s.path("self")).is_err());
    assert_eq!(s.read("plain"), "x\n");
}

#[test]
fn a_vars_file_with_a_300_000_item_list_and_a_50_mb_playbook_load() {
    let s = one_host();
    let mut vars = String::from("items:\n");
    for i in 0..300_000 {
        vars.push_str(&format!("  - {i}\n"));
    }
    s.write("big_vars.yml", &vars);
    let mut play = String::from(
        "- hosts: all\n  gather_facts: no\n  vars_files: [big_vars.yml]\n  vars:\n    names:\n",
    );
    let line = format!("      - {}\n", "x".repeat(40));
    let count = (50 << 20) / line.len() + 1;
    play.push_str(&line.repeat(count));
    play.push_str(
        "  tasks:\n    - debug: {msg: \"SIZES {{ items | length }} {{ names | length }}\"}\n",
    );
    s.write("site.yml", &play);
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    run.assert_code(0);
    assert!(
        run.messages().contains(&format!("SIZES 300000 {count}")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_sequence_of_a_billion_items_is_an_error_not_an_abort() {
    let s = one_host();
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  tasks:
    - debug: {msg: \"{{ item }}\"}
      with_sequence: end=1000000000
      ignore_errors: true
    - debug: {msg: \"{{ range(10 ** 12) | length }}\"}
      ignore_errors: true
    - debug: {msg: after}
",
    );
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    assert_no_crash(&run);
    run.assert_code(0);
    assert_eq!(run.recap("h1")["ignored"], 2, "{}", run.stdout);
    assert!(run.messages().contains(&"after".to_string()));
}

#[test]
fn a_no_log_task_s_errors_hide_the_secret_in_every_output() {
    let s = one_host();
    // Errors in loop, when and ignore_errors of no_log tasks, and a no_log that cannot be
    // evaluated: each message would quote the password.
    s.write(
        "site.yml",
        "\
- hosts: all
  gather_facts: no
  vars:
    password: hunter2-secret
  tasks:
    - debug: {msg: x}
      loop: \"{{ password | int + missing }}\"
      no_log: true
      ignore_errors: true
    - debug: {msg: x}
      when: password + 1
      no_log: true
      ignore_errors: true
    - debug: {msg: \"{{ password }}\"}
      no_log: \"{{ undefined_thing }}\"
    - debug: {msg: x}
      ignore_errors: \"{{ password + 1 }}\"
      no_log: true
",
    );
    for output in ["text", "json"] {
        let run = s.settle(&[
            "site.yml",
            "-i",
            "hosts",
            "-vvv",
            "--output",
            output,
            "--report",
            "json=report.json",
            "--report",
            "junit=report.xml",
        ]);
        assert_no_crash(&run);
        // The ignore_errors that cannot be evaluated fails its host: exit 2.
        assert_eq!(run.code, 2, "{output}: {}", run.stderr);
        for (what, text) in [
            ("stdout", run.stdout.clone()),
            ("stderr", run.stderr.clone()),
            ("report.json", s.read("report.json")),
            ("report.xml", s.read("report.xml")),
        ] {
            assert!(!text.contains("hunter2"), "{output}: {what}:\n{text}");
        }
    }
}

/// Starts settle on `site.yml` over `transport` and waits until the host's command has
/// written its shell's pid to `marker`: the child and that pid.
fn start_until_marked(
    hosts: &common::hosts::TestHosts,
    s: &Scratch,
    host: &str,
    marker: &str,
    transport: &str,
    output: fn() -> std::process::Stdio,
) -> (std::process::Child, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["site.yml", "-i", "inv", "-c", transport])
        .current_dir(s.dir.path())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    let mut pid = String::new();
    for _ in 0..300 {
        pid = hosts.ssh(host, &format!("cat {marker} 2>/dev/null || true"));
        if !pid.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = pid.trim().to_string();
    assert!(!pid.is_empty(), "{transport}: the command never started");
    (child, pid)
}

#[test]
fn a_controller_killed_mid_command_leaves_no_command_running_on_the_host() {
    let hosts = common::hosts::test_hosts();
    let host = hosts.names()[1];
    let s = hosts.scratch();
    let marker = "/tmp/settle-orphan-test.pid";
    hosts.ssh(host, &format!("rm -f {marker}"));
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - shell: 'echo $$ > {marker}.tmp && mv {marker}.tmp {marker} && sleep 300 | cat'\n"
        ),
    );
    for transport in ["russh", "ssh"] {
        let (mut child, pid) = start_until_marked(
            hosts,
            &s,
            host,
            marker,
            transport,
            std::process::Stdio::null,
        );
        // SIGKILL: the controller has no word to say; the host's agent sees its input end.
        let _ = child.kill();
        let _ = child.wait();
        let mut left = String::new();
        for _ in 0..50 {
            left = hosts.ssh(
                host,
                &format!("test -d /proc/{pid} && echo running; pgrep -f 'sleep [3]00' || true"),
            );
            if left.trim().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(
            left.trim(),
            "",
            "{transport}: the command outlived its controller"
        );
        hosts.ssh(host, &format!("rm -f {marker}"));
    }
}

#[test]
fn an_interrupted_controller_ends_the_command_on_the_host_and_prints_the_recap() {
    let hosts = common::hosts::test_hosts();
    let host = hosts.names()[1];
    let s = hosts.scratch();
    let marker = "/tmp/settle-interrupt-test.pid";
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n    - shell: 'echo $$ > {marker}.tmp && mv {marker}.tmp {marker} && sleep 300 | cat'\n    - file: {{path: /tmp/settle-interrupt-never, state: touch}}\n"
        ),
    );
    for (transport, signal, code) in [
        ("russh", libc::SIGINT, 99),
        ("russh", libc::SIGTERM, 143),
        ("ssh", libc::SIGINT, 99),
        ("ssh", libc::SIGTERM, 143),
    ] {
        hosts.ssh(host, &format!("rm -f {marker} /tmp/settle-interrupt-never"));
        let (child, pid) = start_until_marked(
            hosts,
            &s,
            host,
            marker,
            transport,
            std::process::Stdio::piped,
        );
        let sent = std::time::Instant::now();
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        // Not the 300 s the command would have taken.
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(30),
            "{transport}: the run waited for the command"
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{transport}:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("PLAY RECAP"), "{transport}:\n{stdout}");
        assert!(
            stderr.contains("[ERROR]: User interrupted execution"),
            "{transport}:\n{stderr}"
        );
        let left = hosts.ssh(
            host,
            &format!(
                "test -d /proc/{pid} && echo running; pgrep -f 'sleep [3]00' || true; test -e /tmp/settle-interrupt-never && echo next task ran; true"
            ),
        );
        assert_eq!(left.trim(), "", "{transport}: after the signal");
    }
    hosts.ssh(host, &format!("rm -f {marker}"));
}
