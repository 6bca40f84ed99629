//! A track as MediaMTX's API describes it (`tracks2`): the codec's label and what
//! the parameter sets say (picture size, profile, level; sample rate, channels).

use crate::core::{Codec, Track};
use serde::Serialize;

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrackInfo {
    pub codec: String,
    pub codec_props: serde_json::Value,
}

/// MediaMTX's codec labels, where it has one.
pub(crate) fn label(codec: &Codec) -> String {
    match codec {
        Codec::H264 { .. } => "H264".into(),
        Codec::H265 { .. } => "H265".into(),
        Codec::Aac { .. } => "MPEG-4 Audio".into(),
        Codec::Opus { .. } => "Opus".into(),
        Codec::Other(o) => match o.rtpmap.as_deref().and_then(|m| m.split('/').next()) {
            Some(e) if e.eq_ignore_ascii_case("PCMU") || e.eq_ignore_ascii_case("PCMA") => {
                "G711".into()
            }
            Some(e) if e.eq_ignore_ascii_case("G722") => "G722".into(),
            Some(e) if e.eq_ignore_ascii_case("VP8") => "VP8".into(),
            Some(e) if e.eq_ignore_ascii_case("VP9") => "VP9".into(),
            Some(e) if e.eq_ignore_ascii_case("AV1") => "AV1".into(),
            Some(e) if e.eq_ignore_ascii_case("JPEG") => "M-JPEG".into(),
            Some(e) => e.to_string(),
            None => "Generic".into(),
        },
    }
}

fn h264_profile(idc: u8) -> String {
    match idc {
        66 => "Baseline".into(),
        77 => "Main".into(),
        88 => "Extended".into(),
        100 => "High".into(),
        110 => "High 10".into(),
        122 => "High 4:2:2".into(),
        244 => "High 4:4:4 Predictive".into(),
        n => n.to_string(),
    }
}

fn h265_profile(idc: u8) -> String {
    match idc {
        1 => "Main".into(),
        2 => "Main 10".into(),
        3 => "Main Still Picture".into(),
        4 => "Range Extensions".into(),
        n => n.to_string(),
    }
}

/// `level_idc` is ten times the level in H.264 and thirty times in H.265.
fn level(idc: u8, scale: u32) -> String {
    let (major, minor) = (idc as u32 / scale, (idc as u32 % scale) * 10 / scale);
    if minor == 0 {
        major.to_string()
    } else {
        format!("{major}.{minor}")
    }
}

pub(crate) fn describe(track: &Track) -> TrackInfo {
    use serde_json::json;
    let props = match &track.codec {
        Codec::H264 { sps, .. } => match sps
            .as_deref()
            .and_then(|s| crate::codec::h264_sps::parse(s).ok())
        {
            Some(s) => json!({
                "width": s.width, "height": s.height,
                "profile": h264_profile(s.profile_idc), "level": level(s.level_idc, 10),
            }),
            None => json!({}),
        },
        Codec::H265 { sps, .. } => match sps
            .as_deref()
            .and_then(|s| crate::codec::h265_sps::parse(s).ok())
        {
            Some(s) => json!({
                "width": s.width, "height": s.height,
                "profile": h265_profile(s.profile_idc), "level": level(s.level_idc, 30),
            }),
            None => json!({}),
        },
        Codec::Aac {
            sample_rate,
            channels,
            ..
        } => json!({ "sampleRate": sample_rate, "channelCount": channels }),
        Codec::Opus { channels } => json!({ "channelCount": channels }),
        Codec::Other(o) => {
            let rate = o
                .rtpmap
                .as_deref()
                .and_then(|m| m.split('/').nth(1))
                .and_then(|r| r.parse::<u32>().ok());
            match rate {
                Some(r) if o.media == "audio" => json!({ "sampleRate": r }),
                _ => json!({}),
            }
        }
    };
    TrackInfo {
        codec: label(&track.codec),
        codec_props: props,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_from_parameter_sets() {
        let t = describe(&crate::core::fixtures::h264_with_sets());
        assert_eq!(t.codec, "H264");
        assert_eq!(
            t.codec_props,
            serde_json::json!({"width": 640, "height": 360, "profile": "Baseline", "level": "3"})
        );
        let a = describe(&crate::core::fixtures::aac());
        assert_eq!(a.codec, "MPEG-4 Audio");
        assert_eq!(
            a.codec_props,
            serde_json::json!({"sampleRate": 48000, "channelCount": 2})
        );
        assert_eq!(level(123, 30), "4.1");
        assert_eq!(level(31, 10), "3.1");
        assert_eq!(
            describe(&crate::core::fixtures::h264()).codec_props,
            serde_json::json!({})
        );
    }
}
