//! The stage without a server, for benchmarks and the GPU check: a recording's video
//! units through decode → scale → encode as fast as they go, timed in wall and CPU time.

use super::pipeline::{prepare, Sink};
use super::transcoder::{OutSpec, Transcoder};
use crate::config::transcode::TranscodeConf;
use crate::core::{Codec, Payload, Track, Unit};
use crate::format::mpegts::demux::{split_annexb, EsKind, TsDemuxer};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The decision line the stage would log.
    pub decision: String,
    /// The encoder at the end (another after a fallback), or what decoding saw.
    pub encoder: String,
    pub frames_in: u64,
    pub frames_out: u64,
    pub wall: Duration,
    /// User + system time of the whole process (encoder threads included).
    pub cpu: Duration,
}

struct Count {
    started: bool,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Sink for Count {
    fn start(&mut self, _: Vec<Track>) -> bool {
        self.started = true;
        true
    }
    fn started(&self) -> bool {
        self.started
    }
    fn write(&mut self, unit: Unit) {
        if unit.track == 0 {
            self.frames
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The first H.264/H.265 stream of an MPEG-TS recording, as a track and its units.
pub fn units_from_ts(data: &[u8]) -> Result<(Track, Vec<Unit>), String> {
    let mut demux = TsDemuxer::default();
    let mut pes = Vec::new();
    demux.push(data, &mut pes).map_err(|e| e.to_string())?;
    demux.flush(&mut pes);
    let first = pes
        .iter()
        .find(|p| matches!(p.kind, EsKind::H264 | EsKind::H265))
        .ok_or("no H.264/H.265 stream")?;
    let (pid, h265) = (first.pid, first.kind == EsKind::H265);
    let mut codec = match h265 {
        true => Codec::H265 {
            vps: None,
            sps: None,
            pps: None,
        },
        false => Codec::H264 {
            sps: None,
            pps: None,
        },
    };
    let mut units = Vec::new();
    for p in pes.into_iter().filter(|p| p.pid == pid) {
        let Some(pts) = p.pts else { continue };
        let nalus = split_annexb(&p.data);
        super::encode::learn_sets(&mut codec, &nalus);
        let keyframe = nalus.iter().any(|n| match (h265, n.first()) {
            (false, Some(b)) => b & 0x1f == 5,
            (true, Some(b)) => (16..=23).contains(&((b >> 1) & 0x3f)),
            _ => false,
        });
        units.push(Unit {
            track: 0,
            pts: pts as i64,
            dts: p.dts.unwrap_or(pts) as i64,
            keyframe,
            payload: Payload::Nalus(nalus),
        });
    }
    Ok((Track::new(codec, 90000), units))
}

/// `units` played `repeat` times back to back, timestamps running on.
fn replay(units: Vec<Unit>, repeat: u32) -> impl Iterator<Item = Unit> {
    let span = match (units.first(), units.last()) {
        (Some(a), Some(b)) => b.pts - a.pts + (b.pts - a.pts) / (units.len() as i64).max(2),
        _ => 0,
    };
    (0..repeat.max(1) as i64).flat_map(move |k| {
        units.clone().into_iter().map(move |u| Unit {
            pts: u.pts + k * span,
            dts: u.dts + k * span,
            ..u
        })
    })
}

/// Runs `units` of `track` (`repeat` times over) through the stage `conf` describes,
/// as fast as it goes.
pub fn run(
    conf: &TranscodeConf,
    track: Track,
    units: Vec<Unit>,
    repeat: u32,
) -> Result<BenchReport, String> {
    let (decoder, choice, decision) = prepare("bench", conf, &track.codec)?;
    let choice = choice.ok_or_else(|| format!("{decision}: no encoder opens"))?;
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink = Count {
        started: false,
        frames: frames.clone(),
    };
    let out = OutSpec {
        name: "bench".into(),
        conf: conf.clone(),
        main: true,
        choice,
        sink: Box::new(sink),
    };
    let mut t = Transcoder::new("bench", conf, &[track], 0, decoder, vec![out]);
    let mut frames_in = 0;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for u in replay(units, repeat) {
        frames_in += 1;
        t.push(u)?;
    }
    t.finish()?;
    let st = t.status();
    let scaling: Vec<String> = st.outputs.iter().map(|o| o.scaling.clone()).collect();
    Ok(BenchReport {
        decision,
        encoder: format!(
            "{}; decode {}; scaling {}",
            t.encoders().join(","),
            st.decode,
            scaling.join(",")
        ),
        frames_in,
        frames_out: frames.load(std::sync::atomic::Ordering::Relaxed),
        wall: wall0.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
    })
}

/// Decoding alone (on NVDEC when `conf` allows and it opens), as fast as it goes: the
/// reference the GPU check compares the whole stage with.
pub fn decode(
    conf: &TranscodeConf,
    track: Track,
    units: Vec<Unit>,
    repeat: u32,
) -> Result<BenchReport, String> {
    let (mut decoder, _, decision) = prepare("bench", conf, &track.codec)?;
    let mut frame = ffmpeg_next::frame::Video::empty();
    let (mut frames_in, mut frames_out, mut on_gpu) = (0, 0, 0);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for u in replay(units, repeat) {
        frames_in += 1;
        decoder.send(&u)?;
        while decoder.receive(&mut frame) {
            frames_out += 1;
            on_gpu += super::hw::on_gpu(&frame) as u64;
        }
    }
    decoder.finish();
    while decoder.receive(&mut frame) {
        frames_out += 1;
        on_gpu += super::hw::on_gpu(&frame) as u64;
    }
    Ok(BenchReport {
        decision,
        encoder: format!("decode only, {on_gpu} of {frames_out} frames in GPU memory"),
        frames_in,
        frames_out,
        wall: wall0.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
    })
}
