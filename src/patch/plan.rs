//! Pure decision: which installed scripts to rewrite, and into what text.
//!
//! The new text is always `crate::scripts::repair::repair` of the installed text — the same
//! rendering `audit` diffs against — never another one.

use crate::dpkg::info::ScriptKind;
use crate::inspect::InstalledScript;
use crate::scripts::classify::Analysis;
use std::path::PathBuf;

/// The scripts of an installed package that dpkg runs with `upgrade` (old prerm, old postrm)
/// or that the issue names (preinst). The postinst is never rewritten: it does not get
/// `upgrade`, and a "stop only on remove" guard would make no sense in it.
pub const PATCH_KINDS: &[ScriptKind] =
    &[ScriptKind::Preinst, ScriptKind::Prerm, ScriptKind::Postrm];

/// One script to rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    pub package: String,
    pub version: String,
    pub kind: ScriptKind,
    pub path: PathBuf,
    /// The text analysed; `apply` checks that the file still holds exactly this.
    pub original: String,
    pub repaired: String,
    /// 1-based line ranges of the stops that are being guarded (for the messages).
    pub lines: Vec<(usize, usize)>,
    /// The watched units those stops act on, sorted.
    pub units: Vec<String>,
}

/// One script we will not touch, and why (one line naming the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub package: String,
    pub kind: ScriptKind,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    pub refusals: Vec<Refusal>,
}

/// The repair function `plan` uses; production passes [`crate::scripts::repair::repair`].
pub type RepairFn = fn(&str, &Analysis, &[&str]) -> Option<String>;

/// Decides, for each installed script, whether to rewrite it. A script the classifier could
/// not follow entirely is refused (we do not rewrite what we do not understand), as is one
/// that could not be read.
pub fn plan(scripts: &[InstalledScript], watched_units: &[&str], repair: RepairFn) -> Plan {
    let mut out = Plan::default();
    for s in scripts.iter().filter(|s| PATCH_KINDS.contains(&s.kind)) {
        let package = s.package.name.clone();
        let refuse = |reason: String| Refusal {
            package: package.clone(),
            kind: s.kind,
            reason,
        };
        let (text, analysis) = match &s.content {
            Ok((t, a)) => (t, a),
            Err(e) => {
                out.refusals.push(refuse(format!("cannot read it: {e}")));
                continue;
            }
        };
        if let Some(u) = analysis.unknowns.first() {
            out.refusals.push(refuse(format!(
                "{} line {}: {}; not rewriting a script this tool cannot follow (check it by hand)",
                s.path.display(),
                u.line,
                u.reason
            )));
            continue;
        }
        let harmful = crate::scripts::stops_on_upgrade(analysis, watched_units);
        if harmful.is_empty() {
            continue;
        }
        let lines = harmful.iter().map(|site| site.lines).collect();
        let mut units: Vec<String> = harmful
            .iter()
            .flat_map(|site| site.units.iter())
            .filter(|u| watched_units.contains(&u.as_str()))
            .cloned()
            .collect();
        units.sort();
        units.dedup();
        match repair(text, analysis, watched_units) {
            Some(repaired) if repaired != *text => out.items.push(PlanItem {
                package: package.clone(),
                version: s
                    .package
                    .version
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                kind: s.kind,
                path: s.path.clone(),
                original: text.clone(),
                repaired,
                lines,
                units,
            }),
            _ => out.refusals.push(refuse(format!(
                "{} stops a watched unit on upgrade but has no repaired form; not rewriting it",
                s.path.display()
            ))),
        }
    }
    out
}

/// "lines 12-14, 20" for messages.
pub fn describe_lines(lines: &[(usize, usize)]) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let word = if parts.len() == 1 && lines[0].0 == lines[0].1 {
        "line"
    } else {
        "lines"
    };
    format!("{word} {}", parts.join(", "))
}
