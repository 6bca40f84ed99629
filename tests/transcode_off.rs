//! Without the `transcode` feature a path's `transcode:` is accepted with a warning
//! that names the path, and the path serves its input untouched.
#![cfg(not(feature = "transcode"))]

mod common;

use common::*;
use std::time::Duration;

#[test]
fn transcode_without_the_feature_warns_and_serves_the_input() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "paths:\n  nofeat:\n    transcode:\n      video: {codec: h264, height: 180}\n      fallback: software\n",
    );
    let warned = logs().lines_with(
        "WARN",
        &["'nofeat'", "transcode is ignored", "feature `transcode`"],
    );
    assert_eq!(warned.len(), 1, "{warned:?}");
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("nofeat"), "tcp", true);
    srv.wait_stream("nofeat");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&srv.url("nofeat"), 2, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(30), "reader").success());
    let video = probe(&out)
        .into_iter()
        .find(|s| s.codec == "h264")
        .expect("video");
    assert_eq!((video.width, video.height), (640, 360));
    let _ = publisher.kill();
    let _ = publisher.wait();
}
