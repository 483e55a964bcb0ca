//! Variable resolution: what each variable may hold at a point of the walk (literal values,
//! each with the conditions under which it was assigned), merged where branches join.

use std::collections::BTreeMap;

use super::{Guard, Walker};
use crate::scripts::lex::{Part, Word};

/// What a variable may hold at a point: literal values, each with the path conditions under
/// which it was assigned; or anything.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Known(Vec<(String, Vec<Guard>)>),
    Unknown,
}

pub(super) type Env = BTreeMap<String, Val>;

pub(super) enum Res {
    Vals(Vec<(String, Vec<Guard>)>),
    /// `$@` / `$*`.
    Spread,
    Unresolved(String),
}

/// The cap on the number of values one word may expand to (products of variables).
pub(super) const MAX_VALUES: usize = 32;

pub(super) fn merge(outcomes: Vec<Env>) -> Env {
    let mut keys: Vec<&String> = outcomes.iter().flat_map(|e| e.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Env::new();
    for k in keys {
        let mut vals: Vec<(String, Vec<Guard>)> = Vec::new();
        let mut known = true;
        for e in &outcomes {
            match e.get(k) {
                Some(Val::Known(vs)) => {
                    for v in vs {
                        if !vals.contains(v) {
                            vals.push(v.clone());
                        }
                    }
                }
                _ => known = false,
            }
        }
        out.insert(
            k.clone(),
            if known {
                Val::Known(vals)
            } else {
                Val::Unknown
            },
        );
    }
    out
}

impl Walker<'_> {
    pub(super) fn resolve(&self, w: &Word) -> Res {
        let mut acc: Vec<(String, Vec<Guard>)> = vec![(String::new(), Vec::new())];
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => acc.iter_mut().for_each(|a| a.0.push_str(text)),
                Part::Param(n) if n == "@" || n == "*" => return Res::Spread,
                Part::Param(n) => match self.env.get(n) {
                    Some(Val::Known(vs)) => {
                        let mut next = Vec::new();
                        for (s, g) in &acc {
                            for (v, h) in vs {
                                let mut gs = g.clone();
                                gs.extend(h.iter().filter(|x| !g.contains(x)).cloned());
                                next.push((format!("{s}{v}"), gs));
                            }
                        }
                        if next.len() > MAX_VALUES {
                            return Res::Unresolved(format!("${n} (too many values)"));
                        }
                        acc = next;
                    }
                    _ => return Res::Unresolved(format!("${n}")),
                },
                Part::Complex(raw) => return Res::Unresolved(raw.clone()),
            }
        }
        Res::Vals(acc)
    }

    pub(super) fn assign(&mut self, name: &str, value: &Word, path: &[Guard], conditional: bool) {
        let new = match self.resolve(value) {
            Res::Vals(vs) => Val::Known(
                vs.into_iter()
                    .map(|(v, g)| {
                        let mut gs = path.to_vec();
                        gs.extend(g.into_iter().filter(|x| !path.contains(x)));
                        (v, gs)
                    })
                    .collect(),
            ),
            _ => Val::Unknown,
        };
        let val = match (conditional, self.env.get(name)) {
            // `cond && X=y`: X may also keep its old value.
            (true, Some(old)) => {
                let mut e1 = Env::new();
                e1.insert(name.to_string(), old.clone());
                let mut e2 = Env::new();
                e2.insert(name.to_string(), new);
                merge(vec![e1, e2]).remove(name).unwrap_or(Val::Unknown)
            }
            (true, None) => Val::Unknown,
            (false, _) => new,
        };
        self.env.insert(name.to_string(), val);
    }
}
