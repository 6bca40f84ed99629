//! H.264 over RTP (RFC 6184, packetization-mode 1): single NAL, STAP-A and FU-A.

use super::packetizer::PacketSink;
use super::{malformed, split_aggregate, RtpError, RtpIn, MAX_ACCESS_UNIT};
use bytes::{Bytes, BytesMut};

const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Writes one access unit: small neighbouring NALs share a STAP-A, large ones are
/// split into FU-A fragments; the marker bit is set on the unit's last packet.
pub(crate) fn packetize(nalus: &[Bytes], max: usize, sink: &mut PacketSink) {
    let nalus: Vec<&Bytes> = nalus.iter().filter(|n| !n.is_empty()).collect();
    let mut i = 0;
    while i < nalus.len() {
        let nal = nalus[i];
        if nal.len() > max {
            fragment(nal, max, i + 1 == nalus.len(), sink);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut size = 1 + 2 + nal.len();
        while j < nalus.len() && size + 2 + nalus[j].len() <= max {
            size += 2 + nalus[j].len();
            j += 1;
        }
        let last = j == nalus.len();
        if j - i == 1 {
            sink.packet(&[nal], last);
        } else {
            let group = &nalus[i..j];
            let f = group.iter().fold(0, |a, n| a | (n[0] & 0x80));
            let nri = group.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
            let hdr = [f | nri | STAP_A];
            let lens: Vec<[u8; 2]> = group
                .iter()
                .map(|n| (n.len() as u16).to_be_bytes())
                .collect();
            let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * group.len());
            parts.push(&hdr);
            for (n, l) in group.iter().zip(&lens) {
                parts.push(l);
                parts.push(n);
            }
            sink.packet(&parts, last);
        }
        i = j;
    }
}

fn fragment(nal: &[u8], max: usize, last_nal: bool, sink: &mut PacketSink) {
    let indicator = (nal[0] & 0xe0) | FU_A;
    let typ = nal[0] & 0x1f;
    let body = &nal[1..];
    let chunk = max - 2;
    let n = body.len().div_ceil(chunk);
    for (k, part) in body.chunks(chunk).enumerate() {
        let start = if k == 0 { 0x80 } else { 0 };
        let end = if k + 1 == n { 0x40 } else { 0 };
        sink.packet(
            &[&[indicator, start | end | typ], part],
            last_nal && k + 1 == n,
        );
    }
}

/// Reassembles access units; a unit ends at the marker bit or when the timestamp changes.
#[derive(Debug, Default)]
pub struct Depacketizer {
    au: NalAssembler,
    fu: Option<BytesMut>,
}

impl Depacketizer {
    /// Feeds one packet; completed access units (RTP timestamp, NALs) are appended to `out`.
    pub fn push(&mut self, pkt: &RtpIn, out: &mut Vec<(u32, Vec<Bytes>)>) -> Result<(), RtpError> {
        if self.au.begin(pkt, out) {
            self.fu = None;
        }
        let p = &pkt.payload;
        let Some(&h) = p.first() else {
            return Err(malformed("H264", "empty payload"));
        };
        match h & 0x1f {
            1..=23 => self.au.add(p.clone())?,
            STAP_A => {
                let mut nalus = Vec::new();
                split_aggregate("H264", p.slice(1..), &mut nalus)?;
                for n in nalus {
                    self.au.add(n)?;
                }
            }
            FU_A => {
                if p.len() < 3 {
                    return Err(malformed("H264", "FU-A too short"));
                }
                let (start, end, typ) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0, p[1] & 0x1f);
                let header = [(h & 0xe0) | typ];
                fu_step(&mut self.fu, &mut self.au, &header, start, end, &p[2..])?;
            }
            25 | 26 | 27 | 29 => {
                return Err(malformed(
                    "H264",
                    "interleaved mode (STAP-B/MTAP/FU-B) unsupported",
                ))
            }
            _ => return Err(malformed("H264", "invalid NAL unit type")),
        }
        self.au.end(pkt.marker, out);
        Ok(())
    }
}

/// Collects the NAL units of one access unit; shared by H.264 and H.265.
#[derive(Debug, Default)]
pub(crate) struct NalAssembler {
    nalus: Vec<Bytes>,
    size: usize,
    timestamp: Option<u32>,
    expected_seq: Option<u16>,
    /// A packet of this unit may be missing: it is dropped rather than passed on
    /// half-built (a reader's decoder would show the damage until the next keyframe
    /// either way, but a whole frame missing is what players handle best).
    damaged: bool,
}

impl NalAssembler {
    /// Starts a packet: flushes the previous unit on a timestamp change. Returns true
    /// when packets were lost, so a fragment in progress must be dropped.
    pub(crate) fn begin(&mut self, pkt: &RtpIn, out: &mut Vec<(u32, Vec<Bytes>)>) -> bool {
        let lost = self.expected_seq.is_some_and(|s| s != pkt.seq);
        if self.timestamp.is_some_and(|ts| ts != pkt.timestamp) {
            // A unit still open (its marker not seen) may have lost its end.
            self.damaged |= lost;
            self.flush(out);
        }
        // The missing packets may have been this unit's first ones: which unit they
        // belonged to can't be known, so both sides of the gap are dropped.
        self.damaged |= lost;
        self.expected_seq = Some(pkt.seq.wrapping_add(1));
        self.timestamp = Some(pkt.timestamp);
        lost
    }

    pub(crate) fn add(&mut self, nal: Bytes) -> Result<(), RtpError> {
        self.size += nal.len();
        if self.size > MAX_ACCESS_UNIT {
            self.nalus.clear();
            self.size = 0;
            return Err(RtpError::TooLarge);
        }
        if !nal.is_empty() {
            self.nalus.push(nal);
        }
        Ok(())
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn end(&mut self, marker: bool, out: &mut Vec<(u32, Vec<Bytes>)>) {
        if marker {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Vec<(u32, Vec<Bytes>)>) {
        if let (Some(ts), false, false) = (self.timestamp, self.nalus.is_empty(), self.damaged) {
            out.push((ts, std::mem::take(&mut self.nalus)));
        }
        self.nalus.clear();
        self.damaged = false;
        self.size = 0;
    }
}

/// One fragmentation-unit step (FU-A and H.265 FU): `header` is the rebuilt NAL header.
pub(crate) fn fu_step(
    fu: &mut Option<BytesMut>,
    au: &mut NalAssembler,
    header: &[u8],
    start: bool,
    end: bool,
    data: &[u8],
) -> Result<(), RtpError> {
    if start {
        let mut b = BytesMut::with_capacity(data.len() * 8);
        b.extend_from_slice(header);
        *fu = Some(b);
    }
    // A continuation without its start (after loss) is dropped.
    let Some(buf) = fu.as_mut() else {
        return Ok(());
    };
    buf.extend_from_slice(data);
    if buf.len() + au.size() > MAX_ACCESS_UNIT {
        *fu = None;
        return Err(RtpError::TooLarge);
    }
    if end {
        if let Some(b) = fu.take() {
            au.add(b.freeze())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Packetizer};
    use super::*;
    use crate::core::{Codec, Payload, Unit};

    fn roundtrip(nalus: Vec<Bytes>, max: usize) -> (usize, Vec<(u32, Vec<Bytes>)>) {
        let codec = Codec::H264 {
            sps: None,
            pps: None,
        };
        let mut p = Packetizer::with_initial(&codec, 96, max, 1, 65530, 0);
        let unit = Unit {
            track: 0,
            pts: 3000,
            dts: 3000,
            keyframe: true,
            payload: Payload::Nalus(nalus),
        };
        let pkts = p.packetize(&unit);
        assert!(pkts.iter().all(|p| p.len() <= 12 + max));
        let markers: Vec<bool> = pkts.iter().map(|b| parse(b).unwrap().marker).collect();
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(*markers.last().unwrap());
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        for b in &pkts {
            d.push(&parse(b).unwrap(), &mut out).unwrap();
        }
        (pkts.len(), out)
    }

    #[test]
    fn single_stap_and_fu_roundtrip() {
        let sps = Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f]);
        let pps = Bytes::from_static(&[0x68, 0xee, 0x3c]);
        let idr = Bytes::from(
            (0..5000u32)
                .map(|i| if i == 0 { 0x65 } else { i as u8 })
                .collect::<Vec<u8>>(),
        );
        let (n, out) = roundtrip(vec![sps.clone(), pps.clone(), idr.clone()], 1200);
        // STAP-A for SPS+PPS, then 5 FU-A fragments.
        assert_eq!(n, 1 + 5);
        assert_eq!(out, vec![(3000, vec![sps.clone(), pps.clone(), idr])]);

        let small = Bytes::from_static(&[0x41, 1, 2, 3]);
        let (n, out) = roundtrip(vec![small.clone()], 1200);
        assert_eq!(n, 1);
        assert_eq!(out[0].1, vec![small]);
    }

    #[test]
    fn unit_ends_on_timestamp_change_without_marker() {
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        let mk = |seq, ts, marker| RtpIn {
            payload_type: 96,
            seq,
            timestamp: ts,
            ssrc: 1,
            marker,
            payload: Bytes::from_static(&[0x41, 9]),
        };
        d.push(&mk(1, 100, false), &mut out).unwrap();
        assert!(out.is_empty());
        d.push(&mk(2, 200, true), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].0, out[1].0), (100, 200));
    }

    #[test]
    fn lost_fragment_drops_nal_and_bad_input_errors() {
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        let mk = |seq, payload: &'static [u8], marker| RtpIn {
            payload_type: 96,
            seq,
            timestamp: 1,
            ssrc: 1,
            marker,
            payload: Bytes::from_static(payload),
        };
        d.push(&mk(1, &[0x7c, 0x85, 1], false), &mut out).unwrap();
        // seq 2 lost; the end fragment must not produce a truncated NAL.
        d.push(&mk(3, &[0x7c, 0x45, 2], true), &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.push(&mk(4, &[], true), &mut out).is_err());
        assert!(d.push(&mk(5, &[0x00], true), &mut out).is_err());
        assert!(d.push(&mk(6, &[0x18, 0, 9, 1], true), &mut out).is_err());
        assert!(d.push(&mk(7, &[0x7c], true), &mut out).is_err());
    }

    #[test]
    fn a_unit_next_to_a_gap_is_dropped_and_the_next_ones_are_whole() {
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        let mk = |seq, ts, marker| RtpIn {
            payload_type: 96,
            seq,
            timestamp: ts,
            ssrc: 1,
            marker,
            payload: Bytes::from_static(&[0x41, 9]),
        };
        // Unit 100 is whole; 200 lost its second packet (seq 3); 300 is whole.
        for (seq, ts, m) in [(1, 100, false), (2, 100, true), (4, 200, true)] {
            d.push(&mk(seq, ts, m), &mut out).unwrap();
        }
        for (seq, ts, m) in [(5, 300, false), (6, 300, true)] {
            d.push(&mk(seq, ts, m), &mut out).unwrap();
        }
        let ts: Vec<u32> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(ts, vec![100, 300]);
        assert_eq!(out[1].1.len(), 2);
        // A unit whose marker packet is lost is dropped with the one after the gap.
        out.clear();
        for (seq, ts, m) in [(7, 400, false), (9, 500, true), (10, 600, true)] {
            d.push(&mk(seq, ts, m), &mut out).unwrap();
        }
        let ts: Vec<u32> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(ts, vec![600]);
    }
}
