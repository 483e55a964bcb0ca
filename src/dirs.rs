//! Root-safe directories: every directory the tool creates or writes in
//! (`/run/docker-upgrade-guard`, `/var/log/docker-upgrade-guard`,
//! `/var/lib/docker-upgrade-guard/backups`) is reached from the `--root` descriptor one
//! component at a time, and every file in it is opened, renamed and removed relative to the
//! directory's descriptor. No path is looked up twice, so a symlink or a directory swapped in
//! between two calls can never steer a write made as root into a directory someone else owns.
//!
//! The policy (README, "State and log directories"):
//! - each component is opened with `O_DIRECTORY|O_NOFOLLOW` relative to the previous one: a
//!   symlink, a file or a FIFO where a directory should be is refused;
//! - each must be owned by root (in an unprivileged run: by root or the invoking user);
//! - a parent may be group-writable (Ubuntu ships `/var/log` as `root:syslog 0775`) or
//!   world-writable with the sticky bit (like `/tmp`): whoever can write there can rename or
//!   replace the entry we look for, but what we get is checked with `fstat` on its descriptor,
//!   so they can at most make us refuse, or use another root-owned directory of that parent
//!   (they could rename ours just as well): never one of theirs, and nothing is changed in
//!   mode or owner that is not provably ours. World-writable without the sticky bit is refused
//!   (anyone could move our directory away, and the record of a transaction with it);
//! - our own directory (the last component) must not be writable by group or others. An
//!   existing one is used as it is and never changed. A missing one is made with `mkdirat`
//!   and its mode, then given exactly that mode and our owner with `fchown`/`fchmod` on its
//!   descriptor — but only when its parent is writable by root alone: under a shared parent
//!   what we open after `mkdirat` may be a directory someone swapped in, and nothing that is
//!   not provably ours is ever changed (the umask may then narrow the mode, never widen it).
//!
//! `--root` itself is given by the admin (like `dpkg --root`): it is opened by its path
//! (symlinks followed), then checked like a parent.
// unsafe: OwnedFds from the fds openat returned; each block says why it is sound.
#![allow(unsafe_code)]

use crate::fsutil::{FileAttrs, WriteStep};
use crate::root::Root;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// A directory this module will not use, and why: one line naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub path: PathBuf,
    pub why: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}; refusing to use it",
            self.path.display(),
            self.why
        )
    }
}

impl std::error::Error for Refused {}

fn refuse(path: &Path, why: impl Into<String>) -> anyhow::Error {
    Refused {
        path: path.to_path_buf(),
        why: why.into(),
    }
    .into()
}

/// An open directory, checked as above; `path` is only for messages.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Opens `abs` (a path of the target system, e.g. [`crate::events::LOG_DIR`]) under `root`
/// without creating anything; `Ok(None)` when a component is missing.
pub(crate) fn open(root: &Root, abs: &str) -> Result<Option<Dir>> {
    walk(root, abs, None)
}

/// Opens `abs` under `root`, creating what is missing: our directory (the last component)
/// with `mode`, a missing parent (only in a bare test root) with 0755.
pub(crate) fn create(root: &Root, abs: &str, mode: u32) -> Result<Dir> {
    walk(root, abs, Some(mode))?.with_context(|| format!("cannot create {abs}"))
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK
}

fn walk(root: &Root, abs: &str, create: Option<u32>) -> Result<Option<Dir>> {
    let mut dir = Dir::open_path(root.dir())?;
    let mut st = dir.stat_self()?;
    check_owner(&dir.path, &st)?;
    check_parent(&dir.path, &st)?;
    let names: Vec<&std::ffi::OsStr> = Path::new(abs)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let path = dir.path.join(name);
        let mode = match create {
            Some(m) if last => m,
            _ => 0o755,
        };
        let (fd, made) = match dir.open_dir(name, &path)? {
            Some(fd) => (fd, false),
            None if create.is_none() => return Ok(None),
            None => {
                match nix::sys::stat::mkdirat(
                    Some(dir.raw()),
                    *name,
                    Mode::from_bits_truncate(mode),
                ) {
                    // EEXIST: another hook made it at the same moment; it is checked below.
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => bail!("cannot create {}: {}", path.display(), e.desc()),
                }
                match dir.open_dir(name, &path)? {
                    Some(fd) => (fd, true),
                    None => return Err(refuse(&path, "was removed as soon as it was created")),
                }
            }
        };
        let next = Dir { fd, path };
        let next_st = next.stat_self()?;
        check_owner(&next.path, &next_st)?;
        if last {
            check_private(&next.path, &next_st)?;
        } else {
            check_parent(&next.path, &next_st)?;
        }
        if made && st.st_mode & 0o022 == 0 {
            // Only root can write in the parent: this is the directory we just made (or one
            // another of our hooks made at the same moment), so setting it is safe.
            next.own(mode)?;
        }
        dir = next;
        st = next_st;
    }
    Ok(Some(dir))
}

fn check_owner(path: &Path, st: &FileStat) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != me {
        return Err(refuse(
            path,
            format!("is owned by uid {}, not by root", st.st_uid),
        ));
    }
    Ok(())
}

fn check_parent(path: &Path, st: &FileStat) -> Result<()> {
    if st.st_mode & 0o002 != 0 && st.st_mode & 0o1000 == 0 {
        return Err(refuse(path, "is writable by everyone and not sticky"));
    }
    Ok(())
}

fn check_private(path: &Path, st: &FileStat) -> Result<()> {
    if st.st_mode & 0o022 != 0 {
        return Err(refuse(path, "is writable by group or others"));
    }
    Ok(())
}

impl Dir {
    /// Opens a directory by its path, following symlinks: for `--root` and for the dpkg
    /// database's `info` directory (checked by `patch` itself), never for our own directories.
    pub(crate) fn open_path(path: &Path) -> Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow::anyhow!("cannot open directory {}: {}", path.display(), e.desc()))?;
        Ok(Dir {
            // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    #[cfg(test)] // only the tests ask
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn stat_self(&self) -> Result<FileStat> {
        nix::sys::stat::fstat(self.raw())
            .map_err(|e| anyhow::anyhow!("cannot stat {}: {}", self.path.display(), e.desc()))
    }

    /// A subdirectory, never through a symlink; `None` if missing.
    fn open_dir(&self, name: &std::ffi::OsStr, path: &Path) -> Result<Option<OwnedFd>> {
        match nix::fcntl::openat(Some(self.raw()), name, dir_flags(), Mode::empty()) {
            // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
            Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let link =
                    nix::sys::stat::fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                        .is_ok_and(|s| {
                            SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
                        });
                Err(refuse(
                    path,
                    if link {
                        "is a symlink"
                    } else {
                        "is not a directory"
                    },
                ))
            }
            Err(e) => bail!("cannot open {}: {}", path.display(), e.desc()),
        }
    }

    /// Gives a directory we just made exactly `mode` and our owner (a setgid parent would
    /// otherwise hand it its group).
    fn own(&self, mode: u32) -> Result<()> {
        nix::unistd::fchown(
            self.raw(),
            Some(nix::unistd::geteuid()),
            Some(nix::unistd::getegid()),
        )
        .and_then(|()| nix::sys::stat::fchmod(self.raw(), Mode::from_bits_truncate(mode)))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot set the owner and mode of {}: {}",
                self.path.display(),
                e.desc()
            )
        })
    }

    /// Opens the regular file `name` in this directory with `flags` (`O_NOFOLLOW`,
    /// `O_CLOEXEC` and `O_NONBLOCK` added: a symlink is refused, a FIFO fails or is refused at
    /// once instead of blocking). `Ok(None)` if it does not exist.
    pub(crate) fn open_file(&self, name: &str, flags: OFlag, mode: u32) -> Result<Option<File>> {
        let path = self.join(name);
        let fd = match nix::fcntl::openat(
            Some(self.raw()),
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => bail!("{} is a symlink; refusing to follow it", path.display()),
            Err(e) => bail!("cannot open {}: {}", path.display(), e.desc()),
        };
        // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if !meta.file_type().is_file() {
            bail!(
                "{} is not a regular file; refusing to use it",
                path.display()
            );
        }
        Ok(Some(file))
    }

    /// Opens (creating with `mode`) `name` for appending.
    pub(crate) fn open_append(&self, name: &str, mode: u32) -> Result<File> {
        self.open_file(
            name,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            mode,
        )?
        .with_context(|| format!("{} vanished as it was created", self.join(name).display()))
    }

    /// The whole regular file `name` (at most `max` bytes); `Ok(None)` if it does not exist.
    pub(crate) fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        match self.open_file(name, OFlag::O_RDONLY, 0)? {
            Some(f) => crate::fsutil::read_bounded(f, &self.join(name), max).map(Some),
            None => Ok(None),
        }
    }

    /// `name`'s own status (a symlink is not followed); `Ok(None)` if it does not exist.
    pub(crate) fn stat(&self, name: &str) -> Result<Option<FileStat>> {
        match nix::sys::stat::fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => bail!("cannot stat {}: {}", self.join(name).display(), e.desc()),
        }
    }

    /// `renameat(2)` within this directory.
    pub(crate) fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        nix::fcntl::renameat(Some(self.raw()), from, Some(self.raw()), to).map_err(Into::into)
    }

    /// Removes the file `name` (a symlink itself, never what it points to).
    pub(crate) fn remove(&self, name: &str) -> std::io::Result<()> {
        nix::unistd::unlinkat(
            Some(self.raw()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(Into::into)
    }

    /// The names in this directory (not `.`/`..`; names that are not UTF-8 are skipped: we
    /// write none).
    pub(crate) fn names(&self) -> Result<Vec<String>> {
        let mut d = nix::dir::Dir::openat(
            Some(self.raw()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow::anyhow!("cannot list {}: {}", self.path.display(), e.desc()))?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e.map_err(|e| {
                anyhow::anyhow!("cannot list {}: {}", self.path.display(), e.desc())
            })?;
            if let Ok(n) = e.file_name().to_str() {
                if n != "." && n != ".." {
                    out.push(n.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Replaces `name` atomically with `data`: a new temporary file in this directory
    /// (`O_EXCL`, never through a symlink), `attrs` and with `Some(xattrs)` exactly those
    /// extended attributes, fsync, `renameat`, fsync this directory. `after_step` is called
    /// after each step (tests kill the process there). On an error before the rename the
    /// temporary file is removed and `name` is left as it was.
    pub(crate) fn write_atomic(
        &self,
        name: &str,
        data: &[u8],
        attrs: FileAttrs,
        xattrs: Option<&[crate::xattr::Xattr]>,
        mut after_step: impl FnMut(WriteStep),
    ) -> Result<()> {
        let path = self.join(name);
        let (tmp, f) = self.create_temp(name)?;
        let mut steps = || -> Result<()> {
            after_step(WriteStep::TempCreated);
            (&f).write_all(data).with_context(|| {
                format!("cannot write a temporary file in {}", self.path.display())
            })?;
            nix::unistd::fchown(
                f.as_raw_fd(),
                Some(nix::unistd::Uid::from_raw(attrs.uid)),
                Some(nix::unistd::Gid::from_raw(attrs.gid)),
            )
            .or_else(|e| {
                // Unprivileged test runs cannot chown; keeping our own ids is then the only choice.
                let meta = nix::sys::stat::fstat(f.as_raw_fd())?;
                if meta.st_uid == attrs.uid && meta.st_gid == attrs.gid {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot set the owner of the new {}", path.display()))?;
            // After the chown (which drops security.capability) and after the data (a write
            // drops it too); before the chmod, so that an ACL set here cannot leave other bits.
            if let Some(xattrs) = xattrs {
                crate::xattr::set_exactly(&f, xattrs)
                    .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
            }
            f.set_permissions(std::fs::Permissions::from_mode(attrs.mode))
                .with_context(|| format!("cannot set the mode of the new {}", path.display()))?;
            after_step(WriteStep::TempWritten);
            f.sync_all()
                .with_context(|| format!("cannot fsync the new {}", path.display()))?;
            after_step(WriteStep::TempSynced);
            self.rename(&tmp, name)
                .with_context(|| format!("cannot rename the new file over {}", path.display()))
        };
        if let Err(e) = steps() {
            let _ = self.remove(&tmp);
            return Err(e);
        }
        after_step(WriteStep::Renamed);
        nix::unistd::fsync(self.raw()).map_err(|e| {
            anyhow::anyhow!(
                "cannot fsync directory {}: {}",
                self.path.display(),
                e.desc()
            )
        })?;
        after_step(WriteStep::DirSynced);
        Ok(())
    }

    /// `.<name>.XXXXXX.dug-tmp`, created with `O_EXCL` (mode 0600 until the caller sets it).
    fn create_temp(&self, name: &str) -> Result<(String, File)> {
        for attempt in 0u64..64 {
            let tmp = format!(".{name}.{}.dug-tmp", random_suffix(attempt));
            match nix::fcntl::openat(
                Some(self.raw()),
                tmp.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
                Ok(fd) => return Ok((tmp, unsafe { File::from_raw_fd(fd) })),
                Err(Errno::EEXIST) => continue,
                Err(e) => bail!(
                    "cannot create a temporary file in {}: {}",
                    self.path.display(),
                    e.desc()
                ),
            }
        }
        bail!(
            "cannot create a temporary file in {}: every name taken",
            self.path.display()
        )
    }
}

/// Six characters of `[a-z0-9]`, different per process, moment and attempt (`O_EXCL` makes a
/// collision a retry, never a shared file).
fn random_suffix(attempt: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = (nanos ^ (u64::from(std::process::id()) << 32) ^ attempt)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..6)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize];
            x /= 36;
            c as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const LOG: &str = "/var/log/docker-upgrade-guard";
    const OTHER: u32 = 65534;

    /// A root with `var/log` (0755 root) and a bystander directory `shared` (1777, like /tmp)
    /// that an attacker would like us to chmod or write into.
    fn tree() -> (tempfile::TempDir, Root) {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests chown: the suite runs as root"
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/log")).unwrap();
        std::fs::create_dir(d.path().join("shared")).unwrap();
        chmod(&d.path().join("shared"), 0o1777);
        let root = Root::new(d.path());
        (d, root)
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn entries(p: &Path) -> usize {
        std::fs::read_dir(p).unwrap().count()
    }

    /// Refused with `want` in the one line, and naming `path`.
    fn refused(r: Result<Dir>, path: &Path, want: &str) {
        let e = r.unwrap_err();
        let refusal = e
            .downcast_ref::<Refused>()
            .unwrap_or_else(|| panic!("{e:#}"));
        assert_eq!(refusal.path, path, "{refusal}");
        assert!(refusal.to_string().contains(want), "{refusal}");
    }

    fn shared_untouched(d: &Path) {
        assert_eq!(mode(&d.join("shared")), 0o1777);
        assert_eq!(entries(&d.join("shared")), 0);
    }

    #[test]
    fn creates_each_missing_component_with_its_mode_and_works_through_the_fd() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert!(open(&root, LOG).unwrap().is_none());
        let dir = create(&root, LOG, 0o750).unwrap();
        assert_eq!(mode(&d.path().join("var")), 0o755);
        assert_eq!(mode(&d.path().join("var/log")), 0o755);
        assert_eq!(mode(&d.path().join("var/log/docker-upgrade-guard")), 0o750);
        let me = FileAttrs {
            mode: 0o640,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        let mut steps = 0;
        dir.write_atomic("a", b"one", me, None, |_| steps += 1)
            .unwrap();
        assert_eq!(steps, 5);
        dir.rename("a", "b").unwrap();
        assert_eq!(dir.read("b", 10).unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(dir.read("a", 10).unwrap(), None);
        assert!(dir.read("b", 2).is_err(), "over the bound");
        assert_eq!(dir.names().unwrap(), vec!["b".to_string()], "no temp left");
        let again = open(&root, LOG).unwrap().unwrap();
        again.remove("b").unwrap();
        assert!(dir.names().unwrap().is_empty());
    }

    #[test]
    fn a_symlink_as_our_directory_is_refused_and_not_followed() {
        let (d, root) = tree();
        let ours = d.path().join("var/log/docker-upgrade-guard");
        std::os::unix::fs::symlink(d.path().join("shared"), &ours).unwrap();
        refused(create(&root, LOG, 0o750), &ours, "is a symlink");
        refused(open(&root, LOG).map(|d| d.unwrap()), &ours, "is a symlink");
        shared_untouched(d.path());
    }

    #[test]
    fn a_symlink_as_a_parent_is_refused_and_not_followed() {
        let (d, root) = tree();
        let log = d.path().join("var/log");
        std::fs::remove_dir(&log).unwrap();
        std::os::unix::fs::symlink(d.path().join("shared"), &log).unwrap();
        refused(create(&root, LOG, 0o750), &log, "is a symlink");
        shared_untouched(d.path());
    }

    #[test]
    fn a_directory_of_another_uid_is_refused_and_left_alone() {
        let (d, root) = tree();
        let ours = d.path().join("var/log/docker-upgrade-guard");
        std::fs::create_dir(&ours).unwrap();
        chmod(&ours, 0o750);
        std::os::unix::fs::chown(&ours, Some(OTHER), Some(OTHER)).unwrap();
        refused(create(&root, LOG, 0o750), &ours, "owned by uid 65534");
        assert_eq!(mode(&ours), 0o750);
        assert_eq!(entries(&ours), 0);
        // The same for a parent: nothing is created in it.
        std::fs::remove_dir(&ours).unwrap();
        let log = d.path().join("var/log");
        std::os::unix::fs::chown(&log, Some(OTHER), Some(OTHER)).unwrap();
        refused(create(&root, LOG, 0o750), &log, "owned by uid 65534");
        assert_eq!(entries(&log), 0);
        assert_eq!(mode(&log), 0o755);
    }

    #[test]
    fn writable_by_others_our_directory_or_a_non_sticky_parent_is_refused() {
        let (d, root) = tree();
        let ours = d.path().join("var/log/docker-upgrade-guard");
        for m in [0o770, 0o757, 0o1777] {
            std::fs::create_dir(&ours).unwrap();
            chmod(&ours, m);
            refused(
                create(&root, LOG, 0o750),
                &ours,
                "writable by group or others",
            );
            assert_eq!(mode(&ours), m, "never chmodded");
            assert_eq!(entries(&ours), 0);
            std::fs::remove_dir(&ours).unwrap();
        }
        // A world-writable parent without the sticky bit: anyone could move our directory.
        let log = d.path().join("var/log");
        chmod(&log, 0o777);
        refused(
            create(&root, LOG, 0o750),
            &log,
            "writable by everyone and not sticky",
        );
        assert_eq!(entries(&log), 0, "nothing created in it");
        assert_eq!(mode(&log), 0o777);
        shared_untouched(d.path());
    }

    #[test]
    fn a_shared_parent_is_walked_and_left_as_it_is() {
        // Ubuntu's /var/log (root:syslog 0775) and a /tmp-like sticky one are usable: what we
        // open in them is checked on its descriptor.
        for m in [0o775, 0o1777] {
            let (d, root) = tree();
            let log = d.path().join("var/log");
            chmod(&log, m);
            std::os::unix::fs::chown(&log, Some(0), Some(OTHER)).unwrap();
            let dir = create(&root, LOG, 0o750).unwrap();
            assert_eq!(mode(&log), m);
            let st = std::fs::metadata(dir.path()).unwrap();
            assert_eq!(st.uid(), 0);
            assert_eq!(st.mode() & 0o022, 0, "{:o}", st.mode());
            assert!(open(&root, LOG).unwrap().is_some());
        }
    }

    #[test]
    fn a_file_or_fifo_where_a_directory_should_be_is_refused_at_once() {
        let (d, root) = tree();
        let ours = d.path().join("var/log/docker-upgrade-guard");
        nix::unistd::mkfifo(&ours, Mode::from_bits_truncate(0o600)).unwrap();
        let t = std::time::Instant::now();
        refused(create(&root, LOG, 0o750), &ours, "is not a directory");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        std::fs::remove_file(&ours).unwrap();
        std::fs::write(&ours, "x").unwrap();
        refused(create(&root, LOG, 0o750), &ours, "is not a directory");
        assert_eq!(std::fs::read_to_string(&ours).unwrap(), "x");
        // At a parent too.
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("var")).unwrap();
        std::fs::write(d.path().join("var/log"), "x").unwrap();
        refused(
            create(&Root::new(d.path()), LOG, 0o750),
            &d.path().join("var/log"),
            "is not a directory",
        );
    }

    #[test]
    fn files_in_a_directory_are_never_opened_through_a_symlink_or_as_a_fifo() {
        let (d, root) = tree();
        let dir = create(&root, LOG, 0o750).unwrap();
        let victim = d.path().join("shared/victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("events.jsonl")).unwrap();
        let e = dir.open_append("events.jsonl", 0o640).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e:#}");
        assert!(dir.read("events.jsonl", 100).is_err());
        nix::unistd::mkfifo(&dir.path().join("lock"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(dir
            .open_file("lock", OFlag::O_WRONLY | OFlag::O_CREAT, 0o600)
            .is_err());
        // write_atomic replaces the symlink itself, never its target.
        let me = FileAttrs {
            mode: 0o600,
            uid: 0,
            gid: 0,
        };
        dir.write_atomic("events.jsonl", b"new", me, None, |_| {})
            .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(mode(&victim), 0o644);
    }
}
