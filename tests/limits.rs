//! Connection limits and socket settings (issue 23): `maxConnectionsPerIP` and
//! `maxConnections` close what is over them at once, across every TCP listener, with one
//! warn line per burst naming the limit, while clients from other addresses (or once a
//! place is free) are served; `udpReadBufferSize` sets the UDP sockets' buffers.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// A TCP connection from `from` (a loopback address of its own) to `to`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0).into())
        .unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether an RTSP OPTIONS on `s` is answered (a refused connection is closed unread).
fn answers(s: &mut TcpStream) -> bool {
    if s.write_all(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"RTSP/1.0 200"))
}

#[test]
fn connections_over_the_per_address_limit_are_closed_and_others_served() {
    let srv = TestServer::start("maxConnectionsPerIP: 3\npaths:\n  all_others:\n");
    let rtsp = srv.addr;
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.1", rtsp)).collect();
    for s in held.iter_mut() {
        assert!(answers(s), "a connection within the limit was refused");
    }
    // The fourth from the same address, on any listener, is closed unanswered.
    let mut fourth = connect_from("127.0.0.1", rtsp);
    assert!(!answers(&mut fourth), "the fourth connection was served");
    let http = srv.server.http_addr().unwrap();
    let mut get = connect_from("127.0.0.1", http);
    let _ = get.write_all(b"GET /x/index.m3u8 HTTP/1.0\r\n\r\n");
    let mut b = Vec::new();
    let _ = get.read_to_end(&mut b);
    assert!(
        b.is_empty(),
        "HTTP served a fifth connection: {}",
        String::from_utf8_lossy(&b)
    );
    // Another address is served; a freed place is taken again.
    let mut other = connect_from("127.0.0.2", rtsp);
    assert!(answers(&mut other));
    drop(held.pop());
    let mut again = None;
    wait_until(Duration::from_secs(5), "the freed place", || {
        let mut s = connect_from("127.0.0.1", rtsp);
        let ok = answers(&mut s);
        again = Some(s);
        ok
    });
    let warns = logs().lines_with(
        "WARN",
        &["connection refused, maxConnectionsPerIP (3) reached"],
    );
    assert_eq!(warns.len(), 1, "one line per burst: {warns:?}");
    assert!(warns[0].contains("127.0.0.1"), "{warns:?}");
}

#[test]
fn the_overall_limit_counts_every_listener() {
    let srv = TestServer::start("maxConnections: 2\npaths:\n  all_others:\n");
    let rtsp = srv.addr;
    let mut a = connect_from("127.0.0.3", rtsp);
    assert!(answers(&mut a));
    let http = srv.server.http_addr().unwrap();
    let mut b = connect_from("127.0.0.4", http);
    // Answered (kept alive): it holds its place.
    b.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    b.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");
    let rtmp = srv.server.rtmp_addr().unwrap();
    let mut c = connect_from("127.0.0.5", rtmp);
    // RTMP's handshake starts with the client's C0+C1; a refused connection is closed.
    let _ = c.write_all(&[3u8; 1537]);
    let mut buf = [0u8; 1];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "a third connection was served"
    );
    assert!(!logs()
        .lines_with("WARN", &["maxConnections (2) reached"])
        .is_empty());
}

#[test]
fn udp_read_buffer_size_sets_the_udp_sockets_buffers() {
    let srv = TestServer::start("udpReadBufferSize: 1048576\npaths:\n  all_others:\n");
    let (rtp, _) = srv.server.rtsp_udp_ports().unwrap();
    let webrtc = srv.server.webrtc_udp_addr().unwrap().port();
    let out = std::process::Command::new("ss")
        .args(["-uamn"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for port in [rtp, webrtc] {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.contains(&format!("127.0.0.1:{port} ")));
        let _ = lines
            .next()
            .unwrap_or_else(|| panic!("port {port} not listed: {text}"));
        let mem = lines.next().unwrap_or_default();
        // Linux doubles what is asked (bookkeeping), so 1 MiB shows as 2 MiB.
        assert!(mem.contains("rb2097152"), "port {port}: {mem}");
    }
}

/// Seconds until the server closes `s` (reads and drops whatever it sends first).
fn closed_after(s: &mut TcpStream, limit: Duration) -> Option<f64> {
    let start = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) if start.elapsed() < limit => {
                return Some(start.elapsed().as_secs_f64())
            }
            Ok(n) if n > 0 => continue,
            _ => return None,
        }
    }
}

/// Slowloris and idle keep-alive on the HTTP listeners: a request head not complete
/// within `readTimeout`, or a kept-alive connection with no next request, is closed
/// (HLS/HTTP-FLV, the API and WebRTC alike); an HTTP-FLV reader streaming for longer
/// than `readTimeout` is not.
#[test]
fn http_clients_slower_than_read_timeout_are_closed_and_streams_are_not() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("readTimeout: 2s\npaths:\n  all_others:\n");
    let _publisher = Children(vec![publish(
        &clip(Clip::H264Aac, 6),
        &srv.url("live/cam"),
        "tcp",
        true,
    )]);
    srv.wait_stream("live/cam");
    let http = srv.server.http_addr().unwrap();
    let flv = std::thread::spawn(move || {
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (start, mut total, mut buf) = (std::time::Instant::now(), 0, [0u8; 65536]);
        while start.elapsed() < Duration::from_secs(5) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        (start.elapsed(), total)
    });
    let servers = [
        ("HTTP", http),
        ("API", srv.server.api_addr().unwrap()),
        ("WebRTC", srv.server.webrtc_addr().unwrap()),
    ];
    for (what, addr) in servers {
        let mut partial = TcpStream::connect(addr).unwrap();
        partial
            .write_all(b"GET /live/cam/index.m3u8 HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let t = closed_after(&mut partial, Duration::from_secs(8));
        assert!(
            t.is_some(),
            "{what}: a half-sent request head is still open after 8 s"
        );
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let t2 = closed_after(&mut idle, Duration::from_secs(8));
        assert!(
            t2.is_some(),
            "{what}: an idle kept-alive connection is still open after 8 s"
        );
        eprintln!(
            "{what}: half-sent head closed after {:.1} s, idle keep-alive after {:.1} s (readTimeout 2 s)",
            t.unwrap(),
            t2.unwrap()
        );
    }
    let (lasted, bytes) = flv.join().unwrap();
    assert!(
        lasted >= Duration::from_secs(5) && bytes > 200_000,
        "the HTTP-FLV reader was cut after {lasted:?} with {bytes} bytes"
    );
}
