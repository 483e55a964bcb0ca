//! Debian version numbers and their ordering, as deb-version(7) defines them.
//!
//! Parsing is stricter than `dpkg --compare-versions`, which only *warns* about an upstream
//! part that does not start with a digit or about characters outside the allowed sets. We
//! reject both: `dpkg-deb --build` refuses such versions, so no installable package carries
//! one, and a strange version string in our inputs is more likely garbage than a package.
//! Everything we accept is ordered exactly like dpkg's `verrevcmp`.

use std::cmp::Ordering;
use std::fmt;

/// `[epoch:]upstream[-revision]`. Compared exactly as `dpkg --compare-versions` does.
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    pub revision: String,
    /// The text as written (shown to people; `1:2.0` and `01:2.0` compare equal).
    text: String,
}

/// dpkg stores the epoch in an `int`.
const MAX_EPOCH: u32 = i32::MAX as u32;

impl Version {
    /// Parses strictly: errors say what is wrong with which version string.
    pub fn parse(s: &str) -> anyhow::Result<Version> {
        let bad = |why: &str| anyhow::anyhow!("version '{s}' is invalid: {why}");
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(bad("it contains whitespace"));
        }
        // The epoch ends at the first colon; the upstream part may contain more colons.
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(bad("the epoch before ':' is empty"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the epoch before ':' is not a number"));
                }
                let epoch = e
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_EPOCH)
                    .ok_or_else(|| bad("the epoch is too big"))?;
                if rest.is_empty() {
                    return Err(bad("nothing follows the epoch's ':'"));
                }
                (epoch, rest)
            }
            None => (0, s),
        };
        // The revision starts after the last hyphen; the upstream part may contain hyphens.
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(bad("the revision after the last '-' is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        let Some(first) = upstream.bytes().next() else {
            return Err(bad("the upstream version is empty"));
        };
        if !first.is_ascii_digit() {
            return Err(bad("the upstream version does not start with a digit"));
        }
        if let Some(c) = upstream
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(*c)))
        {
            return Err(bad(&format!(
                "'{c}' is not allowed in the upstream version"
            )));
        }
        if let Some(c) = revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~".contains(*c)))
        {
            return Err(bad(&format!("'{c}' is not allowed in the revision")));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
            text: s.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Version> {
        Version::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// dpkg's `order()`: `~` before the end of the string, the end (and digits, which never reach
/// this) next, then letters, then everything else. `None` is the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit runs (compared char by char with [`order`]) and
/// digit runs (compared numerically, leading zeros ignored, without overflow).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn orders_like_dpkg() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Equal),
            ("1.0", "1.00", Equal),
            ("0:1", "1", Equal),
            ("01:2.0", "1:2.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.0", "1.0.0", Less),
            ("1.2", "1.10", Less),
            ("1.9", "1.10", Less),
            ("1:0", "2", Greater),
            ("2:0.1", "10:0.0", Less),
            ("1.6.20~ds1-1", "1.6.20~ds1-1+deb12u1", Less),
            ("20.10.24+dfsg1-1+deb12u1", "20.10.24+dfsg1-1", Greater),
            ("19.03.8-0ubuntu1", "19.03.8-0ubuntu1.20.04.1", Less),
            ("1.3.3-0ubuntu2", "1.3.3-0ubuntu1", Greater),
            ("1-2-3", "1-2-4", Less),
            ("1:2:3", "1:2:4", Less),
            ("a", "b", Less),
            ("1a", "1A", Greater),
            ("1Z", "1a", Less),
            ("1.000000000000000000000000001", "1.1", Equal),
            (
                "1.99999999999999999999999999",
                "1.100000000000000000000000000",
                Less,
            ),
            ("0", "0~", Greater),
            ("1-1", "1-1~", Greater),
            ("1-1", "1-a", Less),
        ];
        for (a, b, want) in cases {
            if a.starts_with(|c: char| !c.is_ascii_digit()) {
                // Raw comparison only: such versions are refused by the parser.
                assert_eq!(verrevcmp(a.as_bytes(), b.as_bytes()), *want, "{a} vs {b}");
                continue;
            }
            assert_eq!(v(a).cmp(&v(b)), *want, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn splits_parts() {
        let x = v("3:1.2-3-4");
        assert_eq!(
            (x.epoch, x.upstream.as_str(), x.revision.as_str()),
            (3, "1.2-3", "4")
        );
        let x = v("1:2:3");
        assert_eq!(
            (x.epoch, x.upstream.as_str(), x.revision.as_str()),
            (1, "2:3", "")
        );
        assert_eq!(v("01:2.0").as_str(), "01:2.0");
        assert_eq!(v("1.0~rc1").to_string(), "1.0~rc1");
    }

    #[test]
    fn refuses_bad_versions_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (":1", "epoch before ':' is empty"),
            ("a:1", "epoch before ':' is not a number"),
            ("-1:1", "epoch before ':' is not a number"),
            ("99999999999:1", "epoch is too big"),
            ("1:", "nothing follows"),
            ("1-", "revision after the last '-' is empty"),
            ("-1", "upstream version is empty"),
            ("1:-1", "upstream version is empty"),
            ("abc", "does not start with a digit"),
            ("1.0$", "'$' is not allowed in the upstream"),
            ("1.0_1", "'_' is not allowed in the upstream"),
            ("1.0-a,b", "',' is not allowed in the revision"),
            ("1.0-a:b", "epoch before ':' is not a number"),
            ("1.0-é", "'é' is not allowed in the revision"),
            (" 1.0", "whitespace"),
            ("1 0", "whitespace"),
        ];
        for (s, why) in cases {
            let err = Version::parse(s).unwrap_err().to_string();
            assert!(err.contains(why), "{s:?}: {err}");
            assert!(err.contains(&format!("'{s}'")), "{s:?}: {err}");
        }
    }
}
