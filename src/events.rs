//! Where the hook's events go besides stderr: an append-only, size-bounded JSON-lines log under
//! `/var/log/docker-upgrade-guard/`, and the journal (native protocol, structured fields) when
//! its socket exists.

use crate::root::Root;

/// One thing the hook saw or did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// RFC 3339 UTC.
    pub time: String,
    /// `started`, `start-failed`, `left-stopped`, `patched`, `error`, ...
    pub kind: String,
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

/// Appends to `var/log/docker-upgrade-guard/events.jsonl` (rotating to `.1` past 1 MiB) and
/// sends to the journal if `/run/systemd/journal/socket` exists. Errors are returned, the
/// caller reports them and carries on.
pub fn record(root: &Root, event: &Event) -> anyhow::Result<()> {
    let _ = (root, event);
    todo!("units helper")
}

/// The last `n` events of the log (newest last); malformed lines are skipped.
pub fn last(root: &Root, n: usize) -> anyhow::Result<Vec<Event>> {
    let _ = (root, n);
    todo!("units helper")
}
