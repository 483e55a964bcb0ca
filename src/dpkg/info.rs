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
///
/// dpkg names the files of `Multi-Arch: same` packages `pkg:arch.kind` and all others
/// `pkg.kind`; the other form is tried second, so that a database converted by hand or by an
/// older dpkg is still read rather than silently found script-less.
pub fn script_path(admindir: &Path, pkg: &PackageStatus, kind: ScriptKind) -> Option<PathBuf> {
    info_path(admindir, pkg, kind.name())
}

/// The path of `pkg`'s control file `info/PKG.suffix` (`list`, `md5sums`, a script), named as
/// for [`script_path`].
pub fn info_path(admindir: &Path, pkg: &PackageStatus, suffix: &str) -> Option<PathBuf> {
    let info = admindir.join("info");
    let plain = format!("{}.{}", pkg.name, suffix);
    let qualified = pkg
        .arch
        .as_deref()
        .map(|arch| format!("{}:{}.{}", pkg.name, arch, suffix));
    let mut names = vec![plain];
    match qualified {
        Some(q) if pkg.multi_arch.as_deref() == Some("same") => names.insert(0, q),
        Some(q) => names.push(q),
        None => {}
    }
    names
        .into_iter()
        .map(|n| info.join(n))
        // symlink_metadata: a dangling or planted symlink is "present", and read_script
        // then refuses it with a message.
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

/// Reads a maintainer script: regular file, no symlink, ≤ 1 MiB, UTF-8, no NUL.
pub fn read_script(path: &Path) -> anyhow::Result<String> {
    crate::fsutil::read_text_nofollow(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::status::{State, Want};

    fn pkg(name: &str, arch: Option<&str>, ma: Option<&str>) -> PackageStatus {
        PackageStatus {
            name: name.into(),
            arch: arch.map(Into::into),
            multi_arch: ma.map(Into::into),
            version: None,
            want: Want::Install,
            reinst_required: false,
            state: State::Installed,
        }
    }

    #[test]
    fn finds_plain_and_arch_qualified_scripts() {
        let d = tempfile::tempdir().unwrap();
        let info = d.path().join("info");
        std::fs::create_dir(&info).unwrap();
        std::fs::write(info.join("docker.io.prerm"), "").unwrap();
        std::fs::write(info.join("libx:amd64.postinst"), "").unwrap();
        std::fs::write(info.join("libx.postinst"), "").unwrap();
        std::os::unix::fs::symlink("/nonexistent", info.join("runc.prerm")).unwrap();
        let cases: &[(PackageStatus, ScriptKind, Option<&str>)] = &[
            (
                pkg("docker.io", Some("amd64"), None),
                ScriptKind::Prerm,
                Some("docker.io.prerm"),
            ),
            (
                pkg("docker.io", Some("amd64"), None),
                ScriptKind::Postinst,
                None,
            ),
            (
                pkg("docker.io", None, None),
                ScriptKind::Prerm,
                Some("docker.io.prerm"),
            ),
            (
                pkg("libx", Some("amd64"), Some("same")),
                ScriptKind::Postinst,
                Some("libx:amd64.postinst"),
            ),
            (
                pkg("libx", Some("amd64"), Some("foreign")),
                ScriptKind::Postinst,
                Some("libx.postinst"),
            ),
            (
                pkg("libx", Some("i386"), Some("same")),
                ScriptKind::Postinst,
                Some("libx.postinst"),
            ),
            // A dangling symlink is present, so that reading it fails loudly.
            (
                pkg("runc", Some("amd64"), None),
                ScriptKind::Prerm,
                Some("runc.prerm"),
            ),
        ];
        for (p, kind, want) in cases {
            let got = script_path(d.path(), p, *kind);
            assert_eq!(got, want.map(|w| info.join(w)), "{p:?} {kind:?}");
        }
        let err = read_script(&info.join("runc.prerm"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("symlink"), "{err}");
    }
}
