//! dpkg's locks: another process holding `lock-frontend` or `lock` (with the fcntl record lock
//! dpkg and apt use) makes us refuse, naming the lock and the holder's pid.

use crate::support::LockHolder as Holder;
use docker_upgrade_guard::dpkg::lock;
use std::process::Command;

#[test]
fn frontend_lock_held_is_refused_with_pid() {
    let d = tempfile::tempdir().unwrap();
    let h = Holder::new(&d.path().join("lock-frontend"));
    let err = lock::acquire(d.path(), false).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "the dpkg lock {}/lock-frontend is held by process {} (apt or dpkg is running); \
             try again when it has finished",
            d.path().display(),
            h.0.id()
        )
    );
    // Inside an apt hook the frontend lock is apt's: we only need `lock`.
    lock::acquire(d.path(), true).expect("frontend_locked skips lock-frontend");
    drop(h);
    lock::acquire(d.path(), false).expect("free again once the holder is gone");
}

#[test]
fn inner_lock_held_is_refused_even_inside_apt() {
    let d = tempfile::tempdir().unwrap();
    let h = Holder::new(&d.path().join("lock"));
    for frontend_locked in [false, true] {
        let err = lock::acquire(d.path(), frontend_locked)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("/lock is held by process {}", h.0.id())),
            "{err}"
        );
    }
}

#[test]
fn our_lock_excludes_dpkg() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("updates")).unwrap();
    std::fs::create_dir_all(d.path().join("info")).unwrap();
    std::fs::write(d.path().join("status"), "").unwrap();
    let _held = lock::acquire(d.path(), false).unwrap();
    let out = Command::new("/usr/bin/dpkg")
        .arg("--admindir")
        .arg(d.path())
        .args(["--configure", "-a"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lock") && stderr.contains("locked"),
        "{stderr}"
    );
}

#[test]
fn revert_cli_refuses_when_locked() {
    let d = tempfile::tempdir().unwrap();
    let admin = d.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&admin).unwrap();
    let h = Holder::new(&admin.join("lock-frontend"));
    let out = Command::new(env!("CARGO_BIN_EXE_docker-upgrade-guard"))
        .arg("--root")
        .arg(d.path())
        .args(["patch", "--revert"])
        .env_remove("DPKG_FRONTEND_LOCKED")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains(&format!("lock-frontend is held by process {}", h.0.id())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
}
