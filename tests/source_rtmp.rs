//! RTMP sources: a path pulls `rtmp://…` and an RTSP reader gets ≥ 90 % of the frames;
//! and the multi-origin proxy: one mediarouter serving `a/<stream>` and `b/<stream>`
//! as HTTP-FLV, pulled on demand over RTMP from two origins.

mod common;

use common::*;
use std::process::Child;
use std::time::Duration;

#[test]
fn an_rtmp_source_feeds_rtsp_readers() {
    if !have_ffmpeg() {
        return;
    }
    let cam = TestServer::start("paths:\n  all_others:\n");
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 10), &cam.rtmp_url("live/cam"), true);
    cam.wait_stream("live/cam");
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: {}\n",
        cam.rtmp_url("live/cam")
    ));
    edge.wait_stream("pulled");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&edge.url("pulled"), 5, &out);
    let st = wait_child(&mut reader, Duration::from_secs(40), "RTSP reader");
    assert!(st.success());
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    let complete = video_completeness(&out, 30.0);
    eprintln!("rtmp source → rtsp: completeness {complete:.3}");
    assert!(complete >= 0.9, "{complete}");
    assert_eq!(cam.readers("live/cam"), 1);
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn one_proxy_serves_streams_of_two_origins_as_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    let origin_a = TestServer::start("paths:\n  all_others:\n");
    let origin_b = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 10);
    let mut pub_a = publish_rtmp(&clip, &origin_a.rtmp_url("live/one"), true);
    let mut pub_b = publish_rtmp(&clip, &origin_b.rtmp_url("live/two"), true);
    origin_a.wait_stream("live/one");
    origin_b.wait_stream("live/two");
    let proxy = TestServer::start(&format!(
        "paths:\n  '~^a/(.+)$':\n    source: rtmp://{}/live/$G1\n    sourceOnDemand: yes\n    sourceOnDemandStartTimeout: 2s\n  '~^b/(.+)$':\n    source: rtmp://{}/live/$G1\n    sourceOnDemand: yes\n",
        origin_a.server.rtmp_addr().unwrap(),
        origin_b.server.rtmp_addr().unwrap()
    ));
    assert_eq!(
        (origin_a.readers("live/one"), origin_b.readers("live/two")),
        (0, 0)
    );
    let dir = tempfile::tempdir().unwrap();
    let mut readers: Vec<(String, Child)> = ["a/one", "b/two"]
        .iter()
        .map(|p| {
            let out = dir.path().join(format!("{}.mkv", p.replace('/', "-")));
            let child = read_for(&proxy.flv_url(p), 4, &out);
            (out.to_string_lossy().into_owned(), child)
        })
        .collect();
    for (out, child) in &mut readers {
        let st = wait_child(child, Duration::from_secs(40), "HTTP-FLV reader");
        assert!(st.success(), "{out}");
        let complete = video_completeness(std::path::Path::new(out), 30.0);
        eprintln!("proxy → {out}: completeness {complete:.3}");
        assert!(complete >= 0.9, "{out}: {complete}");
    }
    // An unknown stream of an origin: the reader is refused, the other paths unharmed.
    let (status, _) = common::http::get(proxy.server.http_addr().unwrap(), "/a/nothing.flv");
    assert_eq!(status, 404);
    for p in [&mut pub_a, &mut pub_b] {
        let _ = p.kill();
        let _ = p.wait();
    }
}
