//! Fragmented MP4 (ISO/IEC 14496-12, CMAF), sans-io: the init segment (`ftyp` +
//! `moov` with `mvex`) and media fragments (`moof` + `mdat`) for H.264, H.265, AAC and
//! Opus, and plain MP4 headers for downloads. Boxes are encoded by `mp4-atom`; this
//! module decides what goes in them.

pub mod demux;
mod fragment;
mod init;
pub mod progressive;

pub use fragment::{fragment, Sample, TrackRun};
pub use init::{carries, codec_string, init_segment};

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("no track of this stream fits in fMP4 (H.264, H.265, AAC, Opus)")]
    NoTracks,
    #[error("the video parameter sets are not known yet")]
    NoParameterSets,
    #[error("bad parameter set: {0}")]
    ParameterSet(#[from] crate::codec::config_record::ConfigRecordError),
    #[error("MP4 encoding failed: {0}")]
    Encode(#[from] mp4_atom::Error),
}

/// `sample_flags` (ISO/IEC 14496-12 §8.8.3.1): a sync sample depends on no other.
pub const SYNC_SAMPLE: u32 = 0x0200_0000;
/// A sample that depends on others and is not a sync sample.
pub const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

#[cfg(test)]
mod tests;
