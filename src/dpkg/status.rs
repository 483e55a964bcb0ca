//! The dpkg database: `status` plus the journal in `updates/` that dpkg has not folded in yet.

use super::version::Version;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Unknown,
    Install,
    Hold,
    Deinstall,
    Purge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotInstalled,
    ConfigFiles,
    HalfInstalled,
    Unpacked,
    HalfConfigured,
    TriggersAwaited,
    TriggersPending,
    Installed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageStatus {
    pub name: String,
    pub arch: Option<String>,
    pub multi_arch: Option<String>,
    pub version: Option<Version>,
    pub want: Want,
    /// `reinstreq` instead of `ok`.
    pub reinst_required: bool,
    pub state: State,
}

impl PackageStatus {
    /// Files of the package are on disk (unpacked or further), i.e. not `not-installed` or
    /// `config-files`.
    pub fn is_present(&self) -> bool {
        !matches!(self.state, State::NotInstalled | State::ConfigFiles)
    }
}

#[derive(Debug, Clone, Default)]
pub struct StatusDb {
    pub packages: Vec<PackageStatus>,
    /// One line each, naming the file and line: garbled paragraphs that were skipped.
    pub problems: Vec<String>,
}

impl StatusDb {
    /// Reads `<admindir>/status` and applies `<admindir>/updates/NNNN` in order, like dpkg.
    pub fn load(admindir: &Path) -> anyhow::Result<StatusDb> {
        let _ = admindir;
        todo!("dpkg helper")
    }

    /// The package called `name` (native architecture or `all` preferred when several).
    pub fn get(&self, name: &str) -> Option<&PackageStatus> {
        let _ = name;
        todo!("dpkg helper")
    }
}
