//! The facts of Ansible's small Linux `system` collectors, each read from the file Ansible
//! reads (`/proc/cmdline`, `/etc/resolv.conf`, `/etc/ssh/*.pub`, …); only `caps`, `systemd`
//! and `lsb` run a program, and only when the host has it, as Ansible does. Parsing works on
//! text so that the unit tests can feed fixtures.

use std::ffi::CStr;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::bin_path;

/// The text of a file with surrounding whitespace removed (Ansible's `get_file_content`);
/// `None` when unreadable or empty.
fn content(path: impl AsRef<Path>) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A program started early and read late, so that the facts gathered meanwhile hide its
/// start-up time.
pub(crate) struct Pending(std::process::Child);

impl Pending {
    /// Starts a program (a path, then its arguments); `None` when it cannot be started.
    pub(crate) fn start(program: &Path, args: &[&str]) -> Option<Pending> {
        std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()
            .map(Pending)
    }

    /// Its standard output, when it exited 0.
    pub(crate) fn output(self) -> Option<String> {
        let out = self.0.wait_with_output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `apparmor`: enabled when the kernel exposes AppArmor's security folder.
pub(crate) fn apparmor() -> Map<String, Value> {
    let status = if Path::new("/sys/kernel/security/apparmor").exists() {
        "enabled"
    } else {
        "disabled"
    };
    one("apparmor", json!({ "status": status }))
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut facts = Map::new();
    facts.insert(key.into(), value);
    facts
}

/// `cmdline` (the last value of a repeated key wins) and `proc_cmdline` (repeated keys
/// become lists); none when /proc/cmdline is empty.
pub(crate) fn cmdline() -> Map<String, Value> {
    content("/proc/cmdline").map_or_else(Map::new, |text| cmdline_of(&text))
}

fn cmdline_of(text: &str) -> Map<String, Value> {
    let Some(pieces) = shlex_non_posix(text) else {
        let mut facts = Map::new();
        facts.insert("cmdline".into(), json!({}));
        facts.insert("proc_cmdline".into(), json!({}));
        return facts;
    };
    let mut cmdline = Map::new();
    let mut proc_cmdline = Map::new();
    for piece in pieces {
        match piece.split_once('=') {
            None => {
                cmdline.insert(piece.clone(), true.into());
                proc_cmdline.insert(piece, true.into());
            }
            Some((key, value)) => {
                cmdline.insert(key.into(), value.into());
                match proc_cmdline.get_mut(key) {
                    Some(Value::Array(list)) => list.push(value.into()),
                    Some(old) => *old = json!([old.clone(), value]),
                    None => {
                        proc_cmdline.insert(key.into(), value.into());
                    }
                }
            }
        }
    }
    let mut facts = Map::new();
    facts.insert("cmdline".into(), Value::Object(cmdline));
    facts.insert("proc_cmdline".into(), Value::Object(proc_cmdline));
    facts
}

/// Python's `shlex.split(text, posix=False)`: words split on whitespace; a quote opens a
/// quoted word only at a word's start (inside a word it is a plain character) and the
/// closing quote ends that word, quotes kept; `None` for an unclosed quote (Python raises).
fn shlex_non_posix(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                    words.push(std::mem::take(&mut word));
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                if word.is_empty() && (c == '"' || c == '\'') {
                    quote = Some(c);
                }
                word.push(c);
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

/// `dns`: /etc/resolv.conf's nameservers, domain, search, sortlist and options.
pub(crate) fn dns() -> Map<String, Value> {
    let text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    one("dns", Value::Object(dns_of(&text)))
}

fn dns_of(text: &str) -> Map<String, Value> {
    let mut dns = Map::new();
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let rest = || json!(tokens[1..]);
        match tokens[0] {
            "nameserver" => {
                let list = dns.entry("nameservers").or_insert_with(|| json!([]));
                if let Value::Array(list) = list {
                    list.extend(tokens[1..].iter().map(|t| json!(t)));
                }
            }
            "domain" => {
                if let Some(domain) = tokens.get(1) {
                    dns.insert("domain".into(), json!(domain));
                }
            }
            "search" => {
                dns.insert("search".into(), rest());
            }
            "sortlist" => {
                dns.insert("sortlist".into(), rest());
            }
            "options" => {
                let options: Map<String, Value> = tokens[1..]
                    .iter()
                    .map(|o| match o.split_once(':') {
                        Some((k, v)) if !v.is_empty() => (k.to_string(), json!(v)),
                        Some((k, _)) => (k.to_string(), json!(true)),
                        None => (o.to_string(), json!(true)),
                    })
                    .collect();
                dns.insert("options".into(), Value::Object(options));
            }
            _ => {}
        }
    }
    dns
}

/// `fips`: whether the kernel runs in FIPS mode.
pub(crate) fn fips() -> Map<String, Value> {
    let on = content("/proc/sys/crypto/fips_enabled").as_deref() == Some("1");
    one("fips", on.into())
}

/// `selinux` and `selinux_python_present`, as Ansible's collector finds them through
/// libselinux: without the library, a status saying so; with it, the kernel's state.
pub(crate) fn selinux() -> Map<String, Value> {
    let mut facts = Map::new();
    let library = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ]
    .iter()
    .any(|dir| Path::new(dir).join("libselinux.so.1").exists());
    if !library {
        facts.insert(
            "selinux".into(),
            json!({"status": "Missing selinux Python library"}),
        );
        facts.insert("selinux_python_present".into(), false.into());
        return facts;
    }
    facts.insert("selinux_python_present".into(), true.into());
    let root = Path::new("/sys/fs/selinux");
    if !root.join("enforce").exists() {
        facts.insert("selinux".into(), json!({"status": "disabled"}));
        return facts;
    }
    let mode = |n: Option<String>| match n.as_deref() {
        Some("1") => "enforcing",
        Some("0") => "permissive",
        _ => "unknown",
    };
    let config = fs::read_to_string("/etc/selinux/config").unwrap_or_default();
    let setting = |key: &str| {
        config.lines().find_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let config_mode = match setting("SELINUX").as_deref() {
        Some("enforcing") => "enforcing",
        Some("permissive") => "permissive",
        Some("disabled") => "disabled",
        _ => "unknown",
    };
    let policyvers = content(root.join("policyvers"))
        .and_then(|v| v.parse::<i64>().ok())
        .map_or_else(|| json!("unknown"), |v| json!(v));
    facts.insert(
        "selinux".into(),
        json!({
            "status": "enabled",
            "policyvers": policyvers,
            "config_mode": config_mode,
            "mode": mode(content(root.join("enforce"))),
            "type": setting("SELINUXTYPE").unwrap_or_else(|| "unknown".into()),
        }),
    );
    facts
}

/// `lsb_release -a`, started when the host has it.
pub(crate) fn start_lsb() -> Option<Pending> {
    Pending::start(&bin_path::find("lsb_release")?, &["-a"])
}

/// `lsb` from what `lsb_release -a` printed (see [`start_lsb`]), else /etc/lsb-release.
pub(crate) fn lsb(lsb_release: Option<Pending>) -> Map<String, Value> {
    let mut lsb = lsb_release
        .and_then(Pending::output)
        .map(|out| lsb_of_command(&out))
        .unwrap_or_default();
    if lsb.is_empty() {
        lsb = fs::read_to_string("/etc/lsb-release")
            .map(|text| lsb_of_file(&text))
            .unwrap_or_default();
    }
    if let Some(release) = lsb.get("release") {
        let major = release.split('.').next().unwrap_or_default().to_string();
        lsb.push(("major_release".into(), major));
    }
    let lsb: Map<String, Value> = lsb
        .into_iter()
        .map(|(k, v)| {
            let v = v.trim_matches(['\'', '"', '\\']).to_string();
            (k, Value::String(v))
        })
        .collect();
    one("lsb", Value::Object(lsb))
}

/// Pairs in the order found; a later value of the same key replaces the earlier one.
#[derive(Default)]
struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }
    fn get(&self, key: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn push(&mut self, entry: (String, String)) {
        self.set(&entry.0, &entry.1);
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Pairs {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

fn lsb_of_command(out: &str) -> Pairs {
    let mut lsb = Pairs::default();
    for line in out.lines() {
        let Some((_, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if line.contains("LSB Version:") || line.contains("Release:") {
            lsb.set("release", value);
        } else if line.contains("Distributor ID:") {
            lsb.set("id", value);
        } else if line.contains("Description:") {
            lsb.set("description", value);
        } else if line.contains("Codename:") {
            lsb.set("codename", value);
        }
    }
    lsb
}

fn lsb_of_file(text: &str) -> Pairs {
    let mut lsb = Pairs::default();
    for line in text.lines() {
        let Some((_, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        for (key, name) in [
            ("DISTRIB_ID", "id"),
            ("DISTRIB_RELEASE", "release"),
            ("DISTRIB_DESCRIPTION", "description"),
            ("DISTRIB_CODENAME", "codename"),
        ] {
            if line.contains(key) {
                lsb.set(name, value);
                break;
            }
        }
    }
    lsb
}

/// `ssh_host_key_<algo>_public` and `_keytype`, from the first folder that has any key.
pub(crate) fn ssh_pub_keys() -> Map<String, Value> {
    ssh_pub_keys_in(&["/etc/ssh", "/etc/openssh", "/etc"])
}

fn ssh_pub_keys_in(dirs: &[&str]) -> Map<String, Value> {
    let mut facts = Map::new();
    for dir in dirs {
        for algo in ["dsa", "rsa", "ecdsa", "ed25519"] {
            let name = format!("ssh_host_key_{algo}_public");
            // Ansible stops at the first key of a later folder that an earlier one also had.
            if facts.contains_key(&name) {
                return facts;
            }
            let Some(text) = content(format!("{dir}/ssh_host_{algo}_key.pub")) else {
                continue;
            };
            let mut words = text.split_whitespace();
            if let (Some(keytype), Some(key)) = (words.next(), words.next()) {
                facts.insert(format!("{name}_keytype"), keytype.into());
                facts.insert(name, key.into());
            }
        }
    }
    facts
}

/// `system_capabilities` and `system_capabilities_enforced` come from `capsh --print` when the
/// host has capsh (`N/A` otherwise), read as Ansible reads its `Current:` line.
pub(crate) fn start_caps() -> Option<Pending> {
    Pending::start(&bin_path::find("capsh")?, &["--print"])
}

/// The caps facts from what [`start_caps`] started.
pub(crate) fn caps(capsh: Option<Pending>) -> Map<String, Value> {
    let out = capsh.and_then(Pending::output);
    let mut facts = Map::new();
    let Some(out) = out else {
        facts.insert("system_capabilities_enforced".into(), "N/A".into());
        facts.insert("system_capabilities".into(), "N/A".into());
        return facts;
    };
    let (enforced, caps) = caps_of(&out);
    facts.insert("system_capabilities_enforced".into(), enforced.into());
    facts.insert("system_capabilities".into(), json!(caps));
    facts
}

fn caps_of(out: &str) -> (&'static str, Vec<String>) {
    let mut enforced = "NA";
    let mut caps = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("Current:") else {
            continue;
        };
        let first = rest.split(':').next().unwrap_or_default();
        if first.trim() == "=ep" {
            enforced = "False";
        } else {
            enforced = "True";
            caps = line
                .split('=')
                .nth(1)
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_string())
                .collect();
        }
    }
    (enforced, caps)
}

/// `systemd`: `systemctl --version`'s version and features, on a host systemd manages.
pub(crate) fn start_systemd(service_mgr: &str) -> Option<Pending> {
    if service_mgr != "systemd" {
        return None;
    }
    Pending::start(&bin_path::find("systemctl")?, &["--version"])
}

/// The `systemd` fact from what [`start_systemd`] started.
pub(crate) fn systemd(systemctl: Option<Pending>) -> Map<String, Value> {
    systemctl
        .and_then(Pending::output)
        .and_then(|out| {
            let version: i64 = out.split(' ').nth(1)?.trim().parse().ok()?;
            let features = out.split('\n').nth(1)?.to_string();
            Some(one(
                "systemd",
                json!({"features": features, "version": version}),
            ))
        })
        .unwrap_or_default()
}

/// `is_chroot`: `/` is not PID 1's root (or, without access to that, not the root inode).
pub(crate) fn chroot() -> Map<String, Value> {
    use std::os::unix::fs::MetadataExt;
    let chroot = if std::env::var_os("debian_chroot").is_some_and(|v| !v.is_empty()) {
        true
    } else {
        match (fs::metadata("/"), fs::metadata("/proc/1/root/.")) {
            (Ok(mine), Ok(init)) => mine.ino() != init.ino() || mine.dev() != init.dev(),
            (Ok(mine), Err(_)) => mine.ino() != 2,
            _ => false,
        }
    };
    one("is_chroot", chroot.into())
}

/// `iscsi_iqn`: the initiator name of /etc/iscsi/initiatorname.iscsi, else empty.
pub(crate) fn iscsi() -> Map<String, Value> {
    let text = fs::read_to_string("/etc/iscsi/initiatorname.iscsi").unwrap_or_default();
    let iqn = text
        .lines()
        .find_map(|l| l.strip_prefix("InitiatorName="))
        .unwrap_or_default();
    one("iscsi_iqn", iqn.into())
}

/// `hostnqn`: the NVMe host NQN of /etc/nvme/hostnqn, else empty.
pub(crate) fn nvme() -> Map<String, Value> {
    let text = fs::read_to_string("/etc/nvme/hostnqn").unwrap_or_default();
    let nqn = text
        .lines()
        .find(|l| l.starts_with("nqn."))
        .unwrap_or_default();
    one("hostnqn", nqn.into())
}

/// `fibre_channel_wwn`: the port names of /sys/class/fc_host, without their `0x`.
pub(crate) fn fc_wwn() -> Map<String, Value> {
    let mut wwns = Vec::new();
    for host in fs::read_dir("/sys/class/fc_host")
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = fs::read_to_string(host.path().join("port_name")).unwrap_or_default();
        for line in text.lines() {
            wwns.push(line.trim_end().chars().skip(2).collect::<String>());
        }
    }
    one("fibre_channel_wwn", json!(wwns))
}

/// `date_time`, in the host's local time zone (UTC for the `iso8601` ones), as Ansible's
/// collector writes it.
pub(crate) fn date_time() -> Map<String, Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // time_t is i64 on the 64-bit targets settle builds for (glibc and musl alike; musl's
    // alias is deprecated, so it is not named).
    let epoch = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let micros = format!("{:06}", now.subsec_micros());
    // SAFETY: tzset reads TZ; localtime_r/gmtime_r fill structs we own.
    let (local, utc) = unsafe {
        tzset();
        let mut local: libc::tm = std::mem::zeroed();
        let mut utc: libc::tm = std::mem::zeroed();
        libc::localtime_r(&epoch, &mut local);
        libc::gmtime_r(&epoch, &mut utc);
        (local, utc)
    };
    let l = |format: &str| strftime(format, &local);
    // SAFETY: glibc's and musl's `tzname` are two NUL-terminated names, set by tzset.
    let tz_dst = unsafe {
        let name = tzname[1];
        if name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    };
    let epoch = epoch.to_string();
    let facts = json!({
        "year": l("%Y"),
        "month": l("%m"),
        "weekday": l("%A"),
        "weekday_number": l("%w"),
        "weeknumber": l("%W"),
        "day": l("%d"),
        "hour": l("%H"),
        "minute": l("%M"),
        "second": l("%S"),
        "epoch": epoch,
        "epoch_int": epoch,
        "date": l("%Y-%m-%d"),
        "time": l("%H:%M:%S"),
        "iso8601_micro": format!("{}.{micros}Z", strftime("%Y-%m-%dT%H:%M:%S", &utc)),
        "iso8601": strftime("%Y-%m-%dT%H:%M:%SZ", &utc),
        "iso8601_basic": format!("{}{micros}", l("%Y%m%dT%H%M%S")),
        "iso8601_basic_short": l("%Y%m%dT%H%M%S"),
        "tz": l("%Z"),
        "tz_dst": tz_dst,
        "tz_offset": l("%z"),
    });
    one("date_time", facts)
}

unsafe extern "C" {
    fn tzset();
    static tzname: [*const libc::c_char; 2];
}

fn strftime(format: &str, tm: &libc::tm) -> String {
    let Ok(format) = std::ffi::CString::new(format) else {
        return String::new();
    };
    let mut buffer = [0u8; 128];
    // SAFETY: strftime writes at most buffer.len() bytes and returns how many it wrote.
    let len = unsafe {
        libc::strftime(
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            format.as_ptr(),
            tm,
        )
    };
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

/// The distribution-file facts: the first release file of Ansible's list that is there and
/// that it can parse (for the files of the common distributions; others get none yet), and for
/// Debian the minor version of /etc/debian_version.
pub(crate) fn distribution_files() -> Map<String, Value> {
    let mut facts = Map::new();
    let file = |path: &str, variety: &str, parsed: bool| {
        let mut facts = Map::new();
        facts.insert("distribution_file_path".into(), path.into());
        facts.insert("distribution_file_variety".into(), variety.into());
        if parsed {
            facts.insert("distribution_file_parsed".into(), true.into());
        }
        facts
    };
    let stripped =
        |path: &str| content(path).map(|t| t.trim_matches(['\'', '"', '\\']).to_string());
    if stripped("/etc/oracle-release").is_some() {
        return file("/etc/oracle-release", "OracleLinux", true);
    }
    if stripped("/etc/centos-release").is_some_and(|t| t.contains("CentOS Stream")) {
        return file("/etc/centos-release", "CentOS", true);
    }
    if stripped("/etc/redhat-release").is_some() {
        return file("/etc/redhat-release", "RedHat", true);
    }
    if stripped("/etc/alpine-release").is_some() {
        return file("/etc/alpine-release", "Alpine", true);
    }
    if Path::new("/etc/arch-release").is_file() {
        return file("/etc/arch-release", "Archlinux", false);
    }
    let Some(data) = stripped("/etc/os-release") else {
        return facts;
    };
    let debian = data.contains("Debian") || data.contains("Raspbian");
    if !debian && !data.contains("Ubuntu") {
        return facts;
    }
    facts = file("/etc/os-release", "Debian", true);
    if debian {
        let version = fs::read_to_string("/etc/debian_version").unwrap_or_default();
        if let Some(minor) = version.lines().find_map(|l| minor_of(l.trim())) {
            facts.insert("distribution_minor_version".into(), minor.into());
        }
    }
    facts
}

/// The second number of the first `N.N` in a line (Python's `re.search(r'(\d+)\.(\d+)')`).
fn minor_of(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'.' || i == 0 || !bytes[i - 1].is_ascii_digit() {
            continue;
        }
        let minor: String = line[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !minor.is_empty() {
            return Some(minor);
        }
    }
    None
}

/// The platform collector's `kernel_version` (uname's version), `userspace_bits` and
/// `userspace_architecture`.
pub(crate) fn platform_extras(machine: &str) -> Map<String, Value> {
    let mut facts = Map::new();
    // SAFETY: uname fills the struct; the fields are NUL-terminated C strings.
    let version = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        CStr::from_ptr(u.version.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    facts.insert("kernel_version".into(), version.into());
    let bits = (std::mem::size_of::<usize>() * 8).to_string();
    if machine == "x86_64" {
        let arch = if bits == "64" { "x86_64" } else { "i386" };
        facts.insert("userspace_architecture".into(), arch.into());
    }
    facts.insert("userspace_bits".into(), bits.into());
    facts
}

/// The user collector's ids of the process: real and effective user and group.
pub(crate) fn user_ids() -> Map<String, Value> {
    // SAFETY: these calls cannot fail.
    let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
    let mut facts = Map::new();
    facts.insert("real_user_id".into(), uid.into());
    facts.insert("effective_user_id".into(), euid.into());
    facts.insert("real_group_id".into(), gid.into());
    // Ansible reports getgid() here too.
    facts.insert("effective_group_id".into(), gid.into());
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_keeps_the_last_value_and_proc_cmdline_all_of_them() {
        let facts =
            cmdline_of("BOOT_IMAGE=/vmlinuz root=UUID=ab ro console=tty0 console=ttyS0 quiet");
        assert_eq!(
            facts["cmdline"],
            json!({"BOOT_IMAGE": "/vmlinuz", "root": "UUID=ab", "ro": true,
                   "console": "ttyS0", "quiet": true})
        );
        assert_eq!(facts["proc_cmdline"]["console"], json!(["tty0", "ttyS0"]));
        let words = |t: &str| shlex_non_posix(t).map(|w| w.join("|"));
        assert_eq!(words("a=\"x y\" b").as_deref(), Some("a=\"x|y\"|b"));
        assert_eq!(words("\"x y\"z w").as_deref(), Some("\"x y\"|z|w"));
        assert_eq!(cmdline_of("\"open")["cmdline"], json!({}));
    }

    #[test]
    fn dns_reads_resolv_conf_as_ansible() {
        let dns = dns_of(
            "# comment\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch a.example b.example\n\
             domain example\noptions ndots:2 rotate\n",
        );
        assert_eq!(
            Value::Object(dns),
            json!({"nameservers": ["10.0.0.1", "10.0.0.2"], "search": ["a.example", "b.example"],
                   "domain": "example", "options": {"ndots": "2", "rotate": true}})
        );
    }

    #[test]
    fn lsb_release_output_and_file_give_the_same_names() {
        let out = "Distributor ID:\tDebian\nDescription:\tDebian GNU/Linux 12 (bookworm)\n\
                   Release:\t12\nCodename:\tbookworm\n";
        let lsb = lsb_of_command(out);
        assert_eq!(lsb.get("id").map(String::as_str), Some("Debian"));
        assert_eq!(lsb.get("release").map(String::as_str), Some("12"));
        let file =
            lsb_of_file("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n");
        assert_eq!(file.get("codename").map(String::as_str), Some("jammy"));
    }

    #[test]
    fn capsh_current_line_is_read_as_ansible_reads_it() {
        let (enforced, caps) = caps_of("Current: =ep\nBounding set =cap_chown\n");
        assert_eq!((enforced, caps.len()), ("False", 0));
        let (enforced, caps) = caps_of("Current: =ep cap_net_admin,cap_bpf-ep\n");
        assert_eq!(enforced, "True");
        assert_eq!(caps, ["ep cap_net_admin", "cap_bpf-ep"]);
    }

    #[test]
    fn ssh_keys_are_read_from_the_first_folder_with_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("ssh_host_ed25519_key.pub");
        fs::write(&path, "ssh-ed25519 AAAAkey root@h\n").unwrap_or_else(|e| panic!("{e}"));
        let shown = dir.path().display().to_string();
        let facts = ssh_pub_keys_in(&[&shown, &shown]);
        assert_eq!(facts["ssh_host_key_ed25519_public"], json!("AAAAkey"));
        assert_eq!(
            facts["ssh_host_key_ed25519_public_keytype"],
            json!("ssh-ed25519")
        );
        assert_eq!(facts.len(), 2);
    }

    #[test]
    fn minor_version_is_the_second_number() {
        assert_eq!(minor_of("12.5").as_deref(), Some("5"));
        assert_eq!(minor_of("bookworm/sid"), None);
        assert_eq!(minor_of("v10.13.1").as_deref(), Some("13"));
    }
}
