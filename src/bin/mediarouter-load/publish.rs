//! RTMP publishers for the load tool: an FLV clip sent in real time, looped with
//! continuous timestamps (sequence headers once, at the start).

use crate::rtmp::{parse_url, RtmpClient};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use mediarouter::format::amf0::{self, Value};
use mediarouter::format::flv::parse_tag;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct ClipTag {
    pub typ: u8,
    pub ts: u32,
    pub body: Bytes,
    /// A sequence header (sent once, not on every loop).
    pub header: bool,
    /// A video frame's content key, for latency (`latency::key_flv`).
    pub key: Option<u64>,
}

pub struct Clip {
    pub tags: Vec<ClipTag>,
    /// Metadata as `@setDataFrame` data, if the file has `onMetaData`.
    pub metadata: Option<Vec<u8>>,
    /// Duration of one loop: last timestamp plus one frame interval.
    pub loop_ms: u32,
}

pub fn load_clip(path: &Path) -> Result<Clip> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if data.len() < 13 || &data[..3] != b"FLV" {
        bail!("{} is not an FLV file", path.display());
    }
    let mut pos = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize + 4;
    let mut tags = Vec::new();
    let mut metadata = None;
    while let Some((tag, n)) = parse_tag(data.get(pos..).unwrap_or_default())? {
        let body = Bytes::copy_from_slice(tag.body);
        match tag.typ {
            18 => {
                let mut m = amf0::encode_all(&[Value::String("@setDataFrame".into())]);
                m.extend_from_slice(&body);
                metadata = Some(m);
            }
            8 | 9 => {
                let header = match tag.typ {
                    9 => {
                        let b0 = body.first().copied().unwrap_or(0);
                        if b0 & 0x80 != 0 {
                            b0 & 0x0f == 0
                        } else {
                            body.get(1) == Some(&0)
                        }
                    }
                    _ => body.first().is_some_and(|b| b >> 4 == 10) && body.get(1) == Some(&0),
                };
                let key = (tag.typ == 9)
                    .then(|| crate::latency::key_flv(&body))
                    .flatten();
                tags.push(ClipTag {
                    typ: tag.typ,
                    ts: tag.timestamp_ms,
                    body,
                    header,
                    key,
                });
            }
            _ => {}
        }
        pos += n;
    }
    let last = tags.iter().map(|t| t.ts).max().unwrap_or(0);
    let first_video = tags
        .iter()
        .filter(|t| t.typ == 9 && !t.header)
        .map(|t| t.ts);
    let step = first_video.clone().nth(1).unwrap_or(33) - first_video.clone().next().unwrap_or(0);
    if tags.is_empty() {
        bail!("{} has no audio or video tags", path.display());
    }
    Ok(Clip {
        tags,
        metadata,
        loop_ms: last + step.max(1),
    })
}

/// Publishes the clip to `url` until `stop`; `started` fires once media flows.
pub async fn publish(
    url: String,
    clip: std::sync::Arc<Clip>,
    stop: CancellationToken,
    started: tokio::sync::mpsc::Sender<Result<()>>,
) -> Result<()> {
    let u = parse_url(&url)?;
    let mut c = RtmpClient::connect(&u).await?;
    let id = c.publish(&u.stream).await?;
    if let Some(m) = &clip.metadata {
        c.queue_raw_data(id, m);
    }
    let mut pacer = Pacer::new(stop, started);
    let mut queued = Vec::new();
    for (t, ts) in looped(&clip) {
        if let Some(due) = pacer.due(ts) {
            c.flush_publish().await?;
            pacer.sent(&mut queued);
            if !pacer.sleep(due).await {
                return Ok(());
            }
        }
        c.queue_media(id, t.typ == 9, ts, &t.body);
        queued.extend(t.key);
    }
    Ok(())
}

/// The clip's tags with their timestamps, looped for ever with continuous timestamps;
/// sequence headers only in the first round.
pub fn looped(clip: &Clip) -> impl Iterator<Item = (&ClipTag, u32)> {
    (0u32..).flat_map(move |round| {
        let offset = round.wrapping_mul(clip.loop_ms);
        clip.tags
            .iter()
            .filter(move |t| round == 0 || !t.header)
            .map(move |t| (t, offset.wrapping_add(t.ts)))
    })
}

/// Sends a clip in real time: timestamp `ts` is due `ts` ms after the first call.
pub struct Pacer {
    t0: Instant,
    stop: CancellationToken,
    /// Told once, the first time media has gone out and the publisher waits.
    started: Option<tokio::sync::mpsc::Sender<Result<()>>>,
}

impl Pacer {
    pub fn new(stop: CancellationToken, started: tokio::sync::mpsc::Sender<Result<()>>) -> Pacer {
        Pacer {
            t0: Instant::now(),
            stop,
            started: Some(started),
        }
    }

    /// The frames of `keys` have just been written: their send time, for latency.
    pub fn sent(&self, keys: &mut Vec<u64>) {
        let now = std::time::Instant::now();
        for k in keys.drain(..) {
            crate::latency::CLOCK.sent(k, now);
        }
    }

    /// When `ts` is due, if that is still ahead.
    pub fn due(&self, ts: u32) -> Option<Instant> {
        let due = self.t0 + Duration::from_millis(u64::from(ts));
        (due > Instant::now()).then_some(due)
    }

    /// Sleeps until `due`; false once the run is stopping.
    pub async fn sleep(&mut self, due: Instant) -> bool {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(Ok(())).await;
        }
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep_until(due) => true,
        }
    }
}
