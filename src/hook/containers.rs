//! Containers across a package operation: which ran before (recorded in the pre stage, only when
//! a watched package is about to change and docker.service is active), and — when docker went
//! down during the operation — which of them did not come back. Optionally (`restart_containers
//! = "previously-running"`) each of those is started again: the same container, never a new one.
//!
//! [`compare`] is the pure part; [`before`] and [`after`] do the talking.

use super::dpkg::Change;
use super::state::Record;
use super::{say, Env};
use crate::config::RestartContainers;
use crate::engine::api::{Container, Engine, Inspect, Started, MAX_CONTAINERS};
use crate::engine::http::Error;
use crate::events::Event;
use crate::service::{ServiceManager, UnitState};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const DOCKER: &str = "docker.service";
/// The listing in a stage never takes longer than this (it is a nicety next to docker itself).
const LIST_BUDGET: Duration = Duration::from_secs(10);
/// How long the post stage waits for containers with an `always`/`unless-stopped` policy that
/// docker is still bringing back before calling them down.
const POLICY_GRACE: Duration = Duration::from_secs(5);

/// The running containers before the operation (in the transaction record), column by column:
/// each column a `Vec<String>`, which the record's reader handles already (a list of structs
/// would cost a new deserializer in a size-capped binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Before {
    /// Wall-clock seconds when the list was taken: docker went down after this.
    pub taken: u64,
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub images: Vec<String>,
    /// Restart policies (`""`: unknown).
    pub policies: Vec<String>,
    /// `State.StartedAt` (`""`: unknown).
    pub started_at: Vec<String>,
    /// Running containers past the cap, not followed.
    #[serde(default)]
    pub not_followed: usize,
}

impl Before {
    pub(crate) fn new(taken: u64, list: &[Container], not_followed: usize) -> Before {
        let col = |f: fn(&Container) -> &str| list.iter().map(|c| f(c).to_string()).collect();
        Before {
            taken,
            ids: col(|c| &c.id),
            names: col(|c| &c.name),
            images: col(|c| &c.image),
            policies: col(|c| c.restart_policy.as_deref().unwrap_or("")),
            started_at: col(|c| c.started_at.as_deref().unwrap_or("")),
            not_followed,
        }
    }

    /// The rows (a record whose columns disagree in length yields the complete rows only).
    pub(crate) fn containers(&self) -> Vec<Container> {
        let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
        (0..self.ids.len())
            .map_while(|i| {
                Some(Container {
                    id: self.ids.get(i)?.clone(),
                    name: self.names.get(i)?.clone(),
                    image: self.images.get(i)?.clone(),
                    restart_policy: some(self.policies.get(i)?),
                    started_at: some(self.started_at.get(i)?),
                })
            })
            .collect()
    }
}

/// What became of one container that ran before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Running now (its restart policy, or docker never stopped it).
    CameBack,
    /// Not running, and it finished while docker was down: the operation took it down.
    Down,
    /// It no longer exists (`--rm`: docker removed it when it stopped).
    Gone,
    /// It finished before the window (its own work was done): not the operation's doing.
    FinishedEarlier,
    /// docker did not tell us (an inspect failed).
    Unknown(String),
}

/// Pure: what became of each container of `before`, given the ids running now, what inspecting
/// the others said (`None`: no such container), and the window `(from, to)` (epoch seconds)
/// during which docker was down or restarting.
pub(crate) fn compare(
    before: &[Container],
    running_now: &[String],
    inspected: &[(String, Result<Option<Inspect>, Error>)],
    window: (u64, u64),
) -> Vec<(Container, Fate)> {
    before
        .iter()
        .map(|b| {
            if running_now.contains(&b.id) {
                return (b.clone(), Fate::CameBack);
            }
            let mut c = b.clone();
            let fate = match inspected.iter().find(|(id, _)| *id == b.id).map(|(_, r)| r) {
                None => Fate::Unknown("not inspected in time".into()),
                Some(Err(e)) => Fate::Unknown(e.to_string()),
                Some(Ok(None)) => Fate::Gone,
                Some(Ok(Some(i))) => {
                    if c.restart_policy.is_none() {
                        c.restart_policy = i.container.restart_policy.clone();
                    }
                    // The clocks are read to the second on both sides: a second of slack each way.
                    let in_window = i
                        .finished_at
                        .is_some_and(|t| t + 1 >= window.0 && t <= window.1 + 1);
                    if i.running {
                        Fate::CameBack
                    } else if in_window {
                        Fate::Down
                    } else {
                        Fate::FinishedEarlier
                    }
                }
            };
            (c, fate)
        })
        .collect()
}

/// `3 of 5 containers came back by their restart policy; 2 did not: web, db` (`None` when
/// no container that ran before is concerned).
pub(crate) fn summary(fates: &[(Container, Fate)]) -> Option<String> {
    let back = fates.iter().filter(|(_, f)| *f == Fate::CameBack).count();
    let down: Vec<&str> = fates
        .iter()
        .filter(|(_, f)| matches!(f, Fate::Down | Fate::Gone))
        .map(|(c, _)| c.name.as_str())
        .collect();
    let total = back + down.len();
    if total == 0 {
        return None;
    }
    let noun = if total == 1 {
        "container"
    } else {
        "containers"
    };
    Some(if down.is_empty() {
        format!("{back} of {total} {noun} came back by their restart policy")
    } else {
        format!(
            "{back} of {total} {noun} came back by their restart policy; {} did not: {}",
            down.len(),
            down.join(", ")
        )
    })
}

fn auto_restarts(c: &Container) -> bool {
    matches!(
        c.restart_policy.as_deref(),
        Some("always" | "unless-stopped")
    )
}

fn engine(env: &Env) -> Engine {
    let sock = env.root.path(super::act::DOCKER_SOCK);
    Engine::new(&sock, Instant::now() + env.bound(LIST_BUDGET))
}

/// The pre stage's list, or `None` (docker.service not active: no request is made, so a
/// stopped docker is never socket-activated; or the API failed: one line says so).
pub(crate) fn before(env: &Env, units: &[UnitState]) -> Option<Before> {
    if !units.iter().any(|u| u.unit == DOCKER && u.is_active()) {
        return None;
    }
    let taken = super::host::now_secs();
    let mut e = engine(env);
    // No ping first: the list's answer tells the API version (a round trip fewer, in every
    // operation that touches a watched package).
    let listing = e.list_running();
    match listing {
        Ok(l) => {
            let not_followed = l.total.saturating_sub(l.containers.len());
            if not_followed > 0 {
                say(&format!(
                    "docker runs {} containers; only the first {MAX_CONTAINERS} are followed through this operation",
                    l.total
                ));
            }
            Some(Before::new(taken, &l.containers, not_followed))
        }
        Err(err) => {
            say(&format!(
                "cannot list docker's containers ({err}); containers this operation takes down will not be named"
            ));
            None
        }
    }
}

/// The change to name as the cause: docker's own package, else containerd's, else the first.
fn cause(changes: &[Change]) -> Option<&Change> {
    let ships = |unit: &str, c: &&Change| {
        crate::watch::packages_shipping(unit).contains(&c.package.as_str())
    };
    changes
        .iter()
        .find(|c| ships(DOCKER, c))
        .or_else(|| changes.iter().find(|c| ships("containerd.service", c)))
        .or_else(|| changes.first())
}

/// The post stage's part, after the units were started again: if docker went down during the
/// operation (its main PID changed) and answers now, name each container that ran before and
/// is not running, and start it again if configured. `known`: docker.service's state as the
/// post stage read it, when nothing was started or restarted since (then systemd is not asked
/// again); `None`: ask.
pub(crate) fn after(
    env: &Env,
    sm: &dyn ServiceManager,
    rec: &Record,
    changes: &[Change],
    known: Option<&UnitState>,
) {
    // Switched off, or suspended for this operation (a record from an earlier step may still
    // be open): nothing is asked, nothing started.
    if !env.config.enabled || env.suspended {
        return;
    }
    let Some(before) = rec.containers.as_ref().filter(|b| !b.ids.is_empty()) else {
        return;
    };
    let Some(was) = rec.unit(DOCKER) else { return };
    // Asking systemd first: a request on the socket of a stopped docker would start it.
    let asked;
    let now = match known {
        Some(u) => u,
        None => match sm.show(&[DOCKER]).ok().and_then(|v| v.into_iter().next()) {
            Some(u) => {
                asked = u;
                &asked
            }
            None => return,
        },
    };
    if !now.is_active() || (was.main_pid != 0 && was.main_pid == now.main_pid) {
        return; // down: said by the unit's line; or docker kept running: nothing went down
    }
    if let Err(e) = super::act::docker_answers(env) {
        say(&format!("cannot tell which containers came back: {e}"));
        return;
    }
    let list = before.containers();
    let mut e = engine(env);
    let grace_end = Instant::now() + env.bound(POLICY_GRACE);
    let fates = loop {
        let fates = match look(&mut e, &list, before.taken) {
            Ok(f) => f,
            Err(err) => {
                say(&format!(
                    "cannot tell which containers came back: docker's API: {err}"
                ));
                return;
            }
        };
        let waiting = fates
            .iter()
            .any(|(c, f)| *f == Fate::Down && auto_restarts(c));
        if !waiting || Instant::now() >= grace_end {
            break fates;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let change = cause(changes);
    let what = match change {
        Some(c) => format!("the {}", c.describe()),
        None => "the package operation".into(),
    };
    let restart = env.config.restart_containers == RestartContainers::PreviouslyRunning;
    let mut started = Vec::new();
    for (c, f) in &fates {
        let policy = c.restart_policy.as_deref().unwrap_or("unknown");
        let head = format!(
            "container {} ({}, restart policy {policy}) was running before {what}",
            c.name, c.image
        );
        let (line, kind, outcome) = match f {
            Fate::Down if restart => match e.start(&c.id) {
                Ok(s) => {
                    started.push(c.name.clone());
                    let how = match s {
                        Started::Now => {
                            "started it again (restart_containers = \"previously-running\")"
                        }
                        Started::AlreadyRunning => "it is running again",
                    };
                    (
                        format!("{head} and was not running after it; {how}"),
                        "container-restarted",
                        how.to_string(),
                    )
                }
                Err(err) => {
                    let o = format!("starting it failed: {err}");
                    (
                        format!("{head} and is not running now; {o}"),
                        "container-down",
                        o,
                    )
                }
            },
            Fate::Down => (
                format!("{head} and is not running now"),
                "container-down",
                "left stopped".into(),
            ),
            Fate::Gone => (
                format!("{head} and no longer exists (docker removed it when it stopped)"),
                "container-down",
                "removed by docker".into(),
            ),
            Fate::Unknown(why) => {
                say(&format!(
                    "container {}: cannot tell whether it came back: {why}",
                    c.name
                ));
                continue;
            }
            Fate::CameBack | Fate::FinishedEarlier => continue,
        };
        say(&line);
        let ev = Event {
            time: crate::events::rfc3339(super::host::now_secs()),
            kind: kind.into(),
            unit: Some(DOCKER.into()),
            package: change.map(|c| c.package.clone()),
            old_version: change.and_then(|c| c.old.clone()),
            new_version: change.and_then(|c| c.new.clone()),
            cause: Some(format!(
                "container {} ({}, restart policy {policy})",
                c.name, c.image
            )),
            outcome: Some(outcome),
            message: line,
        };
        if let Err(err) = crate::events::record(&env.root, &ev) {
            say(&format!("cannot record the event: {err:#}"));
        }
    }
    if let Some(s) = summary(&fates) {
        if started.is_empty() {
            say(&s);
        } else {
            say(&format!("{s}; started again: {}", started.join(", ")));
        }
    }
}

/// One look at docker: the running list, then an inspect of each recorded container not in it.
fn look(e: &mut Engine, before: &[Container], taken: u64) -> Result<Vec<(Container, Fate)>, Error> {
    e.ping()?;
    let running: Vec<String> = e
        .list_running()?
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect();
    let inspected: Vec<(String, Result<Option<Inspect>, Error>)> = before
        .iter()
        .filter(|c| !running.contains(&c.id))
        .map(|c| {
            let r = match e.inspect(&c.id) {
                Ok(i) => Ok(Some(i)),
                Err(Error::Status(404, _)) => Ok(None),
                Err(err) => Err(err),
            };
            (c.id.clone(), r)
        })
        .collect();
    let now = super::host::now_secs();
    Ok(compare(before, &running, &inspected, (taken, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, policy: Option<&str>) -> Container {
        Container {
            id: format!("{:0>64}", name.len()),
            name: name.into(),
            image: "img".into(),
            restart_policy: policy.map(str::to_string),
            started_at: None,
        }
    }

    fn stopped(at: Option<u64>, policy: &str) -> Inspect {
        Inspect {
            container: Container {
                restart_policy: Some(policy.into()),
                ..c("x", None)
            },
            running: false,
            finished_at: at,
        }
    }

    #[test]
    fn compare_table() {
        let win = (1000, 1100);
        type Row<'a> = (&'a str, bool, Option<Result<Option<Inspect>, Error>>, Fate);
        let rows: Vec<Row> = vec![
            ("running now", true, None, Fate::CameBack),
            (
                "finished in the window",
                false,
                Some(Ok(Some(stopped(Some(1050), "no")))),
                Fate::Down,
            ),
            (
                "finished at the window's start (slack)",
                false,
                Some(Ok(Some(stopped(Some(999), "no")))),
                Fate::Down,
            ),
            (
                "finished at its end (slack)",
                false,
                Some(Ok(Some(stopped(Some(1101), "no")))),
                Fate::Down,
            ),
            (
                "finished before",
                false,
                Some(Ok(Some(stopped(Some(900), "no")))),
                Fate::FinishedEarlier,
            ),
            (
                "finished after (clock?)",
                false,
                Some(Ok(Some(stopped(Some(1200), "no")))),
                Fate::FinishedEarlier,
            ),
            (
                "never finished",
                false,
                Some(Ok(Some(stopped(None, "no")))),
                Fate::FinishedEarlier,
            ),
            ("removed", false, Some(Ok(None)), Fate::Gone),
            (
                "inspect failed",
                false,
                Some(Err(Error::Timeout)),
                Fate::Unknown("no answer in time".into()),
            ),
            (
                "not inspected",
                false,
                None,
                Fate::Unknown("not inspected in time".into()),
            ),
            (
                "running by inspect (raced the list)",
                false,
                Some(Ok(Some(Inspect {
                    running: true,
                    ..stopped(Some(1050), "always")
                }))),
                Fate::CameBack,
            ),
        ];
        for (name, running, inspect, want) in rows {
            let b = c("web", Some("no"));
            let running_now = if running { vec![b.id.clone()] } else { vec![] };
            let inspected: Vec<_> = inspect.into_iter().map(|r| (b.id.clone(), r)).collect();
            let got = compare(std::slice::from_ref(&b), &running_now, &inspected, win);
            assert_eq!(got[0].1, want, "row: {name}");
        }
        // An unknown policy before is filled in from the inspect.
        let b = c("web", None);
        let got = compare(
            std::slice::from_ref(&b),
            &[],
            &[(b.id.clone(), Ok(Some(stopped(Some(1050), "no"))))],
            win,
        );
        assert_eq!(got[0].0.restart_policy.as_deref(), Some("no"));
    }

    /// Counts the questions; starts nothing (the tests below must not get that far).
    struct Asked(std::cell::Cell<usize>, UnitState);

    impl ServiceManager for Asked {
        fn show(&self, units: &[&str]) -> anyhow::Result<Vec<UnitState>> {
            self.0.set(self.0.get() + 1);
            Ok(units.iter().map(|_| self.1.clone()).collect())
        }
        fn start(&self, unit: &str, _: Duration) -> anyhow::Result<()> {
            panic!("started {unit}")
        }
        fn restart(&self, unit: &str, _: Duration) -> anyhow::Result<()> {
            panic!("restarted {unit}")
        }
        fn system_state(&self) -> anyhow::Result<String> {
            Ok("running".into())
        }
    }

    #[test]
    fn after_asks_systemd_only_when_the_post_stage_could_not_tell() {
        let d = tempfile::tempdir().unwrap();
        let env = Env {
            root: crate::root::Root::new(d.path()),
            systemctl: None,
            config: crate::config::Config::default(),
            stage: super::super::Stage::AptPost,
            deadline: Instant::now() + Duration::from_secs(60),
            suspended: false,
        };
        let mut rec = super::super::state::tests::record();
        rec.units[0].main_pid = 100;
        rec.containers = Some(Before::new(1000, &[c("web", Some("no"))], 0));
        // docker kept running (same main PID): nothing went down, docker is not asked.
        let same = rec.units[0].clone();
        let sm = Asked(std::cell::Cell::new(0), same.clone());
        after(&env, &sm, &rec, &[], Some(&same));
        assert_eq!(sm.0.get(), 0, "told: systemd not asked");
        after(&env, &sm, &rec, &[], None);
        assert_eq!(sm.0.get(), 1, "not told: asked once");
    }

    #[test]
    fn before_columns_round_trip() {
        let list = vec![c("web", Some("no")), c("keep", None)];
        let b = Before::new(7, &list, 3);
        assert_eq!(b.containers(), list);
        let text = serde_json::to_string(&b).unwrap();
        let back: Before = serde_json::from_str(&text).unwrap();
        assert_eq!(back, b);
        // Columns of different lengths (a hand-edited record): the complete rows only.
        let mut short = b.clone();
        short.images.pop();
        assert_eq!(short.containers(), list[..1]);
    }

    #[test]
    fn summary_table() {
        let f = |n: &str, fate: Fate| (c(n, Some("no")), fate);
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[f("a", Fate::FinishedEarlier)]), None);
        assert_eq!(
            summary(&[f("a", Fate::CameBack)]).unwrap(),
            "1 of 1 container came back by their restart policy"
        );
        assert_eq!(
            summary(&[
                f("k1", Fate::CameBack),
                f("web", Fate::Down),
                f("k2", Fate::CameBack),
                f("db", Fate::Gone),
                f("k3", Fate::CameBack),
                f("batch", Fate::FinishedEarlier),
                f("q", Fate::Unknown("x".into())),
            ])
            .unwrap(),
            "3 of 5 containers came back by their restart policy; 2 did not: web, db"
        );
    }
}
