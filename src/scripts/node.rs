//! File tests of a maintainer script answered on one node (`--root`): does
//! `[ -x "/etc/init.d/containerd" ]` hold there, and can the upgrade itself change that?
//!
//! Only `audit` asks (see [`super::stops_on_upgrade_on`]). A path is looked up inside the root
//! the way a chroot would ([`crate::in_root`]). A test that fails on the node but names a path
//! the package ships (its dpkg file list) may hold once the upgrade has unpacked it, or again
//! after an admin removed it: that answer is [`FileAnswer::Shipped`], which counts as Maybe.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::walk::{FileOp, FileTest, Guard, Site, Tri};
use crate::in_root::{resolve_in_root, Resolved};

/// The answer to one file test on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAnswer {
    Holds,
    Fails,
    /// Fails now, but the package ships the path: it can exist during the next upgrade.
    Shipped,
    /// Fails now, and what the package ships is not known (its file list is unreadable).
    Unsure,
}

impl FileAnswer {
    pub fn tri(self) -> Tri {
        match self {
            FileAnswer::Holds => Tri::Yes,
            FileAnswer::Fails => Tri::No,
            FileAnswer::Shipped | FileAnswer::Unsure => Tri::Maybe,
        }
    }
}

/// A file test a verdict rests on, as the node answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFact {
    pub test: FileTest,
    /// True when the stop runs only while the test holds (false: only while it fails).
    pub positive: bool,
    pub answer: FileAnswer,
}

impl FileFact {
    /// "only while /etc/init.d/containerd exists as an executable: it does not on this node,
    /// and containerd does not ship it".
    pub fn describe(&self, package: &str) -> String {
        let (how, tail) = match self.answer {
            FileAnswer::Holds => ("it does on this node", ""),
            FileAnswer::Fails => ("it does not on this node, and ", " does not ship it"),
            FileAnswer::Shipped => (
                "it does not on this node now, but ",
                " ships it, so it may during the upgrade",
            ),
            FileAnswer::Unsure => (
                "it does not on this node now, and the file list of ",
                " could not be read",
            ),
        };
        let package = if tail.is_empty() { "" } else { package };
        format!(
            "only while {}{} {}: {how}{package}{tail}",
            if self.positive { "" } else { "no " },
            self.test.path,
            self.test.op.phrase()
        )
    }
}

/// The node's files under a root, and the paths the package ships (None: not known).
pub struct Node<'a> {
    root: &'a Path,
    /// A file list, one absolute path a line (dpkg's `info/PKG.list`).
    shipped: Option<String>,
}

impl<'a> Node<'a> {
    /// `shipped`: the package's file list, one path a line (dpkg's `info/PKG.list`); None when
    /// it could not be read, so that every failing test counts as Maybe.
    pub fn new(root: &'a Path, shipped: Option<String>) -> Node<'a> {
        Node { root, shipped }
    }

    pub fn answer(&self, t: &FileTest) -> FileAnswer {
        if holds(self.root, t) {
            FileAnswer::Holds
        } else {
            match &self.shipped {
                None => FileAnswer::Unsure,
                Some(list) if list.lines().any(|l| l == t.path.trim_end_matches('/')) => {
                    FileAnswer::Shipped
                }
                Some(_) => FileAnswer::Fails,
            }
        }
    }

    /// The file tests the sites' guards rest on, answered (each test once).
    pub fn facts<'s>(&self, sites: impl IntoIterator<Item = &'s Site>) -> Vec<FileFact> {
        let mut out: Vec<FileFact> = Vec::new();
        for site in sites {
            for (t, positive) in site.guard.file_tests() {
                if !out.iter().any(|f| f.test == *t && f.positive == positive) {
                    out.push(FileFact {
                        test: t.clone(),
                        positive,
                        answer: self.answer(t),
                    });
                }
            }
        }
        out
    }

    /// How `guard` evaluates for `$1 == arg` on this node.
    pub fn eval(&self, guard: &Guard, arg: &str) -> Tri {
        guard.eval_on(arg, &|t| self.answer(t).tri())
    }
}

/// `test(1)` as root on the node: symlinks are followed inside the root, except by `-L`.
fn holds(root: &Path, t: &FileTest) -> bool {
    let virt = Path::new(&t.path);
    if t.op == FileOp::Symlink {
        let (Some(parent), Some(name)) = (virt.parent(), virt.file_name()) else {
            return false;
        };
        return match resolve_in_root(root, parent) {
            Resolved::Found { real, .. } => {
                std::fs::symlink_metadata(real.join(name)).is_ok_and(|m| m.file_type().is_symlink())
            }
            _ => false,
        };
    }
    match resolve_in_root(root, virt) {
        Resolved::Missing | Resolved::Loop => false,
        // A character device: it exists, and is nothing else `test` asks about here.
        Resolved::DevNull => t.op == FileOp::Exists,
        // `real` has no symlink left in any component.
        Resolved::Found { real, .. } => match std::fs::symlink_metadata(real) {
            Err(_) => false,
            Ok(m) => match t.op {
                FileOp::Exists => true,
                FileOp::Regular => m.is_file(),
                FileOp::Directory => m.is_dir(),
                FileOp::NotEmpty => m.len() > 0,
                // root may execute a file with any execute bit, and search any directory.
                FileOp::Executable => m.is_dir() || m.permissions().mode() & 0o111 != 0,
                FileOp::Symlink => false,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(op: FileOp, path: &str) -> FileTest {
        FileTest {
            op,
            path: path.into(),
            text: String::new(),
        }
    }

    #[test]
    fn file_tests_on_a_root() {
        use FileOp::*;
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc/init.d")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("etc/init.d/docker"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            r.join("etc/init.d/docker"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(r.join("etc/init.d/plain"), "").unwrap();
        std::fs::set_permissions(
            r.join("etc/init.d/plain"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        // An absolute link is taken inside the root, never to the host's /etc.
        std::os::unix::fs::symlink("/etc/init.d/docker", r.join("etc/init.d/link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("etc/init.d/out")).unwrap();
        let node = Node::new(r, Some("/\n/etc\n/etc/init.d/containerd\n".to_string()));
        let cases = [
            (Executable, "/etc/init.d/docker", FileAnswer::Holds),
            (Executable, "/etc/init.d/plain", FileAnswer::Fails),
            (Exists, "/etc/init.d/plain", FileAnswer::Holds),
            (NotEmpty, "/etc/init.d/plain", FileAnswer::Fails),
            (NotEmpty, "/etc/init.d/docker", FileAnswer::Holds),
            (Regular, "/etc/init.d/docker", FileAnswer::Holds),
            (Directory, "/etc/init.d", FileAnswer::Holds),
            (Directory, "/etc/init.d/docker", FileAnswer::Fails),
            (Executable, "/etc/init.d/link", FileAnswer::Holds),
            (Symlink, "/etc/init.d/link", FileAnswer::Holds),
            (Symlink, "/etc/init.d/docker", FileAnswer::Fails),
            (Exists, "/etc/init.d/out", FileAnswer::Fails),
            (Exists, "/etc/init.d/nothing", FileAnswer::Fails),
            (Executable, "/etc/init.d/containerd", FileAnswer::Shipped),
            (Exists, "/dev/null", FileAnswer::Holds),
        ];
        for (op, path, want) in cases {
            assert_eq!(node.answer(&test(op, path)), want, "{op:?} {path}");
        }
        let unsure = Node::new(r, None);
        assert_eq!(
            unsure.answer(&test(Exists, "/etc/init.d/nothing")),
            FileAnswer::Unsure
        );
        assert_eq!(
            unsure.answer(&test(Exists, "/etc/init.d/docker")),
            FileAnswer::Holds
        );
    }

    #[test]
    fn facts_name_the_file_and_the_answer() {
        let a = super::super::walk::analyse(
            "if [ -z \"${DPKG_ROOT:-}\" ] && [ \"$1\" = upgrade ] && [ -x \"/etc/init.d/containerd\" ] ; then\n\tinvoke-rc.d containerd stop || exit 1\nfi\n",
        );
        let d = tempfile::tempdir().unwrap();
        let node = Node::new(d.path(), Some(String::new()));
        assert_eq!(node.eval(&a.sites[0].guard, "upgrade"), Tri::No);
        assert_eq!(a.sites[0].runs_on("upgrade"), Tri::Maybe);
        let facts = node.facts(&a.sites);
        assert_eq!(facts.len(), 1);
        assert_eq!(
            facts[0].describe("containerd"),
            "only while /etc/init.d/containerd exists as an executable: it does not on this node, and containerd does not ship it"
        );
        assert_eq!(
            a.sites[0].guard.to_string(),
            "[ -z \"${DPKG_ROOT:-}\" ] && $1 = upgrade && [ -x \"/etc/init.d/containerd\" ]"
        );
    }
}
