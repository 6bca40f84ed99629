//! mediarouter-load counts what ffmpeg counts: one load-tool reader and one ffmpeg
//! reader of the same published clip must agree on the number of video frames within
//! 2 %, for every protocol the tool reads from mediarouter.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECS: u32 = 6;

/// The load tool's video frame count for its single reader of `url`.
fn load_tool_frames(url: &str, extra: &[&str], json: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args([
            "-n",
            "1",
            "--warmup",
            "0",
            "-d",
            "9",
            "--timeout",
            "15",
            "--json",
        ])
        .arg(json)
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load")
}

fn compare(
    read_url: impl Fn(&TestServer) -> String,
    ffmpeg_transport: &str,
    extra: &[&str],
    tag: &str,
) {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let clip = clip(Clip::H264AacOneGop, SECS);
    let mut publisher = publish_rtmp(&clip, &server.rtmp_url("live/cmp"), false);
    server.wait_stream("live/cmp");
    let url = read_url(&server);
    let json = dir.path().join(format!("{tag}.json"));
    let out = dir.path().join(format!("{tag}.mkv"));
    let mut tool = load_tool_frames(&url, extra, &json);
    let mut ffmpeg = read_to_file(&url, ffmpeg_transport, &out);

    wait_child(&mut publisher, Duration::from_secs(30), "publisher");
    wait_child(&mut ffmpeg, Duration::from_secs(30), "ffmpeg reader");
    let st = wait_child(&mut tool, Duration::from_secs(40), "mediarouter-load");
    assert!(st.success(), "mediarouter-load failed");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let tool_frames = report["readers"][0]["video_frames"].as_u64().unwrap();
    let ffmpeg_frames = probe(&out)
        .iter()
        .find(|s| s.codec == "h264")
        .expect("ffmpeg recorded video")
        .packets;
    let expected = u64::from(SECS) * 30;
    assert!(
        ffmpeg_frames as f64 >= expected as f64 * 0.95,
        "{tag}: ffmpeg got {ffmpeg_frames} of {expected} frames"
    );
    let diff = tool_frames.abs_diff(ffmpeg_frames) as f64 / ffmpeg_frames as f64;
    assert!(
        diff <= 0.02,
        "{tag}: mediarouter-load counted {tool_frames} video frames, ffmpeg {ffmpeg_frames}"
    );
    assert!(
        report["readers"][0]["ttff_ms"].as_f64().is_some(),
        "{tag}: no keyframe seen"
    );
}

#[test]
fn rtmp_counts_match_ffmpeg() {
    compare(|s| s.rtmp_url("live/cmp"), "tcp", &[], "rtmp");
}

#[test]
fn http_flv_counts_match_ffmpeg() {
    compare(|s| s.flv_url("live/cmp"), "tcp", &[], "flv");
}

#[test]
fn rtsp_tcp_counts_match_ffmpeg() {
    compare(
        |s| s.url("live/cmp"),
        "tcp",
        &["--rtsp-transport", "tcp"],
        "rtsp-tcp",
    );
}

#[test]
fn rtsp_udp_counts_match_ffmpeg() {
    compare(
        |s| s.url("live/cmp"),
        "udp",
        &["--rtsp-transport", "udp"],
        "rtsp-udp",
    );
}

/// The clip as FLV, which the load tool's publishers send.
fn flv_clip(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("clip.flv");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(clip(Clip::H264Aac, 4))
        .args(["-c", "copy", "-f", "flv"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success());
    out
}

/// The load tool's own publishers (RTSP or RTMP, two paths) feed its readers of the
/// other protocol: every reader connects and gets at least 90 % of the frames.
fn publish_and_read(publish: impl Fn(&TestServer) -> String, read: impl Fn(&TestServer) -> String) {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let clip = flv_clip(dir.path());
    let json = dir.path().join("out.json");
    let mut tool = Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args([
            "-n",
            "4",
            "--publishers",
            "2",
            "--warmup",
            "0.5",
            "-d",
            "3",
            "--fps",
            "30",
        ])
        .arg("--clip")
        .arg(&clip)
        .arg("--publish")
        .arg(publish(&server))
        .arg("--json")
        .arg(&json)
        .arg(read(&server))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load");
    let st = wait_child(&mut tool, Duration::from_secs(40), "mediarouter-load");
    assert!(st.success(), "mediarouter-load failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert_eq!(s["publishers"], 2, "{s}");
    assert_eq!(s["connected"], 4, "{s}");
    // Readers alternate between live/p0 and live/p1: all four connecting means both
    // publishers were up (a path without a publisher refuses readers).
    assert!(s["delivery_min"].as_f64().unwrap() >= 0.9, "{s}");
}

#[test]
fn rtsp_publishers_feed_rtmp_readers() {
    publish_and_read(|s| s.url("live/p{i}"), |s| s.rtmp_url("live/p{i}"));
}

#[test]
fn rtmp_publishers_feed_rtsp_readers() {
    publish_and_read(|s| s.rtmp_url("live/p{i}"), |s| s.url("live/p{i}"));
}

/// HLS readers of the load tool against mediarouter's own HLS: every reader gets
/// segments, no media sequence is skipped and ≥ 90 % of the frames arrive.
#[test]
fn hls_readers_follow_mediarouter_hls() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 10), &server.rtmp_url("live/hls"), true);
    server.wait_stream("live/hls");
    let url = format!(
        "http://{}/live/hls/index.m3u8",
        server.server.http_addr().unwrap()
    );
    let json = dir.path().join("hls.json");
    let mut tool = Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args([
            "-n",
            "3",
            "--warmup",
            "1",
            "-d",
            "4",
            "--fps",
            "30",
            "--timeout",
            "15",
            "--json",
        ])
        .arg(&json)
        .arg(&url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load");
    let st = wait_child(&mut tool, Duration::from_secs(40), "mediarouter-load");
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(st.success(), "mediarouter-load failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert_eq!(s["connected"], 3, "{s}");
    assert_eq!(s["gaps_total"], 0, "{s}");
    assert!(s["delivery_min"].as_f64().unwrap() >= 0.9, "{s}");
}

/// The load tool's latency for HLS readers: every frame of each fetched segment (MPEG-TS
/// PES or fMP4 sample) is matched to the moment its own publisher sent it.
fn hls_latency(variant: &str) {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start(&format!(
        "hlsVariant: {variant}\nhlsSegmentDuration: 1s\npaths:\n  all_others:\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let clip = flv_clip(dir.path());
    let json = dir.path().join("lat.json");
    let url = format!(
        "http://{}/live/lat/index.m3u8",
        server.server.http_addr().unwrap()
    );
    let mut tool = Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args(["-n", "2", "--warmup", "1", "-d", "4", "--fps", "30"])
        .args(["--timeout", "15", "--clip"])
        .arg(&clip)
        .arg("--publish")
        .arg(server.rtmp_url("live/lat"))
        .arg("--json")
        .arg(&json)
        .arg(&url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load");
    let st = wait_child(&mut tool, Duration::from_secs(40), "mediarouter-load");
    assert!(st.success(), "mediarouter-load failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert_eq!(s["connected"], 2, "{s}");
    // Two readers, at least two 1 s segments each in the window.
    assert!(s["latency_samples"].as_u64().unwrap() >= 100, "{s}");
    assert!(s["latency_median_ms"].as_f64().unwrap() > 0.0, "{s}");
}

#[test]
fn hls_mpegts_latency_per_frame() {
    hls_latency("mpegts");
}

#[test]
fn hls_fmp4_latency_per_frame() {
    hls_latency("fmp4");
}

/// WHEP viewers of the load tool (str0m) against mediarouter's WebRTC: each connects
/// over ICE/DTLS, none misses a sequence number by the end (loss is what NACKs didn't
/// bring back), and frames are matched to the tool's own publisher for latency.
#[test]
fn whep_viewers_get_every_packet_and_a_latency() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let clip = flv_clip(dir.path());
    let json = dir.path().join("out.json");
    let web = server.server.webrtc_addr().unwrap();
    let mut tool = Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args([
            "-n", "5", "--warmup", "1.5", "-d", "3", "--fps", "30", "--clip",
        ])
        .arg(&clip)
        .arg("--publish")
        .arg(server.rtmp_url("live/w"))
        .arg("--json")
        .arg(&json)
        .arg(format!("http://{web}/live/w/whep"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load");
    let st = wait_child(&mut tool, Duration::from_secs(60), "mediarouter-load");
    assert!(st.success(), "mediarouter-load failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert_eq!(s["protocol"], "webrtc", "{s}");
    assert_eq!(s["connected"], 5, "{s}");
    assert_eq!(s["gaps_total"], 0, "{s}");
    assert!(s["delivery_min"].as_f64().unwrap() >= 0.9, "{s}");
    assert!(s["latency_samples"].as_u64().unwrap() > 0, "{s}");
}

/// A WHEP viewer on a lossy link (the tool drops 30 % of what it receives) is told by
/// its receiver reports to skip to keyframes, once-per-burst in the log, while a
/// viewer beside it on a clean link misses nothing.
#[test]
fn a_lossy_whep_viewer_skips_ahead_and_a_clean_one_loses_nothing() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let _publisher = Children(vec![publish(&clip, &server.url("cam"), "tcp", true)]);
    server.wait_stream("cam");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/cam/whep", server.server.webrtc_addr().unwrap());
    let viewer = |drop: &str, json: &Path| {
        Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
            .args([
                "-n", "1", "--warmup", "2", "-d", "6", "--fps", "30", "--drop", drop, "--json",
            ])
            .arg(json)
            .arg(&url)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mediarouter-load")
    };
    let (lossy_json, clean_json) = (dir.path().join("lossy.json"), dir.path().join("clean.json"));
    let mut tools = Children(vec![viewer("0.3", &lossy_json), viewer("0", &clean_json)]);
    for t in tools.0.iter_mut() {
        assert!(wait_child(t, Duration::from_secs(60), "mediarouter-load").success());
    }
    let summary = |p: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()["summary"]
            .clone()
    };
    let clean = summary(&clean_json);
    assert_eq!(clean["gaps_total"], 0, "{clean}");
    assert!(clean["delivery_min"].as_f64().unwrap() >= 0.95, "{clean}");
    assert_eq!(summary(&lossy_json)["connected"], 1);
    let warns = logs().lines_with(
        "WARN",
        &["WebRTC viewer loses", "skipping to the next keyframe"],
    );
    assert!(!warns.is_empty() && warns.len() <= 2, "{warns:?}");
}
