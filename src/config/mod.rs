//! `/etc/docker-upgrade-guard/config.toml`: small and optional; defaults work with no file.

use crate::root::Root;

mod syntax;
use syntax::Value;

pub const CONFIG_PATH: &str = "/etc/docker-upgrade-guard/config.toml";

/// What to do with containerd after an operation upgraded it (see the patch issue/README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerdAfterUpgrade {
    /// Restart containerd (its restart propagates to docker as a restart) and verify docker.
    Restart,
    /// Leave containerd running the old binary until the admin restarts it.
    Leave,
}

/// What the post stage does with a container that ran before the operation and went down with
/// docker during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartContainers {
    /// Name it; start nothing (docker's restart policies decide).
    Never,
    /// Start it again (`POST /containers/{id}/start`: the same container, never a new one).
    PreviouslyRunning,
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
    pub restart_containers: RestartContainers,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            enabled: true,
            units: crate::watch::DEFAULT_UNITS
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            packages: crate::watch::DEFAULT_PACKAGES
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            start_timeout_secs: 20,
            ping_timeout_secs: 20,
            hook_budget_secs: 60,
            max_snapshot_age_secs: 6 * 3600,
            jit_patch: true,
            containerd_after_upgrade: ContainerdAfterUpgrade::Restart,
            restart_containers: RestartContainers::Never,
        }
    }
}

/// Loads the config under `root`; a missing file gives the defaults. Unknown keys and bad
/// values are errors naming the file, line and key.
pub fn load(root: &Root) -> anyhow::Result<Config> {
    let path = root.path(CONFIG_PATH);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        _ => {}
    }
    let text = crate::fsutil::read_text_nofollow(&path)?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What the hook runs with when the config is broken: the defaults (starting again what an
/// upgrade stopped is the safe side for docker), except that an explicit `enabled = false` or
/// `jit_patch = false` still found in the text is honoured — the admin's "off" always wins.
pub fn fallback(root: &Root) -> Config {
    let mut c = Config::default();
    let text = crate::fsutil::read_text_nofollow(&root.path(CONFIG_PATH)).unwrap_or_default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if v == "false" && k == "enabled" {
            c.enabled = false;
        }
        if v == "false" && k == "jit_patch" {
            c.jit_patch = false;
        }
    }
    c
}

/// Parses the text of a config file (errors name the line and the key). Every key is
/// optional; unknown keys are errors.
pub fn parse(text: &str) -> anyhow::Result<Config> {
    let mut c = Config::default();
    for e in syntax::parse(text)? {
        let at = e.line;
        let wrong = |expected: &str| {
            anyhow::anyhow!(
                "line {at}: {}: expected {expected}, found {}",
                e.key,
                e.value.kind()
            )
        };
        let choice = |allowed: &[&str]| -> anyhow::Result<usize> {
            let Value::Str(v) = &e.value else {
                return Err(wrong("a string"));
            };
            allowed.iter().position(|a| a == v).ok_or_else(|| {
                anyhow::anyhow!(
                    "line {at}: {} = {v:?}: expected \"{}\"",
                    e.key,
                    allowed.join("\" or \"")
                )
            })
        };
        match (e.key.as_str(), &e.value) {
            ("enabled", Value::Bool(b)) => c.enabled = *b,
            ("jit_patch", Value::Bool(b)) => c.jit_patch = *b,
            ("units", Value::Strings(v)) => c.units.clone_from(v),
            ("packages", Value::Strings(v)) => c.packages.clone_from(v),
            ("start_timeout_secs", Value::Int(n)) => c.start_timeout_secs = *n,
            ("ping_timeout_secs", Value::Int(n)) => c.ping_timeout_secs = *n,
            ("hook_budget_secs", Value::Int(n)) => c.hook_budget_secs = *n,
            ("max_snapshot_age_secs", Value::Int(n)) => c.max_snapshot_age_secs = *n,
            ("containerd_after_upgrade", _) => {
                c.containerd_after_upgrade = [
                    ContainerdAfterUpgrade::Restart,
                    ContainerdAfterUpgrade::Leave,
                ][choice(&["restart", "leave"])?];
            }
            ("restart_containers", _) => {
                c.restart_containers = [
                    RestartContainers::Never,
                    RestartContainers::PreviouslyRunning,
                ][choice(&["never", "previously-running"])?];
            }
            ("enabled" | "jit_patch", _) => return Err(wrong("true or false")),
            ("units" | "packages", _) => return Err(wrong("a list of strings")),
            (
                "start_timeout_secs"
                | "ping_timeout_secs"
                | "hook_budget_secs"
                | "max_snapshot_age_secs",
                _,
            ) => return Err(wrong("a number")),
            (k, _) => anyhow::bail!(
                "line {at}: unknown setting `{k}`; the settings are enabled, units, packages, \
                 start_timeout_secs, ping_timeout_secs, hook_budget_secs, max_snapshot_age_secs, \
                 jit_patch, containerd_after_upgrade, restart_containers"
            ),
        }
    }
    for u in &c.units {
        if !valid_unit(u) {
            anyhow::bail!("units: {u:?} is not a unit name (like \"kubelet.service\")");
        }
    }
    for p in &c.packages {
        if !valid_package(p) {
            anyhow::bail!("packages: {p:?} is not a package name");
        }
    }
    for (key, v, max) in [
        ("start_timeout_secs", c.start_timeout_secs, 600),
        ("ping_timeout_secs", c.ping_timeout_secs, 600),
        ("hook_budget_secs", c.hook_budget_secs, 3600),
        ("max_snapshot_age_secs", c.max_snapshot_age_secs, 7 * 86400),
    ] {
        if v == 0 || v > max {
            anyhow::bail!("{key} = {v} is out of range (1..={max})");
        }
    }
    Ok(c)
}

/// A unit name systemctl accepts, and that cannot be mistaken for an option.
pub fn valid_unit(u: &str) -> bool {
    let suffixes = [
        ".service", ".socket", ".target", ".mount", ".timer", ".path",
    ];
    u.len() <= 256
        && !u.starts_with('-')
        && suffixes.iter().any(|s| u.len() > s.len() && u.ends_with(s))
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._:-\\".contains(&b))
}

pub use crate::dpkg::valid_package_name as valid_package;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_missing_give_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(&Root::new(d.path())).unwrap(), Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "enabled = false\nunits = [\"containerd.service\", \"kubelet.service\"]\n\
             containerd_after_upgrade = \"leave\"\nhook_budget_secs = 30\n",
        )
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.units, vec!["containerd.service", "kubelet.service"]);
        assert_eq!(c.containerd_after_upgrade, ContainerdAfterUpgrade::Leave);
        assert_eq!(c.hook_budget_secs, 30);
        assert!(c.jit_patch);
        assert_eq!(c.restart_containers, RestartContainers::Never);
        let c = parse("restart_containers = \"previously-running\"\n").unwrap();
        assert_eq!(c.restart_containers, RestartContainers::PreviouslyRunning);
        for bad in ["\"always\"", "true", "\"Never\"", "\"previously_running\""] {
            let e = parse(&format!("restart_containers = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("line 1"), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = parse("enabled = true\nenabeld = false\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("enabeld"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = parse("containerd_after_upgrade = \"sometimes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("sometimes"), "{e}");
        let e = parse("units = [\"--now\"]").unwrap_err().to_string();
        assert!(e.contains("--now"), "{e}");
        let e = parse("hook_budget_secs = 0").unwrap_err().to_string();
        assert!(e.contains("hook_budget_secs"), "{e}");
        assert!(parse("enabled = ").is_err());
    }

    #[test]
    fn load_names_the_file_and_fallback_honours_off() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let p = root.path(CONFIG_PATH);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "enabled = false # off\nbogus = 1\n").unwrap();
        let e = load(&root).unwrap_err().to_string();
        assert!(e.contains("config.toml: line 2"), "{e}");
        let c = fallback(&root);
        assert!(!c.enabled);
        assert!(c.jit_patch);
        std::fs::write(&p, "[[[").unwrap();
        assert_eq!(fallback(&root), Config::default());
    }
}
