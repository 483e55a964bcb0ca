//! The process groups of the children running right now, so that the watchdog and the signal
//! handler can kill them before the hook exits: a killed stage must not leave a
//! `systemctl start` behind that starts docker minutes later. Only atomics and kill(2) are used
//! on the way out, so `kill_all` is async-signal-safe.
// unsafe: kill/_exit from the watchdog and signal path; each block says why it is sound.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicI32, Ordering};

/// More children than this at once never happens (the hook runs one at a time); a group that
/// finds no free slot is still bounded by its own timeout.
const SLOTS: usize = 8;
static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

/// Remembers one child's process group until it is dropped.
pub(crate) struct Registered(Option<usize>);

/// Registers `pgid` (a child spawned with `process_group(0)`, so its pgid is its pid).
pub(crate) fn register(pgid: i32) -> Registered {
    for (i, slot) in GROUPS.iter().enumerate() {
        if slot
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Registered(Some(i));
        }
    }
    Registered(None)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            GROUPS[i].store(0, Ordering::SeqCst);
        }
    }
}

/// SIGKILLs every registered process group. Async-signal-safe.
pub(crate) fn kill_all() {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 1 {
            // SAFETY: kill(2) is async-signal-safe; a negative pid names the process group.
            unsafe {
                nix::libc::kill(-pgid, nix::libc::SIGKILL);
            }
        }
    }
}

/// Writes `msg` to stderr only if that cannot block (poll says there is room), then returns:
/// a full, undrained stderr pipe must not keep the hook alive past its bound. Async-signal-safe
/// (poll(2), write(2)); no Rust lock is taken.
pub(crate) fn try_write_stderr(msg: &[u8]) {
    let mut pfd = nix::libc::pollfd {
        fd: 2,
        events: nix::libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll and write are async-signal-safe; the buffer outlives the calls.
    unsafe {
        if nix::libc::poll(&raw mut pfd, 1, 0) == 1 && pfd.revents & nix::libc::POLLOUT != 0 {
            // A pipe with room takes a write of less than PIPE_BUF bytes at once, whole.
            nix::libc::write(2, msg.as_ptr().cast(), msg.len().min(512));
        }
    }
}

/// Kills the children and ends the process at once with `code`, without unwinding, flushing or
/// taking any lock. Async-signal-safe.
pub(crate) fn exit_now(msg: &[u8], code: i32) -> ! {
    kill_all();
    try_write_stderr(msg);
    // SAFETY: _exit(2) is async-signal-safe and ends every thread.
    unsafe { nix::libc::_exit(code) }
}
