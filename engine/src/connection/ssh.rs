//! The `ssh` transport: the system's OpenSSH client through the `openssh` crate, one multiplexed
//! master connection per host, so `~/.ssh/config`, `ProxyJump`, the agent and `known_hosts` work
//! as users expect.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncReadExt;

use super::remote::{Exec, ExecFuture, RemoteConnection, StatusFuture, Transport, feed, runtime};
use super::{CommonArgs, ConnectionError, HostKeyPolicy, Target, expand_home, host_key_policy};

pub(crate) struct SystemSsh {
    session: Arc<Session>,
}

/// Control sockets live here: short, because a socket path has a 108-byte limit.
fn control_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("settle-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        dir
    })
}

pub(crate) fn connect(target: &Target) -> Result<RemoteConnection<SystemSsh>, ConnectionError> {
    let mut builder = SessionBuilder::default();
    if let Some(user) = &target.user {
        builder.user(user.clone());
    }
    if let Some(port) = target.port {
        builder.port(port);
    }
    if let Some(key) = &target.private_key_file {
        builder.keyfile(expand_home(key));
    }
    builder.connect_timeout(Duration::from_secs(target.timeout_secs.max(1)));
    builder.server_alive_interval(Duration::from_secs(15));
    builder.control_directory(control_dir());
    let common = CommonArgs::parse(target.ssh_common_args.as_deref())?;
    let mut policy = host_key_policy();
    let mut lines = Vec::new();
    for (k, v) in &common.options {
        match k.to_ascii_lowercase().as_str() {
            "stricthostkeychecking" => policy = HostKeyPolicy::from_ssh_word(v),
            "userknownhostsfile" => {
                builder.user_known_hosts_file(expand_home(v));
            }
            _ => lines.push(format!("{k} {v}")),
        }
    }
    builder.known_hosts_check(match policy {
        HostKeyPolicy::Strict => KnownHosts::Strict,
        HostKeyPolicy::AcceptNew => KnownHosts::Add,
        HostKeyPolicy::Off => KnownHosts::Accept,
    });
    if !common.jump_hosts.is_empty() {
        builder.jump_hosts(common.jump_hosts.iter());
    }
    if !lines.is_empty() || common.config_file.is_some() {
        // Extra options go in a config file of our own that then includes the user's.
        let base = common
            .config_file
            .clone()
            .map(|f| expand_home(&f))
            .or_else(|| {
                let home = std::env::var_os("HOME")?;
                let user = PathBuf::from(home).join(".ssh/config");
                user.exists().then(|| user.display().to_string())
            });
        if let Some(base) = base {
            lines.push(format!("Include {base}"));
        }
        let path = control_dir().join(format!(
            "config-{}-{}",
            target.address,
            target.port.unwrap_or(22)
        ));
        std::fs::write(&path, lines.join("\n") + "\n")
            .map_err(|e| ConnectionError::Failed(format!("ssh config: {e}")))?;
        builder.config_file(path);
    }
    let address = target.address.clone();
    let session = runtime()
        .block_on(builder.connect_mux(&address))
        .map_err(|e| {
            ConnectionError::Unreachable(format!(
                "Failed to connect to the host via ssh: {}",
                describe(&e)
            ))
        })?;
    Ok(RemoteConnection::new(
        SystemSsh {
            session: Arc::new(session),
        },
        target.user.clone(),
        target.address.clone(),
    ))
}

fn describe(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(more.trim());
        }
        source = s.source();
    }
    text
}

impl Transport for SystemSsh {
    fn exec<'a>(&'a self, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut child = Session::to_command(self.session.clone(), "sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            let stdin = child.stdin().take().expect("piped stdin");
            let stdout = child.stdout().take().expect("piped stdout");
            Ok(Exec {
                stdin: Box::new(stdin),
                stdout: Box::new(stdout),
                keep: Box::new(child),
            })
        })
    }

    fn run_with_input<'a>(&'a self, command: &'a str, input: &'a [u8]) -> StatusFuture<'a> {
        Box::pin(async move {
            let mut child = Session::to_command(self.session.clone(), "sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            let mut stdin: super::agent::Writer =
                Box::new(child.stdin().take().expect("piped stdin"));
            feed(&mut stdin, input).await?;
            drop(stdin);
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr().take() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            let status = child
                .wait()
                .await
                .map_err(|e| ConnectionError::Unreachable(describe(&e)))?;
            if !status.success() {
                return Err(ConnectionError::Failed(format!(
                    "placing the agent failed: {}",
                    stderr.trim()
                )));
            }
            Ok(())
        })
    }
}
