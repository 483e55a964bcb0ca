//! `docker-upgrade-guard patch`: rewrite an installed harmful maintainer script into its
//! repaired form (dpkg lock, atomic replace, backup), and `--revert` it byte for byte.

use crate::cli::{Ctx, PatchArgs};
use std::process::ExitCode;

pub fn run(ctx: &Ctx, args: &PatchArgs) -> anyhow::Result<ExitCode> {
    let _ = (ctx, args);
    todo!("patch helper")
}

/// The just-in-time guard, called from the apt `Pre-Install-Pkgs` stage (apt holds the
/// frontend lock, dpkg is not running yet): patches the harmful installed prerm/preinst of
/// each of `packages` that is about to be upgraded. Returns one human line per script patched.
pub fn jit_guard(root: &crate::root::Root, packages: &[String]) -> anyhow::Result<Vec<String>> {
    let _ = (root, packages);
    todo!("patch helper")
}
