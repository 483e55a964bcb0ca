//! Writing a planned script: under dpkg's lock, after the safety checks, with the original
//! kept in the backup store before the patched text is renamed into place.

use super::backup::{self, sha256_hex, BackupRecord, RECORD_FORMAT};
use super::plan::PlanItem;
use crate::fsutil::{self, FileAttrs, WriteStep};
use crate::root::Root;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Test-only: `DOCKER_UPGRADE_GUARD_TEST_KILL_AFTER=<point>` makes the process SIGKILL itself
/// after that point of a write, to prove that a kill anywhere leaves the original or the
/// patched script, never a mix. Honoured only in debug builds and only with `--root` other
/// than `/`, so a shipped binary never kills itself, and no build does it on a real system.
pub const KILL_ENV: &str = "DOCKER_UPGRADE_GUARD_TEST_KILL_AFTER";

/// Where a write can be interrupted (the kill test's points, in order).
pub const KILL_POINTS: &[&str] = &[
    "backup",
    "temp-created",
    "temp-written",
    "temp-synced",
    "renamed",
    "dir-synced",
];

pub(crate) fn step_name(step: WriteStep) -> &'static str {
    match step {
        WriteStep::TempCreated => "temp-created",
        WriteStep::TempWritten => "temp-written",
        WriteStep::TempSynced => "temp-synced",
        WriteStep::Renamed => "renamed",
        WriteStep::DirSynced => "dir-synced",
    }
}

/// The kill point requested for this run, if the knob may be honoured at all.
pub fn kill_point(root: &Root) -> Option<String> {
    kill_point_from(root, std::env::var(KILL_ENV).ok())
}

/// [`kill_point`] on a given value of the knob: tests check the rule without changing the
/// environment of a process whose other threads spawn children.
pub fn kill_point_from(root: &Root, knob: Option<String>) -> Option<String> {
    if !cfg!(debug_assertions) || root.is_host() {
        return None;
    }
    knob.filter(|p| KILL_POINTS.contains(&p.as_str()))
}

pub(crate) fn maybe_kill(kill: Option<&str>, point: &str) {
    if kill == Some(point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// The checks every script passes before we replace it, on the open file (no symlink was
/// followed to get it). Returns its mode and owner for the replacement.
pub fn check_target(path: &Path, meta: &std::fs::Metadata) -> Result<FileAttrs> {
    if !meta.file_type().is_file() {
        bail!(
            "{} is not a regular file; refusing to rewrite it",
            path.display()
        );
    }
    check_owner_and_mode(path, meta, "file")?;
    let dir = path
        .parent()
        .with_context(|| format!("{} has no directory", path.display()))?;
    let dmeta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if !dmeta.is_dir() {
        bail!(
            "{} is not a directory (or is a symlink); refusing to write in it",
            dir.display()
        );
    }
    check_owner_and_mode(dir, &dmeta, "directory")?;
    Ok(FileAttrs::of(meta))
}

/// Owned by root and not writable by group or others: a script anyone else could have written
/// is not one we vouch for. When the tool itself does not run as root (a developer's temporary
/// tree) the owner must be the user running it instead; as root, only uid 0 is accepted.
fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let allowed_owner = if euid == 0 { 0 } else { euid };
    if meta.uid() != allowed_owner {
        bail!(
            "{} is owned by uid {}, not by root; refusing to rewrite a {what} someone else controls",
            path.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{} is writable by group or others (mode {:04o}); refusing to rewrite it",
            path.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// What one successful write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub backup: PathBuf,
}

/// Rewrites one script. The caller holds dpkg's lock. Checks, in order: no symlink, regular
/// file, owner and mode (file and directory), the text on disk is still the text planned
/// from; then keeps the original, then replaces the file atomically.
pub fn apply_one(root: &Root, item: &PlanItem) -> Result<Applied> {
    let kill = kill_point(root);
    let kill = kill.as_deref();
    let file = fsutil::open_nofollow(&item.path)
        .with_context(|| format!("refusing to rewrite {}", item.path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", item.path.display()))?;
    // plan() already refuses such an item; checked again here because apply_one is public and
    // a file we wrote but cannot read back could never be reverted.
    if item.repaired.len() as u64 > fsutil::MAX_TEXT_FILE {
        bail!(
            "{}",
            super::plan::too_big(&item.path, item.original.len(), item.repaired.len())
        );
    }
    let attrs = check_target(&item.path, &meta)?;
    let mut on_disk = Vec::new();
    (&file)
        .take(fsutil::MAX_TEXT_FILE + 1)
        .read_to_end(&mut on_disk)
        .with_context(|| format!("cannot read {}", item.path.display()))?;
    let original_sha = sha256_hex(item.original.as_bytes());
    if sha256_hex(&on_disk) != original_sha {
        bail!(
            "{} changed since it was read; not rewriting it (run the command again)",
            item.path.display()
        );
    }
    // From the fd we checked and read: the attributes of exactly this file.
    let xattrs = crate::xattr::read_all(&file)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}; not rewriting it", item.path.display()))?;
    remove_stale_temps(&item.path);
    let record = BackupRecord {
        format: RECORD_FORMAT,
        package: item.package.clone(),
        version: item.version.clone(),
        script: item.kind.name().to_string(),
        original_path: item.path.clone(),
        original_sha256: original_sha,
        patched_sha256: sha256_hex(item.repaired.as_bytes()),
        created: now(),
        xattrs: backup::xattrs_to_record(&xattrs),
        stale: None,
    };
    let backup = backup::store(root, &record, &on_disk)?;
    maybe_kill(kill, "backup");
    let written = fsutil::atomic_write_with_xattrs(
        &item.path,
        item.repaired.as_bytes(),
        attrs,
        Some(&xattrs),
        |step| maybe_kill(kill, step_name(step)),
    );
    if let Err(e) = written {
        // The script is unchanged (the rename is the last step that can fail before it is
        // replaced): a backup of it would only be a stale record for `--revert` to trip on.
        if let Err(d) = backup::discard(root, &backup) {
            return Err(e.context(format!("{d:#}")));
        }
        return Err(e);
    }
    Ok(Applied { backup })
}

/// Writes `data` over `path` (which must hold `expected_sha`), with the same checks as a patch,
/// giving the new file exactly `xattrs`. Used by `--revert`.
pub fn replace_checked(
    root: &Root,
    path: &Path,
    expected_sha: &str,
    data: &[u8],
    xattrs: &[crate::xattr::Xattr],
) -> Result<()> {
    let kill = kill_point(root);
    let file = fsutil::open_nofollow(path)
        .with_context(|| format!("refusing to rewrite {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let attrs = check_target(path, &meta)?;
    let mut on_disk = Vec::new();
    file.take(fsutil::MAX_TEXT_FILE + 1)
        .read_to_end(&mut on_disk)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if sha256_hex(&on_disk) != expected_sha {
        bail!(
            "{} changed while we looked at it; not touching it",
            path.display()
        );
    }
    remove_stale_temps(path);
    fsutil::atomic_write_with_xattrs(path, data, attrs, Some(xattrs), |step| {
        maybe_kill(kill.as_deref(), step_name(step));
    })
}

/// A write killed before its rename leaves `.<name>.XXXXXX.dug-tmp` in the info directory;
/// dpkg ignores it, but we clean up after ourselves (only our own names, never following a
/// symlink: remove_file removes the link itself).
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&prefix) && n.ends_with(".dug-tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::info::ScriptKind;
    use std::os::unix::fs::PermissionsExt;

    fn setup(text: &str) -> (tempfile::TempDir, Root, PlanItem) {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let info = d.path().join("var/lib/dpkg/info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = info.join("containerd.prerm");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let item = PlanItem {
            package: "containerd".into(),
            version: "1.3.3-0ubuntu2".into(),
            kind: ScriptKind::Prerm,
            path,
            original: text.into(),
            repaired: format!("{text}# repaired\n"),
            lines: vec![(2, 2)],
            units: vec!["containerd.service".into()],
        };
        (d, root, item)
    }

    #[test]
    fn writes_patched_and_keeps_original() {
        let (_d, root, item) = setup("#!/bin/sh\nstop\n");
        let a = apply_one(&root, &item).unwrap();
        assert_eq!(std::fs::read_to_string(&item.path).unwrap(), item.repaired);
        assert_eq!(std::fs::read_to_string(&a.backup).unwrap(), item.original);
        let meta = std::fs::metadata(&item.path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o755);
    }

    #[test]
    fn refuses_changed_group_writable_and_symlink() {
        let (_d, root, item) = setup("#!/bin/sh\nstop\n");
        std::fs::write(&item.path, "#!/bin/sh\nother\n").unwrap();
        let e = format!("{:#}", apply_one(&root, &item).unwrap_err());
        assert!(e.contains("changed since it was read"), "{e}");

        let (_d, root, item) = setup("x\n");
        std::fs::set_permissions(&item.path, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = format!("{:#}", apply_one(&root, &item).unwrap_err());
        assert!(e.contains("writable by group or others (mode 0775)"), "{e}");

        let (d, root, item) = setup("x\n");
        let real = d.path().join("real");
        std::fs::rename(&item.path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &item.path).unwrap();
        let e = format!("{:#}", apply_one(&root, &item).unwrap_err());
        assert!(e.contains("symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "x\n");
        assert!(
            !backup::dir(&root).exists(),
            "no backup for a refused script"
        );
    }

    #[test]
    fn refuses_a_result_larger_than_the_tool_reads() {
        let (_d, root, mut item) = setup("#!/bin/sh\nstop\n");
        item.repaired = "#".repeat(fsutil::MAX_TEXT_FILE as usize + 1);
        let e = format!("{:#}", apply_one(&root, &item).unwrap_err());
        assert!(
            e.contains("would grow from 15 bytes to 1048577 bytes"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&item.path).unwrap(), item.original);
        assert!(!backup::dir(&root).exists(), "no backup");
    }

    #[test]
    fn refuses_wrong_owner() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; CI runs as root
        }
        let (_d, root, item) = setup("x\n");
        nix::unistd::chown(&item.path, Some(nix::unistd::Uid::from_raw(1000)), None).unwrap();
        let e = format!("{:#}", apply_one(&root, &item).unwrap_err());
        assert!(e.contains("owned by uid 1000, not by root"), "{e}");
    }
}
