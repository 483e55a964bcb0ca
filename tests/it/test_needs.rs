//! `scripts/test` installs everything the test suite calls (issue 12: on a fresh machine the
//! real-apt tests panicked because apt-utils was not in its list).
//!
//! The commands the suite runs are collected from the sources: `Command::new("...")` literals
//! in tests/it and tests/support, the interpreters of the helper scripts, the host-side
//! `subprocess` / `call` / `sh` argv literals of the e2e suite, and the words at a command
//! position in the shell scripts scripts/test runs. Each one found on this machine must come
//! from a package in scripts/test's `need=` list (or one it depends on) or from the base system
//! (Essential: yes, Priority: required, apt: what debootstrap --variant=minbase installs), per
//! `dpkg -S`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Shell scripts that scripts/test runs (directly or through another one). The benchmarks
/// (scripts/bench-hook, tests/e2e/bench-recovery) are not part of the suite and install
/// their own tools; tests/support/bin's stand-ins call the recording `systemctl` stand-in.
const SHELL_SCRIPTS: &[&str] = &[
    "scripts/test",
    "scripts/build-deb",
    "tests/package/lifecycle",
    "tests/support/rootfs",
    "tests/e2e/crude-deb",
];
/// Python files whose host-side calls run on this machine (commands inside the e2e containers
/// come from the container's own packages, not from scripts/test).
const PYTHON_FILES: &[&str] = &[
    "tests/support/fake-systemctl",
    "tests/e2e/run",
    "tests/e2e/machine.py",
    "tests/e2e/prepare.py",
    "tests/e2e/fixtures.py",
    "tests/e2e/scenarios.py",
    "tests/e2e/fleet",
];
/// Not from a Debian package: the Rust toolchain comes from rustup (debian/rules, README).
const NOT_DEBIAN: &[&str] = &["cargo"];

/// A bash array assignment `name=( ... )` in scripts/test: its words, comments dropped.
fn bash_array(text: &str, name: &str) -> Vec<String> {
    let start = text
        .find(&format!("\n{name}=("))
        .unwrap_or_else(|| panic!("scripts/test has no `{name}=(` array"));
    let body = &text[start + name.len() + 3..];
    let mut words = vec![];
    for line in body.lines() {
        let code = line.split('#').next().unwrap_or("");
        let (code, end) = match code.find(')') {
            Some(i) => (&code[..i], true),
            None => (code, false),
        };
        words.extend(code.split_whitespace().map(String::from));
        if end {
            return words;
        }
    }
    panic!("scripts/test: `{name}=(` is not closed");
}

fn is_command_word(w: &str) -> bool {
    let w = w.rsplit('/').next().unwrap_or(w);
    !w.is_empty()
        && w.starts_with(|c: char| c.is_ascii_lowercase())
        && w.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._+-".contains(c))
}

/// The first string literal after each occurrence of `pat` (e.g. `Command::new(`), if the
/// character before `pat` is not in `not_after` (to tell `sh(` from `m.sh(`).
fn literals_after(text: &str, pat: &str, not_after: &str) -> Vec<String> {
    let mut out = vec![];
    let mut from = 0;
    while let Some(i) = text[from..].find(pat) {
        let at = from + i;
        from = at + pat.len();
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| not_after.contains(c) || c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = text[from..].trim_start();
        let rest = rest.strip_prefix('[').map_or(rest, str::trim_start);
        if let Some(lit) = rest.strip_prefix('"') {
            if let Some(end) = lit.find('"') {
                if is_command_word(&lit[..end]) {
                    out.push(lit[..end].to_string());
                }
            }
        }
    }
    out
}

/// Words at a command position in a shell script: the first word of every simple command
/// (after `;`, `|`, `&&`, `$(`, `then`, `do`, ...), skipping assignments, comments, heredoc
/// bodies, single-quoted text (awk programs) and the script's own functions. A heuristic,
/// deliberately generous: a word that is no command on this machine is ignored below.
fn shell_commands(text: &str) -> Vec<String> {
    let mut code = String::new();
    let mut heredoc: Option<String> = None;
    for line in text.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(i) = line.find("<<") {
            let tag: String = line[i + 2..]
                .trim_start_matches(['-', '\'', '"', ' '])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !tag.is_empty() {
                heredoc = Some(tag);
            }
        }
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        code.push_str(line);
        if !line.ends_with('\\') {
            code.push('\n');
        }
    }
    let plain = unquoted(&code);
    let functions: BTreeSet<String> = plain
        .lines()
        .filter_map(|l| l.trim().split_once("()").map(|(n, _)| n.trim().to_string()))
        .collect();
    let mut s = plain;
    for sep in [
        "&&", "||", "$(", "`", "|", ";", "(", ")", "{", "}", "\n", "!",
    ] {
        s = s.replace(sep, "\n");
    }
    let keywords = [
        "then", "do", "else", "elif", "if", "while", "until", "exec", "time", "env", "command",
        "local", "export",
    ];
    let mut out = vec![];
    for seg in s.lines() {
        let mut words = seg.split_whitespace().peekable();
        while let Some(w) = words.peek() {
            if keywords.contains(w) || w.contains('=') || w.starts_with('-') {
                words.next();
            } else {
                break;
            }
        }
        if let Some(w) = words.next() {
            let w = w.trim_matches('"');
            if is_command_word(w) && !functions.contains(w) {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// The script with quoted text blanked out (awk programs, messages), but the commands inside
/// `"$(...)"` kept.
fn unquoted(code: &str) -> String {
    enum Ctx {
        Single,
        Double,
        Sub(u32), // $( ... ): code again, with its paren depth
    }
    let mut stack: Vec<Ctx> = vec![];
    let mut out = String::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match stack.last_mut() {
            Some(Ctx::Single) => {
                if c == '\'' {
                    stack.pop();
                }
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
            Some(Ctx::Double) => {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    stack.pop();
                } else if c == '$' && chars.peek() == Some(&'(') {
                    chars.next();
                    stack.push(Ctx::Sub(1));
                    out.push_str("$(");
                    continue;
                }
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
            top => {
                match c {
                    '\'' => stack.push(Ctx::Single),
                    '"' => stack.push(Ctx::Double),
                    '\\' => {
                        chars.next();
                    }
                    '(' => {
                        if let Some(Ctx::Sub(d)) = top {
                            *d += 1;
                        }
                    }
                    ')' => {
                        if let Some(Ctx::Sub(d)) = top {
                            *d -= 1;
                            if *d == 0 {
                                stack.pop();
                            }
                        }
                    }
                    _ => {}
                }
                out.push(if matches!(c, '\'' | '"') { ' ' } else { c });
            }
        }
    }
    out
}

/// Every command the suite runs on this machine -> where it was seen.
fn commands_of_the_suite() -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |cmd: String, whence: &str| {
        found.entry(cmd).or_default().insert(whence.to_string());
    };
    let mut rust = vec![repo().join("tests/support/mod.rs")];
    for e in std::fs::read_dir(repo().join("tests/it")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("test_needs.rs") {
            rust.push(p);
        }
    }
    for p in &rust {
        let text = std::fs::read_to_string(p).unwrap();
        let name = p.strip_prefix(repo()).unwrap().display().to_string();
        for c in literals_after(&text, "Command::new(", "") {
            add(c, &name);
        }
        // The shells the tests hand scripts to (`for sh in ["/bin/sh", "/bin/dash"]`).
        for c in literals_after(&text, "for sh in ", "") {
            add(c, &name);
        }
    }
    for f in SHELL_SCRIPTS.iter().chain(PYTHON_FILES) {
        let text = std::fs::read_to_string(repo().join(f)).unwrap();
        if let Some(interp) = text.lines().next().and_then(|l| l.strip_prefix("#!")) {
            let mut w = interp.split_whitespace();
            let first = w.next().unwrap_or("");
            let interp = if first.ends_with("/env") {
                w.next().unwrap_or("")
            } else {
                first
            };
            add(interp.to_string(), f);
        }
        if SHELL_SCRIPTS.contains(f) {
            for c in shell_commands(&text) {
                add(c, f);
            }
        } else {
            for pat in [
                "subprocess.run(",
                "subprocess.Popen(",
                "call(",
                "sh(",
                "argv = ",
                "cmd = ",
            ] {
                for c in literals_after(&text, pat, ".") {
                    add(c, f);
                }
            }
        }
    }
    found
}

/// Where the command is on a Debian system: an absolute path as is; a name in the /usr-merged
/// bin directories (not PATH: /usr/local or ~/.pyenv copies are not what a fresh machine has).
fn debian_path(cmd: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.starts_with('/') {
        return executable(Path::new(cmd)).then(|| PathBuf::from(cmd));
    }
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(cmd))
        .find(|p| executable(p))
}

/// The paths dpkg may know a command by: as found, its /usr-merged twin, the symlink's target
/// (dpkg knows /bin/dash, /usr/bin/fakeroot is an alternative).
fn dpkg_names(path: &Path) -> Vec<PathBuf> {
    let mut tries = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        tries.push(real);
    }
    for p in tries.clone() {
        let s = p.to_string_lossy().to_string();
        tries.push(match s.strip_prefix("/usr") {
            Some(rest) => PathBuf::from(rest),
            None => PathBuf::from(format!("/usr{s}")),
        });
    }
    tries
}

/// path -> package, for every path dpkg knows (one `dpkg -S` for all: each call reads the
/// whole file database).
fn owners(paths: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let o = Command::new("dpkg")
        .arg("-S")
        .args(paths)
        .output()
        .expect("running dpkg -S");
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        if line.starts_with("diversion by") {
            continue;
        }
        if let Some((pkgs, path)) = line.split_once(": ") {
            let pkg = pkgs.split(", ").next().unwrap_or("");
            out.insert(
                PathBuf::from(path),
                pkg.split(':').next().unwrap_or(pkg).to_string(),
            );
        }
    }
    out
}

/// The packages a fresh Debian machine has (Essential: yes, Priority: required, and apt: what
/// `debootstrap --variant=minbase` and the debian:* container images install; apt-utils is
/// Priority: important, and the fresh machine of issue 12 had not got it) plus `need` and what each of them depends on directly (python3
/// pre-depends on python3-minimal, which ships /usr/bin/python3).
fn provided(need: &[String]) -> BTreeSet<String> {
    let o = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\n",
        ])
        .output()
        .expect("running dpkg-query");
    let mut out: BTreeSet<String> = need.iter().cloned().collect();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [pkg, essential, priority, depends] = f[..] else {
            continue;
        };
        if essential == "yes" || priority == "required" || pkg == "apt" {
            out.insert(pkg.to_string());
        }
        if need.iter().any(|n| n == pkg) {
            for d in depends.split([',', '|']) {
                let d = d.split_whitespace().next().unwrap_or("");
                out.insert(d.split(':').next().unwrap_or(d).to_string());
            }
        }
    }
    out
}

/// What is wrong: one line per command whose package neither `need` nor the base system has.
fn problems(
    found: &BTreeMap<String, BTreeSet<String>>,
    need: &[String],
    commands: &[String],
) -> Vec<String> {
    let mut out = vec![];
    let mut located = vec![];
    for (cmd, whence) in found {
        let whence: Vec<&str> = whence.iter().map(String::as_str).collect();
        if NOT_DEBIAN.contains(&cmd.as_str()) {
            if !commands.contains(cmd) {
                out.push(format!(
                    "{cmd} (used by {whence:?}) is not in scripts/test's commands="
                ));
            }
            continue;
        }
        match debian_path(cmd) {
            Some(path) => located.push((cmd, whence, path)),
            // Words of the shell heuristic that are no command here (arguments, functions)
            // are fine; anything else the suite runs must exist.
            None if commands.contains(cmd) || !whence.iter().all(|w| SHELL_SCRIPTS.contains(w)) => {
                out.push(format!(
                    "{cmd} (used by {whence:?}) is not installed on this machine"
                ));
            }
            None => {}
        }
    }
    let all: Vec<PathBuf> = located.iter().flat_map(|(_, _, p)| dpkg_names(p)).collect();
    let owner = owners(&all);
    let ok = provided(need);
    for (cmd, whence, path) in located {
        match dpkg_names(&path).iter().find_map(|p| owner.get(p)) {
            Some(pkg) if ok.contains(pkg) => {}
            Some(pkg) => out.push(format!(
                "{cmd} ({}, used by {whence:?}) comes from package {pkg}, which is neither in \
                 scripts/test's need= nor in the base system",
                path.display()
            )),
            None => out.push(format!(
                "{cmd} ({}, used by {whence:?}) belongs to no Debian package",
                path.display()
            )),
        }
    }
    out
}

fn script_lists() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("scripts/test")).unwrap();
    (bash_array(&text, "need"), bash_array(&text, "commands"))
}

#[test]
fn every_command_the_suite_runs_comes_from_scripts_test_or_the_base_system() {
    let found = commands_of_the_suite();
    // The scan sees what we know the suite needs (else it found nothing and proves nothing).
    for c in [
        "apt-ftparchive",
        "dpkg-deb",
        "python3",
        "systemd-nspawn",
        "nsenter",
        "debootstrap",
        "lintian",
    ] {
        assert!(
            found.contains_key(c),
            "the scan did not find {c}: {:?}",
            found.keys()
        );
    }
    let (need, commands) = script_lists();
    let bad = problems(&found, &need, &commands);
    assert!(
        bad.is_empty(),
        "scripts/test is missing packages:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_command_scripts_test_checks_is_one_of_its_packages() {
    let (need, commands) = script_lists();
    let found: BTreeMap<String, BTreeSet<String>> = commands
        .iter()
        .map(|c| {
            (
                c.clone(),
                BTreeSet::from(["scripts/test commands=".to_string()]),
            )
        })
        .collect();
    let bad = problems(&found, &need, &commands);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The check has teeth: without apt-utils in the list (the fresh-machine failure of issue
/// 12), apt-ftparchive is reported, by name and with its package.
#[test]
fn a_package_missing_from_the_list_is_reported() {
    let found = commands_of_the_suite();
    let (need, commands) = script_lists();
    for (pkg, cmd) in [
        ("apt-utils", "apt-ftparchive"),
        ("systemd-container", "systemd-nspawn"),
    ] {
        let without: Vec<String> = need.iter().filter(|p| *p != pkg).cloned().collect();
        let bad = problems(&found, &without, &commands);
        assert!(
            bad.iter()
                .any(|l| l.starts_with(&format!("{cmd} ")) && l.contains(pkg)),
            "{pkg} dropped from need=, but nothing said so: {bad:?}"
        );
    }
}

#[test]
fn build_dependencies_are_in_the_list() {
    let control = std::fs::read_to_string(repo().join("debian/control")).unwrap();
    let (need, _) = script_lists();
    let line = control
        .lines()
        .find_map(|l| l.strip_prefix("Build-Depends:"))
        .expect("debian/control has Build-Depends");
    for dep in line.split(',') {
        let name = dep.split_whitespace().next().unwrap_or("");
        let pkg = if name == "debhelper-compat" {
            "debhelper"
        } else {
            name
        };
        assert!(
            need.iter().any(|p| p == pkg),
            "Build-Depends {pkg} not in scripts/test's need="
        );
    }
}
