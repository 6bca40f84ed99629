//! SETUP transport negotiation: picks what the client offered and the config allows,
//! and writes the reply's `Transport` header.

use crate::config::RtspTransport;
use rtsp_types::headers::{RtpLowerTransport, RtpProfile, Transport, Transports};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackTransport {
    /// Interleaved on the RTSP connection: RTP and RTCP channel numbers.
    Tcp { rtp_channel: u8, rtcp_channel: u8 },
    /// Plain UDP to the client's RTP and RTCP ports.
    Udp { client_rtp: u16, client_rtcp: u16 },
    /// The track's multicast group, shared by the path's multicast readers.
    Multicast {
        group: std::net::Ipv4Addr,
        rtp_port: u16,
        rtcp_port: u16,
    },
}

fn parse(header: Option<&str>) -> Result<Transports, TransportError> {
    let header = header.ok_or(TransportError::Invalid)?;
    if panics_rtsp_types(header) {
        return Err(TransportError::Invalid);
    }
    let req = rtsp_types::Request::builder(rtsp_types::Method::Setup, rtsp_types::Version::V1_0)
        .header(rtsp_types::headers::TRANSPORT, header)
        .empty();
    req.typed_header::<Transports>()
        .map_err(|_| TransportError::Invalid)?
        .ok_or(TransportError::Invalid)
}

/// Shapes that rtsp-types 0.1.3 panics on (found by the `rtsp_transport` fuzz target):
/// it takes a lone `"` at the end of the header for a whole quoted value and slices
/// inside it (`mode="`), slices a lone `"` piece of a `dest_addr`/`src_addr` list
/// (`dest_addr="a"/"/"`), and asserts on a backslash ending an address (`"a\"`).
/// No client quotes more than an address or a mode, so these are refused whole.
fn panics_rtsp_types(header: &str) -> bool {
    let lone_last = header
        .strip_suffix('"')
        .is_some_and(|rest| rest.trim_end_matches([' ', '\t']).ends_with(['=', '/']));
    header.contains('\\') || header.contains("/\"/") || lone_last
}

/// Whether the client's first offer that this server takes is multicast (then the
/// session assigns the track's group instead of calling `negotiate`).
pub fn wants_multicast(header: Option<&str>, allowed: &[RtspTransport]) -> bool {
    let Ok(transports) = parse(header) else {
        return false;
    };
    for t in transports.iter() {
        let Transport::Rtp(rtp) = t else { continue };
        if rtp.profile != RtpProfile::Avp {
            continue;
        }
        if rtp.params.multicast {
            if allowed.contains(&RtspTransport::Multicast)
                && rtp.lower_transport != Some(RtpLowerTransport::Tcp)
            {
                return true;
            }
        } else if unicast(t, allowed, 0).is_some() {
            return false;
        }
    }
    false
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("missing or invalid Transport header")]
    Invalid,
    #[error("no offered transport is enabled (rtspTransports)")]
    Unsupported,
}

/// Chooses the first offered transport this server supports. `next_channel` is used when
/// a TCP client leaves the interleaved channels to the server.
pub fn negotiate(
    header: Option<&str>,
    allowed: &[RtspTransport],
    next_channel: u8,
) -> Result<TrackTransport, TransportError> {
    let transports = parse(header)?;
    transports
        .iter()
        .find_map(|t| unicast(t, allowed, next_channel))
        .ok_or(TransportError::Unsupported)
}

/// The unicast transport an offer asks for, if this server takes it.
fn unicast(t: &Transport, allowed: &[RtspTransport], next_channel: u8) -> Option<TrackTransport> {
    let Transport::Rtp(rtp) = t else { return None };
    if rtp.profile != RtpProfile::Avp || rtp.params.multicast {
        return None;
    }
    match rtp.lower_transport {
        // RTCP goes on the next channel or port (RFC 2326 §12.39, RFC 3550 §11): a
        // pair that isn't one (`client_port=1000-2000`, `interleaved=255`) is refused
        // rather than sent to ports the client didn't mean.
        Some(RtpLowerTransport::Tcp) if allowed.contains(&RtspTransport::Tcp) => {
            let (a, b) = rtp.params.interleaved.unwrap_or((next_channel, None));
            let rtcp = a.checked_add(1)?;
            (b.unwrap_or(rtcp) == rtcp).then_some(TrackTransport::Tcp {
                rtp_channel: a,
                rtcp_channel: rtcp,
            })
        }
        None | Some(RtpLowerTransport::Udp) if allowed.contains(&RtspTransport::Udp) => {
            let (rtp_port, rtcp_port) = rtp.params.client_port?;
            let rtcp = rtp_port.checked_add(1)?;
            (rtp_port != 0 && rtcp_port.unwrap_or(rtcp) == rtcp).then_some(TrackTransport::Udp {
                client_rtp: rtp_port,
                client_rtcp: rtcp,
            })
        }
        _ => None,
    }
}

/// The reply's Transport header.
pub fn reply(t: &TrackTransport, server_ports: Option<(u16, u16)>, ssrc: Option<u32>) -> String {
    let mut s = match t {
        TrackTransport::Tcp {
            rtp_channel,
            rtcp_channel,
        } => {
            format!("RTP/AVP/TCP;unicast;interleaved={rtp_channel}-{rtcp_channel}")
        }
        TrackTransport::Udp {
            client_rtp,
            client_rtcp,
        } => {
            let mut s = format!("RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp}");
            if let Some((a, b)) = server_ports {
                s += &format!(";server_port={a}-{b}");
            }
            s
        }
        TrackTransport::Multicast {
            group,
            rtp_port,
            rtcp_port,
        } => format!(
            "RTP/AVP;multicast;destination={group};port={rtp_port}-{rtcp_port};ttl={}",
            super::multicast::TTL
        ),
    };
    if let Some(ssrc) = ssrc {
        s += &format!(";ssrc={ssrc:08X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    const BOTH: &[RtspTransport] = &[RtspTransport::Udp, RtspTransport::Tcp];

    #[test]
    fn shapes_rtsp_types_panics_on_are_refused() {
        for h in [
            "RTP/P'un;mode=\"",
            "RTP/AVP;mode= \"",
            "RTP/AVP;dest_addr=\"\"/\"",
            "RTP/AVP;dest_addr=\"a\"/\"/\"",
            "RTP/AVP;dest_addr=\"a\"/\"/\"zzz",
            "RTP/AVP;dest_addr=\"\\\"",
            "RTP/AVP;dest_addr=\"a\\\"/\"b\"\"",
        ] {
            for allowed in [BOTH, &[RtspTransport::Udp, RtspTransport::Multicast]] {
                assert_eq!(
                    negotiate(Some(h), allowed, 0),
                    Err(TransportError::Invalid),
                    "{h}"
                );
                assert!(!wants_multicast(Some(h), allowed), "{h}");
            }
        }
        // Quoted modes and address lists as clients send them still parse.
        assert!(negotiate(
            Some("RTP/AVP;unicast;client_port=5000-5001;mode=\"PLAY\""),
            BOTH,
            0
        )
        .is_ok());
        assert!(negotiate(
            Some("RTP/AVP;unicast;dest_addr=\"192.0.2.1:5000\"/\"192.0.2.1:5001\";client_port=5000-5001"),
            BOTH,
            0
        )
        .is_ok());
    }

    #[test]
    fn picks_offered() {
        assert_eq!(
            negotiate(Some("RTP/AVP/TCP;unicast;interleaved=2-3"), BOTH, 0),
            Ok(TrackTransport::Tcp {
                rtp_channel: 2,
                rtcp_channel: 3
            })
        );
        assert_eq!(
            negotiate(
                Some("RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record"),
                BOTH,
                0
            ),
            Ok(TrackTransport::Udp {
                client_rtp: 5000,
                client_rtcp: 5001
            })
        );
        assert_eq!(
            negotiate(
                Some("RTP/AVP;unicast;client_port=6000-6001"),
                &[RtspTransport::Tcp],
                0
            ),
            Err(TransportError::Unsupported)
        );
        // RTCP on anything but the next port or channel is refused.
        for odd in [
            "RTP/AVP;unicast;client_port=1000-2000",
            "RTP/AVP;unicast;client_port=65535",
            "RTP/AVP/TCP;unicast;interleaved=255",
            "RTP/AVP/TCP;unicast;interleaved=4-7",
        ] {
            assert_eq!(
                negotiate(Some(odd), BOTH, 0),
                Err(TransportError::Unsupported),
                "{odd}"
            );
        }
        assert_eq!(
            negotiate(Some("RTP/AVP/TCP;unicast"), BOTH, 4),
            Ok(TrackTransport::Tcp {
                rtp_channel: 4,
                rtcp_channel: 5
            })
        );
        // Falls through to the second offer.
        assert_eq!(
            negotiate(
                Some("RTP/AVP;multicast,RTP/AVP/TCP;unicast;interleaved=0-1"),
                BOTH,
                0
            ),
            Ok(TrackTransport::Tcp {
                rtp_channel: 0,
                rtcp_channel: 1
            })
        );
        assert_eq!(negotiate(None, BOTH, 0), Err(TransportError::Invalid));
        assert!(negotiate(Some("garbage;;;"), BOTH, 0).is_err());
    }

    #[test]
    fn multicast_when_it_is_the_first_taken_offer() {
        let all = &[
            RtspTransport::Udp,
            RtspTransport::Multicast,
            RtspTransport::Tcp,
        ];
        assert!(wants_multicast(Some("RTP/AVP;multicast"), all));
        assert!(wants_multicast(
            Some("RTP/AVP/UDP;multicast;port=5000-5001"),
            all
        ));
        assert!(!wants_multicast(Some("RTP/AVP;multicast"), BOTH));
        assert!(!wants_multicast(
            Some("RTP/AVP;unicast;client_port=5000-5001,RTP/AVP;multicast"),
            all
        ));
        assert!(wants_multicast(
            Some("RTP/AVP;unicast;client_port=5000-5001,RTP/AVP;multicast"),
            &[RtspTransport::Multicast]
        ));
        assert!(!wants_multicast(None, all));
        let t = TrackTransport::Multicast {
            group: std::net::Ipv4Addr::new(224, 1, 0, 1),
            rtp_port: 8002,
            rtcp_port: 8003,
        };
        assert_eq!(
            reply(&t, None, None),
            "RTP/AVP;multicast;destination=224.1.0.1;port=8002-8003;ttl=16"
        );
    }

    #[test]
    fn reply_format() {
        let t = TrackTransport::Udp {
            client_rtp: 5000,
            client_rtcp: 5001,
        };
        assert_eq!(
            reply(&t, Some((8000, 8001)), Some(0xabc)),
            "RTP/AVP;unicast;client_port=5000-5001;server_port=8000-8001;ssrc=00000ABC"
        );
    }
}
