//! Interprets a walk's [`Analysis`]: "does this script stop/start `unit` when called with
//! `arg`?". The analysis itself (sites, guards, unknowns) is made by [`super::walk`]; its types
//! are re-exported here, where callers have always found them.

pub use super::walk::{
    analyse, Analysis, FileOp, FileTest, Guard, Site, Tri, UnitOp, Unknown, UnknownKind,
};

/// The answer to "does this script stop/start `unit` when called with `arg`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// These sites do it (Tri::Yes or Tri::Maybe).
    Yes(Vec<&'a Site>),
    No,
    /// The script has something we cannot decide about that could touch the unit.
    Unknown(Vec<&'a Unknown>),
}

impl Analysis {
    /// Sites with `op` in `ops` acting on `unit` that run (Yes or Maybe) when `$1 == arg`;
    /// Unknown if there are none but there are unknowns (an unknown may touch any unit).
    pub fn query(&self, ops: &[UnitOp], unit: &str, arg: &str) -> Answer<'_> {
        let sites: Vec<&Site> = self
            .sites
            .iter()
            .filter(|s| ops.contains(&s.op))
            .filter(|s| s.units.iter().any(|u| u == unit))
            .filter(|s| s.runs_on(arg) != Tri::No)
            .collect();
        if !sites.is_empty() {
            Answer::Yes(sites)
        } else if !self.unknowns.is_empty() {
            Answer::Unknown(self.unknowns.iter().collect())
        } else {
            Answer::No
        }
    }

    /// The script could not be parsed at all: nothing in it can be trusted or edited.
    pub fn unparsable(&self) -> bool {
        self.unknowns.iter().any(Unknown::is_parse_failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_prefers_sites_then_unknowns() {
        let a = analyse("systemctl stop docker\nsystemctl stop \"$U\"\n");
        assert!(
            matches!(a.query(&[UnitOp::Stop], "docker.service", "upgrade"), Answer::Yes(s) if s.len() == 1)
        );
        assert!(
            matches!(a.query(&[UnitOp::Stop], "containerd.service", "upgrade"), Answer::Unknown(u) if u.len() == 1)
        );
        let a = analyse("systemctl stop docker\n");
        assert_eq!(
            a.query(&[UnitOp::Start], "docker.service", "configure"),
            Answer::No
        );
    }
}
