//! A path: one publisher at a time, its stream, and its readers (who they are, for
//! `maxReaders` and the API).

use super::Stream;
use crate::config::PathConf;
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
    Push,
    Transcoder,
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
            Peer::FlvConn => "httpFlvConn",
            Peer::Push => "push",
            Peer::Transcoder => "transcoder",
        }
    }
}

/// A path as it is now, for the API.
#[derive(Debug, Clone)]
pub struct PathInfo {
    pub name: String,
    /// The publisher or source filling the path, with its slot id.
    pub source: Option<(Peer, u64)>,
    /// When the current stream became readable; `None` while there is none.
    pub ready_time: Option<SystemTime>,
    pub tracks: Vec<String>,
    pub readers: Vec<(Peer, u64)>,
}

#[derive(Default)]
struct PathState {
    publisher: Option<(u64, Kick, Peer)>,
    stream: Option<Arc<Stream>>,
    ready_time: Option<SystemTime>,
    readers: Vec<(u64, Peer)>,
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
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Path {
    pub(crate) fn new(
        name: String,
        conf_name: String,
        conf: Arc<PathConf>,
        on_idle: Box<dyn Fn(&str) + Send + Sync>,
        ready: tokio::sync::broadcast::Sender<String>,
    ) -> Arc<Path> {
        Arc::new(Path {
            name,
            conf: Mutex::new((conf_name, conf)),
            state: Mutex::new(PathState::default()),
            on_idle,
            ready,
        })
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
    pub(crate) fn set_conf(&self, conf_name: String, conf: Arc<PathConf>) {
        *self.conf_lock() = (conf_name, conf);
    }

    /// Ends the path for a reload that removed it: its publisher is told to go (the
    /// connection closes) and readers see the stream end.
    pub(crate) fn close(&self, reason: &'static str) {
        let mut st = self.lock();
        if let Some((_, token, _)) = &st.publisher {
            token.kick(reason);
        }
        if let Some(s) = st.stream.take() {
            s.close();
        }
    }

    pub fn stream(&self) -> Option<Arc<Stream>> {
        self.lock().stream.clone()
    }

    pub fn readers(&self) -> usize {
        self.lock().readers.len()
    }

    pub fn info(&self) -> PathInfo {
        let st = self.lock();
        PathInfo {
            name: self.name.clone(),
            source: st.publisher.as_ref().map(|(id, _, peer)| (*peer, *id)),
            ready_time: st.stream.as_ref().and(st.ready_time),
            tracks: st.stream.as_ref().map_or_else(Vec::new, |s| {
                s.tracks()
                    .iter()
                    .map(|t| t.codec.name().to_string())
                    .collect()
            }),
            readers: st.readers.iter().map(|(id, peer)| (*peer, *id)).collect(),
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        let st = self.lock();
        st.publisher.is_none() && st.readers.is_empty()
    }

    /// Claims the publisher slot. With `overridePublisher` the current publisher is
    /// cancelled (its connection closes) and its stream ends.
    pub(crate) fn add_publisher(self: &Arc<Self>, peer: Peer) -> Result<Publisher, PathError> {
        let mut st = self.lock();
        if let Some((_, token, _)) = &st.publisher {
            if !self.conf().override_publisher {
                return Err(PathError::PublisherExists(self.name.clone()));
            }
            token.kick("replaced by another publisher");
            if let Some(s) = st.stream.take() {
                s.close();
            }
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let token = Kick::default();
        st.publisher = Some((id, token.clone(), peer));
        Ok(Publisher {
            path: self.clone(),
            id,
            cancelled: token,
        })
    }

    pub(crate) fn add_reader(self: &Arc<Self>, peer: Peer) -> Result<Reader, PathError> {
        let mut st = self.lock();
        let stream = st
            .stream
            .clone()
            .ok_or_else(|| PathError::NoPublisher(self.name.clone()))?;
        let max = self.conf().max_readers;
        if max != 0 && st.readers.len() >= max as usize {
            return Err(PathError::TooManyReaders(self.name.clone(), max));
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        st.readers.push((id, peer));
        Ok(Reader {
            path: self.clone(),
            id,
            stream,
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
            if let Some(s) = st.stream.take() {
                s.close();
            }
        }
    }

    /// Makes the stream readable. Called once the publisher's tracks are known.
    pub fn start(&self, stream: Arc<Stream>) -> Result<(), PathError> {
        let mut st = self.path.lock();
        match &st.publisher {
            Some((id, _, _)) if *id == self.id => {
                if let Some(old) = st.stream.replace(stream) {
                    old.close();
                }
                st.ready_time = Some(SystemTime::now());
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
                if let Some(s) = st.stream.take() {
                    s.close();
                }
            }
        }
        self.path.after_release();
    }
}

/// A reader's claim on a path (counted for `maxReaders`); dropping it releases the slot.
pub struct Reader {
    path: Arc<Path>,
    id: u64,
    stream: Arc<Stream>,
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
        self.path.lock().readers.retain(|(id, _)| *id != self.id);
        self.path.after_release();
    }
}
