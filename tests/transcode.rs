//! The transcode stage (feature `transcode`), on the CPU: 1080p H.264 in over RTSP,
//! 720p H.264 out to RTSP and HLS readers with the configured keyframe interval and the
//! audio kept; the input stays readable as `<path>/source`; with `fallback: copy` and
//! no NVENC the input passes through and the log says why; renditions (with audio
//! re-encoded to AAC) are paths and HLS variants; Opus audio becomes AAC, and AAC
//! becomes Opus that Chromium plays over WebRTC.
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

    // The API shows what the stage does (readers came, so the encoder has opened).
    let (code, body) = http::get(srv.server.api_addr().unwrap(), "/v3/paths/get/tc");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let tc = &v["transcode"];
    eprintln!("api: {tc}");
    assert!(
        tc["decision"].as_str().unwrap().contains("transcode tc:"),
        "{tc}"
    );
    assert_eq!(tc["outputs"][0]["path"], "tc", "{tc}");
    assert_eq!(tc["outputs"][0]["size"], "1280x720", "{tc}");
    let encoder = tc["outputs"][0]["encoder"].as_str().unwrap();
    assert!(["libx264", "h264_nvenc"].contains(&encoder), "{tc}");
    assert_eq!(tc["fallbacks"], 0, "{tc}");

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
        let (_, body) = http::get(srv.server.api_addr().unwrap(), "/v3/paths/get/cp");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["transcode"]["outputs"][0]["encoder"], "copy", "{v}");
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
    let r = mediarouter::transcode::bench::run(&conf, track, units, 1).unwrap();
    eprintln!("{r:?}");
    assert!(r.decision.contains("using libx264"), "{}", r.decision);
    assert_eq!(r.frames_out, 90);
}

/// Two outputs of one decode: the path at 720p and its rendition `360p`, both listed in
/// the path's HLS multivariant playlist and readable on their own.
#[test]
fn renditions_are_paths_and_hls_variants() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "hlsVariant: mpegts\npaths:\n  abr:\n    transcode:\n      hwaccel: none\n      video: {height: 720, bitrate: 1500k, preset: ultrafast}\n      fallback: software\n      audio: {codec: aac, bitrate: 64k}\n      renditions: [{name: 360p, height: 360, bitrate: 600k}]\n",
    );
    let mut publisher = publish(&clip(Clip::H264Aac1080, 10), &srv.url("abr"), "tcp", true);
    srv.wait_stream("abr");
    srv.wait_stream("abr/360p");
    let http = srv.server.http_addr().unwrap();
    let (status, body) = common::http::get(http, "/abr/index.m3u8");
    let text = String::from_utf8_lossy(&body);
    eprintln!("{text}");
    assert_eq!(status, 200, "{text}");
    let infos: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .collect();
    assert_eq!(infos.len(), 2, "{text}");
    for (info, res) in infos.iter().zip(["1280x720", "640x360"]) {
        assert!(info.contains(&format!("RESOLUTION={res}")), "{info}");
        assert!(
            info.contains("avc1.") && info.contains("mp4a.40.2"),
            "{info}"
        );
        let bw: u64 = info
            .split("BANDWIDTH=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(bw > 100_000, "{info}");
    }
    let uris: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(uris, ["stream.m3u8", "360p/stream.m3u8"]);
    for (url, size) in [
        (format!("http://{http}/abr/360p/stream.m3u8"), (640, 360)),
        (format!("http://{http}/abr/stream.m3u8"), (1280, 720)),
        (srv.url("abr/360p"), (640, 360)),
    ] {
        let (_d, out) = record(&url, 3);
        let video = probe(&out)
            .into_iter()
            .find(|s| s.codec == "h264")
            .expect("video");
        assert_eq!((video.width, video.height), size, "{url}");
    }
    // A rendition is written by the stage only.
    let mut c = RawClient::connect(srv.addr);
    let r = c.request(
        "ANNOUNCE",
        &srv.url("abr/360p"),
        &[("Content-Type", "application/sdp")],
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
    );
    assert_eq!(r.status, 400);
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// A reader of a rendition of an on-demand pulled path starts the path's source.
#[test]
fn a_rendition_reader_starts_an_on_demand_source() {
    if !have_ffmpeg() {
        return;
    }
    let (cams, _publishers) = cameras("", &["cam"]);
    let srv = TestServer::start(&format!(
        "paths:\n  tc:\n    source: {}\n    sourceOnDemand: yes\n    transcode:\n      hwaccel: none\n      video: {{height: 180, preset: ultrafast}}\n      fallback: software\n      renditions: [{{name: low, height: 120, bitrate: 200k}}]\n",
        cams.url("cam")
    ));
    assert_eq!(cams.readers("cam"), 0);
    let (_d, out) = record(&srv.url("tc/low"), 2);
    let video = probe(&out)
        .into_iter()
        .find(|s| s.codec == "h264")
        .expect("video");
    assert_eq!(video.height, 120);
    assert_eq!(cams.readers("cam"), 1);
}

/// `audio: {codec: aac}` turns an Opus publisher's audio into AAC, with the video
/// passed through (`codec: copy`), so RTMP, HTTP-FLV and MPEG-TS can carry it.
#[test]
fn opus_audio_becomes_aac() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "paths:\n  op:\n    transcode:\n      video: {codec: copy}\n      audio: {codec: aac, bitrate: 96k}\n",
    );
    let mut publisher = publish(&clip(Clip::H265Opus, 10), &srv.url("op"), "tcp", true);
    srv.wait_stream("op");
    let (_d, out) = record(&srv.url("op"), 4);
    let probed = probe(&out);
    eprintln!("{probed:?}");
    let audio = probed.iter().find(|s| s.codec == "aac").expect("AAC audio");
    assert_eq!(audio.sample_rate, 48000);
    // 4 s of 1024-sample frames at 48 kHz, give or take the first and last.
    assert!(audio.packets >= 170, "{audio:?}");
    let video = probed
        .iter()
        .find(|s| s.codec == "hevc")
        .expect("video untouched");
    assert_eq!((video.width, video.height), (320, 240));
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// An AAC camera gets sound in browsers: `audio: {codec: opus}` re-encodes its AAC
/// (44.1 kHz) to Opus at 48 kHz once for the path, the video passes through, and
/// Chromium's WebRTC page plays both.
#[test]
fn aac_becomes_opus_and_plays_over_webrtc() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "paths:\n  cam:\n    transcode:\n      video: {codec: copy}\n      audio: {codec: opus, bitrate: 64k}\n",
    );
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("cam"), "tcp", true);
    let stream = srv.wait_stream("cam");
    let names: Vec<String> = stream
        .tracks()
        .iter()
        .map(|t| t.codec.name().to_string())
        .collect();
    assert_eq!(names, ["H264", "Opus"]);
    let (_d, out) = record(&srv.url("cam"), 4);
    let probed = probe(&out);
    eprintln!("{probed:?}");
    let audio = probed
        .iter()
        .find(|s| s.codec == "opus")
        .expect("Opus audio");
    assert_eq!(audio.sample_rate, 48000);
    // 4 s of 20 ms frames, give or take the first and last.
    assert!(audio.packets >= 150, "{audio:?}");
    if have_browser(&[]) {
        let web = srv.server.webrtc_addr().unwrap();
        let (ok, out) = node("webrtc_read.mjs", &[&format!("http://{web}/cam/"), "3"]);
        assert!(ok, "{out}");
        let r = common::webrtc::stats(&out);
        assert!(
            common::webrtc::rose(&r, "audioSamples"),
            "audio samples did not rise every second: {out}"
        );
        assert_eq!(r["note"], "", "{out}");
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
}
