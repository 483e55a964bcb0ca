//! Fault case 3: a real unprivileged process races the tool for its directories. Ubuntu ships
//! `/var/log` as `root:syslog 0775`; here `var/log`, `run` and `var/lib` of a temp root belong
//! to the attacker's group (nobody, 65534) and are group-writable. While the hook (or `patch`)
//! runs again and again, the attacker swaps our directory for one of its own (renameat2
//! RENAME_EXCHANGE) and back, and moves our directory away to replace the one root makes next
//! with a symlink (the mkdir window) to its own directory or to a root-owned 1777 bystander.
//! Nothing may ever be created in an attacker's directory, no mode may change, and every hook
//! run exits 0.

use crate::support::{ok, shapes, LockHolder, TestRoot, BIN};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const ATTACK_ENV: &str = "DUG_TEST_DIR_ATTACK";
/// The attacker's own directories are `evil.<name>`, made 0777 (so a chmod by root shows).
const EVIL_MODE: u32 = 0o777;

/// The attacker, in a child process as nobody (see [`Attacker::start`]); without the variable
/// it does nothing. The variable: the deadline in seconds, the bystander, then one
/// `<parent>/<name>` per line.
#[test]
fn attacker_child() {
    let Ok(spec) = std::env::var(ATTACK_ENV) else {
        return;
    };
    let mut lines = spec.lines();
    let secs: u64 = lines.next().unwrap().parse().unwrap();
    let bystander = PathBuf::from(lines.next().unwrap());
    let targets: Vec<PathBuf> = lines.map(PathBuf::from).collect();
    let evil = |t: &Path| {
        let mut e = std::ffi::OsString::from("evil.");
        e.push(t.file_name().unwrap());
        t.with_file_name(e)
    };
    for t in &targets {
        // With a `backups` inside: a path-based write to our store's subdirectory would land
        // in it while the two are swapped.
        for d in [evil(t), evil(t).join("backups")] {
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(EVIL_MODE)).unwrap();
        }
    }
    println!("ATTACKING");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let exchange = |a: &Path, b: &Path| {
        nix::fcntl::renameat2(None, a, None, b, nix::fcntl::RenameFlags::RENAME_EXCHANGE)
    };
    let mut i = 0u64;
    while Instant::now() < deadline {
        for t in &targets {
            let e = evil(t);
            // Our directory and the attacker's swap names for a moment, then swap back.
            if exchange(t, &e).is_ok() {
                for _ in 0..(i % 5) * 50 {
                    std::hint::spin_loop();
                }
                let _ = exchange(t, &e);
            }
            if i % 64 != 0 {
                continue;
            }
            // The mkdir window: move our directory away, wait (bounded) for root to make it
            // again, and put a symlink in its place at once.
            let away = t.with_extension(format!("away{i}"));
            let _ = std::fs::rename(t, &away);
            let target = if i % 128 == 0 { &bystander } else { &e };
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                if std::fs::symlink_metadata(t).is_ok_and(|m| m.is_dir()) {
                    let _ = std::fs::rename(t, t.with_extension(format!("made{i}")));
                    let _ = std::os::unix::fs::symlink(target, t);
                    std::thread::sleep(Duration::from_millis(2));
                    let _ = std::fs::remove_file(t);
                    break;
                }
            }
        }
        i += 1;
    }
}

/// The attacker process; killed (by its pid) when dropped.
struct Attacker(std::process::Child);

impl Attacker {
    /// Starts the attacker on `targets` (each `<parent>/<our directory>`), after giving their
    /// parents to nobody's group, group-writable, as Ubuntu's /var/log is to syslog.
    fn start(root: &Path, targets: &[&str], secs: u64) -> Attacker {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = format!("{}\n{}\n", secs + 30, bystander(root).display());
        for t in targets {
            let p = root.join(t);
            let parent = p.parent().unwrap();
            std::fs::create_dir_all(parent).unwrap();
            std::os::unix::fs::chown(parent, Some(0), Some(NOBODY)).unwrap();
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o775)).unwrap();
            spec.push_str(&format!("{}\n", p.display()));
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "faults_dirs::attacker_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ATTACK_ENV, spec)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // libtest prints its own words first, on the same line.
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let started = std::io::BufRead::lines(out)
            .map_while(Result::ok)
            .any(|l| l.contains("ATTACKING"));
        assert!(started, "the attacker could not start");
        Attacker(child)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A root-owned 1777 directory (like /tmp) the attacker would like root to chmod or write into.
fn bystander(root: &Path) -> PathBuf {
    root.join("shared")
}

fn make_bystander(root: &Path) {
    std::fs::create_dir(bystander(root)).unwrap();
    std::fs::set_permissions(bystander(root), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Nothing in the tree was made in an attacker's directory (everything in one is the
/// attacker's) or changed its mode; the bystander is untouched. Walks without following
/// symlinks.
fn assert_nothing_steered(root: &Path) {
    let mut wrong = Vec::new();
    let b = std::fs::metadata(bystander(root)).unwrap();
    if b.mode() & 0o7777 != 0o1777 {
        wrong.push(format!("the bystander's mode is {:o}", b.mode() & 0o7777));
    }
    for e in std::fs::read_dir(bystander(root)).unwrap().flatten() {
        wrong.push(format!(
            "root wrote {} into the bystander",
            e.path().display()
        ));
    }
    let mut evil = 0;
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((d, in_evil)) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let theirs = m.uid() == NOBODY;
            if in_evil && !theirs {
                wrong.push(format!(
                    "root created {} in the attacker's directory",
                    e.path().display()
                ));
            }
            if !m.is_dir() {
                continue;
            }
            if theirs {
                evil += 1;
                if m.mode() & 0o7777 != EVIL_MODE {
                    wrong.push(format!(
                        "root changed the mode of the attacker's {} to {:o}",
                        e.path().display(),
                        m.mode() & 0o7777
                    ));
                }
            }
            stack.push((e.path(), theirs));
        }
    }
    assert!(evil > 0, "the attacker's directories are gone");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Did the attacker get to the mkdir window (it moved our directory away at least once)?
fn attacker_moved(parent: &Path) -> bool {
    std::fs::read_dir(parent).unwrap().flatten().any(|e| {
        let n = e.file_name();
        let n = n.to_string_lossy();
        n.contains(".away") || n.contains(".made")
    })
}

/// Runs `run` until `max_runs` or `secs` is reached; returns how many runs there were.
fn race(max_runs: usize, secs: u64, mut run: impl FnMut(usize)) -> usize {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    while n < max_runs && Instant::now() < until {
        run(n);
        n += 1;
    }
    n
}

#[test]
fn the_hook_is_never_steered_by_a_process_racing_for_its_directories() {
    let t = TestRoot::new();
    t.set_units(&shapes::focal_units());
    let debs = t.path().join("debs");
    let c1 = shapes::containerd_deb("1.3.3-0ubuntu2").build(&debs);
    let c2 = shapes::containerd_deb("1.3.3-0ubuntu2.1").build(&debs);
    ok(&t.dpkg(&["-i", c1.to_str().unwrap()], false));
    let stream = format!(
        "VERSION 3\nAPT::Architecture=amd64\n\ncontainerd 1.3.3-0ubuntu2 all none < 1.3.3-0ubuntu2.1 all none {}\n",
        c2.display()
    );
    // The just-in-time guard cannot take dpkg's lock: every apt-pkgs run records an error
    // event (events.jsonl), besides the record and the lock in the run directory.
    let _holder = LockHolder::new(&t.path().join("var/lib/dpkg/lock"));
    make_bystander(t.path());
    let attacker = Attacker::start(
        t.path(),
        &["var/log/docker-upgrade-guard", "run/docker-upgrade-guard"],
        60,
    );
    let mut failures = Vec::new();
    let runs = race(300, 60, |n| {
        let stage = if n % 2 == 0 { "apt-pkgs" } else { "apt-post" };
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(t.path())
            .arg("--systemctl")
            .arg(t.systemctl())
            .args(["hook", stage])
            .env_remove("DPKG_FRONTEND_LOCKED")
            .env_remove("DOCKER_UPGRADE_GUARD_SUSPEND")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if stage == "apt-pkgs" {
            let _ = stdin.write_all(stream.as_bytes());
        }
        drop(stdin);
        let o = child.wait_with_output().unwrap();
        if !o.status.success() {
            failures.push(format!(
                "run {n} ({stage}): {:?}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    });
    drop(attacker);
    eprintln!("{runs} hook runs raced");
    assert!(failures.is_empty(), "{runs} runs: {failures:#?}");
    assert_nothing_steered(t.path());
    for parent in ["var/log", "run"] {
        assert!(
            attacker_moved(&t.path().join(parent)),
            "the attacker never got into {parent}"
        );
    }
    // The hook did write through all this (the attack makes it refuse only at times).
    let logged = std::fs::read_dir(t.path().join("var/log"))
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == 0))
        .any(|e| e.path().join("events.jsonl").exists());
    assert!(logged, "no event was ever logged in {runs} runs");
}

#[test]
fn patch_is_never_steered_by_a_process_racing_for_its_backup_store() {
    let t = TestRoot::new();
    let debs = t.path().join("debs");
    let c1 = shapes::containerd_deb("1.3.3-0ubuntu2").build(&debs);
    ok(&t.dpkg(&["-i", c1.to_str().unwrap()], false));
    let script = t.path().join("var/lib/dpkg/info/containerd.prerm");
    make_bystander(t.path());
    let attacker = Attacker::start(t.path(), &["var/lib/docker-upgrade-guard"], 30);
    let mut odd = Vec::new();
    let mut patched = 0;
    let runs = race(200, 30, |n| {
        let args: &[&str] = if n % 2 == 0 {
            &["patch"]
        } else {
            &["patch", "--revert"]
        };
        let o = t.tool(args);
        let out = String::from_utf8_lossy(&o.stdout);
        patched += out.lines().filter(|l| l.starts_with("patched ")).count();
        if n % 2 == 1 {
            // The store may have been moved away with the backup in it: put the harmful
            // script back as an upgrade would, so that every `patch` has work to do.
            std::fs::write(&script, shapes::CONTAINERD_PRERM_ALWAYS_STOP).unwrap();
        }
        // patch may refuse (exit 1) when the store is swapped; it must never crash.
        if !matches!(o.status.code(), Some(0 | 1)) {
            odd.push(format!(
                "run {n} {args:?}: {:?}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    });
    drop(attacker);
    eprintln!("{runs} patch runs raced, {patched} patched");
    assert!(odd.is_empty(), "{runs} runs: {odd:#?}");
    assert!(patched > 0, "patch never got through in {runs} runs");
    assert_nothing_steered(t.path());
    assert!(attacker_moved(&t.path().join("var/lib")));
}

/// Every journal datagram waiting on `j`, as text.
fn drain(j: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    j.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while let Ok(n) = j.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

/// A refused directory: the stage still exits 0, says in one line which directory and why,
/// and the refusal is an error event (events.jsonl while the log directory is usable, and the
/// journal); when the log directory is refused too, the journal says so.
#[test]
fn a_refused_directory_is_one_line_and_an_event() {
    let t = TestRoot::new();
    let run = t.path().join("run/docker-upgrade-guard");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("txn.json"), "{}").unwrap();
    std::os::unix::fs::chown(&run, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::create_dir_all(t.path().join("run/systemd/journal")).unwrap();
    let j = std::os::unix::net::UnixDatagram::bind(t.path().join("run/systemd/journal/socket"))
        .unwrap();
    let why = format!(
        "{} is owned by uid 65534, not by root; refusing to use it",
        run.display()
    );

    let o = t.tool(&["hook", "apt-post"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("hook apt-post: ") && lines[0].contains(&why),
        "{err}"
    );
    let events =
        std::fs::read_to_string(t.path().join("var/log/docker-upgrade-guard/events.jsonl"))
            .unwrap();
    assert!(
        events.contains("\"kind\":\"error\"") && events.contains(&why),
        "{events}"
    );
    let journal = drain(&j);
    assert!(journal.iter().any(|d| d.contains(&why)), "{journal:?}");

    // The log directory refused as well (a symlink): the journal still gets both.
    let log = t.path().join("var/log/docker-upgrade-guard");
    std::fs::rename(&log, t.path().join("var/log/moved")).unwrap();
    std::os::unix::fs::symlink(t.path().join("var/log/moved"), &log).unwrap();
    let o = t.tool(&["hook", "apt-post"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let journal = drain(&j);
    assert!(journal.iter().any(|d| d.contains(&why)), "{journal:?}");
    assert!(
        journal.iter().any(|d| d.contains(&format!(
            "cannot write the event log: {} is a symlink; refusing to use it",
            log.display()
        ))),
        "{journal:?}"
    );
}
