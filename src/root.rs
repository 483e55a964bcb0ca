//! Every path the tool reads or writes, relative to `--root` (like `dpkg --root`).
//!
//! Code never builds a filesystem path from a literal directly: it asks [`Root`] for it, so
//! that a test can point the whole tool at a temporary tree and nothing leaks to the host.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
    admindir: PathBuf,
}

impl Root {
    /// `dir` is the root of the installation ("/" on the host). The dpkg database is
    /// `<dir>/var/lib/dpkg` unless overridden with [`Root::with_admindir`].
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        let dir = dir.into();
        let admindir = join_abs(&dir, "/var/lib/dpkg");
        Root { dir, admindir }
    }

    pub fn host() -> Root {
        Root::new("/")
    }

    /// dpkg's `--admindir` (already absolute on the host, not re-rooted).
    pub fn with_admindir(mut self, admindir: impl Into<PathBuf>) -> Root {
        self.admindir = admindir.into();
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// The dpkg database directory (`var/lib/dpkg`).
    pub fn admindir(&self) -> &Path {
        &self.admindir
    }

    /// Maps an absolute path of the target system (`/etc/docker/daemon.json`) to the real path.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        join_abs(&self.dir, abs)
    }
}

fn join_abs(dir: &Path, abs: impl AsRef<Path>) -> PathBuf {
    let abs = abs.as_ref();
    let rel = abs.strip_prefix("/").unwrap_or(abs);
    dir.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rerooted() {
        let r = Root::new("/tmp/x");
        assert_eq!(r.path("/etc/a"), PathBuf::from("/tmp/x/etc/a"));
        assert_eq!(r.admindir(), Path::new("/tmp/x/var/lib/dpkg"));
        assert!(!r.is_host());
        assert_eq!(
            Root::host().path("/run/docker.sock"),
            PathBuf::from("/run/docker.sock")
        );
    }
}
