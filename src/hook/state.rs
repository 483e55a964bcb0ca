//! The transaction record: what the watched units and packages looked like before a package
//! operation, kept in `<root>/run/docker-upgrade-guard/txn.json` from apt's (or dpkg's) pre
//! stage to the post stage. `/run` is a tmpfs, so a reboot forgets it; the boot id inside makes
//! that explicit when `/run` is not one (chroots, tests).

use crate::fsutil;
use crate::root::Root;
use crate::service::UnitState;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const RUN_DIR: &str = "/run/docker-upgrade-guard";
pub(crate) const RECORD: &str = "txn.json";
/// The last closed record, kept for `status` and for a person debugging a night's run.
pub(crate) const LAST: &str = "last.json";
pub(crate) const SCHEMA: u32 = 1;
/// The record is small; anything larger is not ours.
pub(crate) const MAX_RECORD: u64 = 1024 * 1024;

/// A harmful line found in an installed maintainer script before dpkg replaced it: the text
/// is gone after the upgrade, so the post stage names it from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HarmfulSite {
    pub package: String,
    pub version: Option<String>,
    /// `prerm`, `postrm`, `preinst`.
    pub script: String,
    pub units: Vec<String>,
    pub first_line: usize,
    pub last_line: usize,
    pub text: String,
    /// Set when the just-in-time guard patched this script before dpkg ran it.
    #[serde(default)]
    pub patched: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageVersion {
    pub name: String,
    /// `None`: not installed (or only config files left).
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub schema: u32,
    /// `/proc/sys/kernel/random/boot_id` when the record was made.
    pub boot_id: String,
    /// Seconds since the epoch: first snapshot, and last update. For display only: NTP may
    /// step this clock between two stages.
    pub created: u64,
    pub updated: u64,
    /// Seconds on CLOCK_BOOTTIME at the last update: what freshness is measured on (it never
    /// steps, and counts suspend). Absent in records of versions before it (then the wall
    /// clock is used, as they did).
    #[serde(default)]
    pub updated_boot: Option<u64>,
    /// The stage that made it (`apt-pkgs`, `dpkg-pre`).
    pub stage: String,
    /// Who ran apt (`CommandLine::AsString`), when known.
    #[serde(default)]
    pub command_line: Option<String>,
    /// Size of dpkg.log at the first snapshot: what dpkg did is what follows it.
    pub dpkg_log_offset: u64,
    /// The dpkg.log file that offset is in (absent in records of older versions).
    #[serde(default)]
    pub dpkg_log_file: Option<crate::dpkg::log::FileId>,
    /// The watched units' states before the operation (the earliest snapshot wins).
    pub units: Vec<UnitState>,
    pub packages: Vec<PackageVersion>,
    /// What apt announced (empty for a dpkg-only run).
    #[serde(default)]
    pub actions: Vec<super::stream::PkgAction>,
    #[serde(default)]
    pub harmful: Vec<HarmfulSite>,
    /// Units whose start already failed in this transaction: never tried twice.
    #[serde(default)]
    pub failed_starts: Vec<String>,
    /// The running containers before the operation (absent in older records, and when
    /// docker.service was not active or its API did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<super::containers::Before>,
}

impl Record {
    /// A record made now by `stage`: the units' states before, and where dpkg.log stood
    /// (its id, and the offset from which the operation's lines count); nothing else yet.
    pub(crate) fn new(
        stage: &str,
        units: Vec<UnitState>,
        (dpkg_log_file, dpkg_log_offset): (Option<crate::dpkg::log::FileId>, u64),
    ) -> Record {
        let now = Now::read();
        Record {
            schema: SCHEMA,
            boot_id: super::host::boot_id(),
            created: now.wall,
            updated: now.wall,
            updated_boot: Some(now.boot),
            stage: stage.into(),
            command_line: None,
            dpkg_log_offset,
            dpkg_log_file,
            units,
            packages: Vec::new(),
            actions: Vec::new(),
            harmful: Vec::new(),
            failed_starts: Vec::new(),
            containers: None,
        }
    }

    pub(crate) fn unit(&self, name: &str) -> Option<&UnitState> {
        self.units.iter().find(|u| u.unit == name)
    }

    /// Is this record usable now: same boot, not older than `max_age` seconds, not from the
    /// future. Ages are measured on CLOCK_BOOTTIME (`now.boot`); the boot id rules out
    /// another boot, so a wall-clock step cannot make a fresh record look stale or new.
    pub(crate) fn freshness(&self, boot_id: &str, now: Now, max_age: u64) -> Result<(), String> {
        if self.boot_id != boot_id {
            return Err(format!(
                "it was made before the last reboot (boot id {})",
                self.boot_id
            ));
        }
        let (then, now) = match self.updated_boot {
            Some(b) => (b, now.boot),
            None => (self.updated, now.wall),
        };
        if then > now + 60 {
            return Err("its time is in the future".into());
        }
        let age = now.saturating_sub(then);
        if age > max_age {
            return Err(format!(
                "it is {age} s old, older than max_snapshot_age_secs = {max_age}"
            ));
        }
        Ok(())
    }

    /// Folds a newer snapshot into this (older, fresh, open) one: the older "before" states and
    /// dpkg.log offset stay (an operation in several steps must not lose what was running
    /// before its first step); what only the newer one knows is added.
    pub(crate) fn merge_newer(&mut self, newer: Record) {
        for u in newer.units {
            if self.unit(&u.unit).is_none() {
                self.units.push(u);
            }
        }
        for p in newer.packages {
            if !self.packages.iter().any(|q| q.name == p.name) {
                self.packages.push(p);
            }
        }
        for a in newer.actions {
            if !self.actions.contains(&a) {
                self.actions.push(a);
            }
        }
        for h in newer.harmful {
            if !self.harmful.contains(&h) {
                self.harmful.push(h);
            }
        }
        // The older offset (and its file) stays: what dpkg did since the first step counts.
        if self.dpkg_log_file.is_none() {
            self.dpkg_log_file = newer.dpkg_log_file;
            self.dpkg_log_offset = self.dpkg_log_offset.min(newer.dpkg_log_offset);
        }
        self.updated = self.updated.max(newer.updated);
        self.updated_boot = self.updated_boot.max(newer.updated_boot);
        if self.command_line.is_none() {
            self.command_line = newer.command_line;
        }
        if self.containers.is_none() {
            self.containers = newer.containers;
        }
    }
}

/// The two clocks a stage reads once: wall time (display) and boot time (freshness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    pub wall: u64,
    pub boot: u64,
}

impl Now {
    pub(crate) fn read() -> Now {
        let boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .map_or(0, |t| u64::try_from(t.tv_sec()).unwrap_or(0));
        Now {
            wall: super::host::now_secs(),
            boot,
        }
    }
}

pub(crate) fn run_dir(root: &Root) -> PathBuf {
    root.path(RUN_DIR)
}

pub(crate) fn record_path(root: &Root) -> PathBuf {
    run_dir(root).join(RECORD)
}

/// Parses a record strictly (unknown fields, wrong schema: errors naming the file).
pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<Record> {
    let rec: Record = serde_json::from_slice(bytes)
        .with_context(|| format!("{} is not a valid transaction record", path.display()))?;
    if rec.schema != SCHEMA {
        bail!(
            "{} has schema {}, this tool writes schema {}",
            path.display(),
            rec.schema,
            SCHEMA
        );
    }
    Ok(rec)
}

/// The run directory, created (0700, ours) if missing; see [`crate::dirs`] for what is refused.
fn run_dir_fd(root: &Root) -> Result<crate::dirs::Dir> {
    crate::dirs::create(root, RUN_DIR, 0o700)
}

/// Reads `name` from the run directory; `Ok(None)` if it or the directory does not exist.
fn read_file(root: &Root, name: &str) -> Result<Option<Record>> {
    let Some(dir) = crate::dirs::open(root, RUN_DIR)? else {
        return Ok(None);
    };
    match dir.read(name, MAX_RECORD)? {
        Some(bytes) => parse(&bytes, &dir.join(name)).map(Some),
        None => Ok(None),
    }
}

/// The open record, if any. A missing file is `Ok(None)`; a symlink, an oversized or garbled
/// file is an error naming the file (the caller reports it and sets the file aside).
pub(crate) fn read(root: &Root) -> Result<Option<Record>> {
    read_file(root, RECORD)
}

/// Writes the open record atomically (mode 0600 in a 0700 directory owned by us).
pub(crate) fn write(root: &Root, rec: &Record) -> Result<()> {
    write_as(root, RECORD, rec)
}

/// Writes the outcome of a taken record as `last.json` (for `status` and the next snapshot).
pub(crate) fn write_last(root: &Root, rec: &Record) -> Result<()> {
    write_as(root, LAST, rec)
}

fn write_as(root: &Root, name: &str, rec: &Record) -> Result<()> {
    let dir = run_dir_fd(root)?;
    let data = serde_json::to_vec_pretty(rec).context("cannot serialise the record")?;
    let attrs = fsutil::FileAttrs {
        mode: 0o600,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    dir.write_atomic(name, &data, attrs, None, |_| {})
}

/// Takes the open record (under the lock): one rename to `last.json`, so that it is acted on at
/// most once — a post stage killed after this point leaves nothing another one could start
/// from. A record already gone is not an error.
pub(crate) fn take(root: &Root) -> Result<()> {
    let dir = run_dir_fd(root)?;
    match dir.rename(RECORD, LAST) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot take {}", dir.join(RECORD).display())),
    }
}

/// Moves an unusable record out of the way (kept as `txn.json.bad` for a person to look at).
pub(crate) fn set_aside(root: &Root) -> Result<()> {
    let dir = run_dir_fd(root)?;
    dir.rename(RECORD, "txn.json.bad")
        .with_context(|| format!("cannot move {} aside", dir.join(RECORD).display()))
}

/// Held while a stage reads and writes the record: two hooks at once (an admin's `dpkg -i`
/// beside a stuck apt, a nested call) must not both act on one transaction.
pub(crate) struct Lock {
    _flock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes `<run>/lock`, waiting at most until `deadline`.
pub(crate) fn lock(root: &Root, deadline: std::time::Instant) -> Result<Lock> {
    use nix::fcntl::{Flock, FlockArg, OFlag};
    let dir = run_dir_fd(root)?;
    let path = dir.join("lock");
    // O_NONBLOCK (added by open_file): a FIFO planted here must not block before the deadline.
    let mut file = dir
        .open_file("lock", OFlag::O_WRONLY | OFlag::O_CREAT, 0o600)?
        .with_context(|| format!("{} vanished as it was created", path.display()))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => return Ok(Lock { _flock: f }),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                if std::time::Instant::now() >= deadline {
                    bail!(
                        "another docker-upgrade-guard hook holds {}; leaving this operation to it",
                        path.display()
                    );
                }
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((_, e)) => bail!("cannot lock {}: {}", path.display(), e.desc()),
        }
    }
}

/// The last closed record (for `status`).
pub(crate) fn read_last(root: &Root) -> Result<Option<Record>> {
    read_file(root, LAST)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_fifo_planted_as_the_lock_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let dir = run_dir(&root);
        crate::dirs::create(&root, RUN_DIR, 0o700).unwrap();
        nix::unistd::mkfifo(
            &dir.join("lock"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let t = std::time::Instant::now();
        let e = lock(&root, t + std::time::Duration::from_secs(30))
            .err()
            .unwrap()
            .to_string();
        // O_NONBLOCK write-open of a FIFO without a reader fails (ENXIO); with one it opens and
        // the type check refuses it. Either way: at once, naming the file.
        assert!(
            e.contains("not a regular file") || e.contains("cannot open"),
            "{e}"
        );
        assert!(e.contains("docker-upgrade-guard/lock"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    pub(crate) fn unit(name: &str, active: &str) -> UnitState {
        UnitState {
            unit: name.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: if active == "active" {
                "running"
            } else {
                "dead"
            }
            .into(),
            unit_file_state: "enabled".into(),
            main_pid: 0,
            ..Default::default()
        }
    }

    pub(crate) fn record() -> Record {
        Record {
            schema: SCHEMA,
            boot_id: "b1".into(),
            created: 1000,
            updated: 1000,
            updated_boot: Some(500),
            stage: "apt-pkgs".into(),
            command_line: None,
            dpkg_log_offset: 10,
            dpkg_log_file: None,
            units: vec![unit("docker.service", "active")],
            packages: vec![PackageVersion {
                name: "containerd".into(),
                version: Some("1.0".into()),
            }],
            actions: vec![],
            harmful: vec![],
            failed_starts: vec![],
            containers: None,
        }
    }

    #[test]
    fn a_record_without_containers_still_reads() {
        let rec = record();
        let mut v = serde_json::to_value(&rec).unwrap();
        assert!(v.get("containers").is_none(), "not written when absent");
        v.as_object_mut().unwrap().remove("containers");
        let back = parse(v.to_string().as_bytes(), Path::new("t")).unwrap();
        assert_eq!(back.containers, None);
    }

    #[test]
    fn write_read_take() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(read(&root).unwrap(), None);
        let rec = record();
        write(&root, &rec).unwrap();
        assert_eq!(read(&root).unwrap(), Some(rec.clone()));
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(run_dir(&root)).unwrap();
        assert_eq!(m.mode() & 0o777, 0o700);
        take(&root).unwrap();
        assert_eq!(read(&root).unwrap(), None);
        assert_eq!(read_last(&root).unwrap(), Some(rec));
        take(&root).unwrap();
    }

    #[test]
    fn garbage_and_symlink_are_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        std::fs::create_dir_all(run_dir(&root)).unwrap();
        std::fs::write(record_path(&root), "{not json").unwrap();
        let e = format!("{:#}", read(&root).unwrap_err());
        assert!(
            e.contains("txn.json is not a valid transaction record"),
            "{e}"
        );
        set_aside(&root).unwrap();
        assert_eq!(read(&root).unwrap(), None);
        std::os::unix::fs::symlink("/etc/passwd", record_path(&root)).unwrap();
        let e = format!("{:#}", read(&root).unwrap_err());
        assert!(e.contains("symlink"), "{e}");
        let mut v = serde_json::to_value(record()).unwrap();
        v["schema"] = 7.into();
        let e = format!(
            "{:#}",
            parse(v.to_string().as_bytes(), Path::new("x")).unwrap_err()
        );
        assert!(e.contains("schema 7"), "{e}");
        let mut v = serde_json::to_value(record()).unwrap();
        v["surprise"] = 1.into();
        assert!(parse(v.to_string().as_bytes(), Path::new("x")).is_err());
    }

    #[test]
    fn freshness_rules() {
        // record(): wall 1000, boot 500, boot id b1. (boot id, wall now, boot now) → verdict.
        let cases: &[(&str, u64, u64, Option<&str>)] = &[
            ("b1", 1500, 1000, None),
            ("b2", 1500, 1000, Some("reboot")),
            ("b1", 1500, 9000, Some("old")),
            ("b1", 1500, 100, Some("future")),
            // Clock steps: the wall clock says anything, boot time decides.
            ("b1", 10, 600, None),
            ("b1", 1000 + 7 * 3600, 600, None),
            ("b1", 1000, 500 + 3601, Some("old")),
        ];
        let r = record();
        for (boot_id, wall, boot, want) in cases {
            let got = r.freshness(
                boot_id,
                Now {
                    wall: *wall,
                    boot: *boot,
                },
                3600,
            );
            match want {
                None => assert!(got.is_ok(), "{boot_id} {wall} {boot}: {got:?}"),
                Some(w) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(w)),
                    "{boot_id} {wall} {boot}: {got:?}"
                ),
            }
        }
        // A record of an older version has no boot time: the wall clock, as before.
        let mut old = record();
        old.updated_boot = None;
        assert!(old
            .freshness(
                "b1",
                Now {
                    wall: 1500,
                    boot: 0
                },
                3600
            )
            .is_ok());
        assert!(old
            .freshness("b1", Now { wall: 100, boot: 0 }, 3600)
            .unwrap_err()
            .contains("future"));
    }

    #[test]
    fn merge_keeps_the_earlier_before() {
        let mut old = record();
        let mut newer = record();
        newer.updated = 2000;
        newer.dpkg_log_offset = 99;
        newer.units = vec![
            unit("docker.service", "inactive"),
            unit("kubelet.service", "active"),
        ];
        old.merge_newer(newer);
        assert!(old.unit("docker.service").unwrap().is_active());
        assert!(old.unit("kubelet.service").unwrap().is_active());
        assert_eq!(old.dpkg_log_offset, 10);
        assert_eq!(old.updated, 2000);
        assert_eq!(old.created, 1000);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases()))]

        #[test]
        fn fuzz_reader_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse(&bytes, Path::new("txn.json"));
        }

        /// Mutations of a valid record: flip, insert or delete bytes of its JSON.
        #[test]
        fn fuzz_reader_mutations(ops in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8)) {
            let mut bytes = serde_json::to_vec(&record()).unwrap();
            for (pos, b, kind) in ops {
                if bytes.is_empty() { break; }
                let i = pos as usize % bytes.len();
                match kind {
                    0 => bytes[i] = b,
                    1 => bytes.insert(i, b),
                    _ => { bytes.remove(i); }
                }
            }
            if let Ok(r) = parse(&bytes, Path::new("txn.json")) {
                prop_assert_eq!(r.schema, SCHEMA);
            }
        }
    }
}
