//! MPEG-TS as an HLS source's segment (or an MPEG-TS recording) may hold it: packets
//! into the demuxer, the tracks its PES packets describe, and their frames as units.
#![no_main]
use bytes::Bytes;
use mediarouter::format::mpegts::demux::{next_adts, split_annexb, TsDemuxer};
use mediarouter::format::segment::{ts_frames, ts_tracks};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut d = TsDemuxer::default();
    let mut out = Vec::new();
    // Lost sync ends the segment, as it does for the source.
    let _ = d.push(data, &mut out);
    d.flush(&mut out);
    let tracks = ts_tracks(&out);
    for f in ts_frames(out, |_, t| t as i64) {
        let (track, clock) = match &tracks {
            Some((t, pids)) => {
                let i = pids.get(&(f.key as u16)).copied().unwrap_or(0);
                (i, i64::from(t.get(i).map_or(90_000, |t| t.clock_rate.max(1))))
            }
            None => (0, 90_000),
        };
        let t = f.dts;
        f.into_units(track, t, clock, |_| {});
    }
    let raw = Bytes::copy_from_slice(data);
    let _ = split_annexb(&raw);
    let mut pos = 0;
    while next_adts(&raw, &mut pos).is_some() {}
});
