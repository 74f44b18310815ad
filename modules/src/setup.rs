//! `setup`: the facts Ansible users read most, gathered from this host. Names are without the
//! `ansible_` prefix (the engine adds it for the top-level `ansible_*` variables).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, fsutil};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "setup",
    args: &["gather_subset", "filter"],
    unsupported: &["fact_path", "gather_timeout"],
    free_form: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Accepted; settle always gathers its one small set.
    #[serde(default)]
    #[allow(dead_code)]
    gather_subset: Option<Value>,
    #[serde(default)]
    filter: Option<Value>,
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("setup", &request.args)?;
    let mut facts = gather();
    if let Some(filter) = args.filter {
        let patterns: Vec<String> = match filter {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s],
            _ => Vec::new(),
        };
        facts.retain(|k, _| {
            let full = format!("ansible_{k}");
            patterns
                .iter()
                .any(|p| glob_match(p, &full) || glob_match(p, k))
        });
    }
    // As Ansible's setup returns them: `ansible_`-prefixed (the engine files them under
    // `ansible_facts` without the prefix, and as `ansible_*` variables).
    let facts: Map<String, Value> = facts
        .into_iter()
        .map(|(k, v)| (format!("ansible_{k}"), v))
        .collect();
    let mut values = Map::new();
    values.insert("ansible_facts".into(), Value::Object(facts));
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head) && name[head.len()..].ends_with(tail.trim_start_matches('*'))
        }
    }
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

fn meminfo() -> BTreeMap<String, u64> {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The interface and gateway of the default IPv4 route, from /proc/net/route.
fn default_route() -> Option<(String, String)> {
    let text = fs::read_to_string("/proc/net/route").ok()?;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 2 && f[1] == "00000000" {
            let gw = u32::from_str_radix(f[2], 16).ok()?;
            return Some((
                f[0].to_string(),
                std::net::Ipv4Addr::from(gw.to_le_bytes()).to_string(),
            ));
        }
    }
    None
}

/// IPv4 addresses per interface.
fn ipv4_addresses() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET {
                let addr = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
                let mask = if ifa.ifa_netmask.is_null() {
                    String::new()
                } else {
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    std::net::Ipv4Addr::from(u32::from_be(m.sin_addr.s_addr)).to_string()
                };
                let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                out.push((name, ip.to_string(), mask));
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

fn fqdn(nodename: &str) -> String {
    use std::ffi::CString;
    let Ok(c) = CString::new(nodename) else {
        return nodename.to_string();
    };
    // SAFETY: getaddrinfo with AI_CANONNAME; the result list is freed with freeaddrinfo.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_family = libc::AF_UNSPEC;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 || res.is_null() {
            return nodename.to_string();
        }
        let name = if (*res).ai_canonname.is_null() {
            nodename.to_string()
        } else {
            CStr::from_ptr((*res).ai_canonname)
                .to_string_lossy()
                .into_owned()
        };
        libc::freeaddrinfo(res);
        name
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
    let mem = meminfo();
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
    let init = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let service_mgr =
        if std::path::Path::new("/run/systemd/system").is_dir() || init.trim() == "systemd" {
            "systemd"
        } else {
            "service"
        };
    let addresses = ipv4_addresses();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
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
    put(
        "machine_id",
        fs::read_to_string("/etc/machine-id")
            .unwrap_or_default()
            .trim()
            .into(),
    );
    put("user_id", user.into());
    put("user_uid", uid.into());
    put("user_gid", gid.into());
    put("user_gecos", pw.get(4).copied().unwrap_or("").into());
    put("user_dir", pw.get(5).copied().unwrap_or("").into());
    put("user_shell", pw.get(6).copied().unwrap_or("").into());
    put("env", Value::Object(env));
    put("pkg_mgr", pkg_mgr.into());
    put("service_mgr", service_mgr.into());
    put("processor_vcpus", cpus.into());
    put("processor_count", cpus.into());
    put(
        "memtotal_mb",
        (mem.get("MemTotal").copied().unwrap_or(0) / 1024).into(),
    );
    put(
        "memfree_mb",
        (mem.get("MemAvailable")
            .or(mem.get("MemFree"))
            .copied()
            .unwrap_or(0)
            / 1024)
            .into(),
    );
    put(
        "all_ipv4_addresses",
        addresses
            .iter()
            .filter(|(n, _, _)| n != "lo")
            .map(|(_, a, _)| a.clone())
            .collect::<Vec<_>>()
            .into(),
    );
    put("interfaces", {
        let mut names: Vec<String> = addresses.iter().map(|(n, _, _)| n.clone()).collect();
        names.dedup();
        names.into()
    });
    if let Some((interface, gateway)) = default_route()
        && let Some((_, address, netmask)) = addresses.iter().find(|(n, _, _)| *n == interface)
    {
        put(
            "default_ipv4",
            json!({"interface": interface, "address": address, "gateway": gateway, "netmask": netmask}),
        );
    }
    if let Ok(container) = fs::read_to_string("/run/systemd/container") {
        put("virtualization_type", container.trim().into());
        put("virtualization_role", "guest".into());
    }
    put("date_time", json!({"epoch": now.to_string()}));
    facts
}
