//! HLS viewers as sessions for the API (`hlssessions`). HTTP has no connection per
//! viewer, so a viewer is one client address, user agent and path seen within `IDLE`;
//! what it downloads is counted for it, for its path and for the path's muxer.

use crate::core::{ByteCounter, PathManager, SessionGuard, SessionKind, SessionState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A viewer that asks for nothing this long is gone (players reload the playlist at
/// least every target duration).
pub(crate) const IDLE: Duration = Duration::from_secs(30);

type Key = (std::net::IpAddr, String, String);

#[derive(Default)]
pub(crate) struct HlsSessions {
    map: Mutex<HashMap<Key, (SessionGuard, ByteCounter, Instant)>>,
}

impl HlsSessions {
    /// The counter for a reply to `peer` on `path`, listing the viewer if new.
    pub(crate) fn counter(
        &self,
        manager: &PathManager,
        peer: SocketAddr,
        user_agent: &str,
        path: &str,
        query: &str,
    ) -> ByteCounter {
        let key = (peer.ip(), user_agent.to_string(), path.to_string());
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (_, count, seen) = map.entry(key).or_insert_with(|| {
            let entry = manager.sessions().open(SessionKind::HlsSession, peer);
            entry.update(|d| {
                d.state = SessionState::Read;
                d.path = path.to_string();
                d.query = crate::core::without_credentials(query);
                d.user_agent = user_agent.to_string();
            });
            let count = match manager.path(path) {
                Some(p) => entry.bytes_out.with_path(p.bytes_sent_counter()),
                None => entry.bytes_out.clone(),
            };
            tracing::debug!(%peer, path, "HLS session created");
            (entry, count, now)
        });
        *seen = now;
        count.clone()
    }

    /// Forgets viewers idle for `IDLE`; run every few seconds (not per request: a
    /// thousand viewers make a long map).
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, _, seen)| now.duration_since(*seen) < IDLE);
    }
}
