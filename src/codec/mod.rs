//! Codec bitstream knowledge shared by every protocol: NAL types, keyframes,
//! parameter sets, AAC AudioSpecificConfig.

pub mod aac;
pub mod h264;
pub mod h265;
