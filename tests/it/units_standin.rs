//! The service layer against the project's recording systemctl stand-in, and unit resolution
//! cross-checked against the stand-in's own model of stop propagation.

use crate::support::{shapes, TestRoot};
use docker_upgrade_guard::health;
use docker_upgrade_guard::root::Root;
use docker_upgrade_guard::service::{ServiceManager, Systemctl};
use docker_upgrade_guard::units;
use std::process::Command;
use std::time::Duration;

const UNITS: [&str; 3] = ["containerd.service", "docker.socket", "docker.service"];

fn focal_root() -> TestRoot {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    t.write(
        "/lib/systemd/system/docker.service",
        shapes::DOCKER_SERVICE_BINDSTO,
    );
    t.write("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET);
    t.write(
        "/lib/systemd/system/containerd.service",
        shapes::CONTAINERD_SERVICE,
    );
    t
}

fn active(sc: &Systemctl) -> Vec<bool> {
    sc.show(&UNITS)
        .unwrap()
        .iter()
        .map(docker_upgrade_guard::service::UnitState::is_active)
        .collect()
}

#[test]
fn stop_of_containerd_predicted_then_undone() {
    let t = focal_root();
    let sc = Systemctl::new(Some(t.systemctl()));
    // The stand-in serves /_ping only while docker.service is active.
    assert_eq!(active(&sc), [true, true, true]);

    // What the unit files say will happen...
    let root = Root::new(t.path());
    let loaded: Vec<_> = UNITS
        .iter()
        .map(|u| units::load(&root, u).unwrap().unwrap())
        .collect();
    let mut predicted: Vec<String> = units::stop_propagation(&loaded, "containerd.service")
        .into_iter()
        .map(|p| p.unit)
        .collect();
    predicted.sort();

    // ...is what the (independently written) stand-in does on a prerm's stop.
    let o = Command::new(t.systemctl())
        .args(["stop", "containerd.service"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let states = sc.show(&UNITS).unwrap();
    let mut stopped: Vec<String> = states
        .iter()
        .filter(|s| !s.is_active() && s.unit != "containerd.service")
        .map(|s| s.unit.clone())
        .collect();
    stopped.sort();
    assert_eq!(predicted, stopped);
    assert_eq!(predicted, ["docker.service", "docker.socket"]);
    assert_eq!(states[2].main_pid, 0);

    // Starting docker.service (it Requires= the socket, BindsTo= containerd) brings all back.
    t.clear_calls();
    sc.start("docker.service", Duration::from_secs(10)).unwrap();
    assert_eq!(active(&sc), [true, true, true]);
    assert!(t
        .calls()
        .starts_with("--no-ask-password start -- docker.service\n"));
    let took =
        health::wait_docker(&t.path().join("run/docker.sock"), Duration::from_secs(5)).unwrap();
    assert!(took < Duration::from_secs(5));

    // (A restart of containerd is not exercised here: the stand-in's restart propagation
    // loops between docker.service Requires=docker.socket and docker.socket PartOf=.)

    // Leave no ping server behind.
    let _ = Command::new(t.systemctl())
        .args(["stop", "docker.service"])
        .output();
}

#[test]
fn failures_and_hangs_of_the_standin() {
    let t = focal_root();
    let mut state = t.state();
    state["units"]["docker.service"]["active"] = serde_json::json!(false);
    state["fail_start"] = serde_json::json!(["docker.service"]);
    state["hang"] = serde_json::json!(["restart containerd.service"]);
    state["system_state"] = serde_json::json!("degraded");
    t.set_state(&state);
    let sc = Systemctl::new(Some(t.systemctl()));
    let err = sc
        .start("docker.service", Duration::from_secs(10))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "systemctl start docker.service failed (exit status 1): Job for docker.service failed."
    );
    let err = sc
        .restart("containerd.service", Duration::from_millis(800))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "systemctl restart containerd.service did not answer within 0.8 s"
    );
    assert_eq!(sc.system_state().unwrap(), "degraded");
}
