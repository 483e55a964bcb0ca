//! The post stage (apt `Post-Invoke`, dpkg `post-invoke`): compare the record with now, start
//! again what the operation stopped, say why, close the transaction.

use super::attribute::{self, Cause, Change};
use super::decide::{self, Decision, Leave, UnitFacts, World};
use super::snapshot::{boot_id, dpkg_log, now_secs, systemd_running};
use super::state::{self, Record};
use super::{act, say, Env};
use crate::config::ContainerdAfterUpgrade;
use crate::events::Event;
use crate::service::{ServiceManager, UnitState};
use anyhow::Result;
use std::time::Duration;

pub fn run(env: &Env) -> Result<()> {
    // The cheap path: no record, nothing to do (every operation without a watched package).
    if !state::record_path(&env.root).exists() {
        return Ok(());
    }
    let _lock = state::lock(&env.root, env.lock_deadline())?;
    let rec = match state::read(&env.root) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        Err(e) => {
            say(&format!(
                "{e:#}; set aside as txn.json.bad, nothing will be started"
            ));
            let _ = state::set_aside(&env.root);
            return Ok(());
        }
    };
    if let Err(why) = rec.freshness(
        &boot_id(),
        state::Now::read(),
        env.config.max_snapshot_age_secs,
    ) {
        say(&format!(
            "ignoring the record {}: {why}",
            state::record_path(&env.root).display()
        ));
        let _ = state::set_aside(&env.root);
        return Ok(());
    }
    // Take the record before the first start: from here on no other post stage can act on it,
    // even if this one is killed half-way (watchdog, signal, SIGKILL). What happened is then
    // written over the taken copy in last.json.
    state::take(&env.root)?;
    let sm = env.service_manager();
    let rec = act_on(env, &sm, rec)?;
    state::write_last(&env.root, &rec)
}

/// One group of units stopped for the same reason, for one report line.
struct Group {
    cause: Cause,
    units: Vec<String>,
}

fn act_on(env: &Env, sm: &dyn ServiceManager, mut rec: Record) -> Result<Record> {
    let events =
        crate::dpkg::log::read_since_in(&dpkg_log(env), rec.dpkg_log_file, rec.dpkg_log_offset)
            .map_err(|e| anyhow::anyhow!("{e:#}; cannot tell what dpkg did, nothing started"))?;
    let changes = attribute::changes(&events, &env.config.packages);
    let names: Vec<&str> = rec.units.iter().map(|u| u.unit.as_str()).collect();
    if names.is_empty() {
        return Ok(rec);
    }
    let now = sm
        .show(&names)
        .map_err(|e| anyhow::anyhow!("{e:#}; cannot tell what is running, nothing started"))?;
    let world = World {
        enabled: env.config.enabled,
        suspended: env.suspended,
        systemd_running: systemd_running(env),
        same_root_as_pid1: act::same_root_as_pid1(),
        system_state: None,
        watched_package_changed: !changes.is_empty(),
    };
    let mut facts: Vec<(String, UnitFacts)> = rec
        .units
        .iter()
        .map(|b| {
            let removed = crate::watch::packages_shipping(&b.unit)
                .iter()
                .any(|p| changes.iter().any(|c| c.package == *p && c.removed));
            (
                b.unit.clone(),
                UnitFacts {
                    before: Some(b.clone()),
                    now: now.iter().find(|n| n.unit == b.unit).cloned(),
                    package_removed: removed,
                    policy_forbids: false,
                    failed_earlier: rec.failed_starts.contains(&b.unit),
                },
            )
        })
        .collect();
    // is-system-running and policy-rc.d are processes: ask only when a start is on the table.
    let mut world = world;
    if facts.iter().any(|(_, f)| decide::needs_policy(&world, f)) {
        world.system_state = sm.system_state().ok();
    }
    for (unit, f) in &mut facts {
        if decide::needs_policy(&world, f) {
            f.policy_forbids = act::policy_forbids(env, unit, "start");
        }
    }
    let decisions: Vec<(String, Decision)> = facts
        .iter()
        .map(|(u, f)| (u.clone(), decide::decide(&world, f)))
        .collect();

    let notable: Vec<&(String, Decision)> = decisions
        .iter()
        .filter(|(_, d)| match d {
            Decision::Start => true,
            Decision::Leave(l) => l.is_notable(),
        })
        .collect();
    if !notable.is_empty() {
        // Restart a containerd that kept running the old binary BEFORE starting docker again:
        // docker then starts once, on the new containerd, instead of being started and then
        // restarted with it (a second outage).
        containerd_after_upgrade(env, sm, &rec, &changes, &now, &world);
        report(env, sm, &mut rec, &changes, &decisions, &world, &now);
    } else {
        containerd_after_upgrade(env, sm, &rec, &changes, &now, &world);
    }
    super::containers::after(env, sm, &rec, &changes);
    Ok(rec)
}

fn report(
    env: &Env,
    sm: &dyn ServiceManager,
    rec: &mut Record,
    changes: &[Change],
    decisions: &[(String, Decision)],
    _world: &World,
    now: &[UnitState],
) {
    let loaded = load_units(env, rec);
    let propagate = |u: &[crate::units::Unit], s: &str| crate::units::stop_propagation(u, s);
    // Group the stopped units by cause, in start order.
    let stopped: Vec<&str> = decisions
        .iter()
        .filter(|(_, d)| match d {
            Decision::Start => true,
            Decision::Leave(l) => l.is_notable(),
        })
        .map(|(u, _)| u.as_str())
        .collect();
    let kept = |u: &str| kept_running(rec.unit(u), now.iter().find(|n| n.unit == u));
    let mut groups: Vec<Group> = Vec::new();
    for u in crate::watch::start_order(&stopped) {
        let cause = attribute::attribute(u, &rec.harmful, changes, &loaded, &propagate, &kept);
        match groups.iter_mut().find(|g| g.cause.change == cause.change) {
            Some(g) => {
                g.units.push(u.to_string());
                for m in cause.mechanisms {
                    if !g.cause.mechanisms.contains(&m) {
                        g.cause.mechanisms.push(m);
                    }
                }
            }
            None => groups.push(Group {
                cause,
                units: vec![u.to_string()],
            }),
        }
    }
    for g in &groups {
        let to_start: Vec<String> = g
            .units
            .iter()
            .filter(|u| {
                decisions
                    .iter()
                    .any(|(n, d)| n == *u && *d == Decision::Start)
            })
            .cloned()
            .collect();
        let left: Vec<(String, Leave)> = g
            .units
            .iter()
            .filter_map(|u| {
                decisions.iter().find_map(|(n, d)| match d {
                    Decision::Leave(l) if n == u => Some((u.clone(), *l)),
                    _ => None,
                })
            })
            .collect();
        let results = act::start_all(env, sm, &to_start);
        let mut outcome: Vec<String> = Vec::new();
        let failed: Vec<&(String, Result<(), String>)> =
            results.iter().filter(|(_, r)| r.is_err()).collect();
        if !to_start.is_empty() {
            if failed.is_empty() {
                outcome.push("started again".into());
            } else {
                for (u, r) in &failed {
                    if let Err(e) = r {
                        outcome.push(format!("starting {u} failed: {e}"));
                    }
                    rec.failed_starts.push(u.clone());
                }
                if failed.len() < results.len() {
                    let ok: Vec<&str> = results
                        .iter()
                        .filter(|(_, r)| r.is_ok())
                        .map(|(u, _)| u.as_str())
                        .collect();
                    outcome.push(format!("started {}", ok.join(", ")));
                }
            }
            if results
                .iter()
                .any(|(u, r)| u == "containerd.service" && r.is_ok())
            {
                match act::containerd_answers(env) {
                    Ok(t) => {
                        outcome.push(format!("containerd answered in {:.1} s", t.as_secs_f64()))
                    }
                    Err(e) => outcome.push(format!("containerd does not answer: {e}")),
                }
            }
            // Only after starting the daemon itself: a request on the socket alone would
            // socket-activate a docker.service we chose to leave stopped.
            if results
                .iter()
                .any(|(u, r)| u == "docker.service" && r.is_ok())
            {
                match act::docker_answers(env) {
                    Ok(t) => outcome.push(format!("docker answered in {:.1} s", t.as_secs_f64())),
                    Err(e) => outcome.push(format!("docker does not answer: {e}")),
                }
            }
        }
        for (u, l) in &left {
            outcome.push(format!("{u} left stopped: {}", l.reason()));
        }
        let why = match &g.cause.change {
            Some(c) => format!("the {}", c.describe()),
            None => "something during the package operation".into(),
        };
        let verb = if g.units.len() == 1 { "was" } else { "were" };
        let line = format!(
            "{} {verb} stopped by {why} ({}); {}",
            g.units.join(", "),
            g.cause.mechanisms.join("; "),
            outcome.join("; ")
        );
        say(&line);
        let kind = if !failed.is_empty() {
            "start-failed"
        } else if to_start.is_empty() {
            "left-stopped"
        } else {
            "started"
        };
        record_event(
            env,
            Event {
                time: crate::events::rfc3339(now_secs()),
                kind: kind.into(),
                unit: Some(g.units.join(",")),
                package: g.cause.change.as_ref().map(|c| c.package.clone()),
                old_version: g.cause.change.as_ref().and_then(|c| c.old.clone()),
                new_version: g.cause.change.as_ref().and_then(|c| c.new.clone()),
                cause: Some(g.cause.mechanisms.join("; ")),
                outcome: Some(outcome.join("; ")),
                message: line,
            },
        );
    }
}

/// containerd was upgraded but kept running (the just-in-time guard spared it, or its postinst
/// only `start`s it): it still runs the old binary. Restart it if configured; a restart
/// propagates to docker as a restart (BindsTo=/PartOf=), then check docker answers.
fn containerd_after_upgrade(
    env: &Env,
    sm: &dyn ServiceManager,
    rec: &Record,
    changes: &[Change],
    now: &[UnitState],
    world: &World,
) {
    let unit = "containerd.service";
    let Some(change) = changes.iter().find(|c| {
        !c.removed
            && c.new.is_some()
            && crate::watch::packages_shipping(unit).contains(&c.package.as_str())
    }) else {
        return;
    };
    let (Some(before), Some(after)) = (rec.unit(unit), now.iter().find(|u| u.unit == unit)) else {
        return;
    };
    if !kept_running(Some(before), Some(after)) {
        return;
    }
    let blocked = !world.enabled
        || world.suspended
        || !world.systemd_running
        || !world.same_root_as_pid1
        || world.system_state.as_deref() == Some("stopping");
    let what = format!(
        "containerd.service kept running the old binary through the {}",
        change.describe()
    );
    if env.config.containerd_after_upgrade == ContainerdAfterUpgrade::Leave || blocked {
        say(&format!(
            "{what}; left running (restart it to use the new version{})",
            if blocked {
                ""
            } else {
                "; containerd_after_upgrade = \"leave\""
            }
        ));
        return;
    }
    if act::policy_forbids(env, unit, "restart") {
        say(&format!(
            "{what}; left running: policy-rc.d forbids restarting it (exit 101)"
        ));
        return;
    }
    let t = env.bound(Duration::from_secs(env.config.start_timeout_secs));
    let docker_was_active = now
        .iter()
        .any(|u| u.unit == "docker.service" && u.is_active());
    let mut outcome = match sm.restart(unit, t) {
        Ok(()) => "restarted it".to_string(),
        Err(e) => format!("restarting it failed: {e:#}"),
    };
    if docker_was_active {
        match act::docker_answers(env) {
            Ok(d) => outcome.push_str(&format!("; docker answered in {:.1} s", d.as_secs_f64())),
            Err(e) => outcome.push_str(&format!("; docker does not answer: {e}")),
        }
    }
    let line = format!("{what}; {outcome}");
    say(&line);
    record_event(
        env,
        Event {
            time: crate::events::rfc3339(now_secs()),
            kind: "restarted".into(),
            unit: Some(unit.into()),
            package: Some(change.package.clone()),
            old_version: change.old.clone(),
            new_version: change.new.clone(),
            cause: Some("upgraded while running".into()),
            outcome: Some(outcome),
            message: line,
        },
    );
}

/// Did this unit certainly run through the operation: active before and now, with the same
/// (known) main PID?
fn kept_running(before: Option<&UnitState>, now: Option<&UnitState>) -> bool {
    matches!((before, now), (Some(b), Some(n))
        if b.is_active() && n.is_active() && b.main_pid != 0 && b.main_pid == n.main_pid)
}

fn load_units(env: &Env, rec: &Record) -> Vec<crate::units::Unit> {
    let mut names: Vec<String> = rec.units.iter().map(|u| u.unit.clone()).collect();
    for h in &rec.harmful {
        for u in &h.units {
            if !names.contains(u) {
                names.push(u.clone());
            }
        }
    }
    names
        .iter()
        .filter_map(|n| crate::units::load(&env.root, n).ok().flatten())
        .collect()
}

fn record_event(env: &Env, ev: Event) {
    if let Err(e) = crate::events::record(&env.root, &ev) {
        say(&format!("cannot record the event: {e:#}"));
    }
}
