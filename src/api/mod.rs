//! The control API (`apiAddress`, axum): JSON views of the paths, in MediaMTX's v3
//! shapes (`/v3/paths/list`, `/v3/paths/get/<name>`) plus each source's state, so a
//! failing camera shows why; `/v3/config/*` reads and writes (`config`), sessions and
//! kicks (`sessions`), `/v3/info`, `/v3/openapi.json` and `POST /v3/auth/jwks/refresh`.

mod config;
mod guard;
mod paths;
mod recordings;
mod sessions;
mod stat;
mod tracks;

use paths::error;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use crate::server::ServerInner;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, patch, post};
use std::net::SocketAddr;
use std::sync::Weak;
use tokio_util::sync::CancellationToken;

/// What the routes share: the paths, and the server whose config they write (weak:
/// the server owns this listener).
#[derive(Clone)]
pub(crate) struct ApiState {
    pub manager: PathManager,
    pub server: Weak<ServerInner>,
    pub started: std::time::SystemTime,
}

impl axum::extract::FromRef<ApiState> for PathManager {
    fn from_ref(s: &ApiState) -> PathManager {
        s.manager.clone()
    }
}

pub struct ApiServer {
    pub local_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        server: Weak<ServerInner>,
        listen: CancellationToken,
    ) -> Result<ApiServer, ListenError> {
        let admit = manager.admission("API");
        let mut app = axum::Router::new();
        for (kind, kickable) in sessions::kinds() {
            let route = kind.route();
            app = app
                .route(
                    &format!("/v3/{route}/list"),
                    get(
                        move |State(s): State<ApiState>, Query(q): Query<paths::Page>| async move {
                            sessions::list(&s, kind, &q)
                        },
                    ),
                )
                .route(
                    &format!("/v3/{route}/get/{{id}}"),
                    get(
                        move |State(s): State<ApiState>, Path(id): Path<String>| async move {
                            sessions::get(&s, kind, &id)
                        },
                    ),
                );
            if kickable {
                app = app.route(
                    &format!("/v3/{route}/kick/{{id}}"),
                    post(
                        move |State(s): State<ApiState>, Path(id): Path<String>| async move {
                            sessions::kick(&s, kind, &id)
                        },
                    ),
                );
            }
        }
        let app = app
            .route("/v3/hlsmuxers/list", get(sessions::muxers_list))
            .route("/v3/hlsmuxers/get/{*name}", get(sessions::muxers_get))
            .route("/", get(|| async { crate::http::assets::dashboard() }))
            .route("/stat", get(stat::stat))
            .route("/v3/openapi.json", get(openapi))
            .route("/v3/recordings/list", get(recordings::list))
            .route("/v3/recordings/get/{*name}", get(recordings::get))
            .route(
                "/v3/recordings/deletesegment",
                delete(recordings::delete_segment),
            )
            .route("/v3/paths/list", get(paths::list))
            .route("/v3/paths/get/{*name}", get(paths::get))
            .route("/v3/auth/jwks/refresh", post(refresh_jwks))
            .route("/v3/info", get(info))
            .route("/v3/config/global/get", get(config::global_get))
            .route("/v3/config/global/patch", patch(config::global_patch))
            .route(
                "/v3/config/pathdefaults/get",
                get(config::path_defaults_get),
            )
            .route(
                "/v3/config/pathdefaults/patch",
                patch(config::path_defaults_patch),
            )
            .route("/v3/config/paths/list", get(config::paths_list))
            .route("/v3/config/paths/get/{*name}", get(config::paths_get))
            .route("/v3/config/paths/add/{*name}", post(config::paths_add))
            .route("/v3/config/paths/patch/{*name}", patch(config::paths_patch))
            .route(
                "/v3/config/paths/replace/{*name}",
                post(config::paths_replace),
            )
            .route(
                "/v3/config/paths/delete/{*name}",
                delete(config::paths_delete),
            )
            .fallback(paths::not_found)
            .layer(axum::middleware::from_fn_with_state(
                manager.clone(),
                guard::guard,
            ))
            // After the guard: probes (Kubernetes, load balancers) carry no credentials,
            // and the answer tells nothing but whether the listeners are up.
            .route("/v3/health", get(health))
            .with_state(ApiState {
                started: server
                    .upgrade()
                    .map_or_else(std::time::SystemTime::now, |s| s.started),
                manager,
                server,
            });
        let listener = crate::http::AppListener {
            what: "API",
            addr: config.api_address.0,
            tls: config.api_encryption.then_some((
                config.api_server_key.as_str(),
                config.api_server_cert.as_str(),
            )),
            write_timeout: config.write_timeout.0,
            limits: crate::http::serve::ServeLimits::of(config),
            admit,
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

/// The routes and their responses as an OpenAPI 3.1 document (tests/api_openapi.rs
/// checks the real responses against it).
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

/// MediaMTX's `/v3/info`: the version and when the server started, plus the address
/// each running listener is bound to (the dashboard builds its URLs from them).
/// Readiness and liveness for probes: 200 while every listener the config enables is
/// open, else 503 naming those that aren't (one that failed to bind on a reload).
async fn health(
    axum::extract::State(s): axum::extract::State<ApiState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(srv) = s.server.upgrade() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "stopping" })),
        )
            .into_response();
    };
    let down = srv.listeners_down();
    let (code, status) = match down.is_empty() {
        true => (axum::http::StatusCode::OK, "ok"),
        false => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "degraded"),
    };
    let body = serde_json::json!({ "status": status, "listenersDown": down });
    (
        code,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn info(axum::extract::State(s): axum::extract::State<ApiState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut listeners = serde_json::Map::new();
    if let Some(srv) = s.server.upgrade() {
        let bound = [
            ("rtsp", srv.rtsp_addr()),
            ("rtsps", srv.rtsps_addr()),
            ("rtmp", srv.rtmp_addr()),
            ("rtmps", srv.rtmps_addr()),
            ("hls", srv.http_addr()),
            ("api", srv.api_addr()),
            ("metrics", srv.metrics_addr()),
            ("playback", srv.playback_addr()),
            ("webrtc", srv.webrtc_addr()),
            ("webrtcUDP", srv.webrtc_udp_addr()),
        ];
        for (name, addr) in bound {
            if let Some(a) = addr {
                listeners.insert(name.into(), a.to_string().into());
            }
        }
    }
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started": humantime::format_rfc3339_millis(s.started).to_string(),
        "listeners": listeners,
    }))
    .into_response()
}
