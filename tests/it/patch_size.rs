//! `patch` never writes a script that `patch --revert` (or any later run) could not read back:
//! a repair whose result is larger than `fsutil::MAX_TEXT_FILE` is refused before anything is
//! written.

use crate::support::{ok, shapes, TestRoot};
use docker_upgrade_guard::fsutil::MAX_TEXT_FILE;
use docker_upgrade_guard::patch::backup;
use docker_upgrade_guard::root::Root;
use std::os::unix::fs::PermissionsExt;

/// The always-stop block of containerd's prerm, repeated until the script is just under the
/// limit: every copy is guarded by the repair, so the repaired text grows past it.
fn big_prerm() -> String {
    let text = shapes::CONTAINERD_PRERM_ALWAYS_STOP;
    let (header, block) = text.split_at(text.find("# Automatically").unwrap());
    let mut out = header.to_string();
    while (out.len() + block.len()) as u64 <= MAX_TEXT_FILE {
        out.push_str(block);
    }
    out
}

#[test]
fn refuses_a_repair_that_grows_past_what_the_tool_reads() {
    let t = TestRoot::new();
    let debs = t.path().join("debs");
    let deb = shapes::containerd_deb("1.3.3-0ubuntu2").build(&debs);
    ok(&t.dpkg(&["-i", deb.to_str().unwrap()], false));
    let prerm = t.path().join("var/lib/dpkg/info/containerd.prerm");
    let big = big_prerm();
    assert!(
        big.len() as u64 <= MAX_TEXT_FILE,
        "the original itself is readable"
    );
    std::fs::write(&prerm, &big).unwrap();
    std::fs::set_permissions(&prerm, std::fs::Permissions::from_mode(0o755)).unwrap();

    let o = t.tool(&["patch", "--package", "containerd"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "a refusal exits 1:\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not patching"))
        .collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    let line = lines[0];
    assert!(line.contains(&prerm.display().to_string()), "{line}");
    assert!(line.contains(&format!("{} bytes", big.len())), "{line}");
    assert!(line.contains(&MAX_TEXT_FILE.to_string()), "{line}");

    assert_eq!(
        std::fs::read_to_string(&prerm).unwrap(),
        big,
        "script unchanged"
    );
    assert!(
        !backup::dir(&Root::new(t.path())).exists(),
        "no backup for a refused script"
    );
    let left: Vec<_> = std::fs::read_dir(prerm.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dug-tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    // --revert has nothing to do and the script is still the one dpkg installed.
    let o = t.tool(&["patch", "--revert"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&prerm).unwrap(), big);
}
