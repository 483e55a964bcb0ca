//! The dpkg database: `status` plus the journal in `updates/` that dpkg has not folded in yet.

use super::control;
use super::version::Version;
use anyhow::Context;
use std::path::{Path, PathBuf};

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

/// The status file and journal entries are never this big on a real system; the cap only
/// keeps a corrupt or hostile file from exhausting memory.
const MAX_STATUS_FILE: u64 = 256 * 1024 * 1024;

impl StatusDb {
    /// Reads `<admindir>/status` and applies `<admindir>/updates/NNNN` in order, like dpkg.
    ///
    /// Packages are ordered by name; for one name, the native architecture comes first, then
    /// `all`, then the others (what [`StatusDb::get`] relies on).
    pub fn load(admindir: &Path) -> anyhow::Result<StatusDb> {
        Self::load_filtered(admindir, None)
    }

    /// [`StatusDb::load`] for the packages called one of `names` only: what [`StatusDb::get`]
    /// says about each of them is what it says after a full load, but the other packages'
    /// paragraphs are skipped unparsed (see [`control::parse_paragraphs_keeping_for`]), so
    /// `problems` names only what is wrong with these packages' paragraphs (and with any
    /// paragraph whose package cannot be told without parsing it). The hook needs the few
    /// watched packages of a status file of thousands, in every run that touches one.
    pub fn load_only(admindir: &Path, names: &[&str]) -> anyhow::Result<StatusDb> {
        Self::load_filtered(admindir, Some(names))
    }

    fn load_filtered(admindir: &Path, only: Option<&[&str]>) -> anyhow::Result<StatusDb> {
        let mut db = StatusDb::default();
        let status = admindir.join("status");
        let text = read_db_file(&status)?;
        for pkg in parse_db_text(&text, &status, only, &mut db.problems) {
            db.packages.push(pkg);
        }
        for update in journal_files(admindir, &mut db.problems)? {
            let text = read_db_file(&update)?;
            for pkg in parse_db_text(&text, &update, only, &mut db.problems) {
                // Each journal entry replaces the package's whole record, as in dpkg.
                match db
                    .packages
                    .iter_mut()
                    .find(|p| p.name == pkg.name && p.arch == pkg.arch)
                {
                    Some(slot) => *slot = pkg,
                    None => db.packages.push(pkg),
                }
            }
        }
        let native = native_arch(admindir, &mut db.problems);
        let rank = |p: &PackageStatus| match p.arch.as_deref() {
            Some(a) if a == native => 0,
            Some("all") => 1,
            _ => 2,
        };
        db.packages
            .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| rank(a).cmp(&rank(b))));
        Ok(db)
    }

    /// The package called `name`: an entry whose files are present is preferred over a
    /// `config-files`/`not-installed` leftover; among equals the native architecture, then
    /// `all`, then any other (the order [`StatusDb::load`] sorts them in).
    pub fn get(&self, name: &str) -> Option<&PackageStatus> {
        let mut same = self.packages.iter().filter(|p| p.name == name);
        let first = same.next()?;
        if first.is_present() {
            return Some(first);
        }
        same.find(|p| p.is_present()).or(Some(first))
    }
}

fn read_db_file(path: &Path) -> anyhow::Result<String> {
    let bytes = crate::fsutil::read_nofollow(path, MAX_STATUS_FILE)
        .with_context(|| format!("cannot read the dpkg database file {}", path.display()))?;
    // Invalid UTF-8 only ever shows up in free-text fields (old Descriptions); every field we
    // use is checked against a strict ASCII grammar, which a U+FFFD would fail.
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The journal files of `<admindir>/updates/` that dpkg would apply: names made only of
/// digits, in numeric order. A missing directory is an empty journal.
fn journal_files(admindir: &Path, problems: &mut Vec<String>) -> anyhow::Result<Vec<PathBuf>> {
    let dir = admindir.join("updates");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read dpkg's journal directory {}", dir.display()))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue; // dpkg's own temporary files (tmp.i) and anything else
        }
        // Numeric order; dpkg pads names to one length, so this is also its alphabetic order.
        let digits = name.trim_start_matches('0');
        files.push(((digits.len(), digits.to_owned()), entry.path()));
    }
    files.sort();
    let lens: std::collections::BTreeSet<usize> = files
        .iter()
        .filter_map(|(_, p)| p.file_name().map(std::ffi::OsStr::len))
        .collect();
    if lens.len() > 1 {
        problems.push(format!(
            "{}: journal file names of different lengths (dpkg itself would refuse this); applied in numeric order",
            dir.display()
        ));
    }
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// The native architecture: the first line of `<admindir>/arch` (dpkg writes the native one
/// first), else the architecture this binary was built for. No `dpkg --print-architecture`:
/// this runs in every apt hook and must not spawn anything.
pub fn native_arch(admindir: &Path, problems: &mut Vec<String>) -> String {
    let path = admindir.join("arch");
    match crate::fsutil::read_text_nofollow(&path) {
        Ok(text) => {
            let first = text.lines().next().unwrap_or("").trim();
            if is_arch(first) {
                return first.to_owned();
            }
            problems.push(format!(
                "{}: first line '{}' is not an architecture name; using {}",
                path.display(),
                first,
                compiled_arch()
            ));
        }
        Err(_) if std::fs::symlink_metadata(&path).is_err() => {}
        Err(e) => problems.push(format!("{e:#}; using {}", compiled_arch())),
    }
    compiled_arch().to_owned()
}

/// Debian's name for the architecture this binary was compiled for.
pub fn compiled_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64el",
        "powerpc64" => "ppc64",
        "powerpc" => "powerpc",
        "mips64" if cfg!(target_endian = "little") => "mips64el",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        "loongarch64" => "loong64",
        "sparc64" => "sparc64",
        other => other, // s390x, riscv64, ... have the same name in Debian
    }
}

pub(crate) fn is_arch(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Parses every paragraph of a status or journal file; each one that is garbled adds one
/// line (file:line: reason) to `problems` and is skipped.
/// `only`: the package names to parse (see [`StatusDb::load_only`]); `None`: all.
fn parse_db_text(
    text: &str,
    file: &Path,
    only: Option<&[&str]>,
    problems: &mut Vec<String>,
) -> Vec<PackageStatus> {
    // Only these fields are parsed and kept: see parse_paragraphs_keeping.
    const FIELDS: &[&str] = &["Package", "Status", "Architecture", "Multi-Arch", "Version"];
    let (paragraphs, bad) = match only {
        None => control::parse_paragraphs_keeping(text, FIELDS),
        Some(names) => control::parse_paragraphs_keeping_for(text, FIELDS, "Package", names),
    };
    problems.extend(
        bad.into_iter()
            .map(|p| format!("{}:{}: {}", file.display(), p.line, p.message)),
    );
    let mut out = Vec::with_capacity(paragraphs.len());
    for mut p in paragraphs {
        let line = p.line;
        match package_status(&mut p) {
            // A paragraph parsed because its package could not be told beforehand, and
            // that turns out to be another one: not asked for.
            Ok(pkg) if only.is_some_and(|names| !names.contains(&pkg.name.as_str())) => {}
            Ok(pkg) => out.push(pkg),
            Err(why) => problems.push(format!("{}:{}: {}", file.display(), line, why)),
        }
    }
    out
}

/// One status paragraph, strictly: a wrong word anywhere skips the whole package.
fn package_status(p: &mut control::Paragraph) -> Result<PackageStatus, String> {
    let name = p
        .take("Package")
        .ok_or_else(|| "paragraph has no Package field".to_owned())?;
    if !super::valid_package_name(&name) {
        return Err(format!("'{name}' is not a valid package name"));
    }
    let status = p
        .take("Status")
        .ok_or_else(|| format!("package {name} has no Status field"))?;
    let (want, reinst_required, state) =
        parse_status(&status).map_err(|why| format!("package {name}: {why}"))?;
    let arch = p.take("Architecture");
    if let Some(a) = &arch {
        if !is_arch(a) {
            return Err(format!("package {name}: '{a}' is not a valid architecture"));
        }
    }
    let multi_arch = p.take("Multi-Arch");
    if let Some(m) = &multi_arch {
        if !matches!(m.as_str(), "no" | "same" | "foreign" | "allowed") {
            return Err(format!("package {name}: unknown Multi-Arch value '{m}'"));
        }
    }
    let version = match p.get("Version") {
        Some(v) => Some(Version::parse(v).map_err(|e| format!("package {name}: {e}"))?),
        None => None,
    };
    Ok(PackageStatus {
        name,
        arch,
        multi_arch,
        version,
        want,
        reinst_required,
        state,
    })
}

/// `Status: want flag state`, exactly three known words.
pub fn parse_status(s: &str) -> Result<(Want, bool, State), String> {
    let words: Vec<&str> = s.split_ascii_whitespace().collect();
    let [want, flag, state] = words[..] else {
        return Err(format!("Status '{s}' is not three words (want flag state)"));
    };
    let want = match want {
        "unknown" => Want::Unknown,
        "install" => Want::Install,
        "hold" => Want::Hold,
        "deinstall" => Want::Deinstall,
        "purge" => Want::Purge,
        w => return Err(format!("unknown selection '{w}' in Status '{s}'")),
    };
    let reinst = match flag {
        "ok" => false,
        "reinstreq" => true,
        f => return Err(format!("unknown flag '{f}' in Status '{s}'")),
    };
    let state = match state {
        "not-installed" => State::NotInstalled,
        "config-files" => State::ConfigFiles,
        "half-installed" => State::HalfInstalled,
        "unpacked" => State::Unpacked,
        "half-configured" => State::HalfConfigured,
        "triggers-awaited" => State::TriggersAwaited,
        "triggers-pending" => State::TriggersPending,
        "installed" => State::Installed,
        st => return Err(format!("unknown state '{st}' in Status '{s}'")),
    };
    Ok((want, reinst, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admindir(status: &str, updates: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("status"), status).unwrap();
        std::fs::create_dir(d.path().join("updates")).unwrap();
        for (name, text) in updates {
            std::fs::write(d.path().join("updates").join(name), text).unwrap();
        }
        d
    }

    fn para(name: &str, arch: &str, status: &str, version: &str) -> String {
        format!("Package: {name}\nStatus: {status}\nArchitecture: {arch}\nVersion: {version}\nDescription: x\n long\n\n")
    }

    #[test]
    fn status_words_are_strict() {
        let ok: &[(&str, Want, bool, State)] = &[
            (
                "install ok installed",
                Want::Install,
                false,
                State::Installed,
            ),
            (
                "hold reinstreq half-installed",
                Want::Hold,
                true,
                State::HalfInstalled,
            ),
            (
                "deinstall ok config-files",
                Want::Deinstall,
                false,
                State::ConfigFiles,
            ),
            (
                "purge ok not-installed",
                Want::Purge,
                false,
                State::NotInstalled,
            ),
            ("unknown ok unpacked", Want::Unknown, false, State::Unpacked),
            (
                "install ok half-configured",
                Want::Install,
                false,
                State::HalfConfigured,
            ),
            (
                "install ok triggers-awaited",
                Want::Install,
                false,
                State::TriggersAwaited,
            ),
            (
                "install ok triggers-pending",
                Want::Install,
                false,
                State::TriggersPending,
            ),
        ];
        for (s, w, r, st) in ok {
            assert_eq!(parse_status(s), Ok((*w, *r, *st)), "{s}");
        }
        for (s, why) in [
            ("install ok", "not three words"),
            ("install ok installed extra", "not three words"),
            ("instal ok installed", "unknown selection 'instal'"),
            ("install hold installed", "unknown flag 'hold'"),
            ("install ok configured", "unknown state 'configured'"),
            ("", "not three words"),
        ] {
            let err = parse_status(s).unwrap_err();
            assert!(err.contains(why), "{s:?}: {err}");
        }
    }

    #[test]
    fn journal_entries_replace_status_in_numeric_order() {
        let status = para(
            "containerd",
            "amd64",
            "install ok installed",
            "1.6.20~ds1-1",
        ) + &para(
            "docker.io",
            "amd64",
            "install ok installed",
            "20.10.24+dfsg1-1",
        );
        let d = admindir(
            &status,
            &[
                // Numeric order: 0002 after 0001 even if read_dir lists it first.
                (
                    "0002",
                    &para(
                        "containerd",
                        "amd64",
                        "install ok unpacked",
                        "1.6.20~ds1-1+deb12u1",
                    ),
                ),
                (
                    "0001",
                    &para(
                        "containerd",
                        "amd64",
                        "install ok half-installed",
                        "1.6.20~ds1-1",
                    ),
                ),
                (
                    "0003",
                    &para("runc", "amd64", "install ok installed", "1.1.5+ds1-1"),
                ),
                (
                    "tmp.i",
                    &para("docker.io", "amd64", "purge ok not-installed", "9"),
                ),
            ],
        );
        let db = StatusDb::load(d.path()).unwrap();
        assert!(db.problems.is_empty(), "{:?}", db.problems);
        let c = db.get("containerd").unwrap();
        assert_eq!(c.state, State::Unpacked);
        assert_eq!(c.version.as_ref().unwrap().as_str(), "1.6.20~ds1-1+deb12u1");
        assert_eq!(db.get("runc").unwrap().state, State::Installed);
        assert_eq!(
            db.get("docker.io").unwrap().state,
            State::Installed,
            "tmp.i ignored"
        );
        assert_eq!(db.packages.len(), 3);
        assert!(db.get("nope").is_none());
    }

    #[test]
    fn garbled_paragraphs_are_skipped_with_file_and_line() {
        let status = para("good", "all", "install ok installed", "1.0")
            + "Package: badstatus\nStatus: install ok sideways\nVersion: 1\n\n"
            + "Package: badver\nStatus: install ok installed\nVersion: 1.0$\n\n"
            + "Package: Bad_Name\nStatus: install ok installed\n\n"
            + "Package: badma\nStatus: install ok installed\nMulti-Arch: sometimes\n\n"
            + "Status: install ok installed\n\n"
            + "garbage line\n\n"
            + &para("alsogood", "amd64", "deinstall ok config-files", "2");
        let d = admindir(&status, &[]);
        let db = StatusDb::load(d.path()).unwrap();
        let names: Vec<_> = db.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alsogood", "good"]);
        let file = d.path().join("status").display().to_string();
        let expect = [
            (8, "unknown state 'sideways'"),
            (12, "'1.0$' is invalid: '$' is not allowed"),
            (16, "'Bad_Name' is not a valid package name"),
            (19, "unknown Multi-Arch value 'sometimes'"),
            (23, "no Package field"),
            (25, "expected 'Field: value'"),
        ];
        assert_eq!(db.problems.len(), expect.len(), "{:?}", db.problems);
        for (line, why) in expect {
            let prefix = format!("{file}:{line}: ");
            assert!(
                db.problems
                    .iter()
                    .any(|p| p.starts_with(&prefix) && p.contains(why)),
                "{prefix}{why} not in {:?}",
                db.problems
            );
        }
        assert!(!db.get("alsogood").unwrap().is_present());
    }

    #[test]
    fn load_only_says_what_load_says_about_the_named_packages() {
        let status = para("adduser", "all", "install ok installed", "3.134")
            + &para(
                "containerd",
                "amd64",
                "install ok installed",
                "1.6.20~ds1-1",
            )
            + &para("containerd", "i386", "deinstall ok config-files", "1.6.0")
            + "PACKAGE: runc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.5\n\n"
            + "Package: other\nStatus: install ok sideways\nVersion: 1\n\n"
            + "Package: docker.io\nStatus: install ok sideways\nVersion: 1\n\n"
            + "Package:\n docker.io\nStatus: install ok installed\n\n"
            + "Status: install ok installed\n\n"
            + "Package: lib\r\nStatus: install ok installed\r\nVersion: 2\r\n\n"
            + &para("zz", "amd64", "install ok installed", "1");
        let d = admindir(
            &status,
            &[(
                "0001",
                &(para("containerd", "amd64", "install ok unpacked", "1.7")
                    + &para("adduser", "all", "install ok unpacked", "4")),
            )],
        );
        let names = ["containerd", "runc", "docker.io", "absent"];
        let all = StatusDb::load(d.path()).unwrap();
        let some = StatusDb::load_only(d.path(), &names).unwrap();
        for n in names {
            assert_eq!(some.get(n), all.get(n), "{n}");
        }
        assert_eq!(
            some.get("containerd")
                .unwrap()
                .version
                .as_ref()
                .unwrap()
                .as_str(),
            "1.7",
            "the journal applies"
        );
        let kept: Vec<_> = some.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(kept, ["containerd", "containerd", "runc"]);
        // What is wrong with a named package's paragraph is said, and so is a paragraph whose
        // package cannot be told unparsed; another package's garbled paragraph is not read.
        let said = |db: &StatusDb, what: &str| db.problems.iter().any(|p| p.contains(what));
        assert!(
            said(&some, "package docker.io: unknown state"),
            "{:?}",
            some.problems
        );
        assert!(said(&some, "no Package field"), "{:?}", some.problems);
        assert!(
            said(&all, "package other: unknown state"),
            "{:?}",
            all.problems
        );
        assert!(!said(&some, "package other"), "{:?}", some.problems);
        assert!(some.problems.len() < all.problems.len());
    }

    #[test]
    fn get_prefers_present_then_native_then_all() {
        let status = para("libfoo", "i386", "install ok installed", "1")
            + &para("libfoo", "all", "install ok installed", "1")
            + &para("libfoo", "arm64", "install ok installed", "1")
            + &para("tool", "arm64", "deinstall ok config-files", "1")
            + &para("tool", "i386", "install ok installed", "1");
        let d = admindir(&status, &[]);
        std::fs::write(d.path().join("arch"), "arm64\ni386\n").unwrap();
        let db = StatusDb::load(d.path()).unwrap();
        assert_eq!(db.get("libfoo").unwrap().arch.as_deref(), Some("arm64"));
        assert_eq!(db.get("tool").unwrap().arch.as_deref(), Some("i386"));
        std::fs::write(d.path().join("arch"), "i386\n").unwrap();
        let db = StatusDb::load(d.path()).unwrap();
        assert_eq!(db.get("libfoo").unwrap().arch.as_deref(), Some("i386"));
        // Without an arch file: this binary's architecture, else `all` wins over a foreign one.
        std::fs::remove_file(d.path().join("arch")).unwrap();
        let db = StatusDb::load(d.path()).unwrap();
        let want = if compiled_arch() == "arm64" || compiled_arch() == "i386" {
            compiled_arch()
        } else {
            "all"
        };
        assert_eq!(db.get("libfoo").unwrap().arch.as_deref(), Some(want));
        assert!(db.problems.is_empty(), "{:?}", db.problems);
    }

    #[test]
    fn missing_status_is_an_error_naming_it_and_empty_is_fine() {
        let d = tempfile::tempdir().unwrap();
        let err = format!("{:#}", StatusDb::load(d.path()).unwrap_err());
        assert!(
            err.contains(&d.path().join("status").display().to_string()),
            "{err}"
        );
        std::fs::write(d.path().join("status"), "").unwrap();
        let db = StatusDb::load(d.path()).unwrap();
        assert!(db.packages.is_empty() && db.problems.is_empty());
        // A symlinked status file is refused, not followed.
        std::fs::rename(d.path().join("status"), d.path().join("real")).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("status")).unwrap();
        let err = format!("{:#}", StatusDb::load(d.path()).unwrap_err());
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn compiled_arch_is_a_debian_name() {
        assert!(is_arch(compiled_arch()));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(compiled_arch(), "amd64");
    }
}
