//! Why did a watched unit stop? Which package changed (old → new, from dpkg.log), and which
//! mechanism: that package's old maintainer script stopping the unit (the line, recorded before
//! dpkg replaced the script), or a dependency (`BindsTo=`/`Requires=`/`PartOf=`) on a unit that
//! such a script stopped.

use super::state::HarmfulSite;
use crate::dpkg::log::LogEvent;
use crate::units::Unit;

/// What dpkg did to one watched package in this transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub package: String,
    /// The version before the first action (None: newly installed).
    pub old: Option<String>,
    /// The version after the last action (None: removed).
    pub new: Option<String>,
    pub removed: bool,
}

impl Change {
    /// `containerd 1.3.3-0ubuntu2 → 1.3.3-0ubuntu2.1`, `removal of docker.io 20.10`, ...
    pub fn describe(&self) -> String {
        match (&self.old, &self.new, self.removed) {
            (Some(o), _, true) => format!("removal of {} {o}", self.package),
            (None, _, true) => format!("removal of {}", self.package),
            (Some(o), Some(n), _) if o == n => format!("reinstallation of {} {o}", self.package),
            (Some(o), Some(n), _) => format!("upgrade of {} {o} → {n}", self.package),
            (None, Some(n), _) => format!("installation of {} {n}", self.package),
            (Some(o), None, _) => format!("operation on {} {o}", self.package),
            (None, None, _) => format!("operation on {}", self.package),
        }
    }
}

fn version(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty() && s != "<none>")
}

/// The watched packages dpkg acted on, in the order dpkg first touched them.
pub fn changes(events: &[LogEvent], watched: &[String]) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for ev in events {
        let LogEvent::Action {
            action,
            package,
            old,
            new,
            ..
        } = ev
        else {
            continue;
        };
        if !watched.iter().any(|w| w == package) {
            continue;
        }
        let (old, new) = (version(old), version(new));
        let entry = match out.iter_mut().position(|c| &c.package == package) {
            Some(i) => &mut out[i],
            None => {
                out.push(Change {
                    package: package.clone(),
                    old: old.clone(),
                    new: None,
                    removed: false,
                });
                out.last_mut().expect("just pushed")
            }
        };
        match action.as_str() {
            "install" | "upgrade" => {
                entry.new = new;
                entry.removed = false;
            }
            "remove" | "purge" => {
                entry.new = None;
                entry.removed = true;
            }
            // configure/trigproc: the version stays what the unpack made it.
            _ => {
                if entry.new.is_none() && !entry.removed {
                    entry.new = new.or(old);
                }
            }
        }
    }
    out
}

/// Why one unit stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
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
pub fn attribute(
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

    fn act(action: &str, pkg: &str, old: &str, new: &str) -> LogEvent {
        LogEvent::Action {
            action: action.into(),
            package: pkg.into(),
            arch: Some("all".into()),
            old: Some(old.into()),
            new: Some(new.into()),
        }
    }

    #[test]
    fn changes_from_log() {
        let w = vec!["containerd".to_string(), "docker.io".to_string()];
        let ev = vec![
            act("upgrade", "containerd", "1.0", "1.1"),
            act("upgrade", "hello", "1", "2"),
            act("configure", "containerd", "1.1", "<none>"),
            act("remove", "docker.io", "20.10", "<none>"),
            act("install", "runc", "<none>", "1"),
        ];
        let c = changes(&ev, &w);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].describe(), "upgrade of containerd 1.0 → 1.1");
        assert_eq!(c[1].describe(), "removal of docker.io 20.10");
        assert!(changes(&[], &w).is_empty());
    }

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
