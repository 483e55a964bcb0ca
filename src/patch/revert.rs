//! `patch --revert`: put the original scripts back, byte for byte, but only where the
//! installed file is still exactly the text we wrote.

use super::apply;
use super::backup::{self, sha256_hex, BackupInfo};
use crate::root::Root;

/// What happened to one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    /// The original is back; the backup was removed.
    Restored(String),
    /// Left alone (the file changed since we wrote it); the backup is now marked stale.
    Refused(String),
    /// Something went wrong; nothing was changed.
    Failed(String),
}

/// Reverts the backups of `packages` (all when empty). The caller holds dpkg's lock.
/// Stale backups are skipped silently: there is nothing left to restore them over.
pub fn revert(root: &Root, packages: &[String]) -> (Vec<Reverted>, Vec<String>) {
    let (all, problems) = backup::list(root);
    let out = all
        .iter()
        .filter(|b| packages.is_empty() || packages.contains(&b.record.package))
        .filter(|b| b.record.stale.is_none())
        .map(|b| revert_one(root, b))
        .collect();
    (out, problems)
}

fn label(b: &BackupInfo) -> String {
    format!(
        "{} {} {}",
        b.record.package, b.record.version, b.record.script
    )
}

fn revert_one(root: &Root, b: &BackupInfo) -> Reverted {
    let path = &b.record.original_path;
    let installed = match crate::fsutil::read_nofollow(path, crate::fsutil::MAX_TEXT_FILE) {
        Ok(bytes) => Some(sha256_hex(&bytes)),
        Err(e) => match std::fs::symlink_metadata(path) {
            Err(m) if m.kind() == std::io::ErrorKind::NotFound => None,
            _ => return Reverted::Failed(format!("{}: {e:#}", label(b))),
        },
    };
    if installed.as_deref() != Some(b.record.patched_sha256.as_str()) {
        let why = match installed {
            None => format!("{} is gone (package removed or upgraded)", path.display()),
            Some(sha) if sha == b.record.original_sha256 => {
                format!("{} already holds the original text", path.display())
            }
            Some(_) => format!(
                "{} is no longer the text this tool wrote: a newer package version replaced it",
                path.display()
            ),
        };
        let marked = match backup::mark_stale(root, b, &why) {
            Ok(()) => "the backup is now marked stale".to_string(),
            Err(e) => format!("could not mark the backup stale: {e:#}"),
        };
        return Reverted::Refused(format!(
            "{}: {why}; leaving it alone ({marked}: {})",
            label(b),
            b.record_path.display()
        ));
    }
    let result = backup::read_original(root, b)
        .and_then(|orig| {
            let xattrs = backup::xattrs_of(&b.record)?;
            apply::replace_checked(root, path, &b.record.patched_sha256, &orig, &xattrs)?;
            backup::remove(root, b)
        })
        .map(|()| Reverted::Restored(format!("{}: restored {}", label(b), path.display())));
    result.unwrap_or_else(|e: anyhow::Error| Reverted::Failed(format!("{}: {e:#}", label(b))))
}

/// True when any outcome means the request was not (fully) carried out.
pub fn any_failed(outcomes: &[Reverted]) -> bool {
    outcomes.iter().any(|o| !matches!(o, Reverted::Restored(_)))
}

pub fn print(outcomes: &[Reverted], problems: &[String]) {
    for p in problems {
        errln!("docker-upgrade-guard: {p}");
    }
    if outcomes.is_empty() {
        outln!("nothing to revert");
    }
    for o in outcomes {
        match o {
            Reverted::Restored(m) => outln!("{m}"),
            Reverted::Refused(m) | Reverted::Failed(m) => errln!("docker-upgrade-guard: {m}"),
        }
    }
}
