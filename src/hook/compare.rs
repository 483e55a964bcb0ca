//! The compare step, pure: the record's "before", the states now and what dpkg did
//! ([`super::dpkg`]) → which watched units stopped and why. Why: which package changed
//! (old → new), and which mechanism — that package's old maintainer script stopping the unit
//! (the line, recorded before dpkg replaced the script), or a dependency
//! (`BindsTo=`/`Requires=`/`PartOf=`) on a unit that such a script stopped. No I/O here: unit
//! files are loaded by the caller.

use super::decide::UnitFacts;
use super::dpkg::Change;
use super::state::{HarmfulSite, Record};
use crate::service::UnitState;
use crate::units::Unit;

/// Did this unit certainly run through the operation: active before and now, with the same
/// (known) main PID?
pub(crate) fn kept_running(before: Option<&UnitState>, now: Option<&UnitState>) -> bool {
    matches!((before, now), (Some(b), Some(n))
        if b.is_active() && n.is_active() && b.main_pid != 0 && b.main_pid == n.main_pid)
}

/// The facts [`super::decide::decide`] needs about each recorded unit, in the record's order;
/// the ones only a process can tell (policy-rc.d) are left `false` for the caller to fill in.
pub(crate) fn unit_facts(
    rec: &Record,
    now: &[UnitState],
    changes: &[Change],
) -> Vec<(String, UnitFacts)> {
    rec.units
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
        .collect()
}

/// The upgrade `unit` kept running through (the same main PID before and now), if its package
/// was upgraded (not removed) in this transaction: it still runs the old binary.
pub(crate) fn upgraded_while_running<'a>(
    unit: &str,
    rec: &Record,
    changes: &'a [Change],
    now: &[UnitState],
) -> Option<&'a Change> {
    let change = changes.iter().find(|c| {
        !c.removed
            && c.new.is_some()
            && crate::watch::packages_shipping(unit).contains(&c.package.as_str())
    })?;
    let (before, after) = (rec.unit(unit)?, now.iter().find(|u| u.unit == unit)?);
    kept_running(Some(before), Some(after)).then_some(change)
}

/// One group of units stopped for the same reason (one report line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub cause: Cause,
    /// In start order.
    pub units: Vec<String>,
}

/// Groups the `stopped` units by cause, in start order (`units`: the loaded unit files, for
/// the dependencies).
pub(crate) fn groups(
    stopped: &[&str],
    rec: &Record,
    changes: &[Change],
    units: &[Unit],
    now: &[UnitState],
) -> Vec<Group> {
    let propagate = |u: &[Unit], s: &str| crate::units::stop_propagation(u, s);
    let kept = |u: &str| kept_running(rec.unit(u), now.iter().find(|n| n.unit == u));
    let mut groups: Vec<Group> = Vec::new();
    for u in crate::watch::start_order(stopped) {
        let cause = attribute(u, &rec.harmful, changes, units, &propagate, &kept);
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
    groups
}

/// Why one unit stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// The package change that explains it (None: none found).
    pub change: Option<Change>,
    /// Human fragments: `its prerm line 5 stops containerd.service`,
    /// `docker.service BindsTo=containerd.service`.
    pub mechanisms: Vec<String>,
}

fn site_text(h: &HarmfulSite) -> String {
    let lines = if h.first_line == h.last_line {
        format!("line {}", h.first_line)
    } else {
        format!("lines {}-{}", h.first_line, h.last_line)
    };
    let units = h.units.join(" ");
    format!(
        "{}'s {} {lines} stops {units}{}",
        h.package,
        h.script,
        if h.patched {
            " (patched by the just-in-time guard, yet the unit stopped)"
        } else {
            ""
        }
    )
}

/// Attributes the stop of `unit`. `units` are the loaded unit files (for dependencies);
/// `propagate` answers "which units stop when X is stopped" (crate::units::stop_propagation).
/// `kept_running` says which units certainly did not stop (the same main PID before and now):
/// a stop cannot have propagated from them, whatever a script or a dependency would suggest.
pub(crate) fn attribute(
    unit: &str,
    harmful: &[HarmfulSite],
    changes: &[Change],
    units: &[Unit],
    propagate: &dyn Fn(&[Unit], &str) -> Vec<crate::units::Propagated>,
    kept_running: &dyn Fn(&str) -> bool,
) -> Cause {
    // dpkg runs the old scripts in the order it unpacks (the order of `changes`): the first
    // change whose script explains the stop is the cause; a later package's script found the
    // unit already stopped. A line the just-in-time guard patched is a suspect only after
    // every unpatched one.
    for patched in [false, true] {
        for c in changes {
            let sites: Vec<&HarmfulSite> = harmful
                .iter()
                .filter(|h| h.package == c.package && h.patched == patched)
                .collect();
            // 1. A script of this package stops this very unit.
            if let Some(h) = sites.iter().find(|h| h.units.iter().any(|u| u == unit)) {
                return Cause {
                    change: Some(c.clone()),
                    mechanisms: vec![site_text(h)],
                };
            }
            // 2. A script of this package stops a unit this one depends on.
            for h in &sites {
                for stopped in h.units.iter().filter(|u| !kept_running(u)) {
                    if let Some(p) = propagate(units, stopped)
                        .into_iter()
                        .find(|p| p.unit == unit)
                    {
                        let mut m = vec![site_text(h)];
                        m.extend(chain_text(&p));
                        return Cause {
                            change: Some(c.clone()),
                            mechanisms: m,
                        };
                    }
                }
            }
        }
    }
    // 3. No recorded line (script unreadable, new preinst, ...): a changed package ships a unit
    //    whose stop propagates to this one.
    for c in changes {
        let shipped: Vec<&str> = crate::watch::DEFAULT_UNITS
            .iter()
            .copied()
            .filter(|u| crate::watch::packages_shipping(u).contains(&c.package.as_str()))
            .collect();
        // The unit's own package before a sibling unit's propagation.
        if shipped.contains(&unit) {
            return Cause {
                change: Some(c.clone()),
                mechanisms: vec![format!("{unit} belongs to {}", c.package)],
            };
        }
        for s in shipped.into_iter().filter(|s| !kept_running(s)) {
            if let Some(p) = propagate(units, s).into_iter().find(|p| p.unit == unit) {
                return Cause {
                    change: Some(c.clone()),
                    mechanisms: chain_text(&p),
                };
            }
        }
    }
    Cause {
        change: changes.first().cloned(),
        mechanisms: vec!["the mechanism is unknown".into()],
    }
}

/// `docker.service BindsTo=containerd.service`, `docker.socket PartOf=docker.service`: each link
/// is set on the unit the next link targets (the last one on the unit itself).
fn chain_text(p: &crate::units::Propagated) -> Vec<String> {
    p.chain
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let owner = p
                .chain
                .get(i + 1)
                .map_or(p.unit.as_str(), |n| n.target.as_str());
            format!("{owner} {}={}", d.kind.key(), d.target)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_stop_is_named_with_its_line() {
        let h = HarmfulSite {
            package: "docker.io".into(),
            version: Some("19.03".into()),
            script: "prerm".into(),
            units: vec!["docker.service".into(), "docker.socket".into()],
            first_line: 5,
            last_line: 5,
            text: "deb-systemd-invoke stop 'docker.service' 'docker.socket'".into(),
            patched: false,
        };
        let c = vec![Change {
            package: "docker.io".into(),
            old: Some("19.03".into()),
            new: Some("19.04".into()),
            removed: false,
        }];
        let none = |_: &[Unit], _: &str| Vec::new();
        let cause = attribute(
            "docker.socket",
            std::slice::from_ref(&h),
            &c,
            &[],
            &none,
            &|_| false,
        );
        assert_eq!(cause.change, Some(c[0].clone()));
        assert_eq!(
            cause.mechanisms,
            vec!["docker.io's prerm line 5 stops docker.service docker.socket"]
        );
        // The package did not change: the line does not explain anything.
        let cause = attribute("docker.socket", &[h], &[], &[], &none, &|_| false);
        assert_eq!(cause.change, None);
        assert!(cause.mechanisms[0].contains("unknown"));
    }

    fn site(pkg: &str, unit: &str, patched: bool) -> HarmfulSite {
        HarmfulSite {
            package: pkg.into(),
            version: Some("1".into()),
            script: "prerm".into(),
            units: vec![unit.into()],
            first_line: 5,
            last_line: 5,
            text: format!("deb-systemd-invoke stop '{unit}'"),
            patched,
        }
    }

    fn change(pkg: &str) -> Change {
        Change {
            package: pkg.into(),
            old: Some("1".into()),
            new: Some("2".into()),
            removed: false,
        }
    }

    /// Stopping containerd.service stops docker.service (BindsTo=).
    fn bindsto(_: &[Unit], stopped: &str) -> Vec<crate::units::Propagated> {
        if stopped != "containerd.service" {
            return Vec::new();
        }
        vec![crate::units::Propagated {
            unit: "docker.service".into(),
            chain: vec![crate::units::Dep {
                kind: crate::units::DepKind::BindsTo,
                target: "containerd.service".into(),
                evidence: crate::units::Evidence {
                    file: "/lib/systemd/system/docker.service".into(),
                    line: 6,
                    text: "BindsTo=containerd.service".into(),
                },
            }],
        }]
    }

    /// Several watched packages changed (one apt run, or several unattended-upgrades steps
    /// folded into one record): the first change, in dpkg's order, whose script explains the
    /// stop is the cause; a patched line is a suspect only after every unpatched one.
    #[test]
    fn the_first_explaining_change_in_dpkg_order_is_the_cause() {
        let c = site("containerd", "containerd.service", false);
        let d = site("docker.io", "docker.service", false);
        let c_patched = site("containerd", "containerd.service", true);
        let d_patched = site("docker.io", "docker.service", true);
        type Row<'a> = (&'a str, Vec<HarmfulSite>, Vec<&'a str>, &'a str, &'a str);
        let rows: Vec<Row> = vec![
            (
                "containerd first: BindsTo= explains it before docker.io's own line",
                vec![d.clone(), c.clone()],
                vec!["containerd", "docker.io"],
                "containerd",
                "BindsTo=containerd.service",
            ),
            (
                "docker.io first: its own line",
                vec![c.clone(), d.clone()],
                vec!["docker.io", "containerd"],
                "docker.io",
                "docker.io's prerm line 5",
            ),
            (
                "containerd first but patched: docker.io's unpatched line",
                vec![c_patched.clone(), d.clone()],
                vec!["containerd", "docker.io"],
                "docker.io",
                "docker.io's prerm line 5 stops docker.service",
            ),
            (
                "only patched lines: the first change still",
                vec![d_patched.clone(), c_patched.clone()],
                vec!["containerd", "docker.io"],
                "containerd",
                "yet the unit stopped",
            ),
            (
                "a line of a package that did not change explains nothing",
                vec![d.clone(), c.clone()],
                vec!["containerd"],
                "containerd",
                "BindsTo=containerd.service",
            ),
        ];
        for (name, harmful, order, want_pkg, want_text) in rows {
            let changes: Vec<Change> = order.iter().map(|p| change(p)).collect();
            let cause = attribute("docker.service", &harmful, &changes, &[], &bindsto, &|_| {
                false
            });
            assert_eq!(
                cause.change.as_ref().map(|c| c.package.as_str()),
                Some(want_pkg),
                "row: {name}: {cause:?}"
            );
            assert!(
                cause.mechanisms.join("; ").contains(want_text),
                "row: {name}: {cause:?}"
            );
        }
    }

    /// containerd's line was patched and containerd kept its PID: docker.service cannot have
    /// stopped through BindsTo=; docker.io (whose script could not be analysed) is named.
    #[test]
    fn no_propagation_from_a_unit_that_kept_running() {
        let harmful = vec![site("containerd", "containerd.service", true)];
        let changes = vec![change("containerd"), change("docker.io")];
        let kept = |u: &str| u == "containerd.service";
        let cause = attribute("docker.service", &harmful, &changes, &[], &bindsto, &kept);
        assert_eq!(cause.change, Some(change("docker.io")), "{cause:?}");
        assert_eq!(cause.mechanisms, ["docker.service belongs to docker.io"]);
        // Without that knowledge the dependency is the best explanation.
        let cause = attribute("docker.service", &harmful, &changes, &[], &bindsto, &|_| {
            false
        });
        assert_eq!(cause.change, Some(change("containerd")), "{cause:?}");
    }
}
