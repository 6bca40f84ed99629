//! A sequence of RTP packets for one codec (chosen by the first byte), each prefixed
//! with a 2-byte length; depacketized frames are packetized again.
#![no_main]
use bytes::Bytes;
use mediarouter::core::{Codec, Unit};
use mediarouter::format::rtp::{self, Depacketizer, Packetizer, RtpFormatParams};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, mut rest)) = data.split_first() else {
        return;
    };
    let codec = match which % 4 {
        0 => Codec::H264 {
            sps: None,
            pps: None,
        },
        1 => Codec::H265 {
            vps: None,
            sps: None,
            pps: None,
        },
        2 => Codec::Aac {
            config: Bytes::from_static(&[0x12, 0x10]),
            sample_rate: 44100,
            channels: 2,
        },
        _ => Codec::Opus { channels: 2 },
    };
    let mut fmtp = RtpFormatParams::new();
    if which & 0x80 != 0 {
        // AAC-lbr header sizes.
        fmtp.insert("sizelength".into(), "6".into());
        fmtp.insert("indexlength".into(), "2".into());
        fmtp.insert("indexdeltalength".into(), "2".into());
    }
    let mut d = Depacketizer::new(&codec, &fmtp);
    let mut p = Packetizer::new(&codec, 96, 200);
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pkt = Bytes::copy_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        let Ok(pkt) = rtp::parse(&pkt) else { continue };
        let _ = d.push(&pkt, &mut frames);
        for f in frames.drain(..) {
            let unit = Unit {
                track: 0,
                pts: i64::from(f.rtp_ts),
                dts: i64::from(f.rtp_ts),
                keyframe: f.keyframe,
                payload: f.payload,
            };
            for packet in p.packetize(&unit) {
                // Opus packets can't be split; the others must respect the payload limit.
                assert!(which % 4 == 3 || packet.len() <= 12 + 200);
            }
        }
    }
});
