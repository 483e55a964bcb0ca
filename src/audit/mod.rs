//! `docker-upgrade-guard audit`: what will the next upgrade do to docker?
//!
//! collect (I/O: facts) → findings (pure: severity) → fixed + diff → report → render.

pub mod aptconf;
pub mod collect;
pub mod diff;
pub mod facts;
pub mod findings;
pub mod fixed;
pub mod output;
pub mod pyre;
pub mod render;
pub mod report;
pub mod system;

use crate::cli::{AuditArgs, Color, Ctx, Format};
use facts::Facts;
use findings::{Finding, Kind};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Monitoring-plugin exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// Precedence when combining: CRITICAL > UNKNOWN > WARNING > OK.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Unknown => 2,
            Severity::Critical => 3,
        }
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// `--output FILE` could not be written.
pub const OUTPUT_FAILED: u8 = 4;

pub fn run(ctx: &Ctx, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let mut notes = Vec::new();
    let config = load_config(ctx, &mut notes);
    if let Some(bad) = args
        .packages
        .iter()
        .find(|p| !crate::dpkg::valid_package_name(p))
    {
        anyhow::bail!("{bad:?} is not a Debian package name ([a-z0-9][a-z0-9+.-]+)");
    }
    let packages = if args.packages.is_empty() {
        config.packages.clone()
    } else {
        args.packages.clone()
    };
    let facts = collect::collect(&ctx.root, &packages, &config.units);
    let mut findings = findings::evaluate(&facts);

    let against = match &args.against {
        None => None,
        Some(p) => match fixed::open_against(p) {
            Ok(a) => Some(a),
            Err(e) => {
                // The user asked for this comparison: not being able to make it is UNKNOWN.
                findings.push(unknown_against(format!("--against: {e:#}")));
                None
            }
        },
    };
    let diffs = diffs(ctx, &facts, &findings, against.as_ref(), &mut notes);
    if let Some(fixed::Against::Deb { package, .. }) = &against {
        if !diffs.iter().any(|d| &d.package == package) {
            notes.push(format!(
                "--against is a {package} package; no harmful installed script of {package} to compare it with"
            ));
        }
    }
    let report = report::Report::new(ctx.root.dir(), &facts, findings, diffs, notes);
    let color = use_color(args.color);
    let out = match args.format {
        Format::Text => render::text::render(&report, color),
        Format::Json => render::json::render(&report),
        Format::Nagios => render::nagios::render(&report),
        Format::Prometheus => render::prometheus::render(&report),
        Format::Npd => render::npd::render(&report),
    };
    if let Some(path) = &args.output {
        // Not a verdict (3 would read as UNKNOWN, which a timer's SuccessExitStatus accepts):
        // the report is not where the reader looks, so the run failed.
        if let Err(e) = output::write(&ctx.root, path, printable(&out, args.format).as_bytes()) {
            errln!("docker-upgrade-guard: --output: {e:#}");
            return Ok(ExitCode::from(OUTPUT_FAILED));
        }
        return Ok(exit_code(args.format, &report));
    }
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not the audit's failure; the exit code still tells.
    let _ = stdout
        .write_all(printable(&out, args.format).as_bytes())
        .and_then(|_| stdout.flush());
    Ok(exit_code(args.format, &report))
}

fn exit_code(format: Format, report: &report::Report) -> ExitCode {
    ExitCode::from(match format {
        Format::Npd => render::npd::exit_code(report.severity),
        _ => report.exit_code,
    })
}

fn unknown_against(summary: String) -> Finding {
    let mut f = Finding::bare(
        Severity::Unknown,
        Kind::Unknown,
        summary,
        "the audit cannot compare with the version given by --against".to_string(),
    );
    f.remedies = vec!["give --against a .deb or a maintainer script file".to_string()];
    f
}

/// The config file only if there is one: the defaults need no file.
fn load_config(ctx: &Ctx, notes: &mut Vec<String>) -> crate::config::Config {
    let path = ctx.root.path(crate::config::CONFIG_PATH);
    if std::fs::symlink_metadata(&path).is_err() {
        return crate::config::Config::default();
    }
    crate::config::load(&ctx.root).unwrap_or_else(|e| {
        notes.push(format!(
            "{e:#}; using the default watched packages and units"
        ));
        crate::config::Config::default()
    })
}

/// The report as it may reach a terminal, every control character from a package's files
/// escaped. Text is escaped by its renderer (before its colours are added); JSON is left as
/// serde wrote it (it escapes control characters itself, and `\xNN` would not be JSON).
fn printable(out: &str, format: Format) -> std::borrow::Cow<'_, str> {
    match format {
        Format::Text | Format::Json | Format::Npd => std::borrow::Cow::Borrowed(out),
        Format::Nagios | Format::Prometheus => crate::escape::for_terminal(out),
    }
}

fn use_color(c: Color) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// One diff per harmful installed script (exposure findings), against its fixed version.
fn diffs(
    ctx: &Ctx,
    facts: &Facts,
    findings: &[Finding],
    against: Option<&fixed::Against>,
    notes: &mut Vec<String>,
) -> Vec<report::ScriptDiff> {
    let watched: Vec<&str> = facts.watched_units.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for f in findings.iter().filter(|f| f.kind == Kind::Exposure) {
        let Some(pkg) = facts
            .packages
            .iter()
            .find(|p| Some(&p.name) == f.package.as_ref())
        else {
            continue;
        };
        let Some(script) = pkg
            .scripts
            .iter()
            .find(|s| Some(s.kind.name()) == f.script.as_deref())
        else {
            continue;
        };
        let Ok(reading) = &script.reading else {
            continue;
        };
        let Some(fix) = fixed::fixed_for(&ctx.root, against, pkg, script, reading, &watched, notes)
        else {
            notes.push(format!(
                "{}: no fixed version to compare with",
                script.path.display()
            ));
            continue;
        };
        let version = pkg.version.clone();
        let old_header = format!(
            "installed {} {} {}",
            pkg.name,
            version.as_deref().unwrap_or("?"),
            script.kind.name()
        );
        let new_header = format!("fixed {}", fix.source);
        out.push(report::ScriptDiff {
            package: pkg.name.clone(),
            version,
            script: script.kind.name().to_string(),
            path: script.path.display().to_string(),
            fixed_source: fix.source.clone(),
            diff: diff::unified(&reading.text, &fix.text, &old_header, &new_header),
        });
    }
    out
}
