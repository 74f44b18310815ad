//! The `russh` transport: SSH in pure Rust, no `ssh` binary needed. `~/.ssh/config` is read as
//! `ssh` reads it (`ssh_config`): `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump`
//! (tunnelled through the jump host's `direct-tcpip` channels), `StrictHostKeyChecking`,
//! `UserKnownHostsFile`; an option it cannot honour is an error naming it. Key files and the
//! ssh-agent authenticate; host keys are checked against the known_hosts files with the same
//! policy as the `ssh` transport (strict by default).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use super::remote::{Exec, ExecFuture, RemoteConnection, StatusFuture, Transport, runtime};
use super::ssh_config::{self, HostKeyStatus, check_host_key};
use super::{ConnectionError, HostKeyPolicy, Target, expand_home};

pub(crate) struct Russh {
    handle: Handle<HostKeyCheck>,
    /// The connections to `ProxyJump` hosts this one is tunnelled through: kept open with it.
    _jumps: Vec<Handle<HostKeyCheck>>,
}

/// Checks the server's key against the known_hosts files, and remembers why it refused one.
struct HostKeyCheck {
    host: String,
    port: u16,
    /// The user's files, then the global ones; a new key is learnt into the first.
    known_hosts: Vec<PathBuf>,
    policy: HostKeyPolicy,
    refusal: Arc<Mutex<Option<String>>>,
}

impl HostKeyCheck {
    fn refuse(&self, why: String) -> Result<bool, russh::Error> {
        if let Ok(mut refusal) = self.refusal.lock() {
            *refusal = Some(why);
        }
        Ok(false)
    }
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
            return self.refuse(
                "the host offered a certificate; settle's russh transport checks plain host keys"
                    .into(),
            );
        };
        let name = format!("[{}]:{}", self.host, self.port);
        match check_host_key(&self.known_hosts, &self.host, self.port, key) {
            HostKeyStatus::Known => Ok(true),
            HostKeyStatus::Unknown if self.policy == HostKeyPolicy::AcceptNew => {
                if let Some(file) = self.known_hosts.first() {
                    let _ = russh::keys::known_hosts::learn_known_hosts_path(
                        &self.host, self.port, key, file,
                    );
                }
                Ok(true)
            }
            HostKeyStatus::Unknown => self.refuse(format!(
                "Host key verification failed: no key for {name} in {}",
                self.known_hosts
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            HostKeyStatus::Changed(at) => self.refuse(format!(
                "Host key verification failed: the host key of {name} CHANGED (known: {at})"
            )),
            HostKeyStatus::Revoked(at) => self.refuse(format!(
                "Host key verification failed: the host key of {name} is REVOKED in {at}"
            )),
        }
    }
}

pub(crate) fn connect(target: &Target) -> Result<RemoteConnection<Russh>, ConnectionError> {
    let resolved = ssh_config::resolve(target).map_err(|why| {
        ConnectionError::Failed(format!(
            "the russh transport cannot honour {why}; connect to this host with -c ssh"
        ))
    })?;
    let timeout = Duration::from_secs(target.timeout_secs.max(1));
    let (handle, jumps) = runtime()?
        // Boxed, as `RemoteConnection::run`'s future: the handshake's is larger still.
        .block_on(Box::pin(open(resolved, timeout)))
        .map_err(ConnectionError::Unreachable)?;
    Ok(RemoteConnection::new(
        Russh {
            handle,
            _jumps: jumps,
        },
        target.user.clone(),
        target.address.clone(),
    ))
}

/// Whether the ssh configuration lets russh reach this host as OpenSSH would; `Err` names the
/// option only OpenSSH honours.
pub(crate) fn can_honour(target: &Target) -> Result<(), String> {
    // `ssh_args` from the environment or ansible.cfg (handed on as ANSIBLE_SSH_ARGS) are words
    // for OpenSSH, as a host's own `ansible_ssh_args` are.
    if std::env::var("ANSIBLE_SSH_ARGS").is_ok_and(|a| !a.trim().is_empty()) {
        return Err("ssh_args (ANSIBLE_SSH_ARGS or ansible.cfg's [ssh_connection])".into());
    }
    // Only OpenSSH has debug lines of its own to show.
    if target.ssh_verbosity > 0 {
        return Err("ansible_ssh_verbosity".into());
    }
    ssh_config::resolve(target).map(|_| ())
}

fn client_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        // Requests and replies are small: waiting to fill a segment only adds latency.
        nodelay: true,
        ..Default::default()
    })
}

/// A `ProxyJump` spec, `[user@]host[:port]`, as a target of its own (read through the ssh
/// configuration too, but not jumping again).
fn jump_target(
    spec: &str,
    config_arg: Option<String>,
    timeout_secs: u64,
) -> Result<Target, String> {
    let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (address, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            Some(
                p.parse()
                    .map_err(|_| format!("ProxyJump {spec:?}: {p:?} is not a port"))?,
            ),
        ),
        _ => (rest.to_string(), None),
    };
    Ok(Target {
        transport: "russh".into(),
        address,
        port,
        user,
        private_key_file: None,
        ssh_common_args: config_arg,
        ssh_args: None,
        timeout_secs,
        password: None,
        ssh_verbosity: 0,
    })
}

/// Connects (through the jump hosts, each over a `direct-tcpip` channel of the one before) and
/// authenticates.
async fn open(
    resolved: ssh_config::Resolved,
    timeout: Duration,
) -> Result<(Handle<HostKeyCheck>, Vec<Handle<HostKeyCheck>>), String> {
    let mut hops = Vec::new();
    for spec in &resolved.jump_hosts {
        let mut hop = ssh_config::resolve(&jump_target(
            spec,
            resolved.config_arg.clone(),
            timeout.as_secs(),
        )?)
        .map_err(|why| format!("jump host {spec}: russh cannot honour {why}"))?;
        hop.jump_hosts.clear();
        hops.push(hop);
    }
    hops.push(resolved);
    let mut jumps: Vec<Handle<HostKeyCheck>> = Vec::new();
    for hop in hops {
        let refusal = Arc::new(Mutex::new(None));
        let mut known_hosts = hop.known_hosts.clone();
        known_hosts.extend(hop.global_known_hosts.iter().cloned());
        let handler = HostKeyCheck {
            host: hop.host_name.clone(),
            port: hop.port,
            known_hosts,
            policy: hop.policy,
            refusal: refusal.clone(),
        };
        let connecting = async {
            match jumps.last() {
                None => {
                    client::connect(client_config(), (hop.host_name.clone(), hop.port), handler)
                        .await
                        .map_err(|e| e.to_string())
                }
                Some(through) => {
                    let channel = through
                        .channel_open_direct_tcpip(
                            hop.host_name.clone(),
                            u32::from(hop.port),
                            "127.0.0.1",
                            0,
                        )
                        .await
                        .map_err(|e| {
                            format!(
                                "the jump host refused to open a channel to {}:{}: {e}",
                                hop.host_name, hop.port
                            )
                        })?;
                    client::connect_stream(client_config(), channel.into_stream(), handler)
                        .await
                        .map_err(|e| e.to_string())
                }
            }
        };
        let mut handle = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => {
                return Err(format!(
                    "Connection to {}:{} timed out after {}s",
                    hop.host_name,
                    hop.port,
                    timeout.as_secs()
                ));
            }
            Ok(Err(e)) => {
                let refused = refusal.lock().ok().and_then(|mut r| r.take());
                return Err(refused
                    .unwrap_or_else(|| format!("Failed to connect to the host via russh: {e}")));
            }
            Ok(Ok(h)) => h,
        };
        authenticate(&mut handle, &hop).await?;
        jumps.push(handle);
    }
    match jumps.pop() {
        Some(handle) => Ok((handle, jumps)),
        None => Err("no host to connect to".into()),
    }
}

/// As `ssh` tries them: a key given on the command line alone; else the ssh-agent's keys
/// (unless `IdentitiesOnly`), then the configuration's `IdentityFile`s or the usual
/// `~/.ssh/id_*` files.
async fn authenticate(
    handle: &mut Handle<HostKeyCheck>,
    hop: &ssh_config::Resolved,
) -> Result<(), String> {
    let user = hop.user.as_str();
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
    if let Some(file) = &hop.key_file {
        let key = try_file(file.clone()).await?;
        if handle
            .authenticate_publickey(user, key)
            .await
            .map_err(|e| e.to_string())?
            .success()
        {
            return Ok(());
        }
        if hop.password.is_none() {
            return Err(format!(
                "Permission denied (publickey) for {user} with {file}"
            ));
        }
        tried.push(file.clone());
    } else if try_default_keys(handle, hop, rsa_hash, &mut tried).await? {
        return Ok(());
    }
    // As OpenSSH with Ansible's password: keys first, then the password, asked once.
    if let Some(password) = &hop.password {
        if handle
            .authenticate_password(user, password.0.clone())
            .await
            .map_err(|e| e.to_string())?
            .success()
        {
            return Ok(());
        }
        return Err(format!("{user}: Permission denied (publickey,password)."));
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

/// The ssh-agent's keys and the configured or default key files: whether one let us in
/// (`tried` names those refused).
async fn try_default_keys(
    handle: &mut Handle<HostKeyCheck>,
    hop: &ssh_config::Resolved,
    rsa_hash: Option<russh::keys::HashAlg>,
    tried: &mut Vec<String>,
) -> Result<bool, String> {
    let user = hop.user.as_str();
    let try_file = |path: String| async move {
        let key = russh::keys::load_secret_key(&path, None)
            .map_err(|e| format!("cannot load the key {path}: {e}"))?;
        Ok::<_, String>(PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash))
    };
    if !hop.identities_only
        && std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        for identity in agent.request_identities().await.unwrap_or_default() {
            if let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity
                && let Ok(result) = handle
                    .authenticate_publickey_with(user, key, rsa_hash, &mut agent)
                    .await
                && result.success()
            {
                return Ok(true);
            }
        }
        tried.push("the ssh-agent".to_string());
    }
    let files = if hop.identity_files.is_empty() {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| expand_home(&format!("~/.ssh/{name}")))
            .collect()
    } else {
        hop.identity_files.clone()
    };
    for path in files {
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
            return Ok(true);
        }
        tried.push(path);
    }
    Ok(false)
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
