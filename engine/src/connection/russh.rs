//! The `russh` transport: SSH in pure Rust, no `ssh` binary needed. Key files (the host's own,
//! `~/.ssh/id_*`) and the ssh-agent authenticate; host keys are checked against known_hosts with
//! the same policy as the `ssh` transport (strict by default).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate, check_known_hosts_path};

use super::remote::{Exec, ExecFuture, RemoteConnection, StatusFuture, Transport, runtime};
use super::{CommonArgs, ConnectionError, HostKeyPolicy, Target, expand_home, host_key_policy};

pub(crate) struct Russh {
    handle: Handle<HostKeyCheck>,
}

/// Checks the server's key against known_hosts, and remembers why it refused one.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    refusal: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if self.policy == HostKeyPolicy::Off {
            return Ok(true);
        }
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            *self.refusal.lock().expect("refusal lock") = Some(
                "the host offered a certificate; settle's russh transport checks plain host keys"
                    .into(),
            );
            return Ok(false);
        };
        let refuse = |why: String| {
            *self.refusal.lock().expect("refusal lock") = Some(why);
            Ok(false)
        };
        match check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) | Err(russh::keys::Error::IO(_))
                if self.policy == HostKeyPolicy::AcceptNew =>
            {
                let _ = russh::keys::known_hosts::learn_known_hosts_path(
                    &self.host,
                    self.port,
                    key,
                    &self.known_hosts,
                );
                Ok(true)
            }
            Ok(false) => refuse(format!(
                "Host key verification failed: no key for [{}]:{} in {}",
                self.host,
                self.port,
                self.known_hosts.display()
            )),
            Err(russh::keys::Error::KeyChanged { line }) => refuse(format!(
                "Host key verification failed: the host key of [{}]:{} CHANGED (known_hosts line {line})",
                self.host, self.port
            )),
            Err(e) => refuse(format!("Host key verification failed: {e}")),
        }
    }
}

/// `UserKnownHostsFile` and `StrictHostKeyChecking` from `ansible_ssh_common_args`, else
/// `~/.ssh/known_hosts` and the policy from the environment.
fn known_hosts_and_policy(
    common_args: Option<&str>,
) -> Result<(PathBuf, HostKeyPolicy), ConnectionError> {
    let common = CommonArgs::parse(common_args)?;
    let known_hosts = common
        .option("UserKnownHostsFile")
        .map(expand_home)
        .unwrap_or_else(|| expand_home("~/.ssh/known_hosts"));
    let policy = common
        .option("StrictHostKeyChecking")
        .map_or_else(host_key_policy, HostKeyPolicy::from_ssh_word);
    Ok((PathBuf::from(known_hosts), policy))
}

pub(crate) fn connect(target: &Target) -> Result<RemoteConnection<Russh>, ConnectionError> {
    let port = target.port.unwrap_or(22);
    let user = target
        .user
        .clone()
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
    let refusal = Arc::new(Mutex::new(None));
    let (known_hosts, policy) = known_hosts_and_policy(target.ssh_common_args.as_deref())?;
    let handler = HostKeyCheck {
        host: target.address.clone(),
        port,
        known_hosts,
        policy,
        refusal: refusal.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        ..Default::default()
    });
    let timeout = Duration::from_secs(target.timeout_secs.max(1));
    let address = (target.address.clone(), port);
    let key_file = target.private_key_file.clone();
    let handle = runtime().block_on(async move {
        let connecting = client::connect(config, address, handler);
        let mut handle =
            match tokio::time::timeout(timeout, connecting).await {
                Err(_) => return Err(format!("Connection timed out after {}s", timeout.as_secs())),
                Ok(Err(e)) => {
                    return Err(refusal.lock().expect("refusal lock").take().unwrap_or_else(
                        || format!("Failed to connect to the host via russh: {e}"),
                    ));
                }
                Ok(Ok(h)) => h,
            };
        authenticate(&mut handle, &user, key_file.as_deref()).await?;
        Ok(handle)
    });
    let handle = handle.map_err(ConnectionError::Unreachable)?;
    Ok(RemoteConnection::new(
        Russh { handle },
        target.user.clone(),
        target.address.clone(),
    ))
}

/// Tries the given key file, then the ssh-agent, then the usual `~/.ssh/id_*` files.
async fn authenticate(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    key_file: Option<&str>,
) -> Result<(), String> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let mut tried = Vec::new();
    let try_file = |path: String| async move {
        let key = russh::keys::load_secret_key(&path, None)
            .map_err(|e| format!("cannot load the key {path}: {e}"))?;
        Ok::<_, String>(PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash))
    };
    if let Some(file) = key_file {
        let key = try_file(expand_home(file)).await?;
        if handle
            .authenticate_publickey(user, key)
            .await
            .map_err(|e| e.to_string())?
            .success()
        {
            return Ok(());
        }
        return Err(format!(
            "Permission denied (publickey) for {user} with {file}"
        ));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        for identity in agent.request_identities().await.unwrap_or_default() {
            if let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity
                && let Ok(result) = handle
                    .authenticate_publickey_with(user, key, rsa_hash, &mut agent)
                    .await
                && result.success()
            {
                return Ok(());
            }
        }
        tried.push("the ssh-agent".to_string());
    }
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let path = format!("{home}/.ssh/{name}");
        if !std::path::Path::new(&path).exists() {
            continue;
        }
        if let Ok(key) = try_file(path.clone()).await
            && handle
                .authenticate_publickey(user, key)
                .await
                .map_err(|e| e.to_string())?
                .success()
        {
            return Ok(());
        }
        tried.push(path);
    }
    Err(format!(
        "Permission denied (publickey) for {user}; tried {}",
        if tried.is_empty() {
            "no keys".into()
        } else {
            tried.join(", ")
        }
    ))
}

fn lost(e: russh::Error) -> ConnectionError {
    ConnectionError::Unreachable(format!("the SSH connection failed: {e}"))
}

impl Transport for Russh {
    fn exec<'a>(&'a self, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let channel = self.handle.channel_open_session().await.map_err(lost)?;
            channel.exec(true, command).await.map_err(lost)?;
            let (reader, writer) = tokio::io::split(channel.into_stream());
            Ok(Exec {
                stdin: Box::new(writer),
                stdout: Box::new(reader),
                keep: Box::new(()),
            })
        })
    }

    fn run_with_input<'a>(&'a self, command: &'a str, input: &'a [u8]) -> StatusFuture<'a> {
        Box::pin(async move {
            let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
            channel.exec(true, command).await.map_err(lost)?;
            channel.data(input).await.map_err(lost)?;
            channel.eof().await.map_err(lost)?;
            let mut stderr = Vec::new();
            let mut status = None;
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            match status {
                Some(0) => Ok(()),
                _ => Err(ConnectionError::Failed(format!(
                    "placing the agent failed: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ))),
            }
        })
    }
}
