//! Path rules with real ffmpeg publishers: 404 for unpublished paths, unknown names
//! refused, overridePublisher yes/no, maxReaders.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

const CONFIG: &str = "paths:
  cam:
  solo:
    overridePublisher: no
  limited:
    maxReaders: 1
  '~^live/(.+)$':
";

#[test]
fn describe_of_unpublished_or_unknown_path_is_404() {
    let srv = TestServer::start(CONFIG);
    let mut c = RawClient::connect(srv.addr);
    for path in ["cam", "live/nobody", "nope", "a/../b"] {
        let r = c.request("DESCRIBE", &srv.url(path), &[], b"");
        assert_eq!(r.status, 404, "{path}");
    }
    let r = c.request("OPTIONS", &srv.url("cam"), &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("Public").unwrap().contains("ANNOUNCE"));
}

#[test]
fn publishing_to_an_unconfigured_name_is_refused_and_logged() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(CONFIG);
    let clip = clip(Clip::H264Aac, 6);
    let mut p = publish(&clip, &srv.url("nope/x"), "tcp", true);
    let st = wait_child(&mut p, Duration::from_secs(15), "refused publisher");
    assert!(!st.success());
    assert!(srv.server.manager.path("nope/x").is_none());
    let lines = logs().lines_with("WARN", &["publish refused", "nope/x", "not configured"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn override_publisher_yes_replaces_the_first() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(CONFIG);
    let clip = clip(Clip::H264Aac, 6);
    let mut first = publish(&clip, &srv.url("cam"), "tcp", true);
    let s1 = srv.wait_stream("cam");
    let mut second = publish(&clip, &srv.url("cam"), "udp", true);
    wait_until(
        Duration::from_secs(15),
        "the second publisher to take over",
        || srv.stream("cam").is_some_and(|s| !Arc::ptr_eq(&s, &s1)),
    );
    assert!(s1.is_closed());
    // The replaced ffmpeg sees its connection closed and exits.
    wait_child(&mut first, Duration::from_secs(15), "replaced publisher");
    let s2 = srv.wait_stream("cam");
    let before = s2.units_per_track()[0];
    wait_until(
        Duration::from_secs(10),
        "the second publisher's units",
        || s2.units_per_track()[0] > before + 10,
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn override_publisher_no_refuses_the_second() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(CONFIG);
    let clip = clip(Clip::H264Aac, 6);
    let mut first = publish(&clip, &srv.url("solo"), "tcp", true);
    let s1 = srv.wait_stream("solo");
    let mut second = publish(&clip, &srv.url("solo"), "tcp", true);
    let st = wait_child(
        &mut second,
        Duration::from_secs(15),
        "refused second publisher",
    );
    assert!(!st.success());
    assert!(Arc::ptr_eq(&srv.stream("solo").unwrap(), &s1));
    assert!(!s1.is_closed());
    assert!(
        first.try_wait().unwrap().is_none(),
        "first publisher must keep running"
    );
    let lines = logs().lines_with("WARN", &["publish refused", "solo", "overridePublisher"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn max_readers_is_enforced() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(CONFIG);
    let clip = clip(Clip::H264Aac, 6);
    let mut p = publish(&clip, &srv.url("limited"), "tcp", true);
    srv.wait_stream("limited");

    let mut one = RawClient::connect(srv.addr);
    one.play_tcp(&srv.url("limited"));
    let mut two = RawClient::connect(srv.addr);
    assert_eq!(
        two.request("DESCRIBE", &srv.url("limited"), &[], b"")
            .status,
        200
    );
    let r = two.request(
        "SETUP",
        &format!("{}/trackID=0", srv.url("limited")),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        b"",
    );
    assert_eq!(r.status, 503);

    // A real ffmpeg reader is refused too.
    let dir = tempfile::tempdir().unwrap();
    let mut refused = read_to_file(&srv.url("limited"), "tcp", &dir.path().join("x.mkv"));
    assert!(!wait_child(&mut refused, Duration::from_secs(15), "refused reader").success());

    drop(one);
    wait_until(Duration::from_secs(5), "the first reader to leave", || {
        srv.readers("limited") == 0
    });
    let mut three = RawClient::connect(srv.addr);
    three.play_tcp(&srv.url("limited"));
    assert_eq!(srv.readers("limited"), 1);
    p.kill().unwrap();
    p.wait().unwrap();
}

#[test]
fn disabled_transport_is_refused_with_461() {
    let srv = TestServer::start("rtspTransports: [tcp]\npaths:\n  all_others:\n");
    assert!(srv.server.rtsp_addr().is_some());
    assert!(srv.server.rtsp_udp_ports().is_none());
    let mut c = RawClient::connect(srv.addr);
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=control:trackID=0\r\n";
    let r = c.request(
        "ANNOUNCE",
        &srv.url("t"),
        &[("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    );
    assert_eq!(r.status, 200);
    let url = format!("{}/trackID=0", srv.url("t"));
    let r = c.request(
        "SETUP",
        &url,
        &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        b"",
    );
    assert_eq!(r.status, 461);
    let r = c.request(
        "SETUP",
        &url,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Transport"),
        Some("RTP/AVP/TCP;unicast;interleaved=0-1")
    );
}
