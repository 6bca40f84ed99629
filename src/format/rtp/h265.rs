//! H.265 over RTP (RFC 7798) without DONL: single NAL, aggregation packets (AP) and
//! fragmentation units (FU).

use super::h264::{fu_step, NalAssembler};
use super::packetizer::PacketSink;
use super::{malformed, split_aggregate, RtpError, RtpIn};
use bytes::{Bytes, BytesMut};

const AP: u8 = 48;
const FU: u8 = 49;
const PACI: u8 = 50;

pub(crate) fn packetize(nalus: &[Bytes], max: usize, sink: &mut PacketSink) {
    let nalus: Vec<&Bytes> = nalus.iter().filter(|n| n.len() >= 2).collect();
    let mut i = 0;
    while i < nalus.len() {
        let nal = nalus[i];
        if nal.len() > max {
            fragment(nal, max, i + 1 == nalus.len(), sink);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut size = 2 + 2 + nal.len();
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
            let layer = group
                .iter()
                .map(|n| ((n[0] & 1) << 5) | (n[1] >> 3))
                .min()
                .unwrap_or(0);
            let tid = group.iter().map(|n| n[1] & 7).min().unwrap_or(1);
            let hdr = [f | (AP << 1) | (layer >> 5), ((layer & 0x1f) << 3) | tid];
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
    let typ = (nal[0] >> 1) & 0x3f;
    let hdr = [(nal[0] & 0x81) | (FU << 1), nal[1]];
    let body = &nal[2..];
    let chunk = max - 3;
    let n = body.len().div_ceil(chunk);
    for (k, part) in body.chunks(chunk).enumerate() {
        let start = if k == 0 { 0x80 } else { 0 };
        let end = if k + 1 == n { 0x40 } else { 0 };
        sink.packet(&[&hdr, &[start | end | typ], part], last_nal && k + 1 == n);
    }
}

#[derive(Debug, Default)]
pub struct Depacketizer {
    au: NalAssembler,
    fu: Option<BytesMut>,
}

impl Depacketizer {
    pub fn push(&mut self, pkt: &RtpIn, out: &mut Vec<(u32, Vec<Bytes>)>) -> Result<(), RtpError> {
        if self.au.begin(pkt, out) {
            self.fu = None;
        }
        let p = &pkt.payload;
        if p.len() < 2 {
            return Err(malformed("H265", "payload shorter than the NAL header"));
        }
        match (p[0] >> 1) & 0x3f {
            AP => {
                let mut nalus = Vec::new();
                split_aggregate("H265", p.slice(2..), &mut nalus)?;
                for n in nalus {
                    self.au.add(n)?;
                }
            }
            FU => {
                if p.len() < 4 {
                    return Err(malformed("H265", "FU too short"));
                }
                let fu = p[2];
                let (start, end, typ) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x3f);
                let header = [(p[0] & 0x81) | (typ << 1), p[1]];
                fu_step(&mut self.fu, &mut self.au, &header, start, end, &p[3..])?;
            }
            PACI => return Err(malformed("H265", "PACI packets unsupported")),
            51..=63 => return Err(malformed("H265", "invalid NAL unit type")),
            _ => self.au.add(p.clone())?,
        }
        self.au.end(pkt.marker, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Packetizer};
    use super::*;
    use crate::core::{Codec, Payload, Unit};

    #[test]
    fn roundtrip_ap_and_fu() {
        let codec = Codec::H265 {
            vps: None,
            sps: None,
            pps: None,
        };
        let mut p = Packetizer::with_initial(&codec, 96, 1000, 5, 0, 0);
        let vps = Bytes::from_static(&[0x40, 0x01, 0x0c]);
        let sps = Bytes::from_static(&[0x42, 0x01, 0x01]);
        let pps = Bytes::from_static(&[0x44, 0x01, 0xc1]);
        let idr: Bytes = [0x26u8, 0x01]
            .iter()
            .copied()
            .chain((0..3000u32).map(|i| i as u8))
            .collect::<Vec<u8>>()
            .into();
        let nalus = vec![vps, sps, pps, idr];
        let unit = Unit {
            track: 0,
            pts: 90000,
            dts: 90000,
            keyframe: true,
            payload: Payload::Nalus(nalus.clone()),
        };
        let pkts = p.packetize(&unit);
        assert_eq!(pkts.len(), 1 + 4);
        assert!(pkts.iter().all(|b| b.len() <= 1012));
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        for b in &pkts {
            d.push(&parse(b).unwrap(), &mut out).unwrap();
        }
        assert_eq!(out, vec![(90000, nalus)]);
    }

    #[test]
    fn bad_payloads() {
        let mut d = Depacketizer::default();
        let mut out = Vec::new();
        for (seq, bad) in [
            &[0x60u8][..],
            &[0x64, 1],
            &[0x62, 1, 0x80],
            &[0x60, 1, 0, 9, 1],
        ]
        .iter()
        .enumerate()
        {
            let pkt = RtpIn {
                payload_type: 96,
                seq: seq as u16,
                timestamp: 0,
                ssrc: 0,
                marker: true,
                payload: Bytes::copy_from_slice(bad),
            };
            assert!(d.push(&pkt, &mut out).is_err(), "{bad:?}");
        }
    }
}
