//! `patch --revert` writes the bytes of a backup over the file its record names. The backup
//! store is therefore trusted input: a planted record must not turn `--revert` into "write
//! anything anywhere as root".

use docker_upgrade_guard::patch::backup::{self, sha256_hex, BackupRecord, RECORD_FORMAT};
use docker_upgrade_guard::patch::revert::{self, Reverted};
use docker_upgrade_guard::root::Root;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n";
const EVIL: &str = "root::0:0:root:/root:/bin/bash\n";

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Writes a record and its `.orig` straight into the store, as someone planting them would.
fn plant(root: &Root, original_path: &Path, installed: &str, orig: &str) {
    let dir = backup::dir(root);
    std::fs::create_dir_all(&dir).unwrap();
    mode(&dir, 0o700);
    let rec = BackupRecord {
        format: RECORD_FORMAT,
        package: "containerd".into(),
        version: "1.0-1".into(),
        script: "prerm".into(),
        original_path: original_path.to_path_buf(),
        original_sha256: sha256_hex(orig.as_bytes()),
        patched_sha256: sha256_hex(installed.as_bytes()),
        created: 1,
        xattrs: Vec::new(),
        stale: None,
    };
    let stem = backup::stem(
        &rec.package,
        &rec.version,
        backup::script_kind("prerm").unwrap(),
        &rec.original_sha256,
    )
    .unwrap();
    std::fs::write(dir.join(format!("{stem}.orig")), orig).unwrap();
    std::fs::write(
        dir.join(format!("{stem}.json")),
        serde_json::to_string(&rec).unwrap(),
    )
    .unwrap();
}

fn tree() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let info = root.admindir().join("info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    for p in [d.path().join("etc"), info] {
        mode(&p, 0o755);
    }
    (d, root)
}

#[test]
fn revert_refuses_a_record_naming_a_file_outside_dpkgs_info_dir() {
    let (d, root) = tree();
    let victim = d.path().join("etc/passwd");
    std::fs::write(&victim, PASSWD).unwrap();
    mode(&victim, 0o644);
    plant(&root, &victim, PASSWD, EVIL);

    let (outcomes, problems) = revert::revert(&root, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PASSWD);
    assert!(
        !outcomes.iter().any(|o| matches!(o, Reverted::Restored(_))),
        "{outcomes:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("etc/passwd") && p.contains(".json")),
        "{problems:?}"
    );
    assert!(
        backup::backup_for(&root, "containerd", backup::script_kind("prerm").unwrap()).is_none()
    );
}

#[test]
fn backups_in_a_store_others_can_write_are_not_believed() {
    let (_d, root) = tree();
    let script = root.admindir().join("info/containerd.prerm");
    let patched = "#!/bin/sh\n# patched\n";
    std::fs::write(&script, patched).unwrap();
    mode(&script, 0o755);
    plant(&root, &script, patched, "#!/bin/sh\nevil\n");

    // Sanity: in a private store the same record is a real, revertible backup.
    let (found, problems) = backup::list(&root);
    assert_eq!((found.len(), problems.len()), (1, 0), "{problems:?}");

    mode(&backup::dir(&root), 0o777);
    let (found, problems) = backup::list(&root);
    assert!(found.is_empty());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("writable by group or others")),
        "{problems:?}"
    );
    let (outcomes, _) = revert::revert(&root, &[]);
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert_eq!(std::fs::read_to_string(&script).unwrap(), patched);
}
