//! `/var/log/dpkg.log`: what dpkg actually did since an offset.

use super::status::is_arch;
use super::valid_package_name;
use anyhow::Context;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// `startup archives unpack`, `startup packages configure`, ...
    Startup { kind: String, command: String },
    /// `install|upgrade|remove|purge|configure|trigproc PKG[:ARCH] OLD NEW`.
    Action {
        action: String,
        package: String,
        arch: Option<String>,
        old: Option<String>,
        new: Option<String>,
    },
    /// `status STATE PKG[:ARCH] VERSION`.
    Status {
        state: String,
        package: String,
        arch: Option<String>,
        version: Option<String>,
    },
    /// `conffile PATH ACTION`.
    Conffile { path: String, action: String },
}

/// At most this much of the log is read per call; a caller that is further behind gets the
/// rest on its next call (the returned offset says where to go on). 8 MiB is months of a busy
/// machine's dpkg.log, and bounds the hook's memory and time.
pub const MAX_READ: u64 = 8 * 1024 * 1024;

/// The actions dpkg logs (`upgrade PKG OLD NEW`, ...).
pub const ACTIONS: &[&str] = &[
    "install",
    "upgrade",
    "remove",
    "purge",
    "configure",
    "trigproc",
];
/// The package states dpkg logs in `status` lines.
pub const STATES: &[&str] = &[
    "not-installed",
    "config-files",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
    "installed",
];

/// Parses one line (`YYYY-MM-DD HH:MM:SS ...`); `None` for anything it does not recognise.
pub fn parse_line(line: &str) -> Option<LogEvent> {
    let rest = strip_timestamp(line)?;
    // dpkg does not quote a conffile's path: it may contain any spaces, the action is the
    // last word.
    if let Some(args) = rest.strip_prefix("conffile ") {
        let (path, action) = args.rsplit_once(' ')?;
        return (path.starts_with('/') && is_word(action)).then(|| LogEvent::Conffile {
            path: path.to_owned(),
            action: action.to_owned(),
        });
    }
    let mut words = rest.split(' ');
    let what = words.next()?;
    let words: Vec<&str> = words.collect();
    if words.iter().any(|w| w.is_empty()) {
        return None; // doubled or trailing spaces: not a line dpkg wrote
    }
    match (what, words.as_slice()) {
        ("startup", [kind, command]) if is_word(kind) && is_word(command) => {
            Some(LogEvent::Startup {
                kind: (*kind).to_owned(),
                command: (*command).to_owned(),
            })
        }
        ("status", [state, pkg, version]) if STATES.contains(state) => {
            let (package, arch) = package_arch(pkg)?;
            Some(LogEvent::Status {
                state: (*state).to_owned(),
                package,
                arch,
                version: version_field(version)?,
            })
        }
        (action, [pkg, old, new]) if ACTIONS.contains(&action) => {
            let (package, arch) = package_arch(pkg)?;
            Some(LogEvent::Action {
                action: action.to_owned(),
                package,
                arch,
                old: version_field(old)?,
                new: version_field(new)?,
            })
        }
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS ` with plausible ranges; the rest of the line after it.
fn strip_timestamp(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    if b.len() < 20 || !line.is_char_boundary(20) {
        return None;
    }
    let shape = b"dddd-dd-dd dd:dd:dd ";
    for (c, s) in b.iter().zip(shape) {
        let fits = if *s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        };
        if !fits {
            return None;
        }
    }
    let num = |r: std::ops::Range<usize>| line[r].parse::<u32>().ok();
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ok = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && min <= 59
        && sec <= 60; // leap second
    ok.then(|| &line[20..])
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

fn package_arch(s: &str) -> Option<(String, Option<String>)> {
    let (name, arch) = match s.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    if !valid_package_name(name) || arch.is_some_and(|a| !is_arch(a)) {
        return None;
    }
    Some((name.to_owned(), arch.map(str::to_owned)))
}

/// `<none>` → `Some(None)`; a version-shaped word → `Some(Some(..))`; anything else → `None`.
/// Only the character set is checked: dpkg logs versions it merely warned about, and
/// dropping such an event would hide what happened.
fn version_field(s: &str) -> Option<Option<String>> {
    if s == "<none>" {
        return Some(None);
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b));
    ok.then(|| Some(s.to_owned()))
}

/// Events appended at or after byte `offset` (at most [`MAX_READ`] bytes are read), and the
/// new end offset. A log that shrank (rotated) is read from its start. A last line without
/// its newline is still being written: it is not consumed (the offset stays before it). A
/// missing log is empty (offset 0): a fresh system, or rotated and not yet recreated.
pub fn read_since(path: &Path, offset: u64) -> anyhow::Result<(Vec<LogEvent>, u64)> {
    if let Err(e) = std::fs::symlink_metadata(path) {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Ok((vec![], 0));
        }
    }
    let mut file = crate::fsutil::open_nofollow(path)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let start = if offset > len { 0 } else { offset };
    file.seek(SeekFrom::Start(start))
        .with_context(|| format!("cannot seek in {}", path.display()))?;
    let mut buf = Vec::with_capacity((len - start).min(MAX_READ) as usize);
    file.take(MAX_READ)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let consumed = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        // One "line" longer than the whole window is not dpkg's: skip it rather than stall.
        None if buf.len() as u64 >= MAX_READ => buf.len(),
        None => 0,
    };
    let events = buf[..consumed]
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(parse_line)
        .collect();
    Ok((events, start + consumed as u64))
}

/// Which file a recorded offset belongs to (device and inode), so that a log rotated between
/// two stages is recognised even when the new file is already longer than the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// The id and length of the log now (`None`: there is no log).
pub fn position(path: &Path) -> Option<(FileId, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_file().then(|| {
        (
            FileId {
                dev: m.dev(),
                ino: m.ino(),
            },
            m.len(),
        )
    })
}

/// Where the last `startup` line of the log begins (the start of the dpkg run writing it now,
/// since dpkg holds its lock while it logs): the log's id and that offset. Read backwards in
/// growing windows, at most [`MAX_READ`] bytes. A missing log is `None`.
pub fn last_startup(path: &Path) -> anyhow::Result<Option<(FileId, u64)>> {
    let Some((id, len)) = position(path) else {
        return Ok(None);
    };
    let mut file = crate::fsutil::open_nofollow(path)?;
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))
            .with_context(|| format!("cannot seek in {}", path.display()))?;
        let mut buf = Vec::new();
        (&mut file)
            .take(len - start)
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut at = buf.len();
        // Lines from the end; the first one of a window that does not start at 0 may be cut.
        while at > 0 {
            let begin = buf[..at - 1]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            if begin > 0 || start == 0 {
                let line = std::str::from_utf8(&buf[begin..at]).unwrap_or("");
                if matches!(parse_line(line.trim_end()), Some(LogEvent::Startup { .. })) {
                    return Ok(Some((id, start + begin as u64)));
                }
            }
            at = begin;
        }
        if start == 0 || window >= MAX_READ {
            anyhow::bail!("{} has no startup line of this dpkg run", path.display());
        }
        window = (window * 4).min(MAX_READ);
    }
}

/// Events since `offset` in the file `id` was recorded from. If `path` is still that file
/// (or no id was recorded), as [`read_since`]; if logrotate moved it (to `path.1`) and made a
/// new one, the rest of the rotated file from `offset`, then the new file from its start.
/// copytruncate keeps the inode and shrinks the file: [`read_since`] reads it from the start.
pub fn read_since_in(
    path: &Path,
    id: Option<FileId>,
    offset: u64,
) -> anyhow::Result<Vec<LogEvent>> {
    let Some(id) = id else {
        return read_since(path, offset).map(|(e, _)| e);
    };
    if position(path).is_some_and(|(now, _)| now == id) {
        return read_since(path, offset).map(|(e, _)| e);
    }
    let mut rotated_name = path.as_os_str().to_owned();
    rotated_name.push(".1");
    let rotated = std::path::PathBuf::from(rotated_name);
    let mut events = Vec::new();
    if position(&rotated).is_some_and(|(r, _)| r == id) {
        events = read_since(&rotated, offset)?.0;
    }
    events.extend(read_since(path, 0)?.0);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(
        a: &str,
        p: &str,
        arch: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
    ) -> LogEvent {
        LogEvent::Action {
            action: a.into(),
            package: p.into(),
            arch: arch.map(Into::into),
            old: old.map(Into::into),
            new: new.map(Into::into),
        }
    }

    #[test]
    fn parses_what_dpkg_writes() {
        let cases: Vec<(&str, LogEvent)> = vec![
            (
                "2024-05-01 12:00:00 upgrade containerd:amd64 1.6.20~ds1-1 1.6.20~ds1-1+deb12u1",
                action(
                    "upgrade",
                    "containerd",
                    Some("amd64"),
                    Some("1.6.20~ds1-1"),
                    Some("1.6.20~ds1-1+deb12u1"),
                ),
            ),
            (
                "2024-05-01 12:00:00 status half-configured containerd:amd64 1.6.20~ds1-1+deb12u1",
                LogEvent::Status {
                    state: "half-configured".into(),
                    package: "containerd".into(),
                    arch: Some("amd64".into()),
                    version: Some("1.6.20~ds1-1+deb12u1".into()),
                },
            ),
            (
                "2024-05-01 12:00:00 status not-installed docker.io <none>",
                LogEvent::Status {
                    state: "not-installed".into(),
                    package: "docker.io".into(),
                    arch: None,
                    version: None,
                },
            ),
            (
                "2024-05-01 12:00:00 startup archives unpack",
                LogEvent::Startup {
                    kind: "archives".into(),
                    command: "unpack".into(),
                },
            ),
            (
                "2024-05-01 12:00:00 startup packages configure",
                LogEvent::Startup {
                    kind: "packages".into(),
                    command: "configure".into(),
                },
            ),
            (
                "2024-05-01 12:00:00 configure containerd:amd64 1.6.20 <none>",
                action(
                    "configure",
                    "containerd",
                    Some("amd64"),
                    Some("1.6.20"),
                    None,
                ),
            ),
            (
                "2024-05-01 12:00:00 install docker.io:amd64 <none> 1:20.10.24+dfsg1-1",
                action(
                    "install",
                    "docker.io",
                    Some("amd64"),
                    None,
                    Some("1:20.10.24+dfsg1-1"),
                ),
            ),
            (
                "2024-05-01 12:00:00 remove docker.io:amd64 20.10 <none>",
                action("remove", "docker.io", Some("amd64"), Some("20.10"), None),
            ),
            (
                "2024-05-01 12:00:00 trigproc man-db:amd64 2.11.2-2 <none>",
                action("trigproc", "man-db", Some("amd64"), Some("2.11.2-2"), None),
            ),
            (
                "2024-05-01 12:00:00 conffile /etc/x keep",
                LogEvent::Conffile {
                    path: "/etc/x".into(),
                    action: "keep".into(),
                },
            ),
            (
                "2024-05-01 12:00:00 conffile /etc/with space/x install",
                LogEvent::Conffile {
                    path: "/etc/with space/x".into(),
                    action: "install".into(),
                },
            ),
            (
                "2016-12-31 23:59:60 purge ca-certificates:all 1 <none>",
                action("purge", "ca-certificates", Some("all"), Some("1"), None),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), Some(want), "{line}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for line in [
            "",
            "2024-05-01 12:00:00",
            "2024-05-01 12:00:00 ",
            "2024-05-01 12:00:00 frobnicate a b c",
            "2024-13-01 12:00:00 startup archives unpack",
            "2024-05-00 12:00:00 startup archives unpack",
            "2024-05-01 24:00:00 startup archives unpack",
            "2024-05-01 12:60:00 startup archives unpack",
            "2024-5-01 12:00:00 startup archives unpack",
            "2024-05-01T12:00:00 startup archives unpack",
            "2024-05-01 12:00:00  startup archives unpack",
            "2024-05-01 12:00:00 startup archives unpack ",
            "2024-05-01 12:00:00 startup archives",
            "2024-05-01 12:00:00 startup Archives unpack",
            "2024-05-01 12:00:00 upgrade containerd:amd64 1.0",
            "2024-05-01 12:00:00 upgrade containerd:amd64 1.0 2.0 3.0",
            "2024-05-01 12:00:00 upgrade Containerd:amd64 1.0 2.0",
            "2024-05-01 12:00:00 upgrade containerd:AMD64 1.0 2.0",
            "2024-05-01 12:00:00 upgrade containerd: 1.0 2.0",
            "2024-05-01 12:00:00 upgrade containerd:amd64 1.0 2.0$",
            "2024-05-01 12:00:00 status sideways containerd:amd64 1.0",
            "2024-05-01 12:00:00 conffile etc/x keep",
            "2024-05-01 12:00:00 conffile keep",
            "2024-05-01 12:00:00 upgrade containerd:amd64 1.0 2.0\r",
            "2024-05-01 12:00:00é upgrade a b c",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    const L1: &str = "2024-05-01 12:00:00 startup archives unpack\n";
    const L2: &str = "2024-05-01 12:00:01 upgrade containerd:amd64 1.0 2.0\n";

    #[test]
    fn reads_from_an_offset_and_keeps_a_partial_line() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dpkg.log");
        assert_eq!(read_since(&log, 42).unwrap(), (vec![], 0), "missing log");
        std::fs::write(&log, format!("{L1}garbage\n{L2}2024-05-01 12:00:02 sta")).unwrap();
        let (ev, off) = read_since(&log, 0).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(off as usize, L1.len() + "garbage\n".len() + L2.len());
        let (ev, off2) = read_since(&log, off).unwrap();
        assert_eq!((ev.len(), off2), (0, off), "partial line not consumed");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"tus installed containerd:amd64 2.0\n").unwrap();
        let (ev, off3) = read_since(&log, off2).unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(off3, std::fs::metadata(&log).unwrap().len());
        // Rotated: the new log is shorter than our offset, so it is read from its start.
        std::fs::write(&log, L2).unwrap();
        let (ev, off4) = read_since(&log, off3).unwrap();
        assert_eq!((ev.len(), off4 as usize), (1, L2.len()));
    }

    #[test]
    fn reads_at_most_the_window_and_skips_invalid_utf8() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dpkg.log");
        let n = (MAX_READ as usize / L2.len()) + 10;
        let mut text = Vec::with_capacity(n * L2.len() + 8);
        text.extend_from_slice(b"\xff\xfe\n");
        for _ in 0..n {
            text.extend_from_slice(L2.as_bytes());
        }
        std::fs::write(&log, &text).unwrap();
        let (ev, off) = read_since(&log, 0).unwrap();
        assert!(off <= MAX_READ && off > MAX_READ - L2.len() as u64, "{off}");
        assert_eq!(ev.len() as u64, (off - 3) / L2.len() as u64);
        let (ev2, off2) = read_since(&log, off).unwrap();
        assert_eq!(off2 as usize, text.len());
        assert_eq!(ev.len() + ev2.len(), n);
    }

    #[test]
    fn one_line_longer_than_the_window_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dpkg.log");
        let mut text = vec![b'x'; MAX_READ as usize + 5];
        text.push(b'\n');
        text.extend_from_slice(L1.as_bytes());
        std::fs::write(&log, &text).unwrap();
        let (ev, off) = read_since(&log, 0).unwrap();
        assert_eq!((ev.len(), off), (0, MAX_READ));
        let (ev, _) = read_since(&log, off).unwrap();
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn last_startup_is_the_start_of_the_run_writing_now() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dpkg.log");
        assert!(last_startup(&log).unwrap().is_none(), "no log: None");
        let old = "2026-12-07 05:53:49 startup archives unpack\n2026-12-07 05:53:49 upgrade thing:all 1 2\n";
        let filler = "2026-12-07 05:53:49 status unpacked thing:all 2\n".repeat(3000);
        let run = "2026-12-07 05:53:52 startup archives install\n2026-12-07 05:53:52 upgrade containerd:amd64 1 2\n";
        // The run's startup line far from the end (past the first 64 KiB window), and a last
        // line still being written.
        let text = format!("{old}{filler}{run}{filler}2026-12-07 05:53:52 status half");
        std::fs::write(&log, &text).unwrap();
        let (id, at) = last_startup(&log).unwrap().unwrap();
        assert_eq!(at as usize, old.len() + filler.len());
        assert_eq!(Some(id), position(&log).map(|(i, _)| i));
        let ev = read_since(&log, at).unwrap().0;
        assert!(matches!(&ev[0], LogEvent::Startup { command, .. } if command == "install"));
        // A startup line as the very first line; a log without one is an error, not a guess.
        std::fs::write(&log, run).unwrap();
        assert_eq!(last_startup(&log).unwrap().unwrap().1, 0);
        std::fs::write(&log, &filler).unwrap();
        assert!(last_startup(&log).is_err());
    }
}
