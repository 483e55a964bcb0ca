//! Pure decision: which installed scripts to rewrite, and into what text.
//!
//! The new text is always `crate::scripts::repair::repair` of the installed text — the same
//! rendering `audit` diffs against — never another one.

use crate::dpkg::info::ScriptKind;
use crate::inspect::InstalledScript;
use crate::scripts::classify::Analysis;
use std::path::PathBuf;

/// The scripts of an installed package that dpkg runs with `upgrade`: the old prerm and the old
/// postrm. Not the preinst: on an upgrade dpkg runs the NEW version's preinst, so rewriting the
/// installed one would change nothing. Not the postinst: it does not get `upgrade`, and a
/// "stop only on remove" guard would make no sense in it.
pub const PATCH_KINDS: &[ScriptKind] = &[ScriptKind::Prerm, ScriptKind::Postrm];

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
            // Every guarded stop adds text: a script just under the limit can grow past what
            // this tool reads, and then `--revert` (and every later audit) would refuse the
            // very file we wrote. Refuse the repair instead, before anything is written.
            Some(repaired) if repaired.len() as u64 > crate::fsutil::MAX_TEXT_FILE => out
                .refusals
                .push(refuse(too_big(&s.path, text.len(), repaired.len()))),
            Some(repaired) if repaired != *text => out.items.push(PlanItem {
                package: package.clone(),
                version: s
                    .package
                    .version
                    .as_ref()
                    .map(std::string::ToString::to_string)
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

/// The one line for a repair that would outgrow [`crate::fsutil::MAX_TEXT_FILE`].
pub fn too_big(path: &std::path::Path, original: usize, repaired: usize) -> String {
    format!(
        "{} would grow from {original} bytes to {repaired} bytes, more than the {} bytes this \
         tool reads (patch --revert could not restore it); not rewriting it",
        path.display(),
        crate::fsutil::MAX_TEXT_FILE
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::status::{PackageStatus, State, Want};
    use crate::scripts::classify::{Guard, Site, UnitOp, Unknown, UnknownKind};

    const UNITS: &[&str] = &["containerd.service", "docker.socket", "docker.service"];

    fn pkg() -> PackageStatus {
        PackageStatus {
            name: "containerd".into(),
            arch: Some("amd64".into()),
            multi_arch: None,
            version: None,
            want: Want::Install,
            reinst_required: false,
            state: State::Installed,
        }
    }

    fn site(op: UnitOp, unit: &str, guard: Guard) -> Site {
        Site {
            op,
            units: vec![unit.into()],
            tool: "deb-systemd-invoke".into(),
            lines: (4, 4),
            span: 0..1,
            guard,
        }
    }

    fn script(kind: ScriptKind, sites: Vec<Site>, unknowns: Vec<Unknown>) -> InstalledScript {
        InstalledScript {
            package: pkg(),
            kind,
            path: PathBuf::from(format!("/info/containerd.{}", kind.name())),
            content: Ok(("#!/bin/sh\nstop\n".into(), Analysis { sites, unknowns })),
        }
    }

    fn fake_repair(text: &str, _: &Analysis, _: &[&str]) -> Option<String> {
        Some(format!("{text}# repaired\n"))
    }

    fn no_repair(_: &str, _: &Analysis, _: &[&str]) -> Option<String> {
        None
    }

    /// (case, script, repair, patched?, refusal containing)
    #[test]
    fn decisions() {
        let always = || Guard::Always;
        let on_remove = || Guard::ArgIs("remove".into());
        let unknown = || {
            vec![Unknown {
                line: 3,
                kind: UnknownKind::Indirect,
                reason: "a stop through eval".into(),
            }]
        };
        let cases: Vec<(&str, InstalledScript, RepairFn, bool, Option<&str>)> = vec![
            (
                "always-stop prerm",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Stop, "containerd.service", always())],
                    vec![],
                ),
                fake_repair,
                true,
                None,
            ),
            (
                "stop only on remove",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Stop, "containerd.service", on_remove())],
                    vec![],
                ),
                fake_repair,
                false,
                None,
            ),
            (
                "unwatched unit",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Stop, "kubelet.service", always())],
                    vec![],
                ),
                fake_repair,
                false,
                None,
            ),
            (
                "start is not a stop",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Start, "containerd.service", always())],
                    vec![],
                ),
                fake_repair,
                false,
                None,
            ),
            (
                "postinst is never rewritten",
                script(
                    ScriptKind::Postinst,
                    vec![site(UnitOp::Stop, "containerd.service", always())],
                    vec![],
                ),
                fake_repair,
                false,
                None,
            ),
            (
                "postrm stop on upgrade",
                script(
                    ScriptKind::Postrm,
                    vec![site(UnitOp::Stop, "docker.service", always())],
                    vec![],
                ),
                fake_repair,
                true,
                None,
            ),
            (
                "unknowns refuse",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Stop, "containerd.service", always())],
                    unknown(),
                ),
                fake_repair,
                false,
                Some("line 3: a stop through eval; not rewriting a script this tool cannot follow"),
            ),
            (
                "unknowns refuse even without a known stop",
                script(ScriptKind::Prerm, vec![], unknown()),
                fake_repair,
                false,
                Some("cannot follow"),
            ),
            (
                "no repaired form",
                script(
                    ScriptKind::Prerm,
                    vec![site(UnitOp::Stop, "containerd.service", always())],
                    vec![],
                ),
                no_repair,
                false,
                Some("has no repaired form"),
            ),
        ];
        for (name, s, repair, patched, refusal) in cases {
            let p = plan(std::slice::from_ref(&s), UNITS, repair);
            assert_eq!(p.items.len(), usize::from(patched), "{name}: {p:?}");
            match refusal {
                Some(r) => {
                    assert_eq!(p.refusals.len(), 1, "{name}");
                    assert!(p.refusals[0].reason.contains(r), "{name}: {p:?}");
                }
                None => assert!(p.refusals.is_empty(), "{name}: {p:?}"),
            }
            if patched {
                assert_eq!(
                    p.items[0].repaired, "#!/bin/sh\nstop\n# repaired\n",
                    "{name}"
                );
                assert_eq!(p.items[0].lines, vec![(4, 4)]);
            }
        }
    }

    #[test]
    fn unreadable_script_is_refused_with_its_reason() {
        let mut s = script(ScriptKind::Prerm, vec![], vec![]);
        s.content = Err("/info/containerd.prerm is a symlink; refusing to follow it".into());
        let p = plan(&[s], UNITS, fake_repair);
        assert!(p.items.is_empty());
        assert!(p.refusals[0].reason.contains("symlink"), "{p:?}");
    }

    #[test]
    fn line_descriptions() {
        assert_eq!(describe_lines(&[(4, 4)]), "line 4");
        assert_eq!(describe_lines(&[(4, 6)]), "lines 4-6");
        assert_eq!(describe_lines(&[(4, 4), (9, 9)]), "lines 4, 9");
    }
}
