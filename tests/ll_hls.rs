//! Low-Latency HLS blocking requests against a publisher whose every frame's write
//! time is known (an in-process publisher writing 30 fps H.264 in real time; each
//! frame carries its number): a request for the preload-hinted part, and a blocking
//! playlist reload for the next part, must return within `hlsPartDuration` + 100 ms of
//! the frame that completes the part; requests too far ahead get 400.

mod common;

use common::http::get;
use common::*;
use mp4_atom::{Decode, Moof};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const PART: Duration = Duration::from_millis(200);

/// The number of the last video frame in a part (`moof` + `mdat`).
fn last_frame(part: &[u8]) -> u32 {
    let moof = Moof::decode(&mut &part[..]).unwrap();
    let traf = &moof.traf[0];
    let samples: Vec<_> = traf.trun[0].samples.iter().collect();
    let offset = traf.trun[0].data_offset.unwrap() as usize;
    let before: usize = samples[..samples.len() - 1]
        .iter()
        .map(|s| s.size.unwrap() as usize)
        .sum();
    let nal = &part[offset + before + 4..];
    u32::from_be_bytes(nal[2..6].try_into().unwrap())
}

fn playlist(http: SocketAddr, query: &str) -> (u16, String) {
    let (status, body) = get(http, &format!("/ll/stream.m3u8{query}"));
    (status, String::from_utf8(body).unwrap())
}

/// (segment, part index in it) of the last part listed, and the preload hint's id.
fn edge(text: &str) -> (u64, u64, u64) {
    let mut msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let (mut seg, mut part, mut last) = (msn, 0, (msn, 0));
    for l in text.lines() {
        if l.starts_with("#EXT-X-PART:") {
            last = (seg, part);
            part += 1;
        } else if !l.starts_with('#') && !l.is_empty() {
            seg += 1;
            part = 0;
        }
    }
    msn = last.0;
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"))
        .unwrap()
        .trim_end_matches(".mp4\"")
        .parse()
        .unwrap();
    (msn, last.1, hint)
}

#[test]
fn blocking_requests_return_as_soon_as_the_part_is_complete() {
    let srv = TestServer::start(
        "hlsVariant: lowLatency\nhlsPartDuration: 200ms\npaths:\n  all_others:\n",
    );
    let http = srv.server.http_addr().unwrap();
    let track = h264_track();
    let publisher = srv
        .server
        .manager
        .add_publisher("ll", mediarouter::core::Peer::RtspSession)
        .unwrap();
    let stream = mediarouter::core::Stream::new(vec![track], srv.server.manager.stream_config());
    publisher.start(stream.clone()).unwrap();

    // Frames written at 30 fps; written[i] is when frame i went in.
    let written: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (written, stop, stream) = (written.clone(), stop.clone(), stream.clone());
        thread::spawn(move || {
            let start = Instant::now();
            // Bounded: 60 s of frames at most.
            for i in 0..1800u32 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let due = start + Duration::from_secs_f64(f64::from(i) / 30.0);
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(d); // the publisher's pace, not a wait for a condition
                }
                written.lock().unwrap().push(Instant::now());
                stream.write(numbered_frame(i));
            }
        })
    };
    let completed_at = |part: &[u8]| -> Instant {
        let next = last_frame(part) as usize + 1;
        let mut at = None;
        wait_until(
            Duration::from_secs(5),
            "the completing frame's write",
            || {
                at = written.lock().unwrap().get(next).copied();
                at.is_some()
            },
        );
        at.unwrap()
    };

    // The first request starts the muxer and waits for the first segment.
    assert_eq!(get(http, "/ll/index.m3u8").0, 200);
    let mut delays = Vec::new();
    for _ in 0..4 {
        // The preload-hinted part: answered once complete.
        let (_, text) = playlist(http, "");
        let (_, _, hint) = edge(&text);
        let (status, data) = get(http, &format!("/ll/part{hint}.mp4"));
        let got = Instant::now();
        assert_eq!(status, 200);
        delays.push(got.duration_since(completed_at(&data)));

        // A blocking reload for the part after the last listed one.
        let (_, text) = playlist(http, "");
        let (msn, part, hint) = edge(&text);
        let (status, text) = playlist(http, &format!("?_HLS_msn={msn}&_HLS_part={}", part + 1));
        let got = Instant::now();
        assert_eq!(status, 200);
        assert!(text.contains(&format!("URI=\"part{hint}.mp4\"")), "{text}");
        let (status, data) = get(http, &format!("/ll/part{hint}.mp4"));
        assert_eq!(status, 200);
        delays.push(got.duration_since(completed_at(&data)));
    }
    eprintln!("blocking request delays after part completion: {delays:?}");
    for d in &delays {
        assert!(*d <= PART + Duration::from_millis(100), "{delays:?}");
    }

    // Too far ahead: 400 at once, as the LL-HLS draft says.
    let (_, text) = playlist(http, "");
    let (msn, part, _) = edge(&text);
    assert_eq!(playlist(http, &format!("?_HLS_msn={}", msn + 3)).0, 400);
    assert_eq!(
        playlist(http, &format!("?_HLS_msn={msn}&_HLS_part={}", part + 16)).0,
        400
    );
    assert_eq!(playlist(http, "?_HLS_part=1").0, 400);
    assert_eq!(get(http, "/ll/part999999.mp4").0, 404);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    drop(publisher);
}
