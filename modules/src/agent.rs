//! The agent: this crate's modules serving a controller over standard input and output.
//!
//! On first contact the controller places a copy of the `settle` binary on the host and starts
//! it as `settle __agent` through an SSH channel (under sudo for `become`). From then on the
//! connection carries one JSON object per line each way: a [`Hello`] from the agent, then a
//! [`Call`] from the controller and a [`Reply`] from the agent, for every module call of the run.
//! One process per host (and become user) for the whole run: no per-task upload, no per-task
//! interpreter start.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::{Outcome, Request};

/// Bumped whenever a message changes shape.
pub const PROTOCOL: u32 = 3;

/// The agent's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub settle_agent: u32,
    pub version: String,
    pub user: String,
    pub uid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    pub request: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub outcome: Outcome,
}

/// Serves calls until the controller closes the connection. A lost connection ends the
/// commands the call in hand started, but not the call itself: the agent ignores SIGHUP and
/// SIGPIPE, finishes the call (whose writes are atomic), and exits at end-of-file.
pub fn serve() -> i32 {
    // SAFETY: setting signal dispositions to SIG_IGN before any thread is started.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let hello = Hello {
        settle_agent: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").into(),
        user: crate::fsutil::user_name(uid),
        uid,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if write_line(&mut out, &hello).is_err() {
        return 1;
    }
    // Calls are read on a thread of their own, so the end of the connection is seen while a
    // call runs: the commands it started are ended, and the call in hand finishes (its writes
    // are atomic) before the agent exits.
    let (calls, incoming) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let failed = line.is_err();
            if calls.send(line).is_err() || failed {
                break;
            }
        }
        crate::children::signal_all(libc::SIGKILL);
    });
    let code = serve_calls(incoming, &mut out);
    crate::transfer::remove_staged_leftovers();
    code
}

/// Answers each call in turn until the connection ends: 0 at its end, 1 when it failed, 2 for
/// a call that cannot be read.
fn serve_calls(
    incoming: std::sync::mpsc::Receiver<std::io::Result<String>>,
    out: &mut impl Write,
) -> i32 {
    for line in incoming {
        let Ok(line) = line else { return 1 };
        if line.trim().is_empty() {
            continue;
        }
        let call: Call = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                let reply = Reply {
                    id: 0,
                    outcome: Outcome::failed(format!("agent: cannot read the call: {e}")),
                };
                let _ = write_line(out, &reply);
                return 2;
            }
        };
        // The controller splits `stdout_lines` from `stdout` when it reads the reply.
        let outcome = crate::run_without_lines(&call.request);
        // Keep serving even if the controller went away mid-call: the next read ends the loop.
        let _ = write_line(
            out,
            &Reply {
                id: call.id,
                outcome,
            },
        );
    }
    0
}

fn write_line<T: Serialize>(out: &mut impl Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}
