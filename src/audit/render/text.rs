//! `--format text`: for a person at a terminal.

use crate::audit::findings::Finding;
use crate::audit::report::Report;
use crate::diff::colorize;
use std::fmt::Write;

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn finding(o: &mut String, f: &Finding) {
    let what = match (&f.package, &f.version, &f.script) {
        (Some(p), v, Some(s)) => format!("{p} {} {s}", v.as_deref().unwrap_or("?")),
        _ => String::new(),
    };
    let _ = writeln!(o, "{:<8}  {}", f.severity.label(), what);
    let _ = writeln!(o, "  {}", f.summary);
    let _ = writeln!(o, "  consequence: {}", f.consequence);
    if !f.evidence.is_empty() {
        let _ = writeln!(o, "  evidence:");
        for e in &f.evidence {
            let _ = writeln!(o, "    {}:{}: {}", e.file, e.line, e.text.trim_end());
        }
    }
    for u in &f.units {
        let again = match u.started_again {
            Some(true) => {
                let lines: Vec<String> = u.started_by.iter().map(|e| e.line.to_string()).collect();
                format!("started again by the postinst (line {})", lines.join(", "))
            }
            Some(false) => "NOT started again".to_string(),
            None => "cannot tell whether it is started again".to_string(),
        };
        let via = if u.via.is_empty() {
            "stopped by the script".to_string()
        } else {
            format!("stopped with it: {}", u.via.join("; "))
        };
        let _ = writeln!(o, "  unit {}: {via}; {again}", u.unit);
    }
    if let Some(r) = &f.reference {
        let _ = writeln!(o, "  reference: {r}");
    }
    for r in &f.remedies {
        let _ = writeln!(o, "  remedy: {r}");
    }
    o.push('\n');
}

pub(crate) fn render(r: &Report, color: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "docker-upgrade-guard audit: {}", r.severity.label());
    if r.root != "/" {
        let _ = writeln!(o, "root: {}", r.root);
    }
    o.push('\n');
    for f in &r.findings {
        finding(&mut o, f);
    }
    if r.findings.is_empty() {
        let _ = writeln!(
            o,
            "No installed script of a watched package stops {} on upgrade.\n",
            r.watched_units.join(", ")
        );
    }
    let _ = writeln!(o, "packages:");
    for p in &r.packages {
        let state = match (&p.version, &p.state) {
            (Some(v), Some(s)) => format!("{v} ({s})"),
            _ => "not installed".to_string(),
        };
        let _ = writeln!(
            o,
            "  {:<14} {state}{}",
            p.name,
            if p.exposed { "  EXPOSED" } else { "" }
        );
    }
    let _ = writeln!(o, "units:");
    for u in &r.units {
        let where_ = match (u.found, &u.fragment) {
            (None, _) => "could not be loaded".to_string(),
            (Some(false), _) => "no unit file".to_string(),
            (Some(true), Some(f)) => f.clone(),
            (Some(true), None) => "drop-ins only".to_string(),
        };
        let stops = if u.stops_with_it.is_empty() {
            String::new()
        } else {
            format!("; stopping it also stops {}", u.stops_with_it.join(", "))
        };
        let _ = writeln!(
            o,
            "  {:<20} {where_}{}{stops}",
            u.name,
            if u.masked { " (masked)" } else { "" }
        );
    }
    let s = &r.system;
    let _ = writeln!(o, "system:");
    let _ = writeln!(
        o,
        "  docker live-restore: {}",
        match s.live_restore {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown (see notes)",
        }
    );
    let _ = writeln!(
        o,
        "  docker-upgrade-guard hooks installed: {} (apt snippet: {}, dpkg snippet: {}, binary: {}, enabled in config.toml: {})",
        yes_no(s.hooks.installed),
        yes_no(s.hooks.apt),
        yes_no(s.hooks.dpkg),
        yes_no(s.hooks.binary),
        yes_no(s.hooks.enabled)
    );
    if let Some(a) = &s.containers_at_risk {
        let _ = writeln!(
            o,
            "  containers at risk: {}",
            a.summary.as_deref().unwrap_or("none")
        );
    }
    let uu = &s.unattended_upgrades;
    let _ = writeln!(
        o,
        "  unattended-upgrades: {}",
        match (uu.installed, uu.enabled) {
            (Some(false), _) => "not installed",
            (_, true) => "enabled",
            (_, false) => "disabled",
        }
    );
    let excluded = if uu.excluded.is_empty() {
        "none of the watched packages".to_string()
    } else {
        uu.excluded
            .iter()
            .map(|e| format!("{} (\"{}\")", e.package, e.entry))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(o, "  Package-Blacklist excludes: {excluded}");
    if !r.notes.is_empty() {
        let _ = writeln!(o, "notes:");
        for n in &r.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    // Everything above quotes package files: escaped here, before any colour is added, so that
    // the only escape sequences in the output are the diff's own colours.
    let mut o = crate::escape::for_terminal(&o).into_owned();
    for d in &r.diffs {
        o.push('\n');
        let diff = crate::escape::for_terminal(&d.diff);
        if color {
            o.push_str(&colorize(&diff));
        } else {
            o.push_str(&diff);
        }
    }
    o
}
