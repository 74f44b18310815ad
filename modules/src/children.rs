//! The process groups of commands running now. A command runs in a group of its own (so a
//! timeout ends its pipeline too), which also puts it out of reach of the terminal's Ctrl-C:
//! when the run is interrupted, or the agent's controller goes away, these groups are ended
//! here. The table is lock-free so a signal handler may walk it.

use std::sync::atomic::{AtomicI32, Ordering};

const SLOTS: usize = 256;

static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

/// A running group, taken out of the table when dropped (the command has ended).
pub(crate) struct Running(Option<usize>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            GROUPS[slot].store(0, Ordering::SeqCst);
        }
    }
}

/// Puts a process group in the table for as long as the returned guard lives. With more than
/// 256 commands at once, the rest are not tracked (they still end with their own timeout).
pub(crate) fn track(group: libc::pid_t) -> Running {
    Running(GROUPS.iter().position(|slot| {
        slot.compare_exchange(0, group, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }))
}

/// Sends `signal` to every running command's group. Async-signal-safe: atomics and killpg(2).
pub fn signal_all(signal: libc::c_int) {
    for slot in &GROUPS {
        let group = slot.load(Ordering::SeqCst);
        if group > 0 {
            // SAFETY: killpg only sends a signal to a group a command of ours leads.
            unsafe {
                libc::killpg(group, signal);
            }
        }
    }
}
