//! Raw bytes of an RTSP connection: framing, requests, ANNOUNCE SDPs, interleaved RTP.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mediarouter::rtsp::fuzz_session(data);
});
