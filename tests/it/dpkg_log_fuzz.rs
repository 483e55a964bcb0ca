//! dpkg.log parsing under fuzzing: arbitrary bytes and lines never panic, every valid line
//! we generate parses back to the event it was made from, and `read_since` over random
//! files and offsets never panics and never moves backwards except on rotation.

use docker_upgrade_guard::dpkg::log::{parse_line, read_since, LogEvent};
use proptest::prelude::*;

fn format_event(ts: &str, e: &LogEvent) -> String {
    let pa = |p: &str, a: &Option<String>| match a {
        Some(a) => format!("{p}:{a}"),
        None => p.to_string(),
    };
    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "<none>".into());
    match e {
        LogEvent::Startup { kind, command } => format!("{ts} startup {kind} {command}"),
        LogEvent::Action {
            action,
            package,
            arch,
            old,
            new,
        } => format!("{ts} {action} {} {} {}", pa(package, arch), v(old), v(new)),
        LogEvent::Status {
            state,
            package,
            arch,
            version,
        } => format!("{ts} status {state} {} {}", pa(package, arch), v(version)),
        LogEvent::Conffile { path, action } => format!("{ts} conffile {path} {action}"),
    }
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        1990u32..2100,
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        0u32..=60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
}

fn package() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9+.-]{1,20}"
}

fn arch() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("amd64".to_string()),
        Just("all".to_string()),
        Just("arm64".to_string()),
        "[a-z0-9-]{1,8}"
    ])
}

fn version() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~]{0,10}(-[A-Za-z0-9.+~]{1,8})?")
}

fn event() -> impl Strategy<Value = LogEvent> {
    let word = "[a-z][a-z-]{0,10}";
    prop_oneof![
        (word, word).prop_map(|(kind, command)| LogEvent::Startup { kind, command }),
        (
            prop::sample::select(docker_upgrade_guard::dpkg::log::ACTIONS.to_vec()),
            package(),
            arch(),
            version(),
            version()
        )
            .prop_map(|(a, package, arch, old, new)| LogEvent::Action {
                action: a.to_string(),
                package,
                arch,
                old,
                new,
            }),
        (
            prop::sample::select(docker_upgrade_guard::dpkg::log::STATES.to_vec()),
            package(),
            arch(),
            version()
        )
            .prop_map(|(s, package, arch, version)| LogEvent::Status {
                state: s.to_string(),
                package,
                arch,
                version,
            }),
        ("(/[A-Za-z0-9._ -]{1,12}){1,4}", "[a-z]{1,8}")
            .prop_map(|(path, action)| LogEvent::Conffile { path, action }),
    ]
}

/// `DUG_FUZZ_CASES` (the same knob as the library's fuzzers) or the given default.
fn cases(default: u32) -> u32 {
    std::env::var("DUG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn random_lines_never_panic(line in "\\PC{0,80}") {
        let _ = parse_line(&line);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let line = String::from_utf8_lossy(&bytes);
        let _ = parse_line(&line);
        // Near-misses: a valid timestamp followed by junk.
        let _ = parse_line(&format!("2024-05-01 12:00:00 {line}"));
    }

    #[test]
    fn valid_lines_round_trip(ts in timestamp(), e in event()) {
        let line = format_event(&ts, &e);
        prop_assert_eq!(parse_line(&line), Some(e), "{}", line);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(300)))]

    #[test]
    fn read_since_never_panics_or_overruns(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        lines in proptest::collection::vec((timestamp(), event()), 0..6),
        offset in 0u64..1000,
    ) {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("dpkg.log");
        let mut text = bytes.clone();
        for (ts, e) in &lines {
            text.push(b'\n');
            text.extend_from_slice(format_event(ts, e).as_bytes());
        }
        text.push(b'\n');
        std::fs::write(&log, &text).unwrap();
        let (events, end) = read_since(&log, offset).unwrap();
        prop_assert!(end <= text.len() as u64);
        if offset <= text.len() as u64 {
            prop_assert!(end >= offset);
        }
        // From the start, every generated line is found (after the random prefix's last line).
        let (all, end0) = read_since(&log, 0).unwrap();
        prop_assert_eq!(end0, text.len() as u64);
        prop_assert!(all.len() >= lines.len());
        let tail: Vec<LogEvent> = lines.iter().map(|(_, e)| e.clone()).collect();
        prop_assert_eq!(&all[all.len() - tail.len()..], &tail[..]);
        prop_assert!(events.len() <= all.len());
    }
}
