//! HTTP-FLV readers: `GET /<path>.flv` streams an FLV file that starts with the
//! sequence headers and the latest keyframe, then follows the live stream. Tags are
//! built once per unit (see `UnitEntry::flv_tag`) and shared by every reader.

use crate::core::{ReadEnd, StreamItem, StreamReader};
use crate::format::flv::mux;
use crate::http::HttpCtx;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Batches of tags (about one video frame each) queued towards the HTTP connection.
const QUEUE: usize = 32;

pub(crate) async fn serve(
    ctx: Arc<HttpCtx>,
    peer: SocketAddr,
    name: &str,
    origin: Option<HeaderValue>,
) -> Response {
    let reader = match ctx.manager.add_reader(name) {
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
    if !stream.tracks().iter().any(mux::carries) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no track of this path fits in FLV\n",
        )
            .into_response();
    }
    let Some(mut sub) = stream.subscribe() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (tx, rx) = mpsc::channel::<Vec<Bytes>>(QUEUE);
    let path = name.to_string();
    tracing::info!(%peer, %path, "HTTP-FLV reader started");
    tokio::spawn(async move {
        let _slot = reader;
        let mut out = Out {
            tx,
            ctx: ctx.clone(),
            bytes: 0,
        };
        let reason = pump(&mut out, &mut sub).await;
        match reason {
            End::Normal(r) => {
                tracing::info!(%peer, %path, bytes_out = out.bytes, "HTTP-FLV reader closed: {r}")
            }
            End::Bad(r) => {
                tracing::warn!(%peer, %path, bytes_out = out.bytes, "closing HTTP-FLV reader: {r}")
            }
        }
    });

    // A batch of tags becomes one body chunk: one chunk header and one write for
    // several tags (copying a batch costs less than framing each tag).
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        let tags = rx.recv().await?;
        let b = match tags.len() {
            1 => tags.into_iter().next()?,
            _ => Bytes::from(tags.concat()),
        };
        Some((Ok::<_, std::convert::Infallible>(b), rx))
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

enum End {
    Normal(&'static str),
    Bad(String),
}

/// The queue towards the HTTP body, with the write timeout.
struct Out {
    tx: mpsc::Sender<Vec<Bytes>>,
    ctx: Arc<HttpCtx>,
    bytes: u64,
}

impl Out {
    async fn send(&mut self, b: Vec<Bytes>) -> Result<(), End> {
        let n = b.iter().map(|b| b.len() as u64).sum::<u64>();
        match tokio::time::timeout(self.ctx.write_timeout, self.tx.send(b)).await {
            Ok(Ok(())) => {
                self.bytes += n;
                Ok(())
            }
            Ok(Err(_)) => Err(End::Normal("closed by client")),
            Err(_) => Err(End::Bad(format!(
                "write blocked for {:?} (write timeout): client is not reading",
                self.ctx.write_timeout
            ))),
        }
    }
}

/// Most items sent towards the body at once.
const BATCH: usize = 64;

async fn pump(out: &mut Out, sub: &mut StreamReader) -> End {
    let mut started = false;
    let mut end = None;
    loop {
        let first = tokio::select! {
            _ = out.ctx.shutdown.cancelled() => return End::Normal("server shutting down"),
            _ = out.tx.closed() => return End::Normal("closed by client"),
            item = sub.next() => item,
        };
        // What the stream has ready goes to the connection as one batch of tags.
        let mut tags = Vec::new();
        let mut item = first;
        for _ in 0..BATCH {
            let entry = match item {
                Ok(StreamItem::Unit(e)) => e,
                Ok(StreamItem::Rtcp { .. }) => {
                    item = match sub.try_next() {
                        Ok(Some(it)) => Ok(it),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    continue;
                }
                Err(e) => {
                    end = Some(e);
                    break;
                }
            };
            if !started {
                started = true;
                // Parameter sets learnt in-band are known by the time the first unit is out.
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
            item = match sub.try_next() {
                Ok(Some(it)) => Ok(it),
                Ok(None) => break,
                Err(e) => Err(e),
            };
        }
        if !tags.is_empty() {
            if let Err(e) = out.send(tags).await {
                return e;
            }
        }
        match end {
            None => {}
            Some(ReadEnd::Closed) => return End::Normal("stream ended"),
            Some(ReadEnd::TooSlow) => {
                return End::Bad("too slow: kept falling behind the stream".into())
            }
        }
    }
}
