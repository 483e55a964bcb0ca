//! Walks a parsed maintainer script, carrying the conditions on the current path and the
//! literal values variables may hold, and records every command that acts on a unit.
//!
//! The walk, file by file: [`traverse`] follows the script's control flow (lists, `&&`/`||`,
//! `if`, `case`, loops, functions, `exit`) → its conditions are read by [`test_expr`] (`[`,
//! `test`, `true`) and the words it meets are resolved by [`values`] (what a variable may hold)
//! → each simple command goes to [`command`] (wrappers such as `env`/`exec`, the command name,
//! recording a [`Site`]) → [`tools`] recognises what `systemctl`, `deb-systemd-invoke`,
//! `invoke-rc.d`, `service`, `/etc/init.d/x`, `eval` and `sh -c` do → the result is an
//! [`Analysis`] ([`analysis`]) whose sites sit under a [`Guard`] ([`guard`]).
//!
//! Choices (see also the module docs of [`crate::scripts`]):
//! - `invoke-rc.d --skip-systemd-native X stop` is NOT a site: on a systemd host it does nothing
//!   for a unit that ships a native systemd unit, and every watched unit does (docker.service,
//!   containerd.service); debhelper pairs it with a separate `deb-systemd-invoke` block.
//! - `systemctl --user`/`--global` and `deb-systemd-invoke --user` act on user managers: not sites.
//! - A unit action inside a function body, a unit or action from a variable we cannot resolve,
//!   units from `$@`, `eval`/`sh -c` text that mentions unit tools, and command substitutions
//!   that run unit tools become [`Unknown`]s. A variable assigned literals (in any branch before
//!   its use, e.g. debhelper's `_dh_action=restart`/`start`) is resolved to those literals.

use std::ops::Range;

mod analysis;
mod command;
mod guard;
mod test_expr;
mod tools;
mod traverse;
mod values;

pub use analysis::{Analysis, Site, UnitOp, Unknown, UnknownKind};
pub use command::normalise_unit;
pub use guard::{FileOp, FileTest, Guard, Tri};

use super::parse::{self, AndOr};
use values::Env;

pub fn analyse(text: &str) -> Analysis {
    let mut w = Walker {
        src: text,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        out: Analysis::default(),
        env: Env::new(),
        func: None,
    };
    match parse::parse(text) {
        Ok(list) => w.list(&list, &[]),
        Err(e) => {
            let line = w.line(e.pos);
            w.out.unknowns.push(Unknown {
                line,
                kind: UnknownKind::Unparsable,
                reason: format!("cannot parse the script: {}", e.msg),
            });
        }
    }
    w.out
}

pub(super) fn normalise_space(s: &str) -> String {
    s.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

struct Walker<'a> {
    src: &'a str,
    line_starts: Vec<usize>,
    out: Analysis,
    env: Env,
    /// Inside the body of this function: unit actions there are not followed.
    func: Option<String>,
}

impl Walker<'_> {
    pub(super) fn line(&self, pos: usize) -> usize {
        match self.line_starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub(super) fn text(&self, span: &Range<usize>) -> String {
        normalise_space(&self.src[span.clone()])
    }

    pub(super) fn unknown(&mut self, pos: usize, kind: UnknownKind, reason: String) {
        let line = self.line(pos);
        self.out.unknowns.push(Unknown { line, kind, reason });
    }

    pub(super) fn list_text(&self, list: &[AndOr]) -> String {
        match (list.first(), list.last()) {
            (Some(a), Some(b)) => self.text(&(a.span.start..b.span.end)),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unknown_has_its_kind() {
        let cases = [
            ("if then fi fi\n", UnknownKind::Unparsable),
            ("f() { systemctl stop docker; }\n", UnknownKind::InFunction),
            ("systemctl stop \"$U\"\n", UnknownKind::Unresolved),
            ("systemctl \"$@\" docker\n", UnknownKind::Unresolved),
            ("$TOOL stop docker\n", UnknownKind::Unresolved),
            ("eval \"systemctl stop docker\"\n", UnknownKind::Indirect),
            ("x=$(systemctl stop docker)\n", UnknownKind::Indirect),
        ];
        for (src, want) in cases {
            let a = analyse(src);
            let kinds: Vec<UnknownKind> = a.unknowns.iter().map(|u| u.kind).collect();
            assert_eq!(kinds, [want], "{src}: {:?}", a.unknowns);
            assert_eq!(a.unparsable(), want == UnknownKind::Unparsable, "{src}");
        }
    }
}
