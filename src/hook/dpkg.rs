//! What dpkg did in this transaction, from its log: the watched packages it changed, in the
//! order it first touched them (old → new version, removed or not). The record holds where
//! dpkg.log ended when the "before" was taken; everything after that is this operation's.

use super::state::Record;
use super::Env;
use crate::dpkg::log::LogEvent;
use anyhow::Result;
use std::path::PathBuf;

pub(crate) const DPKG_LOG: &str = "/var/log/dpkg.log";

pub(crate) fn log_path(env: &Env) -> PathBuf {
    env.root.path(DPKG_LOG)
}

/// dpkg.log's entries written since `rec` was taken (a rotated log is followed).
pub(crate) fn read_since(env: &Env, rec: &Record) -> Result<Vec<LogEvent>> {
    crate::dpkg::log::read_since_in(&log_path(env), rec.dpkg_log_file, rec.dpkg_log_offset)
}

/// Where the dpkg run writing the log now began (its last `startup` line): the trigger stage's
/// "since". No log at all: from its start, once it exists.
pub(crate) fn run_start(env: &Env) -> Result<(Option<crate::dpkg::log::FileId>, u64)> {
    Ok(
        crate::dpkg::log::last_startup(&log_path(env))?
            .map_or((None, 0), |(id, at)| (Some(id), at)),
    )
}

/// What dpkg did to one watched package in this transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub package: String,
    /// The version before the first action (None: newly installed).
    pub old: Option<String>,
    /// The version after the last action (None: removed).
    pub new: Option<String>,
    pub removed: bool,
}

impl Change {
    /// `containerd 1.3.3-0ubuntu2 → 1.3.3-0ubuntu2.1`, `removal of docker.io 20.10`, ...
    pub(crate) fn describe(&self) -> String {
        match (&self.old, &self.new, self.removed) {
            (Some(o), _, true) => format!("removal of {} {o}", self.package),
            (None, _, true) => format!("removal of {}", self.package),
            (Some(o), Some(n), _) if o == n => format!("reinstallation of {} {o}", self.package),
            (Some(o), Some(n), _) => format!("upgrade of {} {o} → {n}", self.package),
            (None, Some(n), _) => format!("installation of {} {n}", self.package),
            (Some(o), None, _) => format!("operation on {} {o}", self.package),
            (None, None, _) => format!("operation on {}", self.package),
        }
    }
}

fn version(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty() && s != "<none>")
}

/// The watched packages dpkg acted on, in the order dpkg first touched them.
pub(crate) fn changes(events: &[LogEvent], watched: &[String]) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for ev in events {
        let LogEvent::Action {
            action,
            package,
            old,
            new,
            ..
        } = ev
        else {
            continue;
        };
        if !watched.iter().any(|w| w == package) {
            continue;
        }
        let (old, new) = (version(old), version(new));
        let entry = if let Some(i) = out.iter_mut().position(|c| &c.package == package) {
            &mut out[i]
        } else {
            out.push(Change {
                package: package.clone(),
                old: old.clone(),
                new: None,
                removed: false,
            });
            out.last_mut().expect("just pushed")
        };
        match action.as_str() {
            "install" | "upgrade" => {
                entry.new = new;
                entry.removed = false;
            }
            "remove" | "purge" => {
                entry.new = None;
                entry.removed = true;
            }
            // configure/trigproc: the version stays what the unpack made it.
            _ => {
                if entry.new.is_none() && !entry.removed {
                    entry.new = new.or(old);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(action: &str, pkg: &str, old: &str, new: &str) -> LogEvent {
        LogEvent::Action {
            action: action.into(),
            package: pkg.into(),
            arch: Some("all".into()),
            old: Some(old.into()),
            new: Some(new.into()),
        }
    }

    #[test]
    fn changes_from_log() {
        let w = vec!["containerd".to_string(), "docker.io".to_string()];
        let ev = vec![
            act("upgrade", "containerd", "1.0", "1.1"),
            act("upgrade", "hello", "1", "2"),
            act("configure", "containerd", "1.1", "<none>"),
            act("remove", "docker.io", "20.10", "<none>"),
            act("install", "runc", "<none>", "1"),
        ];
        let c = changes(&ev, &w);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].describe(), "upgrade of containerd 1.0 → 1.1");
        assert_eq!(c[1].describe(), "removal of docker.io 20.10");
        assert!(changes(&[], &w).is_empty());
    }
}
