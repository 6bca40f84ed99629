//! An RTMP publisher's media → tracks and units (sans-io). Sequence headers define the
//! tracks; frames that arrive before every announced track has one are held (bounded),
//! then replayed into the stream. RTMP timestamps (ms, decode order) become dts, and
//! dts + composition time becomes pts.

use crate::codec::{aac, config_record, h264, h265};
use crate::core::{Codec, Payload, Stream, Track, Unit};
use crate::format::flv::{self, AudioPacket, VideoCodec, VideoPacket};
use bytes::Bytes;
use std::sync::Arc;

/// Frames held while waiting for sequence headers; beyond this the stream starts with
/// the tracks known so far.
const MAX_PENDING: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("{0}")]
    Flv(#[from] flv::FlvError),
    #[error("bad sequence header: {0}")]
    Config(String),
}

struct VideoState {
    codec: VideoCodec,
    track: Track,
    length_size: u8,
}

struct Attached {
    stream: Arc<Stream>,
    video: Option<usize>,
    audio: Option<usize>,
}

#[derive(Default)]
pub(crate) struct Ingest {
    expect_video: Option<bool>,
    expect_audio: Option<bool>,
    video: Option<VideoState>,
    audio: Option<Track>,
    pending: Vec<(bool, u32, Bytes)>,
    attached: Option<Attached>,
    first_ts: Option<u32>,
    /// Parameter sets of a sequence header that arrived mid-stream, put in front of
    /// the next keyframe so readers learn them in-band.
    new_params: Vec<Bytes>,
}

impl Ingest {
    /// `@setDataFrame onMetaData`: which kinds of track the publisher will send.
    pub(crate) fn metadata(&mut self, has_video: bool, has_audio: bool) {
        self.expect_video = Some(has_video);
        self.expect_audio = Some(has_audio);
    }

    fn ready(&self) -> bool {
        let known = self.video.is_some() || self.audio.is_some();
        let complete = match (self.expect_video, self.expect_audio) {
            (Some(v), Some(a)) => (!v || self.video.is_some()) && (!a || self.audio.is_some()),
            _ => self.video.is_some() && self.audio.is_some(),
        };
        known && (complete || self.pending.len() >= MAX_PENDING)
    }

    /// The tracks to create the stream with, once they are known.
    pub(crate) fn tracks_if_ready(&self) -> Option<Vec<Track>> {
        (self.attached.is_none() && self.ready()).then(|| {
            self.video
                .iter()
                .map(|v| v.track.clone())
                .chain(self.audio.iter().cloned())
                .collect()
        })
    }

    /// Starts writing into `stream` (created from `tracks_if_ready`) and replays held frames.
    pub(crate) fn attach(&mut self, stream: Arc<Stream>) -> Result<(), IngestError> {
        let video = self.video.as_ref().map(|_| 0);
        let audio = self.audio.as_ref().map(|_| usize::from(video.is_some()));
        self.attached = Some(Attached {
            stream,
            video,
            audio,
        });
        for (is_video, ts, data) in std::mem::take(&mut self.pending) {
            self.push(is_video, ts, data)?;
        }
        Ok(())
    }

    /// One audio or video message body with its RTMP timestamp.
    pub(crate) fn push(&mut self, is_video: bool, ts: u32, data: Bytes) -> Result<(), IngestError> {
        if is_video {
            match flv::parse_video(&data)? {
                Some((codec, VideoPacket::SequenceHeader(record))) => {
                    self.video_header(codec, &record)
                }
                Some((
                    _,
                    VideoPacket::Frame {
                        keyframe,
                        cts,
                        data: nal_data,
                    },
                )) => self.frame(true, ts, data, |me, dts, clock, att| {
                    let Some(v) = &me.video else { return Ok(None) };
                    let mut nalus = flv::split_nalus(&nal_data, v.length_size)?;
                    let key = keyframe
                        || match v.codec {
                            VideoCodec::Avc => h264::is_keyframe(&nalus),
                            VideoCodec::Hevc => h265::is_keyframe(&nalus),
                        };
                    if key && !me.new_params.is_empty() {
                        nalus.splice(0..0, std::mem::take(&mut me.new_params));
                    }
                    let pts = dts + i64::from(cts) * i64::from(clock) / 1000;
                    Ok(att.video.map(|t| Unit {
                        track: t,
                        pts,
                        dts,
                        keyframe: key,
                        payload: Payload::Nalus(nalus),
                    }))
                }),
                Some((_, VideoPacket::EndOfSequence)) | None => Ok(()),
            }
        } else {
            match flv::parse_audio(&data)? {
                AudioPacket::AacSequenceHeader(asc) => self.audio_header(asc),
                AudioPacket::AacFrame(au) => self.frame(false, ts, data, |_, dts, _, att| {
                    Ok(att.audio.map(|t| Unit {
                        track: t,
                        pts: dts,
                        dts,
                        keyframe: true,
                        payload: Payload::Frame(au.clone()),
                    }))
                }),
                AudioPacket::Other { .. } => Ok(()),
            }
        }
    }

    fn video_header(&mut self, codec: VideoCodec, record: &Bytes) -> Result<(), IngestError> {
        let bad = |e: config_record::ConfigRecordError| IngestError::Config(e.to_string());
        let (c, length_size, params) = match codec {
            VideoCodec::Avc => {
                let s = config_record::parse_avcc(record).map_err(bad)?;
                let params = [s.sps.first(), s.pps.first()]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                (
                    Codec::H264 {
                        sps: s.sps.first().cloned(),
                        pps: s.pps.first().cloned(),
                    },
                    s.length_size,
                    params,
                )
            }
            VideoCodec::Hevc => {
                let s = config_record::parse_hvcc(record).map_err(bad)?;
                let params = [s.vps.first(), s.sps.first(), s.pps.first()]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let c = Codec::H265 {
                    vps: s.vps.first().cloned(),
                    sps: s.sps.first().cloned(),
                    pps: s.pps.first().cloned(),
                };
                (c, s.length_size, params)
            }
        };
        if self.attached.is_some() {
            // The stream's tracks are fixed; new parameters travel in-band.
            self.new_params = params;
            if let Some(v) = &mut self.video {
                v.length_size = length_size;
            }
            return Ok(());
        }
        self.video = Some(VideoState {
            codec,
            track: Track::new(c, 90000),
            length_size,
        });
        Ok(())
    }

    fn audio_header(&mut self, asc: Bytes) -> Result<(), IngestError> {
        if self.attached.is_some() {
            return Ok(());
        }
        let cfg = aac::AudioSpecificConfig::parse(&asc)
            .map_err(|e| IngestError::Config(e.to_string()))?;
        let codec = Codec::Aac {
            config: asc,
            sample_rate: cfg.sample_rate,
            channels: cfg.channels,
        };
        self.audio = Some(Track::new(codec, cfg.sample_rate));
        Ok(())
    }

    /// Holds the frame until the stream exists, else converts it with `make` and writes it.
    fn frame(
        &mut self,
        is_video: bool,
        ts: u32,
        raw: Bytes,
        make: impl FnOnce(&mut Self, i64, u32, &AttachedIdx) -> Result<Option<Unit>, IngestError>,
    ) -> Result<(), IngestError> {
        let Some(att) = &self.attached else {
            self.pending.push((is_video, ts, raw));
            return Ok(());
        };
        let idx = AttachedIdx {
            video: att.video,
            audio: att.audio,
        };
        let stream = att.stream.clone();
        let first = *self.first_ts.get_or_insert(ts);
        let track = if is_video { idx.video } else { idx.audio };
        let Some(clock) = track.and_then(|t| stream.tracks().get(t).map(|t| t.clock_rate)) else {
            return Ok(());
        };
        // RTMP timestamps wrap at 2^32 ms; differences stay correct.
        let ms = i64::from(ts.wrapping_sub(first) as i32);
        let dts = ms * i64::from(clock) / 1000;
        if let Some(unit) = make(self, dts, clock, &idx)? {
            stream.write(unit);
        }
        Ok(())
    }
}

pub(crate) struct AttachedIdx {
    video: Option<usize>,
    audio: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h265_sps::tests::{PPS, SPS, VPS};
    use crate::core::StreamItem;

    fn avcc() -> Bytes {
        Bytes::from(
            crate::codec::aac::decode_hex(
                "0142c01effe100196742c01eda0280bfe5c044000003000400000300f03c58ba8001000468ce0fc8",
            )
            .unwrap(),
        )
    }

    #[test]
    fn holds_frames_until_both_headers_then_replays() {
        let mut ing = Ingest::default();
        ing.metadata(true, true);
        ing.push(
            true,
            1000,
            Bytes::from(flv::video_sequence_header(VideoCodec::Avc, &avcc())),
        )
        .unwrap();
        let idr = Bytes::from_static(&[0x65, 1, 2]);
        ing.push(
            true,
            1000,
            Bytes::from(flv::video_frame(
                VideoCodec::Avc,
                true,
                66,
                std::slice::from_ref(&idr),
            )),
        )
        .unwrap();
        assert!(
            ing.tracks_if_ready().is_none(),
            "audio is announced but missing"
        );
        ing.push(
            false,
            1000,
            Bytes::from(flv::aac_sequence_header(&[0x12, 0x10])),
        )
        .unwrap();
        let tracks = ing.tracks_if_ready().unwrap();
        assert_eq!(tracks.len(), 2);
        let stream = Stream::new(tracks, crate::core::StreamConfig::default());
        let mut r = stream.subscribe().unwrap();
        ing.attach(stream.clone()).unwrap();
        ing.push(false, 1023, Bytes::from(flv::aac_frame(&[7, 7])))
            .unwrap();
        let mut units = Vec::new();
        while let Ok(Some(it)) = r.try_next() {
            if let StreamItem::Unit(e) = it {
                units.push(e.unit.clone());
            }
        }
        assert_eq!(units.len(), 2);
        // The first frame defines time 0; cts 66 ms → pts 66 ms at 90 kHz.
        assert_eq!(
            (units[0].dts, units[0].pts, units[0].keyframe),
            (0, 66 * 90, true)
        );
        // 23 ms later at 44.1 kHz.
        assert_eq!((units[1].track, units[1].dts), (1, 23 * 44100 / 1000));
    }

    #[test]
    fn hevc_publishing_and_bad_headers() {
        let mut ing = Ingest::default();
        ing.metadata(true, false);
        let record = config_record::hvcc(VPS, SPS, PPS).unwrap();
        ing.push(
            true,
            0,
            Bytes::from(flv::video_sequence_header(VideoCodec::Hevc, &record)),
        )
        .unwrap();
        let tracks = ing.tracks_if_ready().unwrap();
        assert!(matches!(&tracks[0].codec, Codec::H265 { sps: Some(s), .. } if s.as_ref() == SPS));

        let mut bad = Ingest::default();
        assert!(bad
            .push(true, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]))
            .is_err());
        assert!(bad
            .push(false, 0, Bytes::from_static(&[0xaf, 0, 0xff]))
            .is_err());
        assert!(bad.push(true, 0, Bytes::from_static(&[0x17])).is_err());
    }
}
