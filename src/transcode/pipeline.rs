//! One stage: the async pump that reads `<path>/source` into a bounded queue, and the
//! thread that decodes, scales and encodes video (CUDA decode and NVENC when they open,
//! else libx264/libx265 or pass-through, per `fallback`) and writes `<path>`.

use super::audio::AudioTranscoder;
use super::encode::{self, Choice};
use crate::config::transcode::{AudioCodec, Fallback, HwAccel, TranscodeConf, VideoCodec};
use crate::core::{
    Codec, PathManager, Payload, Peer, Publisher, ReadEnd, Stream, StreamConfig, StreamItem, Track,
    Unit,
};
use bytes::Bytes;
use ffmpeg_next as ff;
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
    let worker = std::thread::Builder::new()
        .name(format!("transcode {name}"))
        .spawn(move || {
            // Streams made on this thread get their flusher task on the runtime.
            let _rt = rt.enter();
            work(&path, &conf, tracks, rx, publishers, cfg);
        });
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(path = %name, "transcode thread: {e}");
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
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    drop(tx);
    drop(reader);
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
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
    let (Some(video), true) = (video, conf.video.codec != VideoCodec::Copy) else {
        tracing::info!(path = %path, "transcode: video codec copy (or no H.264/H.265 video): passing the input through");
        return copy(path, conf, main, tracks, rx);
    };
    let (decoder, choice, decision) = match prepare(path, conf, &tracks[video].codec) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(path = %path, "transcode: {e}; passing the input through");
            return copy(path, conf, main, tracks, rx);
        }
    };
    let Some(choice) = choice else {
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
    let mut outs: Vec<(Choice, Box<dyn Sink>)> = vec![(choice, Box::new(main))];
    let size = encode::input_size(&tracks[video].codec).unwrap_or((1280, 720));
    for (r, sink) in conf.renditions.iter().zip(sinks) {
        let rc = TranscodeConf {
            video: conf.rendition_video(r),
            ..conf.clone()
        };
        match encode::choose(&rc, encode::out_size(&rc, size.0, size.1)) {
            (Some(c), _) => outs.push((c, Box::new(sink))),
            (None, note) => {
                tracing::warn!(path = %path, "transcode rendition {}: {note}; not served", r.name)
            }
        }
    }
    let mut t = Transcoder::new(path, conf, &tracks, video, decoder, outs);
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
) -> Result<(ff::decoder::Video, Option<Choice>, String), String> {
    ff::init().map_err(|e| format!("FFmpeg didn't initialise ({e})"))?;
    // FFmpeg's own log goes to stderr beside ours: errors only (why CUDA didn't load).
    ff::util::log::set_level(ff::util::log::Level::Error);
    let (w, h) = encode::input_size(codec).unwrap_or((1280, 720));
    let (decoder, decode_note) = encode::open_decoder(codec, conf.hwaccel != HwAccel::None)
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
    if conf.audio.codec == AudioCodec::Aac {
        if let Err(e) = ff::init() {
            tracing::warn!(path = %path, "transcode: audio passes through: {e}");
        } else {
            for (i, t) in tracks.iter_mut().enumerate() {
                if t.codec.is_video() || t.codec.has_keyframes() {
                    continue;
                }
                match AudioTranscoder::new(t, conf.audio.bitrate.0) {
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

/// One output of the stage: its encoder (opened on the first frame), tracks and sink.
struct Out {
    choice: Choice,
    encoder: Option<encode::Encoder>,
    tracks: Vec<Track>,
    /// A keyframe is forced at or after this pts (90 kHz).
    next_key: i64,
    sink: Box<dyn Sink>,
}

/// Decodes the video track once and scales and encodes it for each output; other
/// tracks pass through to every output.
pub(super) struct Transcoder {
    path: String,
    video: usize,
    in_codec: Codec,
    /// Input track index → output track index (video is 0).
    map: Vec<Option<usize>>,
    /// Input track index → its audio re-encoder (`audio: {codec: aac}`).
    audio: Vec<Option<AudioTranscoder>>,
    decoder: ff::decoder::Video,
    outs: Vec<Out>,
    gop: i64,
    /// Frames closer than this to the last one are dropped (`fps`).
    min_interval: i64,
    last_kept: Option<i64>,
    /// No input before the first keyframe is decoded.
    started: bool,
    frame: ff::frame::Video,
    packet: ff::Packet,
}

impl Transcoder {
    pub(super) fn new(
        path: &str,
        conf: &TranscodeConf,
        tracks: &[Track],
        video: usize,
        decoder: ff::decoder::Video,
        outs: Vec<(Choice, Box<dyn Sink>)>,
    ) -> Transcoder {
        let out_codec = match conf.video.codec {
            VideoCodec::H265 => Codec::H265 {
                vps: None,
                sps: None,
                pps: None,
            },
            _ => Codec::H264 {
                sps: None,
                pps: None,
            },
        };
        let mut out_tracks = vec![Track::new(out_codec, 90000)];
        let mut map = vec![None; tracks.len()];
        let mut audio: Vec<Option<AudioTranscoder>> = tracks.iter().map(|_| None).collect();
        map[video] = Some(0);
        for (i, t) in tracks.iter().enumerate() {
            if i == video || t.codec.is_video() {
                continue;
            }
            map[i] = Some(out_tracks.len());
            if conf.audio.codec == AudioCodec::Aac {
                match AudioTranscoder::new(t, conf.audio.bitrate.0) {
                    Ok(a) => {
                        out_tracks.push(a.track.clone());
                        audio[i] = Some(a);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path, "transcode: audio track {i} passes through: {e}")
                    }
                }
            }
            out_tracks.push(t.clone());
        }
        let outs = outs
            .into_iter()
            .map(|(choice, sink)| Out {
                choice,
                encoder: None,
                tracks: out_tracks.clone(),
                next_key: i64::MIN,
                sink,
            })
            .collect();
        Transcoder {
            path: path.to_string(),
            video,
            in_codec: tracks[video].codec.clone(),
            map,
            audio,
            decoder,
            outs,
            gop: (conf.video.gop.0.as_secs_f64() * 90000.0) as i64,
            min_interval: conf.video.fps.map_or(0, |f| 90000 * 9 / (10 * f as i64)),
            last_kept: None,
            started: false,
            frame: ff::frame::Video::empty(),
            packet: ff::Packet::empty(),
        }
    }

    pub(super) fn push(&mut self, unit: Unit) -> Result<(), String> {
        let Some(Some(to)) = self.map.get(unit.track).copied() else {
            return Ok(());
        };
        if unit.track != self.video {
            let units = match self.audio.get_mut(unit.track).and_then(Option::as_mut) {
                Some(a) => a.push(&unit)?,
                None => vec![unit],
            };
            // Audio waits for each output's stream; before it, it has nowhere to go.
            for u in units {
                for o in self.outs.iter_mut().filter(|o| o.sink.started()) {
                    o.sink.write(Unit {
                        track: to,
                        ..u.clone()
                    });
                }
            }
            return Ok(());
        }
        if !self.started && !unit.keyframe {
            return Ok(());
        }
        self.started = true;
        let data = encode::annexb(&self.in_codec, &unit);
        let mut pkt = ff::Packet::copy(&data);
        pkt.set_pts(Some(unit.pts));
        pkt.set_dts(Some(unit.dts));
        if unit.keyframe {
            pkt.set_flags(ff::packet::Flags::KEY);
        }
        self.decoder
            .send_packet(&pkt)
            .map_err(|e| format!("decoding: {e}"))?;
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            let pts = self
                .frame
                .timestamp()
                .or(self.frame.pts())
                .unwrap_or(unit.pts);
            if self.last_kept.is_some_and(|l| pts - l < self.min_interval) {
                continue;
            }
            self.last_kept = Some(pts);
            for o in &mut self.outs {
                encode_frame(&self.path, o, &self.frame, pts, self.gop, &mut self.packet)?;
            }
        }
        Ok(())
    }

    /// Drains the decoder and the encoders (end of input).
    pub(super) fn finish(&mut self) -> Result<(), String> {
        let _ = self.decoder.send_eof();
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            let pts = self.frame.timestamp().or(self.frame.pts()).unwrap_or(0);
            for o in &mut self.outs {
                encode_frame(&self.path, o, &self.frame, pts, i64::MAX, &mut self.packet)?;
            }
        }
        for o in &mut self.outs {
            if let Some(enc) = o.encoder.as_mut() {
                enc.flush();
                while enc.receive(&mut self.packet) {
                    emit(&self.packet, &mut o.tracks, o.sink.as_mut())?;
                }
            }
        }
        Ok(())
    }
}

/// One decoded frame into one output: its encoder opens on the first frame, and a
/// keyframe is forced every `gop`.
fn encode_frame(
    path: &str,
    o: &mut Out,
    frame: &ff::frame::Video,
    pts: i64,
    gop: i64,
    packet: &mut ff::Packet,
) -> Result<(), String> {
    if o.encoder.is_none() {
        let e = encode::Encoder::open(&o.choice, frame)
            .map_err(|e| format!("opening {}: {e}", o.choice.name))?;
        tracing::info!(path = %path, "transcode: {}x{} → {}x{} with {}",
            frame.width(), frame.height(), e.width, e.height, o.choice.name);
        o.encoder = Some(e);
    }
    let key = pts >= o.next_key;
    if key {
        o.next_key = pts.saturating_add(gop);
    }
    let Some(enc) = o.encoder.as_mut() else {
        return Ok(());
    };
    enc.send(frame, pts, key)?;
    while enc.receive(packet) {
        emit(packet, &mut o.tracks, o.sink.as_mut())?;
    }
    Ok(())
}

/// One encoded packet out; the output stream starts at the first keyframe, with the
/// parameter sets it carries.
fn emit(packet: &ff::Packet, out_tracks: &mut [Track], out: &mut dyn Sink) -> Result<(), String> {
    let Some(data) = packet.data() else {
        return Ok(());
    };
    let nalus = crate::format::mpegts::demux::split_annexb(&Bytes::copy_from_slice(data));
    let keyframe = packet.is_key();
    if !out.started() {
        if !keyframe {
            return Ok(());
        }
        encode::learn_sets(&mut out_tracks[0].codec, &nalus);
        if !out.start(out_tracks.to_vec()) {
            return Err("the output path was taken".into());
        }
    }
    let pts = packet.pts().unwrap_or(0);
    let unit = Unit {
        track: 0,
        pts,
        dts: packet.dts().unwrap_or(pts),
        keyframe,
        payload: Payload::Nalus(nalus),
    };
    out.write(unit);
    Ok(())
}
