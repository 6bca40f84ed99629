//! One RTMP connection: the handshake (rml_rtmp's, sans-io), then our message session.
//! A publisher's media goes through `Ingest` into a stream; a player gets metadata,
//! sequence headers, then the stream's FLV tag bodies (built once per unit) as messages.

use super::ingest::Ingest;
use super::play::PlayEncoder;
use super::session::{Event, Session};
use super::Ctx;
use crate::core::{self, Publisher, ReadEnd, Sink, SinkEnd, Stream};
use crate::format::flv::mux;
use crate::net::{self, End};
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

type Reader = net::BoxReader;
use tokio::time::Instant;

const CONTROL_BUF: usize = 4 * 1024;
const MEDIA_BUF: usize = 64 * 1024;

struct Publishing {
    path: String,
    publisher: Publisher,
    ingest: Ingest,
}

struct Playing {
    path: String,
    _slot: core::Reader,
    /// The stream writes media to the player itself; the connection writes through it.
    sink: Arc<Sink>,
}

enum Role {
    None,
    Publish(Box<Publishing>),
    Play(Box<Playing>),
}

struct Conn {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    wr: net::Out,
    session: Session,
    role: Role,
    close_after: Option<End>,
    /// This connection in the API's `rtmpconns`.
    entry: core::SessionGuard,
    bytes_in: core::ByteCounter,
    /// Shared with a player's sink, and counted for the path it plays.
    bytes_out: core::ByteCounter,
}

pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    sock: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let conn_type = if tls.is_some() {
        "rtmpsConn"
    } else {
        "rtmpConn"
    };
    let Some((mut rd, wr)) = net::accept_halves(sock, peer, tls, ctx.read_timeout, "RTMPS").await
    else {
        return;
    };
    let _hooks = ctx
        .manager
        .hooks()
        .connect(&ctx.manager.config(), conn_type);
    let kind = if conn_type == "rtmpsConn" {
        core::SessionKind::RtmpsConn
    } else {
        core::SessionKind::RtmpConn
    };
    let entry = ctx.manager.sessions().open(kind, peer);
    let session = Session::with_limits(&ctx.manager.config().input_limits());
    let mut c = Conn {
        ctx,
        peer,
        wr,
        session,
        role: Role::None,
        close_after: None,
        bytes_in: entry.bytes_in.clone(),
        bytes_out: entry.bytes_out.clone(),
        entry,
    };
    match c.run(&mut rd).await {
        End::Normal(r) => c.end_role(&r),
        End::Bad(r) => {
            let (role, path) = c.describe();
            let bytes_out = c.bytes_out.get();
            tracing::warn!(%peer, path, bytes_in = c.bytes_in.get(), bytes_out, "closing RTMP {role}: {r}");
            c.role = Role::None;
        }
    }
    tracing::debug!(%peer, bytes_in = c.bytes_in.get(), bytes_out = c.bytes_out.get(), "RTMP connection closed");
}

/// Resolves when a player's sink needs the connection to write.
async fn sink_attention(role: &Role) {
    match role {
        Role::Play(p) => p.sink.attention().await,
        _ => std::future::pending().await,
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
            let (bytes_in, bytes_out) = (self.bytes_in.get(), self.bytes_out.get());
            tracing::info!(peer = %self.peer, path, bytes_in, bytes_out, "RTMP {role} closed: {reason}");
        }
        self.role = Role::None;
        self.entry.update(|d| d.state = core::SessionState::Idle);
    }

    async fn run(&mut self, rd: &mut Reader) -> End {
        // Players only send commands; publishers get a larger buffer once they publish.
        let mut buf = vec![0u8; CONTROL_BUF];
        let leftover = match self.handshake(rd, &mut buf).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if let Err(e) = self.input(&leftover).await {
            return e;
        }
        let mut last_read = Instant::now();
        let kicked = self.entry.kicked().clone();
        loop {
            let deadline = match self.role {
                Role::Play(_) => None,
                _ => Some(last_read + self.ctx.read_timeout),
            };
            let ctx = self.ctx.clone();
            let replaced = match &self.role {
                Role::Publish(p) => Some(p.publisher.cancelled().clone()),
                _ => None,
            };
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return End::Normal("server shutting down".into()),
                why = crate::core::kicked(replaced.as_ref()) => return End::Normal(why.into()),
                why = crate::core::kicked(Some(&kicked)) => return End::Normal(why.into()),
                r = rd.read(&mut buf) => match r {
                    Ok(0) => return End::Normal("closed by client".into()),
                    Ok(n) => {
                        self.bytes_in.add(n as u64);
                        last_read = Instant::now();
                        if let Err(e) = self.input(&buf[..n]).await {
                            return e;
                        }
                        if matches!(self.role, Role::Publish(_)) && buf.len() < MEDIA_BUF {
                            buf.resize(MEDIA_BUF, 0);
                        }
                    }
                    Err(e) => return End::Normal(format!("read error: {e}")),
                },
                _ = sink_attention(&self.role) => {
                    if let Err(e) = self.play().await {
                        return e;
                    }
                }
                _ = net::sleep_until(deadline) => {
                    return End::Bad(format!("no data for {:?} (read timeout)", self.ctx.read_timeout));
                }
            }
        }
    }

    async fn handshake(&mut self, rd: &mut Reader, buf: &mut [u8]) -> Result<Vec<u8>, End> {
        let mut hs = Handshake::new(PeerType::Server);
        loop {
            let n = match tokio::time::timeout(self.ctx.read_timeout, rd.read(buf)).await {
                Err(_) => return Err(End::Bad("handshake timed out".into())),
                Ok(Ok(0)) => return Err(End::Normal("closed during the handshake".into())),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(End::Normal(format!("read error: {e}"))),
            };
            self.bytes_in.add(n as u64);
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
        let n = self
            .wr
            .write_all_vectored(parts, self.ctx.write_timeout)
            .await?;
        self.bytes_out.add(n as u64);
        Ok(())
    }

    /// Sends whatever the session queued; a player's goes in order with its media.
    async fn flush(&mut self) -> Result<(), End> {
        let out = self.session.take_output();
        if out.is_empty() {
            return Ok(());
        }
        match &self.role {
            Role::Play(p) => {
                p.sink.send_own(Bytes::from(out));
                Ok(())
            }
            _ => self.write(&[&out]).await,
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), End> {
        let events = self
            .session
            .input(bytes)
            .map_err(|e| End::Bad(format!("bad RTMP input: {e}")))?;
        for e in events {
            if !self.authorize(&e).await {
                break;
            }
            if let Event::Play { app, name, .. } = &e {
                // An on-demand source starts here; play proceeds once it plays.
                let query = super::auth::query(app, name);
                let path = self.path(app, name);
                self.ctx.manager.demand_with(&path, query).await;
            }
            self.event(e)?;
        }
        self.flush().await?;
        match self.close_after.take() {
            Some(end) => Err(end),
            None => Ok(()),
        }
    }

    /// Checks a publish or play against the user list; a refusal is queued with a
    /// status, after a delay for wrong credentials, and the connection closes.
    async fn authorize(&mut self, e: &Event) -> bool {
        let (action, stream_id, app, name) = match e {
            Event::Publish {
                stream_id,
                app,
                name,
            } => (crate::auth::Action::Publish, *stream_id, app, name),
            Event::Play {
                stream_id,
                app,
                name,
            } => (crate::auth::Action::Read, *stream_id, app, name),
            _ => return true,
        };
        let path = self.path(app, name);
        let creds = super::auth::credentials(app, name);
        let query = super::auth::query(app, name);
        // One stream per connection: the id is the connection's.
        let id = crate::auth::new_id();
        let req = crate::auth::Request {
            ip: self.peer.ip(),
            action,
            path: &path,
            creds: &creds,
            method: "",
            protocol: "rtmp",
            query,
            id: Some(&id),
            user_agent: "",
        };
        let Err(denied) = self.ctx.manager.authenticate(&req).await else {
            return true;
        };
        if denied != crate::auth::Denied::AskCredentials {
            tokio::time::sleep(crate::auth::failures::Failures::delay()).await;
        }
        let code = match action {
            crate::auth::Action::Publish => "NetStream.Publish.Unauthorized",
            _ => "NetStream.Play.Unauthorized",
        };
        self.session
            .reject(stream_id, code, "authentication failed");
        self.close_after = Some(End::Normal("authentication failed".into()));
        false
    }

    fn event(&mut self, e: Event) -> Result<(), End> {
        if matches!(e, Event::Publish { .. } | Event::Play { .. })
            && !matches!(self.role, Role::None)
        {
            return Err(End::Bad(
                "publish or play on a connection that already has a stream".into(),
            ));
        }
        match e {
            Event::Publish {
                stream_id,
                app,
                name,
            } => {
                let path = self.path(&app, &name);
                match self
                    .ctx
                    .manager
                    .add_publisher(&path, self.client(&app, &name))
                {
                    Ok(publisher) => {
                        self.entry.update(|d| {
                            d.state = core::SessionState::Publish;
                            d.path = path.clone();
                            d.query = core::without_credentials(super::auth::query(&app, &name));
                        });
                        self.session.accept_publish(stream_id);
                        self.role = Role::Publish(Box::new(Publishing {
                            path,
                            publisher,
                            ingest: Ingest::default(),
                        }));
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, %path, "RTMP publish refused: {e}");
                        self.session
                            .reject(stream_id, "NetStream.Publish.BadName", &e.to_string());
                        self.close_after = Some(End::Normal(format!("publish refused: {e}")));
                    }
                }
            }
            Event::Play {
                stream_id,
                app,
                name,
            } => {
                let path = self.path(&app, &name);
                let reader = self
                    .ctx
                    .manager
                    .add_reader(&path, self.client(&app, &name))
                    .and_then(|r| {
                        let sub = r
                            .stream()
                            .subscribe()
                            .ok_or_else(|| core::PathError::NoPublisher(path.clone()))?;
                        Ok((r, sub))
                    });
                let media_out = self.session.media_out(stream_id);
                let fit = reader.as_ref().ok().map(|(r, _)| {
                    mux::fit(&r.stream().tracks(), self.session.plays_fourcc("hvc1"))
                        .map(|skipped| skipped.join(", "))
                });
                if let Some(Err(reason)) = &fit {
                    tracing::warn!(peer = %self.peer, %path, "RTMP play refused: {reason}");
                    self.session
                        .reject(stream_id, "NetStream.Play.Failed", reason);
                    self.close_after = Some(End::Normal(format!("play refused: {reason}")));
                    return Ok(());
                }
                match reader {
                    Ok((slot, sub)) => {
                        if let Some(skipped) = fit.and_then(Result::ok).filter(|s| !s.is_empty()) {
                            tracing::warn!(peer = %self.peer, %path, "RTMP player gets no {skipped}: FLV can't carry it");
                        }
                        tracing::info!(peer = %self.peer, %path, "RTMP player started");
                        self.session.accept_play(stream_id);
                        let encoder = Box::new(PlayEncoder::new(media_out));
                        self.bytes_out = self
                            .entry
                            .bytes_out
                            .with_path(slot.path().bytes_sent_counter());
                        self.entry.update(|d| {
                            d.state = core::SessionState::Read;
                            d.path = path.clone();
                            d.query = core::without_credentials(super::auth::query(&app, &name));
                        });
                        let sink =
                            Sink::attach(sub, encoder, self.wr.tcp(), self.bytes_out.clone());
                        // The play status, queued ahead of the media.
                        sink.send_own(Bytes::from(self.session.take_output()));
                        self.role = Role::Play(Box::new(Playing {
                            path,
                            _slot: slot,
                            sink,
                        }));
                    }
                    Err(e) => {
                        tracing::info!(peer = %self.peer, %path, "RTMP play refused: {e}");
                        self.session.reject(
                            stream_id,
                            "NetStream.Play.StreamNotFound",
                            &e.to_string(),
                        );
                        self.close_after = Some(End::Normal(format!("play refused: {e}")));
                    }
                }
            }
            Event::Metadata {
                has_video,
                has_audio,
            } => {
                if let Role::Publish(p) = &mut self.role {
                    p.ingest.metadata(has_video, has_audio);
                }
            }
            Event::Media {
                video,
                timestamp,
                data,
            } => self.media(video, timestamp, data)?,
            // The client closes the connection itself once its last command is answered.
            Event::StreamClosed => self.end_role("finished by client"),
        }
        Ok(())
    }

    fn media(&mut self, video: bool, ts: u32, data: Bytes) -> Result<(), End> {
        let peer = self.peer;
        let Role::Publish(p) = &mut self.role else {
            // Media after the client closed its stream: ignore the tail.
            return Ok(());
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
            tracing::info!(%peer, path = %p.path, tracks = %codecs, "RTMP publisher started");
        }
        Ok(())
    }

    /// Writes what the player's sink hands over until it is caught up.
    async fn play(&mut self) -> Result<(), End> {
        let Role::Play(p) = &self.role else {
            return Ok(());
        };
        let sink = p.sink.clone();
        loop {
            match sink.take() {
                Ok(Some(parts)) => {
                    let parts: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
                    self.write(&parts).await?;
                }
                Ok(None) => return Ok(()),
                Err(SinkEnd::Read(ReadEnd::Closed)) => {
                    return Err(End::Normal("stream ended".into()))
                }
                Err(SinkEnd::Read(ReadEnd::TooSlow)) => {
                    return Err(End::Bad(
                        "player too slow: kept falling behind the stream".into(),
                    ))
                }
                Err(SinkEnd::Write(e)) => return Err(End::Normal(format!("write error: {e}"))),
            }
        }
    }
}

/// `rtmp://host/live/room?key=x` → `live/room`; the query is kept out of the path.
impl Conn {
    /// Who this connection is, for the slot it takes (hooks and webhooks read it).
    /// The path a publish or play names: `app/stream`, after the vhost under
    /// `pathVhosts`.
    fn path(&self, app: &str, name: &str) -> String {
        let path = path_of(app, name);
        match self.ctx.manager.config().path_vhosts {
            true => {
                let vhost = crate::core::vhost::of_rtmp(&self.session.tc_url, app, name);
                crate::core::vhost::prefixed(vhost.as_deref(), &path)
            }
            false => path,
        }
    }

    fn client(&self, app: &str, name: &str) -> crate::core::Client {
        crate::core::Client::new(
            crate::core::Peer::RtmpConn,
            self.peer,
            super::auth::query(app, name),
        )
        .in_session(&self.entry)
    }
}

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
