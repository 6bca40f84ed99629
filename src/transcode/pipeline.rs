//! One stage: the async pump that reads `<path>/source` into a bounded queue, and the
//! thread that picks the decoder and encoders (CUDA decode and NVENC when they open,
//! else libx264/libx265 or pass-through, per `fallback`) and runs the transcoder.

use super::audio::AudioTranscoder;
use super::decode::Decoder;
use super::encode::{self, Choice};
use super::status::{OutputStatus, StageStatus};
use super::transcoder::{OutSpec, Transcoder};
use crate::config::transcode::{AudioCodec, Fallback, HwAccel, TranscodeConf, VideoCodec};
use crate::core::{
    Codec, PathManager, Peer, Publisher, ReadEnd, Stream, StreamConfig, StreamItem, Track, Unit,
};
use ffmpeg_next as ff;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Units queued for the thread; beyond this the stage is behind and drops input.
const QUEUE: usize = 90;

pub(super) async fn run(
    manager: &PathManager,
    name: &str,
    conf: TranscodeConf,
    stop: &CancellationToken,
) {
    let input = format!("{name}/source");
    let Ok(reader) = manager.add_reader(&input, Peer::Transcoder) else {
        return;
    };
    let Some(mut sub) = reader.stream().subscribe() else {
        return;
    };
    let tracks = reader.stream().tracks().to_vec();
    // The path itself, then one path per rendition.
    let mut publishers = Vec::new();
    let names = std::iter::once(name.to_string())
        .chain(conf.renditions.iter().map(|r| format!("{name}/{}", r.name)));
    for n in names {
        match manager.add_publisher_exact(&n, Peer::Transcoder) {
            Ok(p) => publishers.push(p),
            Err(e) => {
                tracing::warn!(path = %n, "transcode can't publish: {e}");
                return;
            }
        }
    }
    let (tx, rx) = sync_channel::<Unit>(QUEUE);
    let rt = tokio::runtime::Handle::current();
    let (path, cfg) = (name.to_string(), manager.stream_config());
    let status = Arc::new(StageStatus::default());
    manager.add_stage_status(name, status.clone());
    let st = status.clone();
    let worker = std::thread::Builder::new()
        .name(format!("transcode {name}"))
        .spawn(move || {
            // Streams made on this thread get their flusher task on the runtime.
            let _rt = rt.enter();
            work(&path, &conf, tracks, rx, publishers, cfg, st);
        });
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(path = %name, "transcode thread: {e}");
            manager.remove_stage_status(name, &status);
            return;
        }
    };
    let mut dropping = false;
    let mut dropped = 0u64;
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => break,
            item = sub.next() => item,
        };
        let entry = match item {
            Ok(StreamItem::Unit(e)) => e,
            Ok(_) => continue,
            Err(ReadEnd::Closed) => break,
            Err(ReadEnd::TooSlow) => {
                tracing::warn!(path = %name, "transcode input: the stage fell behind the stream");
                break;
            }
        };
        let unit = entry.unit.clone();
        let video_key = unit.keyframe && entry.track().codec.has_keyframes();
        if dropping && !video_key {
            dropped += 1;
            status.dropped_units.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match tx.try_send(unit) {
            Ok(()) => {
                if dropping {
                    tracing::warn!(path = %name, "transcode caught up after dropping {dropped} input units");
                    dropping = false;
                }
            }
            Err(TrySendError::Full(_)) => {
                if !dropping {
                    tracing::warn!(path = %name, "transcode can't keep up: dropping input to the next keyframe");
                    dropping = true;
                    dropped = 0;
                }
                dropped += 1;
                status.dropped_units.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    drop(tx);
    drop(reader);
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    manager.remove_stage_status(name, &status);
}

/// Where encoded units go: a path's output stream, or a benchmark's counter.
pub(super) trait Sink: Send {
    /// Starts the output with its tracks; `false` when it can't take them.
    fn start(&mut self, tracks: Vec<Track>) -> bool;
    fn started(&self) -> bool;
    fn write(&mut self, unit: Unit);
}

/// The path's output stream, made once its tracks are known.
struct Output {
    publisher: Publisher,
    cfg: StreamConfig,
    stream: Option<Arc<Stream>>,
}

impl Sink for Output {
    fn start(&mut self, tracks: Vec<Track>) -> bool {
        let stream = Stream::new(tracks, self.cfg);
        if self.publisher.start(stream.clone()).is_err() {
            return false;
        }
        self.stream = Some(stream);
        true
    }

    fn started(&self) -> bool {
        self.stream.is_some()
    }

    fn write(&mut self, unit: Unit) {
        if let Some(s) = &self.stream {
            s.write(unit);
        }
    }
}

fn work(
    path: &str,
    conf: &TranscodeConf,
    tracks: Vec<Track>,
    rx: Receiver<Unit>,
    publishers: Vec<Publisher>,
    cfg: StreamConfig,
    status: Arc<StageStatus>,
) {
    let mut sinks = publishers.into_iter().map(|publisher| Output {
        publisher,
        cfg,
        stream: None,
    });
    let Some(main) = sinks.next() else {
        return;
    };
    let video = tracks
        .iter()
        .position(|t| matches!(t.codec, Codec::H264 { .. } | Codec::H265 { .. }));
    let copy_status = |why: &str| {
        status.set_decision(why);
        status.set_output(
            0,
            OutputStatus {
                path: path.to_string(),
                encoder: "copy".into(),
                ..OutputStatus::default()
            },
        );
    };
    let (Some(video), true) = (video, conf.video.codec != VideoCodec::Copy) else {
        let why = "video codec copy (or no H.264/H.265 video): passing the input through";
        tracing::info!(path = %path, "transcode: {why}");
        copy_status(why);
        return copy(path, conf, main, tracks, rx);
    };
    let (decoder, choice, decision) = match prepare(path, conf, &tracks[video].codec) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(path = %path, "transcode: {e}; passing the input through");
            copy_status(&e);
            return copy(path, conf, main, tracks, rx);
        }
    };
    let Some(choice) = choice else {
        copy_status(&decision);
        match conf.fallback {
            Fallback::Copy => {
                tracing::info!("{decision}; fallback copy: passing the input through")
            }
            Fallback::Software => tracing::warn!("{decision}; passing the input through"),
        }
        return copy(path, conf, main, tracks, rx);
    };
    if conf.hwaccel == HwAccel::Cuda && !choice.hw {
        tracing::warn!("{decision}");
    } else {
        tracing::info!("{decision}");
    }
    let mut outs = vec![OutSpec {
        name: path.to_string(),
        conf: conf.clone(),
        main: true,
        choice,
        sink: Box::new(main),
    }];
    let size = encode::input_size(&tracks[video].codec).unwrap_or((1280, 720));
    for (r, sink) in conf.renditions.iter().zip(sinks) {
        let rc = TranscodeConf {
            video: conf.rendition_video(r),
            ..conf.clone()
        };
        match encode::choose(&rc, encode::out_size(&rc, size.0, size.1)) {
            (Some(choice), _) => outs.push(OutSpec {
                name: format!("{path}/{}", r.name),
                conf: rc,
                main: false,
                choice,
                sink: Box::new(sink),
            }),
            (None, note) => {
                tracing::warn!(path = %path, "transcode rendition {}: {note}; not served", r.name)
            }
        }
    }
    status.set_decision(&decision);
    let mut t = Transcoder::new(path, conf, &tracks, video, decoder, outs).with_status(status);
    while let Ok(unit) = rx.recv() {
        if let Err(e) = t.push(unit) {
            tracing::error!(path = %path, "transcode failed: {e}; the output ends");
            return;
        }
    }
}

/// Opens the decoder and picks the encoder for a video track, with the decision line.
pub(super) fn prepare(
    path: &str,
    conf: &TranscodeConf,
    codec: &Codec,
) -> Result<(Decoder, Option<Choice>, String), String> {
    ff::init().map_err(|e| format!("FFmpeg didn't initialise ({e})"))?;
    // FFmpeg's own log goes to stderr beside ours: errors only (why CUDA didn't load).
    ff::util::log::set_level(ff::util::log::Level::Error);
    let (w, h) = encode::input_size(codec).unwrap_or((1280, 720));
    let (decoder, decode_note) = Decoder::open(codec, conf.hwaccel != HwAccel::None)
        .map_err(|e| format!("no decoder ({e})"))?;
    let (choice, encode_note) = encode::choose(conf, encode::out_size(conf, w, h));
    Ok((
        decoder,
        choice,
        format!("transcode {path}: {decode_note}, {encode_note}"),
    ))
}

/// Video passed through (`codec: copy`, or fallback `copy`): the input's units under
/// the input's tracks, audio re-encoded when `audio: {codec: aac}` asks.
fn copy(
    path: &str,
    conf: &TranscodeConf,
    mut out: Output,
    mut tracks: Vec<Track>,
    rx: Receiver<Unit>,
) {
    let mut audio: Vec<Option<AudioTranscoder>> = tracks.iter().map(|_| None).collect();
    if conf.audio.codec != AudioCodec::Copy {
        if let Err(e) = ff::init() {
            tracing::warn!(path = %path, "transcode: audio passes through: {e}");
        } else {
            for (i, t) in tracks.iter_mut().enumerate() {
                if t.codec.is_video() || t.codec.has_keyframes() {
                    continue;
                }
                match AudioTranscoder::new(t, conf.audio.codec, conf.audio.bitrate.0) {
                    Ok(a) => {
                        *t = a.track.clone();
                        audio[i] = Some(a);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path, "transcode: audio track {i} passes through: {e}")
                    }
                }
            }
        }
    }
    if !out.start(tracks) {
        return;
    }
    while let Ok(unit) = rx.recv() {
        let track = unit.track;
        match audio.get_mut(track).and_then(Option::as_mut) {
            None => out.write(unit),
            Some(a) => match a.push(&unit) {
                Ok(units) => units
                    .into_iter()
                    .for_each(|u| out.write(Unit { track, ..u })),
                Err(e) => {
                    tracing::error!(path = %path, "transcode failed: {e}; the output ends");
                    return;
                }
            },
        }
    }
}
