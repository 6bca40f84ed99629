//! HTTP-FLV readers: `GET /<path>.flv` streams an FLV file that starts with the
//! sequence headers and the latest keyframe, then follows the live stream. Tags are
//! built once per unit (see `UnitEntry::flv_tag`) and shared by every reader.

use crate::core::{ReadEnd, Stream, StreamItem, StreamReader};
use crate::format::flv::mux;
use crate::http::HttpCtx;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Tags queued between the stream and the HTTP connection.
const QUEUE: usize = 64;

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
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let path = name.to_string();
    tracing::info!(%peer, %path, "HTTP-FLV reader started");
    tokio::spawn(async move {
        let _slot = reader;
        let mut out = Out {
            tx,
            ctx: ctx.clone(),
            bytes: 0,
        };
        let reason = pump(&mut out, &stream, &mut sub).await;
        match reason {
            End::Normal(r) => {
                tracing::info!(%peer, %path, bytes_out = out.bytes, "HTTP-FLV reader closed: {r}")
            }
            End::Bad(r) => {
                tracing::warn!(%peer, %path, bytes_out = out.bytes, "closing HTTP-FLV reader: {r}")
            }
        }
    });

    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
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
    tx: mpsc::Sender<Bytes>,
    ctx: Arc<HttpCtx>,
    bytes: u64,
}

impl Out {
    async fn send(&mut self, b: Bytes) -> Result<(), End> {
        let n = b.len() as u64;
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

async fn pump(out: &mut Out, stream: &Arc<Stream>, sub: &mut StreamReader) -> End {
    let mut started = false;
    loop {
        let item = tokio::select! {
            _ = out.ctx.shutdown.cancelled() => return End::Normal("server shutting down"),
            _ = out.tx.closed() => return End::Normal("closed by client"),
            item = sub.next() => item,
        };
        let entry = match item {
            Ok(StreamItem::Unit(e)) => e,
            Ok(StreamItem::Rtcp { .. }) => continue,
            Err(ReadEnd::Closed) => return End::Normal("stream ended"),
            Err(ReadEnd::TooSlow) => {
                return End::Bad("too slow: kept falling behind the stream".into())
            }
        };
        // Parameter sets learnt in-band are known by the time the first unit is out.
        let tracks = stream.tracks();
        let Some(track) = tracks.get(entry.unit.track) else {
            continue;
        };
        if !started {
            started = true;
            let mut head = mux::file_start(&tracks);
            head.extend(mux::sequence_tags(
                &tracks,
                mux::to_ms(entry.unit.dts, track.clock_rate),
            ));
            if let Err(e) = out.send(Bytes::from(head)).await {
                return e;
            }
        }
        if let Some(tag) = entry.flv_tag(track) {
            if let Err(e) = out.send(tag.clone()).await {
                return e;
            }
        }
    }
}
