//! `--format json`: the report as documented in docs/audit-json-schema.md.

use crate::audit::report::Report;

pub(crate) fn render(r: &Report) -> String {
    // Serialising plain data with string keys cannot fail; keep a line if it ever does.
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|e| {
        let v = crate::audit::report::SCHEMA_VERSION;
        format!("{{\"schema_version\":{v},\"error\":\"{e}\"}}")
    });
    s.push('\n');
    s
}
