//! The Docker Engine API, as little of it as the hook needs: list the running containers,
//! inspect one, start one. Bounded HTTP/1.1 over `/run/docker.sock` ([`http`]), typed answers
//! ([`api`]). Connecting to docker's socket socket-activates a stopped docker: callers ask
//! systemd first (docker.service active) and only then come here.

pub mod api;
pub mod http;
