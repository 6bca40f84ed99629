//! Byte-level checks of what a reader gets: RTP-Info and SSRC match the first packets,
//! sender reports arrive, PAUSE stops and PLAY resumes, TEARDOWN ends the session.

mod common;

use common::*;
use std::time::Duration;

fn param<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    header
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn rtp_info_ssrc_rtcp_pause_and_teardown() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("udpMaxPayloadSize: 600\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let mut publisher = publish(&clip, &srv.url("m"), "tcp", true);
    srv.wait_stream("m");
    let url = srv.url("m");

    let mut c = RawClient::connect(srv.addr);
    let d = c.request("DESCRIBE", &url, &[], b"");
    assert_eq!(d.header("Content-Base"), Some(format!("{url}/").as_str()));
    assert_eq!(d.header("Content-Type"), Some("application/sdp"));
    let ssrcs: Vec<u32> = c
        .setup_tcp(&url)
        .iter()
        .map(|r| {
            u32::from_str_radix(param(r.header("Transport").unwrap(), "ssrc").unwrap(), 16).unwrap()
        })
        .collect();
    assert_eq!(ssrcs.len(), 2);
    let play = c.request("PLAY", &url, &[], b"");
    assert_eq!(play.status, 200);
    let info = play.header("RTP-Info").unwrap().to_string();
    let frames = c.read_frames(Duration::from_millis(1500));

    // udpMaxPayloadSize bounds every RTP packet; large frames are fragmented to fit.
    let rtp_sizes: Vec<usize> = frames
        .iter()
        .filter(|(ch, _)| ch % 2 == 0)
        .map(|(_, p)| p.len())
        .collect();
    assert!(
        rtp_sizes.iter().all(|n| *n <= 600),
        "largest RTP packet {:?}",
        rtp_sizes.iter().max()
    );
    assert!(
        rtp_sizes.iter().any(|n| *n > 550),
        "no packet near the limit: frames were not fragmented"
    );

    for (i, entry) in info.split(',').enumerate() {
        assert!(
            entry.starts_with(&format!("url={url}/trackID={i};")),
            "{entry}"
        );
        let seq: u16 = param(entry, "seq").unwrap().parse().unwrap();
        let rtptime: u32 = param(entry, "rtptime").unwrap().parse().unwrap();
        let first = frames
            .iter()
            .find(|(ch, _)| *ch == 2 * i as u8)
            .expect("RTP on the track");
        let p = &first.1;
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), seq, "track {i} first seq");
        assert_eq!(
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            rtptime,
            "track {i} first timestamp"
        );
        assert_eq!(
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            ssrcs[i],
            "track {i} SSRC"
        );
        // Sequence numbers continue without a gap.
        let seqs: Vec<u16> = frames
            .iter()
            .filter(|(ch, _)| *ch == 2 * i as u8)
            .map(|(_, p)| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "track {i} seq gap"
        );
        // A sender report (RTCP type 200) with the same SSRC comes on the odd channel.
        let sr = frames
            .iter()
            .find(|(ch, _)| *ch == 2 * i as u8 + 1)
            .expect("an RTCP sender report");
        assert_eq!(sr.1[1], 200);
        assert_eq!(
            u32::from_be_bytes([sr.1[4], sr.1[5], sr.1[6], sr.1[7]]),
            ssrcs[i]
        );
    }

    // PAUSE: nothing more after the reply (what was in flight may still arrive first).
    let r = c.request("PAUSE", &url, &[], b"");
    assert_eq!(r.status, 200);
    let _ = c.read_frames(Duration::from_millis(300));
    assert!(
        c.read_frames(Duration::from_millis(700)).is_empty(),
        "media after PAUSE"
    );
    assert_eq!(c.request("PLAY", &url, &[], b"").status, 200);
    assert!(
        !c.read_frames(Duration::from_millis(700)).is_empty(),
        "no media after resuming"
    );

    assert_eq!(c.request("GET_PARAMETER", &url, &[], b"").status, 200);
    assert_eq!(c.request("TEARDOWN", &url, &[], b"").status, 200);
    wait_until(
        Duration::from_secs(5),
        "the reader slot to be released",
        || srv.readers("m") == 0,
    );
    // A request with the old session id is refused.
    assert_eq!(c.request("PLAY", &url, &[], b"").status, 454);
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}

/// A publisher's PAUSE (GStreamer's rtspclientsink sends one before TEARDOWN) ends
/// its stream but keeps the path; RECORD starts a new stream.
#[test]
fn publisher_pause_ends_the_stream_and_record_restarts_it() {
    const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n";
    let srv = TestServer::start("paths:\n  all_others:\n    overridePublisher: no\n");
    let url = srv.url("paused");
    let mut c = RawClient::connect(srv.addr);
    let sdp = [("Content-Type", "application/sdp")];
    assert_eq!(
        c.request("ANNOUNCE", &url, &sdp, SDP.as_bytes()).status,
        200
    );
    let t = [(
        "Transport",
        "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
    )];
    let setup = format!("{url}/streamid=0");
    assert_eq!(c.request("SETUP", &setup, &t, b"").status, 200);
    assert_eq!(c.request("RECORD", &url, &[], b"").status, 200);
    let first = srv.stream("paused").expect("a stream after RECORD");

    assert_eq!(c.request("PAUSE", &url, &[], b"").status, 200);
    assert!(first.is_closed(), "PAUSE ends the stream");
    assert!(srv.stream("paused").is_none());
    // The path is still this client's: another publisher is refused.
    let mut other = RawClient::connect(srv.addr);
    assert_ne!(
        other.request("ANNOUNCE", &url, &sdp, SDP.as_bytes()).status,
        200
    );

    assert_eq!(c.request("RECORD", &url, &[], b"").status, 200);
    let second = srv.stream("paused").expect("a new stream after RECORD");
    assert!(!second.is_closed());
    assert_eq!(c.request("TEARDOWN", &url, &[], b"").status, 200);
    wait_until(Duration::from_secs(5), "the path to be released", || {
        srv.stream("paused").is_none()
    });
}
