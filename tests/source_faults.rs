//! Sources that fail: a closed port, a server that accepts and never answers, one that
//! refuses the credentials and an HLS playlist that is garbage each give one log line
//! per retry cycle, and a good source on the same server plays on untouched. And the edge/origin fan-in: 20
//! readers of an on-demand path on an edge cost its origin one session.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Accepts connections and never answers; counts them.
fn silent_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            count.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
    });
    (port, n)
}

/// Answers every RTSP request with 401 Unauthorized (Basic); counts connections.
fn unauthorized_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            count.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || answer_401(s));
        }
    });
    (port, n)
}

fn answer_401(s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut out = s.try_clone().unwrap();
    let mut lines = BufReader::new(s);
    let mut cseq = String::from("0");
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.strip_prefix("CSeq:") {
            cseq = v.trim().to_string();
        }
        if line == "\r\n" {
            let _ = write!(
                out,
                "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n"
            );
        }
    }
}

/// Answers every HTTP request with 200 and a body that isn't a playlist; counts them.
fn garbage_http_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            count.fetch_add(1, Ordering::Relaxed);
            let mut req = [0u8; 2048];
            let _ = std::io::Read::read(&mut s, &mut req);
            let body = "<html>not a playlist</html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, n)
}

#[test]
fn failing_sources_log_each_retry_and_leave_other_paths_alone() {
    if !have_ffmpeg() {
        return;
    }
    let cam = TestServer::start("paths:\n  all_others:\n");
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &cam.url("cam"), "tcp", true);
    cam.wait_stream("cam");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (silent, silent_n) = silent_server();
    let (auth, auth_n) = unauthorized_server();
    let (junk, junk_n) = garbage_http_server();
    let edge = TestServer::start(&format!(
        "readTimeout: 1s\npaths:\n  good:\n    source: {}\n  refused:\n    source: rtsp://127.0.0.1:{closed}/x\n  silent:\n    source: rtsp://127.0.0.1:{silent}/x\n  denied:\n    source: rtsp://user:wrong@127.0.0.1:{auth}/x\n  junk:\n    source: http://127.0.0.1:{junk}/index.m3u8\n",
        cam.url("cam")
    ));
    let good = edge.wait_stream("good");
    let units = |s: &mediarouter::core::Stream| s.units_per_track().iter().sum::<u64>();
    let before = units(&good);
    // Two retry cycles of each bad source.
    wait_until(
        Duration::from_secs(30),
        "two tries of each bad source",
        || {
            silent_n.load(Ordering::Relaxed) >= 2
                && auth_n.load(Ordering::Relaxed) >= 2
                && junk_n.load(Ordering::Relaxed) >= 2
        },
    );
    for (path, reason) in [
        ("refused", "Connection refused"),
        ("silent", "no answer"),
        ("denied", "401"),
        ("junk", "does not parse"),
    ] {
        let lines = logs().lines_with("WARN", &["source failed", &format!("path={path}")]);
        assert!(!lines.is_empty(), "{path}: no log line");
        for l in &lines {
            assert!(l.contains(reason), "{path}: {l}");
            assert!(l.contains("retrying in"), "{path}: {l}");
            assert!(
                !l.contains("wrong"),
                "{path}: the password is in the log: {l}"
            );
        }
    }
    // One line per cycle: the unauthorized server saw as many tries as lines, ±1
    // for a try in flight.
    let denied = logs()
        .lines_with("WARN", &["source failed", "path=denied"])
        .len();
    let tries = auth_n.load(Ordering::Relaxed);
    assert!(
        denied.abs_diff(tries) <= 1,
        "{denied} lines for {tries} tries"
    );
    // The good path never stopped.
    assert!(!good.is_closed());
    assert!(edge.stream("good").is_some_and(|s| Arc::ptr_eq(&s, &good)));
    wait_until(
        Duration::from_secs(5),
        "the good path's media to flow",
        || units(&good) > before + 30,
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// The edge runs as its own mediarouter process, the origin in this one.
#[test]
fn twenty_edge_readers_cost_the_origin_one_session() {
    if !have_ffmpeg() {
        return;
    }
    let origin = TestServer::start("paths:\n  all_others:\n");
    let mut publisher = publish(
        &clip(Clip::H264Aac, 10),
        &origin.url("live/cam"),
        "tcp",
        true,
    );
    origin.wait_stream("live/cam");
    let dir = tempfile::tempdir().unwrap();
    let edge_rtsp = free_port();
    let cfg = dir.path().join("edge.yml");
    std::fs::write(
        &cfg,
        format!(
            "rtspAddress: 127.0.0.1:{edge_rtsp}\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\npaths:\n  '~^(.+)$':\n    source: rtsp://{}/$G1\n    sourceOnDemand: yes\n    sourceOnDemandCloseAfter: 1s\n",
            origin.addr
        ),
    )
    .unwrap();
    let mut edge = std::process::Command::new(env!("CARGO_BIN_EXE_mediarouter"))
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let edge_addr: std::net::SocketAddr = format!("127.0.0.1:{edge_rtsp}").parse().unwrap();
    wait_until(Duration::from_secs(10), "the edge to listen", || {
        TcpStream::connect(edge_addr).is_ok()
    });
    let url = format!("rtsp://{edge_addr}/live/cam");
    let mut clients: Vec<Counter> = (0..20)
        .map(|_| {
            let mut c = RawClient::connect(edge_addr);
            c.play_tcp(&url);
            Counter::spawn(c)
        })
        .collect();
    for c in &mut clients {
        c.wait_more(30, "frames on an edge reader");
    }
    assert_eq!(
        origin.readers("live/cam"),
        1,
        "one origin session for 20 edge readers"
    );
    eprintln!(
        "fan-in: 20 edge readers, {} origin session",
        origin.readers("live/cam")
    );
    for c in &mut clients {
        c.close();
    }
    wait_until(
        Duration::from_secs(15),
        "the edge to let go of the origin",
        || origin.readers("live/cam") == 0,
    );
    let _ = edge.kill();
    let _ = edge.wait();
    let _ = publisher.kill();
    let _ = publisher.wait();
}
