//! Table-driven: hand-built facts → severity, consequence, reference.

use super::*;
use crate::audit::facts::*;
use crate::scripts::classify::{Guard, Site, UnitOp, Unknown, UnknownKind};
use crate::units::{Dep, DepKind, Evidence, Propagated};
use std::path::PathBuf;

const CONTAINERD_PRERM: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true\nfi\n";
const DOCKER_PRERM: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true\nfi\n";

fn site(op: UnitOp, units: &[&str], line: usize) -> Site {
    Site {
        op,
        units: units.iter().map(std::string::ToString::to_string).collect(),
        tool: "deb-systemd-invoke".into(),
        lines: (line, line),
        span: 0..0,
        guard: Guard::Other("[ -d /run/systemd/system ]".into()),
    }
}

fn script(kind: ScriptKind, pkg: &str, reading: Result<ScriptReading, String>) -> ScriptFacts {
    ScriptFacts {
        kind,
        path: PathBuf::from(format!("/var/lib/dpkg/info/{pkg}.{}", kind.name())),
        reading,
        patched_backup: None,
    }
}

fn prerm(pkg: &str, text: &str, stops: Vec<Site>) -> ScriptFacts {
    script(
        ScriptKind::Prerm,
        pkg,
        Ok(ScriptReading {
            text: text.into(),
            stops_on_upgrade: stops,
            ..Default::default()
        }),
    )
}

/// A postinst that starts `units` (and answers No for the other watched units).
fn postinst(pkg: &str, units: &[&str]) -> ScriptFacts {
    let starts = WATCHED
        .iter()
        .map(|u| {
            let a = if units.contains(u) {
                StartAnswer::Yes(vec![site(UnitOp::Start, &[u], 4)])
            } else {
                StartAnswer::No
            };
            (u.to_string(), a)
        })
        .collect();
    script(
        ScriptKind::Postinst,
        pkg,
        Ok(ScriptReading {
            text: "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke start x\nfi\n".into(),
            starts_on_configure: starts,
            ..Default::default()
        }),
    )
}

const WATCHED: [&str; 3] = ["containerd.service", "docker.socket", "docker.service"];

fn pkg(name: &str, version: &str, scripts: Vec<ScriptFacts>) -> PackageFacts {
    PackageFacts {
        name: name.into(),
        version: Some(version.into()),
        state: Some("installed".into()),
        scripts,
    }
}

fn dep(kind: DepKind, target: &str, file: &str, line: usize) -> Dep {
    Dep {
        kind,
        target: target.into(),
        evidence: Evidence {
            file: file.into(),
            line,
            text: format!("{}={target}", kind.key()),
        },
    }
}

/// focal: docker.service BindsTo=containerd.service, docker.socket PartOf=docker.service.
fn focal_units() -> Vec<UnitFacts> {
    let binds = dep(
        DepKind::BindsTo,
        "containerd.service",
        "/lib/systemd/system/docker.service",
        6,
    );
    let partof = dep(
        DepKind::PartOf,
        "docker.service",
        "/lib/systemd/system/docker.socket",
        3,
    );
    let unit = |name: &str, propagation: Vec<Propagated>| UnitFacts {
        name: name.into(),
        found: Ok(true),
        fragment: Some(format!("/lib/systemd/system/{name}").into()),
        masked: false,
        propagation,
        pulls_in: if name == "docker.service" {
            vec!["docker.socket".into(), "containerd.service".into()]
        } else {
            vec![]
        },
    };
    vec![
        unit(
            "containerd.service",
            vec![
                Propagated {
                    unit: "docker.service".into(),
                    chain: vec![binds.clone()],
                },
                Propagated {
                    unit: "docker.socket".into(),
                    chain: vec![binds, partof.clone()],
                },
            ],
        ),
        unit(
            "docker.service",
            vec![Propagated {
                unit: "docker.socket".into(),
                chain: vec![partof],
            }],
        ),
        unit("docker.socket", vec![]),
    ]
}

fn facts(packages: Vec<PackageFacts>, units: Vec<UnitFacts>) -> Facts {
    Facts {
        watched_units: WATCHED
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        packages,
        units,
        ..Default::default()
    }
}

fn guarded(mut f: Facts) -> Facts {
    f.system.hooks = HookFacts {
        apt: true,
        dpkg: true,
        binary: true,
        enabled: true,
    };
    f
}

fn live_restore(mut f: Facts) -> Facts {
    f.system.live_restore = Some(true);
    f
}

fn containerd_focal() -> PackageFacts {
    pkg(
        "containerd",
        "1.3.3-0ubuntu2",
        vec![
            prerm(
                "containerd",
                CONTAINERD_PRERM,
                vec![site(UnitOp::Stop, &["containerd.service"], 4)],
            ),
            postinst("containerd", &["containerd.service"]),
        ],
    )
}

fn docker_focal(post: &[&str]) -> PackageFacts {
    pkg(
        "docker.io",
        "19.03.8-0ubuntu1",
        vec![
            prerm(
                "docker.io",
                DOCKER_PRERM,
                vec![site(UnitOp::Stop, &["docker.service", "docker.socket"], 4)],
            ),
            postinst("docker.io", post),
        ],
    )
}

fn bookworm() -> Vec<PackageFacts> {
    vec![
        pkg(
            "docker.io",
            "20.10.24+dfsg1-1+deb12u1",
            vec![
                prerm("docker.io", DOCKER_PRERM, vec![]),
                postinst("docker.io", &["docker.service"]),
            ],
        ),
        pkg(
            "containerd",
            "1.6.20~ds1-1+deb12u3",
            vec![
                prerm("containerd", CONTAINERD_PRERM, vec![]),
                postinst("containerd", &["containerd.service"]),
            ],
        ),
    ]
}

struct Case {
    name: &'static str,
    facts: Facts,
    severity: Severity,
    /// Expected consequence of the first finding, if any.
    consequence: Option<&'static str>,
    reference: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let unreadable = pkg(
        "docker.io",
        "1",
        vec![script(
            ScriptKind::Prerm,
            "docker.io",
            Err(
                "/var/lib/dpkg/info/docker.io.prerm is not valid UTF-8 (invalid byte at offset 3)"
                    .into(),
            ),
        )],
    );
    let undecided = pkg(
        "docker.io",
        "1",
        vec![script(
            ScriptKind::Prerm,
            "docker.io",
            Ok(ScriptReading {
                text: "#!/bin/sh\neval \"$STOP\"\n".into(),
                unknowns: vec![Unknown {
                    line: 2,
                    kind: UnknownKind::Indirect,
                    reason: "eval".into(),
                }],
                ..Default::default()
            }),
        )],
    );
    let mut postinst_unknown = docker_focal(&[]);
    postinst_unknown.scripts[1] = script(
        ScriptKind::Postinst,
        "docker.io",
        Ok(ScriptReading {
            text: "#!/bin/sh\n$CMD\n".into(),
            starts_on_configure: WATCHED
                .iter()
                .map(|u| {
                    (
                        u.to_string(),
                        StartAnswer::Unknown(vec![Unknown {
                            line: 2,
                            kind: UnknownKind::Unresolved,
                            reason: "variable command".into(),
                        }]),
                    )
                })
                .collect(),
            ..Default::default()
        }),
    );
    let mut with_problem = facts(bookworm(), focal_units());
    with_problem
        .problems
        .push("/var/lib/dpkg/status:12: garbled paragraph skipped".into());
    let mut patched = pkg(
        "docker.io",
        "19.03.8-0ubuntu1",
        vec![prerm("docker.io", DOCKER_PRERM, vec![])],
    );
    patched.scripts[0].patched_backup = Some("/var/lib/docker-upgrade-guard/backups/x".into());
    let not_installed = PackageFacts {
        name: "docker-ce".into(),
        version: None,
        state: None,
        scripts: vec![],
    };

    vec![
        Case {
            name: "bookworm: stop only on remove, Wants=",
            facts: facts(bookworm(), vec![]),
            severity: Severity::Ok,
            consequence: None,
            reference: None,
        },
        Case {
            name: "nothing installed",
            facts: facts(vec![not_installed], vec![]),
            severity: Severity::Ok,
            consequence: None,
            reference: None,
        },
        Case {
            name: "focal containerd + BindsTo",
            facts: facts(vec![containerd_focal()], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next containerd upgrade will stop docker.service and docker.socket and nothing will start them"),
            reference: Some(LP_DEPENDENCY),
        },
        Case {
            name: "focal containerd + BindsTo, hooks installed",
            facts: guarded(facts(vec![containerd_focal()], focal_units())),
            severity: Severity::Warning,
            consequence: Some("the next containerd upgrade will stop docker.service and docker.socket and nothing will start them"),
            reference: Some(LP_DEPENDENCY),
        },
        Case {
            name: "containerd stop+start, only Wants=",
            facts: facts(vec![containerd_focal()], vec![]),
            severity: Severity::Warning,
            consequence: Some("the next containerd upgrade will stop containerd.service until its postinst starts it again; the containers keep running"),
            reference: None,
        },
        Case {
            name: "containerd stop, postinst starts nothing",
            facts: facts(
                vec![pkg(
                    "containerd",
                    "1",
                    vec![prerm(
                        "containerd",
                        CONTAINERD_PRERM,
                        vec![site(UnitOp::Stop, &["containerd.service"], 4)],
                    )],
                )],
                vec![],
            ),
            severity: Severity::Critical,
            consequence: Some("the next containerd upgrade will stop containerd.service and nothing will start it"),
            reference: None,
        },
        Case {
            name: "docker.io prerm always stops, postinst starts nothing",
            facts: facts(vec![docker_focal(&[])], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next docker.io upgrade will stop docker.service and docker.socket and nothing will start them"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "docker.io prerm always stops, postinst starts both, live-restore off",
            facts: facts(vec![docker_focal(&["docker.service", "docker.socket"])], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next docker.io upgrade will stop docker.service and docker.socket until its postinst starts them again, and containers without a restart policy stay down"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "docker.io prerm always stops, postinst starts both, live-restore on",
            facts: live_restore(facts(vec![docker_focal(&["docker.service", "docker.socket"])], focal_units())),
            severity: Severity::Warning,
            consequence: Some("the next docker.io upgrade will stop docker.service and docker.socket until its postinst starts them again; live-restore keeps the containers running meanwhile"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "docker.io postinst starts only the socket: the service stays down",
            facts: facts(vec![docker_focal(&["docker.socket"])], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next docker.io upgrade will stop docker.service and nothing will start it"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "docker.io postinst starts the service, which pulls in the socket (Requires=)",
            facts: facts(vec![docker_focal(&["docker.service"])], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next docker.io upgrade will stop docker.service and docker.socket until its postinst starts them again, and containers without a restart policy stay down"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "postinst undecidable: assumed not started",
            facts: facts(vec![postinst_unknown], focal_units()),
            severity: Severity::Critical,
            consequence: Some("the next docker.io upgrade will stop docker.service and docker.socket and nothing will start them (could not tell whether the postinst starts docker.service and docker.socket; assumed not)"),
            reference: Some(LP_DOCKER_PRERM),
        },
        Case {
            name: "unreadable prerm",
            facts: facts(vec![unreadable], vec![]),
            severity: Severity::Unknown,
            consequence: Some("the audit cannot tell what the prerm of the next docker.io upgrade does to the watched units"),
            reference: None,
        },
        Case {
            name: "prerm with an undecidable line",
            facts: facts(vec![undecided], vec![]),
            severity: Severity::Unknown,
            consequence: Some("the audit cannot tell what the next docker.io upgrade does to the watched units"),
            reference: None,
        },
        Case {
            name: "garbled status paragraph",
            facts: with_problem,
            severity: Severity::Unknown,
            consequence: Some("the audit cannot tell everything the next upgrade will do to the watched units"),
            reference: None,
        },
        Case {
            name: "patched script: safe because patched",
            facts: facts(vec![patched], focal_units()),
            severity: Severity::Ok,
            consequence: Some("the next docker.io upgrade will not stop the watched units through this script"),
            reference: None,
        },
        Case {
            name: "critical beats unknown",
            facts: {
                let mut f = facts(vec![containerd_focal()], focal_units());
                f.problems.push("x: cannot load".into());
                f
            },
            severity: Severity::Critical,
            consequence: Some("the next containerd upgrade will stop docker.service and docker.socket and nothing will start them"),
            reference: Some(LP_DEPENDENCY),
        },
        Case {
            name: "unknown beats warning",
            facts: {
                let mut f = guarded(facts(vec![containerd_focal()], focal_units()));
                f.problems.push("x: cannot load".into());
                f
            },
            severity: Severity::Unknown,
            consequence: Some("the audit cannot tell everything the next upgrade will do to the watched units"),
            reference: None,
        },
    ]
}

#[test]
fn table() {
    for c in cases() {
        let findings = evaluate(&c.facts);
        assert_eq!(overall(&findings), c.severity, "{}: {findings:#?}", c.name);
        let first = findings.first();
        assert_eq!(
            first.map(|f| f.consequence.as_str()),
            c.consequence,
            "{}",
            c.name
        );
        assert_eq!(
            first.and_then(|f| f.reference.as_deref()),
            c.reference,
            "{}",
            c.name
        );
    }
}

#[test]
fn dependency_finding_names_prerm_line_and_bindsto() {
    let f = &evaluate(&facts(vec![containerd_focal()], focal_units()))[0];
    assert_eq!(f.package.as_deref(), Some("containerd"));
    assert_eq!(f.version.as_deref(), Some("1.3.3-0ubuntu2"));
    assert_eq!(f.script.as_deref(), Some("prerm"));
    assert_eq!(
        f.evidence,
        vec![
            EvidenceLine {
                file: "/var/lib/dpkg/info/containerd.prerm".into(),
                line: 4,
                text: "\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true".into(),
            },
            EvidenceLine {
                file: "/lib/systemd/system/docker.service".into(),
                line: 6,
                text: "BindsTo=containerd.service".into(),
            },
            EvidenceLine {
                file: "/lib/systemd/system/docker.socket".into(),
                line: 3,
                text: "PartOf=docker.service".into(),
            },
        ]
    );
    let units: Vec<(&str, Option<bool>)> = f
        .units
        .iter()
        .map(|u| (u.unit.as_str(), u.started_again))
        .collect();
    assert_eq!(
        units,
        [
            ("containerd.service", Some(true)),
            ("docker.service", Some(false)),
            ("docker.socket", Some(false))
        ]
    );
    assert!(
        f.summary
            .contains("BindsTo=containerd.service in /lib/systemd/system/docker.service:6"),
        "{}",
        f.summary
    );
    assert!(f.remedies[0].contains("docker-upgrade-guard patch --package containerd"));
    assert!(f
        .remedies
        .iter()
        .any(|r| r.contains("99zz-docker-upgrade-guard")));
    assert!(
        f.remedies.iter().any(
            |r| r.contains("copy docker.service to /etc/systemd/system/")
                && r.contains("`BindsTo=containerd.service`")
                && !r.contains(".d/override.conf")
        ),
        "{:?}",
        f.remedies
    );
}

#[test]
fn guarded_drops_the_install_hook_remedy() {
    let f = &evaluate(&guarded(facts(vec![docker_focal(&[])], vec![])))[0];
    assert!(!f
        .remedies
        .iter()
        .any(|r| r.contains("99zz-docker-upgrade-guard")));
    assert!(f.remedies.iter().any(|r| r.contains("patch first")));
}

#[test]
fn join_and_reads_like_english() {
    let s = |v: &[&str]| {
        join_and(
            &v.iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(s(&[]), "nothing");
    assert_eq!(s(&["a"]), "a");
    assert_eq!(s(&["a", "b"]), "a and b");
    assert_eq!(s(&["a", "b", "c"]), "a, b and c");
}
