//! The hook against the real dpkg in a temp root, with the recording systemctl stand-in:
//! what it starts, in which order, what it prints, what it must leave alone, and its faults.
use crate::support::{ok, shapes, Deb, TestRoot, BIN};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const C1: &str = "1.3.3-0ubuntu2";
const C2: &str = "1.3.3-0ubuntu2.1";

fn containerd(v: &str) -> Deb {
    shapes::containerd_deb(v)
}

fn docker(v: &str, prerm: &str) -> Deb {
    shapes::docker_deb(v, prerm)
}

/// A focal-shaped node: containerd 1 and docker.io 1 installed, all three units running.
fn focal() -> (TestRoot, PathBuf) {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    let debs = t.path().join("debs");
    let c1 = containerd(C1).build(&debs);
    let d1 = docker("19.03.8-0ubuntu1", shapes::DOCKER_PRERM_ALWAYS_STOP).build(&debs);
    ok(&t.dpkg(&["-i", c1.to_str().unwrap(), d1.to_str().unwrap()], false));
    t.clear_calls();
    (t, debs)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn started(t: &TestRoot) -> Vec<String> {
    t.calls()
        .lines()
        .filter_map(|l| l.strip_prefix("  started "))
        .map(std::string::ToString::to_string)
        .collect()
}

fn config(t: &TestRoot, text: &str) {
    t.write("/etc/docker-upgrade-guard/config.toml", text);
}

/// The command for one hook stage on `t`, outside apt and not suspended.
fn hook_cmd(t: &TestRoot, stage: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--root")
        .arg(t.path())
        .arg("--systemctl")
        .arg(t.systemctl())
        .args(["hook", stage])
        .env_remove("DPKG_FRONTEND_LOCKED")
        .env_remove("DOCKER_UPGRADE_GUARD_SUSPEND");
    c
}

/// Runs a hook stage with `stdin` as apt's stream.
fn hook_with_input(t: &TestRoot, stage: &str, stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut c = hook_cmd(t, stage);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stream(lines: &[String]) -> String {
    format!(
        "VERSION 3\nAPT::Architecture=amd64\nCommandLine::AsString=apt-get%20upgrade\n\n{}\n",
        lines.join("\n")
    )
}

#[test]
fn containerd_upgrade_with_bindsto_brings_docker_back_via_dpkg_hooks() {
    let (t, debs) = focal();
    let c2 = containerd(C2).build(&debs);
    let o = t.dpkg(&["-i", c2.to_str().unwrap()], true);
    let out = ok(&o);
    assert!(
        out.contains(&format!(
            "docker-upgrade-guard: docker.socket, docker.service were stopped by the upgrade of containerd {C1} → {C2}"
        )),
        "{out}\n{}",
        t.calls()
    );
    assert!(out.contains("BindsTo=containerd.service"), "{out}");
    assert!(out.contains("started again"), "{out}");
    assert!(out.contains("docker answered in"), "{out}");
    assert_eq!(
        started(&t),
        ["containerd.service", "docker.socket", "docker.service"],
        "postinst starts containerd, then the tool the socket and the daemon, in that order\n{}",
        t.calls()
    );
    assert!(t.is_active("docker.service") && t.is_active("docker.socket"));
    // The transaction is closed.
    assert!(!t.path().join("run/docker-upgrade-guard/txn.json").exists());
    assert!(t.path().join("run/docker-upgrade-guard/last.json").exists());
}

#[test]
fn a_containerd_nobody_starts_again_is_started_first_and_must_answer() {
    // The new postinst does not start containerd at all: the tool starts containerd, then the
    // socket and the daemon, and checks that both containerd's socket and docker answer.
    let (t, debs) = focal();
    let c2 = Deb::new("containerd", C2)
        .script("prerm", shapes::CONTAINERD_PRERM_ALWAYS_STOP)
        .file(
            "/lib/systemd/system/containerd.service",
            shapes::CONTAINERD_SERVICE,
        )
        .build(&debs);
    let out = ok(&t.dpkg(&["-i", c2.to_str().unwrap()], true));
    assert_eq!(
        started(&t),
        ["containerd.service", "docker.socket", "docker.service"],
        "{out}\n{}",
        t.calls()
    );
    assert!(
        out.contains("containerd.service, docker.socket, docker.service were stopped"),
        "{out}"
    );
    assert!(out.contains("containerd answered in"), "{out}");
    assert!(out.contains("docker answered in"), "{out}");
}

#[test]
fn docker_io_prerm_stop_is_named_and_undone() {
    let (t, debs) = focal();
    let d2 = docker("19.03.8-0ubuntu2", shapes::DOCKER_PRERM_REMOVE_ONLY).build(&debs);
    let out = ok(&t.dpkg(&["-i", d2.to_str().unwrap()], true));
    assert!(
        // Outside apt the old prerm is gone when the trigger runs: the unit's package is named
        // (apt's path quotes the line: hook_apt).
        out.contains("docker.socket, docker.service were stopped by the upgrade of docker.io 19.03.8-0ubuntu1 → 19.03.8-0ubuntu2 (docker.socket belongs to docker.io; docker.service belongs to docker.io)"),
        "{out}"
    );
    assert!(t.is_active("docker.service"));
}

#[test]
fn apt_path_snapshot_in_pkgs_act_in_post() {
    let (t, debs) = focal();
    config(&t, "jit_patch = false\n");
    let c2 = containerd(C2).build(&debs);
    let s = stream(&[format!(
        "containerd {C1} all none < {C2} all none {}",
        c2.display()
    )]);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    assert!(t.path().join("run/docker-upgrade-guard/txn.json").exists());
    ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
    assert!(!t.is_active("docker.service"), "the outage happened");
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(
        out.contains("were stopped by the upgrade of containerd"),
        "{out}"
    );
    assert!(t.is_active("docker.service"));
    // A second post stage finds no record and does nothing.
    t.clear_calls();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert_eq!(out, "");
    assert_eq!(t.calls(), "");
}

#[test]
fn unrelated_stream_is_a_noop_without_systemctl() {
    let (t, _) = focal();
    let s = stream(&["hello 1 amd64 none < 2 amd64 none /x/hello_2_amd64.deb".into()]);
    let out = ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    assert_eq!(out, "");
    assert_eq!(t.calls(), "", "no systemctl call");
    assert!(!t.path().join("run/docker-upgrade-guard/txn.json").exists());
}

#[test]
fn dry_run_starts_nothing() {
    let (t, _) = focal();
    let s = stream(&[format!("containerd {C1} all none < {C2} all none /x/c.deb")]);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    // apt ran no dpkg; pretend the admin stopped docker meanwhile.
    let mut st = t.state();
    st["units"]["docker.service"]["active"] = false.into();
    t.set_state(&st);
    t.clear_calls();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(started(&t).is_empty(), "{out}");
    assert!(out.contains("dpkg changed no watched package"), "{out}");
}

/// Each must-not-start rule, end to end through real dpkg.
#[test]
fn admin_stopped_docker_stays_stopped() {
    let (t, debs) = focal();
    let mut st = t.state();
    st["units"]["docker.service"]["active"] = false.into();
    st["units"]["docker.socket"]["active"] = false.into();
    t.set_state(&st);
    upgrade_starts_only_containerd(&t, &debs);
}

/// The admin stops docker (through the stand-in, as `systemctl stop` does).
fn admin_stops_docker(t: &TestRoot) {
    let o = Command::new(t.systemctl())
        .args(["stop", "docker.socket", "docker.service"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

/// `dpkg -i` of the harmful containerd with docker stopped by the admin: only containerd's own
/// postinst starts anything, and the tool says nothing (dpkg says it processes our trigger).
fn upgrade_starts_only_containerd(t: &TestRoot, debs: &std::path::Path) {
    t.clear_calls();
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(debs).to_str().unwrap()], true));
    assert_eq!(
        started(t),
        vec!["containerd.service"],
        "{out}\n{}",
        t.calls()
    );
    assert!(!out.contains("docker-upgrade-guard:"), "{out}");
}

/// The admin stops docker and runs dpkg at once (`systemctl stop docker; dpkg -i ...`): the
/// stop came before the dpkg run began, however close, so it is the admin's: kept.
#[test]
fn a_stop_just_before_the_dpkg_run_is_the_admins() {
    let (t, debs) = focal();
    t.install_dpkg_trigger();
    admin_stops_docker(&t);
    upgrade_starts_only_containerd(&t, &debs);
}

/// The trigger stage run by something other than dpkg (by hand, a broken frontend) cannot tell
/// when "its" dpkg run began: one line, exit 0, nothing started, not even a stopped docker.
#[test]
fn a_trigger_stage_not_run_by_dpkg_starts_nothing() {
    let (t, _) = focal();
    admin_stops_docker(&t);
    t.clear_calls();
    let o = hook_cmd(&t, "dpkg-trigger").output().unwrap();
    let out = ok(&o);
    assert!(out.contains("not run by dpkg"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(t.calls(), "", "{out}");
}

/// An unrelated dpkg run does not reach us at all: no hook line, no trigger.
#[test]
fn an_unrelated_dpkg_run_does_not_trigger_us() {
    let (t, debs) = focal();
    t.install_dpkg_trigger();
    let hello = Deb::new("hello", "1")
        .file("/usr/share/doc/hello/README", "hi\n")
        .build(&debs);
    let out = ok(&t.dpkg(&["-i", hello.to_str().unwrap()], true));
    assert!(!out.contains("docker-upgrade-guard"), "{out}");
    assert_eq!(t.calls(), "", "{out}");
    // ... while a watched package's run does.
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(
        out.contains("Processing triggers for docker-upgrade-guard"),
        "{out}"
    );
}

#[test]
fn removal_starts_nothing() {
    let (t, _) = focal();
    let out = ok(&t.dpkg(&["-r", "docker.io"], true));
    assert!(started(&t).is_empty(), "{out}\n{}", t.calls());
    assert!(out.contains("left stopped"), "{out}");
}

#[test]
fn policy_rc_d_101_starts_nothing() {
    let (t, debs) = focal();
    // Stops are allowed (so the upgrade does stop docker), starts are forbidden.
    t.write(
        "/usr/sbin/policy-rc.d",
        "#!/bin/sh\n[ \"$2\" = start ] && exit 101\nexit 0\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path().join("usr/sbin/policy-rc.d"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    // The stand-in deb-systemd-invoke asks policy-rc.d too: not even containerd is started.
    assert!(started(&t).is_empty(), "{out}");
    assert!(
        out.contains("policy-rc.d forbids starting it (exit 101)"),
        "{out}"
    );
}

#[test]
fn suspended_disabled_masked_stopping_no_systemd() {
    type Setup = fn(&TestRoot);
    let cases: &[(&str, Setup, Option<&str>)] = &[
        ("disabled", |t| config(t, "enabled = false\n"), None),
        (
            "masked",
            |t| {
                let mut st = t.state();
                st["units"]["docker.service"]["file_state"] = "masked-runtime".into();
                st["units"]["docker.socket"]["load"] = "masked".into();
                t.set_state(&st);
            },
            Some("it is masked"),
        ),
        (
            "stopping",
            |t| {
                let mut st = t.state();
                st["system_state"] = "stopping".into();
                t.set_state(&st);
            },
            Some("shutting down"),
        ),
        (
            "no systemd",
            |t| std::fs::remove_dir(t.path().join("run/systemd/system")).unwrap(),
            None,
        ),
    ];
    for (name, setup, msg) in cases {
        let (t, debs) = focal();
        setup(&t);
        let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
        let s = started(&t);
        assert!(
            !s.iter().any(|u| u.starts_with("docker.")),
            "{name}: {s:?} {out}"
        );
        if let Some(m) = msg {
            assert!(out.contains(m), "{name}: {out}");
        }
    }
    // The suspend variable.
    let (t, debs) = focal();
    t.install_dpkg_trigger();
    let o = t
        .dpkg_cmd()
        .args(["-i", containerd(C2).build(&debs).to_str().unwrap()])
        .env("DOCKER_UPGRADE_GUARD_SUSPEND", "1")
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(started(&t), vec!["containerd.service"]);
}

// ---- faults: each ends in exit 0 within budget with a clear message ----

#[test]
fn corrupt_record_is_named_and_set_aside() {
    let (t, _) = focal();
    t.write("/run/docker-upgrade-guard/txn.json", "{garbage");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path().join("run/docker-upgrade-guard"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(
        out.contains("txn.json is not a valid transaction record"),
        "{out}"
    );
    assert!(t
        .path()
        .join("run/docker-upgrade-guard/txn.json.bad")
        .exists());
}

#[test]
fn unwritable_state_dir_does_not_break_dpkg() {
    let (t, debs) = focal();
    t.write(
        "/run/docker-upgrade-guard",
        "a file where the directory should be",
    );
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(
        out.contains("docker-upgrade-guard: hook dpkg-trigger:"),
        "{out}"
    );
    assert!(out.contains("run/docker-upgrade-guard"), "{out}");
}

#[test]
fn systemctl_missing_is_reported() {
    let (t, _) = focal();
    let s = stream(&[format!("containerd {C1} all none < {C2} all none /x/c.deb")]);
    let o = Command::new(BIN)
        .arg("--root")
        .arg(t.path())
        .args(["--systemctl", "/nonexistent/systemctl", "hook", "apt-pkgs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let out = ok(&o);
    assert!(out.contains("/nonexistent/systemctl"), "{out}");
}

#[test]
fn hanging_systemctl_is_bounded() {
    let (t, debs) = focal();
    config(&t, "start_timeout_secs = 2\nhook_budget_secs = 5\n");
    let mut st = t.state();
    st["hang"] = serde_json::json!(["start docker.socket"]);
    t.set_state(&st);
    let begin = Instant::now();
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(begin.elapsed() < Duration::from_secs(20), "{out}");
    assert!(out.contains("starting docker.socket failed"), "{out}");
}

#[test]
fn failing_start_is_reported_and_not_retried() {
    let (t, debs) = focal();
    let mut st = t.state();
    st["fail_start"] = serde_json::json!(["docker.service"]);
    t.set_state(&st);
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(out.contains("starting docker.service failed"), "{out}");
    let last =
        std::fs::read_to_string(t.path().join("run/docker-upgrade-guard/last.json")).unwrap();
    assert!(
        last.contains("\"failed_starts\": [\n    \"docker.service\""),
        "{last}"
    );
}

#[test]
fn docker_not_answering_is_reported() {
    let (t, debs) = focal();
    config(&t, "ping_timeout_secs = 1\n");
    let mut st = t.state();
    st.as_object_mut().unwrap().remove("docker_sock");
    t.set_state(&st);
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(out.contains("docker does not answer"), "{out}");
}

#[test]
fn dpkg_failing_midway_still_recovers() {
    let (t, debs) = focal();
    let bad = containerd(C2)
        .script("postinst", "#!/bin/sh\nexit 1\n")
        .build(&debs);
    let o = t.dpkg(&["-i", bad.to_str().unwrap()], true);
    assert!(!o.status.success(), "dpkg itself fails");
    let out = text(&o);
    // containerd is down (its postinst failed): docker cannot run without it (BindsTo);
    // the tool tries, in order, and says so.
    assert!(
        out.contains("were stopped by the upgrade of containerd"),
        "{out}"
    );
}

#[test]
fn sigterm_mid_hook_exits_0() {
    let (t, debs) = focal();
    let c2 = containerd(C2).build(&debs);
    let s = stream(&[format!(
        "containerd {C1} all none < {C2} all none {}",
        c2.display()
    )]);
    config(&t, "jit_patch = false\n");
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
    let mut st = t.state();
    st["hang"] = serde_json::json!(["start docker.socket"]);
    t.set_state(&st);
    let child = Command::new(BIN)
        .arg("--root")
        .arg(t.path())
        .arg("--systemctl")
        .arg(t.systemctl())
        .args(["hook", "apt-post"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal it while its start hangs (not after a fixed sleep: on a loaded machine the stage
    // may not have got there yet).
    let until = Instant::now() + Duration::from_secs(60);
    while live_starts(&t, "docker.socket").is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !live_starts(&t, "docker.socket").is_empty(),
        "the stage never reached its hanging start"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = ok(&o);
    assert!(out.contains("terminated by a signal"), "{out}");
    // The record is whole: either still open or closed, never garbage.
    let p = t.path().join("run/docker-upgrade-guard/txn.json");
    if p.exists() {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
    }
}

#[test]
fn two_hooks_at_once_one_waits_then_gives_up_cleanly() {
    let (t, _) = focal();
    config(&t, "hook_budget_secs = 2\n");
    let s = stream(&[format!("containerd {C1} all none < {C2} all none /x/c.deb")]);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    // Another hook holds the lock.
    let lock = std::fs::File::open(t.path().join("run/docker-upgrade-guard/lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let begin = Instant::now();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(begin.elapsed() < Duration::from_secs(10));
    assert!(
        out.contains("another docker-upgrade-guard hook holds"),
        "{out}"
    );
    drop(held);
}

/// Whether a thread of process `pid` sleeps in a write to a full pipe (the kernel's wchan:
/// `pipe_write`, `anon_pipe_write` since Linux 6.x).
fn blocked_writing(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan"))
            .is_ok_and(|w| w.trim().ends_with("pipe_write"))
    })
}

/// The stand-in's `start UNIT` calls of this test root still alive (matched on their argv; the
/// stand-in's own socket servers for a started unit are not calls).
fn live_starts(t: &TestRoot, unit: &str) -> Vec<String> {
    let me = t.systemctl().to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&me) && cmd.contains(&format!("start -- {unit}")) {
            found.push(cmd);
        }
    }
    found
}

/// Fault case 1: the watchdog ends a post stage whose `systemctl start` hangs. The hung child
/// must die with it, and the record must be gone (taken before the first start): after the
/// admin stops docker on purpose, a later unrelated post stage starts nothing.
#[test]
fn interrupted_post_stage_leaves_no_record_and_no_child() {
    let (t, debs) = focal();
    config(&t, "start_timeout_secs = 60\nhook_budget_secs = 3\n");
    let mut st = t.state();
    st["hang"] = serde_json::json!(["start docker.socket"]);
    t.set_state(&st);
    let out = ok(&t.dpkg(&["-i", containerd(C2).build(&debs).to_str().unwrap()], true));
    assert!(out.contains("gave up after the budget"), "{out}");
    // The watchdog killed the hung start's process group before it exited (bounded wait:
    // the kill is synchronous, reaping by init takes a moment).
    let until = Instant::now() + Duration::from_secs(10);
    while !live_starts(&t, "docker.socket").is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        live_starts(&t, "docker.socket"),
        Vec::<String>::new(),
        "{out}\n{}",
        t.calls()
    );
    assert!(
        !t.path().join("run/docker-upgrade-guard/txn.json").exists(),
        "the interrupted stage left its record open\n{out}"
    );
    // The admin stops docker on purpose; later another operation's post stage and another
    // dpkg run's trigger run: neither starts docker.
    let mut st = t.state();
    st["hang"] = serde_json::json!([]);
    t.set_state(&st);
    admin_stops_docker(&t);
    t.clear_calls();
    let o = hook_with_input(&t, "apt-post", "", &[]);
    assert!(o.status.success());
    assert_eq!(started(&t), Vec::<String>::new(), "{}", text(&o));
    upgrade_starts_only_containerd(&t, &debs);
    assert!(!t.is_active("docker.service"));
}

/// Fault case 6: the clock steps between the pre and the post stage (NTP stepping it back 1 h
/// or 90 s, or forward past the age limit). Freshness is measured on CLOCK_BOOTTIME, so the
/// record still counts and docker comes back; wall time is only for display.
#[test]
fn clock_step_between_pre_and_post_still_recovers() {
    for (name, step) in [
        ("back 1 h", 3600i64),
        ("back 90 s", 90),
        ("forward 7 h", -7 * 3600),
    ] {
        let (t, debs) = focal();
        config(&t, "jit_patch = false\n");
        let c2 = containerd(C2).build(&debs);
        let s = stream(&[format!(
            "containerd {C1} all none < {C2} all none {}",
            c2.display()
        )]);
        ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
        // Move the record's wall times as a clock step would make them look to the post stage
        // (stepping the real clock is not for a test).
        let path = t.path().join("run/docker-upgrade-guard/txn.json");
        let mut rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for k in ["created", "updated"] {
            let v = rec[k].as_i64().unwrap() + step;
            rec[k] = serde_json::json!(v);
        }
        std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
        ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
        let out = ok(&t.tool(&["hook", "apt-post"]));
        assert!(
            out.contains("were stopped by the upgrade of containerd"),
            "clock {name}: {out}"
        );
        assert!(t.is_active("docker.service"), "clock {name}: {out}");
    }
}

/// The apt stream of a containerd C1 → C2 upgrade, and the .deb.
fn containerd_upgrade_stream(debs: &std::path::Path) -> (PathBuf, String) {
    let c2 = containerd(C2).build(debs);
    let s = stream(&[format!(
        "containerd {C1} all none < {C2} all none {}",
        c2.display()
    )]);
    (c2, s)
}

/// Fault case 2: apt-pkgs ran, apt was killed before dpkg did anything, the admin stopped
/// docker, and the next upgrade's snapshot met the old open record. The old "before" (docker
/// running) must not win: dpkg.log shows no watched change after its offset.
#[test]
fn stale_before_of_an_operation_that_changed_nothing_is_replaced() {
    let (t, debs) = focal();
    config(&t, "jit_patch = false\n");
    let (c2, s) = containerd_upgrade_stream(&debs);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    // apt dies here; the admin stops docker on purpose.
    let mut st = t.state();
    for u in ["docker.service", "docker.socket"] {
        st["units"][u]["active"] = serde_json::json!(false);
    }
    t.set_state(&st);
    // The next upgrade.
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
    t.clear_calls();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert_eq!(started(&t), Vec::<String>::new(), "{out}\n{}", t.calls());
    assert!(!t.is_active("docker.service"), "{out}");
}

/// Fault case 7: logrotate moved dpkg.log after dpkg ran and before the post stage, and the
/// new file is already longer than the recorded offset. The upgrade's lines are in dpkg.log.1;
/// the post stage must find them (device and inode are recorded with the offset).
#[test]
fn dpkg_log_rotated_during_the_transaction_is_followed() {
    let (t, debs) = focal();
    config(&t, "jit_patch = false\n");
    let (c2, s) = containerd_upgrade_stream(&debs);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    let log = t.path().join("var/log/dpkg.log");
    let offset = std::fs::metadata(&log).unwrap().len();
    ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
    // logrotate runs now: the upgrade's lines are in dpkg.log.1 after `offset`, and the new
    // log already holds more than `offset` bytes of other runs.
    std::fs::rename(&log, t.path().join("var/log/dpkg.log.1")).unwrap();
    let filler = "2026-01-01 00:00:00 status installed hostname:amd64 3.23\n";
    let n = (offset as usize / filler.len()) + 2;
    std::fs::write(&log, filler.repeat(n * 4)).unwrap();
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(
        out.contains("were stopped by the upgrade of containerd"),
        "{out}"
    );
    assert!(t.is_active("docker.service"), "{out}");
}

/// copytruncate (same inode, shorter file) keeps working.
#[test]
fn dpkg_log_copytruncated_during_the_transaction_is_followed() {
    let (t, debs) = focal();
    config(&t, "jit_patch = false\n");
    let (c2, s) = containerd_upgrade_stream(&debs);
    ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
    let log = t.path().join("var/log/dpkg.log");
    std::fs::copy(&log, t.path().join("var/log/dpkg.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
    let out = ok(&t.tool(&["hook", "apt-post"]));
    assert!(t.is_active("docker.service"), "{out}");
}

/// A pipe whose read end is kept open and never read, filled to the brim: a writer to it
/// blocks. Returns (read end, write end).
fn full_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (r, w) = nix::unistd::pipe().unwrap();
    use std::os::fd::AsRawFd;
    fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let chunk = [b'x'; 4096];
    while nix::unistd::write(&w, &chunk).is_ok() {}
    // Back to blocking, as an undrained stderr is for the hook.
    fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (r, w)
}

/// Fault case 5: stderr is a full pipe nobody drains. The watchdog (and SIGTERM) must still
/// end the stage within its bound: they take no lock and write only where there is room.
#[test]
fn blocked_stderr_does_not_defeat_the_budget_or_sigterm() {
    for via_signal in [false, true] {
        let (t, debs) = focal();
        let budget = if via_signal { 60 } else { 2 };
        config(
            &t,
            &format!("jit_patch = false\nhook_budget_secs = {budget}\n"),
        );
        let (c2, s) = containerd_upgrade_stream(&debs);
        ok(&hook_with_input(&t, "apt-pkgs", &s, &[]));
        ok(&t.dpkg(&["-i", c2.to_str().unwrap()], false));
        let (_keep_read_end, w) = full_pipe();
        let begin = Instant::now();
        let mut child = hook_cmd(&t, "apt-post")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(w))
            .spawn()
            .unwrap();
        if via_signal {
            // Wait until the stage is blocked in its first report line (docker was started
            // again; then it says so), then ask it to stop.
            let until = Instant::now() + Duration::from_secs(60);
            while !(t.is_active("docker.service") && blocked_writing(child.id()))
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                blocked_writing(child.id()),
                "the stage never blocked on its full stderr"
            );
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
        }
        // Bounded wait for the exit: the budget (or the signal) plus slack for a loaded machine.
        let limit = Duration::from_secs(if via_signal { 25 } else { budget + 10 });
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if begin.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = status.unwrap_or_else(|| {
            panic!("signal={via_signal}: still running {limit:?} after start with stderr full")
        });
        assert!(status.success(), "signal={via_signal}: {status:?}");
    }
}

/// Fault case 4: with stderr a broken pipe, the just-in-time guard still patches (no output
/// call may panic), even when it has something to say about the dpkg database.
#[test]
fn guard_patches_with_stderr_a_broken_pipe() {
    let (t, debs) = focal();
    // A status stanza the database reader complains about: the guard prints that line.
    let status = t.path().join("var/lib/dpkg/status");
    let mut text = std::fs::read_to_string(&status).unwrap();
    text.push_str("\nPackage: Bad_Name\nStatus: install ok installed\nVersion: 1\n");
    std::fs::write(&status, text).unwrap();
    let (_c2, s) = containerd_upgrade_stream(&debs);
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r); // broken pipe: every write to stderr fails with EPIPE
    let mut child = hook_cmd(&t, "apt-pkgs")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(w))
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let backups: Vec<_> = std::fs::read_dir(t.path().join("var/lib/docker-upgrade-guard/backups"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        backups
            .iter()
            .any(|n| n.to_string_lossy().starts_with("containerd_")),
        "the guard did not patch containerd's prerm: backups {backups:?}"
    );
    let events =
        std::fs::read_to_string(t.path().join("var/log/docker-upgrade-guard/events.jsonl"))
            .unwrap();
    assert!(events.contains("\"patched\""), "{events}");
}

/// Fault case 8: arguments that are not UTF-8. A hook exits 0; another command gives one line
/// and 64; never a panic or a backtrace.
#[test]
fn non_utf8_arguments_are_one_line_never_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"\xff");
    let root = std::ffi::OsStr::from_bytes(b"/tmp/\xff");
    let cases: [(Vec<&std::ffi::OsStr>, i32); 3] = [
        (vec!["--root".as_ref(), root, "hook".as_ref(), bad], 0),
        (vec!["hook".as_ref(), bad], 0),
        (vec![bad], 64),
    ];
    for (args, want) in cases {
        let o = Command::new(BIN)
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
}

/// A focal node whose installed docker.io prerm carries an OSC title sequence, BEL and a
/// clear-screen on its harmful stop line.
fn focal_with_evil_docker_prerm() -> (TestRoot, PathBuf) {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    let debs = t.path().join("debs");
    let evil = shapes::DOCKER_PRERM_ALWAYS_STOP.replace(
        "'docker.service' 'docker.socket'",
        "'docker.service' 'docker.socket' # \x1b]0;owned\x07\x1b[2J",
    );
    let c1 = containerd(C1).build(&debs);
    let d1 = docker("19.03.8-0ubuntu1", &evil).build(&debs);
    ok(&t.dpkg(&["-i", c1.to_str().unwrap(), d1.to_str().unwrap()], false));
    (t, debs)
}

/// Fault case 11: control characters from a maintainer script reach neither apt's terminal nor
/// the journal's copy: the hook escapes every value it prints.
#[test]
fn control_characters_in_a_script_are_escaped_in_the_hook_lines() {
    let (t, debs) = focal_with_evil_docker_prerm();
    let d2 = docker("19.03.8-0ubuntu2", shapes::DOCKER_PRERM_REMOVE_ONLY).build(&debs);
    let o = t.dpkg(&["-i", d2.to_str().unwrap()], true);
    let out = ok(&o);
    assert!(
        out.contains("were stopped by the upgrade of docker.io"),
        "{out}"
    );
    assert!(
        !out.contains('\x1b') && !out.contains('\x07'),
        "raw control characters reached the terminal: {out:?}"
    );
}

/// Fault case 11, audit: the harmful line it quotes carries the raw sequence; what it prints
/// has it escaped (text and nagios), with and without colour.
#[test]
fn control_characters_in_a_script_are_escaped_by_audit() {
    let (t, _debs) = focal_with_evil_docker_prerm();
    for args in [
        &["audit", "--color", "never"][..],
        &["audit", "--color", "always"][..],
        &["audit", "--format", "nagios"][..],
    ] {
        let o = t.tool(args);
        let text = String::from_utf8_lossy(&o.stdout);
        if args[1] != "--format" {
            assert!(text.contains("\\x1b]0;owned\\x07"), "{args:?}: {text}");
        }
        let no_colour = text
            .replace("\x1b[0m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[36m", "");
        assert!(
            !no_colour.contains('\x1b') && !no_colour.contains('\x07'),
            "{args:?}: raw control characters: {text:?}"
        );
    }
}

/// Fault case 4, the other half: when the just-in-time guard cannot run at all (here: dpkg's
/// lock is held by someone else), that is an event — events.jsonl and the journal — not only
/// a line in apt's scrollback.
#[test]
fn a_guard_that_cannot_run_is_an_event() {
    let (t, debs) = focal();
    let (_c2, s) = containerd_upgrade_stream(&debs);
    let _holder = crate::support::LockHolder::new(&t.path().join("var/lib/dpkg/lock"));
    let o = hook_with_input(&t, "apt-pkgs", &s, &[]);
    assert!(o.status.success());
    let out = text(&o);
    assert!(out.contains("just-in-time guard: "), "{out}");
    let events =
        std::fs::read_to_string(t.path().join("var/log/docker-upgrade-guard/events.jsonl"))
            .unwrap_or_default();
    let ev = events
        .lines()
        .find(|l| l.contains("just-in-time guard"))
        .unwrap_or_else(|| panic!("no guard event: {events:?}\n{out}"));
    assert!(ev.contains("\"kind\":\"error\""), "{ev}");
}
