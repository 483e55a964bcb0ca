//! Escaping at the sinks. Package fields, the `arch` file, maintainer-script text, unit
//! names and error messages all come from files someone else may have written; a raw ESC or
//! BEL in them would reach apt's terminal or the journal as a control sequence. Every line the
//! tool prints or journals passes through here, so no caller has to remember it.

use std::borrow::Cow;
use std::fmt::Write as _;

fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newlines,
        // C0 controls, DEL, C1 controls (U+0080..U+009F: 8-bit CSI and friends), and the
        // bidi overrides that can make a line read differently than it is.
        c if c.is_control() => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c, keep_newlines) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Text for a terminal: control characters escaped as `\xNN`, newlines and tabs kept (for
/// multi-line output such as a diff or a report).
pub(crate) fn for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// One line: like [`for_terminal`], and a newline is escaped too (a journal `MESSAGE`, a
/// stderr line inside apt).
pub(crate) fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain", "plain", "plain"),
            ("a\tb", "a\tb", "a\tb"),
            ("a\nb", "a\nb", "a\\x0ab"),
            ("\x1b[31mred\x07", "\\x1b[31mred\\x07", "\\x1b[31mred\\x07"),
            ("\r", "\\x0d", "\\x0d"),
            ("\x7f", "\\x7f", "\\x7f"),
            ("\u{9b}2J", "\\x9b2J", "\\x9b2J"),
            ("a\u{202e}b", "a\\u{202e}b", "a\\u{202e}b"),
            ("grüße", "grüße", "grüße"),
        ];
        for (input, term, line) in cases {
            assert_eq!(for_terminal(input), *term, "for_terminal({input:?})");
            assert_eq!(one_line(input), *line, "one_line({input:?})");
        }
    }
}
