//! The player page plays in a real browser: headless Chromium (Debian `chromium`,
//! `playwright-core` from npm in tests/browser) opens `http://…/<path>/`, whose hls.js
//! (embedded in the binary) must advance the video's currentTime past 3 s. A
//! screenshot goes to `target/test-artifacts/`. A path without publisher shows a
//! message saying so.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn plays(variant: &str, screenshot: &str) {
    let srv = TestServer::start(&format!("hlsVariant: {variant}\npaths:\n  all_others:\n"));
    let mut publisher = publish(&clip(Clip::H264Aac, 6), &srv.url("cam1"), "tcp", true);
    srv.wait_stream("cam1");
    let http = srv.server.http_addr().unwrap();
    let shot = artifact(screenshot);
    let _ = std::fs::remove_file(&shot);
    let (ok, out) = node(
        "hls_page.mjs",
        &[&format!("http://{http}/cam1/"), "3", shot.to_str().unwrap()],
    );
    eprintln!("browser: {out}");
    assert!(ok, "player page did not play {variant}: {out}");
    assert!(out.contains("\"width\":640"), "{out}");
    assert!(
        out.contains("\"offsite\":[]"),
        "page loaded something off-site: {out}"
    );
    assert!(shot.exists(), "no screenshot");
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}

#[test]
fn player_page_plays_low_latency_hls_in_chromium() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    plays("lowLatency", "hls-player-lowLatency.png");
}

#[test]
fn player_page_plays_mpegts_hls_in_chromium() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    plays("mpegts", "hls-player-mpegts.png");
}

#[test]
fn player_page_says_when_the_stream_is_offline() {
    if !have_browser(&[]) {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let http = srv.server.http_addr().unwrap();
    let (ok, out) = node("hls_offline.mjs", &[&format!("http://{http}/nobody/here/")]);
    assert!(ok, "{out}");
    assert!(out.contains("nobody/here"), "{out}");
    assert!(out.contains("offline"), "{out}");
}

/// With read locked to a user, the player page asks (401, Basic); answered, it plays,
/// its playlist and segment requests carrying the credentials the browser keeps.
#[test]
fn player_page_plays_after_the_browser_asks_for_credentials() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let srv = TestServer::start(
        "authInternalUsers:\n  - user: any\n    permissions: [{action: publish}]\n  - user: viewer\n    pass: page-Secret\n    permissions: [{action: read}]\npaths:\n  all_others:\n",
    );
    let _publisher = Children(vec![publish(
        &clip(Clip::H264Aac, 6),
        &srv.url("cam1"),
        "tcp",
        true,
    )]);
    srv.wait_stream("cam1");
    let http = srv.server.http_addr().unwrap();
    let page = format!("http://{http}/cam1/");
    let shot = artifact("hls-player-auth.png");
    let (ok, out) = node_with(
        "hls_page.mjs",
        &[&page, "3", shot.to_str().unwrap()],
        &[("HTTP_USER", "viewer"), ("HTTP_PASS", "page-Secret")],
    );
    assert!(ok, "the page did not play with credentials: {out}");
    let (ok, out) = node_with(
        "hls_page.mjs",
        &[&page, "1", ""],
        &[("HTTP_USER", "viewer"), ("HTTP_PASS", "wrong-Secret")],
    );
    assert!(!ok, "the page played with a wrong password: {out}");
}
