//! `audit` and the containers: a postinst that restarts docker on upgrade (Ubuntu focal/bionic
//! docker.io's `deb-systemd-invoke try-restart`) is a WARNING naming the line unless live-restore
//! is on; the running containers without a restart policy are named when docker is exposed —
//! asked through the Engine API stand-in, and only when systemd says docker.service is active.
use crate::audit_cli::copy_tree;
use crate::support::engine::{Ctr, StandIn};
use crate::support::{TestRoot, BIN};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The Ubuntu focal-updates shape: try-restart on every upgrade (`$2` set), start on install.
const UBUNTU_POSTINST: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_systemd_start/12.10ubuntu1\nif [ \"$1\" = \"configure\" ] || [ \"$1\" = \"abort-upgrade\" ] || [ \"$1\" = \"abort-deconfigure\" ] || [ \"$1\" = \"abort-remove\" ] ; then\n\tif [ -d /run/systemd/system ]; then\n\t\tsystemctl --system daemon-reload >/dev/null || true\n\t\tif [ -n \"$2\" ]; then\n\t\t\tdeb-systemd-invoke try-restart 'docker.service' 'docker.socket' >/dev/null || true\n\t\telse\n\t\t\tdeb-systemd-invoke start 'docker.service' 'docker.socket' >/dev/null || true\n\t\tfi\n\tfi\nfi\n# End automatically added section\n";

/// A test root (with the systemctl stand-in) holding the fixture layers.
fn node(layers: &[&str], docker_active: bool) -> TestRoot {
    let t = TestRoot::new();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit");
    for l in layers {
        copy_tree(&fx.join(l), t.path());
    }
    std::fs::create_dir_all(t.path().join("var/lib/dpkg/updates")).unwrap();
    t.set_state(&serde_json::json!({"units": {
        "docker.service": {"active": docker_active, "load": "loaded", "file_state": "enabled"}}}));
    t
}

fn audit(t: &TestRoot, args: &[&str]) -> (i32, String) {
    let o = Command::new(BIN)
        .arg("--root")
        .arg(t.path())
        .arg("--systemctl")
        .arg(t.systemctl())
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn json(t: &TestRoot) -> Value {
    serde_json::from_str(&audit(t, &["--format", "json"]).1).unwrap()
}

#[test]
fn a_postinst_try_restart_of_docker_is_a_warning_naming_the_line() {
    let t = node(&["bookworm"], false);
    t.write("/var/lib/dpkg/info/docker.io.postinst", UBUNTU_POSTINST);
    let (code, out) = audit(&t, &["--color", "never"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("WARNING   docker.io 20.10.24+dfsg1-1+deb12u1+b6 postinst"),
        "{out}"
    );
    assert!(out.contains("docker.io.postinst:8 restarts docker.service on upgrade (deb-systemd-invoke try-restart 'docker.service' 'docker.socket' >/dev/null || true), and live-restore is off"), "{out}");
    assert!(out.contains("consequence: the next docker.io upgrade restarts dockerd: containers without a restart policy stay down"), "{out}");
    let v = json(&t);
    assert_eq!(v["schema_version"], 2);
    let f = &v["findings"][0];
    assert_eq!(
        (f["kind"].as_str(), f["severity"].as_str()),
        (Some("restart"), Some("WARNING"))
    );
    assert_eq!(f["evidence"][0]["line"], 8);
    // With live-restore on, a restart of dockerd keeps the containers: nothing to say.
    t.write("/etc/docker/daemon.json", "{\"live-restore\": true}\n");
    assert_eq!(audit(&t, &[]).0, 0);
    // Debian's own postinst only starts docker: OK (bookworm_as_shipped_is_ok holds the rest).
}

#[test]
fn containers_without_a_restart_policy_are_named_when_docker_is_exposed() {
    let t = node(&["bookworm", "docker-io-prerm"], true);
    let s = StandIn::serve(
        &t.path().join("run/docker.sock"),
        vec![
            Ctr::new("web", "nginx:1.25", "no"),
            Ctr::new("keep", "busybox", "always"),
            Ctr::new("db", "postgres:16", "no"),
            Ctr::new("old", "busybox", "no").stopped_at("2024-01-01T00:00:00Z"),
        ],
    );
    let (code, out) = audit(&t, &["--color", "never"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("  containers at risk: the next docker.io upgrade will take down 2 containers for good: web, db (no restart policy; live-restore off)\n"),
        "{out}"
    );
    let v = json(&t);
    assert_eq!(v["system"]["containers_at_risk"]["count"], 2);
    assert_eq!(
        v["system"]["containers_at_risk"]["names"],
        serde_json::json!(["web", "db"])
    );
    let (_, prom) = audit(&t, &["--format", "prometheus"]);
    assert!(
        prom.lines()
            .any(|l| l == "docker_upgrade_guard_containers_at_risk 2"),
        "{prom}"
    );
    assert!(s.connections() > 0);
}

#[test]
fn a_stopped_docker_is_not_started_to_ask() {
    let t = node(&["bookworm", "docker-io-prerm"], false);
    let s = StandIn::serve(
        &t.path().join("run/docker.sock"),
        vec![Ctr::new("web", "nginx", "no")],
    );
    let v = json(&t);
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["system"]["containers_at_risk"], Value::Null);
    let notes = v["notes"].to_string();
    assert!(notes.contains("docker.service is not running"), "{notes}");
    assert_eq!(s.connections(), 0, "{:?}", s.requests());
}

#[test]
fn nothing_exposed_nothing_at_risk_and_docker_not_asked() {
    let t = node(&["bookworm"], true);
    let s = StandIn::serve(
        &t.path().join("run/docker.sock"),
        vec![Ctr::new("web", "nginx", "no")],
    );
    let v = json(&t);
    assert_eq!(v["exit_code"], 0, "{v:#}");
    assert_eq!(v["system"]["containers_at_risk"]["count"], 0);
    assert_eq!(s.connections(), 0);
}
