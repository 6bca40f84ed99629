//! Request URLs → path names and track controls. `rtsp://host:8554/live/cam1/trackID=0?x=y`
//! names path `live/cam1`, track 0; the query is kept aside for later auth.

/// The path part of a request URL, percent-decoded, without leading or trailing slashes.
pub fn url_path(url: &rtsp_types::Url) -> String {
    let raw = url.path();
    let decoded = percent_decode(raw);
    decoded.trim_matches('/').to_string()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `live/cam1/trackID=2` into (`live/cam1`, 2). Paths without the suffix give `None`.
pub fn split_track_id(path: &str) -> (&str, Option<usize>) {
    if let Some((base, last)) = path.rsplit_once('/') {
        if let Some(n) = last.strip_prefix("trackID=") {
            if let Ok(n) = n.parse() {
                return (base, Some(n));
            }
        }
    }
    (path, None)
}

/// The path a publisher's `a=control` refers to, given the ANNOUNCE path.
/// Controls may be absolute URLs, relative (`streamid=0`), or absent/`*` (the base itself).
pub fn control_path(base: &str, control: Option<&str>) -> String {
    match control {
        None | Some("") | Some("*") => base.to_string(),
        Some(c) if c.contains("://") => match rtsp_types::Url::parse(c) {
            Ok(u) => url_path(&u),
            Err(_) => c.to_string(),
        },
        Some(c) => format!("{base}/{}", c.trim_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_controls() {
        let u = rtsp_types::Url::parse("rtsp://127.0.0.1:8554/live/cam%201/?key=abc").unwrap();
        assert_eq!(url_path(&u), "live/cam 1");
        assert_eq!(
            split_track_id("live/cam1/trackID=3"),
            ("live/cam1", Some(3))
        );
        assert_eq!(split_track_id("live/cam1"), ("live/cam1", None));
        assert_eq!(split_track_id("trackID=1"), ("trackID=1", None));
        assert_eq!(
            control_path("live/a", Some("streamid=0")),
            "live/a/streamid=0"
        );
        assert_eq!(
            control_path("live/a", Some("rtsp://h:1/live/a/streamid=1")),
            "live/a/streamid=1"
        );
        assert_eq!(control_path("live/a", Some("*")), "live/a");
        assert_eq!(control_path("live/a", None), "live/a");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }
}
