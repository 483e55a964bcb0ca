//! How systemd finds a unit under `--root`: the fragment first on the search path (or a mask,
//! or an alias symlink), `name.d/*.conf` and type-level drop-ins merged by file name, and the
//! `name.requires/` / `name.wants/` symlink directories.

use super::name::is_valid_unit_name;
use super::parse::parse_unit_text;
use super::{Dep, DepKind, Evidence, Unit};
use crate::in_root::{resolve_in_root, Resolved};
use crate::root::Root;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The unit search path, highest priority first.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Loads `name` under `root`. `Ok(None)` when no file for it exists anywhere.
///
/// Nothing in a unit file is fatal: unreadable files and lines that do not parse become
/// [`Unit::problems`] and the rest is used, as systemd does. An error is returned only for a
/// name that is not a unit name (it would be joined into paths).
pub fn load(root: &Root, name: &str) -> anyhow::Result<Option<Unit>> {
    if !is_valid_unit_name(name) {
        anyhow::bail!("{name:?} is not a valid systemd unit name");
    }
    let mut unit = Unit {
        name: name.to_string(),
        ..Unit::default()
    };
    // Names whose drop-ins apply: the unit's own, and the name its alias symlink points to.
    let mut names = vec![name.to_string()];
    let mut found_any = false;

    for dir in SEARCH_PATH {
        let virt = Path::new(dir).join(name);
        match resolve_in_root(root.dir(), &virt) {
            Resolved::Missing => continue,
            Resolved::Loop => {
                unit.problems.push(format!(
                    "{}: too many levels of symbolic links; ignored",
                    root.path(&virt).display()
                ));
                continue;
            }
            Resolved::DevNull => {
                unit.masked = true;
                unit.fragment = Some(root.path(&virt));
                return Ok(Some(unit));
            }
            Resolved::Found { virt: target, real } => {
                let meta = match std::fs::metadata(&real) {
                    Ok(m) => m,
                    Err(e) => {
                        unit.problems
                            .push(format!("{}: cannot stat: {e}", real.display()));
                        continue;
                    }
                };
                if !meta.is_file() {
                    unit.problems.push(format!(
                        "{}: not a regular file; ignored",
                        root.path(&virt).display()
                    ));
                    continue;
                }
                if meta.len() == 0 {
                    unit.masked = true;
                    unit.fragment = Some(root.path(&virt));
                    return Ok(Some(unit));
                }
                if let Some(alias) = target.file_name().and_then(|n| n.to_str()) {
                    if alias != name && is_valid_unit_name(alias) {
                        names.push(alias.to_string());
                    }
                }
                unit.fragment = Some(real);
                found_any = true;
                break;
            }
        }
    }

    let mut deps = Vec::new();
    if let Some(frag) = unit.fragment.clone() {
        apply_file(&frag, name, &mut deps, &mut unit.problems);
    }

    let (dropins, own_dropins) = find_dropins(root, name, &names, &mut unit.problems);
    found_any |= own_dropins;
    for d in &dropins {
        apply_file(d, name, &mut deps, &mut unit.problems);
    }
    unit.dropins = dropins;

    let link_deps = find_link_deps(root, &names, &mut unit.problems);
    found_any |= !link_deps.is_empty();
    deps.extend(link_deps);

    if !found_any {
        return Ok(None);
    }
    // The first place a dependency was set is the evidence; repeats add nothing.
    let mut seen = HashSet::new();
    deps.retain(|d| seen.insert((d.kind, d.target.clone())));
    unit.deps = deps;
    Ok(Some(unit))
}

/// Reads one unit file or drop-in and applies its `[Unit]` dependency settings.
fn apply_file(path: &Path, unit_name: &str, deps: &mut Vec<Dep>, problems: &mut Vec<String>) {
    match crate::fsutil::read_text_nofollow(path) {
        Ok(text) => {
            let parsed = parse_unit_text(&text, unit_name);
            for (line, msg) in parsed.problems {
                problems.push(format!("{}:{line}: {msg}", path.display()));
            }
            deps.extend(parsed.deps.into_iter().map(|d| Dep {
                kind: d.kind,
                target: d.target,
                evidence: Evidence {
                    file: path.to_path_buf(),
                    line: d.line,
                    text: d.text,
                },
            }));
        }
        Err(e) => problems.push(format!("{e:#}; ignored")),
    }
}

/// The drop-ins of a unit, in the order systemd applies them, and whether any of them is
/// specific to this unit (type-level `service.d/` alone does not make a unit exist).
///
/// Directories are visited highest priority first, and within one directory the unit's own
/// `name.d/` before the type-level one; the first file of a given name wins, later ones of the
/// same name are hidden (also by a `/dev/null` or empty file, which then adds nothing).
fn find_dropins(
    root: &Root,
    name: &str,
    names: &[String],
    problems: &mut Vec<String>,
) -> (Vec<PathBuf>, bool) {
    let mut dir_names: Vec<(String, bool)> =
        names.iter().map(|n| (format!("{n}.d"), true)).collect();
    if let Some((_, suffix)) = name.rsplit_once('.') {
        // systemd >= 246: top-level drop-ins for every unit of a type.
        dir_names.push((format!("{suffix}.d"), false));
    }
    let mut chosen: HashMap<OsString, Option<PathBuf>> = HashMap::new();
    let mut own = false;
    for dir in SEARCH_PATH {
        for (dn, specific) in &dir_names {
            let virt = Path::new(dir).join(dn);
            let entries = match read_dir_in_root(root, &virt, problems) {
                Some(e) => e,
                None => continue,
            };
            for fname in entries {
                if !fname.to_string_lossy().ends_with(".conf") || chosen.contains_key(&fname) {
                    continue;
                }
                let fvirt = virt.join(&fname);
                let file = match resolve_in_root(root.dir(), &fvirt) {
                    Resolved::Missing => continue,
                    Resolved::Loop => {
                        problems.push(format!(
                            "{}: too many levels of symbolic links; ignored",
                            root.path(&fvirt).display()
                        ));
                        continue;
                    }
                    Resolved::DevNull => None,
                    Resolved::Found { real, .. } => match std::fs::metadata(&real) {
                        Ok(m) if m.is_file() && m.len() == 0 => None,
                        Ok(m) if m.is_file() => Some(real),
                        Ok(_) => {
                            problems.push(format!(
                                "{}: not a regular file; ignored",
                                root.path(&fvirt).display()
                            ));
                            continue;
                        }
                        Err(e) => {
                            problems.push(format!("{}: cannot stat: {e}", real.display()));
                            continue;
                        }
                    },
                };
                own |= *specific;
                chosen.insert(fname, file);
            }
        }
    }
    let mut sorted: Vec<(OsString, PathBuf)> = chosen
        .into_iter()
        .filter_map(|(n, p)| p.map(|p| (n, p)))
        .collect();
    sorted.sort();
    (sorted.into_iter().map(|(_, p)| p).collect(), own)
}

/// `name.requires/X` and `name.wants/X` entries (made by `systemctl enable` from
/// `RequiredBy=`/`WantedBy=`) add `Requires=X` / `Wants=X`; systemd unions them over all
/// directories.
fn find_link_deps(root: &Root, names: &[String], problems: &mut Vec<String>) -> Vec<Dep> {
    let mut out = Vec::new();
    for dir in SEARCH_PATH {
        for n in names {
            for (suffix, kind) in [("requires", DepKind::Requires), ("wants", DepKind::Wants)] {
                let virt = Path::new(dir).join(format!("{n}.{suffix}"));
                let Some(entries) = read_dir_in_root(root, &virt, problems) else {
                    continue;
                };
                let mut entries: Vec<String> = entries
                    .into_iter()
                    .filter_map(|e| e.into_string().ok())
                    .filter(|e| is_valid_unit_name(e))
                    .collect();
                entries.sort();
                for target in entries {
                    let file = root.path(virt.join(&target));
                    out.push(Dep {
                        kind,
                        target: target.clone(),
                        evidence: Evidence {
                            text: format!(
                                "{}/{} (symlink: {}={})",
                                virt.file_name().unwrap_or_default().to_string_lossy(),
                                target,
                                kind.key(),
                                target
                            ),
                            file,
                            line: 0,
                        },
                    });
                }
            }
        }
    }
    out
}

/// Lists a directory of the target system (resolved inside the root). `None` when it does not
/// exist; an unreadable one is a problem.
fn read_dir_in_root(root: &Root, virt: &Path, problems: &mut Vec<String>) -> Option<Vec<OsString>> {
    let real = match resolve_in_root(root.dir(), virt) {
        Resolved::Found { real, .. } => real,
        Resolved::Missing | Resolved::DevNull => return None,
        Resolved::Loop => {
            problems.push(format!(
                "{}: too many levels of symbolic links; ignored",
                root.path(virt).display()
            ));
            return None;
        }
    };
    if !real.is_dir() {
        return None;
    }
    match std::fs::read_dir(&real) {
        Ok(rd) => Some(
            rd.filter_map(std::result::Result::ok)
                .map(|e| e.file_name())
                .collect(),
        ),
        Err(e) => {
            problems.push(format!("{}: cannot list: {e}", real.display()));
            None
        }
    }
}
