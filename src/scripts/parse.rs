//! A recursive-descent parser for the POSIX-sh grammar subset maintainer scripts use: lists,
//! and-or lists, pipelines, simple commands, `if`, `case`, `while`/`until`, `for`, `{ }`, `( )`
//! and function definitions. Every node keeps its byte span so that a repair can edit the
//! original text in place.

use std::ops::Range;

use super::lex::{self, is_name, Part, Tok, TokKind, Word};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    And,
    Or,
}

#[derive(Debug, Clone)]
pub struct AndOr {
    pub span: Range<usize>,
    pub first: Pipeline,
    pub rest: Vec<(Conn, Pipeline)>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub span: Range<usize>,
    pub bang: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Simple {
    pub span: Range<usize>,
    pub assigns: Vec<(String, Word)>,
    pub words: Vec<Word>,
}

#[derive(Debug, Clone)]
pub struct IfCmd {
    pub span: Range<usize>,
    /// `if`/`elif` conditions with their bodies.
    pub clauses: Vec<(Vec<AndOr>, Vec<AndOr>)>,
    pub else_body: Option<Vec<AndOr>>,
}

#[derive(Debug, Clone)]
pub struct CaseArm {
    pub patterns: Vec<Word>,
    pub body: Vec<AndOr>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Simple(Simple),
    If(IfCmd),
    Case {
        span: Range<usize>,
        word: Word,
        arms: Vec<CaseArm>,
    },
    Loop {
        span: Range<usize>,
        cond: Vec<AndOr>,
        body: Vec<AndOr>,
    },
    For {
        span: Range<usize>,
        var: String,
        words: Option<Vec<Word>>,
        body: Vec<AndOr>,
    },
    Group {
        span: Range<usize>,
        body: Vec<AndOr>,
    },
    Func {
        span: Range<usize>,
        name: String,
        body: Box<Command>,
    },
}

impl Command {
    pub fn span(&self) -> Range<usize> {
        match self {
            Command::Simple(s) => s.span.clone(),
            Command::If(i) => i.span.clone(),
            Command::Case { span, .. }
            | Command::Loop { span, .. }
            | Command::For { span, .. }
            | Command::Group { span, .. }
            | Command::Func { span, .. } => span.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub msg: String,
}

const TERMINATORS: &[&str] = &["then", "else", "elif", "fi", "do", "done", "esac", "}"];

pub fn parse(src: &str) -> Result<Vec<AndOr>, ParseError> {
    let toks = lex::lex(src).map_err(|e| ParseError {
        pos: e.pos,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        pos: 0,
        last_end: 0,
        depth: 0,
    };
    let list = p.list()?;
    match &p.peek().kind {
        TokKind::Eof => Ok(list),
        _ => p.err("unexpected token (unbalanced if/case/loop?)"),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    last_end: usize,
    /// Nesting of compound commands; bounded so that a hostile script cannot overflow the stack.
    depth: usize,
}

/// Far beyond any real maintainer script.
const MAX_DEPTH: usize = 100;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if !matches!(t.kind, TokKind::Eof) {
            self.pos += 1;
            self.last_end = t.span.end;
        }
        t
    }

    fn err<T>(&self, msg: &str) -> Result<T, ParseError> {
        let t = self.peek();
        let what = match &t.kind {
            TokKind::Word(_) | TokKind::Op(_) | TokKind::Redir(_) => "",
            TokKind::Newline => " (at end of line)",
            TokKind::Eof => " (at end of script)",
        };
        Err(ParseError {
            pos: t.span.start,
            msg: format!("{msg}{what}"),
        })
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek().kind, TokKind::Op(o) if o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().kind, TokKind::Word(w) if w.is_keyword(kw))
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.is_kw(kw) {
            self.bump();
            Ok(())
        } else {
            self.err(&format!("expected `{kw}`"))
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.is_op(op) {
            self.bump();
            Ok(())
        } else {
            self.err(&format!("expected `{op}`"))
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek().kind, TokKind::Newline) {
            self.bump();
        }
    }

    fn at_list_end(&self) -> bool {
        match &self.peek().kind {
            TokKind::Eof => true,
            TokKind::Op(o) => matches!(*o, ")" | ";;"),
            TokKind::Word(w) => TERMINATORS.iter().any(|k| w.is_keyword(k)),
            _ => false,
        }
    }

    fn list(&mut self) -> Result<Vec<AndOr>, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if self.at_list_end() {
                return Ok(items);
            }
            items.push(self.and_or()?);
            match self.peek().kind {
                TokKind::Op(";" | "&") => {
                    self.bump();
                }
                TokKind::Newline => {}
                _ if self.at_list_end() => return Ok(items),
                _ => return self.err("unexpected token after command"),
            }
        }
    }

    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let start = self.peek().span.start;
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = if self.is_op("&&") {
                Conn::And
            } else if self.is_op("||") {
                Conn::Or
            } else {
                break;
            };
            self.bump();
            self.skip_newlines();
            rest.push((conn, self.pipeline()?));
        }
        Ok(AndOr {
            span: start..self.last_end,
            first,
            rest,
        })
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let start = self.peek().span.start;
        let bang = self.is_kw("!");
        if bang {
            self.bump();
        }
        let mut cmds = vec![self.command()?];
        while self.is_op("|") {
            self.bump();
            self.skip_newlines();
            cmds.push(self.command()?);
        }
        Ok(Pipeline {
            span: start..self.last_end,
            bang,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        if self.depth >= MAX_DEPTH {
            return self.err("commands nested too deeply");
        }
        self.depth += 1;
        let r = self.command_inner();
        self.depth -= 1;
        r
    }

    fn command_inner(&mut self) -> Result<Command, ParseError> {
        let start = self.peek().span.start;
        let cmd = if self.is_kw("if") {
            self.if_cmd(start)?
        } else if self.is_kw("case") {
            self.case_cmd(start)?
        } else if self.is_kw("while") || self.is_kw("until") {
            self.bump();
            let cond = self.list()?;
            self.expect_kw("do")?;
            let body = self.list()?;
            self.expect_kw("done")?;
            Command::Loop {
                span: start..self.last_end,
                cond,
                body,
            }
        } else if self.is_kw("for") {
            self.for_cmd(start)?
        } else if self.is_kw("{") {
            self.bump();
            let body = self.list()?;
            self.expect_kw("}")?;
            Command::Group {
                span: start..self.last_end,
                body,
            }
        } else if self.is_op("(") {
            self.bump();
            let body = self.list()?;
            self.expect_op(")")?;
            Command::Group {
                span: start..self.last_end,
                body,
            }
        } else if let Some(name) = self.func_name() {
            self.skip_newlines();
            let body = Box::new(self.command()?);
            return Ok(Command::Func {
                span: start..self.last_end,
                name,
                body,
            });
        } else {
            return self.simple();
        };
        // Redirections of a compound command (`fi >/dev/null`).
        while matches!(self.peek().kind, TokKind::Redir(_)) {
            self.bump();
            self.redir_target()?;
        }
        Ok(cmd)
    }

    /// `name()` or bash's `function name [()]`; consumes the header when it is one.
    fn func_name(&mut self) -> Option<String> {
        let TokKind::Word(w) = &self.peek().kind else {
            return None;
        };
        if w.is_keyword("function") {
            if let TokKind::Word(n) = &self.peek_at(1).kind {
                let name = n.literal()?;
                self.bump();
                self.bump();
                if self.is_op("(") && matches!(self.peek_at(1).kind, TokKind::Op(")")) {
                    self.bump();
                    self.bump();
                }
                return Some(name);
            }
            return None;
        }
        let name = w.literal()?;
        let is_def = matches!(self.peek_at(1).kind, TokKind::Op("("))
            && matches!(self.peek_at(2).kind, TokKind::Op(")"));
        if !is_def {
            return None;
        }
        self.bump();
        self.bump();
        self.bump();
        Some(name)
    }

    fn redir_target(&mut self) -> Result<(), ParseError> {
        match self.peek().kind {
            TokKind::Word(_) => {
                self.bump();
                Ok(())
            }
            _ => self.err("expected a file name after a redirection"),
        }
    }

    fn simple(&mut self) -> Result<Command, ParseError> {
        let start = self.peek().span.start;
        let mut assigns = Vec::new();
        let mut words = Vec::new();
        let mut any = false;
        loop {
            match &self.peek().kind {
                TokKind::Word(w) => {
                    let w = w.clone();
                    self.bump();
                    any = true;
                    match (words.is_empty(), split_assignment(&w)) {
                        (true, Some(a)) => assigns.push(a),
                        _ => words.push(w),
                    }
                }
                TokKind::Redir(_) => {
                    self.bump();
                    self.redir_target()?;
                    any = true;
                }
                _ => break,
            }
        }
        if !any {
            return self.err("expected a command");
        }
        Ok(Command::Simple(Simple {
            span: start..self.last_end,
            assigns,
            words,
        }))
    }

    fn if_cmd(&mut self, start: usize) -> Result<Command, ParseError> {
        self.bump();
        let mut clauses = Vec::new();
        let mut else_body = None;
        loop {
            let cond = self.list()?;
            self.expect_kw("then")?;
            let body = self.list()?;
            clauses.push((cond, body));
            if self.is_kw("elif") {
                self.bump();
                continue;
            }
            if self.is_kw("else") {
                self.bump();
                else_body = Some(self.list()?);
            }
            self.expect_kw("fi")?;
            break;
        }
        Ok(Command::If(IfCmd {
            span: start..self.last_end,
            clauses,
            else_body,
        }))
    }

    fn case_cmd(&mut self, start: usize) -> Result<Command, ParseError> {
        self.bump();
        let TokKind::Word(word) = self.peek().kind.clone() else {
            return self.err("expected a word after `case`");
        };
        self.bump();
        self.skip_newlines();
        self.expect_kw("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.is_kw("esac") {
                self.bump();
                break;
            }
            if self.is_op("(") {
                self.bump();
            }
            let mut patterns = Vec::new();
            loop {
                let TokKind::Word(w) = self.peek().kind.clone() else {
                    return self.err("expected a case pattern");
                };
                self.bump();
                patterns.push(w);
                if self.is_op("|") {
                    self.bump();
                } else {
                    break;
                }
            }
            self.expect_op(")")?;
            let body = self.list()?;
            arms.push(CaseArm { patterns, body });
            if self.is_op(";;") {
                self.bump();
            } else if !self.is_kw("esac") {
                return self.err("expected `;;` or `esac`");
            }
        }
        Ok(Command::Case {
            span: start..self.last_end,
            word,
            arms,
        })
    }

    fn for_cmd(&mut self, start: usize) -> Result<Command, ParseError> {
        self.bump();
        let var = match &self.peek().kind {
            TokKind::Word(w) => w.literal().filter(|n| is_name(n)),
            _ => None,
        };
        let Some(var) = var else {
            return self.err("expected a variable name after `for`");
        };
        self.bump();
        self.skip_newlines();
        let mut words = None;
        if self.is_kw("in") {
            self.bump();
            let mut ws = Vec::new();
            while let TokKind::Word(w) = &self.peek().kind {
                ws.push(w.clone());
                self.bump();
            }
            words = Some(ws);
        }
        if self.is_op(";") || matches!(self.peek().kind, TokKind::Newline) {
            self.bump();
        }
        self.skip_newlines();
        self.expect_kw("do")?;
        let body = self.list()?;
        self.expect_kw("done")?;
        Ok(Command::For {
            span: start..self.last_end,
            var,
            words,
            body,
        })
    }
}

/// `NAME=value` in prefix position: the name and the value as a word.
fn split_assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit {
        text,
        quoted: false,
    }) = w.parts.first()
    else {
        return None;
    };
    let eq = text.find('=')?;
    let name = &text[..eq];
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::new();
    let rest = &text[eq + 1..];
    if !rest.is_empty() {
        parts.push(Part::Lit {
            text: rest.to_string(),
            quoted: false,
        });
    }
    parts.extend(w.parts[1..].iter().cloned());
    Some((
        name.to_string(),
        Word {
            span: w.span.clone(),
            parts,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debhelper_shapes() {
        let src = "#!/bin/sh\nset -e\ncase \"$1\" in\n\tremove)\n\t\tif \\\n\t\t\t[ -d /x ] \\\n\t\t; then\n\t\t\t:\n\t\tfi\n\t\t;;\n\t*)\n\t\t;;\nesac\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'a.service' >/dev/null || true\nfi\n";
        let l = parse(src).unwrap();
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn unbalanced_is_an_error() {
        assert!(parse("if true; then\n echo\n").is_err());
        assert!(parse("fi\n").is_err());
        assert!(parse("case x in a) echo\n").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "{ ".repeat(100_000) + &"; }".repeat(100_000);
        assert!(parse(&src).is_err());
        let src = "if true; then ".repeat(50) + &"fi; ".repeat(50);
        assert!(parse(&src).is_ok());
    }

    #[test]
    fn function_definitions() {
        let l = parse("f() {\n systemctl stop x\n}\nf\nfunction g { :; }\n").unwrap();
        assert!(matches!(l[0].first.cmds[0], Command::Func { .. }));
        assert!(matches!(l[2].first.cmds[0], Command::Func { .. }));
    }
}
