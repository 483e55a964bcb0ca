//! `audit --output FILE`: the report replaces FILE atomically, so that a reader (node_exporter's
//! textfile collector, a monitoring agent) sees the old report or the new one, never a part.
//!
//! Everything happens relative to the directory's descriptor: the temp file is created in it
//! with `O_CREAT|O_EXCL|O_NOFOLLOW`, written, fsynced, `renameat`ed over FILE, and the directory
//! fsynced. A symlink at FILE is refused, never followed; so is one as the directory's last
//! component. FILE is taken as given, not under `--root` (like `--admindir`).

use crate::root::Root;
use anyhow::{bail, Context, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

const MODE: u32 = 0o644;

pub fn write(root: &Root, path: &Path, data: &[u8]) -> Result<()> {
    let kill = crate::patch::apply::kill_point(root);
    let at = |point: &str| {
        if kill.as_deref() == Some(point) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name() else {
        bail!("--output {}: not a file name", path.display());
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dfd = nix::fcntl::open(dir, flags, Mode::empty())
        .with_context(|| format!("cannot open directory {} (no symlink)", dir.display()))?;
    // SAFETY: just returned by open(2), owned by nobody else.
    let dirf = unsafe { File::from_raw_fd(dfd) };
    match nix::sys::stat::fstatat(Some(dfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG => {
            bail!(
                "{} exists and is not a regular file (a symlink?); refusing to replace it",
                path.display()
            )
        }
        _ => {}
    }
    // Not `*.prom`: a collector reading the directory skips a temp file left by a kill.
    let tmp = format!(".{}.{}.dug-tmp", name.to_string_lossy(), std::process::id());
    let tfd = nix::fcntl::openat(
        Some(dfd),
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(MODE),
    )
    .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // SAFETY: as above.
    let mut f = unsafe { File::from_raw_fd(tfd) };
    at("temp-created");
    let written = (|| -> Result<()> {
        // Not subject to the umask: node_exporter's user must read it.
        nix::sys::stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(MODE))?;
        f.write_all(data)?;
        at("temp-written");
        f.sync_all()?;
        at("temp-synced");
        nix::fcntl::renameat(Some(dfd), tmp.as_str(), Some(dfd), name)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(
            Some(dfd),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    at("renamed");
    dirf.sync_all()
        .with_context(|| format!("cannot fsync directory {}", dir.display()))?;
    at("dir-synced");
    Ok(())
}
