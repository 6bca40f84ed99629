//! What a pulled HLS source may reach (issue 23, SSRF): a playlist served from a
//! private address names segments on this machine's loopback (where the API listens)
//! and on a link-local address (where cloud metadata services live). The source must
//! refuse both without connecting, say why once per retry, and serve nothing. Both
//! targets are listeners of the test's own (a veth in a namespace gives the private and
//! link-local addresses), so nothing leaves the machine even if the check broke.

mod common;

use common::netns::{ip, Netns, Veth};
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts connections to `addr`.
fn canary(addr: &str) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for _ in l.incoming() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    (port, n)
}

/// Serves `playlists` (path → body) over HTTP/1.1 on `listener`.
fn playlist_server(listener: TcpListener, playlists: Vec<(String, String)>) {
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let playlists = playlists.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                while let Ok(n) = s.read(&mut tmp) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("").to_string();
                        let (status, body) = playlists
                            .iter()
                            .find(|(p, _)| *p == target)
                            .map_or(("404 Not Found", String::new()), |(_, b)| {
                                ("200 OK", b.clone())
                            });
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

fn media_playlist(segment: &str) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\n{segment}\n#EXTINF:1.0,\n{segment}\n"
    )
}

#[test]
fn playlist_uris_cannot_send_a_source_to_loopback_or_link_local() {
    let pid = std::process::id();
    let Some(ns) = Netns::new("reach") else {
        return;
    };
    let veth = Veth::new(&ns, &format!("mrr{pid}"), &format!("mrq{pid}"));
    let private = format!("10.232.{}.1", pid % 250);
    let link_local = format!("169.254.232.{}", 1 + pid % 250);
    let (private_cidr, link_local_cidr) = (format!("{private}/30"), format!("{link_local}/32"));
    for args in [
        &["addr", "add", &private_cidr, "dev", &veth.host][..],
        &["addr", "add", &link_local_cidr, "dev", &veth.host],
    ] {
        assert!(ip(args), "ip {args:?}");
    }

    let (loop_port, loop_hits) = canary("127.0.0.1:0");
    let (ll_port, ll_hits) = canary(&format!("{link_local}:0"));
    let origin = TcpListener::bind(format!("{private}:0")).unwrap();
    let origin_addr = origin.local_addr().unwrap();
    playlist_server(
        origin,
        vec![
            (
                "/to-loopback/index.m3u8".into(),
                media_playlist(&format!(
                    "http://127.0.0.1:{loop_port}/v3/config/global/get"
                )),
            ),
            (
                "/to-link-local/index.m3u8".into(),
                media_playlist(&format!(
                    "http://{link_local}:{ll_port}/latest/meta-data/seg.ts"
                )),
            ),
        ],
    );
    let _srv = TestServer::start(&format!(
        "paths:\n  a:\n    source: http://{origin_addr}/to-loopback/index.m3u8\n  b:\n    source: http://{origin_addr}/to-link-local/index.m3u8\n"
    ));
    let refusals = |what: &str| {
        logs()
            .lines_with("WARN", &["source failed", what, "may not reach"])
            .len()
    };
    wait_until(
        Duration::from_secs(30),
        "two refusals for each source",
        || refusals("path=a") >= 2 && refusals("path=b") >= 2,
    );
    assert_eq!(
        loop_hits.load(Ordering::Relaxed),
        0,
        "the source connected to loopback"
    );
    assert_eq!(
        ll_hits.load(Ordering::Relaxed),
        0,
        "the source connected to link-local"
    );
    eprintln!(
        "{}",
        logs()
            .lines_with("WARN", &["may not reach"])
            .first()
            .cloned()
            .unwrap_or_default()
    );
}
