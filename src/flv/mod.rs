//! HTTP-FLV readers: `GET /<path>.flv` streams an FLV file that starts with the
//! sequence headers and the latest keyframe, then follows the live stream. Tags are
//! built once per unit (`mux::FlvTag`, `HttpChunk`) and shared by every reader. Over
//! plain TCP a reader is a `core::Sink`: once hyper has sent the response head, the
//! stream writes each tag to the socket itself, framed as an HTTP chunk.

use crate::core::{Encoder, Form, FormKey, ReadEnd, Reader, Sink, SinkEnd, StreamItem, UnitEntry};
use crate::format::flv::mux;
use crate::http::conn::Takeover;
use crate::http::HttpCtx;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the body is framed on the wire when this module writes it itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Framing {
    /// HTTP/1.1: each write is one chunk (hyper writes the last, empty one).
    Chunked,
    /// HTTP/1.0: the body ends when the connection does.
    Raw,
}

pub(crate) async fn serve(
    ctx: Arc<HttpCtx>,
    peer: SocketAddr,
    name: &str,
    origin: Option<HeaderValue>,
    direct: Option<(Arc<Takeover>, Framing)>,
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
    let encoder = FlvEncoder {
        started: false,
        chunked: matches!(direct, Some((_, Framing::Chunked))),
    };
    let tcp = direct.as_ref().map(|(t, _)| t.tcp.clone());
    // Until the head is on the wire the sink's owner (this body) writes: the sink
    // starts owned, and `next_body` waits for the head before its first take.
    let sink = Sink::attach(sub, Box::new(encoder), tcp, bytes.clone());
    let session = Session {
        sink,
        _slot: reader,
        takeover: direct.map(|(t, _)| t),
        head_sent: false,
        owning: false,
        write_timeout: ctx.write_timeout,
        shutdown: ctx.shutdown.clone(),
        peer,
        path: name.to_string(),
        bytes,
        end: None,
        entry,
    };
    let body = Body::from_stream(futures_util::stream::unfold(session, |mut s| async move {
        let b = s.next_body().await?;
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

/// The unit's FLV tag framed as one HTTP/1.1 chunk (size line, tag, CRLF), so that a
/// chunked HTTP-FLV reader sends one shared buffer per unit.
struct HttpChunk;

impl Form for HttpChunk {
    type Out = Option<Bytes>;
    fn key() -> &'static FormKey {
        static KEY: FormKey = FormKey::new();
        &KEY
    }
    fn build(e: &UnitEntry) -> Option<Bytes> {
        let tag = e.form::<mux::FlvTag>().as_ref()?;
        let mut out = Vec::with_capacity(tag.len() + 12);
        out.extend_from_slice(format!("{:x}\r\n", tag.len()).as_bytes());
        out.extend_from_slice(tag);
        out.extend_from_slice(b"\r\n");
        Some(Bytes::from(out))
    }
}

/// What an HTTP-FLV reader is sent for each unit: the file header and sequence tags
/// before the first, then the unit's shared tag; as one HTTP chunk when `chunked`.
struct FlvEncoder {
    started: bool,
    chunked: bool,
}

impl Encoder for FlvEncoder {
    fn encode(&mut self, item: &StreamItem, out: &mut VecDeque<Bytes>) {
        let StreamItem::Unit(entry) = item else {
            return;
        };
        if self.started && self.chunked {
            if let Some(chunk) = entry.form::<HttpChunk>() {
                out.push_back(chunk.clone());
            }
            return;
        }
        let at = out.len();
        if !self.started {
            self.started = true;
            // Parameter sets learnt in-band are known by the first unit.
            let tracks = &entry.tracks;
            let mut head = mux::file_start(tracks);
            head.extend(mux::sequence_tags(
                tracks,
                mux::to_ms(entry.unit.dts, entry.track().clock_rate),
            ));
            out.push_back(Bytes::from(head));
        }
        if let Some(tag) = entry.form::<mux::FlvTag>() {
            out.push_back(tag.clone());
        }
        if self.chunked && out.len() > at {
            let len: usize = out.range(at..).map(Bytes::len).sum();
            out.insert(at, Bytes::from(format!("{len:x}\r\n")));
            out.push_back(Bytes::from_static(b"\r\n"));
        }
    }
}

/// One HTTP-FLV reader: its sink in the stream and what it has sent. Dropping it
/// (the connection closed) releases the reader slot and logs the end.
struct Session {
    sink: Arc<Sink>,
    _slot: Reader,
    /// Plain TCP: this body writes to the socket itself, as does the stream.
    takeover: Option<Arc<Takeover>>,
    head_sent: bool,
    /// The sink asked this body to write, and it has not caught up yet.
    owning: bool,
    write_timeout: Duration,
    shutdown: CancellationToken,
    peer: SocketAddr,
    path: String,
    bytes: crate::core::ByteCounter,
    /// This reader in the API's `flvsessions`; a kick ends the body.
    entry: crate::core::SessionGuard,
    /// Why the body ended, once it has; unset when hyper drops it (client gone).
    end: Option<Result<&'static str, String>>,
}

impl Session {
    /// The next body chunk for hyper to write (TLS, HTTP/2), or, writing to the socket
    /// itself, nothing until the end. `None` ends the body cleanly; an error makes
    /// hyper abort the connection.
    async fn next_body(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.end.is_some() {
            return None;
        }
        if let (Some(t), false) = (self.takeover.clone(), self.head_sent) {
            tokio::select! {
                _ = self.shutdown.cancelled() => return self.stop("server shutting down").await,
                _ = self.entry.kicked().cancelled() => return self.stop("kicked through the API").await,
                _ = t.head_written() => self.head_sent = true,
            }
        }
        loop {
            if self.shutdown.is_cancelled() {
                return self.stop("server shutting down").await;
            }
            if self.entry.kicked().is_cancelled() {
                return self.stop("kicked through the API").await;
            }
            if !self.owning {
                tokio::select! {
                    _ = self.shutdown.cancelled() => continue,
                    _ = self.entry.kicked().cancelled() => continue,
                    _ = self.sink.attention() => self.owning = true,
                }
            }
            match self.sink.take() {
                Ok(Some(parts)) => {
                    if let Some(chunk) = self.write(parts).await {
                        return Some(chunk);
                    }
                }
                Ok(None) => self.owning = false,
                Err(e) => {
                    let end = match e {
                        SinkEnd::Read(ReadEnd::Closed) => Ok("stream ended"),
                        SinkEnd::Read(ReadEnd::TooSlow) => {
                            Err("too slow: kept falling behind the stream".to_string())
                        }
                        SinkEnd::Write(e) => Err(format!("write error: {e}")),
                    };
                    return self.finish(end);
                }
            }
        }
    }

    /// Writes `parts` to the socket (`None`, or the error that ends the body), or
    /// hands them to hyper as one chunk.
    async fn write(&mut self, parts: Vec<Bytes>) -> Option<Result<Bytes, std::io::Error>> {
        let Some(t) = &self.takeover else {
            let b = match parts.len() {
                1 => parts.into_iter().next()?,
                _ => Bytes::from(parts.concat()),
            };
            self.bytes.add(b.len() as u64);
            return Some(Ok(b));
        };
        let slices: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
        let mut out = crate::net::Out::Tcp(t.tcp.clone());
        match out.write_all_vectored(&slices, self.write_timeout).await {
            Ok(n) => {
                self.bytes.add(n as u64);
                None
            }
            Err(e) => self.finish(Err(e.to_string())),
        }
    }

    /// Ends the body: a clean end after what the stream left half-written.
    async fn stop(&mut self, why: &'static str) -> Option<Result<Bytes, std::io::Error>> {
        let rest = self.sink.stop();
        self.end = Some(Ok(why));
        if rest.is_empty() || !self.head_sent && self.takeover.is_some() {
            return None;
        }
        self.write(rest).await
    }

    fn finish(
        &mut self,
        end: Result<&'static str, String>,
    ) -> Option<Result<Bytes, std::io::Error>> {
        let err = end.as_ref().err().map(|r| std::io::Error::other(r.clone()));
        self.end = Some(end);
        err.map(Err)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Stream, StreamConfig};

    /// What the encoder makes of a keyframe and the next frame, each unit flattened.
    fn encoded(chunked: bool) -> Vec<Vec<u8>> {
        let s = Stream::new(
            vec![fixtures::h264_with_sets()],
            StreamConfig {
                queue_size: 64,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        );
        s.write(fixtures::video(0, true));
        s.write(fixtures::video(1, false));
        let mut sub = s.subscribe().unwrap();
        let mut enc = FlvEncoder {
            started: false,
            chunked,
        };
        let mut units = Vec::new();
        sub.drain(|it| {
            let mut out = VecDeque::new();
            enc.encode(&it, &mut out);
            // RTCP reports make nothing.
            if !out.is_empty() {
                units.push(
                    out.iter()
                        .flat_map(|b| b.iter().copied())
                        .collect::<Vec<u8>>(),
                );
            }
        })
        .unwrap();
        units
    }

    #[test]
    fn each_unit_is_one_http_chunk_around_the_bare_file() {
        let bare = encoded(false);
        let chunked = encoded(true);
        assert_eq!(bare.len(), 2);
        assert_eq!(&bare[0][..3], b"FLV", "the file starts with the first unit");
        for (b, c) in bare.iter().zip(&chunked) {
            let head = format!("{:x}\r\n", b.len());
            assert!(c.starts_with(head.as_bytes()), "{:?}", &c[..8]);
            assert_eq!(&c[head.len()..c.len() - 2], &b[..]);
            assert!(c.ends_with(b"\r\n"));
        }
        let second = crate::format::flv::parse_tag(&bare[1]).unwrap().unwrap();
        assert_eq!(
            (second.0.typ, second.1),
            (9, bare[1].len()),
            "one whole tag"
        );
    }
}
