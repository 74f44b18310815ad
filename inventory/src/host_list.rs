//! A comma-separated list of hosts given as the inventory (`-i 'web1,db1:2222,'`), read by
//! Ansible's `host_list` plugin (each name with an optional `:port`), or by `advanced_host_list`
//! (ranges expanded too: `-i 'web[1:3],'`) when `ANSIBLE_INVENTORY_ENABLED` (ansible.cfg's
//! `[inventory] enable_plugins`) lists it before `host_list`.

use std::sync::OnceLock;

use serde_json::Value;

use crate::hostname::{expand_hostpattern, is_value_error, parse_address};
use crate::{Inventory, InventoryError, Vars};

/// The plugin that reads comma-separated lists.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plugin {
    HostList,
    AdvancedHostList,
}

impl Plugin {
    /// The first of the two that `ANSIBLE_INVENTORY_ENABLED` lists (read once), `host_list`
    /// when it lists neither or is not set.
    fn configured() -> Self {
        static PLUGIN: OnceLock<Plugin> = OnceLock::new();
        *PLUGIN.get_or_init(|| {
            let enabled = std::env::var("ANSIBLE_INVENTORY_ENABLED").unwrap_or_default();
            enabled
                .split(',')
                .map(|p| p.trim().trim_start_matches("ansible.builtin."))
                .find_map(|p| match p {
                    "host_list" => Some(Plugin::HostList),
                    "advanced_host_list" => Some(Plugin::AdvancedHostList),
                    _ => None,
                })
                .unwrap_or(Plugin::HostList)
        })
    }
}

/// Adds the hosts of a comma-separated list under `ungrouped`, with their `ansible_port`. A
/// name that is not an address is kept as written, with Ansible's note for `-vvv`.
pub(crate) fn load(inventory: &mut Inventory, list: &str) -> Result<(), InventoryError> {
    let plugin = Plugin::configured();
    for written in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (names, port) = match plugin {
            // A name holding a range is kept whole, port and all: `host_list` takes no ranges.
            Plugin::HostList => match parse_address(written) {
                Some((name, port)) if !name.contains('[') => (vec![name.to_string()], port),
                _ => (vec![written.to_string()], None),
            },
            Plugin::AdvancedHostList => match expand_hostpattern(written) {
                Ok(found) => found,
                // Python's ValueError fails the whole source, as in Ansible.
                Err(e) if is_value_error(&e) => {
                    return Err(InventoryError::Plugin {
                        plugin: "advanced_host_list",
                        message: format!("Invalid data from string, could not parse: {e}"),
                    });
                }
                Err(e) => {
                    inventory.note_vvv(&format!(
                        "Unable to parse address from hostname, leaving unchanged: {e}"
                    ));
                    (vec![written.to_string()], None)
                }
            },
        };
        for name in names {
            if inventory.hosts.contains_key(&name) {
                continue;
            }
            let mut vars = Vars::new();
            if let Some(port) = port {
                vars.insert("ansible_port".into(), Value::from(port));
            }
            inventory.add_host(&name, "ungrouped", vars);
        }
    }
    Ok(())
}
