//! The small subset of Python regular expressions that unattended-upgrades' Package-Blacklist
//! entries use in practice (`re.match`: anchored at the start, not the end). Literals, `.`,
//! `\`-escapes, `[...]` classes, `* + ?`, `^`, `$`. Anything else (groups, alternation,
//! counted repetition) gives `None`: "cannot tell", reported as such.

#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    Any,
    Class { neg: bool, items: Vec<(char, char)> },
    End,
}

#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

fn parse(re: &str) -> Option<Vec<Piece>> {
    let chars: Vec<char> = re.chars().collect();
    let mut out: Vec<Piece> = Vec::new();
    let mut i = 0;
    if chars.first() == Some(&'^') {
        i = 1;
    }
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let atom = match c {
            '.' => Atom::Any,
            '$' => Atom::End,
            '\\' => {
                let e = *chars.get(i)?;
                i += 1;
                match e {
                    'd' => Atom::Class {
                        neg: false,
                        items: vec![('0', '9')],
                    },
                    'w' => Atom::Class {
                        neg: false,
                        items: vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')],
                    },
                    e if e.is_ascii_alphanumeric() => return None,
                    e => Atom::Char(e),
                }
            }
            '[' => {
                let mut neg = false;
                if chars.get(i) == Some(&'^') {
                    neg = true;
                    i += 1;
                }
                let mut items = Vec::new();
                let mut first = true;
                loop {
                    let c = *chars.get(i)?;
                    i += 1;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let c = if c == '\\' {
                        let e = *chars.get(i)?;
                        i += 1;
                        e
                    } else {
                        c
                    };
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
                        items.push((c, chars[i + 1]));
                        i += 2;
                    } else {
                        items.push((c, c));
                    }
                }
                Atom::Class { neg, items }
            }
            '*' | '+' | '?' => {
                let last = out.last_mut()?;
                if last.min != 1 || last.max != 1 {
                    return None;
                }
                (last.min, last.max) = match c {
                    '*' => (0, usize::MAX),
                    '+' => (1, usize::MAX),
                    _ => (0, 1),
                };
                // A lazy `*?`/`+?` matches the same prefixes for our purpose (a match exists).
                if chars.get(i) == Some(&'?') {
                    i += 1;
                }
                continue;
            }
            '(' | ')' | '|' | '{' | '}' | '^' => return None,
            c => Atom::Char(c),
        };
        out.push(Piece {
            atom,
            min: 1,
            max: 1,
        });
    }
    Some(out)
}

fn atom_matches(atom: &Atom, c: char) -> bool {
    match atom {
        Atom::Char(a) => *a == c,
        Atom::Any => c != '\n',
        Atom::Class { neg, items } => items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg,
        Atom::End => false,
    }
}

/// Longer patterns are not evaluated ("cannot tell"): the matcher recurses once per piece.
const MAX_PIECES: usize = 256;

/// Backtracking, but each (piece, position) is tried at most once: a pattern like `.*.*.*…x`
/// would otherwise take exponential time, and `audit` must answer.
fn matches_at(
    pieces: &[Piece],
    s: &[char],
    at: (usize, usize),
    failed: &mut std::collections::HashSet<(usize, usize)>,
) -> bool {
    let (pi, si) = at;
    let Some(p) = pieces.get(pi) else {
        return true;
    };
    if failed.contains(&at) {
        return false;
    }
    let rest = &s[si..];
    let ok = if let Atom::End = p.atom {
        rest.is_empty() && matches_at(pieces, s, (pi + 1, si), failed)
    } else {
        let mut n = 0;
        while n < p.max && n < rest.len() && atom_matches(&p.atom, rest[n]) {
            n += 1;
        }
        n >= p.min
            && (p.min..=n)
                .rev()
                .any(|k| matches_at(pieces, s, (pi + 1, si + k), failed))
    };
    if !ok {
        failed.insert(at);
    }
    ok
}

/// `re.match(pattern, name)`: Some(true/false), or None when the pattern is beyond this subset.
pub(crate) fn prefix_match(pattern: &str, name: &str) -> Option<bool> {
    let pieces = parse(pattern).filter(|p| p.len() <= MAX_PIECES)?;
    let s: Vec<char> = name.chars().collect();
    Some(matches_at(
        &pieces,
        &s,
        (0, 0),
        &mut std::collections::HashSet::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::prefix_match;

    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("docker", "docker.io", Some(true)),
            ("docker", "containerd", Some(false)),
            ("docker.io", "docker.io", Some(true)),
            ("docker\\.io$", "docker.io", Some(true)),
            ("docker\\.io$", "docker.iox", Some(false)),
            ("^containerd", "containerd.io", Some(true)),
            ("contain.*", "containerd", Some(true)),
            ("libc6$", "libc6-dev", Some(false)),
            ("[dc]o", "docker-ce", Some(true)),
            ("[^d]ocker", "docker", Some(false)),
            ("runc?", "run", Some(true)),
            ("x+", "docker", Some(false)),
            ("(docker|containerd)", "docker", None),
            ("a{2}", "aa", None),
            ("io", "docker.io", Some(false)),
            ("", "anything", Some(true)),
        ];
        for (re, name, want) in cases {
            assert_eq!(prefix_match(re, name), *want, "{re} vs {name}");
        }
    }

    /// Many stars that cannot match exploded the backtracking (C(n+k, k) paths); an entry in
    /// apt's config must not hang `audit` (run by monitoring) or blow its stack.
    #[test]
    fn pathological_patterns_answer_at_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let stars = format!("{}x", ".*".repeat(30));
            let starred = format!("{}$", "a*".repeat(30));
            let _ = tx.send((
                prefix_match(&stars, "containerd-shim-runc-v2-plugin"),
                prefix_match(&starred, &"a".repeat(40)),
                prefix_match(&"a".repeat(100_000), "a"),
            ));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("prefix_match did not answer within 10 s");
        assert_eq!(got, (Some(false), Some(true), None));
    }
}
