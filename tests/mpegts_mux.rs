//! The MPEG-TS muxer against ffmpeg: a published clip's units, muxed as they arrive
//! from the stream, make a file ffprobe reads with every unit and ffmpeg decodes
//! without a single error.

mod common;

use bytes::Bytes;
use common::*;
use mediarouter::format::mpegts::TsMuxer;
use std::process::Command;
use std::time::Duration;

/// Muxes everything the stream at `path` carries until the publisher ends; returns
/// units written per track.
fn mux_stream(server: &TestServer, path: &str, out: &std::path::Path) -> Vec<u64> {
    let (tracks, units) = stream_units(server, path);
    let mut mux = TsMuxer::new(&tracks).expect("TS carries the video");
    let mut counts = vec![0u64; tracks.len()];
    let mut ts = Vec::new();
    mux.write_tables(&mut ts);
    for u in &units {
        // Tables again at each keyframe, as every HLS segment starts with them.
        if u.keyframe && tracks[u.track].codec.is_video() {
            mux.write_tables(&mut ts);
        }
        if mux.write(u, &mut ts) {
            counts[u.track] += 1;
        }
    }
    std::fs::write(out, Bytes::from(ts)).unwrap();
    counts
}

fn decodes_cleanly(file: &std::path::Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.trim().is_empty(), "ffmpeg decode errors: {err}");
}

#[test]
fn h264_aac_units_mux_into_ts_that_ffmpeg_decodes() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 4), &server.rtmp_url("live/ts"), false);
    let file = dir.path().join("out.ts");
    let counts = mux_stream(&server, "live/ts", &file);
    wait_child(&mut publisher, Duration::from_secs(20), "publisher");
    let probed = probe(&file);
    let video = probed
        .iter()
        .find(|s| s.codec == "h264")
        .expect("h264 stream");
    let audio = probed
        .iter()
        .find(|s| s.codec == "aac")
        .expect("aac stream");
    assert!(counts[0] >= 100, "{counts:?}");
    assert_eq!(video.packets, counts[0]);
    assert_eq!(audio.packets, counts[1]);
    assert_eq!((video.width, video.height), (640, 360));
    decodes_cleanly(&file);
}

#[test]
fn h265_units_mux_into_ts_that_ffmpeg_decodes() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = publish(
        &clip(Clip::H265Opus, 3),
        &server.url("live/hevc"),
        "tcp",
        false,
    );
    let file = dir.path().join("out.ts");
    let counts = mux_stream(&server, "live/hevc", &file);
    wait_child(&mut publisher, Duration::from_secs(20), "publisher");
    let probed = probe(&file);
    assert_eq!(probed.len(), 1, "Opus is not carried: {probed:?}");
    assert_eq!(probed[0].codec, "hevc");
    assert!(counts[0] >= 60, "{counts:?}");
    assert_eq!(probed[0].packets, counts[0]);
    decodes_cleanly(&file);
}
