//! One simple command: assignments, command substitutions that run unit tools, wrappers
//! (`command`, `exec`, `nohup`, `env`), the command name (possibly from a variable), and the
//! [`Site`] recorded for what a tool recognised.

use std::fmt;
use std::ops::Range;

use super::tools::{is_action_word, UNIT_TOOLS};
use super::values::Res;
use super::{normalise_space, Guard, Site, UnitOp, UnknownKind, Walker};
use crate::scripts::lex::{Part, Word};
use crate::scripts::parse::Simple;

/// The unit a name stands for: `docker` → `docker.service`.
pub fn normalise_unit(name: &str) -> String {
    if crate::units::has_unit_suffix(name) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

/// What a tool recognised in one command: the op(s) it does, each with the conditions under
/// which its action word has that value (empty unless the action comes from a variable), and
/// the units it acts on.
pub(super) struct Found {
    pub(super) ops: Vec<(UnitOp, Vec<Guard>)>,
    pub(super) units: Vec<String>,
}

/// Why a tool's command cannot be followed; the caller records it as an [`Unknown`] of the
/// error's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NotFollowed {
    /// A unit word with a glob (`systemctl stop 'docker*'`).
    UnitPattern(String),
    /// Unit names from `$@`/`$*`.
    UnitsFromArgs,
    /// A unit name from a variable we cannot resolve (the text says which).
    UnitFrom(String),
    /// The action from `$@`/`$*`.
    ActionFromArgs,
    /// The action from a variable we cannot resolve.
    ActionFrom(String),
    /// `eval`/`sh -c` (the tool's name) of text that may run a unit tool.
    Eval(String),
}

impl NotFollowed {
    fn kind(&self) -> UnknownKind {
        match self {
            NotFollowed::Eval(_) => UnknownKind::Indirect,
            _ => UnknownKind::Unresolved,
        }
    }
}

impl fmt::Display for NotFollowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFollowed::UnitPattern(u) => write!(f, "unit pattern `{u}`"),
            NotFollowed::UnitsFromArgs => f.write_str("units from `$@`"),
            NotFollowed::UnitFrom(why) => write!(f, "unit name from {why}"),
            NotFollowed::ActionFromArgs => f.write_str("action from `$@`"),
            NotFollowed::ActionFrom(why) => write!(f, "action from {why}"),
            NotFollowed::Eval(what) => write!(f, "`{what}` of text we cannot follow"),
        }
    }
}

impl Walker<'_> {
    pub(super) fn simple(
        &mut self,
        s: &Simple,
        path: &[Guard],
        ao: &Range<usize>,
        conditional: bool,
    ) {
        if s.words.is_empty() {
            for (name, value) in &s.assigns {
                self.assign(name, value, path, conditional);
            }
        }
        for w in s.words.iter().chain(s.assigns.iter().map(|(_, v)| v)) {
            for p in &w.parts {
                if let Part::Complex(raw) = p {
                    if UNIT_TOOLS.iter().any(|t| raw.contains(t)) {
                        let reason = format!(
                            "command substitution `{}` runs a unit tool; not followed",
                            normalise_space(raw)
                        );
                        self.unknown(s.span.start, UnknownKind::Indirect, reason);
                    }
                }
            }
        }
        let words = &s.words;
        let mut idx = 0;
        loop {
            let Some(w) = words.get(idx) else { return };
            match w.literal().as_deref() {
                Some("command") => {
                    idx += 1;
                    match words.get(idx).and_then(Word::literal).as_deref() {
                        Some(o) if o.starts_with("-v") || o.starts_with("-V") => return,
                        Some("-p") => idx += 1,
                        _ => {}
                    }
                }
                Some("exec" | "nohup") => idx += 1,
                Some("env") => {
                    idx += 1;
                    while words
                        .get(idx)
                        .and_then(Word::literal)
                        .is_some_and(|l| l.contains('=') || l.starts_with('-'))
                    {
                        idx += 1;
                    }
                }
                _ => break,
            }
        }
        let args = &words[idx + 1..];
        match self.resolve(&words[idx]) {
            Res::Vals(names) => {
                let mut seen = Vec::new();
                for (name, _) in names {
                    if !seen.contains(&name) {
                        self.dispatch(&name, args, s, path, ao);
                        seen.push(name);
                    }
                }
            }
            Res::Spread | Res::Unresolved(_) => {
                if args
                    .iter()
                    .any(|a| a.literal().is_some_and(|l| is_action_word(&l)))
                {
                    let reason = format!(
                        "command name from a variable in `{}`; not followed",
                        self.text(&s.span)
                    );
                    self.unknown(s.span.start, UnknownKind::Unresolved, reason);
                }
            }
        }
    }

    pub(super) fn dispatch(
        &mut self,
        name: &str,
        args: &[Word],
        s: &Simple,
        path: &[Guard],
        ao: &Range<usize>,
    ) {
        let base = name.rsplit('/').next().unwrap_or(name);
        let result = match base {
            "systemctl" => self.systemctl(args),
            "deb-systemd-invoke" => self.deb_systemd_invoke(args),
            "invoke-rc.d" => self.invoke_rc_d(args),
            "service" => self.service(args),
            "eval" => self.eval_like(args, "eval"),
            "sh" | "bash" | "dash" if args.first().is_some_and(|a| a.is_keyword("-c")) => {
                self.eval_like(&args[1..], base)
            }
            _ if name.starts_with("/etc/init.d/") && !base.is_empty() => {
                self.init_script(base, args)
            }
            _ => Ok(None),
        };
        match result {
            Ok(None) => {}
            Ok(Some(found)) => self.record(name, found, s, path, ao),
            Err(why) => {
                let reason = format!("{why} in `{}`; not followed", self.text(&s.span));
                self.unknown(s.span.start, why.kind(), reason);
            }
        }
    }

    pub(super) fn record(
        &mut self,
        tool: &str,
        Found { ops, units }: Found,
        s: &Simple,
        path: &[Guard],
        ao: &Range<usize>,
    ) {
        if let Some(f) = &self.func {
            let reason = format!(
                "`{}` inside function {f}() is not followed",
                self.text(&s.span)
            );
            self.unknown(s.span.start, UnknownKind::InFunction, reason);
            return;
        }
        let mut distinct: Vec<UnitOp> = Vec::new();
        for (op, _) in &ops {
            if !distinct.contains(op) {
                distinct.push(*op);
            }
        }
        for op in &distinct {
            let mut g = path.to_vec();
            if distinct.len() > 1 {
                // The action comes from a variable with several values: each op runs under
                // the conditions that assigned it.
                let alts = ops.iter().filter(|(o, _)| o == op).map(|(_, gs)| {
                    let common = gs.iter().zip(path).take_while(|(a, b)| a == b).count();
                    Guard::all(gs[common..].iter().cloned())
                });
                g.push(Guard::any(alts));
            }
            let site = Site {
                op: *op,
                units: units.clone(),
                tool: tool.to_string(),
                lines: (self.line(s.span.start), self.line(s.span.end.max(1) - 1)),
                span: ao.clone(),
                guard: Guard::all(g),
            };
            self.out.sites.push(site);
        }
    }

    /// Resolves unit-name words; `Err` when a name cannot be known.
    pub(super) fn units(&self, words: &[Word]) -> Result<Vec<String>, NotFollowed> {
        let mut out = Vec::new();
        for w in words {
            match self.resolve(w) {
                Res::Vals(vs) => {
                    for (v, _) in vs {
                        for u in v.split_whitespace() {
                            if u.contains(['*', '?', '[']) {
                                return Err(NotFollowed::UnitPattern(u.to_string()));
                            }
                            let u = normalise_unit(u);
                            if !out.contains(&u) {
                                out.push(u);
                            }
                        }
                    }
                }
                Res::Spread => return Err(NotFollowed::UnitsFromArgs),
                Res::Unresolved(why) => return Err(NotFollowed::UnitFrom(why)),
            }
        }
        Ok(out)
    }

    /// The op(s) an action word stands for (several when it is a variable).
    pub(super) fn ops(
        &self,
        w: &Word,
        map: impl Fn(&str) -> Option<UnitOp>,
    ) -> Result<Vec<(UnitOp, Vec<Guard>)>, NotFollowed> {
        match self.resolve(w) {
            Res::Vals(vs) => Ok(vs
                .into_iter()
                .filter_map(|(v, g)| map(v.trim()).map(|op| (op, g)))
                .collect()),
            Res::Spread => Err(NotFollowed::ActionFromArgs),
            Res::Unresolved(why) => Err(NotFollowed::ActionFrom(why)),
        }
    }

    pub(super) fn finish(
        &self,
        ops: Vec<(UnitOp, Vec<Guard>)>,
        unit_words: &[Word],
    ) -> Result<Option<Found>, NotFollowed> {
        if ops.is_empty() {
            return Ok(None);
        }
        let units = self.units(unit_words)?;
        Ok((!units.is_empty()).then_some(Found { ops, units }))
    }
}
