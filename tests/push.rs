//! Push relays: a path with `push: [rtmp://…]` publishes its stream to nginx-rtmp
//! (Debian `nginx` + `libnginx-mod-rtmp`, started here with its own prefix on a free
//! port), from which ffmpeg reads it; when nginx stops and starts again the push
//! resumes. An `rtsp://` destination (another mediarouter) gets it over RTSP.

mod common;

use common::nginx::{have_nginx_rtmp, start_nginx};
use common::*;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// ffmpeg reads 4 s of `url`; the share of frames it got.
fn read_nginx(url: &str, dir: &Path, name: &str) -> f64 {
    let out = dir.join(name);
    let mut reader = read_for(url, 4, &out);
    let st = wait_child(&mut reader, Duration::from_secs(40), "ffmpeg reading nginx");
    assert!(st.success(), "ffmpeg could not read {url}");
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    assert!(probed.iter().any(|s| s.codec == "h264"), "{probed:?}");
    video_completeness(&out, 30.0)
}

#[test]
fn push_reaches_nginx_rtmp_and_resumes_after_a_restart() {
    if !have_ffmpeg() || !have_nginx_rtmp() {
        return;
    }
    let prefix = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nginx = start_nginx(prefix.path(), port, None);
    let dest = format!("rtmp://127.0.0.1:{port}/live/x");
    let srv = TestServer::start(&format!(
        "paths:\n  cam:\n    push: [{dest}]\n  all_others:\n"
    ));
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("cam"), "tcp", true);
    srv.wait_stream("cam");
    let dir = tempfile::tempdir().unwrap();
    let complete = read_nginx(&dest, dir.path(), "first.mkv");
    eprintln!("through nginx: completeness {complete:.3}");
    assert!(complete >= 0.9, "{complete}");

    // nginx goes away: the push fails (and says so), the path plays on.
    nginx.kill().unwrap();
    nginx.wait().unwrap();
    wait_until(Duration::from_secs(20), "the push to notice", || {
        !logs()
            .lines_with("WARN", &["push failed", "path=cam"])
            .is_empty()
    });
    assert!(srv.stream("cam").is_some_and(|s| !s.is_closed()));
    let mut nginx = start_nginx(prefix.path(), port, None);
    let back = Instant::now();
    wait_until(Duration::from_secs(30), "the push to resume", || {
        logs()
            .lines_with("INFO", &["push started", &format!("127.0.0.1:{port}")])
            .len()
            >= 2
    });
    eprintln!("push resumed {:?} after nginx came back", back.elapsed());
    let complete = read_nginx(&dest, dir.path(), "second.mkv");
    assert!(complete >= 0.9, "{complete}");
    let _ = nginx.kill();
    let _ = nginx.wait();
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn push_over_rtsp_reaches_another_server() {
    if !have_ffmpeg() {
        return;
    }
    let dest = TestServer::start("paths:\n  all_others:\n");
    let src = TestServer::start(&format!(
        "paths:\n  cam:\n    forward: [{}]\n  all_others:\n",
        dest.url("relayed")
    ));
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &src.url("cam"), "tcp", true);
    src.wait_stream("cam");
    dest.wait_stream("relayed");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relayed.mkv");
    let mut reader = read_for(&dest.url("relayed"), 4, &out);
    let st = wait_child(
        &mut reader,
        Duration::from_secs(40),
        "ffmpeg reading the relay",
    );
    assert!(st.success());
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    let complete = video_completeness(&out, 30.0);
    eprintln!("through an RTSP push: completeness {complete:.3}");
    assert!(complete >= 0.9, "{complete}");
    let _ = publisher.kill();
    let _ = publisher.wait();
}
