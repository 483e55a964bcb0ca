//! The Engine API client against the stand-in (tests/support/engine.rs): what it reads, and
//! that a slow, hung, erroring, garbage-answering or huge API costs a bounded time and a typed
//! error, never more.
use crate::support::engine::{id_for, Ctr, Mode, StandIn};
use docker_upgrade_guard::engine::api::{Engine, Started, MAX_CONTAINERS};
use docker_upgrade_guard::engine::http::Error;
use std::time::{Duration, Instant};

fn standin(containers: Vec<Ctr>) -> (tempfile::TempDir, StandIn) {
    let d = tempfile::tempdir().unwrap();
    let s = StandIn::serve(&d.path().join("run/docker.sock"), containers);
    (d, s)
}

fn engine(s: &StandIn, budget: Duration) -> Engine {
    Engine::new(&s.path, Instant::now() + budget)
}

#[test]
fn lists_running_containers_with_policy_on_the_daemons_api_version() {
    let (_d, s) = standin(vec![
        Ctr::new("web", "nginx:1.25", "no"),
        Ctr::new("db\x1b[31m", "postgres:16", "always"),
        Ctr::new("old", "busybox", "no").stopped_at("2024-01-01T00:00:00Z"),
    ]);
    let mut e = engine(&s, Duration::from_secs(20));
    e.ping().unwrap();
    let l = e.list_running().unwrap();
    assert_eq!(l.total, 2);
    let got: Vec<(&str, &str, Option<&str>)> = l
        .containers
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.image.as_str(),
                c.restart_policy.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("web", "nginx:1.25", Some("no")),
            ("db\x1b[31m", "postgres:16", Some("always"))
        ]
    );
    assert_eq!(l.containers[0].id, id_for("web"));
    assert_eq!(
        l.containers[0].started_at.as_deref(),
        Some("2024-01-01T00:00:00.5Z")
    );
    let reqs = s.requests();
    assert_eq!(reqs[0], "GET /_ping");
    assert_eq!(reqs[1], "GET /v1.41/containers/json");
    assert!(reqs[2].starts_with("GET /v1.41/containers/"), "{reqs:?}");
    let i = e.inspect(&id_for("old")).unwrap();
    assert!(!i.running);
    assert_eq!(i.finished_at, Some(1_704_067_200));
}

/// Without a ping, the list goes on the daemon's default version and its header sets the
/// version of the inspects after it: one round trip fewer for the hook's pre stage.
#[test]
fn a_list_without_a_ping_learns_the_version_from_its_answer() {
    let (_d, s) = standin(vec![Ctr::new("web", "nginx:1.25", "always")]);
    let mut e = engine(&s, Duration::from_secs(20));
    let l = e.list_running().unwrap();
    assert_eq!(l.containers.len(), 1);
    assert_eq!(l.containers[0].restart_policy.as_deref(), Some("always"));
    let reqs = s.requests();
    assert_eq!(
        reqs,
        [
            "GET /containers/json".to_string(),
            format!("GET /v1.41/containers/{}/json", id_for("web"))
        ]
    );
}

/// One inspect per running container (the restart policy is only there): they go several at
/// a time, so that a host with many containers does not pay one round trip after another in
/// every watched operation. The result is the same, in the list's order.
#[test]
fn the_inspects_go_several_at_a_time_and_keep_the_lists_order() {
    let ctrs: Vec<Ctr> = (0..16)
        .map(|i| {
            Ctr::new(
                &format!("c{i}"),
                "busybox",
                if i % 2 == 0 { "always" } else { "no" },
            )
        })
        .collect();
    let (_d, s) = standin(ctrs);
    s.set_mode(Mode::Slow(Duration::from_millis(200)));
    let mut e = engine(&s, Duration::from_secs(30));
    let t = Instant::now();
    let l = e.list_running().unwrap();
    let took = t.elapsed();
    let got: Vec<(&str, Option<&str>)> = l
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.restart_policy.as_deref()))
        .collect();
    let want: Vec<(String, Option<&str>)> = (0..16)
        .map(|i| {
            (
                format!("c{i}"),
                Some(if i % 2 == 0 { "always" } else { "no" }),
            )
        })
        .collect();
    let want: Vec<(&str, Option<&str>)> = want.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    assert_eq!(got, want);
    // One after another: the list and 16 inspects of 200 ms each, 3.4 s.
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(s.connections(), 17);
}

#[test]
fn ten_thousand_containers_are_capped_and_bounded() {
    let many: Vec<Ctr> = (0..10_000)
        .map(|i| Ctr::new(&format!("c{i}"), "busybox", "no"))
        .collect();
    let (_d, s) = standin(many);
    let mut e = engine(&s, Duration::from_secs(3));
    let t = Instant::now();
    e.ping().unwrap();
    let l = e.list_running().unwrap();
    assert_eq!(l.total, 10_000);
    assert_eq!(l.containers.len(), MAX_CONTAINERS);
    // The inspects stop at the deadline (the rest keep no policy); the listing ends near it.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(s.connections() <= 2 + MAX_CONTAINERS);
}

#[test]
fn slow_and_hung_apis_cost_a_timeout_within_the_bound() {
    let (_d, s) = standin(vec![Ctr::new("web", "nginx", "no")]);
    for mode in [Mode::Slow(Duration::from_secs(3)), Mode::Hang] {
        s.set_mode(mode);
        let mut e = engine(&s, Duration::from_millis(400));
        let t = Instant::now();
        assert_eq!(e.ping(), Err(Error::Timeout), "{mode:?}");
        assert_eq!(e.list_running(), Err(Error::Timeout), "{mode:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{mode:?}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn errors_and_garbage_are_typed() {
    let (_d, s) = standin(vec![Ctr::new("web", "nginx", "no")]);
    let mut e = engine(&s, Duration::from_secs(10));
    s.set_mode(Mode::Error500);
    assert_eq!(
        e.list_running(),
        Err(Error::Status(500, "boom \x1b[31mred\x1b[0m".into()))
    );
    s.set_mode(Mode::Garbage);
    assert!(matches!(e.list_running(), Err(Error::Garbage(_))));
    s.set_mode(Mode::Normal);
    assert_eq!(
        e.inspect(&id_for("nope")),
        Err(Error::Status(
            404,
            format!("No such container: {}", id_for("nope"))
        ))
    );
    assert!(matches!(e.inspect("../../x"), Err(Error::Garbage(_))));
    let mut gone = Engine::new(
        &s.path.with_file_name("missing.sock"),
        Instant::now() + Duration::from_secs(1),
    );
    assert!(matches!(gone.list_running(), Err(Error::Connect(_))));
}

#[test]
fn start_starts_the_same_container_once() {
    let (_d, s) = standin(vec![
        Ctr::new("web", "nginx", "no").stopped_at("2024-01-01T00:00:00Z")
    ]);
    let e = engine(&s, Duration::from_secs(10));
    assert_eq!(e.start(&id_for("web")), Ok(Started::Now));
    assert!(s.container("web").running);
    assert_eq!(e.start(&id_for("web")), Ok(Started::AlreadyRunning));
    assert!(matches!(
        e.start(&id_for("nope")),
        Err(Error::Status(404, _))
    ));
    let starts = s
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(starts, 3);
}
