//! `audit --output FILE`: the report replaces FILE atomically, so that a reader (node_exporter's
//! textfile collector, a monitoring agent) sees the old report or the new one, never a part.
//!
//! Everything happens relative to the directory's descriptor: the temp file is created in it
//! with `O_CREAT|O_EXCL|O_NOFOLLOW`, written, fsynced, `renameat`ed over FILE, and the directory
//! fsynced. A symlink at FILE is replaced (renameat never follows one), never written
//! through; one as the directory's last component is refused. FILE is taken as given, not
//! under `--root` (like `--admindir`).
//!
//! Plain libc calls and one error path: the static binary's size is capped.

use crate::root::Root;
use std::io::{Error, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `s` NUL-terminated for libc; None if it holds a NUL.
fn c(s: &[u8]) -> Option<Vec<u8>> {
    (!s.contains(&0)).then(|| [s, b"\0"].concat())
}

/// -1 from a libc call as the errno.
fn ok(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// What failed, and why: the caller prints `FILE: what: why` (one format site).
pub type Failure = (&'static str, Error);

fn at(kill: &Option<String>, point: &str) {
    if kill.as_deref() == Some(point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

pub fn write(root: &Root, path: &Path, data: &[u8]) -> Result<(), Failure> {
    let kill = crate::patch::apply::kill_point(root);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(OsStrExt::as_bytes).unwrap_or(b"");
    // Per process (two runs never share one), not `*.prom` (a collector skips one a kill left
    // behind), and O_EXCL: anything planted there fails this run instead of being written.
    let tmp = [
        b".",
        name,
        b".",
        std::process::id().to_string().as_bytes(),
        b".dug-tmp",
    ]
    .concat();
    let step = |what: &'static str, e: Error| (what, e);
    let (Some(cdir), Some(cname), Some(ctmp), false) = (
        c(dir.as_os_str().as_bytes()),
        c(name),
        c(&tmp),
        name.is_empty(),
    ) else {
        return Err(step(
            "not a file name",
            Error::from(std::io::ErrorKind::InvalidInput),
        ));
    };
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: NUL-terminated strings, a checked result that nobody else owns.
    let dfd = ok(unsafe { libc::open(cdir.as_ptr().cast(), flags) })
        .map_err(|e| step("cannot open its directory (no symlink)", e))?;
    let dirf = unsafe { std::fs::File::from_raw_fd(dfd) };
    let oflags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as above.
    let tfd = ok(unsafe { libc::openat(dfd, ctmp.as_ptr().cast(), oflags, 0o644) })
        .map_err(|e| step("cannot create a temporary file beside it", e))?;
    let mut f = unsafe { std::fs::File::from_raw_fd(tfd) };
    at(&kill, "temp-created");
    let written = (|| {
        // fchmod: not subject to the umask (node_exporter's user must read it).
        ok(unsafe { libc::fchmod(tfd, 0o644) })?;
        f.write_all(data)?;
        at(&kill, "temp-written");
        f.sync_all()?;
        at(&kill, "temp-synced");
        // SAFETY: valid descriptors and NUL-terminated strings.
        ok(unsafe { libc::renameat(dfd, ctmp.as_ptr().cast(), dfd, cname.as_ptr().cast()) })
    })();
    if let Err(e) = written {
        // SAFETY: as above.
        unsafe { libc::unlinkat(dfd, ctmp.as_ptr().cast(), 0) };
        return Err(step("cannot write it", e));
    }
    at(&kill, "renamed");
    dirf.sync_all()
        .map_err(|e| step("cannot fsync its directory", e))?;
    at(&kill, "dir-synced");
    Ok(())
}
