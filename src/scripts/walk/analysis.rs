//! What a walk finds in a script: the sites that act on units and the places it could not follow.

use std::ops::Range;

use super::guard::{Guard, Tri};

/// What a site does to its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitOp {
    Stop,
    /// `start`, `enable --now`.
    Start,
    /// `restart`, `reload-or-restart`: the unit runs afterwards even if it was stopped.
    /// (`deb-systemd-invoke restart` is a restart of an enabled unit.)
    Restart,
    /// `try-restart`, `condrestart`, `force-reload`, `reload-or-try-restart`: acts only on an
    /// active unit, so it does not bring a stopped unit back.
    TryRestart,
}

/// One command in the script that acts on units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub op: UnitOp,
    /// Unit names normalised to `name.service` / `name.socket` (`invoke-rc.d docker stop`
    /// acts on `docker.service`).
    pub units: Vec<String>,
    /// The tool that acts: `deb-systemd-invoke`, `systemctl`, `invoke-rc.d`, `service`, `/etc/init.d/x`.
    pub tool: String,
    /// 1-based first and last line of the command.
    pub lines: (usize, usize),
    /// Byte range of the whole and-or list containing the command (`a >/dev/null || true`),
    /// the text that a repair wraps.
    pub span: Range<usize>,
    pub guard: Guard,
}

impl Site {
    pub fn runs_on(&self, arg: &str) -> Tri {
        self.guard.eval(arg)
    }
}

/// Something the classifier could not follow (a stop through `eval`, a variable unit name, a
/// stop inside a function, unbalanced `if`...). Reported as unknown, never as safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub sites: Vec<Site>,
    pub unknowns: Vec<Unknown>,
}

impl Unknown {
    /// The whole script could not be parsed (as opposed to one construct we do not follow).
    pub fn is_parse_failure(&self) -> bool {
        self.reason.starts_with(PARSE_FAILURE)
    }
}

/// Prefix of the reason of the [`Unknown`] recorded when the script does not parse.
pub const PARSE_FAILURE: &str = "cannot parse the script: ";
