//! `/v3/config/*`: the effective config as MediaMTX's API shows it (passwords
//! redacted), and writes that edit the config document, go through the same
//! validation and diff-apply as a file reload, and are saved back to the file.

use super::{error, ApiState};
use crate::config::edit::{redact, redact_path, Edit};
use crate::server::ConfigWriteError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(super) async fn global_get(State(s): State<ApiState>) -> Response {
    let mut v = to_value(&*s.manager.config());
    redact(&mut v);
    if let Value::Object(m) = &mut v {
        m.remove("paths");
        m.remove("pathDefaults");
    }
    Json(v).into_response()
}

pub(super) async fn path_defaults_get(State(s): State<ApiState>) -> Response {
    let config = s.manager.config();
    let mut v = to_value(&config.path_defaults.clone().unwrap_or_default());
    redact_path(&mut v);
    Json(v).into_response()
}

/// Every `paths:` entry, named as written, with `pathDefaults` merged in.
fn path_confs(s: &ApiState) -> Vec<Value> {
    s.manager
        .config()
        .paths
        .iter()
        .map(|(pattern, conf)| {
            let mut v = to_value(&conf.clone().unwrap_or_default());
            redact_path(&mut v);
            let mut item = Map::new();
            item.insert("name".into(), pattern.entry_name().into());
            if let Value::Object(m) = v {
                item.extend(m);
            }
            Value::Object(item)
        })
        .collect()
}

pub(super) async fn paths_list(
    State(s): State<ApiState>,
    Query(q): Query<super::paths::Page>,
) -> Response {
    Json(super::paths::paginate(path_confs(&s), &q)).into_response()
}

pub(super) async fn paths_get(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    match path_confs(&s)
        .into_iter()
        .find(|v| v["name"] == name.as_str())
    {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "path configuration not found"),
    }
}

/// The write `edit` makes of the JSON object the request sends.
async fn write_body(
    s: &ApiState,
    b: &Bytes,
    edit: impl FnOnce(Map<String, Value>) -> Edit,
) -> Response {
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(m)) => write(s, edit(m)).await,
        Ok(_) => error(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
        Err(e) => error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    }
}

async fn write(s: &ApiState, edit: Edit) -> Response {
    let Some(server) = s.server.upgrade() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    };
    match server.write_config(edit).await {
        Ok(_) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(e) => {
            let status = match &e {
                ConfigWriteError::NotFound(_) => StatusCode::NOT_FOUND,
                ConfigWriteError::Invalid(_) => StatusCode::BAD_REQUEST,
                ConfigWriteError::Conflict(_) => StatusCode::CONFLICT,
                ConfigWriteError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ConfigWriteError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!("API config write refused ({}): {e}", status.as_u16());
            error(status, &e.to_string())
        }
    }
}

pub(super) async fn global_patch(State(s): State<ApiState>, b: Bytes) -> Response {
    write_body(&s, &b, Edit::Global).await
}

pub(super) async fn path_defaults_patch(State(s): State<ApiState>, b: Bytes) -> Response {
    write_body(&s, &b, Edit::PathDefaults).await
}

pub(super) async fn paths_add(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Bytes,
) -> Response {
    write_body(&s, &b, |m| Edit::AddPath(name, m)).await
}

pub(super) async fn paths_patch(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Bytes,
) -> Response {
    write_body(&s, &b, |m| Edit::PatchPath(name, m)).await
}

pub(super) async fn paths_replace(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Bytes,
) -> Response {
    write_body(&s, &b, |m| Edit::ReplacePath(name, m)).await
}

pub(super) async fn paths_delete(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    write(&s, Edit::DeletePath(name)).await
}
