//! The check every listener runs: the configured method (the user list, an auth
//! server, or a JWT) over a request, a short memory of successes so that HLS segment
//! requests don't re-run argon2 or re-ask the server, and the failure log.

use super::failures::Failures;
use super::{authenticate, Action, Credentials, Denied, Refusal};
use crate::config::{AuthMethod, Config};
use sha2::Digest;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a success with the same credentials, from the same address, for the same
/// action and path (and, for `authMethod: http`, the same query), is taken as proof
/// without checking the password or asking the auth server again.
pub const REMEMBER: Duration = Duration::from_secs(60);
const MAX_REMEMBERED: usize = 10_000;
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(10);

/// One request to be allowed or refused.
pub struct Request<'a> {
    pub ip: IpAddr,
    pub action: Action,
    pub path: &'a str,
    pub creds: &'a Credentials,
    /// The RTSP method a Digest response was computed for.
    pub method: &'a str,
    /// `rtsp`, `rtmp`, `hls`, … for the failure log and the auth server.
    pub protocol: &'static str,
    /// The URL's query as the client sent it (tokens may ride there).
    pub query: &'a str,
    /// The connection's id, sent to an auth server.
    pub id: Option<&'a str>,
    pub user_agent: &'a str,
}

#[derive(Default)]
pub struct Gate {
    failures: Failures,
    /// SHA-256 of (address, action, path, credentials[, query]) → when it stops
    /// counting.
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
    pub jwks: super::jwt::Jwks,
    pub sessions: super::sessions::Sessions,
    /// When the last outage of the auth server or JWKS was logged, and how many
    /// refusals it caused since.
    outage: Mutex<(Option<Instant>, u64)>,
}

impl Gate {
    pub async fn check(&self, cfg: &Config, req: &Request<'_>) -> Result<Option<String>, Denied> {
        let key = remember_key(cfg.auth_method, req);
        if let Some(key) = &key {
            let map = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(key).is_some_and(|until| *until > Instant::now()) {
                return Ok(named(req.creds.user_pass().0));
            }
        }
        let excluded =
            |list: &[super::Permission]| list.iter().any(|p| p.matches(req.action, req.path));
        let (result, why) = match cfg.auth_method {
            AuthMethod::Internal => (
                authenticate(
                    &cfg.auth_internal_users,
                    req.ip,
                    req.action,
                    req.path,
                    req.creds,
                    req.method,
                ),
                None,
            ),
            AuthMethod::Http if excluded(&cfg.auth_http_exclude) => (Ok(None), None),
            AuthMethod::Http => self.external(cfg, req).await,
            AuthMethod::Jwt if excluded(&cfg.auth_jwt_exclude) => (Ok(None), None),
            AuthMethod::Jwt => self.jwt(cfg, req).await,
        };
        match &result {
            Ok(_) => {
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
            Err(Denied::AskCredentials) => {}
            // The method's own failure: logged as such, not held against the client.
            Err(_) if matches!(why, Some(Refusal::Unavailable(_))) => {
                if let Some(Refusal::Unavailable(why)) = &why {
                    self.outage(cfg.auth_method, why);
                }
            }
            Err(_) => {
                let what = format!("{} {} {:?}", req.protocol, req.action.as_str(), req.path);
                let what = match why {
                    Some(Refusal::Denied(why)) => format!("{what}: {why}"),
                    _ => what,
                };
                self.failures.record(req.ip, &what)
            }
        }
        result
    }

    /// Asks the auth server; no credentials at all and a refusal asks for some.
    async fn external(
        &self,
        cfg: &Config,
        req: &Request<'_>,
    ) -> (Result<Option<String>, Denied>, Option<Refusal>) {
        let token = super::token(req, false);
        match super::external::ask(cfg, req, &token).await {
            Ok(()) => (Ok(named(req.creds.user_pass().0)), None),
            Err(why) => (Err(refusal(req, &token)), Some(why)),
        }
    }

    async fn jwt(
        &self,
        cfg: &Config,
        req: &Request<'_>,
    ) -> (Result<Option<String>, Denied>, Option<Refusal>) {
        let token = super::token(req, cfg.auth_jwt_in_http_query);
        if token.is_empty() {
            return (
                Err(refusal(req, &token)),
                Some(Refusal::Denied("no JWT".into())),
            );
        }
        match self.jwks.verify(cfg, &token).await {
            Ok(c) if c.allows(req.action, req.path) => (Ok(named(&c.subject)), None),
            Ok(c) => (
                Err(Denied::Wrong),
                Some(Refusal::Denied(format!(
                    "JWT of {:?} doesn't allow it",
                    c.subject
                ))),
            ),
            Err(why) => (Err(refusal(req, &token)), Some(why)),
        }
    }

    /// Logs that the external method can't answer: at once, then at most every 10 s
    /// with the refusals it caused meanwhile.
    fn outage(&self, method: AuthMethod, why: &str) {
        let mut o = self.outage.lock().unwrap_or_else(|e| e.into_inner());
        o.1 += 1;
        if o.0.is_none_or(|t| t.elapsed() >= OUTAGE_LOG_EVERY) {
            tracing::warn!(
                "authMethod {method:?} can't decide: {why}; {} request{} refused",
                o.1,
                if o.1 == 1 { "" } else { "s" }
            );
            *o = (Some(Instant::now()), 0);
        }
    }

    /// Forgets remembered successes and HLS sessions (the users or the method changed).
    pub fn forget(&self) {
        self.sessions.clear();
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn named(user: &str) -> Option<String> {
    (!user.is_empty()).then(|| user.to_string())
}

/// A refusal by an external method: with nothing presented, ask (a browser then
/// prompts, and a token can be typed as the password); else wrong.
fn refusal(req: &Request<'_>, token: &str) -> Denied {
    if matches!(req.creds, Credentials::None) && token.is_empty() {
        Denied::AskCredentials
    } else {
        Denied::Wrong
    }
}

/// What a success is remembered under: for the user list, Basic credentials (the
/// argon2 case; anonymous checks are cheap); for an auth server, everything it was
/// sent but the id; JWTs are not remembered, since a remembered success could outlive
/// the token's `exp`, and checking one costs a signature verification only.
fn remember_key(method: AuthMethod, req: &Request<'_>) -> Option<[u8; 32]> {
    let (user, pass) = match (method, req.creds) {
        (AuthMethod::Jwt, _) => return None,
        (AuthMethod::Internal, Credentials::Basic { user, pass }) => (user.as_str(), pass.as_str()),
        (AuthMethod::Internal, _) => return None,
        (AuthMethod::Http, Credentials::Token(t)) => ("\0token", t.as_str()),
        (AuthMethod::Http, Credentials::Basic { user, pass }) => (user.as_str(), pass.as_str()),
        (AuthMethod::Http, _) => ("", ""),
    };
    let mut h = sha2::Sha256::new();
    let ip = req.ip.to_canonical().to_string();
    let query = if method == AuthMethod::Http {
        req.query
    } else {
        ""
    };
    for part in [
        ip.as_str(),
        req.action.as_str(),
        req.path,
        user,
        pass,
        query,
        req.protocol,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    Some(h.finalize().into())
}
