//! The syntax of config.toml: the part of TOML a flat file of settings needs, parsed strictly.
//! `key = value` lines, `#` comments, blank lines; values are `true`/`false`, decimal integers,
//! basic `"..."` (with TOML's escapes) and literal `'...'` strings, and arrays of strings (over
//! several lines, with comments and a trailing comma). Tables, dotted or quoted keys, other
//! numbers, dates and multi-line strings are errors that say so: the file has no use for them.
//! (The `toml` crate cost ~57 KiB of the binary's 2.5 MiB budget for this.)

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Bool(bool),
    Int(u64),
    Str(String),
    Strings(Vec<String>),
}

impl Value {
    /// What it is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "true or false",
            Value::Int(_) => "a number",
            Value::Str(_) => "a string",
            Value::Strings(_) => "a list",
        }
    }
}

/// One `key = value`, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub line: usize,
    pub key: String,
    pub value: Value,
}

/// A syntax error: the line and what is wrong there (one line of text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for Error {}

/// The entries of `text`, in order; a key set twice is an error.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, Error> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut out: Vec<Entry> = Vec::new();
    loop {
        p.blank()?;
        let Some(c) = p.peek() else { break };
        let line = p.line;
        if c == b'[' {
            return Err(p.err("tables ([...]) are not used in this file"));
        }
        let key = p.key()?;
        p.spaces();
        if p.peek() != Some(b'=') {
            return Err(p.err(format!("expected = after {key}")));
        }
        p.i += 1;
        p.spaces();
        let value = p.value(&key)?;
        p.spaces();
        p.comment();
        match p.peek() {
            None | Some(b'\n') => {}
            Some(b'\r') if p.s.get(p.i + 1) == Some(&b'\n') => {}
            Some(_) => return Err(p.err(format!("unexpected text after the value of {key}"))),
        }
        if out.iter().any(|e| e.key == key) {
            return Err(Error {
                line,
                msg: format!("{key} is set twice"),
            });
        }
        out.push(Entry { line, key, value });
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error {
            line: self.line,
            msg: msg.into(),
        }
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// A comment up to (not including) the end of its line.
    fn comment(&mut self) {
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                self.i += 1;
            }
        }
    }

    /// One line end (`\n` or `\r\n`), if here.
    fn newline(&mut self) -> Result<bool, Error> {
        match self.peek() {
            Some(b'\n') => {}
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => self.i += 1,
            Some(b'\r') => return Err(self.err("a carriage return without a line feed")),
            _ => return Ok(false),
        }
        self.i += 1;
        self.line += 1;
        Ok(true)
    }

    /// Spaces, comments and line ends.
    fn blank(&mut self) -> Result<(), Error> {
        loop {
            self.spaces();
            self.comment();
            if !self.newline()? {
                return Ok(());
            }
        }
    }

    fn key(&mut self) -> Result<String, Error> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a setting (name = value)"));
        }
        if matches!(self.peek(), Some(b'.' | b'"' | b'\'')) {
            return Err(self.err("dotted and quoted keys are not used in this file"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self, key: &str) -> Result<Value, Error> {
        match self.peek() {
            Some(b'"' | b'\'') => self.string().map(Value::Str),
            Some(b'[') => self.strings(key).map(Value::Strings),
            Some(b't' | b'f') => {
                let rest = &self.s[self.i..];
                let (word, v) = if rest.starts_with(b"true") {
                    ("true", true)
                } else if rest.starts_with(b"false") {
                    ("false", false)
                } else {
                    return Err(self.err(format!("{key}: expected a value")));
                };
                self.i += word.len();
                if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    return Err(self.err(format!("{key}: expected a value")));
                }
                Ok(Value::Bool(v))
            }
            Some(b'0'..=b'9') => self.int(key).map(Value::Int),
            _ => Err(self.err(format!("{key}: expected a value"))),
        }
    }

    /// A decimal integer: digits, single `_` between digits, no leading zero.
    fn int(&mut self, key: &str) -> Result<u64, Error> {
        let start = self.i;
        let mut n: u64 = 0;
        let mut prev_digit = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(c - b'0')))
                        .ok_or_else(|| self.err(format!("{key}: the number is too large")))?;
                    prev_digit = true;
                }
                b'_' if prev_digit && matches!(self.s.get(self.i + 1), Some(b'0'..=b'9')) => {
                    prev_digit = false;
                }
                _ => break,
            }
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if (digits.len() > 1 && digits[0] == b'0')
            || matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
        {
            return Err(self.err(format!(
                "{key}: expected a whole number of seconds (decimal)"
            )));
        }
        Ok(n)
    }

    /// `"basic"` or `'literal'`, on one line.
    fn string(&mut self) -> Result<String, Error> {
        let quote = self.s[self.i];
        if self.s[self.i..].starts_with(if quote == b'"' { b"\"\"\"" } else { b"'''" }) {
            return Err(self.err("multi-line strings are not used in this file"));
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                _ if c == quote => break,
                b'\n' | b'\r' => return Err(self.err("unterminated string")),
                b'\\' if quote == b'"' => self.escape(&mut out)?,
                c if (c < 0x20 && c != b'\t') || c == 0x7f => {
                    return Err(self.err("a control character in a string"));
                }
                c => out.push(c),
            }
        }
        // The input is a &str and escapes produce whole characters.
        String::from_utf8(out).map_err(|_| self.err("a string that is not UTF-8"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let Some(c) = self.peek() else {
            return Err(self.err("unterminated string"));
        };
        self.i += 1;
        let simple = match c {
            b'b' => Some(b'\x08'),
            b't' => Some(b'\t'),
            b'n' => Some(b'\n'),
            b'f' => Some(b'\x0c'),
            b'r' => Some(b'\r'),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let len = match c {
            b'u' => 4,
            b'U' => 8,
            _ => return Err(self.err("an unknown escape in a string")),
        };
        let hex = self
            .s
            .get(self.i..self.i + len)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("a bad \\u escape in a string"))?;
        self.i += len;
        let mut buf = [0u8; 4];
        out.extend_from_slice(hex.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// `[ "a", 'b', ]`, over lines, with comments.
    fn strings(&mut self, key: &str) -> Result<Vec<String>, Error> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.blank()?;
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'"' | b'\'') => out.push(self.string()?),
                None => return Err(self.err(format!("{key}: the list is not closed with ]"))),
                Some(_) => return Err(self.err(format!("{key}: expected a list of strings"))),
            }
            self.blank()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                None => return Err(self.err(format!("{key}: the list is not closed with ]"))),
                Some(_) => return Err(self.err(format!("{key}: expected , or ] in the list"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        let e = parse(text).unwrap();
        assert_eq!(e.len(), 1, "{text}");
        e.into_iter().next().unwrap().value
    }

    #[test]
    fn what_the_shipped_file_and_admins_write() {
        let shipped = include_str!("../../etc/config.toml");
        assert_eq!(parse(shipped).unwrap(), vec![], "all commented out");
        // Every commented line of the shipped file parses once uncommented.
        for l in shipped
            .lines()
            .filter(|l| l.starts_with('#') && l.contains(" = "))
        {
            let l = &l[1..];
            if l.split('=').next().unwrap().trim().contains(' ') {
                continue; // prose
            }
            parse(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
        let e = parse(
            "enabled = false # off\r\n\n  units = [\n  \"containerd.service\", # first\n  'kubelet.service',\n]\nhook_budget_secs = 1_000\n",
        )
        .unwrap();
        assert_eq!(
            e,
            vec![
                Entry {
                    line: 1,
                    key: "enabled".into(),
                    value: Value::Bool(false)
                },
                Entry {
                    line: 3,
                    key: "units".into(),
                    value: Value::Strings(vec![
                        "containerd.service".into(),
                        "kubelet.service".into()
                    ])
                },
                Entry {
                    line: 7,
                    key: "hook_budget_secs".into(),
                    value: Value::Int(1000)
                },
            ]
        );
        assert_eq!(one("a = []"), Value::Strings(vec![]));
        assert_eq!(
            one("a = \"t\\u00e9\\t\\\"x\\\\\""),
            Value::Str("té\t\"x\\".into())
        );
        assert_eq!(one("a = 'C:\\raw'"), Value::Str("C:\\raw".into()));
        assert_eq!(one("a = 0"), Value::Int(0));
        assert_eq!(one("a = \"h#sh\" # c"), Value::Str("h#sh".into()));
    }

    #[test]
    fn everything_else_is_an_error_naming_its_line() {
        for (text, line, what) in [
            ("[section]\n", 1, "tables"),
            ("\na.b = 1", 2, "dotted"),
            ("\"a\" = 1", 1, "expected a setting"),
            ("a = 1\na = 2\n", 2, "set twice"),
            ("a 1", 1, "expected ="),
            ("a = ", 1, "expected a value"),
            ("a = yes", 1, "expected a value"),
            ("a = truely", 1, "expected a value"),
            ("a = 1 2", 1, "unexpected text"),
            ("a = 1.5", 1, "whole number"),
            ("a = 0x10", 1, "whole number"),
            ("a = 012", 1, "whole number"),
            ("a = -1", 1, "expected a value"),
            ("a = 1__0", 1, "whole number"),
            ("a = 99999999999999999999", 1, "too large"),
            ("a = \"open\nb = 1", 1, "unterminated"),
            ("a = \"\"\"x\"\"\"", 1, "multi-line"),
            ("a = \"\\q\"", 1, "unknown escape"),
            ("a = \"\\uD800\"", 1, "bad \\u"),
            ("a = \"\x01\"", 1, "control character"),
            ("\n\na = [\"x\", 1]", 3, "list of strings"),
            ("a = [\"x\" \"y\"]", 1, "expected , or ]"),
            ("a = [\"x\",\n", 2, "not closed"),
            ("a = 1\rb = 2", 1, "unexpected text"),
            ("\ra = 1", 1, "carriage return"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.msg.contains(what), "{text:?}: {e}");
            assert!(!e.to_string().contains('\n'), "{text:?}: one line");
        }
    }
}
