//! Stop propagation: which units systemd stops along with one that is stopped explicitly.

use super::{Dep, Unit};
use std::collections::{HashMap, VecDeque};

/// A unit stopped because another one was, and the chain of settings that explains it
/// (`docker.service BindsTo=containerd.service`, then `docker.socket PartOf=docker.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagated {
    pub unit: String,
    pub chain: Vec<Dep>,
}

/// Which of `units` stop (transitively) when `stopped` is stopped explicitly.
///
/// A unit U stops when a stopped unit T is the target of U's `BindsTo=`, `Requires=`,
/// `Requisite=`, `PartOf=` or `StopPropagatedFrom=`, or when T carries `PropagatesStopTo=U`.
/// `Wants=` never propagates; masked units carry no settings. Breadth-first, so each chain is a
/// shortest one; the result is in the order units are reached (ties: the order of `units`).
pub fn stop_propagation(units: &[Unit], stopped: &str) -> Vec<Propagated> {
    // Edges: stopping `from` stops `to`, because of `dep`.
    let mut edges: Vec<(&str, &str, &Dep)> = Vec::new();
    for u in units.iter().filter(|u| !u.masked) {
        for d in u.deps.iter().filter(|d| d.kind.propagates_stop()) {
            if d.kind.stop_flows_to_target() {
                edges.push((u.name.as_str(), d.target.as_str(), d));
            } else {
                edges.push((d.target.as_str(), u.name.as_str(), d));
            }
        }
    }
    let mut chains: HashMap<&str, Vec<Dep>> = HashMap::new();
    chains.insert(stopped, Vec::new());
    let mut queue = VecDeque::from([stopped]);
    let mut out = Vec::new();
    while let Some(cur) = queue.pop_front() {
        let base = chains.get(cur).cloned().unwrap_or_default();
        for (from, to, dep) in &edges {
            if *from != cur || chains.contains_key(to) {
                continue;
            }
            let mut chain = base.clone();
            chain.push((*dep).clone());
            chains.insert(to, chain.clone());
            queue.push_back(to);
            out.push(Propagated {
                unit: to.to_string(),
                chain,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{DepKind, Evidence};
    use std::path::PathBuf;

    fn unit(name: &str, settings: &[(DepKind, &str)]) -> Unit {
        Unit {
            name: name.to_string(),
            deps: settings
                .iter()
                .enumerate()
                .map(|(i, (kind, target))| Dep {
                    kind: *kind,
                    target: target.to_string(),
                    evidence: Evidence {
                        file: PathBuf::from(format!("/lib/systemd/system/{name}")),
                        line: i + 1,
                        text: format!("{}={}", kind.key(), target),
                    },
                })
                .collect(),
            ..Unit::default()
        }
    }

    fn summary(v: &[Propagated]) -> Vec<(String, Vec<String>)> {
        v.iter()
            .map(|p| {
                (
                    p.unit.clone(),
                    p.chain
                        .iter()
                        .map(|d| format!("{}:{}", d.evidence.file.display(), d.evidence.text))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn propagation_table() {
        use DepKind::*;
        let focal = vec![
            unit("containerd.service", &[]),
            unit(
                "docker.service",
                &[(BindsTo, "containerd.service"), (Requires, "docker.socket")],
            ),
            unit("docker.socket", &[(PartOf, "docker.service")]),
        ];
        let r = stop_propagation(&focal, "containerd.service");
        assert_eq!(
            summary(&r),
            vec![
                (
                    "docker.service".to_string(),
                    vec![
                        "/lib/systemd/system/docker.service:BindsTo=containerd.service".to_string()
                    ]
                ),
                (
                    "docker.socket".to_string(),
                    vec![
                        "/lib/systemd/system/docker.service:BindsTo=containerd.service".to_string(),
                        "/lib/systemd/system/docker.socket:PartOf=docker.service".to_string(),
                    ]
                ),
            ]
        );
        // Stopping the socket stops the service (Requires=), which does not stop containerd.
        let r = stop_propagation(&focal, "docker.socket");
        assert_eq!(
            r.iter().map(|p| p.unit.as_str()).collect::<Vec<_>>(),
            ["docker.service"]
        );

        let bookworm = vec![
            unit("containerd.service", &[]),
            unit(
                "docker.service",
                &[(Wants, "containerd.service"), (Requires, "docker.socket")],
            ),
            unit("docker.socket", &[(PartOf, "docker.service")]),
        ];
        assert!(stop_propagation(&bookworm, "containerd.service").is_empty());

        let mut masked = focal.clone();
        masked[1].masked = true;
        assert!(stop_propagation(&masked, "containerd.service").is_empty());

        let reverse = vec![
            unit(
                "containerd.service",
                &[(PropagatesStopTo, "docker.service")],
            ),
            unit("kubelet.service", &[(StopPropagatedFrom, "docker.service")]),
            unit("docker.service", &[]),
        ];
        assert_eq!(
            summary(&stop_propagation(&reverse, "containerd.service")),
            vec![
                (
                    "docker.service".to_string(),
                    vec![
                        "/lib/systemd/system/containerd.service:PropagatesStopTo=docker.service"
                            .to_string()
                    ]
                ),
                (
                    "kubelet.service".to_string(),
                    vec![
                        "/lib/systemd/system/containerd.service:PropagatesStopTo=docker.service"
                            .to_string(),
                        "/lib/systemd/system/kubelet.service:StopPropagatedFrom=docker.service"
                            .to_string(),
                    ]
                ),
            ]
        );

        // A cycle ends.
        let cycle = vec![
            unit("a.service", &[(BindsTo, "b.service")]),
            unit("b.service", &[(BindsTo, "a.service")]),
        ];
        assert_eq!(summary(&stop_propagation(&cycle, "a.service")).len(), 1);
    }
}
