//! Interprets a walk's [`Analysis`]: "does this script stop/start `unit` when called with
//! `arg`?". The analysis itself (sites, guards, unknowns) is made by [`super::walk`]; its types
//! are re-exported here, where callers have always found them.

pub use super::walk::{analyse, Analysis, Guard, Site, Tri, UnitOp, Unknown, PARSE_FAILURE};

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

    fn arg(s: &str) -> Guard {
        Guard::ArgIs(s.into())
    }

    fn stop_guard(src: &str) -> Guard {
        let a = analyse(src);
        assert!(a.unknowns.is_empty(), "{:?}", a.unknowns);
        a.sites[0].guard.clone()
    }

    #[test]
    fn test_expression_forms() {
        let t = |c: &str| stop_guard(&format!("if {c}; then systemctl stop x; fi\n"));
        assert_eq!(
            t("[ \"$1\" = remove -o \"$1\" = purge ]"),
            Guard::any([arg("remove"), arg("purge")])
        );
        assert_eq!(t("[ remove = \"$1\" ]"), arg("remove"));
        assert_eq!(t("[ \"$1\" == 'a*' ]"), arg("a\\*"));
        assert_eq!(t("[ \"x$1\" = yremove ]"), Guard::never());
        assert_eq!(t("[ ! \"$1\" = upgrade ]"), Guard::negate(arg("upgrade")));
        assert_eq!(t("test -z \"$1\""), arg(""));
        assert_eq!(t("[ \"$2\" = x ]"), Guard::Other("[ \"$2\" = x ]".into()));
        assert_eq!(t("true"), Guard::Always);
    }

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
