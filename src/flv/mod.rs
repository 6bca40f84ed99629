//! HTTP-FLV readers: `GET /<path>.flv` streams an FLV file that starts with the
//! sequence headers and the latest keyframe, then follows the live stream. Tags are
//! built once per unit (see `UnitEntry::flv_tag`) and shared by every reader.

use crate::core::{ReadEnd, Reader, StreamItem, StreamReader};
use crate::format::flv::mux;
use crate::http::HttpCtx;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(
    ctx: Arc<HttpCtx>,
    peer: SocketAddr,
    name: &str,
    origin: Option<HeaderValue>,
) -> Response {
    ctx.manager.demand(name).await;
    let entry = ctx
        .manager
        .sessions()
        .open(crate::core::SessionKind::FlvSession, peer);
    let client = crate::core::Client::new(crate::core::Peer::FlvConn, peer, "").in_session(&entry);
    let reader = match ctx.manager.add_reader(name, client) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(%peer, path = name, "HTTP-FLV read refused: {e}");
            let code = match e {
                crate::core::PathError::TooManyReaders(..) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::NOT_FOUND,
            };
            return (code, format!("{e}\n")).into_response();
        }
    };
    let stream = reader.stream().clone();
    // HTTP has no way to ask what a player decodes: H.265 goes as Enhanced RTMP's hvc1,
    // which flv.js/mpegts.js and FFmpeg 6.1+ read.
    match mux::fit(&stream.tracks(), true) {
        Err(reason) => {
            tracing::warn!(%peer, path = name, "HTTP-FLV read refused: {reason}");
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{reason}\n")).into_response();
        }
        Ok(skipped) if !skipped.is_empty() => {
            let skipped = skipped.join(", ");
            tracing::warn!(%peer, path = name, "HTTP-FLV reader gets no {skipped}: FLV can't carry it");
        }
        Ok(_) => {}
    }
    let Some(sub) = stream.subscribe() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tracing::info!(%peer, path = name, "HTTP-FLV reader started");
    let bytes = entry
        .bytes_out
        .with_path(reader.path().bytes_sent_counter());
    entry.update(|d| {
        d.state = crate::core::SessionState::Read;
        d.path = name.to_string();
    });
    // The body pulls from the stream itself, in hyper's connection task: no task or
    // queue in between. A client that stops reading blocks hyper's writes, and the
    // listener's write timeout closes the connection (see `http::conn`).
    let session = Session {
        sub,
        _slot: reader,
        shutdown: ctx.shutdown.clone(),
        peer,
        path: name.to_string(),
        started: false,
        bytes,
        end: None,
        entry,
    };
    let body = Body::from_stream(futures_util::stream::unfold(session, |mut s| async move {
        let b = s.next_batch().await?;
        Some((b, s))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}

/// One HTTP-FLV reader: its cursor in the stream and what it has sent. Dropping it
/// (the connection closed) releases the reader slot and logs the end.
struct Session {
    sub: StreamReader,
    _slot: Reader,
    shutdown: CancellationToken,
    peer: SocketAddr,
    path: String,
    started: bool,
    bytes: crate::core::ByteCounter,
    /// This reader in the API's `flvsessions`; a kick ends the body.
    entry: crate::core::SessionGuard,
    /// Why the body ended, once it has; unset when hyper drops it (client gone).
    end: Option<Result<&'static str, String>>,
}

/// Most stream items put into one body chunk.
const BATCH: usize = 64;

impl Session {
    /// The next body chunk: every tag the stream has ready, concatenated (one chunk
    /// header and one write for several tags). `None` ends the body cleanly; an error
    /// makes hyper abort the connection.
    async fn next_batch(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.end.is_some() {
            return None;
        }
        let first = tokio::select! {
            _ = self.shutdown.cancelled() => {
                self.end = Some(Ok("server shutting down"));
                return None;
            }
            _ = self.entry.kicked().cancelled() => {
                self.end = Some(Ok("kicked through the API"));
                return None;
            }
            item = self.sub.next() => item,
        };
        let mut tags: Vec<Bytes> = Vec::new();
        let mut item = first;
        let mut end = None;
        for _ in 0..BATCH {
            match item {
                Ok(StreamItem::Unit(entry)) => {
                    if !self.started {
                        self.started = true;
                        // Parameter sets learnt in-band are known by the first unit.
                        let tracks = &entry.tracks;
                        let mut head = mux::file_start(tracks);
                        head.extend(mux::sequence_tags(
                            tracks,
                            mux::to_ms(entry.unit.dts, entry.track().clock_rate),
                        ));
                        tags.push(Bytes::from(head));
                    }
                    if let Some(tag) = entry.flv_tag() {
                        tags.push(tag.clone());
                    }
                }
                Ok(StreamItem::Rtcp { .. }) => {}
                Err(e) => {
                    end = Some(e);
                    break;
                }
            }
            item = match self.sub.try_next() {
                Ok(Some(it)) => Ok(it),
                Ok(None) => break,
                Err(e) => Err(e),
            };
        }
        if let Some(e) = end {
            self.end = Some(match e {
                ReadEnd::Closed => Ok("stream ended"),
                ReadEnd::TooSlow => Err("too slow: kept falling behind the stream".into()),
            });
            if tags.is_empty() || matches!(self.end, Some(Err(_))) {
                return match &self.end {
                    Some(Err(r)) => Some(Err(std::io::Error::other(r.clone()))),
                    _ => None,
                };
            }
        }
        let b = match tags.len() {
            1 => tags.pop()?,
            _ => Bytes::from(tags.concat()),
        };
        self.bytes.add(b.len() as u64);
        Some(Ok(b))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (peer, path, bytes) = (self.peer, &self.path, self.bytes.get());
        match &self.end {
            None => {
                tracing::info!(%peer, %path, bytes_out = bytes, "HTTP-FLV reader closed: closed by client")
            }
            Some(Ok(r)) => {
                tracing::info!(%peer, %path, bytes_out = bytes, "HTTP-FLV reader closed: {r}")
            }
            Some(Err(r)) => {
                tracing::warn!(%peer, %path, bytes_out = bytes, "closing HTTP-FLV reader: {r}")
            }
        }
    }
}
