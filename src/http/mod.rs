//! The HTTP media listener (`hlsAddress`, axum): routes `GET /<path>.flv` to HTTP-FLV
//! and `GET /<path>/<file>` to HLS. Player pages will be routed here too.

mod conn;

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
}

impl HttpCtx {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        self.allow_origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
            .then(|| origin.clone())
    }
}

pub struct HttpServer {
    pub local_addr: SocketAddr,
}

impl HttpServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
    ) -> Result<HttpServer, ListenError> {
        let (listener, local_addr) = crate::net::bind("HTTP", config.hls_address.0).await?;
        // Accepted sockets inherit it: bounds what a stalled HTTP-FLV reader parks in the kernel.
        crate::net::limit_send_buffer(&listener);
        let hls = crate::hls::HlsMuxers::new(
            manager.clone(),
            crate::hls::MuxerConfig {
                segment_count: config.hls_segment_count,
                segment_duration: config.hls_segment_duration.0,
                close_after: config.hls_muxer_close_after.0,
            },
            shutdown.clone(),
        );
        let ctx = Arc::new(HttpCtx {
            hls,
            manager,
            write_timeout: config.write_timeout.0,
            allow_origins: config.hls_allow_origins.clone(),
            shutdown: shutdown.clone(),
        });
        let app = axum::Router::new().fallback(route).with_state(ctx.clone());
        tracing::info!("HTTP listener opened on {local_addr} (HTTP-FLV, HLS)");
        tokio::spawn(async move {
            let listener = conn::TimeoutListener {
                inner: listener,
                write_timeout: ctx.write_timeout,
            };
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<conn::Peer>(),
            );
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::error!("HTTP listener failed: {e}") },
                _ = shutdown.cancelled() => {}
            }
        });
        Ok(HttpServer { local_addr })
    }
}

async fn route(
    State(ctx): State<Arc<HttpCtx>>,
    ConnectInfo(conn::Peer(peer)): ConnectInfo<conn::Peer>,
    req: Request,
) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    if req.method() != axum::http::Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let origin = ctx.allow_origin(req.headers().get(header::ORIGIN));
    if let Some(name) = path.strip_suffix(".flv") {
        return crate::flv::serve(ctx.clone(), peer, name, origin).await;
    }
    if let Some((name, file)) = path.rsplit_once('/') {
        let mut resp = hls(&ctx, name, file).await;
        if let Some(o) = origin {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
        return resp;
    }
    StatusCode::NOT_FOUND.into_response()
}

/// `<path>/index.m3u8`, `<path>/stream.m3u8` and `<path>/seg<N>.ts`.
async fn hls(ctx: &HttpCtx, name: &str, file: &str) -> Response {
    let playlist = |text: Option<String>| match text {
        Some(t) => (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            t,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no HLS segment is ready yet\n").into_response(),
    };
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("no one is publishing to path '{name}'\n"),
        )
            .into_response()
    };
    match file {
        "index.m3u8" | "stream.m3u8" => {
            let Some(m) = ctx.hls.get(name) else {
                return not_found();
            };
            let wait = ctx.hls.first_segment_wait();
            if file == "index.m3u8" {
                playlist(m.multivariant(wait).await)
            } else {
                playlist(m.media_playlist(wait).await)
            }
        }
        _ => {
            let seq = file
                .strip_prefix("seg")
                .and_then(|f| f.strip_suffix(".ts"))
                .and_then(|n| n.parse::<u64>().ok());
            let (Some(seq), Some(m)) = (seq, ctx.hls.get(name)) else {
                return not_found();
            };
            match m.segment(seq) {
                Some(data) => ([(header::CONTENT_TYPE, "video/mp2t")], data).into_response(),
                None => (StatusCode::NOT_FOUND, "segment no longer held\n").into_response(),
            }
        }
    }
}
