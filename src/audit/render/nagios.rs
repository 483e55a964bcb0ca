//! `--format nagios`: the monitoring-plugin convention. First line
//! `DOCKER-UPGRADE-GUARD <STATE> - <text>|<perfdata>`, then one line per finding.

use crate::audit::findings::Kind;
use crate::audit::report::Report;
use crate::audit::Severity;

/// `|` separates perfdata in plugin output; it must not appear in the text.
fn clean(s: &str) -> String {
    s.replace('|', "/").replace('\n', " ")
}

/// The verdict in one line (without the state word): the worst finding, or what is installed.
/// Also the message of `--format npd`.
pub(crate) fn headline(r: &Report) -> String {
    match r.findings.iter().find(|f| f.severity == r.severity) {
        Some(f) if r.severity != Severity::Ok => {
            let mut t = match (&f.package, &f.script) {
                (Some(p), Some(s)) if f.kind == Kind::Exposure => {
                    format!("{p} {s}: {}", f.consequence)
                }
                _ => f.summary.clone(),
            };
            if let Some(lp) = &f.reference {
                t.push_str(&format!(" ({lp})"));
            }
            let more = r
                .findings
                .iter()
                .filter(|g| g.severity != Severity::Ok)
                .count()
                - 1;
            if more > 0 {
                t.push_str(&format!(" (+{more} more)"));
            }
            t
        }
        _ => {
            let installed: Vec<String> = r
                .packages
                .iter()
                .filter(|p| p.installed)
                .map(|p| format!("{} {}", p.name, p.version.as_deref().unwrap_or("?")))
                .collect();
            if installed.is_empty() {
                "no watched package is installed".to_string()
            } else {
                format!(
                    "no upgrade of {} stops a watched unit",
                    installed.join(", ")
                )
            }
        }
    }
}

pub(crate) fn render(r: &Report) -> String {
    let exposed = r.packages.iter().filter(|p| p.exposed).count();
    let unknown = r
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Unknown)
        .count();
    let text = headline(r);
    let mut out = format!(
        "DOCKER-UPGRADE-GUARD {} - {}|exposed={} unknown={} hooks_installed={} live_restore={}\n",
        r.severity.label(),
        clean(&text),
        exposed,
        unknown,
        u8::from(r.system.hooks.installed),
        u8::from(r.system.live_restore == Some(true)),
    );
    for f in &r.findings {
        out.push_str(&format!("{}: {}\n", f.severity.label(), clean(&f.summary)));
    }
    out
}
