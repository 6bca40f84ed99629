//! HLS reader: poll the media playlist (the first variant of a multivariant one), fetch
//! each new segment once from the live edge on, and count its video frames (MPEG-TS:
//! video PES packets; fMP4: `trun` samples of the video track). Skipped media
//! sequence numbers are gaps.

use crate::stats::{Counter, DONE};
use anyhow::{anyhow, bail, Result};
use hyper::Uri;
use m3u8_rs::Playlist;
use mediarouter::http::client::{self as http, HttpConn};
use std::time::Duration;

pub async fn read(url: &str, c: &mut Counter, timeout: Duration) -> Result<()> {
    let mut uri = http::parse(url)?;
    let mut conn = tokio::time::timeout(timeout, HttpConn::open(&uri))
        .await
        .map_err(|_| anyhow!("connect timed out"))??;
    let mut next_seq: Option<u64> = None;
    let mut video_track: Option<u32> = None;
    let mut map_uri: Option<String> = None;
    let mut last_new = tokio::time::Instant::now();
    loop {
        if c.phase() == DONE {
            return Ok(());
        }
        let body = tokio::time::timeout(timeout, conn.get_body(&uri))
            .await
            .map_err(|_| anyhow!("playlist GET timed out"))??;
        let pl =
            m3u8_rs::parse_playlist_res(&body).map_err(|_| anyhow!("playlist does not parse"))?;
        let media = match pl {
            Playlist::MasterPlaylist(m) => {
                let v = m.variants.first().ok_or_else(|| anyhow!("no variants"))?;
                uri = http::resolve(&uri, &v.uri)?;
                continue;
            }
            Playlist::MediaPlaylist(m) => m,
        };
        c.connected();
        // Segments arrive a target duration apart: that long without one is no stall.
        c.set_edge_slack(Duration::from_secs(media.target_duration.max(1)) * 3 / 2);
        let first = media.media_sequence;
        let last = first + media.segments.len() as u64;
        let start = *next_seq.get_or_insert(last.saturating_sub(1).max(first));
        if start < first {
            c.gaps(first - start);
        }
        let mut fetched = false;
        for (i, seg) in media.segments.iter().enumerate() {
            let seq = first + i as u64;
            if seq < start.max(first) {
                continue;
            }
            if let Some(map) = &seg.map {
                if map_uri.as_deref() != Some(map.uri.as_str()) {
                    let init = conn.get_body(&http::resolve(&uri, &map.uri)?).await?;
                    video_track = fmp4_video_track(&init);
                    map_uri = Some(map.uri.clone());
                }
            }
            let seg_uri: Uri = http::resolve(&uri, &seg.uri)?;
            let before = conn.body_bytes;
            let data = conn.get_body(&seg_uri).await?;
            c.bytes((conn.body_bytes - before) as usize);
            let (video, audio) = if data.first() == Some(&0x47) {
                ts_frames(&data)
            } else {
                (fmp4_samples(&data, video_track), 0)
            };
            let media = Duration::try_from_secs_f32(seg.duration).unwrap_or_default();
            c.video_frames(video, media);
            for _ in 0..audio {
                c.audio();
            }
            next_seq = Some(seq + 1);
            fetched = true;
        }
        if fetched {
            last_new = tokio::time::Instant::now();
        } else if last_new.elapsed() > timeout {
            bail!("no new segment for {timeout:?}");
        }
        if media.end_list && !fetched {
            bail!("playlist ended");
        }
        let wait = Duration::from_secs(media.target_duration.max(1)) / 2;
        tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
    }
}

/// Video and audio PES packets in an MPEG-TS segment (one PES per frame for video).
pub fn ts_frames(data: &[u8]) -> (u64, u64) {
    let mut pmt_pid = None;
    let mut video_pids = Vec::new();
    let mut audio_pids = Vec::new();
    let (mut video, mut audio) = (0, 0);
    for p in data.chunks_exact(188) {
        if p[0] != 0x47 {
            continue;
        }
        let start = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut pos = 4;
        if afc & 2 != 0 {
            pos += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || pos >= 188 {
            continue;
        }
        let payload = &p[pos..];
        if pid == 0 && start {
            pmt_pid = pat_pmt_pid(payload);
        } else if Some(pid) == pmt_pid && start {
            (video_pids, audio_pids) = pmt_streams(payload);
        } else if start && video_pids.contains(&pid) {
            video += 1;
        } else if start && audio_pids.contains(&pid) {
            audio += 1;
        }
    }
    (video, audio)
}

fn section(payload: &[u8]) -> Option<&[u8]> {
    let ptr = usize::from(*payload.first()?);
    let s = payload.get(1 + ptr..)?;
    let len = usize::from(u16::from_be_bytes([*s.get(1)? & 0x0f, *s.get(2)?]));
    s.get(..(3 + len).min(s.len()))
}

fn pat_pmt_pid(payload: &[u8]) -> Option<u16> {
    let s = section(payload)?;
    let programs = s.get(8..s.len().saturating_sub(4))?;
    programs
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| u16::from_be_bytes([e[2] & 0x1f, e[3]]))
}

fn pmt_streams(payload: &[u8]) -> (Vec<u16>, Vec<u16>) {
    let (mut v, mut a) = (Vec::new(), Vec::new());
    let Some(s) = section(payload) else {
        return (v, a);
    };
    let end = s.len().saturating_sub(4);
    let Some(info) = s.get(10..12) else {
        return (v, a);
    };
    let mut pos = 12 + usize::from(u16::from_be_bytes([info[0] & 0x0f, info[1]]));
    while pos + 5 <= end {
        let typ = s[pos];
        let pid = u16::from_be_bytes([s[pos + 1] & 0x1f, s[pos + 2]]);
        match typ {
            0x01 | 0x02 | 0x1b | 0x24 => v.push(pid),
            0x03 | 0x04 | 0x0f | 0x11 | 0x81 => a.push(pid),
            _ => {}
        }
        pos += 5 + usize::from(u16::from_be_bytes([s[pos + 3] & 0x0f, s[pos + 4]]));
    }
    (v, a)
}

/// Child boxes of an ISO BMFF byte range: (type, body).
fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let typ = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size {
            1 if data.len() >= 16 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[8..16]);
                (16, u64::from_be_bytes(b) as usize)
            }
            0 => (8, data.len()),
            s => (8, s),
        };
        if size < header || size > data.len() {
            break;
        }
        out.push((typ, &data[header..size]));
        data = &data[size..];
    }
    out
}

fn child<'a>(data: &'a [u8], typ: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .into_iter()
        .find(|(t, _)| t == typ)
        .map(|(_, b)| b)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The track id of the init segment's video track (`hdlr` type `vide`).
pub fn fmp4_video_track(init: &[u8]) -> Option<u32> {
    let moov = child(init, b"moov")?;
    boxes(moov)
        .into_iter()
        .filter(|(t, _)| t == b"trak")
        .find_map(|(_, trak)| {
            let tkhd = child(trak, b"tkhd")?;
            let id = be32(tkhd, if tkhd.first() == Some(&1) { 20 } else { 12 })?;
            let hdlr = child(child(trak, b"mdia")?, b"hdlr")?;
            (hdlr.get(8..12)? == b"vide").then_some(id)
        })
}

/// Samples of the video track (or of every track when it is unknown) in a media segment.
pub fn fmp4_samples(seg: &[u8], video_track: Option<u32>) -> u64 {
    let mut n = 0;
    for (t, moof) in boxes(seg) {
        if &t != b"moof" {
            continue;
        }
        for (t, traf) in boxes(moof) {
            if &t != b"traf" {
                continue;
            }
            let id = child(traf, b"tfhd").and_then(|h| be32(h, 4));
            if video_track.is_some() && id != video_track {
                continue;
            }
            for (t, trun) in boxes(traf) {
                if &t == b"trun" {
                    n += u64::from(be32(trun, 4).unwrap_or(0));
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// 30 frames of H.264 + AAC from ffmpeg in `format` (extra output options first).
    fn media(format_args: &[&str]) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let st = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=sample_rate=48000"])
            .args(["-frames:v", "30", "-t", "1", "-c:v", "libx264", "-g", "10"])
            .args(["-pix_fmt", "yuv420p", "-c:a", "aac"])
            .args(format_args)
            .arg(&out)
            .status();
        match st {
            Ok(s) if s.success() => Some(std::fs::read(out).unwrap()),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("ffmpeg is required in CI")
            }
            _ => None,
        }
    }

    #[test]
    fn counts_mpegts_video_frames() {
        let Some(ts) = media(&["-f", "mpegts"]) else {
            return;
        };
        let (video, audio) = ts_frames(&ts);
        assert_eq!(video, 30);
        assert!(audio > 0);
        assert_eq!(ts_frames(&ts[..188 * 3]).0, 0, "PAT/PMT only");
        assert_eq!(ts_frames(&[0x47; 100]), (0, 0));
    }

    #[test]
    fn counts_fmp4_video_samples() {
        let Some(mp4) = media(&[
            "-f",
            "mp4",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ]) else {
            return;
        };
        let track = fmp4_video_track(&mp4);
        assert!(track.is_some());
        assert_eq!(fmp4_samples(&mp4, track), 30);
        assert_eq!(fmp4_samples(&mp4[..100], track), 0);
    }
}
