//! `.deb` files: their control scripts (via `dpkg-deb`), and candidates in apt's archive cache.

use super::info::ScriptKind;
use super::version::Version;
use crate::root::Root;
use std::path::{Path, PathBuf};

/// Package name and version of a `.deb` (`dpkg-deb --field`).
pub fn fields(deb: &Path) -> anyhow::Result<(String, Version)> {
    let _ = deb;
    todo!("dpkg helper")
}

/// The control member `kind` of a `.deb`, if it has one (`dpkg-deb --ctrl-tarfile`, read
/// without extracting anything to disk outside a private temp dir).
pub fn control_script(deb: &Path, kind: ScriptKind) -> anyhow::Result<Option<String>> {
    let _ = (deb, kind);
    todo!("dpkg helper")
}

/// The newest `.deb` of `package` in `var/cache/apt/archives/` that is newer than `than`.
pub fn cached_candidate(
    root: &Root,
    package: &str,
    than: &Version,
) -> anyhow::Result<Option<PathBuf>> {
    let _ = (root, package, than);
    todo!("dpkg helper")
}
