//! What OpenSSH's configuration says about reaching a host, for the `russh` transport: the
//! user's `~/.ssh/config` (or `-F`) and `/etc/ssh/ssh_config`, read with the `ssh2-config`
//! crate, and `known_hosts` files checked as `ssh` checks them (hashed names, wildcards,
//! `@revoked`). An option russh cannot honour is reported, so that the host uses OpenSSH.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::ssh_key::PublicKey;
use russh::keys::ssh_key::known_hosts::{HostPatterns, KnownHosts, Marker};
use ssh2_config::{HostParams, ParseRule, SshConfig};

use super::{CommonArgs, HostKeyPolicy, Target, expand_home, host_key_policy};

/// How to reach one host, with the command line (inventory variables, `ansible_ssh_common_args`)
/// first and the configuration files after, as `ssh` takes the first value it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The name `Host` patterns and known_hosts entries are matched against (`HostName`).
    pub host_name: String,
    pub port: u16,
    pub user: String,
    /// A key given on the command line is the only one tried (as settle's `ssh` does).
    pub key_file: Option<String>,
    /// `IdentityFile`s from the configuration, tried before the default ones.
    pub identity_files: Vec<String>,
    /// `IdentitiesOnly yes`: the ssh-agent's keys are not offered.
    pub identities_only: bool,
    /// `ProxyJump` / `-J`: hosts to go through, first one first.
    pub jump_hosts: Vec<String>,
    pub policy: HostKeyPolicy,
    pub known_hosts: Vec<PathBuf>,
    pub global_known_hosts: Vec<PathBuf>,
    /// `-F FILE`, which jump hosts are read through too (as `ssh -J` passes it on).
    pub config_arg: Option<String>,
    /// `ansible_password`: tried when no key lets us in.
    pub password: Option<super::Password>,
}

/// Options that change nothing russh does: it never forwards, never uses a password or GSSAPI
/// when a key works, and keeps no control sockets.
const HARMLESS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "batchmode",
    "checkhostip",
    "compression",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "forwardx11",
    "forwardx11trusted",
    "gssapiauthentication",
    "gssapidelegatecredentials",
    "hashknownhosts",
    "kbdinteractiveauthentication",
    "loglevel",
    "numberofpasswordprompts",
    "passwordauthentication",
    "preferredauthentications",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "tcpkeepalive",
    "updatehostkeys",
    "visualhostkey",
];

/// Resolves `target` through the configuration; `Err` names what only OpenSSH can honour.
pub(crate) fn resolve(target: &Target) -> Result<Resolved, String> {
    // A host's own `ssh_args` (`-F`, `-o` …) are OpenSSH's to read.
    if target
        .ssh_args
        .as_deref()
        .is_some_and(|a| !a.trim().is_empty())
    {
        return Err("ansible_ssh_args".into());
    }
    let common = CommonArgs::parse(target.ssh_common_args.as_deref()).map_err(|e| e.to_string())?;
    let mut options: HashMap<String, String> = HashMap::new();
    for (k, v) in &common.options {
        // The first value wins, as in ssh.
        options
            .entry(k.to_ascii_lowercase())
            .or_insert_with(|| v.clone());
    }
    let (user_file, read_system) = match &common.config_file {
        Some(file) => (PathBuf::from(expand_home(file)), false),
        None => (PathBuf::from(expand_home("~/.ssh/config")), true),
    };
    let mut params = query(&user_file, &target.address)?;
    if read_system {
        params.overwrite_if_none(&query(Path::new("/etc/ssh/ssh_config"), &target.address)?);
    }
    // Options given with -o: those russh reads are taken below, the others must be harmless.
    for name in options.keys() {
        if !handled(name) && !HARMLESS.contains(&name.as_str()) {
            return Err(format!("-o {name} in ansible_ssh_common_args"));
        }
    }
    unsupported_params(&params)?;
    let extra = |name: &str| -> Option<String> {
        options.get(name).cloned().or_else(|| {
            params
                .unsupported_fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.join(" "))
        })
    };
    let host_name = options
        .get("hostname")
        .cloned()
        .or(params.host_name.clone())
        .unwrap_or_else(|| target.address.clone());
    let port = match (target.port, options.get("port")) {
        (Some(p), _) => p,
        (None, Some(p)) => p.parse().map_err(|_| format!("-o Port={p}"))?,
        (None, None) => params.port.unwrap_or(22),
    };
    let user = target
        .user
        .clone()
        .or_else(|| options.get("user").cloned())
        .or(params.user.clone())
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
    let mut jump_hosts = common.jump_hosts.clone();
    if jump_hosts.is_empty() {
        if let Some(j) = options.get("proxyjump") {
            jump_hosts = j.split(',').map(str::to_string).collect();
        } else if let Some(j) = &params.proxy_jump {
            jump_hosts = j.clone();
        }
    }
    // `ProxyJump none` turns jumping off.
    jump_hosts.retain(|j| !j.eq_ignore_ascii_case("none"));
    let identity_files = options
        .get("identityfile")
        .map(|f| vec![expand_home(f)])
        .or_else(|| {
            params.identity_file.as_ref().map(|files| {
                files
                    .iter()
                    .map(|f| expand_home(&f.display().to_string()))
                    .collect()
            })
        })
        .unwrap_or_default();
    let identities_only = extra("identitiesonly").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let policy = extra("stricthostkeychecking")
        .map_or_else(host_key_policy, |v| HostKeyPolicy::from_ssh_word(&v));
    let files = |value: Option<String>, default: &[&str]| -> Vec<PathBuf> {
        match value {
            Some(v) => v
                .split_whitespace()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(|f| PathBuf::from(expand_home(f)))
                .collect(),
            None => default
                .iter()
                .map(|f| PathBuf::from(expand_home(f)))
                .collect(),
        }
    };
    Ok(Resolved {
        host_name,
        port,
        user,
        key_file: target.private_key_file.as_deref().map(expand_home),
        identity_files,
        identities_only,
        jump_hosts,
        policy,
        known_hosts: files(
            extra("userknownhostsfile"),
            &["~/.ssh/known_hosts", "~/.ssh/known_hosts2"],
        ),
        global_known_hosts: files(
            extra("globalknownhostsfile"),
            &["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
        ),
        config_arg: common
            .config_file
            .as_ref()
            .map(|f| format!("-F {}", shell_words::quote(f))),
        password: target.password.clone(),
    })
}

/// `-o` options and configuration keywords the russh transport reads.
fn handled(name: &str) -> bool {
    matches!(
        name,
        "hostname"
            | "port"
            | "user"
            | "identityfile"
            | "identitiesonly"
            | "proxyjump"
            | "stricthostkeychecking"
            | "userknownhostsfile"
            | "globalknownhostsfile"
            | "pubkeyauthentication"
    )
}

/// The first option in the host's parameters that only OpenSSH can honour.
fn unsupported_params(params: &HostParams) -> Result<(), String> {
    let set = |what: &str| Err(format!("{what} in the ssh configuration"));
    if params.certificate_file.is_some() {
        return set("CertificateFile");
    }
    if params.forward_agent == Some(true) {
        return set("ForwardAgent yes");
    }
    if params.pubkey_authentication == Some(false) {
        return set("PubkeyAuthentication no");
    }
    if params.bind_address.is_some() || params.bind_interface.is_some() {
        return set("BindAddress/BindInterface");
    }
    if !params.remote_forward.is_empty() {
        return set("RemoteForward");
    }
    for (name, algorithms) in [
        ("Ciphers", &params.ciphers),
        ("KexAlgorithms", &params.kex_algorithms),
        ("MACs", &params.mac),
        ("HostKeyAlgorithms", &params.host_key_algorithms),
        (
            "PubkeyAcceptedAlgorithms",
            &params.pubkey_accepted_algorithms,
        ),
        ("CASignatureAlgorithms", &params.ca_signature_algorithms),
    ] {
        if !algorithms.is_default() {
            return set(name);
        }
    }
    for name in params.unsupported_fields.keys() {
        let lower = name.to_ascii_lowercase();
        if !handled(&lower) && !HARMLESS.contains(&lower.as_str()) {
            return set(name);
        }
    }
    for name in params.ignored_fields.keys() {
        let ignored = params
            .ignore_unknown
            .as_ref()
            .is_some_and(|list| list.iter().any(|i| i.eq_ignore_ascii_case(name)));
        if !ignored && !HARMLESS.contains(&name.to_ascii_lowercase().as_str()) {
            return set(name);
        }
    }
    Ok(())
}

/// The parameters one configuration file gives `host` (none when the file does not exist).
fn query(path: &Path, host: &str) -> Result<HostParams, String> {
    static PARSED: Mutex<Vec<(PathBuf, Arc<SshConfig>)>> = Mutex::new(Vec::new());
    let mut parsed = PARSED
        .lock()
        .map_err(|_| "ssh configuration: a thread panicked".to_string())?;
    let config = match parsed.iter().find(|(p, _)| p == path) {
        Some((_, c)) => c.clone(),
        None => {
            let config = Arc::new(parse(path)?);
            parsed.push((path.to_path_buf(), config.clone()));
            config
        }
    };
    Ok(config.query(host))
}

fn parse(path: &Path) -> Result<SshConfig, String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(SshConfig::default());
    };
    let config = SshConfig::default()
        .parse(
            &mut std::io::BufReader::new(file),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| format!("{} (ssh2-config cannot read it: {e})", path.display()))?;
    // `Match` blocks are not understood by the parser, and the lines after one would be read as
    // the previous `Host` block's: only OpenSSH can follow such a file.
    for host in config.get_hosts() {
        if host
            .params
            .ignored_fields
            .keys()
            .any(|k| k.eq_ignore_ascii_case("match"))
        {
            return Err(format!("Match in {}", path.display()));
        }
    }
    Ok(config)
}

/// What the known_hosts files say about a server's key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HostKeyStatus {
    Known,
    Unknown,
    /// The host has a key of this type, and it is another: `file:line` of it.
    Changed(String),
    Revoked(String),
}

/// Checks `key` for `host` (`[host]:port` when the port is not 22) in the files, in order, as
/// `ssh` does: plain, wildcard (`*`, `?`, `!`) and hashed (`|1|`) names; `@revoked` refuses
/// even where another line knows the key.
pub(crate) fn check_host_key(
    files: &[PathBuf],
    host: &str,
    port: u16,
    key: &PublicKey,
) -> HostKeyStatus {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut changed = None;
    let mut known = false;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        // Line numbers: entries come in order; bad lines are skipped, as ssh skips them.
        for (line, entry) in KnownHosts::new(&text).enumerate() {
            let Ok(entry) = entry else { continue };
            if !host_matches(entry.host_patterns(), &name) {
                continue;
            }
            let same_key = entry.public_key().key_data() == key.key_data();
            match entry.marker() {
                Some(Marker::Revoked) if same_key => {
                    return HostKeyStatus::Revoked(format!("{}", file.display()));
                }
                Some(_) => {}
                None if same_key => known = true,
                None if entry.public_key().algorithm() == key.algorithm() => {
                    changed.get_or_insert(format!("{} (entry {})", file.display(), line + 1));
                }
                None => {}
            }
        }
    }
    // A revoked key is refused wherever it is listed; a key listed anywhere is known.
    match (known, changed) {
        (true, _) => HostKeyStatus::Known,
        (false, Some(at)) => HostKeyStatus::Changed(at),
        (false, None) => HostKeyStatus::Unknown,
    }
}

fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
            ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let mut matched = false;
            for pattern in list {
                match pattern.strip_prefix('!') {
                    Some(negated) if glob(negated, name) => return false,
                    Some(_) => {}
                    None => matched |= glob(pattern, name),
                }
            }
            matched
        }
    }
}

/// ssh's pattern matching: `*` any run of characters, `?` one, case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new_case_insensitive(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, common: Option<&str>) -> Target {
        Target {
            transport: "russh".into(),
            address: address.into(),
            port: None,
            user: None,
            private_key_file: None,
            ssh_common_args: common.map(str::to_string),
            ssh_args: None,
            timeout_secs: 10,
            password: None,
            ssh_verbosity: 0,
        }
    }

    fn scratch(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("settle-ssh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn host_blocks_give_name_user_port_and_keys() {
        let config = scratch(
            "config",
            "Host web*\n  HostName 10.0.0.5\n  User deploy\n  Port 2222\n  IdentityFile /k/web\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile /k/known\n\nHost *\n  User nobody\n  SendEnv LANG\n  ServerAliveInterval 5\n",
        );
        let common = format!("-F {}", config.display());
        let r = resolve(&target("web1", Some(&common))).unwrap();
        assert_eq!(r.host_name, "10.0.0.5");
        assert_eq!((r.user.as_str(), r.port), ("deploy", 2222));
        assert_eq!(r.identity_files, vec!["/k/web".to_string()]);
        assert_eq!(r.policy, HostKeyPolicy::AcceptNew);
        assert_eq!(r.known_hosts, vec![PathBuf::from("/k/known")]);
        let other = resolve(&target("db1", Some(&common))).unwrap();
        assert_eq!(
            (other.host_name.as_str(), other.user.as_str()),
            ("db1", "nobody")
        );
        // The inventory's user and port win over the file's.
        let mut t = target("web1", Some(&common));
        t.user = Some("root".into());
        t.port = Some(22);
        let r = resolve(&t).unwrap();
        assert_eq!((r.user.as_str(), r.port), ("root", 22));
    }

    #[test]
    fn options_only_openssh_honours_send_the_host_to_openssh() {
        let config = scratch(
            "config-proxy",
            "Host old\n  ProxyCommand nc %h %p\nHost fwd\n  ForwardAgent yes\nHost crypto\n  Ciphers aes128-ctr\nHost fine\n  GSSAPIAuthentication yes\n",
        );
        let common = format!("-F {}", config.display());
        for host in ["old", "fwd", "crypto"] {
            assert!(resolve(&target(host, Some(&common))).is_err(), "{host}");
        }
        assert!(resolve(&target("fine", Some(&common))).is_ok());
        let matched = scratch("config-match", "Host a\n  User x\nMatch user y\n  Port 3\n");
        let common = format!("-F {}", matched.display());
        assert!(
            resolve(&target("b", Some(&common)))
                .unwrap_err()
                .contains("Match")
        );
        let jump = scratch("config-jump", "Host inner\n  ProxyJump bastion,second\n");
        let common = format!("-F {}", jump.display());
        let r = resolve(&target("inner", Some(&common))).unwrap();
        assert_eq!(r.jump_hosts, vec!["bastion".to_string(), "second".into()]);
    }

    #[test]
    fn known_hosts_match_plain_wildcard_and_hashed_names() {
        let key: PublicKey =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                .parse()
                .unwrap();
        let other: PublicKey =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti"
                .parse()
                .unwrap();
        // `|1|salt|hash` of "[127.0.0.1]:2200", made with ssh-keygen -H.
        let salt = [7u8; 20];
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt),
            b"[127.0.0.1]:2200",
        );
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{}", b64.encode(salt), b64.encode(tag.as_ref()));
        let text = format!(
            "# comment\nbroken line\n*.example.com,!bad.example.com {key}\n{hashed} {key}\nchanged.example.org {other}\n@revoked revoked.example.com {key}\n",
            key = key.to_openssh().unwrap(),
            other = other.to_openssh().unwrap()
        );
        let file = scratch("known_hosts", &text);
        let files = [PathBuf::from("/nonexistent"), file];
        assert_eq!(
            check_host_key(&files, "web.example.com", 22, &key),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&files, "bad.example.com", 22, &key),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check_host_key(&files, "127.0.0.1", 2200, &key),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&files, "127.0.0.1", 22, &key),
            HostKeyStatus::Unknown
        );
        assert!(matches!(
            check_host_key(&files, "changed.example.org", 22, &key),
            HostKeyStatus::Changed(_)
        ));
        assert!(matches!(
            check_host_key(&files, "revoked.example.com", 22, &key),
            HostKeyStatus::Revoked(_)
        ));
    }

    #[test]
    fn glob_matches_as_ssh_does() {
        assert!(glob("web*", "web1"));
        assert!(glob("*", "x"));
        assert!(glob("w?b", "WEB"));
        assert!(!glob("web", "web1"));
        assert!(glob("*.ex*.com", "a.example.com"));
    }
}
