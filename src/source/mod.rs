//! Path sources: the server pulls a path's media instead of waiting for a publisher
//! (`source: rtsp://…`, `rtsps://…`, `rtmp://…` or an HLS `http://…` playlist, or a
//! list of them: origins tried in order). A source runs as one task per path, always-on
//! for exact names or on demand (`sourceOnDemand`), and reconnects with capped,
//! jittered backoff, moving to the next origin at each failure.

pub mod hls;
pub mod reach;
pub mod rtmp;
pub mod rtsp;
pub mod rtsps;
pub(crate) mod segments;

use crate::config::PathConf;
use crate::core::{PathError, PathManager, Peer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// MediaMTX retries a source every 5 s; never wait longer than that.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// How often an on-demand source looks at its path's readers.
const IDLE_CHECK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("bad source URL: {0}")]
    Url(String),
    #[error("RTSP: {0}")]
    Rtsp(#[from] retina::Error),
    #[error("RTSPS: {0}")]
    Rtsps(String),
    #[error("RTMP: {0:#}")]
    Rtmp(anyhow::Error),
    #[error("bad media from the source: {0}")]
    Media(String),
    #[error("HLS: {0}")]
    Hls(String),
    #[error("the source's SDP: {0}")]
    Sdp(String),
    #[error("no packet for {0:?} (readTimeout)")]
    Timeout(Duration),
    #[error("no answer to DESCRIBE/SETUP/PLAY within {0:?} (readTimeout)")]
    NoAnswer(Duration),
    #[error("the source ended the stream")]
    Ended,
    #[error("{0}")]
    Path(#[from] PathError),
}

/// What one connection attempt of a source works with.
#[derive(Clone, Copy)]
pub(crate) struct Pull<'a> {
    pub url: &'a str,
    pub conf: &'a PathConf,
    pub publisher: &'a crate::core::Publisher,
    pub stream_cfg: crate::core::StreamConfig,
    pub read_timeout: Duration,
    /// What the source's messages may hold (`sdpMaxMedias`, `rtmpMaxMessageSize`, …).
    pub limits: crate::format::limits::InputLimits,
    pub stop: &'a CancellationToken,
}

/// Which of a source's origins is tried next. One that works is kept until it fails
/// (no going back to the first while a later one streams); a failure moves on to the
/// next at once; once every origin has failed in a row, the round starts again from
/// the first after the backoff.
#[derive(Debug)]
struct Origins {
    count: usize,
    current: usize,
    /// Origins that failed in a row.
    failed_in_row: usize,
}

impl Origins {
    fn new(count: usize) -> Self {
        Origins {
            count,
            current: 0,
            failed_in_row: 0,
        }
    }

    /// The current origin streamed long enough to count as working.
    fn stable(&mut self) {
        self.failed_in_row = 0;
    }

    /// The current origin failed: moves on; whether every origin has now failed in a
    /// row (the caller backs off, and the next round starts from the first).
    fn failed(&mut self) -> bool {
        self.failed_in_row += 1;
        if self.failed_in_row >= self.count {
            self.failed_in_row = 0;
            self.current = 0;
            return true;
        }
        self.current = (self.current + 1) % self.count;
        false
    }
}

/// What a running source is doing, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The URL of the origin in use (or being tried), without its password.
    pub url: String,
    pub peer: Peer,
    /// Why the last try failed, while the source waits to retry; `None` while it
    /// connects or plays.
    pub error: Option<String>,
    /// Tries that failed in a row.
    pub failures: u32,
}

struct Running {
    id: u64,
    stop: CancellationToken,
    /// Cancelled when the source's task has ended and let go of the path.
    finished: CancellationToken,
    status: SourceStatus,
}

/// The running sources, by path name.
#[derive(Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Running>>,
    stop: CancellationToken,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Registry {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status of the path's source, if one runs.
    pub fn status(&self, name: &str) -> Option<SourceStatus> {
        self.running().get(name).map(|r| r.status.clone())
    }

    fn set_status(&self, name: &str, id: u64, error: Option<String>) {
        if let Some(r) = self.running().get_mut(name).filter(|r| r.id == id) {
            r.status.failures = if error.is_some() {
                r.status.failures + 1
            } else {
                0
            };
            r.status.error = error;
        }
    }

    fn set_origin(&self, name: &str, id: u64, url: &str, peer: Peer) {
        if let Some(r) = self.running().get_mut(name).filter(|r| r.id == id) {
            r.status.url = url.to_string();
            r.status.peer = peer;
        }
    }

    pub fn stop_all(&self) {
        self.stop.cancel();
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.running().contains_key(name)
    }

    /// Stops the path's source (a reload changed or removed it) and waits until it
    /// has let go of the path. Returns whether one was running.
    pub(crate) async fn stop(&self, name: &str) -> bool {
        let Some(r) = self.running().remove(name) else {
            return false;
        };
        r.stop.cancel();
        r.finished.cancelled().await;
        true
    }
}

/// Starts the path's source unless it runs already; `urls` are its origins, in order.
pub(crate) fn ensure(manager: &PathManager, name: &str, urls: Vec<String>, conf: Arc<PathConf>) {
    let Some(first) = urls.first() else {
        return;
    };
    let reg = manager.sources();
    let mut running = reg.running();
    if running.contains_key(name) || reg.stop.is_cancelled() {
        return;
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let stop = reg.stop.child_token();
    let status = SourceStatus {
        url: redacted(first),
        peer: peer_of(first),
        error: None,
        failures: 0,
    };
    let finished = CancellationToken::new();
    running.insert(
        name.to_string(),
        Running {
            id,
            stop: stop.clone(),
            finished: finished.clone(),
            status,
        },
    );
    let task = run(manager.clone(), name.to_string(), urls, conf, id, stop);
    tokio::spawn(async move {
        task.await;
        finished.cancel();
    });
}

fn peer_of(url: &str) -> Peer {
    if url.starts_with("rtmp") {
        Peer::RtmpSource
    } else if url.starts_with("http") {
        Peer::HlsSource
    } else if url.starts_with("rtsps") {
        Peer::RtspsSource
    } else {
        Peer::RtspSource
    }
}

use crate::auth::redact_url as redacted;

/// Cancels `stop` once the path has had no reader for `close_after` while its stream
/// was up, or for `close_after` + `start_timeout` while it wasn't (a camera that never
/// answers isn't retried forever for nobody).
async fn close_when_idle(
    manager: PathManager,
    name: String,
    conf: Arc<PathConf>,
    stop: CancellationToken,
) {
    let close_after = conf.source_on_demand_close_after.0;
    let grace = close_after + conf.source_on_demand_start_timeout.0;
    let mut idle_since: Option<Instant> = None;
    let mut had_stream = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(IDLE_CHECK) => {}
        }
        let path = manager.path(&name);
        let readers = path.as_ref().map_or(0, |p| p.demanding_readers());
        let has_stream = path.as_ref().is_some_and(|p| p.stream().is_some());
        if readers > 0 || has_stream != had_stream {
            // A reader, or the stream just came or went: the idle time starts over.
            idle_since = (readers == 0).then(Instant::now);
            had_stream = has_stream;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        let limit = if has_stream { close_after } else { grace };
        if since.elapsed() >= limit {
            tracing::info!(path = %name, "source closing: no reader for sourceOnDemandCloseAfter");
            stop.cancel();
            return;
        }
    }
}

async fn run(
    manager: PathManager,
    name: String,
    urls: Vec<String>,
    conf: Arc<PathConf>,
    id: u64,
    stop: CancellationToken,
) {
    let shown: Vec<String> = urls.iter().map(|u| redacted(u)).collect();
    if conf.source_on_demand {
        tokio::spawn(close_when_idle(
            manager.clone(),
            name.clone(),
            conf.clone(),
            stop.clone(),
        ));
    }
    match manager.add_source_publisher(&name, peer_of(&urls[0])) {
        Ok(publisher) => {
            let mut backoff = MIN_BACKOFF;
            let mut origin = Origins::new(urls.len());
            tracing::info!(path = %name, source = %shown.join(" "), "source started");
            while !stop.is_cancelled() {
                let url = &urls[origin.current];
                manager
                    .sources()
                    .set_origin(&name, id, &shown[origin.current], peer_of(url));
                let started = Instant::now();
                let global = manager.config();
                let cfg = manager.stream_config();
                let pull = Pull {
                    url,
                    conf: &conf,
                    publisher: &publisher,
                    stream_cfg: cfg,
                    read_timeout: global.read_timeout.0,
                    limits: global.input_limits(),
                    stop: &stop,
                };
                let r = match peer_of(url) {
                    Peer::RtmpSource => rtmp::pull(pull).await,
                    Peer::HlsSource => hls::pull(pull).await,
                    Peer::RtspsSource => rtsps::pull(pull).await,
                    _ => rtsp::pull(pull).await,
                };
                // Readers see the stream end now, not when a new one replaces it.
                publisher.end_stream();
                if started.elapsed() >= STABLE {
                    backoff = MIN_BACKOFF;
                    origin.stable();
                    manager.sources().set_status(&name, id, None);
                }
                let Err(e) = r else { break };
                // One line per try: retina puts connection details on more lines.
                let reason = e.to_string().replace('\n', "; ");
                manager
                    .sources()
                    .set_status(&name, id, Some(reason.clone()));
                let failed = origin.current;
                // The next origin at once while some haven't failed in this round;
                // once all have, wait (jittered: 75–125 % of the backoff, so many
                // sources don't retry in step) and start over from the first.
                let wait = match origin.failed() {
                    true => backoff.mul_f64(0.75 + rand::random::<f64>() * 0.5),
                    false => Duration::ZERO,
                };
                let next = &shown[origin.current];
                match urls.len() {
                    1 => {
                        tracing::warn!(path = %name, source = %shown[failed], "source failed: {reason}; retrying in {:.1}s", wait.as_secs_f64())
                    }
                    _ => {
                        tracing::warn!(path = %name, source = %shown[failed], "source failed: {reason}; next origin {next} in {:.1}s", wait.as_secs_f64())
                    }
                }
                if !wait.is_zero() {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            drop(publisher);
        }
        Err(e) => {
            tracing::warn!(path = %name, source = %shown.join(" "), "source can't start: {e}")
        }
    }
    stop.cancel();
    let reg = manager.sources();
    let mut running = reg.running();
    if running.get(&name).is_some_and(|r| r.id == id) {
        running.remove(&name);
    }
    tracing::info!(path = %name, "source stopped");
}

#[cfg(test)]
mod tests {
    use super::Origins;

    #[test]
    fn origins_move_on_at_a_failure_and_start_over_after_a_round() {
        let mut o = Origins::new(3);
        assert_eq!(o.current, 0);
        assert!(!o.failed());
        assert_eq!(o.current, 1);
        // The second works for a while: it stays, and its failure moves on to the third.
        o.stable();
        assert!(!o.failed());
        assert_eq!(o.current, 2);
        assert!(!o.failed());
        assert_eq!(o.current, 0);
        // The first fails again: three in a row, a round: back off, start from the first.
        assert!(o.failed());
        assert_eq!(o.current, 0);
        // One origin: every failure is a round.
        let mut one = Origins::new(1);
        assert!(one.failed());
        assert!(one.failed());
        assert_eq!(one.current, 0);
    }
}
