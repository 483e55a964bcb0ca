//! `audit --output FILE`: the report replaces FILE atomically, so that a reader (node_exporter's
//! textfile collector, a monitoring agent) sees the old report or the new one, never a part.
//!
//! The project's one atomic write ([`crate::fsutil::atomic_write`]): the directory opened
//! once, a temporary file created in it relative to its descriptor (`O_EXCL`, so never through
//! a symlink), fsync, `renameat` over FILE (a symlink at FILE is replaced, never followed),
//! fsync of the directory. Mode 0644 whatever the umask (node_exporter's user reads it), our
//! own owner. FILE is taken as given, not under `--root` (like `--admindir`). Tests kill the
//! process after each step with patch's knob (debug builds, non-host `--root` only).

use crate::fsutil::FileAttrs;
use crate::patch::apply::{kill_point, maybe_kill, step_name};
use crate::root::Root;
use std::path::Path;

pub(crate) fn write(root: &Root, path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let kill = kill_point(root);
    let attrs = FileAttrs {
        mode: 0o644,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    crate::fsutil::atomic_write(path, data, attrs, |s| {
        maybe_kill(kill.as_deref(), step_name(s));
    })
}
