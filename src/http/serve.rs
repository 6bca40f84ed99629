//! Serves an axum app on a `TimeoutListener` with hyper's HTTP/1 limits: a client must
//! send a whole request head within `readTimeout` of the server waiting for one (a new
//! connection, or a kept-alive one between requests: slowloris, idle keep-alive), within
//! `maxRequestHeaderSize` and `maxRequestHeaders` (else 431), and a connection closes
//! after `httpMaxRequestsPerConnection` requests. `axum::serve` sets none of these.

use super::conn::{Peer, TimeoutListener};
use crate::config::Config;
use crate::limits::BurstLog;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What one HTTP connection may do, from the config when its listener started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    pub read_timeout: Duration,
    pub max_head: usize,
    pub max_headers: usize,
    /// 0: no limit.
    pub max_requests: usize,
}

impl ServeLimits {
    pub fn of(c: &Config) -> Self {
        ServeLimits {
            read_timeout: c.read_timeout.0,
            max_head: c.max_request_header_size,
            max_headers: c.max_request_headers,
            max_requests: c.http_max_requests_per_connection,
        }
    }
}

/// Request heads refused for their size, over every HTTP listener.
static OVERSIZED: BurstLog = BurstLog::new();

/// Accepts until `stop`, then closes the socket before returning (a restart binds the
/// address again). Connections outlive it as sessions outlive any listener's restart: a
/// response in flight (an HTTP-FLV stream) goes on, then the connection closes.
pub(crate) async fn serve(
    mut listener: TimeoutListener,
    app: axum::Router,
    limits: ServeLimits,
    stop: CancellationToken,
) {
    loop {
        let (io, addr) = tokio::select! {
            _ = stop.cancelled() => return listener.close().await,
            a = axum::serve::Listener::accept(&mut listener) => a,
        };
        let peer = Peer(addr, io.takeover());
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        let svc = app
            .clone()
            .map_request(move |req: axum::extract::Request<hyper::body::Incoming>| {
                counted.fetch_add(1, Ordering::Relaxed);
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer.clone()));
                req
            })
            .map_response(move |mut res: axum::response::Response| {
                let n = served.load(Ordering::Relaxed);
                if limits.max_requests > 0 && n >= limits.max_requests {
                    // hyper closes the connection once this response is written.
                    res.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                res
            });
        let svc = TowerToHyperService::new(svc);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.read_timeout)
                // ffmpeg's HLS muxer closes its PUT connections as soon as the body is
                // sent: the request must still be handled (HLS push ingest).
                .half_close(true)
                // hyper's floor is 8 KiB (config validation keeps the key above it).
                .max_buf_size(limits.max_head.max(8192))
                .max_headers(limits.max_headers);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            let Err(e) = r else { return };
            let oversized = e
                .downcast_ref::<hyper::Error>()
                .is_some_and(|e| e.is_parse_too_large());
            match oversized {
                true => {
                    if let Some(n) = OVERSIZED.hit() {
                        tracing::warn!(peer = %addr, "HTTP request head over maxRequestHeaderSize ({} bytes) or maxRequestHeaders ({}): answered 431 and closed ({n} since the last report)", limits.max_head, limits.max_headers);
                    }
                }
                false => tracing::trace!(peer = %addr, "HTTP connection ended: {e}"),
            }
        });
    }
}
