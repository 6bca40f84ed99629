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
        let listener = crate::http::AppListener {
            what: "API",
            addr: config.api_address.0,
            tls: config.api_encryption.then_some((
                config.api_server_key.as_str(),
                config.api_server_cert.as_str(),
            )),
            write_timeout: config.write_timeout.0,
        };
        let (local_addr, task) = crate::http::serve_app(listener, app, listen).await?;
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
