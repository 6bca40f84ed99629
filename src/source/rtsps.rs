//! An `rtsps://` source: retina has no TLS, so this one is ours: the RTSP client
//! control connection (`rtsp::client::Conn`) over TLS (pinned by `sourceFingerprint`
//! or checked against the system's roots), Basic/Digest answered, every media set up
//! interleaved on the connection (RTSPS carries no UDP), and the RTP through the same
//! ingest as an RTSP publisher's.

use super::{Pull, SourceError};
use crate::core::Stream;
use crate::format::sdp;
use crate::rtsp::client::{header, Conn, Item};
use crate::rtsp::ingest::Ingest;
use rtsp_types::Method;
use std::time::Duration;

/// RTSPS's registered port.
const DEFAULT_PORT: u16 = 322;
/// Keep-alives go out this often when the server names no session timeout.
const KEEPALIVE: Duration = Duration::from_secs(30);

fn rtsp_err(e: anyhow::Error) -> SourceError {
    SourceError::Rtsps(format!("{e:#}"))
}

/// `control` (absolute, or relative to `base`) as a URL to SETUP.
fn track_url(base: &str, control: Option<&str>) -> String {
    match control {
        None | Some("*") => base.to_string(),
        Some(c) if c.contains("://") => c.to_string(),
        Some(c) => {
            let base = if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            };
            format!("{base}{}", c.trim_start_matches('/'))
        }
    }
}

/// The session timeout a SETUP reply's `Session: id;timeout=N` names.
fn session_timeout(session: &str) -> Option<Duration> {
    session
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("timeout="))
        .find_map(|t| t.trim().parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
}

struct Playing {
    conn: Conn,
    medias: Vec<sdp::AnnouncedMedia>,
    index: Vec<Option<usize>>,
    /// The interleaved RTP channel of each set-up media (2 × its order).
    channels: Vec<(u8, usize)>,
    base: String,
    keepalive: Duration,
}

async fn start(url: &url::Url, p: &Pull<'_>) -> Result<Playing, SourceError> {
    let (shown, creds) = super::rtsp::split_credentials(url.as_str())?;
    let host = shown.host_str().ok_or_else(|| {
        SourceError::Url(format!("no host in {}", crate::auth::redact_url(p.url)))
    })?;
    let port = shown.port().unwrap_or(DEFAULT_PORT);
    let sock = crate::tls::connect(host, port, true, p.conf.source_fingerprint)
        .await
        .map_err(|e| SourceError::Rtsps(format!("connect {host}:{port}: {e}")))?;
    let mut conn = Conn::from_stream(sock);
    conn.credentials = creds.map(|c| (c.username, c.password));
    // Requests name the URL as rtsps://, without credentials.
    let url = shown.as_str().to_string();
    let r = conn
        .request(
            Method::Describe,
            &url,
            &[("Accept", "application/sdp".into())],
        )
        .await
        .map_err(rtsp_err)?;
    let base = header(&r, "Content-Base")
        .or_else(|| header(&r, "Content-Location"))
        .unwrap_or_else(|| url.clone());
    let medias = sdp::parse_announce(r.body(), p.limits.sdp_medias)
        .map_err(|e| SourceError::Sdp(e.to_string()))?;
    let mut index = Vec::with_capacity(medias.len());
    let mut channels = Vec::new();
    let mut keepalive = KEEPALIVE;
    for (i, m) in medias.iter().enumerate() {
        let n = channels.len() as u8;
        let transport = format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * n, 2 * n + 1);
        let setup_url = track_url(&base, m.control.as_deref());
        let r = conn.setup(&setup_url, transport).await.map_err(rtsp_err)?;
        if let Some(t) = header(&r, "Session").as_deref().and_then(session_timeout) {
            keepalive = keepalive.min(t / 2);
        }
        channels.push((2 * n, i));
        index.push(Some(n as usize));
    }
    if channels.is_empty() {
        return Err(SourceError::Sdp("no media to set up".into()));
    }
    conn.request(Method::Play, &base, &[("Range", "npt=0.000-".into())])
        .await
        .map_err(rtsp_err)?;
    Ok(Playing {
        conn,
        medias,
        index,
        channels,
        base,
        keepalive: keepalive.max(Duration::from_secs(1)),
    })
}

impl Playing {
    /// Ends the session as a client should (TEARDOWN, then TLS close_notify), so the
    /// server logs a teardown, not a broken connection. Best effort.
    async fn teardown(&mut self) -> Result<(), SourceError> {
        use tokio::io::AsyncWriteExt;
        let bye = async {
            let _ = self.conn.send(Method::Teardown, &self.base, &[]).await;
            let _ = self.conn.sock.shutdown().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
        Ok(())
    }
}

/// Pulls `rtsps://…` into `publisher`'s path until the server stops, `read_timeout`
/// passes without a packet, or `stop` is cancelled (`Ok`).
pub(crate) async fn pull(p: Pull<'_>) -> Result<(), SourceError> {
    let (publisher, read_timeout, stop) = (p.publisher, p.read_timeout, p.stop);
    let url = url::Url::parse(p.url).map_err(|e| SourceError::Url(e.to_string()))?;
    let shown = crate::auth::redact_url(p.url);
    let mut s = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(read_timeout, start(&url, &p)) => {
            r.map_err(|_| SourceError::NoAnswer(read_timeout))??
        }
    };
    let tracks: Vec<_> = s
        .medias
        .iter()
        .zip(&s.index)
        .filter(|(_, i)| i.is_some())
        .map(|(m, _)| m.track.clone())
        .collect();
    let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
    tracing::info!(url = %shown, tracks = %codecs.join(", "), "RTSPS source playing");
    let stream = Stream::new(tracks, p.stream_cfg);
    publisher.start(stream.clone())?;
    let mut ingest = Ingest::new(stream, &s.medias, &s.index);
    let mut keepalive = tokio::time::interval(s.keepalive);
    keepalive.tick().await;
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return s.teardown().await,
            _ = publisher.cancelled().cancelled() => return s.teardown().await,
            _ = keepalive.tick() => {
                // The reply is read (and dropped) with the media.
                s.conn
                    .send(Method::GetParameter, &s.base, &[])
                    .await
                    .map_err(rtsp_err)?;
                continue;
            }
            item = tokio::time::timeout(read_timeout, s.conn.next_item()) => item,
        };
        match item {
            Err(_) => return Err(SourceError::Timeout(read_timeout)),
            Ok(Err(e)) => return Err(rtsp_err(e)),
            Ok(Ok(None)) => return Err(SourceError::Ended),
            Ok(Ok(Some(Item::Interleaved(channel, data)))) => {
                let Some((_, media)) = s.channels.iter().find(|(c, _)| *c == channel) else {
                    continue; // RTCP, or a channel we didn't ask for
                };
                if let Err(e) = ingest.push_rtp(*media, data) {
                    tracing::debug!(url = %shown, "RTSPS source: bad RTP packet dropped: {e}");
                }
            }
            Ok(Ok(Some(Item::Response(_)))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_urls_and_session_timeouts() {
        let base = "rtsps://cam:322/live/";
        assert_eq!(
            track_url(base, Some("trackID=1")),
            "rtsps://cam:322/live/trackID=1"
        );
        assert_eq!(
            track_url("rtsps://cam/live", Some("track1")),
            "rtsps://cam/live/track1"
        );
        assert_eq!(track_url(base, Some("rtsps://other/x")), "rtsps://other/x");
        assert_eq!(track_url(base, Some("*")), base);
        assert_eq!(track_url(base, None), base);
        assert_eq!(
            session_timeout("abc;timeout=60"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(session_timeout("abc"), None);
        assert_eq!(session_timeout("abc;timeout=0"), None);
    }
}
