//! What a unit name is: systemd's rules, and the ONE list of unit type suffixes.

/// The unit types systemd knows (the part after the last dot).
const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "slice",
    "scope",
];

/// systemd's rules for a unit name (a template without instance is not a valid dependency).
pub fn is_valid_unit_name(name: &str) -> bool {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    name.len() <= 255
        && !stem.is_empty()
        && UNIT_SUFFIXES.contains(&suffix)
        && !stem.ends_with('@')
        && !stem.starts_with('@')
        && stem.matches('@').count() <= 1
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// Whether `name` ends in `.service`, `.socket`, ... (any unit type).
pub fn has_unit_suffix(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, suffix)| UNIT_SUFFIXES.contains(&suffix))
}
