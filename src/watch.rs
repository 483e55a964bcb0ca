//! The defaults: which packages and units the tool watches, and which package ships which unit.

/// Packages whose maintainer scripts can stop docker or containerd.
pub(crate) const DEFAULT_PACKAGES: &[&str] = &[
    "docker.io",
    "containerd",
    "runc",
    "docker-ce",
    "containerd.io",
];

/// Units recorded before an operation and started again after it, in start order:
/// containerd first, then the socket, then the daemon.
pub(crate) const DEFAULT_UNITS: &[&str] =
    &["containerd.service", "docker.socket", "docker.service"];

/// Packages known to ship a unit (used to attribute a stop and to notice a removed package).
pub(crate) fn packages_shipping(unit: &str) -> &'static [&'static str] {
    match unit {
        "docker.service" | "docker.socket" => &["docker.io", "docker-ce"],
        "containerd.service" => &["containerd", "containerd.io"],
        _ => &[],
    }
}

/// The start order for a set of units: the default order first, then any others as given.
pub(crate) fn start_order<'a>(units: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = DEFAULT_UNITS
        .iter()
        .filter_map(|d| units.iter().find(|u| *u == d).copied())
        .collect();
    out.extend(units.iter().filter(|u| !DEFAULT_UNITS.contains(u)).copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_puts_containerd_first() {
        assert_eq!(
            start_order(&["kubelet.service", "docker.service", "containerd.service"]),
            vec!["containerd.service", "docker.service", "kubelet.service"]
        );
    }
}
