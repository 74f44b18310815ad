//! `cron`: one job (or one environment variable) in a user's crontab or in a file under
//! `/etc/cron.d`, as Ansible's `cron` module keeps them: each job under a `#Ansible: NAME` line,
//! found by that name (or, failing that, by the job line itself), the rest of the crontab left
//! as it was. User crontabs are read with `crontab -l` and installed with `crontab FILE`; cron
//! files are written to a temporary file and renamed.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean, text};
use crate::fsutil::{atomic_write, user_name};
use crate::process;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec, bin_path};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "cron",
    args: &[
        "name",
        "user",
        "job",
        "value",
        "cron_file",
        "state",
        "backup",
        "minute",
        "hour",
        "day",
        "dom",
        "month",
        "weekday",
        "dow",
        "special_time",
        "disabled",
        "env",
        "insertafter",
        "insertbefore",
    ],
    unsupported: &[],
    free_form: false,
};

const MARKER: &str = "#Ansible: ";

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SpecialTime {
    Reboot,
    Yearly,
    Annually,
    Monthly,
    Weekly,
    Daily,
    Hourly,
}

impl SpecialTime {
    fn word(self) -> &'static str {
        match self {
            SpecialTime::Reboot => "reboot",
            SpecialTime::Yearly => "yearly",
            SpecialTime::Annually => "annually",
            SpecialTime::Monthly => "monthly",
            SpecialTime::Weekly => "weekly",
            SpecialTime::Daily => "daily",
            SpecialTime::Hourly => "hourly",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cron {
    #[serde(deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    user: Option<String>,
    #[serde(default, alias = "value", deserialize_with = "text")]
    job: Option<String>,
    #[serde(default, deserialize_with = "text")]
    cron_file: Option<String>,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "boolean")]
    backup: bool,
    #[serde(default, deserialize_with = "text")]
    minute: Option<String>,
    #[serde(default, deserialize_with = "text")]
    hour: Option<String>,
    #[serde(default, alias = "dom", deserialize_with = "text")]
    day: Option<String>,
    #[serde(default, deserialize_with = "text")]
    month: Option<String>,
    #[serde(default, alias = "dow", deserialize_with = "text")]
    weekday: Option<String>,
    #[serde(default)]
    special_time: Option<SpecialTime>,
    #[serde(default, deserialize_with = "boolean")]
    disabled: bool,
    #[serde(default, deserialize_with = "boolean")]
    env: bool,
    #[serde(default, deserialize_with = "text")]
    insertafter: Option<String>,
    #[serde(default, deserialize_with = "text")]
    insertbefore: Option<String>,
    #[serde(skip)]
    tab: Option<CronTab>,
    /// The crontab as read, before any edit (for the backup).
    #[serde(skip)]
    original: Vec<String>,
    /// `state: absent` emptied a cron file: the file goes.
    #[serde(skip)]
    remove_file: bool,
    #[serde(skip)]
    backup_file: Option<String>,
    #[serde(skip)]
    warnings: Vec<String>,
    /// Ansible's `diff` result, in diff mode when something changed.
    #[serde(skip)]
    diff: Option<Value>,
}

/// A crontab as Ansible's `CronTab` holds it: its lines, and the text as read.
#[derive(Debug, Default)]
struct CronTab {
    lines: Vec<String>,
    existing: String,
    /// The cron file, or `None` for a user's crontab.
    file: Option<PathBuf>,
    user: Option<String>,
    command: String,
}

fn comment(name: &str) -> String {
    format!("{MARKER}{name}")
}

/// `re.match(r'^NAME=', line)`: the name is a pattern in Ansible; one that does not compile as a
/// regular expression here is taken literally.
fn env_matcher(name: &str) -> impl Fn(&str) -> bool {
    let re = Regex::new(&format!("^(?:{name})=")).ok();
    let literal = format!("{name}=");
    move |line: &str| match &re {
        Some(re) => re.is_match(line),
        None => line.starts_with(&literal),
    }
}

impl CronTab {
    fn header(&self) -> String {
        match (&self.file, &self.user) {
            (Some(f), _) => f.display().to_string(),
            (None, Some(u)) => format!("crontab for user \"{u}\""),
            (None, None) => "crontab".into(),
        }
    }

    /// `-u USER` unless the user is the one running the module, as Ansible adds it.
    fn user_args(&self) -> Vec<String> {
        match &self.user {
            Some(u) if *u != user_name(unsafe_getuid()) => vec!["-u".into(), u.clone()],
            _ => Vec::new(),
        }
    }

    fn read(&mut self) -> Result<(), ModuleError> {
        if let Some(file) = &self.file {
            if let Ok(bytes) = std::fs::read(file) {
                self.existing = String::from_utf8_lossy(&bytes).into_owned();
                self.lines = split_lines(&self.existing);
            }
            return Ok(());
        }
        let mut argv = vec![self.command.clone()];
        argv.extend(self.user_args());
        argv.push("-l".into());
        let ran = process::run(&argv, &[])?;
        if ran.rc != 0 && ran.rc != 1 {
            return Err(ModuleError::Failed("Unable to read crontab".into()));
        }
        self.existing = ran.stdout;
        let headers = [
            r"^# DO NOT EDIT THIS FILE - edit the master and reinstall.",
            r"^# \(/tmp/.*installed on.*\)",
            r"^# \(.*version.*\)",
        ]
        .map(|p| Regex::new(p).ok());
        for (count, line) in split_lines(&self.existing.clone()).into_iter().enumerate() {
            let header = headers.iter().flatten().any(|h| h.is_match(&line));
            if count > 2 || !header {
                self.lines.push(line);
            } else {
                let pattern = format!("{}[\r\n]?", regex::escape(&line));
                if let Ok(re) = Regex::new(&pattern) {
                    self.existing = re.replace(&self.existing, "").into_owned();
                }
            }
        }
        Ok(())
    }

    fn render(&self) -> String {
        let text = self.lines.join("\n");
        if text.is_empty() {
            text
        } else {
            format!("{}\n", text.trim_end_matches(['\r', '\n']))
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }

    /// Ansible's `find_job`: by the `#Ansible:` line first, then by the job line itself (adding
    /// or naming its `#Ansible:` line). Three elements mean "found by the job, header added".
    fn find_job(&mut self, name: &str, job: Option<&str>) -> Vec<String> {
        let mut found: Option<String> = None;
        for line in &self.lines {
            if let Some(c) = &found {
                if c == name {
                    return vec![c.clone(), line.clone()];
                }
                found = None;
            } else if line.starts_with(MARKER) {
                found = Some(line.replace(MARKER, ""));
            }
        }
        if let Some(job) = job {
            for i in 0..self.lines.len() {
                if self.lines[i] != job {
                    continue;
                }
                // Python's lines[i - 1]: the last line when i is 0.
                let previous = if i == 0 {
                    self.lines.last().cloned().unwrap_or_default()
                } else {
                    self.lines[i - 1].clone()
                };
                if !previous.starts_with(MARKER) {
                    self.lines.insert(i, comment(name));
                    return vec![comment(name), job.to_string(), "True".into()];
                } else if !name.is_empty() && previous == comment("None") {
                    let at = if i == 0 { self.lines.len() - 1 } else { i - 1 };
                    self.lines[at] = comment(name);
                    return vec![comment(name), job.to_string(), "True".into()];
                }
            }
        }
        Vec::new()
    }

    /// Ansible's `_update_job`: the line after each `#Ansible: NAME` replaced by the job (or,
    /// with `None`, both lines dropped).
    fn update_job(&mut self, name: &str, job: Option<&str>) {
        let header = comment(name);
        let mut lines = Vec::with_capacity(self.lines.len() + 1);
        let mut pending = false;
        for line in std::mem::take(&mut self.lines) {
            if pending {
                if let Some(job) = job {
                    lines.push(header.clone());
                    lines.push(job.to_string());
                }
                pending = false;
            } else if line == header {
                pending = true;
            } else {
                lines.push(line);
            }
        }
        self.lines = lines;
    }

    fn find_env(&self, name: &str) -> Option<(usize, String)> {
        let matches = env_matcher(name);
        self.lines
            .iter()
            .enumerate()
            .find(|(_, l)| matches(l))
            .map(|(i, l)| (i, l.clone()))
    }

    fn update_env(&mut self, name: &str, decl: Option<&str>) {
        let matches = env_matcher(name);
        let lines = std::mem::take(&mut self.lines);
        self.lines = lines
            .into_iter()
            .filter_map(|l| {
                if matches(&l) {
                    decl.map(str::to_string)
                } else {
                    Some(l)
                }
            })
            .collect();
    }

    fn job_names(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.starts_with(MARKER))
            .map(|l| l.replace(MARKER, ""))
            .collect()
    }

    fn env_names(&self) -> Vec<String> {
        let Ok(re) = Regex::new(r"^\S+=") else {
            return Vec::new();
        };
        self.lines
            .iter()
            .filter(|l| re.is_match(l))
            .map(|l| l.split('=').next().unwrap_or_default().to_string())
            .collect()
    }
}

fn unsafe_getuid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

/// Python's `str.splitlines()` for the line ends a crontab has.
fn split_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                lines.push(rest[..i].to_string());
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest.to_string());
                rest = "";
            }
        }
    }
    lines
}

impl Cron {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    fn time(field: &Option<String>) -> &str {
        field.as_deref().unwrap_or("*")
    }

    /// Ansible's `get_cron_job`.
    fn job_line(&self, job: &str) -> String {
        let job = job.trim_matches(['\r', '\n']);
        let prefix = if self.disabled { "#" } else { "" };
        let user = match &self.cron_file {
            Some(_) => format!(" {}", self.user.as_deref().unwrap_or("None")),
            None => String::new(),
        };
        match self.special_time {
            Some(special) => format!("{prefix}@{}{user} {job}", special.word()),
            None => format!(
                "{prefix}{} {} {} {} {}{user} {job}",
                Self::time(&self.minute),
                Self::time(&self.hour),
                Self::time(&self.day),
                Self::time(&self.month),
                Self::time(&self.weekday),
            ),
        }
    }

    /// Edits the crontab as Ansible's `main` does; whether anything changed.
    fn edit(&mut self, tab: &mut CronTab) -> Result<bool, ModuleError> {
        let install = self.state == Presence::Present;
        let name = self.name().to_string();
        let mut changed = false;
        if self.env {
            if name.contains(' ') {
                return Err(ModuleError::Failed(
                    "Invalid name for environment variable".into(),
                ));
            }
            let decl = format!("{name}=\"{}\"", self.job.as_deref().unwrap_or("None"));
            let old = tab.find_env(&name);
            if install {
                match old {
                    None => {
                        self.add_env(tab, decl)?;
                        changed = true;
                    }
                    Some((_, line)) if line != decl => {
                        tab.update_env(&name, Some(&decl));
                        changed = true;
                    }
                    Some(_) => {}
                }
            } else if old.is_some() {
                tab.update_env(&name, None);
                changed = true;
            }
        } else if install {
            let job = self.job.clone().unwrap_or_default();
            if job.trim_matches(['\r', '\n']).contains(['\r', '\n']) {
                self.warnings
                    .push("Job should not contain line breaks".into());
            }
            let job = self.job_line(&job);
            let old = tab.find_job(&name, Some(&job));
            if old.is_empty() {
                tab.lines.push(comment(&name));
                tab.lines.push(job.clone());
                changed = true;
            }
            if old.len() > 1 && old[1] != job {
                tab.update_job(&name, Some(&job));
                changed = true;
            }
            if old.len() > 2 {
                tab.update_job(&name, Some(&job));
                changed = true;
            }
        } else if !tab.find_job(&name, None).is_empty() {
            tab.update_job(&name, None);
            changed = true;
            if tab.file.is_some() && tab.is_empty() {
                self.remove_file = true;
                return Ok(tab.file.as_ref().is_some_and(|f| f.is_file()));
            }
        }
        if !changed && !tab.existing.is_empty() && !tab.existing.ends_with(['\r', '\n']) {
            changed = true;
        }
        Ok(changed)
    }

    fn add_env(&self, tab: &mut CronTab, decl: String) -> Result<(), ModuleError> {
        let other = match (&self.insertafter, &self.insertbefore) {
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => {
                tab.lines.insert(0, decl);
                return Ok(());
            }
        };
        match tab.find_env(other) {
            Some((i, _)) => {
                let at = if self.insertafter.is_some() { i + 1 } else { i };
                tab.lines.insert(at, decl);
                Ok(())
            }
            None => Err(ModuleError::Failed(format!(
                "Variable named '{other}' not found."
            ))),
        }
    }

    fn write_backup(&mut self) -> Result<(), ModuleError> {
        let tab = CronTab {
            lines: self.original.clone(),
            ..CronTab::default()
        };
        let context = |e| ModuleError::io("write the crontab backup", e);
        let mut file = tempfile::Builder::new()
            .prefix("crontab")
            .tempfile()
            .map_err(context)?;
        file.write_all(tab.render().as_bytes()).map_err(context)?;
        let (_, path) = file.keep().map_err(|e| context(e.error))?;
        self.backup_file = Some(path.display().to_string());
        Ok(())
    }
}

impl Resource for Cron {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.name.is_none() {
            return Err(ModuleError::Args("missing required arguments: name".into()));
        }
        if self.insertafter.is_some() && self.insertbefore.is_some() {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: insertafter|insertbefore".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, want_diff: bool) -> Result<Plan, ModuleError> {
        if let Some(file) = &self.cron_file {
            if file == "/etc/crontab" {
                return Err(ModuleError::Failed(
                    "Will not manage /etc/crontab via cron_file, see documentation.".into(),
                ));
            }
            let base = file.rsplit('/').next().unwrap_or_default();
            let ok = Regex::new("^[A-Za-z0-9_-]+$").is_ok_and(|re| re.is_match(base));
            if !ok {
                self.warnings.push(format!("Filename portion of cron_file (\"{base}\") should consist solely of upper- and lower-case letters, digits, underscores, and hyphens"));
            }
        }
        let mut tab = CronTab {
            command: bin_path::required("crontab")?,
            user: self.user.clone(),
            file: self.cron_file.as_ref().map(|f| {
                if f.starts_with('/') {
                    PathBuf::from(f)
                } else {
                    PathBuf::from("/etc/cron.d").join(f)
                }
            }),
            ..CronTab::default()
        };
        tab.read()?;
        self.original = tab.lines.clone();
        let before = tab.existing.clone();

        let all_times = [
            &self.minute,
            &self.hour,
            &self.day,
            &self.month,
            &self.weekday,
        ];
        if self.special_time.is_some() && all_times.iter().any(|t| Self::time(t) != "*") {
            return Err(ModuleError::Failed(
                "You cannot combine special_time with any of the time or day/date parameters."
                    .into(),
            ));
        }
        if self.state == Presence::Present {
            if self.cron_file.is_some() && self.user.is_none() {
                return Err(ModuleError::Failed(
                    "To use cron_file=... parameter you must specify user=... as well".into(),
                ));
            }
            if self.job.is_none() {
                return Err(ModuleError::Failed(
                    "You must specify 'job' to install a new cron job or variable".into(),
                ));
            }
            if (self.insertafter.is_some() || self.insertbefore.is_some()) && !self.env {
                return Err(ModuleError::Failed(
                    "Insertafter and insertbefore parameters are valid only with env=yes".into(),
                ));
            }
        }

        let changed = self.edit(&mut tab)?;
        let mut plan = Plan::default();
        if changed {
            let header = tab.header();
            let after = if self.remove_file {
                None
            } else {
                Some(tab.render())
            };
            plan.change("content", None, None);
            if want_diff {
                self.diff = Some(serde_json::json!({
                    "before": before,
                    "before_header": header,
                    "after": after.clone().unwrap_or_default(),
                    "after_header": if self.remove_file { "/dev/null".to_string() } else { header.clone() },
                }));
                plan.content.push(ContentDiff {
                    path: header,
                    before: Some(before),
                    after,
                    summary: None,
                });
            }
        }
        self.tab = Some(tab);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        if plan.is_empty() {
            return Ok(());
        }
        if self.backup {
            self.write_backup()?;
        }
        let Some(tab) = &self.tab else {
            return Ok(());
        };
        if let Some(file) = &tab.file {
            if self.remove_file {
                return match std::fs::remove_file(file) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(ModuleError::io(format!("remove {}", file.display()), e)),
                };
            }
            // An existing file keeps its mode and owner, as Python's open('wb') keeps them; a
            // new one is 0644 (the module's umask is 022).
            let (mode, uid, gid) = match std::fs::metadata(file) {
                Ok(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
                Err(_) => (0o644, None, None),
            };
            return atomic_write(file, tab.render().as_bytes(), mode, uid, gid);
        }
        let context = |e| ModuleError::io("write the new crontab", e);
        let mut file = tempfile::Builder::new()
            .prefix("crontab")
            .tempfile()
            .map_err(context)?;
        file.write_all(tab.render().as_bytes()).map_err(context)?;
        file.flush().map_err(context)?;
        let path = file.path().display().to_string();
        let mut argv = vec![tab.command.clone()];
        argv.extend(tab.user_args());
        argv.push(path.clone());
        let ran = process::run(&argv, &[])?;
        if !ran.ok() {
            return Err(ModuleError::Failed(format!(
                "Failed to install new cronfile: {path}: {}",
                ran.stderr.trim()
            )));
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        if !self.warnings.is_empty() {
            values.insert(
                "warnings".into(),
                self.warnings.iter().cloned().map(Value::from).collect(),
            );
        }
        if let Some(f) = &self.cron_file {
            values.insert("cron_file".into(), f.clone().into());
        }
        if self.remove_file {
            values.insert("state".into(), self.state.word().into());
            return;
        }
        if let Some(tab) = &self.tab {
            let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::from).collect());
            values.insert("jobs".into(), list(tab.job_names()));
            values.insert("envs".into(), list(tab.env_names()));
        }
        if let Some(diff) = &self.diff {
            values.insert("diff".into(), diff.clone());
        }
        if let Some(b) = &self.backup_file {
            values.insert("backup_file".into(), b.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(args: serde_json::Value) -> Cron {
        serde_json::from_value(args).unwrap()
    }

    fn tab(text: &str, file: bool) -> CronTab {
        CronTab {
            lines: split_lines(text),
            existing: text.into(),
            file: file.then(|| PathBuf::from("/etc/cron.d/x")),
            user: Some("root".into()),
            command: "crontab".into(),
        }
    }

    fn edited(args: serde_json::Value, text: &str) -> (bool, String) {
        let mut c = cron(args);
        let mut t = tab(text, c.cron_file.is_some());
        let changed = c.edit(&mut t).unwrap();
        (changed, t.render())
    }

    #[test]
    fn jobs_go_under_their_marker() {
        let args = serde_json::json!({"name": "backup", "minute": 5, "hour": "2", "job": "/bin/b"});
        assert_eq!(
            edited(args.clone(), "MAILTO=x\n"),
            (
                true,
                "MAILTO=x\n#Ansible: backup\n5 2 * * * /bin/b\n".into()
            )
        );
        assert_eq!(
            edited(args.clone(), "#Ansible: backup\n5 2 * * * /bin/b\n"),
            (false, "#Ansible: backup\n5 2 * * * /bin/b\n".into())
        );
        assert_eq!(
            edited(args.clone(), "#Ansible: backup\n1 2 * * * /bin/b\n# end\n"),
            (true, "#Ansible: backup\n5 2 * * * /bin/b\n# end\n".into())
        );
        // Found by the job line: the marker is added above it.
        assert_eq!(
            edited(args, "# x\n5 2 * * * /bin/b"),
            (true, "# x\n#Ansible: backup\n5 2 * * * /bin/b\n".into())
        );
        let file = serde_json::json!({"name": "r", "special_time": "reboot", "job": "j", "user": "app", "cron_file": "x", "disabled": true});
        assert_eq!(
            edited(file, ""),
            (true, "#Ansible: r\n#@reboot app j\n".into())
        );
    }

    #[test]
    fn absent_jobs_and_env_lines() {
        let args = serde_json::json!({"name": "a", "state": "absent"});
        assert_eq!(
            edited(args, "#Ansible: a\n* * * * * x\nA=1\n"),
            (true, "A=1\n".into())
        );
        let args =
            serde_json::json!({"name": "PATH", "env": true, "job": "/bin", "insertafter": "A"});
        assert_eq!(
            edited(args, "A=1\nB=2\n"),
            (true, "A=1\nPATH=\"/bin\"\nB=2\n".into())
        );
        let args = serde_json::json!({"name": "B", "env": true, "job": "3"});
        assert_eq!(edited(args, "A=1\nB=2\n"), (true, "A=1\nB=\"3\"\n".into()));
        let mut c = cron(serde_json::json!({"name": "a", "state": "absent", "cron_file": "x"}));
        let mut t = tab("#Ansible: a\n* * * * * root x\n", true);
        c.edit(&mut t).unwrap();
        assert!(c.remove_file);
    }

    #[test]
    fn a_missing_final_newline_is_a_change() {
        let args = serde_json::json!({"name": "a", "job": "x"});
        assert_eq!(
            edited(args, "#Ansible: a\n* * * * * x"),
            (true, "#Ansible: a\n* * * * * x\n".into())
        );
    }
}
