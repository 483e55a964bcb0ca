//! The just-in-time guard through the real apt: a local file repository (apt-ftparchive,
//! `[trusted=yes]`), apt-get confined to a temp root with APT_CONFIG (Dir, status, dpkg
//! --root), and the project's own apt snippet (hooks/apt.conf) pointed at the test binary.
//! Upgrading a docker.io whose installed prerm stops docker: without the snippet the stand-in
//! records the stop; with it, Pre-Install-Pkgs patches the old prerm before dpkg runs it and
//! nothing is stopped.

mod support;
use std::path::PathBuf;
use std::process::{Command, Output};
use support::{ok, shapes, Deb, TestRoot};

const V1: &str = "19.03.8-0ubuntu1";
const V2: &str = "19.03.8-0ubuntu1.1";

struct AptRoot {
    t: TestRoot,
    config: PathBuf,
}

impl AptRoot {
    fn new(with_snippet: bool) -> AptRoot {
        let t = TestRoot::new();
        t.set_units(&shapes::focal_units());
        let r = t.path().to_path_buf();
        for d in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/log/apt",
            "repo",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        let repo = r.join("repo");
        for (v, prerm) in [
            (V1, shapes::DOCKER_PRERM_ALWAYS_STOP),
            (V2, shapes::DOCKER_PRERM_REMOVE_ONLY),
        ] {
            Deb::new("docker.io", v)
                .script("prerm", prerm)
                .file(
                    "/lib/systemd/system/docker.service",
                    shapes::DOCKER_SERVICE_BINDSTO,
                )
                .build(&repo);
        }
        let packages = Command::new("apt-ftparchive")
            .args(["packages", "."])
            .current_dir(&repo)
            .output()
            .expect("apt-ftparchive (apt-utils) is needed for this test");
        assert!(packages.status.success());
        std::fs::write(repo.join("Packages"), &packages.stdout).unwrap();
        std::fs::write(
            r.join("etc/apt/sources.list"),
            format!("deb [trusted=yes] file:{} ./\n", repo.display()),
        )
        .unwrap();
        let rd = r.display();
        // apt runs dpkg with PATH set to DPkg::Path: the stand-ins must come first there.
        let config = r.join("etc/apt/apt.conf");
        std::fs::write(
            &config,
            format!(
                "Dir \"{rd}/\";\n\
                 Dir::State::status \"{rd}/var/lib/dpkg/status\";\n\
                 Dir::Etc::sourcelist \"{rd}/etc/apt/sources.list\";\n\
                 Dir::Etc::sourceparts \"{rd}/etc/apt/sources.list.d\";\n\
                 DPkg::Options {{ \"--root={rd}\"; \"--force-script-chrootless\"; \"--force-not-root\"; \"--force-bad-path\"; \"--log={rd}/var/log/dpkg.log\"; }};\n\
                 APT::Sandbox::User \"root\";\n\
                 DPkg::Path \"{}\";\n",
                t.script_path()
            ),
        )
        .unwrap();
        if with_snippet {
            t.install_apt_hooks();
        }
        let a = AptRoot { t, config };
        ok(&a.apt(&["update"]));
        a
    }

    fn apt(&self, args: &[&str]) -> Output {
        Command::new("apt-get")
            .args(["-y", "-q"])
            .args(args)
            .env("APT_CONFIG", &self.config)
            .env("PATH", self.t.script_path())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("DPKG_FRONTEND_LOCKED")
            .output()
            .unwrap()
    }
}

#[test]
fn without_the_snippet_the_upgrade_stops_docker() {
    let a = AptRoot::new(false);
    ok(&a.apt(&["install", &format!("docker.io={V1}")]));
    a.t.clear_calls();
    let log = ok(&a.apt(&["install", "docker.io"]));
    let calls = a.t.calls();
    assert!(calls.contains("stop docker.service"), "{calls}\n{log}");
}

#[test]
fn with_the_snippet_the_jit_guard_patches_before_dpkg_and_nothing_stops() {
    let a = AptRoot::new(true);
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
