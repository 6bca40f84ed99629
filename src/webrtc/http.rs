//! The WebRTC listener's HTTP side: WHEP (`POST /<path>/whep`) and WHIP
//! (`POST /<path>/whip`) with their session resources (`PATCH` trickles candidates,
//! `DELETE` ends), `OPTIONS` with the ICE servers, and the reader and publish pages.

use super::codecs;
use super::negotiate;
use super::session::{Msg, Role, Session};
use super::Hub;
use crate::auth::Action;
use crate::config::{Config, IceServer};
use crate::core::{Client, Peer, SessionKind, SessionState};
use crate::http::conn;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use str0m::Candidate;

/// What a page on another origin may send (CORS).
const METHODS: &str = "OPTIONS, GET, POST, PATCH, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match";

/// Largest offer or candidate fragment read: an offer is a few kilobytes.
const MAX_BODY: usize = 64 * 1024;

struct Ctx {
    hub: Arc<Hub>,
    allow_origins: Vec<String>,
    ice_servers: Vec<IceServer>,
}

pub(super) fn router(hub: Arc<Hub>, config: &Config) -> axum::Router {
    let ctx = Arc::new(Ctx {
        hub,
        allow_origins: config.webrtc_allow_origins.clone(),
        ice_servers: config.webrtc_ice_servers2.clone(),
    });
    axum::Router::new().fallback(route).with_state(ctx)
}

/// What a request's path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `/<path>/whep` or `/<path>/whip`.
    Endpoint {
        name: &'a str,
        publish: bool,
    },
    /// `/<path>/whep/<secret>`: a session's resource.
    Resource {
        secret: &'a str,
    },
    ReadPage {
        name: &'a str,
    },
    PublishPage {
        name: &'a str,
    },
    /// `/<path>` without the slash the pages' relative URLs need.
    Slashless {
        name: &'a str,
    },
    None,
}

fn target(path: &str) -> Target<'_> {
    let p = path.trim_start_matches('/');
    if p.is_empty() || p == "favicon.ico" {
        return Target::None;
    }
    if let Some((rest, secret)) = p.rsplit_once('/') {
        if let Some((name, kind)) = rest.rsplit_once('/') {
            if matches!(kind, "whep" | "whip") && !name.is_empty() && !secret.is_empty() {
                return Target::Resource { secret };
            }
        }
        if matches!(secret, "whep" | "whip") && !rest.is_empty() {
            return Target::Endpoint {
                name: rest,
                publish: secret == "whip",
            };
        }
        if secret == "publish" && !rest.is_empty() {
            return Target::PublishPage { name: rest };
        }
        if secret.is_empty() && !rest.is_empty() {
            return Target::ReadPage { name: rest };
        }
    }
    Target::Slashless { name: p }
}

fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, format!("{msg}\n")).into_response()
}

async fn route(
    State(ctx): State<Arc<Ctx>>,
    ConnectInfo(conn::Peer(peer, _)): ConnectInfo<conn::Peer>,
    req: Request,
) -> Response {
    let origin =
        crate::http::cors::allow_origin(&ctx.allow_origins, req.headers().get(header::ORIGIN));
    let mut resp = handle(&ctx, peer, req, origin.clone()).await;
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}

async fn handle(
    ctx: &Arc<Ctx>,
    peer: SocketAddr,
    req: Request,
    origin: Option<HeaderValue>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    if method == Method::OPTIONS && req.headers().contains_key("access-control-request-method") {
        // A page of an origin webrtcAllowOrigins doesn't allow gets no CORS headers.
        return crate::http::cors::preflight(origin, METHODS, ALLOW_HEADERS);
    }
    match (target(&path), &method) {
        (Target::Endpoint { name, publish }, &Method::POST) => {
            if let Err(r) = check(ctx, peer, req.headers(), &query, name, publish).await {
                return r;
            }
            let name = name.to_string();
            post(ctx, peer, req, &name, &query, publish).await
        }
        (Target::Endpoint { name, publish }, &Method::OPTIONS) => {
            if let Err(r) = check(ctx, peer, req.headers(), &query, name, publish).await {
                return r;
            }
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Accept-Post, Link"),
            );
            h.insert("accept-post", HeaderValue::from_static("application/sdp"));
            add_links(h, &ctx.ice_servers);
            r
        }
        // RFC 9725: GET, HEAD and PUT on the endpoint are 405.
        (Target::Endpoint { .. }, _) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        (Target::Resource { secret }, &Method::PATCH) => {
            let secret = secret.to_string();
            patch(ctx, req, &secret).await
        }
        (Target::Resource { secret }, &Method::DELETE) => match ctx.hub.by_secret(secret) {
            Some(tx) => {
                let _ = tx.send(Msg::Close).await;
                StatusCode::OK.into_response()
            }
            None => error(StatusCode::NOT_FOUND, "no such session"),
        },
        (Target::ReadPage { name }, &Method::GET) => {
            page(ctx, peer, req.headers(), &query, name, false).await
        }
        (Target::PublishPage { name }, &Method::GET) => {
            page(ctx, peer, req.headers(), &query, name, true).await
        }
        (Target::Slashless { name }, &Method::GET) => {
            let mut to = format!("/{name}/");
            if !query.is_empty() {
                to = format!("{to}?{query}");
            }
            match HeaderValue::from_str(&to) {
                Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Read (or with `publish`, publish) access to `name` over WebRTC; the refusal (401
/// asks the browser).
async fn check(
    ctx: &Ctx,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: &str,
    name: &str,
    publish: bool,
) -> Result<(), Response> {
    let action = if publish {
        Action::Publish
    } else {
        Action::Read
    };
    if crate::config::validate_path_name(name).is_err() {
        return Err(error(StatusCode::NOT_FOUND, "invalid path name"));
    }
    let trusted = ctx.hub.manager.config().webrtc_trusted_proxies.clone();
    let asked = crate::http::auth::Asked {
        ip: crate::http::auth::client_ip(peer.ip(), headers, &trusted),
        headers,
        query,
        action,
        path: name,
        protocol: "webrtc",
    };
    crate::http::auth::check(&ctx.hub.manager, asked)
        .await
        .map(|_| ())
}

async fn page(
    ctx: &Ctx,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: &str,
    name: &str,
    publish: bool,
) -> Response {
    if let Err(r) = check(ctx, peer, headers, query, name, publish).await {
        return r;
    }
    crate::http::assets::webrtc_page(publish)
}

/// `Link` headers naming the ICE servers (RFC 9725 section 4.6).
fn add_links(h: &mut HeaderMap, servers: &[IceServer]) {
    for s in servers {
        if let Ok(v) = HeaderValue::from_str(&link(s, std::time::SystemTime::now())) {
            h.append(header::LINK, v);
        }
    }
}

fn link(s: &IceServer, now: std::time::SystemTime) -> String {
    let quote = |v: &str| v.replace(['"', '\\', '\r', '\n'], "");
    let mut out = format!("<{}>; rel=\"ice-server\"", quote(&s.url));
    if !s.username.is_empty() {
        let (user, pass) = super::ice_credentials(s, now);
        out.push_str(&format!(
            "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
            quote(&user),
            quote(&pass)
        ));
    }
    out
}

async fn body(req: Request) -> Result<String, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {MAX_BODY} bytes"),
            )
        })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| error(StatusCode::BAD_REQUEST, "body is not UTF-8"))
}

fn content_type(h: &HeaderMap) -> &str {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default()
}

async fn post(
    ctx: &Arc<Ctx>,
    peer: SocketAddr,
    req: Request,
    name: &str,
    query: &str,
    publish: bool,
) -> Response {
    if !content_type(req.headers()).eq_ignore_ascii_case("application/sdp") {
        return error(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/sdp",
        );
    }
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let offer = match body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let hub = &ctx.hub;
    let Some(port) = hub.port() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the WebRTC listener has no UDP port (webrtcLocalUDPAddress)",
        );
    };
    let manager = &hub.manager;
    let entry = manager.sessions().open(SessionKind::WebrtcSession, peer);
    entry.update(|d| {
        d.path = name.to_string();
        d.query = crate::core::without_credentials(query);
        d.user_agent = user_agent;
    });
    let client = Client::new(Peer::WebrtcSession, peer, query).in_session(&entry);
    let what = if publish {
        "WebRTC publish"
    } else {
        "WebRTC read"
    };
    let refused = |code: StatusCode, why: String| {
        tracing::info!(%peer, path = name, "{what} refused: {why}");
        error(code, why)
    };
    // A bad offer must not take a slot: a publisher's would replace the one publishing.
    if let Err(e) = str0m::change::SdpOffer::from_sdp_string(&offer) {
        return refused(StatusCode::BAD_REQUEST, format!("invalid SDP offer: {e}"));
    }
    let (accepted, role, left_out) = if publish {
        let (a, super::session::PublishTracks { tracks, by_pt }) =
            match negotiate::publish(&offer, &hub.offered) {
                Ok(x) => x,
                Err(e) => return refused(StatusCode::BAD_REQUEST, e),
            };
        let publisher = match manager.add_publisher(name, client) {
            Ok(p) => p,
            Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let role = Role::Publish {
            publisher,
            by_pt,
            tracks,
            ingest: None,
            last_keyframe_ask: None,
            video_ssrc: None,
        };
        (a, role, Vec::new())
    } else {
        manager.demand_with(name, query).await;
        let slot = match manager.add_reader(name, client) {
            Ok(r) => r,
            Err(e) => {
                let code = match e {
                    crate::core::PathError::TooManyReaders(..) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::NOT_FOUND,
                };
                return refused(code, e.to_string());
            }
        };
        let plan = codecs::plan(&slot.stream().tracks());
        if plan.video.is_none() && plan.audio.is_none() {
            return refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "the stream has no track WebRTC can carry ({})",
                    plan.left_out.join(", ")
                ),
            );
        }
        match negotiate::read(&offer, &plan, &hub.offered) {
            Ok((a, tx, left)) => {
                entry.update(|d| d.state = SessionState::Read);
                let video_mid = super::session::TxTrack::video_mid(&tx);
                let role = Role::Read {
                    slot,
                    tx,
                    sub: None,
                    video_mid,
                };
                (a, role, left)
            }
            Err(e) => return refused(StatusCode::BAD_REQUEST, e),
        }
    };
    let negotiate::Accepted {
        mut rtc, answer, ..
    } = accepted;
    let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
    let secret = format!("{:032x}", rand::random::<u128>());
    let id = entry.id;
    let started = hub.spawn(ufrag, secret.clone(), |sid, rx| {
        Session::new(
            hub.clone(),
            port,
            sid,
            rtc,
            role,
            rx,
            entry,
            name.to_string(),
            peer,
        )
    });
    if !started {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the WebRTC listener is stopping",
        );
    }
    tracing::info!(%peer, path = name, "{what} session started (offer answered)");
    let mut location = format!("/{name}/{}/{secret}", if publish { "whip" } else { "whep" });
    if !query.is_empty() {
        location = format!("{location}?{query}");
    }
    let mut r = (StatusCode::CREATED, answer).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, ID, Accept-Patch, Link, Location, X-Not-Played"),
    );
    h.insert(header::ETAG, HeaderValue::from_static("*"));
    h.insert("id", HeaderValue::from(id));
    h.insert(
        "accept-patch",
        HeaderValue::from_static("application/trickle-ice-sdpfrag"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if !left_out.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&left_out.join(", ")) {
            h.insert("x-not-played", v);
        }
    }
    add_links(h, &ctx.ice_servers);
    r
}

/// `PATCH` with `application/trickle-ice-sdpfrag`: remote candidates for the session.
async fn patch(ctx: &Ctx, req: Request, secret: &str) -> Response {
    if !content_type(req.headers()).eq_ignore_ascii_case("application/trickle-ice-sdpfrag") {
        return error(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/trickle-ice-sdpfrag",
        );
    }
    let Some(tx) = ctx.hub.by_secret(secret) else {
        return error(StatusCode::NOT_FOUND, "no such session");
    };
    let frag = match body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    for line in frag.lines() {
        let Some(c) = line.trim().strip_prefix("a=") else {
            continue;
        };
        if !c.starts_with("candidate:") {
            continue;
        }
        match Candidate::from_sdp_string(c) {
            Ok(c) => {
                let _ = tx.send(Msg::Candidate(c)).await;
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid candidate: {e}")),
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            target("/cam/whep"),
            Target::Endpoint {
                name: "cam",
                publish: false
            }
        );
        assert_eq!(
            target("/a/b/whip"),
            Target::Endpoint {
                name: "a/b",
                publish: true
            }
        );
        assert_eq!(
            target("/a/b/whep/0123abcd"),
            Target::Resource { secret: "0123abcd" }
        );
        assert_eq!(target("/cam/"), Target::ReadPage { name: "cam" });
        assert_eq!(target("/a/b/publish"), Target::PublishPage { name: "a/b" });
        assert_eq!(target("/cam"), Target::Slashless { name: "cam" });
        assert_eq!(target("/"), Target::None);
        assert_eq!(target("/whep"), Target::Slashless { name: "whep" });
    }

    #[test]
    fn ice_server_links() {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let stun = IceServer {
            url: "stun:stun.example.com:3478".into(),
            username: String::new(),
            password: String::new(),
            client_only: false,
        };
        assert_eq!(
            link(&stun, now),
            "<stun:stun.example.com:3478>; rel=\"ice-server\""
        );
        let turn = IceServer {
            url: "turn:t.example.com:3478?transport=udp".into(),
            username: "u\"x".into(),
            password: "p".into(),
            client_only: true,
        };
        assert_eq!(
            link(&turn, now),
            "<turn:t.example.com:3478?transport=udp>; rel=\"ice-server\"; username=\"ux\"; credential=\"p\"; credential-type=\"password\""
        );
    }
}
