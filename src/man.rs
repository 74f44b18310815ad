//! `settle man`: the manual pages, made from the command-line definition by clap_mangen, so
//! they say what `--help` says and cannot fall behind it.

use std::io::Write;
use std::path::Path;

use crate::{EXIT_ERROR, Failure};

/// Prints `settle.1`, or with `dir` writes a page for settle and for each of its commands
/// (`settle.1`, `settle-inventory.1`, `settle-vault-encrypt.1`, …; hidden ones left out).
pub(crate) fn run(mut cmd: clap::Command, dir: Option<&Path>) -> Result<u8, Failure> {
    // Built once, so subcommands carry their full names (`settle-vault`) and their versions.
    cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = dir else {
        let page = render(&cmd)?;
        // Written whole: a reader closing the pipe early (`| head`) is no error.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&page).and_then(|()| out.flush());
        return Ok(0);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| (EXIT_ERROR, format!("cannot create {}: {e}", dir.display())))?;
    let mut pending = vec![cmd];
    while let Some(cmd) = pending.pop() {
        pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let path = dir.join(clap_mangen::Man::new(cmd.clone()).get_filename());
        let page = render(&cmd)?;
        std::fs::write(&path, page)
            .map_err(|e| (EXIT_ERROR, format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(0)
}

fn render(cmd: &clap::Command) -> Result<Vec<u8>, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .date(env!("SETTLE_COMMIT_DATE"))
        .manual("settle manual")
        .render(&mut page)
        .map_err(|e| (EXIT_ERROR, format!("cannot render the manual page: {e}")))?;
    Ok(page)
}
