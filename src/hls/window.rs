//! What one path's HLS muxer holds and serves: the last `hlsSegmentCount` segments,
//! the parts near the live edge, init sections, and the playlists over them, with
//! LL-HLS blocking requests (`_HLS_msn`/`_HLS_part`, the preload-hinted part).

use super::fmp4_segmenter::Part;
use super::segmenter::{PartInfo, Segment};
use crate::config::HlsVariant;
use crate::format::m3u8::{self, LowLatency, MediaPlaylist, PartEntry, SegmentEntry, Variant};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Complete segments whose parts a LL-HLS playlist still lists (about three target
/// durations, as the LL-HLS draft asks).
const SEGMENTS_WITH_PARTS: u64 = 3;

/// Most parts held, whatever the segments.
const MAX_PARTS: usize = 1000;

/// What the multivariant playlist says of the current stream.
#[derive(Clone, Debug)]
pub struct VariantInfo {
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    /// Peak bit rate of the segments so far, bit/s.
    pub bandwidth: u64,
}

struct Held {
    seg: Segment,
    init: u64,
}

/// The segment being cut, as far as its parts go.
struct OpenSegment {
    seq: u64,
    discontinuity: bool,
    init: u64,
    parts: Vec<PartInfo>,
}

/// Part and init-section ids per media sequence number (see `first_id`).
const IDS_PER_SEQ: u64 = 10_000;

#[derive(Default)]
struct Window {
    segments: VecDeque<Held>,
    /// Data of the parts of recent segments.
    parts: VecDeque<Part>,
    open: Option<OpenSegment>,
    /// The part being cut: the preload hint.
    next_part: Option<u64>,
    inits: VecDeque<(u64, Bytes)>,
    discontinuity_seq: u64,
    variant: Option<VariantInfo>,
    last_request: Option<Instant>,
    /// Requests waiting for the window (a first segment, a blocking reload): the
    /// muxer isn't idle while one does.
    waiting: usize,
    /// The largest target duration announced so far.
    target_duration: u64,
}

impl Window {
    /// Sequence number after the last complete segment.
    fn complete_end(&self) -> Option<u64> {
        self.segments.back().map(|h| h.seg.seq + 1)
    }

    fn satisfies(&self, msn: u64, part: Option<u64>) -> bool {
        if self.complete_end().is_some_and(|end| msn < end) {
            let Some(p) = part else {
                return true;
            };
            let parts = self
                .segments
                .iter()
                .find(|h| h.seg.seq == msn)
                .map_or(0, |h| h.seg.parts.len() as u64);
            // Past a complete segment's last part means part 0 of the next (LL-HLS
            // draft §6.2.5.2).
            return p < parts || parts == 0 || self.satisfies(msn + 1, Some(0));
        }
        match (&self.open, part) {
            (Some(o), Some(p)) => o.seq == msn && (o.parts.len() as u64) > p,
            _ => false,
        }
    }

    /// A blocking request for a part too far ahead (LL-HLS draft §6.2.5.2).
    fn too_far(&self, msn: u64, part: Option<u64>, advance_limit: u64) -> bool {
        let (last_msn, last_part) = match &self.open {
            Some(o) if !o.parts.is_empty() => (o.seq, o.parts.len() as u64 - 1),
            _ => match self.segments.back() {
                Some(h) => (h.seg.seq, (h.seg.parts.len() as u64).saturating_sub(1)),
                None => return false,
            },
        };
        if msn > last_msn + 2 {
            return true;
        }
        match part {
            Some(p) if msn == last_msn => p > last_part + advance_limit,
            Some(p) if msn > last_msn => p > advance_limit,
            _ => false,
        }
    }
}

pub enum PlaylistReply {
    /// The text, and how long an HTTP cache may keep it (`Cache-Control: max-age`).
    Playlist(String, Duration),
    /// No segment yet, within the wait.
    NotReady,
    /// A blocking request for a part too far in the future.
    TooFar,
}

/// One path's HLS output, shared by its muxer task and every HLS request.
pub struct HlsMuxer {
    /// The media sequence number of its first segment (`sequence::first`).
    pub(super) first_seq: u64,
    window: Mutex<Window>,
    /// Woken when a part or segment is added.
    changed: Notify,
    pub(super) stop: CancellationToken,
    variant: HlsVariant,
    segment_count: usize,
    segment_duration: Duration,
    part_duration: Duration,
    /// How long a blocking request may wait.
    block_limit: Duration,
    /// Segments a playlist needs before it is first served: players start that far
    /// from its end, and one segment leaves them no buffer (LL-HLS players start from
    /// the parts instead).
    min_segments: usize,
    pub created: std::time::SystemTime,
    /// Bytes of playlists, segments and parts served (for the API's `hlsmuxers`).
    bytes_sent: std::sync::atomic::AtomicU64,
}

impl HlsMuxer {
    pub(super) fn new(
        variant: HlsVariant,
        segment_count: usize,
        segment_duration: Duration,
        part_duration: Duration,
        first_seq: u64,
        stop: CancellationToken,
    ) -> Self {
        HlsMuxer {
            first_seq,
            window: Mutex::default(),
            changed: Notify::new(),
            stop,
            variant,
            segment_count,
            segment_duration,
            part_duration,
            block_limit: segment_duration * 3 + Duration::from_secs(1),
            min_segments: match variant {
                HlsVariant::LowLatency => 1,
                _ => segment_count.min(2),
            },
            created: std::time::SystemTime::now(),
            bytes_sent: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first sequence number no segment or part of this muxer used.
    pub(super) fn sequence_end(&self) -> Option<u64> {
        let w = self.lock();
        w.open.as_ref().map(|o| o.seq + 1).or(w.complete_end())
    }

    pub(super) fn touch(&self) {
        self.lock().last_request = Some(Instant::now());
    }

    /// When a client last asked for something of this muxer.
    pub fn last_request(&self) -> Option<std::time::SystemTime> {
        let t = self.lock().last_request?;
        std::time::SystemTime::now().checked_sub(t.elapsed())
    }

    pub fn count_sent(&self, n: u64) {
        self.bytes_sent
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn idle_for(&self, d: Duration) -> bool {
        let w = self.lock();
        w.waiting == 0 && w.last_request.is_none_or(|t| t.elapsed() >= d)
    }

    /// Waits (up to `wait`) until `done` holds for the window.
    async fn wait_for(&self, wait: Duration, done: impl Fn(&Window) -> bool) -> bool {
        struct Waiting<'a>(&'a HlsMuxer);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                let mut w = self.0.lock();
                w.waiting -= 1;
                w.last_request = Some(Instant::now());
            }
        }
        self.lock().waiting += 1;
        let _waiting = Waiting(self);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    pub fn extension(&self) -> &'static str {
        match self.variant {
            HlsVariant::Mpegts => "ts",
            _ => "mp4",
        }
    }

    /// What the multivariant playlist says of this muxer's stream, once it has the
    /// segments a first playlist needs.
    pub async fn variant(&self, wait: Duration) -> Option<VariantInfo> {
        self.touch();
        if !self
            .wait_for(wait, |w| w.segments.len() >= self.min_segments)
            .await
        {
            return None;
        }
        self.lock().variant.clone()
    }

    /// A multivariant playlist naming this muxer's media playlist, and `more`
    /// (`(uri, variant)`, e.g. transcode renditions).
    pub async fn multivariant(
        &self,
        wait: Duration,
        more: &[(String, VariantInfo)],
    ) -> Option<String> {
        let v = self.variant(wait).await?;
        let all =
            std::iter::once(("stream.m3u8", &v)).chain(more.iter().map(|(u, v)| (u.as_str(), v)));
        let list: Vec<Variant> = all
            .map(|(uri, v)| Variant {
                uri,
                bandwidth: v.bandwidth,
                codecs: &v.codecs,
                resolution: v.resolution,
            })
            .collect();
        Some(m3u8::multivariant(&list))
    }

    /// The media playlist; with `block` (`_HLS_msn`, `_HLS_part`), once it holds that.
    pub async fn media_playlist(
        &self,
        wait: Duration,
        block: Option<(u64, Option<u64>)>,
    ) -> PlaylistReply {
        self.touch();
        if !self
            .wait_for(wait, |w| w.segments.len() >= self.min_segments)
            .await
        {
            return PlaylistReply::NotReady;
        }
        if let Some((msn, part)) = block {
            let target = self.part_duration.as_secs_f64();
            let limit = if target < 1.0 {
                (3.0 / target) as u64
            } else {
                3
            };
            if self.lock().too_far(msn, part, limit) {
                return PlaylistReply::TooFar;
            }
            let held = self
                .wait_for(self.block_limit, |w| w.satisfies(msn, part))
                .await;
            // An answer that holds the part asked for stays a right answer to that
            // URL (caches key on its query); one that gave up waiting doesn't.
            let keep = match held {
                true => self.segment_duration * 6,
                false => Duration::ZERO,
            };
            let text = self.render(self.variant == HlsVariant::LowLatency);
            return PlaylistReply::Playlist(text, keep);
        }
        // A reload without blocking is fresh for half of what players wait between
        // reloads (a part under LL-HLS, else a segment).
        let keep = match self.variant {
            HlsVariant::LowLatency => self.part_duration / 2,
            _ => self.segment_duration / 2,
        };
        PlaylistReply::Playlist(self.render(self.variant == HlsVariant::LowLatency), keep)
    }

    /// The media playlist text; `low_latency` adds parts and the preload hint.
    pub(super) fn render(&self, low_latency: bool) -> String {
        let mut w = self.lock();
        let ext = self.extension();
        let fmp4 = self.variant != HlsVariant::Mpegts;
        let last = w.segments.back().map_or(0, |h| h.seg.seq);
        let part_entries = |parts: &[PartInfo]| -> Vec<PartEntry> {
            parts
                .iter()
                .map(|p| PartEntry {
                    uri: format!("part{}.mp4", p.id),
                    duration: p.duration,
                    independent: p.independent,
                })
                .collect()
        };
        let mut entries: Vec<SegmentEntry> = Vec::with_capacity(w.segments.len() + 1);
        let mut init = None;
        let mut map =
            |id: u64| (fmp4 && init.replace(id) != Some(id)).then(|| format!("init{id}.mp4"));
        for h in &w.segments {
            let listed = low_latency && h.seg.seq + SEGMENTS_WITH_PARTS > last;
            entries.push(SegmentEntry {
                uri: format!("seg{}.{ext}", h.seg.seq),
                duration: h.seg.duration,
                start: h.seg.start,
                discontinuity: h.seg.discontinuity,
                map: map(h.init),
                parts: if listed {
                    part_entries(&h.seg.parts)
                } else {
                    Vec::new()
                },
                complete: true,
            });
        }
        let mut hint = String::new();
        if low_latency {
            if let Some(o) = w.open.as_ref().filter(|o| !o.parts.is_empty()) {
                let start = w
                    .segments
                    .back()
                    .and_then(|h| h.seg.start.checked_add(h.seg.duration))
                    .unwrap_or_else(SystemTime::now);
                entries.push(SegmentEntry {
                    uri: String::new(),
                    duration: Duration::ZERO,
                    start,
                    discontinuity: o.discontinuity,
                    map: map(o.init),
                    parts: part_entries(&o.parts),
                    complete: false,
                });
            }
            if let Some(n) = w.next_part {
                hint = format!("part{n}.mp4");
            }
        }
        let mut playlist = MediaPlaylist {
            media_sequence: w.segments.front().map_or(0, |h| h.seg.seq),
            discontinuity_sequence: w.discontinuity_seq,
            segments: &entries,
            low_latency: (low_latency && !hint.is_empty()).then_some(LowLatency {
                part_target: self.part_duration,
                preload_hint: &hint,
            }),
            min_target_duration: w.target_duration,
        };
        playlist.min_target_duration = playlist.target_duration();
        let announced = playlist.min_target_duration;
        let text = playlist.render();
        w.target_duration = announced;
        text
    }

    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.touch();
        let w = self.lock();
        let h = w.segments.iter().find(|h| h.seg.seq == seq)?;
        Some(h.seg.data.clone())
    }

    pub fn init(&self, id: u64) -> Option<Bytes> {
        self.touch();
        let w = self.lock();
        w.inits
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, d)| d.clone())
    }

    /// A part; the one being cut (the preload hint) is answered once complete.
    pub async fn part(&self, id: u64) -> Option<Bytes> {
        self.touch();
        let find = |w: &Window| {
            w.parts
                .iter()
                .find(|p| p.info.id == id)
                .map(|p| p.data.clone())
        };
        {
            let w = self.lock();
            if let Some(d) = find(&w) {
                return Some(d);
            }
            if w.next_part != Some(id) {
                return None;
            }
        }
        let present = |w: &Window| find(w).is_some() || w.next_part.is_none_or(|n| n > id);
        self.wait_for(self.block_limit, present).await;
        find(&self.lock())
    }

    pub(super) fn set_variant(&self, v: VariantInfo) {
        let mut w = self.lock();
        let bandwidth = w.variant.as_ref().map_or(0, |old| old.bandwidth);
        w.variant = Some(VariantInfo { bandwidth, ..v });
    }

    /// The id the next init section gets.
    pub(super) fn next_init(&self) -> u64 {
        let base = self.first_id();
        self.lock().inits.back().map_or(base, |(id, _)| id + 1)
    }

    /// The first id of this muxer's parts and init sections: above every id an earlier
    /// muxer of the path used (its sequence numbers were below `first_seq`, and no
    /// segment holds `IDS_PER_SEQ` parts), so a file name is never reused for other
    /// bytes and a cache may keep it.
    pub(super) fn first_id(&self) -> u64 {
        self.first_seq.saturating_mul(IDS_PER_SEQ)
    }

    /// Adds an init section; returns its id (`init<id>.mp4`).
    pub(super) fn add_init(&self, data: Bytes) -> u64 {
        let base = self.first_id();
        let mut w = self.lock();
        let id = w.inits.back().map_or(base, |(id, _)| id + 1);
        w.inits.push_back((id, data));
        id
    }

    pub(super) fn add_part(&self, part: Part, init: u64) {
        let mut w = self.lock();
        let reuse = w.open.as_ref().is_some_and(|o| o.seq == part.segment);
        if !reuse {
            w.open = Some(OpenSegment {
                seq: part.segment,
                discontinuity: part.discontinuity,
                init,
                parts: Vec::new(),
            });
        }
        if let Some(o) = &mut w.open {
            o.parts.push(part.info);
        }
        w.next_part = Some(part.info.id + 1);
        w.parts.push_back(part);
        // A stream without keyframes never closes a segment: bound what it piles up.
        while w.parts.len() > MAX_PARTS {
            w.parts.pop_front();
        }
        drop(w);
        self.changed.notify_waiters();
    }

    /// Adds a complete segment; returns the segments and init sections that left the
    /// window (their sequence numbers and ids), for `hlsDirectory`.
    pub(super) fn add_segment(&self, seg: Segment, init: u64) -> (Vec<u64>, Vec<u64>) {
        let mut w = self.lock();
        let bits = seg.data.len() as f64 * 8.0 / seg.duration.as_secs_f64().max(0.1);
        if let Some(v) = &mut w.variant {
            v.bandwidth = v.bandwidth.max(bits as u64);
        }
        if w.open.as_ref().is_some_and(|o| o.seq <= seg.seq) {
            w.open = None;
        }
        let seq = seg.seq;
        w.segments.push_back(Held { seg, init });
        let mut gone = Vec::new();
        while w.segments.len() > self.segment_count {
            if let Some(old) = w.segments.pop_front() {
                w.discontinuity_seq += u64::from(old.seg.discontinuity);
                gone.push(old.seg.seq);
            }
        }
        // Part data is kept for the segments whose parts are listed, and the open one.
        let keep_from = (seq + 1).saturating_sub(SEGMENTS_WITH_PARTS);
        while w.parts.front().is_some_and(|p| p.segment < keep_from) {
            w.parts.pop_front();
        }
        let oldest_init = w.segments.front().map_or(init, |h| h.init);
        let mut gone_inits = Vec::new();
        while w.inits.front().is_some_and(|(id, _)| *id < oldest_init) {
            if let Some((id, _)) = w.inits.pop_front() {
                gone_inits.push(id);
            }
        }
        drop(w);
        self.changed.notify_waiters();
        (gone, gone_inits)
    }

    /// The publisher left: nothing is being cut until the next one.
    pub(super) fn end_of_stream(&self) {
        let mut w = self.lock();
        w.open = None;
        w.next_part = None;
        drop(w);
        self.changed.notify_waiters();
    }

    /// Sequence number of the last complete segment.
    pub fn last_segment(&self) -> Option<u64> {
        self.lock().segments.back().map(|h| h.seg.seq)
    }

    /// Segments and part data held (for tests of the memory bound).
    pub fn held(&self) -> (usize, usize) {
        let w = self.lock();
        (w.segments.len(), w.parts.len())
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
