//! Shared helpers for the integration tests: small `.deb`s built with the real `dpkg-deb`,
//! a temp root managed by the real `dpkg --root`, and the recording `systemctl` stand-in.
//!
//! Used by every module of the integration crate as `crate::support`.

pub(crate) mod engine;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_docker-upgrade-guard");

pub(crate) fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

/// A package to build with `dpkg-deb --build`.
#[derive(Debug, Clone)]
pub(crate) struct Deb {
    pub name: String,
    pub version: String,
    pub scripts: Vec<(String, String)>,
    /// Other control files (`triggers`, ...), mode 0644.
    pub control: Vec<(String, String)>,
    pub files: Vec<(String, String)>,
}

impl Deb {
    pub(crate) fn new(name: &str, version: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            scripts: vec![],
            control: vec![],
            files: vec![],
        }
    }

    /// A maintainer script (`prerm`, `postinst`, ...), written with mode 0755.
    pub(crate) fn script(mut self, kind: &str, text: &str) -> Deb {
        self.scripts.push((kind.into(), text.into()));
        self
    }

    /// A control file that is not a script (`triggers`), written with mode 0644.
    pub(crate) fn control(mut self, name: &str, text: &str) -> Deb {
        self.control.push((name.into(), text.into()));
        self
    }

    /// A file shipped by the package (`/lib/systemd/system/docker.service`, ...).
    pub(crate) fn file(mut self, path: &str, text: &str) -> Deb {
        self.files
            .push((path.trim_start_matches('/').into(), text.into()));
        self
    }

    /// Builds `<out>/<name>_<version>_all.deb` and returns its path.
    pub(crate) fn build(&self, out: &Path) -> PathBuf {
        let tree = tempfile::tempdir().unwrap();
        let debian = tree.path().join("DEBIAN");
        std::fs::create_dir_all(&debian).unwrap();
        std::fs::write(
            debian.join("control"),
            format!(
                "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: Test <test@example.invalid>\nDescription: test package\n",
                self.name, self.version
            ),
        )
        .unwrap();
        for (kind, text) in &self.scripts {
            let p = debian.join(kind);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (name, text) in &self.control {
            std::fs::write(debian.join(name), text).unwrap();
        }
        for (path, text) in &self.files {
            let p = tree.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        }
        std::fs::create_dir_all(out).unwrap();
        let deb = out.join(format!(
            "{}_{}_all.deb",
            self.name,
            self.version.replace(':', "%3a")
        ));
        let o = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(tree.path())
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dpkg-deb --build: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        deb
    }
}

/// A temp root with an empty dpkg database, driven by the real `dpkg --root`, with the
/// recording `systemctl` stand-in in `<root>/fakebin/` (first on the maintainer scripts' PATH).
pub(crate) struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub(crate) fn new() -> TestRoot {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in [
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/log",
            "etc",
            "tmp",
            "run/systemd/system",
            "run/containerd",
            "fakebin",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
        std::os::unix::fs::symlink(
            support_dir().join("fake-systemctl"),
            r.join("fakebin/systemctl"),
        )
        .unwrap();
        for tool in ["deb-systemd-invoke", "invoke-rc.d"] {
            std::os::unix::fs::symlink(
                support_dir().join("bin").join(tool),
                r.join("fakebin").join(tool),
            )
            .unwrap();
        }
        let t = TestRoot { dir };
        t.set_units(&serde_json::json!({}));
        t
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn systemctl(&self) -> PathBuf {
        self.path().join("fakebin/systemctl")
    }

    /// Replaces the stand-in's whole state (see tests/support/fake-systemctl).
    pub(crate) fn set_state(&self, state: &serde_json::Value) {
        std::fs::write(
            self.path().join("fakebin/state.json"),
            serde_json::to_vec_pretty(state).unwrap(),
        )
        .unwrap();
    }

    /// Sets the stand-in's units; docker's `/_ping` is served on `<root>/run/docker.sock` and
    /// containerd's socket accepts on `<root>/run/containerd/containerd.sock` while they run.
    pub(crate) fn set_units(&self, units: &serde_json::Value) {
        self.set_state(&serde_json::json!({
            "units": units,
            "docker_sock": self.path().join("run/docker.sock"),
            "containerd_sock": self.path().join("run/containerd/containerd.sock"),
        }));
    }

    pub(crate) fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path().join("fakebin/state.json")).unwrap())
            .unwrap()
    }

    pub(crate) fn is_active(&self, unit: &str) -> bool {
        self.state()["units"][unit]["active"]
            .as_bool()
            .unwrap_or(false)
    }

    /// Every systemctl call so far, one per line; indented lines are what the stand-in did.
    pub(crate) fn calls(&self) -> String {
        std::fs::read_to_string(self.path().join("fakebin/calls.log")).unwrap_or_default()
    }

    pub(crate) fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path().join("fakebin/calls.log"));
    }

    /// Runs the real dpkg on this root, outside apt. `hooks`: with our package's dpkg file
    /// trigger registered first (see [`TestRoot::install_dpkg_trigger`]), as the .deb installs it.
    pub(crate) fn dpkg(&self, args: &[&str], hooks: bool) -> Output {
        if hooks {
            self.install_dpkg_trigger();
        }
        self.dpkg_cmd().args(args).output().unwrap()
    }

    /// The real dpkg on this root with the stand-ins first on the scripts' PATH.
    pub(crate) fn dpkg_cmd(&self) -> Command {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.path().display()))
            .arg(format!(
                "--log={}",
                self.path().join("var/log/dpkg.log").display()
            ))
            .args([
                "--force-script-chrootless",
                "--force-not-root",
                "--force-bad-path",
            ])
            .env("PATH", self.script_path())
            .env_remove("DPKG_FRONTEND_LOCKED");
        cmd
    }

    /// Installs (once) a package named like ours that carries the shipped trigger interests
    /// (debian/docker-upgrade-guard.triggers) and the shipped postinst, with the binary
    /// replaced by the wrapper that confines the tool to this root and the stand-in systemctl.
    pub(crate) fn install_dpkg_trigger(&self) {
        let marker = self
            .path()
            .join("var/lib/dpkg/info/docker-upgrade-guard.triggers");
        if marker.exists() {
            return;
        }
        let wrapper = self.wrapper();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian");
        let read = |n: &str| std::fs::read_to_string(repo.join(n)).unwrap();
        let postinst =
            read("postinst").replace("/usr/sbin/docker-upgrade-guard", wrapper.to_str().unwrap());
        let deb = Deb::new("docker-upgrade-guard", "0.2.0")
            .script("postinst", &postinst)
            .control("triggers", &read("docker-upgrade-guard.triggers"))
            .file(
                "/usr/share/doc/docker-upgrade-guard/test",
                "the test's trigger package\n",
            )
            .build(&self.path().join("tmp/trigger-deb"));
        let o = self.dpkg_cmd().arg("-i").arg(&deb).output().unwrap();
        assert!(o.status.success(), "installing the trigger package: {o:?}");
    }

    /// `<root>/fakebin/docker-upgrade-guard`: runs our binary with `--root` this root and the
    /// stand-in systemctl.
    pub(crate) fn wrapper(&self) -> PathBuf {
        let wrapper = self.path().join("fakebin/docker-upgrade-guard");
        if !wrapper.exists() {
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec {BIN} --root {} --systemctl {} \"$@\"\n",
                    self.path().display(),
                    self.systemctl().display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        wrapper
    }

    /// PATH for maintainer scripts: the stand-ins first.
    pub(crate) fn script_path(&self) -> String {
        format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.path().join("fakebin").display()
        )
    }

    /// Runs our binary with `--root` this root and the stand-in systemctl.
    pub(crate) fn tool(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.path())
            .arg("--systemctl")
            .arg(self.systemctl())
            .args(args)
            .env_remove("DPKG_FRONTEND_LOCKED")
            .output()
            .unwrap()
    }

    /// Installs the shipped apt hooks (hooks/apt.conf and hooks/apt-pkgs-hook) under this root,
    /// with the binary replaced by a wrapper that confines the tool to this root and the
    /// stand-in systemctl, and the wrapper's path re-rooted. For apt run with `Dir` = this root.
    pub(crate) fn install_apt_hooks(&self) {
        let r = self.path();
        let wrapper = self.wrapper();
        let shipped = |name: &str| {
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("hooks")
                    .join(name),
            )
            .unwrap()
            .replace("/usr/sbin/docker-upgrade-guard", wrapper.to_str().unwrap())
            .replace(
                "/etc/docker-upgrade-guard/",
                &format!("{}/etc/docker-upgrade-guard/", r.display()),
            )
            // The lines look for the record themselves before starting the binary.
            .replace(
                "$DPKG_ROOT/run/docker-upgrade-guard/",
                &format!("{}/run/docker-upgrade-guard/", r.display()),
            )
        };
        let pkgs_hook = r.join("etc/docker-upgrade-guard/apt-pkgs-hook");
        std::fs::create_dir_all(pkgs_hook.parent().unwrap()).unwrap();
        std::fs::write(&pkgs_hook, shipped("apt-pkgs-hook")).unwrap();
        std::fs::set_permissions(&pkgs_hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(r.join("etc/apt/apt.conf.d")).unwrap();
        std::fs::write(
            r.join("etc/apt/apt.conf.d/99zz-docker-upgrade-guard"),
            shipped("apt.conf"),
        )
        .unwrap();
    }

    pub(crate) fn write(&self, abs: &str, text: &str) {
        let p = self.path().join(abs.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Default for TestRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// The real apt confined to a [`TestRoot`]: `APT_CONFIG` points `Dir` and the status file at
/// the root, apt runs dpkg with `--root` and the stand-ins first on `DPkg::Path` (apt resets
/// dpkg's PATH to it), and the only source is a `[trusted=yes]` file repository in
/// `<root>/repo` indexed with `apt-ftparchive` (apt-utils).
pub(crate) struct AptRoot {
    pub t: TestRoot,
    /// The apt.conf given as `APT_CONFIG`.
    pub config: PathBuf,
}

impl AptRoot {
    /// `hooks`: install the shipped apt hooks (see [`TestRoot::install_apt_hooks`]).
    pub(crate) fn new(t: TestRoot, hooks: bool) -> AptRoot {
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
        std::fs::write(
            r.join("etc/apt/sources.list"),
            format!("deb [trusted=yes] file:{} ./\n", r.join("repo").display()),
        )
        .unwrap();
        let rd = r.display();
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
        if hooks {
            t.install_apt_hooks();
        }
        AptRoot { t, config }
    }

    /// Adds `debs` to the repository and runs `apt-get update`.
    pub(crate) fn publish(&self, debs: &[Deb]) {
        let repo = self.t.path().join("repo");
        for d in debs {
            d.build(&repo);
        }
        let packages = Command::new("apt-ftparchive")
            .args(["packages", "."])
            .current_dir(&repo)
            .output()
            .expect("apt-ftparchive (apt-utils) is needed for this test");
        assert!(packages.status.success());
        std::fs::write(repo.join("Packages"), &packages.stdout).unwrap();
        ok(&self.apt(&["update"]));
    }

    pub(crate) fn apt(&self, args: &[&str]) -> Output {
        Command::new("apt-get")
            .args(["-y", "-q"])
            .args(args)
            .env("APT_CONFIG", &self.config)
            .env("PATH", self.t.script_path())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("DPKG_FRONTEND_LOCKED")
            .env_remove("DOCKER_UPGRADE_GUARD_SUSPEND")
            .output()
            .unwrap()
    }
}

/// A child that holds an fcntl write lock on `path` (Python's lockf is fcntl F_SETLK, like
/// dpkg's) until its stdin closes.
pub(crate) struct LockHolder(pub std::process::Child);

impl LockHolder {
    pub(crate) fn new(path: &std::path::Path) -> LockHolder {
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import fcntl,sys\n\
                 f=open(sys.argv[1],'a+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 is needed for this test");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The focal-era shapes, for the tests of several areas.
pub(crate) mod shapes {
    /// containerd 1.3.3-0ubuntu2's prerm: debhelper compat 9 `dh_systemd_start` without -r.
    pub(crate) const CONTAINERD_PRERM_ALWAYS_STOP: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_systemd_start/12.10ubuntu1\nif [ -d \"$DPKG_ROOT/run/systemd/system\" ]; then\n\tdeb-systemd-invoke stop 'containerd.service' >/dev/null || true\nfi\n# End automatically added section\n";
    /// Its postinst: only `start`.
    pub(crate) const CONTAINERD_POSTINST_START: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_systemd_start/12.10ubuntu1\nif [ -d \"$DPKG_ROOT/run/systemd/system\" ]; then\n\tsystemctl --system daemon-reload >/dev/null || true\n\tdeb-systemd-invoke start 'containerd.service' >/dev/null || true\nfi\n# End automatically added section\n";
    /// docker.io 19.03.x's prerm (LP: #1906364): stops docker on every call.
    pub(crate) const DOCKER_PRERM_ALWAYS_STOP: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_systemd_start/12.10ubuntu1\nif [ -d \"$DPKG_ROOT/run/systemd/system\" ]; then\n\tdeb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true\nfi\n# End automatically added section\n# Automatically added by dh_installinit/12.10ubuntu1\nif [ -x \"/etc/init.d/docker\" ] && [ \"$1\" = remove ]; then\n\tinvoke-rc.d docker stop || exit 1\nfi\n# End automatically added section\n";
    /// The fixed shape: stop only on remove.
    pub(crate) const DOCKER_PRERM_REMOVE_ONLY: &str = "#!/bin/sh\nset -e\n# Automatically added by dh_systemd_start/12.10ubuntu1\nif [ -d \"$DPKG_ROOT/run/systemd/system\" ] && [ \"$1\" = remove ]; then\n\tdeb-systemd-invoke stop 'docker.service' 'docker.socket' >/dev/null || true\nfi\n# End automatically added section\n";
    pub(crate) const DOCKER_SERVICE_BINDSTO: &str = "[Unit]\nDescription=Docker Application Container Engine\nAfter=network-online.target docker.socket firewalld.service containerd.service\nWants=network-online.target\nRequires=docker.socket\nBindsTo=containerd.service\n\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n";
    pub(crate) const DOCKER_SOCKET: &str = "[Unit]\nDescription=Docker Socket for the API\nPartOf=docker.service\n\n[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\n\n[Install]\nWantedBy=sockets.target\n";
    pub(crate) const CONTAINERD_SERVICE: &str = "[Unit]\nDescription=containerd container runtime\nAfter=network.target local-fs.target\n\n[Service]\nExecStart=/usr/bin/containerd\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n";

    /// containerd 1.3.3-0ubuntu2's shape: always-stop prerm, start-only postinst.
    pub(crate) fn containerd_deb(version: &str) -> super::Deb {
        super::Deb::new("containerd", version)
            .script("prerm", CONTAINERD_PRERM_ALWAYS_STOP)
            .script("postinst", CONTAINERD_POSTINST_START)
            .file("/lib/systemd/system/containerd.service", CONTAINERD_SERVICE)
    }

    /// docker.io with `prerm` and focal's units (docker.service BindsTo=containerd.service,
    /// docker.socket PartOf=docker.service), and no postinst: nothing in it starts docker.
    pub(crate) fn docker_deb(version: &str, prerm: &str) -> super::Deb {
        super::Deb::new("docker.io", version)
            .script("prerm", prerm)
            .file("/lib/systemd/system/docker.service", DOCKER_SERVICE_BINDSTO)
            .file("/lib/systemd/system/docker.socket", DOCKER_SOCKET)
    }

    /// The stand-in's units for a running focal-shaped node.
    pub(crate) fn focal_units() -> serde_json::Value {
        serde_json::json!({
            "containerd.service": {"active": true, "load": "loaded", "file_state": "enabled"},
            "docker.socket": {"active": true, "load": "loaded", "file_state": "enabled",
                               "deps": {"PartOf": ["docker.service"]}},
            "docker.service": {"active": true, "load": "loaded", "file_state": "enabled",
                                "deps": {"BindsTo": ["containerd.service"], "Requires": ["docker.socket"]}},
        })
    }
}
