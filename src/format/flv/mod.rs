//! FLV (Adobe FLV 10.1 Annex E) with Enhanced RTMP video (FourCC `hvc1`), sans-io:
//! file header, tag framing, and audio/video tag bodies in both directions. Written by
//! hand: no maintained crate muxes FLV or knows Enhanced RTMP. RTMP carries the same
//! tag bodies as its audio/video messages, so both protocols share these builders.

mod audio;
pub mod mux;
mod tag;
mod video;

pub use audio::{aac_frame, aac_sequence_header, parse_audio, AudioPacket};
pub use tag::{file_header, parse_tag, tag, Tag, TagType, TAG_HEADER_LEN};
pub use video::{
    parse_video, split_nalus, video_end_of_sequence, video_frame, video_sequence_header,
    VideoCodec, VideoPacket,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlvError {
    #[error("FLV {0} truncated")]
    Truncated(&'static str),
    #[error("unsupported FLV {0}")]
    Unsupported(String),
    #[error("malformed FLV {0}")]
    Malformed(&'static str),
}
