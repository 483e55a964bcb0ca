//! The whole audit result, as every format sees it. Serialised as is for `--format json`
//! (docs/audit-json-schema.md documents it; bump SCHEMA_VERSION on any incompatible change).

use super::facts::Facts;
use super::findings::{Finding, Kind};
use super::Severity;
use serde::Serialize;

pub(crate) const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub schema_version: u32,
    pub tool_version: &'static str,
    pub root: String,
    pub severity: Severity,
    pub exit_code: u8,
    pub watched_units: Vec<String>,
    pub packages: Vec<PackageReport>,
    pub units: Vec<UnitReport>,
    pub system: SystemReport,
    pub findings: Vec<Finding>,
    pub diffs: Vec<ScriptDiff>,
    /// Lines worth reading that do not change the verdict.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PackageReport {
    pub name: String,
    pub installed: bool,
    pub version: Option<String>,
    pub state: Option<String>,
    /// Its next upgrade stops a watched unit (a WARNING or CRITICAL exposure finding).
    pub exposed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnitReport {
    pub name: String,
    /// None when the unit could not be loaded.
    pub found: Option<bool>,
    pub fragment: Option<String>,
    pub masked: bool,
    /// Units systemd stops when this one is stopped.
    pub stops_with_it: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SystemReport {
    pub live_restore: Option<bool>,
    pub hooks: HooksReport,
    pub unattended_upgrades: UnattendedReport,
    /// Running containers the next upgrade takes down for good (`None`: docker not asked).
    pub containers_at_risk: Option<super::containers::AtRisk>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct HooksReport {
    pub installed: bool,
    pub apt: bool,
    pub dpkg: bool,
    pub binary: bool,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnattendedReport {
    pub installed: Option<bool>,
    pub enabled: bool,
    pub package_blacklist: Vec<String>,
    pub excluded: Vec<Excluded>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Excluded {
    pub package: String,
    pub entry: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScriptDiff {
    pub package: String,
    pub version: Option<String>,
    pub script: String,
    pub path: String,
    /// Where the fixed text came from (the `+++` header).
    pub fixed_source: String,
    pub diff: String,
}

impl Report {
    pub(crate) fn new(
        root: &std::path::Path,
        facts: &Facts,
        findings: Vec<Finding>,
        diffs: Vec<ScriptDiff>,
        mut notes: Vec<String>,
    ) -> Report {
        let severity = super::findings::overall(&findings);
        let exposed = |name: &str| {
            findings.iter().any(|f| {
                f.kind == Kind::Exposure
                    && f.package.as_deref() == Some(name)
                    && matches!(f.severity, Severity::Warning | Severity::Critical)
            })
        };
        let packages = facts
            .packages
            .iter()
            .map(|p| PackageReport {
                name: p.name.clone(),
                installed: p.installed(),
                version: p.version.clone(),
                state: p.state.clone(),
                exposed: exposed(&p.name),
            })
            .collect();
        let units = facts
            .units
            .iter()
            .map(|u| UnitReport {
                name: u.name.clone(),
                found: u.found.clone().ok(),
                fragment: u.fragment.as_ref().map(|p| p.display().to_string()),
                masked: u.masked,
                stops_with_it: u.propagation.iter().map(|p| p.unit.clone()).collect(),
            })
            .collect();
        let s = &facts.system;
        let mut all_notes = s.notes.clone();
        all_notes.append(&mut notes);
        Report {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION"),
            root: root.display().to_string(),
            severity,
            exit_code: severity.exit_code(),
            watched_units: facts.watched_units.clone(),
            packages,
            units,
            system: SystemReport {
                live_restore: s.live_restore,
                hooks: HooksReport {
                    installed: s.hooks.guarded(),
                    apt: s.hooks.apt,
                    dpkg: s.hooks.dpkg,
                    binary: s.hooks.binary,
                    enabled: s.hooks.enabled,
                },
                unattended_upgrades: UnattendedReport {
                    installed: s.unattended.installed,
                    enabled: s.unattended.enabled(),
                    package_blacklist: s.unattended.blacklist.clone(),
                    excluded: s
                        .unattended
                        .excluded
                        .iter()
                        .map(|(p, e)| Excluded {
                            package: p.clone(),
                            entry: e.clone(),
                        })
                        .collect(),
                },
                containers_at_risk: None,
            },
            findings,
            diffs,
            notes: all_notes,
        }
    }
}
