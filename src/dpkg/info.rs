//! Maintainer scripts in `<admindir>/info/`: `pkg.prerm` or `pkg:arch.prerm`.

use super::status::PackageStatus;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScriptKind {
    Preinst,
    Prerm,
    Postinst,
    Postrm,
}

impl ScriptKind {
    pub const ALL: [ScriptKind; 4] = [
        ScriptKind::Preinst,
        ScriptKind::Prerm,
        ScriptKind::Postinst,
        ScriptKind::Postrm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Preinst => "preinst",
            ScriptKind::Prerm => "prerm",
            ScriptKind::Postinst => "postinst",
            ScriptKind::Postrm => "postrm",
        }
    }
}

/// The path of `pkg`'s script of `kind`, if one exists (a symlink counts as existing, so that
/// reading it later refuses it with a message instead of silently skipping it).
pub fn script_path(admindir: &Path, pkg: &PackageStatus, kind: ScriptKind) -> Option<PathBuf> {
    let _ = (admindir, pkg, kind);
    todo!("dpkg helper")
}

/// Reads a maintainer script: regular file, no symlink, ≤ 1 MiB, UTF-8, no NUL.
pub fn read_script(path: &Path) -> anyhow::Result<String> {
    crate::fsutil::read_text_nofollow(path)
}
