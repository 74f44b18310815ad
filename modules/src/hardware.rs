//! The facts of Ansible's Linux `hardware` collector (memory, processors, DMI, block devices,
//! mounts, uptime, LVM) and of its `virtual` collector, read from /proc and /sys. Parsing works
//! on the files' text so that the unit tests can feed fixture text.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::{Map, Value, json};

/// The text of a file with its surrounding whitespace removed, as Ansible's `get_file_content`;
/// `None` when it cannot be read or is empty.
fn content(path: impl AsRef<Path>) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn content_value(path: impl AsRef<Path>) -> Value {
    content(path).map_or(Value::Null, Value::String)
}

/// Every hardware fact (names without the `ansible_` prefix).
pub(crate) fn hardware_facts(architecture: &str) -> Map<String, Value> {
    let mut facts = Map::new();
    if let Ok(text) = fs::read_to_string("/proc/cpuinfo") {
        facts.extend(cpu_facts(&text, architecture, nproc()));
    }
    if let Ok(text) = fs::read_to_string("/proc/meminfo") {
        facts.extend(memory_facts(&text));
    }
    facts.extend(dmi_facts());
    let links = device_links();
    facts.extend(device_facts(&links));
    if let Some(uptime) = content("/proc/uptime").as_deref().and_then(uptime_seconds) {
        facts.insert("uptime_seconds".into(), uptime.into());
    }
    facts.insert("lvm".into(), "N/A".into());
    let mtab = content("/etc/mtab")
        .or_else(|| content("/proc/mounts"))
        .unwrap_or_default();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let binds = if crate::bin_path::find("findmnt").is_some() {
        bind_mounts(&mountinfo)
    } else {
        BTreeSet::new()
    };
    let uuids = links
        .get("uuids")
        .into_iter()
        .flatten()
        .filter_map(|(device, uuids)| Some((device.clone(), uuids.iter().next()?.clone())))
        .collect();
    facts.insert("mounts".into(), Value::Array(mounts(&mtab, &binds, &uuids)));
    facts
}

/// The processors this process may run on (`os.sched_getaffinity`).
fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Ansible's `get_cpu_facts` for the common (non-s390x, non-Xen-paravirt) case.
fn cpu_facts(cpuinfo: &str, architecture: &str, nproc: usize) -> Map<String, Value> {
    let mut processor = Vec::new();
    let mut flags = None;
    let (mut i, mut vendor_ids, mut model_names, mut processors) = (0usize, 0, 0, 0);
    let mut sockets: Vec<(String, u64)> = Vec::new();
    let mut cores: Vec<(String, u64)> = Vec::new();
    let (mut physid, mut coreid) = (String::from("0"), String::from("0"));
    let set = |list: &mut Vec<(String, u64)>, key: &str, value: u64| match list
        .iter_mut()
        .find(|(k, _)| k == key)
    {
        Some(entry) => entry.1 = value,
        None => list.push((key.to_string(), value)),
    };
    for line in cpuinfo.lines() {
        let (key, val) = match line.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line.trim(), ""),
        };
        match key {
            "flags" => flags = Some(val.split_whitespace().collect::<Vec<_>>()),
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(val.to_string());
                match key {
                    "vendor_id" => vendor_ids += 1,
                    "model name" => model_names += 1,
                    "processor" => processors += 1,
                    _ => {}
                }
                i += 1;
            }
            "physical id" => {
                physid = val.to_string();
                if !sockets.iter().any(|(k, _)| *k == physid) {
                    sockets.push((physid.clone(), 1));
                }
            }
            "core id" => {
                coreid = val.to_string();
                if !sockets.iter().any(|(k, _)| *k == coreid) {
                    set(&mut cores, &coreid, 1);
                }
            }
            "cpu cores" => set(&mut sockets, &physid, val.parse().unwrap_or(0)),
            "siblings" => set(&mut cores, &coreid, val.parse().unwrap_or(0)),
            _ => {}
        }
    }
    if vendor_ids > 0 && vendor_ids == model_names {
        i = vendor_ids;
    }
    if ["armv", "aarch", "ppc"]
        .iter()
        .any(|p| architecture.starts_with(p))
    {
        i = processors;
    }
    let count = if sockets.is_empty() { i } else { sockets.len() };
    let per_socket = sockets.first().map_or(0, |(_, n)| *n);
    let cores_per_socket = if per_socket > 0 { per_socket } else { 1 };
    let siblings = cores.first().map_or(1, |(_, n)| *n);
    let threads = (siblings as f64 / cores_per_socket as f64).round() as u64;
    let mut facts = Map::new();
    facts.insert("processor".into(), json!(processor));
    if let Some(flags) = flags {
        facts.insert("flags".into(), json!(flags));
    }
    facts.insert("processor_count".into(), count.into());
    facts.insert("processor_cores".into(), cores_per_socket.into());
    facts.insert("processor_threads_per_core".into(), threads.into());
    facts.insert(
        "processor_vcpus".into(),
        (threads * count as u64 * cores_per_socket).into(),
    );
    facts.insert("processor_nproc".into(), nproc.into());
    facts
}

/// `memtotal_mb`, `memfree_mb`, `swaptotal_mb`, `swapfree_mb` and the `memory_mb` summary.
fn memory_facts(meminfo: &str) -> Map<String, Value> {
    let mut stats: BTreeMap<&str, u64> = BTreeMap::new();
    let mut facts = Map::new();
    for line in meminfo.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(kb) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        if matches!(key, "MemTotal" | "SwapTotal" | "MemFree" | "SwapFree") {
            facts.insert(format!("{}_mb", key.to_lowercase()), (kb / 1024).into());
        }
        if matches!(
            key,
            "MemTotal" | "SwapTotal" | "MemFree" | "SwapFree" | "Buffers" | "Cached" | "SwapCached"
        ) {
            stats.insert(key, kb / 1024);
        }
    }
    let get = |k: &str| stats.get(k).copied();
    let sub = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
    let nocache_free = (|| Some(get("Cached")? + get("MemFree")? + get("Buffers")?))();
    facts.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": get("MemTotal"), "used": sub(get("MemTotal"), get("MemFree")),
                     "free": get("MemFree")},
            "nocache": {"free": nocache_free, "used": sub(get("MemTotal"), nocache_free)},
            "swap": {"total": get("SwapTotal"), "free": get("SwapFree"),
                     "used": sub(get("SwapTotal"), get("SwapFree")), "cached": get("SwapCached")},
        }),
    );
    facts
}

/// The whole seconds of /proc/uptime's first field.
fn uptime_seconds(text: &str) -> Option<u64> {
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(seconds as u64)
}

/// The DMI facts of /sys/devices/virtual/dmi/id; `NA` for what the host does not tell.
fn dmi_facts() -> Map<String, Value> {
    const FILES: &[(&str, &str)] = &[
        ("bios_date", "bios_date"),
        ("bios_vendor", "bios_vendor"),
        ("bios_version", "bios_version"),
        ("board_asset_tag", "board_asset_tag"),
        ("board_name", "board_name"),
        ("board_serial", "board_serial"),
        ("board_vendor", "board_vendor"),
        ("board_version", "board_version"),
        ("chassis_asset_tag", "chassis_asset_tag"),
        ("chassis_serial", "chassis_serial"),
        ("chassis_vendor", "chassis_vendor"),
        ("chassis_version", "chassis_version"),
        ("form_factor", "chassis_type"),
        ("product_name", "product_name"),
        ("product_serial", "product_serial"),
        ("product_uuid", "product_uuid"),
        ("product_version", "product_version"),
        ("system_vendor", "sys_vendor"),
    ];
    let dir = Path::new("/sys/devices/virtual/dmi/id");
    FILES
        .iter()
        .map(|(fact, file)| {
            let value = content(dir.join(file)).unwrap_or_else(|| "NA".into());
            let value = if *fact == "form_factor" {
                form_factor(&value)
            } else {
                value
            };
            (fact.to_string(), Value::String(value))
        })
        .collect()
}

/// The SMBIOS chassis type number as the name Ansible gives it.
fn form_factor(number: &str) -> String {
    const NAMES: &[&str] = &[
        "Unknown",
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All In One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "Sub Chassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system",
        "CompactPCI",
        "AdvancedTCA",
        "Blade",
        "Blade Enclosure",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    match number.parse::<usize>() {
        Ok(n) => NAMES.get(n).map_or("unknown", |s| s).to_string(),
        Err(_) => number.to_string(),
    }
}

/// A byte count as Ansible's `bytes_to_human` writes it (`"8.00 GB"`, `"0.00 Bytes"`).
fn bytes_to_human(size: f64) -> String {
    const UNITS: &[(&str, u32)] = &[
        ("YB", 80),
        ("ZB", 70),
        ("EB", 60),
        ("PB", 50),
        ("TB", 40),
        ("GB", 30),
        ("MB", 20),
        ("KB", 10),
    ];
    for (suffix, shift) in UNITS {
        let limit = (1u128 << shift) as f64;
        if size >= limit {
            return format!("{:.2} {suffix}", size / limit);
        }
    }
    format!("{size:.2} Bytes")
}

/// `/dev/disk/by-*` links, per device: `{ids, uuids, labels, masters}`.
fn device_links() -> BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>> {
    let mut links = BTreeMap::new();
    for (kind, dir) in [
        ("ids", "/dev/disk/by-id"),
        ("uuids", "/dev/disk/by-uuid"),
        ("labels", "/dev/disk/by-label"),
    ] {
        let mut by_target: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(target) = fs::read_link(entry.path())
                && let Some(name) = target.file_name()
            {
                by_target
                    .entry(name.to_string_lossy().into_owned())
                    .or_default()
                    .insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        links.insert(kind, by_target);
    }
    let mut masters: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let name = block.file_name().to_string_lossy().into_owned();
        for holder in fs::read_dir(block.path().join("holders"))
            .into_iter()
            .flatten()
            .flatten()
        {
            masters
                .entry(name.clone())
                .or_default()
                .insert(holder.file_name().to_string_lossy().into_owned());
        }
    }
    links.insert("masters", masters);
    links
}

fn links_of(
    links: &BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>,
    name: &str,
) -> Value {
    links
        .iter()
        .map(|(kind, by)| {
            let list: Vec<&String> = by.get(name).map(|s| s.iter().collect()).unwrap_or_default();
            (kind.to_string(), json!(list))
        })
        .collect::<Map<_, _>>()
        .into()
}

fn holders(sysdir: &Path) -> Value {
    let mut names: Vec<String> = fs::read_dir(sysdir.join("holders"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    json!(names)
}

/// The size facts of a block device or partition folder: sectors, sectorsize, size.
fn sizes(sysdir: &Path) -> (u64, String, String) {
    let sectorsize = content(sysdir.join("queue/logical_block_size"))
        .or_else(|| content(sysdir.join("queue/hw_sector_size")))
        .unwrap_or_else(|| "512".into());
    let unit: u64 = sectorsize.parse().unwrap_or(512).max(1);
    let raw: u64 = content(sysdir.join("size"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let sectors = raw * 512 / unit;
    let size = bytes_to_human(sectors as f64 * unit as f64);
    (sectors, sectorsize, size)
}

/// `devices` and `device_links`, from /sys/block and /dev/disk.
fn device_facts(
    links: &BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>,
) -> Map<String, Value> {
    let mut devices = Map::new();
    for block in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let name = block.file_name().to_string_lossy().into_owned();
        // As Ansible reads it: a /sys/block entry that is a link (every modern kernel) is
        // "virtual"; only an old plain folder with a `device` entry is not.
        let virtual_ = fs::read_link(block.path()).is_ok()
            || !fs::read_dir(block.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("device"));
        let sysdir = block.path();
        let mut d = Map::new();
        d.insert("virtual".into(), u8::from(virtual_).into());
        d.insert("links".into(), links_of(links, &name));
        for key in ["vendor", "model", "sas_address", "sas_device_handle"] {
            d.insert(key.into(), content_value(sysdir.join("device").join(key)));
        }
        if let Some(serial) = content(sysdir.join("device/serial")) {
            d.insert("serial".into(), serial.into());
        }
        d.insert("removable".into(), content_value(sysdir.join("removable")));
        let discard = if content(sysdir.join("queue/discard_max_hw_bytes")).as_deref() == Some("0")
        {
            "0".into()
        } else {
            content_value(sysdir.join("queue/discard_granularity"))
        };
        d.insert("support_discard".into(), discard);
        d.insert("partitions".into(), partitions(&sysdir, &name, links));
        d.insert(
            "rotational".into(),
            content_value(sysdir.join("queue/rotational")),
        );
        let scheduler = content(sysdir.join("queue/scheduler")).unwrap_or_default();
        let mode = scheduler
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map_or("", |(m, _)| m);
        d.insert("scheduler_mode".into(), mode.into());
        let (sectors, sectorsize, size) = sizes(&sysdir);
        d.insert("sectorsize".into(), sectorsize.into());
        d.insert("sectors".into(), sectors.into());
        d.insert("size".into(), size.into());
        d.insert("host".into(), "".into());
        d.insert("holders".into(), holders(&sysdir));
        devices.insert(name, Value::Object(d));
    }
    let mut facts = Map::new();
    facts.insert("devices".into(), Value::Object(devices));
    let device_links: Map<String, Value> = links
        .iter()
        .map(|(kind, by)| {
            let by: Map<String, Value> = by.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            (kind.to_string(), Value::Object(by))
        })
        .collect();
    facts.insert("device_links".into(), Value::Object(device_links));
    facts
}

fn partitions(
    sysdir: &Path,
    disk: &str,
    links: &BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>,
) -> Value {
    let mut parts = Map::new();
    for entry in fs::read_dir(sysdir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(disk) else {
            continue;
        };
        let digits = rest.strip_prefix('p').unwrap_or(rest);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let dir = entry.path();
        let (sectors, sectorsize, size) = sizes(&dir);
        let uuid = links
            .get("uuids")
            .and_then(|by| by.get(&name))
            .and_then(|s| s.iter().next())
            .map_or(Value::Null, |u| u.clone().into());
        parts.insert(
            name.clone(),
            json!({
                "links": links_of(links, &name),
                "start": content(dir.join("start")).unwrap_or_else(|| "0".into()),
                "sectorsize": sectorsize,
                "sectors": sectors,
                "size": size,
                "uuid": uuid,
                "holders": holders(&dir),
            }),
        );
    }
    Value::Object(parts)
}

/// Undo the octal escapes of /proc/mounts (`\040` for a space).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let text = &field[i + 1..i + 4];
            if let Ok(n) = u8::from_str_radix(text, 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of an mtab text with a device path (or `host:/path`), as Ansible lists them:
/// one per mount point (the last line for it wins), `,bind` added to a bind mount's options,
/// each with its statvfs sizes and its device's UUID (`N/A` when it has none).
fn mounts(mtab: &str, binds: &BTreeSet<String>, uuids: &BTreeMap<String, String>) -> Vec<Value> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    for mut info in mount_entries(mtab) {
        let mount = info
            .get("mount")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let device = info
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if binds.contains(&mount)
            && let Some(Value::String(options)) = info.get_mut("options")
            && !options.contains("bind")
        {
            options.push_str(",bind");
        }
        info.extend(mount_size(&mount));
        let name = device.rsplit('/').next().unwrap_or_default();
        let uuid = uuids.get(name).map_or("N/A", String::as_str);
        info.insert("uuid".into(), uuid.into());
        match out.iter_mut().find(|m| m.get("mount") == info.get("mount")) {
            Some(earlier) => *earlier = info,
            None => out.push(info),
        }
    }
    out.into_iter().map(Value::Object).collect()
}

/// The mount points findmnt shows with a `[/folder]` source: those whose root in
/// /proc/self/mountinfo is not `/` (bind mounts, btrfs subvolumes).
fn bind_mounts(mountinfo: &str) -> BTreeSet<String> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(3);
            let root = fields.next()?;
            let mount = fields.next()?;
            (root != "/").then(|| unescape_octal(mount))
        })
        .collect()
}

fn mount_entries(mtab: &str) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for line in mtab.lines() {
        let fields: Vec<String> = line.split_whitespace().map(unescape_octal).collect();
        if fields.len() < 4 {
            continue;
        }
        let (device, mount, fstype, options) = (&fields[0], &fields[1], &fields[2], &fields[3]);
        if (!device.starts_with(['/', '\\']) && !device.contains(":/")) || fstype == "none" {
            continue;
        }
        let number = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
        let mut info = Map::new();
        info.insert("mount".into(), mount.clone().into());
        info.insert("device".into(), device.clone().into());
        info.insert("fstype".into(), fstype.clone().into());
        info.insert("options".into(), options.clone().into());
        info.insert("dump".into(), number(4).into());
        info.insert("passno".into(), number(5).into());
        out.push(info);
    }
    out
}

/// Ansible's `get_mount_size`: the statvfs numbers of a mount point (none when it fails).
pub(crate) fn mount_size(mount: &str) -> Map<String, Value> {
    let mut facts = Map::new();
    let Ok(path) = std::ffi::CString::new(mount) else {
        return facts;
    };
    // SAFETY: statvfs fills the zeroed struct; the path is a NUL-terminated C string.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return facts;
        }
        st
    };
    let (frsize, blocks, bavail) = (st.f_frsize as u64, st.f_blocks as u64, st.f_bavail as u64);
    let (files, favail) = (st.f_files as u64, st.f_favail as u64);
    facts.insert("size_total".into(), (frsize * blocks).into());
    facts.insert("size_available".into(), (frsize * bavail).into());
    facts.insert("block_size".into(), (st.f_bsize as u64).into());
    facts.insert("block_total".into(), blocks.into());
    facts.insert("block_available".into(), bavail.into());
    facts.insert("block_used".into(), blocks.saturating_sub(bavail).into());
    facts.insert("inode_total".into(), files.into());
    facts.insert("inode_available".into(), favail.into());
    facts.insert("inode_used".into(), files.saturating_sub(favail).into());
    facts
}

/// `loadavg`: the three averages with the kernel's own precision, as Python's `os.getloadavg`
/// gives them on glibc (sysinfo's fixed-point loads; /proc/loadavg rounds to two decimals).
pub(crate) fn loadavg() -> Option<Value> {
    // SAFETY: sysinfo fills the zeroed struct we own.
    let info = unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        (libc::sysinfo(&mut info) == 0).then_some(info)
    };
    let Some(info) = info else {
        return loadavg_of(&fs::read_to_string("/proc/loadavg").ok()?);
    };
    let load = |i: usize| info.loads[i] as f64 / 65536.0;
    Some(json!({"1m": load(0), "5m": load(1), "15m": load(2)}))
}

fn loadavg_of(text: &str) -> Option<Value> {
    let mut f = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some(json!({"1m": f.next()??, "5m": f.next()??, "15m": f.next()??}))
}

/// Ansible's Linux `virtual` collector: virtualization type and role (`NA` when none is
/// found) and the guest/host technologies.
pub(crate) fn virtual_facts() -> Map<String, Value> {
    let cgroup = fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
    let environ = fs::read_to_string("/proc/1/environ").unwrap_or_default();
    let probes = VirtProbes {
        cgroup: &cgroup,
        environ: &environ,
        systemd_container: content("/run/systemd/container"),
        dockerenv: Path::new("/.dockerenv").exists() || Path::new("/.dockerinit").exists(),
        dev_kvm: Path::new("/dev/kvm").exists(),
    };
    virtual_of(&probes)
}

struct VirtProbes<'a> {
    cgroup: &'a str,
    environ: &'a str,
    systemd_container: Option<String>,
    dockerenv: bool,
    dev_kvm: bool,
}

fn virtual_of(p: &VirtProbes) -> Map<String, Value> {
    let mut found: Option<(String, &str)> = None;
    let mut guest: BTreeSet<String> = BTreeSet::new();
    let mut host: BTreeSet<String> = BTreeSet::new();
    let mut saw = |tech: &str, role: &'static str, set: &mut BTreeSet<String>| {
        set.insert(tech.to_string());
        if found.is_none() {
            found = Some((tech.to_string(), role));
        }
    };
    for line in p.cgroup.lines() {
        if line.contains("/docker/") || docker_scope(line) {
            saw("docker", "guest", &mut guest);
        }
        if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
            saw("lxc", "guest", &mut guest);
        }
        if line.contains("/system.slice/containerd.service") {
            saw("containerd", "guest", &mut guest);
        }
    }
    for var in p.environ.split('\0') {
        if var.contains("container=lxc") {
            saw("lxc", "guest", &mut guest);
        }
        if var.contains("container=podman") {
            saw("podman", "guest", &mut guest);
        }
        if var.starts_with("container=") && var.len() > "container=".len() {
            saw("container", "guest", &mut guest);
        }
    }
    if let Some(container) = &p.systemd_container {
        saw(container, "guest", &mut guest);
    }
    if p.dockerenv {
        saw("docker", "guest", &mut guest);
    }
    let containers = ["docker", "lxc", "podman", "openvz", "containerd"];
    if containers.iter().any(|c| guest.contains(*c)) || p.systemd_container.is_some() {
        guest.insert("container".into());
    }
    if p.dev_kvm {
        saw("kvm", "host", &mut host);
    }
    let (kind, role) = found.unwrap_or_else(|| ("NA".into(), "NA"));
    let mut facts = Map::new();
    facts.insert("virtualization_type".into(), kind.into());
    facts.insert("virtualization_role".into(), role.into());
    facts.insert("virtualization_tech_guest".into(), json!(guest));
    facts.insert("virtualization_tech_host".into(), json!(host));
    facts
}

/// A cgroup line naming a `/docker-<hex>.scope` unit.
fn docker_scope(line: &str) -> bool {
    line.split("/docker-").skip(1).any(|rest| {
        rest.split_once(".scope")
            .is_some_and(|(id, _)| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\
physical id\t: 0\nsiblings\t: 2\ncore id\t: 0\ncpu cores\t: 2\nflags\t\t: fpu vme\n\n\
processor\t: 1\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\
physical id\t: 0\nsiblings\t: 2\ncore id\t: 1\ncpu cores\t: 2\nflags\t\t: fpu vme\n";

    #[test]
    fn cpu_facts_count_sockets_cores_and_threads_as_ansible() {
        let facts = cpu_facts(CPUINFO, "x86_64", 2);
        assert_eq!(
            facts["processor"],
            json!([
                "0",
                "AuthenticAMD",
                "AMD EPYC",
                "1",
                "AuthenticAMD",
                "AMD EPYC"
            ])
        );
        assert_eq!(facts["processor_count"], json!(1));
        assert_eq!(facts["processor_cores"], json!(2));
        assert_eq!(facts["processor_threads_per_core"], json!(1));
        assert_eq!(facts["processor_vcpus"], json!(2));
        assert_eq!(facts["processor_nproc"], json!(2));
        assert_eq!(facts["flags"], json!(["fpu", "vme"]));
    }

    #[test]
    fn memory_facts_use_memfree_and_summarise_in_memory_mb() {
        let text = "MemTotal:       24683520 kB\nMemFree:          707584 kB\n\
MemAvailable:   22000000 kB\nBuffers:            1024 kB\nCached:         22177792 kB\n\
SwapCached:            0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n";
        let facts = memory_facts(text);
        assert_eq!(facts["memtotal_mb"], json!(24105));
        assert_eq!(facts["memfree_mb"], json!(691));
        assert_eq!(facts["swaptotal_mb"], json!(0));
        assert_eq!(
            facts["memory_mb"]["real"],
            json!({"total": 24105, "used": 23414, "free": 691})
        );
        assert_eq!(facts["memory_mb"]["nocache"]["free"], json!(22350));
        assert_eq!(facts["memory_mb"]["swap"]["cached"], json!(0));
    }

    #[test]
    fn mounts_keep_device_backed_entries_and_unescape() {
        let mtab = "/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n\
/dev/sdb1 /mnt/my\\040disk xfs ro 0 2\nhost:/export /nfs nfs rw 0 0\n";
        let entries = mount_entries(mtab);
        let mounts: Vec<&str> = entries
            .iter()
            .map(|m| m["mount"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(mounts, ["/", "/mnt/my disk", "/nfs"]);
        assert_eq!(entries[1]["passno"], json!(2));
        let binds = bind_mounts(
            "22 1 0:21 / / rw - ext4 /dev/vda rw\n\
             30 22 254:0 /usr/lib/os-release /run/os\\040release ro - ext4 /dev/vda rw\n",
        );
        assert_eq!(binds.into_iter().collect::<Vec<_>>(), ["/run/os release"]);
    }

    #[test]
    fn sizes_read_as_ansible_writes_them() {
        assert_eq!(bytes_to_human(0.0), "0.00 Bytes");
        assert_eq!(bytes_to_human(8.0 * 1024.0 * 1024.0 * 1024.0), "8.00 GB");
        assert_eq!(uptime_seconds("25451.93 50000.1\n"), Some(25451));
        assert_eq!(
            loadavg_of("1.05 1.32 2.81 1/200 42\n"),
            Some(json!({"1m": 1.05, "5m": 1.32, "15m": 2.81}))
        );
        assert_eq!(form_factor("3"), "Desktop");
    }

    #[test]
    fn virtual_facts_name_docker_and_kvm_or_na() {
        let docker = VirtProbes {
            cgroup: "0::/\n",
            environ: "",
            systemd_container: None,
            dockerenv: true,
            dev_kvm: true,
        };
        let facts = virtual_of(&docker);
        assert_eq!(facts["virtualization_type"], json!("docker"));
        assert_eq!(facts["virtualization_role"], json!("guest"));
        assert_eq!(
            facts["virtualization_tech_guest"],
            json!(["container", "docker"])
        );
        assert_eq!(facts["virtualization_tech_host"], json!(["kvm"]));
        let none = VirtProbes {
            cgroup: "",
            environ: "",
            systemd_container: None,
            dockerenv: false,
            dev_kvm: false,
        };
        assert_eq!(virtual_of(&none)["virtualization_role"], json!("NA"));
        assert!(docker_scope("0::/system.slice/docker-abc123.scope"));
    }
}
