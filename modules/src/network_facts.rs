//! The facts of Ansible's Linux `network` collector: one `<interface>` fact per interface
//! (from /sys/class/net), its addresses, `interfaces`, `all_ipv4_addresses`,
//! `all_ipv6_addresses`, `default_ipv4`/`default_ipv6` (the route to 8.8.8.8 and to
//! ipv6.google.com, as Ansible asks `ip route get`) and `locally_reachable_ips`. Where Ansible
//! runs `ip`, settle asks the kernel the same questions over netlink (`netlink.rs`), so the
//! values are the ones `ip` prints. When the host has `ethtool`, each interface also gets
//! Ansible's `features` (`ethtool -k`), `timestamping`, `hw_timestamp_filters` and `phc_index`
//! (`ethtool -T`), read from ethtool's own output as Ansible reads it.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::netlink::{self, Address, IFA_F_SECONDARY, RT_TABLE_LOCAL, RTN_LOCAL, RTN_UNICAST};
use crate::{bin_path, process};

/// The destinations whose routes Ansible takes as the default ones.
const DEFAULT_V4: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
const DEFAULT_V6: Ipv6Addr = Ipv6Addr::new(0x2404, 0x6800, 0x400a, 0x800, 0, 0, 0, 0x1012);

/// `/sys/class/net/*/type` numbers as Ansible names them.
fn interface_type(number: &str) -> &'static str {
    match number {
        "1" => "ether",
        "32" => "infiniband",
        "512" => "ppp",
        "772" => "loopback",
        "65534" => "tunnel",
        _ => "unknown",
    }
}

/// The text of a file with surrounding whitespace removed (Ansible's `get_file_content`);
/// `None` when unreadable or empty.
fn content(path: impl AsRef<Path>) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// What /sys/class/net tells of one interface.
fn device_facts(dir: &Path, device: &str) -> Map<String, Value> {
    let mut facts = Map::new();
    facts.insert("device".into(), device.into());
    if let Some(mac) = content(dir.join("address"))
        && mac != "00:00:00:00:00:00"
    {
        facts.insert("macaddress".into(), mac.into());
    }
    if let Some(mtu) = content(dir.join("mtu")).and_then(|m| m.parse::<i64>().ok()) {
        facts.insert("mtu".into(), mtu.into());
    }
    if dir.join("operstate").exists() {
        let state = content(dir.join("operstate"));
        facts.insert("active".into(), (state.as_deref() != Some("down")).into());
    }
    if let Ok(module) = fs::canonicalize(dir.join("device/driver/module"))
        && let Some(name) = module.file_name()
    {
        facts.insert("module".into(), name.to_string_lossy().into_owned().into());
    }
    if dir.join("type").exists() {
        let number = content(dir.join("type")).unwrap_or_default();
        facts.insert("type".into(), interface_type(&number).into());
    }
    if dir.join("bridge").exists() {
        facts.insert("type".into(), "bridge".into());
        let members: Vec<String> = fs::read_dir(dir.join("brif"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        facts.insert("interfaces".into(), json!(members));
        if dir.join("bridge/bridge_id").exists() {
            let id = content(dir.join("bridge/bridge_id")).unwrap_or_default();
            facts.insert("id".into(), id.into());
        }
        if dir.join("bridge/stp_state").exists() {
            let stp = content(dir.join("bridge/stp_state")).as_deref() == Some("1");
            facts.insert("stp".into(), stp.into());
        }
    }
    if dir.join("bonding").exists() {
        facts.insert("type".into(), "bonding".into());
        let words = |file: &str| -> Vec<String> {
            content(dir.join("bonding").join(file))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let first = |file: &str| words(file).into_iter().next().unwrap_or_default();
        facts.insert("slaves".into(), json!(words("slaves")));
        facts.insert("mode".into(), first("mode").into());
        facts.insert("miimon".into(), first("miimon").into());
        facts.insert("lacp_rate".into(), first("lacp_rate").into());
        if let Some(primary) = content(dir.join("bonding/primary")) {
            facts.insert("primary".into(), primary.into());
            if dir.join("bonding/all_slaves_active").exists() {
                let all = content(dir.join("bonding/all_slaves_active")).as_deref() == Some("1");
                facts.insert("all_slaves_active".into(), all.into());
            }
        }
    }
    if dir.join("bonding_slave").exists() {
        let perm = content(dir.join("bonding_slave/perm_hwaddr")).unwrap_or_default();
        facts.insert("perm_macaddress".into(), perm.into());
    }
    if let Ok(target) = fs::read_link(dir.join("device"))
        && let Some(name) = target.file_name()
    {
        facts.insert("pciid".into(), name.to_string_lossy().into_owned().into());
    }
    if let Some(speed) = content(dir.join("speed")).and_then(|s| s.parse::<i64>().ok()) {
        facts.insert("speed".into(), speed.into());
    }
    if let Some(flags) = content(dir.join("flags"))
        .and_then(|f| i64::from_str_radix(f.trim_start_matches("0x"), 16).ok())
    {
        facts.insert("promisc".into(), (flags & 0x100 != 0).into());
    }
    if let Some(ethtool) = bin_path::find("ethtool") {
        ethtool_facts(&ethtool.display().to_string(), device, &mut facts);
    }
    facts
}

/// What `ethtool -k` and `ethtool -T` say of an interface, added when each succeeds (as
/// Ansible's `get_ethtool_data` adds them).
fn ethtool_facts(ethtool: &str, device: &str, facts: &mut Map<String, Value>) {
    if let Ok(ran) = process::run(&[ethtool, "-k", device], &[])
        && ran.ok()
    {
        facts.insert(
            "features".into(),
            Value::Object(ethtool_features(&ran.stdout)),
        );
    }
    if let Ok(ran) = process::run(&[ethtool, "-T", device], &[])
        && ran.ok()
    {
        for (key, value) in ethtool_timestamping(&ran.stdout) {
            facts.insert(key.into(), value);
        }
    }
}

/// `ethtool -k`'s lines `name: value` (sub-features indented), names with `-` turned into `_`;
/// headings (ending in `:`) and lines without a value are left out.
fn ethtool_features(stdout: &str) -> Map<String, Value> {
    let mut features = Map::new();
    for line in stdout.trim().lines() {
        if line.is_empty() || line.ends_with(':') {
            continue;
        }
        // Ansible splits on ": " and takes exactly two parts; a line that has not
        // (ethtool prints none) is left out rather than failing the facts.
        let mut parts = line.split(": ");
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        features.insert(key.trim().replace('-', "_"), value.trim().into());
    }
    features
}

/// `ethtool -T`'s `SOF_TIMESTAMPING_*` and `HWTSTAMP_FILTER_*` names (lower case, in order)
/// and the PTP hardware clock's index when it has one.
fn ethtool_timestamping(stdout: &str) -> Vec<(&'static str, Value)> {
    let names = |prefix: &str| -> Value {
        let mut found = Vec::new();
        let mut rest = stdout;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let word: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                found.push(Value::from(word.to_lowercase()));
            }
            rest = &after[word.len()..];
        }
        Value::Array(found)
    };
    let mut out = vec![
        ("timestamping", names("SOF_TIMESTAMPING_")),
        ("hw_timestamp_filters", names("HWTSTAMP_FILTER_")),
    ];
    let clock = stdout
        .split("PTP Hardware Clock: ")
        .skip(1)
        .find_map(|after| {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<i64>().ok()
        });
    if let Some(index) = clock {
        out.push(("phc_index", index.into()));
    }
    out
}

/// An IPv4 address's facts: `{address, broadcast, netmask, network, prefix}`.
fn ipv4_entry(address: Ipv4Addr, prefix: u8, broadcast: &str) -> Value {
    let bits = u32::from(address);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    json!({
        "address": address.to_string(),
        "broadcast": broadcast,
        "netmask": Ipv4Addr::from(mask).to_string(),
        "network": Ipv4Addr::from(bits & mask).to_string(),
        "prefix": prefix.to_string(),
    })
}

/// The scope of an address as `ip` names it.
fn scope_name(scope: u8) -> String {
    match scope {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

/// The default route of one family, as Ansible reads `ip route get`: `{interface, address,
/// gateway}` (what the route names), or empty.
fn default_route(destination: IpAddr) -> Map<String, Value> {
    let mut facts = Map::new();
    let Some(route) = netlink::route_to(destination) else {
        return facts;
    };
    if route.kind != RTN_UNICAST {
        return facts;
    }
    if let Some(name) = route.oif.and_then(netlink::interface_name) {
        facts.insert("interface".into(), name.into());
    }
    if let Some(src) = route.prefsrc {
        facts.insert("address".into(), src.to_string().into());
    }
    if let Some(gateway) = route.gateway
        && gateway != destination
    {
        facts.insert("gateway".into(), gateway.to_string().into());
    }
    facts
}

/// `locally_reachable_ips`: the `local` routes of the local table, IPv4 then IPv6, each
/// written as `ip` writes it (`127.0.0.0/8`, or the bare address for a single one).
fn locally_reachable_ips() -> Value {
    let mut out = Map::new();
    for (key, family, full) in [("ipv4", libc::AF_INET, 32), ("ipv6", libc::AF_INET6, 128)] {
        let mut list: Vec<String> = Vec::new();
        for route in netlink::routes(family).unwrap_or_default() {
            if route.kind != RTN_LOCAL || route.table != RT_TABLE_LOCAL {
                continue;
            }
            let Some(dst) = route.dst else { continue };
            let text = if route.dst_len == full {
                dst.to_string()
            } else {
                format!("{dst}/{}", route.dst_len)
            };
            if !list.contains(&text) {
                list.push(text);
            }
        }
        out.insert(key.into(), json!(list));
    }
    Value::Object(out)
}

/// Every fact of the `network` collector (names without the `ansible_` prefix).
pub(crate) fn network_facts() -> Map<String, Value> {
    // Interfaces in /sys/class/net's own order, as Ansible's glob walks them.
    let mut devices = Vec::new();
    for entry in fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let device = entry.file_name().to_string_lossy().into_owned();
        let index = content(dir.join("ifindex")).and_then(|i| i.parse::<u32>().ok());
        devices.push((device.clone(), index, device_facts(&dir, &device)));
    }
    let mut facts = assemble(
        devices,
        &netlink::addresses().unwrap_or_default(),
        default_route(IpAddr::V4(DEFAULT_V4)),
        default_route(IpAddr::V6(DEFAULT_V6)),
    );
    facts.insert("locally_reachable_ips".into(), locally_reachable_ips());
    facts
}

/// The network facts from what /sys told of each interface (name, index, facts), the
/// kernel's addresses and the two default routes, put together as Ansible's parsing of `ip
/// addr` does: an interface's first primary IPv4 address is its `ipv4`, the others
/// `ipv4_secondaries`; an IPv4 label (`eth0:1`) becomes an interface of its own (`eth0_1`).
fn assemble(
    devices: Vec<(String, Option<u32>, Map<String, Value>)>,
    addresses: &[Address],
    mut default_ipv4: Map<String, Value>,
    mut default_ipv6: Map<String, Value>,
) -> Map<String, Value> {
    let mut interfaces: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut all_ipv4: Vec<String> = Vec::new();
    let mut all_ipv6: Vec<String> = Vec::new();
    for (device, index, facts) in devices {
        let macaddress = facts.get("macaddress").cloned();
        let mtu = facts.get("mtu").cloned().unwrap_or(Value::Null);
        let kind = facts
            .get("type")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        interfaces.push((device.clone(), facts));
        let own: Vec<&Address> = addresses
            .iter()
            .filter(|a| Some(a.index) == index)
            .collect();
        // `ip addr show primary`, then `ip addr show secondary`: IPv4 before IPv6 in each.
        for secondary in [false, true] {
            for address in own
                .iter()
                .filter(|a| (a.flags & IFA_F_SECONDARY != 0) == secondary)
            {
                match address.local {
                    IpAddr::V4(v4) => {
                        let (prefix, broadcast) = if address.peer.is_some() {
                            (32, String::new())
                        } else {
                            let brd = address.broadcast.map(|b| b.to_string()).unwrap_or_default();
                            (address.prefix, brd)
                        };
                        let entry = ipv4_entry(v4, prefix, &broadcast);
                        let label = address.label.clone().unwrap_or_else(|| device.clone());
                        if label != device {
                            interfaces.retain(|(n, _)| *n != label);
                            interfaces.push((label.clone(), Map::new()));
                        }
                        if let Some((_, facts)) = interfaces.iter_mut().find(|(n, _)| *n == label) {
                            if !secondary && !facts.contains_key("ipv4") {
                                facts.insert("ipv4".into(), entry.clone());
                            } else {
                                push(facts, "ipv4_secondaries", entry.clone());
                            }
                        }
                        if secondary
                            && let Some((_, facts)) =
                                interfaces.iter_mut().find(|(n, _)| *n == device)
                        {
                            if label != device {
                                push(facts, "ipv4_secondaries", entry.clone());
                            } else if !facts.contains_key("ipv4_secondaries") {
                                facts.insert("ipv4_secondaries".into(), json!([]));
                            }
                        }
                        if default_ipv4.get("address").and_then(Value::as_str)
                            == Some(&v4.to_string())
                        {
                            for key in ["broadcast", "netmask", "network", "prefix"] {
                                default_ipv4.insert(key.into(), entry[key].clone());
                            }
                            default_ipv4.insert(
                                "macaddress".into(),
                                macaddress.clone().unwrap_or_else(|| "unknown".into()),
                            );
                            default_ipv4.insert("mtu".into(), mtu.clone());
                            default_ipv4.insert("type".into(), kind.clone());
                            default_ipv4.insert("alias".into(), label.into());
                        }
                        if !v4.to_string().starts_with("127.") {
                            all_ipv4.push(v4.to_string());
                        }
                    }
                    IpAddr::V6(v6) => {
                        let entry = json!({
                            "address": v6.to_string(),
                            "prefix": address.prefix.to_string(),
                            "scope": scope_name(address.scope),
                        });
                        if let Some((_, facts)) = interfaces.iter_mut().find(|(n, _)| *n == device)
                        {
                            push(facts, "ipv6", entry.clone());
                        }
                        if default_ipv6.get("address").and_then(Value::as_str)
                            == Some(&v6.to_string())
                        {
                            default_ipv6.insert("prefix".into(), entry["prefix"].clone());
                            default_ipv6.insert("scope".into(), entry["scope"].clone());
                            default_ipv6.insert(
                                "macaddress".into(),
                                macaddress.clone().unwrap_or_else(|| "unknown".into()),
                            );
                            default_ipv6.insert("mtu".into(), mtu.clone());
                            default_ipv6.insert("type".into(), kind.clone());
                        }
                        if v6 != Ipv6Addr::LOCALHOST {
                            all_ipv6.push(v6.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut facts = Map::new();
    // Ansible's own order is a set's (it changes from run to run): sorted here.
    let mut names: Vec<String> = interfaces
        .iter()
        .map(|(n, _)| n.replace(':', "_"))
        .collect();
    names.sort();
    facts.insert("interfaces".into(), json!(names));
    for (name, iface) in interfaces {
        facts.insert(name.replace(':', "_"), Value::Object(iface));
    }
    facts.insert("default_ipv4".into(), Value::Object(default_ipv4));
    facts.insert("default_ipv6".into(), Value::Object(default_ipv6));
    facts.insert("all_ipv4_addresses".into(), json!(all_ipv4));
    facts.insert("all_ipv6_addresses".into(), json!(all_ipv6));
    facts
}

fn push(facts: &mut Map<String, Value>, key: &str, entry: Value) {
    match facts.get_mut(key) {
        Some(Value::Array(list)) => list.push(entry),
        _ => {
            facts.insert(key.into(), json!([entry]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_entries_carry_netmask_network_and_prefix_as_strings() {
        let entry = ipv4_entry(Ipv4Addr::new(192, 0, 2, 7), 24, "192.0.2.255");
        assert_eq!(
            entry,
            json!({"address": "192.0.2.7", "broadcast": "192.0.2.255",
                   "netmask": "255.255.255.0", "network": "192.0.2.0", "prefix": "24"})
        );
        let lo = ipv4_entry(Ipv4Addr::LOCALHOST, 8, "");
        assert_eq!(lo["netmask"], json!("255.0.0.0"));
        assert_eq!(
            ipv4_entry(Ipv4Addr::LOCALHOST, 0, "")["netmask"],
            json!("0.0.0.0")
        );
    }

    fn v4(index: u32, local: [u8; 4], prefix: u8, flags: u32, label: &str) -> Address {
        Address {
            index,
            prefix,
            flags,
            scope: 0,
            local: IpAddr::from(local),
            peer: None,
            broadcast: Some(IpAddr::from([local[0], local[1], local[2], 255])),
            label: Some(label.into()),
        }
    }

    #[test]
    fn secondaries_and_labels_are_filed_as_ansible_files_them() {
        let mut eth = Map::new();
        eth.insert("device".into(), "eth0".into());
        eth.insert("macaddress".into(), "02:00:00:00:00:01".into());
        eth.insert("mtu".into(), 1500.into());
        eth.insert("type".into(), "ether".into());
        let addresses = [
            v4(2, [10, 0, 0, 5], 24, 0, "eth0"),
            v4(2, [10, 0, 0, 6], 24, IFA_F_SECONDARY, "eth0"),
            v4(2, [10, 0, 0, 7], 24, IFA_F_SECONDARY, "eth0:web"),
            Address {
                index: 2,
                prefix: 64,
                flags: 0,
                scope: 253,
                local: "fe80::1".parse().unwrap_or(IpAddr::from([0u8; 16])),
                peer: None,
                broadcast: None,
                label: None,
            },
        ];
        let mut default_ipv4 = Map::new();
        default_ipv4.insert("interface".into(), "eth0".into());
        default_ipv4.insert("address".into(), "10.0.0.5".into());
        default_ipv4.insert("gateway".into(), "10.0.0.1".into());
        let facts = assemble(
            vec![("eth0".into(), Some(2), eth)],
            &addresses,
            default_ipv4,
            Map::new(),
        );
        let net = |a: &str| {
            json!({"address": a, "broadcast": "10.0.0.255", "netmask": "255.255.255.0",
                   "network": "10.0.0.0", "prefix": "24"})
        };
        assert_eq!(facts["eth0"]["ipv4"], net("10.0.0.5"));
        assert_eq!(
            facts["eth0"]["ipv4_secondaries"],
            json!([net("10.0.0.6"), net("10.0.0.7")])
        );
        // A labelled secondary is its label's secondary too, and its only fact (Ansible's).
        assert_eq!(
            facts["eth0_web"],
            json!({"ipv4_secondaries": [net("10.0.0.7")]})
        );
        assert_eq!(facts["interfaces"], json!(["eth0", "eth0_web"]));
        assert_eq!(
            facts["eth0"]["ipv6"],
            json!([{"address": "fe80::1", "prefix": "64", "scope": "link"}])
        );
        assert_eq!(
            facts["all_ipv4_addresses"],
            json!(["10.0.0.5", "10.0.0.6", "10.0.0.7"])
        );
        assert_eq!(facts["all_ipv6_addresses"], json!(["fe80::1"]));
        assert_eq!(
            facts["default_ipv4"],
            json!({"interface": "eth0", "address": "10.0.0.5", "gateway": "10.0.0.1",
                   "broadcast": "10.0.0.255", "netmask": "255.255.255.0",
                   "network": "10.0.0.0", "prefix": "24", "macaddress": "02:00:00:00:00:01",
                   "mtu": 1500, "type": "ether", "alias": "eth0"})
        );
        assert_eq!(facts["default_ipv6"], json!({}));
    }

    #[test]
    fn scopes_and_types_are_named_as_ip_and_ansible_name_them() {
        assert_eq!(scope_name(0), "global");
        assert_eq!(scope_name(253), "link");
        assert_eq!(scope_name(254), "host");
        assert_eq!(interface_type("772"), "loopback");
        assert_eq!(interface_type("776"), "unknown");
    }

    #[test]
    fn ethtool_features_are_named_with_underscores_and_keep_fixed() {
        let out = "Features for lo:\nrx-checksumming: on [fixed]\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on [fixed]\nscatter-gather: on\n";
        let features = ethtool_features(out);
        assert_eq!(
            Value::Object(features),
            json!({
                "rx_checksumming": "on [fixed]",
                "tx_checksumming": "on",
                "tx_checksum_ipv4": "off [fixed]",
                "tx_checksum_ip_generic": "on [fixed]",
                "scatter_gather": "on",
            })
        );
    }

    #[test]
    fn ethtool_timestamping_takes_the_kernel_names_and_the_clock() {
        // ethtool 5 (ioctl) names the flags; ethtool 6 (netlink) prints no such names.
        let old = "Time stamping parameters for eth0:\nCapabilities:\n\thardware-transmit     (SOF_TIMESTAMPING_TX_HARDWARE)\n\tsoftware-receive      (SOF_TIMESTAMPING_RX_SOFTWARE)\nPTP Hardware Clock: 2\nHardware Transmit Timestamp Modes:\n\toff                   (HWTSTAMP_TX_OFF)\nHardware Receive Filter Modes:\n\tnone                  (HWTSTAMP_FILTER_NONE)\n\tall                   (HWTSTAMP_FILTER_ALL)\n";
        assert_eq!(
            ethtool_timestamping(old),
            vec![
                ("timestamping", json!(["tx_hardware", "rx_software"])),
                ("hw_timestamp_filters", json!(["none", "all"])),
                ("phc_index", json!(2)),
            ]
        );
        let new = "Time stamping parameters for lo:\nCapabilities:\n\tsoftware-transmit\n\tsoftware-receive\nPTP Hardware Clock: none\nHardware Transmit Timestamp Modes: none\nHardware Receive Filter Modes: none\n";
        assert_eq!(
            ethtool_timestamping(new),
            vec![
                ("timestamping", json!([])),
                ("hw_timestamp_filters", json!([]))
            ]
        );
    }
}
