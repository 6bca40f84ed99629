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
        let body = match tokio::time::timeout(timeout, conn.get_body(&uri)).await {
            Ok(Ok(b)) => b,
            // A stream that was just published has no playlist until its first segment
            // is cut (nginx-rtmp answers 404 until then): retry as players do.
            Ok(Err(_)) if next_seq.is_none() && last_new.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => bail!("playlist GET timed out"),
        };
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
            let m = if data.first() == Some(&0x47) {
                ts_media(&data)
            } else {
                fmp4_media(&data, video_track)
            };
            let media = Duration::try_from_secs_f32(seg.duration).unwrap_or_default();
            c.video_frames(m.video, media);
            for _ in 0..m.audio {
                c.audio();
            }
            // Every frame of a segment arrives when the segment has.
            for key in m.keys {
                c.arrived(Some(key));
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

/// What a segment holds: video frames, their latency keys, and audio frames (MPEG-TS:
/// PES packets; fMP4: not counted).
#[derive(Debug, Default)]
pub struct Media {
    pub video: u64,
    pub audio: u64,
    pub keys: Vec<u64>,
}

/// The frames of an MPEG-TS segment (one PES per frame for video).
pub fn ts_media(data: &[u8]) -> Media {
    let mut pmt_pid = None;
    let mut video_pids = Vec::new();
    let mut audio_pids = Vec::new();
    let mut m = Media::default();
    // The video PES being put together, and its PID.
    let mut pes: Option<(u16, Vec<u8>)> = None;
    let finish = |pes: Option<(u16, Vec<u8>)>, m: &mut Media| {
        if let Some(key) =
            pes.and_then(|(_, p)| pes_payload(&p).and_then(crate::latency::key_annex_b))
        {
            m.keys.push(key);
        }
    };
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
        } else if video_pids.contains(&pid) {
            if start {
                m.video += 1;
                finish(pes.take(), &mut m);
                pes = Some((pid, payload.to_vec()));
            } else if let Some((_, p)) = pes.as_mut().filter(|(p, _)| *p == pid) {
                p.extend_from_slice(payload);
            }
        } else if start && audio_pids.contains(&pid) {
            m.audio += 1;
        }
    }
    finish(pes, &mut m);
    m
}

/// A PES packet's payload, after its header.
fn pes_payload(pes: &[u8]) -> Option<&[u8]> {
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    pes.get(9 + usize::from(*pes.get(8)?)..)
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

/// Samples of the video track (or of every track when it is unknown) in a media
/// segment, with the latency keys of those the segment's `mdat` holds.
pub fn fmp4_media(seg: &[u8], video_track: Option<u32>) -> Media {
    let mut m = Media::default();
    for (t, moof) in boxes(seg) {
        if &t != b"moof" {
            continue;
        }
        // Where the moof box starts: sample offsets count from it (default-base-is-moof).
        let moof_start = (moof.as_ptr() as usize - seg.as_ptr() as usize).saturating_sub(8);
        for (t, traf) in boxes(moof) {
            if &t != b"traf" {
                continue;
            }
            let tfhd = child(traf, b"tfhd");
            let id = tfhd.and_then(|h| be32(h, 4));
            if video_track.is_some() && id != video_track {
                continue;
            }
            let default_size = tfhd.and_then(tfhd_default_size);
            for (t, trun) in boxes(traf) {
                if &t == b"trun" {
                    m.video += u64::from(be32(trun, 4).unwrap_or(0));
                    for (at, size) in trun_samples(trun, default_size).unwrap_or_default() {
                        let start = moof_start as i64 + at;
                        let sample = usize::try_from(start)
                            .ok()
                            .and_then(|s| seg.get(s..s.checked_add(size)?));
                        m.keys
                            .extend(sample.and_then(crate::latency::key_length_prefixed));
                    }
                }
            }
        }
    }
    m
}

/// `tfhd`'s default sample size, when it has one.
fn tfhd_default_size(tfhd: &[u8]) -> Option<u32> {
    let flags = be32(tfhd, 0)? & 0xff_ffff;
    let mut at = 8;
    for (bit, len) in [(0x1, 8), (0x2, 4), (0x8, 4)] {
        if flags & bit != 0 {
            at += len;
        }
    }
    (flags & 0x10 != 0).then(|| be32(tfhd, at)).flatten()
}

/// Each sample of a `trun`: (offset from the moof's start, size).
fn trun_samples(trun: &[u8], default_size: Option<u32>) -> Option<Vec<(i64, usize)>> {
    let flags = be32(trun, 0)? & 0xff_ffff;
    let count = be32(trun, 4)?;
    let mut at = 8;
    let mut offset = 0i64;
    if flags & 0x1 != 0 {
        offset = i64::from(be32(trun, at)? as i32);
        at += 4;
    }
    if flags & 0x4 != 0 {
        at += 4;
    }
    let mut out = Vec::new();
    for _ in 0..count.min(100_000) {
        let mut size = default_size;
        for bit in [0x100, 0x200, 0x400, 0x800] {
            if flags & bit != 0 {
                if bit == 0x200 {
                    size = Some(be32(trun, at)?);
                }
                at += 4;
            }
        }
        let size = size? as usize;
        out.push((offset, size));
        offset += size as i64;
    }
    Some(out)
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
        let m = ts_media(&ts);
        assert_eq!(m.video, 30);
        assert!(m.audio > 0);
        assert_keys_are_frames(&m.keys);
        assert_eq!(ts_media(&ts[..188 * 3]).video, 0, "PAT/PMT only");
        let junk = ts_media(&[0x47; 100]);
        assert_eq!((junk.video, junk.audio, junk.keys.len()), (0, 0, 0));
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
        let m = fmp4_media(&mp4, track);
        assert_eq!(m.video, 30);
        assert_keys_are_frames(&m.keys);
        assert_eq!(fmp4_media(&mp4[..100], track).video, 0);
    }

    /// One key per frame, all different (testsrc2 changes every frame), the same ones
    /// the FLV form of the clip gives.
    fn assert_keys_are_frames(keys: &[u64]) {
        assert_eq!(keys.len(), 30);
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 30);
        let Some(flv) = media(&["-f", "flv"]) else {
            return;
        };
        let flv_keys: std::collections::HashSet<u64> = flv_video_bodies(&flv)
            .into_iter()
            .filter_map(|b| crate::latency::key_flv(&b))
            .collect();
        assert!(
            keys.iter().all(|k| flv_keys.contains(k)),
            "a frame's key differs between FLV and this container"
        );
    }

    /// The bodies of an FLV file's video tags.
    fn flv_video_bodies(flv: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 13;
        while at + 11 <= flv.len() {
            let size = usize::from(flv[at + 1]) << 16
                | usize::from(flv[at + 2]) << 8
                | usize::from(flv[at + 3]);
            let Some(body) = flv.get(at + 11..at + 11 + size) else {
                break;
            };
            if flv[at] == 9 {
                out.push(body.to_vec());
            }
            at += 11 + size + 4;
        }
        out
    }
}
