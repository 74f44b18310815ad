//! The four-step proof of a module scenario on a real test host (see tests/modules.rs), and the
//! read-only proof of modules that only look: shared by every test binary that proves modules.

use std::sync::Mutex;

use super::hosts::TestHosts;
use super::{Run, Scratch};

/// Scenarios snapshot whole hosts, so they take turns.
pub static TURN: Mutex<()> = Mutex::new(());

/// A host's state as check mode must leave it. Units that start and stop on their own are left
/// out: hostnamed/localed/timedated exit about 30 s after a module used them (the hostname
/// scenario may have just run), tmpfiles-clean runs 15 minutes after boot.
pub const SNAPSHOT: &str = "find /etc /srv /home /opt /usr/local -xdev -printf '%p %m %u %g %s %T@ %l\\n' 2>/dev/null | sort | sha256sum; \
    dpkg -l | sha256sum; rpm -qa 2>/dev/null | sort | sha256sum; systemctl list-unit-files --no-legend | sha256sum; \
    systemctl list-units --all --no-legend --plain | grep -v -E '^(session-|user@|user-|run-|init.scope|systemd-(hostnamed|localed|timedated|tmpfiles-clean)[.])' | awk '{print $1,$3,$4}' | sort | sha256sum";

pub struct Scenario<'a> {
    pub host: &'a str,
    /// A shell command that removes what an earlier run of the scenario left.
    pub reset: &'a str,
    /// The play's tasks (YAML, indented by four spaces).
    pub tasks: &'a str,
    /// A shell command whose output shows the state the tasks set up.
    pub verify: &'a str,
    pub expected: &'a str,
    /// A shell command that undoes part of that state by hand.
    pub drift: &'a str,
    /// Text the dry run's diff must show for that drift.
    pub diff_shows: &'a str,
}

pub fn run(s: &Scratch, extra: &[&str]) -> Run {
    let mut args = vec!["site.yml", "-i", "inv"];
    args.extend_from_slice(extra);
    s.settle(&args)
}

pub fn changed(run: &Run, host: &str) -> usize {
    run.recap(host)["changed"]
}

pub fn prove(hosts: &TestHosts, scenario: Scenario) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = scenario.host;
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!(
            "- hosts: {host}\n  gather_facts: no\n  tasks:\n{}",
            scenario.tasks
        ),
    );
    s.write("files/hello.txt", "hello from the controller\n");
    s.write("files/stamp.sh", "#!/bin/sh\necho \"$2\" > \"$1\"\n");
    s.write(
        "templates/conf.j2",
        "name={{ inventory_hostname }}\nlevel={{ level | default(3) }}\n",
    );
    hosts.ssh(host, scenario.reset);

    let first = run(&s, &[]);
    first.assert_code(0);
    assert!(
        changed(&first, host) > 0,
        "step 1 changes something:\n{}",
        first.stdout
    );
    assert_eq!(
        hosts.ssh(host, scenario.verify),
        scenario.expected,
        "step 1 state"
    );

    let second = run(&s, &[]);
    second.assert_code(0);
    assert_eq!(
        changed(&second, host),
        0,
        "step 2 is a no-op:\n{}",
        second.stdout
    );

    hosts.ssh(host, scenario.drift);
    let before = hosts.ssh(host, SNAPSHOT);
    let check = run(&s, &["--check", "--diff", "--report", "json=check.json"]);
    check.assert_code(0);
    assert_eq!(
        changed(&check, host),
        1,
        "step 3 predicts exactly the drift:\n{}",
        check.stdout
    );
    assert!(
        check.stdout.contains(scenario.diff_shows),
        "step 3 diff shows {:?}:\n{}",
        scenario.diff_shows,
        check.stdout
    );
    assert_eq!(
        hosts.ssh(host, SNAPSHOT),
        before,
        "step 3 must not touch the host:\n{}",
        check.stdout
    );

    let fix = run(&s, &["--report", "json=real.json"]);
    fix.assert_code(0);
    // Task by task, the dry run said what the real run did.
    let statuses = |name: &str| -> Vec<(String, String)> {
        let report: serde_json::Value = serde_json::from_str(&s.read(name)).unwrap();
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["task"].to_string(), r["status"].to_string()))
            .collect()
    };
    assert_eq!(
        statuses("check.json"),
        statuses("real.json"),
        "step 3 predicted step 4 task by task"
    );
    assert_eq!(
        changed(&fix, host),
        1,
        "step 4 fixes exactly the drift:\n{}",
        fix.stdout
    );
    assert_eq!(
        hosts.ssh(host, scenario.verify),
        scenario.expected,
        "step 4 state"
    );
}

/// Steps 3 and 4 for a playbook already applied and drifted by hand on `host`: the dry run
/// (`settle(["--check", "--diff"])`) predicts `changes` changes there, shows each of `shown`
/// and leaves the host exactly as it was; the real run then makes those changes. Returns both
/// runs, for what else the caller checks.
pub fn check_then_fix(
    hosts: &TestHosts,
    host: &str,
    changes: usize,
    shown: &[&str],
    settle: impl Fn(&[&str]) -> Run,
) -> (Run, Run) {
    let before = hosts.ssh(host, SNAPSHOT);
    let check = settle(&["--check", "--diff"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), changes, "{}", check.stdout);
    for part in shown {
        assert!(check.stdout.contains(part), "{part} in\n{}", check.stdout);
    }
    assert_eq!(
        hosts.ssh(host, SNAPSHOT),
        before,
        "--check touches nothing:\n{}",
        check.stdout
    );
    let fix = settle(&[]);
    fix.assert_code(0);
    assert_eq!(changed(&fix, host), changes, "{}", fix.stdout);
    (check, fix)
}

/// Runs a play on the first test host: with `--check` and then for real, each changes nothing
/// and fails nothing, and the dry run leaves the host exactly as it was.
pub fn read_only(hosts: &TestHosts, setup: &str, tasks: &str) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "site.yml",
        &format!("- hosts: {host}\n  gather_facts: no\n  tasks:\n{tasks}"),
    );
    hosts.ssh(host, setup);
    let before = hosts.ssh(host, SNAPSHOT);
    let check = run(&s, &["--check"]);
    check.assert_code(0);
    assert_eq!(changed(&check, host), 0, "{}", check.stdout);
    assert_eq!(
        hosts.ssh(host, SNAPSHOT),
        before,
        "check touches nothing:\n{}",
        check.stdout
    );
    for _ in 0..2 {
        let real = run(&s, &[]);
        real.assert_code(0);
        assert_eq!(changed(&real, host), 0, "{}", real.stdout);
    }
}
