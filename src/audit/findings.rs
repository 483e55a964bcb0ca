//! Pure decision logic: facts → findings with a severity. No I/O here.
//!
//! The rules (README "audit" section says the same to admins):
//! - A prerm/preinst stop of a watched unit that runs on `upgrade` (the ONE definition,
//!   `crate::scripts::stops_on_upgrade`, already applied by `collect`) exposes every unit it
//!   stops, plus every unit that systemd stops with it (`BindsTo=`/`Requires=`/`PartOf=`).
//! - A unit is "started again" only when the same package's postinst starts it on `configure`
//!   (start, restart or try-restart). A postinst we cannot read or decide counts as not starting
//!   it: the worst case, said so in the evidence.
//! - Exposed, something stays down → CRITICAL; our hooks installed → WARNING (they start it
//!   again, and the just-in-time guard patches the script before dpkg runs it).
//! - Everything is started again, but docker.service is among the stopped units and live-restore
//!   is off → still CRITICAL: dockerd stops every container when it stops, and the ones without a
//!   restart policy stay down (LP: #1906364). With live-restore on, or when only containerd/the
//!   socket bounce → WARNING: the containers survive, only the API is away for the upgrade.
//! - Anything unreadable or undecidable that could touch a watched unit → UNKNOWN, never OK.
//! - Overall: CRITICAL > UNKNOWN > WARNING > OK (a definite exposure beats a doubt; a doubt
//!   beats a guarded exposure, because the doubt may hide an unguarded one).

use super::facts::{Facts, PackageFacts, ScriptFacts, ScriptReading, StartAnswer};
use super::Severity;
use crate::dpkg::info::ScriptKind;
use crate::units::{DepKind, Propagated};
use serde::Serialize;

pub(crate) const LP_DEPENDENCY: &str = "https://bugs.launchpad.net/bugs/1870514";
pub(crate) const LP_DOCKER_PRERM: &str = "https://bugs.launchpad.net/bugs/1906364";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The next upgrade stops a watched unit.
    Exposure,
    /// Something that could change the verdict could not be read or decided.
    Unknown,
    /// A script we patched earlier: safe because patched.
    Patched,
    /// A postinst restarts docker on upgrade (live-restore off): containers without a restart
    /// policy stay down (see `audit::containers`).
    Restart,
    /// A stop on upgrade that only a file test keeps from running (`[ -x /etc/init.d/x ]`
    /// where the node has no such file and the package does not ship it): safe on this node.
    Inert,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EvidenceLine {
    pub file: String,
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AffectedUnit {
    pub unit: String,
    /// Empty when the script stops the unit itself; else the settings that make systemd stop
    /// it too (`BindsTo=containerd.service in /lib/systemd/system/docker.service:4`).
    pub via: Vec<String>,
    /// Whether the package's postinst starts it again on configure (None: cannot tell).
    pub started_again: Option<bool>,
    /// The postinst lines that start it.
    pub started_by: Vec<EvidenceLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub package: Option<String>,
    pub version: Option<String>,
    pub script: Option<String>,
    pub path: Option<String>,
    /// One line: what was found.
    pub summary: String,
    pub evidence: Vec<EvidenceLine>,
    pub units: Vec<AffectedUnit>,
    /// One sentence: what the next upgrade will do.
    pub consequence: String,
    pub reference: Option<String>,
    pub remedies: Vec<String>,
}

impl Finding {
    pub(crate) fn bare(
        severity: Severity,
        kind: Kind,
        summary: String,
        consequence: String,
    ) -> Finding {
        Finding {
            severity,
            kind,
            package: None,
            version: None,
            script: None,
            path: None,
            summary,
            evidence: vec![],
            units: vec![],
            consequence,
            reference: None,
            remedies: vec![],
        }
    }

    fn for_script(mut self, pkg: &PackageFacts, script: &ScriptFacts) -> Finding {
        self.package = Some(pkg.name.clone());
        self.version = pkg.version.clone();
        self.script = Some(script.kind.name().to_string());
        self.path = Some(script.path.display().to_string());
        self
    }
}

/// The scripts whose stops run during an upgrade of the package: the OLD prerm and postrm (the
/// ones `patch` rewrites) and the NEW preinst (the installed preinst is what a same-shaped new
/// version will run).
const STOPPING_SCRIPTS: &[ScriptKind] =
    &[ScriptKind::Preinst, ScriptKind::Prerm, ScriptKind::Postrm];

/// All findings, most severe first.
pub(crate) fn evaluate(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for problem in &facts.problems {
        out.push(Finding::bare(
            Severity::Unknown,
            Kind::Unknown,
            problem.clone(),
            "the audit cannot tell everything the next upgrade will do to the watched units"
                .to_string(),
        ));
    }
    for pkg in facts.packages.iter().filter(|p| p.installed()) {
        for &kind in STOPPING_SCRIPTS {
            if let Some(script) = pkg.script(kind) {
                out.extend(script_finding(facts, pkg, script));
            }
        }
        if let Some(script) = pkg.script(ScriptKind::Postinst) {
            if let Err(msg) = &script.reading {
                out.push(unreadable(pkg, script, msg));
            }
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// CRITICAL > UNKNOWN > WARNING > OK.
pub(crate) fn overall(findings: &[Finding]) -> Severity {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

fn script_finding(facts: &Facts, pkg: &PackageFacts, script: &ScriptFacts) -> Option<Finding> {
    let reading = match &script.reading {
        Err(msg) => return Some(unreadable(pkg, script, msg)),
        Ok(r) => r,
    };
    if !reading.stops_on_upgrade.is_empty() {
        let mut f = exposure(facts, pkg, script, reading);
        // Say when the verdict rests on a file of the node.
        for fact in file_facts_of(reading, &reading.stops_on_upgrade) {
            f.summary
                .push_str(&format!("; {}", fact.describe(&pkg.name)));
        }
        return Some(f);
    }
    if !reading.unknowns.is_empty() {
        let mut f = Finding::bare(
            Severity::Unknown,
            Kind::Unknown,
            format!(
                "{}: cannot tell whether it stops {} on upgrade",
                script.path.display(),
                join_and(&facts.watched_units)
            ),
            format!(
                "the audit cannot tell what the next {} upgrade does to the watched units",
                pkg.name
            ),
        )
        .for_script(pkg, script);
        f.evidence = reading
            .unknowns
            .iter()
            .map(|u| EvidenceLine {
                file: script.path.display().to_string(),
                line: u.line,
                text: format!("{} ({})", reading.line(u.line).trim(), u.reason),
            })
            .collect();
        f.remedies.push(format!(
            "read the lines named here; if they stop a watched unit on upgrade, run `docker-upgrade-guard patch --package {}` or install this tool's hooks",
            pkg.name
        ));
        return Some(f);
    }
    if !reading.kept_off_by_files.is_empty() {
        return Some(inert(facts, pkg, script, reading));
    }
    script.patched_backup.as_ref().map(|backup| {
        Finding::bare(
            Severity::Ok,
            Kind::Patched,
            format!(
                "{} was patched by docker-upgrade-guard (original kept in {})",
                script.path.display(),
                backup.display()
            ),
            format!(
                "the next {} upgrade will not stop the watched units through this script",
                pkg.name
            ),
        )
        .for_script(pkg, script)
    })
}

/// The file tests (as the node answered them) that these sites' guards rest on.
fn file_facts_of<'r>(
    reading: &'r ScriptReading,
    sites: &'r [crate::scripts::classify::Site],
) -> impl Iterator<Item = &'r crate::scripts::node::FileFact> {
    reading.file_facts.iter().filter(move |f| {
        sites
            .iter()
            .any(|s| s.guard.file_tests().contains(&(&f.test, f.positive)))
    })
}

/// Stops on upgrade that the node's files keep from running: OK, naming the files.
fn inert(
    facts: &Facts,
    pkg: &PackageFacts,
    script: &ScriptFacts,
    reading: &ScriptReading,
) -> Finding {
    let file = script.path.display().to_string();
    let mut units: Vec<String> = Vec::new();
    for u in reading.kept_off_by_files.iter().flat_map(|s| &s.units) {
        if facts.watched_units.contains(u) && !units.contains(u) {
            units.push(u.clone());
        }
    }
    let conditions: Vec<String> = file_facts_of(reading, &reading.kept_off_by_files)
        .map(|f| f.describe(&pkg.name))
        .collect();
    let mut f = Finding::bare(
        Severity::Ok,
        Kind::Inert,
        format!(
            "{file} stops {} on upgrade {}",
            join_and(&units),
            conditions.join("; ")
        ),
        format!(
            "the next {} upgrade will not stop {} through this script on this node",
            pkg.name,
            join_and(&units)
        ),
    )
    .for_script(pkg, script);
    for site in &reading.kept_off_by_files {
        for n in site.lines.0..=site.lines.1.max(site.lines.0) {
            f.evidence.push(EvidenceLine {
                file: file.clone(),
                line: n,
                text: reading.line(n).to_string(),
            });
        }
    }
    f
}

fn unreadable(pkg: &PackageFacts, script: &ScriptFacts, msg: &str) -> Finding {
    let mut f = Finding::bare(
        Severity::Unknown,
        Kind::Unknown,
        msg.to_string(),
        format!(
            "the audit cannot tell what the {} of the next {} upgrade does to the watched units",
            script.kind.name(),
            pkg.name
        ),
    )
    .for_script(pkg, script);
    f.remedies.push(format!(
        "check {} (it should be a regular UTF-8 shell script owned by the package)",
        script.path.display()
    ));
    f
}

fn exposure(
    facts: &Facts,
    pkg: &PackageFacts,
    script: &ScriptFacts,
    reading: &ScriptReading,
) -> Finding {
    let file = script.path.display().to_string();
    let mut evidence = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    for site in &reading.stops_on_upgrade {
        for n in site.lines.0..=site.lines.1.max(site.lines.0) {
            evidence.push(EvidenceLine {
                file: file.clone(),
                line: n,
                text: reading.line(n).to_string(),
            });
        }
        for u in &site.units {
            if facts.watched_units.contains(u) && !stopped.contains(u) {
                stopped.push(u.clone());
            }
        }
    }

    // What systemd stops along with each stopped unit.
    let mut affected: Vec<(String, Vec<String>)> =
        stopped.iter().map(|u| (u.clone(), vec![])).collect();
    let mut dep_chain_seen = false;
    let mut first_hard_dep: Option<(String, DepKind, String)> = None;
    for u in &stopped {
        for p in propagation_of(facts, u) {
            if affected.iter().any(|(a, _)| *a == p.unit) {
                continue;
            }
            dep_chain_seen = true;
            for d in &p.chain {
                let ev = EvidenceLine {
                    file: d.evidence.file.display().to_string(),
                    line: d.evidence.line,
                    text: d.evidence.text.clone(),
                };
                if !evidence.contains(&ev) {
                    evidence.push(ev);
                }
            }
            if first_hard_dep.is_none() {
                if let Some(d) = p.chain.first() {
                    let owner = p.chain.get(1).map_or(p.unit.clone(), |n| n.target.clone());
                    if d.kind != DepKind::PropagatesStopTo {
                        first_hard_dep = Some((owner, d.kind, d.target.clone()));
                    }
                }
            }
            affected.push((p.unit.clone(), describe_chain(p)));
        }
    }

    let postinst = pkg.script(ScriptKind::Postinst);
    let units: Vec<AffectedUnit> = affected
        .into_iter()
        .map(|(unit, via)| {
            let (started_again, started_by) = started_again(facts, postinst, &unit);
            AffectedUnit {
                unit,
                via,
                started_again,
                started_by,
            }
        })
        .collect();

    let guarded = facts.system.hooks.guarded();
    let live_restore = facts.system.live_restore == Some(true);
    let down: Vec<String> = units
        .iter()
        .filter(|u| u.started_again != Some(true))
        .map(|u| u.unit.clone())
        .collect();
    let all: Vec<String> = units.iter().map(|u| u.unit.clone()).collect();
    let undecided: Vec<String> = units
        .iter()
        .filter(|u| u.started_again.is_none())
        .map(|u| u.unit.clone())
        .collect();
    let docker_stopped = all.iter().any(|u| u == "docker.service");

    let (unguarded, mut consequence) = if !down.is_empty() {
        (
            Severity::Critical,
            format!(
                "the next {} upgrade will stop {} and nothing will start {}",
                pkg.name,
                join_and(&down),
                if down.len() == 1 { "it" } else { "them" }
            ),
        )
    } else if docker_stopped && !live_restore {
        (
            Severity::Critical,
            format!(
                "the next {} upgrade will stop {} until its postinst starts {} again, and containers without a restart policy stay down",
                pkg.name,
                join_and(&all),
                if all.len() == 1 { "it" } else { "them" }
            ),
        )
    } else {
        (
            Severity::Warning,
            format!(
                "the next {} upgrade will stop {} until its postinst starts {} again{}",
                pkg.name,
                join_and(&all),
                if all.len() == 1 { "it" } else { "them" },
                if docker_stopped {
                    "; live-restore keeps the containers running meanwhile"
                } else {
                    "; the containers keep running"
                }
            ),
        )
    };
    if !undecided.is_empty() {
        consequence.push_str(&format!(
            " (could not tell whether the postinst starts {}; assumed not)",
            join_and(&undecided)
        ));
    }
    let severity = if guarded {
        Severity::Warning
    } else {
        unguarded
    };

    let reference = if dep_chain_seen {
        Some(LP_DEPENDENCY.to_string())
    } else if stopped
        .iter()
        .any(|u| u == "docker.service" || u == "docker.socket")
    {
        Some(LP_DOCKER_PRERM.to_string())
    } else {
        None
    };

    // dpkg runs the NEW version's preinst on upgrade: rewriting the installed one changes
    // nothing, so for a preinst only the hook's recovery helps.
    let mut remedies = if script.kind == ScriptKind::Preinst {
        vec![format!(
            "{file} predicts what the next version's preinst does; dpkg runs that new preinst, so patching the installed one cannot help: the hook starts again what it stops"
        )]
    } else {
        vec![format!(
            "run `docker-upgrade-guard patch --package {}`: it guards the stop in {} with [ \"$1\" = remove ] (the diff shows the change)",
            pkg.name, file
        )]
    };
    if !guarded {
        remedies.push(
            "install this tool's package (its apt hooks in /etc/apt/apt.conf.d/99zz-docker-upgrade-guard and its dpkg file trigger): they patch the script just before dpkg runs it and start again what an upgrade stopped".to_string(),
        );
    }
    if let Some((owner, kind, target)) = first_hard_dep {
        remedies.push(format!(
            "or soften the dependency: systemd cannot remove a dependency in a drop-in, so copy {owner} to /etc/systemd/system/ and replace `{}={target}` there with `Wants={target}`",
            kind.key()
        ));
    }
    remedies.push(match script.kind {
        ScriptKind::Prerm => format!(
            "upgrade {} to a version whose prerm stops only on remove; dpkg still runs the installed prerm during that upgrade, so patch first",
            pkg.name
        ),
        _ => format!(
            "upgrade {} to a version whose {} does not stop the units on upgrade",
            pkg.name,
            script.kind.name()
        ),
    });
    if let Some(b) = &script.patched_backup {
        remedies.push(format!(
            "an older backup from `patch` is in {}, but the script was replaced since",
            b.display()
        ));
    }

    let mut summary = format!("{} stops {} on upgrade", file, join_and(&stopped));
    let mut vias: Vec<&String> = Vec::new();
    for v in units.iter().flat_map(|u| u.via.iter()) {
        if !vias.contains(&v) {
            vias.push(v);
        }
    }
    if !vias.is_empty() {
        summary.push_str(&format!(
            "; systemd stops {} with it ({})",
            join_and(
                &units
                    .iter()
                    .filter(|u| !u.via.is_empty())
                    .map(|u| u.unit.clone())
                    .collect::<Vec<_>>()
            ),
            vias.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }

    Finding {
        severity,
        kind: Kind::Exposure,
        package: Some(pkg.name.clone()),
        version: pkg.version.clone(),
        script: Some(script.kind.name().to_string()),
        path: Some(file),
        summary,
        evidence,
        units,
        consequence,
        reference,
        remedies,
    }
}

fn propagation_of<'a>(facts: &'a Facts, unit: &str) -> &'a [Propagated] {
    facts
        .units
        .iter()
        .find(|u| u.name == unit)
        .map_or(&[], |u| u.propagation.as_slice())
}

fn describe_chain(p: &Propagated) -> Vec<String> {
    p.chain
        .iter()
        .map(|d| {
            format!(
                "{} in {}:{}",
                d.evidence.text.trim(),
                d.evidence.file.display(),
                d.evidence.line
            )
        })
        .collect()
}

/// Whether the postinst starts `unit` on configure: directly, or by starting a unit that pulls
/// it in (starting docker.service starts docker.socket through `Requires=`).
fn started_again(
    facts: &Facts,
    postinst: Option<&ScriptFacts>,
    unit: &str,
) -> (Option<bool>, Vec<EvidenceLine>) {
    let Some(script) = postinst else {
        return (Some(false), vec![]);
    };
    let Ok(reading) = &script.reading else {
        return (None, vec![]);
    };
    let mut undecided = false;
    for (started, answer) in &reading.starts_on_configure {
        let reaches = started == unit || pulled_in(facts, started).iter().any(|u| u == unit);
        if !reaches {
            continue;
        }
        match answer {
            StartAnswer::Yes(sites) => {
                let lines = sites
                    .iter()
                    .flat_map(|s| s.lines.0..=s.lines.1.max(s.lines.0))
                    .map(|n| EvidenceLine {
                        file: script.path.display().to_string(),
                        line: n,
                        text: reading.line(n).to_string(),
                    })
                    .collect();
                return (Some(true), lines);
            }
            StartAnswer::Unknown(_) => undecided = true,
            StartAnswer::No => {}
        }
    }
    if undecided {
        (None, vec![])
    } else {
        (Some(false), vec![])
    }
}

/// Every unit that starting `unit` starts too (transitively), from the loaded units.
fn pulled_in(facts: &Facts, unit: &str) -> Vec<String> {
    let mut seen: Vec<String> = vec![];
    let mut todo = vec![unit.to_string()];
    while let Some(u) = todo.pop() {
        if let Some(f) = facts.units.iter().find(|f| f.name == u) {
            for t in &f.pulls_in {
                if !seen.contains(t) && t != unit {
                    seen.push(t.clone());
                    todo.push(t.clone());
                }
            }
        }
    }
    seen
}

/// "a", "a and b", "a, b and c".
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
