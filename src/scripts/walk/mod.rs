//! Walks a parsed maintainer script, carrying the conditions on the current path and the
//! literal values variables may hold, and records every command that acts on a unit.
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

use std::collections::BTreeMap;
use std::ops::Range;

mod analysis;
mod guard;

pub use analysis::{Analysis, Site, UnitOp, Unknown, PARSE_FAILURE};
pub use guard::{Guard, Tri};

use super::glob;
use super::lex::{Part, Word};
use super::parse::{self, AndOr, Command, Conn, IfCmd, Pipeline, Simple};

/// What a variable may hold at a point: literal values, each with the path conditions under
/// which it was assigned; or anything.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Known(Vec<(String, Vec<Guard>)>),
    Unknown,
}

type Env = BTreeMap<String, Val>;

enum Res {
    Vals(Vec<(String, Vec<Guard>)>),
    /// `$@` / `$*`.
    Spread,
    Unresolved(String),
}

/// Words that name the tools acting on units; text mentioning them in `eval` or a command
/// substitution is something we cannot follow.
const UNIT_TOOLS: &[&str] = &[
    "systemctl",
    "deb-systemd-invoke",
    "invoke-rc.d",
    "service",
    "/etc/init.d/",
];

/// systemctl options that take their value as the next word.
const SYSTEMCTL_ARG_OPTS: &[&str] = &[
    "-H",
    "--host",
    "-M",
    "--machine",
    "-t",
    "--type",
    "-p",
    "--property",
    "-s",
    "--signal",
    "--state",
    "--kill-whom",
    "--kill-value",
    "--job-mode",
    "-n",
    "--lines",
    "-o",
    "--output",
    "--root",
    "--image",
    "--what",
    "--timestamp",
    "--reboot-argument",
    "--boot-loader-entry",
    "--boot-loader-menu",
    "--message",
    "--when",
    "--drop-in",
    "--preset-mode",
    "--image-policy",
];

const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".mount",
    ".automount",
    ".path",
    ".slice",
    ".scope",
    ".device",
    ".swap",
];

/// The cap on the number of values one word may expand to (products of variables).
const MAX_VALUES: usize = 32;

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
                reason: format!("{PARSE_FAILURE}{}", e.msg),
            });
        }
    }
    w.out
}

/// The unit a name stands for: `docker` → `docker.service`.
pub fn normalise_unit(name: &str) -> String {
    if UNIT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

fn systemctl_op(verb: &str, now: bool) -> Option<UnitOp> {
    Some(match verb {
        "stop" => UnitOp::Stop,
        "start" => UnitOp::Start,
        "restart" | "reload-or-restart" => UnitOp::Restart,
        "try-restart"
        | "condrestart"
        | "try-reload-or-restart"
        | "reload-or-try-restart"
        | "force-reload" => UnitOp::TryRestart,
        "disable" | "mask" if now => UnitOp::Stop,
        "enable" if now => UnitOp::Start,
        _ => return None,
    })
}

fn initd_op(action: &str) -> Option<UnitOp> {
    Some(match action {
        "stop" => UnitOp::Stop,
        "start" => UnitOp::Start,
        "restart" | "--full-restart" => UnitOp::Restart,
        "try-restart" | "force-reload" | "condrestart" => UnitOp::TryRestart,
        _ => return None,
    })
}

fn is_action_word(s: &str) -> bool {
    systemctl_op(s, false).is_some()
}

fn normalise_space(s: &str) -> String {
    s.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `"$1"`, `$1`, `"x$1"`: the literal text around the one `$1`.
fn arg_form(w: &Word) -> Option<(String, String)> {
    let mut pre = String::new();
    let mut suf = String::new();
    let mut seen = false;
    for p in &w.parts {
        match p {
            Part::Param(n) if n == "1" && !seen => seen = true,
            Part::Lit { text, .. } => {
                if seen {
                    suf.push_str(text)
                } else {
                    pre.push_str(text)
                }
            }
            _ => return None,
        }
    }
    seen.then_some((pre, suf))
}

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

fn merge(outcomes: Vec<Env>) -> Env {
    let mut keys: Vec<&String> = outcomes.iter().flat_map(|e| e.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Env::new();
    for k in keys {
        let mut vals: Vec<(String, Vec<Guard>)> = Vec::new();
        let mut known = true;
        for e in &outcomes {
            match e.get(k) {
                Some(Val::Known(vs)) => {
                    for v in vs {
                        if !vals.contains(v) {
                            vals.push(v.clone());
                        }
                    }
                }
                _ => known = false,
            }
        }
        out.insert(
            k.clone(),
            if known {
                Val::Known(vals)
            } else {
                Val::Unknown
            },
        );
    }
    out
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
    fn line(&self, pos: usize) -> usize {
        match self.line_starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn text(&self, span: &Range<usize>) -> String {
        normalise_space(&self.src[span.clone()])
    }

    fn unknown(&mut self, pos: usize, reason: String) {
        let line = self.line(pos);
        self.out.unknowns.push(Unknown { line, reason });
    }

    fn list(&mut self, list: &[AndOr], path: &[Guard]) {
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
    fn exit_guard(&self, ao: &AndOr) -> Option<Guard> {
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

    fn list_exit(&self, list: &[AndOr]) -> Option<Guard> {
        let alts: Vec<Guard> = list.iter().filter_map(|ao| self.exit_guard(ao)).collect();
        (!alts.is_empty()).then(|| Guard::any(alts))
    }

    fn and_or(&mut self, ao: &AndOr, path: &[Guard]) {
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

    fn pipeline(&mut self, pipe: &Pipeline, path: &[Guard], ao: &Range<usize>, cond: bool) {
        for cmd in &pipe.cmds {
            self.command(cmd, path, ao, cond);
        }
    }

    fn command(&mut self, cmd: &Command, path: &[Guard], ao: &Range<usize>, cond: bool) {
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

    fn list_text(&self, list: &[AndOr]) -> String {
        match (list.first(), list.last()) {
            (Some(a), Some(b)) => self.text(&(a.span.start..b.span.end)),
            _ => String::new(),
        }
    }

    fn if_cmd(&mut self, i: &IfCmd, path: &[Guard]) {
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

    fn case_cmd(&mut self, word: &Word, arms: &[parse::CaseArm], path: &[Guard]) {
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

    // ---- conditions -------------------------------------------------------------------

    fn cond_list(&self, list: &[AndOr]) -> Guard {
        // The status of a list is the status of its last and-or list.
        list.last().map_or(Guard::Always, |ao| self.cond_and_or(ao))
    }

    fn cond_and_or(&self, ao: &AndOr) -> Guard {
        let mut g = self.cond_pipeline(&ao.first);
        for (c, p) in &ao.rest {
            let h = self.cond_pipeline(p);
            g = match c {
                Conn::And => Guard::all([g, h]),
                Conn::Or => Guard::any([g, h]),
            };
        }
        g
    }

    fn cond_pipeline(&self, p: &Pipeline) -> Guard {
        let g = match p.cmds.as_slice() {
            [c] => self.cond_command(c),
            _ => Guard::Other(self.text(&p.span)),
        };
        if p.bang {
            Guard::negate(g)
        } else {
            g
        }
    }

    fn cond_command(&self, c: &Command) -> Guard {
        match c {
            Command::Simple(s) => self.cond_simple(s),
            Command::Group { body, .. } => self.cond_list(body),
            c => Guard::Other(self.text(&c.span())),
        }
    }

    fn cond_simple(&self, s: &Simple) -> Guard {
        let other = || Guard::Other(self.text(&s.span));
        let Some(name) = s.words.first().and_then(Word::literal) else {
            return other();
        };
        let g = match name.as_str() {
            "[" => match s.words.split_last() {
                Some((last, _)) if last.is_keyword("]") && s.words.len() >= 2 => {
                    self.test_expr(&s.words[1..s.words.len() - 1])
                }
                _ => return other(),
            },
            "test" => self.test_expr(&s.words[1..]),
            "true" | ":" => return Guard::Always,
            "false" => return Guard::never(),
            _ => return other(),
        };
        if g.mentions_arg() || g == Guard::never() {
            g
        } else {
            other()
        }
    }

    fn test_expr(&self, args: &[Word]) -> Guard {
        let mut i = 0;
        let g = self.t_or(args, &mut i);
        if i == args.len() {
            g
        } else {
            Guard::Other(String::from("[ ... ]"))
        }
    }

    fn t_or(&self, a: &[Word], i: &mut usize) -> Guard {
        let mut gs = vec![self.t_and(a, i)];
        while *i < a.len() && a[*i].is_keyword("-o") {
            *i += 1;
            gs.push(self.t_and(a, i));
        }
        Guard::any(gs)
    }

    fn t_and(&self, a: &[Word], i: &mut usize) -> Guard {
        let mut gs = vec![self.t_not(a, i)];
        while *i < a.len() && a[*i].is_keyword("-a") {
            *i += 1;
            gs.push(self.t_not(a, i));
        }
        Guard::all(gs)
    }

    fn t_not(&self, a: &[Word], i: &mut usize) -> Guard {
        if *i + 1 < a.len() && a[*i].is_keyword("!") {
            *i += 1;
            return Guard::negate(self.t_not(a, i));
        }
        self.t_primary(a, i)
    }

    fn t_primary(&self, a: &[Word], i: &mut usize) -> Guard {
        let start = *i;
        let span_text = |end: usize| self.text(&(a[start].span.start..a[end - 1].span.end));
        if start >= a.len() {
            return Guard::Other(String::from("[ ]"));
        }
        if a[start].is_keyword("(") {
            *i += 1;
            let g = self.t_or(a, i);
            if *i < a.len() && a[*i].is_keyword(")") {
                *i += 1;
            }
            return g;
        }
        let op = a.get(start + 1).and_then(Word::literal);
        if start + 2 < a.len() {
            if let Some(op) = op.as_deref() {
                if matches!(op, "=" | "==" | "!=") {
                    *i += 3;
                    let g = self.compare(&a[start], &a[start + 2]);
                    let g = g.unwrap_or_else(|| Guard::Other(span_text(start + 3)));
                    return if op == "!=" { Guard::negate(g) } else { g };
                }
                if matches!(
                    op,
                    "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" | "-nt" | "-ot" | "-ef"
                ) {
                    *i += 3;
                    return Guard::Other(span_text(start + 3));
                }
            }
        }
        let first = a[start].literal();
        if start + 1 < a.len() && first.as_deref().is_some_and(|f| f.starts_with('-')) {
            *i += 2;
            if let Some((pre, suf)) = arg_form(&a[start + 1]) {
                if pre.is_empty() && suf.is_empty() {
                    match first.as_deref() {
                        Some("-z") => return Guard::ArgIs(String::new()),
                        Some("-n") => return Guard::negate(Guard::ArgIs(String::new())),
                        _ => {}
                    }
                }
            }
            return Guard::Other(span_text(start + 2));
        }
        *i += 1;
        Guard::Other(span_text(start + 1))
    }

    /// `"x$1" = "xremove"` → `$1 = remove`; None if neither side is on `$1` against a literal.
    fn compare(&self, a: &Word, b: &Word) -> Option<Guard> {
        let (form, lit) = match (arg_form(a), b.literal(), arg_form(b), a.literal()) {
            (Some(f), Some(l), _, _) => (f, l),
            (_, _, Some(f), Some(l)) => (f, l),
            _ => return None,
        };
        let (pre, suf) = form;
        if lit.len() >= pre.len() + suf.len() && lit.starts_with(&pre) && lit.ends_with(&suf) {
            Some(Guard::ArgIs(glob::escape(
                &lit[pre.len()..lit.len() - suf.len()],
            )))
        } else {
            Some(Guard::never())
        }
    }

    // ---- values -----------------------------------------------------------------------

    fn resolve(&self, w: &Word) -> Res {
        let mut acc: Vec<(String, Vec<Guard>)> = vec![(String::new(), Vec::new())];
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => acc.iter_mut().for_each(|a| a.0.push_str(text)),
                Part::Param(n) if n == "@" || n == "*" => return Res::Spread,
                Part::Param(n) => match self.env.get(n) {
                    Some(Val::Known(vs)) => {
                        let mut next = Vec::new();
                        for (s, g) in &acc {
                            for (v, h) in vs {
                                let mut gs = g.clone();
                                gs.extend(h.iter().filter(|x| !g.contains(x)).cloned());
                                next.push((format!("{s}{v}"), gs));
                            }
                        }
                        if next.len() > MAX_VALUES {
                            return Res::Unresolved(format!("${n} (too many values)"));
                        }
                        acc = next;
                    }
                    _ => return Res::Unresolved(format!("${n}")),
                },
                Part::Complex(raw) => return Res::Unresolved(raw.clone()),
            }
        }
        Res::Vals(acc)
    }

    fn assign(&mut self, name: &str, value: &Word, path: &[Guard], conditional: bool) {
        let new = match self.resolve(value) {
            Res::Vals(vs) => Val::Known(
                vs.into_iter()
                    .map(|(v, g)| {
                        let mut gs = path.to_vec();
                        gs.extend(g.into_iter().filter(|x| !path.contains(x)));
                        (v, gs)
                    })
                    .collect(),
            ),
            _ => Val::Unknown,
        };
        let val = match (conditional, self.env.get(name)) {
            // `cond && X=y`: X may also keep its old value.
            (true, Some(old)) => {
                let mut e1 = Env::new();
                e1.insert(name.to_string(), old.clone());
                let mut e2 = Env::new();
                e2.insert(name.to_string(), new);
                merge(vec![e1, e2]).remove(name).unwrap_or(Val::Unknown)
            }
            (true, None) => Val::Unknown,
            (false, _) => new,
        };
        self.env.insert(name.to_string(), val);
    }

    // ---- commands ---------------------------------------------------------------------

    fn simple(&mut self, s: &Simple, path: &[Guard], ao: &Range<usize>, conditional: bool) {
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
                        self.unknown(s.span.start, reason);
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
                Some("exec") | Some("nohup") => idx += 1,
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
                    self.unknown(s.span.start, reason);
                }
            }
        }
    }

    fn dispatch(
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
            Ok(Some((ops, units))) => self.record(name, ops, units, s, path, ao),
            Err(why) => {
                let reason = format!("{why} in `{}`; not followed", self.text(&s.span));
                self.unknown(s.span.start, reason);
            }
        }
    }

    fn record(
        &mut self,
        tool: &str,
        ops: Vec<(UnitOp, Vec<Guard>)>,
        units: Vec<String>,
        s: &Simple,
        path: &[Guard],
        ao: &Range<usize>,
    ) {
        if let Some(f) = &self.func {
            let reason = format!(
                "`{}` inside function {f}() is not followed",
                self.text(&s.span)
            );
            self.unknown(s.span.start, reason);
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
    fn units(&self, words: &[Word]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for w in words {
            match self.resolve(w) {
                Res::Vals(vs) => {
                    for (v, _) in vs {
                        for u in v.split_whitespace() {
                            if u.contains(['*', '?', '[']) {
                                return Err(format!("unit pattern `{u}`"));
                            }
                            let u = normalise_unit(u);
                            if !out.contains(&u) {
                                out.push(u);
                            }
                        }
                    }
                }
                Res::Spread => return Err("units from `$@`".into()),
                Res::Unresolved(why) => return Err(format!("unit name from {why}")),
            }
        }
        Ok(out)
    }

    /// The op(s) an action word stands for (several when it is a variable).
    fn ops(
        &self,
        w: &Word,
        map: impl Fn(&str) -> Option<UnitOp>,
    ) -> Result<Vec<(UnitOp, Vec<Guard>)>, String> {
        match self.resolve(w) {
            Res::Vals(vs) => Ok(vs
                .into_iter()
                .filter_map(|(v, g)| map(v.trim()).map(|op| (op, g)))
                .collect()),
            Res::Spread => Err("action from `$@`".into()),
            Res::Unresolved(why) => Err(format!("action from {why}")),
        }
    }

    fn finish(
        &self,
        ops: Vec<(UnitOp, Vec<Guard>)>,
        unit_words: &[Word],
    ) -> Result<Option<Found>, String> {
        if ops.is_empty() {
            return Ok(None);
        }
        let units = self.units(unit_words)?;
        Ok((!units.is_empty()).then_some((ops, units)))
    }

    fn systemctl(&self, args: &[Word]) -> Result<Option<Found>, String> {
        let mut positional = Vec::new();
        let mut now = false;
        let mut opts_done = false;
        let mut i = 0;
        while i < args.len() {
            match args[i].literal() {
                Some(l) if !opts_done && l == "--" => opts_done = true,
                Some(l) if !opts_done && l.starts_with('-') && l.len() > 1 => {
                    if l == "--user" || l == "--global" {
                        return Ok(None);
                    }
                    now |= l == "--now";
                    if SYSTEMCTL_ARG_OPTS.contains(&l.as_str()) {
                        i += 1;
                    }
                }
                _ => positional.push(args[i].clone()),
            }
            i += 1;
        }
        let Some((verb, units)) = positional.split_first() else {
            return Ok(None);
        };
        let ops = self.ops(verb, |v| systemctl_op(v, now))?;
        self.finish(ops, units)
    }

    fn deb_systemd_invoke(&self, args: &[Word]) -> Result<Option<Found>, String> {
        let mut positional = Vec::new();
        for a in args {
            match a.literal() {
                Some(l) if l == "--user" => return Ok(None),
                Some(l) if l.starts_with('-') && positional.is_empty() => {}
                _ => positional.push(a.clone()),
            }
        }
        let Some((verb, units)) = positional.split_first() else {
            return Ok(None);
        };
        let ops = self.ops(verb, |v| systemctl_op(v, false))?;
        self.finish(ops, units)
    }

    fn invoke_rc_d(&self, args: &[Word]) -> Result<Option<Found>, String> {
        let mut positional = Vec::new();
        for a in args {
            match a.literal() {
                // See the module docs: a no-op for units with a native systemd unit.
                Some(l) if l == "--skip-systemd-native" || l == "--query" => return Ok(None),
                Some(l) if l.starts_with("--") && positional.is_empty() => {}
                _ => positional.push(a.clone()),
            }
        }
        match positional.as_slice() {
            [script, action, ..] => {
                let ops = self.ops(action, initd_op)?;
                self.finish(ops, std::slice::from_ref(script))
            }
            _ => Ok(None),
        }
    }

    fn service(&self, args: &[Word]) -> Result<Option<Found>, String> {
        match args {
            [script, action, ..] => {
                if script.literal().is_some_and(|l| l.starts_with('-')) {
                    return Ok(None);
                }
                let ops = self.ops(action, initd_op)?;
                self.finish(ops, std::slice::from_ref(script))
            }
            _ => Ok(None),
        }
    }

    fn init_script(&self, base: &str, args: &[Word]) -> Result<Option<Found>, String> {
        let Some(action) = args.first() else {
            return Ok(None);
        };
        let ops = self.ops(action, initd_op)?;
        if ops.is_empty() {
            return Ok(None);
        }
        Ok(Some((ops, vec![normalise_unit(base)])))
    }

    fn eval_like(&self, args: &[Word], what: &str) -> Result<Option<Found>, String> {
        let Some((first, last)) = args.first().zip(args.last()) else {
            return Ok(None);
        };
        let raw = &self.src[first.span.start..last.span.end];
        let has_param = args
            .iter()
            .any(|a| a.parts.iter().any(|p| matches!(p, Part::Param(_))));
        if has_param || UNIT_TOOLS.iter().any(|t| raw.contains(t)) {
            return Err(format!("`{what}` of text we cannot follow"));
        }
        Ok(None)
    }
}

type Found = (Vec<(UnitOp, Vec<Guard>)>, Vec<String>);
