//! The inventory parsers: INI and YAML inventories, host ranges (`web[01:20]`) and host
//! patterns (`web:&db:!x`, `~regex`, `g[1:]`). The first line of the input is a pattern, the
//! rest an inventory; both are read, every host's variables merged and the inventory shown as
//! `ansible-inventory` would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use settle_inventory::{Inventory, ShowOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // SAFETY: set before the first input is read; the loader reads it on this thread only.
    unsafe { std::env::set_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "ignore") };
    let (pattern, body) = text.split_once('\n').unwrap_or((text, ""));
    let _ = settle_inventory::parse_address(pattern);
    // The file's name decides nothing but the format (a `.yml` is YAML): try both readings.
    for name in ["hosts", "hosts.yml"] {
        let inventory = match Inventory::parse_str(body, name) {
            Ok(inventory) => inventory,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let _ = inventory.select(pattern);
        let _ = inventory.resolve_limit(pattern);
        let hosts: Vec<String> = inventory.hosts().map(|h| h.name.clone()).collect();
        for host in &hosts {
            let _ = inventory.host_vars(host);
            let _ = inventory.magic_vars(host);
        }
        let _ = inventory.to_list_json();
        let _ = inventory.to_graph("all");
        let shown = ShowOptions {
            vars: true,
            ..ShowOptions::default()
        };
        let _ = settle_inventory::python_json(&inventory.list_json(&shown));
        let _ = inventory.graph("all", &shown);
    }
});
