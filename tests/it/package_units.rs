//! The audit timer and service the package ships: `systemd-analyze verify` accepts both (no
//! line on stderr either: an unknown key is only a warning there), the service writes the
//! node_exporter textfile with the verdict codes counted as success, and the package installs
//! them disabled and stopped (debian/rules). The nspawn suite (tests/e2e, scenario 19) enables
//! the timer on a real system and checks the file appears.

use crate::support::BIN;
use std::path::Path;
use std::process::Command;

fn unit(kind: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "debian/docker-upgrade-guard.docker-upgrade-guard-audit.{kind}"
    ));
    std::fs::read_to_string(p).unwrap()
}

/// Active `Key=value` lines of a unit.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn systemd_analyze_verify_accepts_timer_and_service() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::create_dir_all(d.path().join("usr/sbin")).unwrap();
    // The system's own units (timers.target, sysinit.target...) for the dependencies.
    for dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_file() && !sys.join(e.file_name()).exists() {
                std::fs::copy(e.path(), sys.join(e.file_name())).unwrap();
            }
        }
    }
    std::fs::copy(BIN, d.path().join("usr/sbin/docker-upgrade-guard")).unwrap();
    for kind in ["service", "timer"] {
        std::fs::write(
            sys.join(format!("docker-upgrade-guard-audit.{kind}")),
            unit(kind),
        )
        .unwrap();
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", d.path().display()))
        .args([
            "docker-upgrade-guard-audit.timer",
            "docker-upgrade-guard-audit.service",
        ])
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.trim(), "", "systemd-analyze verify complains");
}

#[test]
fn the_service_writes_the_textfile_and_counts_verdicts_as_success() {
    let s = unit("service");
    let l = lines(&s);
    assert!(l.contains(&"Type=oneshot"));
    assert!(l.contains(&"ExecStart=/usr/sbin/docker-upgrade-guard audit --format prometheus --output /var/lib/prometheus/node-exporter/docker-upgrade-guard.prom"));
    assert!(l.contains(&"SuccessExitStatus=1 2 3"));
    assert!(l.contains(&"ProtectSystem=strict"));
    assert!(l.contains(&"ReadWritePaths=-/var/lib/prometheus/node-exporter"));
    // Started by the timer only: nothing to enable on its own.
    assert!(!s.contains("[Install]"));
    let t = unit("timer");
    let l = lines(&t);
    for want in [
        "OnCalendar=hourly",
        "Persistent=true",
        "WantedBy=timers.target",
    ] {
        assert!(l.contains(&want), "{want}");
    }
    assert!(l.iter().any(|x| x.starts_with("RandomizedDelaySec=")));
}

#[test]
fn the_package_installs_them_disabled_and_stopped() {
    let rules = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/rules"))
        .unwrap();
    assert!(
        rules.lines().any(|l| l.trim()
            == "dh_installsystemd --name=docker-upgrade-guard-audit --no-enable --no-start"),
        "{rules}"
    );
}
