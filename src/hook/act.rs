//! Acting: ask policy-rc.d, start units in order (each bounded), check that docker answers.

use super::Env;
use crate::service::ServiceManager;
use std::time::Duration;

pub const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";
pub const DOCKER_SOCK: &str = "/run/docker.sock";
pub const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
const POLICY_TIMEOUT: Duration = Duration::from_secs(5);

/// `policy-rc.d UNIT ACTION` (as deb-systemd-invoke asks it): exit 101 means forbidden.
/// No policy-rc.d, or one that fails otherwise, allows (like invoke-rc.d).
pub fn policy_forbids(env: &Env, unit: &str, action: &str) -> bool {
    let p = env.root.path(POLICY_RC_D);
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        _ => return false,
    }
    // The same bounded runner as systemctl's: own process group (what it starts dies with it
    // at the deadline), clean environment, cwd /.
    match crate::service::run_bounded(
        &p,
        &[unit, action],
        env.bound(POLICY_TIMEOUT),
        "policy-rc.d",
    ) {
        Ok(out) => out.status.code() == Some(101),
        Err(e) => {
            super::say(&format!("{e:#}; taking it as \"allowed\""));
            false
        }
    }
}

/// Starts `units` in the given order, each bounded by the config and the stage's deadline.
/// A unit that fails does not stop the others (docker.socket may still come up).
pub fn start_all(
    env: &Env,
    sm: &dyn ServiceManager,
    units: &[String],
) -> Vec<(String, Result<(), String>)> {
    units
        .iter()
        .map(|u| {
            let t = env.bound(Duration::from_secs(env.config.start_timeout_secs));
            let r = sm.start(u, t).map_err(|e| format!("{e:#}"));
            (u.clone(), r)
        })
        .collect()
}

/// Waits for docker's `/_ping`; the time it took, or why not.
pub fn docker_answers(env: &Env) -> Result<Duration, String> {
    let t = env.bound(Duration::from_secs(env.config.ping_timeout_secs));
    crate::health::wait_docker(&env.root.path(DOCKER_SOCK), t).map_err(|e| format!("{e:#}"))
}

/// Waits until containerd's gRPC socket accepts a connection (a connect is enough: containerd is
/// not socket-activated, so connecting starts nothing); the time it took, or why not.
pub fn containerd_answers(env: &Env) -> Result<Duration, String> {
    let t = env.bound(Duration::from_secs(env.config.ping_timeout_secs));
    crate::health::wait_socket(&env.root.path(CONTAINERD_SOCK), t).map_err(|e| format!("{e:#}"))
}

/// Is our `/` the `/` of PID 1 (not a chroot)? When `/proc/1/root` cannot be read (no /proc,
/// a restricted container) this says yes: the other guard, `<root>/run/systemd/system`, is
/// missing in a chroot, and systemctl in a chroot does not act anyway; wrongly saying "chroot"
/// would leave docker down.
pub fn same_root_as_pid1() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/proc/1/root"), std::fs::metadata("/")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => true,
    }
}
