//! `patch` against the real dpkg in a temp root: an upgrade whose old prerm stops docker (or
//! containerd) records that stop in the stand-in service manager without `patch`, and none after
//! it; revert is byte-identical; every refusal says why.

use crate::support::{ok, shapes, Deb, TestRoot};
use docker_upgrade_guard::dpkg::info::ScriptKind;
use docker_upgrade_guard::patch::backup::{self, sha256_hex, BackupState};
use docker_upgrade_guard::root::Root;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DOCKER_V1: &str = "19.03.8-0ubuntu1";
const DOCKER_V2: &str = "19.03.8-0ubuntu1.1";
const CONTAINERD_V1: &str = "1.3.3-0ubuntu2";
const CONTAINERD_V2: &str = "1.3.3-0ubuntu2.1";

/// containerd's fixed prerm (what later debhelper generates): stop only on remove.
const CONTAINERD_PRERM_REMOVE_ONLY: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_installsystemd/13.3.4\nif [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true\nfi\n# End automatically added section\n";

fn docker(version: &str, prerm: &str) -> Deb {
    Deb::new("docker.io", version)
        .script("prerm", prerm)
        .file(
            "/lib/systemd/system/docker.service",
            shapes::DOCKER_SERVICE_BINDSTO,
        )
        .file("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET)
}

fn containerd(version: &str, prerm: &str) -> Deb {
    Deb::new("containerd", version)
        .script("prerm", prerm)
        .script("postinst", shapes::CONTAINERD_POSTINST_START)
        .file(
            "/lib/systemd/system/containerd.service",
            shapes::CONTAINERD_SERVICE,
        )
}

struct Scenario {
    t: TestRoot,
    v2: PathBuf,
}

impl Scenario {
    fn docker() -> Scenario {
        Scenario::new(
            docker(DOCKER_V1, shapes::DOCKER_PRERM_ALWAYS_STOP),
            docker(DOCKER_V2, shapes::DOCKER_PRERM_REMOVE_ONLY),
        )
    }

    fn containerd() -> Scenario {
        Scenario::new(
            containerd(CONTAINERD_V1, shapes::CONTAINERD_PRERM_ALWAYS_STOP),
            containerd(CONTAINERD_V2, CONTAINERD_PRERM_REMOVE_ONLY),
        )
    }

    /// v1 installed, the focal-shaped units running, the call log empty.
    fn new(v1: Deb, v2: Deb) -> Scenario {
        let t = TestRoot::new();
        t.set_units(&shapes::focal_units());
        let debs = t.path().join("debs");
        let v1 = v1.build(&debs);
        let v2 = v2.build(&debs);
        ok(&t.dpkg(&["-i", v1.to_str().unwrap()], false));
        t.clear_calls();
        Scenario { t, v2 }
    }

    fn upgrade(&self) {
        ok(&self.t.dpkg(&["-i", self.v2.to_str().unwrap()], false));
    }

    fn info(&self, name: &str) -> PathBuf {
        self.t.path().join("var/lib/dpkg/info").join(name)
    }

    fn root(&self) -> Root {
        Root::new(self.t.path())
    }
}

fn out(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sha_of(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

#[test]
fn docker_io_upgrade_stops_docker_without_patch() {
    let s = Scenario::docker();
    s.upgrade();
    let calls = s.t.calls();
    assert!(calls.contains("stop docker.service"), "{calls}");
    assert!(!s.t.is_active("docker.service"));
}

#[test]
fn docker_io_upgrade_after_patch_stops_nothing() {
    let s = Scenario::docker();
    let (stdout, _) = out(&s.t.tool(&["patch"]));
    assert!(
        stdout.contains(&format!(
            "patched docker.io {DOCKER_V1} prerm: the upgrade will not stop docker.service, docker.socket"
        )),
        "{stdout}"
    );
    s.upgrade();
    let calls = s.t.calls();
    assert!(!calls.contains("stop"), "nothing stopped:\n{calls}");
    assert!(s.t.is_active("docker.service"));
    assert!(s.t.is_active("docker.socket"));
}

#[test]
fn containerd_upgrade_stops_docker_without_patch() {
    let s = Scenario::containerd();
    s.upgrade();
    let calls = s.t.calls();
    assert!(calls.contains("stop containerd.service"), "{calls}");
    assert!(
        calls.contains("stopped docker.service (BindsTo=containerd.service)"),
        "{calls}"
    );
}

#[test]
fn containerd_upgrade_after_patch_stops_nothing() {
    let s = Scenario::containerd();
    ok(&s.t.tool(&["patch", "--package", "containerd"]));
    s.upgrade();
    let calls = s.t.calls();
    assert!(!calls.contains("stop"), "nothing stopped:\n{calls}");
    assert!(s.t.is_active("docker.service"));
    assert!(s.t.is_active("containerd.service"));
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing_then_second_run_has_nothing_to_do() {
    let s = Scenario::docker();
    let prerm = s.info("docker.io.prerm");
    let before = sha_of(&prerm);
    let o = s.t.tool(&["patch", "--dry-run"]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "--- {}\tinstalled docker.io {DOCKER_V1}",
            prerm.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("-if [ -d \"$DPKG_ROOT/run/systemd/system\" ]; then"),
        "{stdout}"
    );
    assert!(stdout.contains("would patch docker.io"), "{stdout}");
    assert_eq!(sha_of(&prerm), before, "dry run changed the script");
    assert!(!backup::dir(&s.root()).exists(), "dry run wrote a backup");

    ok(&s.t.tool(&["patch"]));
    assert_ne!(sha_of(&prerm), before);
    let o = s.t.tool(&["patch"]);
    let (stdout, _) = out(&o);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout.trim(), "nothing to patch");
}

#[test]
fn backup_records_everything_and_audit_can_find_it() {
    let s = Scenario::containerd();
    ok(&s.t.tool(&["patch"]));
    let b = backup::backup_for(&s.root(), "containerd", ScriptKind::Prerm).unwrap();
    assert_eq!(b.state, BackupState::Current);
    assert_eq!(b.record.version, CONTAINERD_V1);
    assert_eq!(b.record.original_path, s.info("containerd.prerm"));
    assert_eq!(
        b.record.original_sha256,
        sha256_hex(shapes::CONTAINERD_PRERM_ALWAYS_STOP.as_bytes())
    );
    assert_eq!(b.record.patched_sha256, sha_of(&s.info("containerd.prerm")));
    assert_eq!(
        std::fs::read(&b.original_copy).unwrap(),
        shapes::CONTAINERD_PRERM_ALWAYS_STOP.as_bytes()
    );
    let dir_mode = std::fs::metadata(backup::dir(&s.root()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let script_mode = std::fs::metadata(s.info("containerd.prerm"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(script_mode & 0o7777, 0o755, "mode kept");
}

#[test]
fn revert_restores_byte_identical() {
    let s = Scenario::docker();
    let prerm = s.info("docker.io.prerm");
    let original = sha_of(&prerm);
    ok(&s.t.tool(&["patch"]));
    assert_ne!(sha_of(&prerm), original);
    let (stdout, _) = out(&s.t.tool(&["patch", "--revert"]));
    assert!(stdout.contains("restored"), "{stdout}");
    assert_eq!(sha_of(&prerm), original);
    assert!(backup::backup_for(&s.root(), "docker.io", ScriptKind::Prerm).is_none());
    let o = s.t.tool(&["patch", "--revert"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out(&o).0.trim(), "nothing to revert");
}

#[test]
fn revert_after_a_newer_version_replaced_the_script_refuses() {
    let s = Scenario::docker();
    ok(&s.t.tool(&["patch"]));
    s.upgrade();
    let prerm = s.info("docker.io.prerm");
    let v2 = sha_of(&prerm);
    let o = s.t.tool(&["patch", "--revert"]);
    let (_, stderr) = out(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr.contains("a newer package version replaced it; leaving it alone"),
        "{stderr}"
    );
    assert_eq!(sha_of(&prerm), v2, "left alone");
    let b = backup::backup_for(&s.root(), "docker.io", ScriptKind::Prerm).unwrap();
    assert!(b.record.stale.is_some(), "marked stale: {b:?}");
    // A stale backup is not offered again.
    let o = s.t.tool(&["patch", "--revert"]);
    assert_eq!(out(&o).0.trim(), "nothing to revert");
}

fn refused(s: &Scenario, what: &str) {
    let prerm = s.info("docker.io.prerm");
    let before = std::fs::symlink_metadata(&prerm).unwrap();
    let o = s.t.tool(&["patch"]);
    let (stdout, stderr) = out(&o);
    assert_ne!(o.status.code(), Some(0), "{stdout}");
    assert!(stderr.contains(what), "expected {what:?} in:\n{stderr}");
    assert!(
        stdout.is_empty(),
        "nothing written, no diff shown: {stdout}"
    );
    let after = std::fs::symlink_metadata(&prerm).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&before),
        std::os::unix::fs::MetadataExt::ino(&after),
        "file replaced"
    );
}

#[test]
fn refuses_symlink() {
    let s = Scenario::docker();
    let prerm = s.info("docker.io.prerm");
    let elsewhere = s.t.path().join("elsewhere.prerm");
    std::fs::rename(&prerm, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &prerm).unwrap();
    refused(&s, "is a symlink; refusing to follow it");
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        shapes::DOCKER_PRERM_ALWAYS_STOP
    );
}

#[test]
fn refuses_wrong_owner() {
    let s = Scenario::docker();
    nix::unistd::chown(
        &s.info("docker.io.prerm"),
        Some(nix::unistd::Uid::from_raw(1234)),
        None,
    )
    .unwrap();
    refused(&s, "is owned by uid 1234, not by root");
}

#[test]
fn refuses_group_writable() {
    let s = Scenario::docker();
    std::fs::set_permissions(
        s.info("docker.io.prerm"),
        std::fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    refused(&s, "is writable by group or others (mode 0775)");
}

#[test]
fn refuses_when_dpkg_lock_is_held() {
    let s = Scenario::docker();
    let lock = s.t.path().join("var/lib/dpkg/lock");
    let holder = crate::support::LockHolder::new(&lock);
    refused(
        &s,
        &format!(
            "the dpkg lock {} is held by process {} (apt or dpkg is running)",
            lock.display(),
            holder.0.id()
        ),
    );
    drop(holder);
}

#[test]
fn refuses_a_script_it_cannot_follow() {
    let s = Scenario::new(
        docker(
            DOCKER_V1,
            "#!/bin/sh\nset -e\nstop_docker() {\n\tdeb-systemd-invoke stop docker.service\n}\nstop_docker\n",
        ),
        docker(DOCKER_V2, shapes::DOCKER_PRERM_REMOVE_ONLY),
    );
    let before = sha_of(&s.info("docker.io.prerm"));
    let o = s.t.tool(&["patch"]);
    let (_, stderr) = out(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr.contains("not rewriting a script this tool cannot follow"),
        "{stderr}"
    );
    assert_eq!(sha_of(&s.info("docker.io.prerm")), before);
}

#[test]
fn jit_guard_patches_inside_apt_while_apt_holds_the_frontend_lock() {
    let s = Scenario::containerd();
    let frontend = s.t.path().join("var/lib/dpkg/lock-frontend");
    let apt = crate::support::LockHolder::new(&frontend);
    let config = docker_upgrade_guard::config::Config::default();
    let lines = docker_upgrade_guard::patch::jit_guard(
        &s.root(),
        &config,
        &["containerd".to_string(), "unrelated".to_string()],
    )
    .unwrap();
    drop(apt);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0].package.as_str(), lines[0].kind, lines[0].patched),
        ("containerd", ScriptKind::Prerm, true),
        "{lines:?}"
    );
    assert!(
        lines[0].line.starts_with(&format!(
            "patched containerd {CONTAINERD_V1} prerm: the upgrade will not stop containerd.service"
        )),
        "{lines:?}"
    );
    assert!(lines[0].line.contains("backup: "), "{lines:?}");
    s.upgrade();
    assert!(!s.t.calls().contains("stop"), "{}", s.t.calls());
    // Nothing to do for a package that is not watched, or is already patched.
    assert!(
        docker_upgrade_guard::patch::jit_guard(&s.root(), &config, &["containerd".into()])
            .unwrap()
            .is_empty()
    );
}

/// The kill test through the shipped binary: `patch` killed after each step leaves the
/// original or the patched script; the rerun completes; the upgrade then stops nothing.
#[test]
fn binary_killed_after_every_step_leaves_original_or_patched() {
    if !cfg!(debug_assertions) {
        return;
    }
    for point in docker_upgrade_guard::patch::apply::KILL_POINTS {
        let s = Scenario::docker();
        let prerm = s.info("docker.io.prerm");
        let o = std::process::Command::new(crate::support::BIN)
            .arg("--root")
            .arg(s.t.path())
            .arg("patch")
            .env(docker_upgrade_guard::patch::apply::KILL_ENV, point)
            .env_remove("DPKG_FRONTEND_LOCKED")
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "{point}");
        let text = std::fs::read_to_string(&prerm).unwrap();
        let original = text == shapes::DOCKER_PRERM_ALWAYS_STOP;
        let b = backup::backup_for(&s.root(), "docker.io", ScriptKind::Prerm)
            .expect("the original is kept before anything else");
        let patched = sha256_hex(text.as_bytes()) == b.record.patched_sha256;
        assert!(original || patched, "{point}: a mix:\n{text}");
        let (stdout, _) = out(&s.t.tool(&["patch"]));
        assert!(
            stdout.contains(if original {
                "patched docker.io"
            } else {
                "nothing to patch"
            }),
            "{point}: {stdout}"
        );
        s.upgrade();
        assert!(!s.t.calls().contains("stop"), "{point}: {}", s.t.calls());
    }
}
