//! `hostname`: the host's name, both the running (transient) one and the permanent one, set the
//! way Ansible's `hostname` module does on Linux: with `hostnamectl` where systemd runs (or with
//! `use: systemd`/`debian`), else by the distribution's file (`/etc/hostname`,
//! `/etc/sysconfig/network`, `/etc/conf.d/hostname`). Returns Ansible's `ansible_facts`
//! (`ansible_hostname`, `ansible_nodename`, `ansible_fqdn`, `ansible_domain`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::text;
use crate::fsutil::atomic_write;
use crate::process;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "hostname",
    args: &["name", "use"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Use {
    Alpine,
    Debian,
    Freebsd,
    Generic,
    Macos,
    Macosx,
    Darwin,
    Openbsd,
    Openrc,
    Redhat,
    Sles,
    Solaris,
    Systemd,
}

/// How the name is read and written.
#[derive(Debug, Clone, PartialEq)]
enum Strategy {
    /// `hostnamectl`, at this path.
    Systemd(String),
    /// `/etc/hostname`; the running name is the file's.
    File,
    /// `/etc/hostname`, then `hostname -F /etc/hostname`.
    Alpine,
    /// `hostname=` in `/etc/conf.d/hostname`.
    OpenRc,
    /// `HOSTNAME=` in `/etc/sysconfig/network`.
    RedHat,
}

const HOSTNAME_FILE: &str = "/etc/hostname";
const OPENRC_FILE: &str = "/etc/conf.d/hostname";
const NETWORK_FILE: &str = "/etc/sysconfig/network";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hostname {
    #[serde(deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, rename = "use")]
    using: Option<Use>,
    #[serde(skip)]
    strategy: Option<Strategy>,
    #[serde(skip)]
    set_current: bool,
    #[serde(skip)]
    set_permanent: bool,
    /// Ansible's `diff` result, when the name changes.
    #[serde(skip)]
    diff: Option<Value>,
}

fn command_failed(ran: &process::Ran) -> ModuleError {
    ModuleError::Failed(format!(
        "Command failed rc={}, out={}, err={}",
        ran.rc, ran.stdout, ran.stderr
    ))
}

fn run_checked(argv: &[&str]) -> Result<String, ModuleError> {
    let ran = process::run(argv, &[])?;
    if !ran.ok() {
        return Err(command_failed(&ran));
    }
    Ok(ran.stdout.trim().to_string())
}

fn read_text(path: &str) -> Result<Option<String>, ModuleError> {
    if !Path::new(path).is_file() {
        return Ok(None);
    }
    std::fs::read(path)
        .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
        .map_err(|e| ModuleError::Failed(format!("failed to read hostname: {e}")))
}

/// Writes a small system file whole, keeping an existing file's mode and owner.
fn write_text(path: &str, text: &str) -> Result<(), ModuleError> {
    let (mode, uid, gid) = match std::fs::metadata(path) {
        Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
        Err(_) => (0o644, None, None),
    };
    atomic_write(Path::new(path), text.as_bytes(), mode, uid, gid)
        .map_err(|e| ModuleError::Failed(format!("failed to update hostname: {e}")))
}

/// `/etc/os-release`'s `ID`, capitalized as Ansible's `get_distribution` names it.
fn distribution() -> String {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim_matches(['"', '\'']).to_string())
        .unwrap_or_default();
    match id.as_str() {
        "rhel" => "Redhat".into(),
        "ol" => "Oracle".into(),
        "amzn" => "Amazon".into(),
        _ => {
            let mut c = id.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_else(|| "OtherLinux".into())
        }
    }
}

/// Python's `socket.getfqdn()`: the host's name resolved, then its address looked up back; the
/// first of the names found that has a dot, else the canonical one. (`settle pull` picks the
/// host's playbook and inventory name with it, as `ansible-pull` does with Python's.)
pub fn fqdn() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = if rc == 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let lookup = |db: &str, key: &str| -> Option<Vec<String>> {
        let ran = process::run(&["getent", db, key], &[]).ok()?;
        let line = ran.stdout.lines().next()?.to_string();
        ran.ok()
            .then(|| line.split_whitespace().map(str::to_string).collect())
    };
    let Some(address) = lookup("ahosts", &name).and_then(|w| w.first().cloned()) else {
        return name;
    };
    let Some(names) = lookup("hosts", &address) else {
        return name;
    };
    let names = &names[1.min(names.len())..];
    names
        .iter()
        .find(|n| n.contains('.'))
        .or_else(|| names.first())
        .cloned()
        .unwrap_or(name)
}

impl Strategy {
    fn choose(using: Option<Use>) -> Result<Strategy, ModuleError> {
        let unsupported = |u: &str| {
            ModuleError::Args(format!(
                "hostname: use={u} is not supported by settle (systemd, debian, alpine, openrc, redhat)"
            ))
        };
        let systemd = || bin_path::required("hostnamectl").map(Strategy::Systemd);
        match using {
            Some(Use::Systemd | Use::Debian) => systemd(),
            Some(Use::Alpine) => Ok(Strategy::Alpine),
            Some(Use::Openrc) => Ok(Strategy::OpenRc),
            Some(Use::Redhat) => Ok(Strategy::RedHat),
            Some(Use::Freebsd) => Err(unsupported("freebsd")),
            Some(Use::Generic) => Err(unsupported("generic")),
            Some(Use::Macos | Use::Macosx | Use::Darwin) => Err(unsupported("macos")),
            Some(Use::Openbsd) => Err(unsupported("openbsd")),
            Some(Use::Sles) => Err(unsupported("sles")),
            Some(Use::Solaris) => Err(unsupported("solaris")),
            None => {
                let systemd_runs = bin_path::find("systemctl").is_some()
                    && [
                        "/run/systemd/system/",
                        "/dev/.run/systemd/",
                        "/dev/.systemd/",
                    ]
                    .iter()
                    .any(|c| Path::new(c).exists());
                if systemd_runs {
                    return systemd();
                }
                let distribution = distribution();
                match distribution.as_str() {
                    "Debian" | "Kylin" | "Cumulus-linux" | "Kali" | "Parrot" | "Ubuntu"
                    | "Linuxmint" | "Linaro" | "Devuan" | "Raspbian" | "Uos" | "Deepin"
                    | "Neon" | "Pop" => Ok(Strategy::File),
                    "Redhat" | "Centos" | "Anolis" | "Cloudlinux" | "Cloudlinuxserver"
                    | "Alinux" | "Scientific" | "Oracle" | "Virtuozzo" | "Amazon" | "Eurolinux" => {
                        Ok(Strategy::RedHat)
                    }
                    "Gentoo" => Ok(Strategy::OpenRc),
                    "Alpine" => Ok(Strategy::Alpine),
                    _ => Err(ModuleError::Failed(format!(
                        "hostname module cannot be used on platform Linux ({distribution})"
                    ))),
                }
            }
        }
    }

    fn current(&self) -> Result<Option<String>, ModuleError> {
        match self {
            Strategy::Systemd(ctl) => run_checked(&[ctl, "--transient", "status"]).map(Some),
            _ => self.permanent(),
        }
    }

    /// The permanent name; `None` where Ansible's reader finds no entry (and returns `None`).
    fn permanent(&self) -> Result<Option<String>, ModuleError> {
        match self {
            Strategy::Systemd(ctl) => run_checked(&[ctl, "--static", "status"]).map(Some),
            Strategy::File | Strategy::Alpine => Ok(Some(
                read_text(HOSTNAME_FILE)?
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )),
            Strategy::OpenRc => {
                let Some(text) = read_text(OPENRC_FILE)? else {
                    return Ok(Some(String::new()));
                };
                Ok(text.lines().map(str::trim).find_map(|l| {
                    l.strip_prefix("hostname=")
                        .map(|v| v.trim_matches('"').to_string())
                }))
            }
            Strategy::RedHat => {
                let text = std::fs::read_to_string(NETWORK_FILE)
                    .map_err(|e| ModuleError::Failed(format!("failed to read hostname: {e}")))?;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("HOSTNAME") {
                        return match line.split('=').collect::<Vec<_>>().as_slice() {
                            [_, v] => Ok(Some(v.trim().to_string())),
                            _ => Err(ModuleError::Failed(format!(
                                "failed to read hostname: cannot parse {line:?}"
                            ))),
                        };
                    }
                }
                Err(ModuleError::Failed(format!(
                    "Unable to locate HOSTNAME entry in {NETWORK_FILE}"
                )))
            }
        }
    }

    fn set_current(&self, name: &str) -> Result<(), ModuleError> {
        match self {
            Strategy::Systemd(ctl) => {
                too_long(name)?;
                run_checked(&[ctl, "--transient", "set-hostname", name]).map(drop)
            }
            Strategy::Alpine => {
                let hostname = bin_path::required("hostname")?;
                run_checked(&[&hostname, "-F", HOSTNAME_FILE]).map(drop)
            }
            _ => Ok(()),
        }
    }

    fn set_permanent(&self, name: &str) -> Result<(), ModuleError> {
        match self {
            Strategy::Systemd(ctl) => {
                too_long(name)?;
                run_checked(&[ctl, "--pretty", "--static", "set-hostname", name]).map(drop)
            }
            Strategy::File | Strategy::Alpine => write_text(HOSTNAME_FILE, &format!("{name}\n")),
            Strategy::OpenRc => {
                let text = read_text(OPENRC_FILE)?.unwrap_or_default();
                let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
                if let Some(line) = lines.iter_mut().find(|l| l.starts_with("hostname=")) {
                    *line = format!("hostname=\"{name}\"");
                }
                write_text(OPENRC_FILE, &format!("{}\n", lines.join("\n")))
            }
            Strategy::RedHat => {
                let text = std::fs::read_to_string(NETWORK_FILE).unwrap_or_default();
                let mut found = false;
                let mut out = String::new();
                for line in text.split_inclusive('\n') {
                    if line.trim().starts_with("HOSTNAME") {
                        out.push_str(&format!("HOSTNAME={name}\n"));
                        found = true;
                    } else {
                        out.push_str(line);
                    }
                }
                if !found {
                    out.push_str(&format!("HOSTNAME={name}\n"));
                }
                write_text(NETWORK_FILE, &out)
            }
        }
    }
}

fn too_long(name: &str) -> Result<(), ModuleError> {
    if name.len() > 64 {
        return Err(ModuleError::Failed(
            "name cannot be longer than 64 characters on systemd servers, try a shorter name"
                .into(),
        ));
    }
    Ok(())
}

impl Hostname {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

impl Resource for Hostname {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let strategy = Strategy::choose(self.using)?;
        let name = self.name().to_string();
        let current = strategy.current()?;
        let permanent = strategy.permanent()?;
        self.set_current = current.as_deref() != Some(name.as_str());
        self.set_permanent = permanent.as_deref() != Some(name.as_str());
        let mut plan = Plan::default();
        if self.set_current || self.set_permanent {
            // Ansible's diff: the running name when it differs, else the permanent one.
            let before = if self.set_current { current } else { permanent };
            let before = format!("hostname = {}\n", before.as_deref().unwrap_or("None"));
            self.diff = Some(serde_json::json!({
                "after": format!("hostname = {name}\n"),
                "before": before,
            }));
            plan.change("content", None, None);
            if want_diff {
                plan.content.push(ContentDiff {
                    path: "hostname".into(),
                    before: Some(before),
                    after: Some(format!("hostname = {name}\n")),
                    summary: None,
                });
            }
        }
        self.strategy = Some(strategy);
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let Some(strategy) = &self.strategy else {
            return Ok(());
        };
        let name = self.name();
        // The permanent name first: systemd wants it so (NetworkManager complains otherwise),
        // Alpine's `hostname -F` reads the file just written, and the other strategies have no
        // running name of their own.
        if self.set_permanent {
            strategy.set_permanent(name)?;
        }
        if self.set_current {
            strategy.set_current(name)?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let name = self.name().to_string();
        let fqdn = fqdn();
        let domain = fqdn.split('.').skip(1).collect::<Vec<_>>().join(".");
        let mut facts = Map::new();
        facts.insert(
            "ansible_hostname".into(),
            name.split('.').next().unwrap_or_default().into(),
        );
        facts.insert("ansible_nodename".into(), name.clone().into());
        facts.insert("ansible_fqdn".into(), fqdn.into());
        facts.insert("ansible_domain".into(), domain.into());
        values.insert("name".into(), name.into());
        values.insert("ansible_facts".into(), Value::Object(facts));
        if let Some(diff) = &self.diff {
            values.insert("diff".into(), diff.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_by_use() {
        assert_eq!(
            Strategy::choose(Some(Use::Redhat)).unwrap(),
            Strategy::RedHat
        );
        assert_eq!(
            Strategy::choose(Some(Use::Openrc)).unwrap(),
            Strategy::OpenRc
        );
        assert!(Strategy::choose(Some(Use::Solaris)).is_err());
        let h: Result<Hostname, _> =
            serde_json::from_value(serde_json::json!({"name": "a", "use": "nope"}));
        assert!(h.is_err());
    }

    #[test]
    fn names_longer_than_64_fail_on_systemd() {
        assert!(too_long(&"a".repeat(65)).is_err());
        assert!(too_long(&"a".repeat(64)).is_ok());
    }
}
