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
    /// A test on a literal path of the node (`[ -x "/etc/init.d/containerd" ]`): Maybe here,
    /// a fact where the node's files are known ([`Guard::eval_on`]). Boxed: rare, and it
    /// would double the size of every guard.
    File(Box<FileTest>),
    /// A condition not on `$1`; the text is kept for the report.
    Other(String),
}

/// `[ -OP /literal/path ]`: a fact of the node the script runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTest {
    pub op: FileOp,
    /// Absolute, literal (quotes removed).
    pub path: String,
    /// The condition as written, for reports.
    pub text: String,
}

/// The unary file tests of `test(1)` that a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// `-e`
    Exists,
    /// `-f`
    Regular,
    /// `-d`
    Directory,
    /// `-L`, `-h`
    Symlink,
    /// `-s`
    NotEmpty,
    /// `-x`
    Executable,
}

impl FileOp {
    pub fn from_flag(flag: &str) -> Option<FileOp> {
        Some(match flag {
            "-e" => FileOp::Exists,
            "-f" => FileOp::Regular,
            "-d" => FileOp::Directory,
            "-L" | "-h" => FileOp::Symlink,
            "-s" => FileOp::NotEmpty,
            "-x" => FileOp::Executable,
            _ => return None,
        })
    }

    /// What the test asks, after the path: "exists" (as in "/etc/init.d/containerd exists").
    pub fn phrase(self) -> &'static str {
        match self {
            FileOp::Exists => "exists",
            FileOp::Regular => "exists as a regular file",
            FileOp::Directory => "exists as a directory",
            FileOp::Symlink => "is a symlink",
            FileOp::NotEmpty => "exists and is not empty",
            FileOp::Executable => "exists as an executable",
        }
    }
}

impl Guard {
    /// Evaluates the guard for `$1 == arg`; tests on the node's files are Maybe.
    pub fn eval(&self, arg: &str) -> Tri {
        self.eval_on(arg, &|_| Tri::Maybe)
    }

    /// Evaluates the guard for `$1 == arg` on a node whose file tests `node` answers.
    pub fn eval_on(&self, arg: &str, node: &dyn Fn(&FileTest) -> Tri) -> Tri {
        match self {
            Guard::Always => Tri::Yes,
            Guard::ArgIs(pat) => {
                if glob::matches(pat, arg) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Guard::Not(g) => match g.eval_on(arg, node) {
                Tri::Yes => Tri::No,
                Tri::No => Tri::Yes,
                Tri::Maybe => Tri::Maybe,
            },
            Guard::And(gs) => {
                gs.iter()
                    .fold(Tri::Yes, |acc, g| match (acc, g.eval_on(arg, node)) {
                        (Tri::No, _) | (_, Tri::No) => Tri::No,
                        (Tri::Yes, Tri::Yes) => Tri::Yes,
                        _ => Tri::Maybe,
                    })
            }
            Guard::Or(gs) => gs
                .iter()
                .fold(Tri::No, |acc, g| match (acc, g.eval_on(arg, node)) {
                    (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                    (Tri::No, Tri::No) => Tri::No,
                    _ => Tri::Maybe,
                }),
            Guard::File(t) => node(t),
            Guard::Other(_) => Tri::Maybe,
        }
    }

    /// The file tests in the guard, each with its polarity (true: the guard needs it to hold).
    pub fn file_tests(&self) -> Vec<(&FileTest, bool)> {
        fn walk<'g>(g: &'g Guard, positive: bool, out: &mut Vec<(&'g FileTest, bool)>) {
            match g {
                Guard::File(t) => {
                    if !out.contains(&(t, positive)) {
                        out.push((t, positive));
                    }
                }
                Guard::Not(g) => walk(g, !positive, out),
                Guard::And(gs) | Guard::Or(gs) => gs.iter().for_each(|g| walk(g, positive, out)),
                Guard::Always | Guard::ArgIs(_) | Guard::Other(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, true, &mut out);
        out
    }

    /// Does the guard look at `$1` at all?
    pub fn mentions_arg(&self) -> bool {
        match self {
            Guard::ArgIs(_) => true,
            Guard::Always | Guard::File(_) | Guard::Other(_) => false,
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
            Guard::File(t) => f.write_str(&t.text),
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
