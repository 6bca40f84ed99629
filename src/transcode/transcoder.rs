//! The stage's work on its thread: one decode of the video track, then per output
//! the scaler and encoder, and the fallback when an encoder fails mid-stream (the
//! output carries on in the same stream). Other tracks pass through or become AAC.

use super::audio::AudioTranscoder;
use super::decode::Decoder;
use super::encode::{self, Choice};
use super::hw;
use super::pipeline::Sink;
use super::status::{OutputStatus, StageStatus};
use crate::config::transcode::{AudioCodec, Fallback, TranscodeConf, VideoCodec};
use crate::core::{Codec, Payload, Track, Unit};
use bytes::Bytes;
use ffmpeg_next as ff;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One output of the stage as the caller sets it up.
pub(super) struct OutSpec {
    /// The path it publishes, for the log.
    pub name: String,
    /// Its settings (a rendition's size and bitrate in `video`).
    pub conf: TranscodeConf,
    /// The path itself rather than a rendition: it may fall back to passing the
    /// input through.
    pub main: bool,
    pub choice: Choice,
    pub sink: Box<dyn Sink>,
}

/// What an output does with the video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Encode,
    /// Passes the input through (its encoder failed); `keyed` once a keyframe came.
    Copy {
        keyed: bool,
    },
    /// Its encoder failed and nothing could take over: it publishes no more.
    Ended,
}

/// One output of the stage: its encoder (opened on the first frame), tracks and sink.
struct Out {
    name: String,
    conf: TranscodeConf,
    main: bool,
    choice: Choice,
    encoder: Option<encode::Encoder>,
    tracks: Vec<Track>,
    /// A keyframe is forced at or after this pts (90 kHz).
    next_key: i64,
    /// `None` once ended: dropping the sink ends the output's stream.
    sink: Option<Box<dyn Sink>>,
    mode: Mode,
    /// The last input size, for opening a software encoder after a failure.
    size: (u32, u32),
}

/// Decodes the video track once and scales and encodes it for each output; other
/// tracks pass through to every output. An output whose encoder fails mid-stream
/// carries on in the same stream with the fallback, so its readers stay.
pub(super) struct Transcoder {
    path: String,
    video: usize,
    /// The input video track, with parameter sets kept current from in-band ones.
    in_codec: Codec,
    /// Input track index → output track index (video is 0).
    map: Vec<Option<usize>>,
    /// Input track index → its audio re-encoder (`audio: {codec: aac}`).
    audio: Vec<Option<AudioTranscoder>>,
    decoder: Decoder,
    outs: Vec<Out>,
    gop: i64,
    /// Frames closer than this to the last one are dropped (`fps`).
    min_interval: i64,
    last_kept: Option<i64>,
    /// No input before the first keyframe is decoded (nor after a decoding error).
    started: bool,
    status: Arc<StageStatus>,
    /// Where the last frame was decoded, as last reported.
    decoded_on_gpu: Option<bool>,
    frame: ff::frame::Video,
    packet: ff::Packet,
}

impl Transcoder {
    pub(super) fn new(
        path: &str,
        conf: &TranscodeConf,
        tracks: &[Track],
        video: usize,
        decoder: Decoder,
        outs: Vec<OutSpec>,
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
            if conf.audio.codec != AudioCodec::Copy {
                match AudioTranscoder::new(t, conf.audio.codec, conf.audio.bitrate.0) {
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
        let in_codec = tracks[video].codec.clone();
        let size = encode::input_size(&in_codec).unwrap_or((1280, 720));
        let outs = outs
            .into_iter()
            .map(|o| Out {
                name: o.name,
                conf: o.conf,
                main: o.main,
                choice: o.choice,
                encoder: None,
                tracks: out_tracks.clone(),
                next_key: i64::MIN,
                sink: Some(o.sink),
                mode: Mode::Encode,
                size,
            })
            .collect();
        Transcoder {
            path: path.to_string(),
            video,
            in_codec,
            map,
            audio,
            decoder,
            outs,
            gop: (conf.video.gop.0.as_secs_f64() * 90000.0) as i64,
            min_interval: conf.video.fps.map_or(0, |f| 90000 * 9 / (10 * f as i64)),
            last_kept: None,
            started: false,
            status: Arc::default(),
            decoded_on_gpu: None,
            frame: ff::frame::Video::empty(),
            packet: ff::Packet::empty(),
        }
    }

    /// Reports to `status` (the API's view of the stage).
    pub(super) fn with_status(mut self, status: Arc<StageStatus>) -> Transcoder {
        self.status = status;
        for i in 0..self.outs.len() {
            self.report(i);
        }
        self
    }

    fn report(&self, i: usize) {
        let o = &self.outs[i];
        let (size, scaling) = match (&o.encoder, o.mode) {
            (Some(e), Mode::Encode) => (format!("{}x{}", e.width, e.height), e.scaling.clone()),
            _ => (String::new(), String::new()),
        };
        self.status.set_output(
            i,
            OutputStatus {
                path: o.name.clone(),
                encoder: self.encoder(i).to_string(),
                size,
                scaling,
            },
        );
    }

    pub(super) fn push(&mut self, mut unit: Unit) -> Result<(), String> {
        let Some(Some(to)) = self.map.get(unit.track).copied() else {
            return Ok(());
        };
        if self.outs.iter().all(|o| o.mode == Mode::Ended) {
            return Err("no output is left".into());
        }
        if unit.track != self.video {
            let units = match self.audio.get_mut(unit.track).and_then(Option::as_mut) {
                Some(a) => a.push(&unit)?,
                None => vec![unit],
            };
            // Audio waits for each output's stream; before it, it has nowhere to go.
            for u in units {
                for s in self.outs.iter_mut().filter_map(|o| o.sink.as_mut()) {
                    if s.started() {
                        s.write(Unit {
                            track: to,
                            ..u.clone()
                        });
                    }
                }
            }
            return Ok(());
        }
        // Keyframes carry their parameter sets from here on: the decoder and any
        // output passing the input through need them.
        crate::core::params::track_and_inject(&mut self.in_codec, &mut unit);
        for o in &mut self.outs {
            o.copy(&unit, &self.in_codec);
        }
        if !self.outs.iter().any(|o| o.mode == Mode::Encode) {
            return Ok(());
        }
        if !self.started && !unit.keyframe {
            return Ok(());
        }
        self.started = true;
        if let Err(e) = self.decoder.send(&unit) {
            // A damaged unit: decoding resumes at the next keyframe.
            let n = self.status.decode_errors.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(path = %self.path, "transcode: {e} ({n} so far); waiting for a keyframe");
            }
            self.started = false;
            return Ok(());
        }
        while self.decoder.receive(&mut self.frame) {
            let pts = self
                .frame
                .timestamp()
                .or(self.frame.pts())
                .unwrap_or(unit.pts);
            if self.last_kept.is_some_and(|l| pts - l < self.min_interval) {
                continue;
            }
            self.last_kept = Some(pts);
            let on_gpu = hw::on_gpu(&self.frame);
            if self.decoded_on_gpu != Some(on_gpu) {
                self.decoded_on_gpu = Some(on_gpu);
                self.status
                    .set_decode(if on_gpu { "nvdec" } else { "software" });
            }
            self.encode_all(pts, self.gop);
        }
        Ok(())
    }

    /// The decoded frame into every encoding output; one that fails falls back.
    fn encode_all(&mut self, pts: i64, gop: i64) {
        for i in 0..self.outs.len() {
            let o = &mut self.outs[i];
            if o.mode != Mode::Encode {
                continue;
            }
            let opened = o.encoder.is_some();
            match o.encode(&self.frame, pts, gop, &mut self.packet) {
                Ok(()) if opened => continue,
                Ok(()) => {}
                Err(e) => {
                    o.fall_back(&e, &self.in_codec);
                    self.status.fallbacks.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.report(i);
        }
    }

    /// Makes output `i`'s encoder fail as if it had broken mid-stream: what follows
    /// is the same fallback a real failure gets.
    #[cfg(test)]
    pub(super) fn fail_output(&mut self, i: usize, why: &str) {
        self.outs[i].fall_back(why, &self.in_codec);
        self.status.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.report(i);
    }

    /// The encoder output `i` uses now (`copy` or `ended` after a fallback).
    fn encoder(&self, i: usize) -> &'static str {
        let o = &self.outs[i];
        match o.mode {
            Mode::Encode => o.choice.name,
            Mode::Copy { .. } => "copy",
            Mode::Ended => "ended",
        }
    }

    pub(super) fn status(&self) -> super::status::StageSnapshot {
        self.status.snapshot()
    }

    /// The encoder each output uses now.
    pub(super) fn encoders(&self) -> Vec<&'static str> {
        (0..self.outs.len()).map(|i| self.encoder(i)).collect()
    }

    /// Drains the decoder and the encoders (end of input).
    pub(super) fn finish(&mut self) -> Result<(), String> {
        self.decoder.finish();
        while self.decoder.receive(&mut self.frame) {
            let pts = self.frame.timestamp().or(self.frame.pts()).unwrap_or(0);
            self.encode_all(pts, i64::MAX);
        }
        for o in self.outs.iter_mut().filter(|o| o.mode == Mode::Encode) {
            let Some(enc) = o.encoder.as_mut() else {
                continue;
            };
            enc.flush();
            while enc.receive(&mut self.packet)? {
                if !emit(&o.name, &mut o.tracks, &mut o.sink, &self.packet) {
                    o.mode = Mode::Ended;
                }
            }
        }
        Ok(())
    }
}

impl Out {
    /// One decoded frame into this output: the encoder opens on the first frame (and
    /// again when the input's size or format changes), and a keyframe is forced every
    /// `gop`.
    fn encode(
        &mut self,
        frame: &ff::frame::Video,
        pts: i64,
        gop: i64,
        packet: &mut ff::Packet,
    ) -> Result<(), String> {
        if self.encoder.as_ref().is_some_and(|e| !e.takes(frame)) {
            tracing::info!(path = %self.name, "transcode: the input changed to {}x{}; reopening {}",
                frame.width(), frame.height(), self.choice.name);
            self.encoder = None;
        }
        let enc = match &mut self.encoder {
            Some(e) => e,
            None => {
                self.size = (frame.width(), frame.height());
                let e = encode::Encoder::open(&self.choice, frame)
                    .map_err(|e| format!("opening {}: {e}", self.choice.name))?;
                tracing::info!(path = %self.name, "transcode: {}x{} → {}x{} with {} (scaling: {})",
                    frame.width(), frame.height(), e.width, e.height, self.choice.name, e.scaling);
                self.next_key = i64::MIN;
                self.encoder.insert(e)
            }
        };
        let key = pts >= self.next_key;
        if key {
            self.next_key = pts.saturating_add(gop);
        }
        enc.send(frame, pts, key)?;
        while enc.receive(packet)? {
            if !emit(&self.name, &mut self.tracks, &mut self.sink, packet) {
                self.mode = Mode::Ended;
            }
        }
        Ok(())
    }

    /// After an encoder failure: the software encoder when it was NVENC and
    /// `fallback: software`, else (the path itself) the input passed through in the
    /// same stream, else the output ends.
    fn fall_back(&mut self, why: &str, in_codec: &Codec) {
        tracing::warn!(path = %self.name, "transcode: {} failed: {why}", self.choice.name);
        self.encoder = None;
        if self.choice.hw && self.conf.fallback == Fallback::Software {
            match encode::software(&self.conf, self.size) {
                Ok(c) => {
                    tracing::warn!(path = %self.name, "transcode: carrying on with {} from the next frame", c.name);
                    self.choice = c;
                    return;
                }
                Err(e) => tracing::warn!(path = %self.name, "transcode: {e}"),
            }
        }
        let same_codec =
            std::mem::discriminant(in_codec) == std::mem::discriminant(&self.tracks[0].codec);
        if self.main && same_codec {
            tracing::warn!(path = %self.name, "transcode: passing the input through from its next keyframe");
            self.mode = Mode::Copy { keyed: false };
            return;
        }
        tracing::error!(path = %self.name, "transcode: nothing can take over; the output ends");
        self.mode = Mode::Ended;
        self.sink = None;
    }

    /// An input video unit, when this output passes the input through; its stream
    /// starts here if no encoded frame started it.
    fn copy(&mut self, unit: &Unit, in_codec: &Codec) {
        let Mode::Copy { keyed } = &mut self.mode else {
            return;
        };
        if !*keyed && !unit.keyframe {
            return;
        }
        *keyed = true;
        let Some(s) = self.sink.as_mut() else {
            return;
        };
        if !s.started() {
            let mut tracks = self.tracks.clone();
            tracks[0] = Track::new(in_codec.clone(), 90000);
            if !s.start(tracks) {
                self.mode = Mode::Ended;
                self.sink = None;
                return;
            }
        }
        s.write(Unit {
            track: 0,
            ..unit.clone()
        });
    }
}

/// One encoded packet out; the output stream starts at the first keyframe, with the
/// parameter sets it carries. `false` when the output can't start (it then ends).
fn emit(
    name: &str,
    tracks: &mut [Track],
    sink: &mut Option<Box<dyn Sink>>,
    packet: &ff::Packet,
) -> bool {
    let (Some(data), Some(s)) = (packet.data(), sink.as_mut()) else {
        return true;
    };
    let nalus = crate::format::mpegts::demux::split_annexb(&Bytes::copy_from_slice(data));
    let keyframe = packet.is_key();
    if !s.started() {
        if !keyframe {
            return true;
        }
        encode::learn_sets(&mut tracks[0].codec, &nalus);
        if !s.start(tracks.to_vec()) {
            tracing::error!(path = %name, "transcode: the output path was taken; the output ends");
            *sink = None;
            return false;
        }
    }
    let pts = packet.pts().unwrap_or(0);
    s.write(Unit {
        track: 0,
        pts,
        dts: packet.dts().unwrap_or(pts),
        keyframe,
        payload: Payload::Nalus(nalus),
    });
    true
}

#[cfg(test)]
mod tests {
    use super::super::pipeline::prepare;
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Mutex;

    /// What a sink saw: how often it started, the units written, whether it was dropped.
    #[derive(Default)]
    struct Seen {
        starts: AtomicUsize,
        units: Mutex<Vec<Unit>>,
        dropped: AtomicBool,
    }

    struct Rec(Arc<Seen>, bool);

    impl Sink for Rec {
        fn start(&mut self, _: Vec<Track>) -> bool {
            self.0.starts.fetch_add(1, Ordering::SeqCst);
            self.1 = true;
            true
        }
        fn started(&self) -> bool {
            self.1
        }
        fn write(&mut self, unit: Unit) {
            self.0.units.lock().unwrap().push(unit);
        }
    }

    impl Drop for Rec {
        fn drop(&mut self) {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }

    fn conf(yaml: &str) -> TranscodeConf {
        serde_saphyr::from_str(yaml).unwrap()
    }

    /// `n` frames of a moving 320×240 picture as H.264 units (libx264, keyframe each 1 s
    /// at 30 fps), and their track.
    fn h264_input(n: i64) -> (Track, Vec<Unit>) {
        ff::init().unwrap();
        let c = conf("{hwaccel: none, video: {bitrate: 300k, gop: 1s}, fallback: software}");
        let choice = encode::software(&c, (320, 240)).unwrap();
        let mut frame = ff::frame::Video::new(ff::format::Pixel::YUV420P, 320, 240);
        let mut enc = None;
        let (mut units, mut codec) = (
            Vec::new(),
            Codec::H264 {
                sps: None,
                pps: None,
            },
        );
        let mut packet = ff::Packet::empty();
        let take = |p: &ff::Packet, units: &mut Vec<Unit>, codec: &mut Codec| {
            let nalus = crate::format::mpegts::demux::split_annexb(&Bytes::copy_from_slice(
                p.data().unwrap(),
            ));
            encode::learn_sets(codec, &nalus);
            let pts = p.pts().unwrap();
            units.push(Unit {
                track: 0,
                pts,
                dts: p.dts().unwrap_or(pts),
                keyframe: p.is_key(),
                payload: Payload::Nalus(nalus),
            });
        };
        for i in 0..n {
            for plane in 0..3 {
                let stride = frame.stride(plane);
                for (j, b) in frame.data_mut(plane).iter_mut().enumerate() {
                    *b = ((j % stride) as i64 + i * 4 + (j / stride) as i64) as u8;
                }
            }
            let e: &mut encode::Encoder =
                enc.get_or_insert_with(|| encode::Encoder::open(&choice, &frame).unwrap());
            e.send(&frame, i * 3000, i % 30 == 0).unwrap();
            while e.receive(&mut packet).unwrap() {
                take(&packet, &mut units, &mut codec);
            }
        }
        let e = enc.as_mut().unwrap();
        e.flush();
        while e.receive(&mut packet).unwrap() {
            take(&packet, &mut units, &mut codec);
        }
        (Track::new(codec, 90000), units)
    }

    fn stage(yaml: &str, track: &Track, outs: usize) -> (Transcoder, Vec<Arc<Seen>>) {
        let c = conf(yaml);
        let (decoder, choice, decision) = prepare("t", &c, &track.codec).unwrap();
        let choice = choice.unwrap_or_else(|| panic!("{decision}"));
        let seen: Vec<Arc<Seen>> = (0..outs).map(|_| Arc::default()).collect();
        let specs = seen
            .iter()
            .enumerate()
            .map(|(i, s)| OutSpec {
                name: format!("t{i}"),
                conf: c.clone(),
                main: i == 0,
                choice: choice.clone(),
                sink: Box::new(Rec(s.clone(), false)),
            })
            .collect();
        let t = Transcoder::new("t", &c, std::slice::from_ref(track), 0, decoder, specs);
        (t, seen)
    }

    fn keyframes_after(seen: &Seen, pts: i64) -> usize {
        let units = seen.units.lock().unwrap();
        units.iter().filter(|u| u.pts > pts && u.keyframe).count()
    }

    const SOFTWARE: &str =
        "{hwaccel: none, video: {height: 120, bitrate: 200k, gop: 500ms}, fallback: software}";

    #[test]
    fn a_failed_hardware_encoder_hands_over_to_software_in_the_same_stream() {
        let (track, units) = h264_input(90);
        let (mut t, seen) = stage(SOFTWARE, &track, 1);
        // As NVENC would be: a hardware encoder, the software one behind it.
        t.outs[0].choice.hw = true;
        let mid = units[45].pts;
        for u in units {
            let pts = u.pts;
            t.push(u).unwrap();
            if pts == mid {
                t.fail_output(0, "the GPU went away");
            }
        }
        t.finish().unwrap();
        assert_eq!(t.encoders(), ["libx264"]);
        assert!(!t.outs[0].choice.hw);
        assert_eq!(t.status.snapshot().fallbacks, 1);
        assert_eq!(
            seen[0].starts.load(Ordering::SeqCst),
            1,
            "the stream was restarted"
        );
        assert!(
            keyframes_after(&seen[0], mid) >= 1,
            "no keyframe after the switch"
        );
        // Every frame after the switch was encoded: none lost to it.
        let out = seen[0].units.lock().unwrap();
        assert_eq!(out.iter().filter(|u| u.track == 0).count(), 90);
    }

    #[test]
    fn a_failed_encoder_with_fallback_copy_passes_the_input_through() {
        let (track, units) = h264_input(90);
        let yaml = "{hwaccel: none, video: {height: 120, bitrate: 200k}, fallback: copy}";
        let c = conf(yaml);
        // fallback: copy picks no software encoder; put one in to have something fail.
        let (decoder, _, _) = prepare("t", &c, &track.codec).unwrap();
        let seen = Arc::new(Seen::default());
        let spec = OutSpec {
            name: "t".into(),
            conf: c.clone(),
            main: true,
            choice: encode::software(&c, (320, 240)).unwrap(),
            sink: Box::new(Rec(seen.clone(), false)),
        };
        let mut t = Transcoder::new(
            "t",
            &c,
            std::slice::from_ref(&track),
            0,
            decoder,
            vec![spec],
        );
        let mid = units[40].pts;
        for u in units.clone() {
            let pts = u.pts;
            t.push(u).unwrap();
            if pts == mid {
                t.fail_output(0, "broken");
            }
        }
        assert_eq!(t.encoders(), ["copy"]);
        let st = t.status.snapshot();
        assert_eq!((st.outputs[0].encoder.as_str(), st.fallbacks), ("copy", 1));
        assert_eq!(seen.starts.load(Ordering::SeqCst), 1);
        // From the input's next keyframe (frame 60) on, the output is the input.
        let out = seen.units.lock().unwrap();
        let copied: Vec<&Unit> = out.iter().filter(|u| u.pts >= units[60].pts).collect();
        assert_eq!(copied.len(), 30);
        assert!(copied[0].keyframe);
        for (o, i) in copied.iter().zip(&units[60..]) {
            assert_eq!((o.pts, o.keyframe), (i.pts, i.keyframe));
            let (Payload::Nalus(a), Payload::Nalus(b)) = (&o.payload, &i.payload) else {
                panic!("not NAL units");
            };
            // Keyframes gain the parameter sets in front; the picture is the input's.
            assert_eq!(a.last(), b.last());
        }
    }

    #[test]
    fn a_rendition_whose_encoder_fails_ends_and_the_path_carries_on() {
        let (track, units) = h264_input(60);
        // Output 1 is a rendition: a software encoder failing has nothing behind it.
        let (mut t, seen) = stage(SOFTWARE, &track, 2);
        for (i, u) in units.into_iter().enumerate() {
            t.push(u).unwrap();
            if i == 20 {
                t.fail_output(1, "broken");
            }
        }
        assert_eq!(t.encoders(), ["libx264", "ended"]);
        assert!(
            seen[1].dropped.load(Ordering::SeqCst),
            "the rendition's stream didn't end"
        );
        assert!(!seen[0].dropped.load(Ordering::SeqCst));
        assert!(seen[0].units.lock().unwrap().len() >= 55);
    }

    #[test]
    fn a_damaged_unit_costs_frames_up_to_the_next_keyframe_only() {
        let (track, mut units) = h264_input(90);
        units[10].payload = Payload::Nalus(vec![Bytes::from_static(&[0x41, 0xff, 0x00, 0x13])]);
        let (mut t, seen) = stage(SOFTWARE, &track, 1);
        for u in units {
            t.push(u).unwrap();
        }
        t.finish().unwrap();
        assert_eq!(t.encoders(), ["libx264"]);
        assert_eq!(t.status.snapshot().decode_errors, 1);
        let n = seen[0].units.lock().unwrap().len();
        assert!(n >= 60, "only {n} frames out");
    }
}
