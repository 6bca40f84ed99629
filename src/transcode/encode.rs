//! The encoding side of a stage: which encoder opens on this host (NVENC first, then
//! libx264/libx265), the scaler in front of it (on the GPU for GPU frames), and
//! parameter sets out of encoded packets.

use super::hw::{self, GpuScaler};
use crate::config::transcode::{Fallback, HwAccel, TranscodeConf, VideoCodec};
use crate::core::Codec;
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

/// The encoder to use: NVENC when allowed and it opens on this host, else the software
/// encoder when `fallback: software`; `None` means pass the input through. The note
/// says why, for the decision log line.
pub fn choose(conf: &TranscodeConf, size: (u32, u32)) -> (Option<Choice>, String) {
    let nvenc = match conf.video.codec {
        VideoCodec::H265 => "hevc_nvenc",
        _ => "h264_nvenc",
    };
    let mut notes = Vec::new();
    if conf.hwaccel == HwAccel::None {
        notes.push("nvenc off (hwaccel: none)".to_string());
    } else {
        let c = choice(conf, nvenc, true);
        match probe(&c, size) {
            Ok(()) => return (Some(c), format!("nvenc yes ({nvenc})")),
            Err(e) => notes.push(format!("nvenc no ({e})")),
        }
    }
    if conf.fallback == Fallback::Software {
        match software(conf, size) {
            Ok(c) => {
                notes.push(format!("using {}", c.name));
                return (Some(c), notes.join(", "));
            }
            Err(e) => notes.push(e),
        }
    }
    (None, notes.join(", "))
}

/// The software encoder for `conf`'s codec, if it opens at `size`.
pub fn software(conf: &TranscodeConf, size: (u32, u32)) -> Result<Choice, String> {
    let name = match conf.video.codec {
        VideoCodec::H265 => "libx265",
        _ => "libx264",
    };
    let c = choice(conf, name, false);
    probe(&c, size).map_err(|e| format!("{name} no ({e})"))?;
    Ok(c)
}

fn choice(conf: &TranscodeConf, name: &'static str, hw: bool) -> Choice {
    Choice {
        name,
        hw,
        bitrate: conf.video.bitrate.0,
        preset: conf.video.preset.clone(),
        gop_secs: conf.video.gop.0.as_secs_f64(),
        want: (conf.video.width, conf.video.height),
        fps: conf.video.fps,
    }
}

/// Opens the encoder at `size` and drops it: whether it works on this host.
fn probe(c: &Choice, size: (u32, u32)) -> Result<(), String> {
    open_encoder(c, size).map(|_| ())
}

fn open_encoder(c: &Choice, size: (u32, u32)) -> Result<ff::encoder::Video, String> {
    open_encoder_on(c, size, None)
}

/// Opens the encoder for YUV 4:2:0 frames in system memory, or with `gpu_frames` (a
/// CUDA frames context) for frames already in GPU memory (NVENC only).
fn open_encoder_on(
    c: &Choice,
    (w, h): (u32, u32),
    gpu_frames: Option<*mut ff::ffi::AVBufferRef>,
) -> Result<ff::encoder::Video, String> {
    let codec = ff::encoder::find_by_name(c.name).ok_or("not in this FFmpeg")?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| e.to_string())?;
    let fps = c.fps.unwrap_or(30);
    enc.set_width(w);
    enc.set_height(h);
    match gpu_frames {
        Some(frames) if !frames.is_null() => {
            enc.set_format(ff::format::Pixel::CUDA);
            // SAFETY: set before the codec opens; the context owns the new reference.
            unsafe { (*enc.as_mut_ptr()).hw_frames_ctx = ff::ffi::av_buffer_ref(frames) };
        }
        Some(_) => return Err("scale_cuda gave no frames context".into()),
        None => enc.set_format(ff::format::Pixel::YUV420P),
    }
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

/// What a decoded frame goes through before the encoder takes it.
enum Prep {
    /// Already the size and format the encoder takes.
    Nothing,
    /// Software frames through swscale.
    Sws(ff::software::scaling::Context),
    /// GPU frames through `scale_cuda` (downloaded after it for a software encoder).
    Gpu(GpuScaler),
    /// GPU frames downloaded first (no `scale_cuda` graph could be built), then swscale.
    Download(ff::frame::Video, Option<ff::software::scaling::Context>),
}

/// A frame's format and size: a frame of another shape needs a new encoder.
type Shape = (ff::format::Pixel, u32, u32);

fn shape(f: &ff::frame::Video) -> Shape {
    (f.format(), f.width(), f.height())
}

/// An open encoder and the scaler in front of it.
pub struct Encoder {
    enc: ff::encoder::Video,
    prep: Prep,
    input: Shape,
    out: ff::frame::Video,
    pub width: u32,
    pub height: u32,
    /// Where scaling happens, for the log line.
    pub scaling: String,
}

impl Encoder {
    /// Opens `choice` for frames like `first`: on the GPU they are scaled there, and
    /// stay there for NVENC.
    pub fn open(choice: &Choice, first: &ff::frame::Video) -> Result<Encoder, String> {
        let (w, h) = size_for(choice.want, first.width(), first.height());
        let (enc, prep, scaling) = if hw::on_gpu(first) {
            match hw::GpuScaler::new(first, (w, h), !choice.hw) {
                Ok(mut g) => {
                    let frames = g.hw_frames_ctx();
                    let enc = match choice.hw {
                        true => open_encoder_on(choice, (w, h), Some(frames))?,
                        false => open_encoder(choice, (w, h))?,
                    };
                    let at = match choice.hw {
                        true => "scale_cuda, frames stay on the GPU",
                        false => "scale_cuda, then downloaded",
                    };
                    (enc, Prep::Gpu(g), at.to_string())
                }
                Err(e) => (
                    open_encoder(choice, (w, h))?,
                    Prep::Download(ff::frame::Video::empty(), None),
                    format!("downloaded, swscale (no scale_cuda: {e})"),
                ),
            }
        } else if (first.format(), first.width(), first.height())
            == (ff::format::Pixel::YUV420P, w, h)
        {
            (open_encoder(choice, (w, h))?, Prep::Nothing, "none".into())
        } else {
            let ctx = sws(first, (w, h))?;
            (
                open_encoder(choice, (w, h))?,
                Prep::Sws(ctx),
                "swscale".into(),
            )
        };
        Ok(Encoder {
            enc,
            prep,
            input: shape(first),
            out: ff::frame::Video::empty(),
            width: w,
            height: h,
            scaling,
        })
    }

    /// Whether `frame` has the shape this encoder was opened for.
    pub fn takes(&self, frame: &ff::frame::Video) -> bool {
        shape(frame) == self.input
    }

    /// Encodes `frame` at `pts` (90 kHz), as a keyframe when `key`.
    pub fn send(&mut self, frame: &ff::frame::Video, pts: i64, key: bool) -> Result<(), String> {
        let size = (self.width, self.height);
        let f: &mut ff::frame::Video = match &mut self.prep {
            Prep::Nothing => {
                // A new reference to the decoder's frame, to set its fields on.
                // SAFETY: both frames are valid; `out` is unreferenced first.
                unsafe {
                    ff::ffi::av_frame_unref(self.out.as_mut_ptr());
                    let r = ff::ffi::av_frame_ref(self.out.as_mut_ptr(), frame.as_ptr());
                    if r < 0 {
                        return Err(format!("frame: {}", ff::Error::from(r)));
                    }
                }
                &mut self.out
            }
            Prep::Sws(ctx) => {
                ctx.run(frame, &mut self.out)
                    .map_err(|e| format!("scaling: {e}"))?;
                &mut self.out
            }
            Prep::Gpu(g) => match g.run(frame)? {
                Some(f) => f,
                None => return Ok(()),
            },
            Prep::Download(sw, ctx) => {
                hw::download(frame, sw)?;
                let ctx = match ctx {
                    Some(c) => c,
                    None => ctx.insert(sws(sw, size)?),
                };
                ctx.run(sw, &mut self.out)
                    .map_err(|e| format!("scaling: {e}"))?;
                &mut self.out
            }
        };
        f.set_pts(Some(pts));
        f.set_kind(match key {
            true => ff::picture::Type::I,
            false => ff::picture::Type::None,
        });
        self.enc.send_frame(f).map_err(|e| format!("encoding: {e}"))
    }

    /// Tells the encoder the input ended, so it hands out what it holds.
    pub fn flush(&mut self) {
        let _ = self.enc.send_eof();
    }

    /// The next encoded packet, if one is ready; an error is the encoder failing.
    pub fn receive(&mut self, packet: &mut ff::Packet) -> Result<bool, String> {
        match self.enc.receive_packet(packet) {
            Ok(()) => Ok(true),
            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => Ok(false),
            Err(ff::Error::Eof) => Ok(false),
            Err(e) => Err(format!("encoding: {e}")),
        }
    }
}

/// swscale from frames like `from` to YUV 4:2:0 at `w`×`h`.
fn sws(
    from: &ff::frame::Video,
    (w, h): (u32, u32),
) -> Result<ff::software::scaling::Context, String> {
    ff::software::scaling::Context::get(
        from.format(),
        from.width(),
        from.height(),
        ff::format::Pixel::YUV420P,
        w,
        h,
        ff::software::scaling::Flags::BILINEAR,
    )
    .map_err(|e| format!("scaler: {e}"))
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
