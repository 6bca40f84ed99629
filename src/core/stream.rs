//! Stream fan-out: one publisher writes units, many readers read them.
//!
//! The publisher never waits: units go into a shared ring (`tokio::sync::broadcast`,
//! `writeQueueSize` deep), so each reader's queue is its cursor in that ring. A reader
//! that falls behind by more than the ring skips to the next keyframe and is counted;
//! one that keeps falling behind is told to disconnect. A new reader first gets the
//! units since the latest keyframe (the GOP cache), so its first picture is immediate.
//! What RTSP sends for a unit (RTP packets) is built once here and shared by all readers.

use super::params::track_and_inject;
use super::{Codec, Track, Unit};
use crate::format::flv;
use crate::format::rtp::{self, rtcp, Packetizer};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// A unit with what each protocol sends for it, built once per stream.
#[derive(Debug)]
pub struct UnitEntry {
    pub unit: Unit,
    /// Complete RTP packets (header included) for RTSP readers.
    pub rtp: Vec<Bytes>,
    /// The FLV tag, built by the first FLV/RTMP reader that needs it.
    flv: OnceLock<Option<Bytes>>,
}

impl UnitEntry {
    /// The unit's FLV tag (stream timestamps), `None` if FLV can't carry the codec.
    /// `track` is the unit's track as `Stream::tracks` describes it.
    pub fn flv_tag(&self, track: &Track) -> Option<&Bytes> {
        self.flv
            .get_or_init(|| flv::mux::unit_tag(track, &self.unit).map(Bytes::from))
            .as_ref()
    }
}

#[derive(Debug, Clone)]
pub enum StreamItem {
    Unit(Arc<UnitEntry>),
    /// An RTCP sender report for a track, shared by all RTSP readers.
    Rtcp {
        track: usize,
        packet: Bytes,
    },
}

/// GOP caches longer than this are dropped (a stream without keyframes for ages).
const MAX_GOP_ITEMS: usize = 4096;
const MAX_GOP_BYTES: usize = 64 << 20;
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// A reader that lags this many times within `LAG_WINDOW` is disconnected.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct StreamStats {
    pub units_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Times a reader fell behind the queue and skipped to a keyframe.
    pub reader_lags: AtomicU64,
    /// Readers disconnected for staying behind.
    pub readers_dropped: AtomicU64,
}

struct State {
    tracks: Vec<Track>,
    packetizers: Vec<Packetizer>,
    units_per_track: Vec<u64>,
    last_sr: Vec<Option<Instant>>,
    gop: Vec<StreamItem>,
    gop_bytes: usize,
    gop_valid: bool,
    tx: Option<broadcast::Sender<StreamItem>>,
}

pub struct Stream {
    payload_types: Vec<u8>,
    /// The track whose keyframes start the GOP cache and end a reader's skip.
    key_track: Option<usize>,
    start: Instant,
    start_wall: SystemTime,
    state: Mutex<State>,
    pub stats: StreamStats,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("tracks", &self.tracks())
            .finish()
    }
}

impl Stream {
    pub fn new(tracks: Vec<Track>, cfg: StreamConfig) -> Arc<Stream> {
        let StreamConfig {
            queue_size,
            max_payload,
        } = cfg;
        let payload_types: Vec<u8> = tracks
            .iter()
            .enumerate()
            .map(|(i, t)| match &t.codec {
                Codec::Other(o) => o.payload_type,
                _ => 96 + i as u8,
            })
            .collect();
        let packetizers = tracks
            .iter()
            .zip(&payload_types)
            .map(|(t, pt)| Packetizer::new(&t.codec, *pt, max_payload))
            .collect();
        let key_track = tracks.iter().position(|t| t.codec.has_keyframes());
        let (tx, _) = broadcast::channel(queue_size.max(2));
        let n = tracks.len();
        Arc::new(Stream {
            payload_types,
            key_track,
            start: Instant::now(),
            start_wall: SystemTime::now(),
            state: Mutex::new(State {
                tracks,
                packetizers,
                units_per_track: vec![0; n],
                last_sr: vec![None; n],
                gop: Vec::new(),
                gop_bytes: 0,
                gop_valid: false,
                tx: Some(tx),
            }),
            stats: StreamStats::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for media.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Track descriptions with the latest parameter sets seen in-band.
    pub fn tracks(&self) -> Vec<Track> {
        self.lock().tracks.clone()
    }

    pub fn payload_types(&self) -> &[u8] {
        &self.payload_types
    }

    /// Time since the stream started; publishers place their first timestamps with it.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Units written so far, per track.
    pub fn units_per_track(&self) -> Vec<u64> {
        self.lock().units_per_track.clone()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().tx.is_none()
    }

    /// Ends the stream: readers drain what is queued, then see the end.
    pub fn close(&self) {
        self.lock().tx = None;
    }

    /// Publishes one unit. Never blocks on readers.
    pub fn write(&self, mut unit: Unit) {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(track) = st.tracks.get_mut(unit.track) else {
            return;
        };
        track_and_inject(&mut track.codec, &mut unit);
        let i = unit.track;
        let len = unit.payload.len();
        let rtp = st.packetizers[i].packetize(&unit);
        let pts = unit.pts;
        let keyframe = unit.keyframe;
        let item = StreamItem::Unit(Arc::new(UnitEntry {
            unit,
            rtp,
            flv: OnceLock::new(),
        }));

        if Some(i) == self.key_track && keyframe {
            st.gop.clear();
            st.gop_bytes = 0;
            st.gop_valid = true;
        }
        if st.gop_valid && self.key_track.is_some() {
            st.gop.push(item.clone());
            st.gop_bytes += len;
            if st.gop.len() > MAX_GOP_ITEMS || st.gop_bytes > MAX_GOP_BYTES {
                st.gop.clear();
                st.gop_bytes = 0;
                st.gop_valid = false;
            }
        }
        st.units_per_track[i] += 1;
        self.stats.units_in.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        let Some(tx) = st.tx.as_ref() else {
            return;
        };
        // No receivers is not an error: nobody is reading right now.
        let _ = tx.send(item);

        let now = Instant::now();
        if st.last_sr[i].is_none_or(|t| now.duration_since(t) >= SR_INTERVAL) {
            st.last_sr[i] = Some(now);
            let packet = self.sender_report_at(st, i, pts);
            let _ = tx.send(StreamItem::Rtcp { track: i, packet });
        }
    }

    /// Starts a reader at the latest keyframe. `None` once the stream is closed.
    pub fn subscribe(self: &Arc<Self>) -> Option<StreamReader> {
        let st = self.lock();
        let rx = st.tx.as_ref()?.subscribe();
        // Sender reports first, so readers map every track to wall-clock time (and so
        // to each other) from their first packet instead of after the next periodic SR.
        let mut gop: VecDeque<StreamItem> = (0..st.tracks.len())
            .filter(|t| st.units_per_track[*t] > 0)
            .map(|t| StreamItem::Rtcp {
                track: t,
                packet: self.sender_report(&st, t),
            })
            .collect();
        gop.extend(st.gop.iter().cloned());
        // Where each track's RTP begins for this reader (RTSP RTP-Info).
        let rtp_start = (0..st.tracks.len())
            .map(|t| {
                gop.iter()
                    .find_map(|it| match it {
                        StreamItem::Unit(e) if e.unit.track == t => {
                            e.rtp.first().and_then(|p| rtp_seq_ts(p))
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| {
                        let p = &st.packetizers[t];
                        (
                            p.next_seq(),
                            p.rtp_timestamp(self.elapsed_ticks(st.tracks[t].clock_rate)),
                        )
                    })
            })
            .collect();
        drop(st);
        Some(StreamReader {
            stream: self.clone(),
            gop,
            rx,
            skipping: false,
            lags: VecDeque::new(),
            rtp_start,
        })
    }

    /// An SR for `track` at time `pts`; wall clock = stream start + pts, the same
    /// mapping for every track, which is what keeps readers' tracks in sync.
    fn sender_report_at(&self, st: &State, track: usize, pts: i64) -> Bytes {
        let p = &st.packetizers[track];
        let clock = st.tracks[track].clock_rate.max(1);
        let wall = self.start_wall + Duration::from_secs_f64(pts.max(0) as f64 / f64::from(clock));
        rtcp::sender_report(
            p.ssrc(),
            rtcp::ntp_timestamp(wall),
            p.rtp_timestamp(pts),
            p.packet_count(),
            p.octet_count(),
        )
    }

    fn sender_report(&self, st: &State, track: usize) -> Bytes {
        self.sender_report_at(st, track, self.elapsed_ticks(st.tracks[track].clock_rate))
    }

    fn elapsed_ticks(&self, clock: u32) -> i64 {
        (self.start.elapsed().as_secs_f64() * f64::from(clock)) as i64
    }

    pub fn ssrc(&self, track: usize) -> Option<u32> {
        self.lock().packetizers.get(track).map(Packetizer::ssrc)
    }
}

fn rtp_seq_ts(p: &[u8]) -> Option<(u16, u32)> {
    let pkt = rtp_types::RtpPacket::parse(p).ok()?;
    Some((pkt.sequence_number(), pkt.timestamp()))
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The publisher left or was replaced.
    Closed,
    /// The reader fell behind too often.
    TooSlow,
}

/// One reader's cursor into a stream.
pub struct StreamReader {
    stream: Arc<Stream>,
    gop: VecDeque<StreamItem>,
    rx: broadcast::Receiver<StreamItem>,
    skipping: bool,
    lags: VecDeque<Instant>,
    rtp_start: Vec<(u16, u32)>,
}

impl StreamReader {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// (sequence number, RTP timestamp) of the first packet this reader gets per track.
    pub fn rtp_start(&self, track: usize) -> Option<(u16, u32)> {
        self.rtp_start.get(track).copied()
    }

    /// Waits for the next item.
    pub async fn next(&mut self) -> Result<StreamItem, ReadEnd> {
        if let Some(it) = self.gop.pop_front() {
            return Ok(it);
        }
        loop {
            let r = self.rx.recv().await;
            if let Some(it) = self.accept(r)? {
                return Ok(it);
            }
        }
    }

    /// The next item if one is ready, for batching writes.
    pub fn try_next(&mut self) -> Result<Option<StreamItem>, ReadEnd> {
        if let Some(it) = self.gop.pop_front() {
            return Ok(Some(it));
        }
        loop {
            let r = match self.rx.try_recv() {
                Ok(it) => Ok(it),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Closed) => {
                    Err(broadcast::error::RecvError::Closed)
                }
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
            };
            if let Some(it) = self.accept(r)? {
                return Ok(Some(it));
            }
        }
    }

    fn accept(
        &mut self,
        r: Result<StreamItem, broadcast::error::RecvError>,
    ) -> Result<Option<StreamItem>, ReadEnd> {
        match r {
            Ok(item) => {
                if self.skipping {
                    match &item {
                        StreamItem::Unit(e)
                            if Some(e.unit.track) == self.stream.key_track && e.unit.keyframe =>
                        {
                            self.skipping = false;
                        }
                        _ => return Ok(None),
                    }
                }
                Ok(Some(item))
            }
            Err(broadcast::error::RecvError::Closed) => Err(ReadEnd::Closed),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let now = Instant::now();
                self.stream
                    .stats
                    .reader_lags
                    .fetch_add(1, Ordering::Relaxed);
                self.lags.push_back(now);
                while self
                    .lags
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > LAG_WINDOW)
                {
                    self.lags.pop_front();
                }
                if self.lags.len() >= MAX_LAGS {
                    self.stream
                        .stats
                        .readers_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(ReadEnd::TooSlow);
                }
                self.skipping = self.stream.key_track.is_some();
                Ok(None)
            }
        }
    }
}

/// How streams are built, from the global config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Units queued per reader (`writeQueueSize`).
    pub queue_size: usize,
    /// Largest RTP payload (`udpMaxPayloadSize` minus the RTP header).
    pub max_payload: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            queue_size: 512,
            max_payload: rtp::DEFAULT_MAX_PAYLOAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Payload, Track};

    fn video_stream(queue: usize) -> Arc<Stream> {
        Stream::new(
            vec![Track::new(
                Codec::H264 {
                    sps: None,
                    pps: None,
                },
                90000,
            )],
            StreamConfig {
                queue_size: queue,
                max_payload: 1400,
            },
        )
    }

    fn frame(pts: i64, keyframe: bool) -> Unit {
        let nal = if keyframe { 0x65 } else { 0x41 };
        Unit {
            track: 0,
            pts,
            dts: pts,
            keyframe,
            payload: Payload::Nalus(vec![Bytes::from(vec![nal, 1, 2, 3])]),
        }
    }

    fn unit_pts(it: &StreamItem) -> Option<(i64, bool)> {
        match it {
            StreamItem::Unit(e) => Some((e.unit.pts, e.unit.keyframe)),
            StreamItem::Rtcp { .. } => None,
        }
    }

    #[test]
    fn new_reader_starts_at_latest_keyframe() {
        let s = video_stream(64);
        for i in 0..10 {
            s.write(frame(i, i % 5 == 0));
        }
        let mut r = s.subscribe().unwrap();
        let mut got = Vec::new();
        while let Ok(Some(it)) = r.try_next() {
            got.extend(unit_pts(&it));
        }
        assert_eq!(got.first(), Some(&(5, true)));
        assert_eq!(got.len(), 5);
        // RTP-Info for this reader points at the keyframe's first packet.
        let (seq, _) = r.rtp_start(0).unwrap();
        let StreamItem::Unit(e) = &s.lock().gop[0] else {
            panic!()
        };
        assert_eq!(rtp_seq_ts(&e.rtp[0]).unwrap().0, seq);
    }

    #[test]
    fn writer_never_waits_and_a_lagging_reader_skips_to_a_keyframe() {
        let s = video_stream(8);
        let mut slow = s.subscribe().unwrap();
        let mut fast = s.subscribe().unwrap();
        // 20 units into an 8-deep queue with nobody reading: write must not block.
        for i in 0..20 {
            s.write(frame(i, i == 0 || i == 16));
            while let Ok(Some(_)) = fast.try_next() {}
        }
        let mut got = Vec::new();
        while let Ok(Some(it)) = slow.try_next() {
            got.extend(unit_pts(&it));
        }
        assert_eq!(got.first(), Some(&(16, true)), "{got:?}");
        assert_eq!(s.stats.reader_lags.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_reader_that_keeps_lagging_is_dropped() {
        let s = video_stream(4);
        let mut r = s.subscribe().unwrap();
        let mut end = None;
        for round in 0..MAX_LAGS {
            for i in 0..10 {
                s.write(frame((round * 10 + i) as i64, i == 9));
            }
            loop {
                match r.try_next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        end = Some(e);
                        break;
                    }
                }
            }
        }
        assert_eq!(end, Some(ReadEnd::TooSlow));
        assert_eq!(s.stats.readers_dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn close_ends_readers_after_queued_items() {
        let s = video_stream(8);
        s.write(frame(0, true));
        let mut r = s.subscribe().unwrap();
        s.write(frame(1, false));
        s.close();
        assert!(s.subscribe().is_none());
        let mut n = 0;
        loop {
            match r.try_next() {
                Ok(Some(it)) => n += usize::from(unit_pts(&it).is_some()),
                Ok(None) => panic!("closed stream must end the reader"),
                Err(e) => {
                    assert_eq!(e, ReadEnd::Closed);
                    break;
                }
            }
        }
        assert_eq!(n, 2);
    }
}
