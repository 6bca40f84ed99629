//! Malformed input closes only the offending connection, with a warn log naming the
//! reason, while a reader of a live path keeps receiving.

mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n";

/// A server with a live path `good` (ffmpeg) and a raw reader counting its packets.
fn live_server() -> Option<(TestServer, Counter, std::process::Child)> {
    if !have_ffmpeg() {
        return None;
    }
    let srv = TestServer::start("readTimeout: 1s\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let publisher = publish(&clip, &srv.url("good"), "tcp", true);
    srv.wait_stream("good");
    let mut reader = RawClient::connect(srv.addr);
    reader.play_tcp(&srv.url("good"));
    let counter = Counter::spawn(reader);
    counter.wait_more(20, "media before the bad input");
    Some((srv, counter, publisher))
}

/// Sends `bytes` on a new connection (write errors are fine: the server may close first),
/// then checks the server closed it with a warn line containing `reason`, and that the
/// good reader still receives.
fn expect_closed(
    srv: &TestServer,
    counter: &Counter,
    bytes: &[u8],
    then_close: bool,
    reason: &str,
) {
    let mut c = RawClient::connect(srv.addr);
    let port = c.sock.local_addr().unwrap().port();
    let _ = c.sock.write_all(bytes);
    if then_close {
        let _ = c.sock.shutdown(Shutdown::Write);
    }
    assert!(
        c.closed_by_server(Duration::from_secs(10)),
        "server kept the connection ({reason})"
    );
    let peer = format!("127.0.0.1:{port}");
    wait_until(Duration::from_secs(5), "the warn line", || {
        !logs().lines_with("WARN", &[&peer, reason]).is_empty()
    });
    counter.wait_more(20, "media after the bad input");
}

#[test]
fn garbage_requests_close_only_their_connection() {
    let Some((srv, counter, mut publisher)) = live_server() else {
        return;
    };

    // Random bytes (deterministic LCG), not starting with '$'.
    let mut x: u32 = 12345;
    let mut random: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    random[0] = 0x17;
    expect_closed(&srv, &counter, &random, false, "malformed RTSP message");

    // A 1 MB request line.
    let mut line = b"DESCRIBE rtsp://127.0.0.1/".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1 << 20));
    expect_closed(&srv, &counter, &line, false, "request larger than");

    // A header section that never ends: it keeps growing...
    let mut headers = b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
    for i in 0..4000 {
        headers.extend(format!("X-Pad-{i}: {}\r\n", "b".repeat(40)).as_bytes());
    }
    expect_closed(&srv, &counter, &headers, false, "header lines");
    // ...or its lines are few and long.
    let mut long = b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
    for i in 0..40 {
        long.extend(format!("X-Pad-{i}: {}\r\n", "b".repeat(1000)).as_bytes());
    }
    expect_closed(&srv, &counter, &long, false, "request larger than");
    // ...or it stops arriving.
    expect_closed(
        &srv,
        &counter,
        b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nX-A: b\r\n",
        false,
        "read timeout",
    );

    publisher.kill().unwrap();
    publisher.wait().unwrap();
}

#[test]
fn bad_publisher_input_closes_only_that_publisher() {
    let Some((srv, counter, mut publisher)) = live_server() else {
        return;
    };
    let url = srv.url("bad");

    // An SDP that is garbage.
    let mut c = RawClient::connect(srv.addr);
    let port = c.sock.local_addr().unwrap().port();
    let r = c.request(
        "ANNOUNCE",
        &url,
        &[("Content-Type", "application/sdp")],
        b"\x00\x01garbage\xff\r\nm=\r\n",
    );
    assert_eq!(r.status, 400);
    assert!(c.closed_by_server(Duration::from_secs(5)));
    assert!(!logs()
        .lines_with("WARN", &[&format!("127.0.0.1:{port}"), "invalid SDP"])
        .is_empty());
    counter.wait_more(20, "media after the bad SDP");

    // A truncated interleaved frame, then the client hangs up.
    let announce_record = |c: &mut RawClient| {
        assert_eq!(
            c.request(
                "ANNOUNCE",
                &url,
                &[("Content-Type", "application/sdp")],
                SDP.as_bytes()
            )
            .status,
            200
        );
        let t = [(
            "Transport",
            "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
        )];
        assert_eq!(
            c.request("SETUP", &format!("{url}/streamid=0"), &t, b"")
                .status,
            200
        );
        assert_eq!(c.request("RECORD", &url, &[], b"").status, 200);
    };
    let mut c = RawClient::connect(srv.addr);
    announce_record(&mut c);
    let mut frame = vec![b'$', 0, 0x10, 0x00];
    frame.extend([0x80u8; 100]);
    let port = c.sock.local_addr().unwrap().port();
    c.sock.write_all(&frame).unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    assert!(c.closed_by_server(Duration::from_secs(5)));
    wait_until(
        Duration::from_secs(5),
        "the truncated-frame warn line",
        || {
            !logs()
                .lines_with("WARN", &[&format!("127.0.0.1:{port}"), "inside a message"])
                .is_empty()
        },
    );
    counter.wait_more(20, "media after the truncated frame");

    // A complete frame that is not RTP.
    let mut c = RawClient::connect(srv.addr);
    announce_record(&mut c);
    let port = c.sock.local_addr().unwrap().port();
    c.sock.write_all(&[b'$', 0, 0, 5, 1, 2, 3, 4, 5]).unwrap();
    assert!(c.closed_by_server(Duration::from_secs(5)));
    assert!(!logs()
        .lines_with("WARN", &[&format!("127.0.0.1:{port}"), "bad RTP packet"])
        .is_empty());
    counter.wait_more(20, "media after the bad RTP packet");

    // A malformed H.264 payload (STAP-A whose length runs past the packet).
    let mut c = RawClient::connect(srv.addr);
    announce_record(&mut c);
    let port = c.sock.local_addr().unwrap().port();
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
    rtp.extend([24, 0x10, 0x00, 0x65]);
    let mut frame = vec![b'$', 0, 0, rtp.len() as u8];
    frame.extend(rtp);
    c.sock.write_all(&frame).unwrap();
    assert!(c.closed_by_server(Duration::from_secs(5)));
    assert!(!logs()
        .lines_with("WARN", &[&format!("127.0.0.1:{port}"), "malformed H264"])
        .is_empty());
    counter.wait_more(20, "media after the malformed payload");

    publisher.kill().unwrap();
    publisher.wait().unwrap();
}
