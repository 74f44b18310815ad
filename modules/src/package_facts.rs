//! `package_facts`: the installed packages in `ansible_facts.packages`, shaped as Ansible's module
//! shapes them: each name maps to a list of installed versions (`name`, `version`, `arch`,
//! `source`, plus `category` and `origin` for apt; `release` and `epoch` for rpm). Changes
//! nothing.
//!
//! apt's packages come from dpkg's status file, read directly (Ansible asks python3-apt, which
//! reads the same file), and their `origin` from the `Origin:` of the first apt list holding the
//! installed version (`""` when none does, as for a local .deb). rpm's come from one `rpm -qa`.
//! Of Ansible's other managers (apk, pacman, pkg, pkg_info, portage) none is read yet: asked
//! for by name they fail, and `auto` passes them by.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "package_facts",
    args: &["manager", "strategy"],
    unsupported: &[],
    free_form: false,
};

fn auto() -> Vec<String> {
    vec!["auto".into()]
}

fn first() -> String {
    "first".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "auto")]
    manager: Vec<String>,
    #[serde(default = "first")]
    strategy: String,
}

/// Ansible's manager names, sorted, then its aliases (`dnf` is rpm, …).
const MANAGERS: &[&str] = &["apk", "apt", "pacman", "pkg", "pkg_info", "portage", "rpm"];
const ALIASES: &[(&str, &[&str])] = &[
    ("rpm", &["dnf", "dnf5", "yum", "zypper"]),
    ("pkg", &["pkg5", "pkgng"]),
    ("pkg_info", &["openbsd_pkg"]),
];

/// The host's dpkg database and apt's lists.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const APT_LISTS: &str = "/var/lib/apt/lists";

type Packages = Map<String, Value>;

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("package_facts", &request.args)?;
    if !["first", "all"].contains(&args.strategy.as_str()) {
        return Err(ModuleError::Args(format!(
            "value of strategy must be one of: first, all, got: {}",
            args.strategy
        )));
    }
    let given: Vec<String> = args.manager.iter().map(|m| m.to_lowercase()).collect();
    let mut managers = given.clone();
    let auto = given.iter().any(|m| m == "auto");
    if auto {
        managers.extend(MANAGERS.iter().map(|m| m.to_string()));
        managers.extend(
            ALIASES
                .iter()
                .flat_map(|(_, a)| a.iter().map(|a| a.to_string())),
        );
        if let Some(i) = managers.iter().position(|m| m == "auto") {
            managers.remove(i);
        }
    }
    let known = |m: &str| MANAGERS.contains(&m) || ALIASES.iter().any(|(_, a)| a.contains(&m));
    let unknown: Vec<&str> = managers
        .iter()
        .map(String::as_str)
        .filter(|m| !known(m))
        .collect();
    if !unknown.is_empty() {
        return Err(ModuleError::Failed(if auto {
            "Could not auto detect a usable package manager, check warnings for details.".into()
        } else {
            format!(
                "Unsupported package managers requested: {}",
                unknown.join(", ")
            )
        }));
    }
    let mut packages = Packages::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut found = 0;
    let mut seen = HashSet::new();
    for asked in &managers {
        if args.strategy == "first" && found > 0 {
            break;
        }
        let manager = ALIASES
            .iter()
            .find(|(_, a)| a.contains(&asked.as_str()))
            .map_or(asked.as_str(), |(m, _)| m);
        if !seen.insert(manager.to_string()) {
            continue;
        }
        let listed = match manager {
            "apt" if bin_path::find("apt-get").is_some() || bin_path::find("apt").is_some() => {
                Some(apt_packages())
            }
            "rpm" if bin_path::find("rpm").is_some() => Some(rpm_packages()),
            "apt" | "rpm" => None,
            other => {
                if given.iter().any(|g| g == asked) {
                    warnings.push(format!(
                        "Requested package manager {other} was not usable by this module: \
                         settle does not read {other}'s packages"
                    ));
                }
                continue;
            }
        };
        let Some(listed) = listed else {
            if given.iter().any(|g| g == asked) {
                warnings.push(format!(
                    "Requested package manager {manager} was not usable by this module: \
                     Failed to find required executable \"{manager}\""
                ));
            }
            continue;
        };
        match listed {
            Err(e) => warnings.push(format!("Failed to retrieve packages with {manager}: {e}")),
            Ok(found_here) if found_here.is_empty() => {
                warnings.push(format!("Found \"{manager}\" but no associated packages"))
            }
            Ok(found_here) => {
                found += 1;
                for (name, versions) in found_here {
                    let Value::Array(versions) = versions else {
                        continue;
                    };
                    match packages.get_mut(&name) {
                        Some(Value::Array(have)) => have.extend(versions),
                        _ => {
                            packages.insert(name, Value::Array(versions));
                        }
                    }
                }
            }
        }
    }
    let mut values = Map::new();
    if !warnings.is_empty() {
        values.insert("warnings".into(), warnings.clone().into());
    }
    if found == 0 {
        let listed: Vec<String> = managers.iter().map(|m| format!("'{m}'")).collect();
        return Err(ModuleError::FailedWith {
            msg: format!(
                "Could not detect a supported package manager from the following list: [{}], \
                 or the required Python library is not installed. Check warnings for details.",
                listed.join(", ")
            ),
            values,
        });
    }
    values.insert("ansible_facts".into(), json!({ "packages": packages }));
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// One dpkg status stanza's fields that matter here.
#[derive(Default)]
struct Stanza {
    package: String,
    status: String,
    version: String,
    arch: String,
    section: String,
}

/// The installed packages in dpkg's status file, as python3-apt's cache lists them: a foreign
/// architecture's package is `name:arch`.
fn apt_packages() -> Result<Packages, String> {
    let status = std::fs::read_to_string(DPKG_STATUS)
        .map_err(|e| format!("cannot read {DPKG_STATUS}: {e}"))?;
    let stanzas: Vec<Stanza> = status
        .split("\n\n")
        .map(parse_stanza)
        .filter(|s| !s.package.is_empty() && installed(&s.status))
        .collect();
    let native = stanzas
        .iter()
        .find(|s| s.package == "dpkg")
        .map(|s| s.arch.clone())
        .unwrap_or_default();
    let wanted: HashSet<(&str, &str)> = stanzas
        .iter()
        .map(|s| (s.package.as_str(), s.version.as_str()))
        .collect();
    let origins = list_origins(Path::new(APT_LISTS), &wanted);
    let mut packages = Packages::new();
    for s in &stanzas {
        let name = if s.arch == native || s.arch == "all" || native.is_empty() {
            s.package.clone()
        } else {
            format!("{}:{}", s.package, s.arch)
        };
        // apt's cache takes the section from the list that has the version, when one does.
        let (origin, section) = match origins.get(&(s.package.clone(), s.version.clone())) {
            Some((origin, section)) if !section.is_empty() => (origin.clone(), section.clone()),
            Some((origin, _)) => (origin.clone(), s.section.clone()),
            None => (String::new(), s.section.clone()),
        };
        let entry = json!({
            "name": name,
            "version": s.version,
            "arch": s.arch,
            "category": section,
            "origin": origin,
            "source": "apt",
        });
        push(&mut packages, &name, entry);
    }
    Ok(packages)
}

fn push(packages: &mut Packages, name: &str, entry: Value) {
    match packages.get_mut(name) {
        Some(Value::Array(list)) => list.push(entry),
        _ => {
            packages.insert(name.to_string(), Value::Array(vec![entry]));
        }
    }
}

fn parse_stanza(text: &str) -> Stanza {
    let mut s = Stanza::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let value = value.trim().to_string();
        match key {
            "Package" => s.package = value,
            "Status" => s.status = value,
            "Version" => s.version = value,
            "Architecture" => s.arch = value,
            "Section" => s.section = value,
            _ => {}
        }
    }
    s
}

/// apt counts a package installed when dpkg has a version of it on the system: any state but
/// `not-installed` and `config-files` (only its configuration left).
fn installed(status: &str) -> bool {
    status
        .split_whitespace()
        .nth(2)
        .is_some_and(|state| !matches!(state, "not-installed" | "config-files"))
}

/// For each (package, version) wanted, the `Origin:` of the first apt list (in name order) that
/// has it and the `Section:` that list gives it. Compressed lists are passed by.
fn list_origins(
    lists: &Path,
    wanted: &HashSet<(&str, &str)>,
) -> HashMap<(String, String), (String, String)> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir(lists) else {
        return found;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let releases: Vec<(&str, String)> = names
        .iter()
        .filter_map(|n| {
            let prefix = n
                .strip_suffix("InRelease")
                .or_else(|| n.strip_suffix("_Release"))?;
            let text = std::fs::read_to_string(lists.join(n)).ok()?;
            let origin = text
                .lines()
                .find_map(|l| l.strip_prefix("Origin:"))
                .map(|o| o.trim().to_string())
                .unwrap_or_default();
            Some((prefix, origin))
        })
        .collect();
    for name in names.iter().filter(|n| n.ends_with("_Packages")) {
        let Some(origin) = releases
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, o)| o.clone())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(lists.join(name)) else {
            continue;
        };
        // Lists run to tens of megabytes: only the three fields are looked at, as bytes.
        let field = |line: &[u8], key: &[u8]| -> Option<String> {
            line.strip_prefix(key)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        let (mut package, mut version, mut section) = (String::new(), String::new(), String::new());
        let mut finish = |package: &mut String, version: &mut String, section: &mut String| {
            if wanted.contains(&(package.as_str(), version.as_str())) {
                found
                    .entry((std::mem::take(package), std::mem::take(version)))
                    .or_insert_with(|| (origin.clone(), std::mem::take(section)));
            }
            package.clear();
            version.clear();
            section.clear();
        };
        for line in bytes.split(|b| *b == b'\n') {
            match line.first() {
                None => finish(&mut package, &mut version, &mut section),
                Some(b'P') => package = field(line, b"Package:").unwrap_or(package),
                Some(b'V') => version = field(line, b"Version:").unwrap_or(version),
                Some(b'S') => section = field(line, b"Section:").unwrap_or(section),
                _ => {}
            }
        }
        finish(&mut package, &mut version, &mut section);
    }
    found
}

/// `rpm -qa`: name, version, release, epoch (`None` when the package has none, as Ansible's
/// `to_text` writes Python's None) and arch.
fn rpm_packages() -> Result<Packages, String> {
    let ran = process::run(
        &[
            "rpm",
            "-qa",
            "--queryformat",
            "%{NAME}\\t%{VERSION}\\t%{RELEASE}\\t%{EPOCH}\\t%{ARCH}\\n",
        ],
        &[],
    )
    .map_err(|e| e.to_string())?;
    if ran.rc != 0 {
        return Err(format!(
            "rpm -qa failed (rc={}): {}",
            ran.rc,
            ran.stderr.trim()
        ));
    }
    let mut packages = Packages::new();
    for line in ran.stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, version, release, epoch, arch] = fields[..] else {
            continue;
        };
        let epoch = if epoch == "(none)" { "None" } else { epoch };
        push(
            &mut packages,
            name,
            json!({"name": name, "version": version, "release": release, "epoch": epoch,
                   "arch": arch, "source": "rpm"}),
        );
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_stanzas_say_what_is_installed() {
        let s = parse_stanza(
            "Package: libc6\nStatus: install ok installed\nSection: libs\nArchitecture: i386\n\
             Version: 2.36-9\nDescription: GNU C\n Version: not this\n",
        );
        assert_eq!(
            (s.package.as_str(), s.version.as_str(), s.arch.as_str()),
            ("libc6", "2.36-9", "i386")
        );
        assert!(installed(&s.status));
        assert!(!installed("deinstall ok config-files"));
        assert!(installed("install ok half-configured"));
    }

    #[test]
    fn origins_come_from_the_release_of_the_list_holding_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let base = "deb.debian.org_debian_dists_bookworm_";
        std::fs::write(
            dir.path().join(format!("{base}InRelease")),
            "Origin: Debian\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!("{base}main_binary-amd64_Packages")),
            "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n",
        )
        .unwrap();
        let wanted: HashSet<(&str, &str)> = [("a", "1"), ("b", "3")].into_iter().collect();
        let found = list_origins(dir.path(), &wanted);
        assert_eq!(
            found.get(&("a".into(), "1".into())),
            Some(&("Debian".to_string(), String::new()))
        );
        assert!(!found.contains_key(&("b".into(), "3".into())));
    }
}
