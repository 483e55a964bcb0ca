//! Root-safe file access: reads that never follow a symlink and never read without bound, and
//! writes that are atomic (temp file in the same directory, fsync, rename, fsync the directory).
// unsafe: a File from the fd openat returned; each block says why it is sound.
#![allow(unsafe_code)]

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Scripts and unit files larger than this are not real maintainer scripts: refuse them.
pub const MAX_TEXT_FILE: u64 = 1024 * 1024;

/// Opens `path` read-only without following a symlink in its last component, and checks
/// that it is a regular file.
pub fn open_nofollow(path: &Path) -> Result<File> {
    open_regular(path, OFlag::O_RDONLY, Mode::empty())
}

/// `open(2)` with `O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK` added (a FIFO planted at `path` fails or
/// is refused instead of blocking), then refuses anything but a regular file.
fn open_regular(path: &Path, flags: OFlag, mode: Mode) -> Result<File> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        mode,
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => {
            anyhow::anyhow!("{} is a symlink; refusing to follow it", path.display())
        }
        e => anyhow::anyhow!("cannot open {}: {}", path.display(), e.desc()),
    })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file", path.display());
    }
    Ok(file)
}

/// Reads a whole regular file (no symlink) of at most `max` bytes.
pub fn read_nofollow(path: &Path, max: u64) -> Result<Vec<u8>> {
    read_bounded(open_nofollow(path)?, path, max)
}

/// Reads the open regular file `file` (named `path` in messages) to its end: at most `max`
/// bytes, also if it grows while being read.
pub fn read_bounded(file: File, path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = file.metadata()?.len();
    if len > max {
        bail!(
            "{} is {} bytes, more than the {} this tool reads",
            path.display(),
            len,
            max
        );
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > max {
        bail!(
            "{} grew past {} bytes while being read",
            path.display(),
            max
        );
    }
    Ok(buf)
}

/// Reads a text file: no symlink, at most [`MAX_TEXT_FILE`], valid UTF-8, no NUL byte.
pub fn read_text_nofollow(path: &Path) -> Result<String> {
    text(read_nofollow(path, MAX_TEXT_FILE)?, path)
}

/// `bytes` (read from `path`) as text: valid UTF-8, no NUL byte.
pub fn text(bytes: Vec<u8>, path: &Path) -> Result<String> {
    if let Some(pos) = bytes.iter().position(|b| *b == 0) {
        bail!(
            "{} is not a text file (NUL byte at offset {})",
            path.display(),
            pos
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Ownership and mode to give a file written by [`atomic_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileAttrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileAttrs {
    pub fn of(meta: &std::fs::Metadata) -> FileAttrs {
        FileAttrs {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Steps of [`atomic_write`], so that tests can stop the process after each one and check that
/// the target is either the old or the new content, never a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    TempCreated,
    TempWritten,
    TempSynced,
    Renamed,
    DirSynced,
}

/// Replaces `path` atomically with `data`: temp file in the same directory (never following a
/// symlink: `O_EXCL`), same mode and owner, fsync, rename, fsync the directory.
/// `after_step` is called after each step (tests use it to kill the process there).
pub fn atomic_write(
    path: &Path,
    data: &[u8],
    attrs: FileAttrs,
    after_step: impl FnMut(WriteStep),
) -> Result<()> {
    atomic_write_with_xattrs(path, data, attrs, None, after_step)
}

/// [`atomic_write`], and with `Some(xattrs)` the new file gets exactly those extended
/// attributes before the rename (a replaced script keeps its labels, capabilities and user
/// attributes). When one cannot be set, the temp file is removed and `path` is left as it was.
/// `None` leaves the new file's attributes as the kernel made them.
///
/// For files in directories that are not ours (the dpkg database's `info`, checked by `patch`
/// before): the directory is opened by its path, the rest is relative to its descriptor. Our
/// own directories are opened with [`crate::dirs`] and written with
/// [`crate::dirs::Dir::write_atomic`].
pub fn atomic_write_with_xattrs(
    path: &Path,
    data: &[u8],
    attrs: FileAttrs,
    xattrs: Option<&[crate::xattr::Xattr]>,
    after_step: impl FnMut(WriteStep),
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))?;
    crate::dirs::Dir::open_path(dir)?.write_atomic(name, data, attrs, xattrs, after_step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_symlink_and_junk() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::write(&real, "#!/bin/sh\n").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = read_text_nofollow(&link).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        std::fs::write(&real, b"a\0b").unwrap();
        assert!(read_text_nofollow(&real)
            .unwrap_err()
            .to_string()
            .contains("NUL"));
        std::fs::write(&real, b"a\xffb").unwrap();
        assert!(read_text_nofollow(&real)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        assert!(read_text_nofollow(d.path())
            .unwrap_err()
            .to_string()
            .contains("regular"));
    }

    #[test]
    fn atomic_write_keeps_mode_and_reports_steps() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("prerm");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let attrs = FileAttrs::of(&std::fs::metadata(&p).unwrap());
        let mut steps = vec![];
        atomic_write(&p, b"new", attrs, |s| steps.push(s)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(steps.len(), 5);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
