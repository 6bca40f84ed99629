//! Faults (issue 23): a publisher killed with SIGKILL (no TEARDOWN, no FIN from the
//! application) frees its path within `readTimeout`, its readers see the end, and a new
//! publisher takes the path; an HLS client that stops reading is dropped within
//! `writeTimeout` while another reader goes on. (Lossy links: faults_loss.rs; a link
//! down: faults_link.rs; a restart: faults_restart.rs.)

mod common;

use common::*;
use std::time::{Duration, Instant};

fn sigkill(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Publishes over `how`, reads over RTSP, kills the publisher and measures how long
/// the path takes to be free; then a new publisher takes it.
fn killed_publisher(how: &str) -> Duration {
    let srv = TestServer::start("readTimeout: 2s\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let url = match how {
        "rtmp" => srv.rtmp_url("live/cam"),
        _ => srv.url("live/cam"),
    };
    let start = |url: &str| match how {
        "rtmp" => publish_rtmp(&clip, url, true),
        "udp" => publish(&clip, url, "udp", true),
        _ => publish(&clip, url, "tcp", true),
    };
    let mut publisher = start(&url);
    srv.wait_stream("live/cam");
    let mut reader = RawClient::connect(srv.addr);
    reader.play_tcp(&srv.url("live/cam"));
    let mut counter = Counter::spawn(reader);
    counter.wait_more(20, "media before the kill");
    let killed = Instant::now();
    sigkill(&mut publisher);
    wait_until(Duration::from_secs(10), "the path to be free", || {
        srv.stream("live/cam").is_none()
    });
    let freed = killed.elapsed();
    wait_until(Duration::from_secs(10), "the reader to see the end", || {
        counter.ended()
    });
    counter.close();
    let mut again = start(&url);
    srv.wait_stream("live/cam");
    let _ = again.kill();
    let _ = again.wait();
    freed
}

#[test]
fn a_killed_publisher_frees_its_path_within_read_timeout() {
    if !have_ffmpeg() {
        return;
    }
    // The socket closes with the process (the kernel sends FIN/RST), so the path is
    // free at once; readTimeout (2 s) bounds the case where nothing arrives at all.
    let lines: Vec<String> = ["tcp", "udp", "rtmp"]
        .iter()
        .map(|how| {
            format!(
                "{how}: freed after {} ms",
                killed_publisher(how).as_millis()
            )
        })
        .collect();
    eprintln!("{}", lines.join("; "));
}

/// Whether the server still has an established TCP connection from local port
/// `server_port` to the client's port `client_port` (`/proc/net/tcp`).
fn established(server_port: u16, client_port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap_or(""), 16).ok();
        f.len() > 3
            && port(f[1]) == Some(server_port)
            && port(f[2]) == Some(client_port)
            && f[3] == "01"
    })
}

/// An HLS client that asks for segments and stops reading (its window goes to zero)
/// is closed within `writeTimeout`, with one warn naming it; a reader polling the same
/// playlist keeps getting segments all along.
#[test]
fn an_hls_client_that_stops_reading_is_dropped_within_write_timeout() {
    use std::io::Write;
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "writeTimeout: 2s\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\npaths:\n  all_others:\n",
    );
    let _publisher = Children(vec![publish(
        &clip(Clip::H264Aac, 6),
        &srv.url("live/cam"),
        "tcp",
        true,
    )]);
    srv.wait_stream("live/cam");
    let http = srv.server.http_addr().unwrap();
    let media = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut segments = Vec::new();
    wait_until(Duration::from_secs(30), "HLS segments", || {
        let (st, body) = common::http::get(http, "/live/cam/stream.m3u8");
        segments = media(&String::from_utf8_lossy(&body));
        st == 200 && segments.len() >= 2
    });

    // A small receive window, and 40 pipelined requests for a segment: megabytes of
    // answers the client never reads.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&http.into()).unwrap();
    let mut stalled: std::net::TcpStream = sock.into();
    let port = stalled.local_addr().unwrap().port();
    let get = format!("GET /live/cam/{} HTTP/1.1\r\nHost: x\r\n\r\n", segments[0]);
    stalled.write_all(get.repeat(40).as_bytes()).unwrap();
    let stalled_at = Instant::now();

    let mut fetched = 0;
    let mut seen = std::collections::HashSet::new();
    while established(http.port(), port) {
        assert!(
            stalled_at.elapsed() < Duration::from_secs(20),
            "the stalled HLS client is still connected"
        );
        // The other reader goes on meanwhile.
        let (st, body) = common::http::get(http, "/live/cam/stream.m3u8");
        assert_eq!(st, 200, "the playlist for the other reader");
        for s in media(&String::from_utf8_lossy(&body)) {
            if seen.insert(s.clone()) {
                let (st, seg) = common::http::get(http, &format!("/live/cam/{s}"));
                assert_eq!(st, 200, "segment {s} for the other reader");
                assert_eq!(seg.first(), Some(&0x47));
                fetched += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dropped_after = stalled_at.elapsed();
    let lines = logs().lines_with("WARN", &[&format!(":{port}"), "write timeout"]);
    assert_eq!(lines.len(), 1, "one warn for the stalled client: {lines:?}");
    eprintln!(
        "stalled HLS client dropped after {} ms (writeTimeout 2 s); the other reader fetched {fetched} segments meanwhile",
        dropped_after.as_millis()
    );
    assert!(fetched >= 2, "the other reader fetched {fetched} segments");
}
