//! The installed maintainer scripts of the watched packages, read and analysed once: the input
//! shared by `audit`, `patch` and the hook's attribution.

use crate::dpkg::info::{self, ScriptKind};
use crate::dpkg::status::{PackageStatus, StatusDb};
use crate::scripts::classify::{self, Analysis};
use std::path::PathBuf;

/// One installed script of one package.
#[derive(Debug, Clone)]
pub struct InstalledScript {
    pub package: PackageStatus,
    pub kind: ScriptKind,
    pub path: PathBuf,
    /// The text and its analysis, or the one-line reason it could not be read.
    pub content: Result<(String, Analysis), String>,
}

impl InstalledScript {
    pub fn text(&self) -> Option<&str> {
        self.content.as_ref().ok().map(|(t, _)| t.as_str())
    }

    pub fn analysis(&self) -> Option<&Analysis> {
        self.content.as_ref().ok().map(|(_, a)| a)
    }
}

/// Reads `kinds` scripts of each present package of `packages` (missing packages and missing
/// scripts are simply absent; unreadable ones carry their error).
pub(crate) fn installed_scripts(
    admindir: &std::path::Path,
    db: &StatusDb,
    packages: &[&str],
    kinds: &[ScriptKind],
) -> Vec<InstalledScript> {
    let mut out = Vec::new();
    for name in packages {
        let Some(pkg) = db.get(name).filter(|p| p.is_present()) else {
            continue;
        };
        for &kind in kinds {
            let Some(path) = info::script_path(admindir, pkg, kind) else {
                continue;
            };
            let content = info::read_script(&path)
                .map(|text| {
                    let analysis = classify::analyse(&text);
                    (text, analysis)
                })
                .map_err(|e| format!("{e:#}"));
            out.push(InstalledScript {
                package: pkg.clone(),
                kind,
                path,
                content,
            });
        }
    }
    out
}
