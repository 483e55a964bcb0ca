//! What every command gets from the global options, checked: where the system is (`--root`,
//! `--admindir`) and how to reach its service manager. Made by `cli`, imported by the commands
//! (which never import `cli`).

use crate::root::Root;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Ctx {
    pub root: Root,
    /// `--root` / `--admindir` were given: the hook then ignores `DPKG_ROOT` / `DPKG_ADMINDIR`.
    pub root_given: bool,
    pub admindir_given: bool,
    pub systemctl: Option<PathBuf>,
}
