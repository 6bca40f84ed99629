//! Input limits as config keys (issue 23): each is set low on a live server and hit by
//! a real client or a request built to cross it. The client is closed or refused with a
//! warn line naming the key and the peer, the server goes on serving, and ordinary
//! clients inside the limits (ffmpeg publishing and reading) still work.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Everything the server sends until it closes the connection (bounded by the read
/// timeout: an open connection fails the test).
fn read_to_close(s: &mut TcpStream) -> String {
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .expect("the server closes the connection");
    String::from_utf8_lossy(&all).into_owned()
}

fn wait_warn(needles: &[&str]) {
    wait_until(
        Duration::from_secs(10),
        &format!("a warn line with {needles:?}"),
        || !logs().lines_with("WARN", needles).is_empty(),
    );
}

fn options_answered(addr: SocketAddr) -> bool {
    let mut s = raw(addr);
    s.write_all(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"RTSP/1.0 200"))
}

#[test]
fn rtsp_request_limits_close_the_connection_and_ffmpeg_still_publishes() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "maxRequestHeaders: 10\nrtspMaxBodySize: 2048\nsdpMaxMedias: 1\npaths:\n  all_others:\n",
    );
    // Eleven headers: one over.
    let mut s = raw(srv.addr);
    let port = s.local_addr().unwrap().port().to_string();
    let mut req = b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
    for i in 0..10 {
        req.extend(format!("X-{i}: y\r\n").as_bytes());
    }
    s.write_all(&req).unwrap();
    s.write_all(b"\r\n").unwrap();
    assert_eq!(
        read_to_close(&mut s),
        "",
        "answered a request over the limit"
    );
    wait_warn(&[&port, "more than 10 header lines (maxRequestHeaders)"]);

    // An ANNOUNCE whose body is over rtspMaxBodySize: closed as soon as its head is in.
    let mut s = raw(srv.addr);
    let port = s.local_addr().unwrap().port().to_string();
    s.write_all(b"ANNOUNCE rtsp://x/big RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 2049\r\n\r\nv=0\r\n")
        .unwrap();
    assert_eq!(read_to_close(&mut s), "");
    wait_warn(&[
        &port,
        "request body larger than 2048 bytes (rtspMaxBodySize)",
    ]);

    // ffmpeg announces video and audio: two media sections, over sdpMaxMedias.
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(clip(Clip::H264Aac, 2))
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp"])
        .arg(srv.url("two"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a two-media ANNOUNCE was taken");
    wait_warn(&[
        "invalid SDP in ANNOUNCE",
        "too many media sections (2; sdpMaxMedias)",
    ]);
    // The same clip without audio is inside every limit.
    let publisher = publish_with(
        &clip(Clip::H264Aac, 6),
        &srv.url("one"),
        "tcp",
        true,
        &["-an"],
    );
    srv.wait_stream("one");
    assert!(options_answered(srv.addr));
    drop(Children(vec![publisher]));
}

#[test]
fn rtmp_message_and_amf_limits_close_the_publisher() {
    if !have_ffmpeg() {
        return;
    }
    // A 360p keyframe is tens of kilobytes: over 16 KiB.
    let srv = TestServer::start("rtmpMaxMessageSize: 16384\npaths:\n  all_others:\n");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(clip(Clip::H264Aac, 3))
        .args(["-c", "copy", "-f", "flv"])
        .arg(srv.rtmp_url("big"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a message over the limit was taken");
    wait_warn(&["bad RTMP input", "larger than 16384 (rtmpMaxMessageSize)"]);
    assert!(options_answered(srv.addr));

    // ffmpeg's onMetaData is one object of about 15 values: over 12.
    let srv = TestServer::start("amfMaxElements: 12\npaths:\n  all_others:\n");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(clip(Clip::H264Aac, 3))
        .args(["-c", "copy", "-f", "flv"])
        .arg(srv.rtmp_url("meta"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "metadata over the limit was taken");
    wait_warn(&["bad RTMP input", "more values than amfMaxElements"]);
}

#[test]
fn http_head_limits_answer_431_and_requests_per_connection_close_it() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "maxRequestHeaders: 10\nmaxRequestHeaderSize: 8192\nhttpMaxRequestsPerConnection: 3\nhlsVariant: mpegts\npaths:\n  all_others:\n",
    );
    let http = srv.server.http_addr().unwrap();
    for (what, extra) in [
        (
            "count",
            (0..11).map(|i| format!("X-{i}: y\r\n")).collect::<String>(),
        ),
        ("size", format!("X-Big: {}\r\n", "a".repeat(9000))),
    ] {
        let mut s = raw(http);
        let port = s.local_addr().unwrap().port().to_string();
        let req = format!("GET /a/index.m3u8 HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        // The server stops reading at the limit: the rest of a long head may meet a
        // closed socket, and the close may come as a reset that overtakes the 431.
        let _ = s.write_all(req.as_bytes());
        let mut got = Vec::new();
        let reply = match s.read_to_end(&mut got) {
            Ok(_) => String::from_utf8_lossy(&got).into_owned(),
            Err(e) if what == "size" && e.kind() == std::io::ErrorKind::ConnectionReset => {
                "HTTP/1.1 431 (reset)".into()
            }
            Err(e) => panic!("{what}: {e}"),
        };
        assert!(reply.starts_with("HTTP/1.1 431"), "{what}: {reply}");
        // Once per burst: the first names its peer, the next is counted in silence.
        if what == "count" {
            wait_warn(&[
                &port,
                "HTTP request head over maxRequestHeaderSize (8192 bytes) or maxRequestHeaders (10)",
            ]);
        }
    }

    // Three requests on one kept-alive connection; the third says close and closes.
    let mut s = raw(http);
    for i in 1..=3 {
        s.write_all(b"GET /nothing/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "request {i}: closed early");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        assert_eq!(
            head.contains("connection: close"),
            i == 3,
            "request {i}: {head}"
        );
    }
    assert_eq!(read_to_close(&mut s), "");

    // An HLS player makes many requests: it reconnects and goes on reading.
    let publisher = publish(&clip(Clip::H264Aac, 6), &srv.url("hls"), "tcp", true);
    srv.wait_stream("hls");
    let url = format!("http://{http}/hls/index.m3u8");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hls.mkv");
    let mut reader = read_for(&url, 6, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(60), "the HLS reader").success());
    let last = keyframe_times(&out).last().copied().unwrap_or(0.0);
    assert!(last >= 4.0, "the HLS reader stopped at {last:.1} s of 6");
    drop(Children(vec![publisher]));
}
