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
mod support;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output};
use support::{ok, shapes, Deb, TestRoot};

pub const C1: &str = "1.3.3-0ubuntu2";
pub const C2: &str = "1.3.3-0ubuntu2.1";
pub const D1: &str = "19.03.8-0ubuntu1";
pub const D2: &str = "19.03.8-0ubuntu1.1";

pub fn containerd(v: &str) -> Deb {
    Deb::new("containerd", v)
        .script("prerm", shapes::CONTAINERD_PRERM_ALWAYS_STOP)
        .script("postinst", shapes::CONTAINERD_POSTINST_START)
        .file(
            "/lib/systemd/system/containerd.service",
            shapes::CONTAINERD_SERVICE,
        )
}

/// docker.io with the always-stop prerm in every version (dpkg runs the OLD one anyway) and
/// no postinst: nothing in the package starts docker again.
pub fn docker(v: &str) -> Deb {
    Deb::new("docker.io", v)
        .script("prerm", shapes::DOCKER_PRERM_ALWAYS_STOP)
        .file(
            "/lib/systemd/system/docker.service",
            shapes::DOCKER_SERVICE_BINDSTO,
        )
        .file("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET)
}

pub const CONTAINERD_PID: u64 = 501;
pub const DOCKER_PID: u64 = 502;

/// A running focal-shaped node, with main PIDs (so that "kept running the old binary" and
/// "docker was not restarted" can be told from the stand-in's state).
pub fn node_units() -> serde_json::Value {
    let mut u = shapes::focal_units();
    u["containerd.service"]["main_pid"] = CONTAINERD_PID.into();
    u["docker.service"]["main_pid"] = DOCKER_PID.into();
    u
}

pub struct AptRoot {
    pub t: TestRoot,
    config: PathBuf,
}

impl AptRoot {
    /// A temp root whose apt sees a file repository holding `debs`, with the shipped apt
    /// snippet installed; `config` is written as the tool's config.toml.
    pub fn new(debs: &[Deb], config: &str) -> AptRoot {
        let t = TestRoot::new();
        t.set_units(&node_units());
        let r = t.path().to_path_buf();
        for d in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/log/apt",
            "repo",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(
            r.join("etc/apt/sources.list"),
            format!("deb [trusted=yes] file:{} ./\n", r.join("repo").display()),
        )
        .unwrap();
        let rd = r.display();
        // apt runs dpkg with PATH set to DPkg::Path: the stand-ins must come first there.
        let apt_conf = r.join("etc/apt/apt.conf");
        std::fs::write(
            &apt_conf,
            format!(
                "Dir \"{rd}/\";\n\
                 Dir::State::status \"{rd}/var/lib/dpkg/status\";\n\
                 Dir::Etc::sourcelist \"{rd}/etc/apt/sources.list\";\n\
                 Dir::Etc::sourceparts \"{rd}/etc/apt/sources.list.d\";\n\
                 DPkg::Options {{ \"--root={rd}\"; \"--force-script-chrootless\"; \"--force-not-root\"; \"--force-bad-path\"; \"--log={rd}/var/log/dpkg.log\"; }};\n\
                 APT::Sandbox::User \"root\";\n\
                 DPkg::Path \"{}\";\n",
                t.script_path()
            ),
        )
        .unwrap();
        t.install_apt_hooks();
        t.write("/etc/docker-upgrade-guard/config.toml", config);
        let a = AptRoot {
            t,
            config: apt_conf,
        };
        a.publish(debs);
        a
    }

    /// Adds `debs` to the repository and runs `apt-get update`.
    pub fn publish(&self, debs: &[Deb]) {
        let repo = self.t.path().join("repo");
        for d in debs {
            d.build(&repo);
        }
        let packages = Command::new("apt-ftparchive")
            .args(["packages", "."])
            .current_dir(&repo)
            .output()
            .expect("apt-ftparchive (apt-utils) is needed for this test");
        assert!(packages.status.success());
        std::fs::write(repo.join("Packages"), &packages.stdout).unwrap();
        ok(&self.apt(&["update"]));
    }

    pub fn apt(&self, args: &[&str]) -> Output {
        Command::new("apt-get")
            .args(["-y", "-q"])
            .args(args)
            .env("APT_CONFIG", &self.config)
            .env("PATH", self.t.script_path())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("DPKG_FRONTEND_LOCKED")
            .env_remove("DOCKER_UPGRADE_GUARD_SUSPEND")
            .output()
            .unwrap()
    }

    /// `apt-get install` of exact versions; returns everything apt and the hooks printed.
    pub fn install(&self, pins: &[(&str, &str)]) -> String {
        let args: Vec<String> = pins.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let mut all = vec!["install"];
        all.extend(args.iter().map(String::as_str));
        ok(&self.apt(&all))
    }

    /// The node as the tests start it: containerd C1 and docker.io D1 installed, all running.
    pub fn installed_v1(&self) {
        self.install(&[("containerd", C1), ("docker.io", D1)]);
        self.t.set_units(&node_units());
        self.t.clear_calls();
    }

    pub fn main_pid(&self, unit: &str) -> u64 {
        self.t.state()["units"][unit]["main_pid"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn tool_lines(out: &str) -> Vec<&str> {
        out.lines()
            .filter(|l| l.starts_with("docker-upgrade-guard: "))
            .collect()
    }
}

/// What the stand-in did (its indented lines): `stopped docker.service (BindsTo=...)`, ...
pub fn did(t: &TestRoot) -> Vec<String> {
    t.calls()
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// The verb of one systemctl call logged by the stand-in (`--no-ask-password restart -- x`).
pub fn verb(call: &str) -> &str {
    if call.starts_with(' ') {
        return "";
    }
    call.split_whitespace()
        .find(|w| !w.starts_with('-'))
        .unwrap_or("")
}

/// GET /_ping on the stand-in's docker socket, as a client would.
pub fn ping(t: &TestRoot) -> Result<String, String> {
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
    let a = AptRoot::new(
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

#[test]
fn containerd_upgrade_guard_on_stops_nothing_and_restarts_containerd_with_docker() {
    let a = AptRoot::new(&[containerd(C1), containerd(C2), docker(D1)], "");
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
    let a = AptRoot::new(
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
    let a = AptRoot::new(
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
    let a = AptRoot::new(&[containerd(C1), docker(D1), docker(D2)], "");
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
