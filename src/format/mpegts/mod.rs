//! MPEG-TS muxer (ISO/IEC 13818-1), sans-io: PAT/PMT, PES with PTS/DTS, PCR on the
//! video PID, continuity counters and adaptation-field stuffing. Written by hand:
//! `mpeg2ts` writes TS packets but does not split PES into them. H.264/H.265 go out
//! as Annex B access units led by an AUD, AAC as ADTS frames.

pub mod demux;
pub mod ingest;
mod psi;

use crate::codec::aac::AudioSpecificConfig;
use crate::core::{Codec, Payload, Track, Unit};

pub const PACKET: usize = 188;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const FIRST_ES_PID: u16 = 0x100;
/// PCR runs this far (90 kHz) behind the video DTS, as ffmpeg's muxer does by default.
const PCR_DELAY: i64 = 63_000;
const TS_MASK: i64 = (1 << 33) - 1;

const STREAM_H264: u8 = 0x1b;
const STREAM_H265: u8 = 0x24;
const STREAM_AAC: u8 = 0x0f;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsError {
    #[error("no track of this stream fits in MPEG-TS (H.264, H.265, AAC)")]
    NoTracks,
}

#[derive(Debug)]
enum Kind {
    H264,
    H265,
    Aac(AudioSpecificConfig),
}

#[derive(Debug)]
struct Es {
    pid: u16,
    kind: Kind,
    clock: u32,
    cc: u8,
}

/// Muxes a stream's units into TS packets; one muxer per output (segment series).
#[derive(Debug)]
pub struct TsMuxer {
    /// Per stream track: its elementary stream, if TS carries the codec.
    es: Vec<Option<Es>>,
    pcr_track: usize,
    pat_cc: u8,
    pmt_cc: u8,
}

impl TsMuxer {
    pub fn new(tracks: &[Track]) -> Result<TsMuxer, TsError> {
        let mut next_pid = FIRST_ES_PID;
        let es: Vec<Option<Es>> = tracks
            .iter()
            .map(|t| {
                let kind = match &t.codec {
                    Codec::H264 { .. } => Kind::H264,
                    Codec::H265 { .. } => Kind::H265,
                    Codec::Aac { config, .. } => {
                        let cfg = AudioSpecificConfig::parse(config).ok()?;
                        cfg.adts_header(0)?;
                        Kind::Aac(cfg)
                    }
                    _ => return None,
                };
                let pid = next_pid;
                next_pid += 1;
                Some(Es {
                    pid,
                    kind,
                    clock: t.clock_rate.max(1),
                    cc: 0,
                })
            })
            .collect();
        let is_video = |e: &Option<Es>| {
            matches!(
                e,
                Some(Es {
                    kind: Kind::H264 | Kind::H265,
                    ..
                })
            )
        };
        let pcr_track = es
            .iter()
            .position(is_video)
            .or_else(|| es.iter().position(Option::is_some))
            .ok_or(TsError::NoTracks)?;
        Ok(TsMuxer {
            es,
            pcr_track,
            pat_cc: 0,
            pmt_cc: 0,
        })
    }

    /// Whether `track` is carried (units of other tracks are ignored by `write`).
    pub fn carries(&self, track: usize) -> bool {
        matches!(self.es.get(track), Some(Some(_)))
    }

    /// PAT and PMT, which every segment starts with so it can be decoded on its own.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        let pat = psi::pat(PMT_PID);
        psi::write_section(out, PAT_PID, &mut self.pat_cc, &pat);
        let streams: Vec<(u8, u16)> = self
            .es
            .iter()
            .flatten()
            .map(|e| {
                let typ = match e.kind {
                    Kind::H264 => STREAM_H264,
                    Kind::H265 => STREAM_H265,
                    Kind::Aac(_) => STREAM_AAC,
                };
                (typ, e.pid)
            })
            .collect();
        let pcr_pid = self.es[self.pcr_track].as_ref().map_or(0x1fff, |e| e.pid);
        let pmt = psi::pmt(pcr_pid, &streams);
        psi::write_section(out, PMT_PID, &mut self.pmt_cc, &pmt);
    }

    /// One unit as a PES in TS packets. Returns false if its track is not carried.
    pub fn write(&mut self, unit: &Unit, out: &mut Vec<u8>) -> bool {
        let pcr_track = self.pcr_track;
        let Some(Some(es)) = self.es.get_mut(unit.track) else {
            return false;
        };
        // i128: timestamps come from publishers and may be anything; TS keeps 33 bits.
        let to_90k = |t: i64| ((i128::from(t) * 90_000 / i128::from(es.clock)) as i64) & TS_MASK;
        let (pts, dts) = (to_90k(unit.pts), to_90k(unit.dts));
        let mut data = Vec::with_capacity(unit.payload.len() + 64);
        let video = match (&es.kind, &unit.payload) {
            (Kind::H264, Payload::Nalus(nalus)) => {
                annex_b(&mut data, nalus, &[0x09, 0xf0], |n| {
                    crate::codec::h264::nal_type(n) == 9
                });
                true
            }
            (Kind::H265, Payload::Nalus(nalus)) => {
                annex_b(&mut data, nalus, &[0x46, 0x01, 0x50], |n| {
                    crate::codec::h265::nal_type(n) == crate::codec::h265::NAL_AUD
                });
                true
            }
            (Kind::Aac(cfg), Payload::Frame(au)) => {
                let Some(h) = cfg.adts_header(au.len()) else {
                    return false;
                };
                data.extend_from_slice(&h);
                data.extend_from_slice(au);
                false
            }
            _ => return false,
        };
        let pcr = (unit.track == pcr_track).then(|| (dts - PCR_DELAY) & TS_MASK);
        let header = pes_header(video, pts, (pts != dts).then_some(dts), data.len());
        write_pes(out, es, &header, &data, pcr, unit.keyframe && video);
        true
    }
}

/// NAL units in Annex B with an access unit delimiter first (HLS players want one).
fn annex_b(out: &mut Vec<u8>, nalus: &[bytes::Bytes], aud: &[u8], is_aud: impl Fn(&[u8]) -> bool) {
    if !nalus.first().is_some_and(|n| is_aud(n)) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(aud);
    }
    for n in nalus {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    }
}

fn ts_field(marker: u8, ts: i64) -> [u8; 5] {
    let ts = ts as u64;
    [
        (marker << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

/// The PES header; video PES leave the length 0 (unbounded), as the standard allows.
fn pes_header(video: bool, pts: i64, dts: Option<i64>, payload_len: usize) -> Vec<u8> {
    let stream_id = if video { 0xe0 } else { 0xc0 };
    let ts_len = if dts.is_some() { 10 } else { 5 };
    let mut h = vec![0, 0, 1, stream_id, 0, 0, 0x80];
    h.push(if dts.is_some() { 0xc0 } else { 0x80 });
    h.push(ts_len as u8);
    match dts {
        Some(d) => {
            h.extend_from_slice(&ts_field(3, pts));
            h.extend_from_slice(&ts_field(1, d));
        }
        None => h.extend_from_slice(&ts_field(2, pts)),
    }
    let len = h.len() - 6 + payload_len;
    if !video || len <= usize::from(u16::MAX) {
        let len = len.min(usize::from(u16::MAX)) as u16;
        h[4..6].copy_from_slice(&len.to_be_bytes());
    }
    h
}

/// Splits header + data into TS packets: the first carries PUSI (and the PCR and the
/// random-access flag), the last is padded with adaptation-field stuffing.
fn write_pes(
    out: &mut Vec<u8>,
    es: &mut Es,
    header: &[u8],
    data: &[u8],
    pcr: Option<i64>,
    random_access: bool,
) {
    let total = header.len() + data.len();
    let mut sent = 0;
    let mut first = true;
    while sent < total {
        let mut af: Vec<u8> = Vec::new();
        if first && (pcr.is_some() || random_access) {
            let mut flags = 0u8;
            if random_access {
                flags |= 0x40;
            }
            af.push(0);
            af.push(flags);
            if let Some(p) = pcr {
                af[1] |= 0x10;
                let base = p as u64;
                af.extend_from_slice(&[
                    (base >> 25) as u8,
                    (base >> 17) as u8,
                    (base >> 9) as u8,
                    (base >> 1) as u8,
                    (((base & 1) as u8) << 7) | 0x7e,
                    0,
                ]);
            }
        }
        let room = PACKET - 4 - af.len();
        let take = (total - sent).min(room);
        if take < room {
            // Stuffing: grow (or create) the adaptation field to fill the packet.
            let pad = room - take;
            if af.is_empty() {
                af.push(0);
                if pad > 1 {
                    af.push(0);
                    af.extend(std::iter::repeat_n(0xff, pad - 2));
                }
            } else {
                af.extend(std::iter::repeat_n(0xff, pad));
            }
        }
        if !af.is_empty() {
            af[0] = (af.len() - 1) as u8;
        }
        let afc = if af.is_empty() { 0x10 } else { 0x30 };
        out.push(0x47);
        out.push((if first { 0x40 } else { 0 }) | (es.pid >> 8) as u8);
        out.push(es.pid as u8);
        out.push(afc | es.cc);
        es.cc = (es.cc + 1) & 0x0f;
        out.extend_from_slice(&af);
        let start = out.len();
        let mut copied = 0;
        while copied < take {
            let pos = sent + copied;
            let (src, off) = if pos < header.len() {
                (header, pos)
            } else {
                (data, pos - header.len())
            };
            let n = (take - copied).min(src.len() - off);
            out.extend_from_slice(&src[off..off + n]);
            copied += n;
        }
        debug_assert_eq!(out.len() - start + af.len() + 4, PACKET);
        sent += take;
        first = false;
    }
}

#[cfg(test)]
mod tests;
