//! `*AllowOrigins` lists: `*`, exact origins, or one `*` standing for a host prefix
//! (`http://*.example.com`), as MediaMTX allows.

use axum::http::HeaderValue;

/// Whether `origin` (an `Origin` header's value) is in `allow`.
pub fn allowed(allow: &[String], origin: &str) -> bool {
    allow.iter().any(|a| match a.split_once('*') {
        None => a == origin,
        Some(("", "")) => true,
        Some((head, tail)) => {
            origin.len() >= head.len() + tail.len()
                && origin.starts_with(head)
                && origin.ends_with(tail)
                // The wildcard covers host labels, not a scheme or a path.
                && !origin[head.len()..origin.len() - tail.len()].contains(['/', ':'])
        }
    })
}

/// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
pub fn allow_origin(allow: &[String], origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    if allow.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin?;
    allowed(allow, origin.to_str().ok()?).then(|| origin.clone())
}

/// The answer to a preflight (`OPTIONS`): what a page at an allowed origin may send;
/// nothing for another origin. A preflight carries no credentials, so no check runs.
pub fn preflight(
    origin: Option<HeaderValue>,
    methods: &'static str,
    headers: &'static str,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
    if let Some(o) = origin {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(headers),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_any_and_wildcard_origins() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allowed(&list(&["*"]), "https://evil.example"));
        let l = list(&["http://*.example.com", "https://app.test"]);
        assert!(allowed(&l, "http://a.example.com"));
        assert!(allowed(&l, "http://a.b.example.com"));
        assert!(allowed(&l, "https://app.test"));
        assert!(!allowed(&l, "https://a.example.com"));
        assert!(!allowed(&l, "http://example.com"));
        assert!(!allowed(&l, "http://evil.test/x.example.com"));
        assert!(!allowed(&l, "http://evil.test:80.example.com"));
        assert!(!allowed(&l, "null"));
        assert!(!allowed(&[], "https://app.test"));
    }
}
