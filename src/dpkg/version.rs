//! Debian version numbers and their ordering, as deb-version(7) defines them.

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

impl Version {
    /// Parses strictly: errors say what is wrong with which version string.
    pub fn parse(s: &str) -> anyhow::Result<Version> {
        let _ = s;
        todo!("dpkg helper")
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
        let _ = other;
        todo!("dpkg helper")
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
