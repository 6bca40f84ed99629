//! WebRTC publishers (WHIP): headless Chromium's publish page sends a canvas and a tone
//! as H.264 and Opus, and ffmpeg reads the path over RTSP and HLS (the server asks the
//! browser for keyframes, which HLS segments start at).

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn chromium_publishes_over_whip_and_ffmpeg_reads_rtsp_and_hls() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let browser_running = browser_lock();
    let srv = TestServer::start("hlsVariant: mpegts\npaths:\n  all_others:\n");
    let web = srv.server.webrtc_addr().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/webrtc_publish.mjs");
    let browser = Command::new("node")
        .arg(&script)
        .args([&format!("http://{web}/studio/publish?source=canvas"), "14"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut browser = Children(vec![browser]);
    let stream = srv.wait_stream("studio");
    let codecs: Vec<String> = stream
        .tracks()
        .iter()
        .map(|t| t.codec.name().to_string())
        .collect();
    assert_eq!(codecs, ["H264", "Opus"]);
    let rtsp = ffmpeg_decoded(&[
        "-rtsp_transport",
        "tcp",
        "-t",
        "3",
        "-i",
        &srv.url("studio"),
    ])
    .unwrap_or_else(|e| panic!("RTSP: {e}"));
    assert!(rtsp >= 45, "RTSP reader decoded {rtsp} frames in 3 s");
    let http = srv.server.http_addr().unwrap();
    let hls = ffmpeg_decoded(&["-t", "2", "-i", &format!("http://{http}/studio/index.m3u8")])
        .unwrap_or_else(|e| panic!("HLS: {e}"));
    assert!(hls >= 30, "HLS reader decoded {hls} frames of 2 s");
    let child = &mut browser.0[0];
    let status = wait_child(child, Duration::from_secs(60), "the publishing browser");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("video/H264"), "{out}");
    drop(browser_running);
    wait_until(Duration::from_secs(20), "the publisher to leave", || {
        srv.stream("studio").is_none()
    });
    let log = logs().text();
    assert!(log.contains("WebRTC publisher closed"), "{log}");
}

/// A WHIP publisher that sends VP8 (no H.264 in its offer) is passed through: RTSP
/// readers get VP8, and Chromium's WebRTC page decodes it.
#[test]
fn a_vp8_publisher_reaches_rtsp_and_webrtc_readers() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let _browsers = browser_lock();
    let srv = TestServer::start("paths:\n  all_others:\n");
    let web = srv.server.webrtc_addr().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/webrtc_publish.mjs");
    let browser = Command::new("node")
        .arg(&script)
        .args([
            &format!("http://{web}/v/publish?source=canvas&codec=vp8"),
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _browser = Children(vec![browser]);
    let stream = srv.wait_stream("v");
    assert_eq!(stream.tracks()[0].codec.name(), "VP8");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(srv.url("v"))
        .output()
        .unwrap();
    let codecs = String::from_utf8_lossy(&out.stdout);
    assert!(
        codecs.contains("vp8") && codecs.contains("opus"),
        "{codecs}"
    );
    // The publishing browser runs beside this one: count frames over the window
    // rather than asking for some in every second.
    let (_, out) = node_holding_lock("webrtc_read.mjs", &[&format!("http://{web}/v/"), "3"], &[]);
    let r = common::webrtc::stats(&out);
    let decoded: Vec<u64> = r["decoded"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    assert!(
        decoded.last().unwrap_or(&0) - decoded.first().unwrap_or(&0) >= 30,
        "VP8 not decoded: {out}"
    );
}
