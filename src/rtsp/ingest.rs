//! A publishing session's receive side: RTP from the client (interleaved or UDP)
//! → depacketizer → timestamps on the stream timeline → units into the stream.

use crate::codec::h264_dts::DtsExtractor;
use crate::codec::reorder_dts::ReorderDts;
use crate::codec::{h265, h265_sps};
use crate::core::{Codec, Payload, RtpCounters, Stream, Unit};
use crate::format::rtp::reorder::Reorderer;
use crate::format::rtp::{self, Depacketizer, Frame, RtpError, TimestampMapper};
use crate::format::sdp::AnnouncedMedia;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// RTP streams start their timeline this late, so that decode times rebuilt for
/// reordered frames (dts = pts - reorder delay) are never negative.
const DTS_HEADROOM: std::time::Duration = std::time::Duration::from_secs(1);

struct IngestTrack {
    depacketizer: Depacketizer,
    timestamps: TimestampMapper,
    /// RTP carries presentation times only; decode times are rebuilt.
    dts: Option<Dts>,
    /// Over UDP and WebRTC, where packets can come out of order.
    reorder: Option<Reorderer>,
}

/// H.264 decode times come from the picture order count, H.265's from the reorder
/// depth alone.
enum Dts {
    H264(DtsExtractor),
    H265(ReorderDts),
}

fn h265_reorder(sps: &[u8]) -> Option<u32> {
    h265_sps::parse(sps).ok()?.max_num_reorder
}

impl Dts {
    fn new(codec: &Codec, clock_rate: u32) -> Option<Dts> {
        match codec {
            Codec::H264 { sps, .. } => {
                Some(Dts::H264(DtsExtractor::new(clock_rate, sps.as_deref())))
            }
            Codec::H265 { sps, .. } => {
                let reorder = sps.as_deref().and_then(h265_reorder).unwrap_or(0);
                Some(Dts::H265(ReorderDts::new(clock_rate, reorder)))
            }
            _ => None,
        }
    }

    fn dts(&mut self, nalus: &[bytes::Bytes], keyframe: bool, pts: i64) -> i64 {
        match self {
            Dts::H264(x) => x.extract(nalus, pts),
            Dts::H265(x) => {
                let sps = nalus.iter().find(|n| h265::nal_type(n) == h265::NAL_SPS);
                if let Some(r) = sps.and_then(|n| h265_reorder(n)) {
                    x.set_reorder(r);
                }
                x.dts(keyframe, pts)
            }
        }
    }
}

pub(crate) struct Ingest {
    stream: Arc<Stream>,
    /// Indexed by announced media; `None` for media the client did not set up.
    tracks: Vec<Option<(usize, IngestTrack)>>,
    frames: Vec<Frame>,
    /// The SSRC each announced media last came with (what a keyframe request names).
    ssrcs: Vec<Option<u32>>,
    counters: Option<Arc<RtpCounters>>,
    in_order: Vec<rtp::RtpIn>,
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
                            dts: Dts::new(&m.track.codec, m.track.clock_rate),
                            reorder: None,
                        },
                    )
                })
            })
            .collect();
        let ssrcs = vec![None; medias.len()];
        Ingest {
            stream,
            tracks,
            frames: Vec::new(),
            ssrcs,
            counters: None,
            in_order: Vec::new(),
        }
    }

    /// Packets are put back in order (and gaps counted) before depacketizing: for
    /// transports that may lose or reorder them.
    pub(crate) fn reordering(mut self) -> Self {
        for (_, t) in self.tracks.iter_mut().flatten() {
            t.reorder = Some(Reorderer::default());
        }
        self
    }

    /// Counts packets received and lost into `counters` (the session's API entry).
    pub(crate) fn counting(mut self, counters: Arc<RtpCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// One RTP packet of announced media `media`. Errors mean malformed input.
    pub(crate) fn push_rtp(&mut self, media: usize, packet: bytes::Bytes) -> Result<(), RtpError> {
        if !matches!(self.tracks.get(media), Some(Some(_))) {
            return Ok(());
        }
        self.push_parsed(media, &rtp::parse(&packet)?)
    }

    /// The stream this ingest writes.
    pub(crate) fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// The first announced video media the client sends, with its SSRC.
    pub(crate) fn video_source(&self) -> Option<(usize, u32)> {
        self.tracks.iter().enumerate().find_map(|(m, t)| {
            let (index, _) = t.as_ref()?;
            let video = self.stream.tracks().get(*index)?.codec.is_video();
            video.then_some(())?;
            Some((m, self.ssrcs[m]?))
        })
    }

    /// One RTP packet whose header was already read (WebRTC: str0m decrypts and parses).
    pub(crate) fn push_parsed(&mut self, media: usize, pkt: &rtp::RtpIn) -> Result<(), RtpError> {
        let Some(Some((_, track))) = self.tracks.get_mut(media) else {
            return Ok(());
        };
        if let Some(c) = &self.counters {
            c.packets.fetch_add(1, Ordering::Relaxed);
        }
        let Some(reorder) = track.reorder.as_mut() else {
            return self.depacketize(media, pkt);
        };
        let mut in_order = std::mem::take(&mut self.in_order);
        let lost = reorder.push(pkt.clone(), std::time::Instant::now(), &mut in_order);
        if let (Some(c), true) = (&self.counters, lost > 0) {
            c.lost.fetch_add(lost, Ordering::Relaxed);
        }
        let mut r = Ok(());
        for p in in_order.drain(..) {
            r = r.and(self.depacketize(media, &p));
        }
        self.in_order = in_order;
        r
    }

    fn depacketize(&mut self, media: usize, pkt: &rtp::RtpIn) -> Result<(), RtpError> {
        let Some(Some((index, track))) = self.tracks.get_mut(media) else {
            return Ok(());
        };
        self.ssrcs[media] = Some(pkt.ssrc);
        self.frames.clear();
        let r = track.depacketizer.push(pkt, &mut self.frames);
        for f in self.frames.drain(..) {
            let pts = track
                .timestamps
                .map(f.rtp_ts, self.stream.elapsed() + DTS_HEADROOM);
            let dts = match (&mut track.dts, &f.payload) {
                (Some(x), Payload::Nalus(nalus)) => x.dts(nalus, f.keyframe, pts),
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
