//! The per-path transcode stage (`transcode:`): a reader of `<path>/source` that
//! publishes `<path>`, one per transcoding path while its input has a stream. Decoding,
//! scaling and encoding run on a thread of their own (ffmpeg-next, cargo feature
//! `transcode`); a stage that can't keep up drops input up to the next keyframe.

#[cfg(feature = "transcode")]
pub mod bench;
#[cfg(feature = "transcode")]
mod encode;
#[cfg(feature = "transcode")]
mod pipeline;

use crate::config::Config;
use crate::core::PathManager;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// Says once per transcoding path that this build can't transcode (the path then
/// serves its input untouched).
pub fn warn_if_unbuilt(config: &Config) {
    if cfg!(feature = "transcode") {
        return;
    }
    for (pattern, conf) in &config.paths {
        if conf.as_ref().is_some_and(|c| c.transcode.is_some()) {
            tracing::warn!(
                "paths: '{}': transcode is ignored: this build has no transcode stage \
                 (cargo feature `transcode`); the path serves its input untouched",
                pattern.entry_name()
            );
        }
    }
}

type Running = HashMap<
    String,
    (
        u64,
        CancellationToken,
        Option<crate::config::transcode::TranscodeConf>,
    ),
>;

/// The running stages by path.
#[derive(Clone, Default)]
pub struct Stages {
    running: Arc<Mutex<Running>>,
    shutdown: CancellationToken,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Starts a path's stage each time its input (`<path>/source`) gets a stream.
pub fn start(manager: PathManager, shutdown: CancellationToken) -> Stages {
    let stages = Stages {
        running: Arc::default(),
        shutdown: shutdown.clone(),
    };
    if !cfg!(feature = "transcode") {
        return stages;
    }
    let mut ready = manager.subscribe_ready();
    let s = stages.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = ready.recv() => match r {
                    Ok(n) => n,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
            };
            if let Some(parent) = manager.config().transcode_input_of(&name) {
                s.start_for(&manager, parent);
            }
        }
    });
    stages
}

impl Stages {
    fn running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `name`'s stage unless one runs; returns whether it started.
    fn start_for(&self, manager: &PathManager, name: &str) -> bool {
        let Some(conf) = manager
            .config()
            .find_path(name)
            .and_then(|m| m.conf.transcode.clone())
        else {
            return false;
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let stop = self.shutdown.child_token();
        {
            let mut running = self.running();
            if running.contains_key(name) {
                return false;
            }
            running.insert(name.to_string(), (id, stop.clone(), Some(conf.clone())));
        }
        let (manager, stages, name) = (manager.clone(), self.clone(), name.to_string());
        tokio::spawn(async move {
            run(&manager, &name, conf, &stop).await;
            let mut running = stages.running();
            if running.get(&name).is_some_and(|(i, _, _)| *i == id) {
                running.remove(&name);
            }
        });
        true
    }

    /// After a reload: stops stages whose path no longer transcodes or transcodes
    /// differently, and starts the stages of inputs that have a stream.
    /// Returns (started, stopped).
    pub fn reconcile(&self, manager: &PathManager) -> (usize, usize) {
        let config = manager.config();
        let mut stopped = 0;
        self.running().retain(|name, (_, stop, conf)| {
            let now = config
                .find_path(name)
                .and_then(|m| m.conf.transcode.clone());
            let keep = now.is_some() && now == *conf;
            if !keep {
                stop.cancel();
                stopped += 1;
            }
            keep
        });
        let started = manager
            .path_names()
            .iter()
            .filter_map(|n| config.transcode_input_of(n))
            .filter(|parent| self.start_for(manager, parent))
            .count();
        (started, stopped)
    }
}

#[cfg(feature = "transcode")]
async fn run(
    manager: &PathManager,
    name: &str,
    conf: crate::config::transcode::TranscodeConf,
    stop: &CancellationToken,
) {
    pipeline::run(manager, name, conf, stop).await
}

#[cfg(not(feature = "transcode"))]
async fn run(
    _: &PathManager,
    _: &str,
    _: crate::config::transcode::TranscodeConf,
    _: &CancellationToken,
) {
}
