//! An ANNOUNCE body; whatever parses must also describe and parse back.
#![no_main]
use mediarouter::format::sdp;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(medias) = sdp::parse_announce(data, 16) {
        let tracks: Vec<_> = medias
            .iter()
            .map(|m| (m.track.clone(), m.payload_type))
            .collect();
        let _ = sdp::parse_announce(sdp::describe(&tracks).as_bytes(), 16);
    }
});
