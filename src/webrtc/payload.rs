//! What a WebRTC reader is sent for a unit: RTP payloads small enough for a datagram
//! once SRTP and str0m's header extensions are added, built once per unit and shared
//! by every session; per session only the header and the encryption differ.

use crate::core::{Form, FormKey, UnitEntry};
use crate::format::rtp::Packetizer;
use std::sync::Arc;

/// Largest payload: str0m aims for 1150-byte datagrams (1200 is WebRTC's usual
/// ceiling); the header, its extensions and the SRTP tag take the rest.
pub(crate) const MAX_PAYLOAD: usize = 1100;

/// One RTP packet's payload and marker bit.
#[derive(Debug, Clone)]
pub(crate) struct RtpPayload {
    pub data: Arc<[u8]>,
    pub marker: bool,
}

/// The unit's payloads (H.264/H.265 with FU/STAP as RFC 6184/7798, other codecs
/// whole); parameter sets are already in front of every keyframe (see `core::params`).
pub(crate) struct Payloads;

impl Form for Payloads {
    type Out = Vec<RtpPayload>;
    fn key() -> &'static FormKey {
        static KEY: FormKey = FormKey::new();
        &KEY
    }
    fn build(e: &UnitEntry) -> Vec<RtpPayload> {
        // Sequence numbers and SSRC are each session's own: only the payloads are kept.
        let mut p = Packetizer::with_initial(&e.track().codec, 0, MAX_PAYLOAD, 0, 0, 0);
        p.packetize(&e.unit)
            .iter()
            .filter_map(|pkt| {
                let rtp = rtp_types::RtpPacket::parse(&pkt[..]).ok()?;
                Some(RtpPayload {
                    data: Arc::from(rtp.payload()),
                    marker: rtp.marker_bit(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Stream, StreamConfig, StreamItem};
    use std::time::Duration;

    #[test]
    fn a_large_frame_is_split_and_only_its_last_packet_is_marked() {
        let s = Stream::new(
            vec![fixtures::h264_with_sets()],
            StreamConfig {
                queue_size: 8,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        );
        let mut unit = fixtures::video(0, true);
        if let crate::core::Payload::Nalus(n) = &mut unit.payload {
            let mut big = vec![0x65u8];
            big.resize(5000, 0xab);
            n.push(bytes::Bytes::from(big));
        }
        s.write(unit);
        let mut r = s.subscribe().unwrap();
        let mut got = None;
        r.drain(|it| {
            if let StreamItem::Unit(e) = it {
                got = Some(e.form::<Payloads>().clone());
            }
        })
        .unwrap();
        let p = got.unwrap();
        assert!(p.len() >= 5, "{} packets", p.len());
        assert!(p.iter().all(|x| x.data.len() <= MAX_PAYLOAD));
        assert_eq!(p.iter().filter(|x| x.marker).count(), 1);
        assert!(p.last().unwrap().marker);
        // The 5000-byte NAL goes as FU-A fragments (type 28).
        assert!(p.iter().any(|x| x.data[0] & 0x1f == 28));
    }
}
