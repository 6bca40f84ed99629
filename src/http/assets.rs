//! Web assets built into the binary (rust-embed over `web/`): the per-path player
//! page and the hls.js it loads (vendored from npm, see `web/package.json`), the
//! recordings page and the API's dashboard.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
#[include = "player.html"]
#[include = "playback.html"]
#[include = "dashboard.html"]
#[include = "webrtc.html"]
#[include = "webrtc_publish.html"]
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

/// The recordings page of the playback server.
pub fn playback_page() -> Response {
    asset("playback.html", "text/html; charset=utf-8", "no-cache")
}

/// The dashboard the API listener serves at `/`.
pub fn dashboard() -> Response {
    asset("dashboard.html", "text/html; charset=utf-8", "no-cache")
}

/// The WebRTC reader page (it plays `whep` next to it) or publish page (`whip`).
pub fn webrtc_page(publish: bool) -> Response {
    let file = if publish {
        "webrtc_publish.html"
    } else {
        "webrtc.html"
    };
    asset(file, "text/html; charset=utf-8", "no-cache")
}

pub fn hls_js() -> Response {
    asset(
        "vendor/hls.min.js",
        "application/javascript; charset=utf-8",
        "max-age=86400",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored hls.js is the version `web/package.json` pins (re-run
    /// `npm ci && npm run vendor` in web/ after changing it).
    #[test]
    fn embedded_hls_js_is_the_pinned_version() {
        let pkg: serde_json::Value =
            serde_json::from_str(include_str!("../../web/package.json")).unwrap();
        let version = pkg["devDependencies"]["hls.js"].as_str().unwrap();
        let js = Web::get("vendor/hls.min.js").unwrap().data;
        let needle = format!("\"{version}\"");
        assert!(js.windows(needle.len()).any(|w| w == needle.as_bytes()));
        let page = Web::get("player.html").unwrap().data;
        let page = String::from_utf8_lossy(&page);
        assert!(page.contains("<script src=\"hls.min.js\"></script>"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
        let dash = Web::get("dashboard.html").unwrap().data;
        let dash = String::from_utf8_lossy(&dash);
        assert!(
            !dash.contains("<script src="),
            "the dashboard loads no script"
        );
        assert!(!dash.contains(".innerHTML"), "client data goes in as text");
        for page in ["webrtc.html", "webrtc_publish.html"] {
            let p = Web::get(page).unwrap().data;
            let p = String::from_utf8_lossy(&p);
            assert!(!p.contains("<script src="), "{page} loads no script");
            assert!(
                !p.contains("http://") && !p.contains("https://"),
                "{page}: no CDN"
            );
            assert!(
                !p.contains(".innerHTML"),
                "{page}: server text goes in as text"
            );
        }
    }
}
