//! HLS out (in progress, issue 5): the sans-io pieces the per-path muxer will drive.
//! `segmenter` cuts units into MPEG-TS segments; playlists are in `format::m3u8`.

pub mod segmenter;
