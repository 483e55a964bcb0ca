//! The pre stage: apt's `DPkg::Pre-Install-Pkgs` (`apt-pkgs`). It decides whether this
//! operation concerns us at all (cheaply: most do not), takes the snapshot
//! ([`super::snapshot`]) and runs the just-in-time guard before dpkg runs the old maintainer
//! scripts. (Outside apt there is no pre stage: see [`super::trigger`].)

use super::host::{now_secs, systemd_running};
use super::snapshot::{save, take};
use super::state::HarmfulSite;
use super::stream::Stream;
use super::{say, Env};
use crate::events::EventKind;
use crate::patch::JitOutcome;
use anyhow::Result;

/// `DPkg::Pre-Install-Pkgs`: record only when apt is about to touch a watched package.
pub(crate) fn apt_pkgs(env: &Env, stream: &Stream) -> Result<()> {
    let watched: Vec<_> = stream.touches(&env.config.packages).cloned().collect();
    if watched.is_empty() {
        return Ok(());
    }
    if !systemd_running(env) {
        // A chroot or an image build: maintainer scripts stop nothing without systemd, so
        // there is nothing to record, patch or start. Said once, since a watched package moves.
        say(
            "systemd is not running here (a chroot, or a container without systemd): nothing to do",
        );
        return Ok(());
    }
    let changing: Vec<String> = watched
        .iter()
        .filter(|a| a.replaces_installed())
        .map(|a| a.name.clone())
        .collect();
    let upgrading: Vec<String> = watched
        .iter()
        .filter(|a| {
            a.old_version.is_some()
                && a.new_version.is_some()
                && matches!(a.op, super::stream::Op::Unpack(_))
        })
        .map(|a| a.name.clone())
        .collect();
    // The snapshot reads the scripts before the guard rewrites them (the record names the
    // original lines); the guard runs even when the snapshot failed: it prevents the outage.
    let rec = take(env, &changing);
    let patched = if env.config.jit_patch && !upgrading.is_empty() {
        jit(env, &upgrading)
    } else {
        Vec::new()
    };
    let mut rec = rec?;
    rec.containers = super::containers::before(env, &rec.units);
    rec.command_line = stream.command_line.clone();
    rec.actions = watched;
    for h in &mut rec.harmful {
        h.patched = was_patched(&patched, h);
    }
    save(env, rec)
}

/// Did the just-in-time guard rewrite the script this harmful line is in? Matched on the
/// package name and the script kind exactly; a script it refused to touch was not patched.
pub(crate) fn was_patched(outcomes: &[JitOutcome], h: &HarmfulSite) -> bool {
    outcomes
        .iter()
        .any(|o| o.patched && o.package == h.package && o.kind.name() == h.script)
}

/// Runs the just-in-time guard; returns what it did (one outcome per script it looked at).
fn jit(env: &Env, packages: &[String]) -> Vec<JitOutcome> {
    let r = std::panic::catch_unwind(|| crate::patch::jit_guard(&env.root, &env.config, packages))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error")));
    match r {
        Ok(outcomes) => {
            for o in &outcomes {
                say(&format!("just-in-time guard: {}", o.line));
            }
            // One event per script, so that the journal says which package each is about,
            // and a script left unpatched (the outage will happen) stands out as trouble.
            for o in &outcomes {
                let ev = crate::events::Event {
                    time: crate::events::rfc3339(now_secs()),
                    kind: if o.patched {
                        EventKind::Patched
                    } else {
                        EventKind::Error
                    },
                    package: Some(o.package.clone()),
                    message: format!("just-in-time guard: {}", o.line),
                    ..Default::default()
                };
                if let Err(e) = crate::events::record(&env.root, &ev) {
                    say(&format!("cannot record the event: {e:#}"));
                }
            }
            outcomes
        }
        Err(e) => {
            let line = format!(
                "just-in-time guard: {e:#}; the post stage will still start what gets stopped"
            );
            say(&line);
            // A guard that could not run is trouble the admin must see later too (journal,
            // events.jsonl, `status`), not only in apt's scrollback.
            let ev = crate::events::Event {
                time: crate::events::rfc3339(now_secs()),
                kind: EventKind::Error,
                message: line,
                ..Default::default()
            };
            if let Err(e) = crate::events::record(&env.root, &ev) {
                say(&format!("cannot record the event: {e:#}"));
            }
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::info::ScriptKind;

    fn site(package: &str, script: &str) -> HarmfulSite {
        HarmfulSite {
            package: package.into(),
            version: Some("1".into()),
            script: script.into(),
            units: vec!["containerd.service".into()],
            first_line: 5,
            last_line: 5,
            text: "deb-systemd-invoke stop 'containerd.service'".into(),
            patched: false,
        }
    }

    fn outcome(package: &str, kind: ScriptKind, patched: bool) -> JitOutcome {
        JitOutcome {
            package: package.into(),
            kind,
            patched,
            line: format!("patched {package} {}: ...", kind.name()),
        }
    }

    #[test]
    fn was_patched_matches_package_and_script_exactly() {
        use ScriptKind::*;
        // (row, the harmful site's package and script, what the guard did, patched?)
        type Row<'a> = (
            &'a str,
            (&'a str, &'a str),
            &'a [(&'a str, ScriptKind, bool)],
            bool,
        );
        let rows: &[Row] = &[
            (
                "same package, same script",
                ("containerd", "prerm"),
                &[("containerd", Prerm, true)],
                true,
            ),
            (
                "containerd.io patched says nothing about containerd",
                ("containerd", "prerm"),
                &[("containerd.io", Prerm, true)],
                false,
            ),
            (
                "containerd patched says nothing about containerd.io",
                ("containerd.io", "prerm"),
                &[("containerd", Prerm, true)],
                false,
            ),
            (
                "another script of the package",
                ("containerd", "postrm"),
                &[("containerd", Prerm, true)],
                false,
            ),
            (
                "refused (left alone)",
                ("containerd", "prerm"),
                &[("containerd", Prerm, false)],
                false,
            ),
            ("nothing done", ("docker.io", "prerm"), &[], false),
            (
                "one of several",
                ("docker.io", "prerm"),
                &[("containerd", Prerm, true), ("docker.io", Prerm, true)],
                true,
            ),
        ];
        for (name, (pkg, script), outs, want) in rows {
            let outs: Vec<JitOutcome> = outs.iter().map(|(p, k, d)| outcome(p, *k, *d)).collect();
            assert_eq!(was_patched(&outs, &site(pkg, script)), *want, "row: {name}");
        }
    }
}
