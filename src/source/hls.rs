//! An HLS source: follows a live media playlist (the highest-bandwidth variant of a
//! multivariant one), fetches MPEG-TS or fMP4 segments, demuxes them into units and
//! writes them in real time, as the segments' timestamps say. Discontinuities and playlist
//! resets restart the timeline where it stood.

use super::{Pull, SourceError};
use crate::codec::{h264, h265};
use crate::core::{Codec, Payload, Publisher, Stream, StreamConfig, Track, Unit};
use crate::format::fmp4;
use crate::format::mpegts::demux::{next_adts, split_annexb, EsKind, Pes, TsDemuxer};
use crate::http::client::{self as http, HttpConn};
use crate::tls::Fingerprint;
use bytes::Bytes;
use hyper::Uri;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TS_WRAP: i64 = 1 << 33;
/// A jump larger than this between consecutive timestamps is a discontinuity.
const MAX_JUMP: i64 = 10 * 90_000;

fn err(e: anyhow::Error) -> SourceError {
    SourceError::Hls(format!("{e:#}"))
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
fn tracks_of(pes: &[Pes]) -> Option<(Vec<Track>, HashMap<u16, usize>)> {
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

/// 90 kHz timestamps → the stream timeline, across 33-bit wraps and discontinuities.
struct Timeline {
    /// (last unwrapped dts, wraps) per PID.
    last: HashMap<u16, i64>,
    /// Unwrapped 90 kHz time that maps to `at`.
    base: Option<i64>,
    at: i64,
    /// Latest stream time written, 90 kHz.
    newest: i64,
}

impl Timeline {
    fn unwrap(&mut self, pid: u16, ts: u64) -> i64 {
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
    fn map(&mut self, t: i64) -> i64 {
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
    fn restart(&mut self) {
        self.base = None;
        self.at = self.newest + 3000;
        self.last.clear();
    }
}

/// A frame out of a segment, whichever container it came in.
struct Frame {
    /// PID (MPEG-TS) or track id (fMP4).
    key: u32,
    /// 90 kHz decode time, unwrapped.
    dts: i64,
    cts: i64,
    media: FrameMedia,
}

enum FrameMedia {
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
fn split_lengths(data: &Bytes, size: u8) -> Vec<Bytes> {
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

fn to_90k(t: u64, clock: u32) -> i64 {
    (u128::from(t) * 90_000 / u128::from(clock.max(1))).min(i64::MAX as u128) as i64
}

/// What an fMP4 init section said: tracks by id.
struct Init {
    uri: String,
    tracks: Vec<fmp4::demux::InitTrack>,
}

struct Feed {
    demux: TsDemuxer,
    init: Option<Init>,
    stream: Option<(Arc<Stream>, HashMap<u32, usize>)>,
    timeline: Timeline,
    /// Wall clock at stream time `paced_from`.
    clock: Option<(Instant, i64)>,
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
            let Some((tracks, index)) = tracks_of(&pes) else {
                return Ok(Vec::new());
            };
            let index = index.into_iter().map(|(k, v)| (u32::from(k), v)).collect();
            self.start(tracks, index, publisher, cfg)?;
        }
        let mut frames = Vec::with_capacity(pes.len());
        for p in pes {
            let (Some(pts), Some(dts)) = (p.pts, p.dts) else {
                continue;
            };
            let dts_u = self.timeline.unwrap(p.pid, dts);
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
        Ok(frames)
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
            let tracks = init_tracks.iter().map(|t| t.track.clone()).collect();
            let index = init_tracks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id, i))
                .collect();
            self.start(tracks, index, publisher, cfg)?;
        }
        let by_id: HashMap<u32, &fmp4::demux::InitTrack> =
            init_tracks.iter().map(|t| (t.id, t)).collect();
        let mut samples = Vec::new();
        fmp4::demux::parse_fragments(data, &mut samples)
            .map_err(|e| SourceError::Hls(format!("fMP4 segment: {e}")))?;
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

    /// A segment's units, written into the stream at the pace their timestamps say.
    async fn segment(
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
            match f.media {
                FrameMedia::Video { nalus, h265 } => {
                    let nalus: Vec<Bytes> = nalus
                        .into_iter()
                        .filter(|n| match h265 {
                            false => h264::nal_type(n) != h264::NAL_AUD,
                            true => h265::nal_type(n) != h265::NAL_AUD,
                        })
                        .collect();
                    if nalus.is_empty() {
                        continue;
                    }
                    let keyframe = match h265 {
                        false => h264::is_keyframe(&nalus),
                        true => h265::is_keyframe(&nalus),
                    };
                    stream.write(Unit {
                        track,
                        pts: t + f.cts,
                        dts: t,
                        keyframe,
                        payload: Payload::Nalus(nalus),
                    });
                }
                FrameMedia::Adts(data) => {
                    let mut pos = 0;
                    let mut at = t * clock / 90_000;
                    while let Some((_, _, _, au)) = next_adts(&data, &mut pos) {
                        stream.write(audio_unit(track, at, au));
                        at += 1024;
                    }
                }
                FrameMedia::Audio(au) => stream.write(audio_unit(track, t * clock / 90_000, au)),
            }
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

/// Pulls the HLS playlist at `url` into `publisher`'s path.
pub(crate) async fn pull(p: Pull<'_>) -> Result<(), SourceError> {
    let Pull {
        url,
        conf,
        publisher,
        stream_cfg: cfg,
        read_timeout,
        stop,
    } = p;
    let mut uri: Uri = http::parse(url).map_err(err)?;
    let mut conn = Conn {
        http: None,
        fingerprint: conf.source_fingerprint,
    };
    let mut feed = Feed {
        demux: TsDemuxer::default(),
        init: None,
        stream: None,
        timeline: Timeline {
            last: HashMap::new(),
            base: None,
            at: 0,
            newest: 0,
        },
        clock: None,
    };
    let mut next: Option<u64> = None;
    let mut last_new = Instant::now();
    loop {
        if stop.is_cancelled() || publisher.cancelled().is_cancelled() {
            return Ok(());
        }
        let text = fetch(&mut conn, &uri, read_timeout).await?;
        let media = match m3u8_rs::parse_playlist_res(&text) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => {
                let best = m
                    .variants
                    .iter()
                    .filter(|v| !v.is_i_frame)
                    .max_by_key(|v| v.bandwidth)
                    .ok_or_else(|| {
                        SourceError::Hls("multivariant playlist without variants".into())
                    })?;
                uri = http::resolve(&uri, &best.uri).map_err(err)?;
                continue;
            }
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
            Err(_) => return Err(SourceError::Hls("the playlist does not parse".into())),
        };
        let first = media.media_sequence;
        let end = first + media.segments.len() as u64;
        let start = *next.get_or_insert(end.saturating_sub(2).max(first));
        // Fell out of the window, or the playlist restarted: go on from its live edge.
        let start = if start < first || start > end {
            feed.timeline.restart();
            end.saturating_sub(2).max(first)
        } else {
            start
        };
        let mut got = false;
        for (i, seg) in media.segments.iter().enumerate() {
            let seq = first + i as u64;
            if seq < start {
                continue;
            }
            if let Some(map) = &seg.map {
                if feed.init.as_ref().is_none_or(|i| i.uri != map.uri) {
                    let init_uri = http::resolve(&uri, &map.uri).map_err(err)?;
                    let data = fetch(&mut conn, &init_uri, read_timeout).await?;
                    let tracks = fmp4::demux::parse_init(&data)
                        .map_err(|e| SourceError::Hls(format!("fMP4 init section: {e}")))?;
                    if feed.init.is_some() {
                        // New tracks: a new stream, as a new publisher would make.
                        feed.stream = None;
                        feed.timeline.restart();
                    }
                    feed.init = Some(Init {
                        uri: map.uri.clone(),
                        tracks,
                    });
                }
            }
            let seg_uri = http::resolve(&uri, &seg.uri).map_err(err)?;
            let data = fetch(&mut conn, &seg_uri, read_timeout).await?;
            if seg.discontinuity {
                feed.timeline.restart();
                feed.demux = TsDemuxer::default();
            }
            feed.segment(&data, publisher, cfg, stop).await?;
            next = Some(seq + 1);
            got = true;
        }
        if got {
            last_new = Instant::now();
        } else if media.end_list {
            return Err(SourceError::Ended);
        } else if last_new.elapsed()
            > read_timeout.max(Duration::from_secs_f32(media.target_duration as f32 * 3.0))
        {
            return Err(SourceError::Timeout(read_timeout));
        }
        if !got {
            let wait = Duration::from_secs_f32((media.target_duration as f32 / 2.0).max(0.2));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The kept-alive connection of a source, and how it checks a TLS server.
struct Conn {
    http: Option<HttpConn>,
    fingerprint: Option<Fingerprint>,
}

/// GET with a bound, over a kept-alive connection that is reopened when it fails or
/// when `uri` is on another server (segments on a CDN).
async fn fetch(conn: &mut Conn, uri: &Uri, limit: Duration) -> Result<Bytes, SourceError> {
    let fingerprint = conn.fingerprint;
    let conn = &mut conn.http;
    let work = async {
        if !conn.as_ref().is_some_and(|c| c.serves(uri)) {
            *conn = Some(HttpConn::open_pinned(uri, fingerprint).await?);
        }
        let c = conn
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no connection"))?;
        match c.get_body(uri).await {
            Ok(b) => Ok(b),
            Err(e) => {
                *conn = None;
                Err(e)
            }
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r.map_err(err),
        Err(_) => {
            *conn = None;
            Err(SourceError::NoAnswer(limit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_unwrap_and_rebase_on_jumps() {
        let mut t = Timeline {
            last: HashMap::new(),
            base: None,
            at: 90_000,
            newest: 0,
        };
        let a = t.unwrap(1, (TS_WRAP - 3000) as u64);
        assert_eq!(t.map(a), 90_000);
        let b = t.unwrap(1, 0); // wrapped
        assert_eq!(t.map(b), 93_000);
        // A 1-hour jump (a new encoder): continues right after.
        let c = t.unwrap(1, 90_000 * 3600);
        assert_eq!(t.map(c), 96_000);
        assert_eq!(asc(1, 3, 2)[..], [0x11, 0x90]);
    }
}
