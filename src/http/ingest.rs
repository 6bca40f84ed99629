//! HLS push ingest: a publisher sends a live HLS stream with PUT or POST, as ffmpeg's
//! HLS muxer does with `-method PUT` — segments (MPEG-TS, or fMP4 after its init
//! section) become the path's stream in real time, a playlist with `#EXT-X-ENDLIST`
//! ends it, and DELETEs of old segments are acknowledged. Nothing is stored: readers
//! get the path's own HLS muxer, like any other stream's.

use super::HttpCtx;
use crate::core::{Client, Peer, Publisher};
use crate::source::segments::{Feed, Init};
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Largest segment or init section taken: 10 s of 4K at 20 Mbit/s fits.
pub const MAX_SEGMENT: usize = 32 << 20;
/// Segment bodies read at once, over every path: with `MAX_SEGMENT`, what pushers can
/// make the server hold in memory before it plays anything.
const UPLOADS: usize = 8;
/// Largest playlist taken.
const MAX_PLAYLIST: usize = 1 << 20;
/// Segments queued for a path while the one before plays out.
const QUEUE: usize = 4;
/// How long segments sent beside the ending playlist are waited for.
const ENDING: Duration = Duration::from_secs(1);
/// A pusher quiet for longer than this (and `readTimeout`) has left.
const MIN_IDLE: Duration = Duration::from_secs(5);

/// What a pusher sent that the path's ingest plays.
enum Item {
    Init(Bytes),
    /// An MPEG-TS segment.
    Segment(Bytes),
    /// An fMP4 fragment, read with the last init section.
    Fragment(Bytes),
    End,
}

/// fMP4 fragments held while their init section is on its way (both are sent at
/// once, on two connections).
const HELD: usize = 4;

/// The running ingests, by path.
#[derive(Default)]
pub(crate) struct Ingests(Mutex<HashMap<String, (u64, mpsc::Sender<Item>)>>);

impl Ingests {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, mpsc::Sender<Item>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a PUT or POST body is, by its first bytes (file names are the pusher's).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Playlist,
    Ts,
    Fmp4Init,
    Fmp4Segment,
}

fn kind(file: &str, body: &[u8]) -> Option<Kind> {
    if file.ends_with(".m3u8") || body.starts_with(b"#EXTM3U") {
        return Some(Kind::Playlist);
    }
    if body.first() == Some(&0x47) && body.len().is_multiple_of(188) {
        return Some(Kind::Ts);
    }
    match body.get(4..8)? {
        b"ftyp" | b"moov" => Some(Kind::Fmp4Init),
        b"styp" | b"moof" | b"sidx" | b"prft" => Some(Kind::Fmp4Segment),
        _ => None,
    }
}

/// `PUT`/`POST` of `file` under path `name`, from a client allowed to publish there.
pub(crate) async fn put(
    ctx: &Arc<HttpCtx>,
    peer: SocketAddr,
    name: &str,
    file: &str,
    query: &str,
    body: Body,
) -> Response {
    let limit = match file.ends_with(".m3u8") {
        true => MAX_PLAYLIST,
        false => MAX_SEGMENT,
    };
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(UPLOADS);
    let wait = ctx.manager.config().read_timeout.0;
    let Ok(Ok(_slot)) = tokio::time::timeout(wait, SLOTS.acquire()).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many uploads at once\n",
        )
            .into_response();
    };
    let data = match axum::body::to_bytes(body, limit).await {
        Ok(d) => d,
        Err(_) => {
            tracing::warn!(%peer, path = name, file, "HLS push refused: body larger than {limit} bytes");
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("larger than {limit} bytes\n"),
            )
                .into_response();
        }
    };
    tracing::debug!(%peer, path = name, file, bytes = data.len(), "HLS push");
    let item = match kind(file, &data) {
        Some(Kind::Playlist) => {
            let ended = matches!(
                m3u8_rs::parse_media_playlist_res(&data),
                Ok(p) if p.end_list
            );
            if !ended {
                return StatusCode::CREATED.into_response();
            }
            Item::End
        }
        Some(Kind::Ts) => Item::Segment(data),
        Some(Kind::Fmp4Segment) => Item::Fragment(data),
        Some(Kind::Fmp4Init) => Item::Init(data),
        None => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not a playlist, an MPEG-TS segment or an fMP4 init section or fragment\n",
            )
                .into_response()
        }
    };
    let end = matches!(item, Item::End);
    // The queue of the running ingest, or a new one (its first segment makes the path
    // ready); a queue whose ingest ended (kicked, replaced) is started again once.
    let mut item = Some(item);
    for _ in 0..2 {
        let tx = ctx.ingests.lock().get(name).map(|(_, tx)| tx.clone());
        let tx = match tx {
            Some(tx) => tx,
            None if end => return StatusCode::CREATED.into_response(),
            None => match start(ctx, peer, name, query) {
                Ok(tx) => tx,
                Err(e) => return (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
            },
        };
        let Some(it) = item.take() else {
            break;
        };
        match tx.send(it).await {
            Ok(()) => return StatusCode::CREATED.into_response(),
            Err(mpsc::error::SendError(it)) => {
                ctx.ingests.lock().remove(name);
                item = Some(it);
            }
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, "the path's ingest ended\n").into_response()
}

/// `DELETE` of an old segment: nothing is kept, so there is nothing to remove.
pub(crate) fn delete() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn start(
    ctx: &Arc<HttpCtx>,
    peer: SocketAddr,
    name: &str,
    query: &str,
) -> Result<mpsc::Sender<Item>, crate::core::PathError> {
    let client = Client::new(Peer::HlsPublisher, peer, query);
    let publisher = ctx.manager.add_publisher(name, client).inspect_err(|e| {
        tracing::info!(%peer, path = name, "HLS push refused: {e}");
    })?;
    let (tx, rx) = mpsc::channel(QUEUE);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.ingests
        .lock()
        .insert(name.to_string(), (id, tx.clone()));
    let config = ctx.manager.config();
    let idle = config.read_timeout.0.max(MIN_IDLE);
    let cfg = ctx.manager.stream_config();
    let (ctx2, name2) = (ctx.clone(), name.to_string());
    let stop = ctx.shutdown.clone();
    tracing::info!(%peer, path = name, "HLS push started");
    tokio::spawn(async move {
        let why = run(publisher, rx, cfg, idle, &stop).await;
        let mut map = ctx2.ingests.lock();
        if map.get(&name2).is_some_and(|(i, _)| *i == id) {
            map.remove(&name2);
        }
        drop(map);
        tracing::info!(%peer, path = %name2, "HLS push ended: {why}");
    });
    Ok(tx)
}

async fn run(
    publisher: Publisher,
    mut rx: mpsc::Receiver<Item>,
    cfg: crate::core::StreamConfig,
    idle: Duration,
    stop: &CancellationToken,
) -> String {
    let mut feed = Feed::default();
    feed.lead = true;
    let mut ending = false;
    let mut held: Vec<Bytes> = Vec::new();
    loop {
        // After the last playlist, what was sent beside it (ffmpeg PUTs the last segment
        // and the playlist at once, on two connections) still plays.
        let wait = if ending { ENDING } else { idle };
        let item = tokio::select! {
            _ = stop.cancelled() => return "the server is stopping".into(),
            _ = publisher.cancelled().cancelled() => return publisher.cancelled().reason().into(),
            r = tokio::time::timeout(wait, rx.recv()) => r,
        };
        let item = match item {
            Err(_) if ending => return "the playlist ended (EXT-X-ENDLIST)".into(),
            Err(_) => return format!("nothing pushed for {idle:?}"),
            Ok(None) => return "closed".into(),
            Ok(Some(i)) => i,
        };
        match item {
            Item::End => ending = true,
            Item::Init(data) => {
                let tracks = match crate::format::fmp4::demux::parse_init(&data) {
                    Ok(t) => t,
                    Err(e) => return format!("bad fMP4 init section: {e}"),
                };
                if feed.init.is_some() {
                    // New tracks: a new stream, as a new publisher would make.
                    feed.stream = None;
                    feed.timeline.restart();
                }
                feed.init = Some(Init {
                    uri: String::new(),
                    tracks,
                });
                for data in std::mem::take(&mut held) {
                    if let Err(e) = feed.segment(&data, &publisher, cfg, stop).await {
                        return format!("bad fMP4 fragment: {e}");
                    }
                }
            }
            Item::Fragment(data) if feed.init.is_none() => {
                if held.len() == HELD {
                    return "fMP4 fragments without an init section".into();
                }
                held.push(data);
            }
            Item::Fragment(data) => {
                if let Err(e) = feed.segment(&data, &publisher, cfg, stop).await {
                    return format!("bad fMP4 fragment: {e}");
                }
            }
            Item::Segment(data) => {
                if feed.init.take().is_some() {
                    // From fMP4 to MPEG-TS: a new stream.
                    feed.stream = None;
                    feed.timeline.restart();
                }
                if let Err(e) = feed.segment(&data, &publisher, cfg, stop).await {
                    return format!("bad segment: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_told_apart_by_their_bytes() {
        let ts = [0x47u8; 188 * 2];
        assert_eq!(kind("index3.ts", &ts), Some(Kind::Ts));
        assert_eq!(kind("index.m3u8", b"#EXTM3U\n"), Some(Kind::Playlist));
        assert_eq!(kind("x", b"#EXTM3U\n"), Some(Kind::Playlist));
        assert_eq!(
            kind("init.mp4", b"\0\0\0\x18ftypiso5"),
            Some(Kind::Fmp4Init)
        );
        assert_eq!(
            kind("index1.m4s", b"\0\0\0\x18stypmsdh"),
            Some(Kind::Fmp4Segment)
        );
        assert_eq!(
            kind("index1.m4s", b"\0\0\0\x18moofxxxx"),
            Some(Kind::Fmp4Segment)
        );
        assert_eq!(kind("a.ts", &[0x47; 100]), None, "not whole TS packets");
        assert_eq!(kind("a.bin", b"hello world"), None);
        assert_eq!(kind("a.bin", b""), None);
    }
}
