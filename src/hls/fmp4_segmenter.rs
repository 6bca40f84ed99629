//! Cuts a stream's units into fMP4 parts and segments (sans-io), for the `fmp4` and
//! `lowLatency` variants. Parts are `moof`+`mdat` fragments of at most the part
//! duration, cut on video frames; segments are runs of parts that start on a keyframe
//! and last at least the segment duration. A sample's duration is known when the
//! next sample of its track arrives, so each track holds one sample back.

use super::segmenter::{PartInfo, Segment};
use crate::core::{Payload, Track, Unit};
use crate::format::fmp4::{self, Fmp4Error, Sample, TrackRun};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// A finished part (LL-HLS partial segment).
#[derive(Debug, Clone)]
pub struct Part {
    pub info: PartInfo,
    pub data: Bytes,
    /// Sequence number of the segment it belongs to.
    pub segment: u64,
    /// That segment follows a discontinuity.
    pub discontinuity: bool,
    /// Wall-clock time of its first frame.
    pub start: SystemTime,
}

#[derive(Debug)]
pub enum Output {
    /// The init section, sent before the first part.
    Init(Bytes),
    Part(Part),
    Segment(Segment),
}

#[derive(Debug, Default)]
struct TrackState {
    carried: bool,
    clock: u32,
    /// Decode time (track clock) of the stream time where the output starts.
    origin: i64,
    pending: Option<Unit>,
    last_duration: u32,
    /// Samples of the open part.
    samples: Vec<Sample>,
    data: Vec<u8>,
    base: u64,
}

struct Open {
    seg_first: f64,
    part_first: f64,
    part_independent: bool,
    /// Decode time of the key track's last frame, and the step before it.
    last: f64,
    step: f64,
    parts: Vec<PartInfo>,
    data: Vec<u8>,
    discontinuity: bool,
}

pub struct Fmp4Segmenter {
    tracks: Vec<TrackState>,
    key_track: usize,
    key_is_video: bool,
    seg_target: f64,
    part_target: f64,
    epoch: SystemTime,
    open: Option<Open>,
    next_seq: u64,
    next_part: u64,
    fragment_seq: u32,
    discontinuity: bool,
    /// The tracks the current init section describes.
    init_tracks: Vec<Track>,
    /// Segments keep their parts' bytes (HLS serves whole segments; a recorder
    /// writes parts out and must not hold an hour of media).
    keep_segments: bool,
    /// A part ends early, at a key-track frame, once its samples hold this much.
    max_part_bytes: usize,
    /// The next keyframe starts a new segment, with the init section again.
    cut: bool,
}

fn secs(d: f64) -> Duration {
    Duration::try_from_secs_f64(d.max(0.0)).unwrap_or_default()
}

impl Fmp4Segmenter {
    pub fn new(
        tracks: &[Track],
        segment: Duration,
        part: Duration,
        epoch: SystemTime,
    ) -> Result<Self, Fmp4Error> {
        let carried = |i: usize| fmp4::carries(&tracks[i]);
        let video = (0..tracks.len()).find(|&i| carried(i) && tracks[i].codec.is_video());
        let key_track = video
            .or_else(|| (0..tracks.len()).find(|&i| carried(i)))
            .ok_or(Fmp4Error::NoTracks)?;
        Ok(Fmp4Segmenter {
            tracks: tracks
                .iter()
                .map(|t| TrackState {
                    carried: fmp4::carries(t),
                    clock: t.clock_rate.max(1),
                    ..Default::default()
                })
                .collect(),
            key_track,
            key_is_video: video.is_some(),
            seg_target: segment.as_secs_f64(),
            part_target: part.as_secs_f64().min(segment.as_secs_f64()),
            epoch,
            open: None,
            next_seq: 0,
            next_part: 0,
            fragment_seq: 1,
            discontinuity: false,
            init_tracks: Vec::new(),
            keep_segments: true,
            max_part_bytes: usize::MAX,
            cut: false,
        })
    }

    /// For writers of parts (recordings, downloads): segments come out without their
    /// bytes, each new segment's decode times start near 0 (a file of its own), and
    /// parts end once they hold `max_part_bytes`.
    pub fn parts_only(mut self, max_part_bytes: usize) -> Self {
        self.keep_segments = false;
        self.max_part_bytes = max_part_bytes.max(1);
        self
    }

    /// The next keyframe starts a new segment, after the init section again (a
    /// writer whose file failed starts over).
    pub fn cut_at_next_keyframe(&mut self) {
        self.cut = true;
    }

    /// Numbers segments from `seq` and parts from `part` on (a new publisher continues
    /// both sequences).
    pub fn start_at(&mut self, seq: u64, part: u64) {
        self.next_seq = seq;
        self.next_part = part;
    }

    pub fn mark_discontinuity(&mut self) {
        self.discontinuity = true;
    }

    /// Id of the part being built (the LL-HLS preload hint).
    pub fn next_part(&self) -> u64 {
        self.next_part
    }

    /// Wall-clock time at stream time 0, for the start of segments closed from now on.
    pub fn set_epoch(&mut self, epoch: SystemTime) {
        self.epoch = epoch;
    }

    /// Sequence number of the segment being built.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the first segment has started (the init section is out).
    pub fn started(&self) -> bool {
        self.open.is_some()
    }

    /// Adds a unit whose stream had `tracks` at that point (parameter sets learnt
    /// in-band included); finished parts and segments go to `out`.
    pub fn push(&mut self, unit: &Unit, tracks: &[Track], out: &mut Vec<Output>) {
        let Some(ts) = self.tracks.get(unit.track) else {
            return;
        };
        if !ts.carried {
            return;
        }
        let t = unit.dts as f64 / f64::from(ts.clock);
        let is_key = unit.track == self.key_track;
        let starts = is_key && (unit.keyframe || !self.key_is_video);
        if self.open.is_none() {
            if !starts {
                return;
            }
            match fmp4::init_segment(tracks) {
                Ok(init) => out.push(Output::Init(Bytes::from(init))),
                Err(e) => {
                    tracing::debug!("fMP4 init not ready: {e}");
                    return;
                }
            }
            self.init_tracks = tracks.to_vec();
            for s in &mut self.tracks {
                s.origin = (t * f64::from(s.clock)).round() as i64;
            }
            self.open = Some(Open {
                seg_first: t,
                part_first: t,
                part_independent: true,
                last: t,
                step: 0.0,
                parts: Vec::new(),
                data: Vec::new(),
                discontinuity: std::mem::take(&mut self.discontinuity),
            });
        }
        // New parameter sets (a resolution change): a new segment with a new init
        // section, after a discontinuity.
        let reinit = starts && (std::mem::take(&mut self.cut) || self.changed(tracks));
        self.complete_pending(unit.track, Some(unit.dts));
        if is_key {
            self.key_frame(t, starts, reinit, out);
        }
        if reinit {
            match fmp4::init_segment(tracks) {
                Ok(init) => {
                    out.push(Output::Init(Bytes::from(init)));
                    self.init_tracks = tracks.to_vec();
                    if let Some(o) = &mut self.open {
                        o.discontinuity = true;
                    }
                }
                Err(e) => tracing::debug!("fMP4 init for new parameters not ready: {e}"),
            }
        }
        self.tracks[unit.track].pending = Some(unit.clone());
    }

    /// Whether a carried track's codec parameters differ from the init section's.
    fn changed(&self, tracks: &[Track]) -> bool {
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, s)| s.carried)
            .any(|(i, _)| tracks.get(i) != self.init_tracks.get(i))
    }

    fn key_frame(&mut self, t: f64, starts: bool, force: bool, out: &mut Vec<Output>) {
        let Some(o) = &mut self.open else {
            return;
        };
        let new_segment =
            starts && (force || t - o.seg_first >= self.seg_target - 1e-9) && t > o.seg_first;
        // Cut before the frame that would take the part past its target duration.
        let full = self.tracks.iter().map(|s| s.data.len()).sum::<usize>() >= self.max_part_bytes;
        let new_part =
            (new_segment || full || (t - o.part_first) + o.step > self.part_target + 1e-6)
                && t > o.part_first;
        if t > o.last {
            o.step = t - o.last;
            o.last = t;
        }
        if new_part {
            self.close_part(t, out);
        }
        if new_segment {
            self.close_segment(t, out);
        }
        if new_part {
            if let Some(o) = &mut self.open {
                o.part_independent = starts;
            }
        }
    }

    /// Gives the held-back sample of `track` its duration (up to `next_dts`, else
    /// the last duration) and adds it to the open part.
    fn complete_pending(&mut self, track: usize, next_dts: Option<i64>) {
        let ts = &mut self.tracks[track];
        let Some(p) = ts.pending.take() else {
            return;
        };
        let fallback = if ts.last_duration > 0 {
            ts.last_duration
        } else {
            ts.clock / 30
        };
        let duration = next_dts
            .map(|n| n.saturating_sub(p.dts))
            .filter(|d| *d > 0)
            .map_or(fallback, |d| u32::try_from(d).unwrap_or(u32::MAX));
        ts.last_duration = duration;
        if ts.samples.is_empty() {
            ts.base = u64::try_from(p.dts.saturating_sub(ts.origin)).unwrap_or(0);
        }
        let before = ts.data.len();
        match &p.payload {
            Payload::Nalus(nalus) => {
                for n in nalus {
                    ts.data.extend_from_slice(&(n.len() as u32).to_be_bytes());
                    ts.data.extend_from_slice(n);
                }
            }
            Payload::Frame(f) => ts.data.extend_from_slice(f),
            Payload::Rtp { .. } => return,
        }
        let cts = p.pts.saturating_sub(p.dts);
        ts.samples.push(Sample {
            duration,
            cts: i32::try_from(cts).unwrap_or(if cts < 0 { i32::MIN } else { i32::MAX }),
            keyframe: p.keyframe,
            size: (ts.data.len() - before) as u32,
        });
    }

    fn close_part(&mut self, end: f64, out: &mut Vec<Output>) {
        let runs: Vec<TrackRun> = self
            .tracks
            .iter()
            .enumerate()
            .map(|(i, s)| TrackRun {
                track_id: i as u32 + 1,
                base_decode_time: s.base,
                samples: &s.samples,
                data: &s.data,
            })
            .collect();
        if runs.iter().all(|r| r.samples.is_empty()) {
            return;
        }
        let data = match fmp4::fragment(self.fragment_seq, &runs) {
            Ok(d) => Bytes::from(d),
            Err(e) => {
                tracing::warn!("fMP4 fragment dropped: {e}");
                Bytes::new()
            }
        };
        for s in &mut self.tracks {
            s.samples.clear();
            s.data.clear();
        }
        let Some(o) = &mut self.open else {
            return;
        };
        self.fragment_seq = self.fragment_seq.wrapping_add(1);
        let info = PartInfo {
            id: self.next_part,
            duration: secs(end - o.part_first),
            independent: o.part_independent,
        };
        let start = self
            .epoch
            .checked_add(secs(o.part_first))
            .unwrap_or(self.epoch);
        self.next_part += 1;
        o.part_first = end;
        if self.keep_segments {
            o.data.extend_from_slice(&data);
            o.parts.push(info);
        }
        out.push(Output::Part(Part {
            info,
            data,
            segment: self.next_seq,
            discontinuity: o.discontinuity,
            start,
        }));
    }

    fn close_segment(&mut self, end: f64, out: &mut Vec<Output>) {
        let Some(o) = &mut self.open else {
            return;
        };
        let seg = Segment {
            seq: self.next_seq,
            data: Bytes::from(std::mem::take(&mut o.data)),
            duration: secs(end - o.seg_first),
            start: self
                .epoch
                .checked_add(secs(o.seg_first))
                .unwrap_or(self.epoch),
            discontinuity: std::mem::take(&mut o.discontinuity),
            parts: std::mem::take(&mut o.parts),
        };
        self.next_seq += 1;
        o.seg_first = end;
        out.push(Output::Segment(seg));
        if !self.keep_segments {
            // Files of their own: each starts near time 0, from its earliest sample
            // (an audio frame held back may come a little before the keyframe).
            let first = self
                .tracks
                .iter()
                .filter_map(|s| {
                    s.pending
                        .as_ref()
                        .map(|p| p.dts as f64 / f64::from(s.clock))
                })
                .fold(end, f64::min);
            for s in &mut self.tracks {
                s.origin = (first * f64::from(s.clock)).round() as i64;
            }
        }
    }

    /// Closes everything at the stream's end; held-back samples keep their track's
    /// last duration.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        let Some(o) = &self.open else {
            return;
        };
        let end = o.last + o.step;
        for i in 0..self.tracks.len() {
            self.complete_pending(i, None);
        }
        self.close_part(end, out);
        if self.open.as_ref().is_some_and(|o| end > o.seg_first) {
            self.close_segment(end, out);
        }
        self.open = None;
    }
}

#[cfg(test)]
#[path = "fmp4_segmenter_tests.rs"]
mod tests;
