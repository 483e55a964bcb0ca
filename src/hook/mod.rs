//! `docker-upgrade-guard hook STAGE`: called by apt and dpkg around every package operation.
//! Never fails apt: every stage exits 0 on its own errors (unless `--strict`), catches panics,
//! and is bounded in time.

pub mod decide;
pub mod state;
pub mod stream;

use crate::cli::{Ctx, HookArgs};
use std::process::ExitCode;

pub fn run(ctx: &Ctx, args: &HookArgs) -> ExitCode {
    let _ = (ctx, args);
    todo!("hook helper")
}
