//! dpkg's locks, taken like a frontend does: `lock-frontend`, then `lock`.
//!
//! dpkg and apt lock these files with fcntl record locks over the whole file (F_SETLK,
//! F_WRLCK), not with flock(2): only the same kind of lock excludes them. Record locks belong
//! to the process and vanish when it closes *any* descriptor of the file, so nothing else in
//! this process may open the lock files while a [`DpkgLock`] is alive.
// unsafe: fcntl record locks on a raw fd, as dpkg takes them; each block says why it is sound.
#![allow(unsafe_code)]

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::stat::Mode;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

/// Held locks; dropping releases them.
#[derive(Debug)]
pub struct DpkgLock {
    _files: Vec<std::fs::File>,
}

/// Takes `<admindir>/lock-frontend` (unless `frontend_locked`, i.e. we run inside an apt hook
/// where apt holds it: `DPKG_FRONTEND_LOCKED=true`) and then `<admindir>/lock`, with the same
/// fcntl record locks dpkg uses, without waiting. If another process holds one, the error
/// says which lock and which pid.
pub fn acquire(admindir: &Path, frontend_locked: bool) -> anyhow::Result<DpkgLock> {
    let mut files = Vec::with_capacity(2);
    if !frontend_locked {
        files.push(lock_one(&admindir.join("lock-frontend"))?);
    }
    files.push(lock_one(&admindir.join("lock"))?);
    Ok(DpkgLock { _files: files })
}

/// True when the environment says an apt frontend holds `lock-frontend` for us.
pub fn frontend_locked_by_env() -> bool {
    std::env::var_os("DPKG_FRONTEND_LOCKED").is_some_and(|v| v == "true")
}

fn lock_one(path: &Path) -> Result<File> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(|e| match e {
        Errno::ELOOP => anyhow!(
            "the dpkg lock {} is a symlink; refusing to use it",
            path.display()
        ),
        e => anyhow!("cannot open the dpkg lock {}: {}", path.display(), e.desc()),
    })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat the dpkg lock {}", path.display()))?;
    if !meta.is_file() {
        return Err(anyhow!(
            "the dpkg lock {} is not a regular file",
            path.display()
        ));
    }
    let want = whole_file(libc::F_WRLCK);
    match fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&want)) {
        Ok(_) => Ok(file),
        Err(Errno::EACCES | Errno::EAGAIN) => Err(held_error(&file, path)),
        Err(e) => Err(anyhow!("cannot lock {}: {}", path.display(), e.desc())),
    }
}

fn held_error(file: &File, path: &Path) -> anyhow::Error {
    let mut probe = whole_file(libc::F_WRLCK);
    let holder = match fcntl(file.as_raw_fd(), FcntlArg::F_GETLK(&mut probe)) {
        // The holder can let go between the two calls, and a holder in another pid
        // namespace reports pid 0: then we cannot name it.
        Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short && probe.l_pid > 0 => {
            format!("process {}", probe.l_pid)
        }
        _ => "another process".to_string(),
    };
    anyhow!(
        "the dpkg lock {} is held by {} (apt or dpkg is running); try again when it has finished",
        path.display(),
        holder
    )
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value (l_start = l_len = 0 means
    // the whole file), and the fields we care about are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_both_and_creates_them() {
        let d = tempfile::tempdir().unwrap();
        let l = acquire(d.path(), false).unwrap();
        assert_eq!(l._files.len(), 2);
        assert!(d.path().join("lock-frontend").is_file());
        assert!(d.path().join("lock").is_file());
        drop(l);
        let l = acquire(d.path(), true).unwrap();
        assert_eq!(l._files.len(), 1);
    }

    #[test]
    fn refuses_symlinked_lock() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("lock")).unwrap();
        let err = acquire(d.path(), true).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }
}
