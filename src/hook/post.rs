//! The post stage (apt `Post-Invoke`, dpkg `post-invoke`): take the record, gather the facts
//! (what dpkg did, the units' states now, policy-rc.d), then compare ([`super::compare`]),
//! decide ([`super::decide`]) and act ([`super::act`]); close the transaction in last.json.

use super::act::{self, ContainerdStep, GroupStep, Plan};
use super::decide::{self, ContainerdFacts, Decision, Leave, World};
use super::host::{boot_id, policy_forbids, same_root_as_pid1, systemd_running};
use super::state::{self, Record};
use super::{compare, dpkg, say, Env};
use crate::config::ContainerdAfterUpgrade;
use crate::service::ServiceManager;
use anyhow::Result;

pub(crate) fn run(env: &Env) -> Result<()> {
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
    let rec = act_on(env, &sm, rec, None)?;
    state::write_last(&env.root, &rec)
}

/// Compares `rec`'s "before" with the units' states now (`now`, if the caller already asked),
/// decides and acts; returns the record with what failed.
pub(crate) fn act_on(
    env: &Env,
    sm: &dyn ServiceManager,
    mut rec: Record,
    now: Option<Vec<crate::service::UnitState>>,
) -> Result<Record> {
    let events = dpkg::read_since(env, &rec)
        .map_err(|e| anyhow::anyhow!("{e:#}; cannot tell what dpkg did, nothing started"))?;
    let changes = dpkg::changes(&events, &env.config.packages);
    let names: Vec<&str> = rec.units.iter().map(|u| u.unit.as_str()).collect();
    if names.is_empty() {
        return Ok(rec);
    }
    let now = match now {
        Some(now) => now,
        None => sm
            .show(&names)
            .map_err(|e| anyhow::anyhow!("{e:#}; cannot tell what is running, nothing started"))?,
    };
    let mut world = World {
        enabled: env.config.enabled,
        suspended: env.suspended,
        systemd_running: systemd_running(env),
        same_root_as_pid1: same_root_as_pid1(),
        system_state: None,
        watched_package_changed: !changes.is_empty(),
    };
    let mut facts = compare::unit_facts(&rec, &now, &changes);
    // is-system-running and policy-rc.d are processes: ask only when a start is on the table.
    if facts.iter().any(|(_, f)| decide::needs_policy(&world, f)) {
        world.system_state = sm.system_state().ok();
    }
    for (unit, f) in &mut facts {
        if decide::needs_policy(&world, f) {
            f.policy_forbids = policy_forbids(env, unit, "start");
        }
    }
    let decisions: Vec<(String, Decision)> = facts
        .iter()
        .map(|(u, f)| (u.clone(), decide::decide(&world, f)))
        .collect();

    let containerd =
        compare::upgraded_while_running(act::CONTAINERD, &rec, &changes, &now).map(|change| {
            let mut f = ContainerdFacts {
                kept_running: true,
                leave_configured: env.config.containerd_after_upgrade
                    == ContainerdAfterUpgrade::Leave,
                policy_forbids: false,
            };
            if decide::containerd_needs_policy(&world, &f) {
                f.policy_forbids = policy_forbids(env, act::CONTAINERD, "restart");
            }
            ContainerdStep {
                change: change.clone(),
                decision: decide::containerd_after_upgrade(&world, &f),
                docker_was_active: now.iter().any(|u| u.unit == act::DOCKER && u.is_active()),
            }
        });
    let stopped: Vec<&str> = decisions
        .iter()
        .filter(|(_, d)| match d {
            Decision::Start => true,
            Decision::Leave(l) => l.is_notable(),
        })
        .map(|(u, _)| u.as_str())
        .collect();
    // Unit files are read only when there is something to explain.
    let groups = if stopped.is_empty() {
        Vec::new()
    } else {
        let loaded = load_units(env, &rec);
        compare::groups(&stopped, &rec, &changes, &loaded, &now)
            .into_iter()
            .map(|group| step(group, &decisions))
            .collect()
    };
    let report = act::run(env, sm, &Plan { containerd, groups });
    rec.failed_starts.extend(report.failed_starts);
    // Last: what ran on docker, once docker answers (issue 13); bounded, never fatal.
    super::containers::after(env, sm, &rec, &changes);
    Ok(rec)
}

/// The group's units to start and to leave, per their decisions.
fn step(group: compare::Group, decisions: &[(String, Decision)]) -> GroupStep {
    let decision = |u: &str| decisions.iter().find(|(n, _)| n == u).map(|(_, d)| *d);
    let to_start = group
        .units
        .iter()
        .filter(|u| decision(u) == Some(Decision::Start))
        .cloned()
        .collect();
    let left: Vec<(String, Leave)> = group
        .units
        .iter()
        .filter_map(|u| match decision(u) {
            Some(Decision::Leave(l)) => Some((u.clone(), l)),
            _ => None,
        })
        .collect();
    GroupStep {
        group,
        to_start,
        left,
    }
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
