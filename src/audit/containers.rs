//! What the next upgrade does to the containers: a postinst that restarts docker.service on
//! upgrade takes down every container without a restart policy when live-restore is off
//! ([`restart_findings`], pure); and, when docker is exposed, which running containers have no
//! restart policy ([`at_risk`]: asks docker, only if systemd says docker.service is active —
//! a request on the socket of a stopped docker would start it).

use super::facts::Facts;
use super::findings::{EvidenceLine, Finding, Kind};
use super::Severity;
use crate::ctx::Ctx;
use crate::dpkg::info::ScriptKind;
use crate::scripts::classify::{self, Answer, UnitOp};
use crate::service::ServiceManager;
use serde::Serialize;
use std::time::{Duration, Instant};

const DOCKER: &str = "docker.service";

/// Running containers the next upgrade takes down for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AtRisk {
    pub count: usize,
    pub names: Vec<String>,
    /// One line for a person (`None` when there are none).
    pub summary: Option<String>,
}

/// One WARNING per installed postinst that restarts docker.service on `configure` (`restart`,
/// `try-restart`, or a stop and a start), unless live-restore is on.
pub(crate) fn restart_findings(facts: &Facts) -> Vec<Finding> {
    if facts.system.live_restore == Some(true) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for pkg in facts.packages.iter().filter(|p| p.installed()) {
        let Some(script) = pkg.script(ScriptKind::Postinst) else {
            continue;
        };
        let Ok(reading) = &script.reading else {
            continue;
        };
        let a = classify::analyse(&reading.text);
        let on = |ops: &[UnitOp]| matches!(a.query(ops, DOCKER, "configure"), Answer::Yes(_));
        let stop_start = on(&[UnitOp::Stop]) && on(&[UnitOp::Start]);
        // In script order: restarts, and the stops of a stop-then-start.
        let sites: Vec<&classify::Site> = a
            .sites
            .iter()
            .filter(|s| s.units.iter().any(|u| u == DOCKER))
            .filter(|s| s.runs_on("configure") != classify::Tri::No)
            .filter(|s| {
                matches!(s.op, UnitOp::Restart | UnitOp::TryRestart)
                    || (stop_start && s.op == UnitOp::Stop)
            })
            .collect();
        if sites.is_empty() {
            continue;
        }
        let file = script.path.display().to_string();
        let evidence: Vec<EvidenceLine> = sites
            .iter()
            .flat_map(|s| s.lines.0..=s.lines.1.max(s.lines.0))
            .map(|n| EvidenceLine {
                file: file.clone(),
                line: n,
                text: reading.line(n).to_string(),
            })
            .collect();
        let first = &evidence[0];
        let mut f = Finding::bare(
            Severity::Warning,
            Kind::Restart,
            format!(
                "{file}:{} restarts docker.service on upgrade ({}), and live-restore is off",
                first.line,
                first.text.trim()
            ),
            format!(
                "the next {} upgrade restarts dockerd: containers without a restart policy stay down",
                pkg.name
            ),
        );
        f.package = Some(pkg.name.clone());
        f.version = pkg.version.clone();
        f.script = Some("postinst".into());
        f.path = Some(file);
        f.evidence = evidence;
        f.remedies = vec![
            "turn live-restore on in /etc/docker/daemon.json (\"live-restore\": true), so that containers survive a restart of dockerd".into(),
            "give each long-running container a restart policy (docker update --restart=unless-stopped NAME)".into(),
            "or set restart_containers = \"previously-running\" in /etc/docker-upgrade-guard/config.toml: the hook then starts them again after the upgrade".into(),
        ];
        out.push(f);
    }
    out
}

/// The packages whose next upgrade stops or restarts docker.service (WARNING or CRITICAL).
fn exposing(findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in findings {
        let docker = f.kind == Kind::Restart
            || (f.kind == Kind::Exposure && f.units.iter().any(|u| u.unit == DOCKER));
        if docker && matches!(f.severity, Severity::Warning | Severity::Critical) {
            if let Some(p) = &f.package {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
    }
    out
}

/// The running containers without a restart policy, when the next upgrade of a watched package
/// takes docker down (`Some` with none when it does not). `None`, with a note, when docker
/// cannot be asked: not running (asking would start it), a `--root` tree without `--systemctl`,
/// or an API that fails.
pub(crate) fn at_risk(
    ctx: &Ctx,
    facts: &Facts,
    findings: &[Finding],
    notes: &mut Vec<String>,
) -> Option<AtRisk> {
    let none = AtRisk {
        count: 0,
        names: Vec::new(),
        summary: None,
    };
    let pkgs = exposing(findings);
    if pkgs.is_empty() || facts.system.live_restore == Some(true) {
        return Some(none);
    }
    if ctx.root.dir() != std::path::Path::new("/") && ctx.systemctl.is_none() {
        return None;
    }
    let sm = crate::service::Systemctl::new(ctx.systemctl.clone());
    match sm.show(&[DOCKER]) {
        Ok(s)
            if s.first()
                .is_some_and(super::super::service::UnitState::is_active) => {}
        Ok(_) => {
            notes.push("docker.service is not running: its containers were not asked about (a request would start it)".into());
            return None;
        }
        Err(e) => {
            notes.push(format!("cannot ask systemd whether docker runs: {e:#}"));
            return None;
        }
    }
    let sock = ctx.root.path(crate::hook::act::DOCKER_SOCK);
    let mut e = crate::engine::api::Engine::new(&sock, Instant::now() + Duration::from_secs(10));
    let listing = match e.ping().and_then(|()| e.list_running()) {
        Ok(l) => l,
        Err(err) => {
            notes.push(format!("cannot list docker's containers: {err}"));
            return None;
        }
    };
    let names: Vec<String> = listing
        .containers
        .into_iter()
        .filter(|c| c.restart_policy.as_deref() == Some("no"))
        .map(|c| c.name)
        .collect();
    if names.is_empty() {
        return Some(none);
    }
    let n = names.len();
    Some(AtRisk {
        summary: Some(format!(
            "the next {} upgrade will take down {n} container{} for good: {} (no restart policy; live-restore off)",
            pkgs.join(" or "),
            if n == 1 { "" } else { "s" },
            names.join(", ")
        )),
        count: n,
        names,
    })
}
