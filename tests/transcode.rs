//! The transcode stage (feature `transcode`), on the CPU: 1080p H.264 in over RTSP,
//! 720p H.264 out to RTSP and HLS readers with the configured keyframe interval and the
//! audio kept; the input stays readable as `<path>/source`; with `fallback: copy` and
//! no NVENC the input passes through and the log says why.
#![cfg(feature = "transcode")]

mod common;

use common::*;
use std::time::Duration;

fn record(url: &str, secs: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(url, secs, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(60), url).success());
    (dir, out)
}

#[test]
fn software_transcode_serves_720p_to_rtsp_and_hls() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "hlsVariant: mpegts\npaths:\n  tc:\n    transcode:\n      hwaccel: auto\n      video: {codec: h264, height: 720, bitrate: 1500k, gop: 2s}\n      fallback: software\n",
    );
    let mut publisher = publish(&clip(Clip::H264Aac1080, 10), &srv.url("tc"), "tcp", true);
    srv.wait_stream("tc");
    let decision = logs().lines_with("INFO", &["transcode tc:"]);
    eprintln!("{decision:?}");
    assert!(decision
        .iter()
        .any(|l| l.contains("using libx264") || l.contains("nvenc yes")));

    let (_d, out) = record(&srv.url("tc"), 8);
    let probed = probe(&out);
    let video = probed.iter().find(|s| s.codec == "h264").expect("video");
    assert_eq!((video.width, video.height), (1280, 720), "{probed:?}");
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    let complete = video_completeness(&out, 30.0);
    let keys = keyframe_times(&out);
    let intervals: Vec<f64> = keys.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "transcoded rtsp: {} frames, completeness {complete:.3}, keyframe intervals {intervals:?}",
        video.packets
    );
    assert!(complete >= 0.9, "{complete}");
    assert!(!intervals.is_empty(), "fewer than two keyframes in 8 s");
    for i in &intervals {
        assert!((i - 2.0).abs() < 0.05, "keyframe interval {i} s, want 2 s");
    }

    let hls = format!("http://{}/tc/index.m3u8", srv.server.http_addr().unwrap());
    let (_d2, out) = record(&hls, 4);
    let probed = probe(&out);
    let video = probed
        .iter()
        .find(|s| s.codec == "h264")
        .expect("HLS video");
    assert_eq!((video.width, video.height), (1280, 720), "{probed:?}");

    // The untouched input.
    let (_d3, out) = record(&srv.url("tc/source"), 2);
    let video = probe(&out)
        .into_iter()
        .find(|s| s.codec == "h264")
        .expect("input");
    assert_eq!((video.width, video.height), (1920, 1080));
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn fallback_copy_passes_the_input_through_without_nvenc() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "paths:\n  cp:\n    transcode:\n      video: {codec: h264, height: 360}\n      fallback: copy\n",
    );
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("cp"), "tcp", true);
    srv.wait_stream("cp");
    let decision = logs().lines_with("INFO", &["transcode cp:"]);
    assert_eq!(decision.len(), 1, "{decision:?}");
    let (_d, out) = record(&srv.url("cp"), 3);
    let video = probe(&out)
        .into_iter()
        .find(|s| s.codec == "h264")
        .expect("video");
    if decision[0].contains("nvenc yes") {
        // A host with NVENC transcodes; this test is about hosts without.
        assert_eq!(video.height, 360);
    } else {
        assert!(
            decision[0].contains("nvenc no (") && decision[0].contains("fallback copy"),
            "{}",
            decision[0]
        );
        assert_eq!((video.width, video.height), (640, 360));
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// The benchmark entry point transcodes every frame of a recording.
#[test]
fn the_bench_transcodes_every_frame_of_a_recording() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("in.ts");
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(clip(Clip::H264Aac, 10))
        .args(["-t", "3", "-an", "-c", "copy", "-f", "mpegts"])
        .arg(&ts)
        .status()
        .unwrap();
    assert!(st.success());
    let (track, units) =
        mediarouter::transcode::bench::units_from_ts(&std::fs::read(&ts).unwrap()).unwrap();
    assert_eq!(units.len(), 90);
    assert!(units[0].keyframe);
    let conf = serde_saphyr::from_str(
        "{hwaccel: none, video: {height: 180, bitrate: 300k, gop: 500ms}, fallback: software}",
    )
    .unwrap();
    let r = mediarouter::transcode::bench::run(&conf, track, units).unwrap();
    eprintln!("{r:?}");
    assert!(r.decision.contains("using libx264"), "{}", r.decision);
    assert_eq!(r.frames_out, 90);
}
