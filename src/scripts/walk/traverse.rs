//! The script's control flow: lists, `&&`/`||`, pipelines, `if`, `case`, loops, function
//! definitions, and the `exit`s decided by `$1` that guard what follows them.

use std::ops::Range;

use super::values::{merge, Res, Val};
use super::{Guard, Walker};
use crate::scripts::glob;
use crate::scripts::lex::{Part, Word};
use crate::scripts::parse::{self, AndOr, Command, Conn, IfCmd, Pipeline};

/// A case pattern word as a glob string (quoted parts escaped); None if it has expansions.
fn pattern_of(w: &Word) -> Option<String> {
    let mut s = String::new();
    for p in &w.parts {
        match p {
            Part::Lit { text, quoted: true } => s.push_str(&glob::escape(text)),
            Part::Lit {
                text,
                quoted: false,
            } => s.push_str(text),
            _ => return None,
        }
    }
    Some(s)
}

impl Walker<'_> {
    pub(super) fn list(&mut self, list: &[AndOr], path: &[Guard]) {
        let mut path = path.to_vec();
        for ao in list {
            self.and_or(ao, &path);
            // `case "$1" in upgrade) exit 0 ;; esac`: what follows does not run on upgrade.
            // Only exits decided by `$1` are worth a condition; others would add noise.
            if let Some(g) = self.exit_guard(ao) {
                if g.mentions_arg() {
                    path.push(Guard::negate(g));
                }
            }
        }
    }

    /// The condition (relative to the and-or list's own path) under which running `ao`
    /// certainly ends the script with `exit`; None if it never does.
    pub(super) fn exit_guard(&self, ao: &AndOr) -> Option<Guard> {
        if !ao.rest.is_empty() || ao.first.bang || ao.first.cmds.len() != 1 {
            return None;
        }
        match &ao.first.cmds[0] {
            Command::Simple(s) => s
                .words
                .first()
                .is_some_and(|w| w.is_keyword("exit"))
                .then_some(Guard::Always),
            Command::If(i) => {
                let mut alts = Vec::new();
                let mut negs = Vec::new();
                for (cond, body) in &i.clauses {
                    let c = self.cond_list(cond);
                    if let Some(g) = self.list_exit(body) {
                        alts.push(Guard::all(negs.iter().cloned().chain([c.clone(), g])));
                    }
                    negs.push(Guard::negate(c));
                }
                if let Some(g) = i.else_body.as_deref().and_then(|e| self.list_exit(e)) {
                    alts.push(Guard::all(negs.into_iter().chain([g])));
                }
                (!alts.is_empty()).then(|| Guard::any(alts))
            }
            Command::Case { word, arms, .. } => {
                let on_arg = matches!(word.parts.as_slice(), [Part::Param(n)] if n == "1");
                let mut alts = Vec::new();
                let mut negs = Vec::new();
                for arm in arms {
                    let pats: Option<Vec<Guard>> = arm
                        .patterns
                        .iter()
                        .map(|pw| match pattern_of(pw) {
                            Some(p) if p == "*" => Some(Guard::Always),
                            Some(p) if on_arg => Some(Guard::ArgIs(p)),
                            _ => None,
                        })
                        .collect();
                    // A pattern we cannot read: stop here, later arms are not certain.
                    let g = Guard::any(pats?);
                    if let Some(e) = self.list_exit(&arm.body) {
                        alts.push(Guard::all(negs.iter().cloned().chain([g.clone(), e])));
                    }
                    negs.push(Guard::negate(g));
                }
                (!alts.is_empty()).then(|| Guard::any(alts))
            }
            _ => None,
        }
    }

    pub(super) fn list_exit(&self, list: &[AndOr]) -> Option<Guard> {
        let alts: Vec<Guard> = list.iter().filter_map(|ao| self.exit_guard(ao)).collect();
        (!alts.is_empty()).then(|| Guard::any(alts))
    }

    pub(super) fn and_or(&mut self, ao: &AndOr, path: &[Guard]) {
        let mut status: Option<Guard> = None;
        let elems =
            std::iter::once((None, &ao.first)).chain(ao.rest.iter().map(|(c, p)| (Some(*c), p)));
        for (conn, pipe) in elems {
            let mut p = path.to_vec();
            if let (Some(c), Some(st)) = (conn, &status) {
                p.push(match c {
                    Conn::And => st.clone(),
                    Conn::Or => Guard::negate(st.clone()),
                });
            }
            self.pipeline(pipe, &p, &ao.span, conn.is_some());
            let g = self.cond_pipeline(pipe);
            status = Some(match (conn, status) {
                (Some(Conn::And), Some(st)) => Guard::all([st, g]),
                (Some(Conn::Or), Some(st)) => Guard::any([st, g]),
                _ => g,
            });
        }
    }

    pub(super) fn pipeline(
        &mut self,
        pipe: &Pipeline,
        path: &[Guard],
        ao: &Range<usize>,
        cond: bool,
    ) {
        for cmd in &pipe.cmds {
            self.command(cmd, path, ao, cond);
        }
    }

    pub(super) fn command(&mut self, cmd: &Command, path: &[Guard], ao: &Range<usize>, cond: bool) {
        match cmd {
            Command::Simple(s) => self.simple(s, path, ao, cond),
            Command::If(i) => self.if_cmd(i, path),
            Command::Case { word, arms, .. } => self.case_cmd(word, arms, path),
            Command::Loop { cond, body, .. } => {
                let base = self.env.clone();
                self.list(cond, path);
                let mut p = path.to_vec();
                p.push(Guard::Other(format!(
                    "loop body ({})",
                    self.list_text(cond)
                )));
                self.list(body, &p);
                let after = std::mem::take(&mut self.env);
                self.env = merge(vec![base, after]);
            }
            Command::For {
                var, words, body, ..
            } => {
                let mut p = path.to_vec();
                let mut vals = Some(Vec::new());
                for w in words.iter().flatten() {
                    match (self.resolve(w), vals.as_mut()) {
                        (Res::Vals(vs), Some(acc)) => {
                            for (v, g) in vs {
                                for f in v.split_whitespace() {
                                    acc.push((f.to_string(), g.clone()));
                                }
                            }
                        }
                        _ => vals = None,
                    }
                }
                let val = match vals {
                    Some(v) if !v.is_empty() => Val::Known(v),
                    _ => {
                        p.push(Guard::Other(format!("for {var} loop body")));
                        Val::Unknown
                    }
                };
                self.env.insert(var.clone(), val);
                let base = self.env.clone();
                self.list(body, &p);
                let after = std::mem::take(&mut self.env);
                self.env = merge(vec![base, after]);
            }
            Command::Group { body, .. } => self.list(body, path),
            Command::Func { name, body, .. } => {
                // Defining a function runs nothing; its body runs wherever it is called.
                let saved_env = self.env.clone();
                let saved = self.func.replace(name.clone());
                self.command(body, path, &body.span(), false);
                self.func = saved;
                self.env = saved_env;
            }
        }
    }

    pub(super) fn if_cmd(&mut self, i: &IfCmd, path: &[Guard]) {
        let mut outcomes = Vec::new();
        let mut negs: Vec<Guard> = Vec::new();
        for (cond, body) in &i.clauses {
            let mut p = path.to_vec();
            p.extend(negs.iter().cloned());
            self.list(cond, &p);
            let c = self.cond_list(cond);
            let after_cond = self.env.clone();
            p.push(c.clone());
            self.list(body, &p);
            outcomes.push(std::mem::replace(&mut self.env, after_cond));
            negs.push(Guard::negate(c));
        }
        if let Some(e) = &i.else_body {
            let mut p = path.to_vec();
            p.extend(negs);
            self.list(e, &p);
        }
        outcomes.push(std::mem::take(&mut self.env));
        self.env = merge(outcomes);
    }

    pub(super) fn case_cmd(&mut self, word: &Word, arms: &[parse::CaseArm], path: &[Guard]) {
        let on_arg = matches!(word.parts.as_slice(), [Part::Param(n)] if n == "1");
        let word_text = self.text(&word.span);
        let base = self.env.clone();
        let mut outcomes = Vec::new();
        let mut negs: Vec<Guard> = Vec::new();
        let mut exhaustive = false;
        for arm in arms {
            let pats: Vec<Guard> = arm
                .patterns
                .iter()
                .map(|pw| match pattern_of(pw) {
                    Some(p) if p == "*" => Guard::Always,
                    Some(p) if on_arg => Guard::ArgIs(p),
                    _ => Guard::Other(format!("case {word_text} in {}", self.text(&pw.span))),
                })
                .collect();
            exhaustive |= pats.contains(&Guard::Always);
            let g = Guard::any(pats);
            let mut p = path.to_vec();
            p.extend(negs.iter().cloned());
            p.push(g.clone());
            self.env = base.clone();
            self.list(&arm.body, &p);
            outcomes.push(std::mem::take(&mut self.env));
            negs.push(Guard::negate(g));
        }
        if !exhaustive {
            outcomes.push(base);
        }
        self.env = merge(outcomes);
    }
}
