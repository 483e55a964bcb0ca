//! The three Engine API calls the hook makes, on the daemon's own API version (from the
//! `Api-Version` header of `/_ping`): the running containers, one container's details, start.
//! Every answer is parsed strictly enough to trust the fields we use; the rest is ignored.

use super::http::{self, Error};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many containers are followed; the rest are named by count only.
pub const MAX_CONTAINERS: usize = 500;
/// One request never takes longer than this (a hung daemon costs seconds, not the budget).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(5);
const MAX_LIST: usize = 8 * 1024 * 1024;
/// Inspects in flight at once (see [`Engine::fill_details`]).
const PARALLEL_INSPECTS: usize = 8;

/// A container's restart policy and start time, if its inspect told them.
type Details = Option<(Option<String>, Option<String>)>;
const MAX_INSPECT: usize = 1024 * 1024;
const MAX_SMALL: usize = 64 * 1024;

/// A running container as the hook records it before the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `no`, `always`, `unless-stopped`, `on-failure`; `None` when the inspect failed.
    pub restart_policy: Option<String>,
    pub started_at: Option<String>,
}

/// One container's state now (`GET /containers/{id}/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspect {
    pub container: Container,
    pub running: bool,
    /// `State.FinishedAt` as seconds since the epoch (`None`: never finished, or unparsable).
    pub finished_at: Option<u64>,
}

/// What `list_running` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub containers: Vec<Container>,
    /// How many running containers docker listed (more than `containers` past the cap).
    pub total: usize,
}

/// What a start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    /// 304: it was running already (its restart policy, or someone else, was faster).
    AlreadyRunning,
}

pub struct Engine {
    sock: PathBuf,
    deadline: Instant,
    /// `v1.41` (validated digits), or empty before a ping told us.
    version: String,
}

/// The body as JSON, through `from_str::<Value>` (the audit links it already: no new
/// deserializer in a size-capped binary).
fn json(body: &[u8], what: &str) -> Result<Value, Error> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .ok_or_else(|| Error::Garbage(format!("{what} is not JSON")))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

impl Engine {
    /// A client of the daemon on `sock`; nothing it does outlives `deadline`.
    pub fn new(sock: &Path, deadline: Instant) -> Engine {
        Engine {
            sock: sock.to_path_buf(),
            deadline,
            version: String::new(),
        }
    }

    fn call(&self, method: &str, path: &str, max: usize) -> Result<http::Response, Error> {
        let d = self.deadline.min(Instant::now() + REQUEST_LIMIT);
        let full = format!("{}{path}", self.version);
        let r = http::request(&self.sock, method, &full, d, max)?;
        if !(200..300).contains(&r.status) && r.status != 304 {
            let msg = json(&r.body, "")
                .ok()
                .and_then(|v| text(&v, &["message"]).map(str::to_string))
                .unwrap_or_default();
            return Err(Error::Status(r.status, msg.chars().take(200).collect()));
        }
        Ok(r)
    }

    /// `GET /_ping`; learns the daemon's API version from its `Api-Version` header.
    pub fn ping(&mut self) -> Result<(), Error> {
        self.version.clear();
        let r = self.call("GET", "/_ping", MAX_SMALL)?;
        if r.body != b"OK" {
            return Err(Error::Garbage("/_ping did not answer OK".into()));
        }
        if let Some(v) = r.api_version.filter(|v| valid_version(v)) {
            self.version = format!("/v{v}");
        }
        Ok(())
    }

    /// The running containers, the first [`MAX_CONTAINERS`] of them, each with its restart
    /// policy and start time (a container whose inspect fails keeps `None` there; once the
    /// deadline passes, the rest are not inspected).
    ///
    /// Without a [`Engine::ping`] before, the list is asked for on the daemon's default API
    /// version (no version in the path: the one its `Api-Version` header names), and that
    /// header sets the version of the requests after it: one round trip fewer.
    pub fn list_running(&mut self) -> Result<Listing, Error> {
        let r = self.call("GET", "/containers/json", MAX_LIST)?;
        if self.version.is_empty() {
            if let Some(v) = r.api_version.filter(|v| valid_version(v)) {
                self.version = format!("/v{v}");
            }
        }
        let all = json(&r.body, "the container list")?;
        let all = all
            .as_array()
            .ok_or_else(|| Error::Garbage("the container list is not a list".into()))?;
        let total = all.len();
        let mut containers = Vec::new();
        for s in all.iter().take(MAX_CONTAINERS) {
            let id = text(s, &["Id"])
                .filter(|i| valid_id(i))
                .ok_or_else(|| Error::Garbage("a container without a hex id".into()))?;
            let name = s
                .get("Names")
                .and_then(|n| n.get(0))
                .and_then(Value::as_str)
                .unwrap_or(&id[..12]);
            containers.push(Container {
                id: id.to_string(),
                name: name.trim_start_matches('/').to_string(),
                image: text(s, &["Image"]).unwrap_or("").to_string(),
                restart_policy: None,
                started_at: None,
            });
        }
        self.fill_details(&mut containers);
        Ok(Listing { containers, total })
    }

    /// Each container's restart policy and start time, from its inspect (only there): one
    /// round trip per container, so they are spread over up to [`PARALLEL_INSPECTS`]
    /// connections at once (the first share on this thread, and any share whose thread cannot
    /// start). Once the deadline passes, the rest are not inspected.
    fn fill_details(&self, list: &mut [Container]) {
        let inspect_all = |part: &[Container]| self.details(part);
        let share = list.len().div_ceil(PARALLEL_INSPECTS).max(1);
        let details: Vec<Vec<Details>> = std::thread::scope(|s| {
            let parts: Vec<&[Container]> = list.chunks(share).collect();
            let handles: Vec<_> = parts
                .iter()
                .skip(1)
                .map(|part| {
                    std::thread::Builder::new()
                        .spawn_scoped(s, || inspect_all(part))
                        .ok()
                })
                .collect();
            let mut out = Vec::with_capacity(parts.len());
            out.extend(parts.first().map(|p| inspect_all(p)));
            for (part, h) in parts.iter().skip(1).zip(handles) {
                out.push(match h.map(std::thread::ScopedJoinHandle::join) {
                    Some(Ok(d)) => d,
                    _ => inspect_all(part),
                });
            }
            out
        });
        for (c, d) in list.iter_mut().zip(details.into_iter().flatten()) {
            if let Some((policy, started)) = d {
                c.restart_policy = policy;
                c.started_at = started;
            }
        }
    }

    /// The restart policy and start time of each of `part` (`None`: not known, or past the
    /// deadline). One copy of the code, whichever thread runs it.
    #[inline(never)]
    fn details(&self, part: &[Container]) -> Vec<Details> {
        part.iter()
            .map(|c| {
                if Instant::now() >= self.deadline {
                    return None;
                }
                let i = self.inspect(&c.id).ok()?;
                Some((i.container.restart_policy, i.container.started_at))
            })
            .collect()
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, id: &str) -> Result<Inspect, Error> {
        if !valid_id(id) {
            return Err(Error::Garbage("a container id that is not hex".into()));
        }
        let r = self.call("GET", &format!("/containers/{id}/json"), MAX_INSPECT)?;
        let f = json(&r.body, "the container")?;
        if text(&f, &["Id"]) != Some(id) {
            return Err(Error::Garbage(
                "docker answered about another container".into(),
            ));
        }
        let running = f
            .get("State")
            .and_then(|s| s.get("Running"))
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::Garbage("the container has no State.Running".into()))?;
        let policy = f.get("HostConfig").and_then(|h| h.get("RestartPolicy"));
        Ok(Inspect {
            running,
            finished_at: text(&f, &["State", "FinishedAt"]).and_then(parse_time),
            container: Container {
                id: id.to_string(),
                name: text(&f, &["Name"])
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                image: text(&f, &["Config", "Image"]).unwrap_or("").to_string(),
                restart_policy: policy.map(|p| {
                    match p.get("Name").and_then(Value::as_str).unwrap_or("") {
                        "" => "no".to_string(),
                        n => n.to_string(),
                    }
                }),
                started_at: text(&f, &["State", "StartedAt"])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            },
        })
    }

    /// `POST /containers/{id}/start`: the same container, never a new one.
    pub fn start(&self, id: &str) -> Result<Started, Error> {
        if !valid_id(id) {
            return Err(Error::Garbage("a container id that is not hex".into()));
        }
        let r = self.call("POST", &format!("/containers/{id}/start"), MAX_SMALL)?;
        Ok(if r.status == 304 {
            Started::AlreadyRunning
        } else {
            Started::Now
        })
    }
}

/// `1.41`: digits, one dot, digits (it goes into the request line).
fn valid_version(v: &str) -> bool {
    matches!(v.split_once('.'), Some((a, b)) if !a.is_empty() && !b.is_empty()
        && a.len() <= 3 && b.len() <= 3
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
}

/// A full container id: 64 lowercase hex digits (it goes into the request path).
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// RFC 3339 as docker writes it (`2024-05-01T03:12:09.123456789Z`, or with `+hh:mm`) to
/// seconds since the epoch. `0001-01-01T00:00:00Z` (never) and anything else: `None`.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let v = num_in(rest, 1..3)? * 3600 + num_in(rest, 4..6)? * 60;
            if rest.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant), the inverse of events::rfc3339.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(t).ok().filter(|t| *t > 0)
}

fn num_in(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    let t = s.get(r)?;
    t.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| t.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for (s, want) in [
            ("2020-05-01T03:12:09Z", Some(1_588_302_729)),
            ("2020-05-01T03:12:09.123456789Z", Some(1_588_302_729)),
            ("2020-05-01T05:12:09+02:00", Some(1_588_302_729)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("0001-01-01T00:00:00Z", None),
            ("2020-13-01T00:00:00Z", None),
            ("2020-05-01T03:12:09", None),
            ("2020-05-01T03:12:09.Z", None),
            ("2020-05-01 03:12:09Z", None),
            ("", None),
            ("2020-05-01T03:1x:09Z", None),
        ] {
            assert_eq!(parse_time(s), want, "{s}");
        }
        for secs in [951_782_400u64, 1_588_302_729, 4_107_542_399] {
            assert_eq!(parse_time(&crate::events::rfc3339(secs)), Some(secs));
        }
    }

    #[test]
    fn versions_and_ids() {
        assert!(valid_version("1.41") && valid_version("1.24"));
        for v in ["", "1", "1.", ".1", "1.41/../x", "v1.41", "1.4 1"] {
            assert!(!valid_version(v), "{v}");
        }
        assert!(valid_id(&"a".repeat(64)));
        assert!(!valid_id(&"A".repeat(64)) && !valid_id("abc") && !valid_id(&"g".repeat(64)));
    }
}
