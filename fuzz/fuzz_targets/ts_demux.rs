//! MPEG-TS as an HLS source's segment may hold it: packets into the demuxer, then its
//! PES payloads split into NAL units and ADTS frames as the HLS source does.
#![no_main]
use bytes::Bytes;
use mediarouter::format::mpegts::demux::{next_adts, split_annexb, TsDemuxer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut d = TsDemuxer::default();
    let mut out = Vec::new();
    // Lost sync ends the segment, as it does for the source.
    let _ = d.push(data, &mut out);
    d.flush(&mut out);
    for p in out {
        let _ = split_annexb(&p.data);
        let mut pos = 0;
        while next_adts(&p.data, &mut pos).is_some() {}
    }
    let raw = Bytes::copy_from_slice(data);
    let _ = split_annexb(&raw);
    let mut pos = 0;
    while next_adts(&raw, &mut pos).is_some() {}
});
