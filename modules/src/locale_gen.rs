//! `community.general.locale_gen`: locales generated (or not) on Debian-like hosts, as Ansible's
//! module (community.general 11) does it: the locales must be available (a line of
//! `/usr/share/i18n/SUPPORTED`, or listed by `locale -a`), are present when `locale -a` lists
//! them all, and are made by uncommenting (or commenting) their lines in `/etc/locale.gen` and
//! running `locale-gen`. Without `/etc/locale.gen` but with `/var/lib/locales/supported.d/`
//! (old Ubuntu), `locale-gen` itself keeps the list.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::Presence;
use crate::fsutil::atomic_write;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "community.general.locale_gen",
    args: &["name", "state"],
    unsupported: &[],
    free_form: false,
};

const LOCALE_GEN: &str = "/etc/locale.gen";
const SUPPORTED_DIR: &str = "/var/lib/locales/supported.d/";
const SUPPORTED_LOCAL: &str = "/var/lib/locales/supported.d/local";

/// `locale -a` spells encodings its own way; both sides are compared in these.
const NORMALIZATION: &[(&str, &str)] = &[
    (".utf8", ".UTF-8"),
    (".eucjp", ".EUC-JP"),
    (".iso885915", ".ISO-8859-15"),
    (".cp1251", ".CP1251"),
    (".koi8r", ".KOI8-R"),
    (".armscii8", ".ARMSCII-8"),
    (".euckr", ".EUC-KR"),
    (".gbk", ".GBK"),
    (".gb18030", ".GB18030"),
    (".euctw", ".EUC-TW"),
];

/// A list argument that may be written as one comma-separated string.
fn names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let value = Value::deserialize(d)?;
    let word = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not a locale name"
        ))),
    };
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items.iter().map(word).collect::<Result<_, _>>().map(Some),
        Value::String(s) => Ok(Some(s.split(',').map(|p| p.trim().to_string()).collect())),
        other => word(&other).map(|w| Some(vec![w])),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LocaleGen {
    #[serde(default, deserialize_with = "names")]
    name: Option<Vec<String>>,
    #[serde(default)]
    state: Presence,
    #[serde(skip)]
    ubuntu: bool,
    #[serde(skip)]
    new_locale_gen: Option<String>,
}

fn fix_case(name: &str) -> String {
    NORMALIZATION
        .iter()
        .fold(name.to_string(), |n, (from, to)| n.replace(from, to))
}

fn installed() -> Result<Vec<String>, ModuleError> {
    let locale = bin_path::required("locale")?;
    let ran = process::run_ok(&[locale.as_str(), "-a"], &[])?;
    Ok(ran.stdout.lines().map(fix_case).collect())
}

/// `^\s*#?\s*(\S+[._\S]+) (\S+)\s*$`'s locale: an available locale's line.
fn available_locale(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let rest = line.strip_prefix('#').unwrap_or(line).trim_start();
    let rest = rest.trim_end();
    let (locale, charset) = rest.split_once(' ')?;
    (locale.chars().count() >= 2 && !charset.is_empty() && !charset.contains(char::is_whitespace))
        .then_some(locale)
}

/// `/etc/locale.gen` with each named locale's line (`# de_CH.UTF-8 UTF-8`) enabled or not.
fn set_locales(text: &str, names: &[String], enabled: bool) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            for name in names {
                let rest = line.strip_prefix('#').unwrap_or(line).trim_start();
                if let Some(charset) = rest.strip_prefix(&format!("{name} "))
                    && !charset.trim_end_matches('\n').is_empty()
                {
                    let hash = if enabled { "" } else { "# " };
                    return format!("{hash}{name} {charset}");
                }
            }
            line.to_string()
        })
        .collect()
}

impl LocaleGen {
    fn names(&self) -> &[String] {
        self.name.as_deref().unwrap_or_default()
    }

    fn missing(&self, names: &[String]) -> Result<Vec<String>, ModuleError> {
        let have = installed()?;
        Ok(names
            .iter()
            .filter(|n| !have.contains(&fix_case(n)))
            .cloned()
            .collect())
    }
}

impl Resource for LocaleGen {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        // `/etc/locale.gen` decides (glibc's way), else Ubuntu's folder (its old way).
        self.ubuntu = !Path::new(LOCALE_GEN).exists() && Path::new(SUPPORTED_DIR).exists();
        if !self.ubuntu && !Path::new(LOCALE_GEN).exists() {
            return Err(ModuleError::Failed(format!(
                "{} and {LOCALE_GEN} are missing. Is the package \"locales\" installed?",
                SUPPORTED_DIR.trim_end_matches('/')
            )));
        }
        // Both ways take the available locales from glibc's list (community.general 11).
        let list = "/usr/share/i18n/SUPPORTED";
        let supported = std::fs::read_to_string(list)
            .map_err(|e| ModuleError::io(format!("cannot read {list}"), e))?;
        let not_listed: Vec<String> = self
            .names()
            .iter()
            .filter(|n| {
                !supported
                    .lines()
                    .any(|l| available_locale(l) == Some(n.as_str()))
            })
            .cloned()
            .collect();
        let unavailable = self.missing(&not_listed)?;
        if !unavailable.is_empty() {
            return Err(ModuleError::Failed(format!(
                "The following locales you have entered are not available on your system: {}",
                unavailable.join(", ")
            )));
        }
        let present = self.missing(self.names())?.is_empty();
        let want = self.state == Presence::Present;
        let mut plan = Plan::default();
        if present == want {
            return Ok(plan);
        }
        let word = |p: bool| if p { "present" } else { "absent" }.to_string();
        plan.change("state", Some(word(present)), Some(word(want)));
        if !self.ubuntu {
            let text = std::fs::read_to_string(LOCALE_GEN)
                .map_err(|e| ModuleError::io(format!("cannot read {LOCALE_GEN}"), e))?;
            let new = set_locales(&text, self.names(), want);
            if want_diff && new != text {
                plan.content.push(ContentDiff {
                    path: LOCALE_GEN.into(),
                    before: Some(text.clone()),
                    after: Some(new.clone()),
                    summary: None,
                });
            }
            self.new_locale_gen = Some(new);
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let locale_gen = bin_path::required("locale-gen")?;
        let want = self.state == Presence::Present;
        if let Some(new) = &self.new_locale_gen {
            let meta = std::fs::metadata(LOCALE_GEN)
                .map_err(|e| ModuleError::io(format!("cannot read {LOCALE_GEN}"), e))?;
            atomic_write(
                Path::new(LOCALE_GEN),
                new.as_bytes(),
                meta.mode() & 0o7777,
                Some(meta.uid()),
                Some(meta.gid()),
            )?;
            process::run_ok(&[locale_gen.as_str()], &[])?;
        } else if want {
            // Ubuntu's locale-gen adds what it makes to supported.d/local itself.
            let mut argv = vec![locale_gen.clone()];
            argv.extend(self.names().iter().cloned());
            process::run_ok(&argv, &[])?;
        } else {
            let text = std::fs::read_to_string(SUPPORTED_LOCAL).unwrap_or_default();
            let kept: String = text
                .split_inclusive('\n')
                .filter(|l| {
                    let locale = l.split(' ').next().unwrap_or_default();
                    !self.names().iter().any(|n| n == locale)
                })
                .collect();
            atomic_write(
                Path::new(SUPPORTED_LOCAL),
                kept.as_bytes(),
                0o644,
                None,
                None,
            )?;
            process::run_ok(&[locale_gen.as_str(), "--purge"], &[])?;
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("name".into(), Value::from(self.names().to_vec()));
        // Which of the module's two ways it took (community.general 10.2 and later).
        values.insert("ubuntu_mode".into(), self.ubuntu.into());
        let mechanism = if self.ubuntu {
            "ubuntu_legacy"
        } else {
            "glibc"
        };
        values.insert("mechanism".into(), mechanism.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_locale_gen() {
        assert_eq!(
            available_locale("# de_CH.UTF-8 UTF-8\n"),
            Some("de_CH.UTF-8")
        );
        assert_eq!(available_locale("en_US.UTF-8 UTF-8"), Some("en_US.UTF-8"));
        assert_eq!(available_locale("# This file lists locales"), None);
    }

    #[test]
    fn enabling_uncomments_only_the_named_locale() {
        let text = "# de_CH.UTF-8 UTF-8\n# de_DE.UTF-8 UTF-8\n";
        let names = vec!["de_CH.UTF-8".to_string()];
        let on = set_locales(text, &names, true);
        assert_eq!(on, "de_CH.UTF-8 UTF-8\n# de_DE.UTF-8 UTF-8\n");
        assert_eq!(set_locales(&on, &names, false), text);
    }

    #[test]
    fn encodings_compare_as_locale_spells_them() {
        assert_eq!(fix_case("de_CH.utf8"), "de_CH.UTF-8");
    }
}
