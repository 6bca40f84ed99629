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

const BASE: &str = "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n";

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

/// A reload that changes HLS settings restarts the HTTP listener with new muxers; an
/// HTTP-FLV reader on the old one goes on without losing a frame, and HLS serves again.
#[test]
fn an_http_listener_restart_keeps_flv_readers() {
    if !have_ffmpeg() {
        return;
    }
    let rtmp = free_port();
    let srv = TestServer::with_config(config(rtmp, "  a:\n"));
    let publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("a"), "tcp", true);
    srv.wait_stream("a");
    let flv = srv.flv_url("a");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.flv.mkv");
    let mut reader = read_for(&flv, 6, &out);
    wait_until(Duration::from_secs(10), "the FLV reader", || {
        srv.readers("a") == 1
    });
    let mut changed = config(rtmp, "  a:\n");
    changed.hls_segment_count = 4;
    let line = srv.rt.block_on(srv.server.reload(changed)).to_string();
    assert!(line.contains("listeners restarted: hls"), "{line}");
    // Port 0 again: the new listener has a port of its own.
    let http = srv.server.http_addr().unwrap();
    let (status, _) = common::http::get(http, "/a/index.m3u8");
    assert_eq!(status, 200);
    assert!(wait_child(&mut reader, Duration::from_secs(30), "the FLV reader").success());
    let gap = max_video_gap(&out);
    assert!(gap < 1.5 / 30.0, "the FLV reader lost a frame: gap {gap}");
    drop(Children(vec![publisher]));
}
