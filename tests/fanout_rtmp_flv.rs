//! 50 RTMP and 50 HTTP-FLV readers on one path, plus one stalled reader of each kind:
//! every reader gets ≥95 % of the frames sent while it was connected, and the stalled
//! ones are dropped by writeTimeout without disturbing the others. The readers are
//! light in-process clients (rml_rtmp's client session, a raw HTTP/FLV parser).

mod common;

use common::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rtmp_handshake(s: &mut TcpStream) -> Vec<u8> {
    let mut hs = Handshake::new(PeerType::Client);
    s.write_all(&hs.generate_outbound_p0_and_p1().unwrap())
        .unwrap();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                s.write_all(&response_bytes).unwrap()
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                s.write_all(&response_bytes).unwrap();
                return remaining_bytes;
            }
        }
    }
}

/// Plays `app/key` over RTMP; counts video frames (not sequence headers) until the end.
/// With `stall`, stops reading once playback starts.
fn rtmp_play(s: TcpStream, app: &str, key: &str, frames: Arc<AtomicU64>, stall: bool) {
    rtmp_play_with(s, app, key, stall, |data| {
        if data.get(1) == Some(&1) {
            frames.fetch_add(1, Ordering::Relaxed);
        }
        true
    })
}

/// Plays `app/key`, handing every video message body to `on_video` until it returns false.
fn rtmp_play_with(
    mut s: TcpStream,
    app: &str,
    key: &str,
    stall: bool,
    mut on_video: impl FnMut(&[u8]) -> bool,
) {
    let leftover = rtmp_handshake(&mut s);
    let (mut session, results) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    let mut queue: Vec<ClientSessionResult> = results;
    queue.push(session.request_connection(app.to_string()).unwrap());
    queue.extend(session.handle_input(&leftover).unwrap());
    let mut buf = vec![0u8; 65536];
    loop {
        for r in std::mem::take(&mut queue) {
            match r {
                ClientSessionResult::OutboundResponse(p) if s.write_all(&p.bytes).is_err() => {
                    return
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) => {
                    queue.push(session.request_playback(key.to_string()).unwrap());
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PlaybackRequestAccepted)
                    if stall =>
                {
                    // Keep the socket open, never read again.
                    std::thread::sleep(Duration::from_secs(60));
                    return;
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::VideoDataReceived {
                    data,
                    ..
                }) if !on_video(&data) => return,
                _ => {}
            }
        }
        if !queue.is_empty() {
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => match session.handle_input(&buf[..n]) {
                Ok(r) => queue.extend(r),
                Err(_) => return,
            },
        }
    }
}

/// Reads `/<path>.flv`; counts video frame tags until the end. With `stall`, reads nothing.
fn flv_play(mut s: TcpStream, path: &str, frames: Arc<AtomicU64>, stall: bool) {
    write!(s, "GET /{path}.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    if stall {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let mut raw: Vec<u8> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut header_done = false;
    let mut flv_pos = 13;
    let mut buf = vec![0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if !header_done {
            let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            raw.drain(..p + 4);
            header_done = true;
        }
        // Chunked transfer: <hex size>\r\n<data>\r\n
        while let Some(p) = raw.windows(2).position(|w| w == b"\r\n") {
            let Ok(size) =
                usize::from_str_radix(std::str::from_utf8(&raw[..p]).unwrap_or("x").trim(), 16)
            else {
                return;
            };
            if size == 0 {
                return;
            }
            if raw.len() < p + 2 + size + 2 {
                break;
            }
            body.extend_from_slice(&raw[p + 2..p + 2 + size]);
            raw.drain(..p + 2 + size + 2);
        }
        while let Ok(Some((tag, used))) =
            mediarouter::format::flv::parse_tag(body.get(flv_pos..).unwrap_or(&[]))
        {
            if tag.typ == 9 && tag.body.get(1) == Some(&1) {
                frames.fetch_add(1, Ordering::Relaxed);
            }
            flv_pos += used;
        }
    }
}

fn small_rcvbuf(srv: &TestServer, addr: SocketAddr) -> TcpStream {
    let s = srv.rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(addr).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s
}

#[test]
fn fifty_rtmp_and_fifty_http_flv_readers_with_stalled_ones() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("writeTimeout: 2s\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 12);
    let mut publisher = publish_rtmp(&clip, &srv.rtmp_url("live/fan"), false);
    let stream = srv.wait_stream("live/fan");
    let rtmp_addr = srv.server.rtmp_addr().unwrap();
    let http_addr = srv.server.http_addr().unwrap();

    let mut stalled_ports = Vec::new();
    for kind in ["rtmp", "flv"] {
        let addr = if kind == "rtmp" { rtmp_addr } else { http_addr };
        let s = small_rcvbuf(&srv, addr);
        stalled_ports.push((kind, s.local_addr().unwrap().port()));
        let counter = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || match kind {
            "rtmp" => rtmp_play(s, "live", "fan", counter, true),
            _ => flv_play(s, "live/fan", counter, true),
        });
    }
    let mut readers = Vec::new();
    for i in 0..100 {
        let counter = Arc::new(AtomicU64::new(0));
        let c = counter.clone();
        let handle = if i % 2 == 0 {
            let s = TcpStream::connect(rtmp_addr).unwrap();
            std::thread::spawn(move || rtmp_play(s, "live", "fan", c, false))
        } else {
            let s = TcpStream::connect(http_addr).unwrap();
            std::thread::spawn(move || flv_play(s, "live/fan", c, false))
        };
        readers.push((if i % 2 == 0 { "rtmp" } else { "flv" }, counter, handle));
    }
    wait_until(Duration::from_secs(20), "102 readers", || {
        srv.readers("live/fan") == 102
    });
    let at_connect = stream.units_per_track()[0];

    wait_until(
        Duration::from_secs(30),
        "the stalled readers to be dropped",
        || srv.readers("live/fan") == 100,
    );
    for (kind, port) in &stalled_ports {
        let lines = logs().lines_with("WARN", &[&format!(":{port}"), "write"]);
        assert_eq!(lines.len(), 1, "stalled {kind} reader: {lines:?}");
    }
    assert!(wait_child(&mut publisher, Duration::from_secs(40), "publisher").success());
    let sent = stream.units_per_track()[0] - at_connect;
    let mut worst = [f64::MAX, f64::MAX];
    for (kind, counter, handle) in readers {
        handle.join().unwrap();
        let share = counter.load(Ordering::Relaxed) as f64 / sent as f64;
        let w = &mut worst[usize::from(kind == "flv")];
        *w = w.min(share);
    }
    eprintln!(
        "fan-out: {sent} frames sent; worst RTMP reader {:.3}, worst HTTP-FLV reader {:.3}",
        worst[0], worst[1]
    );
    assert!(worst[0] >= 0.95 && worst[1] >= 0.95, "{worst:?}");
}

/// H.265 goes to Enhanced RTMP players (our client lists `hvc1` in `fourCcList`) as a
/// `hvc1` sequence start with the stream's hvcC, then coded frames; a classic player
/// (rml_rtmp's client, like ffmpeg 5.1, lists nothing) is refused with one warn.
#[test]
fn h265_reaches_enhanced_rtmp_players_and_classic_ones_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    use bytes::Bytes;
    use mediarouter::format::flv;
    use mediarouter::rtmp::client::{parse_url, Media, RtmpClient};
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H265Opus, 6);
    let mut publisher = publish(&clip, &srv.url("live/hevc"), "tcp", true);
    srv.wait_stream("live/hevc");
    let url = parse_url(&srv.rtmp_url("live/hevc")).unwrap();
    let bodies: Vec<Vec<u8>> = srv.rt.block_on(async {
        let mut c = RtmpClient::connect(&url).await.unwrap();
        c.play(&url.stream).await.unwrap();
        let (mut bodies, mut pending) = (Vec::new(), Vec::new());
        while bodies.len() < 20 {
            let more = tokio::time::timeout(Duration::from_secs(10), c.next_media(&mut pending))
                .await
                .expect("media within 10 s")
                .unwrap();
            assert!(more, "stream ended");
            for m in pending.drain(..) {
                if let Media::Video { body, .. } = m {
                    bodies.push(body.to_vec());
                }
            }
        }
        bodies
    });
    assert_eq!(&bodies[0][..5], b"\x90hvc1", "sequence start first");
    let Some((flv::VideoCodec::Hevc, flv::VideoPacket::SequenceHeader(record))) =
        flv::parse_video(&Bytes::from(bodies[0].clone())).unwrap()
    else {
        panic!("not an hvc1 sequence start");
    };
    assert!(!mediarouter::codec::config_record::parse_hvcc(&record)
        .unwrap()
        .sps
        .is_empty());
    let mut keyframes = 0;
    for b in &bodies[1..] {
        match flv::parse_video(&Bytes::from(b.clone())).unwrap() {
            Some((flv::VideoCodec::Hevc, flv::VideoPacket::Frame { keyframe, data, .. })) => {
                assert!(!flv::split_nalus(&data, 4).unwrap().is_empty());
                keyframes += usize::from(keyframe);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(keyframes >= 1, "the player starts at a keyframe");

    let s = TcpStream::connect(srv.server.rtmp_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = s.local_addr().unwrap().port();
    let mut classic = 0;
    rtmp_play_with(s, "live", "hevc", false, |_| {
        classic += 1;
        true
    });
    assert_eq!(classic, 0, "a classic player got H.265");
    let warns = logs().lines_with(
        "WARN",
        &[
            &format!("127.0.0.1:{port}"),
            "live/hevc",
            "RTMP play refused",
            "fourCcList",
        ],
    );
    assert_eq!(warns.len(), 1, "{warns:?}");
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}
