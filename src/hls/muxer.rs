//! The HLS muxers of all paths: one task per path reads the path's stream (as one
//! reader) and cuts it into MPEG-TS or fMP4 segments (and LL-HLS parts) for the
//! path's `HlsMuxer`. A muxer starts on the path's first HLS request, or with the
//! stream under `hlsAlwaysRemux`; it stops `hlsMuxerCloseAfter` after the last request.

use super::disk::DiskWriter;
use super::fmp4_segmenter::{Fmp4Segmenter, Output};
use super::segmenter::{Segment, TsSegmenter};
use super::window::{HlsMuxer, VariantInfo};
use crate::config::HlsVariant;
use crate::core::{Codec, PathManager, StreamItem, Track, UnitEntry, WallClock};
use crate::format::fmp4;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Longest a LL-HLS muxer goes without looking at its stream.
const LL_LOOK_EVERY: Duration = Duration::from_millis(15);

/// How often a muxer without a publisher looks for one.
const PUBLISHER_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct MuxerConfig {
    pub variant: HlsVariant,
    pub segment_count: usize,
    pub segment_duration: Duration,
    pub part_duration: Duration,
    pub close_after: Duration,
    pub always_remux: bool,
    pub directory: String,
}

/// Whether segments of the variant carry the track.
fn carries(variant: HlsVariant, t: &Track) -> bool {
    match variant {
        HlsVariant::Mpegts => matches!(
            t.codec,
            Codec::H264 { .. } | Codec::H265 { .. } | Codec::Aac { .. }
        ),
        _ => fmp4::carries(t),
    }
}

/// RFC 6381 codec strings of the tracks the variant carries, and the video size.
fn describe(tracks: &[Track], variant: HlsVariant) -> VariantInfo {
    let codecs: Vec<String> = tracks
        .iter()
        .filter(|t| carries(variant, t))
        .filter_map(fmp4::codec_string)
        .collect();
    VariantInfo {
        codecs: codecs.join(","),
        resolution: tracks.iter().find_map(crate::format::flv::mux::video_size),
        bandwidth: 0,
    }
}

/// The muxers of all paths.
#[derive(Clone)]
pub struct HlsMuxers {
    manager: PathManager,
    cfg: Arc<MuxerConfig>,
    shutdown: CancellationToken,
    muxers: Arc<Mutex<HashMap<String, Arc<HlsMuxer>>>>,
}

impl HlsMuxers {
    pub fn new(manager: PathManager, cfg: MuxerConfig, shutdown: CancellationToken) -> Self {
        let all = HlsMuxers {
            manager,
            cfg: Arc::new(cfg),
            shutdown,
            muxers: Arc::default(),
        };
        if all.cfg.always_remux {
            let mut ready = all.manager.subscribe_ready();
            let me = all.clone();
            tokio::spawn(async move {
                loop {
                    let name = tokio::select! {
                        _ = me.shutdown.cancelled() => return,
                        r = ready.recv() => match r {
                            Ok(name) => name,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return,
                        },
                    };
                    me.start(&name, false);
                }
            });
        }
        all
    }

    /// How long a first request waits for the first segment.
    pub fn first_segment_wait(&self) -> Duration {
        self.cfg.segment_duration * 3 + Duration::from_secs(2)
    }

    /// The path's muxer if it runs; starts nothing.
    pub fn running(&self, path: &str) -> Option<Arc<HlsMuxer>> {
        let map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        map.get(path).cloned()
    }

    /// The running muxers by path, for the API.
    pub fn list(&self) -> Vec<(String, Arc<HlsMuxer>)> {
        let map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = map.iter().map(|(p, m)| (p.clone(), m.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The path's muxer, started if the path has a publisher.
    pub fn get(&self, path: &str) -> Option<Arc<HlsMuxer>> {
        self.start(path, true)
    }

    fn start(&self, path: &str, request: bool) -> Option<Arc<HlsMuxer>> {
        let mut map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(path) {
            if request {
                m.touch();
            }
            return Some(m.clone());
        }
        self.manager.stream(path).ok()?;
        let c = &self.cfg;
        let m = Arc::new(HlsMuxer::new(
            c.variant,
            c.segment_count,
            c.segment_duration,
            c.part_duration,
            super::sequence::first(path),
            self.shutdown.child_token(),
        ));
        // Counts as a request: under hlsAlwaysRemux the muxer outlives a publisher
        // change by up to hlsMuxerCloseAfter, so the playlist goes on.
        m.touch();
        map.insert(path.to_string(), m.clone());
        tracing::info!(path, "HLS muxer started ({:?})", c.variant);
        tokio::spawn(run(self.clone(), path.to_string(), m.clone()));
        Some(m)
    }

    fn remove(&self, path: &str, m: &Arc<HlsMuxer>) {
        let mut map = self.muxers.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(path).is_some_and(|x| Arc::ptr_eq(x, m)) {
            map.remove(path);
        }
    }

    /// No request for `hlsMuxerCloseAfter`, and (under `hlsAlwaysRemux`) no stream.
    fn idle(&self, path: &str, m: &HlsMuxer) -> bool {
        m.idle_for(self.cfg.close_after)
            && !(self.cfg.always_remux && self.manager.stream(path).is_ok())
    }
}

enum Cutter {
    Ts(TsSegmenter),
    Fmp4(Fmp4Segmenter),
}

/// One publisher's worth of muxing, feeding the shared window.
struct Feed<'a> {
    m: &'a HlsMuxer,
    cutter: Cutter,
    /// Wall-clock time at stream time 0.
    epoch: WallClock,
    init: u64,
    variant: HlsVariant,
    disk: Option<&'a DiskWriter>,
    out: Vec<Output>,
}

impl Feed<'_> {
    fn observe(&mut self, e: &UnitEntry) {
        let clock = e.track().clock_rate;
        if let Some(c) = self.epoch.observe(e.unit.dts, clock, SystemTime::now()) {
            match &mut self.cutter {
                Cutter::Ts(s) => s.set_epoch(c),
                Cutter::Fmp4(s) => s.set_epoch(c),
            }
        }
    }

    async fn push(&mut self, e: &UnitEntry) {
        self.observe(e);
        match &mut self.cutter {
            Cutter::Ts(s) => {
                if let Some(seg) = s.push(&e.unit) {
                    self.segment(seg, &e.tracks).await;
                }
            }
            Cutter::Fmp4(s) => {
                s.push(&e.unit, &e.tracks, &mut self.out);
                self.drain(&e.tracks).await;
            }
        }
    }

    async fn finish(&mut self, tracks: &[Track]) {
        match &mut self.cutter {
            Cutter::Ts(s) => {
                if let Some(seg) = s.finish() {
                    self.segment(seg, tracks).await;
                }
            }
            Cutter::Fmp4(s) => {
                s.finish(&mut self.out);
                self.drain(tracks).await;
            }
        }
        self.m.end_of_stream();
    }

    async fn drain(&mut self, tracks: &[Track]) {
        for o in std::mem::take(&mut self.out) {
            match o {
                Output::Init(data) => {
                    if let Some(d) = self.disk {
                        d.init(self.m.next_init(), &data).await;
                    }
                    self.init = self.m.add_init(data);
                }
                Output::Part(p) => self.m.add_part(p, self.init),
                Output::Segment(seg) => self.segment(seg, tracks).await,
            }
        }
    }

    async fn segment(&mut self, seg: Segment, tracks: &[Track]) {
        self.m.set_variant(describe(tracks, self.variant));
        let (seq, data) = (seg.seq, seg.data.clone());
        let (gone, gone_inits) = self.m.add_segment(seg, self.init);
        if let Some(d) = self.disk {
            d.segment(seq, &data, &self.m.render(false), &gone, &gone_inits)
                .await;
        }
    }
}

async fn run(all: HlsMuxers, path: String, m: Arc<HlsMuxer>) {
    let cfg = all.cfg.clone();
    let disk = DiskWriter::new(&cfg.directory, &path, m.extension());
    let mut publishers = 0u64;
    let (mut next_seq, mut next_part) = (m.first_seq, m.first_id());
    let reason = 'outer: loop {
        if all.idle(&path, &m) {
            break "no request for hlsMuxerCloseAfter";
        }
        let reader = match all.manager.add_reader(&path, crate::core::Peer::HlsMuxer) {
            Ok(r) => r,
            Err(_) => {
                tokio::select! {
                    _ = m.stop.cancelled() => break "the HLS listener closed",
                    _ = tokio::time::sleep(PUBLISHER_POLL) => continue,
                }
            }
        };
        let stream = reader.stream().clone();
        let Some(mut sub) = stream.subscribe() else {
            continue;
        };
        if cfg.variant == HlsVariant::LowLatency {
            // A part is complete when the next frame arrives: see it within a frame
            // or so rather than after writeMerge.
            sub.look_every(LL_LOOK_EVERY);
        }
        let tracks = stream.tracks();
        let epoch = SystemTime::now() - stream.elapsed();
        let cutter = match cfg.variant {
            HlsVariant::Mpegts => TsSegmenter::new(&tracks, cfg.segment_duration, epoch)
                .map(|mut s| {
                    s.start_at(next_seq);
                    if publishers > 0 {
                        s.mark_discontinuity();
                    }
                    Cutter::Ts(s)
                })
                .map_err(|e| e.to_string()),
            v => {
                // Without LL-HLS, parts are only the fragments a segment is written in.
                let part = match v {
                    HlsVariant::LowLatency => cfg.part_duration,
                    _ => cfg.segment_duration,
                };
                Fmp4Segmenter::new(&tracks, cfg.segment_duration, part, epoch)
                    .map(|mut s| {
                        s.start_at(next_seq, next_part);
                        if publishers > 0 {
                            s.mark_discontinuity();
                        }
                        Cutter::Fmp4(s)
                    })
                    .map_err(|e| e.to_string())
            }
        };
        let cutter = match cutter {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%path, "HLS muxer: {e}");
                break "no track fits the HLS variant";
            }
        };
        let mut feed = Feed {
            m: &m,
            cutter,
            epoch: WallClock::default(),
            init: 0,
            variant: cfg.variant,
            disk: disk.as_ref(),
            out: Vec::new(),
        };
        publishers += 1;
        let left_out: Vec<&str> = tracks
            .iter()
            .filter(|t| !carries(cfg.variant, t))
            .map(|t| t.codec.name())
            .collect();
        if !left_out.is_empty() {
            let left_out = left_out.join(", ");
            tracing::warn!(%path, "HLS muxer leaves out {left_out}: the {:?} variant can't carry it", cfg.variant);
        }
        m.set_variant(describe(&tracks, cfg.variant));
        let mut last_tracks = tracks;
        let mut check = tokio::time::interval(cfg.close_after.min(Duration::from_secs(1)));
        loop {
            let item = tokio::select! {
                _ = m.stop.cancelled() => break 'outer "the HLS listener closed",
                _ = check.tick() => {
                    if all.idle(&path, &m) {
                        break 'outer "no request for hlsMuxerCloseAfter";
                    }
                    continue;
                }
                item = sub.next() => item,
            };
            match item {
                Ok(StreamItem::Unit(e)) => {
                    feed.push(&e).await;
                    last_tracks = e.tracks.clone();
                }
                Ok(StreamItem::Rtcp { .. }) => {}
                Err(_) => {
                    feed.finish(&last_tracks).await;
                    break;
                }
            }
        }
        (next_seq, next_part) = match &feed.cutter {
            Cutter::Ts(s) => (s.next_seq(), 0),
            Cutter::Fmp4(s) => (s.next_seq(), s.next_part()),
        };
    };
    all.remove(&path, &m);
    if let Some(end) = m.sequence_end() {
        super::sequence::ended(&path, end);
    }
    if let Some(d) = &disk {
        d.clear().await;
    }
    tracing::info!(%path, "HLS muxer closed: {reason}");
}
