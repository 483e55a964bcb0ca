//! docker-upgrade-guard: keeps the Docker daemon running across apt/dpkg upgrades.
//!
//! The crate is a library plus a thin binary so that integration tests, fuzzers and the
//! build-time man page generator (`xtask`) use exactly the code that ships. Only what
//! `main.rs`, `xtask` and the integration tests use is `pub` here; everything else is
//! crate-private (`unreachable_pub` keeps it so). docs/architecture.md has the flow.
//!
//! Module map (one job each):
//! - [`root`] — every path the tool touches, relative to `--root` (like `dpkg --root`).
//! - [`fsutil`] — root-safe file reading (no symlinks, size cap) and atomic writing.
//! - [`dirs`] — our directories, reached and written only through checked descriptors.
//! - [`xattr`] — extended attributes through file descriptors (kept by `patch`/`--revert`).
//! - [`escape`] — control characters escaped at every sink (stderr, stdout, journal).
//! - `output` — `outln!`/`errln!`: printing that never panics.
//! - `children` — the live child process groups, killed by the watchdog and signal path.
//! - [`dpkg`] — the dpkg database, maintainer scripts, versions, dpkg.log, `.deb`s, locks.
//! - [`scripts`] — what a maintainer script does to watched units, and its repair.
//! - [`units`] — systemd unit files as systemd resolves them, and stop propagation.
//! - [`in_root`] — a path of the target system resolved inside `--root`, as a chroot would.
//! - [`service`] — the service manager behind one small trait (systemctl, or a stand-in).
//! - [`health`] — does docker/containerd answer on their sockets.
//! - [`config`] — `/etc/docker-upgrade-guard/config.toml`.
//! - [`events`] — the event log (JSON lines) and the journal.
//! - [`audit`], [`hook`], [`patch`], [`status`] — the user-facing commands.
//! - [`cli`] — argument parsing and dispatch.

#[macro_use]
mod output;

mod audit;
mod children;
pub mod cli;
pub mod config;
mod ctx;
mod diff;
mod dirs;
pub mod dpkg;
pub mod engine;
mod escape;
pub mod events;
pub mod fsutil;
mod hash;
pub mod health;
mod hook;
mod in_root;
mod inspect;
pub mod patch;
pub mod root;
pub mod scripts;
pub mod service;
mod status;
pub mod units;
mod watch;
mod xattr;

/// How many cases each proptest fuzzer runs: `DUG_FUZZ_CASES`, else 2000 (a few seconds in CI;
/// set it high for a long fuzzing session).
#[cfg(test)]
pub(crate) fn fuzz_cases() -> u32 {
    std::env::var("DUG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}
