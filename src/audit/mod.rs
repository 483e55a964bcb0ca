//! `docker-upgrade-guard audit`: what will the next upgrade do to docker?
//!
//! collect (I/O: facts) → findings (pure: severity) → fixed + diff → report → render.

pub(crate) mod aptconf;
pub(crate) mod collect;
pub(crate) mod containers;
pub(crate) mod facts;
pub(crate) mod findings;
pub(crate) mod fixed;
pub(crate) mod output;
pub(crate) mod pyre;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod system;

use crate::ctx::Ctx;
use facts::Facts;
use findings::{Finding, Kind};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `audit`'s options, checked.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The packages to audit (empty: the config's).
    pub packages: Vec<String>,
    /// The fixed version to diff against: a .deb or a script file.
    pub against: Option<PathBuf>,
    pub format: Format,
    /// Colour the diff (decided: a terminal, no NO_COLOR, or asked for).
    pub color: bool,
    /// Write the report atomically to this file, not stdout.
    pub output: Option<PathBuf>,
}

/// The report's format. The exit code is the same for all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Nagios,
    Prometheus,
    /// node-problem-detector plugin (exit 0 OK or WARNING, 1 CRITICAL, 2 UNKNOWN).
    Npd,
}

/// How bad a finding is. The declaration order is the precedence when combining (the derived
/// `Ord`): OK < WARNING < UNKNOWN < CRITICAL. The monitoring-plugin exit code is another
/// order: [`Severity::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl Severity {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// The monitoring-plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// `--output FILE` could not be written.
pub(crate) const OUTPUT_FAILED: u8 = 4;

pub(crate) fn run(ctx: &Ctx, args: &Options) -> anyhow::Result<ExitCode> {
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
    // The new findings are WARNINGs: in after the more severe ones (no second sort instance).
    let at = findings
        .iter()
        .position(|f| f.severity < Severity::Warning)
        .unwrap_or(findings.len());
    findings.splice(at..at, containers::restart_findings(&facts));

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
    let at_risk = containers::at_risk(ctx, &facts, &findings, &mut notes);
    let mut report = report::Report::new(ctx.root.dir(), &facts, findings, diffs, notes);
    report.system.containers_at_risk = at_risk;
    let out = match args.format {
        Format::Text => render::text::render(&report, args.color),
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
        .and_then(|()| stdout.flush());
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
            diff: crate::diff::unified(&reading.text, &fix.text, &old_header, &new_header),
        });
    }
    out
}
