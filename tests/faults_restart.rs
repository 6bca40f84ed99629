//! Faults (issue 23): the server process restarted under readers, as systemd's
//! `Restart=` does. The restarted server pulls its path from an origin again; readers
//! that reconnect resume: an HLS reader polling the playlist (as hls.js does, retrying
//! on errors) gets it back with new media, and an RTSP reader that sees the end and
//! reconnects (DESCRIBE until the path is there, as players retry) plays again. (ffmpeg's
//! HTTP `-reconnect` was tried too: it reconnected in 2 s here, then dropped frames until
//! the new timestamps passed its last ones, and in one CI run it never reconnected; it
//! is not a dependable reader to test with.)

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Segment URIs of the media playlist, or `None` when it can't be had.
fn segments(http: std::net::SocketAddr) -> Option<Vec<String>> {
    let (st, body) = common::http::get(http, "/cam/stream.m3u8");
    (st == 200).then(|| {
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect()
    })
}

#[test]
fn readers_that_reconnect_resume_after_the_server_restarts() {
    if !have_ffmpeg() {
        return;
    }
    let origin = TestServer::start("paths:\n  all_others:\n");
    let publisher = publish(
        &clip(Clip::H264Aac, 6),
        &origin.url("live/cam"),
        "tcp",
        true,
    );
    let _publisher = Children(vec![publisher]);
    origin.wait_stream("live/cam");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mediarouter.yml");
    let (rtsp, hls) = (free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "rtspAddress: 127.0.0.1:{rtsp}\nrtspTransports: [tcp]\nrtmp: no\nwebrtc: no\nsrt: no\napi: no\n\
             hlsAddress: 127.0.0.1:{hls}\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\nhlsAlwaysRemux: yes\n\
             paths:\n  cam:\n    source: {}\n",
            origin.url("live/cam")
        ),
    )
    .unwrap();
    let http: std::net::SocketAddr = ([127, 0, 0, 1], hls).into();
    let (server, log) = spawn_server(&cfg);
    let mut servers = Children(vec![server]);
    listen_addr(&log, "HTTP");
    let rtsp_addr: std::net::SocketAddr = ([127, 0, 0, 1], rtsp).into();
    let url = format!("rtsp://{rtsp_addr}/cam");
    // DESCRIBE until the path has its source's stream (404 until then).
    let wait_readable = |what: &str| {
        wait_until(Duration::from_secs(30), what, || {
            std::net::TcpStream::connect(rtsp_addr).is_ok_and(|s| {
                let mut c = RawClient::connect_with(s);
                c.request("DESCRIBE", &url, &[("Accept", "application/sdp")], b"")
                    .status
                    == 200
            })
        })
    };
    wait_readable("the source's stream");
    let mut reader = RawClient::connect(rtsp_addr);
    reader.play_tcp(&url);
    let reader = Counter::spawn(reader);
    reader.wait_more(20, "RTSP frames before the restart");
    let mut seen = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "HLS segments before the restart",
        || {
            seen = segments(http).unwrap_or_default();
            seen.len() >= 2
        },
    );

    // systemd-style: the process goes (SIGTERM), a new one starts on the same config.
    let mut old = servers.0.pop().unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(old.id() as i32, libc::SIGTERM);
    }
    wait_child(&mut old, Duration::from_secs(15), "the server to stop");
    wait_until(
        Duration::from_secs(5),
        "the RTSP reader to see the end",
        || reader.ended(),
    );
    let restarted = Instant::now();
    let (server, log) = spawn_server(&cfg);
    servers.0.push(server);
    listen_addr(&log, "HTTP");

    // The HLS reader: the playlist answers again, and its newest segment is media.
    let mut after = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "HLS segments after the restart",
        || {
            after = segments(http).unwrap_or_default();
            after.len() >= 2
        },
    );
    let hls_back = restarted.elapsed();
    let newest = after.last().unwrap();
    let (st, body) = common::http::get(http, &format!("/cam/{newest}"));
    assert_eq!(st, 200, "segment {newest}");
    assert!(body.len() > 188 && body[0] == 0x47, "an MPEG-TS segment");

    // The RTSP reader reconnects as players do: DESCRIBE until the path is there.
    wait_readable("the path to be readable again");
    let mut again = RawClient::connect(rtsp_addr);
    again.play_tcp(&url);
    let again = Counter::spawn(again);
    again.wait_more(20, "RTSP frames after the restart");
    let rtsp_back = restarted.elapsed();
    eprintln!(
        "server restarted: the HLS playlist was back with segments after {} ms; a reconnecting RTSP reader had frames again after {} ms",
        hls_back.as_millis(),
        rtsp_back.as_millis()
    );
}
