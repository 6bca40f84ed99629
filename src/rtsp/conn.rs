//! One RTSP TCP connection: reads requests and interleaved frames, answers through the
//! session handler, and writes media to a playing reader (vectored, batched, bounded by
//! `writeTimeout`). Malformed input closes this connection only, logged at warn.

use super::framing::{next_message, Incoming};
use super::play::PlayEncoder;
use super::session::{Action, Handler, Playback, SESSION_TIMEOUT_SECS};
use super::transport::TrackTransport;
use super::Ctx;
use crate::core::{ReadEnd, Sink, SinkEnd, StreamItem};
use crate::net::{self, End};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes read from a client at a time (publishers send at media bitrate).
const READ_CHUNK: usize = 64 * 1024;
const CONTROL_CHUNK: usize = 4 * 1024;
/// Items written per vectored write.
const BATCH: usize = 64;

struct Conn {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    wr: net::Out,
    handler: Handler,
    /// A playing reader over TCP: the stream writes its media itself (see `core::sink`),
    /// and responses go through it, in order with the media.
    sink: Option<Arc<Sink>>,
    bytes_in: crate::core::ByteCounter,
    /// The connection's count; while it plays, its path's too.
    bytes_out: crate::core::ByteCounter,
}

pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    sock: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let conn_type = if tls.is_some() {
        "rtspsConn"
    } else {
        "rtspConn"
    };
    let Some((mut rd, wr)) =
        crate::net::accept_halves(sock, peer, tls, ctx.read_timeout, "RTSPS").await
    else {
        return;
    };
    let _hooks = ctx
        .manager
        .hooks()
        .connect(&ctx.manager.config(), conn_type);
    let (udp_tx, mut udp_rx) = mpsc::channel(4096);
    let kind = if conn_type == "rtspsConn" {
        crate::core::SessionKind::RtspsConn
    } else {
        crate::core::SessionKind::RtspConn
    };
    let entry = ctx.manager.sessions().open(kind, peer);
    let (bytes_in, bytes_out) = (entry.bytes_in.clone(), entry.bytes_out.clone());
    let handler = Handler::new(ctx.clone(), peer, udp_tx, entry);
    let mut c = Conn {
        ctx: ctx.clone(),
        peer,
        wr,
        handler,
        sink: None,
        bytes_in,
        bytes_out,
    };
    tracing::debug!(%peer, "RTSP connection opened");

    let mut buf = BytesMut::new();
    let mut playback: Option<Playback> = None;
    let mut replaced: Option<crate::core::Kick> = None;
    let mut last_read = Instant::now();
    let mut last_udp = Instant::now();
    let read_timeout = ctx.read_timeout;
    let kicked = c.handler.conn_entry().kicked().clone();
    // The stream this connection publishes, once it records: readers' keyframe
    // requests (WebRTC PLI) for it are passed on to the client.
    let mut published: Option<Arc<crate::core::Stream>> = None;

    let end = loop {
        let deadline = if c.handler.is_recording() {
            Some(
                if c.handler.records_over_udp() {
                    last_udp
                } else {
                    last_read
                } + read_timeout,
            )
        } else if let Some(p) = &playback {
            let udp = p.tracks.iter().flatten().any(|t| {
                matches!(
                    t,
                    TrackTransport::Udp { .. } | TrackTransport::Multicast { .. }
                )
            });
            udp.then(|| last_read.max(last_udp) + Duration::from_secs(SESSION_TIMEOUT_SECS))
        } else if c.sink.is_some() {
            None
        } else {
            Some(last_read + read_timeout)
        };
        if published.is_none() {
            published = c.handler.recorded_stream();
        }
        // Publishers stream media in; readers only send the odd request, so their
        // buffer stays small (it is most of a reader's memory otherwise).
        let chunk = if c.handler.is_recording() {
            READ_CHUNK
        } else {
            CONTROL_CHUNK
        };
        if buf.capacity() - buf.len() < chunk / 2 {
            // Interleaved frames keep slices of the buffer; read into fresh space.
            buf.reserve(chunk);
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break End::Normal("server shutting down".into()),
            why = crate::core::kicked(replaced.as_ref()) => break End::Normal(why.into()),
            // A session kicked through the API kicks its connection (they share the token).
            why = crate::core::kicked(Some(&kicked)) => break End::Normal(why.into()),
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) if buf.is_empty() => break End::Normal("closed by client".into()),
                Ok(0) => break End::Bad(format!("connection closed inside a message ({} bytes unparsed)", buf.len())),
                Ok(n) => {
                    c.bytes_in.add(n as u64);
                    last_read = Instant::now();
                    match c.process(&mut buf, &mut playback, &mut replaced).await {
                        Ok(None) => {}
                        Ok(Some(end)) => break end,
                        Err(reason) => break End::Bad(reason),
                    }
                }
                Err(e) => break End::Normal(format!("read error: {e}")),
            },
            _ = sink_attention(&c.sink) => {
                if let Err(end) = c.write_sink().await {
                    break end;
                }
            }
            item = next_media(&mut playback) => {
                let result = match item {
                    Ok(first) => c.write_media(first, &mut playback).await,
                    Err(ReadEnd::Closed) => Err(End::Normal("stream ended".into())),
                    Err(ReadEnd::TooSlow) => Err(End::Bad("reader too slow: kept falling behind the stream".into())),
                };
                if let Err(end) = result {
                    break end;
                }
            }
            _ = keyframe_wanted(published.as_deref()) => {
                if let Err(end) = c.request_keyframe().await {
                    break end;
                }
            }
            Some(pkt) = udp_rx.recv() => {
                last_udp = Instant::now();
                c.bytes_in.add(pkt.data.len() as u64);
                if let Err(reason) = c.handler.on_udp(pkt) {
                    break End::Bad(reason);
                }
            }
            _ = net::sleep_until(deadline) => break End::Bad(format!("no data for {}s (read timeout)", read_timeout.as_secs_f32())),
        }
    };
    let reason = match &end {
        End::Normal(r) => r.clone(),
        End::Bad(r) => {
            let (role, path) = c.handler.describe_role().unwrap_or(("connection", "-"));
            tracing::warn!(peer = %c.peer, role, path, "closing RTSP connection: {r}");
            r.clone()
        }
    };
    c.end_sink();
    let (bytes_in, bytes_out) = (c.bytes_in.get(), c.bytes_out.get());
    c.handler.end_session(&reason, bytes_in, bytes_out);
    tracing::debug!(peer = %c.peer, bytes_in, bytes_out, "RTSP connection closed: {reason}");
}

async fn keyframe_wanted(s: Option<&crate::core::Stream>) {
    match s {
        Some(s) => s.keyframe_wanted().await,
        None => std::future::pending().await,
    }
}

async fn sink_attention(s: &Option<Arc<Sink>>) {
    match s {
        Some(s) => s.attention().await,
        None => std::future::pending().await,
    }
}

async fn next_media(p: &mut Option<Playback>) -> Result<StreamItem, ReadEnd> {
    match p {
        Some(p) => p.reader.next().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    /// Handles every complete message in `buf`. `Ok(Some)` ends the connection normally.
    async fn process(
        &mut self,
        buf: &mut BytesMut,
        playback: &mut Option<Playback>,
        replaced: &mut Option<crate::core::Kick>,
    ) -> Result<Option<End>, String> {
        loop {
            let req = match next_message(buf, &self.handler.limits).map_err(|e| e.to_string())? {
                None => return Ok(None),
                Some(Incoming::Interleaved(channel, frame)) => {
                    self.handler.on_interleaved(channel, frame)?;
                    continue;
                }
                Some(Incoming::Other) => continue,
                Some(Incoming::Request(req)) => req,
            };
            tracing::debug!(peer = %self.peer, method = ?req.method(), uri = ?req.request_uri().map(|u| crate::auth::redact_url(u.as_str())), "RTSP request");
            // Credentials first: a refused client must not start an on-demand source.
            let refused = self.handler.authorize(&req).await;
            if refused.is_none() && req.method() == rtsp_types::Method::Describe {
                // An on-demand source starts here; DESCRIBE answers once it plays.
                if let Some(uri) = req.request_uri() {
                    let (path, query) =
                        (super::url::url_path(uri), uri.query().unwrap_or_default());
                    self.ctx.manager.demand_with(&path, query).await;
                }
            }
            let (resp, action) = refused.unwrap_or_else(|| self.handler.handle(&req));
            if let Action::Refuse(delay) = action {
                // Holds only this connection; its reads wait too.
                tokio::time::sleep(delay).await;
            }
            let mut out = Vec::with_capacity(256);
            resp.write(&mut out)
                .map_err(|e| format!("can't serialize response: {e:?}"))?;
            if let Some(sink) = &self.sink {
                sink.send_own(out.into());
                if matches!(action, Action::Pause | Action::Teardown) {
                    // The response goes out before the reader stops.
                    if let Err(e) = self.write_sink().await {
                        return Ok(Some(e));
                    }
                    self.end_sink();
                }
            } else if let Err(e) = self.write_all(&[&out]).await {
                return Ok(Some(e));
            }
            match action {
                Action::None => {}
                Action::Play(p) => {
                    if let Some(b) = self.handler.reader_bytes_out() {
                        self.bytes_out = b;
                    }
                    match PlayEncoder::tcp_only(&p.tracks) {
                        Some(enc) => {
                            self.sink = Some(Sink::attach(
                                p.reader,
                                Box::new(enc),
                                self.wr.tcp(),
                                self.bytes_out.clone(),
                            ))
                        }
                        None => *playback = Some(p),
                    }
                }
                Action::Pause => *playback = None,
                Action::Record(token) => *replaced = Some(token),
                Action::Teardown => {
                    *playback = None;
                    *replaced = None;
                    self.handler
                        .end_session("teardown", self.bytes_in.get(), self.bytes_out.get());
                    self.bytes_out = self.handler.conn_entry().bytes_out.clone();
                }
                Action::Close(reason) => return Err(reason),
                Action::Refuse(_) => return Ok(Some(End::Normal("authentication failed".into()))),
            }
        }
    }

    /// Passes a reader's keyframe request to the publishing client as RTCP: on its
    /// video's interleaved RTCP channel, or to its RTCP port.
    async fn request_keyframe(&mut self) -> Result<(), End> {
        let Some((transport, pli)) = self.handler.keyframe_request() else {
            return Ok(());
        };
        tracing::debug!(peer = %self.peer, "RTSP publisher asked for a keyframe (PLI)");
        match transport {
            TrackTransport::Tcp { rtcp_channel, .. } => {
                let len = (pli.len() as u16).to_be_bytes();
                self.write_all(&[&[b'$', rtcp_channel, len[0], len[1]], &pli])
                    .await
            }
            TrackTransport::Udp { client_rtcp, .. } => {
                if let Some(udp) = &self.ctx.udp {
                    let to = SocketAddr::new(self.peer.ip(), client_rtcp);
                    let _ = udp.rtcp.send_to(&pli, to).await;
                }
                Ok(())
            }
            TrackTransport::Multicast { .. } => Ok(()),
        }
    }

    async fn write_all(&mut self, parts: &[&[u8]]) -> Result<(), End> {
        let n = self
            .wr
            .write_all_vectored(parts, self.ctx.write_timeout)
            .await?;
        self.bytes_out.add(n as u64);
        Ok(())
    }

    /// Writes what the reader's sink hands over until it is caught up.
    async fn write_sink(&mut self) -> Result<(), End> {
        let Some(sink) = self.sink.clone() else {
            return Ok(());
        };
        loop {
            match sink.take() {
                Ok(Some(parts)) => {
                    let parts: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
                    self.write_all(&parts).await?;
                }
                Ok(None) => return Ok(()),
                Err(SinkEnd::Read(ReadEnd::Closed)) => {
                    return Err(End::Normal("stream ended".into()))
                }
                Err(SinkEnd::Read(ReadEnd::TooSlow)) => {
                    return Err(End::Bad(
                        "reader too slow: kept falling behind the stream".into(),
                    ))
                }
                Err(SinkEnd::Write(e)) => return Err(End::Normal(format!("write error: {e}"))),
            }
        }
    }

    /// Stops the sink's reader (what it wrote is in `bytes_out` already).
    fn end_sink(&mut self) {
        self.sink = None;
    }

    /// Writes `first` and whatever else is already queued, in one vectored write for TCP
    /// tracks; UDP tracks go out of the shared RTP/RTCP sockets.
    async fn write_media(
        &mut self,
        first: StreamItem,
        playback: &mut Option<Playback>,
    ) -> Result<(), End> {
        let Some(p) = playback.as_mut() else {
            return Ok(());
        };
        let mut items = vec![first];
        let mut end = None;
        while items.len() < BATCH {
            match p.reader.try_next() {
                Ok(Some(it)) => items.push(it),
                Ok(None) => break,
                Err(e) => {
                    end = Some(e);
                    break;
                }
            }
        }
        let mut tcp = std::collections::VecDeque::new();
        for item in &items {
            super::play::encode_tcp(&p.tracks, item, &mut tcp);
            let (track, packets, rtcp) = super::play::packets(item);
            let Some(TrackTransport::Udp {
                client_rtp,
                client_rtcp,
            }) = p.tracks.get(track).copied().flatten()
            else {
                continue;
            };
            if let Some(udp) = &self.ctx.udp {
                let (sock, port) = if rtcp {
                    (&udp.rtcp, client_rtcp)
                } else {
                    (&udp.rtp, client_rtp)
                };
                let to = SocketAddr::new(self.peer.ip(), port);
                // UDP loss is the reader's problem, as on any network.
                self.bytes_out
                    .add(super::udp::send_all(sock, to, packets).await as u64);
            }
        }
        if !tcp.is_empty() {
            let parts: Vec<&[u8]> = tcp.iter().map(|b| &b[..]).collect();
            self.write_all(&parts).await?;
        }
        match end {
            None => Ok(()),
            Some(ReadEnd::Closed) => Err(End::Normal("stream ended".into())),
            Some(ReadEnd::TooSlow) => Err(End::Bad(
                "reader too slow: kept falling behind the stream".into(),
            )),
        }
    }
}
