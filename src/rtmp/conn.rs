//! One RTMP connection: handshake, then `rml_rtmp`'s server session. A publisher's
//! media goes through `Ingest` into a stream; a player gets metadata, sequence headers,
//! then the stream's FLV tag bodies (built once per unit) as RTMP messages.

use super::ingest::Ingest;
use super::Ctx;
use crate::core::{self, Publisher, ReadEnd, Stream, StreamItem, StreamReader};
use crate::format::flv::{mux, TagType};
use crate::net;
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// RTMP allows chunk sizes up to 2^31 - 1; anything above this is refused as abuse.
const MAX_CHUNK_SIZE: u32 = 16 << 20;
const BATCH: usize = 64;

enum End {
    Normal(String),
    Bad(String),
}

struct Publishing {
    path: String,
    publisher: Publisher,
    ingest: Ingest,
    started: bool,
}

struct Playing {
    path: String,
    _slot: core::Reader,
    stream_id: u32,
    sub: StreamReader,
    started: bool,
}

enum Role {
    None,
    Publish(Box<Publishing>),
    Play(Box<Playing>),
}

struct Conn {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    wr: OwnedWriteHalf,
    session: Option<ServerSession>,
    role: Role,
    close_after: Option<End>,
    bytes_in: u64,
    bytes_out: u64,
}

pub(crate) async fn serve(ctx: Arc<Ctx>, sock: TcpStream, peer: SocketAddr) {
    let _ = sock.set_nodelay(true);
    let (mut rd, wr) = sock.into_split();
    let mut c = Conn {
        ctx,
        peer,
        wr,
        session: None,
        role: Role::None,
        close_after: None,
        bytes_in: 0,
        bytes_out: 0,
    };
    match c.run(&mut rd).await {
        End::Normal(r) => c.end_role(&r),
        End::Bad(r) => {
            let (role, path) = c.describe();
            tracing::warn!(%peer, path, bytes_in = c.bytes_in, bytes_out = c.bytes_out, "closing RTMP {role}: {r}");
            c.role = Role::None;
        }
    }
    tracing::debug!(%peer, bytes_in = c.bytes_in, bytes_out = c.bytes_out, "RTMP connection closed");
}

async fn next_media(role: &mut Role) -> Result<StreamItem, ReadEnd> {
    match role {
        Role::Play(p) => p.sub.next().await,
        _ => std::future::pending().await,
    }
}

async fn cancelled(t: Option<&tokio_util::sync::CancellationToken>) {
    match t {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    fn describe(&self) -> (&'static str, &str) {
        match &self.role {
            Role::None => ("connection", "-"),
            Role::Publish(p) => ("publisher", p.path.as_str()),
            Role::Play(p) => ("player", p.path.as_str()),
        }
    }

    /// Releases the publisher or player slot, with one log line for a session that ran.
    fn end_role(&mut self, reason: &str) {
        let (role, path) = self.describe();
        if !matches!(self.role, Role::None) {
            tracing::info!(peer = %self.peer, path, bytes_in = self.bytes_in, bytes_out = self.bytes_out, "RTMP {role} closed: {reason}");
        }
        self.role = Role::None;
    }

    async fn run(&mut self, rd: &mut OwnedReadHalf) -> End {
        let mut buf = vec![0u8; 64 * 1024];
        let leftover = match self.handshake(rd, &mut buf).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        let (session, results) = match ServerSession::new(ServerSessionConfig::new()) {
            Ok(s) => s,
            Err(e) => return End::Bad(format!("can't start the RTMP session: {e}")),
        };
        self.session = Some(session);
        if let Err(e) = self.apply(results).await {
            return e;
        }
        if let Err(e) = self.input(&leftover).await {
            return e;
        }
        let mut last_read = Instant::now();
        loop {
            let deadline = match self.role {
                Role::Play(_) => None,
                _ => Some(last_read + self.ctx.read_timeout),
            };
            let ctx = self.ctx.clone();
            let replaced_token = match &self.role {
                Role::Publish(p) => Some(p.publisher.cancelled().clone()),
                _ => None,
            };
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return End::Normal("server shutting down".into()),
                _ = cancelled(replaced_token.as_ref()) => return End::Normal("replaced by another publisher".into()),
                r = rd.read(&mut buf) => match r {
                    Ok(0) => return End::Normal("closed by client".into()),
                    Ok(n) => {
                        self.bytes_in += n as u64;
                        last_read = Instant::now();
                        if let Err(e) = self.input(&buf[..n]).await {
                            return e;
                        }
                    }
                    Err(e) => return End::Normal(format!("read error: {e}")),
                },
                item = next_media(&mut self.role) => {
                    if let Err(e) = self.play(item).await {
                        return e;
                    }
                }
                _ = sleep_until(deadline) => {
                    return End::Bad(format!("no data for {:?} (read timeout)", self.ctx.read_timeout));
                }
            }
        }
    }

    async fn handshake(&mut self, rd: &mut OwnedReadHalf, buf: &mut [u8]) -> Result<Vec<u8>, End> {
        let mut hs = Handshake::new(PeerType::Server);
        loop {
            let n = match tokio::time::timeout(self.ctx.read_timeout, rd.read(buf)).await {
                Err(_) => return Err(End::Bad("handshake timed out".into())),
                Ok(Ok(0)) => return Err(End::Normal("closed during the handshake".into())),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(End::Normal(format!("read error: {e}"))),
            };
            self.bytes_in += n as u64;
            match hs.process_bytes(&buf[..n]) {
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    self.write(&[&response_bytes]).await?
                }
                Ok(HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                }) => {
                    self.write(&[&response_bytes]).await?;
                    return Ok(remaining_bytes);
                }
                Err(e) => return Err(End::Bad(format!("bad RTMP handshake: {e}"))),
            }
        }
    }

    async fn write(&mut self, parts: &[&[u8]]) -> Result<(), End> {
        match net::write_all_vectored(&mut self.wr, parts, self.ctx.write_timeout).await {
            Ok(n) => {
                self.bytes_out += n as u64;
                Ok(())
            }
            Err(e @ net::WriteError::Io(_)) => Err(End::Normal(e.to_string())),
            Err(e @ net::WriteError::Timeout(_)) => Err(End::Bad(e.to_string())),
        }
    }

    fn session(&mut self) -> Result<&mut ServerSession, End> {
        self.session
            .as_mut()
            .ok_or_else(|| End::Bad("no RTMP session".into()))
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), End> {
        let session = self.session()?;
        // rml_rtmp panics on some malformed AMF (it slices by declared lengths); a panic
        // must close this connection with a reason, not vanish with the task.
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(bytes)))
                .map_err(|_| {
                    End::Bad("bad RTMP input: malformed message (parser panicked)".into())
                })?
                .map_err(|e| End::Bad(format!("bad RTMP input: {e}")))?;
        self.apply(results).await
    }

    /// Sends outbound packets in order and handles raised events.
    async fn apply(&mut self, results: Vec<ServerSessionResult>) -> Result<(), End> {
        let mut pending = std::collections::VecDeque::from(results);
        while let Some(r) = pending.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.write(&[&p.bytes]).await?,
                ServerSessionResult::RaisedEvent(e) => {
                    let more = self.event(e)?;
                    for (i, m) in more.into_iter().enumerate() {
                        pending.insert(i, m);
                    }
                }
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        if let Some(end) = self.after_events() {
            return Err(end);
        }
        Ok(())
    }

    fn event(&mut self, e: ServerSessionEvent) -> Result<Vec<ServerSessionResult>, End> {
        let session_err = |e: rml_rtmp::sessions::ServerSessionError| {
            End::Bad(format!("RTMP session error: {e}"))
        };
        match e {
            ServerSessionEvent::ClientChunkSizeChanged { new_chunk_size } => {
                if new_chunk_size == 0 || new_chunk_size > MAX_CHUNK_SIZE {
                    return Err(End::Bad(format!("invalid chunk size {new_chunk_size}")));
                }
                Ok(vec![])
            }
            ServerSessionEvent::ConnectionRequested { request_id, .. } => self
                .session()?
                .accept_request(request_id)
                .map_err(session_err),
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                let path = path_of(&app_name, &stream_key);
                if !matches!(self.role, Role::None) {
                    return Err(End::Bad(
                        "publish on a connection that already has a stream".into(),
                    ));
                }
                match self.ctx.manager.add_publisher(&path) {
                    Ok(publisher) => {
                        self.role = Role::Publish(Box::new(Publishing {
                            path,
                            publisher,
                            ingest: Ingest::default(),
                            started: false,
                        }));
                        self.session()?
                            .accept_request(request_id)
                            .map_err(session_err)
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, %path, "RTMP publish refused: {e}");
                        self.close_after = Some(End::Normal(format!("publish refused: {e}")));
                        self.session()?
                            .reject_request(request_id, "NetStream.Publish.BadName", &e.to_string())
                            .map_err(session_err)
                    }
                }
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Role::Publish(p) = &mut self.role {
                    p.ingest.metadata(
                        metadata.video_codec_id.is_some(),
                        metadata.audio_codec_id.is_some(),
                    );
                }
                Ok(vec![])
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.media(true, timestamp.value, data),
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.media(false, timestamp.value, data),
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                app_name,
                stream_key,
                stream_id,
                ..
            } => {
                let path = path_of(&app_name, &stream_key);
                if !matches!(self.role, Role::None) {
                    return Err(End::Bad(
                        "play on a connection that already has a stream".into(),
                    ));
                }
                let reader = self.ctx.manager.add_reader(&path).and_then(|r| {
                    let sub = r
                        .stream()
                        .subscribe()
                        .ok_or_else(|| core::PathError::NoPublisher(path.clone()))?;
                    Ok((r, sub))
                });
                match reader {
                    Ok((slot, sub)) => {
                        tracing::info!(peer = %self.peer, %path, "RTMP player started");
                        crate::net::limit_send_buffer::<TcpStream>(self.wr.as_ref());
                        self.role = Role::Play(Box::new(Playing {
                            path,
                            _slot: slot,
                            stream_id,
                            sub,
                            started: false,
                        }));
                        self.session()?
                            .accept_request(request_id)
                            .map_err(session_err)
                    }
                    Err(e) => {
                        tracing::info!(peer = %self.peer, %path, "RTMP play refused: {e}");
                        self.close_after = Some(End::Normal(format!("play refused: {e}")));
                        self.session()?
                            .reject_request(
                                request_id,
                                "NetStream.Play.StreamNotFound",
                                &e.to_string(),
                            )
                            .map_err(session_err)
                    }
                }
            }
            // The client closes the connection itself once its last command is answered.
            ServerSessionEvent::PublishStreamFinished { .. }
            | ServerSessionEvent::PlayStreamFinished { .. } => {
                self.end_role("finished by client");
                Ok(vec![])
            }
            _ => Ok(vec![]),
        }
    }

    /// A refused publish or play ends the connection once the refusal is sent.
    fn after_events(&mut self) -> Option<End> {
        self.close_after.take()
    }

    fn media(
        &mut self,
        video: bool,
        ts: u32,
        data: Bytes,
    ) -> Result<Vec<ServerSessionResult>, End> {
        let peer = self.peer;
        let Role::Publish(p) = &mut self.role else {
            return Err(End::Bad(
                "media on a stream that was never published".into(),
            ));
        };
        p.ingest.push(video, ts, data).map_err(|e| {
            End::Bad(format!(
                "bad {} data: {e}",
                if video { "video" } else { "audio" }
            ))
        })?;
        if let Some(tracks) = p.ingest.tracks_if_ready() {
            let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
            let codecs = codecs.join(", ");
            let stream = Stream::new(tracks, self.ctx.manager.stream_config());
            p.publisher
                .start(stream.clone())
                .map_err(|e| End::Normal(e.to_string()))?;
            p.ingest
                .attach(stream)
                .map_err(|e| End::Bad(format!("bad media data: {e}")))?;
            p.started = true;
            tracing::info!(%peer, path = %p.path, tracks = %codecs, "RTMP publisher started");
        }
        Ok(vec![])
    }

    /// Sends a stream item (and whatever else is queued) to a player.
    async fn play(&mut self, first: Result<StreamItem, ReadEnd>) -> Result<(), End> {
        let Role::Play(p) = &mut self.role else {
            return Ok(());
        };
        let mut items = Vec::with_capacity(BATCH);
        let mut end = None;
        match first {
            Ok(it) => items.push(it),
            Err(e) => end = Some(e),
        }
        while end.is_none() && items.len() < BATCH {
            match p.sub.try_next() {
                Ok(Some(it)) => items.push(it),
                Ok(None) => break,
                Err(e) => end = Some(e),
            }
        }
        let stream = p.sub.stream().clone();
        let stream_id = p.stream_id;
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| End::Bad("no RTMP session".into()))?;
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let session_err = |e: rml_rtmp::sessions::ServerSessionError| {
            End::Bad(format!("RTMP session error: {e}"))
        };
        for item in &items {
            let StreamItem::Unit(entry) = item else {
                continue;
            };
            let tracks = stream.tracks();
            let Some(track) = tracks.get(entry.unit.track) else {
                continue;
            };
            if !p.started {
                p.started = true;
                let ts = mux::to_ms(entry.unit.dts, track.clock_rate);
                packets.push(
                    session
                        .send_metadata(stream_id, &metadata(&tracks))
                        .map_err(session_err)?
                        .bytes,
                );
                for (typ, body) in mux::sequence_bodies(&tracks) {
                    packets.push(
                        send(session, stream_id, typ, Bytes::from(body), ts)
                            .map_err(session_err)?,
                    );
                }
            }
            let Some(tag) = entry.flv_tag(track) else {
                continue;
            };
            // The message body is the FLV tag without its header and trailing size.
            let body = tag.slice(crate::format::flv::TAG_HEADER_LEN..tag.len() - 4);
            let typ = if tag[0] == TagType::Video as u8 {
                TagType::Video
            } else {
                TagType::Audio
            };
            let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
            packets.push(send(session, stream_id, typ, body, ts).map_err(session_err)?);
        }
        let parts: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        self.write(&parts).await?;
        match end {
            None => Ok(()),
            Some(ReadEnd::Closed) => Err(End::Normal("stream ended".into())),
            Some(ReadEnd::TooSlow) => Err(End::Bad(
                "player too slow: kept falling behind the stream".into(),
            )),
        }
    }
}

fn send(
    session: &mut ServerSession,
    stream_id: u32,
    typ: TagType,
    body: Bytes,
    ts: u32,
) -> Result<Vec<u8>, rml_rtmp::sessions::ServerSessionError> {
    let ts = RtmpTimestamp::new(ts);
    let p = match typ {
        TagType::Video => session.send_video_data(stream_id, body, ts, false)?,
        _ => session.send_audio_data(stream_id, body, ts, false)?,
    };
    Ok(p.bytes)
}

fn metadata(tracks: &[core::Track]) -> StreamMetadata {
    let mut m = StreamMetadata::new();
    for t in tracks {
        match &t.codec {
            core::Codec::H264 { .. } | core::Codec::H265 { .. } => {
                m.video_codec_id = Some(match t.codec {
                    core::Codec::H264 { .. } => 7,
                    _ => u32::from_be_bytes(*b"hvc1"),
                });
                if let Some((w, h)) = mux::video_size(t) {
                    m.video_width = Some(w);
                    m.video_height = Some(h);
                }
            }
            core::Codec::Aac {
                sample_rate,
                channels,
                ..
            } => {
                m.audio_codec_id = Some(10);
                m.audio_sample_rate = Some(*sample_rate);
                m.audio_channels = Some(u32::from(*channels));
                m.audio_is_stereo = Some(*channels == 2);
            }
            _ => {}
        }
    }
    m
}

/// `rtmp://host/live/room?key=x` → `live/room`; the query is kept out of the path.
pub(crate) fn path_of(app: &str, stream_key: &str) -> String {
    let key = stream_key.split('?').next().unwrap_or_default();
    let app = app.split('?').next().unwrap_or_default();
    [app.trim_matches('/'), key.trim_matches('/')]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path_of("live", "room"), "live/room");
        assert_eq!(path_of("live", "room?key=abc"), "live/room");
        assert_eq!(path_of("live/sub", "cam"), "live/sub/cam");
        assert_eq!(path_of("live", ""), "live");
    }
}
