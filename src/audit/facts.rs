//! What `collect` found on the system, in plain data: the input of the pure `findings` step.
//! Script behaviour is already answered by the classifier here (harmful sites, starts), so that
//! the decision logic can be tested from hand-built facts.

use crate::dpkg::info::ScriptKind;
use crate::scripts::classify::{Site, Unknown};
use crate::scripts::node::FileFact;
use crate::units::Propagated;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// Units whose stop on upgrade is harmful (config `units`, default containerd, docker).
    pub watched_units: Vec<String>,
    /// Every watched package asked about, installed or not.
    pub packages: Vec<PackageFacts>,
    /// The watched units as systemd would load them.
    pub units: Vec<UnitFacts>,
    pub system: SystemFacts,
    /// Inputs that could not be read or parsed and that can change the verdict (dpkg status
    /// database, unit files): one line each, naming the file. Each makes the audit UNKNOWN.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PackageFacts {
    pub name: String,
    /// None when not installed (or the status database could not be read).
    pub version: Option<String>,
    /// dpkg's state word (`installed`, `unpacked`, `half-configured`, ...), None if absent.
    pub state: Option<String>,
    pub scripts: Vec<ScriptFacts>,
}

impl PackageFacts {
    pub(crate) fn installed(&self) -> bool {
        self.state.is_some()
    }

    pub(crate) fn script(&self, kind: ScriptKind) -> Option<&ScriptFacts> {
        self.scripts.iter().find(|s| s.kind == kind)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ScriptFacts {
    pub kind: ScriptKind,
    pub path: PathBuf,
    /// What the script does, or the one-line reason it could not be read.
    pub reading: Result<ScriptReading, String>,
    /// Where our backup of the original is, if `patch` rewrote this script and it is still
    /// exactly what we wrote.
    pub patched_backup: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ScriptReading {
    pub text: String,
    /// `crate::scripts::stops_on_upgrade_on` this node: stops of watched units that run on
    /// upgrade (file tests on literal paths answered by the node's files).
    pub stops_on_upgrade: Vec<Site>,
    /// Stops of watched units on upgrade that only the node's files keep from running.
    pub kept_off_by_files: Vec<Site>,
    /// The file tests those stops rest on, as the node answered them.
    pub file_facts: Vec<FileFact>,
    /// Places the classifier could not follow.
    pub unknowns: Vec<Unknown>,
    /// For each watched unit: does this script start it again when called with `configure`?
    pub starts_on_configure: Vec<(String, StartAnswer)>,
}

impl ScriptReading {
    /// The text of 1-based line `n` (empty if out of range).
    pub(crate) fn line(&self, n: usize) -> &str {
        self.text.lines().nth(n.wrapping_sub(1)).unwrap_or("")
    }
}

/// An owned `classify::Answer` for start/restart/try-restart on `configure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartAnswer {
    Yes(Vec<Site>),
    No,
    Unknown(Vec<Unknown>),
}

#[derive(Debug, Clone)]
pub(crate) struct UnitFacts {
    pub name: String,
    /// Loaded and found (Some), no file anywhere (None); the error if it could not be loaded.
    pub found: Result<bool, String>,
    pub fragment: Option<PathBuf>,
    pub masked: bool,
    /// Units that stop (transitively) when this one is stopped explicitly.
    pub propagation: Vec<Propagated>,
    /// Units that starting this one starts too (`Requires=`, `BindsTo=`, `Wants=` targets).
    pub pulls_in: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SystemFacts {
    /// `"live-restore": true` in etc/docker/daemon.json; None when it could not be read.
    pub live_restore: Option<bool>,
    pub hooks: HookFacts,
    pub unattended: UnattendedFacts,
    /// Things worth saying that do not change the verdict (daemon.json garbled...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HookFacts {
    /// etc/apt/apt.conf.d/99zz-docker-upgrade-guard exists and calls our hook.
    pub apt: bool,
    /// dpkg runs without apt reach the hook: our file-trigger interests are registered
    /// (`<admindir>/triggers/File`).
    pub dpkg: bool,
    /// usr/sbin/docker-upgrade-guard is present (the snippets are inert without it).
    pub binary: bool,
    /// The hook is not switched off in config.toml (`enabled = false`); read the way the hook
    /// itself reads it, so that a broken file still honours an "off".
    pub enabled: bool,
}

impl HookFacts {
    /// Both entry points are in place and the binary they call is there.
    pub(crate) fn guarded(&self) -> bool {
        self.apt && self.dpkg && self.binary && self.enabled
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnattendedFacts {
    /// The unattended-upgrades package is present (None: status database unreadable).
    pub installed: Option<bool>,
    /// `APT::Periodic::Unattended-Upgrade` is a non-zero number.
    pub periodic: bool,
    /// `Unattended-Upgrade::Package-Blacklist` entries, as written.
    pub blacklist: Vec<String>,
    /// Watched packages the blacklist excludes, with the entry that excludes each.
    pub excluded: Vec<(String, String)>,
}

impl UnattendedFacts {
    pub(crate) fn enabled(&self) -> bool {
        self.installed != Some(false) && self.periodic
    }
}
