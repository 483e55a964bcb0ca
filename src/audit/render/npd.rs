//! `--format npd`: a node-problem-detector custom plugin. NPD reads the exit code (0 OK,
//! 1 NonOK, 2 Unknown) and one line of stdout, cut to its `max_output_length` (80 by default),
//! as the condition's message. A node whose hooks guard it (WARNING) is not a problem for NPD:
//! only an unguarded exposure (CRITICAL) sets the condition.

use crate::audit::findings::Kind;
use crate::audit::report::Report;
use crate::audit::Severity;

/// NPD's default `max_output_length`: longer lines are cut by NPD anyway, so cut them here,
/// on a character boundary, with a visible mark.
pub const MAX_LINE: usize = 80;

/// The NPD exit status of a verdict.
pub fn exit_code(s: Severity) -> u8 {
    match s {
        Severity::Ok | Severity::Warning => 0,
        Severity::Critical => 1,
        Severity::Unknown => 2,
    }
}

pub fn render(r: &Report) -> String {
    let worst = r.findings.iter().find(|f| f.severity == r.severity);
    let mut line = match (r.severity, worst) {
        (Severity::Ok, _) | (_, None) => "not exposed".to_string(),
        (s, Some(f)) => {
            let what = match (&f.package, &f.script) {
                (Some(p), Some(sc)) if f.kind == Kind::Exposure && !f.units.is_empty() => {
                    let units: Vec<&str> = f.units.iter().map(|u| u.unit.as_str()).collect();
                    format!("{p} {sc} stops {}", units.join(","))
                }
                _ => f.summary.clone(),
            };
            let head = match s {
                Severity::Warning => "guarded",
                Severity::Critical => "exposed",
                _ => "unknown",
            };
            let more = r.findings.iter().filter(|g| g.severity == s).count() - 1;
            let more = if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            };
            format!("{head}: {what}{more}")
        }
    };
    line = crate::escape::one_line(&line).into_owned();
    if line.len() > MAX_LINE {
        let mut end = MAX_LINE - 3;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(Severity::Ok), 0);
        assert_eq!(exit_code(Severity::Warning), 0);
        assert_eq!(exit_code(Severity::Critical), 1);
        assert_eq!(exit_code(Severity::Unknown), 2);
    }
}
