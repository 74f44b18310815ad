//! `ansible.posix.authorized_key`: SSH public keys in a user's `authorized_keys`, read and
//! compared as Ansible's module does. A key is known by its base64 blob; a key already there
//! with other options, type or comment is replaced (and moves to the end, as in Ansible); new
//! keys go after the existing ones in the order given; `exclusive` drops every other line.
//! Keys from a URL are refused: fetch them on the controller (`lookup('url', …)`).

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean, text};
use crate::fsutil::{atomic_write, expand_path, passwd_entry};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "ansible.posix.authorized_key",
    args: &[
        "user",
        "key",
        "path",
        "manage_dir",
        "state",
        "key_options",
        "exclusive",
        "validate_certs",
        "comment",
        "follow",
    ],
    unsupported: &[],
    free_form: false,
};

/// The key types Ansible's module recognizes; a line with none of them is not a key.
const KEY_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-rsa",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorizedKey {
    #[serde(default, deserialize_with = "text")]
    user: Option<String>,
    #[serde(default, deserialize_with = "text")]
    key: Option<String>,
    #[serde(default, deserialize_with = "text")]
    path: Option<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    manage_dir: bool,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "text")]
    key_options: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    exclusive: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    validate_certs: bool,
    #[serde(default, deserialize_with = "text")]
    comment: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    follow: bool,
    #[serde(skip)]
    check_mode: bool,
    #[serde(skip)]
    diff_mode: bool,
    #[serde(skip)]
    keyfile: Option<PathBuf>,
    #[serde(skip)]
    new_content: String,
    #[serde(skip)]
    diff: Option<Value>,
}

/// Options in front of a key, in order: `no-pty`, `from="10.0.0.1"`.
#[derive(Debug, Clone, Default)]
struct Options(Vec<(String, Option<String>)>);

impl Options {
    /// Splits on the commas outside quotes, as Ansible's `parseoptions`.
    fn parse(text: &str) -> Options {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut quote: Option<char> = None;
        for c in text.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => {
                    quote = None;
                    current.push(c);
                }
                (Some(_), c) => current.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    current.push(c);
                }
                (None, ',') => parts.push(std::mem::take(&mut current)),
                (None, c) => current.push(c),
            }
        }
        parts.push(current);
        Options(
            parts
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (p, None),
                })
                .collect(),
        )
    }

    /// Python compares the options as a dict of lists: order between names does not count.
    fn normalized(&self) -> BTreeMap<&str, Vec<Option<&str>>> {
        let mut map: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
        for (k, v) in &self.0 {
            map.entry(k).or_default().push(v.as_deref());
        }
        map
    }

    fn render(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        format!("{} ", parts.join(","))
    }
}

#[derive(Debug, Clone)]
struct Key {
    blob: String,
    kind: String,
    options: Options,
    comment: String,
}

impl Key {
    fn same(&self, other: &Key) -> bool {
        self.blob == other.blob
            && self.kind == other.kind
            && self.comment == other.comment
            && self.options.normalized() == other.options.normalized()
    }
}

/// A line of the file: a key, or anything else, kept as it is.
#[derive(Debug, Clone)]
enum Line {
    Key(Key),
    Other(String),
}

impl Line {
    /// The name Ansible's module files the line under: a key's blob, else the line itself.
    fn id(&self) -> &str {
        match self {
            Line::Key(k) => &k.blob,
            Line::Other(l) => l,
        }
    }

    fn render(&self) -> String {
        match self {
            Line::Key(k) => format!(
                "{}{} {} {}\n",
                k.options.render(),
                k.kind,
                k.blob,
                k.comment
            ),
            Line::Other(l) => l.clone(),
        }
    }
}

/// Ansible's `parsekey`: `None` when the line has no known key type (or nothing after it).
fn parse_line(raw: &str) -> Option<Line> {
    let raw = raw.replace("\\#", "#");
    let parts: Vec<&str> = raw.split_whitespace().collect();
    if parts.first() == Some(&"#") {
        return Some(Line::Other(raw));
    }
    let at = parts.iter().position(|p| KEY_TYPES.contains(p))?;
    let blob = parts.get(at + 1)?;
    Some(Line::Key(Key {
        blob: blob.to_string(),
        kind: parts[at].to_string(),
        options: Options::parse(&parts[..at].join(" ")),
        comment: parts[at + 2..].join(" "),
    }))
}

/// The file's lines by id, each with its rank (its place), in the order Python's dict keeps.
#[derive(Default)]
struct Lines(Vec<(Line, usize)>);

impl Lines {
    fn parse(content: &str) -> Lines {
        let mut lines = Lines::default();
        for (rank, raw) in content.split_inclusive('\n').enumerate() {
            let line = parse_line(raw).unwrap_or_else(|| Line::Other(raw.to_string()));
            lines.set(line, rank);
        }
        lines
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.0.iter().position(|(l, _)| l.id() == id)
    }

    /// Python's `d[id] = …`: replaces in place, or adds at the end.
    fn set(&mut self, line: Line, rank: usize) {
        match self.find(line.id()) {
            Some(i) => self.0[i] = (line, rank),
            None => self.0.push((line, rank)),
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.find(id) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }

    fn render(&self) -> String {
        let mut sorted: Vec<&(Line, usize)> = self.0.iter().collect();
        sorted.sort_by_key(|(_, rank)| *rank);
        sorted.iter().map(|(l, _)| l.render()).collect()
    }
}

fn read_text(path: &Path) -> Result<String, ModuleError> {
    if !path.is_file() {
        return Ok(String::new());
    }
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| ModuleError::io(format!("cannot read {}", path.display()), e))
}

fn realpath(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl AuthorizedKey {
    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or_default()
    }

    fn account(&self) -> Result<(u32, u32, String), ModuleError> {
        passwd_entry(self.user()).ok_or_else(|| {
            ModuleError::Failed(format!(
                "Failed to lookup user {user}: \"getpwnam(): name not found: '{user}'\"",
                user = self.user()
            ))
        })
    }

    fn given_path(&self) -> Option<PathBuf> {
        self.path.as_deref().map(|p| expand_path(Path::new(p)))
    }

    /// The key file, as Ansible's `keyfile()` finds it without writing.
    fn locate(&self) -> Result<PathBuf, ModuleError> {
        if self.check_mode
            && let Some(path) = self.given_path()
        {
            return Ok(path);
        }
        let account = match self.account() {
            Ok(account) => account,
            Err(_) if self.check_mode => {
                return Err(ModuleError::Failed(
                    "Either user must exist or you must provide full path to key file in check mode"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        };
        Ok(self
            .given_path()
            .unwrap_or_else(|| Path::new(&account.2).join(".ssh/authorized_keys")))
    }
}

impl Resource for AuthorizedKey {
    fn validate(&self) -> Result<(), ModuleError> {
        let mut missing = Vec::new();
        if self.user.is_none() {
            missing.push("user");
        }
        if self.key.is_none() {
            missing.push("key");
        }
        if !missing.is_empty() {
            return Err(ModuleError::Args(format!(
                "missing required arguments: {}",
                missing.join(", ")
            )));
        }
        let key = self.key.as_deref().unwrap_or_default();
        if key.starts_with("http") {
            return Err(ModuleError::Args(format!(
                "ansible.posix.authorized_key: settle does not fetch keys from a URL ({key}); \
                 fetch them on the controller: key: \"{{{{ lookup('url', '{key}', split_lines=False) }}}}\""
            )));
        }
        Ok(())
    }

    fn dry_run(&mut self, check_mode: bool) {
        self.check_mode = check_mode;
    }

    fn diff_mode(&mut self, diff: bool) {
        self.diff_mode = diff;
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let keyfile = self.locate()?;
        let existing_content = read_text(&keyfile)?;
        let mut existing = Lines::parse(&existing_content);
        let present = self.state == Presence::Present;
        let new_keys: Vec<&str> = self
            .key
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let max_rank = existing.0.len();
        let mut keep: Vec<String> = Vec::new();
        let mut write = false;
        for (rank, text) in new_keys.iter().enumerate() {
            let Some(Line::Key(mut key)) = parse_line(text) else {
                return Err(ModuleError::Failed(format!(
                    "invalid key specified: {text}"
                )));
            };
            if let Some(options) = &self.key_options {
                key.options = Options::parse(options);
            }
            if let Some(comment) = &self.comment {
                key.comment = comment.clone();
            }
            let found = existing.find(&key.blob).map(|i| &existing.0[i].0);
            let matched = match found {
                Some(Line::Key(old)) => !present || old.same(&key),
                Some(Line::Other(_)) => !present,
                None => false,
            };
            if present {
                keep.push(key.blob.clone());
                if found.is_some() && !matched {
                    existing.remove(&key.blob);
                    write = true;
                }
                if !matched {
                    existing.set(Line::Key(key), max_rank + rank);
                    write = true;
                }
            } else if matched {
                existing.remove(&key.blob);
                write = true;
            }
        }
        if present && self.exclusive {
            let before = existing.0.len();
            existing.0.retain(|(l, _)| keep.iter().any(|k| k == l.id()));
            write |= existing.0.len() != before;
        }
        let mut plan = Plan::default();
        let target = if self.follow {
            realpath(&keyfile)
        } else {
            keyfile.clone()
        };
        if write {
            self.new_content = existing.render();
            plan.change("content", None, None);
            if want_diff {
                plan.content.push(ContentDiff {
                    path: target.display().to_string(),
                    before: Some(existing_content.clone()),
                    after: Some(self.new_content.clone()),
                    summary: None,
                });
                // In the result only when --diff asked (Ansible's `module._diff`).
                self.diff = self.diff_mode.then(|| {
                    serde_json::json!({
                        "before_header": keyfile.display().to_string(),
                        "after_header": target.display().to_string(),
                        "before": existing_content,
                        "after": self.new_content,
                    })
                });
            }
        }
        self.keyfile = Some(keyfile);
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        let (uid, gid, home) = self.account()?;
        let keyfile = self
            .given_path()
            .unwrap_or_else(|| Path::new(&home).join(".ssh/authorized_keys"));
        let sshdir = keyfile
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let keyfile = if self.follow {
            realpath(&keyfile)
        } else {
            keyfile
        };
        if self.manage_dir {
            if !sshdir.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&sshdir)
                    .map_err(|e| {
                        ModuleError::Failed(format!(
                            "Failed to create directory {} : {e}",
                            sshdir.display()
                        ))
                    })?;
            }
            std::os::unix::fs::chown(&sshdir, Some(uid), Some(gid))
                .map_err(|e| ModuleError::io(format!("chown {}", sshdir.display()), e))?;
            std::fs::set_permissions(&sshdir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ModuleError::io(format!("chmod {}", sshdir.display()), e))?;
        }
        if let Some(parent) = keyfile.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| ModuleError::io(format!("mkdir {}", parent.display()), e))?;
        }
        atomic_write(
            &keyfile,
            self.new_content.as_bytes(),
            0o600,
            Some(uid),
            Some(gid),
        )
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
        values.insert("user".into(), text(&self.user));
        values.insert("key".into(), text(&self.key));
        values.insert("path".into(), text(&self.path));
        values.insert("manage_dir".into(), self.manage_dir.into());
        values.insert("state".into(), self.state.word().into());
        values.insert("key_options".into(), text(&self.key_options));
        values.insert("exclusive".into(), self.exclusive.into());
        values.insert("comment".into(), text(&self.comment));
        values.insert("validate_certs".into(), self.validate_certs.into());
        values.insert("follow".into(), self.follow.into());
        if let Some(keyfile) = &self.keyfile {
            values.insert("keyfile".into(), keyfile.display().to_string().into());
        }
        if let Some(diff) = &self.diff {
            values.insert("diff".into(), diff.clone());
        }
        // Ansible adds the file's attributes to a result with a `path` (`add_path_info`): here
        // only when the task named one.
        if let Some(path) = &self.path {
            crate::fsutil::path_info(Path::new(path), values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@x";
    const B: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB bob@y";

    fn run(content: &str, args: Value) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, content).unwrap();
        let mut args = args.as_object().unwrap().clone();
        args.insert("user".into(), "root".into());
        args.insert("path".into(), path.display().to_string().into());
        args.insert("manage_dir".into(), false.into());
        let mut module: AuthorizedKey = serde_json::from_value(Value::Object(args)).unwrap();
        module.dry_run(true);
        let plan = module.check(false).unwrap();
        (!plan.is_empty(), module.new_content)
    }

    #[test]
    fn a_new_key_goes_after_the_existing_ones() {
        let (changed, out) = run(&format!("{B}\n"), serde_json::json!({"key": A}));
        assert!(changed);
        assert_eq!(out, format!("{B}\n{A}\n"));
    }

    #[test]
    fn a_key_already_there_is_no_change() {
        let (changed, _) = run(&format!("# keys\n{A}\n"), serde_json::json!({"key": A}));
        assert!(!changed);
    }

    #[test]
    fn other_options_replace_the_key_and_move_it_last() {
        let (changed, out) = run(
            &format!("{A}\n{B}\n"),
            serde_json::json!({"key": A, "key_options": "no-pty,from=\"10.0.0.1,10.0.0.2\""}),
        );
        assert!(changed);
        assert_eq!(out, format!("{B}\nno-pty,from=\"10.0.0.1,10.0.0.2\" {A}\n"));
    }

    #[test]
    fn options_compare_whatever_their_order() {
        let (changed, _) = run(
            &format!("from=\"h\",no-pty {A}\n"),
            serde_json::json!({"key": A, "key_options": "no-pty,from=\"h\""}),
        );
        assert!(!changed);
    }

    #[test]
    fn exclusive_drops_every_other_line() {
        let (changed, out) = run(
            &format!("# c\n{B}\n{A}\n"),
            serde_json::json!({"key": A, "exclusive": true}),
        );
        assert!(changed);
        assert_eq!(out, format!("{A}\n"));
    }

    #[test]
    fn absent_removes_by_blob() {
        let (changed, out) = run(
            &format!("{A} other comment\n{B}\n"),
            serde_json::json!({"key": A, "state": "absent"}),
        );
        assert!(changed);
        assert_eq!(out, format!("{B}\n"));
    }

    #[test]
    fn a_key_without_a_comment_is_written_as_ansible_writes_it() {
        let (_, out) = run("", serde_json::json!({"key": "ssh-ed25519 AAAA"}));
        assert_eq!(out, "ssh-ed25519 AAAA \n");
    }

    #[test]
    fn a_line_without_a_key_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut module: AuthorizedKey = serde_json::from_value(serde_json::json!({
            "user": "root", "key": "nonsense", "path": dir.path().join("k")
        }))
        .unwrap();
        module.dry_run(true);
        assert!(module.check(false).is_err());
    }
}
