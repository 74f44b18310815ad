//! `settle pull` on real hosts: three hosts converge themselves, on a systemd timer, from a bare
//! git repository that a fourth serves over SSH.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::hosts::{TestHosts, pull_hosts};

const CHECKOUT: &str = "/var/lib/settle-pull/site";
const METRICS: &str = "/var/lib/node_exporter/textfile_collector/settle_pull.prom";
const MANAGED: &str = "/etc/settle-demo.conf";

/// A clone of the served repository on the machine running the tests, to commit and push from.
struct Repo {
    dir: tempfile::TempDir,
    ssh: String,
}

impl Repo {
    fn clone(hosts: &TestHosts, server: &str) -> Repo {
        let dir = tempfile::tempdir().expect("a folder for the clone");
        let repo = Repo {
            dir,
            ssh: format!(
                "ssh -F {} -o BatchMode=yes",
                hosts.state().join("ssh_config").display()
            ),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&[
            "remote",
            "add",
            "origin",
            &format!("{server}:/srv/git/site.git"),
        ]);
        repo
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .args([
                "-c",
                "user.name=settle tests",
                "-c",
                "user.email=tests@settle",
            ])
            .args(args)
            .env("GIT_SSH_COMMAND", &self.ssh)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes the files, commits, pushes, and returns the new revision.
    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (name, text) in files {
            let path = self.dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["push", "-q", "origin", "HEAD:main"]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// One reading of a host's settle_pull.prom.
#[derive(Debug)]
struct Sample {
    values: BTreeMap<String, String>,
}

impl Sample {
    fn read(hosts: &TestHosts, host: &str) -> Option<Sample> {
        let text = hosts.ssh(host, &format!("cat {METRICS} 2>/dev/null; true"));
        let values: BTreeMap<String, String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .flat_map(|(name, value)| {
                let mut pairs = vec![(name.to_string(), value.to_string())];
                if let Some(labels) = name.strip_prefix("settle_pull_revision_info{") {
                    for pair in labels.trim_end_matches('}').split(',') {
                        if let Some((k, v)) = pair.split_once('=') {
                            pairs.push((k.to_string(), v.trim_matches('"').to_string()));
                        }
                    }
                }
                pairs
            })
            .collect();
        (!values.is_empty()).then_some(Sample { values })
    }

    fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    fn number(&self, name: &str) -> u64 {
        self.get(name).parse::<f64>().unwrap_or(0.0) as u64
    }

    fn last_run(&self) -> u64 {
        self.number("settle_pull_last_run_timestamp_seconds")
    }
}

/// Waits (up to a minute) for the first timer run on `host` that ended after `after` (Unix
/// time) and tried `revision`.
fn next_run(hosts: &TestHosts, host: &str, after: u64, revision: &str) -> Sample {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(sample) = Sample::read(hosts, host)
            && sample.last_run() > after
            && sample.get("revision") == revision
        {
            return sample;
        }
        assert!(
            Instant::now() < deadline,
            "{host}: no timer run of {revision} after {after}: {:?}\n{}",
            Sample::read(hosts, host),
            hosts.ssh(
                host,
                "journalctl -u settle-pull.service --no-pager | tail -30"
            )
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs `check` for every host at once: timer runs do not wait for a test that looks at one
/// host after another.
fn each(hosts: &[&str], check: impl Fn(&str) + Sync) {
    std::thread::scope(|scope| {
        let running: Vec<_> = hosts
            .iter()
            .map(|host| scope.spawn(|| check(host)))
            .collect();
        for thread in running {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

fn host_now(hosts: &TestHosts, host: &str) -> u64 {
    hosts.ssh(host, "date +%s").trim().parse().unwrap()
}

fn copy_settle(hosts: &TestHosts, host: &str) {
    let status = Command::new("scp")
        .args(["-q", "-F"])
        .arg(hosts.state().join("ssh_config"))
        .arg(env!("CARGO_BIN_EXE_settle"))
        .arg(format!("{host}:/usr/local/bin/settle"))
        .status()
        .expect("run scp");
    assert!(status.success(), "copy settle to {host}");
}

const PLAYBOOK: &str = "\
- hosts: web
  gather_facts: false
  tasks:
    - name: the demo file
      template:
        src: templates/demo.conf.j2
        dest: /etc/settle-demo.conf
        mode: \"0644\"
";

fn template(version: u32) -> String {
    format!("# version {version}\nhost={{{{ inventory_hostname }}}} greeting={{{{ greeting }}}}\n")
}

#[test]
fn hosts_pull_converge_follow_commits_on_their_timer_repair_drift_and_keep_the_last_good_revision()
{
    let hosts = pull_hosts();
    let names = hosts.names();
    assert!(names.len() >= 4, "settle pull's test needs four hosts");
    let (server, pullers) = (names[3], &names[..3]);
    let (_, port, address) = &hosts.hosts[3];
    let url = format!("ssh://root@{address}:{port}/srv/git/site.git");

    // The server: git and an empty bare repository. The pullers: git, settle, and a key of
    // their own that the server accepts; nothing left of an earlier run.
    hosts.ssh(
        server,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null \
         && rm -rf /srv/git/site.git && git init -q --bare -b main /srv/git/site.git",
    );
    each(pullers, |host| {
        let key = hosts.ssh(
            host,
            &format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null; \
                 systemctl disable --now settle-pull.timer >/dev/null 2>&1; \
                 rm -rf {CHECKOUT} {METRICS} {MANAGED} /etc/systemd/system/settle-pull.*; \
                 test -f /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519; \
                 cat /root/.ssh/id_ed25519.pub"
            ),
        );
        let key = key.trim();
        hosts.ssh(
            server,
            &format!(
                "grep -qxF '{key}' /root/.ssh/authorized_keys || echo '{key}' >> /root/.ssh/authorized_keys"
            ),
        );
        copy_settle(hosts, host);
    });

    let repo = Repo::clone(hosts, server);
    let inventory: String = std::iter::once("[web]\n".to_string())
        .chain(pullers.iter().map(|h| format!("{h} greeting=hello-{h}\n")))
        .collect();
    let v1 = repo.commit(
        &[
            ("hosts.ini", &inventory),
            ("local.yml", PLAYBOOK),
            ("templates/demo.conf.j2", &template(1)),
        ],
        "the demo file",
    );
    let pull = format!("settle pull -U {url} --accept-host-key -d {CHECKOUT} -i hosts.ini");

    // By hand first: each host converges, with its own inventory variables.
    for host in pullers {
        let out = hosts.ssh(host, &format!("{pull} 2>&1"));
        let recap = out
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("{host}: no recap line for it in\n{out}"));
        assert!(recap.contains("changed=1 "), "{host}: {out}");
        assert_eq!(
            hosts.ssh(host, &format!("cat {MANAGED}")),
            format!("# version 1\nhost={host} greeting=hello-{host}\n")
        );
        let sample = Sample::read(hosts, host).expect("the metrics file");
        assert_eq!(sample.get("revision"), v1);
        assert_eq!(sample.get("last_good"), v1);
        assert_eq!(sample.number("settle_pull_changed"), 1);
        assert_eq!(sample.number("settle_pull_failed"), 0);
        let report = hosts.ssh(
            host,
            &format!("cat {CHECKOUT}/.git/settle-pull/report.json"),
        );
        assert!(report.contains("\"exit_code\": 0"), "{report}");
    }

    // Then on a timer: every 5 s, each run delayed up to 2 s at random.
    for host in pullers {
        hosts.ssh(
            host,
            &format!("{pull} --install-timer --interval 5s --random-delay 2s"),
        );
        assert_eq!(
            hosts.ssh(host, "systemctl is-enabled settle-pull.timer"),
            "enabled\n"
        );
        let timer = hosts.ssh(host, "cat /etc/systemd/system/settle-pull.timer");
        assert!(timer.contains("RandomizedDelaySec=2s"), "{timer}");
    }

    // A commit changes the template: the next timer run applies it on each host, the one after
    // finds nothing to do.
    let pushed = host_now(hosts, server);
    let v2 = repo.commit(&[("templates/demo.conf.j2", &template(2))], "version 2");
    each(pullers, |host| {
        let applied = next_run(hosts, host, pushed, &v2);
        assert_eq!(
            (
                applied.number("settle_pull_changed"),
                applied.number("settle_pull_failed")
            ),
            (1, 0),
            "{host}: {applied:?}"
        );
        assert_eq!(
            hosts.ssh(host, &format!("cat {MANAGED}")),
            format!("# version 2\nhost={host} greeting=hello-{host}\n")
        );
        let again = next_run(hosts, host, applied.last_run(), &v2);
        assert_eq!(again.number("settle_pull_changed"), 0, "{host}: {again:?}");
    });

    // A hand-made change on one host is undone by its next run.
    let drifted = pullers[0];
    let when = host_now(hosts, drifted);
    hosts.ssh(drifted, &format!("echo by hand > {MANAGED}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = when;
    loop {
        let sample = next_run(hosts, drifted, after, &v2);
        if sample.number("settle_pull_changed") == 1 {
            break;
        }
        // A run that began before the change could end after it.
        assert!(Instant::now() < deadline, "the drift was never repaired");
        after = sample.last_run();
    }
    assert_eq!(
        hosts.ssh(drifted, &format!("cat {MANAGED}")),
        format!("# version 2\nhost={drifted} greeting=hello-{drifted}\n")
    );

    // Broken commits, each with a template change too: one that does not parse, one whose
    // first task fails. Every host fails them without changing anything, and keeps v2 as the
    // last good revision, checked out.
    let unparsable = "- hosts: web\n  tasks: [\n";
    let failing = format!(
        "- hosts: web\n  gather_facts: false\n  tasks:\n    - assert:\n        that: false\n{}",
        PLAYBOOK.split_once("  tasks:\n").unwrap().1
    );
    for (version, playbook) in [(3, unparsable), (4, failing.as_str())] {
        let pushed = host_now(hosts, server);
        let broken = repo.commit(
            &[
                ("local.yml", playbook),
                ("templates/demo.conf.j2", &template(version)),
            ],
            "broken",
        );
        each(pullers, |host| {
            let failed = next_run(hosts, host, pushed, &broken);
            assert_eq!(failed.number("settle_pull_failed"), 1, "{host}: {failed:?}");
            assert_eq!(failed.get("last_good"), v2, "{host}: {failed:?}");
            assert_eq!(
                failed.number("settle_pull_changed"),
                0,
                "{host}: {failed:?}"
            );
            assert_eq!(
                hosts.ssh(host, &format!("cat {MANAGED}")),
                format!("# version 2\nhost={host} greeting=hello-{host}\n"),
                "{host}: the broken commit changed the file"
            );
            assert_eq!(
                hosts.ssh(
                    host,
                    &format!("git -C {CHECKOUT} rev-parse HEAD refs/settle/last-good")
                ),
                format!("{v2}\n{v2}\n"),
                "{host}: the checkout is not back at the last good revision"
            );
            // And the next run still fails the same way, still knowing v2.
            let again = next_run(hosts, host, failed.last_run(), &broken);
            assert_eq!(
                (again.number("settle_pull_failed"), again.get("last_good")),
                (1, v2.as_str())
            );
        });
    }

    for host in pullers {
        hosts.ssh(host, "systemctl disable --now settle-pull.timer");
    }
}
