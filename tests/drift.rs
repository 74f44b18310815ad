//! The dry run tells the truth, and CI can gate on drift: `--check` records the same status for
//! every task as a real run from the same state; `--fail-on-change` exits 3 naming what drifted;
//! the JSON and JUnit reports have the shapes CI systems read.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use common::Scratch;
use common::hosts::{TestHosts, test_hosts};
use serde_json::Value;

static TURN: Mutex<()> = Mutex::new(());

/// Loops, conditions on registered results, blocks with rescue, handlers, and files whose
/// content, mode, owner and presence can drift.
const PLAY: &str = "\
- hosts: all
  gather_facts: no
  vars:
    root: /srv/drift
    files: [alpha, beta, gamma]
  tasks:
    - file: {path: '{{ root }}', state: directory, mode: '0755'}
    - copy: {content: \"{{ item }} content\\n\", dest: '{{ root }}/{{ item }}', mode: '0644', owner: root}
      loop: '{{ files }}'
      register: copied
      notify: note
    - file: {path: '{{ root }}/gone', state: absent}
    - template: {src: conf.j2, dest: '{{ root }}/app.conf', mode: '0640'}
      register: conf
    - debug: msg='the config changed'
      when: conf is changed
    - block:
        - lineinfile: {path: '{{ root }}/extra.conf', line: 'extra=1', create: yes}
          register: extra
        - fail: msg='only when the line was missing'
          when: extra is changed and root == '/never'
      rescue:
        - debug: msg=rescued
    - command: touch {{ root }}/stamp creates={{ root }}/stamp
  handlers:
    - name: note
      copy: {content: \"noted\\n\", dest: '{{ root }}/noted'}
";

fn setup(hosts: &TestHosts) -> Scratch {
    let s = hosts.scratch();
    s.write("site.yml", PLAY);
    s.write("templates/conf.j2", "host={{ inventory_hostname }}\n");
    s
}

/// (host, task, handler) → statuses, from a JSON report.
fn statuses(report: &Value) -> BTreeMap<(String, String, bool), Vec<(String, bool)>> {
    let mut out: BTreeMap<(String, String, bool), Vec<(String, bool)>> = BTreeMap::new();
    for r in report["results"].as_array().unwrap() {
        let key = (
            r["host"].as_str().unwrap().to_string(),
            r["task"].as_str().unwrap().to_string(),
            r["handler"].as_bool().unwrap(),
        );
        out.entry(key).or_default().push((
            r["status"].as_str().unwrap().to_string(),
            r["skipped_in_check_mode"].as_bool().unwrap(),
        ));
    }
    out
}

fn report(s: &Scratch, name: &str) -> Value {
    serde_json::from_str(&s.read(name)).unwrap()
}

/// Runs --check then for real from the same state, and compares every task's status.
fn check_predicts_real(s: &Scratch, label: &str) {
    let check = s.settle(&[
        "site.yml",
        "-i",
        "inv",
        "--check",
        "--report",
        "json=check.json",
    ]);
    check.assert_code(0);
    let real = s.settle(&["site.yml", "-i", "inv", "--report", "json=real.json"]);
    real.assert_code(0);
    let (predicted, happened) = (
        statuses(&report(s, "check.json")),
        statuses(&report(s, "real.json")),
    );
    assert_eq!(
        predicted.keys().collect::<Vec<_>>(),
        happened.keys().collect::<Vec<_>>(),
        "{label}: the same tasks ran"
    );
    for (key, wanted) in &predicted {
        let got = &happened[key];
        // A command check mode cannot predict is reported as skipped, as in Ansible.
        if wanted.iter().any(|(_, unknown)| *unknown) {
            continue;
        }
        assert_eq!(
            wanted, got,
            "{label}: {key:?}\ncheck:\n{}\nreal:\n{}",
            check.stdout, real.stdout
        );
    }
    let recap = |r: &Value| r["recap"].clone();
    assert_eq!(
        recap(&report(s, "check.json")),
        recap(&report(s, "real.json")),
        "{label}: the recaps agree"
    );
}

#[test]
fn check_mode_predicts_the_real_run_task_by_task() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup(hosts);
    for h in hosts.names() {
        hosts.ssh(h, "rm -rf /srv/drift");
    }
    check_predicts_real(&s, "fresh hosts");
    check_predicts_real(&s, "converged hosts");
    let [a, b, c] = [hosts.names()[0], hosts.names()[1], hosts.names()[2]];
    hosts.ssh(a, "echo edited > /srv/drift/beta; touch /srv/drift/gone");
    hosts.ssh(b, "chmod 0600 /srv/drift/alpha; chown deploy /srv/drift/gamma; sed -i /extra=1/d /srv/drift/extra.conf");
    hosts.ssh(c, "rm /srv/drift/app.conf /srv/drift/stamp");
    check_predicts_real(&s, "hand-drifted hosts");
}

/// A small deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_file_drifts_are_predicted_exactly() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup(hosts);
    s.settle(&["site.yml", "-i", "inv"]).assert_code(0);
    for seed in 1..=6u64 {
        let mut rng = Rng(seed);
        for host in hosts.names() {
            let mut script = Vec::new();
            for file in [
                "alpha",
                "beta",
                "gamma",
                "app.conf",
                "extra.conf",
                "noted",
                "gone",
                "stamp",
            ] {
                let path = format!("/srv/drift/{file}");
                match rng.next(6) {
                    0 => script.push(format!("echo drift{seed} > {path}")),
                    1 => script.push(format!(
                        "[ -e {path} ] && chmod 0{} {path}",
                        ["600", "755", "444"][rng.next(3) as usize]
                    )),
                    2 => script.push(format!(
                        "[ -e {path} ] && chown {} {path}",
                        ["deploy", "alice"][rng.next(2) as usize]
                    )),
                    3 => script.push(format!("rm -f {path}")),
                    4 => script.push(format!("touch {path}")),
                    _ => {}
                }
            }
            script.push("true".into());
            hosts.ssh(host, &script.join("; "));
        }
        check_predicts_real(&s, &format!("seed {seed}"));
    }
}

#[test]
fn fail_on_change_is_a_drift_gate_for_ci() {
    let hosts = test_hosts();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup(hosts);
    s.settle(&["site.yml", "-i", "inv"]).assert_code(0);
    let gate = [
        "site.yml",
        "-i",
        "inv",
        "--check",
        "--fail-on-change",
        "--report",
        "junit=junit.xml",
        "--report",
        "json=report.json",
    ];
    let clean = s.settle(&gate);
    clean.assert_code(0);
    for h in hosts.names() {
        assert_eq!(clean.recap(h)["changed"], 0, "{}", clean.stdout);
    }
    let junit = s.read("junit.xml");
    let doc = roxmltree::Document::parse(&junit).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );

    let host = hosts.names()[1];
    hosts.ssh(host, "echo drifted > /srv/drift/gamma");
    let drifted = s.settle(&gate);
    drifted.assert_code(3);
    assert!(
        drifted.stdout.contains(&format!("DRIFT: [{host}] copy (")),
        "{}",
        drifted.stdout
    );
    assert!(
        drifted.stdout.contains("site.yml:"),
        "the drift names the task's place: {}",
        drifted.stdout
    );
    assert_eq!(
        hosts.ssh(host, "cat /srv/drift/gamma"),
        "drifted\n",
        "check mode left it alone"
    );

    // JUnit's common shape: testsuites > testsuite > testcase > failure, one failure.
    let junit = s.read("junit.xml");
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name("testsuites"));
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert!(suites.iter().all(|n| n.has_tag_name("testsuite")
        && n.attribute("name").is_some()
        && n.attribute("tests").is_some()));
    let cases: Vec<_> = suites
        .iter()
        .flat_map(|s| s.children().filter(|n| n.is_element()))
        .collect();
    assert!(cases.iter().all(|c| c.has_tag_name("testcase")
        && c.attribute("classname").is_some()
        && c.attribute("name").is_some()));
    assert_eq!(
        cases.len(),
        root.attribute("tests").unwrap().parse::<usize>().unwrap()
    );
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1, "{junit}");
    assert_eq!(
        failures[0].parent().unwrap().attribute("classname"),
        Some(host)
    );
    assert!(
        failures[0].text().unwrap_or("").contains("-drifted"),
        "the failure carries the diff"
    );
    assert_eq!(root.attribute("failures"), Some("1"));

    // The JSON report: every host × task, with status, changed, diff, duration and messages.
    let json = report(&s, "report.json");
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["drift"].as_array().unwrap().len(), 1);
    for r in json["results"].as_array().unwrap() {
        for key in [
            "play",
            "task",
            "host",
            "status",
            "changed",
            "diff",
            "duration_seconds",
            "msg",
            "location",
        ] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
    s.settle(&["site.yml", "-i", "inv"]).assert_code(0);
}

#[test]
fn output_json_is_one_event_per_line() {
    let hosts = test_hosts();
    let s = setup(hosts);
    s.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    );
    let run = s.settle(&["ping.yml", "-i", "inv", "--output", "json"]);
    run.assert_code(0);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"play_start"));
    assert_eq!(kinds.last(), Some(&"run_end"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "task_result").count(),
        hosts.hosts.len()
    );
}
