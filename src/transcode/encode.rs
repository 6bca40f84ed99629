//! FFmpeg's side of a stage: which decoder and encoder open on this host (CUDA/NVENC
//! first, then software), the scaler, and turning units into Annex B packets and
//! encoded packets back into parameter sets.

use crate::config::transcode::{Fallback, HwAccel, TranscodeConf, VideoCodec};
use crate::core::{Codec, Payload, Unit};
use bytes::Bytes;
use ffmpeg_next as ff;

/// An encoder that opened in the probe, and how to configure it.
#[derive(Debug, Clone)]
pub struct Choice {
    pub name: &'static str,
    pub hw: bool,
    bitrate: u64,
    preset: String,
    gop_secs: f64,
    want: (Option<u32>, Option<u32>),
    fps: Option<u32>,
}

/// The input's coded size, from its SPS.
pub fn input_size(codec: &Codec) -> Option<(u32, u32)> {
    match codec {
        Codec::H264 { sps: Some(s), .. } => crate::codec::h264_sps::parse(s)
            .ok()
            .map(|s| (s.width, s.height)),
        Codec::H265 { sps: Some(s), .. } => crate::codec::h265_sps::parse(s)
            .ok()
            .map(|s| (s.width, s.height)),
        _ => None,
    }
}

/// The output size for an input of `w`×`h`: a missing side keeps the aspect ratio,
/// rounded to even.
pub fn out_size(conf: &TranscodeConf, w: u32, h: u32) -> (u32, u32) {
    size_for((conf.video.width, conf.video.height), w, h)
}

fn size_for(want: (Option<u32>, Option<u32>), w: u32, h: u32) -> (u32, u32) {
    let even = |x: f64| ((x / 2.0).round() as u32 * 2).max(2);
    match want {
        (Some(ow), Some(oh)) => (ow, oh),
        (Some(ow), None) => (ow, even(h as f64 * ow as f64 / w.max(1) as f64)),
        (None, Some(oh)) => (even(w as f64 * oh as f64 / h.max(1) as f64), oh),
        (None, None) => (w & !1, h & !1),
    }
}

fn open_video_decoder(codec: ff::Codec) -> Result<ff::decoder::Video, ff::Error> {
    ff::codec::context::Context::new_with_codec(codec)
        .decoder()
        .video()
}

/// CUDA (cuvid) when allowed and it opens, else FFmpeg's software decoder; with a note
/// for the decision log line.
pub fn open_decoder(codec: &Codec, hw: bool) -> Result<(ff::decoder::Video, String), String> {
    let (id, cuvid) = match codec {
        Codec::H265 { .. } => (ff::codec::Id::HEVC, "hevc_cuvid"),
        _ => (ff::codec::Id::H264, "h264_cuvid"),
    };
    let note = if !hw {
        "cuda decode off (hwaccel: none)".to_string()
    } else {
        match ff::decoder::find_by_name(cuvid) {
            None => format!("cuda decode no ({cuvid} not in this FFmpeg)"),
            Some(c) => match open_video_decoder(c) {
                Ok(d) => return Ok((d, format!("cuda decode yes ({cuvid})"))),
                Err(e) => format!("cuda decode no ({e})"),
            },
        }
    };
    let c = ff::decoder::find(id).ok_or_else(|| format!("{id:?}: no decoder in this FFmpeg"))?;
    let d = open_video_decoder(c).map_err(|e| e.to_string())?;
    Ok((d, note))
}

/// The encoder to use: NVENC when allowed and it opens on this host, else the software
/// encoder when `fallback: software`; `None` means pass the input through. The note
/// says why, for the decision log line.
pub fn choose(conf: &TranscodeConf, size: (u32, u32)) -> (Option<Choice>, String) {
    let (nvenc, software) = match conf.video.codec {
        VideoCodec::H265 => ("hevc_nvenc", "libx265"),
        _ => ("h264_nvenc", "libx264"),
    };
    let choice = |name: &'static str, hw: bool| Choice {
        name,
        hw,
        bitrate: conf.video.bitrate.0,
        preset: conf.video.preset.clone(),
        gop_secs: conf.video.gop.0.as_secs_f64(),
        want: (conf.video.width, conf.video.height),
        fps: conf.video.fps,
    };
    let mut notes = Vec::new();
    if conf.hwaccel == HwAccel::None {
        notes.push("nvenc off (hwaccel: none)".to_string());
    } else {
        let c = choice(nvenc, true);
        match probe(&c, size) {
            Ok(()) => return (Some(c), format!("nvenc yes ({nvenc})")),
            Err(e) => notes.push(format!("nvenc no ({e})")),
        }
    }
    if conf.fallback == Fallback::Software {
        let c = choice(software, false);
        match probe(&c, size) {
            Ok(()) => {
                notes.push(format!("using {software}"));
                return (Some(c), notes.join(", "));
            }
            Err(e) => notes.push(format!("{software} no ({e})")),
        }
    }
    (None, notes.join(", "))
}

/// Opens the encoder at `size` and drops it: whether it works on this host.
fn probe(c: &Choice, size: (u32, u32)) -> Result<(), String> {
    open_encoder(c, size).map(|_| ())
}

fn open_encoder(c: &Choice, (w, h): (u32, u32)) -> Result<ff::encoder::Video, String> {
    let codec = ff::encoder::find_by_name(c.name).ok_or("not in this FFmpeg")?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| e.to_string())?;
    let fps = c.fps.unwrap_or(30);
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(ff::format::Pixel::YUV420P);
    enc.set_time_base((1, 90000));
    enc.set_frame_rate(Some((fps as i32, 1)));
    enc.set_bit_rate(c.bitrate as usize);
    enc.set_max_b_frames(0);
    // Keyframes are forced by time; this only bounds the encoder's own choice.
    enc.set_gop((c.gop_secs * fps as f64 * 2.0).ceil() as u32);
    let mut opts = ff::Dictionary::new();
    opts.set("forced-idr", "1");
    match c.name {
        "libx264" => {
            opts.set("preset", &c.preset);
            opts.set("tune", "zerolatency");
            opts.set("x264-params", "scenecut=0:repeat-headers=1");
        }
        "libx265" => {
            opts.set("preset", &c.preset);
            opts.set("tune", "zerolatency");
            opts.set("x265-params", "scenecut=0:repeat-headers=1:log-level=error");
        }
        _ => {
            opts.set("preset", nvenc_preset(&c.preset));
            opts.set("tune", "ll");
            opts.set("zerolatency", "1");
        }
    }
    enc.open_with(opts).map_err(|e| e.to_string())
}

/// NVENC's presets (p1 fastest … p7 best) for an x264 preset name.
fn nvenc_preset(x264: &str) -> &'static str {
    match x264 {
        "ultrafast" | "superfast" => "p1",
        "veryfast" | "faster" => "p2",
        "fast" => "p3",
        "medium" => "p4",
        "slow" => "p5",
        "slower" => "p6",
        _ => "p7",
    }
}

/// An open encoder and the scaler in front of it.
pub struct Encoder {
    enc: ff::encoder::Video,
    scaler: Option<(ff::software::scaling::Context, ff::frame::Video)>,
    pub width: u32,
    pub height: u32,
}

impl Encoder {
    /// Opens `choice` for frames like `first`.
    pub fn open(choice: &Choice, first: &ff::frame::Video) -> Result<Encoder, String> {
        let (w, h) = size_for(choice.want, first.width(), first.height());
        let enc = open_encoder(choice, (w, h))?;
        let same = first.format() == ff::format::Pixel::YUV420P
            && (first.width(), first.height()) == (w, h);
        let scaler = match same {
            true => None,
            false => {
                let ctx = ff::software::scaling::Context::get(
                    first.format(),
                    first.width(),
                    first.height(),
                    ff::format::Pixel::YUV420P,
                    w,
                    h,
                    ff::software::scaling::Flags::BILINEAR,
                )
                .map_err(|e| format!("scaler: {e}"))?;
                Some((ctx, ff::frame::Video::empty()))
            }
        };
        Ok(Encoder {
            enc,
            scaler,
            width: w,
            height: h,
        })
    }

    /// Encodes `frame` at `pts` (90 kHz), as a keyframe when `key`.
    pub fn send(&mut self, frame: &ff::frame::Video, pts: i64, key: bool) -> Result<(), String> {
        let kind = match key {
            true => ff::picture::Type::I,
            false => ff::picture::Type::None,
        };
        let f = match &mut self.scaler {
            Some((ctx, out)) => {
                ctx.run(frame, out).map_err(|e| format!("scaling: {e}"))?;
                out
            }
            None => {
                // The decoder's frame is borrowed; the scaler-less path copies its fields.
                let mut f = frame.clone();
                f.set_pts(Some(pts));
                f.set_kind(kind);
                return self
                    .enc
                    .send_frame(&f)
                    .map_err(|e| format!("encoding: {e}"));
            }
        };
        f.set_pts(Some(pts));
        f.set_kind(kind);
        self.enc.send_frame(f).map_err(|e| format!("encoding: {e}"))
    }

    /// Tells the encoder the input ended, so it hands out what it holds.
    pub fn flush(&mut self) {
        let _ = self.enc.send_eof();
    }

    /// The next encoded packet, if one is ready.
    pub fn receive(&mut self, packet: &mut ff::Packet) -> bool {
        self.enc.receive_packet(packet).is_ok()
    }
}

/// The unit as an Annex B access unit; keyframes carry the track's parameter sets
/// first, since not every publisher repeats them in-band.
pub fn annexb(codec: &Codec, unit: &Unit) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |nal: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    };
    if unit.keyframe {
        let sets: Vec<&Option<Bytes>> = match codec {
            Codec::H264 { sps, pps } => vec![sps, pps],
            Codec::H265 { vps, sps, pps } => vec![vps, sps, pps],
            _ => Vec::new(),
        };
        for s in sets.into_iter().flatten() {
            put(s);
        }
    }
    if let Payload::Nalus(nalus) = &unit.payload {
        for n in nalus {
            put(n);
        }
    }
    out
}

/// Parameter sets found among an encoded keyframe's NAL units, into the track.
pub fn learn_sets(codec: &mut Codec, nalus: &[Bytes]) {
    for n in nalus {
        let Some(&b0) = n.first() else { continue };
        match codec {
            Codec::H264 { sps, pps } => match b0 & 0x1f {
                7 => *sps = Some(n.clone()),
                8 => *pps = Some(n.clone()),
                _ => {}
            },
            Codec::H265 { vps, sps, pps } => match (b0 >> 1) & 0x3f {
                32 => *vps = Some(n.clone()),
                33 => *sps = Some(n.clone()),
                34 => *pps = Some(n.clone()),
                _ => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_ratio_and_stay_even() {
        assert_eq!(size_for((None, Some(720)), 1920, 1080), (1280, 720));
        assert_eq!(size_for((None, Some(360)), 1920, 1080), (640, 360));
        assert_eq!(size_for((Some(640), None), 1920, 1080), (640, 360));
        assert_eq!(size_for((Some(300), Some(200)), 1920, 1080), (300, 200));
        assert_eq!(size_for((None, None), 641, 361), (640, 360));
        assert_eq!(size_for((None, Some(100)), 0, 0), (2, 100));
    }
}
