//! The check every listener runs: the user list over a request, a short memory of
//! successes so that HLS segment requests don't re-run argon2, and the failure log.

use super::failures::Failures;
use super::{authenticate, Action, Credentials, Denied, InternalUser};
use sha2::Digest;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a success with the same credentials, from the same address, for the same
/// action and path, is taken as proof without checking the password again.
pub const REMEMBER: Duration = Duration::from_secs(60);
const MAX_REMEMBERED: usize = 10_000;

/// One request to be allowed or refused.
pub struct Request<'a> {
    pub ip: IpAddr,
    pub action: Action,
    pub path: &'a str,
    pub creds: &'a Credentials,
    /// The RTSP method a Digest response was computed for.
    pub method: &'a str,
    /// `rtsp`, `rtmp`, `hls`, … for the failure log.
    pub protocol: &'static str,
}

#[derive(Default)]
pub struct Gate {
    failures: Failures,
    /// SHA-256 of (address, action, path, user, password) → when it stops counting.
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Gate {
    pub fn check(
        &self,
        users: &[InternalUser],
        req: &Request<'_>,
    ) -> Result<Option<String>, Denied> {
        let key = match req.creds {
            Credentials::Basic { user, pass } => {
                let mut h = sha2::Sha256::new();
                for part in [
                    req.ip.to_canonical().to_string().as_bytes(),
                    req.action.as_str().as_bytes(),
                    req.path.as_bytes(),
                    user.as_bytes(),
                    pass.as_bytes(),
                ] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part);
                }
                let key: [u8; 32] = h.finalize().into();
                let now = Instant::now();
                let map = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
                if map.get(&key).is_some_and(|until| *until > now) {
                    return Ok(Some(user.clone()));
                }
                Some(key)
            }
            _ => None,
        };
        let result = authenticate(users, req.ip, req.action, req.path, req.creds, req.method);
        match &result {
            Ok(Some(_)) => {
                if let Some(key) = key {
                    let mut map = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
                    if map.len() >= MAX_REMEMBERED {
                        let now = Instant::now();
                        map.retain(|_, until| *until > now);
                        if map.len() >= MAX_REMEMBERED {
                            map.clear();
                        }
                    }
                    map.insert(key, Instant::now() + REMEMBER);
                }
            }
            Ok(None) | Err(Denied::AskCredentials) => {}
            Err(_) => self.failures.record(
                req.ip,
                &format!("{} {} {:?}", req.protocol, req.action.as_str(), req.path),
            ),
        }
        result
    }

    /// Forgets remembered successes (the users changed).
    pub fn forget(&self) {
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
