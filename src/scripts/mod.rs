//! Maintainer scripts: what they do to systemd units for each `$1`, and the repaired text.
//!
//! Pipeline: [`lex`] (words, quotes, heredocs, continuations) → [`parse`] (POSIX-sh AST with
//! byte spans) → [`walk`] (the analysis: sites with their guards over `$1`, unknowns) →
//! [`classify`] (queries on an analysis) → [`repair`] (the minimal guarded rewrite).
//!
//! What is decided how:
//! - Conditions not on `$1` are [`classify::Guard::Other`] and evaluate to Maybe: a stop that
//!   may run on upgrade counts as one.
//! - `invoke-rc.d --skip-systemd-native X stop` is not a stop: on systemd it does nothing for
//!   units with a native unit file, which all watched units have.
//! - `exit` reached only for some `$1` (`case "$1" in upgrade) exit 0;; esac`) guards what follows.
//! - What cannot be followed (unit actions in function bodies, unit names or actions from
//!   unresolvable variables or `$@`, `eval`/`sh -c`/command substitutions mentioning unit
//!   tools, scripts that do not parse) is an [`classify::Unknown`], never safe.

pub mod classify;
mod glob;
pub mod lex;
pub mod parse;
pub mod repair;
pub mod walk;

use walk::{Analysis, Site, Tri, UnitOp};

/// The `$1` values with which dpkg runs each script during an upgrade of the package
/// (old prerm `upgrade`, new preinst `upgrade`, old postrm `upgrade`). A stop that runs for
/// any of them stops the unit on every upgrade.
pub const UPGRADE_ARGS: &[&str] = &["upgrade"];

/// Stops of any of `watched` that run (Yes or Maybe) when the script is called with `upgrade`:
/// the harmful lines. One definition shared by audit, patch, repair and the hook.
pub fn stops_on_upgrade<'a>(analysis: &'a Analysis, watched: &[&str]) -> Vec<&'a Site> {
    analysis
        .sites
        .iter()
        .filter(|s| s.op == UnitOp::Stop)
        .filter(|s| s.units.iter().any(|u| watched.contains(&u.as_str())))
        .filter(|s| UPGRADE_ARGS.iter().any(|a| s.runs_on(a) != Tri::No))
        .collect()
}
