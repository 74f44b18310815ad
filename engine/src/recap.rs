//! The counts behind `PLAY RECAP`, and the exit code they mean.

use std::collections::BTreeMap;

/// One host's counts. `ok` counts every result that did not fail or skip, changed ones included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    pub ok: usize,
    pub changed: usize,
    pub unreachable: usize,
    pub failures: usize,
    pub skipped: usize,
    pub rescued: usize,
    pub ignored: usize,
}

/// Every host's counts, sorted by name as Ansible's recap is.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    hosts: BTreeMap<String, HostStats>,
}

impl Stats {
    pub fn host(&mut self, host: &str) -> &mut HostStats {
        self.hosts.entry(host.to_string()).or_default()
    }

    pub fn get(&self, host: &str) -> Option<&HostStats> {
        self.hosts.get(host)
    }

    pub fn hosts(&self) -> impl Iterator<Item = (&String, &HostStats)> {
        self.hosts.iter()
    }

    /// `ansible-playbook`'s exit code: 4 if a host was unreachable, else 2 if one failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.values().any(|s| s.unreachable > 0) {
            4
        } else if self.hosts.values().any(|s| s.failures > 0) {
            2
        } else {
            0
        }
    }
}
