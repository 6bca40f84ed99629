//! A publishing session's receive side: RTP from the client (interleaved or UDP)
//! → depacketizer → timestamps on the stream timeline → units into the stream.

use crate::codec::h264_dts::DtsExtractor;
use crate::core::{Codec, Payload, Stream, Unit};
use crate::format::rtp::{self, Depacketizer, Frame, RtpError, TimestampMapper};
use crate::format::sdp::AnnouncedMedia;
use std::sync::Arc;

/// RTP streams start their timeline this late, so that decode times rebuilt for
/// reordered frames (dts = pts - reorder delay) are never negative.
const DTS_HEADROOM: std::time::Duration = std::time::Duration::from_secs(1);

struct IngestTrack {
    depacketizer: Depacketizer,
    timestamps: TimestampMapper,
    /// RTP carries presentation times only; H.264 decode times come from the POC.
    dts: Option<DtsExtractor>,
}

pub(crate) struct Ingest {
    stream: Arc<Stream>,
    /// Indexed by announced media; `None` for media the client did not set up.
    tracks: Vec<Option<(usize, IngestTrack)>>,
    frames: Vec<Frame>,
}

impl Ingest {
    /// `stream_index[m]` is the stream track of announced media `m`, if it was set up.
    pub(crate) fn new(
        stream: Arc<Stream>,
        medias: &[AnnouncedMedia],
        stream_index: &[Option<usize>],
    ) -> Self {
        let tracks = medias
            .iter()
            .zip(stream_index)
            .map(|(m, idx)| {
                idx.map(|i| {
                    (
                        i,
                        IngestTrack {
                            depacketizer: Depacketizer::new(&m.track.codec, &m.fmtp),
                            timestamps: TimestampMapper::new(m.track.clock_rate),
                            dts: match &m.track.codec {
                                Codec::H264 { sps, .. } => {
                                    Some(DtsExtractor::new(m.track.clock_rate, sps.as_deref()))
                                }
                                _ => None,
                            },
                        },
                    )
                })
            })
            .collect();
        Ingest {
            stream,
            tracks,
            frames: Vec::new(),
        }
    }

    /// One RTP packet of announced media `media`. Errors mean malformed input.
    pub(crate) fn push_rtp(&mut self, media: usize, packet: bytes::Bytes) -> Result<(), RtpError> {
        let Some(Some((index, track))) = self.tracks.get_mut(media) else {
            return Ok(());
        };
        let pkt = rtp::parse(&packet)?;
        self.frames.clear();
        let r = track.depacketizer.push(&pkt, &mut self.frames);
        for f in self.frames.drain(..) {
            let pts = track
                .timestamps
                .map(f.rtp_ts, self.stream.elapsed() + DTS_HEADROOM);
            let dts = match (&mut track.dts, &f.payload) {
                (Some(x), Payload::Nalus(nalus)) => x.extract(nalus, pts),
                _ => pts,
            };
            self.stream.write(Unit {
                track: *index,
                pts,
                dts,
                keyframe: f.keyframe,
                payload: f.payload,
            });
        }
        r
    }
}
