//! HLS requests under `/<path>/`: playlists (with LL-HLS blocking reload), segments,
//! parts, init sections, and the player page with its script.

use super::{assets, HttpCtx};
use crate::hls::PlaylistReply;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A playlist an HTTP cache may keep for `keep` (whole seconds; under one second it
/// must ask again each time, with the `ETag` to get a 304 when nothing changed).
fn playlist(text: String, keep: Duration) -> Response {
    let cache = match keep.as_secs() {
        0 => "no-cache".to_string(),
        s => format!("max-age={s}"),
    };
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hash);
    let etag = format!("\"{:016x}\"", hash.finish());
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.apple.mpegurl".to_string(),
            ),
            (header::CACHE_CONTROL, cache),
            (header::ETAG, etag),
        ],
        text,
    )
        .into_response()
}

/// Segments, parts and init sections: a name is never used for other bytes (media
/// sequence numbers and ids go on across muxers), so caches keep them as long as any
/// player could ask.
const IMMUTABLE: &str = "public, max-age=86400, immutable";

/// What isn't there yet may be soon: no cache may keep the answer.
fn missing(text: &'static str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        text,
    )
        .into_response()
}

fn not_ready() -> Response {
    missing("no HLS segment is ready yet\n")
}

/// `_HLS_msn` and `_HLS_part` of a blocking playlist request; `Err` if malformed.
fn blocking(query: Option<&str>) -> Result<Option<(u64, Option<u64>)>, ()> {
    let (mut msn, mut part) = (None, None);
    for kv in query.unwrap_or("").split('&') {
        match kv.split_once('=') {
            Some(("_HLS_msn", v)) => msn = Some(v.parse::<u64>().map_err(|_| ())?),
            Some(("_HLS_part", v)) => part = Some(v.parse::<u64>().map_err(|_| ())?),
            _ => {}
        }
    }
    match (msn, part) {
        (None, Some(_)) => Err(()),
        (None, None) => Ok(None),
        (Some(m), p) => Ok(Some((m, p))),
    }
}

/// `<name><number>.<ext>`, e.g. `seg12.mp4`.
fn numbered(file: &str, prefix: &str, ext: &str) -> Option<u64> {
    let n = file
        .strip_prefix(prefix)?
        .strip_suffix(ext)?
        .strip_suffix('.')?;
    if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

pub(super) async fn serve(ctx: &HttpCtx, name: &str, file: &str, query: Option<&str>) -> Response {
    if crate::config::validate_path_name(name).is_err() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match file {
        "" => return assets::player(),
        "hls.min.js" => return assets::hls_js(),
        _ => {}
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            format!("no one is publishing to path '{name}'\n"),
        )
            .into_response()
    };
    if matches!(file, "index.m3u8" | "stream.m3u8") {
        ctx.manager
            .demand_with(name, query.unwrap_or_default())
            .await;
    }
    let Some(m) = ctx.hls.get(name) else {
        return not_found();
    };
    let wait = ctx.hls.first_segment_wait();
    match file {
        "index.m3u8" => match m
            .multivariant(wait, &renditions(ctx, name, wait).await)
            .await
        {
            Some(t) => playlist(t, Duration::ZERO),
            None => not_ready(),
        },
        "stream.m3u8" => {
            let Ok(block) = blocking(query) else {
                return (StatusCode::BAD_REQUEST, "bad _HLS_msn or _HLS_part\n").into_response();
            };
            match m.media_playlist(wait, block).await {
                PlaylistReply::Playlist(t, keep) => playlist(t, keep),
                PlaylistReply::NotReady => not_ready(),
                PlaylistReply::TooFar => (
                    StatusCode::BAD_REQUEST,
                    "_HLS_msn/_HLS_part is too far ahead of the playlist\n",
                )
                    .into_response(),
            }
        }
        _ => {
            let ext = m.extension();
            let (data, content_type) = if let Some(n) = numbered(file, "seg", ext) {
                let ct = if ext == "ts" {
                    "video/mp2t"
                } else {
                    "video/mp4"
                };
                (m.segment(n), ct)
            } else if let Some(n) = numbered(file, "part", "mp4").filter(|_| ext == "mp4") {
                (m.part(n).await, "video/mp4")
            } else if let Some(n) = numbered(file, "init", "mp4").filter(|_| ext == "mp4") {
                (m.init(n), "video/mp4")
            } else {
                return missing("no such HLS file\n");
            };
            match data {
                Some(d) => (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CACHE_CONTROL, IMMUTABLE),
                    ],
                    d,
                )
                    .into_response(),
                None => missing("no longer held, or not yet cut\n"),
            }
        }
    }
}

/// The HLS variants of `name`'s transcode renditions that have a stream, as
/// (URI relative to the path's playlist, variant).
async fn renditions(
    ctx: &HttpCtx,
    name: &str,
    wait: std::time::Duration,
) -> Vec<(String, crate::hls::VariantInfo)> {
    let config = ctx.manager.config();
    let Some(t) = config
        .find_path(name)
        .and_then(|m| m.conf.transcode.clone())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in &t.renditions {
        let path = format!("{name}/{}", r.name);
        if config.rendition_of(&path).is_none() {
            continue;
        }
        if let Some(m) = ctx.hls.get(&path) {
            if let Some(v) = m.variant(wait).await {
                out.push((format!("{}/stream.m3u8", r.name), v));
            }
        }
    }
    out
}

/// A 304 for a request whose `If-None-Match` names the response's `ETag` (RFC 9110
/// 13.1.2: weak comparison, a list, or `*`); `None` to send the response.
pub(super) fn not_modified(
    if_none_match: Option<&HeaderValue>,
    resp: &Response,
) -> Option<Response> {
    let tag = resp.headers().get(header::ETAG)?.to_str().ok()?;
    let asked = if_none_match?.to_str().ok()?;
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let hit = asked
        .split(',')
        .any(|t| t.trim() == "*" || weak(t) == weak(tag));
    if !hit {
        return None;
    }
    let mut out = StatusCode::NOT_MODIFIED.into_response();
    for h in [header::ETAG, header::CACHE_CONTROL] {
        if let Some(v) = resp.headers().get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match() {
        let resp = playlist("#EXTM3U\n".into(), Duration::from_millis(500));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
        let tag = resp.headers()[header::ETAG].clone();
        let ask = |v: &str| not_modified(Some(&HeaderValue::from_str(v).unwrap()), &resp);
        let got = ask(tag.to_str().unwrap()).expect("304");
        assert_eq!(got.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(got.headers()[header::ETAG], tag);
        assert!(ask(&format!("\"x\", W/{}", tag.to_str().unwrap())).is_some());
        assert!(ask("*").is_some());
        assert!(ask("\"other\"").is_none());
        assert!(not_modified(None, &resp).is_none());
        let kept = playlist("#EXTM3U\n".into(), Duration::from_secs(6));
        assert_eq!(kept.headers()[header::CACHE_CONTROL], "max-age=6");
    }

    #[test]
    fn file_names_and_queries() {
        assert_eq!(numbered("seg12.mp4", "seg", "mp4"), Some(12));
        assert_eq!(numbered("seg.mp4", "seg", "mp4"), None);
        assert_eq!(numbered("seg+1.mp4", "seg", "mp4"), None);
        assert_eq!(numbered("seg12.ts", "seg", "mp4"), None);
        assert_eq!(numbered("seg99999999999999999999999.ts", "seg", "ts"), None);
        assert_eq!(blocking(None), Ok(None));
        assert_eq!(blocking(Some("_HLS_msn=5")), Ok(Some((5, None))));
        assert_eq!(
            blocking(Some("_HLS_msn=5&_HLS_part=2")),
            Ok(Some((5, Some(2))))
        );
        assert_eq!(blocking(Some("_HLS_part=2")), Err(()));
        assert_eq!(blocking(Some("_HLS_msn=x")), Err(()));
        assert_eq!(blocking(Some("_HLS_skip=YES")), Ok(None));
    }
}
