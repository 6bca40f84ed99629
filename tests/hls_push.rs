//! HLS push ingest (issue 25): ffmpeg's HLS muxer PUTs a live stream (MPEG-TS and
//! fMP4 segments) to `http://host:8888/<path>/index.m3u8`; RTSP and RTMP readers get
//! its frames and the path's own HLS muxer serves its own playlist. Publishing needs
//! the publish permission; oversized and unknown bodies are refused.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn push(srv: &TestServer, path: &str, extra: &[&str]) -> Kill {
    let http = srv.server.http_addr().unwrap();
    let clip = clip(Clip::H264Aac, 10);
    Kill(
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
            .arg(&clip)
            .args([
                "-c",
                "copy",
                "-f",
                "hls",
                "-method",
                "PUT",
                "-hls_time",
                "1",
            ])
            .args(["-hls_flags", "delete_segments"])
            .args(extra)
            .arg(format!("http://{http}/{path}/index.m3u8"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg HLS pusher"),
    )
}

fn read_rtsp_and_rtmp(srv: &TestServer, path: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut readers: Vec<(&str, std::path::PathBuf, Child)> =
        [("rtsp", srv.url(path)), ("rtmp", srv.rtmp_url(path))]
            .into_iter()
            .map(|(name, url)| {
                let out = dir.path().join(format!("{name}.mkv"));
                let child = read_for(&url, 4, &out);
                (name, out, child)
            })
            .collect();
    for (name, out, child) in &mut readers {
        assert!(
            wait_child(child, Duration::from_secs(40), name).success(),
            "{name}"
        );
        let probed = probe(out);
        assert!(
            probed.iter().any(|s| s.codec == "h264"),
            "{name}: {probed:?}"
        );
        assert!(
            probed.iter().any(|s| s.codec == "aac"),
            "{name}: {probed:?}"
        );
        let complete = video_completeness(out, 30.0);
        eprintln!("HLS push {path} → {name}: video completeness {complete:.3}");
        // Above 1: timestamps run slow (a clock mixed up), which players show as stutter.
        assert!((0.9..=1.05).contains(&complete), "{name}: {complete}");
    }
}

#[test]
fn ffmpeg_pushes_mpegts_hls_and_every_protocol_reads_it() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("hlsVariant: mpegts\npaths:\n  all_others:\n");
    let _pusher = push(&srv, "pushed", &[]);
    srv.wait_stream("pushed");
    read_rtsp_and_rtmp(&srv, "pushed");
    // The path's playlist is the server's muxer's, not the pusher's.
    let http = srv.server.http_addr().unwrap();
    let (status, body) = common::http::get(http, "/pushed/index.m3u8");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("#EXTM3U") && !text.contains("index0.ts"),
        "{text}"
    );
    let path: serde_json::Value = {
        let (_, b) = common::http::get(srv.server.api_addr().unwrap(), "/v3/paths/get/pushed");
        serde_json::from_slice(&b).unwrap()
    };
    assert_eq!(path["source"]["type"], "hlsPublisher", "{path}");
}

#[test]
fn ffmpeg_pushes_fmp4_hls() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let _pusher = push(&srv, "fmp4", &["-hls_segment_type", "fmp4"]);
    srv.wait_stream("fmp4");
    read_rtsp_and_rtmp(&srv, "fmp4");
}

/// A raw request; the status the server answered.
fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer and close before the body is all sent.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn pushing_needs_the_publish_permission_and_bodies_are_bounded() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "authInternalUsers:\n  - user: pusher\n    pass: Push-Secret-1\n    permissions: [{action: publish}]\n  - user: any\n    permissions: [{action: read}]\npaths:\n  all_others:\n",
    );
    let http = srv.server.http_addr().unwrap();
    let ts = vec![0x47u8; 188 * 10];
    let put = |path: &str, auth: &str, len: usize| {
        format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    // No credentials, or a reader's: refused.
    assert_eq!(raw(http, &put("/cam/index0.ts", "", ts.len()), &ts), 401);
    let basic = "Authorization: Basic cHVzaGVyOlB1c2gtU2VjcmV0LTE=\r\n"; // pusher:Push-Secret-1
                                                                         // Not a segment, a playlist or an init section.
    assert_eq!(
        raw(http, &put("/cam/x.bin", basic, 11), b"hello world"),
        415
    );
    // Larger than a segment may be.
    let big = vec![0x47u8; 33 << 20];
    assert_eq!(raw(http, &put("/cam/big.ts", basic, big.len()), &big), 413);
    // DELETE of an old segment is acknowledged (nothing is stored).
    assert_eq!(
        raw(
            http,
            &format!(
                "DELETE /cam/index0.ts HTTP/1.1\r\nHost: x\r\n{basic}Connection: close\r\n\r\n"
            ),
            b""
        ),
        204
    );
    assert!(srv.stream("cam").is_none());

    // ffmpeg with the credentials publishes.
    let _pusher = push(
        &srv,
        "cam",
        &[
            "-headers",
            "Authorization: Basic cHVzaGVyOlB1c2gtU2VjcmV0LTE=\r\n",
        ],
    );
    srv.wait_stream("cam");
    read_rtsp_and_rtmp(&srv, "cam");
}
