//! The example pipelines, converged on real test hosts.

mod common;

use common::Scratch;
use common::hosts::test_hosts;

const BACKUP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/backup-pipeline/site.yml"
);

#[test]
fn backup_pipeline_converges_then_reports_no_change_and_its_dry_run_tells_the_truth() {
    let hosts = test_hosts();
    let s = Scratch::new();
    s.write("inv", &hosts.inventory("root", &[], &[]));
    let run = |extra: &[&str]| {
        let mut args = vec![BACKUP, "-i", "inv"];
        args.extend_from_slice(extra);
        s.settle(&args)
    };
    // Whatever an earlier run left, start from the hourly schedule.
    let first = run(&[]);
    first.assert_code(0);
    let second = run(&[]);
    second.assert_code(0);
    for host in hosts.names() {
        assert_eq!(
            second.recap(host)["changed"],
            0,
            "{host}:\n{}",
            second.stdout
        );
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
