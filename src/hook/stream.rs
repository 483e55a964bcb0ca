//! apt's `Pre-Install-Pkgs` stream, protocol version 3 (apt.conf(5), `DPkg::Tools::Options`):
//!
//! ```text
//! VERSION 3
//! key=value            (apt's whole configuration, %-encoded)
//! <blank line>
//! name oldver oldarch oldMA <|>|= newver newarch newMA /path.deb|**CONFIGURE**|**REMOVE**
//! ```
//!
//! A missing version is `-` with arch `-` and multi-arch `none`. The input is untrusted in the
//! sense that it must never crash us: a line that does not parse is reported and skipped.

use std::io::Read;

/// Upper bound on what we keep of the stream (apt's configuration dump is some tens of KiB;
/// the package list of a dist-upgrade a few hundred KiB). The rest is still read, then dropped.
pub(crate) const MAX_STREAM: usize = 16 * 1024 * 1024;

/// What apt is about to do with one package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Op {
    /// Unpack this `.deb` (install, upgrade, downgrade or reinstall, see the versions).
    Unpack(String),
    Configure,
    Remove,
    /// apt wrote `**ERROR**` (its own internal error), or a word we do not know.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PkgAction {
    pub name: String,
    /// `None` when not installed (`-`).
    pub old_version: Option<String>,
    pub old_arch: Option<String>,
    /// `<` (upgrade), `>` (downgrade / removal), `=` (same version).
    pub compare: char,
    pub new_version: Option<String>,
    pub new_arch: Option<String>,
    pub op: Op,
}

impl PkgAction {
    /// The package's installed scripts will run with `upgrade` (or `remove`) before dpkg is done:
    /// it is installed now and this operation replaces or removes it.
    pub(crate) fn replaces_installed(&self) -> bool {
        self.old_version.is_some() && matches!(self.op, Op::Unpack(_) | Op::Remove)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stream {
    pub version: u32,
    /// `CommandLine::AsString` from apt's configuration, decoded (who ran apt).
    pub command_line: Option<String>,
    pub actions: Vec<PkgAction>,
    /// One line each: what was wrong and where (line number in the stream).
    pub problems: Vec<String>,
}

impl Stream {
    /// Names of the packages in the stream that are in `watched`.
    pub(crate) fn touches<'a>(
        &'a self,
        watched: &'a [String],
    ) -> impl Iterator<Item = &'a PkgAction> {
        self.actions
            .iter()
            .filter(move |a| watched.contains(&a.name))
    }
}

/// Reads `input` to its end (apt must never see a broken pipe), keeping at most [`MAX_STREAM`].
pub(crate) fn read_all(mut input: impl Read) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(kept),
            Ok(n) => {
                let room = MAX_STREAM.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A quick look before anything else (no allocation, no parse of the configuration dump): can
/// this stream touch a watched package? `false` only for a version-3 stream whose every package
/// line names an unwatched package; anything else (another version, a name that does not read)
/// is left to [`parse`], which says what is wrong. An unwatched package's line is not checked
/// further: what apt does with it is none of our business.
pub(crate) fn may_touch(bytes: &[u8], watched: &[String]) -> bool {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if lines.next() != Some(b"VERSION 3") {
        return true;
    }
    let mut packages = lines.skip_while(|l| !l.is_empty());
    packages.any(|line| {
        if line.is_empty() {
            return false;
        }
        let word = line.split(|&b| b == b' ').next().unwrap_or_default();
        let name = word.split(|&b| b == b':').next().unwrap_or_default();
        match std::str::from_utf8(name) {
            Ok(n) if valid_name(n) => watched.iter().any(|w| w == n),
            _ => true,
        }
    })
}

/// Parses a whole stream. Never fails: problems are collected in [`Stream::problems`].
pub(crate) fn parse(bytes: &[u8]) -> Stream {
    let text = String::from_utf8_lossy(bytes);
    let mut s = Stream::default();
    let mut lines = text.split('\n').enumerate();
    match lines.next() {
        Some((_, first)) => {
            if let Some(v) = first.trim_end_matches('\r').strip_prefix("VERSION ") {
                match v.trim().parse::<u32>() {
                    Ok(v) => s.version = v,
                    Err(_) => s.problems.push(format!("line 1: bad VERSION {v:?}")),
                }
            } else {
                s.problems.push(format!(
                "line 1: expected \"VERSION 3\", got {:?} (is DPkg::Tools::Options::...::Version \"3\" set?)",
                truncate(first)
            ));
                return s;
            }
        }
        None => return s,
    }
    if s.version != 0 && s.version < 3 {
        s.problems.push(format!(
            "stream version {} is older than 3; package lines may be misread",
            s.version
        ));
    }
    // The configuration dump, up to the blank line.
    let mut in_config = true;
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if in_config {
            if line.is_empty() {
                in_config = false;
            } else if let Some(v) = line.strip_prefix("CommandLine::AsString=") {
                s.command_line = Some(percent_decode(v));
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        match parse_pkg_line(line) {
            Ok(a) => s.actions.push(a),
            Err(e) => s
                .problems
                .push(format!("line {}: {e}: {:?}", i + 1, truncate(line))),
        }
    }
    s
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(120) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn opt(word: &str) -> Option<String> {
    (word != "-").then(|| word.to_string())
}

/// Why a package line of apt's stream was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// A field is missing (which one).
    Missing(&'static str),
    BadName,
    BadComparison,
    BadVersion,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Missing(what) => write!(f, "missing {what}"),
            LineError::BadName => f.write_str("bad package name"),
            LineError::BadComparison => f.write_str("bad comparison (expected <, > or =)"),
            LineError::BadVersion => f.write_str("bad version"),
        }
    }
}

/// One package line of protocol version 3 (9 fields, separated by single spaces; a `.deb` path
/// may itself contain spaces, so the last field is the rest of the line).
pub(crate) fn parse_pkg_line(line: &str) -> Result<PkgAction, LineError> {
    let mut it = line.splitn(9, ' ');
    let mut next = |what: &'static str| {
        it.next()
            .filter(|w| !w.is_empty())
            .ok_or(LineError::Missing(what))
    };
    let name = next("package name")?;
    let old_version = next("old version")?;
    let old_arch = next("old architecture")?;
    let _old_ma = next("old multi-arch")?;
    let compare = next("comparison")?;
    let new_version = next("new version")?;
    let new_arch = next("new architecture")?;
    let _new_ma = next("new multi-arch")?;
    let what = next("file or operation")?;
    if !valid_name(name) {
        return Err(LineError::BadName);
    }
    let compare = match compare {
        "<" | ">" | "=" => compare.chars().next().unwrap_or('<'),
        _ => return Err(LineError::BadComparison),
    };
    for v in [old_version, new_version] {
        if v != "-" && !valid_version(v) {
            return Err(LineError::BadVersion);
        }
    }
    let op = match what {
        "**CONFIGURE**" => Op::Configure,
        "**REMOVE**" => Op::Remove,
        p if p.starts_with('/') => Op::Unpack(p.to_string()),
        other => Op::Other(other.to_string()),
    };
    // apt may qualify the name with the architecture (`libc6:i386`); watched names are bare.
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    Ok(PkgAction {
        name: name.to_string(),
        old_version: opt(old_version),
        old_arch: opt(old_arch),
        compare,
        new_version: opt(new_version),
        new_arch: opt(new_arch),
        op,
    })
}

fn valid_name(n: &str) -> bool {
    let base = n.split_once(':').map_or(n, |(b, _)| b);
    !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

fn valid_version(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.~:".contains(&b))
        && v.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// apt's `%XX` encoding of configuration values (invalid escapes are kept as written).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(x) = hex {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "VERSION 3\n\
APT::Architecture=amd64\n\
CommandLine::AsString=apt-get%20install%20containerd\n\
DPkg::Pre-Install-Pkgs::=/usr/sbin/docker-upgrade-guard%20hook%20apt-pkgs\n\
\n\
containerd 1.3.3-0ubuntu2 amd64 none < 1.3.3-0ubuntu2.1 amd64 none /var/cache/apt/archives/containerd_1.3.3-0ubuntu2.1_amd64.deb\n\
hello - - none < 2.10-3 amd64 same /tmp/my dir/hello_2.10-3_amd64.deb\n\
docker.io 20.10.24+dfsg1-1 amd64 none > - - none **REMOVE**\n\
containerd 1.3.3-0ubuntu2 amd64 none < 1.3.3-0ubuntu2.1 amd64 none **CONFIGURE**\n";

    #[test]
    fn may_touch_is_false_only_for_a_v3_stream_of_unwatched_packages() {
        let watched: Vec<String> = ["containerd", "docker.io"].map(String::from).to_vec();
        let unrelated = "VERSION 3\nA::B=c\n\nhello 1 amd64 none < 2 amd64 none /x.deb\n\
            libc6:i386 1 i386 same < 2 i386 same **CONFIGURE**\n";
        // (row, stream, may touch?)
        let rows: &[(&str, &str, bool)] = &[
            ("unrelated packages", unrelated, false),
            ("CRLF", &unrelated.replace('\n', "\r\n"), false),
            ("no package line", "VERSION 3\nA::B=c\n\n", false),
            ("empty", "", true),
            (
                "version 2",
                &unrelated.replace("VERSION 3", "VERSION 2"),
                true,
            ),
            ("the sample", SAMPLE, true),
            (
                "watched with an architecture",
                "VERSION 3\n\ncontainerd:amd64 1 amd64 none < 2 amd64 none /c.deb\n",
                true,
            ),
            (
                "a name that does not read",
                "VERSION 3\n\nHello 1 amd64 none < 2 amd64 none /h.deb\n",
                true,
            ),
            (
                "watched name only in the configuration dump",
                "VERSION 3\ncontainerd 1 amd64=x\n\nhello 1 - none < 2 - none /h.deb\n",
                false,
            ),
        ];
        for (name, stream, want) in rows {
            assert_eq!(may_touch(stream.as_bytes(), &watched), *want, "row: {name}");
        }
    }

    proptest! {
        /// The quick look never says "no" where the full parse finds a watched package.
        #[test]
        fn may_touch_agrees_with_parse(lines in proptest::collection::vec(
            ("(containerd|docker.io|hello|Hx|)(:amd64)?", "( 1 amd64 none < 2 amd64 none /x.deb| - - none > - - none \\*\\*REMOVE\\*\\*|x)"),
            0..6,
        )) {
            let watched: Vec<String> = ["containerd", "docker.io"].map(String::from).to_vec();
            let mut stream = "VERSION 3\nA::B=c\n\n".to_string();
            for (name, rest) in &lines {
                stream.push_str(&format!("{name}{rest}\n"));
            }
            let s = parse(stream.as_bytes());
            if s.touches(&watched).next().is_some() {
                prop_assert!(may_touch(stream.as_bytes(), &watched), "{stream}");
            }
        }
    }

    #[test]
    fn parses_apt_sample() {
        let s = parse(SAMPLE.as_bytes());
        assert_eq!(s.version, 3);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(
            s.command_line.as_deref(),
            Some("apt-get install containerd")
        );
        assert_eq!(s.actions.len(), 4);
        let c = &s.actions[0];
        assert_eq!(c.name, "containerd");
        assert_eq!(c.old_version.as_deref(), Some("1.3.3-0ubuntu2"));
        assert_eq!(c.new_version.as_deref(), Some("1.3.3-0ubuntu2.1"));
        assert_eq!(c.compare, '<');
        assert!(matches!(&c.op, Op::Unpack(p) if p.ends_with("2.1_amd64.deb")));
        assert!(c.replaces_installed());
        let h = &s.actions[1];
        assert_eq!(h.old_version, None);
        assert!(matches!(&h.op, Op::Unpack(p) if p == "/tmp/my dir/hello_2.10-3_amd64.deb"));
        assert!(!h.replaces_installed());
        assert_eq!(s.actions[2].op, Op::Remove);
        assert_eq!(s.actions[2].new_version, None);
        assert!(s.actions[2].replaces_installed());
        assert_eq!(s.actions[3].op, Op::Configure);
        let watched = vec!["docker.io".to_string(), "runc".to_string()];
        assert_eq!(s.touches(&watched).count(), 1);
    }

    #[test]
    fn bad_lines_are_reported_not_fatal() {
        let s = parse(b"VERSION 3\n\nfoo 1 amd64\nBAD! 1 a n < 2 a n /x.deb\nok 1 a n ? 2 a n /x.deb\nok 1 a n < 2 a n /x.deb\n");
        assert_eq!(s.actions.len(), 1);
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        assert!(s.problems[0].starts_with("line 3: missing"));
        let s = parse(b"containerd\n");
        assert!(s.problems[0].contains("VERSION 3"));
        assert!(parse(b"").actions.is_empty());
        assert!(parse(b"VERSION 2\n\n").problems[0].contains("older"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn read_all_drains_everything() {
        let big = vec![b'x'; MAX_STREAM + 100_000];
        let mut cursor = std::io::Cursor::new(&big);
        let kept = read_all(&mut cursor).unwrap();
        assert_eq!(kept.len(), MAX_STREAM);
        assert_eq!(cursor.position() as usize, big.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases()))]

        #[test]
        fn fuzz_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn fuzz_structured_lines(
            head in "(VERSION [0-9]{1,3}|VERSION 3|[ -~]{0,20})",
            cfg in proptest::collection::vec("[A-Za-z:]{1,10}=[ -~%]{0,20}", 0..5),
            lines in proptest::collection::vec(
                "[a-z0-9.+:-]{0,12} [-0-9a-z.~:+]{0,8} [-a-z0-9]{0,6} [a-z-]{0,7} [<>=?]{0,2} [-0-9a-z.~:+]{0,8} [-a-z0-9]{0,6} [a-z-]{0,7} (/[ -~]{0,20}|\\*\\*CONFIGURE\\*\\*|\\*\\*REMOVE\\*\\*|[ -~]{0,5})",
                0..8),
        ) {
            let text = format!("{head}\n{}\n\n{}\n", cfg.join("\n"), lines.join("\n"));
            let s = parse(text.as_bytes());
            for a in &s.actions {
                prop_assert!(!a.name.is_empty());
                prop_assert!(matches!(a.compare, '<' | '>' | '='));
            }
        }

        #[test]
        fn fuzz_roundtrip(
            name in "[a-z0-9][a-z0-9.+-]{0,15}",
            old in proptest::option::of("[0-9][0-9a-z.+~-]{0,10}"),
            new in proptest::option::of("[0-9][0-9a-z.+~-]{0,10}"),
            path in "/[ -~]{1,30}",
        ) {
            let o = old.clone().unwrap_or_else(|| "-".into());
            let n = new.clone().unwrap_or_else(|| "-".into());
            let line = format!("{name} {o} amd64 none < {n} amd64 none {path}");
            let a = parse_pkg_line(&line).unwrap();
            prop_assert_eq!(a.name, name);
            prop_assert_eq!(a.old_version, old);
            prop_assert_eq!(a.new_version, new);
            prop_assert_eq!(a.op, Op::Unpack(path));
        }
    }
}
