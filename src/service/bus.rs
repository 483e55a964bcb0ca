//! `show` over systemd's private socket (`/run/systemd/private`): what `systemctl` itself does as
//! root, without starting it. One `systemctl show` costs ~11 ms (a dynamically linked binary);
//! a peer-to-peer D-Bus connection (no bus daemon, no `Hello`) answers in well under one.
//!
//! A minimal client: SASL `EXTERNAL`, then `org.freedesktop.DBus.Properties.Get` calls,
//! pipelined, replies matched by serial. Every wait ends at one deadline, every read is capped,
//! every reply parsed strictly; any surprise is an error and the caller asks `systemctl`.
//! Errors are plain words (nobody branches on them, and the binary has a size budget).

use super::{is_state, UnitState};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub(super) const SOCKET: &str = "/run/systemd/private";

/// Largest body accepted in one message (our replies are a few dozen bytes; systemd's signals,
/// which arrive on a private connection unasked, a few KiB).
const MAX_BODY: usize = 64 * 1024;
/// Largest header-field array accepted.
const MAX_FIELDS: usize = 4096;
/// Most bytes read from one connection before giving up (signals included).
const MAX_READ: usize = 1024 * 1024;

const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";

/// The properties asked for each unit, in this order (`query` knows each by its index). The
/// `Service` one only for `.service` units.
const PROPS: [(&str, &str); 8] = [
    (UNIT, "Id"),
    (UNIT, "LoadState"),
    (UNIT, "ActiveState"),
    (UNIT, "SubState"),
    (UNIT, "UnitFileState"),
    (UNIT, "InactiveEnterTimestampMonotonic"),
    (UNIT, "InactiveExitTimestampMonotonic"),
    (SERVICE, "MainPID"),
];

type R<T> = Result<T, &'static str>;

/// Whether systemd's private socket is there: a socket owned by root, not reached through a
/// symlink, and we are root (systemd lets nobody else in).
pub(super) fn available() -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    nix::unistd::geteuid().is_root()
        && std::fs::symlink_metadata(SOCKET)
            .is_ok_and(|m| m.file_type().is_socket() && m.uid() == 0)
}

/// The states of `units` (checked unit names), in their order, as `systemctl show` gives them.
pub(super) fn show(units: &[&str], timeout: Duration) -> anyhow::Result<Vec<UnitState>> {
    let deadline = Instant::now() + timeout;
    connect(deadline)
        .and_then(|mut conn| query(&mut conn, units, deadline))
        .map_err(|e| anyhow::anyhow!("asking systemd over {SOCKET}: {e}"))
}

/// Sends all the calls at once, then reads the replies in whatever order they come, each
/// written into its unit's state as it arrives.
fn query(conn: &mut Conn, units: &[&str], deadline: Instant) -> R<Vec<UnitState>> {
    let mut calls: Vec<(usize, usize)> = Vec::new(); // (unit, property) per serial - 1
    let mut out = b"BEGIN\r\n".to_vec();
    for (u, unit) in units.iter().enumerate() {
        let path = unit_path(unit);
        let n = if unit.ends_with(".service") { 8 } else { 7 };
        for (p, (iface, prop)) in PROPS.iter().enumerate().take(n) {
            calls.push((u, p));
            get_call(&mut out, calls.len() as u32, &path, iface, prop);
        }
    }
    conn.send(&out, deadline)?;
    let mut states: Vec<UnitState> = units
        .iter()
        .map(|u| UnitState {
            unit: (*u).to_string(),
            ..UnitState::default()
        })
        .collect();
    let mut seen = vec![false; calls.len()];
    for _ in 0..calls.len() {
        let (serial, value) = conn.reply(deadline)?;
        let i = (serial as usize).wrapping_sub(1);
        let (Some(&(u, p)), Some(seen)) = (calls.get(i), seen.get_mut(i)) else {
            return Err("a reply to a call never made");
        };
        if std::mem::replace(seen, true) {
            return Err("two replies to one call");
        }
        let s = &mut states[u];
        match (p, value) {
            // Id is only checked to be there (parse_show matches blocks by it; here the path did).
            (0, Value::S(id)) if !id.is_empty() => {}
            (1..=4, Value::S(v)) if is_state(&v, p == 4) => {
                *[
                    &mut s.load_state,
                    &mut s.active_state,
                    &mut s.sub_state,
                    &mut s.unit_file_state,
                ][p - 1] = v;
            }
            (5, Value::T(t)) => s.inactive_enter_us = Some(t),
            (6, Value::T(t)) => s.inactive_exit_us = Some(t),
            (7, Value::U(pid)) => s.main_pid = pid,
            _ => return Err("a property of an unexpected type or value"),
        }
    }
    // Every call answered once: every property of every unit is set.
    Ok(states)
}

/// systemd's `bus_label_escape`: every byte but `[A-Za-z0-9]` becomes `_` and two lowercase hex
/// digits; the empty string is `_`.
fn escape_label(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push('_');
            hex(&mut out, b);
        }
    }
    out
}

fn hex(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(b >> 4)]));
    out.push(char::from(DIGITS[usize::from(b & 15)]));
}

/// systemd loads the unit when it is looked up by this path: a unit it does not know answers
/// `LoadState` `not-found`, as with `systemctl show`.
fn unit_path(unit: &str) -> String {
    "/org/freedesktop/systemd1/unit/".to_string() + &escape_label(unit)
}

/// A connection past authentication, with what has been read but not yet parsed.
struct Conn {
    sock: UnixStream,
    buf: Vec<u8>,
    read: usize,
}

fn left(deadline: Instant) -> R<Duration> {
    Some(deadline.saturating_duration_since(Instant::now()))
        .filter(|d| !d.is_zero())
        .ok_or("no answer in time")
}

/// Connects (bounded: a stuck systemd's full backlog would block `connect`) and authenticates
/// as our uid.
fn connect(deadline: Instant) -> R<Conn> {
    let sock = crate::health::connect_bounded(SOCKET.as_ref(), left(deadline)?)
        .map_err(|_| "cannot connect")?;
    let mut conn = Conn {
        sock,
        buf: Vec::new(),
        read: 0,
    };
    // As uid 0 (`available` made sure): the uid in decimal ASCII, hex-encoded.
    conn.send(b"\0AUTH EXTERNAL 30\r\n", deadline)?;
    // The server says nothing more until we speak again: the line is all there is.
    while !conn.buf.ends_with(b"\r\n") {
        if conn.buf.len() > 64 {
            return Err("a long authentication answer");
        }
        conn.fill(deadline)?;
    }
    let ok = conn
        .buf
        .strip_prefix(b"OK ")
        .and_then(|l| l.strip_suffix(b"\r\n"))
        .is_some_and(|g| g.len() == 32 && g.iter().all(u8::is_ascii_hexdigit));
    if !ok {
        return Err("authentication refused");
    }
    conn.buf.clear();
    Ok(conn)
}

impl Conn {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> R<()> {
        self.sock
            .set_write_timeout(Some(left(deadline)?))
            .and_then(|()| self.sock.write_all(bytes))
            .map_err(|_| "cannot write")
    }

    /// Reads what is there (at least one byte), within the deadline and the read cap.
    fn fill(&mut self, deadline: Instant) -> R<()> {
        let mut chunk = [0u8; 8192];
        let n = self
            .sock
            .set_read_timeout(Some(left(deadline)?))
            .and_then(|()| self.sock.read(&mut chunk))
            .map_err(|_| "cannot read (or no answer in time)")?;
        self.read += n;
        if n == 0 || self.read > MAX_READ {
            return Err("connection closed, or too much read");
        }
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    /// The next reply to one of our calls (signals systemd sends unasked are skipped).
    fn reply(&mut self, deadline: Instant) -> R<(u32, Value)> {
        loop {
            match message_len(&self.buf)? {
                Some(len) if self.buf.len() >= len => {
                    let msg: Vec<u8> = self.buf.drain(..len).collect();
                    if let Some(r) = parse_reply(&msg)? {
                        return Ok(r);
                    }
                }
                _ => self.fill(deadline)?,
            }
        }
    }
}

/// A property's value.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    S(String),
    T(u64),
    U(u32),
}

fn pad(m: &mut Vec<u8>, to: usize) {
    m.resize(m.len().next_multiple_of(to), 0);
}

fn string(m: &mut Vec<u8>, s: &str) {
    pad(m, 4);
    m.extend((s.len() as u32).to_le_bytes());
    m.extend(s.as_bytes());
    m.push(0);
}

/// Appends `org.freedesktop.DBus.Properties.Get(iface, prop)` on `path` (little-endian) to `out`.
fn get_call(out: &mut Vec<u8>, serial: u32, path: &str, iface: &str, prop: &str) {
    // Alignment counts from the message's first byte.
    let mut m = Vec::with_capacity(256);
    // endianness, METHOD_CALL, no flags, version 1, body length, serial, fields length (below)
    m.extend(b"l\x01\x00\x01\0\0\0\0");
    m.extend(serial.to_le_bytes());
    m.extend([0; 4]);
    for (code, value) in [
        (1, path),
        (2, "org.freedesktop.DBus.Properties"),
        (3, "Get"),
        (6, "org.freedesktop.systemd1"),
    ] {
        pad(&mut m, 8);
        m.extend([code, 1, if code == 1 { b'o' } else { b's' }, 0]);
        string(&mut m, value);
    }
    pad(&mut m, 8);
    m.extend(b"\x08\x01g\x00\x02ss\x00"); // SIGNATURE "ss"
    let fields = (m.len() - 16) as u32;
    m[12..16].copy_from_slice(&fields.to_le_bytes());
    pad(&mut m, 8);
    let body = m.len();
    string(&mut m, iface);
    string(&mut m, prop);
    let body = (m.len() - body) as u32;
    m[4..8].copy_from_slice(&body.to_le_bytes());
    out.extend(m);
}

/// A cursor over one message; alignment counts from its first byte. Little-endian only: what
/// systemd sends on every architecture this is built for (anything else is refused).
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
            .ok_or("a message cut short")?;
        self.pos += n;
        Ok(s)
    }
    fn align(&mut self, to: usize) -> R<()> {
        let n = self.pos.next_multiple_of(to) - self.pos;
        if self.take(n)?.iter().any(|&b| b != 0) {
            return Err("padding that is not zero");
        }
        Ok(())
    }
    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    /// A `u32` (`n` = 4) or `u64` (`n` = 8), aligned.
    fn uint(&mut self, n: usize) -> R<u64> {
        self.align(n)?;
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0, |v, &b| v << 8 | u64::from(b)))
    }
    fn u32(&mut self) -> R<usize> {
        self.uint(4).map(|v| v as usize)
    }
    /// `n` bytes of text and their terminating NUL.
    fn text(&mut self, n: usize) -> R<&'a [u8]> {
        let s = self.take(n)?;
        if self.byte()? != 0 {
            return Err("a string not terminated");
        }
        Ok(s)
    }
    fn string(&mut self) -> R<&'a [u8]> {
        let n = self.u32()?;
        self.text(n)
    }
    fn signature(&mut self) -> R<&'a [u8]> {
        let n = usize::from(self.byte()?);
        self.text(n)
    }
}

/// The length of the message at the start of `buf` once its fixed header is there.
fn message_len(buf: &[u8]) -> R<Option<usize>> {
    let Some(head) = buf.get(..16) else {
        return Ok(None);
    };
    if head[0] != b'l' || head[3] != 1 {
        return Err("not a little-endian D-Bus message of protocol version 1");
    }
    let mut c = Cur { b: head, pos: 4 };
    let body = c.u32()?;
    c.u32()?;
    let fields = c.u32()?;
    if body > MAX_BODY || fields > MAX_FIELDS {
        return Err("a message too large");
    }
    Ok(Some((16 + fields).next_multiple_of(8) + body))
}

/// A whole message: `Some((reply serial, value))` for a method return carrying one variant,
/// `None` for a signal (skipped), an error for an error reply and for anything else.
fn parse_reply(msg: &[u8]) -> R<Option<(u32, Value)>> {
    if message_len(msg)? != Some(msg.len()) {
        return Err("a message of the wrong length");
    }
    let mut c = Cur { b: msg, pos: 12 };
    let fields_end = 16 + c.u32()?;
    let (mut reply_serial, mut sig) = (None, &b""[..]);
    while c.pos < fields_end {
        c.align(8)?;
        let code = c.byte()?;
        match (code, c.signature()?) {
            (5, b"u") => reply_serial = Some(c.u32()? as u32),
            (8, b"g") => sig = c.signature()?,
            (_, b"s" | b"o") => drop(c.string()?),
            (_, b"g") => drop(c.signature()?),
            (_, b"u") => drop(c.u32()?),
            _ => return Err("a header field of an unknown type"),
        }
    }
    if c.pos != fields_end {
        return Err("header fields overrun");
    }
    c.align(8)?;
    match msg[1] {
        2 => {}
        3 => return Err("systemd answered with an error"),
        4 => return Ok(None),
        _ => return Err("a message of an unexpected type"),
    }
    let serial = reply_serial.ok_or("a reply without a serial")?;
    if sig != b"v" {
        return Err("a reply that is not one variant");
    }
    let value = match c.signature()? {
        b"s" => Value::S(
            String::from_utf8(c.string()?.to_vec()).map_err(|_| "a string that is not UTF-8")?,
        ),
        b"t" => Value::T(c.uint(8)?),
        b"u" => Value::U(c.u32()? as u32),
        _ => return Err("a value of an unexpected type"),
    };
    if c.pos != msg.len() {
        return Err("bytes after the value");
    }
    Ok(Some((serial, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_like_systemd() {
        for (name, want) in [
            ("docker.service", "docker_2eservice"),
            ("a-b@c.service", "a_2db_40c_2eservice"),
            ("x\\y_z:1", "x_5cy_5fz_3a1"),
            ("", "_"),
        ] {
            assert_eq!(escape_label(name), want, "{name}");
        }
        assert_eq!(
            unit_path("docker.socket"),
            "/org/freedesktop/systemd1/unit/docker_2esocket"
        );
    }

    #[test]
    fn get_call_is_marshalled_byte_for_byte() {
        let mut m = b"x".to_vec();
        get_call(&mut m, 7, "/a", "b.C", "Id");
        let m = m.split_off(1);
        let mut want: Vec<u8> = vec![b'l', 1, 0, 1, 15, 0, 0, 0, 7, 0, 0, 0];
        let mut fields: Vec<u8> = vec![];
        fields.extend([1, 1, b'o', 0, 2, 0, 0, 0, b'/', b'a', 0, 0, 0, 0, 0, 0]);
        fields.extend([2, 1, b's', 0, 31, 0, 0, 0]);
        fields.extend(b"org.freedesktop.DBus.Properties\0");
        fields.extend([3, 1, b's', 0, 3, 0, 0, 0, b'G', b'e', b't', 0, 0, 0, 0, 0]);
        fields.extend([6, 1, b's', 0, 24, 0, 0, 0]);
        fields.extend(b"org.freedesktop.systemd1\0\0\0\0\0\0\0\0");
        fields.extend([8, 1, b'g', 0, 2, b's', b's', 0]);
        want.extend((fields.len() as u32).to_le_bytes());
        want.extend(fields);
        want.extend([3, 0, 0, 0, b'b', b'.', b'C', 0, 2, 0, 0, 0, b'I', b'd', 0]);
        assert_eq!(m, want);
        assert_eq!(message_len(&m).unwrap(), Some(m.len()));
        // A call is neither a reply nor a signal.
        assert!(parse_reply(&m).is_err());
    }

    /// A message as systemd would send it: `kind`, header fields, body signature, body.
    fn message(
        big: bool,
        kind: u8,
        reply_to: Option<u32>,
        error: Option<&str>,
        body: &[u8],
    ) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let pad = |m: &mut Vec<u8>, to: usize| m.resize(m.len().next_multiple_of(to), 0);
        let mut m = vec![if big { b'B' } else { b'l' }, kind, 1, 1];
        m.extend(u32b(body.len() as u32));
        m.extend(u32b(99));
        m.extend([0; 4]);
        if let Some(s) = reply_to {
            m.extend([5, 1, b'u', 0]);
            m.extend(u32b(s));
        }
        pad(&mut m, 8);
        m.extend([7, 1, b's', 0]);
        m.extend(u32b(4));
        m.extend(b":1.0\0"); // a SENDER, skipped
        if let Some(e) = error {
            pad(&mut m, 8);
            m.extend([4, 1, b's', 0]);
            m.extend(u32b(e.len() as u32));
            m.extend(e.as_bytes());
            m.push(0);
        }
        pad(&mut m, 8);
        m.extend([
            8,
            1,
            b'g',
            0,
            1,
            if error.is_some() { b's' } else { b'v' },
            0,
        ]);
        let fields = u32b((m.len() - 16) as u32);
        m[12..16].copy_from_slice(&fields);
        pad(&mut m, 8);
        m.extend(body);
        m
    }

    fn variant_s(big: bool, s: &str) -> Vec<u8> {
        let mut b = vec![1, b's', 0, 0];
        b.extend(if big {
            (s.len() as u32).to_be_bytes()
        } else {
            (s.len() as u32).to_le_bytes()
        });
        b.extend(s.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn replies_are_parsed_strictly() {
        let m = message(false, 2, Some(3), None, &variant_s(false, "active"));
        assert_eq!(
            parse_reply(&m).unwrap(),
            Some((3, Value::S("active".into())))
        );
        // Big-endian is refused (systemd on amd64 never sends it; systemctl answers instead).
        let m = message(true, 2, Some(3), None, &variant_s(true, "active"));
        assert!(parse_reply(&m).is_err());
        let t = message(
            false,
            2,
            Some(4),
            None,
            &[1, b't', 0, 0, 0, 0, 0, 0, 42, 1, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(parse_reply(&t).unwrap(), Some((4, Value::T(298))));
        let u = message(false, 2, Some(5), None, &[1, b'u', 0, 0, 7, 0, 0, 0]);
        assert_eq!(parse_reply(&u).unwrap(), Some((5, Value::U(7))));
        // A signal is skipped.
        let sig = message(false, 4, None, None, &variant_s(false, "x"));
        assert_eq!(parse_reply(&sig).unwrap(), None);
        // An error reply is an error naming it.
        let e = message(
            false,
            3,
            Some(3),
            Some("org.freedesktop.DBus.Error.UnknownObject"),
            &[],
        );
        let err = parse_reply(&e).unwrap_err().to_string();
        assert!(err.contains("error"), "{err}");
        // A reply without REPLY_SERIAL, a value of another type, junk after the value.
        assert!(parse_reply(&message(false, 2, None, None, &variant_s(false, "a"))).is_err());
        assert!(parse_reply(&message(
            false,
            2,
            Some(1),
            None,
            &[1, b'b', 0, 0, 1, 0, 0, 0]
        ))
        .is_err());
        let mut junk = variant_s(false, "a");
        junk.push(0);
        assert!(parse_reply(&message(false, 2, Some(1), None, &junk)).is_err());
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let good = message(false, 2, Some(3), None, &variant_s(false, "active"));
        // Every truncation and every single-byte corruption: Err or Ok, no panic.
        for n in 0..good.len() {
            assert!(parse_reply(&good[..n]).is_err(), "cut at {n}");
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[n] = v;
                let _ = parse_reply(&bad);
                let _ = message_len(&bad);
            }
        }
        assert!(message_len(&good[..15]).unwrap().is_none());
        assert!(parse_reply(b"garbage garbage garbage garbage").is_err());
        // A body over the cap is refused from the fixed header alone.
        let mut big = good.clone();
        big[4..8].copy_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
        assert!(message_len(&big).is_err());
        let mut v2 = good;
        v2[3] = 2;
        assert!(message_len(&v2).is_err());
    }

    #[test]
    fn replies_out_of_order_are_matched_by_serial() {
        let (a, mut systemd) = UnixStream::pair().unwrap();
        let mut conn = Conn {
            sock: a,
            buf: Vec::new(),
            read: 0,
        };
        // docker.socket: serials 1-7 (no MainPID); docker.service: 8-15. Answered backwards,
        // with a signal in between.
        let mut replies = Vec::new();
        for (serial, unit) in (1..=15u32).rev().map(|s| (s, usize::from(s > 7))) {
            let name = ["docker.socket", "docker.service"][unit];
            let body = match (serial - 1) % 7 + u32::from(serial == 15) * 7 {
                0 => variant_s(false, name),
                1 => variant_s(false, "loaded"),
                2 => variant_s(false, ["active", "inactive"][unit]),
                3 => variant_s(false, ["listening", "dead"][unit]),
                4 => variant_s(false, ["", "enabled"][unit]),
                5 | 6 => [
                    vec![1, b't', 0, 0, 0, 0, 0, 0],
                    (u64::from(serial) * 1000).to_le_bytes().to_vec(),
                ]
                .concat(),
                _ => vec![1, b'u', 0, 0, 42, 0, 0, 0],
            };
            replies.push(message(false, 2, Some(serial), None, &body));
            if serial == 9 {
                replies.push(message(false, 4, None, None, &variant_s(false, "noise")));
            }
        }
        systemd.write_all(&replies.concat()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = query(&mut conn, &["docker.socket", "docker.service"], deadline).unwrap();
        let want = |unit: &str, active: &str, sub: &str, file: &str, pid, t: u64| UnitState {
            unit: unit.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            unit_file_state: file.into(),
            main_pid: pid,
            inactive_enter_us: Some(t * 1000),
            inactive_exit_us: Some((t + 1) * 1000),
        };
        assert_eq!(
            got,
            [
                want("docker.socket", "active", "listening", "", 0, 6),
                want("docker.service", "inactive", "dead", "enabled", 42, 13),
            ]
        );
        // What was sent: BEGIN, then 15 calls with serials 1..=15 (the 15th asks MainPID).
        drop(conn);
        let mut sent = Vec::new();
        systemd.read_to_end(&mut sent).unwrap();
        let mut rest = sent.strip_prefix(b"BEGIN\r\n").unwrap();
        for serial in 1..=15u32 {
            let len = message_len(rest).unwrap().unwrap();
            assert_eq!(rest[8..12], serial.to_le_bytes());
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn a_wrong_reply_or_silence_is_an_error() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = |replies: &[Vec<u8>], deadline| {
            let (a, mut systemd) = UnixStream::pair().unwrap();
            systemd.write_all(&replies.concat()).unwrap();
            let mut conn = Conn {
                sock: a,
                buf: Vec::new(),
                read: 0,
            };
            query(&mut conn, &["docker.socket"], deadline)
        };
        let mut good: Vec<Vec<u8>> = ["docker.socket", "loaded", "active", "running", ""]
            .iter()
            .map(|s| variant_s(false, s))
            .chain(
                [0u64, 1]
                    .map(|t| [vec![1, b't', 0, 0, 0, 0, 0, 0], t.to_le_bytes().to_vec()].concat()),
            )
            .enumerate()
            .map(|(i, body)| message(false, 2, Some(i as u32 + 1), None, &body))
            .collect();
        assert!(answer(&good, deadline).is_ok());
        // A state word systemd never prints.
        let sane = good[1].clone();
        good[1] = message(false, 2, Some(2), None, &variant_s(false, "Loaded!"));
        assert!(answer(&good, deadline)
            .unwrap_err()
            .contains("unexpected type or value"));
        // Id as a number.
        good[1] = sane;
        good[0] = message(false, 2, Some(1), None, &[1, b'u', 0, 0, 1, 0, 0, 0]);
        assert!(answer(&good, deadline).is_err());
        // An empty Id.
        good[0] = message(false, 2, Some(1), None, &variant_s(false, ""));
        assert!(answer(&good, deadline)
            .unwrap_err()
            .contains("unexpected type or value"));
        // A reply to a serial never sent, two replies to one serial.
        good[0] = message(false, 2, Some(99), None, &variant_s(false, "x"));
        assert!(answer(&good, deadline).unwrap_err().contains("never made"));
        good[0] = good[1].clone();
        assert!(answer(&good, deadline).unwrap_err().contains("two replies"));
        // No answer at all: an error at the deadline, not a hang.
        let start = Instant::now();
        let err = answer(&[], start + Duration::from_millis(200)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "{err}");
    }
}
