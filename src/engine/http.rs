//! One HTTP/1.1 request over a unix socket, `Connection: close`, every step bounded: the
//! connect, each write and read (by the request's deadline), the header size and the body size.
//! Bodies framed by `Content-Length`, `Transfer-Encoding: chunked`, or the close.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Headers longer than this are not docker's.
const MAX_HEAD: usize = 16 * 1024;

/// Why a request got no usable answer. Callers branch on the kind (a refused connection is
/// "docker is not there", a status is "docker said no").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The socket could not be connected (missing, refused, permission).
    Connect(String),
    /// No complete answer before the deadline.
    Timeout,
    /// The connection broke mid-answer.
    Io(String),
    /// The answer is longer than the cap (bytes).
    TooLarge(usize),
    /// The answer is not HTTP, or its framing or body is broken.
    Garbage(String),
    /// An answer, but not a success: the status and docker's message (at most 200 characters).
    Status(u16, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::Timeout => write!(f, "no answer in time"),
            Error::Io(e) => write!(f, "the connection broke: {e}"),
            Error::TooLarge(n) => write!(f, "the answer is larger than {} KiB", n / 1024),
            Error::Garbage(e) => write!(f, "the answer is not docker's ({e})"),
            Error::Status(c, m) if m.is_empty() => write!(f, "status {c}"),
            Error::Status(c, m) => write!(f, "status {c}: {m}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The `Api-Version` header (docker sends it on every answer).
    pub api_version: Option<String>,
    pub body: Vec<u8>,
}

/// Sends `METHOD path` (no body) and reads the answer, all before `deadline`; bodies past
/// `max_body` bytes are refused.
pub fn request(
    sock: &Path,
    method: &str,
    path: &str,
    deadline: Instant,
    max_body: usize,
) -> Result<Response, Error> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| *d >= Duration::from_millis(1))
            .ok_or(Error::Timeout)
    };
    let mut s = crate::health::connect_bounded(sock, left()?).map_err(|e| {
        if e.to_string().contains("did not complete") {
            Error::Timeout
        } else {
            Error::Connect(e.to_string())
        }
    })?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: docker-upgrade-guard\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.set_write_timeout(Some(left()?))
        .map_err(|e| Error::Io(e.to_string()))?;
    s.write_all(req.as_bytes()).map_err(io_err)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(r) = parse(&buf, false, max_body)? {
            return Ok(r);
        }
        s.set_read_timeout(Some(left()?))
            .map_err(|e| Error::Io(e.to_string()))?;
        match s.read(&mut chunk) {
            Ok(0) => return parse(&buf, true, max_body)?.ok_or(Error::Timeout),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

fn io_err(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(e.to_string()),
    }
}

/// The answer in `buf` if it is complete (`eof`: the server closed). `Ok(None)`: read more.
pub fn parse(buf: &[u8], eof: bool, max_body: usize) -> Result<Option<Response>, Error> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(Error::Garbage("headers longer than 16 KiB".into()));
        }
        if eof {
            return Err(Error::Garbage(if buf.is_empty() {
                "closed without an answer".into()
            } else {
                "no HTTP headers".into()
            }));
        }
        return Ok(None);
    };
    if end > MAX_HEAD {
        return Err(Error::Garbage("headers longer than 16 KiB".into()));
    }
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| Error::Garbage("headers are not text".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let status = match (
        proto.starts_with("HTTP/1."),
        code.len(),
        code.parse::<u16>(),
    ) {
        (true, 3, Ok(c)) if (100..600).contains(&c) => c,
        _ => return Err(Error::Garbage("not an HTTP status line".into())),
    };
    let (mut length, mut chunked, mut api_version) = (None, false, None);
    for l in lines {
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| Error::Garbage("a header line without a colon".into()))?;
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            let n: usize = v
                .parse()
                .map_err(|_| Error::Garbage("a bad Content-Length".into()))?;
            if length.is_some_and(|m| m != n) {
                return Err(Error::Garbage("two Content-Lengths".into()));
            }
            length = Some(n);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            if !v.eq_ignore_ascii_case("chunked") {
                return Err(Error::Garbage("an unknown Transfer-Encoding".into()));
            }
            chunked = true;
        } else if k.eq_ignore_ascii_case("api-version") {
            api_version = Some(v.to_string());
        }
    }
    let raw = &buf[end + 4..];
    let body = if chunked {
        // Complete when the last chunk (`0\r\n\r\n`) has arrived; docker sends no trailers.
        let done = raw == b"0\r\n\r\n" || raw.ends_with(b"\r\n0\r\n\r\n");
        if !done {
            if raw.len() > max_body + max_body / 8 + 64 {
                return Err(Error::TooLarge(max_body));
            }
            if eof {
                return Err(Error::Garbage("the chunked body is cut short".into()));
            }
            return Ok(None);
        }
        dechunk(raw, max_body)?
    } else if let Some(n) = length {
        if n > max_body {
            return Err(Error::TooLarge(max_body));
        }
        if raw.len() < n {
            if eof {
                return Err(Error::Garbage(format!(
                    "the body is cut short ({} of {n} bytes)",
                    raw.len()
                )));
            }
            return Ok(None);
        }
        raw[..n].to_vec()
    } else {
        if raw.len() > max_body {
            return Err(Error::TooLarge(max_body));
        }
        if !eof {
            return Ok(None);
        }
        raw.to_vec()
    };
    Ok(Some(Response {
        status,
        api_version,
        body,
    }))
}

/// Decodes a complete chunked body (`SIZE[;ext]\r\nDATA\r\n ... 0\r\n\r\n`), at most `max` bytes.
fn dechunk(mut raw: &[u8], max: usize) -> Result<Vec<u8>, Error> {
    let bad = || Error::Garbage("a broken chunked body".into());
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = std::str::from_utf8(&raw[..eol]).map_err(|_| bad())?;
        let size = line.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > 8 {
            return Err(bad());
        }
        let n = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        raw = &raw[eol + 2..];
        if n == 0 {
            return if raw == b"\r\n" { Ok(out) } else { Err(bad()) };
        }
        if out.len() + n > max {
            return Err(Error::TooLarge(max));
        }
        if raw.len() < n + 2 || &raw[n..n + 2] != b"\r\n" {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..n]);
        raw = &raw[n + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |b: &[u8], eof| parse(b, eof, 100).unwrap().map(|r| (r.status, r.body));
        // (input, eof, want)
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", false),
            Some((200, b"OK".to_vec()))
        );
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK", false),
            None
        );
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\n\r\nabc", false), None);
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\n\r\nabc", true),
            Some((200, b"abc".to_vec()))
        );
        assert_eq!(
            ok(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                false
            ),
            Some((200, b"abcde".to_vec()))
        );
        assert_eq!(
            ok(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                false
            ),
            None
        );
        assert_eq!(
            ok(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                false
            ),
            Some((204, Vec::new()))
        );
        let r = parse(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 0\r\n\r\n",
            false,
            9,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.api_version.as_deref(), Some("1.41"));
        let bad: &[(&[u8], bool, &str)] = &[
            (b"garbage", true, "no HTTP headers"),
            (b"", true, "closed without"),
            (b"SSH-2.0 x\r\n\r\n", false, "status line"),
            (b"HTTP/1.1 20 OK\r\n\r\n", false, "status line"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                false,
                "Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false,
                "two",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n",
                false,
                "larger",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                true,
                "cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                "Transfer-Encoding",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                true,
                "cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n0\r\n\r\n",
                false,
                "broken chunked",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
                false,
                "broken chunked",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n0\r\n\r\n",
                false,
                "broken chunked",
            ),
            (b"HTTP/1.1 200 OK\r\nBad header\r\n\r\n", false, "colon"),
        ];
        for (input, eof, want) in bad {
            let e = parse(input, *eof, 100).unwrap_err().to_string();
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
        }
        // A chunked body over the cap is refused, however it is split.
        let mut big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            big.extend_from_slice(b"8\r\n12345678\r\n");
        }
        big.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(parse(&big, false, 100), Err(Error::TooLarge(100)));
        assert_eq!(
            parse(&big[..big.len() - 5], false, 100),
            Err(Error::TooLarge(100))
        );
        let long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 17000]].concat();
        assert!(parse(&long, false, 100).is_err());
    }
}
