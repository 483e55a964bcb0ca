//! Kill-at-every-step: a process killed (SIGKILL) after any step of a patch or a revert leaves
//! the script exactly original or exactly patched, never a mix; a rerun completes, and revert
//! restores the original byte for byte.
//!
//! The victim is this test binary itself, re-run with a filter that selects `victim` and the
//! test-only kill knob (`DOCKER_UPGRADE_GUARD_TEST_KILL_AFTER`, honoured in debug builds with a
//! root other than `/`), so the kill lands inside the library's real write path.

use docker_upgrade_guard::dpkg::info::ScriptKind;
use docker_upgrade_guard::patch::apply::{self, KILL_ENV, KILL_POINTS};
use docker_upgrade_guard::patch::backup::{self, sha256_hex, BackupState};
use docker_upgrade_guard::patch::plan::PlanItem;
use docker_upgrade_guard::patch::revert::{self, Reverted};
use docker_upgrade_guard::root::Root;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT_ENV: &str = "DUG_TEST_VICTIM_ROOT";
const MODE_ENV: &str = "DUG_TEST_VICTIM_MODE";

const ORIGINAL: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true\nfi\n";
const PATCHED: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true\nfi\n";

fn item(root: &Path) -> PlanItem {
    PlanItem {
        package: "containerd".into(),
        version: "1.3.3-0ubuntu2".into(),
        kind: ScriptKind::Prerm,
        path: script(root),
        original: ORIGINAL.into(),
        repaired: PATCHED.into(),
        lines: vec![(4, 4)],
        units: vec!["containerd.service".into()],
    }
}

fn script(root: &Path) -> PathBuf {
    root.join("var/lib/dpkg/info/containerd.prerm")
}

/// Runs only as the child of `kill_after_every_step`.
#[test]
fn victim() {
    let Some(dir) = std::env::var_os(ROOT_ENV) else {
        return;
    };
    let root = Root::new(PathBuf::from(dir));
    match std::env::var(MODE_ENV).as_deref() {
        Ok("patch") => {
            apply::apply_one(&root, &item(root.dir())).unwrap();
        }
        Ok("revert") => {
            let (out, _) = revert::revert(&root, &[]);
            assert!(matches!(out.as_slice(), [Reverted::Restored(_)]), "{out:?}");
        }
        other => panic!("bad mode {other:?}"),
    }
}

fn setup() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let info = d.path().join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(script(d.path()), ORIGINAL).unwrap();
    std::fs::set_permissions(script(d.path()), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = Root::new(d.path());
    (d, root)
}

fn run_victim(root: &Root, mode: &str, kill: Option<&str>) -> std::process::ExitStatus {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "patch_kill::victim",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROOT_ENV, root.dir())
    .env(MODE_ENV, mode)
    .env_remove(KILL_ENV);
    if let Some(k) = kill {
        cmd.env(KILL_ENV, k);
    }
    cmd.output().unwrap().status
}

fn on_disk(root: &Root) -> String {
    std::fs::read_to_string(script(root.dir())).unwrap()
}

fn assert_whole(root: &Root, what: &str) -> bool {
    let text = on_disk(root);
    assert!(
        text == ORIGINAL || text == PATCHED,
        "{what}: the script is neither the original nor the patched text:\n{text}"
    );
    let meta = std::fs::metadata(script(root.dir())).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o755,
        "{what}: mode kept"
    );
    text == PATCHED
}

#[test]
fn kill_after_every_step_of_patch() {
    if !cfg!(debug_assertions) {
        return; // the knob exists only in debug builds, by design
    }
    let mut seen_patched = 0;
    for point in KILL_POINTS {
        let (_d, root) = setup();
        let status = run_victim(&root, "patch", Some(point));
        assert_eq!(status.signal(), Some(9), "killed after {point}: {status:?}");
        let patched = assert_whole(&root, point);
        // The rename is the one moment the file changes.
        let expect_patched = KILL_POINTS.iter().position(|p| p == point)
            >= KILL_POINTS.iter().position(|p| *p == "renamed");
        assert_eq!(patched, expect_patched, "after {point}");
        seen_patched += usize::from(patched);
        // Before the rename the original is already kept (from the "backup" point on).
        let b = backup::backup_for(&root, "containerd", ScriptKind::Prerm)
            .expect("backup written before anything else");
        assert_eq!(
            backup::read_original(&root, &b).unwrap(),
            ORIGINAL.as_bytes()
        );
        // The rerun: a still-original script is patched now; a patched one needs nothing.
        if !patched {
            assert!(
                run_victim(&root, "patch", None).success(),
                "rerun after {point}"
            );
        }
        assert_eq!(on_disk(&root), PATCHED);
        let info = script(root.dir()).parent().unwrap().to_path_buf();
        let names: Vec<String> = std::fs::read_dir(&info)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["containerd.prerm"],
            "no temp file left after the rerun"
        );
        // And revert restores the original byte for byte.
        assert!(
            run_victim(&root, "revert", None).success(),
            "revert after {point}"
        );
        assert_eq!(
            sha256_hex(on_disk(&root).as_bytes()),
            sha256_hex(ORIGINAL.as_bytes())
        );
        assert!(backup::backup_for(&root, "containerd", ScriptKind::Prerm).is_none());
    }
    assert_eq!(
        seen_patched, 2,
        "renamed and dir-synced leave the patched text"
    );
}

#[test]
fn kill_after_every_step_of_revert() {
    if !cfg!(debug_assertions) {
        return;
    }
    for point in KILL_POINTS.iter().filter(|p| **p != "backup") {
        let (_d, root) = setup();
        assert!(run_victim(&root, "patch", None).success());
        let status = run_victim(&root, "revert", Some(point));
        assert_eq!(status.signal(), Some(9), "killed after {point}: {status:?}");
        let patched = assert_whole(&root, point);
        let b = backup::backup_for(&root, "containerd", ScriptKind::Prerm)
            .expect("the backup outlives a killed revert");
        if patched {
            assert_eq!(b.state, BackupState::Current);
            assert!(
                run_victim(&root, "revert", None).success(),
                "rerun after {point}"
            );
        }
        assert_eq!(on_disk(&root), ORIGINAL, "after {point}");
    }
}

#[test]
fn knob_is_ignored_for_the_host_root() {
    let knob = || Some("renamed".to_string());
    assert_eq!(apply::kill_point_from(&Root::host(), knob()), None);
    let expected = cfg!(debug_assertions).then(|| "renamed".to_string());
    assert_eq!(
        apply::kill_point_from(&Root::new("/tmp/x"), knob()),
        expected
    );
    assert_eq!(
        apply::kill_point_from(&Root::new("/tmp/x"), Some("nowhere".into())),
        None
    );
}
