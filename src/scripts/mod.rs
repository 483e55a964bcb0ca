//! Maintainer scripts: what they do to systemd units for each `$1`, and the repaired text.
//!
//! Pipeline: [`lex`] (words, quotes, heredocs, continuations) → [`parse`] (POSIX-sh AST with
//! byte spans) → [`walk`] (the analysis: sites with their guards over `$1`, unknowns) →
//! [`classify`] (queries on an analysis) → [`repair`] (the minimal guarded rewrite).
//!
//! What is decided how:
//! - Conditions not on `$1` are [`classify::Guard::Other`] and evaluate to Maybe: a stop that
//!   may run on upgrade counts as one. File tests on literal paths (`[ -x "/etc/init.d/x" ]`)
//!   are [`classify::Guard::File`]: Maybe too, except in `audit`, which answers them from the
//!   node's files ([`node`], [`stops_on_upgrade_on`]).
//! - `invoke-rc.d --skip-systemd-native X stop` is not a stop: on systemd it does nothing for
//!   units with a native unit file, which all watched units have.
//! - `exit` reached only for some `$1` (`case "$1" in upgrade) exit 0;; esac`) guards what follows.
//! - What cannot be followed (unit actions in function bodies, unit names or actions from
//!   unresolvable variables or `$@`, `eval`/`sh -c`/command substitutions mentioning unit
//!   tools, scripts that do not parse) is an [`classify::Unknown`], never safe.

pub mod classify;
mod glob;
pub mod lex;
pub mod node;
pub mod parse;
pub mod repair;
pub mod walk;

use walk::{Analysis, Site, Tri, UnitOp};

pub use node::Node;

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

/// [`stops_on_upgrade`] on one node: the stops that run there (Yes or Maybe, file tests on
/// literal paths answered by `node`), and the stops only the node's files keep from running.
/// Only `audit` uses it: the hook and `patch` guard every stop that may run (patching a stop
/// that would not run is harmless; missing one that does is not).
pub fn stops_on_upgrade_on<'a>(
    analysis: &'a Analysis,
    watched: &[&str],
    node: &Node<'_>,
) -> (Vec<&'a Site>, Vec<&'a Site>) {
    stops_on_upgrade(analysis, watched)
        .into_iter()
        .partition(|s| {
            UPGRADE_ARGS
                .iter()
                .any(|a| node.eval(&s.guard, a) != Tri::No)
        })
}
