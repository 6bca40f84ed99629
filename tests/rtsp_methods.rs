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
