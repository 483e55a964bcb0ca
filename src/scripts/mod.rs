//! Maintainer scripts: what they do to systemd units for each `$1`, and the repaired text.

pub mod classify;
pub mod repair;
