//! Recording what the server serves, the way NVRs and people do: `ffmpeg -t 5 -i URL
//! -c copy` into .mkv, .mp4, .ts and 2 s .mp4 segments (Frigate-style) at once, for
//! every read protocol, H.264 and H.265, with and without B-frames. Each recording
//! holds the window's frames (±1 GOP) and ffmpeg prints no timestamp warning.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Seconds of input each reader records.
const WINDOW: u32 = 5;
const FPS: u64 = 30;
const GOP: u64 = 30;

/// What ffmpeg prints when the timestamps it reads are wrong.
const TIMESTAMP_WARNINGS: &[&str] = &[
    "Timestamps are unset",
    "unknown timestamp",
    "Non-monotonous DTS",
    "Invalid DTS",
];

/// The published clips, each on the path named after it.
const CLIPS: &[(Clip, &str)] = &[
    (Clip::H264Aac, "h264"),
    (Clip::H264BframesAac, "h264b"),
    (Clip::H265Aac, "h265"),
    (Clip::H265BframesAac, "h265b"),
];

/// A server with every clip published over RTSP (looped), each stream past its first
/// GOP, so that readers join mid-stream as they do in practice.
fn cameras(extra: &str) -> (TestServer, Children) {
    let srv = TestServer::start(&format!(
        "hlsAlwaysRemux: yes\n{extra}paths:\n  all_others:\n"
    ));
    let publishers = CLIPS
        .iter()
        .map(|(c, path)| publish(&clip(*c, 10), &srv.url(path), "tcp", true))
        .collect();
    let publishers = Children(publishers);
    for (_, path) in CLIPS {
        wait_past_first_gop(&srv, path);
    }
    (srv, publishers)
}

fn wait_past_first_gop(srv: &TestServer, path: &str) {
    let stream = srv.wait_stream(path);
    wait_until(Duration::from_secs(20), "a second GOP", || {
        stream.units_per_track()[0] > GOP + 5
    });
}

struct Recording {
    label: String,
    dir: PathBuf,
    child: Child,
    /// H.265 with B-frames over RTSP: see `check`.
    dts_guessed: bool,
}

/// Starts ffmpeg recording `url` for `WINDOW` seconds into every container at once.
fn record(label: &str, url: &str, rtsp_transport: Option<&str>, root: &Path) -> Recording {
    let dir = root.join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    if let Some(t) = rtsp_transport {
        cmd.args(["-rtsp_transport", t]);
    }
    cmd.args(["-t", &WINDOW.to_string(), "-i", url]);
    for out in ["a.mkv", "b.mp4", "c.ts"] {
        cmd.args(["-map", "0", "-c", "copy", "-y"])
            .arg(dir.join(out));
    }
    cmd.args([
        "-map",
        "0",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_time",
        "2",
    ])
    .args(["-reset_timestamps", "1", "-y"])
    .arg(dir.join("seg%03d.mp4"));
    let child = cmd
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .expect("spawn ffmpeg recorder");
    Recording {
        label: label.to_string(),
        dir,
        child,
        dts_guessed: label.contains("h265b") && rtsp_transport.is_some(),
    }
}

/// Waits for every recording, then checks each: no timestamp warning, the window's
/// frames (±1 GOP) in every container, audio too, and at least two segments.
fn check(mut recordings: Vec<Recording>) {
    let mut failures = Vec::new();
    for r in &mut recordings {
        let st = wait_child(&mut r.child, Duration::from_secs(60), &r.label);
        let stderr = std::fs::read_to_string(r.dir.join("stderr.txt")).unwrap_or_default();
        if !st.success() {
            failures.push(format!("{}: ffmpeg failed ({st}): {stderr}", r.label));
            continue;
        }
        // FFmpeg's RTP reader has no decode times and guesses them from presentation
        // times; for H.265 (unlike H.264) it guesses the first few of a B-frame stream
        // one frame off now and then, and its muxers then print "Non-monotonous DTS" /
        // "Invalid DTS" while fixing them up. The server can't send DTS over RTP.
        let forbidden: &[&str] = if r.dts_guessed {
            &TIMESTAMP_WARNINGS[..2]
        } else {
            TIMESTAMP_WARNINGS
        };
        for w in forbidden {
            if stderr.contains(w) {
                failures.push(format!("{}: ffmpeg printed {w:?}:\n{stderr}", r.label));
            }
        }
        let want = u64::from(WINDOW) * FPS;
        for file in ["a.mkv", "b.mp4", "c.ts"] {
            let streams = probe(&r.dir.join(file));
            let video = streams
                .iter()
                .find(|s| s.width > 0)
                .map_or(0, |s| s.packets);
            let audio = streams
                .iter()
                .find(|s| s.sample_rate > 0)
                .map_or(0, |s| s.packets);
            eprintln!("{} {file}: {video} video, {audio} audio packets", r.label);
            if video.abs_diff(want) > GOP || audio == 0 {
                failures.push(format!(
                    "{} {file}: {video} video frames (want {want} ± {GOP}), {audio} audio",
                    r.label
                ));
            }
        }
        let segments = (0..10)
            .map(|i| r.dir.join(format!("seg{i:03}.mp4")))
            .filter(|p| p.exists())
            .collect::<Vec<_>>();
        let seg_frames: u64 = segments.iter().map(|s| probe(s)[0].packets).sum();
        if segments.len() < 2 || seg_frames.abs_diff(want) > GOP {
            failures.push(format!(
                "{}: {} segments with {seg_frames} frames",
                r.label,
                segments.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rtsp_rtmp_flv_and_low_latency_hls_recordings() {
    if !have_ffmpeg() {
        return;
    }
    let (srv, _publishers) = cameras("");
    // A pulled source re-served over RTSP: a second server pulling from the first.
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: {}\n",
        srv.url("h264b")
    ));
    wait_past_first_gop(&edge, "pulled");
    let root = tempfile::tempdir().unwrap();
    let http = srv.server.http_addr().unwrap();
    let mut recs = Vec::new();
    for (_, path) in CLIPS {
        for t in ["tcp", "udp"] {
            recs.push(record(
                &format!("rtsp-{t}-{path}"),
                &srv.url(path),
                Some(t),
                root.path(),
            ));
        }
        recs.push(record(
            &format!("ll-hls-{path}"),
            &format!("http://{http}/{path}/index.m3u8"),
            None,
            root.path(),
        ));
        // FFmpeg 5.1 reads no Enhanced RTMP, which is how H.265 travels over RTMP and FLV.
        if path.starts_with("h264") {
            recs.push(record(
                &format!("rtmp-{path}"),
                &srv.rtmp_url(path),
                None,
                root.path(),
            ));
            recs.push(record(
                &format!("flv-{path}"),
                &srv.flv_url(path),
                None,
                root.path(),
            ));
        }
    }
    for t in ["tcp", "udp"] {
        recs.push(record(
            &format!("pulled-rtsp-{t}"),
            &edge.url("pulled"),
            Some(t),
            root.path(),
        ));
    }
    check(recs);
}

fn hls_recordings(variant: &str) {
    if !have_ffmpeg() {
        return;
    }
    let (srv, _publishers) = cameras(&format!("hlsVariant: {variant}\n"));
    let root = tempfile::tempdir().unwrap();
    let http = srv.server.http_addr().unwrap();
    let recs = CLIPS
        .iter()
        .map(|(_, path)| {
            let url = format!("http://{http}/{path}/index.m3u8");
            record(&format!("{variant}-hls-{path}"), &url, None, root.path())
        })
        .collect();
    check(recs);
}

#[test]
fn mpegts_hls_recordings() {
    hls_recordings("mpegts");
}

#[test]
fn fmp4_hls_recordings() {
    hls_recordings("fmp4");
}
