//! A path: one publisher at a time, its stream, and its readers (who they are, for
//! `maxReaders` and the API).

use super::Stream;
use crate::config::webhook::Event;
use crate::config::PathConf;
use crate::hooks::{Hooks, Running, Spec};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// Tells a publisher to go, and why: another publisher took the path, or a reload
/// removed the path or made it pull from a source.
#[derive(Clone, Default)]
pub struct Kick {
    token: CancellationToken,
    reason: Arc<std::sync::OnceLock<&'static str>>,
}

impl Kick {
    pub(crate) fn kick(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once kicked.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Why the publisher was told to go; for logs.
    pub fn reason(&self) -> &'static str {
        self.reason
            .get()
            .copied()
            .unwrap_or("replaced by another publisher")
    }
}

/// Resolves with the reason once `kick` (if any) fires.
pub async fn kicked(kick: Option<&Kick>) -> &'static str {
    match kick {
        Some(k) => {
            k.cancelled().await;
            k.reason()
        }
        None => std::future::pending().await,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("path '{0}' is not configured")]
    NotConfigured(String),
    #[error("invalid path name: {0}")]
    InvalidName(String),
    #[error("no one is publishing to path '{0}'")]
    NoPublisher(String),
    #[error("path '{0}' already has a publisher and overridePublisher is off")]
    PublisherExists(String),
    #[error("path '{0}' has reached maxReaders ({1})")]
    TooManyReaders(String, u32),
    #[error("path '{0}' pulls from a source; it can't be published to")]
    HasSource(String),
    #[error("path '{0}' is written by its path's transcode stage; it can't be published to")]
    StageOutput(String),
}

/// What holds a publisher or reader slot, as the API names it (MediaMTX's names
/// where it has the same kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    RtspSession,
    RtmpConn,
    RtspSource,
    RtspsSource,
    RtmpSource,
    HlsSource,
    HlsMuxer,
    FlvConn,
    WebrtcSession,
    SrtConn,
    /// A client pushing HLS over HTTP (PUT/POST).
    HlsPublisher,
    Push,
    Transcoder,
    Recorder,
}

impl Peer {
    pub fn api_name(self) -> &'static str {
        match self {
            Peer::RtspSession => "rtspSession",
            Peer::RtmpConn => "rtmpConn",
            Peer::RtspSource => "rtspSource",
            Peer::RtspsSource => "rtspsSource",
            Peer::RtmpSource => "rtmpSource",
            Peer::HlsSource => "hlsSource",
            Peer::HlsMuxer => "hlsMuxer",
            Peer::FlvConn => "flvSession",
            Peer::WebrtcSession => "webRTCSession",
            Peer::SrtConn => "srtConn",
            Peer::HlsPublisher => "hlsPublisher",
            Peer::Push => "push",
            Peer::Transcoder => "transcoder",
            Peer::Recorder => "recorder",
        }
    }
}

impl Peer {
    /// The protocol webhooks name (`rtsp`, `rtmp`, `hls`, …).
    pub fn protocol(self) -> &'static str {
        match self {
            Peer::RtspSession => "rtsp",
            Peer::RtmpConn => "rtmp",
            Peer::RtspSource | Peer::RtspsSource => "rtspSource",
            Peer::RtmpSource => "rtmpSource",
            Peer::HlsSource => "hlsSource",
            Peer::HlsMuxer => "hls",
            Peer::FlvConn => "httpFlv",
            Peer::WebrtcSession => "webrtc",
            Peer::SrtConn => "srt",
            Peer::HlsPublisher => "hls",
            Peer::Push => "push",
            Peer::Transcoder => "transcoder",
            Peer::Recorder => "record",
        }
    }
}

/// Who holds a slot: its kind, and where it came from and with what query when a
/// client does (for hooks and webhooks).
#[derive(Debug, Clone)]
pub struct Client {
    pub peer: Peer,
    pub addr: Option<SocketAddr>,
    pub query: String,
    /// The API entry (`sessions`) of the connection taking the slot: the slot gets
    /// its id, so a path's readers point at entries that can be kicked.
    pub session: Option<(super::SessionKind, u64)>,
}

impl Client {
    /// A client at `addr`; the credentials its query may carry (`pass`, `token`,
    /// `jwt`) are left out, so hooks and webhooks never see them.
    pub fn new(peer: Peer, addr: SocketAddr, query: &str) -> Client {
        Client {
            peer,
            addr: Some(addr),
            query: without_credentials(query),
            session: None,
        }
    }

    /// The same client, taking its slot as API entry `s`.
    pub fn in_session(mut self, s: &super::Session) -> Client {
        self.session = Some((s.kind, s.id));
        self
    }

    /// The type a path's readers and source list this client as.
    fn api_type(&self) -> &'static str {
        self.session
            .map_or_else(|| self.peer.api_name(), |(k, _)| k.api_name())
    }

    fn slot_id(&self) -> u64 {
        self.session.map_or_else(next_id, |(_, id)| id)
    }
}

/// A URL query without the credentials it may carry (`pass`, `password`, `token`,
/// `jwt`), for hooks and webhooks.
pub fn without_credentials(query: &str) -> String {
    let secret = |k: &str| matches!(k, "pass" | "password" | "token" | "jwt");
    query
        .split('&')
        .filter(|kv| !kv.is_empty() && !secret(kv.split('=').next().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("&")
}

impl From<Peer> for Client {
    fn from(peer: Peer) -> Client {
        Client {
            peer,
            addr: None,
            query: String::new(),
            session: None,
        }
    }
}

/// A path as it is now, for the API.
#[derive(Debug, Clone, Default)]
pub struct PathInfo {
    pub name: String,
    /// The publisher or source filling the path: its type (as the API names it) and
    /// slot id.
    pub source: Option<(&'static str, u64)>,
    /// When the current stream became readable; `None` while there is none.
    pub ready_time: Option<SystemTime>,
    pub tracks: Vec<super::Track>,
    /// Type (as the API names it), slot id and kind of each reader.
    pub readers: Vec<(&'static str, u64, Peer)>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Bits per second in and out over the last few seconds (see `sample_rates`).
    pub inbound_bitrate: u64,
    pub outbound_bitrate: u64,
}

/// The stream is readable: the hooks that run while it is, and who fills it.
struct Ready {
    running: Vec<Running>,
    env: Vec<(String, String)>,
    client: Client,
    id: u64,
}

#[derive(Default)]
struct PathState {
    publisher: Option<(u64, Kick, Client)>,
    stream: Option<Arc<Stream>>,
    ready_time: Option<SystemTime>,
    readers: Vec<(u64, Peer, &'static str)>,
    ready: Option<Ready>,
    /// Bytes, reader lags and readers dropped of the streams that ended (the current
    /// one counts its own).
    received_before: u64,
    lags_before: u64,
    dropped_before: u64,
}

/// Bytes in and out at the last few `sample_rates` ticks, oldest first.
#[derive(Default)]
struct Rates {
    samples: std::collections::VecDeque<(std::time::Instant, u64, u64)>,
}

/// How far back bitrates look.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

impl Rates {
    fn sample(&mut self, now: std::time::Instant, rx: u64, tx: u64) {
        self.samples.push_back((now, rx, tx));
        while self
            .samples
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// (in, out) in bits per second between the oldest and newest samples.
    fn bitrates(&self) -> (u64, u64) {
        let (Some(a), Some(b)) = (self.samples.front(), self.samples.back()) else {
            return (0, 0);
        };
        let secs = b.0.duration_since(a.0).as_secs_f64();
        if secs < 0.5 {
            return (0, 0);
        }
        let rate = |x: u64, y: u64| (y.saturating_sub(x) as f64 * 8.0 / secs) as u64;
        (rate(a.1, b.1), rate(a.2, b.2))
    }
}

pub struct Path {
    name: String,
    /// The `paths:` entry it was made from (`cam`, `~^cams/(\d+)$`, `all_others`), and
    /// its settings; a reload may replace both.
    conf: Mutex<(String, Arc<PathConf>)>,
    state: Mutex<PathState>,
    /// Called when the path has neither publisher nor readers, so the manager can forget it.
    on_idle: Box<dyn Fn(&str) + Send + Sync>,
    /// Told the path's name each time a publisher makes a stream readable.
    ready: tokio::sync::broadcast::Sender<String>,
    hooks: Arc<Hooks>,
    /// The groups of the regex entry that matched (`G1`… in hooks).
    captures: Mutex<Vec<String>>,
    /// What readers wrote to their clients, counted as they write.
    bytes_sent: Arc<AtomicU64>,
    rates: Mutex<Rates>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a slot or an API entry (one sequence, so they never collide).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Path {
    pub(crate) fn new(
        name: String,
        conf_name: String,
        conf: Arc<PathConf>,
        on_idle: Box<dyn Fn(&str) + Send + Sync>,
        ready: tokio::sync::broadcast::Sender<String>,
        hooks: Arc<Hooks>,
        captures: Vec<String>,
    ) -> Arc<Path> {
        Arc::new(Path {
            name,
            conf: Mutex::new((conf_name, conf)),
            state: Mutex::new(PathState::default()),
            on_idle,
            ready,
            hooks,
            captures: Mutex::new(captures),
            bytes_sent: Default::default(),
            rates: Default::default(),
        })
    }

    /// What every hook of this path gets: `MTX_PATH`, `RTSP_PORT`, `G1`….
    fn hook_env(&self) -> Vec<(String, String)> {
        let captures = self.captures.lock().unwrap_or_else(|e| e.into_inner());
        self.hooks.path_env(&self.name, &captures)
    }

    /// Tells the path's webhooks of `event` by `client` (slot `id`).
    fn webhook(&self, event: Event, client: &Client, id: u64) {
        let conf = self.conf();
        if conf.webhooks.is_empty() {
            return;
        }
        let reader = matches!(event, Event::Read | Event::Unread);
        let kind = || Some(client.peer.api_name());
        let payload = crate::hooks::webhook::Payload {
            event,
            path: self.name.clone(),
            protocol: client.peer.protocol(),
            peer: client.addr.map(|a| a.to_string()),
            source_type: if reader { None } else { kind() },
            source_id: (!reader).then(|| id.to_string()),
            reader_type: if reader { kind() } else { None },
            reader_id: reader.then(|| id.to_string()),
            query: client.query.clone(),
            time: crate::hooks::webhook::now_ms(),
            segment_path: None,
            segment_duration: None,
        };
        self.hooks.notify(&conf.webhooks, payload);
    }

    /// A recording segment was created (`duration`: completed): its hook and webhooks.
    pub fn record_segment(&self, file: &str, duration: Option<std::time::Duration>) {
        let conf = self.conf();
        let (hook, cmd, event) = match duration {
            None => (
                "runOnRecordSegmentCreate",
                conf.run_on_record_segment_create.clone(),
                Event::RecordSegmentCreate,
            ),
            Some(_) => (
                "runOnRecordSegmentComplete",
                conf.run_on_record_segment_complete.clone(),
                Event::RecordSegmentComplete,
            ),
        };
        let secs = duration.map(|d| d.as_secs_f64());
        let mut env = self.hook_env();
        env.push(("MTX_SEGMENT_PATH".into(), file.to_string()));
        if let Some(s) = secs {
            env.push(("MTX_SEGMENT_DURATION".into(), s.to_string()));
        }
        self.hooks.run(Spec {
            hook,
            cmd,
            env,
            restart: false,
        });
        if !conf.webhooks.is_empty() {
            let payload = crate::hooks::webhook::Payload {
                event,
                path: self.name.clone(),
                protocol: "record",
                peer: None,
                source_type: None,
                source_id: None,
                reader_type: Some("recorder"),
                reader_id: None,
                query: String::new(),
                time: crate::hooks::webhook::now_ms(),
                segment_path: Some(file.to_string()),
                segment_duration: secs,
            };
            self.hooks.notify(&conf.webhooks, payload);
        }
    }

    /// The stream became readable: `runOnAvailable` and `runOnOnline` start.
    fn stream_ready(&self, st: &mut PathState) {
        let Some((id, _, client)) = st.publisher.clone() else {
            return;
        };
        self.webhook(Event::Ready, &client, id);
        let conf = self.conf();
        let mut ready = Ready {
            running: Vec::new(),
            env: Vec::new(),
            client,
            id,
        };
        let commands = [
            &conf.run_on_available,
            &conf.run_on_online,
            &conf.run_on_unavailable,
            &conf.run_on_offline,
        ];
        if commands.iter().any(|c| !c.trim().is_empty()) {
            let mut env = self.hook_env();
            env.push((
                "MTX_SOURCE_TYPE".into(),
                ready.client.peer.api_name().into(),
            ));
            env.push(("MTX_SOURCE_ID".into(), id.to_string()));
            env.push(("MTX_QUERY".into(), ready.client.query.clone()));
            ready.running = [
                (
                    "runOnAvailable",
                    &conf.run_on_available,
                    conf.run_on_available_restart,
                ),
                (
                    "runOnOnline",
                    &conf.run_on_online,
                    conf.run_on_online_restart,
                ),
            ]
            .into_iter()
            .filter_map(|(hook, cmd, restart)| {
                self.hooks.start(Spec {
                    hook,
                    cmd: cmd.clone(),
                    env: env.clone(),
                    restart,
                })
            })
            .collect();
            ready.env = env;
        }
        st.ready = Some(ready);
    }

    /// Ends the current stream, if any (readers see its end): the ready hooks stop and
    /// `runOnUnavailable`/`runOnOffline` run.
    fn end_stream(&self, st: &mut PathState) {
        if let Some(s) = st.stream.take() {
            st.received_before += s.stats.bytes_in.load(Ordering::Relaxed);
            st.lags_before += s.stats.reader_lags.load(Ordering::Relaxed);
            st.dropped_before += s.stats.readers_dropped.load(Ordering::Relaxed);
            s.close();
        }
        let Some(ready) = st.ready.take() else {
            return;
        };
        drop(ready.running);
        self.webhook(Event::NotReady, &ready.client, ready.id);
        if ready.env.is_empty() {
            return;
        }
        let conf = self.conf();
        for (hook, cmd) in [
            ("runOnUnavailable", &conf.run_on_unavailable),
            ("runOnOffline", &conf.run_on_offline),
        ] {
            self.hooks.run(Spec {
                hook,
                cmd: cmd.clone(),
                env: ready.env.clone(),
                restart: false,
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, PathState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn conf_lock(&self) -> MutexGuard<'_, (String, Arc<PathConf>)> {
        self.conf.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn conf_name(&self) -> String {
        self.conf_lock().0.clone()
    }

    pub fn conf(&self) -> Arc<PathConf> {
        self.conf_lock().1.clone()
    }

    /// A reload's new entry and settings; they apply to publishers and readers that
    /// come next (a lower `maxReaders` disconnects no one).
    pub(crate) fn set_conf(&self, conf_name: String, conf: Arc<PathConf>, captures: Vec<String>) {
        *self.conf_lock() = (conf_name, conf);
        *self.captures.lock().unwrap_or_else(|e| e.into_inner()) = captures;
    }

    /// Ends the path for a reload that removed it: its publisher is told to go (the
    /// connection closes) and readers see the stream end.
    pub(crate) fn close(&self, reason: &'static str) {
        let mut st = self.lock();
        if let Some((_, token, _)) = &st.publisher {
            token.kick(reason);
        }
        self.end_stream(&mut st);
    }

    pub fn stream(&self) -> Option<Arc<Stream>> {
        self.lock().stream.clone()
    }

    pub fn readers(&self) -> usize {
        self.lock().readers.len()
    }

    /// Readers that keep an on-demand source (or `runOnDemand`) going: all but the
    /// recorder, which records while someone else wants the stream.
    pub fn demanding_readers(&self) -> usize {
        self.lock()
            .readers
            .iter()
            .filter(|(_, p, _)| *p != Peer::Recorder)
            .count()
    }

    /// What the readers' connections add their bytes to (see `ByteCounter::with_path`).
    pub fn bytes_sent_counter(&self) -> &Arc<AtomicU64> {
        &self.bytes_sent
    }

    /// (received, sent): media bytes the publishers put in, bytes readers wrote out.
    pub fn traffic(&self) -> (u64, u64) {
        let st = self.lock();
        let current = st
            .stream
            .as_ref()
            .map_or(0, |s| s.stats.bytes_in.load(Ordering::Relaxed));
        (
            st.received_before + current,
            self.bytes_sent.load(Ordering::Relaxed),
        )
    }

    /// (lags, dropped): times a reader fell behind and skipped to a keyframe, readers
    /// disconnected for staying behind.
    pub fn reader_stats(&self) -> (u64, u64) {
        let st = self.lock();
        let (lags, dropped) = st.stream.as_ref().map_or((0, 0), |s| {
            (
                s.stats.reader_lags.load(Ordering::Relaxed),
                s.stats.readers_dropped.load(Ordering::Relaxed),
            )
        });
        (st.lags_before + lags, st.dropped_before + dropped)
    }

    /// Notes the byte counts now, for the bitrates (called about once a second).
    pub(crate) fn sample_rates(&self, now: std::time::Instant) {
        let (rx, tx) = self.traffic();
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(now, rx, tx);
    }

    pub fn info(&self) -> PathInfo {
        let (bytes_received, bytes_sent) = self.traffic();
        let (inbound_bitrate, outbound_bitrate) = self
            .rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bitrates();
        let st = self.lock();
        PathInfo {
            name: self.name.clone(),
            source: st.publisher.as_ref().map(|(id, _, c)| (c.api_type(), *id)),
            ready_time: st.stream.as_ref().and(st.ready_time),
            tracks: st
                .stream
                .as_ref()
                .map_or_else(Vec::new, |s| s.tracks().to_vec()),
            readers: st
                .readers
                .iter()
                .map(|(id, peer, kind)| (*kind, *id, *peer))
                .collect(),
            bytes_received,
            bytes_sent,
            inbound_bitrate,
            outbound_bitrate,
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        let st = self.lock();
        st.publisher.is_none() && st.readers.is_empty()
    }

    /// Claims the publisher slot. With `overridePublisher` the current publisher is
    /// cancelled (its connection closes) and its stream ends.
    pub(crate) fn add_publisher(self: &Arc<Self>, client: Client) -> Result<Publisher, PathError> {
        let mut st = self.lock();
        if let Some((_, token, _)) = &st.publisher {
            if !self.conf().override_publisher {
                return Err(PathError::PublisherExists(self.name.clone()));
            }
            token.kick("replaced by another publisher");
            self.end_stream(&mut st);
        }
        let id = client.slot_id();
        let token = Kick::default();
        st.publisher = Some((id, token.clone(), client.clone()));
        drop(st);
        self.webhook(Event::Publish, &client, id);
        Ok(Publisher {
            path: self.clone(),
            id,
            cancelled: token,
            client,
        })
    }

    pub(crate) fn add_reader(self: &Arc<Self>, client: Client) -> Result<Reader, PathError> {
        let peer = client.peer;
        let mut st = self.lock();
        let stream = st
            .stream
            .clone()
            .ok_or_else(|| PathError::NoPublisher(self.name.clone()))?;
        let max = self.conf().max_readers;
        // maxReaders counts the clients; the path's own recorder is no client.
        let clients = || {
            st.readers
                .iter()
                .filter(|(_, p, _)| *p != Peer::Recorder)
                .count()
        };
        if max != 0 && peer != Peer::Recorder && clients() >= max as usize {
            return Err(PathError::TooManyReaders(self.name.clone(), max));
        }
        let id = client.slot_id();
        st.readers.push((id, peer, client.api_type()));
        drop(st);
        self.webhook(Event::Read, &client, id);
        let conf = self.conf();
        let hooks = (!conf.run_on_read.trim().is_empty() || !conf.run_on_unread.trim().is_empty())
            .then(|| {
                let mut env = self.hook_env();
                env.push(("MTX_READER_TYPE".into(), peer.api_name().into()));
                env.push(("MTX_READER_ID".into(), id.to_string()));
                env.push(("MTX_QUERY".into(), client.query.clone()));
                let running = self.hooks.start(Spec {
                    hook: "runOnRead",
                    cmd: conf.run_on_read.clone(),
                    env: env.clone(),
                    restart: conf.run_on_read_restart,
                });
                (running, env)
            });
        Ok(Reader {
            path: self.clone(),
            id,
            stream,
            hooks,
            client,
        })
    }

    fn after_release(&self) {
        if self.is_idle() {
            (self.on_idle)(&self.name);
        }
    }
}

/// The publisher slot of a path; dropping it ends the stream.
pub struct Publisher {
    path: Arc<Path>,
    id: u64,
    cancelled: Kick,
    client: Client,
}

impl Publisher {
    pub fn path(&self) -> &Arc<Path> {
        &self.path
    }

    /// Cancelled when another publisher takes over the path or the path is removed.
    pub fn cancelled(&self) -> &Kick {
        &self.cancelled
    }

    /// Ends the current stream (readers see its end) but keeps the slot, as a source
    /// does between reconnections.
    pub fn end_stream(&self) {
        let mut st = self.path.lock();
        if st
            .publisher
            .as_ref()
            .is_some_and(|(id, _, _)| *id == self.id)
        {
            self.path.end_stream(&mut st);
        }
    }

    /// Makes the stream readable. Called once the publisher's tracks are known.
    pub fn start(&self, stream: Arc<Stream>) -> Result<(), PathError> {
        let mut st = self.path.lock();
        match &st.publisher {
            Some((id, _, _)) if *id == self.id => {
                self.path.end_stream(&mut st);
                st.stream = Some(stream);
                st.ready_time = Some(SystemTime::now());
                self.path.stream_ready(&mut st);
                drop(st);
                // No receiver is fine: nobody asked to hear of streams starting.
                let _ = self.path.ready.send(self.path.name.clone());
                Ok(())
            }
            _ => Err(PathError::NoPublisher(self.path.name.clone())),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        {
            let mut st = self.path.lock();
            if st
                .publisher
                .as_ref()
                .is_some_and(|(id, _, _)| *id == self.id)
            {
                st.publisher = None;
                self.path.end_stream(&mut st);
            }
        }
        self.path.webhook(Event::Unpublish, &self.client, self.id);
        self.path.after_release();
    }
}

/// A reader's claim on a path (counted for `maxReaders`); dropping it releases the slot.
pub struct Reader {
    path: Arc<Path>,
    id: u64,
    stream: Arc<Stream>,
    /// `runOnRead` while reading, and the environment `runOnUnread` gets.
    hooks: Option<(Option<Running>, crate::hooks::Env)>,
    client: Client,
}

impl Reader {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub fn path(&self) -> &Arc<Path> {
        &self.path
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.path.lock().readers.retain(|(id, ..)| *id != self.id);
        self.path.webhook(Event::Unread, &self.client, self.id);
        if let Some((running, env)) = self.hooks.take() {
            drop(running);
            self.path.hooks.run(Spec {
                hook: "runOnUnread",
                cmd: self.path.conf().run_on_unread.clone(),
                env,
                restart: false,
            });
        }
        self.path.after_release();
    }
}
