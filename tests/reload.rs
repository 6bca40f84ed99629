//! Reloading a config in process (`Server::reload`): a path whose settings didn't change
//! keeps its stream and its reader every frame, an added path takes a publisher over the
//! moved RTMP listener, a changed source restarts, a removed path closes, and a push
//! list change starts only the new relay.

mod common;

use common::*;
use mediarouter::config::Config;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

const BASE: &str = "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n";

fn config(rtmp_port: u16, paths: &str) -> Config {
    Config::parse(
        &format!("{BASE}rtmpAddress: 127.0.0.1:{rtmp_port}\npaths:\n{paths}"),
        "reload",
    )
    .unwrap()
}

#[test]
fn a_reload_touches_only_what_changed() {
    if !have_ffmpeg() {
        return;
    }
    // Two cameras for path c's source to move between, and a sink for push.
    let (cams, _cam_publishers) = cameras("", &["cam1", "cam2"]);
    let clip = clip(Clip::H264Aac, 10);
    let cam = |n: &str| format!("rtsp://{}/{n}", cams.addr);

    let rtmp1 = free_port();
    let paths1 = format!("  a:\n  c:\n    source: {}\n  gone:\n", cam("cam1"));
    let srv = TestServer::with_config(config(rtmp1, &paths1));
    let pub_a = publish(&clip, &srv.url("a"), "tcp", true);
    let mut pub_gone = publish(&clip, &srv.url("gone"), "tcp", true);
    let a = srv.wait_stream("a");
    srv.wait_stream("gone");
    srv.wait_stream("c");
    assert_eq!((cams.readers("cam1"), cams.readers("cam2")), (1, 0));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mkv");
    let mut reader = read_for(&srv.url("a"), 8, &out);
    wait_until(Duration::from_secs(10), "the reader of a", || {
        srv.readers("a") == 1
    });

    // b added, c's source moved, gone removed, a gets a push, RTMP moves.
    let rtmp2 = free_port();
    let paths2 = format!(
        "  a:\n    push: [rtmp://{}/live/pushed]\n  live/b:\n  c:\n    source: {}\n",
        cams.server.rtmp_addr().unwrap(),
        cam("cam2")
    );
    let summary = srv.rt.block_on(srv.server.reload(config(rtmp2, &paths2)));
    let line = summary.to_string();
    eprintln!("{line}");
    assert!(line.starts_with("reload: +1 paths, -1, ~2"), "{line}");
    assert!(
        line.contains("a: push") && line.contains("c: source"),
        "{line}"
    );
    assert!(line.contains("listeners restarted: rtmp"), "{line}");
    assert!(line.contains("push relays +1 -0"), "{line}");

    // a: the same stream, its reader gets every frame (checked when it's done).
    assert!(srv.stream("a").is_some_and(|s| Arc::ptr_eq(&s, &a)));
    // c now pulls cam2.
    wait_until(Duration::from_secs(10), "c to pull cam2", || {
        cams.readers("cam1") == 0 && cams.readers("cam2") == 1
    });
    srv.wait_stream("c");
    // gone: its publisher was told to go.
    let st = wait_child(
        &mut pub_gone,
        Duration::from_secs(10),
        "the removed path's publisher",
    );
    assert!(!st.success());
    assert!(srv.server.manager.path("gone").is_none());
    assert!(!logs()
        .lines_with(
            "INFO",
            &[
                "publisher closed: the path was removed from the config",
                "path=gone"
            ]
        )
        .is_empty());
    // The push to the cameras' server runs.
    cams.wait_stream("live/pushed");
    // RTMP moved: the old port is closed, the new one takes a publisher for the new
    // path live/b.
    assert_eq!(srv.server.rtmp_addr().unwrap().port(), rtmp2);
    assert!(TcpStream::connect(("127.0.0.1", rtmp1)).is_err());
    let pub_b = publish_rtmp(&clip, &format!("rtmp://127.0.0.1:{rtmp2}/live/b"), true);
    srv.wait_stream("live/b");

    let st = wait_child(&mut reader, Duration::from_secs(30), "the reader of a");
    assert!(st.success());
    let gap = max_video_gap(&out);
    eprintln!("a's reader: largest gap between frames {:.3} s", gap);
    assert!(gap < 1.5 / 30.0, "a frame was lost: gap {gap}");
    assert!(video_completeness(&out, 30.0) > 0.99);

    // Reloading the same config changes nothing.
    let line = srv
        .rt
        .block_on(srv.server.reload(config(rtmp2, &paths2)))
        .to_string();
    assert_eq!(line, "reload: +0 paths, -0, ~0, listeners unchanged");
    for mut c in [pub_a, pub_b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn media_sequence(http: std::net::SocketAddr) -> (u64, u64) {
    let (status, body) = common::http::get(http, "/a/stream.m3u8");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a media sequence");
    let segments = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    (first, first + segments)
}

/// Reloads that change HLS settings restart the HTTP listener on the same address (the
/// old socket is closed before the new one binds) with new muxers; an HTTP-FLV reader
/// on the old listener goes on to its end without losing a frame, and the new muxers'
/// media sequence continues above the old one's, so a player's numbers never go back.
#[test]
fn an_http_listener_restart_keeps_flv_readers() {
    if !have_ffmpeg() {
        return;
    }
    let (rtmp, http_port) = (free_port(), free_port());
    let config =
        |segment_count: usize| {
            let yaml =
                format!(
            "{}rtmpAddress: 127.0.0.1:{rtmp}\nhlsSegmentCount: {segment_count}\npaths:\n  a:\n",
            BASE.replace("hlsAddress: 127.0.0.1:0", &format!("hlsAddress: 127.0.0.1:{http_port}"))
        );
            Config::parse(&yaml, "reload").unwrap()
        };
    let srv = TestServer::with_config(config(7));
    let publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("a"), "tcp", true);
    srv.wait_stream("a");
    let http = srv.server.http_addr().unwrap();
    let flv = srv.flv_url("a");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.flv.mkv");
    let mut reader = read_for(&flv, 8, &out);
    wait_until(Duration::from_secs(10), "the FLV reader", || {
        srv.readers("a") == 1
    });
    let mut before = media_sequence(http);
    for count in [4, 5, 6] {
        let line = srv
            .rt
            .block_on(srv.server.reload(config(count)))
            .to_string();
        assert!(line.contains("listeners restarted: hls"), "{line}");
        assert!(!line.contains("NOT restarted"), "{line}");
        assert_eq!(srv.server.http_addr(), Some(http));
        let after = media_sequence(http);
        assert!(
            after.0 >= before.1,
            "the media sequence went back: {before:?} then {after:?}"
        );
        before = after;
    }
    assert!(wait_child(&mut reader, Duration::from_secs(30), "the FLV reader").success());
    let gap = max_video_gap(&out);
    assert!(gap < 1.5 / 30.0, "the FLV reader lost a frame: gap {gap}");
    let last = keyframe_times(&out).last().copied().unwrap_or(0.0);
    assert!(
        last >= 6.0,
        "the FLV reader's stream ended at {last:.1} s of 8"
    );
    drop(Children(vec![publisher]));
}
