//! The unified diff of an installed script against its fixed (`audit`) or repaired (`patch`)
//! version, and its colouring.
//!
//! The diff algorithm is ported from the `similar` crate 2.7 (by Armin Ronacher, Pierre-Étienne
//! Meunier and Brandon Williams; Apache License 2.0, see debian/copyright).

/// Unified diff with 3 lines of context and `--- old_header` / `+++ new_header`, in the form
/// GNU `patch` applies. Empty when the texts are equal.
///
/// The output is byte for byte what `similar` 2.7 (`TextDiff::from_lines(..).unified_diff()`)
/// writes — Myers' divide-and-conquer, the same compaction and grouping, ported here because
/// that crate cost 32 KiB of the 2.5 MiB budget for this one function (a test compares the two
/// on random texts; `similar` is a dev-dependency only).
pub fn unified(old: &str, new: &str, old_header: &str, new_header: &str) -> String {
    if old == new {
        return String::new();
    }
    let (a, b) = (lines(old), lines(new));
    let mut ops = Vec::new();
    myers::conquer(&a, 0..a.len(), &b, 0..b.len(), &mut ops);
    compact::cleanup(&a, &b, &mut ops);
    let ops = merge_replace(ops);
    let mut out = String::new();
    for (i, hunk) in group(ops, 3).iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("--- {old_header}\n+++ {new_header}\n"));
        }
        let (first, last) = (hunk[0], hunk[hunk.len() - 1]);
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            HunkRange(first.old, last.old_end()),
            HunkRange(first.new, last.new_end())
        ));
        for op in hunk {
            let (old_sign, new_sign) = match op.tag {
                Tag::Equal => (' ', None),
                _ => ('-', Some('+')),
            };
            let mut line = |sign: char, text: &str| {
                out.push(sign);
                out.push_str(text);
                if !text.ends_with(['\r', '\n']) {
                    out.push_str("\n\\ No newline at end of file\n");
                }
            };
            for t in &a[op.old..op.old_end()] {
                line(old_sign, t);
            }
            if let Some(sign) = new_sign {
                for t in &b[op.new..op.new_end()] {
                    line(sign, t);
                }
            }
        }
    }
    out
}

/// Lines with their terminators (`\n`, `\r\n` or a lone `\r`); a last line may have none.
fn lines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (bytes, mut start, mut i) = (s.as_bytes(), 0, 0);
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push(&s[start..end]);
        (start, i) = (end, end);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Equal,
    Delete,
    Insert,
    /// A delete and an insert between the same two equal runs (printed `-` then `+`).
    Replace,
}

/// One edit: `old..old + old_len` of the old lines against `new..new + new_len` of the new
/// (an equal run has both lengths equal; a delete has `new_len` 0, an insert `old_len` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    tag: Tag,
    old: usize,
    old_len: usize,
    new: usize,
    new_len: usize,
}

impl Op {
    fn equal(old: usize, new: usize, len: usize) -> Op {
        Op {
            tag: Tag::Equal,
            old,
            old_len: len,
            new,
            new_len: len,
        }
    }
    fn old_end(&self) -> usize {
        self.old + self.old_len
    }
    fn new_end(&self) -> usize {
        self.new + self.new_len
    }
    fn is_empty(&self) -> bool {
        self.old_len == 0 && self.new_len == 0
    }
    /// Moves the start by `offset` and changes the length by `len` (similar's `adjust`): the
    /// length that an insert or a delete does not have stays 0.
    fn adjust(&mut self, offset: isize, len: isize) {
        let add = |v: &mut usize, d: isize| *v = v.wrapping_add_signed(d);
        add(&mut self.old, offset);
        add(&mut self.new, offset);
        if self.tag != Tag::Insert {
            add(&mut self.old_len, len);
        }
        if self.tag != Tag::Delete {
            add(&mut self.new_len, len);
        }
    }
}

fn common_prefix(a: &[&str], ar: Range<usize>, b: &[&str], br: Range<usize>) -> usize {
    if ar.is_empty() || br.is_empty() {
        return 0;
    }
    br.zip(ar).take_while(|&(j, i)| b[j] == a[i]).count()
}

fn common_suffix(a: &[&str], ar: Range<usize>, b: &[&str], br: Range<usize>) -> usize {
    if ar.is_empty() || br.is_empty() {
        return 0;
    }
    br.rev()
        .zip(ar.rev())
        .take_while(|&(j, i)| b[j] == a[i])
        .count()
}

use std::ops::Range;

/// Myers' O((N+M)D) diff, divide and conquer on the middle snake (as in `similar`).
mod myers {
    use super::{common_prefix, common_suffix, Op, Tag};
    use std::ops::Range;

    /// A diagonal-indexed vector (k in -d..=d).
    struct V {
        offset: isize,
        v: Vec<usize>,
    }

    impl V {
        fn new(max_d: usize) -> V {
            V {
                offset: max_d as isize,
                v: vec![0; 2 * max_d],
            }
        }
        fn at(&mut self, k: isize) -> &mut usize {
            &mut self.v[(k + self.offset) as usize]
        }
    }

    fn max_d(n: usize, m: usize) -> usize {
        (n + m).div_ceil(2) + 1
    }

    fn middle_snake(
        a: &[&str],
        ar: Range<usize>,
        b: &[&str],
        br: Range<usize>,
        vf: &mut V,
        vb: &mut V,
    ) -> Option<(usize, usize)> {
        let (n, m) = (ar.len(), br.len());
        let delta = n as isize - m as isize;
        let odd = delta & 1 == 1;
        *vf.at(1) = 0;
        *vb.at(1) = 0;
        let d_max = max_d(n, m);
        for d in 0..d_max as isize {
            for k in (-d..=d).rev().step_by(2) {
                let mut x = if k == -d || (k != d && *vf.at(k - 1) < *vf.at(k + 1)) {
                    *vf.at(k + 1)
                } else {
                    *vf.at(k - 1) + 1
                };
                let y = (x as isize - k) as usize;
                let (x0, y0) = (x, y);
                if x < n && y < m {
                    x += common_prefix(a, ar.start + x..ar.end, b, br.start + y..br.end);
                }
                *vf.at(k) = x;
                if odd && (k - delta).abs() < d && *vf.at(k) + *vb.at(-(k - delta)) >= n {
                    return Some((x0 + ar.start, y0 + br.start));
                }
            }
            for k in (-d..=d).rev().step_by(2) {
                let mut x = if k == -d || (k != d && *vb.at(k - 1) < *vb.at(k + 1)) {
                    *vb.at(k + 1)
                } else {
                    *vb.at(k - 1) + 1
                };
                let mut y = (x as isize - k) as usize;
                if x < n && y < m {
                    let s =
                        common_suffix(a, ar.start..ar.start + n - x, b, br.start..br.start + m - y);
                    x += s;
                    y += s;
                }
                *vb.at(k) = x;
                if !odd && (k - delta).abs() <= d && *vb.at(k) + *vf.at(-(k - delta)) >= n {
                    return Some((n - x + ar.start, m - y + br.start));
                }
            }
        }
        None
    }

    /// The edits turning `a[ar]` into `b[br]`, appended to `ops` in order.
    pub(super) fn conquer(
        a: &[&str],
        ar: Range<usize>,
        b: &[&str],
        br: Range<usize>,
        ops: &mut Vec<Op>,
    ) {
        let d = max_d(ar.len(), br.len());
        let (mut vf, mut vb) = (V::new(d), V::new(d));
        step(a, ar, b, br, &mut vf, &mut vb, ops);
    }

    fn step(
        a: &[&str],
        mut ar: Range<usize>,
        b: &[&str],
        mut br: Range<usize>,
        vf: &mut V,
        vb: &mut V,
        ops: &mut Vec<Op>,
    ) {
        let prefix = common_prefix(a, ar.clone(), b, br.clone());
        if prefix > 0 {
            ops.push(Op::equal(ar.start, br.start, prefix));
        }
        ar.start += prefix;
        br.start += prefix;
        let suffix = common_suffix(a, ar.clone(), b, br.clone());
        let suffix_at = (ar.end - suffix, br.end - suffix);
        ar.end -= suffix;
        br.end -= suffix;
        let delete = |ops: &mut Vec<Op>, ar: &Range<usize>, at: usize| {
            ops.push(Op {
                tag: Tag::Delete,
                old: ar.start,
                old_len: ar.len(),
                new: at,
                new_len: 0,
            })
        };
        let insert = |ops: &mut Vec<Op>, at: usize, br: &Range<usize>| {
            ops.push(Op {
                tag: Tag::Insert,
                old: at,
                old_len: 0,
                new: br.start,
                new_len: br.len(),
            })
        };
        if ar.is_empty() && br.is_empty() {
        } else if br.is_empty() {
            delete(ops, &ar, br.start);
        } else if ar.is_empty() {
            insert(ops, ar.start, &br);
        } else if let Some((x, y)) = middle_snake(a, ar.clone(), b, br.clone(), vf, vb) {
            step(a, ar.start..x, b, br.start..y, vf, vb, ops);
            step(a, x..ar.end, b, y..br.end, vf, vb, ops);
        } else {
            delete(ops, &ar, br.start);
            insert(ops, ar.start, &br);
        }
        if suffix > 0 {
            ops.push(Op::equal(suffix_at.0, suffix_at.1, suffix));
        }
    }
}

/// Slides deletes and inserts up and down over equal lines and merges neighbours (similar's
/// `Compact` hook, `cleanup_diff_ops`).
mod compact {
    use super::{common_prefix, common_suffix, Op, Tag};

    pub(super) fn cleanup(a: &[&str], b: &[&str], ops: &mut Vec<Op>) {
        for tag in [Tag::Delete, Tag::Insert] {
            let mut p = 0;
            while let Some(op) = ops.get(p) {
                if op.tag == tag {
                    p = shift_up(ops, a, b, p);
                    p = shift_down(ops, a, b, p);
                }
                p += 1;
            }
        }
    }

    fn shift_up(ops: &mut Vec<Op>, a: &[&str], b: &[&str], mut p: usize) -> usize {
        while let Some(&prev) = p.checked_sub(1).and_then(|i| ops.get(i)) {
            let this = ops[p];
            match (this.tag, prev.tag) {
                (Tag::Insert | Tag::Delete, Tag::Equal) => {
                    let s = common_suffix(a, prev.old..prev.old_end(), b, this.new..this.new_end());
                    if s > 0 {
                        if ops.get(p + 1).is_some_and(|o| o.tag == Tag::Equal) {
                            ops[p + 1].adjust(-(s as isize), s as isize);
                        } else {
                            // similar's quirk kept: after a delete the run is as long as what
                            // stays of the previous equal run.
                            let len = if this.tag == Tag::Insert {
                                s
                            } else {
                                prev.old_len - s
                            };
                            ops.insert(
                                p + 1,
                                Op::equal(prev.old_end() - s, this.new_end() - s, len),
                            );
                        }
                        ops[p].adjust(-(s as isize), 0);
                        ops[p - 1].adjust(0, -(s as isize));
                        if ops[p - 1].is_empty() {
                            ops.remove(p - 1);
                            p -= 1;
                        }
                    } else if ops[p - 1].is_empty() {
                        ops.remove(p - 1);
                        p -= 1;
                    } else {
                        break;
                    }
                }
                (Tag::Insert, Tag::Delete) | (Tag::Delete, Tag::Insert) => {
                    ops.swap(p - 1, p);
                    p -= 1;
                }
                (Tag::Insert, Tag::Insert) | (Tag::Delete, Tag::Delete) => {
                    let grow = this.old_len + this.new_len;
                    ops[p - 1].adjust(0, grow as isize);
                    ops.remove(p);
                    p -= 1;
                }
                _ => unreachable!("no replace before merging"),
            }
        }
        p
    }

    fn shift_down(ops: &mut Vec<Op>, a: &[&str], b: &[&str], mut p: usize) -> usize {
        while let Some(&next) = ops.get(p + 1) {
            let this = ops[p];
            match (this.tag, next.tag) {
                (Tag::Insert | Tag::Delete, Tag::Equal) => {
                    let s = common_prefix(a, next.old..next.old_end(), b, this.new..this.new_end());
                    if s > 0 {
                        if p.checked_sub(1)
                            .and_then(|i| ops.get(i))
                            .is_some_and(|o| o.tag == Tag::Equal)
                        {
                            ops[p - 1].adjust(0, s as isize);
                        } else {
                            ops.insert(p, Op::equal(next.old, this.new, s));
                            p += 1;
                        }
                        ops[p].adjust(s as isize, 0);
                        ops[p + 1].adjust(s as isize, -(s as isize));
                        if ops[p + 1].is_empty() {
                            ops.remove(p + 1);
                        }
                    } else if ops[p + 1].is_empty() {
                        ops.remove(p + 1);
                    } else {
                        break;
                    }
                }
                (Tag::Insert, Tag::Delete) | (Tag::Delete, Tag::Insert) => {
                    ops.swap(p, p + 1);
                    p += 1;
                }
                (Tag::Insert, Tag::Insert) | (Tag::Delete, Tag::Delete) => {
                    let grow = next.old_len + next.new_len;
                    ops[p].adjust(0, grow as isize);
                    ops.remove(p + 1);
                }
                _ => unreachable!("no replace before merging"),
            }
        }
        p
    }
}

/// Equal runs joined; the deletes and inserts between two equal runs made one op (similar's
/// `Replace` hook).
fn merge_replace(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::new();
    let (mut del, mut ins): (Option<Op>, Option<Op>) = (None, None);
    let flush = |out: &mut Vec<Op>, del: &mut Option<Op>, ins: &mut Option<Op>| match (
        del.take(),
        ins.take(),
    ) {
        (Some(d), Some(i)) => out.push(Op {
            tag: Tag::Replace,
            old: d.old,
            old_len: d.old_len,
            new: i.new,
            new_len: i.new_len,
        }),
        (Some(op), None) | (None, Some(op)) => out.push(op),
        (None, None) => {}
    };
    for op in ops {
        match op.tag {
            Tag::Equal => {
                flush(&mut out, &mut del, &mut ins);
                match out.last_mut() {
                    Some(last) if last.tag == Tag::Equal => {
                        last.old_len += op.old_len;
                        last.new_len += op.new_len;
                    }
                    _ => out.push(op),
                }
            }
            Tag::Delete => match &mut del {
                Some(d) => d.old_len += op.old_len,
                None => del = Some(op),
            },
            Tag::Insert => match &mut ins {
                Some(i) => i.new_len += op.new_len,
                None => ins = Some(op),
            },
            Tag::Replace => out.push(op),
        }
    }
    flush(&mut out, &mut del, &mut ins);
    out
}

/// Hunks: the ops with at most `n` lines of context around each change (similar's
/// `group_diff_ops`).
fn group(mut ops: Vec<Op>, n: usize) -> Vec<Vec<Op>> {
    if let Some(first) = ops.first_mut().filter(|o| o.tag == Tag::Equal) {
        let cut = first.old_len.saturating_sub(n);
        first.adjust(cut as isize, -(cut as isize));
    }
    if let Some(last) = ops.last_mut().filter(|o| o.tag == Tag::Equal) {
        let cut = last.old_len.saturating_sub(n);
        last.adjust(0, -(cut as isize));
    }
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for op in ops {
        if op.tag == Tag::Equal && op.old_len > n * 2 {
            pending.push(Op::equal(op.old, op.new, n));
            out.push(std::mem::take(&mut pending));
            let skip = op.old_len - n;
            pending.push(Op::equal(op.old + skip, op.new + skip, n));
            continue;
        }
        pending.push(op);
    }
    if !(pending.is_empty() || pending.len() == 1 && pending[0].tag == Tag::Equal) {
        out.push(pending);
    }
    out
}

/// `start,len` (1-based), `start` alone for one line, the line before for none.
struct HunkRange(usize, usize);

impl std::fmt::Display for HunkRange {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let len = self.1.saturating_sub(self.0);
        match len {
            1 => write!(f, "{}", self.0 + 1),
            0 => write!(f, "{},0", self.0),
            _ => write!(f, "{},{len}", self.0 + 1),
        }
    }
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// ANSI colours for a terminal: headers bold, hunks cyan, removals red, additions green.
pub fn colorize(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + diff.len() / 4);
    for line in diff.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let colour = if body.starts_with("--- ") || body.starts_with("+++ ") {
            Some(BOLD)
        } else if body.starts_with("@@") {
            Some(CYAN)
        } else if body.starts_with('-') {
            Some(RED)
        } else if body.starts_with('+') {
            Some(GREEN)
        } else {
            None
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
                out.push_str(nl);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\nfi\nexit 0\n";
    const NEW: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\nfi\nexit 0\n";

    #[test]
    fn exact_unified_text() {
        let d = unified(OLD, NEW, "installed docker.io 1.0 prerm", "fixed x");
        assert_eq!(
            d,
            "--- installed docker.io 1.0 prerm\n+++ fixed x\n@@ -1,6 +1,6 @@\n #!/bin/sh\n set -e\n-if [ -d /run/systemd/system ]; then\n+if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n \tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\n fi\n exit 0\n"
        );
        assert_eq!(unified(OLD, OLD, "a", "b"), "");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified("a\nb", "a\nc", "x", "y");
        assert!(d.contains("\\ No newline at end of file"), "{d}");
    }

    fn similar(old: &str, new: &str) -> String {
        if old == new {
            return String::new();
        }
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header("a", "b")
            .to_string()
    }

    /// Long texts (over 100 lines, where similar switches to interned lines) with scattered
    /// edits, far apart and close together.
    #[test]
    fn the_same_text_as_similar_on_long_scripts() {
        let old: String = (0..300).map(|i| format!("line {}\n", i % 37)).collect();
        let mut new = old.replace("line 5\n", "line five\n");
        new.insert_str(0, "#!/bin/sh\n");
        new.push_str("exit 0");
        assert_eq!(unified(&old, &new, "a", "b"), similar(&old, &new));
        let cut: String = old
            .lines()
            .skip(40)
            .take(200)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(unified(&old, &cut, "a", "b"), similar(&old, &cut));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Texts of a few repeated lines (where a diff has the most choices to make), with
        /// and without final newlines, CRLF and lone CR: byte for byte what similar writes.
        #[test]
        fn the_same_text_as_similar(
            a in proptest::collection::vec(0usize..7, 0..40),
            b in proptest::collection::vec(0usize..7, 0..40),
        ) {
            const L: [&str; 7] = ["a\n", "b\n", "c\n", "a", "\r\n", "x\r", "\n"];
            let old: String = a.iter().map(|i| L[*i]).collect();
            let new: String = b.iter().map(|i| L[*i]).collect();
            proptest::prop_assert_eq!(unified(&old, &new, "a", "b"), similar(&old, &new));
        }
    }

    #[test]
    fn colours_only_marked_lines() {
        let c = colorize("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n");
        assert_eq!(
            c,
            "\x1b[1m--- a\x1b[0m\n\x1b[1m+++ b\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-x\x1b[0m\n\x1b[32m+y\x1b[0m\n z\n"
        );
    }
}
