//! The system around the packages: docker's live-restore, this tool's hooks, and
//! unattended-upgrades (enabled? does its Package-Blacklist exclude docker/containerd?).

use super::aptconf::Conf;
use super::facts::{HookFacts, SystemFacts, UnattendedFacts};
use super::pyre;
use crate::fsutil::read_text_nofollow;
use crate::root::Root;
use std::path::Path;

pub(crate) const DAEMON_JSON: &str = "/etc/docker/daemon.json";
pub(crate) const APT_HOOK: &str = "/etc/apt/apt.conf.d/99zz-docker-upgrade-guard";
pub(crate) const BINARY: &str = "/usr/sbin/docker-upgrade-guard";
pub(crate) const PACKAGE: &str = "docker-upgrade-guard";
const APT_CONF_D: &str = "/etc/apt/apt.conf.d";
const APT_CONF: &str = "/etc/apt/apt.conf";

/// Reads everything; problems become notes (none of them changes the verdict on its own).
/// `uu_installed`: whether the unattended-upgrades package is present (None: unknown).
pub(crate) fn collect(root: &Root, packages: &[String], uu_installed: Option<bool>) -> SystemFacts {
    let mut notes = Vec::new();
    let live_restore = live_restore(root, &mut notes);
    let hooks = hooks(root, &mut notes);
    let conf = apt_conf(root, &mut notes);
    let mut unattended = unattended(&conf, packages, &mut notes);
    unattended.installed = uu_installed;
    SystemFacts {
        live_restore,
        hooks,
        unattended,
        notes,
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn live_restore(root: &Root, notes: &mut Vec<String>) -> Option<bool> {
    let path = root.path(DAEMON_JSON);
    if !exists(&path) {
        return Some(false); // dockerd's default
    }
    let text = match read_text_nofollow(&path) {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!("{e:#}; live-restore assumed off"));
            return None;
        }
    };
    if text.trim().is_empty() {
        return Some(false);
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => match v.get("live-restore") {
            None => Some(false),
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(other) => {
                notes.push(format!(
                    "{}: \"live-restore\" is {other}, not true or false; assumed off",
                    path.display()
                ));
                None
            }
        },
        Err(e) => {
            notes.push(format!(
                "{} is not valid JSON (line {}, column {}): dockerd will refuse it too; live-restore assumed off",
                path.display(),
                e.line(),
                e.column()
            ));
            None
        }
    }
}

/// Whether a snippet's text calls our hook from an active (non-comment) line that matters:
/// `pred` selects the lines (apt's Post-Invoke, dpkg's post-invoke=).
fn calls_hook(text: &str, comment: &[&str], pred: impl Fn(&str) -> bool) -> bool {
    text.lines()
        .map(str::trim)
        .filter(|l| !comment.iter().any(|c| l.starts_with(c)))
        .any(|l| pred(l) && l.contains("docker-upgrade-guard hook"))
}

fn hooks(root: &Root, notes: &mut Vec<String>) -> HookFacts {
    let mut read = |abs: &str| -> Option<String> {
        let p = root.path(abs);
        if !exists(&p) {
            return None;
        }
        read_text_nofollow(&p)
            .map_err(|e| notes.push(format!("{e:#}; the hook counts as not installed")))
            .ok()
    };
    let apt = read(APT_HOOK).is_some_and(|t| {
        calls_hook(&t, &["//", "#"], |l| {
            l.to_ascii_lowercase().starts_with("dpkg::post-invoke")
        })
    });
    // dpkg runs without apt reach the hook through our file-trigger interests.
    let dpkg = crate::dpkg::triggers::count(root.admindir(), PACKAGE) > 0;
    let binary = std::fs::symlink_metadata(root.path(BINARY)).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.file_type().is_symlink() || (m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    let enabled = crate::config::fallback(root).enabled;
    HookFacts {
        apt,
        dpkg,
        binary,
        enabled,
    }
}

/// apt's configuration as apt reads it: the parts directory (names of [A-Za-z0-9_.-], no
/// extension or `.conf`), in order, then apt.conf.
fn apt_conf(root: &Root, notes: &mut Vec<String>) -> Conf {
    let mut conf = Conf::default();
    let dir = root.path(APT_CONF_D);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| apt_reads(n))
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    let mut files: Vec<std::path::PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    files.push(root.path(APT_CONF));
    for f in files {
        if !exists(&f) || std::fs::metadata(&f).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        match read_text_nofollow(&f) {
            Ok(t) => conf.add(&t),
            Err(e) => notes.push(format!("{e:#}; skipped")),
        }
    }
    conf
}

fn apt_reads(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.rsplit_once('.').is_none_or(|(_, ext)| ext == "conf")
}

fn unattended(conf: &Conf, packages: &[String], notes: &mut Vec<String>) -> UnattendedFacts {
    let periodic = conf
        .get("APT::Periodic::Unattended-Upgrade")
        .map(str::trim)
        .is_some_and(|v| !matches!(v, "" | "0" | "false" | "no" | "off"));
    let blacklist = conf.list("Unattended-Upgrade::Package-Blacklist");
    let mut excluded = Vec::new();
    for pkg in packages {
        for entry in &blacklist {
            match pyre::prefix_match(entry, pkg) {
                Some(true) => {
                    excluded.push((pkg.clone(), entry.clone()));
                    break;
                }
                Some(false) => {}
                None => notes.push(format!(
                    "Unattended-Upgrade::Package-Blacklist entry \"{entry}\" is a regular expression this tool does not evaluate; check by hand whether it excludes {pkg}"
                )),
            }
        }
    }
    notes.dedup();
    UnattendedFacts {
        installed: None,
        periodic,
        blacklist,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, abs: &str, text: &str) {
        let p = root.join(abs.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_unattended_upgrades_like_apt() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "/etc/apt/apt.conf.d/20auto-upgrades",
            "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n",
        );
        write(
            d.path(),
            "/etc/apt/apt.conf.d/50unattended-upgrades",
            "// comment \"docker\";\nUnattended-Upgrade::Package-Blacklist {\n  /* \"runc\"; */\n  // \"docker-ce\";\n  \"containerd$\";\n  \"linux-\";\n};\nUnattended-Upgrade::Package-Blacklist:: \"docker\\.io\";\n",
        );
        // apt ignores this one (extension), so its "0" must not win.
        write(
            d.path(),
            "/etc/apt/apt.conf.d/99off.dpkg-old",
            "APT::Periodic::Unattended-Upgrade \"0\";",
        );
        let pkgs: Vec<String> = ["docker.io", "containerd", "containerd.io", "runc"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        let f = collect(&Root::new(d.path()), &pkgs, Some(true));
        assert!(f.unattended.periodic);
        assert!(f.unattended.enabled());
        assert_eq!(
            f.unattended.blacklist,
            ["containerd$", "linux-", "docker\\.io"]
        );
        assert_eq!(
            f.unattended.excluded,
            [
                ("docker.io".to_string(), "docker\\.io".to_string()),
                ("containerd".to_string(), "containerd$".to_string())
            ]
        );
        assert_eq!(f.live_restore, Some(false));
        assert!(!f.hooks.guarded());
    }

    #[test]
    fn nested_scopes_and_clear() {
        let mut c = Conf::default();
        c.add("Unattended-Upgrade { Package-Blacklist { \"a\"; }; Mail \"root\"; };\nAPT { Periodic { Unattended-Upgrade \"1\"; }; };");
        assert_eq!(c.get("unattended-upgrade::mail"), Some("root"));
        assert_eq!(c.get("APT::Periodic::Unattended-Upgrade"), Some("1"));
        c.add("#clear Unattended-Upgrade::Package-Blacklist;\nAPT::Periodic::Unattended-Upgrade \"0\";");
        assert!(c.list("Unattended-Upgrade::Package-Blacklist").is_empty());
        assert_eq!(c.get("APT::Periodic::Unattended-Upgrade"), Some("0"));
    }

    #[test]
    fn live_restore_and_hooks() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), DAEMON_JSON, "{ \"live-restore\": true }");
        write(d.path(), APT_HOOK, include_str!("../../hooks/apt.conf"));
        write(
            d.path(),
            "/var/lib/dpkg/triggers/File",
            "/usr/bin/x other/noawait\n/usr/bin/containerd docker-upgrade-guard/noawait\n",
        );
        let f = collect(&Root::new(d.path()), &[], None);
        assert_eq!(f.live_restore, Some(true));
        assert!(f.hooks.apt && f.hooks.dpkg && !f.hooks.binary);
        write(d.path(), BINARY, "#!/bin/sh\n");
        std::fs::set_permissions(
            d.path().join("usr/sbin/docker-upgrade-guard"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert!(collect(&Root::new(d.path()), &[], None).hooks.guarded());
        // No trigger interest of ours: dpkg alone does not reach the hook.
        write(
            d.path(),
            "/var/lib/dpkg/triggers/File",
            "/usr/bin/x other/noawait\n",
        );
        assert!(!collect(&Root::new(d.path()), &[], None).hooks.guarded());
        write(d.path(), DAEMON_JSON, "{ \"live-restore\": tru");
        let f = collect(&Root::new(d.path()), &[], None);
        assert_eq!(f.live_restore, None);
        assert!(
            f.notes[0].contains("daemon.json is not valid JSON"),
            "{:?}",
            f.notes
        );
    }
}
