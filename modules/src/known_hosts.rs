//! `known_hosts`: one host's key in an ssh `known_hosts` file, added, replaced or removed as
//! Ansible's `known_hosts` module does it. `ssh-keygen -F` finds the host (hashed entries too),
//! so a host matches exactly when ssh would match it; new files are written whole to a
//! temporary file and renamed.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use crate::args::{Presence, boolean, text};
use crate::fsutil::{atomic_write, attribute_values};
use crate::process;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "known_hosts",
    args: &["name", "host", "key", "path", "hash_host", "state"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KnownHosts {
    #[serde(alias = "host", deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    key: Option<String>,
    #[serde(default, deserialize_with = "text")]
    path: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    hash_host: bool,
    #[serde(default)]
    state: Presence,
    #[serde(skip)]
    work: Option<Work>,
    /// Ansible's `diff` result, which the module returns whether or not diffs were asked for.
    #[serde(skip)]
    diff: Value,
}

/// What `check` found and `apply` needs.
#[derive(Debug, Default)]
struct Work {
    path: PathBuf,
    host: String,
    keygen: String,
    /// The line to write (hashed when asked), with its newline.
    key: Option<String>,
    found: bool,
    replace_or_add: bool,
    found_line: Option<usize>,
}

/// `os.path.expanduser`: `~` is `$HOME` (or the account's home), `~name` that user's home.
fn expand_user(path: &str) -> PathBuf {
    let Some(rest) = path.strip_prefix('~') else {
        return PathBuf::from(path);
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        std::env::var("HOME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| home_of(None))
    } else {
        home_of(Some(user))
    };
    match home {
        Some(h) => PathBuf::from(format!("{}{tail}", h.trim_end_matches('/'))),
        None => PathBuf::from(path),
    }
}

/// A user's home folder from the password database (`None`: the user running the module).
fn home_of(user: Option<&str>) -> Option<String> {
    let mut argv = vec!["getent".to_string(), "passwd".to_string()];
    match user {
        Some(u) => argv.push(u.to_string()),
        // SAFETY: getuid cannot fail and touches no memory of ours.
        None => argv.push(unsafe { libc::getuid() }.to_string()),
    }
    let ran = process::run(&argv, &[]).ok()?;
    let line = ran.stdout.lines().next()?.to_string();
    line.split(':').nth(5).map(str::to_string)
}

/// A known_hosts line split as Ansible's `normalize_known_hosts_key` splits it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    options: Option<String>,
    host: String,
    kind: String,
    key: String,
}

fn normalize(line: &str) -> Result<Entry, ModuleError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let bad = || ModuleError::Failed(format!("invalid known_hosts key: {:?}", line.trim()));
    let marker = words.first().ok_or_else(bad)?.starts_with('@');
    let at = usize::from(marker);
    let field = |i: usize| words.get(at + i).map(|w| w.to_string()).ok_or_else(bad);
    Ok(Entry {
        options: marker.then(|| words[0].to_string()),
        host: field(0)?,
        kind: field(1)?,
        key: field(2)?,
    })
}

/// `|1|salt|hash`: the host hashed as ssh does (`HashKnownHosts`), with a random salt.
fn hash_host(host: &str, key: &str) -> Result<String, ModuleError> {
    let mut salt = [0u8; 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|e| ModuleError::io("read /dev/urandom", e))?;
    let digest = hmac_sha1(&salt, host.as_bytes());
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut parts: Vec<String> = key.split_whitespace().map(str::to_string).collect();
    let at = usize::from(parts.first().is_some_and(|p| p.starts_with('@')));
    match parts.get_mut(at) {
        Some(part) => *part = format!("|1|{}|{}", b64(&salt), b64(&digest)),
        None => {
            return Err(ModuleError::Failed(format!(
                "invalid known_hosts key: {:?}",
                key.trim()
            )));
        }
    }
    Ok(parts.join(" "))
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha1::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha1::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// The line numbers `ssh-keygen -F` reports (`# Host x found: line N`).
fn found_lines(stdout: &str) -> Vec<usize> {
    let Ok(re) = Regex::new(r"found: line (\d+)") else {
        return Vec::new();
    };
    stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| re.captures(l)?.get(1)?.as_str().parse().ok())
        .collect()
}

impl Work {
    fn lookup(&self, file: &Path) -> Result<process::Ran, ModuleError> {
        process::run(
            &[
                self.keygen.as_str(),
                "-F",
                &self.host,
                "-f",
                &file.display().to_string(),
            ],
            &[],
        )
    }

    /// Ansible's `sanity_check`: ssh-keygen must find the host in the key given.
    fn sanity_check(&self) -> Result<(), ModuleError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        if Regex::new(r"\S+(\s+)?,(\s+)?").is_ok_and(|re| re.is_match(&self.host)) {
            return Err(ModuleError::Failed("Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file.".into()));
        }
        let context = |e| ModuleError::io("write a temporary key file", e);
        let mut tmp = tempfile::NamedTempFile::new().map_err(context)?;
        tmp.write_all(key.as_bytes()).map_err(context)?;
        tmp.flush().map_err(context)?;
        if self.lookup(tmp.path())?.stdout.is_empty() {
            return Err(ModuleError::Failed(
                "Host parameter does not match hashed host field in supplied key".into(),
            ));
        }
        Ok(())
    }

    /// Ansible's `search_for_host_key`.
    fn search(&mut self) -> Result<(), ModuleError> {
        if !self.path.exists() {
            return Ok(());
        }
        let ran = self.lookup(&self.path)?;
        if ran.stdout.is_empty() && ran.stderr.is_empty() && (ran.rc == 0 || ran.rc == 1) {
            return Ok(());
        }
        if ran.rc != 0 {
            return Err(ModuleError::Failed(format!(
                "ssh-keygen failed (rc={}, stdout='{}',stderr='{}')",
                ran.rc, ran.stdout, ran.stderr
            )));
        }
        self.found = true;
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut wanted = normalize(key)?;
        let mut line_number = None;
        for line in ran.stdout.split('\n') {
            if line.is_empty() {
                continue;
            }
            if line.starts_with('#') {
                line_number = found_lines(line).first().copied().or(line_number);
                continue;
            }
            let found = normalize(line)?;
            let marked = found
                .options
                .as_deref()
                .is_some_and(|o| o.starts_with("@cert-authority") || o.starts_with("@revoke"));
            if marked {
                if wanted == found {
                    self.found_line = line_number;
                    return Ok(());
                }
                continue;
            }
            if wanted.host.starts_with("|1|") && found.host.starts_with("|1|") {
                wanted.host = found.host.clone();
            }
            if wanted == found {
                self.found_line = line_number;
                return Ok(());
            }
            if wanted.kind == found.kind {
                self.replace_or_add = true;
                self.found_line = line_number;
                return Ok(());
            }
        }
        self.replace_or_add = true;
        self.found_line = None;
        Ok(())
    }

    /// The file's lines after the change, each with its newline.
    fn edited(&self, before: &str, present: bool) -> String {
        let mut lines: Vec<&str> = before.split_inclusive('\n').collect();
        if let Some(n) = self.found_line
            && (self.replace_or_add || !present)
            && (1..=lines.len()).contains(&n)
        {
            lines.remove(n - 1);
        }
        let mut after = lines.concat();
        if present
            && (self.replace_or_add || self.found_line.is_none())
            && let Some(key) = &self.key
        {
            after.push_str(key);
        }
        after
    }
}

impl Resource for KnownHosts {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        let host = self.name.clone().unwrap_or_default().to_lowercase();
        let present = self.state == Presence::Present;
        let keygen = bin_path::required("ssh-keygen")?;
        let key = self.key.clone().filter(|k| !k.is_empty());
        if key.is_none() && present {
            return Err(ModuleError::Failed(
                "No key specified when adding a host".into(),
            ));
        }
        let key = match key {
            Some(k) if self.hash_host => Some(hash_host(&host, &k)?),
            other => other,
        }
        .map(|k| if k.ends_with('\n') { k } else { k + "\n" });
        let mut work = Work {
            path: expand_user(self.path.as_deref().unwrap_or("~/.ssh/known_hosts")),
            host,
            keygen,
            key,
            ..Work::default()
        };
        work.sanity_check()?;
        work.search()?;
        let before = std::fs::read(&work.path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let path = work.path.display().to_string();
        self.diff = serde_json::json!({
            "before_header": if before.is_some() { path.as_str() } else { "/dev/null" },
            "after_header": path,
            "before": before.clone().unwrap_or_default(),
            "after": work.edited(before.as_deref().unwrap_or_default(), present),
        });
        let mut plan = Plan::default();
        let nothing_to_remove = !present && work.found_line.is_none() && work.key.is_some();
        let changed = work.replace_or_add || present != work.found;
        if changed && !nothing_to_remove {
            plan.change("content", None, None);
            if want_diff {
                let text = before.clone().unwrap_or_default();
                let after = if work.key.is_none() {
                    // Every entry of the host goes (`ssh-keygen -R`).
                    let gone = found_lines(&work.lookup(&work.path)?.stdout);
                    text.split_inclusive('\n')
                        .enumerate()
                        .filter(|(i, _)| !gone.contains(&(i + 1)))
                        .map(|(_, l)| l)
                        .collect()
                } else {
                    work.edited(&text, present)
                };
                plan.content.push(ContentDiff {
                    path: work.path.display().to_string(),
                    before,
                    after: Some(after),
                    summary: None,
                });
            }
        }
        self.work = Some(work);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let present = self.state == Presence::Present;
        let Some(work) = &self.work else {
            return Ok(());
        };
        if plan.is_empty() {
            return Ok(());
        }
        let path = work.path.display().to_string();
        if work.found && work.key.is_none() && !present {
            process::run_ok(&[work.keygen.as_str(), "-R", &work.host, "-f", &path], &[])?;
            return Ok(());
        }
        let (before, mode, uid, gid) = match std::fs::read(&work.path) {
            Ok(bytes) => {
                let meta = std::fs::metadata(&work.path)
                    .map_err(|e| ModuleError::io(format!("stat {path}"), e))?;
                (
                    String::from_utf8_lossy(&bytes).into_owned(),
                    meta.mode() & 0o7777,
                    Some(meta.uid()),
                    Some(meta.gid()),
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), 0o666 & !crate::fsutil::umask(), None, None)
            }
            Err(_) => {
                return Err(ModuleError::Failed(format!("Failed to read '{path}'.")));
            }
        };
        let after = work.edited(&before, present);
        atomic_write(&work.path, after.as_bytes(), mode, uid, gid)
            .map_err(|_| ModuleError::Failed(format!("Failed to write to file '{path}'.")))
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let path = match &self.work {
            Some(w) => w.path.display().to_string(),
            None => self.path.clone().unwrap_or_default(),
        };
        values.insert("name".into(), self.name.clone().into());
        values.insert("key".into(), self.key.clone().into());
        values.insert("hash_host".into(), self.hash_host.into());
        values.insert("state".into(), self.state.word().into());
        // Ansible adds the file's attributes to any result with a `path` (`add_path_info`).
        let file = Path::new(&path);
        if let Ok(meta) = std::fs::symlink_metadata(file) {
            attribute_values(file, values);
            let state = if meta.file_type().is_symlink() {
                "link"
            } else if meta.is_dir() {
                "directory"
            } else if std::fs::metadata(file).is_ok_and(|m| m.nlink() > 1) {
                "hard"
            } else {
                "file"
            };
            values.insert("state".into(), state.into());
        }
        values.insert("path".into(), path.into());
        values.insert("diff".into(), self.diff.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let digest = hmac_sha1(&[0x0b; 20], b"Hi There");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    }

    #[test]
    fn keys_split_with_and_without_markers() {
        let e = normalize("@cert-authority *.example ssh-ed25519 AAAA c").unwrap();
        assert_eq!(e.options.as_deref(), Some("@cert-authority"));
        assert_eq!(
            (e.host.as_str(), e.kind.as_str()),
            ("*.example", "ssh-ed25519")
        );
        assert!(normalize("host ssh-rsa").is_err());
        let hashed = hash_host("a", "a ssh-ed25519 AAAA x y").unwrap();
        assert!(hashed.starts_with("|1|") && hashed.ends_with(" ssh-ed25519 AAAA x y"));
    }

    #[test]
    fn replaced_lines_and_appended_keys() {
        let work = Work {
            key: Some("h ssh-ed25519 NEW\n".into()),
            replace_or_add: true,
            found_line: Some(2),
            ..Work::default()
        };
        assert_eq!(
            work.edited("a x y\nh ssh-ed25519 OLD\nb x y\n", true),
            "a x y\nb x y\nh ssh-ed25519 NEW\n"
        );
        assert_eq!(work.edited("a x y\nh ssh-ed25519 OLD\n", false), "a x y\n");
    }
}
