//! Does docker answer? `GET /_ping` over `/run/docker.sock` (HTTP/1.0, std `UnixStream`,
//! timeouts on connect, write and read). Does containerd's socket accept a connection?

use std::path::Path;
use std::time::Duration;

/// Polls `GET /_ping` until docker answers `OK` or `budget` runs out; returns the time it took.
pub fn wait_docker(sock: &Path, budget: Duration) -> anyhow::Result<Duration> {
    let _ = (sock, budget);
    todo!("units helper")
}

/// One `GET /_ping`, bounded by `timeout`.
pub fn ping_docker(sock: &Path, timeout: Duration) -> anyhow::Result<()> {
    let _ = (sock, timeout);
    todo!("units helper")
}

/// Polls until the unix socket at `sock` accepts a connection (containerd's gRPC socket).
pub fn wait_socket(sock: &Path, budget: Duration) -> anyhow::Result<Duration> {
    let _ = (sock, budget);
    todo!("units helper")
}
