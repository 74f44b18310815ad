//! Ctrl-C and SIGTERM: the run stops as a user expects, losing nothing. The first signal ends
//! the commands running now (they run in process groups of their own, out of the terminal's
//! reach), lets every module call in hand finish (writes are atomic, so no temporary file is
//! left behind), starts no new task, prints the recap so far and exits with
//! `ansible-playbook`'s code for an interrupted run: 99 (143 for SIGTERM). A second signal
//! exits at once, and so does the first before the run starts (at a prompt, while reading the
//! inventory). On a remote host, the agent's input is closed: it ends the commands it started and
//! answers the call in hand, as a local command's end is answered.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    let first = SIGNAL
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if !first || !RUNNING.load(Ordering::SeqCst) {
        const MSG: &[u8] = b"\n[ERROR]: User interrupted execution\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(exit_code(signal));
        }
    }
    settle_modules::children::signal_all(libc::SIGKILL);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only uses atomics and async-signal-safe calls.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// From here on, a signal stops the run in order instead of ending the process.
pub(crate) fn run_started() {
    RUNNING.store(true, Ordering::SeqCst);
    // The handler may only touch atomics: a thread of its own passes the signal on to the
    // waiters of `signalled`.
    SIGNALLED.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("settle-signal".into())
            .spawn(|| {
                while !interrupted() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if let Some(notify) = SIGNALLED.get() {
                    notify.notify_waiters();
                }
            });
        tokio::sync::Notify::new()
    });
}

static SIGNALLED: OnceLock<tokio::sync::Notify> = OnceLock::new();

/// Resolves when the run is interrupted (never before the run starts).
pub(crate) async fn signalled() {
    let Some(notify) = SIGNALLED.get() else {
        return std::future::pending().await;
    };
    // Registered before the check, so a signal between the two is not missed.
    let notified = notify.notified();
    if interrupted() {
        return;
    }
    notified.await
}

/// The signal that interrupted the run, if one did.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether the run was interrupted: no new task may start.
pub fn interrupted() -> bool {
    signal().is_some()
}

/// The exit code for a run ended by `signal`: 99 for Ctrl-C as ansible-playbook, 128 + the
/// signal's number otherwise (143 for SIGTERM).
pub fn exit_code(signal: i32) -> i32 {
    if signal == libc::SIGINT {
        99
    } else {
        128 + signal
    }
}
