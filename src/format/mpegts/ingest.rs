//! A live MPEG-TS feed (an SRT publisher's datagrams) → tracks, then units (sans-io).
//! PES packets wait until the tracks are known: every stream the PMT lists has sent
//! one and the video's parameter sets were seen, or enough has waited to give up on that.

use super::demux::{split_annexb, DemuxError, EsKind, Pes, TsDemuxer};
use super::PACKET;
use crate::codec::{h264, h265};
use crate::core::{Track, Unit};
use crate::format::segment::{self, Timeline};
use std::collections::HashMap;

/// PES packets held while the tracks are not known yet; past this the feed starts with
/// what it found (the encoder never sent parameter sets in-band, or a PMT stream is silent).
const MAX_WAITING: usize = 600;
/// Bytes held for the same wait.
const MAX_WAITING_BYTES: usize = 16 << 20;

#[derive(Default)]
pub struct TsIngest {
    demux: TsDemuxer,
    /// A packet split across two pushes.
    partial: Vec<u8>,
    waiting: Vec<Pes>,
    waiting_bytes: usize,
    sets: SetsSeen,
    index: Option<HashMap<u16, usize>>,
    clocks: Vec<i64>,
    timeline: Timeline,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error(transparent)]
    Demux(#[from] DemuxError),
    #[error("no H.264, H.265 or AAC stream in {0} PES packets")]
    NoTracks(usize),
}

impl TsIngest {
    /// Feeds bytes. Returns the tracks once they are known (the caller starts its
    /// stream with them); units from then on go to `out`.
    pub fn push(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<Unit>,
    ) -> Result<Option<Vec<Track>>, IngestError> {
        let mut pes = Vec::new();
        if !self.partial.is_empty() {
            let need = PACKET - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == PACKET {
                let p = std::mem::take(&mut self.partial);
                self.demux.push(&p, &mut pes)?;
            }
        }
        let whole = data.len() / PACKET * PACKET;
        self.demux.push(&data[..whole], &mut pes)?;
        self.partial.extend_from_slice(&data[whole..]);
        if self.index.is_some() {
            self.units(pes, out);
            return Ok(None);
        }
        if pes.is_empty() {
            return Ok(None);
        }
        self.waiting_bytes += pes.iter().map(|p| p.data.len()).sum::<usize>();
        for p in &pes {
            self.sets.note(p);
        }
        self.waiting.extend(pes);
        if !self.ready() {
            return Ok(None);
        }
        let waiting = std::mem::take(&mut self.waiting);
        let Some((tracks, index)) = segment::ts_tracks(&waiting) else {
            return Err(IngestError::NoTracks(waiting.len()));
        };
        self.clocks = tracks
            .iter()
            .map(|t| i64::from(t.clock_rate.max(1)))
            .collect();
        self.index = Some(index);
        self.units(waiting, out);
        Ok(Some(tracks))
    }

    /// Whether the waiting PES packets say enough about the tracks.
    fn ready(&self) -> bool {
        if self.waiting.len() >= MAX_WAITING || self.waiting_bytes >= MAX_WAITING_BYTES {
            return true;
        }
        let streams = self.demux.streams();
        if streams.is_empty()
            || streams
                .iter()
                .any(|(pid, _)| !self.waiting.iter().any(|p| p.pid == *pid))
        {
            return false;
        }
        // Parameter sets are looked for in each PES once, as it arrives.
        let video = streams
            .iter()
            .find(|(_, k)| matches!(k, EsKind::H264 | EsKind::H265));
        match video {
            Some((_, kind)) => self.sets.complete(*kind),
            None => true,
        }
    }

    fn units(&mut self, pes: Vec<Pes>, out: &mut Vec<Unit>) {
        let Some(index) = &self.index else {
            return;
        };
        let timeline = &mut self.timeline;
        let frames = segment::ts_frames(pes, |pid, t| timeline.unwrap(pid, t));
        for f in frames {
            let Some(&track) = u16::try_from(f.key).ok().and_then(|k| index.get(&k)) else {
                continue;
            };
            let t = self.timeline.map(f.dts);
            f.into_units(track, t, self.clocks[track], |u| out.push(u));
        }
    }
}

/// The video parameter sets seen so far (a video track can be described to readers,
/// in SDP or FLV/MP4 headers, once they all came).
#[derive(Default)]
struct SetsSeen {
    vps: bool,
    sps: bool,
    pps: bool,
}

impl SetsSeen {
    fn note(&mut self, p: &Pes) {
        for n in split_annexb(&p.data) {
            match p.kind {
                EsKind::H264 => match h264::nal_type(&n) {
                    h264::NAL_SPS => self.sps = true,
                    h264::NAL_PPS => self.pps = true,
                    _ => {}
                },
                EsKind::H265 => match h265::nal_type(&n) {
                    h265::NAL_VPS => self.vps = true,
                    h265::NAL_SPS => self.sps = true,
                    h265::NAL_PPS => self.pps = true,
                    _ => {}
                },
                EsKind::Aac => return,
            }
        }
    }

    fn complete(&self, kind: EsKind) -> bool {
        self.sps && self.pps && (kind != EsKind::H265 || self.vps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Codec, Payload};
    use crate::format::mpegts::TsMuxer;
    use bytes::Bytes;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8, 0x04, 0x00, 0x00, 0x03, 0x00,
        0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xb9, 0x20,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn tracks() -> Vec<Track> {
        vec![
            Track::new(
                Codec::H264 {
                    sps: Some(Bytes::from_static(SPS)),
                    pps: Some(Bytes::from_static(PPS)),
                },
                90_000,
            ),
            Track::new(
                Codec::Aac {
                    config: Bytes::from_static(&[0x12, 0x10]),
                    sample_rate: 44_100,
                    channels: 2,
                },
                44_100,
            ),
        ]
    }

    fn video(n: i64) -> Unit {
        // A stream's keyframes carry the parameter sets (`Stream::write` puts them in).
        let nalus: Vec<&'static [u8]> = if n % 30 == 0 {
            vec![SPS, PPS, &[0x65, 0x88, 0x84]]
        } else {
            vec![&[0x41, 0x9a, 0x02]]
        };
        Unit {
            track: 0,
            pts: n * 3000,
            dts: n * 3000,
            keyframe: n % 30 == 0,
            payload: Payload::Nalus(nalus.into_iter().map(Bytes::from_static).collect()),
        }
    }

    fn audio(n: i64) -> Unit {
        Unit {
            track: 1,
            pts: n * 1024,
            dts: n * 1024,
            keyframe: true,
            payload: Payload::Frame(Bytes::from(vec![0x21; 40])),
        }
    }

    /// What a muxer makes of 60 video and 60 audio units, tables first.
    fn ts() -> Vec<u8> {
        let mut m = TsMuxer::new(&tracks()).unwrap();
        let mut out = Vec::new();
        m.write_tables(&mut out);
        for n in 0..60 {
            m.write(&video(n), &mut out);
            m.write(&audio(n), &mut out);
        }
        out
    }

    #[test]
    fn tracks_then_units_whatever_the_datagram_size() {
        let data = ts();
        for size in [1316, 188, 100, 7, data.len()] {
            let mut ing = TsIngest::default();
            let (mut got, mut units) = (None, Vec::new());
            for chunk in data.chunks(size) {
                if let Some(t) = ing.push(chunk, &mut units).unwrap() {
                    assert!(got.is_none(), "tracks announced twice");
                    got = Some(t);
                }
            }
            let got = got.expect("tracks");
            assert_eq!(got.len(), 2);
            assert!(
                matches!(&got[0].codec, Codec::H264 { sps: Some(s), pps: Some(_) } if s[..] == *SPS)
            );
            assert!(matches!(
                got[1].codec,
                Codec::Aac {
                    sample_rate: 44_100,
                    channels: 2,
                    ..
                }
            ));
            let videos = units.iter().filter(|u| u.track == 0).count();
            // The last PES of each stream ends only when the next one starts.
            assert!(
                (58..=59).contains(&videos),
                "size {size}: {videos} video units"
            );
            let first = units.iter().find(|u| u.track == 0).unwrap();
            assert!(first.keyframe);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut ing = TsIngest::default();
        let mut out = Vec::new();
        assert!(ing.push(&[0u8; 1316], &mut out).is_err());
        let mut ing = TsIngest::default();
        let mut noise = vec![0x47u8; 188 * 700];
        for (i, b) in noise.iter_mut().enumerate() {
            if i % 188 != 0 {
                *b = (i * 31 % 251) as u8;
            }
        }
        for c in noise.chunks(1316) {
            let _ = ing.push(c, &mut out);
        }
    }
}
