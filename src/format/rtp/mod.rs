//! RTP payload formats, both directions, sans-io: packetizers turn units into RTP
//! packets, depacketizers turn RTP payloads back into access units. Headers are
//! parsed and written with `rtp-types`; the payload formats are written here
//! because no maintained crate packetizes (retina's depacketizers are unstable API).

pub mod aac;
mod depacketizer;
pub mod h264;
pub mod h265;
mod packetizer;
pub mod reorder;
pub mod rtcp;
mod timestamp;

pub use depacketizer::{Depacketizer, Frame, RtpFormatParams};
pub use packetizer::Packetizer;
pub use timestamp::TimestampMapper;

use bytes::Bytes;

/// Largest RTP payload we emit; keeps packets under a 1500-byte MTU with IP/UDP/RTP headers.
pub const DEFAULT_MAX_PAYLOAD: usize = 1450;

/// Access units larger than this are refused as malformed input.
pub const MAX_ACCESS_UNIT: usize = 16 << 20;

/// The parts of a received RTP packet the depacketizers need.
#[derive(Debug, Clone)]
pub struct RtpIn {
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("invalid RTP header: {0}")]
    Header(String),
    #[error("malformed {codec} payload: {reason}")]
    Payload {
        codec: &'static str,
        reason: &'static str,
    },
    #[error("access unit larger than {MAX_ACCESS_UNIT} bytes")]
    TooLarge,
}

pub(crate) fn malformed(codec: &'static str, reason: &'static str) -> RtpError {
    RtpError::Payload { codec, reason }
}

/// Parses an RTP packet; the payload is a zero-copy slice of `packet`.
pub fn parse(packet: &Bytes) -> Result<RtpIn, RtpError> {
    let p =
        rtp_types::RtpPacket::parse(&packet[..]).map_err(|e| RtpError::Header(format!("{e:?}")))?;
    let start = p.payload_offset();
    let end = start + p.payload_len();
    Ok(RtpIn {
        payload_type: p.payload_type(),
        seq: p.sequence_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        marker: p.marker_bit(),
        payload: packet.slice(start..end),
    })
}

/// Reads a big-endian u16 length prefix followed by that many bytes (STAP-A, AP).
pub(crate) fn split_aggregate(
    codec: &'static str,
    mut data: Bytes,
    out: &mut Vec<Bytes>,
) -> Result<(), RtpError> {
    while !data.is_empty() {
        if data.len() < 2 {
            return Err(malformed(codec, "truncated aggregation length"));
        }
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        if len == 0 || data.len() < 2 + len {
            return Err(malformed(codec, "aggregated unit exceeds packet"));
        }
        out.push(data.slice(2..2 + len));
        data = data.slice(2 + len..);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_slices_payload() {
        let pkt = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(96)
            .sequence_number(7)
            .timestamp(1234)
            .ssrc(99)
            .marker_bit(true)
            .payload(&[1, 2, 3][..])
            .write_vec()
            .unwrap();
        let p = parse(&Bytes::from(pkt)).unwrap();
        assert_eq!(
            (p.payload_type, p.seq, p.timestamp, p.ssrc, p.marker),
            (96, 7, 1234, 99, true)
        );
        assert_eq!(&p.payload[..], &[1, 2, 3]);
        assert!(parse(&Bytes::from_static(&[0x80, 0x60])).is_err());
        assert!(parse(&Bytes::from_static(&[0u8; 12])).is_err()); // version 0
    }

    #[test]
    fn aggregate_bounds() {
        let mut out = Vec::new();
        assert!(split_aggregate("x", Bytes::from_static(&[0, 5, 1]), &mut out).is_err());
        assert!(split_aggregate("x", Bytes::from_static(&[0]), &mut out).is_err());
        split_aggregate("x", Bytes::from_static(&[0, 1, 9, 0, 2, 7, 8]), &mut out).unwrap();
        assert_eq!(
            out,
            vec![Bytes::from_static(&[9]), Bytes::from_static(&[7, 8])]
        );
    }
}
