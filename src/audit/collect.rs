//! Gathers the facts: the dpkg status database, the watched packages' scripts (through
//! `crate::inspect`, classified once), the watched units, and the system settings.
//! Every failure becomes a line in the facts; nothing here stops the audit.

use super::facts::{Facts, PackageFacts, ScriptFacts, ScriptReading, StartAnswer, UnitFacts};
use super::system;
use crate::dpkg::info::ScriptKind;
use crate::dpkg::status::{PackageStatus, State, StatusDb};
use crate::inspect::{self, InstalledScript};
use crate::root::Root;
use crate::scripts::classify::{Analysis, Answer, UnitOp};
use crate::scripts::Node;
use crate::units;
use std::path::PathBuf;

/// The scripts that matter: the stops run from preinst/prerm/postrm, the starts from postinst.
pub(crate) const KINDS: [ScriptKind; 4] = [
    ScriptKind::Preinst,
    ScriptKind::Prerm,
    ScriptKind::Postrm,
    ScriptKind::Postinst,
];

/// What counts as "started again" on configure.
/// `try-restart` is not among them: it does nothing to a unit that is not running, and after a
/// prerm stopped the unit it is not running.
pub(crate) const START_OPS: [UnitOp; 2] = [UnitOp::Start, UnitOp::Restart];

pub(crate) fn collect(root: &Root, packages: &[String], watched_units: &[String]) -> Facts {
    let mut problems = Vec::new();
    let status = root.admindir().join("status");
    let db = if std::fs::symlink_metadata(&status).is_err() {
        // Not a dpkg system (or a wrong --root/--admindir): nothing can be said to be safe.
        problems.push(format!(
            "{} does not exist: no dpkg database to audit",
            status.display()
        ));
        None
    } else {
        match StatusDb::load(root.admindir()) {
            Ok(db) => Some(db),
            Err(e) => {
                problems.push(format!("cannot read the dpkg database: {e:#}"));
                None
            }
        }
    };
    if let Some(db) = &db {
        problems.extend(db.problems.iter().cloned());
    }
    let watched: Vec<&str> = watched_units.iter().map(String::as_str).collect();
    let names: Vec<&str> = packages.iter().map(String::as_str).collect();
    let scripts = match &db {
        Some(db) => inspect::installed_scripts(root.admindir(), db, &names, &KINDS),
        None => vec![],
    };

    let packages: Vec<PackageFacts> = packages
        .iter()
        .map(|name| {
            let status = db
                .as_ref()
                .and_then(|db| db.get(name))
                .filter(|p| p.is_present());
            PackageFacts {
                name: name.clone(),
                version: status
                    .and_then(|p| p.version.as_ref())
                    .map(std::string::ToString::to_string),
                state: status.map(|p| state_word(p.state).to_string()),
                scripts: scripts
                    .iter()
                    .filter(|s| s.package.name == *name)
                    .map(|s| script_facts(root, s, &watched))
                    .collect(),
            }
        })
        .collect();

    let units = load_units(root, watched_units, &mut problems);
    let uu_installed = db.as_ref().map(|db| {
        db.get("unattended-upgrades")
            .is_some_and(PackageStatus::is_present)
    });
    let system = system::collect(root, &names_of(&packages), uu_installed);
    Facts {
        watched_units: watched_units.to_vec(),
        packages,
        units,
        system,
        problems,
    }
}

fn names_of(p: &[PackageFacts]) -> Vec<String> {
    p.iter().map(|p| p.name.clone()).collect()
}

fn script_facts(root: &Root, s: &InstalledScript, watched: &[&str]) -> ScriptFacts {
    let reading = match &s.content {
        Err(e) => Err(e.clone()),
        Ok((text, analysis)) => {
            // File tests on literal paths are facts of this node (see scripts::node).
            let node = node_of(root, &s.package, analysis);
            let (stops, kept_off) = crate::scripts::stops_on_upgrade_on(analysis, watched, &node);
            let file_facts = node.facts(stops.iter().chain(&kept_off).copied());
            let stops: Vec<_> = stops.into_iter().cloned().collect();
            let kept_off: Vec<_> = kept_off.into_iter().cloned().collect();
            let starts_on_configure = if s.kind == ScriptKind::Postinst {
                watched
                    .iter()
                    .map(|u| {
                        let a = match analysis.query(&START_OPS, u, "configure") {
                            Answer::Yes(sites) => {
                                StartAnswer::Yes(sites.into_iter().cloned().collect())
                            }
                            Answer::No => StartAnswer::No,
                            Answer::Unknown(us) => {
                                StartAnswer::Unknown(us.into_iter().cloned().collect())
                            }
                        };
                        (u.to_string(), a)
                    })
                    .collect()
            } else {
                vec![]
            };
            Ok(ScriptReading {
                text: text.clone(),
                stops_on_upgrade: stops,
                kept_off_by_files: kept_off,
                file_facts,
                unknowns: analysis.unknowns.clone(),
                starts_on_configure,
            })
        }
    };
    let patched_backup = match &s.content {
        Ok((text, _)) => patched_backup(root, &s.package, s.kind, text),
        Err(_) => None,
    };
    ScriptFacts {
        kind: s.kind,
        path: s.path.clone(),
        reading,
        patched_backup,
    }
}

/// The node's files for the script's file tests, with what the package ships: dpkg's file list
/// of the installed version and, if apt's archive cache holds a newer `.deb`, its regular files
/// and conffiles (`md5sums`, `conffiles`). Read only when a guard tests a file.
fn node_of<'r>(root: &'r Root, pkg: &PackageStatus, analysis: &Analysis) -> Node<'r> {
    if analysis
        .sites
        .iter()
        .all(|s| s.guard.file_tests().is_empty())
    {
        return Node::new(root.dir(), Some(String::new()));
    }
    let mut list = crate::dpkg::info::info_path(root.admindir(), pkg, "list")
        .and_then(|p| crate::fsutil::read_text_nofollow(&p).ok());
    let newer = pkg
        .version
        .as_ref()
        .and_then(|v| crate::dpkg::deb::cached_candidate(root, &pkg.name, v).ok())
        .flatten();
    if let Some(deb) = newer {
        for member in ["md5sums", "conffiles"] {
            // md5sums: "HASH  usr/bin/x"; conffiles: "/etc/init.d/x" (maybe "remove-on-upgrade").
            // A member that cannot be read makes what the package ships unknown (Maybe).
            let text = if let Ok(t) = crate::dpkg::deb::control_text(&deb, member) {
                t.unwrap_or_default()
            } else {
                list = None;
                break;
            };
            for line in text.lines() {
                let path = match member {
                    "md5sums" => line.split_once("  ").map_or("", |(_, p)| p),
                    _ => line.split_whitespace().next().unwrap_or(""),
                };
                if let Some(list) = list.as_mut() {
                    list.push_str(&format!("\n/{}", path.trim_start_matches('/')));
                }
            }
        }
    }
    Node::new(root.dir(), list)
}

/// The backup of the original of this script if `patch` rewrote it and the installed text is
/// still exactly what it wrote, so that audit can say "safe because patched, original in X".
/// A stale backup (a newer package replaced the script) is not a reason for safety.
pub(crate) fn patched_backup(
    root: &Root,
    package: &PackageStatus,
    kind: ScriptKind,
    installed_text: &str,
) -> Option<PathBuf> {
    let b = crate::patch::backup_for(root, &package.name, kind)?;
    let current = b.state == crate::patch::BackupState::Current
        && b.record.patched_sha256 == crate::hash::sha256_hex(installed_text.as_bytes());
    current.then_some(b.original_copy)
}

fn load_units(root: &Root, names: &[String], problems: &mut Vec<String>) -> Vec<UnitFacts> {
    let mut loaded = Vec::new();
    let mut facts = Vec::new();
    for name in names {
        match units::load(root, name) {
            Ok(Some(u)) => {
                problems.extend(u.problems.iter().map(|p| format!("{name}: {p}")));
                facts.push(UnitFacts {
                    name: name.clone(),
                    found: Ok(true),
                    fragment: u.fragment.clone(),
                    masked: u.masked,
                    propagation: vec![],
                    pulls_in: pulls_in(&u),
                });
                loaded.push(u);
            }
            Ok(None) => facts.push(UnitFacts {
                name: name.clone(),
                found: Ok(false),
                fragment: None,
                masked: false,
                propagation: vec![],
                pulls_in: vec![],
            }),
            Err(e) => {
                let msg = format!("cannot load unit {name}: {e:#}");
                problems.push(msg.clone());
                facts.push(UnitFacts {
                    name: name.clone(),
                    found: Err(msg),
                    fragment: None,
                    masked: false,
                    propagation: vec![],
                    pulls_in: vec![],
                });
            }
        }
    }
    for f in &mut facts {
        f.propagation = units::stop_propagation(&loaded, &f.name);
    }
    facts
}

fn pulls_in(u: &units::Unit) -> Vec<String> {
    use units::DepKind::{BindsTo, Requires, Wants};
    let mut out: Vec<String> = Vec::new();
    for d in &u.deps {
        if matches!(d.kind, BindsTo | Requires | Wants) && !out.contains(&d.target) {
            out.push(d.target.clone());
        }
    }
    out
}

fn state_word(s: State) -> &'static str {
    match s {
        State::NotInstalled => "not-installed",
        State::ConfigFiles => "config-files",
        State::HalfInstalled => "half-installed",
        State::Unpacked => "unpacked",
        State::HalfConfigured => "half-configured",
        State::TriggersAwaited => "triggers-awaited",
        State::TriggersPending => "triggers-pending",
        State::Installed => "installed",
    }
}
