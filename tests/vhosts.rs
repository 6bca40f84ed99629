//! Vhosts (`pathVhosts: yes`, issue 24): the host an RTMP client names (its `tcUrl`,
//! or `?vhost=`) and an HTTP client's `Host` header go in front of the path, so
//! `live/a` of two domains are two streams with settings of their own; an address
//! names no vhost.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn rtmp_publish(clip: &std::path::Path, url: &str, extra: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// The status of `GET <target>` with `Host: <host>`.
fn get_with_host(addr: std::net::SocketAddr, target: &str, host: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {target} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    let _ = s.read(&mut head);
    String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0)
}

#[test]
fn vhosts_keep_domains_apart_over_rtmp_and_http() {
    if !have_ffmpeg() {
        return;
    }
    // One domain may have one reader of live/a; the others have no limit.
    let srv = TestServer::start(
        "pathVhosts: yes\nhlsVariant: mpegts\npaths:\n  b.example/live/a:\n    maxReaders: 1\n  all_others:\n",
    );
    let rtmp = srv.server.rtmp_addr().unwrap();
    let clip = clip(Clip::H264Aac, 6);
    let publishers = Children(vec![
        // The tcUrl names the host, as a client given rtmp://a.example/live/a sends.
        rtmp_publish(
            &clip,
            &format!("rtmp://{rtmp}/live/a"),
            &["-rtmp_tcurl", "rtmp://A.example:1935/live"],
        ),
        // SRS's ?vhost= on a URL with an address.
        rtmp_publish(&clip, &format!("rtmp://{rtmp}/live/a?vhost=b.example"), &[]),
        // An address: no vhost.
        rtmp_publish(&clip, &format!("rtmp://{rtmp}/live/a"), &[]),
    ]);
    for p in ["a.example/live/a", "b.example/live/a", "live/a"] {
        srv.wait_stream(p);
    }
    // HTTP: the Host header picks the domain's stream; only a.example publishes live/v.
    let http = srv.server.http_addr().unwrap();
    let port = http.port();
    let solo = rtmp_publish(
        &clip,
        &format!("rtmp://{rtmp}/live/v"),
        &["-rtmp_tcurl", "rtmp://a.example/live"],
    );
    let _solo = Children(vec![solo]);
    srv.wait_stream("a.example/live/v");
    assert_eq!(
        get_with_host(http, "/live/v/index.m3u8", &format!("a.example:{port}")),
        200
    );
    assert_eq!(
        get_with_host(http, "/live/v/index.m3u8", &format!("127.0.0.1:{port}")),
        404
    );
    assert_eq!(get_with_host(http, "/live/v/index.m3u8", "b.example"), 404);
    // b.example's own settings: one reader of live/a, then no more.
    let flv = |host: &str| {
        let mut s = std::net::TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET /live/a.flv HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        (String::from_utf8_lossy(&head[9..12]).to_string(), s)
    };
    let (first, _held) = flv("b.example");
    assert_eq!(first, "200");
    wait_until(Duration::from_secs(10), "b.example's reader", || {
        srv.readers("b.example/live/a") == 1
    });
    let (second, _) = flv("b.example");
    assert_ne!(second, "200", "maxReaders of b.example/live/a");
    let (other, _) = flv("a.example");
    assert_eq!(other, "200", "a.example/live/a has no reader limit");
    drop(publishers);
}
