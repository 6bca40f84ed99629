//! RTSP publish and read with the real ffmpeg: both transports, both codec pairs,
//! and fan-out to 20 readers with a stalled one among them.

mod common;

use common::*;
use std::time::Duration;

/// Publishes `kind` over `pub_transport`; a TCP and a UDP ffmpeg reader record it.
/// Each must get ≥95 % of the units sent while it was connected, with the source's
/// codecs, resolution and sample rate.
fn publish_and_read(kind: Clip, pub_transport: &str) {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(kind, 6);
    let source = probe(&clip);
    let path = format!("live/{pub_transport}");
    let mut publisher = publish(&clip, &srv.url(&path), pub_transport, false);
    let stream = srv.wait_stream(&path);

    let dir = tempfile::tempdir().unwrap();
    let mut readers: Vec<_> = ["tcp", "udp"]
        .iter()
        .map(|t| {
            let out = dir.path().join(format!("{t}.mkv"));
            let child = read_to_file(&srv.url(&path), t, &out);
            (*t, out, child)
        })
        .collect();
    wait_until(Duration::from_secs(15), "both readers to connect", || {
        srv.readers(&path) == 2
    });
    let at_connect = stream.units_per_track();

    let st = wait_child(&mut publisher, Duration::from_secs(40), "publisher");
    assert!(st.success(), "publisher failed: {st:?}");
    let total = stream.units_per_track();
    for (t, out, child) in &mut readers {
        let st = wait_child(child, Duration::from_secs(20), "reader");
        assert!(st.success(), "{t} reader failed: {st:?}");
        let got = probe(out);
        assert_eq!(got.len(), 2, "{t} reader: {got:?}");
        for (i, (g, s)) in got.iter().zip(&source).enumerate() {
            assert_eq!(g.codec, s.codec, "{t} reader stream {i}");
            assert_eq!(
                (g.width, g.height, g.sample_rate),
                (s.width, s.height, s.sample_rate),
                "{t} reader stream {i}"
            );
            let sent = total[i] - at_connect[i];
            eprintln!(
                "{kind:?} publish={pub_transport} read={t} track {i} ({}): received {} of {sent} sent while connected",
                g.codec, g.packets
            );
            assert!(sent > 0);
            assert!(
                g.packets as f64 >= 0.95 * sent as f64,
                "{t} reader track {i}: {} of {sent} units",
                g.packets
            );
        }
    }
}

#[test]
fn h264_aac_publish_tcp() {
    publish_and_read(Clip::H264Aac, "tcp");
}

#[test]
fn h264_aac_publish_udp() {
    publish_and_read(Clip::H264Aac, "udp");
}

#[test]
fn h265_opus_publish_tcp() {
    publish_and_read(Clip::H265Opus, "tcp");
}

#[test]
fn h265_opus_publish_udp() {
    publish_and_read(Clip::H265Opus, "udp");
}

#[derive(Debug)]
struct ReaderResult {
    /// Video units received / sent while connected.
    share: f64,
    /// Frames held / frames between its first and last.
    complete: f64,
}

/// G.711 is not interpreted by the server: its RTP passes through to readers.
#[test]
fn h264_pcmu_passthrough() {
    publish_and_read(Clip::H264Pcmu, "tcp");
}

/// Runs one publisher and `readers` ffmpeg TCP readers; with `stall`, one more raw
/// reader sets up and plays, then never reads its socket. Returns, per ffmpeg reader,
/// its share of the video units sent while it was connected and the completeness of
/// its recording.
fn fanout(readers: usize, stall: bool) -> Vec<ReaderResult> {
    let srv = TestServer::start("writeTimeout: 2s\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 12);
    let mut publisher = publish(&clip, &srv.url("fan"), "tcp", false);
    let stream = srv.wait_stream("fan");

    let mut stalled_port = None;
    let _stalled = stall.then(|| {
        // A tiny receive buffer so the server's writes block soon.
        let sock = srv.rt.block_on(async {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(srv.addr).await.unwrap().into_std().unwrap()
        });
        sock.set_nonblocking(false).unwrap();
        stalled_port = Some(sock.local_addr().unwrap().port());
        let mut c = RawClient::connect_with(sock);
        c.play_tcp(&srv.url("fan"));
        c
    });

    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<_> = (0..readers)
        .map(|i| {
            let out = dir.path().join(format!("r{i}.mkv"));
            let child = read_to_file(&srv.url("fan"), "tcp", &out);
            (out, child)
        })
        .collect();
    let expected = readers + usize::from(stall);
    wait_until(Duration::from_secs(20), "all readers to connect", || {
        srv.readers("fan") == expected
    });
    let at_connect = stream.units_per_track()[0];

    if let Some(port) = stalled_port {
        // The stalled reader is dropped by writeTimeout while the others keep going.
        wait_until(
            Duration::from_secs(30),
            "the stalled reader to be dropped",
            || srv.readers("fan") == readers,
        );
        let dropped = logs().lines_with("WARN", &[&format!(":{port}"), "write timeout"]);
        assert_eq!(dropped.len(), 1, "one warn line for the stalled reader");
    }
    let st = wait_child(&mut publisher, Duration::from_secs(40), "publisher");
    assert!(st.success());
    let sent = stream.units_per_track()[0] - at_connect;
    children
        .iter_mut()
        .map(|(out, child)| {
            assert!(wait_child(child, Duration::from_secs(30), "reader").success());
            ReaderResult {
                share: probe(out)[0].packets as f64 / sent as f64,
                complete: video_completeness(out, 30.0),
            }
        })
        .collect()
}

#[test]
fn twenty_readers_and_a_stalled_one() {
    if !have_ffmpeg() {
        return;
    }
    let baseline = fanout(20, false);
    let with_stall = fanout(19, true);
    let min =
        |v: &[ReaderResult], f: fn(&ReaderResult) -> f64| v.iter().map(f).fold(f64::MAX, f64::min);
    let mean = |v: &[ReaderResult], f: fn(&ReaderResult) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    let share = |r: &ReaderResult| r.share;
    let complete = |r: &ReaderResult| r.complete;
    eprintln!(
        "fan-out: 20 readers: received/sent min {:.3}, completeness min {:.4} mean {:.4}; \
         19 readers + stalled: received/sent min {:.3}, completeness min {:.4} mean {:.4}",
        min(&baseline, share),
        min(&baseline, complete),
        mean(&baseline, complete),
        min(&with_stall, share),
        min(&with_stall, complete),
        mean(&with_stall, complete),
    );
    assert!(
        min(&baseline, share) >= 0.95,
        "baseline readers: {baseline:?}"
    );
    assert!(
        min(&with_stall, share) >= 0.95,
        "readers beside the stalled one: {with_stall:?}"
    );
    // What the 19 get is not reduced by the stalled reader.
    assert!(min(&with_stall, complete) >= 0.98, "{with_stall:?}");
    assert!(
        mean(&with_stall, complete) >= mean(&baseline, complete) - 0.01,
        "{with_stall:?} vs {baseline:?}"
    );
}
