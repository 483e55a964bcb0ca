//! The unified diff of an installed script against its fixed (`audit`) or repaired (`patch`)
//! version, and its colouring.

use similar::TextDiff;

/// Unified diff with 3 lines of context and `--- old_header` / `+++ new_header`, in the form
/// GNU `patch` applies. Empty when the texts are equal.
pub(crate) fn unified(old: &str, new: &str, old_header: &str, new_header: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_header, new_header)
        .to_string()
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// ANSI colours for a terminal: headers bold, hunks cyan, removals red, additions green.
pub(crate) fn colorize(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + diff.len() / 4);
    for line in diff.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let colour = if body.starts_with("--- ") || body.starts_with("+++ ") {
            Some(BOLD)
        } else if body.starts_with("@@") {
            Some(CYAN)
        } else if body.starts_with('-') {
            Some(RED)
        } else if body.starts_with('+') {
            Some(GREEN)
        } else {
            None
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
                out.push_str(nl);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\nfi\nexit 0\n";
    const NEW: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\nfi\nexit 0\n";

    #[test]
    fn exact_unified_text() {
        let d = unified(OLD, NEW, "installed docker.io 1.0 prerm", "fixed x");
        assert_eq!(
            d,
            "--- installed docker.io 1.0 prerm\n+++ fixed x\n@@ -1,6 +1,6 @@\n #!/bin/sh\n set -e\n-if [ -d /run/systemd/system ]; then\n+if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n \tdeb-systemd-invoke stop 'docker.service' >/dev/null || true\n fi\n exit 0\n"
        );
        assert_eq!(unified(OLD, OLD, "a", "b"), "");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified("a\nb", "a\nc", "x", "y");
        assert!(d.contains("\\ No newline at end of file"), "{d}");
    }

    #[test]
    fn colours_only_marked_lines() {
        let c = colorize("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n");
        assert_eq!(
            c,
            "\x1b[1m--- a\x1b[0m\n\x1b[1m+++ b\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-x\x1b[0m\n\x1b[32m+y\x1b[0m\n z\n"
        );
    }
}
