//! Faults (issue 23): the server process restarted under readers, as systemd's
//! `Restart=` does. The restarted server pulls its path from an origin again; readers
//! that reconnect resume: an HLS reader polling the playlist (as hls.js does, retrying
//! on errors) gets it back with new media, and ffmpeg reading HTTP-FLV with
//! `-reconnect` comes back and writes frames again once the new server's timestamps,
//! which start over, pass the ones it last wrote (times reported).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
            "rtspAddress: 127.0.0.1:{rtsp}\nrtspTransports: [tcp]\nrtmp: no\nwebrtc: no\napi: no\n\
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

    // ffmpeg reading HTTP-FLV, reconnecting; each frame it writes is a line.
    let mut reader = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args([
            "-reconnect",
            "1",
            "-reconnect_streamed",
            "1",
            "-reconnect_at_eof",
            "1",
        ])
        .args([
            "-reconnect_on_network_error",
            "1",
            "-reconnect_delay_max",
            "4",
        ])
        // A 404 while the restarted server's source comes up is worth another try.
        .args(["-reconnect_on_http_error", "4xx,5xx"])
        .arg("-i")
        .arg(format!("http://{http}/cam.flv"))
        .args(["-map", "0:v", "-c", "copy", "-f", "framecrc", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("ffmpeg.log")).unwrap())
        .spawn()
        .unwrap();
    let frames = Arc::new(AtomicU64::new(0));
    let counted = frames.clone();
    let out = reader.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if !line.starts_with('#') {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let _reader = Children(vec![reader]);
    wait_until(
        Duration::from_secs(30),
        "FLV frames before the restart",
        || frames.load(Ordering::Relaxed) > 30,
    );
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
    let old = servers.0.pop().unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(old.id() as i32, libc::SIGTERM);
    }
    let mut old = old;
    wait_child(&mut old, Duration::from_secs(15), "the server to stop");
    let before = frames.load(Ordering::Relaxed);
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
    // ffmpeg reconnects at once; it then drops frames until the new server's
    // timestamps (which start over) pass the last ones it wrote.
    let ffmpeg_log = dir.path().join("ffmpeg.log");
    let start = Instant::now();
    while find_line(&log, "HTTP-FLV reader started").is_none() {
        let said = std::fs::read_to_string(&ffmpeg_log).unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ffmpeg did not reconnect: {said}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let flv_reconnected = restarted.elapsed();
    wait_until(
        Duration::from_secs(90),
        "FLV frames after the restart",
        || frames.load(Ordering::Relaxed) > before + 30,
    );
    let flv_back = restarted.elapsed();
    eprintln!(
        "server restarted: the HLS playlist was back with segments after {} ms; ffmpeg (HTTP-FLV, -reconnect) reconnected after {} ms and wrote frames again after {} ms",
        hls_back.as_millis(),
        flv_reconnected.as_millis(),
        flv_back.as_millis()
    );
}
