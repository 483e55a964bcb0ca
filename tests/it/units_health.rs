//! `/_ping` against tiny fake servers on unix sockets in a temp directory.

use docker_upgrade_guard::health::{ping_docker, wait_docker, wait_socket};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Serves `answer` to every connection on `path` (after reading the request), and reports
/// the requests it saw.
fn serve(path: &Path, answer: &'static [u8]) -> mpsc::Receiver<Vec<u8>> {
    let l = UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut req = vec![0u8; 1024];
            let n = c.read(&mut req).unwrap_or(0);
            req.truncate(n);
            let _ = tx.send(req);
            let _ = c.write_all(answer);
        }
    });
    rx
}

fn sock(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("docker.sock")
}

const OK: &[u8] =
    b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nOK";

#[test]
fn ok_answer_and_the_exact_request() {
    let d = tempfile::tempdir().unwrap();
    let seen = serve(&sock(&d), OK);
    ping_docker(&sock(&d), Duration::from_secs(2)).unwrap();
    assert_eq!(
        seen.recv().unwrap(),
        b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    );
    let took = wait_docker(&sock(&d), Duration::from_secs(2)).unwrap();
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn status_500_and_garbage_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let _s = serve(
        &sock(&d),
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nerror",
    );
    let err = ping_docker(&sock(&d), Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("answered GET /_ping with status 500 Internal Server Error"),
        "{err}"
    );

    let d = tempfile::tempdir().unwrap();
    let _s = serve(&sock(&d), b"\x00\x01garbage\n");
    let err = ping_docker(&sock(&d), Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not HTTP"), "{err}");
    // Retried until the budget is spent, then the last reason is given.
    let t = Instant::now();
    let err = wait_docker(&sock(&d), Duration::from_millis(600))
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        err.contains("within 0.6 s") && err.contains("not HTTP"),
        "{err}"
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let d = tempfile::tempdir().unwrap();
    let l = UnixListener::bind(sock(&d)).unwrap();
    thread::spawn(move || {
        let mut held = vec![];
        for c in l.incoming() {
            held.push(c); // accept, read nothing, answer nothing, keep open
        }
    });
    let t = Instant::now();
    let err = ping_docker(&sock(&d), Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    let took = t.elapsed();
    assert!(err.contains("no answer to GET /_ping"), "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    let t = Instant::now();
    assert!(wait_docker(&sock(&d), Duration::from_millis(700)).is_err());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(690) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn no_socket_then_a_socket_appearing() {
    let d = tempfile::tempdir().unwrap();
    let err = ping_docker(&sock(&d), Duration::from_millis(200))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect"), "{err}");

    let path = sock(&d);
    let p2 = path.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(400));
        let rx = serve(&p2, OK);
        thread::sleep(Duration::from_secs(5));
        drop(rx);
    });
    let took = wait_docker(&path, Duration::from_secs(5)).unwrap();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}

#[test]
fn wait_socket_sees_a_listener_appear_and_gives_up_without_one() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("containerd.sock");
    let t = Instant::now();
    let err = wait_socket(&path, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < Duration::from_millis(1500));
    assert!(err.contains("nothing accepted a connection"), "{err}");

    let p2 = path.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        let l = UnixListener::bind(&p2).unwrap();
        thread::sleep(Duration::from_secs(5));
        drop(l);
    });
    let took = wait_socket(&path, Duration::from_secs(5)).unwrap();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}
