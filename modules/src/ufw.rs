//! `community.general.ufw`: the Uncomplicated Firewall enabled or not, its default policies, its
//! logging, and its rules, with ufw's own command line as the collection's module builds it.
//!
//! The question: `ufw status` for whether it is active, `/etc/default/ufw` for the default
//! policies and `/etc/ufw/ufw.conf` for the log level (read there because `ufw status` says
//! nothing of them while ufw is inactive), and for a rule `ufw --dry-run RULE`, which prints the
//! rules files as the rule would leave them: their `### tuple` lines are compared with the files'
//! own. Only what differs is run, so the task reports a change only when one was made (the
//! collection's module runs every command and compares `ufw status` before and after).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::process::{self, Ran};
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "community.general.ufw",
    args: &[
        "state",
        "default",
        "policy",
        "logging",
        "direction",
        "delete",
        "route",
        "insert",
        "insert_relative_to",
        "rule",
        "interface",
        "if",
        "interface_in",
        "if_in",
        "interface_out",
        "if_out",
        "log",
        "from_ip",
        "from",
        "src",
        "from_port",
        "to_ip",
        "dest",
        "to",
        "to_port",
        "port",
        "proto",
        "protocol",
        "name",
        "app",
        "comment",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Enabled,
    Disabled,
    Reloaded,
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Policy {
    Allow,
    Deny,
    Reject,
}

impl Policy {
    fn word(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Deny => "deny",
            Policy::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Direction {
    In,
    Incoming,
    Out,
    Outgoing,
    Routed,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Incoming => "incoming",
            Direction::Out => "out",
            Direction::Outgoing => "outgoing",
            Direction::Routed => "routed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Logging {
    On,
    Off,
    Low,
    Medium,
    High,
    Full,
}

impl Logging {
    fn word(self) -> &'static str {
        match self {
            Logging::On => "on",
            Logging::Off => "off",
            Logging::Low => "low",
            Logging::Medium => "medium",
            Logging::High => "high",
            Logging::Full => "full",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
enum RelativeTo {
    #[default]
    #[serde(rename = "zero")]
    Zero,
    #[serde(rename = "first-ipv4")]
    FirstIpv4,
    #[serde(rename = "last-ipv4")]
    LastIpv4,
    #[serde(rename = "first-ipv6")]
    FirstIpv6,
    #[serde(rename = "last-ipv6")]
    LastIpv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RuleKind {
    Allow,
    Deny,
    Limit,
    Reject,
}

impl RuleKind {
    fn word(self) -> &'static str {
        match self {
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
            RuleKind::Limit => "limit",
            RuleKind::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Proto {
    Any,
    Tcp,
    Udp,
    Ipv6,
    Esp,
    Ah,
    Gre,
    Igmp,
}

impl Proto {
    fn word(self) -> &'static str {
        match self {
            Proto::Any => "any",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Ipv6 => "ipv6",
            Proto::Esp => "esp",
            Proto::Ah => "ah",
            Proto::Gre => "gre",
            Proto::Igmp => "igmp",
        }
    }
}

fn any() -> String {
    "any".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ufw {
    state: Option<State>,
    #[serde(alias = "policy")]
    default: Option<Policy>,
    logging: Option<Logging>,
    direction: Option<Direction>,
    #[serde(default, deserialize_with = "crate::args::boolean")]
    delete: bool,
    #[serde(default, deserialize_with = "crate::args::boolean")]
    route: bool,
    insert: Option<i64>,
    #[serde(default)]
    insert_relative_to: RelativeTo,
    rule: Option<RuleKind>,
    #[serde(alias = "if")]
    interface: Option<String>,
    #[serde(alias = "if_in")]
    interface_in: Option<String>,
    #[serde(alias = "if_out")]
    interface_out: Option<String>,
    #[serde(default, deserialize_with = "crate::args::boolean")]
    log: bool,
    #[serde(default = "any", alias = "from", alias = "src")]
    from_ip: String,
    from_port: Option<String>,
    #[serde(default = "any", alias = "dest", alias = "to")]
    to_ip: String,
    #[serde(alias = "port")]
    to_port: Option<String>,
    #[serde(alias = "protocol")]
    proto: Option<Proto>,
    #[serde(alias = "app")]
    name: Option<String>,
    comment: Option<String>,
    /// Where ufw keeps its settings: `/`, or a test's folder.
    #[serde(skip)]
    root: Option<std::path::PathBuf>,
    #[serde(skip)]
    ufw: String,
    #[serde(skip)]
    check_mode: bool,
    /// The ufw command lines (after `ufw`) `apply` runs, in the collection's order: state,
    /// default, rule, logging.
    #[serde(skip)]
    changes: Vec<Vec<String>>,
    /// Every ufw command run, as the collection's module reports them.
    #[serde(skip)]
    commands: std::cell::RefCell<Vec<String>>,
    /// `ufw status verbose` after the run.
    #[serde(skip)]
    status: String,
}

/// The `### tuple` lines of each address family: (IPv4, IPv6).
#[derive(Debug, Default, PartialEq)]
struct Tuples {
    v4: Option<Vec<String>>,
    v6: Option<Vec<String>>,
}

fn tuple_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("### tuple"))
        .map(String::from)
        .collect()
}

/// The rules files `ufw --dry-run` prints: an iptables-restore text per family, told apart by
/// their chains (`ufw-user-input`, `ufw6-user-input`). A family it does not print is untouched.
fn dry_run_tuples(out: &str) -> Tuples {
    let mut tuples = Tuples::default();
    let mut section = String::new();
    let finish = |section: &str, tuples: &mut Tuples| {
        if section.contains(":ufw6-") {
            tuples.v6 = Some(tuple_lines(section));
        } else if section.contains(":ufw-") {
            tuples.v4 = Some(tuple_lines(section));
        }
    };
    for line in out.lines() {
        if line == "*filter" {
            finish(&section, &mut tuples);
            section.clear();
        }
        section.push_str(line);
        section.push('\n');
    }
    finish(&section, &mut tuples);
    tuples
}

/// `KEY=value` or `KEY="value"` of a shell-style settings file.
fn setting(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let value = line.trim().strip_prefix(key)?.strip_prefix('=')?;
        Some(
            value
                .trim()
                .trim_matches('"')
                .trim_matches('\'')
                .to_string(),
        )
    })
}

fn policy_word(iptables: &str) -> String {
    match iptables {
        "ACCEPT" => "allow".into(),
        "DROP" => "deny".into(),
        "REJECT" => "reject".into(),
        other => other.to_lowercase(),
    }
}

impl Ufw {
    fn at(&self, path: &str) -> std::path::PathBuf {
        let root = self.root.clone().unwrap_or_else(|| "/".into());
        root.join(path.trim_start_matches('/'))
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.at(path)).ok()
    }

    /// Runs `ufw ARGS` and remembers the command for the result.
    fn ufw(&self, args: &[String]) -> Result<Ran, ModuleError> {
        let mut argv = vec![self.ufw.clone()];
        argv.extend(args.iter().cloned());
        self.commands.borrow_mut().push(
            argv.iter()
                .map(|w| {
                    if w.contains(' ') || w.is_empty() {
                        format!("'{w}'")
                    } else {
                        w.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
        process::run(&argv, &[("LANG", "C")])
    }

    fn ufw_ok(&self, args: &[String]) -> Result<Ran, ModuleError> {
        let ran = self.ufw(args)?;
        if !ran.ok() {
            let msg = if ran.stderr.trim().is_empty() {
                ran.stdout.trim().to_string()
            } else {
                ran.stderr.trim().to_string()
            };
            let mut values = Map::new();
            values.insert("commands".into(), self.commands.borrow().clone().into());
            return Err(ModuleError::FailedWith { msg, values });
        }
        Ok(ran)
    }

    /// The rules files' own tuples, from the first of the places ufw keeps them that exists.
    fn current_tuples(&self) -> (Vec<String>, Vec<String>, String, String) {
        let find = |name: &str| {
            ["/etc/ufw", "/lib/ufw", "/var/lib/ufw"]
                .iter()
                .map(|dir| format!("{dir}/{name}"))
                .find(|p| self.at(p).exists())
                .unwrap_or_else(|| format!("/etc/ufw/{name}"))
        };
        let (p4, p6) = (find("user.rules"), find("user6.rules"));
        let v4 = tuple_lines(&self.read(&p4).unwrap_or_default());
        let v6 = tuple_lines(&self.read(&p6).unwrap_or_default());
        (v4, v6, p4, p6)
    }

    /// The rule's words after `ufw`, as the collection's module builds them: `[route]
    /// [delete | insert NUM] allow [in|out] [on IF] [log] from A [port P] to B [port P]
    /// [proto P] [app NAME] [comment TEXT]`.
    fn rule_words(&self, rule: RuleKind) -> Result<Vec<String>, ModuleError> {
        let mut w: Vec<String> = Vec::new();
        if self.route {
            w.push("route".into());
        }
        if self.delete {
            w.push("delete".into());
        } else if let Some(insert) = self.insert
            && let Some(at) = self.insert_position(insert)?
        {
            w.extend(["insert".into(), at.to_string()]);
        }
        w.push(rule.word().into());
        if let Some(d) = self.direction {
            w.push(d.word().into());
        }
        if let Some(i) = &self.interface {
            w.extend(["on".into(), i.clone()]);
        }
        if let Some(i) = &self.interface_in {
            w.extend(["in".into(), "on".into(), i.clone()]);
        }
        if let Some(i) = &self.interface_out {
            w.extend(["out".into(), "on".into(), i.clone()]);
        }
        if self.log {
            w.push("log".into());
        }
        w.extend(["from".into(), self.from_ip.clone()]);
        if let Some(p) = &self.from_port {
            w.extend(["port".into(), p.clone()]);
        }
        w.extend(["to".into(), self.to_ip.clone()]);
        if let Some(p) = &self.to_port {
            w.extend(["port".into(), p.clone()]);
        }
        if let Some(p) = self.proto {
            w.extend(["proto".into(), p.word().into()]);
        }
        if let Some(n) = &self.name {
            w.extend(["app".into(), n.clone()]);
        }
        if let Some(c) = &self.comment
            && self.takes_comments()?
        {
            w.extend(["comment".into(), c.clone()]);
        }
        Ok(w)
    }

    /// Whether this ufw takes `comment` (0.35 and later); older ones go without, as with the
    /// collection's module.
    fn takes_comments(&self) -> Result<bool, ModuleError> {
        let ran = self.ufw_ok(&["--version".into()])?;
        let first = ran.stdout.lines().find(|l| !l.trim().is_empty());
        let version: Vec<u32> = first
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        match version.as_slice() {
            [0, minor, ..] => Ok(*minor >= 35),
            [major, ..] => Ok(*major > 0),
            [] => Err(ModuleError::Failed("Failed to get ufw version.".into())),
        }
    }

    /// `insert` as a rule number for ufw, counted from `insert_relative_to` in `ufw status
    /// numbered`; `None` past the last rule (ufw refuses those: the rule is added at the end).
    fn insert_position(&self, insert: i64) -> Result<Option<i64>, ModuleError> {
        if self.insert_relative_to == RelativeTo::Zero {
            return Ok(Some(insert));
        }
        let ran = self.ufw(&["status".into(), "numbered".into()])?;
        let lines: Vec<(i64, bool)> = ran
            .stdout
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix('[')?;
                let (num, _) = rest.split_once(']')?;
                Some((num.trim().parse().ok()?, l.contains("(v6)")))
            })
            .collect();
        let last = lines.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let last_v4 = lines.iter().filter(|(_, v6)| !v6).map(|(n, _)| *n).max();
        let has_v6 = lines.iter().any(|(_, v6)| *v6);
        let relative_to = match self.insert_relative_to {
            RelativeTo::Zero | RelativeTo::FirstIpv4 => 1,
            RelativeTo::LastIpv4 => last_v4.unwrap_or(1),
            RelativeTo::FirstIpv6 => last_v4.map_or(1, |n| n + 1),
            RelativeTo::LastIpv6 => {
                if has_v6 {
                    last
                } else {
                    last + 1
                }
            }
        };
        let at = insert + relative_to;
        Ok((at <= last).then_some(at))
    }

    fn check_state(&mut self, plan: &mut Plan, active: bool) {
        let Some(state) = self.state else { return };
        let word = |a: bool| if a { "active" } else { "inactive" }.to_string();
        let (after, args): (&str, &[&str]) = match state {
            State::Enabled if !active => ("active", &["-f", "enable"]),
            State::Disabled if active => ("inactive", &["-f", "disable"]),
            // A reload re-reads the rules files into the running firewall: nothing to do while
            // it is off.
            State::Reloaded if active => ("reloaded", &["-f", "reload"]),
            // As the collection's: a reset always counts as a change.
            State::Reset => ("reset", &["-f", "reset"]),
            _ => return,
        };
        plan.change("state", Some(word(active)), Some(after.into()));
        self.changes
            .push(args.iter().map(|s| s.to_string()).collect());
    }

    fn check_default(&mut self, plan: &mut Plan) {
        let Some(policy) = self.default else { return };
        let direction = self.direction.map_or("incoming", Direction::word);
        let key = match direction {
            "outgoing" => "DEFAULT_OUTPUT_POLICY",
            "routed" => "DEFAULT_FORWARD_POLICY",
            _ => "DEFAULT_INPUT_POLICY",
        };
        let current = self
            .read("/etc/default/ufw")
            .and_then(|t| setting(&t, key))
            .map(|p| policy_word(&p));
        if current.as_deref() != Some(policy.word()) {
            plan.change(
                &format!("default ({direction})"),
                current,
                Some(policy.word().into()),
            );
            let mut args = vec!["default".to_string(), policy.word().into()];
            if let Some(d) = self.direction {
                args.push(d.word().into());
            }
            self.changes.push(args);
        }
    }

    fn check_rule(&mut self, plan: &mut Plan, want_diff: bool) -> Result<(), ModuleError> {
        let Some(rule) = self.rule else {
            return Ok(());
        };
        let words = self.rule_words(rule)?;
        let mut dry = vec!["--dry-run".to_string()];
        dry.extend(words.iter().cloned());
        let ran = self.ufw_ok(&dry)?;
        let after = dry_run_tuples(&ran.stdout);
        let (v4, v6, p4, p6) = self.current_tuples();
        let mut differs = false;
        for (now, then, path) in [(v4, after.v4, p4), (v6, after.v6, p6)] {
            let Some(then) = then else { continue };
            if now == then {
                continue;
            }
            differs = true;
            if want_diff {
                let text =
                    |lines: Vec<String>| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
                plan.content.push(ContentDiff {
                    path,
                    before: Some(text(now)),
                    after: Some(text(then)),
                    summary: None,
                });
            }
        }
        if differs {
            plan.change("content", None, None);
            self.changes.push(words);
        }
        Ok(())
    }

    fn check_logging(&mut self, plan: &mut Plan) {
        let Some(logging) = self.logging else { return };
        let current = self
            .read("/etc/ufw/ufw.conf")
            .and_then(|t| setting(&t, "LOGLEVEL"))
            .unwrap_or_else(|| "off".into());
        let wanted = logging.word();
        let differs = match logging {
            // `on` keeps the level there is, or turns an `off` into `low`.
            Logging::On => current == "off",
            _ => current != wanted,
        };
        if differs {
            let after = if logging == Logging::On {
                "low"
            } else {
                wanted
            };
            plan.change("logging", Some(current), Some(after.into()));
            self.changes.push(vec!["logging".into(), wanted.into()]);
        }
    }
}

impl Resource for Ufw {
    fn validate(&self) -> Result<(), ModuleError> {
        let bad = |m: &str| Err(ModuleError::Args(m.into()));
        if self.state.is_none()
            && self.default.is_none()
            && self.rule.is_none()
            && self.logging.is_none()
        {
            return bad("one of the following is required: state, default, rule, logging");
        }
        let given = [
            self.name.is_some(),
            self.proto.is_some(),
            self.logging.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return bad("parameters are mutually exclusive: name|proto|logging");
        }
        if self.direction.is_some() && self.interface_in.is_some() {
            return bad("parameters are mutually exclusive: direction|interface_in");
        }
        if self.direction.is_some() && self.interface_out.is_some() {
            return bad("parameters are mutually exclusive: direction|interface_out");
        }
        if self.interface.is_some() && self.direction.is_none() {
            return bad("missing parameter(s) required by 'interface': direction");
        }
        if self.default.is_some() && matches!(self.direction, Some(Direction::In | Direction::Out))
        {
            return bad(
                "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
            );
        }
        if self.rule.is_some() {
            if !matches!(self.direction, None | Some(Direction::In | Direction::Out)) {
                return bad(
                    "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
                );
            }
            if !self.route && self.interface_in.is_some() && self.interface_out.is_some() {
                return bad("Only route rules can combine interface_in and interface_out");
            }
        }
        Ok(())
    }

    fn dry_run(&mut self, check_mode: bool) {
        self.check_mode = check_mode;
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        self.ufw = bin_path::required("ufw")?;
        let status = self.ufw_ok(&["status".into(), "verbose".into()])?;
        self.status = status.stdout.trim_end().to_string();
        let active = status.stdout.lines().any(|l| l.trim() == "Status: active");
        let mut plan = Plan::default();
        self.check_state(&mut plan, active);
        self.check_default(&mut plan);
        self.check_rule(&mut plan, want_diff)?;
        self.check_logging(&mut plan);
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        for args in std::mem::take(&mut self.changes) {
            self.ufw_ok(&args)?;
        }
        let status = self.ufw_ok(&["status".into(), "verbose".into()])?;
        self.status = status.stdout.trim_end().to_string();
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("commands".into(), self.commands.borrow().clone().into());
        if !self.check_mode {
            values.insert("msg".into(), self.status.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(args: Value) -> Ufw {
        let args = args.as_object().unwrap().clone();
        crate::resource::parse_args("community.general.ufw", &args).unwrap()
    }

    #[test]
    fn rule_words_in_the_collections_order() {
        let m = module(serde_json::json!({
            "rule": "allow", "direction": "in", "interface": "eth0", "src": "10.0.0.1",
            "port": 22, "proto": "tcp", "route": true, "log": true,
        }));
        assert_eq!(
            m.rule_words(RuleKind::Allow).unwrap().join(" "),
            "route allow in on eth0 log from 10.0.0.1 to any port 22 proto tcp"
        );
        let m = module(
            serde_json::json!({"rule": "deny", "delete": true, "insert": 1, "app": "OpenSSH"}),
        );
        assert_eq!(
            m.rule_words(RuleKind::Deny).unwrap().join(" "),
            "delete deny from any to any app OpenSSH"
        );
    }

    #[test]
    fn the_dry_run_tells_each_familys_rules() {
        let out = "*filter\n:ufw-user-input - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### END RULES ###\nCOMMIT\nRules updated\n";
        let t = dry_run_tuples(out);
        assert_eq!(
            t.v4,
            Some(vec![
                "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in".to_string()
            ])
        );
        assert_eq!(t.v6, None);
        assert_eq!(
            dry_run_tuples("Skipping adding existing rule\nSkipping adding existing rule (v6)\n"),
            Tuples::default()
        );
    }

    #[test]
    fn defaults_and_log_level_from_the_settings_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/default")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/ufw")).unwrap();
        std::fs::write(
            dir.path().join("etc/default/ufw"),
            "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/ufw/ufw.conf"),
            "ENABLED=no\nLOGLEVEL=low\n",
        )
        .unwrap();
        let mut m = module(serde_json::json!({"default": "deny", "logging": "on"}));
        m.root = Some(dir.path().to_path_buf());
        let mut plan = Plan::default();
        m.check_default(&mut plan);
        m.check_logging(&mut plan);
        assert!(plan.is_empty());
        let mut m = module(serde_json::json!({"policy": "deny", "direction": "outgoing"}));
        m.root = Some(dir.path().to_path_buf());
        m.check_default(&mut plan);
        assert_eq!(plan.changes[0].before.as_deref(), Some("allow"));
        assert_eq!(m.changes, vec![vec!["default", "deny", "outgoing"]]);
    }

    #[test]
    fn arguments_the_collection_refuses() {
        for args in [
            serde_json::json!({"direction": "in"}),
            serde_json::json!({"rule": "allow", "name": "x", "proto": "tcp"}),
            serde_json::json!({"rule": "allow", "interface": "eth0"}),
            serde_json::json!({"rule": "allow", "direction": "incoming"}),
            serde_json::json!({"rule": "allow", "if_in": "a", "if_out": "b"}),
        ] {
            assert!(module(args).validate().is_err());
        }
    }
}
