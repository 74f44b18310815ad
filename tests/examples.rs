//! The runnable examples under examples/, converged for real.

mod common;

use common::Scratch;

#[test]
fn local_example_converges_then_reports_no_change() {
    let scratch = Scratch::new();
    let root = scratch.root();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/local");
    let args = [
        &format!("{example}/site.yml"),
        "-i",
        &format!("{example}/inventory"),
        "-e",
        &format!("root={root}/app"),
    ];
    let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
    let first = scratch.settle(&args);
    first.assert_code(0);
    assert!(first.recap("localhost")["changed"] > 0);
    assert!(
        first
            .stdout
            .contains("RUNNING HANDLER [webapp : reload the application]"),
        "{}",
        first.stdout
    );
    assert!(scratch.read("app/etc/demo.conf").contains("port = 8080"));
    assert_eq!(
        scratch.read("app/var/log/reloads"),
        "reloaded for demo on port 8080\n"
    );

    let second = scratch.settle(&args);
    second.assert_code(0);
    assert_eq!(second.recap("localhost")["changed"], 0, "{}", second.stdout);

    // Drift one file by hand: a dry run predicts exactly that, and leaves it alone.
    std::fs::write(scratch.path("app/etc/motd"), "edited\n").unwrap();
    let mut check_args = args.clone();
    check_args.extend(["--check", "--diff"]);
    let check = scratch.settle(&check_args);
    check.assert_code(0);
    assert_eq!(check.recap("localhost")["changed"], 1, "{}", check.stdout);
    assert!(check.stdout.contains("-edited"), "{}", check.stdout);
    assert_eq!(scratch.read("app/etc/motd"), "edited\n");
    let fix = scratch.settle(&args);
    assert_eq!(fix.recap("localhost")["changed"], 1, "{}", fix.stdout);
    assert!(
        scratch
            .read("app/etc/motd")
            .starts_with("This machine is managed by settle")
    );
}
