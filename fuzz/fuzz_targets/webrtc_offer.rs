//! WHEP/WHIP offers: any text is answered or refused (as a reader of H.264 + Opus and
//! as a publisher), never a panic inside str0m or our track selection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = std::str::from_utf8(data) {
        mediarouter::webrtc::fuzz_offer(offer);
    }
});
