//! What people see: Ansible's default output, line for line, coloured only on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::Value;

use crate::Unpoisoned;
use crate::recap::Stats;
use crate::value_text;

const RESET: &str = "\x1b[0m";
pub(crate) const GREEN: &str = "\x1b[0;32m";
pub(crate) const YELLOW: &str = "\x1b[0;33m";
pub(crate) const RED: &str = "\x1b[0;31m";
pub(crate) const CYAN: &str = "\x1b[0;36m";
pub(crate) const MAGENTA: &str = "\x1b[0;35m";
const BRIGHT_RED: &str = "\x1b[1;31m";
/// Ansible's COLOR_DEBUG (dark gray).
const DARK_GRAY: &str = "\x1b[1;30m";

/// The screen: one lock so lines from parallel hosts never interleave.
pub struct Output {
    colour: bool,
    /// `--output json`: one JSON object per line instead of the text for people.
    json: bool,
    pub verbosity: u8,
    /// Ad-hoc mode, Ansible's `minimal` callback: the module the command runs. No banners, no
    /// recap; results as `host | CHANGED => {…}`, or for command, shell and raw
    /// `host | CHANGED | rc=0 >>` and what the command printed.
    minimal: Option<String>,
    /// `-o`: each ad-hoc result on one line, as Ansible's `oneline` callback.
    oneline: bool,
    lock: Mutex<()>,
    /// The warnings [`Output::warning_once`] has printed.
    warned: Mutex<std::collections::HashSet<String>>,
    /// The `[ERROR]` blocks [`Output::task_error`] has printed.
    errored: Mutex<std::collections::HashSet<String>>,
    /// What the default callback leaves out: `ok` and `skipping` results when
    /// `display_ok_hosts`/`display_skipped_hosts` are off.
    callback: CallbackOptions,
    /// While results are hidden: the banner (and task path) of the task under way, printed
    /// before the first line shown for it, so a task that shows nothing shows no banner.
    pending: Mutex<Vec<String>>,
    /// A free (or host_pinned) play: as Ansible's callback there, a task's banner waits for a
    /// result of that task, and comes again whenever a result follows another task's.
    lazy_banners: std::sync::atomic::AtomicBool,
    /// In such a play, each host's task under way: its banner, and where the task is.
    host_banners: Mutex<std::collections::HashMap<String, (String, settle_yaml::Location)>>,
    /// Which task's banner was printed last, in such a play.
    last_banner: Mutex<String>,
}

/// The default callback's options that change what is shown, and where.
#[derive(Debug, Clone, Copy, Default)]
struct CallbackOptions {
    /// `display_ok_hosts` off: `ok` results are left out.
    ok: bool,
    /// `display_skipped_hosts` off: `skipping` results are left out.
    skipped: bool,
    /// `display_failed_stderr`: failures (their result lines and error blocks) go to
    /// standard error.
    failed_to_stderr: bool,
    /// `show_task_path_on_failure`: a task's failure line follows its `task path:` (below
    /// -vv, which shows it under every banner).
    task_path_on_failure: bool,
    /// `check_mode_markers`: ` [CHECK MODE]` after the banner of a play or task in check
    /// mode, and `DRY RUN` banners around a `--check` run.
    check_markers: bool,
}

impl CallbackOptions {
    /// From `ANSIBLE_DISPLAY_OK_HOSTS`, `ANSIBLE_DISPLAY_SKIPPED_HOSTS` (both shown unless set
    /// false), `ANSIBLE_DISPLAY_FAILED_STDERR` and `ANSIBLE_SHOW_TASK_PATH_ON_FAILURE`, where
    /// ansible.cfg's settings arrive too.
    fn configured() -> Self {
        let off = |name: &str| {
            std::env::var(name).is_ok_and(|v| !crate::template::json_bool(&Value::String(v)))
        };
        CallbackOptions {
            ok: off("ANSIBLE_DISPLAY_OK_HOSTS"),
            skipped: off("ANSIBLE_DISPLAY_SKIPPED_HOSTS"),
            failed_to_stderr: crate::template::env_flag("ANSIBLE_DISPLAY_FAILED_STDERR"),
            task_path_on_failure: crate::template::env_flag("ANSIBLE_SHOW_TASK_PATH_ON_FAILURE"),
            check_markers: crate::template::env_flag("ANSIBLE_CHECK_MODE_MARKERS"),
        }
    }

    fn any(self) -> bool {
        self.ok || self.skipped
    }
}

/// A result's note that its `warnings` were shown as they arose (with where they point), so
/// its result line shows them not again.
pub(crate) const WARNINGS_SHOWN: &str = "_settle_warnings_shown";

/// The default callback's `result_format` (`ANSIBLE_CALLBACK_RESULT_FORMAT`, ansible.cfg's
/// `callback_result_format`: `json` or `yaml`) and `pretty_results`
/// (`ANSIBLE_CALLBACK_FORMAT_PRETTY`, `callback_format_pretty`), read once.
#[derive(Debug, Clone, Copy, Default)]
struct ResultFormat {
    yaml: bool,
    pretty: Option<bool>,
}

impl ResultFormat {
    fn configured() -> Self {
        static FORMAT: std::sync::OnceLock<ResultFormat> = std::sync::OnceLock::new();
        *FORMAT.get_or_init(|| ResultFormat {
            yaml: std::env::var("ANSIBLE_CALLBACK_RESULT_FORMAT")
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("yaml")),
            pretty: std::env::var("ANSIBLE_CALLBACK_FORMAT_PRETTY")
                .ok()
                .map(|v| crate::template::json_bool(&Value::String(v))),
        })
    }
}

/// Python's `textwrap.indent`: each line that is not blank, prefixed.
fn indent_lines(text: &str, prefix: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.trim().is_empty() {
            true => line.to_string(),
            false => format!("{prefix}{line}"),
        })
        .collect()
}

/// How one host's task (or loop item) ended, as the result line shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

impl Output {
    pub fn new(verbosity: u8, json: bool) -> Self {
        let colour =
            !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output {
            colour,
            json,
            verbosity,
            minimal: None,
            oneline: false,
            lock: Mutex::new(()),
            warned: Mutex::default(),
            errored: Mutex::default(),
            callback: CallbackOptions::configured(),
            pending: Mutex::default(),
            lazy_banners: Default::default(),
            host_banners: Mutex::default(),
            last_banner: Mutex::default(),
        }
    }

    /// The output of an ad-hoc command running `module` (see [`Output::minimal`]'s field).
    pub fn minimal(mut self, module: Option<String>, oneline: bool) -> Self {
        self.minimal = module;
        self.oneline = oneline;
        self
    }

    /// A play whose pattern matched no host: `skipping: no hosts matched` in a playbook, a
    /// warning for an ad-hoc command, as Ansible says them.
    pub fn no_hosts_matched(&self) {
        if self.minimal.is_some() {
            self.warning("No hosts matched, nothing to do");
        } else {
            self.print("skipping: no hosts matched");
        }
    }

    /// `host | STATUS …` as Ansible's `minimal` callback prints a result.
    fn minimal_result(&self, module: &str, host: &str, status: Status, result: &Value) {
        let caption = match status {
            Status::Ok => "SUCCESS",
            Status::Changed => "CHANGED",
            Status::Skipped => {
                self.print(&self.paint(CYAN, &format!("{host} | SKIPPED")));
                return;
            }
            Status::Failed => "FAILED",
            Status::Unreachable => "UNREACHABLE!",
        };
        let colour = match status {
            Status::Ok => GREEN,
            Status::Changed => YELLOW,
            _ => RED,
        };
        let text_of = |key: &str| result.get(key).map(value_text).unwrap_or_default();
        let commandlike = matches!(module, "command" | "shell" | "raw")
            && status != Status::Unreachable
            && result.get("ansible_job_id").is_none();
        let rc = || {
            result
                .get("rc")
                .map(value_text)
                .unwrap_or_else(|| "-1".into())
        };
        let text = if commandlike && self.oneline {
            let mut line = format!(
                "{host} | {caption} | rc={} | (stdout) {}",
                rc(),
                text_of("stdout").replace('\n', "\\n")
            );
            let stderr = text_of("stderr");
            if !stderr.is_empty() {
                line.push_str(&format!(" (stderr) {}", stderr.replace('\n', "\\n")));
            }
            line
        } else if commandlike {
            let rc = rc();
            format!(
                "{host} | {caption} | rc={rc} >>\n{}{}{}",
                text_of("stdout"),
                text_of("stderr"),
                text_of("msg")
            )
        } else {
            let caption = if status == Status::Failed {
                "FAILED!"
            } else {
                caption
            };
            let mut map = result.as_object().cloned().unwrap_or_default();
            map.retain(|k, _| !is_internal_key(k) && k != "failed" && k != "exception");
            map.values_mut().for_each(strip_internal_keys);
            if self.verbosity < 3 {
                map.remove("invocation");
            }
            let json = if self.oneline {
                // Ansible's `_dump_results` indents by 4 from -vvv on, whatever it is asked.
                let indent = if self.verbosity > 2 { 4 } else { 0 };
                py_json(&Value::Object(map), Some(indent)).replace('\n', "")
            } else {
                py_json(&Value::Object(map), Some(4))
            };
            format!("{host} | {caption} => {json}")
        };
        self.print(&self.paint(colour, &text));
    }

    /// One event of the `--output json` stream (nothing in text mode).
    pub fn event(&self, event: &Value) {
        if self.json {
            let _guard = self.lock.lock().unpoisoned();
            let mut out = std::io::stdout().lock();
            // Vault-decrypted values never reach the screen.
            let _ = writeln!(out, "{}", settle_vault::redact(&event.to_string()));
            let _ = out.flush();
        }
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.colour {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Holds the screen while a question is asked (`--step`).
    pub fn lock_for_prompt(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unpoisoned()
    }

    pub fn print(&self, text: &str) {
        self.print_to(text, false);
    }

    /// A line on standard output, or on standard error (a failure, with the default callback's
    /// `display_failed_stderr`).
    fn print_to(&self, text: &str, stderr: bool) {
        if self.json {
            return;
        }
        let _guard = self.lock.lock().unpoisoned();
        let mut out = std::io::stdout().lock();
        // The banner of the task this line belongs to, when it waited for one.
        for line in std::mem::take(&mut *self.pending.lock().unpoisoned()) {
            let _ = writeln!(out, "{line}");
        }
        // Vault-decrypted values never reach the screen (results, `debug`, diffs, -v).
        let text = settle_vault::redact(text);
        if stderr {
            let _ = out.flush();
            eprintln!("{text}");
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// With -vv, what Ansible says as it loads its callbacks before the first playbook: it
    /// keeps one stdout callback (`default`; `minimal` for an ad-hoc command, `oneline` with
    /// `-o`) and skips ansible-core's other two.
    pub fn callbacks_loaded(&self) {
        let kept = match (&self.minimal, self.oneline) {
            (None, _) => "default",
            (Some(_), false) => "minimal",
            (Some(_), true) => "oneline",
        };
        if kept == "oneline" {
            settle_yaml::deprecation::deprecated(
                "The oneline callback plugin is deprecated.",
                "2.23",
                None,
                None,
                None,
            );
        }
        if self.verbosity >= 2 {
            for name in ["default", "minimal", "oneline"]
                .into_iter()
                .filter(|n| *n != kept)
            {
                self.print(&format!(
                    "Skipping callback '{name}', as we already have a stdout callback."
                ));
            }
        }
    }

    /// `N plays in PATH` under the `PLAYBOOK:` banner (-vv); an ad-hoc command has neither.
    pub fn playbook_plays(&self, plays: usize, path: &std::path::Path) {
        if self.minimal.is_none() {
            self.print(&format!("{plays} plays in {}", path.display()));
        }
    }

    /// `\nPLAY [name] *****` filled with stars to 80 columns, as Ansible's banner.
    pub fn banner(&self, text: &str) {
        if self.minimal.is_some() {
            return;
        }
        let text = text.trim();
        let stars = 79usize.saturating_sub(text.chars().count()).max(3);
        let banner = format!("\n{text} {}", "*".repeat(stars));
        let mut pending = self.pending.lock().unpoisoned();
        pending.clear();
        // With results hidden, a task's banner waits for the first line shown for it; any other
        // banner (a play, the recap) is shown, and the waiting one of a task that showed
        // nothing is dropped.
        if self.callback.any()
            && (text.starts_with("TASK [") || text.starts_with("RUNNING HANDLER ["))
        {
            pending.push(banner);
            return;
        }
        drop(pending);
        self.print(&banner);
    }

    /// Whether the play under way is a free one, whose task banners wait for results.
    pub fn set_lazy_banners(&self, on: bool) {
        self.lazy_banners
            .store(on, std::sync::atomic::Ordering::SeqCst);
        self.host_banners.lock().unpoisoned().clear();
        self.last_banner.lock().unpoisoned().clear();
    }

    /// A task's banner as `hosts` start it, with its `task path:` line from -vv on. In a free
    /// play it waits for the task's first result (see `lazy_banners`).
    pub fn task_banner(&self, text: &str, at: &settle_yaml::Location, hosts: &[String]) {
        if !self.lazy_banners.load(std::sync::atomic::Ordering::SeqCst) {
            self.banner(text);
            return self.task_path(at);
        }
        let mut banners = self.host_banners.lock().unpoisoned();
        for host in hosts {
            banners.insert(host.clone(), (text.to_string(), at.clone()));
        }
    }

    /// In a free play, the banner of the host's task before its result (or `included:`
    /// line), unless the last one printed was that task's.
    pub fn host_banner(&self, host: &str) {
        if !self.lazy_banners.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // A delegated task's result names the host `h1 -> h2`.
        let host = host.split(" -> ").next().unwrap_or(host);
        let Some((text, at)) = self.host_banners.lock().unpoisoned().get(host).cloned() else {
            return;
        };
        let task = format!("{text} {at}");
        let mut last = self.last_banner.lock().unpoisoned();
        if *last != task {
            *last = task;
            self.banner(&text);
            self.task_path(&at);
        }
    }

    /// What follows a play's or task's banner title: ` [CHECK MODE]` when it is in check mode
    /// and `check_mode_markers` is on.
    pub fn check_marker(&self, checking: bool) -> &'static str {
        match checking && self.callback.check_markers {
            true => " [CHECK MODE]",
            false => "",
        }
    }

    /// The `DRY RUN` banner a `--check` run starts and ends with under `check_mode_markers`.
    pub fn dry_run_banner(&self) {
        if self.callback.check_markers {
            self.banner("DRY RUN");
        }
    }

    /// `task path: /abs/file.yml:LINE` under a task's banner from -vv on, as Ansible's default
    /// callback prints it.
    pub fn task_path(&self, at: &settle_yaml::Location) {
        if self.minimal.is_some() || self.verbosity < 2 {
            return;
        }
        let line = self.task_path_line(at);
        let mut pending = self.pending.lock().unpoisoned();
        match pending.is_empty() {
            true => {
                drop(pending);
                self.print(&line);
            }
            false => pending.push(line),
        }
    }

    /// `task path: /abs/file.yml:LINE` before a task's failure line, when
    /// `show_task_path_on_failure` asks for it and -vv has not shown it already.
    pub fn task_path_on_failure(&self, at: &settle_yaml::Location) {
        if self.minimal.is_some() || self.verbosity >= 2 || !self.callback.task_path_on_failure {
            return;
        }
        self.print(&self.task_path_line(at));
    }

    fn task_path_line(&self, at: &settle_yaml::Location) -> String {
        let file = std::path::absolute(&at.file).unwrap_or_else(|_| at.file.to_path_buf());
        self.paint(
            DARK_GRAY,
            &format!("task path: {}:{}", file.display(), at.line),
        )
    }

    /// A warning printed once per run however often it is met, as Ansible's display
    /// deduplicates its warnings.
    pub fn warning_once(&self, text: &str) {
        if self.warned.lock().unpoisoned().insert(text.to_string()) {
            self.warning(text);
        }
    }

    pub fn warning(&self, text: &str) {
        let _guard = self.lock.lock().unpoisoned();
        // As Ansible's display: Windows line ends become `\n` (a lone `\r` stays), and a
        // warning of several lines is followed by a blank one.
        let text = text.trim().replace("\r\n", "\n");
        let mut line = format!("[WARNING]: {}", settle_vault::redact(&text));
        if text.contains('\n') {
            line.push('\n');
        }
        eprintln!("{}", self.paint(MAGENTA, &line));
    }

    /// One result line: `ok: [h]`, `changed: [h] => (item=x)`, `fatal: [h]: FAILED! => {…}`.
    pub fn result(
        &self,
        host: &str,
        status: Status,
        item: Option<&str>,
        result: &Value,
        ignored: bool,
    ) {
        // Left out, warnings and all, as the default callback leaves them out.
        if self.minimal.is_none()
            && (status == Status::Ok && self.callback.ok
                || status == Status::Skipped && self.callback.skipped)
        {
            return;
        }
        self.host_banner(host);
        // A module's warnings, before its result line, once per run (Ansible's callbacks take
        // them out of the result they show).
        if let Some(Value::Array(warnings)) = result.get("warnings")
            && result.get(WARNINGS_SHOWN).is_none()
        {
            for warning in warnings.iter().filter_map(Value::as_str) {
                self.warning_once(warning.trim());
            }
        }
        // Then an Ansible module's deprecations (settle's own are shown where they arise).
        if let Some(Value::Bool(enabled)) = result.get(SHOW_DEPRECATIONS)
            && let Some(Value::Array(deprecations)) = result.get("deprecations")
        {
            for d in deprecations {
                let text = |k: &str| d.get(k).and_then(Value::as_str);
                let by = |k: &str| d["deprecator"].get(k).and_then(Value::as_str);
                settle_yaml::deprecation::show_removal(
                    text("msg").unwrap_or_default(),
                    text("version"),
                    text("date"),
                    by("resolved_name"),
                    by("type"),
                    *enabled,
                );
            }
        }
        // Warnings and deprecations are left out where the result is shown, not taken out of a
        // copy of it here (a command's result can hold megabytes of output).
        if let Some(module) = &self.minimal {
            return self.minimal_result(module, host, status, &without_notices(result));
        }
        // Ansible's callback ends a skipped item's line with a space (`(item=x) `).
        let item_part = match (item, status) {
            (Some(i), Status::Skipped) => format!(" => (item={i}) "),
            (Some(i), _) => format!(" => (item={i})"),
            (None, _) => String::new(),
        };
        let (word, colour) = match status {
            Status::Ok => ("ok", GREEN),
            Status::Changed => ("changed", YELLOW),
            Status::Skipped => ("skipping", CYAN),
            Status::Failed => ("fatal", RED),
            Status::Unreachable => ("fatal", RED),
        };
        // Keys starting with `_` are settle's own notes for the display, never shown.
        // Ansible's callback drops `failed` from a failure it already calls FAILED.
        let visible = || match result {
            Value::Object(map) => {
                let mut map = displayed(map, self.verbosity);
                if status == Status::Failed {
                    map.remove("failed");
                }
                let always = result.get("_debug_output").is_some();
                self.dump_result(Value::Object(map), always)
            }
            other => py_json(other, None),
        };
        let mut text = match status {
            Status::Failed if item.is_some() => {
                let label = item.unwrap_or_default();
                format!("failed: [{host}] (item={label}) => {}", visible())
            }
            Status::Failed => format!("fatal: [{host}]: FAILED! => {}", visible()),
            Status::Unreachable => {
                format!("fatal: [{host}]: UNREACHABLE! => {}", visible())
            }
            _ => format!("{word}: [{host}]{item_part}"),
        };
        let shown = shown_fields(result, status, self.verbosity);
        if let Some(shown) = shown {
            let always = result.get("_debug_output").is_some();
            text.push_str(&format!(" => {}", self.dump_result(shown, always)));
        }
        let line = self.paint(colour, &text);
        let ignoring = self.paint(CYAN, "...ignoring");
        match ignored {
            _ if self.callback.failed_to_stderr
                && matches!(status, Status::Failed | Status::Unreachable) =>
            {
                self.print_to(&line, true);
                if ignored {
                    self.print(&ignoring);
                }
            }
            true => self.print(&format!("{line}\n{ignoring}")),
            false => self.print(&line),
        }
    }

    /// Ansible's `_dump_results`: a result as the default callback shows it after ` => `. As
    /// JSON, one key a line for what is always shown (debug, assert), from -vvv on, or with
    /// `pretty_results`, else one line; as YAML (`result_format = yaml`), always a block
    /// below the line.
    fn dump_result(&self, mut result: Value, always: bool) -> String {
        let format = ResultFormat::configured();
        let pretty = always || format.yaml || self.verbosity > 2;
        let indent = match format.pretty {
            Some(false) => None,
            Some(true) => Some(4),
            None => pretty.then_some(4),
        };
        if !format.yaml {
            return py_json(&result, indent);
        }
        let lossy = format.pretty != Some(false);
        if lossy && let Value::Object(map) = &mut result {
            // Ansible's pretty YAML leaves out the lines of output it already shows whole.
            for (text, lines) in [("stdout", "stdout_lines"), ("stderr", "stderr_lines")] {
                if map.contains_key(text) && map.contains_key(lines) {
                    map.insert(lines.into(), "<omitted>".into());
                }
            }
        }
        let dumped = crate::filters::callback_yaml(&result, indent.unwrap_or(2), lossy);
        let prefix = " ".repeat(indent.unwrap_or(4));
        format!(
            "\n{}",
            indent_lines(&dumped, &prefix).trim_end_matches('\n')
        )
    }

    pub fn diff(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let painted: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with('+') && !l.starts_with("+++") {
                    self.paint(GREEN, l)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    self.paint(RED, l)
                } else if l.starts_with("@@") {
                    self.paint(CYAN, l)
                } else {
                    l.to_string()
                }
            })
            .collect();
        self.print(&format!("{}\n", painted.join("\n")));
    }

    pub fn error(&self, text: &str) {
        let _guard = self.lock.lock().unpoisoned();
        let text = settle_vault::redact(text);
        eprintln!("{}", self.paint(BRIGHT_RED, &format!("[ERROR]: {text}")));
    }

    /// An error Ansible's display prints on standard error, with the place it names and the
    /// lines around it, once per run (as its display deduplicates errors).
    pub fn error_at(&self, text: &str, origin: Option<&settle_yaml::Location>) {
        if self.minimal.is_some() {
            return self.error(text);
        }
        let mut lines = vec![self.paint(BRIGHT_RED, &format!("[ERROR]: {text}"))];
        if let Some(at) = origin {
            lines.extend(source_excerpt(at));
        }
        lines.push(String::new());
        self.print_error_once(lines, true);
    }

    /// `CUSTOM STATS`, when `show_custom_stats` is on (`ANSIBLE_SHOW_CUSTOM_STATS`, or the
    /// ansible.cfg key): each host's, then the run's, as Ansible prints them.
    pub fn custom_stats(&self, stats: &Stats) {
        if !crate::template::env_flag("ANSIBLE_SHOW_CUSTOM_STATS") || stats.custom().is_empty() {
            return;
        }
        // Python's json.dumps(indent=1, sort_keys=True) with its newlines taken out.
        let dump = |data: &serde_json::Map<String, Value>| {
            let sorted: std::collections::BTreeMap<_, _> = data.iter().collect();
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            let _ = serde::Serialize::serialize(&sorted, &mut ser);
            String::from_utf8_lossy(&buf).replace('\n', "")
        };
        self.banner("CUSTOM STATS: ");
        let mut lines = Vec::new();
        for (host, data) in stats.custom().iter().filter(|(h, _)| *h != "_run") {
            lines.push(format!("\t{host}: {}", dump(data)));
        }
        if let Some(run) = stats.custom().get("_run") {
            lines.push(String::new());
            lines.push(format!("\tRUN: {}", dump(run)));
        }
        lines.push(String::new());
        self.print(&lines.join("\n"));
    }

    /// The block Ansible 2.19 prints (on standard output) before a task's failure: what failed,
    /// where the task is, and the lines around it with a caret under the task.
    ///
    /// ```text
    /// [ERROR]: Task failed: Module failed: non-zero return code
    /// Origin: /play/site.yml:4:7
    ///
    /// 2   gather_facts: no
    /// 3   tasks:
    /// 4     - name: first
    ///         ^ column 7
    /// ```
    ///
    /// Unlike Ansible, a source line that may carry a secret (it names a password, a secret, a
    /// token or a vault) is replaced by a note.
    pub fn task_error(&self, what: &str, msg: &str, origin: Option<&settle_yaml::Location>) {
        self.task_error_traced(what, msg, origin, None);
    }

    /// [`Output::task_error`], followed by the failure's traceback when there is one to show
    /// (see [`traceback_of`]): a Python module's own, from the host.
    pub fn task_error_traced(
        &self,
        what: &str,
        msg: &str,
        origin: Option<&settle_yaml::Location>,
        traceback: Option<&str>,
    ) {
        if self.minimal.is_some() {
            return;
        }
        let mut lines = vec![self.paint(BRIGHT_RED, &format!("[ERROR]: Task failed: {what}{msg}"))];
        if let Some(at) = origin {
            lines.extend(source_excerpt(at));
        }
        if let Some(traceback) = traceback {
            lines.extend([String::new(), traceback.trim_end().to_string()]);
        }
        lines.push(String::new());
        self.print_error_once(lines, self.callback.failed_to_stderr);
    }

    /// Ansible 2.19's block for an action failed by the failures of others (a `gather_facts`
    /// whose modules failed): the action's message, the task's place, then the cause, each
    /// failure under it a sub-event, and the traceback when there is one to show.
    ///
    /// ```text
    /// [ERROR]: Task failed: Action failed: The following modules failed to execute: fail1.
    ///
    /// Task failed: Action failed.
    /// Origin: /play/site.yml:8:7
    /// …
    /// <<< caused by >>>
    ///
    /// The following modules failed to execute: fail1.
    ///
    /// +--[ Sub-Event 1 of 1 ]---
    /// |
    /// | the fail1 module went bang
    /// |
    /// +--[ End Sub-Event ]---
    /// ```
    pub fn task_error_events(
        &self,
        msg: &str,
        origin: Option<&settle_yaml::Location>,
        events: &[String],
        traceback: Option<&str>,
    ) {
        if self.minimal.is_some() {
            return;
        }
        let mut lines = vec![
            self.paint(
                BRIGHT_RED,
                &format!("[ERROR]: Task failed: Action failed: {msg}"),
            ),
            String::new(),
            "Task failed: Action failed.".to_string(),
        ];
        if let Some(at) = origin {
            lines.extend(source_excerpt(at));
        }
        lines.extend([String::new(), "<<< caused by >>>".into(), String::new()]);
        let children = event_children("Sub-Event", events);
        lines.push(format!("{msg}\n{}", children.trim_end()));
        if let Some(traceback) = traceback {
            lines.extend([String::new(), traceback.trim_end().to_string()]);
        }
        lines.push(String::new());
        self.print_error_once(lines, self.callback.failed_to_stderr);
    }

    /// Once per run, as Ansible's display deduplicates its errors (the same failure of
    /// several loop items or hosts is one block).
    fn print_error_once(&self, lines: Vec<String>, stderr: bool) {
        let text = lines.join("\n");
        if self.errored.lock().unpoisoned().insert(text.clone()) {
            self.print_to(&text, stderr);
        }
    }

    /// Ansible 2.19's error block for a task failed by something written apart from it (a
    /// `when`): the message, the task's place, then the cause with its own place and a hint.
    pub fn task_error_caused(
        &self,
        msg: &str,
        task: &settle_yaml::Location,
        cause: Option<&settle_yaml::Location>,
        help: Option<&str>,
    ) {
        if self.minimal.is_some() {
            return;
        }
        let mut lines = vec![
            self.paint(BRIGHT_RED, &format!("[ERROR]: Task failed: {msg}")),
            String::new(),
            "Task failed.".to_string(),
        ];
        lines.extend(source_excerpt(task));
        lines.extend([String::new(), "<<< caused by >>>".into(), String::new()]);
        lines.push(msg.to_string());
        if let Some(at) = cause {
            lines.extend(source_excerpt(at));
        }
        if let Some(help) = help {
            lines.extend([String::new(), help.to_string()]);
        }
        lines.push(String::new());
        self.print_error_once(lines, self.callback.failed_to_stderr);
    }

    /// `PLAY RECAP`, one line per host, then a blank line, exactly as Ansible prints it.
    pub fn recap(&self, stats: &Stats) {
        if self.minimal.is_some() {
            return;
        }
        self.banner("PLAY RECAP");
        let mut lines = Vec::new();
        for (host, s) in stats.hosts() {
            let colour = if s.failures > 0 || s.unreachable > 0 {
                RED
            } else if s.changed > 0 {
                YELLOW
            } else {
                GREEN
            };
            let field = |name: &str, n: usize, c: &str| {
                let text = format!("{name}={n:<4}");
                if n > 0 { self.paint(c, &text) } else { text }
            };
            lines.push(format!(
                "{} : {} {} {} {} {} {} {}",
                self.paint(colour, &format!("{host:<26}")),
                field("ok", s.ok, GREEN),
                field("changed", s.changed, YELLOW),
                field("unreachable", s.unreachable, RED),
                field("failed", s.failures, RED),
                field("skipped", s.skipped, CYAN),
                field("rescued", s.rescued, GREEN),
                field("ignored", s.ignored, MAGENTA),
            ));
        }
        lines.push(String::new());
        self.print(&lines.join("\n"));
    }
}

/// A task's `diff` (one or a list of `{before, after, before_header, after_header}`,
/// `prepared`, or the binary/size notes) as Ansible's callbacks print it (`_get_diff`):
/// mappings as sorted, indented JSON, then a unified diff with three lines of context.
pub fn ansible_diff_text(diff: &Value) -> String {
    let list = match diff {
        Value::Array(list) => list.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut out = String::new();
    for diff in list {
        let Value::Object(diff) = diff else { continue };
        for (key, note) in [
            (
                "dst_binary",
                "diff skipped: destination file appears to be binary",
            ),
            (
                "src_binary",
                "diff skipped: source file appears to be binary",
            ),
        ] {
            if diff.contains_key(key) {
                out.push_str(note);
                out.push('\n');
            }
        }
        for (key, side) in [("dst_larger", "destination"), ("src_larger", "source")] {
            if let Some(size) = diff.get(key) {
                out.push_str(&format!(
                    "diff skipped: {side} file size is greater than {size}\n"
                ));
            }
        }
        if let (Some(before), Some(after)) = (diff.get("before"), diff.get("after")) {
            let text = |v: &Value| match v {
                Value::Object(_) if ResultFormat::configured().yaml => {
                    let lossy = ResultFormat::configured().pretty != Some(false);
                    indent_lines(&crate::filters::callback_yaml(v, 4, lossy), "    ") + "\n"
                }
                Value::Object(_) => py_json(v, Some(4)) + "\n",
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => crate::value_text(other),
            };
            let header = |key: &str, word: &str| match diff.get(key) {
                Some(h) => format!("{word}: {}", crate::value_text(h)),
                None => word.to_string(),
            };
            let (before, after) = (text(before), text(after));
            let unified = similar::TextDiff::from_lines(&before, &after)
                .unified_diff()
                .context_radius(3)
                .header(
                    &header("before_header", "before"),
                    &header("after_header", "after"),
                )
                .to_string();
            if !unified.is_empty() {
                out.push_str(&unified);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        if let Some(prepared) = diff.get("prepared") {
            out.push_str(&crate::value_text(prepared));
        }
    }
    out
}

/// The keys of a result that Ansible's callbacks print as lines of their own, not in the result.
const NOTICES: [&str; 2] = ["warnings", "deprecations"];

/// A key of a result that is nobody's to see or register: Ansible's `_ansible_*` and settle's
/// own notes for the display. A module's other keys, `_`-prefixed or not, are its result.
pub(crate) fn is_internal_key(key: &str) -> bool {
    key.starts_with("_ansible_")
        || key.starts_with("_settle_")
        || matches!(key, "_debug_output" | "_error_shown")
}

/// Ansible's `strip_internal_keys`, on a result registered or shown: `_ansible_*` keys go at
/// every depth (a module that echoes its arguments returns them).
pub(crate) fn strip_internal_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("_ansible_"));
            map.values_mut().for_each(strip_internal_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_internal_keys),
        _ => {}
    }
}

/// A result without the warnings and deprecations the display has dealt with.
fn without_notices(result: &Value) -> std::borrow::Cow<'_, Value> {
    match result {
        Value::Object(map) if map.contains_key("warnings") || map.contains_key("deprecations") => {
            let mut map = map.clone();
            map.remove("warnings");
            map.remove("deprecations");
            std::borrow::Cow::Owned(Value::Object(map))
        }
        other => std::borrow::Cow::Borrowed(other),
    }
}

/// A result's keys as the callback prints them: without settle's own notes (`_` keys) and the
/// notices printed apart, and, as Ansible's `_dump_results`, without `diff` (a diff is for
/// `--diff` to show) and a module's `invocation` before -vvv.
fn displayed(
    map: &serde_json::Map<String, Value>,
    verbosity: u8,
) -> serde_json::Map<String, Value> {
    let mut shown = map.clone();
    // The exception is shown in the error block before the result, as Ansible's callback
    // takes it out.
    shown.retain(|k, _| !is_internal_key(k) && !NOTICES.contains(&k.as_str()) && k != "exception");
    shown.values_mut().for_each(strip_internal_keys);
    if verbosity < 3 {
        shown.remove("diff");
        shown.remove("invocation");
    }
    shown
}

/// What a result line shows after `=>` at this verbosity: debug's message, or (with -v) it all.
fn shown_fields(result: &Value, status: Status, verbosity: u8) -> Option<Value> {
    let map = result.as_object()?;
    // Fact gathering's result is never shown (Ansible's `_ansible_verbose_override`).
    if matches!(status, Status::Failed | Status::Unreachable)
        || map.contains_key("_ansible_verbose_override")
    {
        return None;
    }
    // debug and assert show what they were meant to (Ansible's callback cleans debug's result).
    if let Some(Value::Object(shown)) = map.get("_debug_output")
        && status != Status::Skipped
    {
        return Some(Value::Object(shown.clone()));
    }
    if verbosity > 0 {
        let mut all = displayed(map, verbosity);
        if status == Status::Skipped {
            all.remove("skipped");
        }
        // The result a callback gets says `failed` only when it failed.
        if all.get("failed") == Some(&Value::Bool(false)) {
            all.remove("failed");
        }
        return Some(Value::Object(all));
    }
    if status == Status::Skipped {
        return None;
    }
    // debug shows its message (or variable) even without -v, as Ansible's debug action does.
    let shown: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| k.as_str() == "_debug_output")
        .flat_map(|(_, v)| v.as_object().cloned().unwrap_or_default())
        .collect();
    (!shown.is_empty()).then_some(Value::Object(shown))
}

pub use settle_yaml::py_json;

/// Where Ansible 2.19's error blocks point: `Origin: file:line:column`, then the lines up to
/// it with a caret under the column. Unlike Ansible, a source line that may carry a secret (it
/// names a password, a secret, a token or a vault) is replaced by a note.
pub fn source_excerpt(at: &settle_yaml::Location) -> Vec<String> {
    settle_yaml::deprecation::source_excerpt(at)
}

/// Marks a result whose `deprecations` an Ansible module reported, and whether the task shows
/// deprecations.
pub(crate) const SHOW_DEPRECATIONS: &str = "_settle_show_deprecations";

/// What a failure's `exception` is when there is no traceback to give: Ansible's words for a
/// failure whose traceback was not asked for, or that has none (settle's own failures).
pub const NO_TRACEBACK: &str = "(traceback unavailable)";

/// The events whose tracebacks Ansible's `DISPLAY_TRACEBACK` setting asks for
/// (`ANSIBLE_DISPLAY_TRACEBACK`, or `display_traceback` in ansible.cfg), in Ansible's order
/// and as its `_ansible_tracebacks_for`: `always` is every event, `never` (the default) none,
/// `deprecated_value` brings `deprecated`. An unknown value is Ansible's error.
pub fn tracebacks_for() -> Result<&'static [&'static str], String> {
    static READ: std::sync::OnceLock<Result<Vec<&'static str>, String>> =
        std::sync::OnceLock::new();
    READ.get_or_init(|| {
        parse_tracebacks_for(&std::env::var("ANSIBLE_DISPLAY_TRACEBACK").unwrap_or_default())
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// [`tracebacks_for`] of a setting's comma-separated value.
fn parse_tracebacks_for(setting: &str) -> Result<Vec<&'static str>, String> {
    const EVENTS: [&str; 4] = ["error", "warning", "deprecated", "deprecated_value"];
    let given: Vec<&str> = setting
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if given
        .iter()
        .any(|v| !EVENTS.contains(v) && !matches!(*v, "always" | "never"))
    {
        let listed: Vec<String> = given.iter().map(|v| format!("'{v}'")).collect();
        return Err(format!(
            "Invalid value [{}] for config 'DISPLAY_TRACEBACK'. Valid values are: {}, always, \
             never",
            listed.join(", "),
            EVENTS.join(", ")
        ));
    }
    if given.contains(&"always") {
        return Ok(EVENTS.to_vec());
    }
    if given.contains(&"never") {
        return Ok(Vec::new());
    }
    let wanted = |event: &&str| {
        given.contains(event) || (*event == "deprecated" && given.contains(&"deprecated_value"))
    };
    Ok(EVENTS.iter().copied().filter(wanted).collect())
}

/// A failed result's traceback, when `DISPLAY_TRACEBACK` asks for those of errors and the
/// result has one (a Python module's, from the host).
pub fn traceback_of(result: &serde_json::Map<String, Value>) -> Option<&str> {
    let wanted = tracebacks_for().is_ok_and(|events| events.contains(&"error"));
    match result.get("exception") {
        Some(Value::String(tb)) if wanted && tb != NO_TRACEBACK && !tb.is_empty() => Some(tb),
        _ => None,
    }
}

/// Ansible 2.19's list of an error's sub-events or sub-tracebacks, each indented under a
/// `+--[ Sub-Event 1 of 2 ]---` line (`_format_event_children`).
pub fn event_children(label: &str, children: &[String]) -> String {
    let mut text = String::from("\n");
    for (i, child) in children.iter().enumerate() {
        text.push_str(&format!(
            "+--[ {label} {} of {} ]---\n",
            i + 1,
            children.len()
        ));
        // Python's `textwrap.indent` of "\n{child}\n": every line, blank ones too.
        let body = format!("\n{}\n\n", child.trim_end_matches('\n'));
        for line in body.split('\n').take(body.matches('\n').count()) {
            text.push_str(&format!("| {line}\n"));
        }
    }
    text.push_str(&format!("+--[ End {label} ]---\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_traceback_is_read_as_ansible_reads_it() {
        let read = |v: &str| parse_tracebacks_for(v).unwrap();
        assert!(read("").is_empty());
        assert!(read("never").is_empty());
        assert!(read("never,error").is_empty());
        assert_eq!(read("error"), ["error"]);
        assert_eq!(
            read("deprecated_value, error"),
            ["error", "deprecated", "deprecated_value"]
        );
        assert_eq!(read("always,never").len(), 4);
        assert_eq!(
            parse_tracebacks_for("foo").unwrap_err(),
            "Invalid value ['foo'] for config 'DISPLAY_TRACEBACK'. Valid values are: error, \
             warning, deprecated, deprecated_value, always, never"
        );
    }

    #[test]
    fn sub_events_are_indented_as_ansible_indents_them() {
        let text = event_children("Sub-Event", &["one\n".into(), "two\nlines".into()]);
        assert_eq!(
            text,
            "\n+--[ Sub-Event 1 of 2 ]---\n| \n| one\n| \n+--[ Sub-Event 2 of 2 ]---\n| \n\
             | two\n| lines\n| \n+--[ End Sub-Event ]---\n"
        );
    }
    use serde_json::json;

    #[test]
    fn python_json_layouts() {
        assert_eq!(
            py_json(&json!({"msg": "x", "changed": false}), None),
            r#"{"changed": false, "msg": "x"}"#
        );
        assert_eq!(
            py_json(&json!({"msg": [1, 2]}), Some(4)),
            "{\n    \"msg\": [\n        1,\n        2\n    ]\n}"
        );
    }
}
