//! HLS through an HTTP cache (issue 24): Debian's nginx with `proxy_cache` (its own
//! prefix, in a network namespace of its own reached over a veth pair) between the
//! server and 100 HLS readers of the load tool. The
//! server's headers alone make the cache correct and useful: segments are immutable
//! under names never reused, playlists are fresh for half a segment (`no-cache` under a
//! second) with an `ETag`. Checked: ≥ 95 % of segment requests are cache hits, every
//! reader gets every segment (no media sequence skipped), and a conditional playlist
//! request gets a 304.

mod common;

use common::netns::{ip, Netns, Veth};
use common::*;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn have_nginx() -> bool {
    let ok = Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    present(
        ok,
        "this test needs nginx (.ci/run installs it)",
        "skipping: nginx not installed",
    )
}

/// nginx in `ns` on `listen` caching what `upstream` serves; its log line per request
/// is `<cache status> <URI>`.
fn start_cache(
    ns: &Netns,
    prefix: &std::path::Path,
    listen: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> Child {
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let p = prefix.display();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("  {t}_temp_path {p}/{t};\n"))
        .collect();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/logs/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n{temp}\
               proxy_cache_path {p}/cache levels=1:2 keys_zone=hls:10m max_size=200m inactive=60s use_temp_path=off;\n\
               log_format cache '$upstream_cache_status $request_uri';\n\
               access_log {p}/logs/access.log cache;\n\
               upstream edge {{ server {upstream}; keepalive 16; }}\n\
               server {{\n    listen {listen};\n    location / {{\n\
                   proxy_pass http://edge;\n      proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n      proxy_cache hls;\n\
                   proxy_cache_lock on;\n      proxy_cache_lock_timeout 5s;\n    }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let child = ns
        .cmd("nginx")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .spawn()
        .expect("start nginx");
    wait_until(Duration::from_secs(10), "nginx to listen", || {
        TcpStream::connect(listen).is_ok()
    });
    child
}

/// A GET with `extra` request header lines (each ending in CRLF): the status and the
/// response head, lowercased.
fn head(addr: std::net::SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.0\r\n{extra}");
    let (status, head, _) = common::http::request_from(None, addr, request.trim_end(), b"");
    (status, head.to_ascii_lowercase())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn an_http_cache_absorbs_segment_requests() {
    if !have_ffmpeg() || !have_nginx() {
        return;
    }
    // The cache's namespace, joined to this one by a veth pair with a /30 on it.
    let Some(ns) = Netns::new("cdn") else { return };
    let pid = std::process::id();
    let _veth = Veth::new(&ns, &format!("mrh{pid}"), &format!("mrn{pid}"));
    let subnet = format!("10.234.{}", pid % 250);
    assert!(ip(&[
        "addr",
        "add",
        &format!("{subnet}.1/30"),
        "dev",
        &format!("mrh{pid}")
    ]));
    assert!(ip(&[
        "-n",
        &ns.0,
        "addr",
        "add",
        &format!("{subnet}.2/30"),
        "dev",
        &format!("mrn{pid}")
    ]));
    // The server's HTTP listener on this end of the pair, for the cache to reach.
    let mut cfg = mediarouter::config::Config::parse(
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\n\
         webrtc: no\nsrt: no\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\nhlsAlwaysRemux: yes\npaths:\n  all_others:\n",
        "test",
    )
    .unwrap();
    cfg.hls_address = mediarouter::config::ListenAddress(format!("{subnet}.1:0").parse().unwrap());
    let srv = TestServer::with_config(cfg);
    let mut publisher = publish_rtmp(&clip(Clip::H264Aac, 10), &srv.rtmp_url("live/c"), true);
    srv.wait_stream("live/c");
    let edge = srv.server.http_addr().unwrap();

    // The headers, straight from the server.
    let mut playlist = (0, String::new());
    wait_until(Duration::from_secs(30), "the media playlist", || {
        playlist = head(edge, "/live/c/stream.m3u8", "");
        playlist.0 == 200
    });
    assert_eq!(
        header(&playlist.1, "cache-control"),
        Some("no-cache"),
        "{}",
        playlist.1
    );
    let etag = header(&playlist.1, "etag")
        .expect("a playlist ETag")
        .to_string();
    let (st, again) = head(
        edge,
        "/live/c/stream.m3u8",
        &format!("If-None-Match: {etag}\r\n"),
    );
    // The playlist may have moved on in between (a new segment): then a 200, new tag.
    assert!(
        st == 304 || (st == 200 && header(&again, "etag") != Some(&etag)),
        "{st}: {again}"
    );
    let (_, body) = common::http::get(edge, "/live/c/stream.m3u8");
    let seg = String::from_utf8_lossy(&body)
        .lines()
        .rfind(|l| l.starts_with("seg"))
        .expect("a segment")
        .to_string();
    let (st, seg_head) = head(edge, &format!("/live/c/{seg}"), "");
    assert_eq!(st, 200);
    assert_eq!(
        header(&seg_head, "cache-control"),
        Some("public, max-age=86400, immutable")
    );
    let (st, gone) = head(edge, "/live/c/seg1.ts", "");
    assert_eq!(
        (st, header(&gone, "cache-control")),
        (404, Some("no-store"))
    );

    // 100 readers through the cache.
    let prefix = tempfile::tempdir().unwrap();
    let cache: std::net::SocketAddr = format!("{subnet}.2:8080").parse().unwrap();
    let mut nginx = start_cache(&ns, prefix.path(), cache, edge);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("hls.json");
    let secs = 10;
    let mut tool = Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args(["-n", "100", "--ramp", "50", "--warmup", "2", "-d"])
        .arg(secs.to_string())
        .args(["--fps", "30", "--timeout", "15", "--json"])
        .arg(&json)
        .arg(format!("http://{cache}/live/c/index.m3u8"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load");
    let st = wait_child(&mut tool, Duration::from_secs(90), "mediarouter-load");
    let _ = nginx.kill();
    let _ = nginx.wait();
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(st.success(), "mediarouter-load failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert_eq!(s["connected"], 100, "{s}");
    assert_eq!(s["gaps_total"], 0, "{s}");
    // Segments come a second apart: a reader's window can end just before one (its
    // minimum), so the mean is what says frames went missing.
    assert!(s["delivery_mean"].as_f64().unwrap() >= 0.9, "{s}");

    // Each request nginx served: answered from the cache (HIT) or sent on to us.
    let log = std::fs::read_to_string(prefix.path().join("logs/access.log")).unwrap();
    let lines: Vec<(&str, &str)> = log.lines().filter_map(|l| l.split_once(' ')).collect();
    let segs: Vec<&str> = lines
        .iter()
        .filter(|(_, uri)| uri.ends_with(".ts"))
        .map(|(st, _)| *st)
        .collect();
    let hits = segs.iter().filter(|s| **s == "HIT").count();
    let upstream = lines.iter().filter(|(st, _)| *st != "HIT").count();
    let ratio = hits as f64 / segs.len().max(1) as f64;
    eprintln!(
        "HLS through nginx proxy_cache, 100 readers: {} requests ({} segments), {:.1} % of segment requests hit the cache; {} reached mediarouter ({:.0}/s over the run, against {:.0}/s without the cache)",
        lines.len(),
        segs.len(),
        ratio * 100.0,
        upstream,
        upstream as f64 / (secs as f64 + 4.0),
        lines.len() as f64 / (secs as f64 + 4.0),
    );
    assert!(segs.len() >= 100, "{} segment requests", segs.len());
    assert!(
        ratio >= 0.95,
        "{:.1} % of segment requests hit",
        ratio * 100.0
    );
}
