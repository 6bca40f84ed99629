//! SRT stream ids (the listen callback parses them before any session exists): no
//! panic, and what parses names a path and fits libsrt's 512 bytes.
#![no_main]
use mediarouter::srt::streamid::{StreamId, MAX_LEN};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(id) = StreamId::parse(&raw) {
        assert!(!id.path.is_empty());
        assert!(raw.len() <= MAX_LEN);
        let _ = id.credentials();
    }
});
