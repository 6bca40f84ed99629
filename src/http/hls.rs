//! HLS requests under `/<path>/`: playlists (with LL-HLS blocking reload), segments,
//! parts, init sections, and the player page with its script.

use super::{assets, HttpCtx};
use crate::hls::PlaylistReply;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

fn playlist(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

fn not_ready() -> Response {
    (StatusCode::NOT_FOUND, "no HLS segment is ready yet\n").into_response()
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
            Some(t) => playlist(t),
            None => not_ready(),
        },
        "stream.m3u8" => {
            let Ok(block) = blocking(query) else {
                return (StatusCode::BAD_REQUEST, "bad _HLS_msn or _HLS_part\n").into_response();
            };
            match m.media_playlist(wait, block).await {
                PlaylistReply::Playlist(t) => playlist(t),
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
                return StatusCode::NOT_FOUND.into_response();
            };
            match data {
                Some(d) => ([(header::CONTENT_TYPE, content_type)], d).into_response(),
                None => (StatusCode::NOT_FOUND, "no longer held, or not yet cut\n").into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
