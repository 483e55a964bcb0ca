//! A small POSIX-sh tokenizer, enough for maintainer scripts: words with their quoting kept
//! apart from expansions, operators, redirections, comments, line continuations and heredoc
//! bodies (skipped, so that text in them never looks like a command).

use std::ops::Range;

/// A piece of a word after tokenizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text; `quoted` when it came from quotes or a backslash (glob characters in it are
    /// then literal).
    Lit { text: String, quoted: bool },
    /// `$name`, `${name}`, `$1`, `$@`...
    Param(String),
    /// Anything we do not evaluate: `$(...)`, `` `...` ``, `$((...))`, `${x:-y}`. Raw source text.
    Complex(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub span: Range<usize>,
    pub parts: Vec<Part>,
}

impl Word {
    /// The word's value when it has no expansions (quotes removed).
    pub fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                _ => return None,
            }
        }
        Some(s)
    }

    /// Is this the unquoted reserved word / operator-like word `kw`?
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.parts.as_slice(), [Part::Lit { text, quoted: false }] if text == kw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokKind {
    Word(Word),
    /// `&&`, `||`, `;;`, `;`, `&`, `|`, `(`, `)`.
    Op(&'static str),
    /// A redirection operator, possibly with its io number (`2>`): the target word follows.
    Redir(&'static str),
    Newline,
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub kind: TokKind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub pos: usize,
    pub msg: String,
}

const OPS: &[&str] = &[
    "<<-", "&>>", "&&", "||", ";;", "&>", ">>", ">&", ">|", "<<", "<&", "<>", "<", ">", "&", "|",
    ";", "(", ")",
];

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    toks: Vec<Tok>,
    /// Heredocs whose bodies start after the next newline: (delimiter, strip leading tabs).
    pending: Vec<(String, bool)>,
    /// The previous token was `<<`/`<<-`: the next word is a delimiter.
    want_delim: Option<bool>,
}

pub fn lex(src: &str) -> Result<Vec<Tok>, LexError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        toks: Vec::new(),
        pending: Vec::new(),
        want_delim: None,
    };
    lx.run()?;
    Ok(lx.toks)
}

fn is_break(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

impl Lexer<'_> {
    fn err<T>(&self, pos: usize, msg: &str) -> Result<T, LexError> {
        Err(LexError {
            pos,
            msg: msg.to_string(),
        })
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Blanks and line continuations between tokens.
            while let Some(c) = self.at(self.pos) {
                if c == b' ' || c == b'\t' || c == b'\r' {
                    self.pos += 1;
                } else if c == b'\\' && self.at(self.pos + 1) == Some(b'\n') {
                    self.pos += 2;
                } else {
                    break;
                }
            }
            let Some(c) = self.at(self.pos) else {
                let end = self.b.len();
                self.toks.push(Tok {
                    kind: TokKind::Eof,
                    span: end..end,
                });
                return Ok(());
            };
            if c == b'#' {
                while self.at(self.pos).is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            if c == b'\n' {
                self.toks.push(Tok {
                    kind: TokKind::Newline,
                    span: self.pos..self.pos + 1,
                });
                self.pos += 1;
                self.heredoc_bodies();
                continue;
            }
            // An io number: digits directly followed by `<` or `>`.
            let start = self.pos;
            let mut d = self.pos;
            while self.at(d).is_some_and(|c| c.is_ascii_digit()) {
                d += 1;
            }
            if d > start && matches!(self.at(d), Some(b'<' | b'>')) {
                self.pos = d;
            }
            if let Some(op) = OPS.iter().find(|op| self.src[self.pos..].starts_with(**op)) {
                self.pos += op.len();
                let span = start..self.pos;
                if op.contains('<') || op.contains('>') {
                    if *op == "<<" || *op == "<<-" {
                        self.want_delim = Some(*op == "<<-");
                    }
                    self.toks.push(Tok {
                        kind: TokKind::Redir(op),
                        span,
                    });
                } else {
                    self.toks.push(Tok {
                        kind: TokKind::Op(op),
                        span,
                    });
                }
                continue;
            }
            self.pos = start;
            let w = self.word()?;
            if let Some(strip) = self.want_delim.take() {
                let delim: String = w
                    .parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit { text, .. } => text.clone(),
                        Part::Param(n) => format!("${n}"),
                        Part::Complex(r) => r.clone(),
                    })
                    .collect();
                self.pending.push((delim, strip));
            }
            let span = w.span.clone();
            self.toks.push(Tok {
                kind: TokKind::Word(w),
                span,
            });
        }
    }

    fn heredoc_bodies(&mut self) {
        for (delim, strip) in std::mem::take(&mut self.pending) {
            loop {
                if self.pos >= self.b.len() {
                    return;
                }
                let end = self.src[self.pos..]
                    .find('\n')
                    .map_or(self.b.len(), |i| self.pos + i);
                let mut line = &self.src[self.pos..end];
                if strip {
                    line = line.trim_start_matches('\t');
                }
                self.pos = (end + 1).min(self.b.len());
                if line == delim {
                    break;
                }
            }
        }
    }

    fn next_char(&self) -> (char, usize) {
        let c = self.src[self.pos..].chars().next().unwrap_or('\0');
        (c, c.len_utf8())
    }

    fn word(&mut self) -> Result<Word, LexError> {
        let start = self.pos;
        let mut parts = Vec::new();
        while let Some(c) = self.at(self.pos) {
            if is_break(c) {
                break;
            }
            match c {
                b'\\' => {
                    if self.at(self.pos + 1) == Some(b'\n') {
                        self.pos += 2;
                    } else if self.pos + 1 < self.b.len() {
                        self.pos += 1;
                        let (ch, n) = self.next_char();
                        self.pos += n;
                        push_lit(&mut parts, &ch.to_string(), true);
                    } else {
                        self.pos += 1;
                        push_lit(&mut parts, "\\", false);
                    }
                }
                b'\'' => {
                    let Some(len) = self.src[self.pos + 1..].find('\'') else {
                        return self.err(self.pos, "unterminated single quote");
                    };
                    let text = &self.src[self.pos + 1..self.pos + 1 + len];
                    push_lit(&mut parts, text, true);
                    self.pos += len + 2;
                }
                b'"' => self.dquote(&mut parts)?,
                b'$' => self.dollar(&mut parts, false)?,
                b'`' => self.backtick(&mut parts)?,
                _ => {
                    let (ch, n) = self.next_char();
                    self.pos += n;
                    push_lit(&mut parts, &ch.to_string(), false);
                }
            }
        }
        // `""` marks a present (empty) word; beside other parts it is just noise (`"$1"`).
        if parts.len() > 1 {
            parts.retain(|p| !matches!(p, Part::Lit { text, .. } if text.is_empty()));
        }
        Ok(Word {
            span: start..self.pos,
            parts,
        })
    }

    fn dquote(&mut self, parts: &mut Vec<Part>) -> Result<(), LexError> {
        let open = self.pos;
        self.pos += 1;
        // `""` is an empty (but present) literal.
        push_lit(parts, "", true);
        loop {
            let Some(c) = self.at(self.pos) else {
                return self.err(open, "unterminated double quote");
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => match self.at(self.pos + 1) {
                    Some(b'\n') => self.pos += 2,
                    Some(e @ (b'$' | b'`' | b'"' | b'\\')) => {
                        push_lit(parts, &(e as char).to_string(), true);
                        self.pos += 2;
                    }
                    _ => {
                        push_lit(parts, "\\", true);
                        self.pos += 1;
                    }
                },
                b'$' => self.dollar(parts, true)?,
                b'`' => self.backtick(parts)?,
                _ => {
                    let (ch, n) = self.next_char();
                    self.pos += n;
                    push_lit(parts, &ch.to_string(), true);
                }
            }
        }
    }

    fn backtick(&mut self, parts: &mut Vec<Part>) -> Result<(), LexError> {
        let open = self.pos;
        let mut i = self.pos + 1;
        loop {
            match self.at(i) {
                None => return self.err(open, "unterminated backquote"),
                Some(b'\\') => i += 2,
                Some(b'`') => break,
                Some(_) => i += 1,
            }
        }
        parts.push(Part::Complex(self.src[open..=i].to_string()));
        self.pos = i + 1;
        Ok(())
    }

    fn dollar(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<(), LexError> {
        let open = self.pos;
        match self.at(self.pos + 1) {
            Some(b'(') => {
                let end = self.balanced(self.pos + 1, b'(', b')')?;
                parts.push(Part::Complex(self.src[open..end].to_string()));
                self.pos = end;
            }
            Some(b'{') => {
                let end = self.balanced(self.pos + 1, b'{', b'}')?;
                let inner = &self.src[open + 2..end - 1];
                if is_name(inner) || is_special(inner) {
                    parts.push(Part::Param(inner.to_string()));
                } else {
                    parts.push(Part::Complex(self.src[open..end].to_string()));
                }
                self.pos = end;
            }
            Some(c) if c == b'_' || c.is_ascii_alphabetic() => {
                let mut i = self.pos + 1;
                while self
                    .at(i)
                    .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
                {
                    i += 1;
                }
                parts.push(Part::Param(self.src[self.pos + 1..i].to_string()));
                self.pos = i;
            }
            Some(c) if c.is_ascii_digit() || b"@*#?-$!".contains(&c) => {
                parts.push(Part::Param((c as char).to_string()));
                self.pos += 2;
            }
            _ => {
                push_lit(parts, "$", quoted);
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// The end (exclusive) of a bracketed region starting at `i` (which holds `open`), skipping
    /// quoted text and escapes.
    fn balanced(&self, i: usize, open: u8, close: u8) -> Result<usize, LexError> {
        let mut depth = 0usize;
        let mut j = i;
        while let Some(c) = self.at(j) {
            match c {
                b'\\' => j += 1,
                b'\'' => match self.src[j + 1..].find('\'') {
                    Some(n) => j += n + 1,
                    None => return self.err(j, "unterminated single quote"),
                },
                b'"' => {
                    j += 1;
                    while let Some(d) = self.at(j) {
                        if d == b'\\' {
                            j += 1;
                        } else if d == b'"' {
                            break;
                        }
                        j += 1;
                    }
                }
                _ if c == open => depth += 1,
                _ if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(j + 1);
                    }
                }
                _ => {}
            }
            j += 1;
        }
        self.err(i, &format!("unterminated `{}`", open as char))
    }
}

fn push_lit(parts: &mut Vec<Part>, s: &str, quoted: bool) {
    if let Some(Part::Lit { text, quoted: q }) = parts.last_mut() {
        if *q == quoted {
            text.push_str(s);
            return;
        }
    }
    parts.push(Part::Lit {
        text: s.to_string(),
        quoted,
    });
}

pub fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && cs.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_special(s: &str) -> bool {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        || matches!(s, "@" | "*" | "#" | "?" | "-" | "$" | "!")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        lex(src)
            .unwrap()
            .into_iter()
            .map(|t| match t.kind {
                TokKind::Word(w) => w.literal().unwrap_or_else(|| format!("{:?}", w.parts)),
                TokKind::Op(o) | TokKind::Redir(o) => format!("<{o}>"),
                TokKind::Newline => "NL".into(),
                TokKind::Eof => "EOF".into(),
            })
            .collect()
    }

    #[test]
    fn quotes_comments_continuations() {
        assert_eq!(
            words("a 'b c' \"d\\\"e\" f\\\ng # stop x\n2>/dev/null x&&y"),
            [
                "a",
                "b c",
                "d\"e",
                "fg",
                "NL",
                "<>>",
                "/dev/null",
                "x",
                "<&&>",
                "y",
                "EOF"
            ]
        );
    }

    #[test]
    fn heredoc_body_is_skipped() {
        assert_eq!(
            words("cat <<-EOF >x\n\tsystemctl stop docker\n\tEOF\necho"),
            ["cat", "<<<->", "EOF", "<>>", "x", "NL", "echo", "EOF"]
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(lex("echo 'abc").is_err());
        assert!(lex("echo \"abc").is_err());
        assert!(lex("echo $(abc").is_err());
    }
}
