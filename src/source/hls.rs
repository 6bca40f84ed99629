//! An HLS source: follows a live media playlist (the highest-bandwidth variant of a
//! multivariant one), fetches MPEG-TS or fMP4 segments, demuxes them into units and
//! writes them in real time, as the segments' timestamps say. Discontinuities and playlist
//! resets restart the timeline where it stood.

use super::reach::{self, Reach};
use super::{Pull, SourceError};
use crate::core::{Publisher, Stream, StreamConfig, Track};
use crate::format::fmp4;
use crate::format::mpegts::demux::TsDemuxer;
use crate::format::segment::{self, Frame, Timeline};
use crate::http::client::{self as http, HttpConn};
use crate::tls::Fingerprint;
use anyhow::Context;
use bytes::Bytes;
use hyper::Uri;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn err(e: anyhow::Error) -> SourceError {
    SourceError::Hls(format!("{e:#}"))
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
            let tracks = init_tracks.iter().map(|t| t.track.clone()).collect();
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

/// Pulls the HLS playlist at `url` into `publisher`'s path.
pub(crate) async fn pull(p: Pull<'_>) -> Result<(), SourceError> {
    let Pull {
        url,
        conf,
        publisher,
        stream_cfg: cfg,
        read_timeout,
        limits: _,
        stop,
    } = p;
    let mut uri: Uri = http::parse(url).map_err(err)?;
    let mut conn = Conn::new(&uri, conf.source_fingerprint);
    let mut feed = Feed {
        demux: TsDemuxer::default(),
        init: None,
        stream: None,
        timeline: Timeline::default(),
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
    /// The configured URL's scheme and authority, and how internal its server's
    /// address is: URIs elsewhere may go no further in (`source::reach`).
    origin: (bool, String),
    origin_reach: Option<Reach>,
}

impl Conn {
    fn new(configured: &Uri, fingerprint: Option<Fingerprint>) -> Conn {
        Conn {
            http: None,
            fingerprint,
            origin: key(configured),
            origin_reach: None,
        }
    }
}

fn key(uri: &Uri) -> (bool, String) {
    (
        uri.scheme_str() == Some("https"),
        uri.authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
    )
}

/// GET with a bound, over a kept-alive connection that is reopened when it fails or
/// when `uri` is on another server (segments on a CDN).
async fn fetch(conn: &mut Conn, uri: &Uri, limit: Duration) -> Result<Bytes, SourceError> {
    let fingerprint = conn.fingerprint;
    let own = key(uri) == conn.origin;
    let origin_reach = conn.origin_reach;
    let (http, reach_slot) = (&mut conn.http, &mut conn.origin_reach);
    let conn = http;
    let work = async {
        if !conn.as_ref().is_some_and(|c| c.serves(uri)) {
            let opened = if own {
                let c = HttpConn::open_pinned(uri, fingerprint).await?;
                *reach_slot = Some(reach::reach(c.peer.ip()));
                c
            } else {
                // The configured URL is always fetched first, so its reach is known.
                let origin = origin_reach.unwrap_or(Reach::Public);
                let allow = move |ip| reach::may_follow(origin, reach::reach(ip));
                HttpConn::open_allowed(uri, fingerprint, &allow)
                    .await
                    .with_context(|| {
                        format!("a playlist may not send the source further inside the network than its own server ({origin:?}), nor to link-local addresses")
                    })?
            };
            *conn = Some(opened);
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
