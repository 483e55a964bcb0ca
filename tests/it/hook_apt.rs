//! The hook through the REAL apt: a local file repository (apt-ftparchive, `[trusted=yes]`),
//! apt-get confined to a temp root with APT_CONFIG, the project's own apt snippet installed by
//! `TestRoot::install_apt_hooks()`, dpkg's maintainer scripts talking to the recording
//! systemctl stand-in (which models BindsTo=/PartOf= stop and restart propagation).
//!
//! The focal shapes: containerd whose prerm stops it on every call and whose postinst only
//! starts it; docker.io whose prerm stops docker.service and docker.socket on every call.
//! - just-in-time guard off: the upgrade stops docker, the apt-post stage starts it again and
//!   says why;
//! - guard on (the default): the upgrade stops nothing; containerd, upgraded but still running
//!   the old binary, is restarted after the operation (`containerd_after_upgrade = "restart"`,
//!   docker restarts with it through BindsTo= and answers `/_ping`), or left alone ("leave").
use crate::support::{ok, shapes, AptRoot, Deb, TestRoot};
use std::io::{Read, Write};
use std::path::PathBuf;

pub(crate) const C1: &str = "1.3.3-0ubuntu2";
pub(crate) const C2: &str = "1.3.3-0ubuntu2.1";
pub(crate) const D1: &str = "19.03.8-0ubuntu1";
pub(crate) const D2: &str = "19.03.8-0ubuntu1.1";

pub(crate) fn containerd(v: &str) -> Deb {
    shapes::containerd_deb(v)
}

pub(crate) fn docker(v: &str) -> Deb {
    shapes::docker_deb(v, shapes::DOCKER_PRERM_ALWAYS_STOP)
}

pub(crate) const CONTAINERD_PID: u64 = 501;
pub(crate) const DOCKER_PID: u64 = 502;

/// A running focal-shaped node, with main PIDs (so that "kept running the old binary" and
/// "docker was not restarted" can be told from the stand-in's state).
pub(crate) fn node_units() -> serde_json::Value {
    let mut u = shapes::focal_units();
    u["containerd.service"]["main_pid"] = CONTAINERD_PID.into();
    u["docker.service"]["main_pid"] = DOCKER_PID.into();
    u
}

/// A temp root whose apt sees a file repository holding `debs`, with the shipped apt snippet
/// installed; `config` is written as the tool's config.toml.
pub(crate) fn apt_root(debs: &[Deb], config: &str) -> AptRoot {
    let t = TestRoot::new();
    t.set_units(&node_units());
    t.write("/etc/docker-upgrade-guard/config.toml", config);
    let a = AptRoot::new(t, true);
    a.publish(debs);
    a
}

impl AptRoot {
    /// `apt-get install` of exact versions; returns everything apt and the hooks printed.
    pub(crate) fn install(&self, pins: &[(&str, &str)]) -> String {
        let args: Vec<String> = pins.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let mut all = vec!["install"];
        all.extend(args.iter().map(String::as_str));
        ok(&self.apt(&all))
    }

    /// The node as the tests start it: containerd C1 and docker.io D1 installed, all running.
    pub(crate) fn installed_v1(&self) {
        self.install(&[("containerd", C1), ("docker.io", D1)]);
        self.t.set_units(&node_units());
        self.t.clear_calls();
    }

    pub(crate) fn main_pid(&self, unit: &str) -> u64 {
        self.t.state()["units"][unit]["main_pid"]
            .as_u64()
            .unwrap_or(0)
    }

    pub(crate) fn tool_lines(out: &str) -> Vec<&str> {
        out.lines()
            .filter(|l| l.starts_with("docker-upgrade-guard: "))
            .collect()
    }
}

/// What the stand-in did (its indented lines): `stopped docker.service (BindsTo=...)`, ...
pub(crate) fn did(t: &TestRoot) -> Vec<String> {
    t.calls()
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// The verb of one systemctl call logged by the stand-in (`--no-ask-password restart -- x`).
pub(crate) fn verb(call: &str) -> &str {
    if call.starts_with(' ') {
        return "";
    }
    call.split_whitespace()
        .find(|w| !w.starts_with('-'))
        .unwrap_or("")
}

/// GET /_ping on the stand-in's docker socket, as a client would.
pub(crate) fn ping(t: &TestRoot) -> Result<String, String> {
    let mut s = std::os::unix::net::UnixStream::connect(t.path().join("run/docker.sock"))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut r = String::new();
    s.read_to_string(&mut r).map_err(|e| e.to_string())?;
    Ok(r)
}

// ---- (a) containerd, guard off: the outage happens and the apt-post stage undoes it ----

#[test]
fn containerd_upgrade_guard_off_stops_docker_and_post_starts_it_again() {
    let a = apt_root(
        &[containerd(C1), containerd(C2), docker(D1)],
        "jit_patch = false\n",
    );
    a.installed_v1();
    let out = a.install(&[("containerd", C2)]);
    let did = did(&a.t);
    // The outage, as systemd would do it: the old prerm stops containerd, BindsTo= takes
    // docker.service down, PartOf= the socket; the postinst starts containerd only.
    assert_eq!(
        &did[..4],
        [
            "stopped containerd.service (explicit)",
            "stopped docker.service (BindsTo=containerd.service)",
            "stopped docker.socket (PartOf=docker.service)",
            "started containerd.service",
        ],
        "{did:?}\n{out}"
    );
    // Then our apt-post stage: socket first, then the daemon.
    assert_eq!(
        &did[4..],
        ["started docker.socket", "started docker.service"],
        "{did:?}\n{out}"
    );
    let lines = AptRoot::tool_lines(&out);
    assert_eq!(
        lines.len(),
        1,
        "one line, and no just-in-time guard: {lines:?}"
    );
    assert!(
        lines[0].starts_with(&format!(
            "docker-upgrade-guard: docker.socket, docker.service were stopped by the upgrade of containerd {C1} → {C2} ("
        )),
        "{out}"
    );
    for part in [
        "containerd's prerm line 5 stops containerd.service",
        "BindsTo=containerd.service",
        "started again",
        "docker answered in",
    ] {
        assert!(lines[0].contains(part), "{part:?} in {}", lines[0]);
    }
    assert!(a.t.is_active("docker.service") && a.t.is_active("docker.socket"));
    assert!(ping(&a.t).unwrap().contains("200 OK"));
    // containerd was stopped and started by its own scripts: it runs the new binary already,
    // so there is nothing to restart.
    assert!(!out.contains("old binary"), "{out}");
    // The installed prerm is untouched (the guard is off).
    let prerm =
        std::fs::read_to_string(a.t.path().join("var/lib/dpkg/info/containerd.prerm")).unwrap();
    assert_eq!(prerm, shapes::CONTAINERD_PRERM_ALWAYS_STOP);
}

// ---- (b) containerd, guard on: nothing stops; containerd restarted after, or left ----

/// A typo in config.toml: the hook says so and runs on the defaults — the just-in-time guard
/// included, so the upgrade still stops nothing.
#[test]
fn a_broken_config_does_not_switch_the_guard_off() {
    let a = apt_root(
        &[containerd(C1), containerd(C2), docker(D1)],
        "jit_pach = true\n",
    );
    a.installed_v1();
    let out = a.install(&[("containerd", C2)]);
    let calls = a.t.calls();
    assert!(
        !calls.lines().any(|l| verb(l) == "stop"),
        "no stop during the upgrade:\n{calls}\n{out}"
    );
    assert!(out.contains("jit_pach"), "the broken key is named:\n{out}");
    assert!(
        out.contains("just-in-time guard: patched containerd"),
        "{out}"
    );
}

#[test]
fn containerd_upgrade_guard_on_stops_nothing_and_restarts_containerd_with_docker() {
    let a = apt_root(&[containerd(C1), containerd(C2), docker(D1)], "");
    a.installed_v1();
    let out = a.install(&[("containerd", C2)]);
    let calls = a.t.calls();
    let did = did(&a.t);
    // During the operation: no stop at all (the postinst's `start` finds containerd running).
    assert!(
        !calls.lines().any(|l| verb(l) == "stop"),
        "no stop during the upgrade:\n{calls}\n{out}"
    );
    assert!(!did.iter().any(|d| d.starts_with("stopped")), "{did:?}");
    // After it: one restart of containerd, which systemd propagates to docker as a restart.
    assert_eq!(
        did,
        [
            "restarting containerd.service (explicit)",
            "started containerd.service",
            "restarting docker.service (BindsTo=containerd.service)",
            "started docker.service",
            "restarting docker.socket (PartOf=docker.service)",
            "started docker.socket",
        ],
        "{calls}\n{out}"
    );
    assert_eq!(
        calls.lines().filter(|l| verb(l) == "restart").count(),
        1,
        "{calls}"
    );
    let lines = AptRoot::tool_lines(&out);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "docker-upgrade-guard: just-in-time guard: patched containerd {C1} prerm: the upgrade will not stop containerd.service"
        ))),
        "{out}"
    );
    let restart_line = lines
        .iter()
        .find(|l| l.contains("kept running the old binary"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        restart_line.contains(&format!(
            "containerd.service kept running the old binary through the upgrade of containerd {C1} → {C2}; restarted it; docker answered in"
        )),
        "{restart_line}"
    );
    assert!(
        !out.contains("were stopped by"),
        "nothing was stopped: {out}"
    );
    assert!(a.t.is_active("containerd.service") && a.t.is_active("docker.service"));
    assert_ne!(
        a.main_pid("containerd.service"),
        CONTAINERD_PID,
        "new binary"
    );
    assert!(ping(&a.t).unwrap().contains("200 OK"));
}

#[test]
fn containerd_upgrade_guard_on_leave_restarts_nothing_and_says_so() {
    let a = apt_root(
        &[containerd(C1), containerd(C2), docker(D1)],
        "containerd_after_upgrade = \"leave\"\n",
    );
    a.installed_v1();
    let out = a.install(&[("containerd", C2)]);
    let calls = a.t.calls();
    assert!(
        !calls.lines().any(|l| matches!(verb(l), "stop" | "restart")),
        "{calls}\n{out}"
    );
    assert!(
        did(&a.t).is_empty(),
        "the stand-in changed nothing: {calls}"
    );
    assert_eq!(a.main_pid("containerd.service"), CONTAINERD_PID);
    assert_eq!(a.main_pid("docker.service"), DOCKER_PID);
    assert!(
        out.contains(&format!(
            "docker-upgrade-guard: containerd.service kept running the old binary through the upgrade of containerd {C1} → {C2}; left running (restart it to use the new version; containerd_after_upgrade = \"leave\")"
        )),
        "{out}"
    );
}

// ---- (c) docker.io's own always-stop prerm ----

#[test]
fn docker_io_upgrade_guard_off_stops_and_post_starts_again() {
    let a = apt_root(
        &[containerd(C1), docker(D1), docker(D2)],
        "jit_patch = false\n",
    );
    a.installed_v1();
    let out = a.install(&[("docker.io", D2)]);
    let did = did(&a.t);
    assert_eq!(
        did,
        [
            "stopped docker.service (explicit)",
            "stopped docker.socket (PartOf=docker.service)",
            "started docker.socket",
            "started docker.service",
        ],
        "{out}"
    );
    let lines = AptRoot::tool_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "docker-upgrade-guard: docker.socket, docker.service were stopped by the upgrade of docker.io {D1} → {D2} (docker.io's prerm line 5 stops docker.service docker.socket); started again; docker answered in"
        )),
        "{out}"
    );
    assert!(a.t.is_active("docker.service") && a.t.is_active("docker.socket"));
    // containerd was not part of the operation: left alone.
    assert_eq!(a.main_pid("containerd.service"), CONTAINERD_PID);
}

#[test]
fn docker_io_upgrade_guard_on_never_stops_docker() {
    let a = apt_root(&[containerd(C1), docker(D1), docker(D2)], "");
    a.installed_v1();
    let out = a.install(&[("docker.io", D2)]);
    let calls = a.t.calls();
    assert!(
        !calls.lines().any(|l| matches!(verb(l), "stop" | "restart")),
        "{calls}\n{out}"
    );
    assert!(did(&a.t).is_empty(), "{calls}");
    assert_eq!(
        a.main_pid("docker.service"),
        DOCKER_PID,
        "dockerd never restarted"
    );
    assert_eq!(a.main_pid("containerd.service"), CONTAINERD_PID);
    let lines = AptRoot::tool_lines(&out);
    assert_eq!(lines.len(), 1, "only the guard's line: {lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "docker-upgrade-guard: just-in-time guard: patched docker.io {D1} prerm: the upgrade will not stop docker.service, docker.socket"
        )),
        "{out}"
    );
    let status = std::fs::read_to_string(a.t.path().join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains(&format!("Version: {D2}")), "{status}");
}

// ---- unattended-upgrades' minimal steps: one apt operation (pkgs → dpkg → post) per step ----

const C3: &str = "1.3.3-0ubuntu2.2";

impl AptRoot {
    /// Also registers our dpkg file trigger with the shipped postinst (as the .deb does): apt's
    /// dpkg runs process it, and inside apt it must return at once.
    fn with_dpkg_hooks(self) -> AptRoot {
        self.t.install_dpkg_trigger();
        self
    }

    /// One step: clears the stand-in's log, runs apt, returns (apt's output, the stand-in's log).
    fn step(&self, pins: &[(&str, &str)]) -> (String, String) {
        self.t.clear_calls();
        let out = self.install(pins);
        (out, self.t.calls())
    }

    fn record(&self) -> PathBuf {
        self.t.path().join("run/docker-upgrade-guard/txn.json")
    }
}

fn count(calls: &str, verb_: &str, unit: &str) -> usize {
    calls
        .lines()
        .filter(|l| verb(l) == verb_ && l.split_whitespace().any(|w| w == unit))
        .count()
}

fn hello(v: &str) -> Deb {
    Deb::new("hello", v).file("/usr/share/doc/hello/README", v)
}

/// Three steps with the guard off, with apt's AND dpkg's hooks in place: each outage is undone
/// in its own step, named after its own package, exactly once; a step without a watched
/// package costs no systemctl call at all.
#[test]
fn minimal_steps_each_outage_undone_once_in_its_own_step() {
    let a = apt_root(
        &[
            containerd(C1),
            containerd(C2),
            docker(D1),
            docker(D2),
            hello("1"),
            hello("2"),
        ],
        "jit_patch = false\n",
    )
    .with_dpkg_hooks();
    a.installed_v1();
    a.install(&[("hello", "1")]);

    let (out, calls) = a.step(&[("containerd", C2)]);
    let lines = AptRoot::tool_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains(&format!("stopped by the upgrade of containerd {C1} → {C2}")),
        "{out}"
    );
    assert_eq!(count(&calls, "start", "docker.service"), 1, "{calls}");
    assert!(!a.record().exists(), "closed after the step");

    let (out, calls) = a.step(&[("docker.io", D2)]);
    let lines = AptRoot::tool_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains(&format!("stopped by the upgrade of docker.io {D1} → {D2}")),
        "{out}"
    );
    assert!(
        !lines[0].contains("containerd"),
        "step 1 is not told again: {out}"
    );
    assert_eq!(count(&calls, "start", "docker.service"), 1, "{calls}");
    assert_eq!(count(&calls, "start", "containerd.service"), 0, "{calls}");

    let (out, calls) = a.step(&[("hello", "2")]);
    assert!(AptRoot::tool_lines(&out).is_empty(), "{out}");
    assert_eq!(
        calls, "",
        "a step without a watched package asks systemd nothing"
    );
    assert!(a.t.is_active("docker.service") && a.t.is_active("docker.socket"));
}

/// The guard on, several steps: containerd is restarted once, in the step that upgraded it;
/// the docker.io step after it restarts nothing (its dpkg.log part has no containerd change).
#[test]
fn minimal_steps_containerd_restarted_once() {
    let a = apt_root(
        &[containerd(C1), containerd(C2), docker(D1), docker(D2)],
        "",
    )
    .with_dpkg_hooks();
    a.installed_v1();
    let (out, calls) = a.step(&[("containerd", C2)]);
    assert_eq!(
        count(&calls, "restart", "containerd.service"),
        1,
        "{calls}\n{out}"
    );
    let docker_pid = a.main_pid("docker.service");
    let containerd_pid = a.main_pid("containerd.service");
    let (out, calls) = a.step(&[("docker.io", D2)]);
    assert!(
        !calls
            .lines()
            .any(|l| matches!(verb(l), "stop" | "restart" | "start")),
        "{calls}\n{out}"
    );
    assert!(!out.contains("old binary"), "{out}");
    assert_eq!(a.main_pid("docker.service"), docker_pid);
    assert_eq!(a.main_pid("containerd.service"), containerd_pid);
}

/// docker.service fails to start after step 1's outage. Step 2 (docker.io's own upgrade) and
/// step 3 (containerd again) must not try it again: their "before" says it was not running.
/// What step 2's prerm did stop (the socket, which step 1 did bring back) is started again.
#[test]
fn minimal_steps_failed_start_is_not_retried() {
    let a = apt_root(
        &[
            containerd(C1),
            containerd(C2),
            containerd(C3),
            docker(D1),
            docker(D2),
        ],
        "jit_patch = false\n",
    );
    a.installed_v1();
    let mut st = a.t.state();
    st["fail_start"] = serde_json::json!(["docker.service"]);
    a.t.set_state(&st);

    let (out, calls) = a.step(&[("containerd", C2)]);
    assert!(out.contains("starting docker.service failed"), "{out}");
    assert_eq!(count(&calls, "start", "docker.service"), 1, "{calls}");

    let (out, calls) = a.step(&[("docker.io", D2)]);
    assert_eq!(
        count(&calls, "start", "docker.service"),
        0,
        "{calls}\n{out}"
    );
    assert_eq!(count(&calls, "start", "docker.socket"), 1, "{calls}\n{out}");
    assert!(!out.contains("docker.service failed"), "{out}");

    let (out, calls) = a.step(&[("containerd", C3)]);
    assert_eq!(
        count(&calls, "start", "docker.service"),
        0,
        "{calls}\n{out}"
    );
    assert!(!a.t.is_active("docker.service"));
}

/// When a step's post stage did not run (another tool's Post-Invoke line failed first, and apt
/// skips the hooks after a failing one), the next step's snapshot must not overwrite the
/// "before": docker was running before step 1, so the next post stage starts it.
#[test]
fn before_survives_a_step_whose_post_stage_did_not_run() {
    let a = apt_root(
        &[containerd(C1), containerd(C2), docker(D1), docker(D2)],
        "jit_patch = false\n",
    );
    a.installed_v1();
    // Step 1 with a Post-Invoke that fails before ours.
    let conf =
        a.t.path()
            .join("etc/apt/apt.conf.d/99zz-docker-upgrade-guard");
    let ours = std::fs::read_to_string(&conf).unwrap();
    let failing = a.t.path().join("etc/apt/apt.conf.d/99yy-other-tool");
    std::fs::write(&failing, "DPkg::Post-Invoke { \"false\"; };\n").unwrap();
    let o = a.apt(&["install", &format!("containerd={C2}")]);
    assert!(!o.status.success(), "apt reports the other tool's failure");
    assert!(!a.t.is_active("docker.service"), "the outage happened");
    assert!(a.record().exists(), "the record stays open");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("docker-upgrade-guard: docker"));
    std::fs::remove_file(&failing).unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), ours);

    // Step 2 sees docker stopped; the record keeps step 1's "before".
    let (out, calls) = a.step(&[("docker.io", D2)]);
    assert!(
        out.contains("docker.socket, docker.service were stopped by the upgrade of containerd"),
        "the first change explains it: {out}"
    );
    assert!(out.contains("BindsTo=containerd.service"), "{out}");
    assert!(
        !out.contains("docker.io's prerm"),
        "docker was already down then: {out}"
    );
    assert_eq!(
        count(&calls, "start", "docker.service"),
        1,
        "{calls}\n{out}"
    );
    assert!(a.t.is_active("docker.service"));
    assert!(!a.record().exists());
}

/// A record left open (its post stage never ran) from another boot, older than
/// max_snapshot_age_secs, or from the future, says docker was running; docker has been down
/// since. Neither a lone post stage nor the next operation may act on it: the next operation
/// uses its own "before" (docker stopped) and leaves docker alone.
#[test]
fn stale_records_are_ignored() {
    type Stale = fn(&mut serde_json::Value, u64);
    let cases: &[(&str, Stale, &str)] = &[
        (
            "another boot",
            |r, _| r["boot_id"] = "00000000-0000-0000-0000-000000000000".into(),
            "it was made before the last reboot",
        ),
        (
            "too old",
            // Ages are on CLOCK_BOOTTIME (`now` is it): 120 s before now, with a 60 s limit.
            |r, now| r["updated_boot"] = (now - 120).into(),
            "older than max_snapshot_age_secs = 60",
        ),
        (
            "from the future",
            |r, now| r["updated_boot"] = (now + 4000).into(),
            "its time is in the future",
        ),
    ];
    for (name, make_stale, why) in cases {
        let a = apt_root(
            &[containerd(C1), containerd(C2), docker(D1)],
            "jit_patch = false\nmax_snapshot_age_secs = 60\n",
        );
        a.installed_v1();
        // Leave a record open (a step whose post never ran), then make it stale.
        let failing = a.t.path().join("etc/apt/apt.conf.d/99yy-other-tool");
        std::fs::write(&failing, "DPkg::Post-Invoke { \"false\"; };\n").unwrap();
        assert!(!a
            .apt(&["install", "--reinstall", &format!("containerd={C1}")])
            .status
            .success());
        std::fs::remove_file(&failing).unwrap();
        let mut rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.record()).unwrap()).unwrap();
        let docker = rec["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == "docker.service")
            .unwrap()
            .clone();
        assert_eq!(docker["active_state"], "active", "{rec}");
        assert!(!a.t.is_active("docker.service"), "the reinstall stopped it");
        // CLOCK_BOOTTIME in seconds: /proc/uptime counts on it.
        let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
        let now = uptime.split('.').next().unwrap().parse::<u64>().unwrap();
        assert!(
            now > 300,
            "this test needs an uptime over 5 minutes (it is {now} s)"
        );
        make_stale(&mut rec, now);
        let stale = serde_json::to_vec(&rec).unwrap();

        // The post stage alone: the record is set aside, nothing started.
        std::fs::write(a.record(), &stale).unwrap();
        a.t.clear_calls();
        let out = ok(&a.t.tool(&["hook", "apt-post"]));
        assert!(out.contains("ignoring the record"), "{name}: {out}");
        assert!(out.contains(why), "{name}: {out}");
        assert_eq!(count(&a.t.calls(), "start", "docker.service"), 0, "{name}");
        assert!(!a.record().exists(), "{name}");
        assert!(a.record().with_extension("json.bad").exists(), "{name}");

        // A new operation: its own "before" (docker stopped) replaces the stale one.
        std::fs::write(a.record(), &stale).unwrap();
        let (out, calls) = a.step(&[("containerd", C2)]);
        assert!(
            out.contains("replacing the previous record: ") && out.contains(why),
            "{name}: {out}"
        );
        assert_eq!(
            count(&calls, "start", "docker.service"),
            0,
            "{name}: {calls}\n{out}"
        );
        assert_eq!(
            count(&calls, "start", "docker.socket"),
            0,
            "{name}: {calls}\n{out}"
        );
        assert!(!a.t.is_active("docker.service"), "{name}");
        assert!(!a.record().exists(), "{name}");
    }
}

/// containerd and docker.io upgraded together, the guard on: containerd's prerm is patched,
/// docker.io's is one the guard will not rewrite (it cannot follow it), so docker is stopped.
/// After the operation containerd is restarted (new binary) BEFORE docker is started again:
/// docker starts once, on the new containerd, instead of being started and then restarted.
#[test]
fn containerd_restart_comes_before_starting_docker_again() {
    const OPAQUE_PRERM: &str = "#!/bin/sh\nset -e\nunits=\"docker.service docker.socket\"\neval deb-systemd-invoke stop $units\n";
    let opaque = |v: &str| {
        Deb::new("docker.io", v)
            .script("prerm", OPAQUE_PRERM)
            .file(
                "/lib/systemd/system/docker.service",
                shapes::DOCKER_SERVICE_BINDSTO,
            )
            .file("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET)
    };
    let a = apt_root(
        &[containerd(C1), containerd(C2), opaque(D1), opaque(D2)],
        "",
    );
    a.installed_v1();
    let (out, calls) = a.step(&[("containerd", C2), ("docker.io", D2)]);
    assert!(out.contains("could not patch docker.io prerm"), "{out}");
    assert!(!a.t.is_active("docker.service") || count(&calls, "start", "docker.service") == 1);
    assert_eq!(
        count(&calls, "restart", "containerd.service"),
        1,
        "{calls}\n{out}"
    );
    let did = did(&a.t);
    let docker_starts = did
        .iter()
        .filter(|d| *d == "started docker.service")
        .count();
    assert_eq!(docker_starts, 1, "docker started once: {did:?}\n{out}");
    assert!(a.t.is_active("docker.service") && a.t.is_active("containerd.service"));
    assert!(ping(&a.t).unwrap().contains("200 OK"));
    // containerd kept running through the operation: its patched line and docker's BindsTo=
    // explain nothing; the package whose script could not be analysed is named.
    let lines = AptRoot::tool_lines(&out);
    let stopped = lines
        .iter()
        .find(|l| l.contains("were stopped by"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        stopped.contains(&format!(
            "were stopped by the upgrade of docker.io {D1} → {D2} ("
        )) && stopped.contains("docker.service belongs to docker.io"),
        "{stopped}"
    );
    assert!(!stopped.contains("BindsTo"), "{stopped}");
}
