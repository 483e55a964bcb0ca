//! The "before": watched units' states, watched packages' versions, where dpkg.log ends, the
//! harmful lines of the scripts dpkg is about to run — taken, and written as the transaction
//! record (merged into a fresh open one). Called by the pre stages ([`super::pre`]).

use super::state::{self, HarmfulSite, PackageVersion, Record};
use super::{dpkg, say, Env};
use crate::dpkg::info::ScriptKind;
use crate::dpkg::status::StatusDb;
use crate::service::ServiceManager;
use anyhow::{Context, Result};

/// Takes a snapshot (without writing it). `changing`: packages whose installed scripts will run.
pub(crate) fn take(env: &Env, changing: &[String]) -> Result<Record> {
    let sm = env.service_manager();
    let units = watched_units(env);
    let states = sm
        .show(&units)
        .context("cannot record the watched units' state; nothing will be started afterwards")?;
    let admindir = env.root.admindir();
    // Only the watched packages' paragraphs are parsed: the status file holds thousands.
    let watched: Vec<&str> = env.config.packages.iter().map(String::as_str).collect();
    let (packages, harmful) = match StatusDb::load_only(admindir, &watched) {
        Ok(db) => {
            let packages = env
                .config
                .packages
                .iter()
                .map(|p| PackageVersion {
                    name: p.clone(),
                    version: db
                        .get(p)
                        .filter(|s| s.is_present())
                        .and_then(|s| s.version.as_ref())
                        .map(std::string::ToString::to_string),
                })
                .collect();
            // Naming the harmful lines later is a nicety; a fault there must not cost the snapshot.
            let harmful = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                harmful_sites(env, &db, changing)
            }))
            .unwrap_or_else(|_| {
                say("could not analyse the maintainer scripts; the report will not name their lines");
                Vec::new()
            });
            (packages, harmful)
        }
        Err(e) => {
            say(&format!("{e:#}; package versions not recorded"));
            (Vec::new(), Vec::new())
        }
    };
    let log = crate::dpkg::log::position(&dpkg::log_path(env))
        .map_or((None, 0), |(id, len)| (Some(id), len));
    Ok(Record {
        packages,
        harmful,
        ..Record::new(super::stage_name(env.stage), states, log)
    })
}

/// The lines of the installed prerm/postrm of `changing` that stop a watched unit on upgrade
/// (dpkg runs these old scripts; after the upgrade their text is gone).
fn harmful_sites(env: &Env, db: &StatusDb, changing: &[String]) -> Vec<HarmfulSite> {
    let pkgs: Vec<&str> = changing.iter().map(std::string::String::as_str).collect();
    let units = watched_units(env);
    let scripts = crate::inspect::installed_scripts(
        env.root.admindir(),
        db,
        &pkgs,
        &[ScriptKind::Prerm, ScriptKind::Postrm],
    );
    let mut out = Vec::new();
    for s in &scripts {
        let (Some(text), Some(analysis)) = (s.text(), s.analysis()) else {
            if let Err(e) = &s.content {
                say(e);
            }
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for site in crate::scripts::stops_on_upgrade(analysis, &units) {
            let (a, b) = site.lines;
            let excerpt = lines
                .get(a.saturating_sub(1)..b.min(lines.len()))
                .map(|l| l.iter().map(|x| x.trim()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            out.push(HarmfulSite {
                package: s.package.name.clone(),
                version: s
                    .package
                    .version
                    .as_ref()
                    .map(std::string::ToString::to_string),
                script: s.kind.name().into(),
                units: site.units.clone(),
                first_line: a,
                last_line: b,
                text: excerpt,
                patched: false,
            });
        }
    }
    out
}

/// Writes the snapshot, merged into a fresh open record if one exists (the earlier "before"
/// wins: an operation in several steps must not forget what ran before its first step).
pub(crate) fn save(env: &Env, rec: Record) -> Result<()> {
    let _lock = state::lock(&env.root, env.lock_deadline())?;
    let rec = match state::read(&env.root) {
        Ok(Some(mut old)) => {
            let now = state::Now {
                wall: rec.updated,
                boot: rec.updated_boot.unwrap_or(0),
            };
            match old.freshness(&rec.boot_id, now, env.config.max_snapshot_age_secs) {
                // The older "before" is kept only if the operation it was taken for really
                // changed a watched package (dpkg.log says so): else it is stale — apt was
                // killed before dpkg ran, and the admin may have stopped docker since.
                Ok(()) if changed_watched_since(env, &old) => {
                    old.merge_newer(rec);
                    old
                }
                Ok(()) => rec,
                Err(why) => {
                    say(&format!("replacing the previous record: {why}"));
                    rec
                }
            }
        }
        Ok(None) => rec,
        Err(e) => {
            say(&format!("{e:#}; replacing it"));
            rec
        }
    };
    state::write(&env.root, &rec)
}

/// Did dpkg change a watched package after `rec` was taken? An unreadable log counts as yes
/// (keeping the earlier "before" is what the tool did before it asked).
fn changed_watched_since(env: &Env, rec: &Record) -> bool {
    match dpkg::read_since(env, rec) {
        Ok(events) => !dpkg::changes(&events, &env.config.packages).is_empty(),
        Err(_) => true,
    }
}

/// The watched units' names, as `systemctl show` and the script analysis take them.
fn watched_units(env: &Env) -> Vec<&str> {
    env.config.units.iter().map(String::as_str).collect()
}
