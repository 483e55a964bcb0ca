//! Facts about this host that every stage asks: the clock, the boot, whether systemd runs
//! here, whether our root is PID 1's, what policy-rc.d allows. Each is one bounded read (or
//! one bounded process); none changes anything.

use super::Env;
use std::time::Duration;

pub(crate) const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";
const POLICY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The kernel's boot id. A `--root` tree shares the kernel (and so the boot) with us, so
/// this is read from our own `/proc`, not from under the root.
pub(crate) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

pub(crate) fn systemd_running(env: &Env) -> bool {
    env.root.path("/run/systemd/system").is_dir()
}

/// Is our `/` the `/` of PID 1 (not a chroot)? When `/proc/1/root` cannot be read (no /proc,
/// a restricted container) this says yes: the other guard, `<root>/run/systemd/system`, is
/// missing in a chroot, and systemctl in a chroot does not act anyway; wrongly saying "chroot"
/// would leave docker down.
pub(crate) fn same_root_as_pid1() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/proc/1/root"), std::fs::metadata("/")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => true,
    }
}

/// `policy-rc.d UNIT ACTION` (as deb-systemd-invoke asks it): exit 101 means forbidden.
/// No policy-rc.d, or one that fails otherwise, allows (like invoke-rc.d).
pub(crate) fn policy_forbids(env: &Env, unit: &str, action: &str) -> bool {
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
