//! `docker-upgrade-guard audit`: what will the next upgrade do to docker?

use crate::cli::{AuditArgs, Ctx};
use std::process::ExitCode;

/// Monitoring-plugin exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

pub fn run(ctx: &Ctx, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let _ = (ctx, args);
    todo!("audit helper")
}
