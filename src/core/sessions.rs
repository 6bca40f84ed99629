//! The live connections and sessions of every protocol, for the API (list, get, kick)
//! and the metrics: who, from where, doing what on which path, and the bytes each way.
//! A protocol opens an entry when a client connects and the entry goes with its guard.

use super::Kick;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

/// RTP packets a publishing session received and those it found missing (after
/// reordering), for the API's `inboundRTPPackets`/`inboundRTPPacketsLost`.
#[derive(Default, Debug)]
pub struct RtpCounters {
    pub packets: AtomicU64,
    pub lost: AtomicU64,
}

impl RtpCounters {
    pub fn get(&self) -> (u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

/// Bytes moved by one connection, counted for it and, once it reads or publishes, for
/// its path too (the path's `bytesSent` is the sum of what its readers wrote).
#[derive(Clone, Default, Debug)]
pub struct ByteCounter {
    own: Arc<AtomicU64>,
    path: Option<Arc<AtomicU64>>,
}

impl ByteCounter {
    pub fn add(&self, n: u64) {
        self.own.fetch_add(n, Ordering::Relaxed);
        if let Some(p) = &self.path {
            p.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.own.load(Ordering::Relaxed)
    }

    /// The same count, from now on also added to `path`'s.
    pub fn with_path(&self, path: &Arc<AtomicU64>) -> ByteCounter {
        ByteCounter {
            own: self.own.clone(),
            path: Some(path.clone()),
        }
    }
}

/// What an entry is, as MediaMTX's API names it (`type` in a path's readers, and the
/// route its list is under).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKind {
    RtspConn,
    RtspSession,
    RtspsConn,
    RtspsSession,
    RtmpConn,
    RtmpsConn,
    FlvSession,
    HlsSession,
    WebrtcSession,
    SrtConn,
}

impl SessionKind {
    pub const ALL: [SessionKind; 10] = [
        SessionKind::RtspConn,
        SessionKind::RtspSession,
        SessionKind::RtspsConn,
        SessionKind::RtspsSession,
        SessionKind::RtmpConn,
        SessionKind::RtmpsConn,
        SessionKind::FlvSession,
        SessionKind::HlsSession,
        SessionKind::WebrtcSession,
        SessionKind::SrtConn,
    ];

    pub fn api_name(self) -> &'static str {
        match self {
            SessionKind::RtspConn => "rtspConn",
            SessionKind::RtspSession => "rtspSession",
            SessionKind::RtspsConn => "rtspsConn",
            SessionKind::RtspsSession => "rtspsSession",
            SessionKind::RtmpConn => "rtmpConn",
            SessionKind::RtmpsConn => "rtmpsConn",
            SessionKind::FlvSession => "flvSession",
            SessionKind::HlsSession => "hlsSession",
            SessionKind::WebrtcSession => "webRTCSession",
            SessionKind::SrtConn => "srtConn",
        }
    }

    /// The API's collection: `/v3/<route>/list`.
    pub fn route(self) -> &'static str {
        match self {
            SessionKind::RtspConn => "rtspconns",
            SessionKind::RtspSession => "rtspsessions",
            SessionKind::RtspsConn => "rtspsconns",
            SessionKind::RtspsSession => "rtspssessions",
            SessionKind::RtmpConn => "rtmpconns",
            SessionKind::RtmpsConn => "rtmpsconns",
            SessionKind::FlvSession => "flvsessions",
            SessionKind::HlsSession => "hlssessions",
            SessionKind::WebrtcSession => "webrtcsessions",
            SessionKind::SrtConn => "srtconns",
        }
    }

    pub fn from_route(route: &str) -> Option<SessionKind> {
        SessionKind::ALL.into_iter().find(|k| k.route() == route)
    }

    /// Connections carry sessions; only sessions read or publish (and are kicked).
    pub fn is_conn(self) -> bool {
        matches!(self, SessionKind::RtspConn | SessionKind::RtspsConn)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionState {
    #[default]
    Idle,
    Read,
    Publish,
}

/// What an entry is doing; changes as the client goes from connecting to reading.
#[derive(Clone, Debug, Default)]
pub struct SessionDetail {
    pub state: SessionState,
    pub path: String,
    /// Without the credentials it may carry (see `without_credentials`).
    pub query: String,
    pub user: String,
    pub user_agent: String,
    /// RTSP: `UDP`, `TCP` or `UDP-multicast` once set up.
    pub transport: Option<String>,
    /// An RTSP connection's session, or a session's connection.
    pub linked: Option<u64>,
    /// A WebRTC session's candidate pair (local, remote), once connected.
    pub candidates: Option<(SocketAddr, SocketAddr)>,
}

pub struct Session {
    pub id: u64,
    pub kind: SessionKind,
    pub created: SystemTime,
    pub remote: SocketAddr,
    pub bytes_in: ByteCounter,
    pub bytes_out: ByteCounter,
    pub rtp_in: Arc<RtpCounters>,
    kick: Kick,
    detail: Mutex<SessionDetail>,
}

impl Session {
    fn detail_lock(&self) -> MutexGuard<'_, SessionDetail> {
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn detail(&self) -> SessionDetail {
        self.detail_lock().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut SessionDetail)) {
        f(&mut self.detail_lock())
    }

    /// Fires when the entry is kicked through the API; the protocol closes the client.
    pub fn kicked(&self) -> &Kick {
        &self.kick
    }
}

/// Keeps an entry listed; dropping it (the client left) removes the entry.
pub struct SessionGuard {
    session: Arc<Session>,
    owner: Weak<Sessions>,
}

impl std::ops::Deref for SessionGuard {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(o) = self.owner.upgrade() {
            o.lock().remove(&self.session.id);
        }
    }
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<BTreeMap<u64, Arc<Session>>>,
    /// Entries opened by `open` since the start: connections and HTTP readers (what
    /// nginx-rtmp's `naccepted` counts).
    opened: AtomicU64,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a new entry with its own byte counts.
    pub fn open(self: &Arc<Self>, kind: SessionKind, remote: SocketAddr) -> SessionGuard {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open_counted(kind, remote, Default::default(), Default::default())
    }

    /// Lists a new entry that shares `other`'s byte counts and kick (an RTSP session
    /// moves its bytes over its connection, and kicking it closes that connection).
    pub fn open_sharing(self: &Arc<Self>, kind: SessionKind, other: &Session) -> SessionGuard {
        self.insert(Session {
            id: super::path::next_id(),
            kind,
            created: SystemTime::now(),
            remote: other.remote,
            bytes_in: other.bytes_in.clone(),
            bytes_out: other.bytes_out.clone(),
            rtp_in: Default::default(),
            kick: other.kick.clone(),
            detail: Default::default(),
        })
    }

    fn open_counted(
        self: &Arc<Self>,
        kind: SessionKind,
        remote: SocketAddr,
        bytes_in: ByteCounter,
        bytes_out: ByteCounter,
    ) -> SessionGuard {
        self.insert(Session {
            id: super::path::next_id(),
            kind,
            created: SystemTime::now(),
            remote,
            bytes_in,
            bytes_out,
            rtp_in: Default::default(),
            kick: Kick::default(),
            detail: Default::default(),
        })
    }

    fn insert(self: &Arc<Self>, session: Session) -> SessionGuard {
        let session = Arc::new(session);
        self.lock().insert(session.id, session.clone());
        SessionGuard {
            session,
            owner: Arc::downgrade(self),
        }
    }

    /// The entries of `kind`, oldest first.
    pub fn list(&self, kind: SessionKind) -> Vec<Arc<Session>> {
        self.lock()
            .values()
            .filter(|s| s.kind == kind)
            .cloned()
            .collect()
    }

    pub fn get(&self, kind: SessionKind, id: u64) -> Option<Arc<Session>> {
        self.lock().get(&id).filter(|s| s.kind == kind).cloned()
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Every entry reading or publishing `path`, oldest first.
    pub fn on_path(&self, path: &str) -> Vec<Arc<Session>> {
        let on = |s: &Session| {
            let d = s.detail_lock();
            d.state != SessionState::Idle && d.path == path
        };
        self.lock().values().filter(|s| on(s)).cloned().collect()
    }

    pub fn count(&self, kind: SessionKind) -> usize {
        self.lock().values().filter(|s| s.kind == kind).count()
    }

    /// Tells the client to go; `false` if there is no such entry. The protocol logs
    /// the close with this reason.
    pub fn kick(&self, kind: SessionKind, id: u64) -> bool {
        match self.get(kind, id) {
            Some(s) if !kind.is_conn() => {
                s.kick.kick("kicked through the API");
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_and_go_with_their_guards() {
        let reg = Arc::new(Sessions::default());
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let conn = reg.open(SessionKind::RtspConn, addr);
        let session = reg.open_sharing(SessionKind::RtspSession, &conn);
        conn.bytes_in.add(10);
        assert_eq!(session.bytes_in.get(), 10, "shared counts");
        let path_total = Arc::new(AtomicU64::new(0));
        let out = session.bytes_out.with_path(&path_total);
        out.add(7);
        assert_eq!(conn.bytes_out.get(), 7);
        assert_eq!(path_total.load(Ordering::Relaxed), 7);
        assert_eq!(reg.list(SessionKind::RtspSession).len(), 1);
        assert!(reg.get(SessionKind::RtmpConn, session.id).is_none());
        assert!(
            !reg.kick(SessionKind::RtspConn, conn.id),
            "conns aren't kicked"
        );
        assert!(reg.kick(SessionKind::RtspSession, session.id));
        assert!(session.kicked().is_cancelled());
        assert!(
            conn.kicked().is_cancelled(),
            "a session's kick closes its connection"
        );
        assert_eq!(session.kicked().reason(), "kicked through the API");
        drop(session);
        assert_eq!(reg.count(SessionKind::RtspSession), 0);
        assert_eq!(reg.count(SessionKind::RtspConn), 1);
    }
}
