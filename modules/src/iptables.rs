//! `iptables`: one rule of a chain present or absent, a chain's policy, a flushed chain, or a
//! user chain created or deleted, with the arguments Ansible's module turns into an iptables
//! command line (the same words in the same order, so `rule` in the result matches Ansible's).
//!
//! The question is iptables' own: `iptables -C` for a rule, `iptables -S CHAIN` for a policy, a
//! chain's existence and the rules a flush would remove. The answer is `-A`/`-I`/`-D`, `-P`,
//! `-F`, `-N`/`-X`. With `ip_version: both` each step is done with iptables and ip6tables.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean};
use crate::process::{self, Ran};
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "iptables",
    args: &[
        "table",
        "state",
        "action",
        "ip_version",
        "chain",
        "rule_num",
        "protocol",
        "wait",
        "source",
        "to_source",
        "destination",
        "to_destination",
        "match",
        "tcp_flags",
        "jump",
        "gateway",
        "log_prefix",
        "log_level",
        "goto",
        "in_interface",
        "out_interface",
        "fragment",
        "set_counters",
        "source_port",
        "destination_port",
        "destination_ports",
        "to_ports",
        "set_dscp_mark",
        "set_dscp_mark_class",
        "comment",
        "ctstate",
        "src_range",
        "dst_range",
        "match_set",
        "match_set_flags",
        "limit",
        "limit_burst",
        "uid_owner",
        "gid_owner",
        "reject_with",
        "icmp_type",
        "syn",
        "flush",
        "policy",
        "chain_management",
        "numeric",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Table {
    #[default]
    Filter,
    Nat,
    Mangle,
    Raw,
    Security,
}

impl Table {
    fn word(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Nat => "nat",
            Table::Mangle => "mangle",
            Table::Raw => "raw",
            Table::Security => "security",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    #[default]
    Append,
    Insert,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum IpVersion {
    #[default]
    Ipv4,
    Ipv6,
    Both,
}

impl IpVersion {
    fn word(self) -> &'static str {
        match self {
            IpVersion::Ipv4 => "ipv4",
            IpVersion::Ipv6 => "ipv6",
            IpVersion::Both => "both",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Syn {
    #[default]
    Ignore,
    Match,
    Negate,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Policy {
    Accept,
    Drop,
    Queue,
    Return,
}

impl Policy {
    fn word(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
            Policy::Queue => "QUEUE",
            Policy::Return => "RETURN",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpFlags {
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    flags_set: Option<Vec<String>>,
}

const LOG_LEVELS: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "emerg", "alert", "crit", "error", "warning", "notice",
    "info", "debug",
];
const MATCH_SET_FLAGS: &[&str] = &["src", "dst", "src,dst", "dst,src", "dst,dst", "src,src"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Iptables {
    #[serde(default)]
    table: Table,
    #[serde(default)]
    state: Presence,
    #[serde(default)]
    action: Action,
    #[serde(default)]
    ip_version: IpVersion,
    chain: Option<String>,
    rule_num: Option<String>,
    protocol: Option<String>,
    wait: Option<String>,
    source: Option<String>,
    to_source: Option<String>,
    destination: Option<String>,
    to_destination: Option<String>,
    #[serde(default, rename = "match")]
    matches: Vec<String>,
    tcp_flags: Option<TcpFlags>,
    jump: Option<String>,
    gateway: Option<String>,
    log_prefix: Option<String>,
    log_level: Option<String>,
    goto: Option<String>,
    in_interface: Option<String>,
    out_interface: Option<String>,
    fragment: Option<String>,
    set_counters: Option<String>,
    source_port: Option<String>,
    destination_port: Option<String>,
    #[serde(default)]
    destination_ports: Vec<String>,
    to_ports: Option<String>,
    set_dscp_mark: Option<String>,
    set_dscp_mark_class: Option<String>,
    comment: Option<String>,
    #[serde(default)]
    ctstate: Vec<String>,
    src_range: Option<String>,
    dst_range: Option<String>,
    match_set: Option<String>,
    match_set_flags: Option<String>,
    limit: Option<String>,
    limit_burst: Option<String>,
    uid_owner: Option<String>,
    gid_owner: Option<String>,
    reject_with: Option<String>,
    icmp_type: Option<String>,
    #[serde(default)]
    syn: Syn,
    #[serde(default, deserialize_with = "boolean")]
    flush: bool,
    policy: Option<Policy>,
    #[serde(default, deserialize_with = "boolean")]
    chain_management: bool,
    /// Ansible lists policies with `-L` and this asks for numbers there; settle reads `-S`,
    /// which never looks names up, so it changes nothing.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    numeric: bool,
    /// The command lines `apply` runs, in order (iptables' then ip6tables').
    #[serde(skip)]
    commands: Vec<Vec<String>>,
}

/// `-s x`, or `! -s x` for a value written `!x`, as Ansible's `append_param` does.
fn param(rule: &mut Vec<String>, value: Option<&str>, flag: &str) {
    if let Some(value) = value {
        match value.strip_prefix('!') {
            Some(rest) => rule.extend(["!".into(), flag.into(), rest.into()]),
            None => rule.extend([flag.into(), value.into()]),
        }
    }
}

fn words(rule: &mut Vec<String>, items: &[&str]) {
    rule.extend(items.iter().map(|s| s.to_string()));
}

impl Iptables {
    fn chain(&self) -> &str {
        self.chain.as_deref().unwrap_or_default()
    }

    /// The rule's words after the chain, in the order of Ansible's `construct_rule`. `program`
    /// picks the ICMP type flag (`--icmp-type`, or `--icmpv6-type` for ip6tables); `jump` is the
    /// target (`LOG` when only logging options were given).
    fn rule(&self, ipv6: bool, jump: Option<&str>) -> Vec<String> {
        let mut r = Vec::new();
        let has = |m: &str| self.matches.iter().any(|x| x == m);
        param(&mut r, self.protocol.as_deref(), "-p");
        param(&mut r, self.source.as_deref(), "-s");
        param(&mut r, self.destination.as_deref(), "-d");
        for m in &self.matches {
            param(&mut r, Some(m), "-m");
        }
        if let Some(TcpFlags {
            flags: Some(flags),
            flags_set: Some(set),
        }) = &self.tcp_flags
        {
            r.extend(["--tcp-flags".into(), flags.join(","), set.join(",")]);
        }
        param(&mut r, jump, "-j");
        if jump.is_some_and(|j| j.eq_ignore_ascii_case("tee")) {
            param(&mut r, self.gateway.as_deref(), "--gateway");
        }
        param(&mut r, self.log_prefix.as_deref(), "--log-prefix");
        param(&mut r, self.log_level.as_deref(), "--log-level");
        param(&mut r, self.to_destination.as_deref(), "--to-destination");
        if !self.destination_ports.is_empty() {
            words(&mut r, &["-m", "multiport", "--dports"]);
            r.push(self.destination_ports.join(","));
        }
        param(&mut r, self.to_source.as_deref(), "--to-source");
        param(&mut r, self.goto.as_deref(), "-g");
        param(&mut r, self.in_interface.as_deref(), "-i");
        param(&mut r, self.out_interface.as_deref(), "-o");
        param(&mut r, self.fragment.as_deref(), "-f");
        if let Some(counters) = &self.set_counters {
            // `-c PACKETS BYTES`: two words, however the task wrote them.
            r.push("-c".into());
            r.extend(
                counters
                    .split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .map(String::from),
            );
        }
        param(&mut r, self.source_port.as_deref(), "--source-port");
        param(
            &mut r,
            self.destination_port.as_deref(),
            "--destination-port",
        );
        param(&mut r, self.to_ports.as_deref(), "--to-ports");
        let not_dscp = jump.is_none_or(|j| !j.eq_ignore_ascii_case("dscp"));
        param(&mut r, self.set_dscp_mark.as_deref(), "--set-dscp");
        if self.set_dscp_mark.is_some() && not_dscp {
            words(&mut r, &["-j", "DSCP"]);
        }
        param(
            &mut r,
            self.set_dscp_mark_class.as_deref(),
            "--set-dscp-class",
        );
        if self.set_dscp_mark_class.is_some() && not_dscp {
            words(&mut r, &["-j", "DSCP"]);
        }
        match self.syn {
            Syn::Match => r.push("--syn".into()),
            Syn::Negate => words(&mut r, &["!", "--syn"]),
            Syn::Ignore => {}
        }
        let ctstates = self.ctstate.join(",");
        if has("conntrack") {
            if !self.ctstate.is_empty() {
                words(&mut r, &["--ctstate", &ctstates]);
            }
        } else if has("state") {
            if !self.ctstate.is_empty() {
                words(&mut r, &["--state", &ctstates]);
            }
        } else if !self.ctstate.is_empty() {
            words(&mut r, &["-m", "conntrack", "--ctstate", &ctstates]);
        }
        if !has("iprange") && (self.src_range.is_some() || self.dst_range.is_some()) {
            words(&mut r, &["-m", "iprange"]);
        }
        param(&mut r, self.src_range.as_deref(), "--src-range");
        param(&mut r, self.dst_range.as_deref(), "--dst-range");
        if has("set") || self.match_set.is_some() {
            if !has("set") {
                words(&mut r, &["-m", "set"]);
            }
            param(&mut r, self.match_set.as_deref(), "--match-set");
            if let Some(flags) = &self.match_set_flags {
                r.push(flags.clone());
            }
        }
        if self.limit.is_some() || self.limit_burst.is_some() {
            words(&mut r, &["-m", "limit"]);
        }
        param(&mut r, self.limit.as_deref(), "--limit");
        param(&mut r, self.limit_burst.as_deref(), "--limit-burst");
        for (owner, flag) in [
            (&self.uid_owner, "--uid-owner"),
            (&self.gid_owner, "--gid-owner"),
        ] {
            if owner.is_some() {
                words(&mut r, &["-m", "owner"]);
            }
            param(&mut r, owner.as_deref(), flag);
        }
        if jump.is_none() {
            if self.reject_with.is_some() {
                words(&mut r, &["-j", "REJECT"]);
            }
            if self.set_dscp_mark_class.is_some() || self.set_dscp_mark.is_some() {
                words(&mut r, &["-j", "DSCP"]);
            }
        }
        param(&mut r, self.reject_with.as_deref(), "--reject-with");
        let icmp = if ipv6 { "--icmpv6-type" } else { "--icmp-type" };
        param(&mut r, self.icmp_type.as_deref(), icmp);
        if let Some(comment) = &self.comment {
            words(&mut r, &["-m", "comment", "--comment", comment]);
        }
        r
    }

    /// The rule as Ansible's result shows it: before a `LOG` target is implied.
    fn rule_text(&self) -> String {
        self.rule(self.ip_version == IpVersion::Ipv6, self.jump.as_deref())
            .join(" ")
    }

    /// The target the commands use: `LOG` when only logging options were given.
    fn effective_jump(&self) -> Option<&str> {
        match self.jump.as_deref() {
            None if self.log_prefix.is_some() || self.log_level.is_some() => Some("LOG"),
            other => other,
        }
    }

    fn programs(&self) -> Vec<(&'static str, bool)> {
        match self.ip_version {
            IpVersion::Ipv4 => vec![("iptables", false)],
            IpVersion::Ipv6 => vec![("ip6tables", true)],
            IpVersion::Both => vec![("iptables", false), ("ip6tables", true)],
        }
    }

    /// `PROGRAM -t TABLE ACTION CHAIN [NUM] [-w SECONDS]`, as Ansible's `push_arguments`.
    fn command(&self, program: &str, wait: &Option<String>, action: &str) -> Vec<String> {
        let mut cmd = vec![
            program.to_string(),
            "-t".into(),
            self.table.word().into(),
            action.into(),
        ];
        if let Some(chain) = &self.chain {
            cmd.push(chain.clone());
        }
        if action == "-I"
            && let Some(num) = &self.rule_num
        {
            cmd.push(num.clone());
        }
        if let Some(wait) = wait {
            cmd.push("-w".into());
            if !wait.is_empty() {
                cmd.push(wait.clone());
            }
        }
        cmd
    }

    /// The `wait` this iptables understands: seconds from 1.6.0, a bare `-w` from 1.4.20,
    /// nothing before (Ansible asks `--version` the same way).
    fn wait_for(&self, program: &str) -> Result<Option<String>, ModuleError> {
        let Some(wait) = &self.wait else {
            return Ok(None);
        };
        let ran = process::run_ok(&[program, "--version"], &[])?;
        let version: Vec<u32> = ran
            .stdout
            .split('v')
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_default()
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        Ok(if version.as_slice() >= [1, 6, 0].as_slice() {
            Some(wait.clone())
        } else if version.as_slice() >= [1, 4, 20].as_slice() {
            Some(String::new())
        } else {
            None
        })
    }

    /// `-S CHAIN`: the chain's lines (`-P INPUT ACCEPT`, `-N mine`, `-A …`), or `None` when
    /// iptables cannot list it: as for Ansible's `-L`, that is a chain that is not there
    /// (iptables-nft 1.8.9 says a missing chain is "incompatible").
    fn listing(
        &self,
        program: &str,
        wait: &Option<String>,
    ) -> Result<Option<Vec<String>>, ModuleError> {
        let ran = process::run(&self.command(program, wait, "-S"), &[])?;
        Ok(ran
            .ok()
            .then(|| ran.stdout.lines().map(String::from).collect()))
    }
}

fn failed(cmd: &[String], ran: &Ran) -> ModuleError {
    let said = if ran.stderr.trim().is_empty() {
        ran.stdout.trim()
    } else {
        ran.stderr.trim()
    };
    let mut values = Map::new();
    values.insert("cmd".into(), cmd.join(" ").into());
    values.insert("rc".into(), ran.rc.into());
    values.insert("stdout".into(), ran.stdout.clone().into());
    values.insert("stderr".into(), ran.stderr.clone().into());
    ModuleError::FailedWith {
        msg: said.to_string(),
        values,
    }
}

impl Resource for Iptables {
    fn validate(&self) -> Result<(), ModuleError> {
        let bad = |m: String| Err(ModuleError::Args(m));
        if self.set_dscp_mark.is_some() && self.set_dscp_mark_class.is_some() {
            return bad(
                "parameters are mutually exclusive: set_dscp_mark|set_dscp_mark_class".into(),
            );
        }
        if self.flush && self.policy.is_some() {
            return bad("parameters are mutually exclusive: flush|policy".into());
        }
        for (given, name) in [
            (self.set_dscp_mark.is_some(), "set_dscp_mark"),
            (self.set_dscp_mark_class.is_some(), "set_dscp_mark_class"),
        ] {
            if given && self.jump.is_none() {
                return bad(format!("missing parameter(s) required by '{name}': jump"));
            }
        }
        if self
            .jump
            .as_deref()
            .is_some_and(|j| j == "TEE" || j == "tee")
            && self.gateway.is_none()
        {
            return bad(format!(
                "jump is {} but all of the following are missing: gateway",
                self.jump.as_deref().unwrap_or_default()
            ));
        }
        if !self.flush && self.chain.is_none() {
            return bad("flush is False but all of the following are missing: chain".into());
        }
        if let Some(level) = &self.log_level
            && !LOG_LEVELS.contains(&level.as_str())
        {
            return bad(format!(
                "value of log_level must be one of: {}, got: {level}",
                LOG_LEVELS.join(", ")
            ));
        }
        if let Some(flags) = &self.match_set_flags
            && !MATCH_SET_FLAGS.contains(&flags.as_str())
        {
            return bad(format!(
                "value of match_set_flags must be one of: {}, got: {flags}",
                MATCH_SET_FLAGS.join(", ")
            ));
        }
        if (self.log_prefix.is_some() || self.log_level.is_some())
            && self.jump.as_deref().is_some_and(|j| j != "LOG")
        {
            return Err(ModuleError::Failed(
                "Logging options can only be used with the LOG jump target.".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        let both = self.ip_version == IpVersion::Both;
        let has_rule = !self.rule_text().is_empty();
        for (name, ipv6) in self.programs() {
            let program = bin_path::required(name)?;
            let wait = self.wait_for(&program)?;
            let field = |f: &str| {
                if both {
                    format!("{f} ({})", if ipv6 { "ipv6" } else { "ipv4" })
                } else {
                    f.to_string()
                }
            };
            let mut commands = Vec::new();
            if self.flush {
                // Ansible counts every flush as a change; settle flushes what has rules.
                let lines = self.listing(&program, &wait)?.unwrap_or_default();
                let rules = lines.iter().filter(|l| l.starts_with("-A ")).count();
                if rules > 0 {
                    plan.change(
                        &field("rules"),
                        Some(format!("{rules} rule(s)")),
                        Some("none".into()),
                    );
                    commands.push(self.command(&program, &wait, "-F"));
                }
            } else if let Some(policy) = self.policy {
                let lines = self.listing(&program, &wait)?.unwrap_or_default();
                let prefix = format!("-P {} ", self.chain());
                let Some(current) = lines
                    .iter()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map(|p| p.split_whitespace().next().unwrap_or_default().to_string())
                else {
                    return Err(ModuleError::Failed("Can't detect current policy".into()));
                };
                if current != policy.word() {
                    plan.change(&field("policy"), Some(current), Some(policy.word().into()));
                    let mut cmd = self.command(&program, &wait, "-P");
                    cmd.push(policy.word().into());
                    commands.push(cmd);
                }
            } else if !has_rule {
                // A chain alone: created or deleted with chain_management. As Ansible's, the
                // task reports the difference even when chain_management leaves it be.
                let present = self.listing(&program, &wait)?.is_some();
                let wanted = self.state == Presence::Present;
                if present != wanted {
                    let word = |p: bool| if p { "present" } else { "absent" }.to_string();
                    plan.change(&field("chain"), Some(word(present)), Some(word(wanted)));
                    if self.chain_management {
                        let action = if wanted { "-N" } else { "-X" };
                        commands.push(self.command(&program, &wait, action));
                    }
                }
            } else {
                let rule = self.rule(ipv6, self.effective_jump());
                let mut probe = self.command(&program, &wait, "-C");
                probe.extend(rule.iter().cloned());
                // Any failure is "no such rule", as for Ansible: a rule whose target chain an
                // earlier task creates cannot be checked in a dry run, and a rule iptables
                // cannot read fails when it is added, with iptables' own message.
                let ran = process::run(&probe, &[])?;
                let present = ran.ok();
                let wanted = self.state == Presence::Present;
                if present != wanted {
                    let action = match (wanted, self.action) {
                        (false, _) => "-D",
                        (true, Action::Append) => "-A",
                        (true, Action::Insert) => "-I",
                    };
                    let mut cmd = self.command(&program, &wait, action);
                    cmd.extend(rule.iter().cloned());
                    // As `iptables -S` lists rules.
                    let shown = format!("-A {} {}", self.chain(), rule.join(" "));
                    let (before, after) = if wanted {
                        (None, Some(shown))
                    } else {
                        (Some(shown), None)
                    };
                    plan.change(&field("rule"), before, after);
                    commands.push(cmd);
                }
            }
            self.commands.extend(commands);
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        for cmd in &self.commands {
            let ran = process::run(cmd, &[])?;
            if !ran.ok() {
                return Err(failed(cmd, &ran));
            }
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("ip_version".into(), self.ip_version.word().into());
        values.insert("table".into(), self.table.word().into());
        values.insert(
            "chain".into(),
            self.chain.clone().map_or(Value::Null, Value::from),
        );
        values.insert("flush".into(), self.flush.into());
        values.insert("rule".into(), self.rule_text().into());
        values.insert("state".into(), self.state.word().into());
        values.insert("chain_management".into(), self.chain_management.into());
        values.insert(
            "wait".into(),
            self.wait.clone().map_or(Value::Null, Value::from),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(args: Value) -> Iptables {
        let args = args.as_object().unwrap().clone();
        crate::resource::parse_args("iptables", &args).unwrap()
    }

    #[test]
    fn rules_read_as_ansible_writes_them() {
        let m = module(serde_json::json!({
            "chain": "INPUT", "protocol": "tcp", "destination_port": 22,
            "ctstate": "NEW,ESTABLISHED", "jump": "ACCEPT", "comment": "ssh in",
        }));
        assert_eq!(
            m.rule_text(),
            "-p tcp -j ACCEPT --destination-port 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment ssh in"
        );
        let m = module(serde_json::json!({
            "chain": "INPUT", "source": "!10.0.0.0/8", "match": ["state"], "ctstate": ["NEW"],
            "destination_ports": ["80", "443"], "jump": "DROP",
        }));
        assert_eq!(
            m.rule_text(),
            "! -s 10.0.0.0/8 -m state -j DROP -m multiport --dports 80,443 --state NEW"
        );
    }

    #[test]
    fn logging_options_imply_the_log_target_but_not_in_the_result() {
        let m = module(serde_json::json!({"chain": "INPUT", "log_prefix": "in: ", "log_level": 4}));
        assert_eq!(m.rule_text(), "--log-prefix in:  --log-level 4");
        assert_eq!(
            m.rule(false, m.effective_jump()),
            ["-j", "LOG", "--log-prefix", "in: ", "--log-level", "4"]
        );
        let m = module(serde_json::json!({"chain": "INPUT", "log_prefix": "x", "jump": "DROP"}));
        assert!(m.validate().is_err());
    }

    #[test]
    fn reject_with_implies_its_target_and_icmp_follows_the_ip_version() {
        let m = module(serde_json::json!({
            "chain": "INPUT", "protocol": "icmp", "icmp_type": "echo-request",
            "reject_with": "icmp-port-unreachable",
        }));
        assert_eq!(
            m.rule(false, None).join(" "),
            "-p icmp -j REJECT --reject-with icmp-port-unreachable --icmp-type echo-request"
        );
        assert!(m.rule(true, None).contains(&"--icmpv6-type".to_string()));
    }

    #[test]
    fn commands_name_table_chain_position_and_wait() {
        let m = module(serde_json::json!({"chain": "INPUT", "rule_num": 2, "action": "insert"}));
        assert_eq!(
            m.command("iptables", &Some("5".into()), "-I"),
            ["iptables", "-t", "filter", "-I", "INPUT", "2", "-w", "5"]
        );
        let m = module(serde_json::json!({"flush": true, "table": "nat"}));
        assert_eq!(
            m.command("iptables", &None, "-F"),
            ["iptables", "-t", "nat", "-F"]
        );
    }

    #[test]
    fn arguments_ansible_refuses_together() {
        for args in [
            serde_json::json!({"chain": "INPUT", "flush": true, "policy": "DROP"}),
            serde_json::json!({"policy": "DROP"}),
            serde_json::json!({"chain": "INPUT", "jump": "TEE"}),
            serde_json::json!({"chain": "INPUT", "set_dscp_mark": "1"}),
            serde_json::json!({"chain": "INPUT", "log_level": "loud"}),
        ] {
            assert!(module(args).validate().is_err());
        }
    }
}
