//! RTMP readers for the load tool, on mediarouter's RTMP client.

use crate::stats::{Counter, DONE};
use anyhow::{anyhow, bail, Result};
pub use mediarouter::rtmp::client::{parse_url, Media, RtmpClient, RtmpUrl};
use std::time::Duration;

/// Whether an FLV video body is a coded frame (not a sequence header or end marker).
pub fn is_video_frame(body: &[u8]) -> bool {
    let Some(&b0) = body.first() else {
        return false;
    };
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: CodedFrames or CodedFramesX.
        return matches!(b0 & 0x0f, 1 | 3);
    }
    match b0 & 0x0f {
        7 | 12 => body.get(1) == Some(&1),
        _ => true,
    }
}

/// Whether an FLV video body is a keyframe (frame type 1).
pub fn is_keyframe(body: &[u8]) -> bool {
    body.first().is_some_and(|b| (b >> 4) & 7 == 1)
}

/// Whether an FLV audio body is a frame (not an AAC sequence header).
pub fn is_audio_frame(body: &[u8]) -> bool {
    match body.first() {
        Some(b0) if b0 >> 4 == 10 => body.get(1) == Some(&1),
        Some(_) => true,
        None => false,
    }
}

/// One RTMP reader: connect, play, count until the run is done.
pub async fn read(url: RtmpUrl, c: &mut Counter, timeout: Duration) -> Result<()> {
    let mut client = tokio::time::timeout(timeout, async {
        let mut cl = RtmpClient::connect(&url).await?;
        cl.play(&url.stream).await?;
        anyhow::Ok(cl)
    })
    .await
    .map_err(|_| anyhow!("connect/play timed out"))??;
    c.connected();
    let mut pending = Vec::new();
    let mut last = client.received;
    loop {
        if c.phase() == DONE {
            return Ok(());
        }
        let more = tokio::time::timeout(timeout, client.next_media(&mut pending))
            .await
            .map_err(|_| anyhow!("no media for {timeout:?}"))??;
        c.bytes((client.received - last) as usize);
        last = client.received;
        for m in pending.drain(..) {
            match m {
                Media::Video { ts, body } if is_video_frame(&body) => {
                    c.video(Some(i64::from(ts)), true, is_keyframe(&body));
                    c.arrived(crate::latency::key_flv(&body));
                }
                Media::Audio { body, .. } if is_audio_frame(&body) => c.audio(),
                _ => {}
            }
        }
        if !more {
            bail!("stream ended");
        }
    }
}
