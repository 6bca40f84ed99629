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

fn push(srv: &TestServer, path: &str, extra: &[&str]) -> Children {
    let http = srv.server.http_addr().unwrap();
    let clip = clip(Clip::H264Aac, 10);
    Children(vec![Command::new("ffmpeg")
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
        .expect("spawn ffmpeg HLS pusher")])
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

/// An fMP4 init section and the fragments of a 4 s HLS stream, as ffmpeg writes them.
fn fmp4_files() -> (Vec<u8>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(clip(Clip::H264Aac, 10))
        .args(["-t", "4", "-c", "copy", "-f", "hls", "-hls_time", "1"])
        .args(["-hls_segment_type", "fmp4", "-hls_playlist_type", "vod"])
        .arg(dir.path().join("index.m3u8"))
        .status()
        .unwrap();
    assert!(made.success());
    let init = std::fs::read(dir.path().join("init.mp4")).unwrap();
    let frags = (0..4)
        .map(|i| std::fs::read(dir.path().join(format!("index{i}.m4s"))).unwrap())
        .collect();
    (init, frags)
}

fn put(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> u16 {
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    raw(addr, &head, body)
}

/// ffmpeg doesn't wait for the answer to one PUT before the next, so an init section
/// and the first fragment can reach an idle path together: both must reach one ingest
/// (the one that loses the race to start the path neither is refused nor replaces
/// the other as a new publisher). The race is narrow: this test finds it only
/// sometimes when it is back.
#[test]
fn an_init_section_racing_the_first_fragment_is_taken() {
    if !have_ffmpeg() {
        return;
    }
    let (init, frags) = fmp4_files();
    let srv = TestServer::start("paths:\n  all_others:\n");
    let http = srv.server.http_addr().unwrap();
    // Both bodies but their last byte are sent, then both last bytes at once.
    let put = |path: String, body: &[u8], go: &std::sync::Barrier| {
        let mut s = TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..body.len() - 1]).unwrap();
        go.wait();
        s.write_all(&body[body.len() - 1..]).unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.split_whitespace().nth(1).unwrap_or("none").to_string()
    };
    for round in 0..40 {
        let go = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| put(format!("/race{round}/init.mp4"), &init, &go));
            let b = s.spawn(|| put(format!("/race{round}/index0.m4s"), &frags[0], &go));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!((a.as_str(), b.as_str()), ("201", "201"), "round {round}");
    }
    // Each path plays: its fragment was read with its init section.
    for round in 0..40 {
        srv.wait_stream(&format!("race{round}"));
    }
}

/// ffmpeg sends the init section once: a pusher whose ingest ended (here: quiet for
/// longer than the idle limit) goes on with fragments only, read with the init
/// section it sent before.
#[test]
fn a_pusher_cut_off_goes_on_without_sending_its_init_section_again() {
    if !have_ffmpeg() {
        return;
    }
    let (init, frags) = fmp4_files();
    let srv = TestServer::start("readTimeout: 1s\npaths:\n  all_others:\n");
    let http = srv.server.http_addr().unwrap();
    assert_eq!(put(http, "/cut/init.mp4", &init), 201);
    assert_eq!(put(http, "/cut/index0.m4s", &frags[0]), 201);
    srv.wait_stream("cut");
    wait_until(Duration::from_secs(20), "the idle ingest to end", || {
        srv.stream("cut").is_none()
    });
    for (i, frag) in frags.iter().enumerate().skip(1) {
        assert_eq!(put(http, &format!("/cut/index{i}.m4s"), frag), 201);
    }
    srv.wait_stream("cut");
}
