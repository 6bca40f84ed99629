//! Bytes an RTMP peer sends after the handshake: chunks, control messages, AMF0
//! commands, and FLV media bodies into the publisher ingest.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mediarouter::rtmp::fuzz_session(data);
});
