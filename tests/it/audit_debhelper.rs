//! `audit` on maintainer scripts made by the real debhelper: containerd test packages built with
//! `dpkg-buildpackage` from tiny source packages (compat 9, `dh --with systemd`,
//! `dh_systemd_start -r`, `dh_installinit --no-restart-after-upgrade`), installed with the real
//! `dpkg --root`.
//!
//! That debhelper puts `invoke-rc.d containerd stop` under `[ -x "/etc/init.d/containerd" ]`
//! (the preinst on upgrade with debhelper 13, the prerm with focal's 12.x: the same guard).
//! The test on the file is a fact of the node: without the init script nothing is stopped on
//! upgrade, with it (on the node, or shipped by the package) the stop is real.

use crate::support::{ok, shapes, TestRoot};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The two built packages: 1.0-1 without and 1.1-1 with an init script
/// (`debian/containerd.init`).
struct Built {
    no_init: PathBuf,
    with_init: PathBuf,
}

/// dpkg-buildpackage is slow: build once per test run, into CARGO_TARGET_TMPDIR.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = tempfile::Builder::new()
            .prefix("audit_debhelper-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        Built {
            no_init: build(&out.join("no-init"), "1.0-1", false),
            with_init: build(&out.join("with-init"), "1.1-1", true),
        }
    })
}

/// Builds containerd `version` from a source tree under `dir`; returns the .deb.
fn build(dir: &Path, version: &str, init_script: bool) -> PathBuf {
    let src = dir.join("containerd-1.0");
    let debian = src.join("debian");
    std::fs::create_dir_all(&debian).unwrap();
    let w = |name: &str, text: &str| std::fs::write(debian.join(name), text).unwrap();
    w(
        "control",
        "Source: containerd\nSection: admin\nPriority: optional\nMaintainer: Test <test@example.invalid>\nBuild-Depends: debhelper (>= 9)\nRules-Requires-Root: no\nStandards-Version: 4.1.0\n\nPackage: containerd\nArchitecture: all\nDescription: containerd test package\n built by the docker-upgrade-guard tests\n",
    );
    w(
        "changelog",
        &format!("containerd ({version}) unstable; urgency=medium\n\n  * Test package.\n\n -- Test <test@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n"),
    );
    w("compat", "9\n");
    w("containerd.service", shapes::CONTAINERD_SERVICE);
    if init_script {
        w(
            "containerd.init",
            "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: containerd\n# Required-Start: $remote_fs\n# Required-Stop: $remote_fs\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n# Short-Description: containerd\n### END INIT INFO\nexit 0\n",
        );
    }
    w(
        "rules",
        "#!/usr/bin/make -f\n%:\n\tdh $@ --with systemd\n\noverride_dh_systemd_start:\n\tdh_systemd_start -r\n\noverride_dh_installinit:\n\tdh_installinit --no-restart-after-upgrade\n",
    );
    std::fs::set_permissions(debian.join("rules"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new("dpkg-buildpackage")
        .args(["-us", "-uc", "-b"])
        .current_dir(&src)
        .output()
        .expect("dpkg-buildpackage (dpkg-dev, debhelper) is needed for this test");
    assert!(
        o.status.success(),
        "dpkg-buildpackage: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    dir.join(format!("containerd_{version}_all.deb"))
}

/// A node with the built containerd and a docker.io whose docker.service is
/// `BindsTo=containerd.service` (and whose own prerm stops only on remove).
fn node(containerd: &Path) -> TestRoot {
    let t = TestRoot::new();
    let debs = tempfile::tempdir().unwrap();
    let docker =
        shapes::docker_deb("20.10.24-1", shapes::DOCKER_PRERM_REMOVE_ONLY).build(debs.path());
    ok(&t.dpkg(
        &["-i", containerd.to_str().unwrap(), docker.to_str().unwrap()],
        false,
    ));
    t
}

fn audit(t: &TestRoot) -> Value {
    let o = t.tool(&["audit", "--format", "json"]);
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn containerd_findings(v: &Value) -> Vec<&Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"] == "containerd")
        .collect()
}

/// The debhelper output this module is about: the stop sits under the init-script test.
#[test]
fn debhelper_puts_the_init_stop_under_a_file_test() {
    let t = node(&built().no_init);
    let preinst =
        std::fs::read_to_string(t.path().join("var/lib/dpkg/info/containerd.preinst")).unwrap();
    assert!(
        preinst.contains("[ \"$1\" = upgrade ] && [ -x \"/etc/init.d/containerd\" ]")
            && preinst.contains("invoke-rc.d containerd stop"),
        "{preinst}"
    );
}

#[test]
fn no_init_script_on_the_node_means_no_stop() {
    let t = node(&built().no_init);
    assert!(!t.path().join("etc/init.d/containerd").exists());
    let v = audit(&t);
    let fs = containerd_findings(&v);
    assert!(
        fs.iter()
            .all(|f| f["severity"] != "CRITICAL" && f["severity"] != "WARNING"),
        "{v:#}"
    );
    let inert: Vec<&&Value> = fs.iter().filter(|f| f["kind"] == "inert").collect();
    assert_eq!(inert.len(), 1, "{v:#}");
    let summary = inert[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("only while /etc/init.d/containerd exists")
            && summary.contains("does not on this node"),
        "{summary}"
    );
    assert_eq!(inert[0]["script"], "preinst", "{v:#}");
    assert_eq!(v["severity"], "OK", "{v:#}");
}

#[test]
fn an_init_script_on_the_node_makes_the_stop_real() {
    let t = node(&built().no_init);
    // Left behind by an older version, say: not shipped by the installed package.
    t.write("/etc/init.d/containerd", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(
        t.path().join("etc/init.d/containerd"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let summary = critical_containerd_summary(&t);
    assert!(summary.contains("BindsTo=containerd.service"), "{summary}");
    assert!(
        summary.contains("only while /etc/init.d/containerd exists")
            && summary.contains("it does on this node"),
        "{summary}"
    );
}

#[test]
fn an_init_script_the_package_ships_makes_the_stop_real() {
    let t = node(&built().with_init);
    assert!(t.path().join("etc/init.d/containerd").exists());
    let v = audit(&t);
    assert_eq!(v["severity"], "CRITICAL", "{v:#}");

    // Removed by the admin, but shipped: the upgrade can bring it back. Conservative.
    std::fs::remove_file(t.path().join("etc/init.d/containerd")).unwrap();
    let summary = critical_containerd_summary(&t);
    assert_ships_init_script(&summary);
}

#[test]
fn an_init_script_the_next_version_ships_makes_the_stop_real() {
    // 1.0-1 installed without an init script; 1.1-1, which ships one, in apt's archive cache.
    let t = node(&built().no_init);
    let cache = t.path().join("var/cache/apt/archives");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(&built().with_init, cache.join("containerd_1.1-1_all.deb")).unwrap();
    let summary = critical_containerd_summary(&t);
    assert_ships_init_script(&summary);
}

/// The audit of `t` is CRITICAL, and this is the summary of its CRITICAL containerd finding.
fn critical_containerd_summary(t: &TestRoot) -> String {
    let v = audit(t);
    assert_eq!(v["severity"], "CRITICAL", "{v:#}");
    let f = containerd_findings(&v)
        .into_iter()
        .find(|f| f["severity"] == "CRITICAL")
        .unwrap_or_else(|| panic!("{v:#}"));
    f["summary"].as_str().unwrap().to_string()
}

/// The finding says the stop is real because containerd ships the init script.
fn assert_ships_init_script(summary: &str) {
    assert!(
        summary.contains("/etc/init.d/containerd exists")
            && summary.contains("but containerd ships it"),
        "{summary}"
    );
}
