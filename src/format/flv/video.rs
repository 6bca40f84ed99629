//! FLV video tag bodies. H.264 uses the classic AVC layout (CodecID 7); H.265 uses
//! Enhanced RTMP (IsExHeader bit, PacketType, FourCC `hvc1`). Parsing also accepts
//! E-RTMP `avc1` and the legacy CodecID 12 HEVC some encoders still send.

use super::FlvError;
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoPacket {
    /// The decoder configuration record (avcC / hvcC).
    SequenceHeader(Bytes),
    /// Length-prefixed NAL units (see `split_nalus`); `cts` = pts − dts in ms.
    Frame {
        keyframe: bool,
        cts: i32,
        data: Bytes,
    },
    EndOfSequence,
}

const AVC_CODEC_ID: u8 = 7;
const LEGACY_HEVC_CODEC_ID: u8 = 12;
const EX_HEADER: u8 = 0x80;
// Enhanced RTMP PacketType values.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const CODED_FRAMES_X: u8 = 3;

fn frame_type(keyframe: bool) -> u8 {
    if keyframe {
        1
    } else {
        2
    }
}

fn si24(v: i32) -> [u8; 3] {
    let b = v.clamp(-0x80_0000, 0x7f_ffff).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn read_si24(b: &[u8]) -> i32 {
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

/// Header bytes before the payload of every video tag of `codec`.
fn header(codec: VideoCodec, keyframe: bool, packet_type: u8, cts: Option<i32>) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    match codec {
        VideoCodec::Avc => {
            h.push((frame_type(keyframe) << 4) | AVC_CODEC_ID);
            h.push(packet_type);
            h.extend_from_slice(&si24(cts.unwrap_or(0)));
        }
        VideoCodec::Hevc => {
            h.push(EX_HEADER | (frame_type(keyframe) << 4) | packet_type);
            h.extend_from_slice(b"hvc1");
            if let Some(c) = cts {
                h.extend_from_slice(&si24(c));
            }
        }
    }
    h
}

/// A sequence header carrying `record` (avcC for AVC, hvcC for HEVC).
pub fn video_sequence_header(codec: VideoCodec, record: &[u8]) -> Vec<u8> {
    let packet_type = match codec {
        VideoCodec::Avc => 0,
        VideoCodec::Hevc => SEQUENCE_START,
    };
    [header(codec, true, packet_type, None), record.to_vec()].concat()
}

/// A coded frame: NAL units with 4-byte length prefixes. HEVC frames with cts 0 use
/// the shorter CodedFramesX form.
pub fn video_frame(codec: VideoCodec, keyframe: bool, cts: i32, nalus: &[Bytes]) -> Vec<u8> {
    let h = match codec {
        VideoCodec::Avc => header(codec, keyframe, 1, Some(cts)),
        VideoCodec::Hevc if cts == 0 => header(codec, keyframe, CODED_FRAMES_X, None),
        VideoCodec::Hevc => header(codec, keyframe, CODED_FRAMES, Some(cts)),
    };
    let size: usize = nalus.iter().map(|n| 4 + n.len()).sum();
    let mut out = Vec::with_capacity(h.len() + size);
    out.extend_from_slice(&h);
    for n in nalus {
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n);
    }
    out
}

pub fn video_end_of_sequence(codec: VideoCodec) -> Vec<u8> {
    let packet_type = match codec {
        VideoCodec::Avc => 2,
        VideoCodec::Hevc => SEQUENCE_END,
    };
    header(codec, false, packet_type, None)
}

/// Parses a video tag body. `Ok(None)` for codecs and packet types not converted
/// (other CodecIDs, E-RTMP metadata).
pub fn parse_video(body: &Bytes) -> Result<Option<(VideoCodec, VideoPacket)>, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("video tag"))?;
    let keyframe = (first >> 4) & 7 == 1;
    if first & EX_HEADER != 0 {
        if body.len() < 5 {
            return Err(FlvError::Truncated("Enhanced RTMP video header"));
        }
        let codec = match &body[1..5] {
            b"hvc1" => VideoCodec::Hevc,
            b"avc1" => VideoCodec::Avc,
            _ => return Ok(None),
        };
        let packet = match first & 0x0f {
            SEQUENCE_START => VideoPacket::SequenceHeader(body.slice(5..)),
            CODED_FRAMES => {
                if body.len() < 8 {
                    return Err(FlvError::Truncated("CodedFrames"));
                }
                VideoPacket::Frame {
                    keyframe,
                    cts: read_si24(&body[5..8]),
                    data: body.slice(8..),
                }
            }
            CODED_FRAMES_X => VideoPacket::Frame {
                keyframe,
                cts: 0,
                data: body.slice(5..),
            },
            SEQUENCE_END => VideoPacket::EndOfSequence,
            _ => return Ok(None),
        };
        return Ok(Some((codec, packet)));
    }
    let codec = match first & 0x0f {
        AVC_CODEC_ID => VideoCodec::Avc,
        LEGACY_HEVC_CODEC_ID => VideoCodec::Hevc,
        _ => return Ok(None),
    };
    if body.len() < 5 {
        return Err(FlvError::Truncated("AVC video header"));
    }
    let packet = match body[1] {
        0 => VideoPacket::SequenceHeader(body.slice(5..)),
        1 => VideoPacket::Frame {
            keyframe,
            cts: read_si24(&body[2..5]),
            data: body.slice(5..),
        },
        2 => VideoPacket::EndOfSequence,
        _ => return Err(FlvError::Malformed("AVCPacketType")),
    };
    Ok(Some((codec, packet)))
}

/// Splits length-prefixed NAL units (`length_size` 1, 2 or 4 bytes) without copying.
pub fn split_nalus(data: &Bytes, length_size: u8) -> Result<Vec<Bytes>, FlvError> {
    let ls = usize::from(length_size);
    if !matches!(ls, 1 | 2 | 4) {
        return Err(FlvError::Malformed("NAL length size"));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len_bytes = data
            .get(pos..pos + ls)
            .ok_or(FlvError::Truncated("NAL length"))?;
        let len = len_bytes
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        pos += ls;
        if data.len() - pos < len {
            return Err(FlvError::Truncated("NAL unit"));
        }
        if len > 0 {
            out.push(data.slice(pos..pos + len));
        }
        pos += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nalus() -> Vec<Bytes> {
        vec![
            Bytes::from_static(&[0x26, 0x01, 0xaf]),
            Bytes::from_static(&[0x02, 0x01, 0x77, 0x78]),
        ]
    }

    #[test]
    fn enhanced_rtmp_hevc_bytes() {
        // E-RTMP: IsExHeader | FrameType(1 = key) << 4 | PacketType, then FourCC.
        let seq = video_sequence_header(VideoCodec::Hevc, &[1, 2, 3]);
        assert_eq!(seq, [0x90, b'h', b'v', b'c', b'1', 1, 2, 3]);
        let f = video_frame(VideoCodec::Hevc, true, 40, &nalus());
        assert_eq!(&f[..8], &[0x91, b'h', b'v', b'c', b'1', 0, 0, 40]);
        assert_eq!(&f[8..12], &[0, 0, 0, 3]);
        let x = video_frame(VideoCodec::Hevc, false, 0, &nalus());
        assert_eq!(&x[..5], &[0xa3, b'h', b'v', b'c', b'1']);
        assert_eq!(
            video_end_of_sequence(VideoCodec::Hevc),
            [0xa2, b'h', b'v', b'c', b'1']
        );
    }

    #[test]
    fn roundtrip_both_codecs() {
        for codec in [VideoCodec::Avc, VideoCodec::Hevc] {
            let seq = Bytes::from(video_sequence_header(codec, &[1, 2, 3]));
            assert_eq!(
                parse_video(&seq).unwrap(),
                Some((
                    codec,
                    VideoPacket::SequenceHeader(Bytes::from_static(&[1, 2, 3]))
                ))
            );
            for (key, cts) in [(true, -33), (false, 0), (false, 100)] {
                let f = Bytes::from(video_frame(codec, key, cts, &nalus()));
                let Some((
                    c,
                    VideoPacket::Frame {
                        keyframe,
                        cts: got,
                        data,
                    },
                )) = parse_video(&f).unwrap()
                else {
                    panic!("{codec:?} frame");
                };
                assert_eq!((c, keyframe, got), (codec, key, cts));
                assert_eq!(split_nalus(&data, 4).unwrap(), nalus());
            }
            let end = Bytes::from(video_end_of_sequence(codec));
            assert_eq!(
                parse_video(&end).unwrap(),
                Some((codec, VideoPacket::EndOfSequence))
            );
        }
    }

    #[test]
    fn classic_avc_bytes_and_bad_input() {
        let f = video_frame(VideoCodec::Avc, true, 67, &nalus());
        assert_eq!(&f[..5], &[0x17, 1, 0, 0, 67]);
        assert_eq!(parse_video(&Bytes::from_static(&[0x12, 0])).unwrap(), None); // Sorenson H.263
        assert!(parse_video(&Bytes::new()).is_err());
        assert!(parse_video(&Bytes::from_static(&[0x17, 1])).is_err());
        assert!(parse_video(&Bytes::from_static(&[0x91, b'h', b'v'])).is_err());
        assert!(split_nalus(&Bytes::from_static(&[0, 0, 0, 9, 1]), 4).is_err());
        assert!(split_nalus(&Bytes::from_static(&[0, 0]), 4).is_err());
        assert!(split_nalus(&Bytes::from_static(&[1, 5]), 3).is_err());
    }
}
