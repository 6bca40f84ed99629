//! An HLS source: follows a live media playlist (the highest-bandwidth variant of a
//! multivariant one), fetches MPEG-TS or fMP4 segments, demuxes them into units and
//! writes them in real time, as the segments' timestamps say. Discontinuities and playlist
//! resets restart the timeline where it stood.

use super::reach::{self, Reach};
use super::segments::{Feed, Init};
use super::{Pull, SourceError};
use crate::format::fmp4;
use crate::format::mpegts::demux::TsDemuxer;
use crate::http::client::{self as http, HttpConn};
use crate::tls::Fingerprint;
use anyhow::Context;
use bytes::Bytes;
use hyper::Uri;
use std::time::Duration;
use tokio::time::Instant;

fn err(e: anyhow::Error) -> SourceError {
    SourceError::Hls(format!("{e:#}"))
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
    let mut feed = Feed::default();
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
