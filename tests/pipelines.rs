//! The example pipelines, converged on real test hosts.

mod common;

use common::Scratch;
use common::hosts::test_hosts;

/// Both pipelines manage /srv/data on the same hosts, so they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

const BACKUP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/backup-pipeline/site.yml"
);

#[test]
fn backup_pipeline_converges_then_reports_no_change_and_its_dry_run_tells_the_truth() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let s = hosts.scratch();
    let run = |extra: &[&str]| {
        let mut args = vec![BACKUP, "-i", "inv"];
        args.extend_from_slice(extra);
        s.settle(&args)
    };
    // Whatever an earlier run left, start from the hourly schedule.
    let first = run(&[]);
    first.assert_code(0);
    let second = run(&[]);
    second.assert_code(0).assert_unchanged(&hosts.names());
    for host in hosts.names() {
        let timers = hosts.ssh(
            host,
            "systemctl list-timers backup.timer --no-legend --no-pager",
        );
        assert!(
            timers.contains("backup.timer") && timers.contains("backup.service"),
            "{host}: {timers}"
        );
        assert_eq!(
            hosts.ssh(
                host,
                "id -un backupsvc; stat -c '%U %a' /var/backups/settle"
            ),
            "backupsvc\nbackupsvc 750\n"
        );
    }

    // The service, started by hand, writes an archive that verifies; a corrupted one does not.
    let host = hosts.names()[0];
    hosts.ssh(
        host,
        "rm -f /var/backups/settle/backup-*; systemctl start backup.service",
    );
    assert_eq!(
        hosts.ssh(host, "ls /var/backups/settle | wc -l"),
        "2\n",
        "an archive and its .sha256"
    );
    hosts.ssh(host, "/usr/local/bin/verify-backups.sh /var/backups/settle");
    let corrupted = hosts.ssh(
        host,
        "cd /var/backups/settle && printf x >> $(ls backup-*.tar.gz | tail -1) && /usr/local/bin/verify-backups.sh . 2>&1; echo rc=$?",
    );
    assert!(
        corrupted.contains("checksum mismatch") && corrupted.contains("rc=1"),
        "{corrupted}"
    );

    // A schedule change: the dry run shows the timer's diff and the handler, and touches nothing.
    let before = hosts.ssh(host, "sha256sum /etc/systemd/system/backup.timer");
    let check = run(&[
        "--check",
        "--diff",
        "-e",
        "backup_schedule=daily",
        "-l",
        host,
    ]);
    check.assert_code(0);
    assert!(
        check
            .stdout
            .contains("-OnCalendar=hourly\n+OnCalendar=daily"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("RUNNING HANDLER [restart the backup timer]"),
        "{}",
        check.stdout
    );
    assert_eq!(
        hosts.ssh(host, "sha256sum /etc/systemd/system/backup.timer"),
        before
    );
    let predicted = check.recap(host)["changed"];
    let real = run(&["-e", "backup_schedule=daily", "-l", host]);
    real.assert_code(0);
    assert_eq!(
        real.recap(host)["changed"],
        predicted,
        "the dry run predicted the real run:\n{}\n{}",
        check.stdout,
        real.stdout
    );
    assert!(
        hosts
            .ssh(host, "systemctl show backup.timer -p TimersCalendar")
            .contains("OnCalendar=*-*-* 00:00:00"),
        "the timer runs daily now"
    );
    run(&["-l", host]).assert_code(0);
}

#[test]
fn native_backup_pipeline_converges_then_reports_no_change() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let s = hosts.scratch();
    let native = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/backup-pipeline/native.yml"
    );
    s.settle(&[native, "-i", "inv"]).assert_code(0);
    let second = s.settle(&[native, "-i", "inv"]);
    second.assert_code(0).assert_unchanged(&hosts.names());
    for host in hosts.names() {
        let summary: serde_json::Value = serde_json::from_str(
            &hosts.ssh(host, "cat /var/backups/settle-native/last-backup.json"),
        )
        .unwrap();
        let archive = summary["archive"].as_str().unwrap().to_string();
        hosts.ssh(
            host,
            &format!(
                "cd /var/backups/settle-native && sha256sum --quiet -c $(basename {archive}).sha256"
            ),
        );
        assert!(
            hosts
                .ssh(
                    host,
                    "cat /var/lib/node_exporter/textfile_collector/settle_backup.prom"
                )
                .contains("settle_backup_last_success_timestamp_seconds")
        );
    }
}

/// The Dockerfile's image runs files/backup.sh; no Docker engine runs here, so this checks the
/// Dockerfile's content and runs the script the way the image would.
#[test]
fn the_container_image_runs_the_same_script() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/backup-pipeline");
    let dockerfile = std::fs::read_to_string(format!("{dir}/Dockerfile")).unwrap();
    let from = dockerfile.lines().find(|l| l.starts_with("FROM ")).unwrap();
    assert!(
        from.contains(":bookworm-2") || from.contains("@sha256:"),
        "the base image is pinned: {from}"
    );
    for label in [
        "org.opencontainers.image.source",
        "org.opencontainers.image.version",
    ] {
        assert!(dockerfile.contains(label), "{label}");
    }
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/backup.sh\"]"));
    assert!(dockerfile.contains("COPY --chmod=0755 files/backup.sh /usr/local/bin/backup.sh"));
    let cmd = dockerfile.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let args: Vec<String> = serde_json::from_str(cmd.trim_start_matches("CMD ")).unwrap();

    let s = Scratch::new();
    s.write("data/file.txt", "payload\n");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("/data", &format!("{}/data", s.root()))
                .replace("/backups", &format!("{}/backups", s.root()))
        })
        .collect();
    for round in 0..9 {
        std::fs::write(s.path("data/round"), round.to_string()).unwrap();
        let out = std::process::Command::new(format!("{dir}/files/backup.sh"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(event["level"].is_string() && event["msg"].is_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let archives = std::fs::read_dir(s.path("backups"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .count();
    assert_eq!(archives, 7, "the image keeps the newest 7");
    let verify = std::process::Command::new(format!("{dir}/files/verify-backups.sh"))
        .arg(s.path("backups"))
        .status()
        .unwrap();
    assert!(verify.success());
}

#[test]
fn app_server_checks_out_and_follows_the_repository() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = test_hosts();
    let s = hosts.scratch();
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app-server/site.yml");
    let ping = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app-server/ping.yml");
    // A local bare repository on each host stands in for the application's remote.
    let commit = |word: &str| {
        format!(
            "set -e; d=$(mktemp -d); git clone -q /srv/git/notes.git $d; echo {word} > $d/app.py; git -C $d add app.py; \
             git -C $d -c user.email=t@example.org -c user.name=t commit -qm {word}; git -C $d push -q origin HEAD:main; rm -rf $d"
        )
    };
    for host in hosts.names() {
        hosts.ssh(
            host,
            "set -e; DEBIAN_FRONTEND=noninteractive apt-get install -y -q git >/dev/null 2>&1; rm -rf /srv/git /opt/notes /etc/notes; \
             git init -q --bare -b main /srv/git/notes.git; \
             git config --system safe.directory /srv/git/notes.git",
        );
        hosts.ssh(host, &commit("one"));
        hosts.ssh(host, "set -e; d=$(mktemp -d); git clone -q /srv/git/notes.git $d; git -C $d tag v1; git -C $d push -q origin v1; rm -rf $d");
    }
    let args = [site, "-i", "inv", "-e", "app_repo=/srv/git/notes.git"];
    s.settle(&[ping, "-i", "inv"]).assert_code(0);
    let first = s.settle(&args);
    first.assert_code(0);
    let second = s.settle(&args);
    second.assert_code(0).assert_unchanged(&hosts.names());
    for host in hosts.names() {
        assert_eq!(
            hosts.ssh(host, "cat /opt/notes/app.py; stat -c %U /opt/notes/app.py"),
            "one\nnotes\n"
        );
        assert!(
            hosts
                .ssh(host, "cat /etc/notes/config.ini")
                .contains("port = 8080")
        );
    }

    // A new commit upstream: the dry run names it and leaves the checkout alone; the real run moves.
    let host = hosts.names()[0];
    hosts.ssh(host, &commit("two"));
    let mut limited = args.to_vec();
    limited.extend(["-l", host]);
    let mut check = limited.clone();
    check.extend(["--check", "--diff"]);
    let dry = s.settle(&check);
    dry.assert_code(0);
    assert!(dry.stdout.contains("  version: "), "{}", dry.stdout);
    assert_eq!(hosts.ssh(host, "cat /opt/notes/app.py"), "one\n");
    let real = s.settle(&limited);
    real.assert_code(0);
    assert_eq!(
        real.recap(host)["changed"],
        dry.recap(host)["changed"],
        "{}\n{}",
        dry.stdout,
        real.stdout
    );
    assert_eq!(hosts.ssh(host, "cat /opt/notes/app.py"), "two\n");
    // Pinned to a tag, it goes back.
    let mut pinned = limited.clone();
    pinned.extend(["-e", "app_version=v1"]);
    s.settle(&pinned).assert_code(0);
    assert_eq!(hosts.ssh(host, "cat /opt/notes/app.py"), "one\n");
}
