//! Reads a maintainer script and finds every place where it stops or starts a unit, with the
//! conditions (on `$1` and otherwise) under which that place runs.

use std::fmt;
use std::ops::Range;

use super::glob;

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
        match self {
            Guard::Always => Tri::Yes,
            Guard::ArgIs(pat) => {
                if glob::matches(pat, arg) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Guard::Not(g) => match g.eval(arg) {
                Tri::Yes => Tri::No,
                Tri::No => Tri::Yes,
                Tri::Maybe => Tri::Maybe,
            },
            Guard::And(gs) => gs.iter().fold(Tri::Yes, |acc, g| match (acc, g.eval(arg)) {
                (Tri::No, _) | (_, Tri::No) => Tri::No,
                (Tri::Yes, Tri::Yes) => Tri::Yes,
                _ => Tri::Maybe,
            }),
            Guard::Or(gs) => gs.iter().fold(Tri::No, |acc, g| match (acc, g.eval(arg)) {
                (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                (Tri::No, Tri::No) => Tri::No,
                _ => Tri::Maybe,
            }),
            Guard::Other(_) => Tri::Maybe,
        }
    }

    /// Does the guard look at `$1` at all?
    pub fn mentions_arg(&self) -> bool {
        match self {
            Guard::ArgIs(_) => true,
            Guard::Always | Guard::Other(_) => false,
            Guard::Not(g) => g.mentions_arg(),
            Guard::And(gs) | Guard::Or(gs) => gs.iter().any(Guard::mentions_arg),
        }
    }

    /// A conjunction, flattened, without `Always`; `Always` when empty.
    pub fn all(gs: impl IntoIterator<Item = Guard>) -> Guard {
        let mut out = Vec::new();
        for g in gs {
            match g {
                Guard::Always => {}
                Guard::And(inner) => out.extend(inner),
                g => out.push(g),
            }
        }
        match out.len() {
            0 => Guard::Always,
            1 => out.pop().unwrap_or(Guard::Always),
            _ => Guard::And(out),
        }
    }

    /// A disjunction, flattened.
    pub fn any(gs: impl IntoIterator<Item = Guard>) -> Guard {
        let mut out = Vec::new();
        for g in gs {
            match g {
                Guard::Or(inner) => out.extend(inner),
                g => out.push(g),
            }
        }
        match out.len() {
            1 => out.pop().unwrap_or(Guard::Always),
            _ => Guard::Or(out),
        }
    }

    /// A guard that never holds (`[ "x$1" = "yz" ]`).
    pub fn never() -> Guard {
        Guard::Not(Box::new(Guard::Always))
    }

    pub fn negate(g: Guard) -> Guard {
        match g {
            Guard::Not(inner) => *inner,
            g => Guard::Not(Box::new(g)),
        }
    }
}

/// For reports: `$1 = remove && [ -d /run/systemd/system ]`.
impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::Always => f.write_str("always"),
            Guard::ArgIs(p) => write!(f, "$1 = {p}"),
            Guard::Not(g) if **g == Guard::Always => f.write_str("never"),
            Guard::Not(g) => match &**g {
                Guard::ArgIs(p) => write!(f, "$1 != {p}"),
                g @ (Guard::And(_) | Guard::Or(_)) => write!(f, "!({g})"),
                g => write!(f, "! {g}"),
            },
            Guard::And(gs) | Guard::Or(gs) => {
                let sep = if matches!(self, Guard::And(_)) {
                    " && "
                } else {
                    " || "
                };
                for (i, g) in gs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    match g {
                        Guard::And(_) | Guard::Or(_) => write!(f, "({g})")?,
                        g => write!(f, "{g}")?,
                    }
                }
                Ok(())
            }
            Guard::Other(t) => f.write_str(t),
        }
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
    /// Unknown if there are none but there are unknowns (an unknown may touch any unit).
    pub fn query(&self, ops: &[UnitOp], unit: &str, arg: &str) -> Answer<'_> {
        let sites: Vec<&Site> = self
            .sites
            .iter()
            .filter(|s| ops.contains(&s.op))
            .filter(|s| s.units.iter().any(|u| u == unit))
            .filter(|s| s.runs_on(arg) != Tri::No)
            .collect();
        if !sites.is_empty() {
            Answer::Yes(sites)
        } else if !self.unknowns.is_empty() {
            Answer::Unknown(self.unknowns.iter().collect())
        } else {
            Answer::No
        }
    }

    /// The script could not be parsed at all: nothing in it can be trusted or edited.
    pub fn unparsable(&self) -> bool {
        self.unknowns.iter().any(Unknown::is_parse_failure)
    }
}

impl Unknown {
    /// The whole script could not be parsed (as opposed to one construct we do not follow).
    pub fn is_parse_failure(&self) -> bool {
        self.reason.starts_with(PARSE_FAILURE)
    }
}

/// Prefix of the reason of the [`Unknown`] recorded when the script does not parse.
pub const PARSE_FAILURE: &str = "cannot parse the script: ";

/// Analyses a maintainer script's text.
pub fn analyse(text: &str) -> Analysis {
    super::walk::analyse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> Guard {
        Guard::ArgIs(s.into())
    }

    #[test]
    fn guard_eval_table() {
        let other = || Guard::Other("[ -d /run/systemd/system ]".into());
        let cases: Vec<(Guard, &str, Tri)> = vec![
            (Guard::Always, "upgrade", Tri::Yes),
            (arg("remove"), "upgrade", Tri::No),
            (arg("remove"), "remove", Tri::Yes),
            (arg("abort-*"), "abort-upgrade", Tri::Yes),
            (Guard::negate(arg("remove")), "upgrade", Tri::Yes),
            (other(), "upgrade", Tri::Maybe),
            (Guard::negate(other()), "upgrade", Tri::Maybe),
            (Guard::all([other(), arg("remove")]), "upgrade", Tri::No),
            (Guard::all([other(), arg("remove")]), "remove", Tri::Maybe),
            (Guard::any([other(), arg("remove")]), "remove", Tri::Yes),
            (Guard::any([other(), arg("remove")]), "upgrade", Tri::Maybe),
            (
                Guard::any([arg("purge"), arg("remove")]),
                "upgrade",
                Tri::No,
            ),
            (Guard::never(), "upgrade", Tri::No),
        ];
        for (g, a, want) in cases {
            assert_eq!(g.eval(a), want, "{g} with {a}");
        }
    }

    fn stop_guard(src: &str) -> Guard {
        let a = analyse(src);
        assert!(a.unknowns.is_empty(), "{:?}", a.unknowns);
        a.sites[0].guard.clone()
    }

    #[test]
    fn test_expression_forms() {
        let t = |c: &str| stop_guard(&format!("if {c}; then systemctl stop x; fi\n"));
        assert_eq!(
            t("[ \"$1\" = remove -o \"$1\" = purge ]"),
            Guard::any([arg("remove"), arg("purge")])
        );
        assert_eq!(t("[ remove = \"$1\" ]"), arg("remove"));
        assert_eq!(t("[ \"$1\" == 'a*' ]"), arg("a\\*"));
        assert_eq!(t("[ \"x$1\" = yremove ]"), Guard::never());
        assert_eq!(t("[ ! \"$1\" = upgrade ]"), Guard::negate(arg("upgrade")));
        assert_eq!(t("test -z \"$1\""), arg(""));
        assert_eq!(t("[ \"$2\" = x ]"), Guard::Other("[ \"$2\" = x ]".into()));
        assert_eq!(t("true"), Guard::Always);
    }

    #[test]
    fn query_prefers_sites_then_unknowns() {
        let a = analyse("systemctl stop docker\nsystemctl stop \"$U\"\n");
        assert!(
            matches!(a.query(&[UnitOp::Stop], "docker.service", "upgrade"), Answer::Yes(s) if s.len() == 1)
        );
        assert!(
            matches!(a.query(&[UnitOp::Stop], "containerd.service", "upgrade"), Answer::Unknown(u) if u.len() == 1)
        );
        let a = analyse("systemctl stop docker\n");
        assert_eq!(
            a.query(&[UnitOp::Start], "docker.service", "configure"),
            Answer::No
        );
    }

    #[test]
    fn display_reads_like_the_script() {
        let g = Guard::all([
            Guard::Other("[ -d /run/systemd/system ]".into()),
            Guard::negate(arg("remove")),
        ]);
        assert_eq!(g.to_string(), "[ -d /run/systemd/system ] && $1 != remove");
    }
}
