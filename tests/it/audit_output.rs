//! `audit --output FILE`: the report replaces FILE atomically (a reader sees the old or the
//! new report, never a part; a kill before the rename leaves the old one), mode 0644, a
//! symlink at FILE replaced, never followed, and the exit code is still the verdict's (4: FILE not written).
// unsafe: libc calls the test needs to set up (xattrs, a raw kill); the crate denies it elsewhere.
#![allow(unsafe_code)]

use crate::audit_cli::{audit, tree};
use crate::support::BIN;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

const KILL_ENV: &str = "DOCKER_UPGRADE_GUARD_TEST_KILL_AFTER";

fn to_file(root: &Path, file: &Path, format: &str, kill: Option<&str>) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.arg("--root")
        .arg(root)
        .args(["audit", "--format", format, "--output"])
        .arg(file)
        .env_remove(KILL_ENV);
    if let Some(k) = kill {
        c.env(KILL_ENV, k);
    }
    // SAFETY: umask(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn output_is_the_report_with_mode_0644_and_the_verdicts_exit_code() {
    let t = tree(&["bookworm", "focal"]);
    let out = tempfile::tempdir().unwrap();
    for (format, code) in [("prometheus", 2), ("npd", 1), ("json", 2), ("nagios", 2)] {
        let file = out.path().join(format!("dug.{format}"));
        let stdout = audit(t.path(), &["--format", format]);
        let o = to_file(t.path(), &file, format, None);
        assert_eq!(o.status.code(), Some(code), "{format}: {o:?}");
        assert!(o.stdout.is_empty(), "{format}: nothing on stdout");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            stdout.out,
            "{format}"
        );
        let mode = std::fs::metadata(&file).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{format}: even under umask 077");
    }
    // No temp file left behind.
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(names.len(), 4);
}

#[test]
fn a_symlink_at_file_is_replaced_never_followed() {
    let t = tree(&["bookworm"]);
    let out = tempfile::tempdir().unwrap();
    let victim = out.path().join("victim");
    std::fs::write(&victim, "keep me\n").unwrap();
    let link = out.path().join("dug.prom");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let o = to_file(t.path(), &link, "prometheus", None);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_file(), "the link itself was replaced");
    assert!(std::fs::read_to_string(&link)
        .unwrap()
        .contains("docker_upgrade_guard_audit_severity 0"));
    // A FILE that cannot be written is exit 4 (not 3, which a timer counts as a verdict).
    let o = to_file(
        t.path(),
        &out.path().join("missing-dir/dug.prom"),
        "prometheus",
        None,
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing-dir"),
        "{o:?}"
    );
}

#[test]
fn a_concurrent_reader_never_sees_a_partial_file() {
    let ok = tree(&["bookworm"]);
    let crit = tree(&["bookworm", "focal"]);
    let a = audit(ok.path(), &["--format", "prometheus"]).out;
    let b = audit(crit.path(), &["--format", "prometheus"]).out;
    assert_ne!(a, b);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("dug.prom");
    std::fs::write(&file, &a).unwrap();
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let got = std::fs::read_to_string(&file).expect("the file is always there");
                assert!(got == a || got == b, "a partial file:\n{got}");
                reads += 1;
            }
            reads
        });
        for i in 0..20 {
            let root = if i % 2 == 0 { crit.path() } else { ok.path() };
            let o = to_file(root, &file, "prometheus", None);
            assert!(matches!(o.status.code(), Some(0 | 2)), "{o:?}");
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(reads > 20, "the reader ran ({reads} reads)");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), a);
}

#[test]
fn killed_mid_write_leaves_the_old_file() {
    let crit = tree(&["bookworm", "focal"]);
    let new = audit(crit.path(), &["--format", "prometheus"]).out;
    for (point, survives_old) in [
        ("temp-created", true),
        ("temp-written", true),
        ("temp-synced", true),
        ("renamed", false),
        ("dir-synced", false),
    ] {
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("dug.prom");
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = to_file(crit.path(), &file, "prometheus", Some(point));
        assert_eq!(o.status.signal(), Some(9), "{point}: killed there: {o:?}");
        let got = std::fs::read_to_string(&file).unwrap();
        if survives_old {
            assert_eq!(got, "old\n", "{point}");
        } else {
            assert_eq!(got, new, "{point}");
        }
        // A left-over temp file is not a *.prom file a collector would read.
        for e in std::fs::read_dir(out.path()).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            assert!(n == "dug.prom" || !n.ends_with(".prom"), "{point}: {n}");
        }
    }
}
