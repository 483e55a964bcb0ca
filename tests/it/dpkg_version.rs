//! Our deb-version(7) ordering against the real `dpkg --compare-versions`, on pairs generated
//! deterministically (fixed seed, own xorshift PRNG) from an alphabet rich in `~ + . - :`,
//! digits and letters, with many pairs that are equal by value but not by text.

use docker_upgrade_guard::dpkg::version::Version;
use std::cmp::Ordering;
use std::process::Command;

const PAIRS: usize = 1200;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const UPSTREAM_TAIL: &[&str] = &[
    "0", "1", "2", "9", "10", "00", "007", "a", "b", "z", "A", "Z", "rc", "ds", "dfsg", ".", ".",
    "+", "~", "~~", "-", ":", "+b1", "~rc1",
];
const REVISION: &[&str] = &[
    "0", "1", "2", "10", "01", "a", "Z", "ubuntu", "deb12u", ".", "+", "~", "~bpo",
];

fn digits(rng: &mut Rng) -> String {
    rng.pick(&["0", "1", "2", "3", "9", "10", "01", "19", "20", "100"])
        .to_string()
}

fn version(rng: &mut Rng) -> String {
    let mut s = String::new();
    let epoch = rng.chance(25);
    if epoch {
        s += rng.pick(&["0", "1", "2", "00", "01", "10"]);
        s.push(':');
    }
    s += &digits(rng);
    for _ in 0..rng.below(6) {
        let piece = rng.pick(UPSTREAM_TAIL);
        // ':' in the upstream part needs an epoch; '-' there needs a revision (added below).
        if piece == ":" && !epoch {
            continue;
        }
        s += piece;
    }
    if rng.chance(60) || s.contains('-') {
        s.push('-');
        for i in 0..=rng.below(4) {
            let piece = rng.pick(REVISION);
            let _ = i;
            s += piece;
        }
    }
    s
}

/// A small edit of `v`: the kind of neighbour that exposes ordering bugs, often equal by value.
fn neighbour(rng: &mut Rng, v: &str) -> String {
    match rng.below(10) {
        0 => format!("{v}~"),
        1 => format!("{v}0"),
        2 => format!("0:{v}").replacen("0:0:", "0:", 1),
        3 => v.replacen('0', "00", 1),
        4 => v.replacen('1', "01", 1),
        5 => {
            if v.contains('-') {
                format!("{v}0")
            } else {
                format!("{v}-0")
            }
        }
        6 => v.replacen('.', "~", 1),
        7 => v.replacen('~', "+", 1),
        8 => format!("{v}a"),
        _ => v.to_string(),
    }
}

fn dpkg_says(a: &str, b: &str, op: &str) -> bool {
    let st = Command::new("/usr/bin/dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("run dpkg --compare-versions");
    match st.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("dpkg --compare-versions {a} {op} {b}: exit {other:?}"),
    }
}

fn dpkg_order(a: &str, b: &str) -> Ordering {
    if dpkg_says(a, b, "lt") {
        Ordering::Less
    } else if dpkg_says(a, b, "eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

#[test]
fn ordering_matches_dpkg_compare_versions() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = (0, 0, 0);
    let mut equal_by_value_only = 0;
    let mut mismatches = Vec::new();
    for _ in 0..PAIRS {
        let a = version(&mut rng);
        let b = if rng.chance(70) {
            neighbour(&mut rng, &a)
        } else {
            version(&mut rng)
        };
        // A neighbour edit can produce something the grammar forbids (e.g. "~" → "+"
        // never does, but "0:" before an epoch would): skip those, they are not pairs.
        let (Ok(va), Ok(vb)) = (Version::parse(&a), Version::parse(&b)) else {
            let _ = Version::parse(&a).expect("the generator makes valid versions");
            continue;
        };
        let ours = va.cmp(&vb);
        // One dpkg run per pair: "is it what we say?" A yes pins dpkg's answer exactly.
        let op = match ours {
            Ordering::Less => "lt",
            Ordering::Equal => "eq",
            Ordering::Greater => "gt",
        };
        let theirs = if dpkg_says(&a, &b, op) {
            ours
        } else {
            dpkg_order(&a, &b)
        };
        match theirs {
            Ordering::Less => seen.0 += 1,
            Ordering::Equal => seen.1 += 1,
            Ordering::Greater => seen.2 += 1,
        }
        if theirs == Ordering::Equal && a != b {
            equal_by_value_only += 1;
        }
        if ours != theirs {
            mismatches.push(format!("{a} vs {b}: ours {ours:?}, dpkg {theirs:?}"));
        }
    }
    let total = seen.0 + seen.1 + seen.2;
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(total >= 1000, "only {total} pairs compared");
    // The generator must really exercise all three outcomes and text-unequal equal pairs.
    assert!(seen.0 > 100 && seen.1 > 50 && seen.2 > 100, "{seen:?}");
    assert!(equal_by_value_only > 20, "{equal_by_value_only}");
    eprintln!("{total} pairs (lt/eq/gt {seen:?}, {equal_by_value_only} equal by value only)");
}

#[test]
fn explicit_equal_by_value_pairs() {
    for (a, b) in [
        ("1.0", "1.00"),
        ("0:1", "1"),
        ("1.0-0", "1.0"),
        ("00:1.01", "1.1"),
    ] {
        assert_eq!(dpkg_order(a, b), Ordering::Equal, "dpkg: {a} vs {b}");
        assert_eq!(
            Version::parse(a).unwrap(),
            Version::parse(b).unwrap(),
            "{a} vs {b}"
        );
    }
}
