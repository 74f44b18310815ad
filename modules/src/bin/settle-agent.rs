//! The agent alone, for hosts of another architecture or libc than the controller's.
//!
//! `settle __agent` is the agent the controller places on hosts like itself. For the others
//! (aarch64 when the controller is x86_64, Alpine's musl) `packaging/build-agent --agents`
//! builds this binary statically for each architecture: it serves the same calls with the same
//! code, and leaves out everything only the controller needs, so it is a fraction of settle's
//! size.
//! The controller picks one by the host's `uname -m` (settle-engine's `connection::agent`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let words: Vec<&str> = args.iter().map(|a| a.to_str().unwrap_or("")).collect();
    let code = match words[..] {
        ["__agent"] => settle_modules::agent::serve(),
        [settle_modules::async_job::SUBCOMMAND, stage] => settle_modules::async_job::main(stage),
        _ => {
            eprintln!(
                "settle-agent {}: settle's agent, started by settle on managed hosts \
                 (`settle-agent __agent`); it takes no other command",
                env!("CARGO_PKG_VERSION")
            );
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
