//! An RTMP source: plays `rtmp://host/app/stream` with the RTMP client and feeds the
//! messages through the same ingest as an RTMP publisher's (sequence headers define
//! the tracks; frames before them are held).

use super::{Pull, SourceError};
use crate::core::Stream;
use crate::format::amf0::{self, Value};
use crate::rtmp::client::{parse_url, Media, RtmpClient};
use crate::rtmp::ingest::Ingest;

/// `onMetaData` (alone or after `@setDataFrame`): (has video, has audio).
fn metadata(body: &[u8]) -> Option<(bool, bool)> {
    let values = amf0::decode_all(body).ok()?;
    let meta = match values.first().and_then(Value::as_str) {
        Some("@setDataFrame") => values.get(2),
        Some("onMetaData") => values.get(1),
        _ => None,
    }?;
    Some((
        meta.get("videocodecid").is_some(),
        meta.get("audiocodecid").is_some(),
    ))
}

/// Pulls `url` into `publisher`'s path until the server ends the stream, `read_timeout`
/// passes without a message, or `stop` is cancelled (`Ok`).
pub(crate) async fn pull(p: Pull<'_>) -> Result<(), SourceError> {
    let Pull {
        url,
        conf,
        publisher,
        stream_cfg,
        read_timeout,
        limits,
        stop,
    } = p;
    let target = parse_url(url).map_err(|e| SourceError::Url(e.to_string()))?;
    let start = async {
        let mut c = RtmpClient::connect_pinned(&target, conf.source_fingerprint, &limits).await?;
        c.play(&target.stream).await?;
        anyhow::Ok(c)
    };
    let mut client = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(read_timeout, start) => {
            r.map_err(|_| SourceError::NoAnswer(read_timeout))?.map_err(SourceError::Rtmp)?
        }
    };
    let mut ingest = Ingest::default();
    let mut pending = Vec::new();
    let mut started = false;
    loop {
        let more = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = publisher.cancelled().cancelled() => return Ok(()),
            r = tokio::time::timeout(read_timeout, client.next_media(&mut pending)) => {
                r.map_err(|_| SourceError::Timeout(read_timeout))?.map_err(SourceError::Rtmp)?
            }
        };
        for m in pending.drain(..) {
            let (video, ts, body) = match m {
                Media::Data { body } => {
                    if let Some((v, a)) = metadata(&body) {
                        ingest.metadata(v, a);
                    }
                    continue;
                }
                Media::Video { ts, body } => (true, ts, body),
                Media::Audio { ts, body } => (false, ts, body),
            };
            ingest
                .push(video, ts, body)
                .map_err(|e| SourceError::Media(e.to_string()))?;
            if let Some(tracks) = ingest.tracks_if_ready() {
                let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
                tracing::info!(url = %crate::auth::redact_url(url), tracks = %codecs.join(", "), "RTMP source playing");
                let stream = Stream::new(tracks, stream_cfg);
                publisher.start(stream.clone())?;
                ingest
                    .attach(stream)
                    .map_err(|e| SourceError::Media(e.to_string()))?;
                started = true;
            }
        }
        if !more {
            return Err(if started {
                SourceError::Ended
            } else {
                SourceError::Media("the stream ended before its tracks were known".into())
            });
        }
    }
}
