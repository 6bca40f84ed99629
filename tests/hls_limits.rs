//! HLS limits: the muxer holds at most `hlsSegmentCount` segments through five
//! minutes of media (written faster than real time, muxed from the stream's start
//! under `hlsAlwaysRemux`), and `hlsDirectory` holds exactly what the window holds;
//! path traversal and junk URLs get 400/404, never a file.

mod common;

use common::http::get;
use common::*;
use mediarouter::core::Stream;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn frame(i: i64) -> mediarouter::core::Unit {
    numbered_frame(i as u32)
}

fn files(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn five_minutes_of_media_keep_segment_count_segments_in_memory_and_on_disk() {
    let disk = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&format!(
        "hlsAlwaysRemux: yes\nhlsSegmentCount: 7\nhlsMuxerCloseAfter: 1s\nhlsDirectory: {}\npaths:\n  all_others:\n",
        disk.path().display()
    ));
    let hls = srv.server.hls().unwrap();
    let publisher = srv
        .server
        .manager
        .add_publisher("live/mem", mediarouter::core::Peer::RtspSession)
        .unwrap();
    let stream = Stream::new(vec![h264_track()], srv.server.manager.stream_config());
    publisher.start(stream.clone()).unwrap();
    // hlsAlwaysRemux: the muxer starts with the stream, before any request.
    let mut muxer = None;
    wait_until(Duration::from_secs(5), "the muxer to start", || {
        muxer = hls.running("live/mem");
        muxer.is_some()
    });
    let muxer = muxer.unwrap();
    let dir = disk.path().join("live/mem");
    // 300 s at 30 fps, one second at a time: each second closes one segment.
    let mut next = write_gops(&stream, &muxer, 0, 1);
    let first = muxer.last_segment().unwrap();
    for s in 1..300u64 {
        for i in next..next + 30 {
            stream.write(frame(i));
        }
        next += 30;
        wait_until(Duration::from_secs(10), "the next segment", || {
            muxer.last_segment() == Some(first + s)
        });
        let (segments, parts) = muxer.held();
        assert!(segments <= 7, "{segments} segments after {s} s");
        assert!(parts <= 5 * 4, "{parts} parts after {s} s");
    }
    let last = muxer.last_segment().unwrap();
    let (segments, _) = muxer.held();
    assert_eq!(segments, 7);
    // On disk: the same seven segments, their init section and the playlist naming them
    // (the writer runs behind the window by a file operation or two).
    let want = format!("#EXT-X-MEDIA-SEQUENCE:{}\n", last - 6);
    let mut playlist = String::new();
    wait_until(Duration::from_secs(10), "hlsDirectory to catch up", || {
        playlist = std::fs::read_to_string(dir.join("stream.m3u8")).unwrap_or_default();
        let listed: BTreeSet<String> = playlist
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .chain(maps(&playlist))
            .chain(["stream.m3u8".to_string()])
            .collect();
        playlist.contains(&want) && files(&dir) == listed
    });
    assert_eq!(playlist.lines().filter(|l| l.starts_with("seg")).count(), 7);
    assert!(
        !playlist.contains("EXT-X-PART"),
        "disk playlists list segments only"
    );
    drop(publisher);
}

/// The init sections a playlist's `EXT-X-MAP` tags name, in order.
fn maps(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .filter_map(|r| r.split('"').next())
        .map(str::to_string)
        .collect()
}

fn raw_get(addr: std::net::SocketAddr, target: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Long targets may be refused before they are read whole; that's fine.
    let _ = write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    );
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    if resp.len() < 12 {
        return (0, resp); // closed without a response
    }
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap_or(0);
    (status, resp)
}

#[test]
fn traversal_and_junk_urls_never_reach_a_file() {
    let disk = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(disk.path().join("cam")).unwrap();
    std::fs::write(disk.path().join("cam/secret.txt"), "secret").unwrap();
    let srv = TestServer::start(&format!(
        "hlsDirectory: {}\npaths:\n  all_others:\n",
        disk.path().display()
    ));
    let http = srv.server.http_addr().unwrap();
    let long = format!("/{}/index.m3u8", "a".repeat(5000));
    let huge = format!("/{}", "b/".repeat(40_000));
    for target in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/cam/../../../etc/passwd",
        "/cam/..%2F..%2Fetc/passwd",
        "/cam/secret.txt",
        "/cam/%2e%2e/secret.txt",
        "/cam/seg-1.ts",
        "/cam/part.mp4",
        "/cam/init0.mp4x",
        "/cam/seg99999999999999999999999999.ts",
        "//",
        "/./index.m3u8",
        long.as_str(),
        huge.as_str(),
    ] {
        let (status, resp) = raw_get(http, target);
        let body = String::from_utf8_lossy(&resp);
        assert!(
            matches!(status, 0 | 400 | 404 | 414 | 431),
            "{target}: {status}"
        );
        assert!(
            !body.contains("root:") && !body.contains("secret"),
            "{target}: {body}"
        );
    }
    // The player page of a valid name is served, whoever publishes.
    let (status, body) = get(http, "/cam/");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("hls.min.js"));
    assert_eq!(get(http, "/cam/hls.min.js").0, 200);
}

#[test]
fn hls_responses_carry_the_allowed_origin_only() {
    let srv = TestServer::start(
        "hlsVariant: fmp4\nhlsAllowOrigins: ['http://example.com']\npaths:\n  all_others:\n",
    );
    let http = srv.server.http_addr().unwrap();
    let publisher = srv
        .server
        .manager
        .add_publisher("cors", mediarouter::core::Peer::RtspSession)
        .unwrap();
    let stream = Stream::new(vec![h264_track()], srv.server.manager.stream_config());
    publisher.start(stream.clone()).unwrap();
    // A publisher writing in real time (bounded to 30 s) while the requests run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, stream) = (stop.clone(), stream.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            for i in 0..900 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let due = start + Duration::from_millis(i as u64 * 1000 / 30);
                if let Some(d) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(d); // the publisher's pace
                }
                stream.write(frame(i));
            }
        })
    };
    let with_origin = |origin: &str| {
        let mut s = TcpStream::connect(http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /cors/stream.m3u8 HTTP/1.0\r\nHost: t\r\nOrigin: {origin}\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp.to_lowercase()
    };
    let ok = with_origin("http://example.com");
    assert!(ok.starts_with("http/1.0 200"), "{ok}");
    assert!(
        ok.contains("access-control-allow-origin: http://example.com\r\n"),
        "{ok}"
    );
    let other = with_origin("http://elsewhere.example");
    assert!(other.starts_with("http/1.0 200"), "{other}");
    assert!(!other.contains("access-control-allow-origin"), "{other}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    drop(publisher);
}

/// Writes one-second GOPs from keyframe `from` until the muxer has closed `segments`
/// more segments. The muxer may subscribe a little after it is counted as a reader
/// (its task can be preempted in between), missing a keyframe or two: a GOP that
/// closes nothing within 2 s is followed by another, up to 20.
fn write_gops(
    stream: &Stream,
    muxer: &mediarouter::hls::HlsMuxer,
    from: i64,
    segments: usize,
) -> i64 {
    let mut closed = 0;
    let mut last = muxer.last_segment();
    for g in 0..20 {
        let first = from + g * 30;
        for i in first..first + 30 {
            stream.write(frame(i));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while muxer.last_segment() == last && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if muxer.last_segment() != last {
            last = muxer.last_segment();
            closed += 1;
            if closed == segments {
                return first + 30;
            }
        }
    }
    panic!("only {closed} of {segments} segments after 20 GOPs");
}

#[test]
fn a_new_publisher_starts_a_discontinuity_with_a_new_init_section() {
    for variant in ["mpegts", "lowLatency"] {
        let srv = TestServer::start(&format!(
            "hlsVariant: {variant}\nhlsAlwaysRemux: yes\npaths:\n  all_others:\n"
        ));
        let http = srv.server.http_addr().unwrap();
        let hls = srv.server.hls().unwrap();
        // Streams made in the runtime get their flusher, as publishers' streams do.
        let _rt = srv.rt.enter();
        let mut muxer = None;
        for publisher_no in 0..2 {
            let publisher = srv
                .server
                .manager
                .add_publisher("cam", mediarouter::core::Peer::RtspSession)
                .unwrap();
            let stream = Stream::new(vec![h264_track()], srv.server.manager.stream_config());
            publisher.start(stream.clone()).unwrap();
            // The first keyframe waits in the GOP cache until the muxer subscribes.
            stream.write(frame(0));
            wait_until(Duration::from_secs(10), "the muxer to read", || {
                srv.readers("cam") == 1
            });
            let m = muxer.get_or_insert_with(|| hls.running("cam").unwrap());
            let before = m.last_segment();
            for i in 1..30 {
                stream.write(frame(i));
            }
            let _ = write_gops(&stream, m, 30, 3);
            assert_ne!(m.last_segment(), before, "publisher {publisher_no}");
            drop(publisher);
            wait_until(Duration::from_secs(10), "the muxer to let go", || {
                srv.readers("cam") == 0
            });
        }
        let (status, body) = get(http, "/cam/stream.m3u8");
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        if variant == "lowLatency" {
            // Two init sections (ids go on from the muxer's first), the second after
            // the discontinuity; both still served.
            let inits = maps(&text);
            assert_eq!(inits.len(), 2, "{text}");
            assert!(
                text.contains(&format!(
                    "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"{}\"\n",
                    inits[1]
                )),
                "{text}"
            );
            for init in &inits {
                assert_eq!(get(http, &format!("/cam/{init}")).0, 200);
            }
        }
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            m3u8_rs::Playlist::MediaPlaylist(m) => m,
            other => panic!("{other:?}"),
        };
        let seqs: Vec<u64> = (0..parsed.segments.len() as u64)
            .map(|i| parsed.media_sequence + i)
            .collect();
        assert!(seqs.len() >= 5, "{text}");
    }
}
