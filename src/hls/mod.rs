//! HLS out: `GET /<path>/index.m3u8` (multivariant), `stream.m3u8` (media playlist)
//! and `seg<N>.ts`, from one shared muxer per path (`muxer`) that cuts MPEG-TS
//! segments (`segmenter`). Playlists are written by `format::m3u8`.

pub mod fmp4_segmenter;
pub mod muxer;
pub mod segmenter;

pub use muxer::{HlsMuxers, MuxerConfig};
