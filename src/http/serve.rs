//! Serves an axum app on a `TimeoutListener` with hyper's HTTP/1 header read timeout:
//! a client must send a whole request head within `readTimeout` of the server waiting
//! for one (a new connection, or a kept-alive one between requests), else it is closed
//! (slowloris, idle keep-alive). `axum::serve` sets no timer, so it has no such bound.

use super::conn::{Peer, TimeoutListener};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Accepts until `stop`, then closes the socket before returning (a restart binds the
/// address again). Connections outlive it as sessions outlive any listener's restart: a
/// response in flight (an HTTP-FLV stream) goes on, then the connection closes.
pub(crate) async fn serve(
    mut listener: TimeoutListener,
    app: axum::Router,
    read_timeout: Duration,
    stop: CancellationToken,
) {
    loop {
        let (io, addr) = tokio::select! {
            _ = stop.cancelled() => return listener.close().await,
            a = axum::serve::Listener::accept(&mut listener) => a,
        };
        let peer = Peer(addr, io.takeover());
        let svc =
            app.clone()
                .map_request(move |req: axum::extract::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer.clone()));
                    req
                });
        let svc = TowerToHyperService::new(svc);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::trace!(peer = %addr, "HTTP connection ended: {e}");
            }
        });
    }
}
