//! `/v3/paths/*`: a path's publisher or source (with the source's state), whether it
//! is ready and since when, its tracks and its readers.

use crate::config::PathPattern;
use crate::core::{PathInfo, PathManager};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    name: String,
    conf_name: String,
    source: Option<Source>,
    ready: bool,
    ready_time: Option<String>,
    available: bool,
    available_time: Option<String>,
    online: bool,
    online_time: Option<String>,
    tracks: Vec<String>,
    tracks2: Vec<super::tracks::TrackInfo>,
    readers: Vec<PeerRef>,
    /// Readers by protocol (`rtsp`, `rtmp`, `httpFlv`, `hls`, `record`, …).
    readers_per_protocol: std::collections::BTreeMap<&'static str, usize>,
    /// Media bytes the publisher put in (payloads, without protocol framing).
    inbound_bytes: u64,
    /// What readers' connections wrote, framing included.
    outbound_bytes: u64,
    bytes_received: u64,
    bytes_sent: u64,
    /// Bits per second over the last five seconds.
    inbound_bitrate: u64,
    outbound_bitrate: u64,
    /// The transcode stage publishing this path, if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    transcode: Option<crate::transcode::StageSnapshot>,
}

#[derive(Serialize)]
struct PeerRef {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
}

/// MediaMTX's `{type, id}`, plus what a pulled source is doing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// `connecting`, `ready` or `retrying` for pulled sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u32>,
}

fn item(manager: &PathManager, info: PathInfo, conf_name: String) -> Item {
    let ready = info.ready_time.is_some();
    let transcode = manager.stage_status(&info.name);
    let mut source = info.source.map(|(kind, id)| Source {
        kind,
        id: id.to_string(),
        url: None,
        state: None,
        error: None,
        failures: None,
    });
    if let (Some(s), Some(st)) = (source.as_mut(), manager.source_status(&info.name)) {
        s.state = Some(match (ready, &st.error) {
            (true, _) => "ready",
            (false, None) => "connecting",
            (false, Some(_)) => "retrying",
        });
        s.error = st.error.filter(|_| !ready);
        s.failures = Some(st.failures);
        s.url = Some(st.url);
    }
    let ready_time = info
        .ready_time
        .map(|t| humantime::format_rfc3339_millis(t).to_string());
    let mut readers_per_protocol = std::collections::BTreeMap::new();
    for (_, _, peer) in &info.readers {
        *readers_per_protocol.entry(peer.protocol()).or_default() += 1;
    }
    Item {
        name: info.name,
        conf_name,
        source,
        ready,
        ready_time: ready_time.clone(),
        available: ready,
        available_time: ready_time.clone(),
        online: ready,
        online_time: ready_time,
        tracks: info
            .tracks
            .iter()
            .map(|t| super::tracks::label(&t.codec))
            .collect(),
        tracks2: info.tracks.iter().map(super::tracks::describe).collect(),
        readers: info
            .readers
            .into_iter()
            .map(|(kind, id, _)| PeerRef {
                kind,
                id: id.to_string(),
            })
            .collect(),
        readers_per_protocol,
        inbound_bytes: info.bytes_received,
        outbound_bytes: info.bytes_sent,
        bytes_received: info.bytes_received,
        bytes_sent: info.bytes_sent,
        inbound_bitrate: info.inbound_bitrate,
        outbound_bitrate: info.outbound_bitrate,
        transcode,
    }
}

/// The live paths, and the exact-name entries of the config that have none yet.
fn items(manager: &PathManager) -> Vec<Item> {
    let mut out: Vec<Item> = manager
        .path_names()
        .into_iter()
        .filter_map(|n| manager.path(&n))
        .map(|p| item(manager, p.info(), p.conf_name().to_string()))
        .collect();
    for (pattern, _) in &manager.config().paths {
        if let PathPattern::Exact(name) = pattern {
            if !out.iter().any(|i| &i.name == name) {
                let idle = PathInfo {
                    name: name.clone(),
                    ..Default::default()
                };
                out.push(item(manager, idle, name.clone()));
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page {
    page: Option<usize>,
    items_per_page: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct List<T> {
    page_count: usize,
    item_count: usize,
    items: Vec<T>,
}

/// MediaMTX's pages: `itemsPerPage` (100) items from page `page` (0).
pub(super) fn paginate<T>(all: Vec<T>, q: &Page) -> List<T> {
    let per = q.items_per_page.unwrap_or(100).max(1);
    let page = q.page.unwrap_or(0);
    let item_count = all.len();
    let items = all
        .into_iter()
        .skip(page.saturating_mul(per))
        .take(per)
        .collect();
    List {
        page_count: item_count.div_ceil(per),
        item_count,
        items,
    }
}

pub(super) async fn list(State(manager): State<PathManager>, Query(q): Query<Page>) -> Response {
    Json(paginate(items(&manager), &q)).into_response()
}

pub(super) async fn get(State(manager): State<PathManager>, Path(name): Path<String>) -> Response {
    match items(&manager).into_iter().find(|i| i.name == name) {
        Some(i) => Json(i).into_response(),
        None => error(StatusCode::NOT_FOUND, "path not found"),
    }
}

pub(super) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

pub(super) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}
