//! HLS over HTTP: publish over RTMP or RTSP, then ffmpeg reads
//! `http://…/<path>/index.m3u8` and gets both tracks and ≥ 90 % of the frames; the
//! media playlist served parses with m3u8-rs and starts with a keyframe segment.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A blocking HTTP/1.0 GET: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

fn read_hls(server: &TestServer, path: &str) {
    let http = server.server.http_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let url = format!("http://{http}/{path}/index.m3u8");
    let mut reader = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i", &url])
        .args(["-t", "8", "-c", "copy", "-y"])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    let st = wait_child(&mut reader, Duration::from_secs(40), "ffmpeg HLS reader");
    assert!(st.success(), "ffmpeg could not read {url}");
    let probed = probe(&out);
    let video = probed
        .iter()
        .find(|s| s.codec == "h264")
        .expect("video track");
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    assert!(
        video.packets >= 200,
        "{} video frames in 8 s",
        video.packets
    );
    let complete = video_completeness(&out, 30.0);
    assert!(complete >= 0.9, "{complete}");

    let (status, body) = get(http, &format!("/{path}/stream.m3u8"));
    assert_eq!(status, 200);
    let pl = match m3u8_rs::parse_playlist_res(&body).unwrap() {
        m3u8_rs::Playlist::MediaPlaylist(m) => m,
        other => panic!("{other:?}"),
    };
    assert!(!pl.segments.is_empty());
    assert!(pl.segments.len() <= 7);
    assert!(pl.target_duration >= 1);
    let (status, seg) = get(http, &format!("/{path}/{}", pl.segments[0].uri));
    assert_eq!(status, 200);
    assert_eq!(seg.len() % 188, 0);
    assert_eq!(seg[0], 0x47);
}

#[test]
fn ffmpeg_reads_hls_of_an_rtmp_publisher() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 10), &server.rtmp_url("live/h1"), true);
    server.wait_stream("live/h1");
    read_hls(&server, "live/h1");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn ffmpeg_reads_hls_of_an_rtsp_publisher() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let mut publisher = publish(
        &clip(Clip::H264Aac, 10),
        &server.url("live/h2"),
        "tcp",
        true,
    );
    server.wait_stream("live/h2");
    read_hls(&server, "live/h2");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn unknown_paths_and_segments_are_404() {
    let server = TestServer::start("paths:\n  all_others:\n");
    let http = server.server.http_addr().unwrap();
    assert_eq!(get(http, "/nobody/index.m3u8").0, 404);
    assert_eq!(get(http, "/nobody/seg3.ts").0, 404);
}
