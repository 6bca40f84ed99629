//! Cuts a stream's units into MPEG-TS segments (sans-io): every segment starts with
//! PAT/PMT and a video keyframe, is at least `hlsSegmentDuration` long, and its
//! duration is the real one, from its first frame to the next segment's.

use crate::core::{Track, Unit};
use crate::format::mpegts::{TsError, TsMuxer};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// A finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number.
    pub seq: u64,
    pub data: Bytes,
    pub duration: Duration,
    /// Wall-clock time of its first frame.
    pub start: SystemTime,
    pub discontinuity: bool,
    /// Its parts (fMP4 with LL-HLS), in order; none for MPEG-TS.
    pub parts: Vec<PartInfo>,
}

/// What a playlist says of a part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartInfo {
    /// Part number, counted across segments.
    pub id: u64,
    pub duration: Duration,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
}

struct Open {
    data: Vec<u8>,
    first: f64,
    last: f64,
    /// Decode-time step between the last two frames of the key track.
    step: f64,
    discontinuity: bool,
}

pub struct TsSegmenter {
    mux: TsMuxer,
    clocks: Vec<u32>,
    /// The track whose keyframes may start a segment: video, else the first carried.
    key_track: usize,
    key_is_video: bool,
    target: f64,
    /// Wall-clock time at dts 0 (the stream's start).
    epoch: SystemTime,
    open: Option<Open>,
    next_seq: u64,
    discontinuity: bool,
}

impl TsSegmenter {
    pub fn new(tracks: &[Track], target: Duration, epoch: SystemTime) -> Result<Self, TsError> {
        let mux = TsMuxer::new(tracks)?;
        let video = (0..tracks.len()).find(|t| mux.carries(*t) && tracks[*t].codec.is_video());
        let key_track = video
            .or_else(|| (0..tracks.len()).find(|t| mux.carries(*t)))
            .ok_or(TsError::NoTracks)?;
        Ok(TsSegmenter {
            mux,
            clocks: tracks.iter().map(|t| t.clock_rate.max(1)).collect(),
            key_track,
            key_is_video: video.is_some(),
            target: target.as_secs_f64(),
            epoch,
            open: None,
            next_seq: 0,
            discontinuity: false,
        })
    }

    /// Numbers segments from `seq` on (a new publisher continues the sequence).
    pub fn start_at(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// Wall-clock time at stream time 0, for the start of segments closed from now on.
    pub fn set_epoch(&mut self, epoch: SystemTime) {
        self.epoch = epoch;
    }

    /// Sequence number of the segment being built.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next segment is marked as a discontinuity (new publisher, new encoding).
    pub fn mark_discontinuity(&mut self) {
        self.discontinuity = true;
    }

    fn seconds(&self, unit: &Unit) -> f64 {
        unit.dts as f64 / f64::from(self.clocks[unit.track])
    }

    /// Adds a unit; returns the segment it closed, if it started a new one. Units
    /// before the first keyframe are dropped: a segment must be decodable alone.
    pub fn push(&mut self, unit: &Unit) -> Option<Segment> {
        if !self.mux.carries(unit.track) {
            return None;
        }
        let t = self.seconds(unit);
        let is_key = unit.track == self.key_track;
        let starts = is_key && (unit.keyframe || !self.key_is_video);
        let mut closed = None;
        match &self.open {
            None if !starts => return None,
            Some(o) if starts && t - o.first >= self.target => {
                closed = self.close(t);
            }
            _ => {}
        }
        if self.open.is_none() {
            let mut data = Vec::with_capacity(512 * 1024);
            self.mux.write_tables(&mut data);
            self.open = Some(Open {
                data,
                first: t,
                last: t,
                step: 0.0,
                discontinuity: std::mem::take(&mut self.discontinuity),
            });
        }
        if let Some(o) = &mut self.open {
            if is_key && t > o.last {
                o.step = t - o.last;
                o.last = t;
            }
            self.mux.write(unit, &mut o.data);
        }
        closed
    }

    /// Closes the open segment at `end` seconds (the next segment's start).
    fn close(&mut self, end: f64) -> Option<Segment> {
        let o = self.open.take()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(Segment {
            seq,
            data: Bytes::from(o.data),
            // Timestamps come from publishers: keep whatever they say in range.
            duration: Duration::try_from_secs_f64((end - o.first).max(0.0)).unwrap_or_default(),
            start: Duration::try_from_secs_f64(o.first.max(0.0))
                .ok()
                .and_then(|d| self.epoch.checked_add(d))
                .unwrap_or(self.epoch),
            discontinuity: o.discontinuity,
            parts: Vec::new(),
        })
    }

    /// Closes the open segment at the stream's end; its last frame counts for one
    /// frame interval.
    pub fn finish(&mut self) -> Option<Segment> {
        let end = self.open.as_ref().map(|o| o.last + o.step)?;
        self.close(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures;
    use std::time::UNIX_EPOCH;

    fn tracks() -> Vec<Track> {
        vec![fixtures::h264(), fixtures::aac()]
    }

    use fixtures::{aac_frame as audio, video};

    #[test]
    fn segments_start_on_keyframes_and_last_their_real_duration() {
        let mut s = TsSegmenter::new(&tracks(), Duration::from_secs(1), UNIX_EPOCH).unwrap();
        let mut done = Vec::new();
        // Frames 0..5 come before the first keyframe and are dropped. Keyframes every
        // 20 frames (0.667 s): a 1 s target takes two GOPs per segment.
        for f in 5..125 {
            done.extend(s.push(&video(f, f % 20 == 0)));
            done.extend(s.push(&audio(f * 48000 / 30 / 1024)));
        }
        done.extend(s.finish());
        let secs: Vec<f64> = done.iter().map(|d| d.duration.as_secs_f64()).collect();
        assert_eq!(done.len(), 3, "{secs:?}");
        for d in &secs[..2] {
            assert!((d - 4.0 / 3.0).abs() < 1e-6, "{secs:?}");
        }
        // Frames 100..125 close at the end with one frame interval for the last one.
        assert!((secs[2] - 25.0 / 30.0).abs() < 1e-6, "{secs:?}");
        let seqs: Vec<u64> = done.iter().map(|d| d.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(
            done[1].start.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_secs_f64(60.0 / 30.0)
        );
        // Each segment opens with PAT and PMT, then the keyframe's PES.
        for d in &done {
            assert_eq!(d.data.len() % 188, 0);
            assert_eq!((d.data[1], d.data[2]), (0x40, 0x00), "PAT first");
            assert_eq!(d.data[188 + 1] & 0x40, 0x40, "PMT second");
            assert_eq!(d.data[2 * 188 + 5] & 0x40, 0x40, "random access third");
        }
    }

    #[test]
    fn a_discontinuity_marks_the_next_segment_only() {
        let mut s = TsSegmenter::new(&tracks(), Duration::from_secs(1), UNIX_EPOCH).unwrap();
        let mut done = Vec::new();
        for f in 0..31 {
            if f == 10 {
                s.mark_discontinuity();
            }
            done.extend(s.push(&video(f, f % 30 == 0)));
        }
        for f in 31..91 {
            done.extend(s.push(&video(f, f % 30 == 0)));
        }
        let marks: Vec<bool> = done.iter().map(|d| d.discontinuity).collect();
        assert_eq!(marks, [false, true, false]);
    }

    #[test]
    fn hostile_timestamps_do_not_panic() {
        let mut s = TsSegmenter::new(&tracks(), Duration::from_secs(1), UNIX_EPOCH).unwrap();
        for dts in [0, i64::MAX, i64::MIN, 5, i64::MAX] {
            let mut u = video(0, true);
            u.dts = dts;
            u.pts = dts;
            let _ = s.push(&u);
        }
        let _ = s.finish();
    }

    #[test]
    fn audio_only_streams_cut_on_any_frame() {
        let t = vec![tracks().remove(1)];
        let mut s = TsSegmenter::new(&t, Duration::from_secs(1), UNIX_EPOCH).unwrap();
        let mut n = 0;
        for i in 0..200 {
            let mut u = audio(i);
            u.track = 0;
            n += usize::from(s.push(&u).is_some());
        }
        // 200 frames of 1024 samples at 48 kHz: 4.27 s, so 4 closed segments.
        assert_eq!(n, 4);
    }
}
