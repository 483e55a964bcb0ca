//! The dpkg file trigger (`postinst triggered`, stage `dpkg-trigger`): outside apt, a package
//! shipping docker's or containerd's unit files or daemons was unpacked or removed in this dpkg
//! run (`debian/docker-upgrade-guard.triggers`). dpkg processes the trigger at the end of the
//! same run, after the old prerm and the new postinst.
//!
//! No "before" was taken: dpkg does not tell its hooks which packages a run touches, so taking
//! one would cost every unrelated `dpkg -i` a snapshot. Instead the "before" is read from
//! systemd's own timestamps against the moment the dpkg run we are called from began ([`before_at`],
//! pure), and what the run changed from dpkg.log since its `startup` line. The rest is the post
//! stage's: compare, decide, act ([`super::post::act_on`]).

use super::host::systemd_running;
use super::state::{self, Record};
use super::{dpkg, post, say, Env};
use crate::service::{ServiceManager, UnitState};
use anyhow::{Context, Result};

pub(crate) fn run(env: &Env) -> Result<()> {
    // (Inside apt, where apt's own hooks took the "before", the stage has returned already:
    // `nothing_to_do_yet`.) A switched-off or suspended hook and a system without systemd
    // have nothing to do (the old dpkg hook lines were silent there too).
    if !env.config.enabled || env.suspended || !systemd_running(env) {
        return Ok(());
    }
    let began = match dpkg_run_began() {
        Ok(t) => t,
        Err(e) => {
            say(&format!("{e:#}; nothing started"));
            return Ok(());
        }
    };
    let _lock = state::lock(&env.root, env.lock_deadline())?;
    let sm = env.service_manager();
    let names: Vec<&str> = env.config.units.iter().map(String::as_str).collect();
    let now = sm
        .show(&names)
        .context("cannot tell what is running; nothing started")?;
    let Some(before) = now
        .iter()
        .map(|n| before_at(n, began))
        .collect::<Option<Vec<_>>>()
    else {
        say("systemd did not tell when the units last stopped and started; nothing started");
        return Ok(());
    };
    let log = dpkg::run_start(env).context("cannot read dpkg.log")?;
    let rec = Record::new(super::stage_name(env.stage), before, log);
    let rec = post::act_on(env, &sm, rec, Some(now))?;
    state::write_last(&env.root, &rec)
}

/// What `now` was when the dpkg run began (`began`: CLOCK_MONOTONIC µs), from the unit's last
/// entry into and exit from `inactive`/`failed`. `None` when systemd did not give them.
///
/// - Running now, and last left `inactive` before the run: it ran through the run (the same
///   main PID, so that a containerd that kept running the old binary is recognised).
/// - Not running now, last left `inactive` before the run and entered it during the run: it
///   ran when the run began and the run stopped it (main PID unknown).
/// - Anything else (never started, stopped before the run, started during the run): it was
///   not running when the run began, as far as we can tell — and what we cannot tell, we do not
///   start: the admin's stop is kept.
pub(crate) fn before_at(now: &UnitState, began: u64) -> Option<UnitState> {
    let (enter, exit) = (now.inactive_enter_us?, now.inactive_exit_us?);
    let running_since_before = exit != 0 && exit < began;
    let was_running = if now.is_active() {
        running_since_before
    } else {
        running_since_before && enter >= began
    };
    let mut b = now.clone();
    if now.is_active() && was_running {
        return Some(b);
    }
    b.main_pid = 0;
    b.active_state = if was_running { "active" } else { "inactive" }.into();
    b.sub_state = if was_running { "running" } else { "dead" }.into();
    Some(b)
}

/// When the dpkg run that runs us began, on CLOCK_MONOTONIC in µs: the start of the nearest
/// `dpkg` among our ancestors (the maintainer script's parent), rounded up to the next clock
/// tick. Rounded up, so that a stop just before dpkg started (`systemctl stop docker; dpkg -i
/// ...`) is never taken for this run's: dpkg reads its database for far longer than a tick
/// before it runs the first maintainer script.
fn dpkg_run_began() -> Result<u64> {
    use nix::time::{clock_gettime, ClockId};
    let mut pid = nix::unistd::getppid().as_raw();
    for _ in 0..8 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
        let p = parse_stat(&stat).with_context(|| format!("/proc/{pid}/stat is not understood"))?;
        if p.comm == "dpkg" {
            let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(100);
            let us = |c: ClockId| {
                clock_gettime(c).map(|t| {
                    u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                        + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1000
                })
            };
            // /proc's start time counts on CLOCK_BOOTTIME, systemd's on CLOCK_MONOTONIC: they
            // differ by the time spent suspended.
            let suspended = us(ClockId::CLOCK_BOOTTIME)
                .context("clock_gettime")?
                .saturating_sub(us(ClockId::CLOCK_MONOTONIC).context("clock_gettime")?);
            let start = (p.start_ticks + 1).saturating_mul(1_000_000) / hz;
            return Ok(start.saturating_sub(suspended));
        }
        if p.ppid <= 1 {
            break;
        }
        pid = p.ppid;
    }
    anyhow::bail!(
        "not run by dpkg (no dpkg process above this one): cannot tell when its run began"
    )
}

struct Stat<'a> {
    comm: &'a str,
    ppid: i32,
    start_ticks: u64,
}

/// `/proc/PID/stat`: `pid (comm) state ppid ... starttime(22nd) ...`; comm may hold spaces and
/// parentheses, so the fields after it are counted from the last `)`.
fn parse_stat(s: &str) -> Option<Stat<'_>> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?;
    let rest: Vec<&str> = s.get(close + 1..)?.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state): field N is rest[N - 3].
    Some(Stat {
        comm,
        ppid: rest.get(1)?.parse().ok()?,
        start_ticks: rest.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(active: &str, enter: Option<u64>, exit: Option<u64>, pid: u32) -> UnitState {
        UnitState {
            unit: "docker.service".into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: "x".into(),
            unit_file_state: "enabled".into(),
            main_pid: pid,
            inactive_enter_us: enter,
            inactive_exit_us: exit,
        }
    }

    #[test]
    fn before_from_timestamps() {
        // The run began at 1000 µs. (row, state now, InactiveEnter, InactiveExit, MainPID now,
        // was it running when the run began, its MainPID then)
        type Row = (&'static str, &'static str, u64, u64, u32, bool, u32);
        let rows: &[Row] = &[
            ("ran through the run", "active", 0, 10, 7, true, 7),
            (
                "restarted during the run",
                "active",
                1500,
                1600,
                8,
                false,
                0,
            ),
            ("stopped by the run", "inactive", 1500, 10, 0, true, 0),
            ("failed during the run", "failed", 1500, 10, 0, true, 0),
            (
                "stopped before the run (the admin)",
                "inactive",
                900,
                10,
                0,
                false,
                0,
            ),
            (
                "stopped at the very moment the run began",
                "inactive",
                1000,
                10,
                0,
                true,
                0,
            ),
            ("never started", "inactive", 0, 0, 0, false, 0),
            (
                "started and stopped during the run",
                "inactive",
                1700,
                1600,
                0,
                false,
                0,
            ),
            (
                "started before, stopped, started again during",
                "active",
                1200,
                1300,
                9,
                false,
                0,
            ),
            (
                "activating since before the run",
                "activating",
                5,
                20,
                3,
                true,
                3,
            ),
        ];
        for (name, state, enter, exit, pid, was, was_pid) in rows {
            let b = before_at(&unit(state, Some(*enter), Some(*exit), *pid), 1000).unwrap();
            assert_eq!(b.is_active(), *was, "row: {name}");
            assert_eq!(b.main_pid, *was_pid, "row: {name}");
        }
        assert!(before_at(&unit("active", None, Some(1), 1), 1000).is_none());
        assert!(before_at(&unit("active", Some(1), None, 1), 1000).is_none());
    }

    #[test]
    fn proc_stat_fields() {
        let s =
            "4242 (dpkg) S 4200 4242 4200 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        let p = parse_stat(s).unwrap();
        assert_eq!((p.comm, p.ppid, p.start_ticks), ("dpkg", 4200, 987_654));
        let odd = "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        let p = parse_stat(odd).unwrap();
        assert_eq!((p.comm, p.ppid, p.start_ticks), ("a) b (c)", 1, 55));
        assert!(parse_stat("7 (x) R 1").is_none());
        assert!(parse_stat("garbage").is_none());
    }
}
