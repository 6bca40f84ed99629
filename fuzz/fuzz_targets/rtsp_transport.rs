//! `Transport` header values a SETUP carries: every offered transport is negotiated
//! against every set of enabled transports; what is chosen must be a consecutive pair.
#![no_main]
use mediarouter::config::RtspTransport::{Multicast, Tcp, Udp};
use mediarouter::rtsp::transport::{negotiate, reply, wants_multicast, TrackTransport};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for allowed in [&[Udp, Tcp][..], &[Tcp], &[Udp], &[Udp, Multicast, Tcp]] {
        let _ = wants_multicast(Some(text), allowed);
        let Ok(t) = negotiate(Some(text), allowed, 4) else {
            continue;
        };
        match t {
            TrackTransport::Tcp {
                rtp_channel,
                rtcp_channel,
            } => assert_eq!(Some(rtcp_channel), rtp_channel.checked_add(1)),
            TrackTransport::Udp {
                client_rtp,
                client_rtcp,
            } => assert_eq!(Some(client_rtcp), client_rtp.checked_add(1)),
            _ => {}
        }
        let _ = reply(&t, Some((8000, 8001)), Some(1));
    }
});
