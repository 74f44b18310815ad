//! Ansible's `hash_behaviour`: with `merge` (`ANSIBLE_HASH_BEHAVIOUR`, ansible.cfg's
//! `hash_behaviour`), a dictionary variable set at two places merges key by key, recursively,
//! instead of the later replacing the earlier.

use std::sync::OnceLock;

use serde_json::Value;

use crate::Vars;

/// Whether dictionaries merge (`hash_behaviour = merge`); read once.
pub fn hash_behaviour_merge() -> bool {
    static MERGE: OnceLock<bool> = OnceLock::new();
    *MERGE.get_or_init(|| {
        std::env::var("ANSIBLE_HASH_BEHAVIOUR")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("merge"))
    })
}

/// Ansible's `merge_hash`: `high` over `low`, mappings merged key by key, recursively;
/// anything else (lists included) replaced.
pub fn merge_hash(low: &mut Value, high: &Value) {
    match (low, high) {
        (Value::Object(low), Value::Object(high)) => {
            for (key, value) in high {
                match low.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_hash(existing, value)
                    }
                    _ => {
                        low.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (low, high) => *low = high.clone(),
    }
}

/// Ansible's `combine_vars`: `high` over `low`, replacing or (with `merge`) merging.
pub fn combine_vars(low: &mut Vars, high: Vars) {
    if !hash_behaviour_merge() {
        low.extend(high);
        return;
    }
    for (key, value) in high {
        match low.get_mut(&key) {
            Some(existing) => merge_hash(existing, &value),
            None => {
                low.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_hash_merges_mappings_and_replaces_the_rest() {
        let mut low = json!({"a": {"x": 1, "y": [1]}, "b": 1});
        merge_hash(
            &mut low,
            &json!({"a": {"y": [2], "z": {"q": 1}}, "b": {"c": 2}}),
        );
        assert_eq!(
            low,
            json!({"a": {"x": 1, "y": [2], "z": {"q": 1}}, "b": {"c": 2}})
        );
    }
}
