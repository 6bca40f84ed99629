//! HTTP webhooks (`webhooks:` per path): a JSON POST per path event, sent from a
//! bounded queue per URL with retries, never holding media up; with `allow: yes` the
//! reply to a publish or read event decides, as nginx-rtmp's `on_publish`/`on_play`.

use crate::config::webhook::{Event, Webhook};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events waiting per URL; more are dropped (and counted) rather than held in memory.
const QUEUE: usize = 256;
/// One POST's limit, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Tries per event, with the pause doubling from `FIRST_RETRY`.
const TRIES: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Drops and failures are logged at most this often per URL.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the receiver is told.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub event: Event,
    pub path: String,
    /// `rtsp`, `rtmp`, `hls`, `webrtc`…, or the source kind for a pulled path.
    pub protocol: &'static str,
    /// The client's address, when the event comes from one.
    pub peer: Option<String>,
    /// The publisher's or reader's kind and id, as the API and hooks name them.
    pub source_type: Option<&'static str>,
    pub source_id: Option<String>,
    pub reader_type: Option<&'static str>,
    pub reader_id: Option<String>,
    pub query: String,
    /// Unix time, milliseconds.
    pub time: u64,
    /// Recording events: the segment's file, and (when complete) its seconds of media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_duration: Option<f64>,
}

/// The time now, as `Payload::time` gives it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Queue {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
}

/// The senders, one task and queue per URL (shared by every path that names it).
#[derive(Default)]
pub struct Webhooks {
    queues: Mutex<HashMap<(String, Option<String>), Queue>>,
}

impl Webhooks {
    /// Queues `payload` for every webhook of `hooks` that wants its event.
    pub(super) fn send(
        &self,
        rt: &tokio::runtime::Handle,
        stop: &CancellationToken,
        hooks: &[Webhook],
        payload: &Payload,
    ) {
        let mut body = None;
        // Those that decide the event were asked already, and waited for.
        let wanted = |h: &&Webhook| h.wants(payload.event) && !h.decides(payload.event);
        for h in hooks.iter().filter(wanted) {
            let body = body
                .get_or_insert_with(|| Bytes::from(serde_json::to_vec(payload).unwrap_or_default()))
                .clone();
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let key = (h.url.clone(), h.fingerprint.map(|f| f.to_string()));
            let q = queues.entry(key).or_insert_with(|| {
                let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
                let dropped = Arc::new(AtomicU64::new(0));
                rt.spawn(deliver(h.clone(), rx, dropped.clone(), stop.clone()));
                Queue { tx, dropped }
            });
            if q.tx.try_send(body).is_err() {
                q.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Posts the queued events of one URL in order, each retried with backoff.
async fn deliver(
    hook: Webhook,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    dropped: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut last_log: Option<tokio::time::Instant> = None;
    let mut failed = 0u64;
    loop {
        let body = tokio::select! {
            b = rx.recv() => match b { Some(b) => b, None => return },
            _ = stop.cancelled() => return,
        };
        let mut pause = FIRST_RETRY;
        let mut result = Ok(());
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.cancelled() => return,
                }
                pause *= 2;
            }
            result = post(&hook, body.clone(), TIMEOUT).await.map(|_| ());
            if result.is_ok() {
                break;
            }
        }
        if result.is_err() {
            failed += 1;
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        let due = last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if (failed > 0 || lost > 0) && due {
            let why = result.err().unwrap_or_else(|| "queue full".into());
            tracing::warn!(
                url = %crate::auth::redact_url(&hook.url),
                "webhook: {failed} events not delivered after {TRIES} tries, {lost} dropped (queue full); last: {why}"
            );
            failed = 0;
            last_log = Some(tokio::time::Instant::now());
        }
    }
}

/// One POST; `Ok(true)` for a 2xx reply, `Ok(false)` for another, `Err` when the
/// receiver couldn't be reached or didn't answer within `timeout`.
async fn post(hook: &Webhook, body: Bytes, timeout: Duration) -> Result<bool, String> {
    let go = async {
        let uri = crate::http::client::parse(&hook.url).map_err(|e| format!("{e:#}"))?;
        let mut conn = crate::http::client::HttpConn::open_pinned(&uri, hook.fingerprint)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let resp = conn
            .post(&uri, "application/json", body)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(resp.status().is_success())
    };
    tokio::time::timeout(timeout, go)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// `allow: yes` webhooks that want `payload`'s event: each must reply 2xx within
/// `timeout` for the request to go on. `Err` says which refused and how.
pub async fn ask(hooks: &[Webhook], payload: &Payload, timeout: Duration) -> Result<(), String> {
    let body = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
    for h in hooks.iter().filter(|h| h.decides(payload.event)) {
        let url = crate::auth::redact_url(&h.url);
        match post(h, body.clone(), timeout).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "webhook {url} refused the {:?} event",
                    payload.event
                ))
            }
            Err(e) => return Err(format!("webhook {url} couldn't decide: {e}")),
        }
    }
    Ok(())
}
