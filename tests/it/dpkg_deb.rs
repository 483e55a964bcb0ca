//! `.deb` reading against real packages built with `dpkg-deb --build`.

use crate::support::{shapes, Deb};
use docker_upgrade_guard::dpkg::deb::{cached_candidate, control_script, fields};
use docker_upgrade_guard::dpkg::info::ScriptKind;
use docker_upgrade_guard::dpkg::version::Version;
use docker_upgrade_guard::root::Root;
use std::path::Path;
use std::process::Command;

#[test]
fn reads_fields_and_control_scripts() {
    let out = tempfile::tempdir().unwrap();
    let deb = Deb::new("docker.io", "1:19.03.8-0ubuntu1")
        .script("prerm", shapes::DOCKER_PRERM_ALWAYS_STOP)
        .script("postinst", "#!/bin/sh\nexit 0\n")
        .file("/usr/share/doc/docker.io/README", "hello")
        .build(out.path());
    assert!(deb
        .to_str()
        .unwrap()
        .ends_with("docker.io_1%3a19.03.8-0ubuntu1_all.deb"));

    let (name, version) = fields(&deb).unwrap();
    assert_eq!(name, "docker.io");
    assert_eq!(version, Version::parse("1:19.03.8-0ubuntu1").unwrap());
    assert_eq!(version.as_str(), "1:19.03.8-0ubuntu1");

    assert_eq!(
        control_script(&deb, ScriptKind::Prerm).unwrap().as_deref(),
        Some(shapes::DOCKER_PRERM_ALWAYS_STOP)
    );
    assert_eq!(
        control_script(&deb, ScriptKind::Postinst)
            .unwrap()
            .as_deref(),
        Some("#!/bin/sh\nexit 0\n")
    );
    assert_eq!(control_script(&deb, ScriptKind::Postrm).unwrap(), None);
    assert_eq!(control_script(&deb, ScriptKind::Preinst).unwrap(), None);

    // A relative path that looks like an option is still a file name to dpkg-deb. The tests
    // share one process, so the current directory is not changed: the file is made in it
    // (cargo runs tests in the package root) under a name no other test uses, and removed.
    let odd = format!("-odd-{}.deb", std::process::id());
    struct Remove<'a>(&'a str);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    std::fs::copy(&deb, &odd).unwrap();
    let _gone = Remove(&odd);
    let (name, _) = fields(Path::new(&odd)).unwrap();
    assert_eq!(name, "docker.io");
}

#[test]
fn refuses_a_symlinked_or_binary_script_and_garbage_debs() {
    let tree = tempfile::tempdir().unwrap();
    let debian = tree.path().join("DEBIAN");
    std::fs::create_dir(&debian).unwrap();
    std::fs::write(
        debian.join("control"),
        "Package: containerd\nVersion: 1.3.3-0ubuntu2\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: t\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", debian.join("prerm")).unwrap();
    std::fs::write(debian.join("postinst"), b"#!/bin/sh\n\0\n").unwrap();
    Command::new("chmod")
        .arg("0755")
        .arg(debian.join("postinst"))
        .status()
        .unwrap();
    let deb = tree.path().join("c.deb");
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(tree.path())
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let err = control_script(&deb, ScriptKind::Prerm).unwrap_err();
    assert!(format!("{err:#}").contains("symlink"), "{err:#}");
    let err = control_script(&deb, ScriptKind::Postinst).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("NUL") && msg.contains("c.deb"), "{msg}");

    let junk = tree.path().join("junk.deb");
    std::fs::write(&junk, "this is not an ar archive\n").unwrap();
    for err in [
        format!("{:#}", fields(&junk).unwrap_err()),
        format!(
            "{:#}",
            control_script(&junk, ScriptKind::Prerm).unwrap_err()
        ),
    ] {
        assert!(err.contains("junk.deb") && err.contains("failed"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let err = format!(
        "{:#}",
        fields(&tree.path().join("missing.deb")).unwrap_err()
    );
    assert!(err.contains("missing.deb"), "{err}");
}

#[test]
fn finds_the_newest_newer_cached_candidate() {
    let root = tempfile::tempdir().unwrap();
    let archives = root.path().join("var/cache/apt/archives");
    std::fs::create_dir_all(&archives).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(root.path().join("var/lib/dpkg/arch"), "amd64\n").unwrap();
    let r = Root::new(root.path());
    let v = |s: &str| Version::parse(s).unwrap();
    assert_eq!(cached_candidate(&r, "containerd", &v("1")).unwrap(), None);

    for name in [
        "containerd_1.6.20~ds1-1_amd64.deb",
        "containerd_1.6.20~ds1-1+deb12u1_amd64.deb",
        "containerd_1.6.20~ds1-1+deb12u3_arm64.deb", // foreign architecture
        "containerd_1.7.0~rc1-1_all.deb",
        "containerd-shim_9_amd64.deb",
        "containerd_bad$version_amd64.deb",
        "lock",
    ] {
        std::fs::write(archives.join(name), "").unwrap();
    }
    std::fs::create_dir(archives.join("partial")).unwrap();
    std::os::unix::fs::symlink("/dev/null", archives.join("containerd_9.9_amd64.deb")).unwrap();
    std::fs::write(archives.join("docker.io_1%3a20.10.24-1_amd64.deb"), "").unwrap();
    std::fs::write(archives.join("docker.io_20.10.25-1_amd64.deb"), "").unwrap();

    let got = |pkg: &str, than: &str| {
        cached_candidate(&r, pkg, &v(than))
            .unwrap()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
    };
    assert_eq!(
        got("containerd", "1.6.20~ds1-1").as_deref(),
        Some("containerd_1.7.0~rc1-1_all.deb")
    );
    assert_eq!(got("containerd", "1.7.0~rc1-1"), None, "not newer");
    assert_eq!(got("containerd", "1.7.0"), None);
    // The epoch (%3a) wins over a bigger upstream number.
    assert_eq!(
        got("docker.io", "20.10.24-1").as_deref(),
        Some("docker.io_1%3a20.10.24-1_amd64.deb")
    );
    assert_eq!(got("runc", "0"), None);
}
