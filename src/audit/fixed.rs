//! The fixed version of a harmful installed script, in the order the issue asks:
//! `--against PATH` (a .deb, or a plain script), a newer .deb of the package in apt's archive
//! cache (only if its script no longer stops a watched unit on upgrade), else the tool's own
//! repair (exactly what `patch` writes).

use super::facts::{PackageFacts, ScriptFacts, ScriptReading};
use crate::dpkg::{deb, info::ScriptKind, version::Version};
use crate::root::Root;
use crate::scripts::{classify, repair, stops_on_upgrade};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fixed {
    /// For the `+++ fixed <source>` header.
    pub source: String,
    pub text: String,
}

/// What `--against` is: a .deb (with its package name) or a plain script.
#[derive(Debug, Clone)]
pub(crate) enum Against<'a> {
    Deb {
        path: &'a Path,
        package: String,
        version: String,
    },
    Script {
        path: &'a Path,
        text: String,
    },
}

/// Opens `--against`. A `.deb` is recognised by its `!<arch>` magic, not its name.
pub(crate) fn open_against(path: &Path) -> anyhow::Result<Against<'_>> {
    use std::io::Read;
    let mut magic = Vec::with_capacity(8);
    crate::fsutil::open_nofollow(path)?
        .take(8)
        .read_to_end(&mut magic)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if magic == b"!<arch>\n" {
        let (package, version) = deb::fields(path)?;
        Ok(Against::Deb {
            path,
            package,
            version: version.to_string(),
        })
    } else {
        Ok(Against::Script {
            path,
            text: crate::fsutil::read_text_nofollow(path)?,
        })
    }
}

impl Against<'_> {
    /// Whether this applies to `pkg`'s `kind` script: a .deb of that package; a plain file
    /// whose name ends in the script's kind (`prerm`, `docker.io.prerm`), or any harmful
    /// script when the name says no kind.
    pub(crate) fn applies(&self, pkg: &str, kind: ScriptKind) -> bool {
        match self {
            Against::Deb { package, .. } => package == pkg,
            Against::Script { path, .. } => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let named = ScriptKind::ALL.iter().find(|k| name.ends_with(k.name()));
                named.is_none_or(|k| *k == kind)
            }
        }
    }
}

pub(crate) fn fixed_for(
    root: &Root,
    against: Option<&Against>,
    pkg: &PackageFacts,
    script: &ScriptFacts,
    reading: &ScriptReading,
    watched: &[&str],
    notes: &mut Vec<String>,
) -> Option<Fixed> {
    let kind = script.kind;
    if let Some(a) = against.filter(|a| a.applies(&pkg.name, kind)) {
        match a {
            Against::Deb {
                path,
                package,
                version,
            } => match deb::control_script(path, kind) {
                Ok(text) => {
                    return Some(Fixed {
                        source: format!("{package} {version} {} ({})", kind.name(), path.display()),
                        // A fixed package may have no such script at all.
                        text: text.unwrap_or_default(),
                    });
                }
                Err(e) => notes.push(format!("--against: {e:#}")),
            },
            Against::Script { path, text } => {
                return Some(Fixed {
                    source: path.display().to_string(),
                    text: text.clone(),
                })
            }
        }
    }
    if let Some(f) = cached(root, pkg, kind, watched, notes) {
        return Some(f);
    }
    if !crate::patch::plan::PATCH_KINDS.contains(&kind) {
        // `patch` does not rewrite this script (dpkg runs the new preinst, not the installed
        // one): a repaired rendering would show a change nothing will make.
        return None;
    }
    let analysis = classify::analyse(&reading.text);
    repair::repair(&reading.text, &analysis, watched).map(|text| Fixed {
        source: "docker-upgrade-guard repair (what `docker-upgrade-guard patch` writes)"
            .to_string(),
        text,
    })
}

fn cached(
    root: &Root,
    pkg: &PackageFacts,
    kind: ScriptKind,
    watched: &[&str],
    notes: &mut Vec<String>,
) -> Option<Fixed> {
    let version = Version::parse(pkg.version.as_deref()?).ok()?;
    let deb_path = match deb::cached_candidate(root, &pkg.name, &version) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => {
            notes.push(format!("apt's archive cache: {e:#}"));
            return None;
        }
    };
    let text = match deb::control_script(&deb_path, kind) {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            notes.push(format!("{e:#}"));
            return None;
        }
    };
    let analysis = classify::analyse(&text);
    let still = stops_on_upgrade(&analysis, watched);
    if !still.is_empty() {
        notes.push(format!(
            "{}: its {} still stops a watched unit on upgrade (line {}); diffing against the tool's repair instead",
            deb_path.display(),
            kind.name(),
            still[0].lines.0
        ));
        return None;
    }
    let cand = deb::fields(&deb_path).map_or_else(|_| "?".to_string(), |(_, v)| v.to_string());
    Some(Fixed {
        source: format!(
            "{} {cand} {} ({})",
            pkg.name,
            kind.name(),
            deb_path.display()
        ),
        text,
    })
}
