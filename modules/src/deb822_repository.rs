//! `deb822_repository`: one apt repository as a deb822 file,
//! `/etc/apt/sources.list.d/NAME.sources`, written as Ansible writes it: the fields in the
//! order of the argument names, named `Types`, `URIs`, `Signed-By`, `X-Repolib-Name`, …,
//! lists joined by spaces, booleans `yes`/`no`, a multi-line value (an inline key) indented on
//! the lines below with `.` for an empty line. A `signed_by` URL is downloaded to
//! `/etc/apt/keyrings/NAME.asc` (armored) or `.gpg`; a path to a file on the host is named as
//! it is; anything else is taken as the key itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, Presence};
use crate::fsutil::{atomic_write, default_file_mode};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "deb822_repository",
    args: &[
        "allow_downgrade_to_insecure",
        "allow_insecure",
        "allow_weak",
        "architectures",
        "by_hash",
        "check_date",
        "check_valid_until",
        "components",
        "date_max_future",
        "enabled",
        "inrelease_path",
        "languages",
        "name",
        "pdiffs",
        "signed_by",
        "suites",
        "targets",
        "trusted",
        "types",
        "uris",
        "mode",
        "state",
    ],
    unsupported: &[],
    free_form: false,
};

const KEYRINGS_DIR: &str = "/etc/apt/keyrings";
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deb822Repository {
    allow_downgrade_to_insecure: Option<bool>,
    allow_insecure: Option<bool>,
    allow_weak: Option<bool>,
    architectures: Option<Vec<String>>,
    by_hash: Option<bool>,
    check_date: Option<bool>,
    check_valid_until: Option<bool>,
    components: Option<Vec<String>>,
    date_max_future: Option<i64>,
    enabled: Option<bool>,
    inrelease_path: Option<String>,
    languages: Option<Vec<String>>,
    name: String,
    pdiffs: Option<bool>,
    signed_by: Option<String>,
    suites: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    trusted: Option<bool>,
    types: Option<Vec<String>>,
    uris: Option<Vec<String>>,
    mode: Option<Mode>,
    #[serde(default)]
    state: Presence,
    #[serde(skip)]
    work: Work,
}

/// What `check` found, for `apply` and the results.
#[derive(Debug, Default)]
struct Work {
    sources: PathBuf,
    text: String,
    before: Option<String>,
    write_sources: bool,
    mode: Option<u32>,
    /// A downloaded key: its file, bytes, and whether it must be written.
    key: Option<(PathBuf, Vec<u8>, bool)>,
    key_mode: bool,
    make_keyrings: bool,
    /// `key_filename` as Ansible returns it: the host file `signed_by` names.
    key_file: Option<String>,
    /// Files `state: absent` removes.
    remove: Vec<PathBuf>,
}

/// Ansible's slug of the name: lower case, `_` and blanks as `-`, only `[a-z0-9-]` kept.
fn slug(name: &str) -> String {
    let mut dashed = String::new();
    let mut in_run = false;
    for c in name.to_lowercase().chars() {
        if c == '_' || c.is_whitespace() {
            if !in_run {
                dashed.push('-');
            }
            in_run = true;
        } else {
            dashed.push(c);
            in_run = false;
        }
    }
    dashed
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect()
}

/// Python's `str.title()` of the argument name with `-` for `_` (`by_hash` → `By-Hash`).
fn field_name(arg: &str) -> String {
    match arg {
        "name" => return "X-Repolib-Name".into(),
        "uris" => return "URIs".into(),
        _ => {}
    }
    let mut out = String::new();
    let mut after_letter = false;
    for c in arg.replace('_', "-").chars() {
        if c.is_alphabetic() {
            if after_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            after_letter = true;
        } else {
            out.push(c);
            after_letter = false;
        }
    }
    out
}

/// A value on the lines below its field, as Ansible's `format_multiline` indents it.
fn multiline(value: &str) -> String {
    let lines: Vec<String> = value
        .trim()
        .lines()
        .map(|l| {
            let l = l.trim();
            format!("    {}", if l.is_empty() { "." } else { l })
        })
        .collect();
    format!("\n{}", lines.join("\n"))
}

fn is_armored(bytes: &[u8]) -> bool {
    let marker = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    bytes.windows(marker.len()).any(|w| w == marker)
}

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn has_url_scheme(value: &str) -> bool {
    // urlparse's scheme: letters first, then letters, digits, `+-.`, ending in `:`.
    let Some((scheme, _)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

impl Deb822Repository {
    /// The `Signed-By` value: a host file's path, a downloaded key's file, or the key itself.
    fn signed_by(&mut self, value: &str, slug: &str) -> Result<String, ModuleError> {
        if Path::new(value).is_file() {
            self.work.key_file = Some(value.to_string());
            return Ok(value.to_string());
        }
        if !has_url_scheme(value) {
            return Ok(value.to_string());
        }
        let bytes = crate::urls::get_bytes(value, true)
            .map_err(|e| ModuleError::Failed(format!("Could not fetch signed_by key: {e}")))?;
        if bytes.is_empty() {
            return Ok(value.to_string());
        }
        let ext = if is_armored(&bytes) { "asc" } else { "gpg" };
        let file = Path::new(KEYRINGS_DIR).join(format!("{slug}.{ext}"));
        let same = std::fs::read(&file).is_ok_and(|old| old == bytes);
        if !same && !Path::new(KEYRINGS_DIR).is_dir() {
            self.work.make_keyrings = true;
        }
        self.work.key_mode = same && mode_of(&file) != Some(0o644);
        self.work.key = Some((file.clone(), bytes, !same));
        Ok(file.display().to_string())
    }

    fn render(&mut self, slug: &str) -> Result<String, ModuleError> {
        let list = |v: &Option<Vec<String>>| v.as_ref().map(|l| l.join(" "));
        let yes_no = |v: Option<bool>| v.map(|b| if b { "yes" } else { "no" }.to_string());
        let types = self.types.clone().unwrap_or_else(|| vec!["deb".into()]);
        if let Some(bad) = types
            .iter()
            .find(|t| !matches!(t.as_str(), "deb" | "deb-src"))
        {
            return Err(ModuleError::Args(format!(
                "value of types must be one or more of: deb, deb-src. Got no match for: {bad}"
            )));
        }
        let signed_by = match self.signed_by.clone() {
            Some(v) => Some(self.signed_by(&v, slug)?),
            None => None,
        };
        // Sorted by argument name, as Ansible walks them.
        let fields: [(&str, Option<String>); 20] = [
            (
                "allow_downgrade_to_insecure",
                yes_no(self.allow_downgrade_to_insecure),
            ),
            ("allow_insecure", yes_no(self.allow_insecure)),
            ("allow_weak", yes_no(self.allow_weak)),
            ("architectures", list(&self.architectures)),
            ("by_hash", yes_no(self.by_hash)),
            ("check_date", yes_no(self.check_date)),
            ("check_valid_until", yes_no(self.check_valid_until)),
            ("components", list(&self.components)),
            (
                "date_max_future",
                self.date_max_future.map(|n| n.to_string()),
            ),
            ("enabled", yes_no(self.enabled)),
            ("inrelease_path", self.inrelease_path.clone()),
            ("languages", list(&self.languages)),
            ("name", Some(self.name.clone())),
            ("pdiffs", yes_no(self.pdiffs)),
            ("signed_by", signed_by),
            ("suites", list(&self.suites)),
            ("targets", list(&self.targets)),
            ("trusted", yes_no(self.trusted)),
            ("types", Some(types.join(" "))),
            ("uris", list(&self.uris)),
        ];
        let mut text = String::new();
        for (arg, value) in fields {
            let Some(mut value) = value else { continue };
            if value.contains('\n') {
                value = multiline(&value);
            }
            let name = field_name(arg);
            if value.is_empty() || value.starts_with('\n') {
                text.push_str(&format!("{name}:{value}\n"));
            } else {
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
        Ok(text)
    }
}

impl Resource for Deb822Repository {
    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let slug = slug(&self.name);
        let sources = Path::new(SOURCES_DIR).join(format!("{slug}.sources"));
        self.work.sources = sources.clone();
        let mut plan = Plan::default();
        let before = std::fs::read(&sources).ok();
        self.work.before = before
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        if self.state == Presence::Absent {
            for path in std::iter::once(sources.clone()).chain(
                ["asc", "gpg"]
                    .iter()
                    .map(|ext| Path::new(KEYRINGS_DIR).join(format!("{slug}.{ext}"))),
            ) {
                if path.exists() {
                    plan.change(
                        "state",
                        Some(path.display().to_string()),
                        Some("absent".into()),
                    );
                    if path == sources && want_diff {
                        plan.content.push(ContentDiff {
                            path: path.display().to_string(),
                            before: self.work.before.clone(),
                            after: None,
                            summary: None,
                        });
                    }
                    self.work.remove.push(path);
                }
            }
            return Ok(plan);
        }
        let text = self.render(&slug)?;
        self.work.text = text.clone();
        if let Some((file, _, write)) = &self.work.key {
            if self.work.make_keyrings {
                plan.change("keyrings", None, Some(KEYRINGS_DIR.into()));
            }
            if *write {
                plan.change("key", None, Some(file.display().to_string()));
            } else if self.work.key_mode {
                plan.change(
                    "key mode",
                    mode_of(file).map(|m| format!("{m:04o}")),
                    Some("0644".into()),
                );
            }
        }
        if before.as_deref() != Some(text.as_bytes()) {
            self.work.write_sources = true;
            plan.change(
                "content",
                self.work
                    .before
                    .as_ref()
                    .map(|_| sources.display().to_string()),
                Some(sources.display().to_string()),
            );
            plan.content.push(ContentDiff {
                path: sources.display().to_string(),
                before: self.work.before.clone(),
                after: Some(text),
                summary: None,
            });
        }
        let current = mode_of(&sources);
        let wanted = match &self.mode {
            Some(mode) => mode
                .resolve(current.unwrap_or(0), false)
                .map_err(|e| ModuleError::Args(format!("deb822_repository: mode: {e}")))?,
            None => 0o644,
        };
        self.work.mode = Some(wanted);
        if current.is_some_and(|m| m != wanted) {
            plan.change(
                "mode",
                current.map(|m| format!("{m:04o}")),
                Some(format!("{wanted:04o}")),
            );
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        if self.state == Presence::Absent {
            for path in &self.work.remove {
                std::fs::remove_file(path)
                    .map_err(|e| ModuleError::io(format!("remove {}", path.display()), e))?;
            }
            return Ok(());
        }
        if let Some((file, bytes, write)) = &self.work.key {
            if self.work.make_keyrings {
                std::fs::create_dir_all(KEYRINGS_DIR)
                    .map_err(|e| ModuleError::io(format!("create {KEYRINGS_DIR}"), e))?;
                crate::fsutil::chmod(Path::new(KEYRINGS_DIR), 0o755)?;
            }
            if *write {
                atomic_write(file, bytes, 0o644, None, None)?;
            }
            crate::fsutil::chmod(file, 0o644)?;
        }
        let mode = self.work.mode.unwrap_or_else(default_file_mode);
        if self.work.write_sources {
            atomic_write(
                &self.work.sources,
                self.work.text.as_bytes(),
                mode,
                None,
                None,
            )?;
        }
        crate::fsutil::chmod(&self.work.sources, mode)
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let dest = self.work.sources.display().to_string();
        values.insert("dest".into(), dest.into());
        match self.state {
            Presence::Absent => {
                let slug = slug(&self.name);
                values.insert("repo".into(), Value::Null);
                values.insert(
                    "key_filename".into(),
                    format!("{KEYRINGS_DIR}/{slug}.gpg").into(),
                );
            }
            Presence::Present => {
                values.insert("repo".into(), self.work.text.clone().into());
                let key_file = self
                    .work
                    .key
                    .as_ref()
                    .map(|(f, _, _)| f.display().to_string())
                    .or_else(|| self.work.key_file.clone());
                values.insert(
                    "key_filename".into(),
                    key_file.map_or(Value::Null, Value::from),
                );
                // Ansible adds the file's attributes to a result naming a `dest` that exists.
                if self.work.sources.is_file() {
                    crate::fsutil::attribute_values(&self.work.sources, values);
                    values.insert("state".into(), "file".into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(args: Value) -> Deb822Repository {
        crate::resource::parse_args("deb822_repository", args.as_object().unwrap()).unwrap()
    }

    #[test]
    fn written_as_ansible_writes_it() {
        let mut r = repo(serde_json::json!({
            "name": "ansible-test focal archive",
            "uris": "http://us.archive.ubuntu.com/ubuntu",
            "suites": ["focal", "focal-updates"],
            "components": ["main", "restricted"],
            "date_max_future": 10,
        }));
        assert_eq!(slug(&r.name), "ansible-test-focal-archive");
        assert_eq!(
            r.render("x").unwrap(),
            "Components: main restricted\nDate-Max-Future: 10\nX-Repolib-Name: ansible-test focal archive\nSuites: focal focal-updates\nTypes: deb\nURIs: http://us.archive.ubuntu.com/ubuntu\n"
        );
    }

    #[test]
    fn an_inline_key_is_indented_below_its_field() {
        let mut r = repo(serde_json::json!({
            "name": "t", "uris": "http://x", "suites": "stable", "trusted": true,
            "signed_by": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEYCQ\n-----END PGP PUBLIC KEY BLOCK-----",
        }));
        assert_eq!(
            r.render("t").unwrap(),
            "X-Repolib-Name: t\nSigned-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    mDMEYCQ\n    -----END PGP PUBLIC KEY BLOCK-----\nSuites: stable\nTrusted: yes\nTypes: deb\nURIs: http://x\n"
        );
        assert_eq!(
            field_name("allow_downgrade_to_insecure"),
            "Allow-Downgrade-To-Insecure"
        );
        assert_eq!(slug("My_Repo  2!"), "my-repo-2");
    }
}
