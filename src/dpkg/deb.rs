//! `.deb` files: their control scripts (via `dpkg-deb`), and candidates in apt's archive cache.
//!
//! The control member is read by streaming `dpkg-deb --ctrl-tarfile` through the `tar` crate's
//! reader, rather than extracting with `dpkg-deb -e` and reading the files back: nothing
//! is written to disk, there is no extracted tree whose symlinks or modes we would have to
//! distrust, and the size cap applies before a byte is stored. dpkg-deb still does the
//! `ar`/compression work, so every format dpkg supports is read.

use super::control;
use super::info::ScriptKind;
use super::status::{is_arch, native_arch};
use super::valid_package_name;
use super::version::Version;
use crate::fsutil::MAX_TEXT_FILE;
use crate::root::Root;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tar::EntryType;

const DPKG_DEB: &str = "/usr/bin/dpkg-deb";
/// dpkg-deb on a normal package takes milliseconds; a child stuck longer is killed.
const DPKG_DEB_TIMEOUT: Duration = Duration::from_secs(30);
/// The control tarball holds scripts and md5sums; even huge packages stay far below this.
const MAX_CONTROL_TAR: u64 = 64 * 1024 * 1024;
const MAX_FIELDS_OUTPUT: u64 = 64 * 1024;

/// Package name and version of a `.deb` (`dpkg-deb --field`).
pub fn fields(deb: &Path) -> Result<(String, Version)> {
    let out = run_dpkg_deb("--field", deb, &["Package", "Version"], |stdout| {
        let mut buf = Vec::new();
        stdout
            .take(MAX_FIELDS_OUTPUT)
            .read_to_end(&mut buf)
            .context("cannot read dpkg-deb's output")?;
        Ok(buf)
    })?;
    let text = String::from_utf8(out)
        .map_err(|_| anyhow::anyhow!("{}: control fields are not UTF-8", deb.display()))?;
    let (paragraphs, problems) = control::parse_paragraphs(&text);
    if let Some(p) = problems.first() {
        bail!(
            "{}: control fields do not parse: {}",
            deb.display(),
            p.message
        );
    }
    let p = paragraphs.first();
    let name = p
        .and_then(|p| p.get("Package"))
        .with_context(|| format!("{} has no Package field", deb.display()))?;
    if !valid_package_name(name) {
        bail!("{}: '{}' is not a valid package name", deb.display(), name);
    }
    let version = p
        .and_then(|p| p.get("Version"))
        .with_context(|| format!("{} has no Version field", deb.display()))?;
    let version = Version::parse(version).with_context(|| format!("{}", deb.display()))?;
    Ok((name.to_owned(), version))
}

/// The control member `kind` of a `.deb`, if it has one (`dpkg-deb --ctrl-tarfile`, read
/// without extracting anything to disk outside a private temp dir).
pub fn control_script(deb: &Path, kind: ScriptKind) -> Result<Option<String>> {
    control_text(deb, kind.name())
}

/// The text control member `name` (`prerm`, `md5sums`, `conffiles`...) of a `.deb`, if any.
pub fn control_text(deb: &Path, name: &str) -> Result<Option<String>> {
    let member = run_dpkg_deb("--ctrl-tarfile", deb, &[], |stdout| {
        find_member(&mut stdout.take(MAX_CONTROL_TAR), name)
    })?;
    let Some(bytes) = member else {
        return Ok(None);
    };
    let what = || format!("{name} in {}", deb.display());
    if let Some(pos) = bytes.iter().position(|b| *b == 0) {
        bail!("{} is not a text file (NUL byte at offset {pos})", what());
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (invalid byte at offset {})",
            what(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The newest `.deb` of `package` in `var/cache/apt/archives/` that is newer than `than`.
///
/// apt names them `<name>_<version>_<arch>.deb` with the version %-encoded (`:` is `%3a`).
/// Only the native architecture and `all` count; symlinks and other non-files are ignored.
pub fn cached_candidate(root: &Root, package: &str, than: &Version) -> Result<Option<PathBuf>> {
    let dir = root.path("/var/cache/apt/archives");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let native = native_arch(root.admindir(), &mut Vec::new());
    let mut best: Option<(Version, PathBuf)> = None;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let file_name = entry.file_name();
        let Some((name, version, arch)) = file_name.to_str().and_then(split_deb_name) else {
            continue;
        };
        if name != package || (arch != native && arch != "all") {
            continue;
        }
        let Ok(version) = Version::parse(&version) else {
            continue;
        };
        if version <= *than {
            continue;
        }
        let path = entry.path();
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((v, p)) => version > *v || (version == *v && path > *p),
        };
        if better {
            best = Some((version, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// `name_version_arch.deb` → (name, decoded version, arch).
fn split_deb_name(file: &str) -> Option<(&str, String, &str)> {
    let stem = file.strip_suffix(".deb")?;
    let (rest, arch) = stem.rsplit_once('_')?;
    let (name, version) = rest.split_once('_')?;
    if !valid_package_name(name) || !is_arch(arch) {
        return None;
    }
    Some((name, percent_decode(version)?, arch))
}

/// apt's `QuoteString`: `%` and two hex digits. Anything malformed is not apt's.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Runs `dpkg-deb OPTION DEB EXTRA...` (absolute path, no shell, plain environment), hands its
/// stdout to `consume`, and bounds the whole run by [`DPKG_DEB_TIMEOUT`]: a watchdog kills
/// the child if it is still running then.
fn run_dpkg_deb<T>(
    option: &str,
    deb: &Path,
    extra: &[&str],
    consume: impl FnOnce(&mut std::process::ChildStdout) -> Result<T>,
) -> Result<T> {
    // A relative path starting with '-' would be read as an option.
    let deb_arg = if deb.is_relative() {
        Path::new(".").join(deb)
    } else {
        deb.to_path_buf()
    };
    let what = format!("dpkg-deb {option} {}", deb.display());
    let mut child = Command::new(DPKG_DEB)
        .arg(option)
        .arg(&deb_arg)
        .args(extra)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {DPKG_DEB}"))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);

    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut stderr).take(4096).read_to_end(&mut kept);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        kept
    });
    let (stop, stopped) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let timed_out = Arc::clone(&timed_out);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(DPKG_DEB_TIMEOUT) {
                timed_out.store(true, Ordering::SeqCst);
                // Not reaped yet (we join this thread before wait()), so the pid is still ours.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        })
    };

    let mut stdout = child.stdout.take().expect("stdout is piped");
    let result = consume(&mut stdout);
    if result.is_err() {
        let _ = child.kill(); // it may still be writing; we will not read the rest
    } else {
        // Let it finish writing so that its exit status means something.
        let rest = std::io::copy(
            &mut (&mut stdout).take(MAX_CONTROL_TAR + 1),
            &mut std::io::sink(),
        );
        if !rest.is_ok_and(|n| n <= MAX_CONTROL_TAR) {
            let _ = child.kill();
        }
    }
    drop(stdout);
    let _ = stop.send(());
    let _ = watchdog.join();
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for {what}"))?;
    let err_text = stderr_reader.join().unwrap_or_default();
    if timed_out.load(Ordering::SeqCst) {
        bail!(
            "{what} did not finish within {} s; killed it",
            DPKG_DEB_TIMEOUT.as_secs()
        );
    }
    let value = result.with_context(|| format!("reading the output of {what}"))?;
    if !status.success() {
        let msg = String::from_utf8_lossy(&err_text);
        let msg = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!("{what} failed ({status}): {}", msg.trim());
    }
    Ok(value)
}

/// Reads a tar stream (v7, ustar, GNU and pax headers: the `tar` crate) to its end and returns
/// the data of the regular-file entry `name` (or `./name`), at most [`MAX_TEXT_FILE`] bytes.
/// The same name as a symlink, directory or anything but a regular file is refused, as is a
/// second entry of that name (tar would silently keep the last one). The whole stream is
/// bounded by the caller (`take`), so are the names and pax headers the crate reads.
fn find_member(r: &mut impl Read, name: &str) -> Result<Option<Vec<u8>>> {
    let corrupt = |e: std::io::Error| {
        anyhow::anyhow!("cannot read the control archive (corrupt, or it ends early): {e}")
    };
    let mut found: Option<Vec<u8>> = None;
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let entry_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let bare = entry_name.strip_prefix("./").unwrap_or(&entry_name);
        if bare.strip_suffix('/').unwrap_or(bare) != name {
            continue; // the crate skips its data on the next step
        }
        let kind = entry.header().entry_type();
        if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
            bail!(
                "the control member {name} is {}, not a regular file; refusing it",
                kind_name(kind)
            );
        }
        if found.is_some() {
            bail!("the control archive has two {name} entries; refusing to pick one");
        }
        let size = entry.size();
        if size > MAX_TEXT_FILE {
            bail!("the control member {name} is {size} bytes, more than the {MAX_TEXT_FILE} this tool reads");
        }
        let mut data = Vec::new();
        entry
            .take(MAX_TEXT_FILE)
            .read_to_end(&mut data)
            .map_err(corrupt)?;
        if data.len() as u64 != size {
            bail!("the control archive ends inside {name}");
        }
        found = Some(data);
    }
    Ok(found)
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Link => "a hard link",
        EntryType::Symlink => "a symlink",
        EntryType::Char | EntryType::Block => "a device",
        EntryType::Directory => "a directory",
        EntryType::Fifo => "a FIFO",
        _ => "an unknown entry type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const BLOCK: usize = 512;
    use std::os::unix::fs::PermissionsExt;

    /// A tar stream made by the real GNU tar in `format`, of the files in `dir`.
    fn tar(dir: &Path, format: &str) -> Vec<u8> {
        let out = Command::new("tar")
            // v7 cannot store names over 100 bytes at all.
            .args(if format == "v7" {
                &["--exclude=./ppp*"][..]
            } else {
                &[]
            })
            .args(["--format", format, "-C"])
            .arg(dir)
            .args(["-cf", "-", "."])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn reads_members_from_every_tar_format() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("prerm"), "#!/bin/sh\necho prerm\n").unwrap();
        std::fs::write(d.path().join("md5sums"), "x".repeat(3000)).unwrap();
        // Over 100 bytes: GNU long name, pax path, or ustar prefix + name.
        let long = format!("{}/{}", "p".repeat(90), "q".repeat(90));
        std::fs::create_dir(d.path().join("p".repeat(90))).unwrap();
        std::fs::write(d.path().join(&long), "long").unwrap();
        std::os::unix::fs::symlink("prerm", d.path().join("postinst")).unwrap();
        std::fs::create_dir(d.path().join("preinst")).unwrap();
        for format in ["gnu", "posix", "ustar", "v7", "oldgnu"] {
            let t = tar(d.path(), format);
            let got = find_member(&mut t.as_slice(), "prerm").unwrap();
            assert_eq!(
                got.as_deref(),
                Some(&b"#!/bin/sh\necho prerm\n"[..]),
                "{format}"
            );
            assert_eq!(
                find_member(&mut t.as_slice(), "postrm").unwrap(),
                None,
                "{format}"
            );
            let err = find_member(&mut t.as_slice(), "postinst")
                .unwrap_err()
                .to_string();
            assert!(err.contains("symlink"), "{format}: {err}");
            let err = find_member(&mut t.as_slice(), "preinst")
                .unwrap_err()
                .to_string();
            assert!(err.contains("directory"), "{format}: {err}");
            if format != "v7" {
                let got = find_member(&mut t.as_slice(), &long).unwrap();
                assert_eq!(got.as_deref(), Some(&b"long"[..]), "{format}");
            }
        }
    }

    #[test]
    fn refuses_oversized_truncated_and_corrupt_archives() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("prerm");
        std::fs::write(&big, vec![b'#'; MAX_TEXT_FILE as usize + 1]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = tar(d.path(), "gnu");
        let err = find_member(&mut t.as_slice(), "prerm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than"), "{err}");

        std::fs::write(&big, "#!/bin/sh\n").unwrap();
        let t = tar(d.path(), "gnu");
        let cut = &t[..BLOCK + 100];
        let err = find_member(&mut &cut[..], "prerm").unwrap_err().to_string();
        assert!(err.contains("ends"), "{err}");
        let mut bad = t.clone();
        bad[10] ^= 1;
        let err = find_member(&mut bad.as_slice(), "prerm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
        let junk = vec![b'z'; 2048];
        assert!(find_member(&mut junk.as_slice(), "prerm").is_err());
        assert_eq!(find_member(&mut &b""[..], "prerm").unwrap(), None);
    }

    /// A header claiming an entry of nearly 2^64 bytes (GNU base-256 size) must be an error:
    /// rounding it up to whole blocks overflowed (a panic in debug builds, and in release a
    /// wrapped skip of 0 bytes that read the entry's data as the next header).
    #[test]
    fn refuses_an_entry_size_that_overflows_the_block_rounding() {
        let mut h = [0u8; BLOCK];
        h[..7].copy_from_slice(b"md5sums");
        h[100..107].copy_from_slice(b"0000644");
        h[124] = 0x80;
        for b in &mut h[128..136] {
            *b = 0xff;
        }
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut t = h.to_vec();
        t.extend_from_slice(&[0u8; 4 * BLOCK]);
        let err = find_member(&mut t.as_slice(), "prerm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("size"), "{err}");
    }

    #[test]
    fn refuses_a_duplicate_member() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("prerm"), "one").unwrap();
        let one = tar(d.path(), "gnu");
        // Concatenate two archives' entries (drop the first one's end blocks).
        let first_entry = &one[..2 * BLOCK];
        let mut two = first_entry.to_vec();
        two.extend_from_slice(&one);
        let err = find_member(&mut two.as_slice(), "prerm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("two prerm"), "{err}");
    }

    #[test]
    fn splits_apt_archive_names() {
        type Split<'a> = Option<(&'a str, &'a str, &'a str)>;
        let cases: &[(&str, Split)] = &[
            (
                "containerd_1.6.20~ds1-1+deb12u1_amd64.deb",
                Some(("containerd", "1.6.20~ds1-1+deb12u1", "amd64")),
            ),
            (
                "docker.io_1%3a20.10.24+dfsg1-1_amd64.deb",
                Some(("docker.io", "1:20.10.24+dfsg1-1", "amd64")),
            ),
            ("docker.io_2%3A1_all.deb", Some(("docker.io", "2:1", "all"))),
            ("docker.io_1%3_amd64.deb", None),
            ("docker.io_1%zz_amd64.deb", None),
            ("docker.io_1_amd64.udeb", None),
            ("docker.io_amd64.deb", None),
            ("partial", None),
            ("Docker_1_amd64.deb", None),
        ];
        for (file, want) in cases {
            let got = split_deb_name(file);
            let got = got.as_ref().map(|(n, v, a)| (*n, v.as_str(), *a));
            assert_eq!(got, *want, "{file}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Corrupted real archives (a few bytes flipped, possibly cut short) and random
        /// bytes: an error or an answer, never a panic.
        #[test]
        fn tar_reader_never_panics(
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..5000,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1100),
        ) {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("prerm"), "#!/bin/sh\n").unwrap();
            std::fs::write(d.path().join("md5sums"), "x".repeat(700)).unwrap();
            let mut t = tar(d.path(), if cut % 2 == 0 { "gnu" } else { "posix" });
            for (at, b) in flips {
                if let Some(x) = t.get_mut(at) {
                    *x = b;
                }
            }
            // Re-seal every header's checksum, so that flips reach the field parsers.
            for h in t.chunks_mut(BLOCK).filter(|h| h.len() == BLOCK && h[257..262] == *b"ustar") {
                h[148..156].copy_from_slice(b"        ");
                let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
                h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            }
            t.truncate(cut.max(1));
            let _ = find_member(&mut t.as_slice(), "prerm");
            let _ = find_member(&mut junk.as_slice(), "prerm");
        }
    }
}
