//! `audit` end to end: the built binary with `--root` on fixture trees
//! (tests/fixtures/audit/: `bookworm` = Debian's real scripts and units; `focal` and
//! `docker-io-prerm` are layered on top of it).

use crate::support::BIN;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit")
}

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A temp root made of fixture layers, later ones overriding earlier ones.
pub(crate) fn tree(layers: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for l in layers {
        copy_tree(&fixtures().join(l), d.path());
    }
    std::fs::create_dir_all(d.path().join("var/lib/dpkg/updates")).unwrap();
    d
}

pub(crate) fn write(root: &Path, abs: &str, data: &[u8]) {
    let p = root.join(abs.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

pub(crate) struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

pub(crate) fn audit(root: &Path, args: &[&str]) -> Run {
    let o = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .arg("audit")
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !r.err.contains("panicked") && !r.err.contains("RUST_BACKTRACE"),
        "panic:\n{}",
        r.err
    );
    r
}

fn json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let r = audit(root, &a);
    let v: Value = serde_json::from_str(&r.out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", r.out, r.err));
    assert_eq!(v["exit_code"], r.code);
    (r.code, v)
}

fn package<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in {v:#}"))
}

fn exposures<'a>(v: &'a Value, pkg: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "exposure" && f["package"] == pkg)
        .collect()
}

pub(crate) fn install_hooks(root: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    write(
        root,
        "/etc/apt/apt.conf.d/99zz-docker-upgrade-guard",
        &std::fs::read(repo.join("hooks/apt.conf")).unwrap(),
    );
    // What dpkg records when the package's triggers file is installed.
    let interests: String =
        std::fs::read_to_string(repo.join("debian/docker-upgrade-guard.triggers"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("interest-noawait "))
            .map(|p| format!("{p} docker-upgrade-guard/noawait\n"))
            .collect();
    write(root, "/var/lib/dpkg/triggers/File", interests.as_bytes());
    write(root, "/usr/sbin/docker-upgrade-guard", b"#!/bin/sh\n");
    std::fs::set_permissions(
        root.join("usr/sbin/docker-upgrade-guard"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// Applies `diff` to a copy of `original` with GNU patch and returns the result.
fn gnu_patch(original: &Path, diff: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("script");
    std::fs::copy(original, &target).unwrap();
    let patch_file = d.path().join("fix.diff");
    std::fs::write(&patch_file, diff).unwrap();
    let o = Command::new("patch")
        .arg("--batch")
        .arg("--silent")
        .arg(&target)
        .arg(&patch_file)
        .output()
        .expect("GNU patch must be installed");
    assert!(
        o.status.success(),
        "patch failed: {}{}\ndiff:\n{diff}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(&target).unwrap()
}

#[test]
fn bookworm_as_shipped_is_ok() {
    let t = tree(&["bookworm"]);
    let r = audit(t.path(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out.starts_with("docker-upgrade-guard audit: OK\n"),
        "{}",
        r.out
    );
    assert!(
        !r.out.contains("\n--- installed"),
        "no diff when safe:\n{}",
        r.out
    );

    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["severity"], "OK");
    assert_eq!(
        package(&v, "docker.io")["version"],
        "20.10.24+dfsg1-1+deb12u1+b6"
    );
    assert_eq!(package(&v, "containerd")["version"], "1.6.20~ds1-1+deb12u3");
    assert_eq!(package(&v, "docker.io")["exposed"], false);
    assert_eq!(package(&v, "docker-ce")["installed"], false);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(v["system"]["live_restore"], false);
    assert_eq!(v["system"]["hooks"]["installed"], false);
    assert_eq!(v["system"]["unattended_upgrades"]["enabled"], true);
    assert_eq!(
        v["system"]["unattended_upgrades"]["excluded"],
        serde_json::json!([])
    );
    // docker.service only Wants= containerd: stopping containerd stops nothing else.
    let units = v["units"].as_array().unwrap();
    let c = units
        .iter()
        .find(|u| u["name"] == "containerd.service")
        .unwrap();
    assert_eq!(c["stops_with_it"], serde_json::json!([]));
}

#[test]
fn focal_shapes_are_critical_naming_prerm_and_bindsto() {
    let t = tree(&["bookworm", "focal"]);
    let r = audit(t.path(), &["--color", "never"]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.out.starts_with("docker-upgrade-guard audit: CRITICAL\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("consequence: the next containerd upgrade will stop docker.service and docker.socket and nothing will start them"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains(&format!(
            "{}:5: \tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true",
            t.path()
                .join("var/lib/dpkg/info/containerd.prerm")
                .display()
        )),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("docker.service:7: BindsTo=containerd.service"),
        "{}",
        r.out
    );
    assert!(r.out.contains("https://bugs.launchpad.net/bugs/1870514"));
    assert!(r.out.contains("https://bugs.launchpad.net/bugs/1906364"));

    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 2);
    assert_eq!(v["severity"], "CRITICAL");
    let c = exposures(&v, "containerd");
    assert_eq!(c.len(), 1, "{v:#}");
    let c = c[0];
    assert_eq!(c["severity"], "CRITICAL");
    assert_eq!(c["version"], "1.3.3-0ubuntu2");
    assert_eq!(c["script"], "prerm");
    assert_eq!(c["reference"], "https://bugs.launchpad.net/bugs/1870514");
    let ev = c["evidence"].as_array().unwrap();
    assert!(ev.iter().any(|e| e["line"] == 5
        && e["file"]
            .as_str()
            .unwrap()
            .ends_with("var/lib/dpkg/info/containerd.prerm")));
    assert!(
        ev.iter().any(|e| e["line"] == 7
            && e["text"] == "BindsTo=containerd.service"
            && e["file"].as_str().unwrap().ends_with("docker.service")),
        "{ev:#?}"
    );
    let units: Vec<(&str, &Value)> = c["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["unit"].as_str().unwrap(), &u["started_again"]))
        .collect();
    assert_eq!(
        units,
        [
            ("containerd.service", &Value::Bool(true)),
            ("docker.service", &Value::Bool(false)),
            ("docker.socket", &Value::Bool(false)),
        ]
    );
    let d = exposures(&v, "docker.io");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["severity"], "CRITICAL");
    assert_eq!(d[0]["reference"], "https://bugs.launchpad.net/bugs/1906364");
    assert_eq!(package(&v, "containerd")["exposed"], true);
    assert_eq!(package(&v, "runc")["exposed"], false);
    // One diff per harmful script.
    let diffs: Vec<&str> = v["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["package"].as_str().unwrap())
        .collect();
    assert_eq!(diffs.len(), 2, "{diffs:?}");
}

const DOCKER_IO_DIFF_AGAINST: &str = "--- installed docker.io 19.03.8-0ubuntu1 prerm
+++ fixed FIXED
@@ -1,7 +1,7 @@
 #!/bin/sh
 set -e
 # Automatically added by dh_systemd_start/12.10ubuntu1
-if [ -d /run/systemd/system ]; then
+if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then
 \tdeb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true
 fi
 # End automatically added section
";

#[test]
fn docker_io_prerm_is_critical_with_exact_diff_against_a_script() {
    let t = tree(&["bookworm", "docker-io-prerm"]);
    let fixed = fixtures().join("against/docker.io.prerm");
    let r = audit(
        t.path(),
        &["--against", fixed.to_str().unwrap(), "--color", "never"],
    );
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.out.contains("consequence: the next docker.io upgrade will stop docker.service and docker.socket until its postinst starts them again, and containers without a restart policy stay down"),
        "{}",
        r.out
    );
    let want = DOCKER_IO_DIFF_AGAINST.replace("FIXED", fixed.to_str().unwrap());
    assert!(r.out.ends_with(&format!("\n{want}")), "{}", r.out);
    let installed = t.path().join("var/lib/dpkg/info/docker.io.prerm");
    assert_eq!(
        gnu_patch(&installed, &want),
        std::fs::read_to_string(&fixed).unwrap()
    );
    let (_, v) = json(t.path(), &["--against", fixed.to_str().unwrap()]);
    assert_eq!(v["diffs"][0]["diff"], want);
    assert_eq!(v["diffs"][0]["fixed_source"], fixed.to_str().unwrap());
}

#[test]
fn repair_diff_applies_and_the_result_is_safe() {
    let t = tree(&["bookworm", "docker-io-prerm"]);
    let r = audit(t.path(), &["--color", "never"]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    let (_, v) = json(t.path(), &[]);
    let d = &v["diffs"][0];
    assert_eq!(d["package"], "docker.io");
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.starts_with(
            "--- installed docker.io 19.03.8-0ubuntu1 prerm\n+++ fixed docker-upgrade-guard repair"
        ),
        "{diff}"
    );
    assert!(r.out.contains(diff), "text shows the same diff");
    assert_eq!(
        diff,
        DOCKER_IO_DIFF_AGAINST.replace(
            "FIXED",
            "docker-upgrade-guard repair (what `docker-upgrade-guard patch` writes)"
        ),
        "the repair is the remove-only block, every other byte unchanged"
    );
    let installed = t.path().join("var/lib/dpkg/info/docker.io.prerm");
    let repaired = gnu_patch(&installed, diff);
    std::fs::write(&installed, &repaired).unwrap();
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 0, "the repaired prerm is safe: {v:#}");
    assert!(exposures(&v, "docker.io").is_empty());
}

#[test]
fn hooks_installed_make_it_a_warning() {
    let t = tree(&["bookworm", "focal"]);
    install_hooks(t.path());
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["severity"], "WARNING");
    assert_eq!(v["system"]["hooks"]["installed"], true);
    for f in v["findings"].as_array().unwrap() {
        assert_eq!(f["severity"], "WARNING", "{f:#}");
        assert!(!f["remedies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("install this tool's hooks")));
    }
    // Switched off in config.toml: the hooks do nothing, so nothing guards the node.
    write(
        t.path(),
        "/etc/docker-upgrade-guard/config.toml",
        b"enabled = false\n",
    );
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["system"]["hooks"]["enabled"], false);
    assert_eq!(v["system"]["hooks"]["installed"], false);
    std::fs::remove_file(t.path().join("etc/docker-upgrade-guard/config.toml")).unwrap();
    // Without the binary the snippets are inert: still CRITICAL.
    std::fs::remove_file(t.path().join("usr/sbin/docker-upgrade-guard")).unwrap();
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 2);
    assert_eq!(v["system"]["hooks"]["binary"], false);
}

#[test]
fn garbage_inputs_are_unknown_with_a_line_each_and_the_rest_still_runs() {
    let t = tree(&["bookworm"]);
    let r = t.path();
    let info = r.join("var/lib/dpkg/info");
    // Non-UTF-8 prerm.
    std::fs::write(info.join("docker.io.prerm"), b"#!/bin/sh\n\xff\xfe stop\n").unwrap();
    // A symlink where containerd's prerm should be.
    std::fs::remove_file(info.join("containerd.prerm")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", info.join("containerd.prerm")).unwrap();
    // runc's prerm over 1 MiB.
    let mut big = b"#!/bin/sh\n".to_vec();
    big.resize(1024 * 1024 + 10, b'#');
    std::fs::write(info.join("runc.prerm"), big).unwrap();
    // A garbled status paragraph.
    let mut status = std::fs::read_to_string(r.join("var/lib/dpkg/status")).unwrap();
    status.push_str("Package: containerd.io\nStatus: install ok\nthis line is no field\n\n");
    std::fs::write(r.join("var/lib/dpkg/status"), status).unwrap();
    // A drop-in that does not parse.
    write(
        r,
        "/etc/systemd/system/docker.service.d/broken.conf",
        b"[Unit\nBindsTo containerd.service\n\xff\n",
    );

    let out = audit(r, &["--color", "never"]);
    assert_eq!(out.code, 3, "{}{}", out.out, out.err);
    assert!(out.out.starts_with("docker-upgrade-guard audit: UNKNOWN\n"));
    for needle in [
        "docker.io.prerm",
        "UTF-8",
        "containerd.prerm",
        "symlink",
        "runc.prerm",
        "bytes",
        "var/lib/dpkg/status",
        "broken.conf",
    ] {
        assert!(out.out.contains(needle), "missing {needle:?}:\n{}", out.out);
    }
    // The rest still ran: versions, units, system.
    let (code, v) = json(r, &[]);
    assert_eq!(code, 3);
    assert_eq!(
        package(&v, "docker.io")["version"],
        "20.10.24+dfsg1-1+deb12u1+b6"
    );
    assert_eq!(v["system"]["unattended_upgrades"]["enabled"], true);
    let unknown = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "UNKNOWN")
        .count();
    assert!(unknown >= 5, "{v:#}");
}

#[test]
fn nagios_and_prometheus() {
    let t = tree(&["bookworm", "focal"]);
    let r = audit(t.path(), &["--format", "nagios"]);
    assert_eq!(r.code, 2);
    let first = r.out.lines().next().unwrap();
    assert!(
        first.starts_with("DOCKER-UPGRADE-GUARD CRITICAL - "),
        "{first}"
    );
    assert!(
        first.ends_with("|exposed=2 unknown=0 hooks_installed=0 live_restore=0"),
        "{first}"
    );
    assert_eq!(first.matches('|').count(), 1);
    assert!(
        r.out.lines().skip(1).all(|l| l.starts_with("CRITICAL: ")),
        "{}",
        r.out
    );

    let r = audit(t.path(), &["--format", "prometheus"]);
    assert_eq!(r.code, 2);
    for line in [
        "# TYPE docker_upgrade_guard_audit_severity gauge",
        "docker_upgrade_guard_audit_severity 2",
        "docker_upgrade_guard_exposed{package=\"containerd\"} 1",
        "docker_upgrade_guard_exposed{package=\"docker.io\"} 1",
        "docker_upgrade_guard_exposed{package=\"runc\"} 0",
        "docker_upgrade_guard_package_info{package=\"containerd\",version=\"1.3.3-0ubuntu2\"} 1",
        "docker_upgrade_guard_hooks_installed 0",
        "docker_upgrade_guard_live_restore 0",
        "docker_upgrade_guard_unattended_upgrades_enabled 0",
        "docker_upgrade_guard_findings{severity=\"critical\"} 2",
    ] {
        assert!(
            r.out.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            r.out
        );
    }
    // Every sample has HELP and TYPE before it.
    for l in r.out.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(r.out.contains(&format!("# TYPE {name} gauge")), "{name}");
        assert!(r.out.contains(&format!("# HELP {name} ")), "{name}");
    }

    let ok = tree(&["bookworm"]);
    let r = audit(ok.path(), &["--format", "nagios"]);
    assert_eq!(r.code, 0);
    assert!(r.out.starts_with("DOCKER-UPGRADE-GUARD OK - no upgrade of docker.io 20.10.24+dfsg1-1+deb12u1+b6, containerd 1.6.20~ds1-1+deb12u3, runc 1.1.5+ds1-1+deb12u1 stops a watched unit|exposed=0"), "{}", r.out);
}

#[test]
fn live_restore_blacklist_and_the_dpkg_journal() {
    let t = tree(&["bookworm"]);
    write(
        t.path(),
        "/etc/docker/daemon.json",
        b"{\n  \"live-restore\": true\n}\n",
    );
    write(
        t.path(),
        "/etc/apt/apt.conf.d/51local",
        b"Unattended-Upgrade::Package-Blacklist { \"docker\"; \"containerd$\"; };\n",
    );
    // dpkg journals a change in updates/ before folding it into status.
    write(
        t.path(),
        "/var/lib/dpkg/updates/0000",
        b"Package: docker.io\nStatus: install ok installed\nArchitecture: amd64\nVersion: 20.10.24+dfsg1-1+deb12u2\nDescription: x\n",
    );
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["system"]["live_restore"], true);
    assert_eq!(
        package(&v, "docker.io")["version"],
        "20.10.24+dfsg1-1+deb12u2"
    );
    let ex: Vec<(String, String)> = v["system"]["unattended_upgrades"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["package"].as_str().unwrap().into(),
                e["entry"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ex,
        [
            ("docker.io".to_string(), "docker".to_string()),
            ("containerd".to_string(), "containerd$".to_string()),
            ("docker-ce".to_string(), "docker".to_string()),
        ]
    );
}

#[test]
fn package_filter_and_colour() {
    let t = tree(&["bookworm", "focal"]);
    let (code, v) = json(t.path(), &["--package", "docker.io"]);
    assert_eq!(code, 2);
    let names: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docker.io"]);
    assert!(exposures(&v, "containerd").is_empty());

    let piped = audit(t.path(), &[]);
    assert!(!piped.out.contains('\x1b'), "auto: no colour into a pipe");
    let always = audit(t.path(), &["--color", "always"]);
    assert!(
        always
            .out
            .contains("\x1b[31m-if [ -d /run/systemd/system ]; then\x1b[0m"),
        "{}",
        always.out
    );
}

#[test]
fn missing_root_pieces_are_not_fatal() {
    // An empty root: no dpkg database at all → UNKNOWN with a line, not a crash.
    let d = tempfile::tempdir().unwrap();
    let r = audit(d.path(), &[]);
    assert_eq!(r.code, 3, "{}{}", r.out, r.err);
    assert!(r.out.contains("dpkg"), "{}", r.out);
}

#[test]
fn a_postinst_try_restart_does_not_bring_back_what_the_prerm_stopped() {
    // try-restart acts only on a running unit; after the prerm stopped docker it is not running.
    let t = tree(&["bookworm", "docker-io-prerm"]);
    let postinst = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\tsystemctl try-restart docker.service docker.socket || true\nfi\n";
    write(
        t.path(),
        "/var/lib/dpkg/info/docker.io.postinst",
        postinst.as_bytes(),
    );
    let (code, v) = json(t.path(), &[]);
    assert_eq!(code, 2, "{v:#}");
    let f = exposures(&v, "docker.io");
    assert!(!f.is_empty(), "{v:#}");
    assert!(
        f.iter().any(|f| f["consequence"]
            .as_str()
            .unwrap()
            .contains("nothing will start them")),
        "{v:#}"
    );
}

#[test]
fn an_invalid_package_name_is_refused() {
    let t = tree(&["bookworm"]);
    let r = audit(t.path(), &["--package", "Bad!"]);
    assert_eq!(r.code, 3);
    assert!(r.err.contains("is not a Debian package name"), "{}", r.err);
}
