//! The "before": watched units' states, watched packages' versions, where dpkg.log ends, the
//! harmful lines of the scripts dpkg is about to run — written as the transaction record.

use super::state::{self, HarmfulSite, PackageVersion, Record};
use super::stream::Stream;
use super::{say, Env};
use crate::dpkg::info::ScriptKind;
use crate::dpkg::status::StatusDb;
use crate::patch::JitOutcome;
use crate::service::ServiceManager;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const DPKG_LOG: &str = "/var/log/dpkg.log";

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The kernel's boot id. A `--root` tree shares the kernel (and so the boot) with us, so
/// this is read from our own `/proc`, not from under the root.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn dpkg_log(env: &Env) -> PathBuf {
    env.root.path(DPKG_LOG)
}

pub fn systemd_running(env: &Env) -> bool {
    env.root.path("/run/systemd/system").is_dir()
}

/// Does any watched unit have a unit file? (A few stats, no process: dpkg-pre runs for every
/// `dpkg -i` on machines without docker too.)
fn any_watched_unit_file(env: &Env) -> bool {
    env.config.units.iter().any(|u| {
        crate::units::SEARCH_PATH
            .iter()
            .any(|d| std::fs::symlink_metadata(env.root.path(Path::new(d).join(u))).is_ok())
    })
}

/// `DPkg::Pre-Install-Pkgs`: record only when apt is about to touch a watched package.
pub fn apt_pkgs(env: &Env, stream: &Stream) -> Result<()> {
    let watched: Vec<_> = stream.touches(&env.config.packages).cloned().collect();
    if watched.is_empty() {
        return Ok(());
    }
    if !systemd_running(env) {
        // A chroot or an image build: maintainer scripts stop nothing without systemd, so
        // there is nothing to record, patch or start. Said once, since a watched package moves.
        say(
            "systemd is not running here (a chroot, or a container without systemd): nothing to do",
        );
        return Ok(());
    }
    let changing: Vec<String> = watched
        .iter()
        .filter(|a| a.replaces_installed())
        .map(|a| a.name.clone())
        .collect();
    let upgrading: Vec<String> = watched
        .iter()
        .filter(|a| {
            a.old_version.is_some()
                && a.new_version.is_some()
                && matches!(a.op, super::stream::Op::Unpack(_))
        })
        .map(|a| a.name.clone())
        .collect();
    // The snapshot reads the scripts before the guard rewrites them (the record names the
    // original lines); the guard runs even when the snapshot failed: it prevents the outage.
    let rec = take(env, &changing);
    let patched = if env.config.jit_patch && !upgrading.is_empty() {
        jit(env, &upgrading)
    } else {
        Vec::new()
    };
    let mut rec = rec?;
    rec.containers = super::containers::before(env, &rec.units);
    rec.command_line = stream.command_line.clone();
    rec.actions = watched;
    for h in &mut rec.harmful {
        h.patched = was_patched(&patched, h);
    }
    save(env, rec)
}

/// dpkg's `pre-invoke` outside apt: we do not know which packages will change, so every present
/// watched package's scripts are read.
pub fn dpkg_pre(env: &Env) -> Result<()> {
    if !systemd_running(env) || !any_watched_unit_file(env) {
        return Ok(());
    }
    let all = env.config.packages.clone();
    let rec = take(env, &all)?;
    save(env, rec)
}

/// Did the just-in-time guard rewrite the script this harmful line is in? Matched on the
/// package name and the script kind exactly; a script it refused to touch was not patched.
pub fn was_patched(outcomes: &[JitOutcome], h: &HarmfulSite) -> bool {
    outcomes
        .iter()
        .any(|o| o.patched && o.package == h.package && o.kind.name() == h.script)
}

/// Runs the just-in-time guard; returns what it did (one outcome per script it looked at).
fn jit(env: &Env, packages: &[String]) -> Vec<JitOutcome> {
    let r = std::panic::catch_unwind(|| crate::patch::jit_guard(&env.root, &env.config, packages))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error")));
    match r {
        Ok(outcomes) => {
            for o in &outcomes {
                say(&format!("just-in-time guard: {}", o.line));
            }
            // One event per script, so that the journal says which package each is about,
            // and a script left unpatched (the outage will happen) stands out as trouble.
            for o in &outcomes {
                let ev = crate::events::Event {
                    time: crate::events::rfc3339(now_secs()),
                    kind: if o.patched { "patched" } else { "error" }.into(),
                    package: Some(o.package.clone()),
                    message: format!("just-in-time guard: {}", o.line),
                    ..Default::default()
                };
                if let Err(e) = crate::events::record(&env.root, &ev) {
                    say(&format!("cannot record the event: {e:#}"));
                }
            }
            outcomes
        }
        Err(e) => {
            let line = format!(
                "just-in-time guard: {e:#}; the post stage will still start what gets stopped"
            );
            say(&line);
            // A guard that could not run is trouble the admin must see later too (journal,
            // events.jsonl, `status`), not only in apt's scrollback.
            let ev = crate::events::Event {
                time: crate::events::rfc3339(now_secs()),
                kind: "error".into(),
                message: line,
                ..Default::default()
            };
            if let Err(e) = crate::events::record(&env.root, &ev) {
                say(&format!("cannot record the event: {e:#}"));
            }
            Vec::new()
        }
    }
}

/// Takes a snapshot (without writing it). `changing`: packages whose installed scripts will run.
pub fn take(env: &Env, changing: &[String]) -> Result<Record> {
    let sm = env.service_manager();
    let units: Vec<&str> = env.config.units.iter().map(|s| s.as_str()).collect();
    let states = sm
        .show(&units)
        .context("cannot record the watched units' state; nothing will be started afterwards")?;
    let admindir = env.root.admindir();
    let (packages, harmful) = match StatusDb::load(admindir) {
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
                        .map(|v| v.to_string()),
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
    let (log_file, offset) = match crate::dpkg::log::position(&dpkg_log(env)) {
        Some((id, len)) => (Some(id), len),
        None => (None, 0),
    };
    let now = state::Now::read();
    Ok(Record {
        schema: state::SCHEMA,
        boot_id: boot_id(),
        created: now.wall,
        updated: now.wall,
        updated_boot: Some(now.boot),
        stage: super::stage_name(env.stage).into(),
        command_line: None,
        dpkg_log_offset: offset,
        dpkg_log_file: log_file,
        units: states,
        packages,
        actions: Vec::new(),
        harmful,
        failed_starts: Vec::new(),
        containers: None,
    })
}

/// The lines of the installed prerm/postrm of `changing` that stop a watched unit on upgrade
/// (dpkg runs these old scripts; after the upgrade their text is gone).
fn harmful_sites(env: &Env, db: &StatusDb, changing: &[String]) -> Vec<HarmfulSite> {
    let pkgs: Vec<&str> = changing.iter().map(|s| s.as_str()).collect();
    let units: Vec<&str> = env.config.units.iter().map(|s| s.as_str()).collect();
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
                version: s.package.version.as_ref().map(|v| v.to_string()),
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
pub fn save(env: &Env, rec: Record) -> Result<()> {
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
    match crate::dpkg::log::read_since_in(&dpkg_log(env), rec.dpkg_log_file, rec.dpkg_log_offset) {
        Ok(events) => !super::attribute::changes(&events, &env.config.packages).is_empty(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(package: &str, script: &str) -> HarmfulSite {
        HarmfulSite {
            package: package.into(),
            version: Some("1".into()),
            script: script.into(),
            units: vec!["containerd.service".into()],
            first_line: 5,
            last_line: 5,
            text: "deb-systemd-invoke stop 'containerd.service'".into(),
            patched: false,
        }
    }

    fn outcome(package: &str, kind: ScriptKind, patched: bool) -> JitOutcome {
        JitOutcome {
            package: package.into(),
            kind,
            patched,
            line: format!("patched {package} {}: ...", kind.name()),
        }
    }

    #[test]
    fn was_patched_matches_package_and_script_exactly() {
        use ScriptKind::*;
        // (row, the harmful site's package and script, what the guard did, patched?)
        type Row<'a> = (
            &'a str,
            (&'a str, &'a str),
            &'a [(&'a str, ScriptKind, bool)],
            bool,
        );
        let rows: &[Row] = &[
            (
                "same package, same script",
                ("containerd", "prerm"),
                &[("containerd", Prerm, true)],
                true,
            ),
            (
                "containerd.io patched says nothing about containerd",
                ("containerd", "prerm"),
                &[("containerd.io", Prerm, true)],
                false,
            ),
            (
                "containerd patched says nothing about containerd.io",
                ("containerd.io", "prerm"),
                &[("containerd", Prerm, true)],
                false,
            ),
            (
                "another script of the package",
                ("containerd", "postrm"),
                &[("containerd", Prerm, true)],
                false,
            ),
            (
                "refused (left alone)",
                ("containerd", "prerm"),
                &[("containerd", Prerm, false)],
                false,
            ),
            ("nothing done", ("docker.io", "prerm"), &[], false),
            (
                "one of several",
                ("docker.io", "prerm"),
                &[("containerd", Prerm, true), ("docker.io", Prerm, true)],
                true,
            ),
        ];
        for (name, (pkg, script), outs, want) in rows {
            let outs: Vec<JitOutcome> = outs.iter().map(|(p, k, d)| outcome(p, *k, *d)).collect();
            assert_eq!(was_patched(&outs, &site(pkg, script)), *want, "row: {name}");
        }
    }
}
