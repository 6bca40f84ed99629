//! Datagrams on the shared WebRTC UDP port: routing (STUN parsing, address lookup)
//! never panics, and an address is routed to a session only after that session
//! vouched for it (`learn`), never because of what a datagram says.
#![no_main]
use mediarouter::webrtc::mux::{Mux, Route};
use std::net::SocketAddr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut m = Mux::default();
    m.add("srvA".to_string(), 1u32);
    m.add("srvB".to_string(), 2u32);
    let vouched = SocketAddr::from(([10, 0, 0, 1], 5000));
    m.learn(&1, vouched);
    let stranger = SocketAddr::from(([10, 0, 0, 9], 9));
    // The first byte picks a source; the rest is the datagram.
    let (from, d) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => (vouched, rest),
        Some((_, rest)) => (stranger, rest),
        None => (stranger, data),
    };
    match m.route(from, d) {
        Route::To(k) if from == vouched => assert_eq!(k, 1),
        // A stranger is routed only by a binding request's username.
        Route::To(_) => assert!(d.first().is_some_and(|b| *b < 4)),
        Route::Drop(_) => {}
    }
    m.remove(&1);
    assert!(!matches!(m.route(vouched, &[0x80]), Route::To(1)));
});
