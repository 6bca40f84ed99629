//! RTSP sources: a path with `source: rtsp://…` pulls a "camera" (another mediarouter
//! fed by ffmpeg) and serves it to RTSP, RTMP and HLS readers, over TCP and UDP; it
//! reconnects when the camera comes back; on demand, it connects only while someone
//! reads and lets go `sourceOnDemandCloseAfter` after the last reader.

mod common;

use common::*;
use std::process::Child;
use std::time::{Duration, Instant};

fn camera() -> (TestServer, Child) {
    let cam = TestServer::start("paths:\n  all_others:\n");
    let publisher = publish(&clip(Clip::H264Aac, 10), &cam.url("cam"), "tcp", true);
    cam.wait_stream("cam");
    (cam, publisher)
}

fn pulls(transport: &str) {
    if !have_ffmpeg() {
        return;
    }
    let (cam, mut publisher) = camera();
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: {}\n    rtspTransport: {transport}\n",
        cam.url("cam")
    ));
    edge.wait_stream("pulled");
    assert_eq!(cam.readers("cam"), 1, "one session on the camera");
    let dir = tempfile::tempdir().unwrap();
    let http = edge.server.http_addr().unwrap();
    let urls = [
        ("rtsp", edge.url("pulled")),
        ("rtmp", edge.rtmp_url("pulled")),
        ("hls", format!("http://{http}/pulled/index.m3u8")),
    ];
    let mut readers: Vec<(&str, std::path::PathBuf, Child)> = urls
        .iter()
        .map(|(name, url)| {
            let out = dir.path().join(format!("{name}.mkv"));
            let child = read_for(url, 5, &out);
            (*name, out, child)
        })
        .collect();
    for (name, out, child) in &mut readers {
        let st = wait_child(child, Duration::from_secs(40), name);
        assert!(st.success(), "{transport}: {name} reader failed");
        let probed = probe(out);
        assert!(
            probed.iter().any(|s| s.codec == "aac"),
            "{name}: {probed:?}"
        );
        let video = probed.iter().find(|s| s.codec == "h264").expect("video");
        assert_eq!((video.width, video.height), (640, 360));
        let complete = video_completeness(out, 30.0);
        eprintln!(
            "{transport} source → {name}: {} frames, completeness {complete:.3}",
            video.packets
        );
        assert!(complete >= 0.9, "{transport} → {name}: {complete}");
    }
    assert_eq!(cam.readers("cam"), 1, "still one session on the camera");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn an_rtsp_source_over_tcp_serves_rtsp_rtmp_and_hls() {
    pulls("tcp");
}

#[test]
fn an_rtsp_source_over_udp_serves_rtsp_rtmp_and_hls() {
    pulls("udp");
}

#[test]
fn the_source_reconnects_when_the_camera_returns() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, mut publisher) = camera();
    let edge = TestServer::start(&format!(
        "hlsAlwaysRemux: yes\npaths:\n  pulled:\n    source: {}\n",
        cam.url("cam")
    ));
    let first = edge.wait_stream("pulled");
    // The camera's publisher goes away for 5 s.
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    wait_until(Duration::from_secs(15), "the edge to see the end", || {
        first.is_closed()
    });
    let gone = Instant::now();
    wait_until(Duration::from_secs(10), "5 s of outage", || {
        gone.elapsed() >= Duration::from_secs(5)
    });
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &cam.url("cam"), "tcp", true);
    cam.wait_stream("cam");
    let back = Instant::now();
    let mut second = None;
    wait_until(Duration::from_secs(30), "the source to reconnect", || {
        second = edge.stream("pulled").filter(|s| !s.is_closed());
        second.is_some()
    });
    eprintln!(
        "reconnected {:?} after the camera came back",
        back.elapsed()
    );
    // HLS goes on across the outage, with a discontinuity.
    let http = edge.server.http_addr().unwrap();
    wait_until(
        Duration::from_secs(30),
        "a discontinuity in the playlist",
        || {
            let (status, body) = common::http::get(http, "/pulled/stream.m3u8");
            status == 200 && String::from_utf8_lossy(&body).contains("#EXT-X-DISCONTINUITY\n")
        },
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn an_on_demand_source_connects_only_while_read() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, mut publisher) = camera();
    let edge = TestServer::start(&format!(
        "paths:\n  '~^pulled/(.+)$':\n    source: rtsp://{}/$G1\n    sourceOnDemand: yes\n    sourceOnDemandCloseAfter: 1s\n",
        cam.addr
    ));
    // Nobody reads: no session on the camera.
    assert_eq!(cam.readers("cam"), 0);
    assert!(edge.stream("pulled/cam").is_none());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&edge.url("pulled/cam"), 4, &out);
    wait_until(Duration::from_secs(20), "the source to connect", || {
        cam.readers("cam") == 1
    });
    let st = wait_child(&mut reader, Duration::from_secs(40), "on-demand reader");
    assert!(st.success());
    assert!(video_completeness(&out, 30.0) >= 0.9);
    wait_until(
        Duration::from_secs(10),
        "the reader to leave the edge",
        || edge.readers("pulled/cam") == 0,
    );
    let left = Instant::now();
    wait_until(Duration::from_secs(10), "the source to let go", || {
        cam.readers("cam") == 0
    });
    let after = left.elapsed();
    eprintln!("source closed {after:?} after the last reader left");
    // The source notices the last reader leave within 250 ms, and we notice it late by
    // our own polling: allow for both.
    assert!(
        after >= Duration::from_millis(700),
        "closed before sourceOnDemandCloseAfter: {after:?}"
    );
    assert!(edge.stream("pulled/cam").is_none());
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn clients_cannot_publish_to_a_sourced_path() {
    if !have_ffmpeg() {
        return;
    }
    let edge = TestServer::start("paths:\n  pulled:\n    source: rtsp://127.0.0.1:9/none\n");
    let mut p = publish(&clip(Clip::H264Aac, 10), &edge.url("pulled"), "tcp", false);
    let st = wait_child(&mut p, Duration::from_secs(20), "refused publisher");
    assert!(!st.success());
}
