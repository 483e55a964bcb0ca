//! Per-tool recognisers: what `systemctl`, `deb-systemd-invoke`, `invoke-rc.d`, `service`,
//! `/etc/init.d/x`, `eval` and `sh -c` do to which units, from their arguments.

use super::command::{normalise_unit, Found, NotFollowed};
use super::{UnitOp, Walker};
use crate::scripts::lex::{Part, Word};

/// Words that name the tools acting on units; text mentioning them in `eval` or a command
/// substitution is something we cannot follow.
pub(super) const UNIT_TOOLS: &[&str] = &[
    "systemctl",
    "deb-systemd-invoke",
    "invoke-rc.d",
    "service",
    "/etc/init.d/",
];

/// systemctl options that take their value as the next word.
const SYSTEMCTL_ARG_OPTS: &[&str] = &[
    "-H",
    "--host",
    "-M",
    "--machine",
    "-t",
    "--type",
    "-p",
    "--property",
    "-s",
    "--signal",
    "--state",
    "--kill-whom",
    "--kill-value",
    "--job-mode",
    "-n",
    "--lines",
    "-o",
    "--output",
    "--root",
    "--image",
    "--what",
    "--timestamp",
    "--reboot-argument",
    "--boot-loader-entry",
    "--boot-loader-menu",
    "--message",
    "--when",
    "--drop-in",
    "--preset-mode",
    "--image-policy",
];

fn systemctl_op(verb: &str, now: bool) -> Option<UnitOp> {
    Some(match verb {
        "stop" => UnitOp::Stop,
        "start" => UnitOp::Start,
        "restart" | "reload-or-restart" => UnitOp::Restart,
        "try-restart"
        | "condrestart"
        | "try-reload-or-restart"
        | "reload-or-try-restart"
        | "force-reload" => UnitOp::TryRestart,
        "disable" | "mask" if now => UnitOp::Stop,
        "enable" if now => UnitOp::Start,
        _ => return None,
    })
}

fn initd_op(action: &str) -> Option<UnitOp> {
    Some(match action {
        "stop" => UnitOp::Stop,
        "start" => UnitOp::Start,
        "restart" | "--full-restart" => UnitOp::Restart,
        "try-restart" | "force-reload" | "condrestart" => UnitOp::TryRestart,
        _ => return None,
    })
}

pub(super) fn is_action_word(s: &str) -> bool {
    systemctl_op(s, false).is_some()
}

impl Walker<'_> {
    pub(super) fn systemctl(&self, args: &[Word]) -> Result<Option<Found>, NotFollowed> {
        let mut positional = Vec::new();
        let mut now = false;
        let mut opts_done = false;
        let mut i = 0;
        while i < args.len() {
            match args[i].literal() {
                Some(l) if !opts_done && l == "--" => opts_done = true,
                Some(l) if !opts_done && l.starts_with('-') && l.len() > 1 => {
                    if l == "--user" || l == "--global" {
                        return Ok(None);
                    }
                    now |= l == "--now";
                    if SYSTEMCTL_ARG_OPTS.contains(&l.as_str()) {
                        i += 1;
                    }
                }
                _ => positional.push(args[i].clone()),
            }
            i += 1;
        }
        let Some((verb, units)) = positional.split_first() else {
            return Ok(None);
        };
        let ops = self.ops(verb, |v| systemctl_op(v, now))?;
        self.finish(ops, units)
    }

    pub(super) fn deb_systemd_invoke(&self, args: &[Word]) -> Result<Option<Found>, NotFollowed> {
        let mut positional = Vec::new();
        for a in args {
            match a.literal() {
                Some(l) if l == "--user" => return Ok(None),
                Some(l) if l.starts_with('-') && positional.is_empty() => {}
                _ => positional.push(a.clone()),
            }
        }
        let Some((verb, units)) = positional.split_first() else {
            return Ok(None);
        };
        let ops = self.ops(verb, |v| systemctl_op(v, false))?;
        self.finish(ops, units)
    }

    pub(super) fn invoke_rc_d(&self, args: &[Word]) -> Result<Option<Found>, NotFollowed> {
        let mut positional = Vec::new();
        for a in args {
            match a.literal() {
                // See the module docs: a no-op for units with a native systemd unit.
                Some(l) if l == "--skip-systemd-native" || l == "--query" => return Ok(None),
                Some(l) if l.starts_with("--") && positional.is_empty() => {}
                _ => positional.push(a.clone()),
            }
        }
        match positional.as_slice() {
            [script, action, ..] => {
                let ops = self.ops(action, initd_op)?;
                self.finish(ops, std::slice::from_ref(script))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn service(&self, args: &[Word]) -> Result<Option<Found>, NotFollowed> {
        match args {
            [script, action, ..] => {
                if script.literal().is_some_and(|l| l.starts_with('-')) {
                    return Ok(None);
                }
                let ops = self.ops(action, initd_op)?;
                self.finish(ops, std::slice::from_ref(script))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn init_script(
        &self,
        base: &str,
        args: &[Word],
    ) -> Result<Option<Found>, NotFollowed> {
        let Some(action) = args.first() else {
            return Ok(None);
        };
        let ops = self.ops(action, initd_op)?;
        if ops.is_empty() {
            return Ok(None);
        }
        Ok(Some(Found {
            ops,
            units: vec![normalise_unit(base)],
        }))
    }

    pub(super) fn eval_like(
        &self,
        args: &[Word],
        what: &str,
    ) -> Result<Option<Found>, NotFollowed> {
        let Some((first, last)) = args.first().zip(args.last()) else {
            return Ok(None);
        };
        let raw = &self.src[first.span.start..last.span.end];
        let has_param = args
            .iter()
            .any(|a| a.parts.iter().any(|p| matches!(p, Part::Param(_))));
        if has_param || UNIT_TOOLS.iter().any(|t| raw.contains(t)) {
            return Err(NotFollowed::Eval(what.to_string()));
        }
        Ok(None)
    }
}
