//! Vhosts (`pathVhosts`, SRS's `vhost`): the host a client named (an RTMP `tcUrl` or
//! `?vhost=`, an HTTP `Host` header) goes in front of the path, so `paths:` entries and
//! permissions can differ per domain on one server. A host that is an address, not a
//! name, adds nothing (SRS's default vhost).

/// The vhost `host` (with or without a port) names: lowercase, without a trailing
/// dot; `None` for an IP address or anything that isn't a DNS name.
pub fn from_host(host: &str) -> Option<String> {
    let host = host.trim();
    if host.starts_with('[') {
        return None; // an IPv6 literal
    }
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    (valid && name.parse::<std::net::IpAddr>().is_err()).then_some(name)
}

/// `<vhost>/<path>`, or the path alone without a vhost.
pub fn prefixed(vhost: Option<&str>, path: &str) -> String {
    match vhost {
        Some(v) => format!("{v}/{path}"),
        None => path.to_string(),
    }
}

/// An RTMP client's vhost: `vhost=` in the query of its `tcUrl`, app or stream name
/// (as SRS reads it), else the host of its `tcUrl`.
pub fn of_rtmp(tc_url: &str, app: &str, name: &str) -> Option<String> {
    for s in [name, app, tc_url] {
        let Some((_, query)) = s.split_once('?') else {
            continue;
        };
        if let Some(v) = query.split('&').find_map(|kv| kv.strip_prefix("vhost=")) {
            return from_host(v);
        }
    }
    let rest = tc_url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    from_host(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            from_host("Cam.Example.com:8888").as_deref(),
            Some("cam.example.com")
        );
        assert_eq!(
            from_host("cam.example.com.").as_deref(),
            Some("cam.example.com")
        );
        assert_eq!(from_host("localhost").as_deref(), Some("localhost"));
        for none in [
            "127.0.0.1",
            "127.0.0.1:1935",
            "[::1]:8888",
            "",
            "a..b",
            "a/b",
            "x y",
        ] {
            assert_eq!(from_host(none), None, "{none}");
        }
    }

    #[test]
    fn rtmp() {
        assert_eq!(
            of_rtmp("rtmp://cam.example.com/live", "live", "a").as_deref(),
            Some("cam.example.com")
        );
        assert_eq!(
            of_rtmp(
                "rtmp://10.0.0.1/live?vhost=b.example",
                "live?vhost=b.example",
                "a"
            )
            .as_deref(),
            Some("b.example")
        );
        assert_eq!(
            of_rtmp(
                "rtmp://10.0.0.1:1935/live",
                "live",
                "a?vhost=c.example&key=1"
            )
            .as_deref(),
            Some("c.example")
        );
        assert_eq!(of_rtmp("rtmp://10.0.0.1/live", "live", "a"), None);
        assert_eq!(of_rtmp("", "live", "a"), None);
        assert_eq!(prefixed(Some("v.example"), "live/a"), "v.example/live/a");
        assert_eq!(prefixed(None, "live/a"), "live/a");
    }
}
