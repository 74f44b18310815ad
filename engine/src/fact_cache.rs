//! The fact cache, as Ansible's `jsonfile` cache plugin keeps it: one JSON file per host,
//! `<connection>/<prefix><host>`, holding the host's facts (gathered facts and `set_fact:
//! cacheable: true` values), read back by later runs until it is older than the timeout.
//!
//! Configured as Ansible configures it: `ANSIBLE_CACHE_PLUGIN` (`fact_caching` in ansible.cfg),
//! `ANSIBLE_CACHE_PLUGIN_CONNECTION`, `ANSIBLE_CACHE_PLUGIN_PREFIX` and
//! `ANSIBLE_CACHE_PLUGIN_TIMEOUT` (seconds, 86400 by default, 0 for never).
//!
//! Also the `gathering` setting (`ANSIBLE_GATHERING`), which decides from a play's
//! `gather_facts` and what the cache holds whether facts are gathered.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::Vars;

/// Ansible's `DEFAULT_GATHERING`: when a play gathers facts on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gathering {
    /// Unless the play says `gather_facts: false` (the default).
    Implicit,
    /// Only when the play says `gather_facts: true`.
    Explicit,
    /// As implicit, but not on hosts whose facts were gathered already (this run, or in the
    /// fact cache).
    Smart,
}

impl Gathering {
    /// The setting `ANSIBLE_GATHERING` (or `gathering` in ansible.cfg) names; implicit when
    /// unset or not one of Ansible's three.
    pub fn from_env() -> Gathering {
        match std::env::var("ANSIBLE_GATHERING")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "explicit" => Gathering::Explicit,
            "smart" => Gathering::Smart,
            _ => Gathering::Implicit,
        }
    }

    /// Whether a play with this `gather_facts` has a fact-gathering step at all.
    pub fn plans(self, gather_facts: Option<bool>) -> bool {
        match self {
            Gathering::Explicit => gather_facts == Some(true),
            Gathering::Implicit | Gathering::Smart => gather_facts != Some(false),
        }
    }

    /// Whether the step gathers on a host, given whether its facts were `gathered` before
    /// (Ansible looks for the `_ansible_facts_gathered` mark its `gather_facts` leaves).
    pub fn gathers_on(self, gathered: bool) -> bool {
        self != Gathering::Smart || !gathered
    }
}

#[derive(Debug, Clone)]
pub struct FactCache {
    dir: PathBuf,
    prefix: String,
    /// `None`: cached facts never expire.
    timeout: Option<Duration>,
}

impl FactCache {
    /// The cache the environment asks for; `None` for Ansible's default `memory` cache (facts
    /// live as long as the run, which settle's host state already does).
    pub fn from_env() -> Result<Option<FactCache>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(plugin) = var("ANSIBLE_CACHE_PLUGIN") else {
            return Ok(None);
        };
        let plugin = plugin.trim();
        match plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin) {
            "memory" => return Ok(None),
            "jsonfile" => {}
            other => {
                return Err(format!(
                    "the fact cache plugin '{other}' is not one settle has: use jsonfile or memory"
                ));
            }
        }
        let Some(dir) = var("ANSIBLE_CACHE_PLUGIN_CONNECTION") else {
            return Err(
                "the jsonfile fact cache needs a folder: set fact_caching_connection (ANSIBLE_CACHE_PLUGIN_CONNECTION)"
                    .into(),
            );
        };
        let dir = match dir.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(rest))
                .unwrap_or_else(|| PathBuf::from(&dir)),
            None => PathBuf::from(&dir),
        };
        let timeout = match var("ANSIBLE_CACHE_PLUGIN_TIMEOUT") {
            None => Some(86400.0),
            Some(t) => Some(t.trim().parse::<f64>().map_err(|_| {
                format!("ANSIBLE_CACHE_PLUGIN_TIMEOUT is not a number of seconds: {t}")
            })?),
        }
        .filter(|secs| *secs > 0.0)
        // Longer than a Duration holds (`inf`, `1e300`) is as good as never expiring.
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
        Ok(Some(FactCache {
            dir,
            prefix: var("ANSIBLE_CACHE_PLUGIN_PREFIX").unwrap_or_default(),
            timeout,
        }))
    }

    fn file(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{}{host}", self.prefix))
    }

    /// The host's cached facts, unless there are none, or they expired, or the file is not a
    /// JSON object (Ansible then warns and goes on without them).
    pub fn load(&self, host: &str) -> Option<Vars> {
        let path = self.file(host);
        let meta = std::fs::metadata(&path).ok()?;
        if let (Some(timeout), Ok(modified)) = (self.timeout, meta.modified())
            && SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age > timeout)
        {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(facts) => Some(facts),
            Err(e) => {
                eprintln!(
                    "[WARNING]: error in 'jsonfile' cache plugin while trying to read {}: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// Writes the host's facts. A cache that cannot be written warns: the run goes on.
    pub fn store(&self, host: &str, facts: &Vars) {
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
            std::fs::write(
                self.file(host),
                serde_json::to_string(facts).unwrap_or_default(),
            )
        });
        if let Err(e) = written {
            eprintln!(
                "[WARNING]: error in 'jsonfile' cache plugin while trying to write to {}: {e}",
                self.file(host).display()
            );
        }
    }

    /// `--flush-cache`: forget the host's cached facts.
    pub fn remove(&self, host: &str) {
        let _ = std::fs::remove_file(self.file(host));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathering_modes_decide_as_ansible() {
        assert!(Gathering::Implicit.plans(None));
        assert!(!Gathering::Implicit.plans(Some(false)));
        assert!(!Gathering::Explicit.plans(None));
        assert!(Gathering::Explicit.plans(Some(true)));
        assert!(Gathering::Smart.plans(None));
        assert!(!Gathering::Smart.gathers_on(true));
        assert!(Gathering::Implicit.gathers_on(true));
        assert!(Gathering::Smart.gathers_on(false));
    }
}
