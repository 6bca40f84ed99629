//! HLS out, per variant (mpegts, fmp4, lowLatency) and publisher (RTSP, RTMP): ffmpeg
//! reads `http://…/<path>/index.m3u8` for 10 s and gets both tracks and ≥ 90 % of the
//! frames; the media playlist parses with m3u8-rs, every `#EXTINF` is within 5 % of
//! its segment's real duration and every segment starts with a keyframe.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::http::get;

fn server(variant: &str) -> TestServer {
    TestServer::start(&format!("hlsVariant: {variant}\npaths:\n  all_others:\n"))
}

fn media_playlist(http: SocketAddr, path: &str) -> m3u8_rs::MediaPlaylist {
    let (status, body) = get(http, &format!("/{path}/stream.m3u8"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    match m3u8_rs::parse_playlist_res(&body) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
        other => panic!("{other:?}: {}", String::from_utf8_lossy(&body)),
    }
}

/// Video frames in a segment (prefixed by its init section for fMP4) and whether the
/// first one is a keyframe, as ffprobe reads them.
fn segment_frames(dir: &Path, name: &str, data: &[u8]) -> (usize, bool) {
    let file = dir.join(name);
    std::fs::write(&file, data).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=flags", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (
        flags.len(),
        flags.first().is_some_and(|f| f.starts_with('K')),
    )
}

/// Every listed segment: `#EXTINF` within 5 % of its frames at 30 fps, keyframe first.
fn check_segments(http: SocketAddr, path: &str) {
    let pl = media_playlist(http, path);
    assert!(!pl.segments.is_empty() && pl.segments.len() <= 7);
    let dir = tempfile::tempdir().unwrap();
    let mut init = Vec::new();
    for seg in &pl.segments {
        if let Some(map) = &seg.map {
            let (status, data) = get(http, &format!("/{path}/{}", map.uri));
            assert_eq!(status, 200);
            init = data;
        }
        let (status, data) = get(http, &format!("/{path}/{}", seg.uri));
        if status == 404 {
            continue; // left the window since the playlist was read
        }
        assert_eq!(status, 200);
        let mut file = init.clone();
        file.extend_from_slice(&data);
        let (frames, key_first) = segment_frames(dir.path(), &seg.uri, &file);
        let real = frames as f64 / 30.0;
        let listed = f64::from(seg.duration);
        eprintln!("{path}/{}: EXTINF {listed}, {frames} frames", seg.uri);
        assert!(
            (listed - real).abs() <= 0.05 * listed,
            "{}: EXTINF {listed} but {frames} frames",
            seg.uri
        );
        assert!(key_first, "{} does not start with a keyframe", seg.uri);
    }
}

fn read_hls(server: &TestServer, path: &str) {
    let http = server.server.http_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let url = format!("http://{http}/{path}/index.m3u8");
    let mut reader = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i", &url])
        .args(["-t", "10", "-c", "copy", "-y"])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    let st = wait_child(&mut reader, Duration::from_secs(60), "ffmpeg HLS reader");
    assert!(st.success(), "ffmpeg could not read {url}");
    let probed = probe(&out);
    let video = probed.iter().find(|s| s.codec == "h264").expect("video");
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    assert!(
        video.packets >= 270,
        "{} video frames in 10 s",
        video.packets
    );
    let complete = video_completeness(&out, 30.0);
    eprintln!(
        "{path}: {} video frames in 10 s, completeness {complete:.4}",
        video.packets
    );
    assert!(complete >= 0.9, "{complete}");
    check_segments(http, path);
}

fn rtsp(variant: &str) {
    if !have_ffmpeg() {
        return;
    }
    let server = server(variant);
    let path = format!("live/{variant}-rtsp");
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &server.url(&path), "tcp", true);
    server.wait_stream(&path);
    read_hls(&server, &path);
    let _ = publisher.kill();
    let _ = publisher.wait();
}

fn rtmp(variant: &str) {
    if !have_ffmpeg() {
        return;
    }
    let server = server(variant);
    let path = format!("live/{variant}-rtmp");
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 10), &server.rtmp_url(&path), true);
    server.wait_stream(&path);
    read_hls(&server, &path);
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn mpegts_from_rtsp() {
    rtsp("mpegts");
}

#[test]
fn mpegts_from_rtmp() {
    rtmp("mpegts");
}

#[test]
fn fmp4_from_rtsp() {
    rtsp("fmp4");
}

#[test]
fn fmp4_from_rtmp() {
    rtmp("fmp4");
}

#[test]
fn low_latency_from_rtsp() {
    rtsp("lowLatency");
}

#[test]
fn low_latency_from_rtmp() {
    rtmp("lowLatency");
}

/// fMP4 carries H.265 with AAC or Opus (MPEG-TS here carries neither H.265 + Opus).
#[test]
fn h265_with_aac_or_opus_over_fmp4() {
    if !have_ffmpeg() {
        return;
    }
    for (variant, audio) in [("fmp4", "aac"), ("lowLatency", "opus")] {
        let server = server(variant);
        // The H.265 + Opus clip, its audio re-encoded by the publisher for AAC.
        let extra: &[&str] = if audio == "aac" {
            &["-c:a", "aac", "-b:a", "64k"]
        } else {
            &[]
        };
        let mut publisher = publish_with(
            &clip(Clip::H265Opus, 10),
            &server.url("cam"),
            "tcp",
            true,
            extra,
        );
        server.wait_stream("cam");
        let http = server.server.http_addr().unwrap();
        let (status, body) = get(http, "/cam/index.m3u8");
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("CODECS=\"hvc1.1.6.L"), "{text}");
        let named = if audio == "aac" {
            ",mp4a.40.2\""
        } else {
            ",opus\""
        };
        assert!(text.contains(named), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.mkv");
        let mut reader = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(format!("http://{http}/cam/index.m3u8"))
            .args(["-t", "4", "-c", "copy", "-y"])
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let st = wait_child(&mut reader, Duration::from_secs(40), "ffmpeg HLS reader");
        assert!(st.success(), "{variant}");
        let probed = probe(&out);
        let video = probed.iter().find(|s| s.codec == "hevc").expect("hevc");
        let sound = probed.iter().find(|s| s.codec == audio).expect(audio);
        assert!(video.packets >= 90, "{variant}: {probed:?}");
        assert!(sound.packets >= 100, "{variant}: {probed:?}");
        assert_eq!((video.width, video.height), (320, 240));
        let _ = publisher.kill();
        let _ = publisher.wait();
    }
}

/// MPEG-TS has no Opus mapping here: the playlist names the video alone and the muxer
/// says, in one warn, what it leaves out.
#[test]
fn mpegts_leaves_out_opus_and_says_so() {
    if !have_ffmpeg() {
        return;
    }
    let server = server("mpegts");
    let mut publisher = publish(
        &clip(Clip::H265Opus, 10),
        &server.url("tsopus"),
        "tcp",
        true,
    );
    server.wait_stream("tsopus");
    let http = server.server.http_addr().unwrap();
    let (status, body) = get(http, "/tsopus/index.m3u8");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("CODECS=\"hvc1.1.6.L"), "{text}");
    assert!(!text.contains("opus"), "{text}");
    let warns = logs().lines_with("WARN", &["tsopus", "HLS muxer leaves out Opus"]);
    assert_eq!(warns.len(), 1, "{warns:?}");
    let _ = publisher.kill();
    let _ = publisher.wait();
}
