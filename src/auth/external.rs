//! `authMethod: http`: each check is a POST of MediaMTX's JSON to `authHTTPAddress`
//! (a fresh connection, bounded by `readTimeout`); a 2xx reply allows.

use super::{Refusal, Request};
use crate::config::Config;
use bytes::Bytes;
use http_body_util::BodyExt;

/// What the auth server is sent; the field names are MediaMTX's, so its auth servers
/// work unchanged.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    ip: String,
    user: &'a str,
    password: &'a str,
    token: &'a str,
    action: &'static str,
    path: &'a str,
    protocol: &'static str,
    id: Option<&'a str>,
    query: &'a str,
    user_agent: &'a str,
}

/// Longest reply body quoted in the log.
const MAX_REPLY_QUOTED: usize = 200;

/// `Ok` when the server allows it; `Err` says why not (its status and reply, or why
/// it couldn't be asked).
pub async fn ask(cfg: &Config, req: &Request<'_>, token: &str) -> Result<(), Refusal> {
    let (user, password) = req.creds.user_pass();
    let body = Body {
        ip: req.ip.to_canonical().to_string(),
        user,
        password,
        token,
        action: req.action.as_str(),
        path: req.path,
        protocol: req.protocol,
        id: req.id,
        query: req.query,
        user_agent: req.user_agent,
    };
    let body =
        Bytes::from(serde_json::to_vec(&body).map_err(|e| Refusal::Unavailable(e.to_string()))?);
    let timeout = cfg.read_timeout.0;
    tokio::time::timeout(timeout, post(cfg, body))
        .await
        .map_err(|_| {
            Refusal::Unavailable(format!("auth server didn't answer within {timeout:?}"))
        })?
}

async fn post(cfg: &Config, body: Bytes) -> Result<(), Refusal> {
    let down = |e: anyhow::Error| Refusal::Unavailable(format!("auth server: {e:#}"));
    let uri = crate::http::client::parse(&cfg.auth_http_address).map_err(down)?;
    let mut conn = crate::http::client::HttpConn::open_pinned(&uri, cfg.auth_http_fingerprint)
        .await
        .map_err(down)?;
    let resp = conn
        .post(&uri, "application/json", body)
        .await
        .map_err(down)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let reply = http_body_util::Limited::new(resp.into_body(), MAX_REPLY_QUOTED)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = String::from_utf8_lossy(&reply);
    let reply = reply.trim();
    let why = if reply.is_empty() {
        format!("auth server replied {status}")
    } else {
        format!("auth server replied {status}: {reply:?}")
    };
    // A 5xx is the server failing, not the client being refused.
    Err(match status.is_server_error() {
        true => Refusal::Unavailable(why),
        false => Refusal::Denied(why),
    })
}
