//! `StatusDb::load` against databases written by the real dpkg, including a journal
//! (`updates/`) captured from inside a maintainer script, while dpkg had not folded it yet.

use crate::support::{ok, Deb, TestRoot};
use docker_upgrade_guard::dpkg::status::{State, StatusDb};

/// A postinst that copies the live database (status + journal) to `<root>/snap/`.
const SNAPSHOT_POSTINST: &str = "#!/bin/sh\nset -e\nrm -rf \"$DPKG_ROOT/snap\"\nmkdir -p \"$DPKG_ROOT/snap\"\ncp -a \"$DPKG_ADMINDIR/status\" \"$DPKG_ADMINDIR/updates\" \"$DPKG_ROOT/snap/\"\n";

#[test]
fn reads_the_real_dpkg_journal_mid_operation() {
    let root = TestRoot::new();
    let debs = tempfile::tempdir().unwrap();
    let v1 = Deb::new("alpha", "1.0-1").build(debs.path());
    let other = Deb::new("beta", "3:0.9~rc1").build(debs.path());
    ok(&root.dpkg(
        &["-i", v1.to_str().unwrap(), other.to_str().unwrap()],
        false,
    ));
    let v2 = Deb::new("alpha", "1.0-2")
        .script("postinst", SNAPSHOT_POSTINST)
        .build(debs.path());
    ok(&root.dpkg(&["-i", v2.to_str().unwrap()], false));

    let snap = root.path().join("snap");
    let journal: Vec<_> = std::fs::read_dir(snap.join("updates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        journal
            .iter()
            .any(|n| n.bytes().all(|b| b.is_ascii_digit())),
        "dpkg left no journal entry to test with: {journal:?}"
    );

    // With the journal: what dpkg itself believed while running the postinst.
    let db = StatusDb::load(&snap).unwrap();
    assert!(db.problems.is_empty(), "{:?}", db.problems);
    let alpha = db.get("alpha").unwrap();
    assert_eq!(alpha.state, State::HalfConfigured);
    assert_eq!(alpha.version.as_ref().unwrap().as_str(), "1.0-2");
    assert_eq!(alpha.arch.as_deref(), Some("all"));
    assert_eq!(db.get("beta").unwrap().version.as_ref().unwrap().epoch, 3);

    // The status file alone says something else: a reader ignoring updates/ would be wrong.
    std::fs::remove_dir_all(snap.join("updates")).unwrap();
    let stale = StatusDb::load(&snap).unwrap();
    let stale_alpha = stale.get("alpha").unwrap();
    assert!(
        stale_alpha.state != State::HalfConfigured
            || stale_alpha.version.as_ref().unwrap().as_str() != "1.0-2",
        "status alone already had the final state: {stale_alpha:?}"
    );

    // After dpkg finished, it has folded the journal into status.
    let db = StatusDb::load(&root.path().join("var/lib/dpkg")).unwrap();
    let alpha = db.get("alpha").unwrap();
    assert_eq!(alpha.state, State::Installed);
    assert_eq!(alpha.version.as_ref().unwrap().as_str(), "1.0-2");

    // Removal keeps a config-files/not-installed record or none; never a present one.
    ok(&root.dpkg(&["--remove", "beta"], false));
    let db = StatusDb::load(&root.path().join("var/lib/dpkg")).unwrap();
    assert!(db.get("beta").is_none_or(|b| !b.is_present()));
}
