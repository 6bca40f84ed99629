//! Push relays (`push:` per path, `forward:` also accepted; nginx-rtmp's `push`): while
//! a path has a stream, each destination gets it: RTMP publish for `rtmp://`, RTSP
//! ANNOUNCE/RECORD over TCP for `rtsp://`. Every destination has its own reader and
//! reconnect loop, so a failing one touches nothing else.

use crate::core::{PathManager, ReadEnd, StreamItem, StreamReader, Tasks};
use crate::format::amf0::{self, Value};
use crate::format::flv::{mux, TagType, TAG_HEADER_LEN};
use crate::rtmp::client::{parse_url, RtmpClient};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The running relays, by (path, destination).
#[derive(Clone)]
pub struct Relays(Tasks<(String, String), ()>);

/// Watches paths becoming ready and starts their push relays.
pub fn start(manager: PathManager, shutdown: CancellationToken) -> Relays {
    let relays = Relays(Tasks::new(shutdown.clone()));
    let (r, m) = (relays.clone(), manager.clone());
    manager.on_ready(shutdown, move |name| {
        r.start_for(&m, name);
    });
    relays
}

impl Relays {
    /// Starts the relays of `name`'s `push` list that aren't running; returns how many.
    fn start_for(&self, manager: &PathManager, name: &str) -> usize {
        let Some(m) = manager.config().find_path(name) else {
            return 0;
        };
        let mut started = 0;
        for url in &m.conf.push {
            let key = (name.to_string(), url.for_path(name, &m.captures));
            let manager = manager.clone();
            let (n, u) = key.clone();
            started += usize::from(self.0.start(key, (), move |stop| async move {
                relay(&manager, &n, &u, &stop).await;
            }));
        }
        started
    }

    /// After a reload: stops the relays whose destination left their path's `push`
    /// list (or whose path left the config) and starts the new destinations of paths
    /// that have a stream. Relays whose destination stayed are untouched.
    /// Returns (started, stopped).
    pub fn reconcile(&self, manager: &PathManager) -> (usize, usize) {
        let config = manager.config();
        let stopped = self.0.retain(|(name, url), _| {
            config.find_path(name).is_some_and(|m| {
                m.conf
                    .push
                    .iter()
                    .any(|u| &u.for_path(name, &m.captures) == url)
            })
        });
        let started = manager
            .path_names()
            .iter()
            .filter(|n| manager.stream(n).is_ok())
            .map(|n| self.start_for(manager, n))
            .sum();
        (started, stopped)
    }
}

/// For logs: the URL without its password and query (stream keys often ride there).
fn shown(url: &str) -> String {
    crate::auth::redact_url(url)
}

/// Pushes the path's streams to `url` until the path has no stream left.
async fn relay(manager: &PathManager, name: &str, url: &str, stop: &CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Ok(reader) = manager.add_reader(name, crate::core::Peer::Push) else {
            return; // the stream is gone; the next one starts a new relay
        };
        let Some(sub) = reader.stream().subscribe() else {
            return;
        };
        let r = if url.starts_with("rtsp://") {
            push_rtsp(manager, url, sub, stop).await
        } else {
            push(manager, url, sub, stop).await
        };
        match r {
            Ok(()) => return,
            Err(e) => {
                let wait = backoff.mul_f64(0.75 + rand::random::<f64>() * 0.5);
                tracing::warn!(path = %name, to = %shown(url), "push failed: {e:#}; retrying in {:.1}s", wait.as_secs_f64());
                drop(reader);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// `work` bounded by `limit`; `what` names the limit in the error.
async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| anyhow::anyhow!("no progress within {what}"))?
}

/// The next batch for a destination: the first item waited for, then whatever else
/// the ring holds. `Ok(false)` when the relay should end (stop, or the stream ended).
async fn next_batch(
    sub: &mut StreamReader,
    stop: &CancellationToken,
    batch: &mut Vec<StreamItem>,
) -> anyhow::Result<bool> {
    batch.clear();
    let first = tokio::select! {
        _ = stop.cancelled() => return Ok(false),
        item = sub.next() => item,
    };
    let mut item = Some(first);
    while let Some(it) = item.take() {
        match it {
            Ok(i) => batch.push(i),
            // What was read before the end still goes out.
            Err(ReadEnd::Closed) => return Ok(!batch.is_empty()),
            Err(ReadEnd::TooSlow) => anyhow::bail!("the destination can't keep up"),
        }
        item = sub.try_next().transpose();
    }
    Ok(true)
}

/// One connection: publish, then every unit FLV can carry. `Ok` when the stream ends.
async fn push(
    manager: &PathManager,
    url: &str,
    mut sub: StreamReader,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let cfg = manager.config();
    let target = parse_url(url)?;
    let connect = async {
        let mut c = RtmpClient::connect(&target).await?;
        let id = c.publish(&target.stream).await?;
        anyhow::Ok((c, id))
    };
    let (mut client, id) = within(cfg.read_timeout.0, "readTimeout", connect).await?;
    tracing::info!(to = %shown(url), "push started");
    let mut started = false;
    let mut batch = Vec::new();
    while next_batch(&mut sub, stop, &mut batch).await? {
        for item in &batch {
            let StreamItem::Unit(entry) = item else {
                continue;
            };
            if !started {
                started = true;
                let meta = Value::EcmaArray(
                    mux::metadata(&entry.tracks)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), Value::Number(v)))
                        .collect(),
                );
                let body = amf0::encode_all(&[
                    Value::String("@setDataFrame".into()),
                    Value::String("onMetaData".into()),
                    meta,
                ]);
                client.queue_raw_data(id, &body);
                let ts = mux::to_ms(entry.unit.dts, entry.track().clock_rate);
                for (typ, body) in mux::sequence_bodies(&entry.tracks) {
                    client.queue_media(id, typ == TagType::Video, ts, &body);
                }
            }
            if let Some(tag) = entry.form::<mux::FlvTag>() {
                let body = &tag[TAG_HEADER_LEN..tag.len() - 4];
                let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
                client.queue_media(id, tag[0] == TagType::Video as u8, ts, body);
            }
        }
        within(cfg.write_timeout.0, "writeTimeout", client.flush_publish()).await?;
    }
    Ok(())
}

/// One RTSP connection: ANNOUNCE the stream's tracks, SETUP each interleaved on TCP,
/// RECORD, then the stream's own RTP packets (and sender reports) as they are.
async fn push_rtsp(
    manager: &PathManager,
    url: &str,
    mut sub: StreamReader,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    use crate::rtsp::client::Conn;
    use rtsp_types::Method;
    let cfg = manager.config();
    let stream = sub.stream().clone();
    let tracks = stream.tracks();
    let described: Vec<(crate::core::Track, u8)> = tracks
        .iter()
        .cloned()
        .zip(stream.payload_types().iter().copied())
        .collect();
    let connect = async {
        let mut c = Conn::open(url).await?;
        c.request_body(
            Method::Announce,
            url,
            &[("Content-Type", "application/sdp".into())],
            crate::format::sdp::describe(&described).into_bytes(),
        )
        .await?;
        for i in 0..described.len() {
            let transport = format!(
                "RTP/AVP/TCP;unicast;interleaved={}-{};mode=record",
                2 * i,
                2 * i + 1
            );
            c.setup(
                &format!("{}/trackID={i}", url.trim_end_matches('/')),
                transport,
            )
            .await?;
        }
        c.request_body(Method::Record, url, &[], Vec::new()).await?;
        anyhow::Ok(c)
    };
    let mut conn = within(cfg.read_timeout.0, "readTimeout", connect).await?;
    tracing::info!(to = %shown(url), "push started");
    let mut out = Vec::with_capacity(64 * 1024);
    let mut batch = Vec::new();
    while next_batch(&mut sub, stop, &mut batch).await? {
        for item in &batch {
            match item {
                StreamItem::Unit(e) => out.extend_from_slice(e.form::<crate::rtsp::Interleaved>()),
                StreamItem::Rtcp { track, packet } => {
                    let len = packet.len().min(0xffff);
                    out.push(b'$');
                    out.push((2 * track + 1) as u8);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    out.extend_from_slice(&packet[..len]);
                }
            }
        }
        within(cfg.write_timeout.0, "writeTimeout", conn.write_raw(&out)).await?;
        out.clear();
    }
    Ok(())
}
