//! Units: one access unit of one track in a codec-neutral form. Every protocol
//! converts to and from units; payloads are `Bytes` so fan-out never copies media.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// H.264 / H.265 access unit as a list of NAL units without start codes.
    Nalus(Vec<Bytes>),
    /// One AAC access unit (raw, no ADTS) or one Opus packet.
    Frame(Bytes),
    /// An opaque RTP payload of a codec this server does not interpret.
    Rtp { payload: Bytes, marker: bool },
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Payload::Nalus(n) => n.iter().map(Bytes::len).sum(),
            Payload::Frame(b) => b.len(),
            Payload::Rtp { payload, .. } => payload.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Index of the track in the stream.
    pub track: usize,
    /// Presentation time in the track's clock rate, on the stream's timeline
    /// (0 = stream start, so tracks stay in sync).
    pub pts: i64,
    /// Decode time; equals `pts` when the source does not carry it (RTP).
    pub dts: i64,
    /// A random access point: H.264 IDR, H.265 IRAP; always true for audio.
    pub keyframe: bool,
    pub payload: Payload,
}
