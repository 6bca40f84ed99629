//! MediaMTX's `/v3/recordings/list`, `/v3/recordings/get/{name}` and
//! `DELETE /v3/recordings/deletesegment?path=&start=`: the paths with recorded segments
//! and each segment's start, found on disk as the playback server finds them.

use super::paths::{error, paginate, Page};
use super::ApiState;
use crate::config::Config;
use crate::playback::segments;
use crate::record::pattern::{files_under, RecordPattern};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// The names of the paths that have segments on disk, each under the entry that
/// records it now.
fn recorded_paths(config: &Config) -> Vec<String> {
    let mut names = BTreeSet::new();
    for (pattern, conf) in &config.paths {
        let conf = conf.clone().unwrap_or_default();
        let p = RecordPattern::new(&conf.record_path, conf.record_format.extension());
        for f in files_under(&p.base_dir(None), 16) {
            let Some((name, _)) = f.to_str().and_then(|f| p.parse(None, f)) else {
                continue;
            };
            let owner = config.find_path(&name).map(|m| m.entry);
            if owner.as_deref() == Some(pattern.entry_name().as_str()) {
                names.insert(name);
            }
        }
    }
    names.into_iter().collect()
}

/// The path's recording, if `name` is a valid path name that an entry matches (a
/// `..` never reaches the file system).
fn recording(config: &Config, name: &str) -> Option<Value> {
    crate::config::validate_path_name(name).ok()?;
    let m = config.find_path(name)?;
    let segs: Vec<Value> = segments::find(&m.conf, name)
        .iter()
        .map(|s| json!({ "start": crate::playback::format_time(s.start) }))
        .collect();
    Some(json!({ "name": name, "segments": segs }))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(super) async fn list(State(s): State<ApiState>, Query(q): Query<Page>) -> Response {
    let config = s.manager.config();
    let items = blocking(move || {
        recorded_paths(&config)
            .iter()
            .filter_map(|n| recording(&config, n))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(paginate(items, &q)).into_response()
}

pub(super) async fn get(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let config = s.manager.config();
    match blocking(move || recording(&config, &name)).await.flatten() {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "no path configuration matches"),
    }
}

/// Deletes the segment of `path` that starts at `start` (RFC 3339). Only a file the
/// path's `recordPath` made is ever removed: it is looked up among them, not built
/// from the request.
pub(super) async fn delete_segment(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(path), Some(start)) = (q.get("path").cloned(), q.get("start")) else {
        return error(StatusCode::BAD_REQUEST, "'path' and 'start' are required");
    };
    let start = match crate::playback::parse_time(start) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if crate::config::validate_path_name(&path).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid path name");
    }
    let config = s.manager.config();
    let Some(m) = config.find_path(&path) else {
        return error(StatusCode::NOT_FOUND, "no path configuration matches");
    };
    let found = blocking(move || {
        let seg = segments::find(&m.conf, &path)
            .into_iter()
            .find(|seg| seg.start == start)?;
        Some(std::fs::remove_file(&seg.file).map(|_| seg.file))
    })
    .await
    .flatten();
    match found {
        None => error(StatusCode::NOT_FOUND, "no segment starts at that time"),
        Some(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("can't delete: {e}"),
        ),
        Some(Ok(file)) => {
            tracing::info!(file = %file.display(), "recording segment deleted through the API");
            StatusCode::OK.into_response()
        }
    }
}
