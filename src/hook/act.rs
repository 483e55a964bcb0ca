//! The act step: carry out what [`super::decide`] chose — restart containerd, start the stopped
//! units group by group (each start bounded), wait until containerd and docker answer — and
//! report each step as soon as it is done (one line to stderr, one event). [`run`] acts;
//! [`report_restart`] and [`report_group`] only say and record, they never start anything.

use super::compare::Group;
use super::decide::{Leave, Restart};
use super::dpkg::Change;
use super::host::now_secs;
use super::{say, Env};
use crate::events::{Event, EventKind};
use crate::service::ServiceManager;
use std::time::Duration;

pub(crate) const DOCKER_SOCK: &str = "/run/docker.sock";
pub(crate) const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
pub(crate) const CONTAINERD: &str = "containerd.service";
pub(crate) const DOCKER: &str = "docker.service";

/// What to do, decided: the input of [`run`].
pub(crate) struct Plan {
    /// containerd was upgraded and kept running the old binary.
    pub containerd: Option<ContainerdStep>,
    /// The stopped units, grouped by cause, in start order.
    pub groups: Vec<GroupStep>,
}

impl Plan {
    /// Does [`run`] start or restart anything (else the units stay as they were before it)?
    pub(crate) fn acts(&self) -> bool {
        self.containerd
            .as_ref()
            .is_some_and(|c| c.decision == Restart::Restart)
            || self.groups.iter().any(|g| !g.to_start.is_empty())
    }
}

pub(crate) struct ContainerdStep {
    pub change: Change,
    pub decision: Restart,
    /// docker.service was active before the restart (then it must answer after it).
    pub docker_was_active: bool,
}

pub(crate) struct GroupStep {
    pub group: Group,
    /// The units of the group to start, in order.
    pub to_start: Vec<String>,
    /// The units of the group left stopped, and why.
    pub left: Vec<(String, Leave)>,
}

/// What was done, step by step (each step was reported when it was done).
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The units whose start failed: the record keeps them, not to try again in this operation.
    pub failed_starts: Vec<String>,
    /// The lines said, in order.
    pub lines: Vec<String>,
}

/// Acts on the plan, in order: containerd first (docker then starts once, on the new
/// containerd), then each group.
pub(crate) fn run(env: &Env, sm: &dyn ServiceManager, plan: &Plan) -> Report {
    let mut report = Report::default();
    if let Some(c) = &plan.containerd {
        let outcome = match c.decision {
            Restart::Restart => Some(restart_containerd(env, sm, c.docker_was_active)),
            _ => None,
        };
        if let Some(line) = report_restart(env, c, outcome) {
            report.lines.push(line);
        }
    }
    for g in &plan.groups {
        let results = start_all(env, sm, &g.to_start);
        let mut answers = Vec::new();
        if results.iter().any(|(u, r)| u == CONTAINERD && r.is_ok()) {
            answers.push(match containerd_answers(env) {
                Ok(t) => format!("containerd answered in {:.1} s", t.as_secs_f64()),
                Err(e) => format!("containerd does not answer: {e:#}"),
            });
        }
        // Only after starting the daemon itself: a request on the socket alone would
        // socket-activate a docker.service we chose to leave stopped.
        if results.iter().any(|(u, r)| u == DOCKER && r.is_ok()) {
            answers.push(match docker_answers(env) {
                Ok(t) => format!("docker answered in {:.1} s", t.as_secs_f64()),
                Err(e) => format!("docker does not answer: {e:#}"),
            });
        }
        report.failed_starts.extend(
            results
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(u, _)| u.clone()),
        );
        report.lines.push(report_group(env, g, &results, &answers));
    }
    report
}

/// Restarts containerd (bounded), then waits for docker if it was running: the restart
/// propagates to it. The outcome, for the report.
fn restart_containerd(env: &Env, sm: &dyn ServiceManager, docker_was_active: bool) -> String {
    let t = env.bound(Duration::from_secs(env.config.start_timeout_secs));
    let mut outcome = match sm.restart(CONTAINERD, t) {
        Ok(()) => "restarted it".to_string(),
        Err(e) => format!("restarting it failed: {e:#}"),
    };
    if docker_was_active {
        match docker_answers(env) {
            Ok(d) => outcome.push_str(&format!("; docker answered in {:.1} s", d.as_secs_f64())),
            Err(e) => outcome.push_str(&format!("; docker does not answer: {e:#}")),
        }
    }
    outcome
}

/// Says what became of containerd; records an event when it was restarted. `outcome`: what
/// the restart did (None: not restarted). The line said, if any.
pub(crate) fn report_restart(
    env: &Env,
    c: &ContainerdStep,
    outcome: Option<String>,
) -> Option<String> {
    let what = format!(
        "{CONTAINERD} kept running the old binary through the {}",
        c.change.describe()
    );
    let left = |why: &str| format!("{what}; left running{why}");
    let line = match (c.decision, outcome) {
        (Restart::NotNeeded, _) => return None,
        (Restart::Blocked, _) => left(" (restart it to use the new version)"),
        (Restart::Configured, _) => {
            left(" (restart it to use the new version; containerd_after_upgrade = \"leave\")")
        }
        (Restart::PolicyForbids, _) => left(": policy-rc.d forbids restarting it (exit 101)"),
        (Restart::Restart, outcome) => {
            let outcome = outcome.unwrap_or_default();
            let line = format!("{what}; {outcome}");
            say(&line);
            record_event(
                env,
                Event {
                    time: crate::events::rfc3339(now_secs()),
                    kind: EventKind::Restarted,
                    unit: Some(CONTAINERD.into()),
                    package: Some(c.change.package.clone()),
                    old_version: c.change.old.clone(),
                    new_version: c.change.new.clone(),
                    cause: Some("upgraded while running".into()),
                    outcome: Some(outcome),
                    message: line.clone(),
                },
            );
            return Some(line);
        }
    };
    say(&line);
    Some(line)
}

/// Says what became of one group (why it stopped, what was started, what was left and why,
/// whether the daemons answer) and records it as one event. The line said.
pub(crate) fn report_group(
    env: &Env,
    g: &GroupStep,
    results: &[(String, anyhow::Result<()>)],
    answers: &[String],
) -> String {
    let mut outcome: Vec<String> = Vec::new();
    let failed: Vec<&(String, anyhow::Result<()>)> =
        results.iter().filter(|(_, r)| r.is_err()).collect();
    if !g.to_start.is_empty() {
        if failed.is_empty() {
            outcome.push("started again".into());
        } else {
            for (u, r) in &failed {
                if let Err(e) = r {
                    outcome.push(format!("starting {u} failed: {e:#}"));
                }
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
        outcome.extend(answers.iter().cloned());
    }
    for (u, l) in &g.left {
        outcome.push(format!("{u} left stopped: {}", l.reason()));
    }
    let cause = &g.group.cause;
    let why = match &cause.change {
        Some(c) => format!("the {}", c.describe()),
        None => "something during the package operation".into(),
    };
    let units = &g.group.units;
    let verb = if units.len() == 1 { "was" } else { "were" };
    let line = format!(
        "{} {verb} stopped by {why} ({}); {}",
        units.join(", "),
        cause.mechanisms.join("; "),
        outcome.join("; ")
    );
    say(&line);
    let kind = if !failed.is_empty() {
        EventKind::StartFailed
    } else if g.to_start.is_empty() {
        EventKind::LeftStopped
    } else {
        EventKind::Started
    };
    record_event(
        env,
        Event {
            time: crate::events::rfc3339(now_secs()),
            kind,
            unit: Some(units.join(",")),
            package: cause.change.as_ref().map(|c| c.package.clone()),
            old_version: cause.change.as_ref().and_then(|c| c.old.clone()),
            new_version: cause.change.as_ref().and_then(|c| c.new.clone()),
            cause: Some(cause.mechanisms.join("; ")),
            outcome: Some(outcome.join("; ")),
            message: line.clone(),
        },
    );
    line
}

/// Starts `units` in the given order, each bounded by the config and the stage's deadline.
/// A unit that fails does not stop the others (docker.socket may still come up).
fn start_all(
    env: &Env,
    sm: &dyn ServiceManager,
    units: &[String],
) -> Vec<(String, anyhow::Result<()>)> {
    units
        .iter()
        .map(|u| {
            let t = env.bound(Duration::from_secs(env.config.start_timeout_secs));
            let r = sm.start(u, t);
            (u.clone(), r)
        })
        .collect()
}

/// Waits for docker's `/_ping`; the time it took, or why not.
pub(super) fn docker_answers(env: &Env) -> anyhow::Result<Duration> {
    let t = env.bound(Duration::from_secs(env.config.ping_timeout_secs));
    crate::health::wait_docker(&env.root.path(DOCKER_SOCK), t)
}

/// Waits until containerd's gRPC socket accepts a connection (a connect is enough: containerd is
/// not socket-activated, so connecting starts nothing); the time it took, or why not.
fn containerd_answers(env: &Env) -> anyhow::Result<Duration> {
    let t = env.bound(Duration::from_secs(env.config.ping_timeout_secs));
    crate::health::wait_socket(&env.root.path(CONTAINERD_SOCK), t)
}

fn record_event(env: &Env, ev: Event) {
    if let Err(e) = crate::events::record(&env.root, &ev) {
        say(&format!("cannot record the event: {e:#}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::compare::{Cause, Group};

    #[test]
    fn a_plan_acts_when_it_starts_or_restarts_something() {
        let containerd = |decision| ContainerdStep {
            change: Change {
                package: "containerd".into(),
                old: Some("1".into()),
                new: Some("2".into()),
                removed: false,
            },
            decision,
            docker_was_active: true,
        };
        let group = |to_start: &[&str], left: &[&str]| GroupStep {
            group: Group {
                cause: Cause {
                    change: None,
                    mechanisms: vec![],
                },
                units: to_start
                    .iter()
                    .chain(left)
                    .map(ToString::to_string)
                    .collect(),
            },
            to_start: to_start.iter().map(ToString::to_string).collect(),
            left: left
                .iter()
                .map(|u| (u.to_string(), Leave::WasNotActive))
                .collect(),
        };
        let rows: Vec<(&str, Plan, bool)> = vec![
            (
                "nothing",
                Plan {
                    containerd: None,
                    groups: vec![],
                },
                false,
            ),
            (
                "containerd restarted",
                Plan {
                    containerd: Some(containerd(Restart::Restart)),
                    groups: vec![],
                },
                true,
            ),
            (
                "containerd left (configured)",
                Plan {
                    containerd: Some(containerd(Restart::Configured)),
                    groups: vec![],
                },
                false,
            ),
            (
                "a unit to start",
                Plan {
                    containerd: None,
                    groups: vec![group(&[], &[DOCKER]), group(&[DOCKER], &[])],
                },
                true,
            ),
            (
                "only units left stopped",
                Plan {
                    containerd: Some(containerd(Restart::NotNeeded)),
                    groups: vec![group(&[], &[DOCKER])],
                },
                false,
            ),
        ];
        for (name, plan, want) in rows {
            assert_eq!(plan.acts(), want, "row: {name}");
        }
    }
}
