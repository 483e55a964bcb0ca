//! The config file the package installs (etc/config.toml -> /etc/docker-upgrade-guard/config.toml)
//! shows every setting, commented out, with its real default. Uncommenting every setting must
//! give a valid file that changes nothing; a field added to `Config` must appear in the file.

use docker_upgrade_guard::config::Config;
use std::collections::BTreeSet;

const SHIPPED: &str = include_str!("../../etc/config.toml");

/// The file with every `#key = value` line uncommented (prose comments have a space after `#`).
fn uncommented() -> String {
    SHIPPED
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The field names of `Config`, from its Debug rendering (so a new field cannot be forgotten).
fn config_fields() -> BTreeSet<String> {
    let dbg = format!("{:?}", Config::default());
    let body = dbg
        .strip_prefix("Config { ")
        .and_then(|s| s.strip_suffix(" }"))
        .expect("Config's Debug shape");
    let (mut depth, mut start, mut fields) = (0i32, 0usize, BTreeSet::new());
    let mut in_str = false;
    let bytes = body.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            _ if in_str => {}
            b'[' | b'{' | b'(' => depth += 1,
            b']' | b'}' | b')' => depth -= 1,
            b',' if depth == 0 => {
                fields.insert(field_name(&body[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.insert(field_name(&body[start..]));
    fields
}

fn field_name(part: &str) -> String {
    part.trim()
        .split_once(':')
        .expect("field: value")
        .0
        .to_string()
}

#[test]
fn every_setting_is_commented_out_so_the_shipped_file_is_empty() {
    let t: toml::Table = SHIPPED.parse().expect("the shipped file parses");
    assert!(
        t.is_empty(),
        "settings are active in the shipped file: {t:?}"
    );
}

#[test]
fn uncommented_settings_are_exactly_config_fields_with_their_defaults() {
    let t: toml::Table = uncommented().parse().expect("the uncommented file parses");
    let keys: BTreeSet<String> = t.keys().cloned().collect();
    assert_eq!(
        keys,
        config_fields(),
        "keys in etc/config.toml vs Config's fields"
    );

    let d = Config::default();
    let strings = |k: &str| -> Vec<String> {
        t[k].as_array()
            .unwrap_or_else(|| panic!("{k} is not an array"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect()
    };
    let int = |k: &str| -> u64 {
        u64::try_from(
            t[k].as_integer()
                .unwrap_or_else(|| panic!("{k} is not an integer")),
        )
        .expect("non-negative")
    };
    assert_eq!(t["enabled"].as_bool(), Some(d.enabled));
    assert_eq!(strings("units"), d.units);
    assert_eq!(strings("packages"), d.packages);
    assert_eq!(int("start_timeout_secs"), d.start_timeout_secs);
    assert_eq!(int("ping_timeout_secs"), d.ping_timeout_secs);
    assert_eq!(int("hook_budget_secs"), d.hook_budget_secs);
    assert_eq!(int("max_snapshot_age_secs"), d.max_snapshot_age_secs);
    assert_eq!(t["jit_patch"].as_bool(), Some(d.jit_patch));
    assert_eq!(t["containerd_after_upgrade"].as_str(), Some("restart"));
    assert_eq!(
        d.containerd_after_upgrade,
        docker_upgrade_guard::config::ContainerdAfterUpgrade::Restart
    );
    assert_eq!(t["restart_containers"].as_str(), Some("never"));
    assert_eq!(
        d.restart_containers,
        docker_upgrade_guard::config::RestartContainers::Never
    );
    // The tool's own parser reads the same file (toml above is the independent check) and it
    // changes nothing.
    assert_eq!(
        docker_upgrade_guard::config::parse(&uncommented()).expect("the tool parses it"),
        d
    );
}

#[test]
fn the_field_scanner_sees_all_fields() {
    // Guards the Debug-based scanner itself: it must find the fields we know of.
    let f = config_fields();
    for k in ["enabled", "units", "jit_patch", "containerd_after_upgrade"] {
        assert!(f.contains(k), "{k} missing from {f:?}");
    }
    assert_eq!(f.len(), 10, "{f:?}");
}
