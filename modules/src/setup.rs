//! `setup`: the facts Ansible users read most, gathered from this host. Names are without the
//! `ansible_` prefix (the engine adds it for the top-level `ansible_*` variables).

use std::collections::{BTreeMap, HashSet};
use std::ffi::CStr;
use std::fs;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::resource::parse_args;
use crate::{
    ModuleError, ModuleSpec, Outcome, Request, find, fsutil, hardware, local_facts, network_facts,
    system_facts,
};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "setup",
    args: &["gather_subset", "filter", "fact_path", "gather_timeout"],
    unsupported: &[],
    free_form: false,
};

/// The subsets Ansible always gathers, even for `gather_subset: '!all'` (setup.py's
/// `minimal_gather_subset`).
const MINIMAL_SUBSET: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];

/// Every name Ansible takes in `gather_subset` (its collectors, their fact ids and the
/// `hardware`/`network`/`virtual`/`ohai`/`facter` aliases), with the collector of settle's
/// that answers it (`""`: one settle does not gather).
const VALID_SUBSETS: &[(&str, &str)] = &[
    ("all_ipv4_addresses", "network"),
    ("all_ipv6_addresses", "network"),
    ("apparmor", "apparmor"),
    ("architecture", "platform"),
    ("caps", "caps"),
    ("chroot", "chroot"),
    ("cmdline", "cmdline"),
    ("date_time", "date_time"),
    ("default_ipv4", "network"),
    ("default_ipv6", "network"),
    ("devices", "hardware"),
    ("distribution", "distribution"),
    ("distribution_major_version", "distribution"),
    ("distribution_release", "distribution"),
    ("distribution_version", "distribution"),
    ("dns", "dns"),
    ("effective_group_ids", "user"),
    ("effective_user_id", "user"),
    ("env", "env"),
    ("facter", ""),
    ("fibre_channel_wwn", "fibre_channel_wwn"),
    ("fips", "fips"),
    ("hardware", "hardware"),
    ("interfaces", "network"),
    ("is_chroot", "chroot"),
    ("iscsi", "iscsi"),
    ("kernel", "platform"),
    ("kernel_version", "platform"),
    ("loadavg", "loadavg"),
    ("local", "local"),
    ("lsb", "lsb"),
    ("machine", "platform"),
    ("machine_id", "platform"),
    ("mounts", "hardware"),
    ("network", "network"),
    ("nvme", "nvme"),
    ("ohai", ""),
    ("os_family", "distribution"),
    ("pkg_mgr", "pkg_mgr"),
    ("platform", "platform"),
    ("processor", "hardware"),
    ("processor_cores", "hardware"),
    ("processor_count", "hardware"),
    ("python", "python"),
    ("python_version", "platform"),
    ("real_user_id", "user"),
    ("selinux", "selinux"),
    ("service_mgr", "service_mgr"),
    ("ssh_host_key_dsa_public", "ssh_pub_keys"),
    ("ssh_host_key_ecdsa_public", "ssh_pub_keys"),
    ("ssh_host_key_ed25519_public", "ssh_pub_keys"),
    ("ssh_host_key_rsa_public", "ssh_pub_keys"),
    ("ssh_host_pub_keys", "ssh_pub_keys"),
    ("ssh_pub_keys", "ssh_pub_keys"),
    ("system", "platform"),
    ("system_capabilities", "caps"),
    ("system_capabilities_enforced", "caps"),
    ("systemd", "systemd"),
    ("user", "user"),
    ("user_dir", "user"),
    ("user_gecos", "user"),
    ("user_gid", "user"),
    ("user_id", "user"),
    ("user_shell", "user"),
    ("user_uid", "user"),
    ("virtual", "virtual"),
    ("virtualization_role", "virtual"),
    ("virtualization_tech_guest", "virtual"),
    ("virtualization_tech_host", "virtual"),
    ("virtualization_type", "virtual"),
];

/// Ansible's default `fact_path`.
const DEFAULT_FACT_PATH: &str = "/etc/ansible/facts.d";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    gather_subset: Option<Value>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    fact_path: Option<String>,
    /// Accepted: settle's collectors read files and run at most one short Python each.
    #[serde(default)]
    #[allow(dead_code)]
    gather_timeout: Option<Value>,
    /// The host's `ansible_python_interpreter`, which the engine passes along; `None`: the
    /// host's own Python, found as Ansible's discovery finds one.
    #[serde(default, rename = "_settle_python")]
    python: Option<String>,
}

/// Ansible's `type='list', elements='str'`: a list, or a string of comma-separated words.
fn string_list(value: Option<Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
        Some(other) => vec![other.to_string()],
    }
}

/// The collectors a `gather_subset` list asks for, as Ansible's `get_collector_names` works
/// them out: `min` always, `all` every one, `!name` removes one unless it is also named.
fn collectors(gather_subset: &[String]) -> Result<HashSet<&'static str>, String> {
    let all: HashSet<&'static str> = VALID_SUBSETS.iter().map(|(name, _)| *name).collect();
    let minimal: HashSet<&'static str> = MINIMAL_SUBSET.iter().copied().collect();
    let mut added: HashSet<&'static str> = HashSet::new();
    let mut excluded: HashSet<&'static str> = HashSet::new();
    let mut explicit: HashSet<&'static str> = HashSet::new();
    let subsets = std::iter::once("min").chain(gather_subset.iter().map(String::as_str));
    for subset in subsets {
        match subset {
            "min" => added.extend(&minimal),
            "all" => added.extend(&all),
            "!min" => excluded.extend(&minimal),
            "!all" => excluded.extend(all.difference(&minimal)),
            _ => {
                let (name, exclude) = match subset.strip_prefix('!') {
                    Some(name) => (name, true),
                    None => (subset, false),
                };
                let Some(&(name, _)) = VALID_SUBSETS.iter().find(|(n, _)| *n == name) else {
                    if exclude {
                        continue;
                    }
                    let mut names: Vec<&str> = all.iter().copied().collect();
                    names.sort_unstable();
                    return Err(format!(
                        "Bad subset '{subset}' given to Ansible. gather_subset options allowed: \
                         all, {}",
                        names.join(", ")
                    ));
                };
                if exclude {
                    excluded.insert(name);
                } else {
                    explicit.insert(name);
                    added.insert(name);
                }
            }
        }
    }
    let mut wanted: HashSet<&'static str> = added
        .into_iter()
        .filter(|s| !excluded.contains(s) || explicit.contains(s))
        .filter_map(|s| VALID_SUBSETS.iter().find(|(n, _)| *n == s))
        .map(|(_, collector)| *collector)
        .filter(|c| !c.is_empty())
        .collect();
    // The facts a collector needs are gathered with it, even when excluded (Ansible's
    // `required_facts`).
    for (collector, needs) in REQUIRED {
        if wanted.contains(collector) {
            wanted.extend(needs.iter().copied());
        }
    }
    Ok(wanted)
}

/// A collector that reads files only: its facts, without the `ansible_` prefix.
type Collector = fn() -> Map<String, Value>;

/// The collectors whose facts another one needs, as Ansible's Linux collectors declare them.
const REQUIRED: &[(&str, &[&str])] = &[
    ("network", &["distribution", "platform"]),
    ("hardware", &["platform"]),
    ("pkg_mgr", &["distribution"]),
    ("service_mgr", &["platform", "distribution"]),
];

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("setup", &request.args)?;
    let mut gather_subset = string_list(args.gather_subset);
    if gather_subset.is_empty() {
        gather_subset.push("all".into());
    }
    let wanted = collectors(&gather_subset).map_err(ModuleError::Failed)?;
    let mut warnings = Vec::new();
    // The programs Ansible runs start first and are read last: their start-up overlaps the
    // reading of files.
    let interpreter = args.python.clone().unwrap_or_default();
    let known_python = known_python(&interpreter);
    let python = (known_python.is_none()
        && (wanted.contains("python") || wanted.contains("platform")))
    .then(|| start_python_probe(args.python.as_deref()))
    .flatten();
    let capsh = wanted
        .contains("caps")
        .then(system_facts::start_caps)
        .flatten();
    let lsb_release = wanted
        .contains("lsb")
        .then(system_facts::start_lsb)
        .flatten();
    let systemctl = wanted
        .contains("systemd")
        .then(|| system_facts::start_systemd(&service_mgr()))
        .flatten();
    let mut facts = gather();
    facts.retain(|k, _| wanted.contains(collector_of(k)));
    if wanted.contains("hardware") {
        let architecture = uname().3;
        facts.extend(hardware::hardware_facts(&architecture));
    }
    if wanted.contains("virtual") {
        facts.extend(hardware::virtual_facts());
    }
    if wanted.contains("loadavg")
        && let Some(loadavg) = hardware::loadavg()
    {
        facts.insert("loadavg".into(), loadavg);
    }
    if wanted.contains("network") {
        facts.extend(network_facts::network_facts());
    }
    if wanted.contains("platform") {
        facts.extend(system_facts::platform_extras(&uname().3));
    }
    if wanted.contains("user") {
        facts.extend(system_facts::user_ids());
    }
    if wanted.contains("distribution") {
        facts.extend(system_facts::distribution_files());
    }
    let small: [(&str, Collector); 11] = [
        ("apparmor", system_facts::apparmor),
        ("chroot", system_facts::chroot),
        ("cmdline", system_facts::cmdline),
        ("date_time", system_facts::date_time),
        ("dns", system_facts::dns),
        ("fibre_channel_wwn", system_facts::fc_wwn),
        ("fips", system_facts::fips),
        ("iscsi", system_facts::iscsi),
        ("nvme", system_facts::nvme),
        ("selinux", system_facts::selinux),
        ("ssh_pub_keys", system_facts::ssh_pub_keys),
    ];
    for (collector, gather) in small {
        if wanted.contains(collector) {
            facts.extend(gather());
        }
    }
    if wanted.contains("caps") {
        facts.extend(system_facts::caps(capsh));
    }
    if wanted.contains("lsb") {
        facts.extend(system_facts::lsb(lsb_release));
    }
    facts.extend(system_facts::systemd(systemctl));
    // The environment the module runs with includes the task's (the play's `environment:`).
    if let Some(Value::Object(env)) = facts.get_mut("env") {
        for (k, v) in &request.environment {
            env.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let python = known_python.or_else(|| {
        let python = python_facts(&python?.output()?)?;
        remember_python(&interpreter, &python);
        Some(python)
    });
    if let Some(python) =
        python.filter(|_| wanted.contains("python") || wanted.contains("platform"))
    {
        if wanted.contains("platform") {
            let v = &python["version"];
            let version = format!("{}.{}.{}", v["major"], v["minor"], v["micro"]);
            facts.insert("python_version".into(), version.into());
        }
        if wanted.contains("python") {
            facts.insert("python".into(), python);
        }
    }
    if wanted.contains("local") {
        let fact_path = args.fact_path.as_deref().unwrap_or(DEFAULT_FACT_PATH);
        let fact_path = fsutil::expand_path(std::path::Path::new(fact_path));
        let local = local_facts::gather(&fact_path, &mut warnings);
        facts.insert("local".into(), Value::Object(local));
    }
    // As Ansible's setup returns them: `ansible_`-prefixed (the engine files them under
    // `ansible_facts` without the prefix, and as `ansible_*` variables), beside the two facts
    // about the gathering itself, which have no prefix.
    let mut facts: Map<String, Value> = facts
        .into_iter()
        .map(|(k, v)| (format!("ansible_{k}"), v))
        .collect();
    facts.insert("gather_subset".into(), json!(gather_subset));
    facts.insert("module_setup".into(), true.into());
    let patterns = filter_patterns(args.filter)?;
    if !patterns.is_empty() {
        facts.retain(|k, _| patterns.iter().any(|p| p.is_match(k)));
    }
    let mut values = Map::new();
    values.insert("ansible_facts".into(), Value::Object(facts));
    if !warnings.is_empty() {
        values.insert("warnings".into(), json!(warnings));
    }
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// The fact-name patterns of `filter`, as Ansible's `_filter` reads them: none (keep every
/// fact) for an empty filter or `*`; a pattern without the `ansible_` prefix also matches
/// with it (`date_time` keeps `ansible_date_time`).
fn filter_patterns(filter: Option<Value>) -> Result<Vec<regex::Regex>, ModuleError> {
    let specs = string_list(filter);
    if specs.iter().any(|s| s.is_empty() || s == "*") {
        return Ok(Vec::new());
    }
    let mut patterns = Vec::new();
    for spec in specs {
        patterns.push(find::glob_regex(&spec).map_err(ModuleError::Args)?);
        if !spec.starts_with("ansible_") && !spec.starts_with("facter") && !spec.starts_with("ohai")
        {
            patterns.push(find::glob_regex(&format!("ansible_{spec}")).map_err(ModuleError::Args)?);
        }
    }
    Ok(patterns)
}

/// The collector (subset) a fact of [`gather`] belongs to.
fn collector_of(fact: &str) -> &'static str {
    match fact {
        "os_family" => "distribution",
        "env" => "env",
        "pkg_mgr" => "pkg_mgr",
        "service_mgr" => "service_mgr",
        f if f.starts_with("distribution") => "distribution",
        f if f.starts_with("user_") => "user",
        _ => "platform",
    }
}

/// The host's Python (`ansible_python_interpreter`, else the one Ansible's discovery would
/// find) started on a short probe of what Ansible's python collector reports. `-S` (no `site`)
/// and no imports keep it to the interpreter's own start-up; `has_sslcontext` is whether the
/// `_ssl` extension that Python's `ssl` needs is there.
fn start_python_probe(interpreter: Option<&str>) -> Option<system_facts::Pending> {
    const PROBE: &str = "import sys, os\n\
v = sys.version_info\n\
i = getattr(sys, 'implementation', None)\n\
ssl = '_ssl' in sys.builtin_module_names or any(n.startswith('_ssl.') \
for d in sys.path if d and os.path.isdir(d) for n in os.listdir(d))\n\
print('\\t'.join(map(str, [v[0], v[1], v[2], v[3], v[4], int(ssl), \
i.name if i else '', sys.executable])))";
    let python = match interpreter {
        Some(p) if !p.trim().is_empty() => p.trim().to_string(),
        _ => crate::ansible_module::host_python().ok()?,
    };
    let mut words = python.split_whitespace();
    let program = words.next()?;
    let mut args: Vec<&str> = words.collect();
    args.extend(["-S", "-c", PROBE]);
    system_facts::Pending::start(std::path::Path::new(program), &args)
}

/// The python facts found by earlier calls of this process (the agent serves a whole run),
/// per interpreter: a host's Python does not change in the middle of a run.
static KNOWN_PYTHONS: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());

fn known_python(interpreter: &str) -> Option<Value> {
    let known = KNOWN_PYTHONS.lock().unwrap_or_else(|e| e.into_inner());
    known
        .iter()
        .find(|(i, _)| i == interpreter)
        .map(|(_, v)| v.clone())
}

fn remember_python(interpreter: &str, python: &Value) {
    let mut known = KNOWN_PYTHONS.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|(i, _)| i == interpreter) {
        known.push((interpreter.to_string(), python.clone()));
    }
}

/// The `python` fact from the probe's line: major, minor, micro, releaselevel, serial,
/// has_sslcontext, implementation, executable (tab-separated).
fn python_facts(out: &str) -> Option<Value> {
    let line = out.lines().next()?;
    let f: Vec<&str> = line.splitn(8, '\t').collect();
    let [major, minor, micro, level, serial, ssl, kind, executable] = f[..] else {
        return None;
    };
    let number = |s: &str| s.parse::<i64>().ok();
    let (major, minor, micro, serial) = (
        number(major)?,
        number(minor)?,
        number(micro)?,
        number(serial)?,
    );
    Some(json!({
        "version": {"major": major, "minor": minor, "micro": micro, "releaselevel": level,
                    "serial": serial},
        "version_info": [major, minor, micro, level, serial],
        "executable": executable,
        "has_sslcontext": ssl == "1",
        "type": if kind.is_empty() { Value::Null } else { kind.into() },
    }))
}

fn uname() -> (String, String, String, String) {
    // SAFETY: uname fills the struct; the fields are NUL-terminated C strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        let s = |f: &[libc::c_char]| CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        (s(&u.sysname), s(&u.nodename), s(&u.release), s(&u.machine))
    }
}

fn os_release() -> BTreeMap<String, String> {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect()
}

fn distribution(os: &BTreeMap<String, String>) -> (String, String) {
    let id = os.get("ID").map(String::as_str).unwrap_or("");
    let like = os.get("ID_LIKE").map(String::as_str).unwrap_or("");
    let name = match id {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "fedora" => "Fedora",
        "rhel" => "RedHat",
        "centos" => "CentOS",
        "rocky" => "Rocky",
        "almalinux" => "AlmaLinux",
        "alpine" => "Alpine",
        "arch" => "Archlinux",
        "opensuse-leap" | "opensuse-tumbleweed" | "sles" => "SUSE",
        _ => "",
    };
    let name = if name.is_empty() {
        let mut c = id.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_else(|| "Linux".into())
    } else {
        name.to_string()
    };
    let family_of = |word: &str| match word {
        "debian" | "ubuntu" => Some("Debian"),
        "fedora" | "rhel" | "centos" | "rocky" | "almalinux" => Some("RedHat"),
        "alpine" => Some("Alpine"),
        "arch" => Some("Archlinux"),
        "suse" | "opensuse" | "sles" | "opensuse-leap" => Some("Suse"),
        _ => None,
    };
    let family = std::iter::once(id)
        .chain(like.split_whitespace())
        .find_map(family_of)
        .unwrap_or(&name)
        .to_string();
    (name, family)
}

/// The host's fully qualified name as Python's `socket.getfqdn()` finds it (Ansible's `fqdn`):
/// the name the first address of the host name resolves back to, or the first of its aliases
/// with a dot; the host name itself when either lookup fails.
fn fqdn(nodename: &str) -> String {
    reverse_name(nodename).unwrap_or_else(|| nodename.to_string())
}

unsafe extern "C" {
    fn gethostbyaddr_r(
        addr: *const libc::c_void,
        len: libc::socklen_t,
        kind: libc::c_int,
        ret: *mut libc::hostent,
        buf: *mut libc::c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut libc::c_int,
    ) -> libc::c_int;
}

fn reverse_name(nodename: &str) -> Option<String> {
    use std::ffi::CString;
    let c = CString::new(nodename).ok()?;
    // SAFETY: getaddrinfo's list is read, copied from, and freed with freeaddrinfo;
    // gethostbyaddr_r writes into the hostent and buffer we own, and the names it points to
    // live in that buffer, which outlives their use.
    unsafe {
        let hints: libc::addrinfo = std::mem::zeroed();
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 || res.is_null() {
            return None;
        }
        let first = &*res;
        let address: Option<(Vec<u8>, libc::c_int)> = match first.ai_family {
            libc::AF_INET if !first.ai_addr.is_null() => {
                let a = &*(first.ai_addr as *const libc::sockaddr_in);
                Some((a.sin_addr.s_addr.to_ne_bytes().to_vec(), libc::AF_INET))
            }
            libc::AF_INET6 if !first.ai_addr.is_null() => {
                let a = &*(first.ai_addr as *const libc::sockaddr_in6);
                Some((a.sin6_addr.s6_addr.to_vec(), libc::AF_INET6))
            }
            _ => None,
        };
        libc::freeaddrinfo(res);
        let (bytes, family) = address?;
        let mut entry: libc::hostent = std::mem::zeroed();
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::hostent = std::ptr::null_mut();
        let mut h_errno = 0;
        let rc = gethostbyaddr_r(
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
            family,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
            &mut h_errno,
        );
        if rc != 0 || result.is_null() || entry.h_name.is_null() {
            return None;
        }
        let name = CStr::from_ptr(entry.h_name).to_string_lossy().into_owned();
        let mut names = vec![name.clone()];
        let mut alias = entry.h_aliases;
        while !alias.is_null() && !(*alias).is_null() {
            names.push(CStr::from_ptr(*alias).to_string_lossy().into_owned());
            alias = alias.add(1);
        }
        Some(names.into_iter().find(|n| n.contains('.')).unwrap_or(name))
    }
}

/// `systemd` when systemd runs the host (PID 1 is systemd or its runtime folder exists), else
/// `service`.
fn service_mgr() -> String {
    let init = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if std::path::Path::new("/run/systemd/system").is_dir() || init.trim() == "systemd" {
        "systemd".into()
    } else {
        "service".into()
    }
}

fn gather() -> Map<String, Value> {
    let (system, nodename, kernel, machine) = uname();
    let os = os_release();
    let (distribution, os_family) = distribution(&os);
    let mut version = os.get("VERSION_ID").cloned().unwrap_or_default();
    if os_family == "Debian"
        && distribution == "Debian"
        && let Ok(v) = fs::read_to_string("/etc/debian_version")
    {
        let v = v.trim();
        if v.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            version = v.to_string();
        }
    }
    let major = version.split('.').next().unwrap_or("").to_string();
    let fqdn = fqdn(&nodename);
    let hostname = nodename.split('.').next().unwrap_or(&nodename).to_string();
    let domain = fqdn
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    // SAFETY: getuid/getgid/geteuid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let user = fsutil::user_name(uid);
    let passwd_line = fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        .map(str::to_string)
        .unwrap_or_default();
    let pw: Vec<&str> = passwd_line.split(':').collect();
    let env: Map<String, Value> = std::env::vars()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let pkg_mgr = [
        ("/usr/bin/apt-get", "apt"),
        ("/usr/bin/dnf", "dnf"),
        ("/usr/bin/yum", "yum"),
        ("/sbin/apk", "apk"),
        ("/usr/bin/pacman", "pacman"),
        ("/usr/bin/zypper", "zypper"),
    ]
    .iter()
    .find(|(p, _)| std::path::Path::new(p).exists())
    .map_or("unknown", |(_, n)| n);
    let mut facts = Map::new();
    let mut put = |k: &str, v: Value| {
        facts.insert(k.to_string(), v);
    };
    put("hostname", hostname.into());
    put("nodename", nodename.clone().into());
    put("fqdn", fqdn.into());
    put("domain", domain.into());
    put("system", system.into());
    put("kernel", kernel.into());
    put("architecture", machine.clone().into());
    put("machine", machine.into());
    put("os_family", os_family.into());
    put("distribution", distribution.into());
    put("distribution_version", version.into());
    put("distribution_major_version", major.into());
    put(
        "distribution_release",
        os.get("VERSION_CODENAME")
            .cloned()
            .unwrap_or_default()
            .into(),
    );
    // Ansible reads D-Bus's copy first; the two differ on a host whose image carried one.
    if let Some(id) = ["/var/lib/dbus/machine-id", "/etc/machine-id"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok().filter(|t| !t.trim().is_empty()))
        .and_then(|t| t.trim().lines().next().map(str::to_string))
    {
        put("machine_id", id.into());
    }
    put("user_id", user.into());
    put("user_uid", uid.into());
    put("user_gid", gid.into());
    put("user_gecos", pw.get(4).copied().unwrap_or("").into());
    put("user_dir", pw.get(5).copied().unwrap_or("").into());
    put("user_shell", pw.get(6).copied().unwrap_or("").into());
    put("env", Value::Object(env));
    put("pkg_mgr", pkg_mgr.into());
    put("service_mgr", service_mgr().into());
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(filter: Value, fact: &str) -> bool {
        let patterns = filter_patterns(Some(filter)).unwrap_or_default();
        patterns.is_empty() || patterns.iter().any(|p| p.is_match(fact))
    }

    #[test]
    fn filter_matches_with_or_without_the_ansible_prefix() {
        assert!(kept(json!("date_time"), "ansible_date_time"));
        assert!(kept(json!("ansible_date_time"), "ansible_date_time"));
        assert!(!kept(json!("ansible_user_id"), "ansible_env"));
        assert!(kept(json!(""), "ansible_env"));
        assert!(kept(
            json!(["*env*", "*virt*"]),
            "ansible_virtualization_role"
        ));
    }

    #[test]
    fn python_probe_line_becomes_ansibles_python_fact() {
        let python = python_facts("3\t11\t2\tfinal\t0\t1\tcpython\t/usr/bin/python3\n");
        assert_eq!(
            python,
            Some(json!({
                "version": {"major": 3, "minor": 11, "micro": 2, "releaselevel": "final",
                            "serial": 0},
                "version_info": [3, 11, 2, "final", 0],
                "executable": "/usr/bin/python3",
                "has_sslcontext": true,
                "type": "cpython",
            }))
        );
        assert_eq!(python_facts("Python 2.7\n"), None);
    }

    #[test]
    fn hardware_and_virtual_subsets_name_their_collectors() {
        let wanted = collectors(&["!all".into(), "hardware".into()]).unwrap_or_default();
        assert!(wanted.contains("hardware") && !wanted.contains("network"));
        let wanted = collectors(&["!hardware".into()]).unwrap_or_default();
        assert!(!wanted.contains("hardware") && !wanted.contains("virtual"));
        let wanted = collectors(&["all".into()]).unwrap_or_default();
        assert!(wanted.contains("loadavg"));
        let wanted = collectors(&["!all".into(), "!min".into(), "hardware".into()]);
        let wanted = wanted.unwrap_or_default();
        assert!(wanted.contains("platform") && !wanted.contains("distribution"));
    }
}
