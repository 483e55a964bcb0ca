//! The `[Unit]` dependency settings of one unit file or drop-in, read the way systemd's config
//! parser reads them. Pure: text in, settings and problem lines out.

use super::name::is_valid_unit_name;
use super::DepKind;

/// A dependency as parsed from one file, before it is tied to the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDep {
    pub kind: DepKind,
    pub target: String,
    /// 1-based line where the (possibly continued) assignment starts.
    pub line: usize,
    /// The logical line (continuations joined).
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub deps: Vec<ParsedDep>,
    /// (1-based line, message).
    pub problems: Vec<(usize, String)>,
}

/// Parses the `[Unit]` dependency settings of one unit file or drop-in, as systemd's config
/// parser reads it: comments `#`/`;`, a trailing `\` joining the next line with a space
/// (comment lines inside a continuation skipped), case-sensitive section names and keys.
/// `unit_name` expands the specifiers `%n %N %p %i %%`.
pub fn parse_unit_text(text: &str, unit_name: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Parsed::default();
    let mut section: Option<String> = None;
    let mut logical: Option<(usize, String)> = None;
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let l = raw.trim();
        if logical.is_some() && (l.starts_with('#') || l.starts_with(';')) {
            continue;
        }
        let (start, mut joined) = if let Some((start, acc)) = logical.take() {
            (start, acc + l)
        } else {
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            (lineno, l.to_string())
        };
        if joined.ends_with('\\') {
            joined.pop();
            joined.push(' ');
            logical = Some((start, joined));
            continue;
        }
        parse_logical_line(start, joined.trim(), unit_name, &mut section, &mut out);
    }
    if let Some((start, joined)) = logical {
        parse_logical_line(start, joined.trim(), unit_name, &mut section, &mut out);
    }
    out
}

fn parse_logical_line(
    lineno: usize,
    l: &str,
    unit_name: &str,
    section: &mut Option<String>,
    out: &mut Parsed,
) {
    if let Some(rest) = l.strip_prefix('[') {
        match rest.strip_suffix(']') {
            Some(name) if !name.is_empty() && !name.contains(['[', ']']) => {
                *section = Some(name.to_string());
            }
            _ => out.problems.push((
                lineno,
                format!("invalid section header {l:?}; line ignored"),
            )),
        }
        return;
    }
    if l.starts_with(".include ") {
        out.problems.push((
            lineno,
            ".include is not supported by current systemd; line ignored".to_string(),
        ));
        return;
    }
    let Some((key, value)) = l.split_once('=') else {
        out.problems
            .push((lineno, format!("missing '=' in {l:?}; line ignored")));
        return;
    };
    let (key, value) = (key.trim(), value.trim());
    let Some(section) = section.as_deref() else {
        out.problems.push((
            lineno,
            format!("assignment {l:?} outside of any section; line ignored"),
        ));
        return;
    };
    if key.is_empty() {
        out.problems
            .push((lineno, format!("empty key in {l:?}; line ignored")));
        return;
    }
    if section != "Unit" {
        return;
    }
    let Some(kind) = DepKind::from_key(key) else {
        return;
    };
    if value.is_empty() {
        out.problems.push((
            lineno,
            format!(
                "{key}= (empty) does not remove dependencies: systemd cannot reset them, only add \
                 (override the whole unit file instead); line has no effect"
            ),
        ));
        return;
    }
    for word in value.split_ascii_whitespace() {
        let target = match expand_specifiers(word, unit_name) {
            Ok(t) => t,
            Err(msg) => {
                out.problems
                    .push((lineno, format!("{key}={word}: {msg}; ignored")));
                continue;
            }
        };
        if !is_valid_unit_name(&target) {
            out.problems.push((
                lineno,
                format!("{key}={word}: not a valid unit name; ignored"),
            ));
            continue;
        }
        out.deps.push(ParsedDep {
            kind,
            target,
            line: lineno,
            text: l.to_string(),
        });
    }
}

/// The unit-name specifiers a dependency on docker/containerd could plausibly use.
fn expand_specifiers(word: &str, unit_name: &str) -> anyhow::Result<String> {
    if !word.contains('%') {
        return Ok(word.to_string());
    }
    let stem = unit_name.rsplit_once('.').map_or(unit_name, |(s, _)| s);
    let (prefix, instance) = stem.split_once('@').unwrap_or((stem, ""));
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(unit_name),
            Some('N') => out.push_str(stem),
            Some('p') => out.push_str(prefix),
            Some('i') => out.push_str(instance),
            Some(o) => anyhow::bail!("specifier %{o} is not supported here"),
            None => anyhow::bail!("trailing %"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (DepKind, String, usize);

    fn deps(text: &str) -> Vec<Row> {
        parse_unit_text(text, "docker.service")
            .deps
            .into_iter()
            .map(|d| (d.kind, d.target, d.line))
            .collect()
    }

    #[test]
    fn parser_table() {
        use DepKind::*;
        let c = "containerd.service".to_string();
        let cases: Vec<(&str, &str, Vec<Row>, usize)> = vec![
            ("focal docker.service", "[Unit]\nDescription=x\nBindsTo=containerd.service\nAfter=network-online.target docker.socket firewalld.service containerd.service\nWants=network-online.target\nRequires=docker.socket\n\n[Service]\nType=notify\n",
             vec![(BindsTo, c.clone(), 3), (Wants, "network-online.target".into(), 5), (Requires, "docker.socket".into(), 6)], 0),
            ("bookworm Wants only", "[Unit]\nWants=containerd.service\n", vec![(Wants, c.clone(), 2)], 0),
            ("several per line", "[Unit]\nRequires=a.service  b.socket\t c.target\n",
             vec![(Requires, "a.service".into(), 2), (Requires, "b.socket".into(), 2), (Requires, "c.target".into(), 2)], 0),
            ("continuation with comment inside", "[Unit]\nBindsTo=a.service \\\n# comment\n  containerd.service\n",
             vec![(BindsTo, "a.service".into(), 2), (BindsTo, c.clone(), 2)], 0),
            ("comments", "# BindsTo=containerd.service\n[Unit]\n; Requires=containerd.service\n  #PartOf=containerd.service\n", vec![], 0),
            ("keys are case-sensitive", "[Unit]\nbindsto=containerd.service\nBINDSTO=containerd.service\n", vec![], 0),
            ("sections are case-sensitive", "[unit]\nBindsTo=containerd.service\n", vec![], 0),
            ("other sections ignored", "[Service]\nBindsTo=containerd.service\n[Install]\nRequires=containerd.service\n", vec![], 0),
            ("spaces around =", "[Unit]\n  PartOf = containerd.service  \n", vec![(PartOf, c.clone(), 2)], 0),
            ("empty assignment keeps the list", "[Unit]\nBindsTo=containerd.service\nBindsTo=\n", vec![(BindsTo, c.clone(), 2)], 1),
            ("garbage lines", "[Unit]\nthis is not a setting\nBindsTo=containerd.service\n[Broken\n=x\n", vec![(BindsTo, c.clone(), 3)], 3),
            ("outside any section", "BindsTo=containerd.service\n", vec![], 1),
            ("invalid unit name", "[Unit]\nRequires=containerd \"containerd.service\" containerd.service\n", vec![(Requires, c.clone(), 2)], 2),
            ("specifiers", "[Unit]\nPartOf=%p.socket foo@%i.service\n", vec![(PartOf, "docker.socket".into(), 2)], 1),
            ("reverse settings", "[Unit]\nStopPropagatedFrom=containerd.service\nPropagatesStopTo=x.service\nRequisite=y.service\n",
             vec![(StopPropagatedFrom, c.clone(), 2), (PropagatesStopTo, "x.service".into(), 3), (Requisite, "y.service".into(), 4)], 0),
            ("CRLF and BOM", "\u{feff}[Unit]\r\nBindsTo=containerd.service\r\n", vec![(BindsTo, c.clone(), 2)], 0),
            ("continuation at EOF", "[Unit]\nBindsTo=containerd.service \\", vec![(BindsTo, c.clone(), 2)], 0),
        ];
        for (what, text, want, nproblems) in cases {
            assert_eq!(deps(text), want, "{what}");
            let p = parse_unit_text(text, "docker.service").problems;
            assert_eq!(p.len(), nproblems, "{what}: {p:?}");
        }
    }

    #[test]
    fn problems_name_the_line() {
        let p = parse_unit_text("[Unit]\n\nnonsense\nBindsTo=\n", "docker.service").problems;
        assert_eq!(p[0].0, 3);
        assert!(p[0].1.contains("missing '='"), "{p:?}");
        assert_eq!(p[1].0, 4);
        assert!(p[1].1.contains("cannot reset"), "{p:?}");
    }
}
