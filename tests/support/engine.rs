//! A Docker Engine API stand-in: a thread of the test process serving a unix socket (the
//! `<root>/run/docker.sock` of a test root, or any path). Lists, inspects and starts its
//! containers; can be slow, hang, answer 500 or garbage; counts every connection.
//!
//! Tied to the systemctl stand-in (`follow_systemctl`), it behaves like dockerd under systemd:
//! while docker.service is inactive it answers nothing, and when docker.service's main PID
//! changes (docker was stopped and started, or restarted) every running container went down
//! with the old daemon (FinishedAt = then) and only those with an `always`/`unless-stopped`
//! restart policy run again.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Ctr {
    pub id: String,
    pub name: String,
    pub image: String,
    pub policy: String,
    pub running: bool,
    pub started_at: String,
    pub finished_at: String,
}

impl Ctr {
    /// A running container; its id is derived from the name.
    pub(crate) fn new(name: &str, image: &str, policy: &str) -> Ctr {
        Ctr {
            id: id_for(name),
            name: name.into(),
            image: image.into(),
            policy: policy.into(),
            running: true,
            started_at: "2024-01-01T00:00:00.5Z".into(),
            finished_at: "0001-01-01T00:00:00Z".into(),
        }
    }

    pub(crate) fn stopped_at(mut self, finished: &str) -> Ctr {
        self.running = false;
        self.finished_at = finished.into();
        self
    }
}

/// A 64-hex-digit id made from a name (stable, distinct for distinct names in practice).
pub(crate) fn id_for(name: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}").repeat(4)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// Waits this long before answering.
    Slow(Duration),
    /// Reads the request and never answers (until the stand-in is dropped).
    Hang,
    /// 500 with a JSON message carrying control characters.
    Error500,
    /// Bytes that are not HTTP.
    Garbage,
}

#[derive(Debug)]
pub(crate) struct State {
    pub containers: Vec<Ctr>,
    pub mode: Mode,
    pub connections: usize,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
    /// Connections made while the systemctl stand-in said docker.service was inactive.
    pub while_down: usize,
    systemctl_state: Option<PathBuf>,
    last_pid: Option<u64>,
}

pub(crate) struct StandIn {
    pub path: PathBuf,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    /// Serves `path` (its directory is created) with `containers`.
    pub(crate) fn serve(path: &Path, containers: Vec<Ctr>) -> StandIn {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State {
            containers,
            mode: Mode::Normal,
            connections: 0,
            requests: Vec::new(),
            while_down: 0,
            systemctl_state: None,
            last_pid: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        std::thread::spawn(move || handle(c, &st, &sp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StandIn {
            path: path.to_path_buf(),
            state,
            stop,
        }
    }

    /// Behaves like dockerd under the systemctl stand-in whose state file is `state_json`.
    pub(crate) fn follow_systemctl(&self, state_json: &Path) {
        let mut s = self.state.lock().unwrap();
        s.last_pid = docker_pid(state_json);
        s.systemctl_state = Some(state_json.to_path_buf());
    }

    pub(crate) fn set_mode(&self, m: Mode) {
        self.state.lock().unwrap().mode = m;
    }

    pub(crate) fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub(crate) fn container(&self, name: &str) -> Ctr {
        let s = self.state.lock().unwrap();
        s.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// docker.service's main PID in the systemctl stand-in's state (`None`: inactive).
fn docker_pid(state_json: &Path) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state_json).ok()?).ok()?;
    let u = &v["units"]["docker.service"];
    if u["active"].as_bool() != Some(true) {
        return None;
    }
    Some(u["main_pid"].as_u64().unwrap_or(0))
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    docker_upgrade_guard::events::rfc3339(secs).replace('Z', ".25Z")
}

fn handle(mut c: UnixStream, st: &Mutex<State>, stop: &AtomicBool) {
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let line = head.lines().next().unwrap_or("").to_string();
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mode = {
        let mut s = st.lock().unwrap();
        s.connections += 1;
        s.requests.push(format!("{method} {target}"));
        if let Some(p) = s.systemctl_state.clone() {
            match docker_pid(&p) {
                None => {
                    s.while_down += 1;
                    return; // dockerd is not there: the connection just closes
                }
                Some(pid) if Some(pid) != s.last_pid => {
                    let t = now_rfc3339();
                    for k in s.containers.iter_mut().filter(|k| k.running) {
                        k.finished_at = t.clone();
                        k.running = matches!(k.policy.as_str(), "always" | "unless-stopped");
                        if k.running {
                            k.started_at = t.clone();
                        }
                    }
                    s.last_pid = Some(pid);
                }
                Some(_) => {}
            }
        }
        s.mode
    };
    let reply = match mode {
        Mode::Hang => {
            let end = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Mode::Garbage => b"\x00\x01\x1b[2Jthis is not http\r\n".to_vec(),
        Mode::Error500 => respond(
            500,
            br#"{"message":"boom \u001b[31mred\u001b[0m"}"#.to_vec(),
            false,
        ),
        Mode::Slow(d) => {
            std::thread::sleep(d);
            route(st, &method, &target)
        }
        Mode::Normal => route(st, &method, &target),
    };
    let _ = c.write_all(&reply);
}

fn respond(status: u16, body: Vec<u8>, chunked: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nServer: Docker/20.10 (linux)\r\n"
    )
    .into_bytes();
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for part in body.chunks(4000) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn route(st: &Mutex<State>, method: &str, target: &str) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or("");
    let path = match path.strip_prefix("/v1.41") {
        Some(p) => p,
        None => path,
    };
    let mut s = st.lock().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    let not_found = |id: &str| {
        respond(
            404,
            format!("{{\"message\":\"No such container: {id}\"}}").into_bytes(),
            false,
        )
    };
    match (method, parts.as_slice()) {
        ("GET", ["", "_ping"]) => {
            let mut r = respond(200, b"OK".to_vec(), false);
            // /_ping answers text, not JSON; the header is what matters.
            let text = String::from_utf8(r.clone()).unwrap().replace("application/json", "text/plain");
            r = text.into_bytes();
            r
        }
        ("GET", ["", "version"]) => respond(200, br#"{"ApiVersion":"1.41"}"#.to_vec(), false),
        ("GET", ["", "containers", "json"]) => {
            let list: Vec<serde_json::Value> = s
                .containers
                .iter()
                .filter(|c| c.running)
                .map(|c| {
                    serde_json::json!({"Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                        "ImageID": "sha256:0", "Command": "sleep", "Created": 1, "State": "running",
                        "Status": "Up 2 hours", "Labels": {}, "HostConfig": {"NetworkMode": "none"}})
                })
                .collect();
            let body = serde_json::to_vec(&list).unwrap();
            let chunked = body.len() > 2048;
            respond(200, body, chunked)
        }
        ("GET", ["", "containers", id, "json"]) => match s.containers.iter().find(|c| c.id == *id) {
            None => not_found(id),
            Some(c) => respond(
                200,
                serde_json::to_vec(&serde_json::json!({
                    "Id": c.id, "Name": format!("/{}", c.name),
                    "State": {"Status": if c.running {"running"} else {"exited"}, "Running": c.running,
                              "StartedAt": c.started_at, "FinishedAt": c.finished_at, "ExitCode": 0},
                    "Config": {"Image": c.image},
                    "HostConfig": {"RestartPolicy": {"Name": c.policy, "MaximumRetryCount": 0}},
                }))
                .unwrap(),
                false,
            ),
        },
        ("POST", ["", "containers", id, "start"]) => {
            match s.containers.iter_mut().find(|c| c.id == *id) {
                None => not_found(id),
                Some(c) if c.running => respond(304, Vec::new(), false),
                Some(c) => {
                    c.running = true;
                    c.started_at = now_rfc3339();
                    respond(204, Vec::new(), false)
                }
            }
        }
        _ => respond(404, br#"{"message":"page not found"}"#.to_vec(), false),
    }
}
