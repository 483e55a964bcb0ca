//! The repaired rendering of a maintainer script: each stop of a watched unit that runs on
//! `upgrade` is guarded so that it only runs on `remove`; every other byte is unchanged.
//! `audit` diffs against exactly this text and `patch` writes exactly this text.
//!
//! The edits are insertions only:
//! - a stop that is the only command of an `if COND; then ... fi` (no `elif`/`else`) whose COND
//!   is one and-or list on one line gets ` && [ "$1" = remove ]` after COND — debhelper's own
//!   fixed shape, so the diff against the upstream fix is one line;
//! - any other stop's whole and-or list becomes `if [ "$1" = remove ]; then <list>; fi`.
//!
//! The rule for `None`: nothing to repair, or nothing can be repaired safely — the script does
//! not parse, the analysis does not match the text, or the repaired text would not re-analyse
//! as "no stop on upgrade" with the same sites. [`Unknown`](super::classify::Unknown)s are left
//! as they are (they are not sites): the repair covers what can be repaired, and callers that
//! must be sure (`patch`) refuse scripts that still have unknowns.

use std::ops::Range;

use super::classify::{analyse, Analysis};
use super::parse::{self, AndOr, Command};
use super::stops_on_upgrade;

/// What the if-line rewrite appends to the condition.
pub const COND_SUFFIX: &str = " && [ \"$1\" = remove ]";
/// What wraps an and-or list.
pub const WRAP_OPEN: &str = "if [ \"$1\" = remove ]; then ";
pub const WRAP_CLOSE: &str = "; fi";

/// The repaired text, or `None` when no stop of a unit in `watched` runs on upgrade, or when
/// the script cannot be repaired safely (see the module docs).
pub fn repair(text: &str, analysis: &Analysis, watched: &[&str]) -> Option<String> {
    let harmful = stops_on_upgrade(analysis, watched);
    if harmful.is_empty() || analysis.unparsable() {
        return None;
    }
    let ast = parse::parse(text).ok()?;
    let mut shapes = Shapes::default();
    shapes.list(&ast, text);

    let mut spans: Vec<Range<usize>> = harmful.iter().map(|s| s.span.clone()).collect();
    spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    spans.dedup();
    let mut edits: Vec<(usize, &str)> = Vec::new();
    let mut wrapped: Vec<Range<usize>> = Vec::new();
    for span in spans {
        if !shapes.and_ors.contains(&span) {
            return None; // the analysis is not of this text
        }
        // Inside a list we already wrap: the outer guard covers it.
        if wrapped
            .iter()
            .any(|w| w.start <= span.start && span.end <= w.end)
        {
            continue;
        }
        if let Some(cond_end) = shapes
            .sole_in_if
            .iter()
            .find(|(b, _)| *b == span)
            .map(|x| x.1)
        {
            edits.push((cond_end, COND_SUFFIX));
        } else {
            edits.push((span.start, WRAP_OPEN));
            edits.push((span.end, WRAP_CLOSE));
            wrapped.push(span);
        }
    }
    // Insert back to front so that earlier positions stay valid; at one position the edits
    // keep their list order in the output (a closing `; fi` before a following opening).
    let mut out = text.to_string();
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(edits[i].0), std::cmp::Reverse(i)));
    for i in order {
        let (pos, s) = edits[i];
        out.insert_str(pos, s);
    }

    // The safety net: the result must parse, keep every site and unknown, and stop nothing on
    // upgrade.
    let after = analyse(&out);
    let ok = !after.unparsable()
        && after.sites.len() == analysis.sites.len()
        && after.unknowns.len() == analysis.unknowns.len()
        && stops_on_upgrade(&after, watched).is_empty();
    ok.then_some(out)
}

/// The places in the parsed script a repair may edit.
#[derive(Default)]
struct Shapes {
    /// Spans of every and-or list.
    and_ors: Vec<Range<usize>>,
    /// (span of the only and-or list in an `if` body, end of its one-line condition).
    sole_in_if: Vec<(Range<usize>, usize)>,
}

impl Shapes {
    fn list(&mut self, list: &[AndOr], src: &str) {
        for ao in list {
            self.and_ors.push(ao.span.clone());
            for p in std::iter::once(&ao.first).chain(ao.rest.iter().map(|(_, p)| p)) {
                for c in &p.cmds {
                    self.command(c, src);
                }
            }
        }
    }

    fn command(&mut self, c: &Command, src: &str) {
        match c {
            Command::Simple(_) => {}
            Command::If(i) => {
                if let ([(cond, body)], None) = (i.clauses.as_slice(), &i.else_body) {
                    if let ([c], [b]) = (cond.as_slice(), body.as_slice()) {
                        if !src[c.span.clone()].contains('\n') {
                            self.sole_in_if.push((b.span.clone(), c.span.end));
                        }
                    }
                }
                for (cond, body) in &i.clauses {
                    self.list(cond, src);
                    self.list(body, src);
                }
                if let Some(e) = &i.else_body {
                    self.list(e, src);
                }
            }
            Command::Case { arms, .. } => {
                for a in arms {
                    self.list(&a.body, src);
                }
            }
            Command::Loop { cond, body, .. } => {
                self.list(cond, src);
                self.list(body, src);
            }
            Command::For { body, .. } | Command::Group { body, .. } => self.list(body, src),
            Command::Func { body, .. } => self.command(body, src),
        }
    }
}
