//! RTSP request handling for one connection: the session state machine
//! (ANNOUNCE/SETUP/RECORD for publishers, DESCRIBE/SETUP/PLAY for readers).
//! Sync code: it answers a request and tells the connection what to start or stop.

use super::ingest::Ingest;
use super::multicast::{MulticastError, PathGroups};
use super::transport::{self, TrackTransport, TransportError};
use super::udp::{RouteGuard, UdpIn};
use super::url::{control_path, split_track_id, url_path};
use super::Ctx;
use crate::auth;
use crate::core::{self, PathError, Publisher, Stream, StreamReader};
use crate::format::sdp::{self, AnnouncedMedia};
use bytes::Bytes;
use rtsp_types::{headers, Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Seconds a session survives without requests; advertised in the Session header.
pub(crate) const SESSION_TIMEOUT_SECS: u64 = 60;

/// What the connection must do after sending the response.
pub(crate) enum Action {
    None,
    Play(Playback),
    Pause,
    Record(crate::core::Kick),
    Teardown,
    /// Send the response, then close the connection; logged at warn with this reason.
    Close(String),
    /// Wait, then send the response and close: a failed authentication (logged by the
    /// auth gate, once per burst).
    Refuse(std::time::Duration),
}

/// A reader that started playing: its stream cursor and per-track transports.
pub(crate) struct Playback {
    pub reader: StreamReader,
    /// Per stream track; `None` for tracks the client did not set up.
    pub tracks: Vec<Option<TrackTransport>>,
}

struct PublishState {
    path: String,
    publisher: Publisher,
    medias: Vec<AnnouncedMedia>,
    setups: Vec<Option<TrackTransport>>,
    ingest: Option<Ingest>,
    routes: Vec<RouteGuard>,
    /// When a reader's keyframe request was last passed on (see `keyframe_request`).
    last_pli: Option<std::time::Instant>,
}

struct ReadState {
    path: String,
    reader: core::Reader,
    setups: Vec<Option<TrackTransport>>,
    playing: bool,
    routes: Vec<RouteGuard>,
    /// The path's multicast groups, while this reader uses one.
    multicast: Option<Arc<PathGroups>>,
}

enum Role {
    Idle,
    Publish(Box<PublishState>),
    Read(Box<ReadState>),
}

/// Keyframe requests reach a publisher at most this often.
const PLI_MIN_GAP: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) struct Handler {
    /// The SSRC this server's RTCP to the client is sent from.
    pli_ssrc: u32,
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    udp_tx: mpsc::Sender<UdpIn>,
    session_id: Option<String>,
    role: Role,
    auth: super::auth::ConnAuth,
    /// This connection in the API's `rtspconns` (`rtspsconns` over TLS).
    conn_entry: core::SessionGuard,
    /// The session in `rtspsessions`, from ANNOUNCE or the first SETUP to TEARDOWN.
    session_entry: Option<core::SessionGuard>,
    /// What this connection's requests may hold, as configured when it opened.
    pub(crate) limits: crate::format::limits::InputLimits,
}

type Reply = (Response<Vec<u8>>, Action);

impl Handler {
    /// Who this session is, for the slot it takes (hooks and webhooks read it).
    fn client<B>(&self, req: &rtsp_types::Request<B>) -> crate::core::Client {
        let c = crate::core::Client::new(crate::core::Peer::RtspSession, self.peer, &query_of(req));
        match &self.session_entry {
            Some(s) => c.in_session(s),
            None => c,
        }
    }

    pub(crate) fn new(
        ctx: Arc<Ctx>,
        peer: SocketAddr,
        udp_tx: mpsc::Sender<UdpIn>,
        conn_entry: core::SessionGuard,
    ) -> Self {
        Handler {
            pli_ssrc: rand::random(),
            limits: ctx.manager.config().input_limits(),
            ctx,
            peer,
            udp_tx,
            session_id: None,
            role: Role::Idle,
            auth: Default::default(),
            conn_entry,
            session_entry: None,
        }
    }

    pub(crate) fn conn_entry(&self) -> &core::SessionGuard {
        &self.conn_entry
    }

    /// Lists the session that ANNOUNCE or SETUP starts, on `path`.
    fn open_session_entry<B>(&mut self, req: &rtsp_types::Request<B>, path: &str) {
        let kind = match self.conn_entry.kind {
            core::SessionKind::RtspsConn => core::SessionKind::RtspsSession,
            _ => core::SessionKind::RtspSession,
        };
        let entry = self
            .ctx
            .manager
            .sessions()
            .open_sharing(kind, &self.conn_entry);
        let user_agent = req
            .header(&headers::USER_AGENT)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let conn = self.conn_entry.id;
        entry.update(|d| {
            d.path = path.to_string();
            d.query = core::without_credentials(&query_of(req));
            d.user_agent = user_agent;
            d.linked = Some(conn);
        });
        let id = entry.id;
        self.conn_entry.update(|d| d.linked = Some(id));
        self.session_entry = Some(entry);
    }

    fn close_session_entry(&mut self) {
        self.session_entry = None;
        self.conn_entry.update(|d| d.linked = None);
    }

    /// What a playing reader's bytes count into besides the connection: its path's.
    pub(crate) fn reader_bytes_out(&self) -> Option<core::ByteCounter> {
        match &self.role {
            Role::Read(r) => Some(
                self.conn_entry
                    .bytes_out
                    .with_path(r.reader.path().bytes_sent_counter()),
            ),
            _ => None,
        }
    }

    fn set_entry_state(&self, state: core::SessionState, transport: &str) {
        if let Some(e) = &self.session_entry {
            let t = match transport {
                "udp" => "UDP",
                "multicast" => "UDP-multicast",
                _ => "TCP",
            };
            e.update(|d| {
                d.state = state;
                d.transport = Some(t.to_string());
            });
        }
    }

    /// `publisher`/`reader` and the path, for logs.
    pub(crate) fn describe_role(&self) -> Option<(&'static str, &str)> {
        match &self.role {
            Role::Idle => None,
            Role::Publish(p) => Some(("publisher", &p.path)),
            Role::Read(r) => Some(("reader", &r.path)),
        }
    }

    pub(crate) fn is_recording(&self) -> bool {
        matches!(&self.role, Role::Publish(p) if p.ingest.is_some())
    }

    pub(crate) fn records_over_udp(&self) -> bool {
        matches!(&self.role, Role::Publish(p) if p.ingest.is_some() && transport_name(&p.setups) == "udp")
    }

    /// The stream this session publishes, once it records.
    pub(crate) fn recorded_stream(&self) -> Option<Arc<Stream>> {
        match &self.role {
            Role::Publish(p) => p.ingest.as_ref().map(|i| i.stream().clone()),
            _ => None,
        }
    }

    /// A reader asked for a keyframe: the RTCP to send the publisher (a PLI for its
    /// video's SSRC) and how, at most every `PLI_MIN_GAP`. Cameras and encoders that
    /// honour it (GStreamer, most IP cameras) send one at once; others at their next.
    pub(crate) fn keyframe_request(&mut self) -> Option<(TrackTransport, Bytes)> {
        let Role::Publish(p) = &mut self.role else {
            return None;
        };
        let (media, ssrc) = p.ingest.as_ref()?.video_source()?;
        let transport = p.setups.get(media).copied().flatten()?;
        let now = std::time::Instant::now();
        if p.last_pli.is_some_and(|t| now - t < PLI_MIN_GAP) {
            return None;
        }
        p.last_pli = Some(now);
        Some((
            transport,
            crate::format::rtp::rtcp::keyframe_request(self.pli_ssrc, ssrc),
        ))
    }

    /// An interleaved frame from the client. Errors close the connection.
    pub(crate) fn on_interleaved(&mut self, channel: u8, data: Bytes) -> Result<(), String> {
        let Role::Publish(p) = &mut self.role else {
            // Readers send RTCP receiver reports here; nothing to do with them.
            return Ok(());
        };
        let media = p.setups.iter().position(|t| matches!(t, Some(TrackTransport::Tcp { rtp_channel, .. }) if *rtp_channel == channel));
        match (media, p.ingest.as_mut()) {
            (Some(m), Some(ingest)) => ingest
                .push_rtp(m, data)
                .map_err(|e| format!("bad RTP packet on channel {channel}: {e}")),
            _ => Ok(()),
        }
    }

    pub(crate) fn on_udp(&mut self, pkt: UdpIn) -> Result<(), String> {
        if pkt.rtcp {
            return Ok(());
        }
        if let Role::Publish(p) = &mut self.role {
            if let Some(ingest) = p.ingest.as_mut() {
                return ingest
                    .push_rtp(pkt.track, pkt.data)
                    .map_err(|e| format!("bad RTP packet over UDP: {e}"));
            }
        }
        Ok(())
    }

    pub(crate) fn handle(&mut self, req: &Request<Vec<u8>>) -> Reply {
        let Some(cseq) = req.header(&headers::CSEQ).map(|v| v.as_str().to_string()) else {
            let resp = Response::builder(req.version(), StatusCode::BadRequest).build(Vec::new());
            return (resp, Action::Close("request without CSeq".into()));
        };
        if let Some(h) = req.header(&headers::SESSION) {
            let given = h.as_str().split(';').next().unwrap_or_default().trim();
            if self.session_id.as_deref() != Some(given) {
                return only(req, &cseq, StatusCode::SessionNotFound);
            }
        }
        let (mut resp, action) = match req.method() {
            Method::Options => {
                let mut r = status(req, &cseq, StatusCode::Ok);
                r.insert_header(
                    headers::PUBLIC,
                    "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, GET_PARAMETER, SET_PARAMETER, TEARDOWN",
                );
                (r, Action::None)
            }
            Method::Describe => self.describe(req, &cseq),
            Method::Announce => self.announce(req, &cseq),
            Method::Setup => self.setup(req, &cseq),
            Method::Play => self.play(req, &cseq),
            Method::Record => self.record(req, &cseq),
            Method::Pause => self.pause(req, &cseq),
            // The connection ends the session after replying, with its byte counts.
            Method::Teardown => (status(req, &cseq, StatusCode::Ok), Action::Teardown),
            Method::GetParameter | Method::SetParameter => only(req, &cseq, StatusCode::Ok),
            _ => only(req, &cseq, StatusCode::NotImplemented),
        };
        if let Some(id) = &self.session_id {
            resp.insert_header(
                headers::SESSION,
                format!("{id};timeout={SESSION_TIMEOUT_SECS}"),
            );
        }
        (resp, action)
    }
}

fn status(req: &Request<Vec<u8>>, cseq: &str, status: StatusCode) -> Response<Vec<u8>> {
    Response::builder(req.version(), status)
        .header(headers::CSEQ, cseq)
        .header(headers::SERVER, "mediarouter")
        .build(Vec::new())
}

/// A reply with no body and nothing for the connection to do.
fn only(req: &Request<Vec<u8>>, cseq: &str, code: StatusCode) -> Reply {
    (status(req, cseq, code), Action::None)
}

fn path_error(req: &Request<Vec<u8>>, cseq: &str, e: &PathError) -> Response<Vec<u8>> {
    let code = match e {
        PathError::NotConfigured(_) | PathError::NoPublisher(_) | PathError::InvalidName(_) => {
            StatusCode::NotFound
        }
        PathError::PublisherExists(_) | PathError::HasSource(_) | PathError::StageOutput(_) => {
            StatusCode::BadRequest
        }
        PathError::TooManyReaders(..) => StatusCode::ServiceUnavailable,
    };
    status(req, cseq, code)
}

impl Handler {
    /// Checks the credentials of a request that starts reading or publishing (DESCRIBE,
    /// ANNOUNCE, a SETUP without DESCRIBE) before `handle` runs it; `Some` is the refusal
    /// to send instead. Only this connection waits for an auth server.
    pub(crate) async fn authorize(&mut self, req: &Request<Vec<u8>>) -> Option<Reply> {
        let cseq = req.header(&headers::CSEQ)?.as_str().to_string();
        let full = Self::request_path(req)?;
        let (action, path) = match req.method() {
            Method::Describe => (auth::Action::Read, full.clone()),
            Method::Announce => (auth::Action::Publish, full.clone()),
            Method::Setup if matches!(self.role, Role::Idle) => {
                (auth::Action::Read, split_track_id(&full).0.to_string())
            }
            _ => return None,
        };
        let query = query_of(req);
        let asked = super::auth::Asked {
            ip: self.peer.ip(),
            method: req.method().into(),
            authorization: req.header(&headers::AUTHORIZATION).map(|v| v.as_str()),
            request_path: &full,
            query: &query,
            user_agent: req
                .header(&headers::USER_AGENT)
                .map(|v| v.as_str())
                .unwrap_or_default(),
            action,
            path: &path,
        };
        match self.auth.check(&self.ctx.manager, asked).await {
            super::auth::Verdict::Allowed => None,
            super::auth::Verdict::Ask(challenge) => {
                let mut r = status(req, &cseq, StatusCode::Unauthorized);
                r.insert_header(headers::WWW_AUTHENTICATE, challenge);
                Some((r, Action::None))
            }
            super::auth::Verdict::Refuse { forbidden, delay } => {
                let code = if forbidden {
                    StatusCode::Forbidden
                } else {
                    StatusCode::Unauthorized
                };
                Some((status(req, &cseq, code), Action::Refuse(delay)))
            }
        }
    }

    fn request_path(req: &Request<Vec<u8>>) -> Option<String> {
        req.request_uri().map(url_path)
    }

    fn describe(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        let Some(path) = Self::request_path(req) else {
            return only(req, cseq, StatusCode::BadRequest);
        };
        let stream = match self.ctx.manager.stream(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(peer = %self.peer, %path, "DESCRIBE refused: {e}");
                return (path_error(req, cseq, &e), Action::None);
            }
        };
        let tracks: Vec<_> = stream
            .tracks()
            .iter()
            .cloned()
            .zip(stream.payload_types().iter().copied())
            .collect();
        let body = sdp::describe(&tracks).into_bytes();
        let mut base = req.request_uri().map(|u| u.to_string()).unwrap_or_default();
        if !base.ends_with('/') {
            base.push('/');
        }
        let mut r = status(req, cseq, StatusCode::Ok).replace_body(body);
        r.insert_header(headers::CONTENT_TYPE, "application/sdp");
        r.insert_header(headers::CONTENT_BASE, base);
        (r, Action::None)
    }

    fn announce(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        if !matches!(self.role, Role::Idle) {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        }
        let Some(path) = Self::request_path(req) else {
            return only(req, cseq, StatusCode::BadRequest);
        };
        let medias = match sdp::parse_announce(req.body(), self.limits.sdp_medias) {
            Ok(m) => m,
            Err(e) => {
                return (
                    status(req, cseq, StatusCode::BadRequest),
                    Action::Close(format!("invalid SDP in ANNOUNCE: {e}")),
                )
            }
        };
        self.open_session_entry(req, &path);
        let publisher = match self.ctx.manager.add_publisher(&path, self.client(req)) {
            Ok(p) => p,
            Err(e) => {
                self.close_session_entry();
                tracing::warn!(peer = %self.peer, %path, "publish refused: {e}");
                return (path_error(req, cseq, &e), Action::None);
            }
        };
        let n = medias.len();
        self.session_id = Some(new_session_id());
        self.role = Role::Publish(Box::new(PublishState {
            path,
            publisher,
            medias,
            setups: vec![None; n],
            ingest: None,
            last_pli: None,
            routes: Vec::new(),
        }));
        only(req, cseq, StatusCode::Ok)
    }

    fn setup(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        let Some(full) = Self::request_path(req) else {
            return only(req, cseq, StatusCode::BadRequest);
        };
        let used_channels = match &self.role {
            Role::Publish(p) => p.setups.iter().flatten().count(),
            Role::Read(r) => r.setups.iter().flatten().count(),
            Role::Idle => 0,
        };
        let offer = req.header(&headers::TRANSPORT).map(|v| v.as_str());
        // A multicast track gets its group below, once the path's stream is known.
        let multicast = transport::wants_multicast(offer, &self.ctx.transports);
        let t = match transport::negotiate(offer, &self.ctx.transports, (used_channels * 2) as u8) {
            _ if multicast => Ok(None),
            Ok(TrackTransport::Udp { .. }) if self.ctx.udp.is_none() => {
                Err(TransportError::Unsupported)
            }
            other => other.map(Some),
        };
        let t = match t {
            Ok(t) => t,
            Err(TransportError::Invalid) => return only(req, cseq, StatusCode::BadRequest),
            Err(TransportError::Unsupported) => {
                return only(req, cseq, StatusCode::UnsupportedTransport)
            }
        };
        let server_ports = self.ctx.udp.as_ref().map(|u| u.ports());

        if let Role::Publish(p) = &mut self.role {
            if p.ingest.is_some() {
                return only(req, cseq, StatusCode::MethodNotValidInThisState);
            }
            let Some(t) = t else {
                return only(req, cseq, StatusCode::UnsupportedTransport);
            };
            let found = p
                .medias
                .iter()
                .position(|m| control_path(&p.path, m.control.as_deref()) == full)
                .or_else(|| (p.medias.len() == 1 && full == p.path).then_some(0));
            let Some(m) = found else {
                return only(req, cseq, StatusCode::NotFound);
            };
            p.setups[m] = Some(t);
            let mut r = status(req, cseq, StatusCode::Ok);
            r.insert_header(headers::TRANSPORT, transport::reply(&t, server_ports, None));
            return (r, Action::None);
        }

        let (base, track) = split_track_id(&full);
        if let Role::Idle = self.role {
            self.open_session_entry(req, base);
            match self.ctx.manager.add_reader(base, self.client(req)) {
                Ok(reader) => {
                    let n = reader.stream().tracks().len();
                    self.session_id = Some(new_session_id());
                    self.role = Role::Read(Box::new(ReadState {
                        path: base.to_string(),
                        reader,
                        setups: vec![None; n],
                        playing: false,
                        routes: Vec::new(),
                        multicast: None,
                    }));
                }
                Err(e) => {
                    self.close_session_entry();
                    tracing::info!(peer = %self.peer, path = base, "read refused: {e}");
                    return (path_error(req, cseq, &e), Action::None);
                }
            }
        }
        let Role::Read(r) = &mut self.role else {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        };
        if r.path != base || r.playing {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        }
        let index = track.or_else(|| r.setups.iter().position(Option::is_none));
        let Some(index) = index.filter(|i| *i < r.setups.len()) else {
            return only(req, cseq, StatusCode::NotFound);
        };
        let t = match t {
            Some(t) => t,
            None => match multicast_track(&self.ctx, r, index) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(peer = %self.peer, path = %r.path, "multicast SETUP refused: {e}");
                    return only(req, cseq, StatusCode::UnsupportedTransport);
                }
            },
        };
        r.setups[index] = Some(t);
        let ssrc = r.reader.stream().ssrc(index);
        let mut resp = status(req, cseq, StatusCode::Ok);
        resp.insert_header(headers::TRANSPORT, transport::reply(&t, server_ports, ssrc));
        (resp, Action::None)
    }

    fn play(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        let Role::Read(r) = &mut self.role else {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        };
        if r.setups.iter().all(Option::is_none) {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        }
        if r.playing {
            return only(req, cseq, StatusCode::Ok);
        }
        let Some(reader) = r.reader.stream().subscribe_with_lead() else {
            return only(req, cseq, StatusCode::NotFound);
        };
        let base = req
            .request_uri()
            .map(|u| {
                let mut s = u.to_string();
                s.truncate(s.find('?').unwrap_or(s.len()));
                s.trim_end_matches('/').to_string()
            })
            .unwrap_or_default();
        let now = r.reader.stream().rtp_now();
        let rtp_info: Vec<String> = r
            .setups
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                match t {
                    // Multicast packets come from the group's sender, already flowing.
                    Some(TrackTransport::Multicast { .. }) => now.get(i).copied(),
                    Some(_) => reader.rtp_start(i),
                    None => None,
                }
                .map(|(seq, ts)| format!("url={base}/trackID={i};seq={seq};rtptime={ts}"))
            })
            .collect();
        if let Some(udp) = &self.ctx.udp {
            for (i, t) in r.setups.iter().enumerate() {
                if let Some(TrackTransport::Udp { client_rtcp, .. }) = t {
                    let from = SocketAddr::new(self.peer.ip(), *client_rtcp);
                    r.routes.push(udp.route(from, true, i, self.udp_tx.clone()));
                }
            }
        }
        r.playing = true;
        if let Some(g) = &r.multicast {
            g.play();
        }
        let transport = transport_name(&r.setups);
        tracing::info!(peer = %self.peer, path = %r.path, transport, "RTSP reader started");
        let tracks = r.setups.clone();
        self.set_entry_state(core::SessionState::Read, transport);
        let mut resp = status(req, cseq, StatusCode::Ok);
        resp.insert_header(headers::RANGE, "npt=0.000-");
        if !rtp_info.is_empty() {
            resp.insert_header(headers::RTP_INFO, rtp_info.join(","));
        }
        (resp, Action::Play(Playback { reader, tracks }))
    }

    fn record(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        let Role::Publish(p) = &mut self.role else {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        };
        if p.ingest.is_some() || p.setups.iter().all(Option::is_none) {
            return only(req, cseq, StatusCode::MethodNotValidInThisState);
        }
        let mut stream_index = Vec::new();
        let mut tracks = Vec::new();
        for (m, t) in p.medias.iter().zip(&p.setups) {
            stream_index.push(t.map(|_| tracks.len()));
            if t.is_some() {
                tracks.push(m.track.clone());
            }
        }
        let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
        let codecs = codecs.join(", ");
        let stream = Stream::new(tracks, self.ctx.manager.stream_config());
        if let Err(e) = p.publisher.start(stream.clone()) {
            return (path_error(req, cseq, &e), Action::None);
        }
        if let Some(udp) = &self.ctx.udp {
            for (m, t) in p.setups.iter().enumerate() {
                if let Some(TrackTransport::Udp {
                    client_rtp,
                    client_rtcp,
                }) = t
                {
                    for (port, rtcp) in [(*client_rtp, false), (*client_rtcp, true)] {
                        let from = SocketAddr::new(self.peer.ip(), port);
                        p.routes.push(udp.route(from, rtcp, m, self.udp_tx.clone()));
                    }
                }
            }
        }
        let mut ingest = Ingest::new(stream, &p.medias, &stream_index);
        if p.setups
            .iter()
            .any(|t| matches!(t, Some(TrackTransport::Udp { .. })))
        {
            ingest = ingest.reordering();
        }
        if let Some(e) = &self.session_entry {
            ingest = ingest.counting(e.rtp_in.clone());
        }
        p.ingest = Some(ingest);
        let transport = transport_name(&p.setups);
        tracing::info!(peer = %self.peer, path = %p.path, transport, tracks = %codecs, "RTSP publisher started");
        let token = p.publisher.cancelled().clone();
        self.set_entry_state(core::SessionState::Publish, transport);
        (status(req, cseq, StatusCode::Ok), Action::Record(token))
    }

    fn pause(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> Reply {
        match &mut self.role {
            Role::Read(r) => {
                r.playing = false;
                r.routes.clear();
                (status(req, cseq, StatusCode::Ok), Action::Pause)
            }
            // Recording → Ready (RFC 2326 §10.6): the stream ends, the path stays this
            // client's, and a later RECORD starts a new stream. GStreamer's
            // rtspclientsink pauses before its TEARDOWN.
            Role::Publish(p) if p.ingest.is_some() => {
                p.ingest = None;
                p.routes.clear();
                p.publisher.end_stream();
                tracing::info!(peer = %self.peer, path = %p.path, "RTSP publisher paused");
                (status(req, cseq, StatusCode::Ok), Action::None)
            }
            _ => only(req, cseq, StatusCode::MethodNotValidInThisState),
        }
    }

    /// Drops the publisher or reader slot; logs one line for a session that had started.
    pub(crate) fn end_session(&mut self, reason: &str, bytes_in: u64, bytes_out: u64) {
        let ended = match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Publish(p) if p.ingest.is_some() => {
                Some(("publisher", p.path, transport_name(&p.setups)))
            }
            Role::Read(r) if r.playing => Some(("reader", r.path, transport_name(&r.setups))),
            _ => None,
        };
        if let Some((role, path, transport)) = ended {
            tracing::info!(peer = %self.peer, %path, transport, bytes_in, bytes_out, "RTSP {role} closed: {reason}");
        }
        self.session_id = None;
        self.close_session_entry();
    }
}

/// Track `index` of reader `r` on the path's multicast group.
fn multicast_track(ctx: &Ctx, r: &mut ReadState, index: usize) -> Result<TrackTransport, String> {
    let mc = ctx
        .multicast
        .as_ref()
        .ok_or("multicast is not in rtspTransports")?;
    let groups = match &r.multicast {
        Some(g) => g.clone(),
        None => mc
            .join(&r.path, r.reader.stream())
            .map_err(|e: MulticastError| e.to_string())?,
    };
    let group = *groups.groups.get(index).ok_or("no such track")?;
    r.multicast = Some(groups);
    Ok(TrackTransport::Multicast {
        group,
        rtp_port: mc.rtp_port,
        rtcp_port: mc.rtcp_port,
    })
}

fn transport_name(setups: &[Option<TrackTransport>]) -> &'static str {
    if setups
        .iter()
        .flatten()
        .any(|t| matches!(t, TrackTransport::Multicast { .. }))
    {
        return "multicast";
    }
    if setups
        .iter()
        .flatten()
        .any(|t| matches!(t, TrackTransport::Udp { .. }))
    {
        "udp"
    } else {
        "tcp"
    }
}

fn new_session_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The request URL's query, as sent.
fn query_of<B>(req: &rtsp_types::Request<B>) -> String {
    req.request_uri()
        .and_then(|u| u.query())
        .unwrap_or_default()
        .to_string()
}
