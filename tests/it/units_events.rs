//! The event log and the journal copy, in a temporary root.

use docker_upgrade_guard::events::{self, Event};
use docker_upgrade_guard::root::Root;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn ev(i: usize, message: &str) -> Event {
    Event {
        kind: "started".into(),
        unit: Some("docker.service".into()),
        package: Some("containerd".into()),
        old_version: Some("1.3.3-0ubuntu2".into()),
        new_version: Some(format!("1.3.3-0ubuntu2.{i}")),
        cause: Some("BindsTo=containerd.service".into()),
        outcome: Some("active again after 1.2 s".into()),
        message: message.into(),
        ..Event::default()
    }
}

#[test]
fn roundtrip_modes_and_time() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    events::record(&root, &ev(1, "started docker.service again")).unwrap();
    events::record(&root, &ev(2, "second")).unwrap();
    let dir = root.path(events::LOG_DIR);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o750);
    let file = events::log_path(&root);
    assert_eq!(
        std::fs::metadata(&file).unwrap().mode() & 0o7777 & !0o640,
        0
    );
    let got = events::last(&root, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].message, "second");
    assert_eq!(got[0].new_version.as_deref(), Some("1.3.3-0ubuntu2.1"));
    let t = &got[0].time;
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t}"
    );
    assert_eq!(events::last(&root, 1).unwrap()[0].message, "second");
    // No log yet elsewhere: nothing, not an error.
    let empty = tempfile::tempdir().unwrap();
    assert!(events::last(&Root::new(empty.path()), 5)
        .unwrap()
        .is_empty());
}

#[test]
fn rotation_keeps_each_file_under_the_bound() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let big = "x".repeat(10_000);
    let n = 250; // ~2.5 MB written in all: at least two rotations
    for i in 0..n {
        events::record(&root, &ev(i, &format!("{i} {big}"))).unwrap();
    }
    let cur = events::log_path(&root);
    let old = cur.with_file_name("events.jsonl.1");
    let (a, b) = (
        std::fs::metadata(&cur).unwrap().len(),
        std::fs::metadata(&old).unwrap().len(),
    );
    assert!(a <= events::MAX_LOG && b <= events::MAX_LOG, "{a} {b}");
    assert!(b > events::MAX_LOG - 20_000, "rotated only when full: {b}");
    let all = events::last(&root, 1000).unwrap();
    // Everything in the two files, consecutive, newest last.
    let first: usize = all[0].message.split(' ').next().unwrap().parse().unwrap();
    for (k, e) in all.iter().enumerate() {
        assert!(e.message.starts_with(&format!("{} ", first + k)));
    }
    assert_eq!(first + all.len(), n);
    assert_eq!(std::fs::read_dir(cur.parent().unwrap()).unwrap().count(), 2);
}

#[test]
fn a_symlinked_log_or_dir_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let dir = root.path(events::LOG_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let victim = d.path().join("shadow");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, events::log_path(&root)).unwrap();
    let err = events::record(&root, &ev(1, "m")).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(events::last(&root, 5).is_err(), "reading refuses it too");

    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    std::fs::create_dir_all(root.path("/var/log")).unwrap();
    std::fs::create_dir(d.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.path().join("elsewhere"), root.path(events::LOG_DIR)).unwrap();
    let err = events::record(&root, &ev(1, "m")).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(
        std::fs::read_dir(d.path().join("elsewhere"))
            .unwrap()
            .count(),
        0
    );

    // A FIFO planted as the log neither blocks nor is written.
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    events::record(&root, &ev(1, "m")).unwrap();
    std::fs::remove_file(events::log_path(&root)).unwrap();
    nix::unistd::mkfifo(
        &events::log_path(&root),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let err = events::record(&root, &ev(1, "m")).unwrap_err().to_string();
    assert!(
        err.contains("cannot open") || err.contains("regular"),
        "{err}"
    );
}

#[test]
fn malformed_lines_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    events::record(&root, &ev(1, "one")).unwrap();
    let path = events::log_path(&root);
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"not json\n{\"kind\":\"started\"}\n\xff\xfe\n{\"truncated\":\n\n");
    std::fs::write(&path, text).unwrap();
    events::record(&root, &ev(2, "two")).unwrap();
    let got: Vec<String> = events::last(&root, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(got, ["one", "two"]);
}

/// Splits a native-protocol datagram into (key, value) pairs.
fn fields(mut p: &[u8]) -> Vec<(String, String)> {
    let mut out = vec![];
    while !p.is_empty() {
        let nl = p.iter().position(|b| *b == b'\n').unwrap();
        let line = &p[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                String::from_utf8(line[eq + 1..].to_vec()).unwrap(),
            ));
            p = &p[nl + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).unwrap();
            let len = u64::from_le_bytes(p[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = String::from_utf8(p[nl + 9..nl + 9 + len].to_vec()).unwrap();
            assert_eq!(p[nl + 9 + len], b'\n');
            out.push((key, value));
            p = &p[nl + 10 + len..];
        }
    }
    out
}

#[test]
fn the_journal_gets_one_datagram_with_the_fields() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let sock = root.path(events::JOURNAL_SOCKET);
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let j = UnixDatagram::bind(&sock).unwrap();
    j.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut e = ev(
        7,
        "started docker.service again: containerd upgrade stopped it\n(BindsTo=)",
    );
    e.kind = "started".into();
    events::record(&root, &e).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = j.recv(&mut buf).unwrap();
    let got = fields(&buf[..n]);
    let want: Vec<(String, String)> = [
        ("MESSAGE", e.message.as_str()),
        ("PRIORITY", "5"),
        ("SYSLOG_IDENTIFIER", "docker-upgrade-guard"),
        ("DUG_KIND", "started"),
        ("DUG_UNIT", "docker.service"),
        ("DUG_PACKAGE", "containerd"),
        ("DUG_OLD_VERSION", "1.3.3-0ubuntu2"),
        ("DUG_NEW_VERSION", "1.3.3-0ubuntu2.7"),
        ("DUG_CAUSE", "BindsTo=containerd.service"),
        ("DUG_OUTCOME", "active again after 1.2 s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
    j.set_nonblocking(true).unwrap();
    assert!(j.recv(&mut buf).is_err(), "exactly one datagram");

    // A journal socket nobody serves: the file log still works, the error is returned. (Not by
    // dropping `j`: the tests share one process, and a child forked by another test holds a
    // copy of the fd until its exec, so the socket can outlive the drop for a moment.)
    drop(j);
    std::fs::remove_file(&sock).unwrap();
    std::fs::write(&sock, b"").unwrap();
    let err = events::record(&root, &e).unwrap_err().to_string();
    assert!(err.contains("journal"), "{err}");
    assert_eq!(events::last(&root, 10).unwrap().len(), 2);
}

#[test]
fn concurrent_writers_never_interleave() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    events::record(&root, &ev(i, &format!("{t}-{i} {}", "y".repeat(300)))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(events::log_path(&root)).unwrap();
    assert_eq!(text.lines().count(), 600);
    assert_eq!(events::last(&root, 1000).unwrap().len(), 600);
}
