//! systemd unit files as systemd resolves them: the fragment found first on the search path,
//! `name.d/*.conf` drop-ins from every directory (sorted by file name, later wins), empty
//! assignments resetting list settings, and masks. Answers "what else stops when X stops?".

use crate::root::Root;
use std::path::PathBuf;

/// The unit search path, highest priority first.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

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
    Requisite,
    /// (on the target) `PropagatesStopTo=` this unit.
    PropagatesStopTo,
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
        }
    }

    /// Whether an explicit stop of the target stops the dependent unit.
    pub fn propagates_stop(self) -> bool {
        !matches!(self, DepKind::Wants)
    }
}

/// Where a dependency was set: file and 1-based line (for the evidence in reports).
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
    /// Linked to /dev/null (or empty) in a higher-priority directory.
    pub masked: bool,
    pub dropins: Vec<PathBuf>,
    /// Effective dependencies of the `[Unit]` section after drop-ins and resets.
    pub deps: Vec<Dep>,
    /// One line each: files or lines that did not parse (the rest is still used).
    pub problems: Vec<String>,
}

/// Loads `name` under `root`. `Ok(None)` when no file for it exists anywhere.
pub fn load(root: &Root, name: &str) -> anyhow::Result<Option<Unit>> {
    let _ = (root, name);
    todo!("units helper")
}

/// A unit stopped because another one was, and the chain of settings that explains it
/// (`docker.service BindsTo=containerd.service`, then `docker.socket PartOf=docker.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagated {
    pub unit: String,
    pub chain: Vec<Dep>,
}

/// Which of `units` stop (transitively) when `stopped` is stopped explicitly.
pub fn stop_propagation(units: &[Unit], stopped: &str) -> Vec<Propagated> {
    let _ = (units, stopped);
    todo!("units helper")
}
