//! `docker-upgrade-guard status`: watched units now, hooks installed or not, the last events.

use crate::ctx::Ctx;
use crate::hook::state;
use crate::service::ServiceManager;
use std::process::ExitCode;

pub(crate) const APT_SNIPPET: &str = "/etc/apt/apt.conf.d/99zz-docker-upgrade-guard";

/// Prints the status; exit 0, or 1 when something needs the admin (broken config, a unit
/// that should run but does not, a record left open).
/// `status`'s options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// How many of the last events to show.
    pub events: usize,
}

pub(crate) fn run(ctx: &Ctx, opts: &Options) -> anyhow::Result<ExitCode> {
    let events = opts.events;
    let root = &ctx.root;
    let mut attention = false;
    let config = match crate::config::load(root) {
        Ok(c) => {
            outln!(
                "config: {} (ok)",
                root.path(crate::config::CONFIG_PATH).display()
            );
            c
        }
        Err(e) => {
            attention = true;
            outln!("config: {e:#}; the hook uses the defaults");
            crate::config::fallback(root)
        }
    };
    outln!(
        "hook: {}",
        if config.enabled {
            "enabled"
        } else {
            "disabled (enabled = false)"
        }
    );
    let p = root.path(APT_SNIPPET);
    outln!(
        "apt hook: {}",
        if p.is_file() {
            format!("installed ({})", p.display())
        } else {
            format!("NOT installed ({} missing)", p.display())
        }
    );
    let db = root.admindir().join(crate::dpkg::triggers::FILE);
    match crate::dpkg::triggers::count(root.admindir(), crate::audit::system::PACKAGE) {
        0 => outln!(
            "dpkg trigger: NOT registered (no interest of ours in {})",
            db.display()
        ),
        n => outln!("dpkg trigger: registered ({n} paths in {})", db.display()),
    }
    let sm = crate::service::Systemctl::new(ctx.systemctl.clone());
    let units: Vec<&str> = config
        .units
        .iter()
        .map(std::string::String::as_str)
        .collect();
    match sm.show(&units) {
        Ok(states) => {
            for s in states {
                outln!(
                    "unit {}: {} ({}), load {}, unit file {}",
                    s.unit,
                    s.active_state,
                    s.sub_state,
                    s.load_state,
                    s.unit_file_state
                );
            }
        }
        Err(e) => outln!("units: cannot query the service manager: {e:#}"),
    }
    match state::read(root) {
        Ok(Some(r)) => {
            attention = true;
            outln!(
                "open transaction: since {} by {} ({}); the next post stage acts on it",
                crate::events::rfc3339(r.created),
                r.stage,
                state::record_path(root).display()
            );
        }
        Ok(None) => outln!("open transaction: none"),
        Err(e) => {
            attention = true;
            outln!("open transaction: {e:#}");
        }
    }
    if let Ok(Some(r)) = state::read_last(root) {
        let failed = if r.failed_starts.is_empty() {
            String::new()
        } else {
            format!("; failed starts: {}", r.failed_starts.join(", "))
        };
        outln!(
            "last transaction: {} by {}{failed}",
            crate::events::rfc3339(r.updated),
            r.stage
        );
    }
    match crate::events::last(root, events) {
        Ok(evs) if evs.is_empty() => outln!("events: none"),
        Ok(evs) => {
            outln!("last {} event(s):", evs.len());
            for e in evs {
                outln!("  {} {}: {}", e.time, e.kind, e.message);
            }
        }
        Err(e) => outln!("events: {e:#}"),
    }
    Ok(if attention {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
