//! HLS sources: a path with `source: http://…/index.m3u8` follows another server's
//! HLS output (MPEG-TS, and fMP4 of Low-Latency HLS) and an RTSP reader gets ≥ 90 %
//! of the frames, both tracks.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn an_mpegts_hls_source_feeds_rtsp_readers() {
    pulls("mpegts");
}

#[test]
fn an_fmp4_hls_source_feeds_rtsp_readers() {
    pulls("lowLatency");
}

fn pulls(variant: &str) {
    if !have_ffmpeg() {
        return;
    }
    let cam = TestServer::start(&format!(
        "hlsVariant: {variant}\nhlsAlwaysRemux: yes\npaths:\n  all_others:\n"
    ));
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &cam.url("cam"), "tcp", true);
    cam.wait_stream("cam");
    let http = cam.server.http_addr().unwrap();
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: http://{http}/cam/index.m3u8\n"
    ));
    edge.wait_stream("pulled");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&edge.url("pulled"), 6, &out);
    let st = wait_child(&mut reader, Duration::from_secs(40), "RTSP reader");
    assert!(st.success());
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    let video = probed.iter().find(|s| s.codec == "h264").expect("video");
    assert_eq!((video.width, video.height), (640, 360));
    let complete = video_completeness(&out, 30.0);
    eprintln!(
        "{variant} hls source → rtsp: {} frames, completeness {complete:.3}",
        video.packets
    );
    assert!(complete >= 0.9, "{complete}");
    let _ = publisher.kill();
    let _ = publisher.wait();
}
