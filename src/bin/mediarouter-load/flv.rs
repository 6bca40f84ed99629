//! HTTP-FLV reader: GET the `.flv` URL and count the tags of the endless body.

use crate::rtmp::{is_audio_frame, is_keyframe, is_video_frame};
use crate::stats::{Counter, DONE};
use anyhow::{anyhow, bail, Result};
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use mediarouter::format::flv::parse_tag;
use mediarouter::http::client::{self as http, HttpConn};
use std::time::Duration;

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
/// FLV file header (9 bytes) plus PreviousTagSize0.
const FILE_HEADER: usize = 13;

pub async fn read(url: &str, c: &mut Counter, timeout: Duration) -> Result<()> {
    let uri = http::parse(url)?;
    let resp = tokio::time::timeout(timeout, async {
        let mut conn = HttpConn::open(&uri).await?;
        conn.get(&uri).await
    })
    .await
    .map_err(|_| anyhow!("connect/GET timed out"))??;
    c.connected();
    let mut body = resp.into_body();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut header_done = false;
    loop {
        if c.phase() == DONE {
            return Ok(());
        }
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| anyhow!("no data for {timeout:?}"))?;
        let Some(frame) = frame else {
            bail!("stream ended");
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        c.bytes(data.len());
        buf.extend_from_slice(&data);
        if !header_done {
            if buf.len() < FILE_HEADER {
                continue;
            }
            if &buf[..3] != b"FLV" {
                bail!("not an FLV stream");
            }
            buf.advance(FILE_HEADER);
            header_done = true;
        }
        let mut used = 0;
        while let Some((tag, n)) = parse_tag(&buf[used..])? {
            match tag.typ {
                VIDEO if is_video_frame(tag.body) => {
                    c.video(
                        Some(i64::from(tag.timestamp_ms)),
                        true,
                        is_keyframe(tag.body),
                    );
                    c.arrived(crate::latency::key_flv(tag.body));
                }
                AUDIO if is_audio_frame(tag.body) => c.audio(),
                _ => {}
            }
            used += n;
        }
        buf.advance(used);
    }
}
