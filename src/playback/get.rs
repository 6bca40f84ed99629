//! `/get`: one file cut from the segments that cover a time range. It starts at the
//! keyframe at or before the range's start and its timestamps follow the wall clock
//! across segment boundaries, so contiguous segments play as one. fMP4 is streamed part
//! by part; plain MP4 reads the range twice (its tables, then its samples), so neither
//! holds more than a part of media in memory.

use super::segments::{key_track, SegmentFile, SegmentUnits};
use crate::core::{Payload, Track, Unit};
use crate::format::fmp4::{self, Sample};
use crate::hls::fmp4_segmenter::{Fmp4Segmenter, Output, Part};
use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parts of fMP4 output: short enough that a browser starts playing at once.
const PART: Duration = Duration::from_millis(1000);
/// Plain MP4 sample bytes go out in chunks of about this much.
const CHUNK: usize = 256 << 10;

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Every unit of the range in file order, its times on the output's timeline (0 = the
/// keyframe it starts at), with the tracks of the first segment; `each` returning false
/// stops. The segments are those that may cover the range, oldest first; one whose
/// tracks differ from the first's ends the range (a new encoding can't continue it).
fn range_units(
    segments: &[SegmentFile],
    start: SystemTime,
    duration: Duration,
    mut each: impl FnMut(&[Track], Unit) -> bool,
) -> std::io::Result<()> {
    let end = start + duration;
    let mut tracks: Option<Vec<Track>> = None;
    let mut t0: Option<SystemTime> = None;
    let mut gop: Vec<(SystemTime, Unit)> = Vec::new();
    let mut batch = Vec::new();
    // Decode times only go up, even where segments overlap by a few milliseconds.
    let mut last_dts: Vec<Option<i64>> = Vec::new();
    let mut emit = |tracks: &[Track], t0: SystemTime, wall: SystemTime, u: Unit| -> bool {
        let clock = f64::from(tracks[u.track].clock_rate.max(1));
        let mut dts = (secs_between(t0, wall).max(0.0) * clock).round() as i64;
        last_dts.resize(tracks.len(), None);
        if let Some(l) = last_dts[u.track] {
            dts = dts.max(l + 1);
        }
        last_dts[u.track] = Some(dts);
        let unit = Unit {
            pts: dts + (u.pts - u.dts),
            dts,
            ..u
        };
        each(tracks, unit)
    };
    'files: for s in segments {
        let mut r = match SegmentUnits::open(s) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(file = %s.file.display(), "playback skips a segment: {e}");
                continue;
            }
        };
        if tracks.is_none() {
            tracks = Some(r.tracks().to_vec());
        }
        let tracks = tracks.as_deref().unwrap_or_default();
        if tracks != r.tracks() {
            break;
        }
        let key = key_track(tracks);
        loop {
            batch.clear();
            if !r.next(&mut batch)? {
                break;
            }
            for (rel, u) in batch.drain(..) {
                let wall = match rel >= 0.0 {
                    true => s.start + Duration::from_secs_f64(rel),
                    false => s.start - Duration::from_secs_f64(-rel),
                };
                if wall >= end {
                    break 'files;
                }
                if let Some(t) = t0 {
                    if !emit(tracks, t, wall, u) {
                        return Ok(());
                    }
                    continue;
                }
                let keyframe = u.track == key && u.keyframe;
                if keyframe && (wall <= start || gop.is_empty()) {
                    gop.clear();
                }
                if !keyframe && gop.is_empty() {
                    continue;
                }
                if wall < start {
                    gop.push((wall, u));
                    continue;
                }
                // The range starts here: at the last keyframe before it.
                let first = gop.first().map_or(wall, |(w, _)| *w);
                t0 = Some(first);
                for (w, g) in gop.drain(..).chain(std::iter::once((wall, u))) {
                    if !emit(tracks, first, w, g) {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes the range as fMP4 through `send` (false: the client left).
pub fn write_fmp4(
    segments: &[SegmentFile],
    start: SystemTime,
    duration: Duration,
    mut send: impl FnMut(Bytes) -> bool,
) -> std::io::Result<()> {
    let mut muxer: Option<Fmp4Segmenter> = None;
    let mut out = Vec::new();
    let mut failed = None;
    let mut gone = false;
    let flush = |out: &mut Vec<Output>, send: &mut dyn FnMut(Bytes) -> bool| {
        out.drain(..).all(|o| match o {
            Output::Init(d) | Output::Part(Part { data: d, .. }) => send(d),
            Output::Segment(_) => true,
        })
    };
    range_units(segments, start, duration, |tracks, unit| {
        if muxer.is_none() {
            let whole = Duration::from_secs(u32::MAX.into());
            match Fmp4Segmenter::new(tracks, whole, PART, UNIX_EPOCH) {
                Ok(m) => muxer = Some(m.parts_only(usize::MAX)),
                Err(e) => {
                    failed = Some(other(e));
                    return false;
                }
            }
        }
        let Some(m) = muxer.as_mut() else {
            return false;
        };
        m.push(&unit, tracks, &mut out);
        gone = !flush(&mut out, &mut send);
        !gone
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(m) = muxer.as_mut().filter(|_| !gone) {
        m.finish(&mut out);
        flush(&mut out, &mut send);
    }
    Ok(())
}

/// A sample's bytes as MP4 stores them (NAL units with 4-byte lengths).
fn sample_bytes(p: &Payload, out: &mut Vec<u8>) {
    match p {
        Payload::Nalus(nalus) => {
            for n in nalus {
                out.extend_from_slice(&(n.len() as u32).to_be_bytes());
                out.extend_from_slice(n);
            }
        }
        Payload::Frame(f) => out.extend_from_slice(f),
        Payload::Rtp { .. } => {}
    }
}

fn sample_size(p: &Payload) -> u32 {
    let n = match p {
        Payload::Nalus(nalus) => nalus.iter().map(|n| 4 + n.len()).sum(),
        Payload::Frame(f) => f.len(),
        Payload::Rtp { .. } => 0,
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Writes the range as a plain MP4 (`moov` first, so it plays while it downloads).
pub fn write_mp4(
    segments: &[SegmentFile],
    start: SystemTime,
    duration: Duration,
    mut send: impl FnMut(Bytes) -> bool,
) -> std::io::Result<()> {
    // First pass: every sample's size and times.
    let mut tracks = Vec::new();
    let mut samples: Vec<(usize, Sample)> = Vec::new();
    let mut dts: Vec<Vec<i64>> = Vec::new();
    range_units(segments, start, duration, |t, u| {
        if tracks.is_empty() {
            tracks = t.to_vec();
            dts = vec![Vec::new(); t.len()];
        }
        if !fmp4::carries(&t[u.track]) {
            return true;
        }
        dts[u.track].push(u.dts);
        samples.push((
            u.track,
            Sample {
                duration: 0,
                cts: i32::try_from(u.pts - u.dts).unwrap_or(0),
                keyframe: u.keyframe,
                size: sample_size(&u.payload),
            },
        ));
        true
    })?;
    if samples.is_empty() {
        return Ok(());
    }
    // A sample lasts until its track's next one; the last as long as the one before.
    let mut next = vec![0usize; tracks.len()];
    for (track, s) in &mut samples {
        let d = &dts[*track];
        let i = next[*track];
        next[*track] += 1;
        let step = match (
            d.get(i),
            d.get(i + 1),
            i.checked_sub(1).and_then(|p| d.get(p)),
        ) {
            (Some(a), Some(b), _) => b - a,
            (Some(a), None, Some(p)) => a - p,
            _ => i64::from(tracks[*track].clock_rate / 30),
        };
        s.duration = u32::try_from(step.max(1)).unwrap_or(1);
    }
    let header = fmp4::progressive::header(&tracks, &samples).map_err(other)?;
    if !send(Bytes::from(header)) {
        return Ok(());
    }
    // Second pass: the samples' bytes, in the same order.
    let mut buf = Vec::with_capacity(CHUNK + (64 << 10));
    let mut gone = false;
    range_units(segments, start, duration, |t, u| {
        if fmp4::carries(&t[u.track]) {
            sample_bytes(&u.payload, &mut buf);
        }
        if buf.len() >= CHUNK && !send(Bytes::from(std::mem::take(&mut buf))) {
            gone = true;
            return false;
        }
        true
    })?;
    if !gone && !buf.is_empty() {
        send(Bytes::from(buf));
    }
    Ok(())
}
