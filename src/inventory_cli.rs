//! `settle inventory` (and `ansible-inventory`): the options Ansible's `ansible-inventory`
//! takes, its checks and messages, and its output (`--list`, `--host`, `--graph`).

use std::path::PathBuf;

use serde_json::Value;
use settle_inventory::{ShowOptions, python_json};

use crate::{EXIT_ERROR, Failure, InventoryArgs, vault_cli};

/// Ansible's exit code for bad options (`AnsibleOptionsError`).
const EXIT_OPTIONS: u8 = 5;

#[derive(clap::Args, Debug)]
pub(crate) struct InventoryCommand {
    #[command(flatten)]
    pub(crate) inventory: InventoryArgs,
    #[command(flatten)]
    pub(crate) vault: vault_cli::VaultArgs,
    /// Every group and host with its variables, as JSON.
    #[arg(long)]
    list: bool,
    /// The group tree (from GROUP, default `all`).
    #[arg(long)]
    graph: bool,
    /// One host's variables, as JSON.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// The group `--graph` starts at.
    #[arg(value_name = "GROUP")]
    group: Option<String>,
    /// Write YAML instead of JSON.
    #[arg(short = 'y', long)]
    yaml: bool,
    /// Write TOML instead of JSON.
    #[arg(long)]
    toml: bool,
    /// With --list: group variables on their groups, and hosts with only their own variables.
    #[arg(long)]
    export: bool,
    /// With --graph: show each host's and group's variables.
    #[arg(long)]
    vars: bool,
    /// With --list: write to this file instead of standard output.
    #[arg(long = "output", value_name = "OUTPUT_FILE")]
    output: Option<PathBuf>,
    /// Only these hosts (a pattern), for --list and --graph.
    #[arg(short = 'l', long = "limit", value_name = "SUBSET")]
    limit: Option<String>,
    /// Extra variables (they show in --list and --host).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS", action = clap::ArgAction::Append)]
    extra_vars: Vec<String>,
    /// The folder whose group_vars/ and host_vars/ count as a playbook's would.
    #[arg(long = "playbook-dir", value_name = "BASEDIR")]
    playbook_dir: Option<PathBuf>,
    /// Accepted for Ansible's sake: settle's inventory has no cache.
    #[arg(long, hide = true)]
    flush_cache: bool,
    /// More output.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

fn options_error(message: &str) -> Failure {
    (EXIT_OPTIONS, message.to_string())
}

/// Runs the command: checks the action as Ansible does, loads the inventory, prints.
pub(crate) fn run(cmd: &InventoryCommand) -> Result<u8, Failure> {
    let actions = [cmd.list, cmd.graph, cmd.host.is_some()];
    match actions.iter().filter(|a| **a).count() {
        0 => {
            return Err(options_error(
                "No action selected, at least one of --host, --graph or --list needs to be specified.",
            ));
        }
        1 => {}
        _ => {
            return Err(options_error(
                "Conflicting options used, only one of --host, --graph or --list can be used at the same time.",
            ));
        }
    }
    crate::set_vault_secrets(&cmd.vault)?;
    let mut inventory =
        crate::load_inventory(&cmd.inventory, cmd.verbose).map_err(crate::vault_exit)?;
    if let Some(dir) = &cmd.playbook_dir {
        inventory
            .add_playbook_vars_dir(dir)
            .map_err(|e| (EXIT_ERROR, format!("inventory: {e}")))?;
    }
    let mut options = ShowOptions {
        export: cmd.export,
        vars: cmd.vars,
        extra_vars: crate::extra_vars(&cmd.extra_vars)?,
        hosts: None,
    };
    let text = if let Some(host) = &cmd.host {
        let hosts = inventory.select(host).unwrap_or_default();
        let [host] = hosts.as_slice() else {
            return Err(options_error(
                "You must pass a single valid host to --host parameter",
            ));
        };
        dump(
            Value::Object(inventory.shown_host_vars(host, &options)),
            cmd,
        )?
    } else {
        if let Some(limit) = &cmd.limit {
            let pattern = inventory
                .resolve_limit(limit)
                .map_err(|e| (EXIT_ERROR, e.to_string()))?;
            let hosts = inventory
                .select(&pattern)
                .map_err(|e| (EXIT_ERROR, e.to_string()))?;
            options.hosts = Some(hosts.into_iter().collect());
        }
        if cmd.graph {
            let group = cmd.group.as_deref().unwrap_or("all");
            if inventory.group(group).is_none() {
                return Err(options_error(
                    "Pattern must be valid group name when using --graph",
                ));
            }
            // Ansible's graph text has no final newline (its `display` adds one).
            let graph = inventory.graph(group, &options);
            graph.strip_suffix('\n').unwrap_or(&graph).to_string()
        } else {
            let list = if cmd.yaml {
                inventory.list_nested(&options)
            } else if cmd.toml {
                inventory.list_flat(&options)
            } else {
                Ok(inventory.list_json(&options))
            };
            dump(list.map_err(|e| (EXIT_ERROR, e))?, cmd)?
        }
    };
    write(&text, cmd.output.as_ref())?;
    Ok(0)
}

/// The text ansible-inventory's `dump` gives: JSON (no final newline), PyYAML's block style
/// or tomli_w's TOML (`--yaml` wins over `--toml`, as there).
fn dump(value: Value, cmd: &InventoryCommand) -> Result<String, Failure> {
    if cmd.yaml {
        return settle_engine::yaml_dump_block(&settle_inventory::plain_values(value))
            .map_err(|e| (EXIT_ERROR, e));
    }
    if cmd.toml {
        return settle_inventory::toml_text(&settle_inventory::plain_values(value)).map_err(|e| {
            (
                EXIT_ERROR,
                format!("Unexpected Exception, this is probably a bug: {e}"),
            )
        });
    }
    Ok(python_json(&value))
}

/// Printed with a final newline (when it has none), as Ansible's `display` prints; written to
/// a file as it is.
fn write(text: &str, output: Option<&PathBuf>) -> Result<(), Failure> {
    let Some(path) = output else {
        if text.ends_with('\n') {
            print!("{text}");
        } else {
            println!("{text}");
        }
        return Ok(());
    };
    std::fs::write(path, text).map_err(|_| {
        (
            EXIT_ERROR,
            format!("Unable to write to destination file '{}'.", path.display()),
        )
    })
}
