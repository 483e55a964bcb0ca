//! `--format prometheus`: a node_exporter textfile-collector file. Write it atomically:
//! `docker-upgrade-guard audit --format prometheus > f.prom.tmp; mv f.prom.tmp f.prom`.

use crate::audit::findings::Kind;
use crate::audit::report::Report;
use crate::audit::Severity;
use std::fmt::Write;

/// Label values: backslash, double quote and newline escaped.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

pub(crate) fn render(r: &Report) -> String {
    let mut o = String::new();
    head(
        &mut o,
        "docker_upgrade_guard_audit_severity",
        "Result of the audit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    let _ = writeln!(
        o,
        "docker_upgrade_guard_audit_severity {}",
        r.severity.exit_code()
    );

    head(
        &mut o,
        "docker_upgrade_guard_exposed",
        "1 if the next upgrade of this installed package stops a watched unit.",
    );
    for p in r.packages.iter().filter(|p| p.installed) {
        let _ = writeln!(
            o,
            "docker_upgrade_guard_exposed{{package=\"{}\"}} {}",
            esc(&p.name),
            u8::from(p.exposed)
        );
    }

    head(
        &mut o,
        "docker_upgrade_guard_package_info",
        "Installed watched packages and their versions.",
    );
    for p in r.packages.iter().filter(|p| p.installed) {
        let _ = writeln!(
            o,
            "docker_upgrade_guard_package_info{{package=\"{}\",version=\"{}\"}} 1",
            esc(&p.name),
            esc(p.version.as_deref().unwrap_or(""))
        );
    }

    head(
        &mut o,
        "docker_upgrade_guard_findings",
        "Number of findings by severity.",
    );
    for s in [
        Severity::Ok,
        Severity::Warning,
        Severity::Critical,
        Severity::Unknown,
    ] {
        let n = r.findings.iter().filter(|f| f.severity == s).count();
        let _ = writeln!(
            o,
            "docker_upgrade_guard_findings{{severity=\"{}\"}} {n}",
            s.label().to_ascii_lowercase()
        );
    }

    head(
        &mut o,
        "docker_upgrade_guard_unknowns",
        "Inputs the audit could not read or decide.",
    );
    let unknown = r
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Unknown)
        .count();
    let _ = writeln!(o, "docker_upgrade_guard_unknowns {unknown}");

    head(
        &mut o,
        "docker_upgrade_guard_hooks_installed",
        "1 if this tool's apt and dpkg hooks are installed.",
    );
    let _ = writeln!(
        o,
        "docker_upgrade_guard_hooks_installed {}",
        u8::from(r.system.hooks.installed)
    );

    if let Some(lr) = r.system.live_restore {
        head(
            &mut o,
            "docker_upgrade_guard_live_restore",
            "1 if live-restore is on in /etc/docker/daemon.json.",
        );
        let _ = writeln!(o, "docker_upgrade_guard_live_restore {}", u8::from(lr));
    }

    if let Some(a) = &r.system.containers_at_risk {
        head(
            &mut o,
            "docker_upgrade_guard_containers_at_risk",
            "Running containers without a restart policy that the next upgrade takes down for good.",
        );
        let _ = writeln!(o, "docker_upgrade_guard_containers_at_risk {}", a.count);
    }

    let uu = &r.system.unattended_upgrades;
    head(
        &mut o,
        "docker_upgrade_guard_unattended_upgrades_enabled",
        "1 if unattended-upgrades is installed and enabled (APT::Periodic::Unattended-Upgrade).",
    );
    let _ = writeln!(
        o,
        "docker_upgrade_guard_unattended_upgrades_enabled {}",
        u8::from(uu.enabled)
    );
    head(
        &mut o,
        "docker_upgrade_guard_unattended_upgrades_excluded",
        "1 if unattended-upgrades' Package-Blacklist excludes this package.",
    );
    for p in &r.packages {
        let _ = writeln!(
            o,
            "docker_upgrade_guard_unattended_upgrades_excluded{{package=\"{}\"}} {}",
            esc(&p.name),
            u8::from(uu.excluded.iter().any(|e| e.package == p.name))
        );
    }
    o
}
