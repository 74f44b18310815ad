//! `service` on a host without systemd: an init script run through the `service` tool, as
//! Ansible's service module runs it there. The machine that runs the suite is such a host (its
//! PID 1 is not systemd; the test hosts are), so this test uses a real init script installed
//! on it for the test, in the four steps of every module scenario.

mod common;

use std::path::Path;

use common::one_host;

/// An init script with an LSB header (update-rc.d wants one) running a `sleep` in the background.
fn init_script(name: &str) -> String {
    format!(
        r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: settle's test service
### END INIT INFO
PIDFILE=/run/{name}.pid
running() {{ [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }}
case "$1" in
  start) running || {{ sleep 100000 >/dev/null 2>&1 & echo $! > $PIDFILE; }}; echo start >> /run/{name}.log ;;
  stop) running && kill "$(cat $PIDFILE)"; rm -f $PIDFILE; echo stop >> /run/{name}.log ;;
  restart) $0 stop; $0 start ;;
  reload) echo reload >> /run/{name}.log ;;
  status) running ;;
  *) exit 3 ;;
esac
"#
    )
}

/// Removes the test's script, its links, its process and its files, whatever the test did.
struct Installed(String);

impl Drop for Installed {
    fn drop(&mut self) {
        let name = &self.0;
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "/etc/init.d/{name} stop; update-rc.d -f {name} remove; rm -f /etc/init.d/{name} /run/{name}.log"
            ))
            .output();
    }
}

fn log(name: &str) -> String {
    std::fs::read_to_string(format!("/run/{name}.log")).unwrap_or_default()
}

fn running(name: &str) -> bool {
    std::process::Command::new(format!("/etc/init.d/{name}"))
        .arg("status")
        .status()
        .unwrap()
        .success()
}

#[test]
fn service_runs_init_scripts_where_systemd_does_not_run() {
    if Path::new("/run/systemd/system").is_dir() || !Path::new("/usr/sbin/service").exists() {
        eprintln!("skipped: this machine runs systemd or has no service tool");
        return;
    }
    let name = format!("settle-sysv-{}", std::process::id());
    std::fs::write(format!("/etc/init.d/{name}"), init_script(&name)).unwrap();
    let _installed = Installed(name.clone());
    std::process::Command::new("chmod")
        .args(["755", &format!("/etc/init.d/{name}")])
        .status()
        .unwrap();
    let s = one_host();
    s.write(
        "site.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - service: {{name: {name}, state: started, enabled: true}}\n      register: r\n    - debug: {{var: r}}\n"
        ),
    );
    // Apply: started and enabled.
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 1, "{}", run.stdout);
    assert!(running(&name));
    assert!(Path::new(&format!("/etc/rc2.d/S01{name}")).exists());
    assert!(
        run.stdout.contains("\"state\": \"started\""),
        "{}",
        run.stdout
    );
    // Again: nothing to do.
    let run = s.settle(&["site.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 0, "{}", run.stdout);
    // Drift: stopped by hand. Check mode predicts the start and does not start it.
    std::process::Command::new(format!("/etc/init.d/{name}"))
        .arg("stop")
        .status()
        .unwrap();
    let before = log(&name);
    let run = s.settle(&["site.yml", "-i", "hosts", "--check", "--diff"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 1, "{}", run.stdout);
    assert!(!running(&name));
    assert_eq!(log(&name), before);
    // Restarted always restarts; reloaded reloads a running service; stopped stops it.
    for (state, logged) in [("restarted", "stop\nstart\n"), ("reloaded", "reload\n")] {
        s.write(
            "other.yml",
            &format!(
                "- hosts: all\n  gather_facts: no\n  tasks:\n    - service: {{name: {name}, state: started}}\n    - service: {{name: {name}, state: {state}}}\n"
            ),
        );
        let before = log(&name);
        let run = s.settle(&["other.yml", "-i", "hosts"]);
        run.assert_code(0);
        assert!(
            log(&name)[before.len()..].ends_with(logged),
            "{state}: {}",
            log(&name)
        );
    }
    s.write(
        "stop.yml",
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - service: {{name: {name}, state: stopped, enabled: false}}\n"
        ),
    );
    let run = s.settle(&["stop.yml", "-i", "hosts"]);
    run.assert_code(0);
    assert_eq!(run.counts("h1").1, 1, "{}", run.stdout);
    assert!(!running(&name));
    assert!(!Path::new(&format!("/etc/rc2.d/S01{name}")).exists());
    let run = s.settle(&["stop.yml", "-i", "hosts"]);
    assert_eq!(run.counts("h1").1, 0, "{}", run.stdout);
    // A service with no init script fails as Ansible's does.
    s.write(
        "missing.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - service: {name: settle-no-such-service, state: started}\n",
    );
    let run = s.settle(&["missing.yml", "-i", "hosts"]);
    run.assert_code(2);
    assert!(
        run.stdout
            .contains("Could not find the requested service settle-no-such-service: host"),
        "{}",
        run.stdout
    );
}
