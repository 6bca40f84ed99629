//! HLS out: `GET /<path>/index.m3u8` (multivariant), `stream.m3u8` (media playlist),
//! segments, parts and init sections, from one shared muxer per path (`muxer`) that
//! cuts MPEG-TS (`segmenter`) or fMP4 (`fmp4_segmenter`) into a `window` of segments.

pub mod disk;
pub mod fmp4_segmenter;
pub mod muxer;
pub mod segmenter;
mod sequence;
pub mod window;

pub use muxer::{HlsMuxers, MuxerConfig};
pub use window::{HlsMuxer, PlaylistReply, VariantInfo};
