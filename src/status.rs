//! `docker-upgrade-guard status`: watched units now, hooks installed or not, the last events.

use crate::cli::Ctx;
use std::process::ExitCode;

pub fn run(ctx: &Ctx, events: usize) -> anyhow::Result<ExitCode> {
    let _ = (ctx, events);
    todo!("hook helper")
}
