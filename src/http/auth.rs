//! Credentials over HTTP (HLS, HTTP-FLV, the player page, the API): Basic (the
//! browser asks after a 401), `Bearer user:pass` as OBS sends for WHIP, or `Bearer
//! <jwt>`; and the client's address behind trusted proxies (`X-Forwarded-For`).
//! Segment requests repeat the credentials; the auth gate remembers a success for a
//! minute, so argon2 runs once per client, not once per segment.

use crate::auth::{header, sessions, Action, Credentials, Denied, IpNetwork, Request};
use crate::core::PathManager;
use axum::http::{header as h, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// last `X-Forwarded-For` hop that isn't one (the hops before it could be forged by
/// the client).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

pub(crate) fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(h::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Credentials::None;
    };
    match header::parse(value) {
        Some(header::Authorization::Basic { user, pass }) => Credentials::Basic { user, pass },
        Some(header::Authorization::Bearer(t)) => match t.split_once(':') {
            Some((user, pass)) => Credentials::Basic {
                user: user.into(),
                pass: pass.into(),
            },
            None => Credentials::Token(t),
        },
        // Sent, but not a scheme this listener takes: a wrong credential.
        _ => Credentials::Basic {
            user: String::new(),
            pass: String::new(),
        },
    }
}

/// `None` when the request may go on; else the refusal (after a delay for wrong
/// credentials).
/// An HTTP request to check.
pub(crate) struct Asked<'a> {
    pub ip: IpAddr,
    pub headers: &'a HeaderMap,
    pub query: &'a str,
    pub action: Action,
    pub path: &'a str,
    pub protocol: &'static str,
}

/// The session id in the request's cookies, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(h::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(sessions::COOKIE)?.strip_prefix('='))
}

/// `Ok` when the request may go on, with a `Set-Cookie` for a new HLS session when it
/// came with credentials and had none; `Err` is the refusal (after a delay for wrong
/// credentials).
pub(crate) async fn check(
    manager: &PathManager,
    a: Asked<'_>,
) -> Result<Option<HeaderValue>, Response> {
    let hls = a.protocol == "hls";
    if hls
        && session_cookie(a.headers)
            .is_some_and(|id| manager.hls_sessions().valid(id, a.ip, a.path))
    {
        return Ok(None);
    }
    let creds = credentials(a.headers);
    let req = Request {
        ip: a.ip,
        action: a.action,
        path: a.path,
        creds: &creds,
        method: "",
        protocol: a.protocol,
        query: a.query,
        id: None,
        user_agent: a
            .headers
            .get(h::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    };
    let denied = match manager.authenticate(&req).await {
        Ok(_) => {
            let presented =
                creds != Credentials::None || !crate::auth::token(&req, true).is_empty();
            if !(hls && presented) {
                return Ok(None);
            }
            let id = manager.hls_sessions().create(a.ip, a.path);
            // No Max-Age: the server expires it; Path keeps it to this stream's files.
            let cookie = format!(
                "{}={id}; Path=/{}/; HttpOnly; SameSite=Strict",
                sessions::COOKIE,
                a.path
            );
            return Ok(HeaderValue::from_str(&cookie).ok());
        }
        Err(d) => d,
    };
    if denied != Denied::AskCredentials {
        tokio::time::sleep(crate::auth::failures::Failures::delay()).await;
    }
    if denied == Denied::Forbidden {
        return Err((StatusCode::FORBIDDEN, "forbidden\n").into_response());
    }
    let mut r = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    r.headers_mut().insert(
        h::WWW_AUTHENTICATE,
        HeaderValue::from_str(&header::basic_challenge()).expect("ASCII challenge"),
    );
    Err(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "127.0.0.1, 203.0.113.9".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not a proxy of ours: the header is the client's own claim.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        // From a trusted proxy: the hop it saw, not what the client prepended.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &trusted),
            ip("203.0.113.9")
        );
        headers.insert("x-forwarded-for", "203.0.113.9, 10.9.9.9".parse().unwrap());
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &trusted),
            ip("203.0.113.9")
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers, &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &[]),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn bearer_is_user_pass_or_a_token() {
        let mut headers = HeaderMap::new();
        headers.insert(h::AUTHORIZATION, "Bearer a:b".parse().unwrap());
        assert_eq!(
            credentials(&headers),
            Credentials::Basic {
                user: "a".into(),
                pass: "b".into()
            }
        );
        headers.insert(h::AUTHORIZATION, "Bearer eyJ.x.y".parse().unwrap());
        assert_eq!(credentials(&headers), Credentials::Token("eyJ.x.y".into()));
    }
}
