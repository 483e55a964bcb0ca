//! `docker-upgrade-guard patch`: rewrite an installed harmful maintainer script into its
//! repaired form (dpkg lock, atomic replace, backup), and `--revert` it byte for byte.
//!
//! - [`plan`] — pure: which scripts, and what text (always `scripts::repair::repair`).
//! - [`apply`] — the checks and the write (backup first, then an atomic replace).
//! - [`backup`] — the backup store; [`backup_for`] is what `audit` asks.
//! - [`revert`] — putting originals back.
//! - the unified diff shown by `--dry-run` is [`crate::diff`]'s.

pub mod apply;
pub mod backup;
pub mod plan;
pub mod revert;

pub use backup::{backup_for, BackupInfo, BackupState};

use crate::ctx::Ctx;
use crate::dpkg::lock;
use crate::dpkg::status::StatusDb;
use crate::root::Root;
use anyhow::{Context, Result};
use plan::{Plan, PlanItem};
use std::process::ExitCode;

/// `patch`'s options, checked (valid package names, one mode).
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these packages' scripts (empty: every watched package).
    pub packages: Vec<String>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rewrite the harmful scripts (dpkg lock, backup, atomic replace).
    Apply,
    /// Print the diff of what would be written, change nothing (takes no lock).
    DryRun,
    /// Restore the originals where the installed script is still what patch wrote.
    Revert,
}

pub fn run(ctx: &Ctx, args: &Options) -> anyhow::Result<ExitCode> {
    let root = &ctx.root;
    let dry_run = args.mode == Mode::DryRun;
    if args.mode == Mode::Revert {
        let _lock = lock::acquire(root.admindir(), lock::frontend_locked_by_env())?;
        let (outcomes, problems) = revert::revert(root, &args.packages);
        revert::print(&outcomes, &problems);
        let bad = revert::any_failed(&outcomes) || !problems.is_empty();
        return Ok(ExitCode::from(u8::from(bad)));
    }
    let config = crate::config::load(root)?;
    let packages = if args.packages.is_empty() {
        config.packages.clone()
    } else {
        args.packages.clone()
    };
    let units: Vec<&str> = config.units.iter().map(String::as_str).collect();
    // Hold the lock from reading the database to the last write, so that dpkg cannot change
    // a script between our reading and our rewriting it. A dry run writes nothing: no lock.
    let _lock = if dry_run {
        None
    } else {
        Some(lock::acquire(
            root.admindir(),
            lock::frontend_locked_by_env(),
        )?)
    };
    let plan = make_plan(root, &packages, &units, !args.packages.is_empty(), false)?;
    for r in &plan.refusals {
        errln!(
            "docker-upgrade-guard: not patching {} {}: {}",
            r.package,
            r.kind.name(),
            r.reason
        );
    }
    let mut failed = !plan.refusals.is_empty();
    if plan.items.is_empty() && plan.refusals.is_empty() {
        outln!("nothing to patch");
    }
    for item in &plan.items {
        if dry_run {
            out!("{}", item_diff(item));
            outln!("would patch {}", describe(item, None));
            continue;
        }
        // The diff is shown only for what was really written.
        match apply::apply_one(root, item) {
            Ok(a) => {
                out!("{}", item_diff(item));
                outln!("patched {}", describe(item, Some(&a.backup)));
            }
            Err(e) => {
                failed = true;
                errln!(
                    "docker-upgrade-guard: not patching {} {}: {e:#}",
                    item.package,
                    item.kind.name()
                );
            }
        }
    }
    Ok(ExitCode::from(u8::from(failed)))
}

/// What the just-in-time guard did with one script: the caller matches it to its own records
/// by `package` and `kind` (never by searching the human line for a package name: "containerd"
/// is part of "containerd.io").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitOutcome {
    pub package: String,
    pub kind: crate::dpkg::info::ScriptKind,
    /// The script was rewritten: dpkg will run the repaired text. `false`: it was left alone
    /// (refused, or the write failed), and `line` says why.
    pub patched: bool,
    /// One line for the admin ("patched containerd 1.3.3-0ubuntu2 prerm: ...",
    /// "could not patch docker.io prerm: ...").
    pub line: String,
}

/// The just-in-time guard, called from the apt `Pre-Install-Pkgs` stage (apt holds the
/// frontend lock, dpkg is not running yet): patches the harmful installed prerm/preinst of
/// each of `packages` that is about to be upgraded. Returns one outcome per script patched
/// (and one per script it had to leave alone, saying why). `config` is the hook's own: with a
/// broken config.toml the hook runs on its fallback (defaults, but an explicit "off" wins), and
/// so must the guard — a typo in the file must not silently disable it.
pub fn jit_guard(
    root: &crate::root::Root,
    config: &crate::config::Config,
    packages: &[String],
) -> anyhow::Result<Vec<JitOutcome>> {
    if !config.jit_patch {
        return Ok(Vec::new());
    }
    let wanted: Vec<String> = packages
        .iter()
        .filter(|p| config.packages.contains(p))
        .cloned()
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let units: Vec<&str> = config.units.iter().map(String::as_str).collect();
    let _lock = lock::acquire(root.admindir(), true)?;
    let plan = make_plan(root, &wanted, &units, false, true)?;
    let mut out: Vec<JitOutcome> = plan
        .refusals
        .iter()
        .map(|r| JitOutcome {
            package: r.package.clone(),
            kind: r.kind,
            patched: false,
            line: format!(
                "could not patch {} {}: {}",
                r.package,
                r.kind.name(),
                r.reason
            ),
        })
        .collect();
    for item in &plan.items {
        let (patched, line) = match apply::apply_one(root, item) {
            Ok(a) => (true, format!("patched {}", describe(item, Some(&a.backup)))),
            Err(e) => (
                false,
                format!(
                    "could not patch {} {}: {e:#}",
                    item.package,
                    item.kind.name()
                ),
            ),
        };
        out.push(JitOutcome {
            package: item.package.clone(),
            kind: item.kind,
            patched,
            line,
        });
    }
    Ok(out)
}

/// `explicit`: the admin named the packages, so say which of them are not installed.
/// `only_these`: parse only `packages`' paragraphs of the status file (the just-in-time
/// guard, inside apt's run: the file holds thousands); `patch` reads it all, and says what is
/// wrong anywhere in it.
fn make_plan(
    root: &Root,
    packages: &[String],
    units: &[&str],
    explicit: bool,
    only_these: bool,
) -> Result<Plan> {
    let names: Vec<&str> = packages.iter().map(String::as_str).collect();
    let db = if only_these {
        StatusDb::load_only(root.admindir(), &names)
    } else {
        StatusDb::load(root.admindir())
    }
    .with_context(|| {
        format!(
            "cannot read the dpkg database in {}",
            root.admindir().display()
        )
    })?;
    for p in &db.problems {
        errln!("docker-upgrade-guard: {p}");
    }
    if explicit {
        for n in names.iter().filter(|n| {
            !db.get(n)
                .is_some_and(super::dpkg::status::PackageStatus::is_present)
        }) {
            errln!("docker-upgrade-guard: {n} is not installed; nothing to patch there");
        }
    }
    let scripts =
        crate::inspect::installed_scripts(root.admindir(), &db, &names, plan::PATCH_KINDS);
    Ok(plan::plan(&scripts, units, crate::scripts::repair::repair))
}

/// "containerd 1.3.3-0ubuntu2 prerm: the upgrade will not stop containerd.service (line 4;
/// backup: …)"
fn describe(item: &PlanItem, backup: Option<&std::path::Path>) -> String {
    let backup = backup
        .map(|b| format!("; backup: {}", b.display()))
        .unwrap_or_default();
    format!(
        "{} {} {}: the upgrade will not stop {} ({}{backup})",
        item.package,
        item.version,
        item.kind.name(),
        item.units.join(", "),
        plan::describe_lines(&item.lines),
    )
}

/// The diff of one planned rewrite. The path comes first in the headers (before a tab, as
/// diff(1) does with timestamps) so that `patch -p0` finds the file.
pub fn item_diff(item: &PlanItem) -> String {
    let path = item.path.display();
    crate::diff::unified(
        &item.original,
        &item.repaired,
        &format!("{path}\tinstalled {} {}", item.package, item.version),
        &format!("{path}\tpatched by docker-upgrade-guard"),
    )
}
