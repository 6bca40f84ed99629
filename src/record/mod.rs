//! Recording (`record: yes` per path, MediaMTX's keys): while a path has a stream, a
//! recorder reads it like any other reader and writes segment files (fMP4 or MPEG-TS)
//! part by part; a cleaner deletes segments older than `recordDeleteAfter`.

pub mod cleaner;
pub mod cutter;
pub mod pattern;
mod writer;

use crate::config::record::RecordFormat;
use crate::config::PathConf;
use crate::core::{PathManager, ReadEnd, StreamItem, Tasks, WallClock};
use cutter::{Cutter, Limits};
use pattern::RecordPattern;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use writer::Writer;

/// What a recorder was started with: a change restarts it (a new file).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub format: RecordFormat,
    pub pattern: RecordPattern,
    pub limits: Limits,
}

impl Settings {
    /// `None` when the path isn't recorded.
    pub fn of(conf: &PathConf) -> Option<Settings> {
        conf.record.then(|| Settings {
            format: conf.record_format,
            pattern: RecordPattern::new(&conf.record_path, conf.record_format.extension()),
            limits: Limits {
                segment: conf.record_segment_duration.0,
                part: conf.record_part_duration.0.max(Duration::from_millis(10)),
                max_part_bytes: usize::try_from(conf.record_max_part_size.0).unwrap_or(usize::MAX),
            },
        })
    }
}

/// The running recorders, one per recorded path with a stream.
#[derive(Clone)]
pub struct Recorders(Tasks<String, Settings>);

/// Watches paths becoming ready and starts their recorders, and the cleaner.
pub fn start(manager: PathManager, shutdown: CancellationToken) -> Recorders {
    let recorders = Recorders(Tasks::new(shutdown.clone()));
    let (r, m) = (recorders.clone(), manager.clone());
    manager.on_ready(shutdown.clone(), move |name| {
        r.start_for(&m, name);
    });
    tokio::spawn(cleaner::run(manager, shutdown));
    recorders
}

impl Recorders {
    fn start_for(&self, manager: &PathManager, name: &str) -> bool {
        let Some(settings) = manager
            .config()
            .find_path(name)
            .and_then(|m| Settings::of(&m.conf))
        else {
            return false;
        };
        let (manager, n) = (manager.clone(), name.to_string());
        self.0
            .start(name.to_string(), settings.clone(), move |stop| async move {
                record(&manager, &n, settings, &stop).await;
            })
    }

    /// After a reload: recorders of paths no longer recorded (or recorded otherwise)
    /// stop, closing their file; recorded paths with a stream get one. Nobody's
    /// connection is touched. Returns (started, stopped).
    pub fn reconcile(&self, manager: &PathManager) -> (usize, usize) {
        let config = manager.config();
        let stopped = self.0.retain(|name, s| {
            config
                .find_path(name)
                .and_then(|m| Settings::of(&m.conf))
                .is_some_and(|now| &now == s)
        });
        let started = manager
            .path_names()
            .iter()
            .filter(|n| manager.stream(n).is_ok())
            .filter(|n| self.start_for(manager, n))
            .count();
        (started, stopped)
    }
}

/// Counts a time the recorder fell behind its stream; logs it once per burst (the 1st,
/// 2nd, 4th, 8th… time).
fn fell_behind(name: &str, dropped: &mut u64) {
    *dropped += 1;
    if dropped.is_power_of_two() {
        tracing::warn!(path = %name, "recording fell behind the stream (disk too slow; {dropped} times so far): it goes on from the next keyframe, in a new segment");
    }
}

/// Records the path's streams, one after another, until it has none or `stop`.
async fn record(manager: &PathManager, name: &str, settings: Settings, stop: &CancellationToken) {
    let Some(path) = manager.path(name) else {
        return;
    };
    let mut writer = Writer::new(path, settings.pattern.clone());
    let mut dropped = 0u64;
    loop {
        let Ok(reader) = manager.add_reader(name, crate::core::Peer::Recorder) else {
            break;
        };
        writer.path = reader.path().clone();
        let stream = reader.stream().clone();
        let Some(mut sub) = stream.subscribe() else {
            break;
        };
        let tracks = stream.tracks();
        let epoch = SystemTime::now() - stream.elapsed();
        let mut cutter = match Cutter::new(settings.format, &tracks, settings.limits, epoch) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(path = %name, "not recording this stream: {e}");
                // Wait for the stream's end rather than trying it again.
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = async { while sub.next().await.is_ok() {} } => {}
                }
                drop(reader);
                if stop.is_cancelled() || !stream.is_closed() {
                    break;
                }
                continue;
            }
        };
        tracing::info!(path = %name, "recording ({:?})", settings.format);
        let left_out = cutter.left_out(&tracks);
        if !left_out.is_empty() {
            let (codecs, format) = (left_out.join(", "), settings.format);
            tracing::warn!(path = %name, "recording leaves out {codecs}: {format:?} can't carry it");
        }
        let mut clock = WallClock::default();
        let mut events = Vec::new();
        let mut skips = 0;
        let end = loop {
            let item = tokio::select! {
                _ = stop.cancelled() => break None,
                item = sub.next() => item,
            };
            if sub.skips() != skips {
                // The disk held the recorder up and the stream moved on: what follows
                // starts at a keyframe, in a new segment.
                skips = sub.skips();
                fell_behind(name, &mut dropped);
                cutter.cut_at_next_keyframe();
            }
            match item {
                Ok(StreamItem::Unit(e)) => {
                    if !cutter.started() {
                        let now = SystemTime::now();
                        if let Some(epoch) = clock.observe(e.unit.dts, e.track().clock_rate, now) {
                            cutter.set_epoch(epoch);
                        }
                    }
                    cutter.push(&e.unit, &e.tracks, &mut events);
                }
                Ok(StreamItem::Rtcp { .. }) => continue,
                Err(end) => {
                    cutter.finish(&mut events);
                    break Some(end);
                }
            }
            for ev in events.drain(..) {
                if !writer.apply(ev).await {
                    cutter.restart_after_failure();
                }
            }
        };
        for ev in events.drain(..) {
            writer.apply(ev).await;
        }
        writer.close().await;
        drop(reader);
        match end {
            // A new publisher starts a new segment.
            Some(ReadEnd::Closed) => continue,
            Some(ReadEnd::TooSlow) => fell_behind(name, &mut dropped),
            None => break,
        }
    }
    tracing::info!(path = %name, "recording ended ({} bytes written)", writer.written);
}
