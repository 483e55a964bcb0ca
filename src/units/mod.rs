//! systemd unit files as systemd resolves them: the fragment found first on the search path
//! (or a mask, or an alias symlink), `name.d/*.conf` drop-ins from every directory (merged by
//! file name, the higher-priority directory hiding the lower, applied in file-name order), and
//! `name.requires/` / `name.wants/` symlink directories. Answers "what else stops when X stops?".
//!
//! One systemd rule the tool must not get wrong: dependency settings can NOT be reset by an
//! empty assignment (`BindsTo=` in a drop-in does nothing; systemd.unit(5), "Dependencies
//! (After=, etc.) cannot be reset to an empty list"). An admin who wrote one believes docker is
//! no longer bound to containerd while it still is, so such a line is kept as a problem note and
//! the dependency stays.
//!
//! Every path is resolved inside `--root` component by component, symlinks included, the way a
//! chroot would ([`crate::in_root`]): a link can never lead out of the root.
//!
//! The files: [`resolve`] (how systemd finds a unit: fragment, mask, alias, drop-ins, `.wants/`
//! links) → [`parse`] (the `[Unit]` dependency settings of one file) → [`propagate`] (what else
//! stops when one unit stops); [`name`] (what a unit name is).

mod name;
mod parse;
mod propagate;
mod resolve;

pub use name::{has_unit_suffix, is_valid_unit_name};
pub use parse::{parse_unit_text, Parsed, ParsedDep};
pub use propagate::{stop_propagation, Propagated};
pub use resolve::{load, SEARCH_PATH};

use std::path::PathBuf;

/// A dependency setting that matters for stop propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    /// Stopping the target stops this unit (always).
    BindsTo,
    /// Stopping the target explicitly stops this unit.
    Requires,
    /// Stopping or restarting the target stops/restarts this unit.
    PartOf,
    /// Stopping the target does NOT stop this unit.
    Wants,
    /// Stopping the target stops this unit (explicit stops, like `Requires=`).
    Requisite,
    /// Written in THIS unit: stopping this unit stops the target (the reverse direction of the
    /// other kinds).
    PropagatesStopTo,
    /// `StopPropagatedFrom=T` in this unit: the same as `PropagatesStopTo=` this unit in T, so
    /// stopping the target stops this unit.
    StopPropagatedFrom,
}

impl DepKind {
    pub fn key(self) -> &'static str {
        match self {
            DepKind::BindsTo => "BindsTo",
            DepKind::Requires => "Requires",
            DepKind::PartOf => "PartOf",
            DepKind::Wants => "Wants",
            DepKind::Requisite => "Requisite",
            DepKind::PropagatesStopTo => "PropagatesStopTo",
            DepKind::StopPropagatedFrom => "StopPropagatedFrom",
        }
    }

    /// The kind a `[Unit]` key sets (keys are case-sensitive, as in systemd).
    pub fn from_key(key: &str) -> Option<DepKind> {
        Some(match key {
            "BindsTo" => DepKind::BindsTo,
            "Requires" => DepKind::Requires,
            "PartOf" => DepKind::PartOf,
            "Wants" => DepKind::Wants,
            "Requisite" => DepKind::Requisite,
            "PropagatesStopTo" => DepKind::PropagatesStopTo,
            "StopPropagatedFrom" => DepKind::StopPropagatedFrom,
            _ => return None,
        })
    }

    /// Whether an explicit stop travels along this setting at all.
    pub fn propagates_stop(self) -> bool {
        !matches!(self, DepKind::Wants)
    }

    /// True when a stop travels from the unit that carries the setting to its target
    /// (`PropagatesStopTo=`); false when it travels from the target to the carrier.
    pub fn stop_flows_to_target(self) -> bool {
        matches!(self, DepKind::PropagatesStopTo)
    }
}

/// Where a dependency was set: file and 1-based line (for the evidence in reports). For a
/// dependency made by a symlink in `name.requires/` or `name.wants/`, `file` is that symlink,
/// `line` is 0 and `text` says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub kind: DepKind,
    pub target: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// The main unit file (None if only drop-ins exist).
    pub fragment: Option<PathBuf>,
    /// Linked to /dev/null (or empty) in a higher-priority directory. A masked unit has no
    /// dependencies (systemd loads neither its file nor its drop-ins); `fragment` is then the
    /// mask itself.
    pub masked: bool,
    pub dropins: Vec<PathBuf>,
    /// Effective dependencies of the `[Unit]` section after drop-ins and resets.
    pub deps: Vec<Dep>,
    /// One line each: files or lines that did not parse (the rest is still used).
    pub problems: Vec<String>,
}
