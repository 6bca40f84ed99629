//! RTSP multicast, in a network namespace of the test's own with a multicast route over
//! its loopback (nothing leaves it): ffmpeg (`-rtsp_transport udp_multicast`) and
//! GStreamer (`rtspsrc protocols=udp-mcast`) read decoded video, and the namespace's UDP
//! send rate with three readers stays that of one: each packet goes out once.

mod common;

use common::netns::Netns;
use common::*;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A namespace of the test's own with 224.0.0.0/4 routed over its loopback.
fn multicast_netns() -> Option<Netns> {
    let ns = Netns::new("mcast")?;
    for args in [
        &["link", "set", "lo", "multicast", "on"][..],
        &["route", "add", "224.0.0.0/4", "dev", "lo"],
    ] {
        assert!(
            ns.cmd("ip").args(args).status().unwrap().success(),
            "ip {args:?}"
        );
    }
    Some(ns)
}

/// UDP datagrams sent in the namespace so far (`/proc/net/snmp`, Udp OutDatagrams).
fn udp_out(ns: &Netns) -> u64 {
    let out = ns.cmd("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "OutDatagrams")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

fn wait_log(file: &Path, needle: &str) {
    wait_until(Duration::from_secs(20), needle, || {
        std::fs::read_to_string(file).is_ok_and(|t| t.contains(needle))
    });
}

fn ffmpeg_reader(ns: &Netns, url: &str, out: &Path) -> Child {
    ns.cmd("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args([
            "-rtsp_transport",
            "udp_multicast",
            "-t",
            "4",
            "-i",
            url,
            "-c",
            "copy",
            "-y",
        ])
        .arg(out)
        .spawn()
        .unwrap()
}

fn gstreamer_reader(ns: &Netns, url: &str, out: &Path) -> Child {
    // SIGINT after 5 s; -e turns it into an EOS, so the file is finished.
    ns.cmd("timeout")
        .args(["-s", "INT", "5", "gst-launch-1.0", "-q", "-e", "rtspsrc"])
        .arg(format!("location={url}"))
        .args(["protocols=udp-mcast", "!", "rtph264depay", "!", "h264parse"])
        .args(["!", "matroskamux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn video_frames(file: &Path) -> u64 {
    probe(file).first().map_or(0, |s| s.packets)
}

#[test]
fn ffmpeg_and_gstreamer_read_multicast_sent_once() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let Some(ns) = multicast_netns() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mediarouter.yml");
    std::fs::write(
        &cfg,
        "rtspAddress: 127.0.0.1:8554\nrtspTransports: [multicast, tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\npaths:\n  all_others:\n",
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let server = ns
        .cmd(env!("CARGO_BIN_EXE_mediarouter"))
        .arg(&cfg)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _server = Children(vec![server]);
    wait_log(&log, "RTSP listener opened");
    let clip = clip(Clip::H264Aac, 10);
    let publisher = ns
        .cmd("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(&clip)
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp"])
        .arg("rtsp://127.0.0.1:8554/cam")
        .spawn()
        .unwrap();
    let _publisher = Children(vec![publisher]);
    wait_log(&log, "RTSP publisher started");
    let url = "rtsp://127.0.0.1:8554/cam";

    // One reader, then three at once: UDP datagrams per second sent in the namespace.
    let mut rates = Vec::new();
    let mut files = Vec::new();
    for round in [1, 3] {
        let before = (udp_out(&ns), Instant::now());
        let mut readers: Vec<(Child, std::path::PathBuf)> = (0..round.min(2))
            .map(|i| {
                let out = dir.path().join(format!("ffmpeg-{round}-{i}.mkv"));
                (ffmpeg_reader(&ns, url, &out), out)
            })
            .collect();
        if round == 3 {
            let out = dir.path().join("gstreamer.mkv");
            readers.push((gstreamer_reader(&ns, url, &out), out));
        }
        for (child, out) in &mut readers {
            wait_child(child, Duration::from_secs(30), "multicast reader");
            files.push(out.clone());
        }
        let sent = udp_out(&ns) - before.0;
        rates.push(sent as f64 / before.1.elapsed().as_secs_f64());
    }
    for f in &files {
        let n = video_frames(f);
        eprintln!("{}: {n} video frames", f.display());
        // Four seconds at 30 fps, less up to a GOP before the first keyframe.
        assert!(n >= 85, "{}: {n} frames", f.display());
    }
    eprintln!(
        "UDP datagrams/s: one reader {:.0}, three {:.0}",
        rates[0], rates[1]
    );
    assert!(rates[0] > 50.0, "the stream went out over UDP: {rates:?}");
    assert!(
        rates[1] < rates[0] * 1.5,
        "sent once, not per reader: {rates:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("RTSP multicast started path=cam groups=[224.1.0.1, 224.1.0.2]"),
        "{text}"
    );
}
