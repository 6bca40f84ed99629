//! RTSP publisher for the load tool: the FLV clip's tracks become an SDP (ANNOUNCE),
//! each track is set up interleaved on TCP (SETUP, RECORD), and its frames go out as
//! RTP from mediarouter's packetizers, in real time, looped.

use crate::publish::{looped, Clip, Pacer};
use crate::rtsp::Conn;
use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use mediarouter::codec::{aac, config_record};
use mediarouter::core::{Codec, Payload, Track, Unit};
use mediarouter::format::flv::{self, AudioPacket, VideoCodec, VideoPacket};
use mediarouter::format::rtp::{Packetizer, DEFAULT_MAX_PAYLOAD};
use mediarouter::format::sdp;
use rtsp_types::Method;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct Tracks {
    tracks: Vec<Track>,
    video: Option<(usize, u8)>,
    audio: Option<usize>,
}

/// Tracks from the clip's sequence headers: (index, NAL length size) for video.
fn tracks(clip: &Clip) -> Result<Tracks> {
    let mut t = Tracks {
        tracks: Vec::new(),
        video: None,
        audio: None,
    };
    for tag in clip.tags.iter().filter(|t| t.header) {
        if tag.typ == 9 && t.video.is_none() {
            let Some((codec, VideoPacket::SequenceHeader(rec))) = flv::parse_video(&tag.body)?
            else {
                continue;
            };
            let (c, len) = match codec {
                VideoCodec::Avc => {
                    let s = config_record::parse_avcc(&rec)?;
                    let c = Codec::H264 {
                        sps: s.sps.first().cloned(),
                        pps: s.pps.first().cloned(),
                    };
                    (c, s.length_size)
                }
                VideoCodec::Hevc => {
                    let s = config_record::parse_hvcc(&rec)?;
                    let c = Codec::H265 {
                        vps: s.vps.first().cloned(),
                        sps: s.sps.first().cloned(),
                        pps: s.pps.first().cloned(),
                    };
                    (c, s.length_size)
                }
            };
            t.video = Some((t.tracks.len(), len));
            t.tracks.push(Track::new(c, 90000));
        } else if tag.typ == 8 && t.audio.is_none() {
            if let AudioPacket::AacSequenceHeader(asc) = flv::parse_audio(&tag.body)? {
                let cfg = aac::AudioSpecificConfig::parse(&asc)?;
                t.audio = Some(t.tracks.len());
                t.tracks.push(Track::new(
                    Codec::Aac {
                        config: asc,
                        sample_rate: cfg.sample_rate,
                        channels: cfg.channels,
                    },
                    cfg.sample_rate,
                ));
            }
        }
    }
    if t.tracks.is_empty() {
        bail!("the clip has no H.264/H.265 or AAC sequence header");
    }
    Ok(t)
}

/// The unit for a clip tag at `ts` ms (loop offset included), if it is a frame.
fn unit(t: &Tracks, typ: u8, ts: u32, body: &Bytes) -> Result<Option<Unit>> {
    let ms = i64::from(ts);
    if typ == 9 {
        let Some((track, len)) = t.video else {
            return Ok(None);
        };
        let Some((
            _,
            VideoPacket::Frame {
                keyframe,
                cts,
                data,
            },
        )) = flv::parse_video(body)?
        else {
            return Ok(None);
        };
        let dts = ms * 90;
        return Ok(Some(Unit {
            track,
            pts: dts + i64::from(cts) * 90,
            dts,
            keyframe,
            payload: Payload::Nalus(flv::split_nalus(&data, len)?),
        }));
    }
    let Some(track) = t.audio else {
        return Ok(None);
    };
    let AudioPacket::AacFrame(au) = flv::parse_audio(body)? else {
        return Ok(None);
    };
    let ticks = ms * i64::from(t.tracks[track].clock_rate) / 1000;
    Ok(Some(Unit {
        track,
        pts: ticks,
        dts: ticks,
        keyframe: true,
        payload: Payload::Frame(au),
    }))
}

/// Publishes the clip to `url` over RTSP/TCP until `stop`; `started` fires once media flows.
pub async fn publish(
    url: String,
    clip: Arc<Clip>,
    stop: CancellationToken,
    started: tokio::sync::mpsc::Sender<Result<()>>,
) -> Result<()> {
    let t = tracks(&clip)?;
    let pts: Vec<(Track, u8)> = t
        .tracks
        .iter()
        .enumerate()
        .map(|(i, tr)| (tr.clone(), 96 + i as u8))
        .collect();
    let mut conn = Conn::open(&url).await?;
    conn.request_body(
        Method::Announce,
        &url,
        &[("Content-Type", "application/sdp".into())],
        sdp::describe(&pts).into_bytes(),
    )
    .await?;
    for i in 0..t.tracks.len() {
        let transport = format!(
            "RTP/AVP/TCP;unicast;interleaved={}-{};mode=record",
            2 * i,
            2 * i + 1
        );
        conn.setup(&format!("{url}/trackID={i}"), transport).await?;
    }
    conn.request_body(Method::Record, &url, &[], Vec::new())
        .await?;
    let mut packetizers: Vec<Packetizer> = pts
        .iter()
        .map(|(tr, pt)| Packetizer::new(&tr.codec, *pt, DEFAULT_MAX_PAYLOAD))
        .collect();

    let mut pacer = Pacer::new(stop, started);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut queued = Vec::new();
    for (tag, ts) in looped(&clip) {
        if tag.header {
            continue;
        }
        if let Some(due) = pacer.due(ts) {
            conn.write_raw(&out).await?;
            out.clear();
            pacer.sent(&mut queued);
            if !pacer.sleep(due).await {
                return Ok(());
            }
        }
        let Some(u) = unit(&t, tag.typ, ts, &tag.body)? else {
            continue;
        };
        queued.extend(tag.key);
        let ch = (2 * u.track) as u8;
        for p in packetizers[u.track].packetize(&u) {
            let len = u16::try_from(p.len()).map_err(|_| anyhow!("RTP packet too large"))?;
            out.push(b'$');
            out.push(ch);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&p);
        }
    }
    Ok(())
}
