//! HLS MPEG-TS segments and playlist, written to disk from a published stream: every
//! segment starts with a keyframe, every `#EXTINF` is within 5 % of what ffprobe
//! measures, the playlist parses with m3u8-rs, and ffmpeg reads the whole playlist
//! back with both tracks and ≥ 90 % of the frames.

mod common;

use common::*;
use mediarouter::format::m3u8::{MediaPlaylist, SegmentEntry};
use mediarouter::hls::segmenter::TsSegmenter;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

/// (first video packet is a keyframe, media duration in seconds) by ffprobe.
fn probe_segment(file: &Path) -> (bool, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=dts_time,duration_time,flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success());
    let rows: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert!(!rows.is_empty(), "{file:?} has no video packets");
    let key = rows[0][2].starts_with('K');
    let dts: Vec<f64> = rows.iter().filter_map(|r| r[0].parse().ok()).collect();
    let frame = rows[0][1].parse::<f64>().unwrap_or(1.0 / 30.0);
    (key, dts[dts.len() - 1] - dts[0] + frame)
}

#[test]
fn ts_segments_start_on_keyframes_with_honest_durations_and_play_back() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start("paths:\n  all_others:\n");
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 6), &server.rtmp_url("live/hls"), false);
    let (tracks, units) = stream_units(&server, "live/hls");
    wait_child(&mut publisher, Duration::from_secs(20), "publisher");

    let mut seg = TsSegmenter::new(&tracks, Duration::from_secs(1), SystemTime::now()).unwrap();
    let mut segments: Vec<_> = units.iter().filter_map(|u| seg.push(u)).collect();
    segments.extend(seg.finish());
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let mut entries = Vec::new();
    for s in &segments {
        let name = format!("seg{}.ts", s.seq);
        std::fs::write(dir.path().join(&name), &s.data).unwrap();
        entries.push(SegmentEntry {
            uri: name,
            duration: s.duration,
            start: s.start,
            discontinuity: s.discontinuity,
            map: None,
            parts: Vec::new(),
            complete: true,
        });
    }
    let mut text = MediaPlaylist {
        media_sequence: 0,
        discontinuity_sequence: 0,
        segments: &entries,
        low_latency: None,
        min_target_duration: 0,
    }
    .render();
    text.push_str("#EXT-X-ENDLIST\n");
    let playlist = dir.path().join("index.m3u8");
    std::fs::write(&playlist, &text).unwrap();

    let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
        m3u8_rs::Playlist::MediaPlaylist(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(parsed.segments.len(), segments.len());
    for (entry, s) in parsed.segments.iter().zip(&entries) {
        let (key, real) = probe_segment(&dir.path().join(&s.uri));
        assert!(key, "{} does not start with a keyframe", s.uri);
        let listed = f64::from(entry.duration);
        assert!(
            (listed - real).abs() <= 0.05 * real,
            "{}: EXTINF {listed} but {real} s of media",
            s.uri
        );
    }

    let out = dir.path().join("out.mkv");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&playlist)
        .args(["-c", "copy", "-y"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success());
    let probed = probe(&out);
    let video = probed.iter().find(|s| s.codec == "h264").expect("video");
    let audio = probed.iter().find(|s| s.codec == "aac").expect("audio");
    let sent_video = units.iter().filter(|u| u.track == 0).count() as f64;
    assert!(
        video.packets as f64 >= 0.9 * sent_video,
        "{} of {sent_video}",
        video.packets
    );
    assert!(audio.packets > 0);
}
