//! Units → RTP packets for one outgoing track. All packets of a unit are written
//! into one buffer and handed out as slices, so a unit costs one allocation.

use super::{aac, h264, h265};
use crate::core::{Codec, Payload, Unit};
use bytes::Bytes;

/// Collects the packets of one unit: each `packet` call appends header + parts.
pub(crate) struct PacketSink<'a> {
    buf: Vec<u8>,
    ends: Vec<usize>,
    pt: u8,
    ssrc: u32,
    seq: &'a mut u16,
    timestamp: u32,
}

impl PacketSink<'_> {
    pub(crate) fn packet(&mut self, parts: &[&[u8]], marker: bool) {
        let mut b = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.pt)
            .sequence_number(*self.seq)
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
            .marker_bit(marker);
        for p in parts {
            b = b.payload(p);
        }
        b.write_into_vec_unchecked(&mut self.buf);
        self.ends.push(self.buf.len());
        *self.seq = self.seq.wrapping_add(1);
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    H264,
    H265,
    Aac,
    /// One unit payload per packet (Opus, opaque passthrough).
    Whole,
}

/// Per-track RTP output state: SSRC, sequence numbers, timestamp offset, counters.
#[derive(Debug)]
pub struct Packetizer {
    kind: Kind,
    payload_type: u8,
    ssrc: u32,
    seq: u16,
    ts_offset: u32,
    max_payload: usize,
    packets: u32,
    octets: u32,
}

impl Packetizer {
    /// Random SSRC, initial sequence number and timestamp offset, as RFC 3550 asks.
    pub fn new(codec: &Codec, payload_type: u8, max_payload: usize) -> Self {
        Self::with_initial(
            codec,
            payload_type,
            max_payload,
            rand::random(),
            rand::random(),
            rand::random(),
        )
    }

    pub fn with_initial(
        codec: &Codec,
        payload_type: u8,
        max_payload: usize,
        ssrc: u32,
        seq: u16,
        ts_offset: u32,
    ) -> Self {
        let kind = match codec {
            Codec::H264 { .. } => Kind::H264,
            Codec::H265 { .. } => Kind::H265,
            Codec::Aac { .. } => Kind::Aac,
            Codec::Opus { .. } | Codec::Other(_) => Kind::Whole,
        };
        Packetizer {
            kind,
            payload_type,
            ssrc,
            seq,
            ts_offset,
            max_payload: max_payload.max(64),
            packets: 0,
            octets: 0,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }
    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }
    pub fn packet_count(&self) -> u32 {
        self.packets
    }
    pub fn octet_count(&self) -> u32 {
        self.octets
    }

    pub fn rtp_timestamp(&self, pts: i64) -> u32 {
        (pts as u32).wrapping_add(self.ts_offset)
    }

    /// Builds the RTP packets of one unit (complete packets, header included).
    pub fn packetize(&mut self, unit: &Unit) -> Vec<Bytes> {
        let timestamp = self.rtp_timestamp(unit.pts);
        let mut sink = PacketSink {
            buf: Vec::with_capacity(unit.payload.len() + 64),
            ends: Vec::new(),
            pt: self.payload_type,
            ssrc: self.ssrc,
            seq: &mut self.seq,
            timestamp,
        };
        let max = self.max_payload;
        match (&unit.payload, self.kind) {
            (Payload::Nalus(nalus), Kind::H264) => h264::packetize(nalus, max, &mut sink),
            (Payload::Nalus(nalus), Kind::H265) => h265::packetize(nalus, max, &mut sink),
            (Payload::Frame(f), Kind::Aac) => aac::packetize(f, max, &mut sink),
            (Payload::Frame(f), _) => sink.packet(&[f], true),
            (Payload::Rtp { payload, marker }, _) => sink.packet(&[payload], *marker),
            // A unit whose payload does not fit the track's codec carries nothing we can send.
            (Payload::Nalus(_), _) => {}
        }
        let PacketSink { buf, ends, .. } = sink;
        let all = Bytes::from(buf);
        let mut start = 0;
        let packets: Vec<Bytes> = ends
            .iter()
            .map(|&end| {
                let p = all.slice(start..end);
                start = end;
                p
            })
            .collect();
        self.packets = self.packets.wrapping_add(packets.len() as u32);
        self.octets = self.octets.wrapping_add(
            packets
                .iter()
                .map(|p| p.len().saturating_sub(12) as u32)
                .sum(),
        );
        packets
    }
}
