//! The just-in-time guard through the real apt: a local file repository (apt-ftparchive,
//! `[trusted=yes]`), apt-get confined to a temp root with APT_CONFIG (Dir, status, dpkg
//! --root), and the project's own apt snippet (hooks/apt.conf) pointed at the test binary.
//! Upgrading a docker.io whose installed prerm stops docker: without the snippet the stand-in
//! records the stop; with it, Pre-Install-Pkgs patches the old prerm before dpkg runs it and
//! nothing is stopped.

use crate::support::{ok, shapes, AptRoot, Deb, TestRoot};

const V1: &str = "19.03.8-0ubuntu1";
const V2: &str = "19.03.8-0ubuntu1.1";

fn apt_root(with_snippet: bool) -> AptRoot {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    let a = AptRoot::new(t, with_snippet);
    a.publish(&[
        Deb::new("docker.io", V1)
            .script("prerm", shapes::DOCKER_PRERM_ALWAYS_STOP)
            .file(
                "/lib/systemd/system/docker.service",
                shapes::DOCKER_SERVICE_BINDSTO,
            ),
        Deb::new("docker.io", V2)
            .script("prerm", shapes::DOCKER_PRERM_REMOVE_ONLY)
            .file(
                "/lib/systemd/system/docker.service",
                shapes::DOCKER_SERVICE_BINDSTO,
            ),
    ]);
    a
}

#[test]
fn without_the_snippet_the_upgrade_stops_docker() {
    let a = apt_root(false);
    ok(&a.apt(&["install", &format!("docker.io={V1}")]));
    a.t.clear_calls();
    let log = ok(&a.apt(&["install", "docker.io"]));
    let calls = a.t.calls();
    assert!(calls.contains("stop docker.service"), "{calls}\n{log}");
}

#[test]
fn with_the_snippet_the_jit_guard_patches_before_dpkg_and_nothing_stops() {
    let a = apt_root(true);
    ok(&a.apt(&["install", &format!("docker.io={V1}")]));
    a.t.clear_calls();
    let o = a.apt(&["install", "docker.io"]);
    let log = ok(&o);
    let calls = a.t.calls();
    assert!(!calls.contains("stop"), "nothing stopped:\n{calls}\n{log}");
    assert!(
        log.contains(&format!(
            "patched docker.io {V1} prerm: the upgrade will not stop docker.service, docker.socket"
        )),
        "{log}"
    );
    let status = std::fs::read_to_string(a.t.path().join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains(&format!("Version: {V2}")), "{status}");
    assert!(a.t.is_active("docker.service"));
}
