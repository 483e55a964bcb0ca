//! Does docker answer? `GET /_ping` over `/run/docker.sock` (HTTP/1.0, std `UnixStream`,
//! timeouts on connect, write and read). Does containerd's socket accept a connection?
//!
//! Connecting to `/run/docker.sock` socket-activates docker when docker.socket is listening:
//! callers that only want to know whether docker is running must ask systemd, not ping.

use anyhow::{bail, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PING_REQUEST: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
/// The answer is ~200 bytes; anything past this is not docker.
const MAX_ANSWER: usize = 4096;
/// One attempt inside a wait never takes longer than this, so a connection stuck in a
/// half-started daemon is retried.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);
/// Every retry gets at least this long (a connect plus a short answer).
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// Polls `GET /_ping` until docker answers `OK` or `budget` runs out; returns the time it took.
pub fn wait_docker(sock: &Path, budget: Duration) -> Result<Duration> {
    poll(budget, |t| ping_docker(sock, t)).map_err(|e| {
        anyhow::anyhow!(
            "docker did not answer GET /_ping on {} within {}: {e:#}",
            sock.display(),
            crate::service::fmt_secs(budget)
        )
    })
}

/// One `GET /_ping`, bounded by `timeout`.
pub fn ping_docker(sock: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    };
    let no_answer = || {
        anyhow::anyhow!(
            "no answer to GET /_ping on {} within {}",
            sock.display(),
            crate::service::fmt_secs(timeout)
        )
    };
    let mut stream = connect_bounded(sock, timeout)?;
    stream.set_write_timeout(Some(remaining().ok_or_else(no_answer)?))?;
    stream
        .write_all(PING_REQUEST)
        .map_err(|e| anyhow::anyhow!("cannot send GET /_ping to {}: {e}", sock.display()))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if answer_complete(&buf) {
            break;
        }
        if buf.len() > MAX_ANSWER {
            bail!(
                "the answer to GET /_ping on {} is longer than 4 KiB; not docker",
                sock.display()
            );
        }
        stream.set_read_timeout(Some(remaining().ok_or_else(no_answer)?))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_answer());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => bail!("cannot read the answer on {}: {e}", sock.display()),
        }
    }
    check_ping_answer(&buf)
        .map_err(|e| anyhow::anyhow!("{} answered GET /_ping {e}", sock.display()))
}

/// Polls until the unix socket at `sock` accepts a connection (containerd's gRPC socket).
pub fn wait_socket(sock: &Path, budget: Duration) -> Result<Duration> {
    poll(budget, |t| connect_bounded(sock, t).map(drop)).map_err(|e| {
        anyhow::anyhow!(
            "nothing accepted a connection on {} within {}: {e:#}",
            sock.display(),
            crate::service::fmt_secs(budget)
        )
    })
}

/// Retries `attempt` (given its own bound) with short, growing pauses until it succeeds or
/// `budget` is spent; the last error is returned.
fn poll(budget: Duration, mut attempt: impl FnMut(Duration) -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(50);
    loop {
        let left = budget.saturating_sub(start.elapsed());
        let err = match attempt(left.min(ATTEMPT_LIMIT).max(Duration::from_millis(1))) {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        // A retry squeezed into the last milliseconds can only fail with "did not complete
        // within 0.0 s", hiding the real reason: stop with this one, or keep a real slice.
        let left = budget.saturating_sub(start.elapsed());
        if left < MIN_ATTEMPT {
            return Err(err);
        }
        std::thread::sleep(nap.min(left.checked_sub(MIN_ATTEMPT).unwrap()));
        nap = (nap * 3 / 2).min(Duration::from_millis(250));
    }
}

/// `UnixStream::connect` has no timeout and blocks while the listener's backlog is full (a
/// daemon that hangs): connect on a helper thread and stop waiting at the bound. A connect
/// that is abandoned finishes or fails on its own; the thread then ends.
///
/// A unix socket connects at once or not at all, unless that backlog is full: so a
/// non-blocking connect is tried first, and only that case waits on the thread (a thread's
/// start costs milliseconds on a loaded machine, in every watched operation).
pub(crate) fn connect_bounded(sock: &Path, timeout: Duration) -> Result<UnixStream> {
    if let Some(r) = connect_now(sock) {
        return r.map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", sock.display()));
    }
    let (tx, rx) = mpsc::channel();
    let path = sock.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(&path));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => bail!("cannot connect to {}: {e}", sock.display()),
        Err(_) => bail!(
            "connecting to {} did not complete within {}",
            sock.display(),
            crate::service::fmt_secs(timeout)
        ),
    }
}

/// The non-blocking connect: the stream (blocking again), or the error as std would report
/// it; `None` when only waiting could tell (a full backlog: `EAGAIN`; or an interrupted call,
/// or a path a socket address cannot hold: std then says why).
#[allow(unsafe_code)] // socket(2) and connect(2): nix's safe wrappers need a crate more
fn connect_now(sock: &Path) -> Option<std::io::Result<UnixStream>> {
    use nix::libc;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let path = sock.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.is_empty() || path.contains(&0) || path.len() >= addr.sun_path.len() {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Some(Err(std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un that outlives the call, `len` is within its size.
    let rc = unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if rc == 0 {
        let s = UnixStream::from(fd);
        return Some(s.set_nonblocking(false).map(|()| s));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EINPROGRESS | libc::EINTR) => None,
        _ => Some(Err(e)),
    }
}

/// Whether `buf` holds the headers and all the body `Content-Length` announces (then there
/// is no need to wait for the server to close).
fn answer_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    content_length(&head).is_some_and(|n| buf.len() - (end + 4) >= n)
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim().eq_ignore_ascii_case("content-length") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Docker's answer must be `HTTP/1.x 200` with the body `OK`. The error completes the sentence
/// "... answered GET /_ping <error>".
pub fn check_ping_answer(buf: &[u8]) -> Result<()> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        bail!("with something that is not HTTP ({})", preview(buf));
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| anyhow::anyhow!("with headers that are not text"))?;
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit())
    {
        bail!("with something that is not HTTP ({})", preview(buf));
    }
    if code != "200" {
        bail!(
            "with status {}",
            status_line.trim_start_matches(proto).trim()
        );
    }
    let mut body = &buf[end + 4..];
    if let Some(n) = content_length(head) {
        if body.len() < n {
            bail!("with a body cut short ({} of {n} bytes)", body.len());
        }
        body = &body[..n];
    }
    if body != b"OK" {
        bail!("with status 200 but body {} instead of OK", preview(body));
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most 40 characters of an answer, printable, for a one-line message.
fn preview(buf: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(buf)
        .chars()
        .take(40)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{:?}", s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)] // listen(2), to shrink the backlog
    fn connect_bounded_connects_at_once_and_waits_only_on_a_full_backlog() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.sock");
        let e = format!(
            "{:#}",
            connect_bounded(&path, Duration::from_secs(5)).unwrap_err()
        );
        assert_eq!(
            e,
            format!(
                "cannot connect to {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // A backlog of one (std asks for the system's maximum): filled by a few connections,
        // whatever the open-files limit.
        // SAFETY: listen(2) on a socket we own; a second listen only changes the backlog.
        let rc = unsafe { nix::libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 1) };
        assert_eq!(rc, 0);
        let s = connect_bounded(&path, Duration::from_secs(5)).unwrap();
        assert!(s.read_timeout().is_ok());
        let mut buf = [0u8; 1];
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        // Blocking again: a read waits (for the timeout), it does not fail at once.
        let e = (&s).read(&mut buf).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        );
        // Fill the backlog of a listener that never accepts: the connect then waits, bounded.
        let mut held = vec![s];
        while let Some(Ok(s)) = connect_now(&path) {
            held.push(s);
            assert!(held.len() < 100, "the backlog never filled");
        }
        let t = Instant::now();
        let e = format!(
            "{:#}",
            connect_bounded(&path, Duration::from_millis(300)).unwrap_err()
        );
        assert!(e.contains("did not complete within"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        drop(listener);
    }

    #[test]
    fn answers_table() {
        let ok = b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOK";
        assert!(check_ping_answer(ok).is_ok());
        assert!(answer_complete(ok));
        assert!(check_ping_answer(b"HTTP/1.1 200 OK\r\n\r\nOK").is_ok());
        let bad: &[(&[u8], &str)] = &[
            (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\nno",
                "status 500 Internal Server Error",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nNOPE",
                "body \"NOPE\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nO",
                "cut short",
            ),
            (b"hello\n", "not HTTP"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
            (b"", "not HTTP"),
        ];
        for (answer, want) in bad {
            let err = check_ping_answer(answer).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert!(!answer_complete(
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nO"
        ));
        assert!(
            !answer_complete(b"HTTP/1.0 200 OK\r\n\r\nOK"),
            "no length: wait for close"
        );
    }
}
