//! Reads a maintainer script and finds every place where it stops or starts a unit, with the
//! conditions (on `$1` and otherwise) under which that place runs.

use std::ops::Range;

/// What a site does to its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitOp {
    Stop,
    Start,
    Restart,
    /// `try-restart`, `condrestart`, `reload-or-restart` of an active unit, `deb-systemd-invoke restart`...
    TryRestart,
}

/// The three-valued answer to "does this run when `$1` is X?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    /// Depends on something other than `$1` (`[ -d /run/systemd/system ]`, debconf answers...).
    /// For safety a stop that *may* run on upgrade counts as a stop on upgrade.
    Maybe,
}

/// The condition a site sits under, as a small expression over `$1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    Always,
    /// `"$1" = word` (also `case "$1" in word)`).
    ArgIs(String),
    Not(Box<Guard>),
    And(Vec<Guard>),
    Or(Vec<Guard>),
    /// A condition not on `$1`; the text is kept for the report.
    Other(String),
}

impl Guard {
    /// Evaluates the guard for `$1 == arg`.
    pub fn eval(&self, arg: &str) -> Tri {
        let _ = arg;
        todo!("scripts helper")
    }
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

/// The answer to "does this script stop/start `unit` when called with `arg`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// These sites do it (Tri::Yes or Tri::Maybe).
    Yes(Vec<&'a Site>),
    No,
    /// The script has something we cannot decide about that could touch the unit.
    Unknown(Vec<&'a Unknown>),
}

impl Analysis {
    /// Sites with `op` in `ops` acting on `unit` that run (Yes or Maybe) when `$1 == arg`;
    /// Unknown if there are none but there are unknowns.
    pub fn query(&self, ops: &[UnitOp], unit: &str, arg: &str) -> Answer<'_> {
        let _ = (ops, unit, arg);
        todo!("scripts helper")
    }
}

/// Analyses a maintainer script's text.
pub fn analyse(text: &str) -> Analysis {
    let _ = text;
    todo!("scripts helper")
}
