//! The condition a unit action sits under, as a small expression over `$1`, and its
//! three-valued evaluation.

use std::fmt;

use crate::scripts::glob;

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

    #[test]
    fn display_reads_like_the_script() {
        let g = Guard::all([
            Guard::Other("[ -d /run/systemd/system ]".into()),
            Guard::negate(arg("remove")),
        ]);
        assert_eq!(g.to_string(), "[ -d /run/systemd/system ] && $1 != remove");
    }
}
