//! HLS viewers as sessions for the API (`hlssessions`). HTTP has no connection per
//! viewer, so a viewer is one client address, user agent and path seen within `IDLE`;
//! what it downloads is counted for it, for its path and for the path's muxer. A
//! kicked viewer's requests are refused until it starts over at `index.m3u8`, as a
//! MediaMTX viewer whose session is gone must.

use crate::core::{ByteCounter, PathManager, SessionGuard, SessionKind, SessionState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A viewer that asks for nothing this long is gone (players reload the playlist at
/// least every target duration); a kicked one is refused this long.
pub(crate) const IDLE: Duration = Duration::from_secs(30);

type Key = (std::net::IpAddr, String, String);

#[derive(Default)]
struct Viewers {
    live: HashMap<Key, (SessionGuard, ByteCounter, Instant)>,
    /// Viewers kicked through the API, and when.
    kicked: HashMap<Key, Instant>,
}

impl Viewers {
    /// Moves `key` to `kicked` if its session was kicked.
    fn settle(&mut self, key: &Key) {
        if self
            .live
            .get(key)
            .is_some_and(|(s, ..)| s.kicked().is_cancelled())
        {
            if let Some((s, ..)) = self.live.remove(key) {
                tracing::info!(peer = %s.remote, path = %key.2, "HLS session closed: {}", s.kicked().reason());
            }
            self.kicked.insert(key.clone(), Instant::now());
        }
    }
}

#[derive(Default)]
pub(crate) struct HlsSessions {
    viewers: Mutex<Viewers>,
}

fn key(peer: SocketAddr, user_agent: &str, path: &str) -> Key {
    (peer.ip(), user_agent.to_string(), path.to_string())
}

impl HlsSessions {
    fn lock(&self) -> MutexGuard<'_, Viewers> {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this request comes from a kicked viewer and is refused. `starts`: it
    /// asks for the multivariant playlist, where a player starts over (and may).
    pub(crate) fn refused(
        &self,
        peer: SocketAddr,
        user_agent: &str,
        path: &str,
        starts: bool,
    ) -> bool {
        let k = key(peer, user_agent, path);
        let mut v = self.lock();
        v.settle(&k);
        if !v.kicked.contains_key(&k) {
            return false;
        }
        if starts {
            v.kicked.remove(&k);
            return false;
        }
        true
    }

    /// The counter for a reply to `peer` on `path`, listing the viewer if new.
    pub(crate) fn counter(
        &self,
        manager: &PathManager,
        peer: SocketAddr,
        user_agent: &str,
        path: &str,
        query: &str,
    ) -> ByteCounter {
        let now = Instant::now();
        let mut v = self.lock();
        let (_, count, seen) = v
            .live
            .entry(key(peer, user_agent, path))
            .or_insert_with(|| {
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

    /// Forgets viewers idle for `IDLE` and closes kicked ones; run every few seconds
    /// (not per request: a thousand viewers make a long map).
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut v = self.lock();
        let keys: Vec<Key> = v.live.keys().cloned().collect();
        for k in &keys {
            v.settle(k);
        }
        v.live
            .retain(|_, (_, _, seen)| now.duration_since(*seen) < IDLE);
        v.kicked.retain(|_, at| now.duration_since(*at) < IDLE);
    }
}
