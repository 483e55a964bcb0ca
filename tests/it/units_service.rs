//! `Systemctl` against stand-in scripts: canned output, a hang, a failure, a clean environment.

use docker_upgrade_guard::service::{ServiceManager, Systemctl};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

const CANNED_SHOW: &str = r#"
# Records its arguments, then answers like systemd 252 for the two units.
printf '%s\n' "$@" > "$(dirname "$0")/args"
cat <<'OUT'
Id=containerd.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
MainPID=612

Id=docker.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=enabled
MainPID=0

Id=kubelet.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
MainPID=0
OUT
"#;

#[test]
fn show_parses_canned_output_and_passes_the_right_arguments() {
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(d.path(), "systemctl", CANNED_SHOW)));
    let states = sc
        .show(&["docker.service", "kubelet.service", "containerd.service"])
        .unwrap();
    let summary: Vec<(&str, &str, &str, u32)> = states
        .iter()
        .map(|s| {
            (
                s.unit.as_str(),
                s.load_state.as_str(),
                s.active_state.as_str(),
                s.main_pid,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("docker.service", "loaded", "inactive", 0),
            ("kubelet.service", "not-found", "inactive", 0),
            ("containerd.service", "loaded", "active", 612),
        ]
    );
    let args = std::fs::read_to_string(d.path().join("args")).unwrap();
    assert_eq!(
        args,
        "show\n--property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,InactiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic\n--\n\
         docker.service\nkubelet.service\ncontainerd.service\n"
    );
}

#[test]
fn show_rejects_output_for_the_wrong_number_of_units() {
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(d.path(), "systemctl", CANNED_SHOW)));
    let err = format!("{:#}", sc.show(&["docker.service"]).unwrap_err());
    assert!(
        err.contains("cannot understand the output of systemctl show docker.service"),
        "{err}"
    );
    assert!(err.contains("3 unit(s) described for 1"), "{err}");
}

#[test]
fn a_hanging_systemctl_is_killed_at_the_bound() {
    let d = tempfile::tempdir().unwrap();
    // Not `exec`: the sleep is a grandchild that keeps the pipes open; it must die too.
    let sc = Systemctl::new(Some(script(d.path(), "systemctl", "sleep 30\necho done\n")));
    let t = Instant::now();
    let err = sc
        .start("docker.service", Duration::from_millis(400))
        .unwrap_err()
        .to_string();
    let took = t.elapsed();
    assert_eq!(
        err,
        "systemctl start docker.service did not answer within 0.4 s"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");

    let mut sc = sc;
    sc.query_timeout = Duration::from_secs(1);
    let t = Instant::now();
    let err = sc.show(&["docker.service"]).unwrap_err().to_string();
    assert_eq!(
        err,
        "systemctl show docker.service did not answer within 1 s"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    let t = Instant::now();
    assert!(sc.system_state().is_err());
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_failure_carries_systemds_message() {
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(
        d.path(),
        "systemctl",
        "echo 'Job for docker.service failed because the control process exited with error code.' >&2\n\
         echo 'See \"systemctl status docker.service\" for details.' >&2\nexit 1\n",
    )));
    let err = sc
        .restart("docker.service", Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "systemctl restart docker.service failed (exit status 1): Job for docker.service failed \
         because the control process exited with error code.; See \"systemctl status \
         docker.service\" for details."
    );
    let err = sc.show(&["docker.service"]).unwrap_err().to_string();
    assert!(
        err.starts_with("systemctl show docker.service failed (exit status 1)"),
        "{err}"
    );
}

#[test]
fn start_succeeds_and_the_environment_is_clean() {
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(
        d.path(),
        "systemctl",
        "env > \"$(dirname \"$0\")/env\"; pwd >> \"$(dirname \"$0\")/env\"\n\
         printf '%s ' \"$@\" >> \"$(dirname \"$0\")/env\"\n\
         read x && echo 'stdin was not empty' >&2 && exit 9\nexit 0\n",
    )));
    sc.start("docker.service", Duration::from_secs(5)).unwrap();
    let env = std::fs::read_to_string(d.path().join("env")).unwrap();
    assert!(
        env.contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"),
        "{env}"
    );
    assert!(env.contains("LANG=C\n"), "{env}");
    assert!(!env.contains("HOME="), "{env}");
    assert!(!env.contains("CARGO"), "{env}");
    assert!(env.contains("\n/\n"), "runs in /: {env}");
    assert!(
        env.ends_with("--no-ask-password start -- docker.service "),
        "{env}"
    );
}

#[test]
fn system_state_reads_stdout_even_on_failure() {
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(
        d.path(),
        "systemctl",
        "echo degraded\nexit 1\n",
    )));
    assert_eq!(sc.system_state().unwrap(), "degraded");
    let sc = Systemctl::new(Some(script(
        d.path(),
        "systemctl2",
        "echo 'System has not been booted with systemd' >&2\nexit 1\n",
    )));
    let err = sc.system_state().unwrap_err().to_string();
    assert!(err.contains("booted with systemd"), "{err}");
}

#[test]
fn missing_binary_and_bad_unit_names() {
    let sc = Systemctl::new(Some(PathBuf::from("/nonexistent/systemctl")));
    let err = sc.show(&["docker.service"]).unwrap_err().to_string();
    assert!(err.contains("cannot run /nonexistent/systemctl"), "{err}");
    let d = tempfile::tempdir().unwrap();
    let sc = Systemctl::new(Some(script(
        d.path(),
        "systemctl",
        "touch \"$(dirname \"$0\")/ran\"\n",
    )));
    assert!(sc.start("--all", Duration::from_secs(1)).is_err());
    assert!(!d.path().join("ran").exists());
    assert!(Systemctl::new(None).path.is_absolute());
}
