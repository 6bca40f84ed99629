//! Credentials on the HTTP media listener (HLS, HTTP-FLV, the player page): Basic
//! (the browser asks after a 401), or `Bearer user:pass` as OBS sends for WHIP.
//! Segment requests repeat the credentials; the auth gate remembers a success for a
//! minute, so argon2 runs once per client, not once per segment.

use crate::auth::{header, Action, Credentials, Denied, Request};
use crate::core::PathManager;
use axum::http::{header as h, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

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
            None => Credentials::Basic {
                user: String::new(),
                pass: t,
            },
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
pub(crate) async fn check(
    manager: &PathManager,
    ip: IpAddr,
    headers: &HeaderMap,
    action: Action,
    path: &str,
    protocol: &'static str,
) -> Option<Response> {
    let creds = credentials(headers);
    let req = Request {
        ip,
        action,
        path,
        creds: &creds,
        method: "",
        protocol,
    };
    let denied = manager.authenticate(&req).err()?;
    if denied != Denied::AskCredentials {
        tokio::time::sleep(crate::auth::failures::Failures::delay()).await;
    }
    if denied == Denied::Forbidden {
        return Some((StatusCode::FORBIDDEN, "forbidden\n").into_response());
    }
    let mut r = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    r.headers_mut().insert(
        h::WWW_AUTHENTICATE,
        HeaderValue::from_str(&header::basic_challenge()).expect("ASCII challenge"),
    );
    Some(r)
}
