//! Codec bitstream knowledge shared by every protocol: NAL types, keyframes,
//! parameter sets, AAC AudioSpecificConfig.

pub mod aac;
pub mod bits;
pub mod config_record;
pub mod h264;
pub mod h264_dts;
pub mod h264_sps;
pub mod h265;
pub mod h265_sps;
pub mod reorder_dts;
