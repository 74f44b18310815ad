//! What ships settle: the .deb that `packaging/build-deb` makes (binary, manual pages, shell
//! completions), the pre-commit hooks and the container file. No container engine runs here,
//! so the container file is read and its entry point run on this host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn settle() -> &'static str {
    env!("CARGO_BIN_EXE_settle")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_pages_cover_every_command_and_say_what_help_says() {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new(settle())
        .args(["man", "--dir"])
        .arg(dir.path()));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for page in [
        "settle.1",
        "settle-inventory.1",
        "settle-vault.1",
        "settle-vault-encrypt_string.1",
        "settle-config-dump.1",
        "settle-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} missing: {pages:?}");
    }
    // The agent's hidden commands are no one's business.
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("agent") || p.contains("async"))
    );
    let main = std::fs::read_to_string(dir.path().join("settle.1")).unwrap();
    assert!(main.starts_with(".ie"), "{main}");
    assert!(main.contains(".TH settle 1 "), "{main}");
    assert!(main.contains("\\-\\-fail\\-on\\-change"), "{main}");
    // `settle man` alone prints the main page; a closed pipe is no error.
    let printed = run(Command::new(settle()).arg("man"));
    assert_eq!(text(&printed), main);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' man | head -c 10 >/dev/null", settle()))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn deb_has_the_binary_man_pages_and_completions() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("skipped: dpkg-deb is not installed");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // Stand-ins for `packaging/build-agent --agents`' builds (tests/agents.rs runs real ones).
    let agents = out.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    for arch in ["x86_64", "aarch64"] {
        std::fs::write(agents.join(format!("settle-agent-{arch}")), arch).unwrap();
    }
    // Uncompressed: xz over a debug binary takes minutes on a small machine.
    let built = run(Command::new(repo().join("packaging/build-deb"))
        .args(["--compression", "none"])
        .arg("--binary")
        .arg(settle())
        .arg("--agents")
        .arg(&agents)
        .arg("--out")
        .arg(out.path()));
    let deb = PathBuf::from(text(&built).trim());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("settle_{version}_")),
        "{deb:?}"
    );

    let info = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    for field in [
        "Package: settle\n".to_string(),
        format!("Version: {version}\n"),
        "Depends: libc6 (>= 2.".into(),
        "Recommends: openssh-client\n".into(),
        "Section: admin\n".into(),
    ] {
        assert!(info.contains(&field), "no {field:?} in\n{info}");
    }

    let contents = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    let entry = |path: &str| {
        contents
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} not in\n{contents}"))
            .to_string()
    };
    assert!(entry("usr/bin/settle").starts_with("-rwxr-xr-x root/root"));
    // Beside /usr/bin/settle as settle looks for them: ../lib/settle/agents.
    for arch in ["x86_64", "aarch64"] {
        let path = format!("usr/lib/settle/agents/settle-agent-{arch}");
        assert!(entry(&path).starts_with("-rwxr-xr-x root/root"), "{path}");
    }
    for path in [
        "usr/share/man/man1/settle.1.gz",
        "usr/share/man/man1/settle-vault-encrypt.1.gz",
        "usr/share/bash-completion/completions/settle",
        "usr/share/zsh/vendor-completions/_settle",
        "usr/share/fish/vendor_completions.d/settle.fish",
        "usr/share/doc/settle/copyright",
    ] {
        assert!(entry(path).starts_with("-rw-r--r-- root/root"), "{path}");
    }
    assert!(entry("").starts_with("drwxr-xr-x root/root"));

    // What is inside works: the binary runs, the page is a man page, completions know settle.
    let root = out.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let shown = text(&run(
        Command::new(root.join("usr/bin/settle")).arg("--version")
    ));
    assert!(
        shown.starts_with(&format!("settle {version} (commit ")),
        "{shown}"
    );
    let page = text(&run(Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man1/settle.1.gz"))));
    assert!(page.contains(".TH settle 1 "), "{page}");
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/settle")).unwrap();
    assert!(bash.contains("complete -F _settle"), "{bash}");
}

/// The hooks of `.pre-commit-hooks.yaml`, by id.
fn hooks() -> Vec<serde_json::Value> {
    let doc = settle_yaml::load_file(&repo().join(".pre-commit-hooks.yaml")).unwrap();
    let serde_json::Value::Array(hooks) = doc.to_value() else {
        panic!(".pre-commit-hooks.yaml is a list of hooks");
    };
    for hook in &hooks {
        for key in ["id", "name", "entry", "language"] {
            assert!(
                hook.get(key).is_some_and(|v| v.is_string()),
                "{key} in {hook}"
            );
        }
    }
    hooks
}

/// Runs a hook as pre-commit does (entry, then args; no file names) in `dir`, with this build
/// of settle for `settle`.
fn run_hook(hook: &serde_json::Value, dir: &Path) -> Output {
    let entry = hook["entry"].as_str().unwrap();
    let mut words = shell_words::split(entry).unwrap();
    assert_eq!(words.remove(0), "settle");
    assert_eq!(hook["pass_filenames"], serde_json::Value::Bool(false));
    let args = hook["args"].as_array().cloned().unwrap_or_default();
    Command::new(settle())
        .args(&words)
        .args(args.iter().map(|a| a.as_str().unwrap()))
        .current_dir(dir)
        .env_remove("ANSIBLE_CONFIG")
        .env_remove("ANSIBLE_INVENTORY")
        .output()
        .unwrap()
}

#[test]
fn pre_commit_syntax_hook_passes_good_playbooks_and_stops_bad_ones() {
    let hooks = hooks();
    let check = hooks
        .iter()
        .find(|h| h["id"] == "settle-check")
        .expect("a settle-check hook");
    let drift = hooks
        .iter()
        .find(|h| h["id"] == "settle-drift")
        .expect("a settle-drift hook");
    assert_eq!(drift["stages"], serde_json::json!(["manual"]));
    assert!(
        drift["entry"]
            .as_str()
            .unwrap()
            .contains("--fail-on-change")
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  tasks:\n    - copy: {content: x, dest: /tmp/x}\n      notify: restart\n  \
         handlers:\n    - name: restart\n      debug: msg=restarted\n",
    )
    .unwrap();
    let good = run_hook(check, dir.path());
    assert!(good.status.success(), "{good:?}");

    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  tasks:\n    - copyy: {content: x, dest: /tmp/x}\n",
    )
    .unwrap();
    let bad = run_hook(check, dir.path());
    assert_eq!(bad.status.code(), Some(4), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("site.yml:3:7: task \"copyy\""),
        "{bad:?}"
    );
}

#[test]
fn containerfile_parses_and_its_entry_point_runs() {
    let file = std::fs::read_to_string(repo().join("packaging/Containerfile")).unwrap();
    // Instructions, continuation lines joined, comments dropped.
    let mut instructions: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in file.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                let (keyword, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
                instructions.push((keyword.to_string(), rest.trim().to_string()));
                pending.clear();
            }
        }
    }
    assert!(pending.is_empty(), "a continuation line ends the file");
    const KNOWN: &[&str] = &[
        "FROM",
        "ARG",
        "RUN",
        "COPY",
        "WORKDIR",
        "ENTRYPOINT",
        "CMD",
        "ENV",
        "LABEL",
    ];
    for (keyword, _) in &instructions {
        assert!(
            KNOWN.contains(&keyword.as_str()),
            "unknown instruction {keyword}"
        );
    }
    assert_eq!(instructions[0].0, "FROM");
    // The stage that builds runs what builds settle here, and the image copies its result.
    let build = instructions
        .iter()
        .find(|(k, v)| k == "RUN" && v.contains("cargo build"))
        .expect("a cargo build");
    assert!(build.1.contains("--locked") && build.1.contains("settle man --dir"));
    assert!(instructions.iter().any(|(k, v)| k == "COPY"
        && v.contains("--from=build")
        && v.contains("/usr/local/bin/settle")));
    let json = |keyword: &str| -> Vec<String> {
        let (_, value) = instructions
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .unwrap_or_else(|| panic!("no {keyword}"));
        serde_json::from_str(value).unwrap_or_else(|e| panic!("{keyword} {value}: {e}"))
    };
    let entrypoint = json("ENTRYPOINT");
    let cmd = json("CMD");
    assert_eq!(entrypoint, ["settle"]);
    // What the image runs when given nothing, run with this build.
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(settle()).args(&cmd).current_dir(dir.path()));
    assert!(text(&out).contains("Usage: settle"), "{out:?}");
}

/// The fuzz targets are a workspace of their own with their own Cargo.lock, which `fuzz/run`
/// builds `--locked`: a dependency added to the main crates must reach it too.
#[test]
fn the_fuzz_workspace_lock_file_is_current() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(repo().join("fuzz/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fuzz/Cargo.lock is stale: run `cargo update --workspace --manifest-path fuzz/Cargo.toml`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
