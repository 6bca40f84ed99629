//! SRT over a lossy link (issue 25): 2 % loss each way and 40 ms delay each way between
//! an ffmpeg SRT publisher (`latency=200ms`) and the server. This kernel has no
//! `sch_netem`, so the link is a relay in the test, as in `faults_loss.rs`. SRT's
//! retransmissions must deliver every frame; the same MPEG-TS over plain UDP through
//! the same link loses frames, which the second test measures.

mod common;

use common::*;
use mediarouter::core::{Payload, Unit};
use mediarouter::format::mpegts::ingest::TsIngest;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOSS: f64 = 0.02;
const DELAY: Duration = Duration::from_millis(40);
/// Datagrams let through before losses start: the handshake.
const CLEAN_START: u64 = 20;

/// One direction of the link: what arrives on `from` goes out of `out` to `to` (or to
/// whoever last sent to `out`'s peer side, for the way back) 40 ms later, bar 2 %.
struct Direction {
    seen: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

fn direction(
    from: UdpSocket,
    out: UdpSocket,
    to: Arc<Mutex<Option<SocketAddr>>>,
    learn: Option<Arc<Mutex<Option<SocketAddr>>>>,
    seed: u64,
    stop: Arc<AtomicBool>,
    copy: Option<mpsc::Sender<Vec<u8>>>,
) -> Direction {
    let (seen, dropped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (s, d) = (seen.clone(), dropped.clone());
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        let mut rng = Lcg(seed);
        let mut buf = [0u8; 2048];
        from.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while !stop2.load(Ordering::Relaxed) {
            let Ok((n, peer)) = from.recv_from(&mut buf) else {
                continue;
            };
            if let Some(l) = &learn {
                *l.lock().unwrap() = Some(peer);
            }
            if let Some(c) = &copy {
                let _ = c.send(buf[..n].to_vec());
            }
            let i = s.fetch_add(1, Ordering::Relaxed);
            if i >= CLEAN_START && rng.unit() < LOSS {
                d.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let _ = tx.send((Instant::now() + DELAY, buf[..n].to_vec()));
        }
    });
    // A constant delay keeps order: the queue is sent as each datagram falls due.
    std::thread::spawn(move || {
        while let Ok((due, data)) = rx.recv() {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if let Some(to) = *to.lock().unwrap() {
                let _ = out.send_to(&data, to);
            }
        }
    });
    Direction { seen, dropped }
}

struct Link {
    addr: SocketAddr,
    up: Direction,
    down: Direction,
    stop: Arc<AtomicBool>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A lossy link in front of `server`: callers send to the returned address.
fn link(server: SocketAddr, seed: u64) -> Link {
    let near = UdpSocket::bind("127.0.0.1:0").unwrap();
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = near.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let caller = Arc::new(Mutex::new(None));
    let up = direction(
        near.try_clone().unwrap(),
        far.try_clone().unwrap(),
        Arc::new(Mutex::new(Some(server))),
        Some(caller.clone()),
        seed,
        stop.clone(),
        None,
    );
    let down = direction(far, near, caller, None, seed ^ 0x5555, stop.clone(), None);
    Link {
        addr,
        up,
        down,
        stop,
    }
}

#[test]
fn srt_recovers_two_percent_loss_at_forty_ms() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let srt = srv.server.srt_addr();
    if !present(
        srt.is_some(),
        "the SRT listener did not start (libsrt missing?)",
        "skipping: no libsrt",
    ) {
        return;
    }
    let srt = srt.unwrap();
    let link = link(srt, 25);
    let clip = clip(Clip::H264Aac, 10);
    let url = format!(
        "srt://{}?streamid=publish:lossy&pkt_size=1316&latency=200000",
        link.addr
    );
    let mut publisher = Children(vec![Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "mpegts", &url])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()]);
    srv.wait_stream("lossy");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&srv.url("lossy"), 7, &out);
    // The counters while the publisher is still connected.
    wait_until(Duration::from_secs(30), "the link to drop packets", || {
        link.up.dropped.load(Ordering::Relaxed) > 20
    });
    let (status, body) = common::http::get(srv.server.api_addr().unwrap(), "/v3/srtconns/list");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let conn = list["items"][0].clone();
    assert!(wait_child(&mut reader, Duration::from_secs(40), "RTSP reader").success());
    drop(publisher.0.drain(..));

    let (sent, dropped) = (
        link.up.seen.load(Ordering::Relaxed),
        link.up.dropped.load(Ordering::Relaxed),
    );
    let (acks, acks_dropped) = (
        link.down.seen.load(Ordering::Relaxed),
        link.down.dropped.load(Ordering::Relaxed),
    );
    let complete = video_completeness(&out, 30.0);
    let frames = probe(&out).first().map_or(0, |p| p.packets);
    eprintln!(
        "SRT, 2 % loss and 40 ms each way, latency 200 ms: {dropped} of {sent} datagrams to the \
         server dropped, {acks_dropped} of {acks} back; server: {} lost, {} retransmitted \
         received, {} never recovered, RTT {} ms; reader: {frames} video frames, completeness {complete:.4}",
        conn["packetsReceivedLoss"], conn["packetsReceivedRetrans"], conn["packetsReceivedDrop"], conn["msRTT"]
    );
    assert!(conn["packetsReceivedLoss"].as_i64().unwrap() > 0, "{conn}");
    assert!(
        conn["packetsReceivedRetrans"].as_i64().unwrap() > 0,
        "{conn}"
    );
    assert_eq!(
        conn["packetsReceivedDrop"].as_i64().unwrap(),
        0,
        "a packet was never recovered: {conn}"
    );
    // Every frame of the window, none missing.
    assert!(complete >= 0.999, "{complete}");
}

/// Video units of a TS byte stream, by PTS.
fn video_frames(datagrams: &[Vec<u8>]) -> HashMap<i64, Vec<u8>> {
    let mut ing = TsIngest::default();
    let mut units: Vec<Unit> = Vec::new();
    for d in datagrams {
        // A lost datagram breaks the PES it was in, which is what is measured.
        let _ = ing.push(d, &mut units);
    }
    units
        .into_iter()
        .filter(|u| u.track == 0)
        .filter_map(|u| match u.payload {
            Payload::Nalus(n) => Some((u.pts, n.iter().flat_map(|b| b.to_vec()).collect())),
            _ => None,
        })
        .collect()
}

#[test]
fn plain_udp_over_the_same_link_loses_frames() {
    if !have_ffmpeg() {
        return;
    }
    let near = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = near.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (copy_tx, copy_rx) = mpsc::channel();
    let _up = direction(
        near,
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        Arc::new(Mutex::new(Some(sink.local_addr().unwrap()))),
        None,
        25,
        stop.clone(),
        Some(copy_tx),
    );
    let clip = clip(Clip::H264Aac, 10);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-t", "5", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(format!("udp://{addr}?pkt_size=1316"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut arrived = Vec::new();
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    loop {
        match sink.recv(&mut buf) {
            Ok(n) => arrived.push(buf[..n].to_vec()),
            Err(_) if ffmpeg.try_wait().unwrap().is_some() => break,
            Err(_) => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ffmpeg ran too long"
        );
    }
    // The datagrams in flight when ffmpeg ended.
    let end = Instant::now() + DELAY * 3;
    while Instant::now() < end {
        if let Ok(n) = sink.recv(&mut buf) {
            arrived.push(buf[..n].to_vec());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<Vec<u8>> = copy_rx.try_iter().collect();
    let (all, got) = (video_frames(&sent), video_frames(&arrived));
    let whole = all
        .iter()
        .filter(|(pts, f)| got.get(pts) == Some(f))
        .count();
    eprintln!(
        "plain UDP, same link: {} of {} datagrams dropped; {} of {} video frames arrived whole",
        sent.len() - arrived.len(),
        sent.len(),
        whole,
        all.len()
    );
    assert!(all.len() > 100, "{} frames sent", all.len());
    assert!(
        whole < all.len(),
        "plain UDP lost no frame: the link did nothing"
    );
}
