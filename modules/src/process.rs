//! Running the host's own tools (useradd, apt-get, systemctl) and reading what they said.

use std::process::Command;

use crate::ModuleError;

/// What a finished command said.
pub(crate) struct Ran {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
}

/// Runs a program with arguments (no shell) and waits for it.
pub(crate) fn run<S: AsRef<str>>(argv: &[S], env: &[(&str, &str)]) -> Result<Ran, ModuleError> {
    let output = Command::new(argv[0].as_ref())
        .args(argv[1..].iter().map(AsRef::as_ref))
        .envs(env.iter().copied())
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ModuleError::io(format!("run {}", argv[0].as_ref()), e))?;
    Ok(Ran {
        rc: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs a program that must succeed; its failure becomes the module's, with what it printed.
pub(crate) fn run_ok<S: AsRef<str>>(argv: &[S], env: &[(&str, &str)]) -> Result<Ran, ModuleError> {
    let ran = run(argv, env)?;
    if !ran.ok() {
        let said = if ran.stderr.trim().is_empty() {
            ran.stdout.trim()
        } else {
            ran.stderr.trim()
        };
        let command: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
        return Err(ModuleError::Failed(format!(
            "{} failed (rc={}): {said}",
            command.join(" "),
            ran.rc
        )));
    }
    Ok(ran)
}

/// Runs a program with `input` on its standard input (`dpkg --set-selections`, `apt-key add -`).
pub(crate) fn run_with_input<S: AsRef<str>>(
    argv: &[S],
    input: &[u8],
    env: &[(&str, &str)],
) -> Result<Ran, ModuleError> {
    use std::io::Write;
    let mut child = Command::new(argv[0].as_ref())
        .args(argv[1..].iter().map(AsRef::as_ref))
        .envs(env.iter().copied())
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| ModuleError::io(format!("run {}", argv[0].as_ref()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits without reading all of its input is not an error here: what it
        // said and its exit code tell.
        let _ = stdin.write_all(input);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| ModuleError::io(format!("run {}", argv[0].as_ref()), e))?;
    Ok(Ran {
        rc: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
