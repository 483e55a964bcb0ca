//! `--format npd`: a node-problem-detector custom plugin. NPD reads the exit code (0 OK,
//! 1 NonOK, 2 Unknown) and one line of stdout, cut to its `max_output_length` (80 by default),
//! as the condition's message. A node whose hooks guard it (WARNING) is not a problem for NPD:
//! only an unguarded exposure (CRITICAL) sets the condition. The line is the Nagios headline
//! (same words, one code path: the binary's size is capped).

use crate::audit::report::Report;
use crate::audit::Severity;

/// NPD's default `max_output_length`: longer lines are cut by NPD anyway, so cut them here,
/// on a character boundary, with a visible mark.
pub(crate) const MAX_LINE: usize = 80;

/// The NPD exit status of a verdict.
pub(crate) fn exit_code(s: Severity) -> u8 {
    match s {
        Severity::Ok | Severity::Warning => 0,
        Severity::Critical => 1,
        Severity::Unknown => 2,
    }
}

pub(crate) fn render(r: &Report) -> String {
    let head = match r.severity {
        Severity::Ok => "not exposed",
        Severity::Warning => "guarded",
        Severity::Critical => "exposed",
        Severity::Unknown => "unknown",
    };
    let mut line =
        crate::escape::one_line(&format!("{head}: {}", super::nagios::headline(r))).into_owned();
    // NPD cuts bytes; cut first, on a character boundary.
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE - 3;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
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
