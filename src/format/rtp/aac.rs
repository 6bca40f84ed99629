//! AAC over RTP (RFC 3640, mpeg4-generic): AU headers with configurable size/index
//! lengths on input (AAC-hbr 13/3/3 and AAC-lbr 6/2/2), AAC-hbr on output, and
//! fragmentation of access units larger than one packet.

use super::packetizer::PacketSink;
use super::{malformed, RtpError, RtpIn, MAX_ACCESS_UNIT};
use bytes::{Bytes, BytesMut};

/// Samples per AAC frame; consecutive AUs in one packet are this far apart.
pub const SAMPLES_PER_FRAME: u32 = 1024;

pub(crate) fn packetize(au: &Bytes, max: usize, sink: &mut PacketSink) {
    // AU-headers-length = 16 bits; one header: 13-bit size, 3-bit index (0).
    let size = au.len().min(0x1fff) as u16;
    let hdr = [0u8, 16, (size >> 5) as u8, ((size & 0x1f) << 3) as u8];
    let chunk = max - hdr.len();
    if au.len() <= chunk {
        sink.packet(&[&hdr, au], true);
        return;
    }
    let n = au.len().div_ceil(chunk);
    for (k, part) in au.chunks(chunk).enumerate() {
        sink.packet(&[&hdr, part], k + 1 == n);
    }
}

#[derive(Debug)]
pub struct Depacketizer {
    size_length: u32,
    index_length: u32,
    index_delta_length: u32,
    fragment: Option<(u32, usize, BytesMut)>,
}

impl Depacketizer {
    pub fn new(size_length: u32, index_length: u32, index_delta_length: u32) -> Self {
        Depacketizer {
            size_length,
            index_length,
            index_delta_length,
            fragment: None,
        }
    }

    /// Appends (RTP timestamp, AU) pairs to `out`.
    pub fn push(&mut self, pkt: &RtpIn, out: &mut Vec<(u32, Bytes)>) -> Result<(), RtpError> {
        let p = &pkt.payload;
        if p.len() < 2 {
            return Err(malformed("AAC", "missing AU-headers-length"));
        }
        let bits = usize::from(u16::from_be_bytes([p[0], p[1]]));
        let header_bytes = bits.div_ceil(8);
        if p.len() < 2 + header_bytes || self.size_length == 0 {
            return Err(malformed("AAC", "AU headers exceed packet"));
        }
        let mut reader = BitReader {
            data: &p[2..2 + header_bytes],
            pos: 0,
        };
        let mut sizes = Vec::new();
        let mut first = true;
        while reader.pos < bits {
            let size = reader.read(self.size_length)?;
            reader.read(if first {
                self.index_length
            } else {
                self.index_delta_length
            })?;
            first = false;
            sizes.push(size as usize);
        }
        let mut data = p.slice(2 + header_bytes..);

        // A single AU larger than the packet continues in following packets.
        if self.fragment.is_some() || (sizes.len() == 1 && sizes[0] > data.len()) {
            let total = *sizes
                .first()
                .ok_or_else(|| malformed("AAC", "fragment without AU header"))?;
            if total > MAX_ACCESS_UNIT {
                return Err(RtpError::TooLarge);
            }
            let frag = self
                .fragment
                .get_or_insert_with(|| (pkt.timestamp, total, BytesMut::with_capacity(total)));
            if frag.0 != pkt.timestamp || frag.1 != total {
                // Lost the end of the previous AU: start over on this packet.
                *frag = (pkt.timestamp, total, BytesMut::with_capacity(total));
            }
            frag.2.extend_from_slice(&data);
            if frag.2.len() > total {
                self.fragment = None;
                return Err(malformed("AAC", "fragment longer than its AU"));
            }
            if pkt.marker {
                if let Some((ts, total, buf)) = self.fragment.take() {
                    if buf.len() == total {
                        out.push((ts, buf.freeze()));
                    }
                }
            }
            return Ok(());
        }

        for (i, size) in sizes.into_iter().enumerate() {
            if size > data.len() {
                return Err(malformed("AAC", "AU size exceeds packet"));
            }
            let ts = pkt.timestamp.wrapping_add(i as u32 * SAMPLES_PER_FRAME);
            out.push((ts, data.slice(..size)));
            data = data.slice(size..);
        }
        Ok(())
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Result<u32, RtpError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self
                .data
                .get(self.pos / 8)
                .ok_or_else(|| malformed("AAC", "truncated AU header"))?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Packetizer};
    use super::*;
    use crate::core::{Codec, Payload, Unit};

    fn packetize_au(au: Bytes, max: usize) -> Vec<Bytes> {
        let codec = Codec::Aac {
            config: Bytes::from_static(&[0x12, 0x10]),
            sample_rate: 44100,
            channels: 2,
        };
        let mut p = Packetizer::with_initial(&codec, 97, max, 1, 0, 0);
        p.packetize(&Unit {
            track: 1,
            pts: 1024,
            dts: 1024,
            keyframe: true,
            payload: Payload::Frame(au),
        })
    }

    #[test]
    fn roundtrip_single_and_fragmented() {
        for len in [300usize, 3000] {
            let au: Bytes = (0..len).map(|i| i as u8).collect::<Vec<u8>>().into();
            let pkts = packetize_au(au.clone(), 1000);
            assert_eq!(pkts.len(), len.div_ceil(996));
            let mut d = Depacketizer::new(13, 3, 3);
            let mut out = Vec::new();
            for b in &pkts {
                d.push(&parse(b).unwrap(), &mut out).unwrap();
            }
            assert_eq!(out, vec![(1024, au)]);
        }
    }

    #[test]
    fn several_aus_in_one_packet() {
        // Two AUs of 2 and 3 bytes: headers (2<<3, 3<<3) = 0x0010, 0x0018.
        let payload = Bytes::from_static(&[0, 32, 0, 16, 0, 24, 1, 2, 3, 4, 5]);
        let pkt = RtpIn {
            payload_type: 97,
            seq: 0,
            timestamp: 500,
            ssrc: 0,
            marker: true,
            payload,
        };
        let mut out = Vec::new();
        Depacketizer::new(13, 3, 3).push(&pkt, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                (500, Bytes::from_static(&[1, 2])),
                (1524, Bytes::from_static(&[3, 4, 5]))
            ]
        );
    }

    #[test]
    fn bad_payloads() {
        let mut d = Depacketizer::new(13, 3, 3);
        for bad in [&[0u8][..], &[0, 32, 0], &[0, 32, 0, 16, 0, 24, 1]] {
            let pkt = RtpIn {
                payload_type: 97,
                seq: 0,
                timestamp: 0,
                ssrc: 0,
                marker: true,
                payload: Bytes::copy_from_slice(bad),
            };
            assert!(d.push(&pkt, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }
}
