//! fMP4 as an HLS source fetches it (or a recording is read back): an init section
//! and media fragments, then the fragments' frames as units.
#![no_main]
use bytes::Bytes;
use mediarouter::format::fmp4::demux::{parse_fragments, parse_init};
use mediarouter::format::segment::fmp4_frames;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let init = parse_init(data);
    let bytes = Bytes::copy_from_slice(data);
    let mut out = Vec::new();
    let _ = parse_fragments(&bytes, &mut out);
    if let Ok(tracks) = init {
        if let Ok(frames) = fmp4_frames(&tracks, &bytes) {
            for f in frames {
                let t = f.dts;
                f.into_units(0, t, 90_000, |_| {});
            }
        }
    }
});
