//! deb822 control paragraphs (the dpkg status file, `DEBIAN/control`), wrapping `debcontrol`.
//! The only module that knows that crate.
//!
//! We split the text into paragraphs ourselves (on lines that are empty or only blanks, as
//! debcontrol does) and hand each one to debcontrol separately: that keeps line numbers, and
//! one garbled paragraph costs only itself instead of everything after it.

/// One paragraph: fields in file order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
    /// 1-based line of the paragraph's first field in its file.
    pub line: usize,
}

impl Paragraph {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Removes and returns the value of `name` (lets callers move strings out, not clone).
    pub fn take(&mut self, name: &str) -> Option<String> {
        let i = self
            .fields
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(self.fields.swap_remove(i).1)
    }
}

/// A paragraph that could not be parsed; the others are still returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Splits `text` into paragraphs and parses each; a garbled one becomes a [`Problem`].
pub fn parse_paragraphs(text: &str) -> (Vec<Paragraph>, Vec<Problem>) {
    let mut paragraphs = Vec::new();
    let mut problems = Vec::new();
    for (chunk, first_line) in chunks(text) {
        match parse_chunk(chunk, first_line) {
            Ok(Some(p)) => paragraphs.push(p),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    (paragraphs, problems)
}

/// Like [`parse_paragraphs`], keeping only the fields named in `keep`.
///
/// For big files where a few fields matter (the 2–5 MB dpkg status file, read in every apt
/// run): a cheap scan checks each line's shape and copies only the wanted fields to
/// debcontrol, so the long Description and Conffiles values are never parsed or allocated.
/// A paragraph the scan does not like goes through the full parse, which yields the same
/// [`Problem`] (or the same fields) as [`parse_paragraphs`] would.
pub fn parse_paragraphs_keeping(text: &str, keep: &[&str]) -> (Vec<Paragraph>, Vec<Problem>) {
    let mut paragraphs = Vec::new();
    let mut problems = Vec::new();
    for (chunk, first_line) in chunks(text) {
        match parse_keeping(chunk, first_line, keep) {
            Ok(Some(p)) => paragraphs.push(p),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    (paragraphs, problems)
}

/// Like [`parse_paragraphs_keeping`], for the paragraphs whose `key` field may hold one of
/// `wanted` only: a paragraph whose first `key:` line (at a line's start, any case) names
/// something else is skipped unparsed, so it yields neither fields nor a [`Problem`]. Every
/// paragraph the full parse would return with `key` in `wanted` is returned as it would be
/// (a second `key` field makes the paragraph a problem there, so the first one decides);
/// a paragraph without such a line goes through the parse and reports what is wrong with it.
///
/// For the hook, which needs the few watched packages of a status file of thousands.
pub fn parse_paragraphs_keeping_for(
    text: &str,
    keep: &[&str],
    key: &str,
    wanted: &[&str],
) -> (Vec<Paragraph>, Vec<Problem>) {
    let mut paragraphs = Vec::new();
    let mut problems = Vec::new();
    for (chunk, first_line) in chunks(text) {
        if key_value(chunk, key).is_some_and(|v| !wanted.contains(&v)) {
            continue;
        }
        match parse_keeping(chunk, first_line, keep) {
            Ok(Some(p)) => paragraphs.push(p),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    (paragraphs, problems)
}

/// The value on the first line of `chunk` that starts with `key:` (any case), trimmed of
/// whitespace as the parse trims it (and more: a value that would differ only by blanks is
/// taken as a match, and parsed). `None` also when that line holds no value (it may go on in
/// a continuation line: the parse decides).
fn key_value<'a>(chunk: &'a str, key: &str) -> Option<&'a str> {
    let value = chunk.split('\n').find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case(key).then_some(value)
    })?;
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// One paragraph through the cheap field scan, else the full parse (see
/// [`parse_paragraphs_keeping`]).
fn parse_keeping(
    chunk: &str,
    first_line: usize,
    keep: &[&str],
) -> Result<Option<Paragraph>, Problem> {
    let fast = select_fields(chunk, keep).and_then(|(selected, field_line)| {
        let line = first_line + field_line;
        match debcontrol::parse_finish(&selected) {
            Ok(Some(p)) => Some(Some(Paragraph {
                fields: p.fields.into_iter().map(owned_field).collect(),
                line,
            })),
            Ok(None) if selected.is_empty() => Some(Some(Paragraph {
                fields: vec![],
                line,
            })),
            _ => None,
        }
    });
    match fast {
        Some(p) => Ok(p),
        None => parse_chunk(chunk, first_line).map(|p| {
            p.map(|mut p| {
                p.fields
                    .retain(|(k, _)| keep.iter().any(|w| w.eq_ignore_ascii_case(k)));
                p
            })
        }),
    }
}

/// The lines of the fields in `keep` (with their continuation lines), and the 0-based line
/// of the first field; `None` when a line does not have the shape debcontrol accepts, a
/// field repeats, or there is no field at all (the full parse then decides).
fn select_fields(chunk: &str, keep: &[&str]) -> Option<(String, usize)> {
    let mut selected = String::new();
    let mut names: Vec<&str> = Vec::new();
    let mut first_field = None;
    let mut keeping = false;
    for (i, line) in chunk.split_inclusive('\n').enumerate() {
        let content = line
            .strip_suffix("\r\n")
            .or_else(|| line.strip_suffix('\n'))
            .unwrap_or(line);
        if content.contains('\r') {
            return None; // a lone CR: debcontrol's call
        }
        match line.as_bytes()[0] {
            b'#' => continue,
            b' ' | b'\t' => {
                if names.is_empty() {
                    return None;
                }
                if keeping {
                    selected.push_str(line);
                }
            }
            _ => {
                let (name, _) = line.split_once(':')?;
                let valid = !name.is_empty()
                    && !name.starts_with('-')
                    && name.bytes().all(|b| b.is_ascii_graphic());
                if !valid || names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    return None;
                }
                names.push(name);
                first_field.get_or_insert(i);
                keeping = keep.iter().any(|k| k.eq_ignore_ascii_case(name));
                if keeping {
                    selected.push_str(line);
                }
            }
        }
    }
    // Every kept line must end its own line in the copy, even the file's last one.
    if !selected.is_empty() && !selected.ends_with('\n') {
        selected.push('\n');
    }
    Some((selected, first_field?))
}

fn owned_field(f: debcontrol::Field<'_>) -> (String, String) {
    let mut value = f.value;
    let trimmed = value.trim_end().len();
    value.truncate(trimmed);
    (f.name.to_owned(), value)
}

fn is_blank(line: &str) -> bool {
    line.trim_end_matches('\r')
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
}

/// The runs of non-blank lines of `text`, each with its 1-based first line number.
fn chunks(text: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut pos = 0;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        if is_blank(line.strip_suffix('\n').unwrap_or(line)) {
            if let Some((s, l)) = start.take() {
                out.push((&text[s..pos], l));
            }
        } else if start.is_none() {
            start = Some((pos, idx + 1));
        }
        pos += line.len();
    }
    if let Some((s, l)) = start {
        out.push((&text[s..], l));
    }
    out
}

fn parse_chunk(chunk: &str, first_line: usize) -> Result<Option<Paragraph>, Problem> {
    let parsed = match debcontrol::parse_finish(chunk) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(None), // comments only
        Err(e) => return Err(syntax_problem(chunk, first_line, &e.to_string())),
    };
    // The first line that is not a comment is the first field.
    let line = first_line + chunk.lines().position(|l| !l.starts_with('#')).unwrap_or(0);
    let mut fields: Vec<(String, String)> = Vec::with_capacity(parsed.fields.len());
    for f in parsed.fields {
        if fields.iter().any(|(k, _)| k.eq_ignore_ascii_case(f.name)) {
            return Err(Problem {
                line,
                message: format!("field '{}' appears twice in one paragraph", f.name),
            });
        }
        fields.push(owned_field(f));
    }
    Ok(Some(Paragraph { fields, line }))
}

/// debcontrol's error says `<what> at '<rest of the input>'`; the rest tells us where it
/// stopped, so we can name the offending line and show it instead of nom's jargon.
fn syntax_problem(chunk: &str, first_line: usize, err: &str) -> Problem {
    let offset = err
        .split_once(" at '")
        .and_then(|(_, rest)| rest.strip_suffix('\''))
        .filter(|rest| chunk.ends_with(rest))
        .map_or(0, |rest| chunk.len() - rest.len());
    // An error at a line's end (a field name without its ':') belongs to that line.
    let at = if offset > 0 && chunk.as_bytes().get(offset) == Some(&b'\n') {
        offset
    } else {
        offset.min(chunk.len())
    };
    let line_start = chunk[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_text = chunk[line_start..].lines().next().unwrap_or("");
    let line = first_line + chunk[..line_start].matches('\n').count();
    let message = if line_start == 0 && line_text.starts_with([' ', '\t']) {
        "a continuation line (starting with a blank) has no field before it".to_owned()
    } else if !line_text.contains(':') {
        format!("expected 'Field: value', found '{}'", snippet(line_text))
    } else {
        format!("not a valid field line: '{}'", snippet(line_text))
    };
    Problem { line, message }
}

fn snippet(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &Paragraph) -> Vec<(&str, &str)> {
        p.fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_paragraphs_with_lines_and_continuations() {
        let text = "\n\nPackage: a\nStatus: install ok installed\nDescription: short\n long\n .\n more\n\n \t\nPackage: b\r\nVersion: 1\r\n\n\n";
        let (ps, problems) = parse_paragraphs(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 3);
        assert_eq!(
            fields(&ps[0]),
            [
                ("Package", "a"),
                ("Status", "install ok installed"),
                ("Description", "short\nlong\n.\nmore")
            ]
        );
        assert_eq!(ps[1].line, 11);
        assert_eq!(ps[1].get("version"), Some("1"));
        assert_eq!(ps[1].get("PACKAGE"), Some("b"));
    }

    #[test]
    fn no_trailing_newline_and_empty_input() {
        let (ps, pr) = parse_paragraphs("Package: x");
        assert_eq!((ps.len(), pr.len()), (1, 0));
        assert_eq!(parse_paragraphs(""), (vec![], vec![]));
        assert_eq!(parse_paragraphs("\n \n\t\n"), (vec![], vec![]));
    }

    #[test]
    fn garbled_paragraphs_become_problems_and_the_rest_survives() {
        let cases: &[(&str, usize, &str)] = &[
            ("Package: a\nthis is junk\n", 2, "expected 'Field: value'"),
            (" leading: continuation\n", 1, "no field before it"),
            ("Package: a\nPackage: b\n", 1, "appears twice"),
            ("Package: a\n-Bad: x\n", 2, "not a valid field line"),
            ("Package: a\nA b: x\n", 2, "not a valid field line"),
        ];
        for (bad, line, why) in cases {
            let text = format!("Package: first\n\n{bad}\nPackage: last\n");
            let (ps, problems) = parse_paragraphs(&text);
            let names: Vec<_> = ps.iter().map(|p| p.get("Package").unwrap()).collect();
            assert_eq!(names, ["first", "last"], "{bad:?}");
            assert_eq!(problems.len(), 1, "{bad:?}");
            assert_eq!(problems[0].line, line + 2, "{bad:?}: {problems:?}");
            assert!(problems[0].message.contains(why), "{bad:?}: {problems:?}");
        }
    }

    #[test]
    fn take_moves_a_value_out() {
        let (mut ps, _) = parse_paragraphs("A: 1\nB: 2\n");
        assert_eq!(ps[0].take("b").as_deref(), Some("2"));
        assert_eq!(ps[0].take("b"), None);
        assert_eq!(ps[0].get("a"), Some("1"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics_and_counts_add_up(text in "(([ABab#: -]{0,4}[A-Za-z#: -]{0,8}|[ \t]{0,2}[a-z.]{0,5}|Package: [a-z]{0,3})\r?\n?){0,12}") {
            let (ps, problems) = parse_paragraphs(&text);
            proptest::prop_assert!(ps.len() + problems.len() <= chunks(&text).len());
            for p in &ps {
                proptest::prop_assert!(p.line >= 1 && p.line <= text.lines().count());
            }
            // The fast path gives exactly what the full parse gives, minus the other fields.
            let keep = ["A", "b", "Package"];
            let (fast, fast_problems) = parse_paragraphs_keeping(&text, &keep);
            let filtered: Vec<Paragraph> = ps
                .into_iter()
                .map(|mut p| {
                    p.fields.retain(|(k, _)| keep.iter().any(|w| w.eq_ignore_ascii_case(k)));
                    p
                })
                .collect();
            proptest::prop_assert_eq!(fast, filtered);
            proptest::prop_assert_eq!(fast_problems, problems);
        }

        #[test]
        fn keeping_for_returns_every_wanted_paragraph_as_the_full_parse_does(
            text in "(((Package|PACKAGE|package|Pack|#Package| Package)[ ]?:[ \t]?(a|b|ab|c|)[ \t]?\r?|[ \t](a|b|x)|Status: x|A: 1|junk|)\n{0,2}){0,14}",
        ) {
            let keep = ["Package", "A"];
            let wanted = ["a", "b"];
            let (full, full_problems) = parse_paragraphs_keeping(&text, &keep);
            let (some, some_problems) = parse_paragraphs_keeping_for(&text, &keep, "Package", &wanted);
            // Every paragraph of a wanted package, exactly as the full parse returns it...
            let full_wanted: Vec<&Paragraph> = full
                .iter()
                .filter(|p| p.get("package").is_some_and(|v| wanted.contains(&v)))
                .collect();
            let some_wanted: Vec<&Paragraph> = some
                .iter()
                .filter(|p| p.get("package").is_some_and(|v| wanted.contains(&v)))
                .collect();
            proptest::prop_assert_eq!(full_wanted, some_wanted);
            // ... and nothing the full parse does not say.
            proptest::prop_assert!(some.iter().all(|p| full.contains(p)));
            proptest::prop_assert!(some_problems.iter().all(|p| full_problems.contains(p)));
        }
    }
}
