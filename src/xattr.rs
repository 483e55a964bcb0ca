//! Extended attributes of an open file (`user.*`, `trusted.*`, `security.*`, `system.*`), read
//! and written through the fd-based calls only: the fd is the file we checked (no symlink, no
//! path looked up twice). nix 0.29 has no xattr API, so this module calls libc directly; it is
//! the only place in the crate that does, and every `unsafe` block is one syscall on buffers
//! whose length is passed with them.
// unsafe: fd-based xattr syscalls; each block says why it is sound.
#![allow(unsafe_code)]

use anyhow::{anyhow, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;

/// At most this many attributes per file: a maintainer script has none or a few (a label, a
/// capability); more is not something we copy blindly into a root-owned record.
pub(crate) const MAX_XATTRS: usize = 64;
/// At most this many bytes per value (the Linux VFS limit, XATTR_SIZE_MAX).
pub(crate) const MAX_XATTR_VALUE: usize = 64 * 1024;
/// The Linux limit of a name list (XATTR_LIST_MAX).
const MAX_LIST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    pub name: String,
    pub value: Vec<u8>,
}

impl Xattr {
    /// `security.*` attributes are labels and capabilities: failing to set one must refuse
    /// the write, never leave a silently relabelled file.
    pub fn is_security(&self) -> bool {
        self.name.starts_with("security.")
    }
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// Checks a name and turns it into a C string (no NUL inside, not empty, a namespace).
pub(crate) fn c_name(name: &str) -> Result<CString> {
    if name.is_empty() || name.len() > 255 || !name.contains('.') {
        return Err(anyhow!("{name:?} is not an extended attribute name"));
    }
    CString::new(name).map_err(|_| anyhow!("{name:?} has a NUL byte"))
}

/// The names on `f`, at most [`MAX_XATTRS`]. A filesystem without xattrs has none.
fn names(f: &File) -> Result<Vec<String>> {
    let fd = f.as_raw_fd();
    let mut buf = vec![0u8; MAX_LIST];
    // SAFETY: `buf` is writable for `buf.len()` bytes; the kernel writes at most that.
    let n = unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = errno();
        if unsupported(&e) {
            return Ok(Vec::new());
        }
        return Err(anyhow!("cannot list its extended attributes: {e}"));
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    let mut out = Vec::new();
    for raw in buf.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8(raw.to_vec())
            .map_err(|_| anyhow!("it has an extended attribute whose name is not UTF-8"))?;
        out.push(name);
    }
    if out.len() > MAX_XATTRS {
        return Err(anyhow!(
            "it has {} extended attributes, more than the {MAX_XATTRS} this tool keeps",
            out.len()
        ));
    }
    out.sort();
    Ok(out)
}

/// Every extended attribute of `f`, sorted by name; refused beyond the bounds above.
pub(crate) fn read_all(f: &File) -> Result<Vec<Xattr>> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    for name in names(f)? {
        let c = c_name(&name)?;
        // One byte more than allowed: a value that fills it is too large.
        let mut buf = vec![0u8; MAX_XATTR_VALUE + 1];
        // SAFETY: `c` is NUL-terminated; `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::fgetxattr(fd, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            match e.raw_os_error() {
                // Removed between the list and the read: it is not there any more.
                Some(libc::ENODATA) => continue,
                Some(libc::ERANGE) => {
                    return Err(anyhow!(
                        "its extended attribute {name} is larger than the {MAX_XATTR_VALUE} bytes \
                         this tool keeps"
                    ))
                }
                _ => return Err(anyhow!("cannot read its extended attribute {name}: {e}")),
            }
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n > MAX_XATTR_VALUE {
            return Err(anyhow!(
                "its extended attribute {name} is larger than the {MAX_XATTR_VALUE} bytes this \
                 tool keeps"
            ));
        }
        buf.truncate(n);
        out.push(Xattr { name, value: buf });
    }
    Ok(out)
}

/// Gives `f` exactly `want`: removes what it has beyond them (a default ACL or label the new
/// file inherited), then sets each one.
pub(crate) fn set_exactly(f: &File, want: &[Xattr]) -> Result<()> {
    let fd = f.as_raw_fd();
    for name in names(f)? {
        if want.iter().any(|x| x.name == name) {
            continue;
        }
        let c = c_name(&name)?;
        // SAFETY: `c` is NUL-terminated.
        if unsafe { libc::fremovexattr(fd, c.as_ptr()) } != 0 {
            return Err(anyhow!(
                "cannot remove the extended attribute {name} the new file got: {}",
                errno()
            ));
        }
    }
    for x in want {
        let c = c_name(&x.name)?;
        // SAFETY: `c` is NUL-terminated; `x.value` is readable for its length.
        let r =
            unsafe { libc::fsetxattr(fd, c.as_ptr(), x.value.as_ptr().cast(), x.value.len(), 0) };
        if r != 0 {
            let e = errno();
            return Err(if x.is_security() {
                anyhow!(
                    "the kernel does not let us set its security attribute {} ({e}); refusing \
                     to write a file with another label or capability",
                    x.name
                )
            } else {
                anyhow!("cannot set its extended attribute {}: {e}", x.name)
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(c_name("user.a").is_ok());
        for bad in ["", "user", "user.\0x", &"u.".repeat(200)] {
            assert!(c_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trip_on_a_temp_file() {
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "x").unwrap();
        let f = File::open(&p).unwrap();
        let want = vec![
            Xattr {
                name: "user.a".into(),
                value: vec![0, 255],
            },
            Xattr {
                name: "user.b".into(),
                value: vec![],
            },
        ];
        set_exactly(&f, &want).expect("this filesystem must take user xattrs");
        assert_eq!(read_all(&f).unwrap(), want);
        set_exactly(&f, &want[1..]).unwrap();
        assert_eq!(read_all(&f).unwrap(), want[1..]);
    }
}
