//! The unified diff shown by `patch --dry-run` (and offered to `audit`): 3 lines of context,
//! the usual `---`/`+++`/`@@` format so that `patch(1)` can apply it.

/// Unified diff of `old` → `new` with the given header names. Empty when the texts are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .missing_newline_hint(true)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_context_and_headers() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nX\nf\ng\nh\n";
        let d = unified(old, new, "installed", "fixed");
        assert_eq!(
            d,
            "--- installed\n+++ fixed\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+X\n f\n g\n h\n"
        );
        assert_eq!(unified(old, old, "a", "b"), "");
    }
}
