//! `/etc/docker-upgrade-guard/config.toml`: small and optional; defaults work with no file.

use crate::root::Root;

pub const CONFIG_PATH: &str = "/etc/docker-upgrade-guard/config.toml";

/// What to do with containerd after an operation upgraded it (see the patch issue/README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerdAfterUpgrade {
    /// Restart containerd (its restart propagates to docker as a restart) and verify docker.
    Restart,
    /// Leave containerd running the old binary until the admin restarts it.
    Leave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Master switch for the hook.
    pub enabled: bool,
    /// Units recorded and started again, in start order.
    pub units: Vec<String>,
    /// Packages whose changes make the hook look.
    pub packages: Vec<String>,
    /// Bound on one `systemctl start`.
    pub start_timeout_secs: u64,
    /// Bound on waiting for docker's `/_ping` after starting it.
    pub ping_timeout_secs: u64,
    /// Bound on one whole hook stage.
    pub hook_budget_secs: u64,
    /// A "before" snapshot older than this is ignored.
    pub max_snapshot_age_secs: u64,
    /// The just-in-time guard: patch a harmful prerm/preinst in Pre-Install-Pkgs.
    pub jit_patch: bool,
    pub containerd_after_upgrade: ContainerdAfterUpgrade,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            enabled: true,
            units: crate::watch::DEFAULT_UNITS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            packages: crate::watch::DEFAULT_PACKAGES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            start_timeout_secs: 20,
            ping_timeout_secs: 20,
            hook_budget_secs: 60,
            max_snapshot_age_secs: 3600,
            jit_patch: true,
            containerd_after_upgrade: ContainerdAfterUpgrade::Restart,
        }
    }
}

/// Loads the config under `root`; a missing file gives the defaults. Unknown keys and bad
/// values are errors naming the file, line and key.
pub fn load(root: &Root) -> anyhow::Result<Config> {
    let _ = root;
    todo!("hook helper")
}
