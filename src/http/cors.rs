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
