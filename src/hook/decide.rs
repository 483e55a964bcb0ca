//! Pure decision, every rule of the post stage: given what was true before the operation and
//! what is true now, start a watched unit again or leave it as it is ([`decide`]), and restart a
//! containerd that kept running the old binary or not ([`containerd_after_upgrade`]) — and say
//! which rule decided. No I/O here: every fact is gathered by the caller, so that each rule is
//! one table row in the tests.

use crate::service::UnitState;

/// Facts about the whole system and this transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct World {
    /// `enabled` in the config.
    pub enabled: bool,
    /// `DOCKER_UPGRADE_GUARD_SUSPEND` is set (non-empty).
    pub suspended: bool,
    /// `<root>/run/systemd/system` is a directory (systemd is PID 1 there).
    pub systemd_running: bool,
    /// Our root is the root of PID 1 (not a chroot, not a `--root` tree of another system).
    pub same_root_as_pid1: bool,
    /// `systemctl is-system-running`, if it answered.
    pub system_state: Option<String>,
    /// dpkg changed at least one watched package in this transaction (per dpkg.log).
    pub watched_package_changed: bool,
}

/// Facts about one watched unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitFacts {
    pub before: Option<UnitState>,
    pub now: Option<UnitState>,
    /// A package shipping this unit was removed or purged in this transaction.
    pub package_removed: bool,
    /// `policy-rc.d UNIT start` exited 101. `None`: not asked (no policy-rc.d) or not needed.
    pub policy_forbids: bool,
    /// Its start already failed earlier in this transaction.
    pub failed_earlier: bool,
}

/// Why a unit is left alone. Each variant is one must-not-start rule (or "nothing to do").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Not recorded before the operation: we know nothing about it.
    NotRecorded,
    /// Was not running before: the admin's choice, kept.
    WasNotActive,
    /// Still (or again) running: nothing to do.
    StillActive,
    Disabled,
    Suspended,
    NoSystemd,
    Chroot,
    ShuttingDown,
    /// dpkg did not change any watched package (dry run, failed early, other packages).
    NothingChanged,
    PackageRemoved,
    /// The unit file is gone (`LoadState=not-found`).
    UnitGone,
    Masked,
    PolicyForbids,
    FailedEarlier,
    /// `systemctl show` did not tell us its state now.
    StateUnknown,
}

impl Leave {
    /// Whether this outcome deserves a line to the admin (a stopped unit we chose not to start).
    pub(crate) fn is_notable(self) -> bool {
        !matches!(
            self,
            Leave::NotRecorded | Leave::WasNotActive | Leave::StillActive
        )
    }

    /// The reason, for the one-line report ("left stopped: ...").
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Leave::NotRecorded => "it was not recorded before the operation",
            Leave::WasNotActive => "it was not running before the operation",
            Leave::StillActive => "it is running",
            Leave::Disabled => "the hook is disabled in the config (enabled = false)",
            Leave::Suspended => "DOCKER_UPGRADE_GUARD_SUSPEND is set",
            Leave::NoSystemd => "systemd is not running here (no /run/systemd/system)",
            Leave::Chroot => "this is a chroot or another root than PID 1's",
            Leave::ShuttingDown => "the system is shutting down",
            Leave::NothingChanged => "dpkg changed no watched package",
            Leave::PackageRemoved => "its package was removed",
            Leave::UnitGone => "its unit file is gone",
            Leave::Masked => "it is masked",
            Leave::PolicyForbids => "policy-rc.d forbids starting it (exit 101)",
            Leave::FailedEarlier => "starting it already failed in this operation",
            Leave::StateUnknown => "its state now is unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Start,
    Leave(Leave),
}

/// Was this unit stopped by the operation: active before, not active now?
#[cfg(test)] // only the tests ask
pub(crate) fn stopped(f: &UnitFacts) -> bool {
    matches!((&f.before, &f.now), (Some(b), Some(n)) if b.is_active() && !n.is_active())
}

/// The decision for one unit. Order matters only for which reason is reported: the unit-local
/// "nothing to do" answers come first (no noise about units that are fine), then the
/// system-wide rules, then the unit's own rules.
pub(crate) fn decide(world: &World, f: &UnitFacts) -> Decision {
    use Decision::Leave as L;
    let Some(before) = &f.before else {
        return L(Leave::NotRecorded);
    };
    if !before.is_active() {
        return L(Leave::WasNotActive);
    }
    let Some(now) = &f.now else {
        return L(Leave::StateUnknown);
    };
    if now.is_active() {
        return L(Leave::StillActive);
    }
    if let Some(l) = system_forbids(world) {
        return L(l);
    }
    if !world.watched_package_changed {
        return L(Leave::NothingChanged);
    }
    if f.package_removed {
        return L(Leave::PackageRemoved);
    }
    if now.load_state == "not-found" {
        return L(Leave::UnitGone);
    }
    if now.load_state == "masked" || now.unit_file_state.starts_with("masked") {
        return L(Leave::Masked);
    }
    if f.failed_earlier {
        return L(Leave::FailedEarlier);
    }
    if f.policy_forbids {
        return L(Leave::PolicyForbids);
    }
    Decision::Start
}

/// Whether the outcome may depend on policy-rc.d: ask it only then (it is a process to run).
pub(crate) fn needs_policy(world: &World, f: &UnitFacts) -> bool {
    let probe = UnitFacts {
        policy_forbids: false,
        ..f.clone()
    };
    decide(world, &probe) == Decision::Start
}

/// The system-wide must-not-act rules, in the order they are reported.
fn system_forbids(world: &World) -> Option<Leave> {
    if !world.enabled {
        return Some(Leave::Disabled);
    }
    if world.suspended {
        return Some(Leave::Suspended);
    }
    if !world.systemd_running {
        return Some(Leave::NoSystemd);
    }
    if !world.same_root_as_pid1 {
        return Some(Leave::Chroot);
    }
    if world.system_state.as_deref() == Some("stopping") {
        return Some(Leave::ShuttingDown);
    }
    None
}

/// Facts about a containerd whose package was upgraded in this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContainerdFacts {
    /// It ran through the upgrade (the same main PID before and now): the just-in-time guard
    /// spared it, or its postinst only `start`s it. It still runs the old binary.
    pub kept_running: bool,
    /// `containerd_after_upgrade = "leave"` in the config.
    pub leave_configured: bool,
    /// `policy-rc.d containerd.service restart` exited 101.
    pub policy_forbids: bool,
}

/// What to do with a containerd that was upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// It did not keep running (stopped, or restarted by its package): nothing to say.
    NotNeeded,
    /// A system-wide rule forbids acting (disabled, suspended, no systemd, chroot, shutdown).
    Blocked,
    /// The admin chose `containerd_after_upgrade = "leave"`.
    Configured,
    PolicyForbids,
    /// Restart it; a restart propagates to docker as a restart (BindsTo=/PartOf=).
    Restart,
}

/// The containerd rule. Its restart runs BEFORE docker is started again: docker then starts
/// once, on the new containerd, instead of being started and then restarted with it.
pub(crate) fn containerd_after_upgrade(world: &World, f: &ContainerdFacts) -> Restart {
    if !f.kept_running {
        return Restart::NotNeeded;
    }
    if system_forbids(world).is_some() {
        return Restart::Blocked;
    }
    if f.leave_configured {
        return Restart::Configured;
    }
    if f.policy_forbids {
        return Restart::PolicyForbids;
    }
    Restart::Restart
}

/// Whether the containerd rule's outcome may depend on policy-rc.d: ask it only then.
pub(crate) fn containerd_needs_policy(world: &World, f: &ContainerdFacts) -> bool {
    let probe = ContainerdFacts {
        policy_forbids: false,
        ..*f
    };
    containerd_after_upgrade(world, &probe) == Restart::Restart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::state::tests::unit;

    fn world() -> World {
        World {
            enabled: true,
            suspended: false,
            systemd_running: true,
            same_root_as_pid1: true,
            system_state: Some("running".into()),
            watched_package_changed: true,
        }
    }

    fn stopped_facts() -> UnitFacts {
        UnitFacts {
            before: Some(unit("docker.service", "active")),
            now: Some(unit("docker.service", "inactive")),
            package_removed: false,
            policy_forbids: false,
            failed_earlier: false,
        }
    }

    type Tweak = fn(&mut World, &mut UnitFacts);

    #[test]
    fn table() {
        let rows: &[(&str, Tweak, Decision)] = &[
            ("stopped by the upgrade → start", |_, _| {}, Decision::Start),
            (
                "failed now (not active) → start",
                |_, f| f.now.as_mut().unwrap().active_state = "failed".into(),
                Decision::Start,
            ),
            (
                "degraded system still starts",
                |w, _| w.system_state = Some("degraded".into()),
                Decision::Start,
            ),
            (
                "is-system-running did not answer: still start",
                |w, _| w.system_state = None,
                Decision::Start,
            ),
            (
                "not recorded",
                |_, f| f.before = None,
                Decision::Leave(Leave::NotRecorded),
            ),
            (
                "admin had stopped it",
                |_, f| f.before = Some(unit("docker.service", "inactive")),
                Decision::Leave(Leave::WasNotActive),
            ),
            (
                "it was failed before",
                |_, f| f.before = Some(unit("docker.service", "failed")),
                Decision::Leave(Leave::WasNotActive),
            ),
            (
                "still running",
                |_, f| f.now = Some(unit("docker.service", "active")),
                Decision::Leave(Leave::StillActive),
            ),
            (
                "activating counts as running",
                |_, f| f.now = Some(unit("docker.service", "activating")),
                Decision::Leave(Leave::StillActive),
            ),
            (
                "state now unknown",
                |_, f| f.now = None,
                Decision::Leave(Leave::StateUnknown),
            ),
            (
                "config disabled",
                |w, _| w.enabled = false,
                Decision::Leave(Leave::Disabled),
            ),
            (
                "suspended by env",
                |w, _| w.suspended = true,
                Decision::Leave(Leave::Suspended),
            ),
            (
                "no systemd",
                |w, _| w.systemd_running = false,
                Decision::Leave(Leave::NoSystemd),
            ),
            (
                "chroot",
                |w, _| w.same_root_as_pid1 = false,
                Decision::Leave(Leave::Chroot),
            ),
            (
                "shutting down",
                |w, _| w.system_state = Some("stopping".into()),
                Decision::Leave(Leave::ShuttingDown),
            ),
            (
                "dpkg did nothing (dry run)",
                |w, _| w.watched_package_changed = false,
                Decision::Leave(Leave::NothingChanged),
            ),
            (
                "package removed",
                |_, f| f.package_removed = true,
                Decision::Leave(Leave::PackageRemoved),
            ),
            (
                "unit file gone",
                |_, f| f.now.as_mut().unwrap().load_state = "not-found".into(),
                Decision::Leave(Leave::UnitGone),
            ),
            (
                "masked (load state)",
                |_, f| f.now.as_mut().unwrap().load_state = "masked".into(),
                Decision::Leave(Leave::Masked),
            ),
            (
                "masked at runtime (unit file state)",
                |_, f| f.now.as_mut().unwrap().unit_file_state = "masked-runtime".into(),
                Decision::Leave(Leave::Masked),
            ),
            (
                "policy-rc.d 101",
                |_, f| f.policy_forbids = true,
                Decision::Leave(Leave::PolicyForbids),
            ),
            (
                "failed earlier in this transaction",
                |_, f| f.failed_earlier = true,
                Decision::Leave(Leave::FailedEarlier),
            ),
            (
                "admin stopped it, and it is also removed: not notable",
                |_, f| {
                    f.before = Some(unit("docker.service", "inactive"));
                    f.package_removed = true;
                },
                Decision::Leave(Leave::WasNotActive),
            ),
            (
                "disabled wins over policy",
                |w, f| {
                    w.enabled = false;
                    f.policy_forbids = true;
                },
                Decision::Leave(Leave::Disabled),
            ),
        ];
        for (name, tweak, want) in rows {
            let (mut w, mut f) = (world(), stopped_facts());
            tweak(&mut w, &mut f);
            assert_eq!(decide(&w, &f), *want, "row: {name}");
            if *want == Decision::Start {
                assert!(stopped(&f), "row: {name}");
                assert!(needs_policy(&w, &f), "row: {name}");
            }
        }
    }

    #[test]
    fn policy_is_asked_only_when_it_matters() {
        let mut w = world();
        let f = stopped_facts();
        assert!(needs_policy(&w, &f));
        w.suspended = true;
        assert!(!needs_policy(&w, &f));
    }

    #[test]
    fn containerd_table() {
        let kept = ContainerdFacts {
            kept_running: true,
            leave_configured: false,
            policy_forbids: false,
        };
        type Tweak = fn(&mut World, &mut ContainerdFacts);
        let rows: &[(&str, Tweak, Restart)] = &[
            (
                "kept running the old binary → restart",
                |_, _| {},
                Restart::Restart,
            ),
            (
                "degraded system still restarts",
                |w, _| w.system_state = Some("degraded".into()),
                Restart::Restart,
            ),
            (
                "is-system-running not asked: still restart",
                |w, _| w.system_state = None,
                Restart::Restart,
            ),
            (
                "stopped or restarted by its package: nothing to do",
                |_, f| f.kept_running = false,
                Restart::NotNeeded,
            ),
            (
                "not kept running wins over every rule",
                |w, f| {
                    f.kept_running = false;
                    w.enabled = false;
                },
                Restart::NotNeeded,
            ),
            (
                "config disabled",
                |w, _| w.enabled = false,
                Restart::Blocked,
            ),
            (
                "suspended by env",
                |w, _| w.suspended = true,
                Restart::Blocked,
            ),
            (
                "no systemd",
                |w, _| w.systemd_running = false,
                Restart::Blocked,
            ),
            (
                "chroot",
                |w, _| w.same_root_as_pid1 = false,
                Restart::Blocked,
            ),
            (
                "shutting down",
                |w, _| w.system_state = Some("stopping".into()),
                Restart::Blocked,
            ),
            (
                "dpkg changed it, so the watched-package rule does not apply",
                |w, _| w.watched_package_changed = false,
                Restart::Restart,
            ),
            (
                "containerd_after_upgrade = leave",
                |_, f| f.leave_configured = true,
                Restart::Configured,
            ),
            (
                "blocked wins over the config",
                |w, f| {
                    f.leave_configured = true;
                    w.suspended = true;
                },
                Restart::Blocked,
            ),
            (
                "policy-rc.d 101",
                |_, f| f.policy_forbids = true,
                Restart::PolicyForbids,
            ),
            (
                "the config wins over policy",
                |_, f| {
                    f.leave_configured = true;
                    f.policy_forbids = true;
                },
                Restart::Configured,
            ),
        ];
        for (name, tweak, want) in rows {
            let (mut w, mut f) = (world(), kept);
            tweak(&mut w, &mut f);
            assert_eq!(containerd_after_upgrade(&w, &f), *want, "row: {name}");
            assert_eq!(
                containerd_needs_policy(&w, &f),
                matches!(want, Restart::Restart | Restart::PolicyForbids),
                "row: {name}"
            );
        }
    }

    #[test]
    fn every_leave_has_a_reason_and_notability() {
        assert!(!Leave::StillActive.is_notable());
        assert!(Leave::PolicyForbids.is_notable());
        assert!(Leave::Masked.reason().contains("masked"));
    }
}
