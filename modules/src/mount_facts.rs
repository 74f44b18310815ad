//! `mount_facts`: the host's mounts in `ansible_facts.mount_points` (by mount point, the first
//! source to name it wins) and `ansible_facts.aggregate_mounts` (every entry, when
//! `include_aggregate_mounts` asks), read as Ansible's module reads them: the dynamic sources
//! (`/etc/mtab`, `/proc/mounts`, `/etc/mnttab`, one file however many names lead to it), then the
//! static ones (`/etc/fstab`, `/etc/vfstab`, `/etc/filesystems`), or `mount`'s output when no
//! dynamic source answers. Each entry has the line's fields, statvfs sizes, `uuid` and
//! `ansible_context` (source and line). Changes nothing.
//!
//! Only Linux's formats are read: fstab-like files, Solaris' vfstab and mnttab columns, and the
//! Linux `mount` output; AIX's `/etc/filesystems` stanzas and BSD `mount` output give nothing.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::args::optional_boolean;
use crate::find::glob_regex;
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, bin_path, hardware, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "mount_facts",
    args: &[
        "sources",
        "mount_binary",
        "devices",
        "fstypes",
        "timeout",
        "on_timeout",
        "include_aggregate_mounts",
    ],
    unsupported: &[],
    free_form: false,
};

const STATIC_SOURCES: &[&str] = &["/etc/fstab", "/etc/vfstab", "/etc/filesystems"];
const DYNAMIC_SOURCES: &[&str] = &["/etc/mtab", "/proc/mounts", "/etc/mnttab"];

fn mount() -> Option<Value> {
    Some(Value::from("mount"))
}

fn error() -> String {
    "error".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    sources: Option<Vec<String>>,
    #[serde(default = "mount")]
    mount_binary: Option<Value>,
    #[serde(default)]
    devices: Option<Vec<String>>,
    #[serde(default)]
    fstypes: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default = "error")]
    on_timeout: String,
    #[serde(default, deserialize_with = "optional_boolean")]
    include_aggregate_mounts: Option<bool>,
}

/// One parsed entry: its mount point, the line(s) it came from, and its fields.
struct Entry {
    mount: String,
    line: String,
    fields: Map<String, Value>,
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("mount_facts", &request.args)?;
    if let Some(seconds) = args.timeout
        && seconds <= 0.0
    {
        return Err(ModuleError::Failed(format!(
            "argument 'timeout' must be a positive number or null, not {seconds}"
        )));
    }
    if !["error", "warn", "ignore"].contains(&args.on_timeout.as_str()) {
        return Err(ModuleError::Args(format!(
            "value of on_timeout must be one of: error, warn, ignore, got: {}",
            args.on_timeout
        )));
    }
    let mount_binary = match &args.mount_binary {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(ModuleError::Failed(format!(
                "argument 'mount_binary' must be a string or null, not {other}"
            )));
        }
    };
    let globs = |patterns: &Option<Vec<String>>| -> Result<Vec<Regex>, ModuleError> {
        patterns
            .clone()
            .unwrap_or_else(|| vec!["*".into()])
            .iter()
            .map(|p| glob_regex(p).map_err(ModuleError::Args))
            .collect()
    };
    let (devices, fstypes) = (globs(&args.devices)?, globs(&args.fstypes)?);
    let mut warnings: Vec<String> = Vec::new();
    let sources = sources(args.sources.as_deref())?;
    let mut uuids = Uuids::default();
    let mut mounts: Vec<Map<String, Value>> = Vec::new();
    for (source, entry) in entries_by_source(&sources, mount_binary.as_deref(), &mut warnings)? {
        let Entry {
            mount,
            line,
            mut fields,
        } = entry;
        let mut device = fields["device"].as_str().unwrap_or_default().to_string();
        let fstype = fields["fstype"].as_str().unwrap_or_default().to_string();
        let mut uuid = None;
        if let Some(u) = device.strip_prefix("UUID=") {
            uuid = Some(u.to_string());
            if let Some(found) = device_by_uuid(u) {
                device = found;
                fields.insert("device".into(), device.clone().into());
            }
        }
        if !devices.iter().any(|re| re.is_match(&device))
            || !fstypes.iter().any(|re| re.is_match(&fstype))
        {
            continue;
        }
        match sized(&mount, args.timeout) {
            Some(size) => fields.extend(size),
            None => {
                let msg = format!("Timed out getting mount size for mount {mount} (type {fstype})");
                match args.on_timeout.as_str() {
                    "error" => return Err(ModuleError::Failed(msg)),
                    "warn" => warnings.push(msg),
                    _ => {}
                }
            }
        }
        if uuid.is_none() {
            uuid = uuids.of(&device);
        }
        fields.insert(
            "ansible_context".into(),
            json!({"source": source, "source_data": line}),
        );
        fields.insert("uuid".into(), uuid.map_or(Value::Null, Value::from));
        mounts.push(fields);
    }
    let (mount_points, aggregate) =
        deduplicate(mounts, args.include_aggregate_mounts, &mut warnings);
    let mut values = Map::new();
    if !warnings.is_empty() {
        values.insert("warnings".into(), warnings.into());
    }
    values.insert(
        "ansible_facts".into(),
        json!({"mount_points": mount_points, "aggregate_mounts": aggregate}),
    );
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// The files (and `mount`) to read, with `all`, `static` and `dynamic` spelled out.
fn sources(asked: Option<&[String]>) -> Result<Vec<String>, ModuleError> {
    let all = ["all".to_string()];
    let mut out = Vec::new();
    for source in asked.unwrap_or(&all) {
        if source.is_empty() {
            return Err(ModuleError::Failed(
                "sources contains an empty string".into(),
            ));
        }
        let source = source.as_str();
        if source == "dynamic" || source == "all" {
            out.extend(DYNAMIC_SOURCES.iter().map(|s| s.to_string()));
        }
        if source == "static" || source == "all" {
            out.extend(STATIC_SOURCES.iter().map(|s| s.to_string()));
        } else if !["dynamic", "all"].contains(&source) {
            out.push(source.to_string());
        }
    }
    Ok(out)
}

fn entries_by_source(
    sources: &[String],
    mount_binary: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, Entry)>, ModuleError> {
    let mut unique = sources.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() < sources.len() {
        let listed: Vec<String> = sources.iter().map(|s| format!("'{s}'")).collect();
        warnings.push(format!(
            "mount_facts option 'sources' contains duplicate entries, repeat sources will be \
             ignored: [{}]",
            listed.join(", ")
        ));
    }
    let mut fallback = mount_binary.is_some()
        && sources
            .iter()
            .any(|s| DYNAMIC_SOURCES.contains(&s.as_str()));
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for source in sources {
        let real = std::fs::canonicalize(source)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| source.clone());
        if seen.contains(source) || seen.contains(&real) {
            continue;
        }
        let entries = if source == "mount" {
            seen.push(source.clone());
            linux_mount_output(&run_mount(mount_binary.unwrap_or("mount"))?)
        } else {
            seen.push(real);
            entries_of_file(source)
        };
        if !entries.is_empty() && (source == "mount" || DYNAMIC_SOURCES.contains(&source.as_str()))
        {
            fallback = false;
        }
        out.extend(entries.into_iter().map(|e| (source.clone(), e)));
    }
    if fallback && let Some(binary) = mount_binary {
        let entries = linux_mount_output(&run_mount(binary)?);
        out.extend(entries.into_iter().map(|e| ("mount".to_string(), e)));
    }
    Ok(out)
}

fn run_mount(binary: &str) -> Result<String, ModuleError> {
    let path = if binary.contains('/') {
        binary.to_string()
    } else {
        bin_path::required(binary)?
    };
    let ran = process::run(&[path.as_str()], &[])?;
    if ran.rc != 0 {
        return Err(ModuleError::Failed(format!(
            "Failed to execute {path}: Command '{path}' returned non-zero exit status {}.",
            ran.rc
        )));
    }
    Ok(ran.stdout)
}

/// `DEVICE on MOUNT type FSTYPE (OPTIONS)` lines; nothing unless every line is one.
fn linux_mount_output(stdout: &str) -> Vec<Entry> {
    let Ok(re) =
        Regex::new(r"^(?P<device>\S+) on (?P<mount>\S+) type (?P<fstype>\S+) \((?P<options>.+)\)$")
    else {
        return Vec::new();
    };
    let captures: Option<Vec<_>> = stdout.lines().map(|l| re.captures(l)).collect();
    let Some(captures) = captures else {
        return Vec::new();
    };
    captures
        .into_iter()
        .zip(stdout.lines())
        .map(|(c, line)| {
            let mut fields = Map::new();
            for key in ["device", "mount", "fstype", "options"] {
                fields.insert(key.into(), c[key].into());
            }
            Entry {
                mount: c["mount"].to_string(),
                line: line.to_string(),
                fields,
            }
        })
        .collect()
}

/// A mount table's entries, in the first of Ansible's formats that reads the whole file:
/// vfstab (7 columns), mnttab (5, the fifth a timestamp), fstab (4 to 6).
fn entries_of_file(path: &str) -> Vec<Entry> {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Vec::new();
    }
    vfstab(&lines)
        .or_else(|| mnttab(&lines))
        .or_else(|| fstab(&lines))
        .unwrap_or_default()
}

fn content_lines<'a>(lines: &[&'a str]) -> impl Iterator<Item = &'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
}

fn vfstab(lines: &[&str]) -> Option<Vec<Entry>> {
    content_lines(lines)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            let passno = f[4]
                .parse::<i64>()
                .map_or_else(|_| Value::from(f[4]), Value::from);
            let mut fields = Map::new();
            fields.insert("device".into(), f[0].into());
            fields.insert("device_to_fsck".into(), f[1].into());
            fields.insert("mount".into(), f[2].into());
            fields.insert("fstype".into(), f[3].into());
            fields.insert("passno".into(), passno);
            fields.insert("mount_at_boot".into(), f[5].into());
            fields.insert("options".into(), f[6].into());
            Some(Entry {
                mount: f[2].to_string(),
                line: line.to_string(),
                fields,
            })
        })
        .collect()
}

fn mnttab(lines: &[&str]) -> Option<Vec<Entry>> {
    let split: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Ansible reads the fifth column of every line first (a short line ends the attempt).
    if split.iter().any(|f| f.len() < 5) || !split.iter().any(|f| f[4].len() == 10) {
        return None;
    }
    lines
        .iter()
        .zip(&split)
        .map(|(line, f)| {
            let time: i64 = f[4].parse().ok()?;
            let mut fields = Map::new();
            fields.insert("device".into(), f[0].into());
            fields.insert("mount".into(), f[1].into());
            fields.insert("fstype".into(), f[2].into());
            fields.insert("options".into(), f[3].into());
            fields.insert("time".into(), time.into());
            Some(Entry {
                mount: f[1].to_string(),
                line: line.to_string(),
                fields,
            })
        })
        .collect()
}

fn fstab(lines: &[&str]) -> Option<Vec<Entry>> {
    content_lines(lines)
        .map(|line| {
            let line = line.trim();
            let f: Vec<String> = line.split_whitespace().map(octal_unescaped).collect();
            if f.len() < 4 {
                return None;
            }
            let mut fields = Map::new();
            fields.insert("device".into(), f[0].clone().into());
            fields.insert("mount".into(), f[1].clone().into());
            fields.insert("fstype".into(), f[2].clone().into());
            fields.insert("options".into(), f[3].clone().into());
            // The last two columns are optional; one that is there must be a number.
            if let Some(dump) = f.get(4) {
                fields.insert("dump".into(), python_int(dump)?.into());
                if let Some(passno) = f.get(5) {
                    fields.insert("passno".into(), python_int(passno)?.into());
                }
            }
            Some(Entry {
                mount: f[1].clone(),
                line: line.to_string(),
                fields,
            })
        })
        .collect()
}

/// Python's `int()` of text: surrounding space, a sign, underscores between digits.
fn python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// `\040` and other three-digit octal escapes, as fstab and /proc/mounts write odd bytes.
fn octal_unescaped(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(digits) = escape {
            let code = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
            out.extend(char::from_u32(code));
            i += 4;
        } else {
            let c = field[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(c);
            i += c.len_utf8().max(1);
        }
    }
    out
}

/// statvfs sizes of a mount point (empty when it cannot be read); `None` when it took longer
/// than `timeout` seconds.
fn sized(mount: &str, timeout: Option<f64>) -> Option<Map<String, Value>> {
    let Some(seconds) = timeout else {
        return Some(hardware::mount_size(mount));
    };
    let (send, receive) = std::sync::mpsc::channel();
    let path = mount.to_string();
    std::thread::spawn(move || {
        let _ = send.send(hardware::mount_size(&path));
    });
    receive.recv_timeout(crate::clock::seconds(seconds)).ok()
}

/// `blkid --uuid UUID`'s output as Ansible keeps it (its newline too), when blkid knows it.
fn device_by_uuid(uuid: &str) -> Option<String> {
    let blkid = bin_path::find("blkid")?;
    let ran = process::run(&[blkid.to_string_lossy().as_ref(), "--uuid", uuid], &[]).ok()?;
    ran.ok().then_some(ran.stdout)
}

/// Finds partitions' UUIDs as Ansible does: /dev/disk/by-uuid, then lsblk (asked once), then
/// udevadm for a device that is a device file.
#[derive(Default)]
struct Uuids {
    by_uuid: Option<Vec<(String, String)>>,
    lsblk: Option<Vec<(String, String)>>,
    udevadm: HashMap<String, Option<String>>,
}

impl Uuids {
    fn of(&mut self, device: &str) -> Option<String> {
        let by_uuid = self.by_uuid.get_or_insert_with(|| {
            let Ok(entries) = std::fs::read_dir("/dev/disk/by-uuid") else {
                return Vec::new();
            };
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let uuid = e.file_name().to_string_lossy().into_owned();
                    let dev = std::fs::canonicalize(e.path()).ok()?;
                    Some((dev.to_string_lossy().into_owned(), uuid))
                })
                .collect()
        });
        if let Some((_, uuid)) = by_uuid.iter().find(|(dev, _)| dev == device) {
            return Some(uuid.clone());
        }
        let lsblk = self.lsblk.get_or_insert_with(|| {
            let Some(lsblk) = bin_path::find("lsblk") else {
                return Vec::new();
            };
            let argv = [
                lsblk.to_string_lossy().into_owned(),
                "--list".into(),
                "--noheadings".into(),
                "--paths".into(),
                "--output".into(),
                "NAME,UUID".into(),
                "--exclude".into(),
                "2".into(),
            ];
            let Ok(ran) = process::run(&argv, &[]) else {
                return Vec::new();
            };
            ran.stdout
                .lines()
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    (w.len() == 2).then(|| (w[0].to_string(), w[1].to_string()))
                })
                .collect()
        });
        if let Some((_, uuid)) = lsblk.iter().find(|(dev, _)| dev == device) {
            return Some(uuid.clone());
        }
        let is_device = Path::new(device).is_absolute() && Path::new(device).exists()
            || Path::new("/dev").join(device).exists();
        if !is_device {
            return None;
        }
        self.udevadm
            .entry(device.to_string())
            .or_insert_with(|| {
                let udevadm = bin_path::find("udevadm")?;
                let udevadm = udevadm.to_string_lossy();
                let argv = [
                    udevadm.as_ref(),
                    "info",
                    "--query",
                    "property",
                    "--name",
                    device,
                ];
                let ran = process::run(&argv, &[]).ok()?;
                ran.stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("ID_FS_UUID="))
                    .map(str::to_string)
            })
            .clone()
    }
}

/// The first entry of each mount point, and every entry when asked (a warning when some
/// source repeats a mount point and nobody said whether to aggregate).
fn deduplicate(
    mounts: Vec<Map<String, Value>>,
    include_aggregate: Option<bool>,
    warnings: &mut Vec<String>,
) -> (Map<String, Value>, Vec<Map<String, Value>>) {
    let mut points = Map::new();
    let mut by_source: Vec<(String, Vec<String>)> = Vec::new();
    for m in &mounts {
        let point = m["mount"].as_str().unwrap_or_default().to_string();
        let source = m["ansible_context"]["source"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !points.contains_key(&point) {
            points.insert(point.clone(), Value::Object(m.clone()));
        }
        match by_source.iter_mut().find(|(s, _)| *s == source) {
            Some((_, list)) => list.push(point),
            None => by_source.push((source, vec![point])),
        }
    }
    if include_aggregate.is_none() {
        let repeats: Vec<String> = by_source
            .iter()
            .filter(|(_, list)| {
                let mut unique = list.clone();
                unique.sort();
                unique.dedup();
                unique.len() != list.len()
            })
            .map(|(source, list)| {
                let quoted: Vec<String> = list.iter().map(|p| format!("'{p}'")).collect();
                format!("{source} ([{}])", quoted.join(", "))
            })
            .collect();
        if !repeats.is_empty() {
            warnings.push(format!(
                "mount_facts: ignoring repeat mounts in the following sources: {}. You can \
                 disable this warning by configuring the 'include_aggregate_mounts' option as \
                 True or False.",
                repeats.join(", ")
            ));
        }
    }
    let aggregate = if include_aggregate == Some(true) {
        mounts
    } else {
        Vec::new()
    };
    (points, aggregate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_lines_with_escapes_and_optional_columns() {
        let entries = fstab(&[
            "# comment",
            "UUID=abc / ext4 defaults 0 1",
            "/dev/sdb1 /mnt/my\\040disk vfat ro",
        ])
        .unwrap();
        assert_eq!(entries[0].fields["passno"], 1);
        assert_eq!(entries[1].mount, "/mnt/my disk");
        assert!(!entries[1].fields.contains_key("dump"));
        assert!(fstab(&["a b c d x"]).is_none());
    }

    #[test]
    fn proc_mounts_are_read_as_fstab() {
        let lines = ["proc /proc proc rw,nosuid 0 0", "tmpfs /run tmpfs rw 0 0"];
        assert!(vfstab(&lines).is_none());
        assert!(mnttab(&lines).is_none());
        assert!(!entries_of_file("/proc/self/mounts").is_empty());
    }

    #[test]
    fn all_sources_are_dynamic_then_static() {
        assert_eq!(
            sources(None).unwrap(),
            [DYNAMIC_SOURCES, STATIC_SOURCES].concat()
        );
        assert_eq!(
            sources(Some(&["static".into(), "/x".into()])).unwrap(),
            ["/etc/fstab", "/etc/vfstab", "/etc/filesystems", "/x"]
        );
    }
}
