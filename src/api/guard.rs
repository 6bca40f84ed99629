//! What every API request passes before its route: the `api` permission (by default:
//! from localhost), the client's address behind `apiTrustedProxies`, and for routes
//! that change state, the cross-site rule: a JSON body type (a page's form or
//! `text/plain` POST can't send one without a CORS preflight) and an allowed `Origin`.
//! A POST with neither body type nor `Origin` (curl kicking a session, as MediaMTX's
//! scripts do) passes: a browser sends `Origin` with every POST.

use crate::core::PathManager;
use crate::http::conn::Peer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(super) async fn guard(
    State(manager): State<PathManager>,
    ConnectInfo(Peer(peer, _)): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let config = manager.config();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let cors = crate::http::cors::allow_origin(&config.api_allow_origins, origin.as_ref());
    let with_cors = |mut r: Response| {
        if let Some(o) = &cors {
            r.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        }
        r
    };
    if req.method() == Method::OPTIONS {
        return crate::http::cors::preflight(
            cors.clone(),
            "GET, POST, PATCH, DELETE, OPTIONS",
            "Authorization, Content-Type",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(refused) = cross_site(&req, &config.api_allow_origins) {
            tracing::warn!(peer = %peer, method = %req.method(), path = req.uri().path(), "API request refused: {refused}");
            return with_cors((StatusCode::FORBIDDEN, format!("{refused}\n")).into_response());
        }
    }
    let asked = crate::http::auth::Asked {
        ip: crate::http::auth::client_ip(peer.ip(), req.headers(), &config.api_trusted_proxies),
        headers: req.headers(),
        query: req.uri().query().unwrap_or_default(),
        action: crate::auth::Action::Api,
        path: "",
        protocol: "api",
    };
    if let Err(refused) = crate::http::auth::check(&manager, asked).await {
        return with_cors(refused);
    }
    with_cors(next.run(req).await)
}

/// Why a state-changing request may have come from another site's page, if it may.
fn cross_site(req: &Request, allow: &[String]) -> Option<&'static str> {
    // Only POST is a method a page may send cross-site without a preflight.
    let headers = req.headers();
    let content_type = headers.get(header::CONTENT_TYPE);
    let json = req.method() != Method::POST
        || (content_type.is_none() && headers.get(header::ORIGIN).is_none())
        || content_type
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some("POST requests to the API need Content-Type: application/json");
    }
    match req.headers().get(header::ORIGIN).map(|o| o.to_str()) {
        None => None,
        Some(Ok(o)) if crate::http::cors::allowed(allow, o) => None,
        Some(_) => Some("Origin not in apiAllowOrigins"),
    }
}
