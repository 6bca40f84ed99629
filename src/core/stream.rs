//! Stream fan-out: one publisher writes units, many readers read them.
//!
//! The publisher never waits: units go into a shared ring (`writeQueueSize` deep), so
//! each reader's queue is its cursor in that ring (see `reader`). Readers are woken per
//! video frame, not per unit: audio written between two frames goes out with the next
//! one, which halves wakeups and writes per reader. A new reader first gets the units
//! since the latest keyframe (the GOP cache), so its first picture is immediate. What
//! each protocol sends for a unit is built once and shared by all readers (`forms`).

use super::forms::{Form, Forms};
use super::params::track_and_inject;
use super::reader::{Ring, StreamReader};
use super::sink::{Group, Sink, GROUP_SIZE};
use super::{Codec, Track, Unit};
use crate::format::rtp::{self, rtcp, Packetizer};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// A unit with what each protocol sends for it, built once per stream.
#[derive(Debug)]
pub struct UnitEntry {
    pub unit: Unit,
    /// The stream's tracks as of this unit (parameter sets learnt in-band included).
    pub tracks: Arc<Vec<Track>>,
    /// Complete RTP packets (header included) for RTSP readers. Built as the unit is
    /// written, not on demand: sequence numbers and sender reports follow write order.
    pub rtp: Vec<Bytes>,
    /// Every other protocol's form, built by its first reader (see `forms`).
    forms: Forms,
}

impl UnitEntry {
    /// The unit's track.
    pub fn track(&self) -> &Track {
        &self.tracks[self.unit.track]
    }

    /// The unit's `F` form, built by the first caller and shared by every later one.
    pub fn form<F: Form>(&self) -> &F::Out {
        self.forms.get::<F>(self)
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
pub(super) const MAX_LAGS: usize = 3;
pub(super) const LAG_WINDOW: Duration = Duration::from_secs(10);
/// Longest a unit waits in the ring before readers are woken for it.
const MAX_WAKE_DELAY: Duration = Duration::from_millis(40);

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
    /// `tracks` as shared with units and readers; replaced when `tracks` changes.
    shared_tracks: Arc<Vec<Track>>,
    packetizers: Vec<Packetizer>,
    units_per_track: Vec<u64>,
    last_sr: Vec<Option<Instant>>,
    gop: Vec<StreamItem>,
    gop_bytes: usize,
    gop_valid: bool,
    /// The lead of the GOP (see `subscribe_with_lead`): the key track's unit just before
    /// the keyframe, so RTP sequence numbers run on without a gap into the GOP.
    lead: Option<StreamItem>,
    /// The key track's latest unit since the keyframe, if not the keyframe: the next lead.
    last_frame: Option<StreamItem>,
    /// When readers were last woken.
    last_wake: Instant,
}

pub struct Stream {
    payload_types: Vec<u8>,
    /// The track whose keyframes start the GOP cache and end a reader's skip.
    pub(super) key_track: Option<usize>,
    merge: Duration,
    start: Instant,
    start_wall: SystemTime,
    state: Mutex<State>,
    pub(super) ring: RwLock<Ring>,
    pub(super) wake: Notify,
    /// Readers the stream writes to itself (see `sink`), in groups of one task each.
    groups: Mutex<Vec<Arc<Group>>>,
    /// A write that didn't wake readers asks the flusher to, one merge later.
    flush: Arc<Flush>,
    pub stats: StreamStats,
    /// A reader lost a picture and asks for a keyframe (WebRTC's PLI); a publisher that
    /// can make one on request (WHIP) listens.
    keyframe_wanted: Notify,
}

/// What a stream shares with its flusher task: units written after a wake wait in the
/// ring for the next one, and when the publisher pauses there is no next write, so
/// the flusher wakes readers when the earliest waiting unit is due: a frame
/// `writeMerge` after the last wake, other units `MAX_WAKE_DELAY` after it.
struct Flush {
    asked: Notify,
    pending: std::sync::atomic::AtomicBool,
    /// When readers are due a wake, in nanoseconds since the stream's start; `NONE`.
    due_ns: AtomicU64,
}

impl Default for Flush {
    fn default() -> Self {
        Flush {
            asked: Notify::new(),
            pending: Default::default(),
            due_ns: AtomicU64::new(NONE),
        }
    }
}

const NONE: u64 = u64::MAX;

async fn flusher(stream: std::sync::Weak<Stream>, flush: Arc<Flush>, start: Instant) {
    loop {
        flush.asked.notified().await;
        loop {
            let due = flush.due_ns.load(Ordering::Acquire);
            if due == NONE {
                break;
            }
            let left =
                (start + Duration::from_nanos(due)).saturating_duration_since(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                // An earlier deadline came in: sleep for that one instead.
                _ = flush.asked.notified() => continue,
            }
            let Some(s) = stream.upgrade() else {
                return;
            };
            if s.is_closed() {
                return;
            }
            // Still the deadline slept for (or an earlier one): readers are due.
            if flush.due_ns.load(Ordering::Acquire) <= due {
                flush.due_ns.store(NONE, Ordering::Release);
                if flush.pending.swap(false, Ordering::AcqRel) {
                    s.lock().last_wake = Instant::now();
                    s.wake_readers();
                }
                break;
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Lets the flusher and the group tasks see the stream is gone and end.
        self.flush.asked.notify_one();
        for g in self
            .groups
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            g.wake.notify_one();
        }
    }
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
            merge,
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
        let n = tracks.len();
        let flush = Arc::new(Flush::default());
        let stream = Arc::new(Stream {
            payload_types,
            key_track,
            merge,
            start: Instant::now(),
            start_wall: SystemTime::now(),
            ring: RwLock::new(Ring::new(queue_size.max(2))),
            wake: Notify::new(),
            groups: Mutex::new(Vec::new()),
            state: Mutex::new(State {
                shared_tracks: Arc::new(tracks.clone()),
                tracks,
                packetizers,
                units_per_track: vec![0; n],
                last_sr: vec![None; n],
                gop: Vec::new(),
                gop_bytes: 0,
                gop_valid: false,
                lead: None,
                last_frame: None,
                last_wake: Instant::now(),
            }),
            flush: flush.clone(),
            stats: StreamStats::default(),
            keyframe_wanted: Notify::new(),
        });
        // Outside a runtime (unit tests of the fan-out) readers are woken by writes only.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(flusher(Arc::downgrade(&stream), flush, stream.start));
        }
        stream
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for media.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Track descriptions with the latest parameter sets seen in-band.
    pub fn tracks(&self) -> Arc<Vec<Track>> {
        self.lock().shared_tracks.clone()
    }

    pub fn payload_types(&self) -> &[u8] {
        &self.payload_types
    }

    /// Asks the publisher for a keyframe, if it can make one on request.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.notify_one();
    }

    /// Resolves when a reader asked for a keyframe (see `request_keyframe`).
    pub async fn keyframe_wanted(&self) {
        self.keyframe_wanted.notified().await
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
        self.ring.read().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Ends the stream: readers drain what is queued, then see the end.
    pub fn close(&self) {
        let _st = self.lock();
        self.ring.write().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.wake_readers();
        self.flush.asked.notify_one();
    }

    /// Wakes the readers that wait for items and the tasks that write to sinks.
    fn wake_readers(&self) {
        self.wake.notify_waiters();
        for g in self.groups.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            g.wake.notify_one();
        }
    }

    /// Adds a sink to a group with room, or to a new group and its task.
    pub(super) fn attach(self: &Arc<Self>, sink: Weak<Sink>) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in groups.iter() {
            let mut members = g.lock();
            members.retain(|m| m.strong_count() > 0);
            if members.len() < GROUP_SIZE {
                members.push(sink);
                return;
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let g = Group::new();
        g.lock().push(sink);
        let stream = Arc::downgrade(self);
        rt.spawn(g.clone().run(move || stream.strong_count() > 0));
        groups.push(g);
    }

    fn push(&self, item: StreamItem) {
        self.ring
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
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
        if st.tracks[i] != st.shared_tracks[i] {
            st.shared_tracks = Arc::new(st.tracks.clone());
        }
        let len = unit.payload.len();
        let rtp = st.packetizers[i].packetize(&unit);
        let pts = unit.pts;
        let keyframe = unit.keyframe;
        let item = StreamItem::Unit(Arc::new(UnitEntry {
            unit,
            tracks: st.shared_tracks.clone(),
            rtp,
            forms: Forms::new(),
        }));

        if Some(i) == self.key_track {
            if keyframe {
                st.lead = st.last_frame.take();
                st.gop.clear();
                st.gop_bytes = 0;
                st.gop_valid = true;
            } else {
                st.last_frame = Some(item.clone());
            }
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
        if self.is_closed() {
            return;
        }
        self.push(item);

        let now = Instant::now();
        if st.last_sr[i].is_none_or(|t| now.duration_since(t) >= SR_INTERVAL) {
            st.last_sr[i] = Some(now);
            let packet = self.sender_report_at(st, i, pts);
            self.push(StreamItem::Rtcp { track: i, packet });
        }
        // Wake readers per video frame; other units ride along with the next frame,
        // unless no frame has come for a while (audio-only stretches). With `merge`,
        // frames also wait until that much time has passed since the last wake.
        let frame = self.key_track.is_none_or(|k| k == i);
        let since = now.duration_since(st.last_wake);
        let wait = match frame {
            true => self.merge,
            false => MAX_WAKE_DELAY.max(self.merge),
        };
        if since >= wait {
            st.last_wake = now;
            self.flush.pending.store(false, Ordering::Release);
            self.flush.due_ns.store(NONE, Ordering::Release);
            self.wake_readers();
        } else {
            self.flush.pending.store(true, Ordering::Release);
            let due = (st.last_wake + wait).duration_since(self.start).as_nanos() as u64;
            if due < self.flush.due_ns.fetch_min(due, Ordering::AcqRel) {
                self.flush.asked.notify_one();
            }
        }
    }

    /// Starts a reader at the latest keyframe. `None` once the stream is closed.
    pub fn subscribe(self: &Arc<Self>) -> Option<StreamReader> {
        self.subscribe_at(false)
    }

    /// A reader that starts at the next keyframe, without the GOP cache: for players
    /// that play every frame as it arrives (WebRTC), where a burst of a second of old
    /// frames would become a second of delay. A stream without keyframes starts now.
    pub fn subscribe_live(self: &Arc<Self>) -> Option<StreamReader> {
        let mut r = self.subscribe_at(false)?;
        r.skip_to_next_keyframe();
        Some(r)
    }

    /// Like `subscribe`, with the key track's frame before the keyframe sent first.
    /// FFmpeg's RTSP demuxer gives the first frame its H.264/H.265 parser puts out no
    /// timestamp (its packets carry no byte position, so the parser's first-frame
    /// lookup never matches). Stream copy drops a leading non-keyframe, so that frame
    /// costs nothing, and the keyframe after it keeps its timestamp; without a lead,
    /// `ffmpeg -i rtsp://… -c copy out.mkv` fails on its first packet. A stream's
    /// first GOP has no lead.
    pub fn subscribe_with_lead(self: &Arc<Self>) -> Option<StreamReader> {
        self.subscribe_at(true)
    }

    fn subscribe_at(self: &Arc<Self>, lead: bool) -> Option<StreamReader> {
        // The state lock orders this against `write`: the GOP and the ring end agree.
        let st = self.lock();
        let cursor = {
            let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
            if ring.closed {
                return None;
            }
            ring.end()
        };
        // Sender reports first, so readers map every track to wall-clock time (and so
        // to each other) from their first packet instead of after the next periodic SR.
        let mut gop: VecDeque<StreamItem> = (0..st.tracks.len())
            .filter(|t| st.units_per_track[*t] > 0)
            .map(|t| StreamItem::Rtcp {
                track: t,
                packet: self.sender_report(&st, t),
            })
            .collect();
        if lead && st.gop_valid {
            gop.extend(st.lead.iter().cloned());
        }
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
                    .unwrap_or_else(|| self.rtp_position(&st, t))
            })
            .collect();
        drop(st);
        Some(StreamReader::new(self.clone(), gop, cursor, rtp_start))
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

    /// The next sequence number and the RTP time of now, for a track.
    fn rtp_position(&self, st: &State, track: usize) -> (u16, u32) {
        let p = &st.packetizers[track];
        let ticks = self.elapsed_ticks(st.tracks[track].clock_rate);
        (p.next_seq(), p.rtp_timestamp(ticks))
    }

    /// `rtp_position` of every track at one instant: RTP-Info for a reader that joins
    /// packets already flowing (multicast), so that its tracks' time bases agree with
    /// each other and with the sender reports it gets later.
    pub fn rtp_now(&self) -> Vec<(u16, u32)> {
        let st = self.lock();
        (0..st.tracks.len())
            .map(|t| self.rtp_position(&st, t))
            .collect()
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

pub(super) fn rtp_seq_ts(p: &[u8]) -> Option<(u16, u32)> {
    let pkt = rtp_types::RtpPacket::parse(p).ok()?;
    Some((pkt.sequence_number(), pkt.timestamp()))
}

/// How streams are built, from the global config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Units queued per reader (`writeQueueSize`).
    pub queue_size: usize,
    /// Largest RTP payload (`udpMaxPayloadSize` minus the RTP header).
    pub max_payload: usize,
    /// Readers are woken at most this often (`writeMerge`); zero wakes them per frame.
    pub merge: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            queue_size: 512,
            max_payload: rtp::DEFAULT_MAX_PAYLOAD,
            merge: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Payload, ReadEnd, Track};

    fn video_stream(queue: usize) -> Arc<Stream> {
        Stream::new(
            vec![fixtures::h264()],
            StreamConfig {
                queue_size: queue,
                max_payload: 1400,
                merge: Duration::ZERO,
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
    fn a_live_reader_waits_for_the_next_keyframe() {
        let s = video_stream(64);
        for i in 0..7 {
            s.write(frame(i, i % 5 == 0));
        }
        let mut r = s.subscribe_live().unwrap();
        assert!(matches!(r.try_next(), Ok(None)), "the GOP was sent");
        for i in 7..12 {
            s.write(frame(i, i % 5 == 0));
        }
        let mut got = Vec::new();
        while let Ok(Some(it)) = r.try_next() {
            got.extend(unit_pts(&it));
        }
        assert_eq!(got, [(10, true), (11, false)]);
    }

    #[test]
    fn a_live_reader_of_a_stream_without_keyframes_starts_at_once() {
        let s = Stream::new(
            vec![fixtures::aac()],
            StreamConfig {
                queue_size: 64,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        );
        let frame = |i| Unit {
            track: 0,
            ..fixtures::aac_frame(i)
        };
        let mut r = s.subscribe_live().unwrap();
        for i in 0..3 {
            s.write(frame(i));
        }
        let mut n = 0;
        while let Ok(Some(it)) = r.try_next() {
            n += usize::from(matches!(it, StreamItem::Unit(_)));
        }
        assert_eq!(n, 3);
        // Skipping ahead (a viewer that lost packets) doesn't wait for a keyframe either.
        r.skip_to_next_keyframe();
        s.write(frame(3));
        assert!(matches!(r.try_next(), Ok(Some(StreamItem::Unit(_)))));
    }

    #[test]
    fn an_rtsp_reader_gets_the_frame_before_the_keyframe_first() {
        let units = |r: &mut StreamReader| {
            let mut got = Vec::new();
            while let Ok(Some(it)) = r.try_next() {
                got.extend(unit_pts(&it));
            }
            got
        };
        let s = video_stream(64);
        s.write(frame(0, true));
        // The stream's first GOP has no lead.
        assert_eq!(units(&mut s.subscribe_with_lead().unwrap()), [(0, true)]);
        for i in 1..10 {
            s.write(frame(i, i % 5 == 0));
        }
        let mut r = s.subscribe_with_lead().unwrap();
        let got = units(&mut r);
        assert_eq!(
            got,
            [
                (4, false),
                (5, true),
                (6, false),
                (7, false),
                (8, false),
                (9, false)
            ]
        );
        // RTP-Info starts at the lead, so sequence numbers run on without a gap.
        let StreamItem::Unit(e) = s.lock().lead.clone().unwrap() else {
            panic!()
        };
        assert_eq!(
            rtp_seq_ts(&e.rtp[0]).map(|x| x.0),
            r.rtp_start(0).map(|x| x.0)
        );
        // Other readers start at the keyframe.
        assert_eq!(units(&mut s.subscribe().unwrap()).first(), Some(&(5, true)));
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

    fn av_stream(merge: Duration) -> Arc<Stream> {
        Stream::new(
            vec![
                fixtures::h264(),
                Track::new(Codec::Opus { channels: 2 }, 48000),
            ],
            StreamConfig {
                queue_size: 64,
                max_payload: 1400,
                merge,
            },
        )
    }

    fn audio(pts: i64) -> Unit {
        Unit {
            track: 1,
            pts,
            dts: pts,
            keyframe: true,
            payload: Payload::Frame(Bytes::from_static(&[1, 2, 3])),
        }
    }

    /// Polls `f` once: whether it completed without waiting.
    fn ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx).is_ready()
    }

    #[test]
    fn readers_wake_per_video_frame_and_audio_rides_along() {
        let s = av_stream(Duration::ZERO);
        let mut r = s.subscribe().unwrap();
        let mut waiting = Box::pin(r.next());
        assert!(!ready(waiting.as_mut()));
        s.write(audio(0));
        assert!(
            !ready(waiting.as_mut()),
            "audio alone must not wake readers"
        );
        s.write(frame(0, true));
        assert!(ready(waiting.as_mut()), "a video frame wakes readers");
        drop(waiting);
        // The audio unit written before the frame comes out with it.
        let mut tracks = Vec::new();
        while let Ok(Some(it)) = r.try_next() {
            if let StreamItem::Unit(e) = it {
                tracks.push(e.unit.track);
            }
        }
        assert_eq!(tracks, [0], "the first item was taken by next()");
    }

    #[test]
    fn merge_holds_frames_until_its_time_has_passed() {
        let s = av_stream(Duration::from_secs(3600));
        let mut r = s.subscribe().unwrap();
        let mut waiting = Box::pin(r.next());
        assert!(!ready(waiting.as_mut()));
        for i in 0..5 {
            s.write(frame(i, i == 0));
        }
        assert!(!ready(waiting.as_mut()), "frames wait for the merge time");
        s.close();
        assert!(ready(waiting.as_mut()), "closing wakes readers");
        drop(waiting);
        let mut n = 1;
        while let Ok(Some(_)) = r.try_next() {
            n += 1;
        }
        assert!(n >= 5, "merged frames are all delivered: {n}");
    }

    /// A task that reads `r` and sends what `f` says of each unit, with when it came.
    fn arrivals(
        mut r: StreamReader,
        f: fn(&Unit) -> i64,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(i64, tokio::time::Instant)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(item) = r.next().await {
                if let StreamItem::Unit(e) = item {
                    let _ = tx.send((f(&e.unit), tokio::time::Instant::now()));
                }
            }
        });
        rx
    }

    /// A held frame is due `writeMerge` after the last wake, not when the (longer)
    /// wait for audio-only stretches ends; audio alone waits that longer time.
    #[tokio::test(start_paused = true)]
    async fn held_units_are_woken_when_due() {
        let merge = Duration::from_millis(10);
        let s = av_stream(merge);
        let mut rx = arrivals(s.subscribe().unwrap(), |u| u.track as i64);
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        s.write(audio(0));
        s.write(frame(0, true));
        let mut got = Vec::new();
        while got.len() < 2 {
            let (track, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            got.push((track, at - start));
        }
        for (_, waited) in &got {
            assert!(*waited <= merge, "{got:?}");
        }
        let start = tokio::time::Instant::now();
        s.write(audio(1));
        let (_, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        let waited = at - start;
        assert!(waited > merge && waited <= MAX_WAKE_DELAY, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_publisher_s_last_units_reach_readers_one_merge_later() {
        let merge = Duration::from_millis(100);
        let s = av_stream(merge);
        let mut rx = arrivals(s.subscribe().unwrap(), |u| u.pts);
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .ok()
                .flatten()
        };
        // Lets the reader task start waiting.
        tokio::task::yield_now().await;
        // Each write lands within the merge time of the last wake and no write
        // follows: only the flusher can wake the reader.
        for pts in 0..3 {
            let start = tokio::time::Instant::now();
            s.write(frame(pts, pts == 0));
            let (got, at) = next().await.expect("the flusher woke the reader");
            assert_eq!(got, pts);
            let waited = at - start;
            assert!(waited > Duration::ZERO && waited <= merge, "{waited:?}");
        }
    }
}
