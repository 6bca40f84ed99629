//! The HTTP media listener (`hlsAddress`, axum): routes `GET /<path>.flv` to HTTP-FLV
//! and `GET /<path>/<file>` to HLS and the player page (`GET /<path>/`).

pub(crate) mod assets;
pub(crate) mod auth;
pub mod client;
pub(crate) mod conn;
pub(crate) mod cors;
mod hls;
mod hls_sessions;
mod ingest;
pub(crate) mod serve;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct HttpCtx {
    pub manager: PathManager,
    pub hls: crate::hls::HlsMuxers,
    pub write_timeout: Duration,
    pub allow_origins: Vec<String>,
    pub shutdown: CancellationToken,
    hls_sessions: hls_sessions::HlsSessions,
    ingests: ingest::Ingests,
}

impl HttpCtx {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        cors::allow_origin(&self.allow_origins, origin)
    }
}

pub struct HttpServer {
    pub local_addr: SocketAddr,
    /// The paths' HLS muxers.
    pub hls: crate::hls::HlsMuxers,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        listen: CancellationToken,
    ) -> Result<HttpServer, ListenError> {
        let tls = match config.hls_encryption {
            true => Some(tls_config(
                "HTTPS",
                config.hls_address.0,
                &config.hls_server_key,
                &config.hls_server_cert,
            )?),
            false => None,
        };
        let (listener, local_addr) = crate::net::bind("HTTP", config.hls_address.0).await?;
        // Accepted sockets inherit it: bounds what a stalled HTTP-FLV reader parks in the kernel.
        crate::net::limit_send_buffer(&listener);
        let hls = crate::hls::HlsMuxers::new(
            manager.clone(),
            crate::hls::MuxerConfig {
                variant: config.hls_variant,
                segment_count: config.hls_segment_count,
                segment_duration: config.hls_segment_duration.0,
                part_duration: config.hls_part_duration.0,
                close_after: config.hls_muxer_close_after.0,
                always_remux: config.hls_always_remux,
                directory: config.hls_directory.clone(),
            },
            // The muxers go with the listener; a new one starts its own.
            listen.clone(),
        );
        let ctx = Arc::new(HttpCtx {
            hls: hls.clone(),
            manager,
            write_timeout: config.write_timeout.0,
            allow_origins: config.hls_allow_origins.clone(),
            shutdown: shutdown.clone(),
            hls_sessions: Default::default(),
            ingests: Default::default(),
        });
        let app = axum::Router::new().fallback(route).with_state(ctx.clone());
        let sweep = (ctx.clone(), listen.clone());
        tokio::spawn(async move {
            let (ctx, listen) = sweep;
            let mut tick = tokio::time::interval(hls_sessions::IDLE / 6);
            loop {
                tokio::select! {
                    _ = listen.cancelled() => return,
                    _ = tick.tick() => ctx.hls_sessions.sweep(),
                }
            }
        });
        tracing::info!("HTTP listener opened on {local_addr} (HTTP-FLV, HLS)");
        let limits = serve::ServeLimits::of(config);
        let task = tokio::spawn(async move {
            let admit = ctx.manager.admission("HTTP");
            let listener = match conn::TimeoutListener::new(listener, ctx.write_timeout, tls, admit)
            {
                Ok(l) => l,
                Err(e) => return tracing::error!("HTTP listener failed: {e}"),
            };
            serve::serve(listener, app, limits, listen).await;
        });
        Ok(HttpServer {
            local_addr,
            hls,
            task,
        })
    }
}

/// The TLS config of a listener from its key and certificate files; an error keeps the
/// listener closed.
/// Where and how an axum app of ours listens: `what` names it in logs and errors.
pub(crate) struct AppListener<'a> {
    pub what: &'static str,
    pub addr: SocketAddr,
    /// Key and certificate files (PEM) when it serves https only.
    pub tls: Option<(&'a str, &'a str)>,
    pub write_timeout: std::time::Duration,
    /// How long a client may take to send a request head (`readTimeout`), how large
    /// it may be, and how many requests a connection may make.
    pub limits: serve::ServeLimits,
    /// The connection limits (`PathManager::admission`).
    pub admit: crate::limits::Admit,
}

/// Binds and serves `app` (with each connection's `conn::Peer`) until `listen` is
/// cancelled: the control API's and the playback server's accept loop.
pub(crate) async fn serve_app(
    l: AppListener<'_>,
    app: axum::Router,
    listen: tokio_util::sync::CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ListenError> {
    let tls = match l.tls {
        Some((key, cert)) => Some(tls_config(l.what, l.addr, key, cert)?),
        None => None,
    };
    let (listener, local_addr) = crate::net::bind(l.what, l.addr).await?;
    let (what, write_timeout, admit) = (l.what, l.write_timeout, l.admit);
    let limits = l.limits;
    tracing::info!("{what} listener opened on {local_addr}");
    let task = tokio::spawn(async move {
        let listener = match conn::TimeoutListener::new(listener, write_timeout, tls, admit) {
            Ok(l) => l,
            Err(e) => return tracing::error!("{what} listener failed: {e}"),
        };
        serve::serve(listener, app, limits, listen).await;
    });
    Ok((local_addr, task))
}

pub(crate) fn tls_config(
    what: &'static str,
    addr: SocketAddr,
    key: &str,
    cert: &str,
) -> Result<Arc<rustls::ServerConfig>, ListenError> {
    let files = crate::tls_server::CertFiles::open(key, cert).map_err(|e| ListenError {
        what,
        addr,
        source: std::io::Error::other(e),
    })?;
    Ok(files.server_config(&[b"http/1.1"]))
}

async fn route(
    State(ctx): State<Arc<HttpCtx>>,
    ConnectInfo(conn::Peer(peer, takeover)): ConnectInfo<conn::Peer>,
    req: Request,
) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    // Under pathVhosts the Host header's name goes in front (the URLs in playlists and
    // the player page are relative, so they keep working).
    let vhost = match ctx.manager.config().path_vhosts && !path.is_empty() {
        true => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(crate::core::vhost::from_host),
        false => None,
    };
    let path = crate::core::vhost::prefixed(vhost.as_deref(), path);
    let path = path.as_str();
    let origin = ctx.allow_origin(req.headers().get(header::ORIGIN));
    if req.method() == axum::http::Method::OPTIONS {
        // A page on another origin that sends `Authorization` (a JWT) asks first.
        return cors::preflight(origin, "GET, OPTIONS", "Authorization, Range");
    }
    use axum::http::Method;
    if matches!(*req.method(), Method::PUT | Method::POST | Method::DELETE) {
        return push(&ctx, peer, path, req).await;
    }
    if req.method() != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    // Everything of a path asks for read access, the player page too (so the browser
    // asks once, at the page); the player's script is public.
    let target = match path.strip_suffix(".flv") {
        Some(name) => Some((name, "flv")),
        None => path
            .rsplit_once('/')
            .filter(|(_, file)| *file != "hls.min.js")
            .map(|(name, _)| (name, "hls")),
    };
    let mut set_cookie = None;
    if let Some((name, protocol)) = target {
        let trusted = ctx.manager.config().hls_trusted_proxies.clone();
        let asked = auth::Asked {
            ip: auth::client_ip(peer.ip(), req.headers(), &trusted),
            headers: req.headers(),
            query: req.uri().query().unwrap_or_default(),
            action: crate::auth::Action::Read,
            path: name,
            protocol,
        };
        match auth::check(&ctx.manager, asked).await {
            Ok(cookie) => set_cookie = cookie,
            Err(refused) => return refused,
        }
    }
    if let Some(name) = path.strip_suffix(".flv") {
        // hyper frames HTTP/1.1 bodies as chunks and HTTP/1.0 ones by closing; h2 is
        // its own framing, which only hyper writes.
        let framing = match req.version() {
            axum::http::Version::HTTP_11 => Some(crate::flv::Framing::Chunked),
            axum::http::Version::HTTP_10 => Some(crate::flv::Framing::Raw),
            _ => None,
        };
        let direct = takeover.zip(framing);
        return crate::flv::serve(ctx.clone(), peer, name, origin, direct).await;
    }
    if let Some((name, file)) = path.rsplit_once('/') {
        let ua = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let page = matches!(file, "" | "hls.min.js");
        if !page
            && ctx
                .hls_sessions
                .refused(peer, ua, name, file == "index.m3u8")
        {
            return (StatusCode::FORBIDDEN, "this HLS session was kicked\n").into_response();
        }
        let mut resp = hls::serve(&ctx, name, file, req.uri().query()).await;
        if let Some(r) = hls::not_modified(req.headers().get(header::IF_NONE_MATCH), &resp) {
            resp = r;
        }
        if resp.status() == StatusCode::OK && !page {
            use axum::body::HttpBody;
            let query = req.uri().query().unwrap_or_default();
            let n = resp.body().size_hint().exact().unwrap_or(0);
            ctx.hls_sessions
                .counter(&ctx.manager, peer, ua, name, query)
                .add(n);
            if let Some(m) = ctx.hls.running(name) {
                m.count_sent(n);
            }
        }
        if let Some(o) = origin {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
        if let Some(c) = set_cookie {
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
        return resp;
    }
    StatusCode::NOT_FOUND.into_response()
}

/// HLS push ingest (`PUT`/`POST`/`DELETE /<path>/<file>`), for clients allowed to
/// publish the path.
async fn push(ctx: &Arc<HttpCtx>, peer: SocketAddr, path: &str, req: Request) -> Response {
    let Some((name, file)) = path
        .rsplit_once('/')
        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
    else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let trusted = ctx.manager.config().hls_trusted_proxies.clone();
    let query = req.uri().query().unwrap_or_default().to_string();
    let asked = auth::Asked {
        ip: auth::client_ip(peer.ip(), req.headers(), &trusted),
        headers: req.headers(),
        query: &query,
        action: crate::auth::Action::Publish,
        path: name,
        protocol: "hls",
    };
    if let Err(refused) = auth::check(&ctx.manager, asked).await {
        return refused;
    }
    if req.method() == axum::http::Method::DELETE {
        return ingest::delete();
    }
    ingest::put(ctx, peer, name, file, &query, req.into_body()).await
}
