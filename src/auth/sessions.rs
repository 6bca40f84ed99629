//! HLS sessions: after a playlist or page request passes the check, a cookie names a
//! session bound to the client's address and the path, so the segment and part
//! requests that follow need no credentials (a `?token=` on the playlist URL isn't
//! repeated on segment URLs by players). Sessions expire after a minute unused.

use sha2::Digest;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "mediarouter_session";
/// A session unused this long is gone.
pub const IDLE: Duration = Duration::from_secs(60);
const MAX_SESSIONS: usize = 10_000;

struct Session {
    ip: IpAddr,
    path: String,
    until: Instant,
}

#[derive(Default)]
pub struct Sessions {
    /// By SHA-256 of the id: a lookup's timing says nothing about stored ids.
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(id: &str) -> [u8; 32] {
    sha2::Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Whether `id` is a live session of `ip` for `path`; using it extends it.
    pub fn valid(&self, id: &str, ip: IpAddr, path: &str) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match map.get_mut(&key(id)) {
            Some(s) if s.until > now && s.ip == ip.to_canonical() && s.path == path => {
                s.until = now + IDLE;
                true
            }
            _ => false,
        }
    }

    /// A new session of `ip` for `path`; its id for the cookie.
    pub fn create(&self, ip: IpAddr, path: &str) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.until > now);
            if map.len() >= MAX_SESSIONS {
                map.clear();
            }
        }
        map.insert(
            key(&id),
            Session {
                ip: ip.to_canonical(),
                path: path.to_string(),
                until: now + IDLE,
            },
        );
        id
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_address_and_path() {
        let s = Sessions::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let id = s.create(ip, "cam");
        assert!(s.valid(&id, ip, "cam"));
        assert!(!s.valid(&id, "10.0.0.2".parse().unwrap(), "cam"));
        assert!(!s.valid(&id, ip, "other"));
        assert!(!s.valid("0123", ip, "cam"));
        s.clear();
        assert!(!s.valid(&id, ip, "cam"));
    }
}
