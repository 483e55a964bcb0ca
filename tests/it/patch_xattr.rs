//! `patch` and `patch --revert` keep a script's extended attributes: the patched file carries
//! every xattr of the original (user.*, trusted.*, security.* where the kernel lets root set
//! it), the backup records them, and the reverted file has exactly the original's.
// unsafe: libc calls the test needs to set up (xattrs, a raw kill); the crate denies it elsewhere.
#![allow(unsafe_code)]

use docker_upgrade_guard::dpkg::info::ScriptKind;
use docker_upgrade_guard::patch::apply;
use docker_upgrade_guard::patch::backup;
use docker_upgrade_guard::patch::plan::PlanItem;
use docker_upgrade_guard::patch::revert::{self, Reverted};
use docker_upgrade_guard::root::Root;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ORIGINAL: &str = "#!/bin/sh\nset -e\nstop\n";

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Sets an xattr, failing loudly: a filesystem that refuses them would make this test pass
/// without testing anything.
fn set(p: &Path, name: &str, value: &[u8]) {
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            cpath(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "cannot set {name} on {} ({}): this test needs a filesystem with xattrs, as root",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Every xattr of `p`, sorted by name.
fn all(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    // SAFETY: the buffer is as long as we say.
    let n = unsafe { libc::listxattr(cpath(p).as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "{}", std::io::Error::last_os_error());
    names.truncate(n as usize);
    let mut out: Vec<(String, Vec<u8>)> = names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let name = CString::new(n).unwrap();
            let mut v = vec![0u8; 65536];
            // SAFETY: as above.
            let len = unsafe {
                libc::getxattr(
                    cpath(p).as_ptr(),
                    name.as_ptr(),
                    v.as_mut_ptr().cast(),
                    v.len(),
                )
            };
            assert!(len >= 0, "{}", std::io::Error::last_os_error());
            v.truncate(len as usize);
            (String::from_utf8(n.to_vec()).unwrap(), v)
        })
        .collect();
    out.sort();
    out
}

/// A root in a directory whose filesystem takes user xattrs (/var/tmp, then /tmp).
fn tree() -> (tempfile::TempDir, Root, PathBuf) {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = Root::new(d.path());
    let info = d.path().join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = info.join("containerd.prerm");
    std::fs::write(&path, ORIGINAL).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (d, root, path)
}

fn item(path: &Path) -> PlanItem {
    PlanItem {
        package: "containerd".into(),
        version: "1.3.3-0ubuntu2".into(),
        kind: ScriptKind::Prerm,
        path: path.to_path_buf(),
        original: ORIGINAL.into(),
        repaired: format!("{ORIGINAL}# repaired\n"),
        lines: vec![(3, 3)],
        units: vec!["containerd.service".into()],
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn patch_and_revert_keep_user_and_trusted_xattrs() {
    assert!(is_root(), "trusted.* needs root; the suite runs as root");
    let (_d, root, path) = tree();
    set(&path, "user.origin", b"dpkg");
    set(&path, "user.binary", &[0, 1, 2, 255, 0]);
    set(&path, "user.empty", b"");
    set(&path, "trusted.guard", b"kept");
    let before = all(&path);
    let mode = std::fs::metadata(&path).unwrap().mode();
    assert!(before.len() >= 4, "{before:?}");

    apply::apply_one(&root, &item(&path)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        item(&path).repaired
    );
    assert_eq!(
        all(&path),
        before,
        "the patched file has the original's xattrs"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().mode(), mode);
    let b = backup::backup_for(&root, "containerd", ScriptKind::Prerm).unwrap();
    let json = std::fs::read_to_string(&b.record_path).unwrap();
    assert!(
        json.contains("user.origin") && json.contains("trusted.guard"),
        "{json}"
    );

    // Something else adds an attribute to the patched file: revert restores exactly the
    // original's set.
    set(&path, "user.later", b"x");
    let (out, problems) = revert::revert(&root, &[]);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(matches!(out.as_slice(), [Reverted::Restored(_)]), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
    assert_eq!(
        all(&path),
        before,
        "the reverted file has exactly the original's xattrs"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().mode(), mode);
}

#[test]
fn patch_keeps_a_security_capability() {
    assert!(is_root(), "security.* needs root; the suite runs as root");
    let (_d, root, path) = tree();
    // VFS_CAP_REVISION_2, CAP_NET_BIND_SERVICE (bit 10) permitted, no effective flag.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0000u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
    set(&path, "security.capability", &cap);
    set(&path, "user.origin", b"dpkg");
    let before = all(&path);
    apply::apply_one(&root, &item(&path)).unwrap();
    assert_eq!(all(&path), before);
    let (out, _) = revert::revert(&root, &[]);
    assert!(matches!(out.as_slice(), [Reverted::Restored(_)]), "{out:?}");
    assert_eq!(all(&path), before);
}

const CHILD_ENV: &str = "DUG_TEST_XATTR_CHILD_SCRIPT";
const NOBODY: u32 = 65534;

/// Runs in a child process as `nobody` (see below): patches the script named by
/// `CHILD_ENV` and prints the outcome. Without the variable it does nothing.
#[test]
fn child_patch_as_nobody() {
    let Ok(script) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(script);
    let root = Root::new(path.ancestors().nth(5).unwrap());
    match apply::apply_one(&root, &item(&path)) {
        Ok(_) => println!("RESULT: patched"),
        Err(e) => println!("RESULT: {e:#}"),
    }
}

#[test]
fn a_security_attribute_that_cannot_be_set_refuses_the_patch() {
    assert!(is_root(), "the setup needs root; the suite runs as root");
    let (d, _root, path) = tree();
    let cap = {
        let mut c = vec![0u8; 20];
        c[..4].copy_from_slice(&0x0200_0000u32.to_le_bytes());
        c[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
        c
    };
    // Everything the patch touches belongs to nobody, who can read the capability but, without
    // CAP_SETFCAP, not set it on the new file.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in ["var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"] {
        std::os::unix::fs::chown(d.path().join(p), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    set(&path, "security.capability", &cap);
    set(&path, "user.origin", b"dpkg");
    let before = all(&path);

    use std::os::unix::process::CommandExt;
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "patch_xattr::child_patch_as_nobody",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT: "))
        .unwrap_or_else(|| {
            panic!(
                "child gave no result:\n{stdout}\n{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    assert!(
        line.contains("security attribute security.capability")
            && line.contains(&path.display().to_string()),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        ORIGINAL,
        "script unchanged"
    );
    assert_eq!(all(&path), before, "its attributes unchanged");
    let names: Vec<String> = walk(d.path());
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".dug-tmp") || n.ends_with(".orig") || n.ends_with(".json")),
        "no temp file and no backup left: {names:?}"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
