//! A real browser plays HTTP-FLV: mpegts.js in headless Chromium (Debian `chromium`,
//! `playwright-core` and `mpegts.js` from npm in tests/browser) must advance the
//! video's currentTime past 3 s.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn mpegts_js_plays_http_flv_in_chromium() {
    if !have_ffmpeg() || !have_browser(&["mpegts.js"]) {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let mut publisher = publish(&clip, &srv.url("live/room"), "tcp", true);
    srv.wait_stream("live/room");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/flv_play.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(srv.flv_url("live/room"))
        .arg("3")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, Duration::from_secs(90), "node flv_play.mjs");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    eprintln!("browser: {out}");
    assert!(status.success(), "browser playback failed: {out}");
    assert!(out.contains("\"width\":640"), "{out}");
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}
