//! An RTSP source: `retina` speaks RTSP to the camera (DESCRIBE, SETUP over TCP or
//! UDP, PLAY, Basic/Digest auth, keep-alives); the raw RTP it receives goes through
//! the same ingest as an RTSP publisher's, into the path's stream.

use super::{Pull, SourceError};
use crate::config::SourceTransport;
use crate::core::Stream;
use crate::format::sdp;
use crate::rtsp::ingest::Ingest;
use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialTimestampPolicy, PacketItem, PlayOptions, Session, SessionOptions,
    SetupOptions, Transport,
};

/// The URL without credentials, and the credentials it carried.
pub(super) fn split_credentials(url: &str) -> Result<(url::Url, Option<Credentials>), SourceError> {
    let mut u = url::Url::parse(url).map_err(|e| SourceError::Url(e.to_string()))?;
    let creds = (!u.username().is_empty()).then(|| Credentials {
        username: decode(u.username()),
        password: decode(u.password().unwrap_or("")),
    });
    // Cleared for logs and for retina, which takes credentials separately.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u, creds))
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

type Connected = (
    Session<retina::client::Described>,
    Vec<sdp::AnnouncedMedia>,
    Vec<Option<usize>>,
);

async fn connect(
    url: &url::Url,
    creds: &Option<Credentials>,
    mode: SourceTransport,
    max_medias: usize,
) -> Result<Connected, SourceError> {
    let opts = SessionOptions::default()
        .creds(creds.clone())
        .user_agent(format!("mediarouter/{}", env!("CARGO_PKG_VERSION")));
    let mut session = Session::describe(url.clone(), opts).await?;
    let medias = sdp::parse_announce(session.sdp(), max_medias)
        .map_err(|e| SourceError::Sdp(e.to_string()))?;
    let mut udp = mode != SourceTransport::Tcp;
    let mut index = Vec::with_capacity(medias.len());
    let mut n = 0;
    for i in 0..medias.len() {
        // One track per media retina knows of; others are skipped.
        if i >= session.streams().len() {
            index.push(None);
            continue;
        }
        let setup = |udp: bool| {
            SetupOptions::default().transport(if udp {
                Transport::Udp(Default::default())
            } else {
                Transport::Tcp(Default::default())
            })
        };
        match session.setup(i, setup(udp)).await {
            Ok(()) => {}
            // `automatic`: a camera that refuses UDP gets asked for TCP.
            Err(e) if udp && mode == SourceTransport::Automatic && n == 0 => {
                tracing::debug!(%url, "RTSP source: UDP refused ({e}), trying TCP");
                udp = false;
                session.setup(i, setup(false)).await?;
            }
            Err(e) => return Err(e.into()),
        }
        index.push(Some(n));
        n += 1;
    }
    if n == 0 {
        return Err(SourceError::Sdp("no media to set up".into()));
    }
    Ok((session, medias, index))
}

/// Pulls `url` into `publisher`'s path until the camera stops, `read_timeout` passes
/// without a packet, or `stop` is cancelled (`Ok`).
pub(crate) async fn pull(p: Pull<'_>) -> Result<(), SourceError> {
    let (publisher, read_timeout, stop) = (p.publisher, p.read_timeout, p.stop);
    let transport = p.conf.rtsp_transport;
    let (url, creds) = split_credentials(p.url)?;
    // A server that accepts and never answers must not hold the source forever.
    let start = async {
        let (session, medias, index) =
            connect(&url, &creds, transport, p.limits.sdp_medias).await?;
        let playing = session
            .play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive))
            .await?;
        Ok::<_, SourceError>((playing, medias, index))
    };
    let (playing, medias, index) = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(read_timeout, start) => {
            r.map_err(|_| SourceError::NoAnswer(read_timeout))??
        }
    };
    let tracks: Vec<_> = medias
        .iter()
        .zip(&index)
        .filter(|(_, i)| i.is_some())
        .map(|(m, _)| m.track.clone())
        .collect();
    let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
    tracing::info!(%url, tracks = %codecs.join(", "), "RTSP source playing");
    let stream = Stream::new(tracks, p.stream_cfg);
    publisher.start(stream.clone())?;
    let mut ingest = Ingest::new(stream, &medias, &index);
    tokio::pin!(playing);
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = publisher.cancelled().cancelled() => return Ok(()),
            item = tokio::time::timeout(read_timeout, playing.next()) => item,
        };
        match item {
            Err(_) => return Err(SourceError::Timeout(read_timeout)),
            Ok(None) => return Err(SourceError::Ended),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(PacketItem::Rtp(p)))) => {
                let raw = bytes::Bytes::copy_from_slice(p.raw());
                if let Err(e) = ingest.push_rtp(p.stream_id(), raw) {
                    tracing::debug!(%url, "RTSP source: bad RTP packet dropped: {e}");
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (u, c) = split_credentials("rtsp://ad%40min:p%3Ass@10.0.0.1:554/live").unwrap();
        assert_eq!(u.as_str(), "rtsp://10.0.0.1:554/live");
        let c = c.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ad@min", "p:ss")
        );
        let (_, none) = split_credentials("rtsp://cam/live").unwrap();
        assert!(none.is_none());
        assert!(split_credentials("not a url").is_err());
    }
}
