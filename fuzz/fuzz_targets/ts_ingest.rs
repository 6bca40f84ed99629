//! A live MPEG-TS feed (an SRT publisher's datagrams) cut at arbitrary places: the
//! first byte picks the datagram size. No panic; units only once tracks are known.
#![no_main]
use mediarouter::format::mpegts::ingest::TsIngest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let size = usize::from(size).max(1) * 8;
    let mut ingest = TsIngest::default();
    let mut units = Vec::new();
    let mut started = false;
    for chunk in rest.chunks(size) {
        match ingest.push(chunk, &mut units) {
            Ok(Some(tracks)) => {
                assert!(!started && !tracks.is_empty());
                started = true;
            }
            Ok(None) => {}
            Err(_) => return,
        }
        assert!(started || units.is_empty());
        for u in &units {
            assert!(u.track < 2);
        }
    }
});
