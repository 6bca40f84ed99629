//! Malformed RTMP closes only that connection, with a warn line naming the reason,
//! while an RTMP publisher on another path keeps streaming.

mod common;

use common::rtmp::handshaken;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One RTMP chunk with a type-0 header on chunk stream 3.
fn chunk(type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut c = vec![0x03, 0, 0, 0];
    c.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    c.push(type_id);
    c.extend_from_slice(&stream_id.to_le_bytes());
    c.extend_from_slice(payload);
    c
}

fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn malformed_rtmp_closes_only_its_connection() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let mut publisher = publish_rtmp(&clip, &srv.rtmp_url("live/good"), true);
    let stream = srv.wait_stream("live/good");
    let addr = srv.server.rtmp_addr().unwrap();

    // An AMF0 command whose string length runs past the message.
    let mut absurd = vec![0x02, 0xff, 0xff];
    absurd.extend_from_slice(b"connect");
    // `play` on a message stream id that createStream never returned.
    let mut play_on_7 = vec![0x02, 0, 4];
    play_on_7.extend_from_slice(b"play");
    play_on_7.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0, 1, b'x']);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            chunk(1, 0, &0u32.to_be_bytes()),
            "chunk size 0 outside 1..=16777216 (rtmpMaxChunkSize)",
        ),
        (
            chunk(1, 0, &(32u32 << 20).to_be_bytes()),
            "chunk size 33554432 outside 1..=16777216",
        ),
        (chunk(20, 0, &absurd), "malformed AMF0"),
        (
            chunk(9, 5, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
            "message stream id 5, which is not publishing",
        ),
        (chunk(20, 7, &play_on_7), "which was never created"),
        (vec![0xc9, 1, 2, 3], "never started"),
    ];
    for (bytes, reason) in cases {
        let mut s = handshaken(addr);
        let port = s.local_addr().unwrap().port();
        s.write_all(&bytes).unwrap();
        assert!(
            closed_by_server(&mut s),
            "server kept the connection ({reason})"
        );
        wait_until(Duration::from_secs(5), "the warn line", || {
            !logs()
                .lines_with("WARN", &[&format!("127.0.0.1:{port}"), reason])
                .is_empty()
        });
        let before = stream.units_per_track()[0];
        wait_until(
            Duration::from_secs(10),
            "the good publisher to go on",
            || stream.units_per_track()[0] > before + 10,
        );
    }
    assert!(
        publisher.try_wait().unwrap().is_none(),
        "the good publisher was disconnected"
    );
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}
