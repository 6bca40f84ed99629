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

/// The running ingests of one HTTP listener.
pub(crate) struct Ingests {
    queues: Mutex<Queues>,
    /// Each path's last init section, kept past its ingest: ffmpeg sends it once, and
    /// the fragments that follow a restarted ingest (after a stall or a kick) need it.
    inits: Mutex<HashMap<String, Bytes>>,
    uploads: tokio::sync::Semaphore,
}

/// Each running ingest's id and queue, by path.
type Queues = HashMap<String, (u64, mpsc::Sender<Item>)>;

impl Default for Ingests {
    fn default() -> Self {
        Ingests {
            queues: Mutex::default(),
            inits: Mutex::default(),
            uploads: tokio::sync::Semaphore::new(UPLOADS),
        }
    }
}

impl Ingests {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inits(&self) -> MutexGuard<'_, HashMap<String, Bytes>> {
        self.inits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets `name`'s ingest `id` (and not one started since).
    fn remove(&self, name: &str, id: u64) {
        let mut queues = self.lock();
        if queues.get(name).is_some_and(|(i, _)| *i == id) {
            queues.remove(name);
        }
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
    let wait = ctx.manager.config().read_timeout.0;
    let Ok(Ok(_slot)) = tokio::time::timeout(wait, ctx.ingests.uploads.acquire()).await else {
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
        // Looked up and started under one lock: ffmpeg sends the init section and the
        // first fragment at once, and the one that lost a race to start the path would
        // be refused as a second publisher.
        let (id, tx) = {
            let mut ingests = ctx.ingests.lock();
            match ingests.get(name) {
                Some((id, tx)) => (*id, tx.clone()),
                None if end => return StatusCode::CREATED.into_response(),
                None => match start(ctx, &mut ingests, peer, name, query) {
                    Ok(tx) => tx,
                    Err(e) => return (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
                },
            }
        };
        let Some(it) = item.take() else {
            break;
        };
        match tx.send(it).await {
            Ok(()) => return StatusCode::CREATED.into_response(),
            Err(mpsc::error::SendError(it)) => {
                ctx.ingests.remove(name, id);
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
    ingests: &mut Queues,
    peer: SocketAddr,
    name: &str,
    query: &str,
) -> Result<(u64, mpsc::Sender<Item>), crate::core::PathError> {
    let client = Client::new(Peer::HlsPublisher, peer, query);
    let publisher = ctx.manager.add_publisher(name, client).inspect_err(|e| {
        tracing::info!(%peer, path = name, "HLS push refused: {e}");
    })?;
    let (tx, rx) = mpsc::channel(QUEUE);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ingests.insert(name.to_string(), (id, tx.clone()));
    let config = ctx.manager.config();
    let idle = config.read_timeout.0.max(MIN_IDLE);
    let cfg = ctx.manager.stream_config();
    let (ctx, name) = (ctx.clone(), name.to_string());
    tracing::info!(%peer, path = name, "HLS push started");
    tokio::spawn(async move {
        let why = run(&ctx, &name, publisher, rx, cfg, idle).await;
        ctx.ingests.remove(&name, id);
        tracing::info!(%peer, path = %name, "HLS push ended: {why}");
    });
    Ok((id, tx))
}

async fn run(
    ctx: &HttpCtx,
    name: &str,
    publisher: Publisher,
    mut rx: mpsc::Receiver<Item>,
    cfg: crate::core::StreamConfig,
    idle: Duration,
) -> String {
    let stop = &ctx.shutdown;
    let mut feed = Feed::default();
    feed.lead = true;
    let mut ending = false;
    let mut held: Vec<Bytes> = Vec::new();
    // The init section fragments are read with, as sent.
    let mut current: Option<Bytes> = None;
    // The path's last ingest's init section: a pusher that was cut off (a stall, a kick)
    // goes on with fragments only, while a new pusher's own init section comes with
    // its first fragment.
    let mut kept = ctx.ingests.inits().get(name).cloned();
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
            Item::End => {
                ending = true;
                ctx.ingests.inits().remove(name);
            }
            Item::Init(data) if current.as_ref() == Some(&data) => {}
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
                ctx.ingests.inits().insert(name.to_string(), data.clone());
                current = Some(data);
                if let Err(e) = play(&mut feed, &mut held, &publisher, cfg, stop).await {
                    return e;
                }
            }
            Item::Fragment(data) if feed.init.is_none() => {
                if held.len() == HELD {
                    return "fMP4 fragments without an init section".into();
                }
                held.push(data);
                // A second fragment and still no init section: the pusher goes on from
                // before, with the one it sent then.
                let Some(init) = kept.take_if(|_| held.len() > 1) else {
                    continue;
                };
                if let Ok(tracks) = crate::format::fmp4::demux::parse_init(&init) {
                    feed.init = Some(Init {
                        uri: String::new(),
                        tracks,
                    });
                    current = Some(init);
                    if let Err(e) = play(&mut feed, &mut held, &publisher, cfg, stop).await {
                        return e;
                    }
                }
            }
            Item::Fragment(data) => {
                if let Err(e) = feed.segment(&data, &publisher, cfg, stop).await {
                    return format!("bad fMP4 fragment: {e}");
                }
            }
            Item::Segment(data) => {
                current = None;
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

/// Plays the fragments held while their init section was awaited.
async fn play(
    feed: &mut Feed,
    held: &mut Vec<Bytes>,
    publisher: &Publisher,
    cfg: crate::core::StreamConfig,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    for data in std::mem::take(held) {
        feed.segment(&data, publisher, cfg, stop)
            .await
            .map_err(|e| format!("bad fMP4 fragment: {e}"))?;
    }
    Ok(())
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
