//! Segments → a path's stream, in real time: MPEG-TS or fMP4 segments (after their
//! init section) are demuxed into units and written as their timestamps say.
//! Discontinuities and restarts continue the timeline where it stood. Shared by the
//! HLS source (which fetches segments) and the HLS push ingest (which is sent them).

use super::SourceError;
use crate::core::{Publisher, Stream, StreamConfig, Track};
use crate::format::fmp4;
use crate::format::mpegts::demux::TsDemuxer;
use crate::format::segment::{self, Frame, Timeline};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What an fMP4 init section said: tracks by id.
pub(crate) struct Init {
    pub uri: String,
    pub tracks: Vec<fmp4::demux::InitTrack>,
}

#[derive(Default)]
pub(crate) struct Feed {
    pub demux: TsDemuxer,
    pub init: Option<Init>,
    pub stream: Option<(Arc<Stream>, HashMap<u32, usize>)>,
    pub timeline: Timeline,
    /// Wall clock at stream time `paced_from`.
    clock: Option<(Instant, i64)>,
    /// Play out one segment behind its arrival (a pushed stream: the next segment comes
    /// only once it is complete, so without the lead each boundary would stall).
    pub lead: bool,
}

impl Feed {
    fn start(
        &mut self,
        tracks: Vec<Track>,
        index: HashMap<u32, usize>,
        publisher: &Publisher,
        cfg: StreamConfig,
    ) -> Result<(), SourceError> {
        let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
        tracing::info!(tracks = %codecs.join(", "), "HLS source playing");
        let stream = Stream::new(tracks, cfg);
        publisher.start(stream.clone())?;
        self.timeline.at = (stream.elapsed().as_secs_f64() * 90_000.0) as i64;
        self.stream = Some((stream, index));
        Ok(())
    }

    /// An MPEG-TS segment's frames; the stream starts with its tracks.
    fn ts_frames(
        &mut self,
        data: &[u8],
        publisher: &Publisher,
        cfg: StreamConfig,
    ) -> Result<Vec<Frame>, SourceError> {
        let mut pes = Vec::new();
        self.demux
            .push(data, &mut pes)
            .map_err(|e| SourceError::Hls(e.to_string()))?;
        self.demux.flush(&mut pes);
        if self.stream.is_none() {
            let Some((tracks, index)) = segment::ts_tracks(&pes) else {
                return Ok(Vec::new());
            };
            let index = index.into_iter().map(|(k, v)| (u32::from(k), v)).collect();
            self.start(tracks, index, publisher, cfg)?;
        }
        let timeline = &mut self.timeline;
        Ok(segment::ts_frames(pes, |pid, t| timeline.unwrap(pid, t)))
    }

    /// An fMP4 segment's frames, described by the init section.
    fn fmp4_frames(
        &mut self,
        data: &Bytes,
        publisher: &Publisher,
        cfg: StreamConfig,
    ) -> Result<Vec<Frame>, SourceError> {
        let Some(init_tracks) = self.init.as_ref().map(|i| i.tracks.clone()) else {
            return Ok(Vec::new());
        };
        if self.stream.is_none() {
            let tracks = init_tracks.iter().map(|t| rtp_clock(&t.track)).collect();
            let index = init_tracks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id, i))
                .collect();
            self.start(tracks, index, publisher, cfg)?;
        }
        segment::fmp4_frames(&init_tracks, data)
            .map_err(|e| SourceError::Hls(format!("fMP4 segment: {e}")))
    }

    /// A segment's units, written into the stream at the pace their timestamps say.
    pub async fn segment(
        &mut self,
        data: &Bytes,
        publisher: &Publisher,
        cfg: StreamConfig,
        stop: &CancellationToken,
    ) -> Result<(), SourceError> {
        let frames = if self.init.is_some() {
            self.fmp4_frames(data, publisher, cfg)?
        } else {
            self.ts_frames(data, publisher, cfg)?
        };
        let Some((stream, index)) = self.stream.clone() else {
            return Ok(());
        };
        let tracks = stream.tracks();
        if self.lead && self.clock.is_none() {
            let dts = frames.iter().map(|f| f.dts);
            if let (Some(a), Some(b)) = (dts.clone().min(), dts.max()) {
                // 90 kHz → µs; the span of a real segment, a few seconds at most.
                let span = Duration::from_micros(((b - a).clamp(0, 30 * 90_000) as u64) * 100 / 9);
                if let Some(first) = frames.first() {
                    let t = self.timeline.map(first.dts);
                    self.clock = Some((Instant::now() + span, t));
                }
            }
        }
        for f in frames {
            let Some(&track) = index.get(&f.key) else {
                continue;
            };
            let t = self.timeline.map(f.dts);
            if stop.is_cancelled() || publisher.cancelled().is_cancelled() {
                return Ok(());
            }
            self.pace(t).await;
            let clock = i64::from(tracks[track].clock_rate.max(1));
            f.into_units(track, t, clock, |u| stream.write(u));
        }
        Ok(())
    }

    /// Waits until stream time `t` (90 kHz) is due on the wall clock.
    async fn pace(&mut self, t: i64) {
        let (wall, from) = *self.clock.get_or_insert((Instant::now(), t));
        let ahead = t - from;
        if ahead <= 0 {
            return;
        }
        let due = wall + Duration::from_micros((ahead as u64).saturating_mul(100) / 9);
        // Far behind (a stall): don't try to catch up in a burst later; re-anchor.
        if Instant::now() > due + Duration::from_secs(2) {
            self.clock = Some((Instant::now(), t));
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// A track on the clock its RTP form uses (90 kHz video, the sample rate for AAC,
/// 48 kHz Opus), whatever timescale the fMP4 init section chose (ffmpeg's HLS muxer
/// takes 15360 for video): frames are rescaled to it as they become units.
fn rtp_clock(track: &Track) -> Track {
    use crate::core::Codec;
    let clock = match &track.codec {
        Codec::H264 { .. } | Codec::H265 { .. } => 90_000,
        Codec::Aac { sample_rate, .. } => *sample_rate,
        Codec::Opus { .. } => 48_000,
        _ => track.clock_rate,
    };
    let mut t = track.clone();
    t.clock_rate = clock.max(1);
    t
}
