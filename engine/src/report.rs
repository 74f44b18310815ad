//! What a run leaves for machines and for the end of the screen: a record of every host × task,
//! the JSON and JUnit reports built from it, the drift list behind `--fail-on-change`, and the
//! closing summary.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

use crate::recap::Stats;

/// One host's result for one task (or handler, or fact gathering).
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub play: String,
    pub task: String,
    /// `file:line:column` of the task, when it has one.
    pub location: Option<String>,
    pub host: String,
    /// `ok`, `changed`, `skipped`, `failed`, `ignored` (a failure with ignore_errors) or
    /// `unreachable`.
    pub status: String,
    pub changed: bool,
    /// A `command`/`shell` that check mode could not predict.
    pub skipped_in_check_mode: bool,
    pub handler: bool,
    pub diff: Option<String>,
    pub msg: Option<String>,
    pub duration_seconds: f64,
    /// The file of Ansible's own module that ran for a task settle has no module for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ansible_module: Option<String>,
}

/// Where `--report` writes, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    Json(PathBuf),
    Junit(PathBuf),
}

impl ReportTarget {
    /// `json=PATH` or `junit=PATH`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec.split_once('=') {
            Some(("json", path)) if !path.is_empty() => Ok(ReportTarget::Json(path.into())),
            Some(("junit", path)) if !path.is_empty() => Ok(ReportTarget::Junit(path.into())),
            _ => Err(format!(
                "--report takes json=PATH or junit=PATH, not {spec:?}"
            )),
        }
    }
}

/// Everything the reports are made of.
pub struct RunSummary<'a> {
    pub records: &'a [Record],
    pub stats: &'a Stats,
    pub check_mode: bool,
    pub fail_on_change: bool,
    pub duration_seconds: f64,
    pub exit_code: i32,
}

impl RunSummary<'_> {
    /// Tasks that changed (or would change, in check mode), in run order.
    pub fn drift(&self) -> Vec<&Record> {
        self.records.iter().filter(|r| r.changed).collect()
    }

    pub fn to_json(&self) -> Value {
        let hosts: serde_json::Map<String, Value> = self
            .stats
            .hosts()
            .map(|(h, s)| {
                (
                    h.clone(),
                    json!({"ok": s.ok, "changed": s.changed, "unreachable": s.unreachable, "failed": s.failures,
                           "skipped": s.skipped, "rescued": s.rescued, "ignored": s.ignored}),
                )
            })
            .collect();
        json!({
            "settle_version": env!("CARGO_PKG_VERSION"),
            "check_mode": self.check_mode,
            "duration_seconds": self.duration_seconds,
            "exit_code": self.exit_code,
            "recap": hosts,
            "drift": self.drift().iter().map(|r| json!({"host": r.host, "task": r.task, "location": r.location})).collect::<Vec<_>>(),
            "results": self.records,
        })
    }

    /// JUnit XML: a testsuite per play, a testcase per host × task. A failed task is a
    /// `<failure>`, an unreachable host an `<error>`, a skipped task `<skipped/>`; with
    /// `--fail-on-change`, a task that changed (or would) is a failure too.
    pub fn to_junit(&self) -> String {
        let mut plays: Vec<&str> = Vec::new();
        for r in self.records {
            if !plays.contains(&r.play.as_str()) {
                plays.push(&r.play);
            }
        }
        let is_failure = |r: &Record| r.status == "failed" || (self.fail_on_change && r.changed);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total = self.records.len();
        let failures = self.records.iter().filter(|r| is_failure(r)).count();
        let errors = self
            .records
            .iter()
            .filter(|r| r.status == "unreachable")
            .count();
        let _ = writeln!(
            out,
            "<testsuites name=\"settle\" tests=\"{total}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
            self.duration_seconds
        );
        for play in plays {
            let cases: Vec<&Record> = self.records.iter().filter(|r| r.play == play).collect();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
                xml(play),
                cases.len(),
                cases.iter().filter(|r| is_failure(r)).count(),
                cases.iter().filter(|r| r.status == "unreachable").count(),
                cases.iter().filter(|r| r.status == "skipped").count(),
                cases.iter().map(|r| r.duration_seconds).sum::<f64>()
            );
            for r in cases {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(&r.host),
                    xml(&format!(
                        "{}{}",
                        r.task,
                        r.location
                            .as_ref()
                            .map(|l| format!(" ({l})"))
                            .unwrap_or_default()
                    )),
                    r.duration_seconds
                );
                let message = r.msg.clone().unwrap_or_default();
                if r.status == "failed" {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"failed\">{}</failure>\n    </testcase>",
                        xml(&message),
                        xml(&message)
                    );
                } else if r.status == "unreachable" {
                    let _ = writeln!(
                        out,
                        ">\n      <error message=\"{}\" type=\"unreachable\">{}</error>\n    </testcase>",
                        xml(&message),
                        xml(&message)
                    );
                } else if self.fail_on_change && r.changed {
                    let body = r
                        .diff
                        .clone()
                        .unwrap_or_else(|| "the task would change the host".into());
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"drift: the host differs from the playbook\" type=\"drift\">{}</failure>\n    </testcase>",
                        xml(&body)
                    );
                } else if r.status == "skipped" {
                    let _ = writeln!(out, ">\n      <skipped/>\n    </testcase>");
                } else {
                    let _ = writeln!(out, "/>");
                }
            }
            let _ = writeln!(out, "  </testsuite>");
        }
        out.push_str("</testsuites>\n");
        out
    }

    /// The closing lines: what changed on each host, and how long the run took.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let verb = if self.check_mode {
            "would change"
        } else {
            "changed"
        };
        for (host, _) in self.stats.hosts() {
            let tasks: Vec<String> = self
                .records
                .iter()
                .filter(|r| &r.host == host && r.changed)
                .map(|r| r.task.clone())
                .collect();
            if tasks.is_empty() {
                let _ = writeln!(out, "{host}: nothing {verb}");
            } else {
                let _ = writeln!(out, "{host}: {verb}: {}", tasks.join(", "));
            }
        }
        let mut fallback: Vec<&str> = Vec::new();
        for r in self.records.iter().filter(|r| r.ansible_module.is_some()) {
            if !fallback.contains(&r.task.as_str()) {
                fallback.push(&r.task);
            }
        }
        if !fallback.is_empty() {
            let core = crate::ansible_modules::ansible_core_used()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Ran Ansible's own modules{core}: {}",
                fallback.join(", ")
            );
        }
        let _ = write!(out, "Run time: {:.2} s", self.duration_seconds);
        out
    }
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}
