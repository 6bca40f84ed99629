//! What each reader counts (frames, gaps, bytes, time to first frame) and the run's
//! summary. Frames only count inside the measurement window, so the GOP burst a new
//! reader gets at connect time does not inflate the delivery ratio.

use serde::Serialize;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Phases of a run, shared by every reader.
pub const RAMP: u8 = 0;
pub const MEASURE: u8 = 1;
pub const DONE: u8 = 2;

#[derive(Debug, Default, Clone, Serialize)]
pub struct ReaderStats {
    pub connected: bool,
    pub error: Option<String>,
    /// Connect start to the first video keyframe.
    pub ttff_ms: Option<f64>,
    /// Connect start to the first video frame, keyframe or not.
    pub first_frame_ms: Option<f64>,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Video frames received inside the measurement window.
    pub window_video: u64,
    pub window_bytes: u64,
    /// Lowest and highest video timestamp seen inside the window, milliseconds.
    pub window_span_ms: Option<(i64, i64)>,
    /// Window video frames / frames the stream had for this reader in the window: the
    /// media time its frames span, plus any time it went without frames at the window's
    /// edges beyond `EDGE_SLACK` (a stall). Batching of writes does not count as loss.
    pub delivery: f64,
    /// Arrival of the first and last window frame.
    #[serde(skip)]
    pub window_arrivals: Option<(Instant, Instant)>,
    /// Media time of what arrived in the window, where the protocol states it per
    /// batch (HLS: the segments' durations) instead of per frame.
    pub window_media_s: f64,
    /// How long a gap at the window's edges may be before it counts as a stall:
    /// `EDGE_SLACK`, or more where media comes in big pieces (HLS segments).
    pub edge_slack_s: Option<f64>,
    /// Discontinuities: lost RTP sequence numbers, timestamp jumps, skipped segments.
    pub gaps: u64,
    pub bytes: u64,
    /// Server-added latency of the window's video frames a publisher of this run
    /// sent, milliseconds (`latency`).
    #[serde(skip)]
    pub latency_ms: Vec<f64>,
}

/// A reader's counters plus the run's phase.
pub struct Counter {
    pub stats: ReaderStats,
    phase: Arc<AtomicU8>,
    start: Instant,
    last_video_ms: Option<i64>,
    gap_ms: i64,
    /// Readers that connected or failed, for the end of the ramp.
    settled: Arc<AtomicUsize>,
    counted: bool,
}

impl Counter {
    pub fn new(phase: Arc<AtomicU8>, gap: Duration, settled: Arc<AtomicUsize>) -> Counter {
        Counter {
            stats: ReaderStats::default(),
            phase,
            start: Instant::now(),
            last_video_ms: None,
            gap_ms: gap.as_millis() as i64,
            settled,
            counted: false,
        }
    }

    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    pub fn connected(&mut self) {
        if !self.stats.connected {
            self.stats.connected = true;
            self.settle();
        }
    }

    /// Counts this reader as connected-or-failed once.
    pub fn settle(&mut self) {
        if !self.counted {
            self.counted = true;
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn bytes(&mut self, n: usize) {
        self.stats.bytes += n as u64;
        if self.phase() == MEASURE {
            self.stats.window_bytes += n as u64;
        }
    }

    fn first_frame(&mut self, keyframe: bool) {
        let now = || Some(self.start.elapsed().as_secs_f64() * 1000.0);
        if self.stats.first_frame_ms.is_none() {
            self.stats.first_frame_ms = now();
        }
        if keyframe && self.stats.ttff_ms.is_none() {
            self.stats.ttff_ms = now();
        }
    }

    /// One video frame with its timestamp in milliseconds, if the protocol has one. With
    /// `decode_order` timestamps (RTMP/FLV), a forward jump beyond the gap threshold or a
    /// step back counts as a gap; RTP timestamps are presentation order, so RTSP counts
    /// gaps by sequence number instead.
    pub fn video(&mut self, ts_ms: Option<i64>, decode_order: bool, keyframe: bool) {
        self.first_frame(keyframe);
        self.stats.video_frames += 1;
        if let Some(ts) = ts_ms.filter(|_| decode_order) {
            if let Some(last) = self.last_video_ms {
                if ts - last > self.gap_ms || ts < last {
                    self.stats.gaps += 1;
                }
            }
            self.last_video_ms = Some(ts);
        }
        if self.phase() == MEASURE {
            self.stats.window_video += 1;
            let now = Instant::now();
            self.stats.window_arrivals.get_or_insert((now, now)).1 = now;
            if let Some(ts) = ts_ms {
                let span = self.stats.window_span_ms.get_or_insert((ts, ts));
                span.0 = span.0.min(ts);
                span.1 = span.1.max(ts);
            }
        }
    }

    /// A video frame with content key `key` arrived (see `latency`).
    pub fn arrived(&mut self, key: Option<u64>) {
        if self.phase() != MEASURE {
            return;
        }
        if let Some(d) = key.and_then(|k| crate::latency::CLOCK.latency(k, Instant::now())) {
            self.stats.latency_ms.push(d.as_secs_f64() * 1000.0);
        }
    }

    /// `n` video frames without timestamps spanning `media` (an HLS segment's
    /// samples and duration; a segment starts with a keyframe).
    pub fn video_frames(&mut self, n: u64, media: Duration) {
        if n == 0 {
            return;
        }
        self.first_frame(true);
        self.stats.video_frames += n;
        if self.phase() == MEASURE {
            self.stats.window_video += n;
            self.stats.window_media_s += media.as_secs_f64();
            let now = Instant::now();
            self.stats.window_arrivals.get_or_insert((now, now)).1 = now;
        }
    }

    /// See `ReaderStats::edge_slack_s`.
    pub fn set_edge_slack(&mut self, slack: Duration) {
        self.stats.edge_slack_s = Some(slack.as_secs_f64().max(EDGE_SLACK));
    }

    pub fn audio(&mut self) {
        self.stats.audio_frames += 1;
    }

    /// Packets or segments lost according to the protocol's own numbering.
    pub fn gaps(&mut self, n: u64) {
        self.stats.gaps += n;
    }

    pub fn fail(&mut self, e: impl std::fmt::Display) {
        if self.stats.error.is_none() {
            self.stats.error = Some(e.to_string());
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub protocol: String,
    pub url: String,
    pub readers: usize,
    pub connected: usize,
    pub failed: usize,
    pub first_errors: Vec<String>,
    pub window_s: f64,
    /// Frames per second of the stream, from `--fps` or from the readers' timestamps.
    pub fps: f64,
    pub frames_min: u64,
    pub frames_median: u64,
    pub frames_max: u64,
    /// Per-reader delivery (see `ReaderStats::delivery`): min, and mean over all
    /// readers (a reader that never connected counts as 0).
    pub delivery_min: f64,
    pub delivery_mean: f64,
    pub gaps_total: u64,
    pub readers_with_gaps: usize,
    pub ttff_median_ms: Option<f64>,
    pub ttff_p95_ms: Option<f64>,
    /// Server-added latency over every reader's window frames (with publishers).
    pub latency_median_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_samples: usize,
    pub bytes_per_s: f64,
    /// CPU seconds this load tool used during the window, per second of window.
    pub tool_cpu_per_s: f64,
    pub publishers: usize,
}

pub struct RunInfo {
    pub protocol: String,
    pub url: String,
    pub window: Duration,
    pub window_start: Instant,
    pub fps: Option<f64>,
    pub tool_cpu_s: f64,
    pub publishers: usize,
}

/// Time without frames at either edge of the window that still counts as batching
/// (servers that merge writes, SRS style, send a few frames at a time).
const EDGE_SLACK: f64 = 0.5;

/// A reader's delivery ratio (see `ReaderStats::delivery`): frames over the media
/// time they span (from frame timestamps, or from batch durations such as HLS
/// segments') plus stalls at the window's edges; without either, over the window.
fn delivery(r: &ReaderStats, fps: f64, window_start: Instant, window_s: f64) -> f64 {
    if fps <= 0.0 || r.window_video == 0 {
        return 0.0;
    }
    let Some((first, last)) = r.window_arrivals else {
        return r.window_video as f64 / (window_s * fps);
    };
    let slack = r.edge_slack_s.unwrap_or(EDGE_SLACK);
    let head = first.duration_since(window_start).as_secs_f64();
    let tail = window_s - last.duration_since(window_start).as_secs_f64();
    let stalled = (head - slack).max(0.0) + (tail - slack).max(0.0);
    let expected = match r.window_span_ms {
        Some((lo, hi)) => ((hi - lo) as f64 / 1000.0 + stalled) * fps + 1.0,
        None if r.window_media_s > 0.0 => (r.window_media_s + stalled) * fps,
        None => window_s * fps,
    };
    r.window_video as f64 / expected
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i])
}

/// The stream's frame rate from the readers' window timestamps: frames between the
/// first and last timestamp over the span, across all readers.
fn estimate_fps(readers: &[ReaderStats]) -> Option<f64> {
    let mut frames = 0u64;
    let mut span = 0i64;
    for r in readers {
        if let Some((a, b)) = r.window_span_ms {
            if b > a && r.window_video > 1 {
                frames += r.window_video - 1;
                span += b - a;
            }
        }
    }
    (span > 0).then(|| frames as f64 * 1000.0 / span as f64)
}

pub fn summarise(info: RunInfo, readers: &mut [ReaderStats]) -> Summary {
    let window_s = info.window.as_secs_f64();
    let fps = info.fps.or_else(|| estimate_fps(readers)).unwrap_or(0.0);
    for r in readers.iter_mut() {
        r.delivery = delivery(r, fps, info.window_start, window_s);
    }
    let readers = &*readers;
    let connected: Vec<&ReaderStats> = readers.iter().filter(|r| r.connected).collect();
    let mut frames: Vec<u64> = connected.iter().map(|r| r.window_video).collect();
    frames.sort_unstable();
    let mut ratios: Vec<f64> = connected.iter().map(|r| r.delivery).collect();
    ratios.sort_by(f64::total_cmp);
    let mut ttff: Vec<f64> = readers.iter().filter_map(|r| r.ttff_ms).collect();
    ttff.sort_by(f64::total_cmp);
    let mut latency: Vec<f64> = readers
        .iter()
        .flat_map(|r| r.latency_ms.iter().copied())
        .collect();
    latency.sort_by(f64::total_cmp);
    let mut first_errors: Vec<String> = Vec::new();
    for e in readers.iter().filter_map(|r| r.error.as_ref()) {
        if first_errors.len() < 5 && !first_errors.contains(e) {
            first_errors.push(e.clone());
        }
    }
    Summary {
        protocol: info.protocol,
        url: info.url,
        readers: readers.len(),
        connected: connected.len(),
        failed: readers.iter().filter(|r| r.error.is_some()).count(),
        first_errors,
        window_s,
        fps,
        frames_min: frames.first().copied().unwrap_or(0),
        frames_median: frames.get(frames.len() / 2).copied().unwrap_or(0),
        frames_max: frames.last().copied().unwrap_or(0),
        delivery_min: if readers.is_empty() || connected.len() < readers.len() {
            0.0
        } else {
            ratios.first().copied().unwrap_or(0.0)
        },
        delivery_mean: if ratios.is_empty() {
            0.0
        } else {
            ratios.iter().sum::<f64>() / readers.len() as f64
        },
        gaps_total: readers.iter().map(|r| r.gaps).sum(),
        readers_with_gaps: readers.iter().filter(|r| r.gaps > 0).count(),
        ttff_median_ms: percentile(&ttff, 0.5),
        ttff_p95_ms: percentile(&ttff, 0.95),
        latency_median_ms: percentile(&latency, 0.5),
        latency_p95_ms: percentile(&latency, 0.95),
        latency_samples: latency.len(),
        bytes_per_s: if window_s > 0.0 {
            readers.iter().map(|r| r.window_bytes).sum::<u64>() as f64 / window_s
        } else {
            0.0
        },
        tool_cpu_per_s: if window_s > 0.0 {
            info.tool_cpu_s / window_s
        } else {
            0.0
        },
        publishers: info.publishers,
    }
}

/// CPU seconds (user + system) used by this process so far.
pub fn self_cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } == 0;
    if !ok {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_window_frames_and_flags_jumps() {
        let phase = Arc::new(AtomicU8::new(RAMP));
        let mut c = Counter::new(phase.clone(), Duration::from_millis(200), Arc::default());
        c.video(Some(0), true, true);
        c.video(Some(33), true, true);
        phase.store(MEASURE, Ordering::Relaxed);
        c.video(Some(66), true, true);
        c.video(Some(500), true, true);
        c.video(Some(400), true, true);
        c.video(Some(0), false, true);
        assert_eq!(c.stats.video_frames, 6);
        assert_eq!(c.stats.window_video, 4);
        assert_eq!(c.stats.gaps, 2);
        assert!(c.stats.ttff_ms.is_some());
    }

    #[test]
    fn segment_delivery_uses_segment_durations_and_a_wider_edge() {
        let phase = Arc::new(AtomicU8::new(MEASURE));
        let t0 = Instant::now();
        let mut c = Counter::new(phase, Duration::from_millis(200), Arc::default());
        c.set_edge_slack(Duration::from_millis(1500));
        // Three whole 1 s segments in a 4 s window: every frame they hold arrived.
        for _ in 0..3 {
            c.video_frames(30, Duration::from_secs(1));
        }
        c.stats.window_arrivals = Some((
            t0 + Duration::from_millis(900),
            t0 + Duration::from_millis(2900),
        ));
        let d = delivery(&c.stats, 30.0, t0, 4.0);
        assert!((d - 1.0).abs() < 1e-9, "{d}");
        // A segment missing its second half shows as loss.
        c.stats.window_video -= 15;
        assert!(delivery(&c.stats, 30.0, t0, 4.0) < 0.9);
    }

    #[test]
    fn summary_delivery_uses_fps_and_window() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        // 297 frames over 9.866 s of media time: 30 fps, nothing lost.
        let whole = ReaderStats {
            connected: true,
            window_video: 297,
            window_span_ms: Some((0, 9866)),
            window_arrivals: Some((at(0.1), at(9.9))),
            ttff_ms: Some(10.0),
            ..Default::default()
        };
        // Half the frames of the same span: lost half.
        let lossy = ReaderStats {
            window_video: 149,
            ..whole.clone()
        };
        // Every frame of its span, but nothing for the last 3 s of the window: stalled.
        let stalled = ReaderStats {
            window_video: 208,
            window_span_ms: Some((0, 6900)),
            window_arrivals: Some((at(0.1), at(7.0))),
            ..whole.clone()
        };
        let mut readers = [whole.clone(), whole, lossy, stalled];
        let s = summarise(
            RunInfo {
                protocol: "rtmp".into(),
                url: "x".into(),
                window: Duration::from_secs(10),
                window_start: t0,
                fps: Some(30.0),
                tool_cpu_s: 1.0,
                publishers: 0,
            },
            &mut readers,
        );
        assert!(
            (readers[0].delivery - 1.0).abs() < 0.01,
            "{}",
            readers[0].delivery
        );
        assert!(
            (readers[2].delivery - 0.5).abs() < 0.01,
            "{}",
            readers[2].delivery
        );
        assert!(readers[3].delivery < 0.85, "{}", readers[3].delivery);
        assert!((s.delivery_min - readers[2].delivery).abs() < 1e-9);
        assert_eq!(s.ttff_median_ms, Some(10.0));
    }
}
