//! Units out of media segments (sans-io), whichever container they came in: MPEG-TS
//! PES packets and fMP4 fragments become frames on a 90 kHz timeline, and frames become
//! units. Shared by the HLS source and the playback of recordings.

use crate::codec::{h264, h265};
use crate::core::{Codec, Payload, Track, Unit};
use crate::format::fmp4::{self, Fmp4Error};
use crate::format::mpegts::demux::{next_adts, split_annexb, EsKind, Pes};
use bytes::Bytes;
use std::collections::HashMap;

pub const TS_WRAP: i64 = 1 << 33;

/// A jump larger than this between consecutive timestamps is a discontinuity.
const MAX_JUMP: i64 = 10 * 90_000;

/// 90 kHz timestamps → the stream timeline, across 33-bit wraps and discontinuities.
#[derive(Default)]
pub struct Timeline {
    /// (last unwrapped dts, wraps) per PID.
    last: HashMap<u16, i64>,
    /// Unwrapped 90 kHz time that maps to `at`.
    base: Option<i64>,
    pub at: i64,
    /// Latest stream time written, 90 kHz.
    newest: i64,
}

impl Timeline {
    pub fn unwrap(&mut self, pid: u16, ts: u64) -> i64 {
        let ts = ts as i64;
        let prev = self.last.get(&pid).copied();
        let mut t = ts;
        if let Some(p) = prev {
            // The unwrapped value closest to the previous one.
            let k = (p - ts + TS_WRAP / 2).div_euclid(TS_WRAP);
            t = ts + k * TS_WRAP;
        }
        self.last.insert(pid, t);
        t
    }

    /// Stream time (90 kHz) of unwrapped `t`, rebasing on a jump.
    pub fn map(&mut self, t: i64) -> i64 {
        let base = *self.base.get_or_insert(t);
        let mut mapped = t - base + self.at;
        if self.newest > 0 && (mapped - self.newest).abs() > MAX_JUMP {
            self.restart();
            self.base = Some(t);
            mapped = self.at;
        }
        self.newest = self.newest.max(mapped);
        mapped
    }

    /// The next timestamp, whatever it is, continues right after what was written.
    pub fn restart(&mut self) {
        self.base = None;
        self.at = self.newest + 3000;
        self.last.clear();
    }
}

/// AudioSpecificConfig from an ADTS header's fields.
fn asc(profile: u8, rate_index: u8, channels: u8) -> Bytes {
    let ot = profile + 1;
    Bytes::from(vec![
        (ot << 3) | (rate_index >> 1),
        ((rate_index & 1) << 7) | (channels << 3),
    ])
}

/// Tracks out of a segment's PES packets, parameter sets included when its first
/// keyframe carries them. Video first, then audio; `None` if nothing is usable.
pub fn ts_tracks(pes: &[Pes]) -> Option<(Vec<Track>, HashMap<u16, usize>)> {
    let mut tracks = Vec::new();
    let mut index = HashMap::new();
    let video = pes
        .iter()
        .find(|p| matches!(p.kind, EsKind::H264 | EsKind::H265));
    if let Some(v) = video {
        let all: Vec<Bytes> = pes
            .iter()
            .filter(|p| p.pid == v.pid)
            .flat_map(|p| split_annexb(&p.data))
            .collect();
        let find = |typ: u8, h265: bool| {
            all.iter()
                .find(|n| {
                    if h265 {
                        h265::nal_type(n) == typ
                    } else {
                        h264::nal_type(n) == typ
                    }
                })
                .cloned()
        };
        let codec = match v.kind {
            EsKind::H264 => Codec::H264 {
                sps: find(h264::NAL_SPS, false),
                pps: find(h264::NAL_PPS, false),
            },
            _ => Codec::H265 {
                vps: find(h265::NAL_VPS, true),
                sps: find(h265::NAL_SPS, true),
                pps: find(h265::NAL_PPS, true),
            },
        };
        index.insert(v.pid, tracks.len());
        tracks.push(Track::new(codec, 90000));
    }
    if let Some(a) = pes.iter().find(|p| p.kind == EsKind::Aac) {
        if let Some((profile, rate, channels, _)) = next_adts(&a.data, &mut 0) {
            let config = asc(profile, rate, channels);
            if let Ok(cfg) = crate::codec::aac::AudioSpecificConfig::parse(&config) {
                index.insert(a.pid, tracks.len());
                tracks.push(Track::new(
                    Codec::Aac {
                        config,
                        sample_rate: cfg.sample_rate,
                        channels: cfg.channels,
                    },
                    cfg.sample_rate,
                ));
            }
        }
    }
    (!tracks.is_empty()).then_some((tracks, index))
}

/// A frame out of a segment, whichever container it came in.
pub struct Frame {
    /// PID (MPEG-TS) or track id (fMP4).
    pub key: u32,
    /// 90 kHz decode time, unwrapped.
    pub dts: i64,
    pub cts: i64,
    pub media: FrameMedia,
}

pub enum FrameMedia {
    Video {
        nalus: Vec<Bytes>,
        h265: bool,
    },
    /// A PES of ADTS frames.
    Adts(Bytes),
    /// One audio access unit (fMP4: AAC or Opus).
    Audio(Bytes),
}

/// Length-prefixed NAL units (fMP4 samples).
pub fn split_lengths(data: &Bytes, size: u8) -> Vec<Bytes> {
    let size = usize::from(size.clamp(1, 4));
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + size <= data.len() {
        let len = data[pos..pos + size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        pos += size;
        if len == 0 || pos + len > data.len() {
            break;
        }
        out.push(data.slice(pos..pos + len));
        pos += len;
    }
    out
}

fn audio_unit(track: usize, at: i64, au: Bytes) -> Unit {
    Unit {
        track,
        pts: at,
        dts: at,
        keyframe: true,
        payload: Payload::Frame(au),
    }
}

pub fn to_90k(t: u64, clock: u32) -> i64 {
    (u128::from(t) * 90_000 / u128::from(clock.max(1))).min(i64::MAX as u128) as i64
}

/// The frames of PES packets; `unwrap` turns a PID's 33-bit DTS into a running one.
pub fn ts_frames(pes: Vec<Pes>, mut unwrap: impl FnMut(u16, u64) -> i64) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(pes.len());
    for p in pes {
        let (Some(pts), Some(dts)) = (p.pts, p.dts) else {
            continue;
        };
        let dts_u = unwrap(p.pid, dts);
        let cts = (pts as i64 - dts as i64).rem_euclid(TS_WRAP);
        let cts = if cts > TS_WRAP / 2 {
            cts - TS_WRAP
        } else {
            cts
        };
        let media = match p.kind {
            EsKind::H264 | EsKind::H265 => FrameMedia::Video {
                nalus: split_annexb(&p.data),
                h265: p.kind == EsKind::H265,
            },
            EsKind::Aac => FrameMedia::Adts(p.data),
        };
        frames.push(Frame {
            key: u32::from(p.pid),
            dts: dts_u,
            cts,
            media,
        });
    }
    frames
}

/// The frames of an fMP4 fragment (`moof`+`mdat` pairs) that `tracks` describe.
pub fn fmp4_frames(
    init_tracks: &[fmp4::demux::InitTrack],
    data: &Bytes,
) -> Result<Vec<Frame>, Fmp4Error> {
    let by_id: HashMap<u32, &fmp4::demux::InitTrack> =
        init_tracks.iter().map(|t| (t.id, t)).collect();
    let mut samples = Vec::new();
    fmp4::demux::parse_fragments(data, &mut samples)?;
    let mut frames = Vec::with_capacity(samples.len());
    for s in samples {
        let Some(t) = by_id.get(&s.track_id) else {
            continue;
        };
        let clock = t.track.clock_rate;
        let media = match t.track.codec {
            Codec::H264 { .. } | Codec::H265 { .. } => FrameMedia::Video {
                nalus: split_lengths(&s.data, t.length_size),
                h265: matches!(t.track.codec, Codec::H265 { .. }),
            },
            _ => FrameMedia::Audio(s.data),
        };
        let cts = if s.cts < 0 {
            -to_90k(s.cts.unsigned_abs(), clock)
        } else {
            to_90k(s.cts as u64, clock)
        };
        frames.push(Frame {
            key: s.track_id,
            dts: to_90k(s.dts, clock),
            cts,
            media,
        });
    }
    Ok(frames)
}

impl Frame {
    /// The frame's units for `track` (clock `clock`), its decode time mapped to `t`
    /// (90 kHz): an AAC PES may hold several.
    pub fn into_units(self, track: usize, t: i64, clock: i64, mut emit: impl FnMut(Unit)) {
        // Timestamps come from the network: no overflow, whatever they say.
        let scale = |v: i64| {
            (i128::from(v) * i128::from(clock) / 90_000).clamp(i64::MIN.into(), i64::MAX.into())
                as i64
        };
        match self.media {
            FrameMedia::Video { nalus, h265 } => {
                let nalus: Vec<Bytes> = nalus
                    .into_iter()
                    .filter(|n| match h265 {
                        false => h264::nal_type(n) != h264::NAL_AUD,
                        true => h265::nal_type(n) != h265::NAL_AUD,
                    })
                    .collect();
                if nalus.is_empty() {
                    return;
                }
                let keyframe = match h265 {
                    false => h264::is_keyframe(&nalus),
                    true => h265::is_keyframe(&nalus),
                };
                emit(Unit {
                    track,
                    pts: scale(t.saturating_add(self.cts)),
                    dts: scale(t),
                    keyframe,
                    payload: Payload::Nalus(nalus),
                });
            }
            FrameMedia::Adts(data) => {
                let mut pos = 0;
                let mut at = scale(t);
                while let Some((_, _, _, au)) = next_adts(&data, &mut pos) {
                    emit(audio_unit(track, at, au));
                    at = at.saturating_add(1024);
                }
            }
            FrameMedia::Audio(au) => emit(audio_unit(track, scale(t), au)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn timestamps_unwrap_and_rebase_on_jumps() {
        let mut t = Timeline {
            at: 90_000,
            ..Default::default()
        };
        let a = t.unwrap(1, (TS_WRAP - 3000) as u64);
        assert_eq!(t.map(a), 90_000);
        let b = t.unwrap(1, 0); // wrapped
        assert_eq!(t.map(b), 93_000);
        // A 1-hour jump (a new encoder): continues right after.
        let c = t.unwrap(1, 90_000 * 3600);
        assert_eq!(t.map(c), 96_000);
    }

    #[test]
    fn adts_fields_make_an_audio_specific_config() {
        assert_eq!(super::asc(1, 3, 2)[..], [0x11, 0x90]);
    }
}
