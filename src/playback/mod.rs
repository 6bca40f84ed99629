//! The playback server (`playback`, `playbackAddress`; MediaMTX's API): `/list` gives a
//! path's recorded spans, `/get` one fMP4 or MP4 cut from them (MPEG-TS recordings too), `/`
//! a page that lists and plays them. Every request needs the `playback` permission on
//! its path, and only files the path's `recordPath` made are ever opened.

mod get;
pub mod segments;

use crate::core::PathManager;
use crate::http::conn::Peer;
use crate::server::ListenError;
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Local, SecondsFormat};
use segments::SegmentFile;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Downloads served at once; more get 503 (each holds a file and a blocking thread).
const MAX_DOWNLOADS: usize = 32;
/// Segments that start within this of the previous one's end continue its span.
const CONCAT_TOLERANCE: Duration = Duration::from_secs(1);

pub struct PlaybackServer {
    pub local_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct App {
    manager: PathManager,
    downloads: Arc<tokio::sync::Semaphore>,
}

impl PlaybackServer {
    pub async fn start(
        config: &crate::config::Config,
        manager: PathManager,
        listen: CancellationToken,
    ) -> Result<PlaybackServer, ListenError> {
        let admit = manager.admission("playback");
        let app = App {
            manager,
            downloads: Arc::new(tokio::sync::Semaphore::new(MAX_DOWNLOADS)),
        };
        let router = axum::Router::new()
            .route("/list", get(list))
            .route("/get", get(download))
            .route("/", get(|| async { crate::http::assets::playback_page() }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
            .layer(axum::middleware::from_fn_with_state(app.clone(), cors))
            .with_state(app);
        let listener = crate::http::AppListener {
            what: "playback",
            addr: config.playback_address.0,
            tls: config.playback_encryption.then_some((
                config.playback_server_key.as_str(),
                config.playback_server_cert.as_str(),
            )),
            write_timeout: config.write_timeout.0,
            limits: crate::http::serve::ServeLimits::of(config),
            admit,
        };
        let (local_addr, task) = crate::http::serve_app(listener, router, listen).await?;
        Ok(PlaybackServer { local_addr, task })
    }
}

/// `playbackAllowOrigins` on every answer; preflights answered here.
async fn cors(State(app): State<App>, req: Request, next: Next) -> Response {
    let config = app.manager.config();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allow = crate::http::cors::allow_origin(&config.playback_allow_origins, origin.as_ref());
    if req.method() == Method::OPTIONS {
        return crate::http::cors::preflight(allow, "GET, OPTIONS", "Authorization");
    }
    let mut r = next.run(req).await;
    if let Some(o) = allow {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    r
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "status": "error", "error": msg.to_string() })),
    )
        .into_response()
}

fn params(q: &Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn parse_time(s: &str) -> Result<SystemTime, String> {
    DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .map_err(|e| format!("invalid time '{s}': {e} (use RFC 3339, e.g. 2026-01-02T15:04:05Z)"))
}

pub(crate) fn format_time(t: SystemTime) -> String {
    DateTime::<Local>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The path's name checked, its permission checked and its recorded segments found.
async fn segments_of(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    raw: &str,
) -> Result<(String, Vec<SegmentFile>), Response> {
    let name = q.get("path").cloned().unwrap_or_default();
    // Before anything reads a file or asks the auth backend: the name becomes part of
    // a file path, so only the config's path names pass (no '..', no leading '/').
    crate::config::validate_path_name(&name)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid path: {e}")))?;
    let config = app.manager.config();
    let asked = crate::http::auth::Asked {
        ip: crate::http::auth::client_ip(peer.ip(), headers, &config.playback_trusted_proxies),
        headers,
        query: raw,
        action: crate::auth::Action::Playback,
        path: &name,
        protocol: "playback",
    };
    crate::http::auth::check(&app.manager, asked).await?;
    let Some(m) = config.find_path(&name) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no path of the config matches",
        ));
    };
    let conf = m.conf.clone();
    let n = name.clone();
    let segs = tokio::task::spawn_blocking(move || segments::find(&conf, &n))
        .await
        .unwrap_or_default();
    if segs.is_empty() {
        return Err(error(StatusCode::NOT_FOUND, "no recording found"));
    }
    Ok((name, segs))
}

#[derive(serde::Serialize)]
struct Span {
    start: String,
    duration: f64,
    url: String,
}

async fn list(
    State(app): State<App>,
    ConnectInfo(Peer(peer, _)): ConnectInfo<Peer>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = params(&raw);
    let (start, end) = match (
        q.get("start").map(|s| parse_time(s)).transpose(),
        q.get("end").map(|s| parse_time(s)).transpose(),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (name, segs) =
        match segments_of(&app, peer, &headers, &q, raw.as_deref().unwrap_or_default()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let spans = tokio::task::spawn_blocking(move || spans(&segs))
        .await
        .unwrap_or_default();
    let mut spans: Vec<(SystemTime, Duration)> = spans
        .into_iter()
        .filter_map(|(s, d)| {
            let e = s + d;
            let s2 = start.map_or(s, |x| x.max(s));
            let e2 = end.map_or(e, |x| x.min(e));
            (e2 > s2).then(|| (s2, e2.duration_since(s2).unwrap_or_default()))
        })
        .collect();
    if spans.is_empty() {
        return error(StatusCode::NOT_FOUND, "no recording in that range");
    }
    let config = app.manager.config();
    let proxied = config
        .playback_trusted_proxies
        .iter()
        .any(|n| n.contains(peer.ip()));
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|_| proxied)
        .unwrap_or(if config.playback_encryption {
            "https"
        } else {
            "http"
        })
        .to_string();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let out: Vec<Span> = spans
        .drain(..)
        .map(|(s, d)| {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("path", &name)
                .append_pair("start", &format_time(s))
                .append_pair("duration", &d.as_secs_f64().to_string())
                .finish();
            Span {
                start: format_time(s),
                duration: d.as_secs_f64(),
                url: format!("{scheme}://{host}/get?{query}"),
            }
        })
        .collect();
    axum::Json(out).into_response()
}

/// Contiguous runs of segments of the same tracks: (start, duration).
fn spans(segs: &[SegmentFile]) -> Vec<(SystemTime, Duration)> {
    let mut out: Vec<(SystemTime, Duration, Vec<crate::core::Track>)> = Vec::new();
    for s in segs {
        let Ok(p) = segments::probe(s) else { continue };
        if p.duration.is_zero() {
            continue;
        }
        if let Some((start, dur, tracks)) = out.last_mut() {
            let end = *start + *dur;
            let near = match s.start.duration_since(end) {
                Ok(gap) => gap <= CONCAT_TOLERANCE,
                Err(e) => e.duration() <= CONCAT_TOLERANCE,
            };
            if near && *tracks == p.tracks {
                *dur = (s.start + p.duration)
                    .duration_since(*start)
                    .unwrap_or(*dur);
                continue;
            }
        }
        out.push((s.start, p.duration, p.tracks));
    }
    out.into_iter().map(|(s, d, _)| (s, d)).collect()
}

async fn download(
    State(app): State<App>,
    ConnectInfo(Peer(peer, _)): ConnectInfo<Peer>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = params(&raw);
    let start = match q.get("start").map(|s| parse_time(s)) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        None => return error(StatusCode::BAD_REQUEST, "start is missing"),
    };
    let duration = match q.get("duration").map(|d| d.parse::<f64>()) {
        Some(Ok(d)) if d.is_finite() && d > 0.0 && d < 1e9 => Duration::from_secs_f64(d),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "duration must be a positive number of seconds",
            )
        }
    };
    let mp4 = match q.get("format").map(String::as_str) {
        None | Some("fmp4") => false,
        Some("mp4") => true,
        Some(f) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown format '{f}' (fmp4 or mp4)"),
            )
        }
    };
    let (name, segs) =
        match segments_of(&app, peer, &headers, &q, raw.as_deref().unwrap_or_default()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let end = start + duration;
    // Segments that may hold part of the range: those starting before its end whose
    // successor starts after its start.
    let mut picked: Vec<SegmentFile> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let next_after = segs.get(i + 1).is_none_or(|n| n.start > start);
        if s.start < end && next_after {
            picked.push(s.clone());
        }
    }
    if picked.is_empty() {
        return error(StatusCode::NOT_FOUND, "no recording in that range");
    }
    let Ok(permit) = app.downloads.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many downloads at once",
        );
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let p = name.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let send = |b| tx.blocking_send(b).is_ok();
        let r = match mp4 {
            true => get::write_mp4(&picked, start, duration, send),
            false => get::write_fmp4(&picked, start, duration, send),
        };
        if let Err(e) = r {
            tracing::warn!(path = %p, "playback download ended early: {e}");
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut r = axum::body::Body::from_stream(body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    r
}

#[cfg(test)]
mod tests;
