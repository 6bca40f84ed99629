//! One path's HLS muxer, shared by all of its HLS clients: a task reads the path's
//! stream (as one reader), cuts MPEG-TS segments and keeps the last
//! `hlsSegmentCount` in memory. A new publisher starts a discontinuity; the muxer
//! stops `hlsMuxerCloseAfter` after the last request.

use super::segmenter::{Segment, TsSegmenter};
use crate::codec::h264;
use crate::core::{Codec, PathManager, StreamItem, Track};
use crate::format::m3u8::{self, MediaPlaylist, SegmentEntry, Variant};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a muxer without a publisher looks for one.
const PUBLISHER_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
pub struct MuxerConfig {
    pub segment_count: usize,
    pub segment_duration: Duration,
    pub close_after: Duration,
}

/// What the multivariant playlist says of the current stream.
#[derive(Clone)]
struct VariantInfo {
    codecs: String,
    resolution: Option<(u32, u32)>,
    /// Peak bit rate of the segments so far, bit/s.
    bandwidth: u64,
}

#[derive(Default)]
struct Window {
    segments: VecDeque<Segment>,
    discontinuity_seq: u64,
    variant: Option<VariantInfo>,
    last_request: Option<Instant>,
}

pub struct HlsMuxer {
    window: Mutex<Window>,
    /// Woken when a segment is added.
    added: Notify,
    stop: CancellationToken,
}

impl HlsMuxer {
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.lock().last_request = Some(Instant::now());
    }

    /// Waits (up to `wait`) until at least one segment exists.
    async fn ready(&self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let added = self.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            if !self.lock().segments.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return false;
            }
        }
    }

    pub async fn multivariant(&self, wait: Duration) -> Option<String> {
        self.touch();
        if !self.ready(wait).await {
            return None;
        }
        let w = self.lock();
        let v = w.variant.clone()?;
        Some(m3u8::multivariant(&[Variant {
            uri: "stream.m3u8",
            bandwidth: v.bandwidth,
            codecs: &v.codecs,
            resolution: v.resolution,
        }]))
    }

    pub async fn media_playlist(&self, wait: Duration) -> Option<String> {
        self.touch();
        if !self.ready(wait).await {
            return None;
        }
        let w = self.lock();
        let entries: Vec<SegmentEntry> = w
            .segments
            .iter()
            .map(|s| SegmentEntry {
                uri: format!("seg{}.ts", s.seq),
                duration: s.duration,
                start: s.start,
                discontinuity: s.discontinuity,
            })
            .collect();
        Some(
            MediaPlaylist {
                media_sequence: w.segments.front().map_or(0, |s| s.seq),
                discontinuity_sequence: w.discontinuity_seq,
                segments: &entries,
                map: None,
            }
            .render(),
        )
    }

    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.touch();
        let w = self.lock();
        w.segments
            .iter()
            .find(|s| s.seq == seq)
            .map(|s| s.data.clone())
    }

    fn add(&self, seg: Segment, count: usize) {
        let mut w = self.lock();
        let bits = seg.data.len() as f64 * 8.0 / seg.duration.as_secs_f64().max(0.1);
        if let Some(v) = &mut w.variant {
            v.bandwidth = v.bandwidth.max(bits as u64);
        }
        w.segments.push_back(seg);
        while w.segments.len() > count {
            if let Some(old) = w.segments.pop_front() {
                w.discontinuity_seq += u64::from(old.discontinuity);
            }
        }
        drop(w);
        self.added.notify_waiters();
    }
}

/// RFC 6381 codec strings of the tracks TS carries here, and the video size.
fn describe(tracks: &[Track]) -> (String, Option<(u32, u32)>) {
    let mut codecs = Vec::new();
    for t in tracks {
        match &t.codec {
            Codec::H264 { sps: Some(sps), .. } => {
                if let Some(p) = h264::profile_level_id(sps) {
                    codecs.push(format!("avc1.{p}"));
                }
            }
            Codec::H265 { .. } => codecs.push("hvc1".to_string()),
            Codec::Aac { .. } => codecs.push("mp4a.40.2".to_string()),
            _ => {}
        }
    }
    let size = tracks.iter().find_map(crate::format::flv::mux::video_size);
    (codecs.join(","), size)
}

/// The muxers of all paths, created on a path's first HLS request.
#[derive(Clone)]
pub struct HlsMuxers {
    manager: PathManager,
    cfg: MuxerConfig,
    shutdown: CancellationToken,
    muxers: Arc<Mutex<HashMap<String, Arc<HlsMuxer>>>>,
}

impl HlsMuxers {
    pub fn new(manager: PathManager, cfg: MuxerConfig, shutdown: CancellationToken) -> Self {
        HlsMuxers {
            manager,
            cfg,
            shutdown,
            muxers: Arc::default(),
        }
    }

    /// How long a first request waits for the first segment.
    pub fn first_segment_wait(&self) -> Duration {
        self.cfg.segment_duration * 3 + Duration::from_secs(2)
    }

    /// The path's muxer, started if the path has a publisher (or had one recently).
    pub fn get(&self, path: &str) -> Option<Arc<HlsMuxer>> {
        let mut map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(path) {
            return Some(m.clone());
        }
        self.manager.stream(path).ok()?;
        let m = Arc::new(HlsMuxer {
            window: Mutex::default(),
            added: Notify::new(),
            stop: self.shutdown.child_token(),
        });
        m.touch();
        map.insert(path.to_string(), m.clone());
        tracing::info!(path, "HLS muxer started");
        tokio::spawn(run(self.clone(), path.to_string(), m.clone()));
        Some(m)
    }

    fn remove(&self, path: &str, m: &Arc<HlsMuxer>) {
        let mut map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(path).is_some_and(|x| Arc::ptr_eq(x, m)) {
            map.remove(path);
        }
    }
}

fn idle(m: &HlsMuxer, close_after: Duration) -> bool {
    m.lock()
        .last_request
        .is_none_or(|t| t.elapsed() >= close_after)
}

async fn run(all: HlsMuxers, path: String, m: Arc<HlsMuxer>) {
    let cfg = all.cfg;
    let mut publishers = 0u64;
    let reason = 'outer: loop {
        if idle(&m, cfg.close_after) {
            break "no request for hlsMuxerCloseAfter";
        }
        let reader = match all.manager.add_reader(&path) {
            Ok(r) => r,
            Err(_) => {
                tokio::select! {
                    _ = m.stop.cancelled() => break "server shutting down",
                    _ = tokio::time::sleep(PUBLISHER_POLL) => continue,
                }
            }
        };
        let stream = reader.stream().clone();
        let Some(mut sub) = stream.subscribe() else {
            continue;
        };
        let tracks = stream.tracks();
        let epoch = SystemTime::now() - stream.elapsed();
        let mut seg = match TsSegmenter::new(&tracks, cfg.segment_duration, epoch) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%path, "HLS muxer: {e}");
                break "no track fits in MPEG-TS";
            }
        };
        if publishers > 0 {
            seg.mark_discontinuity();
        }
        if let Some(last) = m.lock().segments.back() {
            seg.start_at(last.seq + 1);
        }
        publishers += 1;
        let (codecs, resolution) = describe(&tracks);
        m.lock().variant = Some(VariantInfo {
            codecs,
            resolution,
            bandwidth: 0,
        });
        let mut check = tokio::time::interval(cfg.close_after.min(Duration::from_secs(1)));
        loop {
            let item = tokio::select! {
                _ = m.stop.cancelled() => break 'outer "server shutting down",
                _ = check.tick() => {
                    if idle(&m, cfg.close_after) {
                        break 'outer "no request for hlsMuxerCloseAfter";
                    }
                    continue;
                }
                item = sub.next() => item,
            };
            match item {
                Ok(StreamItem::Unit(e)) => {
                    if let Some(s) = seg.push(&e.unit) {
                        m.add(s, cfg.segment_count);
                    }
                }
                Ok(StreamItem::Rtcp { .. }) => {}
                Err(_) => {
                    if let Some(s) = seg.finish() {
                        m.add(s, cfg.segment_count);
                    }
                    break;
                }
            }
        }
    };
    all.remove(&path, &m);
    tracing::info!(%path, "HLS muxer closed: {reason}");
}
