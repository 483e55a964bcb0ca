//! sh pattern matching (`case` patterns): `*`, `?`, `[...]`, and `\x` for a literal x.
//! [`crate::scripts::classify::Guard::ArgIs`] holds such a pattern; quoted text is escaped.

/// Escapes the pattern characters of a quoted (literal) string.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn matches(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    match_at(&p, &t)
}

fn match_at(p: &[char], t: &[char]) -> bool {
    let Some(&c) = p.first() else {
        return t.is_empty();
    };
    match c {
        '*' => (0..=t.len()).any(|i| match_at(&p[1..], &t[i..])),
        '?' => !t.is_empty() && match_at(&p[1..], &t[1..]),
        '[' => match class(&p[1..]) {
            Some((set, neg, used)) => match t.first() {
                Some(&ch) if set(ch) != neg => match_at(&p[1 + used..], &t[1..]),
                _ => false,
            },
            // An unclosed `[` is a literal.
            None => t.first() == Some(&'[') && match_at(&p[1..], &t[1..]),
        },
        '\\' if p.len() > 1 => t.first() == Some(&p[1]) && match_at(&p[2..], &t[1..]),
        c => t.first() == Some(&c) && match_at(&p[1..], &t[1..]),
    }
}

type Set = Box<dyn Fn(char) -> bool>;

/// A bracket expression after its `[`: the set, whether negated, and chars used incl. `]`.
fn class(p: &[char]) -> Option<(Set, bool, usize)> {
    let mut i = 0;
    let neg = matches!(p.first(), Some('!' | '^'));
    if neg {
        i += 1;
    }
    let mut ranges: Vec<(char, char)> = Vec::new();
    let first = i;
    while i < p.len() {
        if p[i] == ']' && i > first {
            return Some((
                Box::new(move |ch| ranges.iter().any(|&(a, b)| a <= ch && ch <= b)),
                neg,
                i + 1,
            ));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            ranges.push((p[i], p[i + 2]));
            i += 3;
        } else {
            ranges.push((p[i], p[i]));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("abort-*", "abort-upgrade"));
        assert!(!matches("abort-*", "upgrade"));
        assert!(matches("*", ""));
        assert!(matches("?pgrade", "upgrade"));
        assert!(matches("[fu]*", "upgrade"));
        assert!(!matches("[!u]*", "upgrade"));
        assert!(matches(&escape("a*"), "a*"));
        assert!(!matches(&escape("a*"), "ab"));
        assert!(matches("remove", "remove"));
    }
}
