//! Robustness: the classifier never panics on arbitrary text, and any repair it makes is a
//! script that still parses, stops nothing watched on upgrade, and repairs to nothing.

use docker_upgrade_guard::scripts::classify::analyse;
use docker_upgrade_guard::scripts::repair::repair;
use docker_upgrade_guard::scripts::stops_on_upgrade;
use proptest::prelude::*;

const WATCHED: &[&str] = &["docker.service", "docker.socket", "containerd.service"];

/// Fragments that make up maintainer scripts, so that random sequences reach deep paths.
const PIECES: &[&str] = &[
    "if ",
    "then ",
    "elif ",
    "else ",
    "fi",
    "case ",
    "\"$1\" ",
    " in ",
    "esac",
    ";;",
    ")",
    "(",
    "; ",
    "\n",
    " && ",
    " || ",
    "! ",
    "[ ",
    " ]",
    "\"$1\" = remove",
    "\"$1\" != upgrade",
    "[ -d /run/systemd/system ]",
    "systemctl stop docker",
    "deb-systemd-invoke stop 'docker.service' 'docker.socket'",
    "invoke-rc.d docker stop",
    "service containerd stop",
    "/etc/init.d/docker stop",
    " >/dev/null",
    "'",
    "\"",
    "\\\n",
    "#",
    "$(",
    "`",
    "{ ",
    " }",
    "f() ",
    "X=stop ",
    "$X ",
    "_dh_action=restart\n",
    "deb-systemd-invoke $_dh_action containerd ",
    "<<EOF\n",
    "EOF\n",
    "while ",
    "do ",
    "done",
    "for u in docker containerd; ",
    "eval ",
    "\"$@\"",
    "upgrade) ",
    "remove|purge) ",
    "*) ",
    "true",
    "exit 1",
    "é",
    "\t",
];

fn dash_ok(text: &str) -> bool {
    std::process::Command::new("/bin/dash")
        .args(["-n", "-c", text])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn script() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

const SIMPLE: &[&str] = &[
    "systemctl stop docker",
    "deb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true",
    "invoke-rc.d docker stop || exit 1",
    "service containerd stop",
    "systemctl --no-block stop \\\n\tcontainerd.service",
    "deb-systemd-invoke start docker.socket",
    "echo \"stop docker\"",
    "true",
    "[ -d /run/systemd/system ] && systemctl stop docker.socket",
    "X=1",
];
const CONDS: &[&str] = &[
    "[ -d /run/systemd/system ]",
    "[ \"$1\" = remove ]",
    "[ \"$1\" != remove ]",
    "[ \"$1\" = upgrade ] || [ \"$1\" = remove ]",
    "! [ \"$1\" = purge ]",
    "test \"x$1\" = xremove",
    "[ -x /etc/init.d/docker ] && [ \"$1\" = remove ]",
];
const PATS: &[&str] = &["remove", "upgrade|remove", "abort-*", "*", "\"upgrade\""];

/// Syntactically valid scripts built from maintainer-script shapes.
fn valid_script() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SIMPLE).prop_map(String::from);
    let stmt = leaf.prop_recursive(4, 24, 4, |inner| {
        let body = prop::collection::vec(inner, 1..3);
        prop_oneof![
            (prop::sample::select(CONDS), body.clone(), any::<bool>()).prop_map(|(c, b, nl)| {
                let (open, sep) = if nl { ("\n", "\n") } else { (" ", "; ") };
                format!("if {c}; then{open}{}{sep}fi", b.join(sep))
            }),
            (prop::sample::select(CONDS), body.clone(), body.clone()).prop_map(|(c, a, b)| {
                format!("if {c}; then\n{}\nelse\n{}\nfi", a.join("\n"), b.join("\n"))
            }),
            (prop::sample::select(PATS), body.clone())
                .prop_map(|(p, b)| { format!("case \"$1\" in\n\t{p}) {} ;;\nesac", b.join("; ")) }),
            (prop::sample::select(CONDS), body)
                .prop_map(|(c, b)| format!("{c} && {{ {}; }}", b.join("; "))),
        ]
    });
    prop::collection::vec(stmt, 1..5).prop_map(|v| format!("#!/bin/sh\nset -e\n{}\n", v.join("\n")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// On valid scripts: the repair exists whenever a watched stop runs on upgrade, dash
    /// accepts it, and it is a fixed point.
    #[test]
    fn valid_scripts_are_always_repaired(text in valid_script()) {
        prop_assert!(dash_ok(&text), "generator made an invalid script:\n{}", text);
        let a = analyse(&text);
        prop_assert!(a.unknowns.is_empty(), "{:?}\n{}", a.unknowns, text);
        let harmful = !stops_on_upgrade(&a, WATCHED).is_empty();
        let fixed = repair(&text, &a, WATCHED);
        prop_assert_eq!(harmful, fixed.is_some(), "{}", text);
        if let Some(fixed) = fixed {
            prop_assert!(dash_ok(&fixed), "dash rejects:\n{}", fixed);
            let b = analyse(&fixed);
            prop_assert!(stops_on_upgrade(&b, WATCHED).is_empty());
            prop_assert_eq!(repair(&fixed, &b, WATCHED), None);
            prop_assert_eq!(b.sites.len(), a.sites.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_repairs_are_sound(text in script()) {
        let a = analyse(&text);
        for s in &a.sites {
            prop_assert!(s.span.end <= text.len() && s.span.start <= s.span.end);
            prop_assert!(s.lines.0 >= 1 && s.lines.0 <= s.lines.1);
        }
        if let Some(fixed) = repair(&text, &a, WATCHED) {
            let b = analyse(&fixed);
            prop_assert!(!b.unparsable());
            prop_assert!(stops_on_upgrade(&b, WATCHED).is_empty());
            prop_assert_eq!(repair(&fixed, &b, WATCHED), None);
            // What dash accepts before the repair, it accepts after it.
            if dash_ok(&text) {
                prop_assert!(dash_ok(&fixed), "dash rejects the repair of {:?}:\n{}", text, fixed);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in "\\PC{0,200}") {
        let a = analyse(&text);
        let _ = repair(&text, &a, WATCHED);
    }
}
