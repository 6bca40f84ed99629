//! Track descriptions: which codec a stream's track carries and the parameters a
//! reader needs before the first unit (parameter sets, audio config).

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    H264 {
        sps: Option<Bytes>,
        pps: Option<Bytes>,
    },
    H265 {
        vps: Option<Bytes>,
        sps: Option<Bytes>,
        pps: Option<Bytes>,
    },
    /// MPEG-4 AAC; `config` is the AudioSpecificConfig.
    Aac {
        config: Bytes,
        sample_rate: u32,
        channels: u8,
    },
    Opus {
        channels: u8,
    },
    /// Any other RTP payload: passed through RTSP→RTSP untouched.
    Other(OtherCodec),
}

/// An RTP format this server does not interpret, described by its SDP lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherCodec {
    /// SDP media type: `video`, `audio`, `application`, …
    pub media: String,
    pub payload_type: u8,
    /// The `a=rtpmap` value after the payload type, e.g. `PCMU/8000`.
    pub rtpmap: Option<String>,
    /// The `a=fmtp` value after the payload type.
    pub fmtp: Option<String>,
}

impl Codec {
    pub fn name(&self) -> &str {
        match self {
            Codec::H264 { .. } => "H264",
            Codec::H265 { .. } => "H265",
            Codec::Aac { .. } => "AAC",
            Codec::Opus { .. } => "Opus",
            Codec::Other(o) => o
                .rtpmap
                .as_deref()
                .and_then(|m| m.split('/').next())
                .unwrap_or("unknown"),
        }
    }

    pub fn is_video(&self) -> bool {
        match self {
            Codec::H264 { .. } | Codec::H265 { .. } => true,
            Codec::Other(o) => o.media == "video",
            _ => false,
        }
    }

    /// Whether units of this codec carry a meaningful keyframe flag that readers must wait for.
    pub fn has_keyframes(&self) -> bool {
        matches!(self, Codec::H264 { .. } | Codec::H265 { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub codec: Codec,
    /// Timestamp units per second (90000 for video, the sample rate for audio, 48000 for Opus).
    pub clock_rate: u32,
}

impl Track {
    pub fn new(codec: Codec, clock_rate: u32) -> Self {
        Track { codec, clock_rate }
    }
}

/// Tracks the unit tests of several modules build streams and muxers from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Codec, Track};
    use bytes::Bytes;

    /// H.264 at 90 kHz, parameter sets not known yet.
    pub fn h264() -> Track {
        Track::new(
            Codec::H264 {
                sps: None,
                pps: None,
            },
            90000,
        )
    }

    /// H.264 640x360 (Constrained Baseline 3.0) with its parameter sets.
    pub fn h264_with_sets() -> Track {
        let hex = |s: &str| Bytes::from(crate::codec::aac::decode_hex(s).unwrap());
        Track::new(
            Codec::H264 {
                sps: Some(hex("6742c01eda0280bfe5c044000003000400000300f03c58ba80")),
                pps: Some(hex("68ce0fc8")),
            },
            90000,
        )
    }

    /// Video frame `n` of track 0 at 30 fps (90 kHz), one small NAL unit.
    pub fn video(n: i64, keyframe: bool) -> crate::core::Unit {
        crate::core::Unit {
            track: 0,
            pts: n * 3000,
            dts: n * 3000,
            keyframe,
            payload: crate::core::Payload::Nalus(vec![Bytes::from_static(&[0x41, 1, 2, 3])]),
        }
    }

    /// AAC frame `n` (1024 samples) of track 1.
    pub fn aac_frame(n: i64) -> crate::core::Unit {
        crate::core::Unit {
            track: 1,
            pts: n * 1024,
            dts: n * 1024,
            keyframe: true,
            payload: crate::core::Payload::Frame(Bytes::from_static(&[0x21, 0, 0])),
        }
    }

    /// AAC-LC, 48 kHz, stereo.
    pub fn aac() -> Track {
        Track::new(
            Codec::Aac {
                config: Bytes::from_static(&[0x11, 0x90]),
                sample_rate: 48000,
                channels: 2,
            },
            48000,
        )
    }
}
