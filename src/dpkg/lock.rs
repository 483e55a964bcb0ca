//! dpkg's locks, taken like a frontend does: `lock-frontend`, then `lock`.

use std::path::Path;

/// Held locks; dropping releases them.
#[derive(Debug)]
pub struct DpkgLock {
    _files: Vec<std::fs::File>,
}

/// Takes `<admindir>/lock-frontend` (unless `frontend_locked`, i.e. we run inside an apt hook
/// where apt holds it: `DPKG_FRONTEND_LOCKED=true`) and then `<admindir>/lock`, with the same
/// fcntl record locks dpkg uses, without waiting. If another process holds one, the error
/// says which lock and which pid.
pub fn acquire(admindir: &Path, frontend_locked: bool) -> anyhow::Result<DpkgLock> {
    let _ = (admindir, frontend_locked);
    todo!("dpkg helper")
}
