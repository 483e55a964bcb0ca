//! Paths of the target system resolved inside `--root` component by component, symlinks
//! included, the way a chroot would: a link can never lead out of the root (`/lib -> usr/lib`
//! works, `..` stops at the root, an absolute link target is taken relative to the root).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Where a path of the target system leads, every symlink resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    Missing,
    /// The path is, or links to, `/dev/null` (a mask).
    DevNull,
    /// Too many symlinks (a loop).
    Loop,
    /// `virt`: the final path inside the target system; `real`: the same on the host, with no
    /// symlink left in any component.
    Found {
        virt: PathBuf,
        real: PathBuf,
    },
}

/// Resolves `virt` (absolute, of the target system) under `root` the way the kernel would in a
/// chroot at `root`: each component is looked up with lstat, a symlink's text is spliced in
/// (absolute ones restart at the root), `..` never climbs above the root.
pub(crate) fn resolve_in_root(root: &Path, virt: &Path) -> Resolved {
    const MAX_LINKS: usize = 40;
    let mut todo: VecDeque<OsString> = components(virt).into();
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        // /dev/null is the mask whether or not the root has a /dev.
        let is_dev_null = |cur: &[OsString], rest: &VecDeque<OsString>| {
            let mut all = cur.iter().chain(rest.iter());
            all.next().is_some_and(|c| c == "dev")
                && all.next().is_some_and(|c| c == "null")
                && all.next().is_none()
        };
        if is_dev_null(&cur, &todo) {
            return Resolved::DevNull;
        }
        let real = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let meta = match std::fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(_) => return Resolved::Missing,
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Resolved::Loop;
            }
            let Ok(text) = std::fs::read_link(&real) else {
                return Resolved::Missing;
            };
            cur.pop();
            if text.is_absolute() {
                cur.clear();
            }
            for (i, c) in components(&text).into_iter().enumerate() {
                todo.insert(i, c);
            }
        }
    }
    let virt = cur.iter().fold(PathBuf::from("/"), |p, c| p.join(c));
    let real = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    Resolved::Found { virt, real }
}

/// The normal and `..` components of a path (`.` and the root dropped).
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        std::fs::write(root.join("usr/lib/x/f"), "x").unwrap();
        // An absolute link is taken relative to the root, `..` stops at the root.
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../usr/lib/x/f",
            root.join("usr/lib/x/up"),
        )
        .unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let f = resolve_in_root(root, Path::new("/lib/x/f"));
        assert_eq!(
            f,
            Resolved::Found {
                virt: "/usr/lib/x/f".into(),
                real: root.join("usr/lib/x/f")
            }
        );
        assert_eq!(resolve_in_root(root, Path::new("/lib/x/up")), f);
        assert_eq!(resolve_in_root(root, Path::new("/loop")), Resolved::Loop);
        assert_eq!(
            resolve_in_root(root, Path::new("/lib/x/nope")),
            Resolved::Missing
        );
        std::os::unix::fs::symlink("/dev/null", root.join("masked")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/masked")),
            Resolved::DevNull
        );
    }
}
