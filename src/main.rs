//! `settle`: run Ansible-style playbooks, idempotently, and fast.
//!
//! The binary is the thin end of the pipeline: it parses the command line, loads the inventory
//! (`settle-inventory`) and the playbooks (`settle-playbooks`), checks them against the modules
//! the engine knows, and hands everything to `settle-engine`.

// No input reaches a panic: a value that may be missing is an error naming where, not an
// unwrap. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use serde_json::Value;
use settle_engine::{RunOptions, Selection, Vars};
use settle_inventory::Inventory;
use settle_playbooks::{Playbook, TaskNode};

mod config;
mod inventory_cli;
mod man;
mod prompt;
mod pull;
mod vault_cli;

/// Exit codes, as `ansible-playbook` gives them.
const EXIT_ERROR: u8 = 1;
const EXIT_PARSE: u8 = 4;
/// Options that cannot be used (Ansible's `AnsibleOptionsError`).
const EXIT_OPTIONS: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "settle",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SETTLE_COMMIT"), ")"),
    about = "Brings hosts to the state Ansible-style playbooks declare, changing only what differs.",
    args_conflicts_with_subcommands = true,
    after_help = "Exit codes are ansible-playbook's: 0 success (also when no host matched, and in --check \
                  even if changes are predicted), 1 error, 2 a host failed or bad options, 3 drift \
                  found with --fail-on-change, 4 a host unreachable or a playbook that cannot be parsed, \
                  5 extra vars that are not a mapping, 99 interrupted (143 on SIGTERM)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Playbooks to run, in order.
    #[arg(value_name = "PLAYBOOK")]
    playbooks: Vec<PathBuf>,
    #[command(flatten)]
    inventory: InventoryArgs,
    #[command(flatten)]
    vault: vault_cli::VaultArgs,
    /// Further limit the hosts to this pattern.
    #[arg(short = 'l', long, value_name = "SUBSET")]
    limit: Option<String>,
    /// Only run tasks and plays tagged with these (comma separated, repeatable).
    #[arg(short = 't', long, value_name = "TAGS", action = ArgAction::Append)]
    tags: Vec<String>,
    /// Skip tasks and plays tagged with these.
    #[arg(long, value_name = "TAGS", action = ArgAction::Append)]
    skip_tags: Vec<String>,
    /// Extra variables: key=value pairs, YAML/JSON, or @file (repeatable; always win).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS", action = ArgAction::Append)]
    extra_vars: Vec<String>,
    /// Do not change anything; predict what would change.
    #[arg(short = 'C', long)]
    check: bool,
    /// Show the differences in files and attributes that tasks change (or would change).
    #[arg(short = 'D', long)]
    diff: bool,
    /// How many hosts to work on at once.
    #[arg(short = 'f', long, value_name = "FORKS")]
    forks: Option<usize>,
    /// Run operations with become (sudo, or su with --become-method su).
    #[arg(short = 'b', long = "become")]
    become_: bool,
    /// The user to become (default root).
    #[arg(long, value_name = "USER")]
    become_user: Option<String>,
    /// Ask for the become (sudo or su) password.
    #[arg(short = 'K', long)]
    ask_become_pass: bool,
    /// Ask for the SSH login password (`ansible_password` for every host that sets none).
    #[arg(short = 'k', long)]
    ask_pass: bool,
    /// How to become: sudo (the default) or su.
    #[arg(long, value_name = "BECOME_METHOD")]
    become_method: Option<String>,
    /// Connect as this user.
    #[arg(short = 'u', long = "user", value_name = "REMOTE_USER")]
    user: Option<String>,
    /// The private key file for SSH, for hosts that name none.
    #[arg(long = "private-key", visible_alias = "key-file", value_name = "FILE")]
    private_key: Option<String>,
    /// Connection type: local, ssh or russh.
    #[arg(short = 'c', long, value_name = "CONNECTION")]
    connection: Option<String>,
    /// Connection timeout in seconds.
    #[arg(short = 'T', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Start the playbook at the task with this name.
    #[arg(long, value_name = "TASK_NAME")]
    start_at_task: Option<String>,
    /// Confirm each task before running it.
    #[arg(long)]
    step: bool,
    /// Run handlers even when a task failed.
    #[arg(long)]
    force_handlers: bool,
    /// Forget the cached facts of every host in the inventory before the run.
    #[arg(long)]
    flush_cache: bool,
    /// List the hosts each play would run on, and stop.
    #[arg(long)]
    list_hosts: bool,
    /// List the tasks each play would run, and stop.
    #[arg(long)]
    list_tasks: bool,
    /// List the tags in the playbooks, and stop.
    #[arg(long)]
    list_tags: bool,
    /// Exit with code 3 (after naming each host and task) when any host changed, or in
    /// --check would change: the drift gate for CI, which expects changed=0.
    #[arg(long)]
    fail_on_change: bool,
    /// Write a report when the run ends: json=PATH (every host × task) or junit=PATH
    /// (a testcase per host × task). Repeatable.
    #[arg(long, value_name = "FORMAT=PATH", action = ArgAction::Append)]
    report: Vec<String>,
    /// What standard output carries: text (as ansible-playbook) or json (one event per line).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    output: String,
    /// Check the playbooks' syntax (and module arguments), and stop.
    #[arg(long)]
    syntax_check: bool,
    /// More output (-vvv for even more).
    #[arg(short = 'v', long, action = ArgAction::Count)]
    verbose: u8,
    /// Folders of Ansible modules for tasks settle has no module for (`a:b`, repeatable),
    /// searched before ANSIBLE_LIBRARY's.
    #[arg(short = 'M', long, value_name = "PATHS", action = ArgAction::Append)]
    module_path: Vec<String>,
    /// Run one module on the hosts of a pattern instead of playbooks, like `ansible` (settle
    /// does this when it is called `ansible`): `settle --adhoc web -m ping`.
    #[arg(long)]
    adhoc: bool,
    /// The module an ad-hoc command runs (default: command).
    #[arg(
        short = 'm',
        long = "module-name",
        value_name = "MODULE",
        requires = "adhoc"
    )]
    module_name: Option<String>,
    /// The module's arguments in an ad-hoc command (`key=value …`, or the command line).
    #[arg(short = 'a', long = "args", value_name = "ARGS", requires = "adhoc")]
    module_args: Option<String>,
    /// An ad-hoc command's results one line per host.
    #[arg(short = 'o', long = "one-line", requires = "adhoc")]
    one_line: bool,
    /// The folder an ad-hoc command's play stands in, as a playbook's folder: where its
    /// `library/`, `collections/` and relative paths are found (default: the current one).
    #[arg(long = "playbook-dir", value_name = "DIR", requires = "adhoc")]
    playbook_dir: Option<PathBuf>,
}

/// The names Ansible's commands have: settle installed (or linked) under one of them behaves
/// as that command.
fn as_ansible_command(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("settle");
    // `settle adhoc PATTERN …` is `settle --adhoc PATTERN …`.
    if args.get(1).is_some_and(|a| a == "adhoc") {
        let mut args = args;
        args[1] = "--adhoc".into();
        return args;
    }
    let inserted = match name {
        "ansible" => "--adhoc",
        "ansible-vault" => "vault",
        "ansible-inventory" => "inventory",
        "ansible-config" => "config",
        _ => return args,
    };
    let mut args = args;
    args.insert(1, inserted.into());
    args
}

#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct InventoryArgs {
    /// Inventory file, directory, or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY", action = ArgAction::Append)]
    inventory: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// The settings ansible.cfg or the environment give, as `ansible-config dump
    /// --only-changed` shows them (settle lists the settings it reads).
    Dump {
        /// Only the settings that differ from the defaults (required: settle does not carry
        /// Ansible's defaults for settings it does not read).
        #[arg(long)]
        only_changed: bool,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the inventory, like `ansible-inventory`.
    Inventory(inventory_cli::InventoryCommand),
    /// Show the configuration, like `ansible-config`.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Encrypt, decrypt, view and edit Ansible Vault files and strings, like `ansible-vault`.
    Vault {
        #[command(subcommand)]
        action: vault_cli::VaultAction,
    },
    /// Fetch playbooks from a git repository and run them on this host, like `ansible-pull`.
    Pull(Box<pull::PullArgs>),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), or write one for settle and each command into a folder.
    Man {
        /// Write settle.1, settle-inventory.1, … into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Serve module calls over standard input and output (started by settle on managed hosts).
    #[command(name = "__agent", hide = true)]
    Agent,
    /// Start or supervise the background job of an `async` task (started by settle on hosts).
    #[command(name = "__async_job", hide = true)]
    AsyncJob { stage: String },
}

fn main() -> ExitCode {
    // OpenSSH asking for a login password through SSH_ASKPASS (settle is its own askpass).
    if let Some(code) = settle_engine::connection::answer_ssh_askpass() {
        return ExitCode::from(code);
    }
    let cli = Cli::parse_from(as_ansible_command(std::env::args_os().collect()));
    if !matches!(cli.command, Some(Command::Agent | Command::AsyncJob { .. })) {
        settle_engine::interrupt::install();
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            let paint = std::io::stderr().is_terminal();
            if paint {
                eprintln!("\x1b[1;31m[ERROR]: {message}\x1b[0m");
            } else {
                eprintln!("[ERROR]: {message}");
            }
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

/// The one-task play an ad-hoc command runs: the module with its arguments on the pattern's
/// hosts, without gathering facts, as `ansible` runs it.
fn adhoc_playbook(cli: &Cli) -> Result<Playbook, Failure> {
    if cli.playbooks.len() != 1 {
        return Err((2, "an ad-hoc command takes one host pattern".into()));
    }
    let module = cli.module_name.as_deref().unwrap_or("command");
    let play = serde_json::json!([{
        "name": "Ansible Ad-Hoc",
        "hosts": cli.playbooks[0].display().to_string(),
        "gather_facts": false,
        "tasks": [{ module: cli.module_args.clone() }],
    }]);
    let text = settle_yaml::to_string(&play).map_err(|e| (EXIT_ERROR, e))?;
    let path = match &cli.playbook_dir {
        Some(dir) => dir.join("<adhoc>"),
        None => PathBuf::from("<adhoc>"),
    };
    settle_playbooks::playbook_from_text(&text, &path).map_err(|e| (EXIT_PARSE, e.to_string()))
}

/// Loads the inventory. A source that cannot be read (a syntax error, a group that is its own
/// ancestor) is a warning and left out, as every Ansible command leaves it out, unless
/// ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED (or, when nothing could be read,
/// ANSIBLE_INVENTORY_UNPARSED_FAILED) says otherwise.
fn load_inventory(args: &InventoryArgs, verbose: u8) -> Result<Inventory, Failure> {
    let inventory = load_inventory_sources(args, verbose)?;
    group_name_warning(verbose);
    Ok(inventory)
}

/// Ansible's warning about group names that could not be variable names, once, as soon as
/// one was read (before a source's parse error, as Ansible shows it), with the details at -vvvv.
fn group_name_warning(verbose: u8) {
    static SHOWN: std::sync::Once = std::sync::Once::new();
    if let Some((warning, details)) = settle_inventory::groupname::warning() {
        SHOWN.call_once(|| {
            if verbose >= 4 {
                for line in details {
                    println!("{line}");
                }
            }
            eprintln!("[WARNING]: {warning}");
        });
    }
}

fn load_inventory_sources(args: &InventoryArgs, verbose: u8) -> Result<Inventory, Failure> {
    let mut sources = args.inventory.clone();
    if sources.is_empty() {
        for var in ["SETTLE_INVENTORY", "ANSIBLE_INVENTORY"] {
            if let Ok(v) = std::env::var(var) {
                sources.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                break;
            }
        }
    }
    // Ansible's default inventory, where there is one.
    if sources.is_empty() && Path::new(DEFAULT_INVENTORY).is_file() {
        sources.push(DEFAULT_INVENTORY.into());
    }
    if sources.is_empty() {
        unparsed_warning();
        return Ok(Inventory::empty());
    }
    // As ansible-playbook: a source that does not exist is a warning, and with none left only
    // the implicit localhost is there.
    sources.retain(|source| {
        let usable = Path::new(source).exists() || source.contains(',');
        if !usable {
            let shown = std::path::absolute(source)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| source.clone());
            eprintln!("[WARNING]: Unable to parse {shown} as an inventory source");
        }
        usable
    });
    if sources.is_empty() {
        unparsed_warning();
        return Ok(Inventory::empty());
    }
    let jinja =
        Some(&settle_engine::inventory_jinja::InventoryJinja as &dyn settle_inventory::Evaluator);
    let failed = |e: settle_inventory::InventoryError| (EXIT_ERROR, format!("inventory: {e}"));
    if config::env_flag("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED") == Some(true) {
        return Inventory::load_with(&sources, jinja).map_err(failed);
    }
    let mut unparsed = 0;
    let inventory = Inventory::load_skipping_unparsed(&sources, jinja, &mut |path, error| {
        // A wrong vault password stops everything (issue 14's promise), where Ansible would
        // leave the source out.
        if settle_vault::decrypt_failed() {
            return Err(error);
        }
        // A host list is shown as given, a file by its full path.
        let shown = match path.exists() || !path.to_string_lossy().contains(',') {
            true => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            false => path.to_path_buf(),
        };
        group_name_warning(verbose);
        eprintln!("[WARNING]: {}", error.warning());
        eprintln!(
            "[WARNING]: Unable to parse {} as an inventory source",
            shown.display()
        );
        unparsed += 1;
        Ok(())
    })
    .map_err(failed)?;
    if unparsed > 0 && inventory.is_empty() {
        if config::env_flag("ANSIBLE_INVENTORY_UNPARSED_FAILED") == Some(true) {
            return Err((
                EXIT_ERROR,
                "Completely failed to parse inventory source(s)".into(),
            ));
        }
        unparsed_warning();
    }
    if verbose >= 3 {
        for note in inventory.notes_vvv() {
            println!("{note}");
        }
    }
    Ok(inventory)
}

/// Whether an ad-hoc command's output is the `oneline` callback's by configuration, as with
/// `-o`: `ANSIBLE_STDOUT_CALLBACK=oneline` (ansible.cfg's `stdout_callback`), which ad-hoc
/// commands heed only with `ANSIBLE_LOAD_CALLBACK_PLUGINS` (`bin_ansible_callbacks`).
fn oneline_callback_configured() -> bool {
    config::env_flag("ANSIBLE_LOAD_CALLBACK_PLUGINS") == Some(true)
        && config::env_value("ANSIBLE_STDOUT_CALLBACK").is_some_and(|callback| {
            matches!(callback.trim(), "oneline" | "ansible.builtin.oneline")
        })
}

/// Where Ansible looks for an inventory when none is given (`DEFAULT_HOST_LIST`).
const DEFAULT_INVENTORY: &str = "/etc/ansible/hosts";

/// Ansible's warning when no inventory source could be read (unless
/// `ANSIBLE_INVENTORY_UNPARSED_WARNING`, ansible.cfg's `inventory_unparsed_warning`, is false).
fn unparsed_warning() {
    if config::env_flag("ANSIBLE_INVENTORY_UNPARSED_WARNING") != Some(false) {
        eprintln!("[WARNING]: No inventory was parsed, only implicit localhost is available");
    }
}

/// Ansible's note when the inventory has no host (unless `ANSIBLE_LOCALHOST_WARNING`,
/// ansible.cfg's `localhost_warning`, is false): only the implicit localhost is there. An
/// ad-hoc command aimed at localhost itself is not warned.
fn empty_inventory_warning(inventory: &Inventory, adhoc_pattern: Option<&str>) {
    let at_localhost = matches!(adhoc_pattern, Some("localhost" | "127.0.0.1" | "::1"));
    if inventory.hosts().next().is_none()
        && !at_localhost
        && config::env_flag("ANSIBLE_LOCALHOST_WARNING") != Some(false)
    {
        eprintln!(
            "[WARNING]: provided hosts list is empty, only localhost is available. Note that \
             the implicit localhost does not match 'all'"
        );
    }
}

fn run(cli: Cli) -> Result<u8, Failure> {
    // The agent on a managed host, shell completions and manual pages read no configuration;
    // a pull reads its checkout's, once it is in it.
    let mut config_file = None;
    if !matches!(
        &cli.command,
        Some(
            Command::Agent
                | Command::AsyncJob { .. }
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Pull(_)
        )
    ) {
        // ansible.cfg's settings reach everything below as ANSIBLE_* variables (the
        // environment's own win; the command line wins over both).
        config_file = config::apply().map_err(|e| (EXIT_ERROR, format!("ansible.cfg: {e}")))?;
        settle_engine::output::tracebacks_for().map_err(|e| (EXIT_OPTIONS, e))?;
        settle_inventory::groupname::Transform::configured().map_err(|e| (EXIT_OPTIONS, e))?;
    }
    if cli.adhoc && cli.one_line {
        settle_yaml::deprecation::deprecated(
            "The '-o' argument is deprecated.",
            "2.23",
            None,
            Some("Use callback configuration to enable the oneline callback instead."),
            None,
        );
    }
    match &cli.command {
        Some(Command::Agent) => return Ok(settle_modules::agent::serve() as u8),
        Some(Command::AsyncJob { stage }) => {
            return Ok(settle_modules::async_job::main(stage) as u8);
        }
        Some(Command::Completions { shell }) => {
            // Written whole, then sent: a reader that closes the pipe early (`| head`) ends
            // the output, not the program with a panic.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "settle", &mut script);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&script).and_then(|()| out.flush());
            return Ok(0);
        }
        Some(Command::Man { dir }) => return man::run(Cli::command(), dir.as_deref()),
        Some(Command::Vault { action }) => return vault_cli::run(action),
        Some(Command::Config {
            action: ConfigAction::Dump { only_changed },
        }) => {
            if !only_changed {
                return Err((
                    EXIT_ERROR,
                    "settle config dump shows only the settings you changed: add --only-changed"
                        .into(),
                ));
            }
            print!("{}", config::dump_changed());
            return Ok(0);
        }
        Some(Command::Inventory(cmd)) => return inventory_cli::run(cmd),
        Some(Command::Pull(args)) => return pull::run(args.as_ref().clone()),
        None => {}
    }
    if cli.playbooks.is_empty() {
        Cli::command().print_help().ok();
        let what = if cli.adhoc {
            "a host pattern"
        } else {
            "at least one playbook"
        };
        return Err((2, format!("give {what}")));
    }
    // With -v, which configuration is in force, in Ansible's words.
    if cli.verbose > 0 {
        match &config_file {
            Some(path) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                println!("Using {} as config file", path.display())
            }
            None => println!("No config file found; using defaults"),
        }
    }
    set_vault_secrets(&cli.vault)?;
    let mut inventory = load_inventory(&cli.inventory, cli.verbose).map_err(vault_exit)?;
    let adhoc_pattern = cli
        .adhoc
        .then(|| cli.playbooks.first().and_then(|p| p.to_str()))
        .flatten();
    empty_inventory_warning(&inventory, adhoc_pattern);
    let extra = extra_vars(&cli.extra_vars).map_err(vault_exit)?;
    // `collections:` searches the collections installed with ansible-core too.
    settle_playbooks::set_installed_collection_roots(
        settle_engine::ansible_modules::installed_collection_roots,
    );
    // Static imports name their files with the variables known while the playbook is read.
    let known = std::sync::Arc::new(extra.clone());
    settle_playbooks::set_static_renderer(Box::new(move |text, vars| {
        let scope = settle_engine::template::Scope::new(
            vec![std::sync::Arc::new(vars.clone()), known.clone()],
            None,
        );
        settle_engine::template::templar()
            .render_text(text, &scope)
            .map_err(|e| e.message)
    }));
    let mut playbooks = Vec::new();
    if cli.adhoc {
        playbooks.push(adhoc_playbook(&cli)?);
    }
    for path in cli.playbooks.iter().filter(|_| !cli.adhoc) {
        if !path.is_file() {
            return Err((
                EXIT_ERROR,
                format!("the playbook {} could not be found", path.display()),
            ));
        }
        let playbook = settle_playbooks::load_playbook(path).map_err(|e| {
            use settle_playbooks::PlaybookError::{Invalid, Missing, Refused};
            let code = match e {
                Missing { .. } => EXIT_ERROR,
                _ => EXIT_PARSE,
            };
            // As Ansible's: the error, then where it is with the source lines.
            let origin = match &e {
                Invalid { location, .. } | Missing { location, .. } | Refused { location, .. } => {
                    settle_engine::output::source_excerpt(location)
                }
                _ => Vec::new(),
            };
            // Ansible leaves a blank line after the excerpt's caret.
            let blank = (!origin.is_empty()).then(String::new);
            let text = std::iter::once(e.to_string())
                .chain(origin)
                .chain(blank)
                .collect::<Vec<_>>();
            vault_exit((code, text.join("\n")))
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        inventory
            .add_playbook_vars_dir(dir)
            .map_err(|e| vault_exit((EXIT_ERROR, format!("inventory: {e}"))))?;
        playbooks.push(playbook);
    }
    // --limit is checked (and `@file` read) before anything runs, as ansible-playbook does:
    // an invalid pattern, a missing file or no host left is an error (exit 1).
    for term in (cli.limit.as_deref()).map_or(Vec::new(), |l| inventory.unmatched_terms(l)) {
        eprintln!("[WARNING]: Could not match supplied host pattern, ignoring: {term}");
    }
    let limit = (cli.limit.as_deref())
        .map(|limit| inventory.resolve_limit(limit))
        .transpose()
        .map_err(|e| (EXIT_ERROR, e.to_string()))?;
    let cli = Cli { limit, ..cli };
    settle_engine::ansible_modules::add_module_paths(
        cli.module_path
            .iter()
            .flat_map(|p| p.split(':'))
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from),
    );
    settle_engine::validate(&playbooks).map_err(|e| (EXIT_PARSE, e.to_string()))?;
    settle_engine::render_tags(&mut playbooks, &extra).map_err(|e| (EXIT_ERROR, e))?;
    let split = |values: &[String]| -> Vec<String> {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let selection = Selection {
        tags: split(&cli.tags),
        skip_tags: split(&cli.skip_tags),
        start_at_task: cli.start_at_task.clone(),
    };
    if cli.syntax_check {
        for p in &playbooks {
            println!("\nplaybook: {}", p.path.display());
        }
        return Ok(0);
    }
    if cli.list_hosts || cli.list_tasks || cli.list_tags {
        list(&cli, &playbooks, &inventory, &selection);
        return Ok(0);
    }
    let connection_password = if cli.ask_pass {
        Some(
            prompt::secret("SSH password: ")
                .map_err(|e| (EXIT_ERROR, format!("cannot read the password: {e}")))?,
        )
    } else {
        None
    };
    let become_password = if cli.ask_become_pass {
        Some(
            prompt::secret("BECOME password: ")
                .map_err(|e| (EXIT_ERROR, format!("cannot read the password: {e}")))?,
        )
    } else {
        None
    };
    let opts = RunOptions {
        limit: cli.limit.clone(),
        selection,
        extra_vars: extra,
        check: cli.check,
        diff: cli.diff || config::env_flag("ANSIBLE_DIFF_ALWAYS") == Some(true),
        forks: cli
            .forks
            .or_else(|| config::env_value("ANSIBLE_FORKS").and_then(|f| f.trim().parse().ok()))
            .unwrap_or(5)
            .max(1),
        become_: cli.become_ || config::env_flag("ANSIBLE_BECOME") == Some(true),
        become_user: cli
            .become_user
            .clone()
            .or_else(|| config::env_value("ANSIBLE_BECOME_USER")),
        become_password,
        connection_password,
        become_method: cli
            .become_method
            .clone()
            .or_else(|| config::env_value("ANSIBLE_BECOME_METHOD")),
        become_exe: config::env_value("ANSIBLE_BECOME_EXE"),
        become_flags: config::env_value("ANSIBLE_BECOME_FLAGS"),
        remote_user: cli
            .user
            .clone()
            .or_else(|| config::env_value("ANSIBLE_REMOTE_USER")),
        private_key_file: cli
            .private_key
            .clone()
            .or_else(|| config::env_value("ANSIBLE_PRIVATE_KEY_FILE")),
        connection: cli.connection.clone(),
        timeout: cli
            .timeout
            .or_else(|| config::env_value("ANSIBLE_TIMEOUT").and_then(|t| t.trim().parse().ok()))
            .unwrap_or(10),
        verbosity: cli.verbose,
        force_handlers: cli.force_handlers
            || config::env_flag("ANSIBLE_FORCE_HANDLERS") == Some(true),
        step: cli.step,
        fact_cache: settle_engine::fact_cache::FactCache::from_env()
            .map_err(|e| (EXIT_ERROR, e))?,
        flush_cache: cli.flush_cache,
        fail_on_change: cli.fail_on_change,
        reports: cli
            .report
            .iter()
            .map(|r| settle_engine::report::ReportTarget::parse(r))
            .collect::<Result<_, _>>()
            .map_err(|e| (EXIT_ERROR, e))?,
        json_output: cli.output == "json",
        one_line: cli.one_line || cli.adhoc && oneline_callback_configured(),
        adhoc_module: cli.adhoc.then(|| {
            settle_playbooks::short_module_name(cli.module_name.as_deref().unwrap_or("command"))
                .to_string()
        }),
    };
    let code = settle_engine::run(&playbooks, Arc::new(inventory), &opts);
    Ok(code as u8)
}

/// The vault secrets from the command line and the environment, set for everything loaded
/// after (vaulted files and `!vault` values). No prompt unless `--ask-vault-pass` or a
/// `--vault-id …@prompt` asks for one, as with `ansible-playbook`.
fn set_vault_secrets(args: &vault_cli::VaultArgs) -> Result<(), Failure> {
    let secrets = args
        .secrets(vault_cli::Prompt::Existing, false)
        .map_err(|e| (EXIT_ERROR, e))?;
    settle_vault::set_secrets(secrets);
    Ok(())
}

/// A load that failed because a vault could not be decrypted exits 1, as in Ansible.
fn vault_exit(failure: Failure) -> Failure {
    if settle_vault::decrypt_failed() {
        (EXIT_ERROR, failure.1)
    } else {
        failure
    }
}

/// `-e` values: `key=value` pairs, a YAML/JSON mapping, or `@file`.
fn extra_vars(values: &[String]) -> Result<Vars, Failure> {
    let mut vars = Vars::new();
    for value in values {
        let value = value.trim();
        if let Some(file) = value.strip_prefix('@') {
            let loaded = settle_inventory::load_vars_file(Path::new(file))
                .map_err(|e| (EXIT_ERROR, format!("extra vars: {e}")))?;
            vars.extend(loaded);
        } else if value.starts_with('{') || value.starts_with('[') || value.starts_with("---") {
            // Ansible's exit codes: 4 for text it cannot parse, 5 for data of the wrong shape.
            match settle_yaml::parse_str(value, "<extra vars>")
                .map_err(|e| (EXIT_PARSE, e.to_string()))?
                .to_value()
            {
                Value::Object(map) => vars.extend(map),
                _ => {
                    return Err((
                        EXIT_OPTIONS,
                        format!(
                            "Invalid extra vars data supplied. '{value}' could not be made into \
                             a dictionary"
                        ),
                    ));
                }
            }
        } else {
            let pairs = settle_playbooks::parse_kv(value, false)
                .map_err(|e| (EXIT_PARSE, format!("extra vars: {e}")))?;
            if let Some(raw) = pairs.get("_raw_params") {
                return Err((
                    EXIT_ERROR,
                    format!("extra vars: expected key=value, found {raw}"),
                ));
            }
            vars.extend(pairs);
        }
    }
    Ok(vars)
}

fn list(cli: &Cli, playbooks: &[Playbook], inventory: &Inventory, selection: &Selection) {
    // ansible-playbook's layout: a blank line before each playbook and play, tags sorted, and
    // nothing after the last line.
    let sorted = |tags: &[String]| {
        let mut tags = tags.to_vec();
        tags.sort();
        tags.dedup();
        tags.join(", ")
    };
    for playbook in playbooks {
        println!("\nplaybook: {}", playbook.path.display());
        for (i, play) in playbook.plays.iter().enumerate() {
            println!(
                "\n  play #{} ({}): {}\tTAGS: [{}]",
                i + 1,
                play.hosts,
                play.name,
                sorted(&play.keywords.tags)
            );
            if cli.list_hosts {
                let mut hosts = inventory.select(&play.hosts).unwrap_or_default();
                if let Some(limit) = &cli.limit {
                    let allowed = inventory.select(limit).unwrap_or_default();
                    hosts.retain(|h| allowed.contains(h));
                }
                println!("    pattern: ['{}']", play.hosts);
                println!("    hosts ({}):", hosts.len());
                for h in hosts {
                    println!("      {h}");
                }
            }
            let mut tasks = Vec::new();
            for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                flatten(section, &mut tasks);
            }
            let all_tasks = tasks;
            let selected: Vec<_> = all_tasks
                .iter()
                .filter(|(_, tags)| selection.selects(tags))
                .collect();
            if cli.list_tasks {
                println!("    tasks:");
                for (name, tags) in &selected {
                    println!("      {name}\tTAGS: [{}]", sorted(tags));
                }
            }
            if cli.list_tags {
                // Without --tags, the tags of `never` tasks are listed too, as ansible-playbook
                // lists them.
                let listing = Selection {
                    tags: match selection.tags.is_empty() {
                        true => vec!["all".into(), "never".into()],
                        false => selection.tags.clone(),
                    },
                    ..selection.clone()
                };
                let all: Vec<String> = all_tasks
                    .iter()
                    .filter(|(_, tags)| listing.selects(tags))
                    .flat_map(|(_, t)| t.iter().cloned())
                    .collect();
                println!("      TASK TAGS: [{}]", sorted(&all));
            }
        }
    }
}

fn flatten(nodes: &[TaskNode], out: &mut Vec<(String, Vec<String>)>) {
    for node in nodes {
        match node {
            TaskNode::Task(t) if t.is_role_complete() => {}
            TaskNode::Task(t) => out.push((t.display_name(), t.keywords.tags.clone())),
            TaskNode::Block(b) => {
                flatten(&b.block, out);
                flatten(&b.rescue, out);
                flatten(&b.always, out);
            }
            TaskNode::Include(i) => out.push((
                i.name.clone().unwrap_or_else(|| match i.role_include {
                    Some(_) => "include_role".into(),
                    None => "include_tasks".into(),
                }),
                i.keywords.tags.clone(),
            )),
        }
    }
}
