//! The counts behind `PLAY RECAP`, and the exit code they mean.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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
    /// Failures forgiven by `meta: clear_host_errors`: still in the recap, not in the exit
    /// code, as in Ansible.
    pub cleared: usize,
}

/// Every host's counts, sorted by name as Ansible's recap is.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    hosts: BTreeMap<String, HostStats>,
    /// `set_stats` data: per host, and for the whole run under `_run`, as Ansible keeps it.
    custom: BTreeMap<String, Map<String, Value>>,
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

    /// Sets a custom stat (`set_stats` with `aggregate: false`); `None` is the whole run.
    pub fn set_custom(&mut self, host: Option<&str>, key: &str, value: Value) {
        self.custom
            .entry(host.unwrap_or("_run").to_string())
            .or_default()
            .insert(key.to_string(), value);
    }

    /// Adds to a custom stat as Ansible aggregates them: numbers add up, strings and lists join,
    /// mappings merge; a value of another type than the one held is dropped.
    pub fn update_custom(&mut self, host: Option<&str>, key: &str, value: Value) {
        let stats = self
            .custom
            .entry(host.unwrap_or("_run").to_string())
            .or_default();
        let Some(held) = stats.get_mut(key) else {
            stats.insert(key.to_string(), value);
            return;
        };
        match (held, value) {
            (Value::Number(a), Value::Number(b)) => {
                let sum = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
                    _ => None,
                };
                let sum = sum.unwrap_or_else(|| {
                    Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0))
                });
                *a = match sum {
                    Value::Number(n) => n,
                    _ => return,
                };
            }
            (Value::String(a), Value::String(b)) => a.push_str(&b),
            (Value::Array(a), Value::Array(b)) => a.extend(b),
            (held @ Value::Object(_), b @ Value::Object(_)) => merge(held, b),
            _ => {}
        }
    }

    /// The custom stats, each host's and then the run's (`_run`).
    pub fn custom(&self) -> &BTreeMap<String, Map<String, Value>> {
        &self.custom
    }

    /// `ansible-playbook`'s exit code: 4 if a host was unreachable, else 2 if one failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.values().any(|s| s.unreachable > 0) {
            4
        } else if self.hosts.values().any(|s| s.failures > s.cleared) {
            2
        } else {
            0
        }
    }
}

/// Mappings merged key by key, recursively (Ansible's `merge_hash`); anything else replaced.
pub(crate) fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, other) => *slot = other,
    }
}
