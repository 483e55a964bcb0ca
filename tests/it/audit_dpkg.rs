//! `audit` against a root managed by the real dpkg: a docker.io-named .deb whose prerm stops
//! docker on upgrade, installed with `dpkg --root`; the fixed version given as a .deb with
//! `--against`, and found in apt's archive cache.

use crate::support::{ok, shapes, Deb, TestRoot};
use serde_json::Value;

fn v1() -> Deb {
    Deb::new("docker.io", "19.03.8-0ubuntu1")
        .script("prerm", shapes::DOCKER_PRERM_ALWAYS_STOP)
        .file(
            "/lib/systemd/system/docker.service",
            shapes::DOCKER_SERVICE_BINDSTO,
        )
        .file("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET)
}

fn v2() -> Deb {
    Deb::new("docker.io", "20.10.24-1")
        .script("prerm", shapes::DOCKER_PRERM_REMOVE_ONLY)
        .file(
            "/lib/systemd/system/docker.service",
            shapes::DOCKER_SERVICE_BINDSTO,
        )
        .file("/lib/systemd/system/docker.socket", shapes::DOCKER_SOCKET)
}

fn audit_json(t: &TestRoot, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["audit", "--format", "json"];
    a.extend_from_slice(args);
    let o = t.tool(&a);
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap(), v)
}

fn gnu_patch(original: &std::path::Path, diff: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("script");
    std::fs::copy(original, &target).unwrap();
    std::fs::write(d.path().join("fix.diff"), diff).unwrap();
    let o = std::process::Command::new("patch")
        .args(["--batch", "--silent"])
        .arg(&target)
        .arg(d.path().join("fix.diff"))
        .output()
        .expect("GNU patch");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    std::fs::read_to_string(target).unwrap()
}

/// The expected diff: the installed always-stop block against the remove-only block.
fn expected_diff(source: &str) -> String {
    format!(
        "--- installed docker.io 19.03.8-0ubuntu1 prerm\n+++ fixed {source}\n@@ -1,12 +1,7 @@\n #!/bin/sh\n set -e\n # Automatically added by dh_systemd_start/12.10ubuntu1\n-if [ -d \"$DPKG_ROOT/run/systemd/system\" ]; then\n+if [ -d \"$DPKG_ROOT/run/systemd/system\" ] && [ \"$1\" = remove ]; then\n \tdeb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true\n-fi\n-# End automatically added section\n-# Automatically added by dh_installinit/12.10ubuntu1\n-if [ -x \"/etc/init.d/docker\" ] && [ \"$1\" = remove ]; then\n-\tinvoke-rc.d docker stop || exit 1\n fi\n # End automatically added section\n"
    )
}

#[test]
fn real_dpkg_install_then_audit() {
    let t = TestRoot::new();
    let debs = tempfile::tempdir().unwrap();
    let deb1 = v1().build(debs.path());
    ok(&t.dpkg(&["-i", deb1.to_str().unwrap()], false));
    assert!(t.path().join("var/lib/dpkg/info/docker.io.prerm").exists());

    // The tool's own repair.
    let (code, v) = audit_json(&t, &[]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["severity"], "CRITICAL");
    let f = &v["findings"][0];
    assert_eq!(f["package"], "docker.io");
    assert_eq!(f["version"], "19.03.8-0ubuntu1");
    assert_eq!(f["script"], "prerm");
    assert_eq!(f["evidence"][0]["line"], 5);
    assert_eq!(
        f["consequence"],
        "the next docker.io upgrade will stop docker.service and docker.socket and nothing will start them"
    );
    assert!(v["diffs"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+++ fixed docker-upgrade-guard repair"));

    // --against the fixed .deb: its prerm, read with dpkg-deb.
    let deb2 = v2().build(debs.path());
    let (code, v) = audit_json(&t, &["--against", deb2.to_str().unwrap()]);
    assert_eq!(code, 2);
    let source = format!("docker.io 20.10.24-1 prerm ({})", deb2.display());
    assert_eq!(v["diffs"][0]["diff"], expected_diff(&source));
    // GNU patch turns the installed prerm into the .deb's.
    let patched = gnu_patch(
        &t.path().join("var/lib/dpkg/info/docker.io.prerm"),
        v["diffs"][0]["diff"].as_str().unwrap(),
    );
    assert_eq!(patched, shapes::DOCKER_PRERM_REMOVE_ONLY);

    // The same .deb in apt's archive cache is found without --against.
    let cache = t.path().join("var/cache/apt/archives");
    std::fs::create_dir_all(&cache).unwrap();
    let cached = cache.join(deb2.file_name().unwrap());
    std::fs::copy(&deb2, &cached).unwrap();
    let (code, v) = audit_json(&t, &[]);
    assert_eq!(code, 2);
    let source = format!("docker.io 20.10.24-1 prerm ({})", cached.display());
    assert_eq!(v["diffs"][0]["diff"], expected_diff(&source));

    // After the upgrade the installed prerm is the fixed one: OK.
    ok(&t.dpkg(&["-i", deb2.to_str().unwrap()], false));
    let (code, v) = audit_json(&t, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["packages"][0]["version"], "20.10.24-1");
}

#[test]
fn a_patched_script_is_safe_because_patched_until_a_new_version_replaces_it() {
    let t = TestRoot::new();
    let debs = tempfile::tempdir().unwrap();
    ok(&t.dpkg(&["-i", v1().build(debs.path()).to_str().unwrap()], false));
    assert_eq!(audit_json(&t, &[]).0, 2);

    ok(&t.tool(&["patch", "--package", "docker.io"]));
    let (code, v) = audit_json(&t, &[]);
    assert_eq!(code, 0, "{v:#}");
    let text = v.to_string();
    assert!(
        text.contains("was patched by docker-upgrade-guard"),
        "{v:#}"
    );
    assert!(
        text.contains("var/lib/docker-upgrade-guard/backups/"),
        "{v:#}"
    );

    // Reverted: exposed again, and nothing claims it is patched.
    ok(&t.tool(&["patch", "--revert", "--package", "docker.io"]));
    let (code, v) = audit_json(&t, &[]);
    assert_eq!(code, 2, "{v:#}");
    assert!(
        !v.to_string()
            .contains("was patched by docker-upgrade-guard"),
        "{v:#}"
    );
}
