//! `get_url`: a file downloaded over HTTP(S) to the host, as Ansible's module decides it.
//!
//! With a `checksum` that the existing file already has, nothing is downloaded (only owner,
//! group and mode are compared). Otherwise the URL is fetched (with `If-Modified-Since` for an
//! existing file unless `force`; a `304` leaves it), and the download replaces `dest` when its
//! content differs. The download goes to a temporary file as it arrives, hashed on the way, and
//! the existing file is hashed in pieces: neither is ever held in memory. Writing goes through
//! [`Copy`], so attributes, `backup`, the diff and the atomic rename are copy's. Check mode
//! downloads too (into the system's temporary folder, removed after) so its prediction is the
//! real run's, where Ansible's makes a HEAD request and compares nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::digest::DynDigest;

use crate::args::{Mode, boolean, text};
use crate::copy::{Copy, FileAttrs};
use crate::file::Attributes;
use crate::fsutil;
use crate::resource::{Plan, Resource};
use crate::urls::{self, Follow, Options, Reply};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "get_url",
    args: &[
        "url",
        "dest",
        "backup",
        "checksum",
        "force",
        "timeout",
        "headers",
        "tmp_dest",
        "url_username",
        "username",
        "url_password",
        "password",
        "force_basic_auth",
        "validate_certs",
        "use_proxy",
        "http_agent",
        "unredirected_headers",
        "decompress",
        "use_netrc",
        "ciphers",
        "client_cert",
        "client_key",
        "use_gssapi",
        "owner",
        "group",
        "mode",
        "unsafe_writes",
        "attributes",
        "attr",
        "seuser",
        "serole",
        "setype",
        "selevel",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetUrl {
    #[serde(deserialize_with = "required_text")]
    url: String,
    dest: PathBuf,
    #[serde(default, deserialize_with = "boolean")]
    backup: bool,
    #[serde(default, deserialize_with = "text")]
    checksum: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    timeout: Option<u64>,
    headers: Option<Map<String, Value>>,
    tmp_dest: Option<PathBuf>,
    #[serde(default, alias = "username", deserialize_with = "text")]
    url_username: Option<String>,
    #[serde(default, alias = "password", deserialize_with = "text")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    force_basic_auth: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    validate_certs: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    use_proxy: bool,
    #[serde(default, deserialize_with = "text")]
    http_agent: Option<String>,
    #[serde(default)]
    unredirected_headers: Vec<String>,
    /// settle asks for no compression, so what arrives is what is meant either way.
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    #[allow(dead_code)]
    decompress: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    use_netrc: bool,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    #[serde(default)]
    ciphers: Vec<String>,
    #[serde(default, deserialize_with = "boolean")]
    use_gssapi: bool,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    unsafe_writes: bool,
    #[serde(default, alias = "attr", deserialize_with = "text")]
    attributes: Option<String>,
    #[serde(skip)]
    found: Found,
    #[serde(skip)]
    check_mode: bool,
}

fn required_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| serde::de::Error::custom("a URL is required"))
}

/// What `check` learned, for `apply` and the result.
#[derive(Debug, Default)]
struct Found {
    dest: PathBuf,
    msg: String,
    status: Option<i64>,
    checksum_src: Option<String>,
    checksum_dest: Option<String>,
    elapsed: u64,
    /// The write, when the download is to be written.
    copy: Option<Copy>,
    /// The download, in a temporary file (beside `dest` for a real run, so the copy's rename
    /// stays on one file system), removed when the module is done.
    download: Option<tempfile::NamedTempFile>,
}

/// A digest by Ansible's (hashlib's) name, fed in pieces.
fn hasher(algorithm: &str) -> Result<Box<dyn DynDigest>, ModuleError> {
    Ok(match algorithm.to_ascii_lowercase().as_str() {
        "md5" => Box::new(md5::Md5::default()),
        "sha1" => Box::new(sha1::Sha1::default()),
        "sha224" => Box::new(sha2::Sha224::default()),
        "sha256" => Box::new(sha2::Sha256::default()),
        "sha384" => Box::new(sha2::Sha384::default()),
        "sha512" => Box::new(sha2::Sha512::default()),
        other => {
            return Err(ModuleError::Failed(format!(
                "Could not hash file with algorithm '{other}'. Available algorithms: md5, sha1, \
                 sha224, sha256, sha384, sha512"
            )));
        }
    })
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it: SHA-1 (Ansible's `checksum_src` and
/// `checksum_dest`) and, given one, the task's `checksum` algorithm.
struct Hashing<W> {
    inner: W,
    sha1: sha1::Sha1,
    wanted: Option<Box<dyn DynDigest>>,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W, algorithm: Option<&str>) -> Result<Self, ModuleError> {
        Ok(Hashing {
            inner,
            sha1: sha1::Sha1::default(),
            wanted: algorithm.map(hasher).transpose()?,
        })
    }

    /// (SHA-1, the `checksum` algorithm's digest) as lower-case hex, and the writer.
    fn finish(self) -> (String, Option<String>, W) {
        let wanted = self.wanted.map(|d| hex(&d.finalize()));
        (hex(&sha2::Digest::finalize(self.sha1)), wanted, self.inner)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.sha1, &buf[..n]);
        if let Some(wanted) = &mut self.wanted {
            wanted.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A file's (SHA-1, `algorithm` digest), read in pieces.
fn file_digests(
    path: &Path,
    algorithm: Option<&str>,
) -> Result<(String, Option<String>), ModuleError> {
    let context = || format!("read {}", path.display());
    let mut file = fs::File::open(path).map_err(|e| ModuleError::io(context(), e))?;
    let mut hashing = Hashing::new(std::io::sink(), algorithm)?;
    std::io::copy(&mut file, &mut hashing).map_err(|e| ModuleError::io(context(), e))?;
    let (sha1, wanted, _) = hashing.finish();
    Ok((sha1, wanted))
}

/// Ansible's `parse_digest_lines`: a checksum file's `(digest, file name)` pairs, GNU or BSD
/// style, or one bare digest for `filename`.
fn digest_lines(filename: &str, text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 && lines[0].split_whitespace().count() == 1 {
        return vec![(lines[0].trim().to_string(), filename.to_string())];
    }
    let mut found = Vec::new();
    for line in lines {
        // BSD: `SHA256 (name) = digest`
        if let Some((head, digest)) = line.rsplit_once(") = ").or(line.rsplit_once(")= "))
            && let Some((_, name)) = head.split_once('(')
        {
            found.push((digest.trim().to_string(), name.to_string()));
            continue;
        }
        // GNU: `digest  name`, `digest *name`, `digest ./name`
        let mut parts = line.splitn(2, char::is_whitespace);
        if let (Some(digest), Some(name)) = (parts.next(), parts.next()) {
            let name = name.trim_start();
            let name = name.strip_prefix('*').unwrap_or(name);
            found.push((
                digest.to_string(),
                name.trim_start_matches(['.', '/']).to_string(),
            ));
        }
    }
    found
}

impl GetUrl {
    fn options(&self) -> Options {
        Options {
            validate_certs: self.validate_certs,
            ca_path: None,
            timeout: self.timeout.unwrap_or(10),
            use_proxy: self.use_proxy,
            http_agent: self
                .http_agent
                .clone()
                .unwrap_or_else(|| "ansible-httpget".into()),
            username: self.url_username.clone(),
            password: self.url_password.clone(),
            force_basic_auth: self.force_basic_auth,
            follow: Follow::All,
            headers: self
                .headers
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect(),
            unredirected_headers: self.unredirected_headers.clone(),
            last_modified: None,
            force: self.force,
            use_netrc: self.use_netrc,
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            ciphers: self.ciphers.clone(),
            unix_socket: None,
            use_gssapi: self.use_gssapi,
        }
    }

    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode.as_ref(),
        }
    }

    fn failed(&self, msg: impl Into<String>, reply: Option<&Reply>) -> ModuleError {
        let mut values = Map::new();
        values.insert("url".into(), urls::mask_url(&self.url).into());
        values.insert("dest".into(), self.found.dest.display().to_string().into());
        values.insert("elapsed".into(), self.found.elapsed.into());
        if let Some(reply) = reply.filter(|r| r.status != -1) {
            values.insert("status_code".into(), reply.status.into());
            values.insert("response".into(), reply.msg.clone().into());
        }
        ModuleError::FailedWith {
            msg: msg.into(),
            values,
        }
    }

    /// `algo:hex` or `algo:URL` → (algorithm, lower-case hex digest).
    fn wanted_checksum(&mut self) -> Result<Option<(String, String)>, ModuleError> {
        let Some(given) = self.checksum.clone().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let Some((algorithm, value)) = given.split_once(':') else {
            return Err(self.failed(
                "The checksum parameter has to be in format <algorithm>:<checksum>",
                None,
            ));
        };
        let mut value = value.to_string();
        if ["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|s| value.starts_with(s))
        {
            let reply = urls::fetch(&self.options(), "GET", &value, None);
            if reply.status != 200 {
                return Err(self.failed(reply.msg.clone(), Some(&reply)));
            }
            let filename = urls::url_filename(&self.url);
            let text = String::from_utf8_lossy(&reply.body);
            value = digest_lines(&filename, &text)
                .into_iter()
                .find(|(_, f)| *f == filename)
                .map(|(d, _)| d)
                .ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "Unable to find a checksum for file '{filename}' in '{}'",
                        urls::mask_url(&value)
                    ))
                })?;
        }
        let value: String = value
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
            .to_lowercase();
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.failed("The checksum format is invalid", None));
        }
        hasher(algorithm)?;
        Ok(Some((algorithm.to_string(), value)))
    }
}

impl GetUrl {
    /// Ansible's "Destination … does not exist" for a missing folder above `dest`.
    fn dest_folder_exists(&self) -> Result<(), ModuleError> {
        match self.dest.parent().filter(|f| !f.as_os_str().is_empty()) {
            Some(folder) if !folder.is_dir() => Err(self.failed(
                format!("Destination {} does not exist", folder.display()),
                None,
            )),
            _ => Ok(()),
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Resource for GetUrl {
    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.dest = fsutil::expand_path(&self.dest);
        self.found.dest = self.dest.clone();
        let checksum = self.wanted_checksum()?;
        let dest_is_dir = self.dest.is_dir();
        let mut options = self.options();
        let algorithm = checksum.as_ref().map(|(a, _)| a.as_str());
        if !dest_is_dir && let Ok(meta) = fs::metadata(&self.dest) {
            // Hashed in pieces: the file on the host is never read whole.
            let (sha1, current) = file_digests(&self.dest, algorithm)?;
            self.found.checksum_dest = Some(sha1);
            if let Some((_, wanted)) = &checksum
                && !self.force
            {
                if current.as_ref() == Some(wanted) {
                    // The file is there with the right content: only its attributes count.
                    let mut plan = Plan::default();
                    self.attributes().check(
                        Some(&meta),
                        false,
                        fsutil::default_file_mode(),
                        &mut plan,
                    )?;
                    if let Some(flags) = &self.attributes {
                        fsutil::check_file_flags(&self.dest, flags, &mut plan);
                    }
                    self.found.msg = if plan.is_empty() {
                        "file already exists".into()
                    } else {
                        "file already exists but file attributes changed".into()
                    };
                    self.found.checksum_dest = None;
                    return Ok(plan);
                }
                // A mismatch downloads whatever the server's copy's age.
                options.force = true;
            }
            options.last_modified = meta.modified().ok();
        }
        if !dest_is_dir {
            self.dest_folder_exists()?;
        }
        // The download goes to a temporary file while it is hashed, never into memory: in
        // `tmp_dest` when given, else beside `dest` (one file system for the rename), or in the
        // system's temporary folder in check mode, which leaves the host's folders alone.
        let staging = match &self.tmp_dest {
            Some(tmp) => tmp.clone(),
            None if self.check_mode => std::env::temp_dir(),
            None if dest_is_dir => self.dest.clone(),
            None => self
                .dest
                .parent()
                .filter(|f| !f.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        let download = tempfile::Builder::new()
            .prefix(".settle-get_url.")
            .tempfile_in(&staging)
            .map_err(|e| {
                ModuleError::io(
                    format!("create a temporary file in {}", staging.display()),
                    e,
                )
            })?;
        let file = download
            .reopen()
            .map_err(|e| ModuleError::io(format!("open {}", download.path().display()), e))?;
        let mut sink = Hashing::new(std::io::BufWriter::new(file), algorithm)?;
        let started = Instant::now();
        let reply = urls::fetch_to(&options, "GET", &self.url, None, &mut sink);
        self.found.elapsed = started.elapsed().as_secs();
        let (sha1, got, _) = sink.finish();
        self.found.msg = reply.msg.clone();
        self.found.status = Some(reply.status);
        if reply.status == 304 {
            self.found.checksum_dest = None;
            return Ok(Plan::default());
        }
        if reply.status == -1 {
            return Err(self.failed(reply.msg.clone(), Some(&reply)));
        }
        if reply.status != 200 {
            return Err(self.failed("Request failed", Some(&reply)));
        }
        if dest_is_dir {
            let name = urls::disposition_filename(&reply)
                .unwrap_or_else(|| urls::url_filename(&reply.url));
            self.dest = self.dest.join(name);
            self.found.dest = self.dest.clone();
            self.found.checksum_dest = match self.dest.is_file() {
                true => Some(file_digests(&self.dest, None)?.0),
                false => None,
            };
            self.dest_folder_exists()?;
        }
        if let (Some((_, wanted)), Some(got)) = (&checksum, got)
            && got != *wanted
        {
            return Err(self.failed(
                format!(
                    "The checksum for {} did not match {wanted}; it was {got}.",
                    self.dest.display()
                ),
                None,
            ));
        }
        self.found.checksum_src = Some(sha1);
        let attrs = FileAttrs {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.clone(),
            backup: self.backup,
            validate: None,
            unsafe_writes: self.unsafe_writes,
            attributes: self.attributes.clone(),
        };
        let mut copy = Copy::of_file(self.dest.clone(), download.path().to_path_buf(), attrs);
        let plan = copy.check(want_diff)?;
        self.found.copy = Some(copy);
        self.found.download = Some(download);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        match &mut self.found.copy {
            Some(copy) => copy.apply(plan),
            None => self
                .attributes()
                .apply(&self.dest, plan, true)
                .and_then(|()| fsutil::apply_file_flags(&self.dest, plan)),
        }
    }

    fn values(&self, values: &mut Map<String, Value>) {
        if let Some(copy) = &self.found.copy {
            copy.values(values);
            values.remove("checksum");
        } else {
            fsutil::attribute_values(&self.dest, values);
        }
        values.insert("dest".into(), self.dest.display().to_string().into());
        values.insert("url".into(), urls::mask_url(&self.url).into());
        values.insert("msg".into(), self.found.msg.clone().into());
        values.insert("elapsed".into(), self.found.elapsed.into());
        if self.dest.is_file() {
            values.insert("state".into(), "file".into());
        }
        // A 304 answer ends Ansible's module before it knows checksums.
        if self.found.status != Some(304) {
            let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
            values.insert("checksum_src".into(), text(&self.found.checksum_src));
            values.insert("checksum_dest".into(), text(&self.found.checksum_dest));
        }
        if let Some(status) = self.found.status {
            values.insert("status_code".into(), status.into());
        }
    }

    fn dry_run(&mut self, check_mode: bool) {
        self.check_mode = check_mode;
    }

    fn validate(&self) -> Result<(), ModuleError> {
        if self.dest.as_os_str().is_empty() {
            return Err(ModuleError::Args("get_url: dest is required".into()));
        }
        if let Some(tmp) = &self.tmp_dest
            && !tmp.is_dir()
        {
            return Err(ModuleError::Failed(if tmp.exists() {
                format!("{} is a file but should be a directory.", tmp.display())
            } else {
                format!("{} directory does not exist.", tmp.display())
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_url(args: serde_json::Value, check_mode: bool) -> crate::Outcome {
        let mut request = crate::Request::new("get_url", args.as_object().unwrap().clone());
        request.check_mode = check_mode;
        crate::run(&request)
    }

    #[test]
    fn a_file_url_is_copied_once_and_check_mode_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src.txt"), dir.path().join("dest.txt"));
        fs::write(&src, "payload\n").unwrap();
        let sum = {
            use sha2::Digest as _;
            let d = sha2::Sha256::digest(b"payload\n");
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let args = serde_json::json!({
            "url": format!("file://{}", src.display()), "dest": dest,
            "checksum": format!("sha256:{sum}"), "mode": "0600",
        });
        let dry = get_url(args.clone(), true);
        assert!(dry.changed && !dry.failed, "{dry:?}");
        assert!(!dest.exists());
        let first = get_url(args.clone(), false);
        assert!(first.changed, "{first:?}");
        assert_eq!(fs::read_to_string(&dest).unwrap(), "payload\n");
        assert_eq!(first.values["checksum_src"], fsutil::sha1_hex(b"payload\n"));
        let again = get_url(args.clone(), false);
        assert!(!again.changed, "{again:?}");
        assert_eq!(again.values["msg"], "file already exists");
        fs::write(&dest, "tampered\n").unwrap();
        assert!(get_url(args, false).changed);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "payload\n");
    }

    #[test]
    fn checksum_files_are_read_in_gnu_and_bsd_style() {
        let text = "abc  other.tgz\ndef *file.tgz\nSHA256 (x.tgz) = 123\n";
        let lines = digest_lines("file.tgz", text);
        assert!(lines.contains(&("def".into(), "file.tgz".into())));
        assert!(lines.contains(&("123".into(), "x.tgz".into())));
        assert_eq!(digest_lines("f", "abc\n"), vec![("abc".into(), "f".into())]);
    }
}
