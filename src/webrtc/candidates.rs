//! The addresses a session offers the browser as ICE host candidates: the UDP
//! socket's own address, or when it listens on every interface, the interfaces'
//! addresses (`webrtcIPsFromInterfaces[List]`), plus `webrtcAdditionalHosts` (the
//! address a NAT or Docker maps to this host).

use crate::config::Config;
use std::net::{IpAddr, SocketAddr};

/// Addresses to offer for a socket bound to `bound`, IPv4 first.
pub(crate) async fn gather(config: &Config, bound: SocketAddr) -> Vec<SocketAddr> {
    let port = bound.port();
    let mut ips: Vec<IpAddr> = Vec::new();
    if !bound.ip().is_unspecified() {
        ips.push(bound.ip());
    } else if config.webrtc_ips_from_interfaces {
        let list = &config.webrtc_ips_from_interfaces_list;
        for i in if_addrs::get_if_addrs().unwrap_or_default() {
            if !list.is_empty() && !list.contains(&i.name) {
                continue;
            }
            ips.push(i.ip());
        }
    }
    for host in &config.webrtc_additional_hosts {
        match host.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => ips.extend(addrs.map(|a| a.ip())),
                Err(e) => tracing::warn!("webrtcAdditionalHosts: {host} does not resolve: {e}"),
            },
        }
    }
    usable(ips, bound.is_ipv6() || bound.ip().is_unspecified())
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// Without duplicates, link-local IPv6 (it needs a scope the SDP can't carry) and,
/// for an IPv4 socket, IPv6; IPv4 first.
fn usable(ips: Vec<IpAddr>, v6: bool) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ips {
        let ok = match ip {
            IpAddr::V4(v4) => !v4.is_unspecified(),
            IpAddr::V6(v6addr) => {
                v6 && !v6addr.is_unspecified() && (v6addr.segments()[0] & 0xffc0) != 0xfe80
            }
        };
        if ok && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out.sort_by_key(|ip| ip.is_ipv6());
    out
}

/// The candidate a datagram that arrived at local address `at` was sent to: `at`
/// itself when it is one, else (the client sent to an address a NAT maps here, an
/// additional host) the first offered address that is not a local one.
pub(crate) fn arrived_at(at: SocketAddr, offered: &[SocketAddr], local: &[IpAddr]) -> SocketAddr {
    if offered.contains(&at) {
        return at;
    }
    offered
        .iter()
        .find(|a| !local.contains(&a.ip()))
        .copied()
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn usable_addresses_ipv4_first_without_link_local() {
        let ips: Vec<IpAddr> = [
            "fe80::1",
            "::1",
            "10.0.0.2",
            "127.0.0.1",
            "10.0.0.2",
            "0.0.0.0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let got = usable(ips.clone(), true);
        assert_eq!(
            got,
            ["10.0.0.2", "127.0.0.1", "::1"].map(|s| s.parse::<IpAddr>().unwrap())
        );
        assert_eq!(usable(ips, false).len(), 2);
    }

    #[tokio::test]
    async fn a_bound_address_is_the_candidate_and_hosts_are_added() {
        let c = Config {
            webrtc_additional_hosts: vec!["203.0.113.7".into(), "localhost".into()],
            ..Default::default()
        };
        let got = gather(&c, a("127.0.0.1:8189")).await;
        assert_eq!(got[0], a("127.0.0.1:8189"));
        assert!(got.contains(&a("203.0.113.7:8189")), "{got:?}");
        let all = gather(&Config::default(), a("0.0.0.0:9000")).await;
        assert!(all.contains(&a("127.0.0.1:9000")), "{all:?}");
        let only = Config {
            webrtc_ips_from_interfaces: false,
            ..Default::default()
        };
        assert!(gather(&only, a("0.0.0.0:9000")).await.is_empty());
    }

    #[test]
    fn datagrams_through_a_nat_map_to_the_public_candidate() {
        let offered = [a("10.0.0.5:8189"), a("203.0.113.7:8189")];
        let local: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "10.1.0.1".parse().unwrap()];
        assert_eq!(arrived_at(a("10.0.0.5:8189"), &offered, &local), offered[0]);
        assert_eq!(arrived_at(a("10.1.0.1:8189"), &offered, &local), offered[1]);
        assert_eq!(
            arrived_at(a("10.1.0.1:8189"), &offered[..1], &local),
            a("10.1.0.1:8189")
        );
    }
}
