//! Containers across an upgrade, through the REAL apt and dpkg with the systemctl stand-in and
//! the Engine API stand-in (tests/support/engine.rs) on `<root>/run/docker.sock`, tied together
//! like dockerd under systemd: while docker.service is stopped nothing answers, and a new main
//! PID means every running container went down and only `always`/`unless-stopped` ones are back.
use crate::hook_apt::{apt_root, containerd, docker, node_units, C1, D1, D2};
use crate::support::engine::{id_for, Ctr, Mode, StandIn};
use crate::support::{ok, AptRoot, Deb};

/// containerd C1 and docker.io D1 installed and running, the Engine stand-in serving
/// `containers`; `config` is the tool's config.
fn node(config: &str, containers: Vec<Ctr>) -> (AptRoot, StandIn) {
    let a = apt_root(
        &[containerd(C1), docker(D1), docker(D2), hello("1")],
        config,
    );
    a.installed_v1();
    // The systemctl stand-in must not serve docker's socket itself: the Engine stand-in does.
    a.t.set_state(&serde_json::json!({
        "units": node_units(),
        "containerd_sock": a.t.path().join("run/containerd/containerd.sock"),
    }));
    let s = StandIn::serve(&a.t.path().join("run/docker.sock"), containers);
    s.follow_systemctl(&a.t.path().join("fakebin/state.json"));
    (a, s)
}

fn hello(v: &str) -> Deb {
    Deb::new("hello", v).file("/usr/share/doc/hello/README", v)
}

fn three() -> Vec<Ctr> {
    vec![
        Ctr::new("keep", "busybox:stable", "always"),
        Ctr::new("web", "nginx:1.25", "no"),
        Ctr::new("db", "postgres:16", "no"),
        Ctr::new("adminstopped", "busybox:stable", "no").stopped_at("2024-01-01T00:00:00Z"),
    ]
}

fn events(a: &AptRoot) -> Vec<serde_json::Value> {
    std::fs::read_to_string(a.t.path().join("var/log/docker-upgrade-guard/events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn container_lines(out: &str) -> Vec<&str> {
    AptRoot::tool_lines(out)
        .into_iter()
        .filter(|l| l.contains("container"))
        .collect()
}

#[test]
fn docker_io_upgrade_names_the_containers_that_did_not_come_back() {
    let (a, s) = node("jit_patch = false\n", three());
    let out = a.install(&[("docker.io", D2)]);
    assert_eq!(
        container_lines(&out),
        [
            format!("docker-upgrade-guard: container web (nginx:1.25, restart policy no) was running before the upgrade of docker.io {D1} → {D2} and is not running now"),
            format!("docker-upgrade-guard: container db (postgres:16, restart policy no) was running before the upgrade of docker.io {D1} → {D2} and is not running now"),
            "docker-upgrade-guard: 1 of 3 containers came back by their restart policy; 2 did not: web, db".to_string(),
        ],
        "{out}"
    );
    assert!(a.t.is_active("docker.service"), "{out}");
    assert!(!s.container("web").running && s.container("keep").running);
    let st = s.state.lock().unwrap();
    assert_eq!(
        st.while_down, 0,
        "a request while docker was stopped: {:?}",
        st.requests
    );
    assert!(
        !st.requests.iter().any(|r| r.starts_with("POST")),
        "{:?}",
        st.requests
    );
    drop(st);
    let evs = events(&a);
    let down: Vec<&str> = evs
        .iter()
        .filter(|e| e["kind"] == "container-down")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(down.len(), 2, "{evs:?}");
    assert!(down[0].contains("container web (nginx:1.25"), "{down:?}");
    assert!(evs.iter().any(|e| e["kind"] == "container-down"
        && e["package"] == "docker.io"
        && e["old_version"] == D1));
    let status = String::from_utf8_lossy(&a.t.tool(&["status"]).stdout).to_string();
    assert!(
        status.contains("container-down: container db (postgres:16, restart policy no)"),
        "{status}"
    );
}

#[test]
fn previously_running_starts_the_same_containers_again_and_nothing_else() {
    let (a, s) = node(
        "jit_patch = false\nrestart_containers = \"previously-running\"\n",
        three(),
    );
    let out = a.install(&[("docker.io", D2)]);
    let lines = container_lines(&out);
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].ends_with("container web (nginx:1.25, restart policy no) was running before the upgrade of docker.io 19.03.8-0ubuntu1 → 19.03.8-0ubuntu1.1 and was not running after it; started it again (restart_containers = \"previously-running\")"),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "docker-upgrade-guard: 1 of 3 containers came back by their restart policy; 2 did not: web, db; started again: web, db"
    );
    assert!(s.container("web").running && s.container("db").running);
    assert!(
        !s.container("adminstopped").running,
        "the admin's stopped container stays stopped"
    );
    let posts: Vec<String> = s
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(
        posts,
        [
            format!("POST /v1.41/containers/{}/start", id_for("web")),
            format!("POST /v1.41/containers/{}/start", id_for("db")),
        ]
    );
    let kinds: Vec<String> = events(&a)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "container-restarted").count(),
        2,
        "{kinds:?}"
    );
}

#[test]
fn guard_on_nothing_goes_down_and_nothing_is_reported() {
    let (a, s) = node("", three());
    let out = a.install(&[("docker.io", D2)]);
    assert!(container_lines(&out).is_empty(), "{out}");
    assert!(s.container("web").running);
    // The pre stage listed; the post stage, seeing docker's main PID unchanged, asked nothing.
    let reqs = s.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.ends_with("/containers/json"))
            .count(),
        1,
        "{reqs:?}"
    );
}

#[test]
fn a_broken_api_costs_the_container_list_not_the_hook() {
    for mode in [Mode::Garbage, Mode::Error500, Mode::Hang] {
        let (a, s) = node("jit_patch = false\nping_timeout_secs = 3\n", three());
        s.set_mode(mode);
        let out = a.install(&[("docker.io", D2)]);
        let lines = AptRoot::tool_lines(&out);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("docker-upgrade-guard: cannot list docker's containers (")),
            "{mode:?}: {out}"
        );
        assert!(!out.contains('\x1b'), "escaped: {out}");
        // docker itself is still started again by the post stage.
        assert!(a.t.is_active("docker.service"), "{mode:?}: {out}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("docker.service were stopped by the upgrade of docker.io")),
            "{mode:?}: {out}"
        );
    }
}

#[test]
fn names_are_escaped() {
    let (a, _s) = node(
        "jit_patch = false\n",
        vec![Ctr::new("evil\x1b]0;owned\x07", "img\x1b[2J", "no")],
    );
    let out = a.install(&[("docker.io", D2)]);
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(
        out.contains("container evil\\x1b]0;owned\\x07 (img\\x1b[2J, restart policy no)"),
        "{out}"
    );
}

/// The no-op path: an operation that touches no watched package makes no request to docker,
/// through apt and through dpkg's own hooks.
#[test]
fn the_no_op_path_makes_no_request_to_docker() {
    let (a, s) = node("jit_patch = false\n", three());
    let out = a.install(&[("hello", "1")]);
    assert!(AptRoot::tool_lines(&out).is_empty(), "{out}");
    let deb = hello("2").build(a.t.path());
    ok(&a.t.dpkg(&["-i", deb.to_str().unwrap()], true));
    assert_eq!(s.connections(), 0, "{:?}", s.requests());
}

/// docker.service stopped by the admin (its socket still listening): the hooks never connect,
/// since a connection would socket-activate docker.
#[test]
fn a_stopped_docker_is_never_asked() {
    let (a, s) = node("jit_patch = false\n", three());
    let mut units = node_units();
    units["docker.service"]["active"] = false.into();
    a.t.set_state(&serde_json::json!({"units": units}));
    let out = a.install(&[("docker.io", D2)]);
    assert!(container_lines(&out).is_empty(), "{out}");
    assert_eq!(s.connections(), 0, "{:?}\n{out}", s.requests());
}

/// The Ubuntu focal/bionic docker.io shape: the prerm leaves docker alone, the postinst
/// `try-restart`s it on upgrade. Docker runs afterwards (nothing to start), but its main PID
/// changed: the containers without a restart policy are named all the same.
#[test]
fn a_postinst_try_restart_is_reported_the_same_way() {
    const POSTINST: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && [ -n \"$2\" ]; then\n\tdeb-systemd-invoke try-restart 'docker.service' 'docker.socket' >/dev/null || true\nfi\n";
    let d3 = "19.03.8-0ubuntu1.2";
    let ubuntu =
        crate::support::shapes::docker_deb(d3, crate::support::shapes::DOCKER_PRERM_REMOVE_ONLY)
            .script("postinst", POSTINST);
    let (a, s) = node("", three());
    a.publish(&[ubuntu]);
    let pid = a.t.state()["units"]["docker.service"]["main_pid"].as_u64();
    let out = a.install(&[("docker.io", d3)]);
    assert_ne!(
        a.t.state()["units"]["docker.service"]["main_pid"].as_u64(),
        pid,
        "{out}"
    );
    assert_eq!(
        container_lines(&out),
        [
            format!("docker-upgrade-guard: container web (nginx:1.25, restart policy no) was running before the upgrade of docker.io {D1} → {d3} and is not running now"),
            format!("docker-upgrade-guard: container db (postgres:16, restart policy no) was running before the upgrade of docker.io {D1} → {d3} and is not running now"),
            "docker-upgrade-guard: 1 of 3 containers came back by their restart policy; 2 did not: web, db".to_string(),
        ],
        "{out}"
    );
    assert_eq!(s.state.lock().unwrap().while_down, 0);
}
