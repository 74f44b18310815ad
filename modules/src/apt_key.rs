//! `apt_key`: a key in apt's trusted keys, added or removed with `apt-key` as Ansible's module
//! does it (bookworm still has the deprecated `apt-key`, which needs `gpg`). The key's id comes
//! from `id`, or is read with `gpg --with-colons` from the key given (`data`, `file`, `url`),
//! and is compared with `apt-key adv --list-public-keys`, so check mode predicts exactly.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean};
use crate::process::{Ran, run, run_with_input};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "apt_key",
    args: &[
        "id",
        "url",
        "data",
        "file",
        "keyring",
        "validate_certs",
        "keyserver",
        "state",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AptKey {
    id: Option<String>,
    url: Option<String>,
    data: Option<String>,
    file: Option<String>,
    keyring: Option<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    validate_certs: bool,
    keyserver: Option<String>,
    #[serde(default)]
    state: Presence,
    #[serde(skip)]
    work: Work,
}

#[derive(Debug, Default)]
struct Work {
    apt_key: String,
    /// The key's bytes when they were downloaded from `url` (or given as `data`).
    data: Option<Vec<u8>>,
    id: Option<String>,
    short_id: String,
    fingerprint: String,
    key_id: String,
    short_format: bool,
    before: Vec<String>,
    after: Option<Vec<String>>,
}

/// Ansible's `parse_key_id`: (the last 8 hex digits, the last 16, all of them), upper case.
fn parse_key_id(id: &str) -> Option<(String, String, String)> {
    let mut id = id.to_uppercase();
    if let Some(rest) = id.strip_prefix("0X") {
        id = rest.to_string();
    }
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let len = id.len();
    if len != 8 && len != 16 && len <= 16 {
        return None;
    }
    let short = id[len - 8..].to_string();
    let fingerprint = if len > 16 {
        id[len - 16..].to_string()
    } else {
        id.clone()
    };
    Some((short, fingerprint, id))
}

/// The key ids of `pub`/`sub` lines that have not expired, in apt-key's (`rsa4096/ID`) or
/// gpg's colon format.
fn parse_keys(output: &str, short: bool) -> Vec<String> {
    output
        .lines()
        .filter(|l| (l.starts_with("pub") || l.starts_with("sub")) && !l.contains("expired"))
        .filter_map(|l| {
            let apt = l
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.split_once('/'))
                .filter(|(_, rest)| !rest.contains('/'))
                .map(|(_, id)| id.to_string());
            apt.or_else(|| l.split(':').nth(4).map(str::to_string))
        })
        .map(|k| {
            if short && k.len() > 8 {
                k[k.len() - 8..].to_string()
            } else {
                k
            }
        })
        .collect()
}

fn failed_run(msg: String, ran: &Ran) -> ModuleError {
    let mut values = Map::new();
    values.insert("rc".into(), ran.rc.into());
    values.insert("stdout".into(), ran.stdout.clone().into());
    values.insert("stderr".into(), ran.stderr.clone().into());
    ModuleError::FailedWith { msg, values }
}

impl AptKey {
    fn apt_key_argv(&self, rest: &[&str]) -> Vec<String> {
        let mut argv = vec![self.work.apt_key.clone()];
        if let Some(keyring) = &self.keyring {
            argv.push("--keyring".into());
            argv.push(keyring.clone());
        }
        argv.extend(rest.iter().map(|s| s.to_string()));
        argv
    }

    fn all_keys(&self) -> Result<Vec<String>, ModuleError> {
        // gpg creates a keyring it is pointed at that does not exist: one that is not there
        // holds no keys, and listing it must not make it (check mode writes nothing).
        if let Some(keyring) = &self.keyring
            && !std::path::Path::new(keyring).exists()
        {
            return Ok(Vec::new());
        }
        let argv = self.apt_key_argv(&["adv", "--list-public-keys", "--keyid-format=long"]);
        let ran = run(&argv, &[])?;
        if !ran.ok() {
            return Err(failed_run("Unable to list public keys".into(), &ran));
        }
        Ok(parse_keys(&ran.stdout, self.work.short_format))
    }

    fn download(&self, url: &str) -> Result<Vec<u8>, ModuleError> {
        crate::urls::get_bytes(url, self.validate_certs)
            .map_err(|e| ModuleError::Failed(format!("Failed to download key at {url}: {e}")))
    }

    /// The first key id gpg reads in a key file or in the key's bytes.
    fn key_id_of(
        &self,
        file: Option<&str>,
        data: Option<&[u8]>,
    ) -> Result<Option<String>, ModuleError> {
        let gpg = bin_path::required("gpg")?;
        let env = [("LANG", "C"), ("LANGUAGE", "C"), ("LC_MESSAGES", "C")];
        let ran = match (file, data) {
            (Some(file), _) => run(&[gpg.as_str(), "--with-colons", file], &env)?,
            (None, Some(data)) => {
                run_with_input(&[gpg.as_str(), "--with-colons", "-"], data, &env)?
            }
            (None, None) => return Ok(None),
        };
        if !ran.ok() {
            let from = if file.is_some() && data.is_none() {
                file.unwrap_or_default().to_string()
            } else {
                "inline data".to_string()
            };
            return Err(failed_run(
                format!("Unable to extract key from '{from}'"),
                &ran,
            ));
        }
        Ok(parse_keys(&ran.stdout, false).into_iter().next())
    }

    fn has_key(&self, keys: &[String]) -> bool {
        if self.work.short_format {
            keys.contains(&self.work.short_id)
        } else {
            keys.contains(&self.work.fingerprint)
        }
    }

    fn fail(&self, msg: impl Into<String>) -> ModuleError {
        let mut values = Map::new();
        self.values(&mut values);
        ModuleError::FailedWith {
            msg: msg.into(),
            values,
        }
    }

    fn add(&self) -> Result<(), ModuleError> {
        let (argv, input) = if let Some(file) = &self.file {
            (self.apt_key_argv(&["add", file]), None)
        } else if let Some(keyserver) = &self.keyserver {
            let mut rest = vec!["adv", "--no-tty", "--keyserver", keyserver.as_str()];
            let proxy = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()));
            let proxy = proxy.map(|p| format!("http-proxy={p}"));
            if let Some(proxy) = &proxy {
                rest.extend(["--keyserver-options", proxy.as_str()]);
            }
            rest.extend(["--recv", self.work.key_id.as_str()]);
            let argv = self.apt_key_argv(&rest);
            let mut last = None;
            for _ in 0..5 {
                let ran = run(&argv, &[])?;
                if ran.ok() {
                    return Ok(());
                }
                last = Some(ran);
            }
            let ran = last.unwrap_or(Ran {
                rc: -1,
                stdout: String::new(),
                stderr: String::new(),
            });
            let msg = if ran.rc == 2 && ran.stdout.contains("not found on keyserver") {
                format!(
                    "Key {} not found on keyserver {keyserver}",
                    self.work.key_id
                )
            } else {
                format!(
                    "Error fetching key {} from keyserver: {keyserver}",
                    self.work.key_id
                )
            };
            return Err(failed_run(msg, &ran));
        } else if let Some(data) = &self.work.data {
            (self.apt_key_argv(&["add", "-"]), Some(data.clone()))
        } else if let Some(url) = &self.url {
            (self.apt_key_argv(&["add", "-"]), Some(self.download(url)?))
        } else {
            return Err(self.fail("No key to add ... how did i get here?!?!"));
        };
        let ran = match &input {
            Some(data) => run_with_input(&argv, data, &[])?,
            None => run(&argv, &[])?,
        };
        if !ran.ok() {
            let msg = match &self.file {
                Some(file) if input.is_none() => format!("Unable to add a key from file {file}"),
                _ => "Unable to add a key from binary data".into(),
            };
            return Err(failed_run(msg, &ran));
        }
        Ok(())
    }
}

impl Resource for AptKey {
    fn validate(&self) -> Result<(), ModuleError> {
        let given: Vec<&str> = [
            ("data", self.data.is_some()),
            ("file", self.file.is_some()),
            ("keyserver", self.keyserver.is_some()),
            ("url", self.url.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
        if given.len() > 1 {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: data|file|keyserver|url".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        self.work.apt_key = bin_path::required("apt-key").map_err(|e| {
            ModuleError::Failed(format!(
                "{e}. Apt-key has been deprecated. See the deb822_repository as an alternative."
            ))
        })?;
        // apt-key itself runs gpg; Ansible ends "ok" without it, settle says so.
        bin_path::required("gpg").map_err(|e| {
            ModuleError::Failed(format!(
                "{e}: apt_key needs gpg on the host (package gnupg)"
            ))
        })?;
        self.work.data = self.data.as_ref().map(|d| d.as_bytes().to_vec());
        let mut id = self.id.clone().filter(|i| !i.is_empty());
        if id.is_none() {
            if self.keyserver.is_some() {
                return Err(ModuleError::Failed(
                    "Missing key_id, required with keyserver.".into(),
                ));
            }
            if let Some(url) = &self.url {
                self.work.data = Some(self.download(url)?);
            }
            id = if let Some(file) = &self.file {
                self.key_id_of(Some(file), None)?
            } else {
                self.key_id_of(None, self.work.data.as_deref())?
            };
        }
        self.work.id = id.clone();
        let Some((short, fingerprint, key_id)) = id.as_deref().and_then(parse_key_id) else {
            let mut values = Map::new();
            values.insert("id".into(), id.map_or(Value::Null, Value::from));
            return Err(ModuleError::FailedWith {
                msg: "Invalid key_id".into(),
                values,
            });
        };
        self.work.short_format = key_id.len() == 8;
        self.work.short_id = short;
        self.work.fingerprint = fingerprint;
        self.work.key_id = key_id;
        self.work.before = self.all_keys()?;
        let mut plan = Plan::default();
        let present = self.has_key(&self.work.before);
        let wanted = self.state == Presence::Present;
        let found = if self.state == Presence::Absent {
            self.work.before.contains(&self.work.fingerprint)
        } else {
            present
        };
        if found != wanted {
            plan.change(
                "key",
                found.then(|| self.work.key_id.clone()),
                wanted.then(|| self.work.key_id.clone()),
            );
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        match self.state {
            Presence::Present => {
                self.add()?;
                let after = self.all_keys()?;
                self.work.after = Some(after.clone());
                if !self.has_key(&after) {
                    return Err(self.fail("apt-key did not return an error, but failed to add the key (check that the id is correct and *not* a subkey)"));
                }
            }
            Presence::Absent => {
                let argv = self.apt_key_argv(&["del", &self.work.short_id]);
                let ran = run(&argv, &[])?;
                if !ran.ok() {
                    return Err(failed_run(
                        format!("Unable to remove a key with id {}", self.work.short_id),
                        &ran,
                    ));
                }
                let after = self.all_keys()?;
                self.work.after = Some(after.clone());
                if after.contains(&self.work.fingerprint) {
                    return Err(self.fail("apt-key did not return an error, but the key was not removed (check that the id is correct and *not* a subkey)"));
                }
            }
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert(
            "id".into(),
            self.work.id.clone().map_or(Value::Null, Value::from),
        );
        values.insert("short_id".into(), self.work.short_id.clone().into());
        values.insert("fp".into(), self.work.fingerprint.clone().into());
        values.insert("key_id".into(), self.work.key_id.clone().into());
        values.insert("before".into(), self.work.before.clone().into());
        if let Some(after) = &self.work.after {
            values.insert("after".into(), after.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_split_as_ansible_splits_them() {
        assert_eq!(
            parse_key_id("0x36a1d7869245c8950f966e92d8576a8ba88d21e9"),
            Some((
                "A88D21E9".into(),
                "D8576A8BA88D21E9".into(),
                "36A1D7869245C8950F966E92D8576A8BA88D21E9".into()
            ))
        );
        assert_eq!(parse_key_id("12345"), None);
        assert_eq!(parse_key_id("xyz12345"), None);
    }

    #[test]
    fn keys_listed_by_apt_key_and_by_gpg() {
        let apt = "/etc/apt/trusted.gpg\n--------------------\npub   rsa4096/648ACFD622F3D138 2019-04-15 [SC] [expires: 2027-04-13]\nsub   rsa4096/1234567812345678 2019-04-15 [E] [expired: 2020-01-01]\n";
        assert_eq!(parse_keys(apt, false), vec!["648ACFD622F3D138"]);
        assert_eq!(parse_keys(apt, true), vec!["22F3D138"]);
        let gpg = "pub:-:255:22:ABCDEF0123456789:1700000000:::-:\nfpr:::::::::X:\n";
        assert_eq!(parse_keys(gpg, false), vec!["ABCDEF0123456789"]);
    }
}
