//! `settle pull`: every host converges itself from a git repository, as with `ansible-pull`, so
//! a fleet needs no controller that reaches every host.
//!
//! One run: fetch the repository with the `git` command into a checkout on the host, check out
//! the fetched revision, pick the playbook (`<fqdn>.yml`, `<hostname>.yml`, then `local.yml`,
//! or the ones named), and run it in this process, through the same entry point as
//! `settle PLAYBOOK` (`crate::run`), on the local connection, limited to this host's names.
//!
//! **The last good revision.** A run that succeeds records its revision as the git ref
//! `refs/settle/last-good` in the checkout; between runs the checkout always stands at that
//! revision. A run that fails (the fetch, the playbook's syntax, a task) leaves the ref where
//! it was and checks the last good revision out again, so the next run, and anyone looking at
//! the checkout, still sees what was last applied; the failed revision is in the metrics and
//! the report. A commit that does not parse or validate changes nothing on the host (settle
//! reads and checks every playbook before it runs a task); a task that fails part-way leaves
//! the changes made before it, as `ansible-pull` does. `--only-if-changed` skips the run when
//! the fetched revision is the last good one, so a broken commit is retried until it is fixed.
//!
//! Each run writes a node-exporter textfile (`settle_pull.prom`, temp file and rename) and,
//! like `settle --report json=PATH`, a JSON report (`<checkout>/.git/settle-pull/report.json`
//! unless `--report` names one). `--install-timer` writes a systemd service and timer that run
//! the same command line, with a randomised delay so a fleet does not fetch all at once.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgAction, Parser};

use crate::{Cli, EXIT_ERROR, Failure, InventoryArgs, vault_cli::VaultArgs};

/// Where node_exporter's textfile collector reads, as its packages set it up.
const DEFAULT_METRICS_DIR: &str = "/var/lib/node_exporter/textfile_collector";
const METRICS_FILE: &str = "settle_pull.prom";
/// The git ref that names the revision the last successful run applied.
const LAST_GOOD: &str = "refs/settle/last-good";
const UNIT: &str = "settle-pull";
const UNIT_DIR: &str = "/etc/systemd/system";

#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Fetch playbooks from a git repository and run them on this host, like ansible-pull.",
    after_help = "Between runs the checkout stands at the last good revision (the git ref \
                  refs/settle/last-good): a run that fails checks it out again and leaves the ref. \
                  Each run writes settle_pull.prom for node_exporter's textfile collector."
)]
pub(crate) struct PullArgs {
    /// URL of the playbook repository (anything `git clone` takes).
    #[arg(short = 'U', long, value_name = "URL", required = true)]
    url: Option<String>,
    /// Branch, tag or commit to check out (default: the repository's HEAD).
    #[arg(short = 'C', long, value_name = "CHECKOUT")]
    checkout: Option<String>,
    /// Where the checkout lives (default: ~/.ansible/pull/<fqdn>).
    #[arg(short = 'd', long = "directory", value_name = "DEST")]
    directory: Option<PathBuf>,
    /// Only run the playbook when the fetched revision is not the last good one.
    #[arg(short = 'o', long)]
    only_if_changed: bool,
    /// Sleep a random number of seconds, between 0 and SLEEP, before fetching.
    #[arg(short = 's', long, value_name = "SLEEP")]
    sleep: Option<u64>,
    /// Run the playbook even if the repository could not be updated.
    #[arg(short = 'f', long)]
    force: bool,
    /// Fetch the whole history instead of the one commit.
    #[arg(long)]
    full: bool,
    /// Accept the repository server's SSH host key if it is not known yet.
    #[arg(long)]
    accept_host_key: bool,
    /// The SSH key git uses to reach the repository.
    #[arg(long = "private-key", visible_alias = "key-file", value_name = "FILE")]
    private_key: Option<PathBuf>,
    /// Refuse a revision whose GPG signature `git verify-commit` does not accept.
    #[arg(long)]
    verify_commit: bool,
    /// Discard local changes to the checkout's files (otherwise they stop the run).
    #[arg(long)]
    clean: bool,
    /// Submodules follow their branches (`git submodule update --remote`).
    #[arg(long)]
    track_subs: bool,
    /// Remove the checkout after the run (and with it the last good revision).
    #[arg(long)]
    purge: bool,
    /// The repository module: only git.
    #[arg(short = 'm', long = "module-name", value_name = "MODULE_NAME", default_value = "git",
          value_parser = ["git"])]
    module_name: String,
    #[command(flatten)]
    inventory: InventoryArgs,
    #[command(flatten)]
    vault: VaultArgs,
    /// Limit the hosts to this pattern (default: this host's names and localhost).
    #[arg(short = 'l', long, value_name = "SUBSET")]
    limit: Option<String>,
    /// Only run tasks and plays tagged with these.
    #[arg(short = 't', long, value_name = "TAGS", action = ArgAction::Append)]
    tags: Vec<String>,
    /// Skip tasks and plays tagged with these.
    #[arg(long, value_name = "TAGS", action = ArgAction::Append)]
    skip_tags: Vec<String>,
    /// Extra variables: key=value pairs, YAML/JSON, or @file (repeatable).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS", action = ArgAction::Append)]
    extra_vars: Vec<String>,
    /// Do not change anything; predict what would change (the last good revision stays).
    #[arg(long)]
    check: bool,
    /// Show the differences in files and attributes that tasks change.
    #[arg(long)]
    diff: bool,
    /// Forget this host's cached facts before the run.
    #[arg(long)]
    flush_cache: bool,
    /// List the hosts the playbook would run on, and stop.
    #[arg(long)]
    list_hosts: bool,
    /// Folders of Ansible modules for tasks settle has no module for (repeatable).
    #[arg(short = 'M', long, value_name = "PATHS", action = ArgAction::Append)]
    module_path: Vec<String>,
    /// Write a report when the run ends: json=PATH or junit=PATH (repeatable).
    #[arg(long, value_name = "FORMAT=PATH", action = ArgAction::Append)]
    report: Vec<String>,
    /// More output.
    #[arg(short = 'v', long, action = ArgAction::Count)]
    verbose: u8,
    /// Where to write settle_pull.prom for node_exporter's textfile collector.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_METRICS_DIR)]
    metrics_dir: PathBuf,
    /// Write and enable a systemd service and timer that run this command line, and stop.
    #[arg(long)]
    install_timer: bool,
    /// With --install-timer: how long from one run to the next (a systemd time span).
    #[arg(long, value_name = "TIMESPAN", default_value = "15min")]
    interval: String,
    /// With --install-timer: the most each run is delayed at random (RandomizedDelaySec).
    #[arg(long, value_name = "TIMESPAN", default_value = "5min")]
    random_delay: String,
    /// Playbooks in the repository (default: <fqdn>.yml, <hostname>.yml, then local.yml).
    #[arg(value_name = "PLAYBOOK")]
    playbooks: Vec<PathBuf>,
}

pub(crate) fn run(args: PullArgs) -> Result<u8, Failure> {
    let mut args = args;
    absolutize(&mut args)?;
    if args.install_timer {
        return install_timer(&args);
    }
    let url = args.url.clone().unwrap_or_default();
    let names = HostNames::of_this_host();
    let dir = match &args.directory {
        Some(dir) => dir.clone(),
        None => default_directory(&names.fqdn),
    };
    if dir.exists() && !dir.is_dir() {
        return Err((EXIT_ERROR, format!("{} is not a directory", dir.display())));
    }
    println!(
        "Starting settle pull of {} into {}",
        shown_url(&url),
        dir.display()
    );
    if let Some(most) = args.sleep.filter(|s| *s > 0) {
        let secs = random_below(most);
        println!("Sleeping for {secs} seconds...");
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    let git = Git::new(&dir, &args);
    git.init(&url)?;
    // A manual run and the timer's wait for each other rather than share the checkout.
    let _lock = git.lock()?;
    let metrics = Metrics::path(&args.metrics_dir);
    let mut state = Metrics::load(&metrics);
    state.url = shown_url(&url);
    let last_good = git.rev(LAST_GOOD);
    state.last_good = last_good.clone().unwrap_or_default();

    let revision = match git.fetch(args.checkout.as_deref().unwrap_or("HEAD"), args.full) {
        Ok(rev) => {
            state.last_fetch = now();
            rev
        }
        Err(message) => match git.rev("HEAD") {
            Some(current) if args.force => {
                eprintln!(
                    "[WARNING]: Unable to update repository. Continuing with (forced) run of playbook."
                );
                eprintln!("{message}");
                current
            }
            _ => {
                state.record_failure(EXIT_ERROR);
                state.write(&metrics);
                return Err((EXIT_ERROR, message));
            }
        },
    };
    if args.only_if_changed && last_good.as_deref() == Some(revision.as_str()) {
        println!("Repository has not changed since the last good run ({revision}), quitting.");
        state.write(&metrics);
        return Ok(0);
    }
    state.revision = revision.clone();

    let outcome = git
        .check_out(&revision, args.clean, args.track_subs)
        .and_then(|()| {
            if args.verify_commit {
                git.verify(&revision)
            } else {
                Ok(())
            }
        })
        .and_then(|()| run_playbooks(&args, &dir, &names));
    let mut note = String::new();
    let (code, counts) = match &outcome {
        Ok(ran) => (ran.code, ran.counts),
        Err((code, _)) => (i32::from(*code), Counts::default()),
    };
    state.last_run = now();
    state.changed = counts.changed;
    state.failed_tasks = counts.failed;
    state.exit_code = code;
    if code == 0 && !args.check && !args.list_hosts {
        git.set_last_good(&revision)?;
        state.last_good = revision.clone();
        state.last_success = state.last_run;
    } else if let Some(good) = last_good.as_ref().filter(|good| **good != revision) {
        // Back to what is applied: the next run, and anyone reading the checkout, sees it.
        git.check_out(good, true, args.track_subs)?;
        if code != 0 {
            note = format!(
                "settle pull: revision {revision} failed; the checkout is back at the last good revision {good}"
            );
        }
    }
    state.write(&metrics);
    if args.purge {
        let _ = std::env::set_current_dir("/");
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("[ERROR]: Failed to remove {}: {e}", dir.display());
        }
    }
    match outcome {
        Ok(ran) => {
            if !note.is_empty() {
                eprintln!("{note}");
            }
            Ok(u8::try_from(ran.code).unwrap_or(EXIT_ERROR))
        }
        Err((code, message)) if !note.is_empty() => Err((code, format!("{message}\n{note}"))),
        Err(failure) => Err(failure),
    }
}

/// The names this host goes by, as `ansible-pull` collects them.
struct HostNames {
    fqdn: String,
    node: String,
}

impl HostNames {
    fn of_this_host() -> Self {
        let node = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        HostNames {
            fqdn: settle_modules::fqdn(),
            node,
        }
    }

    /// `localhost,<fqdn>,<node>,<short names>,127.0.0.1`: the limit `ansible-pull` gives, so a
    /// shared inventory runs each host's own plays and variables.
    fn limit(&self) -> String {
        let mut names = vec!["localhost".to_string()];
        for name in [
            &self.fqdn,
            &self.node,
            &short(&self.fqdn).to_string(),
            &short(&self.node).to_string(),
        ] {
            if !name.is_empty() && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names.push("127.0.0.1".into());
        names.join(",")
    }
}

fn short(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// `ansible-pull`'s default: `$ANSIBLE_HOME/pull/<fqdn>`, `~/.ansible/pull/<fqdn>`.
fn default_directory(fqdn: &str) -> PathBuf {
    let home = std::env::var_os("ANSIBLE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ansible")))
        .unwrap_or_else(|| PathBuf::from("/root/.ansible"));
    home.join("pull").join(fqdn)
}

/// Paths given relative to where the command was started mean the same after the run moves into
/// the checkout, and in the unit files `--install-timer` writes.
fn absolutize(args: &mut PullArgs) -> Result<(), Failure> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| (EXIT_ERROR, format!("{}: {e}", p.display())))
    };
    if let Some(dir) = &args.directory {
        args.directory = Some(absolute(dir)?);
    }
    if let Some(key) = &args.private_key {
        args.private_key = Some(absolute(key)?);
    }
    args.metrics_dir = absolute(&args.metrics_dir)?;
    for report in &mut args.report {
        if let Some((format, path)) = report.split_once('=')
            && !path.is_empty()
        {
            *report = format!("{format}={}", absolute(Path::new(path))?.display());
        }
    }
    // A local repository path, too (a URL with a scheme or `host:path` stays as written).
    if let Some(url) = &args.url
        && !url.contains(':')
        && Path::new(url).exists()
    {
        args.url = Some(absolute(Path::new(url))?.display().to_string());
    }
    Ok(())
}

/// What a playbook run ended with.
struct Ran {
    code: i32,
    counts: Counts,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    changed: u64,
    failed: u64,
}

/// Runs the checkout's playbooks through the same entry point as `settle PLAYBOOK`, from inside
/// the checkout (its ansible.cfg, inventory and `group_vars` apply, as with `ansible-pull`).
fn run_playbooks(args: &PullArgs, dir: &Path, names: &HostNames) -> Result<Ran, Failure> {
    let playbooks = select_playbooks(&args.playbooks, dir, names)?;
    std::env::set_current_dir(dir)
        .map_err(|e| (EXIT_ERROR, format!("cannot enter {}: {e}", dir.display())))?;
    let own_report = dir.join(".git/settle-pull/report.json");
    let mut reports = args.report.clone();
    let report = match reports.iter().find_map(|r| r.strip_prefix("json=")) {
        Some(path) => PathBuf::from(path),
        None => {
            if let Some(parent) = own_report.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            reports.push(format!("json={}", own_report.display()));
            own_report
        }
    };
    // A report left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(&report);
    // Without -i, the playbook sees the inventory ansible-playbook would (ANSIBLE_INVENTORY, or
    // only the implicit localhost, which `hosts: all` does not match), as with ansible-pull.
    let cli = Cli {
        playbooks,
        inventory: args.inventory.clone(),
        vault: args.vault.clone(),
        limit: Some(args.limit.clone().unwrap_or_else(|| names.limit())),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        extra_vars: args.extra_vars.clone(),
        check: args.check,
        diff: args.diff,
        connection: Some("local".into()),
        flush_cache: args.flush_cache,
        list_hosts: args.list_hosts,
        module_path: args.module_path.clone(),
        report: reports,
        verbose: args.verbose,
        ..Cli::parse_from(["settle"])
    };
    let code = i32::from(crate::run(cli)?);
    Ok(Ran {
        code,
        counts: counts_in_report(&report),
    })
}

/// The playbooks named (each must be in the checkout), or the first of `<fqdn>.yml`,
/// `<short fqdn>.yml` and `local.yml` found, in `ansible-pull`'s order.
fn select_playbooks(
    named: &[PathBuf],
    dir: &Path,
    names: &HostNames,
) -> Result<Vec<PathBuf>, Failure> {
    if !named.is_empty() {
        let missing: Vec<String> = named
            .iter()
            .filter(|p| !dir.join(p).is_file())
            .map(|p| format!("{}: the file does not exist", dir.join(p).display()))
            .collect();
        if !missing.is_empty() {
            return Err((EXIT_ERROR, missing.join("\n")));
        }
        return Ok(named.iter().map(|p| dir.join(p)).collect());
    }
    let candidates = [
        format!("{}.yml", names.fqdn),
        format!("{}.yml", short(&names.fqdn)),
        "local.yml".to_string(),
    ];
    candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .map(|p| vec![p])
        .ok_or_else(|| {
            (
                EXIT_ERROR,
                format!(
                    "Could not find a playbook to run: none of {} in {}",
                    candidates.join(", "),
                    dir.display()
                ),
            )
        })
}

/// Changed and failed task results, summed over the hosts of the JSON report's recap.
fn counts_in_report(path: &Path) -> Counts {
    let Some(report) = std::fs::read(path)
        .ok()
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
    else {
        return Counts::default();
    };
    let sum = |field: &str| -> u64 {
        report["recap"]
            .as_object()
            .map(|hosts| hosts.values().filter_map(|h| h[field].as_u64()).sum())
            .unwrap_or(0)
    };
    Counts {
        changed: sum("changed"),
        failed: sum("failed") + sum("unreachable"),
    }
}

/// The checkout, driven with the `git` command.
struct Git {
    dir: PathBuf,
    ssh: Option<String>,
    /// The password in the URL, if it has one: never in a message.
    secret: Option<String>,
}

impl Git {
    fn new(dir: &Path, args: &PullArgs) -> Self {
        let mut ssh = Vec::new();
        if args.accept_host_key {
            ssh.push("-o StrictHostKeyChecking=accept-new".to_string());
        }
        if let Some(key) = &args.private_key {
            ssh.push(format!(
                "-i {} -o IdentitiesOnly=yes",
                shell_words::quote(&key.display().to_string())
            ));
        }
        let ssh = (!ssh.is_empty()).then(|| {
            let base = std::env::var("GIT_SSH_COMMAND").unwrap_or_else(|_| "ssh".into());
            format!("{base} {}", ssh.join(" "))
        });
        Git {
            dir: dir.to_path_buf(),
            ssh,
            secret: args.url.as_deref().and_then(url_password),
        }
    }

    /// Runs git in the checkout; its standard output, or an error with what it said.
    fn git(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir).args(args);
        // Never a prompt for a password or a host key: a timer has nobody to answer it.
        command.env("GIT_TERMINAL_PROMPT", "0");
        if let Some(ssh) = &self.ssh {
            command.env("GIT_SSH_COMMAND", ssh);
        }
        let out = command.output().map_err(|e| {
            format!("cannot run git (settle pull needs the git command installed): {e}")
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let message = format!(
                "git {} failed in {}: {}",
                args.join(" "),
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Err(match &self.secret {
                Some(secret) => message.replace(secret.as_str(), "***"),
                None => message,
            })
        }
    }

    /// An empty repository with `origin` pointing at the URL, unless the checkout is there.
    fn init(&self, url: &str) -> Result<(), Failure> {
        let fail = |e: String| (EXIT_ERROR, e);
        if !self.dir.join(".git").is_dir() {
            let occupied = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_some());
            if occupied {
                return Err(fail(format!(
                    "{} is not empty and not a git checkout; give another --directory",
                    self.dir.display()
                )));
            }
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", self.dir.display())))?;
            self.git(&["init", "--quiet"]).map_err(fail)?;
        }
        if self.git(&["remote", "get-url", "origin"]).is_ok() {
            self.git(&["remote", "set-url", "origin", url])
                .map_err(fail)?;
        } else {
            self.git(&["remote", "add", "origin", url]).map_err(fail)?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::fs::File, Failure> {
        let path = self.dir.join(".git/settle-pull.lock");
        let file = std::fs::File::create(&path)
            .map_err(|e| (EXIT_ERROR, format!("cannot create {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| (EXIT_ERROR, format!("cannot lock {}: {e}", path.display())))?;
        Ok(file)
    }

    /// Fetches the branch, tag or commit (one commit deep unless `full`), and names the commit.
    fn fetch(&self, what: &str, full: bool) -> Result<String, String> {
        let mut args = vec!["fetch", "--quiet", "--no-tags"];
        if !full {
            args.push("--depth=1");
        }
        args.extend(["origin", what]);
        self.git(&args)?;
        self.git(&["rev-parse", "--verify", "FETCH_HEAD^{commit}"])
    }

    fn rev(&self, name: &str) -> Option<String> {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{name}^{{commit}}"),
        ])
        .ok()
        .filter(|r| !r.is_empty())
    }

    /// Checks the revision out (detached). Local changes to tracked files stop it unless
    /// `discard` (--clean).
    fn check_out(&self, revision: &str, discard: bool, track_subs: bool) -> Result<(), Failure> {
        let fail = |e: String| (EXIT_ERROR, e);
        if !discard {
            let changes = self
                .git(&["status", "--porcelain", "--untracked-files=no"])
                .map_err(fail)?;
            if !changes.is_empty() {
                return Err(fail(format!(
                    "local modifications in {} (--clean discards them):\n{changes}",
                    self.dir.display()
                )));
            }
        }
        self.git(&["checkout", "--quiet", "--force", "--detach", revision])
            .map_err(fail)?;
        if self.dir.join(".gitmodules").is_file() {
            let mut args = vec!["submodule", "update", "--init", "--recursive", "--quiet"];
            if track_subs {
                args.push("--remote");
            }
            self.git(&args).map_err(fail)?;
        }
        Ok(())
    }

    fn verify(&self, revision: &str) -> Result<(), Failure> {
        self.git(&["verify-commit", revision])
            .map(|_| ())
            .map_err(|e| (EXIT_ERROR, e))
    }

    fn set_last_good(&self, revision: &str) -> Result<(), Failure> {
        self.git(&["update-ref", LAST_GOOD, revision])
            .map(|_| ())
            .map_err(|e| (EXIT_ERROR, e))
    }
}

/// What `settle_pull.prom` says. Read back at the start of a run, so what a run does not learn
/// (the last success, after a failure) carries over.
#[derive(Default, Debug, PartialEq)]
struct Metrics {
    last_run: f64,
    last_success: f64,
    last_fetch: f64,
    changed: u64,
    failed_tasks: u64,
    exit_code: i32,
    revision: String,
    last_good: String,
    url: String,
}

impl Metrics {
    fn path(dir: &Path) -> PathBuf {
        dir.join(METRICS_FILE)
    }

    fn load(path: &Path) -> Metrics {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut m = Metrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let number = value.parse::<f64>().unwrap_or(0.0);
            match name {
                "settle_pull_last_run_timestamp_seconds" => m.last_run = number,
                "settle_pull_last_success_timestamp_seconds" => m.last_success = number,
                "settle_pull_last_fetch_timestamp_seconds" => m.last_fetch = number,
                "settle_pull_changed" => m.changed = number as u64,
                "settle_pull_failed_tasks" => m.failed_tasks = number as u64,
                "settle_pull_exit_code" => m.exit_code = number as i32,
                _ if name.starts_with("settle_pull_revision_info{") => {
                    m.revision = label(name, "revision");
                    m.last_good = label(name, "last_good");
                    m.url = label(name, "url");
                }
                _ => {}
            }
        }
        m
    }

    fn record_failure(&mut self, code: u8) {
        self.last_run = now();
        self.exit_code = code.into();
        self.changed = 0;
        self.failed_tasks = 0;
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        };
        metric(
            "settle_pull_last_run_timestamp_seconds",
            "When settle pull last ran (Unix time).",
            format!("{}", self.last_run),
        );
        metric(
            "settle_pull_last_success_timestamp_seconds",
            "When a settle pull run last succeeded (Unix time).",
            format!("{}", self.last_success),
        );
        metric(
            "settle_pull_last_fetch_timestamp_seconds",
            "When settle pull last fetched the repository (Unix time).",
            format!("{}", self.last_fetch),
        );
        metric(
            "settle_pull_changed",
            "Task results that changed in the last run.",
            self.changed.to_string(),
        );
        metric(
            "settle_pull_failed_tasks",
            "Task results that failed (or hosts unreachable) in the last run.",
            self.failed_tasks.to_string(),
        );
        metric(
            "settle_pull_failed",
            "1 when the last run failed (fetch, playbook or task), else 0.",
            u8::from(self.exit_code != 0).to_string(),
        );
        metric(
            "settle_pull_exit_code",
            "The last run's exit code.",
            self.exit_code.to_string(),
        );
        metric(
            "settle_pull_revision_info",
            "The revision the last run tried, and the last good one (applied by a successful run).",
            "1".into(),
        );
        // The info metric's labels go on its sample line.
        let info = format!(
            "settle_pull_revision_info{{revision=\"{}\",last_good=\"{}\",url=\"{}\"}} 1\n",
            escape(&self.revision),
            escape(&self.last_good),
            escape(&self.url)
        );
        out.replace("settle_pull_revision_info 1\n", &info)
    }

    /// Written to a temporary file beside it and renamed, so node_exporter never reads half.
    fn write(&self, path: &Path) {
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut file = tempfile::Builder::new()
                .prefix(".settle_pull.")
                .suffix(".tmp")
                .tempfile_in(dir)?;
            file.write_all(self.render().as_bytes())?;
            file.as_file().sync_all()?;
            set_mode(file.path(), 0o644)?;
            file.persist(path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            eprintln!(
                "[WARNING]: cannot write the metrics file {}: {e}",
                path.display()
            );
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A label's value in a Prometheus sample name (as [`escape`] wrote it).
fn label(sample: &str, name: &str) -> String {
    let Some(start) = sample.find(&format!("{name}=\"")) else {
        return String::new();
    };
    let mut out = String::new();
    let mut chars = sample[start + name.len() + 2..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The password of a `scheme://user:password@host/…` URL.
fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// The URL as output, metrics and unit descriptions show it: without its password.
fn shown_url(url: &str) -> String {
    match url_password(url) {
        Some(password) => url.replacen(&format!(":{password}@"), ":***@", 1),
        None => url.to_string(),
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0)
}

fn random_below(most: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(now() as u64);
    hasher.finish() % most
}

/// Writes the service and timer, then `systemctl daemon-reload` and `enable --now` the timer.
fn install_timer(args: &PullArgs) -> Result<u8, Failure> {
    for (flag, value) in [
        ("--interval", &args.interval),
        ("--random-delay", &args.random_delay),
    ] {
        let plain = !value.trim().is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '.');
        if !plain {
            return Err((
                2,
                format!("{flag} takes a systemd time span such as 15min or 1h 30s, not {value:?}"),
            ));
        }
    }
    let exe = std::env::current_exe()
        .map_err(|e| (EXIT_ERROR, format!("cannot find the settle binary: {e}")))?;
    let mut line = vec![exe.display().to_string(), "pull".to_string()];
    line.extend(command_line(args));
    let exec = line
        .iter()
        .map(|a| systemd_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let url = shown_url(&args.url.clone().unwrap_or_default());
    let service = format!(
        "# Written by settle pull --install-timer.\n\
         [Unit]\n\
         Description=settle pull from {url}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exec}\n",
        url = url.replace('%', "%%")
    );
    let timer = format!(
        "# Written by settle pull --install-timer.\n\
         [Unit]\n\
         Description=Run settle pull every {interval}\n\
         \n\
         [Timer]\n\
         # At start (OnBootSec is past by then), then every interval after the last run began.\n\
         OnBootSec=1min\n\
         OnUnitActiveSec={interval}\n\
         RandomizedDelaySec={delay}\n\
         AccuracySec=1s\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        interval = args.interval.trim(),
        delay = args.random_delay.trim()
    );
    // ExecStart carries the URL: with a password in it, only root reads the service.
    let mode = if args.url.as_deref().and_then(url_password).is_some() {
        0o600
    } else {
        0o644
    };
    let dir = Path::new(UNIT_DIR);
    for (name, text) in [
        (format!("{UNIT}.service"), service),
        (format!("{UNIT}.timer"), timer),
    ] {
        write_atomically(&dir.join(&name), &text, mode)
            .map_err(|e| (EXIT_ERROR, format!("cannot write {UNIT_DIR}/{name}: {e}")))?;
        println!("wrote {UNIT_DIR}/{name}");
    }
    for systemctl in [
        &["daemon-reload"][..],
        &["enable", "--now", &format!("{UNIT}.timer")],
    ] {
        let out = Command::new("systemctl")
            .args(systemctl)
            .output()
            .map_err(|e| (EXIT_ERROR, format!("cannot run systemctl: {e}")))?;
        if !out.status.success() {
            return Err((
                EXIT_ERROR,
                format!(
                    "systemctl {} failed: {}",
                    systemctl.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
    }
    println!("enabled {UNIT}.timer");
    Ok(0)
}

fn write_atomically(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new()
        .prefix(".settle.")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    set_mode(file.path(), mode)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The options the service passes to `settle pull`: this command line without the timer's own.
fn command_line(args: &PullArgs) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut opt = |flag: &str, value: &str| {
        out.push(flag.to_string());
        out.push(value.to_string());
    };
    if let Some(url) = &args.url {
        opt("--url", url);
    }
    if let Some(checkout) = &args.checkout {
        opt("--checkout", checkout);
    }
    if let Some(dir) = &args.directory {
        opt("--directory", &dir.display().to_string());
    }
    if let Some(sleep) = args.sleep {
        opt("--sleep", &sleep.to_string());
    }
    if let Some(key) = &args.private_key {
        opt("--private-key", &key.display().to_string());
    }
    for inventory in &args.inventory.inventory {
        opt("--inventory", inventory);
    }
    for id in &args.vault.vault_ids {
        opt("--vault-id", id);
    }
    for file in &args.vault.vault_password_files {
        opt("--vault-password-file", &file.display().to_string());
    }
    if let Some(limit) = &args.limit {
        opt("--limit", limit);
    }
    for tags in &args.tags {
        opt("--tags", tags);
    }
    for tags in &args.skip_tags {
        opt("--skip-tags", tags);
    }
    for vars in &args.extra_vars {
        opt("--extra-vars", vars);
    }
    for path in &args.module_path {
        opt("--module-path", path);
    }
    for report in &args.report {
        opt("--report", report);
    }
    opt("--metrics-dir", &args.metrics_dir.display().to_string());
    for (on, flag) in [
        (args.only_if_changed, "--only-if-changed"),
        (args.force, "--force"),
        (args.full, "--full"),
        (args.accept_host_key, "--accept-host-key"),
        (args.verify_commit, "--verify-commit"),
        (args.clean, "--clean"),
        (args.track_subs, "--track-subs"),
        (args.purge, "--purge"),
        (args.check, "--check"),
        (args.diff, "--diff"),
        (args.flush_cache, "--flush-cache"),
    ] {
        if on {
            out.push(flag.to_string());
        }
    }
    if args.verbose > 0 {
        out.push(format!("-{}", "v".repeat(args.verbose.into())));
    }
    out.push("--".into());
    out.extend(args.playbooks.iter().map(|p| p.display().to_string()));
    if out.last().is_some_and(|a| a == "--") {
        out.pop();
    }
    out
}

/// One word of an `ExecStart=` line: quoted when it has to be, with systemd's specifiers (`%`)
/// and variable expansion (`$`) escaped.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%$".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> PullArgs {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            pull: PullArgs,
        }
        let mut all = vec!["pull"];
        all.extend_from_slice(args);
        Wrap::parse_from(all).pull
    }

    #[test]
    fn metrics_read_back_what_they_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = Metrics::path(dir.path());
        let m = Metrics {
            last_run: 1_700_000_000.0,
            last_success: 1_699_999_000.0,
            last_fetch: 1_700_000_000.0,
            changed: 3,
            failed_tasks: 1,
            exit_code: 2,
            revision: "abc".into(),
            last_good: "def".into(),
            url: "ssh://git@h/\"odd\"\\repo".into(),
        };
        m.write(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("settle_pull_failed 1\n"), "{text}");
        assert!(
            text.contains("settle_pull_revision_info{revision=\"abc\",last_good=\"def\","),
            "{text}"
        );
        assert_eq!(Metrics::load(&path), m);
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let url = "https://deploy:s3cret@git.example.com/site.git";
        assert_eq!(url_password(url).as_deref(), Some("s3cret"));
        assert_eq!(
            shown_url(url),
            "https://deploy:***@git.example.com/site.git"
        );
        assert_eq!(shown_url("ssh://git@h:22/x.git"), "ssh://git@h:22/x.git");
        assert_eq!(url_password("git@h:site.git"), None);
    }

    #[test]
    fn the_limit_names_this_host_as_ansible_pull_does() {
        let names = HostNames {
            fqdn: "web1.example.com".into(),
            node: "web1".into(),
        };
        assert_eq!(names.limit(), "localhost,web1.example.com,web1,127.0.0.1");
    }

    #[test]
    fn the_timer_runs_the_same_command_line_without_its_own_options() {
        let args = parse(&[
            "-U",
            "ssh://git@repo/site.git",
            "-d",
            "/srv/checkout",
            "-i",
            "hosts.ini",
            "-e",
            "greeting=hello world",
            "--install-timer",
            "--interval",
            "10s",
            "--accept-host-key",
            "site.yml",
        ]);
        let line = command_line(&args);
        assert_eq!(
            line,
            [
                "--url",
                "ssh://git@repo/site.git",
                "--directory",
                "/srv/checkout",
                "--inventory",
                "hosts.ini",
                "--extra-vars",
                "greeting=hello world",
                "--metrics-dir",
                DEFAULT_METRICS_DIR,
                "--accept-host-key",
                "--",
                "site.yml"
            ]
        );
        assert_eq!(
            systemd_quote("greeting=hello world"),
            "\"greeting=hello world\""
        );
        assert_eq!(systemd_quote("100%$HOME"), "100%%$$HOME");
    }
}
