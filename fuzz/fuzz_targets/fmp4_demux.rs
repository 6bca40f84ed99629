//! fMP4 as an HLS source fetches it: an init section and media fragments.
#![no_main]
use bytes::Bytes;
use mediarouter::format::fmp4::demux::{parse_fragments, parse_init};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_init(data);
    let mut out = Vec::new();
    let _ = parse_fragments(&Bytes::copy_from_slice(data), &mut out);
});
