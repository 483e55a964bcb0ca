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

/// Something the walk could not follow (a stop through `eval`, a variable unit name, a stop
/// inside a function, a script that does not parse...). Reported as unknown, never as safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub line: usize,
    pub kind: UnknownKind,
    /// One line for the report, naming the construct.
    pub reason: String,
}

/// Why the walk could not follow a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKind {
    /// The whole script does not parse: nothing in it can be trusted or edited.
    Unparsable,
    /// A unit action inside a function body: where and whether it runs is not followed.
    InFunction,
    /// A unit name, action or command name from a variable we cannot resolve, `$@` or a pattern.
    Unresolved,
    /// `eval`, `sh -c` or a command substitution whose text may run a unit tool.
    Indirect,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub sites: Vec<Site>,
    pub unknowns: Vec<Unknown>,
}

impl Unknown {
    /// The whole script could not be parsed (as opposed to one construct we do not follow).
    pub fn is_parse_failure(&self) -> bool {
        self.kind == UnknownKind::Unparsable
    }
}
