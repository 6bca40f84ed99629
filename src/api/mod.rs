//! The control API (`apiAddress`, axum): JSON views of the paths, in MediaMTX's v3
//! shapes (`/v3/paths/list`, `/v3/paths/get/<name>`) plus each source's state, so a
//! failing camera shows why; and `POST /v3/auth/jwks/refresh`.

mod guard;
mod paths;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use axum::routing::{get, post};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

pub struct ApiServer {
    pub local_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        listen: CancellationToken,
    ) -> Result<ApiServer, ListenError> {
        let tls = match config.api_encryption {
            true => Some(crate::http::tls_config(
                "API (TLS)",
                config.api_address.0,
                &config.api_server_key,
                &config.api_server_cert,
            )?),
            false => None,
        };
        let (listener, local_addr) = crate::net::bind("API", config.api_address.0).await?;
        let write_timeout = config.write_timeout.0;
        let app = axum::Router::new()
            .route("/v3/paths/list", get(paths::list))
            .route("/v3/paths/get/{*name}", get(paths::get))
            .route("/v3/auth/jwks/refresh", post(refresh_jwks))
            .fallback(paths::not_found)
            .layer(axum::middleware::from_fn_with_state(
                manager.clone(),
                guard::guard,
            ))
            .with_state(manager);
        tracing::info!("API listener opened on {local_addr}");
        let task = tokio::spawn(async move {
            let listener =
                match crate::http::conn::TimeoutListener::new(listener, write_timeout, tls) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!("API listener failed: {e}"),
                };
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<crate::http::conn::Peer>(),
            );
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::error!("API listener failed: {e}") },
                _ = listen.cancelled() => {}
            }
        });
        Ok(ApiServer { local_addr, task })
    }
}

/// The next JWT check fetches `authJWTJWKS` again (after the identity server rotated
/// its keys).
async fn refresh_jwks(
    axum::extract::State(manager): axum::extract::State<PathManager>,
) -> axum::http::StatusCode {
    manager.refresh_jwks().await;
    axum::http::StatusCode::OK
}
