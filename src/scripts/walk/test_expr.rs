//! Conditions: the exit status of a condition list as a [`Guard`]. `[`/`test` expressions on
//! `$1` (`=`, `!=`, `-z`, `-n`, `!`, `-a`, `-o`, parentheses) become guards over `$1`;
//! `true`/`:`/`false` are constants; unary file tests on a literal absolute path (`-e -f -d -L
//! -h -s -x`) are [`Guard::File`], facts of the node, except `/run/systemd/system`, which stays
//! "this is a systemd host" (Maybe: an offline `--root` has no `/run`); anything else is
//! [`Guard::Other`] with its text.

use super::guard::{FileOp, FileTest};
use super::{Guard, Walker};
use crate::scripts::glob;
use crate::scripts::lex::{Part, Word};
use crate::scripts::parse::{AndOr, Command, Conn, Pipeline, Simple};

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
                    suf.push_str(text);
                } else {
                    pre.push_str(text);
                }
            }
            _ => return None,
        }
    }
    seen.then_some((pre, suf))
}

/// `-x "/etc/init.d/containerd"`: a file test on a literal absolute path without glob
/// characters; None for anything else and for `/run/systemd/system`.
fn file_test(flag: Option<&str>, w: &Word, text: String) -> Option<FileTest> {
    let op = FileOp::from_flag(flag?)?;
    let path = w.literal()?;
    let unquoted_glob = w
        .parts
        .iter()
        .any(|p| matches!(p, Part::Lit { text, quoted: false } if text.contains(['*', '?', '['])));
    if !path.starts_with('/')
        || unquoted_glob
        || path.trim_end_matches('/') == "/run/systemd/system"
    {
        return None;
    }
    Some(FileTest { op, path, text })
}

impl Walker<'_> {
    pub(super) fn cond_list(&self, list: &[AndOr]) -> Guard {
        // The status of a list is the status of its last and-or list.
        list.last().map_or(Guard::Always, |ao| self.cond_and_or(ao))
    }

    pub(super) fn cond_and_or(&self, ao: &AndOr) -> Guard {
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

    pub(super) fn cond_pipeline(&self, p: &Pipeline) -> Guard {
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

    pub(super) fn cond_command(&self, c: &Command) -> Guard {
        match c {
            Command::Simple(s) => self.cond_simple(s),
            Command::Group { body, .. } => self.cond_list(body),
            c => Guard::Other(self.text(&c.span())),
        }
    }

    pub(super) fn cond_simple(&self, s: &Simple) -> Guard {
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
        match g {
            // A lone file test reads as the script wrote it: `[ -x "/etc/init.d/x" ]`.
            Guard::File(mut t) => {
                t.text = self.text(&s.span);
                Guard::File(t)
            }
            g if g.mentions_arg() || g == Guard::never() || !g.file_tests().is_empty() => g,
            _ => other(),
        }
    }

    pub(super) fn test_expr(&self, args: &[Word]) -> Guard {
        let mut i = 0;
        let g = self.t_or(args, &mut i);
        if i == args.len() {
            g
        } else {
            Guard::Other(String::from("[ ... ]"))
        }
    }

    pub(super) fn t_or(&self, a: &[Word], i: &mut usize) -> Guard {
        let mut gs = vec![self.t_and(a, i)];
        while *i < a.len() && a[*i].is_keyword("-o") {
            *i += 1;
            gs.push(self.t_and(a, i));
        }
        Guard::any(gs)
    }

    pub(super) fn t_and(&self, a: &[Word], i: &mut usize) -> Guard {
        let mut gs = vec![self.t_not(a, i)];
        while *i < a.len() && a[*i].is_keyword("-a") {
            *i += 1;
            gs.push(self.t_not(a, i));
        }
        Guard::all(gs)
    }

    pub(super) fn t_not(&self, a: &[Word], i: &mut usize) -> Guard {
        if *i + 1 < a.len() && a[*i].is_keyword("!") {
            *i += 1;
            return Guard::negate(self.t_not(a, i));
        }
        self.t_primary(a, i)
    }

    pub(super) fn t_primary(&self, a: &[Word], i: &mut usize) -> Guard {
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
            if let Some(t) = file_test(first.as_deref(), &a[start + 1], span_text(start + 2)) {
                return Guard::File(Box::new(t));
            }
            return Guard::Other(span_text(start + 2));
        }
        *i += 1;
        Guard::Other(span_text(start + 1))
    }

    /// `"x$1" = "xremove"` → `$1 = remove`; None if neither side is on `$1` against a literal.
    pub(super) fn compare(&self, a: &Word, b: &Word) -> Option<Guard> {
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
}

#[cfg(test)]
mod tests {
    use super::super::analyse;
    use super::*;

    fn arg(s: &str) -> Guard {
        Guard::ArgIs(s.into())
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
}
