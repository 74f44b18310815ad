//! A host's facts, held once.
//!
//! Ansible keeps a host's facts in its fact cache under the names the modules returned them
//! (`ansible_distribution`, `ansible_local`, `getent_passwd`) and shows that one map two ways:
//! as `ansible_facts`, each name without its `ansible_` prefix (`ansible_local` keeps it), and,
//! with `inject_facts_as_vars` (the default), each fact as a variable of its own under its full
//! name, less the names a fact may not take (interpreters, `_ansible_*`). Without injection only
//! `ansible_local` is a variable of its own, `{}` when there is none.
//!
//! Gathered facts are most of what a host costs the controller (a hundred facts, 14 KB of JSON,
//! ten times that as parsed values), so they are held once, each fact as its JSON text, and
//! parsed when a task reads it: both views are answered from the one map. Hosts of one fleet
//! report mostly the same names and values (the distribution, the kernel, the Python), so each
//! text is shared by every host that has it rather than copied into each.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::{Unpoisoned, Vars};

/// A host's facts (see the module's page).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Each fact under its name in `ansible_facts`, in the order the names first came.
    entries: IndexMap<Arc<str>, Fact>,
    /// A variable whose slot in `ansible_facts` a fact of the other spelling took (a module
    /// returned both `foo` and `ansible_foo`): its own value, by its full name. Rarely any.
    shadowed: IndexMap<Box<str>, Box<str>>,
}

#[derive(Clone, Debug)]
struct Fact {
    /// The value as JSON text.
    json: Arc<str>,
    /// Whether the fact's own name is `ansible_` and its key (else the key itself).
    prefixed: bool,
}

/// `INJECT_FACTS_AS_VARS` (`ANSIBLE_INJECT_FACT_VARS`, `inject_facts_as_vars` in ansible.cfg;
/// true unless set to one of Ansible's words for false), read once per run.
pub fn inject_facts_as_vars() -> bool {
    static INJECT: OnceLock<bool> = OnceLock::new();
    *INJECT.get_or_init(|| match std::env::var("ANSIBLE_INJECT_FACT_VARS") {
        Ok(v) => crate::template::json_bool(&Value::String(v)),
        Err(_) => true,
    })
}

/// The key under `ansible_facts` of a fact named `name` (Ansible's `namespace_facts`).
fn key_of(name: &str) -> &str {
    match name.strip_prefix("ansible_") {
        Some(short) if name != "ansible_local" => short,
        _ => name,
    }
}

/// The name of the fact under `key` (the inverse of [`key_of`]).
fn name_of(key: &str, prefixed: bool) -> String {
    match prefixed {
        true => format!("ansible_{key}"),
        false => key.to_string(),
    }
}

/// Whether a fact stays out of the variables of its own (Ansible's `clean_facts`: a fact may
/// not set the host's interpreter; `_ansible_*` are internal marks).
fn hidden_as_variable(name: &str) -> bool {
    (name.starts_with("ansible_") && name.ends_with("_interpreter")) || name.starts_with("_ansible")
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

fn text(value: &Value) -> Arc<str> {
    shared(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// Texts up to this long are shared between hosts; longer ones are rarely the same twice.
const SHARED_TEXT_MAX: usize = 4096;
/// At most this many texts are kept for sharing, so a run that sets ever new facts (set_fact
/// in a long loop) cannot grow the pool without end: past it, new texts are each host's own.
const SHARED_TEXTS_MAX: usize = 100_000;

/// The one copy of `text` for the run (see the module's page).
fn shared(text: &str) -> Arc<str> {
    static POOL: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Mutex::default);
    if text.len() > SHARED_TEXT_MAX {
        return text.into();
    }
    let mut pool = POOL.lock().unpoisoned();
    if let Some(kept) = pool.get(text) {
        return Arc::clone(kept);
    }
    let new: Arc<str> = text.into();
    if pool.len() < SHARED_TEXTS_MAX {
        pool.insert(Arc::clone(&new));
    }
    new
}

impl Facts {
    /// Files facts a module returned (`ansible_facts` of its result), each under the name it
    /// came by: later values replace earlier ones of the same name.
    pub fn set(&mut self, returned: &Map<String, Value>) {
        for (name, value) in returned {
            let key = key_of(name);
            let prefixed = key != name;
            self.shadowed.shift_remove(name.as_str());
            let fact = Fact {
                json: text(value),
                prefixed,
            };
            match self.entries.get_mut(key) {
                Some(old) if old.prefixed != prefixed => {
                    // `foo` and `ansible_foo`: the newer takes `ansible_facts.foo`, the older
                    // keeps its value as a variable.
                    let old = std::mem::replace(old, fact);
                    self.shadowed.insert(
                        name_of(key, old.prefixed).into_boxed_str(),
                        old.json.as_ref().into(),
                    );
                }
                Some(old) => *old = fact,
                None => {
                    self.entries.insert(shared(key), fact);
                }
            }
        }
    }

    /// Whether `gather_facts` has run on the host (its `_ansible_facts_gathered` mark).
    pub fn gathered(&self) -> bool {
        self.entries
            .get("_ansible_facts_gathered")
            .is_some_and(|f| parse(&f.json) == Value::Bool(true))
    }

    /// `ansible_facts`: every fact, each under its name without the `ansible_` prefix.
    pub fn namespaced(&self) -> Map<String, Value> {
        self.entries
            .iter()
            .map(|(k, f)| (k.to_string(), parse(&f.json)))
            .collect()
    }

    /// The facts under the names they came by, as the fact cache keeps them.
    pub fn by_name(&self) -> Vars {
        let mut all: Vars = self
            .entries
            .iter()
            .map(|(k, f)| (name_of(k, f.prefixed), parse(&f.json)))
            .collect();
        for (name, json) in &self.shadowed {
            all.insert(name.to_string(), parse(json));
        }
        all
    }

    /// The fact a variable name stands for, as JSON text, if the facts define that variable.
    fn variable(&self, name: &str) -> Option<&str> {
        if !inject_facts_as_vars() || hidden_as_variable(name) {
            return None;
        }
        if let Some(json) = self.shadowed.get(name) {
            return Some(json);
        }
        let key = key_of(name);
        let fact = self.entries.get(key)?;
        (fact.prefixed == (key != name)).then_some(&*fact.json)
    }

    /// Whether the facts define the variable `name` (`ansible_facts`, or a fact of its own).
    pub fn defines(&self, name: &str) -> bool {
        match name {
            "ansible_facts" => true,
            "ansible_local" if !inject_facts_as_vars() => true,
            _ => self.variable(name).is_some(),
        }
    }

    /// The value of the variable `name` as the facts define it.
    pub fn get(&self, name: &str) -> Option<Value> {
        match name {
            "ansible_facts" => Some(Value::Object(self.namespaced())),
            // Without injection, `ansible_local` is still a variable of its own, as in Ansible.
            "ansible_local" if !inject_facts_as_vars() => Some(
                self.entries
                    .get("ansible_local")
                    .map_or_else(|| Value::Object(Map::new()), |f| parse(&f.json)),
            ),
            _ => self.variable(name).map(parse),
        }
    }

    /// The names of the variables the facts define: `ansible_facts` first.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec!["ansible_facts".to_string()];
        if !inject_facts_as_vars() {
            names.push("ansible_local".into());
            return names;
        }
        for (key, fact) in &self.entries {
            let name = name_of(key, fact.prefixed);
            if !hidden_as_variable(&name) {
                names.push(name);
            }
        }
        names.extend(
            self.shadowed
                .keys()
                .filter(|n| !hidden_as_variable(n))
                .map(|n| n.to_string()),
        );
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(returned: Value) -> Facts {
        let mut f = Facts::default();
        if let Value::Object(map) = returned {
            f.set(&map);
        }
        f
    }

    #[test]
    fn one_map_answers_ansible_facts_and_the_variables() {
        let f = facts(json!({
            "ansible_distribution": "Debian",
            "ansible_local": {"pref": {"a": 1}},
            "getent_passwd": {"root": ["x"]},
            "ansible_python_interpreter": "/bin/py",
            "_ansible_facts_gathered": true,
        }));
        assert_eq!(
            f.get("ansible_facts"),
            Some(json!({
                "distribution": "Debian",
                "ansible_local": {"pref": {"a": 1}},
                "getent_passwd": {"root": ["x"]},
                "python_interpreter": "/bin/py",
                "_ansible_facts_gathered": true,
            }))
        );
        assert_eq!(f.get("ansible_distribution"), Some(json!("Debian")));
        assert_eq!(f.get("ansible_local"), Some(json!({"pref": {"a": 1}})));
        assert_eq!(f.get("getent_passwd"), Some(json!({"root": ["x"]})));
        // Names that are not what the fact came by, and facts kept out of the variables.
        assert_eq!(f.get("distribution"), None);
        assert_eq!(f.get("ansible_getent_passwd"), None);
        assert_eq!(f.get("local"), None);
        assert_eq!(f.get("ansible_python_interpreter"), None);
        assert_eq!(f.get("_ansible_facts_gathered"), None);
        assert!(f.gathered());
        assert_eq!(
            f.names(),
            [
                "ansible_facts",
                "ansible_distribution",
                "ansible_local",
                "getent_passwd"
            ]
        );
        assert_eq!(
            f.by_name().keys().collect::<Vec<_>>(),
            [
                "ansible_distribution",
                "ansible_local",
                "getent_passwd",
                "ansible_python_interpreter",
                "_ansible_facts_gathered"
            ]
        );
    }

    #[test]
    fn both_spellings_of_a_name_keep_their_own_variables() {
        let mut f = facts(json!({"foo": 1}));
        f.set(json!({"ansible_foo": 2}).as_object().unwrap_or(&Map::new()));
        assert_eq!(f.get("foo"), Some(json!(1)));
        assert_eq!(f.get("ansible_foo"), Some(json!(2)));
        assert_eq!(f.get("ansible_facts"), Some(json!({"foo": 2})));
        f.set(json!({"foo": 3}).as_object().unwrap_or(&Map::new()));
        assert_eq!(f.get("foo"), Some(json!(3)));
        assert_eq!(f.get("ansible_foo"), Some(json!(2)));
        assert_eq!(f.get("ansible_facts"), Some(json!({"foo": 3})));
    }

    #[test]
    fn no_facts_still_define_ansible_facts() {
        let f = Facts::default();
        assert_eq!(f.get("ansible_facts"), Some(json!({})));
        assert!(f.defines("ansible_facts"));
        assert!(!f.defines("ansible_local"));
        assert!(!f.gathered());
    }
}
