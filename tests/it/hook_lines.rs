//! The shipped hook lines themselves (hooks/apt.conf, hooks/apt-pkgs-hook, and the trigger's
//! branch of debian/postinst), run as apt and dpkg run them (`sh -c LINE`, `postinst triggered
//! PATHS`, their environment), with the binary replaced by a
//! stand-in that logs each start: which lines decide in the shell without starting the binary,
//! and that every line is silent and succeeds when the binary is gone.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BINARY: &str = "/usr/sbin/docker-upgrade-guard";

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("hooks")
            .join(name),
    )
    .unwrap()
}

/// The one command string of an apt.conf list entry `KEY { "..."; };`.
fn apt_line(key: &str) -> String {
    let conf = shipped("apt.conf");
    let line = conf
        .lines()
        .find(|l| l.starts_with(&format!("{key} {{")))
        .unwrap_or_else(|| panic!("{key} not in hooks/apt.conf"));
    let start = line.find('"').unwrap() + 1;
    let end = line.rfind("\";").unwrap();
    line[start..end].to_string()
}

/// A command that runs the shipped postinst (with the binary at `bin`) as dpkg runs it.
fn postinst(l: &Lines, bin: &Path, args: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/postinst"))
            .unwrap()
            .replace(BINARY, bin.to_str().unwrap());
    let p = l.root().join(format!(
        "postinst-{}",
        bin.parent().unwrap().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&p, text).unwrap();
    format!("sh {} {args}", p.display())
}

const TRIGGERED: &str = "triggered '/usr/bin/containerd /lib/systemd/system/containerd.service'";

/// A root with a stand-in binary that appends its arguments to `starts`.
struct Lines {
    dir: tempfile::TempDir,
}

impl Lines {
    fn new() -> Lines {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin/docker-upgrade-guard");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ncat >/dev/null\necho \"$*\" >>{}/starts\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Lines { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn bin(&self) -> PathBuf {
        self.root().join("bin/docker-upgrade-guard")
    }

    fn record(&self, present: bool) {
        let p = self.root().join("run/docker-upgrade-guard/txn.json");
        if present {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "{}").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    fn starts(&self) -> String {
        std::fs::read_to_string(self.root().join("starts")).unwrap_or_default()
    }

    /// Runs `line` as dpkg or apt would (`sh -c`), with the binary at `bin`, DPKG_ROOT this
    /// root (as dpkg sets it for `--root`), `env` on top; returns the output (must be empty)
    /// after asserting exit 0.
    fn run(&self, line: &str, bin: &Path, env: &[(&str, &str)], stdin: &[u8]) -> String {
        let line = line.replace(BINARY, bin.to_str().unwrap());
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(&line)
            .env_remove("DPKG_FRONTEND_LOCKED")
            .env("DPKG_ROOT", self.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

const LOCKED: &[(&str, &str)] = &[
    ("DPKG_FRONTEND_LOCKED", "true"),
    ("DPKG_HOOK_ACTION", "unpack"),
];

#[test]
fn inside_apt_the_trigger_starts_nothing() {
    let l = Lines::new();
    l.record(true);
    assert_eq!(
        l.run(&postinst(&l, &l.bin(), TRIGGERED), &l.bin(), LOCKED, b""),
        ""
    );
    assert_eq!(
        l.starts(),
        "",
        "inside apt, the trigger must not start the binary"
    );
}

#[test]
fn dpkg_without_apt_the_trigger_starts_the_binary_and_configure_does_not() {
    let l = Lines::new();
    // DPKG_FRONTEND_LOCKED empty counts as unset (as for the binary).
    for env in [&[][..], &[("DPKG_FRONTEND_LOCKED", "")][..]] {
        l.run(&postinst(&l, &l.bin(), TRIGGERED), &l.bin(), env, b"");
    }
    assert_eq!(l.starts(), "hook dpkg-trigger\nhook dpkg-trigger\n");
    l.run(
        &postinst(&l, &l.bin(), "configure 0.1.0"),
        &l.bin(),
        &[],
        b"",
    );
    assert_eq!(l.starts(), "hook dpkg-trigger\nhook dpkg-trigger\n");
}

#[test]
fn post_line_starts_the_binary_only_when_a_record_exists() {
    let l = Lines::new();
    let apt_post = apt_line("DPkg::Post-Invoke");
    l.record(false);
    l.run(&apt_post, &l.bin(), &[], b"");
    assert_eq!(l.starts(), "", "no record: nothing to start the binary for");
    l.record(true);
    l.run(&apt_post, &l.bin(), &[], b"");
    assert_eq!(l.starts(), "hook apt-post\n");
}

#[test]
fn every_line_is_silent_and_succeeds_without_the_binary() {
    let l = Lines::new();
    l.record(true);
    let gone = l.root().join("gone/docker-upgrade-guard");
    for line in [
        apt_line("DPkg::Post-Invoke"),
        postinst(&l, &gone, TRIGGERED),
    ] {
        assert_eq!(l.run(&line, &gone, &[], b""), "", "{line}");
    }
    // The Pre-Install-Pkgs wrapper reads apt's list to its end (apt must not see a broken
    // pipe), here more than a pipe holds.
    let wrapper = l.root().join("apt-pkgs-hook");
    std::fs::write(
        &wrapper,
        shipped("apt-pkgs-hook").replace(BINARY, gone.to_str().unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let line = apt_line("DPkg::Pre-Install-Pkgs").replace(
        "/etc/docker-upgrade-guard/apt-pkgs-hook",
        wrapper.to_str().unwrap(),
    );
    let stream = "VERSION 3\n".to_string() + &"A::B=c\n".repeat(40_000);
    assert_eq!(l.run(&line, &gone, &[], stream.as_bytes()), "");
}
