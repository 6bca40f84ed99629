//! MPEG-TS demuxer (sans-io), for HLS sources: PAT → PMT → PES per elementary stream,
//! with PTS/DTS. Only what HLS segments carry: one program, H.264, H.265 and AAC
//! (ADTS). Written by hand, as the muxer is; round-trip tested against it.

use super::{PACKET, STREAM_AAC, STREAM_H264, STREAM_H265};
use bytes::Bytes;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EsKind {
    H264,
    H265,
    /// AAC in ADTS frames.
    Aac,
}

/// One PES packet's payload with its timestamps (90 kHz, 33 bits as sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    pub pid: u16,
    pub kind: EsKind,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DemuxError {
    #[error("lost TS sync (byte 0x{0:02x} where 0x47 belongs)")]
    Sync(u8),
}

struct Es {
    kind: EsKind,
    buf: Vec<u8>,
    pts: Option<u64>,
    dts: Option<u64>,
    started: bool,
}

/// Largest PES kept while waiting for its end (a 4K keyframe fits).
const MAX_PES: usize = 8 << 20;

#[derive(Default)]
pub struct TsDemuxer {
    pmt_pid: Option<u16>,
    streams: HashMap<u16, Es>,
}

fn ts33(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | (u64::from(b[2]) >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4]) >> 1
}

impl TsDemuxer {
    /// A demuxer that already knows the streams (another's `streams()`): for reading
    /// from the middle of a file, after its tables.
    pub fn with_streams(streams: &[(u16, EsKind)]) -> Self {
        let mut d = TsDemuxer::default();
        for &(pid, kind) in streams {
            d.add_stream(pid, kind);
        }
        d
    }

    fn add_stream(&mut self, pid: u16, kind: EsKind) {
        self.streams.entry(pid).or_insert(Es {
            kind,
            buf: Vec::new(),
            pts: None,
            dts: None,
            started: false,
        });
    }

    /// The elementary streams the PMT announced, by PID.
    pub fn streams(&self) -> Vec<(u16, EsKind)> {
        let mut v: Vec<(u16, EsKind)> = self.streams.iter().map(|(p, e)| (*p, e.kind)).collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }

    /// Whole 188-byte packets (a trailing partial packet is ignored); complete PES
    /// packets go to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Pes>) -> Result<(), DemuxError> {
        for p in data.chunks_exact(PACKET) {
            if p[0] != 0x47 {
                return Err(DemuxError::Sync(p[0]));
            }
            self.packet(p, out);
        }
        Ok(())
    }

    fn packet(&mut self, p: &[u8], out: &mut Vec<Pes>) {
        let start = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut pos = 4;
        if afc & 2 != 0 {
            pos += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || pos >= PACKET {
            return;
        }
        let payload = &p[pos..];
        if pid == 0 {
            self.pat(start, payload);
        } else if Some(pid) == self.pmt_pid {
            self.pmt(start, payload);
        } else if let Some(es) = self.streams.get_mut(&pid) {
            if start {
                if let Some(pes) = Self::finish(pid, es) {
                    out.push(pes);
                }
                Self::begin(es, payload);
            } else if es.started && es.buf.len() + payload.len() <= MAX_PES {
                es.buf.extend_from_slice(payload);
            }
        }
    }

    /// The section after the pointer field, if this packet starts one.
    fn section(start: bool, payload: &[u8]) -> Option<&[u8]> {
        if !start {
            return None;
        }
        let skip = 1 + usize::from(*payload.first()?);
        let s = payload.get(skip..)?;
        let len = ((usize::from(*s.get(1)?) & 0x0f) << 8) | usize::from(*s.get(2)?);
        // Section body without its 8-byte header and 4-byte CRC.
        s.get(8..(3 + len).checked_sub(4)?)
    }

    fn pat(&mut self, start: bool, payload: &[u8]) {
        let Some(body) = Self::section(start, payload) else {
            return;
        };
        for e in body.chunks_exact(4) {
            let program = u16::from_be_bytes([e[0], e[1]]);
            if program != 0 {
                self.pmt_pid = Some((u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]));
                return;
            }
        }
    }

    fn pmt(&mut self, start: bool, payload: &[u8]) {
        let Some(body) = Self::section(start, payload) else {
            return;
        };
        let Some(info_len) = body
            .get(2..4)
            .map(|b| (usize::from(b[0] & 0x0f) << 8) | usize::from(b[1]))
        else {
            return;
        };
        let mut rest = body.get(4 + info_len..).unwrap_or_default();
        while rest.len() >= 5 {
            let typ = rest[0];
            let pid = (u16::from(rest[1] & 0x1f) << 8) | u16::from(rest[2]);
            let es_len = (usize::from(rest[3] & 0x0f) << 8) | usize::from(rest[4]);
            let kind = match typ {
                STREAM_H264 => Some(EsKind::H264),
                STREAM_H265 => Some(EsKind::H265),
                STREAM_AAC => Some(EsKind::Aac),
                _ => None,
            };
            if let Some(kind) = kind {
                self.add_stream(pid, kind);
            }
            rest = rest.get(5 + es_len..).unwrap_or_default();
        }
    }

    fn begin(es: &mut Es, payload: &[u8]) {
        es.started = false;
        es.buf.clear();
        if payload.len() < 9 || payload[..3] != [0, 0, 1] {
            return;
        }
        let flags = payload[7];
        let header_len = usize::from(payload[8]);
        let Some(data) = payload.get(9 + header_len..) else {
            return;
        };
        let opt = &payload[9..9 + header_len];
        es.pts = (flags & 0x80 != 0 && opt.len() >= 5).then(|| ts33(&opt[..5]));
        es.dts = (flags & 0x40 != 0 && opt.len() >= 10)
            .then(|| ts33(&opt[5..10]))
            .or(es.pts);
        es.buf.extend_from_slice(data);
        es.started = true;
    }

    fn finish(pid: u16, es: &mut Es) -> Option<Pes> {
        if !es.started || es.buf.is_empty() {
            return None;
        }
        es.started = false;
        Some(Pes {
            pid,
            kind: es.kind,
            pts: es.pts,
            dts: es.dts,
            data: Bytes::from(std::mem::take(&mut es.buf)),
        })
    }

    /// The end of the input (a segment): the PES packets still open are complete.
    pub fn flush(&mut self, out: &mut Vec<Pes>) {
        let mut pids: Vec<u16> = self.streams.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            if let Some(es) = self.streams.get_mut(&pid) {
                if let Some(pes) = Self::finish(pid, es) {
                    out.push(pes);
                }
            }
        }
    }
}

/// NAL units of an Annex B byte stream (start codes of 3 or 4 bytes).
pub fn split_annexb(data: &Bytes) -> Vec<Bytes> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nalus = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |n| n - 3);
        // A 4-byte start code leaves a zero at the end of the previous NAL unit.
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > s {
            nalus.push(data.slice(s..end));
        }
    }
    nalus
}

/// One ADTS frame: (profile 0–3, sampling frequency index, channels, raw AU).
pub fn next_adts(data: &Bytes, pos: &mut usize) -> Option<(u8, u8, u8, Bytes)> {
    let d = data.get(*pos..)?;
    if d.len() < 7 || d[0] != 0xff || d[1] & 0xf0 != 0xf0 {
        return None;
    }
    let header = if d[1] & 1 == 0 { 9 } else { 7 };
    let len = (usize::from(d[3] & 3) << 11) | (usize::from(d[4]) << 3) | usize::from(d[5] >> 5);
    if len < header || len > d.len() {
        return None;
    }
    let profile = d[2] >> 6;
    let rate = (d[2] >> 2) & 0x0f;
    let channels = ((d[2] & 1) << 2) | (d[3] >> 6);
    let au = data.slice(*pos + header..*pos + len);
    *pos += len;
    Some((profile, rate, channels, au))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Payload, Unit};
    use crate::format::mpegts::TsMuxer;

    #[test]
    fn what_the_muxer_writes_comes_back() {
        let tracks = vec![fixtures::h264(), fixtures::aac()];
        let mut mux = TsMuxer::new(&tracks).unwrap();
        let mut ts = Vec::new();
        mux.write_tables(&mut ts);
        let big = Bytes::from(vec![0x65; 5000]);
        let video = Unit {
            track: 0,
            pts: 6000,
            dts: 3000,
            keyframe: true,
            payload: Payload::Nalus(vec![Bytes::from_static(&[0x67, 1, 2]), big.clone()]),
        };
        mux.write(&video, &mut ts);
        let audio = Unit {
            track: 1,
            pts: 48000,
            dts: 48000,
            keyframe: true,
            payload: Payload::Frame(Bytes::from_static(&[0x21, 0x10, 0x04])),
        };
        mux.write(&audio, &mut ts);
        let mut d = TsDemuxer::default();
        let mut out = Vec::new();
        d.push(&ts, &mut out).unwrap();
        d.flush(&mut out);
        assert_eq!(d.streams().len(), 2);
        assert_eq!(out.len(), 2, "{out:?}");
        let v = out.iter().find(|p| p.kind == EsKind::H264).unwrap();
        assert_eq!((v.pts, v.dts), (Some(6000), Some(3000)));
        let nalus = split_annexb(&v.data);
        // The muxer leads with an AUD.
        assert_eq!(nalus.last().unwrap(), &big);
        assert!(nalus.iter().any(|n| n[..] == [0x67, 1, 2]));
        let a = out.iter().find(|p| p.kind == EsKind::Aac).unwrap();
        assert_eq!(a.pts, Some(90_000));
        let mut pos = 0;
        let (profile, rate, channels, au) = next_adts(&a.data, &mut pos).unwrap();
        assert_eq!((profile, rate, channels), (1, 3, 2));
        assert_eq!(au[..], [0x21, 0x10, 0x04]);
        assert!(next_adts(&a.data, &mut pos).is_none());
    }

    #[test]
    fn junk_does_not_panic() {
        let mut d = TsDemuxer::default();
        let mut out = Vec::new();
        assert!(d.push(&[0x12; 188], &mut out).is_err());
        let mut p = [0xffu8; 188];
        p[0] = 0x47;
        for b1 in [0x40, 0x00, 0x5f] {
            for b3 in [0x10, 0x30, 0x20, 0x00] {
                p[1] = b1;
                p[3] = b3;
                let _ = d.push(&p, &mut out);
            }
        }
        d.flush(&mut out);
        assert!(next_adts(
            &Bytes::from_static(&[0xff, 0xf1, 0, 0, 0xff, 0xff, 0]),
            &mut 0
        )
        .is_none());
        assert!(split_annexb(&Bytes::from_static(&[0, 0, 1])).is_empty());
    }
}
