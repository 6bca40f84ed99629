//! Units and tracks → FLV tags: what HTTP-FLV (and RTMP play) sends. Tags carry the
//! stream's own timestamps (ms), so a tag is the same for every reader and is built
//! once per unit.

use super::{
    aac_frame, aac_sequence_header, tag, video_frame, video_sequence_header, TagType, VideoCodec,
};
use crate::codec::{config_record, h264, h264_sps, h265, h265_sps};
use crate::core::{Codec, Form, FormKey, Payload, Track, Unit, UnitEntry};
use bytes::Bytes;

/// Milliseconds of a timestamp in `clock` units (negative times clamp to 0).
pub fn to_ms(ticks: i64, clock: u32) -> u32 {
    ((ticks.max(0) as u128 * 1000) / u128::from(clock.max(1))) as u32
}

fn video_codec(codec: &Codec) -> Option<VideoCodec> {
    match codec {
        Codec::H264 { .. } => Some(VideoCodec::Avc),
        Codec::H265 { .. } => Some(VideoCodec::Hevc),
        _ => None,
    }
}

/// Whether FLV can carry this track.
pub fn carries(track: &Track) -> bool {
    video_codec(&track.codec).is_some() || matches!(track.codec, Codec::Aac { .. })
}

/// What an FLV/RTMP reader can be given of a stream with these tracks: the codecs it
/// will go without, or why it can't be served at all (no track fits, or the video
/// doesn't: an audio-only stream in place of the video would hide the failure).
/// `hevc`: the reader takes H.265 as Enhanced RTMP `hvc1`.
pub fn fit(tracks: &[Track], hevc: bool) -> Result<Vec<&str>, String> {
    let fits = |t: &Track| match t.codec {
        Codec::H265 { .. } => hevc,
        _ => carries(t),
    };
    let skipped: Vec<&str> = tracks
        .iter()
        .filter(|t| !fits(t))
        .map(|t| t.codec.name())
        .collect();
    let video = tracks.iter().find(|t| t.codec.is_video());
    if let Some(v) = video {
        if !tracks.iter().any(|t| t.codec.is_video() && fits(t)) {
            return Err(match v.codec {
                Codec::H265 { .. } => "H265 video needs an Enhanced RTMP player \
                    (one whose connect lists hvc1 in fourCcList)"
                    .to_string(),
                _ => format!("FLV can't carry {} video", v.codec.name()),
            });
        }
    }
    if skipped.len() == tracks.len() {
        return Err(format!("FLV can't carry {}", skipped.join(", ")));
    }
    Ok(skipped)
}

/// A unit's complete FLV tag (stream timestamps), `None` if FLV can't carry the codec;
/// shared by RTMP players, HTTP-FLV readers and pushes.
pub struct FlvTag;

impl Form for FlvTag {
    type Out = Option<Bytes>;
    fn key() -> &'static FormKey {
        static KEY: FormKey = FormKey::new();
        &KEY
    }
    fn build(e: &UnitEntry) -> Option<Bytes> {
        unit_tag(e.track(), &e.unit).map(Bytes::from)
    }
}

/// The complete tag of one unit, or `None` when FLV can't carry its codec.
pub fn unit_tag(track: &Track, unit: &Unit) -> Option<Vec<u8>> {
    let dts = to_ms(unit.dts, track.clock_rate);
    match (&unit.payload, video_codec(&track.codec)) {
        (Payload::Nalus(nalus), Some(codec)) => {
            // Access unit delimiters mean nothing inside FLV.
            let is_aud = |n: &Bytes| match codec {
                VideoCodec::Avc => h264::nal_type(n) == h264::NAL_AUD,
                VideoCodec::Hevc => h265::nal_type(n) == h265::NAL_AUD,
            };
            let kept: Vec<Bytes> = nalus.iter().filter(|n| !is_aud(n)).cloned().collect();
            let cts = to_ms(unit.pts, track.clock_rate) as i64 - i64::from(dts);
            let body = video_frame(codec, unit.keyframe, cts as i32, &kept);
            Some(tag(TagType::Video, dts, &body))
        }
        (Payload::Frame(au), None) if matches!(track.codec, Codec::Aac { .. }) => {
            Some(tag(TagType::Audio, dts, &aac_frame(au)))
        }
        _ => None,
    }
}

/// Sequence header bodies (avcC/hvcC, AudioSpecificConfig) for the tracks whose
/// parameters are known; RTMP sends these as messages, FLV wraps them in tags.
pub fn sequence_bodies(tracks: &[Track]) -> Vec<(TagType, Vec<u8>)> {
    let mut out = Vec::new();
    for t in tracks {
        match &t.codec {
            Codec::H264 {
                sps: Some(sps),
                pps: Some(pps),
            } => {
                if let Ok(record) = config_record::avcc(sps, pps) {
                    out.push((
                        TagType::Video,
                        video_sequence_header(VideoCodec::Avc, &record),
                    ));
                }
            }
            Codec::H265 {
                vps: Some(vps),
                sps: Some(sps),
                pps: Some(pps),
            } => {
                if let Ok(record) = config_record::hvcc(vps, sps, pps) {
                    out.push((
                        TagType::Video,
                        video_sequence_header(VideoCodec::Hevc, &record),
                    ));
                }
            }
            Codec::Aac { config, .. } => out.push((TagType::Audio, aac_sequence_header(config))),
            _ => {}
        }
    }
    out
}

/// Sequence header tags at timestamp `ts`.
pub fn sequence_tags(tracks: &[Track], ts: u32) -> Vec<u8> {
    sequence_bodies(tracks)
        .into_iter()
        .flat_map(|(typ, body)| tag(typ, ts, &body))
        .collect()
}

/// Picture size from a video track's SPS.
pub fn video_size(track: &Track) -> Option<(u32, u32)> {
    match &track.codec {
        Codec::H264 { sps: Some(s), .. } => h264_sps::parse(s).ok().map(|s| (s.width, s.height)),
        Codec::H265 { sps: Some(s), .. } => h265_sps::parse(s).ok().map(|s| (s.width, s.height)),
        _ => None,
    }
}

/// `onMetaData` properties describing the tracks (RTMP sends them as a data message).
pub fn metadata(tracks: &[Track]) -> Vec<(&'static str, f64)> {
    let mut meta = Vec::new();
    for t in tracks {
        match &t.codec {
            Codec::H264 { .. } | Codec::H265 { .. } => {
                let id = match t.codec {
                    Codec::H264 { .. } => 7.0,
                    _ => f64::from(u32::from_be_bytes(*b"hvc1")),
                };
                meta.push(("videocodecid", id));
                if let Some((w, h)) = video_size(t) {
                    meta.extend([("width", f64::from(w)), ("height", f64::from(h))]);
                }
            }
            Codec::Aac {
                sample_rate,
                channels,
                ..
            } => meta.extend([
                ("audiocodecid", 10.0),
                ("audiosamplerate", f64::from(*sample_rate)),
                ("audiochannels", f64::from(*channels)),
            ]),
            _ => {}
        }
    }
    meta
}

/// FLV file header and an `onMetaData` script tag describing the tracks.
pub fn file_start(tracks: &[Track]) -> Vec<u8> {
    let has_audio = tracks.iter().any(|t| matches!(t.codec, Codec::Aac { .. }));
    let has_video = tracks.iter().any(|t| video_codec(&t.codec).is_some());
    let mut out = super::file_header(has_audio, has_video).to_vec();
    out.extend(tag(TagType::Script, 0, &on_metadata(&metadata(tracks))));
    out
}

/// The script tag body: `onMetaData` and an ECMA array of numbers.
fn on_metadata(entries: &[(&str, f64)]) -> Vec<u8> {
    use crate::format::amf0::{encode_all, Value};
    let arr = Value::EcmaArray(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Number(*v)))
            .collect(),
    );
    encode_all(&[Value::String("onMetaData".into()), arr])
}

#[cfg(test)]
mod tests {
    #[test]
    fn fit_names_what_a_reader_goes_without_or_refuses() {
        use crate::core::OtherCodec;
        let h265 = Track::new(
            Codec::H265 {
                vps: None,
                sps: None,
                pps: None,
            },
            90000,
        );
        let aac = Track::new(
            Codec::Aac {
                config: Bytes::from_static(&[0x12, 0x10]),
                sample_rate: 44100,
                channels: 2,
            },
            44100,
        );
        let other = |media: &str, name: &str| {
            Track::new(
                Codec::Other(OtherCodec {
                    media: media.into(),
                    payload_type: 0,
                    rtpmap: Some(format!("{name}/8000")),
                    fmtp: None,
                }),
                8000,
            )
        };
        let h264 = Track::new(
            Codec::H264 {
                sps: None,
                pps: None,
            },
            90000,
        );
        assert_eq!(fit(&[h264.clone(), aac.clone()], false), Ok(vec![]));
        assert_eq!(fit(&[h265.clone(), aac.clone()], true), Ok(vec![]));
        let e = fit(&[h265.clone(), aac.clone()], false).unwrap_err();
        assert!(
            e.contains("Enhanced RTMP") && e.contains("fourCcList"),
            "{e}"
        );
        assert_eq!(
            fit(&[h264.clone(), other("audio", "PCMU")], false),
            Ok(vec!["PCMU"])
        );
        assert!(fit(&[other("video", "VP8"), aac.clone()], true)
            .unwrap_err()
            .contains("VP8"));
        assert_eq!(fit(&[aac], false), Ok(vec![]));
        assert!(fit(&[other("audio", "PCMU")], true)
            .unwrap_err()
            .contains("PCMU"));
    }

    use super::super::{
        parse_audio, parse_tag, parse_video, split_nalus, AudioPacket, VideoPacket,
    };
    use super::*;
    use crate::codec::h265_sps::tests::{PPS, SPS, VPS};

    #[test]
    fn hevc_unit_and_headers_roundtrip_as_enhanced_rtmp() {
        let track = Track::new(
            Codec::H265 {
                vps: Some(Bytes::from_static(VPS)),
                sps: Some(Bytes::from_static(SPS)),
                pps: Some(Bytes::from_static(PPS)),
            },
            90000,
        );
        let head = sequence_tags(std::slice::from_ref(&track), 1000);
        let (t, _) = parse_tag(&head).unwrap().unwrap();
        let Some((VideoCodec::Hevc, VideoPacket::SequenceHeader(record))) =
            parse_video(&Bytes::copy_from_slice(t.body)).unwrap()
        else {
            panic!("not an hvc1 sequence start");
        };
        assert_eq!(&t.body[..5], b"\x90hvc1");
        let sets = config_record::parse_hvcc(&record).unwrap();
        assert_eq!(sets.sps[0].as_ref(), SPS);

        let aud = Bytes::from_static(&[0x46, 0x01, 0x10]);
        let idr = Bytes::from_static(&[0x26, 0x01, 0xaa, 0xbb]);
        let unit = Unit {
            track: 0,
            pts: 93_000,
            dts: 90_000,
            keyframe: true,
            payload: Payload::Nalus(vec![aud, idr.clone()]),
        };
        let bytes = unit_tag(&track, &unit).unwrap();
        let (t, used) = parse_tag(&bytes).unwrap().unwrap();
        assert_eq!((t.typ, t.timestamp_ms, used), (9, 1000, bytes.len()));
        let Some((
            VideoCodec::Hevc,
            VideoPacket::Frame {
                keyframe: true,
                cts: 33,
                data,
            },
        )) = parse_video(&Bytes::copy_from_slice(t.body)).unwrap()
        else {
            panic!("frame");
        };
        assert_eq!(split_nalus(&data, 4).unwrap(), vec![idr]);
    }

    #[test]
    fn aac_and_file_start() {
        let track = Track::new(
            Codec::Aac {
                config: Bytes::from_static(&[0x12, 0x10]),
                sample_rate: 44100,
                channels: 2,
            },
            44100,
        );
        let unit = Unit {
            track: 0,
            pts: 44100,
            dts: 44100,
            keyframe: true,
            payload: Payload::Frame(Bytes::from_static(&[1, 2])),
        };
        let bytes = unit_tag(&track, &unit).unwrap();
        let (t, _) = parse_tag(&bytes).unwrap().unwrap();
        assert_eq!(t.timestamp_ms, 1000);
        assert_eq!(
            parse_audio(&Bytes::copy_from_slice(t.body)).unwrap(),
            AudioPacket::AacFrame(Bytes::from_static(&[1, 2]))
        );
        let start = file_start(std::slice::from_ref(&track));
        assert_eq!(&start[..5], b"FLV\x01\x04");
        let (meta, _) = parse_tag(&start[13..]).unwrap().unwrap();
        assert_eq!(meta.typ, 18);
        assert!(meta.body.windows(10).any(|w| w == b"onMetaData"));
        let opus = Track::new(Codec::Opus { channels: 2 }, 48000);
        assert!(!carries(&opus));
        assert!(unit_tag(&opus, &unit).is_none());
    }
}
