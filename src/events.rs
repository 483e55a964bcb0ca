//! Where the hook's events go besides stderr: an append-only, size-bounded JSON-lines log under
//! `/var/log/docker-upgrade-guard/`, and the journal (native protocol, structured fields) when
//! its socket exists.

use crate::root::Root;
use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The log directory (mode 0750: adm-style readers may be given the group, nobody may write).
pub const LOG_DIR: &str = "/var/log/docker-upgrade-guard";
pub const LOG_FILE: &str = "events.jsonl";
/// The log is rotated to `events.jsonl.1` before it would grow past this.
pub const MAX_LOG: u64 = 1024 * 1024;
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
pub const SYSLOG_IDENTIFIER: &str = "docker-upgrade-guard";

/// One thing the hook saw or did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// RFC 3339 UTC.
    pub time: String,
    pub kind: EventKind,
    pub unit: Option<String>,
    pub package: Option<String>,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    /// Why the unit stopped (`prerm stop`, `BindsTo=containerd.service`, ...).
    pub cause: Option<String>,
    /// What the tool did and how it went.
    pub outcome: Option<String>,
    /// The line printed to stderr.
    pub message: String,
}

/// What an event is about; written as `started`, `start-failed`, ... (events.jsonl, the
/// journal's `DUG_KIND`). A kind this version does not know (an older or newer file) is kept
/// as it was written, so that `status` still shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Started,
    StartFailed,
    LeftStopped,
    Restarted,
    Patched,
    Reverted,
    Error,
    /// A container that ran before the operation and did not come back (issue 13).
    ContainerDown,
    /// Such a container, started again (`restart_containers = "previously-running"`).
    ContainerRestarted,
    Other(String),
}

impl EventKind {
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Started => "started",
            EventKind::StartFailed => "start-failed",
            EventKind::LeftStopped => "left-stopped",
            EventKind::Restarted => "restarted",
            EventKind::Patched => "patched",
            EventKind::Reverted => "reverted",
            EventKind::Error => "error",
            EventKind::ContainerDown => "container-down",
            EventKind::ContainerRestarted => "container-restarted",
            EventKind::Other(s) => s,
        }
    }
}

impl Default for EventKind {
    fn default() -> Self {
        EventKind::Other(String::new())
    }
}

impl From<&str> for EventKind {
    fn from(s: &str) -> Self {
        match s {
            "started" => EventKind::Started,
            "start-failed" => EventKind::StartFailed,
            "left-stopped" => EventKind::LeftStopped,
            "restarted" => EventKind::Restarted,
            "patched" => EventKind::Patched,
            "reverted" => EventKind::Reverted,
            "container-down" => EventKind::ContainerDown,
            "container-restarted" => EventKind::ContainerRestarted,
            "error" => EventKind::Error,
            other => EventKind::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(EventKind::from(&*s))
    }
}

/// Appends to `var/log/docker-upgrade-guard/events.jsonl` (rotating to `.1` past 1 MiB) and
/// sends to the journal if `/run/systemd/journal/socket` exists. Errors are returned, the
/// caller reports them and carries on. An empty `time` is filled with the current time.
pub fn record(root: &Root, event: &Event) -> Result<()> {
    let mut ev = event.clone();
    if ev.time.is_empty() {
        ev.time = now_rfc3339();
    }
    let logged = append_log(root, &ev);
    let journaled = send_journal(root, &ev);
    if let Err(e) = &logged {
        // The event itself reached the journal (if it runs); so does why the log did not.
        let _ = send_journal_payload(
            root,
            &journal_line(&format!("cannot write the event log: {e:#}")),
        );
    }
    match (logged, journaled) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(anyhow::anyhow!("{a:#}; also {b:#}")),
    }
}

/// The last `n` events of the log (newest last); malformed lines are skipped. Reaches into
/// `events.jsonl.1` when the current file holds fewer than `n`.
pub fn last(root: &Root, n: usize) -> Result<Vec<Event>> {
    let Some(dir) = crate::dirs::open(root, LOG_DIR)? else {
        return Ok(Vec::new());
    };
    let mut events = read_events(&dir, LOG_FILE)?;
    if events.len() < n {
        let mut older = read_events(&dir, ROTATED)?;
        older.append(&mut events);
        events = older;
    }
    let skip = events.len().saturating_sub(n);
    Ok(events.split_off(skip))
}

pub fn log_path(root: &Root) -> PathBuf {
    root.path(LOG_DIR).join(LOG_FILE)
}

/// What the log is rotated to.
const ROTATED: &str = "events.jsonl.1";

fn read_events(dir: &crate::dirs::Dir, name: &str) -> Result<Vec<Event>> {
    // A line past the bound is allowed once (see `append_log`), hence the slack.
    let Some(bytes) = dir.read(name, 2 * MAX_LOG)? else {
        return Ok(Vec::new());
    };
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Event>(l).ok())
        .collect())
}

/// One JSON line, appended under an exclusive `flock` so that concurrent hooks neither
/// interleave nor rotate twice. Everything relative to the log directory's descriptor
/// ([`crate::dirs`]): a directory swapped or a symlink planted cannot redirect the write.
fn append_log(root: &Root, ev: &Event) -> Result<()> {
    let dir = crate::dirs::create(root, LOG_DIR, 0o750)?;
    let path = dir.join(LOG_FILE);
    let mut line = serde_json::to_vec(ev).context("cannot encode the event")?;
    line.push(b'\n');
    for _ in 0..4 {
        // Created 0640, never through a symlink, regular files only (a FIFO fails at once).
        let file = lock(dir.open_append(LOG_FILE, 0o640)?, &path)?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        // Another hook may have rotated the file between our open and our lock.
        match dir.stat(LOG_FILE)? {
            Some(now) if now.st_dev == meta.dev() && now.st_ino == meta.ino() => {}
            _ => continue,
        }
        if meta.len() > 0 && meta.len() + line.len() as u64 > MAX_LOG {
            dir.rename(LOG_FILE, ROTATED).with_context(|| {
                format!(
                    "cannot rotate {} to {}",
                    path.display(),
                    dir.join(ROTATED).display()
                )
            })?;
            continue;
        }
        if meta.mode() & 0o137 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o640))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        }
        (&*file)
            .write_all(&line)
            .with_context(|| format!("cannot append to {}", path.display()))?;
        return Ok(());
    }
    bail!(
        "{} kept changing under us; event not logged",
        path.display()
    )
}

/// Waits (bounded: a second) for the log's lock; a hook never hangs on a stuck writer.
fn lock(mut file: File, path: &Path) -> Result<Flock<File>> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((_, e)) => bail!("cannot lock {}: {}", path.display(), e.desc()),
        }
    }
}

fn send_journal(root: &Root, ev: &Event) -> Result<()> {
    let sock = root.path(JOURNAL_SOCKET);
    if std::fs::symlink_metadata(&sock).is_err() {
        return Ok(());
    }
    send_journal_payload(root, &journal_payload(ev))
}

fn send_journal_payload(root: &Root, payload: &[u8]) -> Result<()> {
    let sock = root.path(JOURNAL_SOCKET);
    if std::fs::symlink_metadata(&sock).is_err() {
        return Ok(());
    }
    let s = UnixDatagram::unbound().context("cannot create a socket for the journal")?;
    // journald reads fast; if its buffer is full, losing the copy beats blocking apt.
    s.set_nonblocking(true)
        .context("cannot create a socket for the journal")?;
    s.send_to(payload, &sock)
        .with_context(|| format!("cannot send the event to the journal at {}", sock.display()))?;
    Ok(())
}

/// A journal entry that is no event: one escaped line at priority "error".
fn journal_line(msg: &str) -> Vec<u8> {
    format!(
        "MESSAGE={}\nPRIORITY=3\nSYSLOG_IDENTIFIER={SYSLOG_IDENTIFIER}\n",
        crate::escape::one_line(msg)
    )
    .into_bytes()
}

/// syslog priority for an event kind: trouble is an error, a unit left down a warning, a
/// repair a notice.
pub fn priority(kind: &EventKind) -> u8 {
    use EventKind as K;
    match kind {
        K::Error | K::StartFailed => 3,
        K::LeftStopped | K::ContainerDown => 4,
        K::Started | K::Restarted | K::Patched | K::Reverted | K::ContainerRestarted => 5,
        K::Other(_) => 6,
    }
}

/// The journal's native protocol: `KEY=value\n` per field, or for a value with a newline
/// `KEY\n`, its length as 64-bit little-endian, the bytes, `\n`.
pub fn journal_payload(ev: &Event) -> Vec<u8> {
    let prio = priority(&ev.kind).to_string();
    let fields: [(&str, Option<&str>); 10] = [
        ("MESSAGE", Some(&ev.message)),
        ("PRIORITY", Some(&prio)),
        ("SYSLOG_IDENTIFIER", Some(SYSLOG_IDENTIFIER)),
        ("DUG_KIND", Some(ev.kind.as_str())),
        ("DUG_UNIT", ev.unit.as_deref()),
        ("DUG_PACKAGE", ev.package.as_deref()),
        ("DUG_OLD_VERSION", ev.old_version.as_deref()),
        ("DUG_NEW_VERSION", ev.new_version.as_deref()),
        ("DUG_CAUSE", ev.cause.as_deref()),
        ("DUG_OUTCOME", ev.outcome.as_deref()),
    ];
    let mut out = Vec::new();
    for (key, value) in fields {
        let Some(value) = value else { continue };
        // The values carry text from package files: no control sequence reaches the journal
        // (a multi-line message keeps its newlines, sent length-prefixed below).
        let value = &*crate::escape::for_terminal(value);
        out.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Now, as RFC 3339 UTC to the second (`2024-05-01T03:12:09Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's days-to-civil algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (
                1_588_291_200 + 3 * 3600 + 12 * 60 + 9,
                "2020-05-01T03:12:09Z",
            ),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), want);
        }
    }

    #[test]
    fn payload_fields() {
        let ev = Event {
            kind: "started".into(),
            unit: Some("docker.service".into()),
            message: "two\nlines".into(),
            ..Event::default()
        };
        let p = journal_payload(&ev);
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\nPRIORITY=5\nSYSLOG_IDENTIFIER=docker-upgrade-guard\nDUG_KIND=started\nDUG_UNIT=docker.service\n");
        assert_eq!(p, want);
    }
}
