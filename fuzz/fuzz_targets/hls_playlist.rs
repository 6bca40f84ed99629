//! Playlists a pulled HLS source fetches: parsed as the source parses them, and every
//! URI in them (variants, segments, maps, parts) resolved against the playlist's own.
#![no_main]
use mediarouter::http::client::resolve;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base: http::Uri = "http://origin.example:8888/live/cam/index.m3u8".parse().unwrap();
    match m3u8_rs::parse_playlist_res(data) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => {
            for v in &m.variants {
                let _ = resolve(&base, &v.uri);
            }
        }
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => {
            for s in &m.segments {
                let _ = resolve(&base, &s.uri);
                if let Some(map) = &s.map {
                    let _ = resolve(&base, &map.uri);
                }
            }
        }
        Err(_) => {}
    }
});
