//! Units as publishers may send them (any track, timestamps, keyframe flags and NAL
//! units) into the MPEG-TS and fMP4 segmenters; every segment and part they cut must
//! be well formed: whole TS packets, fMP4 made of moof+mdat boxes.
#![no_main]
use bytes::Bytes;
use mediarouter::codec::aac::decode_hex;
use mediarouter::core::{Codec, Payload, Track, Unit};
use mediarouter::hls::fmp4_segmenter::{Fmp4Segmenter, Output};
use mediarouter::hls::segmenter::TsSegmenter;
use std::time::{Duration, UNIX_EPOCH};

fn tracks() -> Vec<Track> {
    vec![
        Track::new(
            Codec::H264 {
                sps: Some(Bytes::from(
                    decode_hex("6742c01eda0280bfe5c044000003000400000300f03c58ba80").unwrap(),
                )),
                pps: Some(Bytes::from(decode_hex("68ce0fc8").unwrap())),
            },
            90000,
        ),
        Track::new(
            Codec::Aac {
                config: Bytes::from_static(&[0x11, 0x90]),
                sample_rate: 48000,
                channels: 2,
            },
            48000,
        ),
        Track::new(Codec::Opus { channels: 2 }, 48000),
    ]
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let t = tracks();
    let mut ts = TsSegmenter::new(&t, Duration::from_millis(500), UNIX_EPOCH).unwrap();
    let mut fm = Fmp4Segmenter::new(
        &t,
        Duration::from_millis(500),
        Duration::from_millis(100),
        UNIX_EPOCH,
    )
    .unwrap();
    let mut out = Vec::new();
    let check = |out: &mut Vec<Output>| {
        for o in out.drain(..) {
            if let Output::Segment(s) = o {
                let mut rest = &s.data[..];
                while rest.len() >= 8 {
                    let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                    assert!(&rest[4..8] == b"moof" || &rest[4..8] == b"mdat");
                    assert!(len >= 8 && len <= rest.len());
                    rest = &rest[len..];
                }
                assert!(rest.is_empty());
            }
        }
    };
    // Each unit: track (1), flags (1), dts delta (4), pts offset (2), payload length (1).
    let mut dts = 0i64;
    let mut rest = data;
    while rest.len() >= 9 {
        let (head, tail) = rest.split_at(9);
        let len = usize::from(head[8]).min(tail.len());
        let (body, tail) = tail.split_at(len);
        rest = tail;
        let track = usize::from(head[0] % 4); // 3: no such track
        let delta = i32::from_be_bytes(head[2..6].try_into().unwrap());
        dts = dts.wrapping_add(i64::from(delta));
        let pts = dts.wrapping_add(i64::from(i16::from_be_bytes([head[6], head[7]])));
        let payload = if track == 0 {
            Payload::Nalus(body.chunks(7).map(Bytes::copy_from_slice).collect())
        } else {
            Payload::Frame(Bytes::copy_from_slice(body))
        };
        let unit = Unit {
            track,
            pts,
            dts,
            keyframe: head[1] & 1 != 0,
            payload,
        };
        if let Some(s) = ts.push(&unit) {
            assert_eq!(s.data.len() % 188, 0);
        }
        fm.push(&unit, &t, &mut out);
        check(&mut out);
    }
    let _ = ts.finish();
    fm.finish(&mut out);
    check(&mut out);
});
