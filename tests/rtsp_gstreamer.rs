//! GStreamer's rtspsrc reads what ffmpeg publishes, over TCP and UDP: it exercises
//! Content-Base, relative control URLs, RTP-Info and RTCP the way a second client stack does.
//! One track per path: gst-launch's delayed linking of several rtspsrc pads is racy.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn gst_read(
    url: &str,
    protocol: &str,
    branch: &str,
    out: &Path,
    log: &Path,
) -> std::process::Child {
    let pipeline = format!(
        "rtspsrc location={url} protocols={protocol} ! {branch} ! matroskamux ! filesink location={}",
        out.display()
    );
    Command::new("gst-launch-1.0")
        .args(["-q", "-e"])
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn gst-launch-1.0")
}

#[test]
fn gstreamer_reads_h264_and_aac_over_tcp_and_udp() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let mut video = publish_with(&clip, &srv.url("gst/video"), "tcp", true, &["-an"]);
    let mut audio = publish_with(&clip, &srv.url("gst/audio"), "udp", true, &["-vn"]);
    srv.wait_stream("gst/video");
    srv.wait_stream("gst/audio");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "gst/video",
            "rtph264depay ! h264parse ! identity eos-after=60",
            "h264",
        ),
        (
            "gst/audio",
            "rtpmp4gdepay ! aacparse ! identity eos-after=100",
            "aac",
        ),
    ];
    for protocol in ["tcp", "udp"] {
        for (path, branch, codec) in cases {
            let out = dir.path().join(format!("{protocol}-{codec}.mkv"));
            let log = dir.path().join(format!("{protocol}-{codec}.log"));
            let mut reader = gst_read(&srv.url(path), protocol, branch, &out, &log);
            let st = wait_child(&mut reader, Duration::from_secs(30), "gst-launch");
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                st.success() || gst_shutdown_race(&stderr),
                "{protocol} {codec}: {st:?}\n{stderr}"
            );
            let got = probe(&out);
            eprintln!("GStreamer {protocol} {codec}: {got:?}");
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].codec, codec);
            match codec {
                "h264" => assert_eq!((got[0].width, got[0].height), (640, 360)),
                _ => assert_eq!(got[0].sample_rate, 44100),
            }
            assert!(got[0].packets >= 30, "{protocol} {codec}: {got:?}");
        }
    }
    for p in [&mut video, &mut audio] {
        p.kill().unwrap();
        p.wait().unwrap();
    }
}
