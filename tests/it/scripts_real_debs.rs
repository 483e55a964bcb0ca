//! Debian's real docker.io, containerd and runc packages (from this machine's apt sources,
//! downloaded once and cached under /var/tmp/docker-upgrade-guard-test-debs/): their
//! maintainer scripts stop no watched unit on upgrade, and the classifier finds their
//! postinsts' (re)starts and prerms' stops on remove.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_upgrade_guard::scripts::classify::{analyse, Analysis, Answer, UnitOp};
use docker_upgrade_guard::scripts::repair::repair;
use docker_upgrade_guard::scripts::stops_on_upgrade;

const CACHE: &str = "/var/tmp/docker-upgrade-guard-test-debs";
const WATCHED: &[&str] = &["docker.service", "docker.socket", "containerd.service"];

fn cached(pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    std::fs::read_dir(CACHE)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".deb")
        })
}

fn apt_download(pkg: &str, dir: &Path) -> bool {
    Command::new("apt-get")
        .args(["download", pkg])
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The cached `.deb` of `pkg`, downloaded with the machine's apt sources if missing (into a
/// private directory first, so that concurrent test runs never see a partial file).
fn deb(pkg: &str) -> PathBuf {
    if let Some(p) = cached(pkg) {
        return p;
    }
    std::fs::create_dir_all(CACHE).unwrap();
    let tmp = tempfile::tempdir_in(CACHE).unwrap();
    if !apt_download(pkg, tmp.path()) {
        let up = Command::new("apt-get").arg("update").output().unwrap();
        assert!(up.status.success(), "apt-get update failed: {up:?}");
        assert!(
            apt_download(pkg, tmp.path()),
            "apt-get download {pkg} failed"
        );
    }
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, Path::new(CACHE).join(p.file_name().unwrap())).unwrap();
    }
    cached(pkg).unwrap_or_else(|| panic!("apt-get download {pkg} left no .deb"))
}

/// The package's maintainer scripts: (name, text).
fn scripts(pkg: &str, out: &Path) -> Vec<(String, String)> {
    let dir = out.join(pkg);
    let st = Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb(pkg))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success(), "dpkg-deb -e {pkg}");
    ["preinst", "prerm", "postrm", "postinst"]
        .iter()
        .filter_map(|s| {
            let t = std::fs::read_to_string(dir.join(s)).ok()?;
            Some((s.to_string(), t))
        })
        .collect()
}

fn ops_of(a: &Analysis, unit: &str, arg: &str) -> Vec<UnitOp> {
    let all = [
        UnitOp::Stop,
        UnitOp::Start,
        UnitOp::Restart,
        UnitOp::TryRestart,
    ];
    match a.query(&all, unit, arg) {
        Answer::Yes(sites) => {
            let mut v: Vec<UnitOp> = sites.iter().map(|s| s.op).collect();
            v.dedup();
            v
        }
        Answer::No => vec![],
        Answer::Unknown(u) => panic!("unknown for {unit}/{arg}: {u:?}"),
    }
}

#[test]
fn debian_packages_are_safe_and_their_restarts_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for pkg in ["docker.io", "containerd", "runc"] {
        for (name, text) in scripts(pkg, tmp.path()) {
            let a = analyse(&text);
            let what = format!("{pkg}.{name}");
            assert!(a.unknowns.is_empty(), "{what}: {:?}", a.unknowns);
            assert!(stops_on_upgrade(&a, WATCHED).is_empty(), "{what}: {a:#?}");
            for u in WATCHED {
                assert!(
                    !ops_of(&a, u, "upgrade").contains(&UnitOp::Stop),
                    "{what} stops {u} on upgrade"
                );
            }
            assert_eq!(repair(&text, &a, WATCHED), None, "{what}");
            seen.push((what, a));
        }
    }
    let get = |n: &str| {
        &seen
            .iter()
            .find(|(w, _)| w == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .1
    };
    // prerms: stop only on remove.
    let p = get("docker.io.prerm");
    assert_eq!(ops_of(p, "docker.service", "remove"), [UnitOp::Stop]);
    assert_eq!(ops_of(p, "docker.socket", "remove"), [UnitOp::Stop]);
    assert_eq!(ops_of(p, "docker.service", "upgrade"), []);
    let p = get("containerd.prerm");
    assert_eq!(ops_of(p, "containerd.service", "remove"), [UnitOp::Stop]);
    assert_eq!(ops_of(p, "containerd.service", "upgrade"), []);
    // postinsts: docker.io starts its units; containerd restarts on upgrade (`$2` set), starts
    // on first install, through `deb-systemd-invoke $_dh_action`.
    let p = get("docker.io.postinst");
    assert_eq!(ops_of(p, "docker.service", "configure"), [UnitOp::Start]);
    assert_eq!(ops_of(p, "docker.socket", "configure"), [UnitOp::Start]);
    let p = get("containerd.postinst");
    assert_eq!(
        ops_of(p, "containerd.service", "configure"),
        [UnitOp::Restart, UnitOp::Start]
    );
    let restart = p
        .sites
        .iter()
        .find(|s| s.op == UnitOp::Restart)
        .expect("restart site");
    assert_eq!(restart.tool, "deb-systemd-invoke");
    assert!(
        restart.guard.to_string().contains("[ -n \"$2\" ]"),
        "{}",
        restart.guard
    );
    assert_eq!(ops_of(p, "containerd.service", "remove"), []);
}
