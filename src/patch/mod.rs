//! `docker-upgrade-guard patch`: rewrite an installed harmful maintainer script into its
//! repaired form (dpkg lock, atomic replace, backup), and `--revert` it byte for byte.

use crate::cli::{Ctx, PatchArgs};
use std::process::ExitCode;

pub fn run(ctx: &Ctx, args: &PatchArgs) -> anyhow::Result<ExitCode> {
    let _ = (ctx, args);
    todo!("patch helper")
}
