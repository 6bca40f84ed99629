//! Web assets built into the binary (rust-embed over `web/`): the per-path player
//! page and the hls.js it loads (vendored from npm, see `web/package.json`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
#[include = "player.html"]
#[include = "vendor/*.js"]
struct Web;

fn asset(file: &str, content_type: &'static str, cache: &'static str) -> Response {
    match Web::get(file) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, cache),
            ],
            f.data,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The player page: it plays `index.m3u8` next to it, so one page serves every path.
pub fn player() -> Response {
    asset("player.html", "text/html; charset=utf-8", "no-cache")
}

pub fn hls_js() -> Response {
    asset(
        "vendor/hls.min.js",
        "application/javascript; charset=utf-8",
        "max-age=86400",
    )
}
