//! Which of a stream's tracks a WebRTC reader gets and in which RTP format, the codecs
//! str0m may answer with for them, and what a WHIP publisher may send.

use crate::core::{Codec, Track};
use str0m::format::Codec as RtcCodec;
use str0m::RtcConfig;

/// A track a browser can play, in the form we send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sendable {
    /// `profile-level-id` of the stream's SPS (constrained baseline when unknown).
    H264(u32),
    H265,
    /// Passed through as the publisher's RTP payloads (a WHIP publisher's own codec).
    Vp8,
    Vp9,
    Av1,
    Opus,
    Pcmu,
    Pcma,
    G722,
}

impl Sendable {
    pub(crate) fn codec(self) -> RtcCodec {
        match self {
            Sendable::H264(_) => RtcCodec::H264,
            Sendable::H265 => RtcCodec::H265,
            Sendable::Vp8 => RtcCodec::Vp8,
            Sendable::Vp9 => RtcCodec::Vp9,
            Sendable::Av1 => RtcCodec::Av1,
            Sendable::Opus => RtcCodec::Opus,
            Sendable::Pcmu => RtcCodec::PCMU,
            Sendable::Pcma => RtcCodec::PCMA,
            Sendable::G722 => RtcCodec::G722,
        }
    }

    pub(crate) fn is_video(self) -> bool {
        matches!(
            self,
            Sendable::H264(_) | Sendable::H265 | Sendable::Vp8 | Sendable::Vp9 | Sendable::Av1
        )
    }
}

/// What a reader of a stream gets: at most one video and one audio track (a browser
/// plays one of each), and what it leaves out, named for the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadPlan {
    pub video: Option<(usize, Sendable)>,
    pub audio: Option<(usize, Sendable)>,
    pub left_out: Vec<String>,
}

/// Constrained Baseline, level 3.1: what every browser decodes.
const CONSTRAINED_BASELINE: u32 = 0x42e01f;
const MAIN: u32 = 0x4d001f;

/// `profile-level-id` of an SPS NAL unit.
fn profile_level_id(sps: &[u8]) -> Option<u32> {
    (sps.len() >= 4).then(|| u32::from_be_bytes([0, sps[1], sps[2], sps[3]]))
}

/// The profile a `profile-level-id` names, as str0m tells them apart (RFC 6184 table 5):
/// answers may not hold two payload types of one profile.
fn h264_profile(id: u32) -> (u8, u8) {
    let [_, idc, iop, _] = id.to_be_bytes();
    match idc {
        // Constrained Baseline: constraint_set1 (or set0 and set1 both, as Main's subset).
        66 | 77 | 88 if iop & 0x40 != 0 => (66, 0x40),
        100 if iop & 0x0c == 0x0c => (100, 0x0c),
        _ => (idc, 0),
    }
}

fn sendable(codec: &Codec) -> Result<Sendable, String> {
    match codec {
        Codec::H264 { sps, .. } => Ok(Sendable::H264(
            sps.as_deref()
                .and_then(profile_level_id)
                .unwrap_or(CONSTRAINED_BASELINE),
        )),
        Codec::H265 { .. } => Ok(Sendable::H265),
        Codec::Opus { .. } => Ok(Sendable::Opus),
        Codec::Other(o) => {
            // Static payload types need no rtpmap (RFC 3551): 0 PCMU, 8 PCMA, 9 G722.
            let name = match (o.rtpmap.as_deref(), o.payload_type) {
                (Some(m), _) => m.to_ascii_uppercase(),
                (None, 0) => "PCMU/8000".into(),
                (None, 8) => "PCMA/8000".into(),
                (None, 9) => "G722/8000".into(),
                (None, _) => String::new(),
            };
            match name.trim_end_matches("/1") {
                "PCMU/8000" => Ok(Sendable::Pcmu),
                "PCMA/8000" => Ok(Sendable::Pcma),
                "G722/8000" => Ok(Sendable::G722),
                "VP8/90000" => Ok(Sendable::Vp8),
                "VP9/90000" => Ok(Sendable::Vp9),
                "AV1/90000" => Ok(Sendable::Av1),
                _ => Err(format!("{} {}", codec.name(), o.media)),
            }
        }
        Codec::Aac { .. } => Err(AAC.into()),
    }
}

/// Whether an H.264 stream reorders frames (B-frames), from its SPS.
fn has_b_frames(codec: &Codec) -> bool {
    let Codec::H264 { sps: Some(sps), .. } = codec else {
        return false;
    };
    crate::codec::h264_sps::parse(sps).is_ok_and(|s| s.max_num_reorder_frames.unwrap_or(0) > 0)
}

/// What a player misses of a stream with B-frames. Chrome's decoder (libwebrtc over
/// FFmpeg) takes a frame the decoder holds back for reordering as a decode error and
/// then waits for the next keyframe, so it shows 2 of 30 frames a second, with the
/// RTP timestamps in presentation order or in decode order alike (measured, Chromium
/// 156). Reordering can't be undone without encoding again, so the stream goes out
/// as it is, and the page says why it stutters.
const B_FRAMES: &str = "most frames: the stream has B-frames, which browsers' WebRTC decoders drop (publish without B-frames, re-encode the path with transcode: {video: {codec: h264}}, or use the HLS page)";

/// Browsers' WebRTC has no AAC; the transcode stage makes it Opus, once per path.
const AAC: &str = "AAC audio (transcode: {audio: {codec: opus}} on the path re-encodes it)";

/// The first video and the first audio track WebRTC can carry.
pub(crate) fn plan(tracks: &[Track]) -> ReadPlan {
    let mut plan = ReadPlan::default();
    for (i, t) in tracks.iter().enumerate() {
        match sendable(&t.codec) {
            Ok(s) => {
                let slot = match s.is_video() {
                    true => &mut plan.video,
                    false => &mut plan.audio,
                };
                match slot {
                    None => {
                        *slot = Some((i, s));
                        if has_b_frames(&t.codec) {
                            plan.left_out.push(B_FRAMES.into());
                        }
                    }
                    Some(_) => plan.left_out.push(format!("a second {}", t.codec.name())),
                }
            }
            Err(what) => plan.left_out.push(what),
        }
    }
    plan
}

/// The codecs a reader's session may answer with: the stream's own, and for H.264
/// also Main and Constrained Baseline. Browsers decode any profile they can, but
/// offer few (Chromium on Linux offers no High): the stream goes out under whichever
/// of its H.264 payload types the browser accepted.
pub(crate) fn configure_read(mut cfg: RtcConfig, plan: &ReadPlan) -> RtcConfig {
    // No transport-wide congestion control: nothing here adapts a bit rate to it, and
    // its per-packet sequence numbers and the browser's feedback cost every viewer.
    cfg = cfg
        .clear_codecs()
        // Receiver reports' loss, once a second: a viewer that can't keep up skips ahead.
        .set_stats_interval(Some(std::time::Duration::from_secs(1)))
        .clear_extension_map()
        .set_extension(2, str0m::rtp::Extension::AbsoluteSendTime)
        .set_extension(4, str0m::rtp::Extension::RtpMid);
    let codecs = cfg.codec_config();
    let mut pt = 96u8;
    if let Some((_, v)) = plan.video {
        match v {
            Sendable::H264(own) => {
                let mut profiles = vec![own];
                for fallback in [MAIN, CONSTRAINED_BASELINE] {
                    if profiles
                        .iter()
                        .all(|p| h264_profile(*p) != h264_profile(fallback))
                    {
                        profiles.push(fallback);
                    }
                }
                for id in profiles {
                    codecs.add_h264(pt.into(), None, true, id);
                    pt += 1;
                }
            }
            Sendable::H265 => codecs.add_h265(pt.into(), None, 1, 0, 93),
            Sendable::Vp8 => codecs.enable_vp8(true),
            Sendable::Vp9 => codecs.enable_vp9(true),
            Sendable::Av1 => codecs.enable_av1(true),
            _ => {}
        }
    }
    if let Some((_, a)) = plan.audio {
        match a {
            Sendable::Opus => codecs.enable_opus(true, false),
            Sendable::Pcmu => codecs.enable_pcmu(true, false),
            Sendable::Pcma => codecs.enable_pcma(true, false),
            Sendable::G722 => codecs.enable_g722(true, false),
            _ => {}
        }
    }
    cfg
}

/// The codecs a WHIP publisher may send: H.264 of the profiles browsers and OBS use
/// (every protocol carries it) when the offer has any; else VP8, VP9 or AV1, passed
/// through to WebRTC and RTSP readers as their RTP payloads. Opus audio either way.
pub(crate) fn configure_publish(mut cfg: RtcConfig, offer_has_h264: bool) -> RtcConfig {
    cfg = cfg.clear_codecs();
    let codecs = cfg.codec_config();
    if offer_has_h264 {
        for (pt, id) in [
            (96u8, CONSTRAINED_BASELINE),
            (97, 0x42001f),
            (98, MAIN),
            (99, 0x64001f),
            (100, 0x640c1f),
        ] {
            codecs.add_h264(pt.into(), None, true, id);
        }
    } else {
        codecs.enable_vp8(true);
        codecs.enable_vp9(true);
        codecs.enable_av1(true);
    }
    codecs.enable_opus(true, false);
    cfg
}

/// Of the payload types negotiated for a media, the one to send `s` with: the
/// stream's own H.264 profile first, then Main, then any H.264.
pub(crate) fn pick_pt(
    negotiated: &[str0m::format::PayloadParams],
    s: Sendable,
) -> Option<str0m::media::Pt> {
    let of_codec = negotiated.iter().filter(|p| p.spec().codec == s.codec());
    match s {
        Sendable::H264(own) => {
            let rank = |p: &&str0m::format::PayloadParams| {
                let id = p.spec().format.profile_level_id.unwrap_or(0);
                let mode1 = p.spec().format.packetization_mode == Some(1);
                (
                    !mode1,
                    h264_profile(id) != h264_profile(own),
                    h264_profile(id) != h264_profile(MAIN),
                )
            };
            of_codec.min_by_key(rank).map(|p| p.pt())
        }
        _ => of_codec.map(|p| p.pt()).next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, OtherCodec};

    fn other(rtpmap: &str, media: &str) -> Track {
        Track::new(
            Codec::Other(OtherCodec {
                media: media.into(),
                payload_type: 0,
                rtpmap: Some(rtpmap.into()),
                fmtp: None,
            }),
            8000,
        )
    }

    #[test]
    fn plans_one_video_and_one_audio_and_names_the_rest() {
        let aac = fixtures::aac();
        let p = plan(&[fixtures::h264_with_sets(), aac.clone()]);
        assert_eq!(p.video, Some((0, Sendable::H264(0x42c01e))));
        assert_eq!(p.audio, None);
        assert_eq!(p.left_out, [AAC]);
        let p = plan(&[
            other("PCMU/8000", "audio"),
            fixtures::h264(),
            Track::new(Codec::Opus { channels: 2 }, 48000),
        ]);
        assert_eq!(p.video, Some((1, Sendable::H264(CONSTRAINED_BASELINE))));
        assert_eq!(p.audio, Some((0, Sendable::Pcmu)));
        assert_eq!(p.left_out, ["a second Opus"]);
        let mut pcma = other("x", "audio");
        if let Codec::Other(o) = &mut pcma.codec {
            (o.rtpmap, o.payload_type) = (None, 8);
        }
        assert_eq!(plan(&[pcma]).audio, Some((0, Sendable::Pcma)));
        // A WHIP publisher's VP8/VP9/AV1 and G.722 go out as they came.
        let p = plan(&[other("VP8/90000", "video"), other("G722/8000", "audio")]);
        assert_eq!(p.video, Some((0, Sendable::Vp8)));
        assert_eq!(p.audio, Some((1, Sendable::G722)));
        let p = plan(&[other("theora/90000", "video")]);
        assert_eq!(p.video, None);
        assert_eq!(p.left_out, ["theora video"]);
    }

    #[test]
    fn h264_profiles_are_told_apart_as_str0m_does() {
        assert_eq!(h264_profile(0x42e01f), h264_profile(0x42c01e));
        assert_ne!(h264_profile(0x42e01f), h264_profile(0x42001f));
        assert_ne!(h264_profile(0x640028), h264_profile(0x640c1f));
        assert_eq!(h264_profile(0x4d001f), h264_profile(0x4d0028));
    }

    /// Every answer config holds one payload type per profile: two of one profile
    /// make str0m panic ("Pt locked multiple times") when an offer matches both.
    #[test]
    fn read_configs_hold_one_payload_type_per_profile() {
        for own in [0x42c01e, 0x42001f, 0x4d0028, 0x640028, 0x640c1f] {
            let p = ReadPlan {
                video: Some((0, Sendable::H264(own))),
                ..Default::default()
            };
            let mut cfg = configure_read(RtcConfig::new(), &p);
            let ids: Vec<u32> = cfg
                .codec_config()
                .params()
                .iter()
                .map(|p| p.spec().format.profile_level_id.unwrap())
                .collect();
            assert_eq!(ids[0], own);
            let mut profiles: Vec<_> = ids.iter().map(|i| h264_profile(*i)).collect();
            profiles.dedup();
            assert_eq!(profiles.len(), ids.len(), "{own:06x}: {ids:x?}");
            assert!(ids.len() >= 2, "{own:06x}: no fallback");
        }
    }
}
