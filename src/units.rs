//! systemd unit files as systemd resolves them: the fragment found first on the search path
//! (or a mask, or an alias symlink), `name.d/*.conf` drop-ins from every directory (merged by
//! file name, the higher-priority directory hiding the lower, applied in file-name order), and
//! `name.requires/` / `name.wants/` symlink directories. Answers "what else stops when X stops?".
//!
//! One systemd rule the tool must not get wrong: dependency settings can NOT be reset by an
//! empty assignment (`BindsTo=` in a drop-in does nothing; systemd.unit(5), "Dependencies
//! (After=, etc.) cannot be reset to an empty list"). An admin who wrote one believes docker is
//! no longer bound to containerd while it still is, so such a line is kept as a problem note and
//! the dependency stays.
//!
//! Every path is resolved inside `--root` component by component, symlinks included, the way a
//! chroot would: a link can never lead out of the root (`/lib -> usr/lib` works, `..` stops at
//! the root, an absolute link target is taken relative to the root).

use crate::root::Root;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The unit search path, highest priority first.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// A dependency setting that matters for stop propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    /// Stopping the target stops this unit (always).
    BindsTo,
    /// Stopping the target explicitly stops this unit.
    Requires,
    /// Stopping or restarting the target stops/restarts this unit.
    PartOf,
    /// Stopping the target does NOT stop this unit.
    Wants,
    /// Stopping the target stops this unit (explicit stops, like `Requires=`).
    Requisite,
    /// Written in THIS unit: stopping this unit stops the target (the reverse direction of the
    /// other kinds).
    PropagatesStopTo,
    /// `StopPropagatedFrom=T` in this unit: the same as `PropagatesStopTo=` this unit in T, so
    /// stopping the target stops this unit.
    StopPropagatedFrom,
}

impl DepKind {
    pub fn key(self) -> &'static str {
        match self {
            DepKind::BindsTo => "BindsTo",
            DepKind::Requires => "Requires",
            DepKind::PartOf => "PartOf",
            DepKind::Wants => "Wants",
            DepKind::Requisite => "Requisite",
            DepKind::PropagatesStopTo => "PropagatesStopTo",
            DepKind::StopPropagatedFrom => "StopPropagatedFrom",
        }
    }

    /// The kind a `[Unit]` key sets (keys are case-sensitive, as in systemd).
    pub fn from_key(key: &str) -> Option<DepKind> {
        Some(match key {
            "BindsTo" => DepKind::BindsTo,
            "Requires" => DepKind::Requires,
            "PartOf" => DepKind::PartOf,
            "Wants" => DepKind::Wants,
            "Requisite" => DepKind::Requisite,
            "PropagatesStopTo" => DepKind::PropagatesStopTo,
            "StopPropagatedFrom" => DepKind::StopPropagatedFrom,
            _ => return None,
        })
    }

    /// Whether an explicit stop travels along this setting at all.
    pub fn propagates_stop(self) -> bool {
        !matches!(self, DepKind::Wants)
    }

    /// True when a stop travels from the unit that carries the setting to its target
    /// (`PropagatesStopTo=`); false when it travels from the target to the carrier.
    pub fn stop_flows_to_target(self) -> bool {
        matches!(self, DepKind::PropagatesStopTo)
    }
}

/// Where a dependency was set: file and 1-based line (for the evidence in reports). For a
/// dependency made by a symlink in `name.requires/` or `name.wants/`, `file` is that symlink,
/// `line` is 0 and `text` says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub kind: DepKind,
    pub target: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// The main unit file (None if only drop-ins exist).
    pub fragment: Option<PathBuf>,
    /// Linked to /dev/null (or empty) in a higher-priority directory. A masked unit has no
    /// dependencies (systemd loads neither its file nor its drop-ins); `fragment` is then the
    /// mask itself.
    pub masked: bool,
    pub dropins: Vec<PathBuf>,
    /// Effective dependencies of the `[Unit]` section after drop-ins and resets.
    pub deps: Vec<Dep>,
    /// One line each: files or lines that did not parse (the rest is still used).
    pub problems: Vec<String>,
}

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
        Ok(rd) => Some(rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()),
        Err(e) => {
            problems.push(format!("{}: cannot list: {e}", real.display()));
            None
        }
    }
}

/// Where a path of the target system leads, every symlink resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Missing,
    /// The path is, or links to, `/dev/null` (a mask).
    DevNull,
    /// Too many symlinks (a loop).
    Loop,
    /// `virt`: the final path inside the target system; `real`: the same on the host, with no
    /// symlink left in any component.
    Found {
        virt: PathBuf,
        real: PathBuf,
    },
}

/// Resolves `virt` (absolute, of the target system) under `root` the way the kernel would in a
/// chroot at `root`: each component is looked up with lstat, a symlink's text is spliced in
/// (absolute ones restart at the root), `..` never climbs above the root.
fn resolve_in_root(root: &Path, virt: &Path) -> Resolved {
    const MAX_LINKS: usize = 40;
    let mut todo: VecDeque<OsString> = components(virt).into();
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        // /dev/null is the mask whether or not the root has a /dev.
        let is_dev_null = |cur: &[OsString], rest: &VecDeque<OsString>| {
            let mut all = cur.iter().chain(rest.iter());
            all.next().is_some_and(|c| c == "dev")
                && all.next().is_some_and(|c| c == "null")
                && all.next().is_none()
        };
        if is_dev_null(&cur, &todo) {
            return Resolved::DevNull;
        }
        let real = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let meta = match std::fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(_) => return Resolved::Missing,
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Resolved::Loop;
            }
            let Ok(text) = std::fs::read_link(&real) else {
                return Resolved::Missing;
            };
            cur.pop();
            if text.is_absolute() {
                cur.clear();
            }
            for (i, c) in components(&text).into_iter().enumerate() {
                todo.insert(i, c);
            }
        }
    }
    let virt = cur.iter().fold(PathBuf::from("/"), |p, c| p.join(c));
    let real = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    Resolved::Found { virt, real }
}

/// The normal and `..` components of a path (`.` and the root dropped).
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "slice",
    "scope",
];

/// systemd's rules for a unit name (a template without instance is not a valid dependency).
pub fn is_valid_unit_name(name: &str) -> bool {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    name.len() <= 255
        && !stem.is_empty()
        && UNIT_SUFFIXES.contains(&suffix)
        && !stem.ends_with('@')
        && !stem.starts_with('@')
        && stem.matches('@').count() <= 1
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// A dependency as parsed from one file, before it is tied to the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDep {
    pub kind: DepKind,
    pub target: String,
    /// 1-based line where the (possibly continued) assignment starts.
    pub line: usize,
    /// The logical line (continuations joined).
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub deps: Vec<ParsedDep>,
    /// (1-based line, message).
    pub problems: Vec<(usize, String)>,
}

/// Parses the `[Unit]` dependency settings of one unit file or drop-in, as systemd's config
/// parser reads it: comments `#`/`;`, a trailing `\` joining the next line with a space
/// (comment lines inside a continuation skipped), case-sensitive section names and keys.
/// `unit_name` expands the specifiers `%n %N %p %i %%`.
pub fn parse_unit_text(text: &str, unit_name: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Parsed::default();
    let mut section: Option<String> = None;
    let mut logical: Option<(usize, String)> = None;
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let l = raw.trim();
        if logical.is_some() && (l.starts_with('#') || l.starts_with(';')) {
            continue;
        }
        let (start, mut joined) = match logical.take() {
            Some((start, acc)) => (start, acc + l),
            None => {
                if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                    continue;
                }
                (lineno, l.to_string())
            }
        };
        if joined.ends_with('\\') {
            joined.pop();
            joined.push(' ');
            logical = Some((start, joined));
            continue;
        }
        parse_logical_line(start, joined.trim(), unit_name, &mut section, &mut out);
    }
    if let Some((start, joined)) = logical {
        parse_logical_line(start, joined.trim(), unit_name, &mut section, &mut out);
    }
    out
}

fn parse_logical_line(
    lineno: usize,
    l: &str,
    unit_name: &str,
    section: &mut Option<String>,
    out: &mut Parsed,
) {
    if let Some(rest) = l.strip_prefix('[') {
        match rest.strip_suffix(']') {
            Some(name) if !name.is_empty() && !name.contains(['[', ']']) => {
                *section = Some(name.to_string());
            }
            _ => out.problems.push((
                lineno,
                format!("invalid section header {l:?}; line ignored"),
            )),
        }
        return;
    }
    if l.starts_with(".include ") {
        out.problems.push((
            lineno,
            ".include is not supported by current systemd; line ignored".to_string(),
        ));
        return;
    }
    let Some((key, value)) = l.split_once('=') else {
        out.problems
            .push((lineno, format!("missing '=' in {l:?}; line ignored")));
        return;
    };
    let (key, value) = (key.trim(), value.trim());
    let Some(section) = section.as_deref() else {
        out.problems.push((
            lineno,
            format!("assignment {l:?} outside of any section; line ignored"),
        ));
        return;
    };
    if key.is_empty() {
        out.problems
            .push((lineno, format!("empty key in {l:?}; line ignored")));
        return;
    }
    if section != "Unit" {
        return;
    }
    let Some(kind) = DepKind::from_key(key) else {
        return;
    };
    if value.is_empty() {
        out.problems.push((
            lineno,
            format!(
                "{key}= (empty) does not remove dependencies: systemd cannot reset them, only add \
                 (override the whole unit file instead); line has no effect"
            ),
        ));
        return;
    }
    for word in value.split_ascii_whitespace() {
        let target = match expand_specifiers(word, unit_name) {
            Ok(t) => t,
            Err(msg) => {
                out.problems
                    .push((lineno, format!("{key}={word}: {msg}; ignored")));
                continue;
            }
        };
        if !is_valid_unit_name(&target) {
            out.problems.push((
                lineno,
                format!("{key}={word}: not a valid unit name; ignored"),
            ));
            continue;
        }
        out.deps.push(ParsedDep {
            kind,
            target,
            line: lineno,
            text: l.to_string(),
        });
    }
}

/// The unit-name specifiers a dependency on docker/containerd could plausibly use.
fn expand_specifiers(word: &str, unit_name: &str) -> Result<String, String> {
    if !word.contains('%') {
        return Ok(word.to_string());
    }
    let stem = unit_name.rsplit_once('.').map_or(unit_name, |(s, _)| s);
    let (prefix, instance) = stem.split_once('@').unwrap_or((stem, ""));
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(unit_name),
            Some('N') => out.push_str(stem),
            Some('p') => out.push_str(prefix),
            Some('i') => out.push_str(instance),
            Some(o) => return Err(format!("specifier %{o} is not supported here")),
            None => return Err("trailing %".to_string()),
        }
    }
    Ok(out)
}

/// A unit stopped because another one was, and the chain of settings that explains it
/// (`docker.service BindsTo=containerd.service`, then `docker.socket PartOf=docker.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagated {
    pub unit: String,
    pub chain: Vec<Dep>,
}

/// Which of `units` stop (transitively) when `stopped` is stopped explicitly.
///
/// A unit U stops when a stopped unit T is the target of U's `BindsTo=`, `Requires=`,
/// `Requisite=`, `PartOf=` or `StopPropagatedFrom=`, or when T carries `PropagatesStopTo=U`.
/// `Wants=` never propagates; masked units carry no settings. Breadth-first, so each chain is a
/// shortest one; the result is in the order units are reached (ties: the order of `units`).
pub fn stop_propagation(units: &[Unit], stopped: &str) -> Vec<Propagated> {
    // Edges: stopping `from` stops `to`, because of `dep`.
    let mut edges: Vec<(&str, &str, &Dep)> = Vec::new();
    for u in units.iter().filter(|u| !u.masked) {
        for d in u.deps.iter().filter(|d| d.kind.propagates_stop()) {
            if d.kind.stop_flows_to_target() {
                edges.push((u.name.as_str(), d.target.as_str(), d));
            } else {
                edges.push((d.target.as_str(), u.name.as_str(), d));
            }
        }
    }
    let mut chains: HashMap<&str, Vec<Dep>> = HashMap::new();
    chains.insert(stopped, Vec::new());
    let mut queue = VecDeque::from([stopped]);
    let mut out = Vec::new();
    while let Some(cur) = queue.pop_front() {
        let base = chains.get(cur).cloned().unwrap_or_default();
        for (from, to, dep) in &edges {
            if *from != cur || chains.contains_key(to) {
                continue;
            }
            let mut chain = base.clone();
            chain.push((*dep).clone());
            chains.insert(to, chain.clone());
            queue.push_back(to);
            out.push(Propagated {
                unit: to.to_string(),
                chain,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (DepKind, String, usize);

    fn deps(text: &str) -> Vec<Row> {
        parse_unit_text(text, "docker.service")
            .deps
            .into_iter()
            .map(|d| (d.kind, d.target, d.line))
            .collect()
    }

    #[test]
    fn parser_table() {
        use DepKind::*;
        let c = "containerd.service".to_string();
        let cases: Vec<(&str, &str, Vec<Row>, usize)> = vec![
            ("focal docker.service", "[Unit]\nDescription=x\nBindsTo=containerd.service\nAfter=network-online.target docker.socket firewalld.service containerd.service\nWants=network-online.target\nRequires=docker.socket\n\n[Service]\nType=notify\n",
             vec![(BindsTo, c.clone(), 3), (Wants, "network-online.target".into(), 5), (Requires, "docker.socket".into(), 6)], 0),
            ("bookworm Wants only", "[Unit]\nWants=containerd.service\n", vec![(Wants, c.clone(), 2)], 0),
            ("several per line", "[Unit]\nRequires=a.service  b.socket\t c.target\n",
             vec![(Requires, "a.service".into(), 2), (Requires, "b.socket".into(), 2), (Requires, "c.target".into(), 2)], 0),
            ("continuation with comment inside", "[Unit]\nBindsTo=a.service \\\n# comment\n  containerd.service\n",
             vec![(BindsTo, "a.service".into(), 2), (BindsTo, c.clone(), 2)], 0),
            ("comments", "# BindsTo=containerd.service\n[Unit]\n; Requires=containerd.service\n  #PartOf=containerd.service\n", vec![], 0),
            ("keys are case-sensitive", "[Unit]\nbindsto=containerd.service\nBINDSTO=containerd.service\n", vec![], 0),
            ("sections are case-sensitive", "[unit]\nBindsTo=containerd.service\n", vec![], 0),
            ("other sections ignored", "[Service]\nBindsTo=containerd.service\n[Install]\nRequires=containerd.service\n", vec![], 0),
            ("spaces around =", "[Unit]\n  PartOf = containerd.service  \n", vec![(PartOf, c.clone(), 2)], 0),
            ("empty assignment keeps the list", "[Unit]\nBindsTo=containerd.service\nBindsTo=\n", vec![(BindsTo, c.clone(), 2)], 1),
            ("garbage lines", "[Unit]\nthis is not a setting\nBindsTo=containerd.service\n[Broken\n=x\n", vec![(BindsTo, c.clone(), 3)], 3),
            ("outside any section", "BindsTo=containerd.service\n", vec![], 1),
            ("invalid unit name", "[Unit]\nRequires=containerd \"containerd.service\" containerd.service\n", vec![(Requires, c.clone(), 2)], 2),
            ("specifiers", "[Unit]\nPartOf=%p.socket foo@%i.service\n", vec![(PartOf, "docker.socket".into(), 2)], 1),
            ("reverse settings", "[Unit]\nStopPropagatedFrom=containerd.service\nPropagatesStopTo=x.service\nRequisite=y.service\n",
             vec![(StopPropagatedFrom, c.clone(), 2), (PropagatesStopTo, "x.service".into(), 3), (Requisite, "y.service".into(), 4)], 0),
            ("CRLF and BOM", "\u{feff}[Unit]\r\nBindsTo=containerd.service\r\n", vec![(BindsTo, c.clone(), 2)], 0),
            ("continuation at EOF", "[Unit]\nBindsTo=containerd.service \\", vec![(BindsTo, c.clone(), 2)], 0),
        ];
        for (what, text, want, nproblems) in cases {
            assert_eq!(deps(text), want, "{what}");
            let p = parse_unit_text(text, "docker.service").problems;
            assert_eq!(p.len(), nproblems, "{what}: {p:?}");
        }
    }

    #[test]
    fn problems_name_the_line() {
        let p = parse_unit_text("[Unit]\n\nnonsense\nBindsTo=\n", "docker.service").problems;
        assert_eq!(p[0].0, 3);
        assert!(p[0].1.contains("missing '='"), "{p:?}");
        assert_eq!(p[1].0, 4);
        assert!(p[1].1.contains("cannot reset"), "{p:?}");
    }

    fn unit(name: &str, settings: &[(DepKind, &str)]) -> Unit {
        Unit {
            name: name.to_string(),
            deps: settings
                .iter()
                .enumerate()
                .map(|(i, (kind, target))| Dep {
                    kind: *kind,
                    target: target.to_string(),
                    evidence: Evidence {
                        file: PathBuf::from(format!("/lib/systemd/system/{name}")),
                        line: i + 1,
                        text: format!("{}={}", kind.key(), target),
                    },
                })
                .collect(),
            ..Unit::default()
        }
    }

    fn summary(v: &[Propagated]) -> Vec<(String, Vec<String>)> {
        v.iter()
            .map(|p| {
                (
                    p.unit.clone(),
                    p.chain
                        .iter()
                        .map(|d| format!("{}:{}", d.evidence.file.display(), d.evidence.text))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn propagation_table() {
        use DepKind::*;
        let focal = vec![
            unit("containerd.service", &[]),
            unit(
                "docker.service",
                &[(BindsTo, "containerd.service"), (Requires, "docker.socket")],
            ),
            unit("docker.socket", &[(PartOf, "docker.service")]),
        ];
        let r = stop_propagation(&focal, "containerd.service");
        assert_eq!(
            summary(&r),
            vec![
                (
                    "docker.service".to_string(),
                    vec![
                        "/lib/systemd/system/docker.service:BindsTo=containerd.service".to_string()
                    ]
                ),
                (
                    "docker.socket".to_string(),
                    vec![
                        "/lib/systemd/system/docker.service:BindsTo=containerd.service".to_string(),
                        "/lib/systemd/system/docker.socket:PartOf=docker.service".to_string(),
                    ]
                ),
            ]
        );
        // Stopping the socket stops the service (Requires=), which does not stop containerd.
        let r = stop_propagation(&focal, "docker.socket");
        assert_eq!(
            r.iter().map(|p| p.unit.as_str()).collect::<Vec<_>>(),
            ["docker.service"]
        );

        let bookworm = vec![
            unit("containerd.service", &[]),
            unit(
                "docker.service",
                &[(Wants, "containerd.service"), (Requires, "docker.socket")],
            ),
            unit("docker.socket", &[(PartOf, "docker.service")]),
        ];
        assert!(stop_propagation(&bookworm, "containerd.service").is_empty());

        let mut masked = focal.clone();
        masked[1].masked = true;
        assert!(stop_propagation(&masked, "containerd.service").is_empty());

        let reverse = vec![
            unit(
                "containerd.service",
                &[(PropagatesStopTo, "docker.service")],
            ),
            unit("kubelet.service", &[(StopPropagatedFrom, "docker.service")]),
            unit("docker.service", &[]),
        ];
        assert_eq!(
            summary(&stop_propagation(&reverse, "containerd.service")),
            vec![
                (
                    "docker.service".to_string(),
                    vec![
                        "/lib/systemd/system/containerd.service:PropagatesStopTo=docker.service"
                            .to_string()
                    ]
                ),
                (
                    "kubelet.service".to_string(),
                    vec![
                        "/lib/systemd/system/containerd.service:PropagatesStopTo=docker.service"
                            .to_string(),
                        "/lib/systemd/system/kubelet.service:StopPropagatedFrom=docker.service"
                            .to_string(),
                    ]
                ),
            ]
        );

        // A cycle ends.
        let cycle = vec![
            unit("a.service", &[(BindsTo, "b.service")]),
            unit("b.service", &[(BindsTo, "a.service")]),
        ];
        assert_eq!(summary(&stop_propagation(&cycle, "a.service")).len(), 1);
    }

    #[test]
    fn resolution_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        std::fs::write(root.join("usr/lib/x/f"), "x").unwrap();
        // An absolute link is taken relative to the root, `..` stops at the root.
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../usr/lib/x/f",
            root.join("usr/lib/x/up"),
        )
        .unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let f = resolve_in_root(root, Path::new("/lib/x/f"));
        assert_eq!(
            f,
            Resolved::Found {
                virt: "/usr/lib/x/f".into(),
                real: root.join("usr/lib/x/f")
            }
        );
        assert_eq!(resolve_in_root(root, Path::new("/lib/x/up")), f);
        assert_eq!(resolve_in_root(root, Path::new("/loop")), Resolved::Loop);
        assert_eq!(
            resolve_in_root(root, Path::new("/lib/x/nope")),
            Resolved::Missing
        );
        std::os::unix::fs::symlink("/dev/null", root.join("masked")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/masked")),
            Resolved::DevNull
        );
    }
}
