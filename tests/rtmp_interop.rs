//! RTMP with the real ffmpeg: publish over RTMP and read over RTMP, RTSP and HTTP-FLV;
//! publish over RTSP and read over RTMP; B-frames keep their order; refusals and bad input.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Checks one recording against the source: codecs, size, rate, ≥95 % of the units
/// sent while connected, and (for FLV outputs) audio/video starting together.
fn check(out: &Path, source: &[Probed], sent: &[u64], label: &str, av_sync: bool) {
    let got = probe(out);
    assert_eq!(got.len(), 2, "{label}: {got:?}");
    for (i, (g, s)) in got.iter().zip(source).enumerate() {
        assert_eq!(g.codec, s.codec, "{label} stream {i}");
        assert_eq!(
            (g.width, g.height, g.sample_rate),
            (s.width, s.height, s.sample_rate),
            "{label} stream {i}"
        );
        eprintln!(
            "{label} track {i} ({}): received {} of {} sent while connected",
            g.codec, g.packets, sent[i]
        );
        assert!(
            g.packets as f64 >= 0.95 * sent[i] as f64,
            "{label} track {i}: {} of {}",
            g.packets,
            sent[i]
        );
    }
    if av_sync {
        let starts = first_pts(out);
        assert!(
            (starts[0] - starts[1]).abs() <= 0.1,
            "{label}: audio/video start {starts:?}"
        );
    }
}

#[test]
fn rtmp_publish_read_by_rtmp_rtsp_and_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let source = probe(&clip);
    let mut publisher = publish_rtmp(&clip, &srv.rtmp_url("live/room"), false);
    let stream = srv.wait_stream("live/room");
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        ("rtmp", srv.rtmp_url("live/room"), "tcp", "flv"),
        ("rtsp-tcp", srv.url("live/room"), "tcp", "mkv"),
        ("rtsp-udp", srv.url("live/room"), "udp", "mkv"),
        ("http-flv", srv.flv_url("live/room"), "tcp", "flv"),
    ];
    let mut readers: Vec<_> = urls
        .iter()
        .map(|(label, url, t, ext)| {
            let out = dir.path().join(format!("{label}.{ext}"));
            (*label, out.clone(), read_to_file(url, t, &out))
        })
        .collect();
    wait_until(Duration::from_secs(15), "all readers", || {
        srv.readers("live/room") == readers.len()
    });
    let at_connect = stream.units_per_track();
    assert!(wait_child(&mut publisher, Duration::from_secs(40), "publisher").success());
    let total = stream.units_per_track();
    let sent: Vec<u64> = total.iter().zip(&at_connect).map(|(t, a)| t - a).collect();
    for (label, out, child) in &mut readers {
        assert!(
            wait_child(child, Duration::from_secs(20), "reader").success(),
            "{label}"
        );
        check(
            out,
            &source,
            &sent,
            label,
            label.contains("flv") || *label == "rtmp",
        );
    }
}

#[test]
fn rtsp_publish_read_by_rtmp() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let source = probe(&clip);
    let mut publisher = publish(&clip, &srv.url("cam"), "tcp", false);
    let stream = srv.wait_stream("cam");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rtmp.flv");
    let mut reader = read_to_file(&srv.rtmp_url("cam"), "tcp", &out);
    wait_until(Duration::from_secs(15), "the RTMP reader", || {
        srv.readers("cam") == 1
    });
    let at_connect = stream.units_per_track();
    assert!(wait_child(&mut publisher, Duration::from_secs(40), "publisher").success());
    let sent: Vec<u64> = stream
        .units_per_track()
        .iter()
        .zip(&at_connect)
        .map(|(t, a)| t - a)
        .collect();
    assert!(wait_child(&mut reader, Duration::from_secs(20), "reader").success());
    check(&out, &source, &sent, "rtsp→rtmp", true);
}

/// An RTMP source carries decode order and composition times: RTMP and HTTP-FLV
/// readers must see the same pts−dts pattern as the source.
#[test]
fn b_frames_keep_their_order_from_rtmp() {
    b_frames_keep_their_order(true);
}

/// RTP carries presentation times only: decode times are rebuilt from the H.264 POC.
#[test]
fn b_frames_keep_their_order_from_rtsp() {
    b_frames_keep_their_order(false);
}

fn b_frames_keep_their_order(rtmp_source: bool) {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264BframesAac, 6);
    let source = video_reorder(&clip);
    assert!(source.iter().any(|d| *d > 0), "the clip must have B-frames");
    let mut publisher = match rtmp_source {
        true => publish_rtmp(&clip, &srv.rtmp_url("bf/room"), false),
        false => publish(&clip, &srv.url("bf/room"), "tcp", false),
    };
    srv.wait_stream("bf/room");
    let dir = tempfile::tempdir().unwrap();
    let outs = [
        ("rtmp", srv.rtmp_url("bf/room")),
        ("http-flv", srv.flv_url("bf/room")),
    ];
    let mut readers: Vec<_> = outs
        .iter()
        .map(|(label, url)| {
            let out = dir.path().join(format!("{label}.flv"));
            (*label, out.clone(), read_to_file(url, "tcp", &out))
        })
        .collect();
    assert!(wait_child(&mut publisher, Duration::from_secs(40), "publisher").success());
    for (label, out, child) in &mut readers {
        assert!(
            wait_child(child, Duration::from_secs(20), "reader").success(),
            "{label}"
        );
        let got = video_reorder(out);
        assert!(got.len() > 30, "{label}: {} video packets", got.len());
        // The reader starts at a keyframe inside the clip: its pattern is a run of the
        // source's (FLV has millisecond timestamps, so allow 1 ms of rounding).
        let n = got.len().min(60);
        let matches_at = |start: usize| {
            source.len() - start >= n
                && got[..n]
                    .iter()
                    .zip(&source[start..])
                    .all(|(a, b)| (a - b).abs() <= 1)
        };
        assert!(
            (0..source.len()).any(matches_at),
            "{label}: pts-dts {:?} not found in source {:?}",
            &got[..20.min(got.len())],
            &source[..20.min(source.len())]
        );
        assert!(got.iter().any(|d| *d > 0), "{label}: B-frames lost");
        let starts = first_pts(out);
        assert!(
            (starts[0] - starts[1]).abs() <= 0.1,
            "{label}: audio/video start {starts:?}"
        );
    }
}

#[test]
fn rtmp_refusals_are_logged_and_close_only_that_client() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("readTimeout: 2s\npaths:\n  live/room:\n");
    let clip = clip(Clip::H264Aac, 6);
    let mut refused = publish_rtmp(&clip, &srv.rtmp_url("other/room"), true);
    assert!(!wait_child(&mut refused, Duration::from_secs(15), "refused publisher").success());
    assert_eq!(
        logs()
            .lines_with("WARN", &["RTMP publish refused", "other/room"])
            .len(),
        1
    );

    let dir = tempfile::tempdir().unwrap();
    let mut missing = read_to_file(&srv.rtmp_url("live/room"), "tcp", &dir.path().join("x.flv"));
    assert!(!wait_child(
        &mut missing,
        Duration::from_secs(15),
        "reader of an empty path"
    )
    .success());

    // Garbage instead of a handshake, and a handshake that stops halfway.
    let addr = srv.server.rtmp_addr().unwrap();
    for (bytes, reason) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "handshake"),
        (&[3u8; 100][..], "handshake timed out"),
    ] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let port = s.local_addr().unwrap().port();
        let _ = s.write_all(bytes);
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut tmp = [0u8; 8192];
        loop {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        wait_until(Duration::from_secs(5), "the warn line", || {
            !logs()
                .lines_with("WARN", &[&format!("127.0.0.1:{port}"), reason])
                .is_empty()
        });
    }
}
