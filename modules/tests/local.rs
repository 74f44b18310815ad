//! The modules against this machine's own filesystem, in a scratch folder. The real proof is the
//! end-to-end suite on test hosts; these pin the check/apply life of each module.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use settle_modules::{Outcome, Request, run};

fn call(module: &str, args: Value, check_mode: bool) -> Outcome {
    let mut request = Request::new(module, args.as_object().unwrap().clone());
    request.check_mode = check_mode;
    request.diff = true;
    run(&request)
}

#[test]
fn directory_then_file_mode_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b");
    let args = json!({"path": path, "state": "directory", "mode": "0750"});
    assert!(call("file", args.clone(), true).changed);
    assert!(!path.exists(), "check mode must not touch the host");
    let first = call("file", args.clone(), false);
    assert!(first.changed && !first.failed, "{first:?}");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    assert!(!call("file", args, false).changed);
}

#[test]
fn copy_content_predicts_then_converges_and_diffs() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("motd");
    fs::write(&dest, "old\n").unwrap();
    let args = json!({"dest": dest, "content": "new\n", "mode": "0600"});
    let predicted = call("copy", args.clone(), true);
    assert!(predicted.changed);
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
    let diff = &predicted.plan.content[0];
    assert_eq!(
        (diff.before.as_deref(), diff.after.as_deref()),
        (Some("old\n"), Some("new\n"))
    );
    assert!(call("copy", args.clone(), false).changed);
    assert_eq!(fs::read_to_string(&dest).unwrap(), "new\n");
    assert_eq!(
        fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let again = call("copy", args, false);
    assert!(!again.changed, "{again:?}");
    // No temporary files left beside the destination.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn link_absent_and_touch() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    fs::write(&target, "x").unwrap();
    let link = dir.path().join("l");
    let args = json!({"path": link, "src": target, "state": "link"});
    assert!(call("file", args.clone(), false).changed);
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert!(!call("file", args, false).changed);
    let gone = json!({"path": link, "state": "absent"});
    assert!(call("file", gone.clone(), false).changed);
    assert!(!call("file", gone, false).changed);
    let touched = dir.path().join("new");
    assert!(call("file", json!({"path": touched, "state": "touch"}), false).changed);
    assert!(touched.exists());
}

#[test]
fn unknown_and_mistyped_arguments_are_named() {
    let out = call("file", json!({"path": "/tmp/x", "mdoe": "0644"}), true);
    assert!(
        out.failed && out.msg.as_deref().unwrap().contains("unknown field `mdoe`"),
        "{out:?}"
    );
    let out = call(
        "file",
        json!({"path": "/tmp/x", "recurse": "perhaps"}),
        true,
    );
    assert!(
        out.failed && out.msg.as_deref().unwrap().contains("argument \"recurse\""),
        "{out:?}"
    );
}

#[test]
fn command_creates_and_check_mode() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("done");
    let args = json!({"_raw_params": format!("touch {}", marker.display()), "creates": marker});
    let predicted = call("command", args.clone(), true);
    assert!(predicted.changed && !marker.exists());
    assert!(call("command", args.clone(), false).changed);
    assert!(!call("command", args, false).changed);
    let unknown = call("command", json!({"_raw_params": "true"}), true);
    assert!(unknown.skipped);
    let failing = call(
        "shell",
        json!({"_raw_params": "echo out; echo err >&2; exit 3"}),
        false,
    );
    assert!(failing.failed);
    assert_eq!(
        (
            failing.values["rc"].clone(),
            failing.values["stdout"].clone(),
            failing.values["stderr"].clone()
        ),
        (json!(3), json!("out"), json!("err"))
    );
}
