//! RTSP credentials: the `Authorization` header as `rtspAuthMethods` allow it, the
//! 401 challenge with this connection's Digest nonce, and Digest URIs accepted absolute
//! or relative, for the track or for the base URL (clients send both on SETUP).

use super::url::url_path;
use crate::auth::{header, Action, Credentials, Denied, Request};
use crate::config::RtspAuthMethod;
use crate::core::PathManager;
use std::net::IpAddr;
use std::time::Duration;

/// What the handler does with a request after the check.
pub(crate) enum Verdict {
    Allowed,
    /// 401 with these `WWW-Authenticate` challenges; the connection stays.
    Ask(String),
    /// Wrong credentials (401) or not allowed at all (403): answered after `delay`,
    /// then the connection closes.
    Refuse {
        forbidden: bool,
        delay: Duration,
    },
}

pub(crate) struct ConnAuth {
    nonce: String,
    /// Sent to an auth server as the connection's id.
    id: String,
    /// What this connection was already allowed, so SETUP and PLAY after DESCRIBE
    /// don't check again.
    allowed: Vec<(Action, String)>,
}

impl Default for ConnAuth {
    fn default() -> Self {
        ConnAuth {
            nonce: header::new_nonce(),
            id: crate::auth::new_id(),
            allowed: Vec::new(),
        }
    }
}

/// The path a Digest `uri` names: an absolute URL's path, or a relative one.
fn digest_uri_path(uri: &str) -> Option<String> {
    if uri.contains("://") {
        rtsp_types::Url::parse(uri).ok().map(|u| url_path(&u))
    } else {
        let raw = uri.split('?').next().unwrap_or_default();
        let base = rtsp_types::Url::parse("rtsp://x/").ok()?;
        base.join(raw).ok().map(|u| url_path(&u))
    }
}

/// An RTSP request to check, as the handler read it.
pub(crate) struct Asked<'a> {
    pub ip: IpAddr,
    pub method: &'a str,
    pub authorization: Option<&'a str>,
    /// The request URI's path (a Digest `uri` may name it, or `path`).
    pub request_path: &'a str,
    pub query: &'a str,
    pub user_agent: &'a str,
    pub action: Action,
    /// The path being read or published.
    pub path: &'a str,
}

impl ConnAuth {
    pub(crate) async fn check(&mut self, manager: &PathManager, a: Asked<'_>) -> Verdict {
        let Asked {
            ip,
            method,
            authorization,
            request_path,
            query,
            user_agent,
            action,
            path,
        } = a;
        if self.allowed.iter().any(|(a, p)| *a == action && p == path) {
            return Verdict::Allowed;
        }
        let methods = manager.config().rtsp_auth_methods.clone();
        let creds = match authorization.and_then(header::parse) {
            Some(header::Authorization::Basic { user, pass })
                if methods.contains(&RtspAuthMethod::Basic) =>
            {
                Credentials::Basic { user, pass }
            }
            Some(header::Authorization::Digest(d)) if methods.contains(&RtspAuthMethod::Digest) => {
                // A response to another nonce or realm (an earlier connection's) proves
                // nothing: challenge again, as for no credentials.
                if d.nonce != self.nonce || d.realm != header::REALM {
                    return Verdict::Ask(self.challenge(&methods));
                }
                let uri = digest_uri_path(&d.uri);
                if uri.as_deref() != Some(request_path) && uri.as_deref() != Some(path) {
                    Credentials::Digest(Default::default())
                } else {
                    Credentials::Digest(d)
                }
            }
            Some(_) => Credentials::Basic {
                user: String::new(),
                pass: String::new(),
            },
            None => Credentials::None,
        };
        let req = Request {
            ip,
            action,
            path,
            creds: &creds,
            method,
            protocol: "rtsp",
            query,
            id: Some(&self.id),
            user_agent,
        };
        match manager.authenticate(&req).await {
            Ok(_) => {
                self.allowed.push((action, path.to_string()));
                Verdict::Allowed
            }
            Err(Denied::AskCredentials) => Verdict::Ask(self.challenge(&methods)),
            Err(d) => Verdict::Refuse {
                forbidden: d == Denied::Forbidden,
                delay: crate::auth::failures::Failures::delay(),
            },
        }
    }

    fn challenge(&self, methods: &[RtspAuthMethod]) -> String {
        // Digest first: clients take the first scheme they know.
        let mut out = Vec::new();
        if methods.contains(&RtspAuthMethod::Digest) {
            out.push(header::digest_challenge(&self.nonce));
        }
        if methods.contains(&RtspAuthMethod::Basic) {
            out.push(header::basic_challenge());
        }
        out.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_uris_absolute_relative_or_encoded() {
        assert_eq!(
            digest_uri_path("rtsp://h:8554/cam/trackID=0").as_deref(),
            Some("cam/trackID=0")
        );
        assert_eq!(digest_uri_path("/cam").as_deref(), Some("cam"));
        assert_eq!(
            digest_uri_path("/live/a%20b?x=1").as_deref(),
            Some("live/a b")
        );
        assert_eq!(digest_uri_path("rtsp://[bad").as_deref(), None);
    }
}
