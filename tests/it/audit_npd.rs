//! `audit --format npd`: node-problem-detector's custom-plugin protocol (exit 0 OK, 1 NonOK,
//! 2 Unknown; one short line on stdout) for each verdict, and the shipped monitor config.

use crate::audit_cli::{audit, install_hooks, tree, Run};
use serde_json::Value;
use std::path::Path;

fn npd(root: &Path) -> Run {
    let r = audit(root, &["--format", "npd"]);
    assert_eq!(r.out.lines().count(), 1, "one line: {:?}", r.out);
    assert!(r.out.ends_with('\n'));
    assert!(r.out.len() <= 81, "NPD cuts at 80: {:?}", r.out);
    assert!(
        !r.out.trim_end().chars().any(char::is_control),
        "{:?}",
        r.out
    );
    r
}

#[test]
fn each_verdict_maps_to_its_npd_status_and_line() {
    // OK -> 0.
    let t = tree(&["bookworm"]);
    let r = npd(t.path());
    assert_eq!(r.code, 0);
    assert!(
        r.out.starts_with("not exposed: no upgrade of docker.io "),
        "{}",
        r.out
    );

    // CRITICAL -> NonOK (1), naming the package, script and what it stops.
    let t = tree(&["bookworm", "focal"]);
    let r = npd(t.path());
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.out
            .starts_with("exposed: docker.io prerm: the next docker.io upgrade will stop docker."),
        "{}",
        r.out
    );
    // Cut to NPD's 80 bytes, visibly.
    assert_eq!(r.out.len(), 81, "{}", r.out);
    assert!(r.out.ends_with("...\n"), "{}", r.out);

    // WARNING (guarded by the hooks) -> OK (0): not a node problem.
    install_hooks(t.path());
    let r = npd(t.path());
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.starts_with("guarded: "), "{}", r.out);

    // UNKNOWN -> Unknown (2); the control characters of the file name escaped.
    let t = tree(&["bookworm"]);
    std::fs::write(
        t.path().join("var/lib/dpkg/info/docker.io.prerm"),
        b"#!/bin/sh\n\xff\xfe stop\n",
    )
    .unwrap();
    let r = npd(t.path());
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(r.out.starts_with("unknown: "), "{}", r.out);
}

#[test]
fn a_long_line_is_cut_on_a_character_boundary() {
    let t = tree(&["bookworm"]);
    // A long, multibyte, control-character-laden unit name reaches the UNKNOWN line.
    crate::audit_cli::write(
        t.path(),
        "/etc/systemd/system/docker.service.d/\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\x1b.conf",
        b"[Unit\n\xff\n",
    );
    let r = npd(t.path());
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(r.out.ends_with("...\n"), "{:?}", r.out);
}

#[test]
fn the_monitor_config_has_what_npd_requires() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/node-problem-detector/docker-upgrade-guard.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(v["plugin"], "custom");
    assert_eq!(v["source"], "docker-upgrade-guard");
    let pc = &v["pluginConfig"];
    let secs = |s: &Value| -> u64 {
        let s = s.as_str().unwrap();
        match s.split_at(s.len() - 1) {
            (n, "s") => n.parse().unwrap(),
            (n, "m") => n.parse::<u64>().unwrap() * 60,
            _ => panic!("duration {s}"),
        }
    };
    let interval = secs(&pc["invoke_interval"]);
    let timeout = secs(&pc["timeout"]);
    // A run is killed before the next one is due: checks cannot pile up.
    assert!(timeout < interval, "{pc}");
    assert_eq!(pc["concurrency"], 1);
    assert_eq!(pc["max_output_length"], 80);
    let cond = &v["conditions"][0];
    assert_eq!(cond["type"], "DockerUpgradeExposed");
    assert!(cond["reason"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(cond["message"].as_str().is_some_and(|s| !s.is_empty()));
    let rules = v["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        assert_eq!(rule["type"], "permanent");
        assert_eq!(rule["condition"], "DockerUpgradeExposed");
        assert!(rule["reason"].as_str().is_some_and(|s| !s.is_empty()));
        assert_ne!(rule["reason"], cond["reason"]);
        // NPD refuses a rule timeout above the global one.
        assert!(secs(&rule["timeout"]) <= timeout);
        assert_eq!(rule["path"], "/usr/sbin/docker-upgrade-guard");
        assert_eq!(
            rule["args"],
            serde_json::json!(["audit", "--format", "npd"])
        );
    }
}
