//! Table-driven classifier and repair tests over the maintainer-script fixtures in
//! tests/fixtures/scripts/. Each row states, for docker.service, docker.socket and
//! containerd.service (in that order), whether the script stops the unit when called with
//! `upgrade` and with `remove`, whether it (re)starts it with `configure`, and the first lines
//! of its stop commands. `Y` yes (or maybe), `N` no, `U` unknown.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_upgrade_guard::scripts::classify::{analyse, Analysis, Answer, UnitOp};
use docker_upgrade_guard::scripts::repair::repair;
use docker_upgrade_guard::scripts::stops_on_upgrade;

const UNITS: [&str; 3] = ["docker.service", "docker.socket", "containerd.service"];
const STARTS: &[UnitOp] = &[UnitOp::Start, UnitOp::Restart, UnitOp::TryRestart];

struct Row {
    file: &'static str,
    /// Per unit: stop on `upgrade`, stop on `remove`.
    stop: [&'static str; 3],
    /// Per unit: start/restart/try-restart on `configure`.
    start: &'static str,
    stop_lines: &'static [usize],
}

const fn row(
    file: &'static str,
    stop: [&'static str; 3],
    start: &'static str,
    stop_lines: &'static [usize],
) -> Row {
    Row {
        file,
        stop,
        start,
        stop_lines,
    }
}

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // The debhelper always-stop block (compat 9/10 dh_systemd_start without -r): LP 1870514.
    row("containerd-focal-always-stop.prerm", ["NN", "NN", "YY"], "NNN", &[5]),
    // docker.io 18.09.8-0ubuntu1 .. 19.03.8-0ubuntu1 (LP 1906364), with the sysv block.
    row("docker.io-focal-always-stop.prerm", ["YY", "YY", "NN"], "NNN", &[25, 30]),
    // The fixed "stop only on remove" shape.
    row("containerd-stop-on-remove.prerm", ["NN", "NN", "NY"], "NNN", &[5]),
    row("docker.io-stop-on-remove.prerm", ["NY", "NY", "NN"], "NNN", &[5]),
    row("docker.io-harmless-tail.prerm", ["NY", "NY", "NN"], "NNN", &[5, 9]),
    row("docker.io-sysv-remove.prerm", ["NY", "NN", "NN"], "NNN", &[5]),
    row("sysv-always.prerm", ["YY", "NN", "NN"], "NNN", &[5]),
    // --skip-systemd-native does nothing on systemd for units with a native unit file.
    row("skip-systemd-native.prerm", ["NN", "NN", "NN"], "NNN", &[]),
    row("docker.io-bookworm.prerm", ["NY", "NY", "NN"], "NNN", &[25]),
    row("case-upgrade.prerm", ["YY", "NN", "NN"], "NNN", &[5]),
    row("case-remove-only.prerm", ["NY", "NN", "NN"], "NNN", &[4]),
    row("case-glob.prerm", ["YY", "NN", "NN"], "NNN", &[5]),
    row("case-one-line-arm.prerm", ["YY", "NN", "NN"], "NNN", &[4]),
    row("ne-remove.prerm", ["NN", "NN", "YN"], "NNN", &[4]),
    row("ne-upgrade-chain.prerm", ["NN", "NY", "NN"], "NNN", &[3]),
    row("test-command.prerm", ["NY", "NN", "NN"], "NNN", &[4]),
    row("x-prefix.prerm", ["NY", "NN", "YN"], "NNN", &[4, 7]),
    row("or-remove-purge.prerm", ["NY", "NN", "NN"], "NNN", &[4]),
    row("bang.prerm", ["NY", "YN", "NN"], "NNN", &[4, 7]),
    row("comments-strings.prerm", ["NN", "NN", "NN"], "NNN", &[]),
    row("multi-unit.prerm", ["YY", "YY", "YY"], "NNN", &[3]),
    row("continuation.prerm", ["YY", "YY", "NN"], "NNN", &[3]),
    row("one-line-semicolons.prerm", ["YY", "NN", "NN"], "NNN", &[2]),
    row("tabs-odd.prerm", ["NN", "NN", "YY"], "NNN", &[5]),
    row("elif-else.prerm", ["NY", "YN", "NN"], "NNN", &[4, 6, 8]),
    row("or-chain.prerm", ["NN", "NN", "YN"], "NNN", &[3]),
    row("resolved-variable.prerm", ["YY", "YY", "NN"], "NNN", &[5]),
    row("disable-now.prerm", ["NY", "NN", "YY"], "NNN", &[4, 6]),
    // `exit` decided by `$1` ends the script for what follows; other exits and `( exit )` do not.
    row("early-exit.prerm", ["NY", "NY", "NN"], "NNN", &[12]),
    row("early-exit-other.prerm", ["NN", "NN", "YY"], "NNN", &[9]),
    // What we cannot follow is unknown, never safe.
    row("function.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    row("variable-unit.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    row("dollar-at.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    row("eval.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    row("unbalanced-if.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    row("unbalanced-case.prerm", ["UU", "UU", "UU"], "UUU", &[]),
    // postinsts: who starts the units again.
    row("containerd-focal.postinst", ["NN", "NN", "NN"], "NNY", &[]),
    // Newer debhelper: `_dh_action=restart`/`start`, then `deb-systemd-invoke $_dh_action`.
    row("containerd-bookworm.postinst", ["NN", "NN", "NN"], "NNY", &[]),
    row("docker.io-bookworm.postinst", ["NN", "NN", "NN"], "YYN", &[]),
    row("debconf-restart.postinst", ["NN", "NN", "NN"], "YYN", &[]),
    row("try-restart.postinst", ["NN", "NN", "NN"], "YNY", &[]),
    row("dh-action-unset.postinst", ["UU", "UU", "UU"], "UUU", &[]),
    row("no-start.postinst", ["NN", "NN", "NN"], "NNN", &[]),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripts")
}

fn read(name: &str) -> String {
    let p = fixtures().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn verdict(a: &Answer) -> char {
    match a {
        Answer::Yes(_) => 'Y',
        Answer::No => 'N',
        Answer::Unknown(_) => 'U',
    }
}

fn verdicts(an: &Analysis) -> ([String; 3], String) {
    let stop = UNITS.map(|u| {
        ["upgrade", "remove"]
            .iter()
            .map(|arg| verdict(&an.query(&[UnitOp::Stop], u, arg)))
            .collect::<String>()
    });
    let start = UNITS
        .iter()
        .map(|u| verdict(&an.query(STARTS, u, "configure")))
        .collect();
    (stop, start)
}

#[test]
fn table_covers_every_fixture_and_enough_variants() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".fixed"))
        .collect();
    files.sort();
    let mut rows: Vec<String> = TABLE.iter().map(|r| r.file.to_string()).collect();
    rows.sort();
    assert_eq!(files, rows, "every fixture has exactly one row");
    assert!(TABLE.len() >= 25);
}

#[test]
fn verdicts_match_the_table() {
    let mut failures = Vec::new();
    for r in TABLE {
        let an = analyse(&read(r.file));
        let (stop, start) = verdicts(&an);
        let mut lines: Vec<usize> = an
            .sites
            .iter()
            .filter(|s| s.op == UnitOp::Stop)
            .map(|s| s.lines.0)
            .collect();
        lines.dedup();
        if stop != r.stop.map(String::from) || start != r.start || lines != r.stop_lines {
            failures.push(format!(
                "{}: stop {stop:?} start {start} lines {lines:?}; expected stop {:?} start {} lines {:?}\n{an:#?}",
                r.file, r.stop, r.start, r.stop_lines
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The repair is byte for byte the `.fixed` file next to the fixture, and there is a `.fixed`
/// file exactly when a watched unit is stopped on upgrade.
#[test]
fn repairs_match_fixed_files() {
    let mut checked = 0;
    for r in TABLE {
        let text = read(r.file);
        let an = analyse(&text);
        let fixed_path = fixtures().join(format!("{}.fixed", r.file));
        let got = repair(&text, &an, &UNITS);
        let harmful = !stops_on_upgrade(&an, &UNITS).is_empty();
        match (got, fixed_path.exists()) {
            (Some(got), true) => {
                assert_eq!(got, read(&format!("{}.fixed", r.file)), "{}", r.file);
                checked += 1;
            }
            (None, false) => assert!(!harmful, "{}: harmful but not repaired", r.file),
            (Some(got), false) => panic!("{}: unexpected repair:\n{got}", r.file),
            (None, true) => panic!("{}: no repair, but a .fixed file exists", r.file),
        }
    }
    assert!(checked >= 15, "only {checked} repairs checked");
}

#[test]
fn repaired_scripts_are_safe_and_repairing_again_finds_nothing() {
    for r in TABLE {
        let text = read(r.file);
        let an = analyse(&text);
        let Some(fixed) = repair(&text, &an, &UNITS) else {
            continue;
        };
        let again = analyse(&fixed);
        assert!(stops_on_upgrade(&again, &UNITS).is_empty(), "{}", r.file);
        assert_eq!(
            repair(&fixed, &again, &UNITS),
            None,
            "{}: not idempotent",
            r.file
        );
        // Nothing else changed: remove still stops what it stopped, configure starts the same.
        for u in UNITS {
            let before = verdict(&an.query(&[UnitOp::Stop], u, "remove"));
            let after = verdict(&again.query(&[UnitOp::Stop], u, "remove"));
            // A stop guarded by `$1 != remove` is dead after the repair; all others still run.
            if before == 'Y' {
                assert_eq!(after, 'Y', "{}: {u} no longer stopped on remove", r.file);
            }
        }
        // Only the repaired lines differ.
        let changed = text
            .lines()
            .zip(fixed.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            changed <= stops_on_upgrade(&an, &UNITS).len() * 2,
            "{}",
            r.file
        );
        assert_eq!(text.lines().count(), fixed.lines().count(), "{}", r.file);
    }
}

/// Only stops of watched units are repaired.
#[test]
fn unwatched_units_are_left_alone() {
    let text = read("multi-unit.prerm");
    let an = analyse(&text);
    assert_eq!(repair(&text, &an, &["kubelet.service"]), None);
    let text = read("containerd-focal-always-stop.prerm");
    let an = analyse(&text);
    assert_eq!(
        repair(&text, &an, &["docker.service", "docker.socket"]),
        None
    );
}

fn syntax_ok(shell: &str, path: &Path) -> bool {
    let out = Command::new(shell)
        .arg("-n")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running {shell}: {e}"));
    out.status.success()
}

/// Every repaired fixture (and every original that parses) is valid for `sh -n` and `dash -n`.
#[test]
fn repaired_fixtures_pass_sh_n_and_dash_n() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "fixed") {
            for sh in ["/bin/sh", "/bin/dash"] {
                assert!(syntax_ok(sh, &p), "{sh} -n {}", p.display());
            }
            n += 1;
        }
    }
    assert!(n >= 15);
    // The parser agrees with the shell about what is valid.
    for r in TABLE {
        let p = fixtures().join(r.file);
        let parses = !analyse(&read(r.file)).unparsable();
        assert_eq!(parses, syntax_ok("/bin/dash", &p), "{}", r.file);
    }
}

/// The repaired scripts behave: run with a stand-in `systemctl`/`deb-systemd-invoke`/... on
/// PATH, the original stops units on `upgrade` and the repaired one does not; both stop on
/// `remove` exactly the same units.
#[test]
fn repaired_scripts_run_as_expected() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("log");
    for tool in ["systemctl", "deb-systemd-invoke", "invoke-rc.d", "service"] {
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{tool} $*\" >>\"$FAKE_LOG\"\nexit 0\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |script: &str, arg: &str| -> String {
        let _ = std::fs::remove_file(&log);
        let sp = dir.path().join("script");
        // `/run/systemd/system` may not exist here: make the debhelper test true.
        let script = script.replace("[ -d /run/systemd/system ]", "[ -d / ]");
        std::fs::write(&sp, script).unwrap();
        let out = Command::new("/bin/sh")
            .arg(&sp)
            .arg(arg)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("FAKE_LOG", &log)
            .output()
            .unwrap();
        let _ = out;
        std::fs::read_to_string(&log).unwrap_or_default()
    };
    let mut n = 0;
    for r in TABLE {
        let text = read(r.file);
        let an = analyse(&text);
        let Some(fixed) = repair(&text, &an, &UNITS) else {
            continue;
        };
        if text.contains("/etc/init.d/") {
            continue; // not runnable here
        }
        let stops = |log: &str| {
            log.lines()
                .filter(|l| l.contains(" stop") || l.contains("--now"))
                .count()
        };
        assert!(
            stops(&run(&text, "upgrade")) > 0,
            "{}: original does not stop",
            r.file
        );
        assert_eq!(
            stops(&run(&fixed, "upgrade")),
            0,
            "{}: repaired still stops",
            r.file
        );
        if !text.contains("!= remove")
            && !text.contains("! [ \"$1\" = remove ]")
            && !text.contains("[ \"$1\" = remove ] ||")
        {
            assert_eq!(run(&text, "remove"), run(&fixed, "remove"), "{}", r.file);
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} scripts run");
}
