//! What a pulled HLS source may reach through the URIs its playlists name (SSRF): the
//! configured URL is the operator's, but variant, segment and init URIs come from the
//! remote server. Checked on the resolved address before connecting, so a DNS answer
//! can't swap in an internal address after the check.

use std::net::IpAddr;

/// How far inside the network an address is; higher is more internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    Public,
    /// RFC 1918, carrier-grade NAT, IPv6 unique-local.
    Private,
    /// This machine.
    Loopback,
    /// Link-local (169.254.0.0/16, fe80::/10: cloud metadata services live there),
    /// multicast, broadcast and unspecified addresses: never reached through a playlist.
    Never,
}

pub fn reach(ip: IpAddr) -> Reach {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            if a.is_loopback() {
                Reach::Loopback
            } else if a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || o0 == 0
            {
                Reach::Never
            } else if a.is_private() || (o0 == 100 && (64..128).contains(&o1)) {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            if a.is_loopback() {
                Reach::Loopback
            } else if a.is_unspecified() || a.is_multicast() || (first & 0xffc0) == 0xfe80 {
                Reach::Never
            } else if (first & 0xfe00) == 0xfc00 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

/// Whether a URI named by a playlist fetched from an address of `origin` reach may
/// take the source to `target`: never further inside than the playlist's own server,
/// and never to link-local or the like. (The playlist's own host and port are always
/// allowed: the caller doesn't ask.)
pub fn may_follow(origin: Reach, target: Reach) -> bool {
    target != Reach::Never && target <= origin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reach {
        reach(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        assert_eq!(r("8.8.8.8"), Reach::Public);
        assert_eq!(r("2001:db8::1"), Reach::Public);
        assert_eq!(r("10.1.2.3"), Reach::Private);
        assert_eq!(r("192.168.1.1"), Reach::Private);
        assert_eq!(r("172.16.0.1"), Reach::Private);
        assert_eq!(r("100.64.0.1"), Reach::Private);
        assert_eq!(r("fd00::1"), Reach::Private);
        assert_eq!(r("127.0.0.1"), Reach::Loopback);
        assert_eq!(r("::1"), Reach::Loopback);
        assert_eq!(r("::ffff:127.0.0.1"), Reach::Loopback);
        assert_eq!(r("169.254.169.254"), Reach::Never);
        assert_eq!(r("::ffff:169.254.169.254"), Reach::Never);
        assert_eq!(r("fe80::1"), Reach::Never);
        assert_eq!(r("0.0.0.0"), Reach::Never);
        assert_eq!(r("224.0.0.1"), Reach::Never);
    }

    #[test]
    fn a_playlist_never_sends_the_source_further_in() {
        use Reach::*;
        assert!(may_follow(Public, Public));
        assert!(!may_follow(Public, Private));
        assert!(!may_follow(Public, Loopback));
        assert!(may_follow(Private, Public));
        assert!(may_follow(Private, Private));
        assert!(!may_follow(Private, Loopback));
        assert!(may_follow(Loopback, Loopback));
        for o in [Public, Private, Loopback, Never] {
            assert!(!may_follow(o, Never));
        }
    }
}
