//! The backup store: for every script `patch` rewrote, the original bytes and a small JSON
//! record, under `<root>/var/lib/docker-upgrade-guard/backups/` (mode 0700).
//!
//! Files come in pairs, `<package>_<version>_<script>_<sha12>.orig` and `.json`. The `.orig`
//! is written first and the `.json` last, so a record always has its bytes. The sha prefix of
//! the original keeps two different originals of the same script version from overwriting each
//! other (nothing lost).

use crate::dpkg::info::ScriptKind;
use crate::fsutil::{self, FileAttrs};
use crate::root::Root;
use crate::xattr::{Xattr, MAX_XATTRS, MAX_XATTR_VALUE};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const BACKUP_DIR: &str = "/var/lib/docker-upgrade-guard/backups";

/// Bumped when the record's meaning changes; records of another format are reported, not read.
pub const RECORD_FORMAT: u32 = 1;

/// The JSON record kept beside each original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRecord {
    pub format: u32,
    pub package: String,
    pub version: String,
    /// `prerm`, `preinst`, `postrm`.
    pub script: String,
    /// The script's path as it was patched (under `--root`).
    pub original_path: PathBuf,
    pub original_sha256: String,
    pub patched_sha256: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The original's extended attributes (`--revert` gives the restored file exactly
    /// these); absent in records of scripts that had none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<XattrRecord>,
    /// Set when `--revert` found the installed script replaced by something we did not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// One extended attribute in a record: the value in hex (values are bytes, often binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XattrRecord {
    pub name: String,
    pub value_hex: String,
}

/// The record form of a file's extended attributes.
pub fn xattrs_to_record(xattrs: &[Xattr]) -> Vec<XattrRecord> {
    xattrs
        .iter()
        .map(|x| XattrRecord {
            name: x.name.clone(),
            value_hex: x.value.iter().map(|b| format!("{b:02x}")).collect(),
        })
        .collect()
}

/// The extended attributes a record keeps, checked against the same bounds as when read.
pub fn xattrs_of(record: &BackupRecord) -> Result<Vec<Xattr>> {
    if record.xattrs.len() > MAX_XATTRS {
        bail!(
            "the backup record keeps {} extended attributes, more than {MAX_XATTRS}",
            record.xattrs.len()
        );
    }
    record
        .xattrs
        .iter()
        .map(|x| {
            crate::xattr::c_name(&x.name).map_err(|e| anyhow::anyhow!("backup record: {e}"))?;
            let hex = x.value_hex.as_bytes();
            if hex.len() % 2 != 0 || hex.len() / 2 > MAX_XATTR_VALUE {
                bail!("backup record: the value of {} is not valid", x.name);
            }
            let value = hex
                .chunks(2)
                .map(|p| {
                    std::str::from_utf8(p)
                        .ok()
                        .and_then(|p| u8::from_str_radix(p, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .with_context(|| format!("backup record: the value of {} is not hex", x.name))?;
            Ok(Xattr {
                name: x.name.clone(),
                value,
            })
        })
        .collect()
}

/// Whether a backup still describes the installed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupState {
    /// The installed script is exactly the text we wrote: the backup can be restored.
    Current,
    /// The installed script is no longer what we wrote (a newer package version replaced it,
    /// or it is gone); the reason in one line.
    Stale(String),
}

/// A backup as found in the store, for `audit`, `status` and `--revert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub record: BackupRecord,
    /// The `.json` file.
    pub record_path: PathBuf,
    /// The `.orig` file: the original bytes.
    pub original_copy: PathBuf,
    pub state: BackupState,
}

pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn dir(root: &Root) -> PathBuf {
    root.path(BACKUP_DIR)
}

pub use crate::dpkg::valid_package_name;

/// Versions are `[A-Za-z0-9.+~:-]` (deb-version(7)); `:` becomes `%` in file names.
fn version_for_name(version: &str) -> Result<String> {
    if version.is_empty()
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b))
    {
        bail!("version {version:?} has characters a Debian version cannot have");
    }
    Ok(version.replace(':', "%"))
}

/// The file stem for one backup (without `.json` / `.orig`).
pub fn stem(
    package: &str,
    version: &str,
    script: ScriptKind,
    original_sha: &str,
) -> Result<String> {
    if !valid_package_name(package) {
        bail!("{package:?} is not a valid Debian package name");
    }
    let short = original_sha.get(..12).filter(|s| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    let Some(short) = short else {
        bail!("{original_sha:?} is not a sha256");
    };
    Ok(format!(
        "{package}_{}_{}_{short}",
        version_for_name(version)?,
        script.name()
    ))
}

/// The store, created (0700, ours) if missing; see [`crate::dirs`] for what is refused.
fn store_dir(root: &Root) -> Result<crate::dirs::Dir> {
    crate::dirs::create(root, BACKUP_DIR, 0o700)
}

/// The existing store (records are read, renamed and removed only through it).
fn existing_store(root: &Root) -> Result<crate::dirs::Dir> {
    crate::dirs::open(root, BACKUP_DIR)?
        .with_context(|| format!("{} does not exist", dir(root).display()))
}

/// The file name of a path in the store.
fn name_of(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a file in the backup store", path.display()))
}

fn ours() -> FileAttrs {
    FileAttrs {
        mode: 0o600,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

/// Keeps `original` and its record. Both writes are atomic and complete before this returns,
/// i.e. before the caller renames the patched script into place.
pub fn store(root: &Root, record: &BackupRecord, original: &[u8]) -> Result<PathBuf> {
    let kind = script_kind(&record.script)
        .with_context(|| format!("{:?} is not a maintainer script name", record.script))?;
    if sha256_hex(original) != record.original_sha256 {
        bail!(
            "internal error: the backup of {} does not match its record",
            record.original_path.display()
        );
    }
    let dir = store_dir(root)?;
    let stem = stem(
        &record.package,
        &record.version,
        kind,
        &record.original_sha256,
    )?;
    let orig = format!("{stem}.orig");
    dir.write_atomic(&orig, original, ours(), None, |_| {})
        .with_context(|| format!("cannot keep the original in {}", dir.join(&orig).display()))?;
    write_record(&dir, &format!("{stem}.json"), record)?;
    Ok(dir.join(&orig))
}

fn write_record(dir: &crate::dirs::Dir, name: &str, record: &BackupRecord) -> Result<()> {
    let mut text = serde_json::to_string_pretty(record).context("cannot encode a backup record")?;
    text.push('\n');
    dir.write_atomic(name, text.as_bytes(), ours(), None, |_| {})
        .with_context(|| {
            format!(
                "cannot write the backup record {}",
                dir.join(name).display()
            )
        })
}

/// Takes back a backup just stored by a write that then failed: the script was left as it
/// was, so nothing is kept of the attempt (record first: a record never lacks its bytes).
pub fn discard(root: &Root, orig: &Path) -> Result<()> {
    let dir = existing_store(root)?;
    for p in [orig.with_extension("json"), orig.to_path_buf()] {
        match dir.remove(name_of(&p)?) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(())
}

/// Records the reason a backup can no longer be restored.
pub fn mark_stale(root: &Root, info: &BackupInfo, reason: &str) -> Result<()> {
    let mut record = info.record.clone();
    record.stale = Some(reason.to_string());
    write_record(&existing_store(root)?, name_of(&info.record_path)?, &record)
}

/// Removes a backup after its original went back into place (record first: a record never
/// lacks its bytes).
pub fn remove(root: &Root, info: &BackupInfo) -> Result<()> {
    let dir = existing_store(root)?;
    dir.remove(name_of(&info.record_path)?)
        .with_context(|| format!("cannot remove {}", info.record_path.display()))?;
    match dir.remove(name_of(&info.original_copy)?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", info.original_copy.display())),
    }
}

/// Reads the original bytes of a backup and checks them against the record.
pub fn read_original(root: &Root, info: &BackupInfo) -> Result<Vec<u8>> {
    let bytes = existing_store(root)?
        .read(name_of(&info.original_copy)?, fsutil::MAX_TEXT_FILE)?
        .with_context(|| format!("{} is missing", info.original_copy.display()))?;
    if sha256_hex(&bytes) != info.record.original_sha256 {
        bail!(
            "the backup {} does not match the sha256 in {}; not using it",
            info.original_copy.display(),
            info.record_path.display()
        );
    }
    Ok(bytes)
}

pub fn script_kind(name: &str) -> Option<ScriptKind> {
    ScriptKind::ALL.into_iter().find(|k| k.name() == name)
}

/// Every backup in the store, with its state; unreadable records as one-line problems.
pub fn list(root: &Root) -> (Vec<BackupInfo>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // A record says which file `--revert` overwrites and with what: only records nobody but
    // root could have written are believed (the store's checks are those of crate::dirs).
    let dir = match crate::dirs::open(root, BACKUP_DIR) {
        Ok(Some(d)) => d,
        Ok(None) => return (out, problems),
        Err(e) => {
            problems.push(format!("{e:#}; its backups are not read"));
            return (out, problems);
        }
    };
    let mut names = match dir.names() {
        Ok(n) => n,
        Err(e) => {
            problems.push(format!("{e:#}"));
            return (out, problems);
        }
    };
    names.retain(|n| n.ends_with(".json"));
    names.sort();
    for name in names {
        match load_one(root, &dir, &name) {
            Ok(info) => out.push(info),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    (out, problems)
}

fn load_one(root: &Root, dir: &crate::dirs::Dir, name: &str) -> Result<BackupInfo> {
    let path = dir.join(name);
    let bytes = dir
        .read(name, fsutil::MAX_TEXT_FILE)?
        .with_context(|| format!("{} vanished while the store was read", path.display()))?;
    let text = fsutil::text(bytes, &path)?;
    let path = path.as_path();
    let record: BackupRecord = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup record", path.display()))?;
    if record.format != RECORD_FORMAT {
        bail!(
            "{} has record format {}, this tool reads {}",
            path.display(),
            record.format,
            RECORD_FORMAT
        );
    }
    let kind = script_kind(&record.script)
        .with_context(|| format!("{}: unknown script {:?}", path.display(), record.script))?;
    let expected = stem(
        &record.package,
        &record.version,
        kind,
        &record.original_sha256,
    )
    .with_context(|| format!("{} is not a valid backup record", path.display()))?;
    if path.file_stem().and_then(|s| s.to_str()) != Some(expected.as_str()) {
        bail!(
            "{} does not describe the script its name says; ignoring it",
            path.display()
        );
    }
    check_original_path(root, &record).with_context(|| {
        format!(
            "{} is not a backup of a maintainer script; ignoring it",
            path.display()
        )
    })?;
    let original_copy = path.with_extension("orig");
    let state = state_of(&record);
    Ok(BackupInfo {
        record,
        record_path: path.to_path_buf(),
        original_copy,
        state,
    })
}

/// `patch` only ever backs up `<admindir>/info/<package>[:<arch>].<script>`; `--revert` writes
/// to `original_path`, so a record naming any other file is refused.
fn check_original_path(root: &Root, record: &BackupRecord) -> Result<()> {
    let info = root.admindir().join("info");
    let path = &record.original_path;
    let names_the_script = path.parent() == Some(info.as_path())
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(record.script.as_str()))
            .and_then(|n| n.strip_suffix('.'))
            .is_some_and(|stem| match stem.split_once(':') {
                Some((pkg, arch)) => pkg == record.package && crate::dpkg::status::is_arch(arch),
                None => stem == record.package,
            });
    if !names_the_script {
        bail!(
            "its original_path {} is not {}'s {} in {}",
            path.display(),
            record.package,
            record.script,
            info.display()
        );
    }
    Ok(())
}

fn state_of(record: &BackupRecord) -> BackupState {
    if let Some(reason) = &record.stale {
        return BackupState::Stale(reason.clone());
    }
    match fsutil::read_nofollow(&record.original_path, fsutil::MAX_TEXT_FILE) {
        Ok(bytes) if sha256_hex(&bytes) == record.patched_sha256 => BackupState::Current,
        Ok(bytes) if sha256_hex(&bytes) == record.original_sha256 => BackupState::Stale(format!(
            "{} holds the original text again",
            record.original_path.display()
        )),
        Ok(_) => BackupState::Stale(format!(
            "{} is no longer the text this tool wrote (a newer package version replaced it?)",
            record.original_path.display()
        )),
        Err(e) => BackupState::Stale(format!("{e:#}")),
    }
}

/// The backup that explains `package`'s installed `script`: the current one if any (the
/// installed script is exactly what `patch` wrote), otherwise the newest. `audit` uses it to
/// report "safe because patched, backup at ...".
pub fn backup_for(root: &Root, package: &str, script: ScriptKind) -> Option<BackupInfo> {
    let (all, _) = list(root);
    let mut mine: Vec<BackupInfo> = all
        .into_iter()
        .filter(|b| b.record.package == package && b.record.script == script.name())
        .collect();
    mine.sort_by_key(|b| (b.state == BackupState::Current, b.record.created));
    mine.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["docker.io", "containerd", "g++", "lib32z1", "a-b.c+d"] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in [
            "", "a", "../x", "Docker", "a/b", "a_b", ".x", "-x", "a b", "é",
        ] {
            assert!(!valid_package_name(bad), "{bad}");
        }
        let sha = sha256_hex(b"x");
        assert_eq!(
            stem("docker.io", "1:20.10-1", ScriptKind::Prerm, &sha).unwrap(),
            format!("docker.io_1%20.10-1_prerm_{}", &sha[..12])
        );
        assert!(stem("docker.io", "1/2", ScriptKind::Prerm, &sha).is_err());
        assert!(stem("docker.io", "1", ScriptKind::Prerm, "../../etc").is_err());
    }

    fn record(root: &Root, path: &Path, orig: &[u8], patched: &[u8]) -> BackupRecord {
        let _ = root;
        BackupRecord {
            format: RECORD_FORMAT,
            package: "containerd".into(),
            version: "1.3.3-0ubuntu2".into(),
            script: "prerm".into(),
            original_path: path.to_path_buf(),
            original_sha256: sha256_hex(orig),
            patched_sha256: sha256_hex(patched),
            created: 1,
            xattrs: Vec::new(),
            stale: None,
        }
    }

    #[test]
    fn store_list_state_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let info = root.admindir().join("info");
        std::fs::create_dir_all(&info).unwrap();
        let script = info.join("containerd.prerm");
        std::fs::write(&script, "patched").unwrap();
        let rec = record(&root, &script, b"orig", b"patched");
        store(&root, &rec, b"orig").unwrap();
        let b = backup_for(&root, "containerd", ScriptKind::Prerm).unwrap();
        assert_eq!(b.state, BackupState::Current);
        assert_eq!(read_original(&root, &b).unwrap(), b"orig");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir(&root)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(backup_for(&root, "containerd", ScriptKind::Postrm).is_none());

        std::fs::write(&script, "v2").unwrap();
        let b = backup_for(&root, "containerd", ScriptKind::Prerm).unwrap();
        assert!(
            matches!(b.state, BackupState::Stale(ref r) if r.contains("newer")),
            "{b:?}"
        );
        mark_stale(&root, &b, "replaced").unwrap();
        std::fs::write(&script, "patched").unwrap();
        let b = backup_for(&root, "containerd", ScriptKind::Prerm).unwrap();
        assert_eq!(b.state, BackupState::Stale("replaced".into()));
        remove(&root, &b).unwrap();
        assert_eq!(std::fs::read_dir(dir(&root)).unwrap().count(), 0);
    }

    #[test]
    fn original_path_must_be_the_packages_script_in_the_info_dir() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let info = root.admindir().join("info");
        let rec = |path: PathBuf| BackupRecord {
            original_path: path,
            ..record(&root, Path::new("/"), b"o", b"p")
        };
        for ok in ["containerd.prerm", "containerd:amd64.prerm"] {
            assert!(
                check_original_path(&root, &rec(info.join(ok))).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            d.path().join("etc/passwd"),
            info.join("runc.prerm"),
            info.join("containerd.postinst"),
            info.join("containerd:../x.prerm"),
            info.join("sub/containerd.prerm"),
            info.join("containerdprerm"),
            PathBuf::from("/var/lib/dpkg/info/containerd.prerm"),
        ] {
            let e = check_original_path(&root, &rec(bad.clone()));
            assert!(e.is_err(), "{}", bad.display());
        }
    }

    #[test]
    fn garbage_records_are_problems_not_panics() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        crate::dirs::create(&root, BACKUP_DIR, 0o700).unwrap();
        std::fs::write(dir(&root).join("x.json"), "{not json").unwrap();
        let rec = record(&root, Path::new("/nonexistent"), b"o", b"p");
        let mut wrong = serde_json::to_string(&rec).unwrap();
        std::fs::write(dir(&root).join("evil_1_prerm_000000000000.json"), &wrong).unwrap();
        wrong = wrong.replace("\"format\":1", "\"format\":9");
        std::fs::write(dir(&root).join("y.json"), &wrong).unwrap();
        let (found, problems) = list(&root);
        assert!(found.is_empty());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().all(|p| p.contains(".json")), "{problems:?}");
    }
}
