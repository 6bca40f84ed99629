//! Cuts a stream's units into what a recorder writes (sans-io): files that start on a
//! keyframe and last at least `recordSegmentDuration`, written in parts of at most
//! `recordPartDuration` (or `recordMaxPartSize`). fMP4 files are the init section, then
//! one `moof`+`mdat` per part; MPEG-TS files are PAT/PMT, then packets.

use crate::config::record::RecordFormat;
use crate::core::{Track, Unit};
use crate::format::mpegts::TsMuxer;
use crate::hls::fmp4_segmenter::{Fmp4Segmenter, Output};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// What the writer does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// End the current file; start one for media from `start` on, beginning with `header`.
    Open { start: SystemTime, header: Bytes },
    /// Append to the current file; its media then reaches `end`.
    Data { bytes: Bytes, end: SystemTime },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub segment: Duration,
    pub part: Duration,
    pub max_part_bytes: usize,
}

struct Ts {
    mux: TsMuxer,
    clocks: Vec<u32>,
    key_track: usize,
    key_is_video: bool,
    /// Stream seconds of the open file's first frame and of the last flush.
    open: Option<(f64, f64)>,
    /// The open file's `Open` waits for its first flush, so its start time uses the
    /// epoch as known by then (the first frames refine it).
    unannounced: bool,
    /// The tracks when the open file started: new parameter sets start a new one.
    tracks: Vec<Track>,
    buf: Vec<u8>,
    newest: f64,
}

impl Ts {
    /// What the open file holds so far goes out (after its `Open`, the first time).
    fn flush(&mut self, epoch: SystemTime, out: &mut Vec<Event>) {
        let Some((first, flushed)) = &mut self.open else {
            return;
        };
        if std::mem::take(&mut self.unannounced) {
            out.push(Event::Open {
                start: at(epoch, *first),
                header: Bytes::new(),
            });
        }
        *flushed = self.newest;
        out.push(Event::Data {
            bytes: Bytes::from(std::mem::take(&mut self.buf)),
            end: at(epoch, self.newest),
        });
    }
}

enum Kind {
    Fmp4 {
        seg: Box<Fmp4Segmenter>,
        init: Bytes,
        /// Sequence number of the segment the open file holds.
        file: Option<u64>,
        /// A segment whose file was given up: its remaining parts go nowhere.
        skip: Option<u64>,
        out: Vec<Output>,
    },
    Ts(Box<Ts>),
}

pub struct Cutter {
    kind: Kind,
    limits: Limits,
    epoch: SystemTime,
    cut: bool,
}

fn at(epoch: SystemTime, secs: f64) -> SystemTime {
    epoch
        .checked_add(Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default())
        .unwrap_or(epoch)
}

impl Cutter {
    pub fn new(
        format: RecordFormat,
        tracks: &[Track],
        limits: Limits,
        epoch: SystemTime,
    ) -> Result<Cutter, String> {
        let kind = match format {
            RecordFormat::Fmp4 => {
                let seg = Fmp4Segmenter::new(tracks, limits.segment, limits.part, epoch)
                    .map_err(|e| e.to_string())?
                    .parts_only(limits.max_part_bytes);
                Kind::Fmp4 {
                    seg: Box::new(seg),
                    init: Bytes::new(),
                    file: None,
                    skip: None,
                    out: Vec::new(),
                }
            }
            RecordFormat::Mpegts => {
                let mux = TsMuxer::new(tracks).map_err(|e| e.to_string())?;
                let video =
                    (0..tracks.len()).find(|t| mux.carries(*t) && tracks[*t].codec.is_video());
                let key_track = video
                    .or_else(|| (0..tracks.len()).find(|t| mux.carries(*t)))
                    .ok_or("no track fits in MPEG-TS")?;
                Kind::Ts(Box::new(Ts {
                    mux,
                    clocks: tracks.iter().map(|t| t.clock_rate.max(1)).collect(),
                    key_track,
                    key_is_video: video.is_some(),
                    open: None,
                    unannounced: false,
                    tracks: tracks.to_vec(),
                    buf: Vec::new(),
                    newest: 0.0,
                }))
            }
        };
        Ok(Cutter {
            kind,
            limits,
            epoch,
            cut: false,
        })
    }

    /// Whether a file was opened: from then on the epoch stays, so that the start
    /// times of a recording's files agree with the media in them.
    pub fn started(&self) -> bool {
        match &self.kind {
            Kind::Fmp4 { file, skip, .. } => file.is_some() || skip.is_some(),
            Kind::Ts(ts) => ts.open.is_some() && !ts.unannounced,
        }
    }

    /// The codecs of `tracks` (the stream's) that the format can't carry.
    pub fn left_out(&self, tracks: &[Track]) -> Vec<String> {
        let carried = |i: usize, t: &Track| match &self.kind {
            Kind::Fmp4 { .. } => crate::format::fmp4::carries(t),
            Kind::Ts(ts) => ts.mux.carries(i),
        };
        tracks
            .iter()
            .enumerate()
            .filter(|(i, t)| !carried(*i, t))
            .map(|(_, t)| t.codec.name().to_string())
            .collect()
    }

    /// Wall-clock time at stream time 0, for files opened from now on.
    pub fn set_epoch(&mut self, epoch: SystemTime) {
        self.epoch = epoch;
        if let Kind::Fmp4 { seg, .. } = &mut self.kind {
            seg.set_epoch(epoch);
        }
    }

    /// The next keyframe opens a new file; the current one ends with what it holds
    /// (the media has a gap: the reader skipped ahead).
    pub fn cut_at_next_keyframe(&mut self) {
        self.cut = true;
        if let Kind::Fmp4 { seg, .. } = &mut self.kind {
            seg.cut_at_next_keyframe();
        }
    }

    /// The current file failed: what is still held for it goes nowhere, and the next
    /// keyframe opens a new one.
    pub fn restart_after_failure(&mut self) {
        self.cut_at_next_keyframe();
        if let Kind::Fmp4 {
            seg, file, skip, ..
        } = &mut self.kind
        {
            *file = None;
            *skip = Some(seg.next_seq());
        }
    }

    /// Adds a unit of a stream whose tracks are `tracks` at that point.
    pub fn push(&mut self, unit: &Unit, tracks: &[Track], out: &mut Vec<Event>) {
        match &mut self.kind {
            Kind::Fmp4 { seg, out: o, .. } => {
                seg.push(unit, tracks, o);
                self.drain(out);
            }
            Kind::Ts(ts) => {
                if !ts.mux.carries(unit.track) {
                    return;
                }
                let t = unit.dts as f64 / f64::from(ts.clocks[unit.track]);
                let starts = unit.track == ts.key_track && (unit.keyframe || !ts.key_is_video);
                let due = match ts.open {
                    None => true,
                    Some((first, _)) => {
                        self.cut
                            || t - first >= self.limits.segment.as_secs_f64()
                            || ts.tracks != tracks
                    }
                };
                if starts && due {
                    self.cut = false;
                    if ts.open.is_some() && !ts.buf.is_empty() {
                        ts.flush(self.epoch, out);
                    }
                    ts.mux.write_tables(&mut ts.buf);
                    ts.open = Some((t, t));
                    ts.tracks = tracks.to_vec();
                    ts.unannounced = true;
                }
                let Some((_, flushed)) = ts.open else {
                    return;
                };
                ts.mux.write(unit, &mut ts.buf);
                ts.newest = ts.newest.max(t);
                if ts.newest - flushed >= self.limits.part.as_secs_f64()
                    || ts.buf.len() >= self.limits.max_part_bytes
                {
                    ts.flush(self.epoch, out);
                }
            }
        }
    }

    fn drain(&mut self, out: &mut Vec<Event>) {
        let Kind::Fmp4 {
            init,
            file,
            skip,
            out: o,
            ..
        } = &mut self.kind
        else {
            return;
        };
        for item in o.drain(..) {
            match item {
                Output::Init(data) => *init = data,
                Output::Part(p) => {
                    if *skip == Some(p.segment) {
                        continue;
                    }
                    if *file != Some(p.segment) {
                        // A file starts on a keyframe: after a failure, wait for one.
                        if !p.info.independent {
                            continue;
                        }
                        *file = Some(p.segment);
                        out.push(Event::Open {
                            start: p.start,
                            header: init.clone(),
                        });
                    }
                    let end = p.start.checked_add(p.info.duration).unwrap_or(p.start);
                    out.push(Event::Data { bytes: p.data, end });
                }
                Output::Segment(_) => {}
            }
        }
    }

    /// The stream ended: what is held goes out.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        match &mut self.kind {
            Kind::Fmp4 { seg, out: o, .. } => {
                seg.finish(o);
                self.drain(out);
            }
            Kind::Ts(ts) => {
                if ts.open.is_some() && !ts.buf.is_empty() {
                    ts.flush(self.epoch, out);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "cutter_tests.rs"]
mod tests;
